//! The organisation registry for administrators: the list (filtered by kind, region and text,
//! 50 to a page, with each organisation's current ICB and care settings) and the CSV import.
//! The import is [`crate::registry::import_file`], the same code as `dma org import`: the file
//! is checked whole, every problem is listed on the page with its line and column, and nothing
//! is applied unless every row is good.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::roles::Action;
use crate::auth::session::Authenticated;
use crate::db::schema::{organisation_parents, organisation_settings, organisations};
use crate::db::{DbConnection, MultiBackend};
use crate::domain::ods::OrgKind;
use crate::error::AppError;
use crate::registry::{self, ImportError, ImportReport, RowError};
use crate::web::listing::{self, like_escape, lower, PAGE_SIZE};
use crate::web::{page, AppState};

const BASE: &str = "/admin/organisations";

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub q: String,
    page: Option<String>,
    /// After an import: what it did.
    created: Option<usize>,
    updated: Option<usize>,
    unchanged: Option<usize>,
    parent_changes: Option<usize>,
}

impl ListQuery {
    pub fn filters(&self) -> [(&'static str, &str); 3] {
        [
            ("kind", self.kind.as_str()),
            ("region", self.region.as_str()),
            ("q", self.q.as_str()),
        ]
    }

    fn report(&self) -> Option<ImportReport> {
        Some(ImportReport {
            created: self.created?,
            updated: self.updated?,
            unchanged: self.unchanged?,
            parent_changes: self.parent_changes.unwrap_or(0),
        })
    }
}

/// id, ODS code, name, kind, region.
pub type OrgRow = (i64, String, String, String, Option<String>);

fn filtered<'a>(query: &ListQuery) -> organisations::BoxedQuery<'a, MultiBackend> {
    let mut q = organisations::table.into_boxed();
    if let Some(kind) = OrgKind::ALL
        .into_iter()
        .find(|k| k.as_str() == query.kind.trim())
    {
        q = q.filter(organisations::kind.eq(kind.as_str()));
    }
    let region = query.region.trim();
    if !region.is_empty() {
        q = q.filter(organisations::region.eq(region.to_string()));
    }
    let text = query.q.trim();
    if !text.is_empty() {
        let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
        let code = format!("{}%", like_escape(&text.to_uppercase()));
        q = q.filter(
            lower(organisations::name)
                .like(pattern)
                .escape('\\')
                .or(organisations::ods_code.like(code).escape('\\')),
        );
    }
    q
}

pub struct Listing {
    pub rows: Vec<OrgRow>,
    pub total: i64,
    pub regions: Vec<String>,
    pub details: Details,
}

/// What the list shows beside each organisation: its care settings and its current ICB.
pub struct Details {
    pub settings: HashMap<i64, Vec<String>>,
    /// Organisation id -> the ICB's (ODS code, name).
    pub icbs: HashMap<i64, (String, String)>,
}

/// One page of `per_page` organisations matching the query, in ODS code order.
pub fn load_listing(
    conn: &mut DbConnection,
    query: &ListQuery,
    page: i64,
    per_page: i64,
) -> Result<Listing, AppError> {
    let total: i64 = filtered(query).count().get_result(conn)?;
    let rows: Vec<OrgRow> = filtered(query)
        .order(organisations::ods_code.asc())
        .limit(per_page)
        .offset(listing::offset_by(page, per_page))
        .select((
            organisations::id,
            organisations::ods_code,
            organisations::name,
            organisations::kind,
            organisations::region,
        ))
        .load(conn)?;
    let regions: Vec<Option<String>> = organisations::table
        .select(organisations::region)
        .filter(organisations::region.is_not_null())
        .distinct()
        .order(organisations::region.asc())
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    Ok(Listing {
        details: details(conn, &ids)?,
        rows,
        total,
        regions: regions.into_iter().flatten().collect(),
    })
}

/// The care settings and current ICB of each of `ids`.
pub fn details(conn: &mut DbConnection, ids: &[i64]) -> Result<Details, AppError> {
    let mut settings: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, setting) in organisation_settings::table
        .filter(organisation_settings::organisation_id.eq_any(ids))
        .order(organisation_settings::setting.asc())
        .select((
            organisation_settings::organisation_id,
            organisation_settings::setting,
        ))
        .load::<(i64, String)>(conn)?
    {
        settings.entry(id).or_default().push(setting);
    }
    let today = Utc::now().date_naive();
    let current: Vec<(i64, i64)> = organisation_parents::table
        .filter(organisation_parents::organisation_id.eq_any(ids))
        .filter(organisation_parents::valid_from.le(today))
        .filter(
            organisation_parents::valid_to
                .is_null()
                .or(organisation_parents::valid_to.gt(today)),
        )
        .order(organisation_parents::valid_from.asc())
        .select((
            organisation_parents::organisation_id,
            organisation_parents::parent_id,
        ))
        .load(conn)?;
    let parent_ids: Vec<i64> = current.iter().map(|(_, p)| *p).collect();
    let parents: HashMap<i64, (String, String)> = organisations::table
        .filter(organisations::id.eq_any(&parent_ids))
        .select((
            organisations::id,
            organisations::ods_code,
            organisations::name,
        ))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, code, name)| (id, (code, name)))
        .collect();
    // Ordered by start, so the latest membership in force wins.
    let icbs = current
        .into_iter()
        .filter_map(|(org, parent)| parents.get(&parent).map(|p| (org, p.clone())))
        .collect();
    Ok(Details { settings, icbs })
}

