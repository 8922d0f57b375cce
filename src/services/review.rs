//! Auditor review of a submitted assessment (issue 23): section by section (a section is a
//! domain of the question set, as in [`crate::services::sections`]), an auditor accepts the
//! section or raises a query on one of its questions; the organisation answers the query, and
//! an approver may change the answer in doing so; the auditor closes the query. docs/review.md
//! has the states and the decisions; in short:
//!
//! - **States come from two tables.** `review_sections` holds an auditor's acceptance (one row
//!   per section, a revision bumped by every change); `review_queries` holds queries (open ->
//!   answered -> closed, at most one unclosed per question: a partial unique index). A section
//!   is *queried* while it has an unclosed query, *accepted* when accepted, else *not
//!   reviewed*; the assessment is *reviewed* when every section is accepted, *in review* once
//!   anything has happened, else *not reviewed*.
//! - **Conditional writes.** Accepting names the section revision the auditor saw; raising a
//!   query withdraws the section's acceptance and bumps its revision in the same statement
//!   (an upsert), so an acceptance and a query racing on one section cannot both stand.
//!   Answering and closing name the query's revision. The loser touches no row and gets 409.
//! - **A changed answer is a resubmission.** Changing an answer after submission goes through
//!   the existing services in one transaction: [`assessments::reopen`] (the reason names the
//!   query), [`assessments::save_loaded`] and [`assessments::submit`], so the scores are worked
//!   out again by the pure core and stored as a new current score set while the earlier ones
//!   stay. Only an approver may do it (it re-signs the submission) and must confirm the
//!   declaration; a contributor answers with a message only.
//! - **An acceptance lapses when an answer in its section changes** ([`answers_changed`],
//!   called by `assessments::save_loaded` for a reopened assessment), so an accepted section
//!   always describes the answers that are there.
//! - **Email through the outbox**, in the same transaction, with dedupe keys naming the query
//!   or the section revision: a query raised to the organisation's approvers and contributors,
//!   an answer to the auditor who raised it, a closed query to whoever answered it (else the
//!   approvers), an accepted section and a finished review to the approvers.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::db::schema::{review_queries, review_sections, submissions, users};
use crate::db::{with_concrete_connection, DbConnection};
use crate::domain::answers::Answer;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::assessments::{self, Change, Loaded, SignOff};
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::Action;
use crate::services::auth::users::User;
use crate::services::mail::{self, OutgoingEmail};
use crate::services::notifications::Notifier;

/// The longest message a query or its answer may carry.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Where one section is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionState {
    NotReviewed,
    Accepted,
    Queried,
}

impl SectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SectionState::NotReviewed => "not_reviewed",
            SectionState::Accepted => "accepted",
            SectionState::Queried => "queried",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            SectionState::NotReviewed => "Not reviewed",
            SectionState::Accepted => "Accepted",
            SectionState::Queried => "Queried",
        }
    }
    pub fn colour(self) -> &'static str {
        match self {
            SectionState::NotReviewed => "grey",
            SectionState::Accepted => "green",
            SectionState::Queried => "orange",
        }
    }
}

/// Where a whole assessment is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    NotReviewed,
    InReview,
    Reviewed,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::NotReviewed => "not_reviewed",
            ReviewState::InReview => "in_review",
            ReviewState::Reviewed => "reviewed",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ReviewState::NotReviewed => "Not reviewed",
            ReviewState::InReview => "In review",
            ReviewState::Reviewed => "Reviewed",
        }
    }
    pub fn colour(self) -> &'static str {
        match self {
            ReviewState::NotReviewed => "grey",
            ReviewState::InReview => "yellow",
            ReviewState::Reviewed => "green",
        }
    }
    /// The state from counts: sections accepted out of how many, and whether anything at
    /// all has happened (an acceptance, withdrawn or not, or a query). Reports and exports
    /// use this with counts from SQL; [`review`] with the rows.
    pub fn from_counts(accepted: usize, sections: usize, any_activity: bool) -> ReviewState {
        if sections > 0 && accepted >= sections {
            ReviewState::Reviewed
        } else if any_activity || accepted > 0 {
            ReviewState::InReview
        } else {
            ReviewState::NotReviewed
        }
    }
}

/// Where a query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryStatus {
    Open,
    Answered,
    Closed,
}

