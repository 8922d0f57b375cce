//! The exports' rows and the three ways of writing them. One row source ([`next_rows`])
//! reads a page of submitted assessments at a time and turns it into [`Cell`]s; an
//! [`ExportWriter`] writes those rows as CSV, JSON or XLSX. So the three formats cannot
//! disagree about what a row holds, and none of them holds more than a page in memory:
//! CSV and JSON go out as each page is written, and XLSX rows go to a constant-memory
//! worksheet (flushed to a temporary file row by row) and the finished file is streamed.
//! The columns are documented in docs/exports.md.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use chrono::NaiveDateTime;

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::answer_text::describe_answer;
use super::filters::Filters;
use super::members::{
    domain_scores_of_sets, icbs_by_id, load_members, parse_report, parse_snapshot, stored_sets,
    Member, StoredDomain, Versions, Window,
};
use super::scope::Scope;
use super::{ANSWERS_EXPORT_PAGE, SCORES_EXPORT_PAGE};
use crate::db::DbConnection;
use crate::domain::answers::{self as domain_answers, Answer};
use crate::domain::questionnaire::Scale;
use crate::error::AppError;
use crate::services::questionnaires::StoredVersion;

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// One row per organisation (assessment) and domain.
    Scores,
    /// One row per organisation (assessment) and question.
    Answers,
}

/// How an export is written; the rows are the same in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
    Xlsx,
}

impl ExportKind {
    /// The file name's stem, and the XLSX worksheet's name.
    pub fn name(self) -> &'static str {
        match self {
            ExportKind::Scores => "scores",
            ExportKind::Answers => "answers",
        }
    }

    /// The columns, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            ExportKind::Scores => &SCORES_COLUMNS,
            ExportKind::Answers => &ANSWERS_COLUMNS,
        }
    }

    /// Assessments read per page.
    fn page_size(self) -> i64 {
        match self {
            ExportKind::Scores => SCORES_EXPORT_PAGE,
            ExportKind::Answers => ANSWERS_EXPORT_PAGE,
        }
    }
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
            ExportFormat::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }
}

/// The columns of the scores export, in order (documented in docs/exports.md).
pub const SCORES_COLUMNS: [&str; 23] = [
    "assessment_id",
    "cycle",
    "organisation_ods_code",
    "organisation_name",
    "setting",
    "icb_ods_code",
    "icb_name",
    "region",
    "questionnaire",
    "questionnaire_version",
    "submission_reference",
    "submitted_at",
    "late",
    "domain_key",
    "domain_title",
    "domain_score",
    "domain_band",
    "questions_counted",
    "overall_score",
    "overall_band",
    "scale",
    "review_state",
    "section_review_state",
];

/// The columns of the answers export, in order (documented in docs/exports.md).
pub const ANSWERS_COLUMNS: [&str; 23] = [
    "assessment_id",
    "cycle",
    "organisation_ods_code",
    "organisation_name",
    "setting",
    "icb_ods_code",
    "region",
    "questionnaire",
    "questionnaire_version",
    "submission_reference",
    "domain_key",
    "question_key",
    "question_type",
    "answer",
    "answer_text",
    "not_applicable",
    "raw_score",
    "normalised_score",
    "weight",
    "counted",
    "reason",
    "evidence_count",
    "evidence",
];

/// A cell of an export row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Num(f64),
    Bool(bool),
    Text(String),
    /// A moment in UTC: ISO 8601 text in CSV and JSON, a real date-time in XLSX (so a
    /// spreadsheet sorts and filters it as a date, not as text).
    Time(NaiveDateTime),
}

impl Cell {
    fn opt_num(x: Option<f64>) -> Cell {
        x.map_or(Cell::Null, Cell::Num)
    }

    fn opt_text(x: Option<&str>) -> Cell {
        x.map_or(Cell::Null, |s| Cell::Text(s.to_string()))
    }

