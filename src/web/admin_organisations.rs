//! The organisation registry for administrators: the list (filtered by kind, region and text,
//! 50 to a page, with each organisation's current ICB and care settings) and the CSV import.
//! The import is [`crate::services::registry::import_file`], the same code as `dma org import`: the file
//! is checked whole, every problem is listed on the page with its line and column, and nothing
//! is applied unless every row is good. Each organisation has its own page: its record, its
//! ICB history and its assessments, a form to change its name, care settings, region and ICB,
//! and a confirmed "close" (`registry::edit`, the import's rules for one row): a closed
//! organisation is left out of cycles opened after its closing date and keeps its results.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::schema::{organisation_parents, organisation_settings, organisations};
use crate::db::{DbConnection, MultiBackend};
use crate::domain::ods::OrgKind;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::registry::{self, ImportError, ImportReport, RowError};
use crate::web::auth::Authenticated;
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
                "href": format!("{BASE}/{id}"),
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
    page::render_with_status(
        status,
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
    )
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

/// One organisation as its page shows it.
struct Organisation {
    id: i64,
    ods_code: String,
    name: String,
    kind: String,
    region: Option<String>,
    opened_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
    updated_at: chrono::NaiveDateTime,
    settings: Vec<String>,
    /// (ICB code, ICB name, from, to), oldest first.
    history: Vec<(String, String, NaiveDate, Option<NaiveDate>)>,
    /// Every ICB, for the choice: (code, name).
    icbs: Vec<(String, String)>,
    /// (assessment id, cycle label, setting, status, closed).
    assessments: Vec<(i64, String, String, String, bool)>,
}

type OrgColumns = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    chrono::NaiveDateTime,
);

fn load_organisation(conn: &mut DbConnection, id: i64) -> Result<Organisation, AppError> {
    use crate::db::schema::{assessments, cycles};
    let (id, ods_code, name, kind, region, opened_on, closed_on, updated_at): OrgColumns =
        organisations::table
            .find(id)
            .select((
                organisations::id,
                organisations::ods_code,
                organisations::name,
                organisations::kind,
                organisations::region,
                organisations::opened_on,
                organisations::closed_on,
                organisations::updated_at,
            ))
            .first(conn)
            .optional()?
            .ok_or(AppError::NotFound)?;
    let settings = details(conn, &[id])?
        .settings
        .remove(&id)
        .unwrap_or_default();
    let parents: Vec<(i64, NaiveDate, Option<NaiveDate>)> = organisation_parents::table
        .filter(organisation_parents::organisation_id.eq(id))
        .order(organisation_parents::valid_from.asc())
        .select((
            organisation_parents::parent_id,
            organisation_parents::valid_from,
            organisation_parents::valid_to,
        ))
        .load(conn)?;
    let icbs: Vec<(i64, String, String)> = organisations::table
        .filter(organisations::kind.eq(OrgKind::Icb.as_str()))
        .order(organisations::name.asc())
        .select((
            organisations::id,
            organisations::ods_code,
            organisations::name,
        ))
        .load(conn)?;
    let history = parents
        .into_iter()
        .filter_map(|(parent, from, to)| {
            icbs.iter()
                .find(|(i, _, _)| *i == parent)
                .map(|(_, code, name)| (code.clone(), name.clone(), from, to))
        })
        .collect();
    let assessments: Vec<(i64, String, String, String, bool)> = assessments::table
        .inner_join(cycles::table)
        .filter(assessments::organisation_id.eq(id))
        .order(cycles::opens_on.desc())
        .select((
            assessments::id,
            cycles::label,
            assessments::setting,
            assessments::status,
            assessments::closed_at.is_not_null(),
        ))
        .load(conn)?;
    Ok(Organisation {
        id,
        ods_code,
        name,
        kind,
        region,
        opened_on,
        closed_on,
        updated_at,
        settings,
        history,
        icbs: icbs.into_iter().map(|(_, c, n)| (c, n)).collect(),
        assessments,
    })
}

