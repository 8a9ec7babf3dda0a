//! The application-metrics store: everything apps send (through any ingestion adapter) lands
//! here. One owner for operations, events, counters, gauges and sets, for the ingestion
//! counters, and for the bounds that keep memory fixed by configuration whatever arrives:
//!
//! - **one series budget** (`--max-series`) across every kind: operations, events, counters,
//!   gauges and sets together; a sample of a new series beyond it is dropped and counted;
//! - **one byte budget for the statistics** (`--max-statistics-mb`) of operations and events
//!   together (see [`budget`]): at it, samples of new series are dropped and counted; over it,
//!   the series idle longest lose their in-memory windows (their stored rows stay);
//! - **set members** bounded per set and minute (`--max-set-members`) and in total bytes over all
//!   sets (`--max-set-bytes`); beyond either, members are counted as dropped and the set's unique
//!   count is flagged as a lower bound;
//! - **strings** bounded: names 1–200 characters, the current action 200, malformed inputs 200;
//! - **idle series pruned**: a counter, gauge or set not updated for [`IDLE_MS`], and an
//!   operation or event without samples in the last hour, frees its slot;
//! - **only finite numbers**: an update that would make a value or total infinite is refused as
//!   malformed, with its reason kept.
//!
//! Conventions: a timer (or HTTP operation) is an *operation*; a timer named `event.<name>` (or
//! tagged `kind:event`), and every HTTP `events` item, is an *event*; the gauges `queue.actions`
//! and `queue.events` are the queue depths.
//!
//! Readers (the REST API, the live publisher) take the lock briefly; heavy reads run off the
//! async runtime's workers (see `api::ops`).

mod budget;
pub mod counts;
pub mod other;
pub mod spool;
pub mod tags;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::stats::{OperationRegistry, Placed, RecordError, Recorded, Rollup, StatsConfig, Totals};
use super::store::{Batch, SeriesKind, TimingRow, ValueRow};
use crate::model::ops::{LatencyThresholds, OperationDetail, OperationSummary, Window};
pub use budget::DEFAULT_MAX_STATISTICS_BYTES;
pub use counts::{IngestCounts, Malformed, Protocol, ProtocolStats};
use other::{minute_ms, CounterValue, GaugeValue, SetValue};
pub use other::{OtherMetrics, SetReading};

/// Gauge carrying the action queue depth.
pub const QUEUE_ACTIONS: &str = "queue.actions";
/// Gauge carrying the event queue depth.
pub const QUEUE_EVENTS: &str = "queue.events";
/// Name prefix that makes a StatsD timer an event.
pub const EVENT_PREFIX: &str = "event.";
/// Event name used when an HTTP event has none.
pub const DEFAULT_EVENT_NAME: &str = "event";
/// Longest name: 200 characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Minutes the store's spool holds per series of `--max-series`: a second's late samples of a
/// series fall in at most two minutes; backfill spreading a series over more counts each.
pub const SPOOL_MINUTES_PER_SERIES: usize = 2;
/// Longest current action: 200 characters.
pub const MAX_ACTION_CHARS: usize = 200;
/// Counters, gauges and sets not updated for this long are forgotten (one hour, like the
/// operation statistics' horizon).
pub const IDLE_MS: u64 = 3_600_000;
/// Default bound on members stored per set and minute.
pub const DEFAULT_MAX_SET_MEMBERS: usize = 10_000;
/// Default bound on the bytes of set members stored over all sets.
pub const DEFAULT_MAX_SET_BYTES: usize = 2 * 1024 * 1024;

/// Checks a metric name: 1–200 printable characters.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("must be at most 200 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must contain printable characters only");
    }
    Ok(())
}

/// The bounds of the store; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Series of every kind held at once.
    pub max_series: usize,
    /// Members stored per set and minute.
    pub max_set_members: usize,
    /// Bytes of members stored over all sets.
    pub max_set_bytes: usize,
    /// Tag sets one operation or event name may hold (see [`tags`]).
    pub max_tag_sets: usize,
    /// Estimated bytes the operation and event statistics may hold together (see [`budget`]).
    pub max_statistics_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 10_000,
            max_set_members: DEFAULT_MAX_SET_MEMBERS,
            max_set_bytes: DEFAULT_MAX_SET_BYTES,
            max_tag_sets: tags::DEFAULT_MAX_TAG_SETS,
            max_statistics_bytes: DEFAULT_MAX_STATISTICS_BYTES,
        }
    }
}

