//! The organisation registry: who may be assessed, what kind of organisation each is, which
//! care settings it works in, and which ICB it belonged to when.
//!
//! The registry is kept by importing CSV files (`dma org import FILE`, and the admin page).
//! Three promises shape this module:
//!
//! - **All or nothing.** [`parse_csv`] checks the whole file and collects every problem with
//!   its line and column; [`apply`] then checks the rows against the database (a parent ICB
//!   must exist, history cannot be rewritten) *before* writing anything, and runs in the
//!   caller's transaction, so a bad file leaves the registry exactly as it was.
//! - **Idempotent.** A row that matches the database changes nothing and writes no audit
//!   entry, so importing the same file twice is harmless and a re-import of a long file shows
//!   exactly which organisations changed.
//! - **ICB membership has a history.** ICBs merge (in 2026 and 2027), and a report for a
//!   past cycle must place an organisation in the ICB it belonged to then. A new parent
//!   closes the current `organisation_parents` row and opens another; [`icb_on`] answers
//!   "which ICB on this date".
//!
//! # The file
//!
//! A header line naming the columns (in any order, any case) and one organisation per line:
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `ods_code` | yes | the ODS code; it also decides the kind (see [`crate::domain::ods`]) |
//! | `name` | yes | the organisation's name |
//! | `settings` | no | care settings, `;`-separated slugs: `acute;community` |
//! | `region` | no | the NHS England region, as text |
//! | `parent_icb` | no | the ODS code of the ICB the organisation belongs to |
//! | `parent_from` | no | the date from which that ICB applies |
//! | `opened_on`, `closed_on` | no | dates |
//!
//! Dates are `YYYY-MM-DD`. A column left out of the file leaves that field as it is in the
//! registry (a file of `ods_code,name` renames organisations and touches nothing else); a
//! column that is present but blank on a line clears the field. `parent_icb` is the
//! exception: blank means "no change", because a membership only ends when another begins
//! (an organisation that closes keeps its last ICB, which is what reports of its last cycles
//! need).
//!
//! `parent_from`, when blank, defaults to the day the organisation opened or the day ICBs were
//! established (2022-07-01), whichever is later, for an organisation's first ICB; and to the
//! import date when the ICB changes. Valid periods run from `valid_from` (included) to
//! `valid_to` (excluded), so on the day of a merger the new ICB applies. A new ICB must start
//! after the current membership began (an import adds to the history; it does not rewrite
//! it); the same start date corrects the current membership instead, for a parent that was
//! simply entered wrongly. A closed ICB takes no new members after its closing date.
//!
//! One file is one snapshot of the registry, with one parent per organisation. History is
//! built by importing snapshots in date order: the demo registry is `demo/registry-2022.csv`
//! (the ICBs as established) followed by `demo/registry.csv` (after the 2026 merger, with
//! `parent_from` 2026-04-01 on the organisations that moved).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

use crate::audit::{self, Actor, Entry};
use crate::db::schema::{organisation_parents, organisation_settings, organisations, users};
use crate::db::{Db, DbConnection};
use crate::domain::ods::{OdsCode, OrgKind};
use crate::domain::FieldError;
use crate::error::AppError;

/// The largest file accepted: the national registry (about 30,000 organisations) is a few
/// megabytes, so this leaves room without letting an upload exhaust memory.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// Problems reported before the check stops: enough to show a pattern, few enough to read.
pub const MAX_ERRORS: usize = 500;

