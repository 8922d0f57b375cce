//! Rendering a page: the template's own data plus what the layout needs on every page (title,
//! the signed-in person, the CSRF token for the sign-out form, the asset version).

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
    let html = render_html(state, user, template, title, data)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}
