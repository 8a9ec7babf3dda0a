//! DDSketch bins: the index mapping of `sketches-ddsketch` (1 % relative error) over two small
//! count stores, one per time bucket (sparse, turning dense when full) and one per window
//! (dense, u64, with exact subtraction so windows slide without re-merging buckets).

use std::sync::LazyLock;

use sketches_ddsketch::Config;

/// Relative accuracy of every bin (`alpha` of DDSketch).
pub(super) const ALPHA: f64 = 0.01;
/// Durations below this (ms) fall into the zero bin.
const MIN_VALUE_MS: f64 = 1e-9;

/// The crate's logarithmic mapping: key `k` holds `[gamma^k, gamma^(k+1))` with
/// `gamma = (1 + alpha) / (1 - alpha)` and reads back as `gamma^k * 2 gamma / (1 + gamma)`,
/// within `alpha` of any value of the bin. (`max_num_bins` of the config is unused here.)
static MAPPING: LazyLock<Config> = LazyLock::new(|| Config::new(ALPHA, 2048, MIN_VALUE_MS));

/// A bin: `None` is the zero bin, `Some(k)` the log bin `k`. With durations in
/// `[1e-9, 1e12]` ms every key fits an `i16` (about -1036..=1382).
pub(super) type Key = Option<i16>;

