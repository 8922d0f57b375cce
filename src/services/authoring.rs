//! Authoring drafts in place: create a blank draft or one started from a published version,
//! change it (RFC 6902 operations on its document, or the whole document), and say which
//! domains stay comparable with the version it came from.
//!
//! Why it is built this way:
//! - **The document is the source of truth.** Every change is applied to the definition
//!   document and the result goes through the same loader as an upload
//!   ([`questionnaire::load_with_warnings`]); a change the loader refuses is not stored, so a
//!   stored draft is always a valid document, and the refusal lists every problem by its path.
//! - **Revisions, as for answers.** A draft has a revision; a change names the revision it was
//!   made against, and the update is conditional on it, so two administrators editing at once
//!   cannot overwrite each other silently: the second gets a stale-revision conflict.
//! - **Published versions never change.** The update is also conditional on the draft status
//!   (and a database trigger refuses any change to a published row).

use std::sync::Arc;

use diesel::prelude::*;
use serde_json::Value;

use crate::db::schema::{questionnaire_versions, questionnaires};
use crate::db::DbConnection;
use crate::domain::comparability::{self, VersionDiff};
use crate::domain::questionnaire::{self, Questionnaire};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};
use crate::services::questionnaires::{
    self as store, ImportError, VersionSummary, DRAFT, PUBLISHED,
};

/// A draft as the editor shows it.
#[derive(Debug, Clone)]
pub struct Draft {
    pub summary: VersionSummary,
    pub revision: i64,
    /// The canonical document (what the loader read back), as JSON.
    pub document: Value,
    pub questionnaire: Arc<Questionnaire>,
    /// The published version it was started from, with what changed since.
    pub based_on: Option<(VersionSummary, VersionDiff)>,
}

/// A change to a draft.
#[derive(Debug, Clone)]
pub enum Change {
    /// RFC 6902 operations on the current document.
    Patch(Vec<json_patch::PatchOperation>),
    /// The whole new document.
    Replace(Value),
}

/// Why a change was not stored: the document it would produce (so a form can be drawn again
/// with it) and every problem, or the system's error.
#[derive(Debug)]
pub enum EditError {
    Invalid {
        problems: Vec<FieldError>,
        attempted: Option<Value>,
    },
    App(AppError),
}

impl From<AppError> for EditError {
    fn from(e: AppError) -> Self {
        EditError::App(e)
    }
}

impl From<diesel::result::Error> for EditError {
    fn from(e: diesel::result::Error) -> Self {
        EditError::App(e.into())
    }
}

impl From<EditError> for AppError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Invalid { problems, .. } => AppError::Validation(problems),
            EditError::App(e) => e,
        }
    }
}

fn invalid(problems: Vec<FieldError>, attempted: Option<Value>) -> EditError {
    EditError::Invalid {
        problems,
        attempted,
    }
}

/// Load a document with the upload's loader; the canonical JSON text on success.
fn check(doc: &Value) -> Result<(Questionnaire, String), Vec<FieldError>> {
    let text = doc.to_string();
    let q = questionnaire::load(text.as_bytes())?;
    let canonical = questionnaire::to_json(&q);
    Ok((q, canonical))
}

/// Check a document without storing it.
pub fn validate(doc: &Value) -> Result<Questionnaire, Vec<FieldError>> {
    check(doc).map(|(q, _)| q)
}

/// The draft `key` `version` with its revision and comparison with the version it came from.
pub fn draft(conn: &mut DbConnection, key: &str, version: &str) -> Result<Draft, AppError> {
    let stored = store::get(conn, key, version)?;
    let (revision, based_on): (i64, Option<i64>) = questionnaire_versions::table
        .find(stored.summary.id)
        .select((
            questionnaire_versions::revision,
            questionnaire_versions::based_on,
        ))
        .first(conn)?;
    let document = serde_json::from_str(&questionnaire::to_json(&stored.questionnaire))
        .map_err(|e| AppError::Internal(e.into()))?;
    let based_on = match based_on {
        Some(id) => {
            let base = store::get_by_id(conn, id)?;
            let diff = comparability::diff(&base.questionnaire, &stored.questionnaire);
            Some((base.summary, diff))
        }
        None => None,
    };
    Ok(Draft {
        summary: stored.summary,
        revision,
        document,
        questionnaire: stored.questionnaire,
        based_on,
    })
}

