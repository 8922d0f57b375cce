//! Scores for one assessment (format section 4), with the workings shown.
//!
//! The web app on submission, the command line and the reports all call [`score`], and a
//! stored submission re-scored later must give the same numbers bit for bit, so the
//! arithmetic is fixed here: document order, full `f64` precision, no hash maps.
//!
//! Decisions where the format is silent:
//! - A domain score is computed exactly as the format writes it, left to right:
//!   `scale.min + (scale.max - scale.min) * sum(w * n) / sum(w)`; pillar and overall
//!   scores as `sum(w * s) / sum(w)`. Sums accumulate in document order. Results are clamped to the scale, which only ever removes a rounding
//!   error in the last bit.
//! - A `number` answer above the last band's `up_to` (when every band has one) is not
//!   scored, like a `single` option whose score is `null`.
//! - Display rounding works on the shortest decimal form of the score (what a person sees
//!   printed), rounding half away from zero: 2.25 and 1.15 show as 2.3 and 1.2 at one
//!   decimal.
//!
//! Speed (issue 21: 200,000 assessments of 100 questions a second per core). The answers
//! are paired with the questions and visibility decided once, by position, in
//! [`visibility::resolve`]; after that nothing is looked up by key. What is left is mostly
//! building the workings. A question's key in them is a [`CompactString`], copied inline
//! rather than allocated: a `String` per question was a quarter of the instructions of a
//! scoring (76,600 -> 59,100 per assessment of 100 questions, callgrind). [`score`] builds
//! every domain's workings before the list of domain scores that holds them: glibc's
//! allocator hands the small blocks the previous assessment freed back cheaply from its fast
//! bins, but merges them all the first time a block of 1 KiB or more is asked for (the list
//! takes 136 bytes a domain), and with the list asked for first every string after it took
//! the slow path, some 20,000 instructions more an assessment of 100 questions.

use compact_str::CompactString;
use serde::Serialize;

use crate::domain::answers::{checklist_level, Answer, Answers};
use crate::domain::questionnaire::{Band, Domain, Question, QuestionKind, Questionnaire, Scale};
use crate::domain::visibility::{self, Resolved};

/// A score with its maturity band; both `None` when nothing counted.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Scored {
    pub score: Option<f64>,
    pub band: Option<String>,
}

/// Why a question did or did not count towards its domain's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Counted,
    Hidden,
    NotAnswered,
    NotApplicable,
    /// The question type is never scored (text, a number without bands, ...).
    NotScored,
    /// The chosen option has no score (`score: null`).
    OptionNotScored,
    /// The number is above every band.
    OutsideBands,
}

impl Reason {
    /// The reason as a short code, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Counted => "counted",
            Reason::Hidden => "hidden",
            Reason::NotAnswered => "not_answered",
            Reason::NotApplicable => "not_applicable",
            Reason::NotScored => "not_scored",
            Reason::OptionNotScored => "option_not_scored",
            Reason::OutsideBands => "outside_bands",
        }
    }

    /// The reason as a plain sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Counted => "Counted in the score",
            Reason::Hidden => "Not shown because of an earlier answer, so not counted",
            Reason::NotAnswered => "Not answered, so not counted",
            Reason::NotApplicable => "Answered \"not applicable\", so not counted",
            Reason::NotScored => "This question is for information and is not scored",
            Reason::OptionNotScored => "The chosen answer is not scored",
            Reason::OutsideBands => "The number is outside every scoring band, so not scored",
        }
    }
}

/// How one question contributed to its domain's score.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct QuestionContribution {
    /// The question's key, held inline (no allocation for keys up to 24 bytes).
    pub key: CompactString,
    /// The raw score of the answer (format section 2), when it has one.
    pub raw: Option<f64>,
    /// `(raw - min) / (max - min)`, in 0..1, when the question counts.
    pub normalised: Option<f64>,
    pub weight: f64,
    pub counted: bool,
    pub reason: Reason,
}

/// One domain's score with its progress counts and workings.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DomainScore {
    pub key: String,
    pub score: Option<f64>,
    pub band: Option<String>,
    /// Questions that counted towards the score.
    pub counted: usize,
    /// Visible questions with an answer (N/A included).
    pub answered: usize,
    /// Visible questions.
    pub visible: usize,
    /// Visible, required questions with no answer, in document order.
    pub required_missing: Vec<String>,
    /// Every question of the domain in document order.
    pub explanation: Vec<QuestionContribution>,
}