impl QueryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryStatus::Open => "open",
            QueryStatus::Answered => "answered",
            QueryStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<QueryStatus> {
        [
            QueryStatus::Open,
            QueryStatus::Answered,
            QueryStatus::Closed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            QueryStatus::Open => "Waiting for the organisation",
            QueryStatus::Answered => "Answered",
            QueryStatus::Closed => "Closed",
        }
    }
    pub fn colour(self) -> &'static str {
        match self {
            QueryStatus::Open => "orange",
            QueryStatus::Answered => "blue",
            QueryStatus::Closed => "grey",
        }
    }
}

/// One query as the pages and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Query {
    pub id: i64,
    pub domain_key: String,
    pub question_key: String,
    pub question_text: String,
    pub status: QueryStatus,
    /// The revision an answer or a close must name.
    pub revision: i64,
    pub message: String,
    pub raised_by_id: i64,
    pub raised_by: String,
    pub raised_at: NaiveDateTime,
    pub response: Option<String>,
    /// The answer was changed (and the assessment resubmitted) in reply.
    pub answer_changed: bool,
    pub answered_by: Option<String>,
    pub answered_at: Option<NaiveDateTime>,
    pub closed_by: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
}

/// One section's review.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewSection {
    pub key: String,
    pub title: String,
    pub state: SectionState,
    /// The revision an acceptance must name (0 before anything happened to the section).
    pub revision: i64,
    pub accepted_by: Option<String>,
    pub accepted_at: Option<NaiveDateTime>,
    /// Every query on the section, oldest first.
    pub queries: Vec<Query>,
}

/// An assessment's review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub state: ReviewState,
    pub sections: Vec<ReviewSection>,
}

impl Review {
    pub fn query(&self, id: i64) -> Option<&Query> {
        self.sections
            .iter()
            .flat_map(|s| &s.queries)
            .find(|q| q.id == id)
    }
    /// Queries waiting for the organisation.
    pub fn open_queries(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|s| &s.queries)
            .filter(|q| q.status == QueryStatus::Open)
            .count()
    }
}

type QueryRow = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    i64,
    NaiveDateTime,
    Option<String>,
    bool,
    Option<i64>,
    Option<NaiveDateTime>,
    Option<i64>,
    Option<NaiveDateTime>,
);

fn names(conn: &mut DbConnection, ids: BTreeSet<i64>) -> Result<BTreeMap<i64, String>, AppError> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

/// The review of a loaded assessment, its sections in the question set's order.
pub fn review(conn: &mut DbConnection, loaded: &Loaded) -> Result<Review, AppError> {
    let id = loaded.row.id;
    let accepted: Vec<(String, bool, i64, Option<i64>, NaiveDateTime)> = review_sections::table
        .filter(review_sections::assessment_id.eq(id))
        .select((
            review_sections::domain_key,
            review_sections::accepted,
            review_sections::revision,
            review_sections::changed_by,
            review_sections::changed_at,
        ))
        .load(conn)?;
    let rows: Vec<QueryRow> = review_queries::table
        .filter(review_queries::assessment_id.eq(id))
        .order(review_queries::id)
        .select((
            review_queries::id,
            review_queries::domain_key,
            review_queries::question_key,
            review_queries::status,
            review_queries::revision,
            review_queries::message,
            review_queries::raised_by,
            review_queries::raised_at,
            review_queries::response,
            review_queries::answer_changed,
            review_queries::answered_by,
            review_queries::answered_at,
            review_queries::closed_by,
            review_queries::closed_at,
        ))
        .load(conn)?;
    let mut ids: BTreeSet<i64> = accepted.iter().filter_map(|r| r.3).collect();
    for r in &rows {
        ids.insert(r.6);
        ids.extend(r.10);
        ids.extend(r.12);
    }
    let names = names(conn, ids)?;
    let name = |id: Option<i64>| id.and_then(|i| names.get(&i).cloned());
    let q = loaded.questionnaire();
    let mut by_domain: BTreeMap<String, Vec<Query>> = BTreeMap::new();
    for r in rows {
        let query = Query {
            id: r.0,
            question_text: q
                .question(&r.2)
                .map_or_else(|| r.2.clone(), |x| x.text.clone()),
            domain_key: r.1,
            question_key: r.2,
            status: QueryStatus::parse(&r.3).unwrap_or(QueryStatus::Open),
            revision: r.4,
            message: r.5,
            raised_by_id: r.6,
            raised_by: name(Some(r.6)).unwrap_or_default(),
            raised_at: r.7,
            response: r.8,
            answer_changed: r.9,
            answered_by: name(r.10),
            answered_at: r.11,
            closed_by: name(r.12),
            closed_at: r.13,
        };
        by_domain
            .entry(query.domain_key.clone())
            .or_default()
            .push(query);
    }
    let stored: BTreeMap<&str, &(String, bool, i64, Option<i64>, NaiveDateTime)> =
        accepted.iter().map(|r| (r.0.as_str(), r)).collect();
    let sections: Vec<ReviewSection> = q
        .domains
        .iter()
        .map(|d| {
            let row = stored.get(d.key.as_str());
            let queries = by_domain.remove(&d.key).unwrap_or_default();
            let unclosed = queries.iter().any(|x| x.status != QueryStatus::Closed);
            let is_accepted = row.is_some_and(|r| r.1);
            let state = if unclosed {
                SectionState::Queried
            } else if is_accepted {
                SectionState::Accepted
            } else {
                SectionState::NotReviewed
            };
            ReviewSection {
                key: d.key.clone(),
                title: d.title.clone(),
                state,
                revision: row.map_or(0, |r| r.2),
                accepted_by: row.filter(|r| r.1).and_then(|r| name(r.3)),
                accepted_at: row.filter(|r| r.1).map(|r| r.4),
                queries,
            }
        })
        .collect();
    let accepted_count = sections
        .iter()
        .filter(|s| s.state == SectionState::Accepted)
        .count();
    let activity = !accepted.is_empty() || sections.iter().any(|s| !s.queries.is_empty());
    Ok(Review {
        state: ReviewState::from_counts(accepted_count, sections.len(), activity),
        sections,
    })
}

