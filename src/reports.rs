//! Reports: who may read what, the filters of the national and group views, the queries
//! behind them, and the group figures, worked out by [`crate::domain::stats`] so every page
//! and export states the same method. The pages (`web::report_pages`) only arrange what this
//! module returns.
//!
//! Decisions (also in docs/exports.md where they concern the exports):
//! - **What counts.** Only the *current* score set of a *submitted* assessment counts in any
//!   figure. A reopened assessment drops out until it is submitted again.
//! - **Group figures** are the plain mean of member organisations' stored scores for the same
//!   questionnaire version, with the member count, median and quartiles
//!   ([`stats::summarise`], [`stats::METHOD`]). Figures are never mixed across versions: a
//!   page shows one block per version. The database counts the distinct scores and returns
//!   only the values at the ranks the method reads ([`stats::ranks_read`]), so the national
//!   and group view, the organisation report's peers and year on year hold a few rows per
//!   group whatever the number of organisations.
//! - **Filters are SQL**, the text and status ones included, so lists page in the database.
//!   The text filter folds case for ASCII letters only on SQLite (its `lower()`).
//! - **Groups are those of the cycle**: an organisation counts in the ICB and region that
//!   were snapshotted on its assessment when the cycle opened (`assessments.icb_id`,
//!   `assessments.region`), so a trust that moved ICB counts in its old ICB in old cycles.
//! - **Who sees what** ([`Scope`]): auditors and administrators everything; a group viewer
//!   the assessments whose snapshot ICB is their ICB or whose snapshot region is their
//!   region, cycle by cycle; everyone else no group view. Organisation people read their own
//!   organisation's report only.
//! - **Reporting status** ([`ReportStatus`]): each assessment is in exactly one of not
//!   started, in progress (reopened included), submitted (on time) and late (submitted after
//!   its deadline, or not submitted and its deadline has passed), so the counts add up.
//! - **Small groups.** Organisation people see peer figures only for groups of at least
//!   [`MIN_DISCLOSED`] organisations, so a mean of two cannot reveal a neighbour's score.
//!   Auditors and group viewers see every group.
//! - **Like-for-like.** Where a domain is not comparable between two versions (format
//!   section 5), the year-on-year view can show a like-for-like figure instead: the domain
//!   score worked out over only the questions present in both versions with the same
//!   fingerprint (section 4 step 3 over that subset), from the stored workings of each
//!   submission ([`subset_score`]).
//! - **Not a league table.** Nothing here ranks organisations; lists sort by what the person
//!   chooses and show no rank numbers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auth::roles::{can, Action, Role};
use crate::auth::users::User;
use crate::db::schema::{
    assessments, cycle_versions, cycles, organisations, score_sets, scores, submissions,
};
use crate::db::{like_escape, lower, DbConnection};
use crate::domain::answers::Answer;
use crate::domain::comparability::{self, VersionDiff};
use crate::domain::questionnaire::{ChecklistLevel, Question, QuestionKind, Questionnaire, Scale};
use crate::domain::scoring::{self, QuestionContribution};
use crate::domain::stats::{self, GroupStats};
use crate::error::AppError;
use crate::questionnaires::{self, StoredVersion};

mod export;
pub use export::{
    next_rows, Cell, ExportCursor, ExportFormat, ExportKind, ExportWriter, Finished,
    ANSWERS_COLUMNS, SCORES_COLUMNS, XLSX_MAX_ROWS, XLSX_MAX_TEXT,
};

/// Organisation people see a peer group's figures only when it has at least this many
/// members with a score.
pub const MIN_DISCLOSED: usize = 5;

/// Assessments read per database round trip by the exports.
pub const SCORES_EXPORT_PAGE: i64 = 1_000;
/// Fewer per page for answers: each assessment gives a row per question (up to ~300).
pub const ANSWERS_EXPORT_PAGE: i64 = 200;

/// Ids per `IN (...)` list, well under SQLite's limit on bound parameters.
const IN_CHUNK: usize = 900;

// ---------------------------------------------------------------------------------------
// Status, scope and filters
// ---------------------------------------------------------------------------------------

/// Where an assessment stands for reporting; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    NotStarted,
    InProgress,
    Submitted,
    Late,
}

impl ReportStatus {
    pub const ALL: [ReportStatus; 4] = [
        ReportStatus::NotStarted,
        ReportStatus::InProgress,
        ReportStatus::Submitted,
        ReportStatus::Late,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::NotStarted => "not_started",
            ReportStatus::InProgress => "in_progress",
            ReportStatus::Submitted => "submitted",
            ReportStatus::Late => "late",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ReportStatus::NotStarted => "Not started",
            ReportStatus::InProgress => "In progress",
            ReportStatus::Submitted => "Submitted",
            ReportStatus::Late => "Late",
        }
    }

    /// The tag colour the pages use.
    pub fn colour(self) -> &'static str {
        match self {
            ReportStatus::NotStarted => "grey",
            ReportStatus::InProgress => "blue",
            ReportStatus::Submitted => "green",
            ReportStatus::Late => "red",
        }
    }

    pub fn parse(s: &str) -> Option<ReportStatus> {
        ReportStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The reporting status of an assessment with database `status`, whose current
    /// submission (if any) was `submitted_late`, due on `deadline`, seen on `today`.
    pub fn of(
        status: &str,
        submitted_late: Option<bool>,
        deadline: NaiveDate,
        today: NaiveDate,
    ) -> ReportStatus {
        if status == "submitted" {
            if submitted_late == Some(true) {
                ReportStatus::Late
            } else {
                ReportStatus::Submitted
            }
        } else if today > deadline {
            ReportStatus::Late
        } else if status == "not_started" {
            ReportStatus::NotStarted
        } else {
            ReportStatus::InProgress
        }
    }

    /// Whether the assessment's current scores count in figures.
    pub fn is_submitted(self) -> bool {
        matches!(self, ReportStatus::Submitted | ReportStatus::Late)
    }

    /// The status's place in the list's order, as [`status_sql`] computes it.
    fn rank(self) -> i32 {
        match self {
            ReportStatus::NotStarted => 0,
            ReportStatus::InProgress => 1,
            ReportStatus::Submitted => 2,
            ReportStatus::Late => 3,
        }
    }
}

/// [`ReportStatus::of`] in SQL, as the status's [`ReportStatus::rank`], for queries that join
/// `cycles` and the current score set's `submissions` row; so the list can be filtered,
/// sorted and paged by the database. (`today` is a date the server made, not input, so it is
/// written into the statement; both backends compare `'YYYY-MM-DD'` with a date column.)
/// A test holds the two to the same answer for every seeded assessment.
fn status_sql(today: NaiveDate) -> String {
    format!(
        "(CASE WHEN assessments.status = 'submitted' \
           THEN (CASE WHEN submissions.late THEN 3 ELSE 2 END) \
         WHEN COALESCE(assessments.deadline_override, cycles.deadline) < '{}' THEN 3 \
         WHEN assessments.status = 'not_started' THEN 0 ELSE 1 END)",
        today.format("%Y-%m-%d")
    )
}

/// Which assessments a person may see in group views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Auditors and administrators.
    All,
    /// A group viewer: assessments whose snapshot ICB is `icb_id` or whose snapshot region is
    /// `region` (at least one is set).
    Group {
        icb_id: Option<i64>,
        region: Option<String>,
    },
}

