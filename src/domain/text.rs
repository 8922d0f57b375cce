//! Characters that change how text is shown without being seen: bidirectional overrides and
//! isolates (a name with U+202E reads backwards from that point, so "Leeds\u{202E}gpj.exe"
//! looks like another name), zero-width and other invisible formatting characters, and
//! control characters. A person's or an organisation's name is shown to other people in
//! pages, exports and emails, so names holding any of these are refused where they enter
//! (forms, the registry import, the API), and the HTML templates replace any that are already
//! stored ([`crate::templates`]).
//!
//! The list is Unicode's format characters (general category Cf) plus the few invisible
//! letters (Hangul fillers) and the controls (Cc). Zero-width joiners are among them: a name
//! in a script that needs one is rare enough here that refusing it, with a message saying
//! which character, is the safer default.

/// Whether `c` is a control character or one that is invisible or reorders the text around it.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Why a name is refused for its hidden characters, naming the first one (`U+202E`), so the
/// person can find it; `None` when it has none.
pub fn hidden_character_problem(text: &str) -> Option<String> {
    text.chars().find(|c| is_hidden_or_control(*c)).map(|c| {
        format!(
            "contains an invisible or control character (U+{:04X}), which could hide or reorder what others see; remove it and type the name again",
            u32::from(c)
        )
    })
}

/// `text` with every hidden or control character replaced by U+FFFD, which shows where one was.
pub fn reveal_hidden(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_hidden_or_control) {
        text.chars()
            .map(|c| {
                if is_hidden_or_control(c) {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_invisible_characters_are_found() {
        for bad in [
            "Leeds\u{202E}gpj.exe",
            "Ann\u{200B}Lee",
            "\u{2066}Ann\u{2069}",
            "Ann\u{FEFF}",
            "Ann\u{00AD}Lee",
            "A\u{200F}",
            "tab\there",
            "\u{3164}",
        ] {
            let problem = hidden_character_problem(bad);
            assert!(problem.is_some(), "{bad:?}");
            assert!(problem.unwrap().contains("U+"), "{bad:?}");
            assert!(reveal_hidden(bad).contains('\u{FFFD}'));
        }
        for good in [
            "Leeds Teaching Hospitals NHS Trust",
            "Siân O'Brien-Smith",
            "Zoë Ødegård",
            "محمد",
            "李小龍",
        ] {
            assert_eq!(hidden_character_problem(good), None, "{good}");
            assert_eq!(reveal_hidden(good), good);
        }
    }
}
