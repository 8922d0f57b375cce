//! Assessments: the list a token's owner may see, one assessment, its answers (read with a
//! revision each, written with the revision the client last saw), submission and scores.
//!
//! The rules are the pages' ([`crate::web::assessment_pages`]): reading needs
//! `ReadOrganisation`, writing answers `Answer`, submitting `Approve`, all checked against the
//! assessment's own organisation, so one organisation's token can neither read nor write
//! another's. Writes go through [`crate::services::assessments::save`] and `submit`; a write in which any
//! answer is stale is refused whole (409 `stale-revision`, with the current values) and the
//! transaction is rolled back, so nothing of it is stored.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::extract::{rename_paths, utc, ApiJson, Page, PageParams};
use crate::db::schema::organisations;
use crate::domain::{answers as domain_answers, scoring, visibility, FieldError, Questionnaire};
use crate::error::AppError;
use crate::services::assessments::{self, Change, Loaded, SignOff};
use crate::services::auth::roles::Action;
use crate::services::reports::{self, RawFilters, Scope, Window};
use crate::web::auth::ApiUser;
use crate::web::{assessment_pages, AppState};

const BASE: &str = "/api/v1/assessments";
/// The most answers one request may change.
const MAX_CHANGES: usize = 1000;

/// Filters of the assessment list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListFilters {
    /// A cycle, by id or label (like 2025/26).
    pub cycle: Option<String>,
    /// A care setting, like acute.
    pub setting: Option<String>,
    /// not_started, in_progress, submitted, late or not_submitted (its cycle closed first).
    pub status: Option<String>,
    /// One organisation, by id (organisation people see only their own anyway).
    pub organisation: Option<i64>,
}

/// An assessment in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentSummary {
    pub id: i64,
    pub organisation_id: i64,
    pub ods_code: String,
    pub organisation_name: String,
    pub cycle_id: i64,
    pub cycle: String,
    pub setting: String,
    pub questionnaire_version_id: i64,
    /// not_started, in_progress, submitted or reopened.
    pub status: String,
    /// For reporting: not_started, in_progress, submitted, late or not_submitted (its cycle closed first).
    pub report_status: String,
    pub deadline: NaiveDate,
    pub submitted_at: Option<DateTime<Utc>>,
    /// The submission's reference.
    pub reference: Option<String>,
    /// The submitted overall score.
    pub overall: Option<f64>,
    pub overall_band: Option<String>,
}

/// The assessments the token's owner may read: every one for administrators and auditors,
/// their own organisation's for its people.
#[utoipa::path(operation_id = "assessments_list", get, path = "/api/v1/assessments", tag = "assessments",
    params(ListFilters, PageParams),
    responses((status = 200, description = "A page of assessments", body = Page<AssessmentSummary>)))]
