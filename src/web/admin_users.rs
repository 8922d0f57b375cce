//! People: administrators see and invite everyone (`/admin/users`); an organisation's approvers
//! see, invite and deactivate the people of their own organisation (`/organisation/users`).
//!
//! An invitation creates the account without a password and sends a single-use link (seven
//! days) to choose one; the email is written to the outbox in the same transaction as the
//! account, so there is never an account whose invitation was lost, nor an email for an
//! account that was not created. Deactivation keeps the account (the audit log and answers
//! refer to it) but signs it out everywhere and stops its password, links and API tokens.
//!
//! Scope is enforced on the server from the signed-in approver's own organisation: the
//! approver's form has no organisation field, and a request that names another organisation,
//! another organisation's person or a role the form does not offer is refused outright.
//!
//! Administrators can also invite many people from a CSV file (`import`), each line checked as
//! this form checks one person, previewed, then invited all at once or not at all.

mod import;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::schema::{
    memberships as memberships_table, organisations, sessions, users as users_table,
};
use crate::db::{DbConnection, MultiBackend};
use crate::domain::ods::{OdsCode, OrgKind};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::{Action, Role};
use crate::services::auth::users::{self, EmailAddress, NewUser, User};
use crate::services::memberships;
use crate::templates::Templates;
use crate::web::auth::Authenticated;
use crate::web::listing::{self, like_escape, lower, PAGE_SIZE};
use crate::web::{page, AppState};

const ADMIN_BASE: &str = "/admin/users";
const ORG_BASE: &str = "/organisation/users";
/// How long an invitation link works (see `users::issue_link_token`).
pub const INVITATION_DAYS: i64 = 7;

/// Whose people a request may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// An administrator: everyone.
    Everyone,
    /// An approver: the people of this organisation.
    Organisation(i64),
}

// ---------------------------------------------------------------------------------------
// Inviting
// ---------------------------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub struct InviteForm {
    /// The organisation an approver's page was drawn for (see [`approver_posting`]).
    #[serde(default)]
    for_organisation: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// The organisation's ODS code (organisation roles). Not on the approver's form.
    organisation: Option<String>,
    /// The ICB's ODS code (group viewers of one ICB).
    #[serde(default)]
    icb: String,
    /// The region (group viewers of a region).
    #[serde(default)]
    region: String,
    #[serde(default)]
    csrf_token: String,
}

/// An invitation that passed every check.
struct Invitation {
    email: EmailAddress,
    name: String,
    role: Role,
    organisation_id: Option<i64>,
    group_organisation_id: Option<i64>,
    group_region: Option<String>,
    /// What the email names as where the person works or what they see.
    place: Option<String>,
    /// The address already has an account: an organisation role adds a membership to it
    /// (services::memberships) and its holder is emailed; an approver sees the usual answer.
    existing: Option<User>,
}

fn first_upper(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `(id, name, kind, closed)` of the organisation with this code.
fn organisation_by_code(
    conn: &mut DbConnection,
    code: &OdsCode,
) -> Result<Option<(i64, String, String, bool)>, AppError> {
    let today = Utc::now().date_naive();
    Ok(organisations::table
        .filter(organisations::ods_code.eq(code.as_str()))
        .select((
            organisations::id,
            organisations::name,
            organisations::kind,
            organisations::closed_on,
        ))
        .first::<(i64, String, String, Option<chrono::NaiveDate>)>(conn)
        .optional()?
        .map(|(id, name, kind, closed)| (id, name, kind, closed.is_some_and(|d| d < today))))
}

fn regions(conn: &mut DbConnection) -> Result<Vec<String>, AppError> {
    let found: Vec<Option<String>> = organisations::table
        .select(organisations::region)
        .filter(organisations::region.is_not_null())
        .distinct()
        .order(organisations::region.asc())
        .load(conn)?;
    Ok(found.into_iter().flatten().collect())
}

/// Check an invitation form. Field problems come back as `Ok(Err(_))`; a request outside the
/// inviter's scope (a role or organisation their form does not offer) is `Err(Forbidden)`.
fn check_invitation(
    conn: &mut DbConnection,
    scope: Scope,
    form: &InviteForm,
) -> Result<Result<Invitation, Vec<FieldError>>, AppError> {
    let mut errors = Vec::new();
    let role = Role::parse(form.role.trim());
    if let Scope::Organisation(own) = scope {
        // The form offers contributor and approver; anything else was not typed into it.
        let offered = role.is_some_and(Role::is_organisation_role);
        if !offered && !form.role.trim().is_empty() {
            return Err(AppError::Forbidden);
        }
        if let Some(code) = form
            .organisation
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            let own_code: String = organisations::table
                .find(own)
                .select(organisations::ods_code)
                .first(conn)?;
            if !code.trim().eq_ignore_ascii_case(&own_code) {
                return Err(AppError::Forbidden);
            }
        }
    }
    // Administrators see every account anyway and are told; an approver is not, so the form
    // cannot be used to find out who has an account (see `invite`).
    let mut existing = None;
    let email = match EmailAddress::parse(&form.email) {
        Ok(email) => {
            match (users::find_by_email(conn, email.as_str())?, scope) {
                (Some(user), Scope::Organisation(_)) => existing = Some(user),
                // An organisation role for an existing account adds a membership (`invite`);
                // any other role for one is refused below, once the role is known.
                (Some(user), Scope::Everyone) => existing = Some(user),
                (None, _) => {}
            }
            Some(email)
        }
        Err(message) => {
            errors.push(FieldError::new("email", message));
            None
        }
    };
    let name = form.name.trim().to_string();
    if name.is_empty() {
        errors.push(FieldError::new("name", "Enter the person's full name"));
    } else if name.chars().count() > 200 {
        errors.push(FieldError::new(
            "name",
            "The name must be 200 characters or fewer",
        ));
    } else if let Some(problem) = crate::domain::text::hidden_character_problem(&name) {
        errors.push(FieldError::new("name", format!("The name {problem}")));
    }
    let Placement {
        organisation_id,
        group_organisation_id,
        group_region,
        place,
    } = placement(conn, scope, role, form, &mut errors)?;
    if let (Scope::Everyone, Some(user), Some(role)) = (scope, &existing, role) {
        if !role.is_organisation_role() {
            errors.push(FieldError::new(
                "email",
                format!(
                    "An account for {} already exists. Another organisation can be added to it with the approver or contributor role; change its own role on its page.",
                    user.email
                ),
            ));
        }
    }
    match (email, role) {
        (Some(email), Some(role)) if errors.is_empty() => Ok(Ok(Invitation {
            email,
            name,
            role,
            organisation_id,
            group_organisation_id,
            group_region,
            place,
            existing,
        })),
        _ => Ok(Err(errors)),
    }
}

