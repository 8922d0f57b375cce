//! The second factor's pages, and confirming who you are before a sensitive action.
//!
//! - `/login/second-factor`: after a correct password, an account with a second factor gives
//!   its authenticator's code (or a recovery code). The attempt is counted by the sign-in
//!   throttle like a password. Success replaces the waiting session by a full one.
//! - `/account/second-factor`: set one up (a QR code drawn as inline SVG, and the secret in
//!   letters for typing in), see whether it is on, turn it off (unless the role requires it).
//!   A person whose role requires one and who has none is sent here after the password and
//!   can do nothing else until it is set up. The secret being set up travels in the form,
//!   sealed to the account and session, so nothing is stored until the first code is right.
//! - `/account/confirm`: the one re-authentication step. Sensitive actions (making an API
//!   token, publishing a question set, reopening a submission, inviting someone with a role,
//!   resetting someone's second factor, turning one's own off) call [`demand_recent`]; when
//!   the last sign-in or confirmation is older than `DMA_REAUTH_MINUTES`, the person is sent
//!   here, gives their password (and code, when they have a second factor), and returns to the
//!   page they came from to do it again. The API is not asked: its bearer token is already a
//!   credential, made only after such a confirmation.
//! - `/admin/users/{id}/second-factor/reset`: an administrator removes a person's second
//!   factor (a lost phone), audited, and ends all of that person's sessions (whoever holds
//!   the phone may be signed in); the person sets one up again at their next sign-in if
//!   their role requires it.
//!
//! The secret shown on the set-up page is kept, sealed to the account and session, in a
//! short-lived cookie (`dma_totp_setup`) until enrolment completes, so reloading the page
//! shows the same QR code rather than a new key that the app already scanned does not match.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::services::audit::{self, Entry};
use crate::services::auth::roles::Action;
use crate::services::auth::second_factor::{self, Verified};
use crate::services::auth::session::{self, Stage};
use crate::services::auth::users::User;
use crate::services::auth::{password, users};
use crate::web::account::CsrfOnly;
use crate::web::auth::{self, Authenticated, MaybeSignInStep, SignInStep};
use crate::web::{page, AppState};

const STEP_PATH: &str = "/login/second-factor";
const ACCOUNT_PATH: &str = "/account/second-factor";
const CONFIRM_PATH: &str = "/account/confirm";

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

fn no_store(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

fn errors_list(errors: &[(&str, String)]) -> Value {
    if errors.is_empty() {
        Value::Null
    } else {
        json!(errors
            .iter()
            .map(|(f, m)| json!({"href": format!("#{f}"), "message": m}))
            .collect::<Vec<_>>())
    }
}

fn error_for(errors: &[(&str, String)], field: &str) -> Option<String> {
    errors
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, m)| m.clone())
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Why a code was not accepted, in words for the page.
struct Refusal {
    throttled: bool,
    message: String,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        if self.throttled {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNAUTHORIZED
        }
    }
}

/// Checks `typed` as `user`'s second factor, counted by the sign-in throttle in the same
/// transaction (claimed as a failure first, marked a success when right). `claimed` is an
/// attempt the caller has already claimed (the password of a confirmation): the code is
/// part of that attempt rather than a second one.
async fn check_code(
    state: &AppState,
    user: &User,
    ip: Option<String>,
    typed: String,
    claimed: Option<Vec<i64>>,
) -> Result<Result<Verified, Refusal>, AppError> {
    if typed.trim().is_empty() {
        return Ok(Err(Refusal {
            throttled: false,
            message: "Enter the 6-digit code from your authenticator app, or a recovery code"
                .into(),
        }));
    }
    let throttle = session::Throttle::new(&user.email, ip.as_deref());
    let key = state.settings.auth.totp_key.clone();
    let user = user.clone();
    state
        .db
        .write(move |conn| {
            let claimed = match claimed {
                Some(claimed) => claimed,
                None => match session::claim_attempt(conn, &throttle) {
                    Err(AppError::TooManyRequests(message)) => {
                        return Ok(Err(Refusal {
                            throttled: true,
                            message,
                        }))
                    }
                    other => other?,
                },
            };
            let verified =
                second_factor::verify(conn, &key, &user, &typed, second_factor::unix_now())?;
            let actor = audit::Actor {
                user_id: Some(user.id),
                label: user.email.clone(),
                ip: ip.clone(),
            };
            if verified == Verified::Refused {
                audit::record(
                    conn,
                    &actor,
                    Entry::new("session.second_factor_failed", "user", user.id),
                )?;
                return Ok(Err(Refusal {
                    throttled: false,
                    message: "The code is not correct, or has been used already. Enter the code your authenticator app shows now".into(),
                }));
            }
            session::attempt_succeeded(conn, &claimed)?;
            if let Verified::RecoveryCode { left } = verified {
                audit::record(
                    conn,
                    &actor,
                    Entry::new("session.recovery_code_used", "user", user.id)
                        .after(json!({"recovery_codes_left": left})),
                )?;
            }
            Ok(Ok(verified))
        })
        .await
}

