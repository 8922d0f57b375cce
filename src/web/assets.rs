//! Static files (stylesheet, scripts, images) compiled into the binary. Pages link them with
//! `?v=<digest of all assets>`, so a response whose `v` matches can be cached for a year; a
//! new release changes the digest and every browser fetches the new files.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// A short digest of every asset, computed once.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        let mut files: Vec<&include_dir::File<'_>> = Vec::new();
        collect(&ASSETS, &mut files);
        files.sort_by_key(|f| f.path());
        for f in files {
            hasher.update(f.path().to_string_lossy().as_bytes());
            hasher.update(f.contents());
        }
        hex::encode(hasher.finalize())[..12].to_string()
    })
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    out.extend(dir.files());
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

#[derive(serde::Deserialize)]
pub struct AssetQuery {
    v: Option<String>,
}

pub async fn serve(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AssetQuery>,
) -> HttpResponse {
    let path = path.into_inner();
    let Some(file) = (!path.contains(".."))
        .then(|| ASSETS.get_file(&path))
        .flatten()
    else {
        return HttpResponse::NotFound().finish();
    };
    let etag = format!("\"{}\"", version());
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return HttpResponse::NotModified().finish();
    }
    let cache = if query.v.as_deref() == Some(version()) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime.essence_str().to_string()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag))
        .body(file.contents())
}
