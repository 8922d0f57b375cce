//! Data retention: personal data that has done its job is removed on a schedule, so the
//! service keeps no more than it needs (UK GDPR storage limitation), while the record of what
//! each organisation submitted stays for good.
//!
//! Purged, each after its configured age (docs/operations.md has the table):
//! - sign-in sessions that have ended (expired or idle), and sign-in attempts;
//! - single-use links (invitations, password resets) that were used or have expired;
//! - the bodies of delivered emails (the row stays: recipient, kind, subject, when it was sent,
//!   and the key that stops a reminder going out twice);
//! - answer history (who changed which answer when), after a number of years, if configured.
//!
//! Never purged: submissions, score sets and scores (with the answers snapshot they were
//! computed from), current answers, accounts, and the audit log (append-only in the database
//! itself). The purge runs in the scheduler's pass on every instance (it is idempotent, one
//! transaction) and from `dma retention run`.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::config::Settings;
use crate::db::schema::{answer_history, email_outbox, login_attempts, one_time_tokens, sessions};
use crate::db::{Db, DbConnection};
use crate::error::AppError;

/// How long each kind of record is kept. Zero days (or years) keeps that kind for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Days after a session ends (or a sign-in attempt is made) before it is deleted.
    pub sessions_days: i64,
    /// The idle timeout, so a session that stopped being used counts as ended.
    pub session_idle_minutes: i64,
    /// Days after a single-use link was used or expired before it is deleted.
    pub links_days: i64,
    /// Days after an email was delivered before its bodies are emptied.
    pub mail_body_days: i64,
    /// Years after an answer change before its history entry is deleted; 0 keeps it.
    pub answer_history_years: i64,
}

impl Policy {
    pub fn from_settings(settings: &Settings) -> Policy {
        Policy {
            sessions_days: settings.retention.sessions_days,
            session_idle_minutes: settings.session_idle_minutes,
            links_days: settings.retention.links_days,
            mail_body_days: settings.retention.mail_body_days,
            answer_history_years: settings.retention.answer_history_years,
        }
    }
}

/// What one purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub sessions: usize,
    pub sign_in_attempts: usize,
    pub links: usize,
    pub mail_bodies: usize,
    pub answer_history: usize,
}

/// Purge everything older than the policy allows at `now`, in the caller's transaction.
pub fn purge(
    conn: &mut DbConnection,
    policy: &Policy,
    now: NaiveDateTime,
) -> Result<Purged, AppError> {
    let mut purged = Purged::default();
    if policy.sessions_days > 0 {
        let cutoff = now - Duration::days(policy.sessions_days);
        let idle_cutoff = cutoff - Duration::minutes(policy.session_idle_minutes);
        purged.sessions = diesel::delete(
            sessions::table.filter(
                sessions::expires_at
                    .lt(cutoff)
                    .or(sessions::last_seen_at.lt(idle_cutoff)),
            ),
        )
        .execute(conn)?;
        purged.sign_in_attempts =
            diesel::delete(login_attempts::table.filter(login_attempts::attempted_at.lt(cutoff)))
                .execute(conn)?;
    }
    if policy.links_days > 0 {
        let cutoff = now - Duration::days(policy.links_days);
        purged.links = diesel::delete(
            one_time_tokens::table.filter(
                one_time_tokens::used_at
                    .lt(cutoff)
                    .or(one_time_tokens::expires_at.lt(cutoff)),
            ),
        )
        .execute(conn)?;
    }
    if policy.mail_body_days > 0 {
        let cutoff = now - Duration::days(policy.mail_body_days);
        purged.mail_bodies = diesel::update(
            email_outbox::table
                .filter(email_outbox::status.eq(crate::services::mail::STATUS_SENT))
                .filter(email_outbox::sent_at.lt(cutoff))
                .filter(
                    email_outbox::body_text
                        .ne("")
                        .or(email_outbox::body_html.ne("")),
                ),
        )
        .set((
            email_outbox::body_text.eq(""),
            email_outbox::body_html.eq(""),
        ))
        .execute(conn)?;
    }
    if policy.answer_history_years > 0 {
        // Calendar years, counted in days: a day either way does not matter here.
        let cutoff = now - Duration::days(365 * policy.answer_history_years);
        purged.answer_history =
            diesel::delete(answer_history::table.filter(answer_history::changed_at.lt(cutoff)))
                .execute(conn)?;
    }
    Ok(purged)
}

/// One purge as a write transaction, counted in the metrics and logged when it removed
/// anything.
pub async fn run(db: &Db, policy: Policy, now: NaiveDateTime) -> Result<Purged, AppError> {
    let purged = db.write(move |conn| purge(conn, &policy, now)).await?;
    crate::metrics::record(|m| {
        for (kind, n) in [
            ("sessions", purged.sessions),
            ("sign_in_attempts", purged.sign_in_attempts),
            ("links", purged.links),
            ("mail_bodies", purged.mail_bodies),
            ("answer_history", purged.answer_history),
        ] {
            m.retention_purged
                .with_label_values(&[kind])
                .inc_by(n as u64);
        }
    });
    if purged != Purged::default() {
        tracing::info!(?purged, "retention: purged old records");
    }
    Ok(purged)
}

/// `dma retention run [--now DATETIME]`: one purge, the counts printed as JSON.
pub async fn run_command(
    settings: &Settings,
    now: Option<&str>,
) -> anyhow::Result<std::process::ExitCode> {
    let now = match now
        .map(crate::services::notifications::parse_now)
        .transpose()
    {
        Ok(now) => now.unwrap_or_else(|| Utc::now().naive_utc()),
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(std::process::ExitCode::from(2));
        }
    };
    let db = settings.open_database().await?;
    let purged = run(&db, Policy::from_settings(settings), now).await?;
    println!("{}", serde_json::to_string_pretty(&purged)?);
    Ok(std::process::ExitCode::SUCCESS)
}
