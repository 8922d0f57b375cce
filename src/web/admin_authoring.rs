//! The question-set editor for administrators: start a blank set or next year's draft from a
//! published version, then add, edit, reorder and remove pillars, domains and questions of
//! every type, with `show_if` conditions chosen from earlier questions' values.
//!
//! It works without JavaScript: every thing being edited is its own server-rendered form
//! whose fields are named by their path in the definition document (`options[1].score`), so
//! the loader's errors, which carry those paths, are drawn beside the field they concern.
//! Each post becomes RFC 6902 operations on the draft's document and goes through
//! [`crate::services::authoring::change`], the same path as the API, with the revision the
//! page showed: a stale post is a 409 that says so, and nothing is overwritten.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use json_patch::{AddOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::domain::questionnaire::authoring::{self as editing, TYPES};
use crate::domain::questionnaire::Questionnaire;
use crate::domain::FieldError;
use crate::error::AppError;
use crate::services::auth::roles::Action;
use crate::services::authoring::{self, Change, Draft, EditError};
use crate::services::questionnaires::PUBLISHED;
use crate::web::auth::Authenticated;
use crate::web::{page, AppState};

const BASE: &str = "/admin/questionnaires";

fn version_path(key: &str, version: &str) -> String {
    format!("{BASE}/{key}/{version}")
}

fn editor_path(key: &str, version: &str) -> String {
    format!("{BASE}/{key}/{version}/edit")
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// One form field, named by its path relative to the thing edited.
#[derive(Debug, Serialize, Default)]
struct Field {
    id: String,
    name: String,
    label: String,
    value: String,
    hint: Option<String>,
    error: Option<String>,
    /// The document path of the error, as the loader gave it.
    path: Option<String>,
    described: Option<String>,
    width: &'static str,
    number: bool,
    checkbox: bool,
    checked: bool,
    textarea: bool,
    select: bool,
    options: Vec<Value>,
}

/// Errors of one form: the document path of the thing (`domains[1].questions[0]`) and the
/// loader's problems; each field takes the problems at or under its path.
struct Problems<'a> {
    prefix: String,
    all: &'a [FieldError],
    form: String,
}

impl Problems<'_> {
    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn at(&self, name: &str) -> Option<&FieldError> {
        let full = self.full(name);
        self.all.iter().find(|e| {
            e.path == full
                || e.path
                    .strip_prefix(&full)
                    .is_some_and(|rest| rest.starts_with('['))
        })
    }

    fn field(&self, name: &str, label: &str, value: String) -> Field {
        let id = format!("{}-{}", self.form, name.replace(['[', ']', '.'], "-"));
        let error = self.at(name);
        Field {
            described: error.map(|_| format!("{id}-error")),
            error: error.map(|e| e.message.clone()),
            path: error.map(|e| e.path.clone()),
            id,
            name: name.to_string(),
            label: label.to_string(),
            value,
            width: "20",
            ..Field::default()
        }
    }

    fn text(&self, doc: &Value, name: &str, label: &str) -> Field {
        self.field(name, label, text_of(doc.get(name)))
    }

    fn long(&self, doc: &Value, name: &str, label: &str) -> Field {
        Field {
            textarea: true,
            ..self.text(doc, name, label)
        }
    }

    fn number(&self, value: Option<&Value>, name: &str, label: &str) -> Field {
        Field {
            number: true,
            width: "5",
            ..self.field(name, label, text_of(value))
        }
    }

    fn check(&self, checked: bool, name: &str, label: &str) -> Field {
        Field {
            checkbox: true,
            checked,
            ..self.field(name, label, String::new())
        }
    }

    fn select(&self, name: &str, label: &str, options: Vec<Value>) -> Field {
        Field {
            select: true,
            options,
            ..self.field(name, label, String::new())
        }
    }

    /// Problems under the prefix that no field showed (drawn above the form).
    fn rest(&self, shown: &[&Field]) -> Vec<Value> {
        self.all
            .iter()
            .filter(|e| {
                e.path == self.prefix
                    || e.path.starts_with(&format!("{}.", self.prefix))
                    || e.path.starts_with(&format!("{}[", self.prefix))
                    || self.prefix.is_empty()
            })
            .filter(|e| {
                !shown
                    .iter()
                    .any(|f| f.path.as_deref() == Some(e.path.as_str()))
            })
            .map(|e| json!({"path": e.path, "message": e.message}))
            .collect()
    }
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn list<'a>(doc: &'a Value, name: &str) -> &'a [Value] {
    doc.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn field_values(fields: Vec<Field>) -> Vec<Value> {
    fields
        .into_iter()
        .map(|f| serde_json::to_value(f).unwrap_or(Value::Null))
        .collect()
}

