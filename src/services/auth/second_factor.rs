//! A second factor: a time-based one-time password (TOTP, RFC 6238: HMAC-SHA1, six digits,
//! thirty-second steps, as every authenticator app reads them) computed by the maintained
//! `totp-rs` crate, and one-use recovery codes for when the phone is lost.
//!
//! Why each rule:
//! - The secret must be readable to check a code, so it is stored sealed
//!   ([`crate::crypto::SealingKey`], a key of its own derived from `DMA_SECRET_KEY`) and bound
//!   to the account's id: a copy of the table alone gives nobody codes, and a sealed secret
//!   moved to another row does not open.
//! - A code is accepted one step either side of now (clocks drift), and never twice: the step
//!   it matched must be later than the last one accepted, and that is a guarded update, so
//!   two requests racing with one code cannot both pass.
//! - Recovery codes are random (50 bits each), shown once, stored as SHA-256 digests, and used
//!   by a guarded update (`used_at IS NULL`), so each works once however many requests race.
//! - Setting one up twice at once: the table's primary key is the account, so one wins and
//!   the other is told it is already set up.
//!
//! Checking a code is counted by the sign-in throttle like a password (the web layer claims
//! the attempt first), so six digits cannot be guessed faster than a password.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::RngCore;

use crate::crypto::{self, SealingKey};
use crate::db::schema::{recovery_codes, second_factors};
use crate::db::{with_concrete_connection, DbConnection};
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::session::Stage;
use crate::services::auth::users::User;

/// The name authenticator apps show beside the account.
pub const ISSUER: &str = "NHS digital maturity assessment";
/// Recovery codes issued when a second factor is set up.
pub const RECOVERY_CODES: usize = 10;
const SECRET_BYTES: usize = 20;
const STEP_SECONDS: u64 = 30;
/// The letters recovery codes are made of: no 0/O or 1/I/L to misread.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new random secret (160 bits, RFC 4226's recommendation).
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

fn totp(secret: &[u8], email: &str) -> Result<totp_rs::TOTP, AppError> {
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_string()),
        // The otpauth label may not hold a colon; an email address never does, but a
        // hand-edited one must not break the page.
        email.replace(':', ""),
    )
    .map_err(|e| AppError::Internal(anyhow::anyhow!("TOTP parameters refused: {e:?}")))
}

/// What an authenticator app needs: the `otpauth://` address (for the QR code) and the secret
/// in base32 (to type in by hand).
pub fn enrolment(secret: &[u8], email: &str) -> Result<(String, String), AppError> {
    let totp = totp(secret, email)?;
    Ok((totp.get_url(), totp.get_secret_base32()))
}

/// The code for `secret` at `unix_time` (for tests and tools; the service only checks).
pub fn code_at(secret: &[u8], unix_time: u64) -> Result<String, AppError> {
    Ok(totp(secret, "x")?.generate(unix_time))
}

/// The time step whose code `typed` is, looking one step either side of `unix_time`.
pub fn matching_step(secret: &[u8], typed: &str, unix_time: u64) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != 6 || !typed.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "x").ok()?;
    let now = unix_time / STEP_SECONDS;
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .find(|step| crypto::constant_time_eq(&totp.generate(step * STEP_SECONDS), &typed))
        .and_then(|step| i64::try_from(step).ok())
}

fn context(user_id: i64) -> String {
    format!("totp:{user_id}")
}

/// When the account's second factor was set up, if it has one.
pub fn enabled_at(
    conn: &mut DbConnection,
    user_id: i64,
) -> Result<Option<NaiveDateTime>, AppError> {
    Ok(second_factors::table
        .find(user_id)
        .select(second_factors::enabled_at)
        .first(conn)
        .optional()?)
}

/// How many unused recovery codes the account has.
pub fn recovery_codes_left(conn: &mut DbConnection, user_id: i64) -> Result<i64, AppError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Whether the settings require `user`'s role to have a second factor.
pub fn required(roles: &[String], user: &User) -> bool {
    roles.contains(&user.role)
}

/// The stage a session starts at once `user`'s password is accepted: waiting for the code when
/// the account has a second factor, waiting for one to be set up when its role requires one,
/// otherwise signed in.
pub fn stage_after_password(
    conn: &mut DbConnection,
    required_roles: &[String],
    user: &User,
) -> Result<Stage, AppError> {
    Ok(if enabled_at(conn, user.id)?.is_some() {
        Stage::SecondFactor
    } else if required(required_roles, user) {
        Stage::Enrol
    } else {
        Stage::Full
    })
}

