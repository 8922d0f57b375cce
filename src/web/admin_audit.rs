//! The audit log, newest first, for administrators and auditors (`Action::ReadAuditLog`):
//! filtered by action (a prefix, so `user.` finds every change to accounts), entity type, the
//! actor's email and a date range, 50 entries to a page, each with the values before and
//! after. Read-only: the database refuses changes to the log's rows.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::schema::{audit_log, organisations};
use crate::db::{DbConnection, MultiBackend};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::web::auth::Authenticated;
use crate::web::listing::{self, like_escape, PAGE_SIZE};
use crate::web::{page, AppState};

const BASE: &str = "/admin/audit";

#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    page: Option<String>,
}

impl AuditQuery {
    fn filters(&self) -> [(&'static str, &str); 5] {
        [
            ("action", self.action.as_str()),
            ("entity", self.entity.as_str()),
            ("actor", self.actor.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ]
    }
}

/// The filters, checked: dates that do not parse are reported and left out.
struct Filters {
    action: String,
    entity: String,
    actor: String,
    from: Option<NaiveDateTime>,
    /// Exclusive: the start of the day after the "to" date.
    until: Option<NaiveDateTime>,
}

fn date(raw: &str, field: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(field, "Enter a real date, like 2026-04-01"));
            None
        }
    }
}

fn check(query: &AuditQuery) -> (Filters, Vec<FieldError>) {
    let mut errors = Vec::new();
    let from = date(&query.from, "from", &mut errors);
    let to = date(&query.to, "to", &mut errors);
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            errors.push(FieldError::new(
                "to",
                "The end date must be the same as or after the start date",
            ));
        }
    }
    let filters = Filters {
        action: query.action.trim().to_lowercase(),
        entity: query.entity.trim().to_lowercase(),
        actor: query.actor.trim().to_lowercase(),
        from: from.and_then(|d| d.and_hms_opt(0, 0, 0)),
        until: to.and_then(|d| (d + Duration::days(1)).and_hms_opt(0, 0, 0)),
    };
    (filters, errors)
}

fn filtered<'a>(f: &Filters) -> audit_log::BoxedQuery<'a, MultiBackend> {
    let mut q = audit_log::table.into_boxed();
    if !f.action.is_empty() {
        q = q.filter(
            audit_log::action
                .like(format!("{}%", like_escape(&f.action)))
                .escape('\\'),
        );
    }
    if !f.entity.is_empty() {
        q = q.filter(audit_log::entity_type.eq(f.entity.clone()));
    }
    if !f.actor.is_empty() {
        q = q.filter(audit_log::actor_label.eq(f.actor.clone()));
    }
    if let Some(from) = f.from {
        q = q.filter(audit_log::at.ge(from));
    }
    if let Some(until) = f.until {
        q = q.filter(audit_log::at.lt(until));
    }
    q
}

type LogRow = (
    i64,
    NaiveDateTime,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// One page of entries, the total that match, and the ODS codes of the organisations named.
type Page = (Vec<LogRow>, i64, HashMap<i64, String>);

fn load(conn: &mut DbConnection, f: &Filters, page: i64) -> Result<Page, AppError> {
    let total: i64 = filtered(f).count().get_result(conn)?;
    let rows: Vec<LogRow> = filtered(f)
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(PAGE_SIZE)
        .offset(listing::offset(page))
        .select((
            audit_log::id,
            audit_log::at,
            audit_log::actor_label,
            audit_log::action,
            audit_log::entity_type,
            audit_log::entity_id,
            audit_log::organisation_id,
            audit_log::before_value,
            audit_log::after_value,
            audit_log::ip,
        ))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.6).collect();
    let codes = organisations::table
        .filter(organisations::id.eq_any(ids))
        .select((organisations::id, organisations::ods_code))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    Ok((rows, total, codes))
}

/// A stored JSON value, indented for reading; text that is not JSON is shown as it is.
fn pretty(raw: &Option<String>) -> Option<String> {
    raw.as_ref().map(|s| {
        serde_json::from_str::<Value>(s)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| s.clone())
    })
}

/// Where the record an entry is about can be seen, for the kinds that have a page.
fn entity_href(entity: &str, id: Option<&str>) -> Option<String> {
    let id: i64 = id?.parse().ok()?;
    match entity {
        "assessment" => Some(format!("/assessments/{id}")),
        "organisation" => Some(format!("/reports/organisations/{id}")),
        _ => None,
    }
}

pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::ReadAuditLog)?;
    let query = query.into_inner();
    let page_no = listing::page_number(query.page.as_deref());
    let (filters, errors) = check(&query);
    let (rows, total, codes) = state
        .db
        .read(move |conn| load(conn, &filters, page_no))
        .await?;
    let entries: Vec<Value> = rows
        .iter()
        .map(|(id, at, actor, action, entity, entity_id, org, before, after, ip)| {
            json!({
                "id": id,
                "at": at.format("%-d %b %Y %H:%M:%S").to_string(),
                "at_iso": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "actor": actor,
                "action": action,
                "entity": entity,
                "entity_id": entity_id,
                "entity_href": entity_href(entity, entity_id.as_deref()),
                "organisation": org.map(|o| codes.get(&o).cloned().unwrap_or_else(|| o.to_string())),
                "before": pretty(before),
                "after": pretty(after),
                "has_values": before.is_some() || after.is_some(),
                "ip": ip,
            })
        })
        .collect();
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|e| e.path == field)
            .map(|e| e.message.clone())
    };
    page::render(
        &state,
        Some(&auth.page_user()),
        "admin/audit",
        "Audit log",
        json!({
            "entries": entries,
            "action": query.action.trim(),
            "entity": query.entity.trim(),
            "actor": query.actor.trim(),
            "from": query.from.trim(),
            "to": query.to.trim(),
            "from_error": error_for("from"),
            "to_error": error_for("to"),
            "errors": if errors.is_empty() { Value::Null } else {
                json!(errors.iter().map(|e| json!({"href": format!("#{}", e.path), "message": e.message})).collect::<Vec<_>>())
            },
            "filtered": query.filters().iter().any(|(_, v)| !v.trim().is_empty()),
            "pagination": listing::pagination(BASE, &query.filters(), page_no, total),
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
            "wide": true,
        }),
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(list));
}
