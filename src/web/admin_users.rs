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

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::{self, Actor, Entry};
use crate::auth::roles::{Action, Role};
use crate::auth::session::Authenticated;
use crate::auth::users::{self, EmailAddress, NewUser, User};
use crate::db::schema::{organisations, sessions, users as users_table};
use crate::db::{DbConnection, MultiBackend};
use crate::domain::ods::{OdsCode, OrgKind};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::web::listing::{self, like_escape, lower, PAGE_SIZE};
use crate::web::templates::Templates;
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
    let email = match EmailAddress::parse(&form.email) {
        Ok(email) => {
            if users::find_by_email(conn, email.as_str())?.is_some() {
                errors.push(FieldError::new(
                    "email",
                    format!("An account for {} already exists", email.as_str()),
                ));
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
    }
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
    match (email, role) {
        (Some(email), Some(role)) if errors.is_empty() => Ok(Ok(Invitation {
            email,
            name,
            role,
            organisation_id,
            group_organisation_id,
            group_region,
            place,
        })),
        _ => Ok(Err(errors)),
    }
}

/// Create the account, its invitation link and the invitation email, in the caller's
/// transaction.
fn invite(
    conn: &mut DbConnection,
    templates: &Templates,
    base_url: &str,
    actor: &Actor,
    invitation: Invitation,
) -> Result<User, AppError> {
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
    let token = users::issue_link_token(conn, user.id, users::INVITATION)?;
    let link = format!(
        "{}/account/set-password?token={token}",
        base_url.trim_end_matches('/')
    );
    crate::mail::enqueue(
        conn,
        templates,
        crate::mail::OutgoingEmail {
            kind: "invitation",
            to: &user.email,
            template: "invitation",
            data: json!({
                "name": user.name,
                "link": link,
                "organisation": invitation.place,
                // "invited ... as contributor"
                "role_label": invitation.role.label().to_lowercase(),
                "expires_days": INVITATION_DAYS,
            }),
            dedupe_key: None,
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
    Ok(user)
}

/// Check and, if everything is in order, invite. Field problems come back as `Ok(Err(_))`
/// with nothing written.
async fn check_and_invite(
    state: &AppState,
    auth: &Authenticated,
    scope: Scope,
    form: InviteForm,
) -> Result<Result<User, Vec<FieldError>>, AppError> {
    let actor = auth.actor();
    let templates = state.templates.clone();
    let base_url = state.settings.base_url.clone();
    let email = form.email.trim().to_lowercase();
    let result = state
        .db
        .write(move |conn| match check_invitation(conn, scope, &form)? {
            Ok(invitation) => invite(conn, &templates, &base_url, &actor, invitation).map(Ok),
            Err(errors) => Ok(Err(errors)),
        })
        .await;
    if matches!(result, Ok(Ok(_))) {
        crate::mail::wake();
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
        Some("deactivated") => {
            json!({"kind": "success", "message": "The account was deactivated and signed out everywhere."})
        }
        _ => Value::Null,
    }
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
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
    let (people, total, names) = state
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
            Ok((people, total, names))
        })
        .await?;
    let rows: Vec<Value> = people
        .iter()
        .map(|u| person_row(u, &names, auth.user.id, ADMIN_BASE))
        .collect();
    let roles: Vec<Value> = Role::ALL
        .into_iter()
        .map(|r| json!({"value": r.as_str(), "label": r.label(), "selected": r.as_str() == query.role.trim()}))
        .collect();
    let body = page::render_html(
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
    )?;
    Ok(html(StatusCode::OK, body))
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
    let body = page::render_html(
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
    )?;
    Ok(html(status, body))
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
    let form = form.into_inner();
    match check_and_invite(&state, &auth, Scope::Everyone, form.clone()).await? {
        Ok(_) => Ok(see_other(format!("{ADMIN_BASE}?done=invited"))),
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
            let people: Vec<User> = users_table::table
                .filter(users_table::organisation_id.eq(org))
                .order((users_table::active.desc(), users_table::name.asc()))
                .select(User::as_select())
                .load(conn)?;
            let names = organisation_names(conn, &people)?;
            Ok((organisation, people, names))
        })
        .await?;
    let rows: Vec<Value> = people
        .iter()
        .map(|u| person_row(u, &names, auth.user.id, ORG_BASE))
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
    let body = page::render_html(
        state,
        Some(&auth.page_user()),
        "organisation/users",
        "People in your organisation",
        json!({
            "organisation_name": organisation.1,
            "organisation_code": organisation.0,
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
    )?;
    Ok(html(status, body))
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
    let org = match own_organisation(&auth)? {
        Ok(org) => org,
        Err(_) => return Err(AppError::Forbidden),
    };
    auth.check_csrf(&form.csrf_token)?;
    let form = form.into_inner();
    match check_and_invite(&state, &auth, Scope::Organisation(org), form.clone()).await? {
        Ok(_) => Ok(see_other(format!("{ORG_BASE}?done=invited"))),
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
    let org = match own_organisation(&auth)? {
        Ok(org) => org,
        Err(_) => return Err(AppError::Forbidden),
    };
    auth.check_csrf(&form.csrf_token)?;
    let (actor, target) = (auth.actor(), path.into_inner());
    state
        .db
        .write(move |conn| deactivate(conn, &actor, Scope::Organisation(org), target))
        .await?;
    Ok(see_other(format!("{ORG_BASE}?done=deactivated")))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(ADMIN_BASE, web::get().to(admin_list))
        .route("/admin/users/invite", web::get().to(admin_invite_form))
        .route("/admin/users/invite", web::post().to(admin_invite))
        .route(
            "/admin/users/{id}/deactivate",
            web::post().to(admin_deactivate),
        )
        .route(ORG_BASE, web::get().to(organisation_list))
        .route(
            "/organisation/users/invite",
            web::post().to(organisation_invite),
        )
        .route(
            "/organisation/users/{id}/deactivate",
            web::post().to(organisation_deactivate),
        );
}
