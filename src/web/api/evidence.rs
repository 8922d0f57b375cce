//! Evidence per answer (issue 23), with the pages' rules ([`crate::web::evidence_pages`]):
//! listing and downloading need what reading the assessment needs (`ReadEvidence`, and
//! before submission `ReadInProgress`), adding and removing `ChangeEvidence` while it is open.
//! A file is sent as `multipart/form-data` (`title`, `file`), streamed to a temporary file,
//! typed by its content and stored with its evidence row in one transaction; a link is JSON
//! (`title`, `url`). Refusals are problem documents: 413 too large, 415 a type not accepted,
//! 422 empty, untitled, too many or past the assessment's total, 409 submitted.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::assessments::load_for;
use super::extract::{parse_json, read_body, utc, JSON_LIMIT};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::evidence::files::Stager;
use crate::services::evidence::{self, store, Item, Kind};
use crate::web::auth::ApiUser;
use crate::web::{evidence_pages, upload, AppState};

/// An item of evidence on an answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceItem {
    pub id: i64,
    pub question_key: String,
    /// `file` or `link`.
    pub kind: String,
    pub title: String,
    /// A file's stored (safe) name.
    pub file_name: Option<String>,
    /// A file's type, as checked from its content.
    pub content_type: Option<String>,
    /// A file's size in bytes.
    pub size: Option<i64>,
    /// A link's address.
    pub url: Option<String>,
    /// Where to download a file (this API).
    pub download: Option<String>,
    /// The item of last year's answer this one was kept from, when the answer was confirmed.
    pub carried_from: Option<i64>,
    /// Who added it (null once their account is gone).
    pub added_by: Option<String>,
    pub added_at: DateTime<Utc>,
}

fn dto(assessment_id: i64, i: Item) -> EvidenceItem {
    EvidenceItem {
        download: (i.kind == Kind::File).then(|| {
            format!(
                "/api/v1/assessments/{assessment_id}/evidence/{}/download",
                i.id
            )
        }),
        id: i.id,
        question_key: i.question_key,
        kind: if i.kind == Kind::Link { "link" } else { "file" }.into(),
        title: i.title,
        file_name: i.file_name,
        content_type: i.content_type,
        size: i.size,
        url: i.url,
        carried_from: i.carried_from,
        added_by: i.added_by,
        added_at: utc(i.added_at),
    }
}

/// The evidence of one answer, in the order it was added.
#[utoipa::path(operation_id = "evidence_list", get, path = "/api/v1/assessments/{id}/questions/{key}/evidence", tag = "evidence",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The question's key", example = "wl-strategy")),
    responses((status = 200, description = "The answer's evidence", body = Vec<EvidenceItem>)))]
pub async fn list(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String)>,
) -> Result<web::Json<Vec<EvidenceItem>>, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::ReadEvidence).await?;
    if loaded.questionnaire().question(&key).is_none() {
        return Err(AppError::NotFound);
    }
    let items = state
        .db
        .read(move |conn| evidence::list(conn, id, Some(&key)))
        .await?;
    Ok(web::Json(items.into_iter().map(|i| dto(id, i)).collect()))
}

/// A file, sent as `multipart/form-data`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct NewEvidenceFile {
    /// What the file is (at most 200 characters).
    pub title: String,
    /// The file: PDF, Word, Excel, PowerPoint, OpenDocument text or spreadsheet, PNG, JPEG,
    /// GIF or WebP, typed by its content; at most `DMA_EVIDENCE_MAX_FILE_BYTES`.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// A link, sent as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvidenceLink {
    /// What the link leads to (at most 200 characters).
    pub title: String,
    /// An http or https address.
    pub url: String,
}

/// Add evidence to an answer: a file (`multipart/form-data` with `title` and `file`) or a link
/// (JSON). The organisation's people, while the assessment is open.
#[utoipa::path(operation_id = "evidence_add", post, path = "/api/v1/assessments/{id}/questions/{key}/evidence", tag = "evidence",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("key" = String, Path, description = "The question's key", example = "wl-strategy")),
    request_body(content((NewEvidenceFile = "multipart/form-data"), (NewEvidenceLink = "application/json"))),
    responses((status = 201, description = "The evidence", body = EvidenceItem)))]
