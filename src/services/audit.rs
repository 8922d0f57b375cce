//! The audit log: who did what, when, with the value before and after. Written in the same
//! transaction as the change it records, so the log and the data cannot disagree; the
//! database refuses updates and deletes of its rows.

use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::audit_log;
use crate::db::DbConnection;
use crate::error::AppError;

/// Who acted: a signed-in user, or a named system actor ("import", "cli", "scheduler").
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub label: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn system(label: &str) -> Actor {
        Actor {
            user_id: None,
            label: label.to_string(),
            ip: None,
        }
    }
}

pub struct Entry<'a> {
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Option<String>,
    pub organisation_id: Option<i64>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl<'a> Entry<'a> {
    pub fn new(action: &'a str, entity_type: &'a str, entity_id: impl ToString) -> Self {
        Entry {
            action,
            entity_type,
            entity_id: Some(entity_id.to_string()),
            organisation_id: None,
            before: None,
            after: None,
        }
    }

    pub fn organisation(mut self, id: Option<i64>) -> Self {
        self.organisation_id = id;
        self
    }

    pub fn before(mut self, v: impl Serialize) -> Self {
        self.before = serde_json::to_value(v).ok();
        self
    }

    pub fn after(mut self, v: impl Serialize) -> Self {
        self.after = serde_json::to_value(v).ok();
        self
    }
}

/// The longest actor label kept: an email address (254) with room to spare. A label can come
/// from the outside world (the address typed into a failed sign-in), and the log is
/// append-only, so whatever is written stays: every text field is bounded here, once.
pub const MAX_LABEL_CHARS: usize = 300;
pub const MAX_ENTITY_ID_CHARS: usize = 200;
/// An IPv6 address with a zone is well under this.
pub const MAX_IP_CHARS: usize = 64;

/// `text` cut to at most `max` characters (the last one an ellipsis when cut), with control
/// and invisible formatting characters (bidi overrides, zero-width) replaced, so a crafted
/// label cannot reorder or hide text where the log is shown.
pub fn bounded(text: &str, max: usize) -> String {
    let clean = crate::domain::text::reveal_hidden(text).into_owned();
    if clean.chars().count() <= max {
        clean
    } else {
        clean
            .chars()
            .take(max.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    }
}

pub fn record(conn: &mut DbConnection, actor: &Actor, entry: Entry<'_>) -> Result<(), AppError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(Utc::now().naive_utc()),
            audit_log::actor_user_id.eq(actor.user_id),
            audit_log::actor_label.eq(bounded(&actor.label, MAX_LABEL_CHARS)),
            audit_log::action.eq(entry.action),
            audit_log::entity_type.eq(entry.entity_type),
            audit_log::entity_id.eq(entry.entity_id.map(|id| bounded(&id, MAX_ENTITY_ID_CHARS))),
            audit_log::organisation_id.eq(entry.organisation_id),
            audit_log::before_value.eq(entry.before.map(|v| v.to_string())),
            audit_log::after_value.eq(entry.after.map(|v| v.to_string())),
            audit_log::ip.eq(actor.ip.as_deref().map(|ip| bounded(ip, MAX_IP_CHARS))),
        ))
        .execute(conn)?;
    Ok(())
}
