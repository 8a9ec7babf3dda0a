//! Application metrics: everything apps send (over StatsD or the HTTP API) lands here. One owner
//! for operations, events, gauges, counters and sets, for the ingestion counters, and for the
//! figures the live stream and the API read back.
//!
//! Conventions: a timer (or HTTP operation) is an *operation*; a timer named `event.<name>` (or
//! tagged `kind:event`), and every HTTP `events` item, is an *event*; the gauges `queue.actions`
//! and `queue.events` are the queue depths.

pub mod http;
pub mod statsd;
pub mod udp;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::stats::{OperationRegistry, RecordError, StatsConfig};
use crate::model::live::{ActionMetrics, EventMetrics};
use crate::model::ops::{LatencyThresholds, OperationDetail, OperationSummary, Window};

/// Gauge carrying the action queue depth.
pub const QUEUE_ACTIONS: &str = "queue.actions";
/// Gauge carrying the event queue depth.
pub const QUEUE_EVENTS: &str = "queue.events";
/// Name prefix that makes a StatsD timer an event.
pub const EVENT_PREFIX: &str = "event.";
/// Event name used when an HTTP event has none.
pub const DEFAULT_EVENT_NAME: &str = "event";
/// Malformed inputs kept for inspection.
const KEEP_MALFORMED: usize = 20;
/// Distinct members counted per set per minute; more are dropped.
const MAX_SET_MEMBERS: usize = 100_000;
/// Longest name: 200 characters.
pub const MAX_NAME_CHARS: usize = 200;

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

/// Counters for one ingestion protocol.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProtocolStats {
    /// Datagrams (StatsD) or requests (HTTP) received.
    pub received: u64,
    /// Items (lines or batch entries) accepted.
    pub accepted: u64,
    /// Requests refused whole (HTTP) — their items are not counted as accepted.
    pub rejected: u64,
    /// Lines that could not be parsed (StatsD).
    pub malformed: u64,
    /// Samples dropped because their name was new and `--max-series` names are held.
    pub dropped_by_cap: u64,
    /// Samples dropped as older than the one-hour horizon.
    pub dropped_too_old: u64,
}

/// A rejected input kept for inspection.
#[derive(Clone, Debug, Serialize)]
pub struct Malformed {
    pub protocol: &'static str,
    pub at_ms: u64,
    pub input: String,
    pub reason: String,
}

/// The answer of `GET /api/v1/ingest/stats`.
#[derive(Clone, Debug, Serialize)]
pub struct IngestStats {
    pub statsd: ProtocolStats,
    pub http: ProtocolStats,
    pub series: usize,
    pub max_series: usize,
    /// True when new names are being dropped by the cardinality cap.
    pub cap_reached: bool,
    pub last_malformed: Vec<Malformed>,
}

/// A counter: its total since start and the increments of the current and previous minute.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CounterValue {
    pub total: f64,
    pub last_minute: f64,
    #[serde(skip)]
    minute: u64,
    #[serde(skip)]
    current: f64,
}

/// Unique members of a set in the current and previous minute.
#[derive(Clone, Debug, Default)]
struct SetValue {
    minute: u64,
    current: HashSet<Box<str>>,
    previous_unique: usize,
}

/// The JSON answer of `GET /api/v1/metrics`: counters, gauges and sets.
#[derive(Clone, Debug, Serialize)]
pub struct OtherMetrics {
    pub counters: Vec<(String, CounterValue)>,
    pub gauges: Vec<(String, f64)>,
    /// Unique members seen in the last full minute (or so far this minute, whichever is more).
    pub sets: Vec<(String, usize)>,
}

/// Metrics by name (foldhash: fast on short names, seeded per process).
type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// Which protocol an input came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Statsd,
    Http,
}

impl Protocol {
    const fn name(self) -> &'static str {
        match self {
            Protocol::Statsd => "statsd",
            Protocol::Http => "http",
        }
    }
}

/// Everything behind the lock.
pub struct Inner {
    operations: OperationRegistry,
    events: OperationRegistry,
    gauges: Map<f64>,
    counters: Map<CounterValue>,
    sets: Map<SetValue>,
    current_action: Option<String>,
    max_series: usize,
    statsd: ProtocolStats,
    http: ProtocolStats,
    malformed: VecDeque<Malformed>,
}

