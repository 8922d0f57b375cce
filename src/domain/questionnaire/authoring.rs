//! The pure part of authoring a draft question set: the definition document (format spec) is
//! the single source of truth, so the editor and the API change the *document* (a JSON value)
//! and hand the result to the same loader as an upload. This module holds what both need and
//! what must not depend on HTTP: valid starting points (a blank set, a new question of each
//! type, a new domain or pillar), RFC 6902 patches applied to a document, form fields named
//! by their path in the document (`options[1].score`) read back into a document fragment, and
//! the `show_if` choices an author picks from (earlier questions' keys and values), so no
//! condition is ever typed as code.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{Condition, Question, QuestionKind, Questionnaire};
use crate::domain::FieldError;

/// The question types, with the words the editor shows for them.
pub const TYPES: &[(&str, &str)] = &[
    ("yes_no", "Yes or no"),
    ("single", "One option from a list"),
    ("multi", "Several options from a list"),
    ("scale", "A level on a scale"),
    ("checklist", "Levels reached by ticking criteria"),
    ("number", "A number"),
    ("text", "Free text (not scored)"),
];

/// Form fields read as numbers (when they parse as one; otherwise the text is kept, so the
/// loader reports "must be a number" at the field's path).
const NUMBER_FIELDS: &[&str] = &[
    "value",
    "score",
    "weight",
    "min",
    "max",
    "up_to",
    "yes_score",
    "no_score",
    "max_score",
    "max_length",
    "decimals",
];
/// Form fields that are check boxes: present means true.
const BOOL_FIELDS: &[&str] = &["required", "allow_na", "integer", "exclusive", "remove"];

/// A blank question set: one domain with one yes/no question, which is the smallest valid
/// document, so a draft is valid from its first moment.
pub fn blank(key: &str, version: &str, title: &str, settings: &[String]) -> Value {
    json!({
        "format": 1,
        "key": key,
        "version": version,
        "title": title,
        "settings": settings,
        "domains": [new_domain("domain-1", None, "question-1")],
    })
}

/// A new question of `kind` with the least a valid one needs (two options with different
/// scores, two levels, ...), for the author to reword. `None` for an unknown type.
pub fn scaffold(kind: &str, key: &str) -> Option<Value> {
    let mut q = json!({"key": key, "type": kind, "text": "New question: write the question here"});
    let extra = match kind {
        "yes_no" | "text" => json!({}),
        "single" => json!({"options": [
            {"key": "no", "label": "No", "score": 0},
            {"key": "yes", "label": "Yes", "score": 1}]}),
        "multi" => json!({"options": [
            {"key": "first", "label": "First option", "score": 1},
            {"key": "second", "label": "Second option", "score": 1},
            {"key": "none", "label": "None of these", "score": 0, "exclusive": true}]}),
        "scale" => json!({"levels": [
            {"value": 1, "label": "Not started"},
            {"value": 2, "label": "In progress"},
            {"value": 3, "label": "Done"}]}),
        "checklist" => json!({"levels": [
            {"value": 1, "label": "Starting", "criteria": []},
            {"value": 2, "label": "Developing", "criteria": [{"key": "first", "text": "First criterion"}]},
            {"value": 3, "label": "Mature", "criteria": [{"key": "second", "text": "Second criterion"}]}]}),
        "number" => json!({"min": 0, "bands": [{"up_to": 0, "score": 0}, {"score": 1}]}),
        _ => return None,
    };
    if let (Some(q), Value::Object(extra)) = (q.as_object_mut(), extra) {
        q.extend(extra);
    }
    Some(q)
}

/// A new domain holding one yes/no question (a domain needs at least one).
pub fn new_domain(key: &str, pillar: Option<&str>, question_key: &str) -> Value {
    let mut d =
        json!({"key": key, "title": "New domain", "questions": [scaffold("yes_no", question_key)]});
    if let (Some(p), Some(obj)) = (pillar, d.as_object_mut()) {
        obj.insert("pillar".into(), json!(p));
    }
    d
}

pub fn new_pillar(key: &str) -> Value {
    json!({"key": key, "title": "New pillar"})
}

/// The first of `prefix-1`, `prefix-2`, ... that `taken` does not claim.
pub fn fresh_key(prefix: &str, taken: impl Fn(&str) -> bool) -> String {
    (1..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|k| !taken(k))
        .unwrap_or_else(|| prefix.to_string())
}

