//! One organisation's assessment in a cycle: its answers (saved as people work, each with a
//! revision for optimistic concurrency), sign-off and submission (scored by the pure core and
//! stored with the version), and reopening. A save made against a stale answer is refused with
//! the other person's value; nothing is silently overwritten.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{
    answer_history, answers, assessments, cycles, organisations, score_sets, scores, submissions,
    users,
};
use crate::db::{with_concrete_connection, DbConnection};
use crate::domain::answers::{self as domain_answers, Answer, Answers};
use crate::domain::{scoring, FieldError, Questionnaire};
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::questionnaires::{self, StoredVersion};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = assessments)]
pub struct AssessmentRow {
    pub id: i64,
    pub cycle_id: i64,
    pub organisation_id: i64,
    pub setting: String,
    pub questionnaire_version_id: i64,
    pub status: String,
    pub icb_id: Option<i64>,
    pub region: Option<String>,
    pub deadline_override: Option<NaiveDate>,
    pub revision: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// When its cycle was closed (`cycles::close`): nothing changes after it.
    pub closed_at: Option<NaiveDateTime>,
}

/// A stored answer with what concurrency and carry-forward need.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub answer: Answer,
    pub revision: i64,
    pub carried_forward: bool,
}

#[derive(Clone)]
pub struct Loaded {
    pub row: AssessmentRow,
    pub organisation_name: String,
    pub cycle_label: String,
    pub deadline: NaiveDate,
    pub version: StoredVersion,
    pub answers: BTreeMap<String, StoredAnswer>,
}

impl Loaded {
    pub fn questionnaire(&self) -> &Questionnaire {
        &self.version.questionnaire
    }

    pub fn answers(&self) -> Answers {
        self.answers
            .iter()
            .map(|(k, s)| (k.clone(), s.answer.clone()))
            .collect()
    }

    pub fn is_open_for_answers(&self) -> bool {
        self.row.closed_at.is_none()
            && matches!(
                self.row.status.as_str(),
                "not_started" | "in_progress" | "reopened"
            )
    }

    /// Whether its cycle has closed.
    pub fn is_closed(&self) -> bool {
        self.row.closed_at.is_some()
    }

    /// The status people see: an assessment not submitted when its cycle closed is "not
    /// submitted" for good.
    pub fn status_label(&self) -> (&'static str, &'static str) {
        status_label_closed(&self.row.status, self.is_closed())
    }

    /// Why answers cannot change, in the person's words.
    pub fn closed_reason(&self) -> String {
        match self.row.closed_at {
            Some(at) if self.row.status == "submitted" => format!(
                "The {} cycle closed on {}, so this submission is final and can no longer be reopened.",
                self.cycle_label,
                at.format("%-d %B %Y")
            ),
            Some(at) => format!(
                "The {} cycle closed on {} before this assessment was submitted, so it is recorded as not submitted and answers can no longer be changed or submitted.",
                self.cycle_label,
                at.format("%-d %B %Y")
            ),
            None => "This assessment has been submitted, so answers can no longer be changed. An administrator can reopen it.".into(),
        }
    }
}

/// The conflict for a guarded write that matched no row: the cycle's closing if that is what
/// happened (read afresh, so on PostgreSQL it sees the close that made the write miss),
/// otherwise `otherwise`.
fn closed_or(
    conn: &mut DbConnection,
    assessment_id: i64,
    otherwise: AppError,
) -> Result<AppError, AppError> {
    let found: Option<(i64, Option<NaiveDateTime>)> = assessments::table
        .find(assessment_id)
        .select((assessments::cycle_id, assessments::closed_at))
        .first(conn)
        .optional()?;
    match found {
        Some((cycle_id, Some(_))) => crate::services::cycles::closed_conflict(conn, cycle_id),
        _ => Ok(otherwise),
    }
}

/// [`status_label`] for an assessment whose cycle may have closed: one not submitted by then
/// is "not submitted" for good.
pub fn status_label_closed(status: &str, closed: bool) -> (&'static str, &'static str) {
    if closed && status != "submitted" {
        ("Not submitted", "purple")
    } else {
        status_label(status)
    }
}

