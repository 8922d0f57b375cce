//! Administrators' pages for question sets: the list with upload, a version's page, the
//! respondent's-eye preview (which also scores the answers typed into it, so an author can
//! check the scoring as they write), publication with a confirmation step, deletion of drafts,
//! downloads and the comparison of two versions. Every route requires `Action::Administer`;
//! publication's immutability is enforced again in `questionnaires` and by the database.

use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{comparability, questionnaire, scoring, visibility, FieldError};
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::questionnaires::{self as store, ImportError, PUBLISHED};
use crate::web::auth::Authenticated;
use crate::web::questions;
use crate::web::{page, AppState};

const BASE: &str = "/admin/questionnaires";

fn breadcrumbs(extra: &[(&str, String)]) -> Value {
    let mut crumbs = vec![
        json!({"href": "/dashboard", "label": "Home"}),
        json!({"href": BASE, "label": "Question sets"}),
    ];
    crumbs.extend(
        extra
            .iter()
            .map(|(label, href)| json!({"href": href, "label": label})),
    );
    json!(crumbs)
}

fn version_path(key: &str, version: &str) -> String {
    format!("{BASE}/{key}/{version}")
}

fn flash(code: Option<&str>) -> Value {
    match code {
        Some("imported") => {
            json!({"kind": "success", "message": "The question set was checked and saved as a draft."})
        }
        Some("published") => {
            json!({"kind": "success", "message": "Published. This version can no longer be changed."})
        }
        Some("deleted") => json!({"kind": "success", "message": "The draft was deleted."}),
        _ => Value::Null,
    }
}

#[derive(Deserialize)]
pub struct FlashQuery {
    done: Option<String>,
}

async fn list_page(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    problems: &[FieldError],
    done: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let versions = state.db.read(store::list).await?;
    let rows: Vec<Value> = versions
        .iter()
        .map(|v| {
            json!({
                "key": v.key, "version": v.version, "title": v.title,
                "published": v.status == PUBLISHED,
                "href": version_path(&v.key, &v.version),
                "created": v.created_at.format("%-d %b %Y %H:%M").to_string(),
            })
        })
        .collect();
    let errors: Vec<Value> = problems
        .iter()
        .enumerate()
        .map(|(i, e)| json!({"href": format!("#problem-{i}"), "message": e.to_string(), "id": format!("problem-{i}"), "path": e.path, "text": e.message}))
        .collect();
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "admin/questionnaires",
        "Question sets",
        json!({
            "versions": rows,
            "errors": if errors.is_empty() { Value::Null } else { json!(errors) },
            "problems": errors,
            "flash": flash(done),
            "breadcrumbs": breadcrumbs(&[]),
            "max_upload": crate::error::human_bytes(state.settings.max_upload_bytes),
        }),
    )
}

pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<FlashQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    list_page(&state, &auth, StatusCode::OK, &[], query.done.as_deref()).await
}

/// The fields of the upload form.
struct Upload {
    csrf_token: String,
    file: Vec<u8>,
    publish: bool,
}

/// Read the form's parts, refusing any part larger than `limit`.
async fn read_upload(payload: Multipart, limit: usize) -> Result<Upload, AppError> {
    let mut parts =
        crate::web::upload::read_parts(payload, limit, &["csrf_token", "file", "publish"]).await?;
    Ok(Upload {
        csrf_token: crate::web::upload::text(&parts, "csrf_token"),
        publish: parts.get("publish").is_some_and(|d| !d.is_empty()),
        file: parts.remove("file").unwrap_or_default(),
    })
}

pub async fn upload(
    state: web::Data<AppState>,
    auth: Authenticated,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let limit = state
        .settings
        .max_upload_bytes
        .min(questionnaire::MAX_DEFINITION_BYTES);
    let upload = match read_upload(payload, limit).await {
        Ok(u) => u,
        Err(AppError::PayloadTooLarge(limit)) => {
            let problem = FieldError::new(
                "file",
                format!(
                    "the file is larger than {}; split it or remove embedded content",
                    crate::error::human_bytes(limit)
                ),
            );
            return list_page(
                &state,
                &auth,
                StatusCode::PAYLOAD_TOO_LARGE,
                &[problem],
                None,
            )
            .await;
        }
        Err(e) => return Err(e),
    };
    auth.check_csrf(&upload.csrf_token)?;
    if upload.file.is_empty() {
        let problem = FieldError::new(
            "file",
            "select a question set file (YAML or JSON) to upload",
        );
        return list_page(
            &state,
            &auth,
            StatusCode::UNPROCESSABLE_ENTITY,
            &[problem],
            None,
        )
        .await;
    }
    let actor = auth.actor();
    let (mut file, publish) = (upload.file, upload.publish);
    if crate::services::workbook::is_workbook(&file) {
        // A workbook is read into the definition document first; its problems are named by
        // sheet, row and column.
        let read = web::block(move || crate::services::workbook::import(file)).await?;
        match read {
            Ok(q) => file = questionnaire::to_json(&q).into_bytes(),
            Err(problems) => {
                return list_page(
                    &state,
                    &auth,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &problems,
                    None,
                )
                .await
            }
        }
    }
    let result = state
        .db
        .write(move |conn| Ok(store::import(conn, &actor, &file, publish)))
        .await?;
    match result {
        Ok(outcome) => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!(
                    "{}?done={}",
                    version_path(&outcome.key, &outcome.version),
                    if publish { "published" } else { "imported" }
                ),
            ))
            .finish()),
        Err(ImportError::Invalid(problems)) => {
            list_page(
                &state,
                &auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                &problems,
                None,
            )
            .await
        }
        Err(ImportError::App(e)) => Err(e),
    }
}