/// Every question key in a document (valid or not), for [`fresh_key`].
pub fn question_keys(doc: &Value) -> Vec<String> {
    doc.pointer("/domains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("questions").and_then(Value::as_array))
        .flatten()
        .filter_map(|q| q.get("key").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Apply RFC 6902 operations to a copy of `doc`. A failed operation is reported at
/// `operations[i]`, and nothing is applied.
pub fn patch(doc: &Value, ops: &[json_patch::PatchOperation]) -> Result<Value, FieldError> {
    let mut out = doc.clone();
    json_patch::patch(&mut out, ops).map_err(|e| {
        FieldError::new(
            format!("operations[{}]", e.operation),
            format!("cannot apply at \"{}\": {}", e.path, e.kind),
        )
    })?;
    Ok(out)
}

/// One step of a form field's name: `options[1].key` is `options`, `1`, `key`.
enum Step {
    Key(String),
    Index(usize),
}

fn steps(name: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for part in name.split('.') {
        let (head, rest) = part.split_once('[').unwrap_or((part, ""));
        if head.is_empty() {
            return None;
        }
        out.push(Step::Key(head.to_string()));
        for index in rest.split('[').filter(|s| !s.is_empty()) {
            out.push(Step::Index(index.trim_end_matches(']').parse().ok()?));
        }
    }
    Some(out)
}

/// Fields while they are read: rows are kept by their index until blank ones are dropped.
enum Tree {
    Leaf(String),
    Map(BTreeMap<String, Tree>),
    Rows(BTreeMap<usize, Tree>),
}

fn insert(tree: &mut Tree, path: &[Step], value: &str) {
    let Some((first, rest)) = path.split_first() else {
        *tree = Tree::Leaf(value.to_string());
        return;
    };
    match first {
        Step::Key(k) => {
            if !matches!(tree, Tree::Map(_)) {
                *tree = Tree::Map(BTreeMap::new());
            }
            if let Tree::Map(m) = tree {
                insert(
                    m.entry(k.clone()).or_insert(Tree::Leaf(String::new())),
                    rest,
                    value,
                );
            }
        }
        Step::Index(i) => {
            if !matches!(tree, Tree::Rows(_)) {
                *tree = Tree::Rows(BTreeMap::new());
            }
            if let Tree::Rows(m) = tree {
                insert(
                    m.entry(*i).or_insert(Tree::Leaf(String::new())),
                    rest,
                    value,
                );
            }
        }
    }
}

fn leaf_value(name: &str, text: &str) -> Option<Value> {
    let t = text.trim();
    if BOOL_FIELDS.contains(&name) {
        return Some(Value::Bool(!t.is_empty()));
    }
    if t.is_empty() {
        // A blank score is "not scored" (single options); other blank fields are left out.
        return (name == "score").then_some(Value::Null);
    }
    if NUMBER_FIELDS.contains(&name) {
        if let Ok(i) = t.parse::<i64>() {
            return Some(json!(i));
        }
        if let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Some(Value::Number(n));
        }
    }
    Some(Value::String(text.to_string()))
}

/// Whether a row holds nothing an author typed (blank rows are offered for adding one).
fn blank_row(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.iter().all(blank_row),
        Value::Object(m) => m.values().all(blank_row),
        _ => false,
    }
}

fn to_value(name: &str, tree: Tree) -> Option<Value> {
    match tree {
        Tree::Leaf(text) => leaf_value(name, &text),
        Tree::Map(m) => Some(Value::Object(
            m.into_iter()
                .filter_map(|(k, t)| to_value(&k, t).map(|v| (k, v)))
                .collect(),
        )),
        Tree::Rows(rows) => Some(Value::Array(
            rows.into_values()
                .filter_map(|t| to_value(name, t))
                .filter(|row| !blank_row(row) && row.get("remove") != Some(&Value::Bool(true)))
                .map(|mut row| {
                    if let Some(o) = row.as_object_mut() {
                        o.remove("remove");
                        o.retain(|k, v| !(BOOL_FIELDS.contains(&k.as_str()) && v == &json!(false)));
                    }
                    row
                })
                .collect(),
        )),
    }
}

/// Read form fields named by their path in the document (`title`, `options[1].score`,
/// `levels[2].criteria[0].key`) into a document fragment. Rows left blank are dropped (the
/// editor offers one blank row to add an item), as are rows whose `remove` box is ticked;
/// numbers are read as numbers; blank optional fields are left out. Names that are not paths
/// are ignored.
pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    let mut tree = Tree::Map(BTreeMap::new());
    for (name, value) in fields {
        if let Some(path) = steps(name) {
            insert(&mut tree, &path, value);
        }
    }
    match to_value("", tree) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// One test an author can choose for a `show_if`: `value` is what the form posts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    /// The test needs a number typed beside it (number questions).
    pub needs_number: bool,
}

fn choice(key: &str, test: &str, value: &Value, label: String) -> Choice {
    Choice {
        value: format!("{key}|{test}|{value}"),
        label,
        needs_number: false,
    }
}

