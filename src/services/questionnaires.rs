//! Stored question sets: import (a draft, replaceable until published), publication (after
//! which the version is immutable, enforced again by a database trigger), listing, export and
//! diff. A version's definition is stored as the canonical JSON of the validated model, so an
//! export re-imports to an equal model; the uploaded text is kept too, as written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::schema::{questionnaire_versions, questionnaires};
use crate::db::DbConnection;
use crate::domain::questionnaire::{self, Questionnaire};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};

pub const DRAFT: &str = "draft";
pub const PUBLISHED: &str = "published";

#[derive(Debug, Clone, Serialize)]
pub struct VersionSummary {
    pub id: i64,
    pub key: String,
    pub version: String,
    pub title: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub published_at: Option<NaiveDateTime>,
}

/// A stored version with its parsed model (shared: a published model is parsed once per
/// process, see [`PUBLISHED_MODELS`]).
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub summary: VersionSummary,
    pub questionnaire: Arc<Questionnaire>,
}

#[derive(Debug, Serialize)]
pub struct ImportOutcome {
    pub id: i64,
    pub key: String,
    pub version: String,
    pub status: String,
    /// An existing draft of the same version was replaced.
    pub replaced: bool,
    pub warnings: Vec<String>,
}

/// Why an import did not happen: the document's own problems, or the system's.
#[derive(Debug)]
pub enum ImportError {
    Invalid(Vec<FieldError>),
    App(AppError),
}

impl From<AppError> for ImportError {
    fn from(e: AppError) -> Self {
        ImportError::App(e)
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::App(e.into())
    }
}

impl From<ImportError> for AppError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Invalid(errors) => AppError::Validation(errors),
            ImportError::App(e) => e,
        }
    }
}