pub fn status_label(status: &str) -> (&'static str, &'static str) {
    match status {
        "not_started" => ("Not started", "grey"),
        "in_progress" => ("In progress", "blue"),
        "submitted" => ("Submitted", "green"),
        "reopened" => ("Reopened", "yellow"),
        _ => ("Unknown", "grey"),
    }
}

pub fn load(conn: &mut DbConnection, id: i64) -> Result<Loaded, AppError> {
    // One statement for the assessment, its organisation, cycle and question set (every
    // page of an assessment and every autosave starts here; each statement is a round trip).
    let (row, organisation_name, cycle_label, cycle_deadline, version): (
        AssessmentRow,
        String,
        String,
        NaiveDate,
        questionnaires::SummaryRow,
    ) = assessments::table
        .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
        .inner_join(cycles::table)
        .inner_join(
            crate::db::schema::questionnaire_versions::table
                .inner_join(crate::db::schema::questionnaires::table),
        )
        .filter(assessments::id.eq(id))
        .select((
            AssessmentRow::as_select(),
            organisations::name,
            cycles::label,
            cycles::deadline,
            questionnaires::summary_columns(),
        ))
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    let version = questionnaires::stored_from_row(conn, version)?;
    let stored: Vec<(String, String, i64, bool)> = answers::table
        .filter(answers::assessment_id.eq(id))
        .select((
            answers::question_key,
            answers::value,
            answers::revision,
            answers::carried_forward,
        ))
        .load(conn)?;
    let mut map = BTreeMap::new();
    for (key, value, revision, carried_forward) in stored {
        let Some(question) = version.questionnaire.question(&key) else {
            continue;
        };
        let parsed: serde_json::Value = serde_json::from_str(&value).map_err(|e| {
            AppError::Internal(anyhow::anyhow!("stored answer {key} unreadable: {e}"))
        })?;
        if let Ok(Some(answer)) = domain_answers::parse_value(question, &parsed) {
            map.insert(
                key,
                StoredAnswer {
                    answer,
                    revision,
                    carried_forward,
                },
            );
        }
    }
    let deadline = row.deadline_override.unwrap_or(cycle_deadline);
    Ok(Loaded {
        row,
        organisation_name,
        cycle_label,
        deadline,
        version,
        answers: map,
    })
}

/// One question's change as submitted: the new answer (None clears it) and the revision the
/// person's page showed (0 when it showed no answer).
#[derive(Debug, Clone)]
pub struct Change {
    pub key: String,
    pub answer: Option<Answer>,
    pub seen_revision: i64,
}

/// A stale edit: someone else changed the answer since the page was loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub key: String,
    pub their_value: Option<serde_json::Value>,
    /// The stored answer's revision now (0 when there is none).
    pub revision: i64,
    pub changed_by: Option<String>,
}

/// What is stored for one question now, read in the caller's transaction: a statement of its
/// own, so on PostgreSQL it sees the change that made a guarded write miss.
fn conflict_now(
    conn: &mut DbConnection,
    assessment_id: i64,
    key: &str,
) -> Result<Conflict, AppError> {
    let row: Option<(String, i64, Option<String>)> = answers::table
        .left_join(users::table.on(users::id.nullable().eq(answers::updated_by)))
        .filter(answers::assessment_id.eq(assessment_id))
        .filter(answers::question_key.eq(key))
        .select((answers::value, answers::revision, users::name.nullable()))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((value, revision, changed_by)) => Conflict {
            key: key.to_string(),
            their_value: Some(serde_json::from_str(&value).map_err(|e| {
                AppError::Internal(anyhow::anyhow!("stored answer {key} unreadable: {e}"))
            })?),
            revision,
            changed_by,
        },
        None => Conflict {
            key: key.to_string(),
            their_value: None,
            revision: 0,
            changed_by: None,
        },
    })
}

#[derive(Debug, Serialize)]
pub struct SaveOutcome {
    pub saved: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// Revision of each saved answer after the save, for the page's next request.
    pub revisions: BTreeMap<String, i64>,
}

