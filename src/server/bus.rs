//! The tick bus: the publisher hands each tick, as typed data, to every subscriber. The live hub
//! is one subscriber; the history store, the alert engine and the report cache subscribe the
//! same way. A subscriber that falls more than [`CAPACITY`] ticks behind skips to the newest
//! (the skip is counted), so a slow subscriber never holds the publisher back. Ticks are shared
//! (`Arc`), never copied per subscriber.
//!
//! The bus is the seam for running past one process: a subscriber that forwards ticks to Redis
//! pub/sub, and a publisher fed from there, fit without changing either side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use super::collector::processes::ProcessSnapshot;
use crate::model::live::Sample;
use crate::model::ops::OperationSummary;

/// Ticks a subscriber may fall behind before it skips.
pub const CAPACITY: usize = 16;

/// One tick: the sample and, every few ticks, the operation statistics of the live views and
/// the top processes.
#[derive(Debug)]
pub struct Tick {
    pub sample: Sample,
    /// Per-operation statistics (busiest first, bounded); `None` on ticks that carry none.
    pub operations: Option<Vec<OperationSummary>>,
    /// The top processes, on the ticks of a process scan (every 10 s).
    pub processes: Option<ProcessSnapshot>,
}

/// The bus; cheap to clone.
#[derive(Clone)]
pub struct TickBus {
    tx: broadcast::Sender<Arc<Tick>>,
    published: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
}

impl Default for TickBus {
    fn default() -> Self {
        TickBus {
            tx: broadcast::channel(CAPACITY).0,
            published: Arc::default(),
            skipped: Arc::default(),
        }
    }
}

impl TickBus {
    /// Hands `tick` to every current subscriber; returns how many there are.
    pub fn publish(&self, tick: Tick) -> usize {
        self.published.fetch_add(1, Ordering::Relaxed);
        self.tx.send(Arc::new(tick)).unwrap_or(0)
    }

    /// A new subscriber: it receives every tick published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription { rx: self.tx.subscribe(), skipped: Arc::clone(&self.skipped) }
    }

    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Ticks skipped by subscribers that fell behind, over all subscribers.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

/// One subscriber's end of the bus.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Tick>>,
    skipped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next tick; `None` once the bus is gone. Skips (and counts) ticks missed by falling
    /// behind.
    pub async fn next(&mut self) -> Option<Arc<Tick>> {
        loop {
            match self.rx.recv().await {
                Ok(tick) => return Some(tick),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.skipped.fetch_add(n, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(seq: u64) -> Tick {
        Tick { sample: Sample { seq, ..Default::default() }, operations: None, processes: None }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_tick_in_order() {
        let bus = TickBus::default();
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        assert_eq!(bus.publish(tick(1)), 2);
        bus.publish(tick(2));
        for sub in [&mut a, &mut b] {
            assert_eq!(sub.next().await.unwrap().sample.seq, 1);
            assert_eq!(sub.next().await.unwrap().sample.seq, 2);
        }
        assert_eq!(bus.published(), 2);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_skips_to_the_newest_and_it_is_counted() {
        let bus = TickBus::default();
        let mut slow = bus.subscribe();
        let total = CAPACITY as u64 + 5;
        for seq in 1..=total {
            bus.publish(tick(seq));
        }
        let first = slow.next().await.unwrap().sample.seq;
        assert_eq!(first, total - CAPACITY as u64 + 1);
        assert_eq!(bus.skipped(), 5);
    }
}
