//! Questions: each type's fields (levels and criteria, options, yes/no, numbers and bands,
//! text), read into a [`QuestionKind`] so everything after the loader trusts the types.

use std::collections::BTreeSet;

use super::reader::{idx, list_words, Earlier, Fields, Reader};
use super::{COMMON_QUESTION_FIELDS, MAX_TEXT_ANSWER_LENGTH, MAX_TEXT_CHARS, TYPES};
use crate::domain::document::Node;
use crate::domain::questionnaire::{
    ChecklistLevel, Criterion, Level, MultiOption, NumberBand, Question, QuestionKind,
    SingleOption, DEFAULT_TEXT_MAX_LENGTH,
};
use crate::domain::{did_you_mean, plain_number};

impl Reader {
    pub(super) fn questions(&mut self, d: &Fields) -> Vec<Question> {
        if !d.has("questions") {
            self.missing(d, "questions", "a domain needs at least one question");
            return Vec::new();
        }
        let Some(items) = self.list(d, "questions", " of questions") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.err(&d.at("questions"), "list at least one question");
        }
        let path = d.at("questions");
        items
            .iter()
            .enumerate()
            .filter_map(|(i, node)| self.question(node, &idx(&path, i)))
            .collect()
    }

    fn question(&mut self, node: &Node, path: &str) -> Option<Question> {
        let f = self.mapping(node, path, "a question")?;
        let errors_before = self.errors.len();

        let type_name = self.question_type(&f);
        let specific: &[&str] = match type_name {
            Some(t) => TYPES
                .iter()
                .find(|(name, _)| *name == t)
                .map(|(_, fields)| *fields)
                .unwrap_or(&[]),
            None => &[],
        };
        let mut allowed: Vec<&str> = COMMON_QUESTION_FIELDS.to_vec();
        if type_name.is_none() {
            allowed.extend(TYPES.iter().flat_map(|(_, fields)| fields.iter()));
        } else {
            allowed.extend(specific);
        }
        if type_name == Some("text") {
            allowed.retain(|f| *f != "weight");
        }
        let shown_type = type_name.unwrap_or("");
        self.check_fields(&f, &allowed, &|field| {
            if field == "weight" && shown_type == "text" {
                return Some(
                    "\"weight\" does not apply to a text question because text answers are \
                     never scored; remove it"
                        .to_string(),
                );
            }
            let users: Vec<&str> = TYPES
                .iter()
                .filter(|(_, fields)| fields.contains(&field))
                .map(|(name, _)| *name)
                .collect();
            (!users.is_empty()).then(|| {
                format!(
                    "\"{field}\" does not apply to a {shown_type} question (it is used by {} \
                     questions); remove it or change the type",
                    list_words(&users)
                )
            })
        });

        let key = self.required_slug(&f, "key", "question key");
        if !key.is_empty() {
            if let Some((_, first)) = self.earlier.get(&key) {
                let first = first.clone();
                self.err(
                    &f.at("key"),
                    format!("duplicate question key \"{key}\" (first used at {first})"),
                );
            }
        }
        let text = self.required_text(
            &f,
            "text",
            MAX_TEXT_CHARS,
            "write the question as respondents will read it",
        );
        let help = self.optional_text(&f, "help");
        let required = self.bool_field(&f, "required", true);
        let weight = if type_name == Some("text") {
            1.0
        } else {
            self.weight(&f)
        };
        let allow_na = self.bool_field(&f, "allow_na", false);
        let kind = match type_name {
            Some(t) => self.kind(t, &f),
            None => None,
        };
        let clean = kind.is_some() && self.errors.len() == errors_before;
        let show_if = match f.present("show_if") {
            Some(cond) => self.condition(cond, &f.at("show_if"), &key),
            None => None,
        };

        let kind = kind?;
        if !key.is_empty() && !self.earlier.contains_key(&key) {
            let earlier = Earlier {
                kind: kind.clone(),
                clean,
            };
            self.earlier
                .insert(key.clone(), (earlier, path.to_string()));
        }
        Some(Question {
            key,
            text,
            help,
            required,
            weight,
            allow_na,
            show_if,
            kind,
        })
    }

    fn question_type(&mut self, f: &Fields) -> Option<&'static str> {
        let names: Vec<&str> = TYPES.iter().map(|(name, _)| *name).collect();
        let Some(node) = f.get("type") else {
            self.missing(f, "type", &format!("use one of {}", list_words(&names)));
            return None;
        };
        let text = self.text_value(node, &f.at("type"), usize::MAX)?;
        if let Some(name) = names.iter().find(|n| **n == text) {
            return Some(name);
        }
        let hint = match did_you_mean(&text, &names) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => String::new(),
        };
        self.err(
            &f.at("type"),
            format!(
                "unknown question type \"{text}\"{hint}; use one of {}",
                list_words(&names)
            ),
        );
        None
    }

    pub(super) fn kind(&mut self, type_name: &str, f: &Fields) -> Option<QuestionKind> {
        Some(match type_name {
            "scale" => QuestionKind::Scale {
                levels: self
                    .levels(f, false)
                    .into_iter()
                    .map(|l| Level {
                        value: l.value,
                        label: l.label,
                    })
                    .collect(),
            },
            "checklist" => QuestionKind::Checklist {
                levels: self.levels(f, true),
            },
            "single" => self.single(f),
            "multi" => self.multi(f),
            "yes_no" => self.yes_no(f),
            "number" => self.number(f),
            "text" => QuestionKind::Text {
                max_length: self.max_length(f),
            },
            _ => return None,
        })
    }

    /// Levels of a scale or checklist; criteria are read only for checklists.
    fn levels(&mut self, f: &Fields, checklist: bool) -> Vec<ChecklistLevel> {
        if !f.has("levels") {
            self.missing(f, "levels", "list at least 2 levels of {value, label}");
            return Vec::new();
        }
        let Some(items) = self.list(f, "levels", " of {value, label}") else {
            return Vec::new();
        };
        if items.len() < 2 {
            self.err(&f.at("levels"), "list at least 2 levels");
        }
        let path = f.at("levels");
        let mut levels: Vec<ChecklistLevel> = Vec::new();
        let mut criterion_keys = BTreeSet::new();
        for (i, node) in items.iter().enumerate() {
            let Some(l) = self.mapping(node, &idx(&path, i), "a level {value, label}") else {
                continue;
            };
            let allowed: &[&str] = if checklist {
                &["value", "label", "criteria"]
            } else {
                &["value", "label"]
            };
            self.check_fields(&l, allowed, &|field| {
                (field == "criteria").then(|| {
                    "\"criteria\" only apply to checklist levels; remove them or use type: \
                     checklist"
                        .to_string()
                })
            });
            let value = match l.get("value") {
                Some(node) => self.integer_value(node, &l.at("value")),
                None => {
                    self.missing(&l, "value", "give each level a whole number");
                    None
                }
            };
            let label = self.required_text(&l, "label", MAX_TEXT_CHARS, "");
            let criteria = if checklist {
                self.criteria(&l, i, &mut criterion_keys)
            } else {
                Vec::new()
            };
            let Some(value) = value else { continue };
            if let Some(previous) = levels.last() {
                if value == previous.value {
                    self.err(&l.at("value"), format!("duplicate level value {value}"));
                } else if value < previous.value {
                    self.err(
                        &l.at("value"),
                        format!(
                            "must be greater than the previous level's value ({}); list levels \
                             from lowest to highest",
                            previous.value
                        ),
                    );
                }
            }
            levels.push(ChecklistLevel {
                value,
                label,
                criteria,
            });
        }
        levels
    }

    pub(super) fn criteria(
        &mut self,
        l: &Fields,
        level_index: usize,
        seen: &mut BTreeSet<String>,
    ) -> Vec<Criterion> {
        let items = self.list(l, "criteria", " of {key, text}").unwrap_or(&[]);
        if level_index == 0 && !items.is_empty() {
            self.err(
                &l.at("criteria"),
                "the first level is the starting point and must have no criteria; move these \
                 to a higher level or add a level below",
            );
        }
        if level_index > 0 && items.is_empty() {
            let path = if l.has("criteria") {
                l.at("criteria")
            } else {
                l.path.clone()
            };
            self.err(
                &path,
                "every level after the first needs at least one criterion {key, text}",
            );
        }
        let path = l.at("criteria");
        let mut criteria = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(c) = self.mapping(node, &idx(&path, i), "a criterion {key, text}") else {
                continue;
            };
            self.check_fields(&c, &["key", "text"], &|_| None);
            let key = self.required_slug(&c, "key", "criterion key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&c.at("key"), format!("duplicate criterion key \"{key}\""));
            }
            let text = self.required_text(&c, "text", MAX_TEXT_CHARS, "");
            criteria.push(Criterion { key, text });
        }
        criteria
    }

    /// The option list shared by single and multi questions: each entry's fields, after
    /// key, label and duplicate checks.
    pub(super) fn options<'a>(
        &mut self,
        f: &Fields<'a>,
        multi: bool,
    ) -> Vec<(Fields<'a>, String, String)> {
        if !f.has("options") {
            self.missing(
                f,
                "options",
                "list at least 2 options of {key, label, score}",
            );
            return Vec::new();
        }
        let Some(items) = self.list(f, "options", " of {key, label, score}") else {
            return Vec::new();
        };
        if items.len() < 2 {
            self.err(&f.at("options"), "list at least 2 options");
        }
        let path = f.at("options");
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, node) in items.iter().enumerate() {
            let Some(o) = self.mapping(node, &idx(&path, i), "an option {key, label, score}")
            else {
                continue;
            };
            let allowed: &[&str] = if multi {
                &["key", "label", "score", "exclusive"]
            } else {
                &["key", "label", "score"]
            };
            self.check_fields(&o, allowed, &|field| {
                (field == "exclusive")
                    .then(|| "\"exclusive\" only applies to multi questions; remove it".to_string())
            });
            let key = self.required_slug(&o, "key", "option key");
            if !key.is_empty() && !seen.insert(key.clone()) {
                self.err(&o.at("key"), format!("duplicate option key \"{key}\""));
            }
            let label = self.required_text(&o, "label", MAX_TEXT_CHARS, "");
            out.push((o, key, label));
        }
        out
    }

    fn single(&mut self, f: &Fields) -> QuestionKind {
        let mut options = Vec::new();
        for (o, key, label) in self.options(f, false) {
            let score = match o.get("score") {
                None => {
                    self.missing(
                        &o,
                        "score",
                        "give a number, or null if this option is not scored",
                    );
                    None
                }
                Some(Node::Null) => None,
                Some(node) => self.number_value(node, &o.at("score")),
            };
            options.push(SingleOption { key, label, score });
        }
        let distinct: BTreeSet<u64> = options
            .iter()
            .filter_map(|o| o.score)
            .map(|s| (s + 0.0).to_bits())
            .collect();
        if f.has("options") && distinct.len() < 2 {
            self.err(
                &f.at("options"),
                "needs at least two options with different scores (null means not scored), \
                 otherwise the answer cannot change the score",
            );
        }
        QuestionKind::Single { options }
    }

    fn multi(&mut self, f: &Fields) -> QuestionKind {
        let mut options = Vec::new();
        for (o, key, label) in self.options(f, true) {
            let score = self
                .required_number(&o, "score", "give a number of 0 or more")
                .unwrap_or(0.0);
            if score < 0.0 {
                self.err(
                    &o.at("score"),
                    format!("must be 0 or more, not {}", plain_number(score)),
                );
            }
            let exclusive = self.bool_field(&o, "exclusive", false);
            options.push(MultiOption {
                key,
                label,
                score,
                exclusive,
            });
        }
        let max_score = self.optional_number(f, "max_score");
        if let Some(m) = max_score {
            if m <= 0.0 {
                self.err(
                    &f.at("max_score"),
                    format!("must be greater than 0, not {}", plain_number(m)),
                );
            }
        }
        QuestionKind::Multi { options, max_score }
    }

    fn yes_no(&mut self, f: &Fields) -> QuestionKind {
        let yes_score = self.optional_number(f, "yes_score").unwrap_or(1.0);
        let no_score = self.optional_number(f, "no_score").unwrap_or(0.0);
        if yes_score == no_score {
            let path = if f.has("no_score") {
                f.at("no_score")
            } else {
                f.at("yes_score")
            };
            self.err(
                &path,
                format!(
                    "yes_score and no_score must differ (both are {})",
                    plain_number(yes_score)
                ),
            );
        }
        QuestionKind::YesNo {
            yes_score,
            no_score,
        }
    }

    fn number(&mut self, f: &Fields) -> QuestionKind {
        let min = self.optional_number(f, "min");
        let max = self.optional_number(f, "max");
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                self.err(
                    &f.at("min"),
                    format!(
                        "must not be greater than max ({}); swap them",
                        plain_number(hi)
                    ),
                );
            }
        }
        let integer = self.bool_field(f, "integer", false);
        let unit = self.optional_text(f, "unit");
        let items = self.list(f, "bands", " of {up_to, score}").unwrap_or(&[]);
        let path = f.at("bands");
        let mut bands: Vec<NumberBand> = Vec::new();
        let mut previous_up_to: Option<f64> = None;
        for (i, node) in items.iter().enumerate() {
            let Some(b) = self.mapping(node, &idx(&path, i), "a band {up_to, score}") else {
                continue;
            };
            self.check_fields(&b, &["up_to", "score"], &|_| None);
            let up_to = self.optional_number(&b, "up_to");
            let score = self.required_number(&b, "score", "");
            let last = i + 1 == items.len();
            if !last && !b.has("up_to") {
                self.err(
                    &b.path,
                    "only the last band may leave out up_to; add up_to here or move this band \
                     to the end",
                );
            }
            if let (Some(u), Some(p)) = (up_to, previous_up_to) {
                if u <= p {
                    self.err(
                        &b.at("up_to"),
                        format!(
                            "must be greater than the previous band's up_to ({}); list bands \
                             from lowest to highest",
                            plain_number(p)
                        ),
                    );
                }
            }
            previous_up_to = up_to.or(previous_up_to);
            if let Some(score) = score {
                bands.push(NumberBand { up_to, score });
            }
        }
        if !items.is_empty() {
            let first = bands.first().map(|b| b.score);
            if bands.iter().all(|b| Some(b.score) == first) {
                self.err(
                    &path,
                    "needs at least two bands with different scores, otherwise the answer \
                     cannot change the score",
                );
            }
        }
        QuestionKind::Number {
            min,
            max,
            integer,
            unit,
            bands,
        }
    }

    fn max_length(&mut self, f: &Fields) -> u32 {
        let Some(node) = f.present("max_length") else {
            return DEFAULT_TEXT_MAX_LENGTH;
        };
        match node.as_i64() {
            Some(n) if (1..=MAX_TEXT_ANSWER_LENGTH).contains(&n) => {
                u32::try_from(n).unwrap_or(DEFAULT_TEXT_MAX_LENGTH)
            }
            _ => {
                self.err(
                    &f.at("max_length"),
                    format!("must be a whole number from 1 to {MAX_TEXT_ANSWER_LENGTH}"),
                );
                DEFAULT_TEXT_MAX_LENGTH
            }
        }
    }
}
