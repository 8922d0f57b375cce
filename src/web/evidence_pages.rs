//! Evidence on the pages (issue 23, docs/evidence.md): the "Evidence" part of each question on
//! a domain page (its items, remove buttons and the forms to add a file or a link), a page per
//! question where a refused upload is explained, the evidence beside each answer on "Check
//! your answers" and the sign-off page, and the download.
//!
//! The add and remove forms are plain HTML forms, so they work without JavaScript. On a domain
//! page the questions sit inside the answers form, and forms cannot nest, so each evidence form
//! is an empty `<form id=...>` after the answers form and its fields, drawn beside their
//! question, name it with the `form` attribute.
//!
//! Authorisation: adding and removing need `ChangeEvidence` (who may change the answers),
//! checked before the upload is read; downloading needs `ReadEvidence` and, before
//! submission, `ReadInProgress` (auditors see evidence of submitted assessments). A download
//! is an attachment with the checked type, a safe file name, `nosniff` and a sandboxing CSP,
//! streamed from the store a chunk at a time.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use actix_web::http::header::{
    self, Charset, ContentDisposition, ContentEncoding, DispositionParam, DispositionType,
    ExtendedValue,
};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::FieldError;
use crate::error::{human_bytes, AppError};
use crate::services::assessments::Loaded;
use crate::services::auth::roles::Action;
use crate::services::evidence::files::{self, Stager};
use crate::services::evidence::{self, store, Item, Kind};
use crate::web::assessment_pages::{base, crumbs, header_data, load_for, merge};
use crate::web::auth::Authenticated;
use crate::web::section_pages::DoneQuery;
use crate::web::{page, upload, AppState};

fn page_href(id: i64, key: &str) -> String {
    format!("{}/questions/{key}/evidence", base(id))
}

fn download_href(id: i64, item: i64) -> String {
    format!("{}/evidence/{item}/download", base(id))
}

