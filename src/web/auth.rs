//! Who is making a request: the signed-in person of a page (session cookie) or the owner of
//! an API token (bearer header), as actix extractors over the services' session and token
//! storage. CSRF: every state-changing form carries `csrf_token`. Signed in, it must equal the
//! session's token; signed out (the sign-in and set-password forms), it must equal the
//! `dma_csrf` cookie (double submit). The cookies are `SameSite=Lax` and `HttpOnly` as a
//! second line.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::{Duration, Utc};

use crate::crypto;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::audit::Actor;
use crate::services::auth::roles::Action;
use crate::services::auth::users::User;
use crate::services::auth::{api_token, session};
use crate::web::page::PageUser;
use crate::web::AppState;

pub const SESSION_COOKIE: &str = "dma_session";
pub const CSRF_COOKIE: &str = "dma_csrf";

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))
}

/// A signed-in person for the length of one request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session_id: i64,
    pub csrf_token: String,
    pub ip: Option<String>,
    /// When the person last proved who they are (sign-in or confirmation); see
    /// `web::second_factor::demand_recent`.
    pub authenticated_at: chrono::NaiveDateTime,
    /// The account belongs to more than one organisation: pages offer the switcher.
    pub has_places: bool,
}

impl Authenticated {
    /// The person of a full session found by the lookup, from `ip`.
    fn signed_in(live: session::Live, ip: Option<String>) -> Self {
        Authenticated {
            user: live.user,
            session_id: live.session_id,
            csrf_token: live.csrf_token,
            ip,
            authenticated_at: live.authenticated_at,
            has_places: live.has_places,
        }
    }

    /// Refuse unless the policy allows `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        self.user.require(action)
    }

    pub fn may(&self, action: Action) -> bool {
        self.require(action).is_ok()
    }

    /// Check a submitted form's CSRF token against the session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        if crypto::constant_time_eq(submitted, &self.csrf_token) {
            Ok(())
        } else {
            Err(csrf_error())
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            label: self.user.email.clone(),
            ip: self.ip.clone(),
        }
    }

    pub fn page_user(&self) -> PageUser {
        PageUser {
            name: self.user.name.clone(),
            email: self.user.email.clone(),
            role_label: self.user.role().label().to_string(),
            csrf_token: self.csrf_token.clone(),
            nav: super::page::nav(self),
        }
    }
}

pub fn csrf_error() -> AppError {
    AppError::BadRequest(
        "This form has expired or did not come from this service. Go back, reload the page and try again."
            .into(),
    )
}

/// The session cookie, marked `Secure` when the service is served over https.
pub fn session_cookie(state: &AppState, token: String) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.base_url.starts_with("https://"))
        .finish()
}

pub fn removal_cookie(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path("/").finish();
    c.make_removal();
    c
}

pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The live session behind a request's cookie, at whatever stage of signing in.
async fn any_session(req: &HttpRequest) -> Result<Option<session::Live>, AppError> {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    let state = state(req)?;
    let idle = state.settings.session_idle_minutes;
    state
        .db
        .read(move |conn| session::lookup(conn, &token, idle))
        .await
}

async fn authenticate(req: HttpRequest) -> Result<Option<Authenticated>, AppError> {
    // Only a full session is signed in: one waiting for a second factor, or for one to be
    // set up, is not.
    let Some(live) = any_session(&req)
        .await?
        .filter(|live| live.stage == session::Stage::Full)
    else {
        return Ok(None);
    };
    let state = state(&req)?;
    // The idle timer is refreshed through the writer (SQLite's one writer), never on the
    // read connection the lookup used.
    if live.touch_due {
        let id = live.session_id;
        let now = Utc::now().naive_utc();
        state
            .db
            .write(move |conn| session::touch(conn, id, now))
            .await?;
    }
    actix_web::HttpMessage::extensions_mut(&req)
        .insert(crate::web::observe::LoggedUser(live.user.id));
    Ok(Some(Authenticated::signed_in(live, client_ip(&req))))
}

/// A session at any stage of signing in: the second-factor step, setting one up, or signed
/// in. Only the pages of those steps (and signing out) take it; everything else takes
/// [`Authenticated`].
pub struct SignInStep {
    pub live: session::Live,
    pub ip: Option<String>,
}

impl SignInStep {
    pub fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        if crypto::constant_time_eq(submitted, &self.live.csrf_token) {
            Ok(())
        } else {
            Err(csrf_error())
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.live.user.id),
            label: self.live.user.email.clone(),
            ip: self.ip.clone(),
        }
    }
}

impl FromRequest for SignInStep {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let live = any_session(&req).await?.ok_or(AppError::Unauthenticated)?;
            Ok(SignInStep {
                live,
                ip: client_ip(&req),
            })
        })
    }
}

/// The session at any stage, if there is one (the second-factor step's pages).
pub struct MaybeSignInStep(pub Option<SignInStep>);

impl FromRequest for MaybeSignInStep {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            Ok(MaybeSignInStep(any_session(&req).await?.map(|live| {
                SignInStep {
                    live,
                    ip: client_ip(&req),
                }
            })))
        })
    }
}

impl FromRequest for Authenticated {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await?.ok_or(AppError::Unauthenticated) })
    }
}

