//! Question sets (administrators, as on `/admin/questionnaires`): check a definition without
//! storing it, import it as a draft (optionally publishing), list, read, export in the
//! definition format, publish, and compare two versions. All through [`crate::services::questionnaires`]
//! and the pure loader, so the API accepts exactly what the pages and the CLI accept. Drafts
//! are authored in place through [`crate::services::authoring`], as in the browser editor:
//! read with its revision, change it (a whole document or RFC 6902 operations), check, publish.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{plain_segment, read_document, utc, ApiJson, Page, PageParams};
use crate::domain::{comparability, questionnaire};
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::authoring;
use crate::services::questionnaires::{self as store, VersionSummary};
use crate::web::auth::ApiUser;
use crate::web::AppState;

const BASE: &str = "/api/v1/questionnaires";
/// The media types a definition may be sent as (the loader reads YAML, of which JSON is a
/// subset).
const DEFINITION_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/plain",
];

/// A stored version of a question set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    pub id: i64,
    pub key: String,
    pub version: String,
    pub title: String,
    /// draft or published.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

impl From<VersionSummary> for Version {
    fn from(v: VersionSummary) -> Self {
        Version {
            id: v.id,
            key: v.key,
            version: v.version,
            title: v.title,
            status: v.status,
            created_at: utc(v.created_at),
            published_at: v.published_at.map(utc),
        }
    }
}

/// A stored version with its definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionWithDefinition {
    #[serde(flatten)]
    pub version: Version,
    /// The definition as canonical JSON (format spec); the same as `/definition?format=json`.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
}

/// A definition that passed every check.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub valid: bool,
    pub key: String,
    pub version: String,
    pub title: String,
    pub domains: usize,
    pub questions: usize,
    /// Things that are allowed but probably not meant.
    pub warnings: Vec<String>,
}

/// What an import stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    pub id: i64,
    pub key: String,
    pub version: String,
    /// draft, or published with `?publish=true`.
    pub status: String,
    /// An existing draft of the same version was replaced.
    pub replaced: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Publish at once; a published version can never change.
    pub publish: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// The earlier version.
    #[param(example = "2025.1")]
    pub a: String,
    /// The later version.
    #[param(example = "2025.1")]
    pub b: String,
}

/// A version, in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// The question set's key.
    #[param(example = "wgll-acute")]
    pub key: String,
    /// The version.
    #[param(example = "2025.1")]
    pub version: String,
}

/// The definition format.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DefinitionFormat {
    Yaml,
    Json,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatParams {
    /// yaml (the default) or json.
    pub format: Option<DefinitionFormat>,
}

/// Whether a domain or pillar is scored the same way in both versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Comparison {
    pub key: String,
    pub comparable: bool,
    /// Why not, in words.
    pub reasons: Vec<String>,
}

/// What changed between two versions (format spec section 5).
#[derive(Debug, Serialize, ToSchema)]
pub struct Diff {
    pub key: String,
    pub a: String,
    pub b: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub reworded: Vec<String>,
    pub rescored: Vec<String>,
    pub other_changes: Vec<String>,
    pub domains: Vec<Comparison>,
    pub pillars: Vec<Comparison>,
    pub overall_comparable: bool,
    pub scale_changed: bool,
}

/// Every stored version, each question set's newest first (administrators).
#[utoipa::path(operation_id = "questionnaires_list", get, path = "/api/v1/questionnaires", tag = "questionnaires",
    params(PageParams),
    responses((status = 200, description = "A page of versions", body = Page<Version>)))]
pub async fn list(
    state: web::Data<AppState>,
    api: ApiUser,
    paging: web::Query<PageParams>,
) -> Result<web::Json<Page<Version>>, AppError> {
    api.require(Action::Administer)?;
    let paging = paging.checked()?;
    let all = state.db.read(store::list).await?;
    let items = all.into_iter().map(Version::from).collect();
    Ok(web::Json(Page::slice(items, paging, BASE, &[])))
}

fn definition_limit(state: &AppState) -> usize {
    state
        .settings
        .max_upload_bytes
        .min(questionnaire::MAX_DEFINITION_BYTES)
}