pub async fn list(
    state: web::Data<AppState>,
    api: ApiUser,
    filters: web::Query<ListFilters>,
    paging: web::Query<PageParams>,
) -> Result<web::Json<Page<AssessmentSummary>>, AppError> {
    let paging = paging.checked()?;
    let filters = filters.into_inner();
    let organisation = if api.may(Action::ReadAllResults) {
        filters.organisation
    } else {
        let own = api
            .user
            .organisation_id
            .filter(|o| api.may(Action::ReadOrganisation(*o)))
            .ok_or(AppError::Forbidden)?;
        if filters.organisation.is_some_and(|o| o != own) {
            return Err(AppError::Forbidden);
        }
        Some(own)
    };
    let raw = RawFilters {
        cycle: filters.cycle.clone().unwrap_or_default(),
        setting: filters.setting.clone().unwrap_or_default(),
        status: filters.status.clone().unwrap_or_default(),
        ..RawFilters::default()
    };
    let members = state
        .db
        .read(move |conn| {
            let checked = reports::resolve_filters(conn, &raw)?;
            let (members, _) = reports::load_members(
                conn,
                &checked,
                &Scope::All,
                Window {
                    organisation_id: organisation,
                    ..Window::default()
                },
            )?;
            Ok(members)
        })
        .await?;
    let items = members
        .into_iter()
        .map(|m| AssessmentSummary {
            id: m.assessment_id,
            organisation_id: m.organisation_id,
            ods_code: m.ods_code,
            organisation_name: m.name,
            cycle_id: m.cycle_id,
            cycle: m.cycle_label,
            setting: m.setting,
            questionnaire_version_id: m.version_id,
            status: m.status,
            report_status: m.report_status.as_str().to_string(),
            deadline: m.deadline,
            submitted_at: m.submitted_at.map(utc),
            reference: m.reference,
            overall: m.overall,
            overall_band: m.overall_band,
        })
        .collect();
    let organisation_text = filters.organisation.map(|o| o.to_string());
    let pairs: Vec<(&str, &str)> = [
        ("cycle", filters.cycle.as_deref()),
        ("setting", filters.setting.as_deref()),
        ("status", filters.status.as_deref()),
        ("organisation", organisation_text.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    Ok(web::Json(Page::slice(items, paging, BASE, &pairs)))
}

/// Load an assessment and check the token's owner may do `action` to its organisation.
pub async fn load_for(
    state: &AppState,
    api: &ApiUser,
    id: i64,
    action: fn(i64) -> Action,
) -> Result<Loaded, AppError> {
    let loaded = assessment_pages::load_checked(state, id, |org| api.require(action(org))).await?;
    assessment_pages::require_in_progress_reader(&loaded, |a| api.require(a))?;
    Ok(loaded)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationRef {
    pub id: i64,
    pub ods_code: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CycleRef {
    pub id: i64,
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionnaireRef {
    pub id: i64,
    pub key: String,
    pub version: String,
    pub title: String,
}

/// How far the answers have got.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// Visible questions with an answer (N/A included).
    pub answered: usize,
    /// Visible questions.
    pub visible: usize,
    /// Nothing required is missing: the assessment can be submitted.
    pub complete: bool,
    /// Keys of visible, required questions with no answer.
    pub missing_required: Vec<String>,
}

/// One assessment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assessment {
    pub id: i64,
    pub organisation: OrganisationRef,
    pub cycle: CycleRef,
    pub setting: String,
    pub questionnaire: QuestionnaireRef,
    /// not_started, in_progress, submitted or reopened.
    pub status: String,
    /// Its deadline (the cycle's, or an extension).
    pub deadline: NaiveDate,
    /// Goes up with every change to the assessment.
    pub revision: i64,
    /// Answers may be changed.
    pub open: bool,
    /// Its cycle has closed: nothing in it changes any more (not submitted is final).
    pub closed: bool,
    pub progress: Progress,
}

/// One assessment with its progress (who may read its organisation).
#[utoipa::path(operation_id = "assessments_get", get, path = "/api/v1/assessments/{id}", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    responses((status = 200, description = "The assessment", body = Assessment)))]
pub async fn get(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<Assessment>, AppError> {
    let loaded = load_for(&state, &api, path.into_inner(), Action::ReadOrganisation).await?;
    let org = loaded.row.organisation_id;
    let ods_code: String = state
        .db
        .read(move |conn| {
            Ok(organisations::table
                .find(org)
                .select(organisations::ods_code)
                .first(conn)?)
        })
        .await?;
    let report = scoring::score(loaded.questionnaire(), &loaded.answers());
    let summary = &loaded.version.summary;
    Ok(web::Json(Assessment {
        id: loaded.row.id,
        organisation: OrganisationRef {
            id: org,
            ods_code,
            name: loaded.organisation_name.clone(),
        },
        cycle: CycleRef {
            id: loaded.row.cycle_id,
            label: loaded.cycle_label.clone(),
        },
        setting: loaded.row.setting.clone(),
        questionnaire: QuestionnaireRef {
            id: summary.id,
            key: summary.key.clone(),
            version: summary.version.clone(),
            title: summary.title.clone(),
        },
        status: loaded.row.status.clone(),
        deadline: loaded.deadline,
        revision: loaded.row.revision,
        closed: loaded.is_closed(),
        open: loaded.is_open_for_answers(),
        progress: Progress {
            answered: report.answered,
            visible: report.visible,
            complete: report.complete,
            missing_required: report.missing_required,
        },
    }))
}

/// A question with its stored answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionAnswer {
    pub key: String,
    /// The domain the question is in.
    pub domain: String,
    /// scale, checklist, single, multi, yes_no, number or text.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub text: String,
    pub required: bool,
    /// `{"na": true}` is accepted.
    pub allow_na: bool,
    /// Shown, given the other answers (hidden questions are not counted).
    pub visible: bool,
    /// The answer as in an answers file (format spec section 2), or null.
    pub value: serde_json::Value,
    /// Send this back when changing the answer; 0 when there is none.
    pub revision: i64,
    /// Copied from last year's submission and not yet confirmed.
    pub carried_forward: bool,
}

/// Every question of an assessment with its answer and revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerSheet {
    pub assessment_id: i64,
    /// The assessment's revision.
    pub revision: i64,
    /// Answers may be changed.
    pub open: bool,
    pub questions: Vec<QuestionAnswer>,
}

fn answer_sheet(loaded: &Loaded) -> AnswerSheet {
    let q = loaded.questionnaire();
    let visible = visibility::visible(q, &loaded.answers());
    let questions = q
        .domains
        .iter()
        .flat_map(|d| d.questions.iter().map(move |x| (d, x)))
        .map(|(d, x)| {
            let stored = loaded.answers.get(&x.key);
            QuestionAnswer {
                key: x.key.clone(),
                domain: d.key.clone(),
                kind: x.kind.type_name().to_string(),
                text: x.text.clone(),
                required: x.required,
                allow_na: x.allow_na,
                visible: visible.contains(&x.key),
                value: stored.map_or(serde_json::Value::Null, |s| s.answer.to_json()),
                revision: stored.map_or(0, |s| s.revision),
                carried_forward: stored.is_some_and(|s| s.carried_forward),
            }
        })
        .collect();
    AnswerSheet {
        assessment_id: loaded.row.id,
        revision: loaded.row.revision,
        open: loaded.is_open_for_answers(),
        questions,
    }
}

/// Every question with its answer and the revision to send back when changing it (who may
/// read its organisation).
#[utoipa::path(operation_id = "assessments_answers", get, path = "/api/v1/assessments/{id}/answers", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    responses((status = 200, description = "The answers", body = AnswerSheet)))]
pub async fn answers(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<AnswerSheet>, AppError> {
    let loaded = load_for(&state, &api, path.into_inner(), Action::ReadOrganisation).await?;
    Ok(web::Json(answer_sheet(&loaded)))
}

/// One answer to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerChange {
    /// The question's key.
    pub key: String,
    /// The new answer (format spec section 2), `{"na": true}`, or null to clear it.
    pub value: serde_json::Value,
    /// The revision you last read for this answer (0 when it had none).
    #[schema(minimum = 0)]
    pub revision: i64,
}

/// Answers to change, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswersPatch {
    pub answers: Vec<AnswerChange>,
}

/// What was saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saved {
    /// Keys whose answer changed.
    pub saved: Vec<String>,
    /// The new revision of each answer saved or confirmed.
    pub revisions: BTreeMap<String, i64>,
}

