//! Turns a definition file into a [`Questionnaire`], or into every error it contains.
//!
//! Administrators write these files by hand, so one run must report all problems at once,
//! each with the path to the place (`domains[2].questions[0].options[1].key`) and a plain
//! sentence that says how to fix it. The walk is by hand over the ordered [`Node`] tree
//! rather than through `#[derive(Deserialize)]`, because derived deserialisers stop at the
//! first error and cannot explain rules that span fields (pillar links, earlier-question
//! conditions, ascending levels).
//!
//! Decisions where the format is silent (each keeps hand-written files working while
//! catching what is almost certainly a mistake):
//! - An explicit `null` for an optional field means "not given"; `pillars: []` is the same
//!   as no pillars. Whole numbers may be written `3.0`.
//! - Every domain needs at least one question. A `single` option must give `score` (a
//!   number, or `null` for "not scored"). The first checklist level may leave out
//!   `criteria`.
//! - `weight` is refused only on `text` questions; on a `number` without bands it is
//!   accepted and has no effect. A `multi` whose options all score 0 (and no `max_score`)
//!   is accepted as an information-only question that is never scored.
//! - Lengths: pillar and domain titles and band labels 1..200 characters; labels and
//!   criterion text 1..2000; a text question's `max_length` 1..100000. Repeated
//!   `settings` are allowed.
//! - YAML reads `{value: 4, label: Approved, resourced and monitored}` as a label
//!   `Approved` plus a field `resourced and monitored`. A "field" whose name contains a
//!   space and has no value cannot be a typo of a real field, so it is joined back onto the
//!   text before it, with a warning (the shared example question set needs this). A
//!   one-word fragment is still an unknown field, with a hint about quoting.
//! - Reporting stops after 500 errors, so a hostile file cannot make the report huge.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Band, ChecklistLevel, CondValue, Condition, Criterion, Domain, Level, MultiOption, NumberBand,
    Pillar, Question, QuestionKind, Questionnaire, Scale, SingleOption, DEFAULT_TEXT_MAX_LENGTH,
};
use crate::domain::document::{self, Node};
use crate::domain::{did_you_mean, plain_number, FieldError};

/// The largest definition file accepted, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 2 * 1024 * 1024;

const MAX_TITLE_CHARS: usize = 200;
const MAX_TEXT_CHARS: usize = 2000;
const MAX_TEXT_ANSWER_LENGTH: i64 = 100_000;
/// A hostile file could hold millions of mistakes; past this many, reporting stops.
const MAX_ERRORS: usize = 500;

const TOP_FIELDS: &[&str] = &[
    "format",
    "key",
    "version",
    "title",
    "description",
    "settings",
    "scale",
    "decimals",
    "bands",
    "pillars",
    "domains",
];
const PILLAR_FIELDS: &[&str] = &["key", "title", "description", "weight"];
const DOMAIN_FIELDS: &[&str] = &[
    "key",
    "title",
    "description",
    "pillar",
    "weight",
    "questions",
];
const COMMON_QUESTION_FIELDS: &[&str] = &[
    "key", "type", "text", "help", "required", "weight", "allow_na", "show_if",
];
const CONDITION_FIELDS: &[&str] = &[
    "question", "equals", "in", "includes", "at_least", "at_most", "answered",
];
const OPERATORS: &[&str] = &[
    "equals", "in", "includes", "at_least", "at_most", "answered",
];
const COMBINATORS: &[&str] = &["all", "any", "not"];

/// The question types and the fields only they have.
const TYPES: &[(&str, &[&str])] = &[
    ("scale", &["levels"]),
    ("checklist", &["levels"]),
    ("single", &["options"]),
    ("multi", &["options", "max_score"]),
    ("yes_no", &["yes_score", "no_score"]),
    ("number", &["min", "max", "integer", "unit", "bands"]),
    ("text", &["max_length"]),
];

/// Parses and checks a question set written in YAML or JSON.
///
/// Returns every problem found, in document order as far as possible; nothing is
/// returned when any problem exists.
pub fn load(input: &[u8]) -> Result<Questionnaire, Vec<FieldError>> {
    load_with_warnings(input).map(|(q, _)| q)
}

/// Like [`load`], also returning warnings: things that were accepted but deserve a look,
/// such as text that YAML split at an unquoted comma and the loader joined back together.
/// `dma questionnaire check` should print them.
pub fn load_with_warnings(
    input: &[u8],
) -> Result<(Questionnaire, Vec<FieldError>), Vec<FieldError>> {
    let mut root = document::parse(input, MAX_DEFINITION_BYTES).map_err(|e| vec![e])?;
    let mut warnings = Vec::new();
    rejoin_split_text(&mut root, "", &mut warnings);
    let mut reader = Reader::default();
    let questionnaire = reader.questionnaire(&root);
    match questionnaire {
        Some(q) if reader.errors.is_empty() => Ok((q, warnings)),
        _ => Err(reader.errors),
    }
}

/// Joins text that YAML split at an unquoted comma inside `{...}` back together, and
/// records a warning for each field repaired (see the module documentation).
fn rejoin_split_text(node: &mut Node, path: &str, warnings: &mut Vec<FieldError>) {
    match node {
        Node::List(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                rejoin_split_text(item, &idx(path, i), warnings);
            }
        }
        Node::Map(entries) => {
            let mut kept: Vec<(String, Node)> = Vec::with_capacity(entries.len());
            // Indices in `kept` of the text fields that had fragments joined on.
            let mut rejoined: Vec<usize> = Vec::new();
            for (key, value) in std::mem::take(entries) {
                let fragment = value == Node::Null && key.contains(char::is_whitespace);
                let last = kept.len().checked_sub(1);
                if let (true, Some((_, Node::Text(text)))) = (fragment, kept.last_mut()) {
                    text.push_str(", ");
                    text.push_str(&key);
                    if rejoined.last().copied() != last {
                        rejoined.extend(last);
                    }
                    continue;
                }
                kept.push((key, value));
            }
            for index in rejoined {
                if let Some((field, Node::Text(text))) = kept.get(index) {
                    warnings.push(FieldError::new(
                        at(path, field),
                        format!(
                            "an unquoted comma split this text; it was read as \"{text}\". \
                             Put the text in quotes to make that explicit"
                        ),
                    ));
                }
            }
            for (key, value) in kept.iter_mut() {
                rejoin_split_text(value, &at(path, key), warnings);
            }
            *entries = kept;
        }
        _ => {}
    }
}

