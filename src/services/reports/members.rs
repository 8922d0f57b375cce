//! Members: assessments with what the reports show of them. The one query (and its
//! `restrict!` of filters and scope) that the list, the figures and the exports read, so a row
//! on a page matches the row it came from in an export.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{assessments, cycles, organisations, score_sets, scores, submissions};
use crate::db::{like_escape, lower, DbConnection};
use crate::domain::scoring;
use crate::error::AppError;
use crate::services::questionnaires::{self, StoredVersion};

use super::filters::{Filters, Icb, SortKey};
use super::scope::Scope;
use super::status::{status_sql, ReportStatus};
use super::IN_CHUNK;

/// One assessment as the reports see it.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub assessment_id: i64,
    pub organisation_id: i64,
    pub ods_code: String,
    pub name: String,
    pub cycle_id: i64,
    pub cycle_label: String,
    pub setting: String,
    pub version_id: i64,
    pub status: String,
    pub report_status: ReportStatus,
    /// Snapshot taken when the cycle opened.
    pub icb_id: Option<i64>,
    pub region: Option<String>,
    pub deadline: NaiveDate,
    /// The current score set, when the assessment is submitted.
    pub score_set_id: Option<i64>,
    pub overall: Option<f64>,
    pub overall_band: Option<String>,
    pub submitted_at: Option<NaiveDateTime>,
    pub reference: Option<String>,
    pub late: bool,
}

type MemberColumns = (
    (
        i64,
        i64,
        String,
        String,
        i64,
        String,
        NaiveDate,
        String,
        i64,
        String,
    ),
    (
        Option<i64>,
        Option<String>,
        Option<NaiveDate>,
        Option<NaiveDateTime>,
        Option<i64>,
        Option<f64>,
        Option<String>,
    ),
    (Option<NaiveDateTime>, Option<String>, Option<bool>),
);

/// Adds the filters but the status, and the scope, to a boxed query that includes
/// `assessments`. (A macro because the queries it serves have different joins.)
macro_rules! restrict {
    ($query:expr, $filters:expr, $scope:expr) => {{
        let filters: &Filters = $filters;
        let scope: &Scope = $scope;
        let mut query = $query;
        if let Some(c) = &filters.cycle {
            query = query.filter(assessments::cycle_id.eq(c.id));
        }
        if let Some(s) = &filters.setting {
            query = query.filter(assessments::setting.eq(s.clone()));
        }
        if let Some(r) = &filters.region {
            query = query.filter(assessments::region.eq(r.clone()));
        }
        if let Some(i) = &filters.icb {
            query = query.filter(assessments::icb_id.eq(i.id));
        }
        if let Some(q) = &filters.q {
            // Name contains, or ODS code starts with, the text, ignoring case (ASCII case
            // only on SQLite, whose lower() folds nothing else).
            let q = like_escape(&q.to_lowercase());
            let named = diesel::alias!(organisations as named);
            query = query.filter(
                assessments::organisation_id.eq_any(
                    named.select(named.field(organisations::id)).filter(
                        lower(named.field(organisations::name))
                            .like(format!("%{q}%"))
                            .escape('\\')
                            .or(lower(named.field(organisations::ods_code))
                                .like(format!("{q}%"))
                                .escape('\\')),
                    ),
                ),
            );
        }
        match scope {
            Scope::All => {}
            Scope::Group {
                icb_id: Some(i),
                region: Some(r),
            } => {
                query = query.filter(
                    assessments::icb_id
                        .eq(*i)
                        .or(assessments::region.eq(r.clone())),
                );
            }
            Scope::Group {
                icb_id: Some(i),
                region: None,
            } => {
                query = query.filter(assessments::icb_id.eq(*i));
            }
            Scope::Group {
                icb_id: None,
                region: Some(r),
            } => {
                query = query.filter(assessments::region.eq(r.clone()));
            }
            Scope::Group {
                icb_id: None,
                region: None,
            } => {
                query = query.filter(assessments::id.lt(0));
            }
        }
        query
    }};
}
pub(super) use restrict;

/// Joins an assessment to its current score set, if any.
#[diesel::dsl::auto_type]
pub(super) fn current_score_set() -> _ {
    score_sets::assessment_id
        .eq(assessments::id)
        .and(score_sets::is_current.eq(true))
}

/// Joins a score set to the submission it scored.
#[diesel::dsl::auto_type]
pub(super) fn its_submission() -> _ {
    submissions::id
        .nullable()
        .eq(score_sets::submission_id.nullable())
}