/// Save changes in the caller's transaction. Unchanged values are skipped (and confirm a
/// carried-forward answer); a change against a stale revision becomes a conflict and is not
/// applied, while the other changes are.
pub fn save(
    conn: &mut DbConnection,
    actor: &Actor,
    assessment_id: i64,
    changes: &[Change],
) -> Result<SaveOutcome, AppError> {
    let loaded = load(conn, assessment_id)?;
    save_loaded(conn, actor, &loaded, changes)
}

/// [`save`] for an assessment the caller loaded in this same transaction (so a page can load,
/// authorise and save with one load and one connection: autosave is the busiest request).
pub fn save_loaded(
    conn: &mut DbConnection,
    actor: &Actor,
    loaded: &Loaded,
    changes: &[Change],
) -> Result<SaveOutcome, AppError> {
    let assessment_id = loaded.row.id;
    if !loaded.is_open_for_answers() {
        return Err(AppError::Conflict(loaded.closed_reason()));
    }
    let now = Utc::now().naive_utc();
    let mut outcome = SaveOutcome {
        saved: Vec::new(),
        conflicts: Vec::new(),
        revisions: BTreeMap::new(),
    };
    // Each saved answer's value before and after, by question key, for the audit log.
    let mut audit_before = serde_json::Map::new();
    let mut audit_after = serde_json::Map::new();
    for change in changes {
        if loaded.questionnaire().question(&change.key).is_none() {
            return Err(AppError::Validation(vec![FieldError::new(
                change.key.clone(),
                "there is no such question in this assessment",
            )]));
        }
        let current = loaded.answers.get(&change.key);
        let current_revision = current.map_or(0, |c| c.revision);
        if current.map(|c| &c.answer) == change.answer.as_ref() {
            if let Some(c) = current.filter(|c| c.carried_forward) {
                let confirmed = diesel::update(
                    answers::table
                        .filter(answers::assessment_id.eq(assessment_id))
                        .filter(answers::question_key.eq(&change.key))
                        .filter(answers::revision.eq(c.revision)),
                )
                .set((
                    answers::carried_forward.eq(false),
                    answers::updated_by.eq(actor.user_id),
                    answers::updated_at.eq(now),
                ))
                .execute(conn)?;
                if confirmed == 1 {
                    // Last year's evidence goes with the answer it was given for.
                    crate::services::evidence::carry_on_confirm(conn, actor, loaded, &change.key)?;
                }
                outcome.revisions.insert(change.key.clone(), c.revision);
            }
            continue;
        }
        if current_revision != change.seen_revision {
            outcome
                .conflicts
                .push(conflict_now(conn, assessment_id, &change.key)?);
            continue;
        }
        let old_json = current.map(|c| c.answer.to_json().to_string());
        let new_json = change.answer.as_ref().map(|a| a.to_json().to_string());
        let target = answers::table
            .filter(answers::assessment_id.eq(assessment_id))
            .filter(answers::question_key.eq(&change.key));
        let new_revision = current_revision + 1;
        // Each write below is conditional on what the page saw (the revision, or no row at
        // all), so the check above and the write are one step in the database: of two
        // simultaneous saves one changes the row and the other changes nothing, which is
        // counted and becomes a conflict showing what is stored now. No history row or audit
        // entry is written for a change that did not happen.
        let written = match (&new_json, current) {
            (Some(v), Some(_)) => crate::services::saving::ChangeAnswer {
                assessment_id,
                question_key: &change.key,
                seen_revision: current_revision,
                value: v,
                updated_by: actor.user_id,
                updated_at: now,
            }
            .execute(conn)?,
            // The unique key (assessment, question) decides between two first answers; the
            // loser's insert does nothing (on PostgreSQL after waiting for the winner to
            // commit) instead of failing the transaction.
            (Some(v), None) => with_concrete_connection!(conn, c => {
                diesel::insert_into(answers::table)
                    .values((
                        answers::assessment_id.eq(assessment_id),
                        answers::question_key.eq(&change.key),
                        answers::value.eq(v),
                        answers::revision.eq(1),
                        answers::carried_forward.eq(false),
                        answers::updated_by.eq(actor.user_id),
                        answers::updated_at.eq(now),
                    ))
                    .on_conflict((answers::assessment_id, answers::question_key))
                    .do_nothing()
                    .execute(c)
            })?,
            (None, Some(_)) => {
                diesel::delete(target.filter(answers::revision.eq(current_revision)))
                    .execute(conn)?
            }
            (None, None) => continue,
        };
        if written != 1 {
            outcome
                .conflicts
                .push(conflict_now(conn, assessment_id, &change.key)?);
            continue;
        }
        diesel::insert_into(answer_history::table)
            .values((
                answer_history::assessment_id.eq(assessment_id),
                answer_history::question_key.eq(&change.key),
                answer_history::old_value.eq(&old_json),
                answer_history::new_value.eq(&new_json),
                answer_history::changed_by.eq(actor.user_id),
                answer_history::changed_at.eq(now),
            ))
            .execute(conn)?;
        let value = |a: Option<&Answer>| a.map_or(serde_json::Value::Null, Answer::to_json);
        audit_before.insert(change.key.clone(), value(current.map(|c| &c.answer)));
        audit_after.insert(change.key.clone(), value(change.answer.as_ref()));
        outcome.saved.push(change.key.clone());
        outcome.revisions.insert(
            change.key.clone(),
            if new_json.is_some() {
                if current.is_some() {
                    new_revision
                } else {
                    1
                }
            } else {
                0
            },
        );
    }
    if !outcome.saved.is_empty() {
        // Guarded on the assessment still being open: a submission that committed since the
        // load makes this match no row, and the whole save is refused (rolled back) rather
        // than changing answers after they were scored.
        // One statement: the revision, and "not started" becomes "in progress".
        let open = crate::services::saving::TouchOpenAssessment {
            assessment_id,
            updated_at: now,
        }
        .execute(conn)?;
        if open != 1 {
            return Err(closed_or(conn, assessment_id, submitted_meanwhile())?);
        }
        if loaded.row.status == "reopened" {
            // An auditor's acceptance describes the answers it saw (docs/review.md).
            crate::services::review::answers_changed(conn, loaded, &outcome.saved)?;
        }
        audit::record(
            conn,
            actor,
            Entry::new("assessment.answers_saved", "assessment", assessment_id)
                .organisation(Some(loaded.row.organisation_id))
                .before(serde_json::Value::Object(audit_before))
                .after(serde_json::Value::Object(audit_after)),
        )?;
    }
    Ok(outcome)
}

