//! Property tests across the core: random question sets and answers, built from a seed.
//!
//! Scoring rules are easy to state and easy to get subtly wrong, so these check the
//! promises that must hold for every question set, not just the examples: scores stay in
//! the scale, N/A and hidden answers change nothing, a better answer never lowers a score,
//! weights are relative, exports load back unchanged, and no input makes the loader panic.
//! Question sets are built from a `u64` seed with a small deterministic generator, which
//! keeps the generators readable; proptest supplies and reports the seeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use crate::domain::answers::{
    from_form, parse_answers_file, parse_value, validate, Answer, Answers,
};
use crate::domain::next_band;
use crate::domain::questionnaire::tests::EXAMPLE;
use crate::domain::questionnaire::{
    load, to_json, to_yaml, Band, ChecklistLevel, CondValue, Condition, Criterion, Domain, Level,
    MultiOption, NumberBand, Pillar, Question, QuestionIndex, QuestionKind, Questionnaire, Scale,
    SingleOption,
};
use crate::domain::scoring::{raw_score, round_display, score, Assessment};
use crate::domain::visibility::visible;

/// splitmix64: small, fast and good enough to drive test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A finite number: usually a small integer or a short decimal, sometimes any finite
    /// f64 at all.
    fn number(&mut self) -> f64 {
        match self.below(10) {
            0..=4 => self.int(-20, 20) as f64,
            5..=7 => self.int(-2000, 2000) as f64 / 100.0,
            8 => self.int(-1000, 1000) as f64 / 7.0,
            _ => loop {
                let x = f64::from_bits(self.next());
                if x.is_finite() {
                    break x;
                }
            },
        }
    }

    fn positive(&mut self) -> f64 {
        match self.below(4) {
            0 => 1.0,
            1 => self.int(1, 10) as f64,
            2 => self.int(1, 1000) as f64 / 100.0,
            _ => self.int(1, 1_000_000) as f64 / 3.0,
        }
    }

    /// Text that is awkward for YAML: quotes, colons, comment marks, keywords, unicode,
    /// control characters, leading and trailing spaces.
    fn text(&mut self) -> String {
        const WORDS: &[&str] = &[
            "yes", "no", "null", "~", "true", "false", "1.0", "0x1F", ".inf", "-", "- a", "a: b",
            "#x", "&a", "*a", "!tag", "'q'", "\"q\"", "[1]", "{a: 1}", "|", ">", "%", "@", "`",
            "? x", "2025.1", "007", "1e3", "on", "off", "=", "<<",
        ];
        const CHARS: &[char] = &[
            'a', 'b', 'Z', '0', '9', ' ', ',', '.', ':', '#', '-', '\'', '"', '{', '}', '[', ']',
            '&', '*', '!', '|', '>', '%', '@', '`', '?', '\\', '/', 'é', '…', '€', '🙂', '\n',
            '\t', '\r', '\u{0}', '\u{7f}', '\u{85}', '\u{feff}', '\u{2028}',
        ];
        let mut s = String::new();
        for _ in 0..self.int(1, 3) {
            if self.chance(30) {
                s.push_str(self.pick::<&str>(WORDS));
            } else {
                for _ in 0..self.int(1, 12) {
                    let c = if self.chance(5) {
                        char::from_u32((self.next() % 0x11_0000) as u32).unwrap_or('x')
                    } else {
                        *self.pick(CHARS)
                    };
                    s.push(c);
                }
            }
        }
        if s.trim().is_empty() {
            s.insert(0, 'x');
        }
        s
    }

    fn slug(&mut self, prefix: &str) -> String {
        let tail: String = (0..self.int(0, 6))
            .map(|_| *self.pick(&['a', 'z', '0', '9', '-']))
            .collect();
        format!("{prefix}{tail}")
    }
}

/// Between `min` and `max` strictly ascending whole numbers.
fn ascending(rng: &mut Rng, min: i64, max: i64) -> Vec<i64> {
    let n = rng.int(min, max);
    let mut v = rng.int(-5, 5);
    (0..n)
        .map(|_| {
            let current = v;
            v += rng.int(1, 5);
            current
        })
        .collect()
}