impl Scope {
    /// The group views a person may read, or `None` when they may read none.
    pub fn of(user: &User) -> Option<Scope> {
        if !user.active {
            return None;
        }
        if can(user.subject(), Action::ReadAllResults) {
            return Some(Scope::All);
        }
        if user.role() == Role::GroupViewer {
            let region = user.group_region.clone().filter(|r| !r.trim().is_empty());
            if user.group_organisation_id.is_some() || region.is_some() {
                return Some(Scope::Group {
                    icb_id: user.group_organisation_id,
                    region,
                });
            }
        }
        None
    }

    /// Whether an assessment with this snapshot ICB and region is in scope.
    pub fn includes(&self, icb_id: Option<i64>, region: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Group {
                icb_id: group_icb,
                region: group_region,
            } => {
                (group_icb.is_some() && *group_icb == icb_id)
                    || (group_region.is_some() && group_region.as_deref() == region)
            }
        }
    }
}

/// Filters as typed in the address; every field may be empty.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawFilters {
    #[serde(default)]
    pub cycle: String,
    #[serde(default)]
    pub setting: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub icb: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: String,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub comparable: String,
}

/// An ICB as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Icb {
    pub id: i64,
    pub ods_code: String,
    pub name: String,
}

/// A cycle as the reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleRef {
    pub id: i64,
    pub label: String,
    pub opens_on: NaiveDate,
}

/// Checked filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub cycle: Option<CycleRef>,
    pub setting: Option<String>,
    pub region: Option<String>,
    pub icb: Option<Icb>,
    pub status: Option<ReportStatus>,
    pub q: Option<String>,
}

impl Filters {
    /// The filters as query-string pairs, for links that keep them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(c) = &self.cycle {
            out.push(("cycle", c.id.to_string()));
        }
        if let Some(s) = &self.setting {
            out.push(("setting", s.clone()));
        }
        if let Some(r) = &self.region {
            out.push(("region", r.clone()));
        }
        if let Some(i) = &self.icb {
            out.push(("icb", i.ods_code.clone()));
        }
        if let Some(s) = self.status {
            out.push(("status", s.as_str().to_string()));
        }
        if let Some(q) = &self.q {
            out.push(("q", q.clone()));
        }
        out
    }
}

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Check the filters against what exists, naming every problem in one plain message (the
/// pages show it on a 400 page).
pub fn resolve_filters(conn: &mut DbConnection, raw: &RawFilters) -> Result<Filters, AppError> {
    let mut problems: Vec<String> = Vec::new();
    let mut filters = Filters::default();

    let cycle = raw.cycle.trim();
    if !cycle.is_empty() {
        let found: Option<(i64, String, NaiveDate)> = match cycle.parse::<i64>() {
            Ok(id) => cycles::table
                .find(id)
                .select((cycles::id, cycles::label, cycles::opens_on))
                .first(conn)
                .optional()?,
            Err(_) => cycles::table
                .filter(cycles::label.eq(cycle))
                .select((cycles::id, cycles::label, cycles::opens_on))
                .first(conn)
                .optional()?,
        };
        match found {
            Some((id, label, opens_on)) => {
                filters.cycle = Some(CycleRef {
                    id,
                    label,
                    opens_on,
                })
            }
            None => problems.push(format!(
                "There is no cycle \"{}\": choose a cycle from the list, or give its label, like 2025/26.",
                shorten(cycle)
            )),
        }
    }

    let setting = raw.setting.trim();
    if !setting.is_empty() {
        let known: i64 = if is_slug(setting) {
            cycle_versions::table
                .filter(cycle_versions::setting.eq(setting))
                .count()
                .get_result(conn)?
        } else {
            0
        };
        if known > 0 {
            filters.setting = Some(setting.to_string());
        } else {
            problems.push(format!(
                "There is no care setting \"{}\" in any cycle: choose one from the list, like acute.",
                shorten(setting)
            ));
        }
    }

    let region = raw.region.trim();
    if !region.is_empty() {
        let known: i64 = if region.chars().count() <= 200 {
            assessments::table
                .filter(assessments::region.eq(region))
                .count()
                .get_result(conn)?
        } else {
            0
        };
        if known > 0 {
            filters.region = Some(region.to_string());
        } else {
            problems.push(format!(
                "There is no region \"{}\" in any cycle: choose one from the list.",
                shorten(region)
            ));
        }
    }

    let icb = raw.icb.trim();
    if !icb.is_empty() {
        let code = icb.to_uppercase();
        let found: Option<(i64, String, String)> = if code.len() <= 20 {
            organisations::table
                .filter(organisations::ods_code.eq(&code))
                .filter(organisations::kind.eq("icb"))
                .select((
                    organisations::id,
                    organisations::ods_code,
                    organisations::name,
                ))
                .first(conn)
                .optional()?
        } else {
            None
        };
        match found {
            Some((id, ods_code, name)) => filters.icb = Some(Icb { id, ods_code, name }),
            None => problems.push(format!(
                "There is no ICB with the ODS code \"{}\": choose one from the list.",
                shorten(icb)
            )),
        }
    }

    let status = raw.status.trim();
    if !status.is_empty() {
        match ReportStatus::parse(status) {
            Some(s) => filters.status = Some(s),
            None => problems.push(format!(
                "\"{}\" is not a status: use not_started, in_progress, submitted or late.",
                shorten(status)
            )),
        }
    }

    let q = raw.q.trim();
    if q.chars().count() > 200 {
        problems.push("Search for at most 200 characters of a name or ODS code.".into());
    } else if !q.is_empty() {
        filters.q = Some(q.to_string());
    }

    if problems.is_empty() {
        Ok(filters)
    } else {
        Err(AppError::BadRequest(problems.join(" ")))
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// At most 40 characters of what someone typed, for repeating it in a message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push_str("...");
    }
    out
}

/// The page number asked for (from 1); anything else is a 400.
pub fn parse_page(raw: &str) -> Result<i64, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(1);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|p| (1..=1_000_000).contains(p))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "\"{}\" is not a page number: use a whole number from 1.",
                shorten(raw)
            ))
        })
}

/// The `comparable` toggle: empty, `0` or `1`.
pub fn parse_comparable(raw: &str) -> Result<bool, AppError> {
    match raw.trim() {
        "" | "0" => Ok(false),
        "1" => Ok(true),
        other => Err(AppError::BadRequest(format!(
            "\"{}\" is not a value for comparable: use 1 to show comparable figures only, or 0.",
            shorten(other)
        ))),
    }
}

/// How the organisation list is ordered. None of these is a rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Code,
    Setting,
    Icb,
    Region,
    Status,
    Submitted,
    Overall,
}

impl SortKey {
    pub const ALL: [SortKey; 8] = [
        SortKey::Name,
        SortKey::Code,
        SortKey::Setting,
        SortKey::Icb,
        SortKey::Region,
        SortKey::Status,
        SortKey::Submitted,
        SortKey::Overall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Code => "code",
            SortKey::Setting => "setting",
            SortKey::Icb => "icb",
            SortKey::Region => "region",
            SortKey::Status => "status",
            SortKey::Submitted => "submitted",
            SortKey::Overall => "overall",
        }
    }
}

