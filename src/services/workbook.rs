//! A question set as an XLSX workbook and back (issue 26): policy leads write and review
//! question sets in spreadsheets, as the national assessments were published, and REDCap
//! users round-trip a data dictionary the same way.
//!
//! The workbook is a view of the definition document (format spec), not a second format: the
//! export writes the canonical document's fields as sheets (one per concept: the set, bands,
//! pillars, domains, questions, options, levels, criteria, number bands, conditions), and the
//! import rebuilds the document from them and hands it to the upload's loader. While it
//! rebuilds, it remembers which sheet and row each part of the document came from, so every
//! loader error is reported by sheet, row and column. `import(export(v)) == v` is a test.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::{json, Map, Value};

use crate::domain::questionnaire::{self, Questionnaire};
use crate::domain::FieldError;
use crate::error::AppError;

/// Each sheet and its columns. The first column of the child sheets names the parent.
const SET: &str = "Set";
const SHEETS: &[(&str, &[&str])] = &[
    ("Bands", &["min", "label"]),
    ("Pillars", &["key", "title", "description", "weight"]),
    (
        "Domains",
        &["key", "pillar", "title", "description", "weight"],
    ),
    (
        "Questions",
        &[
            "domain",
            "key",
            "type",
            "text",
            "help",
            "required",
            "weight",
            "allow_na",
            "max_score",
            "yes_score",
            "no_score",
            "min",
            "max",
            "integer",
            "unit",
            "max_length",
        ],
    ),
    (
        "Options",
        &["question", "key", "label", "score", "exclusive"],
    ),
    ("Levels", &["question", "value", "label"]),
    ("Criteria", &["question", "level", "key", "text"]),
    ("Number bands", &["question", "up_to", "score"]),
    ("Conditions", &["question", "show_if"]),
];
const SET_FIELDS: &[&str] = &[
    "format",
    "key",
    "version",
    "title",
    "description",
    "settings",
    "scale_min",
    "scale_max",
    "decimals",
];

fn columns(sheet: &str) -> &'static [&'static str] {
    SHEETS
        .iter()
        .find(|(s, _)| *s == sheet)
        .map_or(&[], |(_, c)| c)
}

fn xlsx_error(e: XlsxError) -> AppError {
    AppError::Internal(anyhow::anyhow!("writing the workbook: {e}"))
}

fn write_cell(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    col: u16,
    v: &Value,
) -> Result<(), XlsxError> {
    match v {
        Value::Number(n) => {
            sheet.write_number(row, col, n.as_f64().unwrap_or_default())?;
        }
        Value::String(s) => {
            sheet.write_string(row, col, s)?;
        }
        Value::Bool(b) => {
            sheet.write_boolean(row, col, *b)?;
        }
        Value::Null => {}
        other => {
            sheet.write_string(row, col, other.to_string())?;
        }
    }
    Ok(())
}

fn list<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    v.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The rows of every sheet for a document: (sheet, cells by column name).
fn rows_of(doc: &Value) -> Vec<(&'static str, Map<String, Value>)> {
    let mut out = Vec::new();
    let mut row = |sheet: &'static str, source: &Value, extra: &[(&str, Value)]| {
        let mut m: Map<String, Value> = columns(sheet)
            .iter()
            .filter_map(|c| source.get(*c).map(|v| (c.to_string(), v.clone())))
            .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.clone());
        }
        out.push((sheet, m));
    };
    for b in list(doc, "bands") {
        row("Bands", b, &[]);
    }
    for p in list(doc, "pillars") {
        row("Pillars", p, &[]);
    }
    for d in list(doc, "domains") {
        row("Domains", d, &[]);
    }
    for d in list(doc, "domains") {
        for q in list(d, "questions") {
            row("Questions", q, &[("domain", d["key"].clone())]);
        }
    }
    for d in list(doc, "domains") {
        for q in list(d, "questions") {
            let qk = ("question", q["key"].clone());
            for o in list(q, "options") {
                // A single option's null score ("not scored") is an empty cell.
                row("Options", o, std::slice::from_ref(&qk));
            }
            for l in list(q, "levels") {
                row("Levels", l, std::slice::from_ref(&qk));
            }
            for l in list(q, "levels") {
                for c in list(l, "criteria") {
                    row("Criteria", c, &[qk.clone(), ("level", l["value"].clone())]);
                }
            }
            for b in list(q, "bands") {
                row("Number bands", b, std::slice::from_ref(&qk));
            }
            if let Some(c) = q.get("show_if") {
                row(
                    "Conditions",
                    &json!({}),
                    &[qk.clone(), ("show_if", json!(c.to_string()))],
                );
            }
        }
    }
    out
}

