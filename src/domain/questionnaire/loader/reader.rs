//! The walk's tools: a [`Reader`] that collects every error with its path (and stops at
//! [`MAX_ERRORS`](super::MAX_ERRORS)), and the generic readers of fields, text, slugs, numbers and
//! lists that every part of the document uses, so each rule is phrased and reported one way.

use std::collections::BTreeMap;

use super::MAX_ERRORS;
use crate::domain::document::Node;
use crate::domain::questionnaire::QuestionKind;
use crate::domain::{did_you_mean, plain_number, FieldError};

pub(super) fn at(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

pub(super) fn idx(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
/// A slug: `^[a-z][a-z0-9-]{0,62}$`.
pub(crate) fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

pub(super) fn is_version(s: &str) -> bool {
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

pub(super) fn list_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

pub(super) fn or_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// A mapping being read, with the path that leads to it.
pub(super) struct Fields<'a> {
    pub(super) path: String,
    pub(super) entries: &'a [(String, Node)],
}

impl<'a> Fields<'a> {
    pub(super) fn get(&self, name: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value unless it is absent or an explicit null.
    pub(super) fn present(&self, name: &str) -> Option<&'a Node> {
        self.get(name).filter(|n| **n != Node::Null)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.present(name).is_some()
    }

    pub(super) fn at(&self, name: &str) -> String {
        at(&self.path, name)
    }
}

/// What a condition needs to know about an earlier question.
pub(super) struct Earlier {
    pub(super) kind: QuestionKind,
    /// False when the question itself had errors: conditions on it are not checked
    /// further, so one mistake is not reported many times.
    pub(super) clean: bool,
}

#[derive(Default)]
pub(super) struct Reader {
    pub(super) errors: Vec<FieldError>,
    /// Every question key in the document with its position, found before the walk so a
    /// condition can tell "comes later" from "does not exist".
    pub(super) all_keys: BTreeMap<String, usize>,
    /// Questions already read, by key, with where the key was first used.
    pub(super) earlier: BTreeMap<String, (Earlier, String)>,
}

impl Reader {
    pub(super) fn err(&mut self, path: &str, message: impl Into<String>) {
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

    pub(super) fn mapping<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        what: &str,
    ) -> Option<Fields<'a>> {
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
    pub(super) fn check_fields(
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

    pub(super) fn missing(&mut self, fields: &Fields, name: &str, hint: &str) {
        let message = if hint.is_empty() {
            format!("missing required field \"{name}\"")
        } else {
            format!("missing required field \"{name}\"; {hint}")
        };
        self.err(&fields.path, message);
    }

    pub(super) fn text_value(
        &mut self,
        node: &Node,
        path: &str,
        max_chars: usize,
    ) -> Option<String> {
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

    pub(super) fn required_text(
        &mut self,
        f: &Fields,
        name: &str,
        max_chars: usize,
        hint: &str,
    ) -> String {
        match f.get(name) {
            Some(node) => self.text_value(node, &f.at(name), max_chars),
            None => {
                self.missing(f, name, hint);
                None
            }
        }
        .unwrap_or_default()
    }

    pub(super) fn optional_text(&mut self, f: &Fields, name: &str) -> Option<String> {
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

    pub(super) fn slug_value(&mut self, node: &Node, path: &str, what: &str) -> Option<String> {
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

    pub(super) fn required_slug(&mut self, f: &Fields, name: &str, what: &str) -> String {
        match f.get(name) {
            Some(node) => self.slug_value(node, &f.at(name), what),
            None => {
                self.missing(f, name, "");
                None
            }
        }
        .unwrap_or_default()
    }

    pub(super) fn bool_field(&mut self, f: &Fields, name: &str, default: bool) -> bool {
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

    pub(super) fn number_value(&mut self, node: &Node, path: &str) -> Option<f64> {
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

    pub(super) fn optional_number(&mut self, f: &Fields, name: &str) -> Option<f64> {
        let node = f.present(name)?;
        self.number_value(node, &f.at(name))
    }

    pub(super) fn required_number(&mut self, f: &Fields, name: &str, hint: &str) -> Option<f64> {
        match f.get(name) {
            Some(node) => self.number_value(node, &f.at(name)),
            None => {
                self.missing(f, name, hint);
                None
            }
        }
    }

    pub(super) fn integer_value(&mut self, node: &Node, path: &str) -> Option<i64> {
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

    pub(super) fn weight(&mut self, f: &Fields) -> f64 {
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

    pub(super) fn list<'a>(
        &mut self,
        f: &Fields<'a>,
        name: &str,
        example: &str,
    ) -> Option<&'a [Node]> {
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
}
