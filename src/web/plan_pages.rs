//! The improvement plan page (issue 23, docs/review.md): each domain's score against the
//! chosen band, its actions, and forms to add an action (pre-filled from the results page's
//! "path to the next band"), change an action's status, and choose the band. Plain forms, so
//! the page works without JavaScript.
//!
//! Authorisation: reading as for the assessment's other pages (auditors read the plans of
//! submitted assessments); every change `Answer` (the organisation's people).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{scoring, FieldError};
use crate::error::AppError;
use crate::services::assessments::Loaded;
use crate::services::auth::roles::Action;
use crate::services::plans::{self, ActionInput, ActionStatus, PlanAction};
use crate::services::sections;
use crate::web::assessment_pages::{base, crumbs, header_data, load_for, merge};
use crate::web::auth::Authenticated;
use crate::web::section_pages::{day, parse_due, refusal_status};
use crate::web::{page, AppState};

fn plan_href(id: i64) -> String {
    format!("{}/plan", base(id))
}

/// `?domain=&title=` (from the next-band section), `?done=`.
#[derive(Deserialize, Default)]
pub struct PlanQuery {
    domain: Option<String>,
    title: Option<String>,
    done: Option<String>,
}

/// The add form as typed (or pre-filled).
#[derive(Default, Clone)]
struct AddForm {
    domain: String,
    title: String,
    owner: String,
    owner_text: String,
    due_on: String,
}

#[derive(Default)]
struct Refusal {
    errors: Vec<FieldError>,
    conflict: Option<String>,
    form: AddForm,
}

fn action_view(a: &PlanAction, id: i64, may_change: bool) -> Value {
    json!({
        "id": a.id, "href": format!("{}/actions/{}", plan_href(id), a.id),
        "title": a.title, "owner": a.owner, "owner_user_id": a.owner_user_id,
        "owner_text": a.owner_text, "domain_key": a.domain_key,
        "due_on": a.due_on.map(day), "due_on_value": a.due_on.map(|d| d.to_string()),
        "status_label": a.status.label(), "status_colour": a.status.colour(),
        "revision": a.revision, "carried_from_cycle": a.carried_from_cycle,
        "statuses": ActionStatus::ALL.iter().map(|s| json!({"value": s.as_str(), "label": s.label(), "selected": *s == a.status})).collect::<Vec<_>>(),
        "may_change": may_change,
    })
}

async fn plan_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    refusal: &Refusal,
    flash: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let id = loaded.row.id;
    let org = loaded.row.organisation_id;
    let shared = loaded.clone();
    let (plan, people) = state
        .db
        .read(move |conn| Ok((plans::plan(conn, &shared)?, sections::people(conn, org)?)))
        .await?;
    let may_change = auth.may(Action::Answer(org));
    let q = loaded.questionnaire();
    let fmt = |s: Option<f64>| s.map(|s| scoring::round_display(s, q.decimals));
    let domains: Vec<Value> = plan
        .domains
        .iter()
        .map(|d| {
            json!({
                "key": d.key, "title": d.title, "score": fmt(d.score), "band": d.band,
                "below": d.below,
                "actions": d.actions.iter().map(|a| action_view(a, id, may_change)).collect::<Vec<_>>(),
                "selected": refusal.form.domain == d.key,
            })
        })
        .collect();
    let error_for = |f: &str| {
        refusal
            .errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    let mut summary: Vec<Value> = refusal
        .errors
        .iter()
        .map(|e| json!({"href": format!("#{}", e.path.replace('_', "-")), "message": e.message}))
        .collect();
    if let Some(c) = &refusal.conflict {
        summary.push(json!({"href": "#plan", "message": c}));
    }
    let data = merge(
        header_data(loaded),
        json!({
            "plan_href": plan_href(id),
            "threshold": plan.threshold, "chosen": plan.chosen,
            "bands": plan.bands.iter().map(|b| json!({"label": b, "selected": *b == plan.threshold})).collect::<Vec<_>>(),
            "domains": domains,
            "below_count": plan.domains.iter().filter(|d| d.below).count(),
            "other": plan.other.iter().map(|a| action_view(a, id, false)).collect::<Vec<_>>(),
            "may_change": may_change,
            "people": people.iter().map(|p| json!({"id": p.id, "label": format!("{} ({})", p.name, p.email), "selected": refusal.form.owner == p.id.to_string()})).collect::<Vec<_>>(),
            "form": {"title": refusal.form.title, "owner_text": refusal.form.owner_text, "due_on": refusal.form.due_on},
            "domain_error": error_for("domain"), "title_error": error_for("title"),
            "owner_error": error_for("owner").or_else(|| error_for("owner_text")),
            "due_on_error": error_for("due_on"), "band_error": error_for("band"),
            "prefilled": !refusal.form.title.is_empty() && refusal.errors.is_empty(),
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "flash": flash.map(|m| json!({"kind": "success", "message": m})),
            "breadcrumbs": crumbs(loaded),
        }),
    );
    page::render_with_status(
        refusal_status(refusal.conflict.is_some(), !refusal.errors.is_empty()),
        state,
        Some(&auth.page_user()),
        "assessment/plan",
        "Improvement plan",
        data,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    query: web::Query<PlanQuery>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &auth, path.into_inner(), Action::ReadOrganisation).await?;
    let query = query.into_inner();
    let flash = match query.done.as_deref() {
        Some("added") => Some("The action has been added to the plan."),
        Some("changed") => Some("The action has been changed."),
        Some("threshold") => Some("The band has been chosen."),
        _ => None,
    };
    let refusal = Refusal {
        form: AddForm {
            domain: query.domain.unwrap_or_default(),
            title: query
                .title
                .map(|t| t.chars().take(plans::MAX_TITLE_CHARS).collect())
                .unwrap_or_default(),
            ..AddForm::default()
        },
        ..Refusal::default()
    };
    plan_page(&state, &auth, &loaded, &refusal, flash).await
}

