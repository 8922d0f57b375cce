//! The respondents' pages: an organisation's assessments, one page per domain (every question
//! type, N/A, conditions applied on the server so pages work without JavaScript, errors by the
//! field, save and continue, autosave), the review of missing answers, sign-off and
//! submission, the confirmation and the results with a radar chart and the per-domain
//! explanation. Authorisation: reading needs `ReadOrganisation`, saving `Answer`, submitting
//! `Approve` (approvers only), reopening `Administer`.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::assessments::{self, Change, Loaded, SignOff};
use crate::auth::roles::Action;
use crate::auth::session::Authenticated;
use crate::domain::{scoring, visibility, FieldError};
use crate::error::AppError;
use crate::web::{charts, page, questions, AppState};

fn base(id: i64) -> String {
    format!("/assessments/{id}")
}

async fn load_for(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    action: fn(i64) -> Action,
) -> Result<Loaded, AppError> {
    load_checked(state, id, |org| auth.require(action(org))).await
}

/// Load an assessment if `allowed` accepts its organisation (the pages and the API).
pub async fn load_checked(
    state: &AppState,
    id: i64,
    allowed: impl FnOnce(i64) -> Result<(), AppError>,
) -> Result<Loaded, AppError> {
    let loaded = state
        .db
        .read(move |conn| assessments::load(conn, id))
        .await?;
    allowed(loaded.row.organisation_id)?;
    Ok(loaded)
}

fn crumbs(loaded: &Loaded) -> Value {
    json!([
        {"href": "/dashboard", "label": "Home"},
        {"href": base(loaded.row.id), "label": format!("{} {}", loaded.cycle_label, loaded.row.setting)},
    ])
}

fn progress(loaded: &Loaded, report: &scoring::Assessment) -> Vec<Value> {
    let q = loaded.questionnaire();
    q.domains
        .iter()
        .zip(&report.domains)
        .map(|(d, s)| {
            let carried = d
                .questions
                .iter()
                .filter(|x| {
                    loaded
                        .answers
                        .get(&x.key)
                        .is_some_and(|a| a.carried_forward)
                })
                .count();
            json!({
                "key": d.key, "title": d.title,
                "href": format!("{}/domains/{}", base(loaded.row.id), d.key),
                "answered": s.answered, "visible": s.visible,
                "percent": (s.answered * 100).checked_div(s.visible).unwrap_or(100),
                "complete": s.required_missing.is_empty() && s.answered == s.visible,
                "carried_forward": carried,
            })
        })
        .collect()
}

