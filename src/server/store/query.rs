//! Reads: a small pool of read-only connections and every query of the store (range
//! summaries, per-step series, host history, what start-up restores, tier statistics). Call
//! these off the async runtime (`spawn_blocking`); WAL lets them run while the writer writes.
//!
//! # Which rows answer a range
//! Day rows answer the whole UTC days inside `[from, to)` that have been rolled up, hour rows
//! the whole hours at their edges, minute rows the rest (and everything not rolled up yet).
//! All are exact merges of the same sketch bins, so the answer is the same as if every minute
//! had been read, within the sketch's relative error. A per-step series uses only rows whose
//! width divides its step (a 1-hour step never reads a day row). Before the minute retention
//! only hour and day rows exist: the range is widened to whole hours there, and the answer's
//! `from_ms` says so.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

use super::host::{decode_cores, sample_from, FieldRollup, HostRollup, HOST_FIELDS};
use super::writer::{
    meta, rollup_from_row, rollup_into, DAY_MS, EVICTED_HOURS, EVICTED_MINUTES, HOST_HOURS,
    HOST_MINUTES, TIMING_DAYS, TIMING_HOURS,
};
use super::{schema, Retention, SeriesKind};
use crate::model::history::{HostPoint, ProcessSummary, SeriesPoint, Tier, TopProcesses};
use crate::model::live::Sample;
use crate::server::metrics::tags;
use crate::server::stats::{RangeStats, Rollup};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// Read-only connections, opened on demand and kept for reuse.
pub struct Readers {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
    keep: usize,
}

impl Readers {
    pub(super) fn new(path: PathBuf, keep: usize) -> Self {
        Readers { path, pool: Mutex::new(Vec::new()), keep }
    }

    /// Runs `f` on a read connection (blocking).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&self.path, flags)?;
                conn.execute_batch("PRAGMA query_only = 1; PRAGMA busy_timeout = 2000;")?;
                conn
            }
        };
        let result = f(&conn);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.keep {
            pool.push(conn);
        }
        result
    }
}

/// Rows and time span of one table.
#[derive(Clone, Debug, Serialize)]
pub struct TierStats {
    pub table: &'static str,
    pub rows: u64,
    pub oldest_ms: Option<u64>,
    pub newest_ms: Option<u64>,
}

/// Rows (from `row_count`, kept by triggers) and the oldest and newest time (from the time
/// index) of every data table: a few index look-ups, whatever the store's size.
pub(super) fn tier_stats(conn: &Connection) -> rusqlite::Result<Vec<TierStats>> {
    schema::COUNTED
        .into_iter()
        .map(|table| {
            let rows: i64 = conn
                .prepare_cached("SELECT rows FROM row_count WHERE tbl = ?1")?
                .query_row([table], |r| r.get(0))?;
            let (oldest_ms, newest_ms) =
                conn.query_row(&format!("SELECT min(at_ms), max(at_ms) FROM {table}"), [], |r| {
                    Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
                })?;
            Ok(TierStats {
                table,
                rows: rows.max(0) as u64,
                oldest_ms: oldest_ms.map(|v| v.max(0) as u64),
                newest_ms: newest_ms.map(|v| v.max(0) as u64),
            })
        })
        .collect()
}

/// Stored host samples from `from_ms` on, oldest first, at most `limit` (the newest ones).
pub fn recent_host_samples(
    conn: &Connection,
    from_ms: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Sample>> {
    let columns = HOST_FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT at_ms, seq, per_core, current_action, {columns} FROM host_raw \
         WHERE at_ms >= ?1 ORDER BY at_ms DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![from_ms as i64, limit as i64])?;
    let mut samples = Vec::new();
    while let Some(row) = rows.next()? {
        let at: i64 = row.get(0)?;
        let seq: i64 = row.get(1)?;
        let cores: Vec<u8> = row.get(2)?;
        let action: Option<String> = row.get(3)?;
        let values: Vec<Option<f64>> =
            (0..HOST_FIELDS.len()).map(|i| row.get(i + 4).ok().flatten()).collect();
        let mut sample =
            sample_from(at.max(0) as u64, seq.max(0) as u64, &values, decode_cores(&cores));
        sample.actions.current_action = action;
        samples.push(sample);
    }
    samples.reverse();
    Ok(samples)
}

