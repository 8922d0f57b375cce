//! The auditor review pages (issue 23, docs/review.md): the review of an assessment section
//! by section, and one query with its answer. Plain forms posted to the server, so they work
//! without JavaScript.
//!
//! Authorisation: reading needs what the assessment's other pages need (`ReadOrganisation`,
//! and `ReadInProgress` until submitted, so auditors see submitted assessments only);
//! accepting, raising and closing `Review` (auditors); answering a query `Answer` (and, to
//! change the answer, `Approve`, checked by the service). A refused form draws the page again
//! with the reason: 422 for a field to correct, 409 when the record changed under the person.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::answers;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::assessments::Loaded;
use crate::services::auth::roles::Action;
use crate::services::review::{self, Query, QueryStatus, Reply, Review, SectionState};
use crate::web::assessment_pages::{base, crumbs, header_data, load_for, merge};
use crate::web::auth::Authenticated;
use crate::web::section_pages::{refusal_status, DoneQuery};
use crate::web::{page, questions, AppState};

fn review_href(id: i64) -> String {
    format!("{}/audit", base(id))
}

fn when(t: chrono::NaiveDateTime) -> String {
    t.format("%-d %b %Y %H:%M").to_string()
}

/// A query for a template.
pub fn query_view(id: i64, q: &Query) -> Value {
    json!({
        "id": q.id, "href": format!("{}/queries/{}", review_href(id), q.id),
        "question_key": q.question_key, "question": q.question_text,
        "status": q.status.as_str(), "status_label": q.status.label(), "status_colour": q.status.colour(),
        "open": q.status == QueryStatus::Open, "closed": q.status == QueryStatus::Closed,
        "revision": q.revision, "message": q.message,
        "raised_by": q.raised_by, "raised_at": when(q.raised_at),
        "response": q.response, "answer_changed": q.answer_changed,
        "answered_by": q.answered_by, "answered_at": q.answered_at.map(when),
        "closed_by": q.closed_by, "closed_at": q.closed_at.map(when),
    })
}

/// The review state of an assessment for the overview and results pages.
pub fn state_view(id: i64, r: &Review) -> Value {
    json!({
        "href": review_href(id),
        "state": r.state.as_str(), "label": r.state.label(), "colour": r.state.colour(),
        "open_queries": r.open_queries(),
        "accepted": r.sections.iter().filter(|s| s.state == SectionState::Accepted).count(),
        "sections": r.sections.len(),
    })
}

/// What was typed into a refused form, and why it was refused.
#[derive(Default)]
struct Refusal {
    errors: Vec<FieldError>,
    conflict: Option<String>,
    /// The section whose query form was refused, and what was in it.
    section: String,
    question: String,
    message: String,
}

fn summary(refusal_errors: &[FieldError], conflict: Option<&String>, anchor: &str) -> Value {
    let mut out: Vec<Value> = refusal_errors
        .iter()
        .map(|e| json!({"href": format!("#{anchor}{}", e.path.replace('_', "-")), "message": e.message}))
        .collect();
    if let Some(c) = conflict {
        out.push(json!({"href": "#review", "message": c}));
    }
    if out.is_empty() {
        Value::Null
    } else {
        json!(out)
    }
}