/// The bin of a finite duration `0.0..=1e12` ms.
pub(super) fn key_of(duration_ms: f64) -> Key {
    if duration_ms > MIN_VALUE_MS {
        let k = MAPPING.key(duration_ms);
        Some(k.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
    } else {
        None
    }
}

/// The value a bin reads back as.
pub(super) fn value_of(key: Key) -> f64 {
    key.map_or(0.0, |k| MAPPING.value(i32::from(k)))
}

#[derive(Clone, Copy, Debug)]
struct Bin {
    key: i16,
    count: u32,
}

#[derive(Clone, Debug)]
enum Store {
    /// Bins sorted by key; 8 bytes per non-empty bin.
    Sparse(Vec<Bin>),
    /// Counts of keys `first_key..first_key + counts.len()`; 4 bytes per key of the span.
    Dense { first_key: i16, counts: Vec<u32> },
}

/// Bins of one time bucket. Memory follows the number of distinct bins (a bucket of three
/// samples holds three bins), at most 4 bytes per key between its smallest and largest.
/// Counts saturate at `u32::MAX` per bin.
#[derive(Clone, Debug)]
pub(super) struct BucketBins {
    zero: u32,
    store: Store,
}

/// A sparse store becomes dense once that is no larger: span <= 2 * bins (and 16+ bins).
const DENSIFY_MIN_BINS: usize = 16;

impl BucketBins {
    pub(super) fn new() -> Self {
        BucketBins { zero: 0, store: Store::Sparse(Vec::new()) }
    }

    pub(super) fn add(&mut self, key: Key, n: u32) {
        let Some(k) = key else {
            self.zero = self.zero.saturating_add(n);
            return;
        };
        match &mut self.store {
            Store::Sparse(bins) => match bins.binary_search_by_key(&k, |b| b.key) {
                Ok(i) => {
                    if let Some(b) = bins.get_mut(i) {
                        b.count = b.count.saturating_add(n);
                    }
                }
                Err(i) => {
                    bins.insert(i, Bin { key: k, count: n });
                    self.maybe_densify();
                }
            },
            Store::Dense { first_key, counts } => {
                let idx = grow_to_cover(first_key, counts, k);
                if let Some(c) = counts.get_mut(idx) {
                    *c = c.saturating_add(n);
                }
            }
        }
    }

    fn maybe_densify(&mut self) {
        let Store::Sparse(bins) = &self.store else { return };
        let (Some(first), Some(last)) = (bins.first(), bins.last()) else { return };
        let span = (i32::from(last.key) - i32::from(first.key) + 1) as usize;
        if bins.len() < DENSIFY_MIN_BINS || span > 2 * bins.len() {
            return;
        }
        let mut counts = vec![0u32; span];
        for b in bins {
            if let Some(c) = counts.get_mut((i32::from(b.key) - i32::from(first.key)) as usize) {
                *c = b.count;
            }
        }
        self.store = Store::Dense { first_key: first.key, counts };
    }

    /// Calls `f` with every non-empty bin, in ascending order (zero bin first).
    pub(super) fn for_each(&self, mut f: impl FnMut(Key, u64)) {
        if self.zero > 0 {
            f(None, u64::from(self.zero));
        }
        match &self.store {
            Store::Sparse(bins) => bins.iter().for_each(|b| f(Some(b.key), u64::from(b.count))),
            Store::Dense { first_key, counts } => {
                for (i, &c) in counts.iter().enumerate() {
                    if c > 0 {
                        f(Some((i32::from(*first_key) + i as i32) as i16), u64::from(c));
                    }
                }
            }
        }
    }

    /// Adds every bin of `other`.
    pub(super) fn absorb(&mut self, other: &BucketBins) {
        other.for_each(|k, c| self.add(k, u32::try_from(c).unwrap_or(u32::MAX)));
    }

    /// Gives back spare capacity (buckets stop growing once their time is over).
    pub(super) fn shrink(&mut self) {
        match &mut self.store {
            Store::Sparse(bins) => bins.shrink_to_fit(),
            Store::Dense { counts, .. } => counts.shrink_to_fit(),
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        match &self.store {
            Store::Sparse(bins) => bins.capacity() * std::mem::size_of::<Bin>(),
            Store::Dense { counts, .. } => counts.capacity() * 4,
        }
    }
}

/// Widens a dense store (exactly) so that it covers `key`; returns the index of `key`.
fn grow_to_cover<T: Copy + Default>(first_key: &mut i16, counts: &mut Vec<T>, key: i16) -> usize {
    let first = i32::from(*first_key);
    let k = i32::from(key);
    if counts.is_empty() {
        counts.push(T::default());
        *first_key = key;
        return 0;
    }
    let last = first + counts.len() as i32 - 1;
    if k < first {
        let extra = (first - k) as usize;
        counts.splice(0..0, std::iter::repeat_n(T::default(), extra));
        *first_key = key;
        0
    } else {
        if k > last {
            counts.resize((k - first + 1) as usize, T::default());
        }
        (k - first) as usize
    }
}

/// Dense u64 counts over a window: the sum of the bins of the buckets it holds. Adding and
/// subtracting a bucket are exact, so the window slides without drift.
#[derive(Clone, Debug, Default)]
pub(super) struct WindowBins {
    zero: u64,
    first_key: i16,
    counts: Vec<u64>,
    total: u64,
}

impl WindowBins {
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Empties the bins, keeping their allocation for reuse.
    pub(super) fn clear(&mut self) {
        self.zero = 0;
        self.total = 0;
        self.counts.clear();
    }

    pub(super) fn add_key(&mut self, key: Key, n: u64) {
        self.total = self.total.saturating_add(n);
        match key {
            None => self.zero = self.zero.saturating_add(n),
            Some(k) => {
                let idx = grow_to_cover(&mut self.first_key, &mut self.counts, k);
                if let Some(c) = self.counts.get_mut(idx) {
                    *c = c.saturating_add(n);
                }
            }
        }
    }

    fn sub_key(&mut self, key: Key, n: u64) {
        let slot = match key {
            None => Some(&mut self.zero),
            Some(k) => {
                let idx = i32::from(k) - i32::from(self.first_key);
                usize::try_from(idx).ok().and_then(|i| self.counts.get_mut(i))
            }
        };
        if let Some(c) = slot {
            let taken = n.min(*c);
            *c -= taken;
            self.total = self.total.saturating_sub(taken);
        }
    }

    pub(super) fn add_bucket(&mut self, bins: &BucketBins) {
        bins.for_each(|k, c| self.add_key(k, c));
    }

    pub(super) fn sub_bucket(&mut self, bins: &BucketBins) {
        bins.for_each(|k, c| self.sub_key(k, c));
        if self.total == 0 {
            *self = WindowBins::default(); // frees the counts of an emptied window
        }
    }

    /// Every non-empty bin, in ascending order (zero bin first).
    fn iter(&self) -> impl Iterator<Item = (Key, u64)> + '_ {
        let first = i32::from(self.first_key);
        let zero = (self.zero > 0).then_some((None, self.zero));
        let dense = self.counts.iter().enumerate().filter(|(_, c)| **c > 0);
        zero.into_iter().chain(dense.map(move |(i, &c)| (Some((first + i as i32) as i16), c)))
    }

    /// Calls `f` with every non-empty bin, in ascending order (zero bin first).
    pub(super) fn for_each(&self, mut f: impl FnMut(Key, u64)) {
        self.iter().for_each(|(k, c)| f(k, c));
    }

    /// Every non-empty bin, in descending order (zero bin last).
    fn iter_rev(&self) -> impl Iterator<Item = (Key, u64)> + '_ {
        let first = i32::from(self.first_key);
        let zero = (self.zero > 0).then_some((None, self.zero));
        let dense = self.counts.iter().enumerate().rev().filter(|(_, c)| **c > 0);
        dense.map(move |(i, &c)| (Some((first + i as i32) as i16), c)).chain(zero)
    }

    /// Calls `f` with every non-empty bin of these bins plus `delta`, in descending order,
    /// for as long as `f` answers true, without copying the bins. `delta` is sorted by key
    /// (ascending) with one entry per key: counts to add or, when negative, to take away (a
    /// bin taken below zero reads as empty).
    pub(super) fn for_each_with_rev(&self, delta: &[(Key, i64)], f: impl FnMut(Key, u64) -> bool) {
        merge(self.iter_rev(), delta.iter().rev().copied(), |a, b| a > b, f);
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * 8
    }
}

