//! One operation's samples: tiered time buckets (1 s, 10 s, 60 s) and, per window, a running
//! aggregate of the buckets inside it.
//!
//! Every sample lands in exactly one bucket. Buckets of a tier are kept sorted by start time in
//! a `VecDeque`; as time passes the oldest buckets of a tier are merged into the enclosing bucket
//! of the next, coarser tier, and 60 s buckets are dropped once wholly older than one hour.
//! Rolling up happens a whole parent slot at a time (all ten 1 s buckets of a 10 s slot, all six
//! 10 s buckets of a 60 s slot), so buckets of different tiers never overlap in time.
//!
//! A bucket is *sealed* once its time is over. Sealed buckets are added to the running
//! aggregate of every window they belong to and subtracted when they leave it, so a window's
//! figures and percentiles need no merging at query time: the query copies the aggregate only
//! when the newest (unsealed) buckets hold data or the clock has moved since the last update,
//! and adds or removes just those few buckets.
//!
//! The series is also what the history store is handed (see [`Series::take_unstored`]): once a
//! second, the 1 s buckets whose second is over are turned into minute rollups, so a sample is
//! recorded once, not once here and again for the store. Samples that land in a bucket the
//! store already has (a late sample) are the caller's to spool one by one ([`Placed::Spool`]).

use std::borrow::Cow;
use std::collections::VecDeque;

use super::read::{summary_quantiles, wanted_quantiles};
use super::rollup::{Rollup, RollupRecorder};
use super::sketch::{key_of, BucketBins, Key, WindowBins};
use crate::model::ops::Window;

/// Oldest data kept, in seconds.
pub(super) const RETENTION_SECS: u64 = 3600;

/// Most samples (weights applied) one series may count per second of a bucket's width. Bin
/// counts are `u32`; a 60 s bucket merges at most 60 s of samples, so with this bound no bin,
/// however the samples fall into bins and buckets roll up, can ever saturate.
pub const MAX_SAMPLES_PER_SEC: u64 = u32::MAX as u64 / 60;

/// One resolution of the bucket ladder.
struct Tier {
    width_secs: u64,
    /// Buckets stay in this tier while the newest second of their parent slot (the enclosing
    /// bucket of the next tier) is younger than this many seconds.
    horizon_secs: u64,
}

/// The ladder, finest first. A busy operation holds at most ~70 + 90 + 47 buckets (plus up
/// to 60 one-second buckets of samples stamped up to 60 s in the future).
const TIERS: [Tier; 3] = [
    Tier { width_secs: 1, horizon_secs: 60 },
    Tier { width_secs: 10, horizon_secs: 900 },
    Tier { width_secs: 60, horizon_secs: RETENTION_SECS },
];

/// Index of a window in `Series::windows` and in `Bucket::in_windows` bits.
pub(super) fn window_index(window: Window) -> usize {
    match window {
        Window::M1 => 0,
        Window::M5 => 1,
        Window::M15 => 2,
        Window::H1 => 3,
    }
}

/// Oldest second (Unix) of a window whose newest second is `cur_sec`: a window of `W` seconds
/// covers the `W` whole seconds ending with the current (partial) one.
pub(super) fn cutoff_sec(window: Window, cur_sec: u64) -> u64 {
    (cur_sec + 1).saturating_sub(window.secs())
}

/// Samples of one time bucket: exact count, errors, sum, min and max, and sketch bins.
pub(super) struct Bucket {
    pub(super) start_sec: u64,
    pub(super) count: u64,
    pub(super) errors: u64,
    /// Sum of durations in whole nanoseconds, so that windows add and subtract it exactly.
    pub(super) sum_ns: u128,
    /// The part of `sum_ns` that failed samples took (are failures fast or slow?).
    pub(super) error_sum_ns: u128,
    /// Failures whose durations `error_sum_ns` lacks: of a minute restored from a row stored
    /// before the store kept the failures' sum. While any is held, the split is unknown.
    pub(super) untimed_errors: u64,
    pub(super) min_ms: f64,
    pub(super) max_ms: f64,
    pub(super) bins: BucketBins,
    /// Bit `i` set: the bucket is counted in `Series::windows[i]`.
    in_windows: u8,
}

impl Bucket {
    fn new(start_sec: u64) -> Self {
        Bucket {
            start_sec,
            count: 0,
            errors: 0,
            sum_ns: 0,
            error_sum_ns: 0,
            untimed_errors: 0,
            min_ms: f64::INFINITY,
            max_ms: f64::NEG_INFINITY,
            bins: BucketBins::new(),
            in_windows: 0,
        }
    }

    fn record(&mut self, s: &Sample) {
        self.count = self.count.saturating_add(s.n);
        if !s.success {
            self.errors = self.errors.saturating_add(s.n);
            self.error_sum_ns = self.error_sum_ns.saturating_add(s.ns);
        }
        self.sum_ns = self.sum_ns.saturating_add(s.ns);
        self.min_ms = self.min_ms.min(s.duration_ms);
        self.max_ms = self.max_ms.max(s.duration_ms);
        self.bins.add(s.key, u32::try_from(s.n).unwrap_or(u32::MAX));
    }

