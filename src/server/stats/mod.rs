//! Per-operation statistics over sliding windows (1m, 5m, 15m, 1h): counts, error rates and
//! latency percentiles. Pure code: no clocks, no I/O; every call takes `now_ms` (Unix ms).
//!
//! # Percentiles
//! Each operation keeps DDSketch bins per time bucket: the index mapping comes from the crate
//! `sketches-ddsketch` 0.4 (`gamma = (1 + a) / (1 - a)`, a bin reads back as
//! `gamma^k * 2 gamma / (1 + gamma)`, so every value is within `a = 0.01` of its bin's value),
//! the count stores are our own (`sketch.rs`). Why not the crate's `DDSketch` itself: a window
//! had to merge up to ~200 bucket sketches per operation (130 ms for 1,000 operations over 1h,
//! measured on a loaded 2-core machine), each sketch holds at least 1 KiB (128 u64 bins), so
//! 430 KiB per busy operation, and the crate offers neither subtraction nor access to its bins.
//!
//! Here each bucket stores only its non-empty bins, and each window keeps a running aggregate
//! of its sealed buckets (bins, count, errors, sum in integer nanoseconds, min and max), adding
//! a bucket when it is sealed and subtracting it when it leaves; integer counts make that
//! exact, and min/max are rescanned from the buckets only when a bucket holding one of them
//! leaves. A query copies the aggregate only to add the current (unsealed) bucket or to catch up
//! with a clock that moved since the last `record` or `prune` of that name. Quantiles are the
//! bin of the sample of 1-based rank `ceil(q * count)` (nearest rank, see `RankWalk` in
//! `sketch.rs`), clamped into the exact `[min, max]` of the window.
//!
//! # Buckets and window edges
//! Buckets are 1 s wide for the newest ~60-70 s, 10 s wide up to ~15-16 min and 60 s wide
//! up to one hour; older buckets roll into coarser ones as time passes (see `series.rs`), so
//! an operation never holds more than ~210 buckets, however many samples arrive.
//! A window of `W` seconds at `now_ms` covers the `W` whole seconds ending with the current
//! (partial) second. A bucket belongs to a window when more than half of it lies inside, so
//! window edges are exact to the second for 1m, within ±5 s for 5m and 15m, within ±30 s
//! for 1h. Samples stamped in the future (accepted up to 60 s ahead, refused beyond) are in
//! every window. A window's rate divides by the span it really covers: its nominal length, or
//! the time since the server started (or since the oldest backfilled sample) when that is
//! shorter.
//! Each bucket keeps its exact count, errors, sum, the part of the sum failures took (so a
//! summary tells whether failures are fast or slow: `error_mean_ms`), min and max.
//!
//! # Latency series
//! [`OperationRegistry::detail`] draws its series on one uniform grid per window, whatever the
//! native bucket widths: 2 s points for 1m, 10 s for 5m, 30 s for 15m and 60 s for 1h (30 or
//! 60 points, one more when the window's edge splits an interval, plus any for samples stamped
//! in the future), each starting at a multiple of its width in Unix time. A point merges the
//! bins of every bucket of the window whose start lies in it, so its quantiles are true
//! nearest-rank quantiles of that interval (within 1 %), never averages; its `count` is the
//! merged count, so the points' counts add up to the window's. A native bucket wider than the
//! point width (a 60 s bucket in a window of 10 s points, which the tiers only produce when
//! the query clock is well behind the newest one seen) counts wholly in the point holding its
//! start. The oldest point may start before the window and hold only the part of its interval
//! inside it. Intervals without samples get no point, so a chart shows gaps there.

mod read;
mod rollup;
mod series;
mod sketch;

pub use rollup::{DecodeError, RangeStats, Rollup, RollupRecorder};
pub use series::{Lifetime, Placed, MAX_SAMPLES_PER_SEC};
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_store;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::model::ops::{LatencyThresholds, OperationDetail, OperationSummary, Window};
use series::{Aggregate, Figures, Series, RETENTION_SECS};

/// Samples stamped further ahead of `now_ms` than this (the allowed clock skew) are refused.
pub const MAX_FUTURE_MS: u64 = 60_000;
/// Samples older than this before `now_ms` are refused.
const RETENTION_MS: u64 = RETENTION_SECS * 1000;
/// Largest accepted duration (about 31.7 years); larger is an invalid value.
pub const MAX_DURATION_MS: f64 = 1e12;
/// Largest weight one sample may carry (a sample rate of one in a million); larger is clamped.
pub const MAX_WEIGHT: f64 = 1e6;

