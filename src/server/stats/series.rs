//! One operation's samples in tiered time buckets (1 s, 10 s, 60 s), each holding a DDSketch.
//!
//! Every sample lands in exactly one bucket. Buckets of a tier are kept sorted by start time in
//! a `VecDeque`; as time passes the oldest buckets of a tier are merged into the enclosing bucket
//! of the next, coarser tier, and 60 s buckets are dropped once wholly older than one hour.
//! Rolling up happens a whole parent group at a time (all ten 1 s buckets of a 10 s slot, all six
//! 10 s buckets of a 60 s slot), so buckets of different tiers never overlap in time.

use std::borrow::Cow;
use std::collections::VecDeque;

use sketches_ddsketch::{Config, DDSketch};

/// Relative accuracy the sketches are built with (`alpha` of DDSketch).
pub(super) const SKETCH_ALPHA: f64 = 0.01;
/// Bins per sketch before the lowest ones collapse: 2048 bins of 2 % cover a ratio of ~6e17
/// between the smallest and largest duration, so collapsing never happens for real latencies.
const SKETCH_MAX_BINS: u32 = 2048;
/// Durations at or below this (ms) are counted as zero by the sketch.
const SKETCH_MIN_VALUE_MS: f64 = 1e-9;

/// Oldest data kept, in seconds.
pub(super) const RETENTION_SECS: u64 = 3600;

/// One resolution of the bucket ladder.
pub(super) struct Tier {
    pub(super) width_secs: u64,
    /// Buckets stay in this tier while the newest second of their parent slot (the enclosing
    /// bucket of the next tier) is younger than this many seconds.
    pub(super) horizon_secs: u64,
}

/// The ladder, finest first. A busy operation holds at most ~70 + 90 + 47 buckets (plus up
/// to 60 one-second buckets of samples stamped up to 60 s in the future).
pub(super) const TIERS: [Tier; 3] = [
    Tier { width_secs: 1, horizon_secs: 60 },
    Tier { width_secs: 10, horizon_secs: 900 },
    Tier { width_secs: 60, horizon_secs: RETENTION_SECS },
];

fn sketch_config() -> Config {
    Config::new(SKETCH_ALPHA, SKETCH_MAX_BINS, SKETCH_MIN_VALUE_MS)
}

/// Samples of one time bucket: a sketch (which also keeps exact count, min, max and sum) and
/// the number of failed samples.
#[derive(Clone)]
pub(super) struct Bucket {
    pub(super) start_sec: u64,
    pub(super) sketch: DDSketch,
    pub(super) errors: u64,
}

impl Bucket {
    fn new(start_sec: u64) -> Self {
        Bucket { start_sec, sketch: DDSketch::new(sketch_config()), errors: 0 }
    }

    pub(super) fn count(&self) -> u64 {
        self.sketch.count() as u64
    }

    fn absorb(&mut self, other: &Bucket) {
        merge_sketch(&mut self.sketch, &other.sketch);
        self.errors = self.errors.saturating_add(other.errors);
    }
}

/// Merges `src` into `dst`. Every sketch here is built from the same config, so the crate's
/// only failure (config mismatch) cannot happen.
pub(super) fn merge_sketch(dst: &mut DDSketch, src: &DDSketch) {
    if dst.merge(src).is_err() {
        debug_assert!(false, "sketch configs differ");
    }
}

/// Start of the slot of width `width_secs` that contains second `sec`.
fn slot_start(sec: u64, width_secs: u64) -> u64 {
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
/// `cutoff_sec`: more than half of the bucket must lie at or after the cutoff.
fn in_window(start_sec: u64, width_secs: u64, cutoff_sec: u64) -> bool {
    2 * start_sec + width_secs > 2 * cutoff_sec
}

/// A bucket of a window, with its width.
pub(super) struct WindowBucket<'a> {
    pub(super) bucket: &'a Bucket,
    pub(super) width_secs: u64,
}

/// Everything recorded for one operation name.
pub(super) struct Series {
    tiers: [VecDeque<Bucket>; 3],
    /// Newest `cur_sec` the ladder was rolled up for.
    maintained_sec: u64,
    /// Fraction of weight not yet recorded (in -0.5..=0.5), so weights average out exactly.
    weight_carry: f64,
}

