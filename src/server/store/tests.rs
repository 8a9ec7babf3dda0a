//! The store against a real SQLite file with an injected clock: roll-up exactness, late data,
//! retention, the disk cap, restart, and files it must refuse.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::server::collector::processes::ProcessSnapshot;
use crate::server::stats::Rollup;

/// 2026-11-30 00:00:00 UTC: on a whole hour.
const T0: u64 = 1_764_460_800_000;
const MIN: u64 = 60_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 86_400_000;

struct Fixture {
    store: Store,
    clock: Arc<AtomicU64>,
    dir: tempfile::TempDir,
}

fn open_with(
    dir: tempfile::TempDir,
    clock: Arc<AtomicU64>,
    adjust: impl FnOnce(&mut StoreConfig),
) -> Fixture {
    let ticking = Arc::clone(&clock);
    let mut config = StoreConfig {
        clock: Arc::new(move || ticking.load(Ordering::Relaxed)),
        ..StoreConfig::new(dir.path())
    };
    adjust(&mut config);
    Fixture { store: Store::open(config).unwrap(), clock, dir }
}

fn fixture() -> Fixture {
    open_with(tempfile::tempdir().unwrap(), Arc::new(AtomicU64::new(T0)), |_| {})
}

impl Fixture {
    fn set_now(&self, ms: u64) {
        self.clock.store(ms, Ordering::Relaxed);
    }

    fn write(&self, batch: Batch) {
        assert!(self.store.write(batch));
        assert!(self.store.flush(Duration::from_secs(10)));
    }

    /// The schema version of the opened file.
    fn schema_version(&self) -> usize {
        let version: i64 = self
            .store
            .readers()
            .with(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
            .unwrap();
        version as usize
    }

    /// Rows of the `series` table (names and tag sets the store knows).
    fn series_rows(&self) -> i64 {
        self.store
            .readers()
            .with(|c| c.query_row("SELECT COUNT(*) FROM series", [], |r| r.get(0)))
            .unwrap()
    }

    fn rows(&self, table: &str) -> u64 {
        let stats = self.store.stats().unwrap();
        stats.tiers.iter().find(|t| t.table == table).unwrap().rows
    }

    /// Runs maintenance until no table changes (each step rolls an hour and a day at most).
    fn settle(&self) {
        for _ in 0..200 {
            let before =
                self.store.stats().unwrap().tiers.iter().map(|t| t.rows).collect::<Vec<_>>();
            assert!(self.store.maintain_now());
            let after =
                self.store.stats().unwrap().tiers.iter().map(|t| t.rows).collect::<Vec<_>>();
            if before == after {
                return;
            }
        }
        panic!("maintenance did not settle");
    }

    /// The summary of `name` over `[from, to)` comes from `tier`, its count is exact and its
    /// quantiles are within the sketch's 1 % of the exact ones among `all` (time, duration).
    fn assert_exact(&self, name: &str, all: &[(u64, f64)], (from, to): (u64, u64), tier: Tier) {
        let exact = exact_in(all, from, to);
        let (got_tier, totals) = self.summary(name, from, to);
        let (count, _errors, [p50, p95, p99]) = totals.unwrap();
        assert_eq!(got_tier, tier, "over [{from}, {to})");
        assert_eq!(count, exact.len() as u64, "counts are exact over [{from}, {to})");
        for (q, got) in [(0.5, p50), (0.95, p95), (0.99, p99)] {
            let want = nearest_rank(&exact, q);
            assert!(((got - want) / want).abs() <= 0.01 + 1e-9, "p{q}: {got} vs {want}");
        }
    }

    /// The stored series of `name` over `[from, to)` per `step`, and the tier that answered.
    fn series(&self, name: &str, from: u64, to: u64, step: u64) -> (Tier, Vec<SeriesPoint>) {
        let retention = self.store.retention();
        let now = self.store.now_ms();
        self.store
            .readers()
            .with(|c| {
                let (plan, step) = query::series_plan(c, (from, to), step, now, &retention)?;
                let points =
                    query::series_points(c, SeriesKind::Operation, name, |_| true, &plan, step)?;
                Ok((plan.tier, points.unwrap_or_default()))
            })
            .unwrap()
    }

    fn summary(&self, name: &str, from: u64, to: u64) -> (Tier, RangeTotals) {
        let retention = self.store.retention();
        let now = self.store.now_ms();
        self.store
            .readers()
            .with(|c| {
                let plan = query::plan_now(c, from, to, now, &retention, None)?;
                let stats = query::range_stats(c, SeriesKind::Operation, &plan)?;
                let found = stats.into_iter().find(|(n, _)| n == name).map(|(_, s)| s);
                Ok((plan.tier, found.map(|s| (s.count(), s.errors(), s.quantiles()))))
            })
            .unwrap()
    }
}

use crate::model::history::{SeriesPoint, Tier};

type RangeTotals = Option<(u64, u64, [f64; 3])>;

fn timing(name: &str, at_ms: u64, durations: &[f64]) -> TimingRow {
    let mut rollup = Rollup::default();
    for (i, &d) in durations.iter().enumerate() {
        rollup.record(d, 1, i % 10 != 0);
    }
    TimingRow { kind: SeriesKind::Operation, name: name.into(), at_ms, rollup }
}

/// Deterministic durations: a heavy-tailed spread over 0.1 ms .. 60 s.
fn durations(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            0.1 * (600_000f64).powf(u * u)
        })
        .collect()
}

fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).saturating_sub(1)]
}

#[test]
fn ranges_over_minutes_and_hours_merge_exactly() {
    let f = fixture();
    let mut all: Vec<(u64, f64)> = Vec::new();
    // Three hours of minutes, written as the flusher would (several deltas per minute).
    for minute in 0..180 {
        let at = T0 + minute * MIN;
        f.set_now(at + MIN - 1);
        let mut batch = Batch::default();
        for part in 0..2 {
            let ds = durations(minute * 2 + part, 20 + (minute as usize % 7));
            all.extend(ds.iter().map(|&d| (at, d)));
            batch.timings.push(timing("report", at + part * 1000, &ds));
        }
        f.write(batch);
    }
    f.set_now(T0 + 3 * HOUR + 3 * MIN);
    f.settle();
    assert_eq!(f.rows("timing_hour"), 3, "every closed hour rolled up");
    for (from, to, tier) in [
        (T0, T0 + 3 * HOUR, Tier::Hour),
        (T0 + 30 * MIN, T0 + 150 * MIN, Tier::MinuteAndHour),
        (T0 + 61 * MIN, T0 + 65 * MIN, Tier::Minute),
    ] {
        f.assert_exact("report", &all, (from, to), tier);
    }
}

/// The exact durations of `all` in `[from, to)`, sorted.
fn exact_in(all: &[(u64, f64)], from: u64, to: u64) -> Vec<f64> {
    let mut exact: Vec<f64> =
        all.iter().filter(|(at, _)| (from..to).contains(at)).map(|&(_, d)| d).collect();
    exact.sort_by(f64::total_cmp);
    exact
}

/// Thirty hours from `T0`, each with ten samples of `name` at minute 10 and five of each of
/// `busy` other series; the samples of `name` (time, duration).
fn thirty_hours(f: &Fixture, name: &str, busy: u64) -> Vec<(u64, f64)> {
    let mut all = Vec::new();
    for hour in 0..30 {
        let at = T0 + hour * HOUR + 10 * MIN;
        let ds = durations(hour, 10);
        all.extend(ds.iter().map(|&d| (at, d)));
        let mut timings = vec![timing(name, at, &ds)];
        timings.extend((0..busy).map(|i| timing(&format!("busy{i}"), at, &durations(i, 5))));
        f.write(Batch { timings, values: vec![] });
    }
    all
}

#[test]
fn ranges_over_days_hours_and_minutes_merge_exactly() {
    let f = fixture();
    let mut all: Vec<(u64, f64)> = Vec::new();
    // Two and a half days, two minutes an hour, written while the clock stands still: every
    // roll-up happens in the catch-up below, an hour a step, and no day may roll before its
    // hours have.
    for hour in 0..60 {
        for (i, minute) in [7, 41].into_iter().enumerate() {
            let at = T0 + hour * HOUR + minute * MIN;
            let ds = durations(hour * 2 + i as u64, 15 + (hour as usize % 5));
            all.extend(ds.iter().map(|&d| (at, d)));
            f.write(Batch { timings: vec![timing("report", at, &ds)], values: vec![] });
        }
    }
    f.set_now(T0 + 60 * HOUR);
    f.settle();
    assert_eq!(f.rows("timing_day"), 2, "both closed days rolled up, the open one not");
    assert_eq!(f.rows("timing_hour"), 59);
    let (from, to) = (T0 + 5 * HOUR + 20 * MIN, T0 + 2 * DAY + 11 * HOUR + 30 * MIN);
    for (from, to, tier) in [
        (from, to, Tier::DayAndFiner),
        (T0 + DAY, T0 + 2 * DAY, Tier::Day),
        (T0 + 3 * HOUR, T0 + 2 * DAY + 7 * HOUR, Tier::DayAndFiner),
    ] {
        f.assert_exact("report", &all, (from, to), tier);
    }
    // Per-step series: a step of a day reads day rows, a step of an hour never does.
    for (step, tier, points) in [(DAY, Tier::Day, 2), (HOUR, Tier::Hour, 48)] {
        let (got_tier, got) = f.series("report", T0, T0 + 2 * DAY, step);
        assert_eq!((got_tier, got.len()), (tier, points), "step {step}");
        for p in got {
            assert_eq!(p.count, exact_in(&all, p.at_ms, p.at_ms + step).len() as u64, "{p:?}");
        }
    }
    // Late samples for a day already rolled up reach its day row too, several in one batch.
    let late = vec![
        timing("report", T0 + DAY + 3 * HOUR, &[5.0; 3]),
        timing("report", T0 + DAY + 3 * HOUR + 5 * MIN, &[6.0; 2]),
        timing("report", T0 + DAY + 9 * HOUR, &[7.0; 4]),
    ];
    f.write(Batch { timings: late, values: vec![] });
    let count = |from, to| f.summary("report", from, to);
    let (tier, totals) = count(T0 + DAY, T0 + 2 * DAY);
    assert_eq!(tier, Tier::Day);
    assert_eq!(totals.unwrap().0, exact_in(&all, T0 + DAY, T0 + 2 * DAY).len() as u64 + 9);
    let hour = (T0 + DAY + 3 * HOUR, T0 + DAY + 4 * HOUR);
    let (tier, totals) = count(hour.0, hour.1);
    assert_eq!(tier, Tier::Hour);
    assert_eq!(totals.unwrap().0, exact_in(&all, hour.0, hour.1).len() as u64 + 5);
}

