//! Reading sketch bins: window quantiles and log-spaced histograms.

use super::sketch::{value_of, RankWalk, WindowBins};
use crate::model::ops::HistogramBin;

/// Number of bars of a histogram whose samples are not all equal.
pub(super) const HISTOGRAM_BINS: usize = 30;

/// p50, p90, p95 and p99 of `count` samples binned in `bins`, clamped into `[min_ms, max_ms]`.
pub(super) fn summary_quantiles(bins: &WindowBins, min_ms: f64, max_ms: f64) -> [f64; 4] {
    let mut walk = RankWalk::new(bins.total(), [0.50, 0.90, 0.95, 0.99]);
    bins.for_each(|k, c| walk.feed(k, c));
    walk.finish(min_ms, max_ms)
}

/// Log-spaced bars covering `[min_ms, max_ms]`; their counts add up to the samples in `bins`.
/// A bar holds `lower_ms <= d < upper_ms` (the last one also `max_ms`), judged by each sketch
/// bin's value, so a sample may land one bar off when within 1 % of an edge. When `min_ms`
/// is 0 the first bar runs from 0 up to the first log-spaced edge above `max_ms * 1e-6`.
/// All samples equal: one bar with `lower_ms == upper_ms`.
pub(super) fn histogram(bins: &WindowBins, min_ms: f64, max_ms: f64) -> Vec<HistogramBin> {
    let count = bins.total();
    if count == 0 {
        return Vec::new();
    }
    if max_ms <= min_ms {
        return vec![HistogramBin { lower_ms: min_ms, upper_ms: max_ms, count }];
    }
    let floor_ms = if min_ms > 0.0 { min_ms } else { max_ms * 1e-6 };
    let log_span = (max_ms / floor_ms).ln();
    let mut bars: Vec<HistogramBin> = (0..HISTOGRAM_BINS)
        .map(|i| HistogramBin {
            lower_ms: edge(i, min_ms, floor_ms, max_ms, log_span),
            upper_ms: edge(i + 1, min_ms, floor_ms, max_ms, log_span),
            count: 0,
        })
        .collect();
    bins.for_each(|key, c| {
        let v = value_of(key).max(min_ms).min(max_ms);
        let pos = if v > floor_ms { (v / floor_ms).ln() / log_span } else { 0.0 };
        let mut i = ((pos * HISTOGRAM_BINS as f64) as usize).min(HISTOGRAM_BINS - 1);
        // Settle float disagreements with the edges as written.
        while i > 0 && bars.get(i).is_some_and(|b| v < b.lower_ms) {
            i -= 1;
        }
        while i + 1 < HISTOGRAM_BINS && bars.get(i).is_some_and(|b| v >= b.upper_ms) {
            i += 1;
        }
        if let Some(bar) = bars.get_mut(i) {
            bar.count = bar.count.saturating_add(c);
        }
    });
    bars
}

/// Edge `i` of `HISTOGRAM_BINS + 1`: the first is `min_ms`, the last `max_ms`.
fn edge(i: usize, min_ms: f64, floor_ms: f64, max_ms: f64, log_span: f64) -> f64 {
    match i {
        0 => min_ms,
        HISTOGRAM_BINS => max_ms,
        _ => floor_ms * (log_span * i as f64 / HISTOGRAM_BINS as f64).exp(),
    }
}
