//! Email. A message is rendered and written to the `email_outbox` table in the same database
//! transaction as the change that causes it, so a rolled-back change sends nothing and a
//! committed one cannot lose its message. A worker ([`worker`]) delivers queued rows later,
//! over SMTP or, with no SMTP server configured, into `.eml` files.
//!
//! Every message is a triple of templates, `email/NAME.subject`, `email/NAME.text` and
//! `email/NAME.html` (files `templates/email/NAME.subject.hbs` and so on); the HTML bodies share
//! the `email/layout.html` partial. The subject and text templates use triple braces
//! (`{{{name}}}`) because they are not HTML and must not be entity-escaped.

pub mod transport;
pub mod worker;

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

pub use transport::Transport;
pub use worker::{
    notifier, send_pending, send_pending_at, send_pending_command, spawn_worker, wake,
    OutboxMessage, SendReport, Worker,
};

use crate::crypto::SealingKey;
use crate::db::schema::email_outbox;
use crate::db::{with_concrete_connection, DbConnection};
use crate::error::AppError;
use crate::templates::Templates;

/// Every kind of message the service sends (the outbox's `kind`, which is also the name of the
/// template triple that renders it), with what it is in words for the outbox page.
pub const KINDS: &[(&str, &str)] = &[
    ("invitation", "Invitation"),
    ("password_reset", "Password reset"),
    ("already_registered", "Already registered"),
    ("membership_added", "Added to an organisation"),
    ("cycle_opened", "Cycle opened"),
    ("reminder", "Deadline reminder"),
    ("submission_receipt", "Submission receipt"),
    ("score_report", "Score report"),
    ("section_assigned", "Section assigned"),
    ("section_ready", "Section ready for review"),
    ("section_returned", "Section returned"),
    ("section_reminder", "Section reminder"),
    ("plan_action_assigned", "Plan action given"),
    ("digest", "Daily digest"),
    ("review_section_accepted", "Review: section accepted"),
    ("review_query_raised", "Review: query raised"),
    ("review_query_answered", "Review: query answered"),
    ("review_query_closed", "Review: query closed"),
    ("review_completed", "Review completed"),
];

/// `kind` in words; an unknown kind (a row written by a newer version) as itself.
pub fn kind_label(kind: &str) -> &str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(kind, |(_, label)| label)
}

/// A message to queue: which template renders it, for whom, with what data.
pub struct OutgoingEmail<'a> {
    /// What the message is about (`invitation`, `password_reset`, `reminder`, ...), shown on
    /// the outbox page.
    pub kind: &'a str,
    /// The recipient's address.
    pub to: &'a str,
    /// The template triple's name: `invitation` selects `email/invitation.subject` etc.
    pub template: &'a str,
    pub data: serde_json::Value,
    /// When set, at most one message with this key is ever queued (for example
    /// `reminder:{cycle}:{organisation}:14`).
    pub dedupe_key: Option<String>,
}

/// A message rendered from its templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Render the subject, text and HTML of a template triple.
pub fn render(
    templates: &Templates,
    template: &str,
    data: &serde_json::Value,
) -> Result<Rendered, AppError> {
    let subject = templates.render(&format!("email/{template}.subject"), data)?;
    let text = templates.render(&format!("email/{template}.text"), data)?;
    let html = templates.render(&format!("email/{template}.html"), data)?;
    Ok(Rendered {
        // A subject is one line whatever the template's layout.
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text,
        html,
    })
}

/// Render subject/text/html from templates `email/{template}.subject`, `email/{template}.text`,
/// `email/{template}.html` and insert a queued row in the caller's transaction. Returns
/// `Ok(false)` when a row with the same `dedupe_key` already exists (nothing is inserted).
pub fn enqueue(
    conn: &mut DbConnection,
    templates: &Templates,
    email: OutgoingEmail<'_>,
) -> Result<bool, AppError> {
    enqueue_at(conn, templates, email, Utc::now().naive_utc())
}

/// [`enqueue`] for a message whose body carries a secret (an invitation or reset link): the
/// text and HTML bodies are stored sealed with `key` (see [`crate::crypto::SealingKey`]), opened
/// only by the worker as it sends, and emptied once delivered ([`purge_sealed`]), so neither a
/// copy of the database nor the outbox after delivery holds a working link.
pub fn enqueue_sealed(
    conn: &mut DbConnection,
    templates: &Templates,
    key: &SealingKey,
    email: OutgoingEmail<'_>,
) -> Result<bool, AppError> {
    let rendered = render(templates, email.template, &email.data)?;
    let sealed = Rendered {
        text: key.seal(&rendered.text, email.to),
        html: key.seal(&rendered.html, email.to),
        subject: rendered.subject,
    };
    insert(conn, email, sealed, Utc::now().naive_utc())
}

/// The text and HTML bodies of a stored message, opened if they were sealed.
pub fn open_bodies(
    key: &SealingKey,
    recipient: &str,
    text: &str,
    html: &str,
) -> Result<(String, String), crate::crypto::Unsealable> {
    Ok((key.open(text, recipient)?, key.open(html, recipient)?))
}