/// Review states of many assessments at once, for reports and exports: from the number of
/// sections accepted (an accepted section has no unclosed query, by construction) and
/// whether anything happened, with `sections` the number of domains of each assessment's
/// version.
pub fn states(
    conn: &mut DbConnection,
    sections: &BTreeMap<i64, usize>,
) -> Result<BTreeMap<i64, ReviewState>, AppError> {
    let mut accepted: BTreeMap<i64, usize> = BTreeMap::new();
    let mut active: BTreeSet<i64> = BTreeSet::new();
    let ids: Vec<i64> = sections.keys().copied().collect();
    for chunk in ids.chunks(crate::services::reports::IN_CHUNK) {
        let rows: Vec<(i64, bool)> = review_sections::table
            .filter(review_sections::assessment_id.eq_any(chunk))
            .select((review_sections::assessment_id, review_sections::accepted))
            .load(conn)?;
        for (id, is_accepted) in rows {
            active.insert(id);
            if is_accepted {
                *accepted.entry(id).or_default() += 1;
            }
        }
        let queried: Vec<i64> = review_queries::table
            .filter(review_queries::assessment_id.eq_any(chunk))
            .select(review_queries::assessment_id)
            .distinct()
            .load(conn)?;
        active.extend(queried);
    }
    Ok(sections
        .iter()
        .map(|(id, n)| {
            let a = accepted.get(id).copied().unwrap_or(0);
            (*id, ReviewState::from_counts(a, *n, active.contains(id)))
        })
        .collect())
}

fn require_submitted(loaded: &Loaded) -> Result<(), AppError> {
    if loaded.row.status == "submitted" {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "Only a submitted assessment can be reviewed: this one is not submitted (or has been reopened).".into(),
        ))
    }
}

fn message_ok(field: &str, text: &str, missing: &str) -> Result<String, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(field, missing)]));
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(AppError::Validation(vec![FieldError::new(
            field,
            format!("The message must be {MAX_MESSAGE_CHARS} characters or fewer"),
        )]));
    }
    Ok(text.to_string())
}

fn section_of<'a>(
    loaded: &'a Loaded,
    key: &str,
) -> Result<&'a crate::domain::questionnaire::Domain, AppError> {
    loaded
        .questionnaire()
        .domains
        .iter()
        .find(|d| d.key == key)
        .ok_or(AppError::NotFound)
}

fn entity(loaded: &Loaded, key: &str) -> String {
    format!("{}:{key}", loaded.row.id)
}

/// Active people of the organisation with one of `roles` there: (id, email, name).
fn people(
    conn: &mut DbConnection,
    organisation_id: i64,
    roles: &[&str],
) -> Result<Vec<(i64, String, String)>, AppError> {
    Ok(
        crate::services::memberships::people(conn, organisation_id, roles)?
            .into_iter()
            .map(|p| (p.id, p.email, p.name))
            .collect(),
    )
}

const APPROVERS: &[&str] = &["org_approver"];
const RESPONDENTS: &[&str] = &["org_approver", "org_contributor"];

