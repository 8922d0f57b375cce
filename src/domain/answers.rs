//! Answers to a question set, checked against the questions they answer.
//!
//! Answers arrive three ways: an answers file (command line, imports), JSON stored with a
//! submission, and HTML form fields from the web app. All three end up as the same typed
//! [`Answer`], checked by the rules of format sections 2 and 7, so scoring never sees a
//! value that does not fit its question.
//!
//! "No answer" is never stored: `null`, an empty `multi` list, blank text and empty form
//! input all mean the question is unanswered. An empty `checklist` list *is* an answer
//! (nothing ticked, the first level). HTML forms cannot send an empty list, so the web
//! form sends [`FORM_NONE`] for "nothing ticked" and [`FORM_NA`] for "not applicable".

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::document::{self, Node};
use crate::domain::questionnaire::{ChecklistLevel, Question, QuestionKind, Questionnaire};
use crate::domain::{did_you_mean, plain_number, FieldError};

/// The largest answers file accepted, in bytes.
pub const MAX_ANSWERS_BYTES: usize = 2 * 1024 * 1024;

/// Form value meaning "not applicable".
pub const FORM_NA: &str = "__na__";

/// Form value meaning "none of the checklist criteria are ticked" (an answer, unlike an
/// empty form).
pub const FORM_NONE: &str = "__none__";

/// One answer, of the shape its question's type expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// "Not applicable", only where the question allows it.
    Na,
    Scale(i64),
    /// The ticked criterion keys, in the order the question lists them.
    Checklist(Vec<String>),
    Single(String),
    /// The chosen option keys, in the order the question lists them; never empty.
    Multi(Vec<String>),
    YesNo(bool),
    Number(f64),
    Text(String),
}

/// An answer serialises as it is written in an answers file ([`Answer::to_json`]).
impl serde::Serialize for Answer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Answers by question key.
pub type Answers = BTreeMap<String, Answer>;

impl Answer {
    /// The answer as written in an answers file or stored as JSON (format section 2).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Answer::Na => serde_json::json!({"na": true}),
            Answer::Scale(v) => Value::from(*v),
            Answer::Checklist(keys) | Answer::Multi(keys) => {
                Value::Array(keys.iter().cloned().map(Value::String).collect())
            }
            Answer::Single(key) => Value::String(key.clone()),
            Answer::YesNo(b) => Value::Bool(*b),
            Answer::Number(x) => serde_json::Number::from_f64(*x)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Answer::Text(s) => Value::String(s.clone()),
        }
    }
}

/// The level a checklist answer reaches, when the answer is a checklist answer.
pub fn checklist_level(q: &Question, answer: &Answer) -> Option<i64> {
    match (&q.kind, answer) {
        (QuestionKind::Checklist { levels }, Answer::Checklist(ticked)) => {
            ChecklistLevel::reached(levels, ticked).map(|l| l.value)
        }
        _ => None,
    }
}

/// Whether an answer counts as answered (for `required` and `answered` conditions).
/// An empty `multi` list does not.
pub fn is_answered(answer: &Answer) -> bool {
    !matches!(answer, Answer::Multi(keys) if keys.is_empty())
}