fn short(text: &str) -> String {
    let t: String = text.chars().take(60).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// The tests a `show_if` may make on the questions that come before `before` (format
/// section 3), each with its value in words.
pub fn choices(q: &Questionnaire, before: &str) -> Vec<Choice> {
    let mut out = Vec::new();
    for (_, question) in q.questions() {
        if question.key == before {
            break;
        }
        out.extend(choices_for(question));
    }
    out
}

fn choices_for(q: &Question) -> Vec<Choice> {
    let k = q.key.as_str();
    let name = format!("{k} (“{}”)", short(&q.text));
    let mut out = Vec::new();
    match &q.kind {
        QuestionKind::YesNo { .. } => {
            out.push(choice(k, "equals", &json!(true), format!("{name} is Yes")));
            out.push(choice(k, "equals", &json!(false), format!("{name} is No")));
        }
        QuestionKind::Single { options } => {
            for o in options {
                out.push(choice(
                    k,
                    "equals",
                    &json!(o.key),
                    format!("{name} is “{}”", o.label),
                ));
            }
        }
        QuestionKind::Multi { options, .. } => {
            for o in options {
                out.push(choice(
                    k,
                    "includes",
                    &json!(o.key),
                    format!("{name} includes “{}”", o.label),
                ));
            }
        }
        QuestionKind::Scale { levels } => {
            for l in levels {
                let v = json!(l.value);
                out.push(choice(
                    k,
                    "equals",
                    &v,
                    format!("{name} is {} “{}”", l.value, l.label),
                ));
                out.push(choice(
                    k,
                    "at_least",
                    &v,
                    format!("{name} is at least {} “{}”", l.value, l.label),
                ));
                out.push(choice(
                    k,
                    "at_most",
                    &v,
                    format!("{name} is at most {} “{}”", l.value, l.label),
                ));
            }
        }
        QuestionKind::Checklist { levels } => {
            for l in levels {
                let v = json!(l.value);
                out.push(choice(
                    k,
                    "at_least",
                    &v,
                    format!("{name} reaches at least level {} “{}”", l.value, l.label),
                ));
                out.push(choice(
                    k,
                    "at_most",
                    &v,
                    format!("{name} reaches at most level {} “{}”", l.value, l.label),
                ));
                for c in &l.criteria {
                    out.push(choice(
                        k,
                        "includes",
                        &json!(c.key),
                        format!("{name} has “{}” ticked", short(&c.text)),
                    ));
                }
            }
        }
        QuestionKind::Number { .. } => {
            for (test, words) in [
                ("equals", "equals"),
                ("at_least", "is at least"),
                ("at_most", "is at most"),
            ] {
                out.push(Choice {
                    value: format!("{k}|{test}|"),
                    label: format!("{name} {words} the number given"),
                    needs_number: true,
                });
            }
        }
        QuestionKind::Text { .. } => {}
    }
    out.push(choice(
        k,
        "answered",
        &json!(true),
        format!("{name} is answered"),
    ));
    out
}

/// A posted choice (and the number typed beside it) as a condition document.
pub fn condition_from_choice(value: &str, number: &str) -> Option<Value> {
    let mut parts = value.splitn(3, '|');
    let (key, test, arg) = (parts.next()?, parts.next()?, parts.next()?);
    let arg: Value = if arg.is_empty() {
        let n = number.trim();
        n.parse::<i64>()
            .map(|i| json!(i))
            .or_else(|_| n.parse::<f64>().map(|f| json!(f)))
            .unwrap_or_else(|_| json!(n))
    } else {
        serde_json::from_str(arg).ok()?
    };
    Some(json!({"question": key, test: arg}))
}

/// A condition as builder rows: `(choice value, number)` for each test, and whether all or
/// any of them must hold. `None` when the builder cannot show it (`in`, `not`, nesting), in
/// which case the editor keeps it as written.
pub fn builder_rows(c: &Condition) -> Option<(&'static str, Vec<(String, String)>)> {
    fn row(c: &Condition) -> Option<(String, String)> {
        use super::CondValue;
        let cv = |v: &CondValue| match v {
            CondValue::Key(k) => json!(k),
            CondValue::Number(n) => {
                crate::domain::document::float_to_i64(*n).map_or_else(|| json!(n), |i| json!(i))
            }
            CondValue::Bool(b) => json!(b),
        };
        let (q, test, v) = match c {
            Condition::Equals { question, value } => (question, "equals", cv(value)),
            Condition::Includes { question, option } => (question, "includes", json!(option)),
            Condition::AtLeast { question, n } => {
                (question, "at_least", cv(&CondValue::Number(*n)))
            }
            Condition::AtMost { question, n } => (question, "at_most", cv(&CondValue::Number(*n))),
            Condition::Answered { question } => (question, "answered", json!(true)),
            _ => return None,
        };
        Some((format!("{q}|{test}|{v}"), v.to_string()))
    }
    match c {
        Condition::All(items) => Some(("all", items.iter().map(row).collect::<Option<_>>()?)),
        Condition::Any(items) => Some(("any", items.iter().map(row).collect::<Option<_>>()?)),
        single => Some(("all", vec![row(single)?])),
    }
}

/// [`builder_rows`] for a condition as written in a document that does not load (a change
/// refused for another field is shown again with what was typed, and its condition must not
/// be lost): the same tests, read from the JSON. `None` for what the builder cannot show.
pub fn builder_rows_from_json(c: &Value) -> Option<(&'static str, Vec<(String, String)>)> {
    fn row(c: &Value) -> Option<(String, String)> {
        let map = c.as_object()?;
        let question = map.get("question")?.as_str()?;
        if map.len() != 2 {
            return None;
        }
        let (test, v) = map.iter().find(|(k, _)| k.as_str() != "question")?;
        if !["equals", "includes", "at_least", "at_most", "answered"].contains(&test.as_str()) {
            return None;
        }
        Some((format!("{question}|{test}|{v}"), v.to_string()))
    }
    let items = |v: &Value| -> Option<Vec<(String, String)>> {
        v.as_array()?.iter().map(row).collect::<Option<_>>()
    };
    match c.as_object() {
        Some(m) if m.len() == 1 && m.contains_key("all") => Some(("all", items(&m["all"])?)),
        Some(m) if m.len() == 1 && m.contains_key("any") => Some(("any", items(&m["any"])?)),
        _ => Some(("all", vec![row(c)?])),
    }
}

/// Builder rows back to a condition: `None` when no row was chosen.
pub fn condition_from_rows(mode: &str, rows: &[(String, String)]) -> Option<Value> {
    let tests: Vec<Value> = rows
        .iter()
        .filter(|(choice, _)| !choice.is_empty())
        .filter_map(|(choice, number)| condition_from_choice(choice, number))
        .collect();
    match tests.len() {
        0 => None,
        1 => tests.into_iter().next(),
        _ if mode == "any" => Some(json!({"any": tests})),
        _ => Some(json!({"all": tests})),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::questionnaire;

    #[test]
    fn every_scaffold_and_the_blank_set_load() {
        for (kind, _) in TYPES {
            let mut doc = blank("x", "1", "X", &["acute".into()]);
            doc["domains"][0]["questions"][0] = scaffold(kind, "q").unwrap();
            let text = doc.to_string();
            assert!(
                questionnaire::load(text.as_bytes()).is_ok(),
                "{kind}: {text}"
            );
        }
    }

    #[test]
    fn fields_become_a_document_fragment_without_blank_or_removed_rows() {
        let m = from_fields([
            ("key", "q"),
            ("options[0].key", "a"),
            ("options[0].score", "1.5"),
            ("options[1].key", "b"),
            ("options[1].score", ""),
            ("options[2].key", "c"),
            ("options[2].remove", "yes"),
            ("options[10].key", ""),
            ("options[10].label", ""),
            ("required", "yes"),
            ("weight", "x2"),
        ]);
        assert_eq!(
            Value::Object(m),
            json!({"key": "q", "required": true, "weight": "x2",
                   "options": [{"key": "a", "score": 1.5}, {"key": "b", "score": null}]})
        );
    }

    #[test]
    fn a_condition_in_a_document_that_does_not_load_becomes_rows() {
        let one = json!({"question": "q1", "equals": true});
        assert_eq!(
            builder_rows_from_json(&one),
            Some((
                "all",
                vec![("q1|equals|true".to_string(), "true".to_string())]
            ))
        );
        let any =
            json!({"any": [{"question": "q1", "equals": "a"}, {"question": "q2", "at_least": 3}]});
        let (mode, rows) = builder_rows_from_json(&any).unwrap();
        assert_eq!(mode, "any");
        assert_eq!(rows[0].0, "q1|equals|\"a\"");
        assert_eq!(rows[1].0, "q2|at_least|3");
        assert_eq!(
            builder_rows_from_json(&json!({"not": {"question": "q1", "answered": true}})),
            None
        );
        // The same rows as the loaded model gives, for a chosen test.
        let back = condition_from_choice("q1|equals|true", "").unwrap();
        assert_eq!(back, one);
    }

    #[test]
    fn a_chosen_test_becomes_a_condition_and_back() {
        let c = condition_from_rows(
            "any",
            &[
                ("q1|equals|\"yes\"".into(), String::new()),
                ("n|at_least|".into(), "4".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            c,
            json!({"any": [{"question": "q1", "equals": "yes"}, {"question": "n", "at_least": 4}]})
        );
        assert_eq!(
            condition_from_rows("all", &[(String::new(), String::new())]),
            None
        );
    }
}
