//! Server-side sessions. The cookie carries a random token; the database holds its digest,
//! the user, a CSRF token and the times that enforce idle and absolute expiry. Signing in
//! always creates a new session (no fixation); signing out deletes it; changing a password
//! deletes all of the account's sessions.
//!
//! CSRF: every state-changing form carries `csrf_token`. Signed in, it must equal the session's
//! token; signed out (the sign-in and set-password forms), it must equal the `dma_csrf` cookie
//! (double submit). The cookies are `SameSite=Lax` and `HttpOnly` as a second line.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};
use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::auth::roles::{can, Action};
use crate::auth::tokens;
use crate::auth::users::User;
use crate::db::schema::{login_attempts, sessions, users};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::web::page::PageUser;
use crate::web::AppState;

pub const SESSION_COOKIE: &str = "dma_session";
pub const CSRF_COOKIE: &str = "dma_csrf";

/// A signed-in person for the length of one request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session_id: i64,
    pub csrf_token: String,
    pub ip: Option<String>,
}

impl Authenticated {
    /// Refuse unless the policy allows `action`.
    pub fn require(&self, action: Action) -> Result<(), AppError> {
        if self.user.active && can(self.user.subject(), action) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn may(&self, action: Action) -> bool {
        self.require(action).is_ok()
    }

    /// Check a submitted form's CSRF token against the session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        if tokens::constant_time_eq(submitted, &self.csrf_token) {
            Ok(())
        } else {
            Err(csrf_error())
        }
    }

    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor {
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

/// Create a session for `user_id`, returning the cookie token.
pub fn create(
    conn: &mut DbConnection,
    user_id: i64,
    absolute_hours: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<String, AppError> {
    let token = tokens::random_token();
    let now = Utc::now().naive_utc();
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(tokens::digest(&token)),
            sessions::user_id.eq(user_id),
            sessions::csrf_token.eq(tokens::random_token()),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(now + Duration::hours(absolute_hours)),
            sessions::ip.eq(ip),
            sessions::user_agent.eq(user_agent.map(|ua| ua.chars().take(300).collect::<String>())),
        ))
        .execute(conn)?;
    Ok(token)
}

pub fn revoke(conn: &mut DbConnection, session_id: i64) -> Result<(), AppError> {
    diesel::delete(sessions::table.find(session_id)).execute(conn)?;
    Ok(())
}

/// Find the live session for a cookie token, refreshing its idle timer at most once a minute.
fn lookup(
    conn: &mut DbConnection,
    token: &str,
    idle_minutes: i64,
) -> Result<Option<(User, i64, String)>, AppError> {
    let now = Utc::now().naive_utc();
    let found: Option<(i64, String, NaiveDateTime, User)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(tokens::digest(token)))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - Duration::minutes(idle_minutes)))
        .filter(users::active.eq(true))
        .select((
            sessions::id,
            sessions::csrf_token,
            sessions::last_seen_at,
            User::as_select(),
        ))
        .first(conn)
        .optional()?;
    let Some((id, csrf, last_seen, user)) = found else {
        return Ok(None);
    };
    if now - last_seen > Duration::minutes(1) {
        diesel::update(sessions::table.find(id))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some((user, id, csrf)))
}

pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

async fn authenticate(req: HttpRequest) -> Result<Option<Authenticated>, AppError> {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))?
        .clone();
    let idle = state.settings.session_idle_minutes;
    let found = state
        .db
        .read(move |conn| lookup(conn, &token, idle))
        .await?;
    Ok(found.map(|(user, session_id, csrf_token)| Authenticated {
        user,
        session_id,
        csrf_token,
        ip: client_ip(&req),
    }))
}

impl FromRequest for Authenticated {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await?.ok_or(AppError::Unauthenticated) })
    }
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

/// Throttling of sign-in: at most this many failures per account, and per address, in the
/// window. Counted in the database so every instance sees the same numbers.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;

fn failures_since(
    conn: &mut DbConnection,
    subject: &str,
    since: NaiveDateTime,
) -> Result<i64, AppError> {
    Ok(login_attempts::table
        .filter(login_attempts::subject.eq(subject))
        .filter(login_attempts::attempted_at.gt(since))
        .filter(login_attempts::succeeded.eq(false))
        .count()
        .get_result(conn)?)
}