fn long(d: NaiveDate) -> String {
    d.format("%-d %B %Y").to_string()
}

/// What the edit and close forms send.
#[derive(Deserialize, Default, Clone)]
pub struct OrgForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    seen: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    settings: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    parent_icb: String,
    #[serde(default)]
    parent_from: String,
    #[serde(default)]
    closed_on: String,
}

/// How to draw an organisation's page: which template, with what was typed, why it was
/// refused, with what status, after which change.
struct View<'a> {
    template: &'a str,
    typed: Option<&'a OrgForm>,
    errors: &'a [crate::domain::FieldError],
    status: StatusCode,
    done: Option<&'a str>,
}

/// The organisation's page (`template` "admin/organisation") or its closing confirmation
/// ("admin/organisation_close"), with what was typed and why it was refused, if it was.
async fn organisation_page(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    view: View<'_>,
) -> Result<HttpResponse, AppError> {
    let View {
        template,
        typed,
        errors,
        status,
        done,
    } = view;
    let org = state
        .db
        .read(move |conn| load_organisation(conn, id))
        .await?;
    let current = org.history.last().filter(|h| h.3.is_none());
    let field = |typed_value: Option<&String>, stored: String| -> String {
        typed_value.cloned().unwrap_or(stored)
    };
    let chosen_icb = field(
        typed.map(|t| &t.parent_icb),
        current.map(|c| c.0.clone()).unwrap_or_default(),
    );
    let error_for = |f: &str| {
        errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    let summary: Vec<Value> = errors
        .iter()
        .map(|e| {
            let known = [
                "name",
                "settings",
                "region",
                "parent_icb",
                "parent_from",
                "closed_on",
            ];
            let href = if known.contains(&e.path.as_str()) {
                format!("#{}", e.path)
            } else {
                "#name".to_string()
            };
            json!({"href": href, "message": e.message})
        })
        .collect();
    let today = Utc::now().date_naive();
    let base = format!("{BASE}/{}", org.id);
    let flash = match done {
        Some("saved") => json!({"kind": "success", "message": "The organisation was saved."}),
        Some("closed") => {
            json!({"kind": "success", "message": "The organisation is closed: cycles opened after its closing date leave it out. Its results are kept."})
        }
        _ => Value::Null,
    };
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        template,
        &org.name,
        json!({
            "base": base, "ods_code": org.ods_code, "name": field(typed.map(|t| &t.name), org.name.clone()),
            "stored_name": org.name,
            "kind": capitalised(&kind_label(&org.kind)),
            "is_icb": org.kind == OrgKind::Icb.as_str(),
            "region": field(typed.map(|t| &t.region), org.region.clone().unwrap_or_default()),
            "settings": field(typed.map(|t| &t.settings), org.settings.join(";")),
            "settings_text": org.settings.join(", "),
            "opened_on": org.opened_on.map(long),
            "closed_on": org.closed_on.map(long),
            "closed": org.closed_on.is_some(),
            "close_date": field(typed.map(|t| &t.closed_on), today.format("%Y-%m-%d").to_string()),
            "parent_from": field(typed.map(|t| &t.parent_from), String::new()),
            "seen": typed.map(|t| t.seen.clone()).unwrap_or_else(|| registry::seen_stamp(org.updated_at)),
            "icbs": org.icbs.iter().map(|(code, name)| json!({"value": code, "label": format!("{name} ({code})"), "selected": *code == chosen_icb})).collect::<Vec<_>>(),
            "history": org.history.iter().map(|(code, name, from, to)| json!({"icb": format!("{name} ({code})"), "from": long(*from), "to": to.map(long)})).collect::<Vec<_>>(),
            "assessments": org.assessments.iter().map(|(aid, cycle, setting, st, closed)| {
                let (label, colour) = crate::services::assessments::status_label_closed(st, *closed);
                json!({"href": format!("/assessments/{aid}"), "cycle": cycle, "setting": setting, "status_label": label, "status_colour": colour})
            }).collect::<Vec<_>>(),
            "name_error": error_for("name"), "settings_error": error_for("settings"), "region_error": error_for("region"),
            "parent_icb_error": error_for("parent_icb"), "parent_from_error": error_for("parent_from"), "closed_on_error": error_for("closed_on"),
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "flash": flash,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": BASE, "label": "Organisations"}],
        }),
    )
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    organisation_page(
        &state,
        &auth,
        path.into_inner(),
        View {
            template: "admin/organisation",
            typed: None,
            errors: &[],
            status: StatusCode::OK,
            done: query.done.as_deref(),
        },
    )
    .await
}