/// The scores of one assessment.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Assessment {
    pub overall: Scored,
    /// Pillar key and score, in document order.
    pub pillars: Vec<(String, Scored)>,
    /// In document order.
    pub domains: Vec<DomainScore>,
    /// Visible, required questions with no answer, in document order.
    pub missing_required: Vec<String>,
    /// True when nothing required is missing: the assessment can be submitted.
    pub complete: bool,
    /// Visible questions with an answer (N/A included), for progress.
    pub answered: usize,
    /// Visible questions, for progress.
    pub visible: usize,
}

/// The raw score of an answer (format section 2), or `None` when it has none: N/A, a type
/// that is not scored, a `null` option, a number outside every band, or an answer whose
/// shape does not fit the question.
pub fn raw_score(q: &Question, answer: &Answer) -> Option<f64> {
    match (&q.kind, answer) {
        (QuestionKind::Scale { levels }, Answer::Scale(v)) => {
            levels.iter().any(|l| l.value == *v).then_some(*v as f64)
        }
        (QuestionKind::Checklist { .. }, Answer::Checklist(_)) => {
            checklist_level(q, answer).map(|v| v as f64)
        }
        (QuestionKind::Single { options }, Answer::Single(key)) => {
            options.iter().find(|o| o.key == *key)?.score
        }
        (QuestionKind::Multi { options, max_score }, Answer::Multi(keys)) => {
            let sum: f64 = options
                .iter()
                .filter(|o| keys.contains(&o.key))
                .map(|o| o.score)
                .sum();
            Some(match max_score {
                Some(cap) => sum.min(*cap),
                None => sum,
            })
        }
        (
            QuestionKind::YesNo {
                yes_score,
                no_score,
            },
            Answer::YesNo(b),
        ) => Some(if *b { *yes_score } else { *no_score }),
        (QuestionKind::Number { bands, .. }, Answer::Number(x)) => bands
            .iter()
            .find(|b| b.up_to.is_none_or(|up_to| *x <= up_to))
            .map(|b| b.score),
        _ => None,
    }
}

/// Scores an assessment: a question set plus its answers.
pub fn score(q: &Questionnaire, answers: &Answers) -> Assessment {
    let resolved = visibility::resolve(q, answers);
    let (min, max) = (q.scale.min, q.scale.max);
    let mut position = 0;
    // The workings first, then the list of domains (see the module documentation).
    let workings: Vec<Workings> = q
        .domains
        .iter()
        .map(|domain| {
            let workings = work_domain(q, domain, &resolved, position);
            position += domain.questions.len();
            workings
        })
        .collect();
    let domains: Vec<DomainScore> = q
        .domains
        .iter()
        .zip(workings)
        .map(|(domain, w)| DomainScore {
            key: domain.key.clone(),
            band: band_of(&q.bands, w.score),
            score: w.score,
            counted: w.counted,
            answered: w.answered,
            visible: w.visible,
            required_missing: w.required_missing,
            explanation: w.explanation,
        })
        .collect();

    let pillars: Vec<(String, Scored)> = q
        .pillars
        .iter()
        .map(|pillar| {
            let members = q
                .domains
                .iter()
                .zip(&domains)
                .filter(|(d, _)| d.pillar.as_deref() == Some(pillar.key.as_str()))
                .filter_map(|(d, s)| Some((d.weight, s.score?)));
            let score = weighted_mean(members).map(|s| clamp(s, min, max));
            (pillar.key.clone(), scored(&q.bands, score))
        })
        .collect();

    let overall = if q.pillars.is_empty() {
        weighted_mean(
            q.domains
                .iter()
                .zip(&domains)
                .filter_map(|(d, s)| Some((d.weight, s.score?))),
        )
    } else {
        weighted_mean(
            q.pillars
                .iter()
                .zip(&pillars)
                .filter_map(|(p, (_, s))| Some((p.weight, s.score?))),
        )
    }
    .map(|s| clamp(s, min, max));

    let missing_required: Vec<String> = domains
        .iter()
        .flat_map(|d| d.required_missing.iter().cloned())
        .collect();
    Assessment {
        overall: scored(&q.bands, overall),
        complete: missing_required.is_empty(),
        missing_required,
        answered: domains.iter().map(|d| d.answered).sum(),
        visible: domains.iter().map(|d| d.visible).sum(),
        pillars,
        domains,
    }
}