fn at(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn idx(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The condition tests that make sense for each question type (format section 3).
fn operators_for(kind: &QuestionKind) -> &'static [&'static str] {
    match kind {
        QuestionKind::Scale { .. } | QuestionKind::Number { .. } => {
            &["equals", "in", "at_least", "at_most", "answered"]
        }
        QuestionKind::Checklist { .. } => &[
            "equals", "in", "includes", "at_least", "at_most", "answered",
        ],
        QuestionKind::Single { .. } | QuestionKind::YesNo { .. } => &["equals", "in", "answered"],
        QuestionKind::Multi { .. } => &["includes", "answered"],
        QuestionKind::Text { .. } => &["answered"],
    }
}

/// A slug: `^[a-z][a-z0-9-]{0,62}$`.
pub(crate) fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

fn is_version(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// A valid slug close to `s`, to suggest in an error message.
fn slugify(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-').to_string();
    is_slug(&out).then_some(out)
}

fn list_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

fn or_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// A mapping being read, with the path that leads to it.
struct Fields<'a> {
    path: String,
    entries: &'a [(String, Node)],
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value unless it is absent or an explicit null.
    fn present(&self, name: &str) -> Option<&'a Node> {
        self.get(name).filter(|n| **n != Node::Null)
    }

    fn has(&self, name: &str) -> bool {
        self.present(name).is_some()
    }

    fn at(&self, name: &str) -> String {
        at(&self.path, name)
    }
}

/// What a condition needs to know about an earlier question.
struct Earlier {
    kind: QuestionKind,
    /// False when the question itself had errors: conditions on it are not checked
    /// further, so one mistake is not reported many times.
    clean: bool,
}

#[derive(Default)]
struct Reader {
    errors: Vec<FieldError>,
    /// Every question key in the document with its position, found before the walk so a
    /// condition can tell "comes later" from "does not exist".
    all_keys: BTreeMap<String, usize>,
    /// Questions already read, by key, with where the key was first used.
    earlier: BTreeMap<String, (Earlier, String)>,
}

