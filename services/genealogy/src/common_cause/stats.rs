//! The statistics of one candidate cause: its 2×2 table of failed and baseline units that
//! have it or not, the one-sided Fisher exact test of whether failed units have it more
//! often than chance allows, the relative risk of failing with it (Katz's log interval),
//! and Benjamini–Hochberg q-values across all candidates of an analysis.
//!
//! The hypergeometric tail and the normal quantile come from `statrs`; the rest is the
//! textbook arithmetic, small enough to read against its formula.

use statrs::distribution::{ContinuousCDF, DiscreteCDF, Hypergeometric, Normal};

/// Units counted by whether they failed and whether they have the candidate attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub failed_with: u64,
    pub failed_without: u64,
    pub baseline_with: u64,
    pub baseline_without: u64,
}

/// A relative risk and its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativeRisk {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Table {
    fn failed(&self) -> u64 {
        self.failed_with + self.failed_without
    }

    fn with(&self) -> u64 {
        self.failed_with + self.baseline_with
    }

    fn units(&self) -> u64 {
        self.failed() + self.baseline_with + self.baseline_without
    }

    /// One-sided Fisher exact p-value: the chance, with every margin fixed, that at least
    /// `failed_with` of the failed units have the attribute if it has nothing to do with
    /// failing (the upper tail of the hypergeometric distribution).
    pub fn fisher_greater(&self) -> f64 {
        if self.failed_with == 0 {
            return 1.0;
        }
        Hypergeometric::new(self.units(), self.with(), self.failed())
            .map_or(1.0, |tail| tail.sf(self.failed_with - 1).clamp(0.0, 1.0))
    }

    /// How many times likelier a unit with the attribute failed than one without, with
    /// its `confidence` interval (Katz's log method). A table with an empty cell gets ½
    /// added to every cell (Haldane), so that the estimate stays finite.
    pub fn relative_risk(&self, confidence: f64) -> RelativeRisk {
        let cells = [
            self.failed_with,
            self.failed_without,
            self.baseline_with,
            self.baseline_without,
        ];
        let correction = if cells.contains(&0) { 0.5 } else { 0.0 };
        let [a, b, c, d] = cells.map(|cell| cell as f64 + correction);
        let estimate = (a / (a + c)) / (b / (b + d));
        let standard_error = (1.0 / a - 1.0 / (a + c) + 1.0 / b - 1.0 / (b + d)).sqrt();
        let z = standard_normal_quantile(0.5 + confidence / 2.0);
        RelativeRisk {
            estimate,
            low: (estimate.ln() - z * standard_error).exp(),
            high: (estimate.ln() + z * standard_error).exp(),
        }
    }
}

fn standard_normal_quantile(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the order of `p_values`: the least
/// false discovery rate at which each would be called significant among all of them.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let count = p_values.len();
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by(|&x, &y| p_values[x].total_cmp(&p_values[y]));
    let mut q_values = vec![1.0; count];
    let mut smallest_above = 1.0_f64;
    for (rank, &index) in order.iter().enumerate().rev() {
        let p = p_values[index];
        // Never below p itself, which rounding could otherwise make it.
        let scaled = (p * count as f64 / (rank + 1) as f64).max(p);
        smallest_above = smallest_above.min(scaled);
        q_values[index] = smallest_above;
    }
    q_values
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(a: u64, b: u64, c: u64, d: u64) -> Table {
        Table {
            failed_with: a,
            failed_without: b,
            baseline_with: c,
            baseline_without: d,
        }
    }

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance * expected.abs().max(1e-300)
    }

    #[test]
    fn fisher_matches_the_lady_tasting_tea() {
        // Fisher's own example: 3 of 4 cups right; (C(4,3)·C(4,1) + C(4,4)) / C(8,4).
        let p = table(3, 1, 1, 3).fisher_greater();
        assert!(close(p, 17.0 / 70.0, 1e-9), "{p}");
    }

    #[test]
    fn fisher_matches_exact_arithmetic_on_a_lopsided_table() {
        // Σ_{i≥12} C(52,i)·C(948,15-i) / C(1000,15), in Python's exact integers.
        let p = table(12, 3, 40, 945).fisher_greater();
        assert!(close(p, 4.286_758_632_985_376e-14, 1e-6), "{p}");
    }

    #[test]
    fn fisher_of_nothing_shared_is_one() {
        assert_eq!(table(0, 10, 5, 100).fisher_greater(), 1.0);
    }

    #[test]
    fn relative_risk_follows_katz() {
        // risk with 20/30, without 80/970; se = sqrt(1/20 - 1/30 + 1/80 - 1/970).
        let risk = table(20, 80, 10, 890).relative_risk(0.95);
        let estimate = (20.0 / 30.0) / (80.0 / 970.0);
        let se = (1.0_f64 / 20.0 - 1.0 / 30.0 + 1.0 / 80.0 - 1.0 / 970.0).sqrt();
        assert!(close(risk.estimate, estimate, 1e-12));
        assert!(close(
            risk.low,
            (estimate.ln() - 1.959_963_984_540_054 * se).exp(),
            1e-9
        ));
        assert!(close(
            risk.high,
            (estimate.ln() + 1.959_963_984_540_054 * se).exp(),
            1e-9
        ));
    }

    #[test]
    fn relative_risk_of_an_empty_cell_stays_finite() {
        let risk = table(5, 0, 0, 100).relative_risk(0.95);
        assert!(risk.estimate.is_finite() && risk.low.is_finite() && risk.high.is_finite());
        assert!(risk.low > 1.0, "{risk:?}");
    }

    #[test]
    fn benjamini_hochberg_by_hand() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.02, 0.04, 0.04, 0.02];
        for (q, expected) in q.iter().zip(expected) {
            assert!(close(*q, expected, 1e-12), "{q} vs {expected}");
        }
    }

    proptest! {
        #[test]
        fn q_values_bound_p_values_and_keep_their_order(
            p_values in proptest::collection::vec(0.0f64..=1.0, 1..60)
        ) {
            let q = benjamini_hochberg(&p_values);
            for (i, (&p, &q_i)) in p_values.iter().zip(&q).enumerate() {
                prop_assert!(q_i >= p && q_i <= 1.0);
                for (j, &p_j) in p_values.iter().enumerate() {
                    if p_j > p {
                        prop_assert!(q[j] >= q_i, "{i} vs {j}");
                    }
                }
            }
        }

        #[test]
        fn fisher_is_a_probability(a in 0u64..40, b in 0u64..40, c in 0u64..200, d in 0u64..200) {
            let p = table(a, b, c, d).fisher_greater();
            prop_assert!((0.0..=1.0).contains(&p));
        }
    }
}