async fn review_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    refusal: &Refusal,
    flash: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let id = loaded.row.id;
    let shared = loaded.clone();
    let r = state
        .db
        .read(move |conn| review::review(conn, &shared))
        .await?;
    let submitted = loaded.row.status == "submitted";
    let auditor = auth.may(Action::Review) && submitted;
    let q = loaded.questionnaire();
    let sections: Vec<Value> = r
        .sections
        .iter()
        .map(|s| {
            let domain = q.domains.iter().find(|d| d.key == s.key);
            let refused_here = refusal.section == s.key;
            let field_error = |f: &str| {
                refusal
                    .errors
                    .iter()
                    .find(|e| refused_here && e.path == f)
                    .map(|e| e.message.clone())
            };
            json!({
                "key": s.key, "title": s.title,
                "state_label": s.state.label(), "state_colour": s.state.colour(),
                "accepted": s.state == SectionState::Accepted,
                "revision": s.revision,
                "accepted_by": s.accepted_by, "accepted_at": s.accepted_at.map(when),
                "can_accept": auditor && s.state == SectionState::NotReviewed,
                "queries": s.queries.iter().map(|x| query_view(id, x)).collect::<Vec<_>>(),
                "questions": domain.map(|d| d.questions.iter().map(|x| json!({
                    "key": x.key, "text": x.text,
                    "selected": refused_here && refusal.question == x.key,
                })).collect::<Vec<_>>()),
                "question_error": field_error("question"),
                "message_error": field_error("message"),
                "message": if refused_here { refusal.message.clone() } else { String::new() },
            })
        })
        .collect();
    let anchor = if refusal.section.is_empty() {
        String::new()
    } else {
        format!("{}-", refusal.section)
    };
    let data = merge(
        header_data(loaded),
        json!({
            "review": state_view(id, &r),
            "submitted": submitted,
            "auditor": auditor,
            "sections": sections,
            "errors": summary(&refusal.errors, refusal.conflict.as_ref(), &anchor),
            "flash": flash.map(|m| json!({"kind": "success", "message": m})),
            "breadcrumbs": crumbs(loaded),
        }),
    );
    page::render_with_status(
        refusal_status(refusal.conflict.is_some(), !refusal.errors.is_empty()),
        state,
        Some(&auth.page_user()),
        "assessment/audit",
        "Auditor review",
        data,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let loaded = load_for(&state, &auth, path.into_inner(), Action::ReadOrganisation).await?;
    let flash = match query.done.as_deref() {
        Some("accepted") => {
            Some("The section is accepted and the organisation's approvers have been emailed.")
        }
        Some("raised") => Some("The query has been raised and the organisation has been emailed."),
        Some("closed") => Some("The query is closed."),
        Some("answered") => Some("Your answer has been sent to the auditor."),
        _ => None,
    };
    review_page(&state, &auth, &loaded, &Refusal::default(), flash).await
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

fn revision_of(text: &str) -> Result<i64, AppError> {
    text.trim().parse::<i64>().map_err(|_| {
        AppError::BadRequest(
            "The form did not say which version it showed. Reload the page and try again.".into(),
        )
    })
}

/// The review page after a form: back to it (303), or drawn again with why not.
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
            crate::services::mail::wake();
            Ok(see_other(format!("{}?done={done}", review_href(id))))
        }
        Err(AppError::Validation(errors)) => {
            refusal.errors = errors;
            let loaded = load_for(state, auth, id, Action::ReadOrganisation).await?;
            review_page(state, auth, &loaded, &refusal, None).await
        }
        Err(AppError::Conflict(message)) => {
            refusal.conflict = Some(message);
            let loaded = load_for(state, auth, id, Action::ReadOrganisation).await?;
            review_page(state, auth, &loaded, &refusal, None).await
        }
        Err(e) => Err(e),
    }
}

fn review_action(_org: i64) -> Action {
    Action::Review
}

#[derive(Deserialize)]
pub struct RevisionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    revision: String,
}

pub async fn accept(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, String)>,
    form: web::Form<RevisionForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, key) = path.into_inner();
    let loaded = load_for(&state, &auth, id, review_action).await?;
    let seen = revision_of(&form.revision)?;
    let (actor, notifier, who) = (auth.actor(), state.notifier(), auth.user.clone());
    let outcome = state
        .db
        .write(move |conn| {
            review::accept(conn, &actor, &notifier, &who, &loaded, &key, seen).map(|_| ())
        })
        .await;
    after(&state, &auth, id, outcome, "accepted", Refusal::default()).await
}

#[derive(Deserialize)]
pub struct RaiseForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    section: String,
    #[serde(default)]
    question: String,
    #[serde(default)]
    message: String,
}

pub async fn raise(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<RaiseForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let id = path.into_inner();
    let loaded = load_for(&state, &auth, id, review_action).await?;
    let (actor, notifier, who) = (auth.actor(), state.notifier(), auth.user.clone());
    let (question, message) = (form.question.clone(), form.message.clone());
    let outcome = state
        .db
        .write(move |conn| {
            review::raise(conn, &actor, &notifier, &who, &loaded, &question, &message).map(|_| ())
        })
        .await;
    let refusal = Refusal {
        section: form.section.clone(),
        question: form.question.clone(),
        message: form.message.clone(),
        ..Refusal::default()
    };
    after(&state, &auth, id, outcome, "raised", refusal).await
}

pub async fn close(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<RevisionForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf_token)?;
    let (id, query_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, review_action).await?;
    let seen = revision_of(&form.revision)?;
    let (actor, notifier, who) = (auth.actor(), state.notifier(), auth.user.clone());
    let outcome = state
        .db
        .write(move |conn| {
            review::close(conn, &actor, &notifier, &who, &loaded, query_id, seen).map(|_| ())
        })
        .await;
    after(&state, &auth, id, outcome, "closed", Refusal::default()).await
}

/// What was typed into a refused answer, and why.
#[derive(Default)]
struct ReplyRefusal {
    errors: Vec<FieldError>,
    conflict: Option<String>,
    response: String,
    raw: Option<Vec<String>>,
    declaration: bool,
}