    fn json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::from(*i),
            Cell::Num(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Time(t) => Value::String(iso_time(*t)),
        }
    }

    /// The CSV form: numbers at full precision (shortest round-trip form), booleans as
    /// `true`/`false`, null as empty. Text that a spreadsheet would run as a formula
    /// (starting `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`.
    /// Borrowed where the cell is already text, so writing a row copies no strings.
    fn csv(&self) -> Cow<'_, str> {
        match self {
            Cell::Null => Cow::Borrowed(""),
            Cell::Int(i) => Cow::Owned(i.to_string()),
            Cell::Num(x) => Cow::Owned(format!("{x}")),
            Cell::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Cell::Time(t) => Cow::Owned(iso_time(*t)),
            Cell::Text(s) => {
                if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    Cow::Owned(format!("'{s}"))
                } else {
                    Cow::Borrowed(s)
                }
            }
        }
    }
}

/// The `answer` column: the stored answer as a plain value a spreadsheet can filter on, not
/// JSON text (`partial`, not `"partial"`; `20`, not `20.0`): an option key or yes/no as text or
/// TRUE/FALSE, a number as a number, the options ticked as their keys joined by `;`, and `na`
/// for "not applicable" (the `not_applicable` column says the same).
fn answer_cell(stored: &serde_json::Value) -> Cell {
    use serde_json::Value;
    match stored {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => n.as_f64().map_or(Cell::Null, Cell::Num),
        Value::String(s) => Cell::Text(s.clone()),
        Value::Array(items) => Cell::Text(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(";"),
        ),
        Value::Object(o) if o.get("na") == Some(&Value::Bool(true)) => Cell::Text("na".into()),
        other => Cell::Text(other.to_string()),
    }
}

fn iso_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn scale_text(s: Scale) -> String {
    format!("{}-{}", s.min, s.max)
}

/// The cells both exports start with: the assessment, its organisation and groups in the
/// cycle (the scores export also names the ICB), the question set and the submission.
fn assessment_cells(
    m: &Member,
    icb: Option<&super::filters::Icb>,
    version: &crate::services::questionnaires::StoredVersion,
    icb_name: bool,
) -> Vec<Cell> {
    let mut row = vec![
        Cell::Int(m.assessment_id),
        Cell::Text(m.cycle_label.clone()),
        Cell::Text(m.ods_code.clone()),
        Cell::Text(m.name.clone()),
        Cell::Text(m.setting.clone()),
        Cell::opt_text(icb.map(|i| i.ods_code.as_str())),
    ];
    if icb_name {
        row.push(Cell::opt_text(icb.map(|i| i.name.as_str())));
    }
    row.extend([
        Cell::opt_text(m.region.as_deref()),
        Cell::Text(version.summary.key.clone()),
        Cell::Text(version.summary.version.clone()),
        Cell::opt_text(m.reference.as_deref()),
    ]);
    row
}

/// One page of an export as read from the database: everything its rows are made of. Making
/// the rows (parsing each submission's stored report and answers, the larger part of an
/// export's work) needs no connection, so it can run on its own thread while the next page
/// is read and the last one written ([`ExportPage::rows`]).
pub struct ExportPage {
    members: Vec<Member>,
    icbs: HashMap<i64, super::filters::Icb>,
    versions: HashMap<i64, Arc<StoredVersion>>,
    detail: Detail,
}

/// What each kind of export reads beyond the members.
enum Detail {
    Scores {
        scores: HashMap<i64, Vec<StoredDomain>>,
        review: crate::services::review::PageStates,
    },
    Answers {
        /// Each score set's stored report and answers snapshot (JSON text).
        stored: HashMap<i64, (String, String)>,
        evidence: HashMap<(i64, String), Vec<String>>,
    },
}