fn header_data(loaded: &Loaded) -> Value {
    let (label, colour) = assessments::status_label(&loaded.row.status);
    json!({
        "id": loaded.row.id,
        "organisation": loaded.organisation_name,
        "cycle": loaded.cycle_label,
        "setting": loaded.row.setting,
        "set_title": loaded.questionnaire().title,
        "deadline": loaded.deadline.format("%-d %B %Y").to_string(),
        "status_label": label, "status_colour": colour,
        "open": loaded.is_open_for_answers(),
        "base": base(loaded.row.id),
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

pub async fn overview(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let people: Vec<Value> = state
        .db
        .read(move |conn| assessments::contributors(conn, id))
        .await?
        .into_iter()
        .map(|(name, at)| json!({"name": name, "at": at.format("%-d %b %Y %H:%M").to_string()}))
        .collect();
    let today = chrono::Utc::now().date_naive();
    let report = scoring::score(loaded.questionnaire(), &loaded.answers());
    let data = merge(
        header_data(&loaded),
        json!({
            "domains": progress(&loaded, &report),
            "answered": report.answered, "visible": report.visible,
            "missing": report.missing_required.len(),
            "can_answer": auth.may(Action::Answer(loaded.row.organisation_id)),
            "can_submit": auth.may(Action::Approve(loaded.row.organisation_id)) && loaded.is_open_for_answers(),
            "submitted": loaded.row.status == "submitted",
            "can_reopen": auth.may(Action::Administer) && loaded.row.status == "submitted",
        "can_extend": auth.may(Action::Administer) && loaded.is_open_for_answers(),
        "overdue": loaded.is_open_for_answers() && today > loaded.deadline,
        "extended": loaded.row.deadline_override.is_some(),
        "people": people,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    );
    page::render(
        &state,
        Some(&auth.page_user()),
        "assessment/overview",
        &format!("{} assessment", loaded.cycle_label),
        data,
    )
}

/// What a refused save hands back to the page: what was typed, and why it was not saved.
#[derive(Default)]
struct Feedback<'a> {
    submitted: BTreeMap<String, Vec<String>>,
    errors: &'a [FieldError],
    conflicts: &'a [assessments::Conflict],
}

/// Draw one domain's page, with submitted values and errors when a save was refused.
fn domain_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    domain_key: &str,
    feedback: &Feedback<'_>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let (submitted, errors, conflicts) = (&feedback.submitted, feedback.errors, feedback.conflicts);
    let q = loaded.questionnaire();
    let index = q
        .domains
        .iter()
        .position(|d| d.key == domain_key)
        .ok_or(AppError::NotFound)?;
    let given = loaded.answers();
    let visible = visibility::visible(q, &given);
    let views = questions::domain_views(q, &given, submitted, &visible, errors);
    let mut domain = views.into_iter().nth(index).ok_or(AppError::NotFound)?;
    if let Some(list) = domain.get_mut("questions").and_then(Value::as_array_mut) {
        for view in list.iter_mut() {
            let key = view["key"].as_str().unwrap_or_default().to_string();
            let stored = loaded.answers.get(&key);
            view["revision"] = json!(stored.map_or(0, |s| s.revision));
            view["carried_forward"] = json!(stored.is_some_and(|s| s.carried_forward));
            view["history_href"] =
                json!(format!("{}/questions/{key}/history", base(loaded.row.id)));
            if let Some(c) = conflicts.iter().find(|c| c.key == key) {
                view["conflict"] = json!(format!(
                    "{} changed this answer while you were working. Their answer: {}. Yours is shown below and was not saved; choose again to keep yours.",
                    c.changed_by.clone().unwrap_or_else(|| "Someone else".into()),
                    c.their_value.as_ref().map_or("no answer".to_string(), |v| v.to_string())
                ));
            }
        }
    }
    let report = scoring::score(q, &given);
    let mut summary: Vec<Value> = errors
        .iter()
        .map(|e| json!({"href": format!("#q-{}-group", e.path), "message": e.message}))
        .collect();
    summary.extend(conflicts.iter().map(|c| json!({"href": format!("#q-{}-group", c.key), "message": format!("Someone else changed \"{}\" while you were working", c.key)})));
    let next = q
        .domains
        .get(index + 1)
        .map(|d| format!("{}/domains/{}", base(loaded.row.id), d.key));
    let can_answer =
        auth.may(Action::Answer(loaded.row.organisation_id)) && loaded.is_open_for_answers();
    let data = merge(
        header_data(loaded),
        json!({
            "domain": domain,
            "domain_number": index + 1, "domain_count": q.domains.len(),
            "progress": progress(loaded, &report).into_iter().nth(index),
            "next": next,
            "can_answer": can_answer,
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "breadcrumbs": crumbs(loaded),
        }),
    );
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "assessment/domain",
        q.domains[index].title.as_str(),
        data,
    )?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

pub async fn domain(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    domain_page(
        &state,
        &auth,
        &loaded,
        &key,
        &Feedback::default(),
        StatusCode::OK,
    )
}

/// The changes a domain form carries: every question listed in `present.<key>` (what the
/// page showed), with its `rev.<key>`; an unticked set of boxes clears the answer.
fn changes_from_form(
    loaded: &Loaded,
    pairs: &[(String, String)],
) -> (Vec<Change>, Vec<FieldError>, BTreeMap<String, Vec<String>>) {
    let q = loaded.questionnaire();
    let submitted = questions::form_values(pairs);
    let present: BTreeSet<&str> = pairs
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("present."))
        .collect();
    let revisions: BTreeMap<&str, i64> = pairs
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("rev.")?, v.parse().ok()?)))
        .collect();
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for key in present {
        let Some(question) = q.question(key) else {
            errors.push(FieldError::new(
                key,
                "there is no such question in this assessment",
            ));
            continue;
        };
        let raw = submitted.get(key).cloned().unwrap_or_default();
        match crate::domain::answers::from_form(question, &raw) {
            Ok(answer) => changes.push(Change {
                key: key.to_string(),
                answer,
                seen_revision: revisions.get(key).copied().unwrap_or(0),
            }),
            Err(message) => errors.push(FieldError::new(key, message)),
        }
    }
    (changes, errors, submitted)
}

