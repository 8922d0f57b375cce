//! Delivery of the outbox. A pass claims due messages in a short transaction, sends them
//! outside it, then records each outcome. Claiming marks a row `sending` with a lease
//! (`locked_until`); on PostgreSQL the claim is `SELECT ... FOR UPDATE SKIP LOCKED`, so any
//! number of app instances can run a worker and no two claim the same message. On SQLite
//! writers queue on the database lock, which makes the claim atomic as well.
//!
//! Leases are short ([`LEASE`]) and renewed every [`RENEW_EVERY`] while the worker holds
//! them, including while a message is being handed to a slow SMTP server, and each batch's
//! lease starts when that batch is claimed. So while its instance is healthy a claim never
//! runs out and no other instance can take the message: at most one delivery per message. When
//! an instance dies (`kill -9`, a lost machine) its claims stop being renewed and are taken
//! by any instance, the restarted one included, within [`LEASE`] (seconds, not minutes).
//! The message it was handing over when it died may have been delivered before the outcome
//! was recorded; that one message can arrive twice, no other. A worker that cannot renew
//! (its database unreachable) stops the delivery in hand before its lease can run out.
//! Leases are compared with each instance's clock, so instances' clocks must agree to within
//! a few seconds (NTP).
//!
//! A failed delivery is retried with exponential backoff (30 s, 1 min, 2 min, ... at most an
//! hour) until `max_attempts`, then the message is `failed`; administrators can resend it
//! from `/admin/outbox`.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::transport::{short_error, Transport};
use super::{STATUS_FAILED, STATUS_QUEUED, STATUS_SENDING, STATUS_SENT};
use crate::config::MailSettings;
use crate::db::schema::email_outbox;
use crate::db::{Db, DbConnection};
use crate::error::AppError;

/// How long a claim holds a message without being renewed: how soon a dead instance's claims
/// can be taken by another.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often a worker renews the claims it holds; well inside [`LEASE`], so a renewal that
/// is late by a database round trip or a little clock skew still lands in time.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Messages claimed at a time.
const BATCH: i64 = 20;
/// How often the worker looks for due messages when nobody wakes it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The first retry waits this long; each further one twice as long as the one before.
const FIRST_RETRY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(60 * 60);

/// A row of `email_outbox`.
#[derive(Debug, Clone, Queryable)]
pub struct OutboxMessage {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub dedupe_key: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// Delivered.
    pub sent: u32,
    /// Given up on: `max_attempts` reached, or the message cannot be built (a bad address).
    pub failed: u32,
    /// Not delivered this time; queued again for later.
    pub retried: u32,
}

static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// The signal that makes the worker look at the outbox now rather than at its next poll.
pub fn notifier() -> &'static Notify {
    &WAKE
}

/// Tell the worker there is mail. Call it after the transaction that queued the message has
/// committed (a wake-up that comes too early only costs a pass; the poll is the fallback).
pub fn wake() {
    WAKE.notify_waiters();
    WAKE.notify_one();
}

/// The wait before retry number `attempts` (1 = the first failure): 30 s doubling, at most an
/// hour.
pub fn retry_delay(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY.saturating_mul(1u32 << exponent).min(MAX_RETRY)
}

/// The condition of the partial index `email_outbox_open`, as its migration writes it.
const OPEN_MESSAGES: &str = "email_outbox.status IN ('queued', 'sending')";

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Rows a worker may take at `now`: queued and due, or stuck in `sending` after their lease.
/// The first condition, in literal SQL, is the partial index `email_outbox_open`'s (its
/// migration says why): a planner uses a partial index only when the query's condition
/// matches it as written, which bound values cannot show.
macro_rules! claimable {
    ($now:expr) => {
        diesel::dsl::sql::<diesel::sql_types::Bool>(OPEN_MESSAGES).and(
            email_outbox::status
                .eq(STATUS_QUEUED)
                .and(email_outbox::next_attempt_at.le($now))
                .or(email_outbox::status
                    .eq(STATUS_SENDING)
                    .and(email_outbox::locked_until.lt($now))),
        )
    };
}