/// Check each change against the question set, naming every problem by its place in the
/// body.
fn changes(q: &Questionnaire, patch: AnswersPatch) -> Result<Vec<Change>, AppError> {
    if patch.answers.len() > MAX_CHANGES {
        return Err(AppError::Validation(vec![FieldError::new(
            "answers",
            format!("send at most {MAX_CHANGES} answers at once"),
        )]));
    }
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, c) in patch.answers.into_iter().enumerate() {
        if c.revision < 0 {
            errors.push(FieldError::new(
                format!("answers[{i}].revision"),
                "must be 0 or more",
            ));
        }
        if !seen.insert(c.key.clone()) {
            errors.push(FieldError::new(
                format!("answers[{i}].key"),
                "this question is already in the list",
            ));
            continue;
        }
        let Some(question) = q.question(&c.key) else {
            errors.push(FieldError::new(
                format!("answers[{i}].key"),
                "there is no such question in this assessment",
            ));
            continue;
        };
        match domain_answers::parse_value(question, &c.value) {
            Ok(answer) => out.push(Change {
                key: c.key,
                answer,
                seen_revision: c.revision,
            }),
            Err(message) => errors.push(FieldError::new(format!("answers[{i}].value"), message)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Change answers (who may answer for its organisation). Each carries the revision it was
/// read at; if any is stale, nothing is saved and the 409 holds the current values.
#[utoipa::path(operation_id = "assessments_save", patch, path = "/api/v1/assessments/{id}/answers", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    request_body = AnswersPatch,
    responses((status = 200, description = "Saved", body = Saved)))]
pub async fn save(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
    body: ApiJson<AnswersPatch>,
) -> Result<web::Json<Saved>, AppError> {
    let id = path.into_inner();
    let patch = body.0;
    let outcome = state
        .db
        .write(move |conn| {
            // Loaded, authorised and saved in one transaction, as the pages' autosave does.
            let loaded = assessments::load(conn, id)?;
            api.require(Action::Answer(loaded.row.organisation_id))?;
            let changes = changes(loaded.questionnaire(), patch)?;
            let outcome = assessments::save_loaded(conn, &api.actor(), &loaded, &changes)?;
            if outcome.conflicts.is_empty() {
                return Ok(outcome);
            }
            let now = assessments::load(conn, id)?;
            let current: Vec<serde_json::Value> = outcome
                .conflicts
                .iter()
                .map(|c| {
                    json!({
                        "key": c.key,
                        "value": c.their_value,
                        "revision": now.answers.get(&c.key).map_or(0, |a| a.revision),
                        "changed_by": c.changed_by,
                    })
                })
                .collect();
            // Refusing rolls back the changes that did apply: all or none.
            Err(AppError::StaleRevision {
                message: format!(
                    "{} answer(s) changed since you read them; nothing was saved. Read the current values, then send your changes with their revisions.",
                    current.len()
                ),
                current: json!(current),
            })
        })
        .await?;
    Ok(web::Json(Saved {
        saved: outcome.saved,
        revisions: outcome.revisions,
    }))
}

/// The sign-off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The full name of the person signing off.
    pub name: String,
    pub job_title: String,
    /// They confirm the declaration shown on the submit page.
    pub declaration: bool,
}

