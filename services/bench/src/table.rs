//! The one-row Markdown tables the load benchmarks print, so results paste straight
//! into `BENCHMARKS.md` with the same columns run after run.

use hdrhistogram::Histogram;

/// Prints `header`, the alignment line (first column left, figures right) and `row`.
pub fn print(header: &[&str], row: &[String]) {
    println!("| {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(header.len().saturating_sub(1)));
    println!("| {} |", row.join(" | "));
}

/// Milliseconds at `quantile` of a histogram of microseconds, to a tenth.
pub fn ms(histogram: &Histogram<u64>, quantile: f64) -> String {
    format!(
        "{:.1}",
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    )
}

/// `count` per second of `elapsed_seconds`, whole.
pub fn per_second(count: usize, elapsed_seconds: f64) -> String {
    format!("{:.0}", count as f64 / elapsed_seconds)
}
