//! Score counts: for each cycle, question set version, setting, region, ICB (the
//! assessment's snapshot), lateness, level and item, how many current domain and overall
//! scores of submitted assessments have each value (table `score_counts`, migration
//! `2026-12-04-000000_score_counts`).
//!
//! Why: the group figures ([`super::figures`]) need each group's values in order. Read from
//! `scores`, that is every score of every member, so the national view's cost grew with the
//! number of organisations (issue 21). Scores take few distinct values, so the counts hold a
//! bounded number of rows per group, and the figures read them instead whenever the filters
//! are columns of the counts (every filter but the name search).
//!
//! Exactness: the counts change only in the transactions that change what the figures count:
//! [`submitted`] adds an assessment's current scores when it is submitted, [`reopened`] takes
//! them away when it is reopened; the bulk seed writes score sets directly and calls
//! [`rebuild`] for each cycle it wrote. Each change is one `INSERT ... ON CONFLICT DO UPDATE`
//! adding to the stored count, atomic on both backends, with its rows in key order so two
//! submissions in the same groups lock them in the same order and cannot deadlock.
//! `tests/integration/national.rs` holds the figures equal to the figures worked out in
//! memory from every member, and the counts equal to a [`rebuild`] after parallel submissions
//! and reopenings on PostgreSQL.
//!
//! A hand edit of scores or submissions in the database bypasses all of this; `dma reports
//! recount` ([`recount_command`]) counts every cycle afresh and says how many counts it
//! corrected.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::db::{with_concrete_connection, Db, DbConnection};
use crate::error::AppError;

/// The columns of `score_counts` that identify a count, then the count.
const COLUMNS: &str = "cycle_id, questionnaire_version_id, setting, region, icb_id, late, \
                       level, item_key, score, how_many";
const KEY: &str = "cycle_id, questionnaire_version_id, setting, region, icb_id, late, level, \
                   item_key, score";

/// The counted rows, one per score: `SELECT <key columns> FROM ...`, the current domain and
/// overall scores of the score sets `which` selects with their assessment's groups, and one
/// row per score set at level `assessment` (item `''`, score 0), so the counts also say how
/// many submitted assessments each group has, late or not, whatever their scores.
fn counted(which: &str) -> String {
    let groups = "assessments.cycle_id AS cycle_id, \
                  score_sets.questionnaire_version_id AS questionnaire_version_id, \
                  assessments.setting AS setting, COALESCE(assessments.region, '') AS region, \
                  COALESCE(assessments.icb_id, 0) AS icb_id, submissions.late AS late";
    let joins = "JOIN assessments ON assessments.id = score_sets.assessment_id \
                 JOIN submissions ON submissions.id = score_sets.submission_id";
    format!(
        "SELECT {groups}, scores.level AS level, scores.item_key AS item_key, \
                scores.score AS score \
         FROM scores JOIN score_sets ON score_sets.id = scores.score_set_id {joins} \
         WHERE {which} AND score_sets.is_current \
           AND scores.level IN ('domain', 'overall') AND scores.score IS NOT NULL \
         UNION ALL \
         SELECT {groups}, 'assessment' AS level, '' AS item_key, \
                CAST(0 AS DOUBLE PRECISION) AS score \
         FROM score_sets {joins} \
         WHERE {which} AND score_sets.is_current"
    )
}

/// Add `sign` (1 or -1) to the counts of the current scores of one assessment.
fn change(conn: &mut DbConnection, assessment_id: i64, sign: i64) -> Result<(), AppError> {
    let sql = format!(
        "INSERT INTO score_counts ({COLUMNS}) \
         SELECT {KEY}, {sign} FROM ({}) AS counted WHERE true ORDER BY {KEY} \
         ON CONFLICT ({KEY}) DO UPDATE SET how_many = score_counts.how_many + excluded.how_many",
        counted(&format!("score_sets.assessment_id = {assessment_id}"))
    );
    with_concrete_connection!(conn, c => diesel::RunQueryDsl::execute(diesel::sql_query(&sql), c))?;
    Ok(())
}

/// An assessment was submitted: its current score set (just stored) now counts. Call in the
/// submitting transaction, after the score set is stored.
pub fn submitted(conn: &mut DbConnection, assessment_id: i64) -> Result<(), AppError> {
    change(conn, assessment_id, 1)
}

/// A submitted assessment was reopened: its current score set no longer counts (it stays
/// current until the next submission replaces it). Call in the reopening transaction.
pub fn reopened(conn: &mut DbConnection, assessment_id: i64) -> Result<(), AppError> {
    change(conn, assessment_id, -1)
}

