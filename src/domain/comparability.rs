//! What can be compared between two versions of a questionnaire (format section 5).
//!
//! Year-on-year views must mark every delta that is not like-for-like, and a new cycle may
//! pre-fill answers only where a question still means the same thing for scoring. Both
//! rest on a question's *fingerprint*: a SHA-256 of a canonical text of everything that
//! affects its score.
//!
//! Decisions where the format is silent:
//! - The fingerprint covers exactly what section 5 lists: the type, level values and
//!   criterion keys, option keys and scores, `exclusive`, `max_score`, yes/no scores,
//!   number bands, `weight` and `allow_na`. It does not cover `required`, `show_if`, or a
//!   number's `min`/`max`/`integer` input range. Changes to those are listed in
//!   [`VersionDiff::other_changes`] so a reviewer can see them.
//! - Reordering options or criteria does not change the fingerprint (it cannot change a
//!   score); reordering bands or levels does (they are ordered by value anyway).
//! - The canonical text is built by hand, not by a JSON serialiser, so the fingerprint
//!   cannot change with a dependency's feature flags. It starts with a version tag.
//! - A pillar is comparable when it exists in both versions with the same domains, each
//!   comparable and with the same weight. The overall score is comparable when every
//!   domain is, the domains and pillars are the same with the same weights and links.
//! - Carried-forward answers are checked again against the new version; any that no longer
//!   fit are dropped.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::domain::answers::{parse_value, Answers};
use crate::domain::questionnaire::{Question, QuestionKind, Questionnaire};

/// The hex SHA-256 fingerprint of what affects a question's score.
pub fn fingerprint(q: &Question) -> String {
    hex::encode(Sha256::digest(canonical(q).as_bytes()))
}

/// A number written the same way every time: shortest round-trip form, `-0` as `0`.
fn num(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else {
        format!("{x}")
    }
}

/// The text the fingerprint is taken of. Keys are slugs, so `:` and newlines cannot
/// appear inside them and the text is unambiguous.
fn canonical(q: &Question) -> String {
    let mut lines = vec![
        "dma-fingerprint-v1".to_string(),
        format!("type:{}", q.kind.type_name()),
        format!("weight:{}", num(q.weight)),
        format!("allow_na:{}", q.allow_na),
    ];
    match &q.kind {
        QuestionKind::Scale { levels } => {
            lines.extend(levels.iter().map(|l| format!("level:{}", l.value)));
        }
        QuestionKind::Checklist { levels } => {
            for level in levels {
                let mut keys: Vec<&str> = level.criteria.iter().map(|c| c.key.as_str()).collect();
                keys.sort_unstable();
                lines.push(format!("level:{}:{}", level.value, keys.join(",")));
            }
        }
        QuestionKind::Single { options } => {
            let mut options: Vec<String> = options
                .iter()
                .map(|o| {
                    let score = o.score.map_or("null".to_string(), num);
                    format!("option:{}:{score}", o.key)
                })
                .collect();
            options.sort();
            lines.extend(options);
        }
        QuestionKind::Multi { options, max_score } => {
            lines.push(format!(
                "max_score:{}",
                max_score.map_or("none".to_string(), num)
            ));
            let mut options: Vec<String> = options
                .iter()
                .map(|o| format!("option:{}:{}:{}", o.key, num(o.score), o.exclusive))
                .collect();
            options.sort();
            lines.extend(options);
        }
        QuestionKind::YesNo {
            yes_score,
            no_score,
        } => {
            lines.push(format!("yes:{}", num(*yes_score)));
            lines.push(format!("no:{}", num(*no_score)));
        }
        QuestionKind::Number { bands, .. } => {
            lines.extend(bands.iter().map(|b| {
                let up_to = b.up_to.map_or("rest".to_string(), num);
                format!("band:{up_to}:{}", num(b.score))
            }));
        }
        QuestionKind::Text { .. } => {}
    }
    lines.join("\n")
}

