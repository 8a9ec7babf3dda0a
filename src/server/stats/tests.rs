//! Table tests of the registry: quantile accuracy, windows, weights, limits, totals and detail.

use super::series::summary_of;
use super::*;
use crate::model::ops::{HistogramBin, LatencyClass};

/// A fixed instant: 2023-11-14 22:13:20 UTC, on a whole minute.
const T0: u64 = 1_700_000_040_000;
const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;

/// splitmix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn registry() -> OperationRegistry {
    OperationRegistry::new(StatsConfig::default())
}

fn ok(reg: &mut OperationRegistry, name: &str, duration_ms: f64, at_ms: u64, now_ms: u64) {
    reg.record(name, duration_ms, true, 1.0, at_ms, now_ms).unwrap();
}

fn summary(reg: &OperationRegistry, name: &str, window: Window, now_ms: u64) -> OperationSummary {
    reg.summaries(window, now_ms).into_iter().find(|s| s.name == name).unwrap()
}

fn count_in(reg: &OperationRegistry, name: &str, window: Window, now_ms: u64) -> u64 {
    reg.summaries(window, now_ms).iter().find(|s| s.name == name).map_or(0, |s| s.count)
}

/// The sample of 1-based rank ceil(q * n) of sorted data: the nearest-rank definition.
fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).saturating_sub(1)]
}

fn rel_err(got: f64, want: f64) -> f64 {
    ((got - want) / want).abs()
}

fn uniform(rng: &mut Rng) -> f64 {
    1.0 + 999.0 * rng.unit()
}

fn log_normal(rng: &mut Rng) -> f64 {
    (50f64.ln() + 1.0 * rng.normal()).exp()
}

fn bimodal(rng: &mut Rng) -> f64 {
    if rng.unit() < 0.8 {
        (20.0 + 2.0 * rng.normal()).max(0.5)
    } else {
        (800.0 + 100.0 * rng.normal()).max(0.5)
    }
}

/// Records `n` samples spread over the last 50 minutes with the clock advancing, so that
/// buckets of every tier are rolled up and merged, then checks the 1h quantiles.
fn check_accuracy(label: &str, sample: fn(&mut Rng) -> f64, seed: u64) {
    let n = 40_000u64;
    let span_ms = 50 * MIN;
    let start = T0 - span_ms;
    let mut rng = Rng(seed);
    let mut reg = registry();
    let mut data = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = start + i * span_ms / n;
        let d = sample(&mut rng);
        data.push(d);
        ok(&mut reg, "op", d, at, at);
    }
    data.sort_by(f64::total_cmp);
    let s = summary(&reg, "op", Window::H1, T0);
    assert_eq!(s.count, n, "{label}");
    assert_eq!(s.min_ms, data[0], "{label}");
    assert_eq!(s.max_ms, data[data.len() - 1], "{label}");
    let mean = data.iter().sum::<f64>() / n as f64;
    assert!(rel_err(s.mean_ms, mean) < 1e-9, "{label}: mean {} vs {mean}", s.mean_ms);
    let bound = OperationRegistry::RELATIVE_ERROR + 1e-9;
    for (q, got) in [(0.50, s.p50_ms), (0.90, s.p90_ms), (0.95, s.p95_ms), (0.99, s.p99_ms)] {
        let want = exact_quantile(&data, q);
        let err = rel_err(got, want);
        assert!(err <= bound, "{label} p{}: got {got}, exact {want}, error {err}", q * 100.0);
    }
    // The merge must really have happened across tiers.
    assert!(reg.bucket_count() > 40, "{label}: {} buckets", reg.bucket_count());
}

#[test]
fn quantiles_within_one_percent_uniform() {
    check_accuracy("uniform", uniform, 1);
}

#[test]
fn quantiles_within_one_percent_log_normal() {
    check_accuracy("log-normal", log_normal, 2);
}

#[test]
fn quantiles_within_one_percent_bimodal() {
    check_accuracy("bimodal", bimodal, 3);
}

#[test]
fn quantiles_within_one_percent_with_weights() {
    let mut rng = Rng(4);
    let mut reg = registry();
    let mut data = Vec::new();
    for i in 0..10_000u64 {
        let d = log_normal(&mut rng);
        let weight = [1.0, 4.0, 10.0][(i % 3) as usize];
        data.extend(std::iter::repeat_n(d, weight as usize));
        reg.record("op", d, true, weight, T0 - i % 50 * SEC, T0).unwrap();
    }
    data.sort_by(f64::total_cmp);
    let s = summary(&reg, "op", Window::M1, T0);
    assert_eq!(s.count, data.len() as u64);
    for (q, got) in [(0.50, s.p50_ms), (0.90, s.p90_ms), (0.95, s.p95_ms), (0.99, s.p99_ms)] {
        let want = exact_quantile(&data, q);
        assert!(rel_err(got, want) <= 0.01 + 1e-9, "p{q}: got {got}, exact {want}");
    }
}

#[test]
fn registry_can_sit_behind_a_shared_lock() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<OperationRegistry>();
}

#[test]
fn quantiles_are_clamped_into_min_max() {
    let mut reg = registry();
    ok(&mut reg, "one", 123.456, T0, T0);
    let s = summary(&reg, "one", Window::M1, T0);
    for p in [s.min_ms, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.mean_ms, s.max_ms] {
        assert_eq!(p, 123.456);
    }
    ok(&mut reg, "zero", 0.0, T0, T0);
    assert_eq!(summary(&reg, "zero", Window::M1, T0).p99_ms, 0.0);
}

