//! Applying checked rows to the database: load what the registry holds, plan every change,
//! refuse what the registry contradicts, and only then write (with the audit log), all in the
//! caller's transaction, so an import is all or nothing and a repeated import changes nothing.

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

use super::membership::{plan_parent, IcbDates, ParentOp};
use super::parse::date_order;
use super::rows::{ImportReport, RegistryRow, RowError};
use super::MAX_ERRORS;
use crate::db::schema::{organisation_parents, organisation_settings, organisations, users};
use crate::db::DbConnection;
use crate::domain::ods::OrgKind;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};

/// Values per `IN (...)` list: well under both backends' limits on bound parameters.
const CHUNK: usize = 400;
/// An organisation as the registry holds it; also the before and after of an audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct OrgState {
    pub(super) ods_code: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) region: Option<String>,
    pub(super) opened_on: Option<NaiveDate>,
    pub(super) closed_on: Option<NaiveDate>,
    pub(super) settings: BTreeSet<String>,
    pub(super) parent_icb: Option<String>,
    pub(super) parent_from: Option<NaiveDate>,
}

impl OrgState {
    fn same_record(&self, other: &OrgState) -> bool {
        self.name == other.name
            && self.kind == other.kind
            && self.region == other.region
            && self.opened_on == other.opened_on
            && self.closed_on == other.closed_on
    }
}

#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) id: i64,
    pub(super) state: OrgState,
    /// The latest membership: its row id, parent id and start.
    pub(super) parent: Option<(i64, i64, NaiveDate)>,
}

#[derive(Debug)]
struct Planned {
    existing: Option<Stored>,
    after: OrgState,
    record_changed: bool,
    settings_changed: bool,
    parent: ParentOp,
}

impl Planned {
    fn is_change(&self) -> bool {
        self.existing.is_none()
            || self.record_changed
            || self.settings_changed
            || !matches!(self.parent, ParentOp::Keep)
    }
}

/// Applies checked rows in the caller's transaction (use [`Db::write`] or
/// [`Db::write_blocking`]). The rows are first checked against the database; if any is
/// refused, nothing is written and the answer is [`AppError::Validation`] with one error per
/// problem, its path the line and column. `today` is the default start of a changed ICB.
pub fn apply(
    conn: &mut DbConnection,
    rows: &[RegistryRow],
    actor: Option<i64>,
    today: NaiveDate,
) -> Result<ImportReport, AppError> {
    apply_or_refuse(conn, rows, actor, today)?
        .map_err(|errors| AppError::Validation(errors.into_iter().map(FieldError::from).collect()))
}

/// [`apply`] with the row problems kept as rows. On `Ok(Err(_))` nothing has been written.
pub(super) fn apply_or_refuse(
    conn: &mut DbConnection,
    rows: &[RegistryRow],
    actor: Option<i64>,
    today: NaiveDate,
) -> Result<Result<ImportReport, Vec<RowError>>, AppError> {
    let plan = match plan(conn, rows, today)? {
        Ok(plan) => plan,
        Err(errors) => return Ok(Err(errors)),
    };
    execute(conn, plan, actor).map(Ok).map_err(|e| match e {
        AppError::Database(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            AppError::Conflict(
                "the registry changed while the file was being imported; import it again"
                    .to_string(),
            )
        }
        other => other,
    })
}

type StoredColumns = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDate>,
    Option<NaiveDate>,
);

/// The care settings the format's specification names. A registry may also use any setting
/// a stored question set serves or an organisation already has.
pub const STANDARD_SETTINGS: &[&str] = &[
    "acute",
    "ambulance",
    "community",
    "icb",
    "mental-health",
    "primary-care",
    "social-care",
];

/// Every care setting an organisation may be given: [`STANDARD_SETTINGS`], those of stored
/// question sets (drafts included) and those organisations already have. An organisation with
/// any other setting would silently get no assessment when a cycle opens (issue 20, item 10).
fn known_settings(conn: &mut DbConnection) -> Result<BTreeSet<String>, AppError> {
    let mut known: BTreeSet<String> = STANDARD_SETTINGS.iter().map(|s| s.to_string()).collect();
    known.extend(
        organisation_settings::table
            .select(organisation_settings::setting)
            .distinct()
            .load::<String>(conn)?,
    );
    for v in crate::services::questionnaires::list(conn)? {
        known.extend(
            crate::services::questionnaires::get_by_id(conn, v.id)?
                .questionnaire
                .settings
                .iter()
                .cloned(),
        );
    }
    Ok(known)
}

