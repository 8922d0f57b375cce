//! The support view (`/reports/progress`): how far each organisation in the viewer's scope has
//! got with the cycle's assessment (status, questions answered, sections handed over, who
//! holds them, last activity), so an ICB can help the organisations that are behind while the
//! cycle is open. It shows no answers and no scores; see [`crate::services::reports::progress`].
//! Who may see it, and which organisations, is the reports' [`crate::services::reports::Scope`].

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::error::AppError;
use crate::services::reports::{self, RawFilters, SortKey};
use crate::services::sections::Status;
use crate::web::auth::Authenticated;
use crate::web::listing::{self, PAGE_SIZE};
use crate::web::report_pages::{describe_scope, filter_form, query, scope_of};
use crate::web::{page, AppState};

const BASE: &str = "/reports/progress";

pub async fn progress(
    state: web::Data<AppState>,
    auth: Authenticated,
    raw: web::Query<RawFilters>,
) -> Result<HttpResponse, AppError> {
    let scope = scope_of(&auth)?;
    let raw = raw.into_inner();
    let page_no = reports::parse_page(&raw.page)?;
    let (filters, options, total, rows, scope_text) = state
        .db
        .read(move |conn| {
            let filters = reports::resolve_view_filters(conn, &raw)?;
            let options = reports::options(conn, &scope)?;
            let total = reports::count_members(conn, &filters, &scope)?;
            let listing = reports::list(
                conn,
                &filters,
                &scope,
                (SortKey::Name, false),
                listing::offset(page_no),
                PAGE_SIZE,
            )?;
            let rows = reports::progress(conn, &listing.members)?;
            let scope_text = describe_scope(conn, &scope)?;
            let open: Vec<i64> = crate::services::cycles::list(conn)?
                .into_iter()
                .filter(|c| c.status == "open")
                .map(|c| c.id)
                .collect();
            Ok((filters, options, total, rows, (scope_text, open)))
        })
        .await?;
    let (scope_text, open_cycles) = scope_text;
    let today = chrono::Utc::now().date_naive();
    let organisations: Vec<Value> = rows
        .iter()
        .map(|p| {
            let sections: Vec<Value> = Status::ALL
                .iter()
                .filter(|s| p.sections.get(s.as_str()).copied().unwrap_or(0) > 0)
                .map(|s| {
                    json!({"label": s.label(), "colour": s.colour(),
                           "count": p.sections.get(s.as_str()).copied().unwrap_or(0)})
                })
                .collect();
            let holders: Vec<Value> = p
                .holders
                .iter()
                .map(|h| json!({"name": h.name, "sections": h.sections.join(", ")}))
                .collect();
            let idle_days = p.last_activity.map(|t| (today - t.date()).num_days());
            json!({
                "name": p.name, "ods_code": p.ods_code, "setting": p.setting,
                "href": format!("/reports/organisations/{}", p.organisation_id),
                "status_label": p.status.label(), "status_colour": p.status.colour(),
                "answered": p.answered, "visible": p.visible,
                "percent": (p.answered * 100).checked_div(p.visible).unwrap_or(0),
                "sections": sections, "section_count": p.section_count,
                "reviewed": p.sections.get(Status::Reviewed.as_str()).copied().unwrap_or(0),
                "holders": holders, "unassigned": p.unassigned,
                "last_activity": p.last_activity.map(|t| t.format("%-d %b %Y").to_string()),
                "quiet": idle_days.is_some_and(|d| d >= 14) && !p.status.is_submitted(),
                "deadline": p.deadline.format("%-d %b %Y").to_string(),
            })
        })
        .collect();
    let pairs = filters.pairs();
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let pagination = listing::pagination(BASE, &borrowed, page_no, total);
    let heading = match &filters.cycle {
        Some(c) => format!("Progress of the {} assessments", c.label),
        None => "Progress of the assessments".to_string(),
    };
    let cycle_open = filters
        .cycle
        .as_ref()
        .is_some_and(|c| open_cycles.contains(&c.id));
    let data = json!({
        "heading": heading,
        "scope": scope_text,
        "cycle_open": cycle_open,
        "form": filter_form(&options, &filters, None, ""),
        "organisations": organisations,
        "pagination": pagination,
        "results_href": format!("/reports{}", query(&pairs)),
        "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": "/reports", "label": "Reports"}],
    });
    page::render(
        &state,
        Some(&auth.page_user()),
        "reports/progress",
        "Progress",
        data,
    )
}
