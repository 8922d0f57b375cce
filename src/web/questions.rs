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

/// Words quoted as the printed page quotes them.
fn quoted(words: &str) -> String {
    format!("\u{201c}{words}\u{201d}")
}

/// How a condition names a question: its text in quotes (the key when the version has no such
/// question, which the loader refuses, so only for safety).
fn question_words(q: &Questionnaire, key: &str) -> String {
    q.question(key).map_or_else(
        || key.to_string(),
        |x| format!("\u{201c}{}\u{201d}", x.text),
    )
}

/// A value a condition tests, in the words the respondent sees: an option's or level's label
/// rather than its key or number, "yes"/"no" for a yes/no question.
fn cond_value(q: &Questionnaire, key: &str, v: &CondValue) -> String {
    let kind = q.question(key).map(|x| &x.kind);
    match (kind, v) {
        (Some(QuestionKind::Single { options }), CondValue::Key(k)) => options
            .iter()
            .find(|o| o.key == *k)
            .map_or_else(|| quoted(k), |o| quoted(&o.label)),
        (Some(QuestionKind::Multi { options, .. }), CondValue::Key(k)) => options
            .iter()
            .find(|o| o.key == *k)
            .map_or_else(|| quoted(k), |o| quoted(&o.label)),
        (Some(QuestionKind::Scale { levels }), CondValue::Number(n)) => levels
            .iter()
            .find(|l| l.value as f64 == *n)
            .map_or_else(|| number_text(*n), |l| quoted(&l.label)),
        (Some(QuestionKind::Checklist { levels }), CondValue::Number(n)) => levels
            .iter()
            .find(|l| l.value as f64 == *n)
            .map_or_else(|| number_text(*n), |l| quoted(&l.label)),
        (_, CondValue::Key(k)) => quoted(k),
        (_, CondValue::Number(n)) => number_text(*n),
        (_, CondValue::Bool(true)) => "yes".into(),
        (_, CondValue::Bool(false)) => "no".into(),
    }
}

/// A condition in words, naming questions by their text and values by their labels ("shown
/// when \u{201c}Do you have an EPR?\u{201d} is \"Partly\""), for the preview, the answering
/// pages and the printed copy, so nobody has to read the question set's keys.
pub fn describe_condition(q: &Questionnaire, c: &Condition) -> String {
    condition_words(q, c, false)
}

