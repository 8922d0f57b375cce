//! Lookups derived from a question set once, when it is built, so that scoring an
//! assessment never searches by key: the questions sorted by key, and where each question a
//! `show_if` condition names sits in the document.
//!
//! The index is a cache, never a source of truth. The model's fields are public and a model
//! can be changed after it is built (tests do), so every use checks the index against the
//! model as it goes: the shape of the domains once per use, the key order with comparisons
//! it mostly makes anyway, and a recorded position with one key comparison. A stale or
//! missing index ([`QuestionIndex::default`]) only makes that use slower, as
//! [`crate::domain::visibility`] then indexes the model for the one call; results never
//! depend on whether the index was up to date.

use std::fmt;

use super::{Domain, Question};

/// Where a question is: its domain's index and its index within the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub domain: usize,
    pub question: usize,
}

/// Lookups for one question set, built by [`QuestionIndex::new`] from its domains.
#[derive(Clone, Default)]
pub struct QuestionIndex {
    /// The document position (the order of [`super::Questionnaire::questions`]) of each
    /// domain's first question, then the number of questions.
    starts: Vec<usize>,
    /// Every question, sorted by key; questions sharing a key (which the loader refuses) in
    /// document order.
    by_key: Vec<Place>,
    /// For every question a condition names, in the order conditions are evaluated
    /// (questions in document order, each condition's references in the order of
    /// [`super::Condition::questions`]), the last question with that key, if any.
    references: Vec<Option<Place>>,
}

impl QuestionIndex {
    /// The index of a question set with these domains.
    pub fn new(domains: &[Domain]) -> Self {
        let mut starts = Vec::with_capacity(domains.len() + 1);
        let mut by_key = Vec::new();
        let mut total = 0;
        for (d, domain) in domains.iter().enumerate() {
            starts.push(total);
            total += domain.questions.len();
            by_key.extend((0..domain.questions.len()).map(|question| Place {
                domain: d,
                question,
            }));
        }
        starts.push(total);
        // A stable sort, so questions sharing a key stay in document order.
        by_key.sort_by(|a, b| key_at(domains, *a).cmp(key_at(domains, *b)));
        let references = domains
            .iter()
            .flat_map(|d| &d.questions)
            .filter_map(|q| q.show_if.as_ref())
            .flat_map(|c| c.questions())
            .map(|key| last_with_key(domains, &by_key, key))
            .collect();
        QuestionIndex {
            starts,
            by_key,
            references,
        }
    }

    /// A view of the index for `domains`, when it was built for domains of their shape (the
    /// same number of questions in each); the keys are checked by the user.
    pub(crate) fn fitting<'i>(&'i self, domains: &[Domain]) -> Option<Fitted<'i>> {
        let fits = self.starts.len() == domains.len() + 1
            && self.starts.first() == Some(&0)
            && self
                .starts
                .windows(2)
                .zip(domains)
                .all(|(w, d)| w[1].checked_sub(w[0]) == Some(d.questions.len()));
        let total = self.starts.last().copied().unwrap_or(0);
        (fits && self.by_key.len() == total).then_some(Fitted { index: self })
    }

    /// A view of an index just built by [`QuestionIndex::new`], for the domains it was built
    /// from.
    pub(crate) fn fresh(&self) -> Fitted<'_> {
        Fitted { index: self }
    }
}

/// An index whose shape fits the model it is used with: every [`Place`] in it names a
/// question of the model.
#[derive(Clone, Copy)]
pub(crate) struct Fitted<'i> {
    index: &'i QuestionIndex,
}

impl<'i> Fitted<'i> {
    /// Every question, sorted by key (when the keys have not changed since indexing).
    pub fn by_key(self) -> &'i [Place] {
        &self.index.by_key
    }

    /// The recorded place of the `n`th reference of the conditions, in evaluation order.
    pub fn reference(self, n: usize) -> Option<Place> {
        self.index.references.get(n).copied().flatten()
    }

    /// The document position of a question.
    pub fn position(self, place: Place) -> Option<usize> {
        Some(self.index.starts.get(place.domain)? + place.question)
    }
}

/// The question at a place; `None` for a place outside the domains.
pub(crate) fn question_at(domains: &[Domain], place: Place) -> Option<&Question> {
    domains.get(place.domain)?.questions.get(place.question)
}

fn key_at(domains: &[Domain], place: Place) -> &str {
    question_at(domains, place).map_or("", |q| q.key.as_str())
}

/// The last place in `by_key` (sorted by key) of a question with this key.
pub(crate) fn last_with_key(domains: &[Domain], by_key: &[Place], key: &str) -> Option<Place> {
    let after = by_key.partition_point(|p| key_at(domains, *p) <= key);
    let last = *by_key.get(after.checked_sub(1)?)?;
    (key_at(domains, last) == key).then_some(last)
}

/// Derived data takes no part in equality: two models with the same content are equal
/// whether or not either has been indexed.
impl PartialEq for QuestionIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for QuestionIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuestionIndex")
            .field("questions", &self.by_key.len())
            .finish_non_exhaustive()
    }
}