fn submitted_meanwhile() -> AppError {
    AppError::Conflict(
        "This assessment was submitted while you were working, so your changes were not saved. An administrator can reopen it.".into(),
    )
}

#[derive(Debug, Clone)]
pub struct SignOff {
    pub name: String,
    pub job_title: String,
    pub declaration: bool,
}

#[derive(Debug, Serialize)]
pub struct Submitted {
    pub reference: String,
    pub overall: Option<f64>,
    pub late: bool,
}

/// Sign off, submit and score, in the caller's transaction, and queue the receipt to the
/// organisation's approvers in it.
pub fn submit(
    conn: &mut DbConnection,
    actor: &Actor,
    assessment_id: i64,
    signoff: &SignOff,
    notifier: &crate::services::notifications::Notifier,
) -> Result<Submitted, AppError> {
    let mut errors = Vec::new();
    if signoff.name.trim().is_empty() || signoff.name.chars().count() > 200 {
        errors.push(FieldError::new(
            "signoff-name",
            "Enter the full name of the person signing off",
        ));
    }
    if signoff.job_title.trim().is_empty() || signoff.job_title.chars().count() > 200 {
        errors.push(FieldError::new(
            "signoff-job-title",
            "Enter their job title",
        ));
    }
    if !signoff.declaration {
        errors.push(FieldError::new(
            "declaration",
            "Confirm the declaration to submit",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let loaded = load(conn, assessment_id)?;
    if loaded.is_closed() {
        return Err(AppError::Conflict(loaded.closed_reason()));
    }
    if !loaded.is_open_for_answers() {
        return Err(AppError::Conflict(
            "This assessment has already been submitted.".into(),
        ));
    }
    let given = loaded.answers();
    let report = scoring::score(loaded.questionnaire(), &given);
    if !report.complete {
        return Err(AppError::Validation(
            report
                .missing_required
                .iter()
                .map(|k| FieldError::new(k.clone(), "answer this question before submitting"))
                .collect(),
        ));
    }
    let now = Utc::now().naive_utc();
    let today = now.date();
    let late = today > loaded.deadline;
    // The status change comes first and is guarded on what was loaded (status and
    // revision): of two simultaneous submits the second waits for the first's row lock
    // (PostgreSQL) or the writer lock (SQLite), then matches no row and is refused, so it
    // stores no second submission or score set. A save that committed since the load changed
    // the revision, so answers the scores did not see cannot slip in either.
    let guarded = diesel::update(
        assessments::table
            .find(assessment_id)
            .filter(assessments::status.eq(&loaded.row.status))
            .filter(assessments::revision.eq(loaded.row.revision))
            .filter(assessments::closed_at.is_null()),
    )
    .set((
        assessments::status.eq("submitted"),
        assessments::revision.eq(loaded.row.revision + 1),
        assessments::updated_at.eq(now),
    ))
    .execute(conn)?;
    if guarded != 1 {
        return Err(closed_or(conn, assessment_id, AppError::Conflict(
            "This assessment was submitted or changed by someone else at the same moment. Reload the page to see its state.".into(),
        ))?);
    }
    let reference = format!(
        "DMA-{}-{}",
        loaded.cycle_label.replace('/', ""),
        &crate::crypto::random_token()[..12].to_uppercase()
    );
    let submission_id: i64 = diesel::insert_into(submissions::table)
        .values((
            submissions::assessment_id.eq(assessment_id),
            submissions::reference.eq(&reference),
            submissions::submitted_by.eq(actor.user_id.ok_or(AppError::Forbidden)?),
            submissions::signoff_name.eq(signoff.name.trim()),
            submissions::signoff_job_title.eq(signoff.job_title.trim()),
            submissions::late.eq(late),
            submissions::submitted_at.eq(now),
        ))
        .returning(submissions::id)
        .get_result(conn)?;
    store_scores(
        conn,
        assessment_id,
        submission_id,
        loaded.row.questionnaire_version_id,
        &given,
        &report,
        now,
    )?;
    audit::record(
        conn,
        actor,
        Entry::new("assessment.submit", "assessment", assessment_id)
            .organisation(Some(loaded.row.organisation_id))
            .after(serde_json::json!({
                "reference": reference, "overall": report.overall.score, "late": late,
            })),
    )?;
    crate::services::notifications::submission_receipt(conn, notifier, assessment_id, now)?;
    // Last, so the group rows it updates (shared by every submission in the same groups) are
    // locked only until the commit that follows.
    crate::services::reports::counts::submitted(conn, assessment_id)?;
    Ok(Submitted {
        reference,
        overall: report.overall.score,
        late,
    })
}

fn store_scores(
    conn: &mut DbConnection,
    assessment_id: i64,
    submission_id: i64,
    version_id: i64,
    given: &Answers,
    report: &scoring::Assessment,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::update(
        score_sets::table
            .filter(score_sets::assessment_id.eq(assessment_id))
            .filter(score_sets::is_current.eq(true)),
    )
    .set(score_sets::is_current.eq(false))
    .execute(conn)?;
    let content = ScoreSetContent::new(given, report)?;
    // The unique index `score_sets_one_current` allows one current score set per assessment;
    // the guarded status change in `submit` means it should never fire, and if it does the
    // submission is refused as a conflict rather than stored twice.
    let set_id: i64 = diesel::insert_into(score_sets::table)
        .values(content.score_set(assessment_id, submission_id, version_id, now))
        .returning(score_sets::id)
        .get_result(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AppError::Conflict("This assessment has already been submitted.".into()),
            other => other.into(),
        })?;
    insert_scores(conn, &content.score_rows(set_id))?;
    Ok(())
}

/// Insert `scores` rows, up to 1,000 per statement (6,000 bound parameters); returns how many.
pub fn insert_scores(conn: &mut DbConnection, rows: &[NewScore<'_>]) -> Result<usize, AppError> {
    let mut inserted = 0;
    for chunk in rows.chunks(1000) {
        inserted += with_concrete_connection!(conn, c => {
            diesel::insert_into(scores::table).values(chunk).execute(c)
        })?;
    }
    Ok(inserted)
}

/// Everything a scored submission stores, built from the answers and their score report:
/// the report and the answers snapshot as JSON for `score_sets`, and the flattened overall,
/// pillar and domain rows for `scores`. Submission and the bulk seed (`crate::services::seed`) both
/// store exactly this, so a seeded score set is indistinguishable from a submitted one.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSetContent {
    pub overall_score: Option<f64>,
    pub overall_band: Option<String>,
    pub report_json: String,
    pub answers_snapshot_json: String,
    pub rows: Vec<ScoreRow>,
}

/// One row of `scores` before its score set has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// `overall`, `pillar` or `domain`.
    pub level: &'static str,
    pub item_key: String,
    pub score: Option<f64>,
    pub band: Option<String>,
    /// Questions counted (domains only; 0 for the overall and pillar rows).
    pub counted: i32,
}

/// A `score_sets` row ready to insert (always the current one).
#[derive(Debug, Insertable)]
#[diesel(table_name = score_sets, treat_none_as_default_value = false)]
pub struct NewScoreSet<'a> {
    pub assessment_id: i64,
    pub submission_id: i64,
    pub questionnaire_version_id: i64,
    pub overall_score: Option<f64>,
    pub overall_band: Option<&'a str>,
    pub report: &'a str,
    pub answers_snapshot: &'a str,
    pub is_current: bool,
    pub scored_at: NaiveDateTime,
}