/// Checks one stored or uploaded value for one question.
///
/// Returns `Ok(None)` for "no answer" (`null`, an empty `multi` list, blank text) and a
/// plain sentence for a value that does not fit.
pub fn parse_value(q: &Question, v: &serde_json::Value) -> Result<Option<Answer>, String> {
    use serde_json::Value;
    if v.is_null() {
        return Ok(None);
    }
    if let Value::Object(map) = v {
        if map.len() == 1 && map.get("na") == Some(&Value::Bool(true)) {
            return not_applicable(q).map(Some);
        }
        return Err(format!(
            "must be {}, or {{na: true}} for not applicable",
            expected(q)
        ));
    }
    let answer = match &q.kind {
        QuestionKind::Scale { .. } => match v.as_f64() {
            Some(x) => scale(q, x)?,
            None => return Err(wrong_type(q, v)),
        },
        QuestionKind::Checklist { .. } => Answer::Checklist(keys(q, v)?),
        QuestionKind::Single { .. } => match v {
            Value::String(key) => single(q, key)?,
            _ => return Err(wrong_type(q, v)),
        },
        QuestionKind::Multi { .. } => {
            let chosen = keys(q, v)?;
            if chosen.is_empty() {
                return Ok(None);
            }
            Answer::Multi(chosen)
        }
        QuestionKind::YesNo { .. } => match v {
            Value::Bool(b) => Answer::YesNo(*b),
            Value::String(s) => {
                return Err(format!(
                    "must be true or false, not \"{s}\" (write true or false without quotes)"
                ))
            }
            _ => return Err(wrong_type(q, v)),
        },
        QuestionKind::Number { .. } => match v.as_f64() {
            Some(x) => number(q, x)?,
            None => return Err(wrong_type(q, v)),
        },
        QuestionKind::Text { .. } => match v {
            Value::String(s) => return text(q, s),
            _ => return Err(wrong_type(q, v)),
        },
    };
    Ok(Some(answer))
}

/// What a question's answer looks like, for "must be ..." messages.
fn expected(q: &Question) -> String {
    match &q.kind {
        QuestionKind::Scale { levels } => {
            let values: Vec<String> = levels.iter().map(|l| l.value.to_string()).collect();
            format!("one of the level values {}", values.join(", "))
        }
        QuestionKind::Checklist { .. } => "a list of ticked criterion keys".to_string(),
        QuestionKind::Single { .. } => "one option key".to_string(),
        QuestionKind::Multi { .. } => "a list of option keys".to_string(),
        QuestionKind::YesNo { .. } => "true or false".to_string(),
        QuestionKind::Number { .. } => "a number".to_string(),
        QuestionKind::Text { .. } => "text".to_string(),
    }
}

fn describe(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn wrong_type(q: &Question, v: &serde_json::Value) -> String {
    format!("must be {}, not {}", expected(q), describe(v))
}

fn not_applicable(q: &Question) -> Result<Answer, String> {
    if q.allow_na {
        Ok(Answer::Na)
    } else {
        Err("this question does not allow \"not applicable\"; give an answer".to_string())
    }
}

fn scale(q: &Question, x: f64) -> Result<Answer, String> {
    let QuestionKind::Scale { levels } = &q.kind else {
        return Err(expected(q));
    };
    match document::float_to_i64(x) {
        Some(v) if levels.iter().any(|l| l.value == v) => Ok(Answer::Scale(v)),
        _ => Err(format!(
            "{} is not one of the levels; use {}",
            plain_number(x),
            expected(q)
        )),
    }
}

fn single(q: &Question, key: &str) -> Result<Answer, String> {
    let QuestionKind::Single { options } = &q.kind else {
        return Err(expected(q));
    };
    if options.iter().any(|o| o.key == key) {
        Ok(Answer::Single(key.to_string()))
    } else {
        let keys: Vec<&str> = options.iter().map(|o| o.key.as_str()).collect();
        Err(unknown_key("option", key, &keys))
    }
}

fn unknown_key(what: &str, key: &str, keys: &[&str]) -> String {
    match did_you_mean(key, keys) {
        Some(s) => format!("there is no {what} \"{key}\" (did you mean \"{s}\"?)"),
        None => format!("there is no {what} \"{key}\"; use {}", keys.join(", ")),
    }
}

/// The keys a checklist or multi question offers, in document order, with what they are
/// called, and the exclusive multi options.
fn choices(q: &Question) -> (Vec<&str>, &'static str, Vec<&str>) {
    match &q.kind {
        QuestionKind::Checklist { levels } => (
            levels
                .iter()
                .flat_map(|l| l.criteria.iter().map(|c| c.key.as_str()))
                .collect(),
            "criterion",
            Vec::new(),
        ),
        QuestionKind::Multi { options, .. } => (
            options.iter().map(|o| o.key.as_str()).collect(),
            "option",
            options
                .iter()
                .filter(|o| o.exclusive)
                .map(|o| o.key.as_str())
                .collect(),
        ),
        _ => (Vec::new(), "option", Vec::new()),
    }
}

/// Why a list of chosen keys does not fit its question.
enum KeyProblem {
    Unknown(String),
    Repeated(String),
    NotAlone(String),
}

impl KeyProblem {
    fn message(&self, q: &Question) -> String {
        let (offered, what, _) = choices(q);
        match self {
            KeyProblem::Unknown(key) => unknown_key(what, key, &offered),
            KeyProblem::Repeated(key) => {
                format!("\"{key}\" is listed twice; list each {what} once")
            }
            KeyProblem::NotAlone(key) => {
                format!("\"{key}\" must be chosen on its own; remove it or the other options")
            }
        }
    }
}

/// Checks a list of chosen keys and puts them in the question's order.
fn chosen_keys(q: &Question, chosen: &[&str]) -> Result<Vec<String>, KeyProblem> {
    let (offered, _, exclusive) = choices(q);
    let mut seen = BTreeSet::new();
    for key in chosen {
        if !offered.contains(key) {
            return Err(KeyProblem::Unknown(key.to_string()));
        }
        if !seen.insert(*key) {
            return Err(KeyProblem::Repeated(key.to_string()));
        }
    }
    if chosen.len() > 1 {
        if let Some(alone) = chosen.iter().find(|k| exclusive.contains(k)) {
            return Err(KeyProblem::NotAlone(alone.to_string()));
        }
    }
    Ok(offered
        .iter()
        .filter(|k| seen.contains(*k))
        .map(|k| k.to_string())
        .collect())
}

fn keys(q: &Question, v: &serde_json::Value) -> Result<Vec<String>, String> {
    let serde_json::Value::Array(items) = v else {
        return Err(wrong_type(q, v));
    };
    let mut chosen = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(s) => chosen.push(s),
            None => return Err(format!("must be {}; found {}", expected(q), describe(item))),
        }
    }
    chosen_keys(q, &chosen).map_err(|p| p.message(q))
}

