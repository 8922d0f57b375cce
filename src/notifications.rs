//! The emails the assessment lifecycle causes: "cycle opened" to each organisation's approvers,
//! deadline reminders and an overdue notice to organisations that have not submitted, a receipt
//! when an assessment is submitted, and a score report to approvers once results are final.
//!
//! Every message is queued with [`crate::mail::enqueue`] in the caller's transaction, with a
//! `dedupe_key` that names the cycle, organisation, recipient and kind. The outbox's unique
//! index on that key is what makes "at most once per organisation and cycle" hold whatever
//! restarts happen and however many instances run the scheduler at once: a second attempt to
//! queue the same key inserts nothing.
//!
//! Which reminder is due is decided by the pure [`due_reminder`]; [`run_due`] is the one pass
//! that both the scheduler inside `dma serve` and `dma reminders run` execute.
//!
//! Decisions (see ARCHITECTURE.md):
//! - Reminders go to the organisation's active approvers and contributors; "cycle opened" and
//!   score reports to its approvers; the receipt to its approvers (the submitter is one).
//! - When the scheduler was not running at a reminder's date, only the latest reminder due is
//!   sent, not a burst of stale ones; a reminder whose date falls before the cycle opened is
//!   never sent (the "cycle opened" message has just said the same).
//! - Results are final once the organisation's deadline has passed: the score report then goes
//!   out for the current submission. A submission made (or re-made after a reopen) after the
//!   deadline gets its report at the next pass. The key names the submission, so a reopened
//!   and resubmitted assessment reports its new scores once.
//! - A deadline extension does not re-send reminders already sent for that cycle.

use std::collections::{BTreeMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::config::Settings;
use crate::db::schema::{
    assessments, cycles, email_outbox, organisations, questionnaire_versions, score_sets,
    submissions, users,
};
use crate::db::{Db, DbConnection};
use crate::domain::scoring;
use crate::error::AppError;
use crate::mail::{self, OutgoingEmail};
use crate::web::templates::Templates;

/// What the lifecycle's messages need: the templates, the site's address for links and the
/// reminder offsets. Cheap to clone into a database closure.
#[derive(Clone)]
pub struct Notifier {
    templates: Templates,
    base_url: String,
    reminder_days: Vec<u32>,
}

impl Notifier {
    pub fn new(templates: &Templates, settings: &Settings) -> Notifier {
        Notifier {
            templates: templates.clone(),
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            reminder_days: settings.mail.reminder_days.clone(),
        }
    }

    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// A reminder kind: so many days before the deadline, or overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    DaysBefore(u32),
    Overdue,
}

impl Reminder {
    fn key_part(self) -> String {
        match self {
            Reminder::DaysBefore(d) => d.to_string(),
            Reminder::Overdue => "overdue".to_string(),
        }
    }
}

/// The reminder due on `today` for an assessment that opened on `opens_on` and is due on
/// `deadline`, given the configured offsets (days before the deadline). `None` before the
/// first reminder's date, on days with nothing new due, and for offsets whose date falls
/// before the opening. The overdue notice is due from the day after the deadline.
pub fn due_reminder(
    opens_on: NaiveDate,
    deadline: NaiveDate,
    today: NaiveDate,
    offsets: &[u32],
) -> Option<Reminder> {
    if today < opens_on {
        return None;
    }
    let days_left = (deadline - today).num_days();
    if days_left < 0 {
        return Some(Reminder::Overdue);
    }
    // The latest reminder whose date has come: the smallest offset not below days_left.
    offsets
        .iter()
        .copied()
        .filter(|&o| i64::from(o) >= days_left)
        .filter(|&o| (deadline - chrono::Days::new(u64::from(o))) >= opens_on)
        .min()
        .map(Reminder::DaysBefore)
}

/// How many messages a pass queued, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub cycle_opened: usize,
    pub reminders: usize,
    pub overdue: usize,
    pub score_reports: usize,
}

impl PassReport {
    pub fn total(&self) -> usize {
        self.cycle_opened + self.reminders + self.overdue + self.score_reports
    }
}

struct Recipient {
    id: i64,
    email: String,
    name: String,
}