/// A `scores` row ready to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = scores, treat_none_as_default_value = false)]
pub struct NewScore<'a> {
    pub score_set_id: i64,
    pub level: &'a str,
    pub item_key: &'a str,
    pub score: Option<f64>,
    pub band: Option<&'a str>,
    pub counted: i32,
}

impl ScoreSetContent {
    /// Serialise the report and the answers snapshot and flatten the scores.
    pub fn new(given: &Answers, report: &scoring::Assessment) -> Result<Self, AppError> {
        let snapshot: BTreeMap<&String, serde_json::Value> =
            given.iter().map(|(k, a)| (k, a.to_json())).collect();
        Ok(ScoreSetContent {
            overall_score: report.overall.score,
            overall_band: report.overall.band.clone(),
            report_json: serde_json::to_string(report).map_err(|e| AppError::Internal(e.into()))?,
            answers_snapshot_json: serde_json::to_string(&snapshot)
                .map_err(|e| AppError::Internal(e.into()))?,
            rows: score_rows(report),
        })
    }

    /// The `score_sets` row of this content as the current score set of an assessment.
    pub fn score_set(
        &self,
        assessment_id: i64,
        submission_id: i64,
        questionnaire_version_id: i64,
        scored_at: NaiveDateTime,
    ) -> NewScoreSet<'_> {
        NewScoreSet {
            assessment_id,
            submission_id,
            questionnaire_version_id,
            overall_score: self.overall_score,
            overall_band: self.overall_band.as_deref(),
            report: &self.report_json,
            answers_snapshot: &self.answers_snapshot_json,
            is_current: true,
            scored_at,
        }
    }

    /// The `scores` rows of this content for the score set `score_set_id`.
    pub fn score_rows(&self, score_set_id: i64) -> Vec<NewScore<'_>> {
        self.rows
            .iter()
            .map(|r| NewScore {
                score_set_id,
                level: r.level,
                item_key: &r.item_key,
                score: r.score,
                band: r.band.as_deref(),
                counted: r.counted,
            })
            .collect()
    }
}