/// Host rollup rows of `table` (`host_minute` or `host_hour`) in `[from, to)`, oldest first.
pub fn host_rollups(
    conn: &Connection,
    table: &str,
    from_ms: u64,
    to_ms: u64,
) -> rusqlite::Result<Vec<(u64, HostRollup)>> {
    let columns: Vec<String> = HOST_FIELDS
        .iter()
        .flat_map(|f| ["min", "max", "mean", "last"].map(|s| format!("{}_{s}", f.name)))
        .collect();
    let sql = format!(
        "SELECT at_ms, samples, {} FROM {table} WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms",
        columns.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![from_ms as i64, to_ms as i64])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let at: i64 = row.get(0)?;
        let samples = row.get::<_, i64>(1)?.max(0) as u64;
        let fields = (0..HOST_FIELDS.len())
            .map(|i| {
                let get = |j: usize| row.get::<_, Option<f64>>(2 + 4 * i + j).ok().flatten();
                match (get(0), get(1), get(2), get(3)) {
                    (Some(min), Some(max), Some(mean), Some(last)) => {
                        Some(FieldRollup { min, max, mean, last, weight: samples as f64 })
                    }
                    _ => None,
                }
            })
            .collect();
        out.push((at.max(0) as u64, HostRollup { samples, fields }));
    }
    Ok(out)
}

/// Operation and event minutes in `[from, to)` (by series key), for refilling the in-memory
/// windows.
pub fn recent_timings(
    conn: &Connection,
    range: (u64, u64),
) -> rusqlite::Result<Vec<(SeriesKind, String, u64, Rollup)>> {
    let mut out = Vec::new();
    each_timing_minute(conn, range, |kind, key, at, rollup| {
        out.push((kind, key, at, rollup));
    })?;
    Ok(out)
}

/// Calls `f` with each operation and event minute in `[from, to)` (kind, series key, start,
/// rollup), oldest first, one row at a time: a caller keeps only what it needs.
pub fn each_timing_minute(
    conn: &Connection,
    (from_ms, to_ms): (u64, u64),
    mut f: impl FnMut(SeriesKind, String, u64, Rollup),
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.kind, s.name, s.tags, t.at_ms, t.count, t.errors, t.sum_ms, t.min_ms, t.max_ms, \
         t.bins, t.error_sum_ms FROM timing_minute t JOIN series s ON s.id = t.series \
         WHERE t.at_ms >= ?1 AND t.at_ms < ?2 ORDER BY t.at_ms",
    )?;
    let to = i64::try_from(to_ms).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![from_ms as i64, to])?;
    while let Some(row) = rows.next()? {
        let kind = match row.get::<_, i64>(0)? {
            super::schema::kind::OPERATION => SeriesKind::Operation,
            super::schema::kind::EVENT => SeriesKind::Event,
            _ => continue,
        };
        if let Some(rollup) = rollup_from_row(row, 4)? {
            let (name, tags): (String, String) = (row.get(1)?, row.get(2)?);
            f(kind, tags::join(&name, &tags), row.get::<_, i64>(3)?.max(0) as u64, rollup);
        }
    }
    Ok(())
}

/// The tables (and their sub-ranges) that answer `[from, to)` of timing rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `(table, from, to)`, each a half-open range of that table's `at_ms`.
    pub parts: Vec<(&'static str, u64, u64)>,
    /// The range the parts answer: the one asked for, widened to whole hours or days where
    /// only those rows are kept.
    pub from_ms: u64,
    pub to_ms: u64,
    pub tier: Tier,
}

impl Plan {
    /// Minute rows only, over `[from, to)`.
    pub fn minutes(from_ms: u64, to_ms: u64) -> Plan {
        let parts = vec![("timing_minute", from_ms, to_ms)];
        Plan { parts, from_ms, to_ms, tier: Tier::Minute }
    }
}

/// The timing tables, finest first, with the width of their rows.
const LEVELS: [(&str, u64); 3] =
    [("timing_minute", MINUTE_MS), ("timing_hour", HOUR_MS), ("timing_day", DAY_MS)];

/// What of each tier may be read: how far the coarser tiers are rolled up (the first hour and
/// the first day not rolled yet); the first day whose row may be read (`days_from`: a day that
/// began before the hour retention may have lost its row to expiry while its later hours are
/// still kept); where the hours begin (`hours_from`: the disk cap evicts old hours before the
/// days that summarise them); and where the minutes begin (`minutes_from`: the minute
/// retention, or later where the disk cap evicted them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rolled {
    pub hours_to: u64,
    pub days_to: u64,
    pub days_from: u64,
    pub hours_from: u64,
    pub minutes_from: u64,
}

impl Rolled {
    /// The store's state at `now_ms`.
    pub fn now(conn: &Connection, now_ms: u64, retention: &Retention) -> rusqlite::Result<Self> {
        let minutes_evicted = meta(conn, EVICTED_MINUTES)?.unwrap_or(0);
        Ok(Rolled {
            hours_to: meta(conn, TIMING_HOURS)?.unwrap_or(0),
            days_to: meta(conn, TIMING_DAYS)?.unwrap_or(0),
            days_from: now_ms.saturating_sub(retention.hour_ms()),
            hours_from: meta(conn, EVICTED_HOURS)?.unwrap_or(0),
            minutes_from: now_ms.saturating_sub(retention.minute_ms()).max(minutes_evicted),
        })
    }
}

