//! Writes a [`Questionnaire`] back out in the definition format.
//!
//! Administrators export a published version to start the next one, and the app stores the
//! definition it scored with; both need a file that loads back to exactly the same model.
//! Fields with their default value are left out so exports read like hand-written files.
//! The document is built once as an ordered YAML value and then written as YAML or JSON,
//! so the two formats cannot drift apart.

use serde_yaml::{Mapping, Value};

use super::{
    Band, CondValue, Condition, Domain, Pillar, Question, QuestionKind, Questionnaire,
    DEFAULT_TEXT_MAX_LENGTH,
};

/// The definition as YAML.
pub fn to_yaml(q: &Questionnaire) -> String {
    // Serialising a tree of plain values with text keys cannot fail.
    serde_yaml::to_string(&document(q)).unwrap_or_default()
}

/// The definition as pretty-printed JSON.
pub fn to_json(q: &Questionnaire) -> String {
    serde_json::to_string_pretty(&document(q)).unwrap_or_default()
}

/// Builds an ordered mapping, leaving out fields whose value is `None`.
struct Map(Mapping);

impl Map {
    fn new() -> Self {
        Map(Mapping::new())
    }

    fn put(mut self, key: &str, value: impl Into<Option<Value>>) -> Self {
        if let Some(value) = value.into() {
            self.0.insert(Value::String(key.to_string()), value);
        }
        self
    }

    fn done(self) -> Value {
        Value::Mapping(self.0)
    }
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

fn opt_text(s: &Option<String>) -> Option<Value> {
    s.as_deref().map(text)
}

/// Whole numbers are written without a decimal point (`3`, not `3.0`).
fn number(x: f64) -> Value {
    match crate::domain::document::float_to_i64(x) {
        Some(i) if x.abs() < 9_007_199_254_740_992.0 => Value::Number(i.into()),
        _ => Value::Number(x.into()),
    }
}

fn integer(i: i64) -> Value {
    Value::Number(i.into())
}

fn boolean(b: bool) -> Value {
    Value::Bool(b)
}

fn weight(w: f64) -> Option<Value> {
    (w != 1.0).then(|| number(w))
}

fn list<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    Value::Sequence(items.iter().map(f).collect())
}

fn document(q: &Questionnaire) -> Value {
    Map::new()
        .put("format", integer(i64::from(q.format)))
        .put("key", text(&q.key))
        .put("version", text(&q.version))
        .put("title", text(&q.title))
        .put("description", opt_text(&q.description))
        .put("settings", list(&q.settings, |s| text(s)))
        .put(
            "scale",
            Map::new()
                .put("min", number(q.scale.min))
                .put("max", number(q.scale.max))
                .done(),
        )
        .put("decimals", integer(i64::from(q.decimals)))
        .put("bands", (!q.bands.is_empty()).then(|| list(&q.bands, band)))
        .put(
            "pillars",
            (!q.pillars.is_empty()).then(|| list(&q.pillars, pillar)),
        )
        .put("domains", list(&q.domains, domain))
        .done()
}

fn band(b: &Band) -> Value {
    Map::new()
        .put("min", number(b.min))
        .put("label", text(&b.label))
        .done()
}

fn pillar(p: &Pillar) -> Value {
    Map::new()
        .put("key", text(&p.key))
        .put("title", text(&p.title))
        .put("description", opt_text(&p.description))
        .put("weight", weight(p.weight))
        .done()
}

fn domain(d: &Domain) -> Value {
    Map::new()
        .put("key", text(&d.key))
        .put("pillar", opt_text(&d.pillar))
        .put("title", text(&d.title))
        .put("description", opt_text(&d.description))
        .put("weight", weight(d.weight))
        .put("questions", list(&d.questions, question))
        .done()
}

