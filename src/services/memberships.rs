//! People in several organisations: a CIO covering two trusts, a shared IT service answering
//! for several, an ICB lead who also answers for a trust (issue 22, docs/collaboration.md).
//!
//! An account keeps its **home**: the role and place it was created with (`users.role`,
//! `users.organisation_id` or a group or national role). A **membership** adds an organisation
//! role (approver or contributor) in one more organisation. A session works in one place at a
//! time (`sessions.membership_id`; none means the home), chosen with the switcher, so the one
//! policy function sees one role and one organisation per request as before, and every check
//! made for an organisation's people holds for a member exactly as for someone at home there.
//!
//! Who belongs to an organisation, for emails, assignments and owners, is asked here
//! ([`people`], [`people_in`]): those at home there and its members, each with the role they
//! hold there, so a CIO of two trusts hears about both whichever one they are working in.

use std::collections::HashMap;

use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::db::schema::{memberships, organisations, sessions, users};
use crate::db::{with_concrete_connection, DbConnection};
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::Role;
use crate::services::auth::users::User;

/// Someone of an organisation with the role they hold there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    /// Whether the organisation is their home (else they are a member through a membership).
    pub home: bool,
}

/// The active people of `organisation_id` holding one of `roles` there, at home or as
/// members, by account id.
pub fn people(
    conn: &mut DbConnection,
    organisation_id: i64,
    roles: &[&str],
) -> Result<Vec<Person>, AppError> {
    Ok(people_in(conn, &[organisation_id], roles)?
        .remove(&organisation_id)
        .unwrap_or_default())
}

/// [`people`] for many organisations at once (two queries whatever their number).
pub fn people_in(
    conn: &mut DbConnection,
    organisation_ids: &[i64],
    roles: &[&str],
) -> Result<HashMap<i64, Vec<Person>>, AppError> {
    let mut by_organisation: HashMap<i64, Vec<Person>> = HashMap::new();
    for chunk in organisation_ids.chunks(5000) {
        let home: Vec<(Option<i64>, i64, String, String, String)> = users::table
            .filter(users::organisation_id.eq_any(chunk))
            .filter(users::active.eq(true))
            .filter(users::role.eq_any(roles))
            .select((
                users::organisation_id,
                users::id,
                users::email,
                users::name,
                users::role,
            ))
            .load(conn)?;
        let members: Vec<(i64, i64, String, String, String)> = memberships::table
            .inner_join(users::table)
            .filter(memberships::organisation_id.eq_any(chunk))
            .filter(users::active.eq(true))
            .filter(memberships::role.eq_any(roles))
            .select((
                memberships::organisation_id,
                users::id,
                users::email,
                users::name,
                memberships::role,
            ))
            .load(conn)?;
        let home = home
            .into_iter()
            .filter_map(|(o, id, email, name, role)| Some((o?, id, email, name, role, true)));
        let members = members
            .into_iter()
            .map(|(o, id, email, name, role)| (o, id, email, name, role, false));
        for (organisation, id, email, name, role, home) in home.chain(members) {
            by_organisation
                .entry(organisation)
                .or_default()
                .push(Person {
                    id,
                    email,
                    name,
                    role,
                    home,
                });
        }
    }
    for list in by_organisation.values_mut() {
        list.sort_by_key(|p| p.id);
        // An account at home in an organisation cannot also be a member of it (`add`
        // refuses), but a home moved there later by an administrator would list it twice.
        list.dedup_by_key(|p| p.id);
    }
    Ok(by_organisation)
}

/// One of an account's places: its home or a membership.
#[derive(Debug, Clone, Serialize)]
pub struct Place {
    /// The membership's id; `None` for the home.
    pub membership_id: Option<i64>,
    pub organisation_id: Option<i64>,
    /// The organisation's name, or the home's role in words for a national or group role.
    pub label: String,
    pub role: String,
    pub role_label: String,
}

/// The account's memberships (not its home), by organisation name.
pub fn of_user(conn: &mut DbConnection, user_id: i64) -> Result<Vec<Place>, AppError> {
    let rows: Vec<(i64, i64, String, String)> = memberships::table
        .inner_join(organisations::table)
        .filter(memberships::user_id.eq(user_id))
        .order((organisations::name, memberships::id))
        .select((
            memberships::id,
            memberships::organisation_id,
            organisations::name,
            memberships::role,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, organisation_id, name, role)| Place {
            membership_id: Some(id),
            organisation_id: Some(organisation_id),
            label: name,
            role_label: role_label(&role),
            role,
        })
        .collect())
}

fn role_label(role: &str) -> String {
    Role::parse(role).map_or_else(|| role.to_string(), |r| r.label().to_string())
}

