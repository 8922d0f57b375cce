//! Reading untrusted YAML or JSON into a plain, ordered tree.
//!
//! Question sets and answer files are uploaded by people we do not control, so this is the
//! one place that decides what a document may look like before any meaning is given to it:
//! size, text encoding, nesting depth, alias expansion ("billion laughs"), text keys only and
//! no repeated keys. Everything else (the loader, the answers file reader) walks the
//! [`Node`] tree this produces, which keeps fields in document order so errors are reported
//! in the order a person reads the file.
//!
//! Documents are read as YAML with `serde_yaml` 0.9, which follows YAML 1.2 for scalars
//! (`yes`, `no`, `on`, `off` stay text, only `true`/`false` are booleans). A document that
//! starts with `{` is read as JSON first (see `read`).

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::domain::FieldError;

/// How deeply lists and mappings may nest. A full question set needs about ten levels;
/// conditions can nest further, but nothing legitimate comes close to this.
pub const MAX_DEPTH: usize = 64;

/// How many values (scalars, lists, mappings) a document may expand to once YAML aliases
/// are followed. A 300-question set is around 20,000.
pub const MAX_VALUES: usize = 500_000;

/// How many bytes of text a document may expand to once YAML aliases are followed.
pub const MAX_EXPANDED_TEXT_BYTES: usize = 16 * 1024 * 1024;

/// A YAML or JSON value with its mapping entries kept in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A short, plain description of what this value is, for "must be X, not Y" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Node::Null => "empty",
            Node::Bool(_) => "true/false",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Text(_) => "text",
            Node::List(_) => "a list",
            Node::Map(_) => "a mapping of fields",
        }
    }

    /// The value of a mapping entry, if this is a mapping that has it.
    pub fn get(&self, name: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Node::Int(i) => Some(*i as f64),
            Node::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as a whole number: an integer, or a float with no fractional part that
    /// fits in an `i64` (JSON writers often emit `3.0`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Node::Int(i) => Some(*i),
            Node::Float(f) => float_to_i64(*f),
            _ => None,
        }
    }

    /// Converts to a `serde_json::Value`; fails on numbers JSON cannot hold (NaN, infinity).
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        Ok(match self {
            Node::Null => serde_json::Value::Null,
            Node::Bool(b) => serde_json::Value::Bool(*b),
            Node::Int(i) => serde_json::Value::from(*i),
            Node::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => serde_json::Value::Number(n),
                None => return Err("must be a finite number".to_string()),
            },
            Node::Text(s) => serde_json::Value::String(s.clone()),
            Node::List(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(Node::to_json)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Node::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k.clone(), v.to_json()?);
                }
                serde_json::Value::Object(map)
            }
        })
    }
}

/// Converts a float to an integer when it is whole and in range.
pub(crate) fn float_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; anything at or above it does not fit.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// Path used for errors about the document as a whole.
pub const DOCUMENT_PATH: &str = "(document)";

fn document_error(message: impl Into<String>) -> FieldError {
    FieldError::new(DOCUMENT_PATH, message)
}

