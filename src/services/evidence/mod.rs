//! Evidence per answer (issue 23, docs/evidence.md): files and links attached to a question
//! of an assessment, each with a title, so an auditor can see what an answer rests on.
//!
//! - **Who**: whoever may change the answers adds and removes evidence while the assessment
//!   is open (`Action::ChangeEvidence`); whoever may read the assessment downloads it
//!   (`Action::ReadEvidence`: auditors once it is submitted). The callers check the policy;
//!   this module checks the state (open, limits) inside the write transaction.
//! - **What**: files of the kinds in [`files::ACCEPTED`], typed by their content, at most
//!   `DMA_EVIDENCE_MAX_FILE_BYTES` each and `DMA_EVIDENCE_MAX_ASSESSMENT_BYTES` for the whole
//!   assessment, [`MAX_ITEMS_PER_ANSWER`] items per answer; links are http or https URLs.
//! - **Where**: the bytes go through a [`store::BlobStore`] (the database by default),
//!   content-addressed, in the same transaction as the evidence row, so a refused or failed
//!   upload leaves nothing behind and a removed item's bytes go when nothing names them.
//! - **Next year**: evidence belongs to the answer it was given for. An answer carried into
//!   the next cycle arrives without evidence; the page shows last year's items ("from last
//!   year, confirm to keep", [`last_year`]) and confirming the carried answer copies them onto
//!   it ([`carry_on_confirm`], called by `assessments::save_loaded`). A changed answer starts
//!   with none.

pub mod files;
pub mod store;

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::config::EvidenceSettings;
use crate::db::schema::{assessments, evidence, score_sets, users};
use crate::db::{with_concrete_connection, DbConnection};
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::assessments::{AssessmentRow, Loaded};
use crate::services::audit::{self, Actor, Entry};
use files::Staged;
use store::BlobStore;

/// The most items one answer may have.
pub const MAX_ITEMS_PER_ANSWER: i64 = 20;
/// The longest title kept.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest link kept.
pub const MAX_URL_CHARS: usize = 2000;

/// A file or a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Link,
}

/// One item of evidence as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: i64,
    pub question_key: String,
    pub kind: Kind,
    pub title: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    pub url: Option<String>,
    /// The item of last year's answer this one was copied from.
    pub carried_from: Option<i64>,
    pub added_by: Option<String>,
    pub added_at: NaiveDateTime,
    digest: Option<String>,
}

impl Item {
    /// The media type's description for people ("PDF", "Word document").
    pub fn type_label(&self) -> &'static str {
        match self.kind {
            Kind::Link => "Link",
            Kind::File => self
                .content_type
                .as_deref()
                .and_then(files::by_media_type)
                .map_or("File", |t| t.label),
        }
    }
}

type ItemRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    NaiveDateTime,
    Option<String>,
);

fn to_item(r: ItemRow) -> Item {
    Item {
        id: r.0,
        question_key: r.1,
        kind: if r.2 == "link" {
            Kind::Link
        } else {
            Kind::File
        },
        title: r.3,
        file_name: r.4,
        content_type: r.5,
        size: r.6,
        url: r.7,
        carried_from: r.8,
        added_by: r.9,
        added_at: r.10,
        digest: r.11,
    }
}

fn items_of(
    conn: &mut DbConnection,
    assessment_id: i64,
    question_key: Option<&str>,
    id: Option<i64>,
) -> Result<Vec<Item>, AppError> {
    let mut query = evidence::table
        .left_join(users::table.on(users::id.nullable().eq(evidence::added_by)))
        .filter(evidence::assessment_id.eq(assessment_id))
        .select((
            evidence::id,
            evidence::question_key,
            evidence::kind,
            evidence::title,
            evidence::file_name,
            evidence::content_type,
            evidence::size,
            evidence::url,
            evidence::carried_from,
            users::name.nullable(),
            evidence::added_at,
            evidence::digest,
        ))
        .order((evidence::question_key, evidence::id))
        .into_boxed();
    if let Some(key) = question_key {
        query = query.filter(evidence::question_key.eq(key.to_string()));
    }
    if let Some(id) = id {
        query = query.filter(evidence::id.eq(id));
    }
    Ok(query
        .load::<ItemRow>(conn)?
        .into_iter()
        .map(to_item)
        .collect())
}

