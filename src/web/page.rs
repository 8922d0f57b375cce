//! Rendering a page: the template's own data plus what the layout needs on every page (title,
//! the signed-in person, the CSRF token for the sign-out form, the asset version).

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::web::AppState;

/// The signed-in person as the layout shows them.
#[derive(Debug, Clone, Serialize)]
pub struct PageUser {
    pub name: String,
    pub email: String,
    pub role_label: String,
    pub csrf_token: String,
    /// The header's primary navigation: the places this person's role can go.
    pub nav: Vec<NavLink>,
}

/// One link of the primary navigation.
#[derive(Debug, Clone, Serialize)]
pub struct NavLink {
    pub href: String,
    pub label: &'static str,
}

/// The primary navigation for a signed-in person: the same areas as their dashboard's cards,
/// by the same policy, so each role finds its work from every page.
pub fn nav(auth: &super::auth::Authenticated) -> Vec<NavLink> {
    use crate::services::auth::roles::Action;
    let link = |href: &str, label| NavLink {
        href: href.to_string(),
        label,
    };
    let mut out = vec![link("/dashboard", "Home")];
    let org = auth.user.organisation_id;
    if auth.may(Action::Administer) {
        out.push(link("/admin/cycles", "Cycles"));
        out.push(link("/admin/questionnaires", "Question sets"));
        out.push(link("/admin/organisations", "Organisations"));
        out.push(link("/admin/users", "People"));
    }
    if org.is_some_and(|id| auth.may(Action::Approve(id))) {
        out.push(link("/organisation/users", "People"));
    }
    if crate::services::reports::Scope::of(&auth.user).is_some() {
        out.push(link("/reports", "Reports"));
    } else if let Some(id) = org.filter(|id| auth.may(Action::ReadOrganisation(*id))) {
        out.push(link(&format!("/reports/organisations/{id}"), "Reports"));
    }
    if auth.may(Action::ReadAuditLog) {
        out.push(link("/admin/audit", "Audit log"));
    }
    if auth.may(Action::Administer) {
        out.push(link("/admin/outbox", "Email"));
    }
    if auth.has_places {
        out.push(link("/account/organisations", "Switch organisation"));
    }
    out
}

pub const SERVICE_NAME: &str = "Digital maturity assessment";

/// Render `template` inside the layout and return the HTML.
pub fn render_html(
    state: &AppState,
    user: Option<&PageUser>,
    template: &str,
    title: &str,
    data: Value,
) -> Result<String, AppError> {
    let mut context = match data {
        Value::Object(map) => map,
        Value::Null => serde_json::Map::new(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("data".into(), other);
            m
        }
    };
    context.insert("title".into(), json!(title));
    context.insert("service_name".into(), json!(SERVICE_NAME));
    context.insert("asset_version".into(), json!(super::assets::version()));
    if let Some(u) = user {
        context.insert("user".into(), json!(u));
        context.insert("csrf_token".into(), json!(u.csrf_token));
        context.entry("nav").or_insert_with(|| json!(u.nav));
    }
    state.templates.render(template, &Value::Object(context))
}

/// Render a page as a 200 response.
pub fn render(
    state: &AppState,
    user: Option<&PageUser>,
    template: &str,
    title: &str,
    data: Value,
) -> Result<HttpResponse, AppError> {
    render_with_status(StatusCode::OK, state, user, template, title, data)
}

/// Render a page as a response with `status` (a form shown again with its errors is 422, a
/// stale one 409): what every page that can refuse does.
pub fn render_with_status(
    status: StatusCode,
    state: &AppState,
    user: Option<&PageUser>,
    template: &str,
    title: &str,
    data: Value,
) -> Result<HttpResponse, AppError> {
    let html = render_html(state, user, template, title, data)?;
    Ok(html_response(status, html))
}

/// A rendered page as a response with `status` (a form shown again with its errors is 422):
/// the one place that names the pages' content type.
pub fn html_response(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html)
}

/// The same, also setting `cookie` when there is one (the anonymous CSRF cookie of the
/// sign-in and password forms).
pub fn html_response_with_cookie(
    status: StatusCode,
    html: String,
    cookie: Option<Cookie<'static>>,
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if let Some(c) = cookie {
        res.cookie(c);
    }
    res.content_type("text/html; charset=utf-8").body(html)
}