/// The account's home as a [`Place`] (`home` is the account's own row, not a session's view).
pub fn home_place(conn: &mut DbConnection, home: &User) -> Result<Place, AppError> {
    let label = match home.organisation_id.or(home.group_organisation_id) {
        Some(id) => organisations::table
            .find(id)
            .select(organisations::name)
            .first::<String>(conn)
            .optional()?
            .unwrap_or_default(),
        None => home
            .group_region
            .clone()
            .unwrap_or_else(|| "All organisations".into()),
    };
    Ok(Place {
        membership_id: None,
        organisation_id: home.organisation_id,
        label,
        role_label: role_label(&home.role),
        role: home.role.clone(),
    })
}

/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new membership with this id.
    New(i64),
    /// The account already belongs to the organisation (at home or as a member): nothing
    /// changed.
    Already,
    /// The account has a national role (administrator or auditor), which is kept apart from
    /// organisations' own roles: nothing changed.
    NationalRole,
}

/// Give `user` (their account's own row) `role` in `organisation_id`, audited. Safe when two
/// invitations race: the unique key lets one insert and the other reads [`Added::Already`].
pub fn add(
    conn: &mut DbConnection,
    actor: &Actor,
    user: &User,
    organisation_id: i64,
    role: Role,
) -> Result<Added, AppError> {
    if !role.is_organisation_role() {
        return Err(AppError::BadRequest(
            "A person can be added to another organisation only as an approver or contributor."
                .into(),
        ));
    }
    if matches!(
        Role::parse(&user.role),
        Some(Role::Administrator | Role::Auditor)
    ) {
        return Ok(Added::NationalRole);
    }
    if user.organisation_id == Some(organisation_id) {
        return Ok(Added::Already);
    }
    let now = Utc::now().naive_utc();
    let row = (
        memberships::user_id.eq(user.id),
        memberships::organisation_id.eq(organisation_id),
        memberships::role.eq(role.as_str()),
        memberships::created_at.eq(now),
    );
    let inserted = with_concrete_connection!(conn, c => {
        diesel::insert_into(memberships::table)
            .values(row)
            .on_conflict((memberships::user_id, memberships::organisation_id))
            .do_nothing()
            .execute(c)?
    });
    if inserted == 0 {
        return Ok(Added::Already);
    }
    let id: i64 = memberships::table
        .filter(memberships::user_id.eq(user.id))
        .filter(memberships::organisation_id.eq(organisation_id))
        .select(memberships::id)
        .first(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("user.membership_added", "user", user.id)
            .organisation(Some(organisation_id))
            .after(json!({"organisation_id": organisation_id, "role": role.as_str()})),
    )?;
    Ok(Added::New(id))
}

/// Take `user_id`'s membership of `organisation_id` away, audited; sessions working there go
/// back to the account's home. `false` when there was none.
pub fn remove(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    organisation_id: i64,
) -> Result<bool, AppError> {
    let found: Option<(i64, String)> = memberships::table
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::organisation_id.eq(organisation_id))
        .select((memberships::id, memberships::role))
        .first(conn)
        .optional()?;
    let Some((id, role)) = found else {
        return Ok(false);
    };
    diesel::update(sessions::table.filter(sessions::membership_id.eq(id)))
        .set(sessions::membership_id.eq(None::<i64>))
        .execute(conn)?;
    diesel::delete(memberships::table.find(id)).execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("user.membership_removed", "user", user_id)
            .organisation(Some(organisation_id))
            .before(json!({"organisation_id": organisation_id, "role": role})),
    )?;
    Ok(true)
}

/// Work in one of the account's places in this session: a membership of theirs, or `None` for
/// the home. Someone else's membership (or one removed meanwhile) is refused with a 404.
pub fn switch(
    conn: &mut DbConnection,
    actor: &Actor,
    session_id: i64,
    user_id: i64,
    membership_id: Option<i64>,
) -> Result<(), AppError> {
    if let Some(id) = membership_id {
        let owner: Option<i64> = memberships::table
            .find(id)
            .select(memberships::user_id)
            .first(conn)
            .optional()?;
        if owner != Some(user_id) {
            return Err(AppError::NotFound);
        }
    }
    diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::user_id.eq(user_id)),
    )
    .set(sessions::membership_id.eq(membership_id))
    .execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("session.switch", "user", user_id)
            .after(json!({"membership_id": membership_id})),
    )?;
    Ok(())
}

/// The view of `home` (the account's own row) in a session working through a membership: the
/// membership's organisation role, and no group or national reach.
pub fn as_member(mut home: User, organisation_id: i64, role: String) -> User {
    home.role = role;
    home.organisation_id = Some(organisation_id);
    home.group_organisation_id = None;
    home.group_region = None;
    home
}