/// A group of series in a summary: its name and the tags it is grouped by.
pub type Group = (String, std::collections::BTreeMap<String, String>);

/// Settings of an [`OperationRegistry`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatsConfig {
    /// Most distinct operation names held at once.
    pub max_series: usize,
    /// Bounds used to classify each operation's p95.
    pub thresholds: LatencyThresholds,
    /// Unix ms from which samples could arrive (the server's start): a window younger than
    /// its nominal span divides its rate by the span really covered since then.
    pub started_ms: u64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { max_series: 10_000, thresholds: LatencyThresholds::default(), started_ms: 0 }
    }
}

/// Why a sample was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The sample is stamped more than one hour before `now_ms`.
    TooOld,
    /// The sample is stamped more than [`MAX_FUTURE_MS`] after `now_ms`.
    TooFarAhead,
    /// The sample's series already counted as many samples in that second as a bucket can
    /// hold without its bins saturating ([`MAX_SAMPLES_PER_SEC`]).
    Saturated,
    /// The name is new and `max_series` names are already held.
    CardinalityCap,
    /// The duration is not finite, negative or above [`MAX_DURATION_MS`], or the weight is not
    /// finite and positive.
    InvalidValue,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordError::TooOld => "sample is older than one hour",
            RecordError::TooFarAhead => "sample is stamped more than 60 s in the future",
            RecordError::Saturated => "too many samples in one second for one operation",
            RecordError::CardinalityCap => "too many distinct operation names",
            RecordError::InvalidValue => "duration or weight is not a valid number",
        })
    }
}

impl std::error::Error for RecordError {}

/// A series' key in the registry: the key (name and tags), shared with what is read from it,
/// and [`key_hash`] of it, kept beside it so that readers that spread series by their hash
/// (the alert engine's cadence slots) need not read the key's own block for each series.
#[derive(Clone, Debug)]
pub struct SeriesKey {
    key: Arc<str>,
    hash: u64,
}

impl SeriesKey {
    fn new(key: &str) -> SeriesKey {
        SeriesKey { key: Arc::from(key), hash: key_hash(key) }
    }

    /// [`key_hash`] of the key.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl std::ops::Deref for SeriesKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.key
    }
}

impl std::borrow::Borrow<str> for SeriesKey {
    fn borrow(&self) -> &str {
        &self.key
    }
}

/// The map hashes and compares the key alone, as `str` does (which [`std::borrow::Borrow`]
/// requires).
impl std::hash::Hash for SeriesKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for SeriesKey {}

/// A hash of a series key that is the same in every process and on every platform (unlike the
/// registry's map, seeded per process): what spreads series over the seconds of the alert
/// engine's cadences, the same slot on every tick and after a restart. foldhash with a fixed
/// seed: FNV-1a's bits are too poorly mixed for keys that differ only at the end.
pub fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    const FIXED: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5107_5eed);
    FIXED.hash_one(key)
}

/// One series' figures over a window as the alert engine judges them: the exact count, failures,
/// mean, maximum and rate as in an [`OperationSummary`], and only the quantiles asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesFigures {
    /// The series key: name and tags (shared with the registry, not copied).
    pub key: Arc<str>,
    /// [`key_hash`] of `key` (kept beside it in the registry, not computed again).
    pub hash: u64,
    pub count: u64,
    pub error_count: u64,
    pub mean_ms: f64,
    pub max_ms: f64,
    pub rate_per_min: f64,
    /// 0.0..=100.0.
    pub success_pct: f64,
    /// p50, p90, p95 and p99; `None` where not asked for.
    pub quantiles: [Option<f64>; 4],
}

/// How many series [`OperationRegistry::series_figures`] reads ahead at once.
const READ_AHEAD: usize = 16;

/// Figures across every operation over one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Totals {
    pub window: Window,
    /// Samples in the window, weights applied.
    pub count: u64,
    pub error_count: u64,
    /// Mean duration in milliseconds; 0.0 when `count` is 0.
    pub mean_ms: f64,
    /// `count` divided by the minutes the window really covers (see [`covered_secs`]).
    pub rate_per_min: f64,
    /// Share of successful samples, 0.0..=100.0; `None` when `count` is 0 (no data).
    pub success_pct: Option<f64>,
}