/// "Enter a (whole) number between 0 and 100" and its variants for one question.
fn number_instruction(q: &Question) -> String {
    let QuestionKind::Number {
        min, max, integer, ..
    } = &q.kind
    else {
        return "Enter a number".to_string();
    };
    let what = if *integer {
        "a whole number"
    } else {
        "a number"
    };
    match (min, max) {
        (Some(lo), Some(hi)) => format!(
            "Enter {what} between {} and {}",
            plain_number(*lo),
            plain_number(*hi)
        ),
        (Some(lo), None) => format!("Enter {what} of {} or more", plain_number(*lo)),
        (None, Some(hi)) => format!("Enter {what} of {} or less", plain_number(*hi)),
        (None, None) => format!("Enter {what}"),
    }
}

/// Checks a number against the question's range and `integer` rule; the error is the
/// instruction to show ("Enter a whole number between 0 and 100").
fn number(q: &Question, x: f64) -> Result<Answer, String> {
    let QuestionKind::Number {
        min, max, integer, ..
    } = &q.kind
    else {
        return Err(number_instruction(q));
    };
    let fits = x.is_finite()
        && min.is_none_or(|lo| x >= lo)
        && max.is_none_or(|hi| x <= hi)
        && (!integer || x.fract() == 0.0);
    if fits {
        Ok(Answer::Number(x))
    } else {
        Err(number_instruction(q))
    }
}

fn text(q: &Question, s: &str) -> Result<Option<Answer>, String> {
    let QuestionKind::Text { max_length } = &q.kind else {
        return Err(expected(q));
    };
    if s.trim().is_empty() {
        return Ok(None);
    }
    if s.chars().count() > *max_length as usize {
        return Err(format!("Answer must be {max_length} characters or fewer"));
    }
    Ok(Some(Answer::Text(s.to_string())))
}