/// The evidence of an assessment, of one question or of all, in the order it was added.
pub fn list(
    conn: &mut DbConnection,
    assessment_id: i64,
    question_key: Option<&str>,
) -> Result<Vec<Item>, AppError> {
    items_of(conn, assessment_id, question_key, None)
}

/// The evidence of an assessment by question.
pub fn by_question(
    conn: &mut DbConnection,
    assessment_id: i64,
) -> Result<BTreeMap<String, Vec<Item>>, AppError> {
    let mut out: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in list(conn, assessment_id, None)? {
        out.entry(item.question_key.clone()).or_default().push(item);
    }
    Ok(out)
}

/// One item of this assessment (404 when it belongs to another).
pub fn get(conn: &mut DbConnection, assessment_id: i64, id: i64) -> Result<Item, AppError> {
    items_of(conn, assessment_id, None, Some(id))?
        .pop()
        .ok_or(AppError::NotFound)
}

/// A file item's bytes as the store holds them, for a download.
pub struct Download {
    pub item: Item,
    pub blob: store::BlobInfo,
}

/// What a download of item `id` needs: the item and its blob (404 for a link or a missing
/// item).
pub fn download(
    conn: &mut DbConnection,
    store: &dyn BlobStore,
    assessment_id: i64,
    id: i64,
) -> Result<Download, AppError> {
    let item = get(conn, assessment_id, id)?;
    let digest = item.digest.clone().ok_or(AppError::NotFound)?;
    let blob = store.info(conn, &digest)?.ok_or(AppError::NotFound)?;
    Ok(Download { item, blob })
}

/// Read one chunk of a download (each on its own short read, so a slow client holds no
/// connection between chunks).
pub fn chunk(
    conn: &mut DbConnection,
    store: &dyn BlobStore,
    digest: &str,
    seq: i32,
) -> Result<Vec<u8>, AppError> {
    store.chunk(conn, digest, seq)?.ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("evidence blob {digest} lacks chunk {seq}"))
    })
}