    fn absorb(&mut self, other: &Bucket) {
        self.count = self.count.saturating_add(other.count);
        self.errors = self.errors.saturating_add(other.errors);
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.error_sum_ns = self.error_sum_ns.saturating_add(other.error_sum_ns);
        self.untimed_errors = self.untimed_errors.saturating_add(other.untimed_errors);
        self.min_ms = self.min_ms.min(other.min_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
        self.bins.absorb(&other.bins);
    }
}

/// Start of the slot of width `width_secs` (> 0) that contains second `sec`.
pub(super) fn slot_start(sec: u64, width_secs: u64) -> u64 {
    sec - sec % width_secs
}

/// Whether a bucket starting at `start_sec` still belongs in tier `tier` (< 2) at `cur_sec`.
fn retained(tier: usize, start_sec: u64, cur_sec: u64) -> bool {
    let parent = TIERS[tier + 1].width_secs;
    // The parent slot's newest second is younger than the horizon:
    // slot + parent - 1 > cur - horizon, written without subtraction.
    slot_start(start_sec, parent) + parent + TIERS[tier].horizon_secs > cur_sec + 1
}

/// Whether a last-tier bucket is wholly older than the retention at `cur_sec`.
fn expired(start_sec: u64, cur_sec: u64) -> bool {
    start_sec + TIERS[2].width_secs + RETENTION_SECS <= cur_sec
}

/// The tier a sample stamped `at_sec` belongs to at `cur_sec`.
fn tier_for(at_sec: u64, cur_sec: u64) -> usize {
    (0..2).find(|&t| retained(t, at_sec, cur_sec)).unwrap_or(2)
}

/// Whether a bucket `[start, start + width)` belongs to a window whose oldest second is
/// `cutoff_sec`: more than half of the bucket must lie at or after the cutoff. Buckets in the
/// future belong to every window.
fn in_window(start_sec: u64, width_secs: u64, cutoff_sec: u64) -> bool {
    2 * start_sec + width_secs > 2 * cutoff_sec
}

/// Makes `bucket`'s membership in the running window bins right for `cur_sec`: a bucket is
/// counted in a window once sealed (`start + width <= cur_sec`) and while inside it.
fn reconcile(windows: &mut [Aggregate; 4], bucket: &mut Bucket, width_secs: u64, cur_sec: u64) {
    let sealed = bucket.start_sec + width_secs <= cur_sec;
    for (i, window) in Window::ALL.into_iter().enumerate() {
        let bit = 1u8 << i;
        let want = sealed && in_window(bucket.start_sec, width_secs, cutoff_sec(window, cur_sec));
        let has = bucket.in_windows & bit != 0;
        if want && !has {
            windows[i].add_bucket(bucket);
            bucket.in_windows |= bit;
        } else if has && !want {
            windows[i].sub_bucket(bucket);
            bucket.in_windows &= !bit;
        }
    }
}

/// A non-negative sum of milliseconds in whole nanoseconds.
fn ms_to_ns(ms: f64) -> u128 {
    (ms.max(0.0) * 1e6).round() as u128
}

/// `n` times a duration, in whole nanoseconds.
fn to_ns(duration_ms: f64, n: u64) -> u128 {
    // Durations are at most 1e12 ms, so the product fits u64 before widening.
    u128::from(round_to_u64(duration_ms * 1e6)).saturating_mul(u128::from(n))
}

/// `x.round() as u64` for `x` in `0.0..2^63` (0 below), without a call: x86-64's baseline has
/// no rounding instruction, so `f64::round` is a libm call, and a StatsD line made several.
/// `x - trunc(x)` is exact, so halves round away from zero exactly as `round` does.
#[inline]
fn round_to_u64(x: f64) -> u64 {
    let whole = x as u64;
    if x - whole as f64 >= 0.5 {
        whole + 1
    } else {
        whole
    }
}

/// One sample (or `n` of the same) as every figure it lands in adds it: its bin and its
/// duration in nanoseconds are worked out once.
struct Sample {
    duration_ms: f64,
    key: Key,
    n: u64,
    /// `n` times the duration, in whole nanoseconds.
    ns: u128,
    success: bool,
}

impl Sample {
    fn new(duration_ms: f64, n: u64, success: bool) -> Self {
        Sample { duration_ms, key: key_of(duration_ms), n, ns: to_ns(duration_ms, n), success }
    }
}

/// Exact figures and sketch bins of a set of buckets (a window's).
#[derive(Clone, Debug)]
pub(super) struct Aggregate {
    pub(super) count: u64,
    pub(super) errors: u64,
    sum_ns: u128,
    pub(super) error_sum_ns: u128,
    pub(super) untimed_errors: u64,
    pub(super) min_ms: f64,
    pub(super) max_ms: f64,
    /// False once a bucket that may have held the min or max was removed: rescan needed.
    extremes_exact: bool,
    pub(super) bins: WindowBins,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            count: 0,
            errors: 0,
            sum_ns: 0,
            error_sum_ns: 0,
            untimed_errors: 0,
            min_ms: f64::INFINITY,
            max_ms: f64::NEG_INFINITY,
            extremes_exact: true,
            bins: WindowBins::default(),
        }
    }
}

impl Aggregate {
    /// Sum of durations in milliseconds.
    pub(super) fn sum_ms(&self) -> f64 {
        self.sum_ns as f64 / 1e6
    }

    fn add_bucket(&mut self, b: &Bucket) {
        self.count = self.count.saturating_add(b.count);
        self.errors = self.errors.saturating_add(b.errors);
        self.sum_ns = self.sum_ns.saturating_add(b.sum_ns);
        self.error_sum_ns = self.error_sum_ns.saturating_add(b.error_sum_ns);
        self.untimed_errors = self.untimed_errors.saturating_add(b.untimed_errors);
        self.min_ms = self.min_ms.min(b.min_ms);
        self.max_ms = self.max_ms.max(b.max_ms);
        self.bins.add_bucket(&b.bins);
    }

    fn sub_bucket(&mut self, b: &Bucket) {
        self.count = self.count.saturating_sub(b.count);
        if self.count == 0 {
            *self = Aggregate::default();
            return;
        }
        self.errors = self.errors.saturating_sub(b.errors);
        self.sum_ns = self.sum_ns.saturating_sub(b.sum_ns);
        self.error_sum_ns = self.error_sum_ns.saturating_sub(b.error_sum_ns);
        self.untimed_errors = self.untimed_errors.saturating_sub(b.untimed_errors);
        if b.min_ms <= self.min_ms || b.max_ms >= self.max_ms {
            self.extremes_exact = false;
        }
        self.bins.sub_bucket(&b.bins);
    }