/// Statistics of every operation name, bounded in names and in memory per name.
pub struct OperationRegistry {
    cfg: StatsConfig,
    /// foldhash: several times faster than SipHash on short names and still seeded per
    /// process, so remote senders cannot aim for collisions. Each series is boxed: the table
    /// keeps an eighth or more of its slots empty (and doubles when it grows), and a slot of
    /// a few hundred bytes would make those empty slots megabytes that no budget counts.
    series: HashMap<SeriesKey, Box<Series>, foldhash::fast::RandomState>,
    dropped_by_cap: u64,
    /// Estimated bytes of every series (see [`Self::memory_bytes`]).
    bytes: usize,
    /// Unix ms from which the windows hold data: the start, or an older backfilled sample.
    origin_ms: u64,
    /// The number the next new series gets.
    next_number: u64,
    /// A store is attached: series hand it their samples at flushes ([`Self::take_unstored`]).
    stored: bool,
}

/// What [`OperationRegistry::record_within`] counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Samples counted (the weight, rounded with the carried remainder; may be 0).
    pub n: u64,
    /// The series' number: given once per series and never reused, so the store's spool can
    /// keep the samples of a held series by it without comparing names.
    pub series: u64,
    /// Where the store gets them from.
    pub placed: Placed,
}

impl OperationRegistry {
    /// Relative error bound of every quantile reported (0.01 = 1 %).
    pub const RELATIVE_ERROR: f64 = sketch::ALPHA;

    pub fn new(cfg: StatsConfig) -> Self {
        OperationRegistry {
            cfg,
            series: HashMap::default(),
            dropped_by_cap: 0,
            bytes: 0,
            origin_ms: cfg.started_ms,
            next_number: 0,
            stored: false,
        }
    }

    /// From now on the series hand their samples to the store at [`Self::take_unstored`]
    /// (those of seconds after what they hold now).
    pub fn attach_store(&mut self) {
        self.stored = true;
        self.series.values_mut().for_each(|s| s.attach_store());
    }

    /// Hands the store the samples of every second before `before_ms`'s (`u64::MAX`: of every
    /// second, at shutdown) that it has not been handed, as `emit(key, minute_ms, rollup)`:
    /// the sealed 1 s buckets, turned into minute rollups (see [`Series::take_unstored`]).
    pub fn take_unstored(&mut self, before_ms: u64, mut emit: impl FnMut(&str, u64, Rollup)) {
        if !self.stored {
            return;
        }
        let before_sec = if before_ms == u64::MAX { u64::MAX } else { before_ms / 1000 };
        for (key, series) in &mut self.series {
            series.take_unstored(before_sec, |minute_sec, rollup| {
                emit(key, minute_sec.saturating_mul(1000), rollup);
            });
        }
    }

    /// A new series with the next number.
    fn new_series(&mut self) -> Box<Series> {
        self.next_number += 1;
        Box::new(Series::new(self.next_number, self.stored))
    }

    /// Records one sample of `name` that took `duration_ms` and ended at `at_ms`.
    ///
    /// `weight` (finite, > 0, clamped to [`MAX_WEIGHT`]) is how many samples this one stands
    /// for (10.0 for a StatsD sample rate of 0.1). It is rounded to a whole count, the remainder
    /// carried to the operation's next sample, so counts add up to the weights over time; a
    /// weight below 1 may therefore record nothing this time.
    /// Weights of successes and failures carry separate remainders, so a rare failure rate is
    /// not rounded away by the successes around it.
    /// For a known name whose current bucket exists this does not allocate, except for an
    /// amortised growth of the bucket's bin list when the duration falls in a new 1 % bin.
    ///
    /// # Errors
    /// [`RecordError::InvalidValue`], [`RecordError::TooOld`] (more than 1 h before `now_ms`),
    /// [`RecordError::TooFarAhead`] (more than 60 s after), [`RecordError::Saturated`],
    /// [`RecordError::CardinalityCap`] (also counted in [`Self::dropped_by_cap`]).
    pub fn record(
        &mut self,
        name: &str,
        duration_ms: f64,
        success: bool,
        weight: f64,
        at_ms: u64,
        now_ms: u64,
    ) -> Result<(), RecordError> {
        self.record_within(name, duration_ms, success, weight, at_ms, now_ms, true).map(|_| ())
    }

