//! Rollups: the exact figures and sketch bins of one series over one stored period (a minute
//! or an hour), the unit the history store keeps, and [`RangeStats`], the merge of any number
//! of them that range queries summarise.
//!
//! A rollup's bins use the same DDSketch mapping as the in-memory windows (`sketch.rs`), so a
//! merge of minutes or hours has exactly the bins of the samples it holds and its quantiles
//! keep the same relative error bound over any range.
//!
//! # Bin encoding (stored, so versioned by the schema)
//! A byte string of unsigned LEB128 varints: the zero bin's count, then for each non-empty log
//! bin in ascending key order the key's distance from the previous key (from `i16::MIN - 1`
//! for the first) and its count. A busy minute with 60 distinct bins takes about 150 bytes.

use std::fmt;

use integer_encoding::VarInt;

use super::read::{histogram, summary_quantiles};
use super::series::{Aggregate, Bucket};
use super::sketch::{key_of, value_of, BucketBins, Key, RankWalk, WindowBins};
use crate::model::ops::{HistogramBin, LatencyThresholds, OperationSummary};

/// Count, errors, sum, min, max and sparse bins of one series over one period.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollup {
    pub count: u64,
    pub errors: u64,
    /// Sum of durations in milliseconds.
    pub sum_ms: f64,
    /// The part of `sum_ms` that failed samples took; `None` when some of their durations are
    /// unknown (rows stored before schema version 9, and merges holding one: unknown wins).
    pub error_sum_ms: Option<f64>,
    /// Exact extremes; `+inf`/`-inf` only while `count` is 0 (never stored).
    pub min_ms: f64,
    pub max_ms: f64,
    zero: u64,
    /// Non-empty log bins, ascending by key.
    bins: Vec<(i16, u64)>,
}

impl Default for Rollup {
    fn default() -> Self {
        Rollup {
            count: 0,
            errors: 0,
            sum_ms: 0.0,
            error_sum_ms: Some(0.0),
            min_ms: f64::INFINITY,
            max_ms: f64::NEG_INFINITY,
            zero: 0,
            bins: Vec::new(),
        }
    }
}

/// A rollup recorded one sample at a time (the store's spool): the same exact figures, with
/// the bins kept as a live time bucket keeps them (sparse, dense once that is no larger), so a
/// sample costs an index into the bins instead of a search of the sorted list a [`Rollup`]
/// holds. That search was the largest single cost of a StatsD line (a fifth of the receive
/// thread). `finish` gives the rollup.
#[derive(Clone, Debug)]
pub struct RollupRecorder {
    figures: Rollup,
    bins: BucketBins<u64>,
}

impl Default for RollupRecorder {
    fn default() -> Self {
        RollupRecorder { figures: Rollup::default(), bins: BucketBins::new() }
    }
}

impl RollupRecorder {
    /// As [`Rollup::record`].
    pub fn record(&mut self, duration_ms: f64, n: u64, success: bool) {
        self.figures.add_figures(duration_ms, n, success);
        self.bins.add(key_of(duration_ms), n);
    }

    /// Adds every sample of a live time bucket.
    pub(super) fn add_bucket(&mut self, bucket: &Bucket) {
        let figures = &mut self.figures;
        figures.count = figures.count.saturating_add(bucket.count);
        figures.errors = figures.errors.saturating_add(bucket.errors);
        figures.sum_ms += bucket.sum_ns as f64 / 1e6;
        figures.error_sum_ms = figures
            .error_sum_ms
            .zip(super::series::error_sum_ms(bucket.error_sum_ns, bucket.untimed_errors))
            .map(|(a, b)| a + b);
        figures.min_ms = figures.min_ms.min(bucket.min_ms);
        figures.max_ms = figures.max_ms.max(bucket.max_ms);
        bucket.bins.for_each(|key, count| self.bins.add(key, count));
    }

    /// Bytes its bins hold on the heap.
    pub(super) fn heap_bytes(&self) -> usize {
        self.bins.heap_bytes()
    }

    /// The rollup of every sample recorded.
    pub fn finish(self) -> Rollup {
        let mut rollup = self.figures;
        self.bins.for_each(|key, count| match key {
            None => rollup.zero = count,
            Some(k) => rollup.bins.push((k, count)),
        });
        rollup
    }
}

/// Stored bins that cannot be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError;

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stored sketch bins are corrupt")
    }
}

