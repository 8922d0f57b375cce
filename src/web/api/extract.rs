//! What every API handler shares: the bearer-token gate in front of `/api/v1`, bodies read
//! with a size limit (413 before anything is parsed), JSON parsed with the path of whatever
//! does not fit (so a client learns *which* field is wrong), and pages of results with links.
//!
//! The gate runs before any extractor, so a request without a valid token is answered 401
//! whatever its body, and an authenticated caller's body problems come after.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::FieldError;
use crate::error::AppError;
use crate::web::auth::{authenticate_bearer, ApiUser};
use crate::web::listing;

/// The largest JSON body the API reads (uploads of question sets and registry files have
/// their own, larger limits).
pub const JSON_LIMIT: usize = 1024 * 1024;
/// Items per page when the caller does not say.
pub const DEFAULT_PER_PAGE: i64 = 50;
/// The most items a page may hold.
pub const MAX_PER_PAGE: i64 = 200;

/// Middleware on `/api/v1`: resolve `Authorization: Bearer` or answer 401. Session cookies
/// are never looked at, so a browser cannot be made to write through the API (no CSRF).
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match authenticate_bearer(req.request()).await {
        Ok(Some(user)) => {
            req.extensions_mut().insert::<ApiUser>(user);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Ok(None) => Ok(req.error_response(AppError::Unauthenticated)),
        Err(e) => Ok(req.error_response(e)),
    }
}

/// The body's media type without parameters, lower-cased (`application/json`).
fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Refuse (415) unless the body's media type is one of `accepted`; `+json` types count as
/// `application/json`.
pub fn require_media(req: &HttpRequest, accepted: &[&str]) -> Result<(), AppError> {
    let media = media_type(req);
    let json_like = media.starts_with("application/") && media.ends_with("+json");
    if accepted.contains(&media.as_str()) || (json_like && accepted.contains(&"application/json")) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "Send the body with Content-Type {}{}.",
            accepted.join(" or "),
            if media.is_empty() {
                String::new()
            } else {
                format!(", not {media}")
            }
        )))
    }
}

/// Read the whole body, refusing (413) as soon as it is larger than `limit` bytes.
pub async fn read_body<S, E>(
    req: &HttpRequest,
    payload: &mut S,
    limit: usize,
) -> Result<Vec<u8>, AppError>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(AppError::PayloadTooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("The body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A body of a question set or registry file: the media type must be one of `accepted`,
/// and no NUL bytes (which no database text column stores).
pub async fn read_document(
    req: &HttpRequest,
    payload: &mut actix_web::web::Payload,
    accepted: &[&str],
    limit: usize,
) -> Result<Vec<u8>, AppError> {
    require_media(req, accepted)?;
    let body = read_body(req, payload, limit).await?;
    if body.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "",
            "the body is empty: send the file's contents",
        )]));
    }
    if body.contains(&0) {
        return Err(AppError::Validation(vec![FieldError::new(
            "",
            "the file contains NUL bytes; send it as text",
        )]));
    }
    Ok(body)
}

/// The first string (or key) holding a NUL character, as a path like `answers[2].value`.
fn nul_path(value: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some(at.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(v, &here)
            }
        }),
        _ => None,
    }
}

/// Parse JSON: malformed text is a 400 saying where; well-formed JSON of the wrong shape is
/// a 422 naming the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| AppError::BadRequest(format!("The body is not valid JSON: {e}.")))?;
    if let Some(path) = nul_path(&value, "") {
        return Err(AppError::Validation(vec![FieldError::new(
            path,
            "must not contain NUL characters",
        )]));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        AppError::Validation(vec![FieldError::new(path, e.into_inner().to_string())])
    })
}

/// A JSON request body of at most [`JSON_LIMIT`] bytes, sent as `application/json`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            require_media(&req, &["application/json"])?;
            let bytes = read_body(&req, &mut payload, JSON_LIMIT).await?;
            parse_json(&bytes).map(ApiJson)
        })
    }
}

/// `?page=&per_page=` on every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The page to return, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 200 (50 when not given).
    #[param(minimum = 1, maximum = 200)]
    pub per_page: Option<i64>,
}

impl PageParams {
    /// The page and page size asked for; out of range is a 400 that says the range.
    pub fn checked(&self) -> Result<(i64, i64), AppError> {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=1_000_000).contains(&page) {
            return Err(AppError::BadRequest(format!(
                "page must be a whole number from 1 to 1000000, not {page}."
            )));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(AppError::BadRequest(format!(
                "per_page must be from 1 to {MAX_PER_PAGE}, not {per_page}."
            )));
        }
        Ok((page, per_page))
    }
}