/// Active users of an organisation with one of `roles`.
fn recipients(
    conn: &mut DbConnection,
    organisation_id: i64,
    roles: &[&str],
) -> Result<Vec<Recipient>, AppError> {
    let rows: Vec<(i64, String, String)> = users::table
        .filter(users::organisation_id.eq(organisation_id))
        .filter(users::active.eq(true))
        .filter(users::role.eq_any(roles))
        .order(users::id)
        .select((users::id, users::email, users::name))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, email, name)| Recipient { id, email, name })
        .collect())
}

const APPROVERS: &[&str] = &["org_approver"];
const RESPONDENTS: &[&str] = &["org_approver", "org_contributor"];

/// The dedupe keys already queued that start with `prefix`: one query per cycle and kind
/// instead of one per message.
fn existing_keys(conn: &mut DbConnection, prefix: &str) -> Result<HashSet<String>, AppError> {
    let keys: Vec<Option<String>> = email_outbox::table
        .filter(email_outbox::dedupe_key.like(format!("{prefix}%")))
        .select(email_outbox::dedupe_key)
        .load(conn)?;
    Ok(keys.into_iter().flatten().collect())
}

fn long_date(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// An open cycle's assessment with what its messages say.
struct Open {
    assessment_id: i64,
    organisation_id: i64,
    organisation: String,
    status: String,
    deadline: NaiveDate,
    questionnaire_title: String,
}

fn cycle_assessments(conn: &mut DbConnection, cycle_id: i64) -> Result<Vec<Open>, AppError> {
    type Row = (
        (i64, i64, String, String, Option<NaiveDate>),
        NaiveDate,
        String,
    );
    let rows: Vec<Row> = assessments::table
        .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
        .inner_join(cycles::table)
        .inner_join(questionnaire_versions::table)
        .filter(assessments::cycle_id.eq(cycle_id))
        .order(assessments::id)
        .select((
            (
                assessments::id,
                assessments::organisation_id,
                organisations::name,
                assessments::status,
                assessments::deadline_override,
            ),
            cycles::deadline,
            questionnaire_versions::title,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |((assessment_id, organisation_id, organisation, status, over), deadline, t)| Open {
                assessment_id,
                organisation_id,
                organisation,
                status,
                deadline: over.unwrap_or(deadline),
                questionnaire_title: t,
            },
        )
        .collect())
}

/// Queue "cycle opened" for every approver of every organisation in the cycle that has not
/// had it. Called when the cycle is opened (if it opens today or earlier) and by every pass.
pub fn cycle_opened(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::cycles::Cycle,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    if cycle.opens_on > now.date() || cycle.status != "open" {
        return Ok(0);
    }
    let prefix = format!("cycle_opened:{}:", cycle.id);
    let sent = existing_keys(conn, &prefix)?;
    let mut queued = 0;
    for a in cycle_assessments(conn, cycle.id)? {
        if a.status == "submitted" {
            continue;
        }
        for r in recipients(conn, a.organisation_id, APPROVERS)? {
            let key = format!("{prefix}{}:{}", a.organisation_id, r.id);
            if sent.contains(&key) {
                continue;
            }
            let data = json!({
                "name": r.name,
                "organisation": a.organisation,
                "cycle_label": cycle.label,
                "deadline": long_date(a.deadline),
                "link": notifier.link(&format!("/assessments/{}", a.assessment_id)),
                "questionnaire_title": a.questionnaire_title,
            });
            queued += usize::from(queue(conn, notifier, "cycle_opened", &r, data, key, now)?);
        }
    }
    Ok(queued)
}

fn queue(
    conn: &mut DbConnection,
    notifier: &Notifier,
    template: &str,
    to: &Recipient,
    data: serde_json::Value,
    key: String,
    now: NaiveDateTime,
) -> Result<bool, AppError> {
    mail::enqueue_at(
        conn,
        &notifier.templates,
        OutgoingEmail {
            kind: template,
            to: &to.email,
            template,
            data,
            dedupe_key: Some(key),
        },
        now,
    )
}

/// Queue the reminders due at `now` for one cycle.
fn reminders(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::cycles::Cycle,
    now: NaiveDateTime,
    report: &mut PassReport,
) -> Result<(), AppError> {
    let prefix = format!("reminder:{}:", cycle.id);
    let sent = existing_keys(conn, &prefix)?;
    let today = now.date();
    for a in cycle_assessments(conn, cycle.id)? {
        if a.status == "submitted" {
            continue;
        }
        let Some(due) = due_reminder(cycle.opens_on, a.deadline, today, &notifier.reminder_days)
        else {
            continue;
        };
        for r in recipients(conn, a.organisation_id, RESPONDENTS)? {
            let key = format!("{prefix}{}:{}:{}", a.organisation_id, r.id, due.key_part());
            if sent.contains(&key) {
                continue;
            }
            let mut data = json!({
                "name": r.name,
                "organisation": a.organisation,
                "cycle_label": cycle.label,
                "deadline": long_date(a.deadline),
                "link": notifier.link(&format!("/assessments/{}", a.assessment_id)),
            });
            match due {
                Reminder::Overdue => data["overdue"] = json!(true),
                Reminder::DaysBefore(_) => {
                    data["days_left"] = json!((a.deadline - today).num_days());
                }
            }
            if queue(conn, notifier, "reminder", &r, data, key, now)? {
                match due {
                    Reminder::Overdue => report.overdue += 1,
                    Reminder::DaysBefore(_) => report.reminders += 1,
                }
            }
        }
    }
    Ok(())
}

/// The score summary the receipt and the score report show.
fn score_summary(
    conn: &mut DbConnection,
    assessment_id: i64,
) -> Result<serde_json::Value, AppError> {
    let Some((_, _, report)) = crate::assessments::current_scores(conn, assessment_id)? else {
        return Ok(json!({}));
    };
    let version_id: i64 = assessments::table
        .find(assessment_id)
        .select(assessments::questionnaire_version_id)
        .first(conn)?;
    let questionnaire = crate::questionnaires::get_by_id(conn, version_id)?.questionnaire;
    let shown = |s: Option<f64>| {
        s.map_or("not scored".to_string(), |x| {
            scoring::round_display(x, questionnaire.decimals)
        })
    };
    let titles: BTreeMap<&str, &str> = questionnaire
        .pillars
        .iter()
        .map(|p| (p.key.as_str(), p.title.as_str()))
        .collect();
    let pillars: Vec<serde_json::Value> = report
        .pillars
        .iter()
        .map(|(key, s)| {
            json!({
                "name": titles.get(key.as_str()).copied().unwrap_or(key.as_str()),
                "score": shown(s.score),
            })
        })
        .collect();
    Ok(json!({
        "overall": shown(report.overall.score),
        "overall_label": report.overall.band,
        "pillars": pillars,
    }))
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// Queue the receipt of a submission to the organisation's approvers, in the submitting
/// transaction.
pub fn submission_receipt(
    conn: &mut DbConnection,
    notifier: &Notifier,
    assessment_id: i64,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let (submission_id, reference, signoff_name, job_title, submitted_at): (
        i64,
        String,
        String,
        String,
        NaiveDateTime,
    ) = submissions::table
        .filter(submissions::assessment_id.eq(assessment_id))
        .order(submissions::id.desc())
        .select((
            submissions::id,
            submissions::reference,
            submissions::signoff_name,
            submissions::signoff_job_title,
            submissions::submitted_at,
        ))
        .first(conn)?;
    let (organisation_id, organisation, cycle_label): (i64, String, String) = assessments::table
        .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
        .inner_join(cycles::table)
        .filter(assessments::id.eq(assessment_id))
        .select((
            assessments::organisation_id,
            organisations::name,
            cycles::label,
        ))
        .first(conn)?;
    let summary = score_summary(conn, assessment_id)?;
    let mut queued = 0;
    for r in recipients(conn, organisation_id, APPROVERS)? {
        let mut data = json!({
            "name": r.name,
            "organisation": organisation,
            "cycle_label": cycle_label,
            "submitted_at": submitted_at.format("%-d %B %Y at %H:%M").to_string(),
            "signoff_name": signoff_name,
            "signoff_job_title": job_title,
            "reference": reference,
            "link": notifier.link(&format!("/assessments/{assessment_id}/confirmation")),
        });
        merge(&mut data, summary.clone());
        let key = format!("receipt:{submission_id}:{}", r.id);
        queued += usize::from(queue(
            conn,
            notifier,
            "submission_receipt",
            &r,
            data,
            key,
            now,
        )?);
    }
    Ok(queued)
}

/// Queue score reports for the current submissions of a cycle whose deadline has passed.
fn score_reports(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::cycles::Cycle,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let prefix = format!("score_report:{}:", cycle.id);
    let sent = existing_keys(conn, &prefix)?;
    let today = now.date();
    let mut queued = 0;
    for a in cycle_assessments(conn, cycle.id)? {
        if a.status != "submitted" || a.deadline >= today {
            continue;
        }
        let submission: Option<i64> = score_sets::table
            .filter(score_sets::assessment_id.eq(a.assessment_id))
            .filter(score_sets::is_current.eq(true))
            .select(score_sets::submission_id)
            .first(conn)
            .optional()?;
        let Some(submission_id) = submission else {
            continue;
        };
        let mut summary = None;
        for r in recipients(conn, a.organisation_id, APPROVERS)? {
            let key = format!("{prefix}{}:{submission_id}:{}", a.organisation_id, r.id);
            if sent.contains(&key) {
                continue;
            }
            if summary.is_none() {
                summary = Some(score_summary(conn, a.assessment_id)?);
            }
            let mut data = json!({
                "name": r.name,
                "organisation": a.organisation,
                "cycle_label": cycle.label,
                "link": notifier.link(&format!("/assessments/{}/results", a.assessment_id)),
            });
            merge(&mut data, summary.clone().unwrap_or_default());
            queued += usize::from(queue(conn, notifier, "score_report", &r, data, key, now)?);
        }
    }
    Ok(queued)
}

/// One pass of the scheduler: for every open cycle, queue whatever "cycle opened" messages,
/// reminders, overdue notices and score reports are due at `now` and not yet queued.
pub fn run_due(
    conn: &mut DbConnection,
    notifier: &Notifier,
    now: NaiveDateTime,
) -> Result<PassReport, AppError> {
    let mut report = PassReport::default();
    let open: Vec<crate::cycles::Cycle> = cycles::table
        .filter(cycles::status.eq("open"))
        .order(cycles::id)
        .select(crate::cycles::Cycle::as_select())
        .load(conn)?;
    for cycle in &open {
        report.cycle_opened += cycle_opened(conn, notifier, cycle, now)?;
        reminders(conn, notifier, cycle, now, &mut report)?;
        report.score_reports += score_reports(conn, notifier, cycle, now)?;
    }
    Ok(report)
}

/// How often the scheduler inside `dma serve` looks for due messages. Reminders are by the
/// day, so this only bounds how late in the day one goes out.
pub const SCHEDULER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// One pass in a transaction, logged; mail delivery is woken when anything was queued.
pub async fn run_pass(
    db: &Db,
    notifier: &Notifier,
    now: NaiveDateTime,
) -> Result<PassReport, AppError> {
    let notifier = notifier.clone();
    let report = db.write(move |conn| run_due(conn, &notifier, now)).await?;
    if report.total() > 0 {
        tracing::info!(
            cycle_opened = report.cycle_opened,
            reminders = report.reminders,
            overdue = report.overdue,
            score_reports = report.score_reports,
            "scheduler: messages queued"
        );
        mail::wake();
    }
    Ok(report)
}

/// The scheduler inside `dma serve`: a pass at start-up, then every [`SCHEDULER_INTERVAL`].
/// Several instances may run it against one database: the outbox's unique dedupe key lets
/// only one of them queue each message.
pub fn spawn_scheduler(db: Db, notifier: Notifier) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_pass(&db, &notifier, Utc::now().naive_utc()).await {
                tracing::warn!(error = %crate::error::error_chain(&e), "scheduler: pass failed");
            }
            // The server's one periodic loop also keeps SQLite's planner statistics current
            // as the year's data grows (no work when they are; nothing on PostgreSQL).
            if let Err(e) = db.optimize().await {
                tracing::warn!(error = %crate::error::error_chain(&e), "scheduler: optimize failed");
            }
            tokio::time::sleep(SCHEDULER_INTERVAL).await;
        }
    })
}