#[test]
fn deleting_up_to_the_middle_of_a_day_keeps_the_rest_of_that_day_in_its_summary() {
    let f = fixture();
    let mut all = thirty_hours(&f, "cut", 0);
    f.set_now(T0 + 30 * HOUR);
    f.settle();
    assert_eq!(f.rows("timing_day"), 1);
    f.store.delete_before(T0 + 6 * HOUR).unwrap();
    all.retain(|&(at, _)| at >= T0 + 6 * HOUR);
    // The first day's row now holds its hours from the cut on, as the hour rows do.
    f.assert_exact("cut", &all, (T0, T0 + DAY), Tier::Day);
    f.assert_exact("cut", &all, (T0, T0 + DAY + 5 * HOUR), Tier::DayAndFiner);
    assert_eq!(exact_in(&all, T0, T0 + DAY).len(), 18 * 10);
}

#[test]
fn deleting_up_to_the_middle_of_an_hour_keeps_the_rest_of_that_hour_in_its_summaries() {
    let f = fixture();
    let mut all = thirty_hours(&f, "cut", 0);
    f.set_now(T0 + 30 * HOUR);
    f.settle();
    // The cut falls before the sixth hour's samples (at :10): they stay in its hour and day.
    let cut = T0 + 6 * HOUR + 5 * MIN;
    f.store.delete_before(cut).unwrap();
    all.retain(|&(at, _)| at >= cut);
    assert_eq!(exact_in(&all, T0, T0 + DAY).len(), 18 * 10);
    f.assert_exact("cut", &all, (T0, T0 + DAY), Tier::Day);
    let (tier, points) = f.series("cut", T0, T0 + DAY, HOUR);
    assert_eq!(tier, Tier::Hour);
    assert_eq!(points.iter().map(|p| p.count).sum::<u64>(), 18 * 10, "{points:?}");
}

#[test]
fn a_day_rolls_up_once_it_is_over_even_when_its_series_stopped() {
    let f = fixture();
    f.write(Batch { timings: vec![timing("gone", T0 + 5 * MIN, &[3.0; 4])], values: vec![] });
    f.set_now(T0 + DAY - 1);
    f.settle();
    assert_eq!((f.rows("timing_hour"), f.rows("timing_day")), (1, 0), "the day is not over");
    f.set_now(T0 + DAY + 3 * MIN);
    f.settle();
    assert_eq!(f.rows("timing_day"), 1);
    let (tier, totals) = f.summary("gone", T0, T0 + DAY);
    assert_eq!((tier, totals.map(|t| t.0)), (Tier::Day, Some(4)));
}

#[test]
fn more_series_than_the_writer_caches_ids_for_still_merge_into_one_row_each() {
    // Two cached ids, five series: the cache is emptied at every batch and ids are read back.
    let f = open_with(tempfile::tempdir().unwrap(), Arc::new(AtomicU64::new(T0)), |c| {
        c.cached_ids = 2;
    });
    f.set_now(T0 + MIN + 30_000);
    for round in 0..3 {
        let timings =
            (0..5).map(|i| timing(&format!("op{i}"), T0 + MIN + round * 1000, &[1.0])).collect();
        f.write(Batch { timings, values: vec![] });
    }
    let series = f.series_rows();
    assert_eq!(series, 5, "one series row per name");
    assert_eq!(f.rows("timing_minute"), 5, "one minute row per series");
    for i in 0..5 {
        let (_, totals) = f.summary(&format!("op{i}"), T0, T0 + 2 * MIN);
        assert_eq!(totals.map(|t| t.0), Some(3), "op{i}: the three batches merged");
    }
}

#[test]
fn late_samples_for_an_hour_already_rolled_up_reach_its_hour_row() {
    let f = fixture();
    f.write(Batch { timings: vec![timing("late", T0 + 5 * MIN, &[10.0; 4])], values: vec![] });
    f.set_now(T0 + HOUR + 3 * MIN);
    f.settle();
    assert_eq!(f.rows("timing_hour"), 1);
    f.write(Batch { timings: vec![timing("late", T0 + 7 * MIN, &[20.0; 6])], values: vec![] });
    let (tier, totals) = f.summary("late", T0, T0 + HOUR);
    assert_eq!(tier, Tier::Hour);
    assert_eq!(totals.unwrap().0, 10);
}

