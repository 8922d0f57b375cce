//! Cycles: the list (any token: cycle labels and dates are on every respondent's dashboard)
//! and opening one (administrators), which is [`crate::cycles::open`], emails included.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{rename_paths, utc, ApiJson, Page, PageParams};
use crate::auth::api_token::ApiUser;
use crate::auth::roles::Action;
use crate::cycles::{self, NewCycle};
use crate::error::AppError;
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
    crate::mail::wake();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, BASE))
        .json(Opened {
            id: opened.id,
            assessments: opened.assessments,
            carried_forward_answers: opened.carried_forward_answers,
        }))
}
