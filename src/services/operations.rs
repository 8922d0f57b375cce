//! Figures about the whole service that operators watch, read from the database when
//! Prometheus scrapes. They are not counted in memory because several instances share one
//! database: every instance then reports the same outbox depth and session count (aggregate
//! them with `max`, not `sum`), and a restart loses nothing.

use chrono::{NaiveDateTime, Utc};
use diesel::dsl::{count_star, min, sum};
use diesel::prelude::*;

use crate::db::schema::{email_outbox, sessions};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::mail::{STATUS_FAILED, STATUS_QUEUED, STATUS_SENDING, STATUS_SENT};

/// One reading of the service's queues and sessions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Snapshot {
    /// Outbox messages by status (`queued`, `sending`, `sent`, `failed`).
    pub outbox: Vec<(String, i64)>,
    /// Seconds since the oldest unsent (queued or sending) message was written; 0 when none.
    pub oldest_unsent_age_secs: f64,
    /// Unsent messages that have failed at least once and wait for another try.
    pub retrying: i64,
    /// Failed delivery attempts summed over the outbox (sent messages count their retries).
    pub failed_attempts: i64,
    /// Sessions still usable: not past their absolute expiry nor idle too long.
    pub active_sessions: i64,
}

/// Read the snapshot at `now`: a handful of aggregate queries over indexed columns.
/// `idle_minutes` is the session idle timeout, after which a session no longer counts.
pub fn snapshot(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    idle_minutes: i64,
) -> Result<Snapshot, AppError> {
    let by_status: Vec<(String, i64)> = email_outbox::table
        .group_by(email_outbox::status)
        .select((email_outbox::status, count_star()))
        .load(conn)?;
    let mut outbox = Vec::new();
    for status in [STATUS_QUEUED, STATUS_SENDING, STATUS_SENT, STATUS_FAILED] {
        let n = by_status
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        outbox.push((status.to_string(), n));
    }
    let unsent = [STATUS_QUEUED, STATUS_SENDING];
    let oldest: Option<NaiveDateTime> = email_outbox::table
        .filter(email_outbox::status.eq_any(unsent))
        .select(min(email_outbox::created_at))
        .first(conn)?;
    let retrying: i64 = email_outbox::table
        .filter(email_outbox::status.eq_any(unsent))
        .filter(email_outbox::attempts.gt(0))
        .count()
        .get_result(conn)?;
    // Each attempt of a sent message but the last one failed; every attempt of the others did.
    let attempts: Vec<(String, Option<i64>)> = email_outbox::table
        .group_by(email_outbox::status)
        .select((email_outbox::status, sum(email_outbox::attempts)))
        .load(conn)?;
    let sent = outbox
        .iter()
        .find(|(s, _)| s == STATUS_SENT)
        .map_or(0, |(_, n)| *n);
    let failed_attempts = attempts
        .iter()
        .map(|(status, total)| {
            let total = total.unwrap_or(0);
            if status == STATUS_SENT {
                total - sent
            } else {
                total
            }
        })
        .sum::<i64>()
        .max(0);
    let active_sessions: i64 = sessions::table
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - chrono::Duration::minutes(idle_minutes)))
        .count()
        .get_result(conn)?;
    Ok(Snapshot {
        outbox,
        oldest_unsent_age_secs: oldest.map_or(0.0, |t| {
            ((now - t).num_milliseconds().max(0) as f64) / 1000.0
        }),
        retrying,
        failed_attempts,
        active_sessions,
    })
}

/// Read the snapshot now and set the metrics that mirror it.
pub fn record_snapshot(conn: &mut DbConnection, idle_minutes: i64) -> Result<Snapshot, AppError> {
    let snap = snapshot(conn, Utc::now().naive_utc(), idle_minutes)?;
    crate::metrics::record(|m| {
        for (status, n) in &snap.outbox {
            m.outbox_messages
                .with_label_values(&[status.as_str()])
                .set(*n);
        }
        m.outbox_oldest_unsent_age.set(snap.oldest_unsent_age_secs);
        m.outbox_retrying.set(snap.retrying);
        m.outbox_failed_attempts.set(snap.failed_attempts);
        m.sessions_active.set(snap.active_sessions);
    });
    Ok(snap)
}
