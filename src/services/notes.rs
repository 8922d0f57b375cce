//! Notes on questions (issue 22): a thread per question in which the organisation's people
//! discuss an answer ("who wrote what, when"). Notes are not answers: they live in their own
//! table, so scoring, exports and the answers API never see them.
//!
//! Who sees what:
//! - the organisation's people (and administrators) read every note of their assessment and
//!   add notes while it is open;
//! - auditors read a submitted assessment, and of its notes only those the organisation chose
//!   to share with its submission (`shared`); before submission they see nothing, as for the
//!   answers;
//! - the organisation's approvers choose which notes are shared, until it is submitted.
//!
//! Only a note's author may correct it (it then says "edited") or remove it, while the
//! assessment is open.
//!
//! Sharing, editing and removing are conditional writes on the note's revision, so two people
//! changing the same note at once get one change and a 409 for the other, never a silent
//! overwrite.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::db::schema::{question_notes, users};
use crate::db::DbConnection;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::assessments::Loaded;
use crate::services::audit::{self, Actor, Entry};

/// The longest note kept.
pub const MAX_NOTE_CHARS: usize = 4000;

/// One note as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub id: i64,
    pub question_key: String,
    pub author: Option<String>,
    pub body: String,
    pub shared: bool,
    pub revision: i64,
    pub created_at: NaiveDateTime,
    pub author_id: Option<i64>,
    /// When its author last corrected it.
    pub edited_at: Option<NaiveDateTime>,
}

/// Which notes a reader may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every note: the organisation's people and administrators.
    All,
    /// Only those shared with the submission: auditors.
    SharedOnly,
}

type NoteRow = (
    (
        i64,
        String,
        Option<String>,
        String,
        bool,
        i64,
        NaiveDateTime,
    ),
    (Option<i64>, Option<NaiveDateTime>),
);

fn to_note((r, (author_id, edited_at)): NoteRow) -> Note {
    Note {
        id: r.0,
        question_key: r.1,
        author: r.2,
        body: r.3,
        shared: r.4,
        revision: r.5,
        created_at: r.6,
        author_id,
        edited_at,
    }
}

/// The notes of an assessment, oldest first, of one question or of all.
pub fn list(
    conn: &mut DbConnection,
    assessment_id: i64,
    question_key: Option<&str>,
    reach: Reach,
) -> Result<Vec<Note>, AppError> {
    let mut query = question_notes::table
        .left_join(users::table.on(users::id.nullable().eq(question_notes::author_id)))
        .filter(question_notes::assessment_id.eq(assessment_id))
        .select((
            (
                question_notes::id,
                question_notes::question_key,
                users::name.nullable(),
                question_notes::body,
                question_notes::shared,
                question_notes::revision,
                question_notes::created_at,
            ),
            (question_notes::author_id, question_notes::edited_at),
        ))
        .order((question_notes::created_at, question_notes::id))
        .into_boxed();
    if let Some(key) = question_key {
        query = query.filter(question_notes::question_key.eq(key.to_string()));
    }
    if reach == Reach::SharedOnly {
        query = query.filter(question_notes::shared.eq(true));
    }
    Ok(query
        .load::<NoteRow>(conn)?
        .into_iter()
        .map(to_note)
        .collect())
}

/// Add a note to a question (the caller has checked `Answer`). Refused while submitted (409),
/// for an unknown question (404), empty or too long (422).
pub fn add(
    conn: &mut DbConnection,
    actor: &Actor,
    author_id: i64,
    loaded: &Loaded,
    question_key: &str,
    body: &str,
) -> Result<Note, AppError> {
    if loaded.questionnaire().question(question_key).is_none() {
        return Err(AppError::NotFound);
    }
    require_open(loaded)?;
    let body = checked_body(body)?;
    let now = Utc::now().naive_utc();
    let id: i64 = diesel::insert_into(question_notes::table)
        .values((
            question_notes::assessment_id.eq(loaded.row.id),
            question_notes::question_key.eq(question_key),
            question_notes::author_id.eq(Some(author_id)),
            question_notes::body.eq(body),
            question_notes::shared.eq(false),
            question_notes::revision.eq(1),
            question_notes::created_at.eq(now),
        ))
        .returning(question_notes::id)
        .get_result(conn)?;
    audit::record(
        conn,
        actor,
        Entry::new("note.add", "question_note", id)
            .organisation(Some(loaded.row.organisation_id))
            .after(json!({"question": question_key})),
    )?;
    one(conn, loaded.row.id, id)
}

/// A note's text, trimmed: not empty and at most [`MAX_NOTE_CHARS`] (422 otherwise).
fn checked_body(body: &str) -> Result<&str, AppError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "note",
            "Write the note",
        )]));
    }
    if body.chars().count() > MAX_NOTE_CHARS {
        return Err(AppError::Validation(vec![FieldError::new(
            "note",
            format!("A note must be {MAX_NOTE_CHARS} characters or fewer"),
        )]));
    }
    Ok(body)
}

