//! The notes page of a question (issue 22): the thread of notes the organisation's people
//! write about one question, a form to add one, and the approver's choice to share a note with
//! the submission. Plain forms, so it works without JavaScript.
//!
//! Authorisation: reading needs what reading the assessment needs; the organisation's people
//! see every note, an auditor (who reads only submitted assessments) only the shared ones.
//! Adding a note needs `Answer`, sharing one `Approve`; correcting or deleting one needs
//! `Answer` and being its author (the service checks that).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::assessments::Loaded;
use crate::services::auth::roles::Action;
use crate::services::notes::{self, Note, Reach};
use crate::web::assessment_pages::{base, crumbs, header_data, load_for, merge};
use crate::web::auth::Authenticated;
use crate::web::section_pages::refusal_status;
use crate::web::{page, AppState};

fn notes_href(id: i64, key: &str) -> String {
    format!("{}/questions/{key}/notes", base(id))
}

/// Which notes this person may read on this assessment.
pub fn reach_of(auth: &Authenticated, loaded: &Loaded) -> Reach {
    if auth.may(Action::ReadInProgress(loaded.row.organisation_id)) {
        Reach::All
    } else {
        Reach::SharedOnly
    }
}

/// A note for a template: `mine` when the reader wrote it (and may correct or remove it while
/// the assessment is open), `editing` with the text to show in its edit form.
fn note_view(n: &Note, reader: i64, open: bool, editing: Option<&Editing>) -> Value {
    let edit = editing.filter(|e| e.note_id == n.id);
    json!({
        "id": n.id, "author": n.author.clone().unwrap_or_else(|| "A former member".into()),
        "body": n.body, "shared": n.shared, "revision": n.revision,
        "at": n.created_at.format("%-d %b %Y %H:%M").to_string(),
        "edited": n.edited_at.map(|t| t.format("%-d %b %Y %H:%M").to_string()),
        "mine": open && n.author_id == Some(reader),
        "editing": edit.is_some(),
        "edit_text": edit.map_or(n.body.as_str(), |e| e.text.as_str()),
        "edit_error": edit.and_then(|e| e.error.clone()),
    })
}

/// A note whose edit form is open, with the text to show and why it was refused.
struct Editing {
    note_id: i64,
    text: String,
    error: Option<String>,
}

#[derive(Default)]
struct Refusal {
    errors: Vec<FieldError>,
    conflict: Option<String>,
    note: String,
    editing: Option<Editing>,
}

async fn notes_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    key: &str,
    refusal: &Refusal,
    flash: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let question = loaded
        .questionnaire()
        .question(key)
        .ok_or(AppError::NotFound)?
        .text
        .clone();
    let domain = loaded
        .questionnaire()
        .domain_of(key)
        .map(|d| d.key.clone())
        .unwrap_or_default();
    let reach = reach_of(auth, loaded);
    let (id, k) = (loaded.row.id, key.to_string());
    let list = state
        .db
        .read(move |conn| notes::list(conn, id, Some(&k), reach))
        .await?;
    let org = loaded.row.organisation_id;
    let open = loaded.is_open_for_answers();
    let mut summary: Vec<Value> = refusal
        .errors
        .iter()
        .map(|e| json!({"href": format!("#{}", e.path), "message": e.message}))
        .collect();
    if let Some(c) = &refusal.conflict {
        summary.push(json!({"href": "#notes", "message": c}));
    }
    let data = merge(
        header_data(loaded),
        json!({
            "question": question,
            "question_href": format!("{}/domains/{domain}#q-{key}-group", base(id)),
            "notes": list.iter().map(|n| note_view(n, auth.user.id, open, refusal.editing.as_ref())).collect::<Vec<_>>(),
            "action": notes_href(id, key),
            "auditor_view": reach == Reach::SharedOnly,
            "can_add": open && auth.may(Action::Answer(org)),
            "can_share": open && auth.may(Action::Approve(org)),
            "note": refusal.note,
            "note_error": refusal.errors.iter().find(|e| e.path == "note").map(|e| e.message.clone()),
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
        "assessment/notes",
        "Notes",
        data,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    query: web::Query<NotesQuery>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let flash = match query.done.as_deref() {
        Some("added") => Some("Your note has been added."),
        Some("edited") => Some("Your note has been changed."),
        Some("deleted") => Some("Your note has been deleted."),
        Some("shared") => Some("The note will be shared with the submission."),
        Some("unshared") => Some("The note will not be shared."),
        _ => None,
    };
    // `?edit=ID` opens that note's edit form (a link, so it works without JavaScript).
    let editing = query
        .edit
        .as_deref()
        .and_then(|e| e.trim().parse::<i64>().ok())
        .map(|note_id| Editing {
            note_id,
            text: String::new(),
            error: None,
        });
    let mut refusal = Refusal {
        editing,
        ..Refusal::default()
    };
    if let Some(e) = refusal.editing.as_mut() {
        let (id2, note_id, question) = (id, e.note_id, key.clone());
        // The question's notes only (the page lists them), not the whole assessment's.
        let found = state
            .db
            .read(move |conn| notes::list(conn, id2, Some(&question), Reach::All))
            .await?
            .into_iter()
            .find(|n| n.id == note_id);
        match found {
            Some(n) if n.author_id == Some(auth.user.id) => e.text = n.body,
            _ => refusal.editing = None,
        }
    }
    notes_page(&state, &auth, &loaded, &key, &refusal, flash).await
}

#[derive(Deserialize)]
pub struct NotesQuery {
    done: Option<String>,
    /// A note's id; anything else opens no edit form (a link that was cut short, say).
    edit: Option<String>,
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    note: String,
}

pub async fn add(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    form: web::Form<NoteForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let (actor, author, k, body, shared) = (
        auth.actor(),
        auth.user.id,
        key.clone(),
        form.note.clone(),
        loaded.clone(),
    );
    match state
        .db
        .write(move |conn| notes::add(conn, &actor, author, &shared, &k, &body))
        .await
    {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("{}?done=added", notes_href(id, &key)),
            ))
            .finish()),
        Err(AppError::Validation(errors)) => {
            let refusal = Refusal {
                errors,
                note: form.note.clone(),
                ..Refusal::default()
            };
            notes_page(&state, &auth, &loaded, &key, &refusal, None).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct ShareForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    shared: String,
    #[serde(default)]
    revision: String,
}

pub async fn share(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<ShareForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, note_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Approve).await?;
    let shared = match form.shared.as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            return Err(AppError::BadRequest(
                "Say whether to share the note: yes or no.".into(),
            ))
        }
    };
    let revision = parse_revision(&form.revision)?;
    let key = question_of(&state, id, note_id).await?;
    let (actor, target) = (auth.actor(), loaded.clone());
    match state
        .db
        .write(move |conn| notes::set_shared(conn, &actor, &target, note_id, shared, revision))
        .await
    {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!(
                    "{}?done={}",
                    notes_href(id, &key),
                    if shared { "shared" } else { "unshared" }
                ),
            ))
            .finish()),
        Err(AppError::Conflict(message)) => {
            let refusal = Refusal {
                conflict: Some(message),
                ..Refusal::default()
            };
            notes_page(&state, &auth, &loaded, &key, &refusal, None).await
        }
        Err(e) => Err(e),
    }
}