/// Rows of a list (options, levels, bands) with one blank row to add another.
fn rows(
    p: &Problems,
    items: &[Value],
    name: &str,
    columns: &[(&str, &str, &str)],
) -> (Vec<Value>, Vec<Field>) {
    let mut shown = Vec::new();
    let mut out = Vec::new();
    for i in 0..=items.len() {
        let item = items.get(i).cloned().unwrap_or(Value::Null);
        let mut fields = Vec::new();
        for (col, label, kind) in columns {
            let path = format!("{name}[{i}].{col}");
            let f = match *kind {
                "number" => p.number(item.get(*col), &path, label),
                "check" => p.check(item.get(*col) == Some(&json!(true)), &path, label),
                _ => p.field(&path, label, text_of(item.get(*col))),
            };
            fields.push(f);
        }
        if i < items.len() {
            fields.push(p.check(false, &format!("{name}[{i}].remove"), "Remove"));
        }
        out.push((i, i == items.len(), fields));
    }
    let rows = out
        .into_iter()
        .map(|(i, blank, fields)| {
            let v = json!({"number": i + 1, "blank": blank, "fields": field_values(fields)});
            v
        })
        .collect();
    // The fields are consumed into values; re-derive which paths they showed.
    for i in 0..=items.len() {
        for (col, _, _) in columns {
            let path = format!("{name}[{i}].{col}");
            if let Some(e) = p.at(&path) {
                shown.push(Field {
                    path: Some(e.path.clone()),
                    ..Field::default()
                });
            }
        }
    }
    (rows, shown)
}

// ----- the editor's page -----

#[derive(Default)]
struct Notice {
    status: Option<StatusCode>,
    message: Option<String>,
    problems: Vec<FieldError>,
}

fn summary(problems: &[FieldError]) -> Value {
    if problems.is_empty() {
        return Value::Null;
    }
    json!(problems
        .iter()
        .map(|e| json!({"href": "#problems", "message": format!("{}: {}", e.path, e.message)}))
        .collect::<Vec<_>>())
}

fn flash(done: Option<&str>) -> Value {
    let message = match done {
        Some("created") => "The draft was created. It is a valid question set: change it below.",
        Some("saved") => "Saved. The draft was checked and is a valid question set.",
        Some("added") => "Added. Change its wording and details below.",
        Some("moved") => "Moved.",
        Some("removed") => "Removed.",
        _ => return Value::Null,
    };
    json!({"kind": "success", "message": message})
}

fn settings_form(doc: &Value, p: &Problems) -> Value {
    let settings = list(doc, "settings")
        .iter()
        .map(|s| text_of(Some(s)))
        .collect::<Vec<_>>()
        .join(", ");
    let scale = doc.get("scale").cloned().unwrap_or(json!({}));
    let mut fields = vec![
        p.text(doc, "title", "Title"),
        p.long(doc, "description", "Description (optional)"),
        Field {
            hint: Some("Separated by commas, for example: acute, community".into()),
            ..p.field("settings", "Care settings", settings)
        },
        p.number(scale.get("min"), "scale.min", "Lowest score"),
        p.number(scale.get("max"), "scale.max", "Highest score"),
        p.number(doc.get("decimals"), "decimals", "Decimal places shown"),
    ];
    for f in &mut fields {
        if f.name == "title" {
            f.width = "30";
        }
    }
    let (bands, shown) = rows(
        p,
        list(doc, "bands"),
        "bands",
        &[("min", "From score", "number"), ("label", "Label", "text")],
    );
    let refs: Vec<&Field> = fields.iter().chain(shown.iter()).collect();
    let other = p.rest(&refs);
    let other: Vec<Value> = other
        .into_iter()
        .filter(|e| {
            let path = e["path"].as_str().unwrap_or("");
            !path.starts_with("domains") && !path.starts_with("pillars")
        })
        .collect();
    json!({"fields": field_values(fields), "bands": bands, "other": other})
}

fn pillar_forms(doc: &Value, problems: &[FieldError]) -> Vec<Value> {
    let pillars = list(doc, "pillars");
    pillars
        .iter()
        .enumerate()
        .map(|(i, pillar)| {
            let p = Problems {
                prefix: format!("pillars[{i}]"),
                all: problems,
                form: format!("pillar{i}"),
            };
            let fields = vec![
                p.text(pillar, "key", "Key"),
                Field {
                    width: "30",
                    ..p.text(pillar, "title", "Title")
                },
                p.long(pillar, "description", "Description (optional)"),
                p.number(pillar.get("weight"), "weight", "Weight (default 1)"),
            ];
            let refs: Vec<&Field> = fields.iter().collect();
            json!({
                "index": i, "at": format!("/pillars/{i}"),
                "what": format!("pillar {}", text_of(pillar.get("title"))),
                "title": text_of(pillar.get("title")),
                "first": i == 0, "last": i + 1 == pillars.len(),
                "other": p.rest(&refs),
                "fields": field_values(fields),
            })
        })
        .collect()
}

fn type_label(kind: &str) -> &'static str {
    TYPES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("Unknown type", |(_, l)| l)
}