#[test]
fn each_tier_expires_with_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let f = open_with(dir, Arc::new(AtomicU64::new(T0)), |c| {
        c.retention = Retention { raw_hours: 1, minute_days: 1, hour_days: 2 };
    });
    for i in 0..10 {
        assert!(f.store.write_host(Sample { at_ms: T0 + i * 1000, seq: i, ..Default::default() }));
    }
    f.write(Batch { timings: vec![timing("op", T0, &[1.0])], values: vec![] });
    f.set_now(T0 + 2 * HOUR);
    f.settle();
    assert_eq!(f.rows("host_raw"), 0, "raw samples kept 1 h");
    assert_eq!(f.rows("timing_minute"), 1);
    assert_eq!(f.rows("host_minute"), 1, "the minute roll-up outlives its raw samples");
    f.set_now(T0 + 25 * HOUR);
    f.settle();
    assert_eq!((f.rows("timing_minute"), f.rows("host_minute")), (0, 0), "minute rows kept 1 day");
    assert_eq!((f.rows("timing_hour"), f.rows("host_hour")), (1, 1));
    assert_eq!(f.rows("timing_day"), 1);
    f.set_now(T0 + 49 * HOUR);
    f.settle();
    assert_eq!((f.rows("timing_hour"), f.rows("host_hour")), (0, 0), "hour rows kept 2 days");
    assert_eq!(f.rows("timing_day"), 0, "day rows kept as long as hour rows");
    let series = f.series_rows();
    assert_eq!(series, 0, "series without rows are forgotten");
    assert!(f.store.stats().unwrap().counters.expired_rows >= 5);
}

#[test]
fn the_disk_cap_evicts_the_oldest_rows_of_the_finest_tier_first() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 600 * 1024;
    let f = open_with(dir, Arc::new(AtomicU64::new(T0)), |c| c.max_disk_bytes = Some(cap));
    f.write(Batch { timings: vec![timing("kept", T0, &[1.0])], values: vec![] });
    // About 2 MB of raw host samples with per-core figures.
    for i in 0..4_000u64 {
        let mut s = Sample { at_ms: T0 + i * 1000, seq: i, ..Default::default() };
        s.system.per_core_pct = vec![1.0; 64];
        f.store.write_host(s);
        if i % 50 == 0 {
            assert!(f.store.flush(Duration::from_secs(10)));
        }
    }
    assert!(f.store.flush(Duration::from_secs(10)));
    f.set_now(T0 + 4_000 * 1000);
    f.settle();
    let stats = f.store.stats().unwrap();
    let raw = stats.tiers.iter().find(|t| t.table == "host_raw").unwrap();
    assert!(stats.counters.evicted_rows > 0, "{stats:?}");
    assert!(raw.oldest_ms.unwrap() > T0, "the oldest raw samples went first");
    assert_eq!(f.rows("timing_minute"), 1, "coarser tiers are untouched while raw rows remain");
    let used = f.store.readers().with(|c| {
        let pages: i64 = c.pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        let size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok(((pages - free) * size) as u64)
    });
    assert!(used.unwrap() <= cap, "pages in use fit the cap");
}

/// Bytes of pages in use in `f`'s file.
fn used_bytes(f: &Fixture) -> u64 {
    let used = f.store.readers().with(|c| {
        let pages: i64 = c.pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        let size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok(((pages - free) * size) as u64)
    });
    used.unwrap()
}

#[test]
fn the_disk_cap_keeps_samples_not_yet_rolled_up_and_answers_evicted_hours_by_whole_days() {
    // Thirty hours of 300 busy series and one watched, rolled into hours and the first day.
    let f = fixture();
    let mut all = thirty_hours(&f, "watched", 300);
    // A counter's minute: no other row holds it.
    let hits = ValueRow { kind: SeriesKind::Counter, name: "hits".into(), at_ms: T0, value: 3.0 };
    f.write(Batch { timings: vec![], values: vec![hits] });
    let now = T0 + 30 * HOUR + 5 * MIN;
    f.set_now(now);
    f.settle();
    assert_eq!(f.rows("timing_day"), 301);
    let full = used_bytes(&f);
    // Reopened with room for a third of that, and a sample of the last minute, which no
    // coarser row holds yet.
    f.store.close();
    let Fixture { store, clock, dir } = f;
    drop(store);
    let f = open_with(dir, clock, |c| c.max_disk_bytes = Some(full / 3));
    f.write(Batch { timings: vec![timing("fresh", now - MIN, &[4.0; 3])], values: vec![] });
    f.settle();
    let stats = f.store.stats().unwrap();
    assert!(stats.counters.evicted_rows > 0, "{stats:?}");
    assert!(used_bytes(&f) <= full / 3);
    let (_, fresh) = f.summary("fresh", now - 2 * MIN, now);
    assert_eq!(fresh.map(|t| t.0), Some(3), "the newest minute outlives older detail");
    // The oldest detail went first: no minute of the rolled hours is left, and the first
    // day's row outlives its hours.
    assert_eq!(f.rows("timing_minute"), 1, "{stats:?}");
    assert!(f.rows("timing_hour") < 30 * 301, "{stats:?}");
    assert_eq!(f.rows("value_minute"), 1, "history nothing else holds outlives summarised detail");
    f.assert_exact("watched", &all, (T0, T0 + DAY), Tier::Day);
    // A range that starts among evicted hours is answered from the start of their day, and
    // says so, rather than missing the hours it cannot read.
    let plan = f
        .store
        .readers()
        .with(|c| query::plan_now(c, T0 + HOUR, T0 + DAY, now, &f.store.retention(), None))
        .unwrap();
    assert_eq!((plan.from_ms, plan.tier), (T0, Tier::Day), "{:?}", plan.parts);
    // One that also ends there is answered for the whole day, and says so.
    let inside = f
        .store
        .readers()
        .with(|c| query::plan_now(c, T0 + HOUR, T0 + 5 * HOUR, now, &f.store.retention(), None))
        .unwrap();
    assert_eq!((inside.from_ms, inside.to_ms, inside.tier), (T0, T0 + DAY, Tier::Day));
    // A series at a 5-minute step where the minutes were evicted steps by the hours kept.
    let (tier, points) = f.series("watched", T0 + DAY, T0 + DAY + 6 * HOUR, 5 * MIN);
    assert_eq!(tier, Tier::Hour);
    let counted: u64 = points.iter().map(|p| p.count).sum();
    assert_eq!(counted, exact_in(&all, T0 + DAY, T0 + DAY + 6 * HOUR).len() as u64);
    // And by days where the hours were evicted: the first day's whole count, not nothing.
    let (tier, points) = f.series("watched", T0 + HOUR, T0 + 5 * HOUR, 5 * MIN);
    assert_eq!(tier, Tier::Day);
    let counted: u64 = points.iter().map(|p| p.count).sum();
    assert_eq!(counted, exact_in(&all, T0, T0 + DAY).len() as u64);
    // A late sample for the first (evicted) hour reaches that day's row, and makes no minute
    // or hour row holding it alone.
    let (minutes, hours) = (f.rows("timing_minute"), f.rows("timing_hour"));
    f.write(Batch { timings: vec![timing("watched", T0 + 5 * MIN, &[7.0])], values: vec![] });
    assert_eq!((f.rows("timing_minute"), f.rows("timing_hour")), (minutes, hours));
    all.push((T0 + 5 * MIN, 7.0));
    f.assert_exact("watched", &all, (T0, T0 + DAY), Tier::Day);
}

