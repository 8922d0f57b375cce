//! Which questions a respondent sees, given the answers so far (format section 3).
//!
//! Visibility decides what is asked, what is required and what is scored, so the web form,
//! the progress count and scoring all take it from here. Conditions are evaluated once per
//! question in document order; because a condition may only refer to an earlier question,
//! every question it looks at has already been decided.
//!
//! Rules, including the ones the format leaves to us:
//! - A hidden question's stored answer is ignored everywhere: by scoring, by `required`, and
//!   by the conditions of later questions. So a comparison on a hidden question is false,
//!   and `answered` on a hidden question is false too (its answer "does not exist").
//! - A comparison (`equals`, `in`, `includes`, `at_least`, `at_most`) on an unanswered or
//!   N/A question is false; `not` then inverts it as usual.
//! - `answered` is true when the question is visible and answered, N/A included. An empty
//!   `multi` list is not an answer; an empty `checklist` list is (nothing ticked).
//! - `equals`, `in`, `at_least` and `at_most` on a checklist use its computed level;
//!   `includes` on a checklist means that criterion is ticked.
//! - An answer whose shape does not fit its question (which the answer checks prevent)
//!   matches nothing.
//!
//! Scoring is a hot path (issue 21 asks for 200,000 assessments of 100 questions a second
//! per core), so [`resolve`] does the key work of an assessment once, and by position: it
//! pairs questions with answers by walking the answers (sorted by key) alongside the
//! question set's [`QuestionIndex`] (its questions sorted by key) rather than looking each
//! question up, and finds the question a condition names at the position the index
//! recorded, confirmed by one key comparison. Every item of an `all` or `any` is evaluated
//! (the result is the same as stopping at the first that decides it) so that conditions
//! meet their references in the order the index records them.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::domain::answers::{checklist_level, is_answered, Answer, Answers};
use crate::domain::questionnaire::index::{last_with_key, question_at, Fitted, Place};
use crate::domain::questionnaire::{
    CondValue, Condition, Domain, Question, QuestionIndex, Questionnaire,
};

/// The keys of the questions that are shown for these answers.
pub fn visible(q: &Questionnaire, answers: &Answers) -> BTreeSet<String> {
    q.questions()
        .zip(resolve(q, answers).shown)
        .filter(|(_, shown)| *shown)
        .map(|((_, question), _)| question.key.clone())
        .collect()
}

/// Whether each question is shown, in document order (the order of
/// [`Questionnaire::questions`]).
pub fn visible_flags(q: &Questionnaire, answers: &Answers) -> Vec<bool> {
    resolve(q, answers).shown
}

/// Whether a question is in a set returned by [`visible`].
pub fn is_visible(visible: &BTreeSet<String>, key: &str) -> bool {
    visible.contains(key)
}

/// The answers that matter: those to visible questions. Stored answers to hidden
/// questions are kept by the app (the respondent may change their mind) but never used.
pub fn visible_answers(q: &Questionnaire, answers: &Answers) -> Answers {
    let shown = visible(q, answers);
    answers
        .iter()
        .filter(|(key, _)| shown.contains(*key))
        .map(|(key, answer)| (key.clone(), answer.clone()))
        .collect()
}

/// The answers of an assessment by position, and which questions are shown.
pub(crate) struct Resolved<'a> {
    /// The answer to each question in document order (the order of
    /// [`Questionnaire::questions`]) when it has one that counts as answered
    /// ([`is_answered`]), whether or not the question is shown.
    pub answers: Vec<Option<&'a Answer>>,
    /// Whether the question at the same position is shown.
    pub shown: Vec<bool>,
}