/// What a saved form leaves: the assessment as it was loaded (in the saving transaction), the
/// outcome, the fields that could not be read, and what was typed.
struct FormSave {
    before: Loaded,
    outcome: assessments::SaveOutcome,
    errors: Vec<FieldError>,
    submitted: BTreeMap<String, Vec<String>>,
}

/// Load, authorise and save a form's answers in one transaction: one load and one pooled
/// connection per save (autosave is the service's busiest request). Valid answers are saved
/// even when another field has an error, so nothing the person typed is lost.
async fn save_form(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    pairs: Vec<(String, String)>,
) -> Result<FormSave, AppError> {
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map_or("", |(_, v)| v.as_str());
    auth.check_csrf(csrf)?;
    let auth = auth.clone();
    state
        .db
        .write(move |conn| {
            let before = assessments::load(conn, id)?;
            auth.require(Action::Answer(before.row.organisation_id))?;
            let (changes, errors, submitted) = changes_from_form(&before, &pairs);
            let outcome = assessments::save_loaded(conn, &auth.actor(), &before, &changes)?;
            Ok(FormSave {
                before,
                outcome,
                errors,
                submitted,
            })
        })
        .await
}

pub async fn save_domain(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let pairs = form.into_inner();
    let wants_continue = pairs.iter().any(|(k, v)| k == "action" && v == "continue");
    let FormSave {
        before,
        outcome,
        errors,
        submitted,
    } = save_form(&state, &auth, id, pairs).await?;
    let visible_before = visibility::visible(before.questionnaire(), &before.answers());
    let reloaded = state
        .db
        .read(move |conn| assessments::load(conn, id))
        .await?;
    if !errors.is_empty() || !outcome.conflicts.is_empty() {
        let feedback = Feedback {
            submitted,
            errors: &errors,
            conflicts: &outcome.conflicts,
        };
        return domain_page(
            &state,
            &auth,
            &reloaded,
            &key,
            &feedback,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let visible_after = visibility::visible(reloaded.questionnaire(), &reloaded.answers());
    let newly_shown = reloaded
        .questionnaire()
        .domains
        .iter()
        .find(|d| d.key == key)
        .is_some_and(|d| {
            d.questions
                .iter()
                .any(|x| visible_after.contains(&x.key) && !visible_before.contains(&x.key))
        });
    let q = reloaded.questionnaire();
    let index = q.domains.iter().position(|d| d.key == key).unwrap_or(0);
    let location = match (newly_shown, wants_continue, q.domains.get(index + 1)) {
        // New questions appeared on this page: show them rather than moving on.
        (true, _, _) | (false, false, _) => format!("{}/domains/{key}?saved=1", base(id)),
        (false, true, Some(next)) => format!("{}/domains/{}", base(id), next.key),
        (false, true, None) => format!("{}/review", base(id)),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish())
}

/// JSON autosave: the same save as the form, answering with the new revisions, or 409 with the
/// conflict when someone else changed an answer first.
pub async fn autosave(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let FormSave {
        outcome, errors, ..
    } = save_form(&state, &auth, id, form.into_inner()).await?;
    if let Some(c) = outcome.conflicts.first() {
        return Ok(HttpResponse::Conflict().json(json!({
            "message": format!("{} changed \"{}\" while you were working. Reload the page to see their answer before changing it.", c.changed_by.clone().unwrap_or_else(|| "Someone else".into()), c.key),
            "conflicts": outcome.conflicts,
            "saved": outcome.saved,
            "revisions": outcome.revisions,
        })));
    }
    if let Some(e) = errors.first() {
        return Ok(HttpResponse::UnprocessableEntity().json(json!({"error": e.message, "errors": errors, "saved": outcome.saved, "revisions": outcome.revisions})));
    }
    Ok(HttpResponse::Ok().json(json!({"saved": outcome.saved, "revisions": outcome.revisions})))
}

pub async fn review(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &auth, path.into_inner(), Action::ReadOrganisation).await?;
    let q = loaded.questionnaire();
    let report = scoring::score(q, &loaded.answers());
    let missing: Vec<Value> = report
        .missing_required
        .iter()
        .filter_map(|k| {
            let question = q.question(k)?;
            let domain = q.domain_of(k)?;
            Some(json!({"text": question.text, "domain": domain.title, "href": format!("{}/domains/{}#q-{k}-group", base(loaded.row.id), domain.key)}))
        })
        .collect();
    let carried: Vec<Value> = q
        .questions()
        .filter(|(_, x)| loaded.answers.get(&x.key).is_some_and(|a| a.carried_forward))
        .filter_map(|(_, x)| {
            let domain = q.domain_of(&x.key)?;
            Some(json!({"text": x.text, "href": format!("{}/domains/{}#q-{}-group", base(loaded.row.id), domain.key, x.key)}))
        })
        .collect();
    let data = merge(
        header_data(&loaded),
        json!({
            "missing": missing, "carried": carried, "complete": report.complete,
            "can_submit": auth.may(Action::Approve(loaded.row.organisation_id)) && loaded.is_open_for_answers(),
            "domains": progress(&loaded, &report),
            "breadcrumbs": crumbs(&loaded),
        }),
    );
    page::render(
        &state,
        Some(&auth.page_user()),
        "assessment/review",
        "Check your answers",
        data,
    )
}

fn submit_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    errors: &[FieldError],
    name: &str,
    job: &str,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let error_for = |f: &str| {
        errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    let incomplete: Vec<&FieldError> = errors
        .iter()
        .filter(|e| {
            !["signoff-name", "signoff-job-title", "declaration"].contains(&e.path.as_str())
        })
        .collect();
    let summary: Vec<Value> = errors
        .iter()
        .map(|e| if incomplete.iter().any(|i| i.path == e.path) {
            json!({"href": format!("{}/review", base(loaded.row.id)), "message": format!("Answer \"{}\" before submitting", e.path)})
        } else {
            json!({"href": format!("#{}", e.path), "message": e.message})
        })
        .collect();
    let data = merge(
        header_data(loaded),
        json!({
            "name": name, "job_title": job,
            "name_error": error_for("signoff-name"), "job_error": error_for("signoff-job-title"), "declaration_error": error_for("declaration"),
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "breadcrumbs": crumbs(loaded),
        }),
    );
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "assessment/submit",
        "Sign off and submit",
        data,
    )?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

pub async fn submit_form(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &auth, path.into_inner(), Action::Approve).await?;
    if !loaded.is_open_for_answers() {
        return Err(AppError::Conflict(
            "This assessment has already been submitted.".into(),
        ));
    }
    submit_page(
        &state,
        &auth,
        &loaded,
        &[],
        &auth.user.name,
        "",
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    job_title: String,
    #[serde(default)]
    declaration: String,
}

pub async fn submit(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<SubmitForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let id = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Approve).await?;
    let signoff = SignOff {
        name: form.name.clone(),
        job_title: form.job_title.clone(),
        declaration: form.declaration == "yes",
    };
    let actor = auth.actor();
    let notifier = state.notifier();
    match state
        .db
        .write(move |conn| assessments::submit(conn, &actor, id, &signoff, &notifier))
        .await
    {
        Ok(_) => {
            crate::mail::wake();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("{}/confirmation", base(id))))
                .finish())
        }
        Err(AppError::Validation(errors)) => submit_page(
            &state,
            &auth,
            &loaded,
            &errors,
            &form.name,
            &form.job_title,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => Err(e),
    }
}

