//! The typed model of a question set (format version 1).
//!
//! A definition is parsed once, by [`load`], into these types; every rule of the format has
//! been checked by then, so scoring, visibility and the web pages can trust what they are
//! given ("parse, don't validate"). [`to_yaml`] and [`to_json`] write a model back in the
//! same format, and loading what they write gives the same model.
//!
//! The model also carries a [`QuestionIndex`], built by the loader: the questions sorted by
//! key and where each question a condition names sits. Scoring is the hot path (issue 21)
//! and without it every assessment looked each question up by key in the answers and
//! rebuilt a map of the questions conditions name. It is derived data, so it takes no part
//! in equality and is never written out; because the fields are public and a model can be
//! changed after loading, its users check it against the model as they go and index the
//! model afresh when it does not fit, so a stale index costs time, never a wrong result.

pub mod authoring;
mod export;
pub(crate) mod index;
mod loader;
#[cfg(test)]
mod loader_tests;

pub use export::{to_json, to_yaml};
pub use index::QuestionIndex;
pub use loader::{load, load_with_warnings, MAX_DEFINITION_BYTES};

/// A question set: one version of a questionnaire family.
#[derive(Debug, Clone, PartialEq)]
pub struct Questionnaire {
    pub format: u32,
    pub key: String,
    pub version: String,
    pub title: String,
    pub description: Option<String>,
    pub settings: Vec<String>,
    pub scale: Scale,
    pub decimals: u8,
    pub bands: Vec<Band>,
    pub pillars: Vec<Pillar>,
    pub domains: Vec<Domain>,
    /// Lookups derived from `domains` for scoring; see the module documentation.
    pub index: QuestionIndex,
}

/// The range in which domain, pillar and overall scores are reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub min: f64,
    pub max: f64,
}

impl Default for Scale {
    fn default() -> Self {
        Scale { min: 1.0, max: 5.0 }
    }
}

/// A maturity label for scores from `min` up to the next band's `min`.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub min: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pillar {
    pub key: String,
    pub title: String,
    pub description: Option<String>,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub key: String,
    pub title: String,
    pub description: Option<String>,
    pub pillar: Option<String>,
    pub weight: f64,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub key: String,
    pub text: String,
    pub help: Option<String>,
    pub required: bool,
    pub weight: f64,
    pub allow_na: bool,
    pub show_if: Option<Condition>,
    pub kind: QuestionKind,
}

/// The type of a question with the fields that only that type has.
#[derive(Debug, Clone, PartialEq)]
pub enum QuestionKind {
    Scale {
        levels: Vec<Level>,
    },
    Checklist {
        levels: Vec<ChecklistLevel>,
    },
    Single {
        options: Vec<SingleOption>,
    },
    Multi {
        options: Vec<MultiOption>,
        max_score: Option<f64>,
    },
    YesNo {
        yes_score: f64,
        no_score: f64,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
        integer: bool,
        unit: Option<String>,
        bands: Vec<NumberBand>,
    },
    Text {
        max_length: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub value: i64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChecklistLevel {
    pub value: i64,
    pub label: String,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    pub key: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SingleOption {
    pub key: String,
    pub label: String,
    /// `None` means "not scored": an answer with this option does not count.
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MultiOption {
    pub key: String,
    pub label: String,
    pub score: f64,
    pub exclusive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumberBand {
    /// `None` only on the last band, which catches every value above the previous one.
    pub up_to: Option<f64>,
    pub score: f64,
}

/// A `show_if` condition (format section 3).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Equals {
        question: String,
        value: CondValue,
    },
    In {
        question: String,
        values: Vec<CondValue>,
    },
    Includes {
        question: String,
        option: String,
    },
    AtLeast {
        question: String,
        n: f64,
    },
    AtMost {
        question: String,
        n: f64,
    },
    Answered {
        question: String,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// A value compared against an answer: an option key, a number (level values included)
/// or true/false.
#[derive(Debug, Clone, PartialEq)]
pub enum CondValue {
    Key(String),
    Number(f64),
    Bool(bool),
}

/// Default maximum length of a text answer, in characters.
pub const DEFAULT_TEXT_MAX_LENGTH: u32 = 5000;

impl Questionnaire {
    /// Every question in document order (domains in order, questions in order), with the
    /// index of its domain.
    pub fn questions(&self) -> impl Iterator<Item = (usize, &Question)> + '_ {
        self.domains
            .iter()
            .enumerate()
            .flat_map(|(i, d)| d.questions.iter().map(move |q| (i, q)))
    }

    /// The question with this key.
    pub fn question(&self, key: &str) -> Option<&Question> {
        self.questions().map(|(_, q)| q).find(|q| q.key == key)
    }

    /// The domain that holds the question with this key.
    pub fn domain_of(&self, key: &str) -> Option<&Domain> {
        self.domains
            .iter()
            .find(|d| d.questions.iter().any(|q| q.key == key))
    }

    /// The pillar with this key.
    pub fn pillar(&self, key: &str) -> Option<&Pillar> {
        self.pillars.iter().find(|p| p.key == key)
    }
}

impl Question {
    /// Whether answers to this question can count towards a score.
    pub fn is_scored(&self) -> bool {
        self.score_range().is_some()
    }

    /// The lowest and highest raw score (format section 2), used to normalise a raw score
    /// to 0..1. `None` for questions that are never scored: text, a number without bands,
    /// a multi whose options all score 0 (an information-only list), and any question
    /// whose range is empty.
    pub fn score_range(&self) -> Option<(f64, f64)> {
        let (min, max) = match &self.kind {
            QuestionKind::Scale { levels } => {
                (levels.first()?.value as f64, levels.last()?.value as f64)
            }
            QuestionKind::Checklist { levels } => {
                (levels.first()?.value as f64, levels.last()?.value as f64)
            }
            QuestionKind::Single { options } => min_max(options.iter().filter_map(|o| o.score))?,
            QuestionKind::Multi { options, max_score } => {
                let max = match max_score {
                    Some(m) => *m,
                    None => options.iter().map(|o| o.score).sum(),
                };
                (0.0, max)
            }
            QuestionKind::YesNo {
                yes_score,
                no_score,
            } => (yes_score.min(*no_score), yes_score.max(*no_score)),
            QuestionKind::Number { bands, .. } => min_max(bands.iter().map(|b| b.score))?,
            QuestionKind::Text { .. } => return None,
        };
        (min.is_finite() && max.is_finite() && max > min).then_some((min, max))
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((v.min(lo), v.max(hi))),
    })
}

impl QuestionKind {
    /// The name of the type as written in a definition (`yes_no`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            QuestionKind::Scale { .. } => "scale",
            QuestionKind::Checklist { .. } => "checklist",
            QuestionKind::Single { .. } => "single",
            QuestionKind::Multi { .. } => "multi",
            QuestionKind::YesNo { .. } => "yes_no",
            QuestionKind::Number { .. } => "number",
            QuestionKind::Text { .. } => "text",
        }
    }
}

impl ChecklistLevel {
    /// The level reached with these criteria ticked: the highest level value V such that
    /// every criterion of every level with value <= V is ticked (the first level has none).
    pub fn reached<'a>(levels: &'a [ChecklistLevel], ticked: &[String]) -> Option<&'a Self> {
        let mut reached = levels.first()?;
        for level in levels.iter().skip(1) {
            if level.criteria.iter().all(|c| ticked.contains(&c.key)) {
                reached = level;
            } else {
                break;
            }
        }
        Some(reached)
    }
}