impl Series {
    pub(super) fn new() -> Self {
        Series {
            tiers: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            maintained_sec: 0,
            weight_carry: 0.0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tiers.iter().all(VecDeque::is_empty)
    }

    pub(super) fn bucket_count(&self) -> usize {
        self.tiers.iter().map(VecDeque::len).sum()
    }

    /// Heap and inline bytes held by the buckets (an estimate: sketch bins count by length).
    pub(super) fn approx_bytes(&self) -> usize {
        let buckets: usize = self
            .tiers
            .iter()
            .map(|t| {
                t.capacity() * std::mem::size_of::<Bucket>()
                    + t.iter().map(|b| b.sketch.length() * 8).sum::<usize>()
            })
            .sum();
        std::mem::size_of::<Series>() + buckets
    }

    /// Turns a positive finite weight into a whole number of samples, carrying the rounding
    /// remainder to the next call; may return 0 for weights below 1.
    pub(super) fn take_weight(&mut self, weight: f64) -> u64 {
        let total = self.weight_carry + weight;
        let whole = total.round().max(0.0);
        self.weight_carry = total - whole;
        whole as u64
    }

    /// Adds `n` copies of a sample stamped `at_sec` (within the retention) at `cur_sec`.
    pub(super) fn add(&mut self, at_sec: u64, duration_ms: f64, n: u64, success: bool, cur_sec: u64) {
        self.maintain(cur_sec);
        // Place by the newest clock seen, so a clock that steps back cannot leave fine buckets
        // behind the horizon of their tier.
        let cur_sec = self.maintained_sec;
        let tier = tier_for(at_sec, cur_sec);
        if tier == 2 && expired(slot_start(at_sec, TIERS[2].width_secs), cur_sec) {
            return;
        }
        let start = slot_start(at_sec, TIERS[tier].width_secs);
        if let Some(bucket) = bucket_mut(&mut self.tiers[tier], start) {
            bucket.sketch.add_with_count(duration_ms, n);
            if !success {
                bucket.errors = bucket.errors.saturating_add(n);
            }
        }
    }

    /// Rolls aged buckets into coarser tiers and drops expired ones. Cheap when `cur_sec` has
    /// not advanced since the last call.
    pub(super) fn maintain(&mut self, cur_sec: u64) {
        if cur_sec <= self.maintained_sec {
            return;
        }
        self.maintained_sec = cur_sec;
        for tier in 0..2 {
            while self.tiers[tier].front().is_some_and(|b| !retained(tier, b.start_sec, cur_sec)) {
                if let Some(bucket) = self.tiers[tier].pop_front() {
                    roll_into(&mut self.tiers[tier + 1], TIERS[tier + 1].width_secs, bucket);
                }
            }
        }
        while self.tiers[2].front().is_some_and(|b| expired(b.start_sec, cur_sec)) {
            self.tiers[2].pop_front();
        }
    }

    /// Buckets of the window whose oldest second is `cutoff_sec`, oldest first.
    pub(super) fn window(&self, cutoff_sec: u64) -> impl Iterator<Item = WindowBucket<'_>> {
        self.tiers.iter().zip(TIERS.iter()).rev().flat_map(move |(buckets, tier)| {
            let w = tier.width_secs;
            let first = buckets.partition_point(|b| !in_window(b.start_sec, w, cutoff_sec));
            buckets.range(first..).map(move |bucket| WindowBucket { bucket, width_secs: w })
        })
    }

    /// The merged sketch and error count of a window, or `None` when it holds no sample.
    /// Borrows the sketch when a single bucket covers the window.
    pub(super) fn aggregate(&self, cutoff_sec: u64) -> Option<(Cow<'_, DDSketch>, u64)> {
        let mut merged: Option<Cow<'_, DDSketch>> = None;
        let mut errors = 0u64;
        for wb in self.window(cutoff_sec) {
            errors = errors.saturating_add(wb.bucket.errors);
            match merged.as_mut() {
                None => merged = Some(Cow::Borrowed(&wb.bucket.sketch)),
                Some(acc) => merge_sketch(acc.to_mut(), &wb.bucket.sketch),
            }
        }
        merged.filter(|s| s.count() > 0).map(|s| (s, errors))
    }
}

/// The bucket starting at `start` in a sorted tier, created if missing.
fn bucket_mut(buckets: &mut VecDeque<Bucket>, start: u64) -> Option<&mut Bucket> {
    let idx = match buckets.back() {
        Some(b) if b.start_sec == start => buckets.len() - 1,
        _ => match buckets.binary_search_by_key(&start, |b| b.start_sec) {
            Ok(i) => i,
            Err(i) => {
                buckets.insert(i, Bucket::new(start));
                i
            }
        },
    };
    buckets.get_mut(idx)
}

/// Moves a bucket into the enclosing slot of a coarser tier, reusing it when that slot is empty.
fn roll_into(buckets: &mut VecDeque<Bucket>, width_secs: u64, mut bucket: Bucket) {
    let start = slot_start(bucket.start_sec, width_secs);
    match buckets.binary_search_by_key(&start, |b| b.start_sec) {
        Ok(i) => {
            if let Some(target) = buckets.get_mut(i) {
                target.absorb(&bucket);
            }
        }
        Err(i) => {
            bucket.start_sec = start;
            buckets.insert(i, bucket);
        }
    }
}
