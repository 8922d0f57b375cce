//! ODS codes: the keys of the organisation registry.
//!
//! Every organisation is known by its code from the NHS Organisation Data Service, and the
//! code's shape says what kind of organisation it is. [`OdsCode::parse`] is the one place a
//! code is checked; everything after it (the registry import, assessments, reports) holds an
//! [`OdsCode`] and can trust it, and the kind is read from the code rather than stored
//! separately and left to disagree with it.
//!
//! Codes are trimmed and upper-cased, then must match exactly one of these shapes:
//!
//! | kind | shape | example |
//! |---|---|---|
//! | NHS trust | `R` + 2 letters or digits (3 characters) | `RJ1`, `R1H` |
//! | integrated care board | `Q` + 2 letters or digits (3 characters) | `QHM` |
//! | GP practice | a letter other than `Q`, `R` or `U`, then 5 digits | `B82005`, `A81001` |
//! | primary care network | `U` + 5 digits | `U12345` |
//! | social care provider | `A` or `V`, then 4 or 5 letters or digits including at least one letter | `VN4T2`, `AB1234` |
//!
//! Decisions behind the table:
//!
//! - **The first letter decides the family.** `R`, `Q` and `U` belong to trusts, ICBs and PCNs,
//!   so they never start a GP practice code; every other letter may.
//! - **`A` and `V` are shared by GP practices and social care**, because real practice codes
//!   start with `A` (`A81001` is a practice in the North East). The rest of the code settles
//!   it: five digits make a practice; anything with a letter after the prefix is a social
//!   care provider. No code can match both.
//! - **Trust sites are not organisations here.** `R` + 4 characters (`RJ122`) is a site of
//!   trust `RJ1`; assessments are made by the trust, so a site code is refused with a message
//!   naming the trust's code.
//! - **Only ASCII letters and digits.** Spaces inside a code, hyphens and accented letters are
//!   refused rather than silently removed, so what is stored is exactly what was typed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest code shown back in full in an error message; longer input is cut short so a
/// pasted paragraph does not fill the page.
const SHOWN_CHARS: usize = 24;

/// What kind of organisation an ODS code names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrgKind {
    Trust,
    Icb,
    GpPractice,
    Pcn,
    SocialCare,
}

impl OrgKind {
    pub const ALL: [OrgKind; 5] = [
        OrgKind::Trust,
        OrgKind::Icb,
        OrgKind::GpPractice,
        OrgKind::Pcn,
        OrgKind::SocialCare,
    ];

    /// The stable identifier stored in `organisations.kind` and used in URLs and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Trust => "trust",
            OrgKind::Icb => "icb",
            OrgKind::GpPractice => "gp-practice",
            OrgKind::Pcn => "pcn",
            OrgKind::SocialCare => "social-care",
        }
    }

    /// What people call it, for pages and messages (sentence case, no article).
    pub fn label(self) -> &'static str {
        match self {
            OrgKind::Trust => "NHS trust",
            OrgKind::Icb => "integrated care board",
            OrgKind::GpPractice => "GP practice",
            OrgKind::Pcn => "primary care network",
            OrgKind::SocialCare => "social care provider",
        }
    }
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrgKind {
    type Err = String;

    /// Reads the identifier written by [`OrgKind::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "\"{}\" is not a kind of organisation: use trust, icb, gp-practice, pcn or \
                     social-care",
                    shown(s)
                )
            })
    }
}

/// A well-formed ODS code, trimmed and in capitals. The only way to make one is
/// [`OdsCode::parse`], so holding one means the code has a known [`OrgKind`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OdsCode(String);