/// The score of the domain at `index` alone, with `answers` (the whole assessment's: show_if
/// conditions may look at any earlier question); the same number [`score`] gives it,
/// without building the workings.
pub fn domain_score(q: &Questionnaire, answers: &Answers, index: usize) -> Option<f64> {
    let domain = q.domains.get(index)?;
    let resolved = visibility::resolve(q, answers);
    let start: usize = q.domains[..index].iter().map(|d| d.questions.len()).sum();
    let mut sums = Sums::default();
    for (question, answer, shown) in questions_of(domain, &resolved, start) {
        sums.add(question, &tally(question, answer, shown));
    }
    sums.score(q.scale)
}

/// `domain`'s questions, which start at `start` in `resolved`, with their answers and
/// visibility.
fn questions_of<'r, 'a: 'r>(
    domain: &'a Domain,
    resolved: &'r Resolved<'a>,
    start: usize,
) -> impl Iterator<Item = (&'a Question, Option<&'a Answer>, bool)> + 'r {
    let end = start + domain.questions.len();
    let answers = resolved.answers.get(start..end).unwrap_or_default();
    let shown = resolved.shown.get(start..end).unwrap_or_default();
    domain
        .questions
        .iter()
        .zip(answers)
        .zip(shown)
        .map(|((question, answer), shown)| (question, *answer, *shown))
}

/// A domain's score with its workings: a [`DomainScore`] but for its key and band.
struct Workings {
    score: Option<f64>,
    counted: usize,
    answered: usize,
    visible: usize,
    required_missing: Vec<String>,
    explanation: Vec<QuestionContribution>,
}

/// One domain's score and workings; its questions start at `start` in `resolved`.
fn work_domain<'a>(
    q: &Questionnaire,
    domain: &'a Domain,
    resolved: &Resolved<'a>,
    start: usize,
) -> Workings {
    let mut explanation = Vec::with_capacity(domain.questions.len());
    let mut required_missing = Vec::new();
    let (mut answered, mut visible) = (0, 0);
    let mut sums = Sums::default();
    for (question, answer, shown) in questions_of(domain, resolved, start) {
        if shown {
            visible += 1;
            if answer.is_some() {
                answered += 1;
            } else if question.required {
                required_missing.push(question.key.clone());
            }
        }
        let tally = tally(question, answer, shown);
        sums.add(question, &tally);
        explanation.push(QuestionContribution {
            key: CompactString::new(&question.key),
            raw: tally.raw,
            normalised: tally.normalised,
            weight: question.weight,
            counted: tally.normalised.is_some(),
            reason: tally.reason,
        });
    }
    Workings {
        score: sums.score(q.scale),
        counted: sums.counted,
        answered,
        visible,
        required_missing,
        explanation,
    }
}

/// How one question stands: why it counts or not, its raw score when shown and its
/// normalised score when it counts.
struct Tally {
    reason: Reason,
    raw: Option<f64>,
    normalised: Option<f64>,
}

fn tally(question: &Question, answer: Option<&Answer>, shown: bool) -> Tally {
    let (reason, raw, normalised) = match answer {
        _ if !shown => (Reason::Hidden, None, None),
        None => (Reason::NotAnswered, None, None),
        Some(Answer::Na) => (Reason::NotApplicable, None, None),
        Some(answer) => {
            let raw = raw_score(question, answer);
            match (question.score_range(), raw) {
                (None, _) => (Reason::NotScored, raw, None),
                (Some((lo, hi)), Some(raw)) => (
                    Reason::Counted,
                    Some(raw),
                    Some(clamp((raw - lo) / (hi - lo), 0.0, 1.0)),
                ),
                (Some(_), None) => match question.kind {
                    QuestionKind::Number { .. } => (Reason::OutsideBands, None, None),
                    _ => (Reason::OptionNotScored, None, None),
                },
            }
        }
    };
    Tally {
        reason,
        raw,
        normalised,
    }
}

