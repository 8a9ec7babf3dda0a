//! Before/after comparison of an operation's latency quantiles with a stated significance: the
//! statistics behind a report's "what did our optimisation gain?" table. Pure code: no clocks,
//! no I/O, no allocation beyond the per-call working copies.
//!
//! # Method
//! Requests within one second are not independent (they share a GC pause, a cold cache, a
//! noisy neighbour), so the unit of replication is a time window: the caller passes one
//! [`WindowQuantiles`] per window of each side, read from a DDSketch, plus each side's
//! overall quantiles (from the merged sketch of all its windows) as the point estimates.
//! Windows are of one width on both sides (a wider window's quantiles vary less, so mixed
//! widths would read as a change), and cover each side's whole range: at most
//! [`MAX_WINDOWS`] a side, so long ranges get windows wider than a minute.
//!
//! * **Usable windows.** A window enters the test of a quantile only if it holds at least
//!   [`MIN_SAMPLES_P50`] / [`MIN_SAMPLES_P95`] / [`MIN_SAMPLES_P99`] samples (5 / 20 / 100):
//!   a nearest-rank quantile `q` of `n` samples is the window's maximum while `n·(1−q) < 1`,
//!   so the rule is "at least one sample above the quantile's rank, and never fewer than 5".
//!   Windows with a non-finite or negative value are skipped. With fewer than
//!   [`MIN_WINDOWS`] usable windows on either side the verdict is
//!   [`Verdict::NeedMoreData`] and neither p-value nor interval is stated.
//! * **Test.** Two-sided Mann–Whitney U on the per-window values, normal approximation with
//!   tie correction (average ranks; variance `m·n/12·((N+1) − Σ(t³−t)/(N(N−1)))`) and
//!   continuity correction (`|U − m·n/2| − 0.5`). With at least 8 windows a side and no ties
//!   the approximation is within 0.006 of the exact p-value for exact p in 0.005..0.2, and
//!   slightly above it near 0.05 (checked for 8+8, 10+10 and 8+20 windows). The normal tail
//!   uses the Numerical Recipes `erfcc` Chebyshev fit, relative error below 1.2e-7 for all x.
//! * **Interval.** The Hodges–Lehmann shift (after − before) of the per-window values with its
//!   distribution-free 95 % interval: the k-th smallest and k-th largest of the `m·n` pairwise
//!   differences, `k = round(m·n/2 − 1.96·sqrt(m·n·(m+n+1)/12))` (normal approximation, no
//!   tie correction). Above [`MAX_INTERVAL_PAIRS`] differences, each side is thinned to every
//!   s-th of its sorted values (a systematic sample, deterministic) for the interval only. The
//!   interval in ms is stated in % of the before side's overall quantile.
//! * **Verdict.** A change is significant when p < [`SIGNIFICANCE`], the interval excludes 0 on
//!   the side of the point change, and `|change_pct|` reaches the floor
//!   `max(2·relative_error·100, noise_pct)`: twice the sketch's relative error (each side's
//!   quantile may be off by it, in opposite directions), and the before side's window noise
//!   `noise_pct = 1.96·√2·1.4826·MAD/median/sqrt(m)·100` of its `m` per-window values: the
//!   half-width of a 95 % band for the difference of two sides of `m` windows with that
//!   robust spread, so the point change itself must stand out of its own noise. (With the
//!   bare `1.4826·MAD/median/sqrt(m)` the floor hardly ever binds beyond the test: measured
//!   on identical log-normal sides, 40 windows of 200 samples, p95 was called changed in
//!   4.5 % of 2,000 trials; with the band, 3.1 %.) Lower latency is [`Verdict::Improved`],
//!   higher is [`Verdict::Regressed`]; anything else is [`Verdict::NoChange`].
//! * **Point estimate.** `change_pct` compares the overall quantiles; it is a different
//!   estimator from the interval's (per-window shift), so it may, rarely, fall outside it.
//!
//! No output field is ever NaN or infinite: a non-finite or negative overall quantile (or one
//! of a side with `count == 0`) reads as 0 ms, a before value of 0 gives no `change_pct` and
//! [`Verdict::NoChange`] (unless [`Verdict::NeedMoreData`]), and any percentage that would
//! not be finite is left out.

use std::f64::consts::SQRT_2;

use serde::{Deserialize, Serialize};

pub use crate::model::reports::{QuantileChange, Verdict};

/// Fewest usable windows a side needs before a quantile gets a p-value, an interval and a
/// verdict other than [`Verdict::NeedMoreData`].
pub const MIN_WINDOWS: usize = 8;

