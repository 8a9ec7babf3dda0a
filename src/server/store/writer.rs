//! The writer thread: the only connection that writes. It applies batches in transactions,
//! keeps the minute rows of the last few minutes in memory (so a delta is merged without a
//! read), and runs maintenance in small steps between messages: rolling closed minutes,
//! hours and days up, expiring old rows, enforcing the disk cap and checkpointing the WAL.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::host::{encode_cores, HostRollup, HOST_FIELDS};
use super::{Batch, Command, StoreConfig, WriterStats};
use crate::model::live::Sample;
use crate::server::collector::processes::ProcessSnapshot;
use crate::server::metrics::tags;
use crate::server::stats::Rollup;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
pub(super) const DAY_MS: u64 = 86_400_000;
/// A minute is rolled into its hour this long after the hour ends (late samples and the last
/// flush are in by then).
const HOUR_GRACE_MS: u64 = 120_000;
/// Host samples of a minute are rolled up this long after it ends.
const MINUTE_GRACE_MS: u64 = 5_000;
/// Minute rows kept in memory for merging deltas (older ones are read back when needed).
const OPEN_MINUTES_MS: u64 = 3 * MINUTE_MS;
/// Rows deleted per statement in maintenance.
const DELETE_BATCH: u64 = 2_000;
const MAINTENANCE_EVERY_MS: u64 = 5_000;
const CHECKPOINT_EVERY_MS: u64 = 30_000;
/// Series without any row left are forgotten this often.
const FORGET_SERIES_EVERY_MS: u64 = 3_600_000;
/// Attempts at a batch before it is dropped and counted.
const ATTEMPTS: u32 = 3;

pub(super) fn spawn(
    conn: Connection,
    rx: Receiver<Command>,
    stats: Arc<WriterStats>,
    config: Arc<StoreConfig>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("vitals-store".into()).spawn(move || {
        let mut writer = Writer {
            conn,
            stats,
            config,
            ids: HashMap::new(),
            open: HashMap::new(),
            last_maintenance_ms: 0,
            last_checkpoint_ms: 0,
            last_forget_ms: 0,
        };
        writer.run(&rx);
    })
}

struct Writer {
    conn: Connection,
    stats: Arc<WriterStats>,
    config: Arc<StoreConfig>,
    ids: HashMap<(i64, Box<str>), i64>,
    /// Recent minute rows by (series, minute start).
    open: HashMap<(i64, u64), Rollup>,
    last_maintenance_ms: u64,
    last_checkpoint_ms: u64,
    last_forget_ms: u64,
}

/// A roll-up (host figures, or operation and event rows): its watermark and the tables it
/// reads and writes.
struct Period {
    mark: &'static str,
    from: &'static str,
    to: &'static str,
}

/// The roll-ups of operation and event rows into hours and into days.
const HOUR_ROLLUP: Period = Period { mark: TIMING_HOURS, from: "timing_minute", to: "timing_hour" };
const DAY_ROLLUP: Period = Period { mark: TIMING_DAYS, from: "timing_hour", to: "timing_day" };
/// The roll-ups of host samples into minutes and into hours.
const HOST_MINUTE_ROLLUP: Period =
    Period { mark: HOST_MINUTES, from: "host_raw", to: "host_minute" };
const HOST_HOUR_ROLLUP: Period = Period { mark: HOST_HOURS, from: "host_minute", to: "host_hour" };

/// Watermarks in `meta`: the first period not rolled up yet.
pub(super) const TIMING_HOURS: &str = "rolled_timing_hours_to";
pub(super) const TIMING_DAYS: &str = "rolled_timing_days_to";
pub(super) const HOST_MINUTES: &str = "rolled_host_minutes_to";
pub(super) const HOST_HOURS: &str = "rolled_host_hours_to";
/// Watermarks in `meta`: operation and event minutes (hours) before this were evicted by the
/// disk cap while the hours (days) that summarise them stay, so queries read those there.
pub(super) const EVICTED_MINUTES: &str = "evicted_timing_minutes_to";
pub(super) const EVICTED_HOURS: &str = "evicted_timing_hours_to";

/// A tier the disk cap evicts from: each table with the watermark below which a coarser table
/// summarises its rows (`None`: nothing coarser) and, for operation and event rows, where
/// their eviction is noted; and the span of its oldest rows evicted at once.
struct CapTier {
    tables: &'static [(&'static str, Option<&'static str>, Option<&'static str>)],
    span: u64,
}

