//! The web application: routes, middleware and the server. [`Application::build`] binds the
//! listener itself (port 0 in tests) and reports the port, so tests and `dma serve` start the
//! same thing.

pub mod account;
pub mod admin_audit;
pub mod admin_authoring;
pub mod admin_cycles;
pub mod admin_organisations;
pub mod admin_outbox;
pub mod admin_questionnaires;
pub mod admin_users;
pub mod api;
pub mod api_tokens;
pub mod assessment_pages;
pub mod assets;
pub mod auth;
pub mod charts;
pub mod email_preferences;
pub mod errors;
pub mod evidence_pages;
pub mod health;
pub mod input_guard;
pub mod listing;
pub mod metrics;
pub mod note_pages;
pub mod observe;
pub mod page;
pub mod pages;
pub mod password_reset;
pub mod places;
pub mod plan_pages;
pub mod progress_pages;
pub mod questions;
pub mod report_pages;
pub mod review_pages;
pub mod second_factor;
pub mod section_pages;
pub mod sign_in_methods;
pub mod sso;
pub mod upload;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Compress, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::Db;

/// Everything a request handler may need; cheap to clone, no per-instance mutable state, so
/// any number of instances can serve behind a load balancer.
pub struct AppState {
    pub db: Db,
    pub templates: crate::templates::Templates,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// What lifecycle services need to queue their emails in the caller's transaction.
    pub fn notifier(&self) -> crate::services::notifications::Notifier {
        crate::services::notifications::Notifier::new(&self.templates, &self.settings)
    }
}

pub struct Application {
    port: u16,
    server: Server,
    mail_worker: crate::services::mail::Worker,
    scheduler: tokio::task::JoinHandle<()>,
    /// The metrics server's port and handle, when `DMA_METRICS_BIND` is set.
    metrics: Option<(u16, actix_web::dev::ServerHandle)>,
    /// SQLite's checkpoints, off the write path (`db::checkpoint`); stops when dropped.
    _checkpointer: Option<crate::db::checkpoint::Checkpointer>,
}

/// Response headers on every response: a strict content security policy (no inline script or
/// style, no framing), no MIME sniffing, no referrer leaks to other sites.
fn security_headers(https: bool) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ));
    if https {
        headers = headers.add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ));
    }
    headers
}

