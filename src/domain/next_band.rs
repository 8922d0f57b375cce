//! The path to the next band: for each domain, the smallest sets of answer changes that lift
//! its score into the next maturity band.
//!
//! An organisation's results say where it stands; what a board asks next is "what would it
//! take to move up?". The answer depends only on the question set's rules and the answers,
//! so it is computed here, in the pure core, by the same [`score`] that scores a submission:
//! every proposed path is checked by re-scoring the whole assessment with its changes
//! applied (so `show_if` conditions, N/A and weights are honoured exactly), never by a
//! separate approximation of the rules.
//!
//! The method, for a domain with a score below the top band:
//! 1. For each question of the domain that is shown, the answers that would score better
//!    than the current one (or that would count where it does not: unanswered, N/A, an
//!    unscored option) are listed: every higher level, the next levels of a checklist (the
//!    statements of every level up to it ticked), every better option, one more option of a
//!    multi-select or all its scored options, a number in each better band.
//! 2. Sets of questions are tried in order of size, each question at its best answer; the
//!    first size at which some sets reach the target band is the smallest number of changes
//!    (among the [`MAX_CANDIDATES`] questions that gain most on their own, and at most
//!    [`MAX_CHANGES`] changes).
//! 3. In each set that reaches, each change is then lowered to the smallest step that still
//!    reaches (the next level rather than the top one), and the sets are ranked by how little
//!    they ask: the sum of the steps in normalised score, then document order.
//!
//! A domain with no score yet (nothing answered that counts) has no path: its questions
//! need answers first. A domain in the top band has no next band.

use serde::Serialize;

use crate::domain::answers::{parse_value, Answer, Answers};
use crate::domain::questionnaire::{ChecklistLevel, Question, QuestionKind, Questionnaire};
use crate::domain::scoring::{self, band_for, raw_score, Assessment, DomainScore};

/// The most changes a path may have: beyond four, a list of changes stops being a plan a
/// board can take in at a glance, and the search grows with the power of this number.
pub const MAX_CHANGES: usize = 4;
/// How many of a domain's questions the search considers: those that gain most on their own.
pub const MAX_CANDIDATES: usize = 16;
/// How many alternative paths are offered per domain.
pub const MAX_PATHS: usize = 3;

/// One answer to change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub question: String,
    /// The current answer; `None` when the question is unanswered.
    pub from: Option<Answer>,
    pub to: Answer,
}

/// A set of changes that, applied together, lifts the domain into the target band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    /// In document order.
    pub changes: Vec<Change>,
    /// The domain's score with the changes applied.
    pub score: f64,
    /// The band that score falls in (the target or higher).
    pub band: String,
}

/// What a domain would need to reach its next band.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainPath {
    pub domain: String,
    pub score: Option<f64>,
    pub band: Option<String>,
    /// The next band's label and lowest score; `None` for a domain with no score or in the
    /// top band.
    pub target: Option<Target>,
    /// The smallest sets of changes found, best first; empty when no set of at most
    /// [`MAX_CHANGES`] changes reaches the target.
    pub paths: Vec<Path>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub band: String,
    pub min: f64,
}

/// The path to the next band for every domain, in document order. `report` must be
/// `score(q, answers)`.
pub fn paths(q: &Questionnaire, answers: &Answers, report: &Assessment) -> Vec<DomainPath> {
    q.domains
        .iter()
        .zip(&report.domains)
        .enumerate()
        .map(|(index, (domain, scored))| {
            let target = scored.score.and_then(|s| next_band(q, s));
            let paths = match &target {
                Some(target) => search(q, answers, index, scored, target),
                None => Vec::new(),
            };
            DomainPath {
                domain: domain.key.clone(),
                score: scored.score,
                band: scored.band.clone(),
                target,
                paths,
            }
        })
        .collect()
}