fn kind_label(kind: &str) -> String {
    OrgKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .map(|k| k.label().to_string())
        .unwrap_or_else(|| kind.to_string())
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn list_page(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    query: ListQuery,
    problems: &[RowError],
    file_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let page_no = listing::page_number(query.page.as_deref());
    let query = std::sync::Arc::new(query);
    let q = query.clone();
    let found = state
        .db
        .read(move |conn| load_listing(conn, &q, page_no, PAGE_SIZE))
        .await?;
    let rows: Vec<Value> = found
        .rows
        .iter()
        .map(|(id, code, name, kind, region)| {
            let icb = found.details.icbs.get(id);
            json!({
                "ods_code": code, "name": name, "kind": capitalised(&kind_label(kind)),
                "region": region,
                "icb_code": icb.map(|i| i.0.clone()), "icb_name": icb.map(|i| i.1.clone()),
                "settings": found.details.settings.get(id).map(|s| s.join(", ")),
            })
        })
        .collect();
    let kinds: Vec<Value> = OrgKind::ALL
        .into_iter()
        .map(|k| json!({"value": k.as_str(), "label": capitalised(k.label()), "selected": k.as_str() == query.kind.trim()}))
        .collect();
    let regions: Vec<Value> = found
        .regions
        .iter()
        .map(|r| json!({"value": r, "selected": r == query.region.trim()}))
        .collect();
    let problem_rows: Vec<Value> = problems
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"id": format!("problem-{i}"), "line": p.line, "column": p.column, "message": p.message})
        })
        .collect();
    let mut errors: Vec<Value> = problems
        .iter()
        .enumerate()
        .take(10)
        .map(|(i, p)| json!({"href": format!("#problem-{i}"), "message": p.to_string()}))
        .collect();
    if problems.len() > 10 {
        errors.push(json!({"href": "#problems", "message": format!("and {} more problems, listed below", problems.len() - 10)}));
    }
    if let Some(message) = &file_error {
        errors.push(json!({"href": "#file", "message": message}));
    }
    let flash = match query.report() {
        Some(r) => json!({"kind": "success", "message": format!(
            "The registry was imported: {} created, {} updated ({} with a new ICB), {} unchanged.",
            r.created, r.updated, r.parent_changes, r.unchanged
        )}),
        None => Value::Null,
    };
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "admin/organisations",
        "Organisations",
        json!({
            "organisations": rows,
            "kinds": kinds,
            "regions": regions,
            "q": query.q.trim(),
            "filtered": query.filters().iter().any(|(_, v)| !v.trim().is_empty()),
            "pagination": listing::pagination(BASE, &query.filters(), page_no, found.total),
            "problems": problem_rows,
            "problem_count": problems.len(),
            "file_error": file_error,
            "errors": if errors.is_empty() { Value::Null } else { json!(errors) },
            "flash": flash,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
            "max_upload": crate::error::human_bytes(upload_limit(state)),
            "columns": registry::COLUMNS.join(", "),
        }),
    )?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// The largest registry file accepted, from the pages or the API.
pub fn upload_limit(state: &AppState) -> usize {
    state
        .settings
        .max_upload_bytes
        .min(registry::MAX_FILE_BYTES)
}

pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    list_page(&state, &auth, StatusCode::OK, query.into_inner(), &[], None).await
}

/// The fields of the upload form.
struct Upload {
    csrf_token: String,
    file: Vec<u8>,
}

/// Read the form's parts, refusing any part larger than `limit`.
async fn read_upload(payload: Multipart, limit: usize) -> Result<Upload, AppError> {
    let mut parts = crate::web::upload::read_parts(payload, limit, &["csrf_token", "file"]).await?;
    Ok(Upload {
        csrf_token: crate::web::upload::text(&parts, "csrf_token"),
        file: parts.remove("file").unwrap_or_default(),
    })
}

pub async fn import(
    state: web::Data<AppState>,
    auth: Authenticated,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let limit = upload_limit(&state);
    let upload = match read_upload(payload, limit).await {
        Ok(u) => u,
        // The CSRF field comes first in the form, but a part that is too large stops the
        // reading before it can be checked; nothing is applied, so the page can still say why.
        Err(AppError::PayloadTooLarge(limit)) => {
            return list_page(
                &state,
                &auth,
                StatusCode::PAYLOAD_TOO_LARGE,
                ListQuery::default(),
                &[],
                Some(format!(
                    "The file is larger than {}. Split it into several files and import them in turn.",
                    crate::error::human_bytes(limit)
                )),
            )
            .await;
        }
        Err(e) => return Err(e),
    };
    auth.check_csrf(&upload.csrf_token)?;
    if upload.file.is_empty() {
        return list_page(
            &state,
            &auth,
            StatusCode::UNPROCESSABLE_ENTITY,
            ListQuery::default(),
            &[],
            Some("Select a CSV file of organisations to import".into()),
        )
        .await;
    }
    match registry::import_file(&state.db, upload.file, Some(auth.user.id)).await {
        Ok(r) => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!(
                    "{BASE}?created={}&updated={}&unchanged={}&parent_changes={}",
                    r.created, r.updated, r.unchanged, r.parent_changes
                ),
            ))
            .finish()),
        Err(ImportError::Rows(problems)) => {
            list_page(
                &state,
                &auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                ListQuery::default(),
                &problems,
                None,
            )
            .await
        }
        Err(ImportError::App(AppError::Conflict(message))) => {
            list_page(
                &state,
                &auth,
                StatusCode::CONFLICT,
                ListQuery::default(),
                &[],
                Some(message),
            )
            .await
        }
        Err(ImportError::App(e)) => Err(e),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(list))
        .route("/admin/organisations/import", web::post().to(import));
}