/// Empty the bodies of a delivered message that was sealed: its link has done its job, and
/// the outbox keeps who was sent what kind of message when, not the secret.
pub fn purge_sealed(conn: &mut DbConnection, id: i64) -> Result<(), AppError> {
    diesel::update(
        email_outbox::table
            .find(id)
            .filter(email_outbox::status.eq(STATUS_SENT))
            .filter(email_outbox::body_text.like("sealed:%")),
    )
    .set((
        email_outbox::body_text.eq(""),
        email_outbox::body_html.eq(""),
    ))
    .execute(conn)?;
    Ok(())
}

/// [`enqueue`] with the clock supplied (the message is due at `now`).
pub fn enqueue_at(
    conn: &mut DbConnection,
    templates: &Templates,
    email: OutgoingEmail<'_>,
    now: NaiveDateTime,
) -> Result<bool, AppError> {
    let rendered = render(templates, email.template, &email.data)?;
    insert(conn, email, rendered, now)
}

fn insert(
    conn: &mut DbConnection,
    email: OutgoingEmail<'_>,
    rendered: Rendered,
    now: NaiveDateTime,
) -> Result<bool, AppError> {
    let row = NewOutboxRow::queued(
        email.kind,
        email.to,
        &rendered,
        email.dedupe_key.as_deref(),
        now,
    );
    Ok(insert_rows(conn, std::slice::from_ref(&row))? == 1)
}

/// How many messages [`enqueue_batch`] writes with one statement: a few hundred rows keep a
/// statement's parameters (10 a row) within both backends' limits and a transaction short.
pub const BATCH: usize = 500;

/// A message to queue in a batch: [`OutgoingEmail`] with owned parts.
#[derive(Debug, Clone)]
pub struct BatchEmail {
    pub kind: &'static str,
    pub to: String,
    pub template: &'static str,
    pub data: serde_json::Value,
    pub dedupe_key: String,
}

/// Render each message and insert them all with multi-row `INSERT ... ON CONFLICT
/// (dedupe_key) DO NOTHING` statements of up to [`BATCH`] rows, in the caller's transaction.
/// Returns how many were inserted: a message whose key is already queued (by an earlier pass,
/// or by another instance at the same moment) is skipped by the database itself, so the unique
/// key alone guarantees "at most once" and nothing is counted twice.
pub fn enqueue_batch(
    conn: &mut DbConnection,
    templates: &Templates,
    emails: &[BatchEmail],
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let mut inserted = 0;
    for chunk in emails.chunks(BATCH) {
        let rendered = chunk
            .iter()
            .map(|e| render(templates, e.template, &e.data))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<NewOutboxRow<'_>> = chunk
            .iter()
            .zip(&rendered)
            .map(|(e, r)| NewOutboxRow::queued(e.kind, &e.to, r, Some(&e.dedupe_key), now))
            .collect();
        inserted += insert_rows(conn, &rows)?;
    }
    Ok(inserted)
}

/// One outbox row as inserted. Every column is given (no `DEFAULT`), which is what lets diesel
/// build SQLite's multi-row `INSERT`.
#[derive(Insertable)]
#[diesel(table_name = email_outbox, treat_none_as_default_value = false)]
struct NewOutboxRow<'a> {
    kind: &'a str,
    recipient: &'a str,
    subject: &'a str,
    body_text: &'a str,
    body_html: &'a str,
    dedupe_key: Option<&'a str>,
    status: &'a str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

impl<'a> NewOutboxRow<'a> {
    fn queued(
        kind: &'a str,
        to: &'a str,
        rendered: &'a Rendered,
        dedupe_key: Option<&'a str>,
        now: NaiveDateTime,
    ) -> Self {
        NewOutboxRow {
            kind,
            recipient: to,
            subject: &rendered.subject,
            body_text: &rendered.text,
            body_html: &rendered.html,
            dedupe_key,
            status: STATUS_QUEUED,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        }
    }
}

/// Insert rows, skipping any whose dedupe key is already queued; the number inserted. On
/// PostgreSQL a concurrent transaction inserting the same key waits for this one and then
/// skips it, so neither fails and the message is queued once.
fn insert_rows(conn: &mut DbConnection, rows: &[NewOutboxRow<'_>]) -> Result<usize, AppError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let inserted = with_concrete_connection!(conn, c => {
        diesel::insert_into(email_outbox::table)
            .values(rows)
            .on_conflict(email_outbox::dedupe_key)
            .do_nothing()
            .execute(c)?
    });
    Ok(inserted)
}

