//! The spool: timings for the store that the live statistics do not hand it themselves. The
//! statistics hand the store the samples of their 1 s buckets at each flush
//! (`OperationRegistry::take_unstored`); what lands elsewhere is added here one sample at a
//! time (per series and minute, as a [`RollupRecorder`] delta): late samples whose second the
//! store already has, samples older than the statistics' hour (backfill), and the minutes of a
//! series evicted from memory. The flusher takes it all once a second. Its size is bounded: at
//! most `max_minutes` minutes of series per flush (a series with samples in three minutes counts
//! three times: backfill may spread one series over a month), beyond which samples of further
//! minutes are not stored and are counted (`store_dropped`; the live statistics keep those
//! they hold).

use std::collections::{BTreeMap, HashMap};

use crate::server::stats::{Rollup, RollupRecorder};
use crate::server::store::{Batch, SeriesKind, TimingRow};

const MINUTE_MS: u64 = 60_000;

/// A series' minutes, by their start: found in a few steps however many there are.
type Minutes = BTreeMap<u64, RollupRecorder>;
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Timing deltas by kind (operations, events) and series.
#[derive(Default)]
pub struct Spool {
    /// Series the statistics hold, by the number the statistics gave them (never reused), with
    /// their names: found by comparing a number, not the name (a StatsD line's second look-up).
    held: [Map<u64, (Box<str>, Minutes)>; 2],
    /// Samples of names the statistics do not hold (older than their hour), by name.
    others: [Map<Box<str>, Minutes>; 2],
    /// Whole minutes of series the statistics let go of before handing them over.
    rows: Vec<TimingRow>,
    /// Minutes held in `held` and `others` (with `rows`, what the bound counts).
    minutes: usize,
    max_minutes: usize,
    /// Samples not spooled because the spool was full.
    pub dropped: u64,
}

const KINDS: [SeriesKind; 2] = [SeriesKind::Operation, SeriesKind::Event];

impl Spool {
    pub fn new(max_minutes: usize) -> Self {
        Spool { max_minutes, ..Default::default() }
    }

    /// Minutes of series held.
    fn len(&self) -> usize {
        self.minutes + self.rows.len()
    }

    /// Adds `n` samples stamped `at_ms` of series number `series` (named `name`) of the
    /// statistics; false (and counted) when the spool is full.
    #[allow(clippy::too_many_arguments)]
    pub fn add_held(
        &mut self,
        kind: SeriesKind,
        series: u64,
        name: &str,
        at_ms: u64,
        duration_ms: f64,
        n: u64,
        success: bool,
    ) -> bool {
        let full = self.len() >= self.max_minutes;
        let map = &mut self.held[usize::from(kind == SeriesKind::Event)];
        // Only a series new since the last flush allocates its name.
        let minutes = if let Some((_, minutes)) = map.get_mut(&series) {
            minutes
        } else {
            if full {
                self.dropped = self.dropped.saturating_add(n);
                return false;
            }
            &mut map.entry(series).or_insert_with(|| (Box::from(name), Minutes::new())).1
        };
        let minute = (minutes, &mut self.minutes, &mut self.dropped);
        record(minute, full, at_ms, duration_ms, n, success)
    }

    /// Adds `n` samples stamped `at_ms` of an operation or event the statistics do not hold;
    /// false (and counted) when the spool is full.
    pub fn add(
        &mut self,
        kind: SeriesKind,
        name: &str,
        at_ms: u64,
        duration_ms: f64,
        n: u64,
        success: bool,
    ) -> bool {
        let full = self.len() >= self.max_minutes;
        let map = &mut self.others[usize::from(kind == SeriesKind::Event)];
        let minutes = if let Some(minutes) = map.get_mut(name) {
            minutes
        } else {
            if full {
                self.dropped = self.dropped.saturating_add(n);
                return false;
            }
            map.entry(Box::from(name)).or_default()
        };
        let minute = (minutes, &mut self.minutes, &mut self.dropped);
        record(minute, full, at_ms, duration_ms, n, success)
    }

    /// Adds the rollup of a minute (`at_ms`) of a series the statistics let go of; false (and
    /// its samples counted) when the spool is full: a recorder that stops taking the spool
    /// cannot make it grow past `max_minutes`.
    pub fn add_rollup(&mut self, kind: SeriesKind, name: &str, at_ms: u64, rollup: Rollup) -> bool {
        if self.len() >= self.max_minutes {
            self.dropped = self.dropped.saturating_add(rollup.count);
            return false;
        }
        self.rows.push(TimingRow { kind, name: name.into(), at_ms, rollup });
        true
    }

    /// Everything spooled since the last call.
    pub fn take(&mut self) -> Batch {
        let mut batch = Batch { timings: std::mem::take(&mut self.rows), ..Batch::default() };
        self.minutes = 0;
        for ((held, others), kind) in self.held.iter_mut().zip(&mut self.others).zip(KINDS) {
            let named = held.drain().map(|(_, named)| named).chain(others.drain());
            for (name, minutes) in named {
                for (at_ms, rollup) in minutes {
                    let rollup = rollup.finish();
                    batch.timings.push(TimingRow { kind, name: name.clone(), at_ms, rollup });
                }
            }
        }
        batch
    }
}