/// Fewest samples a window needs for its p50 to enter the test.
pub const MIN_SAMPLES_P50: u64 = 5;

/// Fewest samples a window needs for its p95 to enter the test (`n·0.05 ≥ 1`).
pub const MIN_SAMPLES_P95: u64 = 20;

/// Fewest samples a window needs for its p99 to enter the test (`n·0.01 ≥ 1`).
pub const MIN_SAMPLES_P99: u64 = 100;

/// Two-sided p-value below which a change may be called significant.
pub const SIGNIFICANCE: f64 = 0.05;

/// Most pairwise differences the interval computes; larger inputs are thinned (memory:
/// 8 bytes per difference, so at most 2 MB).
pub const MAX_INTERVAL_PAIRS: usize = 250_000;

/// Most windows a side is cut into: two days of minutes. Bounds the memory and the time of a
/// comparison; a longer range is cut into wider windows rather than left partly untested.
pub const MAX_WINDOWS: usize = 2_880;

/// One paragraph for the report page and exports: the method and its assumptions, with the
/// width of the windows used (`window_ms`), which depends on the ranges compared.
pub fn method(window_ms: u64) -> String {
    let width = if window_ms.is_multiple_of(60_000) {
        format!("{}-minute", window_ms / 60_000)
    } else {
        format!("{}-second", window_ms / 1000)
    };
    format!(
        "Each side is cut into {width} windows (one minute, widened in whole minutes when the \
         longer side would need more than {MAX_WINDOWS}; the same width on both sides), and the \
         window, not the single request, is the unit of replication, because requests close in \
         time are not independent. {METHOD_REST}"
    )
}

/// [`method`] after its first sentence.
const METHOD_REST: &str = "Per quantile, windows with too few samples for that quantile \
(fewer than 5 for p50, 20 for p95, 100 for p99) are left out; with fewer than 8 usable \
windows on either side the result is 'need more data'. The before and after figures are the \
quantiles of all samples of each side, read from sketches with the stated relative error. The \
p-value is a two-sided Mann-Whitney U test on the per-window quantiles (normal approximation \
with tie and continuity corrections). The 95 % interval is the Hodges-Lehmann shift of the \
per-window quantiles (distribution-free, from the pairwise differences; large inputs are \
thinned systematically), in percent of the before quantile. A change is reported as improved \
or regressed only when p < 0.05, the interval excludes zero, and the change is at least the \
floor: the larger of twice the sketch's relative error and the 95 % noise band of a \
difference between two sides with the before side's window-to-window spread (1.96 x sqrt(2) \
x 1.4826 x MAD / median / sqrt(windows)). Otherwise it is shown as '~' (no change shown).";

/// `Φ⁻¹(0.975)`: the normal quantile of a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// Scales a median absolute deviation to a normal standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;

/// One time window of one side: how many samples and their quantiles (ms).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowQuantiles {
    /// Samples recorded in the window.
    pub count: u64,
    /// Median latency of the window, ms.
    pub p50_ms: f64,
    /// 95th percentile latency of the window, ms.
    pub p95_ms: f64,
    /// 99th percentile latency of the window, ms.
    pub p99_ms: f64,
}

/// One side (before or after) of a comparison, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub struct Side<'a> {
    /// One entry per window (of one width on both sides), in any order.
    pub windows: &'a [WindowQuantiles],
    /// Median of all the side's samples (merged sketch), ms.
    pub p50_ms: f64,
    /// 95th percentile of all the side's samples, ms.
    pub p95_ms: f64,
    /// 99th percentile of all the side's samples, ms.
    pub p99_ms: f64,
    /// Samples of the whole side; 0 makes its overall quantiles read as 0 ms.
    pub count: u64,
}

/// The before/after comparison of p50, p95 and p99.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Median latency.
    pub p50: QuantileChange,
    /// 95th percentile latency.
    pub p95: QuantileChange,
    /// 99th percentile latency.
    pub p99: QuantileChange,
    /// Before windows holding samples with finite, non-negative quantiles.
    pub windows_before: usize,
    /// After windows holding samples with finite, non-negative quantiles.
    pub windows_after: usize,
}

