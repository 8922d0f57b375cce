//! Public pages that need no sign-in: the start page and the statements linked from the footer.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::AppError;
use crate::web::{page, AppState};

pub async fn home(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    page::render(
        &state,
        None,
        "home",
        "Digital maturity self-assessment",
        json!({}),
    )
}