/// Finest first. Process lists have no coarser tier; they go with the raw samples they sit
/// beside. Counter, gauge and set minutes and host hours have none either: they are history no
/// other row holds, and go with the day rows, the oldest day of each first.
const CAP_TIERS: [CapTier; 4] = [
    CapTier {
        tables: &[
            ("host_raw", Some(HOST_MINUTES), None),
            ("host_process", Some(HOST_MINUTES), None),
        ],
        span: 10 * MINUTE_MS,
    },
    CapTier {
        tables: &[
            ("timing_minute", Some(TIMING_HOURS), Some(EVICTED_MINUTES)),
            ("host_minute", Some(HOST_HOURS), None),
        ],
        span: 10 * MINUTE_MS,
    },
    CapTier { tables: &[("timing_hour", Some(TIMING_DAYS), Some(EVICTED_HOURS))], span: HOUR_MS },
    CapTier {
        tables: &[
            ("timing_day", None, None),
            ("value_minute", None, None),
            ("host_hour", None, None),
        ],
        span: DAY_MS,
    },
];

impl Writer {
    fn now(&self) -> u64 {
        (self.config.clock)()
    }

    fn run(&mut self, rx: &Receiver<Command>) {
        loop {
            // Sleeps until the next command or the next maintenance step, whichever is first:
            // an idle store wakes once per step, not on a poll.
            let due = self.last_maintenance_ms + MAINTENANCE_EVERY_MS;
            let wait = Duration::from_millis(
                due.saturating_sub(self.now()).clamp(1, MAINTENANCE_EVERY_MS),
            );
            match rx.recv_timeout(wait) {
                Ok(command) => {
                    self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                    match command {
                        Command::Batch(batch) => self.attempt(|w| w.apply_batch(&batch)),
                        Command::Host(sample) => self.attempt(|w| w.insert_host(&sample)),
                        Command::Processes(snapshot) => {
                            self.attempt(|w| w.insert_processes(&snapshot));
                        }
                        Command::Alerts(writes) => self.attempt(|w| {
                            let tx = w.conn.transaction()?;
                            let rows = super::alerts::apply(&tx, &writes)?;
                            tx.commit()?;
                            Ok(rows)
                        }),
                        Command::Report(write, reply) => {
                            let answer = super::reports::apply(&self.conn, &write);
                            if let Err(e) = &answer {
                                self.note_error(e);
                            }
                            let _ = reply.send(answer.map_err(|e| e.to_string()));
                        }
                        Command::Flush(reply) => {
                            let _ = reply.send(());
                        }
                        Command::Delete(before_ms, reply) => {
                            let _ = reply
                                .send(self.delete_before(before_ms).map_err(|e| e.to_string()));
                        }
                        #[cfg(test)]
                        Command::Exec(sql, reply) => {
                            if let Err(e) = self.conn.execute_batch(&sql) {
                                tracing::warn!(error = %e, "test SQL failed");
                            }
                            let _ = reply.send(());
                        }
                        Command::Maintain(reply) => {
                            let now = self.now();
                            self.last_maintenance_ms = now;
                            if let Err(e) = self.maintain(now) {
                                self.note_error(&e);
                            }
                            let _ = reply.send(());
                        }
                        Command::Stop => {
                            self.checkpoint();
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = self.now();
            if now.saturating_sub(self.last_maintenance_ms) >= MAINTENANCE_EVERY_MS {
                self.last_maintenance_ms = now;
                if let Err(e) = self.maintain(now) {
                    self.note_error(&e);
                }
            }
        }
    }

    /// Runs a write up to [`ATTEMPTS`] times; then drops it and counts.
    fn attempt(&mut self, mut write: impl FnMut(&mut Writer) -> rusqlite::Result<usize>) {
        for attempt in 1..=ATTEMPTS {
            match write(self) {
                Ok(rows) => {
                    let s = &self.stats;
                    s.batches.fetch_add(1, Ordering::Relaxed);
                    s.rows.fetch_add(rows as u64, Ordering::Relaxed);
                    s.last_commit_ms.store(crate::server::now_ms(), Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    self.note_error(&e);
                    if attempt < ATTEMPTS {
                        std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
                    }
                }
            }
        }
        self.stats.dropped_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn note_error(&self, e: &rusqlite::Error) {
        let s = &self.stats;
        s.write_errors.fetch_add(1, Ordering::Relaxed);
        s.last_error_ms.store(crate::server::now_ms(), Ordering::Relaxed);
        if let Ok(mut last) = s.last_error.lock() {
            *last = Some(e.to_string());
        }
        tracing::warn!(error = %e, "The history store could not write.");
    }

    fn apply_batch(&mut self, batch: &Batch) -> rusqlite::Result<usize> {
        let now = self.now();
        let retention = self.config.retention;
        let tx = self.conn.transaction()?;
        // What queries read (see `query::plan`): minutes and hours the disk cap evicted are not
        // made again from a late sample, the rows that summarise them get it.
        let rolled = super::query::Rolled::now(&tx, now, &retention)?;
        let (minute_floor, hour_floor) = (rolled.minutes_from, rolled.days_from);
        let hours_from = hour_floor.max(rolled.hours_from);
        let (rolled_hours_to, rolled_days_to) = (rolled.hours_to, rolled.days_to);
        let mut new_ids: HashMap<(i64, Box<str>), i64> = HashMap::new();
        // The minute rows this batch reaches, merged in memory and each written once.
        let mut merged: HashMap<(i64, u64), Rollup> = HashMap::new();
        // What it adds to hours and days rolled up already (late samples, a backfill): summed
        // per row first, so each such row is read, merged and written once per batch. They stay
        // the exact merge of their minutes (day rows are kept as long as hour rows).
        let mut late: HashMap<(&'static str, i64, u64), Rollup> = HashMap::new();
        for row in &batch.timings {
            let kind = row.kind.code();
            let id = series_id(&tx, &self.ids, &mut new_ids, kind, &row.name)?;
            let at = row.at_ms - row.at_ms % MINUTE_MS;
            if at >= minute_floor {
                let current = match merged.entry((id, at)) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(match self.open.get(&(id, at)) {
                        Some(r) => r.clone(),
                        None => load_rollup(&tx, "timing_minute", id, at)?.unwrap_or_default(),
                    }),
                };
                current.merge(&row.rollup);
            }
            for (table, width, rolled_to, kept_from) in [
                ("timing_hour", HOUR_MS, rolled_hours_to, hours_from),
                ("timing_day", DAY_MS, rolled_days_to, hour_floor),
            ] {
                let period = at - at % width;
                if period < rolled_to && period >= kept_from {
                    late.entry((table, id, period)).or_default().merge(&row.rollup);
                }
            }
        }
        let mut rows = 0;
        for (&(id, at), rollup) in &merged {
            write_rollup(&tx, "timing_minute", id, at, rollup)?;
            rows += 1;
        }
        for ((table, id, period), added) in late {
            let mut current = load_rollup(&tx, table, id, period)?.unwrap_or_default();
            current.merge(&added);
            write_rollup(&tx, table, id, period, &current)?;
            rows += 1;
        }
        for row in &batch.values {
            let id = series_id(&tx, &self.ids, &mut new_ids, row.kind.code(), &row.name)?;
            let at = row.at_ms - row.at_ms % MINUTE_MS;
            if at >= minute_floor && row.value.is_finite() {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO value_minute (series, at_ms, value) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![id, at as i64, row.value])?;
                rows += 1;
            }
        }
        tx.commit()?;
        if self.ids.len() + new_ids.len() > self.config.cached_ids {
            self.ids.clear();
        }
        self.ids.extend(new_ids);
        self.open.extend(merged);
        let keep_from = now.saturating_sub(OPEN_MINUTES_MS);
        self.open.retain(|&(_, at), _| at >= keep_from);
        Ok(rows)
    }

    fn insert_host(&mut self, sample: &Sample) -> rusqlite::Result<usize> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let columns: Vec<&str> = HOST_FIELDS.iter().map(|f| f.name).collect();
            let marks: Vec<String> =
                (0..HOST_FIELDS.len()).map(|i| format!("?{}", i + 5)).collect();
            format!(
                "INSERT OR REPLACE INTO host_raw (at_ms, seq, per_core, current_action, {}) \
                 VALUES (?1, ?2, ?3, ?4, {})",
                columns.join(", "),
                marks.join(", ")
            )
        });
        let mut values: Vec<rusqlite::types::Value> = vec![
            (sample.at_ms as i64).into(),
            (sample.seq as i64).into(),
            encode_cores(&sample.system.per_core_pct).into(),
            sample.actions.current_action.clone().map_or(rusqlite::types::Value::Null, Into::into),
        ];
        for field in HOST_FIELDS {
            values.push(
                (field.get)(sample)
                    .filter(|v| v.is_finite())
                    .map_or(rusqlite::types::Value::Null, rusqlite::types::Value::Real),
            );
        }
        self.conn.prepare_cached(&SQL)?.execute(rusqlite::params_from_iter(values))
    }

    /// One scan's top processes: a row per process, in one transaction.
    fn insert_processes(&mut self, snapshot: &ProcessSnapshot) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO host_process (at_ms, pid, name, cpu_pct, rss_bytes) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for p in &snapshot.processes {
                let cpu = if p.cpu_pct.is_finite() { p.cpu_pct.max(0.0) } else { 0.0 };
                insert.execute(params![
                    snapshot.at_ms as i64,
                    p.pid,
                    p.name,
                    cpu,
                    p.rss_bytes.min(i64::MAX as u64) as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(snapshot.processes.len())
    }

    /// One step of maintenance: roll-ups, retention, disk cap, checkpoint.
    fn maintain(&mut self, now: u64) -> rusqlite::Result<()> {
        let started = Instant::now();
        self.roll_host_minutes(now)?;
        self.roll_host_hours(now)?;
        self.roll_timings(now)?;
        self.expire(now)?;
        self.enforce_disk_cap()?;
        if now.saturating_sub(self.last_forget_ms) >= FORGET_SERIES_EVERY_MS {
            self.last_forget_ms = now;
            self.forget_empty_series()?;
        }
        if now.saturating_sub(self.last_checkpoint_ms) >= CHECKPOINT_EVERY_MS {
            self.last_checkpoint_ms = now;
            self.checkpoint();
        }
        let took = started.elapsed();
        if took > Duration::from_millis(50) {
            tracing::debug!(took_ms = took.as_millis() as u64, "Store maintenance step was slow.");
        }
        Ok(())
    }

    fn checkpoint(&self) {
        if self.conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)").is_ok() {
            self.stats.last_checkpoint_ms.store(crate::server::now_ms(), Ordering::Relaxed);
        }
    }

    /// Rolls closed minutes of raw host samples into minute rows (up to an hour's worth).
    fn roll_host_minutes(&mut self, now: u64) -> rusqlite::Result<()> {
        let complete_to = now.saturating_sub(MINUTE_GRACE_MS);
        self.roll_host(complete_to, &HOST_MINUTE_ROLLUP, MINUTE_MS, 60, host_minute_of)
    }

    /// Rolls closed hours of host minute rows into hour rows (up to a day's worth).
    fn roll_host_hours(&mut self, now: u64) -> rusqlite::Result<()> {
        // An hour is folded only once all its minutes are (after a long downtime the minutes
        // catch up over several steps).
        let minutes_to = meta(&self.conn, HOST_MINUTES)?.unwrap_or(0);
        let complete_to = now.saturating_sub(HOUR_GRACE_MS).min(minutes_to);
        self.roll_host(complete_to, &HOST_HOUR_ROLLUP, HOUR_MS, 24, host_hour_of)
    }

    /// Rolls up to `steps` periods of `period_ms` that end by `complete_to` (the source table
    /// is complete up to there) from one host table into the next, each folded by `fold`,
    /// moving the watermark.
    fn roll_host(
        &mut self,
        complete_to: u64,
        period: &Period,
        period_ms: u64,
        steps: usize,
        fold: impl Fn(&Transaction<'_>, u64) -> rusqlite::Result<HostRollup>,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let Some(mut at) = next_period(&tx, period.mark, period.from, period_ms)? else {
            return Ok(());
        };
        for _ in 0..steps {
            if at + period_ms > complete_to {
                break;
            }
            fold_host(&tx, period, at, &fold)?;
            at += period_ms;
            set_meta(&tx, period.mark, at)?;
        }
        tx.commit()
    }

    /// Rolls the oldest closed hour of timing minutes into hour rows, and the oldest day whose
    /// hours are all rolled into a day row (an hour and a day per step at most).
    fn roll_timings(&mut self, now: u64) -> rusqlite::Result<()> {
        self.roll_timing(&HOUR_ROLLUP, HOUR_MS, now.saturating_sub(HOUR_GRACE_MS))?;
        // A day is folded once it is over and none of its minutes waits for its hour (after a
        // long downtime the hours catch up over several steps, and a new day tier over an old
        // store a day per step). Samples that arrive for it later reach its row as they reach
        // a rolled hour's.
        let pending = next_period(&self.conn, HOUR_ROLLUP.mark, HOUR_ROLLUP.from, HOUR_MS)?;
        let complete_to = pending.unwrap_or(u64::MAX).min(now.saturating_sub(HOUR_GRACE_MS));
        self.roll_timing(&DAY_ROLLUP, DAY_MS, complete_to)
    }

    /// Rolls the oldest period of `period_ms` of `period.from` into `period.to` (each series'
    /// rows merged exactly) if it ends by `complete_to`, moving the watermark.
    fn roll_timing(
        &mut self,
        period: &Period,
        period_ms: u64,
        complete_to: u64,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let Some(at) = next_period(&tx, period.mark, period.from, period_ms)? else {
            return Ok(());
        };
        if at + period_ms > complete_to {
            return Ok(());
        }
        fold_timings(&tx, period, at, period_ms)?;
        set_meta(&tx, period.mark, at + period_ms)?;
        tx.commit()
    }

    /// Deletes rows past their tier's retention, a batch per table per step.
    fn expire(&mut self, now: u64) -> rusqlite::Result<()> {
        let r = self.config.retention;
        let plan = [
            ("host_raw", r.raw_ms()),
            ("host_process", r.raw_ms()),
            ("host_minute", r.minute_ms()),
            ("timing_minute", r.minute_ms()),
            ("value_minute", r.minute_ms()),
            ("host_hour", r.hour_ms()),
            ("timing_hour", r.hour_ms()),
            ("timing_day", r.hour_ms()),
        ];
        let mut deleted = 0;
        for (table, keep_ms) in plan {
            deleted += delete_older(&self.conn, table, now.saturating_sub(keep_ms), DELETE_BATCH)?;
        }
        // Alert history is small: it is kept as long as hour rows.
        deleted +=
            super::alerts::expire(&self.conn, now.saturating_sub(r.hour_ms()), DELETE_BATCH)?;
        self.stats.expired_rows.fetch_add(deleted, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes of pages in use.
    fn used_bytes(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self.conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
        let free: i64 = self.conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        let size: i64 = self.conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok((pages - free).max(0) as u64 * size.max(0) as u64)
    }

    /// Over `--max-disk-mb`: deletes old rows, a few batches per step, then gives the freed
    /// pages back to the file system. Rows that a coarser tier summarises already go first,
    /// finest tier first and oldest first within it, then the oldest days: the past loses its
    /// detail before any sample is lost. Only when nothing else is left do the oldest rows of
    /// the finest tier go, summarised or not, so the cap holds whatever arrives.
    fn enforce_disk_cap(&mut self) -> rusqlite::Result<()> {
        let Some(cap) = self.config.max_disk_bytes else { return Ok(()) };
        let mut evicted = 0;
        for _ in 0..10 {
            if self.used_bytes()? <= cap {
                break;
            }
            let n = match self.evict_summarised()? {
                0 => self.evict_oldest()?,
                n => n,
            };
            if n == 0 {
                break;
            }
            evicted += n;
        }
        if evicted > 0 {
            self.stats.evicted_rows.fetch_add(evicted, Ordering::Relaxed);
            self.conn.execute_batch("PRAGMA incremental_vacuum")?;
        }
        Ok(())
    }

    /// Deletes the oldest span of rows of the finest tier that holds rows summarised by a
    /// coarser one (or of the coarsest), noting how far operation and event rows went; the
    /// rows deleted.
    fn evict_summarised(&mut self) -> rusqlite::Result<u64> {
        for tier in &CAP_TIERS {
            let mut n = 0;
            for &(table, summarised_by, noted) in tier.tables {
                let bound = match summarised_by {
                    Some(mark) => meta(&self.conn, mark)?.unwrap_or(0),
                    None => u64::MAX,
                };
                let Some(oldest) = oldest(&self.conn, table)?.filter(|&o| o < bound) else {
                    continue;
                };
                let cut = oldest.saturating_add(tier.span).min(bound);
                n += delete_older(&self.conn, table, cut, DELETE_BATCH * 5)?;
                if let Some(key) = noted {
                    if cut > meta(&self.conn, key)?.unwrap_or(0) {
                        set_meta(&self.conn, key, cut)?;
                    }
                }
            }
            if n > 0 {
                return Ok(n);
            }
        }
        Ok(0)
    }

    /// Deletes the oldest span of rows of the finest tier that has any; the rows deleted.
    fn evict_oldest(&mut self) -> rusqlite::Result<u64> {
        let has_any = |t: &&CapTier| t.tables.iter().any(|(table, ..)| has_rows(&self.conn, table));
        let Some(tier) = CAP_TIERS.iter().find(has_any) else { return Ok(0) };
        let mut n = 0;
        for &(table, ..) in tier.tables {
            if let Some(oldest) = oldest(&self.conn, table)? {
                n += delete_older(
                    &self.conn,
                    table,
                    oldest.saturating_add(tier.span),
                    DELETE_BATCH * 5,
                )?;
            }
        }
        Ok(n)
    }

    /// Deletes series that no row refers to any more (expired or evicted), so ever-new names
    /// cannot grow the series table without bound.
    fn forget_empty_series(&mut self) -> rusqlite::Result<()> {
        let n = self.conn.execute(
            "DELETE FROM series WHERE id NOT IN (SELECT series FROM timing_minute) \
             AND id NOT IN (SELECT series FROM timing_hour) \
             AND id NOT IN (SELECT series FROM timing_day) \
             AND id NOT IN (SELECT series FROM value_minute)",
            [],
        )?;
        if n > 0 {
            // SQLite may give a forgotten id to the next new series: nothing cached under it
            // may outlive it.
            self.ids.clear();
            self.open.clear();
        }
        Ok(())
    }

    /// Deletes every row of every table older than `before_ms`.
    fn delete_before(&mut self, before_ms: u64) -> rusqlite::Result<u64> {
        let mut total = 0;
        for table in super::schema::COUNTED {
            loop {
                let n = delete_older(&self.conn, table, before_ms, DELETE_BATCH * 5)?;
                total += n;
                if n == 0 {
                    break;
                }
            }
        }
        loop {
            let n = super::alerts::expire(&self.conn, before_ms, DELETE_BATCH * 5)?;
            total += n;
            if n == 0 {
                break;
            }
        }
        // The minute, hour and day that hold the cut lost their rows with their earlier
        // samples, minutes and hours, while their later ones stay: each rolled one is made
        // again from them (finest first), so a summary over it still has them.
        let start = |width: u64| before_ms - before_ms % width;
        let tx = self.conn.transaction()?;
        let (minute, hour, day) = (start(MINUTE_MS), start(HOUR_MS), start(DAY_MS));
        let rolled = |at: u64, mark: &str| -> rusqlite::Result<bool> {
            Ok(at < before_ms && at < meta(&tx, mark)?.unwrap_or(0))
        };
        if rolled(hour, TIMING_HOURS)? {
            fold_timings(&tx, &HOUR_ROLLUP, hour, HOUR_MS)?;
        }
        if rolled(day, TIMING_DAYS)? {
            fold_timings(&tx, &DAY_ROLLUP, day, DAY_MS)?;
        }
        for (at, period, fold) in [
            (minute, &HOST_MINUTE_ROLLUP, host_minute_of as fn(&Transaction<'_>, u64) -> _),
            (hour, &HOST_HOUR_ROLLUP, host_hour_of),
        ] {
            if rolled(at, period.mark)? {
                fold_host(&tx, period, at, fold)?;
            }
        }
        tx.commit()?;
        self.open.retain(|&(_, at), _| at >= before_ms);
        self.forget_empty_series()?;
        self.conn.execute_batch("PRAGMA incremental_vacuum")?;
        Ok(total)
    }
}

/// Writes into `period.to` at `at` each series' rows of `period.from` in `[at, at + period_ms)`,
/// merged exactly.
fn fold_timings(
    tx: &Transaction<'_>,
    period: &Period,
    at: u64,
    period_ms: u64,
) -> rusqlite::Result<()> {
    let mut merged: HashMap<i64, Rollup> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT series, count, errors, sum_ms, min_ms, max_ms, bins, error_sum_ms FROM {} \
             WHERE at_ms >= ?1 AND at_ms < ?2",
            period.from
        ))?;
        let mut rows = stmt.query(params![at as i64, (at + period_ms) as i64])?;
        while let Some(row) = rows.next()? {
            let series: i64 = row.get(0)?;
            if let Some(rollup) = rollup_from_row(row, 1)? {
                merged.entry(series).or_default().merge(&rollup);
            }
        }
    }
    for (series, rollup) in &merged {
        write_rollup(tx, period.to, *series, at, rollup)?;
    }
    Ok(())
}

/// Writes into `period.to` at `at` the host figures `fold` makes of `period.from` there (no row
/// when it holds no sample).
fn fold_host(
    tx: &Transaction<'_>,
    period: &Period,
    at: u64,
    fold: impl Fn(&Transaction<'_>, u64) -> rusqlite::Result<HostRollup>,
) -> rusqlite::Result<()> {
    let rollup = fold(tx, at)?;
    if rollup.samples > 0 {
        write_host_rollup(tx, period.to, at, &rollup)?;
    }
    Ok(())
}

/// The host figures of the raw samples of the minute starting at `at`.
fn host_minute_of(tx: &Transaction<'_>, at: u64) -> rusqlite::Result<HostRollup> {
    static SELECT: LazyLock<String> = LazyLock::new(|| {
        let columns = HOST_FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
        format!("SELECT {columns} FROM host_raw WHERE at_ms >= ?1 AND at_ms < ?2")
    });
    let mut rollup = HostRollup::default();
    let mut stmt = tx.prepare_cached(&SELECT)?;
    let mut rows = stmt.query(params![at as i64, (at + MINUTE_MS) as i64])?;
    while let Some(row) = rows.next()? {
        let values: Vec<Option<f64>> =
            (0..HOST_FIELDS.len()).map(|i| row.get(i).ok().flatten()).collect();
        rollup.add_values(&values);
    }
    Ok(rollup)
}

/// The host figures of the minute rows of the hour starting at `at`.
fn host_hour_of(tx: &Transaction<'_>, at: u64) -> rusqlite::Result<HostRollup> {
    let mut hour = HostRollup::default();
    for minute in super::query::host_rollups(tx, "host_minute", at, at + HOUR_MS)? {
        hour.add_rollup(&minute.1);
    }
    Ok(hour)
}

fn has_rows(conn: &Connection, table: &str) -> bool {
    conn.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), [], |r| r.get::<_, bool>(0))
        .unwrap_or(false)
}

fn oldest(conn: &Connection, table: &str) -> rusqlite::Result<Option<u64>> {
    conn.query_row(&format!("SELECT min(at_ms) FROM {table}"), [], |r| r.get::<_, Option<i64>>(0))
        .map(|v| v.map(|v| v.max(0) as u64))
}

/// Deletes up to `limit` rows of `table` older than `before_ms`; the rows deleted.
fn delete_older(
    conn: &Connection,
    table: &str,
    before_ms: u64,
    limit: u64,
) -> rusqlite::Result<u64> {
    let key = if table.starts_with("host_") { "at_ms" } else { "series, at_ms" };
    let sql = format!(
        "DELETE FROM {table} WHERE ({key}) IN \
         (SELECT {key} FROM {table} WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)"
    );
    let n = conn.prepare_cached(&sql)?.execute(params![before_ms as i64, limit as i64])?;
    Ok(n as u64)
}

pub(super) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<u64>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, i64>(0))
        .optional()
        .map(|v| v.map(|v| v.max(0) as u64))
}