/// Compares `before` with `after` for p50, p95 and p99 as described in the module docs.
/// `relative_error` is the sketches' relative accuracy as a fraction (0.01 for 1 %); a
/// non-finite or negative value counts as 0. Never panics; no output is NaN or infinite.
/// Allocates working copies of the window values, and at most [`MAX_INTERVAL_PAIRS`]
/// differences per quantile.
pub fn compare(before: &Side<'_>, after: &Side<'_>, relative_error: f64) -> Comparison {
    let sketch_floor_pct = sketch_floor_pct(relative_error);
    Comparison {
        p50: compare_quantile(Quantile::P50, before, after, sketch_floor_pct),
        p95: compare_quantile(Quantile::P95, before, after, sketch_floor_pct),
        p99: compare_quantile(Quantile::P99, before, after, sketch_floor_pct),
        windows_before: before.windows.iter().filter(|w| is_valid_window(w)).count(),
        windows_after: after.windows.iter().filter(|w| is_valid_window(w)).count(),
    }
}

/// Geometric mean of after/before ratios across operations, as a change in % (benchstat's
/// geomean row: a summary, not a test); None when no pair has both sides > 0.
/// Pairs are `(before, after)` in any common unit; pairs with a side that is not a finite
/// number above 0 are left out.
pub fn geomean_change_pct(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (sum, n) = pairs
        .into_iter()
        .filter(|&(b, a)| is_positive(b) && is_positive(a))
        .fold((0.0_f64, 0_u32), |(sum, n), (b, a)| (sum + (a.ln() - b.ln()), n.saturating_add(1)));
    if n == 0 {
        return None;
    }
    finite((sum / f64::from(n)).exp_m1() * 100.0)
}

/// The quantiles a comparison covers.
#[derive(Clone, Copy, Debug)]
enum Quantile {
    P50,
    P95,
    P99,
}

impl Quantile {
    /// Fewest samples a window needs for this quantile.
    fn min_samples(self) -> u64 {
        match self {
            Quantile::P50 => MIN_SAMPLES_P50,
            Quantile::P95 => MIN_SAMPLES_P95,
            Quantile::P99 => MIN_SAMPLES_P99,
        }
    }

    /// This quantile of one window, ms.
    fn of_window(self, w: &WindowQuantiles) -> f64 {
        match self {
            Quantile::P50 => w.p50_ms,
            Quantile::P95 => w.p95_ms,
            Quantile::P99 => w.p99_ms,
        }
    }

    /// This overall quantile of a side, ms: 0 when the side is empty or the value is not a
    /// finite number ≥ 0.
    fn of_side(self, s: &Side<'_>) -> f64 {
        let v = match self {
            Quantile::P50 => s.p50_ms,
            Quantile::P95 => s.p95_ms,
            Quantile::P99 => s.p99_ms,
        };
        if s.count > 0 && is_latency(v) {
            v
        } else {
            0.0
        }
    }
}

/// The comparison of one quantile; `sketch_floor_pct` is the floor due to the sketches.
fn compare_quantile(
    q: Quantile,
    before: &Side<'_>,
    after: &Side<'_>,
    sketch_floor_pct: f64,
) -> QuantileChange {
    let before_ms = q.of_side(before);
    let after_ms = q.of_side(after);
    let xs = usable_values(before.windows, q);
    let ys = usable_values(after.windows, q);
    let mut out = QuantileChange {
        before_ms,
        after_ms,
        change_pct: percent_of(after_ms - before_ms, before_ms),
        interval_pct: None,
        p_value: None,
        verdict: Verdict::NeedMoreData,
        windows_before: xs.len(),
        windows_after: ys.len(),
    };
    if xs.len() < MIN_WINDOWS || ys.len() < MIN_WINDOWS {
        return out;
    }
    let p_value = mann_whitney(&xs, &ys).p_value;
    out.p_value = Some(p_value);
    out.interval_pct = shift_interval(&xs, &ys)
        .and_then(|(lo, hi)| Some((percent_of(lo, before_ms)?, percent_of(hi, before_ms)?)));
    let floor_pct = noise_pct(&xs).map(|noise| noise.max(sketch_floor_pct));
    out.verdict = verdict(out.change_pct, p_value, out.interval_pct, floor_pct);
    out
}

/// The verdict from the point change, the p-value, the interval and the floor (all in %).
fn verdict(
    change_pct: Option<f64>,
    p_value: f64,
    interval_pct: Option<(f64, f64)>,
    floor_pct: Option<f64>,
) -> Verdict {
    let (Some(change), Some((lo, hi)), Some(floor)) = (change_pct, interval_pct, floor_pct) else {
        return Verdict::NoChange;
    };
    if p_value >= SIGNIFICANCE || change.abs() < floor {
        return Verdict::NoChange;
    }
    if change < 0.0 && hi < 0.0 {
        Verdict::Improved
    } else if change > 0.0 && lo > 0.0 {
        Verdict::Regressed
    } else {
        Verdict::NoChange
    }
}

