//! Reading a DDSketch: quantiles clamped to the exact min/max, and log-spaced histograms.

use sketches_ddsketch::DDSketch;

use crate::model::ops::HistogramBin;

/// Number of bars of a histogram whose samples are not all equal.
pub(super) const HISTOGRAM_BINS: usize = 30;

/// The `quantile` (0.0..=1.0) of a non-empty sketch, clamped into `[min_ms, max_ms]`.
///
/// The sketch answers with the representative value of the bin holding the sample of rank
/// `floor(quantile * (count - 1))` (0-based, ascending), within 1 % of that sample.
pub(super) fn quantile_ms(sketch: &DDSketch, quantile: f64, min_ms: f64, max_ms: f64) -> f64 {
    let q = if quantile.is_nan() { 0.5 } else { quantile.clamp(0.0, 1.0) };
    sketch.quantile(q).ok().flatten().unwrap_or(min_ms).max(min_ms).min(max_ms)
}

/// The approximate value of the sample of 0-based rank `rank` among `count` (> 1) samples.
fn value_at_rank(sketch: &DDSketch, rank: u64, count: u64) -> f64 {
    // The sketch takes rank floor(q * (count - 1)); aim at the middle of the step.
    let q = ((rank as f64 + 0.5) / (count - 1) as f64).min(1.0);
    sketch.quantile(q).ok().flatten().unwrap_or(0.0)
}

/// How many samples (approximately, through the sketch's 1 % bins) are below `x`.
fn count_below(sketch: &DDSketch, x: f64, count: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if value_at_rank(sketch, mid, count) < x {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Log-spaced bars covering `[min_ms, max_ms]`; their counts add up to the sketch's count.
/// Each bar holds `lower_ms <= d < upper_ms`, except the last, which also holds `max_ms`.
/// When `min_ms` is 0 the first bar runs from 0 to the first log-spaced edge above
/// `max_ms * 1e-6`. All samples equal: one bar with `lower_ms == upper_ms`.
pub(super) fn histogram(sketch: &DDSketch, min_ms: f64, max_ms: f64) -> Vec<HistogramBin> {
    let count = sketch.count() as u64;
    if count == 0 {
        return Vec::new();
    }
    if count == 1 || max_ms <= min_ms {
        return vec![HistogramBin { lower_ms: min_ms, upper_ms: max_ms, count }];
    }
    let floor_ms = if min_ms > 0.0 { min_ms } else { max_ms * 1e-6 };
    let ratio = max_ms / floor_ms;
    let edges: Vec<f64> = (0..=HISTOGRAM_BINS)
        .map(|i| match i {
            0 => min_ms,
            HISTOGRAM_BINS => max_ms,
            _ => floor_ms * ratio.powf(i as f64 / HISTOGRAM_BINS as f64),
        })
        .collect();
    let below: Vec<u64> = edges
        .iter()
        .enumerate()
        .map(|(i, &edge)| match i {
            0 => 0,
            HISTOGRAM_BINS => count,
            _ => count_below(sketch, edge, count),
        })
        .collect();
    edges
        .windows(2)
        .zip(below.windows(2))
        .map(|(e, b)| HistogramBin {
            lower_ms: e[0],
            upper_ms: e[1],
            count: b[1].saturating_sub(b[0]),
        })
        .collect()
}