/// Shared application metrics; clone the `Arc`.
pub struct AppMetrics {
    inner: Mutex<Inner>,
    thresholds: LatencyThresholds,
}

impl AppMetrics {
    pub fn new(max_series: usize, thresholds: LatencyThresholds) -> Arc<Self> {
        let cfg = StatsConfig { max_series, thresholds };
        Arc::new(AppMetrics {
            inner: Mutex::new(Inner {
                operations: OperationRegistry::new(cfg),
                events: OperationRegistry::new(cfg),
                gauges: Map::default(),
                counters: Map::default(),
                sets: Map::default(),
                current_action: None,
                max_series,
                statsd: ProtocolStats::default(),
                http: ProtocolStats::default(),
                malformed: VecDeque::with_capacity(KEEP_MALFORMED),
            }),
            thresholds,
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
        self.lock().operations.summaries(window, now_ms)
    }

    pub fn detail(&self, name: &str, window: Window, now_ms: u64) -> Option<OperationDetail> {
        self.lock().operations.detail(name, window, now_ms)
    }

    pub fn ingest_stats(&self) -> IngestStats {
        let inner = self.lock();
        let series = inner.operations.series_count() + inner.events.series_count();
        let cap_reached = inner.statsd.dropped_by_cap + inner.http.dropped_by_cap > 0;
        IngestStats {
            statsd: inner.statsd.clone(),
            http: inner.http.clone(),
            series,
            max_series: inner.max_series,
            cap_reached,
            last_malformed: inner.malformed.iter().rev().cloned().collect(),
        }
    }

    pub fn other_metrics(&self, now_ms: u64) -> OtherMetrics {
        let minute = now_ms / 60_000;
        let inner = self.lock();
        let mut counters: Vec<(String, CounterValue)> = inner
            .counters
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                if v.minute != minute {
                    v.last_minute = if v.minute + 1 == minute { v.current } else { 0.0 };
                }
                (k.to_string(), v)
            })
            .collect();
        counters.sort_by(|a, b| a.0.cmp(&b.0));
        let mut gauges: Vec<(String, f64)> =
            inner.gauges.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        gauges.sort_by(|a, b| a.0.cmp(&b.0));
        let mut sets: Vec<(String, usize)> = inner
            .sets
            .iter()
            .map(|(k, v)| {
                let unique = if v.minute == minute {
                    v.previous_unique.max(v.current.len())
                } else if v.minute + 1 == minute {
                    v.current.len()
                } else {
                    0
                };
                (k.to_string(), unique)
            })
            .collect();
        sets.sort_by(|a, b| a.0.cmp(&b.0));
        OtherMetrics { counters, gauges, sets }
    }

    /// Drops data older than the one-hour horizon (frees cardinality slots). Call every few
    /// seconds.
    pub fn prune(&self, now_ms: u64) {
        let mut inner = self.lock();
        inner.operations.prune(now_ms);
        inner.events.prune(now_ms);
    }
}

impl Inner {
    fn stats_mut(&mut self, protocol: Protocol) -> &mut ProtocolStats {
        match protocol {
            Protocol::Statsd => &mut self.statsd,
            Protocol::Http => &mut self.http,
        }
    }

    /// Counts one received datagram or request.
    pub fn count_received(&mut self, protocol: Protocol) {
        self.stats_mut(protocol).received += 1;
    }

    /// Counts a request refused whole.
    pub fn count_rejected(&mut self, protocol: Protocol) {
        self.stats_mut(protocol).rejected += 1;
    }

    /// Keeps a malformed input for inspection and counts it.
    pub fn note_malformed(
        &mut self,
        protocol: Protocol,
        input: String,
        reason: String,
        now_ms: u64,
    ) {
        self.stats_mut(protocol).malformed += 1;
        if self.malformed.len() == KEEP_MALFORMED {
            self.malformed.pop_front();
        }
        self.malformed.push_back(Malformed {
            protocol: protocol.name(),
            at_ms: now_ms,
            input,
            reason,
        });
    }

    fn count_record(&mut self, protocol: Protocol, result: Result<(), RecordError>) {
        let stats = self.stats_mut(protocol);
        match result {
            Ok(()) => stats.accepted += 1,
            Err(RecordError::CardinalityCap) => stats.dropped_by_cap += 1,
            Err(RecordError::TooOld) => stats.dropped_too_old += 1,
            Err(RecordError::InvalidValue) => stats.malformed += 1,
        }
    }