#[test]
fn expiring_notification_attempts_reads_them_by_time() {
    let f = fixture();
    let plan: Vec<String> = f
        .store
        .readers()
        .with(|c| {
            let mut stmt = c.prepare(
                "EXPLAIN QUERY PLAN SELECT rowid FROM alert_notification WHERE at_ms < 1 LIMIT 5",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(3))?;
            rows.collect()
        })
        .unwrap();
    assert!(plan.iter().any(|p| p.contains("alert_notification_at")), "{plan:?}");
}

#[test]
fn a_series_made_after_an_empty_one_was_forgotten_holds_only_its_own_samples() {
    let f = fixture();
    f.set_now(T0 + 2 * HOUR + 30_000);
    // The writer keeps the current minute's row of `gone` in memory.
    let minute = T0 + 2 * HOUR;
    f.write(Batch { timings: vec![timing("gone", minute, &[9.0; 5])], values: vec![] });
    // Its rows go (as under the disk cap); the next maintenance forgets the series, and
    // SQLite gives its id to the next new one.
    f.store.exec_on_writer("DELETE FROM timing_minute");
    f.set_now(T0 + 3 * HOUR + MIN); // series are forgotten once an hour
    assert!(f.store.maintain_now());
    assert_eq!(f.series_rows(), 0);
    f.write(Batch { timings: vec![timing("new", minute, &[1.0; 2])], values: vec![] });
    let (_, totals) = f.summary("new", minute, minute + MIN);
    assert_eq!(totals.map(|t| t.0), Some(2));
}

#[test]
fn a_reopened_store_has_everything_that_was_written() {
    let f = fixture();
    f.write(Batch {
        timings: vec![timing("op", T0 + MIN, &[5.0, 6.0])],
        values: vec![ValueRow {
            kind: SeriesKind::Counter,
            name: "hits".into(),
            at_ms: T0,
            value: 3.0,
        }],
    });
    f.store.write_host(Sample { at_ms: T0 + 500, seq: 7, ..Default::default() });
    f.store.close();
    let Fixture { store, clock, dir } = f;
    drop(store);
    let f = open_with(dir, clock, |_| {});
    let timings = f.store.readers().with(|c| query::recent_timings(c, (T0, u64::MAX))).unwrap();
    assert_eq!(timings.len(), 1);
    assert_eq!((timings[0].1.as_str(), timings[0].3.count), ("op", 2));
    let samples = f.store.readers().with(|c| query::recent_host_samples(c, T0, 10)).unwrap();
    assert_eq!(samples.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![7]);
    assert_eq!(f.rows("value_minute"), 1);
}

#[test]
fn files_it_cannot_trust_are_refused_with_what_to_do() {
    // Another Vitals holds the directory.
    let f = fixture();
    let second = Store::open(StoreConfig::new(f.dir.path()));
    assert!(matches!(second, Err(OpenError::Locked(_))), "{:?}", second.err());
    // Not a database.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
    let err = Store::open(StoreConfig::new(dir.path())).err().unwrap();
    assert!(matches!(err, OpenError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("vitals.db") && err.to_string().contains("move it away"));
    // Written by a newer version.
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(StoreConfig::new(dir.path())).err().unwrap();
    assert!(matches!(err, OpenError::Newer { found: 99, .. }), "{err}");
    // Read-only.
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(StoreConfig::new(dir.path())).unwrap());
    let path = dir.path().join(DB_FILE);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    let err = Store::open(StoreConfig::new(dir.path())).err().unwrap();
    assert!(matches!(err, OpenError::ReadOnly(_)), "{err}");
}

#[test]
fn a_paused_store_records_nothing_until_resumed() {
    let f = fixture();
    f.store.set_paused(true);
    assert!(!f.store.write(Batch { timings: vec![timing("op", T0, &[1.0])], values: vec![] }));
    f.store.set_paused(false);
    f.write(Batch { timings: vec![timing("op", T0, &[1.0])], values: vec![] });
    assert_eq!(f.rows("timing_minute"), 1);
}

