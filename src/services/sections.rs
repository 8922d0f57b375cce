//! Working together on an assessment (issue 22): who has each section, and where each section
//! is in its hand-over. A section is one domain of the question set. An approver gives a
//! section to one or more named people of the organisation (with an optional due date); an
//! assignee says the section is ready for review; the approver marks it reviewed or returns it
//! with a message saying why.
//!
//! Why it looks like this:
//! - **The database holds the rules.** One assignment row per section and person, one status
//!   row per section (unique keys), so two approvers assigning the same person at once make
//!   one row and one email, and the second is told (409).
//! - **Status changes are conditional writes.** Every change names the status revision the
//!   person saw (0 before any change); the update is `WHERE revision = seen`, the first change
//!   of a section an `INSERT ... ON CONFLICT DO NOTHING`. A change against a status someone
//!   else has since changed touches no row and is refused with who changed it to what, never
//!   silently overwritten.
//! - **"Not started" and "in progress" come from the answers.** Only the hand-over states
//!   (ready for review, returned, reviewed) are stored; before any hand-over a section is "in
//!   progress" once anything in it is answered. Answering is not locked to assignees: an
//!   assignment says who is responsible, and anyone who may answer for the organisation still
//!   can (a section handed over can still be corrected).
//! - **Email through the outbox**, in the same transaction: the assignee on assignment, the
//!   assignees when a section is returned, each with a dedupe key naming the assignment or the
//!   status revision, so a retried request cannot send a message twice; the approvers when a
//!   section is ready for review. Reminders to the people holding a section that is not ready
//!   are the scheduler's (`services::notifications`).
//! - **Ready means answered.** A section can be marked ready for review only when every
//!   required question it shows is answered.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::db::schema::{
    answers, assessments, cycles, organisations, section_assignments, section_statuses, users,
};
use crate::db::{with_concrete_connection, DbConnection};
use crate::domain::{scoring, FieldError};
use crate::error::AppError;
use crate::services::assessments::Loaded;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::Action;
use crate::services::auth::users::User;
use crate::services::digest;
use crate::services::mail::OutgoingEmail;
use crate::services::notifications::Notifier;

/// The longest message a returned section may carry.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Where a section is in its hand-over (the NHS task-list statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NotStarted,
    InProgress,
    ReadyForReview,
    Returned,
    Reviewed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::NotStarted,
        Status::InProgress,
        Status::ReadyForReview,
        Status::Returned,
        Status::Reviewed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotStarted => "not_started",
            Status::InProgress => "in_progress",
            Status::ReadyForReview => "ready_for_review",
            Status::Returned => "returned",
            Status::Reviewed => "reviewed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::NotStarted => "Not started",
            Status::InProgress => "In progress",
            Status::ReadyForReview => "Ready for review",
            Status::Returned => "Returned",
            Status::Reviewed => "Reviewed",
        }
    }

    /// The tag colour of the NHS task-list pattern.
    pub fn colour(self) -> &'static str {
        match self {
            Status::NotStarted => "grey",
            Status::InProgress => "blue",
            Status::ReadyForReview => "yellow",
            Status::Returned => "red",
            Status::Reviewed => "green",
        }
    }

    /// Only the hand-over states are stored; the others come from the answers.
    fn is_hand_over(self) -> bool {
        matches!(
            self,
            Status::ReadyForReview | Status::Returned | Status::Reviewed
        )
    }
}

/// A person holding a section.
#[derive(Debug, Clone, Serialize)]
pub struct Assignee {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub due_on: Option<NaiveDate>,
}

/// One section of an assessment as the overview, the section page and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub key: String,
    pub title: String,
    pub status: Status,
    /// The status revision a change must name (0 before the first hand-over).
    pub revision: i64,
    /// Why it was returned (with `returned`).
    pub message: Option<String>,
    pub changed_by: Option<String>,
    pub changed_at: Option<NaiveDateTime>,
    pub answered: usize,
    pub visible: usize,
    pub assignees: Vec<Assignee>,
    /// The hand-over state that lapsed because an answer in the section changed after it
    /// (ready for review, or reviewed): the section is back in progress, and says why.
    pub lapsed: Option<Status>,
}

