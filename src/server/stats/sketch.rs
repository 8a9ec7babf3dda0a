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

/// The bin of a finite duration `0.0..=1e12` ms: the crate's key, found without a logarithm
/// (see [`FastKeys`]; durations outside its span ask the crate).
pub(super) fn key_of(duration_ms: f64) -> Key {
    if duration_ms > MIN_VALUE_MS {
        let k = FAST_KEYS.key(duration_ms).unwrap_or_else(|| MAPPING.key(duration_ms));
        Some(k.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
    } else {
        None
    }
}

/// Binary exponents of the durations [`FastKeys`] covers: `2^-30` to `2^40` ms (1e-9 ms to
/// about 35 years).
const FAST_EXPONENTS: std::ops::Range<i32> = -30..41;
/// Slices of each binary octave. The widest, `[1, 1 + 1/64)`, spans `ln(1 + 1/64)` = 0.0155, less
/// than one bin (`ln gamma` = 0.0200), so a slice holds at most one bin boundary.
const SLICE_BITS: u32 = 6;

/// The crate's mapping (`floor(ln v / ln gamma)`) by table look-up, to the same key for every
/// duration: the key at the start of the value's slice of its octave (exponent and the top
/// [`SLICE_BITS`] of the mantissa), plus one if the value reaches the next bin's lower bound.
/// Both tables are built from the crate's own `key`, so they agree with it by construction
/// (the test checks every bound and its neighbours). Taking a logarithm, a floor and a division
/// per sample was about a tenth of the StatsD receive thread's time.
struct FastKeys {
    /// The key at the start of each slice, by `(exponent - FAST_EXPONENTS.start) << SLICE_BITS
    /// | slice`.
    slice_key: Vec<i32>,
    /// The smallest duration of each key from the first slice's key on (`bound[k - first]`).
    bound: Vec<f64>,
    first: i32,
}

static FAST_KEYS: LazyLock<FastKeys> = LazyLock::new(FastKeys::new);

impl FastKeys {
    fn new() -> Self {
        let slices = 1usize << SLICE_BITS;
        let mut slice_key = Vec::with_capacity(FAST_EXPONENTS.len() * slices);
        for e in FAST_EXPONENTS {
            for j in 0..slices {
                slice_key.push(MAPPING.key(slice_start(e, j as u64)));
            }
        }
        let first = slice_key[0];
        let last = MAPPING.key(slice_start(FAST_EXPONENTS.end, 0)) + 1;
        let bound = (first..=last).map(lowest_with_key).collect();
        FastKeys { slice_key, bound, first }
    }

    /// The crate's key of a positive finite `v`, or `None` outside the covered octaves.
    #[inline]
    fn key(&self, v: f64) -> Option<i32> {
        let bits = v.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
        let octave = usize::try_from(exponent - FAST_EXPONENTS.start).ok()?;
        let slice = ((bits >> (52 - SLICE_BITS)) & ((1 << SLICE_BITS) - 1)) as usize;
        let k = *self.slice_key.get((octave << SLICE_BITS) | slice)?;
        let next = self.bound.get(usize::try_from(k + 1 - self.first).ok()?)?;
        Some(if v >= *next { k + 1 } else { k })
    }
}

/// The first value of slice `j` of the octave `[2^e, 2^(e+1))`.
fn slice_start(e: i32, j: u64) -> f64 {
    let mantissa = j << (52 - SLICE_BITS);
    f64::from_bits(((e + 1023) as u64) << 52 | mantissa)
}

/// The smallest positive double whose crate key is at least `k` (found from `gamma^k` by
/// stepping a few units in the last place either way).
fn lowest_with_key(k: i32) -> f64 {
    let mut v = MAPPING.pow_gamma(k);
    while MAPPING.key(v) >= k {
        v = f64::from_bits(v.to_bits() - 1);
    }
    while MAPPING.key(v) < k {
        v = f64::from_bits(v.to_bits() + 1);
    }
    v
}

/// The value a bin reads back as: the crate's, by table look-up (see [`BinValues`]).
pub(super) fn value_of(key: Key) -> f64 {
    key.map_or(0.0, |k| BIN_VALUES.value(k))
}

/// The crate's read-back value of every key of a duration in `[1e-9, 1e12]` ms (about 2,400
/// of them, 19 KB), so that reading a quantile takes no `exp`: the alert engine reads a few
/// quantiles of a thousand series every tick, and `exp` was a tenth of that. Keys outside the
/// table (none of a valid duration) ask the crate.
struct BinValues {
    first: i16,
    values: Vec<f64>,
}

static BIN_VALUES: LazyLock<BinValues> = LazyLock::new(|| {
    let lowest = MAPPING.key(MIN_VALUE_MS);
    let highest = MAPPING.key(1e12);
    let first = i16::try_from(lowest).unwrap_or(i16::MIN);
    BinValues { first, values: (lowest..=highest).map(|k| MAPPING.value(k)).collect() }
});

impl BinValues {
    #[inline]
    fn value(&self, k: i16) -> f64 {
        let at = usize::try_from(i32::from(k) - i32::from(self.first)).ok();
        match at.and_then(|i| self.values.get(i)) {
            Some(v) => *v,
            None => MAPPING.value(i32::from(k)),
        }
    }
}

/// A bin's count: `u32` in the live time buckets (there are many of them), `u64` where a
/// count must stay exact (the store's rollups). Adding saturates.
pub(super) trait Count: Copy + Default + Into<u64> {
    fn plus(self, n: Self) -> Self;
    /// `n`, or the largest count when it does not fit.
    fn saturating_from(n: u64) -> Self;
}

impl Count for u32 {
    fn plus(self, n: Self) -> Self {
        self.saturating_add(n)
    }
    fn saturating_from(n: u64) -> Self {
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

impl Count for u64 {
    fn plus(self, n: Self) -> Self {
        self.saturating_add(n)
    }
    fn saturating_from(n: u64) -> Self {
        n
    }
}

#[derive(Clone, Copy, Debug)]
struct Bin<C> {
    key: i16,
    count: C,
}

#[derive(Clone, Debug)]
enum Store<C> {
    /// Bins sorted by key; 8 bytes per non-empty bin (16 with `u64` counts).
    Sparse(Vec<Bin<C>>),
    /// Counts of keys `first_key..first_key + counts.len()`; 4 (or 8) bytes per key of the span.
    Dense { first_key: i16, counts: Vec<C> },
}

/// Bins of one time bucket. Memory follows the number of distinct bins (a bucket of three
/// samples holds three bins), at most 4 bytes per key between its smallest and largest.
/// Counts saturate at `u32::MAX` per bin (`u64::MAX` for `BucketBins<u64>`).
#[derive(Clone, Debug)]
pub(super) struct BucketBins<C = u32> {
    zero: C,
    store: Store<C>,
}

/// A sparse store becomes dense once that is no larger: span <= 2 * bins (and 16+ bins).
const DENSIFY_MIN_BINS: usize = 16;

impl<C: Count> BucketBins<C> {
    pub(super) fn new() -> Self {
        BucketBins { zero: C::default(), store: Store::Sparse(Vec::new()) }
    }

    pub(super) fn add(&mut self, key: Key, n: C) {
        let Some(k) = key else {
            self.zero = self.zero.plus(n);
            return;
        };
        match &mut self.store {
            Store::Sparse(bins) => match bins.binary_search_by_key(&k, |b| b.key) {
                Ok(i) => {
                    if let Some(b) = bins.get_mut(i) {
                        b.count = b.count.plus(n);
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
                    *c = c.plus(n);
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
        let mut counts = vec![C::default(); span];
        for b in bins {
            if let Some(c) = counts.get_mut((i32::from(b.key) - i32::from(first.key)) as usize) {
                *c = b.count;
            }
        }
        self.store = Store::Dense { first_key: first.key, counts };
    }

    /// Calls `f` with every non-empty bin, in ascending order (zero bin first).
    pub(super) fn for_each(&self, mut f: impl FnMut(Key, u64)) {
        if self.zero.into() > 0 {
            f(None, self.zero.into());
        }
        match &self.store {
            Store::Sparse(bins) => bins.iter().for_each(|b| f(Some(b.key), b.count.into())),
            Store::Dense { first_key, counts } => {
                for (i, &c) in counts.iter().enumerate() {
                    if c.into() > 0 {
                        f(Some((i32::from(*first_key) + i as i32) as i16), c.into());
                    }
                }
            }
        }
    }

    /// Adds every bin of `other`.
    pub(super) fn absorb(&mut self, other: &BucketBins<C>) {
        other.for_each(|k, c| self.add(k, C::saturating_from(c)));
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
            Store::Sparse(bins) => bins.capacity() * std::mem::size_of::<Bin<C>>(),
            Store::Dense { counts, .. } => counts.capacity() * std::mem::size_of::<C>(),
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

    /// Adds `zero` samples to the zero bin and each `(key, count)` of `bins`, widening the dense
    /// counts once to cover them all rather than bin by bin: a stored range merges a few hundred
    /// thousand rows of a few hundred bins each (BENCHMARKS, "The first full run").
    pub(super) fn add_bins(&mut self, zero: u64, bins: &[(i16, u64)]) {
        self.zero = self.zero.saturating_add(zero);
        self.total = self.total.saturating_add(zero);
        let keys = bins.iter().map(|&(k, _)| k);
        let (Some(lo), Some(hi)) = (keys.clone().min(), keys.max()) else { return };
        grow_to_cover(&mut self.first_key, &mut self.counts, lo);
        grow_to_cover(&mut self.first_key, &mut self.counts, hi);
        let first = i32::from(self.first_key);
        for &(k, c) in bins {
            self.total = self.total.saturating_add(c);
            if let Some(slot) = self.counts.get_mut((i32::from(k) - first) as usize) {
                *slot = slot.saturating_add(c);
            }
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

    /// The count of the highest bin: where a walk from the top starts (see
    /// [`super::series::Series::read_ahead`]).
    pub(super) fn top(&self) -> u64 {
        self.counts.last().copied().unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The crate's own key, as `key_of` gave it before the tables.
    fn crate_key(v: f64) -> Key {
        (v > MIN_VALUE_MS)
            .then(|| MAPPING.key(v).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
    }

    fn step(v: f64, ulps: i64) -> f64 {
        f64::from_bits((v.to_bits() as i64 + ulps) as u64)
    }

    #[test]
    fn bins_with_corrections_are_fed_highest_first_and_stop_when_told() {
        // Held bins 3..=8 and the zero bin; corrections below, inside and above them and on
        // the zero bin, one taking a bin to nothing.
        let mut bins = WindowBins::default();
        for (k, n) in [(Some(3), 1), (Some(5), 2), (Some(8), 4), (None, 3)] {
            bins.add_key(k, n);
        }
        let delta = [(None, -1), (Some(1), 2), (Some(5), -2), (Some(6), 1), (Some(12), 5)];
        let mut fed = Vec::new();
        bins.for_each_with_rev(&delta, |k, c| {
            fed.push((k, c));
            true
        });
        let want =
            [(Some(12), 5), (Some(8), 4), (Some(6), 1), (Some(3), 1), (Some(1), 2), (None, 2)];
        assert_eq!(fed, want);
        let mut fed = Vec::new();
        bins.for_each_with_rev(&delta, |k, c| {
            fed.push((k, c));
            fed.len() < 3
        });
        assert_eq!(fed, want[..3]);
    }

    #[test]
    fn table_keys_are_the_crates_at_every_bin_bound_and_slice_start() {
        let fast = &*FAST_KEYS;
        for (i, &bound) in fast.bound.iter().enumerate() {
            for ulps in -2..=2 {
                let v = step(bound, ulps);
                assert_eq!(
                    key_of(v),
                    crate_key(v),
                    "{v:e}, by the lower bound of key {}",
                    fast.first + i as i32
                );
            }
        }
        for e in FAST_EXPONENTS.start - 2..FAST_EXPONENTS.end + 2 {
            for j in 0..1u64 << SLICE_BITS {
                for ulps in -1..=1 {
                    let v = step(slice_start(e, j), ulps);
                    assert_eq!(key_of(v), crate_key(v), "{v:e}");
                }
            }
        }
        assert_eq!((key_of(0.0), key_of(MIN_VALUE_MS)), (None, None));
    }

    #[test]
    fn bins_read_back_as_the_crates_value_for_every_key() {
        assert_eq!(value_of(None), 0.0);
        for k in i16::MIN..=i16::MAX {
            let (ours, crates) = (value_of(Some(k)), MAPPING.value(i32::from(k)));
            assert_eq!(ours.to_bits(), crates.to_bits(), "key {k}: {ours:e} against {crates:e}");
        }
        // The table covers every key of a valid duration.
        let held = BIN_VALUES.values.len() as i32;
        for v in [1.0001e-9, 1e-3, 1.0, 3.6e6, 1e12] {
            let k = i32::from(key_of(v).unwrap()) - i32::from(BIN_VALUES.first);
            assert!((0..held).contains(&k), "{v:e} is outside the table");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// A stored rollup's bins added at once land as they do bin by bin, below, inside and
        /// above the keys the window already covers, in any order.
        #[test]
        fn bins_added_at_once_equal_bins_added_one_by_one(
            held in proptest::collection::vec((-300i16..300, 1u64..1000), 0..40),
            zero in 0u64..5,
            added in proptest::collection::vec((-400i16..400, 1u64..1000), 0..60),
        ) {
            let (mut one_by_one, mut at_once) = (WindowBins::default(), WindowBins::default());
            for &(k, c) in &held {
                one_by_one.add_key(Some(k), c);
                at_once.add_key(Some(k), c);
            }
            one_by_one.add_key(None, zero);
            added.iter().for_each(|&(k, c)| one_by_one.add_key(Some(k), c));
            at_once.add_bins(zero, &added);
            prop_assert_eq!(at_once.total(), one_by_one.total());
            prop_assert_eq!(at_once.iter().collect::<Vec<_>>(), one_by_one.iter().collect::<Vec<_>>());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn table_keys_are_the_crates_for_any_duration(
            decade in -10.0f64..13.0,
            uniform in 0.0f64..1e6,
        ) {
            let v = 10f64.powf(decade);
            prop_assert_eq!(key_of(v), crate_key(v), "{:e}", v);
            prop_assert_eq!(key_of(uniform), crate_key(uniform), "{:e}", uniform);
        }
    }
}
