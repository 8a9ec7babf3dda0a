//! Reading sketch bins: window quantiles, uniform latency series and log-spaced histograms.

use super::series::{slot_start, Bucket};
use super::sketch::{value_of, Key, RankWalk, TopWalk, WindowBins};
use crate::model::ops::{HistogramBin, LatencyPoint};

/// Number of bars of a histogram whose samples are not all equal.
pub(super) const HISTOGRAM_BINS: usize = 30;

/// p50, p90, p95 and p99 of the samples binned in `bins` plus `delta` (see
/// [`WindowBins::for_each_with_rev`]), clamped into `[min_ms, max_ms]`. Walked from the top, so
/// the bins below the median are never read.
pub(super) fn summary_quantiles(
    bins: &WindowBins,
    delta: &[(Key, i64)],
    min_ms: f64,
    max_ms: f64,
) -> [f64; 4] {
    let all = wanted_quantiles(bins, delta, min_ms, max_ms, [true; 4]);
    all.map(|q| q.unwrap_or(min_ms))
}

/// The quantiles of [`summary_quantiles`] that `wanted` asks for; the walk stops at the
/// lowest of them (none asked: no walk).
pub(super) fn wanted_quantiles(
    bins: &WindowBins,
    delta: &[(Key, i64)],
    min_ms: f64,
    max_ms: f64,
    wanted: [bool; 4],
) -> [Option<f64>; 4] {
    let Some(lowest) = wanted.iter().position(|&w| w) else { return [None; 4] };
    let total = delta.iter().fold(bins.total(), |t, (_, d)| t.saturating_add_signed(*d));
    let mut walk = TopWalk::new(total, SUMMARY_QUANTILES).down_to(lowest);
    bins.for_each_with_rev(delta, |k, c| walk.feed(k, c));
    let values = walk.finish(min_ms, max_ms);
    std::array::from_fn(|i| wanted[i].then_some(values[i]))
}

/// p50, p90, p95, p99.
pub(super) const SUMMARY_QUANTILES: [f64; 4] = [0.50, 0.90, 0.95, 0.99];

/// One latency point per `width_secs` (> 0) slot aligned to a multiple of `width_secs` (Unix
/// seconds) that holds data, oldest first. A point merges the bins of every bucket whose start
/// lies in its slot, so its p50, p95 and p99 are nearest-rank quantiles of those samples
/// within the sketch's relative error, clamped into their exact min and max. A bucket wider
/// than `width_secs` counts wholly in the slot holding its start. Slots without samples get
/// no point. Allocates the result, one list of bucket references and one bin buffer.
pub(super) fn latency_series<'a>(
    buckets: impl Iterator<Item = &'a Bucket>,
    width_secs: u64,
) -> Vec<LatencyPoint> {
    let width_secs = width_secs.max(1);
    let mut slotted: Vec<(u64, &Bucket)> =
        buckets.filter(|b| b.count > 0).map(|b| (slot_start(b.start_sec, width_secs), b)).collect();
    // Buckets come oldest first, so this stable sort only checks the order.
    slotted.sort_by_key(|&(slot, _)| slot);
    let mut bins = WindowBins::default();
    let mut points = Vec::new();
    for group in slotted.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(slot_sec, _)) = group.first() else { continue };
        bins.clear();
        let (mut count, mut min_ms, mut max_ms) = (0u64, f64::INFINITY, f64::NEG_INFINITY);
        let mut errors = 0u64;
        for (_, b) in group {
            count = count.saturating_add(b.count);
            errors = errors.saturating_add(b.errors);
            min_ms = min_ms.min(b.min_ms);
            max_ms = max_ms.max(b.max_ms);
            bins.add_bucket(&b.bins);
        }
        let mut walk = RankWalk::new(bins.total(), [0.50, 0.95, 0.99]);
        bins.for_each(|k, c| walk.feed(k, c));
        let [p50_ms, p95_ms, p99_ms] = walk.finish(min_ms, max_ms);
        points.push(LatencyPoint {
            at_ms: slot_sec.saturating_mul(1000),
            bucket_secs: width_secs,
            count,
            errors,
            p50_ms,
            p95_ms,
            p99_ms,
        });
    }
    points
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