/// `c` in words, or its negation when `negated` ("is not", "is none of", "does not include",
/// ...), so that `not` never lands in front of a question's text.
fn condition_words(q: &Questionnaire, c: &Condition, negated: bool) -> String {
    let say = |yes: &'static str, no: &'static str| if negated { no } else { yes };
    let values = |question: &str, values: &[CondValue]| {
        values
            .iter()
            .map(|v| cond_value(q, question, v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let group = |cs: &[Condition], joiner: &str| {
        format!(
            "({})",
            cs.iter()
                .map(|c| condition_words(q, c, false))
                .collect::<Vec<_>>()
                .join(joiner)
        )
    };
    match c {
        Condition::Equals { question, value } => format!(
            "{} {} {}",
            question_words(q, question),
            say("is", "is not"),
            cond_value(q, question, value)
        ),
        Condition::In {
            question,
            values: vs,
        } => format!(
            "{} {} {}",
            question_words(q, question),
            say("is one of", "is none of"),
            values(question, vs)
        ),
        Condition::Includes { question, option } => format!(
            "{} {} {}",
            question_words(q, question),
            say("includes", "does not include"),
            cond_value(q, question, &CondValue::Key(option.clone()))
        ),
        Condition::AtLeast { question, n } => format!(
            "{} {} {n}",
            question_words(q, question),
            say("is at least", "is less than")
        ),
        Condition::AtMost { question, n } => format!(
            "{} {} {n}",
            question_words(q, question),
            say("is at most", "is more than")
        ),
        Condition::Answered { question } => format!(
            "{} {}",
            question_words(q, question),
            say("is answered", "is not answered")
        ),
        Condition::All(cs) if !negated => group(cs, " and "),
        Condition::Any(cs) if !negated => group(cs, " or "),
        Condition::Not(inner) if !negated => condition_words(q, inner, true),
        // A negated group, or a double negation.
        other => format!("not {}", condition_words(q, other, false)),
    }
}

fn number_text(n: f64) -> String {
    crate::domain::plain_number(n)
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
        "error": error,
        "answered": answer.is_some(),
        // A respondent's page has no section headings, so its questions are second-level
        // headings; the preview, with a heading per section, sets this to false.
        "top_level": false,
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
                    let mut view = question_view(
                        question,
                        given.get(&question.key),
                        error.and(submitted.get(&question.key).map(Vec::as_slice)),
                        visible.contains(&question.key),
                        error,
                    );
                    view["condition"] = json!(question.show_if.as_ref().map(|c| describe_condition(q, c)));
                    view
                }).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Every domain and question numbered in order, for the printed copy (of an assessment, or of
/// a question set version with no answers): all questions, each with the condition under
/// which it is asked, and the answer given in words.
pub fn print_views(q: &Questionnaire, answers: &Answers) -> Vec<Value> {
    let all: BTreeSet<String> = q.questions().map(|(_, x)| x.key.clone()).collect();
    let mut number = 0;
    domain_views(q, answers, &BTreeMap::new(), &all, &[])
        .into_iter()
        .zip(&q.domains)
        .map(|(mut view, d)| {
            if let Some(list) = view["questions"].as_array_mut() {
                for (v, question) in list.iter_mut().zip(&d.questions) {
                    number += 1;
                    v["number"] = json!(number);
                    v["words"] = json!(answers
                        .get(&question.key)
                        .map(|a| answer_words(question, a)));
                }
            }
            view
        })
        .collect()
}

/// An answer in the words the respondent chose it by: option and level labels, ticked
/// criteria, a number with its unit. Pages that show an answer back (check your answers,
/// sign-off, the results' workings, a stale-edit warning, history) use this, so nobody has
/// to read stored keys such as `partial` or `20.0`.
/// A proposed new answer in words, saying what it adds where it keeps the current one: the
/// statements to put in place for a checklist, the options to add for a multi-select.
/// A current answer in short words: a checklist by the level it reaches (the statements
/// already in place are on the question's page), anything else as [`answer_words`].
pub fn current_words(question: &Question, answer: &Answer) -> String {
    match (&question.kind, answer) {
        (QuestionKind::Checklist { levels }, Answer::Checklist(keys)) => {
            crate::domain::questionnaire::ChecklistLevel::reached(levels, keys).map_or_else(
                || answer_words(question, answer),
                |l| format!("Level {}: {}", l.value, l.label),
            )
        }
        _ => answer_words(question, answer),
    }
}

pub fn change_words(question: &Question, from: Option<&Answer>, to: &Answer) -> String {
    let added = |now: &[String]| -> Vec<String> {
        let before: &[String] = match from {
            Some(Answer::Checklist(k) | Answer::Multi(k)) => k,
            _ => &[],
        };
        now.iter()
            .filter(|k| !before.contains(k))
            .cloned()
            .collect()
    };
    match to {
        Answer::Checklist(keys) => {
            let statements: Vec<String> = match &question.kind {
                QuestionKind::Checklist { levels } => added(keys)
                    .iter()
                    .filter_map(|k| {
                        levels
                            .iter()
                            .flat_map(|l| &l.criteria)
                            .find(|c| &c.key == k)
                            .map(|c| c.text.clone())
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let level = match &question.kind {
                QuestionKind::Checklist { levels } => {
                    crate::domain::questionnaire::ChecklistLevel::reached(levels, keys)
                        .map(|l| format!("Level {}: {}", l.value, l.label))
                }
                _ => None,
            }
            .unwrap_or_default();
            format!("{level}, by putting in place: {}", statements.join("; "))
        }
        Answer::Multi(keys) if from.is_some_and(|f| matches!(f, Answer::Multi(_))) => {
            format!(
                "Also: {}",
                answer_words(question, &Answer::Multi(added(keys)))
            )
        }
        _ => answer_words(question, to),
    }
}

pub fn answer_words(question: &Question, answer: &Answer) -> String {
    let label_of = |key: &str| -> String {
        match &question.kind {
            QuestionKind::Single { options } => options
                .iter()
                .find(|o| o.key == key)
                .map(|o| o.label.clone()),
            QuestionKind::Multi { options, .. } => options
                .iter()
                .find(|o| o.key == key)
                .map(|o| o.label.clone()),
            QuestionKind::Checklist { levels } => levels
                .iter()
                .flat_map(|l| &l.criteria)
                .find(|c| c.key == key)
                .map(|c| c.text.clone()),
            _ => None,
        }
        .unwrap_or_else(|| key.to_string())
    };
    match answer {
        Answer::Na => "Not applicable to our organisation".into(),
        Answer::Scale(v) => match &question.kind {
            QuestionKind::Scale { levels } => levels
                .iter()
                .find(|l| l.value == *v)
                .map_or_else(|| v.to_string(), |l| format!("{v}: {}", l.label)),
            _ => v.to_string(),
        },
        Answer::Single(k) => label_of(k),
        Answer::YesNo(true) => "Yes".into(),
        Answer::YesNo(false) => "No".into(),
        Answer::Multi(keys) => keys
            .iter()
            .map(|k| label_of(k))
            .collect::<Vec<_>>()
            .join("; "),
        Answer::Checklist(keys) if keys.is_empty() => "None of these are in place".into(),
        Answer::Checklist(keys) => {
            let level = crate::domain::answers::checklist_level(question, answer);
            let ticked = keys
                .iter()
                .map(|k| label_of(k))
                .collect::<Vec<_>>()
                .join("; ");
            match level {
                Some(l) => format!("Level {l} reached. Ticked: {ticked}"),
                None => format!("Ticked: {ticked}"),
            }
        }
        Answer::Number(n) => match &question.kind {
            QuestionKind::Number { unit: Some(u), .. } if u == "percent" || u == "%" => {
                format!("{}%", number_text(*n))
            }
            QuestionKind::Number { unit: Some(u), .. } => format!("{} {u}", number_text(*n)),
            _ => number_text(*n),
        },
        Answer::Text(t) => t.clone(),
    }
}

/// A stored answer (its JSON form) in words, or "Not answered".
pub fn stored_words(question: &Question, stored: Option<&Value>) -> String {
    match stored.map(|v| answers::parse_value(question, v)) {
        Some(Ok(Some(answer))) => answer_words(question, &answer),
        Some(Err(_)) => stored.map_or_else(String::new, Value::to_string),
        _ => "Not answered".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_words_with_labels_and_negations() {
        let q = crate::domain::questionnaire::tests::example();
        let epr = "\u{201c}Which best describes your electronic patient record?\u{201d}";
        let is = |v: &str| Condition::Equals {
            question: "sf-epr".into(),
            value: CondValue::Key(v.into()),
        };
        assert_eq!(
            describe_condition(&q, &is("none")),
            format!("{epr} is \u{201c}Paper records in most areas\u{201d}")
        );
        assert_eq!(
            describe_condition(&q, &Condition::Not(Box::new(is("none")))),
            format!("{epr} is not \u{201c}Paper records in most areas\u{201d}")
        );
        assert_eq!(
            describe_condition(
                &q,
                &Condition::Not(Box::new(Condition::Answered {
                    question: "sf-epr".into()
                }))
            ),
            format!("{epr} is not answered")
        );
        let either = Condition::Any(vec![is("partial"), is("full")]);
        assert_eq!(
            describe_condition(&q, &either),
            format!(
                "({epr} is \u{201c}An EPR in some departments\u{201d} or {epr} is \u{201c}One EPR across the whole trust\u{201d})"
            )
        );
    }
}