    /// Records one operation sample.
    #[allow(clippy::too_many_arguments)]
    pub fn operation(
        &mut self,
        protocol: Protocol,
        name: &str,
        duration_ms: f64,
        success: bool,
        weight: f64,
        at_ms: u64,
        now_ms: u64,
    ) {
        let result = self.operations.record(name, duration_ms, success, weight, at_ms, now_ms);
        self.count_record(protocol, result);
    }

    /// Records one event.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &mut self,
        protocol: Protocol,
        name: &str,
        processing_ms: f64,
        success: bool,
        weight: f64,
        at_ms: u64,
        now_ms: u64,
    ) {
        let result = self.events.record(name, processing_ms, success, weight, at_ms, now_ms);
        self.count_record(protocol, result);
    }

    /// Sets (or, with `is_delta`, adjusts) a gauge.
    pub fn gauge(&mut self, protocol: Protocol, name: &str, value: f64, is_delta: bool) {
        let Some(gauge) = slot(&mut self.gauges, name, self.max_series) else {
            self.stats_mut(protocol).dropped_by_cap += 1;
            return;
        };
        *gauge = if is_delta { *gauge + value } else { value };
        self.stats_mut(protocol).accepted += 1;
    }

    /// Adds to a counter.
    pub fn counter(&mut self, protocol: Protocol, name: &str, delta: f64, now_ms: u64) {
        let minute = now_ms / 60_000;
        let Some(counter) = slot(&mut self.counters, name, self.max_series) else {
            self.stats_mut(protocol).dropped_by_cap += 1;
            return;
        };
        if counter.minute != minute {
            counter.last_minute = if counter.minute + 1 == minute { counter.current } else { 0.0 };
            counter.current = 0.0;
            counter.minute = minute;
        }
        counter.total += delta;
        counter.current += delta;
        self.stats_mut(protocol).accepted += 1;
    }

    /// Counts a set member.
    pub fn set_member(&mut self, protocol: Protocol, name: &str, member: &str, now_ms: u64) {
        let minute = now_ms / 60_000;
        let Some(set) = slot(&mut self.sets, name, self.max_series) else {
            self.stats_mut(protocol).dropped_by_cap += 1;
            return;
        };
        if set.minute != minute {
            set.previous_unique = if set.minute + 1 == minute { set.current.len() } else { 0 };
            set.current.clear();
            set.minute = minute;
        }
        if set.current.len() < MAX_SET_MEMBERS && !set.current.contains(member) {
            set.current.insert(member.into());
        }
        self.stats_mut(protocol).accepted += 1;
    }

    pub fn set_current_action(&mut self, action: Option<String>) {
        self.current_action = action;
    }

    /// What the live stream shows for the application at `now_ms`.
    pub fn live_figures(&self, now_ms: u64) -> (ActionMetrics, EventMetrics) {
        let ops = self.operations.totals(Window::M1, now_ms);
        let events = self.events.totals(Window::M1, now_ms);
        let action_queue = self.gauges.get(QUEUE_ACTIONS).copied().unwrap_or(0.0);
        let event_queue = self.gauges.get(QUEUE_EVENTS).copied().unwrap_or(0.0);
        (
            ActionMetrics {
                actions_per_min: ops.rate_per_min,
                avg_duration_ms: ops.mean_ms,
                success_pct: ops.success_pct,
                current_action: self.current_action.clone(),
                queue_depth: action_queue,
                error_count: ops.error_count,
            },
            EventMetrics {
                queued: event_queue,
                processed: events.count,
                failed: events.error_count,
                avg_processing_ms: events.mean_ms,
                queue_depth: event_queue,
            },
        )
    }
}

/// The entry for `name`, created (with its default value) unless `cap` names are already held.
fn slot<'a, V: Default>(map: &'a mut Map<V>, name: &str, cap: usize) -> Option<&'a mut V> {
    if !map.contains_key(name) {
        if map.len() >= cap {
            return None;
        }
        map.insert(name.into(), V::default());
    }
    map.get_mut(name)
}

/// The most operations the live stream carries (busiest first); the API has them all.
pub const LIVE_OPERATIONS: usize = 200;

impl super::live::publisher::AppSource for AppMetrics {
    fn live_figures(&self, now_ms: u64) -> (ActionMetrics, EventMetrics) {
        self.lock().live_figures(now_ms)
    }

