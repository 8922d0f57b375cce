//! Server-side sessions. The cookie carries a random token; the database holds its digest,
//! the user, a CSRF token and the times that enforce idle and absolute expiry. Signing in
//! always creates a new session (no fixation); signing out deletes it; changing a password
//! deletes all of the account's sessions.
//!
//! A session has a stage. Only a `full` session is signed in. After a correct password, an
//! account with a second factor gets a `second_factor` session that can do nothing but take
//! the code; an account whose role must have a second factor and has none gets an `enrol`
//! session that can do nothing but set one up. Either kind lasts [`PENDING_MINUTES`], and
//! finishing the step replaces it with a new full session (a new cookie token).
//!
//! `authenticated_at` is when the person last proved who they are (signing in, or confirming
//! again before a sensitive action); the web layer asks again when it is older than
//! `DMA_REAUTH_MINUTES`.
//!
//! The cookie, the request extractors and CSRF checks are the web layer's (`web::auth`); this
//! module is the sessions' storage and the sign-in throttle.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::crypto;
use crate::db::schema::{login_attempts, memberships, sessions, users};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::auth::users::User;

/// How far a sign-in has got. Stored as text in `sessions.stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Signed in.
    Full,
    /// The password was right; the second factor's code is still to come.
    SecondFactor,
    /// The password was right; the role needs a second factor the account has not set up.
    Enrol,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Full => "full",
            Stage::SecondFactor => "second_factor",
            Stage::Enrol => "enrol",
        }
    }

    /// An unknown value (a hand-edited row) counts as the most restricted stage.
    pub fn parse(s: &str) -> Stage {
        match s {
            "full" => Stage::Full,
            "enrol" => Stage::Enrol,
            _ => Stage::SecondFactor,
        }
    }
}

/// How long a half-finished sign-in (a second-factor or enrolment session) lasts.
pub const PENDING_MINUTES: i64 = 10;