async fn load(
    state: &AppState,
    key: String,
    version: String,
) -> Result<store::StoredVersion, AppError> {
    state
        .db
        .read(move |conn| store::get(conn, &key, &version))
        .await
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<FlashQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let (key, version) = path.into_inner();
    let stored = load(&state, key.clone(), version.clone()).await?;
    let others: Vec<Value> = state
        .db
        .read(store::list)
        .await?
        .into_iter()
        .filter(|v| v.key == key && v.version != version)
        .map(|v| json!({"version": v.version}))
        .collect();
    let q = &stored.questionnaire;
    let domains: Vec<Value> = q
        .domains
        .iter()
        .map(|d| json!({"key": d.key, "title": d.title, "questions": d.questions.len(), "weight": d.weight, "pillar": d.pillar}))
        .collect();
    page::render(
        &state,
        Some(&auth.page_user()),
        "admin/questionnaire",
        &format!("{} {}", q.key, q.version),
        json!({
            "key": q.key, "version": q.version, "set_title": q.title, "description": q.description,
            "settings": q.settings.join(", "),
            "published": stored.summary.status == PUBLISHED,
            "published_at": stored.summary.published_at.map(|t| t.format("%-d %B %Y at %H:%M").to_string()),
            "question_count": q.questions().count(),
            "domains": domains,
            "others": others,
            "base": version_path(&q.key, &q.version),
            "flash": flash(query.done.as_deref()),
            "breadcrumbs": breadcrumbs(&[]),
            "csrf_token": auth.csrf_token,
        }),
    )
}

/// The preview renders the questions with whatever answers are in the query string (a GET
/// form, so it changes nothing), hides what conditions hide, and scores the answers.
pub async fn preview(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let (key, version) = path.into_inner();
    let stored = load(&state, key, version).await?;
    let q = &stored.questionnaire;
    let submitted = questions::form_values(&query);
    let (given, errors) = questions::answers_from_form(q, &submitted, None);
    let visible = visibility::visible(q, &given);
    let report = scoring::score(q, &given);
    let scores: Vec<Value> = report
        .domains
        .iter()
        .map(|d| {
            let title = q.domains.iter().find(|x| x.key == d.key).map_or("", |x| x.title.as_str());
            json!({"title": title, "score": d.score.map(|s| scoring::round_display(s, q.decimals)), "band": d.band, "counted": d.counted})
        })
        .collect();
    let summary_errors: Vec<Value> = errors
        .iter()
        .map(|e| json!({"href": format!("#q-{}-group", e.path), "message": e.message}))
        .collect();
    page::render(
        &state,
        Some(&auth.page_user()),
        "admin/preview",
        &format!("Preview {} {}", q.key, q.version),
        json!({
            "key": q.key, "version": q.version, "set_title": q.title, "description": q.description,
            "domains": questions::domain_views(q, &given, &submitted, &visible, &errors),
            "scores": scores,
            "overall": report.overall.score.map(|s| scoring::round_display(s, q.decimals)),
            "overall_band": report.overall.band,
            "missing": report.missing_required,
            "errors": if summary_errors.is_empty() { Value::Null } else { json!(summary_errors) },
            "base": version_path(&q.key, &q.version),
            "breadcrumbs": breadcrumbs(&[(&format!("{} {}", q.key, q.version), version_path(&q.key, &q.version))]),
        }),
    )
}

/// A blank copy of a version to print or save as PDF, for policy leads drafting or
/// circulating the questions before a cycle opens: the same layout as an assessment's printed
/// copy (`assessment/print`), every question numbered with its options, help and condition.
pub async fn print(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let (key, version) = path.into_inner();
    let stored = load(&state, key, version).await?;
    let q = &stored.questionnaire;
    let base = version_path(&q.key, &q.version);
    page::render(
        &state,
        Some(&auth.page_user()),
        "assessment/print",
        &format!("{} (version {}, print)", q.title, q.version),
        json!({
            "caption": format!("{} version {}", q.key, q.version),
            "set_title": q.title,
            "blank": true,
            "domains": questions::print_views(q, &Default::default()),
            "base": base,
            "back_label": "Back to the question set",
            "breadcrumbs": breadcrumbs(&[(&format!("{} {}", q.key, q.version), base.clone())]),
        }),
    )
}

