//! Notes on questions (issue 22), with the notes page's rules
//! ([`crate::web::note_pages`]): reading needs what reading the assessment needs (the
//! organisation's people see every note, auditors only those shared with a submitted
//! assessment), adding `Answer`, sharing `Approve`, editing and deleting `Answer` and being
//! the note's author. Every change names the note's `revision`; a
//! change against a note someone else has since changed is answered 409 and changes nothing.
//! Notes are never part of answers, scores or exports.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::assessments::load_for;
use super::extract::{utc, ApiJson};
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::notes::{self, Reach};
use crate::web::auth::ApiUser;
use crate::web::AppState;

/// A note on a question.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionNote {
    pub id: i64,
    pub question_key: String,
    /// Who wrote it (null once their account is gone).
    pub author: Option<String>,
    pub body: String,
    /// Shared with the submission: auditors see it.
    pub shared: bool,
    /// Send this back when sharing, editing or deleting the note.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    /// When its author last changed it.
    pub edited_at: Option<DateTime<Utc>>,
}

fn dto(n: notes::Note) -> QuestionNote {
    QuestionNote {
        id: n.id,
        question_key: n.question_key,
        author: n.author,
        body: n.body,
        shared: n.shared,
        revision: n.revision,
        created_at: utc(n.created_at),
        edited_at: n.edited_at.map(utc),
    }
}

/// The notes on one question, oldest first.
#[utoipa::path(operation_id = "notes_list", get, path = "/api/v1/assessments/{id}/questions/{key}/notes", tag = "notes",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The question's key", example = "wl-strategy")),
    responses((status = 200, description = "The notes the token's owner may read", body = Vec<QuestionNote>)))]
pub async fn list(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String)>,
) -> Result<web::Json<Vec<QuestionNote>>, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::ReadOrganisation).await?;
    if loaded.questionnaire().question(&key).is_none() {
        return Err(AppError::NotFound);
    }
    let reach = if api.may(Action::ReadInProgress(loaded.row.organisation_id)) {
        Reach::All
    } else {
        Reach::SharedOnly
    };
    let list = state
        .db
        .read(move |conn| notes::list(conn, id, Some(&key), reach))
        .await?;
    Ok(web::Json(list.into_iter().map(dto).collect()))
}

/// A new note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// The note (at most 4000 characters).
    pub body: String,
}

/// Add a note to a question (the organisation's people, while the assessment is open).
#[utoipa::path(operation_id = "notes_add", post, path = "/api/v1/assessments/{id}/questions/{key}/notes", tag = "notes",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The question's key", example = "wl-strategy")),
    request_body = NewNote,
    responses((status = 201, description = "The note", body = QuestionNote)))]
pub async fn add(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String)>,
    body: ApiJson<NewNote>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Answer).await?;
    let (actor, author) = (api.actor(), api.user.id);
    let note = state
        .db
        .write(move |conn| notes::add(conn, &actor, author, &loaded, &key, &body.0.body))
        .await?;
    Ok(HttpResponse::Created().json(dto(note)))
}

/// Whether a note is shared with the submission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    pub shared: bool,
    /// The note's `revision` as you last read it.
    pub revision: i64,
}

/// Share a note with the submission, or stop sharing it (approvers, while open).
#[utoipa::path(operation_id = "notes_share", post, path = "/api/v1/assessments/{id}/notes/{note}/share", tag = "notes",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("note" = i64, Path, description = "The note's id", example = 5)),
    request_body = ShareRequest,
    responses((status = 200, description = "The note", body = QuestionNote)))]
pub async fn share(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
    body: ApiJson<ShareRequest>,
) -> Result<web::Json<QuestionNote>, AppError> {
    let (id, note_id) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Approve).await?;
    let actor = api.actor();
    let body = body.0;
    let note = state
        .db
        .write(move |conn| {
            notes::set_shared(conn, &actor, &loaded, note_id, body.shared, body.revision)
        })
        .await?;
    Ok(web::Json(dto(note)))
}

/// A note's new text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteEdit {
    /// The note (at most 4000 characters).
    pub body: String,
    /// The note's `revision` as you last read it.
    pub revision: i64,
}

/// Change a note's text (its author, while the assessment is open). A note changed since you
/// read it is 409; someone else's note is 403.
#[utoipa::path(operation_id = "notes_edit", patch, path = "/api/v1/assessments/{id}/notes/{note}", tag = "notes",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("note" = i64, Path, description = "The note's id", example = 5)),
    request_body = NoteEdit,
    responses((status = 200, description = "The note", body = QuestionNote)))]
pub async fn edit(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
    body: ApiJson<NoteEdit>,
) -> Result<web::Json<QuestionNote>, AppError> {
    let (id, note_id) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Answer).await?;
    let (actor, who, body) = (api.actor(), api.user.id, body.0);
    let note = state
        .db
        .write(move |conn| {
            notes::edit(
                conn,
                &actor,
                who,
                &loaded,
                note_id,
                &body.body,
                body.revision,
            )
        })
        .await?;
    Ok(web::Json(dto(note)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevisionParam {
    /// The note's `revision` as you last read it.
    pub revision: i64,
}

/// Delete a note (its author, while the assessment is open). A note changed since you read it
/// is 409; someone else's note is 403.
#[utoipa::path(operation_id = "notes_delete", delete, path = "/api/v1/assessments/{id}/notes/{note}", tag = "notes",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("note" = i64, Path, description = "The note's id", example = 5),
           RevisionParam),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
    query: web::Query<RevisionParam>,
) -> Result<HttpResponse, AppError> {
    let (id, note_id) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::Answer).await?;
    let (actor, who, revision) = (api.actor(), api.user.id, query.revision);
    state
        .db
        .write(move |conn| notes::delete(conn, &actor, who, &loaded, note_id, revision))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