/// Parse `--now`: a date (midnight), a local date-time without zone (taken as UTC), or RFC
/// 3339.
pub fn parse_now(text: &str) -> Result<NaiveDateTime, String> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.naive_utc());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN))
        .map_err(|_| {
            format!(
                "--now {text:?} is not a date or time: use 2026-06-30, 2026-06-30T09:00 or \
                 2026-06-30T09:00:00Z"
            )
        })
}

/// `dma reminders run [--now DATETIME]`: one pass, the counts printed as JSON. Delivery is
/// left to the worker in `dma serve` or to `dma mail send-pending`.
pub async fn run_command(
    settings: &Settings,
    now: Option<&str>,
) -> anyhow::Result<std::process::ExitCode> {
    let now = match now.map(parse_now).transpose() {
        Ok(now) => now.unwrap_or_else(|| Utc::now().naive_utc()),
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(std::process::ExitCode::from(2));
        }
    };
    let templates = Templates::load(settings.mail.templates_dir.as_deref())?;
    let notifier = Notifier::new(&templates, settings);
    let db = crate::web::open_database(settings).await?;
    let report = run_pass(&db, &notifier, now).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const OFFSETS: &[u32] = &[28, 14, 7, 2];

    #[test]
    fn nothing_is_due_before_the_first_reminder_date() {
        assert_eq!(
            due_reminder(d("2026-04-01"), d("2026-06-30"), d("2026-06-01"), OFFSETS),
            None
        );
    }

    #[test]
    fn each_offset_is_due_from_its_date_until_the_next() {
        let open = d("2026-04-01");
        let deadline = d("2026-06-30");
        let at = |day| due_reminder(open, deadline, d(day), OFFSETS);
        assert_eq!(at("2026-06-02"), Some(Reminder::DaysBefore(28)));
        assert_eq!(at("2026-06-15"), Some(Reminder::DaysBefore(28)));
        assert_eq!(at("2026-06-16"), Some(Reminder::DaysBefore(14)));
        assert_eq!(at("2026-06-23"), Some(Reminder::DaysBefore(7)));
        assert_eq!(at("2026-06-28"), Some(Reminder::DaysBefore(2)));
        assert_eq!(at("2026-06-30"), Some(Reminder::DaysBefore(2)));
        assert_eq!(at("2026-07-01"), Some(Reminder::Overdue));
    }

    #[test]
    fn a_reminder_dated_before_the_opening_is_never_due() {
        // Opened 10 days before the deadline: the 28 and 14 day reminders do not apply.
        let open = d("2026-06-20");
        let deadline = d("2026-06-30");
        assert_eq!(due_reminder(open, deadline, d("2026-06-20"), OFFSETS), None);
        assert_eq!(
            due_reminder(open, deadline, d("2026-06-23"), OFFSETS),
            Some(Reminder::DaysBefore(7))
        );
        assert_eq!(due_reminder(open, deadline, d("2026-06-19"), OFFSETS), None);
    }

    #[test]
    fn now_accepts_dates_times_and_rfc3339() {
        assert_eq!(
            parse_now("2026-06-30").unwrap(),
            d("2026-06-30").and_hms_opt(0, 0, 0).unwrap()
        );
        assert_eq!(
            parse_now("2026-06-30T09:15").unwrap(),
            d("2026-06-30").and_hms_opt(9, 15, 0).unwrap()
        );
        assert_eq!(
            parse_now("2026-06-30T09:15:00+01:00").unwrap(),
            d("2026-06-30").and_hms_opt(8, 15, 0).unwrap()
        );
        assert!(parse_now("30/06/2026").unwrap_err().contains("30/06/2026"));
    }

    #[test]
    fn offsets_may_be_configured_in_any_order() {
        let open = d("2026-01-01");
        let deadline = d("2026-06-30");
        assert_eq!(
            due_reminder(open, deadline, d("2026-06-25"), &[2, 30, 10]),
            Some(Reminder::DaysBefore(10))
        );
        assert_eq!(due_reminder(open, deadline, d("2026-06-25"), &[]), None);
    }
}