/// Opens the session a correct password leads to, at [`stage_after_password`]'s stage;
/// returns its cookie token and the stage.
pub fn open_session_after_password(
    conn: &mut DbConnection,
    required_roles: &[String],
    user: &User,
    absolute_hours: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(String, Stage), AppError> {
    let stage = stage_after_password(conn, required_roles, user)?;
    let token = crate::services::auth::session::create_at_stage(
        conn,
        user.id,
        stage,
        absolute_hours,
        ip,
        user_agent,
    )?;
    Ok((token, stage))
}

fn normalise_recovery(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn new_recovery_code() -> String {
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let letters: String = bytes
        .iter()
        .map(|b| RECOVERY_ALPHABET[usize::from(*b) % RECOVERY_ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..5], &letters[5..])
}

/// Set up the second factor whose first code (`step`, from [`matching_step`]) the person has
/// just typed. Returns the recovery codes, to be shown once.
pub fn enrol(
    conn: &mut DbConnection,
    key: &SealingKey,
    actor: &Actor,
    user_id: i64,
    secret: &[u8],
    step: i64,
) -> Result<Vec<String>, AppError> {
    let now = Utc::now().naive_utc();
    let sealed = key.seal(&hex::encode(secret), &context(user_id));
    let inserted = with_concrete_connection!(conn, c => {
        diesel::insert_into(second_factors::table)
            .values((
                second_factors::user_id.eq(user_id),
                second_factors::secret_sealed.eq(&sealed),
                second_factors::enabled_at.eq(now),
                second_factors::last_step.eq(step),
            ))
            .on_conflict(second_factors::user_id)
            .do_nothing()
            .execute(c)?
    });
    if inserted != 1 {
        return Err(AppError::Conflict(
            "A second factor is already set up for this account.".into(),
        ));
    }
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    for code in &codes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(crypto::digest(&normalise_recovery(code))),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    audit::record(
        conn,
        actor,
        Entry::new("user.second_factor_enrol", "user", user_id),
    )?;
    Ok(codes)
}

/// What a typed code turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The authenticator's current code, not used before.
    Code,
    /// One of the recovery codes, now used up; this many remain.
    RecoveryCode {
        left: i64,
    },
    Refused,
}

/// Check a code (six digits) or a recovery code typed by `user`, using it up when it is
/// right. An account without a second factor is refused.
pub fn verify(
    conn: &mut DbConnection,
    key: &SealingKey,
    user: &User,
    typed: &str,
    unix_time: u64,
) -> Result<Verified, AppError> {
    let Some(sealed) = second_factors::table
        .find(user.id)
        .select(second_factors::secret_sealed)
        .first::<String>(conn)
        .optional()?
    else {
        return Ok(Verified::Refused);
    };
    let digits = typed.chars().filter(|c| !c.is_whitespace()).count() == 6
        && typed
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace());
    if digits {
        let secret = key
            .open(&sealed, &context(user.id))
            .ok()
            .and_then(|hex_secret| hex::decode(hex_secret).ok())
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "the second-factor secret of account {} cannot be opened (DMA_SECRET_KEY changed?)",
                    user.id
                ))
            })?;
        let Some(step) = matching_step(&secret, typed, unix_time) else {
            return Ok(Verified::Refused);
        };
        // Later than the last accepted step, or it is a replay.
        let accepted = diesel::update(
            second_factors::table
                .find(user.id)
                .filter(second_factors::last_step.lt(step)),
        )
        .set(second_factors::last_step.eq(step))
        .execute(conn)?;
        return Ok(if accepted == 1 {
            Verified::Code
        } else {
            Verified::Refused
        });
    }
    let normalised = normalise_recovery(typed);
    if normalised.len() != 10 || typed.chars().count() > 40 {
        return Ok(Verified::Refused);
    }
    let used = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user.id))
            .filter(recovery_codes::code_hash.eq(crypto::digest(&normalised)))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Some(Utc::now().naive_utc())))
    .execute(conn)?;
    if used != 1 {
        return Ok(Verified::Refused);
    }
    Ok(Verified::RecoveryCode {
        left: recovery_codes_left(conn, user.id)?,
    })
}

/// Remove an account's second factor and its recovery codes (an administrator's reset, or the
/// person turning it off). Returns whether there was one. `action` names the audit entry.
pub fn remove(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    action: &str,
) -> Result<bool, AppError> {
    let removed = diesel::delete(second_factors::table.filter(second_factors::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    if removed == 1 {
        audit::record(conn, actor, Entry::new(action, "user", user_id))?;
    }
    Ok(removed == 1)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", last six digits.
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(secret, time).unwrap(), code, "{time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_next_and_previous_only() {
        let secret = new_secret();
        let t = 1_700_000_000;
        let code = code_at(&secret, t).unwrap();
        let step = i64::try_from(t / 30).unwrap();
        assert_eq!(matching_step(&secret, &code, t), Some(step));
        assert_eq!(matching_step(&secret, &code, t + 30), Some(step));
        assert_eq!(matching_step(&secret, &code, t - 30), Some(step));
        assert_eq!(matching_step(&secret, &code, t + 90), None);
        assert_eq!(
            matching_step(&secret, &format!("{} {}", &code[..3], &code[3..]), t),
            Some(step)
        );
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(matching_step(&secret, bad, t), None, "{bad}");
        }
    }

    #[test]
    fn recovery_codes_are_readable_and_normalised() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(normalise_recovery(&code.to_uppercase()).len(), 10);
        assert_eq!(
            normalise_recovery(&code.to_uppercase()),
            normalise_recovery(&code)
        );
        assert_ne!(new_recovery_code(), new_recovery_code());
    }
}
