//! The report cache: computed sections and comparisons, bounded in bytes, each kind with its
//! own TTL, and the statistics `GET /api/v1/cache/stats` shows. Built on moka (size-bounded
//! with a weigher, per-entry expiry, eviction causes for the counters) rather than a
//! hand-written LRU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::sync::Cache;

use crate::model::reports::{CacheKindStats, CacheStats, Comparison, Section, SectionId};

/// What an entry is, which sets its TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A section of a report over "the last N": recomputed once its TTL is over.
    Live,
    /// A section of a report over a fixed range: kept until evicted (and saved in the store).
    Closed,
    /// A comparison's answer.
    Comparison,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Live, Kind::Closed, Kind::Comparison];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Live => "live",
            Kind::Closed => "closed",
            Kind::Comparison => "comparison",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    const fn index(self) -> usize {
        match self {
            Kind::Live => 0,
            Kind::Closed => 1,
            Kind::Comparison => 2,
        }
    }
}

/// What is cached under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Section {
        report: u64,
        section: SectionId,
    },
    /// A comparison request in its canonical JSON.
    Comparison(String),
}

impl Key {
    /// What it holds beyond its own size, counted against the cache's capacity.
    fn bytes(&self) -> usize {
        match self {
            Key::Section { .. } => 0,
            Key::Comparison(canonical) => canonical.len(),
        }
    }
}

/// A cached answer with its kind and size.
#[derive(Clone, Debug)]
pub enum Value {
    Section(Arc<Section>),
    Comparison(Arc<Comparison>),
}

#[derive(Clone, Debug)]
struct Entry {
    kind: Kind,
    bytes: u32,
    value: Value,
}

#[derive(Debug, Default)]
struct Counters {
    entries: AtomicU64,
    bytes: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// TTLs and the size limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheConfig {
    pub live_ttl: Duration,
    pub comparison_ttl: Duration,
    pub capacity_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            live_ttl: Duration::from_secs(60),
            comparison_ttl: Duration::from_secs(60),
            capacity_bytes: 32 << 20,
        }
    }
}

impl CacheConfig {
    fn ttl(&self, kind: Kind) -> Option<Duration> {
        match kind {
            Kind::Live => Some(self.live_ttl),
            Kind::Closed => None,
            Kind::Comparison => Some(self.comparison_ttl),
        }
    }
}

struct Expiry(CacheConfig);

impl moka::Expiry<Key, Entry> for Expiry {
    fn expire_after_create(&self, _: &Key, entry: &Entry, _: Instant) -> Option<Duration> {
        self.0.ttl(entry.kind)
    }
}

/// The cache and its counters; cheap to share behind an `Arc`.
pub struct ReportCache {
    cache: Cache<Key, Entry>,
    counters: Arc<[Counters; 3]>,
    config: CacheConfig,
}