async fn after(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    outcome: Result<(), AppError>,
    done: &str,
    mut refusal: Refusal,
) -> Result<HttpResponse, AppError> {
    match outcome {
        Ok(()) => {
            // An action given to someone queued an email in the change's transaction.
            crate::services::mail::wake();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("{}?done={done}", plan_href(id))))
                .finish())
        }
        Err(AppError::Validation(errors)) => {
            refusal.errors = errors;
            let loaded = load_for(state, auth, id, Action::ReadOrganisation).await?;
            plan_page(state, auth, &loaded, &refusal, None).await
        }
        Err(AppError::Conflict(message)) => {
            refusal.conflict = Some(message);
            let loaded = load_for(state, auth, id, Action::ReadOrganisation).await?;
            plan_page(state, auth, &loaded, &refusal, None).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    domain: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    owner_text: String,
    #[serde(default)]
    due_on: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    revision: String,
}

fn input_of(form: &ActionForm) -> Result<ActionInput, AppError> {
    let owner_user_id = match form.owner.trim() {
        "" => None,
        text => Some(text.parse::<i64>().map_err(|_| {
            AppError::Validation(vec![FieldError::new(
                "owner",
                "Choose a person from your organisation, or name the owner",
            )])
        })?),
    };
    let status = match form.status.trim() {
        "" => ActionStatus::Planned,
        s => ActionStatus::parse(s).ok_or_else(|| {
            AppError::Validation(vec![FieldError::new(
                "status",
                "Choose planned, in progress, done or dropped",
            )])
        })?,
    };
    Ok(ActionInput {
        domain_key: form.domain.trim().to_string(),
        title: form.title.clone(),
        owner_user_id,
        owner_text: form.owner_text.clone(),
        due_on: parse_due(&form.due_on)?,
        status,
    })
}

fn typed(form: &ActionForm) -> Refusal {
    Refusal {
        form: AddForm {
            domain: form.domain.clone(),
            title: form.title.clone(),
            owner: form.owner.clone(),
            owner_text: form.owner_text.clone(),
            due_on: form.due_on.clone(),
        },
        ..Refusal::default()
    }
}

pub async fn add(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let id = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let outcome = match input_of(&form) {
        Err(e) => Err(e),
        Ok(input) => {
            let (actor, who, notifier) = (auth.actor(), auth.user.clone(), state.notifier());
            state
                .db
                .write(move |conn| {
                    plans::add(conn, &notifier, &actor, &who, &loaded, &input).map(|_| ())
                })
                .await
        }
    };
    after(&state, &auth, id, outcome, "added", typed(&form)).await
}

pub async fn change(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, action_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let seen = form.revision.trim().parse::<i64>().map_err(|_| {
        AppError::BadRequest(
            "The form did not say which version of the action it showed. Reload the page and try again.".into(),
        )
    })?;
    let outcome = match input_of(&form) {
        Err(e) => Err(e),
        Ok(input) => {
            let (actor, who, notifier) = (auth.actor(), auth.user.clone(), state.notifier());
            state
                .db
                .write(move |conn| {
                    plans::update(
                        conn,
                        &notifier,
                        (&actor, &who),
                        &loaded,
                        (action_id, seen),
                        &input,
                    )
                    .map(|_| ())
                })
                .await
        }
    };
    after(&state, &auth, id, outcome, "changed", Refusal::default()).await
}

#[derive(Deserialize)]
pub struct BandForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    band: String,
}

pub async fn threshold(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<BandForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let id = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let (actor, who, band) = (auth.actor(), auth.user.clone(), form.band.clone());
    let outcome = state
        .db
        .write(move |conn| plans::set_threshold(conn, &actor, &who, &loaded, &band))
        .await;
    after(&state, &auth, id, outcome, "threshold", Refusal::default()).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assessments/{id}/plan")
            .route("", web::get().to(show))
            .route("/threshold", web::post().to(threshold))
            .route("/actions", web::post().to(add))
            .route("/actions/{action}", web::post().to(change)),
    );
}
