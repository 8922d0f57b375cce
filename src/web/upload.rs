//! Reading `multipart/form-data` uploads (question sets and registry files held in memory,
//! evidence files streamed to a sink) with a size limit on every part and on the whole form,
//! and a limit on the number of parts, so an oversized or endless upload (one huge part, or
//! endless parts each under the limit) is refused with a clear message instead of being read
//! for ever or held in memory. Parts other than the wanted ones are read, counted and dropped.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use futures_util::StreamExt;

use crate::error::AppError;

/// Room for the form's small fields (CSRF token, check boxes) beside a file of `limit` bytes.
const SMALL_FIELDS_BYTES: usize = 64 * 1024;
/// No upload form has more than a handful of fields.
const MAX_PARTS: usize = 16;

/// The wanted parts of a form, by name; a part larger than `limit` bytes, a form larger than
/// `limit` plus [`SMALL_FIELDS_BYTES`] in all, or one of more than [`MAX_PARTS`] parts is
/// refused.
pub async fn read_parts(
    payload: Multipart,
    limit: usize,
    wanted: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, AppError> {
    let total_limit = limit.saturating_add(SMALL_FIELDS_BYTES);
    read_form(payload, limit, total_limit, wanted, None)
        .await
        .map(|form| form.fields)
}

/// Where [`read_streamed`] sends the file part: each piece as it arrives. The sink keeps its
/// own size limit and answers 413 (or any error) to stop the upload.
pub type Sink<'a> = &'a mut dyn FnMut(&[u8]) -> Result<(), AppError>;

/// A form whose file part was streamed: the wanted small fields, and the file name the sender
/// gave the file part (`None` when there was no file part).
pub struct Streamed {
    pub fields: BTreeMap<String, Vec<u8>>,
    pub file_name: Option<String>,
}

/// After a refused file, how much more of the request is read and dropped so the sender
/// gets the refusal instead of a broken connection (a browser still sending when the server
/// closes shows a network error, not the page saying why).
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Read a form with one file (evidence): the part named `file_field` goes to `sink` a piece at
/// a time, never held whole; the other parts are small fields, at most
/// [`SMALL_FIELDS_BYTES`] in all, of which the `wanted` ones are kept.
pub async fn read_streamed(
    payload: Multipart,
    wanted: &[&str],
    file_field: &str,
    sink: Sink<'_>,
) -> Result<Streamed, AppError> {
    read_form(
        payload,
        SMALL_FIELDS_BYTES,
        SMALL_FIELDS_BYTES,
        wanted,
        Some((file_field, sink)),
    )
    .await
}

async fn read_form(
    mut payload: Multipart,
    part_limit: usize,
    total_limit: usize,
    wanted: &[&str],
    mut streamed: Option<(&str, Sink<'_>)>,
) -> Result<Streamed, AppError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        AppError::BadRequest(format!("The upload could not be read: {e}"))
    };
    let (mut total, mut count) = (0usize, 0usize);
    let mut form = Streamed {
        fields: BTreeMap::new(),
        file_name: None,
    };
    while let Some(field) = payload.next().await {
        count += 1;
        if count > MAX_PARTS {
            return Err(AppError::BadRequest(format!(
                "The upload has more than {MAX_PARTS} parts; this form sends only a few."
            )));
        }
        let mut field = field.map_err(|e| unreadable(&e))?;
        let name = field.name().unwrap_or_default().to_string();
        if let Some((_, sink)) = streamed.as_mut().filter(|(f, _)| *f == name) {
            form.file_name = Some(
                field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .unwrap_or_default()
                    .to_string(),
            );
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| unreadable(&e))?;
                if let Err(refused) = sink(&chunk) {
                    drain(&mut payload, field).await;
                    return Err(refused);
                }
            }
            continue;
        }
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| unreadable(&e))?;
            total = total.saturating_add(chunk.len());
            if data.len() + chunk.len() > part_limit || total > total_limit {
                return Err(AppError::PayloadTooLarge(part_limit));
            }
            data.extend_from_slice(&chunk);
        }
        if wanted.contains(&name.as_str()) {
            form.fields.insert(name, data);
        }
    }
    Ok(form)
}

/// Read and drop the rest of a refused upload, up to [`DRAIN_BYTES`]. Each field is dropped
/// before the next is asked for: the multipart reader waits while one is alive.
async fn drain(payload: &mut Multipart, field: actix_multipart::Field) {
    let mut dropped = 0usize;
    let mut current = Some(field);
    while let Some(mut field) = current.take() {
        while let Some(Ok(chunk)) = field.next().await {
            dropped += chunk.len();
            if dropped > DRAIN_BYTES {
                return;
            }
        }
        drop(field);
        current = match payload.next().await {
            Some(Ok(next)) => Some(next),
            _ => None,
        };
    }
}

/// A text part (such as `csrf_token`), empty when absent.
pub fn text(parts: &BTreeMap<String, Vec<u8>>, name: &str) -> String {
    parts
        .get(name)
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default()
}
