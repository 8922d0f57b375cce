//! Administrators open yearly cycles: a label, dates, and which published version serves each
//! care setting. Opening creates every organisation's assessments at once (see `cycles`).
//! A cycle's own page lists its organisations with their status, how many answers they have
//! saved and when they last worked on it, each linked to its assessment, so an administrator
//! can see who is behind and reach the assessment to extend or reopen it. Closing a cycle asks
//! for confirmation on a page of its own that says what will happen to whom, because it
//! cannot be undone (`cycles::close`).

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::db::schema::assessments;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::cycles::{self, NewCycle};
use crate::web::auth::Authenticated;
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
            json!({"label": c.label, "href": format!("/admin/cycles/{}", c.id), "closed": c.status == "closed", "opens_on": c.opens_on.format("%-d %b %Y").to_string(), "deadline": c.deadline.format("%-d %b %Y").to_string(),
                   "not_started": count("not_started"), "in_progress": count("in_progress") + count("reopened"), "submitted": count("submitted")})
        })
        .collect();
    let error_for = |f: &str| {
        errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    page::render_with_status(
        status,
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
    )
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
            let what = if field == "opens_on" {
                "the date the cycle opens"
            } else {
                "the deadline"
            };
            let message = if raw.is_empty() {
                format!("Enter {what}, like 2026-04-01")
            } else {
                format!("Enter {what} as a real date, year-month-day, like 2026-04-01")
            };
            errors.push(FieldError::new(field, message));
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
    if !errors.is_empty() {
        // Every problem at once: the rest of the form is checked as opening would check it
        // (the dates that could not be read are left out of the comparison).
        let mut rest = new.clone();
        rest.deadline = rest.deadline.max(rest.opens_on);
        let mut more = match state
            .db
            .read(move |conn| cycles::validate(conn, &rest))
            .await
        {
            Err(AppError::Validation(more)) => more,
            Err(e) => return Err(e),
            Ok(()) => Vec::new(),
        };
        more.retain(|e| !errors.iter().any(|x| x.path == e.path));
        let order = ["label", "opens_on", "deadline", "versions"];
        errors.extend(more);
        errors.sort_by_key(|e| {
            order
                .iter()
                .position(|o| *o == e.path)
                .unwrap_or(order.len())
        });
    } else {
        let actor = auth.actor();
        let notifier = state.notifier();
        match state
            .db
            .write(move |conn| cycles::open(conn, &actor, &new, &notifier))
            .await
        {
            Ok(_) => {
                crate::services::mail::wake();
                return Ok(HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/admin/cycles?done=opened"))
                    .finish());
            }
            Err(AppError::Validation(refused)) => errors = refused,
            Err(e) => return Err(e),
        }
    }
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

#[derive(serde::Deserialize)]
pub struct CycleQuery {
    status: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

/// One organisation's assessment in a cycle, as the cycle page lists it.
type CycleRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<NaiveDate>,
    Option<chrono::NaiveDateTime>,
);

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    query: web::Query<CycleQuery>,
) -> Result<HttpResponse, AppError> {
    use crate::db::schema::{answers, organisations};
    use crate::web::listing;
    auth.require(Action::Administer)?;
    let cycle_id = path.into_inner();
    let status = query
        .status
        .clone()
        .filter(|s| ["not_started", "in_progress", "submitted", "reopened"].contains(&s.as_str()));
    let page_number = listing::page_number(query.page.as_deref());
    let wanted = status.clone();
    let (cycle, total, rows, activity) = state
        .db
        .read(move |conn| {
            let cycle = cycles::get(conn, cycle_id)?;
            let filtered = || {
                let mut q = assessments::table
                    .inner_join(
                        organisations::table.on(organisations::id.eq(assessments::organisation_id)),
                    )
                    .filter(assessments::cycle_id.eq(cycle_id))
                    .into_boxed();
                if let Some(s) = &wanted {
                    q = q.filter(assessments::status.eq(s.clone()));
                }
                q
            };
            let total: i64 = filtered().count().get_result(conn)?;
            let rows: Vec<CycleRow> = filtered()
                .order((assessments::status.asc(), organisations::name.asc()))
                .limit(listing::PAGE_SIZE)
                .offset(listing::offset(page_number))
                .select((
                    assessments::id,
                    organisations::ods_code,
                    organisations::name,
                    assessments::setting,
                    assessments::status,
                    assessments::deadline_override,
                    assessments::closed_at,
                ))
                .load(conn)?;
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let activity: Vec<(i64, i64, Option<chrono::NaiveDateTime>)> = answers::table
                .filter(answers::assessment_id.eq_any(&ids))
                .group_by(answers::assessment_id)
                .select((
                    answers::assessment_id,
                    diesel::dsl::count_star(),
                    diesel::dsl::max(answers::updated_at),
                ))
                .load(conn)?;
            Ok((cycle, total, rows, activity))
        })
        .await?;
    let today = chrono::Utc::now().date_naive();
    let list: Vec<Value> = rows
        .into_iter()
        .map(|(id, code, name, setting, row_status, deadline_override, closed_at)| {
            let (label, colour) = crate::services::assessments::status_label_closed(
                &row_status,
                closed_at.is_some(),
            );
            let deadline = deadline_override.unwrap_or(cycle.deadline);
            let seen = activity.iter().find(|(a, _, _)| *a == id);
            json!({
                "href": format!("/assessments/{id}"), "code": code, "name": name, "setting": setting,
                "status_label": label, "status_colour": colour,
                "late": row_status != "submitted" && closed_at.is_none() && today > deadline,
                "extended": deadline_override.map(|d| d.format("%-d %b %Y").to_string()),
                "answers": seen.map_or(0, |(_, n, _)| *n),
                "last_activity": seen.and_then(|(_, _, at)| *at).map(|at| at.format("%-d %b %Y %H:%M").to_string()),
            })
        })
        .collect();
    let status_text = status.clone().unwrap_or_default();
    let filters = [("status", status_text.as_str())];
    let base = format!("/admin/cycles/{cycle_id}");
    let statuses: Vec<Value> = [
        ("", "Every status"),
        ("not_started", "Not started"),
        ("in_progress", "In progress"),
        ("reopened", "Reopened"),
        ("submitted", "Submitted"),
    ]
    .iter()
    .map(|(v, l)| json!({"value": v, "label": l, "selected": *v == status_text}))
    .collect();
    page::render(
        &state,
        Some(&auth.page_user()),
        "admin/cycle",
        &format!("Cycle {}", cycle.label),
        json!({
            "label": cycle.label, "base": base,
            "open": cycle.status == "open",
            "closed_on": cycle.closed_at.map(|at| at.format("%-d %B %Y").to_string()),
            "flash": if query.done.as_deref() == Some("closed") { json!({"kind": "success", "message": "The cycle is closed. Assessments not submitted are recorded as not submitted, and approvers of submitted ones are sent their score reports."}) } else { Value::Null },
            "opens_on": cycle.opens_on.format("%-d %B %Y").to_string(),
            "deadline": cycle.deadline.format("%-d %B %Y").to_string(),
            "rows": list, "statuses": statuses,
            "pagination": listing::pagination(&base, &filters, page_number, total),
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": "/admin/cycles", "label": "Cycles"}],
        }),
    )
}

