//! Cycles: the list (any token: cycle labels and dates are on every respondent's dashboard),
//! opening one (administrators), which is [`crate::services::cycles::open`], emails included,
//! and closing one ([`crate::services::cycles::close`]), after which nothing in it changes.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{rename_paths, utc, ApiJson, Page, PageParams};
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::cycles::{self, NewCycle};
use crate::web::auth::ApiUser;
use crate::web::AppState;

const BASE: &str = "/api/v1/cycles";

/// A yearly cycle.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cycle {
    pub id: i64,
    /// Like 2025/26.
    pub label: String,
    pub opens_on: NaiveDate,
    pub deadline: NaiveDate,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// When it was closed; absent while it is open.
    pub closed_at: Option<DateTime<Utc>>,
}

/// A cycle to open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCycleBody {
    /// The years, like 2026/27.
    pub label: String,
    pub opens_on: NaiveDate,
    /// On or after `opens_on`.
    pub deadline: NaiveDate,
    /// Care setting -> id of the published question set version that serves it.
    pub versions: BTreeMap<String, i64>,
}

/// What opening a cycle created.
#[derive(Debug, Serialize, ToSchema)]
pub struct Opened {
    pub id: i64,
    /// Assessments created, one per open organisation and setting.
    pub assessments: usize,
    /// Answers carried forward from the previous submissions, to be confirmed.
    pub carried_forward_answers: usize,
}

/// Every cycle, newest first.
#[utoipa::path(operation_id = "cycles_list", get, path = "/api/v1/cycles", tag = "cycles",
    params(PageParams),
    responses((status = 200, description = "A page of cycles", body = Page<Cycle>)))]
pub async fn list(
    state: web::Data<AppState>,
    _api: ApiUser,
    paging: web::Query<PageParams>,
) -> Result<web::Json<Page<Cycle>>, AppError> {
    let paging = paging.checked()?;
    let all = state.db.read(cycles::list).await?;
    let items = all
        .into_iter()
        .map(|c| Cycle {
            id: c.id,
            label: c.label,
            opens_on: c.opens_on,
            deadline: c.deadline,
            status: c.status,
            created_at: utc(c.created_at),
            closed_at: c.closed_at.map(utc),
        })
        .collect();
    Ok(web::Json(Page::slice(items, paging, BASE, &[])))
}

/// Open a cycle: every open organisation in each setting gets its assessment, and the
/// "cycle opened" emails are queued (administrators).
#[utoipa::path(operation_id = "cycles_open", post, path = "/api/v1/cycles", tag = "cycles",
    request_body = NewCycleBody,
    responses((status = 201, description = "Opened", body = Opened)))]
pub async fn open(
    state: web::Data<AppState>,
    api: ApiUser,
    body: ApiJson<NewCycleBody>,
) -> Result<HttpResponse, AppError> {
    api.require(Action::Administer)?;
    let body = body.0;
    let new = NewCycle {
        label: body.label.trim().to_string(),
        opens_on: body.opens_on,
        deadline: body.deadline,
        versions: body.versions,
    };
    let actor = api.actor();
    let notifier = state.notifier();
    let opened = state
        .db
        .write(move |conn| cycles::open(conn, &actor, &new, &notifier))
        .await
        // The form's field names, as the body names them.
        .map_err(|e| {
            rename_paths(e, |p| {
                p.strip_prefix("version-")
                    .map(|setting| format!("versions.{setting}"))
            })
        })?;
    crate::services::mail::wake();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, BASE))
        .json(Opened {
            id: opened.id,
            assessments: opened.assessments,
            carried_forward_answers: opened.carried_forward_answers,
        }))
}

/// What closing a cycle did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Closed {
    pub id: i64,
    pub closed_at: DateTime<Utc>,
    /// Assessments not submitted by then, now recorded as not submitted.
    pub not_submitted: usize,
    /// Assessments whose submission is now final.
    pub submitted: usize,
    /// Score reports queued to approvers, since results are now final.
    pub score_reports: usize,
}

/// Close a cycle (administrators): no more answers, submissions, reopening or deadline
/// extensions; assessments not submitted are recorded as not submitted. A cycle already
/// closed is a 409 `conflict` that says who closed it and when.
#[utoipa::path(operation_id = "cycles_close", post, path = "/api/v1/cycles/{id}/close", tag = "cycles",
    params(("id" = i64, Path, description = "The cycle's id", example = 1)),
    responses((status = 200, description = "Closed", body = Closed)))]
pub async fn close(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<i64>,
) -> Result<web::Json<Closed>, AppError> {
    api.require(Action::Administer)?;
    let id = path.into_inner();
    let actor = api.actor();
    let notifier = state.notifier();
    let closed = state
        .db
        .write(move |conn| cycles::close(conn, &actor, id, &notifier))
        .await?;
    crate::services::mail::wake();
    Ok(web::Json(Closed {
        id: closed.id,
        closed_at: utc(closed.closed_at),
        not_submitted: closed.not_submitted,
        submitted: closed.submitted,
        score_reports: closed.score_reports,
    }))
}