    /// Adds every sample of another aggregate (another series of the same group).
    pub(super) fn merge(&mut self, other: &Aggregate) {
        if other.count == 0 {
            return;
        }
        self.count = self.count.saturating_add(other.count);
        self.errors = self.errors.saturating_add(other.errors);
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.error_sum_ns = self.error_sum_ns.saturating_add(other.error_sum_ns);
        self.untimed_errors = self.untimed_errors.saturating_add(other.untimed_errors);
        self.min_ms = self.min_ms.min(other.min_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
        other.bins.for_each(|k, c| self.bins.add_key(k, c));
    }

    /// Adds a stored rollup's samples.
    pub(super) fn add_rollup(&mut self, r: &Rollup) {
        if r.is_empty() {
            return;
        }
        self.count = self.count.saturating_add(r.count);
        self.errors = self.errors.saturating_add(r.errors);
        self.sum_ns = self.sum_ns.saturating_add(ms_to_ns(r.sum_ms));
        match r.error_sum_ms {
            Some(ms) => self.error_sum_ns = self.error_sum_ns.saturating_add(ms_to_ns(ms)),
            None => self.untimed_errors = self.untimed_errors.saturating_add(r.errors),
        }
        self.min_ms = self.min_ms.min(r.min_ms);
        self.max_ms = self.max_ms.max(r.max_ms);
        self.bins.add_rollup(r);
    }

    fn add_sample(&mut self, s: &Sample) {
        self.count = self.count.saturating_add(s.n);
        if !s.success {
            self.errors = self.errors.saturating_add(s.n);
            self.error_sum_ns = self.error_sum_ns.saturating_add(s.ns);
        }
        self.sum_ns = self.sum_ns.saturating_add(s.ns);
        self.min_ms = self.min_ms.min(s.duration_ms);
        self.max_ms = self.max_ms.max(s.duration_ms);
        self.bins.add_key(s.key, s.n);
    }

    /// Recomputes min and max from the buckets the aggregate holds.
    fn rescan_extremes<'a>(&mut self, buckets: impl Iterator<Item = &'a Bucket>) {
        let (mut min_ms, mut max_ms) = (f64::INFINITY, f64::NEG_INFINITY);
        for b in buckets {
            min_ms = min_ms.min(b.min_ms);
            max_ms = max_ms.max(b.max_ms);
        }
        (self.min_ms, self.max_ms, self.extremes_exact) = (min_ms, max_ms, true);
    }
}

/// What a summary reads of a set of samples: exact figures and p50, p90, p95, p99.
#[derive(Debug, PartialEq)]
pub(super) struct Figures {
    pub(super) count: u64,
    pub(super) errors: u64,
    pub(super) sum_ms: f64,
    /// The part of `sum_ms` that failed samples took; `None` when some failures' durations are
    /// unknown (minutes stored before the store kept it).
    pub(super) error_sum_ms: Option<f64>,
    pub(super) min_ms: f64,
    pub(super) max_ms: f64,
    pub(super) quantiles: [f64; 4],
}

impl Figures {
    /// The mean duration, kept within the exact minimum and maximum (the sum is rounded).
    pub(super) fn mean_ms(&self) -> f64 {
        (self.sum_ms / self.count.max(1) as f64).max(self.min_ms).min(self.max_ms)
    }

    /// The successful samples' mean duration and the failed ones' (see [`split_means`]).
    pub(super) fn split_means(&self) -> (Option<f64>, Option<f64>) {
        split_means(
            (self.count, self.errors),
            (self.sum_ms, self.error_sum_ms),
            (self.min_ms, self.max_ms),
        )
    }
}

/// The failures' part of a sum in milliseconds, `None` while `untimed` failures' durations
/// are unknown.
pub(super) fn error_sum_ms(error_sum_ns: u128, untimed: u64) -> Option<f64> {
    (untimed == 0).then(|| error_sum_ns as f64 / 1e6)
}

/// The successful samples' mean and the failed ones' (ms), each kept within the exact minimum
/// and maximum; `None` for a side without samples, and for both when the failures' durations
/// are unknown (`error_sum_ms` `None`: the successes' mean is what they leave of the sum).
pub(super) fn split_means(
    (count, errors): (u64, u64),
    (sum_ms, error_sum_ms): (f64, Option<f64>),
    (min_ms, max_ms): (f64, f64),
) -> (Option<f64>, Option<f64>) {
    let errors = errors.min(count);
    let ok = count - errors;
    let Some(error_sum_ms) = error_sum_ms.or((errors == 0).then_some(0.0)) else {
        return (None, None);
    };
    let within = |v: f64| v.max(min_ms).min(max_ms);
    let failed = (errors > 0).then(|| within(error_sum_ms / errors as f64));
    let succeeded = (ok > 0).then(|| within((sum_ms - error_sum_ms).max(0.0) / ok as f64));
    (succeeded, failed)
}

impl Aggregate {
    pub(super) fn figures(&self) -> Figures {
        Figures {
            count: self.count,
            errors: self.errors,
            sum_ms: self.sum_ms(),
            error_sum_ms: error_sum_ms(self.error_sum_ns, self.untimed_errors),
            min_ms: self.min_ms,
            max_ms: self.max_ms,
            quantiles: summary_quantiles(&self.bins, &[], self.min_ms, self.max_ms),
        }
    }
}

