//! The store's schema and its forward migrations (rusqlite_migration: the version lives in
//! SQLite's `user_version`, each migration runs once, in order, in a transaction).
//!
//! Migrations are never edited once released: a change is a new migration appended here, and
//! `tests/integration/store.rs` opens a file made by the previous version.
//!
//! Times are Unix milliseconds: raw host rows at their sample, minute and hour rows at the
//! start of their period.

use rusqlite_migration::{Migrations, M};

use super::host::HOST_FIELDS;

/// Kinds of series, as stored in `series.kind`.
pub mod kind {
    pub const OPERATION: i64 = 1;
    pub const EVENT: i64 = 2;
    pub const COUNTER: i64 = 3;
    pub const GAUGE: i64 = 4;
    pub const SET: i64 = 5;
}

/// A table of operation and event rows (minute, hour and day rows have the same shape).
fn timing(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (
             series INTEGER NOT NULL, at_ms INTEGER NOT NULL,
             count INTEGER NOT NULL, errors INTEGER NOT NULL, sum_ms REAL NOT NULL,
             min_ms REAL NOT NULL, max_ms REAL NOT NULL, bins BLOB NOT NULL,
             PRIMARY KEY (series, at_ms)
         ) WITHOUT ROWID;
         CREATE INDEX {table}_at ON {table} (at_ms);"
    )
}

/// Version 1: series, timing minutes and hours, value minutes, host raw rows and rollups.
fn v1() -> String {
    let raw: String = HOST_FIELDS.iter().map(|f| format!(", {} REAL", f.name)).collect();
    let rolled: String = HOST_FIELDS
        .iter()
        .map(|f| {
            let n = f.name;
            format!(", {n}_min REAL, {n}_max REAL, {n}_mean REAL, {n}_last REAL")
        })
        .collect();
    let (minutes, hours) = (timing("timing_minute"), timing("timing_hour"));
    format!(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE series (
             id INTEGER PRIMARY KEY,
             kind INTEGER NOT NULL,
             name TEXT NOT NULL,
             tags TEXT NOT NULL DEFAULT '',
             UNIQUE (kind, name, tags)
         );
         {minutes}
         {hours}
         CREATE TABLE value_minute (
             series INTEGER NOT NULL, at_ms INTEGER NOT NULL, value REAL NOT NULL,
             PRIMARY KEY (series, at_ms)
         ) WITHOUT ROWID;
         CREATE INDEX value_minute_at ON value_minute (at_ms);
         CREATE TABLE host_raw (at_ms INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
             per_core BLOB NOT NULL, current_action TEXT{raw});
         CREATE TABLE host_minute (at_ms INTEGER PRIMARY KEY, samples INTEGER NOT NULL{rolled});
         CREATE TABLE host_hour (at_ms INTEGER PRIMARY KEY, samples INTEGER NOT NULL{rolled});"
    )
}

/// The tables whose rows `row_count` counts since version 2 (frozen: version 2 reads it).
const COUNTED_V2: [&str; 6] =
    ["host_raw", "host_minute", "host_hour", "timing_minute", "timing_hour", "value_minute"];

/// The tables whose rows `row_count` counts (version 5 added `host_process`, version 6
/// `timing_day`).
pub const COUNTED: [&str; 8] = [
    "host_raw",
    "host_minute",
    "host_hour",
    "timing_minute",
    "timing_hour",
    "value_minute",
    "host_process",
    "timing_day",
];

/// `row_count`'s row for table `t` and the triggers that keep it exact.
fn counted(t: &str) -> String {
    format!(
        "INSERT INTO row_count (tbl, rows) SELECT '{t}', count(*) FROM {t};
         CREATE TRIGGER {t}_counted_in AFTER INSERT ON {t} BEGIN
             UPDATE row_count SET rows = rows + 1 WHERE tbl = '{t}'; END;
         CREATE TRIGGER {t}_counted_out AFTER DELETE ON {t} BEGIN
             UPDATE row_count SET rows = rows - 1 WHERE tbl = '{t}'; END;\n"
    )
}

/// Version 2: `row_count`, each data table's number of rows, kept exact by triggers (the
/// writer's connection turns on `recursive_triggers`, so rows replaced by `INSERT OR REPLACE`
/// count as deleted). `count(*)` over a 13M-row store took 0.8 s; this is one read.
fn v2() -> String {
    let mut sql = String::from(
        "CREATE TABLE row_count (tbl TEXT PRIMARY KEY, rows INTEGER NOT NULL) WITHOUT ROWID;\n",
    );
    for t in COUNTED_V2 {
        sql.push_str(&counted(t));
    }
    sql
}

