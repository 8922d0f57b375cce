//! The JSON API, under `/api/v1`. Programs authenticate with a personal API token
//! (`Authorization: Bearer`, see [`crate::auth::api_token`]); errors are RFC 9457 problem
//! documents (the `web::errors` middleware), so an unauthenticated call gets 401, not a
//! redirect to the sign-in page.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::api_token::ApiUser;
use crate::error::AppError;

/// `GET /api/v1/me`: who the token acts as. A cheap way for a program to check its token.
pub async fn me(api: ApiUser) -> Result<HttpResponse, AppError> {
    let user = &api.user;
    Ok(HttpResponse::Ok().json(json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role().as_str(),
        "organisation_id": user.organisation_id,
    })))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/me", web::get().to(me));
}