async fn query_page(
    state: &AppState,
    auth: &Authenticated,
    loaded: &Loaded,
    query_id: i64,
    refusal: &ReplyRefusal,
) -> Result<HttpResponse, AppError> {
    let id = loaded.row.id;
    let shared = loaded.clone();
    let r = state
        .db
        .read(move |conn| review::review(conn, &shared))
        .await?;
    let query = r.query(query_id).cloned().ok_or(AppError::NotFound)?;
    let org = loaded.row.organisation_id;
    let submitted = loaded.row.status == "submitted";
    let can_answer =
        submitted && query.status == QueryStatus::Open && auth.may(Action::Answer(org));
    let can_change = can_answer && auth.may(Action::Approve(org));
    let can_close = submitted && query.status != QueryStatus::Closed && auth.may(Action::Review);
    let question = loaded.questionnaire().question(&query.question_key);
    let stored = loaded.answers.get(&query.question_key).map(|s| &s.answer);
    let error_for = |f: &str| {
        refusal
            .errors
            .iter()
            .find(|e| e.path == f)
            .map(|e| e.message.clone())
    };
    let field = match (can_change, question) {
        (true, Some(x)) => {
            let mut v = questions::question_view(
                x,
                stored,
                refusal.raw.as_deref(),
                true,
                error_for(&x.key).as_deref(),
            );
            if let Some(o) = v.as_object_mut() {
                o.insert("top_level".into(), json!(false));
            }
            Some(v)
        }
        _ => None,
    };
    let mut errors: Vec<Value> = refusal
        .errors
        .iter()
        .map(|e| {
            let href = if Some(e.path.as_str()) == question.map(|x| x.key.as_str()) {
                format!("#q-{}-group", e.path)
            } else {
                format!("#{}", e.path.replace('_', "-"))
            };
            json!({"href": href, "message": e.message})
        })
        .collect();
    if let Some(c) = &refusal.conflict {
        errors.push(json!({"href": "#query", "message": c}));
    }
    let data = merge(
        header_data(loaded),
        json!({
            "query": query_view(id, &query),
            "review_href": review_href(id),
            "answer": match (question, stored) {
                (Some(x), Some(a)) => Some(questions::answer_words(x, a)),
                _ => None,
            },
            "can_answer": can_answer, "can_change": can_change, "can_close": can_close,
            "field": field,
            "response": refusal.response,
            "declaration": refusal.declaration,
            "response_error": error_for("response"),
            "declaration_error": error_for("declaration"),
            "errors": if errors.is_empty() { Value::Null } else { json!(errors) },
            "breadcrumbs": crumbs(loaded),
        }),
    );
    page::render_with_status(
        refusal_status(refusal.conflict.is_some(), !refusal.errors.is_empty()),
        state,
        Some(&auth.page_user()),
        "assessment/audit_query",
        "Query",
        data,
    )
}

pub async fn show_query(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, query_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
    query_page(&state, &auth, &loaded, query_id, &ReplyRefusal::default()).await
}

/// The organisation's answer: `response`, `revision`, and for an approver the question's own
/// field (`q.<key>`) with `declaration` when the answer changes.
pub async fn answer(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let pairs = form.into_inner();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    auth.check_csrf(&get("csrf_token"))?;
    let (id, query_id) = path.into_inner();
    let loaded = load_for(&state, &auth, id, Action::Answer).await?;
    let seen = revision_of(&get("revision"))?;
    let values = questions::form_values(&pairs);
    let shared = loaded.clone();
    let r = state
        .db
        .read(move |conn| review::review(conn, &shared))
        .await?;
    let query = r.query(query_id).cloned().ok_or(AppError::NotFound)?;
    let raw = values.get(&query.question_key).cloned();
    let mut refusal = ReplyRefusal {
        response: get("response"),
        raw: raw.clone(),
        declaration: !get("declaration").is_empty(),
        ..ReplyRefusal::default()
    };
    let parsed = match (loaded.questionnaire().question(&query.question_key), &raw) {
        (Some(x), Some(raw)) => answers::from_form(x, raw)
            .map_err(|m| AppError::Validation(vec![FieldError::new(x.key.clone(), m)])),
        _ => Ok(None),
    };
    let outcome = match parsed {
        Err(e) => Err(e),
        Ok(answer) => {
            let reply = Reply {
                message: refusal.response.clone(),
                seen_revision: seen,
                answer,
                declaration: refusal.declaration,
            };
            let (actor, notifier, who, l) = (
                auth.actor(),
                state.notifier(),
                auth.user.clone(),
                loaded.clone(),
            );
            state
                .db
                .write(move |conn| {
                    review::reply(conn, &actor, &notifier, &who, &l, query_id, &reply).map(|_| ())
                })
                .await
        }
    };
    match outcome {
        Ok(()) => {
            crate::services::mail::wake();
            Ok(see_other(format!("{}?done=answered", review_href(id))))
        }
        Err(AppError::Validation(errors)) => {
            refusal.errors = errors;
            let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
            query_page(&state, &auth, &loaded, query_id, &refusal).await
        }
        Err(AppError::Conflict(message)) => {
            refusal.conflict = Some(message);
            let loaded = load_for(&state, &auth, id, Action::ReadOrganisation).await?;
            query_page(&state, &auth, &loaded, query_id, &refusal).await
        }
        Err(e) => Err(e),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assessments/{id}/audit")
            .route("", web::get().to(show))
            .route("/sections/{key}/accept", web::post().to(accept))
            .route("/queries", web::post().to(raise))
            .route("/queries/{query}", web::get().to(show_query))
            .route("/queries/{query}/answer", web::post().to(answer))
            .route("/queries/{query}/close", web::post().to(close)),
    );
}
