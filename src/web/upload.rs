//! Reading `multipart/form-data` uploads (question sets, registry files) with a size limit on
//! every part, so an oversized or endless upload is refused with a clear message instead of
//! being held in memory. Parts other than the wanted ones are read and dropped.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use futures_util::StreamExt;

use crate::error::AppError;

/// The wanted parts of a form, by name; a part larger than `limit` bytes is refused.
pub async fn read_parts(
    mut payload: Multipart,
    limit: usize,
    wanted: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, AppError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        AppError::BadRequest(format!("The upload could not be read: {e}"))
    };
    let mut parts = BTreeMap::new();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| unreadable(&e))?;
        let name = field.name().unwrap_or_default().to_string();
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| unreadable(&e))?;
            if data.len() + chunk.len() > limit {
                return Err(AppError::PayloadTooLarge(limit));
            }
            data.extend_from_slice(&chunk);
        }
        if wanted.contains(&name.as_str()) {
            parts.insert(name, data);
        }
    }
    Ok(parts)
}

/// A text part (such as `csrf_token`), empty when absent.
pub fn text(parts: &BTreeMap<String, Vec<u8>>, name: &str) -> String {
    parts
        .get(name)
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default()
}
