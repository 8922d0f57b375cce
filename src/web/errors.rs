//! Turns every error response into something a person or a program can use: an HTML page in
//! the service's layout, or under `/api` an RFC 9457 problem document. Handlers, extractors
//! (a malformed form, an oversized body) and unknown routes all pass through here, so no user
//! ever sees a bare status line, and server faults are logged once with a reference that the
//! page shows.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::error::{error_chain, AppError};
use crate::web::AppState;

/// Where every problem document's `type` starts: a stable identifier, the same on every
/// instance, so a program can match on it (it is not fetched; docs/api.md describes each).
pub const PROBLEM_TYPE_BASE: &str = "https://dma.example/problems/";

/// Every kind of problem the service answers with: the end of its `type`, its status and
/// when it happens. docs/api.md and the API docs page list these; a test keeps them in step.
pub const PROBLEM_KINDS: &[(&str, u16, &str)] = &[
    ("bad-request", 400, "The request could not be read: malformed JSON, a query parameter that is not understood, or a form that expired."),
    ("unauthenticated", 401, "No bearer token, or one that is unknown, expired, revoked or belongs to a deactivated account."),
    ("forbidden", 403, "The token's owner may not do this (their role or organisation does not allow it)."),
    ("not-found", 404, "No such record or address."),
    ("method-not-allowed", 405, "The address exists but not with this method."),
    ("conflict", 409, "The record is in a state that does not allow this (for example, already published or submitted)."),
    ("stale-revision", 409, "An answer or a draft question set was changed by someone else since the revision you sent; nothing was saved. `conflicts` holds the current values (for a draft, its current `revision`)."),
    ("payload-too-large", 413, "The body is larger than the limit for this endpoint."),
    ("unsupported-media-type", 415, "The body's Content-Type is not one this endpoint reads."),
    ("validation", 422, "The body was read but its content is not acceptable; `errors` lists each problem with its path."),
    ("too-many-requests", 429, "Too many attempts; wait and try again."),
    ("internal", 500, "A fault in the service; `reference` identifies it in the log."),
    ("unavailable", 503, "The database cannot be reached or cannot store more (a full disk); nothing was saved. `Retry-After` says when to try again."),
];

/// What an error response says, whatever produced it.
struct Described {
    status: StatusCode,
    kind: &'static str,
    message: String,
    field_errors: Vec<crate::domain::FieldError>,
    members: Option<(&'static str, serde_json::Value)>,
    reference: Option<String>,
}

fn describe(res: &ServiceResponse<impl MessageBody>) -> Described {
    let status = res.status();
    let error = res.response().error();
    let app_error = error.and_then(|e| e.as_error::<AppError>());
    let reference = status
        .is_server_error()
        .then(|| crate::crypto::random_token()[..10].to_uppercase());
    if let Some(reference) = &reference {
        let cause = match (app_error, error) {
            (Some(e), _) => error_chain(e),
            (None, Some(e)) => e.to_string(),
            (None, None) => "no error attached".to_string(),
        };
        tracing::error!(%reference, path = %res.request().path(), %status, error = %cause, "request failed");
    }
    if let Some(e) = app_error {
        return Described {
            status,
            kind: e.kind(),
            message: e.public_message(),
            field_errors: match e {
                AppError::Validation(errs) => errs.clone(),
                _ => Vec::new(),
            },
            members: e.problem_members(),
            reference,
        };
    }
    let (kind, message) = match status {
        StatusCode::NOT_FOUND => ("not-found", AppError::NotFound.public_message()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "This address does not accept that kind of request.".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "The upload is too large for this service.".to_string(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "The body is not in a format this address reads.".to_string(),
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "unavailable",
            AppError::Unavailable(String::new()).public_message(),
        ),
        s if s.is_server_error() => (
            "internal",
            AppError::Internal(anyhow::anyhow!("")).public_message(),
        ),
        _ => (
            "bad-request",
            match error {
                // Extractor errors (a malformed form or JSON body) describe the input, not
                // the server, so they are safe and useful to repeat.
                Some(e) => format!("The request could not be read: {e}"),
                None => "The request could not be understood.".to_string(),
            },
        ),
    };
    Described {
        status,
        kind,
        message,
        field_errors: Vec::new(),
        members: None,
        reference,
    }
}

fn heading(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "There is a problem with what you sent",
        401 => "Sign in to continue",
        403 => "You do not have permission to view this page",
        404 => "Page not found",
        405 => "This address does not accept that request",
        409 => "This has changed since you opened it",
        413 => "The upload is too large",
        415 => "The request is not in a format this address reads",
        429 => "Too many attempts",
        503 => "The service is temporarily unavailable",
        _ => "Sorry, there is a problem with the service",
    }
}

pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let already_rendered =
        res.response().error().is_none() && res.headers().contains_key(header::CONTENT_TYPE);
    if status.as_u16() < 400 || already_rendered {
        return Ok(res.map_into_boxed_body());
    }
    let described = describe(&res);
    let allow = res.headers().get(header::ALLOW).cloned();
    // An outage (the database stopped, a full disk) tells clients when to try again; a 503
    // from elsewhere gets the short wait.
    let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE).then(|| {
        res.response()
            .error()
            .and_then(|e| e.as_error::<AppError>())
            .and_then(AppError::retry_after)
            .unwrap_or(crate::error::RETRY_AFTER_UNAVAILABLE_SECS)
    });
    let (req, _) = res.into_parts();
    let is_api = req.path().starts_with("/api/");
    // The pages' own scripts (autosave) ask with `X-Requested-With: fetch`: a redirect to the
    // sign-in page would be followed by the browser and read as a success, so they are told in
    // JSON instead, and say "not saved".
    let from_script = req
        .headers()
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"fetch"));
    let response = if is_api {
        problem(&described, super::observe::request_id(&req))
    } else if described.status == StatusCode::UNAUTHORIZED && from_script {
        HttpResponse::Unauthorized().json(serde_json::json!({
            "message": "you have been signed out, so this was not saved. Sign in again in another tab, then come back and save.",
        }))
    } else if described.status == StatusCode::UNAUTHORIZED {
        let next = after_sign_in(&req);
        HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("/login?next={}", urlencode(&next)),
            ))
            .finish()
    } else {
        // The header shows who is signed in, as on every other page (not "Sign in"); no
        // lookup when the database is what failed.
        let viewer = if described.status == StatusCode::SERVICE_UNAVAILABLE {
            None
        } else {
            super::auth::signed_in(&req).await
        };
        // Someone who works for several organisations may be refused only because they are
        // working for another one now: the page says where to switch.
        let switch_hint = described.status == StatusCode::FORBIDDEN
            && viewer.as_ref().is_some_and(|a| a.has_places);
        page(
            &req,
            &described,
            viewer.map(|a| a.page_user()).as_ref(),
            switch_hint,
        )
    };
    let mut response = response;
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    Ok(ServiceResponse::new(req, response))
}