impl Section {
    pub fn is_assigned_to(&self, user_id: i64) -> bool {
        self.assignees.iter().any(|a| a.user_id == user_id)
    }
}

type StatusRow = (
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    NaiveDateTime,
);

/// Every section of a loaded assessment, in the question set's order.
pub fn sections(conn: &mut DbConnection, loaded: &Loaded) -> Result<Vec<Section>, AppError> {
    let id = loaded.row.id;
    let mut assigned: BTreeMap<String, Vec<Assignee>> = BTreeMap::new();
    let rows: Vec<(String, i64, String, String, Option<NaiveDate>)> = section_assignments::table
        .inner_join(users::table.on(users::id.eq(section_assignments::user_id)))
        .filter(section_assignments::assessment_id.eq(id))
        .order((section_assignments::domain_key, users::name, users::id))
        .select((
            section_assignments::domain_key,
            users::id,
            users::name,
            users::email,
            section_assignments::due_on,
        ))
        .load(conn)?;
    for (key, user_id, name, email, due_on) in rows {
        assigned.entry(key).or_default().push(Assignee {
            user_id,
            name,
            email,
            due_on,
        });
    }
    let stored: BTreeMap<String, StatusRow> = section_statuses::table
        .left_join(users::table.on(users::id.nullable().eq(section_statuses::changed_by)))
        .filter(section_statuses::assessment_id.eq(id))
        .select((
            section_statuses::domain_key,
            section_statuses::status,
            section_statuses::revision,
            section_statuses::message,
            users::name.nullable(),
            section_statuses::changed_at,
        ))
        .load::<StatusRow>(conn)?
        .into_iter()
        .map(|row| (row.0.clone(), row))
        .collect();
    let q = loaded.questionnaire();
    let report = scoring::score(q, &loaded.answers());
    // When each section's answers last changed: a review (or a hand-over) of answers that
    // have changed since is no longer a review of what is there.
    let domain_of: BTreeMap<&str, &str> = q
        .domains
        .iter()
        .flat_map(|d| {
            d.questions
                .iter()
                .map(move |x| (x.key.as_str(), d.key.as_str()))
        })
        .collect();
    let mut last_change: BTreeMap<&str, NaiveDateTime> = BTreeMap::new();
    let changes: Vec<(String, NaiveDateTime)> = answers::table
        .filter(answers::assessment_id.eq(id))
        .select((answers::question_key, answers::updated_at))
        .load(conn)?;
    for (key, at) in &changes {
        if let Some(domain) = domain_of.get(key.as_str()) {
            let latest = last_change.entry(domain).or_insert(*at);
            *latest = (*latest).max(*at);
        }
    }
    Ok(q.domains
        .iter()
        .zip(&report.domains)
        .map(|(d, s)| {
            let row = stored.get(&d.key);
            let derived = if s.answered > 0 {
                Status::InProgress
            } else {
                Status::NotStarted
            };
            let stored_status = row
                .and_then(|r| Status::parse(&r.1))
                .filter(|st| st.is_hand_over());
            let lapsed = stored_status
                .filter(|st| matches!(st, Status::ReadyForReview | Status::Reviewed))
                .filter(|_| {
                    row.zip(last_change.get(d.key.as_str()))
                        .is_some_and(|(r, changed)| *changed > r.5)
                });
            let status = match lapsed {
                Some(_) => derived,
                None => stored_status.unwrap_or(derived),
            };
            Section {
                key: d.key.clone(),
                title: d.title.clone(),
                status,
                revision: row.map_or(0, |r| r.2),
                message: row
                    .filter(|_| status == Status::Returned)
                    .and_then(|r| r.3.clone()),
                changed_by: row.and_then(|r| r.4.clone()),
                changed_at: row.map(|r| r.5),
                answered: s.answered,
                visible: s.visible,
                assignees: assigned.remove(&d.key).unwrap_or_default(),
                lapsed,
            }
        })
        .collect())
}

/// One section of a loaded assessment, or 404.
pub fn section(conn: &mut DbConnection, loaded: &Loaded, key: &str) -> Result<Section, AppError> {
    sections(conn, loaded)?
        .into_iter()
        .find(|s| s.key == key)
        .ok_or(AppError::NotFound)
}

