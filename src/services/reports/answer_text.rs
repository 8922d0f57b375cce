//! Answers in words, as a report or an export shows them to a person.

use crate::domain::answers::Answer;
use crate::domain::questionnaire::{ChecklistLevel, Question, QuestionKind};

fn checklist_label(levels: &[ChecklistLevel], ticked: &[String]) -> String {
    match ChecklistLevel::reached(levels, ticked) {
        Some(level) => format!("Level {}: {}", level.value, level.label),
        None => "No level reached".into(),
    }
}

/// An answer as a person reads it: option labels, "Yes"/"No", a scale level with its label,
/// the checklist level reached and the criteria ticked, a number with its unit.
pub fn describe_answer(q: &Question, answer: &Answer) -> String {
    match (&q.kind, answer) {
        (_, Answer::Na) => "Not applicable".into(),
        (QuestionKind::Scale { levels }, Answer::Scale(v)) => levels
            .iter()
            .find(|l| l.value == *v)
            .map_or_else(|| v.to_string(), |l| format!("{}: {}", l.value, l.label)),
        (QuestionKind::Checklist { levels }, Answer::Checklist(keys)) => {
            let ticked: Vec<&str> = levels
                .iter()
                .flat_map(|l| l.criteria.iter())
                .filter(|c| keys.contains(&c.key))
                .map(|c| c.text.as_str())
                .collect();
            if ticked.is_empty() {
                format!("{} (nothing ticked)", checklist_label(levels, keys))
            } else {
                format!(
                    "{} (ticked: {})",
                    checklist_label(levels, keys),
                    ticked.join("; ")
                )
            }
        }
        (QuestionKind::Single { options }, Answer::Single(k)) => options
            .iter()
            .find(|o| &o.key == k)
            .map_or_else(|| k.clone(), |o| o.label.clone()),
        (QuestionKind::Multi { options, .. }, Answer::Multi(keys)) => options
            .iter()
            .filter(|o| keys.contains(&o.key))
            .map(|o| o.label.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        (_, Answer::YesNo(true)) => "Yes".into(),
        (_, Answer::YesNo(false)) => "No".into(),
        (QuestionKind::Number { unit, .. }, Answer::Number(x)) => match unit {
            Some(u) => format!("{x} {u}"),
            None => format!("{x}"),
        },
        (_, Answer::Text(s)) => s.clone(),
        (_, other) => other.to_json().to_string(),
    }
}
