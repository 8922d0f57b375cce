//! Conditions (`show_if`): which tests each question type allows, and the checks that a
//! condition names an earlier question, a key it has and a value it can take, so a hidden
//! question is never hidden by a typo.

use super::reader::{at, idx, list_words, or_words, Reader};
use super::{COMBINATORS, CONDITION_FIELDS, OPERATORS};
use crate::domain::document::Node;
use crate::domain::questionnaire::{CondValue, Condition, QuestionKind};
use crate::domain::{did_you_mean, plain_number};

/// The condition tests that make sense for each question type (format section 3).
fn operators_for(kind: &QuestionKind) -> &'static [&'static str] {
    match kind {
        QuestionKind::Scale { .. } | QuestionKind::Number { .. } => {
            &["equals", "in", "at_least", "at_most", "answered"]
        }
        QuestionKind::Checklist { .. } => &[
            "equals", "in", "includes", "at_least", "at_most", "answered",
        ],
        QuestionKind::Single { .. } | QuestionKind::YesNo { .. } => &["equals", "in", "answered"],
        QuestionKind::Multi { .. } => &["includes", "answered"],
        QuestionKind::Text { .. } => &["answered"],
    }
}
impl Reader {
    pub(super) fn condition(
        &mut self,
        node: &Node,
        path: &str,
        own_key: &str,
    ) -> Option<Condition> {
        let f = self.mapping(
            node,
            path,
            "a condition such as {question: KEY, equals: VALUE}",
        )?;
        let combinators: Vec<&str> = COMBINATORS
            .iter()
            .copied()
            .filter(|c| f.get(c).is_some())
            .collect();
        if let Some(first) = combinators.first() {
            if f.entries.len() > 1 {
                self.err(
                    path,
                    format!(
                        "\"{first}\" must be the only field of its condition; put the other \
                         tests inside it"
                    ),
                );
                return None;
            }
            if *first == "not" {
                let inner_path = at(path, "not");
                let inner = f.get("not")?;
                return self
                    .condition(inner, &inner_path, own_key)
                    .map(|c| Condition::Not(Box::new(c)));
            }
            let list_path = at(path, first);
            let Some(items) = self.list(&f, first, " of conditions") else {
                if f.present(first).is_none() {
                    self.err(&list_path, "list at least one condition");
                }
                return None;
            };
            if items.is_empty() {
                self.err(&list_path, "list at least one condition");
            }
            let conditions: Vec<Option<Condition>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| self.condition(item, &idx(&list_path, i), own_key))
                .collect();
            let conditions: Option<Vec<Condition>> = conditions.into_iter().collect();
            let conditions = conditions?;
            return Some(if *first == "all" {
                Condition::All(conditions)
            } else {
                Condition::Any(conditions)
            });
        }