fn step_page(
    state: &AppState,
    status: StatusCode,
    csrf: &str,
    next: &str,
    errors: &[(&str, String)],
) -> Result<HttpResponse, AppError> {
    let html = page::render_html(
        state,
        None,
        "login_second_factor",
        "Enter your security code",
        json!({
            "csrf_token": csrf,
            "next": next,
            "code_error": error_for(errors, "code"),
            "errors": errors_list(errors),
        }),
    )?;
    Ok(no_store(status, html))
}

pub async fn step_form(
    state: web::Data<AppState>,
    step: MaybeSignInStep,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = crate::web::account::safe_next(query.next.as_deref());
    match step.0 {
        Some(s) if s.live.stage == Stage::SecondFactor => {
            step_page(&state, StatusCode::OK, &s.live.csrf_token, &next, &[])
        }
        Some(s) if s.live.stage == Stage::Enrol => Ok(see_other(&format!(
            "{ACCOUNT_PATH}?next={}",
            crate::web::errors::urlencode(&next)
        ))),
        Some(_) => Ok(see_other(&next)),
        // No sign-in under way (it expired, or never started): start again.
        None => Ok(see_other("/login")),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

pub async fn step(
    state: web::Data<AppState>,
    req: HttpRequest,
    step: MaybeSignInStep,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let Some(step) = step.0.filter(|s| s.live.stage == Stage::SecondFactor) else {
        auth::check_anonymous_csrf(&req, &form.csrf_token)?;
        return Ok(see_other("/login"));
    };
    step.check_csrf(&form.csrf_token)?;
    let next = crate::web::account::safe_next(form.next.as_deref());
    if form.code.chars().count() > 100 {
        return step_page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &step.live.csrf_token,
            &next,
            &[(
                "code",
                "Enter a code of 6 digits, or a recovery code".into(),
            )],
        );
    }
    let checked = check_code(&state, &step.live.user, step.ip.clone(), form.code, None).await?;
    if let Err(refusal) = checked {
        return step_page(
            &state,
            refusal.status(),
            &step.live.csrf_token,
            &next,
            &[("code", refusal.message)],
        );
    }
    let token = finish_sign_in(&state, step).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(auth::session_cookie(&state, token))
        .insert_header((header::LOCATION, next))
        .finish())
}

/// The pending session becomes a full one (a new token), and the sign-in is logged.
async fn finish_sign_in(state: &AppState, step: SignInStep) -> Result<String, AppError> {
    let absolute_hours = state.settings.session_absolute_hours;
    let actor = step.actor();
    state
        .db
        .write(move |conn| {
            let token = session::promote(conn, &step.live, absolute_hours, step.ip.as_deref())?;
            audit::record(
                conn,
                &actor,
                Entry::new("session.sign_in", "user", step.live.user.id)
                    .organisation(step.live.user.organisation_id)
                    .after(json!({"second_factor": true})),
            )?;
            Ok(token)
        })
        .await
}