#[test]
fn samples_appear_in_the_right_windows_by_age() {
    // (age, in 1m, in 5m, in 15m, in 1h)
    let table: [(u64, [bool; 4]); 10] = [
        (0, [true, true, true, true]),
        (30 * SEC, [true, true, true, true]),
        (59 * SEC, [true, true, true, true]),
        (60 * SEC + 1, [false, true, true, true]),
        (61 * SEC, [false, true, true, true]),
        (4 * MIN + 50 * SEC, [false, true, true, true]),
        (5 * MIN + 10 * SEC, [false, false, true, true]),
        (14 * MIN + 50 * SEC, [false, false, true, true]),
        (15 * MIN + 10 * SEC, [false, false, false, true]),
        (58 * MIN, [false, false, false, true]),
    ];
    for (age, expected) in table {
        let mut reg = registry();
        ok(&mut reg, "op", 5.0, T0 - age, T0);
        let got = Window::ALL.map(|w| count_in(&reg, "op", w, T0) == 1);
        assert_eq!(got, expected, "age {age} ms recorded late");
        // Same sample recorded on time, then the clock moves on (buckets roll up).
        let mut reg = registry();
        ok(&mut reg, "op", 5.0, T0 - age, T0 - age);
        reg.prune(T0, |_| {});
        let got = Window::ALL.map(|w| count_in(&reg, "op", w, T0) == 1);
        assert_eq!(got, expected, "age {age} ms recorded on time");
    }
}

#[test]
fn samples_drop_out_when_old() {
    let mut reg = registry();
    ok(&mut reg, "op", 7.0, T0, T0);
    assert_eq!(count_in(&reg, "op", Window::M1, T0 + 59 * SEC), 1);
    assert_eq!(count_in(&reg, "op", Window::M1, T0 + 60 * SEC), 0);
    assert_eq!(count_in(&reg, "op", Window::M5, T0 + 4 * MIN), 1);
    assert_eq!(count_in(&reg, "op", Window::M5, T0 + 6 * MIN), 0);
    assert_eq!(count_in(&reg, "op", Window::H1, T0 + 59 * MIN), 1);
    reg.prune(T0 + 59 * MIN, |_| {});
    assert_eq!(count_in(&reg, "op", Window::H1, T0 + 59 * MIN), 1);
    assert_eq!(count_in(&reg, "op", Window::H1, T0 + 61 * MIN), 0);
    assert!(reg.summaries(Window::H1, T0 + 61 * MIN).is_empty());
    reg.prune(T0 + 61 * MIN + 1, |_| {});
    assert_eq!(reg.series_count(), 0);
    assert_eq!(reg.bucket_count(), 0);
}

#[test]
fn rate_success_and_errors() {
    let mut reg = registry();
    for i in 0..120u64 {
        let success = i % 4 != 0;
        reg.record("op", 10.0 + i as f64, success, 1.0, T0 - i * 400, T0).unwrap();
    }
    let m1 = summary(&reg, "op", Window::M1, T0);
    assert_eq!(m1.count, 120);
    assert_eq!(m1.error_count, 30);
    assert_eq!(m1.success_pct, 75.0);
    assert_eq!(m1.rate_per_min, 120.0);
    assert_eq!(m1.min_ms, 10.0);
    assert_eq!(m1.max_ms, 129.0);
    assert!((m1.mean_ms - 69.5).abs() < 1e-9);
    let m5 = summary(&reg, "op", Window::M5, T0);
    assert_eq!(m5.rate_per_min, 24.0);
    assert_eq!(summary(&reg, "op", Window::H1, T0).rate_per_min, 2.0);
    assert_eq!(m1.latency_class, LatencyClass::Good);
}

#[test]
fn latency_class_follows_configured_thresholds() {
    let thresholds = LatencyThresholds { excellent_ms: 10.0, good_ms: 20.0, acceptable_ms: 30.0 };
    let mut reg = OperationRegistry::new(StatsConfig { max_series: 10, thresholds, started_ms: 0 });
    for (name, d) in [("a", 5.0), ("b", 15.0), ("c", 25.0), ("d", 35.0)] {
        ok(&mut reg, name, d, T0, T0);
    }
    let class = |n| summary(&reg, n, Window::M1, T0).latency_class;
    assert_eq!(class("a"), LatencyClass::Excellent);
    assert_eq!(class("b"), LatencyClass::Good);
    assert_eq!(class("c"), LatencyClass::Acceptable);
    assert_eq!(class("d"), LatencyClass::Slow);
}

#[test]
fn weights_count_samples_many_times() {
    let mut reg = registry();
    reg.record("op", 10.0, false, 10.0, T0, T0).unwrap();
    reg.record("op", 20.0, true, 30.0, T0, T0).unwrap();
    let s = summary(&reg, "op", Window::M1, T0);
    assert_eq!(s.count, 40);
    assert_eq!(s.error_count, 10);
    assert_eq!(s.success_pct, 75.0);
    assert_eq!(s.span_secs, 60);
    assert!((s.mean_ms - 17.5).abs() < 1e-9);
    assert!(rel_err(s.p50_ms, 20.0) <= 0.01 && rel_err(s.p90_ms, 20.0) <= 0.01);
    // Ranks come from weights too: 10 of the 40 samples lie below 15 ms.
    let d = reg.detail("op", Window::M1, T0).unwrap();
    let below: u64 = d.histogram.iter().filter(|b| b.upper_ms <= 15.0).map(|b| b.count).sum();
    assert_eq!(below, 10);

    // Fractional weights average out: 1/0.3 three hundred times is 1000 samples.
    let mut reg = registry();
    for _ in 0..300 {
        reg.record("op", 1.0, true, 1.0 / 0.3, T0, T0).unwrap();
    }
    assert_eq!(summary(&reg, "op", Window::M1, T0).count, 1000);
}

#[test]
fn successes_and_failures_keep_their_own_weight_remainders() {
    // One failure in three samples, each at a sample rate of 0.5 (weight 2) then at 1/3:
    // a shared remainder would let successes round the failures away.
    let mut reg = registry();
    for i in 0..300 {
        reg.record("op", 1.0, i % 3 != 0, 1.0 / 0.6, T0, T0).unwrap();
    }
    let s = summary(&reg, "op", Window::M1, T0);
    assert!((499..=501).contains(&s.count), "{s:?}");
    assert!((166..=167).contains(&s.error_count), "{s:?}");
}

