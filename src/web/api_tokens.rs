//! A person's API tokens: the list (name, made, last used, expiry, revoked), making one (its
//! value is shown on the page once and never again; the database keeps only its digest) and
//! revoking one. Anyone signed in may have tokens; a token can do what its owner can, no more.
//!
//! Making a token needs a recent sign-in (`web::second_factor::demand_recent`, the one
//! re-authentication step): a token outlives the session, so someone who finds a signed-in
//! browser unattended must not be able to turn it into lasting access. Confirming is counted
//! by the sign-in throttle, so it is no way around it.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::services::auth::api_token::{self, ApiToken};
use crate::web::auth::Authenticated;
use crate::web::{page, AppState};

const BASE: &str = "/account/tokens";

fn when(t: Option<chrono::NaiveDateTime>) -> Option<String> {
    t.map(|t| t.format("%-d %b %Y %H:%M").to_string())
}

fn row(t: &ApiToken) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "created": t.created_at.format("%-d %b %Y %H:%M").to_string(),
        "last_used": when(t.last_used_at),
        "revoked": when(t.revoked_at),
        "expires": when(t.expires_at),
        "expired": t.revoked_at.is_none()
            && t.expires_at.is_none_or(|e| e <= chrono::Utc::now().naive_utc()),
        "revoke_href": format!("{BASE}/{}/revoke", t.id),
    })
}

struct Shown<'a> {
    name: &'a str,
    name_error: Option<String>,
    days: i64,
    new_token: Option<(String, String)>,
    done: Option<&'a str>,
}

async fn tokens_page(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    shown: Shown<'_>,
) -> Result<HttpResponse, AppError> {
    let user_id = auth.user.id;
    let list = state
        .db
        .read(move |conn| api_token::list(conn, user_id))
        .await?;
    let flash = match shown.done {
        Some("revoked") => {
            json!({"kind": "success", "message": "The token was revoked. Programs using it can no longer sign in with it."})
        }
        _ => Value::Null,
    };
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "account/tokens",
        "API tokens",
        json!({
            "tokens": list.iter().map(row).collect::<Vec<_>>(),
            "name": shown.name,
            "name_error": shown.name_error,
            "new_token": shown.new_token.as_ref().map(|(name, token)| json!({"name": name, "value": token})),
            "lifetimes": api_token::LIFETIME_CHOICES.iter().map(|d| json!({"days": d, "selected": *d == shown.days})).collect::<Vec<_>>(),
            "max_days": api_token::MAX_DAYS,
            "errors": errors_list(&shown),
            "flash": flash,
            "max_name": api_token::MAX_NAME_CHARS,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    )?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // The page may hold a token's only copy: no cache may keep it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}

fn errors_list(shown: &Shown<'_>) -> Value {
    let list: Vec<Value> = [("#name", &shown.name_error)]
        .into_iter()
        .filter_map(|(href, m)| m.as_ref().map(|m| json!({"href": href, "message": m})))
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        json!(list)
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    tokens_page(
        &state,
        &auth,
        StatusCode::OK,
        Shown {
            name: "",
            name_error: None,
            days: api_token::DEFAULT_DAYS,
            new_token: None,
            done: query.done.as_deref(),
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_days: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

pub async fn create(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let form = form.into_inner();
    let name = form.name.trim().to_string();
    let days = match form.expires_days.as_deref().map(str::trim) {
        None | Some("") => api_token::DEFAULT_DAYS,
        Some(d) => d.parse::<i64>().unwrap_or(0),
    };
    let refuse = |name_error: Option<String>| Shown {
        name: &name,
        name_error,
        days,
        new_token: None,
        done: None,
    };
    let name_error = api_token::name_problem(&name).or_else(|| api_token::lifetime_problem(days));
    if name_error.is_some() {
        return tokens_page(
            &state,
            &auth,
            StatusCode::UNPROCESSABLE_ENTITY,
            refuse(name_error),
        )
        .await;
    }
    if let Some(confirm) = crate::web::second_factor::demand_recent(&state, &auth, BASE) {
        return Ok(confirm);
    }
    let (actor, user_id, chosen) = (auth.actor(), auth.user.id, name.clone());
    match state
        .db
        .write(move |conn| api_token::create(conn, &actor, user_id, &chosen, days))
        .await
    {
        Ok((stored, token)) => {
            tokens_page(
                &state,
                &auth,
                StatusCode::OK,
                Shown {
                    name: "",
                    name_error: None,
                    days: api_token::DEFAULT_DAYS,
                    new_token: Some((stored.name, token)),
                    done: None,
                },
            )
            .await
        }
        Err(AppError::Conflict(message) | AppError::BadRequest(message)) => {
            tokens_page(
                &state,
                &auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                refuse(Some(message)),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn revoke(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (actor, user_id, token_id) = (auth.actor(), auth.user.id, path.into_inner());
    state
        .db
        .write(move |conn| api_token::revoke(conn, &actor, user_id, token_id))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{BASE}?done=revoked")))
        .finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(list))
        .route(BASE, web::post().to(create))
        .route("/account/tokens/{id}/revoke", web::post().to(revoke));
}
