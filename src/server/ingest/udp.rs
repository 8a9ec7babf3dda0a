//! The StatsD listener: a dedicated thread blocking on a UDP socket with a large receive buffer,
//! parsing each datagram and applying it under one lock. Bad lines are counted and kept for
//! inspection; nothing on the wire can stop it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
use tracing::{info, warn};

use super::statsd::{parse_datagram, LineError, StatsdSink, Tags};
use super::{AppMetrics, Inner, Protocol, EVENT_PREFIX};

/// Receive buffer asked of the kernel (it may grant less; see `net.core.rmem_max`).
pub const RECV_BUFFER_BYTES: usize = 32 * 1024 * 1024;
/// Largest datagram read (the UDP maximum).
const MAX_DATAGRAM: usize = 65_536;

/// A running listener; stops when dropped or `stop` is called.
pub struct StatsdListener {
    pub local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub running: Arc<AtomicBool>,
}

impl StatsdListener {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for StatsdListener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `addr` and starts the receive thread.
pub fn spawn(addr: SocketAddr, metrics: Arc<AppMetrics>) -> std::io::Result<StatsdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(SockProtocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER_BYTES) {
        warn!(error = %e, "Cannot enlarge the StatsD receive buffer.");
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(Duration::from_millis(250)))?;
    let local_addr = socket.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(true));
    let (stop_flag, running_flag) = (Arc::clone(&stop), Arc::clone(&running));
    std::thread::Builder::new().name("vitals-statsd".into()).spawn(move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !stop_flag.load(Ordering::Relaxed) {
            match socket.recv(&mut buf) {
                Ok(len) => apply_datagram(&metrics, &buf[..len], crate::server::now_ms()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    warn!(error = %e, "StatsD receive failed; continuing.");
                }
            }
        }
        running_flag.store(false, Ordering::Relaxed);
    })?;
    info!(addr = %local_addr, "StatsD listening on udp://{local_addr}");
    Ok(StatsdListener { local_addr, stop, running })
}

/// Parses one datagram and applies it under a single lock.
pub fn apply_datagram(metrics: &AppMetrics, datagram: &[u8], now_ms: u64) {
    let mut inner = metrics.lock();
    inner.count_received(Protocol::Statsd);
    let mut sink = Apply { inner: &mut inner, now_ms };
    parse_datagram(datagram, &mut sink);
}

struct Apply<'a> {
    inner: &'a mut Inner,
    now_ms: u64,
}

fn is_event(name: &str, tags: &Tags<'_>) -> bool {
    name.starts_with(EVENT_PREFIX) || tags.iter().any(|(k, v)| k == "kind" && v == Some("event"))
}

impl StatsdSink for Apply<'_> {
    fn timer(&mut self, name: &str, value_ms: f64, weight: f64, success: bool, tags: &Tags<'_>) {
        let now = self.now_ms;
        if is_event(name, tags) {
            let event = name.strip_prefix(EVENT_PREFIX).filter(|n| !n.is_empty()).unwrap_or(name);
            self.inner.event(Protocol::Statsd, event, value_ms, success, weight, now, now);
        } else {
            self.inner.operation(Protocol::Statsd, name, value_ms, success, weight, now, now);
        }
    }

    fn counter(&mut self, name: &str, delta: f64, _tags: &Tags<'_>) {
        self.inner.counter(Protocol::Statsd, name, delta, self.now_ms);
    }

    fn gauge(&mut self, name: &str, value: f64, is_delta: bool, _tags: &Tags<'_>) {
        self.inner.gauge(Protocol::Statsd, name, value, is_delta);
    }

    fn set(&mut self, name: &str, member: &str, _tags: &Tags<'_>) {
        self.inner.set_member(Protocol::Statsd, name, member, self.now_ms);
    }

    fn malformed(&mut self, line: &[u8], error: LineError<'_>) {
        let shown: String = String::from_utf8_lossy(line).chars().take(200).collect();
        self.inner.note_malformed(Protocol::Statsd, shown, error.to_string(), self.now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::{LatencyThresholds, Window};

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn datagrams_feed_operations_events_gauges_and_keep_bad_lines() {
        let metrics = AppMetrics::new(100, LatencyThresholds::default());
        apply_datagram(
            &metrics,
            b"api.checkout:120|ms|#success:false\napi.checkout:80|ms\nevent.email:30|ms\n\
              queue.actions:12|g\ngarbage line\nhits:3|c|@0.5",
            NOW,
        );
        let ops = metrics.summaries(Window::M1, NOW);
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].name, "api.checkout");
        assert_eq!((ops[0].count, ops[0].error_count), (2, 1));
        let (actions, events) = metrics.lock().live_figures(NOW);
        assert_eq!(actions.queue_depth, 12.0);
        assert_eq!(events.processed, 1);
        let stats = metrics.ingest_stats();
        assert_eq!(stats.statsd.received, 1);
        assert_eq!(stats.statsd.malformed, 1);
        assert_eq!(stats.statsd.accepted, 5);
        assert_eq!(stats.last_malformed[0].input, "garbage line");
        assert_eq!(metrics.other_metrics(NOW).counters[0].1.total, 6.0);
    }
}