#[test]
fn a_bucket_refuses_what_its_bins_could_not_count() {
    use super::MAX_SAMPLES_PER_SEC;
    let mut reg = registry();
    let per_sample = MAX_WEIGHT as u64;
    let fits = MAX_SAMPLES_PER_SEC / per_sample;
    for _ in 0..fits {
        reg.record("op", 5.0, true, MAX_WEIGHT, T0, T0).unwrap();
    }
    assert_eq!(reg.record("op", 5.0, true, MAX_WEIGHT, T0, T0), Err(RecordError::Saturated));
    // What was refused is not carried into the samples after it: the next second counts its
    // one sample, however many were refused before.
    for _ in 0..100 {
        assert_eq!(reg.record("op", 5.0, true, MAX_WEIGHT, T0, T0), Err(RecordError::Saturated));
    }
    reg.record("op", 5.0, true, 1.0, T0 + 1000, T0 + 1000).unwrap();
    let s = summary(&reg, "op", Window::H1, T0 + 10 * MIN);
    assert_eq!(s.count, fits * per_sample + 1);
    // Every quantile is still the one value recorded: no bin saturated as buckets rolled up.
    assert!(rel_err(s.p99_ms, 5.0) <= 0.01 && rel_err(s.p50_ms, 5.0) <= 0.01, "{s:?}");
}

#[test]
fn a_refused_sample_does_not_stretch_the_span_rates_are_over() {
    let cfg = StatsConfig { max_series: 1, started_ms: T0 - 60_000, ..StatsConfig::default() };
    let mut reg = OperationRegistry::new(cfg);
    for i in 0..600 {
        ok(&mut reg, "a", 5.0, T0 - 60_000 + i * 100, T0);
    }
    // A new name stamped 50 minutes ago, refused by the series cap.
    let refused = reg.record("b", 5.0, true, 1.0, T0 - 50 * MIN, T0);
    assert_eq!(refused, Err(RecordError::CardinalityCap));
    let s = summary(&reg, "a", Window::H1, T0);
    assert_eq!((s.span_secs, s.rate_per_min), (61, 600.0 * 60.0 / 61.0));
}

#[test]
fn stored_minutes_refill_the_windows_but_not_from_the_future() {
    let mut reg = registry();
    let mut minute = RollupRecorder::default();
    minute.record(5.0, 3, true);
    let minute = minute.finish();
    // A minute a clock set two hours ahead stamped in the last run.
    let ahead = reg.restore_minute("op", T0 + 2 * 60 * MIN, &minute, T0, true);
    assert_eq!(ahead, Err(RecordError::TooFarAhead));
    assert_eq!(reg.series_count(), 0);
    reg.restore_minute("op", T0 - 5 * MIN, &minute, T0, true).unwrap();
    assert_eq!(count_in(&reg, "op", Window::H1, T0), 3);
}

#[test]
fn invalid_values_are_refused() {
    let mut reg = registry();
    for (d, w) in [
        (f64::NAN, 1.0),
        (-1.0, 1.0),
        (f64::INFINITY, 1.0),
        (2e12, 1.0),
        (1.0, 0.0),
        (1.0, -2.0),
        (1.0, f64::NAN),
        (1.0, f64::INFINITY),
    ] {
        assert_eq!(reg.record("op", d, true, w, T0, T0), Err(RecordError::InvalidValue));
    }
    assert_eq!(reg.series_count(), 0);
    assert_eq!(reg.dropped_by_cap(), 0);
}

#[test]
fn too_old_and_future_clamp() {
    let mut reg = registry();
    assert_eq!(reg.record("op", 1.0, true, 1.0, T0 - 3_600_001, T0), Err(RecordError::TooOld));
    assert_eq!(reg.record("op", 1.0, true, 1.0, 0, T0), Err(RecordError::TooOld));
    assert_eq!(reg.series_count(), 0);
    assert_eq!(reg.record("op", 1.0, true, 1.0, T0 - 3_600_000, T0), Ok(()));
    assert_eq!(count_in(&reg, "op", Window::H1, T0), 1);

    // More than 60 s ahead is refused, not clamped.
    let mut reg = registry();
    let far = reg.record("far", 1.0, true, 1.0, T0 + 2 * MIN, T0);
    assert_eq!(far, Err(RecordError::TooFarAhead));
    assert_eq!(reg.series_count(), 0);

    // 30 s ahead is kept as stamped, and counts in every window meanwhile.
    ok(&mut reg, "near", 1.0, T0 + 30 * SEC, T0);
    assert_eq!(count_in(&reg, "near", Window::M1, T0), 1);
    assert_eq!(reg.detail("near", Window::M1, T0).unwrap().series[0].at_ms, T0 + 30 * SEC);
    assert_eq!(count_in(&reg, "near", Window::M1, T0 + 89 * SEC), 1);
    assert_eq!(count_in(&reg, "near", Window::M1, T0 + 91 * SEC), 0);
}

