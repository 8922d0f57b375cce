//! The JSON API under `/api/v1`, its OpenAPI 3 document (`/api/openapi.json`) and a readable
//! docs page drawn from that document on the server (`/api/docs`, no scripts or CDNs, so it
//! works offline).
//!
//! Why it looks like this:
//! - **Thin handlers.** Each checks the token's owner against the policy the pages use
//!   ([`crate::services::auth::roles::can`], [`crate::services::reports::Scope`]) and calls the same services
//!   (`questionnaires`, `registry`, `cycles`, `assessments`, `reports`), so the API cannot
//!   disagree with the pages about who may do what or how a score is worked out.
//! - **Bearer tokens only.** [`extract::require_token`] guards the whole scope and never
//!   reads the session cookie, so no web page can make a browser write through the API (which
//!   has no CSRF tokens).
//! - **One error format.** Handlers return [`AppError`](crate::error::AppError); the errors
//!   middleware writes RFC 9457 problem documents with a stable `type` per kind
//!   ([`crate::web::errors::PROBLEM_KINDS`]).
//! - **The document comes from the code.** Every handler carries a `#[utoipa::path]` and
//!   every body type derives `ToSchema`; a test checks the document's operations against
//!   [`crate::web::ROUTES`], and schemathesis checks responses against it in CI.

pub mod assessments;
pub mod cycles;
pub mod docs;
pub mod evidence;
pub mod extract;
pub mod me;
pub mod notes;
pub mod organisations;
pub mod plans;
pub mod questionnaires;
pub mod reports;
pub mod review;
pub mod sections;

use actix_web::middleware::from_fn;
use actix_web::web;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::{Modify, OpenApi, ToSchema};

/// An RFC 9457 problem document, as every error under `/api` is answered.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Problem {
    /// `https://dma.example/problems/<kind>`: stable, one per kind of error (docs/api.md).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong, in words a person can act on.
    pub detail: String,
    /// With `validation`: each problem and where it is in the body or document.
    pub errors: Option<Vec<ProblemField>>,
    /// With `stale-revision`: the current value and revision of each stale answer.
    pub conflicts: Option<Vec<serde_json::Value>>,
    /// With `internal`: quote it when reporting the fault.
    pub reference: Option<String>,
    /// The request's id (also in the `X-Request-Id` header): quote it when asking about this
    /// response; the server's log line for the request carries it.
    pub request_id: Option<String>,
}

/// One problem with the input.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ProblemField {
    /// Where: a JSON path (`answers[2].value`), a document path, or `line 4, column name`.
    pub path: String,
    pub message: String,
}

/// What every operation shares: the bearer token, and the problem responses.
struct Conventions;

fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .into()
}