/// A submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    pub reference: String,
    pub overall: Option<f64>,
    /// Submitted after the deadline.
    pub late: bool,
}

/// Sign off, submit and score (the organisation's approvers). Missing required answers are
/// a 422 naming each as `answers.<key>`.
#[utoipa::path(operation_id = "assessments_submit", post, path = "/api/v1/assessments/{id}/submit", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    request_body = SubmitBody,
    responses((status = 201, description = "Submitted and scored", body = Submitted)))]
pub async fn submit(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
    body: ApiJson<SubmitBody>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    load_for(&state, &api, id, Action::Approve).await?;
    let body = body.0;
    let signoff = SignOff {
        name: body.name,
        job_title: body.job_title,
        declaration: body.declaration,
    };
    let actor = api.actor();
    let notifier = state.notifier();
    let done = state
        .db
        .write(move |conn| assessments::submit(conn, &actor, id, &signoff, &notifier))
        .await
        .map_err(|e| {
            rename_paths(e, |p| {
                Some(match p {
                    "signoff-name" => "name".to_string(),
                    "signoff-job-title" => "job_title".to_string(),
                    "declaration" => "declaration".to_string(),
                    key => format!("answers.{key}"),
                })
            })
        })?;
    crate::services::mail::wake();
    Ok(HttpResponse::Created().json(Submitted {
        reference: done.reference,
        overall: done.overall,
        late: done.late,
    }))
}

/// A score with its maturity band; both null when nothing counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scored {
    pub score: Option<f64>,
    pub band: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PillarScore {
    pub key: String,
    pub title: String,
    pub score: Option<f64>,
    pub band: Option<String>,
}

/// How one question contributed to its domain's score.
#[derive(Debug, Serialize, ToSchema)]
pub struct Contribution {
    pub key: String,
    pub text: String,
    /// The answer's raw score, when it has one.
    pub raw: Option<f64>,
    /// (raw - min) / (max - min), when the question counts.
    pub normalised: Option<f64>,
    pub weight: f64,
    pub counted: bool,
    /// counted, hidden, not_answered, not_applicable, not_scored, option_not_scored or
    /// outside_bands.
    pub reason: String,
    /// The reason in words.
    pub reason_text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DomainScore {
    pub key: String,
    pub title: String,
    pub score: Option<f64>,
    pub band: Option<String>,
    /// Questions that counted.
    pub counted: usize,
    pub answered: usize,
    pub visible: usize,
    pub required_missing: Vec<String>,
    /// Every question of the domain, in order: the workings.
    pub explanation: Vec<Contribution>,
}

/// Scores with their workings (format spec section 4).
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreReport {
    pub overall: Scored,
    pub pillars: Vec<PillarScore>,
    pub domains: Vec<DomainScore>,
    pub missing_required: Vec<String>,
    pub complete: bool,
    pub answered: usize,
    pub visible: usize,
}

/// An assessment's scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scores {
    pub assessment_id: i64,
    /// Not submitted yet: worked out from the answers as they stand.
    pub provisional: bool,
    pub reference: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub report: ScoreReport,
    /// For each domain, the fewest answer changes that would lift its score into the next
    /// band, worked out from the answers as they stand (the path to the next band).
    pub next_band: Vec<NextBand>,
}