/// A window read in place: the running aggregate's bins plus corrections (see
/// [`Series::view`]).
pub(super) struct View<'a> {
    bins: &'a WindowBins,
    /// Bin corrections sorted by key, one per key (in the caller's buffer, reused across
    /// series).
    delta: &'a mut Vec<(Key, i64)>,
    count: u64,
    errors: u64,
    sum_ns: u128,
    error_sum_ns: u128,
    untimed_errors: u64,
    min_ms: f64,
    max_ms: f64,
}

impl View<'_> {
    /// The window's figures and the quantiles `wanted` asks for (p50, p90, p95, p99); in the
    /// figures, a quantile not asked for reads as the minimum.
    pub(super) fn figures_wanted(&self, wanted: [bool; 4]) -> (Figures, [Option<f64>; 4]) {
        let quantiles = wanted_quantiles(self.bins, self.delta, self.min_ms, self.max_ms, wanted);
        let figures = Figures {
            count: self.count,
            errors: self.errors,
            sum_ms: self.sum_ns as f64 / 1e6,
            error_sum_ms: error_sum_ms(self.error_sum_ns, self.untimed_errors),
            min_ms: self.min_ms,
            max_ms: self.max_ms,
            quantiles: quantiles.map(|q| q.unwrap_or(self.min_ms)),
        };
        (figures, quantiles)
    }
}

/// Everything recorded for one operation name.
pub(super) struct Series {
    tiers: [VecDeque<Bucket>; 3],
    /// Running aggregate of the sealed buckets inside each window, by `window_index`.
    windows: [Aggregate; 4],
    /// Newest `cur_sec` the series was brought up to date with.
    maintained_sec: u64,
    /// Fraction of weight not yet recorded (in -0.5..=0.5) for successes and for failures,
    /// so weights average out exactly for each.
    weight_carry: [f64; 2],
    /// Everything recorded since the series was first held (for counters that only grow).
    pub(super) lifetime: Lifetime,
    /// The registry's number for it: given once, never reused (see `record_numbered`).
    pub(super) number: u64,
    /// The 1 s buckets starting before this second are the store's already (handed over by
    /// [`Self::take_unstored`] or never meant for it); `u64::MAX` when no store is attached.
    /// Samples of a newer second land in buckets the store is handed at a flush.
    stored_through: u64,
    /// 1 s buckets the store had not been handed when they rolled up into a coarser tier (a
    /// flush late by a minute), as minute rollups: handed over at the next flush.
    unstored: Vec<(u64, RollupRecorder)>,
}

/// Where the store gets a sample [`Series::add`] counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// From its bucket, at a flush ([`Series::take_unstored`]).
    AtFlush,
    /// Not from this series: its bucket is the store's already (or is outside the hour), so the
    /// caller spools the sample itself when a store is attached.
    Spool,
}

/// Samples, failures and the sum of durations recorded since a series was first held; live
/// samples only (minutes restored from the store at start-up are history, not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lifetime {
    pub count: u64,
    pub errors: u64,
    /// Sum of durations in whole nanoseconds.
    sum_ns: u128,
}

impl Lifetime {
    /// Sum of durations in milliseconds.
    pub fn sum_ms(&self) -> f64 {
        self.sum_ns as f64 / 1e6
    }
}

impl Series {
    /// A series numbered `number`; `stored` when a store is attached (its samples are handed
    /// to the store at flushes).
    pub(super) fn new(number: u64, stored: bool) -> Self {
        Series {
            tiers: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            windows: Default::default(),
            maintained_sec: 0,
            weight_carry: [0.0; 2],
            lifetime: Lifetime::default(),
            number,
            stored_through: if stored { 0 } else { u64::MAX },
            unstored: Vec::new(),
        }
    }

    /// No sample held, and none owed to the store.
    pub(super) fn is_empty(&self) -> bool {
        self.tiers.iter().all(VecDeque::is_empty) && self.unstored.is_empty()
    }

    /// From now on the store is handed this series' samples of seconds after the newest it
    /// holds (samples held before a store was attached are not the store's).
    pub(super) fn attach_store(&mut self) {
        if self.stored_through == u64::MAX {
            self.stored_through = self.newest_sec().saturating_add(1);
        }
    }

    /// Hands the store, as minute rollups (`emit(minute_sec, rollup)`), every sample of a 1 s
    /// bucket it has not been handed whose second is before `before_sec` (`u64::MAX`: all of
    /// them, at shutdown); later samples of the seconds up to the newest handed over are
    /// [`Placed::Spool`]. Minutes come
    /// in ascending order; a minute may come twice (the store merges them).
    pub(super) fn take_unstored(&mut self, before_sec: u64, mut emit: impl FnMut(u64, Rollup)) {
        let nothing_new = self.tiers[0].back().is_none_or(|b| b.start_sec < self.stored_through);
        if self.stored_through == u64::MAX || (nothing_new && self.unstored.is_empty()) {
            return; // no store, or an idle series: nothing to look through
        }
        for (minute, recorder) in self.unstored.drain(..) {
            emit(minute, recorder.finish());
        }
        let fine = &self.tiers[0];
        let first = fine.partition_point(|b| b.start_sec < self.stored_through);
        let mut open: Option<(u64, RollupRecorder)> = None;
        let mut newest = None;
        for b in fine.range(first..).take_while(|b| b.start_sec < before_sec) {
            let minute = slot_start(b.start_sec, 60);
            if open.as_ref().is_some_and(|(m, _)| *m != minute) {
                if let Some((m, recorder)) = open.take() {
                    emit(m, recorder.finish());
                }
            }
            open.get_or_insert_with(|| (minute, RollupRecorder::default())).1.add_bucket(b);
            newest = Some(b.start_sec);
        }
        if let Some((m, recorder)) = open {
            emit(m, recorder.finish());
        }
        // Past what was handed over only: a second without a bucket yet may still get one (a
        // late sample), handed over at a later flush; and a clock that steps forward and back
        // does not send the samples of the seconds between to the spool.
        if let Some(newest) = newest {
            self.stored_through = self.stored_through.max(newest + 1);
        }
    }

