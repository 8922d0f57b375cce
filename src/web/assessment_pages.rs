//! The respondents' pages: an organisation's assessments, one page per domain (every question
//! type, N/A, conditions applied on the server so pages work without JavaScript, errors by the
//! field, save and continue, autosave), the review of missing answers, sign-off and
//! submission, the confirmation and the results with a radar chart and the per-domain
//! explanation. Authorisation: reading needs `ReadOrganisation` (and `ReadInProgress` until the
//! assessment is submitted, which auditors lack), saving `Answer`, submitting `Approve`
//! (approvers only), reopening `Administer`.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{next_band, scoring, visibility, Answers, FieldError, Questionnaire};
use crate::error::AppError;
use crate::services::assessments::{self, Change, Loaded, SignOff};
use crate::services::auth::roles::Action;
use crate::web::auth::{Authenticated, SessionCookie};
use crate::web::{charts, page, questions, AppState};

pub fn base(id: i64) -> String {
    format!("/assessments/{id}")
}

pub async fn load_for(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    action: fn(i64) -> Action,
) -> Result<Loaded, AppError> {
    let loaded = load_checked(state, id, |org| auth.require(action(org))).await?;
    require_in_progress_reader(&loaded, |a| auth.require(a))?;
    Ok(loaded)
}

/// An assessment not yet submitted is read only by those who may see answers in progress
/// (not auditors, who read what was submitted).
pub fn require_in_progress_reader(
    loaded: &Loaded,
    require: impl FnOnce(Action) -> Result<(), AppError>,
) -> Result<(), AppError> {
    if loaded.row.status == "submitted" {
        Ok(())
    } else {
        require(Action::ReadInProgress(loaded.row.organisation_id))
    }
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

pub fn crumbs(loaded: &Loaded) -> Value {
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
                // Done when nothing required is missing: an unanswered optional question
                // does not keep a section "in progress" (after submission, nothing does).
                "complete": s.required_missing.is_empty() && (s.answered > 0 || !loaded.is_open_for_answers()),
                "carried_forward": carried,
            })
        })
        .collect()
}

/// Every shown question of each section with its answer in words and where to change it, for
/// "Check your answers" and the sign-off page (the approver sees what they sign).
fn answer_sections(loaded: &Loaded) -> Vec<Value> {
    let q = loaded.questionnaire();
    let visible = visibility::visible(q, &loaded.answers());
    q.domains
        .iter()
        .map(|d| {
            let rows: Vec<Value> = d
                .questions
                .iter()
                .filter(|x| visible.contains(&x.key))
                .map(|x| {
                    let stored = loaded.answers.get(&x.key);
                    json!({
                        "key": x.key,
                        "evidence": [],
                        "text": x.text,
                        "required": x.required,
                        "answered": stored.is_some_and(|s| crate::domain::answers::is_answered(&s.answer)),
                        "answer": stored.map(|s| questions::answer_words(x, &s.answer)),
                        "carried_forward": stored.is_some_and(|s| s.carried_forward),
                        "href": format!("{}/domains/{}#q-{}-group", base(loaded.row.id), d.key, x.key),
                    })
                })
                .collect();
            json!({"key": d.key, "title": d.title, "rows": rows})
        })
        .collect()
}

pub fn header_data(loaded: &Loaded) -> Value {
    let (label, colour) = loaded.status_label();
    json!({
        "id": loaded.row.id,
        "organisation": loaded.organisation_name,
        "cycle": loaded.cycle_label,
        "setting": loaded.row.setting,
        "set_title": loaded.questionnaire().title,
        "deadline": loaded.deadline.format("%-d %B %Y").to_string(),
        "status_label": label, "status_colour": colour,
        "open": loaded.is_open_for_answers(),
        "closed": loaded.is_closed(),
        "closed_reason": loaded.is_closed().then(|| loaded.closed_reason()),
        "base": base(loaded.row.id),
    })
}

pub fn merge(mut a: Value, b: Value) -> Value {
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
    overview_page(&state, &auth, &loaded, &OverviewForms::default()).await
}

