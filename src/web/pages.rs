//! Public pages that need no sign-in: the start page and the statements linked from the footer.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::error::AppError;
use crate::web::auth::MaybeAuthenticated;
use crate::web::{page, AppState};

pub async fn home(
    state: web::Data<AppState>,
    viewer: MaybeAuthenticated,
) -> Result<HttpResponse, AppError> {
    let user = viewer.0.as_ref().map(|a| a.page_user());
    page::render(
        &state,
        user.as_ref(),
        "home",
        "Digital maturity self-assessment",
        json!({}),
    )
}

/// Where people write about accessibility or their data: the service's own sender address.
fn contact(state: &AppState) -> String {
    let from = &state.settings.mail.from;
    match (from.find('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => from[a + 1..b].to_string(),
        _ => from.clone(),
    }
}

fn statement(
    state: &AppState,
    viewer: &MaybeAuthenticated,
    template: &str,
    title: &str,
    data: Value,
) -> Result<HttpResponse, AppError> {
    let user = viewer.0.as_ref().map(|a| a.page_user());
    page::render(state, user.as_ref(), template, title, data)
}

/// The accessibility statement a public-sector service must publish, linked from every page.
pub async fn accessibility(
    state: web::Data<AppState>,
    viewer: MaybeAuthenticated,
) -> Result<HttpResponse, AppError> {
    let data = json!({"base_url": state.settings.base_url, "contact": contact(&state)});
    statement(
        &state,
        &viewer,
        "accessibility",
        "Accessibility statement",
        data,
    )
}

/// What the service keeps about the people who use it, and its cookies.
pub async fn privacy(
    state: web::Data<AppState>,
    viewer: MaybeAuthenticated,
) -> Result<HttpResponse, AppError> {
    let data = json!({
        "contact": contact(&state),
        "idle_minutes": state.settings.session_idle_minutes,
        "absolute_hours": state.settings.session_absolute_hours,
    });
    statement(&state, &viewer, "privacy", "Privacy", data)
}
