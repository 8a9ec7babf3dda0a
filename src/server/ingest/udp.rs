//! The StatsD listener: a dedicated thread blocking on a UDP socket with a large receive buffer.
//! On Linux it takes up to [`BATCH`] datagrams per system call (`recvmmsg`) and applies each
//! batch under one lock. Bad lines are counted and kept for inspection; nothing on the wire can
//! stop it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
use tracing::{info, warn};

use super::statsd::{parse_datagram, LineError, StatsdSink, Tags};
use crate::server::health::Status;
use crate::server::metrics::counts::MALFORMED_INPUT_CHARS;
use crate::server::metrics::{tags, AppMetrics, Inner, Protocol, Timing, EVENT_PREFIX};

/// Receive buffer asked of the kernel. Without `CAP_NET_ADMIN` the kernel caps it at
/// `net.core.rmem_max`; with it (`SO_RCVBUFFORCE`) a burst of ~1M lines fits.
pub const RECV_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// Largest datagram read (the UDP maximum).
const MAX_DATAGRAM: usize = 65_536;
/// The longest the receive thread blocks before looking at its stop flag when nothing arrives
/// and [`StatsdListener::stop`]'s wake-up datagram was lost. Long, so an idle server does not
/// wake for nothing.
const IDLE_WAKE: Duration = Duration::from_secs(5);
/// Datagrams taken per system call.
pub const BATCH: usize = 32;

/// A running listener; stops when dropped or `stop` is called.
pub struct StatsdListener {
    pub local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub running: Arc<AtomicBool>,
}

impl StatsdListener {
    /// Stops the receive thread: sets the flag and wakes the thread with an empty datagram
    /// (the read timeout, [`IDLE_WAKE`], is only the fallback).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut target = self.local_addr;
        if target.ip().is_unspecified() {
            target.set_ip(match target {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let any: SocketAddr = match target {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        if let Ok(socket) = UdpSocket::bind(any) {
            let _ = socket.send_to(&[], target);
        }
    }

    /// The listener's own health: down once its thread has stopped.
    pub fn health(&self) -> (Status, String) {
        if self.running.load(Ordering::Relaxed) {
            (Status::Ok, format!("listening on udp://{}", self.local_addr))
        } else {
            (Status::Down, "the StatsD listener stopped".to_string())
        }
    }
}

impl Drop for StatsdListener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `addr` and starts the receive thread.
pub fn spawn(addr: SocketAddr, metrics: Arc<AppMetrics>) -> std::io::Result<StatsdListener> {
    spawn_with_buffer(addr, metrics, RECV_BUFFER_BYTES)
}

/// [`spawn`] with a receive buffer of `buffer_bytes` (tests overflow a small one).
fn spawn_with_buffer(
    addr: SocketAddr,
    metrics: Arc<AppMetrics>,
    buffer_bytes: usize,
) -> std::io::Result<StatsdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(SockProtocol::UDP))?;
    enlarge_receive_buffer(&socket, buffer_bytes);
    count_kernel_drops(&socket);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(IDLE_WAKE))?;
    let local_addr = socket.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(true));
    let (stop_flag, running_flag) = (Arc::clone(&stop), Arc::clone(&running));
    std::thread::Builder::new().name("vitals-statsd".into()).spawn(move || {
        let mut receiver = Receiver::new();
        while !stop_flag.load(Ordering::Relaxed) {
            match receiver.receive(&socket) {
                Ok(_) if stop_flag.load(Ordering::Relaxed) => break,
                Ok(kernel_drops) => {
                    let now_ms = crate::server::now_ms();
                    let mut inner = metrics.lock();
                    for datagram in receiver.datagrams() {
                        apply_to(&mut inner, datagram, now_ms);
                    }
                    if let Some(dropped) = kernel_drops {
                        inner.note_kernel_drops(dropped);
                    }
                }
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

/// Asks for `bytes` of receive buffer, forcing past `rmem_max` where the process may.
fn enlarge_receive_buffer(socket: &Socket, bytes: usize) {
    #[cfg(target_os = "linux")]
    if nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBufForce, &bytes).is_ok()
    {
        return;
    }
    if let Err(e) = socket.set_recv_buffer_size(bytes) {
        warn!(error = %e, "Cannot enlarge the StatsD receive buffer.");
    }
    if let Ok(granted) = socket.recv_buffer_size() {
        if granted < bytes {
            info!(
                granted_bytes = granted,
                "StatsD receive buffer capped by net.core.rmem_max; bursts may drop datagrams."
            );
        }
    }
}

/// Asks the kernel to tell, with each datagram, how many it has dropped on this socket so far
/// for want of buffer room (`SO_RXQ_OVFL`); they are counted as `dropped_by_kernel`.
fn count_kernel_drops(socket: &Socket) {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RxqOvfl, &1) {
        warn!(error = %e, "Cannot count the datagrams the kernel drops on the StatsD socket.");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// Headers for [`BATCH`] datagrams, each with room for the kernel's drop count.
#[cfg(target_os = "linux")]
fn headers() -> nix::sys::socket::MultiHeaders<()> {
    nix::sys::socket::MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(u32)))
}

/// Reusable receive buffers: up to [`BATCH`] datagrams per call.
struct Receiver {
    buffer: Vec<u8>,
    lengths: Vec<usize>,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<()>,
}

impl Receiver {
    fn new() -> Self {
        Receiver {
            buffer: vec![0u8; BATCH * MAX_DATAGRAM],
            lengths: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            headers: headers(),
        }
    }

    /// Blocks (up to the socket's read timeout) for at least one datagram, then takes whatever
    /// else is already queued, up to [`BATCH`] (read them with `datagrams`). Answers the
    /// kernel's count of datagrams it dropped on the socket so far, when it said.
    #[cfg(target_os = "linux")]
    fn receive(&mut self, socket: &UdpSocket) -> std::io::Result<Option<u64>> {
        use nix::sys::socket::{recvmmsg, ControlMessageOwned, MsgFlags};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;
        self.lengths.clear();
        let mut kernel_drops = None;
        // nix's `recvmmsg` does not give each header its control buffer's length back after a
        // call (the kernel leaves there the length it used, 0 without drops), so a header used
        // twice would truncate the drop count: fresh headers for every call (a few small
        // allocations per up to BATCH datagrams).
        self.headers = headers();
        {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                self.buffer.chunks_mut(MAX_DATAGRAM).map(|c| [IoSliceMut::new(c)]).collect();
            let received = recvmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            )
            .map_err(std::io::Error::from)?;
            for m in received {
                self.lengths.push(m.bytes);
                for cmsg in m.cmsgs().into_iter().flatten() {
                    if let ControlMessageOwned::RxqOvfl(n) = cmsg {
                        kernel_drops = kernel_drops.max(Some(u64::from(n)));
                    }
                }
            }
        }
        Ok(kernel_drops)
    }

    #[cfg(not(target_os = "linux"))]
    fn receive(&mut self, socket: &UdpSocket) -> std::io::Result<Option<u64>> {
        self.lengths.clear();
        let len = socket.recv(&mut self.buffer[..MAX_DATAGRAM])?;
        self.lengths.push(len);
        Ok(None)
    }

    /// The datagrams of the last receive.
    fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.lengths.iter().enumerate().map(|(i, len)| {
            let start = i * MAX_DATAGRAM;
            &self.buffer[start..start + len.min(&MAX_DATAGRAM)]
        })
    }
}