/// The lowest band whose minimum is above the score's band.
fn next_band(q: &Questionnaire, score: f64) -> Option<Target> {
    let current = band_for(&q.bands, score);
    let mut bands: Vec<_> = q.bands.iter().collect();
    bands.sort_by(|a, b| a.min.total_cmp(&b.min));
    let position = current.and_then(|label| bands.iter().position(|b| b.label == label));
    let next = match position {
        Some(i) => bands.get(i + 1),
        None => bands.iter().find(|b| b.min > score),
    }?;
    Some(Target {
        band: next.label.clone(),
        min: next.min,
    })
}

/// A question of the domain with the better answers it could be given, lowest step first.
struct Candidate<'a> {
    question: &'a Question,
    /// Better answers, in ascending normalised score; the last is the best.
    answers: Vec<(Answer, f64)>,
}

/// The paths for the domain at `domain`, whose score with the answers as they stand is
/// `current` (from the caller's report: the assessment is not scored again).
fn search(
    q: &Questionnaire,
    answers: &Answers,
    domain: usize,
    current: &DomainScore,
    target: &Target,
) -> Vec<Path> {
    let ev = Eval::new(q, answers, domain, target);
    let mut candidates: Vec<Candidate<'_>> = q.domains[domain]
        .questions
        .iter()
        .zip(&current.explanation)
        .filter(|(_, c)| c.reason != crate::domain::scoring::Reason::Hidden)
        .filter_map(|(question, c)| {
            let better = better_answers(question, answers.get(&question.key), c.normalised);
            (!better.is_empty()).then_some(Candidate {
                question,
                answers: better,
            })
        })
        .collect();
    // The questions that gain most on their own first; the search keeps the strongest.
    let gain = |c: &Candidate<'_>| {
        c.answers
            .last()
            .and_then(|(best, _)| ev.score(&[(c.question, best)]))
            .unwrap_or(f64::NEG_INFINITY)
    };
    let mut gains: Vec<(f64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (gain(c), i))
        .collect();
    gains.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut keep: Vec<usize> = gains.iter().take(MAX_CANDIDATES).map(|(_, i)| *i).collect();
    keep.sort_unstable();
    candidates = candidates
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.binary_search(i).is_ok())
        .map(|(_, c)| c)
        .collect();

    // When no question of the domain is shown or hidden by a candidate's answer, a better
    // answer never lowers the domain's score (each best answer counts in full), so if every
    // candidate at its best together does not reach the band, no set of them does, and the
    // search would try every set for nothing.
    let conditional = q.domains[domain]
        .questions
        .iter()
        .filter_map(|x| x.show_if.as_ref())
        .any(|c| {
            c.questions()
                .iter()
                .any(|k| candidates.iter().any(|cand| cand.question.key == *k))
        });
    let in_full = candidates
        .iter()
        .all(|c| c.answers.last().is_some_and(|(_, n)| *n >= 1.0));
    if !conditional && in_full {
        let all_best: Vec<(&Question, &Answer)> = candidates
            .iter()
            .filter_map(|c| c.answers.last().map(|(a, _)| (c.question, a)))
            .collect();
        if !ev.reaches(&all_best) {
            return Vec::new();
        }
    }
    for size in 1..=MAX_CHANGES.min(candidates.len()) {
        let mut found = Vec::new();
        for set in combinations(candidates.len(), size) {
            let best: Vec<(&Question, &Answer)> = set
                .iter()
                .filter_map(|&i| {
                    let c = &candidates[i];
                    c.answers.last().map(|(a, _)| (c.question, a))
                })
                .collect();
            if ev.reaches(&best) {
                found.push(lower(&ev, &candidates, &set));
            }
        }
        if !found.is_empty() {
            found.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            return found
                .into_iter()
                .take(MAX_PATHS)
                .filter_map(|(_, _, chosen)| path(&ev, &chosen))
                .collect();
        }
    }
    Vec::new()
}