/// Read what one page of members' rows are made of.
fn read_page(
    conn: &mut DbConnection,
    kind: ExportKind,
    members: Vec<Member>,
    versions: &mut Versions,
) -> Result<ExportPage, AppError> {
    let icbs = icbs_by_id(conn, members.iter().filter_map(|m| m.icb_id))?;
    let set_ids: Vec<i64> = members.iter().filter_map(|m| m.score_set_id).collect();
    let ids: Vec<i64> = members.iter().map(|m| m.assessment_id).collect();
    let mut page_versions = HashMap::new();
    for m in members.iter().filter(|m| m.score_set_id.is_some()) {
        if let std::collections::hash_map::Entry::Vacant(e) = page_versions.entry(m.version_id) {
            e.insert(versions.get(conn, m.version_id)?);
        }
    }
    let detail = match kind {
        ExportKind::Scores => Detail::Scores {
            scores: domain_scores_of_sets(conn, &set_ids)?,
            review: crate::services::review::PageStates::load(conn, &ids)?,
        },
        ExportKind::Answers => Detail::Answers {
            stored: stored_sets(conn, &set_ids)?,
            evidence: evidence_of(conn, &ids)?,
        },
    };
    Ok(ExportPage {
        members,
        icbs,
        versions: page_versions,
        detail,
    })
}