fn kind(rng: &mut Rng, index: usize) -> QuestionKind {
    match rng.below(7) {
        0 => QuestionKind::Scale {
            levels: ascending(rng, 2, 6)
                .into_iter()
                .map(|value| Level {
                    value,
                    label: rng.text(),
                })
                .collect(),
        },
        1 => QuestionKind::Checklist {
            levels: ascending(rng, 2, 5)
                .into_iter()
                .enumerate()
                .map(|(l, value)| ChecklistLevel {
                    value,
                    label: rng.text(),
                    criteria: if l == 0 {
                        Vec::new()
                    } else {
                        (0..rng.int(1, 3))
                            .map(|c| Criterion {
                                key: format!("c{l}-{c}"),
                                text: rng.text(),
                            })
                            .collect()
                    },
                })
                .collect(),
        },
        2 => QuestionKind::Single {
            options: (0..rng.int(2, 5))
                .map(|o| SingleOption {
                    key: rng.slug(&format!("o{o}")),
                    label: rng.text(),
                    score: match o {
                        0 => Some(0.0),
                        1 => Some(rng.positive()),
                        _ if rng.chance(25) => None,
                        _ => Some(rng.number()),
                    },
                })
                .collect(),
        },
        3 => QuestionKind::Multi {
            options: (0..rng.int(2, 5))
                .map(|o| MultiOption {
                    key: rng.slug(&format!("o{o}")),
                    label: rng.text(),
                    score: if rng.chance(20) { 0.0 } else { rng.positive() },
                    exclusive: rng.chance(20),
                })
                .collect(),
            max_score: rng.chance(40).then(|| rng.positive()),
        },
        4 => {
            let yes_score = rng.number();
            let mut no_score = rng.number();
            if no_score == yes_score {
                no_score = yes_score - 1.0;
            }
            if no_score == yes_score {
                no_score = if yes_score == 0.0 { 1.0 } else { 0.0 };
            }
            QuestionKind::YesNo {
                yes_score,
                no_score,
            }
        }
        5 => {
            let integer = rng.chance(30);
            let min = rng.chance(60).then(|| rng.int(-100, 0) as f64);
            let max = rng.chance(60).then(|| rng.int(1, 1000) as f64);
            let bands = if rng.chance(20) {
                Vec::new()
            } else {
                let n = rng.int(2, 4) as usize;
                let mut up_to = rng.int(-50, 50) as f64;
                (0..n)
                    .map(|b| {
                        let band = NumberBand {
                            up_to: (b + 1 < n || rng.chance(30)).then_some(up_to),
                            score: match b {
                                0 => 0.0,
                                1 => rng.positive(),
                                _ => rng.number(),
                            },
                        };
                        up_to += rng.int(1, 100) as f64 / 4.0;
                        band
                    })
                    .collect()
            };
            QuestionKind::Number {
                min,
                max,
                integer,
                unit: rng.chance(50).then(|| rng.text()),
                bands,
            }
        }
        _ => QuestionKind::Text {
            max_length: if index % 2 == 0 {
                5000
            } else {
                rng.int(1, 100_000) as u32
            },
        },
    }
}

