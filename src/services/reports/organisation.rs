//! One organisation's report: its submitted result, its peers' figures and its history,
//! and who may see how much of it ([`Viewer`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{cycles, organisations, score_sets};
use crate::db::DbConnection;
use crate::domain::comparability::{self, VersionDiff};
use crate::domain::scoring;
use crate::domain::stats::GroupStats;
use crate::error::AppError;
use crate::services::questionnaires::StoredVersion;

use super::figures::group_figures;
use super::filters::{capitalised, CycleRef, Filters, Icb};
use super::members::{
    icbs_by_id, load_members, parse_report, parse_snapshot, Member, Versions, Window,
};
use super::scope::Scope;
use super::MIN_DISCLOSED;

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
        let sees_small = super::disclosure::sees_small_groups(viewer);
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