pub fn checksum(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The columns of a [`VersionSummary`] and the version's checksum (which finds its parsed
/// model, [`stored_from_row`]), from `questionnaire_versions` joined to `questionnaires`:
/// one select list for this module's queries and for a caller that joins the version to
/// its own rows (an assessment's load reads all of it in one statement).
#[diesel::dsl::auto_type]
pub fn summary_columns() -> _ {
    (
        questionnaire_versions::id,
        questionnaires::key,
        questionnaire_versions::version,
        questionnaire_versions::title,
        questionnaire_versions::status,
        questionnaire_versions::created_at,
        questionnaire_versions::published_at,
        questionnaire_versions::checksum,
    )
}

#[diesel::dsl::auto_type(no_type_alias)]
fn summary_query() -> _ {
    questionnaire_versions::table
        .inner_join(questionnaires::table)
        .select(summary_columns())
}

/// A row of [`summary_columns`].
pub type SummaryRow = (
    i64,
    String,
    String,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    String,
);

fn to_summary(row: SummaryRow) -> VersionSummary {
    split_summary(row).0
}

fn split_summary(row: SummaryRow) -> (VersionSummary, String) {
    let (id, key, version, title, status, created_at, published_at, checksum) = row;
    let summary = VersionSummary {
        id,
        key,
        version,
        title,
        status,
        created_at,
        published_at,
    };
    (summary, checksum)
}

/// Validate and store a definition as a draft (replacing a draft of the same version), and
/// optionally publish it, in the caller's transaction.
pub fn import(
    conn: &mut DbConnection,
    actor: &Actor,
    source: &[u8],
    publish_now: bool,
) -> Result<ImportOutcome, ImportError> {
    let (q, warnings) = questionnaire::load_with_warnings(source).map_err(ImportError::Invalid)?;
    // The loader accepts only UTF-8, so this conversion cannot lose anything.
    let source_text = String::from_utf8_lossy(source).into_owned();
    let definition = questionnaire::to_json(&q);
    let now = Utc::now().naive_utc();

    let questionnaire_id: i64 = match questionnaires::table
        .filter(questionnaires::key.eq(&q.key))
        .select(questionnaires::id)
        .first(conn)
        .optional()?
    {
        Some(id) => id,
        None => diesel::insert_into(questionnaires::table)
            .values((
                questionnaires::key.eq(&q.key),
                questionnaires::title.eq(&q.title),
                questionnaires::created_at.eq(now),
            ))
            .returning(questionnaires::id)
            .get_result(conn)?,
    };
    let existing: Option<(i64, String)> = questionnaire_versions::table
        .filter(questionnaire_versions::questionnaire_id.eq(questionnaire_id))
        .filter(questionnaire_versions::version.eq(&q.version))
        .select((questionnaire_versions::id, questionnaire_versions::status))
        .first(conn)
        .optional()?;
    let (id, replaced) = match existing {
        Some((_, status)) if status == PUBLISHED => {
            return Err(ImportError::Invalid(vec![FieldError::new(
                "version",
                format!(
                    "version \"{}\" of \"{}\" is published and cannot be changed; give the corrected definition a new version",
                    q.version, q.key
                ),
            )]))
        }
        Some((id, _)) => {
            diesel::update(questionnaire_versions::table.find(id))
                .set((
                    questionnaire_versions::title.eq(&q.title),
                    questionnaire_versions::definition.eq(&definition),
                    questionnaire_versions::source.eq(&source_text),
                    questionnaire_versions::checksum.eq(checksum(&definition)),
                    questionnaire_versions::created_by.eq(actor.user_id),
                    questionnaire_versions::created_at.eq(now),
                    // An editor holding the old revision must not overwrite the upload.
                    questionnaire_versions::revision.eq(questionnaire_versions::revision + 1),
                ))
                .execute(conn)?;
            (id, true)
        }
        None => {
            let id = diesel::insert_into(questionnaire_versions::table)
                .values((
                    questionnaire_versions::questionnaire_id.eq(questionnaire_id),
                    questionnaire_versions::version.eq(&q.version),
                    questionnaire_versions::title.eq(&q.title),
                    questionnaire_versions::status.eq(DRAFT),
                    questionnaire_versions::definition.eq(&definition),
                    questionnaire_versions::source.eq(&source_text),
                    questionnaire_versions::checksum.eq(checksum(&definition)),
                    questionnaire_versions::created_by.eq(actor.user_id),
                    questionnaire_versions::created_at.eq(now),
                ))
                .returning(questionnaire_versions::id)
                .get_result(conn)?;
            (id, false)
        }
    };
    audit::record(
        conn,
        actor,
        Entry::new(
            if replaced { "questionnaire.replace_draft" } else { "questionnaire.import" },
            "questionnaire_version",
            id,
        )
        .after(serde_json::json!({"key": q.key, "version": q.version, "checksum": checksum(&definition)})),
    )?;
    let mut status = DRAFT.to_string();
    if publish_now {
        publish(conn, actor, &q.key, &q.version)?;
        status = PUBLISHED.to_string();
    }
    Ok(ImportOutcome {
        id,
        key: q.key,
        version: q.version,
        status,
        replaced,
        warnings: warnings.iter().map(ToString::to_string).collect(),
    })
}

fn find_summary(
    conn: &mut DbConnection,
    key: &str,
    version: &str,
) -> Result<VersionSummary, AppError> {
    find_row(conn, key, version).map(to_summary)
}

fn find_row(conn: &mut DbConnection, key: &str, version: &str) -> Result<SummaryRow, AppError> {
    summary_query()
        .filter(questionnaires::key.eq(key))
        .filter(questionnaire_versions::version.eq(version))
        .first::<SummaryRow>(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// Make a draft immutable.
pub fn publish(
    conn: &mut DbConnection,
    actor: &Actor,
    key: &str,
    version: &str,
) -> Result<VersionSummary, AppError> {
    let summary = find_summary(conn, key, version)?;
    if summary.status == PUBLISHED {
        return Err(AppError::Conflict(format!(
            "Version {version} of {key} is already published."
        )));
    }
    let now = Utc::now().naive_utc();
    diesel::update(questionnaire_versions::table.find(summary.id))
        .set((
            questionnaire_versions::status.eq(PUBLISHED),
            questionnaire_versions::published_at.eq(Some(now)),
            questionnaire_versions::published_by.eq(actor.user_id),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("questionnaire.publish", "questionnaire_version", summary.id)
            .before(serde_json::json!({"status": DRAFT}))
            .after(serde_json::json!({"status": PUBLISHED})),
    )?;
    find_summary(conn, key, version)
}

/// Delete a draft version (a published one is refused, here and by the database).
pub fn delete_draft(
    conn: &mut DbConnection,
    actor: &Actor,
    key: &str,
    version: &str,
) -> Result<(), AppError> {
    let summary = find_summary(conn, key, version)?;
    if summary.status == PUBLISHED {
        return Err(AppError::Conflict(format!(
            "Version {version} of {key} is published and cannot be deleted."
        )));
    }
    diesel::delete(questionnaire_versions::table.find(summary.id)).execute(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new(
            "questionnaire.delete_draft",
            "questionnaire_version",
            summary.id,
        )
        .before(serde_json::json!({"key": key, "version": version})),
    )?;
    Ok(())
}

/// Every version, newest first within each question set.
pub fn list(conn: &mut DbConnection) -> Result<Vec<VersionSummary>, AppError> {
    let rows: Vec<SummaryRow> = summary_query()
        .order((
            questionnaires::key.asc(),
            questionnaire_versions::created_at.desc(),
        ))
        .load(conn)?;
    Ok(rows.into_iter().map(to_summary).collect())
}

/// A stored version with its model parsed from the canonical definition.
pub fn get(conn: &mut DbConnection, key: &str, version: &str) -> Result<StoredVersion, AppError> {
    let row = find_row(conn, key, version)?;
    stored_from_row(conn, row)
}

pub fn get_by_id(conn: &mut DbConnection, id: i64) -> Result<StoredVersion, AppError> {
    let row = summary_query()
        .filter(questionnaire_versions::id.eq(id))
        .first::<SummaryRow>(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    stored_from_row(conn, row)
}

/// The stored version a [`summary_columns`] row describes, with its model: a published
/// version's from the cache by its checksum (no further statement, unless this process has
/// not parsed it yet), a draft's parsed afresh.
pub fn stored_from_row(
    conn: &mut DbConnection,
    row: SummaryRow,
) -> Result<StoredVersion, AppError> {
    let (summary, sum) = split_summary(row);
    let questionnaire = if summary.status == PUBLISHED {
        match cached(&sum) {
            Some(q) => q,
            None => {
                let q = Arc::new(parse_definition(conn, summary.id)?);
                remember(sum, &q);
                q
            }
        }
    } else {
        Arc::new(parse_definition(conn, summary.id)?)
    };
    Ok(StoredVersion {
        summary,
        questionnaire,
    })
}

fn parse_definition(conn: &mut DbConnection, id: i64) -> Result<Questionnaire, AppError> {
    let definition: String = questionnaire_versions::table
        .find(id)
        .select(questionnaire_versions::definition)
        .first(conn)?;
    questionnaire::load(definition.as_bytes()).map_err(|errors| {
        AppError::Internal(anyhow::anyhow!(
            "stored definition {id} no longer loads: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

/// Parsed models of published versions, by the checksum of their canonical definition.
/// Every page of an assessment needs its version's model, and parsing the stored JSON took
/// most of a save's CPU time. A published version never changes (a database trigger refuses
/// it), so its parse holds for the life of the process. The key is the checksum, not the id,
/// so that databases sharing a process (the tests) cannot see each other's models; equal
/// checksums mean equal definitions. Bounded: the cache starts afresh when full, which in
/// practice (a few versions a year) never happens.
static PUBLISHED_MODELS: OnceLock<Mutex<HashMap<String, Arc<Questionnaire>>>> = OnceLock::new();
const PUBLISHED_MODELS_MAX: usize = 256;

fn models() -> &'static Mutex<HashMap<String, Arc<Questionnaire>>> {
    PUBLISHED_MODELS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cached(checksum: &str) -> Option<Arc<Questionnaire>> {
    models()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(checksum)
        .cloned()
}

fn remember(checksum: String, model: &Arc<Questionnaire>) {
    let mut map = models().lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= PUBLISHED_MODELS_MAX {
        map.clear();
    }
    map.insert(checksum, Arc::clone(model));
}