/// The answer of `GET /api/v1/ingest/stats`.
#[derive(Clone, Debug, Serialize)]
pub struct IngestStats {
    pub statsd: ProtocolStats,
    pub http: ProtocolStats,
    pub otlp: ProtocolStats,
    /// Series held, of every kind (operations, events, counters, gauges, sets).
    pub series: usize,
    pub series_by_kind: SeriesByKind,
    pub max_series: usize,
    /// True when samples of new series are being dropped by the series budget.
    pub cap_reached: bool,
    /// Estimated heap bytes of the operation and event statistics (buckets and sketch bins),
    /// and their budget (`--max-statistics-mb`).
    pub statistics_bytes: usize,
    pub max_statistics_bytes: usize,
    /// Series whose in-memory windows were dropped to keep the statistics in their budget
    /// (the series idle longest go first; their stored rows stay).
    pub statistics_evicted: u64,
    /// Samples the history store never got because its spool (late and backfilled samples,
    /// and the minutes of series the budget let go of, until the next flush) held
    /// [`SPOOL_MINUTES_PER_SERIES`] × `max_series` minutes already.
    pub spool_dropped: u64,
    /// Samples moved to their name's `_overflow:true` tag set, and the bound per name.
    pub tag_sets_overflowed: u64,
    pub max_tag_sets_per_name: usize,
    /// Bytes of set members held, and the bound.
    pub set_bytes: usize,
    pub max_set_bytes: usize,
    pub last_malformed: Vec<Malformed>,
}

/// Series held per kind.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct SeriesByKind {
    pub operations: usize,
    pub events: usize,
    pub counters: usize,
    pub gauges: usize,
    pub sets: usize,
}

impl SeriesByKind {
    pub fn total(&self) -> usize {
        self.operations + self.events + self.counters + self.gauges + self.sets
    }
}

/// Metrics by name (foldhash: fast on short names, seeded per process).
type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// Everything behind the lock.
pub struct Inner {
    operations: OperationRegistry,
    events: OperationRegistry,
    gauges: Map<GaugeValue>,
    counters: Map<CounterValue>,
    sets: Map<SetValue>,
    /// Bytes of every set's stored members.
    set_bytes: usize,
    current_action: Option<String>,
    limits: Limits,
    counts: IngestCounts,
    /// What the history store has not been handed yet; `None` without a store.
    spool: Option<spool::Spool>,
    /// How far back the store accepts samples (its minute retention): older samples than the
    /// in-memory hour but within this are stored only (backfill).
    backfill_ms: u64,
    /// Tag sets held per operation name and per event name (overflow sets not counted).
    tag_sets: [Map<usize>; 2],
    /// Samples moved to their name's overflow set because it had `max_tag_sets` already.
    tag_sets_overflowed: u64,
    /// Series evicted from memory by the statistics' byte budget.
    statistics_evicted: u64,
}

/// One operation or event sample, as an adapter decoded it.
#[derive(Clone, Copy, Debug)]
pub struct Timing<'a> {
    pub kind: TimingKind,
    /// The series key: the name, or the name with its tags ([`tags::series_key`]).
    pub name: &'a str,
    pub duration_ms: f64,
    pub success: bool,
    /// How many samples this one stands for (1 / sample rate).
    pub weight: f64,
    /// When it ended, Unix ms.
    pub at_ms: u64,
}

/// Operations and events are both timings, kept in registries of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimingKind {
    Operation,
    Event,
}

impl TimingKind {
    pub const fn series_kind(self) -> SeriesKind {
        match self {
            TimingKind::Operation => SeriesKind::Operation,
            TimingKind::Event => SeriesKind::Event,
        }
    }
}

impl<'a> Timing<'a> {
    /// A successful operation of weight 1 that ended at `at_ms`.
    pub fn operation(name: &'a str, duration_ms: f64, at_ms: u64) -> Self {
        Timing { kind: TimingKind::Operation, name, duration_ms, success: true, weight: 1.0, at_ms }
    }

    /// A successful event of weight 1 processed at `at_ms`.
    pub fn event(name: &'a str, processing_ms: f64, at_ms: u64) -> Self {
        Timing { kind: TimingKind::Event, ..Timing::operation(name, processing_ms, at_ms) }
    }