#[test]
fn cardinality_cap_and_prune_free_slots() {
    let mut reg = OperationRegistry::new(StatsConfig { max_series: 3, ..StatsConfig::default() });
    for name in ["a", "b", "c"] {
        ok(&mut reg, name, 1.0, T0, T0);
    }
    assert_eq!(reg.record("d", 1.0, true, 1.0, T0, T0), Err(RecordError::CardinalityCap));
    assert_eq!(reg.record("e", 1.0, true, 1.0, T0, T0), Err(RecordError::CardinalityCap));
    assert_eq!(reg.dropped_by_cap(), 2);
    assert_eq!(reg.series_count(), 3);
    ok(&mut reg, "a", 2.0, T0, T0); // known names still record
    assert_eq!(count_in(&reg, "a", Window::M1, T0), 2);

    // "a" stays fresh; "b" and "c" age out and their slots are freed.
    let later = T0 + 61 * MIN;
    ok(&mut reg, "a", 3.0, later, later);
    reg.prune(later, |_| {});
    assert_eq!(reg.series_count(), 1);
    ok(&mut reg, "d", 1.0, later, later);
    ok(&mut reg, "e", 1.0, later, later);
    assert_eq!(reg.series_count(), 3);
    assert_eq!(reg.record("f", 1.0, true, 1.0, later, later), Err(RecordError::CardinalityCap));
    assert_eq!(reg.dropped_by_cap(), 3);
}

#[test]
fn memory_stays_bounded_under_a_million_samples() {
    let mut reg = registry();
    let mut rng = Rng(5);
    let n = 1_000_000u64;
    let span_ms = 2 * 60 * MIN; // two simulated hours
    let start = T0 - span_ms;
    let mut max_buckets = 0;
    for i in 0..n {
        let at = start + i * span_ms / n;
        ok(&mut reg, "op", log_normal(&mut rng), at, at);
        if i % 1000 == 0 {
            max_buckets = max_buckets.max(reg.bucket_count());
        }
    }
    assert!(max_buckets <= 210, "{max_buckets} buckets");
    assert!(max_buckets >= 190, "{max_buckets} buckets: every tier should be full");
    let bytes = reg.approx_memory_bytes();
    assert!(bytes < 400_000, "{bytes} bytes");
    // The last hour holds about half the samples.
    let h1 = summary(&reg, "op", Window::H1, T0).count;
    assert!((480_000..=520_000).contains(&h1), "{h1}");
}

#[test]
fn totals_across_operations() {
    let mut reg = registry();
    let empty = reg.totals(Window::M5, T0);
    assert_eq!((empty.count, empty.error_count, empty.mean_ms), (0, 0, 0.0));
    assert_eq!((empty.rate_per_min, empty.success_pct), (0.0, None));

    for i in 0..30u64 {
        reg.record("a", 10.0, i % 3 != 0, 1.0, T0 - i * SEC, T0).unwrap();
    }
    for i in 0..20u64 {
        reg.record("b", 60.0, true, 1.0, T0 - i * SEC, T0).unwrap();
    }
    reg.record("c", 100.0, false, 1.0, T0 - 10 * MIN, T0).unwrap();
    let m5 = reg.totals(Window::M5, T0);
    assert_eq!(m5.window, Window::M5);
    assert_eq!(m5.count, 50);
    assert_eq!(m5.error_count, 10);
    assert_eq!(m5.success_pct, Some(80.0));
    assert!((m5.mean_ms - 30.0).abs() < 1e-9);
    assert_eq!(m5.rate_per_min, 10.0);
    let h1 = reg.totals(Window::H1, T0);
    assert_eq!((h1.count, h1.error_count), (51, 11));
    assert!((h1.mean_ms - 1600.0 / 51.0).abs() < 1e-9);
}

