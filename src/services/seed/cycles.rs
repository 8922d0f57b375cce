//! The cycles to seed, planned in memory from the day it runs: a year apart, the last one
//! open, so reports always have a current cycle and several years behind it.

use chrono::{Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// One cycle as it will be written.
#[derive(Debug, Clone)]
pub(super) struct CyclePlan {
    pub(super) label: String,
    pub(super) opens_on: NaiveDate,
    pub(super) deadline: NaiveDate,
    pub(super) open: bool,
    /// The day organisations that move ICB before this cycle join their new ICB.
    pub(super) moves_on: NaiveDate,
    /// The last moment anything in the cycle happened (now, for the open cycle).
    pub(super) ends_at: NaiveDateTime,
}

/// The financial year a date falls in, as a cycle label: 2026-10-24 -> "2026/27".
fn financial_year(d: NaiveDate) -> (i32, String) {
    let start = if d.month() >= 4 {
        d.year()
    } else {
        d.year() - 1
    };
    (start, format!("{start}/{:02}", (start + 1).rem_euclid(100)))
}

pub(super) fn at(d: NaiveDate, hour: u32) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN))
}

/// K cycles a year apart; the last opened 30 days ago and is due in 60 days, the others are
/// closed with their 90-day deadlines in the past.
pub(super) fn plan_cycles(today: NaiveDate, k: usize) -> Vec<CyclePlan> {
    let last_opens = today - Days::new(30);
    (0..k)
        .map(|c| {
            let years_back = u32::try_from(k - 1 - c).unwrap_or(0);
            let opens_on = last_opens
                .checked_sub_months(Months::new(12 * years_back))
                .unwrap_or(last_opens);
            let open = c + 1 == k;
            let deadline = if open {
                today + Days::new(60)
            } else {
                opens_on + Days::new(90)
            };
            let (start_year, label) = financial_year(opens_on);
            let moves_on = NaiveDate::from_ymd_opt(start_year, 4, 1).unwrap_or(opens_on);
            CyclePlan {
                label,
                opens_on,
                deadline,
                open,
                moves_on,
                ends_at: if open {
                    Utc::now().naive_utc()
                } else {
                    at(deadline + Days::new(14), 17)
                },
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_a_year_apart_and_only_the_last_is_open() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let plans = plan_cycles(today, 3);
        let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2024/25", "2025/26", "2026/27"]);
        assert_eq!(
            plans[2].opens_on,
            NaiveDate::from_ymd_opt(2026, 10, 24).unwrap()
        );
        assert_eq!(
            plans[2].deadline,
            NaiveDate::from_ymd_opt(2027, 1, 22).unwrap()
        );
        assert!(plans[2].open && !plans[0].open && !plans[1].open);
        assert!(plans[..2].iter().all(|p| p.deadline < today));
        for w in plans.windows(2) {
            assert!(w[0].opens_on < w[1].moves_on && w[1].moves_on <= w[1].opens_on);
        }
        let early = plan_cycles(NaiveDate::from_ymd_opt(2026, 4, 20).unwrap(), 1);
        assert_eq!(early[0].label, "2025/26");
        assert_eq!(plan_cycles(today, 10).len(), 10);
    }
}