/// `2·relative_error·100`, with a non-finite or negative `relative_error` read as 0.
fn sketch_floor_pct(relative_error: f64) -> f64 {
    if relative_error.is_finite() && relative_error > 0.0 {
        2.0 * relative_error * 100.0
    } else {
        0.0
    }
}

/// Whether a window holds samples and all its quantiles are finite numbers ≥ 0.
fn is_valid_window(w: &WindowQuantiles) -> bool {
    w.count > 0 && is_latency(w.p50_ms) && is_latency(w.p95_ms) && is_latency(w.p99_ms)
}

/// The values of quantile `q` of the windows usable for it, sorted ascending.
fn usable_values(windows: &[WindowQuantiles], q: Quantile) -> Vec<f64> {
    let mut values: Vec<f64> = windows
        .iter()
        .filter(|w| w.count >= q.min_samples())
        .map(|w| q.of_window(w))
        .filter(|&v| is_latency(v))
        .collect();
    values.sort_unstable_by(f64::total_cmp);
    values
}

/// The before side's window noise in %: `1.96·√2·1.4826·MAD/median/sqrt(m)·100` of the
/// sorted values `xs` (95 % band of a difference of two sides of `m` windows); None when the
/// median is not above 0 (no relative scale).
fn noise_pct(xs: &[f64]) -> Option<f64> {
    let median = median_sorted(xs)?;
    if median <= 0.0 {
        return None;
    }
    let mut deviations: Vec<f64> = xs.iter().map(|x| (x - median).abs()).collect();
    deviations.sort_unstable_by(f64::total_cmp);
    let mad = median_sorted(&deviations)?;
    let m = xs.len() as f64;
    finite(Z_95 * SQRT_2 * MAD_TO_SIGMA * mad / median / m.sqrt() * 100.0)
}

/// Median of sorted values; None when empty.
fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted.get(mid).copied()
    } else {
        Some(f64::midpoint(*sorted.get(mid.checked_sub(1)?)?, *sorted.get(mid)?))
    }
}

/// Result of a Mann–Whitney U test.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MannWhitney {
    /// U of the first sample: pairs with x > y, plus half the tied pairs.
    u: f64,
    /// Standardised statistic after the continuity correction (≥ 0).
    z: f64,
    /// Two-sided p-value, normal approximation, in [0, 1].
    p_value: f64,
}

/// Two-sided Mann–Whitney U test of `xs` against `ys` (finite values, any order), normal
/// approximation with tie and continuity corrections. All values tied gives p = 1.
fn mann_whitney(xs: &[f64], ys: &[f64]) -> MannWhitney {
    let mut all: Vec<(f64, bool)> =
        xs.iter().map(|&v| (v, true)).chain(ys.iter().map(|&v| (v, false))).collect();
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum_x, mut tie_sum, mut below) = (0.0, 0.0, 0_usize);
    for group in all.chunk_by(|a, b| a.0 == b.0) {
        let t = group.len() as f64;
        let mean_rank = below as f64 + (t + 1.0) / 2.0;
        rank_sum_x += mean_rank * group.iter().filter(|e| e.1).count() as f64;
        tie_sum += t * t * t - t;
        below += group.len();
    }
    let (m, n) = (xs.len() as f64, ys.len() as f64);
    let total = m + n;
    let u = rank_sum_x - m * (m + 1.0) / 2.0;
    let tie_share = if total > 1.0 { tie_sum / (total * (total - 1.0)) } else { 0.0 };
    let variance = m * n / 12.0 * ((total + 1.0) - tie_share);
    if !variance.is_finite() || variance <= 0.0 {
        return MannWhitney { u, z: 0.0, p_value: 1.0 };
    }
    let z = ((u - m * n / 2.0).abs() - 0.5).max(0.0) / variance.sqrt();
    MannWhitney { u, z, p_value: erfc(z / SQRT_2).clamp(0.0, 1.0) }
}

/// Complementary error function, Numerical Recipes `erfcc` (Chebyshev fit): relative error
/// below 1.2e-7 for every finite x; 0 or 2 in the far tails, never NaN for non-NaN x.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let tail = t * (-z * z + poly).exp();
    if x >= 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

/// The distribution-free 95 % interval (ms) of the Hodges–Lehmann shift `y − x` between the
/// sorted values `xs` and `ys`; None when the samples are too small for a 95 % interval.
fn shift_interval(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let (xs, ys) = thin_for_pairs(xs, ys);
    let pairs = xs.len().checked_mul(ys.len())?;
    let k = interval_rank(xs.len(), ys.len())?;
    let mut diffs: Vec<f64> = ys.iter().flat_map(|y| xs.iter().map(move |x| y - x)).collect();
    let lo = nth_smallest(&mut diffs, k.checked_sub(1)?)?;
    let hi = nth_smallest(&mut diffs, pairs.checked_sub(k)?)?;
    Some((lo, hi))
}