fn domain_forms(
    draft: Option<&Draft>,
    doc: &Value,
    problems: &[FieldError],
    base: &str,
) -> Vec<Value> {
    let pillar_keys: Vec<String> = list(doc, "pillars")
        .iter()
        .map(|p| text_of(p.get("key")))
        .collect();
    let domains = list(doc, "domains");
    let comparisons = draft.and_then(|d| d.based_on.as_ref());
    domains
        .iter()
        .enumerate()
        .map(|(i, domain)| {
            let p = Problems {
                prefix: format!("domains[{i}]"),
                all: problems,
                form: format!("domain{i}"),
            };
            let key = text_of(domain.get("key"));
            let mut fields = vec![
                p.text(domain, "key", "Key"),
                Field {
                    width: "30",
                    ..p.text(domain, "title", "Title")
                },
                p.long(domain, "description", "Description (optional)"),
            ];
            if !pillar_keys.is_empty() {
                let current = text_of(domain.get("pillar"));
                fields.push(
                    p.select(
                        "pillar",
                        "Pillar",
                        pillar_keys
                            .iter()
                            .map(|k| json!({"value": k, "label": k, "selected": *k == current}))
                            .collect(),
                    ),
                );
            }
            fields.push(p.number(domain.get("weight"), "weight", "Weight (default 1)"));
            let questions = list(domain, "questions");
            let question_rows: Vec<Value> = questions
                .iter()
                .enumerate()
                .map(|(j, q)| {
                    let qp = format!("domains[{i}].questions[{j}]");
                    let errors: Vec<Value> = problems
                        .iter()
                        .filter(|e| {
                            e.path == qp
                                || e.path.starts_with(&format!("{qp}."))
                                || e.path.starts_with(&format!("{qp}["))
                        })
                        .map(|e| json!({"path": e.path, "message": e.message}))
                        .collect();
                    json!({
                        "index": j, "at": format!("/domains/{i}/questions/{j}"),
                        "what": format!("question {}", text_of(q.get("key"))),
                        "key": text_of(q.get("key")), "text": text_of(q.get("text")),
                        "type": type_label(&text_of(q.get("type"))),
                        "conditional": q.get("show_if").is_some(),
                        "href": format!("{base}/edit/{i}/{j}"),
                        "first": j == 0, "last": j + 1 == questions.len(),
                        "errors": errors,
                    })
                })
                .collect();
            let comparison = comparisons.map(|(from, diff)| {
                let c = diff.domains.iter().find(|c| c.key == key);
                json!({
                    "from": from.version,
                    "comparable": c.is_some_and(|c| c.comparable),
                    "reasons": c.map(|c| c.reasons.clone()).unwrap_or_default(),
                })
            });
            let refs: Vec<&Field> = fields.iter().collect();
            let other: Vec<Value> = p
                .rest(&refs)
                .into_iter()
                .filter(|e| !e["path"].as_str().unwrap_or("").contains(".questions["))
                .collect();
            json!({
                "index": i, "at": format!("/domains/{i}"),
                "what": format!("domain {}", text_of(domain.get("title"))),
                "title": text_of(domain.get("title")), "key": key,
                "first": i == 0, "last": i + 1 == domains.len(),
                "fields": field_values(fields),
                "other": other,
                "questions": question_rows,
                "comparison": comparison,
            })
        })
        .collect()
}