    /// Start (Unix s) of the newest bucket: about when the series last got a sample.
    pub(super) fn newest_sec(&self) -> u64 {
        self.tiers.iter().filter_map(VecDeque::back).map(|b| b.start_sec).max().unwrap_or(0)
    }

    pub(super) fn bucket_count(&self) -> usize {
        self.tiers.iter().map(VecDeque::len).sum()
    }

    /// Bytes held by this series: its own block (a series is boxed in the registry's map),
    /// bucket slots and bins, and minutes kept for the store (by capacity, in the allocator's
    /// chunks).
    pub(super) fn approx_bytes(&self) -> usize {
        let chunk = crate::server::memory::malloc_chunk;
        let buckets: usize = self
            .tiers
            .iter()
            .map(|t| {
                chunk(t.capacity() * std::mem::size_of::<Bucket>())
                    + t.iter().map(|b| chunk(b.bins.heap_bytes())).sum::<usize>()
            })
            .sum();
        let windows: usize = self.windows.iter().map(|a| chunk(a.bins.heap_bytes())).sum();
        let unstored =
            chunk(self.unstored.capacity() * std::mem::size_of::<(u64, RollupRecorder)>())
                + self.unstored.iter().map(|(_, r)| chunk(r.heap_bytes())).sum::<usize>();
        chunk(std::mem::size_of::<Series>()) + buckets + windows + unstored
    }

    /// Turns a positive finite weight into a whole number of samples, carrying the rounding
    /// remainder to the next call of the same outcome (success or failure); may return 0 for
    /// weights below 1.
    pub(super) fn take_weight(&mut self, weight: f64, success: bool) -> u64 {
        let carry = &mut self.weight_carry[usize::from(success)];
        if weight == 1.0 && *carry == 0.0 {
            return 1; // an unsampled line, nothing carried: no arithmetic
        }
        let total = *carry + weight;
        let whole = round_to_u64(total);
        *carry = total - whole as f64;
        whole
    }

    /// Undoes a [`Self::take_weight`] of `weight` that gave `n` samples which could not be
    /// recorded: the carry is what it was before (the refused weight is not carried into the
    /// next sample).
    pub(super) fn give_back_weight(&mut self, n: u64, weight: f64, success: bool) {
        self.weight_carry[usize::from(success)] += n as f64 - weight;
    }

    /// Adds `n` copies of a sample stamped `at_sec` (within the retention) at `cur_sec`, and
    /// says where the store gets it from. Returns `None` (and records nothing) when the bucket
    /// would exceed [`MAX_SAMPLES_PER_SEC`] per second of its width.
    pub(super) fn add(
        &mut self,
        at_sec: u64,
        duration_ms: f64,
        n: u64,
        success: bool,
        cur_sec: u64,
    ) -> Option<Placed> {
        self.maintain(cur_sec);
        // Place by the newest clock seen, so a clock that steps back cannot leave fine buckets
        // behind the horizon of their tier.
        let cur_sec = self.maintained_sec;
        let tier = tier_for(at_sec, cur_sec);
        let width = TIERS[tier].width_secs;
        let start = slot_start(at_sec, width);
        if tier == 2 && expired(start, cur_sec) {
            return Some(Placed::Spool);
        }
        let placed =
            if tier == 0 && start >= self.stored_through { Placed::AtFlush } else { Placed::Spool };
        let sample = Sample::new(duration_ms, n, success);
        let Series { tiers, windows, lifetime, .. } = self;
        let Some((bucket, created)) = bucket_mut(&mut tiers[tier], start) else {
            return Some(Placed::Spool);
        };
        if bucket.count.saturating_add(n) > MAX_SAMPLES_PER_SEC * width {
            return None;
        }
        bucket.record(&sample);
        lifetime.count = lifetime.count.saturating_add(n);
        if !success {
            lifetime.errors = lifetime.errors.saturating_add(n);
        }
        lifetime.sum_ns = lifetime.sum_ns.saturating_add(sample.ns);
        if created {
            // A new bucket in the past (a late sample) may be sealed already.
            reconcile(windows, bucket, width, cur_sec);
        } else if bucket.in_windows != 0 {
            for (i, window) in windows.iter_mut().enumerate() {
                if bucket.in_windows & (1 << i) != 0 {
                    window.add_sample(&sample);
                }
            }
        }
        Some(placed)
    }

    /// Adds a stored minute (`start_sec` a multiple of 60) as a 60 s bucket, merged into one
    /// that is already there. Used to refill the windows after a restart: a restored minute
    /// sits in the coarsest tier even when young, so a 1m window counts it whole or not at all.
    pub(super) fn restore_minute(&mut self, start_sec: u64, rollup: &Rollup, cur_sec: u64) {
        self.maintain(cur_sec);
        let cur_sec = self.maintained_sec;
        let width = TIERS[2].width_secs;
        let start = slot_start(start_sec, width);
        if rollup.is_empty() || expired(start, cur_sec) {
            return;
        }
        let mut bucket = Bucket::new(start);
        let agg = rollup.to_aggregate();
        bucket.count = agg.count;
        bucket.errors = agg.errors;
        bucket.sum_ns = agg.sum_ns;
        bucket.error_sum_ns = agg.error_sum_ns;
        bucket.untimed_errors = agg.untimed_errors;
        bucket.min_ms = agg.min_ms;
        bucket.max_ms = agg.max_ms;
        agg.bins.for_each(|k, c| bucket.bins.add(k, u32::try_from(c).unwrap_or(u32::MAX)));
        bucket.bins.shrink();
        let Series { tiers, windows, .. } = self;
        roll_into(&mut tiers[2], windows, width, bucket, cur_sec);
    }