/// Common data of every review email.
fn mail_data(loaded: &Loaded, name: &str, link: String) -> serde_json::Value {
    json!({
        "name": name,
        "organisation": loaded.organisation_name,
        "cycle_label": loaded.cycle_label,
        "link": link,
    })
}

fn send(
    conn: &mut DbConnection,
    notifier: &Notifier,
    kind: &'static str,
    to: &str,
    data: serde_json::Value,
    dedupe_key: String,
) -> Result<(), AppError> {
    mail::enqueue(
        conn,
        notifier.templates(),
        OutgoingEmail {
            kind,
            to,
            template: kind,
            data,
            dedupe_key: Some(dedupe_key),
        },
    )?;
    Ok(())
}

fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn review_link(notifier: &Notifier, loaded: &Loaded) -> String {
    notifier.absolute(&format!("/assessments/{}/audit", loaded.row.id))
}

fn query_link(notifier: &Notifier, loaded: &Loaded, query: i64) -> String {
    notifier.absolute(&format!(
        "/assessments/{}/audit/queries/{query}",
        loaded.row.id
    ))
}

/// The refusal of a change made against a section or query that has since changed.
fn stale(what: &str) -> AppError {
    AppError::Conflict(format!(
        "{what} was changed by someone else while you were looking at it. Nothing was changed: check it as it is now and try again."
    ))
}

/// Accept a section (auditors, `Review`), naming the section revision seen. Refused: the
/// assessment not submitted (409), an unclosed query in the section (409), a revision other
/// than the current one (409). Emails the approvers, and again when this acceptance finishes
/// the review.
#[allow(clippy::too_many_arguments)]
pub fn accept(
    conn: &mut DbConnection,
    actor: &Actor,
    notifier: &Notifier,
    who: &User,
    loaded: &Loaded,
    key: &str,
    seen_revision: i64,
) -> Result<Review, AppError> {
    who.require(Action::Review)?;
    let domain = section_of(loaded, key)?;
    require_submitted(loaded)?;
    let current = review(conn, loaded)?;
    let Some(section) = current.sections.iter().find(|s| s.key == key) else {
        return Err(AppError::NotFound);
    };
    if section.state == SectionState::Queried {
        return Err(AppError::Conflict(format!(
            "The section \"{}\" has a query that is not closed: close it before accepting the section.",
            domain.title
        )));
    }
    if section.state == SectionState::Accepted {
        return Err(AppError::Conflict(format!(
            "The section \"{}\" is already accepted.",
            domain.title
        )));
    }
    if seen_revision != section.revision {
        return Err(stale(&format!("The section \"{}\"", domain.title)));
    }
    let now = Utc::now().naive_utc();
    let written = if section.revision == 0 {
        with_concrete_connection!(conn, c => {
            diesel::insert_into(review_sections::table)
                .values((
                    review_sections::assessment_id.eq(loaded.row.id),
                    review_sections::domain_key.eq(key),
                    review_sections::accepted.eq(true),
                    review_sections::revision.eq(1),
                    review_sections::changed_by.eq(Some(who.id)),
                    review_sections::changed_at.eq(now),
                ))
                .on_conflict((review_sections::assessment_id, review_sections::domain_key))
                .do_nothing()
                .execute(c)?
        })
    } else {
        diesel::update(
            review_sections::table
                .filter(review_sections::assessment_id.eq(loaded.row.id))
                .filter(review_sections::domain_key.eq(key))
                .filter(review_sections::revision.eq(section.revision))
                .filter(review_sections::accepted.eq(false)),
        )
        .set((
            review_sections::accepted.eq(true),
            review_sections::revision.eq(section.revision + 1),
            review_sections::changed_by.eq(Some(who.id)),
            review_sections::changed_at.eq(now),
        ))
        .execute(conn)?
    };
    if written == 0 {
        return Err(stale(&format!("The section \"{}\"", domain.title)));
    }
    let revision = section.revision + 1;
    audit::record(
        conn,
        actor,
        Entry::new("review.accept", "section", entity(loaded, key))
            .organisation(Some(loaded.row.organisation_id))
            .before(json!({"state": section.state.as_str(), "revision": section.revision}))
            .after(json!({"state": "accepted", "revision": revision})),
    )?;
    let after = review(conn, loaded)?;
    let approvers = people(conn, loaded.row.organisation_id, APPROVERS)?;
    for (id, email, name) in &approvers {
        let data = merge(
            mail_data(loaded, name, review_link(notifier, loaded)),
            json!({"section": domain.title, "auditor": who.name}),
        );
        send(
            conn,
            notifier,
            "review_section_accepted",
            email,
            data,
            format!(
                "review_section_accepted:{}:{key}:{revision}:{id}",
                loaded.row.id
            ),
        )?;
    }
    if after.state == ReviewState::Reviewed {
        audit::record(
            conn,
            actor,
            Entry::new("review.complete", "assessment", loaded.row.id)
                .organisation(Some(loaded.row.organisation_id))
                .after(json!({"state": "reviewed"})),
        )?;
        for (id, email, name) in &approvers {
            let data = merge(
                mail_data(loaded, name, review_link(notifier, loaded)),
                json!({"auditor": who.name}),
            );
            send(
                conn,
                notifier,
                "review_completed",
                email,
                data,
                format!("review_completed:{}:{key}:{revision}:{id}", loaded.row.id),
            )?;
        }
    }
    Ok(after)
}