    pub fn failed_if(self, failed: bool) -> Self {
        Timing { success: !failed, ..self }
    }

    pub fn weighted(self, weight: f64) -> Self {
        Timing { weight, ..self }
    }
}

/// Shared application metrics; clone the `Arc`.
pub struct AppMetrics {
    inner: Mutex<Inner>,
    thresholds: LatencyThresholds,
    /// How long the last [`AppMetrics::upkeep`] took, in microseconds.
    last_upkeep_us: std::sync::atomic::AtomicU64,
}

impl AppMetrics {
    /// A store whose rates count from `started_ms` (Unix ms) at the earliest.
    pub fn new(limits: Limits, thresholds: LatencyThresholds, started_ms: u64) -> Arc<Self> {
        let cfg = StatsConfig { max_series: limits.max_series, thresholds, started_ms };
        Arc::new(AppMetrics {
            inner: Mutex::new(Inner {
                operations: OperationRegistry::new(cfg),
                events: OperationRegistry::new(cfg),
                gauges: Map::default(),
                counters: Map::default(),
                sets: Map::default(),
                set_bytes: 0,
                current_action: None,
                limits,
                counts: IngestCounts::default(),
                spool: None,
                backfill_ms: 0,
                tag_sets: Default::default(),
                tag_sets_overflowed: 0,
                statistics_evicted: 0,
            }),
            thresholds,
            last_upkeep_us: Default::default(),
        })
    }

