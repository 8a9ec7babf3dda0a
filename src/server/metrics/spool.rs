//! The spool: what the store has not been handed yet. Every accepted timing is added here too
//! (per series and minute, as a [`Rollup`] delta), and the flusher takes it all once a second.
//! Its size is bounded: at most `max_series` series per flush, beyond which samples are
//! stored in memory only and counted (`store_dropped`).

use std::collections::HashMap;

use crate::server::stats::RollupRecorder;
use crate::server::store::{Batch, SeriesKind, TimingRow};

const MINUTE_MS: u64 = 60_000;

type Minutes = Vec<(u64, RollupRecorder)>;

/// Timing deltas by kind (operations, events) and name.
#[derive(Default)]
pub struct Spool {
    timings: [HashMap<Box<str>, Minutes, foldhash::fast::RandomState>; 2],
    max_series: usize,
    /// Samples not spooled because the spool was full.
    pub dropped: u64,
}

const KINDS: [SeriesKind; 2] = [SeriesKind::Operation, SeriesKind::Event];

impl Spool {
    pub fn new(max_series: usize) -> Self {
        Spool { max_series, ..Default::default() }
    }

    fn len(&self) -> usize {
        self.timings.iter().map(HashMap::len).sum()
    }

    /// Adds `n` samples stamped `at_ms` of an operation or event; false (and counted) when the
    /// spool is full.
    pub fn add(
        &mut self,
        kind: SeriesKind,
        name: &str,
        at_ms: u64,
        duration_ms: f64,
        n: u64,
        success: bool,
    ) -> bool {
        let minute = at_ms - at_ms % MINUTE_MS;
        let index = usize::from(kind == SeriesKind::Event);
        let full = self.len() >= self.max_series;
        let map = &mut self.timings[index];
        // Only a series new since the last flush allocates its name.
        let minutes = if let Some(minutes) = map.get_mut(name) {
            minutes
        } else {
            if full {
                self.dropped += 1;
                return false;
            }
            map.entry(Box::from(name)).or_default()
        };
        if let Some((_, rollup)) = minutes.iter_mut().find(|(m, _)| *m == minute) {
            rollup.record(duration_ms, n, success);
        } else {
            let mut rollup = RollupRecorder::default();
            rollup.record(duration_ms, n, success);
            minutes.push((minute, rollup));
        }
        true
    }

    /// Everything spooled since the last call.
    pub fn take(&mut self) -> Batch {
        let mut batch = Batch::default();
        for (map, kind) in self.timings.iter_mut().zip(KINDS) {
            for (name, minutes) in map.drain() {
                for (at_ms, rollup) in minutes {
                    let rollup = rollup.finish();
                    batch.timings.push(TimingRow { kind, name: name.clone(), at_ms, rollup });
                }
            }
        }
        batch
    }
}
