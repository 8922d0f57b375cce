//! Group figures computed by the database: counts of distinct scores with running counts,
//! of which only the ranks the quartile method reads come back, so a group of any size costs a
//! handful of rows. The national view, the organisation report's peers and year on year all
//! read [`group_figures`].

use std::collections::BTreeMap;

use diesel::prelude::*;

use crate::db::schema::{
    assessments, organisations, score_counts, score_sets, scores, submissions,
};
use crate::db::{like_escape, lower, DbConnection, MultiBackend};
use crate::domain::stats::{self, GroupStats};
use crate::error::AppError;

use super::filters::{Filters, GroupBy};
use super::members::{its_submission, restrict};
use super::scope::Scope;
use super::status::ReportStatus;

/// Which group a figure is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Group {
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
pub(super) fn group_figures(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    by: Option<GroupBy>,
) -> Result<BTreeMap<FigureKey, GroupStats>, AppError> {
    if matches!(
        filters.status,
        Some(ReportStatus::NotStarted | ReportStatus::InProgress | ReportStatus::NotSubmitted)
    ) {
        return Ok(BTreeMap::new());
    }
    let rows = if filters.q.is_none() {
        ranked_from_counts(conn, filters, scope, by)?
    } else {
        ranked_from_scores(conn, filters, scope, by)?
    };
    Ok(gather(rows, by))
}

/// The SQL of one source of counted scores: where the version, level, item and score are,
/// what counts the rows, and the breakdown's group columns.
struct Source {
    /// `version, level, item` columns.
    whole: &'static str,
    score: &'static str,
    /// How many scores a row of the grouped query stands for.
    how_many: &'static str,
    /// The breakdown's name and ICB expressions.
    named: fn(Option<GroupBy>) -> (&'static str, &'static str),
}

impl Source {
    /// The select list's window columns and the grouping and filter of [`OrderStatistics`].
    fn columns(&self, by: Option<GroupBy>) -> ([String; 6], String, String) {
        let (named, icb) = (self.named)(by);
        let whole = self.whole;
        let group = match by {
            None => whole.to_string(),
            Some(GroupBy::Icb) => format!("{whole}, {icb}"),
            Some(_) => format!("{whole}, {named}"),
        };
        let (how_many, score) = (self.how_many, self.score);
        // Running count, count and sum over a partition, as the select list's three columns.
        let running = |partition: &str, suffix: &str| {
            [
                format!(
                    "CAST(SUM({how_many}) OVER (PARTITION BY {partition} ORDER BY {score} \
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS through{suffix}"
                ),
                format!("CAST(SUM({how_many}) OVER (PARTITION BY {partition}) AS BIGINT) AS n{suffix}"),
                format!(
                    "SUM({score} * CAST({how_many} AS DOUBLE PRECISION)) \
                     OVER (PARTITION BY {partition}) AS total{suffix}"
                ),
            ]
        };
        let [a, b, c] = running(whole, "");
        let [d, e, f] = running(&group, "_group");
        let mut keep = holds_a_rank_read("through", "how_many", "n");
        if by.is_some() {
            keep = format!(
                "{keep} OR {}",
                holds_a_rank_read("through_group", "how_many", "n_group")
            );
        }
        ([a, b, c, d, e, f], format!("{group}, {score}"), keep)
    }
}

/// The counts of `score_counts` ([`super::counts`]): a bounded number of rows per group.
const COUNTS: Source = Source {
    whole: "score_counts.questionnaire_version_id, score_counts.level, score_counts.item_key",
    score: "score_counts.score",
    how_many: "SUM(score_counts.how_many)",
    named: |by| match by {
        None => ("CAST(NULL AS TEXT)", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Setting) => ("score_counts.setting", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Region) => ("NULLIF(score_counts.region, '')", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Icb) => ("CAST(NULL AS TEXT)", "NULLIF(score_counts.icb_id, 0)"),
    },
};

/// Every current score of the members: for the name search, which the counts cannot serve.
const SCORES: Source = Source {
    whole: "score_sets.questionnaire_version_id, scores.level, scores.item_key",
    score: "scores.score",
    how_many: "COUNT(*)",
    named: |by| match by {
        None => ("CAST(NULL AS TEXT)", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Setting) => ("assessments.setting", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Region) => ("assessments.region", "CAST(NULL AS BIGINT)"),
        Some(GroupBy::Icb) => ("CAST(NULL AS TEXT)", "assessments.icb_id"),
    },
};