/// Raise a query on a question (auditors). Withdraws the section's acceptance, if any.
/// Refused: the assessment not submitted (409), no such question (422), an empty or long
/// message (422), an unclosed query on the question already (409). Emails the
/// organisation's approvers and contributors.
pub fn raise(
    conn: &mut DbConnection,
    actor: &Actor,
    notifier: &Notifier,
    who: &User,
    loaded: &Loaded,
    question_key: &str,
    message: &str,
) -> Result<Query, AppError> {
    who.require(Action::Review)?;
    let q = loaded.questionnaire();
    let Some(domain) = q
        .domains
        .iter()
        .find(|d| d.questions.iter().any(|x| x.key == question_key))
    else {
        return Err(AppError::Validation(vec![FieldError::new(
            "question",
            "Choose a question of this assessment",
        )]));
    };
    let message = message_ok("message", message, "Say what you are asking about")?;
    require_submitted(loaded)?;
    let now = Utc::now().naive_utc();
    let inserted = with_concrete_connection!(conn, c => {
        diesel::insert_into(review_queries::table)
            .values((
                review_queries::assessment_id.eq(loaded.row.id),
                review_queries::domain_key.eq(&domain.key),
                review_queries::question_key.eq(question_key),
                review_queries::status.eq("open"),
                review_queries::revision.eq(1),
                review_queries::message.eq(&message),
                review_queries::raised_by.eq(who.id),
                review_queries::raised_at.eq(now),
                review_queries::answer_changed.eq(false),
            ))
            .on_conflict_do_nothing()
            .execute(c)?
    });
    if inserted == 0 {
        return Err(AppError::Conflict(
            "That question already has a query that is not closed: answer or close it first."
                .into(),
        ));
    }
    let query_id: i64 = review_queries::table
        .filter(review_queries::assessment_id.eq(loaded.row.id))
        .filter(review_queries::question_key.eq(question_key))
        .filter(review_queries::status.ne("closed"))
        .select(review_queries::id)
        .first(conn)?;
    // Withdraw the section's acceptance and move its revision on, in one statement, so an
    // acceptance made against the section as it was cannot pass after this.
    with_concrete_connection!(conn, c => {
        diesel::insert_into(review_sections::table)
            .values((
                review_sections::assessment_id.eq(loaded.row.id),
                review_sections::domain_key.eq(&domain.key),
                review_sections::accepted.eq(false),
                review_sections::revision.eq(1),
                review_sections::changed_by.eq(Some(who.id)),
                review_sections::changed_at.eq(now),
            ))
            .on_conflict((review_sections::assessment_id, review_sections::domain_key))
            .do_update()
            .set((
                review_sections::accepted.eq(false),
                review_sections::revision.eq(review_sections::revision + 1),
                review_sections::changed_by.eq(Some(who.id)),
                review_sections::changed_at.eq(now),
            ))
            .execute(c)?
    });
    audit::record(
        conn,
        actor,
        Entry::new("review.query_raised", "review_query", query_id)
            .organisation(Some(loaded.row.organisation_id))
            .after(
                json!({"assessment": loaded.row.id, "question": question_key, "message": message}),
            ),
    )?;
    let question_text = q
        .question(question_key)
        .map_or(question_key, |x| x.text.as_str());
    for (id, email, name) in people(conn, loaded.row.organisation_id, RESPONDENTS)? {
        let data = merge(
            mail_data(loaded, &name, query_link(notifier, loaded, query_id)),
            json!({"section": domain.title, "question": question_text, "message": message, "auditor": who.name}),
        );
        send(
            conn,
            notifier,
            "review_query_raised",
            &email,
            data,
            format!("review_query_raised:{query_id}:{id}"),
        )?;
    }
    review(conn, loaded)?
        .query(query_id)
        .cloned()
        .ok_or(AppError::NotFound)
}

