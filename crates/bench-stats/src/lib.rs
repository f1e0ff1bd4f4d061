//! The summary statistics every benchmark reports (not published): rounds
//! on a shared, noisy machine are summed up as their median with the
//! smallest and largest round.
//!
//! A crate of its own with no dependencies, so that a bench needing only
//! these few functions (table-arrow's) does not build the test harness's
//! certificates and nkeys; `natsbridge_test_support::stats` re-exports it.
//!
//! ```
//! use natsbridge_bench_stats::{Stats, stats};
//! assert_eq!(stats(vec![3.0, 1.0, 2.0]), Stats { median: 2.0, min: 1.0, max: 3.0 });
//! ```
#![deny(missing_docs)]

/// The median of `v` (the upper one for an even count); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The `p`-quantile of `v` (0.0 to 1.0, nearest rank); sorts `v`.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Median, smallest and largest of a set of rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// The median round.
    pub median: f64,
    /// The smallest round.
    pub min: f64,
    /// The largest round.
    pub max: f64,
}

/// The [`Stats`] of `rounds` (at least one).
pub fn stats(mut rounds: Vec<f64>) -> Stats {
    let median = median(&mut rounds);
    Stats { median, min: rounds[0], max: rounds[rounds.len() - 1] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_of_unsorted_rounds() {
        assert_eq!(stats(vec![3.0, 1.0, 2.0]), Stats { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
    }
}