/// Chooses the rows for `[from, to)`: the widest rows rolled up (`rolled`) and whole inside
/// the range, the next finer ones at their edges, minutes for the rest; before
/// `rolled.minutes_from` hours and days only, before `rolled.hours_from` days only. `step_ms`: a
/// per-step series may only read rows whose width divides its step; `None` for a summary of the
/// whole range.
pub fn plan(from_ms: u64, to_ms: u64, rolled: Rolled, step_ms: Option<u64>) -> Plan {
    let widest = LEVELS.iter().rposition(|&(_, w)| step_ms.is_none_or(|s| s % w == 0));
    let widest = widest.unwrap_or(0);
    // Where only coarser rows are kept, each partial hour (day) goes to the range that holds
    // its start, so that ranges side by side (a comparison's two sides) never share one: the
    // start moves back to its hour, the end back to its own, or on to the next when the range
    // would be left empty.
    let (mut from, mut to) = (from_ms, to_ms);
    let floors = [(rolled.minutes_from, HOUR_MS, 1), (rolled.hours_from, DAY_MS, 2)];
    for (floor, width, level) in floors {
        if widest >= level && from_ms < floor {
            from = from.min(from_ms - from_ms % width);
        }
        if widest >= level && to_ms < floor {
            let back = to - to % width;
            to = if back > from { back } else { to.div_ceil(width).saturating_mul(width) };
        }
    }
    let mut parts = Vec::new();
    // Where each level's rows may be read: minutes anywhere, hours up to where they are
    // rolled, days from `days_from` up to where they are rolled.
    let usable = [(0, u64::MAX), (0, rolled.hours_to), (rolled.days_from, rolled.days_to)];
    cover(&mut parts, widest, from, to, usable);
    let used = |table: &str| parts.iter().any(|p| p.0 == table);
    let tier = match (used("timing_minute"), used("timing_hour"), used("timing_day")) {
        (_, _, true) if parts.len() == 1 => Tier::Day,
        (_, _, true) => Tier::DayAndFiner,
        (true, true, false) => Tier::MinuteAndHour,
        (false, true, false) => Tier::Hour,
        _ => Tier::Minute,
    };
    Plan { parts, from_ms: from, to_ms: to, tier }
}

/// Appends the parts that answer `[lo, hi)` with rows of `LEVELS[level]` or finer, oldest
/// first: the whole periods of this level inside `usable[level]`, the edges one level finer.
fn cover(
    parts: &mut Vec<(&'static str, u64, u64)>,
    level: usize,
    lo: u64,
    hi: u64,
    usable: [(u64, u64); 3],
) {
    if lo >= hi {
        return;
    }
    let (table, width) = LEVELS[level];
    if level == 0 {
        parts.push((table, lo, hi));
        return;
    }
    let (usable_from, usable_to) = usable[level];
    let whole_from = lo.max(usable_from).div_ceil(width) * width;
    let end = hi.min(usable_to);
    let whole_to = end - end % width;
    if whole_from >= whole_to {
        return cover(parts, level - 1, lo, hi, usable);
    }
    cover(parts, level - 1, lo, whole_from, usable);
    parts.push((table, whole_from, whole_to));
    cover(parts, level - 1, whole_to, hi, usable);
}

/// The plan for `[from, to)` given the store's state now (`step_ms` as for [`plan`]).
pub fn plan_now(
    conn: &Connection,
    from_ms: u64,
    to_ms: u64,
    now_ms: u64,
    retention: &Retention,
    step_ms: Option<u64>,
) -> rusqlite::Result<Plan> {
    Ok(plan(from_ms, to_ms, Rolled::now(conn, now_ms, retention)?, step_ms))
}

/// `step_ms` (whole minutes) rounded up to whole hours when the range starts before the
/// minutes that may be read (only hour and day rows are kept there), to whole days before the
/// hours that may be (where the disk cap evicted them), and `from_ms` moved back to a multiple
/// of the step.
fn step_from(from_ms: u64, step_ms: u64, rolled: &Rolled) -> (u64, u64) {
    let mut step = step_ms.max(MINUTE_MS);
    if from_ms < rolled.minutes_from {
        step = step.div_ceil(HOUR_MS) * HOUR_MS;
    }
    if from_ms < rolled.hours_from {
        step = step.div_ceil(DAY_MS) * DAY_MS;
    }
    (from_ms - from_ms % step, step)
}

/// The plan and step of a per-step series over `[from_ms, to_ms)` at about `step_ms`, given
/// the store's state now, read once: the step as [`step_from`] rounds it, rows no wider than
/// it, the plan's `from_ms` the series' start (moved back to a multiple of the step).
pub fn series_plan(
    conn: &Connection,
    (from_ms, to_ms): (u64, u64),
    step_ms: u64,
    now_ms: u64,
    retention: &Retention,
) -> rusqlite::Result<(Plan, u64)> {
    let rolled = Rolled::now(conn, now_ms, retention)?;
    let (from_ms, step) = step_from(from_ms, step_ms, &rolled);
    let mut plan = plan(from_ms, to_ms, rolled, Some(step));
    plan.from_ms = from_ms;
    Ok((plan, step))
}

/// Every series of `kind` merged over the plan: its key (name and tags) and stats.
pub fn range_stats(
    conn: &Connection,
    kind: SeriesKind,
    plan: &Plan,
) -> rusqlite::Result<Vec<(String, RangeStats)>> {
    range_stats_part(conn, kind, plan, (1, 0))
}

/// [`range_stats`] read on up to `parts` reader connections at once (one per core, at most
/// the pool's size), each merging the series whose id is `i` modulo `parts`: the merging of
/// sketch bins, not SQLite, is what a long range over many series spends its time on.
pub fn range_stats_parallel(
    readers: &Readers,
    kind: SeriesKind,
    plan: &Plan,
) -> rusqlite::Result<Vec<(String, RangeStats)>> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let parts = cores.clamp(1, readers.keep) as i64;
    if parts == 1 {
        return readers.with(|c| range_stats(c, kind, plan));
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..parts)
            .map(|i| {
                scope.spawn(move || readers.with(|c| range_stats_part(c, kind, plan, (parts, i))))
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        Ok(all)
    })
}