/// The organisation's answer to a query.
#[derive(Debug, Clone)]
pub struct Reply {
    pub message: String,
    /// The query revision the person saw.
    pub seen_revision: i64,
    /// A new answer to the question; `None`, or the answer already stored, changes nothing.
    pub answer: Option<Answer>,
    /// The approver confirms the changed answer is accurate (the sign-off's declaration).
    pub declaration: bool,
}

/// Answer an open query (the organisation's people, `Answer`), optionally changing the
/// answer (approvers: reopen, save and submit in this transaction, so it is re-scored and
/// the earlier scores are kept). Refused: not submitted or the query not open (409), a stale
/// revision (409), an empty message (422), a changed answer without the declaration (422) or
/// by a contributor (403), a change the question does not accept (422). Emails the auditor
/// who raised the query.
pub fn reply(
    conn: &mut DbConnection,
    actor: &Actor,
    notifier: &Notifier,
    who: &User,
    loaded: &Loaded,
    query_id: i64,
    reply: &Reply,
) -> Result<Query, AppError> {
    let org = loaded.row.organisation_id;
    who.require(Action::Answer(org))?;
    let current = review(conn, loaded)?;
    let query = current.query(query_id).cloned().ok_or(AppError::NotFound)?;
    let message = message_ok("response", &reply.message, "Write your answer to the query")?;
    let changed = reply
        .answer
        .as_ref()
        .filter(|a| loaded.answers.get(&query.question_key).map(|s| &s.answer) != Some(*a));
    if changed.is_some() {
        who.require(Action::Approve(org))?;
        if !reply.declaration {
            return Err(AppError::Validation(vec![FieldError::new(
                "declaration",
                "Confirm the declaration to change the answer",
            )]));
        }
    }
    require_submitted(loaded)?;
    if query.status != QueryStatus::Open {
        return Err(AppError::Conflict(format!(
            "This query is {}, so it cannot be answered.",
            query.status.as_str()
        )));
    }
    if reply.seen_revision != query.revision {
        return Err(stale("The query"));
    }
    let now = Utc::now().naive_utc();
    let written = diesel::update(
        review_queries::table
            .filter(review_queries::id.eq(query_id))
            .filter(review_queries::revision.eq(query.revision))
            .filter(review_queries::status.eq("open")),
    )
    .set((
        review_queries::status.eq("answered"),
        review_queries::revision.eq(query.revision + 1),
        review_queries::response.eq(Some(&message)),
        review_queries::answer_changed.eq(changed.is_some()),
        review_queries::answered_by.eq(Some(who.id)),
        review_queries::answered_at.eq(Some(now)),
    ))
    .execute(conn)?;
    if written == 0 {
        return Err(stale("The query"));
    }
    let mut reference = None;
    if let Some(answer) = changed {
        reference = Some(change_answer(
            conn, actor, notifier, who, loaded, &query, answer,
        )?);
    }
    audit::record(
        conn,
        actor,
        Entry::new("review.query_answered", "review_query", query_id)
            .organisation(Some(org))
            .before(json!({"status": "open", "revision": query.revision}))
            .after(json!({
                "status": "answered", "revision": query.revision + 1, "response": message,
                "answer_changed": changed.is_some(), "resubmission": reference,
            })),
    )?;
    let auditor: Option<(String, String)> = users::table
        .find(query.raised_by_id)
        .filter(users::active.eq(true))
        .select((users::email, users::name))
        .first(conn)
        .optional()?;
    if let Some((email, name)) = auditor {
        let data = merge(
            mail_data(loaded, &name, query_link(notifier, loaded, query_id)),
            json!({
                "question": query.question_text, "message": query.message, "response": message,
                "answered_by": who.name, "answer_changed": changed.is_some(),
            }),
        );
        send(
            conn,
            notifier,
            "review_query_answered",
            &email,
            data,
            format!("review_query_answered:{query_id}:{}", query.revision + 1),
        )?;
    }
    let reloaded = assessments::load(conn, loaded.row.id)?;
    review(conn, &reloaded)?
        .query(query_id)
        .cloned()
        .ok_or(AppError::NotFound)
}

