//! Which alerts a listing shows, worst first: the first `limit` of thousands held, found in one
//! pass that keeps only those `limit` (the live message lists 50 while an alert storm holds
//! thousands, and it is made again on every tick that changes one).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::model::alerts::{AlertState, Severity};

/// Where an alert sits in a listing: firing critical first, then firing warning, recovering,
/// pending, resolved; among equals the latest change first, then by id (a stable order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    rank: Reverse<u8>,
    since_ms: Reverse<u64>,
    id: u64,
}

impl Place {
    pub fn new(state: AlertState, severity: Option<Severity>, since_ms: u64, id: u64) -> Self {
        Place { rank: Reverse(rank(state, severity)), since_ms: Reverse(since_ms), id }
    }
}

/// Sort rank: firing critical first, then firing warning, recovering, pending, resolved.
fn rank(state: AlertState, severity: Option<Severity>) -> u8 {
    let critical = u8::from(severity == Some(Severity::Critical));
    match state {
        AlertState::Firing => 8 + critical,
        AlertState::Recovering => 6 + critical,
        AlertState::Pending => 4 + critical,
        AlertState::Resolved => 2,
        AlertState::Inactive => 0,
    }
}

/// An item with its place; ordered by the place alone.
struct Placed<T>(Place, T);

impl<T> PartialEq for Placed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<T> Eq for Placed<T> {}
impl<T> PartialOrd for Placed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Placed<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

/// The first `limit` items offered, in their places' order. Holds at most `limit` items
/// whatever is offered (`limit` 0 keeps none; the caller counts what it offers).
pub struct Top<T> {
    limit: usize,
    /// The worst kept item on top, so that a better one replaces it.
    kept: BinaryHeap<Placed<T>>,
}

impl<T> Top<T> {
    pub fn new(limit: usize) -> Self {
        Top { limit, kept: BinaryHeap::new() }
    }

    /// Offers an item at `place`; `item` is only called when it is kept.
    pub fn offer(&mut self, place: Place, item: impl FnOnce() -> T) {
        if self.kept.len() < self.limit {
            self.kept.push(Placed(place, item()));
        } else if let Some(mut worst) = self.kept.peek_mut() {
            if place < worst.0 {
                *worst = Placed(place, item());
            }
        }
    }

    /// The kept items, best first.
    pub fn into_sorted(self) -> Vec<T> {
        self.kept.into_sorted_vec().into_iter().map(|Placed(_, item)| item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(state: AlertState, critical: bool, since_ms: u64, id: u64) -> Place {
        let severity = Some(if critical { Severity::Critical } else { Severity::Warning });
        Place::new(state, severity, since_ms, id)
    }

    #[test]
    fn firing_critical_comes_first_then_the_latest_then_the_lowest_id() {
        let mut places = [
            place(AlertState::Resolved, true, 90, 1),
            place(AlertState::Pending, true, 50, 2),
            place(AlertState::Firing, false, 80, 3),
            place(AlertState::Firing, true, 10, 4),
            place(AlertState::Recovering, true, 70, 5),
            place(AlertState::Firing, true, 20, 7),
            place(AlertState::Firing, true, 20, 6),
        ];
        places.sort();
        let ids: Vec<u64> = places.iter().map(|p| p.id).collect();
        assert_eq!(ids, [6, 7, 4, 3, 5, 2, 1]);
    }

    #[test]
    fn the_top_keeps_exactly_the_first_of_a_full_sort_whatever_the_order_offered() {
        let states =
            [AlertState::Firing, AlertState::Recovering, AlertState::Pending, AlertState::Resolved];
        // 500 alerts with many equal ranks and times, offered in a scrambled order.
        let all: Vec<Place> = (0..500u64)
            .map(|i| {
                let k = i.wrapping_mul(7919) % 500;
                place(states[(k % 4) as usize], k % 3 == 0, k % 17, k)
            })
            .collect();
        let mut sorted = all.clone();
        sorted.sort();
        for limit in [0, 1, 50, 499, 500, 600] {
            let mut top = Top::new(limit);
            for p in &all {
                top.offer(*p, || p.id);
            }
            let want: Vec<u64> = sorted.iter().take(limit).map(|p| p.id).collect();
            assert_eq!(top.into_sorted(), want, "limit {limit}");
        }
    }

    #[test]
    fn an_item_is_made_only_when_kept() {
        let mut top = Top::new(2);
        let mut made = 0;
        for id in (0..10u64).rev() {
            top.offer(place(AlertState::Firing, true, 0, id), || {
                made += 1;
                id
            });
        }
        assert_eq!(top.into_sorted(), [0, 1]);
        // Offered worst first (ids 9 down to 0), each is better than the worst kept.
        assert_eq!(made, 10);
        let mut top = Top::new(2);
        let mut made = 0;
        for id in 0..10u64 {
            top.offer(place(AlertState::Firing, true, 0, id), || {
                made += 1;
                id
            });
        }
        assert_eq!(top.into_sorted(), [0, 1]);
        assert_eq!(made, 2, "offered best first, only the first two are made");
    }
}