impl std::error::Error for DecodeError {}

impl Rollup {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds `n` samples of `duration_ms` (finite, 0..=1e12).
    pub fn record(&mut self, duration_ms: f64, n: u64, success: bool) {
        self.add_figures(duration_ms, n, success);
        self.add_key(key_of(duration_ms), n);
    }

    /// The exact figures of [`Self::record`], without the bins.
    fn add_figures(&mut self, duration_ms: f64, n: u64, success: bool) {
        self.count = self.count.saturating_add(n);
        if !success {
            self.errors = self.errors.saturating_add(n);
            self.error_sum_ms = self.error_sum_ms.map(|s| s + duration_ms * n as f64);
        }
        self.sum_ms += duration_ms * n as f64;
        self.min_ms = self.min_ms.min(duration_ms);
        self.max_ms = self.max_ms.max(duration_ms);
    }

    fn add_key(&mut self, key: Key, n: u64) {
        let Some(k) = key else {
            self.zero = self.zero.saturating_add(n);
            return;
        };
        match self.bins.binary_search_by_key(&k, |&(key, _)| key) {
            Ok(i) => {
                if let Some(bin) = self.bins.get_mut(i) {
                    bin.1 = bin.1.saturating_add(n);
                }
            }
            Err(i) => self.bins.insert(i, (k, n)),
        }
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Rollup) {
        self.count = self.count.saturating_add(other.count);
        self.errors = self.errors.saturating_add(other.errors);
        self.sum_ms += other.sum_ms;
        self.error_sum_ms = self.error_sum_ms.zip(other.error_sum_ms).map(|(a, b)| a + b);
        self.min_ms = self.min_ms.min(other.min_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
        self.zero = self.zero.saturating_add(other.zero);
        if self.bins.is_empty() {
            self.bins.clone_from(&other.bins);
            return;
        }
        let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
        let (mut i, mut j) = (0, 0);
        while let (Some(&x), Some(&y)) = (self.bins.get(i), other.bins.get(j)) {
            if x.0 == y.0 {
                merged.push((x.0, x.1.saturating_add(y.1)));
                (i, j) = (i + 1, j + 1);
            } else if x.0 < y.0 {
                merged.push(x);
                i += 1;
            } else {
                merged.push(y);
                j += 1;
            }
        }
        merged.extend_from_slice(self.bins.get(i..).unwrap_or_default());
        merged.extend_from_slice(other.bins.get(j..).unwrap_or_default());
        self.bins = merged;
    }

    /// The bins in the stored encoding (see the module docs).
    pub fn encode_bins(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.bins.len() * 3);
        push_varint(&mut out, self.zero);
        let mut prev = i32::from(i16::MIN) - 1;
        for &(k, c) in &self.bins {
            push_varint(&mut out, (i32::from(k) - prev) as u64);
            push_varint(&mut out, c);
            prev = i32::from(k);
        }
        out
    }

    /// A rollup from its stored parts. The bins must add up to `count`.
    pub fn from_stored(
        count: u64,
        errors: u64,
        (sum_ms, error_sum_ms): (f64, Option<f64>),
        min_ms: f64,
        max_ms: f64,
        bins: &[u8],
    ) -> Result<Rollup, DecodeError> {
        let mut rollup = Rollup::default();
        rollup.refill_from_stored(count, errors, (sum_ms, error_sum_ms), min_ms, max_ms, bins)?;
        Ok(rollup)
    }

    /// [`Self::from_stored`] into this rollup, reusing its allocation (for reading many rows).
    /// On error the rollup is left empty. A failures' sum that is not a finite share of the
    /// sum reads as unknown; without failures it is 0 whatever was stored.
    pub fn refill_from_stored(
        &mut self,
        count: u64,
        errors: u64,
        (sum_ms, error_sum_ms): (f64, Option<f64>),
        min_ms: f64,
        max_ms: f64,
        bins: &[u8],
    ) -> Result<(), DecodeError> {
        self.bins.clear();
        (self.count, self.errors, self.sum_ms) = (count, errors.min(count), sum_ms);
        self.error_sum_ms = if errors == 0 {
            Some(0.0)
        } else {
            error_sum_ms.filter(|e| e.is_finite() && (0.0..=sum_ms).contains(e))
        };
        (self.min_ms, self.max_ms, self.zero) = (min_ms, max_ms, 0);
        let mut total = 0u64;
        let decoded = decode_bins(bins, |key, c| {
            total = total.saturating_add(c);
            match key {
                None => self.zero = c,
                Some(k) => self.bins.push((k, c)),
            }
        });
        let finite = sum_ms.is_finite() && min_ms.is_finite() && max_ms.is_finite();
        if decoded.is_err() || total != count || !finite || count == 0 || min_ms > max_ms {
            self.bins.clear();
            (self.count, self.errors, self.zero) = (0, 0, 0);
            return Err(DecodeError);
        }
        Ok(())
    }