/// Where a person with a role works or what they see, as the invitation and role forms give it.
#[derive(Default)]
struct Placement {
    organisation_id: Option<i64>,
    group_organisation_id: Option<i64>,
    group_region: Option<String>,
    /// What an email names as where the person works or what they see.
    place: Option<String>,
}

/// Check the role's organisation, ICB or region fields of `form`, adding field problems to
/// `errors`. Shared by inviting someone and changing a person's role.
fn placement(
    conn: &mut DbConnection,
    scope: Scope,
    role: Option<Role>,
    form: &InviteForm,
    errors: &mut Vec<FieldError>,
) -> Result<Placement, AppError> {
    let (mut organisation_id, mut group_organisation_id, mut group_region, mut place) =
        (None, None, None, None);
    match (role, scope) {
        (None, _) => errors.push(FieldError::new("role", "Choose a role")),
        (Some(r), Scope::Organisation(own)) if r.is_organisation_role() => {
            let name: String = organisations::table
                .find(own)
                .select(organisations::name)
                .first(conn)?;
            organisation_id = Some(own);
            place = Some(name);
        }
        (Some(r), _) if r.is_organisation_role() => {
            let raw = form.organisation.as_deref().unwrap_or("").trim();
            if raw.is_empty() {
                errors.push(FieldError::new(
                    "organisation",
                    format!(
                        "Enter the ODS code of the organisation this {} works for",
                        r.label().to_lowercase()
                    ),
                ));
            } else {
                match OdsCode::parse(raw) {
                    Err(message) => {
                        errors.push(FieldError::new("organisation", first_upper(&message)))
                    }
                    Ok(code) => match organisation_by_code(conn, &code)? {
                        None => errors.push(FieldError::new(
                            "organisation",
                            format!(
                                "There is no organisation with ODS code {code} in the registry"
                            ),
                        )),
                        Some((_, name, _, true)) => errors.push(FieldError::new(
                            "organisation",
                            format!(
                                "{name} ({code}) has closed; invite people to an open organisation"
                            ),
                        )),
                        Some((id, name, _, false)) => {
                            organisation_id = Some(id);
                            place = Some(name);
                        }
                    },
                }
            }
        }
        (Some(Role::GroupViewer), _) => {
            let (icb, region) = (form.icb.trim(), form.region.trim());
            match (icb.is_empty(), region.is_empty()) {
                (true, true) => errors.push(FieldError::new(
                    "icb",
                    "Enter the ODS code of the ICB, or choose a region, whose results this person may see",
                )),
                (false, false) => errors.push(FieldError::new(
                    "icb",
                    "Enter an ICB or choose a region, not both",
                )),
                (false, true) => match OdsCode::parse(icb) {
                    Err(message) => errors.push(FieldError::new("icb", first_upper(&message))),
                    Ok(code) if code.kind() != OrgKind::Icb => errors.push(FieldError::new(
                        "icb",
                        format!("{code} is not an ICB: ICB codes start with Q, like QHM"),
                    )),
                    Ok(code) => match organisation_by_code(conn, &code)? {
                        None => errors.push(FieldError::new(
                            "icb",
                            format!("There is no ICB with ODS code {code} in the registry"),
                        )),
                        Some((id, name, _, _)) => {
                            group_organisation_id = Some(id);
                            place = Some(name);
                        }
                    },
                },
                (true, false) => {
                    if regions(conn)?.iter().any(|r| r == region) {
                        group_region = Some(region.to_string());
                        place = Some(region.to_string());
                    } else {
                        errors.push(FieldError::new("region", "Choose a region from the list"));
                    }
                }
            }
        }
        (Some(_), _) => {}
    }
    Ok(Placement {
        organisation_id,
        group_organisation_id,
        group_region,
        place,
    })
}

/// What an invitation did.
enum Invited {
    /// A new account, with its invitation link emailed.
    Account,
    /// The address had an account: it now also belongs to the organisation.
    Member,
    /// The address had an account that already belongs there, or holds a national role: nothing
    /// changed, and its holder was told.
    Unchanged,
}

