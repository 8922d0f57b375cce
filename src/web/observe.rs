//! What operators see of each request: one log line with its request id, route pattern,
//! status, latency and (when signed in) user id, the same figures in the metrics, and the
//! request id in an `X-Request-Id` header and on error pages so a person can quote it.
//!
//! The line names the route *pattern* (`/assessments/{id}/domains/{key}`), never the path or
//! query, because a query can hold a single-use link's token; bodies (answers, passwords) are
//! never logged at all. Events logged while a request is handled carry its span's fields, so
//! in JSON logs every line of a request has its `request_id`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// The signed-in account behind a request, put in the request's extensions by the session
/// and token extractors (`web::auth`) so the request's log line can name it.
#[derive(Debug, Clone, Copy)]
pub struct LoggedUser(pub i64);

/// When the request arrived.
#[derive(Debug, Clone, Copy)]
struct Started(Instant);

/// The request's route label, worked out once when it arrives: matching a path against every
/// route's pattern is a measurable share of a small request's time (issue 21), so the end of
/// the request reads it from here rather than matching again.
#[derive(Debug, Clone)]
struct Route(String);

pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const INSTANCE_HEADER: &str = "x-dma-instance";

/// The request id of a request that passed through the tracing middleware.
pub fn request_id(req: &actix_web::HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(ToString::to_string)
}

/// The route label: the registered pattern, or `unmatched` for unknown addresses so that
/// scanners cannot create a series per path.
fn route_of(pattern: Option<String>) -> String {
    pattern.unwrap_or_else(|| "unmatched".to_string())
}

/// Probes and static assets are logged at debug level: a load balancer polling two
/// instances every few seconds would otherwise drown the lines people read.
fn is_routine(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz") || route.starts_with("/assets/")
}

/// The root span of every request, for `TracingLogger`: its fields are the request's
/// identity; its end writes the request's line and metrics.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let route = route_of(request.match_pattern());
        request.extensions_mut().insert(Route(route.clone()));
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            route = %route,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let _entered = span.enter();
        let (status, req) = match outcome {
            Ok(res) => (res.status(), Some(res.request())),
            Err(e) => (e.as_response_error().status_code(), None),
        };
        let (method, route, started, user_id) = match req {
            Some(req) => {
                let ext = req.extensions();
                (
                    req.method().to_string(),
                    ext.get::<Route>()
                        .map_or_else(|| route_of(req.match_pattern()), |r| r.0.clone()),
                    ext.get::<Started>().copied(),
                    ext.get::<LoggedUser>().map(|u| u.0),
                )
            }
            None => ("?".to_string(), "unmatched".to_string(), None, None),
        };
        let elapsed = started.map(|s| s.0.elapsed()).unwrap_or_default();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        crate::metrics::observe_request(&method, &route, status.as_u16(), elapsed);
        if method == "POST" && route == "/login" && status.as_u16() >= 400 {
            crate::metrics::record(|m| m.sign_in_failures.inc());
        }
        let status = status.as_u16();
        if is_routine(&route) {
            tracing::debug!(status, latency_ms, user_id, "request");
        } else {
            tracing::info!(status, latency_ms, user_id, "request");
        }
    }
}

/// Adds the request id (and this instance's name, when configured) to every response.
pub async fn response_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    instance: Option<HeaderValue>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| HeaderValue::from_str(&id.to_string()).ok());
    let mut res = next.call(req).await?;
    if let Some(id) = id {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), id);
    }
    if let Some(instance) = instance {
        res.headers_mut()
            .insert(HeaderName::from_static(INSTANCE_HEADER), instance);
    }
    Ok(res)
}