/// 1-based rank `k` of the interval's bounds among the `m·n` differences:
/// `round(m·n/2 − 1.96·sqrt(m·n·(m+n+1)/12))`; None when below 1.
fn interval_rank(m: usize, n: usize) -> Option<usize> {
    let (mf, nf) = (m as f64, n as f64);
    let pairs = mf * nf;
    let k = (pairs / 2.0 - Z_95 * (pairs * (mf + nf + 1.0) / 12.0).sqrt()).round();
    // `k < pairs / 2`, so `k` fits in usize whenever it is at least 1.
    (k >= 1.0).then_some(k as usize)
}

/// The `index`-th smallest value (0-based), reordering `values`; None when out of range.
fn nth_smallest(values: &mut [f64], index: usize) -> Option<f64> {
    if index >= values.len() {
        return None;
    }
    let (_, nth, _) = values.select_nth_unstable_by(index, f64::total_cmp);
    Some(*nth)
}

/// Systematic subsamples of the sorted `xs` and `ys` (every s-th value, starting at s/2, with
/// a step per side, the longer side thinned first) whose product of lengths is at most
/// [`MAX_INTERVAL_PAIRS`]; the inputs themselves when already small enough.
fn thin_for_pairs(xs: &[f64], ys: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut step_x, mut step_y) = (1_usize, 1_usize);
    loop {
        let (len_x, len_y) = (thinned_len(xs.len(), step_x), thinned_len(ys.len(), step_y));
        if len_x.saturating_mul(len_y) <= MAX_INTERVAL_PAIRS {
            return (thin(xs, step_x), thin(ys, step_y));
        }
        if len_x >= len_y {
            step_x += 1;
        } else {
            step_y += 1;
        }
    }
}

/// Length of `thin(values, step)` for `len` values.
fn thinned_len(len: usize, step: usize) -> usize {
    let offset = step / 2;
    if len > offset {
        (len - offset - 1) / step + 1
    } else {
        0
    }
}

/// Every `step`-th value of `values`, starting at index `step / 2`.
fn thin(values: &[f64], step: usize) -> Vec<f64> {
    values.iter().skip(step / 2).step_by(step.max(1)).copied().collect()
}

/// `part / whole · 100` when `whole > 0` and the result is finite.
fn percent_of(part: f64, whole: f64) -> Option<f64> {
    if whole > 0.0 {
        finite(part / whole * 100.0)
    } else {
        None
    }
}