/// Feeds `f` the bins of `held` plus `delta`, both in the order `before` gives, until `f`
/// answers false (see [`WindowBins::for_each_with_rev`]).
fn merge(
    held: impl Iterator<Item = (Key, u64)>,
    delta: impl Iterator<Item = (Key, i64)>,
    before: impl Fn(Key, Key) -> bool,
    mut f: impl FnMut(Key, u64) -> bool,
) {
    let mut held = held.peekable();
    let mut delta = delta.peekable();
    loop {
        let (key, c) = match (held.peek().copied(), delta.peek().copied()) {
            (None, None) => break,
            (Some((k, c)), Some((dk, d))) if k == dk => {
                held.next();
                delta.next();
                (k, c.saturating_add_signed(d))
            }
            (Some((k, c)), Some((dk, _))) if before(k, dk) => {
                held.next();
                (k, c)
            }
            (Some((k, c)), None) => {
                held.next();
                (k, c)
            }
            (_, Some((dk, d))) => {
                delta.next();
                (dk, 0u64.saturating_add_signed(d))
            }
        };
        if c > 0 && !f(key, c) {
            break;
        }
    }
}

/// Values at several quantiles (ascending, 0.0..=1.0) of `total` samples fed bin by bin in
/// ascending order. Quantile `q` is the bin of the sample of 1-based rank `ceil(q * total)`
/// (the nearest-rank definition: at least a `q` share of samples are at or below it), so the
/// p95 of two samples is the larger one.
pub(super) struct RankWalk<const N: usize> {
    ranks: [u64; N],
    values: [f64; N],
    next: usize,
    seen: u64,
}

impl<const N: usize> RankWalk<N> {
    pub(super) fn new(total: u64, quantiles: [f64; N]) -> Self {
        let n = total as f64;
        RankWalk {
            ranks: quantiles.map(|q| ((q.clamp(0.0, 1.0) * n).ceil() as u64).saturating_sub(1)),
            values: [0.0; N],
            next: 0,
            seen: 0,
        }
    }

    pub(super) fn feed(&mut self, key: Key, count: u64) {
        self.seen = self.seen.saturating_add(count);
        while self.next < N && self.ranks[self.next] < self.seen {
            self.values[self.next] = value_of(key);
            self.next += 1;
        }
    }

    /// The values, each clamped into `[min_ms, max_ms]`.
    pub(super) fn finish(self, min_ms: f64, max_ms: f64) -> [f64; N] {
        let mut values = self.values;
        // Ranks never reached (inconsistent totals) read as the maximum.
        for v in values.iter_mut().skip(self.next) {
            *v = max_ms;
        }
        values.map(|v| v.max(min_ms).min(max_ms))
    }
}

/// [`RankWalk`]'s twin fed from the largest bin down, for quantiles in the upper half: the
/// p99 of a window is found after its top one percent of samples, and the walk ends once the
/// lowest quantile asked for is found (`feed` answers false), half-way for a median.
pub(super) struct TopWalk<const N: usize> {
    /// 0-based ranks from the bottom, highest first.
    ranks: [u64; N],
    values: [f64; N],
    next: usize,
    /// How many of `ranks` to find before the walk stops.
    until: usize,
    total: u64,
    above: u64,
}

impl<const N: usize> TopWalk<N> {
    /// `quantiles` ascending, as for [`RankWalk::new`].
    pub(super) fn new(total: u64, quantiles: [f64; N]) -> Self {
        let n = total as f64;
        let mut ranks =
            quantiles.map(|q| ((q.clamp(0.0, 1.0) * n).ceil() as u64).saturating_sub(1));
        ranks.reverse();
        TopWalk { ranks, values: [0.0; N], next: 0, until: N, total, above: 0 }
    }

    /// Stops the walk once `quantiles[lowest]` is found: those below it are not needed (they
    /// read as the minimum).
    pub(super) fn down_to(mut self, lowest: usize) -> Self {
        self.until = N.saturating_sub(lowest).min(N);
        self
    }

    /// Takes the next bin down; answers whether a quantile is still to be found.
    pub(super) fn feed(&mut self, key: Key, count: u64) -> bool {
        self.above = self.above.saturating_add(count);
        let lowest_here = self.total.saturating_sub(self.above);
        while self.next < self.until && self.ranks[self.next] >= lowest_here {
            self.values[self.next] = value_of(key);
            self.next += 1;
        }
        self.next < self.until
    }

    /// The values in the order of the quantiles asked for, each clamped into
    /// `[min_ms, max_ms]`.
    pub(super) fn finish(self, min_ms: f64, max_ms: f64) -> [f64; N] {
        let mut values = self.values;
        // Ranks never reached (inconsistent totals) read as the minimum.
        for v in values.iter_mut().skip(self.next) {
            *v = min_ms;
        }
        values.reverse();
        values.map(|v| v.max(min_ms).min(max_ms))
    }
}