    /// [`Self::record`], where a new name is refused unless `room` (a budget shared with other
    /// kinds of series has space) as well as this registry's own `max_series`.
    #[allow(clippy::too_many_arguments)]
    pub fn record_within(
        &mut self,
        name: &str,
        duration_ms: f64,
        success: bool,
        weight: f64,
        at_ms: u64,
        now_ms: u64,
        room: bool,
    ) -> Result<Recorded, RecordError> {
        let valid =
            (0.0..=MAX_DURATION_MS).contains(&duration_ms) && weight.is_finite() && weight > 0.0;
        if !valid {
            return Err(RecordError::InvalidValue);
        }
        if at_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
            return Err(RecordError::TooFarAhead);
        }
        if at_ms < now_ms.saturating_sub(RETENTION_MS) {
            return Err(RecordError::TooOld);
        }
        let weight = weight.min(MAX_WEIGHT);
        // Rates are over the time since the oldest sample recorded: a refused one (a new name
        // over the cap, a full bucket, a weight under one) must not stretch it.
        let recorded = if let Some(series) = self.series.get_mut(name) {
            add(series, duration_ms, success, weight, at_ms, now_ms)?
        } else {
            if !room || self.series.len() >= self.cfg.max_series {
                self.dropped_by_cap = self.dropped_by_cap.saturating_add(1);
                return Err(RecordError::CardinalityCap);
            }
            let mut series = self.new_series();
            let recorded = add(&mut series, duration_ms, success, weight, at_ms, now_ms)?;
            self.bytes += entry_bytes(name, &series);
            self.series.insert(SeriesKey::new(name), series);
            recorded
        };
        if recorded.n > 0 {
            self.origin_ms = self.origin_ms.min(at_ms);
        }
        Ok(recorded)
    }

    /// A summary of every series (key) with at least one sample in `window`, in no set order.
    pub fn summaries(&self, window: Window, now_ms: u64) -> Vec<OperationSummary> {
        self.summaries_grouped(window, now_ms, |key| Some((key.to_string(), Default::default())))
    }

    /// Appends to `out` the figures of each series whose key's [`key_hash`] `due` accepts, whose
    /// key `keep` accepts (`Some`, kept with the figures) and that has samples in `window`, in
    /// no set order (`out` is the caller's, so that its room is reused from one evaluation to
    /// the next), with only the quantiles `wanted` asks for: no grouping, sorting or merging
    /// (the alert engine reads series one by one, every tick). Each series is first brought up
    /// to `now_ms` (a no-op once the tick's upkeep has run), so that its window is read in
    /// place with at most the current second's samples added.
    pub fn series_figures<M>(
        &mut self,
        window: Window,
        now_ms: u64,
        wanted: [bool; 4],
        due: impl Fn(u64) -> bool,
        mut keep: impl FnMut(&SeriesKey) -> Option<M>,
        out: &mut Vec<(M, SeriesFigures)>,
    ) {
        let cur_sec = now_ms / 1000;
        let span = covered_secs(window, self.origin_ms, now_ms);
        let mut delta = Vec::new();
        // Series are taken a run at a time, and each run's keys, then the series kept, are
        // read ahead (see [`Series::read_ahead`]): the alert engine reads a thousand series
        // every tick, and hardly any of them is still in the cache from the last one. Series
        // not due are passed over by the hash held beside their key, their key unread (a
        // statistic over an hour judges one series in sixty each second).
        let mut entries = self.series.iter_mut().filter(|(key, _)| due(key.hash));
        let mut run = Vec::with_capacity(READ_AHEAD);
        let mut kept = Vec::with_capacity(READ_AHEAD);
        loop {
            run.extend(entries.by_ref().take(READ_AHEAD));
            if run.is_empty() {
                break;
            }
            let keys = run.iter().map(|(key, _)| key.key.bytes().next().unwrap_or(0));
            std::hint::black_box(keys.fold(0u8, u8::wrapping_add));
            kept.extend(run.drain(..).filter_map(|(key, series)| Some((keep(key)?, key, series))));
            let ahead = kept.iter().map(|(_, _, series)| series.read_ahead(window));
            std::hint::black_box(ahead.fold(0, u64::wrapping_add));
            for (mark, key, series) in kept.drain(..) {
                series.maintain(cur_sec);
                let Some(view) = series.view(window, cur_sec, &mut delta) else { continue };
                let (f, quantiles) = view.figures_wanted(wanted);
                let error_count = f.errors.min(f.count);
                let figures = SeriesFigures {
                    key: Arc::clone(&key.key),
                    hash: key.hash(),
                    count: f.count,
                    error_count,
                    mean_ms: f.mean_ms(),
                    max_ms: f.max_ms,
                    rate_per_min: rate_per_min(f.count, span),
                    success_pct: success_pct(f.count, error_count),
                    quantiles,
                };
                out.push((mark, figures));
            }
        }
    }

    /// Summaries of the series merged by `group`: `Some((name, tags))` puts a series key in
    /// the group of that name and tags, `None` leaves it out. Series alone in their group are
    /// summarised without copying their bins.
    pub fn summaries_grouped(
        &self,
        window: Window,
        now_ms: u64,
        group: impl Fn(&str) -> Option<Group>,
    ) -> Vec<OperationSummary> {
        let cur_sec = now_ms / 1000;
        let span = covered_secs(window, self.origin_ms, now_ms);
        let mut members: Vec<(Group, std::borrow::Cow<'_, Aggregate>)> = self
            .series
            .iter()
            .filter_map(|(key, series)| Some((group(key)?, series.stats(window, cur_sec)?)))
            .collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for run in members.chunk_by(|a, b| a.0 == b.0) {
            let Some(((name, tags), first)) = run.first() else { continue };
            let merged;
            let stats: &Aggregate = if run.len() == 1 {
                first
            } else {
                let mut all = Aggregate::default();
                run.iter().for_each(|(_, agg)| all.merge(agg));
                merged = all;
                &merged
            };
            let mut summary =
                summarize(name, Some(window), &stats.figures(), &self.cfg.thresholds, span);
            summary.tags.clone_from(tags);
            out.push(summary);
        }
        out
    }
    /// Width in seconds of the points of [`Self::detail`]'s latency series over `window`:
    /// 2 for 1m, 10 for 5m, 30 for 15m, 60 for 1h.
    pub const fn series_bucket_secs(window: Window) -> u64 {
        match window {
            Window::M1 => 2,
            Window::M5 => 10,
            Window::M15 => 30,
            Window::H1 => 60,
        }
    }

    /// Summary, latency series and a histogram of the series `key` over `window`; `None` when
    /// it has no sample there. See [`Self::detail_merged`].
    pub fn detail(&self, key: &str, window: Window, now_ms: u64) -> Option<OperationDetail> {
        self.detail_merged(key, |k| k == key, window, now_ms)
    }

    /// Summary (named `name`), latency series and a histogram of every series whose key
    /// `keep` accepts, merged, over `window`; `None` when they have no sample there. The
    /// series has one point per [`Self::series_bucket_secs`] interval with data, aligned to a
    /// multiple of that width (Unix time), oldest first, its quantiles taken from the merged
    /// bins of the interval (see "Latency series" in the module docs).
    pub fn detail_merged(
        &self,
        name: &str,
        keep: impl Fn(&str) -> bool,
        window: Window,
        now_ms: u64,
    ) -> Option<OperationDetail> {
        let cur_sec = now_ms / 1000;
        let kept: Vec<&Series> =
            self.series.iter().filter(|(k, _)| keep(k)).map(|(_, s)| &**s).collect();
        let mut stats = Aggregate::default();
        for series in &kept {
            if let Some(agg) = series.stats(window, cur_sec) {
                stats.merge(&agg);
            }
        }
        if stats.count == 0 {
            return None;
        }
        let span = covered_secs(window, self.origin_ms, now_ms);
        let summary = summarize(name, Some(window), &stats.figures(), &self.cfg.thresholds, span);
        let cutoff = series::cutoff_sec(window, cur_sec);
        let points = read::latency_series(
            kept.iter().flat_map(|s| s.window(cutoff)),
            Self::series_bucket_secs(window),
        );
        let histogram = read::histogram(&stats.bins, stats.min_ms, stats.max_ms);
        Some(OperationDetail {
            summary,
            relative_error: Self::RELATIVE_ERROR,
            series: points,
            histogram,
        })
    }

    /// Every series held, in no set order: its key, its summary over `window` (`None`
    /// without samples there) and what it recorded since it was first held.
    pub fn export(
        &self,
        window: Window,
        now_ms: u64,
    ) -> Vec<(&str, Option<OperationSummary>, Lifetime)> {
        let cur_sec = now_ms / 1000;
        let span = covered_secs(window, self.origin_ms, now_ms);
        self.series
            .iter()
            .map(|(key, series)| {
                let summary = series.stats(window, cur_sec).map(|stats| {
                    summarize(key, Some(window), &stats.figures(), &self.cfg.thresholds, span)
                });
                (&**key, summary, series.lifetime)
            })
            .collect()
    }

    /// The keys of every series held, in no set order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(|k| &**k)
    }

    /// Whether the series `key` is held.
    pub fn contains(&self, key: &str) -> bool {
        self.series.contains_key(key)
    }

    /// Count, errors, mean and rates across every operation over `window`.
    pub fn totals(&self, window: Window, now_ms: u64) -> Totals {
        let cur_sec = now_ms / 1000;
        let (mut count, mut error_count, mut sum_ms) = (0u64, 0u64, 0.0f64);
        for series in self.series.values() {
            let (c, e, s) = series.totals(window, cur_sec);
            count = count.saturating_add(c);
            error_count = error_count.saturating_add(e);
            sum_ms += s;
        }
        let error_count = error_count.min(count);
        Totals {
            window,
            count,
            error_count,
            mean_ms: if count == 0 { 0.0 } else { sum_ms / count as f64 },
            rate_per_min: rate_per_min(count, covered_secs(window, self.origin_ms, now_ms)),
            success_pct: (count > 0).then(|| success_pct(count, error_count)),
        }
    }

    /// Brings every series up to `now_ms`: seals the buckets whose second is over, rolls
    /// buckets up their tiers and slides each window's running aggregate. Readers do the same
    /// for what they read when this has not run yet, so it only moves the work to one place
    /// per tick (see `AppMetrics::upkeep`).
    pub fn maintain(&mut self, now_ms: u64) {
        let cur_sec = now_ms / 1000;
        for series in self.series.values_mut() {
            series.maintain(cur_sec);
        }
    }

    /// Distinct operation names held (each takes one slot of `max_series`).
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Samples refused because their name would have exceeded `max_series`.
    pub fn dropped_by_cap(&self) -> u64 {
        self.dropped_by_cap
    }

    /// Time buckets held across every operation.
    pub fn bucket_count(&self) -> usize {
        self.series.values().map(|s| s.bucket_count()).sum()
    }

    /// Estimated bytes held by the buckets and names (sketch bins counted by capacity), counted
    /// now.
    pub fn approx_memory_bytes(&self) -> usize {
        self.series.iter().map(|(name, s)| entry_bytes(name, s)).sum()
    }

    /// Estimated bytes held, as counted by the last [`Self::prune`] plus the series added
    /// since (cheap: no scan). Series that grew since the last prune are not yet counted.
    pub fn memory_bytes(&self) -> usize {
        self.bytes
    }

    /// Every series: its key, the start (Unix s) of its newest bucket (about when it last got
    /// a sample) and its estimated bytes.
    pub fn recency(&self) -> impl Iterator<Item = (&str, u64, usize)> {
        self.series.iter().map(|(key, s)| (&**key, s.newest_sec(), entry_bytes(key, s)))
    }

    /// Forgets the series `key` and its windows (its stored rows stay), after handing what the
    /// store has not been given of it to `emit(minute_ms, rollup)`; returns the bytes it was
    /// estimated to hold.
    pub fn evict(&mut self, key: &str, mut emit: impl FnMut(u64, Rollup)) -> usize {
        let Some(mut series) = self.series.remove(key) else { return 0 };
        series.take_unstored(u64::MAX, |minute_sec, rollup| {
            emit(minute_sec.saturating_mul(1000), rollup);
        });
        let freed = entry_bytes(key, &series);
        self.bytes = self.bytes.saturating_sub(freed);
        freed
    }

    /// Refills `name`'s windows with a stored minute starting at `minute_ms` (see
    /// [`series::Series::restore_minute`]); minutes older than the hour are ignored. A new name
    /// needs `room` and a slot of `max_series`, like a sample.
    pub fn restore_minute(
        &mut self,
        name: &str,
        minute_ms: u64,
        rollup: &Rollup,
        now_ms: u64,
        room: bool,
    ) -> Result<(), RecordError> {
        if minute_ms < now_ms.saturating_sub(RETENTION_MS + 60_000) || rollup.is_empty() {
            return Err(RecordError::TooOld);
        }
        // A minute the last run stamped ahead of this clock would count in every window until
        // the clock reaches it: refused as a live sample that far ahead is.
        if minute_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
            return Err(RecordError::TooFarAhead);
        }
        if !self.series.contains_key(name) {
            if !room || self.series.len() >= self.cfg.max_series {
                self.dropped_by_cap = self.dropped_by_cap.saturating_add(1);
                return Err(RecordError::CardinalityCap);
            }
            let series = self.new_series();
            self.series.insert(SeriesKey::new(name), series);
        }
        if let Some(series) = self.series.get_mut(name) {
            let before = series.approx_bytes();
            series.restore_minute(minute_ms / 1000, rollup, now_ms / 1000);
            self.bytes += series.approx_bytes().saturating_sub(before);
            self.origin_ms = self.origin_ms.min(minute_ms);
        }
        Ok(())
    }

    /// Rolls buckets up, drops data older than one hour and forgets series left without data,
    /// freeing their `max_series` slots; `forgotten` is called with each key dropped. Counts
    /// [`Self::memory_bytes`] afresh. Call it every few seconds.
    pub fn prune(&mut self, now_ms: u64, mut forgotten: impl FnMut(&str)) {
        let cur_sec = now_ms / 1000;
        let mut bytes = 0;
        self.series.retain(|key, series| {
            series.maintain(cur_sec);
            let keep = !series.is_empty();
            if keep {
                bytes += entry_bytes(key, series);
            } else {
                forgotten(key);
            }
            keep
        });
        self.bytes = bytes;
    }
}