impl OdsCode {
    /// Reads a code as people type it: surrounding spaces are ignored and lower case is
    /// accepted. The error is a sentence that quotes the input and shows the expected shape.
    pub fn parse(input: &str) -> Result<OdsCode, String> {
        let code = input.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err("an ODS code is required".to_string());
        }
        if let Some(bad) = code.chars().find(|c| !c.is_ascii_alphanumeric()) {
            let what = if bad.is_whitespace() {
                "a space".to_string()
            } else {
                format!("\"{bad}\"")
            };
            return Err(format!(
                "\"{}\" is not an ODS code: it contains {what}; codes are only letters and \
                 digits (like RJ1 or B82005)",
                shown(input.trim())
            ));
        }
        match classify(&code) {
            Ok(_) => Ok(OdsCode(code)),
            Err(reason) => Err(format!("\"{}\" is not an ODS code: {reason}", shown(&code))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> OrgKind {
        // The code was classified when it was parsed; the fallback is never reached.
        classify(&self.0).unwrap_or(OrgKind::GpPractice)
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OdsCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for OdsCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OdsCode::parse(s)
    }
}

impl TryFrom<String> for OdsCode {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        OdsCode::parse(&s)
    }
}

impl From<OdsCode> for String {
    fn from(code: OdsCode) -> String {
        code.0
    }
}

/// The kind of a trimmed, upper-case, all-alphanumeric code, or why it fits none.
fn classify(code: &str) -> Result<OrgKind, String> {
    let bytes = code.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return Err("an ODS code is required".to_string());
    };
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let any_letter = |s: &[u8]| s.iter().any(u8::is_ascii_alphabetic);
    match first {
        b'R' => match rest.len() {
            2 => Ok(OrgKind::Trust),
            4 => Err(format!(
                "it is a trust site code; register the trust itself (the first three \
                 characters, {})",
                code.get(..3).unwrap_or(code)
            )),
            _ => Err("trust codes are R followed by 2 letters or digits (like RJ1)".to_string()),
        },
        b'Q' => {
            if rest.len() == 2 {
                Ok(OrgKind::Icb)
            } else {
                Err("ICB codes are Q followed by 2 letters or digits (like QHM)".to_string())
            }
        }
        b'U' => {
            if rest.len() == 5 && all_digits(rest) {
                Ok(OrgKind::Pcn)
            } else {
                Err("PCN codes are U followed by 5 digits (like U12345)".to_string())
            }
        }
        b'A' | b'V' => {
            if rest.len() == 5 && all_digits(rest) {
                Ok(OrgKind::GpPractice)
            } else if (rest.len() == 4 || rest.len() == 5) && any_letter(rest) {
                Ok(OrgKind::SocialCare)
            } else {
                Err(format!(
                    "codes starting {} are GP practices ({}, then 5 digits, like {}81001) or \
                     social care providers ({}, then 4 or 5 letters or digits including at \
                     least one letter, like {}N4T2)",
                    first as char, first as char, first as char, first as char, first as char
                ))
            }
        }
        b'A'..=b'Z' => {
            if rest.len() == 5 && all_digits(rest) {
                Ok(OrgKind::GpPractice)
            } else {
                Err("GP practice codes are a letter followed by 5 digits (like B82005)".to_string())
            }
        }
        _ => Err(
            "codes start with a letter: R for trusts (like RJ1), Q for ICBs (like QHM), U for \
             PCNs (like U12345), A or V for social care (like VN4T2), or a letter and 5 digits \
             for GP practices (like B82005)"
                .to_string(),
        ),
    }
}