/// Where to go once signed in again: the address asked for, or for a form that was posted
/// (which has no page of its own: `/…/status` takes only POST) the page the form was on, from
/// a same-site `Referer`, else the dashboard. Nothing the form sent was kept.
fn after_sign_in(req: &actix_web::HttpRequest) -> String {
    let asked = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    if matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    ) {
        return asked;
    }
    let host = req.connection_info().host().to_string();
    req.headers()
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| {
            u.host_str().is_some_and(|h| match u.port() {
                Some(p) => format!("{h}:{p}") == host,
                None => h == host,
            })
        })
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        })
        .unwrap_or_else(|| "/dashboard".to_string())
}

fn problem(d: &Described, request_id: Option<String>) -> HttpResponse {
    let mut body = json!({
        "type": format!("{PROBLEM_TYPE_BASE}{}", d.kind),
        "title": heading(d.status),
        "status": d.status.as_u16(),
        "detail": d.message,
    });
    if !d.field_errors.is_empty() {
        body["errors"] = json!(d
            .field_errors
            .iter()
            .map(|e| json!({"path": e.path, "message": e.message}))
            .collect::<Vec<_>>());
    }
    if let Some((name, value)) = &d.members {
        body[*name] = value.clone();
    }
    if let Some(r) = &d.reference {
        body["reference"] = json!(r);
    }
    if let Some(id) = request_id {
        body["request_id"] = json!(id);
    }
    let mut response = HttpResponse::build(d.status);
    if d.status == StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    response
        .content_type("application/problem+json")
        .body(body.to_string())
}

fn page(
    req: &actix_web::HttpRequest,
    d: &Described,
    user: Option<&super::page::PageUser>,
    switch_hint: bool,
) -> HttpResponse {
    let html = req.app_data::<web::Data<AppState>>().and_then(|state| {
        let data = json!({
            "switch_hint": switch_hint,
            "status": d.status.as_u16(),
            "heading": heading(d.status),
            "message": d.message,
            "reference": d.reference,
            "request_id": super::observe::request_id(req),
            "errors": d.field_errors.iter().map(|e| json!({"href": format!("#{}", e.path), "message": e.message})).collect::<Vec<_>>(),
        });
        super::page::render_html(state, user, "error", heading(d.status), data).ok()
    });
    match html {
        Some(html) => HttpResponse::build(d.status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        // The templates themselves failed: still say something useful.
        None => HttpResponse::build(d.status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}\n\n{}", heading(d.status), d.message)),
    }
}

/// Percent-encode a value for use in a query string.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The fallback for unknown routes: 405 with `Allow` when the path is one of
/// [`super::ROUTES`] under another method, otherwise 404. (Actix matches a route's method as
/// part of finding it, so a known address with the wrong method would otherwise be "not
/// found".)
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let allowed = allowed_methods(req.path());
    if allowed.is_empty() {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allowed.join(", ")))
        .finish()
}

/// The methods [`super::ROUTES`] lists for `path`, in order, each once.
fn allowed_methods(path: &str) -> Vec<&'static str> {
    static ROUTES: std::sync::OnceLock<Vec<(&'static str, actix_web::dev::ResourceDef)>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        super::ROUTES
            .iter()
            .map(|(method, path)| (*method, actix_web::dev::ResourceDef::new(*path)))
            .collect()
    });
    let mut allowed: Vec<&'static str> = routes
        .iter()
        .filter(|(_, def)| def.is_match(path))
        .map(|(method, _)| *method)
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_address_lists_its_methods() {
        assert_eq!(allowed_methods("/login"), ["GET", "POST"]);
        assert_eq!(allowed_methods("/healthz"), ["GET"]);
        assert_eq!(allowed_methods("/assessments/12"), ["GET"]);
        assert!(allowed_methods("/no-such-thing").is_empty());
    }

    #[test]
    fn urlencode_keeps_paths_readable_and_escapes_the_rest() {
        assert_eq!(urlencode("/a/b?c=d&e"), "/a/b%3Fc%3Dd%26e");
        assert_eq!(urlencode("é"), "%C3%A9");
    }
}