/// What an administrator typed into the overview's forms (reopen, extend the deadline) when
/// it was refused, to draw the page again with the errors beside the fields.
#[derive(Default)]
struct OverviewForms {
    errors: Vec<FieldError>,
    reason: String,
    deadline: String,
}

async fn overview_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    forms: &OverviewForms,
) -> Result<HttpResponse, AppError> {
    let id = loaded.row.id;
    let people: Vec<Value> = state
        .db
        .read(move |conn| assessments::contributors(conn, id))
        .await?
        .into_iter()
        .map(|(name, at)| json!({"name": name, "at": at.format("%-d %b %Y %H:%M").to_string()}))
        .collect();
    let shared = loaded.clone();
    let (sections, audit) = state
        .db
        .read(move |conn| {
            Ok((
                crate::services::sections::sections(conn, &shared)?,
                crate::services::review::review(conn, &shared)?,
            ))
        })
        .await?;
    let today = chrono::Utc::now().date_naive();
    let report = scoring::score(loaded.questionnaire(), &loaded.answers());
    let domains: Vec<Value> = progress(loaded, &report)
        .into_iter()
        .zip(&sections)
        .map(|(p, s)| {
            merge(
                p,
                json!({"section": crate::web::section_pages::section_view(id, s)}),
            )
        })
        .collect();
    let reviewed = sections
        .iter()
        .filter(|s| s.status == crate::services::sections::Status::Reviewed)
        .count();
    let error_for = |f: &str| {
        forms
            .errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    let summary: Vec<Value> = forms
        .errors
        .iter()
        .map(|e| json!({"href": format!("#{}", e.path), "message": e.message}))
        .collect();
    let data = merge(
        header_data(loaded),
        json!({
            "domains": domains,
            "reviewed": reviewed, "section_count": sections.len(),
            "audit": crate::web::review_pages::state_view(id, &audit),
            "answered": report.answered, "visible": report.visible,
            "missing": report.missing_required.len(),
            "can_answer": auth.may(Action::Answer(loaded.row.organisation_id)),
            "can_submit": auth.may(Action::Approve(loaded.row.organisation_id)) && loaded.is_open_for_answers(),
            "submitted": loaded.row.status == "submitted",
            "can_reopen": auth.may(Action::Administer) && loaded.row.status == "submitted" && !loaded.is_closed(),
            "can_extend": auth.may(Action::Administer) && loaded.is_open_for_answers(),
            "overdue": loaded.is_open_for_answers() && today > loaded.deadline,
            "extended": loaded.row.deadline_override.is_some(),
            "people": people,
            "reason": forms.reason, "reason_error": error_for("reason"),
            "new_deadline": forms.deadline, "deadline_error": error_for("deadline"),
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
        }),
    );
    let html = page::render_html(
        state,
        Some(&auth.page_user()),
        "assessment/overview",
        &format!("{} assessment", loaded.cycle_label),
        data,
    )?;
    let status = if summary.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// A refused administrator's form on the overview: the overview again, with the errors.
async fn overview_refused(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    forms: OverviewForms,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(state, auth, id, Action::ReadOrganisation).await?;
    overview_page(state, auth, &loaded, &forms).await
}

/// What a refused save hands back to the page: what was typed, and why it was not saved.
#[derive(Default)]
struct Feedback<'a> {
    submitted: BTreeMap<String, Vec<String>>,
    errors: &'a [FieldError],
    conflicts: &'a [assessments::Conflict],
    /// The page follows a successful save without JavaScript.
    saved: bool,
}

/// A refused stale edit in words: both answers by their labels, and the person's own values
/// kept in the form so "Keep my answer" saves them in one step.
fn conflict_view(
    q: &crate::domain::questionnaire::Questionnaire,
    c: &assessments::Conflict,
    mine: Option<&Vec<String>>,
) -> Value {
    let Some(question) = q.question(&c.key) else {
        return Value::Null;
    };
    let mine_values = mine.cloned().unwrap_or_default();
    let mine_words = match crate::domain::answers::from_form(question, &mine_values) {
        Ok(Some(answer)) => questions::answer_words(question, &answer),
        Ok(None) => "No answer".to_string(),
        Err(_) => mine_values.join(", "),
    };
    json!({
        "key": c.key,
        "who": c.changed_by.clone().unwrap_or_else(|| "Someone else".into()),
        "question": question.text,
        "theirs": questions::stored_words(question, c.their_value.as_ref()),
        "mine": mine_words,
        "mine_values": mine_values,
    })
}

/// "Keep my answer" after a stale edit: the person's own values (posted as `mine.<key>`)
/// replace the field's, which shows the other person's answer, so the save goes through
/// against the revision the page now holds.
fn keep_mine(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let Some(key) = pairs
        .iter()
        .find(|(k, _)| k == "keep")
        .map(|(_, v)| v.clone())
    else {
        return pairs;
    };
    let field = format!("{}{key}", questions::FIELD_PREFIX);
    let mine = format!("mine.{key}");
    pairs
        .into_iter()
        .filter(|(k, _)| *k != field)
        .map(|(k, v)| {
            if k == mine {
                (field.clone(), v)
            } else {
                (k, v)
            }
        })
        .collect()
}

/// Draw one domain's page, with submitted values and errors when a save was refused.
async fn domain_page(
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
            view["top_level"] = json!(true);
            view["carried_forward"] = json!(stored.is_some_and(|s| s.carried_forward));
            view["history_href"] =
                json!(format!("{}/questions/{key}/history", base(loaded.row.id)));
            if let Some(c) = conflicts.iter().find(|c| c.key == key) {
                view["conflict"] = conflict_view(q, c, submitted.get(&key));
            }
        }
    }
    let (shared, section_key) = (loaded.clone(), domain_key.to_string());
    let reach = crate::web::note_pages::reach_of(auth, loaded);
    let (section, note_counts) = state
        .db
        .read(move |conn| {
            Ok((
                crate::services::sections::section(conn, &shared, &section_key)?,
                crate::services::notes::counts(conn, shared.row.id, reach)?,
            ))
        })
        .await?;
    let mut evidence = crate::web::evidence_pages::for_questions(state, auth, loaded).await?;
    if let Some(list) = domain.get_mut("questions").and_then(Value::as_array_mut) {
        for view in list.iter_mut() {
            let key = view["key"].as_str().unwrap_or_default().to_string();
            view["evidence"] = evidence.remove(&key).unwrap_or(Value::Null);
            view["notes_href"] = json!(format!("{}/questions/{key}/notes", base(loaded.row.id)));
            view["notes_count"] = json!(note_counts.get(&key).copied().unwrap_or(0));
        }
    }
    let report = scoring::score(q, &given);
    let mut summary: Vec<Value> = errors
        .iter()
        .map(|e| json!({"href": format!("#q-{}-group", e.path), "message": e.message}))
        .collect();
    summary.extend(conflicts.iter().map(|c| {
        let text = q.question(&c.key).map_or(c.key.as_str(), |x| x.text.as_str());
        json!({"href": format!("#conflict-{}", c.key), "message": format!("{} changed \"{text}\" while you were working: choose whose answer to keep", c.changed_by.clone().unwrap_or_else(|| "Someone else".into()))})
    }));
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
            "section": crate::web::section_pages::section_view(loaded.row.id, &section),
            "progress": progress(loaded, &report).into_iter().nth(index),
            "next": next,
            "can_answer": can_answer,
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "flash": if feedback.saved && summary.is_empty() { json!({"kind": "success", "message": "Your answers in this section have been saved."}) } else { Value::Null },
            "breadcrumbs": crumbs(loaded),
        }),
    );
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "assessment/domain",
        q.domains[index].title.as_str(),
        data,
    )
}