/// The flattened scores of a report: the overall row, then each pillar and each domain in
/// document order.
pub fn score_rows(report: &scoring::Assessment) -> Vec<ScoreRow> {
    let mut rows = Vec::with_capacity(1 + report.pillars.len() + report.domains.len());
    rows.push(ScoreRow {
        level: "overall",
        item_key: "overall".to_string(),
        score: report.overall.score,
        band: report.overall.band.clone(),
        counted: 0,
    });
    for (key, s) in &report.pillars {
        rows.push(ScoreRow {
            level: "pillar",
            item_key: key.clone(),
            score: s.score,
            band: s.band.clone(),
            counted: 0,
        });
    }
    for d in &report.domains {
        rows.push(ScoreRow {
            level: "domain",
            item_key: d.key.clone(),
            score: d.score,
            band: d.band.clone(),
            counted: i32::try_from(d.counted).unwrap_or(i32::MAX),
        });
    }
    rows
}

/// The stored score report of the current submission.
pub fn current_scores(
    conn: &mut DbConnection,
    assessment_id: i64,
) -> Result<Option<(String, NaiveDateTime, scoring::Assessment)>, AppError> {
    let found: Option<(String, String, NaiveDateTime)> = score_sets::table
        .inner_join(submissions::table)
        .filter(score_sets::assessment_id.eq(assessment_id))
        .filter(score_sets::is_current.eq(true))
        .select((
            score_sets::report,
            submissions::reference,
            submissions::submitted_at,
        ))
        .first(conn)
        .optional()?;
    match found {
        None => Ok(None),
        Some((report, reference, at)) => {
            let parsed = serde_json::from_str(&report).map_err(|e| {
                AppError::Internal(anyhow::anyhow!("stored score report unreadable: {e}"))
            })?;
            Ok(Some((reference, at, parsed)))
        }
    }
}