/// Links to other pages of the same list, with the same filters.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageLinks {
    /// This page.
    #[serde(rename = "self")]
    #[schema(rename = "self")]
    pub this: String,
    pub first: String,
    pub last: String,
    /// The previous page; null on the first.
    pub prev: Option<String>,
    /// The next page; null on the last.
    pub next: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    /// Items in the whole list.
    pub total: i64,
    pub links: PageLinks,
}

impl<T> Page<T> {
    /// A page already cut from the list (by the database), with its links.
    pub fn new(
        items: Vec<T>,
        (page, per_page): (i64, i64),
        total: i64,
        base: &str,
        filters: &[(&str, &str)],
    ) -> Self {
        let per_page_text = per_page.to_string();
        let mut all: Vec<(&str, &str)> = filters.to_vec();
        if per_page != DEFAULT_PER_PAGE {
            all.push(("per_page", per_page_text.as_str()));
        }
        let last = listing::page_count(total, per_page);
        let link = |p: i64| listing::link(base, &all, p);
        Page {
            items,
            page,
            per_page,
            total,
            links: PageLinks {
                this: link(page),
                first: link(1),
                last: link(last),
                prev: (page > 1).then(|| link((page - 1).min(last))),
                next: (page < last).then(|| link(page + 1)),
            },
        }
    }

    /// A page cut from the whole list in memory.
    pub fn slice(all: Vec<T>, paging: (i64, i64), base: &str, filters: &[(&str, &str)]) -> Self {
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let skip = usize::try_from(listing::offset_by(paging.0, paging.1)).unwrap_or(usize::MAX);
        let take = usize::try_from(paging.1).unwrap_or(0);
        let items = all.into_iter().skip(skip).take(take).collect();
        Page::new(items, paging, total, base, filters)
    }
}

/// Validation errors from a service, with their paths renamed to the body's field names
/// (`rename` returns `None` to keep a path as it is); other errors unchanged.
pub fn rename_paths(e: AppError, rename: impl Fn(&str) -> Option<String>) -> AppError {
    match e {
        AppError::Validation(errors) => AppError::Validation(
            errors
                .into_iter()
                .map(|mut f| {
                    if let Some(path) = rename(&f.path) {
                        f.path = path;
                    }
                    f
                })
                .collect(),
        ),
        other => other,
    }
}

/// A stored UTC time as the API writes it: RFC 3339 with `Z`.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A path segment naming a question set or version: anything with control characters or
/// longer than any key can be is no such thing (404), before it reaches a query.
pub fn plain_segment(s: &str) -> Result<&str, AppError> {
    if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
        Err(AppError::NotFound)
    } else {
        Ok(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[allow(dead_code)]
        items: Vec<Item>,
    }
    #[derive(Debug, Deserialize)]
    struct Item {
        #[allow(dead_code)]
        n: i64,
    }

    #[test]
    fn json_errors_name_the_field_or_the_place() {
        match parse_json::<Body>(br#"{"items":[{"n":1},{"n":"x"}]}"#) {
            Err(AppError::Validation(e)) => assert_eq!(e[0].path, "items[1].n"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_json::<Body>(b"{\"items\": ["),
            Err(AppError::BadRequest(_))
        ));
        match parse_json::<Body>(br#"{"items":[{"n":1,"s":"a\u0000b"}]}"#) {
            Err(AppError::Validation(e)) => assert_eq!(e[0].path, "items[0].s"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pages_link_to_their_neighbours_and_keep_filters() {
        let p = Page::slice(
            (1..=120).collect::<Vec<i64>>(),
            (2, 50),
            "/api/v1/x",
            &[("q", "a b")],
        );
        assert_eq!(p.items.first(), Some(&51));
        assert_eq!(p.total, 120);
        assert_eq!(p.links.prev.as_deref(), Some("/api/v1/x?q=a%20b"));
        assert_eq!(p.links.next.as_deref(), Some("/api/v1/x?q=a%20b&page=3"));
        assert_eq!(p.links.last, "/api/v1/x?q=a%20b&page=3");
        let small = Page::slice(vec![1, 2, 3], (1, 2), "/x", &[]);
        assert_eq!(small.links.next.as_deref(), Some("/x?per_page=2&page=2"));
        assert!(small.links.prev.is_none());
        assert!(PageParams {
            page: Some(0),
            per_page: None
        }
        .checked()
        .is_err());
        assert!(PageParams {
            page: None,
            per_page: Some(201)
        }
        .checked()
        .is_err());
    }
}
