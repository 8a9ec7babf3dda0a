//! What the statistics hand the history store: every accepted sample exactly once, whether it
//! comes from a sealed 1 s bucket at a flush or, landing where the store already has its
//! second, through the caller's spool.

use std::collections::BTreeMap;

use super::*;

/// A whole minute (Unix ms).
const T0: u64 = 1_700_000_040_000;
const SEC: u64 = 1000;

/// What the store holds per (series, minute): the rows it was handed, merged.
type Stored = BTreeMap<(String, u64), Rollup>;

fn stored_registry() -> OperationRegistry {
    let mut reg = OperationRegistry::new(StatsConfig::default());
    reg.attach_store();
    reg
}

fn hand_over(reg: &mut OperationRegistry, before_ms: u64, into: &mut Stored) -> usize {
    let mut rows = 0;
    reg.take_unstored(before_ms, |name, minute_ms, rollup| {
        rows += 1;
        into.entry((name.to_string(), minute_ms)).or_default().merge(&rollup);
    });
    rows
}

/// Records one sample of weight 1, and spools it into `into` when the registry says it is the
/// caller's.
fn record(reg: &mut OperationRegistry, into: &mut Stored, s: (&str, f64, bool, u64), now: u64) {
    record_weighted(reg, into, s, 1.0, now);
}

/// [`record`] with a weight; returns how many samples were counted.
fn record_weighted(
    reg: &mut OperationRegistry,
    into: &mut Stored,
    s: (&str, f64, bool, u64),
    weight: f64,
    now: u64,
) -> u64 {
    let (name, ms, success, at) = s;
    let r = reg.record_within(name, ms, success, weight, at, now, true).unwrap();
    if r.placed == Placed::Spool && r.n > 0 {
        into.entry((name.to_string(), at - at % 60_000)).or_default().record(ms, r.n, success);
    }
    r.n
}

/// The figures a store row is compared by (the sum is rounded differently by the two paths).
fn figures(r: &Rollup) -> (u64, u64, f64, f64, Vec<u8>, f64, Option<f64>) {
    let round = |ms: f64| (ms * 1e3).round();
    let sums = (round(r.sum_ms), r.error_sum_ms.map(round));
    (r.count, r.errors, r.min_ms, r.max_ms, r.encode_bins(), sums.0, sums.1)
}

fn assert_same(got: &Stored, want: &Stored) {
    let keys = |m: &Stored| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(got), keys(want), "the same series and minutes");
    for (key, w) in want {
        assert_eq!(figures(&got[key]), figures(w), "{key:?}");
    }
}

#[test]
fn a_flush_hands_over_the_seconds_that_are_over_and_shutdown_the_rest() {
    let mut reg = stored_registry();
    let mut got = Stored::new();
    let now = T0 + 5 * SEC + 500;
    for (at, ms) in [(T0 + 3 * SEC, 10.0), (T0 + 4 * SEC, 20.0), (T0 + 5 * SEC, 40.0)] {
        record(&mut reg, &mut got, ("api.get", ms, true, at), now);
    }
    assert!(got.is_empty(), "nothing spooled one by one");
    hand_over(&mut reg, now, &mut got);
    let row = &got[&("api.get".to_string(), T0)];
    assert_eq!((row.count, row.max_ms), (2, 20.0), "seconds 3 and 4, not the current one");
    // A late sample of a second handed over is the caller's to spool; one of the current
    // second still comes from its bucket.
    record(&mut reg, &mut got, ("api.get", 5.0, false, T0 + 4 * SEC), now);
    assert_eq!(got[&("api.get".to_string(), T0)].count, 3);
    record(&mut reg, &mut got, ("api.get", 80.0, true, T0 + 5 * SEC + 900), now);
    assert_eq!(hand_over(&mut reg, now, &mut got), 0, "nothing new is over");
    hand_over(&mut reg, u64::MAX, &mut got);
    let row = &got[&("api.get".to_string(), T0)];
    assert_eq!((row.count, row.errors, row.min_ms, row.max_ms), (5, 1, 5.0, 80.0));
    assert_eq!(hand_over(&mut reg, u64::MAX, &mut got), 0, "handed over once");
}