/// The running sums of a domain's score, in document order.
#[derive(Default)]
struct Sums {
    counted: usize,
    /// `sum(w * n)` over the counting questions.
    weighted: f64,
    /// `sum(w)` over the counting questions.
    weights: f64,
}

impl Sums {
    fn add(&mut self, question: &Question, tally: &Tally) {
        if let Some(n) = tally.normalised {
            self.counted += 1;
            self.weighted += question.weight * n;
            self.weights += question.weight;
        }
    }

    /// `scale.min + (scale.max - scale.min) * sum(w * n) / sum(w)`, clamped to the scale;
    /// `None` when nothing counted.
    fn score(&self, scale: Scale) -> Option<f64> {
        let (min, max) = (scale.min, scale.max);
        (self.counted > 0 && self.weights > 0.0)
            .then(|| clamp(min + (max - min) * self.weighted / self.weights, min, max))
    }
}

fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    x.max(lo).min(hi)
}

/// `sum(w * s) / sum(w)` over the pairs, in order; `None` when there are none.
fn weighted_mean(pairs: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut sum_ws, mut sum_w, mut any) = (0.0, 0.0, false);
    for (w, s) in pairs {
        sum_ws += w * s;
        sum_w += w;
        any = true;
    }
    (any && sum_w > 0.0).then(|| sum_ws / sum_w)
}

fn band_of(bands: &[Band], score: Option<f64>) -> Option<String> {
    score.and_then(|s| band_for(bands, s)).map(str::to_string)
}

fn scored(bands: &[Band], score: Option<f64>) -> Scored {
    Scored {
        band: band_of(bands, score),
        score,
    }
}

/// The label of the last band whose `min` is at or below the score.
pub fn band_for(bands: &[Band], score: f64) -> Option<&str> {
    bands
        .iter()
        .rev()
        .find(|b| b.min <= score)
        .map(|b| b.label.as_str())
}

/// A score rounded for display to `decimals` places, half away from zero, working on the
/// shortest decimal form of the number (so `2.25` gives `2.3` and `1.15` gives `1.2`).
pub fn round_display(x: f64, decimals: u8) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let places = usize::from(decimals);
    // Rust prints f64 in its shortest round-trip form and never in exponent notation.
    let shortest = format!("{}", x.abs());
    let (whole, fraction) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = whole
        .bytes()
        .chain(fraction.bytes().chain(std::iter::repeat(b'0')).take(places))
        .map(|b| b.wrapping_sub(b'0'))
        .collect();
    if fraction.as_bytes().get(places).is_some_and(|d| *d >= b'5') {
        let mut carry = true;
        for d in digits.iter_mut().rev() {
            if *d == 9 {
                *d = 0;
            } else {
                *d += 1;
                carry = false;
                break;
            }
        }
        if carry {
            digits.insert(0, 1);
        }
    }
    let split = digits.len().saturating_sub(places);
    let (whole, fraction) = digits.split_at(split);
    let render = |ds: &[u8]| {
        ds.iter()
            .map(|d| char::from_digit(u32::from(*d), 10).unwrap_or('0'))
            .collect::<String>()
    };
    let mut out = render(whole);
    if out.is_empty() {
        out.push('0');
    }
    if places > 0 {
        out.push('.');
        out.push_str(&render(fraction));
    }
    if x < 0.0 && digits.iter().any(|d| *d != 0) {
        out.insert(0, '-');
    }
    out
}