/// The answers from `answers` to the questions of `q`, by position, and their visibility.
pub(crate) fn resolve<'a>(q: &'a Questionnaire, answers: &'a Answers) -> Resolved<'a> {
    let total = q.domains.iter().map(|d| d.questions.len()).sum();
    let mut by_position = Vec::with_capacity(total);
    by_position.resize(total, None);
    let fresh;
    let paired = q
        .index
        .fitting(&q.domains)
        .and_then(|index| Some((index, pair_answers(&mut by_position, index, q, answers)?)));
    let (index, distinct) = match paired {
        Some(paired) => paired,
        None => {
            // The index does not fit the model (the model was changed after it was built, or
            // was never indexed): index it for this call.
            fresh = QuestionIndex::new(&q.domains);
            let index = fresh.fresh();
            let distinct = pair_answers(&mut by_position, index, q, answers).unwrap_or_else(|| {
                // Not reached: a fresh index is in key order.
                for (slot, (_, question)) in by_position.iter_mut().zip(q.questions()) {
                    *slot = answers.get(&question.key).filter(|a| is_answered(a));
                }
                false
            });
            (index, distinct)
        }
    };
    let mut context = Context {
        domains: &q.domains,
        index,
        // Where keys are shared (which the loader refuses), a recorded place may name the
        // wrong one of the questions with the key, so every reference is searched for.
        recorded: distinct,
        answers: &by_position,
        shown: Vec::with_capacity(total),
        next_reference: 0,
    };
    for domain in &q.domains {
        for question in &domain.questions {
            let show = match &question.show_if {
                None => true,
                Some(condition) => context.holds(condition),
            };
            context.shown.push(show);
        }
    }
    let shown = context.shown;
    Resolved {
        answers: by_position,
        shown,
    }
}

/// Puts each question's answer at its position, walking the answers (sorted by key) and the
/// index's questions sorted by key together. Checks on the way that the index's order is
/// the order of the keys (comparing a question's key with the previous one only when no
/// answer has shown the order already); `None` when it is not. Otherwise whether the keys
/// are distinct.
fn pair_answers<'a>(
    by_position: &mut [Option<&'a Answer>],
    index: Fitted<'_>,
    q: &'a Questionnaire,
    answers: &'a Answers,
) -> Option<bool> {
    let mut stored = answers.iter();
    let mut current = stored.next();
    let mut previous: Option<(&str, Option<&'a Answer>)> = None;
    let mut distinct = true;
    for &place in index.by_key() {
        let key = question_at(&q.domains, place)?.key.as_str();
        // Every answer before `current` has a key at or below the previous question's.
        let mut found = None;
        while let Some((stored_key, answer)) = current {
            match stored_key.as_str().cmp(key) {
                Ordering::Less => current = stored.next(),
                Ordering::Equal => {
                    // This key is above every earlier answer's key, so above the previous
                    // question's: the order is confirmed.
                    found = Some(answer);
                    current = stored.next();
                    break;
                }
                Ordering::Greater => break,
            }
        }
        if found.is_none() {
            if let Some((previous_key, previous_answer)) = previous {
                match previous_key.cmp(key) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        distinct = false;
                        found = previous_answer;
                    }
                    Ordering::Greater => return None,
                }
            }
        }
        *by_position.get_mut(index.position(place)?)? = found.filter(|a| is_answered(a));
        previous = Some((key, found));
    }
    Some(distinct)
}

struct Context<'a, 'r> {
    domains: &'a [Domain],
    index: Fitted<'r>,
    /// Whether the places the index recorded for references can be used.
    recorded: bool,
    answers: &'r [Option<&'a Answer>],
    /// Visibility of the questions decided so far (every earlier question).
    shown: Vec<bool>,
    /// The number of references met so far.
    next_reference: usize,
}

