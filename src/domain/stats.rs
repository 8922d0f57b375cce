//! Summary statistics for group benchmarks (an ICB, a region, a setting nationally).
//!
//! The format says group scores are the plain mean of member scores, shown with the member
//! count, median and quartiles, and that the method is shown beside the figure. The method
//! is fixed here so every report states the same thing:
//!
//! - Values that are not finite numbers (NaN, infinities) are left out; `count` is the
//!   number of values used.
//! - `mean` is the plain arithmetic mean, summed in ascending order so the result does not
//!   depend on the order the members were listed in.
//! - Quartiles and the median use linear interpolation between order statistics, the
//!   "type 7" method of Hyndman and Fan, as used by R's `quantile()` default and Excel's
//!   `QUARTILE.INC`: for sorted values `x[0..n]` and proportion `p`, with `h = (n - 1) * p`,
//!   the quantile is `x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`.

use serde::Serialize;

/// A group's statistics; see the module documentation for the method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStats {
    pub count: usize,
    pub mean: f64,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub min: f64,
    pub max: f64,
}

/// A one-line description of the method, to show beside group figures.
pub const METHOD: &str = "Mean of member scores; median and quartiles by linear \
    interpolation between ranked scores (R type 7, Excel QUARTILE.INC).";

/// Summarises the finite values; `None` when there are none.
pub fn summarise(values: &[f64]) -> Option<GroupStats> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let sum = sorted.iter().sum::<f64>();
    from_order_statistics(sorted.len(), sum, |i| sorted.get(i).copied())
}

/// The ranks (0-based, ascending) of the values [`from_order_statistics`] reads: the least,
/// the greatest, and the two either side of each quartile. The database computes group
/// figures by returning only the values at these ranks (`reports::group_figures`), so the
/// method lives here once.
pub fn ranks_read(count: usize) -> [usize; 8] {
    let last = count.saturating_sub(1);
    [
        0,
        last,
        last / 4,
        last / 4 + 1,
        last / 2,
        last / 2 + 1,
        3 * last / 4,
        3 * last / 4 + 1,
    ]
}

/// The summary of `count` finite values summing (in ascending order) to `sum`, where `at(i)`
/// is the value of rank `i` for every rank [`ranks_read`] names; `None` when `count` is 0.
pub fn from_order_statistics(
    count: usize,
    sum: f64,
    at: impl Fn(usize) -> Option<f64>,
) -> Option<GroupStats> {
    let last = count.checked_sub(1)?;
    Some(GroupStats {
        count,
        mean: sum / count as f64,
        median: quantile(count, 0.5, &at)?,
        q1: quantile(count, 0.25, &at)?,
        q3: quantile(count, 0.75, &at)?,
        min: at(0)?,
        max: at(last)?,
    })
}

/// The type 7 quantile of `count` (at least one) sorted values read through `at`.
fn quantile(count: usize, p: f64, at: &impl Fn(usize) -> Option<f64>) -> Option<f64> {
    let h = (count.checked_sub(1)? as f64) * p;
    let lower = h.floor();
    let low = at(lower as usize)?;
    let high = if lower as usize + 1 < count {
        at(lower as usize + 1)?
    } else {
        low
    };
    Some(low + (h - lower) * (high - low))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_and_nan_only() {
        assert_eq!(summarise(&[]), None);
        assert_eq!(summarise(&[f64::NAN, f64::INFINITY]), None);
    }

    #[test]
    fn single_value() {
        let s = summarise(&[3.5]).unwrap();
        assert_eq!(
            (s.count, s.mean, s.median, s.q1, s.q3),
            (1, 3.5, 3.5, 3.5, 3.5)
        );
    }

    #[test]
    fn matches_r_type_7() {
        // R: quantile(c(1, 2, 3, 4), type = 7) -> 1.75, 2.5, 3.25
        let s = summarise(&[4.0, 1.0, f64::NAN, 3.0, 2.0]).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.mean, 2.5);
        assert_eq!((s.q1, s.median, s.q3), (1.75, 2.5, 3.25));
        assert_eq!((s.min, s.max), (1.0, 4.0));
        // R: quantile(c(1, 3, 3, 5, 7, 9, 10), type = 7) -> 3, 5, 8
        let s = summarise(&[1.0, 3.0, 3.0, 5.0, 7.0, 9.0, 10.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (3.0, 5.0, 8.0));
        // Excel QUARTILE.INC({1,2,3,4,5,6}, 1) = 2.25, median 3.5, Q3 4.75
        let s = summarise(&[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (2.25, 3.5, 4.75));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn ordered_and_order_independent(mut values in prop::collection::vec(-1e6f64..1e6, 1..40)) {
            let s = summarise(&values).unwrap();
            prop_assert!(s.min <= s.q1 && s.q1 <= s.median && s.median <= s.q3 && s.q3 <= s.max);
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
            values.reverse();
            prop_assert_eq!(summarise(&values).unwrap(), s);
        }

        /// Reading only the ranks `ranks_read` names gives the full summary.
        #[test]
        fn the_ranks_read_suffice(mut values in prop::collection::vec(-1e6f64..1e6, 1..60)) {
            values.sort_by(f64::total_cmp);
            let full = summarise(&values).unwrap();
            let ranks = ranks_read(values.len());
            let sum: f64 = values.iter().sum();
            let picked = from_order_statistics(values.len(), sum, |i| {
                ranks.contains(&i).then(|| values.get(i).copied()).flatten()
            });
            prop_assert_eq!(picked, Some(full));
        }
    }
}