/// Version 3: the alert tables (`store::alerts`): rules made through the API, instance
/// states, the history of transitions and their notification attempts, silences.
fn v3() -> String {
    "CREATE TABLE alert_rule (name TEXT PRIMARY KEY, body TEXT NOT NULL,
         deleted INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL) WITHOUT ROWID;
     CREATE TABLE alert_instance (id TEXT PRIMARY KEY, rule TEXT NOT NULL, series TEXT NOT NULL,
         labels TEXT NOT NULL, state TEXT NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;
     CREATE TABLE alert_event (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL,
         rule TEXT NOT NULL, instance TEXT NOT NULL, series TEXT NOT NULL, labels TEXT NOT NULL,
         from_state TEXT NOT NULL, to_state TEXT NOT NULL, severity TEXT, value REAL,
         threshold REAL, note TEXT NOT NULL);
     CREATE INDEX alert_event_at ON alert_event (at_ms);
     CREATE TABLE alert_notification (event INTEGER NOT NULL, at_ms INTEGER NOT NULL,
         receiver TEXT NOT NULL, attempt INTEGER NOT NULL, outcome TEXT NOT NULL,
         detail TEXT NOT NULL);
     CREATE INDEX alert_notification_event ON alert_notification (event);
     CREATE TABLE alert_silence (id INTEGER PRIMARY KEY, body TEXT NOT NULL,
         ends_ms INTEGER NOT NULL);"
        .to_string()
}

/// Saved reports: what was asked (JSON, `model::reports::ReportSpec`) and, for a closed
/// range, the sections once computed (JSON), so that a report is computed once.
fn v4() -> String {
    "CREATE TABLE report (id INTEGER PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL,
         created_ms INTEGER NOT NULL, size_bytes INTEGER NOT NULL DEFAULT 0, sections TEXT);"
        .to_string()
}

/// Version 5: the top processes of the host (`collector::processes`), one row per process
/// per scan (every 10 s, at most ten processes), kept as long as raw host samples and counted
/// in `row_count`.
fn v5() -> String {
    format!(
        "CREATE TABLE host_process (at_ms INTEGER NOT NULL, pid INTEGER NOT NULL,
             name TEXT NOT NULL, cpu_pct REAL NOT NULL, rss_bytes INTEGER NOT NULL,
             PRIMARY KEY (at_ms, pid)) WITHOUT ROWID;
         {}",
        counted("host_process")
    )
}

/// Version 6: day rows of operations and events (`timing_day`, the exact merge of a UTC day's
/// hour rows), so that a summary over days reads a row per day rather than 24; counted in
/// `row_count`. The writer rolls them up from the oldest hour rows on, a day per step.
fn v6() -> String {
    format!("{}\n{}", timing("timing_day"), counted("timing_day"))
}

/// Version 7: notification attempts indexed by time, so that their expiry (every maintenance
/// step) reads only the rows it deletes rather than the whole table.
fn v7() -> String {
    "CREATE INDEX alert_notification_at ON alert_notification (at_ms);".to_string()
}

/// Version 8: report ids are never given again (`AUTOINCREMENT`). Without it, deleting the
/// newest report freed its id for the next one, and a section of the deleted report computed
/// meanwhile (the cache warmer, a page still loading) was cached for, or saved into, the new
/// report. SQLite cannot add `AUTOINCREMENT` to a table, so the table is made again and its
/// rows, ids included, copied; the next id follows the highest kept (an id deleted before the
/// upgrade may come again: nothing computed for it outlives the restart).
fn v8() -> String {
    "CREATE TABLE report_v8 (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
         spec TEXT NOT NULL, created_ms INTEGER NOT NULL, size_bytes INTEGER NOT NULL DEFAULT 0,
         sections TEXT);
     INSERT INTO report_v8 (id, name, spec, created_ms, size_bytes, sections)
         SELECT id, name, spec, created_ms, size_bytes, sections FROM report;
     DROP TABLE report;
     ALTER TABLE report_v8 RENAME TO report;"
        .to_string()
}

/// Version 9: operation and event rows keep the part of their sum of durations that failed
/// samples took (`error_sum_ms`), so that a range tells whether its failures are fast or
/// slow. Rows stored before hold NULL, read as 0 (unknown).
fn v9() -> String {
    ["timing_minute", "timing_hour", "timing_day"]
        .iter()
        .map(|t| format!("ALTER TABLE {t} ADD COLUMN error_sum_ms REAL;"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The schema version this build writes.
pub const LATEST: usize = 9;

/// Every migration SQL, oldest first (owned: built from the field and table lists).
pub fn sql() -> Vec<String> {
    vec![v1(), v2(), v3(), v4(), v5(), v6(), v7(), v8(), v9()]
}

/// The migrations over `sql` (which must outlive them).
pub fn migrations(sql: &[String]) -> Migrations<'_> {
    Migrations::new(sql.iter().map(|s| M::up(s)).collect())
}