/// Which members to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Submitted assessments with a current score set only.
    pub submitted_only: bool,
    /// Assessments with a larger id only (paging by id).
    pub after_id: Option<i64>,
    pub limit: Option<i64>,
    /// One organisation's assessments only.
    pub organisation_id: Option<i64>,
}

/// The list's ORDER BY for `key`: missing values last either way, ties by name then
/// assessment id, so pages are stable. Names compare lower-cased (ASCII case only on
/// SQLite). Scores and dates show only for submitted assessments, so they sort only then.
/// `icb_ranks` is [`icb_ranks_sql`] when sorting by ICB.
fn order_sql(key: SortKey, descending: bool, today: NaiveDate, icb_ranks: &str) -> String {
    const SUBMITTED: &str = "assessments.status = 'submitted' AND score_sets.id IS NOT NULL";
    let value = match key {
        SortKey::Name => "lower(organisations.name)".to_string(),
        SortKey::Code => "organisations.ods_code".to_string(),
        SortKey::Setting => "assessments.setting".to_string(),
        SortKey::Icb => icb_ranks.to_string(),
        SortKey::Region => "assessments.region".to_string(),
        SortKey::Status => status_sql(today),
        SortKey::Submitted => {
            format!("(CASE WHEN {SUBMITTED} THEN submissions.submitted_at END)")
        }
        SortKey::Overall => format!("(CASE WHEN {SUBMITTED} THEN score_sets.overall_score END)"),
    };
    let direction = if descending { "DESC" } else { "ASC" };
    match key {
        // Never null: no nulls-last term, so the list by name can read the organisations'
        // index on lower(name) in order and stop at the page's end.
        SortKey::Name => format!("{value} {direction}, assessments.id"),
        SortKey::Code | SortKey::Setting => {
            format!("{value} {direction}, lower(organisations.name), assessments.id")
        }
        _ => format!(
            "{value} IS NULL, {value} {direction}, lower(organisations.name), assessments.id"
        ),
    }
}

/// An assessment's ICB's place among the ICBs ordered by name, as SQL: `CASE
/// assessments.icb_id WHEN id THEN rank ... END` (ids and ranks are numbers, so nothing read
/// from the database is written into the statement as text). There are a few dozen ICBs; a
/// join or subquery per assessment instead costs hundreds of milliseconds at 30,000.
fn icb_ranks_sql(conn: &mut DbConnection) -> Result<String, AppError> {
    let mut icbs: Vec<(i64, String)> = organisations::table
        .filter(organisations::kind.eq("icb"))
        .select((organisations::id, organisations::name))
        .load(conn)?;
    icbs.iter_mut()
        .for_each(|(_, name)| *name = name.to_lowercase());
    icbs.sort_by(|a, b| a.1.cmp(&b.1));
    if icbs.is_empty() {
        return Ok("CAST(NULL AS BIGINT)".into());
    }
    let mut sql = String::from("(CASE assessments.icb_id");
    let mut rank = 0;
    for (i, (id, name)) in icbs.iter().enumerate() {
        if i > 0 && icbs[i - 1].1 != *name {
            rank += 1;
        }
        sql.push_str(&format!(" WHEN {id} THEN {rank}"));
    }
    sql.push_str(" END)");
    Ok(sql)
}

/// The members' joins: organisation, cycle, current score set and its submission, boxed.
macro_rules! members_joined {
    () => {
        assessments::table
            .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
            .inner_join(cycles::table)
            .left_join(score_sets::table.on(current_score_set()))
            .left_join(submissions::table.on(its_submission()))
            .into_boxed()
    };
}

/// The members' joins restricted to the filters (the reporting status included) and the
/// scope: what the list, its count and the exports share.
macro_rules! members_query {
    ($filters:expr, $scope:expr, $today:expr) => {{
        let filters: &Filters = $filters;
        let mut query = restrict!(members_joined!(), filters, $scope);
        if let Some(status) = filters.status {
            query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                "{} = {}",
                status_sql($today),
                status.rank()
            )));
        }
        query
    }};
}

/// How many members match the filters and the scope (for a list's "n of m" and its pages).
pub fn count_members(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
) -> Result<i64, AppError> {
    let today = Utc::now().date_naive();
    Ok(members_query!(filters, scope, today)
        .count()
        .get_result(conn)?)
}