fn set_meta(conn: &Connection, key: &str, value: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value as i64],
    )
    .map(|_| ())
}

/// The first period of `period_ms` not rolled up from `table` yet: the watermark, moved up
/// to the oldest row at or after it (so a long gap is skipped in one step); `None` when the
/// table has nothing left to roll.
fn next_period(
    tx: &Connection,
    key: &str,
    table: &str,
    period_ms: u64,
) -> rusqlite::Result<Option<u64>> {
    let mark = meta(tx, key)?.unwrap_or(0);
    let next: Option<i64> = tx.query_row(
        &format!("SELECT min(at_ms) FROM {table} WHERE at_ms >= ?1"),
        [mark as i64],
        |r| r.get(0),
    )?;
    Ok(next.map(|at| {
        let at = at.max(0) as u64;
        at - at % period_ms
    }))
}

fn series_id(
    tx: &Transaction<'_>,
    cached: &HashMap<(i64, Box<str>), i64>,
    new_ids: &mut HashMap<(i64, Box<str>), i64>,
    kind: i64,
    name: &str,
) -> rusqlite::Result<i64> {
    let key = (kind, Box::<str>::from(name));
    if let Some(&id) = cached.get(&key).or_else(|| new_ids.get(&key)) {
        return Ok(id);
    }
    // `name` is a series key: the name and its tag set are stored apart.
    let (bare, tag_part) = (tags::name_of(name), tags::tags_part(name));
    tx.prepare_cached("INSERT OR IGNORE INTO series (kind, name, tags) VALUES (?1, ?2, ?3)")?
        .execute(params![kind, bare, tag_part])?;
    let id = tx
        .prepare_cached("SELECT id FROM series WHERE kind = ?1 AND name = ?2 AND tags = ?3")?
        .query_row(params![kind, bare, tag_part], |r| r.get(0))?;
    new_ids.insert(key, id);
    Ok(id)
}

