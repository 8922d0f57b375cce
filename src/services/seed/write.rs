//! Writing: bulk multi-row `INSERT`s (`insert_rows!`), a batch of organisations or
//! assessments per transaction, ids read back with `RETURNING` and matched on a natural key. The
//! only part of the seed that touches the database, so its speed is measured here.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::answers::{Generated, Seeded};
use super::cycles::{at, CyclePlan};
use super::names::{approver_email, contributor_email, person_name};
use super::organisations::{Registry, ICBS, REGIONS};
use super::{ADMIN_EMAIL, AUDITOR_EMAIL, QUESTION_SET, SETTING};
use crate::db::schema::{
    answers, assessments, cycle_versions, cycles, organisation_parents, organisation_settings,
    organisations, score_sets, submissions, users,
};
use crate::db::{with_concrete_connection, DbConnection};
use crate::domain::ods::OrgKind;
use crate::domain::questionnaire::Questionnaire;
use crate::error::AppError;
use crate::services::audit::Actor;
use crate::services::auth::roles::Role;

/// Rows per `INSERT`: the widest seeded table has 10 columns, so a statement binds at most
/// 10,000 parameters (SQLite allows 32,766, PostgreSQL 65,535).
pub const ROWS_PER_STATEMENT: usize = 1000;
/// `INSERT` `rows` into `table`, [`ROWS_PER_STATEMENT`] rows per statement, and count them.
/// On the concrete connection: diesel builds SQLite's multi-row `INSERT` only there.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let mut inserted = 0_usize;
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            inserted += with_concrete_connection!($conn, c => {
                diesel::insert_into($table).values(chunk).execute(c)
            })?;
        }
        inserted
    }};
}

/// The same, reading back `returning` of every row (in no promised order).
macro_rules! insert_rows_returning {
    ($conn:expr, $table:expr, $rows:expr, $returning:expr => $row:ty) => {{
        let mut returned: Vec<$row> = Vec::with_capacity($rows.len());
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            returned.extend(with_concrete_connection!($conn, c => {
                diesel::insert_into($table)
                    .values(chunk)
                    .returning($returning)
                    .get_results::<$row>(c)
            })?);
        }
        returned
    }};
}

/// Organisations per transaction while writing the registry and accounts.
pub(super) const REGISTRY_BATCH: usize = 1000;
/// Assessments per transaction while writing a cycle (each with ~15 answers and ~16 scores).
pub(super) const CYCLE_BATCH: usize = 500;
/// What the setup transaction wrote and the later ones need.
pub(super) struct Setup {
    /// National accounts written (the administrator and the auditor).
    pub(super) accounts: usize,
    pub(super) version_id: i64,
    pub(super) questionnaire: std::sync::Arc<Questionnaire>,
    /// `organisations.id` of each of [`ICBS`].
    pub(super) icb_ids: Vec<i64>,
    pub(super) cycle_ids: Vec<i64>,
}

/// Ids of what the registry batches wrote, by organisation index.
pub(super) struct People {
    pub(super) organisation: Vec<i64>,
    pub(super) approver: Vec<i64>,
    pub(super) contributor: Vec<i64>,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = organisations)]
struct NewOrganisation<'a> {
    pub(super) ods_code: &'a str,
    pub(super) name: &'a str,
    pub(super) kind: &'a str,
    pub(super) region: Option<&'a str>,
    pub(super) opened_on: Option<NaiveDate>,
    pub(super) closed_on: Option<NaiveDate>,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = organisation_settings)]
struct NewSetting<'a> {
    pub(super) organisation_id: i64,
    pub(super) setting: &'a str,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = organisation_parents)]
struct NewParent {
    pub(super) organisation_id: i64,
    pub(super) parent_id: i64,
    pub(super) valid_from: NaiveDate,
    pub(super) valid_to: Option<NaiveDate>,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = users)]
struct NewAccount<'a> {
    pub(super) email: String,
    pub(super) name: String,
    pub(super) role: &'a str,
    pub(super) organisation_id: Option<i64>,
    pub(super) password_hash: Option<&'a str>,
    pub(super) active: bool,
    pub(super) password_changed_at: Option<NaiveDateTime>,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
}

impl<'a> NewAccount<'a> {
    fn new(
        email: String,
        name: String,
        role: Role,
        organisation_id: Option<i64>,
        hash: &'a str,
        now: NaiveDateTime,
    ) -> Self {
        NewAccount {
            email,
            name,
            role: role.as_str(),
            organisation_id,
            password_hash: Some(hash),
            active: true,
            password_changed_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = assessments)]
struct NewAssessment<'a> {
    pub(super) cycle_id: i64,
    pub(super) organisation_id: i64,
    pub(super) setting: &'a str,
    pub(super) questionnaire_version_id: i64,
    pub(super) status: &'a str,
    pub(super) icb_id: Option<i64>,
    pub(super) region: Option<&'a str>,
    pub(super) revision: i64,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
    pub(super) closed_at: Option<NaiveDateTime>,
}

