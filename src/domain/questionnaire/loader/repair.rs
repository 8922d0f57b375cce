//! Repairs YAML's reading of an unquoted comma inside `{...}` before the walk, with a warning
//! for each field repaired, so the shared example question set loads and its authors are told
//! what to quote.

use super::reader::{at, idx};
use crate::domain::document::Node;
use crate::domain::FieldError;

/// Joins text that YAML split at an unquoted comma inside `{...}` back together, and
/// records a warning for each field repaired (see the module documentation).
pub(super) fn rejoin_split_text(node: &mut Node, path: &str, warnings: &mut Vec<FieldError>) {
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
