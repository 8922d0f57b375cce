//! ICB membership over time: which ICB an organisation belonged to on a date, and how a
//! row's parent ICB opens, replaces or corrects the membership history. Kept together because
//! ICBs merge and reports for past cycles must place organisations where they were then.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;

use super::apply::{OrgState, Stored};
use super::rows::{RegistryRow, RowError};
use super::ICBS_ESTABLISHED;
use crate::db::schema::organisation_parents;
use crate::db::DbConnection;
use crate::error::AppError;

#[derive(Debug, Clone)]
pub(super) enum ParentOp {
    Keep,
    /// A first membership.
    Open {
        parent: String,
        from: NaiveDate,
    },
    /// End the current membership where the new one starts.
    Replace {
        current: i64,
        parent: String,
        from: NaiveDate,
    },
    /// The new parent applies from the same day as the current one: a correction.
    Correct {
        current: i64,
        parent: String,
    },
}
/// The ICB in force for an organisation on a date, if it had one.
pub fn icb_on(
    conn: &mut DbConnection,
    organisation_id: i64,
    date: NaiveDate,
) -> Result<Option<i64>, AppError> {
    use organisation_parents::dsl as p;
    Ok(p::organisation_parents
        .filter(p::organisation_id.eq(organisation_id))
        .filter(p::valid_from.le(date))
        .filter(p::valid_to.is_null().or(p::valid_to.gt(date)))
        .order(p::valid_from.desc())
        .select(p::parent_id)
        .first::<i64>(conn)
        .optional()?)
}

/// An ICB a row may name as its parent: from the file if it is there, else the registry.
pub(super) struct IcbDates {
    pub(super) opened_on: Option<NaiveDate>,
    pub(super) closed_on: Option<NaiveDate>,
}
pub(super) fn plan_parent(
    row: &RegistryRow,
    after: &OrgState,
    existing: Option<&Stored>,
    icbs: &HashMap<&str, IcbDates>,
    today: NaiveDate,
) -> Result<ParentOp, RowError> {
    let Some(parent) = &row.parent_icb else {
        return Ok(ParentOp::Keep);
    };
    let line = row.line;
    let Some(icb) = icbs.get(parent.as_str()) else {
        return Err(RowError::cell(
            line,
            "parent_icb",
            format!(
                "\"{parent}\" is not in the registry; add the ICB to this file or import it first"
            ),
        ));
    };
    let current = existing.and_then(|s| s.parent.map(|(row_id, _, from)| (row_id, from)));
    let current_code = existing.and_then(|s| s.state.parent_icb.as_deref());
    if current_code == Some(parent.as_str()) {
        return Ok(ParentOp::Keep);
    }
    // Which column a date problem belongs to: the one the user wrote, or the ICB whose
    // default date is at fault.
    let date_column = if row.parent_from.is_some() {
        "parent_from"
    } else {
        "parent_icb"
    };
    let op = match current {
        None => {
            let from = row.parent_from.unwrap_or_else(|| {
                after
                    .opened_on
                    .map_or(ICBS_ESTABLISHED, |o| o.max(ICBS_ESTABLISHED))
            });
            ParentOp::Open {
                parent: parent.to_string(),
                from,
            }
        }
        Some((current_row, current_from)) => {
            let from = row.parent_from.unwrap_or(today);
            let current_name = current_code.unwrap_or("the current ICB");
            if from > current_from {
                ParentOp::Replace {
                    current: current_row,
                    parent: parent.to_string(),
                    from,
                }
            } else if from == current_from {
                ParentOp::Correct {
                    current: current_row,
                    parent: parent.to_string(),
                }
            } else {
                let given = if row.parent_from.is_some() {
                    format!("parent_from {from}")
                } else {
                    format!(
                        "without a parent_from the change would apply from today ({from}), which"
                    )
                };
                return Err(RowError::cell(
                    line,
                    date_column,
                    format!(
                        "{given} is before {current_from}, when the current ICB {current_name} \
                         began; a new ICB must apply from a later date (an import adds to the \
                         history, it does not rewrite it)"
                    ),
                ));
            }
        }
    };
    if let ParentOp::Open { from, .. } | ParentOp::Replace { from, .. } = &op {
        if let Some(closed) = icb.closed_on.filter(|closed| closed < from) {
            return Err(RowError::cell(
                line,
                date_column,
                format!(
                    "{parent} closed on {closed}, before this membership would begin on {from}"
                ),
            ));
        }
        if let Some(opened) = icb.opened_on.filter(|opened| opened > from) {
            return Err(RowError::cell(
                line,
                date_column,
                format!("{parent} opened on {opened}, after this membership would begin on {from}"),
            ));
        }
    }
    Ok(op)
}