/// A size in words: "2.4 MB", "830 KB".
fn size_words(size: Option<i64>) -> String {
    let n = size.unwrap_or(0).max(0) as f64;
    if n >= 1024.0 * 1024.0 {
        format!("{:.1} MB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.0} KB", n / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// An item for a template.
pub fn item_view(assessment_id: i64, item: &Item) -> Value {
    json!({
        "id": item.id,
        "title": item.title,
        "is_link": item.kind == Kind::Link,
        "url": item.url,
        "file_name": item.file_name,
        "type_label": item.type_label(),
        "size_label": size_words(item.size),
        "download_href": download_href(assessment_id, item.id),
        "remove_href": format!("{}/evidence/{}/remove", base(assessment_id), item.id),
        "carried": item.carried_from.is_some(),
        "added_by": item.added_by.clone().unwrap_or_else(|| "A former member".into()),
        "added_at": item.added_at.format("%-d %b %Y").to_string(),
    })
}

/// Last year's items are downloaded from last year's assessment.
fn last_year_view(item: &Item, previous: i64) -> Value {
    let mut v = item_view(previous, item);
    v["remove_href"] = Value::Null;
    v
}

/// What the forms need to say about the limits.
fn limits_view(state: &AppState) -> Value {
    json!({
        "max_file": human_bytes(state.settings.evidence.max_file_bytes),
        "accepted": files::accepted_labels(),
        "accept": files::accept_attribute(),
    })
}

/// The "Evidence" part of every question on a domain page, by question key.
pub async fn for_questions(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
) -> Result<BTreeMap<String, Value>, AppError> {
    let shared = loaded.clone();
    let (items, last_year) = state
        .db
        .read(move |conn| {
            let items = evidence::by_question(conn, shared.row.id)?;
            let last = evidence::last_year(conn, &shared)?;
            Ok((items, last))
        })
        .await?;
    let (previous, last_year) = last_year.unwrap_or_default();
    let id = loaded.row.id;
    let can_change = loaded.is_open_for_answers()
        && auth.may(Action::ChangeEvidence(loaded.row.organisation_id));
    let limits = limits_view(state);
    Ok(loaded
        .questionnaire()
        .questions()
        .map(|(_, q)| {
            let list: Vec<Value> = items
                .get(&q.key)
                .map(|v| v.iter().map(|i| item_view(id, i)).collect())
                .unwrap_or_default();
            let last: Vec<Value> = last_year
                .get(&q.key)
                .map(|v| v.iter().map(|i| last_year_view(i, previous)).collect())
                .unwrap_or_default();
            (
                q.key.clone(),
                json!({
                    "key": q.key,
                    "items": list,
                    "last_year": last,
                    "can_change": can_change,
                    "action": page_href(id, &q.key),
                    "page_href": page_href(id, &q.key),
                    "limits": limits,
                }),
            )
        })
        .collect())
}

/// Add each answer's evidence to "Check your answers" rows (`answer_sections`), so the
/// approver signs, and an auditor reads, the answers with what they rest on.
pub async fn annotate_sections(
    state: &AppState,
    loaded: &Loaded,
    sections: &mut [Value],
) -> Result<(), AppError> {
    let id = loaded.row.id;
    let items = state
        .db
        .read(move |conn| evidence::by_question(conn, id))
        .await?;
    for section in sections.iter_mut() {
        if let Some(rows) = section.get_mut("rows").and_then(Value::as_array_mut) {
            for row in rows.iter_mut() {
                let key = row["key"].as_str().unwrap_or_default().to_string();
                if let Some(list) = items.get(&key) {
                    row["evidence"] =
                        json!(list.iter().map(|i| item_view(id, i)).collect::<Vec<_>>());
                }
            }
        }
    }
    Ok(())
}

/// Why an add or remove was refused, as the page shows it.
struct Refusal {
    status: StatusCode,
    errors: Vec<FieldError>,
    kind: String,
    title: String,
    url: String,
}

impl Refusal {
    /// A refusal the page can explain (status and field errors), or the error itself.
    fn from_error(
        e: AppError,
        state: &AppState,
    ) -> Result<(StatusCode, Vec<FieldError>), AppError> {
        Ok(match e {
            AppError::Validation(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors),
            AppError::UnsupportedMediaType(m) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, vec![FieldError::new("file", m)])
            }
            AppError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                vec![FieldError::new(
                    "file",
                    format!(
                        "The file is larger than {}, the most one evidence file may be. Nothing was stored: choose a smaller file, or add a link to the document instead.",
                        human_bytes(state.settings.evidence.max_file_bytes)
                    ),
                )],
            ),
            AppError::Conflict(m) => (StatusCode::CONFLICT, vec![FieldError::new("evidence", m)]),
            other => return Err(other),
        })
    }
}

async fn evidence_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    key: &str,
    refusal: Option<&Refusal>,
    flash: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let q = loaded.questionnaire();
    let question = q.question(key).ok_or(AppError::NotFound)?.text.clone();
    let domain = q.domain_of(key).map(|d| d.key.clone()).unwrap_or_default();
    let views = for_questions(state, auth, loaded).await?;
    let view = views.get(key).cloned().unwrap_or(Value::Null);
    let errors = refusal.map(|r| r.errors.as_slice()).unwrap_or_default();
    let error_for = |f: &str| {
        errors
            .iter()
            .filter(|e| e.path == f)
            .map(|e| e.message.clone())
            .next()
    };
    let kind = refusal.map_or("file", |r| r.kind.as_str());
    let summary: Vec<Value> = errors
        .iter()
        .map(|e| {
            let anchor = match e.path.as_str() {
                "title" => format!("{kind}-title"),
                "file" => "file".into(),
                "url" => "url".into(),
                _ => "evidence".into(),
            };
            json!({"href": format!("#{anchor}"), "message": e.message})
        })
        .collect();
    let data = merge(
        header_data(loaded),
        json!({
            "question": question,
            "question_href": format!("{}/domains/{domain}#q-{key}-group", base(loaded.row.id)),
            "evidence": view,
            "kind": kind,
            // Not `title`: the layout's page title has that name.
            "entered_title": refusal.map(|r| r.title.clone()).unwrap_or_default(),
            "url": refusal.map(|r| r.url.clone()).unwrap_or_default(),
            "title_error": error_for("title"),
            "file_error": error_for("file"),
            "url_error": error_for("url"),
            "evidence_error": error_for("evidence"),
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "flash": flash.map(|m| json!({"kind": "success", "message": m})),
            "breadcrumbs": crumbs(loaded),
        }),
    );
    page::render_with_status(
        refusal.map_or(StatusCode::OK, |r| r.status),
        state,
        Some(&auth.page_user()),
        "assessment/evidence",
        "Evidence",
        data,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadEvidence).await?;
    let flash = match query.done.as_deref() {
        Some("added") => Some("The evidence has been added."),
        Some("removed") => Some("The evidence has been removed."),
        _ => None,
    };
    evidence_page(&state, &auth, &loaded, &key, None, flash).await
}

