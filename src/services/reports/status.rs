//! Reporting status: the one place that says whether an assessment is not started, in
//! progress, submitted, late or (its cycle closed before it was submitted) not submitted, in Rust ([`ReportStatus::of`]) and in SQL (`status_sql`), so
//! that counts, filters and sorting agree.

use chrono::NaiveDate;
use serde::Serialize;

/// Where an assessment stands for reporting; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    NotStarted,
    InProgress,
    Submitted,
    Late,
    /// Its cycle was closed before it was submitted: final, never counted in figures.
    NotSubmitted,
}

impl ReportStatus {
    pub const ALL: [ReportStatus; 5] = [
        ReportStatus::NotStarted,
        ReportStatus::InProgress,
        ReportStatus::Submitted,
        ReportStatus::Late,
        ReportStatus::NotSubmitted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::NotStarted => "not_started",
            ReportStatus::InProgress => "in_progress",
            ReportStatus::Submitted => "submitted",
            ReportStatus::Late => "late",
            ReportStatus::NotSubmitted => "not_submitted",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ReportStatus::NotStarted => "Not started",
            ReportStatus::InProgress => "In progress",
            ReportStatus::Submitted => "Submitted",
            ReportStatus::Late => "Late",
            ReportStatus::NotSubmitted => "Not submitted",
        }
    }

    /// The tag colour the pages use.
    pub fn colour(self) -> &'static str {
        match self {
            ReportStatus::NotStarted => "grey",
            ReportStatus::InProgress => "blue",
            ReportStatus::Submitted => "green",
            ReportStatus::Late => "red",
            ReportStatus::NotSubmitted => "purple",
        }
    }

    pub fn parse(s: &str) -> Option<ReportStatus> {
        ReportStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The reporting status of an assessment with database `status`, in a cycle that is
    /// `closed` or not, whose current submission (if any) was `submitted_late`, due on
    /// `deadline`, seen on `today`.
    pub fn of(
        status: &str,
        closed: bool,
        submitted_late: Option<bool>,
        deadline: NaiveDate,
        today: NaiveDate,
    ) -> ReportStatus {
        if status == "submitted" {
            if submitted_late == Some(true) {
                ReportStatus::Late
            } else {
                ReportStatus::Submitted
            }
        } else if closed {
            ReportStatus::NotSubmitted
        } else if today > deadline {
            ReportStatus::Late
        } else if status == "not_started" {
            ReportStatus::NotStarted
        } else {
            ReportStatus::InProgress
        }
    }

    /// Whether the assessment's current scores count in figures.
    pub fn is_submitted(self) -> bool {
        matches!(self, ReportStatus::Submitted | ReportStatus::Late)
    }

    /// The status's place in the list's order, as [`status_sql`] computes it.
    pub(super) fn rank(self) -> i32 {
        match self {
            ReportStatus::NotStarted => 0,
            ReportStatus::InProgress => 1,
            ReportStatus::Submitted => 2,
            ReportStatus::Late => 3,
            ReportStatus::NotSubmitted => 4,
        }
    }
}

/// [`ReportStatus::of`] in SQL, as the status's [`ReportStatus::rank`], for queries that join
/// `cycles` and the current score set's `submissions` row; so the list can be filtered,
/// sorted and paged by the database. (`today` is a date the server made, not input, so it is
/// written into the statement; both backends compare `'YYYY-MM-DD'` with a date column.)
/// A test holds the two to the same answer for every seeded assessment.
pub(super) fn status_sql(today: NaiveDate) -> String {
    format!(
        "(CASE WHEN assessments.status = 'submitted' \
           THEN (CASE WHEN submissions.late THEN 3 ELSE 2 END) \
         WHEN assessments.closed_at IS NOT NULL THEN 4 \
         WHEN COALESCE(assessments.deadline_override, cycles.deadline) < '{}' THEN 3 \
         WHEN assessments.status = 'not_started' THEN 0 ELSE 1 END)",
        today.format("%Y-%m-%d")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn status_is_one_of_four_and_late_covers_both_kinds() {
        let d = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let before = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let after = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
        assert_eq!(
            ReportStatus::of("not_started", false, None, d, before),
            ReportStatus::NotStarted
        );
        assert_eq!(
            ReportStatus::of("reopened", false, None, d, before),
            ReportStatus::InProgress
        );
        assert_eq!(
            ReportStatus::of("in_progress", false, None, d, after),
            ReportStatus::Late
        );
        assert_eq!(
            ReportStatus::of("submitted", false, Some(false), d, after),
            ReportStatus::Submitted
        );
        assert_eq!(
            ReportStatus::of("submitted", false, Some(true), d, before),
            ReportStatus::Late
        );
        // A closed cycle: what was not submitted is final, before or after the deadline.
        assert_eq!(
            ReportStatus::of("in_progress", true, None, d, before),
            ReportStatus::NotSubmitted
        );
        assert_eq!(
            ReportStatus::of("not_started", true, None, d, after),
            ReportStatus::NotSubmitted
        );
        assert_eq!(
            ReportStatus::of("submitted", true, Some(false), d, after),
            ReportStatus::Submitted
        );
    }
}