/// `?saved=1`: the page a "Save" without JavaScript returns to, which confirms the save.
#[derive(Deserialize)]
pub struct DomainQuery {
    saved: Option<String>,
}

pub async fn domain(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    query: web::Query<DomainQuery>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let feedback = Feedback {
        saved: query.saved.is_some(),
        ..Feedback::default()
    };
    domain_page(&state, &auth, &loaded, &key, &feedback, StatusCode::OK).await
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
    /// Who saved, as the session lookup in the saving transaction found them.
    auth: Authenticated,
    before: Loaded,
    outcome: assessments::SaveOutcome,
    changes: Vec<Change>,
    errors: Vec<FieldError>,
    submitted: BTreeMap<String, Vec<String>>,
}

/// Look the session up, check the form's CSRF token, load, authorise and save the form's
/// answers in one transaction: one pooled connection per save, the session's included
/// (autosave is the service's busiest request). Valid answers are saved even when another
/// field has an error, so nothing the person typed is lost.
async fn save_form(
    state: &AppState,
    req: &HttpRequest,
    cookie: SessionCookie,
    id: i64,
    pairs: Vec<(String, String)>,
) -> Result<FormSave, AppError> {
    let saved = state
        .db
        .write(move |conn| {
            let auth = cookie.authenticate(conn)?;
            let csrf = pairs
                .iter()
                .find(|(k, _)| k == "csrf_token")
                .map_or("", |(_, v)| v.as_str());
            auth.check_csrf(csrf)?;
            let before = assessments::load(conn, id)?;
            auth.require(Action::Answer(before.row.organisation_id))?;
            let (changes, errors, submitted) = changes_from_form(&before, &pairs);
            let outcome = assessments::save_loaded(conn, &auth.actor(), &before, &changes)?;
            Ok(FormSave {
                auth,
                before,
                outcome,
                changes,
                errors,
                submitted,
            })
        })
        .await?;
    actix_web::HttpMessage::extensions_mut(req)
        .insert(crate::web::observe::LoggedUser(saved.auth.user.id));
    Ok(saved)
}