/// A rollup read from columns `first..first + 7` (count, errors, sum, min, max, bins, the
/// failures' sum: NULL when unknown, as in rows stored before version 9); a row
/// whose bins cannot be read is skipped (and logged) rather than failing the whole query.
pub(super) fn rollup_from_row(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<Option<Rollup>> {
    let mut rollup = Rollup::default();
    Ok(rollup_into(row, first, &mut rollup)?.then_some(rollup))
}

/// [`rollup_from_row`] into `rollup`, reusing its allocation and reading the bins in place;
/// false for a row that does not decode (skipped, logged).
pub(super) fn rollup_into(
    row: &rusqlite::Row<'_>,
    first: usize,
    rollup: &mut Rollup,
) -> rusqlite::Result<bool> {
    let count: i64 = row.get(first)?;
    let errors: i64 = row.get(first + 1)?;
    let bins = row.get_ref(first + 5)?.as_blob()?;
    let error_sum_ms: Option<f64> = row.get(first + 6)?;
    let decoded = rollup.refill_from_stored(
        count.max(0) as u64,
        errors.max(0) as u64,
        (row.get(first + 2)?, error_sum_ms),
        row.get(first + 3)?,
        row.get(first + 4)?,
        bins,
    );
    if let Err(e) = decoded {
        tracing::warn!(error = %e, "Skipping an unreadable stored row.");
    }
    Ok(decoded.is_ok())
}

fn load_rollup(
    tx: &Transaction<'_>,
    table: &str,
    series: i64,
    at: u64,
) -> rusqlite::Result<Option<Rollup>> {
    let sql = format!(
        "SELECT count, errors, sum_ms, min_ms, max_ms, bins, error_sum_ms FROM {table} \
         WHERE series = ?1 AND at_ms = ?2"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![series, at as i64])?;
    match rows.next()? {
        Some(row) => rollup_from_row(row, 0),
        None => Ok(None),
    }
}

fn write_rollup(
    tx: &Transaction<'_>,
    table: &str,
    series: i64,
    at: u64,
    r: &Rollup,
) -> rusqlite::Result<()> {
    if r.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT OR REPLACE INTO {table} \
         (series, at_ms, count, errors, sum_ms, min_ms, max_ms, bins, error_sum_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    );
    tx.prepare_cached(&sql)?.execute(params![
        series,
        at as i64,
        r.count.min(i64::MAX as u64) as i64,
        r.errors.min(i64::MAX as u64) as i64,
        r.sum_ms,
        r.min_ms,
        r.max_ms,
        r.encode_bins(),
        r.error_sum_ms
    ])?;
    Ok(())
}

fn write_host_rollup(
    tx: &Transaction<'_>,
    table: &str,
    at: u64,
    r: &HostRollup,
) -> rusqlite::Result<()> {
    let mut columns = vec!["at_ms".to_string(), "samples".to_string()];
    let mut values: Vec<rusqlite::types::Value> =
        vec![(at as i64).into(), (r.samples as i64).into()];
    for (field, rollup) in HOST_FIELDS.iter().zip(&r.fields) {
        let Some(f) = rollup else { continue };
        for (suffix, v) in [("min", f.min), ("max", f.max), ("mean", f.mean), ("last", f.last)] {
            columns.push(format!("{}_{suffix}", field.name));
            values.push(rusqlite::types::Value::Real(v));
        }
    }
    let marks: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT OR REPLACE INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        marks.join(", ")
    );
    tx.execute(&sql, rusqlite::params_from_iter(values))?;
    Ok(())
}