#[test]
fn a_full_disk_is_retried_then_dropped_counted_and_shown_and_the_file_stays_sound() {
    let f = fixture();
    f.write(Batch { timings: vec![timing("before", T0, &[1.0])], values: vec![] });
    let pages: i64 =
        f.store.readers().with(|c| c.pragma_query_value(None, "page_count", |r| r.get(0))).unwrap();
    // The database may not grow any more: every write that needs a page fails as SQLITE_FULL.
    f.store.exec_on_writer(&format!("PRAGMA max_page_count = {pages}"));
    for i in 0..12 {
        let name = format!("grows-{i}-{}", "x".repeat(150));
        let ds = durations(i, 3000);
        assert!(f
            .store
            .write(Batch { timings: vec![timing(&name, T0 + i * MIN, &ds)], values: vec![] }));
    }
    assert!(f.store.flush(Duration::from_secs(60)));
    let stats = f.store.stats().unwrap();
    assert!(stats.counters.write_errors > 0, "{stats:?}");
    assert!(
        stats.counters.dropped_write_errors > 0,
        "after retries the batch is dropped and counted"
    );
    assert!(stats.last_error.as_deref().unwrap_or("").contains("full"), "{stats:?}");
    assert_eq!(f.store.health().0, crate::server::health::Status::Degraded);
    // Room again: writing resumes, and nothing written before was damaged.
    f.store.exec_on_writer("PRAGMA max_page_count = 1073741823");
    f.write(Batch { timings: vec![timing("after", T0 + MIN, &[2.0])], values: vec![] });
    let check: String = f
        .store
        .readers()
        .with(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(check, "ok");
    let (_, before) = f.summary("before", T0, T0 + HOUR);
    let (_, after) = f.summary("after", T0, T0 + HOUR);
    assert_eq!((before.unwrap().0, after.unwrap().0), (1, 1));
}

#[test]
fn a_file_written_by_schema_version_1_opens_with_its_data() {
    // Each later schema version migrates this file; its rows must read back unchanged.
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(include_str!("../../../tests/fixtures/store-v1.sql")).unwrap();
    drop(conn);
    let f = open_with(dir, Arc::new(AtomicU64::new(T0)), |_| {});
    assert_eq!(f.schema_version(), schema::LATEST);
    let timings = f.store.readers().with(|c| query::recent_timings(c, (0, u64::MAX))).unwrap();
    let fixture: Vec<_> = timings.iter().filter(|t| t.1 == "fixture.op").collect();
    assert_eq!(fixture.len(), 1);
    assert_eq!((fixture[0].3.count, fixture[0].3.max_ms), (1, 125.0));
    assert_eq!(f.rows("host_raw"), 8, "row counts start from the rows the file had");
    assert_eq!(f.rows("timing_minute"), 10);
    // Version 5's table is there and counted.
    assert!(f.store.write_processes(snapshot(T0, &[(1, "init", 1.0, 1)])));
    assert!(f.store.flush(Duration::from_secs(10)));
    assert_eq!(f.rows("host_process"), 1);
}

#[test]
fn host_history_at_coarse_steps_is_whole_up_to_now_even_after_catching_up() {
    let f = fixture();
    let cpu = host::field_index("cpu_pct").unwrap();
    // Two hours and three minutes of samples, one every 30 s: cpu = the minute's index.
    for i in 0..(2 * 120 + 6) {
        let mut s = Sample { at_ms: T0 + i * 30_000, seq: i, ..Default::default() };
        s.system.cpu_pct = (i / 2) as f32;
        assert!(f.store.write_host(s));
        if i % 50 == 0 {
            assert!(f.store.flush(Duration::from_secs(10)));
        }
    }
    assert!(f.store.flush(Duration::from_secs(10)));
    let now = T0 + 2 * HOUR + 3 * MIN;
    f.set_now(now);
    f.settle();
    let points = |tier, step| {
        f.store.readers().with(|c| query::host_points(c, tier, T0, now, step, &[cpu])).unwrap()
    };
    let minutes = points(Tier::Minute, MIN);
    assert_eq!(minutes.len(), 123, "every minute up to now, the current one from raw samples");
    assert_eq!(minutes.last().unwrap().mean[0], Some(122.0));
    let hours = points(Tier::Hour, HOUR);
    assert_eq!(
        hours.iter().map(|p| p.at_ms).collect::<Vec<_>>(),
        vec![T0, T0 + HOUR, T0 + 2 * HOUR]
    );
    assert_eq!(hours[2].max[0], Some(122.0), "the current hour from minutes and raw samples");
    assert_eq!(hours[0].mean[0], Some(29.5));
}

#[test]
fn row_counts_stay_exact_through_replaces_roll_ups_expiry_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let f = open_with(dir, Arc::new(AtomicU64::new(T0)), |c| {
        c.retention = Retention { raw_hours: 1, minute_days: 1, hour_days: 2 };
    });
    let exact = |f: &Fixture| {
        let counted: Vec<(&str, u64)> = schema::COUNTED
            .iter()
            .map(|t| {
                let n: i64 = f
                    .store
                    .readers()
                    .with(|c| c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)))
                    .unwrap();
                (*t, n as u64)
            })
            .collect();
        let kept: Vec<(&str, u64)> =
            f.store.stats().unwrap().tiers.iter().map(|t| (t.table, t.rows)).collect();
        assert_eq!(kept, counted);
    };
    let value = |at_ms, value| ValueRow { kind: SeriesKind::Gauge, name: "g".into(), at_ms, value };
    for round in 0..2 {
        // The second round rewrites every row the first wrote (INSERT OR REPLACE).
        for i in 0..90 {
            assert!(f.store.write_host(Sample {
                at_ms: T0 + i * 1000,
                seq: i,
                ..Default::default()
            }));
            if i % 10 == 0 {
                let scan = [(1, "a", 1.0, 1), (2, "b", 2.0, 2)];
                assert!(f.store.write_processes(snapshot(T0 + i * 1000, &scan)));
            }
            if i % 30 == 29 {
                assert!(f.store.flush(Duration::from_secs(10)));
            }
        }
        f.write(Batch {
            timings: vec![timing("a", T0, &[1.0, 2.0]), timing("b", T0 + MIN, &[3.0])],
            values: vec![value(T0, f64::from(round)), value(T0 + MIN, 1.0)],
        });
    }
    exact(&f);
    assert_eq!((f.rows("host_raw"), f.rows("host_process")), (90, 18));
    assert_eq!(f.rows("timing_minute"), 2);
    f.set_now(T0 + 2 * HOUR);
    f.settle();
    exact(&f);
    assert_eq!((f.rows("host_raw"), f.rows("host_minute"), f.rows("timing_hour")), (0, 2, 2));
    assert_eq!(f.rows("host_process"), 0, "expired with the raw samples");
    let held: u64 = f.store.stats().unwrap().tiers.iter().map(|t| t.rows).sum();
    assert_eq!(f.store.delete_before(T0 + HOUR).unwrap(), held);
    exact(&f);
    assert!(f.store.stats().unwrap().tiers.iter().all(|t| t.rows == 0));
}

