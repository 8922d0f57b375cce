//! Auditor review of an assessment (issue 23, docs/review.md), the same service and rules as
//! the review pages ([`crate::web::review_pages`]): reading needs what reading the assessment
//! needs; accepting a section, raising and closing a query `Review` (auditors); answering a
//! query `Answer`, and changing the answer in reply `Approve` with the declaration. Every
//! write names the `revision` it was based on; a write against a section or query someone
//! else has since changed is answered 409 and changes nothing.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::assessments::load_for;
use super::extract::{utc, ApiJson};
use crate::domain::answers;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::review::{self, Reply};
use crate::web::auth::ApiUser;
use crate::web::AppState;

/// A query on one question.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQuery {
    pub id: i64,
    /// The section's (domain's) key.
    pub section: String,
    pub question: String,
    pub question_text: String,
    /// open (waiting for the organisation), answered (waiting for the auditor) or closed.
    pub status: String,
    /// Send this back when answering or closing.
    pub revision: i64,
    pub message: String,
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    pub response: Option<String>,
    /// The answer was changed (and the assessment resubmitted) in reply.
    pub answer_changed: bool,
    pub answered_by: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One section's review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewSectionState {
    pub key: String,
    pub title: String,
    /// not_reviewed, accepted or queried (a query not closed).
    pub state: String,
    /// Send this back when accepting (0 before anything happened to the section).
    pub revision: i64,
    pub accepted_by: Option<String>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub queries: Vec<ReviewQuery>,
}

/// An assessment's review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewState {
    /// not_reviewed, in_review or reviewed (every section accepted).
    pub state: String,
    pub sections: Vec<ReviewSectionState>,
}

fn query_of(q: review::Query) -> ReviewQuery {
    ReviewQuery {
        id: q.id,
        section: q.domain_key,
        question: q.question_key,
        question_text: q.question_text,
        status: q.status.as_str().to_string(),
        revision: q.revision,
        message: q.message,
        raised_by: q.raised_by,
        raised_at: utc(q.raised_at),
        response: q.response,
        answer_changed: q.answer_changed,
        answered_by: q.answered_by,
        answered_at: q.answered_at.map(utc),
        closed_by: q.closed_by,
        closed_at: q.closed_at.map(utc),
    }
}

fn state_of(r: review::Review) -> ReviewState {
    ReviewState {
        state: r.state.as_str().to_string(),
        sections: r
            .sections
            .into_iter()
            .map(|s| ReviewSectionState {
                state: s.state.as_str().to_string(),
                key: s.key,
                title: s.title,
                revision: s.revision,
                accepted_by: s.accepted_by,
                accepted_at: s.accepted_at.map(utc),
                queries: s.queries.into_iter().map(query_of).collect(),
            })
            .collect(),
    }
}

fn review_action(_org: i64) -> Action {
    Action::Review
}

/// The review of an assessment: its state, each section's, and every query.
#[utoipa::path(operation_id = "review_get", get, path = "/api/v1/assessments/{id}/review", tag = "review",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    responses((status = 200, description = "The review", body = ReviewState)))]
pub async fn get(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<ReviewState>, AppError> {
    let loaded = load_for(&state, &api, path.into_inner(), Action::ReadOrganisation).await?;
    let r = state
        .db
        .read(move |conn| review::review(conn, &loaded))
        .await?;
    Ok(web::Json(state_of(r)))
}

/// The revision a write was based on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionRequest {
    /// The section's or query's `revision` as you last read it.
    #[schema(minimum = 0)]
    pub revision: i64,
}

/// Accept a section (auditors); the approvers are emailed. 409 when the section has a query
/// not closed, is accepted already, or changed since `revision`.
#[utoipa::path(operation_id = "review_accept", post, path = "/api/v1/assessments/{id}/review/sections/{key}/accept", tag = "review",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The section's (domain's) key", example = "strategy")),
    request_body = RevisionRequest,
    responses((status = 200, description = "The review as it now is", body = ReviewState)))]
pub async fn accept(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String)>,
    body: ApiJson<RevisionRequest>,
) -> Result<web::Json<ReviewState>, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &api, id, review_action).await?;
    let seen = body.0.revision;
    let (actor, notifier, who) = (api.actor(), state.notifier(), api.user.clone());
    let r = state
        .db
        .write(move |conn| review::accept(conn, &actor, &notifier, &who, &loaded, &key, seen))
        .await?;
    crate::services::mail::wake();
    Ok(web::Json(state_of(r)))
}

