//! The tick fan-out: writes each published tick, framed once, to every live client's socket
//! ([`Outlet`]) from a few threads of its own, one share of the clients each.
//!
//! The clients are walked from a different place every tick, so no client is always the last
//! to hear. A fan-out that falls behind skips to the newest tick; a client whose socket is still
//! busy with earlier bytes skips the tick, and its own task sends it the newest one when its
//! socket has taken them ([`Outlet::offer_tick`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::outlet::{Offered, Outlet};
use super::Hub;

/// Most threads the fan-out uses (at most one per core).
const MAX_THREADS: usize = 4;

/// One tick as the fan-out writes it.
pub struct Round {
    pub seq: u64,
    pub published: Instant,
    /// The update's frame, and its payload's length (what the counters count).
    pub frame: (Bytes, usize),
    /// The update with operation statistics, on ticks that carry them.
    pub with_operations: Option<(Bytes, usize)>,
    /// Largest time from publication to a completed write, over all clients.
    pub last_send_ns: Arc<AtomicU64>,
}

impl Round {
    /// The frame for a client (and its payload's length).
    pub fn frame_for(&self, outlet: &Outlet) -> &(Bytes, usize) {
        match &self.with_operations {
            Some(with) if outlet.wants_operations() => with,
            _ => &self.frame,
        }
    }
}

/// What reached the clients a round was offered to.
#[derive(Default)]
pub struct Delivered {
    messages: u64,
    bytes: u64,
    skipped: u64,
}

impl Delivered {
    /// Offers `round` to `outlet`, noting what reached it.
    pub fn offer(&mut self, round: &Round, outlet: &Outlet) {
        let (frame, len) = round.frame_for(outlet);
        if let Offered::Sent { skipped } = outlet.offer_tick(round.seq, frame) {
            self.messages += 1;
            self.bytes += *len as u64;
            self.skipped += skipped;
        }
    }

    /// Adds these to the hub's counters (once per share: the counters are shared by all).
    pub fn count(self, hub: &Hub) {
        let c = &hub.counters;
        c.messages_sent.fetch_add(self.messages, Ordering::Relaxed);
        c.bytes_sent.fetch_add(self.bytes, Ordering::Relaxed);
        if self.skipped > 0 {
            c.skipped_updates.fetch_add(self.skipped, Ordering::Relaxed);
        }
    }
}

/// The clients a round goes to, as they were when it was published.
type Clients = Arc<[Arc<Outlet>]>;

/// The newest round and the clients it goes to.
#[derive(Default)]
struct Next {
    generation: u64,
    round: Option<(Arc<Round>, Clients)>,
}

/// The clients' sockets and the threads that write ticks to them.
#[derive(Default)]
pub struct Fanout {
    outlets: Mutex<Vec<Arc<Outlet>>>,
    next: Mutex<Next>,
    wake: Condvar,
}

impl Fanout {
    /// Starts the fan-out's threads for `hub`; they end within a second of the hub's end.
    pub fn start(hub: &Arc<Hub>) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        for share in 0..threads {
            let hub = Arc::downgrade(hub);
            let spawned = std::thread::Builder::new()
                .name(format!("vitals-fanout-{share}"))
                .spawn(move || write_rounds(&hub, share, threads));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "Cannot start a thread of the live fan-out.");
            }
        }
    }

    /// Adds a client whose snapshot has been sent: it gets every tick from now on.
    pub fn register(&self, outlet: Arc<Outlet>) {
        if let Ok(mut outlets) = self.outlets.lock() {
            outlets.push(outlet);
        }
    }

    /// Hands `round` to the threads, for every client still connected.
    pub fn publish(&self, round: Arc<Round>) {
        let outlets: Clients = match self.outlets.lock() {
            Ok(mut outlets) => {
                outlets.retain(|o| !o.is_closed());
                outlets.as_slice().into()
            }
            Err(_) => return,
        };
        if let Ok(mut next) = self.next.lock() {
            next.generation += 1;
            next.round = Some((round, outlets));
        }
        self.wake.notify_all();
    }
}

/// One thread's loop: its share of every newest round, until the hub is gone.
fn write_rounds(hub: &Weak<Hub>, share: usize, shares: usize) {
    let mut seen = 0;
    loop {
        let Some(strong) = hub.upgrade() else { return };
        let fanout = &strong.fanout;
        let round = {
            let Ok(next) = fanout.next.lock() else { return };
            let Ok((next, _)) = fanout
                .wake
                .wait_timeout_while(next, Duration::from_secs(1), |n| n.generation == seen)
            else {
                return;
            };
            if next.generation == seen {
                None
            } else {
                seen = next.generation;
                next.round.clone()
            }
        };
        let Some((round, outlets)) = round else { continue };
        write_share(&strong, &round, &outlets, share, shares);
    }
}

/// Writes `round` to this thread's share of `outlets`, starting from a place that moves every
/// tick.
fn write_share(hub: &Hub, round: &Round, outlets: &[Arc<Outlet>], share: usize, shares: usize) {
    let n = outlets.len();
    if n == 0 {
        return;
    }
    let start = (round.seq as usize).wrapping_mul(7919) % n;
    let (from, to) = (share * n / shares, (share + 1) * n / shares);
    let mut delivered = Delivered::default();
    for position in from..to {
        delivered.offer(round, &outlets[(start + position) % n]);
    }
    delivered.count(hub);
    let ns = u64::try_from(round.published.elapsed().as_nanos()).unwrap_or(u64::MAX);
    round.last_send_ns.fetch_max(ns, Ordering::Relaxed);
}
