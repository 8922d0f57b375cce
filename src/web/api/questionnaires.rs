//! Question sets (administrators, as on `/admin/questionnaires`): check a definition without
//! storing it, import it as a draft (optionally publishing), list, read, export in the
//! definition format, publish, and compare two versions. All through [`crate::questionnaires`]
//! and the pure loader, so the API accepts exactly what the pages and the CLI accept.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{plain_segment, read_document, utc, Page, PageParams};
use crate::auth::api_token::ApiUser;
use crate::auth::roles::Action;
use crate::domain::{comparability, questionnaire};
use crate::error::AppError;
use crate::questionnaires::{self as store, VersionSummary};
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
