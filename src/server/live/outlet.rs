//! A live client's socket, written from two places: the tick fan-out ([`super::fanout`]), which
//! writes each tick's frame, framed once for all clients, straight to every socket that has room,
//! and the client's own task, which reads its commands and writes everything else (snapshots,
//! alert messages, answers, heartbeats) through tungstenite ([`OutletIo`]).
//!
//! With ten thousand clients, waking ten thousand tasks every tick to send the same bytes cost
//! about a quarter of the server's CPU: each task's state (2 KiB, scattered over the heap) was
//! read back into the cache, each send framed the same bytes again, and each completed send woke
//! the runtime's workers in turn (BENCHMARKS.md, "Fan-out"). The fan-out walks a compact list of
//! sockets instead and makes one `send` system call per client.
//!
//! Both writers go through [`Outlet::write`] under one lock, and a whole frame goes in at once
//! (or what the socket did not take waits in [`Out::pending`], sent before anything else), so
//! frames never interleave. A tick meets a socket with bytes still pending only when the client
//! reads slower than it is sent to: the tick is skipped, and the newest one follows as soon as
//! the pending bytes are gone (a slow client skips to the newest instead of queueing a backlog).
//!
//! The alerts' counts go the same way to the clients that did not subscribe to the alerts list
//! ([`Outlet::offer_alerts`]); which publication the client has, and in which form, is kept here
//! for both writers.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::alerts::{AlertMessages, Sent};
use super::fanout::Round;
use super::Parts;

/// The write side of one client's socket, shared by the fan-out and the client's task.
pub struct Outlet {
    stream: TcpStream,
    out: Mutex<Out>,
    /// Told when bytes start waiting in `pending`: the client's task then waits until the socket
    /// takes them (under its send timeout), and sends the newest tick if it missed any.
    pub(super) backlog: Notify,
    /// The client wants the updates that carry operation statistics.
    wants_operations: AtomicBool,
    /// The client's task has ended: the fan-out drops it.
    closed: AtomicBool,
    /// Most bytes that may wait for the socket; a client past it has stopped reading.
    max_pending: usize,
}

/// What is written under the lock.
#[derive(Default)]
struct Out {
    /// Bytes the socket did not take yet, sent before any other.
    pending: BytesMut,
    /// Ticks are offered only once the client has its snapshot, and not while one is being
    /// sent or after the connection began to close ([`Outlet::start_after`], [`Outlet::pause`]).
    started: bool,
    /// The tick whose frame is (partly) in `pending`, if any: told when the socket took it.
    pending_tick: Option<Arc<Round>>,
    /// The newest tick the client has (written, or in its snapshot), if any.
    last_tick: Option<u64>,
    /// A write failed: the socket is dead, nothing more is written.
    failed: bool,
    /// The alerts publication the client has, and whether as the list.
    alerts_sent: Sent,
    /// The client subscribed to the alerts list: its task sends it the alerts, not the fan-out.
    alert_list: bool,
}

/// What became of a tick offered to a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered {
    /// Written, or `queued` (in part) until the socket takes it; `skipped` ticks between the
    /// client's previous one and this one never reached it.
    Sent { skipped: u64, queued: bool },
    /// The client already has this tick or a newer one, or is not taking ticks now (its
    /// snapshot is being sent, or it is closing).
    Stale,
    /// Bytes are still waiting for the socket: the tick is skipped.
    Busy,
    /// The socket failed or the client stopped reading; its task closes it.
    Failed,
}