/// Store a new draft from a document (refused when the version exists).
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    doc: &Value,
    based_on: Option<i64>,
) -> Result<VersionSummary, EditError> {
    let (q, canonical) = check(doc).map_err(|p| invalid(p, Some(doc.clone())))?;
    let exists = questionnaire_versions::table
        .inner_join(questionnaires::table)
        .filter(questionnaires::key.eq(&q.key))
        .filter(questionnaire_versions::version.eq(&q.version))
        .select(questionnaire_versions::id)
        .first::<i64>(conn)
        .optional()?
        .is_some();
    if exists {
        return Err(invalid(
            vec![FieldError::new(
                "version",
                format!(
                    "version \"{}\" of \"{}\" already exists; choose another version",
                    q.version, q.key
                ),
            )],
            Some(doc.clone()),
        ));
    }
    let outcome = store::import(conn, actor, canonical.as_bytes(), false).map_err(|e| match e {
        ImportError::Invalid(p) => invalid(p, Some(doc.clone())),
        ImportError::App(e) => EditError::App(e),
    })?;
    if based_on.is_some() {
        diesel::update(questionnaire_versions::table.find(outcome.id))
            .set(questionnaire_versions::based_on.eq(based_on))
            .execute(conn)?;
    }
    Ok(store::get_by_id(conn, outcome.id)?.summary)
}

/// A new draft `new_version` holding the published (or draft) version `from`, remembered as
/// its base so the editor can tell which scores stay comparable.
pub fn start_from(
    conn: &mut DbConnection,
    actor: &Actor,
    key: &str,
    from: &str,
    new_version: &str,
) -> Result<VersionSummary, EditError> {
    let base = store::get(conn, key, from)?;
    let mut doc: Value = serde_json::from_str(&questionnaire::to_json(&base.questionnaire))
        .map_err(|e| AppError::Internal(e.into()))?;
    doc["version"] = Value::String(new_version.to_string());
    let based_on = (base.summary.status == PUBLISHED).then_some(base.summary.id);
    create(conn, actor, &doc, based_on)
}

/// Apply a change made against `revision`. Refused with a stale-revision conflict when the
/// draft has changed since, with a conflict when it is published, and with every problem when
/// the result does not load. On success the draft's new state.
pub fn change(
    conn: &mut DbConnection,
    actor: &Actor,
    key: &str,
    version: &str,
    revision: i64,
    change: Change,
) -> Result<Draft, EditError> {
    let current = draft(conn, key, version)?;
    if current.summary.status != DRAFT {
        return Err(EditError::App(published(key, version)));
    }
    if current.revision != revision {
        return Err(EditError::App(stale(revision, current.revision)));
    }
    let doc = match change {
        Change::Patch(ops) => questionnaire::authoring::patch(&current.document, &ops)
            .map_err(|p| invalid(vec![p], None))?,
        Change::Replace(doc) => doc,
    };
    let (q, canonical) = check(&doc).map_err(|p| invalid(p, Some(doc.clone())))?;
    let mut identity = Vec::new();
    if q.key != key {
        identity.push(FieldError::new(
            "key",
            format!("a draft keeps its key \"{key}\"; start a new question set for another key"),
        ));
    }
    if q.version != version {
        identity.push(FieldError::new("version", format!("a draft keeps its version \"{version}\"; start a new draft from it for another version")));
    }
    if !identity.is_empty() {
        return Err(invalid(identity, Some(doc)));
    }
    let checksum = store::checksum(&canonical);
    let updated = diesel::update(
        questionnaire_versions::table
            .filter(questionnaire_versions::id.eq(current.summary.id))
            .filter(questionnaire_versions::revision.eq(revision))
            .filter(questionnaire_versions::status.eq(DRAFT)),
    )
    .set((
        questionnaire_versions::title.eq(&q.title),
        questionnaire_versions::definition.eq(&canonical),
        questionnaire_versions::source.eq(&canonical),
        questionnaire_versions::checksum.eq(&checksum),
        questionnaire_versions::revision.eq(revision + 1),
    ))
    .execute(conn)?;
    if updated == 0 {
        // Another change got there first (the read above and this update are not atomic on
        // PostgreSQL's read committed): nothing was stored.
        return Err(EditError::App(stale(revision, revision + 1)));
    }
    audit::record(
        conn,
        actor,
        Entry::new("questionnaire.edit_draft", "questionnaire_version", current.summary.id)
            .before(serde_json::json!({"revision": revision, "checksum": store::checksum(&questionnaire::to_json(&current.questionnaire))}))
            .after(serde_json::json!({"revision": revision + 1, "checksum": checksum})),
    )?;
    Ok(draft(conn, key, version)?)
}

fn published(key: &str, version: &str) -> AppError {
    AppError::Conflict(format!(
        "Version {version} of {key} is published and cannot be changed; start a new draft from it instead."
    ))
}

fn stale(sent: i64, now: i64) -> AppError {
    AppError::StaleRevision {
        message: format!(
            "Someone else changed this draft since you opened it (you had revision {sent}; it is now at least {now}). Your change was not saved: look at the draft as it is now and make your change again."
        ),
        current: serde_json::json!([{"revision": now}]),
    }
}