/// Reads `input` into a [`Node`] tree, refusing hostile or malformed input with one plain
/// error whose path is `(document)`. `max_bytes` is the caller's size limit.
pub fn parse(input: &[u8], max_bytes: usize) -> Result<Node, FieldError> {
    if input.len() > max_bytes {
        return Err(document_error(format!(
            "the file is {} bytes, over the limit of {} bytes; split it or remove content",
            input.len(),
            max_bytes
        )));
    }
    if input.contains(&0) {
        return Err(document_error(
            "the file is not text (it contains NUL bytes); save it as UTF-8 YAML or JSON",
        ));
    }
    let text = std::str::from_utf8(input).map_err(|_| {
        document_error("the file is not valid UTF-8 text; save it as UTF-8 YAML or JSON")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(document_error(
            "the file is empty; it should contain a YAML or JSON document",
        ));
    }

    // Refused before parsing: the YAML parser is slow on deep nesting (see `nesting`).
    if super::nesting::deeper_than(text, super::nesting::MAX_ESTIMATED_DEPTH) {
        return Err(document_error(limit_message(Limit::Depth)));
    }
    let budget = Budget::default();
    let result = read(text, &budget);
    if let Some(problem) = budget.problem.take() {
        return Err(problem);
    }
    if let Some(limit) = budget.exceeded.get() {
        return Err(document_error(limit_message(limit)));
    }
    result.map_err(document_error)
}

/// Reads JSON or YAML; the error is a plain message for a syntax error. Limits and
/// structural problems are left in `budget` for the caller to report.
///
/// A document starting with `{` is read as JSON first, so JSON strings mean what JSON says
/// (YAML would fold a raw U+0085 into a space, for example); if that fails it is read as a
/// YAML flow mapping. `serde_json` without its `float_roundtrip` feature can read a long
/// decimal one bit off, so the floats of a JSON document are then taken from a YAML reading
/// of the same text, which parses them exactly (see [`exact_floats`]).
fn read(text: &str, budget: &Budget) -> Result<Node, String> {
    if !text.trim_start().starts_with('{') {
        return match parse_yaml(text, budget) {
            Ok(Some(node)) => Ok(node),
            Ok(None) => Err(MORE_THAN_ONE.to_string()),
            Err(e) => Err(yaml_message(&e)),
        };
    }
    let json_error = match parse_json(text, budget) {
        Ok(mut node) => {
            if let Ok(Some(yaml)) = parse_yaml(&printable_for_yaml(text), &Budget::default()) {
                exact_floats(&mut node, &yaml);
            }
            return Ok(node);
        }
        Err(_) if budget.stopped() => return Err(String::new()),
        Err(e) => e,
    };
    let retry = Budget::default();
    let result = parse_yaml(text, &retry);
    budget.exceeded.set(retry.exceeded.get());
    budget.problem.replace(retry.problem.take());
    match result {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Err(MORE_THAN_ONE.to_string()),
        Err(_) => Err(format!("the file is not valid JSON: {json_error}")),
    }
}

/// The text with every character YAML cannot take raw (or treats as a line break)
/// replaced by `x`. In valid JSON such characters can only sit inside strings, so the
/// structure and the numbers are unchanged; only the floats of this reading are used.
fn printable_for_yaml(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' | ' '..='~' => c,
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'.. => match c {
                '\u{2028}' | '\u{2029}' | '\u{feff}' => 'x',
                _ => c,
            },
            _ => 'x',
        })
        .collect()
}

/// Replaces each float of `json` with the float at the same place in `yaml`, when both
/// readings agree to within a few units in the last place. Anything that does not line up
/// is left as JSON read it.
fn exact_floats(json: &mut Node, yaml: &Node) {
    match (json, yaml) {
        (Node::Float(a), Node::Float(b)) => {
            let tolerance = 4.0 * f64::EPSILON * a.abs().max(b.abs());
            if a.is_finite() && b.is_finite() && (*a - *b).abs() <= tolerance {
                *a = *b;
            }
        }
        (Node::List(xs), Node::List(ys)) if xs.len() == ys.len() => {
            for (x, y) in xs.iter_mut().zip(ys) {
                exact_floats(x, y);
            }
        }
        (Node::Map(xs), Node::Map(ys)) if xs.len() == ys.len() => {
            for ((kx, x), (ky, y)) in xs.iter_mut().zip(ys) {
                if kx == ky {
                    exact_floats(x, y);
                }
            }
        }
        _ => {}
    }
}

fn parse_json(text: &str, budget: &Budget) -> Result<Node, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let node = NodeSeed::root(budget).deserialize(&mut de)?;
    de.end()?;
    Ok(node)
}