/// The day integrated care boards were established, the earliest possible `parent_from`.
pub const ICBS_ESTABLISHED: NaiveDate = match NaiveDate::from_ymd_opt(2022, 7, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Every column a registry file may have, in the order the demo files use.
pub const COLUMNS: [&str; 8] = [
    "ods_code",
    "name",
    "settings",
    "region",
    "parent_icb",
    "parent_from",
    "opened_on",
    "closed_on",
];

const REQUIRED_COLUMNS: [&str; 2] = ["ods_code", "name"];
const MAX_NAME_CHARS: usize = 200;
const MAX_REGION_CHARS: usize = 100;
/// Values per `IN (...)` list: well under both backends' limits on bound parameters.
const CHUNK: usize = 400;

/// The demo registry, in the order it must be imported (snapshots in date order).
pub const DEMO_FILES: [(&str, &[u8]); 2] = [
    (
        "demo/registry-2022.csv",
        include_bytes!("../demo/registry-2022.csv"),
    ),
    ("demo/registry.csv", include_bytes!("../demo/registry.csv")),
];

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
    fn file(message: impl Into<String>) -> Self {
        RowError {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn line(line: u64, message: impl Into<String>) -> Self {
        RowError {
            line: Some(line),
            column: None,
            message: message.into(),
        }
    }

    fn cell(line: u64, column: &str, message: impl Into<String>) -> Self {
        RowError {
            line: Some(line),
            column: Some(column.to_string()),
            message: message.into(),
        }
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

// ---------------------------------------------------------------------------------------
// Reading the file (pure)
// ---------------------------------------------------------------------------------------

/// Reads and checks a registry file. Either every row is well formed, or the answer lists
/// every problem (up to [`MAX_ERRORS`]) with its line and column; nothing here touches the
/// database, so it also serves a "check the file" preview.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<RegistryRow>, Vec<RowError>> {
    let text = decode(bytes).map_err(|e| vec![e])?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut lines = Lines::new(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => return Err(vec![csv_error(&e, &mut lines)]),
        None => return Err(vec![RowError::file("the file is empty")]),
    };
    let columns = read_header(&header, lines.of(header.position()))?;

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<OdsCode, u64> = HashMap::new();
    for record in records {
        if errors.len() >= MAX_ERRORS {
            errors.push(RowError::file(format!(
                "stopped after {MAX_ERRORS} problems; correct these and check the file again"
            )));
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(csv_error(&e, &mut lines));
                continue;
            }
        };
        // Spreadsheets export trailing rows of empty cells; they are not organisations.
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let line = lines.of(record.position());
        match read_row(&columns, &record, line) {
            Ok(row) => {
                if let Some(first) = seen.get(&row.ods_code) {
                    errors.push(RowError::cell(
                        line,
                        "ods_code",
                        format!(
                            "{} is already on line {first}; list each organisation once",
                            row.ods_code
                        ),
                    ));
                } else {
                    seen.insert(row.ods_code.clone(), line);
                    rows.push(row);
                }
            }
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if !errors.is_empty() {
        errors.truncate(MAX_ERRORS + 1);
        return Err(errors);
    }
    if rows.is_empty() {
        return Err(vec![RowError::file(
            "the file has a header line but no organisations; add one line per organisation \
             below the header",
        )]);
    }
    Ok(rows)
}

/// The file as text, or why it is not a CSV file we can read.
fn decode(bytes: &[u8]) -> Result<&str, RowError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(RowError::file(format!(
            "the file is larger than the {} limit; split it into smaller files (an ICB must be \
             imported before, or with, the organisations that name it)",
            crate::error::human_bytes(MAX_FILE_BYTES)
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(RowError::file("the file is empty"));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(RowError::file(
            "the file is a spreadsheet workbook (such as .xlsx), not CSV; save it from the \
             spreadsheet as \"CSV UTF-8\" and import that",
        ));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(RowError::file(
            "the file is UTF-16 text; save it as \"CSV UTF-8\" and import that",
        ));
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(RowError::line(
            line_of(bytes, at),
            "the file contains binary data, not text; import a CSV file",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        RowError::line(
            line_of(bytes, e.valid_up_to()),
            "this line is not UTF-8 text; save the file as \"CSV UTF-8\" and import it again",
        )
    })
}

fn line_of(bytes: &[u8], at: usize) -> u64 {
    let before = bytes.get(..at).unwrap_or(bytes);
    before.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

/// Line numbers of records. The reader's own count is off by one after a skipped blank
/// line, so lines are counted here from the record's byte offset (offsets only grow, so the
/// whole file is scanned once).
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Lines {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line a record starts on, skipping the blank lines the reader passed over.
    fn of(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else {
            return self.line;
        };
        let mut start = usize::try_from(position.byte()).unwrap_or(usize::MAX);
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let start = start.min(self.text.len());
        if start > self.at {
            let passed = self.text.get(self.at..start).unwrap_or_default();
            self.line += passed.iter().filter(|&&b| b == b'\n').count() as u64;
            self.at = start;
        }
        self.line
    }
}

fn csv_error(e: &csv::Error, lines: &mut Lines<'_>) -> RowError {
    let position = match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, .. } => pos.as_ref(),
        _ => e.position(),
    };
    let line = lines.of(position);
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => RowError::line(
            line,
            format!(
                "this line has {len} value(s) but the header has {expected_len} column(s); \
                 a value that contains a comma must be in double quotes"
            ),
        ),
        _ => RowError::line(line, format!("cannot read this line as CSV: {e}")),
    }
}

/// Column name to position, with every problem in the header reported at once.
fn read_header(
    header: &csv::StringRecord,
    line: u64,
) -> Result<BTreeMap<&'static str, usize>, Vec<RowError>> {
    let names: Vec<String> = header
        .iter()
        .map(|raw| raw.trim().to_ascii_lowercase())
        .collect();
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n == c))
        .collect();
    // A file without a header starts with an organisation; say so rather than list its
    // values as unknown columns.
    if !missing.is_empty() && header.get(0).is_some_and(|c| OdsCode::parse(c).is_ok()) {
        return Err(vec![RowError::line(
            line,
            format!(
                "the first line must name the columns, but it looks like an organisation; add \
                 a header line such as {}",
                COLUMNS.join(",")
            ),
        )]);
    }
    let mut columns: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, (name, raw)) in names.iter().zip(header.iter()).enumerate() {
        if name.is_empty() {
            errors.push(RowError::line(
                line,
                format!(
                    "column {} of the header has no name; name it or delete the column",
                    i + 1
                ),
            ));
            continue;
        }
        match COLUMNS.iter().find(|c| *c == name) {
            Some(&known) => {
                if let Some(first) = columns.insert(known, i) {
                    errors.push(RowError::cell(
                        line,
                        known,
                        format!(
                            "the column appears twice (columns {} and {}); keep one",
                            first + 1,
                            i + 1
                        ),
                    ));
                }
            }
            None => {
                let hint = crate::domain::did_you_mean(name, &COLUMNS)
                    .map(|c| format!(" (did you mean {c}?)"))
                    .unwrap_or_default();
                let raw = shown(raw.trim());
                errors.push(RowError::cell(
                    line,
                    &raw,
                    format!(
                        "\"{raw}\" is not a registry column{hint}; the columns are {}",
                        COLUMNS.join(", ")
                    ),
                ));
            }
        }
    }
    if !missing.is_empty() {
        errors.push(RowError::line(
            line,
            format!(
                "the header has no {} column{}; the first line must name the columns, such as \
                 {}",
                missing.join(" or "),
                if missing.len() > 1 { "s" } else { "" },
                COLUMNS.join(",")
            ),
        ));
    }
    if errors.is_empty() {
        Ok(columns)
    } else {
        Err(errors)
    }
}

