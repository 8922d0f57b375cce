//! Input no handler should ever see: a NUL character in the query string or in a form body.
//! PostgreSQL cannot store NUL in text (SQLite would keep it, silently), and no name, answer or
//! filter legitimately contains one, so every route refuses it here, in one place, with a 400
//! page (or problem document under `/api`), before anything is parsed or stored. JSON bodies
//! are checked by the API's body reader, uploaded files by their loaders.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpMessage;
use futures_util::StreamExt;

use crate::error::AppError;

const MESSAGE: &str =
    "The request contains a NUL character (code 0), which no field accepts. Remove it and try again.";

/// Whether urlencoded text holds a NUL, encoded (`%00`) or raw.
fn has_nul(text: &[u8]) -> bool {
    text.contains(&0) || text.windows(3).any(|w| w == b"%00")
}

fn is_form(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Middleware: refuse a NUL in the query or a form body. A form body is read here (up to
/// `limit` bytes; beyond it, 413 as the form extractor would) and handed on unchanged.
pub async fn refuse_nul(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    limit: usize,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if has_nul(req.query_string().as_bytes()) {
        return Ok(req.error_response(AppError::BadRequest(MESSAGE.into())));
    }
    if is_form(&req) {
        let mut payload = req.take_payload();
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk?;
            if body.len() + chunk.len() > limit {
                return Ok(req.error_response(AppError::PayloadTooLarge(limit)));
            }
            body.extend_from_slice(&chunk);
        }
        if has_nul(&body) {
            return Ok(req.error_response(AppError::BadRequest(MESSAGE.into())));
        }
        req.set_payload(Payload::from(Bytes::from(body)));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::has_nul;

    #[test]
    fn finds_encoded_and_raw_nuls_only() {
        assert!(has_nul(b"name=Nia%00Patel"));
        assert!(has_nul(b"name=Nia\0"));
        assert!(!has_nul(b"name=Nia%2000&x=%0A"));
        assert!(!has_nul(b""));
    }
}
