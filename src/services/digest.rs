//! The daily digest (issue 22): a person who would rather not get an email for every change to
//! the sections they work on can choose one email a day listing them instead.
//!
//! Why it looks like this:
//! - **The outbox holds the messages.** A collaboration message ([`KINDS`]) to someone who
//!   chose the digest is queued like any other, in the transaction of the change that causes
//!   it and under its dedupe key, and then marked `held` in that same transaction
//!   ([`hold`]), so the worker (which sends only `queued` rows) never sends it on its own and
//!   "at most once" still rests on the outbox's unique key. Nothing is kept twice.
//! - **One digest a day, once.** From [`DIGEST_HOUR`] (UTC) each day the scheduler's pass
//!   ([`run`]) queues, for each person with held messages, one `digest` email listing them,
//!   with the dedupe key `digest:{address}:{date}`, and marks exactly the listed rows
//!   `digested` only if its digest was the one inserted. Several instances running the pass at
//!   once therefore send one digest, and a message held after the day's digest waits for the
//!   next one rather than being lost or sent twice.
//! - **Only collaboration messages.** Invitations, password resets and second-factor emails
//!   must arrive at once, and the organisation's deadline reminders and receipts are the
//!   record of the cycle; they are never held.
//! - **Switching back loses nothing.** Turning the digest off stops holding new messages;
//!   those already held go out in the next digest.

use chrono::{NaiveDateTime, Timelike, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::db::schema::{email_outbox, email_preferences, users};
use crate::db::{with_concrete_connection, Db, DbConnection};
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::mail::{self, OutgoingEmail, STATUS_QUEUED};
use crate::services::notifications::Notifier;

/// The messages a digest may gather: about sections given out, handed over and due, and
/// improvement plan actions given to someone.
pub const KINDS: &[&str] = &[
    "section_assigned",
    "section_returned",
    "section_ready",
    "section_reminder",
    "plan_action_assigned",
];

/// The outbox status of a message waiting for its recipient's digest, and of one sent in it.
pub const STATUS_HELD: &str = "held";
pub const STATUS_DIGESTED: &str = "digested";

/// The hour (UTC) from which each day's digest goes out.
pub const DIGEST_HOUR: u32 = 7;

/// Whether the person chose the daily digest.
pub fn chooses_digest(conn: &mut DbConnection, user_id: i64) -> Result<bool, AppError> {
    Ok(email_preferences::table
        .find(user_id)
        .select(email_preferences::daily_digest)
        .first::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

/// Record the person's choice (audited as `email.preferences`).
pub fn choose(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    daily_digest: bool,
) -> Result<(), AppError> {
    let before = chooses_digest(conn, user_id)?;
    let now = Utc::now().naive_utc();
    with_concrete_connection!(conn, c => {
        diesel::insert_into(email_preferences::table)
            .values((
                email_preferences::user_id.eq(user_id),
                email_preferences::daily_digest.eq(daily_digest),
                email_preferences::updated_at.eq(now),
            ))
            .on_conflict(email_preferences::user_id)
            .do_update()
            .set((
                email_preferences::daily_digest.eq(daily_digest),
                email_preferences::updated_at.eq(now),
            ))
            .execute(c)?
    });
    if before != daily_digest {
        audit::record(
            conn,
            actor,
            Entry::new("email.preferences", "user", user_id.to_string())
                .before(json!({"daily_digest": before}))
                .after(json!({"daily_digest": daily_digest})),
        )?;
    }
    Ok(())
}

/// Mark `held` the just-queued messages with these dedupe keys that are of a digest kind and
/// addressed to someone who chose the digest. Call it in the transaction that queued them.
pub fn hold(conn: &mut DbConnection, keys: &[String]) -> Result<usize, AppError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let digest_people = users::table
        .inner_join(email_preferences::table)
        .filter(email_preferences::daily_digest.eq(true))
        .select(users::email);
    let mut held = 0;
    for chunk in keys.chunks(500) {
        held += diesel::update(
            email_outbox::table
                .filter(email_outbox::dedupe_key.eq_any(chunk))
                .filter(email_outbox::status.eq(STATUS_QUEUED))
                .filter(email_outbox::kind.eq_any(KINDS))
                .filter(email_outbox::recipient.eq_any(digest_people)),
        )
        .set(email_outbox::status.eq(STATUS_HELD))
        .execute(conn)?;
    }
    Ok(held)
}

/// [`mail::enqueue`] for a collaboration message, held for the recipient's digest when they
/// chose one.
pub fn enqueue(
    conn: &mut DbConnection,
    notifier: &Notifier,
    email: OutgoingEmail<'_>,
) -> Result<bool, AppError> {
    let key = email.dedupe_key.clone();
    let queued = mail::enqueue(conn, notifier.templates(), email)?;
    if let Some(key) = key {
        hold(conn, &[key])?;
    }
    Ok(queued)
}

/// The day's digests, from [`DIGEST_HOUR`]: one per person with held messages, each in its own
/// transaction. How many were queued.
pub async fn run(db: &Db, notifier: &Notifier, now: NaiveDateTime) -> Result<usize, AppError> {
    if now.hour() < DIGEST_HOUR {
        return Ok(0);
    }
    let waiting: Vec<String> = db
        .read(move |conn| {
            Ok(email_outbox::table
                .filter(email_outbox::status.eq(STATUS_HELD))
                .filter(email_outbox::created_at.le(now))
                .select(email_outbox::recipient)
                .distinct()
                .order(email_outbox::recipient)
                .load(conn)?)
        })
        .await?;
    let mut queued = 0;
    for to in waiting {
        let n = notifier.clone();
        queued += db.write(move |conn| send_one(conn, &n, &to, now)).await?;
    }
    Ok(queued)
}

/// Queue one person's digest of the messages held for them until `now`, unless today's is
/// already queued; mark the listed messages digested only when this digest was queued.
fn send_one(
    conn: &mut DbConnection,
    notifier: &Notifier,
    to: &str,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let rows: Vec<(i64, String, NaiveDateTime)> = email_outbox::table
        .filter(email_outbox::recipient.eq(to))
        .filter(email_outbox::status.eq(STATUS_HELD))
        .filter(email_outbox::created_at.le(now))
        .order(email_outbox::id)
        .select((
            email_outbox::id,
            email_outbox::subject,
            email_outbox::created_at,
        ))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let name: String = users::table
        .filter(users::email.eq(to))
        .select(users::name)
        .first::<String>(conn)
        .optional()?
        .unwrap_or_default();
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(_, subject, at)| {
            json!({"subject": subject, "when": at.format("%-d %B at %H:%M").to_string()})
        })
        .collect();
    let inserted = mail::enqueue_at(
        conn,
        notifier.templates(),
        OutgoingEmail {
            kind: "digest",
            to,
            template: "digest",
            data: json!({
                "name": name,
                "count": rows.len(),
                "items": items,
                "link": notifier.absolute("/dashboard"),
                "preferences": notifier.absolute("/account/email"),
            }),
            dedupe_key: Some(format!("digest:{to}:{}", now.date())),
        },
        now,
    )?;
    if !inserted {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    diesel::update(
        email_outbox::table
            .filter(email_outbox::id.eq_any(&ids))
            .filter(email_outbox::status.eq(STATUS_HELD)),
    )
    .set(email_outbox::status.eq(STATUS_DIGESTED))
    .execute(conn)?;
    Ok(1)
}