fn snapshot(at_ms: u64, processes: &[(u32, &str, f64, u64)]) -> ProcessSnapshot {
    use crate::server::collector::processes::ProcessUsage;
    ProcessSnapshot {
        at_ms,
        processes: processes
            .iter()
            .map(|&(pid, name, cpu_pct, rss_bytes)| ProcessUsage {
                pid,
                name: name.into(),
                cpu_pct,
                rss_bytes,
            })
            .collect(),
    }
}

fn top(f: &Fixture, from: u64, to: u64) -> crate::model::history::TopProcesses {
    f.store.readers().with(|c| query::top_processes(c, from, to, 5)).unwrap()
}

#[test]
fn top_processes_are_stored_summed_by_name_ranked_and_expire_with_raw_samples() {
    let dir = tempfile::tempdir().unwrap();
    let f = open_with(dir, Arc::new(AtomicU64::new(T0)), |c| {
        c.retention = Retention { raw_hours: 1, minute_days: 1, hour_days: 2 };
    });
    const MB: u64 = 1 << 20;
    // Three scans 10 s apart; two postgres workers; "backup" only in the last scan.
    for (i, scan) in [
        vec![
            (10, "postgres", 40.0, 100 * MB),
            (11, "postgres", 20.0, 50 * MB),
            (12, "java", 10.0, 900 * MB),
        ],
        vec![(10, "postgres", 30.0, 100 * MB), (12, "java", 15.0, 950 * MB)],
        vec![
            (10, "postgres", 50.0, 120 * MB),
            (12, "java", 5.0, 800 * MB),
            (13, "backup", 90.0, 0),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        assert!(f.store.write_processes(snapshot(T0 + i as u64 * 10_000, &scan)));
    }
    assert!(f.store.flush(Duration::from_secs(10)));
    assert_eq!(f.rows("host_process"), 8);
    let t = top(&f, T0, T0 + MIN);
    assert_eq!(t.scans, 3);
    let names = |list: &[crate::model::history::ProcessSummary]| {
        list.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&t.by_cpu), vec!["postgres", "backup", "java"]);
    let pg = &t.by_cpu[0];
    // Per scan 60, 30, 50 (the two workers summed): mean 46.67, peak 60.
    assert_eq!((pg.cpu_mean_pct, pg.cpu_max_pct, pg.scans), (46.67, 60.0, 3));
    assert_eq!(pg.rss_max_bytes, 150 * MB);
    let backup = &t.by_cpu[1];
    assert_eq!((backup.cpu_mean_pct, backup.cpu_max_pct), (30.0, 90.0), "absent scans count 0");
    assert_eq!(names(&t.by_memory), vec!["java", "postgres"], "no memory, not listed");
    assert_eq!(t.by_memory[0].rss_max_bytes, 950 * MB);
    // The range is [from, to): the last scan alone.
    assert_eq!(
        names(&top(&f, T0 + 20_000, T0 + 20_001).by_cpu),
        vec!["backup", "postgres", "java"]
    );
    assert_eq!(top(&f, T0 + MIN, T0 + 2 * MIN).scans, 0);
    // Paused: refused, like host samples.
    f.store.set_paused(true);
    assert!(!f.store.write_processes(snapshot(T0 + 30_000, &[(1, "x", 1.0, 1)])));
    f.store.set_paused(false);
    // Kept as long as raw host samples.
    assert!(f.store.write_host(Sample { at_ms: T0 + 30 * MIN, seq: 1, ..Default::default() }));
    assert!(f.store.write_processes(snapshot(T0 + 30 * MIN, &[(1, "late", 1.0, 1)])));
    assert!(f.store.flush(Duration::from_secs(10)));
    f.set_now(T0 + HOUR + 10 * MIN);
    f.settle();
    assert_eq!((f.rows("host_raw"), f.rows("host_process")), (1, 1));
    assert_eq!(names(&top(&f, T0, T0 + HOUR).by_cpu), vec!["late"]);
    f.set_now(T0 + 2 * HOUR);
    f.settle();
    assert_eq!((f.rows("host_raw"), f.rows("host_process")), (0, 0));
}