/// Someone a section may be given to.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub email: String,
}

/// The organisation's active people (approvers and contributors, at home or as members), by
/// name.
pub fn people(conn: &mut DbConnection, organisation_id: i64) -> Result<Vec<Person>, AppError> {
    let mut people: Vec<Person> = crate::services::memberships::people(
        conn,
        organisation_id,
        &["org_approver", "org_contributor"],
    )?
    .into_iter()
    .map(|p| Person {
        id: p.id,
        name: p.name,
        email: p.email,
    })
    .collect();
    people.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(people)
}

fn require_open(loaded: &Loaded) -> Result<(), AppError> {
    if loaded.is_open_for_answers() {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "This assessment has been submitted, so its sections can no longer be handed out or over.".into(),
        ))
    }
}

fn entity(loaded: &Loaded, key: &str) -> String {
    format!("{}:{key}", loaded.row.id)
}

/// Give `key` to `user_id` (an approver's act, checked by the caller with `Approve`), and
/// email them. Refused: a person outside the organisation or inactive (422), a due date in
/// the past (422), the person already holding the section (409).
pub fn assign(
    conn: &mut DbConnection,
    actor: &Actor,
    notifier: &Notifier,
    loaded: &Loaded,
    key: &str,
    user_id: i64,
    due_on: Option<NaiveDate>,
) -> Result<(), AppError> {
    require_open(loaded)?;
    let title = section_title(loaded, key)?;
    let org = loaded.row.organisation_id;
    let person = people(conn, org)?
        .into_iter()
        .find(|p| p.id == user_id)
        .ok_or_else(|| {
            AppError::Validation(vec![FieldError::new(
                "person",
                "Choose a person from your organisation",
            )])
        })?;
    let now = Utc::now().naive_utc();
    if due_on.is_some_and(|d| d < now.date()) {
        return Err(AppError::Validation(vec![FieldError::new(
            "due_on",
            "The due date must be today or later",
        )]));
    }
    if due_on.is_some_and(|d| d > loaded.deadline) {
        return Err(AppError::Validation(vec![FieldError::new(
            "due_on",
            format!(
                "The due date must be on or before the assessment's deadline, {}",
                loaded.deadline.format("%-d %B %Y")
            ),
        )]));
    }
    let inserted = with_concrete_connection!(conn, c => {
        diesel::insert_into(section_assignments::table)
            .values((
                section_assignments::assessment_id.eq(loaded.row.id),
                section_assignments::domain_key.eq(key),
                section_assignments::user_id.eq(user_id),
                section_assignments::due_on.eq(due_on),
                section_assignments::assigned_by.eq(actor.user_id),
                section_assignments::created_at.eq(now),
            ))
            .on_conflict((
                section_assignments::assessment_id,
                section_assignments::domain_key,
                section_assignments::user_id,
            ))
            .do_nothing()
            .execute(c)?
    });
    if inserted == 0 {
        return Err(AppError::Conflict(format!(
            "{} already has the section \"{title}\".",
            person.name
        )));
    }
    let assignment_id: i64 = section_assignments::table
        .filter(section_assignments::assessment_id.eq(loaded.row.id))
        .filter(section_assignments::domain_key.eq(key))
        .filter(section_assignments::user_id.eq(user_id))
        .select(section_assignments::id)
        .first(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("section.assign", "section", entity(loaded, key))
            .organisation(Some(org))
            .after(json!({"user": person.email, "due_on": due_on})),
    )?;
    let assigned_by = actor_name(conn, actor)?;
    digest::enqueue(
        conn,
        notifier,
        OutgoingEmail {
            kind: "section_assigned",
            to: &person.email,
            template: "section_assigned",
            data: json!({
                "name": person.name,
                "organisation": loaded.organisation_name,
                "cycle_label": loaded.cycle_label,
                "section": title,
                "assigned_by": assigned_by,
                "due_on": due_on.map(|d| d.format("%-d %B %Y").to_string()),
                "deadline": loaded.deadline.format("%-d %B %Y").to_string(),
                "link": notifier.absolute(&format!("/assessments/{}/sections/{key}", loaded.row.id)),
            }),
            dedupe_key: Some(format!("section_assigned:{assignment_id}")),
        },
    )?;
    Ok(())
}