/// The note, if `who` wrote it and the assessment is open: only its author may correct or
/// remove a note (an approver decides only whether it is shared).
fn own_open_note(
    conn: &mut DbConnection,
    loaded: &Loaded,
    note_id: i64,
    who: i64,
) -> Result<Note, AppError> {
    let current = one(conn, loaded.row.id, note_id)?;
    if current.author_id != Some(who) {
        return Err(AppError::Forbidden);
    }
    require_open(loaded)?;
    Ok(current)
}

fn changed_meanwhile() -> AppError {
    AppError::Conflict(
        "This note changed while you were looking at it (it was edited, shared or stopped being shared). Nothing was changed: check the note as it is now and try again.".into(),
    )
}

/// Correct a note (its author, while the assessment is open), against the revision the
/// person saw. The note keeps its place and time and says when it was edited; a note
/// shared with the submission stays shared.
pub fn edit(
    conn: &mut DbConnection,
    actor: &Actor,
    who: i64,
    loaded: &Loaded,
    note_id: i64,
    body: &str,
    seen_revision: i64,
) -> Result<Note, AppError> {
    let current = own_open_note(conn, loaded, note_id, who)?;
    let body = checked_body(body)?;
    let changed = diesel::update(
        question_notes::table
            .filter(question_notes::id.eq(note_id))
            .filter(question_notes::assessment_id.eq(loaded.row.id))
            .filter(question_notes::revision.eq(seen_revision)),
    )
    .set((
        question_notes::body.eq(body),
        question_notes::revision.eq(seen_revision + 1),
        question_notes::edited_at.eq(Some(Utc::now().naive_utc())),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Err(changed_meanwhile());
    }
    audit::record(
        conn,
        actor,
        Entry::new("note.edit", "question_note", note_id)
            .organisation(Some(loaded.row.organisation_id))
            .before(json!({"question": current.question_key, "revision": current.revision}))
            .after(json!({"revision": seen_revision + 1})),
    )?;
    one(conn, loaded.row.id, note_id)
}

/// Remove a note (its author, while the assessment is open), against the revision the
/// person saw; the question's key, for going back to its thread.
pub fn delete(
    conn: &mut DbConnection,
    actor: &Actor,
    who: i64,
    loaded: &Loaded,
    note_id: i64,
    seen_revision: i64,
) -> Result<String, AppError> {
    let current = own_open_note(conn, loaded, note_id, who)?;
    let removed = diesel::delete(
        question_notes::table
            .filter(question_notes::id.eq(note_id))
            .filter(question_notes::assessment_id.eq(loaded.row.id))
            .filter(question_notes::revision.eq(seen_revision)),
    )
    .execute(conn)?;
    if removed == 0 {
        return Err(changed_meanwhile());
    }
    audit::record(
        conn,
        actor,
        Entry::new("note.delete", "question_note", note_id)
            .organisation(Some(loaded.row.organisation_id))
            .before(json!({"question": current.question_key, "revision": current.revision, "shared": current.shared})),
    )?;
    Ok(current.question_key)
}

fn one(conn: &mut DbConnection, assessment_id: i64, id: i64) -> Result<Note, AppError> {
    list(conn, assessment_id, None, Reach::All)?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or(AppError::NotFound)
}

fn require_open(loaded: &Loaded) -> Result<(), AppError> {
    if loaded.is_open_for_answers() {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "This assessment has been submitted, so its notes can no longer be changed.".into(),
        ))
    }
}

/// Share a note with the submission, or stop sharing it (approvers; the caller checks
/// `Approve`), against the revision the person saw.
pub fn set_shared(
    conn: &mut DbConnection,
    actor: &Actor,
    loaded: &Loaded,
    note_id: i64,
    shared: bool,
    seen_revision: i64,
) -> Result<Note, AppError> {
    let current = one(conn, loaded.row.id, note_id)?;
    require_open(loaded)?;
    let changed = diesel::update(
        question_notes::table
            .filter(question_notes::id.eq(note_id))
            .filter(question_notes::assessment_id.eq(loaded.row.id))
            .filter(question_notes::revision.eq(seen_revision)),
    )
    .set((
        question_notes::shared.eq(shared),
        question_notes::revision.eq(seen_revision + 1),
    ))
    .execute(conn)?;
    if changed == 0 {
        let now = one(conn, loaded.row.id, note_id)?;
        return Err(AppError::Conflict(format!(
            "Someone changed whether this note is shared while you were looking at it: it is now {}. Nothing was changed; check and try again.",
            if now.shared { "shared with the submission" } else { "not shared" }
        )));
    }
    audit::record(
        conn,
        actor,
        Entry::new("note.share", "question_note", note_id)
            .organisation(Some(loaded.row.organisation_id))
            .before(json!({"shared": current.shared, "revision": current.revision}))
            .after(json!({"shared": shared, "revision": seen_revision + 1})),
    )?;
    one(conn, loaded.row.id, note_id)
}

/// How many notes each question has that `reach` may see, for the domain pages' links.
pub fn counts(
    conn: &mut DbConnection,
    assessment_id: i64,
    reach: Reach,
) -> Result<std::collections::BTreeMap<String, usize>, AppError> {
    let mut out = std::collections::BTreeMap::new();
    for n in list(conn, assessment_id, None, reach)? {
        *out.entry(n.question_key).or_insert(0) += 1;
    }
    Ok(out)
}
