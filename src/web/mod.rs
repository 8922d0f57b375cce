//! The web application: routes, middleware and the server. [`Application::build`] binds the
//! listener itself (port 0 in tests) and reports the port, so tests and `dma serve` start the
//! same thing.

pub mod account;
pub mod admin_audit;
pub mod admin_cycles;
pub mod admin_organisations;
pub mod admin_outbox;
pub mod admin_questionnaires;
pub mod admin_users;
pub mod api;
pub mod api_tokens;
pub mod assessment_pages;
pub mod assets;
pub mod charts;
pub mod errors;
pub mod health;
pub mod input_guard;
pub mod listing;
pub mod page;
pub mod pages;
pub mod password_reset;
pub mod questions;
pub mod report_pages;
pub mod templates;
pub mod upload;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Compress, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::{DatabaseUrl, Db};
use crate::error::AppError;

/// Everything a request handler may need; cheap to clone, no per-instance mutable state, so
/// any number of instances can serve behind a load balancer.
pub struct AppState {
    pub db: Db,
    pub templates: templates::Templates,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// What lifecycle services need to queue their emails in the caller's transaction.
    pub fn notifier(&self) -> crate::notifications::Notifier {
        crate::notifications::Notifier::new(&self.templates, &self.settings)
    }
}

pub struct Application {
    port: u16,
    server: Server,
    mail_worker: crate::mail::Worker,
    scheduler: tokio::task::JoinHandle<()>,
}

/// The database a configuration points at: the given URL, or the embedded SQLite file.
pub fn database_url(settings: &Settings) -> Result<DatabaseUrl, AppError> {
    match &settings.database_url {
        Some(url) => DatabaseUrl::parse(url.expose()).map_err(AppError::BadRequest),
        None => Ok(DatabaseUrl::Sqlite(settings.data_dir.join("dma.sqlite3"))),
    }
}

/// Open the pool and bring the schema up to date.
pub async fn open_database(settings: &Settings) -> Result<Db, anyhow::Error> {
    let url = database_url(settings)?;
    tracing::info!(database = %url.describe(), "opening database");
    let db = Db::connect(&url, settings.db_pool_size)?;
    let applied = db.migrate().await?;
    for m in applied {
        tracing::info!(migration = %m, "applied migration");
    }
    db.optimize().await?;
    Ok(db)
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

/// Every route [`routes`] registers, as (method, path pattern). The route-by-role test
/// (`tests/integration/authorisation.rs`) checks that this list matches what is registered and
/// tries each entry as every role, so a new route must be added here to pass the suite.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/assets/{path:.*}"),
    ("GET", "/"),
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
    ("GET", "/assessments/{id}/submit"),
    ("POST", "/assessments/{id}/submit"),
    ("GET", "/assessments/{id}/confirmation"),
    ("GET", "/assessments/{id}/results"),
    ("GET", "/assessments/{id}/questions/{key}/history"),
    ("POST", "/assessments/{id}/reopen"),
    ("POST", "/assessments/{id}/deadline"),
    ("GET", "/admin/cycles"),
    ("POST", "/admin/cycles"),
    ("GET", "/admin/organisations"),
    ("POST", "/admin/organisations/import"),
    ("GET", "/admin/users"),
    ("GET", "/admin/users/invite"),
    ("POST", "/admin/users/invite"),
    ("POST", "/admin/users/{id}/deactivate"),
    ("GET", "/organisation/users"),
    ("POST", "/organisation/users/invite"),
    ("POST", "/organisation/users/{id}/deactivate"),
    ("GET", "/account/reset-password"),
    ("POST", "/account/reset-password"),
    ("GET", "/account/tokens"),
    ("POST", "/account/tokens"),
    ("POST", "/account/tokens/{id}/revoke"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/outbox"),
    ("POST", "/admin/outbox/{id}/resend"),
    ("GET", "/api/v1/me"),
    ("GET", "/admin/questionnaires"),
    ("POST", "/admin/questionnaires"),
    ("GET", "/admin/questionnaires/{key}/diff"),
    ("GET", "/admin/questionnaires/{key}/{version}"),
    ("GET", "/admin/questionnaires/{key}/{version}/preview"),
    ("GET", "/admin/questionnaires/{key}/{version}/publish"),
    ("POST", "/admin/questionnaires/{key}/{version}/publish"),
    ("POST", "/admin/questionnaires/{key}/{version}/delete"),
    ("GET", "/admin/questionnaires/{key}/{version}/download"),
    ("GET", "/reports"),
    ("GET", "/reports/organisations/{id}"),
    ("GET", "/reports/trends"),
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
    ("GET", "/api/v1/cycles"),
    ("POST", "/api/v1/cycles"),
    ("GET", "/api/v1/assessments"),
    ("GET", "/api/v1/assessments/{id}"),
    ("GET", "/api/v1/assessments/{id}/answers"),
    ("PATCH", "/api/v1/assessments/{id}/answers"),
    ("POST", "/api/v1/assessments/{id}/submit"),
    ("GET", "/api/v1/assessments/{id}/scores"),
    ("GET", "/api/v1/reports/benchmarks"),
    ("GET", "/api/v1/reports/trends"),
    ("GET", "/api/v1/exports/{kind}"),
    ("GET", "/reports/export/scores.xlsx"),
    ("GET", "/reports/export/answers.xlsx"),
];

/// Register every route. One function, so the route-by-role test can list them all.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/assets/{path:.*}", web::get().to(assets::serve))
        .route("/", web::get().to(pages::home))
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
        .configure(assessment_pages::routes)
        .configure(admin_cycles::routes)
        .configure(admin_organisations::routes)
        .configure(admin_users::routes)
        .configure(password_reset::routes)
        .configure(api_tokens::routes)
        .configure(admin_audit::routes)
        .configure(admin_outbox::routes)
        .configure(api::routes)
        .configure(report_pages::routes)
        .service(
            web::scope("/admin/questionnaires")
                .route("", web::get().to(admin_questionnaires::list))
                .route("", web::post().to(admin_questionnaires::upload))
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
                ),
        );
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, anyhow::Error> {
        let db = open_database(&settings).await?;
        Self::build_with_db(settings, db).await
    }

    pub async fn build_with_db(settings: Settings, db: Db) -> Result<Self, anyhow::Error> {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let templates = templates::Templates::load(settings.mail.templates_dir.as_deref())?;
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
        let mail_worker = crate::mail::spawn_worker(db.clone(), settings.mail.clone())?;
        let scheduler = crate::notifications::spawn_scheduler(
            db.clone(),
            crate::notifications::Notifier::new(&templates, &settings),
        );
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
                .wrap(Compress::default())
                .wrap(security_headers(https))
                .wrap(TracingLogger::default())
        })
        .workers(workers)
        .worker_max_blocking_threads(blocking_threads)
        .shutdown_timeout(30)
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            mail_worker,
            scheduler,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until SIGTERM/SIGINT, then finish in-flight requests (up to 30 s), let the mail
    /// worker finish the message in hand, and return.
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let served = self.server.await;
        // A pass is one transaction: stopping between or during passes loses nothing.
        self.scheduler.abort();
        self.mail_worker
            .stop(std::time::Duration::from_secs(30))
            .await;
        served
    }
}