/// The version as an XLSX workbook.
pub fn export(q: &Questionnaire) -> Result<Vec<u8>, AppError> {
    let doc: Value = serde_json::from_str(&questionnaire::to_json(q))
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    {
        let sheet = book.add_worksheet();
        sheet.set_name(SET).map_err(xlsx_error)?;
        sheet
            .write_string_with_format(0, 0, "field", &bold)
            .map_err(xlsx_error)?;
        sheet
            .write_string_with_format(0, 1, "value", &bold)
            .map_err(xlsx_error)?;
        sheet.set_column_width(1, 40).map_err(xlsx_error)?;
        for (i, field) in SET_FIELDS.iter().enumerate() {
            let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let value = match *field {
                "settings" => json!(list(&doc, "settings")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")),
                "scale_min" => doc["scale"]["min"].clone(),
                "scale_max" => doc["scale"]["max"].clone(),
                other => doc.get(other).cloned().unwrap_or(Value::Null),
            };
            sheet.write_string(r, 0, *field).map_err(xlsx_error)?;
            write_cell(sheet, r, 1, &value).map_err(xlsx_error)?;
        }
    }
    let rows = rows_of(&doc);
    for (name, cols) in SHEETS {
        let sheet = book.add_worksheet();
        sheet.set_name(*name).map_err(xlsx_error)?;
        sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        for (c, title) in cols.iter().enumerate() {
            let col = u16::try_from(c).unwrap_or(u16::MAX);
            sheet
                .write_string_with_format(0, col, *title, &bold)
                .map_err(xlsx_error)?;
            sheet.set_column_width(col, 14).map_err(xlsx_error)?;
        }
        for (r, (_, cells)) in (1u32..).zip(rows.iter().filter(|(s, _)| s == name)) {
            for (c, title) in cols.iter().enumerate() {
                if let Some(v) = cells.get(*title) {
                    let col = u16::try_from(c).unwrap_or(u16::MAX);
                    write_cell(sheet, r, col, v).map_err(xlsx_error)?;
                }
            }
        }
    }
    book.save_to_buffer().map_err(xlsx_error)
}

/// Where a part of the rebuilt document came from.
struct Origin {
    path: String,
    sheet: &'static str,
    /// 1-based, as a spreadsheet shows it.
    row: usize,
}

fn column_letter(i: usize) -> String {
    let mut n = i + 1;
    let mut s = String::new();
    while n > 0 {
        let r = (n - 1) % 26;
        s.insert(0, char::from(b'A' + u8::try_from(r).unwrap_or(0)));
        n = (n - 1) / 26;
    }
    s
}

fn at(sheet: &str, row: usize, column: Option<(usize, &str)>) -> String {
    match column {
        Some((i, name)) => format!(
            "sheet {sheet}, row {row}, column {} ({name})",
            column_letter(i)
        ),
        None => format!("sheet {sheet}, row {row}"),
    }
}

fn cell_value(d: &Data) -> Option<Value> {
    match d {
        Data::Empty => None,
        Data::Int(i) => Some(json!(i)),
        Data::Float(f) => Some(match crate::domain::document::float_to_i64(*f) {
            Some(i) => json!(i),
            None => json!(f),
        }),
        Data::String(s) if s.trim().is_empty() => None,
        Data::String(s) => Some(json!(s)),
        Data::Bool(b) => Some(json!(b)),
        other => Some(json!(other.to_string())),
    }
}

/// Rows of one sheet as (1-based row number, cells by column name).
fn read_sheet(
    book: &mut Xlsx<Cursor<Vec<u8>>>,
    sheet: &'static str,
    problems: &mut Vec<FieldError>,
) -> Vec<(usize, Map<String, Value>)> {
    let Ok(range) = book.worksheet_range(sheet) else {
        return Vec::new();
    };
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|r| r.iter().map(|c| c.to_string().trim().to_string()).collect())
        .unwrap_or_default();
    for (i, h) in header.iter().enumerate() {
        if !h.is_empty() && !columns(sheet).contains(&h.as_str()) && sheet != SET {
            problems.push(FieldError::new(
                at(sheet, 1, Some((i, h))),
                format!(
                    "unknown column \"{h}\"; the columns are {}",
                    columns(sheet).join(", ")
                ),
            ));
        }
    }
    let first = range.start().map_or(0, |(r, _)| r as usize);
    rows.enumerate()
        .filter_map(|(i, r)| {
            let cells: Map<String, Value> = r
                .iter()
                .enumerate()
                .filter_map(|(c, d)| Some((header.get(c)?.clone(), cell_value(d)?)))
                .filter(|(k, _)| !k.is_empty())
                .collect();
            (!cells.is_empty()).then_some((first + i + 2, cells))
        })
        .collect()
}

