//! The live hub: a subscriber of the tick bus that keeps the rolling history, serialises and
//! frames each tick's update once and has the same bytes written to every WebSocket client
//! (`fanout`, onto each client's `outlet`); the full snapshot a
//! new client gets is serialised once per tick too and shared, and a client's own (fewer samples,
//! or those after its own) is made only within a server-wide limit. Counts what it sends, skips
//! and refuses. The WebSocket upgrade and the per-client loop live in `socket`.

pub mod alerts;
pub mod fanout;
pub mod gate;
pub mod history;
pub mod outlet;
pub mod socket;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::bus::Subscription;
use super::health::Status;
use super::limits::{self, Limit};

use crate::model::live::{LiveSnapshot, Sample, SampleUpdate, ServerMessage};
use crate::model::ops::OperationSummary;
use fanout::{Fanout, Round};
use history::History;

/// How many recent tick-to-last-send latencies are kept for the p50/p99 figures.
const LATENCY_WINDOW: usize = 1024;

/// Most bytes of listed items (samples, alerts) in one message; a longer snapshot or alerts
/// list is sent in parts (`LiveSnapshot::more`, `AlertList::more`). tungstenite
/// copies each message into its socket's send buffer and never shrinks that buffer, so every
/// client holds the largest message it was ever sent for as long as it stays: 2,000 clients
/// sent a 41 KB snapshot measured 76 MiB more than 2,000 sent an empty one (BENCHMARKS.md).
/// Parts bound that to about this much per client (updates are under 1 KiB; only a client that
/// subscribed to operation statistics gets bigger messages).
pub const PART_BYTES: usize = 8 * 1024;

/// A message as sent: its parts, in order, each serialised once and shared.
pub type Parts = Arc<[Utf8Bytes]>;

/// `items` cut into runs of at most about [`PART_BYTES`] of JSON each (at least one item per
/// run; one empty run when there are none), in order. The last item's size stands for all:
/// the items of one list are all about the same size.
fn runs<T: Serialize>(items: Vec<T>) -> Vec<Vec<T>> {
    let item_bytes =
        items.last().and_then(|i| serde_json::to_vec(i).ok()).map_or(1, |json| json.len() + 1);
    let per_run = (PART_BYTES / item_bytes).max(1);
    let mut items = items.into_iter().peekable();
    let mut runs = vec![items.by_ref().take(per_run).collect::<Vec<T>>()];
    while items.peek().is_some() {
        runs.push(items.by_ref().take(per_run).collect());
    }
    runs
}

/// Counters behind `GET /api/v1/ws/stats`.
#[derive(Default)]
pub struct HubCounters {
    pub clients: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub skipped_updates: AtomicU64,
    pub refused_connections: AtomicU64,
    pub ignored_client_messages: AtomicU64,
    pub rate_limited_requests: AtomicU64,
    pub dead_connections_closed: AtomicU64,
    /// Clients closed because a send failed or took longer than the send timeout.
    pub failed_sends: AtomicU64,
    pub snapshots_serialised: AtomicU64,
}

/// The JSON answer of `GET /api/v1/ws/stats`.
#[derive(Debug, Serialize)]
pub struct HubStats {
    pub connected_clients: u64,
    pub max_clients: u64,
    /// Messages (and their payload's bytes) handed to clients' sockets: taken by the socket,
    /// or waiting for it behind what it has not taken yet.
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub skipped_updates: u64,
    pub refused_connections: u64,
    pub ignored_client_messages: u64,
    /// `request_metrics` refused by the per-connection or global rate limit.
    pub rate_limited_requests: u64,
    pub dead_connections_closed: u64,
    /// Clients closed because a send failed or took longer than the send timeout (10 s).
    pub failed_sends: u64,
    /// Snapshots serialised (once per tick at most for the full history, shared by clients).
    pub snapshots_serialised: u64,
    /// Time from a tick's publication until the last client's socket had taken it whole, over
    /// recent ticks, read when the next tick is published (a tick still waiting on a socket
    /// then counts until then; a client that skipped it for a newer one does not count).
    pub tick_to_last_send_p50_ms: Option<f64>,
    pub tick_to_last_send_p99_ms: Option<f64>,
    pub latency_ticks_measured: usize,
}