async fn editor_page(
    state: &AppState,
    auth: &Authenticated,
    key: String,
    version: String,
    attempted: Option<Value>,
    notice: Notice,
    done: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let (k, v) = (key.clone(), version.clone());
    let draft = state
        .db
        .read(move |conn| authoring::draft(conn, &k, &v))
        .await?;
    if draft.summary.status == PUBLISHED {
        return Err(AppError::Conflict(format!(
            "Version {version} of {key} is published and cannot be changed. Start next year's draft from it on its page."
        )));
    }
    let doc = attempted.unwrap_or_else(|| draft.document.clone());
    let base = version_path(&key, &version);
    let top = Problems {
        prefix: String::new(),
        all: &notice.problems,
        form: "settings".into(),
    };
    let comparison = draft.based_on.as_ref().map(|(from, diff)| {
        json!({
            "from": from.version,
            "overall": diff.overall_comparable,
            "scale_changed": diff.scale_changed,
            "domains_changed": diff.domains.iter().any(|d| !d.comparable),
            "pillars": diff.pillars.iter().filter(|p| !p.comparable).map(|p| json!({"key": p.key, "reasons": p.reasons})).collect::<Vec<_>>(),
            "removed": diff.domains.iter().filter(|d| !list(&doc, "domains").iter().any(|x| text_of(x.get("key")) == d.key)).map(|d| d.key.clone()).collect::<Vec<_>>(),
        })
    });
    page::render_with_status(
        notice.status.unwrap_or(StatusCode::OK),
        state,
        Some(&auth.page_user()),
        "admin/editor",
        &format!("Edit {key} {version}"),
        json!({
            "key": key, "version": version, "set_title": text_of(doc.get("title")),
            "revision": draft.revision,
            "base": base,
            "action": editor_path(&key, &version),
            "csrf_token": auth.csrf_token,
            "settings": settings_form(&doc, &top),
            "pillars": pillar_forms(&doc, &notice.problems),
            "has_pillars": !list(&doc, "pillars").is_empty(),
            "domains": domain_forms(Some(&draft), &doc, &notice.problems, &base),
            "types": TYPES.iter().map(|(k, l)| json!({"value": k, "label": l})).collect::<Vec<_>>(),
            "comparison": comparison,
            "problems": notice.problems.iter().map(|e| json!({"path": e.path, "message": e.message})).collect::<Vec<_>>(),
            "errors": summary(&notice.problems),
            "stale": notice.message,
            "flash": flash(done),
            "breadcrumbs": [
                {"href": "/dashboard", "label": "Home"},
                {"href": BASE, "label": "Question sets"},
                {"href": base, "label": format!("{} {}", draft.summary.key, draft.summary.version)},
            ],
        }),
    )
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn edit(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let (key, version) = path.into_inner();
    editor_page(
        &state,
        &auth,
        key,
        version,
        None,
        Notice::default(),
        query.done.as_deref(),
    )
    .await
}

// ----- the question form -----

fn question_form(q_doc: &Value, p: &Problems, model: Option<&Questionnaire>) -> Value {
    let kind = text_of(q_doc.get("type"));
    let mut fields = vec![
        p.text(q_doc, "key", "Key"),
        p.select(
            "type",
            "Type",
            TYPES
                .iter()
                .map(|(k, l)| json!({"value": k, "label": l, "selected": *k == kind}))
                .collect(),
        ),
        p.long(q_doc, "text", "Question"),
        p.long(q_doc, "help", "Help text (optional)"),
        p.check(
            q_doc.get("required") != Some(&json!(false)),
            "required",
            "Required",
        ),
        p.check(
            q_doc.get("allow_na") == Some(&json!(true)),
            "allow_na",
            "Allow “Not applicable”",
        ),
    ];
    if kind != "text" {
        fields.push(p.number(q_doc.get("weight"), "weight", "Weight (default 1)"));
    }
    for f in &mut fields {
        if f.name == "type" {
            f.hint = Some(
                "Changing the type replaces the type's own details with a starting point.".into(),
            );
        }
    }
    let mut extra: Vec<Field> = Vec::new();
    let mut groups: Vec<Value> = Vec::new();
    let mut shown: Vec<Field> = Vec::new();
    match kind.as_str() {
        "single" | "multi" => {
            let mut cols = vec![
                ("key", "Key", "text"),
                ("label", "Label", "text"),
                (
                    "score",
                    if kind == "single" {
                        "Score (blank: not scored)"
                    } else {
                        "Score"
                    },
                    "number",
                ),
            ];
            if kind == "multi" {
                cols.push(("exclusive", "Stands alone (like “None of these”)", "check"));
                extra.push(p.number(
                    q_doc.get("max_score"),
                    "max_score",
                    "Highest total score (optional)",
                ));
            }
            let (r, s) = rows(p, list(q_doc, "options"), "options", &cols);
            shown.extend(s);
            groups.push(json!({"legend": "Options", "rows": r}));
        }
        "scale" => {
            let (r, s) = rows(
                p,
                list(q_doc, "levels"),
                "levels",
                &[("value", "Value", "number"), ("label", "Label", "text")],
            );
            shown.extend(s);
            groups.push(json!({"legend": "Levels, lowest first", "rows": r}));
        }
        "checklist" => {
            let levels = list(q_doc, "levels");
            let (mut r, s) = rows(
                p,
                levels,
                "levels",
                &[("value", "Value", "number"), ("label", "Label", "text")],
            );
            shown.extend(s);
            for (i, row) in r.iter_mut().enumerate() {
                let criteria = levels.get(i).map(|l| list(l, "criteria")).unwrap_or(&[]);
                let (c, s) = rows(
                    p,
                    criteria,
                    &format!("levels[{i}].criteria"),
                    &[
                        ("key", "Criterion key", "text"),
                        ("text", "Criterion", "text"),
                    ],
                );
                shown.extend(s);
                row["criteria"] = json!(c);
            }
            groups.push(json!({"legend": "Levels, lowest first (the first level has no criteria; a level is reached when all its criteria and those below are ticked)", "rows": r}));
        }
        "yes_no" => {
            extra.push(p.number(
                q_doc.get("yes_score").or(Some(&json!(1))),
                "yes_score",
                "Score for Yes",
            ));
            extra.push(p.number(
                q_doc.get("no_score").or(Some(&json!(0))),
                "no_score",
                "Score for No",
            ));
        }
        "number" => {
            extra.push(p.number(q_doc.get("min"), "min", "Lowest allowed (optional)"));
            extra.push(p.number(q_doc.get("max"), "max", "Highest allowed (optional)"));
            extra.push(p.check(
                q_doc.get("integer") == Some(&json!(true)),
                "integer",
                "Whole numbers only",
            ));
            extra.push(p.text(q_doc, "unit", "Unit (optional)"));
            let (r, s) = rows(
                p,
                list(q_doc, "bands"),
                "bands",
                &[
                    ("up_to", "Up to (blank on the last band)", "number"),
                    ("score", "Score", "number"),
                ],
            );
            shown.extend(s);
            groups.push(json!({"legend": "Score bands (none: not scored)", "rows": r}));
        }
        "text" => extra.push(p.number(
            q_doc.get("max_length"),
            "max_length",
            "Longest answer in characters (default 5000)",
        )),
        _ => {}
    }
    // show_if: chosen from the earlier questions' values.
    let own_key = text_of(q_doc.get("key"));
    let choices = model
        .map(|m| editing::choices(m, &own_key))
        .unwrap_or_default();
    let existing = q_doc.get("show_if").cloned();
    let parsed = existing.as_ref().and_then(|c| {
        model
            .and_then(|m| m.question(&own_key))
            .and_then(|q| q.show_if.clone())
            .filter(|_| c.is_object())
    });
    // The loaded model is the stored draft's; when the page shows a refused change, the
    // condition typed with it is only in the document, so it is read from there.
    let builder = match (&existing, &parsed) {
        (Some(c), _) if c.is_object() && editing::builder_rows_from_json(c).is_some() => {
            Some(editing::builder_rows_from_json(c))
        }
        (_, Some(c)) => Some(editing::builder_rows(c)),
        _ => None,
    };
    let (mode, mut chosen, keep) = match builder {
        Some(Some((mode, rows))) => (mode, rows, false),
        Some(None) => ("all", Vec::new(), true),
        None => ("all", Vec::new(), existing.is_some()),
    };
    chosen.push((String::new(), String::new()));
    let condition_rows: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, (value, number))| {
            // A number question's test is offered without its number, typed beside it.
            let matched = choices.iter().find(|c| &c.value == value).or_else(|| {
                choices.iter().find(|c| c.needs_number && value.starts_with(&c.value))
            });
            let mut options = vec![json!({"value": "", "label": "No condition", "selected": matched.is_none()})];
            options.extend(choices.iter().map(|c| {
                json!({"value": c.value, "label": c.label, "selected": matched.is_some_and(|m| m.value == c.value)})
            }));
            let number_value = if matched.is_some_and(|m| m.needs_number) { number.clone() } else { String::new() };
            json!({
                "number": i + 1,
                "select": p.select(&format!("show_if_rows[{i}].test"), "Show this question only when", options),
                "value": p.field(&format!("show_if_rows[{i}].number"), "Number (for tests on a number question)", number_value),
            })
        })
        .collect();
    let show_if_error = p
        .at("show_if")
        .map(|e| json!({"path": e.path, "message": e.message}));
    let mut refs: Vec<&Field> = fields
        .iter()
        .chain(extra.iter())
        .chain(shown.iter())
        .collect();
    let phantom = Field {
        path: show_if_error
            .as_ref()
            .and_then(|e| e["path"].as_str().map(str::to_string)),
        ..Field::default()
    };
    refs.push(&phantom);
    let other = p.rest(&refs);
    json!({
        "fields": field_values(fields),
        "extra": field_values(extra),
        "groups": groups,
        "other": other,
        "condition": {
            "rows": condition_rows,
            "all": mode == "all", "any": mode == "any",
            "keep": keep,
            "written": existing.map(|c| c.to_string()),
            "none_available": choices.is_empty(),
            "error": show_if_error,
        },
    })
}