/// The score counts in the filters (all but the name search, which the counts cannot serve)
/// and the scope, with a count; `None` when the scope holds nothing.
pub(super) fn counts_in<'a>(
    filters: &Filters,
    scope: &Scope,
) -> Option<score_counts::BoxedQuery<'a, MultiBackend>> {
    use score_counts as c;
    let mut query = c::table.filter(c::how_many.gt(0)).into_boxed();
    if let Some(cycle) = &filters.cycle {
        query = query.filter(c::cycle_id.eq(cycle.id));
    }
    if let Some(s) = &filters.setting {
        query = query.filter(c::setting.eq(s.clone()));
    }
    if let Some(r) = &filters.region {
        query = query.filter(c::region.eq(r.clone()));
    }
    if let Some(i) = &filters.icb {
        query = query.filter(c::icb_id.eq(i.id));
    }
    query = match scope {
        Scope::All => query,
        Scope::Group {
            icb_id: Some(i),
            region: Some(r),
        } => query.filter(c::icb_id.eq(*i).or(c::region.eq(r.clone()))),
        Scope::Group {
            icb_id: Some(i),
            region: None,
        } => query.filter(c::icb_id.eq(*i)),
        Scope::Group {
            icb_id: None,
            region: Some(r),
        } => query.filter(c::region.eq(r.clone())),
        Scope::Group {
            icb_id: None,
            region: None,
        } => return None,
    };
    Some(match filters.status {
        Some(ReportStatus::Late) => query.filter(c::late.eq(true)),
        Some(ReportStatus::Submitted) => query.filter(c::late.eq(false)),
        _ => query,
    })
}

/// [`Ranked`] rows from the score counts, for filters that are all columns of the counts.
fn ranked_from_counts(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    by: Option<GroupBy>,
) -> Result<Vec<Ranked>, AppError> {
    use crate::db::schema::score_counts as c;
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Double, Nullable, Text};
    let Some(query) = counts_in(filters, scope) else {
        return Ok(Vec::new());
    };
    let query = query.filter(c::level.eq_any(["domain", "overall"]));
    let (named, icb) = (COUNTS.named)(by);
    let (windows, grouping, keep) = COUNTS.columns(by);
    let [a, b, c_, d, e, f] = &windows;
    let counted = query.select((
        c::questionnaire_version_id,
        c::level,
        c::item_key,
        sql::<Nullable<Text>>(&format!("{named} AS group_name")),
        sql::<Nullable<BigInt>>(&format!("{icb} AS group_icb")),
        sql::<Nullable<Double>>("score_counts.score"),
        sql::<BigInt>("CAST(SUM(score_counts.how_many) AS BIGINT) AS how_many"),
        (sql::<BigInt>(a), sql::<BigInt>(b), sql::<Double>(c_)),
        (sql::<BigInt>(d), sql::<BigInt>(e), sql::<Double>(f)),
    ));
    Ok(OrderStatistics {
        query: counted,
        grouping,
        keep,
    }
    .load(conn)?)
}

/// [`Ranked`] rows from every current score of the members in the filters and scope.
fn ranked_from_scores(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    by: Option<GroupBy>,
) -> Result<Vec<Ranked>, AppError> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Double, Nullable, Text};
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
    let (named, icb) = (SCORES.named)(by);
    let (windows, grouping, keep) = SCORES.columns(by);
    let [a, b, c, d, e, f] = &windows;
    let counted = query.select((
        score_sets::questionnaire_version_id,
        scores::level,
        scores::item_key,
        sql::<Nullable<Text>>(&format!("{named} AS group_name")),
        sql::<Nullable<BigInt>>(&format!("{icb} AS group_icb")),
        scores::score,
        sql::<BigInt>("COUNT(*) AS how_many"),
        (sql::<BigInt>(a), sql::<BigInt>(b), sql::<Double>(c)),
        (sql::<BigInt>(d), sql::<BigInt>(e), sql::<Double>(f)),
    ));
    Ok(OrderStatistics {
        query: counted,
        grouping,
        keep,
    }
    .load(conn)?)
}

/// The figures from the ranked rows: per version, level, item and group, the summary of the
/// values at the ranks the method reads.
fn gather(rows: Vec<Ranked>, by: Option<GroupBy>) -> BTreeMap<FigureKey, GroupStats> {
    let mut picked: BTreeMap<FigureKey, Gathered> = BTreeMap::new();
    let mut pick =
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
            pick(
                (version, level.clone(), key.clone(), group),
                score,
                how_many,
                in_group,
            );
        }
        pick((version, level, key, Group::All), score, how_many, in_whole);
    }
    picked
        .into_iter()
        .filter_map(|(k, (count, sum, at))| {
            Some((
                k,
                stats::from_order_statistics(count, sum, |i| at.get(&i).copied())?,
            ))
        })
        .collect()
}