    /// Locks the state for a batch of changes. A poisoned lock is recovered: every change
    /// leaves the state consistent.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn thresholds(&self) -> LatencyThresholds {
        self.thresholds
    }

    /// Operation statistics over `window`.
    pub fn summaries(&self, window: Window, now_ms: u64) -> Vec<OperationSummary> {
        self.summaries_of(TimingKind::Operation, window, now_ms)
    }

    pub fn detail(&self, name: &str, window: Window, now_ms: u64) -> Option<OperationDetail> {
        self.detail_of(TimingKind::Operation, name, window, now_ms, &tags::Selection::default())
    }

    /// Operation or event statistics over `window`, one row per name (all its tag sets).
    pub fn summaries_of(
        &self,
        kind: TimingKind,
        window: Window,
        now_ms: u64,
    ) -> Vec<OperationSummary> {
        self.summaries_selected(kind, window, now_ms, &tags::Selection::default())
    }

    /// Every series of `kind`: its key, its summary over `window` (`None` without samples
    /// there) and its totals since it was first held (for the Prometheus exposition).
    pub fn export(
        &self,
        kind: TimingKind,
        window: Window,
        now_ms: u64,
    ) -> Vec<(String, Option<OperationSummary>, super::stats::Lifetime)> {
        let inner = self.lock();
        let mut all: Vec<_> = inner
            .registry(kind)
            .export(window, now_ms)
            .into_iter()
            .map(|(key, summary, lifetime)| (key.to_owned(), summary, lifetime))
            .collect();
        drop(inner);
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Statistics of the series `selection` keeps, one row per name and `by` tag values.
    pub fn summaries_selected(
        &self,
        kind: TimingKind,
        window: Window,
        now_ms: u64,
        selection: &tags::Selection,
    ) -> Vec<OperationSummary> {
        self.lock().registry(kind).summaries_grouped(window, now_ms, |key| {
            selection.keeps(key).then(|| selection.group_of(key))
        })
    }

    /// Figures over `window` of each series of `kind` whose key's hash `due` and whose key
    /// `keep` accept (with what `keep` answered for it), one per series, with only the
    /// quantiles `wanted` asks for (p50, p90, p95, p99), appended to `out`; series without
    /// samples there are left out. For the alert engine, which watches series one by one.
    pub fn series_figures<M>(
        &self,
        (kind, window): (TimingKind, Window),
        now_ms: u64,
        wanted: [bool; 4],
        due: impl Fn(u64) -> bool,
        keep: impl FnMut(&crate::server::stats::SeriesKey) -> Option<M>,
        out: &mut Vec<(M, crate::server::stats::SeriesFigures)>,
    ) {
        self.lock().registry_mut(kind).series_figures(window, now_ms, wanted, due, keep, out);
    }

    /// One name's statistics over every tag set `selection` keeps, merged.
    pub fn detail_of(
        &self,
        kind: TimingKind,
        name: &str,
        window: Window,
        now_ms: u64,
        selection: &tags::Selection,
    ) -> Option<OperationDetail> {
        self.lock().registry(kind).detail_merged(
            name,
            |key| tags::name_of(key) == name && selection.keeps(key),
            window,
            now_ms,
        )
    }

    /// The tag keys and values of every series of `kind` held in memory.
    pub fn tag_index(&self, kind: TimingKind) -> Vec<crate::model::tags::TagValues> {
        tags::tag_index(self.lock().registry(kind).keys())
    }

    /// Samples moved to an overflow tag set, and the bound per name.
    pub fn tag_sets_overflowed(&self) -> (u64, usize) {
        let inner = self.lock();
        (inner.tag_sets_overflowed, inner.limits.max_tag_sets)
    }

    /// Samples dropped by the series budget (over every protocol), and the budget.
    pub fn budget(&self) -> (u64, usize) {
        let inner = self.lock();
        (inner.counts.dropped_by_cap(), inner.limits.max_series)
    }

    /// What the statistics' byte budget has done.
    pub fn memory_budget(&self) -> crate::model::ops::MemoryBudgetUse {
        let inner = self.lock();
        crate::model::ops::MemoryBudgetUse {
            dropped: inner.counts.dropped_by_memory(),
            evicted: inner.statistics_evicted,
            max_mb: (inner.limits.max_statistics_bytes >> 20) as u64,
        }
    }

    /// StatsD datagrams the kernel dropped on the socket (see `ProtocolStats::dropped_by_kernel`).
    pub fn statsd_kernel_dropped(&self) -> u64 {
        self.lock().counts.statsd.dropped_by_kernel
    }

    pub fn ingest_stats(&self) -> IngestStats {
        let inner = self.lock();
        let by_kind = inner.series_by_kind();
        IngestStats {
            statsd: inner.counts.statsd.clone(),
            http: inner.counts.http.clone(),
            otlp: inner.counts.otlp.clone(),
            series: by_kind.total(),
            series_by_kind: by_kind,
            max_series: inner.limits.max_series,
            cap_reached: inner.counts.dropped_by_cap() > 0,
            statistics_bytes: inner.operations.approx_memory_bytes()
                + inner.events.approx_memory_bytes(),
            max_statistics_bytes: inner.limits.max_statistics_bytes,
            statistics_evicted: inner.statistics_evicted,
            spool_dropped: inner.spool.as_ref().map_or(0, |s| s.dropped),
            tag_sets_overflowed: inner.tag_sets_overflowed,
            max_tag_sets_per_name: inner.limits.max_tag_sets,
            set_bytes: inner.set_bytes,
            max_set_bytes: inner.limits.max_set_bytes,
            last_malformed: inner.counts.last_malformed(),
        }
    }

    pub fn other_metrics(&self, now_ms: u64) -> OtherMetrics {
        let minute = now_ms / 60_000;
        let inner = self.lock();
        let mut counters: Vec<(String, CounterValue)> =
            inner.counters.iter().map(|(k, v)| (k.to_string(), v.read_at(minute))).collect();
        counters.sort_by(|a, b| a.0.cmp(&b.0));
        let mut gauges: Vec<(String, f64)> =
            inner.gauges.iter().map(|(k, v)| (k.to_string(), v.value)).collect();
        gauges.sort_by(|a, b| a.0.cmp(&b.0));
        let mut sets: Vec<SetReading> = inner
            .sets
            .iter()
            .map(|(k, v)| {
                let (unique, lower_bound) = v.unique_at(minute);
                SetReading { name: k.to_string(), unique, lower_bound }
            })
            .collect();
        sets.sort_by(|a, b| a.name.cmp(&b.name));
        OtherMetrics { counters, gauges, sets }
    }

    /// Drops operation data older than the one-hour horizon and counters, gauges and sets idle
    /// for [`IDLE_MS`], freeing their series slots. Call every few seconds.
    pub fn prune(&self, now_ms: u64) {
        self.lock().prune(now_ms);
    }

    /// The statistics' upkeep for one tick, timed: every operation and event series brought
    /// up to `now_ms` (see `OperationRegistry::maintain`). Run by the publisher before it reads
    /// the tick's figures, so that the readers of that tick (the live figures, the alert
    /// evaluation, the pages) find the windows already slid.
    pub fn upkeep(&self, inner: &mut Inner, now_ms: u64) {
        let started = std::time::Instant::now();
        inner.operations.maintain(now_ms);
        inner.events.maintain(now_ms);
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_upkeep_us.store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long the last tick's upkeep took.
    pub fn last_upkeep(&self) -> std::time::Duration {
        let micros = self.last_upkeep_us.load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_micros(micros)
    }
}

impl Inner {
    fn registry(&self, kind: TimingKind) -> &OperationRegistry {
        match kind {
            TimingKind::Operation => &self.operations,
            TimingKind::Event => &self.events,
        }
    }

    fn registry_mut(&mut self, kind: TimingKind) -> &mut OperationRegistry {
        match kind {
            TimingKind::Operation => &mut self.operations,
            TimingKind::Event => &mut self.events,
        }
    }

    fn series_by_kind(&self) -> SeriesByKind {
        SeriesByKind {
            operations: self.operations.series_count(),
            events: self.events.series_count(),
            counters: self.counters.len(),
            gauges: self.gauges.len(),
            sets: self.sets.len(),
        }
    }

    /// Whether one more series fits the budget.
    fn has_room(&self) -> bool {
        self.series_by_kind().total() < self.limits.max_series
    }

    /// Counts one received datagram or request.
    pub fn count_received(&mut self, protocol: Protocol) {
        self.counts.of(protocol).received += 1;
    }

    /// Notes the kernel's count of datagrams dropped on the StatsD socket so far (it only grows).
    pub fn note_kernel_drops(&mut self, dropped: u64) {
        let counted = &mut self.counts.of(Protocol::Statsd).dropped_by_kernel;
        *counted = (*counted).max(dropped);
    }

    /// Counts a request refused whole.
    pub fn count_rejected(&mut self, protocol: Protocol) {
        self.counts.of(protocol).rejected += 1;
    }

    /// Counts items left out by configuration (not by fault).
    pub fn count_ignored(&mut self, protocol: Protocol, n: u64) {
        self.counts.of(protocol).ignored += n;
    }

    /// Keeps a malformed input for inspection (cut to 200 characters) and counts it.
    pub fn note_malformed(&mut self, protocol: Protocol, input: &str, reason: &str, now_ms: u64) {
        self.counts.malformed(protocol, input, reason, now_ms);
    }

    /// What became of one sample.
    fn count_record(
        &mut self,
        protocol: Protocol,
        name: &str,
        result: Result<(), RecordError>,
        now_ms: u64,
    ) -> Outcome {
        let stats = self.counts.of(protocol);
        let outcome = match result {
            Ok(()) => Outcome::Accepted,
            Err(RecordError::CardinalityCap) => Outcome::DroppedByCap,
            Err(RecordError::TooOld) => Outcome::TooOld,
            Err(RecordError::TooFarAhead) => Outcome::Future,
            Err(RecordError::Saturated) => Outcome::Saturated,
            Err(RecordError::InvalidValue) => {
                self.note_malformed(protocol, name, "duration or weight out of range", now_ms);
                return Outcome::Malformed;
            }
        };
        outcome.count(stats);
        outcome
    }

    /// Records one operation or event sample in memory; when a store is attached, the store
    /// gets it from the series' bucket at a flush, or from the spool when its second was handed
    /// over already. A sample older than the in-memory hour but within the store's retention
    /// is stored only (backfill, through the spool), its weight rounded to a whole count.
    pub fn timing(&mut self, protocol: Protocol, t: Timing<'_>, now_ms: u64) -> Outcome {
        if !t.name.contains(tags::TAG_SEP) {
            // No tags (most StatsD lines): no tag set to count or redirect.
            return self.record_timing(protocol, t, now_ms);
        }
        let (key, new_tag_set) = self.tag_set_key(t.kind, t.name);
        let t = Timing { name: &key, ..t };
        let outcome = self.record_timing(protocol, t, now_ms);
        let counts_as_set = new_tag_set && !tags::is_overflow(t.name);
        if counts_as_set && self.registry(t.kind).contains(t.name) {
            self.count_tag_set(t.kind, t.name);
        }
        outcome
    }

    /// The series key a timing of `key` goes to, and whether `key` is a tag set its registry
    /// does not hold yet: `key` itself, or its name's overflow set when that name holds
    /// `max_tag_sets` already (counted in `tag_sets_overflowed`).
    fn tag_set_key<'k>(&mut self, kind: TimingKind, key: &'k str) -> (Cow<'k, str>, bool) {
        let new_tag_set = key.contains(tags::TAG_SEP) && !self.registry(kind).contains(key);
        if new_tag_set && !tags::is_overflow(key) {
            let name = tags::name_of(key);
            let sets = &self.tag_sets[usize::from(kind == TimingKind::Event)];
            if sets.get(name).copied().unwrap_or(0) >= self.limits.max_tag_sets {
                self.tag_sets_overflowed += 1;
                return (Cow::Owned(tags::overflow_key(name)), true);
            }
        }
        (Cow::Borrowed(key), new_tag_set)
    }

    fn record_timing(&mut self, protocol: Protocol, t: Timing<'_>, now_ms: u64) -> Outcome {
        let (series_room, memory_room) = (self.has_room(), self.statistics_room());
        let registry = match t.kind {
            TimingKind::Operation => &mut self.operations,
            TimingKind::Event => &mut self.events,
        };
        let mut result = registry.record_within(
            t.name,
            t.duration_ms,
            t.success,
            t.weight,
            t.at_ms,
            now_ms,
            series_room && memory_room,
        );
        // A new series refused only for the byte budget.
        let memory_refused =
            matches!(result, Err(RecordError::CardinalityCap)) && series_room && !memory_room;
        if let Some(spool) = &mut self.spool {
            let kind = t.kind.series_kind();
            match result {
                Ok(Recorded { n, series, placed: Placed::Spool }) if n > 0 => {
                    spool.add_held(kind, series, t.name, t.at_ms, t.duration_ms, n, t.success);
                }
                Err(RecordError::TooOld) if t.at_ms >= now_ms.saturating_sub(self.backfill_ms) => {
                    let n = t.weight.min(super::stats::MAX_WEIGHT).round() as u64;
                    result = if n == 0
                        || spool.add(kind, t.name, t.at_ms, t.duration_ms, n, t.success)
                    {
                        Ok(Recorded { n, series: 0, placed: Placed::Spool })
                    } else {
                        Err(RecordError::CardinalityCap)
                    };
                }
                _ => {}
            }
        }
        if memory_refused {
            return Outcome::DroppedByMemory.counted(self.counts.of(protocol));
        }
        self.count_record(protocol, t.name, result.map(|_| ()), now_ms)
    }

    /// Refills the in-memory windows with a stored minute (at start-up).
    pub fn restore_minute(
        &mut self,
        kind: TimingKind,
        key: &str,
        at_ms: u64,
        rollup: &Rollup,
        now_ms: u64,
    ) {
        let room = self.has_room() && self.statistics_room();
        // Within the tag sets a name may hold, as a live sample is (the limit may be lower than
        // in the last run, or sets it had let go of may come back).
        let (key, new_tag_set) = self.tag_set_key(kind, key);
        let restored = self.registry_mut(kind).restore_minute(&key, at_ms, rollup, now_ms, room);
        if new_tag_set && restored.is_ok() && !tags::is_overflow(&key) {
            self.count_tag_set(kind, &key);
        }
    }

    fn count_tag_set(&mut self, kind: TimingKind, key: &str) {
        let sets = &mut self.tag_sets[usize::from(kind == TimingKind::Event)];
        let name = tags::name_of(key);
        match sets.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                sets.insert(name.into(), 1);
            }
        }
    }

    /// Attaches a store: from now on accepted samples are handed to it (see
    /// [`Self::take_for_store`]), and samples up to `backfill_ms` old are accepted for it alone.
    pub fn attach_store(&mut self, backfill_ms: u64) {
        let minutes = self.limits.max_series.saturating_mul(SPOOL_MINUTES_PER_SERIES);
        self.spool = Some(spool::Spool::new(minutes));
        self.operations.attach_store();
        self.events.attach_store();
        self.backfill_ms = backfill_ms;
    }

    /// What the store has not been handed yet: the timings of every second before `now_ms`'s
    /// (of every second at all when `everything`, at shutdown) and the spooled ones, and every
    /// counter, gauge and set updated since the last call: its current value, and the final
    /// value of the minute it left since, if that changed after the last call (see
    /// `other::Unstored`).
    pub fn take_for_store(&mut self, now_ms: u64, everything: bool) -> Batch {
        let Some(spool) = &mut self.spool else { return Batch::default() };
        let mut batch = spool.take();
        let before_ms = if everything { u64::MAX } else { now_ms };
        for (registry, kind) in
            [(&mut self.operations, SeriesKind::Operation), (&mut self.events, SeriesKind::Event)]
        {
            registry.take_unstored(before_ms, |name, at_ms, rollup| {
                batch.timings.push(TimingRow { kind, name: name.into(), at_ms, rollup });
            });
        }
        let values = &mut batch.values;
        for (name, c) in &mut self.counters {
            let at_ms = minute_ms(c.minute);
            c.unstored.take(at_ms, c.current, rows_into(values, SeriesKind::Counter, name));
        }
        for (name, g) in &mut self.gauges {
            g.unstored.take(g.updated_ms, g.value, rows_into(values, SeriesKind::Gauge, name));
        }
        for (name, set) in &mut self.sets {
            let (at_ms, unique) = (minute_ms(set.minute), set.current.len() as f64);
            set.unstored.take(at_ms, unique, rows_into(values, SeriesKind::Set, name));
        }
        batch
    }

    /// Sets (or, with `is_delta`, adjusts) a gauge. A delta that would make it non-finite is
    /// refused as malformed.
    pub fn gauge(
        &mut self,
        protocol: Protocol,
        name: &str,
        value: f64,
        is_delta: bool,
        now_ms: u64,
    ) -> Outcome {
        if !value.is_finite() {
            self.note_malformed(protocol, name, "gauge value is not a finite number", now_ms);
            return Outcome::Malformed;
        }
        let current = self.gauges.get(name).map(|g| g.value);
        if current.is_none() && !self.has_room() {
            return Outcome::DroppedByCap.counted(self.counts.of(protocol));
        }
        let next = match (is_delta, current) {
            (true, Some(current)) => current + value,
            _ => value,
        };
        if !next.is_finite() {
            self.note_malformed(protocol, name, "gauge delta would make it non-finite", now_ms);
            return Outcome::Malformed;
        }
        match self.gauges.get_mut(name) {
            Some(slot) => *slot = slot.set(next, now_ms),
            None => {
                self.gauges.insert(name.into(), GaugeValue::default().set(next, now_ms));
            }
        }
        Outcome::Accepted.counted(self.counts.of(protocol))
    }

    /// Adds to a counter. An increment that would make a total non-finite is refused as
    /// malformed.
    pub fn counter(&mut self, protocol: Protocol, name: &str, delta: f64, now_ms: u64) -> Outcome {
        let minute = now_ms / 60_000;
        let room = self.has_room();
        let current = self.counters.get(name);
        if current.is_none() && !room {
            return Outcome::DroppedByCap.counted(self.counts.of(protocol));
        }
        let base = current.cloned().unwrap_or_default();
        let Some(next) = delta.is_finite().then(|| base.added(delta, minute, now_ms)).flatten()
        else {
            self.note_malformed(protocol, name, "counter total would be non-finite", now_ms);
            return Outcome::Malformed;
        };
        // Only a new counter allocates its name.
        match self.counters.get_mut(name) {
            Some(slot) => *slot = next,
            None => {
                self.counters.insert(name.into(), next);
            }
        }
        Outcome::Accepted.counted(self.counts.of(protocol))
    }

    /// Counts a set member, within the per-set and total bounds.
    pub fn set_member(
        &mut self,
        protocol: Protocol,
        name: &str,
        member: &str,
        now_ms: u64,
    ) -> Outcome {
        let minute = now_ms / 60_000;
        if !self.sets.contains_key(name) {
            if !self.has_room() {
                return Outcome::DroppedByCap.counted(self.counts.of(protocol));
            }
            self.sets.insert(name.into(), SetValue::default());
        }
        let Some(set) = self.sets.get_mut(name) else { return Outcome::DroppedByCap };
        self.set_bytes -= set.roll_to(minute);
        set.updated_ms = set.updated_ms.max(now_ms);
        set.unstored.mark();
        if !set.current.contains(member) {
            let cost = SetValue::member_cost(member);
            let fits = set.current.len() < self.limits.max_set_members
                && self.set_bytes + cost <= self.limits.max_set_bytes;
            if fits {
                set.current.insert(member.into());
                set.bytes += cost;
                self.set_bytes += cost;
            } else {
                set.saturated = true;
                self.counts.of(protocol).set_members_dropped += 1;
            }
        }
        Outcome::Accepted.counted(self.counts.of(protocol))
    }

    /// Sets or clears what the application says it is doing (cut to 200 characters).
    pub fn set_current_action(&mut self, action: Option<&str>) {
        self.current_action = action.map(|a| a.chars().take(MAX_ACTION_CHARS).collect());
    }

    pub fn current_action(&self) -> Option<&str> {
        self.current_action.as_deref()
    }

    /// The latest value of a gauge.
    pub fn gauge_value(&self, name: &str) -> Option<f64> {
        self.gauges.get(name).map(|g| g.value)
    }

    /// Figures across every operation over `window`.
    pub fn operation_totals(&self, window: Window, now_ms: u64) -> Totals {
        self.operations.totals(window, now_ms)
    }

    /// Figures across every event over `window`.
    pub fn event_totals(&self, window: Window, now_ms: u64) -> Totals {
        self.events.totals(window, now_ms)
    }

    fn prune(&mut self, now_ms: u64) {
        let [op_sets, event_sets] = &mut self.tag_sets;
        self.operations.prune(now_ms, |key| forget_tag_set(op_sets, key));
        self.events.prune(now_ms, |key| forget_tag_set(event_sets, key));
        self.enforce_statistics_budget();
        let fresh = |updated_ms: u64| updated_ms.saturating_add(IDLE_MS) > now_ms;
        self.gauges.retain(|_, g| fresh(g.updated_ms));
        self.counters.retain(|_, c| fresh(c.updated_ms));
        let minute = now_ms / 60_000;
        let mut freed = 0;
        self.sets.retain(|_, s| {
            freed += s.roll_to(minute);
            let keep = fresh(s.updated_ms);
            if !keep {
                freed += std::mem::take(&mut s.bytes);
            }
            keep
        });
        self.set_bytes = self.set_bytes.saturating_sub(freed);
    }
}