/// One data line, checked cell by cell; every problem on the line is reported.
fn read_row(
    columns: &BTreeMap<&'static str, usize>,
    record: &csv::StringRecord,
    line: u64,
) -> Result<RegistryRow, Vec<RowError>> {
    let cell = |name: &str| -> Option<&str> {
        columns
            .get(name)
            .map(|&i| record.get(i).unwrap_or("").trim())
    };
    let mut errors = Vec::new();

    let ods_code = match OdsCode::parse(cell("ods_code").unwrap_or("")) {
        Ok(code) => Some(code),
        Err(message) => {
            errors.push(RowError::cell(line, "ods_code", message));
            None
        }
    };

    let name = cell("name").unwrap_or("");
    if name.is_empty() {
        errors.push(RowError::cell(line, "name", "a name is required"));
    } else if let Err(message) = check_text(name, MAX_NAME_CHARS) {
        errors.push(RowError::cell(line, "name", message));
    }

    let settings = cell("settings").map(|text| {
        let mut set = BTreeSet::new();
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let slug = item.to_ascii_lowercase();
            if is_slug(&slug) {
                set.insert(slug);
            } else {
                errors.push(RowError::cell(
                    line,
                    "settings",
                    format!(
                        "\"{}\" is not a care setting: use lower-case letters, digits and \
                         hyphens (like mental-health), and separate settings with ;",
                        shown(item)
                    ),
                ));
            }
        }
        set
    });

    let region = cell("region").map(|text| {
        if text.is_empty() {
            None
        } else if let Err(message) = check_text(text, MAX_REGION_CHARS) {
            errors.push(RowError::cell(line, "region", message));
            None
        } else {
            Some(text.to_string())
        }
    });

    let parent_icb = match cell("parent_icb").filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match OdsCode::parse(text) {
            Err(message) => {
                errors.push(RowError::cell(line, "parent_icb", message));
                None
            }
            Ok(code) if code.kind() != OrgKind::Icb => {
                errors.push(RowError::cell(
                    line,
                    "parent_icb",
                    format!(
                        "{code} is the code of {} {}; the parent must be an ICB (Q followed \
                         by 2 letters or digits, like QHM)",
                        article(code.kind()),
                        code.kind().label()
                    ),
                ));
                None
            }
            Ok(code) => {
                if ods_code.as_ref().is_some_and(|c| c.kind() == OrgKind::Icb) {
                    errors.push(RowError::cell(
                        line,
                        "parent_icb",
                        "an ICB has no parent ICB; leave parent_icb blank on this line",
                    ));
                    None
                } else {
                    Some(code)
                }
            }
        },
    };

    let mut date = |column: &str| -> Option<Option<NaiveDate>> {
        cell(column).map(|text| {
            if text.is_empty() {
                return None;
            }
            match parse_date(text) {
                Ok(d) => Some(d),
                Err(message) => {
                    errors.push(RowError::cell(line, column, message));
                    None
                }
            }
        })
    };
    let parent_from = date("parent_from").flatten();
    let opened_on = date("opened_on");
    let closed_on = date("closed_on");

    if parent_from.is_some() && parent_icb.is_none() && cell("parent_icb").unwrap_or("").is_empty()
    {
        errors.push(RowError::cell(
            line,
            "parent_from",
            "parent_from is the date a parent ICB applies from; give the ICB in parent_icb or \
             leave parent_from blank",
        ));
    }
    errors.extend(date_order(
        line,
        opened_on.flatten(),
        closed_on.flatten(),
        parent_from,
    ));

    match ods_code {
        Some(ods_code) if errors.is_empty() => Ok(RegistryRow {
            line,
            ods_code,
            name: name.to_string(),
            settings,
            region,
            parent_icb,
            parent_from,
            opened_on,
            closed_on,
        }),
        _ => Err(errors),
    }
}