pub const STATUS_QUEUED: &str = "queued";
pub const STATUS_SENDING: &str = "sending";
pub const STATUS_SENT: &str = "sent";
pub const STATUS_FAILED: &str = "failed";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates() -> Templates {
        Templates::load(None).unwrap()
    }

    #[test]
    fn invitation_renders_all_three_parts() {
        let r = render(
            &templates(),
            "invitation",
            &json!({"name": "Ann & Bo", "link": "https://dma.example/set-password?t=a&b", "organisation": "Leeds", "role_label": "Organisation lead", "expires_days": 7}),
        )
        .unwrap();
        assert_eq!(
            r.subject,
            "You have been invited to the digital maturity assessment for Leeds"
        );
        assert!(r.text.contains("Hello Ann & Bo,"), "{}", r.text);
        assert!(r.text.contains("https://dma.example/set-password?t=a&b"));
        assert!(r.html.contains("Hello Ann &amp; Bo,"), "{}", r.html);
        assert!(r.html.contains("#005eb8"));
        assert!(r.html.contains("Set your password"));
    }

    /// Each template triple under templates/email is a kind with a label, and each label's
    /// kind has its templates: a new message cannot reach the outbox page as a raw code.
    #[test]
    fn every_message_kind_has_templates_and_a_label() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/email");
        let mut named: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".subject.hbs").map(str::to_string)
            })
            .collect();
        named.sort();
        let mut kinds: Vec<String> = KINDS.iter().map(|(k, _)| (*k).to_string()).collect();
        kinds.sort();
        assert_eq!(named, kinds);
        assert_eq!(kind_label("section_ready"), "Section ready for review");
        assert_eq!(kind_label("from_a_newer_version"), "from_a_newer_version");
    }

    /// Every message kind, with every documented field and with only the required ones
    /// (strict mode turns a field the template needs but the data lacks into an error).
    #[test]
    fn every_message_renders_with_full_and_minimal_data() {
        let t = templates();
        let cases = [
            (
                "invitation",
                json!({"name": "A", "link": "L", "organisation": "O", "role_label": "R", "expires_days": 7}),
                json!({"name": "A", "link": "L", "role_label": "R", "expires_days": 7}),
            ),
            (
                "password_reset",
                json!({"name": "A", "link": "L", "expires_minutes": 60}),
                json!({"name": "A", "link": "L", "expires_minutes": 60}),
            ),
            (
                "cycle_opened",
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "deadline": "30 June 2026", "link": "L", "questionnaire_title": "Q"}),
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "deadline": "30 June 2026", "link": "L"}),
            ),
            (
                "reminder",
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "deadline": "30 June 2026", "link": "L", "overdue": false, "days_left": 14, "answered": 3, "total": 40}),
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "deadline": "30 June 2026", "link": "L", "days_left": 2}),
            ),
            (
                "reminder",
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "deadline": "30 June 2026", "link": "L", "overdue": true, "days_left": 0}),
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "deadline": "30 June 2026", "link": "L", "overdue": true}),
            ),
            (
                "submission_receipt",
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "submitted_at": "1 May 2026 10:00", "signoff_name": "S", "signoff_job_title": "CIO", "reference": "DMA-1", "link": "L"}),
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "submitted_at": "1 May 2026 10:00", "signoff_name": "S", "link": "L"}),
            ),
            (
                "membership_added",
                json!({"name": "A", "inviter": "I", "organisation": "O", "role_label": "contributor", "link": "L"}),
                json!({"name": "A", "inviter": "I", "organisation": "O", "role_label": "contributor", "link": "L"}),
            ),
            (
                "plan_action_assigned",
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "action": "T", "domain": "D", "given_by": "G", "due_on": "1 May 2026", "link": "L"}),
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "action": "T", "domain": "D", "given_by": "G", "link": "L"}),
            ),
            (
                "score_report",
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "overall": "2.8", "overall_label": "Developing", "pillars": [{"name": "Infrastructure", "score": "3.1"}], "link": "L"}),
                json!({"name": "A", "organisation": "O", "cycle_label": "2026/27", "overall": "2.8", "link": "L"}),
            ),
        ];
        for (name, full, minimal) in cases {
            for data in [full, minimal] {
                let r =
                    render(&t, name, &data).unwrap_or_else(|e| panic!("{name} with {data}: {e:?}"));
                assert!(!r.subject.is_empty() && !r.subject.contains('\n'), "{name}");
                assert!(r.text.contains("Hello A,"), "{name}: {}", r.text);
                assert!(r.html.contains("Hello A,"), "{name}");
                assert!(r.html.starts_with("<!DOCTYPE html>"), "{name}");
                if name != "password_reset" && name != "invitation" {
                    assert!(r.text.contains('O') && r.html.contains('O'), "{name}");
                }
                assert!(
                    r.text.contains("\nL\n") || r.text.ends_with("L\n"),
                    "{name}: {}",
                    r.text
                );
                assert!(r.html.contains("href=\"L\""), "{name}");
            }
        }
        let overdue = render(
            &t,
            "reminder",
            &json!({"name": "A", "organisation": "O", "cycle_label": "C", "deadline": "30 June 2026", "link": "L", "overdue": true}),
        )
        .unwrap();
        assert!(
            overdue.subject.starts_with("Overdue:"),
            "{}",
            overdue.subject
        );
        let one_day = render(
            &t,
            "reminder",
            &json!({"name": "A", "organisation": "O", "cycle_label": "C", "deadline": "D", "link": "L", "days_left": 1}),
        )
        .unwrap();
        assert!(
            one_day.subject.ends_with("due in 1 day"),
            "{}",
            one_day.subject
        );
        assert!(render(&t, "reminder", &json!({"name": "A"})).is_err());
    }
}