/// Estimated bytes of one series and its key (their blocks, and their slot in the map).
fn entry_bytes(key: &str, series: &Series) -> usize {
    // An `Arc<str>`'s block holds its two counts before the bytes.
    crate::server::memory::malloc_chunk(2 * std::mem::size_of::<usize>() + key.len())
        + std::mem::size_of::<(SeriesKey, Box<Series>)>()
        + series.approx_bytes()
}

fn add(
    series: &mut Series,
    duration_ms: f64,
    success: bool,
    weight: f64,
    at_ms: u64,
    now_ms: u64,
) -> Result<Recorded, RecordError> {
    let n = series.take_weight(weight, success);
    let placed = if n == 0 {
        Placed::AtFlush // nothing to store
    } else if let Some(placed) = series.add(at_ms / 1000, duration_ms, n, success, now_ms / 1000) {
        placed
    } else {
        series.give_back_weight(n, weight, success);
        return Err(RecordError::Saturated);
    };
    Ok(Recorded { n, series: series.number, placed })
}

/// Seconds a window of `window` really covers at `now_ms` when data could arrive from
/// `origin_ms` on: its nominal span, or less right after start-up (at least one second).
pub fn covered_secs(window: Window, origin_ms: u64, now_ms: u64) -> u64 {
    let since_origin = (now_ms / 1000 + 1).saturating_sub(origin_ms / 1000);
    since_origin.clamp(1, window.secs())
}