/// Where a successful form returns: the question on its domain page, or this page.
fn after(loaded: &Loaded, key: &str, back: &str, done: &str) -> HttpResponse {
    let id = loaded.row.id;
    let location = match loaded.questionnaire().domain_of(key) {
        Some(d) if back == "domain" => {
            format!("{}/domains/{}#q-{key}-evidence", base(id), d.key)
        }
        _ => format!("{}?done={done}", page_href(id, key)),
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Add a file or a link (multipart: `kind` = file or link, `title`, `file` or `url`). The
/// policy is checked before the body is read; the file is streamed to a temporary file, then
/// checked and stored in one transaction.
pub async fn add(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ChangeEvidence).await?;
    if loaded.questionnaire().question(&key).is_none() {
        return Err(AppError::NotFound);
    }
    let limit = state.settings.evidence.max_file_bytes;
    let mut stager = Stager::new(limit)?;
    let read = upload::read_streamed(
        payload,
        &["csrf_token", "kind", "title", "url", "return"],
        "file",
        &mut |bytes| stager.write(bytes),
    )
    .await;
    let form = match read {
        Ok(form) => form,
        Err(e) => {
            // Too large (or unreadable): nothing was stored; say why on the page.
            let (status, errors) = Refusal::from_error(e, &state)?;
            let refusal = Refusal {
                status,
                errors,
                kind: "file".into(),
                title: String::new(),
                url: String::new(),
            };
            return evidence_page(&state, &auth, &loaded, &key, Some(&refusal), None).await;
        }
    };
    auth.check_csrf(&upload::text(&form.fields, "csrf_token"))?;
    let kind = upload::text(&form.fields, "kind");
    let title = upload::text(&form.fields, "title");
    let url = upload::text(&form.fields, "url");
    let back = upload::text(&form.fields, "return");
    let actor = auth.actor();
    let target = loaded.clone();
    let k = key.clone();
    let outcome = if kind == "link" {
        let (t, u) = (title.clone(), url.clone());
        state
            .db
            .write(move |conn| evidence::add_link(conn, &actor, &target, &k, &t, &u))
            .await
    } else {
        let file_name = form.file_name.clone().unwrap_or_default();
        if stager.size() == 0 && file_name.is_empty() {
            let mut errors = vec![FieldError::new("file", "Choose a file to upload")];
            if title.trim().is_empty() {
                errors.insert(
                    0,
                    FieldError::new("title", "Enter a title for the evidence"),
                );
            }
            Err(AppError::Validation(errors))
        } else {
            match stager.finish(&file_name) {
                Ok(staged) => {
                    let (t, limits) = (title.clone(), state.settings.evidence);
                    state
                        .db
                        .write(move |conn| {
                            evidence::add_file(
                                conn,
                                store::default_store(),
                                &limits,
                                &actor,
                                &target,
                                &k,
                                &t,
                                &staged,
                            )
                        })
                        .await
                }
                Err(e) => Err(e),
            }
        }
    };
    match outcome {
        Ok(_) => Ok(after(&loaded, &key, &back, "added")),
        Err(e) => {
            let (status, errors) = Refusal::from_error(e, &state)?;
            let refusal = Refusal {
                status,
                errors,
                kind: if kind == "link" {
                    "link".into()
                } else {
                    "file".into()
                },
                title,
                url,
            };
            evidence_page(&state, &auth, &loaded, &key, Some(&refusal), None).await
        }
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default, rename = "return")]
    back: String,
}

