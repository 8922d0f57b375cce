//! Accounts: lookup, creation and password changes. An account may exist before it has a
//! password (an invitation not yet accepted); such an account cannot sign in.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::crypto;
use crate::db::schema::{one_time_tokens, sessions, users};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::{Role, Subject};
use crate::templates::Templates;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub organisation_id: Option<i64>,
    pub group_organisation_id: Option<i64>,
    pub group_region: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub active: bool,
    pub password_changed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl User {
    /// The role; an unrecognised value (a hand-edited row) is treated as the least powerful.
    /// Refuse unless the account is active and the policy allows `action`: the one check
    /// behind every page and API route.
    pub fn require(&self, action: crate::services::auth::roles::Action) -> Result<(), AppError> {
        if self.active && crate::services::auth::roles::can(self.subject(), action) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::OrgContributor)
    }

    pub fn subject(&self) -> Subject {
        Subject {
            role: self.role(),
            organisation_id: self.organisation_id,
        }
    }
}

/// A syntactically valid, lower-cased email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<EmailAddress, String> {
        let s = s.trim().to_lowercase();
        if s.is_empty() {
            return Err("Enter an email address".into());
        }
        if s.len() > 254 || !validator::ValidateEmail::validate_email(&s) {
            return Err(
                "Enter an email address in the correct format, like name@example.nhs.uk".into(),
            );
        }
        Ok(EmailAddress(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> Result<Option<User>, AppError> {
    Ok(users::table
        .filter(users::email.eq(email.trim().to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<User>, AppError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub struct NewUser<'a> {
    pub email: &'a EmailAddress,
    pub name: &'a str,
    pub role: Role,
    pub organisation_id: Option<i64>,
    pub group_organisation_id: Option<i64>,
    pub group_region: Option<&'a str>,
}

pub fn create(conn: &mut DbConnection, actor: &Actor, new: NewUser<'_>) -> Result<User, AppError> {
    if find_by_email(conn, new.email.as_str())?.is_some() {
        return Err(AppError::Conflict(format!(
            "An account for {} already exists.",
            new.email.as_str()
        )));
    }
    if new.role.is_organisation_role() && new.organisation_id.is_none() {
        return Err(AppError::BadRequest(
            "Choose the organisation this person works for.".into(),
        ));
    }
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest(
            "Enter a name of up to 200 characters.".into(),
        ));
    }
    if let Some(problem) = crate::domain::text::hidden_character_problem(name) {
        return Err(AppError::BadRequest(format!("The name {problem}.")));
    }
    let now = Utc::now().naive_utc();
    let id: i64 = diesel::insert_into(users::table)
        .values((
            users::email.eq(new.email.as_str()),
            users::name.eq(name),
            users::role.eq(new.role.as_str()),
            users::organisation_id.eq(new.organisation_id),
            users::group_organisation_id.eq(new.group_organisation_id),
            users::group_region.eq(new.group_region),
            users::active.eq(true),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .returning(users::id)
        .get_result(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("user.create", "user", id)
            .organisation(new.organisation_id)
            .after(serde_json::json!({"email": new.email.as_str(), "name": name, "role": new.role.as_str()})),
    )?;
    find(conn, id)?.ok_or(AppError::NotFound)
}

/// Store a new password hash and end everything the old password could have led to: every
/// session (signed out everywhere), every API token, and every reset or invitation link not
/// yet used (an older reset link must not work after a newer one, or a signed-in change,
/// chose the password).
pub fn set_password_hash(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    hash: &str,
) -> Result<(), AppError> {
    let now = Utc::now().naive_utc();
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(Some(hash)),
            users::password_changed_at.eq(Some(now)),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?;
    end_link_tokens(conn, user_id, now)?;
    let tokens_revoked = crate::services::auth::api_token::revoke_all(conn, user_id)?;
    audit::record(
        conn,
        actor,
        Entry::new("user.password_set", "user", user_id)
            .after(serde_json::json!({"api_tokens_revoked": tokens_revoked})),
    )?;
    Ok(())
}

pub const INVITATION: &str = "invitation";
pub const PASSWORD_RESET: &str = "password_reset";

/// Issue a single-use link token (invitation: 7 days; reset: 1 hour). Returns the token to put
/// in the link; only its digest is stored.
pub fn issue_link_token(
    conn: &mut DbConnection,
    user_id: i64,
    purpose: &str,
) -> Result<String, AppError> {
    let token = crypto::random_token();
    let now = Utc::now().naive_utc();
    let lifetime = if purpose == INVITATION {
        Duration::days(7)
    } else {
        Duration::hours(1)
    };
    diesel::insert_into(one_time_tokens::table)
        .values((
            one_time_tokens::token_hash.eq(crypto::digest(&token)),
            one_time_tokens::user_id.eq(user_id),
            one_time_tokens::purpose.eq(purpose),
            one_time_tokens::created_at.eq(now),
            one_time_tokens::expires_at.eq(now + lifetime),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Issues a link token of `purpose` for `user` and queues, in the caller's transaction, the
/// email that carries its set-password link. The purpose also names the email's kind and
/// template (`invitation`, `password_reset`); `data` builds the template's data from the link.
/// One function for invitations and password resets, so both links take the same form.
pub fn email_link_token(
    conn: &mut DbConnection,
    templates: &Templates,
    key: &crate::crypto::SealingKey,
    base_url: &str,
    user: &User,
    purpose: &str,
    data: impl FnOnce(&str) -> serde_json::Value,
) -> Result<(), AppError> {
    let token = issue_link_token(conn, user.id, purpose)?;
    let link = format!(
        "{}/account/set-password?token={token}",
        base_url.trim_end_matches('/')
    );
    crate::services::mail::enqueue_sealed(
        conn,
        templates,
        key,
        crate::services::mail::OutgoingEmail {
            kind: purpose,
            to: &user.email,
            template: purpose,
            data: data(&link),
            dedupe_key: None,
        },
    )?;
    Ok(())
}

/// The account a link token belongs to, while it is unused and unexpired.
pub fn link_token_user(
    conn: &mut DbConnection,
    token: &str,
) -> Result<Option<(i64, User)>, AppError> {
    let now = Utc::now().naive_utc();
    let found: Option<(i64, i64)> = one_time_tokens::table
        .filter(one_time_tokens::token_hash.eq(crypto::digest(token)))
        .filter(one_time_tokens::used_at.is_null())
        .filter(one_time_tokens::expires_at.gt(now))
        .select((one_time_tokens::id, one_time_tokens::user_id))
        .first(conn)
        .optional()?;
    match found {
        Some((token_id, user_id)) => Ok(find(conn, user_id)?
            .filter(|u| u.active)
            .map(|u| (token_id, u))),
        None => Ok(None),
    }
}

/// Mark every unused reset and invitation link of the account as used.
pub fn end_link_tokens(
    conn: &mut DbConnection,
    user_id: i64,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::update(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(user_id))
            .filter(one_time_tokens::used_at.is_null()),
    )
    .set(one_time_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(())
}

/// Mark a link token used; fails if another request used it first.
pub fn consume_link_token(conn: &mut DbConnection, token_id: i64) -> Result<(), AppError> {
    let n = diesel::update(
        one_time_tokens::table
            .find(token_id)
            .filter(one_time_tokens::used_at.is_null()),
    )
    .set(one_time_tokens::used_at.eq(Some(Utc::now().naive_utc())))
    .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "This link has already been used.".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse(" Ann.Lee@NHS.net ").map(|e| e.0),
            Ok("ann.lee@nhs.net".to_string())
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@nhs.net",
            "ann lee@nhs.net",
            "<script>@x",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