/// Reopen a submitted assessment (administrators), with a reason for the audit log.
pub fn reopen(
    conn: &mut DbConnection,
    actor: &Actor,
    assessment_id: i64,
    reason: &str,
) -> Result<(), AppError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(AppError::Validation(vec![FieldError::new(
            "reason",
            "Give the reason for reopening (up to 2,000 characters)",
        )]));
    }
    let loaded = load(conn, assessment_id)?;
    if loaded.is_closed() {
        return Err(AppError::Conflict(loaded.closed_reason()));
    }
    if loaded.row.status != "submitted" {
        return Err(AppError::Conflict(
            "Only a submitted assessment can be reopened.".into(),
        ));
    }
    let now = Utc::now().naive_utc();
    diesel::update(
        submissions::table
            .filter(submissions::assessment_id.eq(assessment_id))
            .filter(submissions::reopened_at.is_null()),
    )
    .set((
        submissions::reopened_at.eq(Some(now)),
        submissions::reopened_by.eq(actor.user_id),
        submissions::reopen_reason.eq(Some(reason)),
    ))
    .execute(conn)?;
    let guarded = diesel::update(
        assessments::table
            .find(assessment_id)
            .filter(assessments::status.eq("submitted"))
            .filter(assessments::closed_at.is_null()),
    )
    .set((
        assessments::status.eq("reopened"),
        assessments::revision.eq(assessments::revision + 1),
        assessments::updated_at.eq(now),
    ))
    .execute(conn)?;
    if guarded != 1 {
        return Err(closed_or(
            conn,
            assessment_id,
            AppError::Conflict("Only a submitted assessment can be reopened.".into()),
        )?);
    }
    crate::services::reports::counts::reopened(conn, assessment_id)?;
    audit::record(
        conn,
        actor,
        Entry::new("assessment.reopen", "assessment", assessment_id)
            .organisation(Some(loaded.row.organisation_id))
            .before(serde_json::json!({"status": "submitted"}))
            .after(serde_json::json!({"status": "reopened", "reason": reason})),
    )?;
    Ok(())
}