pub async fn remove(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<RemoveForm>,
) -> Result<HttpResponse, AppError> {
    let (id, item) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ChangeEvidence).await?;
    auth.check_csrf(&form.csrf_token)?;
    let (actor, target) = (auth.actor(), loaded.clone());
    let outcome = state
        .db
        .write(move |conn| evidence::remove(conn, store::default_store(), &actor, &target, item))
        .await;
    match outcome {
        Ok(removed) => Ok(after(&loaded, &removed.question_key, &form.back, "removed")),
        Err(AppError::Conflict(m)) => {
            let key = state
                .db
                .read(move |conn| evidence::get(conn, id, item))
                .await?
                .question_key;
            let refusal = Refusal {
                status: StatusCode::CONFLICT,
                errors: vec![FieldError::new("evidence", m)],
                kind: "file".into(),
                title: String::new(),
                url: String::new(),
            };
            evidence_page(&state, &auth, &loaded, &key, Some(&refusal), None).await
        }
        Err(e) => Err(e),
    }
}

/// `Content-Disposition: attachment` with the stored (already safe) name, as plain ASCII and
/// as UTF-8 (RFC 6266), so no browser shows or runs the file in the site's origin.
pub fn attachment(name: &str) -> ContentDisposition {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(ascii),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: name.as_bytes().to_vec(),
            }),
        ],
    }
}

/// A stored file as a download: the checked type, an attachment with the safe name, no
/// sniffing, a sandboxing CSP (should a browser render it anyway, it runs nothing and
/// reaches nothing), no caching, streamed one chunk (one short database read) at a time.
pub fn stream_download(state: &AppState, download: evidence::Download) -> HttpResponse {
    let evidence::Download { item, blob } = download;
    let db = state.db.clone();
    let chunks = blob.chunks;
    let digest = blob.digest;
    let body = futures_util::stream::unfold(0i32, move |seq| {
        let (db, digest) = (db.clone(), digest.clone());
        async move {
            if seq >= chunks {
                return None;
            }
            let read = db
                .read(move |conn| evidence::chunk(conn, store::default_store(), &digest, seq))
                .await;
            Some(match read {
                Ok(bytes) => (Ok::<_, actix_web::Error>(Bytes::from(bytes)), seq + 1),
                Err(e) => {
                    tracing::error!(error = %e, "evidence download failed part way");
                    (Err(e.into()), chunks)
                }
            })
        }
    });
    let content_type = item
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(attachment(item.file_name.as_deref().unwrap_or("evidence")))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "sandbox; default-src 'none'"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        // Already compressed or not worth it; and the length stays known.
        .insert_header(ContentEncoding::Identity)
        .no_chunking(u64::try_from(blob.size).unwrap_or(0))
        .streaming(body)
}

pub async fn download(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, item) = path.into_inner();
    load_for(&state, &auth, id, Action::ReadEvidence).await?;
    let found = state
        .db
        .read(move |conn| evidence::download(conn, store::default_store(), id, item))
        .await?;
    Ok(stream_download(&state, found))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assessments/{id}/questions/{key}/evidence")
            .route("", web::get().to(show))
            .route("", web::post().to(add)),
    )
    .route(
        "/assessments/{id}/evidence/{evidence}/remove",
        web::post().to(remove),
    )
    .route(
        "/assessments/{id}/evidence/{evidence}/download",
        web::get().to(download),
    );
}