        let mut suggestions: Vec<&str> = CONDITION_FIELDS.to_vec();
        suggestions.extend(COMBINATORS);
        self.check_fields(&f, &suggestions, &|_| None);
        let question = match f.get("question") {
            Some(node) => self.text_value(node, &f.at("question"), usize::MAX),
            None => {
                self.missing(&f, "question", "name the earlier question this depends on");
                None
            }
        };
        let operators: Vec<&str> = OPERATORS
            .iter()
            .copied()
            .filter(|op| f.get(op).is_some())
            .collect();
        let operator = match operators.as_slice() {
            [one] => *one,
            [] => {
                self.err(
                    path,
                    "add one test: equals, in, includes, at_least, at_most or answered",
                );
                return None;
            }
            _ => {
                self.err(
                    path,
                    format!(
                        "use only one of {} in a condition; combine tests with all or any",
                        list_words(&operators)
                    ),
                );
                return None;
            }
        };
        let question = question?;
        let value_path = f.at(operator);
        let value = f.get(operator)?;
        let condition = match operator {
            "equals" => Condition::Equals {
                value: self.cond_value(value, &value_path)?,
                question,
            },
            "in" => {
                let Node::List(items) = value else {
                    self.err(
                        &value_path,
                        format!("must be a list of values, not {}", value.describe()),
                    );
                    return None;
                };
                if items.is_empty() {
                    self.err(&value_path, "list at least one value");
                }
                let values: Option<Vec<CondValue>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.cond_value(v, &idx(&value_path, i)))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect();
                Condition::In {
                    values: values?,
                    question,
                }
            }
            "includes" => Condition::Includes {
                option: self.text_value(value, &value_path, usize::MAX)?,
                question,
            },
            "at_least" => Condition::AtLeast {
                n: self.number_value(value, &value_path)?,
                question,
            },
            "at_most" => Condition::AtMost {
                n: self.number_value(value, &value_path)?,
                question,
            },
            _ => {
                if *value != Node::Bool(true) {
                    self.err(
                        &value_path,
                        "must be true (answered: true); to show a question when another is \
                         not answered, use not: {question: KEY, answered: true}",
                    );
                    return None;
                }
                Condition::Answered { question }
            }
        };
        self.check_target(&condition, path, own_key);
        Some(condition)
    }

    fn cond_value(&mut self, node: &Node, path: &str) -> Option<CondValue> {
        match node {
            Node::Text(s) => Some(CondValue::Key(s.clone())),
            Node::Bool(b) => Some(CondValue::Bool(*b)),
            Node::Int(_) | Node::Float(_) => self.number_value(node, path).map(CondValue::Number),
            other => {
                self.err(
                    path,
                    format!(
                        "must be an option key, a number or true/false, not {}",
                        other.describe()
                    ),
                );
                None
            }
        }
    }

    /// Checks that a comparison refers to an earlier question of a suitable type, with
    /// values that exist in it.
    fn check_target(&mut self, condition: &Condition, path: &str, own_key: &str) {
        let (question, operator) = match condition {
            Condition::Equals { question, .. } => (question, "equals"),
            Condition::In { question, .. } => (question, "in"),
            Condition::Includes { question, .. } => (question, "includes"),
            Condition::AtLeast { question, .. } => (question, "at_least"),
            Condition::AtMost { question, .. } => (question, "at_most"),
            Condition::Answered { question } => (question, "answered"),
            _ => return,
        };
        let question_path = at(path, "question");
        if question == own_key {
            self.err(&question_path, "a question cannot depend on itself");
            return;
        }
        let Some((earlier, _)) = self.earlier.get(question) else {
            if self.all_keys.contains_key(question) {
                self.err(
                    &question_path,
                    format!(
                        "question \"{question}\" comes later in the document; a condition can \
                         only refer to an earlier question, so move one of them"
                    ),
                );
            } else {
                let keys: Vec<&str> = self.all_keys.keys().map(String::as_str).collect();
                let hint = match did_you_mean(question, &keys) {
                    Some(s) => format!(" (did you mean \"{s}\"?)"),
                    None => String::new(),
                };
                self.err(
                    &question_path,
                    format!("there is no question \"{question}\"{hint}"),
                );
            }
            return;
        };
        if !earlier.clean {
            return;
        }
        let kind = earlier.kind.clone();
        let type_name = kind.type_name();
        let value_path = at(path, operator);
        let supported = operators_for(&kind);
        if !supported.contains(&operator) {
            self.err(
                &value_path,
                format!(
                    "{operator} cannot be used with \"{question}\", a {type_name} question; \
                     use {}",
                    or_words(&supported.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                ),
            );
            return;
        }
        match condition {
            Condition::Equals { value, .. } => {
                self.check_value(&kind, question, value, &value_path);
            }
            Condition::In { values, .. } => {
                for (i, value) in values.iter().enumerate() {
                    self.check_value(&kind, question, value, &idx(&value_path, i));
                }
            }
            Condition::Includes { option, .. } => {
                let (keys, what): (Vec<&str>, &str) = match &kind {
                    QuestionKind::Multi { options, .. } => {
                        (options.iter().map(|o| o.key.as_str()).collect(), "option")
                    }
                    QuestionKind::Checklist { levels } => (
                        levels
                            .iter()
                            .flat_map(|l| l.criteria.iter().map(|c| c.key.as_str()))
                            .collect(),
                        "criterion",
                    ),
                    _ => (Vec::new(), "option"),
                };
                self.check_key(&keys, option, what, question, &value_path);
            }
            _ => {}
        }
    }

    fn check_key(&mut self, keys: &[&str], key: &str, what: &str, question: &str, path: &str) {
        if keys.contains(&key) {
            return;
        }
        let hint = match did_you_mean(key, keys) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => format!("; use one of {}", list_words(keys)),
        };
        self.err(
            path,
            format!("there is no {what} \"{key}\" in question \"{question}\"{hint}"),
        );
    }

    fn check_value(&mut self, kind: &QuestionKind, question: &str, value: &CondValue, path: &str) {
        let level_values: Vec<i64> = match kind {
            QuestionKind::Scale { levels } => levels.iter().map(|l| l.value).collect(),
            QuestionKind::Checklist { levels } => levels.iter().map(|l| l.value).collect(),
            _ => Vec::new(),
        };
        match (kind, value) {
            (QuestionKind::Scale { .. } | QuestionKind::Checklist { .. }, CondValue::Number(n))
                if !level_values.iter().any(|v| *v as f64 == *n) =>
            {
                let shown: Vec<String> = level_values.iter().map(i64::to_string).collect();
                self.err(
                    path,
                    format!(
                        "{} is not a level of question \"{question}\"; use {}",
                        plain_number(*n),
                        or_words(&shown)
                    ),
                );
            }
            (QuestionKind::Scale { .. } | QuestionKind::Checklist { .. }, CondValue::Number(_)) => {
            }
            (QuestionKind::Scale { .. } | QuestionKind::Checklist { .. }, _) => {
                self.err(
                    path,
                    format!("must be a level value (a number) of question \"{question}\""),
                );
            }
            (QuestionKind::Single { options }, CondValue::Key(key)) => {
                let keys: Vec<&str> = options.iter().map(|o| o.key.as_str()).collect();
                self.check_key(&keys, key, "option", question, path);
            }
            (QuestionKind::Single { .. }, _) => {
                self.err(
                    path,
                    format!("must be an option key of question \"{question}\""),
                );
            }
            (QuestionKind::YesNo { .. }, CondValue::Bool(_)) => {}
            (QuestionKind::YesNo { .. }, CondValue::Key(s)) => {
                self.err(
                    path,
                    format!(
                        "must be true or false, not \"{s}\" (question \"{question}\" is yes/no)"
                    ),
                );
            }
            (QuestionKind::YesNo { .. }, _) => {
                self.err(
                    path,
                    format!("must be true or false (question \"{question}\" is yes/no)"),
                );
            }
            (QuestionKind::Number { .. }, CondValue::Number(_)) => {}
            (QuestionKind::Number { .. }, _) => {
                self.err(
                    path,
                    format!("must be a number (question \"{question}\" is a number question)"),
                );
            }
            _ => {}
        }
    }
}