/// Create a full session for `user_id`, returning the cookie token.
pub fn create(
    conn: &mut DbConnection,
    user_id: i64,
    absolute_hours: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<String, AppError> {
    create_at_stage(conn, user_id, Stage::Full, absolute_hours, ip, user_agent)
}

/// Create a session at `stage`; a pending one ends after [`PENDING_MINUTES`] whatever
/// `absolute_hours` says.
pub fn create_at_stage(
    conn: &mut DbConnection,
    user_id: i64,
    stage: Stage,
    absolute_hours: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<String, AppError> {
    let token = crypto::random_token();
    let now = Utc::now().naive_utc();
    let lifetime = match stage {
        Stage::Full => Duration::hours(absolute_hours),
        Stage::SecondFactor | Stage::Enrol => Duration::minutes(PENDING_MINUTES),
    };
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(crypto::digest(&token)),
            sessions::user_id.eq(user_id),
            sessions::csrf_token.eq(crypto::random_token()),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(now + lifetime),
            sessions::ip.eq(ip),
            sessions::user_agent.eq(user_agent.map(|ua| ua.chars().take(300).collect::<String>())),
            sessions::stage.eq(stage.as_str()),
            sessions::authenticated_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Replace a pending session by a full one: the pending row is deleted (only if it is still
/// there, so two requests finishing the same step cannot both get a session) and a new full
/// session, with a new token, is created. Returns the new cookie token.
pub fn promote(
    conn: &mut DbConnection,
    pending: &Live,
    absolute_hours: i64,
    ip: Option<&str>,
) -> Result<String, AppError> {
    let deleted = diesel::delete(
        sessions::table
            .find(pending.session_id)
            .filter(sessions::stage.ne(Stage::Full.as_str())),
    )
    .execute(conn)?;
    if deleted != 1 {
        return Err(AppError::Conflict(
            "This sign-in has already been finished or has expired. Sign in again.".into(),
        ));
    }
    let token = create(conn, pending.user.id, absolute_hours, ip, None)?;
    // A sign-in through a provider stays one, so signing out can offer the provider's.
    if let Some(provider) = &pending.sso_provider {
        diesel::update(sessions::table.filter(sessions::token_hash.eq(crypto::digest(&token))))
            .set(sessions::sso_provider.eq(Some(provider)))
            .execute(conn)?;
    }
    Ok(token)
}

/// Record that the person behind a session has just proved who they are again.
pub fn reauthenticated(
    conn: &mut DbConnection,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::update(sessions::table.find(session_id))
        .set(sessions::authenticated_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// End every session of an account, at every stage; returns how many there were.
pub fn revoke_all(conn: &mut DbConnection, user_id: i64) -> Result<usize, AppError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}

pub fn revoke(conn: &mut DbConnection, session_id: i64) -> Result<(), AppError> {
    diesel::delete(sessions::table.find(session_id)).execute(conn)?;
    Ok(())
}

/// A live session found for a cookie token.
pub struct Live {
    pub user: User,
    pub session_id: i64,
    pub csrf_token: String,
    /// The idle timer was last refreshed more than a minute ago: the caller should [`touch`]
    /// the session, as a write (the lookup runs on a read connection, which on SQLite cannot
    /// write).
    pub touch_due: bool,
    pub stage: Stage,
    /// When the person last proved who they are.
    pub authenticated_at: NaiveDateTime,
    /// The single sign-on provider the session was signed in with, if any.
    pub sso_provider: Option<String>,
    /// The account belongs to more than one organisation (it has a membership), so its pages
    /// offer the switcher.
    pub has_places: bool,
}

/// Find the live session, at any stage, for a cookie token. Reads only.
pub fn lookup(
    conn: &mut DbConnection,
    token: &str,
    idle_minutes: i64,
) -> Result<Option<Live>, AppError> {
    let now = Utc::now().naive_utc();
    type Row = (
        i64,
        String,
        NaiveDateTime,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<String>,
        User,
        Option<(i64, i64, String)>,
        bool,
    );
    // Any one membership of the account, for `has_places` (a join, not an `EXISTS` written
    // as SQL text, so the statement stays cacheable: it is prepared once per connection).
    let any = diesel::alias!(memberships as any_membership);
    let found: Option<Row> = sessions::table
        .inner_join(users::table)
        .left_join(memberships::table)
        .left_join(any.on(any.field(memberships::user_id).eq(users::id)))
        .filter(sessions::token_hash.eq(crypto::digest(token)))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - Duration::minutes(idle_minutes)))
        .filter(users::active.eq(true))
        .select((
            sessions::id,
            sessions::csrf_token,
            sessions::last_seen_at,
            sessions::stage,
            sessions::created_at,
            sessions::authenticated_at,
            sessions::sso_provider,
            User::as_select(),
            (
                memberships::user_id,
                memberships::organisation_id,
                memberships::role,
            )
                .nullable(),
            any.field(memberships::id).nullable().is_not_null(),
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(
        |(
            session_id,
            csrf_token,
            last_seen,
            stage,
            created,
            authenticated,
            sso_provider,
            user,
            membership,
            has_places,
        )| {
            // A session working in one of the account's memberships sees the account with
            // that organisation role (services::memberships).
            let user = match membership {
                Some((owner, organisation, role)) if owner == user.id => {
                    crate::services::memberships::as_member(user, organisation, role)
                }
                _ => user,
            };
            Live {
                user,
                session_id,
                csrf_token,
                touch_due: now - last_seen > Duration::minutes(1),
                stage: Stage::parse(&stage),
                authenticated_at: authenticated.unwrap_or(created),
                sso_provider,
                has_places,
            }
        },
    ))
}

/// Refresh a session's idle timer (at most once a minute, see [`Live::touch_due`]). Never
/// moves it backwards, so parallel requests of one session may all touch it harmlessly.
pub fn touch(conn: &mut DbConnection, session_id: i64, now: NaiveDateTime) -> Result<(), AppError> {
    diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::last_seen_at.lt(now)),
    )
    .set(sessions::last_seen_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// Throttling of sign-in, counted in the database so every instance sees the same numbers.
///
/// Guesses are limited without letting a stranger lock the owner out:
/// - one account from one address: [`MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS`] failures in
///   [`THROTTLE_WINDOW_MINUTES`] (the owner mistyping, or one attacker at one account);
/// - one address, any accounts: [`MAX_FAILURES_PER_ADDRESS`] in the same window (one attacker
///   spraying many accounts);
/// - one account, any addresses: [`MAX_FAILURES_PER_ACCOUNT`] in [`ACCOUNT_WINDOW_MINUTES`], a
///   slower limit against guessing spread over many addresses. It does not apply to an address
///   that signed in to the account in the last [`KNOWN_ADDRESS_DAYS`] days, so guesses from
///   elsewhere cannot keep the owner out from where they usually work.
pub const MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 30;
pub const ACCOUNT_WINDOW_MINUTES: i64 = 60;
pub const KNOWN_ADDRESS_DAYS: i64 = 30;

fn attempts_since(
    conn: &mut DbConnection,
    subject: &str,
    since: NaiveDateTime,
    succeeded: bool,
) -> Result<i64, AppError> {
    Ok(login_attempts::table
        .filter(login_attempts::subject.eq(subject))
        .filter(login_attempts::attempted_at.gt(since))
        .filter(login_attempts::succeeded.eq(succeeded))
        .count()
        .get_result(conn)?)
}

/// The subjects under which one sign-in attempt is counted: the account (by digest, so the
/// table holds no addresses), the account from this client address, and the address alone.
#[derive(Debug, Clone)]
pub struct Throttle {
    account: String,
    pair: Option<String>,
    address: Option<String>,
}

impl Throttle {
    pub fn new(email: &str, ip: Option<&str>) -> Throttle {
        let email = email.trim().to_lowercase();
        Throttle {
            account: format!("account:{}", crypto::digest(&email)),
            pair: ip.map(|ip| {
                format!(
                    "account-address:{}",
                    crypto::digest(&format!("{email}\n{ip}"))
                )
            }),
            address: ip.map(|ip| format!("address:{ip}")),
        }
    }

    fn subjects(&self) -> Vec<&str> {
        let mut subjects: Vec<&str> = std::iter::once(self.account.as_str())
            .chain(self.pair.as_deref())
            .chain(self.address.as_deref())
            .collect();
        subjects.sort_unstable();
        subjects
    }
}

pub fn check_throttle(conn: &mut DbConnection, throttle: &Throttle) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    let window = now - Duration::minutes(THROTTLE_WINDOW_MINUTES);
    // Without a client address (never the case behind actix), the account alone is the pair.
    let pair = throttle.pair.as_deref().unwrap_or(&throttle.account);
    let mut blocked =
        attempts_since(conn, pair, window, false)? >= MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS;
    if let Some(address) = &throttle.address {
        blocked =
            blocked || attempts_since(conn, address, window, false)? >= MAX_FAILURES_PER_ADDRESS;
    }
    if !blocked {
        let account_window = now - Duration::minutes(ACCOUNT_WINDOW_MINUTES);
        blocked = attempts_since(conn, &throttle.account, account_window, false)?
            >= MAX_FAILURES_PER_ACCOUNT
            && (throttle.pair.is_none()
                || attempts_since(conn, pair, now - Duration::days(KNOWN_ADDRESS_DAYS), true)?
                    == 0);
    }
    if blocked {
        Err(AppError::TooManyRequests(format!(
            "There have been too many sign-in attempts. Wait {THROTTLE_WINDOW_MINUTES} minutes, then try again, or reset your password."
        )))
    } else {
        Ok(())
    }
}

/// Checks the throttle and, when the attempt may go ahead, records it (under each of the
/// [`Throttle`]'s subjects) as failed until [`attempt_succeeded`] says otherwise; the ids of
/// the rows written come back. Counting and recording in the caller's write transaction means
/// parallel guesses cannot all pass the check before any is recorded: SQLite has one writer,
/// and on PostgreSQL a transaction-scoped advisory lock per subject serialises the claims.
pub fn claim_attempt(conn: &mut DbConnection, throttle: &Throttle) -> Result<Vec<i64>, AppError> {
    let subjects = throttle.subjects();
    if conn.backend() == crate::db::Backend::Postgres {
        for subject in &subjects {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<diesel::sql_types::Text, _>(*subject)
                .execute(conn)?;
        }
    }
    check_throttle(conn, throttle)?;
    let now = Utc::now().naive_utc();
    let mut ids = Vec::with_capacity(subjects.len());
    for subject in subjects {
        ids.push(
            diesel::insert_into(login_attempts::table)
                .values((
                    login_attempts::subject.eq(subject),
                    login_attempts::attempted_at.eq(now),
                    login_attempts::succeeded.eq(false),
                ))
                .returning(login_attempts::id)
                .get_result::<i64>(conn)?,
        );
    }
    Ok(ids)
}

/// Marks attempts [`claim_attempt`] recorded as having succeeded.
pub fn attempt_succeeded(conn: &mut DbConnection, ids: &[i64]) -> Result<(), AppError> {
    diesel::update(login_attempts::table.filter(login_attempts::id.eq_any(ids)))
        .set(login_attempts::succeeded.eq(true))
        .execute(conn)?;
    Ok(())
}

pub fn record_attempt(
    conn: &mut DbConnection,
    subjects: &[&str],
    succeeded: bool,
) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    for subject in subjects {
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::subject.eq(*subject),
                login_attempts::attempted_at.eq(now),
                login_attempts::succeeded.eq(succeeded),
            ))
            .execute(conn)?;
    }
    Ok(())
}