/// Count one cycle's scores afresh from `scores` (the bulk seed, which writes score sets
/// directly, and the check of exactness). Returns the rows written.
pub fn rebuild(conn: &mut DbConnection, cycle_id: i64) -> Result<usize, AppError> {
    let delete = format!("DELETE FROM score_counts WHERE cycle_id = {cycle_id}");
    let insert = format!(
        "INSERT INTO score_counts ({COLUMNS}) \
         SELECT {KEY}, COUNT(*) FROM ({}) AS counted GROUP BY {KEY}",
        counted(&format!(
            "assessments.cycle_id = {cycle_id} AND assessments.status = 'submitted'"
        ))
    );
    with_concrete_connection!(conn, c => {
        diesel::RunQueryDsl::execute(diesel::sql_query(&delete), c)?;
        Ok(diesel::RunQueryDsl::execute(diesel::sql_query(&insert), c)?)
    })
}

/// One row of `score_counts`: the key columns, then the count.
pub type CountRow = (
    i64,
    i64,
    String,
    String,
    i64,
    bool,
    String,
    String,
    f64,
    i64,
);

/// Every non-zero count of a cycle, in key order: what [`rebuild`] would write. For the
/// check that the maintained counts are exact.
pub fn of_cycle(conn: &mut DbConnection, cycle_id: i64) -> Result<Vec<CountRow>, AppError> {
    use crate::db::schema::score_counts::dsl as c;
    use diesel::prelude::*;
    Ok(c::score_counts
        .filter(c::cycle_id.eq(cycle_id))
        .filter(c::how_many.ne(0))
        .order((
            c::questionnaire_version_id,
            c::setting,
            c::region,
            c::icb_id,
            c::late,
            c::level,
            c::item_key,
            c::score,
        ))
        .select(crate::db::schema::score_counts::all_columns)
        .load(conn)?)
}

/// What a recount of one cycle found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recount {
    pub cycle_id: i64,
    /// Non-zero counts after the recount.
    pub counts: usize,
    /// Counts that were wrong or missing, or stood for scores that no longer count.
    pub corrected: usize,
}

/// Count one cycle afresh from the scores in place of its maintained counts, and say how
/// many differed. Call in a write transaction: it first takes the write lock (on PostgreSQL
/// the counts' table lock: readers go on, submissions and reopenings wait for the commit; on
/// SQLite the database's, before reading, so a writer in another process is waited for
/// instead of failing the upgrade from reading to writing), so no change lands between the
/// read of the old counts and the write of the new ones.
pub fn recount(conn: &mut DbConnection, cycle_id: i64) -> Result<Recount, AppError> {
    let lock = match conn {
        DbConnection::Pg(_) => "LOCK TABLE score_counts IN EXCLUSIVE MODE",
        DbConnection::Sqlite(_) => "UPDATE score_counts SET how_many = how_many WHERE 0",
    };
    with_concrete_connection!(conn, c => diesel::connection::SimpleConnection::batch_execute(c, lock))?;
    // Keyed with the score's bits: a count is the same only when its value is the same.
    let keyed = |rows: Vec<CountRow>| -> BTreeMap<_, i64> {
        rows.into_iter()
            .map(|(c, v, s, r, i, late, level, item, score, n)| {
                ((c, v, s, r, i, late, level, item, score.to_bits()), n)
            })
            .collect()
    };
    let kept = keyed(of_cycle(conn, cycle_id)?);
    rebuild(conn, cycle_id)?;
    let fresh = keyed(of_cycle(conn, cycle_id)?);
    let corrected = fresh
        .iter()
        .filter(|(key, n)| kept.get(*key) != Some(*n))
        .count()
        + kept.keys().filter(|key| !fresh.contains_key(*key)).count();
    Ok(Recount {
        cycle_id,
        counts: fresh.len(),
        corrected,
    })
}

/// `dma reports recount`: every cycle recounted, each in a transaction of its own; the
/// results printed as JSON.
pub async fn recount_command(
    settings: &crate::config::Settings,
) -> anyhow::Result<std::process::ExitCode> {
    use crate::db::schema::cycles;
    use diesel::prelude::*;
    let db: Db = settings.open_database().await?;
    let ids: Vec<i64> = db
        .read(|conn| {
            Ok(cycles::table
                .order(cycles::id)
                .select(cycles::id)
                .load(conn)?)
        })
        .await?;
    let mut done = Vec::new();
    for id in ids {
        done.push(db.write(move |conn| recount(conn, id)).await?);
    }
    println!("{}", serde_json::to_string_pretty(&done)?);
    Ok(std::process::ExitCode::SUCCESS)
}
