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
//!   [`MIN_DISCLOSED`] organisations, so a mean of two cannot reveal a neighbour's score;
//!   so do group viewers, whose scope is narrower than the peer groups ([`disclosure`]).
//!   Auditors and administrators see every group.
//! - **Like-for-like.** Where a domain is not comparable between two versions (format
//!   section 5), the year-on-year view can show a like-for-like figure instead: the domain
//!   score worked out over only the questions present in both versions with the same
//!   fingerprint (section 4 step 3 over that subset), from the stored workings of each
//!   submission ([`subset_score`]).
//! - **Not a league table.** Nothing here ranks organisations; lists sort by what the person
//!   chooses and show no rank numbers.
//!
//! One submodule per idea: [`status`] and [`scope`] (what an assessment counts as, who may
//! see it), [`filters`], [`members`] (the one query everything reads), [`figures`] (group
//! statistics in SQL), then one per view: [`national`], [`organisation`], [`year_on_year`],
//! [`progress`] (the support view: how far each organisation has got, without its answers);
//! [`like_for_like`] and [`answer_text`] are pure helpers; [`export`] writes the exports.

/// Organisation people see a peer group's figures only when it has at least this many
/// members with a score.
pub const MIN_DISCLOSED: usize = 5;

/// Assessments read per database round trip by the exports.
pub const SCORES_EXPORT_PAGE: i64 = 1_000;
/// Fewer per page for answers: each assessment gives a row per question (up to ~300).
pub const ANSWERS_EXPORT_PAGE: i64 = 200;

/// Ids per `IN (...)` list, well under SQLite's limit on bound parameters.
pub const IN_CHUNK: usize = 900;

mod answer_text;
pub mod counts;
mod disclosure;
mod export;
mod figures;
mod filters;
mod like_for_like;
mod members;
mod national;
mod organisation;
mod progress;
mod scope;
mod status;
mod year_on_year;

pub use answer_text::describe_answer;
pub use export::{
    export_file_name, next_page, Cell, ExportCursor, ExportFormat, ExportKind, ExportPage,
    ExportWriter, Finished, ANSWERS_COLUMNS, SCORES_COLUMNS, UTF8_BOM, XLSX_MAX_ROWS,
    XLSX_MAX_TEXT,
};
pub use filters::{
    parse_comparable, parse_group_by, parse_page, parse_sort, resolve_filters, CycleRef, Filters,
    GroupBy, Icb, RawFilters, SortKey,
};
pub use like_for_like::{comparable_questions, subset_score};
pub use members::{count_members, icbs_by_id, load_members, Member, Versions, Window};
pub use national::{
    list, national, options, resolve_view_filters, Listing, National, Options, VersionBlock,
};
pub use organisation::{
    organisation_report, HistoryPoint, OrganisationReport, Outcome, PeerGroup, SubmittedResult,
    Viewer,
};
pub use progress::{progress, Holder, Progress};
pub use scope::Scope;
pub use status::ReportStatus;
pub use year_on_year::{
    plan_counts, trends, LikeForLike, PlanCounts, Trend, TrendPoint, TrendStep,
};