/// A title as given, or the field error saying what is wrong with it.
fn checked_title(title: &str) -> Result<String, FieldError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(FieldError::new("title", "Enter a title for the evidence"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(FieldError::new(
            "title",
            format!("The title must be {MAX_TITLE_CHARS} characters or fewer"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(FieldError::new(
            "title",
            "The title must be one line of text, without control characters",
        ));
    }
    Ok(title.to_string())
}

/// An http or https address with a host and without a user name or password in it.
pub fn checked_url(url: &str) -> Result<String, FieldError> {
    let url = url.trim();
    let bad = |m: &str| FieldError::new("url", m);
    if url.is_empty() {
        return Err(bad("Enter the link's address, starting with https://"));
    }
    if url.chars().count() > MAX_URL_CHARS {
        return Err(FieldError::new(
            "url",
            format!("The link must be {MAX_URL_CHARS} characters or fewer"),
        ));
    }
    let parsed = url::Url::parse(url).map_err(|_| {
        bad("Enter a full web address, like https://intranet.example.nhs.uk/policy")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("The link must start with https:// or http://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(
            "The link must name a web site, like https://intranet.example.nhs.uk/policy",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("The link must not contain a user name or password"));
    }
    Ok(parsed.to_string())
}

/// The statuses in which evidence may change: those in which answers may.
const OPEN_STATUSES: [&str; 3] = ["not_started", "in_progress", "reopened"];

/// The assessment is open now, read in this transaction. On PostgreSQL the row is share-locked
/// until commit, so a submission cannot commit between this check and the change (it waits,
/// then includes it); on SQLite the one writer already orders them.
fn require_open_now(conn: &mut DbConnection, assessment_id: i64) -> Result<(), AppError> {
    let status: String = match conn {
        DbConnection::Pg(pg) => assessments::table
            .find(assessment_id)
            .select(assessments::status)
            .for_share()
            .first(pg)?,
        DbConnection::Sqlite(_) => assessments::table
            .find(assessment_id)
            .select(assessments::status)
            .first(conn)?,
    };
    if OPEN_STATUSES.contains(&status.as_str()) {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "This assessment has been submitted, so its evidence can no longer be changed. An administrator can reopen it.".into(),
        ))
    }
}

/// Serialise evidence changes to one assessment on PostgreSQL, so two uploads cannot both
/// pass the count and size limits (SQLite's one writer does this by itself).
fn lock_assessment_evidence(conn: &mut DbConnection, assessment_id: i64) -> Result<(), AppError> {
    if conn.backend() == crate::db::Backend::Postgres {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(format!("evidence:{assessment_id}"))
            .execute(conn)?;
    }
    Ok(())
}

fn require_question(loaded: &Loaded, key: &str) -> Result<(), AppError> {
    if loaded.questionnaire().question(key).is_none() {
        return Err(AppError::NotFound);
    }
    if !loaded.is_open_for_answers() {
        return Err(AppError::Conflict(
            "This assessment has been submitted, so its evidence can no longer be changed. An administrator can reopen it.".into(),
        ));
    }
    Ok(())
}

fn require_room(conn: &mut DbConnection, assessment_id: i64, key: &str) -> Result<(), AppError> {
    let items: i64 = evidence::table
        .filter(evidence::assessment_id.eq(assessment_id))
        .filter(evidence::question_key.eq(key))
        .count()
        .get_result(conn)?;
    if items >= MAX_ITEMS_PER_ANSWER {
        return Err(AppError::Validation(vec![FieldError::new(
            "evidence",
            format!("This answer already has {MAX_ITEMS_PER_ANSWER} items of evidence, the most it may have. Remove one you no longer need first."),
        )]));
    }
    Ok(())
}

/// The bytes of file evidence an assessment holds.
pub fn assessment_bytes(conn: &mut DbConnection, assessment_id: i64) -> Result<i64, AppError> {
    // Summed here rather than by `SUM`, whose result type differs between the backends.
    let sizes: Vec<Option<i64>> = evidence::table
        .filter(evidence::assessment_id.eq(assessment_id))
        .select(evidence::size)
        .load(conn)?;
    Ok(sizes.into_iter().flatten().sum())
}

fn inserted(
    conn: &mut DbConnection,
    actor: &Actor,
    loaded: &Loaded,
    id: i64,
    details: serde_json::Value,
) -> Result<Item, AppError> {
    audit::record(
        conn,
        actor,
        Entry::new("evidence.add", "evidence", id)
            .organisation(Some(loaded.row.organisation_id))
            .after(details),
    )?;
    get(conn, loaded.row.id, id)
}

/// Attach a checked file to an answer, storing its bytes (once per content) in the same
/// transaction. Refused: unknown question (404), submitted (409), bad title, too many items
/// or more than the assessment may hold (422).
#[allow(clippy::too_many_arguments)]
pub fn add_file(
    conn: &mut DbConnection,
    store: &dyn BlobStore,
    limits: &EvidenceSettings,
    actor: &Actor,
    loaded: &Loaded,
    question_key: &str,
    title: &str,
    file: &Staged,
) -> Result<Item, AppError> {
    require_question(loaded, question_key)?;
    let title = checked_title(title).map_err(|e| AppError::Validation(vec![e]))?;
    if file.size > limits.max_file_bytes as u64 {
        return Err(files::too_large(limits.max_file_bytes));
    }
    let assessment_id = loaded.row.id;
    lock_assessment_evidence(conn, assessment_id)?;
    require_room(conn, assessment_id, question_key)?;
    let held = u64::try_from(assessment_bytes(conn, assessment_id)?).unwrap_or(0);
    if held + file.size > limits.max_assessment_bytes {
        return Err(AppError::Validation(vec![FieldError::new(
            "file",
            format!(
                "This assessment already holds {} of evidence files, and this file ({}) would take it past its limit of {}. Remove files you no longer need, or add a link to the document instead.",
                crate::error::human_bytes(usize::try_from(held).unwrap_or(usize::MAX)),
                crate::error::human_bytes(usize::try_from(file.size).unwrap_or(usize::MAX)),
                crate::error::human_bytes(usize::try_from(limits.max_assessment_bytes).unwrap_or(usize::MAX)),
            ),
        )]));
    }
    store.put(conn, file)?;
    let size = i64::try_from(file.size).unwrap_or(i64::MAX);
    let id: i64 = diesel::insert_into(evidence::table)
        .values((
            evidence::assessment_id.eq(assessment_id),
            evidence::question_key.eq(question_key),
            evidence::kind.eq("file"),
            evidence::title.eq(&title),
            evidence::digest.eq(Some(&file.digest)),
            evidence::file_name.eq(Some(&file.file_name)),
            evidence::content_type.eq(Some(file.kind.media_type)),
            evidence::size.eq(Some(size)),
            evidence::added_by.eq(actor.user_id),
            evidence::added_at.eq(Utc::now().naive_utc()),
        ))
        .returning(evidence::id)
        .get_result(conn)?;
    // Last, so the share lock on the assessment is held only for the commit.
    require_open_now(conn, assessment_id)?;
    inserted(
        conn,
        actor,
        loaded,
        id,
        json!({"question": question_key, "kind": "file", "title": title, "file_name": file.file_name,
               "content_type": file.kind.media_type, "size": file.size, "digest": file.digest}),
    )
}

/// The field errors of a link before anything is stored, for forms that show them all.
pub fn check_link(title: &str, url: &str) -> Result<(String, String), AppError> {
    let mut errors = Vec::new();
    let title = checked_title(title).map_err(|e| errors.push(e)).ok();
    let url = checked_url(url).map_err(|e| errors.push(e)).ok();
    match (title, url) {
        (Some(t), Some(u)) if errors.is_empty() => Ok((t, u)),
        _ => Err(AppError::Validation(errors)),
    }
}

/// Attach a link to an answer. Refused as [`add_file`], and for an address that is not an
/// http or https URL (422).
pub fn add_link(
    conn: &mut DbConnection,
    actor: &Actor,
    loaded: &Loaded,
    question_key: &str,
    title: &str,
    url: &str,
) -> Result<Item, AppError> {
    require_question(loaded, question_key)?;
    let (title, url) = check_link(title, url)?;
    let assessment_id = loaded.row.id;
    lock_assessment_evidence(conn, assessment_id)?;
    require_open_now(conn, assessment_id)?;
    require_room(conn, assessment_id, question_key)?;
    let id: i64 = diesel::insert_into(evidence::table)
        .values((
            evidence::assessment_id.eq(assessment_id),
            evidence::question_key.eq(question_key),
            evidence::kind.eq("link"),
            evidence::title.eq(&title),
            evidence::url.eq(Some(&url)),
            evidence::added_by.eq(actor.user_id),
            evidence::added_at.eq(Utc::now().naive_utc()),
        ))
        .returning(evidence::id)
        .get_result(conn)?;
    inserted(
        conn,
        actor,
        loaded,
        id,
        json!({"question": question_key, "kind": "link", "title": title, "url": url}),
    )
}

/// Remove an item; a file's bytes go too when no other item names them.
pub fn remove(
    conn: &mut DbConnection,
    store: &dyn BlobStore,
    actor: &Actor,
    loaded: &Loaded,
    id: i64,
) -> Result<Item, AppError> {
    let item = get(conn, loaded.row.id, id)?;
    lock_assessment_evidence(conn, loaded.row.id)?;
    require_open_now(conn, loaded.row.id)?;
    let removed = diesel::delete(
        evidence::table
            .filter(evidence::id.eq(id))
            .filter(evidence::assessment_id.eq(loaded.row.id)),
    )
    .execute(conn)?;
    if removed != 1 {
        return Err(AppError::NotFound);
    }
    if let Some(digest) = &item.digest {
        store.release(conn, digest)?;
    }
    audit::record(
        conn,
        actor,
        Entry::new("evidence.remove", "evidence", id)
            .organisation(Some(loaded.row.organisation_id))
            .before(
                json!({"question": item.question_key, "kind": item.kind, "title": item.title,
                           "file_name": item.file_name, "url": item.url, "size": item.size}),
            ),
    )?;
    Ok(item)
}

/// The organisation's previous submitted assessment for the same setting, the one a cycle's
/// answers were carried forward from (the same choice as `cycles::open`: the latest current
/// score set of an earlier assessment).
fn previous_assessment(
    conn: &mut DbConnection,
    row: &AssessmentRow,
) -> Result<Option<i64>, AppError> {
    Ok(score_sets::table
        .inner_join(assessments::table)
        .filter(assessments::organisation_id.eq(row.organisation_id))
        .filter(assessments::setting.eq(&row.setting))
        .filter(assessments::cycle_id.ne(row.cycle_id))
        .filter(assessments::created_at.lt(row.created_at))
        .filter(score_sets::is_current.eq(true))
        .order(score_sets::scored_at.desc())
        .select(assessments::id)
        .first(conn)
        .optional()?)
}

/// Evidence by question, with the assessment it belongs to.
pub type LastYear = (i64, BTreeMap<String, Vec<Item>>);

/// Last year's evidence of each answer that was carried forward and not yet confirmed (what
/// confirming it would keep), with the assessment it belongs to (its downloads are that
/// assessment's). `None` when there is nothing to offer.
pub fn last_year(conn: &mut DbConnection, loaded: &Loaded) -> Result<Option<LastYear>, AppError> {
    let carried: Vec<&String> = loaded
        .answers
        .iter()
        .filter(|(_, a)| a.carried_forward)
        .map(|(k, _)| k)
        .collect();
    if carried.is_empty() {
        return Ok(None);
    }
    let Some(previous) = previous_assessment(conn, &loaded.row)? else {
        return Ok(None);
    };
    let mut items = by_question(conn, previous)?;
    items.retain(|k, _| carried.contains(&k));
    Ok(Some((previous, items)))
}

/// A carried-forward answer was confirmed: copy its evidence from last year onto it (once:
/// the unique `(assessment_id, carried_from)` makes a second confirmation copy nothing). The
/// blobs are shared, so nothing is stored twice and the assessment's limits are not applied.
pub fn carry_on_confirm(
    conn: &mut DbConnection,
    actor: &Actor,
    loaded: &Loaded,
    question_key: &str,
) -> Result<usize, AppError> {
    let Some(previous) = previous_assessment(conn, &loaded.row)? else {
        return Ok(0);
    };
    let items = list(conn, previous, Some(question_key))?;
    let now = Utc::now().naive_utc();
    let mut copied = 0;
    for item in &items {
        copied += with_concrete_connection!(conn, c => {
            diesel::insert_into(evidence::table)
                .values((
                    evidence::assessment_id.eq(loaded.row.id),
                    evidence::question_key.eq(question_key),
                    evidence::kind.eq(if item.kind == Kind::Link { "link" } else { "file" }),
                    evidence::title.eq(&item.title),
                    evidence::digest.eq(&item.digest),
                    evidence::file_name.eq(&item.file_name),
                    evidence::content_type.eq(&item.content_type),
                    evidence::size.eq(item.size),
                    evidence::url.eq(&item.url),
                    evidence::carried_from.eq(Some(item.id)),
                    evidence::added_by.eq(actor.user_id),
                    evidence::added_at.eq(now),
                ))
                .on_conflict((evidence::assessment_id, evidence::carried_from))
                .do_nothing()
                .execute(c)
        })?;
    }
    if copied > 0 {
        audit::record(
            conn,
            actor,
            Entry::new("evidence.carry", "assessment", loaded.row.id)
                .organisation(Some(loaded.row.organisation_id))
                .after(
                    json!({"question": question_key, "from_assessment": previous,
                              "items": items.iter().map(|i| i.id).collect::<Vec<_>>()}),
                ),
        )?;
    }
    Ok(copied)
}