/// The wording of a question: everything people read that does not affect the score.
fn wording(q: &Question) -> Vec<&str> {
    let mut words = vec![q.text.as_str(), q.help.as_deref().unwrap_or("")];
    match &q.kind {
        QuestionKind::Scale { levels } => words.extend(levels.iter().map(|l| l.label.as_str())),
        QuestionKind::Checklist { levels } => {
            for level in levels {
                words.push(&level.label);
                words.extend(level.criteria.iter().map(|c| c.text.as_str()));
            }
        }
        QuestionKind::Single { options } => words.extend(options.iter().map(|o| o.label.as_str())),
        QuestionKind::Multi { options, .. } => {
            words.extend(options.iter().map(|o| o.label.as_str()))
        }
        QuestionKind::Number { unit, .. } => words.push(unit.as_deref().unwrap_or("")),
        QuestionKind::YesNo { .. } | QuestionKind::Text { .. } => {}
    }
    words
}

/// Whether a domain's score can be compared between two versions, and why not.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DomainComparison {
    pub key: String,
    pub comparable: bool,
    /// Plain sentences, empty when comparable.
    pub reasons: Vec<String>,
}

/// Whether a pillar's score can be compared between two versions, and why not.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PillarComparison {
    pub key: String,
    pub comparable: bool,
    pub reasons: Vec<String>,
}

/// How a later version differs from an earlier one. Question lists are in document
/// order (the later version's, or the earlier one's for removals).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VersionDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Same fingerprint, different text, labels, help or unit.
    pub reworded: Vec<String>,
    /// Different fingerprint: answers are scored differently.
    pub rescored: Vec<String>,
    /// Same fingerprint but a different `required` or `show_if`.
    pub other_changes: Vec<String>,
    /// Every domain in either version: the later version's order, then removed ones.
    pub domains: Vec<DomainComparison>,
    /// Every pillar in either version, in the same order.
    pub pillars: Vec<PillarComparison>,
    pub overall_comparable: bool,
    pub scale_changed: bool,
}

/// Compares version `a` (earlier) with version `b` (later) by keys.
pub fn diff(a: &Questionnaire, b: &Questionnaire) -> VersionDiff {
    let bv = &b.version;
    let mut diff = VersionDiff {
        added: Vec::new(),
        removed: Vec::new(),
        reworded: Vec::new(),
        rescored: Vec::new(),
        other_changes: Vec::new(),
        domains: Vec::new(),
        pillars: Vec::new(),
        overall_comparable: false,
        scale_changed: a.scale != b.scale,
    };
    for (_, qb) in b.questions() {
        match a.question(&qb.key) {
            None => diff.added.push(qb.key.clone()),
            Some(qa) if fingerprint(qa) != fingerprint(qb) => diff.rescored.push(qb.key.clone()),
            Some(qa) => {
                if wording(qa) != wording(qb) {
                    diff.reworded.push(qb.key.clone());
                }
                if qa.required != qb.required || qa.show_if != qb.show_if {
                    diff.other_changes.push(qb.key.clone());
                }
            }
        }
    }
    diff.removed = a
        .questions()
        .filter(|(_, q)| b.question(&q.key).is_none())
        .map(|(_, q)| q.key.clone())
        .collect();

    let domain_keys = union(
        b.domains.iter().map(|d| d.key.as_str()),
        a.domains.iter().map(|d| d.key.as_str()),
    );
    for key in domain_keys {
        let da = a.domains.iter().find(|d| d.key == key);
        let db = b.domains.iter().find(|d| d.key == key);
        let reasons = match (da, db) {
            (Some(da), Some(db)) => {
                let mut reasons = Vec::new();
                if diff.scale_changed {
                    reasons.push(format!(
                        "the score scale changed from {}-{} to {}-{}",
                        num(a.scale.min),
                        num(a.scale.max),
                        num(b.scale.min),
                        num(b.scale.max)
                    ));
                }
                for qb in &db.questions {
                    match da.questions.iter().find(|q| q.key == qb.key) {
                        None => reasons.push(format!("question \"{}\" was added", qb.key)),
                        Some(qa) if fingerprint(qa) != fingerprint(qb) => {
                            reasons.push(format!("question \"{}\" is scored differently", qb.key))
                        }
                        Some(_) => {}
                    }
                }
                for qa in &da.questions {
                    if !db.questions.iter().any(|q| q.key == qa.key) {
                        reasons.push(format!("question \"{}\" was removed", qa.key));
                    }
                }
                reasons
            }
            (None, _) => vec![format!("the domain is new in version {bv}")],
            (_, None) => vec![format!("the domain is not in version {bv}")],
        };
        diff.domains.push(DomainComparison {
            key: key.to_string(),
            comparable: reasons.is_empty(),
            reasons,
        });
    }

    let pillar_keys = union(
        b.pillars.iter().map(|p| p.key.as_str()),
        a.pillars.iter().map(|p| p.key.as_str()),
    );
    for key in pillar_keys {
        let members = |q: &Questionnaire| -> Vec<(String, u64)> {
            q.domains
                .iter()
                .filter(|d| d.pillar.as_deref() == Some(key))
                .map(|d| (d.key.clone(), d.weight.to_bits()))
                .collect()
        };
        let mut reasons = Vec::new();
        match (a.pillar(key), b.pillar(key)) {
            (Some(_), Some(_)) => {
                let (ma, mb) = (members(a), members(b));
                if ma != mb {
                    reasons.push("the pillar's domains or their weights changed".to_string());
                }
                for (domain, _) in &mb {
                    if diff
                        .domains
                        .iter()
                        .any(|d| d.key == *domain && !d.comparable)
                    {
                        reasons.push(format!("domain \"{domain}\" is not comparable"));
                    }
                }
            }
            (None, _) => reasons.push(format!("the pillar is new in version {bv}")),
            (_, None) => reasons.push(format!("the pillar is not in version {bv}")),
        }
        diff.pillars.push(PillarComparison {
            key: key.to_string(),
            comparable: reasons.is_empty(),
            reasons,
        });
    }

    diff.overall_comparable =
        diff.domains.iter().all(|d| d.comparable) && structure(a) == structure(b);
    diff
}