#[test]
fn detail_series_and_histogram() {
    let mut reg = registry();
    assert!(reg.detail("op", Window::M1, T0).is_none());
    let mut rng = Rng(6);
    // Five distinct seconds in the last minute, 200 samples each.
    for s in [1u64, 5, 9, 20, 40] {
        for _ in 0..200 {
            ok(&mut reg, "op", bimodal(&mut rng), T0 - s * SEC, T0);
        }
    }
    // One sample 20 minutes ago: a 60 s bucket in the 1h window.
    ok(&mut reg, "op", 50.0, T0 - 20 * MIN, T0 - 20 * MIN);
    reg.prune(T0, |_| {});

    let d = reg.detail("op", Window::M1, T0).unwrap();
    assert_eq!(d.relative_error, 0.01);
    assert_eq!(d.summary.count, 1000);
    // T0 is on a whole minute, so each of the five seconds has a 2 s point of its own.
    assert_eq!(d.series.len(), 5);
    assert!(d.series.iter().all(|p| p.bucket_secs == 2 && p.count == 200));
    assert!(d.series.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    assert_eq!(d.series[0].at_ms, T0 - 40 * SEC);
    assert!(d.series.iter().all(|p| p.p50_ms <= p.p95_ms && p.p95_ms <= p.p99_ms));

    assert!((20..=40).contains(&d.histogram.len()), "{} bins", d.histogram.len());
    assert_eq!(d.histogram.iter().map(|b| b.count).sum::<u64>(), 1000);
    assert_eq!(d.histogram[0].lower_ms, d.summary.min_ms);
    assert_eq!(d.histogram[d.histogram.len() - 1].upper_ms, d.summary.max_ms);
    assert!(d.histogram.windows(2).all(|w| w[0].upper_ms == w[1].lower_ms));
    assert!(d.histogram.iter().all(|b| b.lower_ms < b.upper_ms));
    // Bimodal 80/20 around 20 ms and 800 ms: the split at 200 ms shows it.
    let low: u64 = d.histogram.iter().filter(|b| b.upper_ms <= 200.0).map(|b| b.count).sum();
    assert!((760..=840).contains(&low), "{low} below 200 ms");

    // 1h: 60 s points; the five seconds share the minute before T0.
    let h = reg.detail("op", Window::H1, T0).unwrap();
    assert_eq!(h.summary.count, 1001);
    assert_eq!(h.series.len(), 2);
    assert_eq!((h.series[0].bucket_secs, h.series[0].count), (60, 1));
    assert_eq!(h.series[0].at_ms, T0 - 20 * MIN);
    assert_eq!((h.series[1].at_ms, h.series[1].count), (T0 - MIN, 1000));
    assert_eq!(h.histogram.iter().map(|b| b.count).sum::<u64>(), 1001);
}

/// Sparse traffic with bursts over 65 minutes, recorded on time with the clock advancing (so
/// buckets of every tier exist); returns the registry, the raw `(at_ms, duration_ms)` samples
/// and the last clock, which is not on a whole second.
fn sparse_traffic(seed: u64) -> (OperationRegistry, Vec<(u64, f64)>, u64) {
    let mut rng = Rng(seed);
    let mut reg = registry();
    let mut raw = Vec::new();
    let start = T0 - 65 * MIN;
    for sec in 0..65 * 60 {
        let at_sec_ms = start + sec * SEC;
        let n = match rng.next_u64() % 100 {
            0 => 300,                          // a burst
            1..=14 => 1 + rng.next_u64() % 20, // light traffic
            _ => 0,                            // nothing: a gap
        };
        for _ in 0..n {
            let at = at_sec_ms + rng.next_u64() % SEC;
            let d = if n == 300 { bimodal(&mut rng) } else { log_normal(&mut rng) };
            ok(&mut reg, "op", d, at, at);
            raw.push((at, d));
        }
        if sec % 5 == 0 {
            reg.prune(at_sec_ms, |_| {});
        }
    }
    (reg, raw, T0 + 17_321)
}

#[test]
fn detail_series_uses_one_aligned_width_per_window() {
    let (reg, _, now) = sparse_traffic(20);
    let widths = [(Window::M1, 2), (Window::M5, 10), (Window::M15, 30), (Window::H1, 60)];
    for (window, width_secs) in widths {
        assert_eq!(OperationRegistry::series_bucket_secs(window), width_secs);
        for now in [now, now + 1_500, now + 7 * SEC] {
            let d = reg.detail("op", window, now).unwrap();
            assert!(d.series.len() > 1, "{window:?}");
            assert!(d.series.iter().all(|p| p.bucket_secs == width_secs), "{window:?}");
            assert!(d.series.iter().all(|p| p.at_ms % (width_secs * SEC) == 0), "{window:?}");
            assert!(d.series.windows(2).all(|w| w[0].at_ms < w[1].at_ms), "{window:?}");
            assert!(d.series.iter().all(|p| p.count > 0), "{window:?}");
            let most = (window.secs() / width_secs + 1) as usize;
            assert!(d.series.len() <= most, "{window:?}: {} points", d.series.len());
            // The points cover the window, and nothing outside it.
            let first_ms = (now / SEC + 1 - window.secs()) * SEC;
            assert!(d.series[0].at_ms + width_secs * SEC > first_ms, "{window:?}");
            assert!(d.series[d.series.len() - 1].at_ms <= now, "{window:?}");
            let total: u64 = d.series.iter().map(|p| p.count).sum();
            assert_eq!(total, d.summary.count, "{window:?} at {now}");
        }
    }
}

#[test]
fn detail_series_quantiles_are_those_of_each_interval() {
    for seed in [21, 22] {
        let (reg, raw, now) = sparse_traffic(seed);
        let series = &reg.series["op"];
        for window in Window::ALL {
            let width_secs = OperationRegistry::series_bucket_secs(window);
            let width_ms = width_secs * SEC;
            // Expected points: the raw samples of every bucket of the window, by the interval
            // holding the bucket's start.
            let mut expected: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
            for (start_sec, native_secs) in series.native_buckets(window, now / SEC) {
                assert!(native_secs <= width_secs, "{window:?}: a {native_secs} s bucket");
                let (lo, hi) = (start_sec * SEC, (start_sec + native_secs) * SEC);
                let slot_ms = start_sec * SEC / width_ms * width_ms;
                let samples = raw.iter().filter(|(at, _)| (lo..hi).contains(at)).map(|s| s.1);
                expected.entry(slot_ms).or_default().extend(samples);
            }
            let d = reg.detail("op", window, now).unwrap();
            let at: Vec<u64> = d.series.iter().map(|p| p.at_ms).collect();
            let want_at: Vec<u64> = expected.keys().copied().collect();
            assert_eq!(at, want_at, "seed {seed}, {window:?}: empty intervals omitted");
            for (i, p) in d.series.iter().enumerate() {
                let mut data = expected[&p.at_ms].clone();
                data.sort_by(f64::total_cmp);
                assert_eq!(p.count, data.len() as u64, "{window:?} at {}", p.at_ms);
                if i > 0 {
                    // Past the window's oldest edge a point is its whole interval.
                    let span = p.at_ms..p.at_ms + width_ms;
                    let n = raw.iter().filter(|(at, _)| span.contains(at)).count();
                    assert_eq!(p.count, n as u64, "{window:?} at {}", p.at_ms);
                }
                let bound = OperationRegistry::RELATIVE_ERROR + 1e-9;
                for (q, got) in [(0.50, p.p50_ms), (0.95, p.p95_ms), (0.99, p.p99_ms)] {
                    let want = exact_quantile(&data, q);
                    let err = rel_err(got, want);
                    assert!(
                        err <= bound,
                        "seed {seed}, {window:?} at {} p{q}: got {got}, exact {want}",
                        p.at_ms
                    );
                }
                assert!(data[0] <= p.p50_ms && p.p99_ms <= data[data.len() - 1]);
            }
        }
    }
}

#[test]
fn detail_series_merges_bins_not_quantiles() {
    let mut reg = registry();
    // Two seconds of one 10 s interval: 90 fast samples, then 10 slow ones.
    for _ in 0..90 {
        ok(&mut reg, "op", 1.0, T0 - 30 * SEC, T0);
    }
    for _ in 0..10 {
        ok(&mut reg, "op", 100.0, T0 - 29 * SEC, T0);
    }
    let d = reg.detail("op", Window::M5, T0).unwrap();
    assert_eq!(d.series.len(), 1);
    let p = &d.series[0];
    assert_eq!((p.at_ms, p.bucket_secs, p.count), (T0 - 30 * SEC, 10, 100));
    // Ranks 50, 95 and 99 of the merged samples; averaging per-second quantiles would give
    // 50.5 for the p50.
    let bound = OperationRegistry::RELATIVE_ERROR + 1e-9;
    assert!(rel_err(p.p50_ms, 1.0) <= bound, "p50 {}", p.p50_ms);
    assert!(rel_err(p.p95_ms, 100.0) <= bound, "p95 {}", p.p95_ms);
    assert!(rel_err(p.p99_ms, 100.0) <= bound, "p99 {}", p.p99_ms);
}

#[test]
fn detail_series_omits_empty_intervals_and_joins_neighbours() {
    let mut reg = registry();
    for age_secs in [50, 41, 40, 39, 3] {
        ok(&mut reg, "op", age_secs as f64, T0 - age_secs * SEC, T0);
    }
    let d = reg.detail("op", Window::M1, T0).unwrap();
    let got: Vec<(u64, u64)> = d.series.iter().map(|p| (p.at_ms, p.count)).collect();
    let want = [(T0 - 50 * SEC, 1), (T0 - 42 * SEC, 1), (T0 - 40 * SEC, 2), (T0 - 4 * SEC, 1)];
    assert_eq!(got, want);
    // The joined interval holds 40 and 39: nearest rank gives the smaller one as p50, and the
    // largest is clamped to the exact max.
    assert!(rel_err(d.series[2].p50_ms, 39.0) <= 0.01 + 1e-9, "{}", d.series[2].p50_ms);
    assert_eq!(d.series[2].p99_ms, 40.0);
}

#[test]
fn wide_buckets_count_in_the_point_holding_their_start() {
    // Recorded 20 minutes late, both samples share one 60 s bucket starting at T0.
    let mut reg = registry();
    ok(&mut reg, "op", 5.0, T0 + 10 * SEC, T0 + 20 * MIN);
    ok(&mut reg, "op", 7.0, T0 + 45 * SEC, T0 + 20 * MIN);
    // Asked with a clock three minutes after T0, the bucket lies in the 5m and 15m windows.
    for (window, width_secs) in [(Window::M5, 10), (Window::M15, 30)] {
        let d = reg.detail("op", window, T0 + 3 * MIN).unwrap();
        assert_eq!(d.series.len(), 1, "{window:?}");
        let p = &d.series[0];
        assert_eq!((p.at_ms, p.bucket_secs, p.count), (T0, width_secs, 2), "{window:?}");
        assert!(rel_err(p.p50_ms, 5.0) <= 0.01 + 1e-9, "{window:?}: p50 {}", p.p50_ms);
        assert_eq!(p.p95_ms, 7.0, "{window:?}");
    }
    let h = reg.detail("op", Window::H1, T0 + 20 * MIN).unwrap();
    let got: Vec<(u64, u64, u64)> =
        h.series.iter().map(|p| (p.at_ms, p.bucket_secs, p.count)).collect();
    assert_eq!(got, [(T0, 60, 2)]);
}

#[test]
fn histogram_of_equal_and_zero_samples() {
    let mut reg = registry();
    for _ in 0..5 {
        ok(&mut reg, "same", 3.0, T0, T0);
    }
    let h = reg.detail("same", Window::M1, T0).unwrap().histogram;
    assert_eq!(h, vec![HistogramBin { lower_ms: 3.0, upper_ms: 3.0, count: 5 }]);

    for d in [0.0, 0.0, 1.0, 10.0, 100.0] {
        ok(&mut reg, "zeros", d, T0, T0);
    }
    let h = reg.detail("zeros", Window::M1, T0).unwrap().histogram;
    assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 5);
    assert_eq!(h[0].lower_ms, 0.0);
    assert_eq!(h[0].count, 2);
}

