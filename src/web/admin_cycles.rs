//! Administrators open yearly cycles: a label, dates, and which published version serves each
//! care setting. Opening creates every organisation's assessments at once (see `cycles`).

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::auth::roles::Action;
use crate::auth::session::Authenticated;
use crate::cycles::{self, NewCycle};
use crate::db::schema::assessments;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::web::{page, AppState};

async fn page_for(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    errors: &[FieldError],
    form: &BTreeMap<String, String>,
    done: bool,
) -> Result<HttpResponse, AppError> {
    let (list, versions, counts) = state
        .db
        .read(|conn| {
            let list = cycles::list(conn)?;
            let versions = cycles::published_versions(conn)?;
            let counts: Vec<(i64, String, i64)> = assessments::table
                .group_by((assessments::cycle_id, assessments::status))
                .select((
                    assessments::cycle_id,
                    assessments::status,
                    diesel::dsl::count_star(),
                ))
                .load(conn)?;
            Ok((list, versions, counts))
        })
        .await?;
    let settings: BTreeSet<&String> = versions.iter().flat_map(|v| v.settings.iter()).collect();
    let settings: Vec<Value> = settings
        .into_iter()
        .map(|s| {
            let chosen = form.get(&format!("version-{s}")).cloned().unwrap_or_default();
            json!({
                "setting": s,
                "field": format!("version-{s}"),
                "error": errors.iter().find(|e| e.path == format!("version-{s}")).map(|e| e.message.clone()),
                "options": versions.iter().filter(|v| v.settings.contains(s)).map(|v| json!({"id": v.id, "label": format!("{} {}", v.key, v.version), "selected": chosen == v.id.to_string()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            let count = |status: &str| counts.iter().filter(|(id, s, _)| *id == c.id && s == status).map(|(_, _, n)| n).sum::<i64>();
            json!({"label": c.label, "opens_on": c.opens_on.format("%-d %b %Y").to_string(), "deadline": c.deadline.format("%-d %b %Y").to_string(),
                   "not_started": count("not_started"), "in_progress": count("in_progress") + count("reopened"), "submitted": count("submitted")})
        })
        .collect();
    let error_for = |f: &str| {
        errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "admin/cycles",
        "Cycles",
        json!({
            "cycles": rows, "settings": settings,
            "label": form.get("label"), "opens_on": form.get("opens_on"), "deadline": form.get("deadline"),
            "label_error": error_for("label"), "opens_on_error": error_for("opens_on"), "deadline_error": error_for("deadline"), "versions_error": error_for("versions"),
            "errors": if errors.is_empty() { Value::Null } else { json!(errors.iter().map(|e| json!({"href": format!("#{}", e.path), "message": e.message})).collect::<Vec<_>>()) },
            "flash": if done { json!({"kind": "success", "message": "The cycle is open. Every organisation in scope now has its assessment."}) } else { Value::Null },
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    )?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    page_for(
        &state,
        &auth,
        StatusCode::OK,
        &[],
        &BTreeMap::new(),
        query.done.is_some(),
    )
    .await
}

fn parse_date(
    form: &BTreeMap<String, String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> NaiveDate {
    let raw = form.get(field).map(|s| s.trim()).unwrap_or("");
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => d,
        Err(_) => {
            errors.push(FieldError::new(field, "Enter a real date, like 2026-04-01"));
            NaiveDate::MIN
        }
    }
}

pub async fn open(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<BTreeMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let form = form.into_inner();
    auth.check_csrf(form.get("csrf_token").map_or("", String::as_str))?;
    let mut errors = Vec::new();
    let opens_on = parse_date(&form, "opens_on", &mut errors);
    let deadline = parse_date(&form, "deadline", &mut errors);
    let mut versions = BTreeMap::new();
    for (k, v) in &form {
        if let Some(setting) = k.strip_prefix("version-") {
            if v.is_empty() {
                continue;
            }
            match v.parse::<i64>() {
                Ok(id) => {
                    versions.insert(setting.to_string(), id);
                }
                Err(_) => errors.push(FieldError::new(
                    k.clone(),
                    "Choose a question set from the list",
                )),
            }
        }
    }
    if !errors.is_empty() {
        return page_for(
            &state,
            &auth,
            StatusCode::UNPROCESSABLE_ENTITY,
            &errors,
            &form,
            false,
        )
        .await;
    }
    let new = NewCycle {
        label: form
            .get("label")
            .cloned()
            .unwrap_or_default()
            .trim()
            .to_string(),
        opens_on,
        deadline,
        versions,
    };
    let actor = auth.actor();
    let notifier = state.notifier();
    match state
        .db
        .write(move |conn| cycles::open(conn, &actor, &new, &notifier))
        .await
    {
        Ok(_) => {
            crate::mail::wake();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/admin/cycles?done=opened"))
                .finish())
        }
        Err(AppError::Validation(errors)) => {
            page_for(
                &state,
                &auth,
                StatusCode::UNPROCESSABLE_ENTITY,
                &errors,
                &form,
                false,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/cycles", web::get().to(list))
        .route("/admin/cycles", web::post().to(open));
}
