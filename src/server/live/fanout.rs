//! The tick fan-out: writes each published tick, framed once, to every live client's socket
//! ([`Outlet`]) from a few threads of its own, one share of the clients each.
//!
//! The clients are walked from a different place every tick, so no client is always the last
//! to hear. A fan-out that falls behind skips to the newest tick; a client whose socket is still
//! busy with earlier bytes, or is being sent a snapshot, skips the tick, and its own task sends
//! it the newest one afterwards ([`Outlet::offer_tick`]). The fan-out holds its clients weakly:
//! a client's socket closes when its task ends, whatever round is in flight.
//!
//! The alerts' counts, published when the alerts change, go out the same way to every client
//! that did not subscribe to the alerts list ([`Fanout::publish_alerts`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::alerts::AlertMessages;
use super::outlet::{text_frame, Offered, Outlet};
use super::Hub;

/// Most threads the fan-out uses (at most one per core).
const MAX_THREADS: usize = 4;

/// An update as it is sent: its text, serialised once, and that text framed once for every
/// socket.
pub struct Framed {
    pub text: Utf8Bytes,
    pub frame: Bytes,
}

impl Framed {
    fn new(text: Utf8Bytes) -> Self {
        Framed { frame: text_frame(&text), text }
    }
}

/// One published tick as every client gets it (the newest is kept for clients that connect or
/// catch up).
pub struct Round {
    pub seq: u64,
    pub published: Instant,
    /// The update without operation statistics (what most clients get).
    pub update: Framed,
    /// The same update with operation statistics, on ticks that carry them, for clients that
    /// subscribed to them.
    pub with_operations: Option<Framed>,
    /// Largest time from publication to a write the socket took whole, over all clients.
    pub last_send_ns: AtomicU64,
    /// Clients whose socket has not taken the whole tick yet (it waits behind what they have
    /// not read).
    pub queued: AtomicU64,
}

impl Round {
    /// The update for a client.
    fn update_for(&self, outlet: &Outlet) -> &Framed {
        match &self.with_operations {
            Some(with) if outlet.wants_operations() => with,
            _ => &self.update,
        }
    }

    pub fn new(seq: u64, update: Utf8Bytes, with_operations: Option<Utf8Bytes>) -> Self {
        Round {
            seq,
            published: Instant::now(),
            update: Framed::new(update),
            with_operations: with_operations.map(Framed::new),
            last_send_ns: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        }
    }

    fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.published.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Notes that a client has been sent this tick whole, now.
    pub fn note_sent(&self) {
        self.last_send_ns.fetch_max(self.elapsed_ns(), Ordering::Relaxed);
    }

    /// Notes that a client's socket has finished taking this tick, which had waited.
    pub fn note_drained(&self) {
        self.note_sent();
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Time from publication until the last client's socket took the tick whole: until now
    /// for a tick some socket has still not taken (0: nobody was sent it).
    pub fn latency_ns(&self) -> u64 {
        let sent = self.last_send_ns.load(Ordering::Relaxed);
        if self.queued.load(Ordering::Relaxed) > 0 {
            sent.max(self.elapsed_ns())
        } else {
            sent
        }
    }
}

/// What reached the clients a round was offered to.
#[derive(Default)]
struct Delivered {
    messages: u64,
    bytes: u64,
    skipped: u64,
    /// Some client's socket took the tick whole.
    whole: bool,
}

impl Delivered {
    /// Offers `item` to `outlet`, noting what reached it.
    fn offer(&mut self, item: &Item, outlet: &Outlet) {
        match item {
            Item::Tick(round) => {
                let update = round.update_for(outlet);
                if let Offered::Sent { skipped, queued } = outlet.offer_tick(round, &update.frame) {
                    self.messages += 1;
                    self.bytes += update.text.len() as u64;
                    self.skipped += skipped;
                    self.whole |= !queued;
                }
            }
            Item::Alerts(messages) => {
                if let Offered::Sent { .. } = outlet.offer_alerts(messages) {
                    self.messages += 1;
                    self.bytes += messages.counts.len() as u64;
                }
            }
        }
    }