#[test]
fn names_are_distinct_and_summaries_only_list_active_ones() {
    let mut reg = registry();
    ok(&mut reg, "GET /a", 1.0, T0, T0);
    ok(&mut reg, "GET /b", 2.0, T0 - 10 * MIN, T0);
    let names = |w| {
        let mut v: Vec<String> = reg.summaries(w, T0).into_iter().map(|s| s.name).collect();
        v.sort();
        v
    };
    assert_eq!(names(Window::M1), ["GET /a"]);
    assert_eq!(names(Window::M15), ["GET /a", "GET /b"]);
    assert_eq!(reg.series_count(), 2);
}

#[test]
fn clock_going_backwards_does_not_lose_or_double_samples() {
    let mut reg = registry();
    let mut expected = 0;
    let steps = [(T0, T0), (T0 - 5 * MIN, T0 - 4 * MIN), (T0 - 20 * MIN + 30 * SEC, T0 - 20 * MIN)];
    for (at, now) in steps {
        ok(&mut reg, "op", 1.0, at, now);
        expected += 1;
    }
    // Stamped 19.5 min ahead of a clock that stepped back: beyond the skew, refused.
    let ahead = reg.record("op", 1.0, true, 1.0, T0 - 30 * SEC, T0 - 20 * MIN);
    assert_eq!(ahead, Err(RecordError::TooFarAhead));
    reg.prune(T0 - 30 * MIN, |_| {});
    reg.prune(T0, |_| {});
    assert_eq!(count_in(&reg, "op", Window::H1, T0), expected);
}

#[test]
fn running_window_bins_match_a_fresh_merge() {
    for seed in [7, 10, 11, 13] {
        random_steps_keep_window_bins_exact(seed);
    }
}