/// Members matching the filters and the scope in assessment id order, with the largest id
/// read (for paging by id).
pub fn load_members(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    window: Window,
) -> Result<(Vec<Member>, Option<i64>), AppError> {
    load(
        conn,
        Some((filters, scope)),
        window,
        None,
        Utc::now().date_naive(),
    )
}

/// One page of the members matching the filters and the scope, sorted by `key`: `limit` of
/// them from `offset`.
///
/// In two steps: the page's assessment ids, sorted and cut with only the joins the order and
/// the filters need, then those members in full. Sorting the full rows read every member's
/// score set and submission before the sort could keep fifty of them: on SQLite, whose
/// planner started from the cycle either way, the first page by name took 76 ms at 30,000
/// organisations; its ids alone sort in 4 ms (BENCHMARKS.md, "SQLite's national view").
pub fn list_page(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    (key, descending): (SortKey, bool),
    offset: i64,
    limit: i64,
) -> Result<Vec<Member>, AppError> {
    let today = Utc::now().date_naive();
    let icb_ranks = match key {
        SortKey::Icb => icb_ranks_sql(conn)?,
        _ => String::new(),
    };
    let order =
        diesel::dsl::sql::<diesel::sql_types::Bool>(&order_sql(key, descending, today, &icb_ranks));
    // The reporting status and the scores' and dates' orders read the score set, its
    // submission and the cycle's deadline; every other order reads the assessment and its
    // organisation alone.
    let needs_scores = filters.status.is_some()
        || matches!(key, SortKey::Status | SortKey::Submitted | SortKey::Overall);
    let ids: Vec<i64> = if needs_scores {
        members_query!(filters, scope, today)
            .order(order)
            .offset(offset)
            .limit(limit)
            .select(assessments::id)
            .load(conn)?
    } else {
        let base = assessments::table
            .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
            .into_boxed();
        restrict!(base, filters, scope)
            .order(order)
            .offset(offset)
            .limit(limit)
            .select(assessments::id)
            .load(conn)?
    };
    let (mut members, _) = load(conn, None, Window::default(), Some(&ids), today)?;
    let place: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    members.sort_by_key(|m| place.get(&m.assessment_id).copied());
    Ok(members)
}

/// Members in the filters and the scope (when given) or of the given assessment ids, in id
/// order, with the largest id read; their reporting status as of `today`.
fn load(
    conn: &mut DbConnection,
    restricted: Option<(&Filters, &Scope)>,
    window: Window,
    ids: Option<&[i64]>,
    today: NaiveDate,
) -> Result<(Vec<Member>, Option<i64>), AppError> {
    let mut query = match restricted {
        Some((filters, scope)) => members_query!(filters, scope, today),
        None => members_joined!(),
    };
    if let Some(ids) = ids {
        query = query.filter(assessments::id.eq_any(ids.to_vec()));
    }
    if window.submitted_only {
        query = query
            .filter(assessments::status.eq("submitted"))
            .filter(score_sets::id.nullable().is_not_null());
    }
    if let Some(after) = window.after_id {
        query = query.filter(assessments::id.gt(after));
        if window.submitted_only {
            // The same bound on the joined score sets (each is its assessment's), so the
            // database starts their index there too instead of reading it from the start for
            // every page: measured 14 ms a page at 30,000 organisations before, growing with
            // the page's place in the export.
            query = query.filter(score_sets::assessment_id.nullable().gt(after));
        }
    }
    if let Some(org) = window.organisation_id {
        query = query.filter(assessments::organisation_id.eq(org));
    }
    if let Some(limit) = window.limit {
        query = query.limit(limit);
    }
    query = query.order(assessments::id.asc());
    let rows: Vec<MemberColumns> = query
        .select((
            (
                assessments::id,
                assessments::organisation_id,
                organisations::ods_code,
                organisations::name,
                assessments::cycle_id,
                cycles::label,
                cycles::deadline,
                assessments::setting,
                assessments::questionnaire_version_id,
                assessments::status,
            ),
            (
                assessments::icb_id,
                assessments::region,
                assessments::deadline_override,
                assessments::closed_at,
                score_sets::id.nullable(),
                score_sets::overall_score.nullable(),
                score_sets::overall_band.nullable(),
            ),
            (
                submissions::submitted_at.nullable(),
                submissions::reference.nullable(),
                submissions::late.nullable(),
            ),
        ))
        .load(conn)?;
    let last = rows.iter().map(|r| r.0 .0).max();
    let members = rows
        .into_iter()
        .map(|(a, b, c)| {
            let (
                id,
                org,
                ods_code,
                name,
                cycle_id,
                cycle_label,
                cycle_deadline,
                setting,
                version,
                status,
            ) = a;
            let (icb_id, region, deadline_override, closed_at, set_id, overall, overall_band) = b;
            let (submitted_at, reference, late) = c;
            let deadline = deadline_override.unwrap_or(cycle_deadline);
            let report_status =
                ReportStatus::of(&status, closed_at.is_some(), late, deadline, today);
            let submitted = status == "submitted" && set_id.is_some();
            Member {
                assessment_id: id,
                organisation_id: org,
                ods_code,
                name,
                cycle_id,
                cycle_label,
                setting,
                version_id: version,
                status,
                report_status,
                icb_id,
                region,
                deadline,
                score_set_id: set_id.filter(|_| submitted),
                overall: overall.filter(|_| submitted),
                overall_band: overall_band.filter(|_| submitted),
                submitted_at: submitted_at.filter(|_| submitted),
                reference: reference.filter(|_| submitted),
                late: late.unwrap_or(false) && submitted,
            }
        })
        .collect();
    Ok((members, last))
}