pub async fn confirmation(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let (reference, at, report) = state
        .db
        .read(move |conn| assessments::current_scores(conn, id))
        .await?
        .ok_or(AppError::NotFound)?;
    let q = loaded.questionnaire();
    let data = merge(
        header_data(&loaded),
        json!({
            "reference": reference,
            "submitted_at": at.format("%-d %B %Y at %H:%M").to_string(),
            "overall": report.overall.score.map(|s| scoring::round_display(s, q.decimals)),
            "overall_band": report.overall.band,
            "breadcrumbs": crumbs(&loaded),
        }),
    );
    page::render(
        &state,
        Some(&auth.page_user()),
        "assessment/confirmation",
        "Assessment submitted",
        data,
    )
}

pub async fn results(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let stored = state
        .db
        .read(move |conn| assessments::current_scores(conn, id))
        .await?;
    let q = loaded.questionnaire();
    // Submitted results are the stored scores; before submission, the live provisional ones.
    let (report, reference) = match stored {
        Some((reference, _, report)) => (report, Some(reference)),
        None => (scoring::score(q, &loaded.answers()), None),
    };
    let titles: Vec<String> = q.domains.iter().map(|d| d.title.clone()).collect();
    let values: Vec<Option<f64>> = report.domains.iter().map(|d| d.score).collect();
    let chart = charts::radar(
        &format!("Domain scores for {}", loaded.organisation_name),
        &titles,
        &values,
        q.scale.min,
        q.scale.max,
    );
    let fmt = |s: Option<f64>| s.map(|s| scoring::round_display(s, q.decimals));
    let domains: Vec<Value> = q
        .domains
        .iter()
        .zip(&report.domains)
        .map(|(d, s)| {
            json!({
                "title": d.title, "score": fmt(s.score), "band": s.band, "counted": s.counted,
                "explanation": s.explanation.iter().map(|c| {
                    let text = q.question(&c.key).map_or(c.key.as_str(), |x| x.text.as_str());
                    json!({"text": text, "counted": c.counted, "raw": c.raw.map(|r| scoring::round_display(r, 2)), "normalised": c.normalised.map(|n| scoring::round_display(n, 2)), "weight": c.weight, "reason": c.reason.describe()})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let pillars: Vec<Value> = report
        .pillars
        .iter()
        .map(|(k, s)| json!({"title": q.pillars.iter().find(|p| &p.key == k).map_or(k.as_str(), |p| p.title.as_str()), "score": fmt(s.score), "band": s.band}))
        .collect();
    let data = merge(
        header_data(&loaded),
        json!({
            "provisional": reference.is_none(), "reference": reference,
            "overall": fmt(report.overall.score), "overall_band": report.overall.band,
            "scale_min": q.scale.min, "scale_max": q.scale.max,
            "pillars": pillars, "domains": domains, "chart": chart,
            "breadcrumbs": crumbs(&loaded),
        }),
    );
    page::render(
        &state,
        Some(&auth.page_user()),
        "assessment/results",
        "Results",
        data,
    )
}

pub async fn history(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let question = loaded
        .questionnaire()
        .question(&key)
        .ok_or(AppError::NotFound)?
        .text
        .clone();
    let k = key.clone();
    let rows = state
        .db
        .read(move |conn| assessments::history(conn, id, &k))
        .await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|h| json!({"who": h.who.unwrap_or_else(|| "Carried forward or system".into()), "old": h.old.unwrap_or_else(|| "(no answer)".into()), "new": h.new.unwrap_or_else(|| "(cleared)".into()), "at": h.at.format("%-d %b %Y %H:%M:%S").to_string()}))
        .collect();
    let data = merge(
        header_data(&loaded),
        json!({"question": question, "rows": rows, "breadcrumbs": crumbs(&loaded)}),
    );
    page::render(
        &state,
        Some(&auth.page_user()),
        "assessment/history",
        "Answer history",
        data,
    )
}

#[derive(Deserialize)]
pub struct DeadlineForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    deadline: String,
}

pub async fn extend_deadline(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<DeadlineForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    auth.require(Action::Administer)?;
    let id = path.into_inner();
    let deadline =
        chrono::NaiveDate::parse_from_str(form.deadline.trim(), "%Y-%m-%d").map_err(|_| {
            AppError::Validation(vec![FieldError::new(
                "deadline",
                "Enter a real date, like 2026-04-01",
            )])
        })?;
    let actor = auth.actor();
    state
        .db
        .write(move |conn| assessments::extend_deadline(conn, &actor, id, deadline))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, base(id)))
        .finish())
}

#[derive(Deserialize)]
pub struct ReopenForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    reason: String,
}

pub async fn reopen(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<ReopenForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    auth.require(Action::Administer)?;
    let id = path.into_inner();
    let actor = auth.actor();
    let reason = form.reason.clone();
    state
        .db
        .write(move |conn| assessments::reopen(conn, &actor, id, &reason))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, base(id)))
        .finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assessments/{id}")
            .route("", web::get().to(overview))
            .route("/domains/{key}", web::get().to(domain))
            .route("/domains/{key}", web::post().to(save_domain))
            .route("/autosave", web::post().to(autosave))
            .route("/review", web::get().to(review))
            .route("/submit", web::get().to(submit_form))
            .route("/submit", web::post().to(submit))
            .route("/confirmation", web::get().to(confirmation))
            .route("/results", web::get().to(results))
            .route("/questions/{key}/history", web::get().to(history))
            .route("/reopen", web::post().to(reopen))
            .route("/deadline", web::post().to(extend_deadline)),
    );
}