/// Claim up to `limit` due messages until `now + LEASE`; `now` is the time of the claim.
fn claim(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OutboxMessage>, AppError> {
    let lease_end = now + chrono_duration(LEASE);
    let ids: Vec<i64> = match conn {
        // Rows another instance holds are skipped, not waited for.
        DbConnection::Pg(c) => email_outbox::table
            .filter(claimable!(now))
            .order((email_outbox::next_attempt_at, email_outbox::id))
            .limit(limit)
            .select(email_outbox::id)
            .for_update()
            .skip_locked()
            .load(c)?,
        DbConnection::Sqlite(c) => {
            // Take SQLite's write lock before reading, so a worker in another process (a CLI
            // pass beside the server) waits its turn instead of failing to upgrade later.
            diesel::sql_query("UPDATE email_outbox SET id = id WHERE 0").execute(c)?;
            email_outbox::table
                .filter(claimable!(now))
                .order((email_outbox::next_attempt_at, email_outbox::id))
                .limit(limit)
                .select(email_outbox::id)
                .load(c)?
        }
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(
        email_outbox::table
            .filter(email_outbox::id.eq_any(&ids))
            .filter(claimable!(now)),
    )
    .set((
        email_outbox::status.eq(STATUS_SENDING),
        email_outbox::locked_until.eq(Some(lease_end)),
    ))
    .execute(conn)?;
    Ok(email_outbox::table
        .filter(email_outbox::id.eq_any(&ids))
        .filter(email_outbox::status.eq(STATUS_SENDING))
        .filter(email_outbox::locked_until.eq(Some(lease_end)))
        .order((email_outbox::next_attempt_at, email_outbox::id))
        .load(conn)?)
}

/// The rows `ids` as this worker holds them: still `sending` under our lease, which ends
/// at `until`.
macro_rules! ours {
    ($ids:expr, $until:expr) => {
        email_outbox::table
            .filter(email_outbox::id.eq_any($ids))
            .filter(email_outbox::status.eq(STATUS_SENDING))
            .filter(email_outbox::locked_until.eq(Some($until)))
    };
}

/// The claims a worker holds on the rest of its batch, all under one lease.
struct Claims {
    ids: Vec<i64>,
    until: NaiveDateTime,
}

impl Claims {
    /// Extend the lease to `now + LEASE`, for the rows still ours; the others (taken by
    /// another worker after our lease ran out) are dropped from the claims.
    async fn renew(&mut self, db: &Db, now: NaiveDateTime) -> Result<(), AppError> {
        let (ids, until) = (self.ids.clone(), self.until);
        let next = now + chrono_duration(LEASE);
        self.ids = db
            .write(move |conn| {
                diesel::update(ours!(&ids, until))
                    .set(email_outbox::locked_until.eq(Some(next)))
                    .execute(conn)?;
                Ok(ours!(&ids, next)
                    .select(email_outbox::id)
                    .load::<i64>(conn)?)
            })
            .await?;
        self.until = next;
        Ok(())
    }

    fn holds(&self, id: i64) -> bool {
        self.ids.contains(&id)
    }

    /// Done with `id` (its outcome recorded or released).
    fn forget(&mut self, id: i64) {
        self.ids.retain(|i| *i != id);
    }
}

enum Outcome {
    Sent,
    /// A temporary problem: try again later.
    Retry(String),
    /// A message that can never be delivered as it is.
    Permanent(String),
}

/// The RFC 5322 message: multipart/alternative with the text part first, then the HTML.
pub fn build_message(settings: &MailSettings, msg: &OutboxMessage) -> Result<Message, String> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("the sender address is not valid: {e}"))?;
    let to: Mailbox = msg
        .recipient
        .parse()
        .map_err(|e| format!("the recipient address is not valid: {e}"))?;
    let (text, html) = super::open_bodies(
        &settings.sealing_key,
        &msg.recipient,
        &msg.body_text,
        &msg.body_html,
    )
    .map_err(|e| e.to_string())?;
    let domain = from.email.domain().to_string();
    let token = crate::crypto::random_token();
    let unique = token.get(..16).unwrap_or(&token);
    Message::builder()
        .from(from)
        .to(to)
        .subject(msg.subject.clone())
        .message_id(Some(format!("<dma.{}.{unique}@{domain}>", msg.id)))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("the message cannot be built: {e}"))
}

