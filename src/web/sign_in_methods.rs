//! How a person signs in (`/account/sign-in`): whether they have a password, and the single
//! sign-on identities linked to their account, each of which they may unlink (after
//! confirming who they are), unless it is the only way they can sign in. Administrators
//! unlink a person's identity from the person's page (`/admin/users/{id}`), for example when
//! someone has left the organisation whose directory vouched for them. The rules are
//! `services::auth::sso::unlink`'s; docs/security.md lists the promise.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::auth::{sso, users};
use crate::web::auth::Authenticated;
use crate::web::{page, AppState};

const BASE: &str = "/account/sign-in";

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let user_id = auth.user.id;
    let linked = state
        .db
        .read(move |conn| sso::linked(conn, user_id))
        .await?;
    let only_way = auth.user.password_hash.is_none() && linked.len() == 1;
    let identities: Vec<serde_json::Value> = linked
        .iter()
        .map(|l| {
            json!({
                "label": provider_label(&state, &l.provider),
                "email": l.email,
                "linked_on": l.linked_at.format("%-d %B %Y").to_string(),
                "last_used": l.last_sign_in_at.map(|t| t.format("%-d %B %Y").to_string()),
                "unlink_href": format!("{BASE}/{}/unlink", l.provider),
                "can_unlink": !only_way,
            })
        })
        .collect();
    let flash = (query.done.as_deref() == Some("unlinked")).then(|| {
        json!({"kind": "success", "message": "Unlinked. That provider no longer signs you in here, and other sessions signed in through it have ended."})
    });
    page::render(
        &state,
        Some(&auth.page_user()),
        "account/sign_in",
        "How you sign in",
        json!({
            "has_password": auth.user.password_hash.is_some(),
            "identities": identities,
            "only_way": only_way,
            "flash": flash,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    )
}

/// The provider's label from configuration, or its key when it is no longer configured.
fn provider_label(state: &AppState, key: &str) -> String {
    state
        .settings
        .auth
        .sso_providers
        .iter()
        .find(|p| p.key == key)
        .map_or_else(|| key.to_string(), |p| p.label.clone())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

/// The person unlinks one of their own identities (after confirming who they are).
pub async fn unlink_own(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    if let Some(confirm) = crate::web::second_factor::demand_recent(&state, &auth, BASE) {
        return Ok(confirm);
    }
    let provider = path.into_inner();
    let (actor, user_id, session_id) = (auth.actor(), auth.user.id, auth.session_id);
    state
        .db
        .write(move |conn| {
            let user = users::find(conn, user_id)?.ok_or(AppError::NotFound)?;
            sso::unlink(conn, &actor, &user, &provider, Some(session_id))
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{BASE}?done=unlinked")))
        .finish())
}

/// An administrator unlinks a person's identity (after confirming who they are).
pub async fn unlink_for(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let (target, provider) = path.into_inner();
    let back = format!("/admin/users/{target}");
    if let Some(confirm) = crate::web::second_factor::demand_recent(&state, &auth, &back) {
        return Ok(confirm);
    }
    let actor = auth.actor();
    state
        .db
        .write(move |conn| {
            let user = users::find(conn, target)?.ok_or(AppError::NotFound)?;
            sso::unlink(conn, &actor, &user, &provider, None)
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{back}?done=sso-unlinked")))
        .finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(show))
        .route(
            "/account/sign-in/{provider}/unlink",
            web::post().to(unlink_own),
        )
        .route(
            "/admin/users/{id}/sso/{provider}/unlink",
            web::post().to(unlink_for),
        );
}