/// One error per setting of the row that no question set serves and no organisation has.
fn unknown_settings(line: u64, row: &RegistryRow, known: &BTreeSet<String>) -> Vec<RowError> {
    row.settings
        .iter()
        .flatten()
        .filter(|s| !known.contains(*s))
        .map(|s| {
            RowError::cell(
                line,
                "settings",
                format!(
                    "\"{s}\" is not a care setting this service knows ({}); check the spelling, or add a question set for it first",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
        .collect()
}

/// Reads what the registry holds for the codes the rows mention.
fn load(conn: &mut DbConnection, codes: &[String]) -> Result<HashMap<String, Stored>, AppError> {
    let mut stored: HashMap<String, Stored> = HashMap::new();
    for chunk in codes.chunks(CHUNK) {
        let found: Vec<StoredColumns> = organisations::table
            .filter(organisations::ods_code.eq_any(chunk))
            .select((
                organisations::id,
                organisations::ods_code,
                organisations::name,
                organisations::kind,
                organisations::region,
                organisations::opened_on,
                organisations::closed_on,
            ))
            .load(conn)?;
        for (id, ods_code, name, kind, region, opened_on, closed_on) in found {
            let state = OrgState {
                ods_code: ods_code.clone(),
                name,
                kind,
                region,
                opened_on,
                closed_on,
                settings: BTreeSet::new(),
                parent_icb: None,
                parent_from: None,
            };
            stored.insert(
                ods_code,
                Stored {
                    id,
                    state,
                    parent: None,
                },
            );
        }
    }
    let by_id: HashMap<i64, String> = stored
        .iter()
        .map(|(code, s)| (s.id, code.clone()))
        .collect();
    let ids: Vec<i64> = by_id.keys().copied().collect();
    let mut parent_ids = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let settings: Vec<(i64, String)> = organisation_settings::table
            .filter(organisation_settings::organisation_id.eq_any(chunk))
            .select((
                organisation_settings::organisation_id,
                organisation_settings::setting,
            ))
            .load(conn)?;
        for (id, setting) in settings {
            if let Some(s) = by_id.get(&id).and_then(|code| stored.get_mut(code)) {
                s.state.settings.insert(setting);
            }
        }
        let parents: Vec<(i64, i64, i64, NaiveDate)> = organisation_parents::table
            .filter(organisation_parents::organisation_id.eq_any(chunk))
            .select((
                organisation_parents::id,
                organisation_parents::organisation_id,
                organisation_parents::parent_id,
                organisation_parents::valid_from,
            ))
            .load(conn)?;
        for (row_id, org_id, parent_id, from) in parents {
            if let Some(s) = by_id.get(&org_id).and_then(|code| stored.get_mut(code)) {
                if s.parent.is_none_or(|(_, _, latest)| from > latest) {
                    s.parent = Some((row_id, parent_id, from));
                }
            }
            parent_ids.push(parent_id);
        }
    }
    // The current parents' codes, for comparison with the file and for the audit log.
    parent_ids.sort_unstable();
    parent_ids.dedup();
    let mut parent_codes: HashMap<i64, String> = HashMap::new();
    for chunk in parent_ids.chunks(CHUNK) {
        let found: Vec<(i64, String)> = organisations::table
            .filter(organisations::id.eq_any(chunk))
            .select((organisations::id, organisations::ods_code))
            .load(conn)?;
        parent_codes.extend(found);
    }
    for s in stored.values_mut() {
        if let Some((_, parent_id, from)) = s.parent {
            s.state.parent_icb = parent_codes.get(&parent_id).cloned();
            s.state.parent_from = Some(from);
        }
    }
    Ok(stored)
}
fn plan(
    conn: &mut DbConnection,
    rows: &[RegistryRow],
    today: NaiveDate,
) -> Result<Result<Vec<Planned>, Vec<RowError>>, AppError> {
    let mut codes: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            std::iter::once(r.ods_code.to_string())
                .chain(r.parent_icb.as_ref().map(ToString::to_string))
        })
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let stored = load(conn, &codes)?;

    let merged: Vec<OrgState> = rows
        .iter()
        .map(|row| merge(row, stored.get(row.ods_code.as_str())))
        .collect();
    let icbs: HashMap<&str, IcbDates> = stored
        .values()
        .map(|s| &s.state)
        .chain(merged.iter())
        .filter(|s| s.kind == OrgKind::Icb.as_str())
        .map(|s| {
            (
                s.ods_code.as_str(),
                IcbDates {
                    opened_on: s.opened_on,
                    closed_on: s.closed_on,
                },
            )
        })
        .collect();

    let known = known_settings(conn)?;
    let mut errors = Vec::new();
    let mut planned = Vec::with_capacity(rows.len());
    // parse_csv refuses duplicates; rows built another way are checked again here.
    let mut seen: HashMap<&str, u64> = HashMap::with_capacity(rows.len());
    for (row, after) in rows.iter().zip(merged.iter()) {
        if errors.len() >= MAX_ERRORS {
            errors.push(RowError::file(format!(
                "stopped after {MAX_ERRORS} problems; correct these and import again"
            )));
            break;
        }
        let line = row.line;
        if let Some(first) = seen.insert(row.ods_code.as_str(), line) {
            errors.push(RowError::repeated(line, &row.ods_code, first));
            continue;
        }
        let existing = stored.get(row.ods_code.as_str()).cloned();
        // The file's dates were checked in parse_csv; this catches contradictions with the
        // dates the registry already holds.
        let mut row_errors = date_order(line, after.opened_on, after.closed_on, row.parent_from);
        row_errors.extend(unknown_settings(line, row, &known));
        let parent = match plan_parent(row, after, existing.as_ref(), &icbs, today) {
            Ok(op) => op,
            Err(e) => {
                row_errors.push(e);
                ParentOp::Keep
            }
        };
        if !row_errors.is_empty() {
            errors.append(&mut row_errors);
            continue;
        }
        let mut after = after.clone();
        match &parent {
            ParentOp::Keep => {}
            ParentOp::Open { parent, from } | ParentOp::Replace { parent, from, .. } => {
                after.parent_icb = Some(parent.clone());
                after.parent_from = Some(*from);
            }
            ParentOp::Correct { parent, .. } => after.parent_icb = Some(parent.clone()),
        }
        let (record_changed, settings_changed) = match &existing {
            Some(s) => (
                !s.state.same_record(&after),
                s.state.settings != after.settings,
            ),
            None => (true, !after.settings.is_empty()),
        };
        planned.push(Planned {
            existing,
            after,
            record_changed,
            settings_changed,
            parent,
        });
    }
    Ok(if errors.is_empty() {
        Ok(planned)
    } else {
        Err(errors)
    })
}

/// The organisation as it will be: the file's values over the registry's.
fn merge(row: &RegistryRow, stored: Option<&Stored>) -> OrgState {
    let before = stored.map(|s| &s.state);
    OrgState {
        ods_code: row.ods_code.to_string(),
        name: row.name.clone(),
        kind: row.kind().as_str().to_string(),
        region: row
            .region
            .clone()
            .unwrap_or_else(|| before.and_then(|b| b.region.clone())),
        opened_on: row
            .opened_on
            .unwrap_or_else(|| before.and_then(|b| b.opened_on)),
        closed_on: row
            .closed_on
            .unwrap_or_else(|| before.and_then(|b| b.closed_on)),
        settings: row
            .settings
            .clone()
            .unwrap_or_else(|| before.map(|b| b.settings.clone()).unwrap_or_default()),
        parent_icb: before.and_then(|b| b.parent_icb.clone()),
        parent_from: before.and_then(|b| b.parent_from),
    }
}
fn execute(
    conn: &mut DbConnection,
    plan: Vec<Planned>,
    actor: Option<i64>,
) -> Result<ImportReport, AppError> {
    let now = Utc::now().naive_utc();
    let mut report = ImportReport::default();

    // New organisations first, so members listed before their (new) ICB can refer to it.
    // One statement per row: the multi-backend connection has no multi-row insert.
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(plan.len());
    for p in &plan {
        let s = &p.after;
        let id = match &p.existing {
            Some(existing) => existing.id,
            None => diesel::insert_into(organisations::table)
                .values((
                    organisations::ods_code.eq(&s.ods_code),
                    organisations::name.eq(&s.name),
                    organisations::kind.eq(&s.kind),
                    organisations::region.eq(&s.region),
                    organisations::opened_on.eq(s.opened_on),
                    organisations::closed_on.eq(s.closed_on),
                    organisations::created_at.eq(now),
                    organisations::updated_at.eq(now),
                ))
                .returning(organisations::id)
                .get_result::<i64>(conn)?,
        };
        ids.insert(s.ods_code.clone(), id);
    }
    // Parents already in the registry and not in the file.
    let mut wanted: Vec<&str> = plan
        .iter()
        .filter_map(|p| p.after.parent_icb.as_deref())
        .filter(|code| !ids.contains_key(*code))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    for chunk in wanted.chunks(CHUNK) {
        let found: Vec<(String, i64)> = organisations::table
            .filter(organisations::ods_code.eq_any(chunk))
            .select((organisations::ods_code, organisations::id))
            .load(conn)?;
        ids.extend(found);
    }
    let id_of = |code: &str| -> Result<i64, AppError> {
        ids.get(code).copied().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "organisation {code} vanished during the import"
            ))
        })
    };

    let mut new_settings: Vec<(i64, String)> = Vec::new();
    let mut new_parents: Vec<(i64, i64, NaiveDate)> = Vec::new();
    let mut entries: Vec<(&'static str, i64, Option<&OrgState>, &OrgState)> = Vec::new();
    for p in &plan {
        if !p.is_change() {
            report.unchanged += 1;
            continue;
        }
        let id = id_of(&p.after.ods_code)?;
        if let Some(existing) = &p.existing {
            report.updated += 1;
            if p.record_changed {
                diesel::update(organisations::table.find(id))
                    .set((
                        organisations::name.eq(&p.after.name),
                        organisations::kind.eq(&p.after.kind),
                        organisations::region.eq(&p.after.region),
                        organisations::opened_on.eq(p.after.opened_on),
                        organisations::closed_on.eq(p.after.closed_on),
                        organisations::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            if p.settings_changed {
                diesel::delete(
                    organisation_settings::table
                        .filter(organisation_settings::organisation_id.eq(id)),
                )
                .execute(conn)?;
            }
            if !matches!(p.parent, ParentOp::Keep) {
                report.parent_changes += 1;
            }
            entries.push(("organisation.update", id, Some(&existing.state), &p.after));
        } else {
            report.created += 1;
            entries.push(("organisation.create", id, None, &p.after));
        }
        if p.settings_changed {
            new_settings.extend(p.after.settings.iter().map(|s| (id, s.clone())));
        }
        match &p.parent {
            ParentOp::Keep => {}
            ParentOp::Open { parent, from } => new_parents.push((id, id_of(parent)?, *from)),
            ParentOp::Replace {
                current,
                parent,
                from,
            } => {
                diesel::update(organisation_parents::table.find(*current))
                    .set(organisation_parents::valid_to.eq(Some(*from)))
                    .execute(conn)?;
                new_parents.push((id, id_of(parent)?, *from));
            }
            ParentOp::Correct { current, parent } => {
                diesel::update(organisation_parents::table.find(*current))
                    .set(organisation_parents::parent_id.eq(id_of(parent)?))
                    .execute(conn)?;
            }
        }
    }

    for (id, setting) in &new_settings {
        diesel::insert_into(organisation_settings::table)
            .values((
                organisation_settings::organisation_id.eq(*id),
                organisation_settings::setting.eq(setting),
            ))
            .execute(conn)?;
    }
    for (id, parent, from) in &new_parents {
        diesel::insert_into(organisation_parents::table)
            .values((
                organisation_parents::organisation_id.eq(*id),
                organisation_parents::parent_id.eq(*parent),
                organisation_parents::valid_from.eq(*from),
            ))
            .execute(conn)?;
    }
    write_audit(conn, actor, &entries)?;
    Ok(report)
}

/// One audit entry per created or updated organisation, in the same transaction.
fn write_audit(
    conn: &mut DbConnection,
    actor: Option<i64>,
    entries: &[(&'static str, i64, Option<&OrgState>, &OrgState)],
) -> Result<(), AppError> {
    if entries.is_empty() {
        return Ok(());
    }
    // A person is named in the log by their email, as elsewhere; the command line is "import".
    let label = match actor {
        Some(user_id) => users::table
            .find(user_id)
            .select(users::email)
            .first::<String>(conn)
            .optional()?
            .unwrap_or_else(|| format!("user {user_id}")),
        None => "import".to_string(),
    };
    let actor = Actor {
        user_id: actor,
        label,
        ip: None,
    };
    for (action, id, before, after) in entries {
        let mut entry = Entry::new(action, "organisation", id)
            .organisation(Some(*id))
            .after(after);
        if let Some(before) = before {
            entry = entry.before(before);
        }
        audit::record(conn, &actor, entry)?;
    }
    Ok(())
}
