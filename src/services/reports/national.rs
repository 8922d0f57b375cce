//! The national and group view: counts by status, the figures per version, the paged list
//! and the filters' options. One module for what the national page and the API's reports
//! resource show.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{
    assessments, cycle_versions, cycles, organisations, score_sets, submissions,
};
use crate::db::{like_escape, lower, DbConnection};
use crate::domain::stats::GroupStats;
use crate::error::AppError;
use crate::services::questionnaires::StoredVersion;

use super::figures::{counts_in, group_figures, Group};
use super::filters::{resolve_filters, CycleRef, Filters, GroupBy, Icb, RawFilters, SortKey};
use super::members::{
    current_score_set, icbs_by_id, its_submission, list_page, restrict, Member, Versions,
};
use super::scope::Scope;
use super::status::ReportStatus;

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
    /// The auditor review (docs/review.md) of this version's submitted assessments in the
    /// filters: how many are reviewed (every section accepted), and how many sections
    /// (domains) are accepted out of all their sections.
    pub reviewed: usize,
    pub sections_accepted: usize,
    pub sections: usize,
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

/// `version id, status, submitted late, deadline override, cycle deadline, assessments, with
/// a current score set`.
type StatusGroup = (
    i64,
    String,
    Option<bool>,
    Option<NaiveDate>,
    NaiveDate,
    Option<chrono::NaiveDateTime>,
    i64,
    i64,
);

diesel::allow_columns_to_appear_in_same_group_by_clause!(
    assessments::questionnaire_version_id,
    assessments::status,
    assessments::deadline_override,
    submissions::late,
    cycles::deadline,
    assessments::closed_at,
);

/// Assessments in the filters (the status aside) and the scope, counted by what decides
/// their reporting status. Without a name search, submitted assessments are counted from the
/// score counts (`super::counts`: one row per group and lateness) and only the others are
/// read from `assessments`, so no join to every cycle's submissions is needed.
fn status_groups(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
) -> Result<Vec<StatusGroup>, AppError> {
    let filters = Filters {
        status: None,
        ..filters.clone()
    };
    if filters.q.is_none() {
        return status_groups_counted(conn, &filters, scope);
    }
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
            assessments::closed_at,
        ))
        .select((
            assessments::questionnaire_version_id,
            assessments::status,
            submissions::late.nullable(),
            assessments::deadline_override,
            cycles::deadline,
            assessments::closed_at,
            diesel::dsl::count_star(),
            diesel::dsl::count(score_sets::id.nullable()),
        ))
        .into_boxed();
    Ok(restrict!(base, &filters, scope).load(conn)?)
}

/// `version id, status, deadline override, cycle deadline, closed at, assessments`.
type Unsubmitted = (
    i64,
    String,
    Option<NaiveDate>,
    NaiveDate,
    Option<NaiveDateTime>,
    i64,
);

/// [`status_groups`] for filters the score counts serve.
fn status_groups_counted(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
) -> Result<Vec<StatusGroup>, AppError> {
    use crate::db::schema::score_counts as c;
    let base = assessments::table
        .inner_join(cycles::table)
        .filter(assessments::status.ne("submitted"))
        .group_by((
            assessments::questionnaire_version_id,
            assessments::status,
            assessments::deadline_override,
            cycles::deadline,
            assessments::closed_at,
        ))
        .select((
            assessments::questionnaire_version_id,
            assessments::status,
            assessments::deadline_override,
            cycles::deadline,
            assessments::closed_at,
            diesel::dsl::count_star(),
        ))
        .into_boxed();
    let others: Vec<Unsubmitted> = restrict!(base, filters, scope).load(conn)?;
    let mut groups: Vec<StatusGroup> = others
        .into_iter()
        .map(|(version, status, over, deadline, closed, n)| {
            (version, status, None, over, deadline, closed, n, 0)
        })
        .collect();
    let Some(counted) = counts_in(filters, scope) else {
        return Ok(groups);
    };
    // The deadline does not decide a submitted assessment's status (ReportStatus::of).
    let today = Utc::now().date_naive();
    // One row per group and lateness (a few hundred at most): summed here.
    let rows: Vec<(i64, bool, i64)> = counted
        .filter(c::level.eq("assessment"))
        .select((c::questionnaire_version_id, c::late, c::how_many))
        .load(conn)?;
    let mut submitted: BTreeMap<(i64, bool), i64> = BTreeMap::new();
    for (version, late, n) in rows {
        *submitted.entry((version, late)).or_default() += n;
    }
    groups.extend(submitted.into_iter().map(|((version, late), n)| {
        (
            version,
            "submitted".to_string(),
            Some(late),
            None,
            today,
            None,
            n,
            n,
        )
    }));
    Ok(groups)
}

/// Submitted assessments in the filters and scope with accepted sections: (version, how
/// many accepted), one row per such assessment. An accepted section has no open query, by
/// construction (`services::review`), so "every section accepted" is "reviewed".
fn accepted_sections(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
) -> Result<Vec<(i64, i64)>, AppError> {
    use crate::db::schema::review_sections;
    let base = review_sections::table
        .inner_join(assessments::table)
        .filter(review_sections::accepted.eq(true))
        .filter(assessments::status.eq("submitted"))
        .group_by((assessments::id, assessments::questionnaire_version_id))
        .select((
            assessments::questionnaire_version_id,
            diesel::dsl::count_star(),
        ))
        .into_boxed();
    Ok(restrict!(base, filters, scope).load(conn)?)
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
    for (version, status, late, deadline_override, deadline, closed_at, n, scored) in
        status_groups(conn, filters, scope)?
    {
        let (n, scored) = (
            usize::try_from(n).unwrap_or(0),
            usize::try_from(scored).unwrap_or(0),
        );
        let report_status = ReportStatus::of(
            &status,
            closed_at.is_some(),
            late,
            deadline_override.unwrap_or(deadline),
            today,
        );
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

    let accepted = accepted_sections(conn, filters, scope)?;
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
        let domain_count = version.questionnaire.domains.len();
        let of_this: Vec<usize> = accepted
            .iter()
            .filter(|(v, _)| *v == vid)
            .map(|(_, n)| usize::try_from(*n).unwrap_or(0))
            .collect();
        blocks.push(VersionBlock {
            reviewed: of_this
                .iter()
                .filter(|n| domain_count > 0 && **n >= domain_count)
                .count(),
            sections_accepted: of_this.iter().sum(),
            sections: submitted * domain_count,
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
    let members = list_page(conn, filters, scope, (key, descending), offset, limit)?;
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
