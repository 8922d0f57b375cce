//! Signing in and out, choosing a password from an invitation or reset link, and the signed-in
//! landing page. Sign-in answers an unknown email and a wrong password with the same message
//! after the same work (a dummy hash check), and is throttled (`session::check_throttle`) per account
//! from one address, per address, and more slowly per account from addresses it never used.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::db::schema::organisations;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::auth::roles::Action;
use crate::services::auth::session;
use crate::services::auth::{password, users};
use crate::web::auth::{self, Authenticated, MaybeAuthenticated, SignInStep};
use crate::web::{page, AppState};

/// Only a path on this site may follow sign-in, so a crafted link cannot bounce people
/// elsewhere. The value is parsed as a URL relative to this site and accepted only when it
/// stays on it; before that, anything a browser would quietly rewrite is refused: control
/// characters (browsers drop a tab or newline, turning `/\t/evil` into `//evil`), backslashes
/// (read as `/`), and any start other than a single `/`. The answer is the parsed path and
/// query, re-encoded, so what goes into `Location` is always a valid header value.
pub fn safe_next(next: Option<&str>) -> String {
    const FALLBACK: &str = "/dashboard";
    let Some(next) = next else {
        return FALLBACK.to_string();
    };
    let plain = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2000
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if !plain {
        return FALLBACK.to_string();
    }
    let Ok(base) = url::Url::parse("https://this-site.invalid/") else {
        return FALLBACK.to_string();
    };
    match base.join(next) {
        Ok(parsed) if parsed.origin() == base.origin() => {
            parsed[url::Position::BeforePath..url::Position::AfterQuery].to_string()
        }
        _ => FALLBACK.to_string(),
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    status: actix_web::http::StatusCode,
    email: &str,
    next: &str,
    errors: &[(&str, String)],
) -> Result<HttpResponse, AppError> {
    let (csrf, cookie) = auth::anonymous_csrf(req);
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.clone())
    };
    let html = page::render_html(
        state,
        None,
        "login",
        "Sign in",
        json!({
            "csrf_token": csrf,
            "next": next,
            "email": email,
            "email_error": error_for("email"),
            "password_error": error_for("password"),
            "next_encoded": crate::web::errors::urlencode(next),
            "sso_providers": state.settings.auth.sso_providers.iter()
                .map(|p| json!({"key": p.key, "label": p.label}))
                .collect::<Vec<_>>(),
            "errors": if errors.is_empty() { json!(null) } else {
                json!(errors.iter().map(|(f, m)| json!({"href": format!("#{f}"), "message": m})).collect::<Vec<_>>())
            },
        }),
    )?;
    Ok(page::html_response_with_cookie(status, html, cookie))
}

pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    viewer: MaybeAuthenticated,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(query.next.as_deref());
    if viewer.0.is_some() {
        return Ok(see_other(&next));
    }
    login_page(
        &state,
        &req,
        actix_web::http::StatusCode::OK,
        "",
        &next,
        &[],
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

enum LoginOutcome {
    /// A session (full, or waiting for the second factor or its set-up) and where to go.
    SignedIn(String, session::Stage),
    Refused,
}

/// Where a session at `stage` goes after the password: on to `next` when signed in, else to
/// the step still to do, carrying `next` along.
pub fn after_password(stage: session::Stage, next: &str) -> String {
    let encoded = crate::web::errors::urlencode(next);
    match stage {
        session::Stage::Full => next.to_string(),
        session::Stage::SecondFactor => format!("/login/second-factor?next={encoded}"),
        session::Stage::Enrol => format!("/account/second-factor?next={encoded}"),
    }
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    auth::check_anonymous_csrf(&req, &form.csrf_token)?;
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let mut errors = Vec::new();
    // Bounded before anything is counted or logged: the typed address becomes the audit
    // entry's label of a failed sign-in.
    if form.email.trim().is_empty() {
        errors.push(("email", "Enter your email address".to_string()));
    } else if form.email.trim().chars().count() > 254 {
        errors.push((
            "email",
            "Enter an email address of 254 characters or fewer".to_string(),
        ));
    }
    if form.password.is_empty() {
        errors.push(("password", "Enter your password".to_string()));
    } else if form.password.chars().count() > password::MAX_LENGTH {
        errors.push((
            "password",
            format!(
                "Enter a password of {} characters or fewer",
                password::MAX_LENGTH
            ),
        ));
    }
    if !errors.is_empty() {
        return login_page(
            &state,
            &req,
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            &form.email.chars().take(254).collect::<String>(),
            &next,
            &errors,
        );
    }
    let ip = auth::client_ip(&req);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let absolute_hours = state.settings.session_absolute_hours;
    let required_roles = state.settings.auth.second_factor_roles.clone();
    let throttle = session::Throttle::new(&form.email, ip.as_deref());
    // Check the throttle and record the attempt as failed, and find the account; then check
    // the password with no connection held (argon2 takes tens of milliseconds); then mark
    // the attempt as succeeded and open the session. Recording before checking means a burst
    // of parallel guesses is held to the limit too.
    let find_email = form.email.clone();
    let found = state
        .db
        .write(move |conn| match session::claim_attempt(conn, &throttle) {
            Err(AppError::TooManyRequests(message)) => Ok(Err(message)),
            Err(e) => Err(e),
            Ok(claimed) => Ok(Ok((claimed, users::find_by_email(conn, &find_email)?))),
        })
        .await?;
    let (claimed, user) = match found {
        Ok(found) => found,
        Err(message) => {
            return login_page(
                &state,
                &req,
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                &form.email,
                &next,
                &[("email", message)],
            )
        }
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = password::verify_bounded(form.password, stored).await
        && user.as_ref().is_some_and(|u| u.active);
    let email = form.email.clone();
    let outcome = state
        .db
        .write(move |conn| {
            if ok {
                session::attempt_succeeded(conn, &claimed)?;
            }
            let actor = Actor {
                user_id: user.as_ref().map(|u| u.id),
                label: email.trim().to_lowercase(),
                ip: ip.clone(),
            };
            match user.filter(|_| ok) {
                Some(user) => {
                    let (token, stage) =
                        crate::services::auth::second_factor::open_session_after_password(
                            conn,
                            &required_roles,
                            &user,
                            absolute_hours,
                            ip.as_deref(),
                            user_agent.as_deref(),
                        )?;
                    // Signed in once the second factor is given (or set up), not before.
                    if stage == session::Stage::Full {
                        audit::record(
                            conn,
                            &actor,
                            Entry::new("session.sign_in", "user", user.id)
                                .organisation(user.organisation_id),
                        )?;
                    }
                    Ok(LoginOutcome::SignedIn(token, stage))
                }
                None => {
                    // No account id in the entry: the log must not confirm which emails exist.
                    audit::record(
                        conn,
                        &Actor {
                            user_id: None,
                            ..actor
                        },
                        Entry {
                            entity_id: None,
                            ..Entry::new("session.sign_in_failed", "session", "")
                        },
                    )?;
                    Ok(LoginOutcome::Refused)
                }
            }
        })
        .await?;
    match outcome {
        LoginOutcome::SignedIn(token, stage) => Ok(HttpResponse::SeeOther()
            .cookie(auth::session_cookie(&state, token))
            .insert_header((header::LOCATION, after_password(stage, &next)))
            .finish()),
        LoginOutcome::Refused => login_page(
            &state,
            &req,
            actix_web::http::StatusCode::UNAUTHORIZED,
            &form.email,
            &next,
            &[(
                "email",
                "Enter a correct email address and password".to_string(),
            )],
        ),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf_token: String,
}

/// Signing out ends the session at whatever stage it is, so a half-finished sign-in (waiting
/// for a code) can be abandoned too.
pub async fn logout(
    state: web::Data<AppState>,
    auth: SignInStep,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let actor = auth.actor();
    let (session_id, user_id) = (auth.live.session_id, auth.live.user.id);
    // Signed in through a provider: the next page offers the provider's own sign-out.
    let location = match auth.live.sso_provider.as_deref() {
        Some(key)
            if state
                .settings
                .auth
                .sso_providers
                .iter()
                .any(|p| p.key == key) =>
        {
            format!("/signed-out?provider={key}")
        }
        _ => "/".to_string(),
    };
    state
        .db
        .write(move |conn| {
            session::revoke(conn, session_id)?;
            audit::record(
                conn,
                &actor,
                Entry::new("session.sign_out", "user", user_id),
            )
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .cookie(auth::removal_cookie(auth::SESSION_COOKIE))
        .insert_header((header::LOCATION, location))
        .finish())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn set_password_page(
    state: &AppState,
    req: &HttpRequest,
    status: actix_web::http::StatusCode,
    data: serde_json::Value,
) -> Result<HttpResponse, AppError> {
    let (csrf, cookie) = auth::anonymous_csrf(req);
    let mut data = data;
    data["csrf_token"] = json!(csrf);
    let html = page::render_html(state, None, "set_password", "Choose a password", data)?;
    Ok(page::html_response_with_cookie(status, html, cookie))
}

pub async fn set_password_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let token = query.into_inner().token;
    let lookup = token.clone();
    let found = state
        .db
        .read(move |conn| users::link_token_user(conn, &lookup))
        .await?;
    match found {
        Some((_, user)) => set_password_page(
            &state,
            &req,
            actix_web::http::StatusCode::OK,
            json!({"token": token, "account_email": user.email, "invalid_link": false, "password_error": null, "confirm_error": null, "errors": null}),
        ),
        None => set_password_page(
            &state,
            &req,
            actix_web::http::StatusCode::GONE,
            json!({"invalid_link": true}),
        ),
    }
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn set_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SetPasswordForm>,
) -> Result<HttpResponse, AppError> {
    auth::check_anonymous_csrf(&req, &form.csrf_token)?;
    let form = form.into_inner();
    let lookup = form.token.clone();
    let Some((_, user)) = state
        .db
        .read(move |conn| users::link_token_user(conn, &lookup))
        .await?
    else {
        return set_password_page(
            &state,
            &req,
            actix_web::http::StatusCode::GONE,
            json!({"invalid_link": true}),
        );
    };
    let mut errors: Vec<(&str, String)> = Vec::new();
    if let Some(problem) = password::policy_problem(&form.password, &user.email, &user.name) {
        errors.push(("password", problem));
    } else if form.password != form.confirm {
        errors.push((
            "confirm",
            "The passwords do not match. Type the same password twice.".into(),
        ));
    }
    if !errors.is_empty() {
        let error_for = |field: &str| {
            errors
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, m)| m.clone())
        };
        return set_password_page(
            &state,
            &req,
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "token": form.token, "account_email": user.email, "invalid_link": false,
                "password_error": error_for("password"), "confirm_error": error_for("confirm"),
                "errors": errors.iter().map(|(f, m)| json!({"href": format!("#{f}"), "message": m})).collect::<Vec<_>>(),
            }),
        );
    }
    let chosen = form.password;
    let hash = password::hash_bounded(chosen).await?;
    let ip = auth::client_ip(&req);
    let absolute_hours = state.settings.session_absolute_hours;
    let required_roles = state.settings.auth.second_factor_roles.clone();
    let token = form.token;
    let (session_token, stage) = state
        .db
        .write(move |conn| {
            let (token_id, user) = users::link_token_user(conn, &token)?
                .ok_or_else(|| AppError::Conflict("This link has already been used.".into()))?;
            users::consume_link_token(conn, token_id)?;
            let actor = Actor {
                user_id: Some(user.id),
                label: user.email.clone(),
                ip: ip.clone(),
            };
            users::set_password_hash(conn, &actor, user.id, &hash)?;
            // A link from an email proves the mailbox, not the second factor: an account
            // with one still gives its code, and one that must have one sets it up.
            crate::services::auth::second_factor::open_session_after_password(
                conn,
                &required_roles,
                &user,
                absolute_hours,
                ip.as_deref(),
                None,
            )
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .cookie(auth::session_cookie(&state, session_token))
        .insert_header((header::LOCATION, after_password(stage, "/dashboard")))
        .finish())
}

#[derive(serde::Deserialize)]
pub struct DashboardQuery {
    /// Set by the organisation switcher (`web::places`) after a switch.
    switched: Option<String>,
}

pub async fn dashboard(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<DashboardQuery>,
) -> Result<HttpResponse, AppError> {
    use diesel::prelude::*;
    let org_id = auth.user.organisation_id;
    let organisation_name: Option<String> = match org_id {
        Some(id) => {
            state
                .db
                .read(move |conn| {
                    Ok(organisations::table
                        .find(id)
                        .select(organisations::name)
                        .first(conn)
                        .optional()?)
                })
                .await?
        }
        None => None,
    };
    let mut areas = Vec::new();
    if auth.may(Action::Administer) {
        areas.push(json!({"href": "/admin/questionnaires", "title": "Question sets", "description": "Upload, check, preview, compare and publish versions of the questionnaire."}));
        areas.push(json!({"href": "/admin/cycles", "title": "Cycles", "description": "Open the yearly assessment and see how many organisations have submitted."}));
        areas.push(json!({"href": "/admin/organisations", "title": "Organisations", "description": "See the registry and import changes to organisations and their ICBs."}));
        areas.push(json!({"href": "/admin/users", "title": "People", "description": "See everyone's accounts, invite people and deactivate accounts."}));
    }
    if org_id.is_some_and(|id| auth.may(Action::Approve(id))) {
        areas.push(json!({"href": "/organisation/users", "title": "People in your organisation", "description": "Invite contributors and approvers, and deactivate accounts that are no longer needed."}));
    }
    if auth.may(Action::ReadAuditLog) {
        areas.push(json!({"href": "/admin/audit", "title": "Audit log", "description": "Who changed what, and when, with the values before and after."}));
    }
    if crate::services::reports::Scope::of(&auth.user).is_some() {
        areas.push(json!({"href": "/reports", "title": "Reports", "description": "Results by care setting, region and ICB, year on year, with exports of scores and answers."}));
        areas.push(json!({"href": "/reports/progress", "title": "Progress", "description": "How far each organisation has got with this year's assessment, who holds its sections and when it was last worked on, to support those that are behind."}));
    } else if let Some(id) = org_id.filter(|id| auth.may(Action::ReadOrganisation(*id))) {
        areas.push(json!({"href": format!("/reports/organisations/{id}"), "title": "Reports", "description": "Your organisation's results against its peers and its previous years, ready to print for a board paper."}));
    }
    areas.push(json!({"href": "/account/email", "title": "Email preferences", "description": "Have updates on your sections as they happen, or one email a day."}));
    areas.push(json!({"href": "/account/tokens", "title": "API tokens", "description": "Let a program use the API as you."}));
    areas.push(json!({"href": "/account/second-factor", "title": "Second factor", "description": "Sign in with a code from an authenticator app as well as your password."}));
    if !state.settings.auth.sso_providers.is_empty() {
        areas.push(json!({"href": "/account/sign-in", "title": "How you sign in", "description": "Your password and the sign-on providers linked to your account, which you can unlink."}));
    }
    let assessments: Vec<serde_json::Value> = match org_id {
        Some(id) => state
            .db
            .read(move |conn| crate::services::assessments::for_organisation(conn, id))
            .await?
            .into_iter()
            .map(|(row, cycle, deadline)| {
                let (label, colour) = crate::services::assessments::status_label_closed(&row.status, row.closed_at.is_some());
                json!({"href": format!("/assessments/{}", row.id), "cycle": cycle, "setting": row.setting,
                       "deadline": row.deadline_override.unwrap_or(deadline).format("%-d %B %Y").to_string(),
                       "status_label": label, "status_colour": colour})
            })
            .collect(),
        None => Vec::new(),
    };
    let user_id = auth.user.id;
    let my_sections: Vec<serde_json::Value> = match org_id {
        Some(org) => state
            .db
            .read(move |conn| crate::services::sections::for_person(conn, user_id, org))
            .await?
            .into_iter()
            .map(|m| {
                let mut section =
                    crate::web::section_pages::section_view(m.assessment_id, &m.section);
                // Once the assessment is submitted (or its cycle closed) nothing in it is left
                // to do: the section says so rather than "in progress", and has no due date.
                if !m.open {
                    section["status_label"] = json!("Done: submitted or closed");
                    section["status_colour"] = json!("white");
                }
                json!({"assessment": format!("{} {}", m.cycle_label, m.setting),
                       "section": section,
                       "due_on": m.due_on.filter(|_| m.open).map(crate::web::section_pages::day),
                       "open": m.open})
            })
            .collect(),
        None => Vec::new(),
    };
    let place = organisation_name
        .clone()
        .unwrap_or_else(|| auth.user.role().label().to_string());
    let flash = query.switched.as_ref().map(|_| {
        json!({"kind": "success", "message": format!("You are working for {place} now. What you see and may do here follows that choice until you switch again or sign out.")})
    });
    page::render(
        &state,
        Some(&auth.page_user()),
        "dashboard",
        "Your assessment",
        json!({"flash": flash, "organisation_name": organisation_name, "areas": areas, "my_sections": my_sections, "assessments": assessments, "has_organisation": org_id.is_some(),
               "heading": if org_id.is_some() { "Your digital maturity assessment" } else if auth.may(Action::Administer) { "Run the digital maturity assessment" } else { "Digital maturity results" }}),
    )
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_follow_sign_in() {
        assert_eq!(
            safe_next(Some("/admin/questionnaires")),
            "/admin/questionnaires"
        );
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "/\t/evil.example/",
            "/\r\nSet-Cookie: x=1",
            "/\n/evil.example",
            "\t//evil.example",
            " /dashboard",
            "evil.example",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/dashboard", "{hostile}");
        }
        assert_eq!(safe_next(None), "/dashboard");
        assert_eq!(
            safe_next(Some("/reports?cycle=2&q=a b")),
            "/reports?cycle=2&q=a%20b"
        );
        assert_eq!(safe_next(Some("/a/../admin")), "/admin");
    }
}