/// Adds `n` samples stamped `at_ms` to the minute of a series' `minutes` they fall in; a
/// minute new to it only when the spool is not `full` (else the samples are counted in
/// `dropped` and false returned). `held` counts the spool's minutes.
fn record(
    (minutes, held, dropped): (&mut Minutes, &mut usize, &mut u64),
    full: bool,
    at_ms: u64,
    duration_ms: f64,
    n: u64,
    success: bool,
) -> bool {
    use std::collections::btree_map::Entry;
    let rollup = match minutes.entry(at_ms - at_ms % MINUTE_MS) {
        Entry::Occupied(minute) => minute.into_mut(),
        Entry::Vacant(_) if full => {
            *dropped = dropped.saturating_add(n);
            return false;
        }
        Entry::Vacant(minute) => {
            *held += 1;
            minute.insert(RollupRecorder::default())
        }
    };
    rollup.record(duration_ms, n, success);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_series_by_number_and_other_names_by_name_all_reach_the_batch() {
        let mut spool = Spool::new(4);
        let op = SeriesKind::Operation;
        assert!(spool.add_held(op, 7, "api.get", 60_000, 10.0, 1, true));
        assert!(spool.add_held(op, 7, "api.get", 60_500, 30.0, 2, false));
        assert!(spool.add_held(op, 7, "api.get", 120_000, 5.0, 1, true));
        assert!(spool.add_held(SeriesKind::Event, 7, "mail", 60_000, 1.0, 1, true));
        assert!(spool.add(op, "old.op", 0, 2.0, 4, true));
        // A fifth minute does not fit; minutes held still do.
        assert!(!spool.add_held(op, 8, "api.put", 60_000, 1.0, 1, true));
        assert!(spool.add_held(op, 7, "api.get", 60_000, 1.0, 1, true));
        // Refused samples are counted as samples, a weighted one as many.
        assert!(!spool.add(op, "older.op", 0, 2.0, 5, true));
        assert_eq!(spool.dropped, 6);
        let mut rows: Vec<_> = spool
            .take()
            .timings
            .into_iter()
            .map(|r| (r.kind, r.name.to_string(), r.at_ms, r.rollup.count, r.rollup.errors))
            .collect();
        rows.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
        assert_eq!(
            rows,
            vec![
                (op, "api.get".into(), 60_000, 4, 2),
                (op, "api.get".into(), 120_000, 1, 0),
                (SeriesKind::Event, "mail".into(), 60_000, 1, 0),
                (op, "old.op".into(), 0, 4, 0),
            ]
        );
        assert!(spool.take().timings.is_empty(), "taken once");
        assert!(spool.add_held(op, 8, "api.put", 60_000, 1.0, 1, true), "room again");
    }

    /// Backfill may spread one series over a month of minutes: each counts against the bound,
    /// and finding its minute does not walk the others.
    #[test]
    fn one_series_spread_over_many_minutes_counts_each_against_the_bound() {
        let mut spool = Spool::new(3);
        let op = SeriesKind::Operation;
        for minute in 0..3 {
            assert!(spool.add(op, "old.op", minute * 60_000, 1.0, 1, true));
        }
        assert!(!spool.add(op, "old.op", 3 * 60_000, 1.0, 2, true), "a fourth minute");
        assert!(spool.add(op, "old.op", 60_500, 1.0, 1, true), "a minute it has");
        assert_eq!(spool.dropped, 2);
        let counts: Vec<u64> = spool.take().timings.iter().map(|r| r.rollup.count).collect();
        assert_eq!(counts, [1, 2, 1]);
        assert!(spool.add(op, "old.op", 3 * 60_000, 1.0, 1, true), "room again");
    }

    #[test]
    fn minutes_of_let_go_series_count_against_the_bound_and_are_counted_when_refused() {
        let mut spool = Spool::new(2);
        let op = SeriesKind::Operation;
        let minute = |count: u64| {
            let mut r = Rollup::default();
            r.record(5.0, count, true);
            r
        };
        assert!(spool.add_rollup(op, "gone.a", 60_000, minute(3)));
        assert!(spool.add_held(op, 7, "api.get", 60_000, 1.0, 1, true));
        // Full: a further minute is refused and its samples counted.
        assert!(!spool.add_rollup(op, "gone.b", 60_000, minute(4)));
        assert_eq!(spool.dropped, 4);
        assert!(!spool.add_held(op, 8, "api.put", 60_000, 1.0, 1, true));
        assert_eq!(spool.take().timings.len(), 2);
        assert!(spool.add_rollup(op, "gone.b", 120_000, minute(4)), "room again");
    }
}