fn rate_per_min(count: u64, span_secs: u64) -> f64 {
    count as f64 * 60.0 / span_secs.max(1) as f64
}

/// Share of successes in 0.0..=100.0; `count` must be > 0.
fn success_pct(count: u64, error_count: u64) -> f64 {
    100.0 * count.saturating_sub(error_count) as f64 / count.max(1) as f64
}

fn summarize(
    name: &str,
    window: Option<Window>,
    stats: &Figures,
    thresholds: &LatencyThresholds,
    span_secs: u64,
) -> OperationSummary {
    let (count, min_ms, max_ms) = (stats.count, stats.min_ms, stats.max_ms);
    let error_count = stats.errors.min(count);
    let [p50_ms, p90_ms, p95_ms, p99_ms] = stats.quantiles;
    // The successes' mean goes with the failures' (without failures it is the mean).
    let (ok_mean_ms, error_mean_ms) = stats.split_means();
    let ok_mean_ms = error_mean_ms.and(ok_mean_ms);
    OperationSummary {
        name: name.to_owned(),
        tags: Default::default(),
        window,
        count,
        span_secs,
        rate_per_min: rate_per_min(count, span_secs),
        success_pct: success_pct(count, error_count),
        error_count,
        min_ms,
        mean_ms: stats.mean_ms(),
        max_ms,
        p50_ms,
        p90_ms,
        p95_ms,
        p99_ms,
        latency_class: thresholds.classify(p95_ms),
        error_mean_ms,
        ok_mean_ms,
    }
}