/// Middleware: `Cache-Control: no-store` on every response that does not choose its own
/// caching (only the assets do). Pages and API answers are a person's own data, or carry a
/// CSRF token, so neither the browser's history, a shared computer's disk cache nor a proxy
/// may keep a copy; answering this once here means a new route cannot forget it.
async fn no_store_by_default(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::http::header::{HeaderValue, CACHE_CONTROL};
    let assets = req.path().starts_with("/assets/");
    let mut res = next.call(req).await?;
    if !assets && !res.headers().contains_key(CACHE_CONTROL) {
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// Every route [`routes`] registers, as (method, path pattern). The route-by-role test
/// (`tests/integration/authorisation.rs`) checks that this list matches what is registered and
/// tries each entry as every role, so a new route must be added here to pass the suite.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/assets/{path:.*}"),
    ("GET", "/"),
    ("GET", "/accessibility"),
    ("GET", "/privacy"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/account/set-password"),
    ("POST", "/account/set-password"),
    ("GET", "/dashboard"),
    ("GET", "/assessments/{id}"),
    ("GET", "/assessments/{id}/domains/{key}"),
    ("POST", "/assessments/{id}/domains/{key}"),
    ("POST", "/assessments/{id}/autosave"),
    ("GET", "/assessments/{id}/review"),
    ("GET", "/assessments/{id}/print"),
    ("GET", "/assessments/{id}/submit"),
    ("POST", "/assessments/{id}/submit"),
    ("GET", "/assessments/{id}/confirmation"),
    ("GET", "/assessments/{id}/results"),
    ("GET", "/assessments/{id}/questions/{key}/history"),
    ("POST", "/assessments/{id}/reopen"),
    ("POST", "/assessments/{id}/deadline"),
    ("GET", "/assessments/{id}/sections/{key}"),
    ("POST", "/assessments/{id}/sections/{key}/assignees"),
    (
        "POST",
        "/assessments/{id}/sections/{key}/assignees/{user}/remove",
    ),
    ("POST", "/assessments/{id}/sections/{key}/status"),
    ("GET", "/assessments/{id}/questions/{key}/notes"),
    ("POST", "/assessments/{id}/questions/{key}/notes"),
    ("POST", "/assessments/{id}/notes/{note}/share"),
    ("POST", "/assessments/{id}/notes/{note}/edit"),
    ("POST", "/assessments/{id}/notes/{note}/delete"),
    ("GET", "/assessments/{id}/questions/{key}/evidence"),
    ("POST", "/assessments/{id}/questions/{key}/evidence"),
    ("POST", "/assessments/{id}/evidence/{evidence}/remove"),
    ("GET", "/assessments/{id}/evidence/{evidence}/download"),
    ("GET", "/admin/cycles"),
    ("POST", "/admin/cycles"),
    ("GET", "/admin/cycles/{id}"),
    ("GET", "/admin/cycles/{id}/close"),
    ("POST", "/admin/cycles/{id}/close"),
    ("GET", "/admin/organisations"),
    ("POST", "/admin/organisations/import"),
    ("GET", "/admin/organisations/{id}"),
    ("POST", "/admin/organisations/{id}"),
    ("GET", "/admin/organisations/{id}/close"),
    ("POST", "/admin/organisations/{id}/close"),
    ("GET", "/admin/users"),
    ("GET", "/admin/users/import"),
    ("POST", "/admin/users/import"),
    ("POST", "/admin/users/import/confirm"),
    ("GET", "/admin/users/invite"),
    ("POST", "/admin/users/invite"),
    ("POST", "/admin/users/{id}/deactivate"),
    ("GET", "/admin/users/{id}"),
    ("POST", "/admin/users/{id}/role"),
    ("POST", "/admin/users/{id}/resend-invitation"),
    ("GET", "/organisation/users"),
    ("POST", "/organisation/users/invite"),
    ("POST", "/organisation/users/{id}/deactivate"),
    ("POST", "/organisation/users/{id}/remove"),
    (
        "POST",
        "/admin/users/{id}/memberships/{organisation}/remove",
    ),
    ("GET", "/account/sign-in"),
    ("POST", "/account/sign-in/{provider}/unlink"),
    ("POST", "/admin/users/{id}/sso/{provider}/unlink"),
    ("GET", "/account/organisations"),
    ("POST", "/account/organisations"),
    ("GET", "/account/reset-password"),
    ("POST", "/account/reset-password"),
    ("GET", "/account/email"),
    ("POST", "/account/email"),
    ("GET", "/account/tokens"),
    ("POST", "/account/tokens"),
    ("POST", "/account/tokens/{id}/revoke"),
    ("GET", "/login/second-factor"),
    ("POST", "/login/second-factor"),
    ("GET", "/account/second-factor"),
    ("POST", "/account/second-factor"),
    ("POST", "/account/second-factor/remove"),
    ("GET", "/account/confirm"),
    ("POST", "/account/confirm"),
    ("POST", "/admin/users/{id}/second-factor/reset"),
    ("GET", "/login/sso/{provider}"),
    ("GET", "/login/sso/{provider}/callback"),
    ("GET", "/signed-out"),
    ("GET", "/admin/sso"),
    ("POST", "/admin/sso/domains"),
    ("POST", "/admin/sso/domains/{id}/remove"),
    ("POST", "/admin/sso/providers/{provider}/accounts"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/outbox"),
    ("POST", "/admin/outbox/{id}/resend"),
    ("GET", "/api/v1/me"),
    ("GET", "/admin/questionnaires"),
    ("POST", "/admin/questionnaires"),
    ("GET", "/admin/questionnaires/{key}/diff"),
    ("GET", "/admin/questionnaires/{key}/{version}"),
    ("GET", "/admin/questionnaires/{key}/{version}/preview"),
    ("GET", "/admin/questionnaires/{key}/{version}/print"),
    ("GET", "/admin/questionnaires/{key}/{version}/publish"),
    ("POST", "/admin/questionnaires/{key}/{version}/publish"),
    ("POST", "/admin/questionnaires/{key}/{version}/delete"),
    ("GET", "/admin/questionnaires/{key}/{version}/download"),
    ("GET", "/admin/questionnaires/new"),
    ("POST", "/admin/questionnaires/new"),
    ("POST", "/admin/questionnaires/{key}/{version}/next"),
    ("GET", "/admin/questionnaires/{key}/{version}/edit"),
    ("POST", "/admin/questionnaires/{key}/{version}/edit"),
    (
        "GET",
        "/admin/questionnaires/{key}/{version}/edit/{domain}/{question}",
    ),
    ("GET", "/reports"),
    ("GET", "/reports/organisations/{id}"),
    ("GET", "/reports/trends"),
    ("GET", "/reports/progress"),
    ("GET", "/reports/export/scores.csv"),
    ("GET", "/reports/export/scores.json"),
    ("GET", "/reports/export/answers.csv"),
    ("GET", "/reports/export/answers.json"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
    ("GET", "/api/v1/organisations"),
    ("POST", "/api/v1/organisations/import"),
    ("GET", "/api/v1/organisations/{id}"),
    ("GET", "/api/v1/questionnaires"),
    ("POST", "/api/v1/questionnaires"),
    ("POST", "/api/v1/questionnaires/check"),
    ("GET", "/api/v1/questionnaires/{key}/diff"),
    ("GET", "/api/v1/questionnaires/{key}/{version}"),
    ("GET", "/api/v1/questionnaires/{key}/{version}/definition"),
    ("POST", "/api/v1/questionnaires/{key}/{version}/publish"),
    ("GET", "/api/v1/questionnaires/{key}/{version}/draft"),
    ("PUT", "/api/v1/questionnaires/{key}/{version}/draft"),
    ("PATCH", "/api/v1/questionnaires/{key}/{version}/draft"),
    ("POST", "/api/v1/questionnaires/{key}/{version}/next"),
    ("GET", "/api/v1/cycles"),
    ("POST", "/api/v1/cycles"),
    ("POST", "/api/v1/cycles/{id}/close"),
    ("GET", "/api/v1/assessments"),
    ("GET", "/api/v1/assessments/{id}"),
    ("GET", "/api/v1/assessments/{id}/answers"),
    ("PATCH", "/api/v1/assessments/{id}/answers"),
    ("POST", "/api/v1/assessments/{id}/submit"),
    ("GET", "/api/v1/assessments/{id}/scores"),
    ("GET", "/api/v1/assessments/{id}/sections"),
    ("POST", "/api/v1/assessments/{id}/sections/{key}/assignees"),
    (
        "DELETE",
        "/api/v1/assessments/{id}/sections/{key}/assignees/{user}",
    ),
    ("POST", "/api/v1/assessments/{id}/sections/{key}/status"),
    ("GET", "/api/v1/me/sections"),
    ("GET", "/api/v1/assessments/{id}/questions/{key}/notes"),
    ("POST", "/api/v1/assessments/{id}/questions/{key}/notes"),
    ("POST", "/api/v1/assessments/{id}/notes/{note}/share"),
    ("PATCH", "/api/v1/assessments/{id}/notes/{note}"),
    ("DELETE", "/api/v1/assessments/{id}/notes/{note}"),
    ("GET", "/api/v1/assessments/{id}/questions/{key}/evidence"),
    ("POST", "/api/v1/assessments/{id}/questions/{key}/evidence"),
    (
        "GET",
        "/api/v1/assessments/{id}/evidence/{evidence}/download",
    ),
    ("DELETE", "/api/v1/assessments/{id}/evidence/{evidence}"),
    ("GET", "/api/v1/reports/benchmarks"),
    ("GET", "/api/v1/reports/trends"),
    ("GET", "/api/v1/reports/progress"),
    ("GET", "/api/v1/exports/{kind}"),
    ("GET", "/reports/export/scores.xlsx"),
    ("GET", "/reports/export/answers.xlsx"),
    // Auditor review and improvement plans (issue 23, docs/review.md).
    ("GET", "/assessments/{id}/audit"),
    ("POST", "/assessments/{id}/audit/sections/{key}/accept"),
    ("POST", "/assessments/{id}/audit/queries"),
    ("GET", "/assessments/{id}/audit/queries/{query}"),
    ("POST", "/assessments/{id}/audit/queries/{query}/answer"),
    ("POST", "/assessments/{id}/audit/queries/{query}/close"),
    ("GET", "/assessments/{id}/plan"),
    ("POST", "/assessments/{id}/plan/threshold"),
    ("POST", "/assessments/{id}/plan/actions"),
    ("POST", "/assessments/{id}/plan/actions/{action}"),
    ("GET", "/api/v1/assessments/{id}/review"),
    (
        "POST",
        "/api/v1/assessments/{id}/review/sections/{key}/accept",
    ),
    ("POST", "/api/v1/assessments/{id}/review/queries"),
    (
        "POST",
        "/api/v1/assessments/{id}/review/queries/{query}/answer",
    ),
    (
        "POST",
        "/api/v1/assessments/{id}/review/queries/{query}/close",
    ),
    ("GET", "/api/v1/assessments/{id}/plan"),
    ("POST", "/api/v1/assessments/{id}/plan/actions"),
    ("PATCH", "/api/v1/assessments/{id}/plan/actions/{action}"),
];

/// Register every route. One function, so the route-by-role test can list them all.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/assets/{path:.*}", web::get().to(assets::serve))
        .route("/", web::get().to(pages::home))
        .route("/accessibility", web::get().to(pages::accessibility))
        .route("/privacy", web::get().to(pages::privacy))
        .route("/login", web::get().to(account::login_form))
        .route("/login", web::post().to(account::login))
        .route("/logout", web::post().to(account::logout))
        .route(
            "/account/set-password",
            web::get().to(account::set_password_form),
        )
        .route(
            "/account/set-password",
            web::post().to(account::set_password),
        )
        .route("/dashboard", web::get().to(account::dashboard))
        // Before the assessment's own scope, which would otherwise take these paths.
        .configure(section_pages::routes)
        .configure(note_pages::routes)
        .configure(evidence_pages::routes)
        .configure(review_pages::routes)
        .configure(plan_pages::routes)
        .configure(assessment_pages::routes)
        .configure(admin_cycles::routes)
        .configure(admin_organisations::routes)
        .configure(admin_users::routes)
        .configure(password_reset::routes)
        .configure(api_tokens::routes)
        .configure(email_preferences::routes)
        .configure(places::routes)
        .configure(sign_in_methods::routes)
        .configure(second_factor::routes)
        .configure(sso::routes)
        .configure(admin_audit::routes)
        .configure(admin_outbox::routes)
        .configure(api::routes)
        .configure(report_pages::routes)
        .service(
            web::scope("/admin/questionnaires")
                .route("", web::get().to(admin_questionnaires::list))
                .route("", web::post().to(admin_questionnaires::upload))
                .route("/new", web::get().to(admin_authoring::new_form))
                .route("/new", web::post().to(admin_authoring::create))
                .route("/{key}/diff", web::get().to(admin_questionnaires::diff))
                .route(
                    "/{key}/{version}",
                    web::get().to(admin_questionnaires::show),
                )
                .route(
                    "/{key}/{version}/preview",
                    web::get().to(admin_questionnaires::preview),
                )
                .route(
                    "/{key}/{version}/print",
                    web::get().to(admin_questionnaires::print),
                )
                .route(
                    "/{key}/{version}/publish",
                    web::get().to(admin_questionnaires::confirm_publish),
                )
                .route(
                    "/{key}/{version}/publish",
                    web::post().to(admin_questionnaires::publish),
                )
                .route(
                    "/{key}/{version}/delete",
                    web::post().to(admin_questionnaires::delete),
                )
                .route(
                    "/{key}/{version}/download",
                    web::get().to(admin_questionnaires::download),
                )
                .route(
                    "/{key}/{version}/next",
                    web::post().to(admin_authoring::start_next),
                )
                .route(
                    "/{key}/{version}/edit",
                    web::get().to(admin_authoring::edit),
                )
                .route(
                    "/{key}/{version}/edit",
                    web::post().to(admin_authoring::save),
                )
                .route(
                    "/{key}/{version}/edit/{domain}/{question}",
                    web::get().to(admin_authoring::edit_question),
                ),
        );
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, anyhow::Error> {
        let db = settings.open_database().await?;
        Self::build_with_db(settings, db).await
    }

    pub async fn build_with_db(mut settings: Settings, db: Db) -> Result<Self, anyhow::Error> {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        // Links follow the address actually bound (port 0 picks one): a provider's redirect
        // URI must name the real port.
        settings.set_bind(listener.local_addr()?);
        let templates = crate::templates::Templates::load(settings.mail.templates_dir.as_deref())?;
        let https = settings.base_url.starts_with("https://");
        let limit = settings.max_upload_bytes;
        let workers = settings.workers;
        // Database work runs on each worker's blocking threads, and can use no more
        // connections than the pool holds: threads beyond that only wait, and each one that
        // ran keeps its own malloc arena (measured: 300 MB resident under load with actix's
        // default of hundreds, BENCHMARKS.md). So: the pool's size, shared among the workers.
        let blocking_threads = (settings.db_pool_size as usize)
            .div_ceil(workers.max(1))
            .max(2);
        let checkpointer = db.spawn_checkpointer()?;
        let mail_worker = crate::services::mail::spawn_worker(db.clone(), settings.mail.clone())?;
        let scheduler = crate::services::notifications::spawn_scheduler(
            db.clone(),
            crate::services::notifications::Notifier::new(&templates, &settings),
            crate::services::retention::Policy::from_settings(&settings),
        );
        let metrics = match settings.ops.metrics_bind {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
                let port = listener.local_addr()?.port();
                let server = metrics::server(listener, db.clone(), &settings)?;
                let handle = server.handle();
                tokio::spawn(server);
                Some((port, handle))
            }
            None => None,
        };
        let instance = settings
            .ops
            .instance_name
            .as_deref()
            .and_then(|name| actix_web::http::header::HeaderValue::from_str(name).ok());
        let state = web::Data::new(AppState {
            db,
            templates,
            settings: Arc::new(settings),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::FormConfig::default().limit(limit))
                .app_data(web::JsonConfig::default().limit(limit))
                .app_data(web::PayloadConfig::default().limit(limit))
                .configure(routes)
                .default_service(web::to(errors::not_found))
                .wrap(from_fn(move |req, next| {
                    input_guard::refuse_nul(req, next, limit)
                }))
                .wrap(from_fn(errors::render_errors))
                .wrap(from_fn(no_store_by_default))
                .wrap(Compress::default())
                .wrap(security_headers(https))
                .wrap(from_fn({
                    let instance = instance.clone();
                    move |req, next| observe::response_headers(req, next, instance.clone())
                }))
                .wrap(TracingLogger::<observe::RequestSpan>::new())
        })
        .workers(workers)
        .worker_max_blocking_threads(blocking_threads)
        // A client that closes its connection has gone: its request is dropped (and with it
        // any long read, `Db::read_cancellable`) rather than finished for nobody.
        .h1_allow_half_closed(false)
        .shutdown_timeout(30)
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            mail_worker,
            scheduler,
            metrics,
            _checkpointer: checkpointer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port serving `/metrics`, when `DMA_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serve until SIGTERM/SIGINT, then finish in-flight requests (up to 30 s), let the mail
    /// worker finish the message in hand, and return.
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let served = self.server.await;
        if let Some((_, metrics)) = self.metrics {
            metrics.stop(true).await;
        }
        // A pass is one transaction: stopping between or during passes loses nothing.
        self.scheduler.abort();
        self.mail_worker
            .stop(std::time::Duration::from_secs(30))
            .await;
        served
    }
}