    /// Seals finished buckets, slides the windows, rolls aged buckets into coarser tiers and
    /// drops expired ones. Cheap when `cur_sec` has not advanced since the last call.
    pub(super) fn maintain(&mut self, cur_sec: u64) {
        if cur_sec <= self.maintained_sec {
            return;
        }
        let old_sec = std::mem::replace(&mut self.maintained_sec, cur_sec);
        let Series { tiers, windows, stored_through, unstored, .. } = self;
        // Memberships are right for `old_sec`; only buckets sealed since, and buckets whose
        // middle has passed a window's cutoff since, can change. Both sit just below a
        // partition point, so each is found by one binary search and a short walk back.
        for (buckets, tier) in tiers.iter_mut().zip(TIERS.iter()) {
            let w = tier.width_secs;
            if buckets.back().is_some_and(|b| b.start_sec + w > old_sec) {
                let hi = buckets.partition_point(|b| b.start_sec + w <= cur_sec);
                walk_back(
                    buckets,
                    hi,
                    |b| b.start_sec + w > old_sec,
                    |b| {
                        reconcile(windows, b, w, cur_sec);
                        b.bins.shrink();
                    },
                );
            }
            for window in Window::ALL {
                let (c_old, c_new) = (cutoff_sec(window, old_sec), cutoff_sec(window, cur_sec));
                let (Some(front), Some(back)) = (buckets.front(), buckets.back()) else { break };
                if in_window(front.start_sec, w, c_new) || !in_window(back.start_sec, w, c_old) {
                    continue;
                }
                let hi = buckets.partition_point(|b| !in_window(b.start_sec, w, c_new));
                walk_back(
                    buckets,
                    hi,
                    |b| in_window(b.start_sec, w, c_old),
                    |b| reconcile(windows, b, w, cur_sec),
                );
            }
        }
        for t in 0..2 {
            while tiers[t].front().is_some_and(|b| !retained(t, b.start_sec, cur_sec)) {
                if let Some(bucket) = tiers[t].pop_front() {
                    if t == 0 && bucket.start_sec >= *stored_through {
                        keep_unstored(unstored, &bucket);
                    }
                    roll_into(&mut tiers[t + 1], windows, TIERS[t + 1].width_secs, bucket, cur_sec);
                }
            }
        }
        while tiers[2].front().is_some_and(|b| expired(b.start_sec, cur_sec)) {
            if let Some(bucket) = tiers[2].pop_front() {
                // Expired buckets are outside every window already; this only guards it.
                for (i, window) in windows.iter_mut().enumerate() {
                    if bucket.in_windows & (1 << i) != 0 {
                        window.sub_bucket(&bucket);
                    }
                }
            }
        }
        for (i, window) in windows.iter_mut().enumerate() {
            if !window.extremes_exact {
                let bit = 1u8 << i;
                window.rescan_extremes(tiers.iter().flatten().filter(|b| b.in_windows & bit != 0));
            }
        }
    }

    /// Reads a word of each part of the series that bringing it up to date and reading
    /// `window`'s figures from the top of its bins start with (its clock, the window's running
    /// aggregate and bins, its newest buckets), so that a caller reading many series can load
    /// a run of them ahead: loads that do not depend on each other overlap their cache misses,
    /// where reading the series one after the other waits for each miss in turn.
    pub(super) fn read_ahead(&self, window: Window) -> u64 {
        let held = &self.windows[window_index(window)];
        let newest = |t: usize| self.tiers[t].back().map_or(0, |b| b.start_sec);
        self.maintained_sec ^ held.count ^ held.bins.top() ^ newest(0) ^ newest(1) ^ newest(2)
    }

    /// Buckets of the window whose oldest second is `cutoff_sec`, oldest first.
    pub(super) fn window(&self, cutoff_sec: u64) -> impl Iterator<Item = &Bucket> {
        self.window_with_widths(cutoff_sec).map(|(_, bucket)| bucket)
    }

    /// Buckets of the window whose oldest second is `cutoff_sec` with their widths in seconds,
    /// oldest first (tiers never overlap in time, coarsest holds the oldest).
    fn window_with_widths(&self, cutoff_sec: u64) -> impl Iterator<Item = (u64, &Bucket)> {
        self.tiers.iter().zip(TIERS.iter()).rev().flat_map(move |(buckets, tier)| {
            let w = tier.width_secs;
            let first = buckets.partition_point(|b| !in_window(b.start_sec, w, cutoff_sec));
            buckets.range(first..).map(move |bucket| (w, bucket))
        })
    }

    /// Calls `f(bucket, true)` for each bucket that `window` at `cur_sec` holds but its running
    /// aggregate does not, and `f(bucket, false)` for the reverse. The aggregate is right for
    /// the newest clock seen, so these are the unsealed buckets at the end and, when the query
    /// clock differs, those between the two clocks' window starts.
    fn for_each_correction<'a>(
        &'a self,
        window: Window,
        cur_sec: u64,
        mut f: impl FnMut(&'a Bucket, bool),
    ) {
        let bit = 1u8 << window_index(window);
        let (c_query, c_held) =
            (cutoff_sec(window, cur_sec), cutoff_sec(window, self.maintained_sec));
        for (buckets, tier) in self.tiers.iter().zip(TIERS.iter()) {
            let w = tier.width_secs;
            let mut visit =
                |b: &'a Bucket| match (in_window(b.start_sec, w, c_query), b.in_windows & bit != 0)
                {
                    (true, false) => f(b, true),
                    (false, true) => f(b, false),
                    _ => {}
                };
            let (lo, hi) = if c_query == c_held {
                (0, 0)
            } else {
                let first_in = |c: u64| buckets.partition_point(|b| !in_window(b.start_sec, w, c));
                let (a, b) = (first_in(c_query), first_in(c_held));
                (a.min(b), a.max(b))
            };
            buckets.range(lo..hi).for_each(&mut visit);
            let unsealed = |b: &Bucket| b.start_sec + w > self.maintained_sec;
            let tail = buckets.len() - buckets.iter().rev().take_while(|b| unsealed(b)).count();
            buckets.range(tail.max(hi)..).for_each(&mut visit);
            buckets.range(tail..lo.max(tail)).for_each(&mut visit);
        }
    }

