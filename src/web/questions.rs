//! Questions as HTML form fields, and form fields back into answers. The administrator's
//! preview and the respondents' pages both use this, so a preview shows exactly what a
//! respondent will see. Each question posts as `q.<key>` (repeated for lists); "not
//! applicable" and "none of these" are the special values of `domain::answers`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::domain::answers::{self, Answer, Answers, FORM_NA, FORM_NONE};
use crate::domain::questionnaire::{CondValue, Condition, Question, QuestionKind, Questionnaire};
use crate::domain::FieldError;

pub const FIELD_PREFIX: &str = "q.";

/// Group submitted `q.<key>` fields by question key.
pub fn form_values(pairs: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in pairs {
        if let Some(key) = name.strip_prefix(FIELD_PREFIX) {
            out.entry(key.to_string()).or_default().push(value.clone());
        }
    }
    out
}

/// Parse the submitted fields of the questions in `domains` (all when `None`) into answers,
/// with an error per question that could not be read. Unknown keys are reported too.
pub fn answers_from_form(
    q: &Questionnaire,
    values: &BTreeMap<String, Vec<String>>,
    domains: Option<&[usize]>,
) -> (Answers, Vec<FieldError>) {
    let mut given = Answers::new();
    let mut errors = Vec::new();
    for (domain_index, question) in q.questions() {
        if domains.is_some_and(|d| !d.contains(&domain_index)) {
            continue;
        }
        let Some(raw) = values.get(&question.key) else {
            continue;
        };
        match answers::from_form(question, raw) {
            Ok(Some(answer)) => {
                given.insert(question.key.clone(), answer);
            }
            Ok(None) => {}
            Err(message) => errors.push(FieldError::new(question.key.clone(), message)),
        }
    }
    for key in values.keys() {
        if q.question(key).is_none() {
            errors.push(FieldError::new(
                key.clone(),
                "there is no such question in this version",
            ));
        }
    }
    (given, errors)
}

fn cond_value(v: &CondValue) -> String {
    match v {
        CondValue::Key(k) => format!("\"{k}\""),
        CondValue::Number(n) => n.to_string(),
        CondValue::Bool(true) => "yes".into(),
        CondValue::Bool(false) => "no".into(),
    }
}

