//! Yearly cycles. Opening a cycle fixes which published version serves each care setting and
//! creates one assessment per open organisation and setting, snapshotting the ICB and region
//! the organisation belongs to on the opening date (ICBs merge; reports must use the ICB of the
//! cycle). Answers whose question is unchanged since the organisation's previous submission
//! (same key and fingerprint, format spec section 5) are carried forward, marked until a
//! respondent confirms them.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{
    answers, assessments, cycle_versions, cycles, organisation_settings, organisations,
    questionnaire_versions, score_sets,
};
use crate::db::DbConnection;
use crate::domain::answers as domain_answers;
use crate::domain::comparability;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::notifications::Notifier;
use crate::services::questionnaires;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = cycles)]
pub struct Cycle {
    pub id: i64,
    pub label: String,
    pub opens_on: NaiveDate,
    pub deadline: NaiveDate,
    pub status: String,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    /// When an administrator closed it (see [`close`]).
    pub closed_at: Option<NaiveDateTime>,
}

/// What an administrator asks for when opening a cycle.
#[derive(Debug, Clone)]
pub struct NewCycle {
    pub label: String,
    pub opens_on: NaiveDate,
    pub deadline: NaiveDate,
    /// Care setting -> questionnaire version id.
    pub versions: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize)]
pub struct OpenedCycle {
    pub id: i64,
    pub assessments: usize,
    pub carried_forward_answers: usize,
}

fn valid_label(label: &str) -> bool {
    let b = label.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'/'
        && b[5..].iter().all(u8::is_ascii_digit)
}

