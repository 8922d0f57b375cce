//! The email outbox for administrators: every message with its state (queued, sending, sent,
//! failed) and the last delivery error, newest first, 50 to a page, filtered by state. A sent
//! or failed message can be queued again ("resend"); the audit log records who did it.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::schema::email_outbox;
use crate::db::{DbConnection, MultiBackend};
use crate::error::AppError;
use crate::services::audit;
use crate::services::auth::roles::Action;
use crate::services::digest::{STATUS_DIGESTED, STATUS_HELD};
use crate::services::mail::{STATUS_FAILED, STATUS_QUEUED, STATUS_SENDING, STATUS_SENT};
use crate::web::auth::Authenticated;
use crate::web::listing::{self, PAGE_SIZE};
use crate::web::{page, AppState};

const BASE: &str = "/admin/outbox";

/// The states in the order the filter shows them, with their label and tag colour.
const STATES: [(&str, &str, &str); 6] = [
    (STATUS_QUEUED, "Queued", "blue"),
    (STATUS_SENDING, "Sending", "yellow"),
    (STATUS_SENT, "Sent", "green"),
    (STATUS_FAILED, "Failed", "red"),
    (STATUS_HELD, "Held for a daily digest", "grey"),
    (STATUS_DIGESTED, "Sent in a digest", "green"),
];

#[derive(Deserialize, Default)]
pub struct OutboxQuery {
    #[serde(default)]
    status: String,
    page: Option<String>,
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    csrf_token: String,
}

type Row = (
    i64,
    NaiveDateTime,
    String,
    String,
    String,
    String,
    i32,
    Option<String>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

/// One page of rows, the number matching the filter, and the count in each state.
type Page = (Vec<Row>, i64, Vec<(String, i64)>);

fn filtered<'a>(status: Option<&'a str>) -> email_outbox::BoxedQuery<'a, MultiBackend> {
    let mut q = email_outbox::table.into_boxed();
    if let Some(s) = status {
        q = q.filter(email_outbox::status.eq(s));
    }
    q
}

fn load(conn: &mut DbConnection, status: Option<&str>, page: i64) -> Result<Page, AppError> {
    let total: i64 = filtered(status).count().get_result(conn)?;
    let rows: Vec<Row> = filtered(status)
        .order((email_outbox::created_at.desc(), email_outbox::id.desc()))
        .limit(PAGE_SIZE)
        .offset(listing::offset(page))
        .select((
            email_outbox::id,
            email_outbox::created_at,
            email_outbox::kind,
            email_outbox::recipient,
            email_outbox::subject,
            email_outbox::status,
            email_outbox::attempts,
            email_outbox::last_error,
            email_outbox::sent_at,
            email_outbox::next_attempt_at,
        ))
        .load(conn)?;
    let counts: Vec<(String, i64)> = email_outbox::table
        .group_by(email_outbox::status)
        .select((email_outbox::status, diesel::dsl::count_star()))
        .load(conn)?;
    Ok((rows, total, counts))
}

fn when(t: &NaiveDateTime) -> String {
    t.format("%-d %b %Y %H:%M").to_string()
}

pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<OutboxQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let query = query.into_inner();
    let wanted = query.status.trim();
    let status: Option<&'static str> = STATES.iter().map(|(s, _, _)| *s).find(|s| *s == wanted);
    if status.is_none() && !wanted.is_empty() {
        let known: Vec<&str> = STATES.iter().map(|(s, _, _)| *s).collect();
        return Err(AppError::BadRequest(format!(
            "There is no message state \"{wanted}\". Choose one of: {}, or none for all messages.",
            known.join(", ")
        )));
    }
    let page_no = listing::page_number(query.page.as_deref());
    let (rows, total, counts) = state
        .db
        .read(move |conn| load(conn, status, page_no))
        .await?;
    let count_of = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    let all: i64 = counts.iter().map(|(_, n)| n).sum();
    let mut filters = vec![json!({
        "label": "All",
        "value": "",
        "count": all,
        "href": BASE,
        "current": status.is_none(),
    })];
    filters.extend(STATES.iter().map(|(s, label, _)| {
        json!({
            "label": label,
            "value": s,
            "count": count_of(s),
            "href": format!("{BASE}?status={s}"),
            "current": status == Some(*s),
        })
    }));
    let messages: Vec<Value> = rows
        .iter()
        .map(
            |(id, created, kind, recipient, subject, st, attempts, error, sent_at, next)| {
                let (label, colour) = STATES
                    .iter()
                    .find(|(s, _, _)| s == st)
                    .map_or((st.as_str(), "grey"), |(_, l, c)| (*l, *c));
                json!({
                    "id": id,
                    "created": when(created),
                    "created_iso": created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "kind": kind,
                    "kind_label": crate::services::mail::kind_label(kind),
                    "recipient": recipient,
                    "subject": subject,
                    "status_label": label,
                    "status_colour": colour,
                    "attempts": attempts,
                    "last_error": error,
                    "sent_at": sent_at.as_ref().map(when),
                    "next_attempt": (st == STATUS_QUEUED).then(|| when(next)),
                    "can_resend": st == STATUS_SENT || st == STATUS_FAILED,
                    "resend_href": format!("{BASE}/{id}/resend"),
                })
            },
        )
        .collect();
    let status_filter = status.unwrap_or("");
    page::render(
        &state,
        Some(&auth.page_user()),
        "admin/outbox",
        "Email outbox",
        json!({
            "messages": messages,
            "filters": filters,
            "status": status_filter,
            "status_label": status.and_then(|s| STATES.iter().find(|(k, _, _)| *k == s)).map(|(_, l, _)| l.to_lowercase()),
            "pagination": listing::pagination(BASE, &[("status", status_filter)], page_no, total),
            "flash": match query.done.as_deref() {
                Some("resent") => json!({"kind": "success", "message": "The message is queued and will be sent again shortly."}),
                _ => Value::Null,
            },
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}],
            "wide": true,
        }),
    )
}

pub async fn resend(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<i64>,
    form: web::Form<ResendForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(&form.csrf_token)?;
    let id = path.into_inner();
    let actor = auth.actor();
    state
        .db
        .write(move |conn| {
            let (status, attempts, kind, recipient): (String, i32, String, String) =
                email_outbox::table
                    .find(id)
                    .select((
                        email_outbox::status,
                        email_outbox::attempts,
                        email_outbox::kind,
                        email_outbox::recipient,
                    ))
                    .first(conn)
                    .optional()?
                    .ok_or(AppError::NotFound)?;
            if status != STATUS_SENT && status != STATUS_FAILED {
                return Err(AppError::Conflict(
                    "This message is already waiting to be sent.".into(),
                ));
            }
            // A delivered message that carried a link keeps no body (see `mail::purge_sealed`).
            let body: String = email_outbox::table
                .find(id)
                .select(email_outbox::body_text)
                .first(conn)?;
            if body.is_empty() {
                return Err(AppError::Conflict(
                    "This message carried a one-time link, and its text was deleted once it was delivered. Send a new invitation or password reset instead."
                        .into(),
                ));
            }
            let now = Utc::now().naive_utc();
            diesel::update(
                email_outbox::table
                    .find(id)
                    .filter(email_outbox::status.eq(&status)),
            )
            .set((
                email_outbox::status.eq(STATUS_QUEUED),
                email_outbox::attempts.eq(0),
                email_outbox::next_attempt_at.eq(now),
                email_outbox::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
            audit::record(
                conn,
                &actor,
                audit::Entry::new("email.resend", "email", id)
                    .before(json!({"status": status, "attempts": attempts, "kind": kind, "recipient": recipient}))
                    .after(json!({"status": STATUS_QUEUED, "attempts": 0})),
            )
        })
        .await?;
    crate::services::mail::wake();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{BASE}?done=resent")))
        .finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(BASE, web::get().to(list))
        .route("/admin/outbox/{id}/resend", web::post().to(resend));
}