impl<'a> Context<'a, '_> {
    /// The place of the question a condition refers to; references must be met in the
    /// order the index records them.
    fn place(&mut self, key: &str) -> Option<Place> {
        let n = self.next_reference;
        self.next_reference += 1;
        if self.recorded {
            if let Some(place) = self.index.reference(n) {
                if question_at(self.domains, place).is_some_and(|q| q.key == key) {
                    return Some(place);
                }
            }
        }
        last_with_key(self.domains, self.index.by_key(), key)
    }

    /// The answer to a visible, answered question, with the question.
    fn answered(&mut self, key: &str) -> Option<(&'a Question, &'a Answer)> {
        let place = self.place(key)?;
        let position = self.index.position(place)?;
        if !self.shown.get(position).copied().unwrap_or(false) {
            return None;
        }
        let answer = (*self.answers.get(position)?)?;
        Some((question_at(self.domains, place)?, answer))
    }

    /// The answer a comparison can look at: answered and not N/A.
    fn comparable(&mut self, key: &str) -> Option<(&'a Question, &'a Answer)> {
        self.answered(key).filter(|(_, a)| !matches!(a, Answer::Na))
    }

    fn holds(&mut self, condition: &Condition) -> bool {
        match condition {
            Condition::Answered { question } => self.answered(question).is_some(),
            Condition::Equals { question, value } => self
                .comparable(question)
                .is_some_and(|(q, a)| equals(q, a, value)),
            Condition::In { question, values } => self
                .comparable(question)
                .is_some_and(|(q, a)| values.iter().any(|v| equals(q, a, v))),
            Condition::Includes { question, option } => {
                self.comparable(question).is_some_and(|(_, a)| match a {
                    Answer::Multi(keys) | Answer::Checklist(keys) => keys.contains(option),
                    _ => false,
                })
            }
            Condition::AtLeast { question, n } => self
                .comparable(question)
                .and_then(|(q, a)| numeric(q, a))
                .is_some_and(|x| x >= *n),
            Condition::AtMost { question, n } => self
                .comparable(question)
                .and_then(|(q, a)| numeric(q, a))
                .is_some_and(|x| x <= *n),
            // Every item is evaluated, see the module documentation.
            Condition::All(items) => {
                let mut all = true;
                for item in items {
                    all &= self.holds(item);
                }
                all
            }
            Condition::Any(items) => {
                let mut any = false;
                for item in items {
                    any |= self.holds(item);
                }
                any
            }
            Condition::Not(inner) => !self.holds(inner),
        }
    }
}

/// The number an answer stands for in `at_least`/`at_most`/`equals`: a scale value, a
/// checklist's computed level, or a number answer.
fn numeric(q: &Question, answer: &Answer) -> Option<f64> {
    match answer {
        Answer::Scale(v) => Some(*v as f64),
        Answer::Checklist(_) => checklist_level(q, answer).map(|v| v as f64),
        Answer::Number(x) => Some(*x),
        _ => None,
    }
}