/// Check the request, naming each field's problem.
pub fn validate(conn: &mut DbConnection, new: &NewCycle) -> Result<(), AppError> {
    let mut errors = Vec::new();
    if !valid_label(&new.label) {
        errors.push(FieldError::new(
            "label",
            "Enter the cycle as years, like 2025/26",
        ));
    }
    if new.deadline < new.opens_on {
        errors.push(FieldError::new(
            "deadline",
            "The deadline must be on or after the opening date",
        ));
    }
    if new.versions.is_empty() {
        errors.push(FieldError::new(
            "versions",
            "Choose a published question set for at least one care setting",
        ));
    }
    let exists: i64 = cycles::table
        .filter(cycles::label.eq(&new.label))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        errors.push(FieldError::new(
            "label",
            format!("A cycle called {} already exists", new.label),
        ));
    }
    for (setting, version_id) in &new.versions {
        match questionnaires::get_by_id(conn, *version_id) {
            Ok(v) if v.summary.status != questionnaires::PUBLISHED => errors.push(FieldError::new(
                format!("version-{setting}"),
                format!(
                    "{} {} is a draft; publish it before a cycle uses it",
                    v.summary.key, v.summary.version
                ),
            )),
            Ok(v) if !v.questionnaire.settings.contains(setting) => errors.push(FieldError::new(
                format!("version-{setting}"),
                format!(
                    "{} {} does not serve the {setting} setting",
                    v.summary.key, v.summary.version
                ),
            )),
            Ok(_) => {}
            Err(AppError::NotFound) => errors.push(FieldError::new(
                format!("version-{setting}"),
                "No such question set version",
            )),
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Open a cycle and create its assessments, in the caller's transaction; when it opens today
/// or earlier, queue the "cycle opened" emails in the same transaction (a cycle dated later is
/// announced by the scheduler on its opening day).
pub fn open(
    conn: &mut DbConnection,
    actor: &Actor,
    new: &NewCycle,
    notifier: &Notifier,
) -> Result<OpenedCycle, AppError> {
    validate(conn, new)?;
    let now = Utc::now().naive_utc();
    let cycle_id: i64 = diesel::insert_into(cycles::table)
        .values((
            cycles::label.eq(&new.label),
            cycles::opens_on.eq(new.opens_on),
            cycles::deadline.eq(new.deadline),
            cycles::status.eq("open"),
            cycles::created_by.eq(actor.user_id),
            cycles::created_at.eq(now),
        ))
        .returning(cycles::id)
        .get_result(conn)?;
    let mut created = 0;
    let mut carried = 0;
    for (setting, version_id) in &new.versions {
        diesel::insert_into(cycle_versions::table)
            .values((
                cycle_versions::cycle_id.eq(cycle_id),
                cycle_versions::setting.eq(setting),
                cycle_versions::questionnaire_version_id.eq(version_id),
            ))
            .execute(conn)?;
        let next = questionnaires::get_by_id(conn, *version_id)?;
        let members: Vec<(i64, Option<String>, Option<NaiveDate>)> = organisations::table
            .inner_join(organisation_settings::table)
            .filter(organisation_settings::setting.eq(setting))
            .select((
                organisations::id,
                organisations::region,
                organisations::closed_on,
            ))
            .load(conn)?;
        for (org_id, region, closed_on) in members {
            if closed_on.is_some_and(|c| c < new.opens_on) {
                continue;
            }
            let icb = crate::services::registry::icb_on(conn, org_id, new.opens_on)?;
            let assessment_id: i64 = diesel::insert_into(assessments::table)
                .values((
                    assessments::cycle_id.eq(cycle_id),
                    assessments::organisation_id.eq(org_id),
                    assessments::setting.eq(setting),
                    assessments::questionnaire_version_id.eq(version_id),
                    assessments::status.eq("not_started"),
                    assessments::icb_id.eq(icb),
                    assessments::region.eq(&region),
                    assessments::revision.eq(0),
                    assessments::created_at.eq(now),
                    assessments::updated_at.eq(now),
                ))
                .returning(assessments::id)
                .get_result(conn)?;
            created += 1;
            carried += carry_forward(
                conn,
                org_id,
                setting,
                cycle_id,
                assessment_id,
                &next.questionnaire,
                now,
            )?;
        }
    }
    // Unfinished improvement actions continue in the new cycle (docs/review.md).
    crate::services::plans::carry_forward(conn, actor, cycle_id, now)?;
    audit::record(
        conn,
        actor,
        Entry::new("cycle.open", "cycle", cycle_id).after(serde_json::json!({
            "label": new.label, "opens_on": new.opens_on, "deadline": new.deadline,
            "versions": new.versions, "assessments": created,
        })),
    )?;
    let cycle: Cycle = cycles::table
        .find(cycle_id)
        .select(Cycle::as_select())
        .first(conn)?;
    crate::services::notifications::cycle_opened(conn, notifier, &cycle, now)?;
    Ok(OpenedCycle {
        id: cycle_id,
        assessments: created,
        carried_forward_answers: carried,
    })
}

/// Copy unchanged answers from the organisation's latest submitted assessment in an earlier
/// cycle for the same setting. Returns how many were copied.
fn carry_forward(
    conn: &mut DbConnection,
    org_id: i64,
    setting: &str,
    cycle_id: i64,
    assessment_id: i64,
    next: &crate::domain::Questionnaire,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let previous: Option<(i64, String)> = score_sets::table
        .inner_join(assessments::table)
        .filter(assessments::organisation_id.eq(org_id))
        .filter(assessments::setting.eq(setting))
        .filter(assessments::cycle_id.ne(cycle_id))
        .filter(score_sets::is_current.eq(true))
        .order(score_sets::scored_at.desc())
        .select((
            score_sets::questionnaire_version_id,
            score_sets::answers_snapshot,
        ))
        .first(conn)
        .optional()?;
    let Some((prev_version, snapshot)) = previous else {
        return Ok(0);
    };
    let prev = questionnaires::get_by_id(conn, prev_version)?;
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(&snapshot)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("answers snapshot unreadable: {e}")))?;
    // A stored snapshot was valid when submitted; anything that no longer parses is skipped.
    let prev_answers: domain_answers::Answers = raw
        .iter()
        .filter_map(|(k, v)| {
            let q = prev.questionnaire.question(k)?;
            domain_answers::parse_value(q, v)
                .ok()
                .flatten()
                .map(|a| (k.clone(), a))
        })
        .collect();
    let kept = comparability::carry_forward(&prev.questionnaire, next, &prev_answers);
    for (key, answer) in &kept {
        diesel::insert_into(answers::table)
            .values((
                answers::assessment_id.eq(assessment_id),
                answers::question_key.eq(key),
                answers::value.eq(answer.to_json().to_string()),
                answers::revision.eq(1),
                answers::carried_forward.eq(true),
                answers::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(kept.len())
}

/// What closing a cycle did.
#[derive(Debug, Clone, Serialize)]
pub struct Closed {
    pub id: i64,
    pub closed_at: NaiveDateTime,
    /// Assessments that had not been submitted and now read as "not submitted".
    pub not_submitted: usize,
    /// Assessments whose submission is now final.
    pub submitted: usize,
    /// Score reports queued for approvers (results are final once the cycle is closed).
    pub score_reports: usize,
}

/// One cycle by id.
pub fn get(conn: &mut DbConnection, cycle_id: i64) -> Result<Cycle, AppError> {
    cycles::table
        .find(cycle_id)
        .select(Cycle::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// The 409 for a change to a cycle that is no longer open: who closed it and when, from the
/// audit log, so the second of two administrators knows what happened.
pub fn closed_conflict(conn: &mut DbConnection, cycle_id: i64) -> Result<AppError, AppError> {
    use crate::db::schema::{audit_log, users};
    let cycle = get(conn, cycle_id)?;
    let who: Option<Option<String>> = audit_log::table
        .left_join(users::table.on(users::id.nullable().eq(audit_log::actor_user_id)))
        .filter(audit_log::action.eq("cycle.close"))
        .filter(audit_log::entity_id.eq(cycle_id.to_string()))
        .order(audit_log::id.desc())
        .select(users::name.nullable())
        .first(conn)
        .optional()?;
    let when = cycle
        .closed_at
        .map(|at| format!(" on {}", at.format("%-d %B %Y at %H:%M UTC")))
        .unwrap_or_default();
    let by = who
        .flatten()
        .map(|name| format!(" by {name}"))
        .unwrap_or_default();
    Ok(AppError::Conflict(format!(
        "The {} cycle was closed{when}{by}, so it can no longer be changed.",
        cycle.label
    )))
}

/// Close a cycle (administrators), in the caller's transaction: no more answers, submissions,
/// reopening or deadline extensions; assessments not submitted read as "not submitted" and
/// every submission's results are final, so their score reports are queued now. The change
/// is guarded (`WHERE status = 'open'`, then `WHERE closed_at IS NULL` on each assessment), so
/// of two administrators closing at once one closes and the other is told who did, and a
/// save, submission or extension racing the close either finishes before it or is refused.
pub fn close(
    conn: &mut DbConnection,
    actor: &Actor,
    cycle_id: i64,
    notifier: &Notifier,
) -> Result<Closed, AppError> {
    let now = Utc::now().naive_utc();
    let closed = diesel::update(
        cycles::table
            .find(cycle_id)
            .filter(cycles::status.eq("open")),
    )
    .set((cycles::status.eq("closed"), cycles::closed_at.eq(Some(now))))
    .execute(conn)?;
    if closed != 1 {
        return Err(closed_conflict(conn, cycle_id)?);
    }
    // Those not submitted first: a submission committing meanwhile is waited for, then
    // skipped here (it is submitted now) and closed by the second statement.
    let not_submitted = diesel::update(
        assessments::table
            .filter(assessments::cycle_id.eq(cycle_id))
            .filter(assessments::closed_at.is_null())
            .filter(assessments::status.ne("submitted")),
    )
    .set((
        assessments::closed_at.eq(Some(now)),
        assessments::revision.eq(assessments::revision + 1),
        assessments::updated_at.eq(now),
    ))
    .execute(conn)?;
    let submitted = diesel::update(
        assessments::table
            .filter(assessments::cycle_id.eq(cycle_id))
            .filter(assessments::closed_at.is_null()),
    )
    .set(assessments::closed_at.eq(Some(now)))
    .execute(conn)?;
    let cycle = get(conn, cycle_id)?;
    let score_reports =
        crate::services::notifications::score_reports_when_closed(conn, notifier, &cycle, now)?;
    audit::record(
        conn,
        actor,
        Entry::new("cycle.close", "cycle", cycle_id)
            .before(serde_json::json!({"status": "open"}))
            .after(serde_json::json!({
                "status": "closed", "label": cycle.label,
                "not_submitted": not_submitted, "submitted": submitted,
            })),
    )?;
    Ok(Closed {
        id: cycle_id,
        closed_at: now,
        not_submitted,
        submitted,
        score_reports,
    })
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Cycle>, AppError> {
    Ok(cycles::table
        .order(cycles::opens_on.desc())
        .select(Cycle::as_select())
        .load(conn)?)
}

/// A published version as the "open a cycle" form offers it.
#[derive(Debug, Clone)]
pub struct PublishedVersion {
    pub id: i64,
    pub key: String,
    pub version: String,
    pub settings: Vec<String>,
}

/// Every published version, for the "open a cycle" form.
pub fn published_versions(conn: &mut DbConnection) -> Result<Vec<PublishedVersion>, AppError> {
    let ids: Vec<i64> = questionnaire_versions::table
        .filter(questionnaire_versions::status.eq(questionnaires::PUBLISHED))
        .select(questionnaire_versions::id)
        .load(conn)?;
    let mut out = Vec::new();
    for id in ids {
        let v = questionnaires::get_by_id(conn, id)?;
        out.push(PublishedVersion {
            id,
            key: v.summary.key,
            version: v.summary.version,
            settings: v.questionnaire.settings.clone(),
        });
    }
    Ok(out)
}
