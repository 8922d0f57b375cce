//! Assessments and answers: what state each assessment is seeded in, and answers of the right
//! type for every visible question, driven by the organisation's maturity, so scores spread and
//! move between years as real ones would.

use chrono::{Days, NaiveDateTime};
use rand::rngs::StdRng;

use super::cycles::{at, CyclePlan};
use super::names::JOB_TITLES;
use super::organisations::Registry;
use super::random::{between, chance, pick, rng_for, STREAM_ANSWERS};
use super::run::SeedError;
use super::write::missing;
use crate::domain::answers::{Answer, Answers};
use crate::domain::questionnaire::{NumberBand, Question, QuestionKind, Questionnaire};
use crate::domain::{scoring, visibility};
use crate::error::AppError;
use crate::services::assessments::ScoreSetContent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// Every visible question answered, signed off, scored.
    Submitted,
    /// In progress with every visible question answered: the approver can submit it.
    Complete,
    /// In progress with about half the questions answered (some required ones missing).
    Partial,
    /// No answers.
    NotStarted,
}

impl Seeded {
    pub fn status(self) -> &'static str {
        match self {
            Seeded::Submitted => "submitted",
            Seeded::Complete | Seeded::Partial => "in_progress",
            Seeded::NotStarted => "not_started",
        }
    }
}

/// The state of organisation `i`'s assessment in the open cycle: by `i % 10`, 0-3
/// submitted, 4-5 complete, 6-7 partly answered, 8-9 not started.
pub fn open_cycle_state(i: usize) -> Seeded {
    match i % 10 {
        0..=3 => Seeded::Submitted,
        4 | 5 => Seeded::Complete,
        6 | 7 => Seeded::Partial,
        _ => Seeded::NotStarted,
    }
}

pub(super) struct GeneratedSubmission {
    pub(super) at: NaiveDateTime,
    pub(super) late: bool,
    pub(super) job_title: &'static str,
    pub(super) content: ScoreSetContent,
}

/// One organisation's assessment in one cycle, before it is written.
pub(super) struct Generated {
    pub(super) state: Seeded,
    pub(super) answers: Answers,
    /// When the answers were last saved.
    pub(super) answered_at: NaiveDateTime,
    pub(super) submission: Option<GeneratedSubmission>,
}

impl Generated {
    /// The assessment's revision as the lifecycle would have left it: one save, then the
    /// submission.
    pub(super) fn revision(&self) -> i64 {
        match self.state {
            Seeded::NotStarted => 0,
            Seeded::Complete | Seeded::Partial => 1,
            Seeded::Submitted => 2,
        }
    }

    pub(super) fn updated_at(&self, created: NaiveDateTime) -> NaiveDateTime {
        match (&self.submission, self.state) {
            (Some(s), _) => s.at,
            (None, Seeded::NotStarted) => created,
            (None, _) => self.answered_at,
        }
    }
}

/// A moment a fraction `u` (0..1) of the way from `from` to `to`.
fn moment(from: NaiveDateTime, to: NaiveDateTime, u: f64) -> NaiveDateTime {
    let span = (to - from).num_seconds().max(0) as f64;
    from + chrono::Duration::seconds((span * u.clamp(0.0, 1.0)) as i64)
}