pub async fn save_domain(
    state: web::Data<AppState>,
    req: HttpRequest,
    cookie: SessionCookie,
    path: web::Path<(i64, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let pairs = keep_mine(form.into_inner());
    let wants_continue = pairs.iter().any(|(k, v)| k == "action" && v == "continue");
    let FormSave {
        auth,
        before,
        outcome,
        errors,
        submitted,
        ..
    } = save_form(&state, &req, cookie, id, pairs).await?;
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
            saved: false,
        };
        return domain_page(
            &state,
            &auth,
            &reloaded,
            &key,
            &feedback,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
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
    req: HttpRequest,
    cookie: SessionCookie,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let FormSave {
        before,
        outcome,
        changes,
        errors,
        submitted,
        ..
    } = save_form(&state, &req, cookie, id, form.into_inner()).await?;
    let after = after_save(&before, &outcome, &changes);
    let shown = shown_after(&before, &after);
    if let Some(c) = outcome.conflicts.first() {
        let view = conflict_view(before.questionnaire(), c, submitted.get(&c.key));
        return Ok(HttpResponse::Conflict().json(json!({
            "message": format!(
                "{} changed the answer to \"{}\" while you were working, so yours was not saved. Their answer: {}. Yours: {}. Choose Save to see both and keep yours.",
                view["who"].as_str().unwrap_or("Someone else"),
                view["question"].as_str().unwrap_or(&c.key),
                view["theirs"].as_str().unwrap_or_default(),
                view["mine"].as_str().unwrap_or_default(),
            ),
            "conflicts": outcome.conflicts,
            "saved": outcome.saved,
            "revisions": outcome.revisions,
            "visible": shown.visible, "progress": shown.progress,
        })));
    }
    if let Some(e) = errors.first() {
        return Ok(HttpResponse::UnprocessableEntity().json(json!({"error": e.message, "errors": errors, "saved": outcome.saved, "revisions": outcome.revisions, "visible": shown.visible, "progress": shown.progress})));
    }
    Ok(HttpResponse::Ok().json(json!({"saved": outcome.saved, "revisions": outcome.revisions, "visible": shown.visible, "progress": shown.progress})))
}

/// The answers as they stand after a save: those loaded in the saving transaction with the
/// saved changes applied (no second read on the autosave path).
fn after_save(
    before: &Loaded,
    outcome: &assessments::SaveOutcome,
    changes: &[Change],
) -> crate::domain::answers::Answers {
    let mut answers = before.answers();
    for change in changes.iter().filter(|c| outcome.saved.contains(&c.key)) {
        match &change.answer {
            Some(a) => answers.insert(change.key.clone(), a.clone()),
            None => answers.remove(&change.key),
        };
    }
    answers
}

/// What autosave tells the page after a save, worked out by the server's own rules
/// (`domain::visibility`): which questions are shown now, so follow-up questions appear and
/// disappear at once with JavaScript on, and each section's answered count.
struct Shown {
    visible: Vec<String>,
    progress: BTreeMap<String, Value>,
}

fn shown_after(before: &Loaded, answers: &crate::domain::answers::Answers) -> Shown {
    let q = before.questionnaire();
    let visible = visibility::visible(q, answers);
    let progress = q
        .domains
        .iter()
        .map(|d| {
            let shown: Vec<&str> = d
                .questions
                .iter()
                .map(|x| x.key.as_str())
                .filter(|k| visible.contains(*k))
                .collect();
            let answered = shown
                .iter()
                .filter(|k| {
                    answers
                        .get(**k)
                        .is_some_and(crate::domain::answers::is_answered)
                })
                .count();
            (
                d.key.clone(),
                json!({"answered": answered, "visible": shown.len()}),
            )
        })
        .collect();
    Shown {
        visible: visible.into_iter().collect(),
        progress,
    }
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
    let mut sections = answer_sections(&loaded);
    crate::web::evidence_pages::annotate_sections(&state, &loaded, &mut sections).await?;
    let data = merge(
        header_data(&loaded),
        json!({
            "missing": missing, "carried": carried, "complete": report.complete,
            "answer_sections": sections,
            "can_change": auth.may(Action::Answer(loaded.row.organisation_id)) && loaded.is_open_for_answers(),
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

async fn submit_page(
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
            {
                // Named by its text, linked to the question on its own page.
                let q = loaded.questionnaire();
                let text = q.question(&e.path).map_or(e.path.as_str(), |x| x.text.as_str());
                let href = q.domain_of(&e.path).map_or_else(
                    || format!("{}/review", base(loaded.row.id)),
                    |d| format!("{}/domains/{}#q-{}-group", base(loaded.row.id), d.key, e.path),
                );
                json!({"href": href, "message": format!("Answer \u{201c}{text}\u{201d} before submitting")})
            }
        } else {
            json!({"href": format!("#{}", e.path), "message": e.message})
        })
        .collect();
    let shared = loaded.clone();
    let unreviewed: Vec<Value> = state
        .db
        .read(move |conn| crate::services::sections::sections(conn, &shared))
        .await?
        .iter()
        .filter(|s| s.status != crate::services::sections::Status::Reviewed)
        .map(|s| crate::web::section_pages::section_view(loaded.row.id, s))
        .collect();
    let mut sections = answer_sections(loaded);
    crate::web::evidence_pages::annotate_sections(state, loaded, &mut sections).await?;
    let data = merge(
        header_data(loaded),
        json!({
            "unreviewed": unreviewed,
            "name": name, "job_title": job,
            "name_error": error_for("signoff-name"), "job_error": error_for("signoff-job-title"), "declaration_error": error_for("declaration"),
            "errors": if summary.is_empty() { Value::Null } else { json!(summary) },
            "answer_sections": sections,
            "can_change": loaded.is_open_for_answers(),
            "breadcrumbs": crumbs(loaded),
        }),
    );
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "assessment/submit",
        "Sign off and submit",
        data,
    )
}

pub async fn submit_form(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &auth, path.into_inner(), Action::Approve).await?;
    if !loaded.is_open_for_answers() {
        return Err(AppError::Conflict(if loaded.is_closed() {
            loaded.closed_reason()
        } else {
            "This assessment has already been submitted.".into()
        }));
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
    .await
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
            crate::services::mail::wake();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("{}/confirmation", base(id))))
                .finish())
        }
        Err(AppError::Validation(errors)) => {
            submit_page(
                &state,
                &auth,
                &loaded,
                &errors,
                &form.name,
                &form.job_title,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
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
                    let question = q.question(&c.key);
                    let text = question.map_or(c.key.as_str(), |x| x.text.as_str());
                    // The answer behind the figures, in words, so a 0.50 can be understood.
                    let answer = question.and_then(|x| {
                        let a = &loaded.answers.get(c.key.as_str())?.answer;
                        Some(questions::answer_words(x, a))
                    });
                    json!({"text": text, "answer": answer, "counted": c.counted, "raw_score": c.raw.map(crate::domain::plain_number), "normalised": c.normalised.map(|n| scoring::round_display(n, 2)), "weight": c.weight, "reason": c.reason.describe()})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let pillars: Vec<Value> = report
        .pillars
        .iter()
        .map(|(k, s)| json!({"title": q.pillars.iter().find(|p| &p.key == k).map_or(k.as_str(), |p| p.title.as_str()), "score": fmt(s.score), "band": s.band}))
        .collect();
    let next_bands = next_band_data(q, &loaded.answers());
    let shared = loaded.clone();
    let review = state
        .db
        .read(move |conn| crate::services::review::review(conn, &shared))
        .await?;
    let data = merge(
        header_data(&loaded),
        json!({
            "review": crate::web::review_pages::state_view(id, &review),
            "may_plan": auth.may(Action::Answer(loaded.row.organisation_id)),
            "next_bands": next_bands,
            "provisional": reference.is_none(), "reference": reference,
            "overall": fmt(report.overall.score), "overall_band": report.overall.band,
            "scale_min": crate::domain::plain_number(q.scale.min), "scale_max": crate::domain::plain_number(q.scale.max),
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

/// The path to the next band for the results page: per domain below the top band, the
/// smallest sets of answer changes (computed by `domain::next_band`) in the words of the
/// answers, the first as the suggestion and the rest as alternatives.
fn next_band_data(q: &Questionnaire, answers: &Answers) -> Vec<Value> {
    let live = scoring::score(q, answers);
    next_band::paths(q, answers, &live)
        .into_iter()
        .zip(&q.domains)
        .filter_map(|(d, domain)| {
            let target = d.target?;
            let paths: Vec<Value> = d
                .paths
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let changes: Vec<Value> = p
                        .changes
                        .iter()
                        .filter_map(|c| {
                            let question = q.question(&c.question)?;
                            Some(json!({
                                "key": c.question,
                                "text": question.text,
                                "from": c.from.as_ref().map(|a| questions::current_words(question, a)),
                                "to": questions::change_words(question, c.from.as_ref(), &c.to),
                            }))
                        })
                        .collect();
                    json!({"number": i + 1, "changes": changes, "count": changes.len(), "score": scoring::round_display(p.score, q.decimals), "band": p.band})
                })
                .collect();
            let (first, others) = match paths.split_first() {
                Some((first, others)) => (Some(first.clone()), others.to_vec()),
                None => (None, Vec::new()),
            };
            // A starting point for an improvement plan action (issue 23): the suggested
            // changes in words, posted to the plan page's add form.
            let plan_title: String = d.paths.first().map_or_else(
                || format!("Reach {} in {}", target.band, domain.title),
                |p| {
                    let steps: Vec<String> = p
                        .changes
                        .iter()
                        .filter_map(|c| {
                            let question = q.question(&c.question)?;
                            Some(format!(
                                "{}: {}",
                                question.text,
                                questions::change_words(question, c.from.as_ref(), &c.to)
                            ))
                        })
                        .collect();
                    format!("Reach {}: {}", target.band, steps.join("; "))
                },
            );
            Some(json!({
                "key": domain.key,
                "plan_title": crate::services::plans::shortened(&plan_title),
                "title": domain.title,
                "score": d.score.map(|s| scoring::round_display(s, q.decimals)),
                "band": d.band,
                "target": target.band,
                "target_min": crate::domain::plain_number(target.min),
                "first": first, "others_count": others.len(), "others": others, "max_changes": next_band::MAX_CHANGES,
            }))
        })
        .collect()
}

pub async fn history(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    let question_def = loaded
        .questionnaire()
        .question(&key)
        .ok_or(AppError::NotFound)?
        .clone();
    let question = question_def.text.clone();
    // Stored values (JSON) in the words the person chose them by.
    let words = |stored: Option<String>, none: &str| match stored {
        None => none.to_string(),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(v) => questions::stored_words(&question_def, Some(&v)),
            Err(_) => text,
        },
    };
    let k = key.clone();
    let rows = state
        .db
        .read(move |conn| assessments::history(conn, id, &k))
        .await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|h| json!({"who": h.who.unwrap_or_else(|| "Carried forward or system".into()), "old": words(h.old, "No answer"), "new": words(h.new, "Cleared"), "at": h.at.format("%-d %b %Y %H:%M:%S").to_string()}))
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
    let refused = |errors: Vec<FieldError>| OverviewForms {
        errors,
        deadline: form.deadline.clone(),
        ..OverviewForms::default()
    };
    let Ok(deadline) = chrono::NaiveDate::parse_from_str(form.deadline.trim(), "%Y-%m-%d") else {
        let error = FieldError::new("deadline", "Enter a real date, like 2026-04-01");
        return overview_refused(&state, &auth, id, refused(vec![error])).await;
    };
    let actor = auth.actor();
    match state
        .db
        .write(move |conn| assessments::extend_deadline(conn, &actor, id, deadline))
        .await
    {
        Err(AppError::Validation(errors)) => {
            return overview_refused(&state, &auth, id, refused(errors)).await
        }
        other => other?,
    };
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
    if let Some(confirm) =
        crate::web::second_factor::demand_recent(&state, &auth, &format!("/assessments/{id}"))
    {
        return Ok(confirm);
    }
    let actor = auth.actor();
    let reason = form.reason.clone();
    match state
        .db
        .write(move |conn| assessments::reopen(conn, &actor, id, &reason))
        .await
    {
        Err(AppError::Validation(errors)) => {
            let forms = OverviewForms {
                errors,
                reason: form.reason.clone(),
                ..OverviewForms::default()
            };
            return overview_refused(&state, &auth, id, forms).await;
        }
        other => other?,
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, base(id)))
        .finish())
}