/// Change one answer of a submitted assessment through the services that own it: reopen
/// (audited, with the query as the reason), save, submit (re-scored; the earlier score set
/// stays, no longer current). Returns the new submission's reference.
fn change_answer(
    conn: &mut DbConnection,
    actor: &Actor,
    notifier: &Notifier,
    who: &User,
    loaded: &Loaded,
    query: &Query,
    answer: &Answer,
) -> Result<String, AppError> {
    let id = loaded.row.id;
    assessments::reopen(
        conn,
        actor,
        id,
        &format!(
            "Answer to \"{}\" changed in reply to auditor query {}",
            audit::bounded(&query.question_text, 200),
            query.id
        ),
    )?;
    let reopened = assessments::load(conn, id)?;
    let seen_revision = reopened
        .answers
        .get(&query.question_key)
        .map_or(0, |s| s.revision);
    let outcome = assessments::save_loaded(
        conn,
        actor,
        &reopened,
        &[Change {
            key: query.question_key.clone(),
            answer: Some(answer.clone()),
            seen_revision,
        }],
    )?;
    if !outcome.conflicts.is_empty() {
        return Err(AppError::Conflict(
            "The answer changed while you were replying. Nothing was changed: reload and try again."
                .into(),
        ));
    }
    // The person re-signing is the approver changing the answer; their job title is taken
    // from the last sign-off when they made it, else they are named as the approver.
    let last: Option<(String, String)> = submissions::table
        .filter(submissions::assessment_id.eq(id))
        .order(submissions::id.desc())
        .select((submissions::signoff_name, submissions::signoff_job_title))
        .first(conn)
        .optional()?;
    let job_title = last
        .filter(|(name, _)| name == &who.name)
        .map_or_else(|| "Approver".to_string(), |(_, title)| title);
    let submitted = assessments::submit(
        conn,
        actor,
        id,
        &SignOff {
            name: who.name.clone(),
            job_title,
            declaration: true,
        },
        notifier,
    )?;
    Ok(submitted.reference)
}

/// Close a query (auditors), open or answered, naming its revision. Emails whoever answered
/// it, or the approvers when it was closed unanswered.
pub fn close(
    conn: &mut DbConnection,
    actor: &Actor,
    notifier: &Notifier,
    who: &User,
    loaded: &Loaded,
    query_id: i64,
    seen_revision: i64,
) -> Result<Query, AppError> {
    who.require(Action::Review)?;
    let current = review(conn, loaded)?;
    let query = current.query(query_id).cloned().ok_or(AppError::NotFound)?;
    require_submitted(loaded)?;
    if query.status == QueryStatus::Closed {
        return Err(AppError::Conflict("This query is already closed.".into()));
    }
    if seen_revision != query.revision {
        return Err(stale("The query"));
    }
    let now = Utc::now().naive_utc();
    let written = diesel::update(
        review_queries::table
            .filter(review_queries::id.eq(query_id))
            .filter(review_queries::revision.eq(query.revision))
            .filter(review_queries::status.ne("closed")),
    )
    .set((
        review_queries::status.eq("closed"),
        review_queries::revision.eq(query.revision + 1),
        review_queries::closed_by.eq(Some(who.id)),
        review_queries::closed_at.eq(Some(now)),
    ))
    .execute(conn)?;
    if written == 0 {
        return Err(stale("The query"));
    }
    audit::record(
        conn,
        actor,
        Entry::new("review.query_closed", "review_query", query_id)
            .organisation(Some(loaded.row.organisation_id))
            .before(json!({"status": query.status.as_str(), "revision": query.revision}))
            .after(json!({"status": "closed", "revision": query.revision + 1})),
    )?;
    let answered_by: Option<i64> = review_queries::table
        .find(query_id)
        .select(review_queries::answered_by)
        .first(conn)?;
    let to: Vec<(i64, String, String)> = match answered_by {
        Some(uid) => users::table
            .find(uid)
            .filter(users::active.eq(true))
            .select((users::id, users::email, users::name))
            .load(conn)?,
        None => people(conn, loaded.row.organisation_id, APPROVERS)?,
    };
    for (id, email, name) in to {
        let data = merge(
            mail_data(loaded, &name, query_link(notifier, loaded, query_id)),
            json!({"question": query.question_text, "auditor": who.name}),
        );
        send(
            conn,
            notifier,
            "review_query_closed",
            &email,
            data,
            format!("review_query_closed:{query_id}:{id}"),
        )?;
    }
    review(conn, loaded)?
        .query(query_id)
        .cloned()
        .ok_or(AppError::NotFound)
}

