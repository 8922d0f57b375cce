//! `/metrics` for Prometheus, on an address of its own (`DMA_METRICS_BIND`) so it is never
//! reachable through the public load balancer, and behind a bearer token when
//! `DMA_METRICS_TOKEN` is set. Instance counters come from `crate::metrics`; the service-wide
//! figures (outbox, sessions) are read from the database at each scrape.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::config::Secret;
use crate::db::Db;

struct MetricsState {
    db: Db,
    token: Option<Secret>,
    session_idle_minutes: i64,
}

fn authorised(req: &HttpRequest, token: Option<&Secret>) -> bool {
    let Some(token) = token else {
        return true;
    };
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| crate::crypto::constant_time_eq(given.trim(), token.expose()))
}

async fn metrics(req: HttpRequest, state: web::Data<MetricsState>) -> HttpResponse {
    if !authorised(&req, state.token.as_ref()) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .finish();
    }
    let (open, idle, max) = state.db.pool_state();
    crate::metrics::record(|m| {
        m.pool_connections.set(i64::from(open));
        m.pool_in_use.set(i64::from(open.saturating_sub(idle)));
        m.pool_max.set(i64::from(max));
    });
    // A database that does not answer leaves the last figures in place; the failure is
    // logged, and `/readyz` is what says the database is down.
    let idle = state.session_idle_minutes;
    if let Err(e) = state
        .db
        .read(move |conn| crate::services::operations::record_snapshot(conn, idle))
        .await
    {
        tracing::warn!(error = %crate::error::error_chain(&e), "metrics: database figures unavailable");
    }
    match crate::metrics::render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The metrics server on its own listener: one worker, no signal handling of its own (the
/// application stops it when the main server has drained).
pub fn server(
    listener: TcpListener,
    db: Db,
    settings: &crate::config::Settings,
) -> std::io::Result<Server> {
    let state = web::Data::new(MetricsState {
        db,
        token: settings.ops.metrics_token.clone(),
        session_idle_minutes: settings.session_idle_minutes,
    });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // A resource of this server only, apart from the application's `ROUTES`.
            .service(
                web::resource("/metrics")
                    .guard(actix_web::guard::Get())
                    .to(metrics),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}
