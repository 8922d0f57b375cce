//! The emails the assessment lifecycle causes: "cycle opened" to each organisation's approvers,
//! deadline reminders and an overdue notice to organisations that have not submitted, a receipt
//! when an assessment is submitted, a score report to approvers once results are final, and
//! reminders to the people holding a section that is not ready for review before it is due.
//!
//! Every message is queued with [`crate::services::mail::enqueue`] in the caller's transaction, with a
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
//! - Closing a cycle makes every submission's results final: its score reports are queued by
//!   the close itself; a closed cycle gets no more reminders.

use std::collections::{BTreeMap, HashMap, HashSet};

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
use crate::services::mail::{self, BatchEmail, OutgoingEmail};
use crate::services::memberships;
use crate::templates::Templates;

/// What the lifecycle's messages need: the templates, the site's address for links and the
/// reminder offsets. Cheap to clone into a database closure.
#[derive(Clone)]
pub struct Notifier {
    templates: Templates,
    base_url: String,
    reminder_days: Vec<u32>,
    section_reminder_days: Vec<u32>,
}

impl Notifier {
    pub fn new(templates: &Templates, settings: &Settings) -> Notifier {
        Notifier {
            templates: templates.clone(),
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            reminder_days: settings.mail.reminder_days.clone(),
            section_reminder_days: settings.mail.section_reminder_days.clone(),
        }
    }

    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The templates, for services that queue messages of their own (`sections`).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// An absolute link to a path of the site, for an email.
    pub fn absolute(&self, path: &str) -> String {
        self.link(path)
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
    pub section_reminders: usize,
    /// Daily digests of held collaboration messages ([`crate::services::digest`]).
    pub digests: usize,
}

impl PassReport {
    pub fn total(&self) -> usize {
        self.cycle_opened
            + self.reminders
            + self.overdue
            + self.score_reports
            + self.section_reminders
            + self.digests
    }
}

struct Recipient {
    id: i64,
    email: String,
    name: String,
}

/// Active people of an organisation with one of `roles` there (at home or as members).
fn recipients(
    conn: &mut DbConnection,
    organisation_id: i64,
    roles: &[&str],
) -> Result<Vec<Recipient>, AppError> {
    Ok(memberships::people(conn, organisation_id, roles)?
        .into_iter()
        .map(|p| Recipient {
            id: p.id,
            email: p.email,
            name: p.name,
        })
        .collect())
}

/// Active people with one of `roles` of every organisation assessed in a cycle, by
/// organisation: a few queries per cycle and kind instead of one per organisation.
fn cycle_recipients(
    conn: &mut DbConnection,
    cycle_id: i64,
    roles: &[&str],
) -> Result<HashMap<i64, Vec<Recipient>>, AppError> {
    let in_cycle: Vec<i64> = assessments::table
        .filter(assessments::cycle_id.eq(cycle_id))
        .select(assessments::organisation_id)
        .distinct()
        .load(conn)?;
    Ok(memberships::people_in(conn, &in_cycle, roles)?
        .into_iter()
        .map(|(organisation, people)| {
            let people = people
                .into_iter()
                .map(|p| Recipient {
                    id: p.id,
                    email: p.email,
                    name: p.name,
                })
                .collect();
            (organisation, people)
        })
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

/// Which of `keys` are already in the outbox (in chunks, whatever their number).
fn queued_among(conn: &mut DbConnection, keys: &[String]) -> Result<HashSet<String>, AppError> {
    let mut found = HashSet::new();
    for chunk in keys.chunks(mail::BATCH) {
        let keys: Vec<Option<String>> = email_outbox::table
            .filter(email_outbox::dedupe_key.eq_any(chunk))
            .select(email_outbox::dedupe_key)
            .load(conn)?;
        found.extend(keys.into_iter().flatten());
    }
    Ok(found)
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

/// The messages a pass has found due and not yet queued, by kind: what [`run_due`] and
/// [`run_pass`] then render and insert, a batch at a time.
#[derive(Debug, Default, Clone)]
pub struct DuePlan {
    pub cycle_opened: Vec<BatchEmail>,
    pub reminders: Vec<BatchEmail>,
    pub overdue: Vec<BatchEmail>,
    pub score_reports: Vec<BatchEmail>,
    pub section_reminders: Vec<BatchEmail>,
}

/// Find the "cycle opened" messages due for every approver of every organisation in the cycle
/// that has not had it.
fn plan_cycle_opened(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::services::cycles::Cycle,
    now: NaiveDateTime,
) -> Result<Vec<BatchEmail>, AppError> {
    if cycle.opens_on > now.date() || cycle.status != "open" {
        return Ok(Vec::new());
    }
    let prefix = format!("cycle_opened:{}:", cycle.id);
    let sent = existing_keys(conn, &prefix)?;
    let people = cycle_recipients(conn, cycle.id, APPROVERS)?;
    let mut due = Vec::new();
    for a in cycle_assessments(conn, cycle.id)? {
        if a.status == "submitted" {
            continue;
        }
        for r in people.get(&a.organisation_id).into_iter().flatten() {
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
            due.push(message("cycle_opened", r, data, key));
        }
    }
    Ok(due)
}

/// Queue "cycle opened" for every approver of every organisation in the cycle that has not
/// had it, in the caller's transaction (the one that opens the cycle).
pub fn cycle_opened(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::services::cycles::Cycle,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let due = plan_cycle_opened(conn, notifier, cycle, now)?;
    mail::enqueue_batch(conn, &notifier.templates, &due, now)
}

fn message(
    template: &'static str,
    to: &Recipient,
    data: serde_json::Value,
    key: String,
) -> BatchEmail {
    BatchEmail {
        kind: template,
        to: to.email.clone(),
        template,
        data,
        dedupe_key: key,
    }
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

/// Find the reminders and overdue notices due at `now` for one cycle.
fn plan_reminders(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::services::cycles::Cycle,
    now: NaiveDateTime,
    plan: &mut DuePlan,
) -> Result<(), AppError> {
    let prefix = format!("reminder:{}:", cycle.id);
    let today = now.date();
    let open: Vec<(Open, Reminder)> = cycle_assessments(conn, cycle.id)?
        .into_iter()
        .filter(|a| a.status != "submitted")
        .filter_map(|a| {
            due_reminder(cycle.opens_on, a.deadline, today, &notifier.reminder_days)
                .map(|due| (a, due))
        })
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let sent = existing_keys(conn, &prefix)?;
    let people = cycle_recipients(conn, cycle.id, RESPONDENTS)?;
    for (a, due) in open {
        for r in people.get(&a.organisation_id).into_iter().flatten() {
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
            let m = message("reminder", r, data, key);
            match due {
                Reminder::Overdue => plan.overdue.push(m),
                Reminder::DaysBefore(_) => plan.reminders.push(m),
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
    let Some((_, _, report)) = crate::services::assessments::current_scores(conn, assessment_id)?
    else {
        return Ok(json!({}));
    };
    let version_id: i64 = assessments::table
        .find(assessment_id)
        .select(assessments::questionnaire_version_id)
        .first(conn)?;
    let questionnaire = crate::services::questionnaires::get_by_id(conn, version_id)?.questionnaire;
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

/// Queue, in the caller's transaction, the score reports of a cycle that has just closed:
/// every current submission's results are final then, whatever its deadline. How many were
/// queued (those already sent are skipped by their dedupe keys).
pub fn score_reports_when_closed(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::services::cycles::Cycle,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let mut plan = DuePlan::default();
    plan_score_reports(conn, notifier, cycle, now, &mut plan)?;
    mail::enqueue_batch(conn, &notifier.templates, &plan.score_reports, now)
}

/// Find the score reports due for the current submissions of a cycle whose deadline has
/// passed, or that is closed.
fn plan_score_reports(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::services::cycles::Cycle,
    now: NaiveDateTime,
    plan: &mut DuePlan,
) -> Result<(), AppError> {
    let prefix = format!("score_report:{}:", cycle.id);
    let today = now.date();
    let finished: Vec<Open> = cycle_assessments(conn, cycle.id)?
        .into_iter()
        .filter(|a| a.status == "submitted" && (a.deadline < today || cycle.closed_at.is_some()))
        .collect();
    if finished.is_empty() {
        return Ok(());
    }
    let sent = existing_keys(conn, &prefix)?;
    let people = cycle_recipients(conn, cycle.id, APPROVERS)?;
    // The current submission of each of the cycle's assessments, in one query.
    let current: HashMap<i64, i64> = score_sets::table
        .inner_join(assessments::table)
        .filter(assessments::cycle_id.eq(cycle.id))
        .filter(score_sets::is_current.eq(true))
        .select((score_sets::assessment_id, score_sets::submission_id))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    for a in finished {
        let Some(&submission_id) = current.get(&a.assessment_id) else {
            continue;
        };
        let mut summary = None;
        for r in people.get(&a.organisation_id).into_iter().flatten() {
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
            plan.score_reports
                .push(message("score_report", r, data, key));
        }
    }
    Ok(())
}

/// Find the reminders due at `now` to the people who hold a section of an unsubmitted
/// assessment of the cycle that is not ready for review: so many days
/// ([`crate::config::MailSettings::section_reminder_days`]) before the section is due (its
/// assignment's due date, else the organisation's deadline). As for the organisation's
/// reminders, only the latest one due is sent, never one dated before the section was given
/// out, and each at most once (`section_reminder:{assignment}:{days}`). Sections are read
/// (with their hand-over state, lapses included) only for assessments with a reminder due
/// and not yet queued, so a pass costs nothing where nobody holds a section.
fn plan_section_reminders(
    conn: &mut DbConnection,
    notifier: &Notifier,
    cycle: &crate::services::cycles::Cycle,
    now: NaiveDateTime,
) -> Result<Vec<BatchEmail>, AppError> {
    use crate::db::schema::section_assignments as sa;
    use crate::services::sections::{self, Status};
    type Held = (
        i64,
        i64,
        String,
        Option<NaiveDate>,
        NaiveDateTime,
        i64,
        String,
        String,
    );
    let today = now.date();
    let open: HashMap<i64, Open> = cycle_assessments(conn, cycle.id)?
        .into_iter()
        .filter(|a| a.status != "submitted")
        .map(|a| (a.assessment_id, a))
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let held: Vec<Held> = sa::table
        .inner_join(assessments::table)
        .inner_join(users::table.on(users::id.eq(sa::user_id)))
        .filter(assessments::cycle_id.eq(cycle.id))
        .filter(users::active.eq(true))
        .order(sa::id)
        .select((
            sa::id,
            sa::assessment_id,
            sa::domain_key,
            sa::due_on,
            sa::created_at,
            users::id,
            users::email,
            users::name,
        ))
        .load(conn)?;
    let prefix = "section_reminder:";
    let mut due: Vec<(Held, u32, NaiveDate)> = Vec::new();
    for row in held {
        let Some(a) = open.get(&row.1) else {
            continue;
        };
        let due_on = row.3.unwrap_or(a.deadline);
        if let Some(Reminder::DaysBefore(days)) =
            due_reminder(row.4.date(), due_on, today, &notifier.section_reminder_days)
        {
            due.push((row, days, due_on));
        }
    }
    if due.is_empty() {
        return Ok(Vec::new());
    }
    // Only the keys these reminders would have: the key names the assignment, not the cycle,
    // so a prefix read would return every section reminder ever queued.
    let candidates: Vec<String> = due
        .iter()
        .map(|(row, days, _)| format!("{prefix}{}:{days}", row.0))
        .collect();
    let sent = queued_among(conn, &candidates)?;
    due.retain(|(row, days, _)| !sent.contains(&format!("{prefix}{}:{days}", row.0)));
    let mut states: HashMap<i64, Vec<sections::Section>> = HashMap::new();
    let mut out = Vec::new();
    for (row, days, due_on) in due {
        let (assignment, assessment_id, key, _, _, user_id, email, name) = row;
        if let std::collections::hash_map::Entry::Vacant(e) = states.entry(assessment_id) {
            let loaded = crate::services::assessments::load(conn, assessment_id)?;
            e.insert(sections::sections(conn, &loaded)?);
        }
        let Some(section) = states
            .get(&assessment_id)
            .and_then(|all| all.iter().find(|s| s.key == key))
        else {
            continue;
        };
        if matches!(section.status, Status::ReadyForReview | Status::Reviewed) {
            continue;
        }
        let Some(a) = open.get(&assessment_id) else {
            continue;
        };
        let to = Recipient {
            id: user_id,
            email,
            name,
        };
        let data = json!({
            "name": to.name,
            "organisation": a.organisation,
            "cycle_label": cycle.label,
            "section": section.title,
            "status": section.status.label().to_lowercase(),
            "answered": section.answered,
            "total": section.visible,
            "due_on": long_date(due_on),
            "days_left": (due_on - today).num_days(),
            "link": notifier.link(&format!("/assessments/{assessment_id}/sections/{key}")),
        });
        let key = format!("{prefix}{assignment}:{days}");
        out.push(message("section_reminder", &to, data, key));
    }
    Ok(out)
}

/// Find, for every open cycle, the "cycle opened" messages, reminders, overdue notices and
/// score reports due at `now` and not yet queued. Reads only: a few queries per cycle and
/// kind, whatever the number of organisations.
pub fn plan_due(
    conn: &mut DbConnection,
    notifier: &Notifier,
    now: NaiveDateTime,
) -> Result<DuePlan, AppError> {
    let mut plan = DuePlan::default();
    let open: Vec<crate::services::cycles::Cycle> = cycles::table
        .filter(cycles::status.eq("open"))
        .order(cycles::id)
        .select(crate::services::cycles::Cycle::as_select())
        .load(conn)?;
    for cycle in &open {
        plan.cycle_opened
            .extend(plan_cycle_opened(conn, notifier, cycle, now)?);
        plan_reminders(conn, notifier, cycle, now, &mut plan)?;
        plan_score_reports(conn, notifier, cycle, now, &mut plan)?;
        plan.section_reminders
            .extend(plan_section_reminders(conn, notifier, cycle, now)?);
    }
    Ok(plan)
}

/// One pass of the scheduler in the caller's transaction: queue whatever [`plan_due`] finds.
/// [`run_pass`] does the same in transactions of [`mail::BATCH`] messages, and also sends the
/// day's digests (each a transaction of its own, so not here).
pub fn run_due(
    conn: &mut DbConnection,
    notifier: &Notifier,
    now: NaiveDateTime,
) -> Result<PassReport, AppError> {
    let plan = plan_due(conn, notifier, now)?;
    let t = &notifier.templates;
    Ok(PassReport {
        cycle_opened: mail::enqueue_batch(conn, t, &plan.cycle_opened, now)?,
        reminders: mail::enqueue_batch(conn, t, &plan.reminders, now)?,
        overdue: mail::enqueue_batch(conn, t, &plan.overdue, now)?,
        score_reports: mail::enqueue_batch(conn, t, &plan.score_reports, now)?,
        section_reminders: {
            let n = mail::enqueue_batch(conn, t, &plan.section_reminders, now)?;
            let keys: Vec<String> = plan
                .section_reminders
                .iter()
                .map(|e| e.dedupe_key.clone())
                .collect();
            crate::services::digest::hold(conn, &keys)?;
            n
        },
        digests: 0,
    })
}

/// How often the scheduler inside `dma serve` looks for due messages. Reminders are by the
/// day, so this only bounds how late in the day one goes out.
pub const SCHEDULER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// One pass, logged; mail delivery is woken when anything was queued. What is due is found
/// with reads, then queued in transactions of at most [`mail::BATCH`] messages, each rendered
/// and written with one multi-row insert that skips keys already queued. A pass at national
/// scale (18,000 "cycle opened" messages) therefore never holds one long transaction (nor, on
/// SQLite, the writer lock) and does work linear in the messages; several instances running
/// it at once queue each message once, because the outbox's unique dedupe key decides.
pub async fn run_pass(
    db: &Db,
    notifier: &Notifier,
    now: NaiveDateTime,
) -> Result<PassReport, AppError> {
    let planner = notifier.clone();
    let plan = db.read(move |conn| plan_due(conn, &planner, now)).await?;
    let report = PassReport {
        cycle_opened: queue_in_batches(db, notifier, plan.cycle_opened, now).await?,
        reminders: queue_in_batches(db, notifier, plan.reminders, now).await?,
        overdue: queue_in_batches(db, notifier, plan.overdue, now).await?,
        score_reports: queue_in_batches(db, notifier, plan.score_reports, now).await?,
        section_reminders: queue_in_batches(db, notifier, plan.section_reminders, now).await?,
        digests: crate::services::digest::run(db, notifier, now).await?,
    };
    if report.total() > 0 {
        tracing::info!(
            cycle_opened = report.cycle_opened,
            reminders = report.reminders,
            overdue = report.overdue,
            score_reports = report.score_reports,
            section_reminders = report.section_reminders,
            digests = report.digests,
            "scheduler: messages queued"
        );
        mail::wake();
    }
    Ok(report)
}

/// Queue messages a transaction of [`mail::BATCH`] at a time; how many were inserted.
async fn queue_in_batches(
    db: &Db,
    notifier: &Notifier,
    mut due: Vec<BatchEmail>,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let mut queued = 0;
    while !due.is_empty() {
        let rest = due.split_off(due.len().min(mail::BATCH));
        let batch = std::mem::replace(&mut due, rest);
        let templates = notifier.templates.clone();
        queued += db
            .write(move |conn| {
                let n = mail::enqueue_batch(conn, &templates, &batch, now)?;
                // Collaboration messages to people who chose the daily digest wait for it,
                // held in the transaction that queued them (so the worker never sees them).
                if batch
                    .iter()
                    .any(|e| crate::services::digest::KINDS.contains(&e.kind))
                {
                    let keys: Vec<String> = batch.iter().map(|e| e.dedupe_key.clone()).collect();
                    crate::services::digest::hold(conn, &keys)?;
                }
                Ok(n)
            })
            .await?;
    }
    Ok(queued)
}

/// The scheduler inside `dma serve`: a pass at start-up, then every [`SCHEDULER_INTERVAL`].
/// Several instances may run it against one database: the outbox's unique dedupe key lets
/// only one of them queue each message.
pub fn spawn_scheduler(
    db: Db,
    notifier: Notifier,
    retention: crate::services::retention::Policy,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = Utc::now().naive_utc();
            let mut outcome = "ok";
            if let Err(e) = run_pass(&db, &notifier, now).await {
                outcome = "failed";
                tracing::warn!(error = %crate::error::error_chain(&e), "scheduler: pass failed");
            }
            // Retention belongs to the same pass: idempotent, so every instance may run it.
            if let Err(e) = crate::services::retention::run(&db, retention, now).await {
                outcome = "failed";
                tracing::warn!(error = %crate::error::error_chain(&e), "scheduler: retention failed");
            }
            crate::metrics::record(|m| m.scheduler_passes.with_label_values(&[outcome]).inc());
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
    let db = settings.open_database().await?;
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