    /// Adds these to the hub's counters (once per share: the counters are shared by all) and,
    /// for a tick, the time of the last whole write to its round's.
    fn count(self, hub: &Hub, item: &Item) {
        let c = &hub.counters;
        c.messages_sent.fetch_add(self.messages, Ordering::Relaxed);
        c.bytes_sent.fetch_add(self.bytes, Ordering::Relaxed);
        if self.skipped > 0 {
            c.skipped_updates.fetch_add(self.skipped, Ordering::Relaxed);
        }
        if let (Item::Tick(round), true) = (item, self.whole) {
            round.note_sent();
        }
    }
}

/// The clients a round goes to, as they were when it was published.
type Clients = Arc<[Weak<Outlet>]>;

/// What the fan-out writes to every client: a tick, or the alerts' counts.
#[derive(Clone)]
pub enum Item {
    Tick(Arc<Round>),
    Alerts(Arc<AlertMessages>),
}

impl Item {
    /// Its place in [`Next`]: the newest of each kind is written, an older one skipped.
    fn slot(&self) -> usize {
        match self {
            Item::Tick(_) => 0,
            Item::Alerts(_) => 1,
        }
    }

    /// Its number (a tick's, or the alerts publication's).
    fn seq(&self) -> u64 {
        match self {
            Item::Tick(round) => round.seq,
            Item::Alerts(messages) => messages.seq,
        }
    }

    /// Writes it to this thread's share of `clients`, starting from a place that moves with
    /// each item.
    fn write(&self, hub: &Hub, clients: &[Weak<Outlet>], share: usize, shares: usize) {
        let mut delivered = Delivered::default();
        for outlet in this_share(clients, self.seq(), share, shares) {
            delivered.offer(self, &outlet);
        }
        delivered.count(hub, self);
    }

    /// Offers it to one client that may have missed it (its snapshot was being sent, or its
    /// socket was busy, when the fan-out passed).
    pub fn catch_up(&self, hub: &Hub, outlet: &Outlet) {
        let mut delivered = Delivered::default();
        delivered.offer(self, outlet);
        delivered.count(hub, self);
    }
}

/// The newest item of each kind ([`Item::slot`]), with the clients it goes to and a number
/// that grows with each.
#[derive(Default)]
struct Next {
    generations: [u64; 2],
    items: [Option<(Item, Clients)>; 2],
    /// The hub is gone: the threads end.
    stopped: bool,
}

/// The clients, and the list last handed to the threads.
#[derive(Default)]
struct Listed {
    outlets: Vec<Weak<Outlet>>,
    /// The list as the last tick handed it out, while no client was added since: the alerts'
    /// counts take it as it is (a client that left since is passed over), instead of copying
    /// thousands of entries in the evaluation that published them.
    handed: Option<Clients>,
}

/// What the threads share with the hub (each holds it until it ends).
#[derive(Default)]
pub(super) struct Shared {
    listed: Mutex<Listed>,
    next: Mutex<Next>,
    wake: Condvar,
    /// How many threads started (each writes one share of every round).
    shares: AtomicUsize,
}

/// The clients' sockets and the threads that write ticks to them.
#[derive(Default)]
pub struct Fanout {
    shared: Arc<Shared>,
}

impl Fanout {
    /// Starts the fan-out's threads for `hub`; they end when the hub is dropped.
    pub fn start(hub: &Arc<Hub>) {
        let wanted = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
        let shared = &hub.fanout.shared;
        let mut started = 0;
        for _ in 0..wanted {
            let (shared, hub, share) = (Arc::clone(shared), Arc::downgrade(hub), started);
            let spawned = std::thread::Builder::new()
                .name(format!("vitals-fanout-{share}"))
                .spawn(move || write_rounds(&shared, &hub, share));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "Cannot start a thread of the live fan-out."),
            }
        }
        shared.shares.store(started, Ordering::Release);
    }

    /// Adds a client: it is offered every tick from now on (taken once it has its snapshot).
    /// Clients that left are dropped from the list at every tick, and here before it would
    /// grow: clients connecting and leaving between two ticks (up to an hour apart) never make
    /// it longer than twice the clients connected.
    pub fn register(&self, outlet: &Arc<Outlet>) {
        if let Ok(mut listed) = self.shared.listed.lock() {
            let outlets = &mut listed.outlets;
            if outlets.len() == outlets.capacity() {
                outlets.retain(connected);
            }
            outlets.push(Arc::downgrade(outlet));
            listed.handed = None;
        }
    }

    /// Has `round` written to every client still connected: by the threads, or here if none
    /// could be started.
    pub fn publish(&self, hub: &Hub, round: Arc<Round>) {
        self.hand_out(hub, Item::Tick(round));
    }

    /// Has the alerts' counts of `messages` written to every client still connected that did
    /// not subscribe to the list: by the threads, or here if none could be started.
    pub fn publish_alerts(&self, hub: &Hub, messages: Arc<AlertMessages>) {
        self.hand_out(hub, Item::Alerts(messages));
    }

    /// Hands `item` to the threads with the clients it goes to (a tick prunes the list; the
    /// alerts' counts take the list as the last tick left it, unless a client was added).
    fn hand_out(&self, hub: &Hub, item: Item) {
        let Some(clients) = self.clients(matches!(item, Item::Alerts(_))) else { return };
        if self.shared.shares.load(Ordering::Acquire) == 0 {
            item.write(hub, &clients, 0, 1);
            return;
        }
        if let Ok(mut next) = self.shared.next.lock() {
            let slot = item.slot();
            next.generations[slot] += 1;
            next.items[slot] = Some((item, clients));
        }
        self.shared.wake.notify_all();
    }

    /// The clients still connected, dropping the others from the list; or, `if_handed`, the
    /// list last handed out when no client was added since.
    fn clients(&self, if_handed: bool) -> Option<Clients> {
        let mut listed = self.shared.listed.lock().ok()?;
        if let Some(handed) = listed.handed.as_ref().filter(|_| if_handed) {
            return Some(Arc::clone(handed));
        }
        listed.outlets.retain(connected);
        let clients: Clients = listed.outlets.as_slice().into();
        listed.handed = Some(Arc::clone(&clients));
        Some(clients)
    }

    /// How many clients are listed (some may have left since the last tick).
    #[cfg(test)]
    pub(super) fn listed(&self) -> usize {
        self.shared.listed.lock().map_or(0, |l| l.outlets.len())
    }

    /// The state the threads hold: gone once they all ended.
    #[cfg(test)]
    pub(super) fn threads(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    /// Ends the threads (the hub is being dropped).
    pub(super) fn stop(&self) {
        if let Ok(mut next) = self.shared.next.lock() {
            next.stopped = true;
            next.items = Default::default();
        }
        self.shared.wake.notify_all();
    }
}