/// Checks a whole set of answers against a question set, reporting every problem at once
/// with the question key as its path. Unanswered questions are left out of the result.
pub fn validate(
    q: &Questionnaire,
    raw: &BTreeMap<String, serde_json::Value>,
) -> Result<Answers, Vec<FieldError>> {
    let mut answers = Answers::new();
    let mut errors = Vec::new();
    let keys: Vec<&str> = q.questions().map(|(_, q)| q.key.as_str()).collect();
    let by_key: BTreeMap<&str, &Question> =
        q.questions().map(|(_, q)| (q.key.as_str(), q)).collect();
    for (key, value) in raw {
        let Some(question) = by_key.get(key.as_str()) else {
            // Suggestions cost time; a file of thousands of wrong keys gets them for the
            // first few only.
            let suggestion = (errors.len() < 50)
                .then(|| did_you_mean(key, &keys))
                .flatten();
            let message = match suggestion {
                Some(s) => format!("there is no question \"{key}\" (did you mean \"{s}\"?)"),
                None => format!(
                    "there is no question \"{key}\" in {} version {}",
                    q.key, q.version
                ),
            };
            errors.push(FieldError::new(key.as_str(), message));
            continue;
        };
        match parse_value(question, value) {
            Ok(Some(answer)) => {
                answers.insert(key.clone(), answer);
            }
            Ok(None) => {}
            Err(message) => errors.push(FieldError::new(key.as_str(), message)),
        }
    }
    if errors.is_empty() {
        Ok(answers)
    } else {
        Err(errors)
    }
}

/// An answers file (format section 7) before its answers are checked against a question
/// set.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswersFile {
    pub questionnaire: String,
    pub version: String,
    pub answers: BTreeMap<String, serde_json::Value>,
}

impl AnswersFile {
    /// Checks that the file is for this question set and that every answer fits.
    pub fn validate_for(&self, q: &Questionnaire) -> Result<Answers, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.questionnaire != q.key {
            errors.push(FieldError::new(
                "questionnaire",
                format!(
                    "these answers are for \"{}\" but the question set is \"{}\"",
                    self.questionnaire, q.key
                ),
            ));
        }
        if self.version != q.version {
            errors.push(FieldError::new(
                "version",
                format!(
                    "these answers are for version \"{}\" but the question set is version \"{}\"",
                    self.version, q.version
                ),
            ));
        }
        match validate(q, &self.answers) {
            Ok(answers) if errors.is_empty() => Ok(answers),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }
}

/// Reads an answers file in YAML or JSON, with the same protections as the definition
/// loader. Answers are kept as JSON values, to be checked with [`AnswersFile::validate_for`].
pub fn parse_answers_file(input: &[u8]) -> Result<AnswersFile, Vec<FieldError>> {
    let root = document::parse(input, MAX_ANSWERS_BYTES).map_err(|e| vec![e])?;
    let Node::Map(entries) = &root else {
        return Err(vec![FieldError::new(
            "",
            format!(
                "the top level must be a mapping with questionnaire:, version: and answers:, \
                 not {}",
                root.describe()
            ),
        )]);
    };
    let mut errors = Vec::new();
    const FIELDS: &[&str] = &["questionnaire", "version", "answers"];
    for (name, _) in entries {
        if !FIELDS.contains(&name.as_str()) {
            let message = match did_you_mean(name, FIELDS) {
                Some(s) => format!("unknown field \"{name}\" (did you mean \"{s}\"?)"),
                None => format!(
                    "unknown field \"{name}\"; the fields allowed here are questionnaire, \
                     version and answers"
                ),
            };
            errors.push(FieldError::new("", message));
        }
    }
    let mut text_field = |name: &str| match root.get(name) {
        Some(Node::Text(s)) if !s.trim().is_empty() => s.clone(),
        Some(Node::Int(_) | Node::Float(_)) => {
            errors.push(FieldError::new(
                name,
                "must be text; put it in quotes (for example version: \"2025.1\")",
            ));
            String::new()
        }
        Some(other) => {
            errors.push(FieldError::new(
                name,
                format!("must be text, not {}", other.describe()),
            ));
            String::new()
        }
        None => {
            errors.push(FieldError::new(
                "",
                format!("missing required field \"{name}\""),
            ));
            String::new()
        }
    };
    let questionnaire = text_field("questionnaire");
    let version = text_field("version");
    let mut answers = BTreeMap::new();
    match root.get("answers") {
        None | Some(Node::Null) => {}
        Some(Node::Map(items)) => {
            for (key, value) in items {
                match value.to_json() {
                    Ok(v) => {
                        answers.insert(key.clone(), v);
                    }
                    Err(message) => errors.push(FieldError::new(key.as_str(), message)),
                }
            }
        }
        Some(other) => errors.push(FieldError::new(
            "answers",
            format!(
                "must be a mapping of question key to answer, not {}",
                other.describe()
            ),
        )),
    }
    if errors.is_empty() {
        Ok(AnswersFile {
            questionnaire,
            version,
            answers,
        })
    } else {
        Err(errors)
    }
}