/// A request's session cookie and what looking it up needs, read without the database, so a
/// handler can look the session up on the connection it does its own work on: autosave, the
/// busiest request, then takes one pooled connection per save instead of two (issue 21).
/// [`SessionCookie::authenticate`] applies exactly the rules of [`Authenticated`].
pub struct SessionCookie {
    token: Option<String>,
    idle_minutes: i64,
    ip: Option<String>,
}

impl FromRequest for SessionCookie {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(state(req).map(|state| SessionCookie {
            token: req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()),
            idle_minutes: state.settings.session_idle_minutes,
            ip: client_ip(req),
        }))
    }
}

impl SessionCookie {
    /// The signed-in person, looked up on `conn` (a writing transaction: the idle timer is
    /// refreshed in it when due), or `Unauthenticated`.
    pub fn authenticate(&self, conn: &mut DbConnection) -> Result<Authenticated, AppError> {
        let token = self.token.as_deref().ok_or(AppError::Unauthenticated)?;
        let live = session::lookup(conn, token, self.idle_minutes)?
            .filter(|live| live.stage == session::Stage::Full)
            .ok_or(AppError::Unauthenticated)?;
        if live.touch_due {
            session::touch(conn, live.session_id, Utc::now().naive_utc())?;
        }
        Ok(Authenticated::signed_in(live, self.ip.clone()))
    }
}

/// The signed-in person behind a request, if any, for pages drawn outside a handler (the
/// error pages); a failed lookup counts as signed out.
pub async fn signed_in(req: &HttpRequest) -> Option<Authenticated> {
    authenticate(req.clone()).await.ok().flatten()
}

/// The signed-in person, if any (public pages that change with sign-in).
pub struct MaybeAuthenticated(pub Option<Authenticated>);

impl FromRequest for MaybeAuthenticated {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeAuthenticated(authenticate(req).await?)) })
    }
}

/// The signed-out CSRF token: the current `dma_csrf` cookie or a new one to set.
/// Like the session cookie it is `Secure` under an https base URL, so it never travels in
/// clear text where a network attacker could read it and forge a signed-out form.
pub fn anonymous_csrf(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match req.cookie(CSRF_COOKIE) {
        Some(c) if c.value().len() == 64 => (c.value().to_string(), None),
        _ => {
            let token = crypto::random_token();
            let https = state(req).is_ok_and(|s| s.settings.base_url.starts_with("https://"));
            let cookie = Cookie::build(CSRF_COOKIE, token.clone())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(https)
                .finish();
            (token, Some(cookie))
        }
    }
}

pub fn check_anonymous_csrf(req: &HttpRequest, submitted: &str) -> Result<(), AppError> {
    match req.cookie(CSRF_COOKIE) {
        Some(c) if crypto::constant_time_eq(c.value(), submitted) && submitted.len() == 64 => {
            Ok(())
        }
        _ => Err(csrf_error()),
    }
}

/// A person acting through the API with one of their tokens.
#[derive(Debug, Clone)]
pub struct ApiUser {
    pub user: User,
    pub token_id: i64,
    pub ip: Option<String>,
}

impl ApiUser {
    /// Refuse unless the policy allows `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        self.user.require(action)
    }

    pub fn may(&self, action: Action) -> bool {
        self.require(action).is_ok()
    }

    /// Changes made through the API are logged under the person, naming the token.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            label: self.user.email.clone(),
            ip: self.ip.clone(),
        }
    }
}

/// The token in an `Authorization: Bearer` header, if the request has one. A header that is
/// present but not a bearer token is refused rather than ignored, so a client that gets it
/// wrong hears about it.
fn bearer_token(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AppError::Unauthenticated)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AppError::Unauthenticated)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > 200 {
        return Err(AppError::Unauthenticated);
    }
    Ok(Some(token.to_string()))
}

/// Resolve `Authorization: Bearer <token>`: `Ok(None)` without the header, `Err(Unauthenticated)`
/// for a malformed header or a token that is unknown, expired, revoked, or belongs to a deactivated
/// account.
pub async fn authenticate_bearer(req: &HttpRequest) -> Result<Option<ApiUser>, AppError> {
    let Some(token) = bearer_token(req)? else {
        return Ok(None);
    };
    let state = state(req)?;
    let (token_id, last_used, user) = state
        .db
        .read(move |conn| api_token::lookup(conn, &token))
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let now = Utc::now().naive_utc();
    if last_used.is_none_or(|t| now - t > Duration::minutes(1)) {
        state
            .db
            .write(move |conn| api_token::touch(conn, token_id, now))
            .await?;
    }
    actix_web::HttpMessage::extensions_mut(req).insert(crate::web::observe::LoggedUser(user.id));
    Ok(Some(ApiUser {
        user,
        token_id,
        ip: client_ip(req),
    }))
}

impl FromRequest for ApiUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        // The API's gate (`web::api`) has already resolved the token for this request.
        if let Some(user) = actix_web::HttpMessage::extensions(req).get::<ApiUser>() {
            let user = user.clone();
            return Box::pin(async move { Ok(user) });
        }
        let req = req.clone();
        Box::pin(async move {
            authenticate_bearer(&req)
                .await?
                .ok_or(AppError::Unauthenticated)
        })
    }
}