pub async fn close_form(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    organisation_page(
        &state,
        &auth,
        path.into_inner(),
        View {
            template: "admin/organisation_close",
            typed: None,
            errors: &[],
            status: StatusCode::OK,
            done: None,
        },
    )
    .await
}

/// Apply the edit or the close; on refusal, the same page with the errors beside the fields.
async fn change(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    form: OrgForm,
    closing: bool,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let template = if closing {
        "admin/organisation_close"
    } else {
        "admin/organisation"
    };
    let closed_on = form.closed_on.trim().to_string();
    if closing && closed_on.is_empty() {
        let e = crate::domain::FieldError::new(
            "closed_on",
            "Enter the date the organisation closes, like 2027-03-31",
        );
        return organisation_page(
            state,
            auth,
            id,
            View {
                template,
                typed: Some(&form),
                errors: &[e],
                status: StatusCode::UNPROCESSABLE_ENTITY,
                done: None,
            },
        )
        .await;
    }
    let actor = auth.user.id;
    let seen = form.seen.clone();
    let stored_name = if closing {
        let org = state
            .db
            .read(move |conn| load_organisation(conn, id))
            .await?;
        Some(org.name)
    } else {
        None
    };
    let edit = if closing {
        registry::OrgEdit {
            name: stored_name.unwrap_or_default(),
            closed_on: Some(closed_on),
            ..registry::OrgEdit::default()
        }
    } else {
        registry::OrgEdit {
            name: form.name.trim().to_string(),
            settings: Some(form.settings.trim().to_string()),
            region: Some(form.region.trim().to_string()),
            parent_icb: Some(form.parent_icb.trim().to_string()),
            parent_from: Some(form.parent_from.trim().to_string()),
            closed_on: None,
        }
    };
    let today = Utc::now().date_naive();
    match state
        .db
        .write(move |conn| registry::edit(conn, Some(actor), id, &seen, &edit, today))
        .await
    {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!(
                    "{BASE}/{id}?done={}",
                    if closing { "closed" } else { "saved" }
                ),
            ))
            .finish()),
        Err(AppError::Validation(errors)) => {
            organisation_page(
                state,
                auth,
                id,
                View {
                    template,
                    typed: Some(&form),
                    errors: &errors,
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    done: None,
                },
            )
            .await
        }
        Err(AppError::Conflict(message)) => {
            // Shown against what is stored now, so the person sees the other change.
            let e = crate::domain::FieldError::new("name", message);
            organisation_page(
                state,
                auth,
                id,
                View {
                    template,
                    typed: None,
                    errors: &[e],
                    status: StatusCode::CONFLICT,
                    done: None,
                },
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub async fn update(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<OrgForm>,
) -> Result<HttpResponse, AppError> {
    change(&state, &auth, path.into_inner(), form.into_inner(), false).await
}

pub async fn close(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<OrgForm>,
) -> Result<HttpResponse, AppError> {
    change(&state, &auth, path.into_inner(), form.into_inner(), true).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(list))
        .route("/admin/organisations/import", web::post().to(import))
        .route("/admin/organisations/{id}", web::get().to(show))
        .route("/admin/organisations/{id}", web::post().to(update))
        .route("/admin/organisations/{id}/close", web::get().to(close_form))
        .route("/admin/organisations/{id}/close", web::post().to(close));
}