/// Parses one datagram and applies it.
pub fn apply_to(inner: &mut Inner, datagram: &[u8], now_ms: u64) {
    inner.count_received(Protocol::Statsd);
    let mut sink = Apply { inner, now_ms, key: String::new() };
    parse_datagram(datagram, &mut sink);
}

/// Parses one datagram and applies it under the lock.
pub fn apply_datagram(metrics: &AppMetrics, datagram: &[u8], now_ms: u64) {
    apply_to(&mut metrics.lock(), datagram, now_ms);
}

struct Apply<'a> {
    inner: &'a mut Inner,
    now_ms: u64,
    /// The series key of a tagged timer (reused within a datagram).
    key: String,
}

fn is_event(name: &str, tags: &Tags<'_>) -> bool {
    name.starts_with(EVENT_PREFIX) || tags.iter().any(|(k, v)| k == "kind" && v == Some("event"))
}

impl StatsdSink for Apply<'_> {
    fn timer(&mut self, name: &str, value_ms: f64, weight: f64, success: bool, tags: &Tags<'_>) {
        let now = self.now_ms;
        let event = is_event(name, tags);
        let name = if event {
            name.strip_prefix(EVENT_PREFIX).filter(|n| !n.is_empty()).unwrap_or(name)
        } else {
            name
        };
        // Untagged timers (the common case) need no key of their own.
        let key = if tags.as_str().is_empty() {
            name
        } else {
            let mut scratch = Vec::new();
            let pairs = tags.iter().map(|(k, v)| (k, v.unwrap_or("")));
            tags::series_key(&mut self.key, &mut scratch, name, pairs);
            self.key.as_str()
        };
        let t = if event {
            Timing::event(key, value_ms, now)
        } else {
            Timing::operation(key, value_ms, now)
        };
        self.inner.timing(Protocol::Statsd, t.failed_if(!success).weighted(weight), now);
    }

    fn counter(&mut self, name: &str, delta: f64, _tags: &Tags<'_>) {
        self.inner.counter(Protocol::Statsd, name, delta, self.now_ms);
    }

    fn gauge(&mut self, name: &str, value: f64, is_delta: bool, _tags: &Tags<'_>) {
        self.inner.gauge(Protocol::Statsd, name, value, is_delta, self.now_ms);
    }

    fn set(&mut self, name: &str, member: &str, _tags: &Tags<'_>) {
        self.inner.set_member(Protocol::Statsd, name, member, self.now_ms);
    }

    fn malformed(&mut self, line: &[u8], error: LineError<'_>) {
        let cut = &line[..line.len().min(4 * MALFORMED_INPUT_CHARS)];
        let shown = String::from_utf8_lossy(cut);
        self.inner.note_malformed(Protocol::Statsd, &shown, &error.to_string(), self.now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::{LatencyThresholds, Window};
    use crate::server::metrics::Limits;
    use crate::server::publisher::live_figures;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn stop_wakes_an_idle_listener_at_once_and_counts_nothing() {
        for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
            let metrics =
                Arc::new(AppMetrics::new(Limits::default(), LatencyThresholds::default(), 0));
            let listener = spawn(bind.parse().unwrap(), Arc::clone(&metrics)).unwrap();
            let received = || metrics.ingest_stats().statsd.received;
            // One datagram taken proves the thread is in its receive loop (then blocks again).
            let to = SocketAddr::from(([127, 0, 0, 1], listener.local_addr.port()));
            UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"a:1|c", to).unwrap();
            let started = std::time::Instant::now();
            while received() == 0 {
                assert!(started.elapsed() < IDLE_WAKE / 2, "{bind}: the datagram never arrived");
                std::thread::yield_now();
            }
            let started = std::time::Instant::now();
            listener.stop();
            // Well inside IDLE_WAKE: only the wake-up datagram can end the wait this soon.
            while listener.running.load(Ordering::Relaxed) {
                assert!(started.elapsed() < IDLE_WAKE / 2, "{bind}: still running");
                std::thread::yield_now();
            }
            assert_eq!(received(), 1, "{bind}: the wake-up is not a datagram received");
        }
    }

    #[test]
    fn datagrams_the_kernel_drops_for_want_of_buffer_are_counted() {
        let metrics = Arc::new(AppMetrics::new(Limits::default(), LatencyThresholds::default(), 0));
        // A small buffer (the kernel doubles it and has a floor of a few KiB), filled while the
        // receive thread waits for the statistics' lock.
        let listener =
            spawn_with_buffer("127.0.0.1:0".parse().unwrap(), Arc::clone(&metrics), 4096).unwrap();
        let to = SocketAddr::from(([127, 0, 0, 1], listener.local_addr.port()));
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let line = format!("api.fill:1|ms|#pad:{}", "x".repeat(900));
        let mut sent = 0u64;
        {
            let _held = metrics.lock();
            for _ in 0..2_000 {
                sender.send_to(line.as_bytes(), to).unwrap();
                sent += 1;
            }
        }
        // Drops are told with the datagrams queued after them, so one more must arrive after
        // the buffer drained (one sent too early is dropped and counted too): another every
        // 20 ms until every datagram sent is either read or counted as dropped by the kernel.
        let started = std::time::Instant::now();
        let mut probed = started;
        loop {
            let stats = metrics.ingest_stats().statsd;
            if stats.received + stats.dropped_by_kernel == sent && stats.dropped_by_kernel > 0 {
                assert_eq!(stats.accepted, stats.received, "every datagram read counts");
                break;
            }
            assert!(started.elapsed() < IDLE_WAKE, "never accounted: {stats:?} of {sent}");
            if sent == 2_000 || probed.elapsed() >= Duration::from_millis(20) {
                sender.send_to(line.as_bytes(), to).unwrap();
                sent += 1;
                probed = std::time::Instant::now();
            }
            std::thread::yield_now();
        }
        listener.stop();
    }

    #[test]
    fn dogstatsd_tags_are_dimensions_and_steering_tags_are_not() {
        use crate::server::metrics::{tags::Selection, TimingKind};
        let metrics = AppMetrics::new(Limits::default(), LatencyThresholds::default(), 0);
        apply_datagram(
            &metrics,
            b"api.get:10|ms|#region:eu,success:false\napi.get:20|ms|#region:us\n\
              api.get:30|ms|#region:us\nevent.mail:5|ms|#region:eu",
            NOW,
        );
        let by = Selection::parse([], Some("region")).unwrap();
        let mut rows = metrics.summaries_selected(TimingKind::Operation, Window::M1, NOW, &by);
        rows.sort_by_key(|r| r.count);
        let seen: Vec<(u64, u64, &str)> = rows
            .iter()
            .map(|r| (r.count, r.error_count, r.tags.get("region").map_or("", String::as_str)))
            .collect();
        assert_eq!(seen, vec![(1, 1, "eu"), (2, 0, "us")], "success:false is not a dimension");
        let events = metrics.summaries_selected(TimingKind::Event, Window::M1, NOW, &by);
        assert_eq!((events[0].name.as_str(), events[0].count), ("mail", 1));
    }

    #[test]
    fn datagrams_feed_operations_events_gauges_and_keep_bad_lines() {
        let metrics = AppMetrics::new(Limits::default(), LatencyThresholds::default(), 0);
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
        let (actions, events) = live_figures(&metrics.lock(), NOW);
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
