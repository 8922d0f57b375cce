//! Improvement plans (issue 23, docs/review.md), the same service and rules as the plan page
//! ([`crate::web::plan_pages`]): reading needs what reading the assessment needs; adding and
//! changing actions `Answer` (the organisation's people). A change names the action's
//! `revision`; a change against an action someone else has since changed is answered 409.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::assessments::load_for;
use super::extract::{utc, ApiJson};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::plans::{self, ActionInput, ActionStatus, PlanAction};
use crate::web::auth::ApiUser;
use crate::web::AppState;

/// One action of an improvement plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanActionState {
    pub id: i64,
    /// The domain's key.
    pub domain: String,
    pub title: String,
    /// The owner in words (the person's name, or the text given).
    pub owner: String,
    pub owner_user_id: Option<i64>,
    pub owner_text: Option<String>,
    pub due_on: Option<NaiveDate>,
    /// planned, in_progress, done or dropped.
    pub status: String,
    /// Send this back when changing it.
    pub revision: i64,
    /// The earlier cycle's action this one continues, and that cycle.
    pub carried_from: Option<i64>,
    pub carried_from_cycle: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// One domain of a plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDomain {
    pub key: String,
    pub title: String,
    pub score: Option<f64>,
    pub band: Option<String>,
    /// Below the chosen band: needs actions.
    pub below: bool,
    pub actions: Vec<PlanActionState>,
}

/// An assessment's improvement plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanState {
    /// The band below which a domain needs actions.
    pub threshold: String,
    /// Chosen by the organisation; otherwise the question set's middle band.
    pub chosen: bool,
    pub bands: Vec<String>,
    pub domains: Vec<PlanDomain>,
    /// Carried actions whose domain is not in this question set.
    pub other: Vec<PlanActionState>,
}

fn action_of(a: PlanAction) -> PlanActionState {
    PlanActionState {
        id: a.id,
        domain: a.domain_key,
        title: a.title,
        owner: a.owner,
        owner_user_id: a.owner_user_id,
        owner_text: a.owner_text,
        due_on: a.due_on,
        status: a.status.as_str().to_string(),
        revision: a.revision,
        carried_from: a.carried_from,
        carried_from_cycle: a.carried_from_cycle,
        updated_at: utc(a.updated_at),
    }
}

/// The improvement plan of an assessment.
#[utoipa::path(operation_id = "plan_get", get, path = "/api/v1/assessments/{id}/plan", tag = "plans",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    responses((status = 200, description = "The plan", body = PlanState)))]
pub async fn get(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<PlanState>, AppError> {
    let loaded = load_for(&state, &api, path.into_inner(), Action::ReadOrganisation).await?;
    let plan = state
        .db
        .read(move |conn| plans::plan(conn, &loaded))
        .await?;
    Ok(web::Json(PlanState {
        threshold: plan.threshold,
        chosen: plan.chosen,
        bands: plan.bands,
        domains: plan
            .domains
            .into_iter()
            .map(|d| PlanDomain {
                key: d.key,
                title: d.title,
                score: d.score,
                band: d.band,
                below: d.below,
                actions: d.actions.into_iter().map(action_of).collect(),
            })
            .collect(),
        other: plan.other.into_iter().map(action_of).collect(),
    }))
}

/// A new action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlanAction {
    /// The domain's key.
    pub domain: String,
    /// What will be done (1 to 200 characters).
    pub title: String,
    /// One of the organisation's people; or give `owner_text`.
    pub owner_user_id: Option<i64>,
    /// The owner's name or role, when not one of the organisation's people.
    pub owner_text: Option<String>,
    pub due_on: Option<NaiveDate>,
    /// planned (the default), in_progress, done or dropped.
    pub status: Option<String>,
}

fn status_of(text: Option<&str>, default: ActionStatus) -> Result<ActionStatus, AppError> {
    match text {
        None => Ok(default),
        Some(s) => ActionStatus::parse(s).ok_or_else(|| {
            AppError::Validation(vec![FieldError::new(
                "status",
                "must be planned, in_progress, done or dropped",
            )])
        }),
    }
}

/// Add an action to the plan (the organisation's people). 409 when the domain already has an
/// action with that title.
#[utoipa::path(operation_id = "plan_add", post, path = "/api/v1/assessments/{id}/plan/actions", tag = "plans",
    params(("id" = i64, Path, description = "The assessment's id", example = 1)),
    request_body = NewPlanAction,
    responses((status = 201, description = "The action", body = PlanActionState)))]
pub async fn add(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
    body: ApiJson<NewPlanAction>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &api, path.into_inner(), Action::Answer).await?;
    let body = body.0;
    let input = ActionInput {
        status: status_of(body.status.as_deref(), ActionStatus::Planned)?,
        domain_key: body.domain,
        title: body.title,
        owner_user_id: body.owner_user_id,
        owner_text: body.owner_text.unwrap_or_default(),
        due_on: body.due_on,
    };
    let (actor, who, notifier) = (api.actor(), api.user.clone(), state.notifier());
    let action = state
        .db
        .write(move |conn| plans::add(conn, &notifier, &actor, &who, &loaded, &input))
        .await?;
    crate::services::mail::wake();
    Ok(HttpResponse::Created().json(action_of(action)))
}

/// A change to an action: the fields given replace the stored ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanActionChange {
    /// The action's `revision` as you last read it.
    #[schema(minimum = 0)]
    pub revision: i64,
    pub domain: Option<String>,
    pub title: Option<String>,
    /// A person of the organisation (clears `owner_text`).
    pub owner_user_id: Option<i64>,
    /// A named owner (clears `owner_user_id`).
    pub owner_text: Option<String>,
    pub due_on: Option<NaiveDate>,
    pub status: Option<String>,
}

/// Change an action (the organisation's people). 409 when it changed since `revision` or
/// the new title is taken in its domain.
#[utoipa::path(operation_id = "plan_change", patch, path = "/api/v1/assessments/{id}/plan/actions/{action}", tag = "plans",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("action" = i64, Path, description = "The action's id", example = 1)),
    request_body = PlanActionChange,
    responses((status = 200, description = "The action as it now is", body = PlanActionState)))]
pub async fn change(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
    body: ApiJson<PlanActionChange>,
) -> Result<web::Json<PlanActionState>, AppError> {
    let (id, action_id) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Answer).await?;
    let body = body.0;
    let (actor, who, notifier) = (api.actor(), api.user.clone(), state.notifier());
    let action = state
        .db
        .write(move |conn| {
            let current = plans::actions(conn, loaded.row.id)?
                .into_iter()
                .find(|a| a.id == action_id)
                .ok_or(AppError::NotFound)?;
            let (owner_user_id, owner_text) = match (body.owner_user_id, body.owner_text) {
                (Some(id), _) => (Some(id), String::new()),
                (None, Some(text)) => (None, text),
                (None, None) => (
                    current.owner_user_id,
                    current.owner_text.clone().unwrap_or_default(),
                ),
            };
            let input = ActionInput {
                status: status_of(body.status.as_deref(), current.status)?,
                domain_key: body.domain.unwrap_or(current.domain_key),
                title: body.title.unwrap_or(current.title),
                owner_user_id,
                owner_text,
                due_on: body.due_on.or(current.due_on),
            };
            plans::update(
                conn,
                &notifier,
                (&actor, &who),
                &loaded,
                (action_id, body.revision),
                &input,
            )
        })
        .await?;
    crate::services::mail::wake();
    Ok(web::Json(action_of(action)))
}