/// `v` when finite.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Whether `v` is a plausible latency: finite and ≥ 0.
fn is_latency(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// Whether `v` is finite and above 0.
fn is_positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64 (a small, seeded, well-mixed PRNG) and a spare Box–Muller normal.
    struct Rng(u64, Option<f64>);

    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(seed, None)
        }

        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in (0, 1].
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 1.0) / (1_u64 << 53) as f64
        }

        /// Standard normal (Box–Muller, both values of each pair used).
        fn normal(&mut self) -> f64 {
            if let Some(z) = self.1.take() {
                return z;
            }
            let (u1, u2) = (self.uniform(), self.uniform());
            let (r, angle) = ((-2.0 * u1.ln()).sqrt(), std::f64::consts::TAU * u2);
            self.1 = Some(r * angle.sin());
            r * angle.cos()
        }

        /// Log-normal latency, ms.
        fn latency_ms(&mut self, median_ms: f64, sigma: f64) -> f64 {
            median_ms * (sigma * self.normal()).exp()
        }
    }

    /// Nearest-rank quantile of sorted values.
    fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    /// Windows and overall quantiles of one simulated side.
    struct SideData {
        windows: Vec<WindowQuantiles>,
        overall: [f64; 3],
        count: u64,
    }

    impl SideData {
        fn side(&self) -> Side<'_> {
            Side {
                windows: &self.windows,
                p50_ms: self.overall[0],
                p95_ms: self.overall[1],
                p99_ms: self.overall[2],
                count: self.count,
            }
        }
    }

    /// `windows` windows of `per_window` log-normal samples (median 20 ms × `scale`).
    fn simulate(
        rng: &mut Rng,
        windows: usize,
        per_window: usize,
        scale: f64,
        sigma: f64,
    ) -> SideData {
        let mut all = Vec::with_capacity(windows * per_window);
        let mut out = Vec::with_capacity(windows);
        for _ in 0..windows {
            let mut w: Vec<f64> =
                (0..per_window).map(|_| rng.latency_ms(20.0, sigma) * scale).collect();
            w.sort_unstable_by(f64::total_cmp);
            out.push(WindowQuantiles {
                count: per_window as u64,
                p50_ms: nearest_rank(&w, 0.50),
                p95_ms: nearest_rank(&w, 0.95),
                p99_ms: nearest_rank(&w, 0.99),
            });
            all.extend(w);
        }
        let overall = [0.50, 0.95, 0.99].map(|q| {
            let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
            *all.select_nth_unstable_by(rank - 1, f64::total_cmp).1
        });
        SideData { windows: out, overall, count: all.len() as u64 }
    }

    fn run(seed: u64, windows: usize, per_window: usize, scale: f64, sigma: f64) -> Comparison {
        let mut rng = Rng::new(seed);
        let before = simulate(&mut rng, windows, per_window, 1.0, sigma);
        let after = simulate(&mut rng, windows, per_window, scale, sigma);
        compare(&before.side(), &after.side(), 0.01)
    }

    fn all_f64(c: &Comparison) -> Vec<f64> {
        let mut v = Vec::new();
        for q in [&c.p50, &c.p95, &c.p99] {
            v.extend([q.before_ms, q.after_ms]);
            v.extend(q.change_pct);
            v.extend(q.interval_pct.map(|(a, b)| [a, b]).into_iter().flatten());
            v.extend(q.p_value);
        }
        v
    }

    #[test]
    fn same_distribution_is_no_change_in_at_least_95_percent_of_trials() {
        let trials = 1000;
        let no_change = (0..trials)
            .filter(|&seed| run(1000 + seed, 40, 200, 1.0, 0.5).p95.verdict == Verdict::NoChange)
            .count();
        println!("same distribution: p95 NoChange in {no_change} of {trials} trials");
        assert!(no_change >= 950, "NoChange in only {no_change} of {trials} trials");
    }

    #[test]
    fn twenty_percent_slower_is_regressed_and_faster_is_improved() {
        for (scale, verdict) in [(1.2, Verdict::Regressed), (0.8, Verdict::Improved)] {
            let c = run(7, 30, 200, scale, 0.5);
            let want = (scale - 1.0) * 100.0;
            let q = &c.p95;
            assert_eq!(q.verdict, verdict, "{q:?}");
            let change = q.change_pct.unwrap();
            assert!((change - want).abs() < 5.0, "change {change} for {want}: {q:?}");
            let (lo, hi) = q.interval_pct.unwrap();
            assert!(lo <= want && want <= hi, "interval {lo}..{hi} misses {want}");
            assert!(lo > 0.0 || hi < 0.0, "interval {lo}..{hi} holds 0");
            assert!(q.p_value.unwrap() < 0.001);
            assert_eq!((q.windows_before, q.windows_after), (30, 30));
            assert_eq!((c.windows_before, c.windows_after), (30, 30));
        }
    }

    #[test]
    fn five_windows_need_more_data() {
        let c = run(3, 5, 200, 1.5, 0.5);
        for q in [&c.p50, &c.p95, &c.p99] {
            assert_eq!(q.verdict, Verdict::NeedMoreData);
            assert_eq!(q.p_value, None);
            assert_eq!(q.interval_pct, None);
            assert!(q.change_pct.is_some());
        }
    }

    #[test]
    fn windows_too_small_for_p99_leave_it_out() {
        let c = run(5, 20, 50, 1.5, 0.5);
        assert_eq!(c.p50.verdict, Verdict::Regressed);
        assert_eq!(c.p95.verdict, Verdict::Regressed);
        assert_eq!(c.p99.verdict, Verdict::NeedMoreData);
        assert_eq!((c.p99.windows_before, c.p99.windows_after), (0, 0));
        assert_eq!((c.windows_before, c.windows_after), (20, 20));
    }

    #[test]
    fn shift_below_the_floor_is_no_change_even_when_significant() {
        let mut rng = Rng::new(11);
        let before = simulate(&mut rng, 200, 1000, 1.0, 0.1);
        let after = simulate(&mut rng, 200, 1000, 1.005, 0.1);
        let q = compare(&before.side(), &after.side(), 0.01).p95;
        assert!(q.p_value.unwrap() < SIGNIFICANCE, "{q:?}");
        assert!((q.change_pct.unwrap() - 0.5).abs() < 0.3, "{q:?}");
        assert_eq!(q.verdict, Verdict::NoChange, "{q:?}");
        // With a ten times finer sketch the floor drops to 0.2 % and the shift counts.
        let q = compare(&before.side(), &after.side(), 0.001).p95;
        assert_eq!(q.verdict, Verdict::Regressed, "{q:?}");
    }

    #[test]
    fn verdict_needs_p_interval_and_floor_to_agree() {
        use Verdict::{Improved, NoChange, Regressed};
        let table = [
            (Some(10.0), 0.01, Some((1.0, 20.0)), Some(2.0), Regressed),
            (Some(-10.0), 0.01, Some((-20.0, -1.0)), Some(2.0), Improved),
            (Some(10.0), 0.2, Some((1.0, 20.0)), Some(2.0), NoChange),
            (Some(10.0), 0.01, Some((-1.0, 20.0)), Some(2.0), NoChange),
            (Some(1.5), 0.01, Some((1.0, 2.0)), Some(2.0), NoChange),
            (Some(-10.0), 0.01, Some((1.0, 20.0)), Some(2.0), NoChange),
            (None, 0.01, Some((1.0, 20.0)), Some(2.0), NoChange),
            (Some(10.0), 0.01, None, Some(2.0), NoChange),
            (Some(10.0), 0.01, Some((1.0, 20.0)), None, NoChange),
        ];
        for (change, p, interval, floor, want) in table {
            assert_eq!(verdict(change, p, interval, floor), want, "{change:?} {p} {interval:?}");
        }
    }

    #[test]
    fn mann_whitney_matches_hand_computed_example_with_ties() {
        // Ranks of the 16 values: 1..4 -> 1..4, the pairs 5,6,7,8 -> 5.5, 7.5, 9.5, 11.5,
        // 9..12 -> 13..16. R_x = 10 + 34 = 44, U_x = 44 - 8·9/2 = 8 (6 pairs x > y + 4 ties / 2).
        // Var = 64/12·(17 − 4·6/(16·15)) = 90.1333; z = (|8 − 32| − 0.5)/sqrt(Var) = 2.475285;
        // p = erfc(z/√2) = 0.013313 (0.013587 without the tie correction).
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let ys = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
        let t = mann_whitney(&xs, &ys);
        assert_eq!(t.u, 8.0);
        assert!((t.z - 2.475_284_634_879_116).abs() < 1e-9, "{t:?}");
        assert!((t.p_value - 0.013_313_002_763_816_674).abs() < 1e-8, "{t:?}");
        // Swapping the sides gives U' = m·n − U and the same p-value.
        let swapped = mann_whitney(&ys, &xs);
        assert_eq!(swapped.u, 56.0);
        assert!((swapped.p_value - t.p_value).abs() < 1e-12);
        // All values tied: no evidence at all.
        assert_eq!(mann_whitney(&[3.0; 8], &[3.0; 8]).p_value, 1.0);
    }

    #[test]
    fn erfc_matches_known_values() {
        let known = [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_265),
            (3.0, 2.209_049_699_858_543_8e-5),
            (-1.0, 1.842_700_792_949_715),
        ];
        for (x, want) in known {
            let got = erfc(x);
            assert!(((got - want) / want).abs() < 1.2e-7, "erfc({x}) = {got}, want {want}");
        }
        assert_eq!(erfc(100.0), 0.0);
        assert_eq!(erfc(-100.0), 2.0);
    }

    #[test]
    fn hodges_lehmann_interval_matches_hand_computed_example() {
        // y − x = 10 + (j − i): 3..17 with multiplicity 8 − |j − i|. k = round(32 − 1.96 ·
        // sqrt(64·17/12)) = round(13.34) = 13; 1 + 2 + 3 + 4 = 10 < 13 <= 15, so the 13th
        // smallest is 10 − 3 = 7 and the 13th largest is 13.
        let xs: Vec<f64> = (1..=8).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|x| x + 10.0).collect();
        assert_eq!(interval_rank(8, 8), Some(13));
        assert_eq!(shift_interval(&xs, &ys), Some((7.0, 13.0)));
        assert_eq!(interval_rank(2, 2), None);
    }

    #[test]
    fn large_inputs_are_thinned_for_the_interval() {
        let xs: Vec<f64> = (0..1000).map(f64::from).collect();
        let ys: Vec<f64> = (0..10).map(f64::from).collect();
        let (tx, ty) = thin_for_pairs(&xs, &xs);
        assert!(tx.len() * ty.len() <= MAX_INTERVAL_PAIRS);
        assert!(tx.len() >= 400 && ty.len() >= 400, "{} {}", tx.len(), ty.len());
        let (tx, ty) = thin_for_pairs(&xs, &ys);
        assert_eq!((tx.len(), ty.len()), (1000, 10));
        let c = run(13, 600, 20, 1.2, 0.5);
        assert_eq!(c.p95.verdict, Verdict::Regressed, "{:?}", c.p95);
        let (lo, hi) = c.p95.interval_pct.unwrap();
        assert!(lo > 10.0 && hi < 30.0, "{lo}..{hi}");
    }

    #[test]
    fn degenerate_inputs_never_panic_nor_give_nan() {
        let good = simulate(&mut Rng::new(17), 10, 200, 1.0, 0.5);
        let mut bad = simulate(&mut Rng::new(19), 10, 200, 1.0, 0.5);
        bad.windows[0].p95_ms = f64::NAN;
        bad.windows[1].p99_ms = f64::INFINITY;
        bad.windows[2].p50_ms = -1.0;
        bad.windows.push(WindowQuantiles { count: 0, p50_ms: 0.0, p95_ms: 0.0, p99_ms: 0.0 });
        let empty = Side { windows: &[], p50_ms: 0.0, p95_ms: 0.0, p99_ms: 0.0, count: 0 };
        let zero_windows =
            vec![WindowQuantiles { count: 200, p50_ms: 0.0, p95_ms: 0.0, p99_ms: 0.0 }; 10];
        let zero =
            Side { windows: &zero_windows, p50_ms: 0.0, p95_ms: 0.0, p99_ms: 0.0, count: 2000 };
        let nan =
            Side { windows: &[], p50_ms: f64::NAN, p95_ms: f64::INFINITY, p99_ms: -3.0, count: 9 };
        let tiny = Side { p95_ms: 1e-320, ..good.side() };
        let huge_windows =
            vec![
                WindowQuantiles { count: 200, p50_ms: 1.0, p95_ms: f64::MAX, p99_ms: f64::MAX };
                9
            ];
        let huge = Side { windows: &huge_windows, p95_ms: f64::MAX, ..good.side() };
        let sides = [good.side(), bad.side(), empty, zero, nan, tiny, huge];
        for before in &sides {
            for after in &sides {
                for rel in [0.01, f64::NAN, -1.0, f64::INFINITY] {
                    let c = compare(before, after, rel);
                    for v in all_f64(&c) {
                        assert!(v.is_finite(), "{v} in {c:?}");
                    }
                }
            }
        }
        let c = compare(&zero, &good.side(), 0.01);
        assert_eq!(c.p95.change_pct, None);
        assert_eq!(c.p95.verdict, Verdict::NoChange);
        let c = compare(&bad.side(), &good.side(), 0.01);
        assert_eq!((c.windows_before, c.p95.windows_before, c.p99.windows_before), (7, 9, 9));
        let c = compare(&empty, &empty, 0.01);
        assert_eq!(c.p50.verdict, Verdict::NeedMoreData);
        assert_eq!(c.p50.change_pct, None);
    }

    #[test]
    fn geomean_summarises_ratios() {
        let flat = geomean_change_pct([(100.0, 110.0), (100.0, 100.0 / 1.1)]).unwrap();
        assert!(flat.abs() < 1e-9, "{flat}");
        let up = geomean_change_pct([(100.0, 120.0), (100.0, 120.0)]).unwrap();
        assert!((up - 20.0).abs() < 1e-9, "{up}");
        let skipped = geomean_change_pct([(0.0, 5.0), (f64::NAN, 1.0), (10.0, 5.0)]).unwrap();
        assert!((skipped + 50.0).abs() < 1e-9, "{skipped}");
        assert_eq!(geomean_change_pct([(0.0, 1.0), (1.0, -1.0)]), None);
        assert_eq!(geomean_change_pct(std::iter::empty()), None);
    }

    #[test]
    fn verdict_displays_and_serialises() {
        assert_eq!(Verdict::NoChange.to_string(), "~");
        assert_eq!(Verdict::Improved.to_string(), "improved");
        assert_eq!(serde_json::to_string(&Verdict::NoChange).unwrap(), "\"no_change\"");
        assert_eq!(serde_json::to_string(&Verdict::NeedMoreData).unwrap(), "\"need_more_data\"");
        let c = run(7, 30, 200, 1.2, 0.5);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""verdict":"regressed""#), "{json}");
        let back: Comparison = serde_json::from_str(&json).unwrap();
        assert_eq!((back.p95.verdict, back.windows_after), (c.p95.verdict, c.windows_after));
        let text = method(60_000);
        assert!(text.contains("Mann-Whitney") && text.contains("Hodges-Lehmann"), "{text}");
        assert!(text.starts_with("Each side is cut into 1-minute windows"), "{text}");
        assert!(method(240_000).contains("4-minute windows"));
    }
}