impl Condition {
    /// Every question key this condition refers to.
    pub fn questions(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_questions(&mut out);
        out
    }

    fn collect_questions<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Condition::Equals { question, .. }
            | Condition::In { question, .. }
            | Condition::Includes { question, .. }
            | Condition::AtLeast { question, .. }
            | Condition::AtMost { question, .. }
            | Condition::Answered { question } => out.push(question),
            Condition::All(items) | Condition::Any(items) => {
                for c in items {
                    c.collect_questions(out);
                }
            }
            Condition::Not(inner) => inner.collect_questions(out),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = include_str!("../../tests/fixtures/wgll-acute-2025.yaml");

    pub(crate) fn example() -> Questionnaire {
        load(EXAMPLE.as_bytes()).unwrap()
    }

    #[test]
    fn helpers_find_questions_in_document_order() {
        let q = example();
        let keys: Vec<_> = q.questions().map(|(_, q)| q.key.as_str()).collect();
        assert_eq!(keys.first(), Some(&"wl-strategy"));
        assert_eq!(keys.last(), Some(&"hp-data-sharing"));
        assert_eq!(keys.len(), 17);
        let domains: Vec<_> = q.questions().map(|(d, _)| d).collect();
        assert!(domains.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(q.question("sf-uptime").unwrap().kind.type_name(), "number");
        assert_eq!(q.domain_of("sf-uptime").unwrap().key, "infrastructure");
        assert!(q.question("nope").is_none());
    }

    #[test]
    fn score_ranges_follow_the_table() {
        let q = example();
        let range = |k: &str| q.question(k).unwrap().score_range();
        assert_eq!(range("wl-strategy"), Some((1.0, 5.0)));
        assert_eq!(range("wl-cio"), Some((1.0, 5.0)));
        assert_eq!(range("sf-epr"), Some((0.0, 100.0)));
        assert_eq!(range("sf-capabilities"), Some((0.0, 4.0)));
        assert_eq!(range("ec-nhs-app"), Some((0.0, 4.0)));
        assert_eq!(range("sp-mfa"), Some((0.0, 1.0)));
        assert_eq!(range("sf-uptime"), Some((0.0, 3.0)));
        assert_eq!(range("sf-epr-notes"), None);
        assert!(!q.question("sf-epr-notes").unwrap().is_scored());
    }

    #[test]
    fn checklist_level_needs_every_lower_criterion() {
        let q = example();
        let QuestionKind::Checklist { levels } = &q.question("wl-cio").unwrap().kind else {
            panic!("not a checklist")
        };
        let level = |ticked: &[&str]| {
            let ticked: Vec<String> = ticked.iter().map(|s| s.to_string()).collect();
            ChecklistLevel::reached(levels, &ticked).unwrap().value
        };
        assert_eq!(level(&[]), 1);
        assert_eq!(level(&["cclo-named"]), 2);
        assert_eq!(level(&["cclo-named", "cclo-board"]), 2);
        assert_eq!(level(&["cclo-named", "cclo-board", "nurse-lead"]), 3);
        assert_eq!(level(&["cclo-board", "nurse-lead", "safety-officer"]), 1);
        assert_eq!(
            level(&[
                "cclo-named",
                "cclo-board",
                "nurse-lead",
                "research-link",
                "safety-officer"
            ]),
            5
        );
    }
}