pub(super) fn generate(
    q: &Questionnaire,
    registry: &Registry,
    seed: u64,
    plan: &CyclePlan,
    c: usize,
    i: usize,
) -> Result<Generated, SeedError> {
    let mut rng = rng_for(seed, &[STREAM_ANSWERS, c as u64, i as u64]);
    let state = if plan.open {
        open_cycle_state(i)
    } else if chance(&mut rng, 0.95) {
        Seeded::Submitted
    } else {
        Seeded::Partial
    };
    let opened = at(plan.opens_on, 9);
    let Some(org) = registry.orgs.get(i) else {
        return Err(SeedError::Failed(missing(format!("organisation {i}"))));
    };
    let maturity = org.maturity.get(c).copied().unwrap_or(0.5);
    let mut generated = Generated {
        state,
        answers: Answers::new(),
        answered_at: opened,
        submission: None,
    };
    if state == Seeded::NotStarted {
        return Ok(generated);
    }
    let complete = complete_answers(q, maturity, &org.domain_bias, &mut rng);
    // When the work happened: closed cycles' submissions spread from a week after opening
    // to a week past the deadline (so a few are late); the open cycle's up to now.
    let (from, to) = if plan.open {
        (opened, plan.ends_at)
    } else {
        (opened + Days::new(7), at(plan.deadline + Days::new(7), 17))
    };
    let done_at = moment(from, to, between(&mut rng, 0.1, 1.0));
    generated.answered_at = moment(opened, done_at, between(&mut rng, 0.9, 1.0));
    match state {
        Seeded::Partial => {
            generated.answers = partial(q, &complete, &mut rng);
            generated.answered_at = moment(opened, done_at, between(&mut rng, 0.3, 0.9));
        }
        Seeded::Complete | Seeded::Submitted => {
            let report = scoring::score(q, &complete);
            if !report.complete {
                return Err(SeedError::Failed(AppError::Internal(anyhow::anyhow!(
                    "seed: the answers generated for organisation {i} in {} leave {} unanswered",
                    plan.label,
                    report.missing_required.join(", ")
                ))));
            }
            if state == Seeded::Submitted {
                generated.submission = Some(GeneratedSubmission {
                    at: done_at,
                    late: done_at.date() > plan.deadline,
                    job_title: JOB_TITLES[pick(&mut rng, JOB_TITLES.len())],
                    content: ScoreSetContent::new(&complete, &report)?,
                });
            }
            generated.answers = complete;
        }
        Seeded::NotStarted => {}
    }
    Ok(generated)
}

/// Answers to every question `show_if` leaves visible (optional ones sometimes skipped),
/// each near the organisation's maturity plus its lean for the question's domain.
fn complete_answers(q: &Questionnaire, maturity: f64, bias: &[f64], rng: &mut StdRng) -> Answers {
    let mut all = Answers::new();
    for (domain, question) in q.questions() {
        let lean = bias.get(domain % bias.len().max(1)).copied().unwrap_or(0.0);
        let t = (maturity + lean + between(rng, -0.2, 0.2)).clamp(0.0, 1.0);
        if let Some(answer) = answer_for(question, t, rng) {
            all.insert(question.key.clone(), answer);
        }
    }
    // Conditions only look at earlier questions, and a hidden question's answer is ignored
    // everywhere, so dropping the hidden ones leaves every other question's visibility as is.
    let shown = visibility::visible_flags(q, &all);
    q.questions()
        .zip(shown)
        .filter(|(_, shown)| *shown)
        .filter_map(|((_, question), _)| {
            all.remove(&question.key).map(|a| (question.key.clone(), a))
        })
        .collect()
}

/// The first 35-65% of a complete set of answers in document order (people work from the
/// top), stopping before the last required question so the assessment cannot be submitted.
/// A prefix keeps every kept question's visibility: conditions only look at earlier ones.
fn partial(q: &Questionnaire, complete: &Answers, rng: &mut StdRng) -> Answers {
    let order: Vec<(&str, bool)> = q
        .questions()
        .filter(|(_, question)| complete.contains_key(&question.key))
        .map(|(_, question)| (question.key.as_str(), question.required))
        .collect();
    let mut keep = ((order.len() as f64) * between(rng, 0.35, 0.65)).round() as usize;
    keep = keep.max(1);
    if let Some(last_required) = order.iter().rposition(|(_, required)| *required) {
        keep = keep.min(last_required);
    }
    order
        .iter()
        .take(keep)
        .filter_map(|(key, _)| complete.get(*key).map(|a| ((*key).to_string(), a.clone())))
        .collect()
}

/// Position `t` (0..1) of the way through `n` ordered choices.
pub(super) fn index(t: f64, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    ((t.clamp(0.0, 1.0) * (n - 1) as f64).round() as usize).min(n - 1)
}

const NOTES: [&str; 6] = [
    "A single EPR procurement is under way with go-live planned for next year.",
    "Outages were planned maintenance windows agreed with clinical teams.",
    "Two legacy systems remain in maternity and theatres.",
    "Availability figures come from the supplier's monthly service reports.",
    "The EPR is shared with a neighbouring trust under a joint contract.",
    "Paper records remain in outpatients pending scanning.",
];

