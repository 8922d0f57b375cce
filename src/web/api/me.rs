//! `GET /api/v1/me`: who a token acts as; a cheap way for a program to check its token.

use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::web::auth::ApiUser;

/// The person a token acts as.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// administrator, auditor, group_viewer, org_approver or org_contributor.
    pub role: String,
    /// Their organisation, for organisation roles.
    pub organisation_id: Option<i64>,
}

/// Who the token acts as.
#[utoipa::path(operation_id = "me", get, path = "/api/v1/me", tag = "account",
    responses((status = 200, description = "The token's owner", body = Me)))]
pub async fn me(api: ApiUser) -> Result<web::Json<Me>, AppError> {
    let user = api.user;
    Ok(web::Json(Me {
        role: user.role().as_str().to_string(),
        id: user.id,
        email: user.email,
        name: user.name,
        organisation_id: user.organisation_id,
    }))
}