    /// Heap bytes held by the bins.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<(i16, u64)>()
    }

    /// The rollup's bins as an aggregate (for restoring the in-memory windows).
    pub(super) fn to_aggregate(&self) -> Aggregate {
        let mut agg = Aggregate::default();
        agg.add_rollup(self);
        agg
    }
}

fn push_varint(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 10];
    let n = v.encode_var(&mut buf);
    out.extend_from_slice(buf.get(..n).unwrap_or_default());
}

/// Calls `f` with each `(key, count)` of stored bins, ascending.
fn decode_bins(mut bytes: &[u8], mut f: impl FnMut(Key, u64)) -> Result<(), DecodeError> {
    let next = |bytes: &mut &[u8]| -> Result<u64, DecodeError> {
        let (v, n) = u64::decode_var(bytes).ok_or(DecodeError)?;
        *bytes = bytes.get(n..).ok_or(DecodeError)?;
        Ok(v)
    };
    let zero = next(&mut bytes)?;
    if zero > 0 {
        f(None, zero);
    }
    let mut prev = i64::from(i16::MIN) - 1;
    while !bytes.is_empty() {
        let delta = next(&mut bytes)?;
        let count = next(&mut bytes)?;
        let key = i64::try_from(delta).ok().and_then(|d| prev.checked_add(d)).ok_or(DecodeError)?;
        let key = i16::try_from(key).map_err(|_| DecodeError)?;
        if delta == 0 || count == 0 {
            return Err(DecodeError);
        }
        f(Some(key), count);
        prev = i64::from(key);
    }
    Ok(())
}

/// The merge of any number of rollups (a series over a stored range), with the summary,
/// quantiles and histogram the in-memory windows give.
#[derive(Clone, Debug, Default)]
pub struct RangeStats {
    agg: Aggregate,
}

impl RangeStats {
    pub fn add(&mut self, rollup: &Rollup) {
        self.agg.add_rollup(rollup);
    }

    /// Adds every sample of another range (another series of the same group).
    pub fn merge(&mut self, other: &RangeStats) {
        self.agg.merge(&other.agg);
    }

    pub fn count(&self) -> u64 {
        self.agg.count
    }

    pub fn errors(&self) -> u64 {
        self.agg.errors.min(self.agg.count)
    }

    pub fn max_ms(&self) -> f64 {
        self.agg.max_ms
    }

    /// The successful samples' mean duration and the failed ones' (ms); `None` for a side
    /// without samples or whose durations are unknown (see `series::split_means`).
    pub fn split_means(&self) -> (Option<f64>, Option<f64>) {
        let a = &self.agg;
        super::series::split_means(
            (a.count, a.errors),
            (a.sum_ms(), super::series::error_sum_ms(a.error_sum_ns, a.untimed_errors)),
            (a.min_ms, a.max_ms),
        )
    }

    /// p50, p95 and p99 (nearest rank within the sketch's error, clamped into min..max).
    pub fn quantiles(&self) -> [f64; 3] {
        let mut walk = RankWalk::new(self.agg.bins.total(), [0.50, 0.95, 0.99]);
        self.agg.bins.for_each(|k, c| walk.feed(k, c));
        walk.finish(self.agg.min_ms, self.agg.max_ms)
    }

    /// The summary of the merged samples over `span_secs`; `None` when there are none.
    pub fn summary(
        &self,
        name: &str,
        span_secs: u64,
        thresholds: &LatencyThresholds,
    ) -> Option<OperationSummary> {
        (self.agg.count > 0)
            .then(|| super::summarize(name, None, &self.agg.figures(), thresholds, span_secs))
    }

    pub fn histogram(&self) -> Vec<HistogramBin> {
        histogram(&self.agg.bins, self.agg.min_ms, self.agg.max_ms)
    }