/// Subjects under which attempts are counted: the account (by digest, so the table holds no
/// addresses) and the client address.
pub fn throttle_subjects(email: &str, ip: Option<&str>) -> (String, Option<String>) {
    (
        format!("account:{}", tokens::digest(&email.trim().to_lowercase())),
        ip.map(|ip| format!("address:{ip}")),
    )
}

pub fn check_throttle(
    conn: &mut DbConnection,
    account: &str,
    address: Option<&str>,
) -> Result<(), AppError> {
    let since = Utc::now().naive_utc() - Duration::minutes(THROTTLE_WINDOW_MINUTES);
    let blocked = failures_since(conn, account, since)? >= MAX_FAILURES_PER_ACCOUNT
        || match address {
            Some(a) => failures_since(conn, a, since)? >= MAX_FAILURES_PER_ADDRESS,
            None => false,
        };
    if blocked {
        Err(AppError::TooManyRequests(format!(
            "There have been too many sign-in attempts. Wait {THROTTLE_WINDOW_MINUTES} minutes, then try again, or reset your password."
        )))
    } else {
        Ok(())
    }
}

/// Checks the throttle and, when the attempt may go ahead, records it (for the account and
/// the address) as failed until [`attempt_succeeded`] says otherwise; the ids of the rows
/// written come back. Counting and recording in the caller's write transaction means parallel
/// guesses cannot all pass the check before any is recorded: SQLite has one writer, and on
/// PostgreSQL a transaction-scoped advisory lock per subject serialises the claims.
pub fn claim_attempt(
    conn: &mut DbConnection,
    account: &str,
    address: Option<&str>,
) -> Result<Vec<i64>, AppError> {
    let mut subjects: Vec<&str> = std::iter::once(account).chain(address).collect();
    subjects.sort_unstable();
    if conn.backend() == crate::db::Backend::Postgres {
        for subject in &subjects {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<diesel::sql_types::Text, _>(*subject)
                .execute(conn)?;
        }
    }
    check_throttle(conn, account, address)?;
    let now = Utc::now().naive_utc();
    let mut ids = Vec::with_capacity(subjects.len());
    for subject in subjects {
        ids.push(
            diesel::insert_into(login_attempts::table)
                .values((
                    login_attempts::subject.eq(subject),
                    login_attempts::attempted_at.eq(now),
                    login_attempts::succeeded.eq(false),
                ))
                .returning(login_attempts::id)
                .get_result::<i64>(conn)?,
        );
    }
    Ok(ids)
}

/// Marks attempts [`claim_attempt`] recorded as having succeeded.
pub fn attempt_succeeded(conn: &mut DbConnection, ids: &[i64]) -> Result<(), AppError> {
    diesel::update(login_attempts::table.filter(login_attempts::id.eq_any(ids)))
        .set(login_attempts::succeeded.eq(true))
        .execute(conn)?;
    Ok(())
}

pub fn record_attempt(
    conn: &mut DbConnection,
    subjects: &[&str],
    succeeded: bool,
) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    for subject in subjects {
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::subject.eq(*subject),
                login_attempts::attempted_at.eq(now),
                login_attempts::succeeded.eq(succeeded),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The signed-out CSRF token: the current `dma_csrf` cookie or a new one to set.
pub fn anonymous_csrf(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match req.cookie(CSRF_COOKIE) {
        Some(c) if c.value().len() == 64 => (c.value().to_string(), None),
        _ => {
            let token = tokens::random_token();
            let cookie = Cookie::build(CSRF_COOKIE, token.clone())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .finish();
            (token, Some(cookie))
        }
    }
}

pub fn check_anonymous_csrf(req: &HttpRequest, submitted: &str) -> Result<(), AppError> {
    match req.cookie(CSRF_COOKIE) {
        Some(c) if tokens::constant_time_eq(c.value(), submitted) && submitted.len() == 64 => {
            Ok(())
        }
        _ => Err(csrf_error()),
    }
}