/// A condition in words, for the preview ("shown when ...").
pub fn describe_condition(c: &Condition) -> String {
    match c {
        Condition::Equals { question, value } => format!("{question} is {}", cond_value(value)),
        Condition::In { question, values } => format!(
            "{question} is one of {}",
            values.iter().map(cond_value).collect::<Vec<_>>().join(", ")
        ),
        Condition::Includes { question, option } => format!("{question} includes \"{option}\""),
        Condition::AtLeast { question, n } => format!("{question} is at least {n}"),
        Condition::AtMost { question, n } => format!("{question} is at most {n}"),
        Condition::Answered { question } => format!("{question} is answered"),
        Condition::All(cs) => format!(
            "({})",
            cs.iter()
                .map(describe_condition)
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        Condition::Any(cs) => format!(
            "({})",
            cs.iter()
                .map(describe_condition)
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Condition::Not(c) => format!("not {}", describe_condition(c)),
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn choice(value: impl Into<String>, label: &str, checked: bool, exclusive: bool) -> Value {
    json!({"value": value.into(), "label": label, "checked": checked, "exclusive": exclusive})
}

/// Everything a template needs to draw one question. `raw` is what was submitted (shown back
/// after an error so nothing typed is lost); otherwise the stored answer fills the fields.
pub fn question_view(
    question: &Question,
    answer: Option<&Answer>,
    raw: Option<&[String]>,
    visible: bool,
    error: Option<&str>,
) -> Value {
    let raw: Vec<&str> = raw
        .map(|r| r.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let is_na = matches!(answer, Some(Answer::Na)) || raw.contains(&FORM_NA);
    let picked = |v: &str| -> bool {
        if !raw.is_empty() {
            return raw.contains(&v);
        }
        match answer {
            Some(Answer::Scale(n)) => n.to_string() == v,
            Some(Answer::Single(k)) => k == v,
            Some(Answer::YesNo(b)) => (if *b { "yes" } else { "no" }) == v,
            Some(Answer::Multi(ks)) | Some(Answer::Checklist(ks)) => ks.iter().any(|k| k == v),
            _ => false,
        }
    };
    let mut choices = Vec::new();
    let mut groups = Vec::new();
    let (mut control, mut value, mut unit, mut max_length) = ("radios", String::new(), None, None);
    match &question.kind {
        QuestionKind::Scale { levels } => {
            choices = levels
                .iter()
                .map(|l| {
                    choice(
                        l.value.to_string(),
                        &l.label,
                        picked(&l.value.to_string()),
                        false,
                    )
                })
                .collect();
        }
        QuestionKind::Single { options } => {
            choices = options
                .iter()
                .map(|o| choice(&o.key, &o.label, picked(&o.key), false))
                .collect();
        }
        QuestionKind::YesNo { .. } => {
            choices = vec![
                choice("yes", "Yes", picked("yes"), false),
                choice("no", "No", picked("no"), false),
            ];
        }
        QuestionKind::Multi { options, .. } => {
            control = "checkboxes";
            choices = options
                .iter()
                .map(|o| choice(&o.key, &o.label, picked(&o.key), o.exclusive))
                .collect();
        }
        QuestionKind::Checklist { levels } => {
            control = "checklist";
            let none_ticked = raw.contains(&FORM_NONE)
                || matches!(answer, Some(Answer::Checklist(k)) if k.is_empty() && raw.is_empty());
            groups = levels
                .iter()
                .filter(|l| !l.criteria.is_empty())
                .map(|l| {
                    json!({
                        "label": format!("Level {}: {}", l.value, l.label),
                        "criteria": l.criteria.iter().map(|c| choice(&c.key, &c.text, picked(&c.key), false)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            choices = vec![choice(
                FORM_NONE,
                "None of these are in place",
                none_ticked,
                true,
            )];
        }
        QuestionKind::Number { unit: u, .. } => {
            control = "number";
            unit = u.clone();
            value = match (raw.first(), answer) {
                (Some(r), _) if *r != FORM_NA => (*r).to_string(),
                (_, Some(Answer::Number(n))) => number_text(*n),
                _ => String::new(),
            };
        }
        QuestionKind::Text { max_length: m } => {
            control = "text";
            max_length = Some(*m);
            value = match (raw.first(), answer) {
                (Some(r), _) if *r != FORM_NA => (*r).to_string(),
                (_, Some(Answer::Text(t))) => t.clone(),
                _ => String::new(),
            };
        }
    }
    json!({
        "key": question.key,
        "field": format!("{FIELD_PREFIX}{}", question.key),
        "id": format!("q-{}", question.key),
        "text": question.text,
        "help": question.help,
        "required": question.required,
        "allow_na": question.allow_na,
        "na_checked": is_na,
        "na_value": FORM_NA,
        "is_radios": control == "radios",
        "is_checkboxes": control == "checkboxes",
        "is_checklist": control == "checklist",
        "is_number": control == "number",
        "is_text": control == "text",
        "choices": choices,
        "groups": groups,
        "value": value,
        "unit": unit,
        "max_length": max_length,
        "visible": visible,
        "condition": question.show_if.as_ref().map(describe_condition),
        "error": error,
        "answered": answer.is_some(),
    })
}

/// Every domain with its questions drawn, given answers, submitted fields and errors.
pub fn domain_views(
    q: &Questionnaire,
    given: &Answers,
    submitted: &BTreeMap<String, Vec<String>>,
    visible: &BTreeSet<String>,
    errors: &[FieldError],
) -> Vec<Value> {
    q.domains
        .iter()
        .map(|d| {
            json!({
                "key": d.key,
                "title": d.title,
                "description": d.description,
                "questions": d.questions.iter().map(|question| {
                    let error = errors.iter().find(|e| e.path == question.key).map(|e| e.message.as_str());
                    question_view(
                        question,
                        given.get(&question.key),
                        error.and(submitted.get(&question.key).map(Vec::as_slice)),
                        visible.contains(&question.key),
                        error,
                    )
                }).collect::<Vec<_>>(),
            })
        })
        .collect()
}
