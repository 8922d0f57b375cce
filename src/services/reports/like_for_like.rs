//! Like-for-like scores: a domain score over only the questions that two versions share
//! unchanged. Pure, so the year-on-year view and its tests work it out the same way.

use std::collections::BTreeSet;

use crate::domain::comparability;
use crate::domain::questionnaire::{Questionnaire, Scale};
use crate::domain::scoring::QuestionContribution;

/// A domain score over a subset of its questions: format section 4 step 3,
/// `scale.min + (scale.max - scale.min) * sum(w * n) / sum(w)`, over the contributions that
/// counted and whose key is in `keys`, in document order, clamped to the scale like
/// [`scoring::score`]; `None` when none of them counted.
pub fn subset_score(
    scale: Scale,
    contributions: &[QuestionContribution],
    keys: &BTreeSet<String>,
) -> Option<f64> {
    let mut weighted = 0.0;
    let mut weights = 0.0;
    for c in contributions {
        if !c.counted || !keys.contains(c.key.as_str()) {
            continue;
        }
        let n = c.normalised?;
        weighted += c.weight * n;
        weights += c.weight;
    }
    if weights <= 0.0 {
        return None;
    }
    let lo = scale.min.min(scale.max);
    let hi = scale.max.max(scale.min);
    Some((scale.min + (scale.max - scale.min) * weighted / weights).clamp(lo, hi))
}

/// The questions of domain `domain` that score the same way in `before` and `after` (same
/// key in that domain of both, same fingerprint), in `after`'s order; empty when the scale
/// changed, as then no score is comparable.
pub fn comparable_questions(
    before: &Questionnaire,
    after: &Questionnaire,
    domain: &str,
) -> BTreeSet<String> {
    if before.scale != after.scale {
        return BTreeSet::new();
    }
    let (Some(a), Some(b)) = (
        before.domains.iter().find(|d| d.key == domain),
        after.domains.iter().find(|d| d.key == domain),
    ) else {
        return BTreeSet::new();
    };
    b.questions
        .iter()
        .filter(|qb| {
            a.questions.iter().any(|qa| {
                qa.key == qb.key && comparability::fingerprint(qa) == comparability::fingerprint(qb)
            })
        })
        .map(|q| q.key.clone())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::scoring::Reason;

    fn c(key: &str, n: Option<f64>, w: f64, counted: bool) -> QuestionContribution {
        QuestionContribution {
            key: key.into(),
            raw: n,
            normalised: n,
            weight: w,
            counted,
            reason: if counted {
                Reason::Counted
            } else {
                Reason::NotAnswered
            },
        }
    }

    #[test]
    fn subset_score_follows_section_4_over_the_subset() {
        let scale = Scale { min: 1.0, max: 5.0 };
        let contributions = [
            c("a", Some(1.0), 1.0, true),
            c("b", Some(0.0), 2.0, true),
            c("c", Some(0.5), 1.0, true),
            c("d", None, 1.0, false),
        ];
        let keys: BTreeSet<String> = ["a", "b", "d"].iter().map(|s| s.to_string()).collect();
        // (1*1 + 2*0) / 3 = 1/3 -> 1 + 4/3
        let s = subset_score(scale, &contributions, &keys).unwrap();
        assert!((s - (1.0 + 4.0 / 3.0)).abs() < 1e-12);
        let none: BTreeSet<String> = ["d".to_string()].into_iter().collect();
        assert_eq!(subset_score(scale, &contributions, &none), None);
    }
}
