//! Personal API tokens: how programs (an analyst's script, a regional dashboard) act as a person
//! through the JSON API. A token is random, shown once when it is made, and stored only as its
//! digest ([`crypto::digest`]), like every other secret that grants access. It acts with the
//! owner's role and organisation, and stops working when it expires (its owner chooses when,
//! at most [`MAX_DAYS`] ahead, so a forgotten token does not grant access for ever), when it
//! is revoked, when the owner's password changes ([`revoke_all`]: whoever had the account
//! may have made one) or when the account is deactivated. It records when it was last used (at most once a minute, so a busy script
//! does not turn every read into a write).
//!
//! The API does not use cookies, so it needs no CSRF token: a request carries
//! `Authorization: Bearer <token>` and [`ApiUser`] resolves it.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::crypto;
use crate::db::schema::{api_tokens, users};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::users::User;

/// Tokens start with this, so secret scanners and people can tell what a leaked string is.
pub const PREFIX: &str = "dma_";
pub const MAX_NAME_CHARS: usize = 100;
/// A person's live tokens: enough for every script they run, few enough to review.
pub const MAX_ACTIVE_PER_USER: i64 = 20;
/// The longest a token may live: a quarter, so a script's owner renews it a few times a year
/// and a leaked or forgotten one ends on its own.
pub const MAX_DAYS: i64 = 90;
/// What the tokens page offers, the default first.
pub const LIFETIME_CHOICES: [i64; 4] = [30, 7, 60, 90];
pub const DEFAULT_DAYS: i64 = 30;

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
    pub expires_at: Option<NaiveDateTime>,
}

/// Why a lifetime is refused, in words a person can act on.
pub fn lifetime_problem(days: i64) -> Option<String> {
    (!(1..=MAX_DAYS).contains(&days))
        .then(|| format!("Choose how long the token works: between 1 and {MAX_DAYS} days"))
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
    days: i64,
) -> Result<(ApiToken, String), AppError> {
    if let Some(problem) = name_problem(name).or_else(|| lifetime_problem(days)) {
        return Err(AppError::BadRequest(problem));
    }
    let active: i64 = api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.gt(Utc::now().naive_utc()))
        .count()
        .get_result(conn)?;
    if active >= MAX_ACTIVE_PER_USER {
        return Err(AppError::Conflict(format!(
            "You already have {MAX_ACTIVE_PER_USER} tokens. Revoke one you no longer use first."
        )));
    }
    let token = format!("{PREFIX}{}", crypto::random_token());
    let name = name.trim();
    let now = Utc::now().naive_utc();
    let id: i64 = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::name.eq(name),
            api_tokens::token_hash.eq(crypto::digest(&token)),
            api_tokens::created_at.eq(now),
            api_tokens::expires_at.eq(Some(now + Duration::days(days))),
        ))
        .returning(api_tokens::id)
        .get_result(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("api_token.create", "api_token", id).after(serde_json::json!({
            "user_id": user_id, "name": name, "days": days
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

/// Revoke every live token of `user_id` (a password change or reset: whoever knew the old
/// password may have made one). Returns how many were revoked; the caller's audit entry for
/// the password change covers it.
pub fn revoke_all(conn: &mut DbConnection, user_id: i64) -> Result<usize, AppError> {
    Ok(diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Some(Utc::now().naive_utc())))
    .execute(conn)?)
}

/// The live (unrevoked, unexpired) token's id, its last use and its (active) owner.
pub fn lookup(
    conn: &mut DbConnection,
    token: &str,
) -> Result<Option<(i64, Option<NaiveDateTime>, User)>, AppError> {
    Ok(api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(crypto::digest(token)))
        .filter(api_tokens::revoked_at.is_null())
        .filter(api_tokens::expires_at.gt(Utc::now().naive_utc()))
        .filter(users::active.eq(true))
        .select((api_tokens::id, api_tokens::last_used_at, User::as_select()))
        .first(conn)
        .optional()?)
}

/// Record that a token was used now (the tokens page shows it), at most once a minute.
pub fn touch(conn: &mut DbConnection, token_id: i64, now: NaiveDateTime) -> Result<(), AppError> {
    diesel::update(api_tokens::table.find(token_id))
        .set(api_tokens::last_used_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}