/// A valid condition on one of `earlier`.
fn condition(rng: &mut Rng, earlier: &[Question], depth: u32) -> Condition {
    if depth < 2 && rng.chance(25) {
        return match rng.below(3) {
            0 => Condition::Not(Box::new(condition(rng, earlier, depth + 1))),
            1 => Condition::All(
                (0..rng.int(1, 3))
                    .map(|_| condition(rng, earlier, depth + 1))
                    .collect(),
            ),
            _ => Condition::Any(
                (0..rng.int(1, 3))
                    .map(|_| condition(rng, earlier, depth + 1))
                    .collect(),
            ),
        };
    }
    let target = rng.pick(earlier);
    let question = target.key.clone();
    if rng.chance(20) {
        return Condition::Answered { question };
    }
    match &target.kind {
        QuestionKind::Scale { levels } => {
            let value = rng.pick(levels).value as f64;
            match rng.below(4) {
                0 => Condition::Equals {
                    question,
                    value: CondValue::Number(value),
                },
                1 => Condition::In {
                    question,
                    values: vec![CondValue::Number(value)],
                },
                2 => Condition::AtLeast { question, n: value },
                _ => Condition::AtMost { question, n: value },
            }
        }
        QuestionKind::Checklist { levels } => {
            let keys: Vec<&Criterion> = levels.iter().flat_map(|l| l.criteria.iter()).collect();
            if rng.chance(50) {
                Condition::Includes {
                    option: rng.pick(&keys).key.clone(),
                    question,
                }
            } else {
                Condition::AtLeast {
                    n: rng.pick(levels).value as f64,
                    question,
                }
            }
        }
        QuestionKind::Single { options } => Condition::In {
            values: (0..rng.int(1, 2))
                .map(|_| CondValue::Key(rng.pick(options).key.clone()))
                .collect(),
            question,
        },
        QuestionKind::Multi { options, .. } => Condition::Includes {
            option: rng.pick(options).key.clone(),
            question,
        },
        QuestionKind::YesNo { .. } => Condition::Equals {
            value: CondValue::Bool(rng.chance(50)),
            question,
        },
        QuestionKind::Number { .. } => Condition::AtMost {
            n: rng.number(),
            question,
        },
        QuestionKind::Text { .. } => Condition::Answered { question },
    }
}

/// A random valid question set.
fn questionnaire(seed: u64) -> Questionnaire {
    let rng = &mut Rng(seed);
    let domain_count = rng.int(1, 4) as usize;
    let pillar_count = if rng.chance(50) {
        rng.int(1, domain_count as i64) as usize
    } else {
        0
    };
    let mut all: Vec<Question> = Vec::new();
    let mut domains = Vec::new();
    for d in 0..domain_count {
        let mut questions = Vec::new();
        for _ in 0..rng.int(1, 5) {
            let index = all.len();
            let kind = kind(rng, index);
            let is_text = matches!(kind, QuestionKind::Text { .. });
            let question = Question {
                key: rng.slug(&format!("q{index}-")),
                text: rng.text(),
                help: rng.chance(30).then(|| rng.text()),
                required: rng.chance(70),
                weight: if is_text { 1.0 } else { rng.positive() },
                allow_na: rng.chance(30),
                show_if: (!all.is_empty() && rng.chance(35)).then(|| condition(rng, &all, 0)),
                kind,
            };
            all.push(question.clone());
            questions.push(question);
        }
        domains.push(Domain {
            key: rng.slug(&format!("d{d}-")),
            title: rng.text(),
            description: rng.chance(30).then(|| rng.text()),
            pillar: (pillar_count > 0).then(|| format!("p{}", d % pillar_count)),
            weight: rng.positive(),
            questions,
        });
    }
    let min = rng.int(-10, 10) as f64;
    let max = min + rng.positive();
    let mut band_min = min - 1.0;
    let bands = (0..rng.int(0, 4))
        .map(|_| {
            band_min += rng.positive();
            Band {
                min: band_min,
                label: rng.text(),
            }
        })
        .collect();
    Questionnaire {
        format: 1,
        key: rng.slug("k"),
        version: format!("{}.{}", rng.int(2020, 2030), rng.int(0, 9)),
        title: rng.text(),
        description: rng.chance(50).then(|| rng.text()),
        settings: (0..rng.int(1, 3))
            .map(|s| rng.slug(&format!("s{s}")))
            .collect(),
        scale: Scale { min, max },
        decimals: rng.int(0, 4) as u8,
        bands,
        pillars: (0..pillar_count)
            .map(|p| Pillar {
                key: format!("p{p}"),
                title: rng.text(),
                description: rng.chance(30).then(|| rng.text()),
                weight: rng.positive(),
            })
            .collect(),
        index: QuestionIndex::new(&domains),
        domains,
    }
}

