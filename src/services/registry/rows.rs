//! What an import is made of: the checked rows, the problems found in them (each with its
//! line and column), and the report of what changed. Shared by the reading of the file and the
//! writing of its rows.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::ods::{OdsCode, OrgKind};
use crate::domain::FieldError;
use crate::error::AppError;

/// One organisation as the file describes it, checked. `Option<Option<_>>` fields tell a
/// column missing from the file (`None`: keep what the registry holds) from a blank cell
/// (`Some(None)`: clear it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryRow {
    /// The line of the file the row starts on (the header is line 1).
    pub line: u64,
    pub ods_code: OdsCode,
    pub name: String,
    pub settings: Option<BTreeSet<String>>,
    pub region: Option<Option<String>>,
    /// `None`: no change to the organisation's ICB.
    pub parent_icb: Option<OdsCode>,
    pub parent_from: Option<NaiveDate>,
    pub opened_on: Option<Option<NaiveDate>>,
    pub closed_on: Option<Option<NaiveDate>>,
}

impl RegistryRow {
    pub fn kind(&self) -> OrgKind {
        self.ods_code.kind()
    }
}

/// A problem with the file: where (line and column, when it has one) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl RowError {
    pub(super) fn file(message: impl Into<String>) -> Self {
        RowError {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(super) fn line(line: u64, message: impl Into<String>) -> Self {
        RowError {
            line: Some(line),
            column: None,
            message: message.into(),
        }
    }

    pub(super) fn cell(line: u64, column: &str, message: impl Into<String>) -> Self {
        RowError {
            line: Some(line),
            column: Some(column.to_string()),
            message: message.into(),
        }
    }

    /// An organisation listed a second time, on `line`, after `first`: the file's check and the
    /// database's say it in the same words.
    pub(super) fn repeated(line: u64, ods_code: &OdsCode, first: u64) -> Self {
        RowError::cell(
            line,
            "ods_code",
            format!("{ods_code} is already on line {first}; list each organisation once"),
        )
    }

    /// Where the problem is, as the messages print it: `line 4, column parent_icb`.
    pub fn location(&self) -> String {
        match (self.line, &self.column) {
            (Some(line), Some(column)) => format!("line {line}, column {column}"),
            (Some(line), None) => format!("line {line}"),
            (None, Some(column)) => format!("column {column}"),
            (None, None) => String::new(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = self.location();
        if location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{location}: {}", self.message)
        }
    }
}

impl From<RowError> for FieldError {
    fn from(e: RowError) -> Self {
        FieldError::new(e.location(), e.message)
    }
}

/// What an import did. Every row is counted once in `created`, `updated` or `unchanged`;
/// `parent_changes` counts the existing organisations among `updated` whose ICB changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub parent_changes: usize,
}

/// Why an import did not happen: problems in the file, each with its line, or a fault.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} problem(s) in the file; nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<ImportError> for AppError {
    /// For callers that answer with an [`AppError`]: the rows become field errors whose
    /// path is the line and column.
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Rows(rows) => {
                AppError::Validation(rows.into_iter().map(FieldError::from).collect())
            }
            ImportError::App(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_errors_become_field_errors() {
        let e = RowError::cell(4, "parent_icb", "\"Q99\" is not in the registry");
        assert_eq!(
            e.to_string(),
            "line 4, column parent_icb: \"Q99\" is not in the registry"
        );
        let f = FieldError::from(e);
        assert_eq!(f.path, "line 4, column parent_icb");
        assert_eq!(
            FieldError::from(RowError::file("the file is empty")).path,
            "(document)"
        );
    }
}