#[derive(Deserialize)]
pub struct PrintQuery {
    blank: Option<String>,
}

/// A copy of the assessment to print or save as PDF (the browser's own "print"), laid out for
/// a board paper: every question in order with its options, help and the condition under which
/// it is asked, in words; with the answers given, or blank (`?blank=yes`) for drafting offline.
/// The print stylesheet (`@media print` in dma.css) hides the site's chrome; no JavaScript.
pub async fn print(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    query: web::Query<PrintQuery>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &auth, path.into_inner(), Action::ReadOrganisation).await?;
    let q = loaded.questionnaire();
    let blank = query.blank.is_some();
    let answers = if blank {
        Default::default()
    } else {
        loaded.answers()
    };
    let data = merge(
        header_data(&loaded),
        json!({
            "domains": questions::print_views(q, &answers), "blank": blank,
            "printed_on": chrono::Utc::now().format("%-d %B %Y").to_string(),
            "breadcrumbs": crumbs(&loaded),
        }),
    );
    page::render(
        &state,
        Some(&auth.page_user()),
        "assessment/print",
        &format!(
            "{} {} (print)",
            loaded.organisation_name, loaded.cycle_label
        ),
        data,
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assessments/{id}")
            .route("", web::get().to(overview))
            .route("/domains/{key}", web::get().to(domain))
            .route("/domains/{key}", web::post().to(save_domain))
            .route("/autosave", web::post().to(autosave))
            .route("/review", web::get().to(review))
            .route("/print", web::get().to(print))
            .route("/submit", web::get().to(submit_form))
            .route("/submit", web::post().to(submit))
            .route("/confirmation", web::get().to(confirmation))
            .route("/results", web::get().to(results))
            .route("/questions/{key}/history", web::get().to(history))
            .route("/reopen", web::post().to(reopen))
            .route("/deadline", web::post().to(extend_deadline)),
    );
}