/// When a past cycle of the seed was closed: the evening of its deadline.
fn closed_at(plan: &CyclePlan) -> Option<NaiveDateTime> {
    (!plan.open).then(|| at(plan.deadline, 18))
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = answers)]
struct NewAnswer<'a> {
    pub(super) assessment_id: i64,
    pub(super) question_key: &'a str,
    pub(super) value: String,
    pub(super) revision: i64,
    pub(super) carried_forward: bool,
    pub(super) updated_by: Option<i64>,
    pub(super) updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = submissions)]
struct NewSubmission<'a> {
    pub(super) assessment_id: i64,
    pub(super) reference: String,
    pub(super) submitted_by: i64,
    pub(super) signoff_name: String,
    pub(super) signoff_job_title: &'a str,
    pub(super) late: bool,
    pub(super) submitted_at: NaiveDateTime,
}

pub(super) fn setup(
    conn: &mut DbConnection,
    password_hash: &str,
    plans: &[CyclePlan],
    parents_from: NaiveDate,
    now: NaiveDateTime,
) -> Result<Setup, AppError> {
    let actor = Actor::system("seed");
    let imported = crate::services::questionnaires::import(conn, &actor, QUESTION_SET, true)
        .map_err(AppError::from)?;
    let questionnaire =
        crate::services::questionnaires::get_by_id(conn, imported.id)?.questionnaire;

    let icb_names: Vec<String> = ICBS
        .iter()
        .map(|(_, name, _)| format!("NHS {name} Integrated Care Board"))
        .collect();
    let rows: Vec<NewOrganisation> = ICBS
        .iter()
        .zip(&icb_names)
        .map(|((code, _, region), name)| NewOrganisation {
            ods_code: code,
            name,
            kind: OrgKind::Icb.as_str(),
            region: REGIONS.get(*region).copied(),
            opened_on: Some(parents_from),
            closed_on: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let ids: HashMap<String, i64> = insert_rows_returning!(
        conn,
        organisations::table,
        rows,
        (organisations::ods_code, organisations::id) => (String, i64)
    )
    .into_iter()
    .collect();
    let icb_ids = ICBS
        .iter()
        .map(|(code, _, _)| {
            ids.get(*code)
                .copied()
                .ok_or_else(|| missing(format!("the id of ICB {code}")))
        })
        .collect::<Result<Vec<i64>, AppError>>()?;

    let national = [
        NewAccount::new(
            ADMIN_EMAIL.to_string(),
            "Bench Administrator".to_string(),
            Role::Administrator,
            None,
            password_hash,
            now,
        ),
        NewAccount::new(
            AUDITOR_EMAIL.to_string(),
            "Bench Auditor".to_string(),
            Role::Auditor,
            None,
            password_hash,
            now,
        ),
    ];
    let ids: HashMap<String, i64> = insert_rows_returning!(
        conn,
        users::table,
        national,
        (users::email, users::id) => (String, i64)
    )
    .into_iter()
    .collect();
    let admin_id = ids.get(ADMIN_EMAIL).copied();
    let accounts = ids.len();

    let mut cycle_ids = Vec::with_capacity(plans.len());
    for plan in plans {
        let id: i64 = diesel::insert_into(cycles::table)
            .values((
                cycles::label.eq(&plan.label),
                cycles::opens_on.eq(plan.opens_on),
                cycles::deadline.eq(plan.deadline),
                cycles::status.eq(if plan.open { "open" } else { "closed" }),
                cycles::created_by.eq(admin_id),
                cycles::created_at.eq(at(plan.opens_on, 9).min(now)),
                cycles::closed_at.eq(closed_at(plan)),
            ))
            .returning(cycles::id)
            .get_result(conn)?;
        diesel::insert_into(cycle_versions::table)
            .values((
                cycle_versions::cycle_id.eq(id),
                cycle_versions::setting.eq(SETTING),
                cycle_versions::questionnaire_version_id.eq(imported.id),
            ))
            .execute(conn)?;
        cycle_ids.push(id);
    }
    Ok(Setup {
        accounts,
        version_id: imported.id,
        questionnaire,
        icb_ids,
        cycle_ids,
    })
}

pub(super) fn missing(what: String) -> AppError {
    AppError::Internal(anyhow::anyhow!(
        "seed: {what} was not returned by the insert"
    ))
}

/// One registry batch: organisations, their setting, ICB history and two accounts each.
/// Returns the number of accounts written.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_organisations(
    conn: &mut DbConnection,
    registry: &Registry,
    setup: &Setup,
    plans: &[CyclePlan],
    range: std::ops::Range<usize>,
    password_hash: &str,
    now: NaiveDateTime,
    people: &mut People,
) -> Result<usize, AppError> {
    let batch = registry.orgs.get(range.clone()).unwrap_or(&[]);
    let rows: Vec<NewOrganisation> = batch
        .iter()
        .map(|o| NewOrganisation {
            ods_code: &o.code,
            name: &o.name,
            kind: OrgKind::Trust.as_str(),
            region: REGIONS.get(o.region).copied(),
            opened_on: Some(o.opened_on),
            closed_on: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let ids: HashMap<String, i64> =
        insert_rows_returning!(conn, organisations::table, rows, (organisations::ods_code, organisations::id) => (String, i64))
            .into_iter()
            .collect();
    for (i, org) in range.clone().zip(batch) {
        let id = ids
            .get(&org.code)
            .copied()
            .ok_or_else(|| missing(format!("the id of organisation {}", org.code)))?;
        if let Some(slot) = people.organisation.get_mut(i) {
            *slot = id;
        }
    }
    let org_id = |i: usize| people.organisation.get(i).copied().unwrap_or(0);

    let settings: Vec<NewSetting> = range
        .clone()
        .map(|i| NewSetting {
            organisation_id: org_id(i),
            setting: SETTING,
        })
        .collect();
    insert_rows!(conn, organisation_settings::table, settings);

    let mut parents: Vec<NewParent> = Vec::with_capacity(batch.len());
    for (i, org) in range.clone().zip(batch) {
        let mut from = registry.parents_from;
        let mut current = org.icb.first().copied().unwrap_or(0);
        for (c, &icb) in org.icb.iter().enumerate().skip(1) {
            if icb != current {
                let moves_on = plans.get(c).map_or(from, |p| p.moves_on);
                parents.push(NewParent {
                    organisation_id: org_id(i),
                    parent_id: setup.icb_ids.get(current).copied().unwrap_or(0),
                    valid_from: from,
                    valid_to: Some(moves_on),
                });
                from = moves_on;
                current = icb;
            }
        }
        parents.push(NewParent {
            organisation_id: org_id(i),
            parent_id: setup.icb_ids.get(current).copied().unwrap_or(0),
            valid_from: from,
            valid_to: None,
        });
    }
    insert_rows!(conn, organisation_parents::table, parents);

    let seed = registry.seed;
    let mut accounts: Vec<NewAccount> = Vec::with_capacity(2 * batch.len());
    for i in range.clone() {
        for role in [Role::OrgApprover, Role::OrgContributor] {
            let email = if role == Role::OrgApprover {
                approver_email(i)
            } else {
                contributor_email(i)
            };
            accounts.push(NewAccount::new(
                email,
                person_name(seed, i, role),
                role,
                Some(org_id(i)),
                password_hash,
                now,
            ));
        }
    }
    let by_id: HashMap<i64, usize> = range.clone().map(|i| (org_id(i), i)).collect();
    let ids = insert_rows_returning!(
        conn,
        users::table,
        accounts,
        (users::id, users::organisation_id, users::role) => (i64, Option<i64>, String)
    );
    let written = ids.len();
    for (id, organisation, role) in ids {
        let Some(&i) = organisation.and_then(|o| by_id.get(&o)) else {
            continue;
        };
        let slot = if role == Role::OrgApprover.as_str() {
            people.approver.get_mut(i)
        } else {
            people.contributor.get_mut(i)
        };
        if let Some(slot) = slot {
            *slot = id;
        }
    }
    Ok(written)
}

/// What a cycle batch wrote.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) submitted: usize,
    pub(super) in_progress: usize,
    pub(super) not_started: usize,
    pub(super) answers: usize,
    pub(super) score_sets: usize,
    pub(super) scores: usize,
}

impl Counts {
    pub(super) fn add(&mut self, other: &Counts) {
        self.submitted += other.submitted;
        self.in_progress += other.in_progress;
        self.not_started += other.not_started;
        self.answers += other.answers;
        self.score_sets += other.score_sets;
        self.scores += other.scores;
    }
}

/// One cycle batch: assessments with their ICB and region snapshots, answers, and for the
/// submitted ones a submission, the current score set and its scores.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_assessments(
    conn: &mut DbConnection,
    setup: &Setup,
    registry: &Registry,
    people: &People,
    plan: &CyclePlan,
    c: usize,
    start: usize,
    batch: &[Generated],
) -> Result<Counts, AppError> {
    let cycle_id = setup
        .cycle_ids
        .get(c)
        .copied()
        .ok_or_else(|| missing(format!("the id of cycle {}", plan.label)))?;
    let created = at(plan.opens_on, 9);
    let org_id = |i: usize| people.organisation.get(i).copied().unwrap_or(0);
    let mut counts = Counts::default();

    let rows: Vec<NewAssessment> = batch
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let org = registry.orgs.get(start + k);
            NewAssessment {
                cycle_id,
                organisation_id: org_id(start + k),
                setting: SETTING,
                questionnaire_version_id: setup.version_id,
                status: g.state.status(),
                icb_id: org
                    .and_then(|o| o.icb.get(c))
                    .and_then(|&icb| setup.icb_ids.get(icb).copied()),
                region: org.and_then(|o| REGIONS.get(o.region).copied()),
                revision: g.revision(),
                created_at: created,
                updated_at: g.updated_at(created),
                closed_at: closed_at(plan),
            }
        })
        .collect();
    let assessment_ids: HashMap<i64, i64> =
        insert_rows_returning!(conn, assessments::table, rows, (assessments::organisation_id, assessments::id) => (i64, i64))
            .into_iter()
            .collect();
    let assessment_of = |k: usize| -> Result<i64, AppError> {
        assessment_ids
            .get(&org_id(start + k))
            .copied()
            .ok_or_else(|| missing(format!("the assessment of organisation {}", start + k)))
    };

    let mut answer_rows: Vec<NewAnswer> = Vec::new();
    let mut submission_rows: Vec<NewSubmission> = Vec::new();
    let compact_label = plan.label.replace('/', "");
    for (k, g) in batch.iter().enumerate() {
        let i = start + k;
        match g.state {
            Seeded::Submitted => counts.submitted += 1,
            Seeded::Complete | Seeded::Partial => counts.in_progress += 1,
            Seeded::NotStarted => counts.not_started += 1,
        }
        if g.answers.is_empty() && g.submission.is_none() {
            continue;
        }
        let assessment_id = assessment_of(k)?;
        let updated_by = people.contributor.get(i).copied();
        for (key, answer) in &g.answers {
            answer_rows.push(NewAnswer {
                assessment_id,
                question_key: key,
                value: answer.to_json().to_string(),
                revision: 1,
                carried_forward: false,
                updated_by,
                updated_at: g.answered_at,
            });
        }
        if let Some(s) = &g.submission {
            submission_rows.push(NewSubmission {
                assessment_id,
                reference: format!("DMA-{compact_label}-SEED{i:08}"),
                submitted_by: people.approver.get(i).copied().unwrap_or(0),
                signoff_name: person_name(registry.seed, i, Role::OrgApprover),
                signoff_job_title: s.job_title,
                late: s.late,
                submitted_at: s.at,
            });
        }
    }
    counts.answers += insert_rows!(conn, answers::table, answer_rows);
    let submission_ids: HashMap<i64, i64> =
        insert_rows_returning!(conn, submissions::table, submission_rows, (submissions::assessment_id, submissions::id) => (i64, i64))
            .into_iter()
            .collect();

    let mut set_rows = Vec::with_capacity(submission_rows.len());
    let mut contents = Vec::with_capacity(submission_rows.len());
    for (k, g) in batch.iter().enumerate() {
        let Some(s) = &g.submission else { continue };
        let assessment_id = assessment_of(k)?;
        let submission_id = submission_ids
            .get(&assessment_id)
            .copied()
            .ok_or_else(|| missing(format!("the submission of assessment {assessment_id}")))?;
        set_rows.push(
            s.content
                .score_set(assessment_id, submission_id, setup.version_id, s.at),
        );
        contents.push((assessment_id, &s.content));
    }
    let set_ids: HashMap<i64, i64> =
        insert_rows_returning!(conn, score_sets::table, set_rows, (score_sets::assessment_id, score_sets::id) => (i64, i64))
            .into_iter()
            .collect();
    counts.score_sets = set_ids.len();
    let mut score_rows = Vec::with_capacity(contents.len() * 16);
    for (assessment_id, content) in contents {
        let set_id = set_ids
            .get(&assessment_id)
            .copied()
            .ok_or_else(|| missing(format!("the score set of assessment {assessment_id}")))?;
        score_rows.extend(content.score_rows(set_id));
    }
    counts.scores += crate::services::assessments::insert_scores(conn, &score_rows)?;
    Ok(counts)
}