/// The command line's score document (format section 8).
pub fn cli_json(report: &Assessment) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let number = |x: Option<f64>| {
        x.and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    };
    let scored = |s: &Scored| json!({"score": number(s.score), "band": s.band});
    let pillars: Map<String, Value> = report
        .pillars
        .iter()
        .map(|(key, s)| (key.clone(), scored(s)))
        .collect();
    let domains: Map<String, Value> = report
        .domains
        .iter()
        .map(|d| {
            (
                d.key.clone(),
                json!({"score": number(d.score), "band": d.band, "counted": d.counted}),
            )
        })
        .collect();
    json!({
        "overall": scored(&report.overall),
        "pillars": pillars,
        "domains": domains,
        "missing_required": report.missing_required,
        "complete": report.complete,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::answers::parse_answers_file;
    use crate::domain::questionnaire::tests::example;

    const COMPLETE: &str = include_str!("../../tests/fixtures/answers-wgll-acute-complete.yaml");
    const COMPLETE_EXPECTED: &str =
        include_str!("../../tests/fixtures/answers-wgll-acute-complete.expected.json");
    const PARTIAL: &str = include_str!("../../tests/fixtures/answers-wgll-acute-partial.yaml");
    const PARTIAL_EXPECTED: &str =
        include_str!("../../tests/fixtures/answers-wgll-acute-partial.expected.json");

    fn run(answers: &str) -> serde_json::Value {
        let q = example();
        let file = parse_answers_file(answers.as_bytes()).unwrap();
        let answers = file.validate_for(&q).unwrap();
        cli_json(&score(&q, &answers))
    }

    #[test]
    fn complete_example_matches_exactly() {
        let expected: serde_json::Value = serde_json::from_str(COMPLETE_EXPECTED).unwrap();
        assert_eq!(run(COMPLETE), expected);
    }

    #[test]
    fn partial_example_matches_exactly() {
        let expected: serde_json::Value = serde_json::from_str(PARTIAL_EXPECTED).unwrap();
        assert_eq!(run(PARTIAL), expected);
    }

    use crate::domain::questionnaire::load;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn answers(pairs: &[(&str, Answer)]) -> Answers {
        pairs
            .iter()
            .map(|(k, a)| (k.to_string(), a.clone()))
            .collect()
    }

    fn raw(key: &str, answer: Answer) -> Option<f64> {
        raw_score(example().question(key).unwrap(), &answer)
    }

    #[test]
    fn raw_scores_per_type() {
        assert_eq!(raw("wl-strategy", Answer::Scale(4)), Some(4.0));
        assert_eq!(raw("wl-strategy", Answer::Scale(9)), None);
        assert_eq!(raw("wl-cio", Answer::Checklist(Vec::new())), Some(1.0));
        assert_eq!(
            raw(
                "wl-cio",
                Answer::Checklist(keys(&["cclo-named", "cclo-board"]))
            ),
            Some(2.0)
        );
        assert_eq!(raw("sf-epr", Answer::Single("partial".into())), Some(50.0));
        assert_eq!(raw("sf-epr", Answer::Single("unknown".into())), None);
        // Capped at max_score 4 although five options score 1.
        let all = keys(&["eprs", "pacs", "ordercomms", "bedmgmt", "obs"]);
        assert_eq!(raw("sf-capabilities", Answer::Multi(all)), Some(4.0));
        assert_eq!(
            raw("sf-capabilities", Answer::Multi(keys(&["none"]))),
            Some(0.0)
        );
        assert_eq!(raw("sp-mfa", Answer::YesNo(true)), Some(1.0));
        assert_eq!(raw("sp-mfa", Answer::YesNo(false)), Some(0.0));
        // Bands: <= 95 -> 0, <= 99 -> 1, <= 99.9 -> 2, rest -> 3.
        assert_eq!(raw("sf-uptime", Answer::Number(95.0)), Some(0.0));
        assert_eq!(raw("sf-uptime", Answer::Number(95.01)), Some(1.0));
        assert_eq!(raw("sf-uptime", Answer::Number(99.9)), Some(2.0));
        assert_eq!(raw("sf-uptime", Answer::Number(100.0)), Some(3.0));
        assert_eq!(raw("sf-epr-notes", Answer::Text("x".into())), None);
        assert_eq!(raw("spp-skills", Answer::Na), None);
        // A shape that does not fit the question scores nothing.
        assert_eq!(raw("wl-strategy", Answer::YesNo(true)), None);
    }

    /// A one-domain question set built from question YAML.
    fn one_domain(top: &str, questions: &str) -> Questionnaire {
        let yaml = format!(
            "key: t\nversion: '1'\ntitle: T\nsettings: [a]\n{top}\ndomains:\n  - key: d\n    title: D\n    questions:\n{questions}"
        );
        load(yaml.as_bytes()).unwrap()
    }

    #[test]
    fn the_spec_worked_example() {
        // Scale 1..5; a checklist at level 3 of 1..5 (n = 0.5) and a yes/no answered
        // false (n = 0) score 1 + 4 * 0.25 = 2.0.
        let q = one_domain(
            "",
            "      - key: c
        type: checklist
        text: C
        levels:
          - {value: 1, label: a}
          - {value: 2, label: b, criteria: [{key: k2, text: K}]}
          - {value: 3, label: c, criteria: [{key: k3, text: K}]}
          - {value: 4, label: d, criteria: [{key: k4, text: K}]}
          - {value: 5, label: e, criteria: [{key: k5, text: K}]}
      - {key: y, type: yes_no, text: Y}",
        );
        let a = answers(&[
            ("c", Answer::Checklist(keys(&["k2", "k3", "k5"]))),
            ("y", Answer::YesNo(false)),
        ]);
        let report = score(&q, &a);
        assert_eq!(report.domains[0].score, Some(2.0));
        assert_eq!(report.overall.score, Some(2.0));
        assert!(report.pillars.is_empty());
        assert_eq!(report.domains[0].explanation[0].normalised, Some(0.5));
        assert_eq!(report.domains[0].explanation[1].normalised, Some(0.0));
    }

    #[test]
    fn weights_and_overall_without_pillars() {
        let yaml = "key: t\nversion: '1'\ntitle: T\nsettings: [a]\nscale: {min: 0, max: 100}
domains:
  - key: a
    title: A
    questions:
      - {key: a1, type: yes_no, text: Q, weight: 3}
      - {key: a2, type: yes_no, text: Q}
  - key: b
    title: B
    weight: 3
    questions:
      - {key: b1, type: yes_no, text: Q}
  - key: c
    title: C
    questions:
      - {key: c1, type: yes_no, text: Q}
";
        let q = load(yaml.as_bytes()).unwrap();
        let a = answers(&[
            ("a1", Answer::YesNo(true)),
            ("a2", Answer::YesNo(false)),
            ("b1", Answer::YesNo(false)),
        ]);
        let report = score(&q, &a);
        assert_eq!(report.domains[0].score, Some(75.0));
        assert_eq!(report.domains[1].score, Some(0.0));
        assert_eq!(report.domains[2].score, None);
        // Overall: domain weights 1 and 3 over the non-null domains: (75 + 0) / 4.
        assert_eq!(report.overall.score, Some(18.75));
        assert_eq!(report.missing_required, ["c1"]);
        assert!(!report.complete);
        assert_eq!((report.answered, report.visible), (3, 4));
        assert_eq!(report.overall.band, None);
    }

    #[test]
    fn explanation_reasons() {
        let q = example();
        let a = answers(&[
            ("sf-epr", Answer::Single("unknown".into())),
            ("sf-uptime", Answer::Number(99.0)),
            ("sf-epr-notes", Answer::Text("x".into())),
            ("spp-skills", Answer::Na),
            ("spp-login-time", Answer::Number(5.0)),
        ]);
        let report = score(&q, &a);
        let reason = |key: &str| {
            report
                .domains
                .iter()
                .flat_map(|d| d.explanation.iter())
                .find(|c| c.key == key)
                .unwrap()
                .reason
        };
        assert_eq!(reason("sf-epr"), Reason::OptionNotScored);
        assert_eq!(reason("sf-uptime"), Reason::Hidden);
        assert_eq!(reason("sf-epr-notes"), Reason::NotScored);
        assert_eq!(reason("sf-capabilities"), Reason::NotAnswered);
        assert_eq!(reason("spp-skills"), Reason::NotApplicable);
        assert_eq!(reason("spp-login-time"), Reason::Counted);
        let workforce = report
            .domains
            .iter()
            .find(|d| d.key == "workforce")
            .unwrap();
        assert_eq!(workforce.score, Some(5.0));
        assert_eq!(
            (workforce.counted, workforce.answered, workforce.visible),
            (1, 2, 2)
        );
        let infra = report
            .domains
            .iter()
            .find(|d| d.key == "infrastructure")
            .unwrap();
        assert_eq!((infra.answered, infra.visible), (2, 3));
        assert_eq!(infra.required_missing, ["sf-capabilities"]);
        assert_eq!(Reason::OutsideBands.as_str(), "outside_bands");
        assert!(Reason::Hidden.describe().contains("Not shown"));
    }

    #[test]
    fn numbers_above_every_band_are_not_scored() {
        let q = one_domain(
            "",
            "      - {key: n, type: number, text: N, bands: [{up_to: 1, score: 0}, {up_to: 2, score: 1}]}",
        );
        let report = score(&q, &answers(&[("n", Answer::Number(3.0))]));
        assert_eq!(
            report.domains[0].explanation[0].reason,
            Reason::OutsideBands
        );
        assert_eq!(report.domains[0].score, None);
        let report = score(&q, &answers(&[("n", Answer::Number(2.0))]));
        assert_eq!(report.domains[0].score, Some(5.0));
    }

    #[test]
    fn an_all_zero_multi_is_information_only() {
        let q = one_domain(
            "",
            "      - {key: m, type: multi, text: M, options: [{key: a, label: A, score: 0}, {key: b, label: B, score: 0}]}",
        );
        assert!(!q.question("m").unwrap().is_scored());
        let report = score(&q, &answers(&[("m", Answer::Multi(keys(&["a"])))]));
        assert_eq!(report.domains[0].explanation[0].reason, Reason::NotScored);
        assert!(report.complete);
    }

    #[test]
    fn empty_multi_answer_does_not_satisfy_required() {
        let q = example();
        let report = score(&q, &answers(&[("ec-nhs-app", Answer::Multi(Vec::new()))]));
        assert!(report.missing_required.contains(&"ec-nhs-app".to_string()));
    }

    #[test]
    fn bands() {
        let q = example();
        assert_eq!(band_for(&q.bands, 0.5), None);
        assert_eq!(band_for(&q.bands, 1.0), Some("Initial"));
        assert_eq!(band_for(&q.bands, 1.99), Some("Initial"));
        assert_eq!(band_for(&q.bands, 4.49), Some("Managed"));
        assert_eq!(band_for(&q.bands, 4.5), Some("Optimised"));
        assert_eq!(band_for(&q.bands, 9.0), Some("Optimised"));
        assert_eq!(band_for(&[], 3.0), None);
    }

    #[test]
    fn display_rounding_is_half_away_from_zero() {
        assert_eq!(round_display(2.25, 1), "2.3");
        assert_eq!(round_display(2.35, 1), "2.4");
        assert_eq!(round_display(1.15, 1), "1.2");
        assert_eq!(round_display(-2.25, 1), "-2.3");
        assert_eq!(round_display(2.24999, 1), "2.2");
        assert_eq!(round_display(3.2142857142857144, 1), "3.2");
        assert_eq!(round_display(3.0, 1), "3.0");
        assert_eq!(round_display(3.0, 0), "3");
        assert_eq!(round_display(2.5, 0), "3");
        assert_eq!(round_display(9.96, 1), "10.0");
        assert_eq!(round_display(99.999, 2), "100.00");
        assert_eq!(round_display(0.04, 1), "0.0");
        assert_eq!(round_display(-0.04, 1), "0.0");
        assert_eq!(round_display(1e-7, 4), "0.0000");
        assert_eq!(round_display(3.66666, 4), "3.6667");
        assert_eq!(round_display(1e21, 1), "1000000000000000000000.0");
    }

    #[test]
    fn cli_json_shape() {
        let value = run(PARTIAL);
        let object = value.as_object().unwrap();
        let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "complete",
                "domains",
                "missing_required",
                "overall",
                "pillars"
            ]
        );
        assert_eq!(value["domains"]["cyber"]["score"], serde_json::json!(1.0));
        assert_eq!(value["domains"]["cyber"]["score"].to_string(), "1.0");
        assert_eq!(
            value["domains"]["citizens"]["score"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn scoring_is_deterministic() {
        let q = example();
        let file = parse_answers_file(COMPLETE.as_bytes()).unwrap();
        let a = file.validate_for(&q).unwrap();
        let first = score(&q, &a);
        for _ in 0..5 {
            assert_eq!(score(&q, &a), first);
        }
    }
}