fn equals(q: &Question, answer: &Answer, value: &CondValue) -> bool {
    match (answer, value) {
        (Answer::Single(key), CondValue::Key(expected)) => key == expected,
        (Answer::YesNo(b), CondValue::Bool(expected)) => b == expected,
        (Answer::Scale(_) | Answer::Checklist(_) | Answer::Number(_), CondValue::Number(n)) => {
            numeric(q, answer) == Some(*n)
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::questionnaire::load;
    use crate::domain::questionnaire::tests::example;

    fn answers(pairs: &[(&str, Answer)]) -> Answers {
        pairs
            .iter()
            .map(|(k, a)| (k.to_string(), a.clone()))
            .collect()
    }

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A question set whose last question `t` shows when `condition` (YAML) holds.
    fn with_condition(condition: &str) -> Questionnaire {
        let yaml = format!(
            r#"
key: t
version: "1"
title: T
settings: [acute]
domains:
  - key: d
    title: D
    questions:
      - key: sc
        type: scale
        text: Q
        required: false
        levels: [{{value: 1, label: a}}, {{value: 2, label: b}}, {{value: 3, label: c}}]
      - key: ck
        type: checklist
        text: Q
        allow_na: true
        levels:
          - {{value: 0, label: none}}
          - {{value: 1, label: one, criteria: [{{key: c1, text: C1}}]}}
          - {{value: 2, label: two, criteria: [{{key: c2, text: C2}}]}}
      - key: si
        type: single
        text: Q
        allow_na: true
        options: [{{key: a, label: A, score: 0}}, {{key: b, label: B, score: 1}}]
      - key: mu
        type: multi
        text: Q
        options: [{{key: x, label: X, score: 1}}, {{key: y, label: Y, score: 1}}]
      - key: yn
        type: yes_no
        text: Q
      - key: nu
        type: number
        text: Q
      - key: tx
        type: text
        text: Q
      - key: gate
        type: yes_no
        text: Q
      - key: hidden
        type: scale
        text: Q
        show_if: {{question: gate, equals: true}}
        levels: [{{value: 1, label: a}}, {{value: 2, label: b}}]
      - key: t
        type: text
        text: Q
        show_if: {condition}
"#
        );
        load(yaml.as_bytes()).unwrap()
    }

    fn shows(condition: &str, given: &[(&str, Answer)]) -> bool {
        let q = with_condition(condition);
        visible(&q, &answers(given)).contains("t")
    }

    #[test]
    fn example_conditions() {
        let q = example();
        let none = visible(&q, &Answers::new());
        // sf-uptime needs sf-epr partial/full; sf-epr-notes needs sf-epr answered;
        // ic-decision-support is "not sf-epr = none", which holds while unanswered.
        assert!(!none.contains("sf-uptime"));
        assert!(!none.contains("sf-epr-notes"));
        assert!(none.contains("ic-decision-support"));
        let a = answers(&[("sf-epr", Answer::Single("none".into()))]);
        let v = visible(&q, &a);
        assert!(!v.contains("sf-uptime"));
        assert!(v.contains("sf-epr-notes"));
        assert!(!v.contains("ic-decision-support"));
        let a = answers(&[("sf-epr", Answer::Single("full".into()))]);
        let v = visible(&q, &a);
        assert!(v.contains("sf-uptime"));
        assert!(is_visible(&v, "ic-decision-support"));
    }

    #[test]
    fn equals_and_in_per_type() {
        assert!(shows(
            "{question: sc, equals: 2}",
            &[("sc", Answer::Scale(2))]
        ));
        assert!(!shows(
            "{question: sc, equals: 2}",
            &[("sc", Answer::Scale(3))]
        ));
        assert!(shows(
            "{question: si, equals: b}",
            &[("si", Answer::Single("b".into()))]
        ));
        assert!(!shows(
            "{question: si, equals: b}",
            &[("si", Answer::Single("a".into()))]
        ));
        assert!(shows(
            "{question: yn, equals: false}",
            &[("yn", Answer::YesNo(false))]
        ));
        assert!(!shows(
            "{question: yn, equals: false}",
            &[("yn", Answer::YesNo(true))]
        ));
        assert!(shows(
            "{question: nu, equals: 2.5}",
            &[("nu", Answer::Number(2.5))]
        ));
        assert!(shows(
            "{question: sc, in: [1, 3]}",
            &[("sc", Answer::Scale(3))]
        ));
        assert!(!shows(
            "{question: sc, in: [1, 3]}",
            &[("sc", Answer::Scale(2))]
        ));
        assert!(shows(
            "{question: si, in: [a]}",
            &[("si", Answer::Single("a".into()))]
        ));
    }

    #[test]
    fn checklist_uses_computed_level_and_includes_criteria() {
        let ticked = |k: &[&str]| ("ck", Answer::Checklist(keys(k)));
        // Only c2 ticked: level stays 0 because c1 is missing.
        assert!(shows("{question: ck, equals: 0}", &[ticked(&["c2"])]));
        assert!(!shows("{question: ck, at_least: 1}", &[ticked(&["c2"])]));
        assert!(shows("{question: ck, includes: c2}", &[ticked(&["c2"])]));
        assert!(shows("{question: ck, equals: 2}", &[ticked(&["c1", "c2"])]));
        assert!(shows("{question: ck, in: [1, 2]}", &[ticked(&["c1"])]));
        assert!(shows("{question: ck, at_most: 1}", &[ticked(&["c1"])]));
        // An empty checklist is an answer at the first level.
        assert!(shows("{question: ck, equals: 0}", &[ticked(&[])]));
        assert!(shows("{question: ck, answered: true}", &[ticked(&[])]));
    }

    #[test]
    fn includes_on_multi_and_thresholds() {
        let mu = ("mu", Answer::Multi(keys(&["y"])));
        assert!(shows(
            "{question: mu, includes: y}",
            std::slice::from_ref(&mu)
        ));
        assert!(!shows("{question: mu, includes: x}", &[mu]));
        assert!(shows(
            "{question: sc, at_least: 2}",
            &[("sc", Answer::Scale(2))]
        ));
        assert!(!shows(
            "{question: sc, at_least: 2}",
            &[("sc", Answer::Scale(1))]
        ));
        assert!(shows(
            "{question: nu, at_most: 10}",
            &[("nu", Answer::Number(10.0))]
        ));
        assert!(!shows(
            "{question: nu, at_most: 10}",
            &[("nu", Answer::Number(10.5))]
        ));
    }

    #[test]
    fn comparisons_on_unanswered_na_and_hidden_are_false() {
        // Unanswered.
        assert!(!shows("{question: sc, at_most: 3}", &[]));
        assert!(shows("{not: {question: sc, at_most: 3}}", &[]));
        // N/A.
        let na = [("si", Answer::Na)];
        assert!(!shows("{question: si, equals: a}", &na));
        assert!(!shows("{question: si, in: [a, b]}", &na));
        assert!(shows("{not: {question: si, equals: a}}", &na));
        assert!(shows("{question: si, answered: true}", &na));
        // Hidden: "hidden" shows only when gate is true; its stored answer is ignored.
        let stored = [("gate", Answer::YesNo(false)), ("hidden", Answer::Scale(2))];
        assert!(!shows("{question: hidden, equals: 2}", &stored));
        assert!(!shows("{question: hidden, answered: true}", &stored));
        assert!(shows("{not: {question: hidden, answered: true}}", &stored));
        let open = [("gate", Answer::YesNo(true)), ("hidden", Answer::Scale(2))];
        assert!(shows("{question: hidden, equals: 2}", &open));
        assert!(shows("{question: hidden, answered: true}", &open));
    }

    #[test]
    fn empty_multi_is_not_answered() {
        let empty = [("mu", Answer::Multi(Vec::new()))];
        assert!(!shows("{question: mu, answered: true}", &empty));
        assert!(shows(
            "{question: mu, answered: true}",
            &[("mu", Answer::Multi(keys(&["x"])))]
        ));
        assert!(shows(
            "{question: tx, answered: true}",
            &[("tx", Answer::Text("hi".into()))]
        ));
    }

    #[test]
    fn all_any_not() {
        let given = [("sc", Answer::Scale(2)), ("yn", Answer::YesNo(true))];
        let both = "{all: [{question: sc, equals: 2}, {question: yn, equals: true}]}";
        let one = "{all: [{question: sc, equals: 2}, {question: yn, equals: false}]}";
        let either = "{any: [{question: sc, equals: 3}, {question: yn, equals: true}]}";
        let neither = "{any: [{question: sc, equals: 3}, {question: yn, equals: false}]}";
        assert!(shows(both, &given));
        assert!(!shows(one, &given));
        assert!(shows(either, &given));
        assert!(!shows(neither, &given));
        assert!(shows(&format!("{{not: {neither}}}"), &given));
        assert!(!shows(&format!("{{not: {{not: {neither}}}}}"), &given));
    }

    #[test]
    fn hidden_chains_hide_dependants() {
        let q = with_condition("{question: hidden, answered: true}");
        let a = answers(&[("gate", Answer::YesNo(true)), ("hidden", Answer::Scale(1))]);
        assert!(visible(&q, &a).contains("t"));
        let a = answers(&[("gate", Answer::YesNo(false)), ("hidden", Answer::Scale(1))]);
        let v = visible(&q, &a);
        assert!(!v.contains("hidden"));
        assert!(!v.contains("t"));
        let kept = visible_answers(&q, &a);
        assert!(kept.contains_key("gate"));
        assert!(!kept.contains_key("hidden"));
    }
}