/// Check a definition without storing it (administrators). 422 lists every problem with
/// its path in the document.
#[utoipa::path(operation_id = "questionnaires_check", post, path = "/api/v1/questionnaires/check", tag = "questionnaires",
    request_body(description = "The definition (format spec), as YAML or JSON",
        content((Object = "application/yaml"), (Object = "application/json"))),
    responses((status = 200, description = "The definition is valid", body = CheckResult)))]
pub async fn check(
    state: web::Data<AppState>,
    api: ApiUser,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Json<CheckResult>, AppError> {
    api.require(Action::Administer)?;
    let source = read_document(
        &req,
        &mut payload,
        DEFINITION_TYPES,
        definition_limit(&state),
    )
    .await?;
    let (q, warnings) = web::block(move || questionnaire::load_with_warnings(&source))
        .await?
        .map_err(AppError::Validation)?;
    Ok(web::Json(CheckResult {
        valid: true,
        questions: q.questions().count(),
        domains: q.domains.len(),
        key: q.key,
        version: q.version,
        title: q.title,
        warnings: warnings.iter().map(ToString::to_string).collect(),
    }))
}

/// Store a definition as a draft, replacing a draft of the same version (administrators).
#[utoipa::path(operation_id = "questionnaires_import", post, path = "/api/v1/questionnaires", tag = "questionnaires",
    params(ImportParams),
    request_body(description = "The definition (format spec), as YAML or JSON",
        content((Object = "application/yaml"), (Object = "application/json"))),
    responses((status = 201, description = "Stored", body = ImportResult)))]
pub async fn import(
    state: web::Data<AppState>,
    api: ApiUser,
    req: HttpRequest,
    params: web::Query<ImportParams>,
    mut payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    api.require(Action::Administer)?;
    let source = read_document(
        &req,
        &mut payload,
        DEFINITION_TYPES,
        definition_limit(&state),
    )
    .await?;
    let publish = params.publish.unwrap_or(false);
    let actor = api.actor();
    let outcome = state
        .db
        .write(move |conn| store::import(conn, &actor, &source, publish).map_err(AppError::from))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("{BASE}/{}/{}", outcome.key, outcome.version),
        ))
        .json(ImportResult {
            id: outcome.id,
            key: outcome.key,
            version: outcome.version,
            status: outcome.status,
            replaced: outcome.replaced,
            warnings: outcome.warnings,
        }))
}

async fn load(
    state: &AppState,
    key: String,
    version: String,
) -> Result<store::StoredVersion, AppError> {
    plain_segment(&key)?;
    plain_segment(&version)?;
    state
        .db
        .read(move |conn| store::get(conn, &key, &version))
        .await
}

/// One version with its definition (administrators).
#[utoipa::path(operation_id = "questionnaires_get", get, path = "/api/v1/questionnaires/{key}/{version}", tag = "questionnaires",
    params(VersionPath),
    responses((status = 200, description = "The version", body = VersionWithDefinition)))]
pub async fn get(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<VersionPath>,
) -> Result<web::Json<VersionWithDefinition>, AppError> {
    api.require(Action::Administer)?;
    let VersionPath { key, version } = path.into_inner();
    let stored = load(&state, key, version).await?;
    let definition = serde_json::from_str(&questionnaire::to_json(&stored.questionnaire))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(web::Json(VersionWithDefinition {
        version: stored.summary.into(),
        definition,
    }))
}

/// The definition as a file, in YAML or JSON (administrators); it imports back unchanged.
#[utoipa::path(operation_id = "questionnaires_definition", get, path = "/api/v1/questionnaires/{key}/{version}/definition", tag = "questionnaires",
    params(VersionPath, FormatParams),
    responses((status = 200, description = "The definition",
        content((Object = "application/yaml"), (Object = "application/json")))))]
pub async fn definition(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<VersionPath>,
    params: web::Query<FormatParams>,
) -> Result<HttpResponse, AppError> {
    api.require(Action::Administer)?;
    let json = matches!(params.format, Some(DefinitionFormat::Json));
    let VersionPath { key, version } = path.into_inner();
    let stored = load(&state, key, version).await?;
    let q = &stored.questionnaire;
    let (body, mime) = if json {
        (questionnaire::to_json(q), "application/json")
    } else {
        (questionnaire::to_yaml(q), "application/yaml")
    };
    Ok(HttpResponse::Ok().content_type(mime).body(body))
}