/// A stored domain score: `domain key, score, band, questions counted`.
pub(super) type StoredDomain = (String, Option<f64>, Option<String>, i32);

/// Current domain scores of the given score sets, by score set id.
pub(super) fn domain_scores_of_sets(
    conn: &mut DbConnection,
    set_ids: &[i64],
) -> Result<HashMap<i64, Vec<StoredDomain>>, AppError> {
    let mut out: HashMap<i64, Vec<StoredDomain>> = HashMap::new();
    for chunk in set_ids.chunks(IN_CHUNK) {
        let rows: Vec<(i64, StoredDomain)> = scores::table
            .filter(scores::score_set_id.eq_any(chunk))
            .filter(scores::level.eq("domain"))
            .select((
                scores::score_set_id,
                (
                    scores::item_key,
                    scores::score,
                    scores::band,
                    scores::counted,
                ),
            ))
            .load(conn)?;
        for (set, stored) in rows {
            out.entry(set).or_default().push(stored);
        }
    }
    Ok(out)
}

/// Stored reports and answer snapshots of score sets, by score set id.
pub(super) fn stored_sets(
    conn: &mut DbConnection,
    set_ids: &[i64],
) -> Result<HashMap<i64, (String, String)>, AppError> {
    let mut out = HashMap::new();
    for chunk in set_ids.chunks(IN_CHUNK) {
        let rows: Vec<(i64, String, String)> = score_sets::table
            .filter(score_sets::id.eq_any(chunk))
            .select((
                score_sets::id,
                score_sets::report,
                score_sets::answers_snapshot,
            ))
            .load(conn)?;
        out.extend(rows.into_iter().map(|(id, r, a)| (id, (r, a))));
    }
    Ok(out)
}

pub(super) fn parse_report(text: &str) -> Result<scoring::Assessment, AppError> {
    serde_json::from_str(text)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored score report unreadable: {e}")))
}

pub(super) fn parse_snapshot(text: &str) -> Result<BTreeMap<String, serde_json::Value>, AppError> {
    serde_json::from_str(text)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("answers snapshot unreadable: {e}")))
}

/// Questionnaire versions by id, loaded once each.
#[derive(Default, Clone)]
pub struct Versions(HashMap<i64, Arc<StoredVersion>>);

impl Versions {
    pub fn get(
        &mut self,
        conn: &mut DbConnection,
        id: i64,
    ) -> Result<Arc<StoredVersion>, AppError> {
        if let Some(v) = self.0.get(&id) {
            return Ok(v.clone());
        }
        let v = Arc::new(questionnaires::get_by_id(conn, id)?);
        self.0.insert(id, v.clone());
        Ok(v)
    }

    pub fn loaded(&self, id: i64) -> Option<&Arc<StoredVersion>> {
        self.0.get(&id)
    }
}

/// ICBs by id (for the ids given).
pub fn icbs_by_id(
    conn: &mut DbConnection,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, Icb>, AppError> {
    let ids: Vec<i64> = ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows: Vec<(i64, String, String)> = organisations::table
            .filter(organisations::id.eq_any(chunk))
            .select((
                organisations::id,
                organisations::ods_code,
                organisations::name,
            ))
            .load(conn)?;
        out.extend(
            rows.into_iter()
                .map(|(id, ods_code, name)| (id, Icb { id, ods_code, name })),
        );
    }
    Ok(out)
}