/// An answer to one question for an organisation at maturity `t` (0..1), valid for the
/// question's type and limits; `None` leaves an optional question unanswered.
fn answer_for(question: &Question, t: f64, rng: &mut StdRng) -> Option<Answer> {
    if !question.required && chance(rng, 0.3) {
        return None;
    }
    if question.allow_na && chance(rng, 0.04) {
        return Some(Answer::Na);
    }
    match &question.kind {
        QuestionKind::Scale { levels } => levels
            .get(index(t, levels.len()))
            .map(|l| Answer::Scale(l.value)),
        QuestionKind::Checklist { levels } => {
            let reach = index(t, levels.len());
            let mut ticked = Vec::new();
            for (n, level) in levels.iter().enumerate() {
                for criterion in &level.criteria {
                    let tick = if n <= reach {
                        !chance(rng, 0.05)
                    } else {
                        chance(rng, 0.15)
                    };
                    if tick {
                        ticked.push(criterion.key.clone());
                    }
                }
            }
            Some(Answer::Checklist(ticked))
        }
        QuestionKind::Single { options } => {
            let scored: Vec<(usize, f64)> = options
                .iter()
                .enumerate()
                .filter_map(|(n, o)| o.score.map(|s| (n, s)))
                .collect();
            let unscored: Vec<usize> = options
                .iter()
                .enumerate()
                .filter(|(_, o)| o.score.is_none())
                .map(|(n, _)| n)
                .collect();
            let chosen = if scored.is_empty() || (!unscored.is_empty() && chance(rng, 0.03)) {
                if unscored.is_empty() {
                    pick(rng, options.len())
                } else {
                    unscored[pick(rng, unscored.len())]
                }
            } else {
                let lo = scored.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
                let hi = scored.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
                let target = lo + t * (hi - lo);
                scored
                    .iter()
                    .min_by(|a, b| (a.1 - target).abs().total_cmp(&(b.1 - target).abs()))
                    .map_or(0, |s| s.0)
            };
            options.get(chosen).map(|o| Answer::Single(o.key.clone()))
        }
        QuestionKind::Multi { options, .. } => {
            let p = 0.1 + 0.85 * t;
            let mut chosen: Vec<String> = options
                .iter()
                .filter(|o| !o.exclusive)
                .filter(|_| chance(rng, p))
                .map(|o| o.key.clone())
                .collect();
            if chosen.is_empty() {
                let fallback = match options.iter().find(|o| o.exclusive) {
                    Some(o) => Some(o),
                    None => options.get(pick(rng, options.len())),
                };
                chosen.extend(fallback.map(|o| o.key.clone()));
            }
            (!chosen.is_empty()).then_some(Answer::Multi(chosen))
        }
        QuestionKind::YesNo {
            yes_score,
            no_score,
        } => {
            let p = if yes_score >= no_score { t } else { 1.0 - t };
            Some(Answer::YesNo(chance(rng, p.clamp(0.03, 0.97))))
        }
        QuestionKind::Number {
            min,
            max,
            integer,
            bands,
            ..
        } => number_answer(*min, *max, *integer, bands, t, rng).map(Answer::Number),
        QuestionKind::Text { max_length } => {
            let note: String = NOTES[pick(rng, NOTES.len())]
                .chars()
                .take(*max_length as usize)
                .collect();
            (!note.trim().is_empty()).then_some(Answer::Text(note))
        }
    }
}