/// Raise a query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuery {
    /// The question's key.
    pub question: String,
    /// What you are asking (1 to 2000 characters).
    pub message: String,
}

/// Raise a query on a question (auditors); the organisation's approvers and contributors are
/// emailed and the section's acceptance, if any, is withdrawn. 409 when the question already
/// has a query not closed.
#[utoipa::path(operation_id = "review_raise", post, path = "/api/v1/assessments/{id}/review/queries", tag = "review",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    request_body = NewQuery,
    responses((status = 201, description = "The query", body = ReviewQuery)))]
pub async fn raise(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
    body: ApiJson<NewQuery>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &api, path.into_inner(), review_action).await?;
    let body = body.0;
    let (actor, notifier, who) = (api.actor(), state.notifier(), api.user.clone());
    let q = state
        .db
        .write(move |conn| {
            review::raise(
                conn,
                &actor,
                &notifier,
                &who,
                &loaded,
                &body.question,
                &body.message,
            )
        })
        .await?;
    crate::services::mail::wake();
    Ok(HttpResponse::Created().json(query_of(q)))
}

/// The organisation's answer to a query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryAnswer {
    /// The answer to the auditor (1 to 2000 characters).
    pub message: String,
    /// The query's `revision` as you last read it.
    #[schema(minimum = 0)]
    pub revision: i64,
    /// A new answer to the question, in the form `PATCH .../answers` takes (approvers only;
    /// resubmits the assessment and re-scores it, keeping the earlier scores).
    pub answer: Option<serde_json::Value>,
    /// Required with a changed answer: the new answer is accurate.
    #[serde(default)]
    pub declaration: bool,
}

/// Answer a query (the organisation's people), optionally changing the answer (approvers,
/// with `declaration`); the auditor who raised it is emailed. 409 when the query is not
/// open or changed since `revision`.
#[utoipa::path(operation_id = "review_answer", post, path = "/api/v1/assessments/{id}/review/queries/{query}/answer", tag = "review",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("query" = i64, Path, description = "The query's id", example = 1)),
    request_body = QueryAnswer,
    responses((status = 200, description = "The query as it now is", body = ReviewQuery)))]
pub async fn answer(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
    body: ApiJson<QueryAnswer>,
) -> Result<web::Json<ReviewQuery>, AppError> {
    let (id, query_id) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Answer).await?;
    let body = body.0;
    let shared = loaded.clone();
    let current = state
        .db
        .read(move |conn| review::review(conn, &shared))
        .await?;
    let query = current.query(query_id).cloned().ok_or(AppError::NotFound)?;
    let new_answer = match (
        &body.answer,
        loaded.questionnaire().question(&query.question_key),
    ) {
        (Some(v), Some(question)) => answers::parse_value(question, v)
            .map_err(|m| AppError::Validation(vec![FieldError::new("answer", m)]))?,
        _ => None,
    };
    let reply = Reply {
        message: body.message,
        seen_revision: body.revision,
        answer: new_answer,
        declaration: body.declaration,
    };
    let (actor, notifier, who) = (api.actor(), state.notifier(), api.user.clone());
    let q = state
        .db
        .write(move |conn| review::reply(conn, &actor, &notifier, &who, &loaded, query_id, &reply))
        .await?;
    crate::services::mail::wake();
    Ok(web::Json(query_of(q)))
}

/// Close a query (auditors), answered or not. 409 when it is closed already or changed
/// since `revision`.
#[utoipa::path(operation_id = "review_close", post, path = "/api/v1/assessments/{id}/review/queries/{query}/close", tag = "review",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("query" = i64, Path, description = "The query's id", example = 1)),
    request_body = RevisionRequest,
    responses((status = 200, description = "The query as it now is", body = ReviewQuery)))]
pub async fn close(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
    body: ApiJson<RevisionRequest>,
) -> Result<web::Json<ReviewQuery>, AppError> {
    let (id, query_id) = path.into_inner();
    let loaded = load_for(&state, &api, id, review_action).await?;
    let seen = body.0.revision;
    let (actor, notifier, who) = (api.actor(), state.notifier(), api.user.clone());
    let q = state
        .db
        .write(move |conn| review::close(conn, &actor, &notifier, &who, &loaded, query_id, seen))
        .await?;
    crate::services::mail::wake();
    Ok(web::Json(query_of(q)))
}