#[test]
fn a_file_written_by_schema_version_4_migrates_to_keep_top_processes() {
    // The previous version's file: migrations 1 to 4 only, with a host sample in it.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let sql = schema::sql();
        schema::migrations(&sql).to_version(&mut conn, 4).unwrap();
        conn.execute(
            "INSERT INTO host_raw (at_ms, seq, per_core) VALUES (?1, 7, x'')",
            [T0 as i64],
        )
        .unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, 4);
    }
    let f = open_with(dir, Arc::new(AtomicU64::new(T0 + MIN)), |_| {});
    assert_eq!(f.schema_version(), schema::LATEST);
    assert_eq!(f.rows("host_raw"), 1);
    assert_eq!(f.rows("host_process"), 0);
    assert!(f.store.write_processes(snapshot(T0, &[(1, "init", 1.5, 4096)])));
    assert!(f.store.flush(Duration::from_secs(10)));
    assert_eq!(f.rows("host_process"), 1, "written and counted");
    assert_eq!(top(&f, T0, T0 + 1).by_cpu[0].name, "init");
}

/// The failures' mean of `name` over `[from, to)` as a range summary gives it.
fn failures_mean(f: &Fixture, name: &str, from: u64, to: u64) -> Option<f64> {
    let (retention, now) = (f.store.retention(), f.store.now_ms());
    let stats = f
        .store
        .readers()
        .with(|c| {
            let plan = query::plan_now(c, from, to, now, &retention, None)?;
            query::range_stats(c, SeriesKind::Operation, &plan)
        })
        .unwrap();
    let (_, s) = stats.into_iter().find(|(n, _)| n == name).unwrap();
    s.summary(name, (to - from) / 1000, &Default::default()).unwrap().error_mean_ms
}

#[test]
fn failures_keep_their_sum_through_minutes_and_hours_and_older_rows_read_as_unknown() {
    // The previous version's file: a minute of `old` without the failures' sum.
    let dir = tempfile::tempdir().unwrap();
    let old = timing("old", T0, &[10.0, 20.0, 30.0]);
    {
        let mut conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let sql = schema::sql();
        schema::migrations(&sql).to_version(&mut conn, 8).unwrap();
        conn.execute(
            "INSERT INTO series (id, kind, name) VALUES (1, ?1, 'old')",
            [old.kind.code()],
        )
        .unwrap();
        let r = &old.rollup;
        conn.execute(
            "INSERT INTO timing_minute (series, at_ms, count, errors, sum_ms, min_ms, max_ms, bins) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                T0 as i64,
                r.count as i64,
                r.errors as i64,
                r.sum_ms,
                r.min_ms,
                r.max_ms,
                r.encode_bins()
            ],
        )
        .unwrap();
    }
    let f = open_with(dir, Arc::new(AtomicU64::new(T0 + MIN)), |_| {});
    assert_eq!(f.schema_version(), schema::LATEST);
    assert_eq!(old.rollup.errors, 1, "the first sample failed");
    assert_eq!(failures_mean(&f, "old", T0, T0 + MIN), None, "unknown, not 0 ms");
    // A minute stored now in the same hour: the hour's failures' mean stays unknown (it would
    // leave the old minute's failure out), the new minute's is known.
    f.set_now(T0 + 31 * MIN);
    let mut batch = Batch::default();
    batch.timings.push(timing("old", T0 + 30 * MIN, &[1000.0, 5.0]));
    f.write(batch);
    // Two hours of minutes: one sample in ten fails, and failures take 1,000 ms.
    for minute in 0..120 {
        let at = T0 + HOUR + minute * MIN;
        f.set_now(at + MIN - 1);
        let mut batch = Batch::default();
        batch.timings.push(timing(
            "new",
            at,
            &[1000.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
        ));
        f.write(batch);
    }
    f.set_now(T0 + 3 * HOUR + 3 * MIN);
    f.settle();
    assert!(f.rows("timing_hour") >= 2, "hours rolled up");
    for (from, to) in [(T0 + HOUR, T0 + 3 * HOUR), (T0 + 90 * MIN, T0 + 100 * MIN)] {
        assert_eq!(failures_mean(&f, "new", from, to), Some(1000.0), "{from}..{to}");
    }
    assert_eq!(failures_mean(&f, "old", T0 + 30 * MIN, T0 + 31 * MIN), Some(1000.0));
    assert_eq!(failures_mean(&f, "old", T0, T0 + HOUR), None, "the hour row holds the old minute");
    assert_eq!(failures_mean(&f, "old", T0, T0 + 2 * HOUR), None);
}