/// A random valid answer (never N/A) to a question.
fn answer(rng: &mut Rng, q: &Question) -> Answer {
    match &q.kind {
        QuestionKind::Scale { levels } => Answer::Scale(rng.pick(levels).value),
        QuestionKind::Checklist { levels } => Answer::Checklist(
            levels
                .iter()
                .flat_map(|l| l.criteria.iter())
                .filter(|_| rng.chance(70))
                .map(|c| c.key.clone())
                .collect(),
        ),
        QuestionKind::Single { options } => Answer::Single(rng.pick(options).key.clone()),
        QuestionKind::Multi { options, .. } => {
            let mut chosen: Vec<String> = options
                .iter()
                .filter(|_| rng.chance(50))
                .map(|o| o.key.clone())
                .collect();
            if let Some(alone) = options
                .iter()
                .find(|o| o.exclusive && chosen.contains(&o.key))
            {
                chosen = vec![alone.key.clone()];
            }
            if chosen.is_empty() {
                chosen.push(options[0].key.clone());
            }
            Answer::Multi(chosen)
        }
        QuestionKind::YesNo { .. } => Answer::YesNo(rng.chance(50)),
        QuestionKind::Number {
            min,
            max,
            integer,
            bands,
            ..
        } => {
            let lo = min.unwrap_or(-1000.0);
            let hi = max.unwrap_or(1000.0);
            let mut x = match bands.get(rng.below(bands.len() + 1)).and_then(|b| b.up_to) {
                Some(edge) if rng.chance(50) => edge,
                _ => lo + (hi - lo) * (rng.below(1001) as f64 / 1000.0),
            };
            if *integer {
                x = x.round();
            }
            Answer::Number(x.clamp(lo, hi))
        }
        QuestionKind::Text { max_length } => {
            let text: String = rng.text().chars().take(*max_length as usize).collect();
            Answer::Text(if text.trim().is_empty() {
                "x".into()
            } else {
                text
            })
        }
    }
}

fn answers(q: &Questionnaire, seed: u64) -> Answers {
    let rng = &mut Rng(seed);
    q.questions()
        .filter_map(|(_, question)| match rng.below(10) {
            0..=1 => None,
            2 if question.allow_na => Some((question.key.clone(), Answer::Na)),
            _ => Some((question.key.clone(), answer(rng, question))),
        })
        .collect()
}

/// Every score in a report: domains, pillars, overall.
fn scores(report: &Assessment) -> Vec<Option<f64>> {
    report
        .domains
        .iter()
        .map(|d| d.score)
        .chain(report.pillars.iter().map(|(_, s)| s.score))
        .chain(std::iter::once(report.overall.score))
        .collect()
}

fn referenced(q: &Questionnaire) -> Vec<String> {
    q.questions()
        .filter_map(|(_, q)| q.show_if.as_ref())
        .flat_map(|c| c.questions().into_iter().map(str::to_string))
        .collect()
}

/// Renames the questions a condition refers to.
fn rename_references(condition: &mut Condition, new_key: &impl Fn(&str) -> String) {
    match condition {
        Condition::Equals { question, .. }
        | Condition::In { question, .. }
        | Condition::Includes { question, .. }
        | Condition::AtLeast { question, .. }
        | Condition::AtMost { question, .. }
        | Condition::Answered { question } => *question = new_key(question),
        Condition::All(items) | Condition::Any(items) => {
            for item in items {
                rename_references(item, new_key);
            }
        }
        Condition::Not(inner) => rename_references(inner, new_key),
    }
}

fn example() -> Questionnaire {
    load(EXAMPLE.as_bytes()).unwrap()
}