fn question(q: &Question) -> Value {
    let is_text = matches!(q.kind, QuestionKind::Text { .. });
    let common = Map::new()
        .put("key", text(&q.key))
        .put("type", text(q.kind.type_name()))
        .put("text", text(&q.text))
        .put("help", opt_text(&q.help))
        .put("required", (!q.required).then(|| boolean(false)))
        .put("weight", if is_text { None } else { weight(q.weight) })
        .put("allow_na", q.allow_na.then(|| boolean(true)))
        .put("show_if", q.show_if.as_ref().map(condition));
    match &q.kind {
        QuestionKind::Scale { levels } => common.put(
            "levels",
            list(levels, |l| {
                Map::new()
                    .put("value", integer(l.value))
                    .put("label", text(&l.label))
                    .done()
            }),
        ),
        QuestionKind::Checklist { levels } => common.put(
            "levels",
            list(levels, |l| {
                Map::new()
                    .put("value", integer(l.value))
                    .put("label", text(&l.label))
                    .put(
                        "criteria",
                        list(&l.criteria, |c| {
                            Map::new()
                                .put("key", text(&c.key))
                                .put("text", text(&c.text))
                                .done()
                        }),
                    )
                    .done()
            }),
        ),
        QuestionKind::Single { options } => common.put(
            "options",
            list(options, |o| {
                Map::new()
                    .put("key", text(&o.key))
                    .put("label", text(&o.label))
                    .put("score", o.score.map(number).unwrap_or(Value::Null))
                    .done()
            }),
        ),
        QuestionKind::Multi { options, max_score } => {
            common.put("max_score", max_score.map(number)).put(
                "options",
                list(options, |o| {
                    Map::new()
                        .put("key", text(&o.key))
                        .put("label", text(&o.label))
                        .put("score", number(o.score))
                        .put("exclusive", o.exclusive.then(|| boolean(true)))
                        .done()
                }),
            )
        }
        QuestionKind::YesNo {
            yes_score,
            no_score,
        } => common
            .put("yes_score", (*yes_score != 1.0).then(|| number(*yes_score)))
            .put("no_score", (*no_score != 0.0).then(|| number(*no_score))),
        QuestionKind::Number {
            min,
            max,
            integer: whole,
            unit,
            bands,
        } => common
            .put("min", min.map(number))
            .put("max", max.map(number))
            .put("integer", whole.then(|| boolean(true)))
            .put("unit", opt_text(unit))
            .put(
                "bands",
                (!bands.is_empty()).then(|| {
                    list(bands, |b| {
                        Map::new()
                            .put("up_to", b.up_to.map(number))
                            .put("score", number(b.score))
                            .done()
                    })
                }),
            ),
        QuestionKind::Text { max_length } => common.put(
            "max_length",
            (*max_length != DEFAULT_TEXT_MAX_LENGTH).then(|| integer(i64::from(*max_length))),
        ),
    }
    .done()
}

fn cond_value(v: &CondValue) -> Value {
    match v {
        CondValue::Key(k) => text(k),
        CondValue::Number(n) => number(*n),
        CondValue::Bool(b) => boolean(*b),
    }
}

fn condition(c: &Condition) -> Value {
    let test = |question: &str, operator: &str, value: Value| {
        Map::new()
            .put("question", text(question))
            .put(operator, value)
            .done()
    };
    match c {
        Condition::Equals { question, value } => test(question, "equals", cond_value(value)),
        Condition::In { question, values } => test(question, "in", list(values, cond_value)),
        Condition::Includes { question, option } => test(question, "includes", text(option)),
        Condition::AtLeast { question, n } => test(question, "at_least", number(*n)),
        Condition::AtMost { question, n } => test(question, "at_most", number(*n)),
        Condition::Answered { question } => test(question, "answered", boolean(true)),
        Condition::All(items) => Map::new().put("all", list(items, condition)).done(),
        Condition::Any(items) => Map::new().put("any", list(items, condition)).done(),
        Condition::Not(inner) => Map::new().put("not", condition(inner)).done(),
    }
}