/// The QR code of an `otpauth://` address, as an SVG element to put in the page.
fn qr_svg(data: &str) -> Result<String, AppError> {
    let code = qrcode::QrCode::new(data.as_bytes())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Drop the XML declaration; inline SVG in HTML starts at the element.
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].replacen(
            "<svg",
            "<svg role=\"img\" aria-labelledby=\"qr-title\" class=\"dma-qr\"",
            1,
        ),
        None => svg,
    }
    .replacen(
        '>',
        "><title id=\"qr-title\">QR code to scan with your authenticator app</title>",
        1,
    ))
}

fn enrol_context(user_id: i64, session_id: i64) -> String {
    format!("totp-enrol:{user_id}:{session_id}")
}

/// The cookie that keeps the secret being set up across reloads of the set-up page.
const SETUP_COOKIE: &str = "dma_totp_setup";

/// The secret this session is setting up, from the set-up cookie, if it opens for this
/// account and session.
fn setup_secret(state: &AppState, req: &HttpRequest, step: &SignInStep) -> Option<Vec<u8>> {
    let sealed = req.cookie(SETUP_COOKIE)?.value().to_string();
    if !crate::crypto::is_sealed(&sealed) {
        return None;
    }
    state
        .settings
        .auth
        .totp_key
        .open(
            &sealed,
            &enrol_context(step.live.user.id, step.live.session_id),
        )
        .ok()
        .and_then(|h| hex::decode(h).ok())
}

fn setup_cookie(state: &AppState, sealed: Option<String>) -> actix_web::cookie::Cookie<'static> {
    let mut cookie =
        actix_web::cookie::Cookie::build(SETUP_COOKIE, sealed.clone().unwrap_or_default())
            .path(ACCOUNT_PATH)
            .http_only(true)
            .same_site(actix_web::cookie::SameSite::Strict)
            .secure(state.settings.base_url.starts_with("https://"))
            .max_age(actix_web::cookie::time::Duration::minutes(30))
            .finish();
    if sealed.is_none() {
        cookie.make_removal();
    }
    cookie
}

struct AccountView<'a> {
    status: StatusCode,
    next: &'a str,
    errors: Vec<(&'static str, String)>,
    recovery_codes: Option<Vec<String>>,
    flash: Option<&'a str>,
    /// The secret being set up, kept when a code was refused: the person has scanned it
    /// already, so a new one would make every code they type after a typo wrong.
    secret: Option<Vec<u8>>,
}