/// Take `key` away from `user_id` (approvers). A person who no longer holds it: 409.
pub fn unassign(
    conn: &mut DbConnection,
    actor: &Actor,
    loaded: &Loaded,
    key: &str,
    user_id: i64,
) -> Result<(), AppError> {
    require_open(loaded)?;
    let title = section_title(loaded, key)?;
    let removed = diesel::delete(
        section_assignments::table
            .filter(section_assignments::assessment_id.eq(loaded.row.id))
            .filter(section_assignments::domain_key.eq(key))
            .filter(section_assignments::user_id.eq(user_id)),
    )
    .execute(conn)?;
    if removed == 0 {
        return Err(AppError::Conflict(format!(
            "That person does not have the section \"{title}\" (any more)."
        )));
    }
    let email: Option<String> = users::table
        .find(user_id)
        .select(users::email)
        .first(conn)
        .optional()?;
    audit::record(
        conn,
        actor,
        Entry::new("section.unassign", "section", entity(loaded, key))
            .organisation(Some(loaded.row.organisation_id))
            .before(json!({"user": email})),
    )?;
    Ok(())
}

fn section_title(loaded: &Loaded, key: &str) -> Result<String, AppError> {
    loaded
        .questionnaire()
        .domains
        .iter()
        .find(|d| d.key == key)
        .map(|d| d.title.clone())
        .ok_or(AppError::NotFound)
}

/// The name of the person behind `actor` (their label when the account is gone).
pub(crate) fn actor_name(conn: &mut DbConnection, actor: &Actor) -> Result<String, AppError> {
    Ok(match actor.user_id {
        Some(id) => users::table
            .find(id)
            .select(users::name)
            .first::<String>(conn)
            .optional()?
            .unwrap_or_else(|| actor.label.clone()),
        None => actor.label.clone(),
    })
}

/// A requested status change: where to, the revision the person saw, and (to return) why.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub to: Status,
    pub seen_revision: i64,
    pub message: String,
}