/// The series of `kind` whose id is `part.1` modulo `part.0`.
fn range_stats_part(
    conn: &Connection,
    kind: SeriesKind,
    plan: &Plan,
    (parts, part): (i64, i64),
) -> rusqlite::Result<Vec<(String, RangeStats)>> {
    let mut by_series: HashMap<i64, (String, RangeStats)> = HashMap::new();
    let mut rollup = crate::server::stats::Rollup::default();
    for &(table, lo, hi) in &plan.parts {
        let sql = format!(
            "SELECT t.series, s.name, s.tags, t.count, t.errors, t.sum_ms, t.min_ms, t.max_ms, \
             t.bins, t.error_sum_ms FROM {table} t JOIN series s ON s.id = t.series \
             WHERE t.at_ms >= ?1 AND t.at_ms < ?2 AND s.kind = ?3 AND s.id % ?4 = ?5"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![lo as i64, hi as i64, kind.code(), parts, part])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            if !rollup_into(row, 3, &mut rollup)? {
                continue;
            }
            let entry = match by_series.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let (name, tags): (String, String) = (row.get(1)?, row.get(2)?);
                    e.insert((tags::join(&name, &tags), RangeStats::default()))
                }
            };
            entry.1.add(&rollup);
        }
    }
    Ok(by_series.into_values().collect())
}

/// Calls `f(at_ms, key, rollup)` for every stored row of a series of `kind` over the plan
/// (minute, hour or day rows), oldest first; the key (name and tags) is built once per series.
pub fn scan_timings(
    conn: &Connection,
    kind: SeriesKind,
    plan: &Plan,
    mut f: impl FnMut(u64, &str, &Rollup),
) -> rusqlite::Result<()> {
    let mut keys: HashMap<i64, String> = HashMap::new();
    let mut rollup = Rollup::default();
    for &(table, lo, hi) in &plan.parts {
        let sql = format!(
            "SELECT t.series, s.name, s.tags, t.count, t.errors, t.sum_ms, t.min_ms, t.max_ms, \
             t.bins, t.error_sum_ms, t.at_ms FROM {table} t JOIN series s ON s.id = t.series \
             WHERE t.at_ms >= ?1 AND t.at_ms < ?2 AND s.kind = ?3 ORDER BY t.at_ms"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![lo as i64, hi as i64, kind.code()])?;
        while let Some(row) = rows.next()? {
            if !rollup_into(row, 3, &mut rollup)? {
                continue;
            }
            let id: i64 = row.get(0)?;
            let at = row.get::<_, i64>(10)?.max(0) as u64;
            let key = match keys.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let (name, tags): (String, String) = (row.get(1)?, row.get(2)?);
                    e.insert(tags::join(&name, &tags))
                }
            };
            f(at, key, &rollup);
        }
    }
    Ok(())
}