/// Answers of a reopened assessment changed: withdraw the acceptance of each section they
/// belong to (called by `assessments::save_loaded`), so an accepted section always describes
/// the answers that are there. Returns how many acceptances were withdrawn.
pub fn answers_changed(
    conn: &mut DbConnection,
    loaded: &Loaded,
    keys: &[String],
) -> Result<usize, AppError> {
    let domains: BTreeSet<&str> = loaded
        .questionnaire()
        .domains
        .iter()
        .filter(|d| d.questions.iter().any(|q| keys.contains(&q.key)))
        .map(|d| d.key.as_str())
        .collect();
    if domains.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(
        review_sections::table
            .filter(review_sections::assessment_id.eq(loaded.row.id))
            .filter(review_sections::domain_key.eq_any(domains))
            .filter(review_sections::accepted.eq(true)),
    )
    .set((
        review_sections::accepted.eq(false),
        review_sections::revision.eq(review_sections::revision + 1),
        review_sections::changed_at.eq(Utc::now().naive_utc()),
    ))
    .execute(conn)?)
}

/// Review states of a page of assessments for the scores export: each assessment's
/// sections that are accepted or queried (the rest are not reviewed) and whether anything
/// has happened, read in two queries.
#[derive(Debug, Clone, Default)]
pub struct PageStates {
    sections: BTreeMap<i64, BTreeMap<String, SectionState>>,
    active: BTreeSet<i64>,
}

impl PageStates {
    pub fn load(conn: &mut DbConnection, ids: &[i64]) -> Result<PageStates, AppError> {
        let mut out = PageStates::default();
        for chunk in ids.chunks(crate::services::reports::IN_CHUNK) {
            let rows: Vec<(i64, String, bool)> = review_sections::table
                .filter(review_sections::assessment_id.eq_any(chunk))
                .select((
                    review_sections::assessment_id,
                    review_sections::domain_key,
                    review_sections::accepted,
                ))
                .load(conn)?;
            for (id, key, accepted) in rows {
                out.active.insert(id);
                if accepted {
                    out.sections
                        .entry(id)
                        .or_default()
                        .insert(key, SectionState::Accepted);
                }
            }
            let queries: Vec<(i64, String, String)> = review_queries::table
                .filter(review_queries::assessment_id.eq_any(chunk))
                .select((
                    review_queries::assessment_id,
                    review_queries::domain_key,
                    review_queries::status,
                ))
                .load(conn)?;
            for (id, key, status) in queries {
                out.active.insert(id);
                if status != QueryStatus::Closed.as_str() {
                    out.sections
                        .entry(id)
                        .or_default()
                        .insert(key, SectionState::Queried);
                }
            }
        }
        Ok(out)
    }

    /// One section's state.
    pub fn section(&self, id: i64, key: &str) -> SectionState {
        self.sections
            .get(&id)
            .and_then(|s| s.get(key))
            .copied()
            .unwrap_or(SectionState::NotReviewed)
    }

    /// The assessment's state, given its sections' keys.
    pub fn assessment<'a>(&self, id: i64, keys: impl Iterator<Item = &'a str>) -> ReviewState {
        let mut total = 0;
        let mut accepted = 0;
        for k in keys {
            total += 1;
            if self.section(id, k) == SectionState::Accepted {
                accepted += 1;
            }
        }
        ReviewState::from_counts(accepted, total, self.active.contains(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assessment_is_reviewed_only_when_every_section_is_accepted() {
        assert_eq!(
            ReviewState::from_counts(0, 8, false),
            ReviewState::NotReviewed
        );
        assert_eq!(ReviewState::from_counts(0, 8, true), ReviewState::InReview);
        assert_eq!(ReviewState::from_counts(7, 8, true), ReviewState::InReview);
        assert_eq!(ReviewState::from_counts(8, 8, true), ReviewState::Reviewed);
        // A question set without sections is never "reviewed".
        assert_eq!(
            ReviewState::from_counts(0, 0, false),
            ReviewState::NotReviewed
        );
    }

    #[test]
    fn page_states_put_an_unclosed_query_before_an_acceptance() {
        let mut p = PageStates::default();
        p.active.insert(1);
        p.sections
            .entry(1)
            .or_default()
            .insert("a".into(), SectionState::Accepted);
        assert_eq!(p.section(1, "a"), SectionState::Accepted);
        assert_eq!(p.section(1, "b"), SectionState::NotReviewed);
        assert_eq!(
            p.assessment(1, ["a", "b"].into_iter()),
            ReviewState::InReview
        );
        assert_eq!(p.assessment(1, ["a"].into_iter()), ReviewState::Reviewed);
        assert_eq!(p.assessment(2, ["a"].into_iter()), ReviewState::NotReviewed);
    }
}