impl ExportPage {
    /// The page's export rows.
    pub fn rows(&self) -> Result<Vec<Vec<Cell>>, AppError> {
        let mut out = Vec::new();
        let version_of = |m: &Member| {
            self.versions.get(&m.version_id).cloned().ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "question set {} of assessment {} was not read",
                    m.version_id,
                    m.assessment_id
                ))
            })
        };
        match &self.detail {
            Detail::Scores { scores, review } => {
                for m in &self.members {
                    let Some(set) = m.score_set_id else { continue };
                    let version = version_of(m)?;
                    let icb = m.icb_id.and_then(|i| self.icbs.get(&i));
                    let stored = scores.get(&set).map(Vec::as_slice).unwrap_or_default();
                    let review_state = review.assessment(
                        m.assessment_id,
                        version.questionnaire.domains.iter().map(|d| d.key.as_str()),
                    );
                    for d in &version.questionnaire.domains {
                        let found = stored.iter().find(|(k, ..)| *k == d.key);
                        let mut row = assessment_cells(m, icb, &version, true);
                        row.extend([
                            m.submitted_at.map_or(Cell::Null, Cell::Time),
                            Cell::Bool(m.late),
                            Cell::Text(d.key.clone()),
                            Cell::Text(d.title.clone()),
                            Cell::opt_num(found.and_then(|f| f.1)),
                            Cell::opt_text(found.and_then(|f| f.2.as_deref())),
                            Cell::Int(found.map_or(0, |f| i64::from(f.3))),
                            Cell::opt_num(m.overall),
                            Cell::opt_text(m.overall_band.as_deref()),
                            Cell::Text(scale_text(version.questionnaire.scale)),
                            Cell::Text(review_state.as_str().to_string()),
                            Cell::Text(
                                review.section(m.assessment_id, &d.key).as_str().to_string(),
                            ),
                        ]);
                        out.push(row);
                    }
                }
            }
            Detail::Answers { stored, evidence } => {
                for m in &self.members {
                    let Some(set) = m.score_set_id else { continue };
                    let Some((report, snapshot)) = stored.get(&set) else {
                        continue;
                    };
                    let report = parse_report(report)?;
                    let snapshot = parse_snapshot(snapshot)?;
                    let version = version_of(m)?;
                    let icb = m.icb_id.and_then(|i| self.icbs.get(&i));
                    let q = &version.questionnaire;
                    for d in &q.domains {
                        let explained = report.domains.iter().find(|x| x.key == d.key);
                        for question in &d.questions {
                            let c = explained
                                .and_then(|e| e.explanation.iter().find(|c| c.key == question.key));
                            let raw = snapshot.get(&question.key);
                            let answer = raw.and_then(|v| {
                                domain_answers::parse_value(question, v).ok().flatten()
                            });
                            let mut row = assessment_cells(m, icb, &version, false);
                            row.extend([
                                Cell::Text(d.key.clone()),
                                Cell::Text(question.key.clone()),
                                Cell::Text(question.kind.type_name().to_string()),
                                raw.map_or(Cell::Null, answer_cell),
                                answer.as_ref().map_or(Cell::Null, |a| {
                                    Cell::Text(describe_answer(question, a))
                                }),
                                Cell::Bool(matches!(answer, Some(Answer::Na))),
                                Cell::opt_num(c.and_then(|c| c.raw)),
                                Cell::opt_num(c.and_then(|c| c.normalised)),
                                Cell::Num(question.weight),
                                Cell::Bool(c.is_some_and(|c| c.counted)),
                                c.map_or(Cell::Null, |c| Cell::Text(c.reason.as_str().to_string())),
                            ]);
                            let items = evidence
                                .get(&(m.assessment_id, question.key.clone()))
                                .map(Vec::as_slice)
                                .unwrap_or_default();
                            row.push(Cell::Int(items.len() as i64));
                            row.push(if items.is_empty() {
                                Cell::Null
                            } else {
                                Cell::Text(items.join("; "))
                            });
                            out.push(row);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Each answer's evidence on these assessments, by (assessment, question), in the order
/// added: `title (file: name)` or `title (link: url)`, so an auditor reading the export sees
/// what backs each answer and where to find it.
fn evidence_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<(i64, String), Vec<String>>, AppError> {
    use crate::db::schema::evidence;
    use diesel::prelude::*;
    type Row = (i64, String, String, Option<String>, Option<String>);
    let mut out: std::collections::HashMap<(i64, String), Vec<String>> = Default::default();
    for chunk in ids.chunks(super::IN_CHUNK) {
        let rows: Vec<Row> = evidence::table
            .filter(evidence::assessment_id.eq_any(chunk))
            .order(evidence::id)
            .select((
                evidence::assessment_id,
                evidence::question_key,
                evidence::title,
                evidence::file_name,
                evidence::url,
            ))
            .load(conn)?;
        for (assessment, key, title, file, url) in rows {
            let item = match (file, url) {
                (Some(f), _) => format!("{title} (file: {f})"),
                (None, Some(u)) => format!("{title} (link: {u})"),
                (None, None) => title,
            };
            out.entry((assessment, key)).or_default().push(item);
        }
    }
    Ok(out)
}

/// Where an export has got to between pages.
#[derive(Clone, Default)]
pub struct ExportCursor {
    pub after_id: Option<i64>,
    pub finished: bool,
    pub versions: Versions,
}

/// The row source of every export: the next page of submitted assessments (matching the
/// filters, within the scope, by id), read; its rows come from [`ExportPage::rows`]. The
/// cursor moves on and says when the export is finished; a page may give no rows while more
/// remain (the text and status filters apply after reading).
pub fn next_page(
    conn: &mut DbConnection,
    filters: &Filters,
    scope: &Scope,
    kind: ExportKind,
    cursor: &mut ExportCursor,
) -> Result<ExportPage, AppError> {
    let limit = kind.page_size();
    let (members, last) = load_members(
        conn,
        filters,
        scope,
        Window {
            submitted_only: true,
            after_id: cursor.after_id,
            limit: Some(limit),
            ..Window::default()
        },
    )?;
    let read = members.len();
    let page = read_page(conn, kind, members, &mut cursor.versions)?;
    cursor.after_id = last.or(cursor.after_id);
    cursor.finished = (read as i64) < limit;
    Ok(page)
}

/// What a finished export leaves to send.
pub enum Finished {
    /// The last bytes (the end of the JSON array; nothing for CSV).
    Bytes(Vec<u8>),
    /// The whole XLSX file, at its start (a temporary file, removed when dropped).
    File(std::fs::File),
}

/// Writes export rows in one format: [`ExportWriter::start`] gives the bytes that come first,
/// [`ExportWriter::rows`] the bytes for each page (none for XLSX, which is only complete at
/// the end), [`ExportWriter::finish`] what is left.
pub struct ExportWriter {
    kind: ExportKind,
    inner: Inner,
}

enum Inner {
    Csv,
    Json { rows_written: u64 },
    Xlsx(Box<XlsxSheets>),
}

fn internal(e: impl Into<anyhow::Error>) -> AppError {
    AppError::Internal(e.into())
}

/// The name an export is downloaded as: what it holds and which cycle, so that a folder of
/// downloads says which year each file is (`dma-scores-2025-26.csv`; `all-cycles` when the
/// export is not filtered to one). Only letters, digits and hyphens, so it needs no quoting.
pub fn export_file_name(kind: ExportKind, format: ExportFormat, filters: &Filters) -> String {
    let cycle = filters.cycle.as_ref().map_or_else(
        || "all-cycles".to_string(),
        |c| {
            let slug: String = c
                .label
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
                .collect();
            let slug = slug.trim_matches('-');
            if slug.is_empty() {
                format!("cycle-{}", c.id)
            } else {
                slug.to_string()
            }
        },
    );
    format!("dma-{}-{cycle}.{}", kind.name(), format.extension())
}

/// What a CSV export starts with, before its header line.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// CSV lines, one per record, written by one writer: a writer allocates (and zeroes) its
/// 8 KiB buffer when made, which once per row was a large share of a CSV export's time.
fn csv_lines<R, I, S>(records: R) -> Result<Vec<u8>, AppError>
where
    R: IntoIterator<Item = I>,
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut out = Vec::new();
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(&mut out);
    for cells in records {
        w.write_record(cells).map_err(internal)?;
    }
    w.flush().map_err(internal)?;
    drop(w);
    Ok(out)
}

impl ExportWriter {
    /// A writer and the bytes that come before the first row: the byte-order mark and the CSV
    /// header line, the JSON
    /// array's `[`, nothing for XLSX (its header row is in the worksheet).
    pub fn start(kind: ExportKind, format: ExportFormat) -> Result<(Self, Vec<u8>), AppError> {
        let (inner, first) = match format {
            ExportFormat::Csv => {
                // The UTF-8 byte-order mark first: without it Excel reads the file as the
                // machine's legacy code page and mangles names such as "Ysbyty Gwynedd – Bangor".
                let mut first = UTF8_BOM.to_vec();
                first.extend(csv_lines([kind.columns()])?);
                (Inner::Csv, first)
            }
            ExportFormat::Json => (Inner::Json { rows_written: 0 }, b"[".to_vec()),
            ExportFormat::Xlsx => (
                Inner::Xlsx(Box::new(XlsxSheets::new(kind).map_err(internal)?)),
                Vec::new(),
            ),
        };
        Ok((ExportWriter { kind, inner }, first))
    }

    /// Write a page of rows; returns the bytes to send now.
    pub fn rows(&mut self, rows: &[Vec<Cell>]) -> Result<Vec<u8>, AppError> {
        let mut out = Vec::new();
        match &mut self.inner {
            Inner::Csv => {
                out = csv_lines(rows.iter().map(|row| {
                    row.iter().map(|c| match c.csv() {
                        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
                    })
                }))?;
            }
            Inner::Json { rows_written } => {
                for row in rows {
                    let object: serde_json::Map<String, serde_json::Value> = self
                        .kind
                        .columns()
                        .iter()
                        .zip(row)
                        .map(|(k, c)| ((*k).to_string(), c.json()))
                        .collect();
                    if *rows_written > 0 {
                        out.push(b',');
                    }
                    out.push(b'\n');
                    serde_json::to_writer(&mut out, &object).map_err(internal)?;
                    *rows_written += 1;
                }
            }
            Inner::Xlsx(sheets) => {
                for row in rows {
                    sheets.row(row).map_err(internal)?;
                }
            }
        }
        Ok(out)
    }

    /// Finish the export.
    pub fn finish(self) -> Result<Finished, AppError> {
        match self.inner {
            Inner::Csv => Ok(Finished::Bytes(Vec::new())),
            Inner::Json { .. } => Ok(Finished::Bytes(b"\n]\n".to_vec())),
            Inner::Xlsx(mut sheets) => {
                let mut file = tempfile::tempfile().map_err(internal)?;
                sheets
                    .workbook
                    .save_to_writer(&mut file)
                    .map_err(internal)?;
                file.seek(SeekFrom::Start(0)).map_err(internal)?;
                Ok(Finished::File(file))
            }
        }
    }
}

/// Excel's rows per worksheet, the header row included.
pub const XLSX_MAX_ROWS: u32 = 1_048_576;
/// Excel's characters per cell.
pub const XLSX_MAX_TEXT: usize = 32_767;

/// An XLSX workbook written row by row: a worksheet named after the export (`scores`,
/// `answers`) with a bold, frozen header row; when one is full, the next (`answers 2`, ...)
/// starts with the header again.
struct XlsxSheets {
    workbook: Workbook,
    kind: ExportKind,
    header: Format,
    /// How a [`Cell::Time`] is shown: date and time, in UTC as stored.
    time: Format,
    sheets: usize,
    /// The next row of the current worksheet.
    row: u32,
}

impl XlsxSheets {
    fn new(kind: ExportKind) -> Result<Self, XlsxError> {
        let mut sheets = XlsxSheets {
            workbook: Workbook::new(),
            kind,
            header: Format::new().set_bold(),
            time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            sheets: 0,
            row: 0,
        };
        sheets.add_sheet()?;
        Ok(sheets)
    }

    fn add_sheet(&mut self) -> Result<(), XlsxError> {
        self.sheets += 1;
        let name = match self.sheets {
            1 => self.kind.name().to_string(),
            n => format!("{} {n}", self.kind.name()),
        };
        let columns = self.kind.columns();
        let header = self.header.clone();
        let sheet = self.workbook.add_worksheet_with_constant_memory();
        sheet.set_name(name)?;
        sheet.set_freeze_panes(1, 0)?;
        for (i, title) in columns.iter().enumerate() {
            let col = column(i);
            sheet.set_column_width(col, (title.len() as f64 + 2.0).max(10.0))?;
            sheet.write_string_with_format(0, col, *title, &header)?;
        }
        self.row = 1;
        Ok(())
    }

    fn current(&mut self) -> Result<&mut Worksheet, XlsxError> {
        self.workbook.worksheet_from_index(self.sheets - 1)
    }

    fn row(&mut self, cells: &[Cell]) -> Result<(), XlsxError> {
        if self.row >= XLSX_MAX_ROWS {
            self.add_sheet()?;
        }
        let row = self.row;
        let time = self.time.clone();
        let sheet = self.current()?;
        for (i, cell) in cells.iter().enumerate() {
            let col = column(i);
            match cell {
                Cell::Null => {}
                Cell::Int(n) => {
                    sheet.write_number(row, col, *n as f64)?;
                }
                Cell::Num(x) => {
                    sheet.write_number(row, col, *x)?;
                }
                Cell::Bool(b) => {
                    sheet.write_boolean(row, col, *b)?;
                }
                Cell::Time(t) => {
                    sheet.write_datetime_with_format(row, col, &excel_time(*t)?, &time)?;
                }
                Cell::Text(s) => {
                    if s.chars().count() > XLSX_MAX_TEXT {
                        let cut: String = s.chars().take(XLSX_MAX_TEXT).collect();
                        sheet.write_string(row, col, cut)?;
                    } else {
                        sheet.write_string(row, col, s)?;
                    }
                }
            }
        }
        self.row += 1;
        Ok(())
    }
}

/// `t` as the XLSX writer's date-time (a serial number in the file).
fn excel_time(t: NaiveDateTime) -> Result<ExcelDateTime, XlsxError> {
    use chrono::{Datelike, Timelike};
    let year = u16::try_from(t.year()).map_err(|_| XlsxError::DateTimeRangeError(t.to_string()))?;
    // chrono's month, day, minute and second always fit a u8 (at most 60).
    let small = |n: u32| u8::try_from(n).unwrap_or(u8::MAX);
    ExcelDateTime::from_ymd(year, small(t.month()), small(t.day()))?.and_hms(
        u16::from(small(t.hour())),
        small(t.minute()),
        f64::from(t.second()),
    )
}

/// A column index as the XLSX writer counts them (the exports have 21 columns).
fn column(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_defuse_formulas_and_keep_precision() {
        assert_eq!(Cell::Text("=SUM(A1)".into()).csv(), "'=SUM(A1)");
        assert_eq!(Cell::Num(2.0 / 3.0).csv(), format!("{}", 2.0_f64 / 3.0));
        assert_eq!(Cell::Null.csv(), "");
    }

    #[test]
    fn answers_are_plain_values_not_json_text() {
        use serde_json::json;
        assert_eq!(answer_cell(&json!("partial")).csv(), "partial");
        assert_eq!(answer_cell(&json!(20.0)).csv(), "20");
        assert_eq!(answer_cell(&json!(99.5)).csv(), "99.5");
        assert_eq!(answer_cell(&json!(4)).csv(), "4");
        assert_eq!(answer_cell(&json!(true)).csv(), "true");
        assert_eq!(answer_cell(&json!(["eprs", "pacs"])).csv(), "eprs;pacs");
        assert_eq!(answer_cell(&json!([])).csv(), "");
        assert_eq!(answer_cell(&json!({"na": true})).csv(), "na");
        assert_eq!(answer_cell(&json!(20.0)).json(), json!(20.0));
    }

    #[test]
    fn file_names_name_the_cycle_in_safe_characters() {
        use super::super::filters::CycleRef;
        let mut filters = Filters::default();
        assert_eq!(
            export_file_name(ExportKind::Scores, ExportFormat::Csv, &filters),
            "dma-scores-all-cycles.csv"
        );
        let opens_on = chrono::NaiveDate::from_ymd_opt(2025, 4, 1).unwrap();
        for (label, name) in [
            ("2025/26", "dma-answers-2025-26.xlsx"),
            ("\"; rm -rf /", "dma-answers-rm--rf.xlsx"),
            ("////", "dma-answers-cycle-7.xlsx"),
        ] {
            filters.cycle = Some(CycleRef {
                id: 7,
                label: label.into(),
                opens_on,
            });
            assert_eq!(
                export_file_name(ExportKind::Answers, ExportFormat::Xlsx, &filters),
                name
            );
        }
    }

    #[test]
    fn times_are_iso_text_in_csv_and_json_and_dates_in_xlsx() {
        use calamine::{Data, Reader, Xlsx};
        use std::io::Read;
        let t = chrono::NaiveDate::from_ymd_opt(2026, 3, 31)
            .unwrap()
            .and_hms_opt(17, 5, 9)
            .unwrap();
        assert_eq!(Cell::Time(t).csv(), "2026-03-31T17:05:09Z");
        assert_eq!(Cell::Time(t).json(), "2026-03-31T17:05:09Z");

        let mut row = vec![Cell::Int(1); SCORES_COLUMNS.len()];
        let at = SCORES_COLUMNS
            .iter()
            .position(|c| *c == "submitted_at")
            .unwrap();
        row[at] = Cell::Time(t);
        let (mut w, _) = ExportWriter::start(ExportKind::Scores, ExportFormat::Xlsx).unwrap();
        w.rows(&[row]).unwrap();
        let Finished::File(mut file) = w.finish().unwrap() else {
            panic!("XLSX finishes as a file")
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let sheet = book.worksheet_range("scores").unwrap();
        let cell = sheet.get((1, at)).unwrap();
        let Data::DateTime(excel) = cell else {
            panic!("submitted_at is {cell:?}, not a date")
        };
        assert!(excel.is_datetime());
        assert_eq!(excel.to_ymd_hms_milli(), (2026, 3, 31, 17, 5, 9, 0));
    }

    #[test]
    fn every_format_writes_the_header_and_rows() {
        let rows = vec![vec![Cell::Int(1); SCORES_COLUMNS.len()]];
        for format in [ExportFormat::Csv, ExportFormat::Json, ExportFormat::Xlsx] {
            let (mut w, first) = ExportWriter::start(ExportKind::Scores, format).unwrap();
            let body = w.rows(&rows).unwrap();
            match (format, w.finish().unwrap()) {
                (ExportFormat::Csv, Finished::Bytes(last)) => {
                    let text = String::from_utf8([first, body, last].concat()).unwrap();
                    assert!(text.starts_with("\u{feff}assessment_id,cycle,"), "{text}");
                    assert_eq!(text.lines().count(), 2);
                }
                (ExportFormat::Json, Finished::Bytes(last)) => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&[first, body, last].concat()).unwrap();
                    assert_eq!(v[0]["assessment_id"], 1);
                }
                (ExportFormat::Xlsx, Finished::File(file)) => {
                    assert!(first.is_empty() && body.is_empty());
                    assert!(file.metadata().unwrap().len() > 0);
                }
                _ => panic!("{format:?} finished the wrong way"),
            }
        }
    }
}