/// The hub. One per server; cheap to share behind an `Arc`.
pub struct Hub {
    interval_ms: u64,
    max_clients: u64,
    history: Mutex<History>,
    operations: Mutex<Vec<OperationSummary>>,
    latest: watch::Sender<Option<Arc<Round>>>,
    /// The latest alerts messages (`alerts::AlertMessages`).
    alerts: watch::Sender<Option<Arc<alerts::AlertMessages>>>,
    /// Clients subscribed to the alerts list (`alerts::ListClient`).
    list_clients: AtomicUsize,
    /// Held while an alerts publication is numbered and handed out: two at once would take
    /// the same number, or reach the clients in the other order.
    alerts_publishing: Mutex<()>,
    latencies_ns: Mutex<VecDeque<u64>>,
    /// The full snapshot of the latest tick, serialised once and shared: (tick seq, bytes),
    /// one entry per variant (index 1: with the operation statistics), so that clients of
    /// both kinds connecting in turn do not evict each other's and have it serialised anew.
    snapshot_cache: Mutex<[Option<(u64, Parts)>; 2]>,
    /// The clients' sockets, and the threads that write every tick to them.
    pub fanout: Fanout,
    /// The whole server's limit on snapshots made for one client: `request_metrics`, and the
    /// private snapshot a client asks for when it connects (see [`Permit`]).
    pub snapshot_requests: Limit,
    pub counters: HubCounters,
}

/// Most samples a client's own snapshot may hold without a permit of the snapshot limit: more
/// than a page asks for (the Dashboard's 90), a few kilobytes.
pub const SMALL_PRIVATE_SAMPLES: usize = 120;

/// Whether a snapshot made for one client still needs a permit of the server-wide snapshot
/// limit ([`Hub::snapshot_requests`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// The request already took one (`request_metrics`).
    Taken,
    /// Take one if the snapshot is the client's own (a client connecting: reconnecting in a
    /// loop must not get a private copy of the history each time).
    Needed,
}