pub async fn add(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, String)>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::ChangeEvidence).await?;
    if loaded.questionnaire().question(&key).is_none() {
        return Err(AppError::NotFound);
    }
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let actor = api.actor();
    let item = if media.starts_with("application/json") {
        let bytes = read_body(&req, &mut payload, JSON_LIMIT).await?;
        let link: NewEvidenceLink = parse_json(&bytes)?;
        state
            .db
            .write(move |conn| {
                evidence::add_link(conn, &actor, &loaded, &key, &link.title, &link.url)
            })
            .await?
    } else if media.starts_with("multipart/form-data") {
        let limit = state.settings.evidence.max_file_bytes;
        let mut stager = Stager::new(limit)?;
        let form = upload::read_streamed(
            Multipart::new(req.headers(), payload),
            &["title"],
            "file",
            &mut |bytes| stager.write(bytes),
        )
        .await?;
        let Some(file_name) = form.file_name else {
            return Err(AppError::Validation(vec![FieldError::new(
                "file",
                "send the file as a part named file",
            )]));
        };
        let title = upload::text(&form.fields, "title");
        let staged = stager.finish(&file_name)?;
        let limits = state.settings.evidence;
        state
            .db
            .write(move |conn| {
                evidence::add_file(
                    conn,
                    store::default_store(),
                    &limits,
                    &actor,
                    &loaded,
                    &key,
                    &title,
                    &staged,
                )
            })
            .await?
    } else {
        return Err(AppError::UnsupportedMediaType(
            "Send a file as multipart/form-data (title, file) or a link as application/json (title, url).".into(),
        ));
    };
    Ok(HttpResponse::Created().json(dto(id, item)))
}

/// Download a file (whoever may read the assessment). An attachment with the type checked at
/// upload, `nosniff` and a sandboxing CSP.
#[utoipa::path(operation_id = "evidence_download", get, path = "/api/v1/assessments/{id}/evidence/{evidence}/download", tag = "evidence",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("evidence" = i64, Path, description = "The item's id", example = 3)),
    responses((status = 200, description = "The file's bytes, streamed",
        content((String = "application/pdf"), (String = "image/png"), (String = "image/jpeg"),
            (String = "image/gif"), (String = "image/webp"),
            (String = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
            (String = "application/vnd.oasis.opendocument.text"),
            (String = "application/vnd.oasis.opendocument.spreadsheet"),
            (String = "application/msword"), (String = "application/vnd.ms-excel")))))]
pub async fn download(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, item) = path.into_inner();
    load_for(&state, &api, id, Action::ReadEvidence).await?;
    let found = state
        .db
        .read(move |conn| evidence::download(conn, store::default_store(), id, item))
        .await?;
    Ok(evidence_pages::stream_download(&state, found))
}

/// Remove an item (the organisation's people, while the assessment is open).
#[utoipa::path(operation_id = "evidence_remove", delete, path = "/api/v1/assessments/{id}/evidence/{evidence}", tag = "evidence",
    params(("id" = i64, Path, description = "The assessment's id", example = 1),
           ("evidence" = i64, Path, description = "The item's id", example = 3)),
    responses((status = 204, description = "Removed")))]
pub async fn remove(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, item) = path.into_inner();
    let loaded = load_for(&state, &api, id, Action::ChangeEvidence).await?;
    let actor = api.actor();
    state
        .db
        .write(move |conn| evidence::remove(conn, store::default_store(), &actor, &loaded, item))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/assessments/{id}/questions/{key}/evidence",
        web::get().to(list),
    )
    .route(
        "/assessments/{id}/questions/{key}/evidence",
        web::post().to(add),
    )
    .route(
        "/assessments/{id}/evidence/{evidence}/download",
        web::get().to(download),
    )
    .route(
        "/assessments/{id}/evidence/{evidence}",
        web::delete().to(remove),
    );
}