/// A question set for a case: the example or a random one.
fn subject(seed: u64) -> Questionnaire {
    if seed % 4 == 0 {
        example()
    } else {
        questionnaire(seed)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn export_then_load_round_trips(seed in any::<u64>()) {
        let q = questionnaire(seed);
        let yaml = to_yaml(&q);
        prop_assert_eq!(load(yaml.as_bytes()).map_err(|e| (e, yaml.clone())), Ok(q.clone()));
        let json = to_json(&q);
        prop_assert_eq!(load(json.as_bytes()).map_err(|e| (e, json.clone())), Ok(q));
    }

    #[test]
    fn generated_answers_are_valid_and_round_trip(seed in any::<u64>(), answer_seed in any::<u64>()) {
        let q = subject(seed);
        let given = answers(&q, answer_seed);
        for (key, answer) in &given {
            let question = q.question(key).unwrap();
            prop_assert_eq!(parse_value(question, &answer.to_json()), Ok(Some(answer.clone())));
        }
        let raw = given.iter().map(|(k, a)| (k.clone(), a.to_json())).collect();
        prop_assert_eq!(validate(&q, &raw), Ok(given));
    }

    #[test]
    fn scores_stay_inside_the_scale(seed in any::<u64>(), answer_seed in any::<u64>()) {
        let q = subject(seed);
        let report = score(&q, &answers(&q, answer_seed));
        for s in scores(&report).into_iter().flatten() {
            prop_assert!(s >= q.scale.min && s <= q.scale.max, "{} outside {:?}", s, q.scale);
        }
        for c in report.domains.iter().flat_map(|d| d.explanation.iter()) {
            if let Some(n) = c.normalised {
                prop_assert!((0.0..=1.0).contains(&n));
            }
        }
    }

    #[test]
    fn not_applicable_never_changes_a_score(seed in any::<u64>(), answer_seed in any::<u64>()) {
        let q = subject(seed);
        let given = answers(&q, answer_seed);
        let referenced = referenced(&q);
        let baseline = scores(&score(&q, &given));
        for (_, question) in q.questions() {
            if !question.allow_na || referenced.contains(&question.key) {
                continue;
            }
            let mut with_na = given.clone();
            with_na.insert(question.key.clone(), Answer::Na);
            let mut without = given.clone();
            without.remove(&question.key);
            prop_assert_eq!(scores(&score(&q, &with_na)), scores(&score(&q, &without)));
            if given.get(&question.key) == Some(&Answer::Na) {
                prop_assert_eq!(scores(&score(&q, &without)), baseline.clone());
            }
        }
    }

    #[test]
    fn hidden_answers_never_change_anything(seed in any::<u64>(), answer_seed in any::<u64>()) {
        let q = subject(seed);
        let given = answers(&q, answer_seed);
        let shown = visible(&q, &given);
        let report = score(&q, &given);
        let rng = &mut Rng(answer_seed ^ 0x5555);
        for (_, question) in q.questions() {
            if shown.contains(&question.key) {
                continue;
            }
            let mut changed = given.clone();
            changed.insert(question.key.clone(), answer(rng, question));
            prop_assert_eq!(&score(&q, &changed), &report);
            changed.remove(&question.key);
            prop_assert_eq!(&score(&q, &changed), &report);
        }
    }

    /// The question index (issue 21) is a cache: a model without one, with another model's,
    /// or whose keys or conditions changed after it was indexed scores as if it had just
    /// been indexed.
    #[test]
    fn the_question_index_never_changes_a_result(seed in any::<u64>(), answer_seed in any::<u64>()) {
        let q = subject(seed);
        let given = answers(&q, answer_seed);
        let report = score(&q, &given);
        let mut unindexed = q.clone();
        unindexed.index = QuestionIndex::default();
        prop_assert_eq!(&score(&unindexed, &given), &report);
        let mut foreign = q.clone();
        foreign.index = subject(seed ^ 1).index;
        prop_assert_eq!(&score(&foreign, &given), &report);

        // Every key renamed so that their order is reversed, the index left as it was.
        let keys: Vec<String> = q.questions().map(|(_, x)| x.key.clone()).collect();
        let new_key = |key: &str| {
            keys.iter()
                .position(|k| k == key)
                .map_or_else(|| key.to_string(), |i| format!("r{:04}", keys.len() - i))
        };
        let mut renamed = q.clone();
        for question in renamed.domains.iter_mut().flat_map(|d| d.questions.iter_mut()) {
            question.key = new_key(&question.key);
            if let Some(condition) = &mut question.show_if {
                rename_references(condition, &new_key);
            }
        }
        let renamed_answers: Answers = given
            .iter()
            .map(|(key, a)| (new_key(key), a.clone()))
            .collect();
        let stale = score(&renamed, &renamed_answers);
        renamed.index = QuestionIndex::new(&renamed.domains);
        prop_assert_eq!(&stale, &score(&renamed, &renamed_answers));
        prop_assert_eq!(scores(&stale), scores(&report));

        // Every condition pointed at the first question, the index left as it was.
        let mut repointed = q.clone();
        for question in repointed.domains.iter_mut().flat_map(|d| d.questions.iter_mut()) {
            if let Some(condition) = &mut question.show_if {
                rename_references(condition, &|_: &str| keys[0].clone());
            }
        }
        let stale = score(&repointed, &given);
        repointed.index = QuestionIndex::new(&repointed.domains);
        prop_assert_eq!(&stale, &score(&repointed, &given));
    }

    #[test]
    fn a_higher_raw_score_never_lowers_the_domain(seed in any::<u64>(), answer_seed in any::<u64>()) {
        let q = subject(seed);
        let given = answers(&q, answer_seed);
        let referenced = referenced(&q);
        let rng = &mut Rng(answer_seed ^ 0xAAAA);
        for (d, question) in q.questions() {
            if referenced.contains(&question.key) || !question.is_scored() {
                continue;
            }
            let (a, b) = (answer(rng, question), answer(rng, question));
            let (Some(ra), Some(rb)) = (raw_score(question, &a), raw_score(question, &b)) else {
                continue;
            };
            let (low, high) = if ra <= rb { (a, b) } else { (b, a) };
            let mut with_low = given.clone();
            with_low.insert(question.key.clone(), low);
            let mut with_high = given.clone();
            with_high.insert(question.key.clone(), high);
            let low_score = score(&q, &with_low).domains[d].score;
            let high_score = score(&q, &with_high).domains[d].score;
            prop_assert!(high_score >= low_score, "{:?} < {:?}", high_score, low_score);
        }
    }

    #[test]
    fn question_weights_are_relative(seed in any::<u64>(), answer_seed in any::<u64>(), factor in 0.01f64..100.0, power in -8i32..8) {
        let q = subject(seed);
        let given = answers(&q, answer_seed);
        let before = scores(&score(&q, &given));
        for d in 0..q.domains.len() {
            let scaled = |c: f64| {
                let mut scaled = q.clone();
                for question in &mut scaled.domains[d].questions {
                    question.weight *= c;
                }
                scores(&score(&scaled, &given))
            };
            // A power of two scales every weight exactly, so scores are identical.
            prop_assert_eq!(scaled(2f64.powi(power)), before.clone());
            for (x, y) in scaled(factor).into_iter().zip(&before) {
                match (x, y) {
                    (Some(x), Some(y)) => prop_assert!(
                        (x - y).abs() <= 1e-9 * (1.0 + y.abs()), "{} vs {}", x, y
                    ),
                    (x, y) => prop_assert_eq!(x, *y),
                }
            }
        }
    }

    #[test]
    fn loader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = load(&bytes);
        let _ = parse_answers_file(&bytes);
    }

    #[test]
    fn loader_never_panics_on_mutated_example(seed in any::<u64>()) {
        let rng = &mut Rng(seed);
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        const NASTY: &[&[u8]] = &[
            b"&a ", b"*a", b"{", b"}", b"[", b"]", b": ", b"- ", b"\n", b"#", b"!!str ",
            b"\"", b"'", b"null", b"~", b"-1", b"1e999", b".nan", b"show_if: ", b"question: ",
            b"<<: *a", b"\t", b"\xff", b"\0",
        ];
        for _ in 0..rng.int(1, 8) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 => {
                    let end = (at + rng.below(40)).min(bytes.len());
                    bytes.drain(at..end);
                }
                1 => {
                    let insert = rng.pick(NASTY);
                    bytes.splice(at..at, insert.iter().copied());
                }
                _ => {
                    // Copy a chunk of the document elsewhere: duplicated keys, moved
                    // questions, conditions pointing forwards.
                    let start = rng.below(bytes.len());
                    let end = (start + rng.below(200)).min(bytes.len());
                    let chunk: Vec<u8> = bytes[start..end].to_vec();
                    let at = at.min(bytes.len());
                    bytes.splice(at..at, chunk);
                }
            }
        }
        if let Ok(q) = load(&bytes) {
            // Whatever loads must export and load back unchanged, and score.
            prop_assert_eq!(load(to_yaml(&q).as_bytes()), Ok(q.clone()));
            let _ = score(&q, &Answers::new());
        }
    }

    #[test]
    fn form_input_never_panics(seed in any::<u64>(), values in prop::collection::vec(any::<String>(), 0..4)) {
        let q = subject(seed);
        for (_, question) in q.questions() {
            if let Ok(Some(answer)) = from_form(question, &values) {
                prop_assert_eq!(parse_value(question, &answer.to_json()), Ok(Some(answer)));
            }
        }
    }

    #[test]
    fn display_rounding_is_within_half_a_step(x in -1e6f64..1e6, decimals in 0u8..=4) {
        let shown = round_display(x, decimals);
        let places = shown.split_once('.').map_or(0, |(_, f)| f.len());
        prop_assert_eq!(places, usize::from(decimals));
        let back: f64 = shown.parse().unwrap();
        let step = 10f64.powi(-i32::from(decimals));
        prop_assert!((back - x).abs() <= step / 2.0 + 1e-9 * (1.0 + x.abs()), "{} -> {}", x, shown);
    }

    /// The path to the next band (issue 23): applying a proposed path reaches the band it
    /// names, with answers the question accepts; no change of a path can be left out; all
    /// paths of a domain are of the smallest size, so when it is two or more no single
    /// better answer to any shown question of the domain reaches the band alone.
    #[test]
    fn paths_to_the_next_band_reach_it_and_are_smallest(seed in any::<u64>(), answer_seed in any::<u64>()) {
        let q = subject(seed);
        let given = answers(&q, answer_seed);
        let report = score(&q, &given);
        let domain_score = |changed: &Answers, i: usize| score(&q, changed).domains[i].score;
        for (i, d) in next_band::paths(&q, &given, &report).iter().enumerate() {
            let Some(target) = &d.target else {
                prop_assert!(d.paths.is_empty());
                continue;
            };
            prop_assert!(d.score.unwrap() < target.min);
            let sizes: Vec<usize> = d.paths.iter().map(|p| p.changes.len()).collect();
            prop_assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{:?}", sizes);
            for p in &d.paths {
                prop_assert!(!p.changes.is_empty() && p.changes.len() <= next_band::MAX_CHANGES);
                for c in &p.changes {
                    let question = q.question(&c.question).unwrap();
                    prop_assert_eq!(parse_value(question, &c.to.to_json()), Ok(Some(c.to.clone())));
                    prop_assert_eq!(given.get(&c.question), c.from.as_ref());
                }
                let reached = domain_score(&next_band::apply(&given, &p.changes), i);
                prop_assert_eq!(reached, Some(p.score));
                prop_assert!(p.score >= target.min, "{:?} {:?}", p, target);
                for skip in 0..p.changes.len() {
                    let mut fewer = p.changes.clone();
                    fewer.remove(skip);
                    let s = domain_score(&next_band::apply(&given, &fewer), i);
                    prop_assert!(s.is_none_or(|s| s < target.min), "{:?} without change {}", p, skip);
                }
            }
            if sizes.first().is_some_and(|&n| n >= 2) {
                for (c, question) in q.domains[i].questions.iter().zip(&report.domains[i].explanation).map(|(question, c)| (c, question)) {
                    if c.reason == crate::domain::scoring::Reason::Hidden {
                        continue;
                    }
                    for (answer, _) in next_band::better_answers(question, given.get(&question.key), c.normalised) {
                        let mut one = given.clone();
                        one.insert(question.key.clone(), answer.clone());
                        let s = domain_score(&one, i);
                        prop_assert!(s.is_none_or(|s| s < target.min), "{} = {:?} reaches alone", question.key, answer);
                    }
                }
            }
        }
    }
}
