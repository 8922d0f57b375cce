//! Probes for load balancers and orchestrators: `/healthz` says the process is alive (no
//! dependencies, so a database outage does not get healthy instances killed); `/readyz` says
//! it can serve, which needs the database.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::web::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({
            "status": "ready",
            "database": state.db.backend().to_string(),
        })),
        Err(e) => {
            tracing::warn!(error = %crate::error::error_chain(&e), "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "unavailable",
                "database": state.db.backend().to_string(),
            }))
        }
    }
}