/// Calls `f(at_ms, key, count, errors)` for every stored row of a series of `kind` over the
/// plan, like [`scan_timings`] but without reading the sketch bins.
pub fn scan_counts(
    conn: &Connection,
    kind: SeriesKind,
    plan: &Plan,
    mut f: impl FnMut(u64, &str, u64, u64),
) -> rusqlite::Result<()> {
    let mut keys: HashMap<i64, String> = HashMap::new();
    for &(table, lo, hi) in &plan.parts {
        let sql = format!(
            "SELECT t.series, s.name, s.tags, t.count, t.errors, t.at_ms FROM {table} t \
             JOIN series s ON s.id = t.series WHERE t.at_ms >= ?1 AND t.at_ms < ?2 AND s.kind = ?3"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![lo as i64, hi as i64, kind.code()])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let (count, errors, at): (i64, i64, i64) = (row.get(3)?, row.get(4)?, row.get(5)?);
            let key = match keys.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let (name, tags): (String, String) = (row.get(1)?, row.get(2)?);
                    e.insert(tags::join(&name, &tags))
                }
            };
            f(at.max(0) as u64, key, count.max(0) as u64, errors.max(0) as u64);
        }
    }
    Ok(())
}

/// The ids of the series of `name` (one per tag set) whose key `keep` accepts.
fn series_ids(
    conn: &Connection,
    kind: SeriesKind,
    name: &str,
    keep: impl Fn(&str) -> bool,
) -> rusqlite::Result<Vec<i64>> {
    Ok(series_ids_grouped(conn, kind, name, |key| keep(key).then_some(()))?
        .into_iter()
        .map(|(id, ())| id)
        .collect())
}

/// The ids of the series of `name` that `group` puts in a group, with their group.
fn series_ids_grouped<G>(
    conn: &Connection,
    kind: SeriesKind,
    name: &str,
    group: impl Fn(&str) -> Option<G>,
) -> rusqlite::Result<Vec<(i64, G)>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, tags FROM series WHERE kind = ?1 AND name = ?2")?;
    let rows = stmt.query_map(params![kind.code(), name], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut ids = Vec::new();
    for row in rows {
        let (id, tags) = row?;
        if let Some(g) = group(&tags::join(name, &tags)) {
            ids.push((id, g));
        }
    }
    Ok(ids)
}

/// The series of `name` whose keys `keep` accepts, merged per `step_ms` (a multiple of the
/// rows' width) over the plan; `None` when no such series was ever stored.
pub fn series_points(
    conn: &Connection,
    kind: SeriesKind,
    name: &str,
    keep: impl Fn(&str) -> bool,
    plan: &Plan,
    step_ms: u64,
) -> rusqlite::Result<Option<Vec<SeriesPoint>>> {
    Ok(series_points_grouped(conn, kind, name, |key| keep(key).then_some(()), plan, step_ms)?
        .map(|mut groups| groups.remove(&()).unwrap_or_default()))
}

/// The series of `name` merged per group (`group` puts a key in one, or leaves it out) and
/// per `step_ms` over the plan; groups without samples there are absent; `None` when no
/// series of a group was ever stored.
pub fn series_points_grouped<G: Ord + Clone>(
    conn: &Connection,
    kind: SeriesKind,
    name: &str,
    group: impl Fn(&str) -> Option<G>,
    plan: &Plan,
    step_ms: u64,
) -> rusqlite::Result<Option<std::collections::BTreeMap<G, Vec<SeriesPoint>>>> {
    let ids = series_ids_grouped(conn, kind, name, group)?;
    if ids.is_empty() {
        return Ok(None);
    }
    let mut steps: std::collections::BTreeMap<(G, u64), RangeStats> = Default::default();
    for ((id, g), &(table, lo, hi)) in
        ids.iter().flat_map(|id| plan.parts.iter().map(move |p| (id, p)))
    {
        let sql = format!(
            "SELECT at_ms, count, errors, sum_ms, min_ms, max_ms, bins, error_sum_ms FROM {table} \
             WHERE series = ?1 AND at_ms >= ?2 AND at_ms < ?3"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![id, lo as i64, hi as i64])?;
        while let Some(row) = rows.next()? {
            let at = row.get::<_, i64>(0)?.max(0) as u64;
            let Some(rollup) = rollup_from_row(row, 1)? else { continue };
            let slot = plan.from_ms + (at.saturating_sub(plan.from_ms)) / step_ms * step_ms;
            steps.entry((g.clone(), slot)).or_default().add(&rollup);
        }
    }
    let step_min = step_ms as f64 / MINUTE_MS as f64;
    let mut groups: std::collections::BTreeMap<G, Vec<SeriesPoint>> = Default::default();
    for ((g, at_ms), stats) in steps {
        let [p50_ms, p95_ms, p99_ms] = stats.quantiles();
        let (count, errors) = (stats.count(), stats.errors());
        groups.entry(g).or_default().push(SeriesPoint {
            at_ms,
            count,
            errors,
            rate_per_min: count as f64 / step_min,
            error_pct: 100.0 * errors as f64 / count.max(1) as f64,
            p50_ms,
            p95_ms,
            p99_ms,
            max_ms: stats.max_ms(),
        });
    }
    Ok(Some(groups))
}