/// Dates that contradict each other. Checked on the file's values and again, in
/// [`apply`], on the values the organisation will have once the registry's are merged in.
fn date_order(
    line: u64,
    opened_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
    parent_from: Option<NaiveDate>,
) -> Vec<RowError> {
    let mut errors = Vec::new();
    if let (Some(opened), Some(closed)) = (opened_on, closed_on) {
        if closed < opened {
            errors.push(RowError::cell(
                line,
                "closed_on",
                format!("closed_on {closed} is before opened_on {opened}"),
            ));
        }
    }
    if let Some(from) = parent_from {
        if from < ICBS_ESTABLISHED {
            errors.push(RowError::cell(
                line,
                "parent_from",
                format!(
                    "ICBs were established on {ICBS_ESTABLISHED}; parent_from {from} is earlier"
                ),
            ));
        } else if let Some(opened) = opened_on.filter(|opened| from < *opened) {
            errors.push(RowError::cell(
                line,
                "parent_from",
                format!("parent_from {from} is before the organisation opened on {opened}"),
            ));
        }
    }
    errors
}

fn article(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Trust | OrgKind::Icb => "an",
        OrgKind::GpPractice | OrgKind::Pcn | OrgKind::SocialCare => "a",
    }
}

/// A name or region: one line of printable text, not too long.
fn check_text(text: &str, max: usize) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > max {
        return Err(format!("is {chars} characters long; the limit is {max}"));
    }
    if text.chars().any(char::is_control) {
        return Err("must be one line of text, without tabs or line breaks".to_string());
    }
    Ok(())
}

/// A care setting's identifier: `^[a-z][a-z0-9-]{0,62}$`, as in questionnaire files.
fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