/// Create the account, its invitation link and the invitation email, in the caller's
/// transaction. When the address already has an account, no account is created: an
/// organisation role adds a membership of that organisation to it
/// ([`memberships::add`]) and its holder is emailed that they now also work for it; where the
/// account already belongs there (or holds a national role) nothing changes and its holder is
/// told someone tried. An approver is answered the same in every case.
fn invite(
    conn: &mut DbConnection,
    templates: &Templates,
    key: &crate::crypto::SealingKey,
    base_url: &str,
    actor: &Actor,
    invitation: Invitation,
) -> Result<Invited, AppError> {
    if let Some(existing) = invitation.existing {
        let base = base_url.trim_end_matches('/');
        if let (Some(organisation), true) = (
            invitation.organisation_id,
            invitation.role.is_organisation_role(),
        ) {
            if let memberships::Added::New(_) =
                memberships::add(conn, actor, &existing, organisation, invitation.role)?
            {
                crate::services::mail::enqueue(
                    conn,
                    templates,
                    crate::services::mail::OutgoingEmail {
                        kind: "membership_added",
                        to: &existing.email,
                        template: "membership_added",
                        data: json!({
                            "name": existing.name,
                            "inviter": actor.label,
                            "organisation": invitation.place,
                            "role_label": invitation.role.label().to_lowercase(),
                            "link": format!("{base}/account/organisations"),
                        }),
                        dedupe_key: None,
                    },
                )?;
                return Ok(Invited::Member);
            }
        }
        crate::services::mail::enqueue(
            conn,
            templates,
            crate::services::mail::OutgoingEmail {
                kind: "already_registered",
                to: &existing.email,
                template: "already_registered",
                data: json!({
                    "name": existing.name,
                    "inviter": actor.label,
                    "organisation": invitation.place,
                    "link": format!("{base}/login"),
                    "reset_link": format!("{base}/account/reset-password"),
                }),
                dedupe_key: None,
            },
        )?;
        audit::record(
            conn,
            actor,
            Entry::new("user.invite_existing", "user", existing.id)
                .organisation(invitation.organisation_id),
        )?;
        return Ok(Invited::Unchanged);
    }
    let user = users::create(
        conn,
        actor,
        NewUser {
            email: &invitation.email,
            name: &invitation.name,
            role: invitation.role,
            organisation_id: invitation.organisation_id,
            group_organisation_id: invitation.group_organisation_id,
            group_region: invitation.group_region.as_deref(),
        },
    )?;
    users::email_link_token(
        conn,
        templates,
        key,
        base_url,
        &user,
        users::INVITATION,
        |link| {
            json!({
                "name": user.name,
                "link": link,
                "organisation": invitation.place,
                // "invited ... as contributor"
                "role_label": invitation.role.label().to_lowercase(),
                "expires_days": INVITATION_DAYS,
            })
        },
    )?;
    audit::record(
        conn,
        actor,
        Entry::new("user.invite", "user", user.id)
            .organisation(user.organisation_id.or(user.group_organisation_id))
            .after(json!({
                "email": user.email, "role": user.role,
                "organisation_id": user.organisation_id,
                "group_organisation_id": user.group_organisation_id,
                "group_region": user.group_region,
                "expires_days": INVITATION_DAYS,
            })),
    )?;
    Ok(Invited::Account)
}

/// Check and, if everything is in order, invite. Field problems come back as `Ok(Err(_))`
/// with nothing written.
async fn check_and_invite(
    state: &AppState,
    auth: &Authenticated,
    scope: Scope,
    form: InviteForm,
) -> Result<Result<Invited, Vec<FieldError>>, AppError> {
    let actor = auth.actor();
    let templates = state.templates.clone();
    let base_url = state.settings.base_url.clone();
    let key = state.settings.mail.sealing_key.clone();
    let email = form.email.trim().to_lowercase();
    let result = state
        .db
        .write(move |conn| match check_invitation(conn, scope, &form)? {
            Ok(invitation) => invite(conn, &templates, &key, &base_url, &actor, invitation).map(Ok),
            Err(errors) => Ok(Err(errors)),
        })
        .await;
    if matches!(result, Ok(Ok(_))) {
        crate::services::mail::wake();
    }
    match result {
        // Two invitations for one address at the same moment: the database refused the second.
        Err(AppError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _,
        ))) => Ok(Err(vec![FieldError::new(
            "email",
            format!("An account for {email} already exists"),
        )])),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// Deactivating
// ---------------------------------------------------------------------------------------

/// Deactivate a person within `scope`: sign them out everywhere (their sessions are deleted)
/// and record it. Deactivating someone already deactivated changes nothing.
fn deactivate(
    conn: &mut DbConnection,
    actor: &Actor,
    scope: Scope,
    target_id: i64,
) -> Result<User, AppError> {
    let target = users::find(conn, target_id)?.ok_or(AppError::NotFound)?;
    if let Scope::Organisation(own) = scope {
        if target.organisation_id != Some(own) {
            return Err(AppError::Forbidden);
        }
    }
    if actor.user_id == Some(target.id) {
        return Err(AppError::Conflict(
            "You cannot deactivate your own account. Ask another approver or an administrator."
                .into(),
        ));
    }
    if !target.active {
        return Ok(target);
    }
    let now = Utc::now().naive_utc();
    diesel::update(users_table::table.find(target.id))
        .set((
            users_table::active.eq(false),
            users_table::updated_at.eq(now),
        ))
        .execute(conn)?;
    let signed_out =
        diesel::delete(sessions::table.filter(sessions::user_id.eq(target.id))).execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("user.deactivate", "user", target.id)
            .organisation(target.organisation_id)
            .before(json!({"email": target.email, "active": true}))
            .after(json!({"email": target.email, "active": false, "sessions_ended": signed_out})),
    )?;
    Ok(User {
        active: false,
        ..target
    })
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
    /// The organisation an approver's page was drawn for (see [`approver_posting`]).
    #[serde(default)]
    for_organisation: String,
}

// ---------------------------------------------------------------------------------------
// Showing people
// ---------------------------------------------------------------------------------------

fn status(user: &User) -> (&'static str, &'static str) {
    match (user.active, user.password_hash.is_some()) {
        (false, _) => ("Deactivated", "grey"),
        (true, false) => ("Invited", "blue"),
        (true, true) => ("Active", "green"),
    }
}

/// The organisations (code, name) that a page of users mentions.
fn organisation_names(
    conn: &mut DbConnection,
    people: &[User],
) -> Result<std::collections::HashMap<i64, (String, String)>, AppError> {
    let ids: Vec<i64> = people
        .iter()
        .flat_map(|u| [u.organisation_id, u.group_organisation_id])
        .flatten()
        .collect();
    Ok(organisations::table
        .filter(organisations::id.eq_any(ids))
        .select((
            organisations::id,
            organisations::ods_code,
            organisations::name,
        ))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, code, name)| (id, (code, name)))
        .collect())
}

fn person_row(
    user: &User,
    names: &std::collections::HashMap<i64, (String, String)>,
    viewer: i64,
    deactivate_base: &str,
) -> Value {
    let (status_label, status_colour) = status(user);
    let org = user.organisation_id.and_then(|id| names.get(&id));
    let group = user
        .group_organisation_id
        .and_then(|id| names.get(&id))
        .map(|(code, name)| format!("{name} ({code})"))
        .or_else(|| user.group_region.clone());
    json!({
        "id": user.id,
        "href": format!("{ADMIN_BASE}/{}", user.id),
        "name": user.name,
        "email": user.email,
        "role_label": user.role().label(),
        "organisation": org.map(|(code, name)| format!("{name} ({code})")),
        "group": group,
        "status_label": status_label,
        "status_colour": status_colour,
        "can_deactivate": user.active && user.id != viewer,
        "deactivate_href": format!("{deactivate_base}/{}/deactivate", user.id),
    })
}