    /// Figures and bins of `window` at `cur_sec`, or `None` when it holds no sample. Borrows
    /// the running aggregate when no correction applies.
    pub(super) fn stats(&self, window: Window, cur_sec: u64) -> Option<Cow<'_, Aggregate>> {
        let held = &self.windows[window_index(window)];
        let mut fixed: Option<Aggregate> = None;
        self.for_each_correction(window, cur_sec, |b, add| {
            let agg = fixed.get_or_insert_with(|| held.clone());
            if add {
                agg.add_bucket(b);
            } else {
                agg.sub_bucket(b);
            }
        });
        let agg = match fixed {
            None => Cow::Borrowed(held),
            Some(mut agg) => {
                if !agg.extremes_exact {
                    agg.rescan_extremes(self.window(cutoff_sec(window, cur_sec)));
                }
                Cow::Owned(agg)
            }
        };
        (agg.count > 0).then_some(agg)
    }

    /// Figures of `window` at `cur_sec`, or `None` when it holds no sample: like
    /// [`Self::stats`], but reading the running aggregate's bins in place, with the few
    /// corrections kept aside, so that nothing the size of the bins is copied (the alert
    /// engine reads every series every tick).
    /// `delta` is a buffer for the corrections: emptied here, its allocation reused.
    pub(super) fn view<'a>(
        &'a self,
        window: Window,
        cur_sec: u64,
        delta: &'a mut Vec<(Key, i64)>,
    ) -> Option<View<'a>> {
        let held = &self.windows[window_index(window)];
        delta.clear();
        let mut view = View {
            bins: &held.bins,
            delta,
            count: held.count,
            errors: held.errors,
            sum_ns: held.sum_ns,
            error_sum_ns: held.error_sum_ns,
            untimed_errors: held.untimed_errors,
            min_ms: held.min_ms,
            max_ms: held.max_ms,
        };
        let mut rescan = !held.extremes_exact;
        self.for_each_correction(window, cur_sec, |b, add| {
            if add {
                view.count = view.count.saturating_add(b.count);
                view.errors = view.errors.saturating_add(b.errors);
                view.sum_ns = view.sum_ns.saturating_add(b.sum_ns);
                view.error_sum_ns = view.error_sum_ns.saturating_add(b.error_sum_ns);
                view.untimed_errors = view.untimed_errors.saturating_add(b.untimed_errors);
                view.min_ms = view.min_ms.min(b.min_ms);
                view.max_ms = view.max_ms.max(b.max_ms);
            } else {
                view.count = view.count.saturating_sub(b.count);
                view.errors = view.errors.saturating_sub(b.errors);
                view.sum_ns = view.sum_ns.saturating_sub(b.sum_ns);
                view.error_sum_ns = view.error_sum_ns.saturating_sub(b.error_sum_ns);
                view.untimed_errors = view.untimed_errors.saturating_sub(b.untimed_errors);
                rescan = true;
            }
            let sign = if add { 1 } else { -1 };
            b.bins
                .for_each(|k, c| view.delta.push((k, sign * i64::try_from(c).unwrap_or(i64::MAX))));
        });
        if view.count == 0 {
            return None;
        }
        if rescan {
            let (mut min_ms, mut max_ms) = (f64::INFINITY, f64::NEG_INFINITY);
            for b in self.window(cutoff_sec(window, cur_sec)) {
                min_ms = min_ms.min(b.min_ms);
                max_ms = max_ms.max(b.max_ms);
            }
            (view.min_ms, view.max_ms) = (min_ms, max_ms);
        }
        view.delta.sort_unstable_by_key(|(k, _)| *k);
        view.delta.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.saturating_add(later.1);
            }
            same
        });
        Some(view)
    }

    /// Count, errors and sum (ms) of `window` at `cur_sec`, without touching the bins.
    pub(super) fn totals(&self, window: Window, cur_sec: u64) -> (u64, u64, f64) {
        let held = &self.windows[window_index(window)];
        let (mut count, mut errors, mut sum_ns) = (held.count, held.errors, held.sum_ns);
        self.for_each_correction(window, cur_sec, |b, add| {
            if add {
                count = count.saturating_add(b.count);
                errors = errors.saturating_add(b.errors);
                sum_ns = sum_ns.saturating_add(b.sum_ns);
            } else {
                count = count.saturating_sub(b.count);
                errors = errors.saturating_sub(b.errors);
                sum_ns = sum_ns.saturating_sub(b.sum_ns);
            }
        });
        (count, errors, sum_ns as f64 / 1e6)
    }
}

/// Applies `f` to the buckets just below index `hi`, newest first, while `take` holds.
fn walk_back(
    buckets: &mut VecDeque<Bucket>,
    hi: usize,
    take: impl Fn(&Bucket) -> bool,
    mut f: impl FnMut(&mut Bucket),
) {
    for i in (0..hi).rev() {
        match buckets.get_mut(i) {
            Some(b) if take(b) => f(b),
            _ => break,
        }
    }
}