/// Appends a value row of series `name` of `kind` to `values` for each (Unix ms, value) given.
fn rows_into<'a>(
    values: &'a mut Vec<ValueRow>,
    kind: SeriesKind,
    name: &'a str,
) -> impl FnMut(u64, f64) + 'a {
    move |at_ms, value| values.push(ValueRow { kind, name: name.into(), at_ms, value })
}

/// Uncounts the tag set of a series key that was pruned.
fn forget_tag_set(sets: &mut Map<usize>, key: &str) {
    if key.contains(tags::TAG_SEP) && !tags::is_overflow(key) {
        let name = tags::name_of(key);
        if let Some(n) = sets.get_mut(name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                sets.remove(name);
            }
        }
    }
}

/// What became of one sample, so an adapter can say what it accepted and dropped, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// A new series and the series budget is spent.
    DroppedByCap,
    /// A new operation or event series and the statistics' byte budget is spent.
    DroppedByMemory,
    /// Older than the one-hour horizon.
    TooOld,
    /// Stamped beyond the allowed clock skew into the future.
    Future,
    /// Its series received more in one second than it can count.
    Saturated,
    /// Refused as malformed (a value that is or would make a total non-finite).
    Malformed,
}

impl Outcome {
    /// A stable snake_case label for the reason of a drop.
    pub const fn reason(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::DroppedByCap => "series_budget",
            Outcome::DroppedByMemory => "statistics_budget",
            Outcome::TooOld => "too_old",
            Outcome::Future => "future",
            Outcome::Saturated => "saturated",
            Outcome::Malformed => "malformed",
        }
    }

    fn count(self, stats: &mut ProtocolStats) {
        match self {
            Outcome::Accepted => stats.accepted += 1,
            Outcome::DroppedByCap => stats.dropped_by_cap += 1,
            Outcome::DroppedByMemory => stats.dropped_by_memory += 1,
            Outcome::TooOld => stats.dropped_too_old += 1,
            Outcome::Future => stats.dropped_future += 1,
            Outcome::Saturated => stats.dropped_saturated += 1,
            Outcome::Malformed => stats.malformed += 1,
        }
    }

    fn counted(self, stats: &mut ProtocolStats) -> Self {
        self.count(stats);
        self
    }
}

#[cfg(test)]
mod tests;