fn add_problems(op: &mut Operation, writes: bool) {
    let mut statuses = vec![
        ("400", "The request could not be read (bad-request)"),
        ("401", "No valid bearer token (unauthenticated)"),
        ("403", "The token's owner may not do this (forbidden)"),
        ("404", "No such record (not-found)"),
        ("503", "The database cannot be reached (unavailable)"),
    ];
    if writes {
        statuses.extend([
            ("409", "The record's state or an answer's revision does not allow this (conflict, stale-revision)"),
            ("413", "The body is too large (payload-too-large)"),
            ("415", "The body's Content-Type is not accepted (unsupported-media-type)"),
            ("422", "The body's content is not acceptable; `errors` says where (validation)"),
        ]);
    }
    for (status, description) in statuses {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(description));
    }
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A personal API token from /account/tokens, sent as `Authorization: Bearer dma_...`",
                    ))
                    .build(),
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "token",
            Vec::<String>::new(),
        )]);
        for item in openapi.paths.paths.values_mut() {
            if let Some(op) = item.get.as_mut() {
                add_problems(op, false);
            }
            for op in [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_problems(op, true);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Digital maturity assessment API",
        description = "Question sets, cycles, assessments, answers, scores, reports and exports, with the same permissions as the web pages. Authenticate with a personal API token (`Authorization: Bearer`); errors are RFC 9457 problem documents. See docs/api.md."
    ),
    paths(
        me::me,
        organisations::list,
        organisations::get,
        organisations::import,
        questionnaires::list,
        questionnaires::import,
        questionnaires::check,
        questionnaires::diff,
        questionnaires::get,
        questionnaires::definition,
        questionnaires::publish,
        questionnaires::draft,
        questionnaires::replace_draft,
        questionnaires::patch_draft,
        questionnaires::next,
        cycles::list,
        cycles::open,
        cycles::close,
        assessments::list,
        assessments::get,
        assessments::answers,
        assessments::save,
        assessments::submit,
        assessments::scores,
        sections::list,
        sections::assign,
        sections::unassign,
        sections::change_status,
        sections::mine,
        notes::list,
        notes::add,
        notes::share,
        notes::edit,
        notes::delete,
        evidence::list,
        evidence::add,
        evidence::download,
        evidence::remove,
        review::get,
        review::accept,
        review::raise,
        review::answer,
        review::close,
        plans::get,
        plans::add,
        plans::change,
        reports::benchmarks,
        reports::trends,
        reports::progress,
        reports::export,
    ),
    components(schemas(
        Problem,
        ProblemField,
        questionnaires::DefinitionFormat,
        reports::ExportName,
        reports::ExportFileFormat
    )),
    modifiers(&Conventions),
    tags(
        (name = "account", description = "The token's owner"),
        (name = "organisations", description = "The organisation registry"),
        (name = "questionnaires", description = "Question sets and their versions"),
        (name = "cycles", description = "Yearly cycles"),
        (name = "assessments", description = "Assessments, answers, submission and scores"),
        (name = "sections", description = "Who has each section of an assessment, and its hand-over"),
        (name = "notes", description = "Notes on questions between the organisation's people"),
        (name = "evidence", description = "Files and links attached to answers as evidence"),
        (name = "review", description = "An auditor's review of a submitted assessment: accepted sections and queries"),
        (name = "plans", description = "Improvement plans: actions for domains below a chosen band"),
        (name = "reports", description = "Benchmarks, year on year, and exports"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(docs::openapi_json))
        .route("/api/docs", web::get().to(docs::page))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(extract::require_token))
                .route("/me", web::get().to(me::me))
                .route("/me/sections", web::get().to(sections::mine))
                .route("/organisations", web::get().to(organisations::list))
                .route(
                    "/organisations/import",
                    web::post().to(organisations::import),
                )
                .route("/organisations/{id}", web::get().to(organisations::get))
                .route("/questionnaires", web::get().to(questionnaires::list))
                .route("/questionnaires", web::post().to(questionnaires::import))
                .route(
                    "/questionnaires/check",
                    web::post().to(questionnaires::check),
                )
                .route(
                    "/questionnaires/{key}/diff",
                    web::get().to(questionnaires::diff),
                )
                .route(
                    "/questionnaires/{key}/{version}",
                    web::get().to(questionnaires::get),
                )
                .route(
                    "/questionnaires/{key}/{version}/definition",
                    web::get().to(questionnaires::definition),
                )
                .route(
                    "/questionnaires/{key}/{version}/publish",
                    web::post().to(questionnaires::publish),
                )
                .route(
                    "/questionnaires/{key}/{version}/draft",
                    web::get().to(questionnaires::draft),
                )
                .route(
                    "/questionnaires/{key}/{version}/draft",
                    web::put().to(questionnaires::replace_draft),
                )
                .route(
                    "/questionnaires/{key}/{version}/draft",
                    web::patch().to(questionnaires::patch_draft),
                )
                .route(
                    "/questionnaires/{key}/{version}/next",
                    web::post().to(questionnaires::next),
                )
                .route("/cycles", web::get().to(cycles::list))
                .route("/cycles", web::post().to(cycles::open))
                .route("/cycles/{id}/close", web::post().to(cycles::close))
                .route("/assessments", web::get().to(assessments::list))
                .route("/assessments/{id}", web::get().to(assessments::get))
                .route(
                    "/assessments/{id}/answers",
                    web::get().to(assessments::answers),
                )
                .route(
                    "/assessments/{id}/answers",
                    web::patch().to(assessments::save),
                )
                .route(
                    "/assessments/{id}/submit",
                    web::post().to(assessments::submit),
                )
                .route(
                    "/assessments/{id}/scores",
                    web::get().to(assessments::scores),
                )
                .route(
                    "/assessments/{id}/questions/{key}/notes",
                    web::get().to(notes::list),
                )
                .route(
                    "/assessments/{id}/questions/{key}/notes",
                    web::post().to(notes::add),
                )
                .route(
                    "/assessments/{id}/notes/{note}/share",
                    web::post().to(notes::share),
                )
                .route(
                    "/assessments/{id}/notes/{note}",
                    web::patch().to(notes::edit),
                )
                .route(
                    "/assessments/{id}/notes/{note}",
                    web::delete().to(notes::delete),
                )
                .configure(evidence::routes)
                .route("/assessments/{id}/sections", web::get().to(sections::list))
                .route(
                    "/assessments/{id}/sections/{key}/assignees",
                    web::post().to(sections::assign),
                )
                .route(
                    "/assessments/{id}/sections/{key}/assignees/{user}",
                    web::delete().to(sections::unassign),
                )
                .route(
                    "/assessments/{id}/sections/{key}/status",
                    web::post().to(sections::change_status),
                )
                .route("/assessments/{id}/review", web::get().to(review::get))
                .route(
                    "/assessments/{id}/review/sections/{key}/accept",
                    web::post().to(review::accept),
                )
                .route(
                    "/assessments/{id}/review/queries",
                    web::post().to(review::raise),
                )
                .route(
                    "/assessments/{id}/review/queries/{query}/answer",
                    web::post().to(review::answer),
                )
                .route(
                    "/assessments/{id}/review/queries/{query}/close",
                    web::post().to(review::close),
                )
                .route("/assessments/{id}/plan", web::get().to(plans::get))
                .route("/assessments/{id}/plan/actions", web::post().to(plans::add))
                .route(
                    "/assessments/{id}/plan/actions/{action}",
                    web::patch().to(plans::change),
                )
                .route("/reports/benchmarks", web::get().to(reports::benchmarks))
                .route("/reports/trends", web::get().to(reports::trends))
                .route("/reports/progress", web::get().to(reports::progress))
                .route("/exports/{kind}", web::get().to(reports::export)),
        );
}