/// Move a section on in its hand-over.
///
/// - ready for review: an assignee of the section or an approver, from not started, in
///   progress or returned;
/// - reviewed: an approver, from ready for review;
/// - returned: an approver, from ready for review or reviewed, with a message.
///
/// A change against a revision other than the current one is refused (409) naming who changed
/// the section to what; so is a change the current status does not allow. Audited; a return
/// emails the section's assignees.
pub fn change_status(
    conn: &mut DbConnection,
    actor: &Actor,
    notifier: &Notifier,
    who: &User,
    loaded: &Loaded,
    key: &str,
    change: &StatusChange,
) -> Result<Section, AppError> {
    require_open(loaded)?;
    let org = loaded.row.organisation_id;
    let current = section(conn, loaded, key)?;
    let approver = who.require(Action::Approve(org)).is_ok();
    match change.to {
        Status::ReadyForReview => {
            who.require(Action::Answer(org))?;
            if !approver && !current.is_assigned_to(who.id) {
                return Err(AppError::Forbidden);
            }
        }
        Status::Reviewed | Status::Returned => who.require(Action::Approve(org))?,
        Status::NotStarted | Status::InProgress => {
            return Err(AppError::Validation(vec![FieldError::new(
                "status",
                "A section can be marked ready for review, reviewed or returned",
            )]))
        }
    }
    let message = change.message.trim();
    if change.to == Status::Returned {
        if message.is_empty() {
            return Err(AppError::Validation(vec![FieldError::new(
                "message",
                "Say why the section is being returned",
            )]));
        }
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(AppError::Validation(vec![FieldError::new(
                "message",
                format!("The message must be {MAX_MESSAGE_CHARS} characters or fewer"),
            )]));
        }
    }
    if change.to == Status::ReadyForReview {
        require_answered(loaded, key)?;
    }
    if change.seen_revision != current.revision {
        return Err(stale(&current));
    }
    let allowed = match change.to {
        Status::ReadyForReview => matches!(
            current.status,
            Status::NotStarted | Status::InProgress | Status::Returned
        ),
        Status::Reviewed => current.status == Status::ReadyForReview,
        Status::Returned => matches!(current.status, Status::ReadyForReview | Status::Reviewed),
        Status::NotStarted | Status::InProgress => false,
    };
    if !allowed {
        return Err(AppError::Conflict(format!(
            "The section \"{}\" is {}, so it cannot be marked {}.",
            current.title,
            current.status.label().to_lowercase(),
            change.to.label().to_lowercase()
        )));
    }
    let now = Utc::now().naive_utc();
    let stored_message = (change.to == Status::Returned).then(|| message.to_string());
    let written = if current.revision == 0 {
        with_concrete_connection!(conn, c => {
            diesel::insert_into(section_statuses::table)
                .values((
                    section_statuses::assessment_id.eq(loaded.row.id),
                    section_statuses::domain_key.eq(key),
                    section_statuses::status.eq(change.to.as_str()),
                    section_statuses::revision.eq(1),
                    section_statuses::message.eq(&stored_message),
                    section_statuses::changed_by.eq(Some(who.id)),
                    section_statuses::changed_at.eq(now),
                ))
                .on_conflict((section_statuses::assessment_id, section_statuses::domain_key))
                .do_nothing()
                .execute(c)?
        })
    } else {
        diesel::update(
            section_statuses::table
                .filter(section_statuses::assessment_id.eq(loaded.row.id))
                .filter(section_statuses::domain_key.eq(key))
                .filter(section_statuses::revision.eq(current.revision)),
        )
        .set((
            section_statuses::status.eq(change.to.as_str()),
            section_statuses::revision.eq(current.revision + 1),
            section_statuses::message.eq(&stored_message),
            section_statuses::changed_by.eq(Some(who.id)),
            section_statuses::changed_at.eq(now),
        ))
        .execute(conn)?
    };
    if written == 0 {
        // Someone else's change committed between our read and our write.
        let now_current = section(conn, loaded, key)?;
        return Err(stale(&now_current));
    }
    audit::record(
        conn,
        actor,
        Entry::new("section.status", "section", entity(loaded, key))
            .organisation(Some(org))
            .before(json!({"status": current.status.as_str(), "revision": current.revision}))
            .after(json!({"status": change.to.as_str(), "revision": current.revision + 1, "message": stored_message})),
    )?;
    if change.to == Status::ReadyForReview {
        tell_approvers(conn, notifier, who, loaded, &current, current.revision + 1)?;
    }
    if change.to == Status::Returned {
        for a in &current.assignees {
            digest::enqueue(
                conn,
                notifier,
                OutgoingEmail {
                    kind: "section_returned",
                    to: &a.email,
                    template: "section_returned",
                    data: json!({
                        "name": a.name,
                        "organisation": loaded.organisation_name,
                        "cycle_label": loaded.cycle_label,
                        "section": current.title,
                        "returned_by": who.name,
                        "message": message,
                        "link": notifier.absolute(&format!("/assessments/{}/domains/{key}", loaded.row.id)),
                    }),
                    dedupe_key: Some(format!(
                        "section_returned:{}:{key}:{}:{}",
                        loaded.row.id,
                        current.revision + 1,
                        a.user_id
                    )),
                },
            )?;
        }
    }
    section(conn, loaded, key)
}

/// A section goes for review only when every required question it shows is answered: an
/// approver reviewing half a section would review something else than what is signed off.
/// The refusal names the questions (the sign-off makes the same check of the whole
/// assessment).
fn require_answered(loaded: &Loaded, key: &str) -> Result<(), AppError> {
    let q = loaded.questionnaire();
    let Some(domain) = q.domains.iter().find(|d| d.key == key) else {
        return Err(AppError::NotFound);
    };
    let report = scoring::score(q, &loaded.answers());
    let missing: Vec<&str> = domain
        .questions
        .iter()
        .filter(|x| report.missing_required.contains(&x.key))
        .map(|x| x.text.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let count = missing.len();
    let list = missing
        .iter()
        .map(|t| format!("\u{201c}{t}\u{201d}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(AppError::Validation(vec![FieldError::new(
        "status",
        if count == 1 {
            format!(
                "Answer the required question {list} before marking the section ready for review"
            )
        } else {
            format!("Answer the {count} required questions {list} before marking the section ready for review")
        },
    )]))
}