/// Lower each change of a reaching set to the smallest step that still reaches. Returns the
/// total step (for ranking), the set's positions (document order, for ties) and the answers.
fn lower<'a>(
    ev: &Eval<'_>,
    candidates: &'a [Candidate<'a>],
    set: &[usize],
) -> (f64, Vec<usize>, Vec<(&'a Question, &'a Answer)>) {
    let mut chosen: Vec<usize> = set
        .iter()
        .map(|&i| candidates[i].answers.len().saturating_sub(1))
        .collect();
    for slot in 0..set.len() {
        for step in 0..chosen[slot] {
            let mut trial = chosen.clone();
            trial[slot] = step;
            if ev.reaches(&pick(candidates, set, &trial)) {
                chosen = trial;
                break;
            }
        }
    }
    let current = |c: &Candidate<'_>| {
        ev.original
            .get(&c.question.key)
            .and_then(|a| normalised(c.question, a))
            .unwrap_or(0.0)
    };
    let effort: f64 = set
        .iter()
        .zip(&chosen)
        .map(|(&i, &step)| candidates[i].answers[step].1 - current(&candidates[i]))
        .sum();
    (effort, set.to_vec(), pick(candidates, set, &chosen))
}

fn pick<'a>(
    candidates: &'a [Candidate<'a>],
    set: &[usize],
    steps: &[usize],
) -> Vec<(&'a Question, &'a Answer)> {
    set.iter()
        .zip(steps)
        .map(|(&i, &step)| (candidates[i].question, &candidates[i].answers[step].0))
        .collect()
}

fn path(ev: &Eval<'_>, chosen: &[(&Question, &Answer)]) -> Option<Path> {
    let score = ev.score(chosen)?;
    Some(Path {
        changes: chosen
            .iter()
            .map(|(question, to)| Change {
                question: question.key.clone(),
                from: ev.original.get(&question.key).cloned(),
                to: (*to).clone(),
            })
            .collect(),
        band: band_for(&ev.q.bands, score)?.to_string(),
        score,
    })
}

/// The answers with the changes applied.
pub fn apply(answers: &Answers, changes: &[Change]) -> Answers {
    let mut changed = answers.clone();
    for change in changes {
        changed.insert(change.question.clone(), change.to.clone());
    }
    changed
}

/// Scores one domain with changes applied, on one working copy of the answers that each
/// evaluation changes and puts back (the search runs thousands: a copy of every answer each
/// time cost most of its time).
struct Eval<'a> {
    q: &'a Questionnaire,
    original: &'a Answers,
    domain: usize,
    target: &'a Target,
    work: std::cell::RefCell<Answers>,
}

impl<'a> Eval<'a> {
    fn new(q: &'a Questionnaire, answers: &'a Answers, domain: usize, target: &'a Target) -> Self {
        Eval {
            q,
            original: answers,
            domain,
            target,
            work: std::cell::RefCell::new(answers.clone()),
        }
    }

    fn score(&self, changes: &[(&Question, &Answer)]) -> Option<f64> {
        let mut work = self.work.borrow_mut();
        for (question, answer) in changes {
            work.insert(question.key.clone(), (*answer).clone());
        }
        let score = scoring::domain_score(self.q, &work, self.domain);
        for (question, _) in changes {
            match self.original.get(&question.key) {
                Some(before) => work.insert(question.key.clone(), before.clone()),
                None => work.remove(&question.key),
            };
        }
        score
    }

    fn reaches(&self, changes: &[(&Question, &Answer)]) -> bool {
        self.score(changes).is_some_and(|s| s >= self.target.min)
    }
}

/// Every `size`-element subset of `0..n`, in lexicographic order.
fn combinations(n: usize, size: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut next: Option<Vec<usize>> = (size <= n && size > 0).then(|| (0..size).collect());
    std::iter::from_fn(move || {
        let current = next.take()?;
        let mut following = current.clone();
        let mut i = size;
        while i > 0 {
            i -= 1;
            if following[i] < n - size + i {
                following[i] += 1;
                for j in i + 1..size {
                    following[j] = following[j - 1] + 1;
                }
                next = Some(following);
                break;
            }
        }
        Some(current)
    })
}