/// Publish a draft; it can never change afterwards (administrators).
#[utoipa::path(operation_id = "questionnaires_publish", post, path = "/api/v1/questionnaires/{key}/{version}/publish", tag = "questionnaires",
    params(VersionPath),
    responses((status = 200, description = "Published", body = Version)))]
pub async fn publish(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<VersionPath>,
) -> Result<web::Json<Version>, AppError> {
    api.require(Action::Administer)?;
    let VersionPath { key, version } = path.into_inner();
    plain_segment(&key)?;
    plain_segment(&version)?;
    let actor = api.actor();
    let summary = state
        .db
        .write(move |conn| store::publish(conn, &actor, &key, &version))
        .await?;
    Ok(web::Json(summary.into()))
}

fn comparisons<T>(items: Vec<T>, f: impl Fn(T) -> (String, bool, Vec<String>)) -> Vec<Comparison> {
    items
        .into_iter()
        .map(|c| {
            let (key, comparable, reasons) = f(c);
            Comparison {
                key,
                comparable,
                reasons,
            }
        })
        .collect()
}

/// What changed from version `a` to version `b`, and what stays comparable (administrators).
#[utoipa::path(operation_id = "questionnaires_diff", get, path = "/api/v1/questionnaires/{key}/diff", tag = "questionnaires",
    params(("key" = String, Path, description = "The question set's key", example = "wgll-acute"), DiffParams),
    responses((status = 200, description = "The differences", body = Diff)))]
pub async fn diff(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<String>,
    params: web::Query<DiffParams>,
) -> Result<web::Json<Diff>, AppError> {
    api.require(Action::Administer)?;
    let key = path.into_inner();
    let params = params.into_inner();
    let a = load(&state, key.clone(), params.a.clone()).await?;
    let b = load(&state, key.clone(), params.b.clone()).await?;
    let d = comparability::diff(&a.questionnaire, &b.questionnaire);
    Ok(web::Json(Diff {
        key,
        a: params.a,
        b: params.b,
        added: d.added,
        removed: d.removed,
        reworded: d.reworded,
        rescored: d.rescored,
        other_changes: d.other_changes,
        domains: comparisons(d.domains, |c| (c.key, c.comparable, c.reasons)),
        pillars: comparisons(d.pillars, |c| (c.key, c.comparable, c.reasons)),
        overall_comparable: d.overall_comparable,
        scale_changed: d.scale_changed,
    }))
}

// ----- drafts: authoring through the API (the same service as the editor's pages) -----

/// A draft with its revision, its document and, when it was started from a published
/// version, which domains stay comparable with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    #[serde(flatten)]
    pub version: Version,
    /// Send it back with every change; a change against an older revision is refused (409).
    pub revision: i64,
    /// The definition as canonical JSON (format spec).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// The published version this draft was started from.
    pub based_on: Option<String>,
    /// Per domain: whether its scores stay comparable with `based_on`, and why not.
    pub domains: Vec<Comparison>,
    pub overall_comparable: Option<bool>,
}

impl From<authoring::Draft> for DraftView {
    fn from(d: authoring::Draft) -> Self {
        let (based_on, domains, overall) = match d.based_on {
            Some((from, diff)) => (
                Some(from.version),
                comparisons(diff.domains, |c| (c.key, c.comparable, c.reasons)),
                Some(diff.overall_comparable),
            ),
            None => (None, Vec::new(), None),
        };
        DraftView {
            version: d.summary.into(),
            revision: d.revision,
            definition: d.document,
            based_on,
            domains,
            overall_comparable: overall,
        }
    }
}

/// A whole new document for a draft.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DraftReplace {
    /// The revision the document was based on.
    pub revision: i64,
    /// The whole definition (format spec) as JSON; key and version must stay the draft's.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
}

/// RFC 6902 operations on a draft's document.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DraftPatch {
    /// The revision the operations were written against.
    pub revision: i64,
    /// Applied in order to the document `GET .../draft` returned; all or nothing.
    pub operations: Vec<json_patch::PatchOperation>,
}

/// A new draft from this version.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NextVersion {
    /// The new draft's version.
    #[schema(example = "2026.1")]
    pub version: String,
}

