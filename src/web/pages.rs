//! Public pages that need no sign-in: the start page and the statements linked from the footer.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::session::MaybeAuthenticated;
use crate::error::AppError;
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