fn random_steps_keep_window_bins_exact(seed: u64) {
    // Random names, ages, weights and clock steps (some backwards, some long jumps); after
    // every step the incremental window bins must equal a merge of the buckets from scratch,
    // whether or not the registry's upkeep ran first.
    let mut rng = Rng(seed);
    let mut reg = registry();
    let mut now = T0;
    for step in 0..3000u64 {
        now = match rng.next_u64() % 20 {
            0 => now.saturating_sub(rng.next_u64() % (5 * MIN)),
            1 => now + rng.next_u64() % (65 * MIN),
            _ => now + rng.next_u64() % (3 * SEC),
        };
        for _ in 0..rng.next_u64() % 8 {
            let name = ["a", "b", "c"][(rng.next_u64() % 3) as usize];
            let age = match rng.next_u64() % 4 {
                0 => rng.next_u64() % (70 * MIN),
                1 => rng.next_u64() % (2 * MIN),
                _ => rng.next_u64() % (2 * SEC),
            };
            let at = (now + 30 * SEC).saturating_sub(age);
            let weight = [1.0, 1.0, 2.5, 10.0][(rng.next_u64() % 4) as usize];
            let _ = reg.record(name, log_normal(&mut rng), step % 5 != 0, weight, at, now);
        }
        if step % 97 == 0 {
            reg.prune(now, |_| {});
        }
        // The per-tick upkeep on some steps: what readers see must not depend on it.
        if step % 3 == 0 {
            reg.maintain(now);
        }
        let query_now = now + rng.next_u64() % (90 * SEC);
        // One corrections buffer for every view, as the alert engine reads them.
        let mut delta = Vec::new();
        for series in reg.series.values() {
            series.check_invariants();
            for w in Window::ALL {
                let got = series.stats(w, query_now / 1000).map(|a| summary_of(&a));
                let want = series.scratch(w, query_now / 1000);
                let want = (want.count > 0).then(|| summary_of(&want));
                assert_eq!(got, want, "seed {seed}, step {step}, {w:?}");
                let (count, errors, _) = series.totals(w, query_now / 1000);
                assert_eq!((count, errors), want.map_or((0, 0), |w| (w.0, w.1)));
                // Read in place, the window says the same as the merge from scratch.
                let view = series.view(w, query_now / 1000, &mut delta);
                let viewed = view.as_ref().map(|v| v.figures_wanted([true; 4]).0);
                let scratch = series.scratch(w, query_now / 1000);
                let want = (scratch.count > 0).then(|| scratch.figures());
                assert_eq!(viewed, want, "view: seed {seed}, step {step}, {w:?}");
                // Some quantiles only: the same values, the others not computed.
                let wanted = [step % 2 == 0, step % 3 == 0, false, step % 5 != 0];
                if let (Some(view), Some(want)) = (view, want) {
                    let (_, some) = view.figures_wanted(wanted);
                    for i in 0..4 {
                        assert_eq!(some[i], wanted[i].then_some(want.quantiles[i]), "{i}");
                    }
                }
            }
        }
    }
    assert!(reg.bucket_count() > 0);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Samples spread over many buckets (of every tier) merge into exactly the figures of
        /// the same samples in one bucket, and every quantile is within the stated bound of the
        /// exact nearest-rank value.
        #[test]
        fn merged_parts_equal_the_whole_within_the_bound(
            samples in prop::collection::vec((0.001f64..1e6, 0u64..3_500), 1..300),
        ) {
            let mut whole = registry();
            let mut parts = registry();
            for &(value, age_secs) in &samples {
                whole.record("op", value, true, 1.0, T0, T0).unwrap();
                parts.record("op", value, true, 1.0, T0 - age_secs * SEC, T0).unwrap();
            }
            // Let the parts roll up into coarser tiers.
            parts.prune(T0, |_| {});
            let a = summary(&whole, "op", Window::H1, T0);
            let b = summary(&parts, "op", Window::H1, T0);
            prop_assert_eq!(a.count, samples.len() as u64);
            prop_assert_eq!(b.count, a.count);
            prop_assert_eq!((b.min_ms, b.max_ms), (a.min_ms, a.max_ms));
            prop_assert_eq!(
                (b.p50_ms, b.p90_ms, b.p95_ms, b.p99_ms),
                (a.p50_ms, a.p90_ms, a.p95_ms, a.p99_ms)
            );
            let mut sorted: Vec<f64> = samples.iter().map(|s| s.0).collect();
            sorted.sort_by(f64::total_cmp);
            for (q, got) in [(0.5, a.p50_ms), (0.9, a.p90_ms), (0.95, a.p95_ms), (0.99, a.p99_ms)] {
                let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
                let exact = sorted[rank - 1];
                prop_assert!(rel_err(got, exact) <= OperationRegistry::RELATIVE_ERROR + 1e-9,
                    "q{} {} vs exact {}", q, got, exact);
            }
        }
    }
}

#[test]
fn quantiles_walked_from_the_top_are_those_walked_from_the_bottom() {
    use super::read::summary_quantiles;
    use super::sketch::{Key, RankWalk, WindowBins};
    let mut rng = Rng(42);
    for case in 0..500 {
        // Held bins plus corrections that add to some and take from others (never below zero,
        // as a window's corrections never take more than it holds).
        let mut bins = WindowBins::default();
        let mut want = std::collections::BTreeMap::<Key, i64>::new();
        for _ in 0..1 + rng.next_u64() % 40 {
            let key = if rng.next_u64().is_multiple_of(10) {
                None
            } else {
                Some((rng.next_u64() % 300) as i16)
            };
            let n = 1 + rng.next_u64() % 5;
            bins.add_key(key, n);
            *want.entry(key).or_default() += n as i64;
        }
        let mut delta = std::collections::BTreeMap::<Key, i64>::new();
        for _ in 0..rng.next_u64() % 6 {
            // Keys below, inside and above the held ones, and the zero bin.
            let key = match rng.next_u64() % 8 {
                0 => None,
                _ => Some((rng.next_u64() % 340) as i16 - 10),
            };
            let held = want.get(&key).copied().unwrap_or(0);
            let d = if held > 0 && rng.next_u64().is_multiple_of(2) {
                -((1 + rng.next_u64() % held as u64) as i64)
            } else {
                (1 + rng.next_u64() % 3) as i64
            };
            if delta.contains_key(&key) {
                continue;
            }
            delta.insert(key, d);
            *want.entry(key).or_default() += d;
        }
        let delta: Vec<(Key, i64)> = delta.into_iter().collect();
        let total: u64 = want.values().map(|&c| c as u64).sum();
        let mut walk = RankWalk::new(total, [0.50, 0.90, 0.95, 0.99]);
        for (&k, &c) in want.iter().filter(|(_, c)| **c > 0) {
            walk.feed(k, c as u64);
        }
        let (min_ms, max_ms) = (0.0, f64::MAX);
        let bottom_up = walk.finish(min_ms, max_ms);
        assert_eq!(summary_quantiles(&bins, &delta, min_ms, max_ms), bottom_up, "case {case}");
    }
}