async fn account_page(
    state: &AppState,
    step: &SignInStep,
    view: AccountView<'_>,
) -> Result<HttpResponse, AppError> {
    let user = step.live.user.clone();
    let user_id = user.id;
    let (enabled, codes_left) = state
        .db
        .read(move |conn| {
            Ok((
                second_factor::enabled_at(conn, user_id)?,
                second_factor::recovery_codes_left(conn, user_id)?,
            ))
        })
        .await?;
    let required = second_factor::required(&state.settings.auth.second_factor_roles, &user);
    let mut data = json!({
        "next": view.next,
        "required": required,
        "pending": step.live.stage == Stage::Enrol,
        "enabled": enabled.map(|t| t.format("%-d %B %Y").to_string()),
        "codes_left": codes_left,
        "recovery_codes": view.recovery_codes,
        "code_error": error_for(&view.errors, "code"),
        "errors": errors_list(&view.errors),
        "csrf_token": step.live.csrf_token,
        "flash": match view.flash {
            Some("removed") => json!({"kind": "success", "message": "Your second factor was turned off."}),
            _ => Value::Null,
        },
        "breadcrumbs": if step.live.stage == Stage::Full { json!([{"href": "/dashboard", "label": "Home"}]) } else { Value::Null },
    });
    let mut sealed_secret = None;
    if enabled.is_none() && view.recovery_codes.is_none() {
        let secret = view.secret.unwrap_or_else(second_factor::new_secret);
        let (url, base32) = second_factor::enrolment(&secret, &user.email)?;
        data["qr_svg"] = json!(qr_svg(&url)?);
        data["secret_text"] = json!(base32
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "));
        let sealed = state.settings.auth.totp_key.seal(
            &hex::encode(&secret),
            &enrol_context(user.id, step.live.session_id),
        );
        data["sealed_secret"] = json!(sealed);
        sealed_secret = Some(sealed);
    }
    let page_user = (step.live.stage == Stage::Full).then(|| {
        Authenticated {
            user: user.clone(),
            session_id: step.live.session_id,
            csrf_token: step.live.csrf_token.clone(),
            ip: step.ip.clone(),
            authenticated_at: step.live.authenticated_at,
            has_places: step.live.has_places,
        }
        .page_user()
    });
    let html = page::render_html(
        state,
        page_user.as_ref(),
        "account/second_factor",
        if view.recovery_codes.is_some() {
            "Your recovery codes"
        } else {
            "Second factor"
        },
        data,
    )?;
    let mut response = no_store(view.status, html);
    // The secret on the page stays the page's until set up; once set up (or when there is
    // nothing to set up), the cookie goes.
    response
        .add_cookie(&setup_cookie(state, sealed_secret))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cookie: {e}")))?;
    Ok(response)
}

#[derive(Deserialize)]
pub struct AccountQuery {
    next: Option<String>,
    done: Option<String>,
}

pub async fn account(
    state: web::Data<AppState>,
    req: HttpRequest,
    step: SignInStep,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, AppError> {
    let next = crate::web::account::safe_next(query.next.as_deref());
    if step.live.stage == Stage::SecondFactor {
        return Ok(see_other(&format!(
            "{STEP_PATH}?next={}",
            crate::web::errors::urlencode(&next)
        )));
    }
    account_page(
        &state,
        &step,
        AccountView {
            status: StatusCode::OK,
            next: &next,
            errors: Vec::new(),
            recovery_codes: None,
            flash: query.done.as_deref(),
            secret: setup_secret(&state, &req, &step),
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    sealed_secret: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

pub async fn enrol(
    state: web::Data<AppState>,
    step: SignInStep,
    form: web::Form<EnrolForm>,
) -> Result<HttpResponse, AppError> {
    step.check_csrf(&form.csrf_token)?;
    if step.live.stage == Stage::SecondFactor {
        return Err(AppError::Unauthenticated);
    }
    let form = form.into_inner();
    let next = crate::web::account::safe_next(form.next.as_deref());
    let refuse = |message: &str, secret: Option<Vec<u8>>| AccountView {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        next: &next,
        errors: vec![("code", message.to_string())],
        recovery_codes: None,
        flash: None,
        secret,
    };
    let secret = state
        .settings
        .auth
        .totp_key
        .open(
            &form.sealed_secret,
            &enrol_context(step.live.user.id, step.live.session_id),
        )
        .ok()
        .filter(|_| crate::crypto::is_sealed(&form.sealed_secret))
        .and_then(|h| hex::decode(h).ok());
    let Some(secret) = secret else {
        return account_page(
            &state,
            &step,
            refuse(
                "This page has expired. Scan the new QR code below and enter its code",
                None,
            ),
        )
        .await;
    };
    if form.code.trim().is_empty() {
        return account_page(
            &state,
            &step,
            refuse(
                "Enter the 6-digit code your authenticator app shows",
                Some(secret),
            ),
        )
        .await;
    }
    // Every code check is counted by the throttle, this one too.
    let throttle = session::Throttle::new(&step.live.user.email, step.ip.as_deref());
    let Some(step_number) =
        second_factor::matching_step(&secret, &form.code, second_factor::unix_now())
    else {
        state
            .db
            .write(move |conn| session::claim_attempt(conn, &throttle).map(|_| ()))
            .await?;
        return account_page(
            &state,
            &step,
            refuse(
                "The code is not correct. Enter the 6-digit code your authenticator app shows now",
                Some(secret),
            ),
        )
        .await;
    };
    let key = state.settings.auth.totp_key.clone();
    let actor = step.actor();
    let user_id = step.live.user.id;
    let codes = state
        .db
        .write(move |conn| second_factor::enrol(conn, &key, &actor, user_id, &secret, step_number))
        .await?;
    let mut response = account_page(
        &state,
        &step,
        AccountView {
            status: StatusCode::OK,
            next: &next,
            errors: Vec::new(),
            recovery_codes: Some(codes),
            flash: None,
            secret: None,
        },
    )
    .await?;
    // A sign-in that was waiting for this becomes a full one now.
    if step.live.stage == Stage::Enrol {
        let token = finish_sign_in(&state, step).await?;
        response
            .add_cookie(&auth::session_cookie(&state, token))
            .map_err(|e| AppError::Internal(anyhow::anyhow!("cookie: {e}")))?;
    }
    Ok(response)
}

/// Turning one's own second factor off: not when the role requires it (an administrator can
/// reset it instead), and only after a recent confirmation.
pub async fn remove(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    if second_factor::required(&state.settings.auth.second_factor_roles, &auth.user) {
        return Err(AppError::Conflict(
            "Your role must sign in with a second factor, so it cannot be turned off. If you have lost your phone, ask an administrator to reset it.".into(),
        ));
    }
    if let Some(confirm) = demand_recent(&state, &auth, ACCOUNT_PATH) {
        return Ok(confirm);
    }
    let (actor, user_id) = (auth.actor(), auth.user.id);
    state
        .db
        .write(move |conn| {
            second_factor::remove(conn, &actor, user_id, "user.second_factor_remove")
        })
        .await?;
    Ok(see_other(&format!("{ACCOUNT_PATH}?done=removed")))
}

/// An administrator removes someone's second factor (a lost phone).
pub async fn admin_reset(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    auth.require(Action::Administer)?;
    let user_id = path.into_inner();
    if let Some(confirm) = demand_recent(&state, &auth, "/admin/users") {
        return Ok(confirm);
    }
    let actor = auth.actor();
    let removed = state
        .db
        .write(move |conn| {
            users::find(conn, user_id)?.ok_or(AppError::NotFound)?;
            let removed = second_factor::remove(conn, &actor, user_id, "user.second_factor_reset")?;
            // Whoever has the lost phone may be signed in: the reset signs the person out.
            if removed {
                let ended = session::revoke_all(conn, user_id)?;
                audit::record(
                    conn,
                    &actor,
                    Entry::new("user.sessions_ended", "user", user_id)
                        .after(json!({"sessions": ended, "reason": "second_factor_reset"})),
                )?;
            }
            Ok(removed)
        })
        .await?;
    Ok(see_other(if removed {
        "/admin/users?done=second-factor-reset"
    } else {
        "/admin/users?done=no-second-factor"
    }))
}

/// `None` when `auth` proved who they are within `DMA_REAUTH_MINUTES`; otherwise the response
/// that sends them to confirm it, returning to `back` (the page whose form they submitted).
/// Every sensitive action calls this after its policy check.
pub fn demand_recent(state: &AppState, auth: &Authenticated, back: &str) -> Option<HttpResponse> {
    let limit = chrono::Duration::minutes(state.settings.auth.reauth_minutes);
    if Utc::now().naive_utc() - auth.authenticated_at <= limit {
        return None;
    }
    Some(see_other(&format!(
        "{CONFIRM_PATH}?next={}",
        crate::web::errors::urlencode(back)
    )))
}

async fn confirm_page(
    state: &AppState,
    auth: &Authenticated,
    status: StatusCode,
    next: &str,
    errors: &[(&str, String)],
) -> Result<HttpResponse, AppError> {
    let user_id = auth.user.id;
    let (has_factor, linked) = state
        .db
        .read(move |conn| {
            Ok((
                second_factor::enabled_at(conn, user_id)?.is_some(),
                crate::services::auth::sso::linked_providers(conn, user_id)?,
            ))
        })
        .await?;
    // Signing in again through a linked provider also confirms (`web::sso`).
    let sso_providers: Vec<Value> = state
        .settings
        .auth
        .sso_providers
        .iter()
        .filter(|p| linked.contains(&p.key))
        .map(|p| json!({"key": p.key, "label": p.label}))
        .collect();
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "account/confirm",
        "Confirm it is you",
        json!({
            "next": next,
            "next_encoded": crate::web::errors::urlencode(next),
            "has_password": auth.user.password_hash.is_some(),
            "sso_providers": sso_providers,
            "has_factor": has_factor,
            "minutes": state.settings.auth.reauth_minutes,
            "password_error": error_for(errors, "password"),
            "code_error": error_for(errors, "code"),
            "errors": errors_list(errors),
        }),
    )?;
    Ok(no_store(status, html))
}

pub async fn confirm_form(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = crate::web::account::safe_next(query.next.as_deref());
    confirm_page(&state, &auth, StatusCode::OK, &next, &[]).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

pub async fn confirm(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let form = form.into_inner();
    let next = crate::web::account::safe_next(form.next.as_deref());
    let errors = confirm_identity(&state, &auth, form.password, form.code).await?;
    if !errors.is_empty() {
        let status = if errors.iter().any(|(_, m)| m.contains("too many")) {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return confirm_page(&state, &auth, status, &next, &errors).await;
    }
    Ok(see_other(&next))
}

/// Checks the signed-in person's password and, when they have one, their second factor,
/// counted by the sign-in throttle; on success the session's `authenticated_at` is now.
/// Returns the field errors (none when confirmed).
async fn confirm_identity(
    state: &AppState,
    auth: &Authenticated,
    typed_password: String,
    typed_code: String,
) -> Result<Vec<(&'static str, String)>, AppError> {
    if typed_password.is_empty() {
        return Ok(vec![("password", "Enter your password".into())]);
    }
    if typed_password.chars().count() > password::MAX_LENGTH {
        return Ok(vec![("password", "Your password is not correct".into())]);
    }
    let user_id = auth.user.id;
    let has_factor = state
        .db
        .read(move |conn| second_factor::enabled_at(conn, user_id))
        .await?
        .is_some();
    if has_factor && typed_code.trim().is_empty() {
        return Ok(vec![(
            "code",
            "Enter the 6-digit code from your authenticator app, or a recovery code".into(),
        )]);
    }
    let throttle = session::Throttle::new(&auth.user.email, auth.ip.as_deref());
    let claimed = state
        .db
        .write(move |conn| match session::claim_attempt(conn, &throttle) {
            Err(AppError::TooManyRequests(message)) => Ok(Err(message)),
            other => other.map(Ok),
        })
        .await?;
    let claimed = match claimed {
        Ok(claimed) => claimed,
        Err(message) => return Ok(vec![("password", message)]),
    };
    if !password::verify_bounded(typed_password, auth.user.password_hash.clone()).await {
        return Ok(vec![("password", "Your password is not correct".into())]);
    }
    if has_factor {
        let attempt = Some(claimed.clone());
        if let Err(refusal) =
            check_code(state, &auth.user, auth.ip.clone(), typed_code, attempt).await?
        {
            return Ok(vec![("code", refusal.message)]);
        }
    }
    let session_id = auth.session_id;
    state
        .db
        .write(move |conn| {
            session::attempt_succeeded(conn, &claimed)?;
            session::reauthenticated(conn, session_id, Utc::now().naive_utc())
        })
        .await?;
    Ok(Vec::new())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(STEP_PATH, web::get().to(step_form))
        .route(STEP_PATH, web::post().to(step))
        .route(ACCOUNT_PATH, web::get().to(account))
        .route(ACCOUNT_PATH, web::post().to(enrol))
        .route("/account/second-factor/remove", web::post().to(remove))
        .route(CONFIRM_PATH, web::get().to(confirm_form))
        .route(CONFIRM_PATH, web::post().to(confirm))
        .route(
            "/admin/users/{id}/second-factor/reset",
            web::post().to(admin_reset),
        );
}