/// Reads a YAML stream that must hold exactly one document (`Ok(None)` when it has more).
fn parse_yaml(text: &str, budget: &Budget) -> Result<Option<Node>, serde_yaml::Error> {
    let mut documents = serde_yaml::Deserializer::from_str(text);
    let Some(first) = documents.next() else {
        return Ok(Some(Node::Null));
    };
    let node = NodeSeed::root(budget).deserialize(first)?;
    Ok(documents.next().is_none().then_some(node))
}

const MORE_THAN_ONE: &str =
    "the file holds more than one YAML document (separated by ---); keep only one";

fn yaml_message(error: &serde_yaml::Error) -> String {
    let message = error.to_string();
    if message.contains("repetition limit exceeded") || message.contains("recursion limit") {
        return limit_message(Limit::Values);
    }
    format!("the file is not valid YAML: {message}")
}

fn limit_message(limit: Limit) -> String {
    match limit {
        Limit::Depth => {
            format!("the document is nested more than {MAX_DEPTH} levels deep; flatten it")
        }
        _ => format!(
            "the document expands to too much data (over {MAX_VALUES} values or \
             {MAX_EXPANDED_TEXT_BYTES} bytes of text, usually from repeated YAML aliases \
             such as *name); write the content out without aliases"
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    Depth,
    Values,
}

/// Counts what has been built so far, so alias expansion cannot exhaust memory.
#[derive(Default)]
struct Budget {
    values: Cell<usize>,
    text: Cell<usize>,
    exceeded: Cell<Option<Limit>>,
    /// A structural problem found while reading (repeated field, non-text field name,
    /// tag), with its path.
    problem: std::cell::RefCell<Option<FieldError>>,
}

impl Budget {
    /// Whether reading stopped on a limit or a structural problem rather than bad syntax.
    fn stopped(&self) -> bool {
        self.exceeded.get().is_some() || self.problem.borrow().is_some()
    }

    fn charge<E: de::Error>(&self, text_bytes: usize) -> Result<(), E> {
        let values = self.values.get().saturating_add(1);
        let text = self.text.get().saturating_add(text_bytes);
        self.values.set(values);
        self.text.set(text);
        if values > MAX_VALUES || text > MAX_EXPANDED_TEXT_BYTES {
            self.exceeded.set(Some(Limit::Values));
            return Err(E::custom("the document expands to too much data"));
        }
        Ok(())
    }
}

/// Where the value being read sits, as a chain of borrowed steps back to the root, so
/// structural problems can name their path without building strings for every value.
#[derive(Clone, Copy)]
enum Step<'p> {
    Root,
    Key(&'p Step<'p>, &'p str),
    Index(&'p Step<'p>, usize),
}

impl Step<'_> {
    fn path(&self) -> String {
        match self {
            Step::Root => String::new(),
            Step::Key(parent, key) => {
                let parent = parent.path();
                if parent.is_empty() {
                    (*key).to_string()
                } else {
                    format!("{parent}.{key}")
                }
            }
            Step::Index(parent, i) => format!("{}[{i}]", parent.path()),
        }
    }
}

struct NodeSeed<'b, 'p> {
    budget: &'b Budget,
    depth: usize,
    at: Step<'p>,
}

impl<'b> NodeSeed<'b, '_> {
    fn root(budget: &'b Budget) -> NodeSeed<'b, 'static> {
        NodeSeed {
            budget,
            depth: 0,
            at: Step::Root,
        }
    }

    fn child<'c, E: de::Error>(&self, at: Step<'c>) -> Result<NodeSeed<'b, 'c>, E> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            self.budget.exceeded.set(Some(Limit::Depth));
            return Err(E::custom("the document is nested too deeply"));
        }
        Ok(NodeSeed {
            budget: self.budget,
            depth,
            at,
        })
    }

    /// Records a structural problem, saying where it is, and returns an error to stop.
    /// Like every refusal of the document as a whole, its path is `(document)`.
    fn problem<E: de::Error>(&self, message: String) -> E {
        let path = self.at.path();
        let message = if path.is_empty() {
            format!("at the top level, {message}")
        } else {
            format!("at {path}, {message}")
        };
        let error = document_error(message.clone());
        self.budget.problem.replace(Some(error));
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_> {
    type Value = Node;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("text, a number, true/false, a list or a mapping")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(match i64::try_from(v) {
            Ok(i) => Node::Int(i),
            Err(_) => Node::Float(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.budget.charge(v.len())?;
        Ok(Node::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        self.budget.charge(v.len())?;
        Ok(Node::Text(v))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Err(self.problem("binary values are not supported; write text".to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.budget.charge(0)?;
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Node, A::Error> {
        Err(self.problem(
            "YAML tags (words starting with !) are not supported; remove the tag or put the \
             value in quotes"
                .to_string(),
        ))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.budget.charge(0)?;
        let mut items = Vec::new();
        loop {
            let at = Step::Index(&self.at, items.len());
            match seq.next_element_seed(self.child(at)?)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        self.budget.charge(0)?;
        let mut entries: Vec<(String, Node)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key_seed(self.child(self.at)?)? {
            let shown = match &key {
                Node::Text(s) => s.clone(),
                Node::Int(i) => i.to_string(),
                Node::Float(f) => f.to_string(),
                Node::Bool(b) => b.to_string(),
                Node::Null => "null".to_string(),
                Node::List(_) | Node::Map(_) => {
                    return Err(self
                        .problem("a field name must be text, not a list or mapping".to_string()))
                }
            };
            if !matches!(key, Node::Text(_)) {
                return Err(self.problem(format!(
                    "a field name must be text, not {shown}; put it in quotes (\"{shown}\") if \
                     you meant text"
                )));
            }
            if !seen.insert(shown.clone()) {
                return Err(self.problem(format!(
                    "the field \"{shown}\" appears twice in the same mapping; keep only one"
                )));
            }
            let value = map.next_value_seed(self.child(Step::Key(&self.at, &shown))?)?;
            entries.push((shown, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const LIMIT: usize = 2 * 1024 * 1024;

    fn err(input: &[u8]) -> FieldError {
        parse(input, LIMIT).unwrap_err()
    }

    #[test]
    fn yaml_1_2_booleans_stay_text() {
        let node = parse(b"a: yes\nb: no\nc: on\nd: true\ne: off\n", LIMIT).unwrap();
        assert_eq!(node.get("a"), Some(&Node::Text("yes".into())));
        assert_eq!(node.get("b"), Some(&Node::Text("no".into())));
        assert_eq!(node.get("c"), Some(&Node::Text("on".into())));
        assert_eq!(node.get("d"), Some(&Node::Bool(true)));
        assert_eq!(node.get("e"), Some(&Node::Text("off".into())));
    }

    #[test]
    fn keeps_document_order() {
        let node = parse(b"z: 1\na: 2\nm: 3\n", LIMIT).unwrap();
        let Node::Map(entries) = node else {
            panic!("not a map")
        };
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn reads_json_and_yaml_flow_mappings() {
        let json = parse(br#"{"a": [1, 2.5, "x", null, true]}"#, LIMIT).unwrap();
        assert_eq!(
            json.get("a"),
            Some(&Node::List(vec![
                Node::Int(1),
                Node::Float(2.5),
                Node::Text("x".into()),
                Node::Null,
                Node::Bool(true)
            ]))
        );
        let flow = parse(b"{a: yes, b: 2}", LIMIT).unwrap();
        assert_eq!(flow.get("a"), Some(&Node::Text("yes".into())));
    }

    #[test]
    fn json_numbers_are_exact_and_tabs_are_fine() {
        let node = parse(
            b"{\n\t\"w\": 218995.33333333334,\n\t\"s\": \"\\u00e9\\/\"\n}",
            LIMIT,
        )
        .unwrap();
        assert_eq!(node.get("w"), Some(&Node::Float(218995.33333333334)));
        assert_eq!(node.get("s"), Some(&Node::Text("é/".into())));
        let surrogates = parse(br#"{"s": "\ud83d\ude00"}"#, LIMIT).unwrap();
        assert_eq!(surrogates.get("s"), Some(&Node::Text("😀".into())));
        // A raw NEL is a plain character in JSON; YAML would fold it into a space.
        let nel = parse("{\"s\": \"a\u{85}b\"}".as_bytes(), LIMIT).unwrap();
        assert_eq!(nel.get("s"), Some(&Node::Text("a\u{85}b".into())));
        // Characters YAML refuses do not stop the floats being read exactly.
        let awkward = parse(
            "{\"s\": \"\u{7f}\u{fffe}\", \"w\": 218995.33333333334}".as_bytes(),
            LIMIT,
        )
        .unwrap();
        assert_eq!(awkward.get("w"), Some(&Node::Float(218995.33333333334)));
    }

    #[test]
    fn refuses_empty_and_whitespace() {
        for input in [&b""[..], b"   \n\t\n"] {
            let e = err(input);
            assert_eq!(e.path, DOCUMENT_PATH);
            assert!(e.message.contains("empty"), "{e}");
        }
    }

    #[test]
    fn refuses_binary_and_bad_utf8() {
        assert!(err(b"key: a\0b").message.contains("NUL"));
        assert!(err(b"key: \xff\xfe").message.contains("UTF-8"));
    }

    #[test]
    fn refuses_oversized_input() {
        let big = vec![b'#'; LIMIT + 1];
        assert!(err(&big).message.contains("over the limit"));
    }

    #[test]
    fn refuses_deep_nesting() {
        let yaml = format!("a: {}1{}", "[".repeat(200), "]".repeat(200));
        assert!(
            err(yaml.as_bytes()).message.contains("nested"),
            "{}",
            err(yaml.as_bytes())
        );
        let json = format!("{{\"a\": {}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(err(json.as_bytes()).message.contains("nested"));
    }

    #[test]
    fn refuses_billion_laughs_quickly() {
        let mut yaml = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let start = Instant::now();
        let e = err(yaml.as_bytes());
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(e.message.contains("too much data"), "{e}");
        assert_eq!(e.path, DOCUMENT_PATH);
    }

    #[test]
    fn refuses_wide_alias_expansion() {
        // One big anchored list referenced many times: few jumps, huge output.
        let mut yaml = String::from("big: &big [");
        yaml.push_str(&vec!["x"; 5000].join(","));
        yaml.push_str("]\nrefs: [");
        yaml.push_str(&vec!["*big"; 5000].join(","));
        yaml.push_str("]\n");
        let start = Instant::now();
        let e = err(yaml.as_bytes());
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(e.message.contains("too much data"), "{e}");
    }

    #[test]
    fn refuses_duplicate_and_non_text_keys() {
        let e = err(b"key: a\nkey: b\n");
        assert!(e.message.contains("\"key\" appears twice"), "{e}");
        let e = err(br#"{"key": 1, "key": 2}"#);
        assert!(e.message.contains("\"key\" appears twice"), "{e}");
        let e = err(b"2025: a\n");
        assert!(e.message.contains("must be text, not 2025"), "{e}");
    }

    #[test]
    fn refuses_multiple_documents_and_syntax_errors() {
        assert!(err(b"a: 1\n---\nb: 2\n").message.contains("more than one"));
        assert!(err(b"a: [1, 2\n").message.contains("not valid YAML"));
        assert!(err(b"{\"a\": 1").message.contains("not valid JSON"));
        // A trailing comma is not JSON but is a valid YAML flow mapping.
        assert!(parse(b"{\"a\": 1,}", LIMIT).is_ok());
    }

    #[test]
    fn converts_to_json_and_refuses_nan() {
        let node = parse(b"a: [1, 2.5, x]\nb: .nan\n", LIMIT).unwrap();
        assert_eq!(
            node.get("a").unwrap().to_json().unwrap(),
            serde_json::json!([1, 2.5, "x"])
        );
        assert!(node.get("b").unwrap().to_json().is_err());
    }
}