pub async fn confirm_publish(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let (key, version) = path.into_inner();
    publish_page(&state, &auth, key, version, None).await
}

/// The confirmation before publishing; with `error`, drawn again (422) with an error summary
/// when the box was not ticked.
async fn publish_page(
    state: &AppState,
    auth: &Authenticated,
    key: String,
    version: String,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let stored = load(state, key, version).await?;
    if stored.summary.status == PUBLISHED {
        return Err(AppError::Conflict(
            "This version is already published.".into(),
        ));
    }
    let q = &stored.questionnaire;
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "admin/publish",
        &format!("Publish {} {}", q.key, q.version),
        json!({
            "key": q.key, "version": q.version, "set_title": q.title,
            "base": version_path(&q.key, &q.version),
            "confirm_error": error,
            "errors": error.map(|e| json!([{"href": "#confirm", "message": e}])),
            "breadcrumbs": breadcrumbs(&[(&format!("{} {}", q.key, q.version), version_path(&q.key, &q.version))]),
        }),
    )?;
    let status = if error.is_some() {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirm: String,
}

pub async fn publish(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let (key, version) = path.into_inner();
    if form.confirm != "yes" {
        let message = "Tick the box to confirm you have previewed this version and it is final";
        return publish_page(&state, &auth, key, version, Some(message)).await;
    }
    if let Some(confirm) = crate::web::second_factor::demand_recent(
        &state,
        &auth,
        &format!("{}/publish", version_path(&key, &version)),
    ) {
        return Ok(confirm);
    }
    let actor = auth.actor();
    let (k, v) = (key.clone(), version.clone());
    state
        .db
        .write(move |conn| store::publish(conn, &actor, &k, &v))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("{}?done=published", version_path(&key, &version)),
        ))
        .finish())
}

pub async fn delete(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let (key, version) = path.into_inner();
    // Deleting cannot be undone: the first press asks, the confirmation page's button
    // (`confirm=yes`) deletes. A published version is refused either way.
    if form.confirm != "yes" {
        let stored = load(&state, key.clone(), version.clone()).await?;
        if stored.summary.status == store::PUBLISHED {
            return Err(AppError::Conflict(format!(
                "Version {version} of {key} is published and cannot be deleted."
            )));
        }
        return page::render(
            &state,
            Some(&auth.page_user()),
            "admin/delete_draft",
            "Delete this draft?",
            json!({
                "key": key, "version": version, "title": stored.summary.title,
                "action": format!("{}/delete", version_path(&key, &version)),
                "back": version_path(&key, &version),
                "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": BASE, "label": "Question sets"}],
            }),
        );
    }
    let actor = auth.actor();
    state
        .db
        .write(move |conn| store::delete_draft(conn, &actor, &key, &version))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{BASE}?done=deleted")))
        .finish())
}

#[derive(Deserialize)]
pub struct DownloadQuery {
    format: Option<String>,
}

pub async fn download(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<DownloadQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let (key, version) = path.into_inner();
    let stored = load(&state, key, version).await?;
    let q = &stored.questionnaire;
    let (body, ext, mime) = match query.format.as_deref() {
        Some("json") => (questionnaire::to_json(q), "json", "application/json"),
        Some("yaml") | None => (questionnaire::to_yaml(q), "yaml", "application/yaml"),
        Some("xlsx") => {
            let body = crate::services::workbook::export(q)?;
            return Ok(HttpResponse::Ok()
                .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}-{}.xlsx\"", q.key, q.version),
                ))
                .body(body));
        }
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "Unknown format \"{other}\": choose yaml, json or xlsx."
            )))
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}-{}.{ext}\"", q.key, q.version),
        ))
        .body(body))
}

#[derive(Deserialize)]
pub struct DiffQuery {
    a: String,
    b: String,
}

pub async fn diff(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<String>,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let key = path.into_inner();
    let a = load(&state, key.clone(), query.a.clone()).await?;
    let b = load(&state, key.clone(), query.b.clone()).await?;
    let d = comparability::diff(&a.questionnaire, &b.questionnaire);
    page::render(
        &state,
        Some(&auth.page_user()),
        "admin/diff",
        &format!("Compare {key} {} and {}", query.a, query.b),
        json!({
            "key": key, "a": query.a, "b": query.b,
            "diff": d,
            "unchanged": d.added.is_empty() && d.removed.is_empty() && d.reworded.is_empty() && d.rescored.is_empty() && d.other_changes.is_empty(),
            "breadcrumbs": breadcrumbs(&[(&format!("{key} {}", query.b), version_path(&key, &query.b))]),
        }),
    )
}
