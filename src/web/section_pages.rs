//! The section page of an assessment (issue 22): who has the section, its hand-over status,
//! why it was returned, and the forms that change them. Everything is a plain form posted to
//! the server, so it works without JavaScript.
//!
//! Authorisation: reading needs what the assessment's other pages need (`ReadOrganisation`,
//! and `ReadInProgress` until submitted); giving and taking sections `Approve`; marking a
//! section ready for review `Answer` (and, in the service, being one of its assignees or an
//! approver); reviewing and returning `Approve`. A refused form draws the page again with the
//! reason: 422 for a field to correct, 409 when the section changed under the person.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::assessments::Loaded;
use crate::services::auth::roles::Action;
use crate::services::sections::{self, Section, Status, StatusChange};
use crate::web::assessment_pages::{base, crumbs, header_data, load_for, merge};
use crate::web::auth::Authenticated;
use crate::web::{page, AppState};

fn section_href(id: i64, key: &str) -> String {
    format!("{}/sections/{key}", base(id))
}

/// A date as people read it.
pub fn day(d: chrono::NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// A section for a template: its status as a tag, who has it, when each is due.
pub fn section_view(id: i64, s: &Section) -> Value {
    json!({
        "key": s.key, "title": s.title,
        "href": section_href(id, &s.key),
        "domain_href": format!("{}/domains/{}", base(id), s.key),
        "status": s.status.as_str(),
        "status_label": s.status.label(), "status_colour": s.status.colour(),
        "revision": s.revision,
        "message": s.message,
        "changed_by": s.changed_by,
        "changed_at": s.changed_at.map(|t| t.format("%-d %b %Y %H:%M").to_string()),
        "answered": s.answered, "visible": s.visible,
        "returned": s.status == Status::Returned,
        "lapsed": s.lapsed.map(|st| st.label().to_lowercase()),
        "assignees": s.assignees.iter().map(|a| json!({
            "user_id": a.user_id, "name": a.name, "email": a.email,
            "due_on": a.due_on.map(day),
        })).collect::<Vec<_>>(),
        "assignee_names": s.assignees.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", "),
    })
}

/// What was typed into a refused form, and why it was refused.
#[derive(Default)]
struct Refusal {
    errors: Vec<FieldError>,
    conflict: Option<String>,
    person: String,
    due_on: String,
    message: String,
}

async fn section_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    key: &str,
    refusal: &Refusal,
    flash: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let org = loaded.row.organisation_id;
    let key_owned = key.to_string();
    let loaded_id = loaded.row.id;
    let shared = loaded.clone();
    let (section, people) = state
        .db
        .read(move |conn| {
            Ok((
                sections::section(conn, &shared, &key_owned)?,
                sections::people(conn, org)?,
            ))
        })
        .await?;
    let approver = auth.may(Action::Approve(org)) && loaded.is_open_for_answers();
    let open = loaded.is_open_for_answers();
    let mine = section.is_assigned_to(auth.user.id);
    let can_hand_over = open
        && auth.may(Action::Answer(org))
        && (mine || auth.may(Action::Approve(org)))
        && matches!(
            section.status,
            Status::NotStarted | Status::InProgress | Status::Returned
        );
    let can_review = approver && section.status == Status::ReadyForReview;
    let can_return =
        approver && matches!(section.status, Status::ReadyForReview | Status::Reviewed);
    let holders: Vec<i64> = section.assignees.iter().map(|a| a.user_id).collect();
    let choices: Vec<Value> = people
        .iter()
        .filter(|p| !holders.contains(&p.id))
        .map(|p| json!({"id": p.id, "label": format!("{} ({})", p.name, p.email), "selected": refusal.person == p.id.to_string()}))
        .collect();
    let error_for = |f: &str| {
        refusal
            .errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    let mut summary: Vec<Value> = refusal
        .errors
        .iter()
        .map(|e| json!({"href": format!("#{}", e.path.replace('_', "-")), "message": e.message}))
        .collect();
    if let Some(c) = &refusal.conflict {
        summary.push(json!({"href": "#status", "message": c}));
    }
    let data = merge(
        header_data(loaded),
        json!({
            "section": section_view(loaded_id, &section),
            "can_assign": approver,
            "choices": choices,
            "can_hand_over": can_hand_over,
            "can_review": can_review,
            "can_return": can_return,
            "mine": mine,
            "person_error": error_for("person"),
            "due_on_error": error_for("due_on"),
            "message_error": error_for("message"),
            "due_on": refusal.due_on,
            "message": refusal.message,
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "flash": flash.map(|m| json!({"kind": "success", "message": m})),
            "breadcrumbs": crumbs(loaded),
        }),
    );
    let status = refusal_status(refusal.conflict.is_some(), !refusal.errors.is_empty());
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "assessment/section",
        &section.title,
        data,
    )
}

