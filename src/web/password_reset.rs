//! "Forgotten your password?": a signed-out form that emails a single-use link (one hour) to
//! choose a new password on the set-password page.
//!
//! The answer is the same sentence whether or not the address has an account, so the form
//! cannot be used to find out who has one. Requests are counted per address (and per client)
//! in `login_attempts`, as sign-in failures are, so every instance sees the same numbers; past
//! the limit the page still says the same thing but nothing more is sent, so nobody can flood
//! a person's inbox.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::crypto;
use crate::db::schema::login_attempts;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::session;
use crate::services::auth::users::{self, EmailAddress};
use crate::templates::Templates;
use crate::web::auth;
use crate::web::{page, AppState};

/// Links sent per address in the window; the first is enough, two more allow for a lost one.
pub const MAX_PER_ADDRESS: i64 = 3;
/// Requests per client address in the window, whatever the email.
pub const MAX_PER_CLIENT: i64 = 20;
pub const WINDOW_MINUTES: i64 = 60;
/// How long a reset link works (see `users::issue_link_token`).
pub const LINK_MINUTES: i64 = 60;

pub const SENT_MESSAGE: &str = "If an account exists for that address, we have sent a link";

fn page_response(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    email: &str,
    email_error: Option<String>,
    sent: bool,
) -> Result<HttpResponse, AppError> {
    let (csrf, cookie) = auth::anonymous_csrf(req);
    let html = page::render_html(
        state,
        None,
        "account/reset_password",
        "Reset your password",
        json!({
            "csrf_token": csrf,
            "email": email,
            "email_error": email_error,
            "sent": sent,
            "sent_message": SENT_MESSAGE,
            "link_minutes": LINK_MINUTES,
            "errors": email_error.as_ref().map(|m| json!([{"href": "#email", "message": m}])),
        }),
    )?;
    Ok(page::html_response_with_cookie(status, html, cookie))
}

pub async fn form(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, AppError> {
    page_response(&state, &req, StatusCode::OK, "", None, false)
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf_token: String,
}

fn requests_since(conn: &mut DbConnection, subject: &str, minutes: i64) -> Result<i64, AppError> {
    let since = Utc::now().naive_utc() - Duration::minutes(minutes);
    Ok(login_attempts::table
        .filter(login_attempts::subject.eq(subject))
        .filter(login_attempts::attempted_at.gt(since))
        .count()
        .get_result(conn)?)
}

/// Count the request and, unless throttled, send a link to an active account. Says nothing
/// about what it did: the caller answers the same either way.
fn request_reset(
    conn: &mut DbConnection,
    templates: &Templates,
    key: &crate::crypto::SealingKey,
    base_url: &str,
    email: &EmailAddress,
    ip: Option<&str>,
) -> Result<(), AppError> {
    let by_address = format!("reset:{}", crypto::digest(email.as_str()));
    let by_client = ip.map(|ip| format!("reset-client:{ip}"));
    if requests_since(conn, &by_address, WINDOW_MINUTES)? >= MAX_PER_ADDRESS {
        return Ok(());
    }
    if let Some(client) = &by_client {
        if requests_since(conn, client, WINDOW_MINUTES)? >= MAX_PER_CLIENT {
            return Ok(());
        }
    }
    let mut subjects = vec![by_address.as_str()];
    subjects.extend(by_client.as_deref());
    session::record_attempt(conn, &subjects, false)?;
    let Some(user) = users::find_by_email(conn, email.as_str())?.filter(|u| u.active) else {
        return Ok(());
    };
    users::email_link_token(
        conn,
        templates,
        key,
        base_url,
        &user,
        users::PASSWORD_RESET,
        |link| json!({"name": user.name, "link": link, "expires_minutes": LINK_MINUTES}),
    )?;
    let actor = Actor {
        user_id: None,
        label: "password reset".to_string(),
        ip: ip.map(str::to_string),
    };
    audit::record(
        conn,
        &actor,
        Entry::new("user.password_reset_requested", "user", user.id)
            .organisation(user.organisation_id),
    )
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    auth::check_anonymous_csrf(&req, &form.csrf_token)?;
    let typed = form.email.trim().to_string();
    let email = match EmailAddress::parse(&typed) {
        Ok(email) => email,
        Err(message) => {
            return page_response(
                &state,
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                &typed,
                Some(message),
                false,
            )
        }
    };
    let templates = state.templates.clone();
    let base_url = state.settings.base_url.clone();
    let key = state.settings.mail.sealing_key.clone();
    let ip = auth::client_ip(&req);
    let address = email.clone();
    state
        .db
        .write(move |conn| {
            request_reset(conn, &templates, &key, &base_url, &address, ip.as_deref())
        })
        .await?;
    crate::services::mail::wake();
    page_response(&state, &req, StatusCode::OK, email.as_str(), None, true)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/reset-password", web::get().to(form))
        .route("/account/reset-password", web::post().to(submit));
}
