//! A person's email preferences (`/account/email`): each collaboration message as it happens,
//! or one daily digest of them ([`crate::services::digest`] says which messages and why).
//! Anyone signed in may choose for themselves, and only for themselves.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::error::AppError;
use crate::services::digest;
use crate::web::auth::Authenticated;
use crate::web::{page, AppState};

const BASE: &str = "/account/email";

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    preferences_page(&state, &auth, query.done.as_deref(), None).await
}

/// The page, with a flash after a save or the error of a refused one (422).
async fn preferences_page(
    state: &AppState,
    auth: &Authenticated,
    done: Option<&str>,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let user_id = auth.user.id;
    let daily = state
        .db
        .read(move |conn| digest::chooses_digest(conn, user_id))
        .await?;
    let flash = (done == Some("saved")).then(|| {
        json!({"kind": "success", "message": if daily {
            "Saved. You will get one email a day with the updates on your sections."
        } else {
            "Saved. You will get each update on your sections as it happens."
        }})
    });
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "account/email",
        "Email preferences",
        json!({
            "daily": daily,
            "hour": digest::DIGEST_HOUR,
            "summer_hour": digest::DIGEST_HOUR + 1,
            "flash": flash,
            "delivery_error": error,
            "errors": error.map(|e| json!([{"href": "#delivery-each", "message": e}])),
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    )?;
    let status = if error.is_some() {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(page::html_response(status, html))
}

#[derive(Deserialize)]
pub struct ChoiceForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    delivery: String,
}

pub async fn save(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<ChoiceForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let daily = match form.delivery.as_str() {
        "daily" => true,
        "each" => false,
        _ => {
            return preferences_page(
                &state,
                &auth,
                None,
                Some("Choose how you want to get updates on your sections"),
            )
            .await
        }
    };
    let (actor, user_id) = (auth.actor(), auth.user.id);
    state
        .db
        .write(move |conn| digest::choose(conn, &actor, user_id, daily))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{BASE}?done=saved")))
        .finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(show))
        .route(BASE, web::post().to(save));
}