/// Assessments of one organisation, newest cycle first: (row, cycle label, deadline).
pub fn for_organisation(
    conn: &mut DbConnection,
    organisation_id: i64,
) -> Result<Vec<(AssessmentRow, String, NaiveDate)>, AppError> {
    Ok(assessments::table
        .inner_join(cycles::table)
        .filter(assessments::organisation_id.eq(organisation_id))
        .order((cycles::opens_on.desc(), assessments::setting.asc()))
        .select((AssessmentRow::as_select(), cycles::label, cycles::deadline))
        .load(conn)?)
}

/// One change to an answer, for its history page.
#[derive(Debug, Clone, Queryable)]
pub struct HistoryEntry {
    pub who: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub at: NaiveDateTime,
}

/// Who changed one answer, when, from what to what (newest first).
pub fn history(
    conn: &mut DbConnection,
    assessment_id: i64,
    key: &str,
) -> Result<Vec<HistoryEntry>, AppError> {
    Ok(answer_history::table
        .left_join(users::table.on(users::id.nullable().eq(answer_history::changed_by)))
        .filter(answer_history::assessment_id.eq(assessment_id))
        .filter(answer_history::question_key.eq(key))
        .order(answer_history::id.desc())
        .select((
            users::name.nullable(),
            answer_history::old_value,
            answer_history::new_value,
            answer_history::changed_at,
        ))
        .load(conn)?)
}

/// Who has worked on an assessment: each person's name and their latest change, newest first.
pub fn contributors(
    conn: &mut DbConnection,
    assessment_id: i64,
) -> Result<Vec<(String, NaiveDateTime)>, AppError> {
    let rows: Vec<(Option<String>, Option<NaiveDateTime>)> = answer_history::table
        .inner_join(users::table.on(users::id.nullable().eq(answer_history::changed_by)))
        .filter(answer_history::assessment_id.eq(assessment_id))
        .group_by(users::name)
        .select((
            users::name.nullable(),
            diesel::dsl::max(answer_history::changed_at),
        ))
        .load(conn)?;
    let mut out: Vec<(String, NaiveDateTime)> = rows
        .into_iter()
        .filter_map(|(n, t)| Some((n?, t?)))
        .collect();
    out.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    Ok(out)
}

/// Give one organisation a later deadline (administrators), audit logged.
pub fn extend_deadline(
    conn: &mut DbConnection,
    actor: &Actor,
    assessment_id: i64,
    deadline: NaiveDate,
) -> Result<(), AppError> {
    let loaded = load(conn, assessment_id)?;
    if loaded.is_closed() {
        return Err(crate::services::cycles::closed_conflict(
            conn,
            loaded.row.cycle_id,
        )?);
    }
    let cycle_deadline: NaiveDate = cycles::table
        .find(loaded.row.cycle_id)
        .select(cycles::deadline)
        .first(conn)?;
    if deadline < cycle_deadline {
        return Err(AppError::Validation(vec![FieldError::new(
            "deadline",
            format!(
                "An extension must be on or after the cycle's deadline, {}",
                cycle_deadline.format("%-d %B %Y")
            ),
        )]));
    }
    // Guarded on the cycle still being open for this assessment: an extension racing the
    // cycle's close waits for it (PostgreSQL's row lock) and then changes nothing.
    let extended = diesel::update(
        assessments::table
            .find(assessment_id)
            .filter(assessments::closed_at.is_null()),
    )
    .set((
        assessments::deadline_override.eq(Some(deadline)),
        assessments::updated_at.eq(Utc::now().naive_utc()),
    ))
    .execute(conn)?;
    if extended != 1 {
        return Err(crate::services::cycles::closed_conflict(
            conn,
            loaded.row.cycle_id,
        )?);
    }
    audit::record(
        conn,
        actor,
        Entry::new("assessment.extend_deadline", "assessment", assessment_id)
            .organisation(Some(loaded.row.organisation_id))
            .before(serde_json::json!({"deadline": loaded.deadline}))
            .after(serde_json::json!({"deadline": deadline})),
    )?;
    Ok(())
}