/// Converts the values an HTML form sent for one question into an answer.
///
/// Empty input is no answer. [`FORM_NA`] means "not applicable" and [`FORM_NONE`] means
/// "nothing ticked" for a checklist. Messages say what to do, in the GOV.UK style.
pub fn from_form(q: &Question, raw: &[String]) -> Result<Option<Answer>, String> {
    let values: Vec<&str> = raw
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    if values.contains(&FORM_NA) {
        if values.len() > 1 {
            return Err("Select \"not applicable\" or give an answer, not both".to_string());
        }
        return not_applicable(q)
            .map(Some)
            .map_err(|_| "Select an answer; \"not applicable\" is not allowed here".to_string());
    }
    let one = || match values.as_slice() {
        [only] => Some(*only),
        _ => None,
    };
    let answer = match &q.kind {
        QuestionKind::Scale { .. } => {
            let value = one().and_then(|v| v.parse::<f64>().ok());
            match value.map(|x| scale(q, x)) {
                Some(Ok(answer)) => answer,
                _ => return Err("Select one option".to_string()),
            }
        }
        QuestionKind::Single { .. } => match one().map(|key| single(q, key)) {
            Some(Ok(answer)) => answer,
            _ => return Err("Select one option".to_string()),
        },
        QuestionKind::Checklist { .. } => {
            if values == [FORM_NONE] {
                return Ok(Some(Answer::Checklist(Vec::new())));
            }
            // The same rule as a multi-select's exclusive option: a conflict is an error,
            // never a silent choice of one of the two.
            if values.contains(&FORM_NONE) {
                return Err(
                    "Select \"None of these are in place\" on its own, or untick it".to_string(),
                );
            }
            let ticked: Vec<&str> = values.into_iter().filter(|v| *v != FORM_NONE).collect();
            Answer::Checklist(
                chosen_keys(q, &ticked)
                    .map_err(|_| "Select the statements that apply".to_string())?,
            )
        }
        QuestionKind::Multi { .. } => {
            Answer::Multi(chosen_keys(q, &values).map_err(|p| match p {
                KeyProblem::NotAlone(key) => {
                    let label = option_label(q, &key).unwrap_or(&key);
                    format!("Select \"{label}\" on its own, or untick it")
                }
                _ => "Select the options that apply".to_string(),
            })?)
        }
        QuestionKind::YesNo { .. } => match one() {
            Some("yes") => Answer::YesNo(true),
            Some("no") => Answer::YesNo(false),
            _ => return Err("Select yes or no".to_string()),
        },
        QuestionKind::Number { .. } => {
            let raw = one().ok_or_else(|| number_instruction(q))?;
            let cleaned: String = raw.chars().filter(|c| *c != ',' && *c != ' ').collect();
            let x = cleaned
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| number_instruction(q))?;
            number(q, x)?
        }
        QuestionKind::Text { .. } => {
            // Text keeps its own spacing; only a wholly blank answer is no answer.
            let joined = raw
                .iter()
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("\n");
            return text(q, &joined);
        }
    };
    Ok(Some(answer))
}

