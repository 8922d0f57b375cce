//! The pure core: question sets, answers, visibility, scoring and comparison.
//!
//! Everything here is a plain function of its inputs with no I/O, so the web app, the
//! command line, the API and the reports all compute the same thing from the same code,
//! and re-scoring a stored submission reproduces the stored result exactly.

pub mod answers;
pub mod comparability;
pub mod document;
pub mod nesting;
pub mod next_band;
pub mod ods;
pub mod questionnaire;
pub mod scoring;
pub mod stats;
pub mod text;
pub mod visibility;

#[cfg(test)]
mod properties;

pub use answers::{Answer, Answers, AnswersFile};
pub use questionnaire::{load, Question, QuestionKind, Questionnaire};
pub use scoring::{score, Assessment};

use std::fmt;

/// One problem found in a document, with where it is and how to fix it.
///
/// `path` names the place in the document (`domains[2].questions[0].options[1].key`, or
/// the question key for an answer, or `(document)` for the file as a whole); `message`
/// is a plain sentence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        let path = if path.is_empty() {
            document::DOCUMENT_PATH.to_string()
        } else {
            path
        };
        FieldError {
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Formats a number for people: whole numbers without a decimal point (`100`), others in
/// their shortest exact form (`99.5`).
pub(crate) fn plain_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The closest of `candidates` to a mistyped `word`, when it is close enough to be a
/// likely typo (one edit for short words, two for most, three for long ones; swapping two
/// neighbouring letters is one edit).
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = match word.chars().count() {
        // Nothing to compare, or too long to be a typo of a field or key (and costly).
        0 | 65.. => return None,
        1..=3 => 1,
        4..=9 => 2,
        _ => 3,
    };
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbouring characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    let get = |d: &[usize], i: usize, j: usize| d.get(at(i, j)).copied().unwrap_or(usize::MAX);
    for i in 0..=a.len() {
        if let Some(cell) = d.get_mut(at(i, 0)) {
            *cell = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(cell) = d.get_mut(at(0, j)) {
            *cell = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ca != cb);
            let mut best = (get(&d, i - 1, j) + 1)
                .min(get(&d, i, j - 1) + 1)
                .min(get(&d, i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                best = best.min(get(&d, i - 2, j - 2) + 1);
            }
            if let Some(cell) = d.get_mut(at(i, j)) {
                *cell = best;
            }
        }
    }
    get(&d, a.len(), b.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn field_error_display_and_document_path() {
        assert_eq!(FieldError::new("key", "bad").to_string(), "key: bad");
        assert_eq!(FieldError::new("", "bad").to_string(), "(document): bad");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("requierd", &["required", "weight"]),
            Some("required")
        );
        assert_eq!(did_you_mean("yesno", &["yes_no", "text"]), Some("yes_no"));
        assert_eq!(did_you_mean("titel", &["title", "text"]), Some("title"));
        assert_eq!(did_you_mean("lede", &["lead", "care"]), Some("lead"));
        assert_eq!(did_you_mean("colour", &["required", "weight"]), None);
        assert_eq!(did_you_mean("", &["a"]), None);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn plain_numbers() {
        assert_eq!(plain_number(100.0), "100");
        assert_eq!(plain_number(-3.0), "-3");
        assert_eq!(plain_number(99.5), "99.5");
    }
}