/// A counter's, gauge's or set's minute values in `[from, to)`, oldest first; `None` when the
/// name was never stored.
pub fn value_points(
    conn: &Connection,
    kind: SeriesKind,
    name: &str,
    from_ms: u64,
    to_ms: u64,
) -> rusqlite::Result<Option<Vec<(u64, f64)>>> {
    let Some(&id) = series_ids(conn, kind, name, |key| !key.contains(tags::TAG_SEP))?.first()
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, value FROM value_minute WHERE series = ?1 AND at_ms >= ?2 AND at_ms < ?3 \
         ORDER BY at_ms",
    )?;
    let rows = stmt.query_map(params![id, from_ms as i64, to_ms as i64], |r| {
        Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, f64>(1)?))
    })?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map(Some)
}

/// The names of the untagged counters, gauges and sets ever stored, by kind then name, at most
/// `limit`.
pub fn value_names(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<(crate::model::values::ValueKind, String)>> {
    use crate::model::values::ValueKind;
    let mut stmt = conn.prepare_cached(
        "SELECT kind, name FROM series WHERE kind IN (?1, ?2, ?3) AND tags = '' \
         ORDER BY kind, name LIMIT ?4",
    )?;
    let codes = ValueKind::ALL.map(|k| SeriesKind::from(k).code());
    let rows = stmt.query_map(
        params![codes[0], codes[1], codes[2], limit.min(i64::MAX as usize) as i64],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )?;
    let mut names = Vec::new();
    for row in rows {
        let (code, name) = row?;
        if let Some(kind) = ValueKind::ALL.into_iter().find(|k| SeriesKind::from(*k).code() == code)
        {
            names.push((kind, name));
        }
    }
    Ok(names)
}

/// Host history per `step_ms` from `tier` (raw, minute or hour rows; host figures have no day
/// rows, so a day tier reads hours) for the fields at `fields` (indices into [`HOST_FIELDS`]).
pub fn host_points(
    conn: &Connection,
    tier: Tier,
    from_ms: u64,
    to_ms: u64,
    step_ms: u64,
    fields: &[usize],
) -> rusqlite::Result<Vec<HostPoint>> {
    let mut steps: std::collections::BTreeMap<u64, HostRollup> = Default::default();
    let slot = |at: u64| from_ms + at.saturating_sub(from_ms) / step_ms * step_ms;
    // What is not rolled up yet (the current minute, the current hour) comes from the finer
    // tier, so a coarse step still reaches up to now.
    let minutes_to = meta(conn, HOST_MINUTES)?.unwrap_or(0).clamp(from_ms, to_ms);
    let hours_to = meta(conn, HOST_HOURS)?.unwrap_or(0).clamp(from_ms, minutes_to);
    let (raw_from, minute_from) = match tier {
        Tier::Raw => (from_ms, to_ms),
        Tier::Minute | Tier::MinuteAndHour => (minutes_to, from_ms),
        Tier::Hour | Tier::Day | Tier::DayAndFiner => (minutes_to, hours_to),
    };
    if matches!(tier, Tier::Hour | Tier::Day | Tier::DayAndFiner) {
        for (at, rollup) in host_rollups(conn, "host_hour", from_ms, hours_to)? {
            steps.entry(slot(at)).or_default().add_rollup(&rollup);
        }
    }
    for (at, rollup) in host_rollups(conn, "host_minute", minute_from, minutes_to.max(minute_from))?
    {
        steps.entry(slot(at)).or_default().add_rollup(&rollup);
    }
    let columns = HOST_FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT at_ms, {columns} FROM host_raw WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![raw_from as i64, to_ms as i64])?;
    while let Some(row) = rows.next()? {
        let at = row.get::<_, i64>(0)?.max(0) as u64;
        let values: Vec<Option<f64>> =
            (0..HOST_FIELDS.len()).map(|i| row.get(i + 1).ok().flatten()).collect();
        steps.entry(slot(at)).or_default().add_values(&values);
    }
    Ok(steps
        .into_iter()
        .map(|(at_ms, r)| {
            let pick = |f: fn(&FieldRollup) -> f64| {
                fields.iter().map(|&i| r.fields.get(i).copied().flatten().map(|x| f(&x))).collect()
            };
            HostPoint { at_ms, mean: pick(|x| x.mean), min: pick(|x| x.min), max: pick(|x| x.max) }
        })
        .collect())
}