/// Domains with their pillar and weight, and pillars with their weight, sorted by key:
/// what the overall score is built from.
type Structure<'a> = (Vec<(&'a str, Option<&'a str>, u64)>, Vec<(&'a str, u64)>);

fn structure(q: &Questionnaire) -> Structure<'_> {
    let mut domains: Vec<_> = q
        .domains
        .iter()
        .map(|d| (d.key.as_str(), d.pillar.as_deref(), d.weight.to_bits()))
        .collect();
    domains.sort();
    let mut pillars: Vec<_> = q
        .pillars
        .iter()
        .map(|p| (p.key.as_str(), p.weight.to_bits()))
        .collect();
    pillars.sort();
    (domains, pillars)
}

/// Keys from `first` in order, then keys only in `second`, without repeats.
fn union<'a>(
    first: impl Iterator<Item = &'a str>,
    second: impl Iterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    first.chain(second).filter(|k| seen.insert(*k)).collect()
}

/// The previous answers that can pre-fill the next version: those whose question has the
/// same key and fingerprint, and which still fit the question in `next`.
pub fn carry_forward(
    prev: &Questionnaire,
    next: &Questionnaire,
    prev_answers: &Answers,
) -> Answers {
    prev_answers
        .iter()
        .filter_map(|(key, answer)| {
            let old = prev.question(key)?;
            let new = next.question(key)?;
            if fingerprint(old) != fingerprint(new) {
                return None;
            }
            let answer = parse_value(new, &answer.to_json()).ok()??;
            Some((key.clone(), answer))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::answers::Answer;
    use crate::domain::questionnaire::tests::example;
    use crate::domain::questionnaire::{Condition, Scale};

    fn question_mut<'a>(q: &'a mut Questionnaire, key: &str) -> &'a mut Question {
        q.domains
            .iter_mut()
            .flat_map(|d| d.questions.iter_mut())
            .find(|q| q.key == key)
            .unwrap()
    }

    fn fp(q: &Questionnaire, key: &str) -> String {
        fingerprint(q.question(key).unwrap())
    }

    #[test]
    fn fingerprint_is_stable_hex_sha256() {
        let q = example();
        let f = fp(&q, "sf-epr");
        assert_eq!(f.len(), 64);
        assert!(f.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(f, fp(&example(), "sf-epr"));
        assert_ne!(f, fp(&q, "sp-dspt"));
    }

    #[test]
    fn wording_and_order_do_not_change_the_fingerprint() {
        let q = example();
        let mut w = q.clone();
        let epr = question_mut(&mut w, "sf-epr");
        epr.text = "Reworded".into();
        epr.help = Some("Help".into());
        epr.required = false;
        epr.show_if = Some(Condition::Answered {
            question: "wl-strategy".into(),
        });
        if let QuestionKind::Single { options } = &mut epr.kind {
            options[0].label = "Relabelled".into();
            options.reverse();
        }
        let cio = question_mut(&mut w, "wl-cio");
        if let QuestionKind::Checklist { levels } = &mut cio.kind {
            levels[2].criteria.reverse();
            levels[2].criteria[0].text = "New text".into();
            levels[1].label = "New label".into();
        }
        assert_eq!(fp(&q, "sf-epr"), fp(&w, "sf-epr"));
        assert_eq!(fp(&q, "wl-cio"), fp(&w, "wl-cio"));
    }

    #[test]
    fn everything_that_scores_changes_the_fingerprint() {
        let q = example();
        type Edit = fn(&mut Question);
        let edits: Vec<(&str, Edit)> = vec![
            ("sf-epr", |q| q.weight = 2.0),
            ("sf-epr", |q| q.allow_na = true),
            ("sf-epr", |q| {
                if let QuestionKind::Single { options } = &mut q.kind {
                    options[1].score = Some(60.0);
                }
            }),
            ("sf-epr", |q| {
                if let QuestionKind::Single { options } = &mut q.kind {
                    options[3].key = "dont-know".into();
                }
            }),
            ("sf-capabilities", |q| {
                if let QuestionKind::Multi { max_score, .. } = &mut q.kind {
                    *max_score = None;
                }
            }),
            ("sf-capabilities", |q| {
                if let QuestionKind::Multi { options, .. } = &mut q.kind {
                    options[5].exclusive = false;
                }
            }),
            ("sp-mfa", |q| {
                q.kind = QuestionKind::YesNo {
                    yes_score: 2.0,
                    no_score: 0.0,
                }
            }),
            ("sf-uptime", |q| {
                if let QuestionKind::Number { bands, .. } = &mut q.kind {
                    bands[0].up_to = Some(90.0);
                }
            }),
            ("wl-strategy", |q| {
                if let QuestionKind::Scale { levels } = &mut q.kind {
                    levels[4].value = 6;
                }
            }),
            ("wl-cio", |q| {
                if let QuestionKind::Checklist { levels } = &mut q.kind {
                    levels[1].criteria[0].key = "ccio-named".into();
                }
            }),
            ("wl-cio", |q| {
                // Moving a criterion to another level changes what each level needs.
                if let QuestionKind::Checklist { levels } = &mut q.kind {
                    let moved = levels[2].criteria.remove(1);
                    levels[3].criteria.push(moved);
                }
            }),
            ("sf-epr-notes", |q| {
                q.kind = QuestionKind::Text { max_length: 10 }
            }),
        ];
        for (i, (key, edit)) in edits.into_iter().enumerate() {
            let mut changed = q.clone();
            edit(question_mut(&mut changed, key));
            let same = fp(&q, key) == fp(&changed, key);
            // Text max_length is not listed in the format, so it must not count.
            if key == "sf-epr-notes" {
                assert!(same, "edit {i}");
            } else {
                assert!(!same, "edit {i} on {key} should change the fingerprint");
            }
        }
    }

    #[test]
    fn identical_versions_are_fully_comparable() {
        let q = example();
        let d = diff(&q, &q);
        assert!(d.added.is_empty() && d.removed.is_empty());
        assert!(d.reworded.is_empty() && d.rescored.is_empty());
        assert!(d.domains.iter().all(|d| d.comparable));
        assert!(d.pillars.iter().all(|p| p.comparable));
        assert_eq!(d.domains.len(), 8);
        assert_eq!(d.pillars.len(), 7);
        assert!(d.overall_comparable);
        assert!(!d.scale_changed);
    }

    #[test]
    fn diff_classifies_changes() {
        let a = example();
        let mut b = a.clone();
        b.version = "2026.1".into();
        question_mut(&mut b, "sp-mfa").text = "Is MFA enforced?".into();
        question_mut(&mut b, "sp-dspt").weight = 2.0;
        question_mut(&mut b, "wl-board-training").required = true;
        b.domains[1].questions.push(Question {
            key: "wl-new".into(),
            text: "New".into(),
            help: None,
            required: true,
            weight: 1.0,
            allow_na: false,
            show_if: None,
            kind: QuestionKind::YesNo {
                yes_score: 1.0,
                no_score: 0.0,
            },
        });
        b.domains[7]
            .questions
            .retain(|q| q.key != "hp-data-sharing");
        b.domains[7].questions.push(Question {
            key: "hp-other".into(),
            ..a.question("hp-data-sharing").unwrap().clone()
        });
        let d = diff(&a, &b);
        assert_eq!(d.added, ["wl-new", "hp-other"]);
        assert_eq!(d.removed, ["hp-data-sharing"]);
        assert_eq!(d.reworded, ["sp-mfa"]);
        assert_eq!(d.rescored, ["sp-dspt"]);
        assert_eq!(d.other_changes, ["wl-board-training"]);
        let comparable = |key: &str| d.domains.iter().find(|c| c.key == key).unwrap().clone();
        assert!(comparable("strategy").comparable);
        assert!(comparable("cyber").reasons == ["question \"sp-dspt\" is scored differently"]);
        assert_eq!(
            comparable("governance").reasons,
            ["question \"wl-new\" was added"]
        );
        assert_eq!(
            comparable("population-health").reasons,
            [
                "question \"hp-other\" was added",
                "question \"hp-data-sharing\" was removed"
            ]
        );
        let pillar = |key: &str| d.pillars.iter().find(|p| p.key == key).unwrap().comparable;
        assert!(!pillar("well-led"));
        assert!(pillar("smart-foundations"));
        assert!(!pillar("safe-practice"));
        assert!(!d.overall_comparable);
    }

    #[test]
    fn structure_and_scale_changes() {
        let a = example();
        let mut b = a.clone();
        b.domains[1].weight = 1.0;
        let d = diff(&a, &b);
        assert!(d.domains.iter().all(|c| c.comparable));
        assert!(
            !d.pillars
                .iter()
                .find(|p| p.key == "well-led")
                .unwrap()
                .comparable
        );
        assert!(!d.overall_comparable);

        let mut c = a.clone();
        c.scale = Scale {
            min: 0.0,
            max: 100.0,
        };
        let d = diff(&a, &c);
        assert!(d.scale_changed);
        assert!(d.domains.iter().all(|c| !c.comparable));
        assert!(d.domains[0].reasons[0].contains("scale changed from 1-5 to 0-100"));

        let mut e = a.clone();
        let removed = e.domains.remove(7);
        e.pillars.retain(|p| p.key != "healthy-populations");
        let d = diff(&a, &e);
        let last = d.domains.last().unwrap();
        assert_eq!(last.key, removed.key);
        assert!(!last.comparable);
        assert!(!d.pillars.last().unwrap().comparable);
        assert!(!d.overall_comparable);
    }

    #[test]
    fn carry_forward_keeps_unchanged_questions_only() {
        let a = example();
        let mut b = a.clone();
        question_mut(&mut b, "sp-dspt").weight = 2.0;
        question_mut(&mut b, "sp-mfa").text = "Reworded".into();
        if let QuestionKind::Number { max, .. } = &mut question_mut(&mut b, "sf-uptime").kind {
            *max = Some(99.0);
        }
        let prev: Answers = [
            ("sp-mfa", Answer::YesNo(true)),
            ("sp-dspt", Answer::Single("met".into())),
            ("sf-uptime", Answer::Number(99.5)),
            ("spp-skills", Answer::Na),
            ("gone", Answer::YesNo(true)),
        ]
        .into_iter()
        .map(|(k, a)| (k.to_string(), a))
        .collect();
        let carried = carry_forward(&a, &b, &prev);
        let kept: Vec<&str> = carried.keys().map(String::as_str).collect();
        // sp-dspt rescored; sf-uptime no longer fits (max 99); "gone" unknown.
        assert_eq!(kept, ["sp-mfa", "spp-skills"]);
    }
}
