//! Year on year: a questionnaire family's trend across cycles, with like-for-like figures
//! where a domain changed between versions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::db::schema::{assessments, cycles, organisations, score_sets};
use crate::db::{like_escape, lower, DbConnection};
use crate::domain::comparability::{self, VersionDiff};
use crate::domain::stats::{self, GroupStats};
use crate::error::AppError;
use crate::services::questionnaires::StoredVersion;

use super::figures::group_figures;
use super::filters::{CycleRef, Filters};
use super::like_for_like::{comparable_questions, subset_score};
use super::members::{current_score_set, parse_report, restrict, stored_sets, Versions};
use super::scope::Scope;
use super::IN_CHUNK;

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

diesel::allow_columns_to_appear_in_same_group_by_clause!(
    assessments::cycle_id,
    crate::db::schema::improvement_actions::status,
);

/// Improvement plan actions of the filtered organisations in one cycle (issue 23): what was
/// promised, beside the year-on-year change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanCounts {
    /// By status (`planned`, `in_progress`, `done`, `dropped`).
    pub by_status: BTreeMap<String, usize>,
    /// Of them, carried from an earlier cycle.
    pub carried: usize,
}

/// Plan actions per cycle for the filtered organisations (the cycle and status filters
/// aside, as for [`trends`]): two grouped counts, whatever the number of organisations.
pub fn plan_counts(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
) -> Result<BTreeMap<i64, PlanCounts>, AppError> {
    use crate::db::schema::improvement_actions;
    let filters = Filters {
        cycle: None,
        status: None,
        ..filters.clone()
    };
    let rows: Vec<(i64, String, i64)> = restrict!(
        improvement_actions::table
            .inner_join(assessments::table)
            .group_by((assessments::cycle_id, improvement_actions::status))
            .select((
                assessments::cycle_id,
                improvement_actions::status,
                diesel::dsl::count_star(),
            ))
            .into_boxed(),
        &filters,
        scope
    )
    .load(conn)?;
    let mut out: BTreeMap<i64, PlanCounts> = BTreeMap::new();
    for (cycle, status, n) in rows {
        out.entry(cycle)
            .or_default()
            .by_status
            .insert(status, usize::try_from(n).unwrap_or(0));
    }
    let carried: Vec<(i64, i64)> = restrict!(
        improvement_actions::table
            .inner_join(assessments::table)
            .filter(improvement_actions::carried_from.is_not_null())
            .group_by(assessments::cycle_id)
            .select((assessments::cycle_id, diesel::dsl::count_star()))
            .into_boxed(),
        &filters,
        scope
    )
    .load(conn)?;
    for (cycle, n) in carried {
        out.entry(cycle).or_default().carried = usize::try_from(n).unwrap_or(0);
    }
    Ok(out)
}