/// Keeps a 1 s bucket the store has not been handed, as part of its minute's rollup, before
/// it merges into a coarser bucket the store has.
fn keep_unstored(unstored: &mut Vec<(u64, RollupRecorder)>, bucket: &Bucket) {
    let minute = slot_start(bucket.start_sec, 60);
    if let Some((_, recorder)) = unstored.iter_mut().find(|(m, _)| *m == minute) {
        recorder.add_bucket(bucket);
    } else {
        let mut recorder = RollupRecorder::default();
        recorder.add_bucket(bucket);
        unstored.push((minute, recorder));
    }
}

/// The bucket starting at `start` in a sorted tier, created if missing (then `true`).
fn bucket_mut(buckets: &mut VecDeque<Bucket>, start: u64) -> Option<(&mut Bucket, bool)> {
    let (idx, created) = match buckets.back() {
        Some(b) if b.start_sec == start => (buckets.len() - 1, false),
        _ => match buckets.binary_search_by_key(&start, |b| b.start_sec) {
            Ok(i) => (i, false),
            Err(i) => {
                buckets.insert(i, Bucket::new(start));
                (i, true)
            }
        },
    };
    buckets.get_mut(idx).map(|b| (b, created))
}

/// Moves a bucket into the enclosing slot of a coarser tier (reusing it when that slot is
/// empty), keeping the running window bins right.
fn roll_into(
    buckets: &mut VecDeque<Bucket>,
    windows: &mut [Aggregate; 4],
    width_secs: u64,
    mut bucket: Bucket,
    cur_sec: u64,
) {
    let start = slot_start(bucket.start_sec, width_secs);
    let idx = match buckets.binary_search_by_key(&start, |b| b.start_sec) {
        Ok(i) => {
            let Some(target) = buckets.get_mut(i) else { return };
            // The merged bins take the target's memberships.
            for (j, window) in windows.iter_mut().enumerate() {
                let bit = 1u8 << j;
                match (bucket.in_windows & bit != 0, target.in_windows & bit != 0) {
                    (true, false) => window.sub_bucket(&bucket),
                    (false, true) => window.add_bucket(&bucket),
                    _ => {}
                }
            }
            target.absorb(&bucket);
            target.bins.shrink();
            i
        }
        Err(i) => {
            bucket.start_sec = start;
            buckets.insert(i, bucket);
            i
        }
    };
    if let Some(target) = buckets.get_mut(idx) {
        reconcile(windows, target, width_secs, cur_sec);
    }
}

#[cfg(test)]
impl Series {
    /// Panics unless every membership flag and every window's running aggregate match a
    /// from-scratch computation at the newest clock seen.
    pub(super) fn check_invariants(&self) {
        let cur = self.maintained_sec;
        for (i, window) in Window::ALL.into_iter().enumerate() {
            let mut expected = Aggregate::default();
            for (buckets, tier) in self.tiers.iter().zip(TIERS.iter()) {
                let sorted = buckets.iter().zip(buckets.iter().skip(1));
                assert!(sorted.clone().all(|(a, b)| a.start_sec < b.start_sec));
                for b in buckets {
                    let w = tier.width_secs;
                    let cutoff = cutoff_sec(window, cur);
                    let want = b.start_sec + w <= cur && in_window(b.start_sec, w, cutoff);
                    assert_eq!(b.in_windows & (1 << i) != 0, want, "flag of {}", b.start_sec);
                    if want {
                        expected.add_bucket(b);
                    }
                }
            }
            assert_eq!(summary_of(&self.windows[i]), summary_of(&expected), "{window:?}");
        }
    }

    /// The aggregate of `window` at `cur_sec`, summed from its buckets.
    pub(super) fn scratch(&self, window: Window, cur_sec: u64) -> Aggregate {
        let mut sum = Aggregate::default();
        for bucket in self.window(cutoff_sec(window, cur_sec)) {
            sum.add_bucket(bucket);
        }
        sum
    }

    /// `(start_sec, width_secs)` of every bucket of `window` at `cur_sec` that holds data.
    pub(super) fn native_buckets(&self, window: Window, cur_sec: u64) -> Vec<(u64, u64)> {
        let buckets = self.window_with_widths(cutoff_sec(window, cur_sec));
        buckets.filter(|(_, b)| b.count > 0).map(|(w, b)| (b.start_sec, w)).collect()
    }
}

/// Everything an aggregate says: count, errors, sum, min, max, exactness and bins.
#[cfg(test)]
pub(super) type AggregateSummary = (u64, u64, u128, f64, f64, bool, Vec<(Key, u64)>);

/// Everything an aggregate says, for comparisons in tests.
#[cfg(test)]
pub(super) fn summary_of(agg: &Aggregate) -> AggregateSummary {
    let mut bins = Vec::new();
    agg.bins.for_each(|k, c| bins.push((k, c)));
    (agg.count, agg.errors, agg.sum_ns, agg.min_ms, agg.max_ms, agg.extremes_exact, bins)
}

#[cfg(test)]
mod tests {
    use super::round_to_u64;
    use proptest::prelude::*;

    #[test]
    fn rounding_without_libm_is_rounding() {
        for x in [0.0, 0.49999999999999994, 0.5, 1.5, 2.5, 4503599627370495.5, 1e18, -0.3] {
            assert_eq!(round_to_u64(x), x.round().max(0.0) as u64, "{x:e}");
        }
    }

    proptest! {
        #[test]
        fn rounding_without_libm_is_rounding_anywhere(x in 0.0f64..1e18, half in 0u64..1 << 52) {
            prop_assert_eq!(round_to_u64(x), x.round() as u64, "{:e}", x);
            let h = half as f64 + 0.5;
            prop_assert_eq!(round_to_u64(h), h.round() as u64, "{:e}", h);
        }
    }
}