/// The answer's score on 0..1, when it counts.
fn normalised(question: &Question, answer: &Answer) -> Option<f64> {
    let (lo, hi) = question.score_range()?;
    let raw = raw_score(question, answer)?;
    Some(((raw - lo) / (hi - lo)).clamp(0.0, 1.0))
}

/// The answers to `question` that score better than `current` (which scores `now`, or
/// does not count), valid for the question, in ascending normalised score without repeats.
pub(crate) fn better_answers(
    question: &Question,
    current: Option<&Answer>,
    now: Option<f64>,
) -> Vec<(Answer, f64)> {
    let floor = now.unwrap_or(f64::NEG_INFINITY);
    let mut better: Vec<(Answer, f64)> = possible_answers(question, current)
        .into_iter()
        // Only answers the question accepts, exactly as given.
        .filter(|a| parse_value(question, &a.to_json()) == Ok(Some(a.clone())))
        .filter_map(|a| normalised(question, &a).map(|n| (a, n)))
        .filter(|(_, n)| *n > floor)
        .collect();
    better.sort_by(|a, b| a.1.total_cmp(&b.1));
    better.dedup_by(|a, b| a.1 == b.1);
    better
}

/// Answers worth trying for a question, built from its definition and the current answer.
fn possible_answers(question: &Question, current: Option<&Answer>) -> Vec<Answer> {
    match &question.kind {
        QuestionKind::Scale { levels } => levels.iter().map(|l| Answer::Scale(l.value)).collect(),
        QuestionKind::Checklist { levels } => {
            let ticked: Vec<String> = match current {
                Some(Answer::Checklist(keys)) => keys.clone(),
                _ => Vec::new(),
            };
            (1..levels.len())
                .map(|upto| Answer::Checklist(ticked_through(levels, &ticked, upto)))
                .collect()
        }
        QuestionKind::Single { options } => options
            .iter()
            .filter(|o| o.score.is_some())
            .map(|o| Answer::Single(o.key.clone()))
            .collect(),
        QuestionKind::Multi { options, .. } => {
            let exclusive = |key: &str| options.iter().any(|o| o.key == key && o.exclusive);
            let chosen: Vec<&str> = match current {
                Some(Answer::Multi(keys)) => keys
                    .iter()
                    .map(String::as_str)
                    .filter(|k| !exclusive(k))
                    .collect(),
                _ => Vec::new(),
            };
            let in_order = |keys: &[&str]| -> Answer {
                Answer::Multi(
                    options
                        .iter()
                        .filter(|o| keys.contains(&o.key.as_str()))
                        .map(|o| o.key.clone())
                        .collect(),
                )
            };
            let mut out: Vec<Answer> = options
                .iter()
                .filter(|o| !o.exclusive && o.score > 0.0 && !chosen.contains(&o.key.as_str()))
                .map(|o| {
                    let mut keys = chosen.clone();
                    keys.push(&o.key);
                    in_order(&keys)
                })
                .collect();
            let all: Vec<&str> = options
                .iter()
                .filter(|o| !o.exclusive && (o.score > 0.0 || chosen.contains(&o.key.as_str())))
                .map(|o| o.key.as_str())
                .collect();
            out.push(in_order(&all));
            out
        }
        QuestionKind::YesNo { .. } => vec![Answer::YesNo(true), Answer::YesNo(false)],
        QuestionKind::Number {
            min,
            max,
            integer,
            bands,
            ..
        } => {
            let mut previous: Option<f64> = None;
            let mut out = Vec::new();
            for band in bands {
                let value = match (band.up_to, previous) {
                    (Some(up_to), _) => Some(up_to),
                    (None, Some(prev)) => Some(if *integer {
                        prev.floor() + 1.0
                    } else {
                        prev + 1.0
                    }),
                    (None, None) => min.or(Some(0.0)),
                };
                let value = value.map(|v| match max {
                    Some(m) if v > *m => *m,
                    _ => v,
                });
                if let Some(v) = value.filter(|v| min.is_none_or(|m| *v >= m)) {
                    let v = if *integer { v.floor() } else { v };
                    // Only a value that falls in this band (its score is the band's).
                    if raw_score(question, &Answer::Number(v)) == Some(band.score) {
                        out.push(Answer::Number(v));
                    }
                }
                previous = band.up_to;
            }
            out
        }
        QuestionKind::Text { .. } => Vec::new(),
    }
}

