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
//!
//! [`load_with_warnings`] is the entry: [`repair`] mends YAML's split text, then a
//! [`reader::Reader`] walks the tree: [`outline`] (the top level, scale, bands, pillars,
//! domains), [`questions`] (each type's fields) and [`conditions`] (`show_if`), all reporting
//! through the reader's generic field readers ([`reader`]).

use super::Questionnaire;
use crate::domain::document;
use crate::domain::FieldError;

mod conditions;
mod outline;
mod questions;
mod reader;
mod repair;

use reader::Reader;
use repair::rejoin_split_text;

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