/// The question a note of the assessment is on (404 when there is no such note).
async fn question_of(state: &AppState, id: i64, note_id: i64) -> Result<String, AppError> {
    state
        .db
        .read(move |conn| notes::list(conn, id, None, Reach::All))
        .await?
        .into_iter()
        .find(|n| n.id == note_id)
        .map(|n| n.question_key)
        .ok_or(AppError::NotFound)
}

fn parse_revision(text: &str) -> Result<i64, AppError> {
    text.trim().parse().map_err(|_| {
        AppError::BadRequest(
            "The form did not say which version of the note it showed. Reload the page and try again.".into(),
        )
    })
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    revision: String,
}

pub async fn edit(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<EditForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, note_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let revision = parse_revision(&form.revision)?;
    let key = question_of(&state, id, note_id).await?;
    let (actor, who, target, body) = (
        auth.actor(),
        auth.user.id,
        loaded.clone(),
        form.note.clone(),
    );
    let outcome = state
        .db
        .write(move |conn| notes::edit(conn, &actor, who, &target, note_id, &body, revision))
        .await;
    after_change(
        &state,
        &auth,
        &loaded,
        &key,
        note_id,
        &form.note,
        outcome.map(|_| "edited"),
    )
    .await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    revision: String,
}

pub async fn delete(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, note_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let revision = parse_revision(&form.revision)?;
    let key = question_of(&state, id, note_id).await?;
    let (actor, who, target) = (auth.actor(), auth.user.id, loaded.clone());
    let outcome = state
        .db
        .write(move |conn| notes::delete(conn, &actor, who, &target, note_id, revision))
        .await;
    after_change(
        &state,
        &auth,
        &loaded,
        &key,
        note_id,
        "",
        outcome.map(|_| "deleted"),
    )
    .await
}

/// Back to the thread after an edit or a removal; a refusal shows the thread with the note's
/// edit form (and the person's text) or the conflict.
async fn after_change(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    key: &str,
    note_id: i64,
    text: &str,
    outcome: Result<&str, AppError>,
) -> Result<HttpResponse, AppError> {
    match outcome {
        Ok(done) => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("{}?done={done}", notes_href(loaded.row.id, key)),
            ))
            .finish()),
        Err(AppError::Validation(errors)) => {
            let refusal = Refusal {
                editing: Some(Editing {
                    note_id,
                    text: text.to_string(),
                    error: errors.first().map(|e| e.message.clone()),
                }),
                errors: errors
                    .into_iter()
                    .map(|e| FieldError::new(format!("note-{note_id}-text"), e.message))
                    .collect(),
                ..Refusal::default()
            };
            notes_page(state, auth, loaded, key, &refusal, None).await
        }
        Err(AppError::Conflict(message)) => {
            // An edit refused as stale keeps what the person typed in the note's form.
            let refusal = Refusal {
                conflict: Some(message),
                editing: (!text.is_empty()).then(|| Editing {
                    note_id,
                    text: text.to_string(),
                    error: None,
                }),
                ..Refusal::default()
            };
            notes_page(state, auth, loaded, key, &refusal, None).await
        }
        Err(e) => Err(e),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assessments/{id}/questions/{key}/notes")
            .route("", web::get().to(show))
            .route("", web::post().to(add)),
    )
    .route(
        "/assessments/{id}/notes/{note}/share",
        web::post().to(share),
    )
    .route("/assessments/{id}/notes/{note}/edit", web::post().to(edit))
    .route(
        "/assessments/{id}/notes/{note}/delete",
        web::post().to(delete),
    );
}