/// A number within the question's limits, in the scoring band nearest maturity `t`.
fn number_answer(
    min: Option<f64>,
    max: Option<f64>,
    integer: bool,
    bands: &[NumberBand],
    t: f64,
    rng: &mut StdRng,
) -> Option<f64> {
    let top = bands
        .iter()
        .filter_map(|b| b.up_to)
        .fold(0.0_f64, |a, b| a.max(b.abs()));
    let lo = match (min, max) {
        (Some(lo), _) => lo,
        (None, Some(hi)) if hi < 0.0 => hi - 100.0,
        (None, _) => 0.0_f64.min(-top),
    };
    let hi = max.unwrap_or(lo.abs() + 2.0 * top + 100.0);
    let (from, to) = if bands.is_empty() {
        (lo, hi)
    } else {
        let smin = bands.iter().map(|b| b.score).fold(f64::INFINITY, f64::min);
        let smax = bands
            .iter()
            .map(|b| b.score)
            .fold(f64::NEG_INFINITY, f64::max);
        let target = smin + t * (smax - smin);
        let chosen = bands
            .iter()
            .enumerate()
            .min_by(|a, b| {
                (a.1.score - target)
                    .abs()
                    .total_cmp(&(b.1.score - target).abs())
            })
            .map_or(0, |(n, _)| n);
        let below = chosen
            .checked_sub(1)
            .and_then(|n| bands.get(n))
            .and_then(|b| b.up_to)
            .unwrap_or(lo);
        let above = bands.get(chosen).and_then(|b| b.up_to).unwrap_or(hi);
        (below.max(lo), above.min(hi))
    };
    let x = between(rng, from, to);
    let (x, lo, hi) = if integer {
        (x.round(), lo.ceil(), hi.floor())
    } else {
        ((x * 100.0).round() / 100.0, lo, hi)
    };
    (lo <= hi && x.is_finite()).then(|| x.clamp(lo, hi))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::answers::parse_value;
    use crate::services::seed::random::unit;
    use crate::services::seed::QUESTION_SET;

    fn example() -> Questionnaire {
        crate::domain::questionnaire::load(QUESTION_SET).unwrap()
    }

    #[test]
    fn generated_answers_are_valid_visible_and_complete() {
        let q = example();
        for s in 0..2000_u64 {
            let mut rng = rng_for(s, &[STREAM_ANSWERS]);
            let maturity = unit(&mut rng);
            let bias: Vec<f64> = (0..16).map(|_| between(&mut rng, -0.15, 0.15)).collect();
            let answers = complete_answers(&q, maturity, &bias, &mut rng);
            let shown = visibility::visible(&q, &answers);
            for (key, answer) in &answers {
                assert!(shown.contains(key), "hidden {key} answered");
                let question = q.question(key).unwrap();
                let parsed = parse_value(question, &answer.to_json());
                assert_eq!(parsed, Ok(Some(answer.clone())), "{key}: {answer:?}");
            }
            let report = scoring::score(&q, &answers);
            assert!(report.complete, "seed {s}: {:?}", report.missing_required);

            let half = partial(&q, &answers, &mut rng);
            assert!(!half.is_empty() && half.len() < answers.len());
            assert!(
                !scoring::score(&q, &half).complete,
                "seed {s}: partial is complete"
            );
            let shown = visibility::visible(&q, &half);
            assert!(half.keys().all(|k| shown.contains(k)));
        }
    }

    #[test]
    fn maturity_moves_scores() {
        let q = example();
        let mean = |m: f64| {
            let mut total = 0.0;
            for s in 0..300_u64 {
                let mut rng = rng_for(s, &[9]);
                let answers = complete_answers(&q, m, &[0.0], &mut rng);
                total += scoring::score(&q, &answers).overall.score.unwrap();
            }
            total / 300.0
        };
        let (low, high) = (mean(0.1), mean(0.9));
        assert!(low < 2.5 && high > 3.5, "low {low}, high {high}");
    }

    #[test]
    fn numbers_respect_limits_and_integers() {
        let bands = [
            NumberBand {
                up_to: Some(10.0),
                score: 3.0,
            },
            NumberBand {
                up_to: None,
                score: 0.0,
            },
        ];
        let mut rng = rng_for(1, &[]);
        for n in 0..1000 {
            let t = f64::from(n) / 1000.0;
            let x = number_answer(Some(0.0), None, true, &bands, t, &mut rng).unwrap();
            assert!(x >= 0.0 && x.fract() == 0.0, "{x}");
            let y = number_answer(None, Some(-5.0), false, &[], t, &mut rng).unwrap();
            assert!(y <= -5.0, "{y}");
            let z = number_answer(Some(0.0), Some(100.0), false, &bands, t, &mut rng).unwrap();
            assert!((0.0..=100.0).contains(&z), "{z}");
        }
        assert_eq!(
            number_answer(Some(0.2), Some(0.8), true, &[], 0.5, &mut rng),
            None
        );
    }

    #[test]
    fn the_open_cycle_split() {
        let states: Vec<Seeded> = (0..10).map(open_cycle_state).collect();
        assert_eq!(
            states.iter().filter(|s| **s == Seeded::Submitted).count(),
            4
        );
        assert_eq!(states[4], Seeded::Complete);
        assert_eq!(states[7], Seeded::Partial);
        assert_eq!(states[9], Seeded::NotStarted);
        assert_eq!(open_cycle_state(13), Seeded::Submitted);
    }
}