async fn deliver(transport: &Transport, settings: &MailSettings, msg: &OutboxMessage) -> Outcome {
    let message = match build_message(settings, msg) {
        Ok(m) => m,
        Err(e) => return Outcome::Permanent(short_error(&e)),
    };
    match transport.send(message).await {
        Ok(()) => Outcome::Sent,
        Err(e) => Outcome::Retry(e),
    }
}

/// Store what happened to a claimed message; adds it to the report.
fn record(
    conn: &mut DbConnection,
    msg: &OutboxMessage,
    until: NaiveDateTime,
    outcome: &Outcome,
    at: NaiveDateTime,
    max_attempts: u32,
    report: &mut SendReport,
) -> Result<(), AppError> {
    let attempts = msg.attempts.saturating_add(1);
    let changed = match outcome {
        Outcome::Sent => {
            report.sent += 1;
            let changed = diesel::update(ours!([msg.id], until))
                .set((
                    email_outbox::status.eq(STATUS_SENT),
                    email_outbox::attempts.eq(attempts),
                    email_outbox::sent_at.eq(Some(at)),
                    email_outbox::locked_until.eq(None::<NaiveDateTime>),
                    email_outbox::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
            super::purge_sealed(conn, msg.id)?;
            changed
        }
        Outcome::Retry(error) | Outcome::Permanent(error) => {
            let give_up = matches!(outcome, Outcome::Permanent(_))
                || i64::from(attempts) >= i64::from(max_attempts);
            let (status, next) = if give_up {
                report.failed += 1;
                (STATUS_FAILED, at)
            } else {
                report.retried += 1;
                (STATUS_QUEUED, at + chrono_duration(retry_delay(attempts)))
            };
            diesel::update(ours!([msg.id], until))
                .set((
                    email_outbox::status.eq(status),
                    email_outbox::attempts.eq(attempts),
                    email_outbox::next_attempt_at.eq(next),
                    email_outbox::locked_until.eq(None::<NaiveDateTime>),
                    email_outbox::last_error.eq(Some(error.as_str())),
                ))
                .execute(conn)?
        }
    };
    if changed == 0 {
        tracing::warn!(
            message_id = msg.id,
            "mail: the claim on this message ran out before its outcome was recorded"
        );
    }
    Ok(())
}

/// Give back claimed messages that were not attempted (the worker is stopping).
fn release(conn: &mut DbConnection, claims: &Claims) -> Result<(), AppError> {
    diesel::update(ours!(&claims.ids, claims.until))
        .set((
            email_outbox::status.eq(STATUS_QUEUED),
            email_outbox::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// One delivery pass at the current time: every message due now is attempted once.
pub async fn send_pending(
    db: &Db,
    transport: &Transport,
    settings: &MailSettings,
) -> Result<SendReport, AppError> {
    send_pending_at(db, transport, settings, Utc::now().naive_utc()).await
}

/// [`send_pending`] as if the clock read `now` when the pass began (tests move time forward
/// this way). Times recorded during the pass are `now` plus the time the pass has taken.
pub async fn send_pending_at(
    db: &Db,
    transport: &Transport,
    settings: &MailSettings,
    now: NaiveDateTime,
) -> Result<SendReport, AppError> {
    run_pass(db, transport, settings, now, None).await
}

async fn run_pass(
    db: &Db,
    transport: &Transport,
    settings: &MailSettings,
    now: NaiveDateTime,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<SendReport, AppError> {
    let started = Instant::now();
    let clock = move || now + chrono_duration(started.elapsed());
    let stopping = || stop.is_some_and(|rx| *rx.borrow());
    let mut report = SendReport::default();
    // Each claimed message ends sent, failed or due later than `now`, so the loop ends; the
    // bound is a guard against surprises, not a limit in practice.
    for _ in 0..10_000 {
        if stopping() {
            break;
        }
        // The lease runs from the moment of this claim, not from the start of the pass.
        let claimed_at = clock();
        let batch = db.write(move |conn| claim(conn, claimed_at, BATCH)).await?;
        let Some(first) = batch.first() else {
            break;
        };
        let mut claims = Claims {
            ids: batch.iter().map(|m| m.id).collect(),
            until: first.locked_until.unwrap_or(claimed_at),
        };
        for msg in &batch {
            if stopping() {
                db.write(move |conn| release(conn, &claims)).await?;
                return Ok(report);
            }
            // A fresh lease for the rest of the batch before each delivery, and renewals
            // while it runs: the claim outlives any delivery however slow the server.
            claims.renew(db, clock()).await?;
            if !claims.holds(msg.id) {
                tracing::warn!(
                    message_id = msg.id,
                    "mail: the claim on this message was lost; another worker has it"
                );
                continue;
            }
            let outcome =
                deliver_renewing(db, transport, settings, msg, &mut claims, &clock).await?;
            match &outcome {
                Outcome::Sent => {
                    tracing::info!(message_id = msg.id, kind = %msg.kind, "mail: sent")
                }
                Outcome::Retry(e) | Outcome::Permanent(e) => {
                    tracing::warn!(message_id = msg.id, kind = %msg.kind, attempt = msg.attempts + 1, error = %e, "mail: delivery failed")
                }
            }
            let (message, until, at) = (msg.clone(), claims.until, clock());
            let max = settings.max_attempts;
            report = db
                .write(move |conn| {
                    let mut r = report;
                    record(conn, &message, until, &outcome, at, max, &mut r)?;
                    Ok(r)
                })
                .await?;
            claims.forget(msg.id);
        }
    }
    Ok(report)
}

/// Deliver one claimed message, renewing the batch's claims every [`RENEW_EVERY`] while the
/// SMTP server takes its time. If the claim on this message is lost, or cannot be renewed
/// before it would run out, the delivery is abandoned (dropped mid-conversation, so the
/// server discards it) rather than risk a second worker sending it too.
async fn deliver_renewing(
    db: &Db,
    transport: &Transport,
    settings: &MailSettings,
    msg: &OutboxMessage,
    claims: &mut Claims,
    clock: &impl Fn() -> NaiveDateTime,
) -> Result<Outcome, AppError> {
    let delivery = deliver(transport, settings, msg);
    tokio::pin!(delivery);
    loop {
        tokio::select! {
            outcome = &mut delivery => return Ok(outcome),
            () = tokio::time::sleep(RENEW_EVERY) => {
                let renewed = claims.renew(db, clock()).await;
                let lost = match &renewed {
                    Ok(()) => !claims.holds(msg.id),
                    // The lease still has time left: keep going and try again.
                    Err(_) => clock() + chrono_duration(RENEW_EVERY) >= claims.until,
                };
                if lost {
                    renewed?;
                    return Err(AppError::Internal(anyhow::anyhow!(
                        "mail: lost the claim on message {} while delivering it", msg.id
                    )));
                }
            }
        }
    }
}

/// The running delivery worker. [`Worker::stop`] lets it finish the message in hand.
pub struct Worker {
    handle: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Worker {
    /// Ask the worker to stop after the message in hand and wait for it (at most `grace`,
    /// then it is aborted; a message interrupted mid-send is retried after its lease).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut handle = self.handle;
        if tokio::time::timeout(grace, &mut handle).await.is_err() {
            handle.abort();
        }
    }

    /// Stop at once.
    pub fn abort(&self) {
        self.handle.abort();
    }
}

/// Start the delivery worker: a pass now, then whenever [`wake`] is called or every
/// [`POLL_INTERVAL`]. Logs where mail goes.
pub fn spawn_worker(db: Db, settings: MailSettings) -> Result<Worker, AppError> {
    let transport = Transport::from_settings(&settings)?;
    tracing::info!("mail: {}", transport.describe());
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let handle = tokio::spawn(async move {
        loop {
            let pass = run_pass(
                &db,
                &transport,
                &settings,
                Utc::now().naive_utc(),
                Some(&stop_rx),
            )
            .await;
            match pass {
                Ok(report) if report != SendReport::default() => {
                    tracing::info!(
                        sent = report.sent,
                        failed = report.failed,
                        retried = report.retried,
                        "mail: delivery pass"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %crate::error::error_chain(&e), "mail: delivery pass failed")
                }
            }
            if *stop_rx.borrow() {
                break;
            }
            tokio::select! {
                changed = stop_rx.changed() => {
                    // An error means the `Worker` was dropped: nobody can stop us any more.
                    if changed.is_err() {
                        break;
                    }
                }
                _ = WAKE.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            if *stop_rx.borrow() {
                break;
            }
        }
    });
    Ok(Worker {
        handle,
        stop: stop_tx,
    })
}

/// `dma mail send-pending`: one pass, the report printed as JSON.
pub async fn send_pending_command(
    settings: &crate::config::Settings,
) -> anyhow::Result<std::process::ExitCode> {
    let db = settings.open_database().await?;
    let transport = Transport::from_settings(&settings.mail)?;
    eprintln!("mail: {}", transport.describe());
    let report = send_pending(&db, &transport, &settings.mail).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The claim's literal condition names the open statuses, and is the partial index's own
    /// on both backends (a planner uses the index only when they match).
    #[test]
    fn the_claim_names_the_open_index_condition() {
        let open = format!("status IN ('{STATUS_QUEUED}', '{STATUS_SENDING}')");
        assert_eq!(OPEN_MESSAGES, format!("email_outbox.{open}"));
        for migration in [
            include_str!(
                "../../../migrations/sqlite/2026-12-04-200000_outbox_open_messages/up.sql"
            ),
            include_str!(
                "../../../migrations/postgres/2026-12-04-200000_outbox_open_messages/up.sql"
            ),
        ] {
            assert!(migration.contains(&format!("WHERE {open};")), "{migration}");
        }
    }

    fn settings() -> MailSettings {
        MailSettings {
            smtp: None,
            from: "DMA <dma@example.nhs.uk>".into(),
            file_dir: std::env::temp_dir(),
            max_attempts: 3,
            reminder_days: vec![28, 14, 7, 2],
            section_reminder_days: vec![7, 2],
            templates_dir: None,
            sealing_key: crate::crypto::SealingKey::derive(&"k".repeat(32), "test"),
        }
    }

    fn message(recipient: &str) -> OutboxMessage {
        let t = Utc::now().naive_utc();
        OutboxMessage {
            id: 7,
            kind: "invitation".into(),
            recipient: recipient.into(),
            subject: "Hello".into(),
            body_text: "Plain words".into(),
            body_html: "<p>Rich words</p>".into(),
            dedupe_key: None,
            status: STATUS_SENDING.into(),
            attempts: 0,
            next_attempt_at: t,
            locked_until: Some(t),
            last_error: None,
            created_at: t,
            sent_at: None,
        }
    }

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let secs: Vec<u64> = (1..=10).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(retry_delay(i32::MAX).as_secs(), 3600);
        assert_eq!(retry_delay(0).as_secs(), 30);
    }

    #[tokio::test]
    async fn a_message_is_multipart_alternative_with_a_unique_id() {
        let (transport, bag) = Transport::memory();
        let a = build_message(&settings(), &message("ann@example.nhs.uk")).unwrap();
        let b = build_message(&settings(), &message("ann@example.nhs.uk")).unwrap();
        transport.send(a).await.unwrap();
        transport.send(b).await.unwrap();
        let bag = bag.lock().unwrap();
        let raw: Vec<String> = bag
            .iter()
            .map(|(_, raw)| String::from_utf8(raw.clone()).unwrap())
            .collect();
        let id = |r: &str| {
            r.lines()
                .find(|l| l.starts_with("Message-ID:"))
                .unwrap()
                .to_string()
        };
        assert!(id(&raw[0]).contains("@example.nhs.uk>"));
        assert_ne!(id(&raw[0]), id(&raw[1]));
        let text_at = raw[0].find("Plain words").unwrap();
        let html_at = raw[0].find("<p>Rich words</p>").unwrap();
        assert!(raw[0].contains("multipart/alternative"));
        assert!(text_at < html_at, "text first, then HTML");
        assert_eq!(
            bag[0]
                .0
                .to()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["ann@example.nhs.uk"]
        );
    }

    #[test]
    fn a_bad_address_is_a_permanent_failure() {
        let e = build_message(&settings(), &message("not an address")).unwrap_err();
        assert!(e.contains("recipient"), "{e}");
    }
}