fn option_label<'a>(q: &'a Question, key: &str) -> Option<&'a str> {
    match &q.kind {
        QuestionKind::Multi { options, .. } => options
            .iter()
            .find(|o| o.key == key)
            .map(|o| o.label.as_str()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::questionnaire::tests::example;
    use serde_json::json;

    fn question(key: &str) -> Question {
        example().question(key).unwrap().clone()
    }

    fn ok(key: &str, v: serde_json::Value) -> Option<Answer> {
        parse_value(&question(key), &v).unwrap()
    }

    fn err(key: &str, v: serde_json::Value) -> String {
        parse_value(&question(key), &v).unwrap_err()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_per_type() {
        assert_eq!(ok("wl-strategy", json!(3)), Some(Answer::Scale(3)));
        assert_eq!(ok("wl-strategy", json!(3.0)), Some(Answer::Scale(3)));
        assert_eq!(
            ok("wl-cio", json!(["nurse-lead", "cclo-named"])),
            Some(Answer::Checklist(strings(&["cclo-named", "nurse-lead"])))
        );
        assert_eq!(ok("wl-cio", json!([])), Some(Answer::Checklist(Vec::new())));
        assert_eq!(
            ok("sf-epr", json!("full")),
            Some(Answer::Single("full".into()))
        );
        assert_eq!(
            ok("sf-capabilities", json!(["pacs", "eprs"])),
            Some(Answer::Multi(strings(&["eprs", "pacs"])))
        );
        assert_eq!(ok("sf-capabilities", json!([])), None);
        assert_eq!(ok("sp-mfa", json!(false)), Some(Answer::YesNo(false)));
        assert_eq!(ok("sf-uptime", json!(99.5)), Some(Answer::Number(99.5)));
        assert_eq!(
            ok("sf-epr-notes", json!("hi")),
            Some(Answer::Text("hi".into()))
        );
        assert_eq!(ok("sf-epr-notes", json!("  ")), None);
        assert_eq!(ok("spp-skills", json!({"na": true})), Some(Answer::Na));
        assert_eq!(ok("wl-strategy", json!(null)), None);
    }

    #[test]
    fn bad_values_say_what_to_do() {
        assert_eq!(
            err("wl-strategy", json!(7)),
            "7 is not one of the levels; use one of the level values 1, 2, 3, 4, 5"
        );
        assert_eq!(
            err("hp-data-sharing", json!(2)),
            "2 is not one of the levels; use one of the level values 1, 3, 5"
        );
        assert!(err("wl-strategy", json!("3")).contains("not text"));
        assert_eq!(
            err("sf-epr", json!("ful")),
            "there is no option \"ful\" (did you mean \"full\"?)"
        );
        assert_eq!(
            err("wl-cio", json!(["cclo-named", "cclo-named"])),
            "\"cclo-named\" is listed twice; list each criterion once"
        );
        assert!(err("wl-cio", json!(["bogus"])).starts_with("there is no criterion \"bogus\""));
        assert_eq!(
            err("sf-capabilities", json!(["none", "pacs"])),
            "\"none\" must be chosen on its own; remove it or the other options"
        );
        assert!(err("sf-capabilities", json!("pacs")).contains("a list of option keys"));
        assert!(err("sf-capabilities", json!([1])).contains("found a number"));
        assert_eq!(
            err("sp-mfa", json!("yes")),
            "must be true or false, not \"yes\" (write true or false without quotes)"
        );
        assert_eq!(
            err("sf-uptime", json!(101)),
            "Enter a number between 0 and 100"
        );
        assert_eq!(
            err("spp-login-time", json!(2.5)),
            "Enter a whole number of 0 or more"
        );
        assert_eq!(
            err("wl-strategy", json!({"na": true})),
            "this question does not allow \"not applicable\"; give an answer"
        );
        assert!(err("spp-skills", json!({"na": false})).contains("{na: true}"));
        let long = "x".repeat(5001);
        assert_eq!(
            err("sf-epr-notes", json!(long)),
            "Answer must be 5000 characters or fewer"
        );
    }

    #[test]
    fn to_json_round_trips() {
        let q = example();
        let samples = [
            ("wl-strategy", Answer::Scale(4)),
            ("wl-cio", Answer::Checklist(strings(&["cclo-named"]))),
            ("wl-cio", Answer::Checklist(Vec::new())),
            ("sf-epr", Answer::Single("partial".into())),
            ("sf-capabilities", Answer::Multi(strings(&["eprs", "obs"]))),
            ("sp-mfa", Answer::YesNo(true)),
            ("sf-uptime", Answer::Number(99.9)),
            ("spp-login-time", Answer::Number(25.0)),
            ("sf-epr-notes", Answer::Text("note".into())),
            ("spp-skills", Answer::Na),
        ];
        for (key, answer) in samples {
            let question = q.question(key).unwrap();
            assert_eq!(
                parse_value(question, &answer.to_json()).unwrap(),
                Some(answer.clone()),
                "{key}"
            );
        }
        assert_eq!(Answer::Na.to_json(), json!({"na": true}));
        assert_eq!(Answer::Multi(strings(&["a"])).to_json(), json!(["a"]));
    }

    #[test]
    fn validate_reports_all_errors_with_keys() {
        let q = example();
        let raw: BTreeMap<String, serde_json::Value> = [
            ("wl-strategy", json!(9)),
            ("wl-stratgy", json!(3)),
            ("sp-mfa", json!(true)),
            ("spp-skills", json!({"na": true})),
            ("sf-capabilities", json!([])),
            ("unknown-thing", json!(1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let errors = validate(&q, &raw).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "unknown-thing: there is no question \"unknown-thing\" in wgll-acute version 2025.1",
                "wl-strategy: 9 is not one of the levels; use one of the level values 1, 2, 3, 4, 5",
                "wl-stratgy: there is no question \"wl-stratgy\" (did you mean \"wl-strategy\"?)",
            ]
        );
        let raw: BTreeMap<String, serde_json::Value> = [
            ("sp-mfa".to_string(), json!(true)),
            ("sf-capabilities".to_string(), json!([])),
        ]
        .into_iter()
        .collect();
        let answers = validate(&q, &raw).unwrap();
        assert_eq!(answers.len(), 1);
    }

    #[test]
    fn answers_files() {
        let file = parse_answers_file(
            b"questionnaire: wgll-acute\nversion: \"2025.1\"\nanswers:\n  sp-mfa: true\n  spp-skills: {na: true}\n",
        )
        .unwrap();
        assert_eq!(file.questionnaire, "wgll-acute");
        assert_eq!(file.answers.get("spp-skills"), Some(&json!({"na": true})));
        let answers = file.validate_for(&example()).unwrap();
        assert_eq!(answers.get("sp-mfa"), Some(&Answer::YesNo(true)));

        let json = br#"{"questionnaire": "wgll-acute", "version": "2025.1", "answers": {}}"#;
        assert!(parse_answers_file(json).unwrap().answers.is_empty());

        let errors =
            parse_answers_file(b"questionnaire: x\nversion: 2025.1\nanswer: {}\n").unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "(document): unknown field \"answer\" (did you mean \"answers\"?)",
                "version: must be text; put it in quotes (for example version: \"2025.1\")",
            ]
        );
        let errors = parse_answers_file(b"answers: [1]\n").unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        let errors = parse_answers_file(b"questionnaire: x\nversion: '1'\nanswers: {a: .nan}\n")
            .unwrap_err();
        assert_eq!(errors[0].to_string(), "a: must be a finite number");
        assert_eq!(parse_answers_file(b"").unwrap_err()[0].path, "(document)");
        assert_eq!(
            parse_answers_file(b"[1]").unwrap_err()[0].path,
            "(document)"
        );
    }

    #[test]
    fn hostile_answer_lists_are_refused_quickly() {
        use std::time::{Duration, Instant};
        let q = question("wl-cio");
        let start = Instant::now();
        let many = json!(vec!["cclo-named"; 200_000]);
        assert!(parse_value(&q, &many).unwrap_err().contains("listed twice"));
        let unknown: Vec<String> = (0..100_000).map(|i| format!("k{i}")).collect();
        let raw: BTreeMap<String, serde_json::Value> =
            unknown.into_iter().map(|k| (k, json!(1))).collect();
        assert_eq!(validate(&example(), &raw).unwrap_err().len(), 100_000);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn answers_for_another_version_are_refused() {
        let file = parse_answers_file(
            b"questionnaire: wgll-mental-health\nversion: '2024.1'\nanswers: {nope: 1}\n",
        )
        .unwrap();
        let errors = file.validate_for(&example()).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["questionnaire", "version", "nope"]);
    }

    fn form(key: &str, values: &[&str]) -> Result<Option<Answer>, String> {
        from_form(&question(key), &strings(values))
    }

    #[test]
    fn form_values() {
        assert_eq!(form("wl-strategy", &["3"]), Ok(Some(Answer::Scale(3))));
        assert_eq!(form("wl-strategy", &[]), Ok(None));
        assert_eq!(form("wl-strategy", &[""]), Ok(None));
        assert_eq!(form("wl-strategy", &["9"]), Err("Select one option".into()));
        assert_eq!(
            form("wl-strategy", &["1", "2"]),
            Err("Select one option".into())
        );
        assert_eq!(
            form("sf-epr", &["full"]),
            Ok(Some(Answer::Single("full".into())))
        );
        assert_eq!(form("sf-epr", &["nope"]), Err("Select one option".into()));
        assert_eq!(
            form("sf-capabilities", &["pacs", "eprs"]),
            Ok(Some(Answer::Multi(strings(&["eprs", "pacs"]))))
        );
        assert_eq!(
            form("sf-capabilities", &["none", "eprs"]),
            Err("Select \"None of these\" on its own, or untick it".into())
        );
        assert_eq!(
            form("sf-capabilities", &["bogus"]),
            Err("Select the options that apply".into())
        );
        assert_eq!(
            form("wl-cio", &["cclo-named"]),
            Ok(Some(Answer::Checklist(strings(&["cclo-named"]))))
        );
        assert_eq!(
            form("wl-cio", &[FORM_NONE]),
            Ok(Some(Answer::Checklist(Vec::new())))
        );
        assert_eq!(
            form("wl-cio", &["cclo-named", FORM_NONE]),
            Err("Select \"None of these are in place\" on its own, or untick it".into())
        );
        assert_eq!(form("wl-cio", &[]), Ok(None));
        assert_eq!(form("sp-mfa", &["yes"]), Ok(Some(Answer::YesNo(true))));
        assert_eq!(form("sp-mfa", &["no"]), Ok(Some(Answer::YesNo(false))));
        assert_eq!(form("sp-mfa", &["maybe"]), Err("Select yes or no".into()));
        assert_eq!(form("sf-uptime", &["99.5"]), Ok(Some(Answer::Number(99.5))));
        assert_eq!(
            form("sf-uptime", &[" 99.5 "]),
            Ok(Some(Answer::Number(99.5)))
        );
        assert_eq!(
            form("sf-uptime", &["lots"]),
            Err("Enter a number between 0 and 100".into())
        );
        assert_eq!(
            form("sf-uptime", &["NaN"]),
            Err("Enter a number between 0 and 100".into())
        );
        assert_eq!(
            form("spp-login-time", &["2.5"]),
            Err("Enter a whole number of 0 or more".into())
        );
        assert_eq!(
            form("spp-login-time", &["1,200"]),
            Ok(Some(Answer::Number(1200.0)))
        );
        assert_eq!(
            form("sf-epr-notes", &["  two spaces kept  "]),
            Ok(Some(Answer::Text("  two spaces kept  ".into())))
        );
        assert_eq!(form("sf-epr-notes", &["   "]), Ok(None));
        assert_eq!(form("spp-skills", &[FORM_NA]), Ok(Some(Answer::Na)));
        assert_eq!(
            form("spp-skills", &[FORM_NA, "3"]),
            Err("Select \"not applicable\" or give an answer, not both".into())
        );
        assert_eq!(
            form("wl-strategy", &[FORM_NA]),
            Err("Select an answer; \"not applicable\" is not allowed here".into())
        );
    }
}