fn error_list(errors: &[FieldError]) -> Value {
    if errors.is_empty() {
        Value::Null
    } else {
        json!(errors
            .iter()
            .map(|e| json!({"href": format!("#{}", e.path), "message": e.message}))
            .collect::<Vec<_>>())
    }
}

fn error_for(errors: &[FieldError], field: &str) -> Value {
    errors
        .iter()
        .find(|e| e.path == field)
        .map_or(Value::Null, |e| json!(e.message))
}

fn flash(done: Option<&str>) -> Value {
    match done {
        Some("invited") => {
            json!({"kind": "success", "message": format!("The invitation has been sent. The link in it works once, for {INVITATION_DAYS} days.")})
        }
        Some("imported") => {
            json!({"kind": "success", "message": format!("Everyone in the file was invited. Each link works once, for {INVITATION_DAYS} days.")})
        }
        Some("invitation") => {
            json!({"kind": "success", "message": format!("Done. Someone new gets an email with a link to choose a password; it works once, for {INVITATION_DAYS} days. Someone who already has an account is added to your organisation with the role you chose, unless they already belong to it, and is told by email. To change the role of someone already here, ask an administrator.")})
        }
        Some("member-added") => {
            json!({"kind": "success", "message": "That address already had an account. It now also belongs to the organisation, with the role you chose, and its holder was emailed."})
        }
        Some("already-there") => {
            json!({"kind": "success", "message": "That address already has an account that belongs to the organisation (or holds a national role), so nothing changed. Its holder was told."})
        }
        Some("member-removed") => {
            json!({"kind": "success", "message": "The person no longer belongs to your organisation. Their account and their other organisations are unchanged."})
        }
        Some("deactivated") => {
            json!({"kind": "success", "message": "The account was deactivated and signed out everywhere."})
        }
        Some("second-factor-reset") => {
            json!({"kind": "success", "message": "The second factor was reset. The person signs in with their password and, if their role needs one, sets up a new second factor."})
        }
        Some("no-second-factor") => {
            json!({"kind": "success", "message": "That person had no second factor to reset."})
        }
        _ => Value::Null,
    }
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

// ---------------------------------------------------------------------------------------
// Administrators: /admin/users
// ---------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct AdminListQuery {
    #[serde(default)]
    role: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    q: String,
    page: Option<String>,
    done: Option<String>,
}

impl AdminListQuery {
    fn filters(&self) -> [(&'static str, &str); 3] {
        [
            ("role", self.role.as_str()),
            ("organisation", self.organisation.as_str()),
            ("q", self.q.as_str()),
        ]
    }
}

fn admin_filtered<'a>(
    query: &AdminListQuery,
    organisation_id: Option<Option<i64>>,
) -> users_table::BoxedQuery<'a, MultiBackend> {
    let mut q = users_table::table.into_boxed();
    if let Some(role) = Role::parse(query.role.trim()) {
        q = q.filter(users_table::role.eq(role.as_str()));
    }
    match organisation_id {
        None => {}
        Some(Some(id)) => {
            q = q.filter(
                users_table::organisation_id
                    .eq(id)
                    .or(users_table::group_organisation_id.eq(id)),
            )
        }
        // An organisation code that is not in the registry matches nobody.
        Some(None) => q = q.filter(users_table::id.lt(0)),
    }
    let text = query.q.trim();
    if !text.is_empty() {
        let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
        q = q.filter(
            lower(users_table::name)
                .like(pattern.clone())
                .escape('\\')
                .or(users_table::email.like(pattern).escape('\\')),
        );
    }
    q
}

pub async fn admin_list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<AdminListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let query = std::sync::Arc::new(query.into_inner());
    let page_no = listing::page_number(query.page.as_deref());
    let q = query.clone();
    let (people, total, names, with_factor) = state
        .db
        .read(move |conn| {
            let code = q.organisation.trim();
            let organisation_id = if code.is_empty() {
                None
            } else {
                Some(match OdsCode::parse(code) {
                    Ok(code) => organisation_by_code(conn, &code)?.map(|o| o.0),
                    Err(_) => None,
                })
            };
            let total: i64 = admin_filtered(&q, organisation_id)
                .count()
                .get_result(conn)?;
            let people: Vec<User> = admin_filtered(&q, organisation_id)
                .order(users_table::email.asc())
                .limit(PAGE_SIZE)
                .offset(listing::offset(page_no))
                .select(User::as_select())
                .load(conn)?;
            let names = organisation_names(conn, &people)?;
            let with_factor: std::collections::HashSet<i64> =
                crate::db::schema::second_factors::table
                    .filter(
                        crate::db::schema::second_factors::user_id
                            .eq_any(people.iter().map(|p| p.id).collect::<Vec<_>>()),
                    )
                    .select(crate::db::schema::second_factors::user_id)
                    .load::<i64>(conn)?
                    .into_iter()
                    .collect();
            Ok((people, total, names, with_factor))
        })
        .await?;
    let rows: Vec<Value> = people
        .iter()
        .map(|u| {
            let mut row = person_row(u, &names, auth.user.id, ADMIN_BASE);
            row["second_factor"] = json!(with_factor.contains(&u.id));
            row["reset_href"] = json!(format!("{ADMIN_BASE}/{}/second-factor/reset", u.id));
            row
        })
        .collect();
    let roles: Vec<Value> = Role::ALL
        .into_iter()
        .map(|r| json!({"value": r.as_str(), "label": r.label(), "selected": r.as_str() == query.role.trim()}))
        .collect();
    page::render(
        &state,
        Some(&auth.page_user()),
        "admin/users",
        "People",
        json!({
            "people": rows,
            "roles": roles,
            "organisation": query.organisation.trim(),
            "q": query.q.trim(),
            "filtered": query.filters().iter().any(|(_, v)| !v.trim().is_empty()),
            "pagination": listing::pagination(ADMIN_BASE, &query.filters(), page_no, total),
            "flash": flash(query.done.as_deref()),
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    )
}

async fn admin_invite_page(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    form: &InviteForm,
    errors: &[FieldError],
) -> Result<HttpResponse, AppError> {
    let regions = state.db.read(regions).await?;
    let roles: Vec<Value> = Role::ALL
        .into_iter()
        .map(|r| {
            json!({
                "value": r.as_str(), "label": r.label(), "checked": r.as_str() == form.role.trim(),
                "hint": match r {
                    Role::Administrator => "Keeps question sets, cycles, the registry and accounts.",
                    Role::Auditor => "Reads every submitted assessment and the audit log.",
                    Role::GroupViewer => "Reads the submitted results of one ICB or region.",
                    Role::OrgApprover => "Signs off and submits for one organisation and manages its people.",
                    Role::OrgContributor => "Answers questions for one organisation.",
                },
                "needs_organisation": r.is_organisation_role(),
                "group": r == Role::GroupViewer,
            })
        })
        .collect();
    let regions: Vec<Value> = regions
        .iter()
        .map(|r| json!({"value": r, "selected": r == form.region.trim()}))
        .collect();
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "admin/user_invite",
        "Invite someone",
        json!({
            "roles": roles,
            "regions": regions,
            "email": form.email, "name": form.name,
            "organisation": form.organisation.clone().unwrap_or_default(),
            "icb": form.icb,
            "email_error": error_for(errors, "email"),
            "name_error": error_for(errors, "name"),
            "role_error": error_for(errors, "role"),
            "organisation_error": error_for(errors, "organisation"),
            "icb_error": error_for(errors, "icb"),
            "region_error": error_for(errors, "region"),
            "errors": error_list(errors),
            "expires_days": INVITATION_DAYS,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": ADMIN_BASE, "label": "People"}],
        }),
    )
}