#[test]
fn without_a_store_nothing_is_handed_over() {
    let mut reg = OperationRegistry::new(StatsConfig::default());
    reg.record("api.get", 10.0, true, 1.0, T0, T0 + 3 * SEC).unwrap();
    assert_eq!(hand_over(&mut reg, u64::MAX, &mut Stored::new()), 0);
}

#[test]
fn an_evicted_series_hands_over_what_the_store_lacks() {
    let mut reg = stored_registry();
    reg.record("api.get", 10.0, true, 1.0, T0, T0).unwrap();
    let mut rows = Vec::new();
    reg.evict("api.get", |minute_ms, rollup| rows.push((minute_ms, rollup.count)));
    assert_eq!(rows, vec![(T0, 1)]);
}

/// Random traffic (weighted samples among them), flushes by a clock up to 2 s off the
/// statistics', prunes and stalls (a flush a minute or two late, so that buckets the store
/// lacks roll up into coarser ones first): the store ends up with every sample once, exactly as
/// recording each sample into its minute gives.
fn every_sample_reaches_the_store_once(seed: u64) {
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (rng >> 33) % n
    };
    let mut reg = stored_registry();
    let (mut got, mut want) = (Stored::new(), Stored::new());
    let mut now = T0;
    let names = ["api.get", "api.put", "db.query"];
    for step in 0..3_000 {
        now += match next(100) {
            0 => 60 * SEC + next(90) * SEC, // a stall: no flush for over a minute
            _ => next(1_500),
        };
        for _ in 0..next(4) {
            let name = names[next(3) as usize];
            let at = match next(20) {
                0 => now.saturating_sub(next(600) * SEC), // late, up to ten minutes
                1 => now + next(5_000),                   // a little ahead
                _ => now.saturating_sub(next(1_200)),
            };
            let (ms, success) = ((1 + next(5_000)) as f64 / 10.0, next(10) != 0);
            let weight = [1.0, 1.0, 2.5, 0.4][next(4) as usize];
            let n = record_weighted(&mut reg, &mut got, (name, ms, success, at), weight, now);
            if n > 0 {
                want.entry((name.to_string(), at - at % 60_000))
                    .or_default()
                    .record(ms, n, success);
            }
        }
        if next(2) == 0 {
            hand_over(&mut reg, now + next(4_000) - 2_000, &mut got);
        }
        if step % 7 == 0 {
            reg.prune(now, |_| {});
        }
    }
    hand_over(&mut reg, u64::MAX, &mut got);
    assert_same(&got, &want);
}

#[test]
fn every_sample_reaches_the_store_once_whatever_the_flushes() {
    for seed in 1..=8 {
        every_sample_reaches_the_store_once(seed);
    }
}

#[test]
fn minutes_kept_for_the_store_count_in_the_statistics_memory() {
    let (mut flushed, mut stalled) = (stored_registry(), stored_registry());
    for s in 0..150 {
        let now = T0 + s * SEC;
        for reg in [&mut flushed, &mut stalled] {
            for i in 0..50 {
                reg.record("api.get", 1.0 + f64::from(i) * 10.0, true, 1.0, now, now).unwrap();
            }
        }
        flushed.take_unstored(now, |_, _, _| {});
    }
    let now = T0 + 150 * SEC;
    flushed.prune(now, |_| {});
    stalled.prune(now, |_| {});
    // The same buckets, but the stalled one also keeps the minutes that rolled up unhanded.
    assert!(stalled.memory_bytes() > flushed.memory_bytes() + 1000);
    let mut rows = 0;
    stalled.take_unstored(now, |_, _, _| rows += 1);
    assert!(rows >= 2, "the rolled-up minutes are handed over at last");
}
