//! The support view (issue 22): how far each organisation in a group has got with the
//! cycle's assessment, so an ICB can help the ones that are behind while the cycle is open.
//!
//! Why it looks like this:
//! - **Progress, not answers.** A group viewer must not read an organisation's answers before
//!   it submits; what it may see is how much is answered, how far the sections are in their
//!   hand-over, who holds them and when anyone last worked on it. Everything here is counts,
//!   names of the people holding sections and dates, never an answer or a score.
//! - **The same rows as the reports.** The organisations are the page the national view
//!   lists for the same filters and scope ([`super::list`]), so a group viewer sees exactly
//!   the organisations of their ICB or region and nothing else.
//! - **The same section states as the assessment's own pages.** Each listed assessment's
//!   sections come from [`crate::services::sections::sections`], lapses included, so the
//!   support view never says "reviewed" where the organisation's overview says otherwise.
//!   That is a load per listed assessment: one page of the list, never the whole group.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::dsl::max;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::answers;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::services::reports::{Member, ReportStatus};
use crate::services::sections::{self, Status};

/// How far one organisation's assessment has got.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub assessment_id: i64,
    pub organisation_id: i64,
    pub name: String,
    pub ods_code: String,
    pub setting: String,
    pub status: ReportStatus,
    pub deadline: chrono::NaiveDate,
    /// Questions answered of those shown, over every section.
    pub answered: usize,
    pub visible: usize,
    /// Sections by hand-over status (every status, zeros included), and in all.
    pub sections: BTreeMap<&'static str, usize>,
    pub section_count: usize,
    /// Who holds which sections: each person once, with the titles of their sections.
    pub holders: Vec<Holder>,
    /// Sections nobody holds.
    pub unassigned: usize,
    /// When an answer last changed.
    pub last_activity: Option<NaiveDateTime>,
}

/// A person holding sections of an assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub name: String,
    pub sections: Vec<String>,
}

/// The progress of each listed member, in the listing's order.
pub fn progress(conn: &mut DbConnection, members: &[Member]) -> Result<Vec<Progress>, AppError> {
    let ids: Vec<i64> = members.iter().map(|m| m.assessment_id).collect();
    let last: HashMap<i64, Option<NaiveDateTime>> = answers::table
        .filter(answers::assessment_id.eq_any(&ids))
        .group_by(answers::assessment_id)
        .select((answers::assessment_id, max(answers::updated_at)))
        .load::<(i64, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .collect();
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let loaded = crate::services::assessments::load(conn, m.assessment_id)?;
        let all = sections::sections(conn, &loaded)?;
        let mut by_status: BTreeMap<&'static str, usize> =
            Status::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let mut holders: Vec<Holder> = Vec::new();
        for s in &all {
            *by_status.entry(s.status.as_str()).or_default() += 1;
            for a in &s.assignees {
                match holders.iter_mut().find(|h| h.name == a.name) {
                    Some(h) => h.sections.push(s.title.clone()),
                    None => holders.push(Holder {
                        name: a.name.clone(),
                        sections: vec![s.title.clone()],
                    }),
                }
            }
        }
        holders.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(Progress {
            assessment_id: m.assessment_id,
            organisation_id: m.organisation_id,
            name: m.name.clone(),
            ods_code: m.ods_code.clone(),
            setting: m.setting.clone(),
            status: m.report_status,
            deadline: m.deadline,
            answered: all.iter().map(|s| s.answered).sum(),
            visible: all.iter().map(|s| s.visible).sum(),
            sections: by_status,
            section_count: all.len(),
            unassigned: all.iter().filter(|s| s.assignees.is_empty()).count(),
            holders,
            last_activity: last.get(&m.assessment_id).copied().flatten(),
        });
    }
    Ok(out)
}