/// A page drawn again after a refused form: 409 when the record changed under the person,
/// 422 for fields to correct, else 200 (shared with the notes page).
pub fn refusal_status(conflict: bool, field_errors: bool) -> StatusCode {
    if conflict {
        StatusCode::CONFLICT
    } else if field_errors {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

/// `?done=...`: what a form just did, for the page it returns to to confirm.
#[derive(Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let flash = match query.done.as_deref() {
        Some("assigned") => Some("The section has been given to them. They are told by email, at once or in their daily email if they chose one."),
        Some("unassigned") => Some("They no longer have this section."),
        Some("ready_for_review") => Some("The section is ready for review."),
        Some("reviewed") => Some("The section is marked as reviewed."),
        Some("returned") => Some("The section has been returned. Its people are told by email, at once or in their daily email if they chose one."),
        _ => None,
    };
    section_page(&state, &auth, &loaded, &key, &Refusal::default(), flash).await
}

/// The outcome of a form: back to the section page (303), or the page again with why not.
async fn after(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    key: &str,
    outcome: Result<(), AppError>,
    done: &str,
    mut refusal: Refusal,
) -> Result<HttpResponse, AppError> {
    match outcome {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("{}?done={done}", section_href(id, key)),
            ))
            .finish()),
        Err(AppError::Validation(errors)) => {
            refusal.errors = errors;
            let loaded = load_for(state, auth, id, Action::ReadOrganisation).await?;
            section_page(state, auth, &loaded, key, &refusal, None).await
        }
        Err(AppError::Conflict(message)) => {
            refusal.conflict = Some(message);
            let loaded = load_for(state, auth, id, Action::ReadOrganisation).await?;
            section_page(state, auth, &loaded, key, &refusal, None).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    due_on: String,
}

/// `YYYY-MM-DD`, or nothing; anything else is a field error.
pub fn parse_due(text: &str) -> Result<Option<chrono::NaiveDate>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            AppError::Validation(vec![FieldError::new(
                "due_on",
                "Enter a real date, like 2027-02-14, or leave it empty",
            )])
        })
}

pub async fn assign(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    form: web::Form<AssignForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Approve).await?;
    let refusal = Refusal {
        person: form.person.clone(),
        due_on: form.due_on.clone(),
        ..Refusal::default()
    };
    let outcome = async {
        let user_id: i64 = form.person.trim().parse().map_err(|_| {
            AppError::Validation(vec![FieldError::new(
                "person",
                "Choose a person from your organisation",
            )])
        })?;
        let due_on = parse_due(&form.due_on)?;
        let (actor, notifier, k) = (auth.actor(), state.notifier(), key.clone());
        state
            .db
            .write(move |conn| {
                sections::assign(conn, &actor, &notifier, &loaded, &k, user_id, due_on)
            })
            .await?;
        crate::services::mail::wake();
        Ok(())
    }
    .await;
    after(&state, &auth, id, &key, outcome, "assigned", refusal).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn unassign(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, key, user_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Approve).await?;
    let (actor, k) = (auth.actor(), key.clone());
    let outcome = state
        .db
        .write(move |conn| sections::unassign(conn, &actor, &loaded, &k, user_id))
        .await;
    after(
        &state,
        &auth,
        id,
        &key,
        outcome,
        "unassigned",
        Refusal::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    revision: String,
    #[serde(default)]
    message: String,
}

/// Parse a status form's target and revision (a missing or unreadable one is a 400: the
/// page always sends both).
pub fn parse_change(status: &str, revision: &str, message: &str) -> Result<StatusChange, AppError> {
    let to = Status::parse(status.trim()).ok_or_else(|| {
        AppError::BadRequest("Say which status: ready_for_review, reviewed or returned.".into())
    })?;
    let seen_revision = revision.trim().parse::<i64>().map_err(|_| {
        AppError::BadRequest(
            "The form did not say which version of the section's status it showed. Reload the page and try again.".into(),
        )
    })?;
    Ok(StatusChange {
        to,
        seen_revision,
        message: message.to_string(),
    })
}

pub async fn change_status(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    form: web::Form<StatusForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let change = parse_change(&form.status, &form.revision, &form.message)?;
    let done = change.to.as_str();
    let (actor, notifier, who, k) = (
        auth.actor(),
        state.notifier(),
        auth.user.clone(),
        key.clone(),
    );
    let outcome = state
        .db
        .write(move |conn| {
            sections::change_status(conn, &actor, &notifier, &who, &loaded, &k, &change).map(|_| ())
        })
        .await;
    if outcome.is_ok() {
        crate::services::mail::wake();
    }
    let refusal = Refusal {
        message: form.message.clone(),
        ..Refusal::default()
    };
    after(&state, &auth, id, &key, outcome, done, refusal).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assessments/{id}/sections/{key}")
            .route("", web::get().to(show))
            .route("/assignees", web::post().to(assign))
            .route("/assignees/{user}/remove", web::post().to(unassign))
            .route("/status", web::post().to(change_status)),
    );
}
