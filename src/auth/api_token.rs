//! Personal API tokens: how programs (an analyst's script, a regional dashboard) act as a person
//! through the JSON API. A token is random, shown once when it is made, and stored only as its
//! digest ([`tokens::digest`]), like every other secret that grants access. It acts with the
//! owner's role and organisation, stops working when revoked or when the account is
//! deactivated, and records when it was last used (at most once a minute, so a busy script
//! does not turn every read into a write).
//!
//! The API does not use cookies, so it needs no CSRF token: a request carries
//! `Authorization: Bearer <token>` and [`ApiUser`] resolves it.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, Actor, Entry};
use crate::auth::roles::{can, Action};
use crate::auth::tokens;
use crate::auth::users::User;
use crate::db::schema::{api_tokens, users};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::web::AppState;

/// Tokens start with this, so secret scanners and people can tell what a leaked string is.
pub const PREFIX: &str = "dma_";
pub const MAX_NAME_CHARS: usize = 100;
/// A person's live tokens: enough for every script they run, few enough to review.
pub const MAX_ACTIVE_PER_USER: i64 = 20;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// Why a token name is refused, in words a person can act on.
pub fn name_problem(name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() {
        Some("Enter a name for the token, like \"Regional dashboard\"".into())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!(
            "The name must be {MAX_NAME_CHARS} characters or fewer"
        ))
    } else {
        None
    }
}

/// The user's tokens, newest first.
pub fn list(conn: &mut DbConnection, user_id: i64) -> Result<Vec<ApiToken>, AppError> {
    Ok(api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
        .select(ApiToken::as_select())
        .load(conn)?)
}

/// Make a token for `user_id`; returns the stored row and the token itself, which exists
/// nowhere else afterwards.
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    name: &str,
) -> Result<(ApiToken, String), AppError> {
    if let Some(problem) = name_problem(name) {
        return Err(AppError::BadRequest(problem));
    }
    let active: i64 = api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .count()
        .get_result(conn)?;
    if active >= MAX_ACTIVE_PER_USER {
        return Err(AppError::Conflict(format!(
            "You already have {MAX_ACTIVE_PER_USER} tokens. Revoke one you no longer use first."
        )));
    }
    let token = format!("{PREFIX}{}", tokens::random_token());
    let name = name.trim();
    let now = Utc::now().naive_utc();
    let id: i64 = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::name.eq(name),
            api_tokens::token_hash.eq(tokens::digest(&token)),
            api_tokens::created_at.eq(now),
        ))
        .returning(api_tokens::id)
        .get_result(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("api_token.create", "api_token", id).after(serde_json::json!({
            "user_id": user_id, "name": name
        })),
    )?;
    let row = api_tokens::table
        .find(id)
        .select(ApiToken::as_select())
        .first(conn)?;
    Ok((row, token))
}

/// Revoke one of `user_id`'s tokens. Another person's token is "not found": the answer does
/// not tell whether it exists. Revoking a revoked token changes nothing.
pub fn revoke(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    token_id: i64,
) -> Result<ApiToken, AppError> {
    let token = api_tokens::table
        .find(token_id)
        .filter(api_tokens::user_id.eq(user_id))
        .select(ApiToken::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    let now = Utc::now().naive_utc();
    diesel::update(api_tokens::table.find(token_id))
        .set(api_tokens::revoked_at.eq(Some(now)))
        .execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("api_token.revoke", "api_token", token_id)
            .before(serde_json::json!({"name": token.name, "revoked": false}))
            .after(serde_json::json!({"name": token.name, "revoked": true})),
    )?;
    Ok(ApiToken {
        revoked_at: Some(now),
        ..token
    })
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
        if self.user.active && can(self.user.subject(), action) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
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

/// The live token's id, its last use and its (active) owner.
fn lookup(
    conn: &mut DbConnection,
    token: &str,
) -> Result<Option<(i64, Option<NaiveDateTime>, User)>, AppError> {
    Ok(api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(tokens::digest(token)))
        .filter(api_tokens::revoked_at.is_null())
        .filter(users::active.eq(true))
        .select((api_tokens::id, api_tokens::last_used_at, User::as_select()))
        .first(conn)
        .optional()?)
}

/// Resolve `Authorization: Bearer <token>`: `Ok(None)` without the header, `Err(Unauthenticated)`
/// for a malformed header or a token that is unknown, revoked, or belongs to a deactivated
/// account.
pub async fn authenticate_bearer(req: &HttpRequest) -> Result<Option<ApiUser>, AppError> {
    let Some(token) = bearer_token(req)? else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))?
        .clone();
    let (token_id, last_used, user) = state
        .db
        .read(move |conn| lookup(conn, &token))
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let now = Utc::now().naive_utc();
    if last_used.is_none_or(|t| now - t > Duration::minutes(1)) {
        state
            .db
            .write(move |conn| {
                diesel::update(api_tokens::table.find(token_id))
                    .set(api_tokens::last_used_at.eq(Some(now)))
                    .execute(conn)?;
                Ok(())
            })
            .await?;
    }
    Ok(Some(ApiUser {
        user,
        token_id,
        ip: crate::auth::session::client_ip(req),
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