impl ReportCache {
    pub fn new(config: CacheConfig) -> Self {
        let counters: Arc<[Counters; 3]> = Arc::new(Default::default());
        let removed = Arc::clone(&counters);
        let cache = Cache::builder()
            .max_capacity(config.capacity_bytes)
            .weigher(|_: &Key, e: &Entry| e.bytes)
            .expire_after(Expiry(config))
            .support_invalidation_closures()
            .eviction_listener(move |_key: Arc<Key>, e: Entry, cause: RemovalCause| {
                let c = &removed[e.kind.index()];
                c.entries.fetch_sub(1, Ordering::Relaxed);
                c.bytes.fetch_sub(u64::from(e.bytes), Ordering::Relaxed);
                if cause.was_evicted() {
                    c.evictions.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        ReportCache { cache, counters, config }
    }

    /// The cached value under `key`, counting a hit or a miss for `kind`.
    pub fn get(&self, key: &Key, kind: Kind) -> Option<Value> {
        let found = self.cache.get(key).filter(|e| e.kind == kind);
        let c = &self.counters[kind.index()];
        match found {
            Some(e) => {
                c.hits.fetch_add(1, Ordering::Relaxed);
                Some(e.value)
            }
            None => {
                c.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The cached value under `key` whatever its kind, counting a hit for its kind (a miss
    /// is counted by [`Self::get`] once the kind is known).
    pub fn lookup(&self, key: &Key) -> Option<Value> {
        let e = self.cache.get(key)?;
        self.counters[e.kind.index()].hits.fetch_add(1, Ordering::Relaxed);
        Some(e.value)
    }

    /// Caches `value` (of `bytes` serialised) under `key`.
    /// `bytes`: the answer's size; the key's is added (a comparison's key is its request).
    pub fn insert(&self, key: Key, kind: Kind, value: Value, bytes: usize) {
        let bytes = u32::try_from(bytes.saturating_add(key.bytes())).unwrap_or(u32::MAX);
        let c = &self.counters[kind.index()];
        c.entries.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(u64::from(bytes), Ordering::Relaxed);
        self.cache.insert(key, Entry { kind, bytes, value });
    }

    /// Drops the entries of `kind` (every kind: `None`); how many there were.
    pub fn clear(&self, kind: Option<Kind>) -> u64 {
        let before: u64 = Kind::ALL
            .into_iter()
            .filter(|k| kind.is_none_or(|w| w == *k))
            .map(|k| self.counters[k.index()].entries.load(Ordering::Relaxed))
            .sum();
        match kind {
            None => self.cache.invalidate_all(),
            Some(kind) => {
                // Only fails without `support_invalidation_closures`, which is set.
                let _ = self.cache.invalidate_entries_if(move |_, e| e.kind == kind);
            }
        }
        self.cache.run_pending_tasks();
        before
    }

    /// Drops what is cached for one report (deleted).
    pub fn forget_report(&self, id: u64) {
        for section in SectionId::ALL {
            self.cache.invalidate(&Key::Section { report: id, section });
        }
    }

    /// Hits and misses so far, over every kind.
    pub fn lookups(&self) -> (u64, u64) {
        self.counters.iter().fold((0, 0), |(h, m), c| {
            (h + c.hits.load(Ordering::Relaxed), m + c.misses.load(Ordering::Relaxed))
        })
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.run_pending_tasks();
        let pct = |hits: u64, misses: u64| {
            (hits + misses > 0).then(|| 100.0 * hits as f64 / (hits + misses) as f64)
        };
        let kinds: Vec<CacheKindStats> = Kind::ALL
            .into_iter()
            .map(|k| {
                let c = &self.counters[k.index()];
                let (hits, misses) =
                    (c.hits.load(Ordering::Relaxed), c.misses.load(Ordering::Relaxed));
                CacheKindStats {
                    kind: k.as_str().to_string(),
                    ttl_secs: self.config.ttl(k).map(|d| d.as_secs()),
                    entries: c.entries.load(Ordering::Relaxed),
                    bytes: c.bytes.load(Ordering::Relaxed),
                    hits,
                    misses,
                    hit_pct: pct(hits, misses),
                    evictions: c.evictions.load(Ordering::Relaxed),
                }
            })
            .collect();
        let hits = kinds.iter().map(|k| k.hits).sum();
        let misses = kinds.iter().map(|k| k.misses).sum();
        CacheStats { capacity_bytes: self.config.capacity_bytes, hit_pct: pct(hits, misses), kinds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::Tier;
    use crate::model::reports::SectionBody;

    fn section(id: SectionId) -> Value {
        Value::Section(Arc::new(Section {
            id,
            from_ms: 0,
            to_ms: 1,
            tier: Tier::Minute,
            relative_error: 0.01,
            computed_ms: 0,
            empty: None,
            body: SectionBody::NotAsked,
        }))
    }

    fn key(report: u64) -> Key {
        Key::Section { report, section: SectionId::Summary }
    }

    #[test]
    fn hits_misses_entries_and_clearing_by_kind() {
        let cache = ReportCache::new(CacheConfig::default());
        assert!(cache.get(&key(1), Kind::Live).is_none());
        cache.insert(key(1), Kind::Live, section(SectionId::Summary), 100);
        cache.insert(key(2), Kind::Closed, section(SectionId::Summary), 50);
        assert!(cache.get(&key(1), Kind::Live).is_some());
        assert!(cache.get(&key(1), Kind::Live).is_some());
        let stats = cache.stats();
        let live = &stats.kinds[0];
        assert_eq!((live.hits, live.misses, live.entries, live.bytes), (2, 1, 1, 100));
        assert_eq!(live.hit_pct.map(f64::round), Some(67.0));
        assert_eq!(live.ttl_secs, Some(60));
        assert_eq!(stats.kinds[1].ttl_secs, None);
        assert_eq!(cache.clear(Some(Kind::Live)), 1);
        assert!(cache.get(&key(1), Kind::Live).is_none());
        assert!(cache.get(&key(2), Kind::Closed).is_some(), "other kinds stay");
        let stats = cache.stats();
        assert_eq!((stats.kinds[0].entries, stats.kinds[0].bytes), (0, 0));
        assert_eq!(stats.kinds[0].evictions, 0, "clearing is not evicting");
    }

    /// A comparison's key is its request: its size counts against the capacity as the
    /// answer's does (unique requests with large scopes must not fill memory past it).
    #[test]
    fn a_comparisons_key_counts_against_the_capacity() {
        let cache =
            ReportCache::new(CacheConfig { capacity_bytes: 1_000, ..CacheConfig::default() });
        let comparison = |i: usize| Key::Comparison(format!("{i:0>300}"));
        cache.insert(comparison(0), Kind::Comparison, section(SectionId::Summary), 100);
        assert_eq!(cache.stats().kinds[2].bytes, 400);
        for i in 1..50 {
            cache.insert(comparison(i), Kind::Comparison, section(SectionId::Summary), 100);
        }
        let compared = &cache.stats().kinds[2];
        assert!(compared.bytes <= 1_000 && compared.evictions > 0, "{compared:?}");
    }

    #[test]
    fn entries_expire_by_their_kinds_ttl_and_size_evicts() {
        let config = CacheConfig {
            live_ttl: Duration::from_millis(50),
            comparison_ttl: Duration::from_secs(60),
            capacity_bytes: 1_000,
        };
        let cache = ReportCache::new(config);
        cache.insert(key(1), Kind::Live, section(SectionId::Summary), 10);
        cache.insert(key(2), Kind::Closed, section(SectionId::Summary), 10);
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.get(&key(1), Kind::Live).is_some() {
            assert!(Instant::now() < deadline, "the live entry never expired");
            std::thread::yield_now();
        }
        assert!(cache.get(&key(2), Kind::Closed).is_some(), "closed entries have no TTL");
        // Far more than the capacity: the cache stays within it.
        for i in 10..200 {
            cache.insert(key(i), Kind::Closed, section(SectionId::Summary), 100);
        }
        let stats = cache.stats();
        let closed = &stats.kinds[1];
        assert!(closed.bytes <= 1_000, "{closed:?}");
        assert!(closed.evictions > 0, "{closed:?}");
        // The expired entry leaves (and is counted) once the cache tidies up.
        while cache.stats().kinds[0].entries > 0 {
            assert!(Instant::now() < deadline, "the expired entry stayed: {:?}", cache.stats());
            std::thread::yield_now();
        }
        assert_eq!(cache.stats().kinds[0].evictions, 1, "the expiry counts as an eviction");
    }
}