/// The top processes over `[from_ms, to_ms)`: per process name (its processes summed per
/// scan), the mean and peak CPU over the range's scans and the peak memory; the `n` busiest
/// by mean CPU and the `n` largest by peak memory (see [`ProcessSummary`]).
pub fn top_processes(
    conn: &Connection,
    from_ms: u64,
    to_ms: u64,
    n: usize,
) -> rusqlite::Result<TopProcesses> {
    let range = params![from_ms.min(i64::MAX as u64) as i64, to_ms.min(i64::MAX as u64) as i64];
    let scans: i64 = conn
        .prepare_cached(
            "SELECT count(DISTINCT at_ms) FROM host_process WHERE at_ms >= ?1 AND at_ms < ?2",
        )?
        .query_row(range, |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT name, sum(cpu), max(cpu), max(rss), count(*) FROM \
         (SELECT at_ms, name, sum(cpu_pct) AS cpu, sum(rss_bytes) AS rss FROM host_process \
          WHERE at_ms >= ?1 AND at_ms < ?2 GROUP BY at_ms, name) GROUP BY name",
    )?;
    let scans = scans.max(0) as u64;
    let all = stmt
        .query_map(range, |r| {
            let sum: f64 = r.get(1)?;
            Ok(ProcessSummary {
                name: r.get(0)?,
                cpu_mean_pct: round2(sum / scans.max(1) as f64),
                cpu_max_pct: round2(r.get(2)?),
                rss_max_bytes: r.get::<_, i64>(3)?.max(0) as u64,
                scans: r.get::<_, i64>(4)?.max(0) as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (by_cpu, by_memory) = rank_processes(all, n);
    Ok(TopProcesses { from_ms, to_ms, scans, by_cpu, by_memory })
}

/// The `n` busiest (mean CPU, then peak CPU, then name; none without CPU) and the `n`
/// largest (peak memory, then name; none without memory).
pub fn rank_processes(
    mut all: Vec<ProcessSummary>,
    n: usize,
) -> (Vec<ProcessSummary>, Vec<ProcessSummary>) {
    all.sort_by(|a, b| {
        b.cpu_mean_pct
            .total_cmp(&a.cpu_mean_pct)
            .then(b.cpu_max_pct.total_cmp(&a.cpu_max_pct))
            .then_with(|| a.name.cmp(&b.name))
    });
    let by_cpu = all.iter().filter(|p| p.cpu_max_pct > 0.0).take(n).cloned().collect();
    all.sort_by(|a, b| b.rss_max_bytes.cmp(&a.rss_max_bytes).then_with(|| a.name.cmp(&b.name)));
    let by_memory = all.into_iter().filter(|p| p.rss_max_bytes > 0).take(n).collect();
    (by_cpu, by_memory)
}

fn round2(v: f64) -> f64 {
    if v.is_finite() {
        (v * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = HOUR_MS;
    const M: u64 = MINUTE_MS;

    const D: u64 = DAY_MS;

    fn rolled(hours_to: u64, days_to: u64) -> Rolled {
        Rolled { hours_to, days_to, days_from: 0, hours_from: 0, minutes_from: 0 }
    }

    #[test]
    fn whole_rolled_hours_come_from_hour_rows_and_edges_from_minutes() {
        let p = plan(10 * H + 30 * M, 14 * H + 5 * M, rolled(13 * H, 0), None);
        assert_eq!(
            p.parts,
            vec![
                ("timing_minute", 10 * H + 30 * M, 11 * H),
                ("timing_hour", 11 * H, 13 * H),
                ("timing_minute", 13 * H, 14 * H + 5 * M),
            ]
        );
        assert_eq!(p.tier, Tier::MinuteAndHour);
        // Nothing rolled yet: minutes only.
        let p = plan(10 * H, 12 * H, rolled(0, 0), None);
        assert_eq!((p.parts.len(), p.tier), (1, Tier::Minute));
        // Before the minute retention the range widens to whole hours.
        let p = plan(
            10 * H + 30 * M,
            12 * H,
            Rolled { minutes_from: 11 * H, ..rolled(20 * H, 0) },
            None,
        );
        assert_eq!(p.parts, vec![("timing_hour", 10 * H, 12 * H)]);
        assert_eq!((p.from_ms, p.tier), (10 * H, Tier::Hour));
        // A range that also ends there ends at its last whole hour, and says so: the hour it
        // ends in belongs to the range after it (a comparison's other side), never to both.
        let p = plan(
            10 * H + 30 * M,
            12 * H + 30 * M,
            Rolled { minutes_from: 14 * H, ..rolled(20 * H, 0) },
            None,
        );
        assert_eq!(p.parts, vec![("timing_hour", 10 * H, 12 * H)]);
        assert_eq!((p.from_ms, p.to_ms), (10 * H, 12 * H));
        let next = plan(
            12 * H + 30 * M,
            13 * H + 30 * M,
            Rolled { minutes_from: 14 * H, ..rolled(20 * H, 0) },
            None,
        );
        assert_eq!((next.from_ms, next.to_ms), (12 * H, 13 * H));
        // Within one hour: that hour.
        let p = plan(
            10 * H + 30 * M,
            10 * H + 50 * M,
            Rolled { minutes_from: 14 * H, ..rolled(20 * H, 0) },
            None,
        );
        assert_eq!((p.from_ms, p.to_ms), (10 * H, 11 * H));
        // Days where the hours were evicted, at both ends.
        let r = Rolled { hours_from: 2 * D, ..rolled(5 * D, 3 * D) };
        let p = plan(D + 3 * H, D + 9 * H, Rolled { minutes_from: 2 * D, ..r }, None);
        assert_eq!(p.parts, vec![("timing_day", D, 2 * D)]);
        assert_eq!((p.from_ms, p.to_ms, p.tier), (D, 2 * D, Tier::Day));
    }

    #[test]
    fn whole_rolled_days_come_from_day_rows_with_hours_then_minutes_at_the_edges() {
        // Seven days ending mid-hour: five whole days rolled, the rest from hours and minutes.
        let (from, to) = (D + 5 * H + 30 * M, 8 * D + 2 * H + 10 * M);
        let p = plan(from, to, rolled(8 * D + 2 * H, 7 * D), None);
        assert_eq!(
            p.parts,
            vec![
                ("timing_minute", from, D + 6 * H),
                ("timing_hour", D + 6 * H, 2 * D),
                ("timing_day", 2 * D, 7 * D),
                ("timing_hour", 7 * D, 8 * D + 2 * H),
                ("timing_minute", 8 * D + 2 * H, to),
            ]
        );
        assert_eq!((p.from_ms, p.tier), (from, Tier::DayAndFiner));
        // The parts tile the range: no row is read twice or left out.
        for pair in p.parts.windows(2) {
            assert_eq!(pair[0].2, pair[1].1);
        }
        // Whole days only: day rows only.
        let p = plan(2 * D, 4 * D, rolled(5 * D, 5 * D), None);
        assert_eq!((p.parts, p.tier), (vec![("timing_day", 2 * D, 4 * D)], Tier::Day));
        // Days not rolled yet come from hours.
        let p = plan(2 * D, 4 * D, rolled(5 * D, 3 * D), None);
        assert_eq!(p.parts, vec![("timing_day", 2 * D, 3 * D), ("timing_hour", 3 * D, 4 * D)]);
        // A day that began before the hour retention (its row may be gone) comes from hours.
        let r = Rolled { days_from: 2 * D + H, ..rolled(5 * D, 5 * D) };
        let p = plan(2 * D, 4 * D, r, None);
        assert_eq!(p.parts, vec![("timing_hour", 2 * D, 3 * D), ("timing_day", 3 * D, 4 * D)]);
    }

    #[test]
    fn a_series_before_the_minute_retention_steps_by_whole_hours_from_a_whole_step() {
        let r = Retention { raw_hours: 1, minute_days: 1, hour_days: 10 };
        let now = 5 * D;
        let minutes = Rolled { minutes_from: now - r.minute_ms(), ..Default::default() };
        // Inside the minute retention the step is kept and the start aligned to it.
        assert_eq!(step_from(4 * D + 7 * M, 5 * M, &minutes), (4 * D + 5 * M, 5 * M));
        // Before it, only hours and days are kept: the step becomes whole hours.
        assert_eq!(step_from(2 * D + 7 * M, 5 * M, &minutes), (2 * D, H));
        assert_eq!(step_from(2 * D + 7 * H, 2 * H + 1, &minutes), (2 * D + 6 * H, 3 * H));
        // Where the disk cap evicted the hours: whole days.
        assert_eq!(
            step_from(2 * D + 7 * H, 5 * M, &Rolled { hours_from: 3 * D, ..minutes }),
            (2 * D, D)
        );
    }

    #[test]
    fn a_series_reads_only_rows_whose_width_divides_its_step() {
        let r = rolled(10 * D, 10 * D);
        let tables = |step| {
            let p = plan(D, 4 * D, r, Some(step));
            p.parts.iter().map(|p| p.0).collect::<Vec<_>>()
        };
        assert_eq!(tables(M), vec!["timing_minute"]);
        assert_eq!(tables(5 * M), vec!["timing_minute"]);
        assert_eq!(tables(H), vec!["timing_hour"], "a 1-hour step never reads a day row");
        assert_eq!(tables(6 * H), vec!["timing_hour"]);
        assert_eq!(tables(D), vec!["timing_day"]);
        assert_eq!(tables(2 * D), vec!["timing_day"]);
        assert_eq!(plan(D, 4 * D, r, Some(M)).tier, Tier::Minute);
    }
}