/// The ticked statements plus every statement of the levels up to index `upto`, in the
/// order the question lists them.
fn ticked_through(levels: &[ChecklistLevel], ticked: &[String], upto: usize) -> Vec<String> {
    let needed: Vec<&str> = levels
        .iter()
        .take(upto + 1)
        .flat_map(|l| l.criteria.iter().map(|c| c.key.as_str()))
        .collect();
    levels
        .iter()
        .flat_map(|l| l.criteria.iter())
        .filter(|c| needed.contains(&c.key.as_str()) || ticked.contains(&c.key))
        .map(|c| c.key.clone())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::questionnaire::load;
    use crate::domain::questionnaire::tests::EXAMPLE;
    use crate::domain::scoring::score;

    #[test]
    fn combinations_are_every_subset_once() {
        let all: Vec<Vec<usize>> = combinations(4, 2).collect();
        assert_eq!(
            all,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(combinations(5, 3).count(), 10);
        assert_eq!(combinations(2, 3).count(), 0);
    }

    #[test]
    fn lowest_answers_get_a_path_for_every_scored_domain() {
        let q = load(EXAMPLE.as_bytes()).unwrap();
        // Every scale at its lowest level: every domain with a scale question is scored
        // and in the lowest band.
        let answers: Answers = q
            .questions()
            .filter_map(|(_, question)| match &question.kind {
                QuestionKind::Scale { levels } => {
                    Some((question.key.clone(), Answer::Scale(levels[0].value)))
                }
                _ => None,
            })
            .collect();
        let report = score(&q, &answers);
        let found = paths(&q, &answers, &report);
        let scored: Vec<&DomainPath> = found.iter().filter(|d| d.score.is_some()).collect();
        assert!(!scored.is_empty());
        for d in scored {
            let target = d
                .target
                .as_ref()
                .expect("a lowest-band domain has a next band");
            assert!(!d.paths.is_empty(), "{}: no path", d.domain);
            for p in &d.paths {
                let changed = apply(&answers, &p.changes);
                let s = score(&q, &changed);
                let domain = s.domains.iter().find(|x| x.key == d.domain).unwrap();
                assert!(domain.score.unwrap() >= target.min, "{p:?}");
                assert_eq!(domain.score, Some(p.score));
            }
        }
    }

    #[test]
    fn a_domain_without_answers_or_at_the_top_has_no_path() {
        let q = load(EXAMPLE.as_bytes()).unwrap();
        let report = score(&q, &Answers::new());
        for d in paths(&q, &Answers::new(), &report) {
            assert_eq!(d.target, None);
            assert!(d.paths.is_empty());
        }
        // Every scale at its top level: scale-only domains are in the top band.
        let top: Answers = q
            .questions()
            .filter_map(|(_, question)| match &question.kind {
                QuestionKind::Scale { levels } => Some((
                    question.key.clone(),
                    Answer::Scale(levels.last().unwrap().value),
                )),
                _ => None,
            })
            .collect();
        let report = score(&q, &top);
        for d in paths(&q, &top, &report) {
            if d.score == Some(q.scale.max) {
                assert_eq!(d.target, None, "{}", d.domain);
            }
        }
    }
}
