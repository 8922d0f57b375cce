//! Sections of an assessment (issue 22): who has each one and its hand-over status, the same
//! service and rules as the section page ([`crate::web::section_pages`]): reading needs what
//! reading the assessment needs, giving and taking sections `Approve`, marking a section
//! ready for review `Answer` (as one of its assignees, or an approver), reviewing and
//! returning `Approve`. A status change names the status `revision` it was based on; a change
//! against a status someone else has since changed is answered 409 `conflict` with who
//! changed it to what, and changes nothing.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::assessments::load_for;
use super::extract::{utc, ApiJson};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::sections::{self, Status, StatusChange};
use crate::web::auth::ApiUser;
use crate::web::AppState;

/// A person holding a section.
#[derive(Debug, Serialize, ToSchema)]
pub struct SectionAssignee {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub due_on: Option<NaiveDate>,
}

/// One section (domain) of an assessment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SectionState {
    /// The domain's key.
    pub key: String,
    pub title: String,
    /// not_started, in_progress, ready_for_review, returned or reviewed.
    pub status: String,
    /// Send this back when changing the status (0 before the first hand-over).
    pub revision: i64,
    /// Why it was returned, when it is `returned`.
    pub message: Option<String>,
    /// Who last changed the status, and when.
    pub changed_by: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
    pub answered: usize,
    pub visible: usize,
    pub assignees: Vec<SectionAssignee>,
}

fn state_of(s: sections::Section) -> SectionState {
    SectionState {
        status: s.status.as_str().to_string(),
        key: s.key,
        title: s.title,
        revision: s.revision,
        message: s.message,
        changed_by: s.changed_by,
        changed_at: s.changed_at.map(utc),
        answered: s.answered,
        visible: s.visible,
        assignees: s
            .assignees
            .into_iter()
            .map(|a| SectionAssignee {
                user_id: a.user_id,
                name: a.name,
                email: a.email,
                due_on: a.due_on,
            })
            .collect(),
    }
}

/// Every section of an assessment with its status and people (who may read the assessment).
#[utoipa::path(operation_id = "sections_list", get, path = "/api/v1/assessments/{id}/sections", tag = "sections",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    responses((status = 200, description = "The sections, in the question set's order", body = Vec<SectionState>)))]
pub async fn list(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<Vec<SectionState>>, AppError> {
    let loaded = load_for(&state, &api, path.into_inner(), Action::ReadOrganisation).await?;
    let all = state
        .db
        .read(move |conn| sections::sections(conn, &loaded))
        .await?;
    Ok(web::Json(all.into_iter().map(state_of).collect()))
}

/// Give a section to a person.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignment {
    /// One of the organisation's people (an approver or contributor, active).
    pub user_id: i64,
    /// When it should be ready for review (today or later).
    pub due_on: Option<NaiveDate>,
}

/// Give a section to one of the organisation's people (approvers); they are emailed. 409
/// when they already have it.
#[utoipa::path(operation_id = "sections_assign", post, path = "/api/v1/assessments/{id}/sections/{key}/assignees", tag = "sections",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The section's (domain's) key", example = "strategy")),
    request_body = NewAssignment,
    responses((status = 201, description = "The section as it now is", body = SectionState)))]
pub async fn assign(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String)>,
    body: ApiJson<NewAssignment>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Approve).await?;
    let body = body.0;
    let (actor, notifier) = (api.actor(), state.notifier());
    let section = state
        .db
        .write(move |conn| {
            sections::assign(
                conn,
                &actor,
                &notifier,
                &loaded,
                &key,
                body.user_id,
                body.due_on,
            )?;
            sections::section(conn, &loaded, &key)
        })
        .await?;
    crate::services::mail::wake();
    Ok(HttpResponse::Created().json(state_of(section)))
}

/// Take a section away from a person (approvers). 409 when they do not have it.
#[utoipa::path(operation_id = "sections_unassign", delete, path = "/api/v1/assessments/{id}/sections/{key}/assignees/{user}", tag = "sections",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The section's (domain's) key", example = "strategy"),
           ("user" = i64, Path, description = "The person's user id", example = 3)),
    responses((status = 204, description = "They no longer have the section")))]
pub async fn unassign(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, key, user_id) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Approve).await?;
    let actor = api.actor();
    state
        .db
        .write(move |conn| sections::unassign(conn, &actor, &loaded, &key, user_id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A hand-over step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// ready_for_review (an assignee or approver), reviewed or returned (approvers).
    pub status: String,
    /// The section's `revision` as you last read it.
    #[schema(minimum = 0)]
    pub revision: i64,
    /// Why, when returning it (required then, at most 2000 characters).
    pub message: Option<String>,
}

/// Move a section on: ready for review, reviewed, or returned with a message (emailed to its
/// people). 409 when the section's status changed since `revision`, or does not allow the step.
#[utoipa::path(operation_id = "sections_status", post, path = "/api/v1/assessments/{id}/sections/{key}/status", tag = "sections",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The section's (domain's) key", example = "strategy")),
    request_body = StatusRequest,
    responses((status = 200, description = "The section as it now is", body = SectionState)))]
pub async fn change_status(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String)>,
    body: ApiJson<StatusRequest>,
) -> Result<web::Json<SectionState>, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Answer).await?;
    let body = body.0;
    let to = Status::parse(&body.status).ok_or_else(|| {
        AppError::Validation(vec![FieldError::new(
            "status",
            "must be ready_for_review, reviewed or returned",
        )])
    })?;
    let change = StatusChange {
        to,
        seen_revision: body.revision,
        message: body.message.unwrap_or_default(),
    };
    let (actor, notifier, who) = (api.actor(), state.notifier(), api.user.clone());
    let section = state
        .db
        .write(move |conn| {
            sections::change_status(conn, &actor, &notifier, &who, &loaded, &key, &change)
        })
        .await?;
    crate::services::mail::wake();
    Ok(web::Json(state_of(section)))
}

/// A section the token's owner holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct MySection {
    pub assessment_id: i64,
    pub organisation: String,
    pub cycle: String,
    pub setting: String,
    /// Their own due date for it.
    pub due_on: Option<NaiveDate>,
    /// The assessment can still be answered.
    pub open: bool,
    pub section: SectionState,
}

/// The sections the token's owner holds, across their organisation's assessments.
#[utoipa::path(operation_id = "me_sections", get, path = "/api/v1/me/sections", tag = "sections",
    responses((status = 200, description = "Their sections, newest cycle first", body = Vec<MySection>)))]
pub async fn mine(
    state: web::Data<AppState>,
    api: ApiUser,
) -> Result<web::Json<Vec<MySection>>, AppError> {
    let Some(org) = api
        .user
        .organisation_id
        .filter(|o| api.may(Action::ReadInProgress(*o)))
    else {
        return Ok(web::Json(Vec::new()));
    };
    let user_id = api.user.id;
    let held = state
        .db
        .read(move |conn| sections::for_person(conn, user_id, org))
        .await?;
    Ok(web::Json(
        held.into_iter()
            .map(|m| MySection {
                assessment_id: m.assessment_id,
                organisation: m.organisation,
                cycle: m.cycle_label,
                setting: m.setting,
                due_on: m.due_on,
                open: m.open,
                section: state_of(m.section),
            })
            .collect(),
    ))
}