    fn operations(&self, now_ms: u64) -> Vec<OperationSummary> {
        let mut ops = self.summaries(Window::M5, now_ms);
        ops.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        ops.truncate(LIVE_OPERATIONS);
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("api.checkout").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
        assert!(validate_name(&"é".repeat(200)).is_ok());
        assert!(validate_name("bad\nname").is_err());
    }

    #[test]
    fn live_figures_come_from_operations_events_and_queue_gauges() {
        let metrics = AppMetrics::new(100, LatencyThresholds::default());
        {
            let mut m = metrics.lock();
            for i in 0..10 {
                m.operation(Protocol::Http, "op", 100.0, i != 0, 1.0, NOW, NOW);
            }
            m.event(Protocol::Http, "e", 20.0, false, 1.0, NOW, NOW);
            m.gauge(Protocol::Statsd, QUEUE_ACTIONS, 7.0, false);
            m.gauge(Protocol::Statsd, QUEUE_ACTIONS, -2.0, true);
            m.gauge(Protocol::Statsd, QUEUE_EVENTS, 3.0, false);
            m.set_current_action(Some("export".into()));
        }
        let (actions, events) = metrics.lock().live_figures(NOW);
        assert_eq!(actions.actions_per_min, 10.0);
        assert_eq!(actions.error_count, 1);
        assert!((actions.success_pct - 90.0).abs() < 1e-9);
        assert!((actions.avg_duration_ms - 100.0).abs() < 1e-9);
        assert_eq!(actions.queue_depth, 5.0);
        assert_eq!(actions.current_action.as_deref(), Some("export"));
        assert_eq!((events.processed, events.failed, events.queue_depth), (1, 1, 3.0));
        let stats = metrics.ingest_stats();
        assert_eq!(stats.http.accepted, 11);
        assert_eq!(stats.statsd.accepted, 3);
    }

    #[test]
    fn caps_apply_to_every_kind_of_metric() {
        let metrics = AppMetrics::new(1, LatencyThresholds::default());
        let mut m = metrics.lock();
        m.gauge(Protocol::Statsd, "a", 1.0, false);
        m.gauge(Protocol::Statsd, "b", 1.0, false);
        m.counter(Protocol::Statsd, "a", 1.0, NOW);
        m.counter(Protocol::Statsd, "b", 1.0, NOW);
        m.set_member(Protocol::Statsd, "a", "x", NOW);
        m.set_member(Protocol::Statsd, "b", "x", NOW);
        m.operation(Protocol::Statsd, "a", 1.0, true, 1.0, NOW, NOW);
        m.operation(Protocol::Statsd, "b", 1.0, true, 1.0, NOW, NOW);
        assert_eq!(m.statsd.dropped_by_cap, 4);
        assert_eq!(m.statsd.accepted, 4);
    }

    #[test]
    fn counters_and_sets_roll_over_by_minute() {
        let metrics = AppMetrics::new(10, LatencyThresholds::default());
        {
            let mut m = metrics.lock();
            m.counter(Protocol::Statsd, "hits", 5.0, NOW);
            m.counter(Protocol::Statsd, "hits", 10.0, NOW);
            for user in ["a", "b", "a", "c"] {
                m.set_member(Protocol::Statsd, "users", user, NOW);
            }
        }
        let later = NOW + 60_000;
        let other = metrics.other_metrics(later);
        assert_eq!(other.counters[0].1.total, 15.0);
        assert_eq!(other.counters[0].1.last_minute, 15.0);
        assert_eq!(other.sets[0], ("users".to_string(), 3));
        let much_later = metrics.other_metrics(NOW + 10 * 60_000);
        assert_eq!(much_later.counters[0].1.last_minute, 0.0);
        assert_eq!(much_later.sets[0].1, 0);
    }

    #[test]
    fn malformed_inputs_are_kept_newest_first_and_bounded() {
        let metrics = AppMetrics::new(10, LatencyThresholds::default());
        {
            let mut m = metrics.lock();
            for i in 0..30 {
                m.note_malformed(Protocol::Statsd, format!("line {i}"), "bad".into(), NOW);
            }
        }
        let stats = metrics.ingest_stats();
        assert_eq!(stats.statsd.malformed, 30);
        assert_eq!(stats.last_malformed.len(), KEEP_MALFORMED);
        assert_eq!(stats.last_malformed[0].input, "line 29");
    }
}