async fn draft_of(state: &AppState, key: String, version: String) -> Result<DraftView, AppError> {
    plain_segment(&key)?;
    plain_segment(&version)?;
    let d = state
        .db
        .read(move |conn| authoring::draft(conn, &key, &version))
        .await?;
    Ok(d.into())
}

/// A version as a draft document with its revision and comparability (administrators).
#[utoipa::path(operation_id = "questionnaires_draft", get, path = "/api/v1/questionnaires/{key}/{version}/draft", tag = "questionnaires",
    params(VersionPath),
    responses((status = 200, description = "The draft", body = DraftView)))]
pub async fn draft(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<VersionPath>,
) -> Result<web::Json<DraftView>, AppError> {
    api.require(Action::Administer)?;
    let VersionPath { key, version } = path.into_inner();
    Ok(web::Json(draft_of(&state, key, version).await?))
}

async fn change(
    state: &AppState,
    api: &ApiUser,
    key: String,
    version: String,
    revision: i64,
    change: authoring::Change,
) -> Result<web::Json<DraftView>, AppError> {
    plain_segment(&key)?;
    plain_segment(&version)?;
    let actor = api.actor();
    let d = state
        .db
        .write(move |conn| {
            authoring::change(conn, &actor, &key, &version, revision, change)
                .map_err(AppError::from)
        })
        .await?;
    Ok(web::Json(d.into()))
}

/// Replace a draft's whole document (administrators). 409 when `revision` is stale or the
/// version is published; 422 lists every problem of the document by its path.
#[utoipa::path(operation_id = "questionnaires_draft_replace", put, path = "/api/v1/questionnaires/{key}/{version}/draft", tag = "questionnaires",
    params(VersionPath),
    request_body = DraftReplace,
    responses((status = 200, description = "Stored, with the new revision", body = DraftView)))]
pub async fn replace_draft(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<VersionPath>,
    body: ApiJson<DraftReplace>,
) -> Result<web::Json<DraftView>, AppError> {
    api.require(Action::Administer)?;
    let VersionPath { key, version } = path.into_inner();
    let body = body.0;
    change(
        &state,
        &api,
        key,
        version,
        body.revision,
        authoring::Change::Replace(body.definition),
    )
    .await
}

/// Change a draft with RFC 6902 operations on its document (administrators). 409 when
/// `revision` is stale or the version is published; 422 lists every problem of the result.
#[utoipa::path(operation_id = "questionnaires_draft_patch", patch, path = "/api/v1/questionnaires/{key}/{version}/draft", tag = "questionnaires",
    params(VersionPath),
    request_body = DraftPatch,
    responses((status = 200, description = "Stored, with the new revision", body = DraftView)))]
pub async fn patch_draft(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<VersionPath>,
    body: ApiJson<DraftPatch>,
) -> Result<web::Json<DraftView>, AppError> {
    api.require(Action::Administer)?;
    let VersionPath { key, version } = path.into_inner();
    let body = body.0;
    change(
        &state,
        &api,
        key,
        version,
        body.revision,
        authoring::Change::Patch(body.operations),
    )
    .await
}

/// Start a new draft from this version, e.g. next year's from this year's (administrators).
#[utoipa::path(operation_id = "questionnaires_next", post, path = "/api/v1/questionnaires/{key}/{version}/next", tag = "questionnaires",
    params(VersionPath),
    request_body = NextVersion,
    responses((status = 201, description = "The new draft", body = DraftView)))]
pub async fn next(
    state: web::Data<AppState>,
    api: ApiUser,
    path: web::Path<VersionPath>,
    body: ApiJson<NextVersion>,
) -> Result<HttpResponse, AppError> {
    api.require(Action::Administer)?;
    let VersionPath { key, version } = path.into_inner();
    plain_segment(&key)?;
    plain_segment(&version)?;
    let new_version = body.0.version;
    let actor = api.actor();
    let d = state
        .db
        .write(move |conn| {
            let v = authoring::start_from(conn, &actor, &key, &version, &new_version)
                .map_err(AppError::from)?;
            authoring::draft(conn, &v.key, &v.version)
        })
        .await?;
    let location = format!("{BASE}/{}/{}/draft", d.summary.key, d.summary.version);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(DraftView::from(d)))
}