/// Email the organisation's approvers (but not whoever made the change) that a section is
/// ready for their review, once per status revision and approver.
fn tell_approvers(
    conn: &mut DbConnection,
    notifier: &Notifier,
    who: &User,
    loaded: &Loaded,
    section: &Section,
    revision: i64,
) -> Result<(), AppError> {
    let approvers =
        crate::services::memberships::people(conn, loaded.row.organisation_id, &["org_approver"])?;
    let id = loaded.row.id;
    for crate::services::memberships::Person {
        id: user_id,
        email,
        name,
        ..
    } in approvers.into_iter().filter(|p| p.id != who.id)
    {
        digest::enqueue(
            conn,
            notifier,
            OutgoingEmail {
                kind: "section_ready",
                to: &email,
                template: "section_ready",
                data: json!({
                    "name": name,
                    "organisation": loaded.organisation_name,
                    "cycle_label": loaded.cycle_label,
                    "section": section.title,
                    "ready_by": who.name,
                    "answered": section.answered,
                    "total": section.visible,
                    "link": notifier.absolute(&format!("/assessments/{id}/sections/{}", section.key)),
                }),
                dedupe_key: Some(format!(
                    "section_ready:{id}:{}:{revision}:{user_id}",
                    section.key
                )),
            },
        )?;
    }
    Ok(())
}

/// The refusal of a change made against a status that has since changed.
fn stale(current: &Section) -> AppError {
    let who = current
        .changed_by
        .clone()
        .unwrap_or_else(|| "Someone else".into());
    let when = current
        .changed_at
        .map(|t| format!(" at {}", t.format("%H:%M on %-d %B")))
        .unwrap_or_default();
    AppError::Conflict(format!(
        "{who} changed the section \"{}\" to {}{when} while you were looking at it. Nothing was changed: check the section as it is now and try again.",
        current.title,
        current.status.label().to_lowercase()
    ))
}

/// A section someone holds, for their dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct MySection {
    pub assessment_id: i64,
    pub organisation: String,
    pub cycle_label: String,
    pub setting: String,
    pub section: Section,
    pub due_on: Option<NaiveDate>,
    /// The assessment can still be answered (not submitted).
    pub open: bool,
}

/// The sections `user_id` holds across assessments, newest cycle first. Only assessments of
/// the person's own organisation are listed (an account moved elsewhere keeps no view of its
/// old organisation's work).
pub fn for_person(
    conn: &mut DbConnection,
    user_id: i64,
    organisation_id: i64,
) -> Result<Vec<MySection>, AppError> {
    let held: Vec<(i64, String, Option<NaiveDate>)> = section_assignments::table
        .inner_join(assessments::table)
        .inner_join(cycles::table.on(cycles::id.eq(assessments::cycle_id)))
        .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
        .filter(section_assignments::user_id.eq(user_id))
        .filter(assessments::organisation_id.eq(organisation_id))
        .order((cycles::opens_on.desc(), assessments::id))
        .select((
            section_assignments::assessment_id,
            section_assignments::domain_key,
            section_assignments::due_on,
        ))
        .load(conn)?;
    let mut out = Vec::new();
    let mut cache: BTreeMap<i64, (Loaded, Vec<Section>)> = BTreeMap::new();
    for (assessment_id, key, due_on) in held {
        if let std::collections::btree_map::Entry::Vacant(e) = cache.entry(assessment_id) {
            let loaded = crate::services::assessments::load(conn, assessment_id)?;
            let all = sections(conn, &loaded)?;
            e.insert((loaded, all));
        }
        let Some((loaded, all)) = cache.get(&assessment_id) else {
            continue;
        };
        if let Some(section) = all.iter().find(|s| s.key == key) {
            out.push(MySection {
                assessment_id,
                organisation: loaded.organisation_name.clone(),
                cycle_label: loaded.cycle_label.clone(),
                setting: loaded.row.setting.clone(),
                section: section.clone(),
                due_on,
                open: loaded.is_open_for_answers(),
            });
        }
    }
    Ok(out)
}