pub async fn admin_invite_form(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    admin_invite_page(&state, &auth, StatusCode::OK, &InviteForm::default(), &[]).await
}

pub async fn admin_invite(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    // Giving someone a role is a sensitive action: a recent sign-in or confirmation.
    if let Some(confirm) =
        crate::web::second_factor::demand_recent(&state, &auth, &format!("{ADMIN_BASE}/invite"))
    {
        return Ok(confirm);
    }
    let form = form.into_inner();
    match check_and_invite(&state, &auth, Scope::Everyone, form.clone()).await? {
        Ok(Invited::Member) => Ok(see_other(format!("{ADMIN_BASE}?done=member-added"))),
        Ok(Invited::Unchanged) => Ok(see_other(format!("{ADMIN_BASE}?done=already-there"))),
        Ok(Invited::Account) => Ok(see_other(format!("{ADMIN_BASE}?done=invited"))),
        Err(errors) => {
            admin_invite_page(
                &state,
                &auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
            )
            .await
        }
    }
}

pub async fn admin_deactivate(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let (actor, target) = (auth.actor(), path.into_inner());
    state
        .db
        .write(move |conn| deactivate(conn, &actor, Scope::Everyone, target))
        .await?;
    Ok(see_other(format!("{ADMIN_BASE}?done=deactivated")))
}

// ---------------------------------------------------------------------------------------
// One person: changing their role, sending their invitation again
// ---------------------------------------------------------------------------------------

/// Change `target_id`'s role (and where they work or what they see), in the caller's
/// transaction. The change is conditional on the role the page showed (`seen_role`), so of two
/// administrators changing one person at once the second is told; demoting an administrator
/// first locks every active administrator's row and then counts the others, so two
/// administrators demoting each other at once cannot leave the service with none. The person's
/// sessions read the role afresh on their next request; if the new role needs a second factor
/// they have not set up, they are signed out so that signing in again asks for one.
#[allow(clippy::too_many_arguments)]
fn change_role(
    conn: &mut DbConnection,
    actor: &Actor,
    target_id: i64,
    seen_role: &str,
    role: Role,
    placed: Placement,
    second_factor_roles: &[String],
) -> Result<User, AppError> {
    let target = users::find(conn, target_id)?.ok_or(AppError::NotFound)?;
    let administrator = Role::Administrator.as_str();
    if target.role == administrator && role != Role::Administrator {
        diesel::update(
            users_table::table
                .filter(users_table::role.eq(administrator))
                .filter(users_table::active.eq(true)),
        )
        .set(users_table::updated_at.eq(users_table::updated_at))
        .execute(conn)?;
        let others: i64 = users_table::table
            .filter(users_table::role.eq(administrator))
            .filter(users_table::active.eq(true))
            .filter(users_table::id.ne(target.id))
            .count()
            .get_result(conn)?;
        if others == 0 {
            return Err(AppError::Conflict(format!(
                "{} is the last administrator. Make someone else an administrator first, so the service always has one.",
                target.name
            )));
        }
    }
    let now = Utc::now().naive_utc();
    let changed = diesel::update(
        users_table::table
            .find(target.id)
            .filter(users_table::role.eq(seen_role)),
    )
    .set((
        users_table::role.eq(role.as_str()),
        users_table::organisation_id.eq(placed.organisation_id),
        users_table::group_organisation_id.eq(placed.group_organisation_id),
        users_table::group_region.eq(&placed.group_region),
        users_table::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed != 1 {
        return Err(AppError::Conflict(format!(
            "Someone else changed {}'s role after you opened the page. Look at it again, then make your change.",
            target.name
        )));
    }
    let after = users::find(conn, target.id)?.ok_or(AppError::NotFound)?;
    let needs_factor = crate::services::auth::second_factor::required(second_factor_roles, &after)
        && crate::services::auth::second_factor::enabled_at(conn, after.id)?.is_none();
    let signed_out = if needs_factor {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(after.id))).execute(conn)?
    } else {
        0
    };
    audit::record(
        conn,
        actor,
        Entry::new("user.role_change", "user", target.id)
            .organisation(after.organisation_id.or(target.organisation_id))
            .before(json!({"email": target.email, "role": target.role, "organisation_id": target.organisation_id,
                           "group_organisation_id": target.group_organisation_id, "group_region": target.group_region}))
            .after(json!({"email": after.email, "role": after.role, "organisation_id": after.organisation_id,
                          "group_organisation_id": after.group_organisation_id, "group_region": after.group_region,
                          "sessions_ended": signed_out})),
    )?;
    Ok(after)
}