/// Whether a listed client is still connected.
fn connected(outlet: &Weak<Outlet>) -> bool {
    outlet.upgrade().is_some_and(|o| !o.is_closed())
}

/// One thread's loop: its share of every newest round and alerts' counts, until the hub is
/// gone. It holds the hub only while writing.
fn write_rounds(shared: &Shared, hub: &Weak<Hub>, share: usize) {
    let mut seen = [0; 2];
    loop {
        let items = {
            let Ok(next) = shared.next.lock() else { return };
            let waited = shared.wake.wait_while(next, |n| n.generations == seen && !n.stopped);
            let Ok(next) = waited else { return };
            if next.stopped {
                return;
            }
            let fresh = |slot: usize| {
                next.items[slot].clone().filter(|_| next.generations[slot] != seen[slot])
            };
            let items = [fresh(0), fresh(1)];
            seen = next.generations;
            items
        };
        let Some(hub) = hub.upgrade() else { return };
        let shares = shared.shares.load(Ordering::Acquire).max(1);
        for (item, clients) in items.into_iter().flatten() {
            item.write(&hub, &clients, share, shares);
        }
    }
}

/// The clients still connected of one share of `clients`, from a place that moves with `seq`.
fn this_share(
    clients: &[Weak<Outlet>],
    seq: u64,
    share: usize,
    shares: usize,
) -> impl Iterator<Item = Arc<Outlet>> + '_ {
    let n = clients.len();
    let start = if n == 0 { 0 } else { (seq as usize).wrapping_mul(7919) % n };
    let (from, to) = (share * n / shares, (share + 1) * n / shares);
    (from..to).filter_map(move |position| clients[(start + position) % n].upgrade())
}
