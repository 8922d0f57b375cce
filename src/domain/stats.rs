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
    let min = *sorted.first()?;
    let max = *sorted.last()?;
    let count = sorted.len();
    let mean = sorted.iter().sum::<f64>() / count as f64;
    Some(GroupStats {
        count,
        mean,
        median: quantile(&sorted, 0.5)?,
        q1: quantile(&sorted, 0.25)?,
        q3: quantile(&sorted, 0.75)?,
        min,
        max,
    })
}

/// The type 7 quantile of sorted, non-empty values.
fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    let h = (sorted.len().checked_sub(1)? as f64) * p;
    let lower = h.floor();
    let low = *sorted.get(lower as usize)?;
    let high = sorted.get(lower as usize + 1).copied().unwrap_or(low);
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
    }
}