async fn question_page(
    state: &AppState,
    auth: &Authenticated,
    draft: &Draft,
    (d, i): (usize, usize),
    attempted: Option<Value>,
    notice: Notice,
) -> Result<HttpResponse, AppError> {
    let (key, version) = (draft.summary.key.clone(), draft.summary.version.clone());
    let q_doc = attempted
        .or_else(|| {
            draft
                .document
                .pointer(&format!("/domains/{d}/questions/{i}"))
                .cloned()
        })
        .ok_or(AppError::NotFound)?;
    let p = Problems {
        prefix: format!("domains[{d}].questions[{i}]"),
        all: &notice.problems,
        form: "question".into(),
    };
    let base = version_path(&key, &version);
    page::render_with_status(
        notice.status.unwrap_or(StatusCode::OK),
        state,
        Some(&auth.page_user()),
        "admin/editor_question",
        &format!("Edit question {}", text_of(q_doc.get("key"))),
        json!({
            "key": key, "version": version, "revision": draft.revision,
            "domain": d, "index": i,
            "question_key": text_of(q_doc.get("key")),
            "domain_title": draft.document.pointer(&format!("/domains/{d}/title")).map(|t| text_of(Some(t))),
            "form": question_form(&q_doc, &p, Some(&draft.questionnaire)),
            "action": editor_path(&key, &version),
            "editor": editor_path(&key, &version),
            "base": base,
            "csrf_token": auth.csrf_token,
            "problems": notice.problems.iter().map(|e| json!({"path": e.path, "message": e.message})).collect::<Vec<_>>(),
            "errors": summary(&notice.problems),
            "stale": notice.message,
            "breadcrumbs": [
                {"href": "/dashboard", "label": "Home"},
                {"href": BASE, "label": "Question sets"},
                {"href": base, "label": format!("{key} {version}")},
                {"href": editor_path(&key, &version), "label": "Editor"},
            ],
        }),
    )
}

pub async fn edit_question(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String, usize, usize)>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    let (key, version, d, i) = path.into_inner();
    let draft = state
        .db
        .read(move |conn| authoring::draft(conn, &key, &version))
        .await?;
    if draft.summary.status == PUBLISHED {
        return Err(AppError::Conflict(
            "This version is published and cannot be changed.".into(),
        ));
    }
    question_page(&state, &auth, &draft, (d, i), None, Notice::default()).await
}

// ----- posts -----

