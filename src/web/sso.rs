//! Single sign-on pages (the rules are `services::auth::sso`'s; docs/security.md says why).
//!
//! - `GET /login/sso/{provider}`: the "Sign in with …" button on the sign-in page is a plain
//!   link (a form's redirect to another site would be stopped by the `form-action 'self'`
//!   policy). It stores the sign-in's state, nonce and PKCE verifier, sets the short-lived
//!   `dma_sso` cookie that binds them to this browser, and sends the browser to the provider.
//! - `GET /login/sso/{provider}/callback`: the provider's answer. The stored sign-in is taken
//!   (deleted) first, so a replay finds nothing; then the code is exchanged and the ID token
//!   checked; then the linking rules decide. The session starts at the stage a password
//!   would give (second factor, or setting one up, when the role requires it) and replaces
//!   any session the browser had, so signing in through the provider again is also how a
//!   person confirms who they are before a sensitive action (the confirmation page offers it).
//! - `GET /signed-out`: after signing out of a session that came from a provider, offers the
//!   provider's own sign-out (its `end_session_endpoint`) when it has one.
//! - `/admin/sso`: which provider may sign in which email domain, and whether a provider may
//!   create accounts.
//!
//! A provider that cannot be reached is a 503 page saying so (with `Retry-After`), never a 500.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::config::SsoProvider;
use crate::error::AppError;
use crate::services::audit::{self, Entry};
use crate::services::auth::roles::Action;
use crate::services::auth::session;
use crate::services::auth::sso::{self, Failure, Outcome};
use crate::web::account::{after_password, safe_next};
use crate::web::auth::{self, Authenticated, MaybeAuthenticated};
use crate::web::{page, AppState};

const BROWSER_COOKIE: &str = "dma_sso";
const ADMIN_PATH: &str = "/admin/sso";

fn provider<'a>(state: &'a AppState, key: &str) -> Result<&'a SsoProvider, AppError> {
    state
        .settings
        .auth
        .sso_providers
        .iter()
        .find(|p| p.key == key)
        .ok_or(AppError::NotFound)
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// A page saying why sign-on stopped, in words, at `status`.
fn refusal(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> Result<HttpResponse, AppError> {
    let html = page::render_html(
        state,
        None,
        "sso_refused",
        heading,
        json!({"heading": heading, "message": message}),
    )?;
    let mut response = page::html_response(status, html);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    }
    Ok(response)
}

fn failure_page(
    state: &AppState,
    provider: &SsoProvider,
    failure: Failure,
) -> Result<HttpResponse, AppError> {
    match failure {
        Failure::Unreachable(cause) => {
            tracing::warn!(provider = %provider.key, %cause, "single sign-on provider unreachable");
            refusal(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{} is not answering", provider.label),
                &format!(
                    "We could not reach {} to sign you in. Try again in a few minutes, or sign in with your email address and password.",
                    provider.label
                ),
            )
        }
        Failure::Rejected(cause) => {
            tracing::warn!(provider = %provider.key, %cause, "single sign-on answer refused");
            refusal(
                state,
                StatusCode::UNAUTHORIZED,
                "We could not sign you in",
                &format!(
                    "The answer from {} could not be checked, so you have not been signed in. Start again from the sign-in page.",
                    provider.label
                ),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

pub async fn start(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    // A provider no longer offered (an old bookmark): back to the sign-in page's choices.
    let Ok(provider) = provider(&state, &path).cloned() else {
        return Ok(see_other("/login"));
    };
    let next = safe_next(query.next.as_deref());
    let started = match sso::start(&provider, &state.settings.base_url).await {
        Ok(started) => started,
        Err(failure) => return failure_page(&state, &provider, failure),
    };
    let browser = crate::crypto::random_token();
    let (key, browser_value) = (provider.key.clone(), browser.clone());
    let location = started.authorize_url.clone();
    state
        .db
        .write(move |conn| sso::store_login(conn, &key, &started, &browser_value, &next))
        .await?;
    let cookie = Cookie::build(BROWSER_COOKIE, browser)
        .path("/login/sso")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.base_url.starts_with("https://"))
        .max_age(time::Duration::minutes(sso::LOGIN_MINUTES))
        .finish();
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, location))
        .finish())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn browser_cookie_removal() -> Cookie<'static> {
    let mut c = Cookie::build(BROWSER_COOKIE, "")
        .path("/login/sso")
        .finish();
    c.make_removal();
    c
}

pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallbackQuery>,
    viewer: MaybeAuthenticated,
) -> Result<HttpResponse, AppError> {
    let Ok(provider) = provider(&state, &path).cloned() else {
        return refusal(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "Signing in this way is no longer offered. Start again from the sign-in page.",
        );
    };
    let query = query.into_inner();
    let browser = req.cookie(BROWSER_COOKIE).map(|c| c.value().to_string());
    let returned_state = query.state.unwrap_or_default();
    let pending = if returned_state.is_empty() || returned_state.len() > 200 {
        None
    } else {
        state
            .db
            .write(move |conn| sso::take_login(conn, &returned_state, browser.as_deref()))
            .await?
    };
    let Some(pending) = pending.filter(|p| p.provider == provider.key) else {
        return Ok(with_cookie_removed(refusal(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "This sign-in link has expired, has been used already, or was started in another browser. Start again from the sign-in page.",
        )?));
    };
    if let Some(error) = query.error {
        tracing::info!(provider = %provider.key, error = %error.chars().take(100).collect::<String>(), "provider did not sign in");
        return Ok(with_cookie_removed(refusal(
            &state,
            StatusCode::UNAUTHORIZED,
            "You have not been signed in",
            &format!(
                "{} did not sign you in. Start again from the sign-in page, or sign in with your email address and password.",
                provider.label
            ),
        )?));
    }
    let code = query.code.unwrap_or_default();
    if code.is_empty() || code.len() > 2000 {
        return Ok(with_cookie_removed(refusal(
            &state,
            StatusCode::BAD_REQUEST,
            "We could not sign you in",
            "The answer from the sign-in service was incomplete. Start again from the sign-in page.",
        )?));
    }
    let identity = match sso::finish(&provider, &state.settings.base_url, &code, &pending).await {
        Ok(identity) => identity,
        Err(failure) => {
            return Ok(with_cookie_removed(failure_page(
                &state, &provider, failure,
            )?))
        }
    };
    let ip = auth::client_ip(&req);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let absolute_hours = state.settings.session_absolute_hours;
    let required_roles = state.settings.auth.second_factor_roles.clone();
    let replaced = viewer.0.map(|a| a.session_id);
    let key = provider.key.clone();
    let outcome = {
        let provider = provider.clone();
        state
            .db
            .write(move |conn| {
                let user = match sso::resolve(conn, &provider, &identity, ip.as_deref())? {
                    Outcome::Refused(message) => return Ok(Err(message)),
                    Outcome::SignIn(user) => user,
                };
                let actor = audit::Actor {
                    user_id: Some(user.id),
                    label: user.email.clone(),
                    ip: ip.clone(),
                };
                let (token, stage) =
                    crate::services::auth::second_factor::open_session_after_password(
                        conn,
                        &required_roles,
                        &user,
                        absolute_hours,
                        ip.as_deref(),
                        user_agent.as_deref(),
                    )?;
                sso::mark_session(conn, &token, &key)?;
                // A new sign-in replaces the session the browser had (confirming who one is
                // again, through the provider, is a new sign-in with a new `authenticated_at`).
                if let Some(old) = replaced {
                    session::revoke(conn, old)?;
                }
                if stage == session::Stage::Full {
                    audit::record(
                        conn,
                        &actor,
                        Entry::new("session.sign_in", "user", user.id)
                            .organisation(user.organisation_id)
                            .after(json!({"provider": key})),
                    )?;
                }
                Ok(Ok((token, stage)))
            })
            .await?
    };
    match outcome {
        Err(message) => Ok(with_cookie_removed(refusal(
            &state,
            StatusCode::FORBIDDEN,
            &format!("You cannot sign in with {}", provider.label),
            &message,
        )?)),
        Ok((token, stage)) => Ok(HttpResponse::SeeOther()
            .cookie(auth::session_cookie(&state, token))
            .cookie(browser_cookie_removal())
            .insert_header((header::LOCATION, after_password(stage, &pending.next)))
            .finish()),
    }
}

fn with_cookie_removed(mut response: HttpResponse) -> HttpResponse {
    // Adding a cookie to a response built here cannot fail (the value is plain text).
    let _ = response.add_cookie(&browser_cookie_removal());
    response
}

#[derive(Deserialize)]
pub struct SignedOutQuery {
    provider: Option<String>,
}

pub async fn signed_out(
    state: web::Data<AppState>,
    query: web::Query<SignedOutQuery>,
) -> Result<HttpResponse, AppError> {
    let provider = query
        .provider
        .as_deref()
        .and_then(|key| provider(&state, key).ok())
        .cloned();
    let offer = match provider {
        Some(p) => sso::end_session_url(&p, &state.settings.base_url)
            .await
            .map(|url| json!({"label": p.label, "logout_url": url})),
        None => None,
    };
    page::render(
        &state,
        None,
        "signed_out",
        "You have signed out",
        json!({ "provider": offer }),
    )
}

#[derive(Deserialize)]
pub struct AdminQuery {
    done: Option<String>,
}

struct AdminForm<'a> {
    status: StatusCode,
    provider: &'a str,
    domain: &'a str,
    error: Option<String>,
    flash: Option<&'a str>,
}