/// The confirmation page for closing a cycle: what will happen, to how many, and the button;
/// `problem` is why a close was refused (another administrator closed it first).
async fn close_page(
    state: &AppState,
    auth: &Authenticated,
    cycle_id: i64,
    problem: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (cycle, counts) = state
        .db
        .read(move |conn| {
            let cycle = cycles::get(conn, cycle_id)?;
            let counts: Vec<(String, i64)> = assessments::table
                .filter(assessments::cycle_id.eq(cycle_id))
                .group_by(assessments::status)
                .select((assessments::status, diesel::dsl::count_star()))
                .load(conn)?;
            Ok((cycle, counts))
        })
        .await?;
    let submitted: i64 = counts
        .iter()
        .filter(|(s, _)| s == "submitted")
        .map(|(_, n)| n)
        .sum();
    let unsubmitted: i64 = counts
        .iter()
        .filter(|(s, _)| s != "submitted")
        .map(|(_, n)| n)
        .sum();
    let status = if problem.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let base = format!("/admin/cycles/{cycle_id}");
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "admin/cycle_close",
        &format!("Close cycle {}", cycle.label),
        json!({
            "label": cycle.label, "base": base, "open": cycle.status == "open",
            "deadline": cycle.deadline.format("%-d %B %Y").to_string(),
            "closed_on": cycle.closed_at.map(|at| at.format("%-d %B %Y at %H:%M").to_string()),
            "submitted": submitted, "unsubmitted": unsubmitted,
            "errors": problem.map(|p| json!([{"href": "#close", "message": p}])),
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": "/admin/cycles", "label": "Cycles"}, {"href": base, "label": format!("Cycle {}", cycle.label)}],
        }),
    )
}

pub async fn close_form(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    close_page(&state, &auth, path.into_inner(), None).await
}

#[derive(serde::Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn close(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<CloseForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let cycle_id = path.into_inner();
    // Closing cannot be undone: a recent sign-in or confirmation, as for reopening.
    if let Some(confirm) = crate::web::second_factor::demand_recent(
        &state,
        &auth,
        &format!("/admin/cycles/{cycle_id}/close"),
    ) {
        return Ok(confirm);
    }
    let actor = auth.actor();
    let notifier = state.notifier();
    match state
        .db
        .write(move |conn| cycles::close(conn, &actor, cycle_id, &notifier))
        .await
    {
        Ok(_) => {
            crate::services::mail::wake();
            Ok(HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!("/admin/cycles/{cycle_id}?done=closed"),
                ))
                .finish())
        }
        // Closed by someone else meanwhile: the page again, saying who and when.
        Err(AppError::Conflict(message)) => {
            close_page(&state, &auth, cycle_id, Some(message)).await
        }
        Err(e) => Err(e),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/cycles", web::get().to(list))
        .route("/admin/cycles", web::post().to(open))
        .route("/admin/cycles/{id}", web::get().to(show))
        .route("/admin/cycles/{id}/close", web::get().to(close_form))
        .route("/admin/cycles/{id}/close", web::post().to(close));
}