/// The input as it goes into a message: cut short when long.
fn shown(s: &str) -> String {
    if s.chars().count() <= SHOWN_CHARS {
        s.to_string()
    } else {
        let cut: String = s.chars().take(SHOWN_CHARS).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn kind(s: &str) -> OrgKind {
        OdsCode::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .kind()
    }

    fn error(s: &str) -> String {
        OdsCode::parse(s).expect_err(s)
    }

    #[test]
    fn trusts_are_r_and_two_characters() {
        assert_eq!(kind("RJ1"), OrgKind::Trust);
        assert_eq!(kind("R1H"), OrgKind::Trust);
        assert_eq!(kind("RRV"), OrgKind::Trust);
        assert_eq!(kind("R0A"), OrgKind::Trust);
        assert_eq!(
            error("R1"),
            "\"R1\" is not an ODS code: trust codes are R followed by 2 letters or digits \
             (like RJ1)"
        );
        assert!(error("RJ1X").contains("trust codes are R followed by 2"));
        assert!(error("R123456").contains("trust codes"));
    }

    #[test]
    fn trust_sites_are_refused_with_the_trust_code() {
        let e = error("RJ122");
        assert!(e.contains("trust site"), "{e}");
        assert!(e.contains("RJ1)"), "{e}");
        assert!(error("rx1ab").contains("(the first three characters, RX1)"));
    }

    #[test]
    fn icbs_are_q_and_two_characters() {
        assert_eq!(kind("QHM"), OrgKind::Icb);
        assert_eq!(kind("QE1"), OrgKind::Icb);
        assert_eq!(kind("Q99"), OrgKind::Icb);
        assert_eq!(
            error("QHMX"),
            "\"QHMX\" is not an ODS code: ICB codes are Q followed by 2 letters or digits \
             (like QHM)"
        );
        assert!(error("Q1").contains("ICB codes"));
    }

    #[test]
    fn gp_practices_are_a_letter_and_five_digits() {
        assert_eq!(kind("B82005"), OrgKind::GpPractice);
        assert_eq!(kind("Y02345"), OrgKind::GpPractice);
        assert_eq!(kind("Z99999"), OrgKind::GpPractice);
        // A and V with five digits are practices too (A81001 is a real practice code).
        assert_eq!(kind("A81001"), OrgKind::GpPractice);
        assert_eq!(kind("V12345"), OrgKind::GpPractice);
        assert!(error("B8200").contains("GP practice codes are a letter followed by 5 digits"));
        assert!(error("B820051").contains("GP practice codes"));
        assert!(error("BB2005").contains("GP practice codes"));
    }

    #[test]
    fn pcns_are_u_and_five_digits() {
        assert_eq!(kind("U12345"), OrgKind::Pcn);
        assert_eq!(kind("u00001"), OrgKind::Pcn);
        assert!(error("U1234").contains("PCN codes are U followed by 5 digits"));
        assert!(error("U1234A").contains("PCN codes"));
        assert!(error("UAB12").contains("PCN codes"));
    }

    #[test]
    fn social_care_is_a_or_v_with_a_letter_after_the_prefix() {
        assert_eq!(kind("VN4T2"), OrgKind::SocialCare);
        assert_eq!(kind("VLYQG"), OrgKind::SocialCare);
        assert_eq!(kind("AB123"), OrgKind::SocialCare);
        assert_eq!(kind("AB1234"), OrgKind::SocialCare);
        assert_eq!(kind("A1234B"), OrgKind::SocialCare);
        // Four digits and no letter: neither a practice nor a care provider.
        let e = error("A1234");
        assert!(e.contains("GP practices (A, then 5 digits"), "{e}");
        assert!(e.contains("social care providers (A, then 4 or 5"), "{e}");
        assert!(error("VAB").contains("codes starting V"));
        assert!(error("VABCDEF").contains("codes starting V"));
    }

    #[test]
    fn no_code_has_two_kinds() {
        // The rules partition the codes: every accepted code gets exactly one kind, and the
        // kind survives a round trip through the stored text.
        for code in [
            "RJ1", "QHM", "A81001", "VN4T2", "U12345", "B82005", "AB1234",
        ] {
            let parsed = OdsCode::parse(code).unwrap();
            let again = OdsCode::parse(parsed.as_str()).unwrap();
            assert_eq!(parsed, again);
            assert_eq!(parsed.kind(), again.kind());
        }
    }

    #[test]
    fn codes_are_trimmed_and_upper_cased() {
        let code = OdsCode::parse("  rj1 \t").unwrap();
        assert_eq!(code.as_str(), "RJ1");
        assert_eq!(code.to_string(), "RJ1");
        assert_eq!("qhm".parse::<OdsCode>().unwrap().as_str(), "QHM");
    }

    #[test]
    fn bad_characters_and_empty_input_are_named() {
        assert_eq!(error(""), "an ODS code is required");
        assert_eq!(error("   "), "an ODS code is required");
        let e = error("RJ 1");
        assert!(e.contains("contains a space"), "{e}");
        assert!(error("R-1").contains("contains \"-\""));
        assert!(error("RÉ1").contains("contains \"É\""));
        assert!(error("00L").contains("codes start with a letter"));
        assert!(error("1").contains("codes start with a letter"));
    }

    #[test]
    fn long_input_is_cut_short_in_messages() {
        let long = "X".repeat(500);
        let e = error(&long);
        assert!(e.len() < 200, "{e}");
        assert!(e.contains('…'));
    }

    #[test]
    fn kinds_have_identifiers_and_labels() {
        for kind in OrgKind::ALL {
            assert_eq!(kind.as_str().parse::<OrgKind>().unwrap(), kind);
            assert!(!kind.label().is_empty());
        }
        assert_eq!(OrgKind::GpPractice.as_str(), "gp-practice");
        assert_eq!(OrgKind::SocialCare.as_str(), "social-care");
        assert_eq!(OrgKind::Trust.label(), "NHS trust");
        assert!("hospital"
            .parse::<OrgKind>()
            .unwrap_err()
            .contains("\"hospital\""));
        assert_eq!(
            serde_json::to_string(&OrgKind::GpPractice).unwrap(),
            "\"gp-practice\""
        );
    }

    #[test]
    fn serde_goes_through_parse() {
        let code: OdsCode = serde_json::from_str("\"rj1\"").unwrap();
        assert_eq!(code.as_str(), "RJ1");
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"RJ1\"");
        assert!(serde_json::from_str::<OdsCode>("\"R1\"").is_err());
    }

    #[test]
    fn no_input_panics() {
        for s in [
            "R",
            "Q",
            "U",
            "A",
            "V",
            "Z",
            "é",
            "\u{0}",
            "RJ1\u{0}",
            "ß",
            "𝔸81001",
        ] {
            let _ = OdsCode::parse(s);
        }
    }
}
