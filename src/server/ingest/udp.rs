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
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(IDLE_WAKE))?;
    let local_addr = socket.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(true));
    let (stop_flag, running_flag) = (Arc::clone(&stop), Arc::clone(&running));
    std::thread::Builder::new().name("vitals-statsd".into()).spawn(move || {
        let mut receiver = Receiver::new();
        let mut kernel_drops = KernelDrops::new(&socket, addr.is_ipv6());
        while !stop_flag.load(Ordering::Relaxed) {
            match receiver.receive(&socket) {
                Ok(()) if stop_flag.load(Ordering::Relaxed) => break,
                Ok(()) => {
                    let dropped = kernel_drops.poll();
                    let now_ms = crate::server::now_ms();
                    let mut inner = metrics.lock();
                    for datagram in receiver.datagrams() {
                        apply_to(&mut inner, datagram, now_ms);
                    }
                    if let Some(dropped) = dropped {
                        inner.note_kernel_drops(dropped);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    if let Some(dropped) = kernel_drops.poll() {
                        metrics.lock().note_kernel_drops(dropped);
                    }
                }
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

/// How often the receive thread reads the kernel's drop count (and at most this long after
/// traffic stops, with [`IDLE_WAKE`], it may take to show).
const DROPS_EVERY: Duration = Duration::from_secs(1);

/// The kernel's count of datagrams it dropped on the StatsD socket for want of buffer room:
/// the `drops` of the socket's line (found by its inode) in `/proc/net/udp` (or `udp6`), read
/// by the receive thread at most once per [`DROPS_EVERY`], so it costs nothing per datagram.
/// (`SO_RXQ_OVFL` tells the same count with every datagram, at about 3 % of the thread.)
/// Elsewhere than Linux there is no such file and nothing is counted.
struct KernelDrops {
    inode: Option<u64>,
    table: &'static str,
    read_at: Option<std::time::Instant>,
}

impl KernelDrops {
    fn new(socket: &UdpSocket, ipv6: bool) -> Self {
        let table = if ipv6 { "/proc/net/udp6" } else { "/proc/net/udp" };
        KernelDrops { inode: socket_inode(socket), table, read_at: None }
    }

    /// The count so far, when [`DROPS_EVERY`] has passed since the last read.
    fn poll(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        if self.read_at.is_some_and(|at| now.duration_since(at) < DROPS_EVERY) {
            return None;
        }
        self.read_at = Some(now);
        drops_of(&std::fs::read_to_string(self.table).ok()?, self.inode?)
    }
}

/// The `drops` column of the socket `inode` in a `/proc/net/udp` table.
fn drops_of(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let this = fields.nth(9)?.parse::<u64>().ok()?;
        (this == inode).then(|| fields.last()?.parse().ok())?
    })
}

/// The inode of a socket (`socket:[N]` of its descriptor's link in `/proc/self/fd`).
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
        link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    }
    #[cfg(not(unix))]
    {
        let _ = socket;
        None
    }
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
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Blocks (up to the socket's read timeout) for at least one datagram, then takes whatever
    /// else is already queued, up to [`BATCH`] (read them with `datagrams`).
    #[cfg(target_os = "linux")]
    fn receive(&mut self, socket: &UdpSocket) -> std::io::Result<()> {
        use nix::sys::socket::{recvmmsg, MsgFlags};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;
        self.lengths.clear();
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
            self.lengths.extend(received.map(|m| m.bytes));
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn receive(&mut self, socket: &UdpSocket) -> std::io::Result<()> {
        self.lengths.clear();
        let len = socket.recv(&mut self.buffer[..MAX_DATAGRAM])?;
        self.lengths.push(len);
        Ok(())
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
    fn the_drop_count_is_read_from_the_sockets_own_line() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            \x20 12: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 45678 2 0000000000000000 17\n\
            \x20 13: 0100007F:1F91 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 45679 2 0000000000000000 0\n";
        assert_eq!(drops_of(table, 45678), Some(17));
        assert_eq!(drops_of(table, 45679), Some(0));
        assert_eq!(drops_of(table, 1), None);
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
        // The count is read at most once a second, by the receive thread when a datagram wakes
        // it: one more every 20 ms until every datagram sent is either read or counted as
        // dropped by the kernel (a datagram sent while the buffer is still full is dropped and
        // counted too).
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
