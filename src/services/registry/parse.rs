//! Reading a registry file (pure): decoding, the header, every cell checked, and every
//! problem collected with its line and column, so an upload is answered with the whole list at
//! once and nothing touches the database until the file is good.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use super::rows::{RegistryRow, RowError};
use super::{COLUMNS, ICBS_ESTABLISHED, MAX_ERRORS, MAX_FILE_BYTES};
use crate::domain::ods::{OdsCode, OrgKind};

const REQUIRED_COLUMNS: [&str; 2] = ["ods_code", "name"];
const MAX_NAME_CHARS: usize = 200;
const MAX_REGION_CHARS: usize = 100;
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
                    errors.push(RowError::repeated(line, &row.ods_code, *first));
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
pub(super) fn date_order(
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
    crate::domain::text::hidden_character_problem(text).map_or(Ok(()), Err)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::services::registry::DEMO_FILES;

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
}