/// Send a new invitation to someone who has not yet chosen a password: the links sent before
/// stop working, and the new one goes through the outbox in the same transaction.
fn resend_invitation(
    conn: &mut DbConnection,
    templates: &Templates,
    key: &crate::crypto::SealingKey,
    base_url: &str,
    actor: &Actor,
    target_id: i64,
) -> Result<User, AppError> {
    use crate::db::schema::one_time_tokens;
    let target = users::find(conn, target_id)?.ok_or(AppError::NotFound)?;
    if !target.active {
        return Err(AppError::Conflict(format!(
            "{}'s account is deactivated, so it cannot be invited again.",
            target.name
        )));
    }
    if target.password_hash.is_some() {
        return Err(AppError::Conflict(format!(
            "{} has already accepted their invitation and chosen a password. If they have forgotten it, they can reset it from the sign-in page.",
            target.name
        )));
    }
    let now = Utc::now().naive_utc();
    let revoked = diesel::update(
        one_time_tokens::table
            .filter(one_time_tokens::user_id.eq(target.id))
            .filter(one_time_tokens::purpose.eq(users::INVITATION))
            .filter(one_time_tokens::used_at.is_null()),
    )
    .set(one_time_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    let place = match (target.organisation_id, target.group_organisation_id) {
        (Some(id), _) | (None, Some(id)) => organisations::table
            .find(id)
            .select(organisations::name)
            .first::<String>(conn)
            .optional()?,
        (None, None) => target.group_region.clone(),
    };
    users::email_link_token(
        conn,
        templates,
        key,
        base_url,
        &target,
        users::INVITATION,
        |link| {
            json!({
                "name": target.name,
                "link": link,
                "organisation": place,
                "role_label": target.role().label().to_lowercase(),
                "expires_days": INVITATION_DAYS,
            })
        },
    )?;
    audit::record(
        conn,
        actor,
        Entry::new("user.invite_again", "user", target.id)
            .organisation(target.organisation_id.or(target.group_organisation_id))
            .after(json!({"email": target.email, "links_revoked": revoked, "expires_days": INVITATION_DAYS})),
    )?;
    Ok(target)
}

/// What the role form sends: the role it showed (`seen_role`) and the new role with its
/// organisation, ICB or region.
#[derive(Deserialize, Default, Clone)]
pub struct RoleForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    seen_role: String,
    #[serde(default)]
    role: String,
    organisation: Option<String>,
    #[serde(default)]
    icb: String,
    #[serde(default)]
    region: String,
}

async fn person_page(
    state: &AppState,
    auth: &Authenticated,
    target_id: i64,
    typed: Option<&RoleForm>,
    errors: &[FieldError],
    status: StatusCode,
    done: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let (person, names, regions, places) = state
        .db
        .read(move |conn| {
            let person = users::find(conn, target_id)?.ok_or(AppError::NotFound)?;
            let names = organisation_names(conn, std::slice::from_ref(&person))?;
            let places = memberships::of_user(conn, target_id)?;
            let linked = crate::services::auth::sso::linked(conn, target_id)?;
            Ok((person, names, regions(conn)?, (places, linked)))
        })
        .await?;
    let (places, linked) = places;
    let identities: Vec<Value> = linked
        .iter()
        .map(|l| {
            json!({
                "provider": l.provider,
                "email": l.email,
                "linked_on": l.linked_at.format("%-d %B %Y").to_string(),
                "unlink_href": format!("{ADMIN_BASE}/{}/sso/{}/unlink", person.id, l.provider),
            })
        })
        .collect();
    let places: Vec<Value> = places
        .iter()
        .map(|p| {
            json!({
                "label": p.label,
                "role_label": p.role_label,
                "remove_href": format!("{ADMIN_BASE}/{}/memberships/{}/remove", person.id, p.organisation_id.unwrap_or_default()),
            })
        })
        .collect();
    let row = person_row(&person, &names, auth.user.id, ADMIN_BASE);
    let chosen = typed.map_or(person.role.clone(), |t| t.role.clone());
    let current_org = person
        .organisation_id
        .and_then(|id| names.get(&id))
        .map(|(code, _)| code.clone())
        .unwrap_or_default();
    let current_icb = person
        .group_organisation_id
        .and_then(|id| names.get(&id))
        .map(|(code, _)| code.clone())
        .unwrap_or_default();
    let region = typed.map_or(person.group_region.clone().unwrap_or_default(), |t| {
        t.region.clone()
    });
    let roles: Vec<Value> = Role::ALL
        .into_iter()
        .map(|r| json!({"value": r.as_str(), "label": r.label(), "checked": r.as_str() == chosen,
                        "needs_organisation": r.is_organisation_role(), "group": r == Role::GroupViewer}))
        .collect();
    let flash = match done {
        Some("member-removed") => {
            json!({"kind": "success", "message": "The person no longer belongs to that organisation. Their account and other organisations are unchanged."})
        }
        Some("sso-unlinked") => {
            json!({"kind": "success", "message": "Unlinked: that provider no longer signs this person in, and their sessions signed in through it have ended. Someone with no password now needs a password reset to sign in."})
        }
        Some("role") => {
            json!({"kind": "success", "message": "The role was changed. It applies to the person's next page; if the new role needs a second factor they have not set up, they were signed out."})
        }
        Some("invited-again") => {
            json!({"kind": "success", "message": format!("A new invitation was sent. Links sent before no longer work; the new one works once, for {INVITATION_DAYS} days.")})
        }
        _ => Value::Null,
    };
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "admin/user",
        &person.name,
        json!({
            "person": row,
            "places": places,
            "identities": identities,
            "base": format!("{ADMIN_BASE}/{}", person.id),
            "seen_role": typed.map_or(person.role.clone(), |t| t.seen_role.clone()),
            "invited": person.active && person.password_hash.is_none(),
            "roles": roles,
            "regions": regions.iter().map(|r| json!({"value": r, "selected": *r == region})).collect::<Vec<_>>(),
            "organisation": typed.map_or(current_org, |t| t.organisation.clone().unwrap_or_default()),
            "icb": typed.map_or(current_icb, |t| t.icb.clone()),
            "role_error": error_for(errors, "role"),
            "organisation_error": error_for(errors, "organisation"),
            "icb_error": error_for(errors, "icb"),
            "region_error": error_for(errors, "region"),
            "errors": error_list(errors),
            "flash": flash,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": ADMIN_BASE, "label": "People"}],
        }),
    )
}