async fn admin_page(
    state: &AppState,
    auth: &Authenticated,
    form: AdminForm<'_>,
) -> Result<HttpResponse, AppError> {
    let keys: Vec<String> = state
        .settings
        .auth
        .sso_providers
        .iter()
        .map(|p| p.key.clone())
        .collect();
    let (domains, creates) = state
        .db
        .read(move |conn| {
            let mut creates = Vec::with_capacity(keys.len());
            for key in &keys {
                creates.push(sso::creates_accounts(conn, key)?);
            }
            Ok((sso::allowed_domains(conn)?, creates))
        })
        .await?;
    let providers: Vec<_> = state
        .settings
        .auth
        .sso_providers
        .iter()
        .zip(creates)
        .map(|(p, create_accounts)| {
            json!({
                "key": p.key,
                "label": p.label,
                "issuer": p.issuer,
                "create_accounts": create_accounts,
                "selected": p.key == form.provider,
                "domains": domains.iter().filter(|d| d.provider == p.key).collect::<Vec<_>>(),
            })
        })
        .collect();
    let flash = match form.flash {
        Some("allowed") => Some("The domain was allowed."),
        Some("removed") => Some("The domain was removed."),
        Some("accounts") => Some("The provider's account creation was changed."),
        _ => None,
    };
    page::render_with_status(
        form.status,
        state,
        Some(&auth.page_user()),
        "admin/sso",
        "Single sign-on",
        json!({
            "providers": providers,
            "csrf_token": auth.csrf_token,
            "domain": form.domain,
            "domain_error": form.error,
            "errors": form.error.as_ref().map(|m| json!([{"href": "#domain", "message": m}])),
            "flash": flash.map(|m| json!({"kind": "success", "message": m})),
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": "/admin/users", "label": "People"}],
        }),
    )
}

pub async fn admin(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<AdminQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    admin_page(
        &state,
        &auth,
        AdminForm {
            status: StatusCode::OK,
            provider: "",
            domain: "",
            error: None,
            flash: query.done.as_deref(),
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct DomainForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    domain: String,
}

/// Allowing a domain lets a provider sign in its accounts, administrators' included: it asks
/// for a recent confirmation like the other sensitive actions.
pub async fn allow_domain(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<DomainForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    auth.require(Action::Administer)?;
    let form = form.into_inner();
    let key = provider(&state, &form.provider)
        .map_err(|_| AppError::BadRequest("Choose a configured provider.".into()))?
        .key
        .clone();
    let domain = match sso::parse_domain(&form.domain) {
        Ok(domain) => domain,
        Err(message) => {
            let typed: String = form.domain.chars().take(253).collect();
            return admin_page(
                &state,
                &auth,
                AdminForm {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    provider: &key,
                    domain: &typed,
                    error: Some(message),
                    flash: None,
                },
            )
            .await;
        }
    };
    if let Some(confirm) = crate::web::second_factor::demand_recent(&state, &auth, ADMIN_PATH) {
        return Ok(confirm);
    }
    let actor = auth.actor();
    state
        .db
        .write(move |conn| sso::allow_domain(conn, &actor, &key, &domain))
        .await?;
    Ok(see_other(&format!("{ADMIN_PATH}?done=allowed")))
}

pub async fn remove_domain(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<crate::web::account::CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    auth.require(Action::Administer)?;
    let (actor, id) = (auth.actor(), path.into_inner());
    state
        .db
        .write(move |conn| sso::remove_domain(conn, &actor, id))
        .await?;
    Ok(see_other(&format!("{ADMIN_PATH}?done=removed")))
}

#[derive(Deserialize)]
pub struct AccountsForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    create_accounts: String,
}

pub async fn set_create_accounts(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<String>,
    form: web::Form<AccountsForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    auth.require(Action::Administer)?;
    let key = provider(&state, &path)?.key.clone();
    let on = match form.create_accounts.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AppError::BadRequest("Choose on or off.".into())),
    };
    if on {
        if let Some(confirm) = crate::web::second_factor::demand_recent(&state, &auth, ADMIN_PATH) {
            return Ok(confirm);
        }
    }
    let actor = auth.actor();
    state
        .db
        .write(move |conn| sso::set_creates_accounts(conn, &actor, &key, on))
        .await?;
    Ok(see_other(&format!("{ADMIN_PATH}?done=accounts")))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/sso/{provider}", web::get().to(start))
        .route("/login/sso/{provider}/callback", web::get().to(callback))
        .route("/signed-out", web::get().to(signed_out))
        .route(ADMIN_PATH, web::get().to(admin))
        .route("/admin/sso/domains", web::post().to(allow_domain))
        .route(
            "/admin/sso/domains/{id}/remove",
            web::post().to(remove_domain),
        )
        .route(
            "/admin/sso/providers/{provider}/accounts",
            web::post().to(set_create_accounts),
        );
}