#[test]
fn series_figures_reads_every_kept_series_whatever_their_number() {
    // More series than one run read ahead at once, with some not due (by their key's hash),
    // some left out by `keep` and one without samples in the window: each due, kept series
    // with samples comes out once, as its summary has it.
    let now = 1_700_000_000_000;
    let mut reg = registry();
    for i in 0..53u32 {
        for j in 0..=i % 7 {
            ok(&mut reg, &format!("op.{i:02}"), f64::from(10 + i + j), now - 2_000, now);
        }
    }
    ok(&mut reg, "op.old", 5.0, now - 600_000, now);
    let mut rows = Vec::new();
    let due = |hash: u64| !hash.is_multiple_of(3);
    let keep = |key: &SeriesKey| {
        key.key.strip_prefix("op.").filter(|n| !n.ends_with('3')).map(str::to_string)
    };
    reg.series_figures(Window::M1, now, [true, false, true, false], due, keep, &mut rows);
    let mut got: Vec<(String, u64, Option<f64>)> =
        rows.iter().map(|(n, f)| (n.clone(), f.count, f.quantiles[2])).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, u64, Option<f64>)> = (0..53u32)
        .map(|i| format!("{i:02}"))
        .filter(|n| !n.ends_with('3') && due(key_hash(&format!("op.{n}"))))
        .map(|n| {
            let s = summary(&reg, &format!("op.{n}"), Window::M1, now);
            (n, s.count, Some(s.p95_ms))
        })
        .collect();
    assert!((20..40).contains(&want.len()), "{} of 48 due", want.len());
    assert_eq!(got, want);
}

#[test]
fn failures_keep_their_own_mean_through_windows_tiers_and_restored_minutes() {
    let mut reg = registry();
    // Over ten minutes: 9 successes of 10 ms and a failure of 1,000 ms every 10 seconds.
    for i in 0..60u64 {
        let at = T0 - 10 * MIN + i * 10 * SEC;
        for _ in 0..9 {
            ok(&mut reg, "op", 10.0, at, at);
        }
        reg.record("op", 1000.0, false, 1.0, at + 1, at + 1).unwrap();
    }
    for (window, now) in [(Window::M15, T0), (Window::H1, T0), (Window::H1, T0 + 30 * MIN)] {
        let s = summary(&reg, "op", window, now);
        assert_eq!((s.count, s.error_count), (600, 60), "{window:?} at {now}");
        assert_eq!(s.error_mean_ms, Some(1000.0), "{window:?} at {now}");
        assert_eq!(s.ok_mean_ms, Some(10.0), "{window:?} at {now}");
        assert!((s.mean_ms - 109.0).abs() < 1e-9, "{}", s.mean_ms);
    }
    // Without failures there is no failures' mean (and the successes' is the mean).
    ok(&mut reg, "calm", 10.0, T0, T0);
    let calm = summary(&reg, "calm", Window::M1, T0);
    assert_eq!((calm.error_mean_ms, calm.ok_mean_ms), (None, None));
    // A stored minute brings its failures' sum back; one stored without it (before the store
    // kept it) leaves the failures' mean unknown rather than 0 ms.
    let mut minute = RollupRecorder::default();
    minute.record(10.0, 3, true);
    minute.record(500.0, 1, false);
    let minute = minute.finish();
    assert_eq!(minute.error_sum_ms, Some(500.0));
    reg.restore_minute("restored", T0 - 5 * MIN, &minute, T0, true).unwrap();
    let restored = summary(&reg, "restored", Window::H1, T0);
    assert_eq!((restored.error_mean_ms, restored.ok_mean_ms), (Some(500.0), Some(10.0)));
    let mut old = minute.clone();
    old.error_sum_ms = None;
    reg.restore_minute("old", T0 - 5 * MIN, &old, T0, true).unwrap();
    assert_eq!(summary(&reg, "old", Window::H1, T0).error_mean_ms, None);
    // Live failures beside it do not make it known: the mean would leave the old one out;
    // nor is the successes' mean known (what unknown failures leave of the sum).
    reg.record("old", 1000.0, false, 1.0, T0 - 30 * SEC, T0).unwrap();
    let old = summary(&reg, "old", Window::H1, T0);
    assert_eq!((old.error_mean_ms, old.ok_mean_ms), (None, None));
    // Once that minute has left the window, the live failures' mean is known again.
    assert_eq!(summary(&reg, "old", Window::M1, T0).error_mean_ms, Some(1000.0));
    // Failures that took no time are fast, not unknown.
    reg.record("instant", 0.0, false, 1.0, T0, T0).unwrap();
    ok(&mut reg, "instant", 40.0, T0, T0);
    let s = summary(&reg, "instant", Window::M1, T0);
    assert_eq!((s.error_mean_ms, s.ok_mean_ms), (Some(0.0), Some(40.0)));
}