/// Strictly `YYYY-MM-DD`; a day-first date gets a message that spells out the fix.
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let b = text.as_bytes();
    let iso_shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if iso_shape {
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| format!("{text} is not a date in the calendar"));
    }
    let day_first = text.len() <= 10
        && text.matches('/').count() == 2
        && text.chars().all(|c| c.is_ascii_digit() || c == '/');
    if day_first {
        if let Ok(d) = NaiveDate::parse_from_str(text, "%d/%m/%Y") {
            return Err(format!(
                "\"{text}\" is not in YYYY-MM-DD form; for {} write {}",
                d.format("%-d %B %Y"),
                d.format("%Y-%m-%d")
            ));
        }
    }
    Err(format!(
        "\"{}\" is not a date: write dates as YYYY-MM-DD (like 2026-04-01)",
        shown(text)
    ))
}

/// Input as quoted back in a message: cut short when long.
fn shown(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

// ---------------------------------------------------------------------------------------
// Applying the rows (database)
// ---------------------------------------------------------------------------------------

/// An organisation as the registry holds it; also the before and after of an audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct OrgState {
    ods_code: String,
    name: String,
    kind: String,
    region: Option<String>,
    opened_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
    settings: BTreeSet<String>,
    parent_icb: Option<String>,
    parent_from: Option<NaiveDate>,
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
struct Stored {
    id: i64,
    state: OrgState,
    /// The latest membership: its row id, parent id and start.
    parent: Option<(i64, i64, NaiveDate)>,
}

#[derive(Debug, Clone)]
enum ParentOp {
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
fn apply_or_refuse(
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

/// `id, ods_code, name, kind, region, opened_on, closed_on` of `organisations`.
type StoredColumns = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDate>,
    Option<NaiveDate>,
);

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

/// An ICB a row may name as its parent: from the file if it is there, else the registry.
struct IcbDates {
    opened_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
}

/// Decides, row by row, what to write; refuses rows that the registry contradicts.
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
            errors.push(RowError::cell(
                line,
                "ods_code",
                format!(
                    "{} is already on line {first}; list each organisation once",
                    row.ods_code
                ),
            ));
            continue;
        }
        let existing = stored.get(row.ods_code.as_str()).cloned();
        // The file's dates were checked in parse_csv; this catches contradictions with the
        // dates the registry already holds.
        let mut row_errors = date_order(line, after.opened_on, after.closed_on, row.parent_from);
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

fn plan_parent(
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

/// Writes the plan. Runs only after every row has been accepted.
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

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

/// Checks and imports a registry file in one transaction. Parsing runs on the blocking pool
/// (a large file takes a moment); the database work runs under [`Db::write`].
pub async fn import_file(
    db: &Db,
    bytes: Vec<u8>,
    actor: Option<i64>,
) -> Result<ImportReport, ImportError> {
    let rows = actix_web::web::block(move || parse_csv(&bytes))
        .await
        .map_err(AppError::from)?
        .map_err(ImportError::Rows)?;
    let today = Utc::now().date_naive();
    db.write(move |conn| apply_or_refuse(conn, &rows, actor, today))
        .await?
        .map_err(ImportError::Rows)
}

/// Imports the demo registry (the snapshots in date order), as the embedded default does.
pub async fn import_demo(db: &Db) -> Result<Vec<ImportReport>, ImportError> {
    let mut reports = Vec::new();
    for (_, bytes) in DEMO_FILES {
        reports.push(import_file(db, bytes.to_vec(), None).await?);
    }
    Ok(reports)
}

/// `dma org import FILE`: the report as JSON on stdout; each problem on its own line on
/// stderr, and a failure exit code, when the file is refused.
pub async fn import_command(
    settings: &crate::config::Settings,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let bytes = read_limited(path)?;
    let db = crate::web::open_database(settings).await?;
    match import_file(&db, bytes, None).await {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(ImportError::Rows(errors)) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "error: {} was not imported ({} problem{}); the registry is unchanged",
                path.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
        Err(ImportError::App(e)) => Err(e.into()),
    }
}

/// Reads at most one byte more than the limit, so a huge file is refused without being
/// loaded.
fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEADER: &str = "ods_code,name,settings,region,parent_icb,parent_from,opened_on,closed_on";

    fn parse(text: &str) -> Result<Vec<RegistryRow>, Vec<RowError>> {
        parse_csv(text.as_bytes())
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .expect_err("the file should be refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_full_row_is_read() {
        let rows = parse(&format!(
            "{HEADER}\nrj1 ,\"Northfield Hospitals, Teaching\",Acute; community;,London,qz1,\
             2023-01-01,1994-04-01,\n"
        ))
        .unwrap();
        let [row] = rows.as_slice() else {
            panic!("{rows:?}")
        };
        assert_eq!(row.line, 2);
        assert_eq!(row.ods_code.as_str(), "RJ1");
        assert_eq!(row.kind(), OrgKind::Trust);
        assert_eq!(row.name, "Northfield Hospitals, Teaching");
        let settings: Vec<&str> = row
            .settings
            .as_ref()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(settings, ["acute", "community"]);
        assert_eq!(row.region, Some(Some("London".to_string())));
        assert_eq!(row.parent_icb.as_ref().unwrap().as_str(), "QZ1");
        assert_eq!(row.parent_from, NaiveDate::from_ymd_opt(2023, 1, 1));
        assert_eq!(row.opened_on, Some(NaiveDate::from_ymd_opt(1994, 4, 1)));
        assert_eq!(row.closed_on, Some(None));
    }

    #[test]
    fn columns_may_come_in_any_order_and_be_left_out() {
        let rows = parse("\u{feff}Name,ODS_CODE\r\nMoorside Surgery,A99001\r\n").unwrap();
        let row = &rows[0];
        assert_eq!(row.ods_code.as_str(), "A99001");
        assert_eq!(row.settings, None);
        assert_eq!(row.region, None);
        assert_eq!(row.opened_on, None);
    }

    #[test]
    fn every_bad_cell_is_reported_with_line_and_column() {
        let text = format!(
            "{HEADER}\n\
             RJ1,Good Trust,acute,,,,,\n\
             R1,,acute,,,,,\n\
             RJ2,Trust Two,Mental Health,,RJ1,,01/04/2020,2019-02-30\n\
             QZ1,An ICB,,,QZ2,,,\n\
             A99001,Surgery,,,,2022-07-01,,\n"
        );
        let e = errors(&text);
        assert_eq!(
            e,
            [
                "line 3, column ods_code: \"R1\" is not an ODS code: trust codes are R followed \
                 by 2 letters or digits (like RJ1)",
                "line 3, column name: a name is required",
                "line 4, column settings: \"Mental Health\" is not a care setting: use \
                 lower-case letters, digits and hyphens (like mental-health), and separate \
                 settings with ;",
                "line 4, column parent_icb: RJ1 is the code of an NHS trust; the parent must be \
                 an ICB (Q followed by 2 letters or digits, like QHM)",
                "line 4, column opened_on: \"01/04/2020\" is not in YYYY-MM-DD form; for 1 \
                 April 2020 write 2020-04-01",
                "line 4, column closed_on: 2019-02-30 is not a date in the calendar",
                "line 5, column parent_icb: an ICB has no parent ICB; leave parent_icb blank \
                 on this line",
                "line 6, column parent_from: parent_from is the date a parent ICB applies \
                 from; give the ICB in parent_icb or leave parent_from blank",
            ]
        );
    }

    #[test]
    fn dates_must_agree() {
        let e = errors(&format!(
            "{HEADER}\nRJ1,T,,,QZ1,2021-01-01,,\nRJ2,T,,,QZ1,2023-01-01,2024-01-01,2023-06-01\n"
        ));
        assert_eq!(
            e,
            [
                "line 2, column parent_from: ICBs were established on 2022-07-01; parent_from \
                 2021-01-01 is earlier",
                "line 3, column closed_on: closed_on 2023-06-01 is before opened_on 2024-01-01",
                "line 3, column parent_from: parent_from 2023-01-01 is before the organisation \
                 opened on 2024-01-01",
            ]
        );
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_still_counted() {
        let e = errors("ods_code,name\n\nRJ1,A\n\n,\nR1,B\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("line 6, column ods_code"), "{}", e[0]);
        assert_eq!(parse("ods_code,name\n\nRJ1,A\n").unwrap()[0].line, 3);
        assert_eq!(
            parse("ods_code,name\r\n\r\n\r\nRJ1,A\r\n").unwrap()[0].line,
            4
        );
        // A line break inside quotes is counted: the next record starts two lines on.
        let e = errors("ods_code,name\nRJ1,\"A\nB\"\nR1,C\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("line 2, column name: must be one line"),
            "{}",
            e[0]
        );
        assert!(e[1].starts_with("line 4, column ods_code"), "{}", e[1]);
        let e = errors("\n\nods_code,nmae\nRJ1,A\n");
        assert!(e[0].starts_with("line 3, column nmae"), "{}", e[0]);
        let e = errors("ods_code,name\n\nRJ1,A,B\n");
        assert!(e[0].starts_with("line 3: this line has 3"), "{}", e[0]);
    }

    #[test]
    fn duplicates_name_the_first_line() {
        let e = errors("ods_code,name\nRJ1,A\nRJ2,B\nrj1,C\n");
        assert_eq!(
            e,
            ["line 4, column ods_code: RJ1 is already on line 2; list each organisation once"]
        );
    }

    #[test]
    fn header_problems_are_named() {
        let e = errors("ods_code,name,regoin,colour\nRJ1,A,x,y\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(
                "line 1, column regoin: \"regoin\" is not a registry column (did you mean region?)"
            ),
            "{}",
            e[0]
        );
        assert!(
            e[1].contains("\"colour\" is not a registry column; the columns are ods_code, name"),
            "{}",
            e[1]
        );
        let e = errors("name,settings\nX,acute\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].contains("the header has no ods_code column"),
            "{}",
            e[0]
        );
        let e = errors("RJ1,Northfield\nRJ2,Southfield\n");
        assert!(e[0].contains("looks like an organisation"), "{}", e[0]);
        let e = errors("ods_code,name,name\nRJ1,A,B\n");
        assert!(
            e[0].contains("column name: the column appears twice (columns 2 and 3)"),
            "{}",
            e[0]
        );
        let e = errors("ods_code,name,\nRJ1,A,\n");
        assert!(
            e[0].contains("column 3 of the header has no name"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn ragged_lines_are_reported_and_reading_continues() {
        let e = errors("ods_code,name\nRJ1,Northfield, Teaching\nRJ2,B\nR1,C\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("line 2: this line has 3 value(s) but the header has 2"),
            "{}",
            e[0]
        );
        assert!(e[1].starts_with("line 4, column ods_code"), "{}", e[1]);
    }

    #[test]
    fn hostile_files_are_refused() {
        assert_eq!(errors(""), ["the file is empty"]);
        assert_eq!(errors(" \n\r\n"), ["the file is empty"]);
        assert!(errors("ods_code,name\n")[0].contains("no organisations"));
        assert!(errors("ods_code,name\n,\n ,\n")[0].contains("no organisations"));
        let binary = parse_csv(b"ods_code,name\nRJ1,\x00\x01\x02").unwrap_err();
        assert_eq!(
            binary[0].to_string(),
            "line 2: the file contains binary data, not text; import a CSV file"
        );
        let latin1 = parse_csv(b"ods_code,name\nRJ1,Caf\xe9\n").unwrap_err();
        assert!(latin1[0]
            .to_string()
            .starts_with("line 2: this line is not UTF-8"));
        assert!(parse_csv(b"PK\x03\x04rest").unwrap_err()[0]
            .message
            .contains("workbook"));
        assert!(parse_csv(b"\xff\xfeo\x00d\x00").unwrap_err()[0]
            .message
            .contains("UTF-16"));
        let huge = vec![b'a'; MAX_FILE_BYTES + 1];
        assert!(parse_csv(&huge).unwrap_err()[0]
            .message
            .contains("larger than the 20 MB limit"));
    }

    #[test]
    fn a_flood_of_problems_is_cut_short() {
        let mut text = String::from("ods_code,name\n");
        for _ in 0..2000 {
            text.push_str("bad,\n");
        }
        let e = parse(&text).unwrap_err();
        assert!(e.len() <= MAX_ERRORS + 1);
        assert!(e.last().unwrap().message.starts_with("stopped after"));
    }

    #[test]
    fn the_demo_files_are_valid() {
        for (name, bytes) in DEMO_FILES {
            let rows = parse_csv(bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(rows.len() > 20, "{name}");
        }
    }

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