    /// Apdex at `t_ms`: (satisfied + tolerating / 2) / count, where satisfied samples took at
    /// most `t_ms` and tolerating ones at most `4 × t_ms`, each judged by its sketch bin (so
    /// within the sketch's relative error of the thresholds); failures count as frustrated.
    /// `None` without samples.
    pub fn apdex(&self, t_ms: f64) -> Option<f64> {
        let count = self.agg.count;
        if count == 0 {
            return None;
        }
        let (mut satisfied, mut tolerating) = (0u64, 0u64);
        self.agg.bins.for_each(|k, c| {
            let v = value_of(k);
            if v <= t_ms {
                satisfied += c;
            } else if v <= 4.0 * t_ms {
                tolerating += c;
            }
        });
        // Failures are frustrated whatever their duration: take them from the best first.
        let errors = self.agg.errors.min(count);
        let from_satisfied = errors.min(satisfied);
        let satisfied = satisfied - from_satisfied;
        let tolerating = tolerating.saturating_sub(errors - from_satisfied);
        let score = (satisfied as f64 + tolerating as f64 / 2.0) / count as f64;
        Some(score.clamp(0.0, 1.0))
    }

    /// p50, p90, p95, p99.
    pub fn summary_quantiles(&self) -> [f64; 4] {
        summary_quantiles(&self.agg.bins, &[], self.agg.min_ms, self.agg.max_ms)
    }
}

impl WindowBins {
    pub(super) fn add_rollup(&mut self, rollup: &Rollup) {
        self.add_bins(rollup.zero, &rollup.bins);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Just;

    #[test]
    fn bins_round_trip_and_merge_exactly() {
        let mut a = Rollup::default();
        for (d, n) in [(0.0, 2), (1.0, 3), (5.0, 1), (1e9, 4), (0.5, 1)] {
            a.record(d, n, d < 1e9);
        }
        let bytes = a.encode_bins();
        let back = Rollup::from_stored(
            a.count,
            a.errors,
            (a.sum_ms, a.error_sum_ms),
            a.min_ms,
            a.max_ms,
            &bytes,
        )
        .unwrap();
        assert_eq!(back, a);
        let mut b = Rollup::default();
        b.record(1.0, 5, true);
        b.record(2000.0, 1, false);
        let mut merged = a.clone();
        merged.merge(&b);
        let mut direct = Rollup::default();
        for (d, n) in [(0.0, 2), (1.0, 3), (5.0, 1), (1e9, 4), (0.5, 1), (1.0, 5)] {
            direct.record(d, n, d < 1e9);
        }
        direct.record(2000.0, 1, false);
        assert_eq!(merged.encode_bins(), direct.encode_bins());
        assert_eq!((merged.count, merged.errors), (direct.count, direct.errors));
    }

    #[test]
    fn corrupt_or_inconsistent_bins_are_refused() {
        let mut a = Rollup::default();
        a.record(3.0, 2, true);
        let bytes = a.encode_bins();
        assert!(
            Rollup::from_stored(3, 0, (6.0, None), 3.0, 3.0, &bytes).is_err(),
            "count mismatch"
        );
        assert!(
            Rollup::from_stored(2, 0, (6.0, None), 3.0, 3.0, &bytes[..bytes.len() - 1]).is_err()
        );
        assert!(Rollup::from_stored(2, 0, (f64::NAN, None), 3.0, 3.0, &bytes).is_err());
        assert!(Rollup::from_stored(2, 0, (6.0, None), 3.0, 3.0, &[0x80]).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The spool's recorder gives the rollup recording each sample into a `Rollup` gives,
        /// sparse or dense, with the zero bin and counts past `u32::MAX`.
        #[test]
        fn a_recorded_rollup_is_the_rollup_of_its_samples(
            samples in proptest::collection::vec(
                (proptest::prop_oneof![Just(0.0), 0.0f64..5.0, 0.0f64..1e6], 1u64..5_000_000_000, proptest::bool::ANY),
                0..400,
            ),
        ) {
            let mut recorder = RollupRecorder::default();
            let mut direct = Rollup::default();
            for &(d, n, ok) in &samples {
                recorder.record(d, n, ok);
                direct.record(d, n, ok);
            }
            proptest::prop_assert_eq!(recorder.finish(), direct);
        }
    }
}