/// The care settings field: slugs separated by commas.
fn settings_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn get<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The posted fields that belong to the thing edited (not the form's own controls).
fn own_fields(form: &[(String, String)]) -> Map<String, Value> {
    const CONTROLS: &[&str] = &[
        "csrf_token",
        "revision",
        "action",
        "at",
        "mode",
        "keep",
        "new_type",
    ];
    editing::from_fields(
        form.iter()
            .filter(|(k, _)| !CONTROLS.contains(&k.as_str()) && !k.starts_with("show_if"))
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

fn pointer(path: &str) -> Result<json_patch::jsonptr::PointerBuf, AppError> {
    json_patch::jsonptr::PointerBuf::parse(path)
        .map_err(|_| AppError::BadRequest(format!("\"{path}\" is not a place in the document")))
}

fn add(path: &str, value: Value) -> Result<PatchOperation, AppError> {
    Ok(PatchOperation::Add(AddOperation {
        path: pointer(path)?,
        value,
    }))
}

fn replace(path: &str, value: Value) -> Result<PatchOperation, AppError> {
    Ok(PatchOperation::Replace(ReplaceOperation {
        path: pointer(path)?,
        value,
    }))
}

fn remove(path: &str) -> Result<PatchOperation, AppError> {
    Ok(PatchOperation::Remove(RemoveOperation {
        path: pointer(path)?,
    }))
}

/// `at` as (list pointer, index): `/domains/2/questions/1` is (`/domains/2/questions`, 1).
fn split_at(at: &str) -> Result<(&str, usize), AppError> {
    at.rsplit_once('/')
        .and_then(|(list, i)| i.parse().ok().map(|i| (list, i)))
        .ok_or_else(|| AppError::BadRequest(format!("\"{at}\" is not an item of a list")))
}

/// What a post does, as operations on the document; also where to go afterwards.
enum Plan {
    Ops(Vec<PatchOperation>, &'static str),
    /// Added a question: open it.
    Question(Vec<PatchOperation>, usize, usize),
}

fn question_value(form: &[(String, String)], current: &Value) -> Value {
    let mut q = own_fields(form);
    let kind = q
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    q.entry("required").or_insert(json!(false));
    if q.get("allow_na") == Some(&json!(false)) {
        q.remove("allow_na");
    }
    if q.get("integer") == Some(&json!(false)) {
        q.remove("integer");
    }
    if current.get("type").and_then(Value::as_str) != Some(kind.as_str()) {
        // A new type: keep the common fields and start the type's own from a valid scaffold.
        if let Some(Value::Object(s)) = editing::scaffold(&kind, "x") {
            for name in [
                "options",
                "levels",
                "max_score",
                "yes_score",
                "no_score",
                "min",
                "max",
                "integer",
                "unit",
                "bands",
                "max_length",
            ] {
                q.remove(name);
                if let Some(v) = s.get(name) {
                    q.insert(name.into(), v.clone());
                }
            }
        }
    }
    if kind == "text" {
        q.remove("weight");
    }
    // The condition: kept as written, or built from the chosen tests.
    if get(form, "keep") == "yes" {
        if let Some(c) = current.get("show_if") {
            q.insert("show_if".into(), c.clone());
        }
    } else {
        let mut rows = Vec::new();
        for i in 0.. {
            let test = format!("show_if_rows[{i}].test");
            if !form.iter().any(|(k, _)| *k == test) {
                break;
            }
            rows.push((
                get(form, &test).to_string(),
                get(form, &format!("show_if_rows[{i}].number")).to_string(),
            ));
        }
        if let Some(c) = editing::condition_from_rows(get(form, "mode"), &rows) {
            q.insert("show_if".into(), c);
        }
    }
    Value::Object(q)
}

fn plan(doc: &Value, form: &[(String, String)]) -> Result<Plan, AppError> {
    let at = get(form, "at");
    Ok(match get(form, "action") {
        "settings" => {
            let mut f = own_fields(form);
            let mut ops = Vec::new();
            f.insert(
                "settings".into(),
                json!(settings_list(get(form, "settings"))),
            );
            for name in [
                "title",
                "description",
                "settings",
                "scale",
                "decimals",
                "bands",
            ] {
                // No bands at all is written as no `bands` field.
                let value = f.remove(name).filter(|v| v != &json!([]));
                match value {
                    Some(v) => ops.push(add(&format!("/{name}"), v)?),
                    None if doc.get(name).is_some() => ops.push(remove(&format!("/{name}"))?),
                    None => {}
                }
            }
            Plan::Ops(ops, "saved")
        }
        "pillar" => {
            let old = doc.pointer(at).ok_or(AppError::NotFound)?;
            let new = Value::Object(own_fields(form));
            let mut ops = vec![replace(at, new.clone())?];
            // Renaming a pillar renames it in its domains too.
            let (old_key, new_key) = (text_of(old.get("key")), text_of(new.get("key")));
            if old_key != new_key {
                for (j, d) in list(doc, "domains").iter().enumerate() {
                    if text_of(d.get("pillar")) == old_key {
                        ops.push(replace(&format!("/domains/{j}/pillar"), json!(new_key))?);
                    }
                }
            }
            Plan::Ops(ops, "saved")
        }
        "domain" => {
            let old = doc.pointer(at).ok_or(AppError::NotFound)?;
            let mut new = own_fields(form);
            new.insert(
                "questions".into(),
                old.get("questions").cloned().unwrap_or(json!([])),
            );
            Plan::Ops(vec![replace(at, Value::Object(new))?], "saved")
        }
        "question" => {
            let old = doc.pointer(at).ok_or(AppError::NotFound)?;
            Plan::Ops(vec![replace(at, question_value(form, old))?], "saved")
        }
        "add_pillar" => {
            let taken: Vec<String> = list(doc, "pillars")
                .iter()
                .map(|p| text_of(p.get("key")))
                .collect();
            let key = editing::fresh_key("pillar", |k| taken.iter().any(|t| t == k));
            if taken.is_empty() {
                // The first pillar: every domain must name one, so all join it.
                let mut ops = vec![add("/pillars", json!([editing::new_pillar(&key)]))?];
                for j in 0..list(doc, "domains").len() {
                    ops.push(add(&format!("/domains/{j}/pillar"), json!(key))?);
                }
                Plan::Ops(ops, "added")
            } else {
                Plan::Ops(vec![add("/pillars/-", editing::new_pillar(&key))?], "added")
            }
        }
        "add_domain" => {
            let taken: Vec<String> = list(doc, "domains")
                .iter()
                .map(|p| text_of(p.get("key")))
                .collect();
            let key = editing::fresh_key("domain", |k| taken.iter().any(|t| t == k));
            let questions = editing::question_keys(doc);
            let qkey = editing::fresh_key("question", |k| questions.iter().any(|t| t == k));
            let pillar = list(doc, "pillars").last().map(|p| text_of(p.get("key")));
            Plan::Ops(
                vec![add(
                    "/domains/-",
                    editing::new_domain(&key, pillar.as_deref(), &qkey),
                )?],
                "added",
            )
        }
        "add_question" => {
            let d: usize = at
                .trim_start_matches("/domains/")
                .parse()
                .map_err(|_| AppError::BadRequest("Choose a domain.".into()))?;
            let count = doc
                .pointer(&format!("/domains/{d}/questions"))
                .and_then(Value::as_array)
                .map(Vec::len)
                .ok_or(AppError::NotFound)?;
            let questions = editing::question_keys(doc);
            let qkey = editing::fresh_key("question", |k| questions.iter().any(|t| t == k));
            let q = editing::scaffold(get(form, "new_type"), &qkey)
                .ok_or_else(|| AppError::BadRequest("Choose a question type.".into()))?;
            Plan::Question(
                vec![add(&format!("/domains/{d}/questions/-"), q)?],
                d,
                count,
            )
        }
        "up" | "down" => {
            let (list_at, i) = split_at(at)?;
            let len = doc
                .pointer(list_at)
                .and_then(Value::as_array)
                .map(Vec::len)
                .ok_or(AppError::NotFound)?;
            let j = if get(form, "action") == "up" {
                i.checked_sub(1)
            } else {
                Some(i + 1).filter(|j| *j < len)
            };
            let Some(j) = j else {
                return Ok(Plan::Ops(Vec::new(), "moved"));
            };
            Plan::Ops(
                vec![PatchOperation::Move(MoveOperation {
                    from: pointer(at)?,
                    path: pointer(&format!("{list_at}/{j}"))?,
                })],
                "moved",
            )
        }
        "remove" => {
            let (list_at, _) = split_at(at)?;
            let mut ops = vec![remove(at)?];
            if list_at == "/pillars" && list(doc, "pillars").len() == 1 {
                // The last pillar: the set no longer groups domains.
                ops = vec![remove("/pillars")?];
                for (j, d) in list(doc, "domains").iter().enumerate() {
                    if d.get("pillar").is_some() {
                        ops.push(remove(&format!("/domains/{j}/pillar"))?);
                    }
                }
            }
            Plan::Ops(ops, "removed")
        }
        other => return Err(AppError::BadRequest(format!("Unknown action \"{other}\"."))),
    })
}

/// Every post of the editor: one thing changed against the revision the page showed.
pub async fn save(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(get(&form, "csrf_token"))?;
    let (key, version) = path.into_inner();
    let revision: i64 = get(&form, "revision")
        .parse()
        .map_err(|_| AppError::BadRequest("The form has no revision; reload the editor.".into()))?;
    let (k, v) = (key.clone(), version.clone());
    let current = state
        .db
        .read(move |conn| authoring::draft(conn, &k, &v))
        .await?;
    let plan = plan(&current.document, &form)?;
    let (ops, next) = match plan {
        Plan::Ops(ops, done) => (ops, format!("{}?done={done}", editor_path(&key, &version))),
        Plan::Question(ops, d, i) => (ops, format!("{}/{d}/{i}", editor_path(&key, &version))),
    };
    let action = get(&form, "action").to_string();
    let at = get(&form, "at").to_string();
    let actor = auth.actor();
    let (k, v) = (key.clone(), version.clone());
    let result = state
        .db
        .write(move |conn| {
            Ok(authoring::change(
                conn,
                &actor,
                &k,
                &v,
                revision,
                Change::Patch(ops),
            ))
        })
        .await?;
    let question_at = (action == "question")
        .then(|| {
            let parts: Vec<usize> = at.split('/').filter_map(|s| s.parse().ok()).collect();
            (parts.len() == 2).then(|| (parts[0], parts[1]))
        })
        .flatten();
    match result {
        Ok(_) => Ok(see_other(next)),
        Err(EditError::Invalid { problems, .. }) => {
            // Draw the form again with what was posted, each problem beside its field.
            let attempted =
                editing::patch(&current.document, &plan_again(&current.document, &form)?).ok();
            let notice = Notice {
                status: Some(StatusCode::UNPROCESSABLE_ENTITY),
                message: None,
                problems,
            };
            match question_at {
                Some(qa) => {
                    let q = attempted.as_ref().and_then(|d| d.pointer(&at).cloned());
                    question_page(&state, &auth, &current, qa, q, notice).await
                }
                None => editor_page(&state, &auth, key, version, attempted, notice, None).await,
            }
        }
        Err(EditError::App(AppError::StaleRevision { message, .. })) => {
            let notice = Notice {
                status: Some(StatusCode::CONFLICT),
                message: Some(message),
                problems: Vec::new(),
            };
            let (k, v) = (key.clone(), version.clone());
            let now = state
                .db
                .read(move |conn| authoring::draft(conn, &k, &v))
                .await?;
            match question_at {
                // The question as posted, against the revision that is current now: saving it
                // again is a deliberate choice to keep this version.
                Some(qa) => {
                    let mine = now
                        .document
                        .pointer(&at)
                        .map(|old| question_value(&form, old));
                    question_page(&state, &auth, &now, qa, mine, notice).await
                }
                None => editor_page(&state, &auth, key, version, None, notice, None).await,
            }
        }
        Err(EditError::App(e)) => Err(e),
    }
}

fn plan_again(doc: &Value, form: &[(String, String)]) -> Result<Vec<PatchOperation>, AppError> {
    Ok(match plan(doc, form)? {
        Plan::Ops(ops, _) | Plan::Question(ops, _, _) => ops,
    })
}

// ----- new drafts -----

pub async fn new_form(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    new_page(&state, &auth, &Value::Null, &[], StatusCode::OK)
}

fn new_page(
    state: &AppState,
    auth: &Authenticated,
    doc: &Value,
    problems: &[FieldError],
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let p = Problems {
        prefix: String::new(),
        all: problems,
        form: "new".into(),
    };
    let fields = vec![
        Field { hint: Some("Lower-case letters, digits and hyphens, starting with a letter; it stays the same every year, like wgll-acute.".into()), ..p.text(doc, "key", "Key") },
        Field { hint: Some("Like 2026.1.".into()), width: "10", ..p.text(doc, "version", "Version") },
        Field { width: "30", ..p.text(doc, "title", "Title") },
        Field {
            hint: Some("Separated by commas, for example: acute, community".into()),
            ..p.field("settings", "Care settings", list(doc, "settings").iter().map(|s| text_of(Some(s))).collect::<Vec<_>>().join(", "))
        },
    ];
    let refs: Vec<&Field> = fields.iter().collect();
    let other: Vec<Value> = p
        .rest(&refs)
        .into_iter()
        .filter(|e| !e["path"].as_str().unwrap_or("").starts_with("domains"))
        .collect();
    page::render_with_status(
        status,
        state,
        Some(&auth.page_user()),
        "admin/new_questionnaire",
        "Start a question set",
        json!({
            "fields": field_values(fields),
            "other": other,
            "errors": summary(problems),
            "csrf_token": auth.csrf_token,
            "breadcrumbs": [{"href": "/dashboard", "label": "Home"}, {"href": BASE, "label": "Question sets"}],
        }),
    )
}

pub async fn create(
    state: web::Data<AppState>,
    auth: Authenticated,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(get(&form, "csrf_token"))?;
    let settings = settings_list(get(&form, "settings"));
    let doc = editing::blank(
        get(&form, "key").trim(),
        get(&form, "version").trim(),
        get(&form, "title").trim(),
        &settings,
    );
    let actor = auth.actor();
    let d = doc.clone();
    let result = state
        .db
        .write(move |conn| Ok(authoring::create(conn, &actor, &d, None)))
        .await?;
    match result {
        Ok(v) => Ok(see_other(format!(
            "{}?done=created",
            editor_path(&v.key, &v.version)
        ))),
        Err(EditError::Invalid { problems, .. }) => new_page(
            &state,
            &auth,
            &doc,
            &problems,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(EditError::App(e)) => Err(e),
    }
}

/// Next year's draft from a version: a copy under a new version, remembered as its base.
pub async fn start_next(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    auth.require(Action::Administer)?;
    auth.check_csrf(get(&form, "csrf_token"))?;
    let (key, from) = path.into_inner();
    let new_version = get(&form, "new_version").trim().to_string();
    let actor = auth.actor();
    let result = state
        .db
        .write(move |conn| {
            Ok(authoring::start_from(
                conn,
                &actor,
                &key,
                &from,
                &new_version,
            ))
        })
        .await?;
    match result {
        Ok(v) => Ok(see_other(format!(
            "{}?done=created",
            editor_path(&v.key, &v.version)
        ))),
        Err(e) => Err(e.into()),
    }
}