/// A connected client's place in the hub; frees it when dropped.
pub struct ClientPermit {
    hub: Arc<Hub>,
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        self.hub.counters.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    pub fn new(interval_ms: u64, history_len: usize, max_clients: u64) -> Arc<Self> {
        let hub = Arc::new(Hub {
            interval_ms,
            max_clients,
            history: Mutex::new(History::new(history_len)),
            operations: Mutex::new(Vec::new()),
            latest: watch::channel(None).0,
            alerts: watch::channel(None).0,
            list_clients: AtomicUsize::new(0),
            alerts_publishing: Mutex::new(()),
            latencies_ns: Mutex::new(VecDeque::with_capacity(LATENCY_WINDOW)),
            snapshot_cache: Mutex::new([None, None]),
            snapshot_requests: limits::all_snapshot_requests(),
            counters: HubCounters::default(),
            fanout: Fanout::default(),
        });
        Fanout::start(&hub);
        hub
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// Admits one more client unless the limit is reached (then counts the refusal).
    pub fn admit(self: &Arc<Self>) -> Option<ClientPermit> {
        let admitted = self
            .counters
            .clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_clients).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            Some(ClientPermit { hub: Arc::clone(self) })
        } else {
            self.counters.refused_connections.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    pub fn max_clients(&self) -> u64 {
        self.max_clients
    }

    /// Puts stored samples (oldest first) into the history without sending them, before the
    /// first tick (after a restart).
    pub fn restore_history(&self, samples: Vec<Sample>) {
        if let Ok(mut history) = self.history.lock() {
            for sample in samples {
                history.push(sample);
            }
        }
    }

    /// Records `sample` and sends its update to every client: serialised once (twice on ticks
    /// that carry operation statistics: with and without them), shared by all.
    /// `operations` replaces the operation statistics when given.
    pub fn publish(&self, sample: Sample, operations: Option<Vec<OperationSummary>>) {
        let seq = sample.seq;
        let mut message = ServerMessage::Update(SampleUpdate {
            sample: Box::new(sample.clone()),
            operations: None,
        });
        let Some(bytes) = serialise(&message) else { return };
        let with_operations = match operations {
            Some(ops) => {
                if let Ok(mut current) = self.operations.lock() {
                    current.clone_from(&ops);
                }
                if let ServerMessage::Update(SampleUpdate { operations, .. }) = &mut message {
                    *operations = Some(ops);
                }
                serialise(&message)
            }
            None => None,
        };
        if let Ok(mut history) = self.history.lock() {
            history.push(sample);
        }
        let round = Arc::new(Round::new(seq, bytes, with_operations));
        // The newest tick first, then the fan-out: a client that starts taking ticks in between
        // (its snapshot just sent) gets it from both its own catch-up and the fan-out (once:
        // `Outlet::offer_tick` sends a tick once), never from neither.
        let previous = self.latest.send_replace(Some(Arc::clone(&round)));
        self.fanout.publish(self, round);
        if let Some(previous) = previous {
            let ns = previous.latency_ns();
            if ns > 0 {
                if let Ok(mut latencies) = self.latencies_ns.lock() {
                    if latencies.len() == LATENCY_WINDOW {
                        latencies.pop_front();
                    }
                    latencies.push_back(ns);
                }
            }
        }
    }

    /// The newest published tick, if any.
    pub fn latest_tick(&self) -> Option<Arc<Round>> {
        self.latest.borrow().clone()
    }

    /// The latest sample, if any has been taken.
    pub fn latest(&self) -> Option<Sample> {
        self.history.lock().ok().and_then(|h| h.latest().cloned())
    }

    /// The newest `limit` samples (all when `None`), oldest first.
    pub fn history(&self, limit: Option<usize>) -> Vec<Sample> {
        self.history.lock().map(|h| h.newest(limit.unwrap_or(usize::MAX))).unwrap_or_default()
    }

    pub fn operations(&self) -> Vec<OperationSummary> {
        self.operations.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// The snapshot for a client that wants at most `history_limit` samples, with the
    /// operation statistics only for one that subscribed to them (no page of the dashboard
    /// reads them from the stream: up to 200 summaries no browser needs).
    pub fn snapshot(&self, history_limit: Option<usize>, operations: bool) -> LiveSnapshot {
        LiveSnapshot {
            interval_ms: self.interval_ms,
            history: self.history(history_limit),
            operations: if operations { self.operations() } else { Vec::new() },
            ..Default::default()
        }
    }

    /// Serialises a snapshot of `history` (continuing sample `after`, 0: none) in parts of at
    /// most about [`PART_BYTES`] of samples each: every part but the last says `more`, every
    /// part after the first continues the one before it (its `after_seq` is that part's last
    /// sample), and the operation statistics ride on the last.
    fn serialise_parts(&self, history: Vec<Sample>, operations: bool, after: u64) -> Option<Parts> {
        self.counters.snapshots_serialised.fetch_add(1, Ordering::Relaxed);
        let mut operations = operations.then(|| self.operations());
        let runs = runs(history);
        let last = runs.len() - 1;
        let mut after_seq = after;
        let mut parts = Vec::with_capacity(runs.len());
        for (i, history) in runs.into_iter().enumerate() {
            let more = i < last;
            let next_after = history.last().map_or(after_seq, |s| s.seq);
            let snapshot = LiveSnapshot {
                interval_ms: self.interval_ms,
                history,
                operations: if more { Vec::new() } else { operations.take().unwrap_or_default() },
                after_seq,
                more,
            };
            parts.push(serialise(&ServerMessage::Snapshot(snapshot))?);
            after_seq = next_after;
        }
        Some(parts.into())
    }

    /// The serialised snapshot, in parts, for a client that wants at most `history_limit`
    /// samples (all when `None`) and already holds those up to `after`: only the newer ones
    /// when the hub still holds sample `after`, else the whole snapshot.
    ///
    /// The full snapshot (no `after` held, and a limit of at least the history's length) is
    /// serialised once per tick and shared. Any other is a private copy of the client's
    /// samples, up to the whole history (tens of MB with a long `--history`), and any client
    /// can ask for one by connecting, so it is made only under a permit of the server-wide
    /// snapshot limit (`permit`); refused, the client gets the shared full snapshot instead:
    /// more than it asked for, but a whole history, which replaces what it had. `None` only
    /// when a message cannot be serialised.
    pub fn snapshot_message(
        &self,
        history_limit: Option<usize>,
        after: Option<u64>,
        operations: bool,
        permit: Permit,
    ) -> Option<Parts> {
        let private = self.history.lock().ok().and_then(|history| {
            let limit = history_limit.unwrap_or(usize::MAX);
            let after = after.filter(|&seq| history.holds(seq));
            if after.is_none() && limit >= history.len() {
                return None;
            }
            // Taken before the samples are copied; admitting is one atomic update. A snapshot
            // of a page's few samples (the Dashboard asks for 90) is as cheap as the full one
            // and needs none, so a page reloaded by many viewers at once is never refused.
            let small = limit.min(history.len()) <= SMALL_PRIVATE_SAMPLES;
            if permit == Permit::Needed && !small && !self.snapshot_requests.admit() {
                return None;
            }
            match after {
                Some(seq) => history.after(seq, limit).map(|samples| (samples, seq)),
                None => Some((history.newest(limit), 0)),
            }
        });
        match private {
            Some((samples, after)) => self.serialise_parts(samples, operations, after),
            None => self.full_snapshot(operations),
        }
    }

    /// The full snapshot of the latest tick, with the operation statistics or not: serialised
    /// on the first request of each variant in a tick, then shared.
    fn full_snapshot(&self, operations: bool) -> Option<Parts> {
        let variant = usize::from(operations);
        let seq = self.latest.borrow().as_ref().map_or(0, |t| t.seq);
        if let Ok(cache) = self.snapshot_cache.lock() {
            if let Some((cached_seq, parts)) = &cache[variant] {
                if *cached_seq == seq {
                    return Some(parts.clone());
                }
            }
        }
        let parts = self.serialise_parts(self.history(None), operations, 0)?;
        if let Ok(mut cache) = self.snapshot_cache.lock() {
            cache[variant] = Some((seq, parts.clone()));
        }
        Some(parts)
    }

    /// The hub's own health: its clients against the limit.
    pub fn health(&self) -> (Status, String) {
        let stats = self.stats();
        (Status::Ok, format!("{} of {} clients", stats.connected_clients, stats.max_clients))
    }

    /// Counts a message sent to one client.
    pub fn count_sent(&self, bytes: usize) {
        self.counters.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn stats(&self) -> HubStats {
        let c = &self.counters;
        let mut latencies: Vec<u64> =
            self.latencies_ns.lock().map(|l| l.iter().copied().collect()).unwrap_or_default();
        latencies.sort_unstable();
        let quantile = |q: f64| {
            (!latencies.is_empty()).then(|| {
                let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
                latencies[rank - 1] as f64 / 1e6
            })
        };
        HubStats {
            connected_clients: c.clients.load(Ordering::Relaxed),
            max_clients: self.max_clients,
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            skipped_updates: c.skipped_updates.load(Ordering::Relaxed),
            refused_connections: c.refused_connections.load(Ordering::Relaxed),
            ignored_client_messages: c.ignored_client_messages.load(Ordering::Relaxed),
            rate_limited_requests: c.rate_limited_requests.load(Ordering::Relaxed),
            dead_connections_closed: c.dead_connections_closed.load(Ordering::Relaxed),
            failed_sends: c.failed_sends.load(Ordering::Relaxed),
            snapshots_serialised: c.snapshots_serialised.load(Ordering::Relaxed),
            tick_to_last_send_p50_ms: quantile(0.5),
            tick_to_last_send_p99_ms: quantile(0.99),
            latency_ticks_measured: latencies.len(),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.fanout.stop();
    }
}

/// The hub as a subscriber of the tick bus: publishes every tick until the bus closes or the
/// server shuts down.
pub async fn run(hub: Arc<Hub>, mut ticks: Subscription, shutdown: CancellationToken) {
    loop {
        let tick = tokio::select! {
            () = shutdown.cancelled() => return,
            tick = ticks.next() => tick,
        };
        let Some(tick) = tick else { return };
        hub.publish(tick.sample.clone(), tick.operations.clone());
    }
}

pub(crate) fn serialise(message: &ServerMessage) -> Option<Utf8Bytes> {
    match serde_json::to_string(message) {
        Ok(text) => Some(Utf8Bytes::from(text)),
        Err(e) => {
            tracing::error!(error = %e, "Cannot serialise an update.");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64) -> Sample {
        Sample { seq, at_ms: 1000 * seq, ..Default::default() }
    }

    #[test]
    fn publish_serialises_once_and_keeps_history() {
        let hub = Hub::new(1000, 3, 10);
        for seq in 1..=5 {
            hub.publish(sample(seq), None);
        }
        let tick = hub.latest_tick().unwrap();
        assert_eq!(tick.seq, 5);
        assert!(tick.update.text.as_str().starts_with(r#"{"type":"update""#));
        let seqs: Vec<u64> = hub.history(None).iter().map(|s| s.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(hub.history(Some(2)).len(), 2);
        assert_eq!(hub.latest().unwrap().seq, 5);
    }

    #[test]
    fn operations_ride_only_in_the_subscribers_variant() {
        let hub = Hub::new(1000, 3, 10);
        hub.publish(sample(1), None);
        let tick = hub.latest_tick().unwrap();
        assert!(tick.with_operations.is_none());
        hub.publish(sample(2), Some(vec![]));
        let tick = hub.latest_tick().unwrap();
        assert!(!tick.update.text.as_str().contains("operations"));
        assert!(tick
            .with_operations
            .as_ref()
            .unwrap()
            .text
            .as_str()
            .contains(r#""operations":[]"#));
    }

    #[test]
    fn the_full_snapshot_is_serialised_once_per_tick_and_shared() {
        let hub = Hub::new(1000, 10, 10);
        hub.publish(sample(1), None);
        let a = hub.snapshot_message(None, None, false, Permit::Needed).unwrap();
        let b = hub.snapshot_message(Some(100), None, false, Permit::Needed).unwrap();
        assert_eq!(a, b);
        assert_eq!(hub.stats().snapshots_serialised, 1);
        // A shorter history is its own (unshared) message.
        hub.publish(sample(2), None);
        assert!(hub.snapshot_message(Some(1), None, false, Permit::Needed).is_some());
        assert_eq!(hub.stats().snapshots_serialised, 2);
        // A new tick makes a new full snapshot, holding it.
        let c = hub.snapshot_message(None, None, false, Permit::Needed).unwrap();
        assert_ne!(a, c);
        assert!(c[0].as_str().contains(r#""seq":2"#));
        hub.snapshot_message(None, None, false, Permit::Needed).unwrap();
        assert_eq!(hub.stats().snapshots_serialised, 3);
    }

    pub(super) fn checkout_summary() -> OperationSummary {
        serde_json::from_value(serde_json::json!({
            "name": "api.checkout", "count": 1, "span_secs": 60, "rate_per_min": 1.0,
            "success_pct": 100.0, "error_count": 0, "min_ms": 5.0, "mean_ms": 5.0, "max_ms": 5.0,
            "p50_ms": 5.0, "p90_ms": 5.0, "p95_ms": 5.0, "p99_ms": 5.0, "latency_class": "good"
        }))
        .unwrap()
    }

    #[test]
    fn operation_statistics_go_only_to_clients_that_subscribed() {
        let hub = Hub::new(1000, 10, 10);
        let summary = checkout_summary();
        hub.publish(sample(1), Some(vec![summary]));
        let browser = hub.snapshot_message(None, None, false, Permit::Needed).unwrap();
        assert!(browser[0].as_str().contains(r#""operations":[]"#), "{}", browser[0].as_str());
        let subscriber = hub.snapshot_message(None, None, true, Permit::Needed).unwrap();
        assert!(subscriber[0].as_str().contains("api.checkout"));
        // Each variant is still shared within the tick.
        assert_eq!(hub.snapshot_message(None, None, false, Permit::Needed).unwrap(), browser);
        assert!(!hub.snapshot(Some(10), false).history.is_empty());
        assert!(hub.snapshot(Some(10), false).operations.is_empty());
    }

    #[test]
    fn operation_statistics_ride_on_the_last_part_of_a_snapshot() {
        let hub = Hub::new(1000, 100, 10);
        let summary = checkout_summary();
        for seq in 1..=100 {
            hub.publish(sample(seq), Some(vec![summary.clone()]));
        }
        let parts = hub.snapshot_message(None, None, true, Permit::Needed).unwrap();
        assert!(parts.len() > 1);
        let (last, rest) = parts.split_last().unwrap();
        assert!(last.as_str().contains("api.checkout") && !last.as_str().contains("\"more\""));
        assert!(rest.iter().all(|p| p.as_str().contains(r#""operations":[]"#)));
        assert!(rest.iter().all(|p| p.as_str().contains(r#""more":true"#)));
        // Serialised once for every client of the tick, however many parts.
        assert_eq!(hub.stats().snapshots_serialised, 1);
        assert!(Arc::ptr_eq(
            &parts,
            &hub.snapshot_message(None, None, true, Permit::Needed).unwrap()
        ));
    }

    #[test]
    fn admission_stops_at_the_limit_and_frees_on_drop() {
        let hub = Hub::new(1000, 3, 2);
        let a = hub.admit().unwrap();
        let _b = hub.admit().unwrap();
        assert!(hub.admit().is_none());
        assert_eq!(hub.stats().refused_connections, 1);
        drop(a);
        assert!(hub.admit().is_some());
    }

    #[test]
    fn latency_quantiles_come_from_the_previous_ticks() {
        let hub = Hub::new(1000, 3, 2);
        for seq in 1..=101u64 {
            hub.publish(sample(seq), None);
            if let Some(tick) = hub.latest_tick() {
                tick.last_send_ns.store(seq * 1_000_000, Ordering::Relaxed);
            }
        }
        let stats = hub.stats();
        assert_eq!(stats.latency_ticks_measured, 100);
        assert_eq!(stats.tick_to_last_send_p50_ms, Some(50.0));
        assert_eq!(stats.tick_to_last_send_p99_ms, Some(99.0));
    }
}