pub async fn admin_person(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    person_page(
        &state,
        &auth,
        path.into_inner(),
        None,
        &[],
        StatusCode::OK,
        query.done.as_deref(),
    )
    .await
}

pub async fn admin_change_role(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let target = path.into_inner();
    // Giving or taking away a role is sensitive: a recent sign-in or confirmation.
    if let Some(confirm) =
        crate::web::second_factor::demand_recent(&state, &auth, &format!("{ADMIN_BASE}/{target}"))
    {
        return Ok(confirm);
    }
    let form = form.into_inner();
    let typed = form.clone();
    let actor = auth.actor();
    let factor_roles = state.settings.auth.second_factor_roles.clone();
    let outcome = state
        .db
        .write(move |conn| {
            let mut errors = Vec::new();
            let role = Role::parse(form.role.trim());
            let as_invite = InviteForm {
                role: form.role.clone(),
                organisation: form.organisation.clone(),
                icb: form.icb.clone(),
                region: form.region.clone(),
                ..InviteForm::default()
            };
            let placed = placement(conn, Scope::Everyone, role, &as_invite, &mut errors)?;
            match role {
                Some(role) if errors.is_empty() => change_role(
                    conn,
                    &actor,
                    target,
                    form.seen_role.trim(),
                    role,
                    placed,
                    &factor_roles,
                )
                .map(|_| Ok(())),
                _ => Ok(Err(errors)),
            }
        })
        .await;
    match outcome {
        Ok(Ok(())) => Ok(see_other(format!("{ADMIN_BASE}/{target}?done=role"))),
        Ok(Err(errors)) => {
            person_page(
                &state,
                &auth,
                target,
                Some(&typed),
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .await
        }
        Err(AppError::Conflict(message)) => {
            let errors = [FieldError::new("role", message)];
            person_page(
                &state,
                &auth,
                target,
                None,
                &errors,
                StatusCode::CONFLICT,
                None,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub async fn admin_resend_invitation(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let target = path.into_inner();
    let actor = auth.actor();
    let templates = state.templates.clone();
    let base_url = state.settings.base_url.clone();
    let key = state.settings.mail.sealing_key.clone();
    match state
        .db
        .write(move |conn| resend_invitation(conn, &templates, &key, &base_url, &actor, target))
        .await
    {
        Ok(_) => {
            crate::services::mail::wake();
            Ok(see_other(format!(
                "{ADMIN_BASE}/{target}?done=invited-again"
            )))
        }
        Err(AppError::Conflict(message)) => {
            let errors = [FieldError::new("resend", message)];
            person_page(
                &state,
                &auth,
                target,
                None,
                &errors,
                StatusCode::CONFLICT,
                None,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// Approvers: /organisation/users
// ---------------------------------------------------------------------------------------

/// The approver's own organisation, which every `/organisation/users` request is limited to.
/// An administrator (who has no organisation) is sent to the administrators' page.
fn own_organisation(auth: &Authenticated) -> Result<Result<i64, HttpResponse>, AppError> {
    match auth.user.organisation_id {
        Some(org) => {
            auth.require(Action::Approve(org))?;
            Ok(Ok(org))
        }
        None if auth.may(Action::Administer) => Ok(Err(see_other(ADMIN_BASE.to_string()))),
        None => Err(AppError::Forbidden),
    }
}

/// The approver's own organisation for a form they posted: theirs, with its CSRF token
/// checked; anyone else (administrators included, who use their own pages) is refused. The
/// page names the organisation it was drawn for (`for_organisation`): someone who works for
/// several and switched in another tab since is refused (409) rather than acting on the
/// organisation they switched to.
fn approver_posting(
    auth: &Authenticated,
    csrf_token: &str,
    for_organisation: &str,
) -> Result<i64, AppError> {
    let org = own_organisation(auth)?.map_err(|_| AppError::Forbidden)?;
    auth.check_csrf(csrf_token)?;
    let drawn_for = for_organisation.trim();
    if !drawn_for.is_empty() && drawn_for != org.to_string() {
        return Err(AppError::Conflict(
            "You switched organisation after this page was shown, so nothing was done. Open People again to work on the organisation you are working for now.".into(),
        ));
    }
    Ok(org)
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn organisation_page(
    state: &AppState,
    auth: &Authenticated,
    org: i64,
    status: StatusCode,
    form: &InviteForm,
    errors: &[FieldError],
    done: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let (organisation, people, names) = state
        .db
        .read(move |conn| {
            let organisation: (String, String) = organisations::table
                .find(org)
                .select((organisations::ods_code, organisations::name))
                .first(conn)?;
            let mut people: Vec<(User, Option<String>)> = users_table::table
                .filter(users_table::organisation_id.eq(org))
                .select(User::as_select())
                .load(conn)?
                .into_iter()
                .map(|u| (u, None))
                .collect();
            // Members from elsewhere, with the role they hold here.
            let members: Vec<(User, String)> = memberships_table::table
                .inner_join(users_table::table)
                .filter(memberships_table::organisation_id.eq(org))
                .select((User::as_select(), memberships_table::role))
                .load(conn)?;
            people.extend(members.into_iter().map(|(u, role)| (u, Some(role))));
            people.sort_by(|(a, _), (b, _)| {
                b.active
                    .cmp(&a.active)
                    .then_with(|| a.name.cmp(&b.name))
                    .then(a.id.cmp(&b.id))
            });
            let accounts: Vec<User> = people.iter().map(|(u, _)| u.clone()).collect();
            let names = organisation_names(conn, &accounts)?;
            Ok((organisation, people, names))
        })
        .await?;
    let rows: Vec<Value> = people
        .iter()
        .map(|(u, member_role)| {
            let mut row = person_row(u, &names, auth.user.id, ORG_BASE);
            if let Some(role) = member_role {
                row["role_label"] = json!(Role::parse(role).map_or(role.as_str(), |r| r.label()));
                row["can_deactivate"] = json!(false);
                row["member"] = json!(true);
                row["can_remove"] = json!(u.id != auth.user.id);
                row["remove_href"] = json!(format!("{ORG_BASE}/{}/remove", u.id));
            }
            row
        })
        .collect();
    let roles: Vec<Value> = [Role::OrgContributor, Role::OrgApprover]
        .into_iter()
        .map(|r| {
            json!({
                "value": r.as_str(), "label": r.label(), "checked": r.as_str() == form.role.trim(),
                "hint": if r == Role::OrgApprover { "Answers questions, signs off and submits, and manages the people of the organisation." } else { "Answers questions." },
            })
        })
        .collect();
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "organisation/users",
        "People in your organisation",
        json!({
            "organisation_name": organisation.1,
            "organisation_code": organisation.0,
            "organisation_id": org,
            "people": rows,
            "roles": roles,
            "email": form.email, "name": form.name,
            "email_error": error_for(errors, "email"),
            "name_error": error_for(errors, "name"),
            "role_error": error_for(errors, "role"),
            "errors": error_list(errors),
            "flash": flash(done),
            "expires_days": INVITATION_DAYS,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    )
}

pub async fn organisation_list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let org = match own_organisation(&auth)? {
        Ok(org) => org,
        Err(redirect) => return Ok(redirect),
    };
    organisation_page(
        &state,
        &auth,
        org,
        StatusCode::OK,
        &InviteForm::default(),
        &[],
        query.done.as_deref(),
    )
    .await
}

pub async fn organisation_invite(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let org = approver_posting(&auth, &form.csrf_token, &form.for_organisation)?;
    if let Some(confirm) = crate::web::second_factor::demand_recent(&state, &auth, ORG_BASE) {
        return Ok(confirm);
    }
    let form = form.into_inner();
    match check_and_invite(&state, &auth, Scope::Organisation(org), form.clone()).await? {
        // One answer whatever happened, so the form does not tell who has an account.
        Ok(_) => Ok(see_other(format!("{ORG_BASE}?done=invitation"))),
        Err(errors) => {
            organisation_page(
                &state,
                &auth,
                org,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                None,
            )
            .await
        }
    }
}

pub async fn organisation_deactivate(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    let org = approver_posting(&auth, &form.csrf_token, &form.for_organisation)?;
    let (actor, target) = (auth.actor(), path.into_inner());
    state
        .db
        .write(move |conn| deactivate(conn, &actor, Scope::Organisation(org), target))
        .await?;
    Ok(see_other(format!("{ORG_BASE}?done=deactivated")))
}

/// An administrator takes away one of a person's memberships (not their home).
pub async fn admin_remove_membership(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let ((target, organisation), actor) = (path.into_inner(), auth.actor());
    let removed = state
        .db
        .write(move |conn| memberships::remove(conn, &actor, target, organisation))
        .await?;
    if !removed {
        return Err(AppError::NotFound);
    }
    Ok(see_other(format!(
        "{ADMIN_BASE}/{target}?done=member-removed"
    )))
}

/// An approver takes away a member's place in their organisation (a membership; people whose
/// home is the organisation are deactivated instead). Their account and other places stay.
pub async fn organisation_remove_member(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    let org = approver_posting(&auth, &form.csrf_token, &form.for_organisation)?;
    let (actor, target) = (auth.actor(), path.into_inner());
    if auth.user.id == target {
        return Err(AppError::Conflict(
            "You cannot take yourself out of the organisation. Ask another approver or an administrator.".into(),
        ));
    }
    state
        .db
        .write(move |conn| {
            if memberships::remove(conn, &actor, target, org)? {
                return Ok(());
            }
            // Not a member: someone whose own organisation this is, or nobody of it.
            let home = users::find(conn, target)?.and_then(|u| u.organisation_id);
            if home == Some(org) {
                Err(AppError::Conflict(
                    "This organisation is the person's own: deactivate their account instead."
                        .into(),
                ))
            } else {
                Err(AppError::Forbidden)
            }
        })
        .await?;
    Ok(see_other(format!("{ORG_BASE}?done=member-removed")))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(ADMIN_BASE, web::get().to(admin_list))
        .route("/admin/users/import", web::get().to(import::form))
        .route("/admin/users/import", web::post().to(import::upload))
        .route(
            "/admin/users/import/confirm",
            web::post().to(import::confirm),
        )
        .route("/admin/users/invite", web::get().to(admin_invite_form))
        .route("/admin/users/invite", web::post().to(admin_invite))
        .route(
            "/admin/users/{id}/deactivate",
            web::post().to(admin_deactivate),
        )
        .route("/admin/users/{id}", web::get().to(admin_person))
        .route("/admin/users/{id}/role", web::post().to(admin_change_role))
        .route(
            "/admin/users/{id}/memberships/{organisation}/remove",
            web::post().to(admin_remove_membership),
        )
        .route(
            "/admin/users/{id}/resend-invitation",
            web::post().to(admin_resend_invitation),
        )
        .route(ORG_BASE, web::get().to(organisation_list))
        .route(
            "/organisation/users/invite",
            web::post().to(organisation_invite),
        )
        .route(
            "/organisation/users/{id}/deactivate",
            web::post().to(organisation_deactivate),
        )
        .route(
            "/organisation/users/{id}/remove",
            web::post().to(organisation_remove_member),
        );
}
