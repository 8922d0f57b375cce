//! How deeply a YAML or JSON text nests, estimated in one linear pass over the characters
//! before any parser sees it.
//!
//! The YAML parser builds its whole event stream before the tree reader can count levels,
//! and it slows down with depth: 20,000 levels in 80 KB (`[[[[...` or `- - - -...`) took
//! seconds before the reader's limit ([`crate::domain::document::MAX_DEPTH`]) could refuse
//! it. This pass refuses such a text first, in time proportional to its length.
//!
//! The estimate counts block indentation levels, compact sequence and key indicators
//! (`- - x` is two levels on one line), and open flow collections (`[`, `{`), skipping
//! quoted text, comments and block scalars (`|`, `>`). It is an upper bound for ordinary
//! documents, never much above the true depth, so it is checked against a limit of twice the
//! reader's; the reader's exact count still applies to whatever passes.

/// The estimate's limit: twice the tree reader's, so a legitimate document is never refused
/// here by the estimate's slack, while a hostile one is refused long before it is slow.
pub const MAX_ESTIMATED_DEPTH: usize = 2 * crate::domain::document::MAX_DEPTH;

/// Whether `text` nests deeper than `max` levels by the estimate above; stops at the first
/// place that does.
pub fn deeper_than(text: &str, max: usize) -> bool {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut block_scalar_parent: Option<usize> = None;
    for line in text.split('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let mut compact = 0usize;
        let mut body = rest;
        if quote.is_none() && flow == 0 {
            let blank = rest.trim().is_empty() || rest.starts_with('#');
            if let Some(parent) = block_scalar_parent {
                if blank || indent > parent {
                    continue;
                }
                block_scalar_parent = None;
            }
            if blank {
                continue;
            }
            while indents.last().is_some_and(|top| *top > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            // `- - x` and `? - x` open a level per indicator.
            loop {
                let b = body.as_bytes();
                let indicator = matches!(b.first(), Some(b'-' | b'?'))
                    && matches!(b.get(1), None | Some(b' ' | b'\t'));
                if !indicator {
                    break;
                }
                compact += 1;
                body = body[1..].trim_start_matches([' ', '\t']);
            }
        }
        let base = indents.len() + compact;
        if base + flow > max {
            return true;
        }
        // The last significant character: a quote or a flow opener only starts something
        // at the start of a value, not inside plain text such as `Don't` or `a[1]`.
        let mut last = '\n';
        let mut previous = ' ';
        for c in body.chars() {
            if let Some(q) = quote {
                if q == '"' {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        quote = None;
                    }
                } else if c == '\'' {
                    quote = None;
                }
                last = c;
                previous = c;
                continue;
            }
            let value_start = matches!(last, '\n' | ':' | ',' | '[' | '{' | '-' | '?');
            match c {
                '#' if previous == ' ' || previous == '\t' || last == '\n' => break,
                '"' | '\'' if value_start => quote = Some(c),
                '[' | '{' if flow > 0 || value_start => {
                    flow += 1;
                    if base + flow > max {
                        return true;
                    }
                }
                ']' | '}' => flow = flow.saturating_sub(1),
                _ => {}
            }
            if !c.is_whitespace() {
                last = c;
            }
            previous = c;
        }
        if quote.is_none() && flow == 0 {
            let value = body.split(" #").next().unwrap_or("").trim_end();
            let header =
                value.trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
            if header.ends_with('|') || header.ends_with('>') {
                block_scalar_parent = Some(indent);
            }
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn quick(text: &str) -> bool {
        let started = Instant::now();
        let deep = deeper_than(text, MAX_ESTIMATED_DEPTH);
        assert!(started.elapsed() < Duration::from_millis(500), "slow");
        deep
    }

    #[test]
    fn twenty_thousand_levels_are_refused_fast_in_every_shape() {
        let n = 20_000;
        let flow = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let maps = format!("{}1{}", "{a: ".repeat(n), "}".repeat(n));
        let json = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        let dashes = format!("{}x\n", "- ".repeat(n));
        let keys = format!("{}x\n", "? ".repeat(n));
        let indented: String = (0..2_000)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        for text in [&flow, &maps, &json, &dashes, &keys, &indented] {
            assert!(quick(text), "{}", &text[..40]);
        }
    }

    #[test]
    fn the_whole_reader_refuses_deep_documents_fast() {
        let n = 20_000;
        for text in [
            format!("{}{}", "[".repeat(n), "]".repeat(n)),
            format!("{}x\n", "- ".repeat(n)),
        ] {
            let started = Instant::now();
            let error = crate::domain::document::parse(text.as_bytes(), 1 << 20).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(1));
            assert!(error.message.contains("nested more than"), "{error:?}");
        }
    }

    #[test]
    fn ordinary_documents_are_not_refused() {
        let fixture = include_str!("../../tests/fixtures/wgll-acute-2025.yaml");
        assert!(!deeper_than(fixture, 12), "the fixture is about ten levels");
        let tricky = "title: Don't [panic\nnote: 'it''s [fine'\ntext: |\n  [[[[[[[[\n      - - - - -\nlist: [a, {b: [c]}]  # [[[[ not counted\nurl: http://x/a[1]\n";
        assert!(!deeper_than(tricky, 4), "{tricky}");
        let json = "{\n  \"a\": [\n    {\"b\": \"[[[[\\\"[[[[\"},\n    [1, 2]\n  ]\n}";
        assert!(!deeper_than(json, 4));
        assert!(deeper_than(json, 2));
    }
}