/// `sort=KEY` or `sort=-KEY` (descending); empty is by name.
pub fn parse_sort(raw: &str) -> Result<(SortKey, bool), AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok((SortKey::Name, false));
    }
    let (descending, key) = match raw.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, raw),
    };
    SortKey::ALL
        .into_iter()
        .find(|k| k.as_str() == key)
        .map(|k| (k, descending))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "\"{}\" is not a way to sort: use name, code, setting, icb, region, status, submitted or overall, with a leading - for descending.",
                shorten(raw)
            ))
        })
}

/// How group figures are broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Setting,
    Region,
    Icb,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Setting => "setting",
            GroupBy::Region => "region",
            GroupBy::Icb => "icb",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            GroupBy::Setting => "care setting",
            GroupBy::Region => "region",
            GroupBy::Icb => "ICB",
        }
    }
}

pub fn parse_group_by(raw: &str) -> Result<Option<GroupBy>, AppError> {
    match raw.trim() {
        "" => Ok(None),
        "setting" => Ok(Some(GroupBy::Setting)),
        "region" => Ok(Some(GroupBy::Region)),
        "icb" => Ok(Some(GroupBy::Icb)),
        other => Err(AppError::BadRequest(format!(
            "\"{}\" is not a way to group: use setting, region or icb.",
            shorten(other)
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Members: assessments with what the reports show of them
// ---------------------------------------------------------------------------------------

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

/// Joins an assessment to its current score set, if any.
#[diesel::dsl::auto_type]
fn current_score_set() -> _ {
    score_sets::assessment_id
        .eq(assessments::id)
        .and(score_sets::is_current.eq(true))
}

/// Joins a score set to the submission it scored.
#[diesel::dsl::auto_type]
fn its_submission() -> _ {
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
    /// The list's order (by assessment id when `None`), and how many to skip in it.
    pub order: Option<(SortKey, bool)>,
    pub offset: Option<i64>,
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
    format!("{value} IS NULL, {value} {direction}, lower(organisations.name), assessments.id")
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

/// Members matching the filters and the scope, in the window's order, with the largest id
/// read when in id order (for paging by id).
pub fn load_members(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    window: Window,
) -> Result<(Vec<Member>, Option<i64>), AppError> {
    let today = Utc::now().date_naive();
    let base = assessments::table
        .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
        .inner_join(cycles::table)
        .left_join(score_sets::table.on(current_score_set()))
        .left_join(submissions::table.on(its_submission()))
        .into_boxed();
    let mut query = restrict!(base, filters, scope);
    if let Some(status) = filters.status {
        query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "{} = {}",
            status_sql(today),
            status.rank()
        )));
    }
    if window.submitted_only {
        query = query
            .filter(assessments::status.eq("submitted"))
            .filter(score_sets::id.nullable().is_not_null());
    }
    if let Some(after) = window.after_id {
        query = query.filter(assessments::id.gt(after));
    }
    if let Some(org) = window.organisation_id {
        query = query.filter(assessments::organisation_id.eq(org));
    }
    if let Some(limit) = window.limit {
        query = query.limit(limit);
    }
    if let Some(offset) = window.offset {
        query = query.offset(offset);
    }
    query = match window.order {
        None => query.order(assessments::id.asc()),
        Some((key, descending)) => {
            let icb_ranks = match key {
                SortKey::Icb => icb_ranks_sql(conn)?,
                _ => String::new(),
            };
            query.order(diesel::dsl::sql::<diesel::sql_types::Bool>(&order_sql(
                key, descending, today, &icb_ranks,
            )))
        }
    };
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
            let (icb_id, region, deadline_override, set_id, overall, overall_band) = b;
            let (submitted_at, reference, late) = c;
            let deadline = deadline_override.unwrap_or(cycle_deadline);
            let report_status = ReportStatus::of(&status, late, deadline, today);
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
type StoredDomain = (String, Option<f64>, Option<String>, i32);

/// Current domain scores of the given score sets, by score set id.
fn domain_scores_of_sets(
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
fn stored_sets(
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

fn parse_report(text: &str) -> Result<scoring::Assessment, AppError> {
    serde_json::from_str(text)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored score report unreadable: {e}")))
}

fn parse_snapshot(text: &str) -> Result<BTreeMap<String, serde_json::Value>, AppError> {
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

// ---------------------------------------------------------------------------------------
// Group figures (pure)
// ---------------------------------------------------------------------------------------

/// A domain score over a subset of its questions: format section 4 step 3,
/// `scale.min + (scale.max - scale.min) * sum(w * n) / sum(w)`, over the contributions that
/// counted and whose key is in `keys`, in document order, clamped to the scale like
/// [`scoring::score`]; `None` when none of them counted.
pub fn subset_score(
    scale: Scale,
    contributions: &[QuestionContribution],
    keys: &BTreeSet<String>,
) -> Option<f64> {
    let mut weighted = 0.0;
    let mut weights = 0.0;
    for c in contributions {
        if !c.counted || !keys.contains(&c.key) {
            continue;
        }
        let n = c.normalised?;
        weighted += c.weight * n;
        weights += c.weight;
    }
    if weights <= 0.0 {
        return None;
    }
    let lo = scale.min.min(scale.max);
    let hi = scale.max.max(scale.min);
    Some((scale.min + (scale.max - scale.min) * weighted / weights).clamp(lo, hi))
}

/// The questions of domain `domain` that score the same way in `before` and `after` (same
/// key in that domain of both, same fingerprint), in `after`'s order; empty when the scale
/// changed, as then no score is comparable.
pub fn comparable_questions(
    before: &Questionnaire,
    after: &Questionnaire,
    domain: &str,
) -> BTreeSet<String> {
    if before.scale != after.scale {
        return BTreeSet::new();
    }
    let (Some(a), Some(b)) = (
        before.domains.iter().find(|d| d.key == domain),
        after.domains.iter().find(|d| d.key == domain),
    ) else {
        return BTreeSet::new();
    };
    b.questions
        .iter()
        .filter(|qb| {
            a.questions.iter().any(|qa| {
                qa.key == qb.key && comparability::fingerprint(qa) == comparability::fingerprint(qb)
            })
        })
        .map(|q| q.key.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The national and group view
// ---------------------------------------------------------------------------------------

/// Figures for one questionnaire version within the filtered organisations.
#[derive(Debug, Clone)]
pub struct VersionBlock {
    pub version: Arc<StoredVersion>,
    /// Members of this version (any status) and those whose scores count.
    pub members: usize,
    pub submitted: usize,
    /// Per domain, in document order: the summary of members' scores (None when none has
    /// a score).
    pub domains: Vec<(String, String, Option<GroupStats>)>,
    pub overall: Option<GroupStats>,
    /// When grouped: per domain key, per group label, the summary.
    pub breakdown: BTreeMap<String, BTreeMap<String, GroupStats>>,
}

/// Everything the national or group view shows but the list ([`list`]).
#[derive(Debug, Clone)]
pub struct National {
    /// Counts by reporting status (the status filter aside).
    pub counts: BTreeMap<ReportStatus, usize>,
    /// Members in every filter: the length of the list.
    pub listed: usize,
    pub blocks: Vec<VersionBlock>,
}

/// Which group a figure is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Every member (no breakdown).
    All,
    /// A setting or region (`None`: the assessment had no region).
    Named(Option<String>),
    Icb(Option<i64>),
}

/// What a group figure describes: version id, level (`domain` or `overall`), item key, group.
type FigureKey = (i64, String, String, Group);

/// `SELECT * FROM (<query> GROUP BY <grouping>) AS ranked WHERE <keep>`: the scores counted
/// per distinct value with running counts, of which only the rows holding a rank that
/// [`stats::ranks_read`] names are kept. (Diesel's own `group_by` cannot take the breakdown's
/// varying column, hence the clause written here; the query's select list holds only grouped
/// columns, aggregates and constants.)
struct OrderStatistics<Q> {
    query: Q,
    grouping: String,
    keep: String,
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for OrderStatistics<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> diesel::query_builder::QueryId for OrderStatistics<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB, Q> diesel::query_builder::QueryFragment<DB> for OrderStatistics<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("SELECT * FROM (");
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" GROUP BY ");
        out.push_sql(&self.grouping);
        out.push_sql(") AS ranked WHERE ");
        out.push_sql(&self.keep);
        Ok(())
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for OrderStatistics<Q> {}

/// Whether the run of `how_many` equal values ending (exclusive) at running count `through`
/// holds one of the ranks [`stats::ranks_read`] names for `count` values, as SQL in integer
/// arithmetic on both backends.
fn holds_a_rank_read(through: &str, how_many: &str, count: &str) -> String {
    let last = format!("({count} - 1)");
    [
        "0".to_string(),
        last.clone(),
        format!("{last} / 4"),
        format!("{last} / 4 + 1"),
        format!("{last} / 2"),
        format!("{last} / 2 + 1"),
        format!("3 * {last} / 4"),
        format!("3 * {last} / 4 + 1"),
    ]
    .iter()
    .map(|rank| format!("({through} - {how_many} <= {rank} AND {rank} < {through})"))
    .collect::<Vec<_>>()
    .join(" OR ")
}

/// `version id, level, item key, group name, group ICB, score, how many have it`, then the
/// running count, count and sum in the whole group and in the breakdown group.
type Ranked = (
    i64,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<f64>,
    i64,
    (i64, i64, f64),
    (i64, i64, f64),
);

/// Order statistics being gathered for one group: count, sum, values by rank.
type Gathered = (usize, f64, BTreeMap<usize, f64>);

/// The summary of the current domain and overall scores of the submitted assessments in the
/// filters and the scope, per version and item: for every member ([`Group::All`]) and, with
/// `by`, per group too.
///
/// The database counts each distinct score (scores take few distinct values: 892 for the
/// 256,000 domain and overall scores of a cycle of 28,500 submissions), keeps running counts
/// in score order, and returns only the values at the ranks the method reads, with each
/// group's count and sum; so neither memory nor transfer grows with the number of
/// organisations, and the sort is of distinct values, not of every score (measured: 90 ms
/// against 270 ms for ranking every score). The sum is of value times count, so the mean
/// can differ from an ascending sum in the last bits.
fn group_figures(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    by: Option<GroupBy>,
) -> Result<BTreeMap<FigureKey, GroupStats>, AppError> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Double, Nullable, Text};
    if matches!(
        filters.status,
        Some(ReportStatus::NotStarted | ReportStatus::InProgress)
    ) {
        return Ok(BTreeMap::new());
    }
    let (named, icb) = match by {
        None => ("CAST(NULL AS TEXT)", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Setting) => ("assessments.setting", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Region) => ("assessments.region", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Icb) => ("CAST(NULL AS TEXT)", "assessments.icb_id"),
    };
    let whole = "score_sets.questionnaire_version_id, scores.level, scores.item_key";
    let group = match by {
        None => whole.to_string(),
        Some(GroupBy::Icb) => format!("{whole}, {icb}"),
        Some(_) => format!("{whole}, {named}"),
    };
    // Running count, count and sum over a partition, as the select list's three columns.
    let running = |partition: &str, suffix: &str| {
        (
            format!(
                "CAST(SUM(COUNT(*)) OVER (PARTITION BY {partition} ORDER BY scores.score \
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS through{suffix}"
            ),
            format!("CAST(SUM(COUNT(*)) OVER (PARTITION BY {partition}) AS BIGINT) AS n{suffix}"),
            format!(
                "SUM(scores.score * COUNT(*)) OVER (PARTITION BY {partition}) AS total{suffix}"
            ),
        )
    };
    let in_whole = running(whole, "");
    let in_group = running(&group, "_group");
    let base = scores::table
        .inner_join(score_sets::table.inner_join(assessments::table))
        .left_join(submissions::table.on(its_submission()))
        .filter(scores::level.eq_any(["domain", "overall"]))
        .filter(scores::score.is_not_null())
        .filter(score_sets::is_current.eq(true))
        .filter(assessments::status.eq("submitted"))
        .into_boxed();
    let mut query = restrict!(base, filters, scope);
    // The status filter, for submitted assessments (ReportStatus::of).
    query = match filters.status {
        Some(ReportStatus::Late) => query.filter(submissions::late.nullable().eq(true)),
        Some(ReportStatus::Submitted) => query.filter(
            submissions::late
                .nullable()
                .is_null()
                .or(submissions::late.nullable().eq(false)),
        ),
        _ => query,
    };
    let counted = query.select((
        score_sets::questionnaire_version_id,
        scores::level,
        scores::item_key,
        sql::<Nullable<Text>>(&format!("{named} AS group_name")),
        sql::<Nullable<BigInt>>(&format!("{icb} AS group_icb")),
        scores::score,
        sql::<BigInt>("COUNT(*) AS how_many"),
        (
            sql::<BigInt>(&in_whole.0),
            sql::<BigInt>(&in_whole.1),
            sql::<Double>(&in_whole.2),
        ),
        (
            sql::<BigInt>(&in_group.0),
            sql::<BigInt>(&in_group.1),
            sql::<Double>(&in_group.2),
        ),
    ));
    let mut keep = holds_a_rank_read("through", "how_many", "n");
    if by.is_some() {
        keep = format!(
            "{keep} OR {}",
            holds_a_rank_read("through_group", "how_many", "n_group")
        );
    }
    let rows: Vec<Ranked> = OrderStatistics {
        query: counted,
        grouping: format!("{group}, scores.score"),
        keep,
    }
    .load(conn)?;

    let mut picked: BTreeMap<FigureKey, Gathered> = BTreeMap::new();
    let mut gather =
        |key: FigureKey, score: f64, how_many: i64, (through, count, sum): (i64, i64, f64)| {
            let (Ok(through), Ok(how_many), Ok(count)) = (
                usize::try_from(through),
                usize::try_from(how_many),
                usize::try_from(count),
            ) else {
                return;
            };
            let first = through.saturating_sub(how_many);
            for rank in stats::ranks_read(count) {
                if (first..through).contains(&rank) {
                    picked
                        .entry(key.clone())
                        .or_insert_with(|| (count, sum, BTreeMap::new()))
                        .2
                        .insert(rank, score);
                }
            }
        };
    for (version, level, key, named, icb, score, how_many, in_whole, in_group) in rows {
        let Some(score) = score else {
            continue;
        };
        if let Some(by) = by {
            let group = match by {
                GroupBy::Icb => Group::Icb(icb),
                _ => Group::Named(named),
            };
            gather(
                (version, level.clone(), key.clone(), group),
                score,
                how_many,
                in_group,
            );
        }
        gather((version, level, key, Group::All), score, how_many, in_whole);
    }
    Ok(picked
        .into_iter()
        .filter_map(|(k, (count, sum, at))| {
            Some((
                k,
                stats::from_order_statistics(count, sum, |i| at.get(&i).copied())?,
            ))
        })
        .collect())
}

/// `version id, status, submitted late, deadline override, cycle deadline, assessments, with
/// a current score set`.
type StatusGroup = (
    i64,
    String,
    Option<bool>,
    Option<NaiveDate>,
    NaiveDate,
    i64,
    i64,
);

diesel::allow_columns_to_appear_in_same_group_by_clause!(
    assessments::questionnaire_version_id,
    assessments::status,
    assessments::deadline_override,
    submissions::late,
    cycles::deadline,
);

/// Assessments in the filters (the status aside) and the scope, counted by what decides
/// their reporting status.
fn status_groups(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
) -> Result<Vec<StatusGroup>, AppError> {
    let filters = Filters {
        status: None,
        ..filters.clone()
    };
    let base = assessments::table
        .inner_join(cycles::table)
        .left_join(score_sets::table.on(current_score_set()))
        .left_join(submissions::table.on(its_submission()))
        .group_by((
            assessments::questionnaire_version_id,
            assessments::status,
            submissions::late,
            assessments::deadline_override,
            cycles::deadline,
        ))
        .select((
            assessments::questionnaire_version_id,
            assessments::status,
            submissions::late.nullable(),
            assessments::deadline_override,
            cycles::deadline,
            diesel::dsl::count_star(),
            diesel::dsl::count(score_sets::id.nullable()),
        ))
        .into_boxed();
    Ok(restrict!(base, &filters, scope).load(conn)?)
}

/// A group's label in a breakdown.
fn group_label(group: &Group, icbs: &HashMap<i64, Icb>) -> String {
    match group {
        Group::All => "All".into(),
        Group::Named(Some(name)) => name.clone(),
        Group::Named(None) => "(no region)".into(),
        Group::Icb(icb) => icb.and_then(|i| icbs.get(&i)).map_or_else(
            || "(no ICB)".into(),
            |i| format!("{} ({})", i.name, i.ods_code),
        ),
    }
}

/// The national or group view's figures for `filters` within `scope`.
pub fn national(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    by: Option<GroupBy>,
) -> Result<National, AppError> {
    let today = Utc::now().date_naive();
    let mut counts: BTreeMap<ReportStatus, usize> =
        ReportStatus::ALL.into_iter().map(|s| (s, 0)).collect();
    // Per version: members in every filter, and those whose scores count.
    let mut of_version: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    for (version, status, late, deadline_override, deadline, n, scored) in
        status_groups(conn, filters, scope)?
    {
        let (n, scored) = (
            usize::try_from(n).unwrap_or(0),
            usize::try_from(scored).unwrap_or(0),
        );
        let report_status =
            ReportStatus::of(&status, late, deadline_override.unwrap_or(deadline), today);
        *counts.entry(report_status).or_default() += n;
        if filters.status.is_none_or(|s| s == report_status) {
            let counted = of_version.entry(version).or_default();
            counted.0 += n;
            if status == "submitted" {
                counted.1 += scored;
            }
        }
    }
    let figures = group_figures(conn, filters, scope, by)?;
    let icbs = icbs_by_id(
        conn,
        figures.keys().filter_map(|(_, _, _, g)| match g {
            Group::Icb(i) => *i,
            _ => None,
        }),
    )?;
    let figure = |version: i64, level: &str, key: &str| {
        figures
            .get(&(version, level.to_string(), key.to_string(), Group::All))
            .cloned()
    };

    let mut versions = Versions::default();
    let mut blocks = Vec::new();
    for (&vid, &(members, submitted)) in &of_version {
        let version = versions.get(conn, vid)?;
        let domains = version
            .questionnaire
            .domains
            .iter()
            .map(|d| {
                (
                    d.key.clone(),
                    d.title.clone(),
                    figure(vid, "domain", &d.key),
                )
            })
            .collect();
        let mut breakdown: BTreeMap<String, BTreeMap<String, GroupStats>> = BTreeMap::new();
        for ((v, level, key, group), s) in &figures {
            if *v == vid && level == "domain" && *group != Group::All {
                breakdown
                    .entry(key.clone())
                    .or_default()
                    .insert(group_label(group, &icbs), s.clone());
            }
        }
        blocks.push(VersionBlock {
            members,
            submitted,
            overall: figure(vid, "overall", "overall"),
            version,
            domains,
            breakdown,
        });
    }
    Ok(National {
        counts,
        listed: of_version.values().map(|(members, _)| members).sum(),
        blocks,
    })
}

/// One page of the national or group view's list ([`National::listed`] says how long the
/// list is).
#[derive(Debug, Clone)]
pub struct Listing {
    pub members: Vec<Member>,
    /// The ICBs the page's members were in.
    pub icbs: HashMap<i64, Icb>,
}

/// The members in the filters and the scope, sorted by `key`, `limit` of them from `offset`.
pub fn list(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    (key, descending): (SortKey, bool),
    offset: i64,
    limit: i64,
) -> Result<Listing, AppError> {
    let (members, _) = load_members(
        conn,
        filters,
        scope,
        Window {
            order: Some((key, descending)),
            offset: Some(offset),
            limit: Some(limit),
            ..Window::default()
        },
    )?;
    let icbs = icbs_by_id(conn, members.iter().filter_map(|m| m.icb_id))?;
    Ok(Listing { members, icbs })
}

/// What the filter lists offer within a scope: cycles (newest first), settings, regions and
/// ICBs seen in assessments.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub cycles: Vec<CycleRef>,
    pub settings: Vec<String>,
    pub regions: Vec<String>,
    pub icbs: Vec<Icb>,
}

pub fn options(conn: &mut DbConnection, scope: &Scope) -> Result<Options, AppError> {
    let cycles: Vec<(i64, String, NaiveDate)> = cycles::table
        .order(cycles::opens_on.desc())
        .select((cycles::id, cycles::label, cycles::opens_on))
        .load(conn)?;
    let settings: Vec<String> = cycle_versions::table
        .select(cycle_versions::setting)
        .distinct()
        .order(cycle_versions::setting.asc())
        .load(conn)?;
    // Regions and ICBs in one scan: an ICB is in one region, so the pairs are few.
    let seen: Vec<(Option<String>, Option<i64>)> = restrict!(
        assessments::table
            .select((assessments::region, assessments::icb_id))
            .distinct()
            .into_boxed(),
        &Filters::default(),
        scope
    )
    .load(conn)?;
    let regions: BTreeSet<String> = seen.iter().filter_map(|(r, _)| r.clone()).collect();
    let mut icbs: Vec<Icb> = icbs_by_id(conn, seen.iter().filter_map(|(_, i)| *i))?
        .into_values()
        .collect();
    icbs.sort_by(|a, b| a.name.cmp(&b.name));
    let regions: Vec<String> = regions.into_iter().collect();
    Ok(Options {
        cycles: cycles
            .into_iter()
            .map(|(id, label, opens_on)| CycleRef {
                id,
                label,
                opens_on,
            })
            .collect(),
        settings,
        regions,
        icbs,
    })
}

/// [`resolve_filters`] for the national and group view, which shows one cycle: the cycle
/// that opened last when none is given.
pub fn resolve_view_filters(
    conn: &mut DbConnection,
    raw: &RawFilters,
) -> Result<Filters, AppError> {
    let mut filters = resolve_filters(conn, raw)?;
    if filters.cycle.is_none() {
        filters.cycle = latest_cycle(conn)?;
    }
    Ok(filters)
}

/// The cycle that opened last, if any.
fn latest_cycle(conn: &mut DbConnection) -> Result<Option<CycleRef>, AppError> {
    Ok(cycles::table
        .order((cycles::opens_on.desc(), cycles::id.desc()))
        .select((cycles::id, cycles::label, cycles::opens_on))
        .first::<(i64, String, NaiveDate)>(conn)
        .optional()?
        .map(|(id, label, opens_on)| CycleRef {
            id,
            label,
            opens_on,
        }))
}

// ---------------------------------------------------------------------------------------
// One organisation's report
// ---------------------------------------------------------------------------------------

/// A submitted result: the stored scores with their workings and the answers as submitted.
#[derive(Debug, Clone)]
pub struct SubmittedResult {
    pub reference: String,
    pub submitted_at: NaiveDateTime,
    pub late: bool,
    pub report: scoring::Assessment,
    pub answers: BTreeMap<String, serde_json::Value>,
}

/// A comparison group for the organisation report.
#[derive(Debug, Clone)]
pub struct PeerGroup {
    /// "setting", "icb" or "region".
    pub kind: &'static str,
    pub label: String,
    /// Members with any domain score.
    pub members: usize,
    /// Figures withheld because the group is too small for this viewer.
    pub withheld: bool,
    pub domains: BTreeMap<String, GroupStats>,
}

/// One cycle of the organisation's history, oldest first.
#[derive(Debug, Clone)]
pub struct HistoryPoint {
    pub member: Member,
    pub version: Arc<StoredVersion>,
    pub report: scoring::Assessment,
    /// Compared with the point before (None for the first).
    pub diff_from_previous: Option<VersionDiff>,
}

/// Everything the organisation report shows.
#[derive(Debug, Clone)]
pub struct OrganisationReport {
    pub organisation_id: i64,
    pub ods_code: String,
    pub name: String,
    /// The assessments this viewer may open, newest cycle first.
    pub choices: Vec<Member>,
    pub member: Member,
    pub version: Arc<StoredVersion>,
    pub icb: Option<Icb>,
    pub result: Option<SubmittedResult>,
    pub peers: Vec<PeerGroup>,
    /// Submitted cycles of the same setting up to this one, oldest first.
    pub history: Vec<HistoryPoint>,
}

/// Who is asking for an organisation report.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Auditors, administrators and the organisation's own people: every assessment.
    Full { sees_small_groups: bool },
    /// A group viewer: assessments in their scope only.
    Group(Scope),
}

fn stored_result(conn: &mut DbConnection, m: &Member) -> Result<Option<SubmittedResult>, AppError> {
    let Some(set) = m.score_set_id else {
        return Ok(None);
    };
    let (report, snapshot): (String, String) = score_sets::table
        .find(set)
        .select((score_sets::report, score_sets::answers_snapshot))
        .first(conn)?;
    Ok(Some(SubmittedResult {
        reference: m.reference.clone().unwrap_or_default(),
        submitted_at: m.submitted_at.unwrap_or_default(),
        late: m.late,
        report: parse_report(&report)?,
        answers: parse_snapshot(&snapshot)?,
    }))
}

/// What there is to show of an organisation.
#[derive(Debug, Clone)]
pub enum Outcome {
    Report(Box<OrganisationReport>),
    /// The organisation has no assessment in any cycle yet.
    NoAssessments {
        ods_code: String,
        name: String,
    },
}

/// One organisation's report for a cycle and setting (the newest submitted one, or the
/// newest, when not given). `Err(Forbidden)` when the viewer may see none of its assessments.
pub fn organisation_report(
    conn: &mut DbConnection,
    organisation_id: i64,
    viewer: &Viewer,
    cycle_id: Option<i64>,
    setting: Option<&str>,
) -> Result<Outcome, AppError> {
    let (ods_code, name): (String, String) = match organisations::table
        .find(organisation_id)
        .select((organisations::ods_code, organisations::name))
        .first(conn)
        .optional()?
    {
        Some(found) => found,
        None => {
            return Err(match viewer {
                Viewer::Full { .. } => AppError::NotFound,
                Viewer::Group(_) => AppError::Forbidden,
            })
        }
    };
    let (all, _) = load_members(
        conn,
        &Filters::default(),
        &Scope::All,
        Window {
            organisation_id: Some(organisation_id),
            ..Window::default()
        },
    )?;
    let mut visible: Vec<Member> = all
        .into_iter()
        .filter(|m| match viewer {
            Viewer::Full { .. } => true,
            Viewer::Group(scope) => scope.includes(m.icb_id, m.region.as_deref()),
        })
        .collect();
    if visible.is_empty() {
        return match viewer {
            Viewer::Group(_) => Err(AppError::Forbidden),
            Viewer::Full { .. } => Ok(Outcome::NoAssessments { ods_code, name }),
        };
    }
    let opens: HashMap<i64, NaiveDate> = cycles::table
        .select((cycles::id, cycles::opens_on))
        .load::<(i64, NaiveDate)>(conn)?
        .into_iter()
        .collect();
    let opened = |m: &Member| opens.get(&m.cycle_id).copied().unwrap_or_default();
    visible.sort_by(|a, b| {
        opened(b)
            .cmp(&opened(a))
            .then_with(|| a.setting.cmp(&b.setting))
    });
    let member = match (cycle_id, setting) {
        (None, None) => visible
            .iter()
            .find(|m| m.score_set_id.is_some())
            .or(visible.first())
            .cloned(),
        _ => visible
            .iter()
            .find(|m| {
                cycle_id.is_none_or(|c| c == m.cycle_id)
                    && setting.is_none_or(|s| s == m.setting)
            })
            .cloned(),
    }
    .ok_or_else(|| {
        AppError::BadRequest(format!(
            "{name} has no assessment for that cycle and care setting that you can see: choose one from the list on its report."
        ))
    })?;
    let mut versions = Versions::default();
    let version = versions.get(conn, member.version_id)?;
    let icb = match member.icb_id {
        Some(i) => icbs_by_id(conn, [i])?.remove(&i),
        None => None,
    };
    let result = stored_result(conn, &member)?;

    // Peers: the same cycle, setting and version; all of them, then the ICB and region.
    let mut peers = Vec::new();
    if result.is_some() {
        let peer_filters = Filters {
            cycle: Some(CycleRef {
                id: member.cycle_id,
                label: member.cycle_label.clone(),
                opens_on: NaiveDate::default(),
            }),
            setting: Some(member.setting.clone()),
            ..Filters::default()
        };
        let sees_small = matches!(
            viewer,
            Viewer::Full {
                sees_small_groups: true
            } | Viewer::Group(_)
        );
        let mut groups = vec![(
            "setting",
            format!("All {} organisations", member.setting),
            peer_filters.clone(),
        )];
        if let Some(i) = &icb {
            groups.push((
                "icb",
                format!(
                    "{} organisations in {}",
                    capitalised(&member.setting),
                    i.name
                ),
                Filters {
                    icb: Some(i.clone()),
                    ..peer_filters.clone()
                },
            ));
        }
        if let Some(r) = &member.region {
            groups.push((
                "region",
                format!(
                    "{} organisations in the {} region",
                    capitalised(&member.setting),
                    r
                ),
                Filters {
                    region: Some(r.clone()),
                    ..peer_filters.clone()
                },
            ));
        }
        for (kind, label, filters) in groups {
            let figures = group_figures(conn, &filters, &Scope::All, None)?;
            let mut domains = BTreeMap::new();
            let mut members = 0;
            for ((version, level, key, _), s) in figures {
                if version != member.version_id {
                    continue;
                }
                // An overall score exists exactly when some domain has one.
                if level == "overall" {
                    members = s.count;
                } else {
                    domains.insert(key, s);
                }
            }
            let withheld = !sees_small && members < MIN_DISCLOSED;
            peers.push(PeerGroup {
                kind,
                label,
                members,
                withheld,
                domains: if withheld { BTreeMap::new() } else { domains },
            });
        }
    }

    // History: submitted assessments of the same setting up to this cycle, oldest first.
    let this_opened = opened(&member);
    let mut earlier: Vec<Member> = visible
        .iter()
        .filter(|m| {
            m.setting == member.setting && m.score_set_id.is_some() && opened(m) <= this_opened
        })
        .cloned()
        .collect();
    earlier.sort_by_key(|m| (opened(m), m.cycle_id));
    let mut history: Vec<HistoryPoint> = Vec::new();
    for m in earlier {
        let v = versions.get(conn, m.version_id)?;
        let Some(r) = stored_result(conn, &m)? else {
            continue;
        };
        let diff_from_previous = history
            .last()
            .map(|p| comparability::diff(&p.version.questionnaire, &v.questionnaire));
        history.push(HistoryPoint {
            member: m,
            version: v,
            report: r.report,
            diff_from_previous,
        });
    }

    Ok(Outcome::Report(Box::new(OrganisationReport {
        organisation_id,
        ods_code,
        name,
        choices: visible,
        member,
        version,
        icb,
        result,
        peers,
        history,
    })))
}

// ---------------------------------------------------------------------------------------
// Year on year
// ---------------------------------------------------------------------------------------

/// One cycle (and version) of a questionnaire family's trend.
#[derive(Debug, Clone)]
pub struct TrendPoint {
    pub cycle: CycleRef,
    pub version: Arc<StoredVersion>,
    /// Submitted members counted.
    pub submitted: usize,
    pub domains: BTreeMap<String, GroupStats>,
    pub overall: Option<GroupStats>,
}

/// A like-for-like figure for a domain that is not comparable between two points.
#[derive(Debug, Clone)]
pub struct LikeForLike {
    pub domain: String,
    /// The questions counted: same key and fingerprint in both versions.
    pub questions: Vec<String>,
    pub before: Option<GroupStats>,
    pub after: Option<GroupStats>,
}

/// The change from one point to the next.
#[derive(Debug, Clone)]
pub struct TrendStep {
    pub diff: VersionDiff,
    /// Filled when like-for-like figures were asked for, for each domain not comparable.
    pub like_for_like: Vec<LikeForLike>,
}

/// A questionnaire family's figures across cycles; `steps[i]` goes from `points[i]` to
/// `points[i + 1]`.
#[derive(Debug, Clone)]
pub struct Trend {
    pub key: String,
    pub title: String,
    pub points: Vec<TrendPoint>,
    pub steps: Vec<TrendStep>,
}

impl Trend {
    /// Every domain key across the points: the newest version's order, then older ones.
    pub fn domain_keys(&self) -> Vec<(String, String)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for p in self.points.iter().rev() {
            for d in &p.version.questionnaire.domains {
                if seen.insert(d.key.clone()) {
                    out.push((d.key.clone(), d.title.clone()));
                }
            }
        }
        out
    }
}

/// Figures per cycle for the filtered organisations (the cycle filter is ignored: a trend
/// spans cycles), with like-for-like figures for non-comparable domains when asked.
pub fn trends(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    like_for_like: bool,
) -> Result<Vec<Trend>, AppError> {
    let filters = Filters {
        cycle: None,
        status: None,
        ..filters.clone()
    };
    // Submitted assessments per (cycle, version), and their figures from the database.
    let submitted: BTreeMap<(i64, i64), i64> = restrict!(
        assessments::table
            .inner_join(score_sets::table.on(current_score_set()))
            .filter(assessments::status.eq("submitted"))
            .group_by((assessments::cycle_id, assessments::questionnaire_version_id))
            .select((
                assessments::cycle_id,
                assessments::questionnaire_version_id,
                diesel::dsl::count_star(),
            ))
            .into_boxed(),
        &filters,
        scope
    )
    .load::<(i64, i64, i64)>(conn)?
    .into_iter()
    .map(|(cycle, version, n)| ((cycle, version), n))
    .collect();
    // A query per cycle: each is parallel and sorts in memory, where one over every cycle
    // (600,000 scores at national scale) sorted on disk, alone (measured: 880 ms against
    // about 100 ms a cycle).
    let mut figures: BTreeMap<(i64, i64, String, String), GroupStats> = BTreeMap::new();
    for cycle_id in submitted.keys().map(|(c, _)| *c).collect::<BTreeSet<i64>>() {
        let of_cycle = Filters {
            cycle: Some(CycleRef {
                id: cycle_id,
                label: String::new(),
                opens_on: NaiveDate::default(),
            }),
            ..filters.clone()
        };
        for ((version, level, key, _), s) in group_figures(conn, &of_cycle, scope, None)? {
            figures.insert((cycle_id, version, level, key), s);
        }
    }
    let cycle_refs: HashMap<i64, CycleRef> = cycles::table
        .select((cycles::id, cycles::label, cycles::opens_on))
        .load::<(i64, String, NaiveDate)>(conn)?
        .into_iter()
        .map(|(id, label, opens_on)| {
            (
                id,
                CycleRef {
                    id,
                    label,
                    opens_on,
                },
            )
        })
        .collect();

    // Points: (cycle, version) pairs, grouped by questionnaire key.
    let mut versions = Versions::default();
    let mut families: BTreeMap<String, Vec<(NaiveDate, i64, i64)>> = BTreeMap::new();
    for &(cycle_id, version_id) in submitted.keys() {
        let v = versions.get(conn, version_id)?;
        let opens = cycle_refs
            .get(&cycle_id)
            .map(|c| c.opens_on)
            .unwrap_or_default();
        families
            .entry(v.questionnaire.key.clone())
            .or_default()
            .push((opens, cycle_id, version_id));
    }

    let mut out = Vec::new();
    for (key, mut list) in families {
        list.sort();
        let mut points = Vec::new();
        for (_, cycle_id, version_id) in &list {
            let version = versions.get(conn, *version_id)?;
            let of_point = |level: &'static str| {
                figures
                    .iter()
                    .filter(move |((c, v, l, _), _)| c == cycle_id && v == version_id && l == level)
                    .map(|((_, _, _, key), s)| (key.clone(), s.clone()))
            };
            points.push(TrendPoint {
                cycle: cycle_refs.get(cycle_id).cloned().unwrap_or(CycleRef {
                    id: *cycle_id,
                    label: cycle_id.to_string(),
                    opens_on: NaiveDate::default(),
                }),
                domains: of_point("domain").collect(),
                overall: of_point("overall").next().map(|(_, s)| s),
                version,
                submitted: submitted
                    .get(&(*cycle_id, *version_id))
                    .and_then(|n| usize::try_from(*n).ok())
                    .unwrap_or(0),
            });
        }
        let mut steps = Vec::new();
        for pair in points.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            let diff =
                comparability::diff(&before.version.questionnaire, &after.version.questionnaire);
            let mut lfl = Vec::new();
            if like_for_like {
                for d in diff.domains.iter().filter(|d| !d.comparable) {
                    let keys = comparable_questions(
                        &before.version.questionnaire,
                        &after.version.questionnaire,
                        &d.key,
                    );
                    let figure = |conn: &mut DbConnection,
                                  point: &TrendPoint|
                     -> Result<Option<GroupStats>, AppError> {
                        if keys.is_empty() {
                            return Ok(None);
                        }
                        let sets: Vec<i64> = restrict!(
                            assessments::table
                                .inner_join(score_sets::table.on(current_score_set()))
                                .filter(assessments::status.eq("submitted"))
                                .filter(assessments::cycle_id.eq(point.cycle.id))
                                .filter(
                                    assessments::questionnaire_version_id
                                        .eq(point.version.summary.id),
                                )
                                .select(score_sets::id)
                                .into_boxed(),
                            &filters,
                            scope
                        )
                        .load(conn)?;
                        // The stored workings, a chunk of reports at a time.
                        let mut values = Vec::new();
                        for chunk in sets.chunks(IN_CHUNK) {
                            for (report, _) in stored_sets(conn, chunk)?.values() {
                                let report = parse_report(report)?;
                                let Some(ds) = report.domains.iter().find(|x| x.key == d.key)
                                else {
                                    continue;
                                };
                                values.extend(subset_score(
                                    point.version.questionnaire.scale,
                                    &ds.explanation,
                                    &keys,
                                ));
                            }
                        }
                        Ok(stats::summarise(&values))
                    };
                    lfl.push(LikeForLike {
                        domain: d.key.clone(),
                        questions: keys.iter().cloned().collect(),
                        before: figure(conn, before)?,
                        after: figure(conn, after)?,
                    });
                }
            }
            steps.push(TrendStep {
                diff,
                like_for_like: lfl,
            });
        }
        let title = points
            .last()
            .map(|p| p.version.questionnaire.title.clone())
            .unwrap_or_default();
        out.push(Trend {
            key,
            title,
            points,
            steps,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Answers in words
// ---------------------------------------------------------------------------------------

fn checklist_label(levels: &[ChecklistLevel], ticked: &[String]) -> String {
    match ChecklistLevel::reached(levels, ticked) {
        Some(level) => format!("Level {}: {}", level.value, level.label),
        None => "No level reached".into(),
    }
}

/// An answer as a person reads it: option labels, "Yes"/"No", a scale level with its label,
/// the checklist level reached and the criteria ticked, a number with its unit.
pub fn describe_answer(q: &Question, answer: &Answer) -> String {
    match (&q.kind, answer) {
        (_, Answer::Na) => "Not applicable".into(),
        (QuestionKind::Scale { levels }, Answer::Scale(v)) => levels
            .iter()
            .find(|l| l.value == *v)
            .map_or_else(|| v.to_string(), |l| format!("{}: {}", l.value, l.label)),
        (QuestionKind::Checklist { levels }, Answer::Checklist(keys)) => {
            let ticked: Vec<&str> = levels
                .iter()
                .flat_map(|l| l.criteria.iter())
                .filter(|c| keys.contains(&c.key))
                .map(|c| c.text.as_str())
                .collect();
            if ticked.is_empty() {
                format!("{} (nothing ticked)", checklist_label(levels, keys))
            } else {
                format!(
                    "{} (ticked: {})",
                    checklist_label(levels, keys),
                    ticked.join("; ")
                )
            }
        }
        (QuestionKind::Single { options }, Answer::Single(k)) => options
            .iter()
            .find(|o| &o.key == k)
            .map_or_else(|| k.clone(), |o| o.label.clone()),
        (QuestionKind::Multi { options, .. }, Answer::Multi(keys)) => options
            .iter()
            .filter(|o| keys.contains(&o.key))
            .map(|o| o.label.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        (_, Answer::YesNo(true)) => "Yes".into(),
        (_, Answer::YesNo(false)) => "No".into(),
        (QuestionKind::Number { unit, .. }, Answer::Number(x)) => match unit {
            Some(u) => format!("{x} {u}"),
            None => format!("{x}"),
        },
        (_, Answer::Text(s)) => s.clone(),
        (_, other) => other.to_json().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::scoring::Reason;

    fn c(key: &str, n: Option<f64>, w: f64, counted: bool) -> QuestionContribution {
        QuestionContribution {
            key: key.into(),
            raw: n,
            normalised: n,
            weight: w,
            counted,
            reason: if counted {
                Reason::Counted
            } else {
                Reason::NotAnswered
            },
        }
    }

    #[test]
    fn subset_score_follows_section_4_over_the_subset() {
        let scale = Scale { min: 1.0, max: 5.0 };
        let contributions = [
            c("a", Some(1.0), 1.0, true),
            c("b", Some(0.0), 2.0, true),
            c("c", Some(0.5), 1.0, true),
            c("d", None, 1.0, false),
        ];
        let keys: BTreeSet<String> = ["a", "b", "d"].iter().map(|s| s.to_string()).collect();
        // (1*1 + 2*0) / 3 = 1/3 -> 1 + 4/3
        let s = subset_score(scale, &contributions, &keys).unwrap();
        assert!((s - (1.0 + 4.0 / 3.0)).abs() < 1e-12);
        let none: BTreeSet<String> = ["d".to_string()].into_iter().collect();
        assert_eq!(subset_score(scale, &contributions, &none), None);
    }

    #[test]
    fn status_is_one_of_four_and_late_covers_both_kinds() {
        let d = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let before = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let after = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
        assert_eq!(
            ReportStatus::of("not_started", None, d, before),
            ReportStatus::NotStarted
        );
        assert_eq!(
            ReportStatus::of("reopened", None, d, before),
            ReportStatus::InProgress
        );
        assert_eq!(
            ReportStatus::of("in_progress", None, d, after),
            ReportStatus::Late
        );
        assert_eq!(
            ReportStatus::of("submitted", Some(false), d, after),
            ReportStatus::Submitted
        );
        assert_eq!(
            ReportStatus::of("submitted", Some(true), d, before),
            ReportStatus::Late
        );
    }

    #[test]
    fn filters_parse_strictly() {
        assert_eq!(parse_page("").unwrap(), 1);
        assert_eq!(parse_page("3").unwrap(), 3);
        for bad in ["0", "-1", "x", "1.5"] {
            assert!(
                matches!(parse_page(bad), Err(AppError::BadRequest(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_sort("-overall").unwrap(), (SortKey::Overall, true));
        assert!(parse_sort("rank").is_err());
        assert!(parse_comparable("yes").is_err());
        assert!(parse_comparable("1").unwrap());
        assert!(parse_group_by("trust").is_err());
    }

    #[test]
    fn group_scope_matches_icb_or_region() {
        let s = Scope::Group {
            icb_id: Some(7),
            region: None,
        };
        assert!(s.includes(Some(7), Some("London")));
        assert!(!s.includes(Some(8), Some("London")));
        assert!(!s.includes(None, None));
        let r = Scope::Group {
            icb_id: None,
            region: Some("London".into()),
        };
        assert!(r.includes(Some(8), Some("London")));
        assert!(!r.includes(Some(8), Some("North West")));
    }
}
