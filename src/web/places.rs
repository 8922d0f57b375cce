//! The organisation switcher (`/account/organisations`): someone who belongs to more than one
//! organisation ([`crate::services::memberships`]) chooses which one this browser session works
//! for. The policy then sees that organisation and the role held there, as for anyone else.
//! Anyone signed in may open the page; it lists only their own places.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::db::schema::sessions;
use crate::error::AppError;
use crate::services::auth::users;
use crate::services::memberships;
use crate::web::auth::Authenticated;
use crate::web::{page, AppState};

const BASE: &str = "/account/organisations";

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, AppError> {
    let (user_id, session_id) = (auth.user.id, auth.session_id);
    let (home, places, current) = state
        .db
        .read(move |conn| {
            let home = users::find(conn, user_id)?.ok_or(AppError::NotFound)?;
            let home = memberships::home_place(conn, &home)?;
            let places = memberships::of_user(conn, user_id)?;
            let current: Option<i64> = sessions::table
                .find(session_id)
                .select(sessions::membership_id)
                .first(conn)?;
            // A membership removed since counts as none (the session lookup reads it so).
            let current = current.filter(|id| places.iter().any(|p| p.membership_id == Some(*id)));
            Ok((home, places, current))
        })
        .await?;
    let row = |p: &memberships::Place, value: String| {
        json!({
            "label": p.label,
            "role_label": p.role_label,
            "value": value,
            "current": p.membership_id == current,
        })
    };
    let mut rows = vec![row(&home, "home".into())];
    rows.extend(
        places
            .iter()
            .map(|p| row(p, p.membership_id.unwrap_or_default().to_string())),
    );
    page::render(
        &state,
        Some(&auth.page_user()),
        "account/organisations",
        "Your organisations",
        json!({
            "places": rows,
            "several": !places.is_empty(),
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    )
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    place: String,
}

pub async fn switch(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let place = form.place.trim();
    let membership = match place {
        "home" => None,
        other => Some(other.parse::<i64>().map_err(|_| {
            AppError::BadRequest("Choose one of your organisations from the list.".into())
        })?),
    };
    let (actor, session_id, user_id) = (auth.actor(), auth.session_id, auth.user.id);
    state
        .db
        .write(move |conn| memberships::switch(conn, &actor, session_id, user_id, membership))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/dashboard?switched=1"))
        .finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(show))
        .route(BASE, web::post().to(switch));
}