/// What one domain would need to reach its next band.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextBand {
    pub domain: String,
    pub score: Option<f64>,
    pub band: Option<String>,
    /// The next band's label; null in the top band or when the domain has no score yet.
    pub target: Option<String>,
    /// The next band's lowest score.
    pub target_min: Option<f64>,
    /// The smallest sets of changes, best first (fewest changes, then the smallest steps);
    /// empty when more than four changes would be needed or there is no next band.
    pub paths: Vec<NextBandPath>,
}

/// A set of answer changes that together lift a domain into the next band.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextBandPath {
    /// The domain's score with the changes applied.
    pub score: f64,
    pub band: String,
    pub changes: Vec<NextBandChange>,
}

/// One answer to change, with values as in an answers file.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextBandChange {
    pub question: String,
    /// The current answer, or null when unanswered.
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

fn next_band_report(q: &Questionnaire, answers: &crate::domain::Answers) -> Vec<NextBand> {
    let live = scoring::score(q, answers);
    crate::domain::next_band::paths(q, answers, &live)
        .into_iter()
        .map(|d| NextBand {
            target_min: d.target.as_ref().map(|t| t.min),
            target: d.target.map(|t| t.band),
            paths: d
                .paths
                .into_iter()
                .map(|p| NextBandPath {
                    score: p.score,
                    band: p.band,
                    changes: p
                        .changes
                        .into_iter()
                        .map(|c| NextBandChange {
                            from: c.from.map_or(serde_json::Value::Null, |a| a.to_json()),
                            to: c.to.to_json(),
                            question: c.question,
                        })
                        .collect(),
                })
                .collect(),
            domain: d.domain,
            score: d.score,
            band: d.band,
        })
        .collect()
}

fn score_report(q: &Questionnaire, r: scoring::Assessment) -> ScoreReport {
    let title = |key: &str| {
        q.domains
            .iter()
            .find(|d| d.key == key)
            .map_or_else(String::new, |d| d.title.clone())
    };
    ScoreReport {
        overall: Scored {
            score: r.overall.score,
            band: r.overall.band,
        },
        pillars: r
            .pillars
            .into_iter()
            .map(|(key, s)| PillarScore {
                title: q
                    .pillars
                    .iter()
                    .find(|p| p.key == key)
                    .map_or_else(String::new, |p| p.title.clone()),
                key,
                score: s.score,
                band: s.band,
            })
            .collect(),
        domains: r
            .domains
            .into_iter()
            .map(|d| DomainScore {
                title: title(&d.key),
                explanation: d
                    .explanation
                    .into_iter()
                    .map(|c| Contribution {
                        text: q
                            .question(&c.key)
                            .map_or_else(String::new, |x| x.text.clone()),
                        key: c.key.into_string(),
                        raw: c.raw,
                        normalised: c.normalised,
                        weight: c.weight,
                        counted: c.counted,
                        reason: c.reason.as_str().to_string(),
                        reason_text: c.reason.describe().to_string(),
                    })
                    .collect(),
                key: d.key,
                score: d.score,
                band: d.band,
                counted: d.counted,
                answered: d.answered,
                visible: d.visible,
                required_missing: d.required_missing,
            })
            .collect(),
        missing_required: r.missing_required,
        complete: r.complete,
        answered: r.answered,
        visible: r.visible,
    }
}

/// The submitted scores with their workings, or provisional scores from the answers so far
/// (who may read its organisation).
#[utoipa::path(operation_id = "assessments_scores", get, path = "/api/v1/assessments/{id}/scores", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    responses((status = 200, description = "The scores", body = Scores)))]
pub async fn scores(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<Scores>, AppError> {
    let id = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::ReadOrganisation).await?;
    let stored = state
        .db
        .read(move |conn| assessments::current_scores(conn, id))
        .await?;
    let q = loaded.questionnaire();
    let answers = loaded.answers();
    let (report, reference, at) = match stored {
        Some((reference, at, report)) => (report, Some(reference), Some(utc(at))),
        None => (scoring::score(q, &answers), None, None),
    };
    Ok(web::Json(Scores {
        next_band: next_band_report(q, &answers),
        assessment_id: id,
        provisional: reference.is_none(),
        reference,
        submitted_at: at,
        report: score_report(q, report),
    }))
}