/// Rebuild the definition document from a workbook, recording where each part came from.
fn read(bytes: Vec<u8>) -> Result<(Value, Vec<Origin>), Vec<FieldError>> {
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(|e| {
        vec![FieldError::new(
            "file",
            format!("this is not an XLSX workbook that can be read: {e}"),
        )]
    })?;
    let mut problems = Vec::new();
    let mut origins = Vec::new();
    let mut doc = Map::new();
    let mut scale = Map::new();
    for (row, cells) in read_sheet(&mut book, SET, &mut problems) {
        let (Some(Value::String(field)), value) = (cells.get("field"), cells.get("value").cloned())
        else {
            continue;
        };
        let Some(value) = value else { continue };
        let name = match field.as_str() {
            "scale_min" | "scale_max" => {
                scale.insert(field[6..].to_string(), value);
                origins.push(Origin {
                    path: format!("scale.{}", &field[6..]),
                    sheet: SET,
                    row,
                });
                continue;
            }
            "settings" => {
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                let list: Vec<Value> = text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| json!(s))
                    .collect();
                doc.insert("settings".into(), json!(list));
                "settings"
            }
            "version" => {
                // A version like 2026.1 typed into a cell is a number to the spreadsheet.
                doc.insert(
                    "version".into(),
                    json!(value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string)),
                );
                "version"
            }
            f if SET_FIELDS.contains(&f) => {
                doc.insert(f.to_string(), value);
                f
            }
            other => {
                problems.push(FieldError::new(
                    at(SET, row, Some((0, "field"))),
                    format!("unknown field \"{other}\""),
                ));
                continue;
            }
        };
        origins.push(Origin {
            path: name.to_string(),
            sheet: SET,
            row,
        });
    }
    if !scale.is_empty() {
        doc.insert("scale".into(), Value::Object(scale));
    }
    let mut push = |doc: &mut Map<String, Value>,
                    name: &str,
                    sheet: &'static str,
                    row: usize,
                    cells: Map<String, Value>| {
        let items = doc.entry(name).or_insert(json!([]));
        if let Value::Array(a) = items {
            origins.push(Origin {
                path: format!("{name}[{}]", a.len()),
                sheet,
                row,
            });
            a.push(Value::Object(cells));
        }
    };
    for (row, cells) in read_sheet(&mut book, "Bands", &mut problems) {
        push(&mut doc, "bands", "Bands", row, cells);
    }
    for (row, cells) in read_sheet(&mut book, "Pillars", &mut problems) {
        push(&mut doc, "pillars", "Pillars", row, cells);
    }
    let mut domain_at: HashMap<String, usize> = HashMap::new();
    for (row, cells) in read_sheet(&mut book, "Domains", &mut problems) {
        let key = cells
            .get("key")
            .map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_string))
            .unwrap_or_default();
        let mut cells = cells;
        cells.insert("questions".into(), json!([]));
        domain_at.insert(
            key,
            doc.get("domains")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
        );
        push(&mut doc, "domains", "Domains", row, cells);
    }
    let mut question_at: HashMap<String, (usize, usize)> = HashMap::new();
    let mut doc = Value::Object(doc);
    for (row, mut cells) in read_sheet(&mut book, "Questions", &mut problems) {
        let domain = cells
            .remove("domain")
            .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
            .unwrap_or_default();
        let Some(&d) = domain_at.get(&domain) else {
            problems.push(FieldError::new(
                at("Questions", row, Some((0, "domain"))),
                format!("no domain \"{domain}\" on the Domains sheet"),
            ));
            continue;
        };
        let key = cells
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(qs) = doc["domains"][d]["questions"].as_array_mut() {
            origins.push(Origin {
                path: format!("domains[{d}].questions[{}]", qs.len()),
                sheet: "Questions",
                row,
            });
            question_at.insert(key, (d, qs.len()));
            qs.push(Value::Object(cells));
        }
    }
    // The rows that belong to a question: options, levels, criteria, bands, conditions.
    for (sheet, field) in [
        ("Options", "options"),
        ("Levels", "levels"),
        ("Number bands", "bands"),
        ("Criteria", ""),
        ("Conditions", ""),
    ] {
        for (row, mut cells) in read_sheet(&mut book, sheet, &mut problems) {
            let key = cells
                .remove("question")
                .map(|q| q.as_str().map_or_else(|| q.to_string(), str::to_string))
                .unwrap_or_default();
            let Some(&(d, i)) = question_at.get(&key) else {
                problems.push(FieldError::new(
                    at(sheet, row, Some((0, "question"))),
                    format!("no question \"{key}\" on the Questions sheet"),
                ));
                continue;
            };
            let base = format!("domains[{d}].questions[{i}]");
            let q = &mut doc["domains"][d]["questions"][i];
            match sheet {
                "Conditions" => {
                    let text = cells
                        .get("show_if")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    match serde_json::from_str::<Value>(text) {
                        Ok(c) => {
                            q["show_if"] = c;
                            origins.push(Origin {
                                path: format!("{base}.show_if"),
                                sheet,
                                row,
                            });
                        }
                        Err(e) => problems.push(FieldError::new(
                            at(sheet, row, Some((1, "show_if"))),
                            format!("not a condition in JSON: {e}"),
                        )),
                    }
                }
                "Criteria" => {
                    let level = cells.remove("level").unwrap_or(Value::Null);
                    let levels = q.get_mut("levels").and_then(Value::as_array_mut);
                    let found = levels.and_then(|ls| {
                        ls.iter_mut()
                            .enumerate()
                            .find(|(_, l)| l.get("value") == Some(&level))
                    });
                    match found {
                        Some((li, l)) => {
                            let criteria = l
                                .as_object_mut()
                                .map(|o| o.entry("criteria").or_insert(json!([])));
                            if let Some(Value::Array(cs)) = criteria {
                                origins.push(Origin {
                                    path: format!("{base}.levels[{li}].criteria[{}]", cs.len()),
                                    sheet,
                                    row,
                                });
                                cs.push(Value::Object(cells));
                            }
                        }
                        None => problems.push(FieldError::new(
                            at(sheet, row, Some((1, "level"))),
                            format!("question \"{key}\" has no level {level} on the Levels sheet"),
                        )),
                    }
                }
                _ => {
                    if sheet == "Options" && !cells.contains_key("score") {
                        cells.insert("score".into(), Value::Null);
                    }
                    if sheet == "Levels" && q["type"] == "checklist" {
                        cells.insert("criteria".into(), json!([]));
                    }
                    if let Some(o) = q.as_object_mut() {
                        let items = o.entry(field).or_insert(json!([]));
                        if let Value::Array(a) = items {
                            origins.push(Origin {
                                path: format!("{base}.{field}[{}]", a.len()),
                                sheet,
                                row,
                            });
                            a.push(Value::Object(cells));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok((doc, origins))
    } else {
        Err(problems)
    }
}

/// A loader error (a document path) as the sheet, row and column it came from.
fn locate(e: &FieldError, origins: &[Origin]) -> FieldError {
    let best = origins
        .iter()
        .filter(|o| {
            e.path == o.path
                || e.path.starts_with(&format!("{}.", o.path))
                || e.path.starts_with(&format!("{}[", o.path))
        })
        .max_by_key(|o| o.path.len());
    let Some(o) = best else {
        return FieldError::new(format!("sheet {SET}"), format!("{}: {}", e.path, e.message));
    };
    let rest = e.path[o.path.len()..].trim_start_matches('.');
    let field = rest.split(['.', '[']).next().unwrap_or("");
    let column = if o.sheet == SET {
        Some((1, "value"))
    } else {
        columns(o.sheet)
            .iter()
            .position(|c| *c == field)
            .map(|i| (i, columns(o.sheet)[i]))
    };
    FieldError::new(
        at(o.sheet, o.row, column),
        format!("{} ({})", e.message, e.path),
    )
}

/// Read a workbook into a validated question set; every problem by sheet, row and column.
pub fn import(bytes: Vec<u8>) -> Result<Questionnaire, Vec<FieldError>> {
    let (doc, origins) = read(bytes)?;
    questionnaire::load(doc.to_string().as_bytes())
        .map_err(|errors| errors.iter().map(|e| locate(e, &origins)).collect())
}

/// Whether bytes are a zip archive (an XLSX workbook) rather than a YAML or JSON text.
pub fn is_workbook(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}