impl Outlet {
    pub fn new(stream: TcpStream, max_pending: usize) -> Arc<Self> {
        Arc::new(Outlet {
            stream,
            out: Mutex::new(Out::default()),
            backlog: Notify::new(),
            wants_operations: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            max_pending,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        // A panic under this lock leaves nothing half-done that matters: keep going.
        self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn wants_operations(&self) -> bool {
        self.wants_operations.load(Ordering::Relaxed)
    }

    pub fn set_wants_operations(&self, wants: bool) {
        self.wants_operations.store(wants, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Ends the connection now (a fan-out thread writing to it at the time holds the socket
    /// until it has).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Both);
    }

    /// Holds ticks off: while a snapshot is sent in parts (a tick between two parts would be
    /// dropped by the page, which keeps only the samples up to each part's `after_seq`), or
    /// once a Close frame is on its way (nothing may follow it).
    pub fn pause(&self) {
        self.lock().started = false;
    }

    /// Takes ticks after `seq` (the newest the snapshot just sent holds, if any).
    pub fn start_after(&self, seq: Option<u64>) {
        let mut out = self.lock();
        out.started = true;
        out.last_tick = out.last_tick.max(seq);
    }

    /// Offers the tick of `round`, whose whole frame (for this client) is `frame`.
    pub fn offer_tick(&self, round: &Arc<Round>, frame: &[u8]) -> Offered {
        let seq = round.seq;
        let mut out = self.lock();
        if out.failed {
            return Offered::Failed;
        }
        if !out.started || out.last_tick.is_some_and(|last| seq <= last) {
            return Offered::Stale;
        }
        if !out.pending.is_empty() {
            return Offered::Busy;
        }
        let skipped = out.last_tick.map_or(0, |last| seq - last - 1);
        match self.write(&mut out, frame) {
            Ok(()) => {
                out.last_tick = Some(seq);
                let queued = !out.pending.is_empty();
                if queued {
                    round.queued.fetch_add(1, Ordering::Relaxed);
                    out.pending_tick = Some(Arc::clone(round));
                }
                Offered::Sent { skipped, queued }
            }
            Err(_) => Offered::Failed,
        }
    }

    /// Offers the alerts' counts of `messages` to a client that did not subscribe to the list:
    /// written unless it has this publication already, is not taking messages now, or has
    /// bytes waiting (its task then catches up, see [`Outlet::alerts_owed`]).
    pub fn offer_alerts(&self, messages: &AlertMessages) -> Offered {
        let mut out = self.lock();
        if out.failed {
            return Offered::Failed;
        }
        if !out.started || out.alert_list {
            return Offered::Stale;
        }
        if !out.pending.is_empty() {
            return Offered::Busy;
        }
        if messages.owed(false, &mut out.alerts_sent).is_none() {
            return Offered::Stale;
        }
        match self.write(&mut out, &messages.counts_frame) {
            Ok(()) => Offered::Sent { skipped: 0, queued: !out.pending.is_empty() },
            Err(_) => Offered::Failed,
        }
    }

    /// What of `messages` the client's task is to send it now (the list to a subscriber, the
    /// counts to another), noted as sent; nothing when it has that publication in that form.
    pub fn alerts_owed(&self, messages: &AlertMessages) -> Option<Parts> {
        let mut out = self.lock();
        let wants_list = out.alert_list;
        messages.for_client(wants_list, &mut out.alerts_sent)
    }

    /// Whether the client gets the alerts list (from its task) or only the counts (from the
    /// fan-out).
    pub fn set_alert_list(&self, wanted: bool) {
        self.lock().alert_list = wanted;
    }

    /// Writes one whole frame (or several), after anything still pending; what the socket does
    /// not take now waits in `pending` and the client's task is told.
    fn write(&self, out: &mut Out, bytes: &[u8]) -> io::Result<()> {
        let taken = if out.pending.is_empty() {
            match self.stream.try_write(bytes) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => {
                    out.failed = true;
                    self.backlog.notify_one();
                    return Err(e);
                }
            }
        } else {
            0
        };
        if taken < bytes.len() {
            if out.pending.len() + bytes.len() - taken > self.max_pending {
                out.failed = true;
                self.backlog.notify_one();
                return Err(io::Error::other("the client stopped reading"));
            }
            let was_empty = out.pending.is_empty();
            out.pending.extend_from_slice(&bytes[taken..]);
            if was_empty {
                self.backlog.notify_one();
            }
        }
        Ok(())
    }

    /// Sends what is pending as the socket takes it; ready when nothing is left.
    pub(super) fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let mut out = self.lock();
                if out.failed {
                    return Poll::Ready(Err(io::Error::other("the socket failed")));
                }
                if out.pending.is_empty() {
                    // Its memory goes back: only a client that fell behind ever needs any.
                    out.pending = BytesMut::new();
                    if let Some(round) = out.pending_tick.take() {
                        round.note_drained();
                    }
                    return Poll::Ready(Ok(()));
                }
                match self.stream.try_write(&out.pending) {
                    Ok(n) => {
                        let _ = out.pending.split_to(n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        out.failed = true;
                        return Poll::Ready(Err(e));
                    }
                }
            }
            ready!(self.stream.poll_write_ready(cx))?;
        }
    }
}

/// The client task's view of its socket, for tungstenite: reads from the socket (after any
/// bytes read with the HTTP upgrade), writes through the [`Outlet`].
pub struct OutletIo {
    outlet: Arc<Outlet>,
    /// Bytes that arrived with the upgrade request, read before the socket.
    early: Bytes,
}

impl OutletIo {
    pub fn new(outlet: Arc<Outlet>, early: Bytes) -> Self {
        // Copied: the bytes are a slice of the HTTP connection's read buffer (8 KiB or more),
        // which they would otherwise keep for as long as the client stays.
        OutletIo { outlet, early: Bytes::copy_from_slice(&early) }
    }
}

impl AsyncRead for OutletIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.early.is_empty() {
            let n = self.early.len().min(buf.remaining());
            buf.put_slice(&self.early.split_to(n));
            if self.early.is_empty() {
                self.early = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        let stream = &self.outlet.stream;
        loop {
            ready!(stream.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match stream.try_read(unfilled) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for OutletIo {
    /// Takes every byte (what the socket does not take at once waits in the outlet, within its
    /// bound), or fails for good; never `Pending`, never a short count. tungstenite (with a
    /// write buffer of 0) hands over one whole frame per call, so with this a tick can never be
    /// written inside one of its frames.
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let outlet = &self.outlet;
        let mut out = outlet.lock();
        if out.failed {
            return Poll::Ready(Err(io::Error::other("the socket failed")));
        }
        Poll::Ready(outlet.write(&mut out, buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outlet.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.outlet.poll_drain(cx))?;
        let fd = socket2::SockRef::from(&self.outlet.stream);
        Poll::Ready(fd.shutdown(std::net::Shutdown::Write))
    }
}

/// A server's text frame holding `payload` (unmasked, final), made once and written to every
/// client as it is.
pub fn text_frame(payload: &Utf8Bytes) -> Bytes {
    let frame = Frame::message(Bytes::from(payload.clone()), OpCode::Data(Data::Text), true);
    let mut bytes = Vec::with_capacity(frame.len());
    // Writing into a Vec cannot fail.
    let _ = frame.format(&mut bytes);
    Bytes::from(bytes)
}