impl Reader {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        if self.full() {
            return;
        }
        self.errors.push(FieldError::new(path, message));
        if self.full() {
            self.errors.push(FieldError::new(
                "",
                format!("stopped after {MAX_ERRORS} errors; fix these and check again"),
            ));
        }
    }

    /// Whether the error list is full, so work spent explaining more errors is wasted.
    fn full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    // ----- generic field readers -------------------------------------------------------

    fn mapping<'a>(&mut self, node: &'a Node, path: &str, what: &str) -> Option<Fields<'a>> {
        match node {
            Node::Map(entries) => Some(Fields {
                path: path.to_string(),
                entries,
            }),
            other => {
                self.err(
                    path,
                    format!(
                        "must be {what} (a mapping of fields), not {}",
                        other.describe()
                    ),
                );
                None
            }
        }
    }

    /// Reports fields that are not allowed here. `elsewhere` explains fields that are
    /// valid in another context (another question type, say) better than "unknown".
    fn check_fields(
        &mut self,
        fields: &Fields,
        allowed: &[&str],
        elsewhere: &dyn Fn(&str) -> Option<String>,
    ) {
        for (name, _) in fields.entries {
            if allowed.contains(&name.as_str()) {
                continue;
            }
            if self.full() {
                return;
            }
            let message = match elsewhere(name) {
                Some(message) => message,
                None => match did_you_mean(name, allowed) {
                    Some(suggestion) => {
                        format!("unknown field \"{name}\" (did you mean \"{suggestion}\"?)")
                    }
                    None if fields.get(name) == Some(&Node::Null) => format!(
                        "unknown field \"{name}\"; if it is part of the text before it, put \
                         that text in quotes (a comma inside {{...}} ends a value)"
                    ),
                    None => format!(
                        "unknown field \"{name}\"; the fields allowed here are {}",
                        list_words(allowed)
                    ),
                },
            };
            self.err(&fields.path, message);
        }
    }

    fn missing(&mut self, fields: &Fields, name: &str, hint: &str) {
        let message = if hint.is_empty() {
            format!("missing required field \"{name}\"")
        } else {
            format!("missing required field \"{name}\"; {hint}")
        };
        self.err(&fields.path, message);
    }

    fn text_value(&mut self, node: &Node, path: &str, max_chars: usize) -> Option<String> {
        match node {
            Node::Text(s) if s.trim().is_empty() => {
                self.err(path, "must not be blank");
                None
            }
            Node::Text(s) => {
                let chars = s.chars().count();
                if chars > max_chars {
                    self.err(
                        path,
                        format!("is {chars} characters long; shorten it to {max_chars} or fewer"),
                    );
                }
                Some(s.clone())
            }
            Node::Null => {
                self.err(path, "must not be empty; write the text after the colon");
                None
            }
            other => {
                let hint = match other {
                    Node::Int(_) | Node::Float(_) | Node::Bool(_) => {
                        "; put it in quotes to make it text"
                    }
                    _ => "",
                };
                self.err(
                    path,
                    format!("must be text, not {}{hint}", other.describe()),
                );
                None
            }
        }
    }

    fn required_text(&mut self, f: &Fields, name: &str, max_chars: usize, hint: &str) -> String {
        match f.get(name) {
            Some(node) => self.text_value(node, &f.at(name), max_chars),
            None => {
                self.missing(f, name, hint);
                None
            }
        }
        .unwrap_or_default()
    }

    fn optional_text(&mut self, f: &Fields, name: &str) -> Option<String> {
        match f.present(name)? {
            Node::Text(s) => Some(s.clone()),
            other => {
                self.err(
                    &f.at(name),
                    format!("must be text, not {}", other.describe()),
                );
                None
            }
        }
    }

    fn slug_value(&mut self, node: &Node, path: &str, what: &str) -> Option<String> {
        let text = self.text_value(node, path, usize::MAX)?;
        if is_slug(&text) {
            return Some(text);
        }
        let example = match slugify(&text) {
            Some(s) => format!(" (for example \"{s}\")"),
            None => String::new(),
        };
        self.err(
            path,
            format!(
                "\"{text}\" is not a valid {what}: use lower-case letters, digits and hyphens, \
                 starting with a letter, at most 63 characters{example}"
            ),
        );
        None
    }

    fn required_slug(&mut self, f: &Fields, name: &str, what: &str) -> String {
        match f.get(name) {
            Some(node) => self.slug_value(node, &f.at(name), what),
            None => {
                self.missing(f, name, "");
                None
            }
        }
        .unwrap_or_default()
    }

    fn bool_field(&mut self, f: &Fields, name: &str, default: bool) -> bool {
        match f.present(name) {
            None => default,
            Some(Node::Bool(b)) => *b,
            Some(Node::Text(s)) => {
                self.err(
                    &f.at(name),
                    format!(
                        "must be true or false, not \"{s}\" (only true and false are \
                         yes/no values in this format)"
                    ),
                );
                default
            }
            Some(other) => {
                self.err(
                    &f.at(name),
                    format!("must be true or false, not {}", other.describe()),
                );
                default
            }
        }
    }

    fn number_value(&mut self, node: &Node, path: &str) -> Option<f64> {
        match node {
            Node::Int(i) => Some(*i as f64),
            Node::Float(x) if x.is_finite() => Some(*x),
            Node::Float(_) => {
                self.err(path, "must be a finite number");
                None
            }
            Node::Text(s) if s.trim().parse::<f64>().is_ok() => {
                self.err(
                    path,
                    format!("must be a number, not text; remove the quotes around \"{s}\""),
                );
                None
            }
            other => {
                self.err(path, format!("must be a number, not {}", other.describe()));
                None
            }
        }
    }

    fn optional_number(&mut self, f: &Fields, name: &str) -> Option<f64> {
        let node = f.present(name)?;
        self.number_value(node, &f.at(name))
    }

    fn required_number(&mut self, f: &Fields, name: &str, hint: &str) -> Option<f64> {
        match f.get(name) {
            Some(node) => self.number_value(node, &f.at(name)),
            None => {
                self.missing(f, name, hint);
                None
            }
        }
    }

    fn integer_value(&mut self, node: &Node, path: &str) -> Option<i64> {
        match node.as_i64() {
            Some(i) => Some(i),
            None => {
                let message = match node {
                    Node::Float(x) => format!("must be a whole number, not {}", plain_number(*x)),
                    other => format!("must be a whole number, not {}", other.describe()),
                };
                self.err(path, message);
                None
            }
        }
    }

    fn weight(&mut self, f: &Fields) -> f64 {
        match self.optional_number(f, "weight") {
            None => 1.0,
            Some(w) if w > 0.0 => w,
            Some(w) => {
                self.err(
                    &f.at("weight"),
                    format!("must be a number greater than 0, not {}", plain_number(w)),
                );
                1.0
            }
        }
    }

    fn list<'a>(&mut self, f: &Fields<'a>, name: &str, example: &str) -> Option<&'a [Node]> {
        match f.present(name)? {
            Node::List(items) => Some(items),
            other => {
                self.err(
                    &f.at(name),
                    format!("must be a list{example}, not {}", other.describe()),
                );
                None
            }
        }
    }

    // ----- the document ---------------------------------------------------------------

    fn questionnaire(&mut self, root: &Node) -> Option<Questionnaire> {
        let Node::Map(entries) = root else {
            self.err(
                "",
                format!(
                    "the top level must be a mapping of fields (key:, version:, title:, \
                     settings:, domains: ...), not {}",
                    root.describe()
                ),
            );
            return None;
        };
        let f = Fields {
            path: String::new(),
            entries,
        };
        self.check_fields(&f, TOP_FIELDS, &|_| None);
        self.prescan_question_keys(&f);

        let format = match f.present("format") {
            None => 1,
            Some(node) => match node.as_i64() {
                Some(1) => 1,
                _ => {
                    self.err(
                        "format",
                        "only format 1 exists; write format: 1 or leave the field out",
                    );
                    1
                }
            },
        };
        let key = self.required_slug(&f, "key", "questionnaire key");
        let version = self.version(&f);
        let title = self.required_text(&f, "title", MAX_TITLE_CHARS, "");
        let description = self.optional_text(&f, "description");
        let settings = self.settings(&f);
        let scale = self.scale(&f);
        let decimals = self.decimals(&f);
        let bands = self.bands(&f);
        let pillars = self.pillars(&f);
        let domains = self.domains(&f);
        self.check_pillar_links(&pillars, &domains, &f);

        Some(Questionnaire {
            format,
            key,
            version,
            title,
            description,
            settings,
            scale,
            decimals,
            bands,
            pillars,
            domains,
        })
    }

    fn prescan_question_keys(&mut self, f: &Fields) {
        let Some(Node::List(domains)) = f.get("domains") else {
            return;
        };
        let questions = domains
            .iter()
            .filter_map(|d| match d.get("questions") {
                Some(Node::List(qs)) => Some(qs),
                _ => None,
            })
            .flatten();
        for (position, question) in questions.enumerate() {
            if let Some(Node::Text(key)) = question.get("key") {
                self.all_keys.entry(key.clone()).or_insert(position);
            }
        }
    }

    fn version(&mut self, f: &Fields) -> String {
        let path = f.at("version");
        match f.get("version") {
            None => {
                self.missing(f, "version", "for example version: \"2025.1\"");
                String::new()
            }
            Some(Node::Int(_) | Node::Float(_)) => {
                let shown = match f.get("version") {
                    Some(Node::Int(i)) => i.to_string(),
                    Some(Node::Float(x)) => plain_number(*x),
                    _ => String::new(),
                };
                self.err(
                    &path,
                    format!(
                        "must be text; put it in quotes (version: \"{shown}\") so it is not \
                         read as a number"
                    ),
                );
                String::new()
            }
            Some(node) => {
                let text = self.text_value(node, &path, usize::MAX).unwrap_or_default();
                if !text.is_empty() && !is_version(&text) {
                    self.err(
                        &path,
                        format!(
                            "\"{text}\" is not a valid version: use up to 32 letters, digits, \
                             dots and hyphens, starting with a letter or digit (for example \
                             \"2025.1\")"
                        ),
                    );
                }
                text
            }
        }
    }

    fn settings(&mut self, f: &Fields) -> Vec<String> {
        if !f.has("settings") {
            self.missing(
                f,
                "settings",
                "list the care settings this questionnaire serves, for example settings: [acute]",
            );
            return Vec::new();
        }
        let Some(items) = self.list(f, "settings", " such as [acute]") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.err(
                &f.at("settings"),
                "list at least one care setting, for example [acute]",
            );
        }
        let path = f.at("settings");
        items
            .iter()
            .enumerate()
            .filter_map(|(i, node)| self.slug_value(node, &idx(&path, i), "setting"))
            .collect()
    }

    fn scale(&mut self, f: &Fields) -> Scale {
        let Some(node) = f.present("scale") else {
            return Scale::default();
        };
        let Some(s) = self.mapping(node, &f.at("scale"), "{min: number, max: number}") else {
            return Scale::default();
        };
        self.check_fields(&s, &["min", "max"], &|_| None);
        let min = self.required_number(&s, "min", "");
        let max = self.required_number(&s, "max", "");
        match (min, max) {
            (Some(min), Some(max)) if min < max => Scale { min, max },
            (Some(min), Some(max)) => {
                self.err(
                    &s.path,
                    format!(
                        "min ({}) must be less than max ({})",
                        plain_number(min),
                        plain_number(max)
                    ),
                );
                Scale::default()
            }
            _ => Scale::default(),
        }
    }

    fn decimals(&mut self, f: &Fields) -> u8 {
        let Some(node) = f.present("decimals") else {
            return 1;
        };
        match node.as_i64().and_then(|d| u8::try_from(d).ok()) {
            Some(d) if d <= 4 => d,
            _ => {
                self.err(&f.at("decimals"), "must be a whole number from 0 to 4");
                1
            }
        }
    }

    fn bands(&mut self, f: &Fields) -> Vec<Band> {
        let Some(items) = self.list(f, "bands", " of {min, label}") else {
            return Vec::new();
        };
        let path = f.at("bands");
        let mut bands: Vec<Band> = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(b) = self.mapping(node, &idx(&path, i), "a band {min, label}") else {
                continue;
            };
            self.check_fields(&b, &["min", "label"], &|_| None);
            let min = self.required_number(&b, "min", "the lowest score that gets this label");
            let label = self.required_text(&b, "label", MAX_TITLE_CHARS, "");
            let Some(min) = min else { continue };
            if let Some(previous) = bands.last() {
                if min <= previous.min {
                    self.err(
                        &b.at("min"),
                        format!(
                            "must be greater than the previous band's min ({}); list bands \
                             from lowest to highest",
                            plain_number(previous.min)
                        ),
                    );
                }
            }
            bands.push(Band { min, label });
        }
        bands
    }

    fn pillars(&mut self, f: &Fields) -> Vec<Pillar> {
        let Some(items) = self.list(f, "pillars", " of pillars") else {
            return Vec::new();
        };
        let path = f.at("pillars");
        let mut seen = BTreeSet::new();
        let mut pillars = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(p) = self.mapping(node, &idx(&path, i), "a pillar") else {
                continue;
            };
            self.check_fields(&p, PILLAR_FIELDS, &|_| None);
            let key = self.required_slug(&p, "key", "pillar key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&p.at("key"), format!("duplicate pillar key \"{key}\""));
            }
            pillars.push(Pillar {
                title: self.required_text(&p, "title", MAX_TITLE_CHARS, ""),
                description: self.optional_text(&p, "description"),
                weight: self.weight(&p),
                key,
            });
        }
        pillars
    }

    fn domains(&mut self, f: &Fields) -> Vec<Domain> {
        if !f.has("domains") {
            self.missing(f, "domains", "a questionnaire needs at least one domain");
            return Vec::new();
        }
        let Some(items) = self.list(f, "domains", " of domains") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.err("domains", "list at least one domain");
        }
        let path = f.at("domains");
        let mut seen = BTreeSet::new();
        let mut domains = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(d) = self.mapping(node, &idx(&path, i), "a domain") else {
                continue;
            };
            self.check_fields(&d, DOMAIN_FIELDS, &|_| None);
            let key = self.required_slug(&d, "key", "domain key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&d.at("key"), format!("duplicate domain key \"{key}\""));
            }
            let title = self.required_text(&d, "title", MAX_TITLE_CHARS, "");
            let description = self.optional_text(&d, "description");
            let pillar = match d.present("pillar") {
                Some(node) => self.slug_value(node, &d.at("pillar"), "pillar key"),
                None => None,
            };
            let weight = self.weight(&d);
            let questions = self.questions(&d);
            domains.push(Domain {
                key,
                title,
                description,
                pillar,
                weight,
                questions,
            });
        }
        domains
    }

    fn check_pillar_links(&mut self, pillars: &[Pillar], domains: &[Domain], f: &Fields) {
        let keys: Vec<&str> = pillars.iter().map(|p| p.key.as_str()).collect();
        for (i, domain) in domains.iter().enumerate() {
            let path = idx(&f.at("domains"), i);
            match &domain.pillar {
                None if !pillars.is_empty() => self.err(
                    &path,
                    format!(
                        "missing required field \"pillar\"; when pillars are listed every \
                         domain must name one of them ({})",
                        list_words(&keys)
                    ),
                ),
                Some(p) if pillars.is_empty() => self.err(
                    &at(&path, "pillar"),
                    format!(
                        "names pillar \"{p}\" but the questionnaire lists no pillars; add a \
                         pillars list or remove this field"
                    ),
                ),
                Some(p) if !keys.contains(&p.as_str()) => {
                    let hint = match did_you_mean(p, &keys) {
                        Some(s) => format!(" (did you mean \"{s}\"?)"),
                        None => format!("; use one of {}", list_words(&keys)),
                    };
                    self.err(
                        &at(&path, "pillar"),
                        format!("there is no pillar \"{p}\"{hint}"),
                    );
                }
                _ => {}
            }
        }
        for (i, pillar) in pillars.iter().enumerate() {
            if pillar.key.is_empty() {
                continue;
            }
            if !domains
                .iter()
                .any(|d| d.pillar.as_deref() == Some(pillar.key.as_str()))
            {
                self.err(
                    &idx(&f.at("pillars"), i),
                    format!(
                        "pillar \"{}\" has no domains; name it in a domain's pillar field or \
                         remove it",
                        pillar.key
                    ),
                );
            }
        }
    }

    // ----- questions ------------------------------------------------------------------

    fn questions(&mut self, d: &Fields) -> Vec<Question> {
        if !d.has("questions") {
            self.missing(d, "questions", "a domain needs at least one question");
            return Vec::new();
        }
        let Some(items) = self.list(d, "questions", " of questions") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.err(&d.at("questions"), "list at least one question");
        }
        let path = d.at("questions");
        items
            .iter()
            .enumerate()
            .filter_map(|(i, node)| self.question(node, &idx(&path, i)))
            .collect()
    }

    fn question(&mut self, node: &Node, path: &str) -> Option<Question> {
        let f = self.mapping(node, path, "a question")?;
        let errors_before = self.errors.len();

        let type_name = self.question_type(&f);
        let specific: &[&str] = match type_name {
            Some(t) => TYPES
                .iter()
                .find(|(name, _)| *name == t)
                .map(|(_, fields)| *fields)
                .unwrap_or(&[]),
            None => &[],
        };
        let mut allowed: Vec<&str> = COMMON_QUESTION_FIELDS.to_vec();
        if type_name.is_none() {
            allowed.extend(TYPES.iter().flat_map(|(_, fields)| fields.iter()));
        } else {
            allowed.extend(specific);
        }
        if type_name == Some("text") {
            allowed.retain(|f| *f != "weight");
        }
        let shown_type = type_name.unwrap_or("");
        self.check_fields(&f, &allowed, &|field| {
            if field == "weight" && shown_type == "text" {
                return Some(
                    "\"weight\" does not apply to a text question because text answers are \
                     never scored; remove it"
                        .to_string(),
                );
            }
            let users: Vec<&str> = TYPES
                .iter()
                .filter(|(_, fields)| fields.contains(&field))
                .map(|(name, _)| *name)
                .collect();
            (!users.is_empty()).then(|| {
                format!(
                    "\"{field}\" does not apply to a {shown_type} question (it is used by {} \
                     questions); remove it or change the type",
                    list_words(&users)
                )
            })
        });

        let key = self.required_slug(&f, "key", "question key");
        if !key.is_empty() {
            if let Some((_, first)) = self.earlier.get(&key) {
                let first = first.clone();
                self.err(
                    &f.at("key"),
                    format!("duplicate question key \"{key}\" (first used at {first})"),
                );
            }
        }
        let text = self.required_text(
            &f,
            "text",
            MAX_TEXT_CHARS,
            "write the question as respondents will read it",
        );
        let help = self.optional_text(&f, "help");
        let required = self.bool_field(&f, "required", true);
        let weight = if type_name == Some("text") {
            1.0
        } else {
            self.weight(&f)
        };
        let allow_na = self.bool_field(&f, "allow_na", false);
        let kind = match type_name {
            Some(t) => self.kind(t, &f),
            None => None,
        };
        let clean = kind.is_some() && self.errors.len() == errors_before;
        let show_if = match f.present("show_if") {
            Some(cond) => self.condition(cond, &f.at("show_if"), &key),
            None => None,
        };

        let kind = kind?;
        if !key.is_empty() && !self.earlier.contains_key(&key) {
            let earlier = Earlier {
                kind: kind.clone(),
                clean,
            };
            self.earlier
                .insert(key.clone(), (earlier, path.to_string()));
        }
        Some(Question {
            key,
            text,
            help,
            required,
            weight,
            allow_na,
            show_if,
            kind,
        })
    }

    fn question_type(&mut self, f: &Fields) -> Option<&'static str> {
        let names: Vec<&str> = TYPES.iter().map(|(name, _)| *name).collect();
        let Some(node) = f.get("type") else {
            self.missing(f, "type", &format!("use one of {}", list_words(&names)));
            return None;
        };
        let text = self.text_value(node, &f.at("type"), usize::MAX)?;
        if let Some(name) = names.iter().find(|n| **n == text) {
            return Some(name);
        }
        let hint = match did_you_mean(&text, &names) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => String::new(),
        };
        self.err(
            &f.at("type"),
            format!(
                "unknown question type \"{text}\"{hint}; use one of {}",
                list_words(&names)
            ),
        );
        None
    }

    fn kind(&mut self, type_name: &str, f: &Fields) -> Option<QuestionKind> {
        Some(match type_name {
            "scale" => QuestionKind::Scale {
                levels: self
                    .levels(f, false)
                    .into_iter()
                    .map(|l| Level {
                        value: l.value,
                        label: l.label,
                    })
                    .collect(),
            },
            "checklist" => QuestionKind::Checklist {
                levels: self.levels(f, true),
            },
            "single" => self.single(f),
            "multi" => self.multi(f),
            "yes_no" => self.yes_no(f),
            "number" => self.number(f),
            "text" => QuestionKind::Text {
                max_length: self.max_length(f),
            },
            _ => return None,
        })
    }

    /// Levels of a scale or checklist; criteria are read only for checklists.
    fn levels(&mut self, f: &Fields, checklist: bool) -> Vec<ChecklistLevel> {
        if !f.has("levels") {
            self.missing(f, "levels", "list at least 2 levels of {value, label}");
            return Vec::new();
        }
        let Some(items) = self.list(f, "levels", " of {value, label}") else {
            return Vec::new();
        };
        if items.len() < 2 {
            self.err(&f.at("levels"), "list at least 2 levels");
        }
        let path = f.at("levels");
        let mut levels: Vec<ChecklistLevel> = Vec::new();
        let mut criterion_keys = BTreeSet::new();
        for (i, node) in items.iter().enumerate() {
            let Some(l) = self.mapping(node, &idx(&path, i), "a level {value, label}") else {
                continue;
            };
            let allowed: &[&str] = if checklist {
                &["value", "label", "criteria"]
            } else {
                &["value", "label"]
            };
            self.check_fields(&l, allowed, &|field| {
                (field == "criteria").then(|| {
                    "\"criteria\" only apply to checklist levels; remove them or use type: \
                     checklist"
                        .to_string()
                })
            });
            let value = match l.get("value") {
                Some(node) => self.integer_value(node, &l.at("value")),
                None => {
                    self.missing(&l, "value", "give each level a whole number");
                    None
                }
            };
            let label = self.required_text(&l, "label", MAX_TEXT_CHARS, "");
            let criteria = if checklist {
                self.criteria(&l, i, &mut criterion_keys)
            } else {
                Vec::new()
            };
            let Some(value) = value else { continue };
            if let Some(previous) = levels.last() {
                if value == previous.value {
                    self.err(&l.at("value"), format!("duplicate level value {value}"));
                } else if value < previous.value {
                    self.err(
                        &l.at("value"),
                        format!(
                            "must be greater than the previous level's value ({}); list levels \
                             from lowest to highest",
                            previous.value
                        ),
                    );
                }
            }
            levels.push(ChecklistLevel {
                value,
                label,
                criteria,
            });
        }
        levels
    }

    fn criteria(
        &mut self,
        l: &Fields,
        level_index: usize,
        seen: &mut BTreeSet<String>,
    ) -> Vec<Criterion> {
        let items = self.list(l, "criteria", " of {key, text}").unwrap_or(&[]);
        if level_index == 0 && !items.is_empty() {
            self.err(
                &l.at("criteria"),
                "the first level is the starting point and must have no criteria; move these \
                 to a higher level or add a level below",
            );
        }
        if level_index > 0 && items.is_empty() {
            let path = if l.has("criteria") {
                l.at("criteria")
            } else {
                l.path.clone()
            };
            self.err(
                &path,
                "every level after the first needs at least one criterion {key, text}",
            );
        }
        let path = l.at("criteria");
        let mut criteria = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(c) = self.mapping(node, &idx(&path, i), "a criterion {key, text}") else {
                continue;
            };
            self.check_fields(&c, &["key", "text"], &|_| None);
            let key = self.required_slug(&c, "key", "criterion key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&c.at("key"), format!("duplicate criterion key \"{key}\""));
            }
            let text = self.required_text(&c, "text", MAX_TEXT_CHARS, "");
            criteria.push(Criterion { key, text });
        }
        criteria
    }

    /// The option list shared by single and multi questions: each entry's fields, after
    /// key, label and duplicate checks.
    fn options<'a>(&mut self, f: &Fields<'a>, multi: bool) -> Vec<(Fields<'a>, String, String)> {
        if !f.has("options") {
            self.missing(
                f,
                "options",
                "list at least 2 options of {key, label, score}",
            );
            return Vec::new();
        }
        let Some(items) = self.list(f, "options", " of {key, label, score}") else {
            return Vec::new();
        };
        if items.len() < 2 {
            self.err(&f.at("options"), "list at least 2 options");
        }
        let path = f.at("options");
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(o) = self.mapping(node, &idx(&path, i), "an option {key, label, score}")
            else {
                continue;
            };
            let allowed: &[&str] = if multi {
                &["key", "label", "score", "exclusive"]
            } else {
                &["key", "label", "score"]
            };
            self.check_fields(&o, allowed, &|field| {
                (field == "exclusive")
                    .then(|| "\"exclusive\" only applies to multi questions; remove it".to_string())
            });
            let key = self.required_slug(&o, "key", "option key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&o.at("key"), format!("duplicate option key \"{key}\""));
            }
            let label = self.required_text(&o, "label", MAX_TEXT_CHARS, "");
            out.push((o, key, label));
        }
        out
    }

    fn single(&mut self, f: &Fields) -> QuestionKind {
        let mut options = Vec::new();
        for (o, key, label) in self.options(f, false) {
            let score = match o.get("score") {
                None => {
                    self.missing(
                        &o,
                        "score",
                        "give a number, or null if this option is not scored",
                    );
                    None
                }
                Some(Node::Null) => None,
                Some(node) => self.number_value(node, &o.at("score")),
            };
            options.push(SingleOption { key, label, score });
        }
        let distinct: BTreeSet<u64> = options
            .iter()
            .filter_map(|o| o.score)
            .map(|s| (s + 0.0).to_bits())
            .collect();
        if f.has("options") && distinct.len() < 2 {
            self.err(
                &f.at("options"),
                "needs at least two options with different scores (null means not scored), \
                 otherwise the answer cannot change the score",
            );
        }
        QuestionKind::Single { options }
    }

    fn multi(&mut self, f: &Fields) -> QuestionKind {
        let mut options = Vec::new();
        for (o, key, label) in self.options(f, true) {
            let score = self
                .required_number(&o, "score", "give a number of 0 or more")
                .unwrap_or(0.0);
            if score < 0.0 {
                self.err(
                    &o.at("score"),
                    format!("must be 0 or more, not {}", plain_number(score)),
                );
            }
            let exclusive = self.bool_field(&o, "exclusive", false);
            options.push(MultiOption {
                key,
                label,
                score,
                exclusive,
            });
        }
        let max_score = self.optional_number(f, "max_score");
        if let Some(m) = max_score {
            if m <= 0.0 {
                self.err(
                    &f.at("max_score"),
                    format!("must be greater than 0, not {}", plain_number(m)),
                );
            }
        }
        QuestionKind::Multi { options, max_score }
    }

    fn yes_no(&mut self, f: &Fields) -> QuestionKind {
        let yes_score = self.optional_number(f, "yes_score").unwrap_or(1.0);
        let no_score = self.optional_number(f, "no_score").unwrap_or(0.0);
        if yes_score == no_score {
            let path = if f.has("no_score") {
                f.at("no_score")
            } else {
                f.at("yes_score")
            };
            self.err(
                &path,
                format!(
                    "yes_score and no_score must differ (both are {})",
                    plain_number(yes_score)
                ),
            );
        }
        QuestionKind::YesNo {
            yes_score,
            no_score,
        }
    }

    fn number(&mut self, f: &Fields) -> QuestionKind {
        let min = self.optional_number(f, "min");
        let max = self.optional_number(f, "max");
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                self.err(
                    &f.at("min"),
                    format!(
                        "must not be greater than max ({}); swap them",
                        plain_number(hi)
                    ),
                );
            }
        }
        let integer = self.bool_field(f, "integer", false);
        let unit = self.optional_text(f, "unit");
        let items = self.list(f, "bands", " of {up_to, score}").unwrap_or(&[]);
        let path = f.at("bands");
        let mut bands: Vec<NumberBand> = Vec::new();
        let mut previous_up_to: Option<f64> = None;
        for (i, node) in items.iter().enumerate() {
            let Some(b) = self.mapping(node, &idx(&path, i), "a band {up_to, score}") else {
                continue;
            };
            self.check_fields(&b, &["up_to", "score"], &|_| None);
            let up_to = self.optional_number(&b, "up_to");
            let score = self.required_number(&b, "score", "");
            let last = i + 1 == items.len();
            if !last && !b.has("up_to") {
                self.err(
                    &b.path,
                    "only the last band may leave out up_to; add up_to here or move this band \
                     to the end",
                );
            }
            if let (Some(u), Some(p)) = (up_to, previous_up_to) {
                if u <= p {
                    self.err(
                        &b.at("up_to"),
                        format!(
                            "must be greater than the previous band's up_to ({}); list bands \
                             from lowest to highest",
                            plain_number(p)
                        ),
                    );
                }
            }
            previous_up_to = up_to.or(previous_up_to);
            if let Some(score) = score {
                bands.push(NumberBand { up_to, score });
            }
        }
        if !items.is_empty() {
            let first = bands.first().map(|b| b.score);
            if bands.iter().all(|b| Some(b.score) == first) {
                self.err(
                    &path,
                    "needs at least two bands with different scores, otherwise the answer \
                     cannot change the score",
                );
            }
        }
        QuestionKind::Number {
            min,
            max,
            integer,
            unit,
            bands,
        }
    }

    fn max_length(&mut self, f: &Fields) -> u32 {
        let Some(node) = f.present("max_length") else {
            return DEFAULT_TEXT_MAX_LENGTH;
        };
        match node.as_i64() {
            Some(n) if (1..=MAX_TEXT_ANSWER_LENGTH).contains(&n) => {
                u32::try_from(n).unwrap_or(DEFAULT_TEXT_MAX_LENGTH)
            }
            _ => {
                self.err(
                    &f.at("max_length"),
                    format!("must be a whole number from 1 to {MAX_TEXT_ANSWER_LENGTH}"),
                );
                DEFAULT_TEXT_MAX_LENGTH
            }
        }
    }

    // ----- conditions -----------------------------------------------------------------

    fn condition(&mut self, node: &Node, path: &str, own_key: &str) -> Option<Condition> {
        let f = self.mapping(
            node,
            path,
            "a condition such as {question: KEY, equals: VALUE}",
        )?;
        let combinators: Vec<&str> = COMBINATORS
            .iter()
            .copied()
            .filter(|c| f.get(c).is_some())
            .collect();
        if let Some(first) = combinators.first() {
            if f.entries.len() > 1 {
                self.err(
                    path,
                    format!(
                        "\"{first}\" must be the only field of its condition; put the other \
                         tests inside it"
                    ),
                );
                return None;
            }
            if *first == "not" {
                let inner_path = at(path, "not");
                let inner = f.get("not")?;
                return self
                    .condition(inner, &inner_path, own_key)
                    .map(|c| Condition::Not(Box::new(c)));
            }
            let list_path = at(path, first);
            let Some(items) = self.list(&f, first, " of conditions") else {
                if f.present(first).is_none() {
                    self.err(&list_path, "list at least one condition");
                }
                return None;
            };
            if items.is_empty() {
                self.err(&list_path, "list at least one condition");
            }
            let conditions: Vec<Option<Condition>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| self.condition(item, &idx(&list_path, i), own_key))
                .collect();
            let conditions: Option<Vec<Condition>> = conditions.into_iter().collect();
            let conditions = conditions?;
            return Some(if *first == "all" {
                Condition::All(conditions)
            } else {
                Condition::Any(conditions)
            });
        }

        let mut suggestions: Vec<&str> = CONDITION_FIELDS.to_vec();
        suggestions.extend(COMBINATORS);
        self.check_fields(&f, &suggestions, &|_| None);
        let question = match f.get("question") {
            Some(node) => self.text_value(node, &f.at("question"), usize::MAX),
            None => {
                self.missing(&f, "question", "name the earlier question this depends on");
                None
            }
        };
        let operators: Vec<&str> = OPERATORS
            .iter()
            .copied()
            .filter(|op| f.get(op).is_some())
            .collect();
        let operator = match operators.as_slice() {
            [one] => *one,
            [] => {
                self.err(
                    path,
                    "add one test: equals, in, includes, at_least, at_most or answered",
                );
                return None;
            }
            _ => {
                self.err(
                    path,
                    format!(
                        "use only one of {} in a condition; combine tests with all or any",
                        list_words(&operators)
                    ),
                );
                return None;
            }
        };
        let question = question?;
        let value_path = f.at(operator);
        let value = f.get(operator)?;
        let condition = match operator {
            "equals" => Condition::Equals {
                value: self.cond_value(value, &value_path)?,
                question,
            },
            "in" => {
                let Node::List(items) = value else {
                    self.err(
                        &value_path,
                        format!("must be a list of values, not {}", value.describe()),
                    );
                    return None;
                };
                if items.is_empty() {
                    self.err(&value_path, "list at least one value");
                }
                let values: Option<Vec<CondValue>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.cond_value(v, &idx(&value_path, i)))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect();
                Condition::In {
                    values: values?,
                    question,
                }
            }
            "includes" => Condition::Includes {
                option: self.text_value(value, &value_path, usize::MAX)?,
                question,
            },
            "at_least" => Condition::AtLeast {
                n: self.number_value(value, &value_path)?,
                question,
            },
            "at_most" => Condition::AtMost {
                n: self.number_value(value, &value_path)?,
                question,
            },
            _ => {
                if *value != Node::Bool(true) {
                    self.err(
                        &value_path,
                        "must be true (answered: true); to show a question when another is \
                         not answered, use not: {question: KEY, answered: true}",
                    );
                    return None;
                }
                Condition::Answered { question }
            }
        };
        self.check_target(&condition, path, own_key);
        Some(condition)
    }

    fn cond_value(&mut self, node: &Node, path: &str) -> Option<CondValue> {
        match node {
            Node::Text(s) => Some(CondValue::Key(s.clone())),
            Node::Bool(b) => Some(CondValue::Bool(*b)),
            Node::Int(_) | Node::Float(_) => self.number_value(node, path).map(CondValue::Number),
            other => {
                self.err(
                    path,
                    format!(
                        "must be an option key, a number or true/false, not {}",
                        other.describe()
                    ),
                );
                None
            }
        }
    }

    /// Checks that a comparison refers to an earlier question of a suitable type, with
    /// values that exist in it.
    fn check_target(&mut self, condition: &Condition, path: &str, own_key: &str) {
        let (question, operator) = match condition {
            Condition::Equals { question, .. } => (question, "equals"),
            Condition::In { question, .. } => (question, "in"),
            Condition::Includes { question, .. } => (question, "includes"),
            Condition::AtLeast { question, .. } => (question, "at_least"),
            Condition::AtMost { question, .. } => (question, "at_most"),
            Condition::Answered { question } => (question, "answered"),
            _ => return,
        };
        let question_path = at(path, "question");
        if question == own_key {
            self.err(&question_path, "a question cannot depend on itself");
            return;
        }
        let Some((earlier, _)) = self.earlier.get(question) else {
            if self.all_keys.contains_key(question) {
                self.err(
                    &question_path,
                    format!(
                        "question \"{question}\" comes later in the document; a condition can \
                         only refer to an earlier question, so move one of them"
                    ),
                );
            } else {
                let keys: Vec<&str> = self.all_keys.keys().map(String::as_str).collect();
                let hint = match did_you_mean(question, &keys) {
                    Some(s) => format!(" (did you mean \"{s}\"?)"),
                    None => String::new(),
                };
                self.err(
                    &question_path,
                    format!("there is no question \"{question}\"{hint}"),
                );
            }
            return;
        };
        if !earlier.clean {
            return;
        }
        let kind = earlier.kind.clone();
        let type_name = kind.type_name();
        let value_path = at(path, operator);
        let supported = operators_for(&kind);
        if !supported.contains(&operator) {
            self.err(
                &value_path,
                format!(
                    "{operator} cannot be used with \"{question}\", a {type_name} question; \
                     use {}",
                    or_words(&supported.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                ),
            );
            return;
        }
        match condition {
            Condition::Equals { value, .. } => {
                self.check_value(&kind, question, value, &value_path);
            }
            Condition::In { values, .. } => {
                for (i, value) in values.iter().enumerate() {
                    self.check_value(&kind, question, value, &idx(&value_path, i));
                }
            }
            Condition::Includes { option, .. } => {
                let (keys, what): (Vec<&str>, &str) = match &kind {
                    QuestionKind::Multi { options, .. } => {
                        (options.iter().map(|o| o.key.as_str()).collect(), "option")
                    }
                    QuestionKind::Checklist { levels } => (
                        levels
                            .iter()
                            .flat_map(|l| l.criteria.iter().map(|c| c.key.as_str()))
                            .collect(),
                        "criterion",
                    ),
                    _ => (Vec::new(), "option"),
                };
                self.check_key(&keys, option, what, question, &value_path);
            }
            _ => {}
        }
    }

    fn check_key(&mut self, keys: &[&str], key: &str, what: &str, question: &str, path: &str) {
        if keys.contains(&key) {
            return;
        }
        let hint = match did_you_mean(key, keys) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => format!("; use one of {}", list_words(keys)),
        };
        self.err(
            path,
            format!("there is no {what} \"{key}\" in question \"{question}\"{hint}"),
        );
    }

    fn check_value(&mut self, kind: &QuestionKind, question: &str, value: &CondValue, path: &str) {
        let level_values: Vec<i64> = match kind {
            QuestionKind::Scale { levels } => levels.iter().map(|l| l.value).collect(),
            QuestionKind::Checklist { levels } => levels.iter().map(|l| l.value).collect(),
            _ => Vec::new(),
        };
        match (kind, value) {
            (QuestionKind::Scale { .. } | QuestionKind::Checklist { .. }, CondValue::Number(n))
                if !level_values.iter().any(|v| *v as f64 == *n) =>
            {
                let shown: Vec<String> = level_values.iter().map(i64::to_string).collect();
                self.err(
                    path,
                    format!(
                        "{} is not a level of question \"{question}\"; use {}",
                        plain_number(*n),
                        or_words(&shown)
                    ),
                );
            }
            (QuestionKind::Scale { .. } | QuestionKind::Checklist { .. }, CondValue::Number(_)) => {
            }
            (QuestionKind::Scale { .. } | QuestionKind::Checklist { .. }, _) => {
                self.err(
                    path,
                    format!("must be a level value (a number) of question \"{question}\""),
                );
            }
            (QuestionKind::Single { options }, CondValue::Key(key)) => {
                let keys: Vec<&str> = options.iter().map(|o| o.key.as_str()).collect();
                self.check_key(&keys, key, "option", question, path);
            }
            (QuestionKind::Single { .. }, _) => {
                self.err(
                    path,
                    format!("must be an option key of question \"{question}\""),
                );
            }
            (QuestionKind::YesNo { .. }, CondValue::Bool(_)) => {}
            (QuestionKind::YesNo { .. }, CondValue::Key(s)) => {
                self.err(
                    path,
                    format!(
                        "must be true or false, not \"{s}\" (question \"{question}\" is yes/no)"
                    ),
                );
            }
            (QuestionKind::YesNo { .. }, _) => {
                self.err(
                    path,
                    format!("must be true or false (question \"{question}\" is yes/no)"),
                );
            }
            (QuestionKind::Number { .. }, CondValue::Number(_)) => {}
            (QuestionKind::Number { .. }, _) => {
                self.err(
                    path,
                    format!("must be a number (question \"{question}\" is a number question)"),
                );
            }
            _ => {}
        }
    }
}
