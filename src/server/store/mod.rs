//! The history store: one SQLite database (`vitals.db`) in `--data-dir`, the one owner of
//! everything Vitals keeps on disk.
//!
//! - **One writer.** A thread owns the only write connection and applies [`Batch`]es, host
//!   samples and maintenance in transactions; everything reaches it through a bounded channel
//!   ([`QUEUE_CAPACITY`]), so a slow disk can never hold ingestion back: a batch that does not
//!   fit is dropped and counted. Write errors (a full disk) are retried, then the batch is
//!   dropped and counted, and `/health` shows the store degraded.
//! - **Readers** have their own read-only connections (a small pool) and run off the async
//!   runtime (`spawn_blocking`), so queries never wait for the writer (WAL mode).
//! - **Durability.** WAL with `synchronous=NORMAL`: a committed transaction survives the
//!   process being killed. The flusher hands over every second what arrived (operation and
//!   event timings once their second is over, from the live statistics' buckets), and the
//!   writer commits each batch as it comes, so `kill -9` loses at most the current second, the
//!   last [`FLUSH_EVERY`] and one commit (under 3 s; a timing stamped ahead of the clock waits
//!   for its second); SIGTERM flushes everything first.
//! - **Tiers.** Raw host samples, and the top processes every 10 s (`host_process`, kept as
//!   long as raw samples, see [`query::top_processes`]); minute rows (host rollups, operation and event rollups with
//!   sketch bins, counter/gauge/set values); hour rows (exact merges of their minutes); day
//!   rows of operations and events (exact merges of a UTC day's hours, kept as long as hour
//!   rows). Each has its retention ([`Retention`]); `--max-disk-mb` evicts oldest-first from
//!   the finest tier.
//!   Maintenance runs in small steps so no write waits behind it for long.
//!
//! Only one Vitals may use a data directory at a time (`vitals.lock`, an advisory lock).

pub mod alerts;
pub mod host;
pub mod query;
pub mod reports;
pub mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::collector::processes::ProcessSnapshot;
use super::health::Status;
use super::stats::Rollup;
use crate::model::live::Sample;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "vitals.db";
/// File name of the lock inside the data directory.
pub const LOCK_FILE: &str = "vitals.lock";
/// Messages the writer's queue holds before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 64;
/// How often the flusher hands accepted data to the writer.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Read connections kept open.
const READERS: usize = 4;

/// How long each tier is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub raw_hours: u64,
    pub minute_days: u64,
    /// Hour rows, and the day rows rolled up from them.
    pub hour_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { raw_hours: 48, minute_days: 30, hour_days: 400 }
    }
}

impl Retention {
    pub fn raw_ms(&self) -> u64 {
        self.raw_hours.saturating_mul(3_600_000)
    }

    pub fn minute_ms(&self) -> u64 {
        self.minute_days.saturating_mul(86_400_000)
    }

    pub fn hour_ms(&self) -> u64 {
        self.hour_days.saturating_mul(86_400_000)
    }
}

/// Unix ms now; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How to open the store.
#[derive(Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub retention: Retention,
    /// Most bytes the database may hold (pages in use); `None`: unbounded.
    pub max_disk_bytes: Option<u64>,
    /// Series ids the writer keeps in memory; the cache is emptied when it would hold more, so
    /// ever-new names cannot grow it. The server sets it to its cardinality budget
    /// (`--max-series`): every series held live then keeps its id.
    pub cached_ids: usize,
    pub clock: Clock,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            retention: Retention::default(),
            max_disk_bytes: None,
            cached_ids: crate::server::config::DEFAULT_MAX_SERIES,
            clock: Arc::new(crate::server::now_ms),
        }
    }
}

/// Which kind of series a stored row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeriesKind {
    Operation,
    Event,
    Counter,
    Gauge,
    Set,
}

impl From<crate::model::values::ValueKind> for SeriesKind {
    fn from(kind: crate::model::values::ValueKind) -> Self {
        use crate::model::values::ValueKind;
        match kind {
            ValueKind::Counter => SeriesKind::Counter,
            ValueKind::Gauge => SeriesKind::Gauge,
            ValueKind::Set => SeriesKind::Set,
        }
    }
}

impl SeriesKind {
    pub(crate) const fn code(self) -> i64 {
        match self {
            SeriesKind::Operation => schema::kind::OPERATION,
            SeriesKind::Event => schema::kind::EVENT,
            SeriesKind::Counter => schema::kind::COUNTER,
            SeriesKind::Gauge => schema::kind::GAUGE,
            SeriesKind::Set => schema::kind::SET,
        }
    }
}

/// Samples of one operation or event series accepted in one minute since the last flush.
#[derive(Clone, Debug)]
pub struct TimingRow {
    pub kind: SeriesKind,
    pub name: Box<str>,
    /// Start of the minute, Unix ms.
    pub at_ms: u64,
    pub rollup: Rollup,
}

/// A counter's increments in a minute, a gauge's latest value or a set's unique members.
#[derive(Clone, Debug)]
pub struct ValueRow {
    pub kind: SeriesKind,
    pub name: Box<str>,
    pub at_ms: u64,
    pub value: f64,
}

/// What the flusher hands over once a second.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Deltas: added to what the rows already hold.
    pub timings: Vec<TimingRow>,
    /// Values: replace what the rows hold.
    pub values: Vec<ValueRow>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.timings.is_empty() && self.values.is_empty()
    }
}

/// Why the store cannot open; each is one line for the CLI (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "another Vitals is already using the data directory {0} (its vitals.lock is held); stop \
         it or choose another --data-dir"
    )]
    Locked(String),
    #[error("cannot open {path}: {reason}")]
    Io { path: String, reason: String },
    #[error(
        "{0} is not a readable Vitals database (corrupt or another file); move it away to start \
         a new one, or restore it from a backup"
    )]
    Corrupt(String),
    #[error(
        "{path} was written by a newer Vitals (schema version {found}; this one knows up to \
         {known}); run the newer version, or move the file away to start a new one"
    )]
    Newer { path: String, found: usize, known: usize },
    #[error("{0} is read-only; Vitals needs to write its database (fix its permissions)")]
    ReadOnly(String),
}

/// Counters of the writer, shared with `/api/v1/store/stats` and `/health`.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub queued: AtomicUsize,
    pub batches: AtomicU64,
    pub rows: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_errors: AtomicU64,
    pub write_errors: AtomicU64,
    pub last_error_ms: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub last_commit_ms: AtomicU64,
    pub last_checkpoint_ms: AtomicU64,
    pub evicted_rows: AtomicU64,
    pub expired_rows: AtomicU64,
    pub paused: AtomicBool,
}

/// Messages to the writer thread.
enum Command {
    Batch(Batch),
    Host(Box<Sample>),
    /// The top processes of one scan.
    Processes(ProcessSnapshot),
    /// Changes to the alert tables (never refused while recording is paused).
    Alerts(Vec<alerts::AlertWrite>),
    /// A change to the report table, answered (see [`reports::ReportWrite`]).
    Report(reports::ReportWrite, std::sync::mpsc::Sender<Result<u64, String>>),
    /// Replies once everything sent before it is committed.
    Flush(std::sync::mpsc::Sender<()>),
    /// Deletes every row older than the given Unix ms; replies with the rows deleted.
    Delete(u64, std::sync::mpsc::Sender<Result<u64, String>>),
    /// Runs SQL on the writer's connection (tests: e.g. a `max_page_count` to fill the disk).
    #[cfg(test)]
    Exec(String, std::sync::mpsc::Sender<()>),
    /// Runs one maintenance step now and replies.
    Maintain(std::sync::mpsc::Sender<()>),
    /// Commits and ends the writer.
    Stop,
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: SyncSender<Command>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    readers: Arc<query::Readers>,
    stats: Arc<WriterStats>,
    path: Arc<PathBuf>,
    config: Arc<StoreConfig>,
    _lock: Arc<File>,
}

impl Store {
    /// Opens (creating or migrating) the database in `config.data_dir`, which must exist,
    /// and starts the writer thread.
    pub fn open(config: StoreConfig) -> Result<Store, OpenError> {
        let lock = lock_dir(&config.data_dir)?;
        let path = config.data_dir.join(DB_FILE);
        let mut conn = open_write(&path)?;
        migrate(&mut conn, &path)?;
        let readers = query::Readers::new(path.clone(), READERS);
        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        let config = Arc::new(config);
        let handle = writer::spawn(conn, rx, Arc::clone(&stats), Arc::clone(&config))
            .map_err(|e| io_error(&path, &e))?;
        Ok(Store {
            tx,
            writer: Arc::new(Mutex::new(Some(handle))),
            readers: Arc::new(readers),
            stats,
            path: Arc::new(path),
            config,
            _lock: Arc::new(lock),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn retention(&self) -> Retention {
        self.config.retention
    }

    pub fn now_ms(&self) -> u64 {
        (self.config.clock)()
    }

    pub fn readers(&self) -> &query::Readers {
        &self.readers
    }

    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    fn send(&self, command: Command) -> bool {
        if self.stats.paused.load(Ordering::Relaxed) {
            return false;
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(command) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues accepted samples and values; dropped and counted when the queue is full.
    pub fn write(&self, batch: Batch) -> bool {
        batch.is_empty() || self.send(Command::Batch(batch))
    }

    /// Queues changes to the alert tables. Recording being paused does not stop them (rules,
    /// silences and alert history are not recorded metrics); a full queue drops and counts.
    pub fn write_alerts(&self, writes: Vec<alerts::AlertWrite>) -> bool {
        if writes.is_empty() {
            return true;
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Command::Alerts(writes)) {
            Ok(()) => true,
            Err(_) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// [`Self::write_alerts`], waiting for room in the queue rather than dropping: for the
    /// states written at shutdown, which a restart must find.
    pub fn write_alerts_waiting(&self, writes: Vec<alerts::AlertWrite>) -> bool {
        if writes.is_empty() {
            return true;
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.send(Command::Alerts(writes)).is_ok();
        if !sent {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }

    /// Queues one host sample.
    pub fn write_host(&self, sample: Sample) -> bool {
        self.send(Command::Host(Box::new(sample)))
    }

    /// Queues one scan's top processes (refused while recording is paused, like samples).
    pub fn write_processes(&self, snapshot: ProcessSnapshot) -> bool {
        snapshot.processes.is_empty() || self.send(Command::Processes(snapshot))
    }

    /// Waits (blocking) until everything queued before is committed, at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Command::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }

    /// Applies a change to the report table and waits for its answer (blocking; not refused
    /// while recording is paused: reports are not recorded metrics).
    pub fn write_report(&self, write: reports::ReportWrite) -> Result<u64, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(Command::Report(write, tx)).map_err(|_| "the store is closed".to_string())?;
        rx.recv().map_err(|_| "the store is closed".to_string())?
    }

    /// Deletes every row older than `before_ms` (blocking); the rows deleted.
    pub fn delete_before(&self, before_ms: u64) -> Result<u64, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Command::Delete(before_ms, tx))
            .map_err(|_| "the store is closed".to_string())?;
        rx.recv().map_err(|_| "the store is closed".to_string())?
    }

    /// Runs one maintenance step (roll-ups, retention, disk cap) now and waits for it
    /// (blocking); it also runs by itself every few seconds.
    pub fn maintain_now(&self) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.tx.send(Command::Maintain(tx)).is_ok() && rx.recv().is_ok()
    }

    /// Runs `sql` on the writer's connection and waits (tests only).
    #[cfg(test)]
    pub(crate) fn exec_on_writer(&self, sql: &str) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Command::Exec(sql.to_string(), tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Stops or restarts recording (writes are refused while paused).
    pub fn set_paused(&self, paused: bool) {
        self.stats.paused.store(paused, Ordering::Relaxed);
    }

    pub fn is_paused(&self) -> bool {
        self.stats.paused.load(Ordering::Relaxed)
    }

    /// Commits everything queued and stops the writer (blocking). Later writes are dropped.
    pub fn close(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
            if self.tx.send(Command::Stop).is_ok() {
                let _ = handle.join();
            }
        }
    }

    /// The store's line in `/health`.
    pub fn health(&self) -> (Status, String) {
        let now = crate::server::now_ms();
        let s = &self.stats;
        let last_error = s.last_error_ms.load(Ordering::Relaxed);
        if s.paused.load(Ordering::Relaxed) {
            return (Status::Degraded, "recording is paused (POST /api/v1/monitor/resume)".into());
        }
        if last_error > 0 && now.saturating_sub(last_error) < 60_000 {
            let why = s.last_error.lock().map(|e| e.clone()).ok().flatten().unwrap_or_default();
            return (Status::Degraded, format!("write errors in the last minute: {why}"));
        }
        let dropped = s.dropped_full.load(Ordering::Relaxed);
        let detail = format!(
            "{} ok, {} batches written, {} dropped",
            self.path.display(),
            s.batches.load(Ordering::Relaxed),
            dropped + s.dropped_errors.load(Ordering::Relaxed)
        );
        (Status::Ok, detail)
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> OpenError {
    OpenError::Io { path: path.display().to_string(), reason: super::config::io_reason(e) }
}

/// Takes the data directory's advisory lock, or says who holds it.
fn lock_dir(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, &e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error(&path, &e)),
    }
}

fn sqlite_error(path: &Path, e: &rusqlite::Error) -> OpenError {
    let shown = path.display().to_string();
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            OpenError::Corrupt(shown)
        }
        Some(rusqlite::ErrorCode::ReadOnly) => OpenError::ReadOnly(shown),
        Some(rusqlite::ErrorCode::PermissionDenied | rusqlite::ErrorCode::CannotOpen) => {
            match std::fs::metadata(path) {
                Ok(meta) if meta.permissions().readonly() => OpenError::ReadOnly(shown),
                _ => OpenError::Io { path: shown, reason: e.to_string() },
            }
        }
        _ => OpenError::Io { path: shown, reason: e.to_string() },
    }
}

/// The writer's connection: WAL, `synchronous=NORMAL`, incremental vacuum for the disk cap, and
/// recursive triggers, so that the rows `INSERT OR REPLACE` replaces fire the delete triggers
/// that keep `row_count` exact (see [`schema`]).
fn open_write(path: &Path) -> Result<Connection, OpenError> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().readonly() {
            return Err(OpenError::ReadOnly(path.display().to_string()));
        }
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite_error(path, &e))?;
    // auto_vacuum only takes effect before the first table exists (a new file).
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = OFF;
         PRAGMA recursive_triggers = ON;
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| sqlite_error(path, &e))?;
    Ok(conn)
}

/// Brings the schema up to date, refusing a newer one.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let version: usize = conn
        .pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        .map_err(|e| sqlite_error(path, &e))?
        .try_into()
        .unwrap_or(usize::MAX);
    if version > schema::LATEST {
        return Err(OpenError::Newer {
            path: path.display().to_string(),
            found: version,
            known: schema::LATEST,
        });
    }
    // Reading the schema table finds a damaged file before any write does.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))
        .map_err(|e| sqlite_error(path, &e))?;
    let sql = schema::sql();
    schema::migrations(&sql).to_latest(conn).map_err(|e| match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => sqlite_error(path, &err),
        other => OpenError::Io { path: path.display().to_string(), reason: other.to_string() },
    })
}

/// `GET /api/v1/store/stats`.
#[derive(Clone, Debug, Serialize)]
pub struct StoreStats {
    pub path: String,
    #[serde(flatten)]
    pub counters: StoreCounters,
    pub max_disk_bytes: Option<u64>,
    pub paused: bool,
    pub retention: RetentionView,
    pub tiers: Vec<query::TierStats>,
    pub queue_capacity: usize,
    pub last_error: Option<String>,
    pub last_commit_ms: Option<u64>,
    pub last_checkpoint_ms: Option<u64>,
}

/// The store's sizes and the writer's counters: cheap to read (no query), for `/metrics`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StoreCounters {
    pub file_bytes: u64,
    pub wal_bytes: u64,
    pub write_queue: usize,
    pub batches_written: u64,
    pub rows_written: u64,
    pub dropped_queue_full: u64,
    pub dropped_write_errors: u64,
    pub write_errors: u64,
    pub expired_rows: u64,
    pub evicted_rows: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct RetentionView {
    pub raw_hours: u64,
    pub minute_days: u64,
    pub hour_days: u64,
}

impl Store {
    /// Sizes, rows per tier and writer counters (blocking: reads the database).
    pub fn stats(&self) -> Result<StoreStats, String> {
        let tiers = self.readers.with(query::tier_stats).map_err(|e| e.to_string())?;
        let s = &self.stats;
        let opt = |v: u64| (v > 0).then_some(v);
        let r = self.config.retention;
        Ok(StoreStats {
            path: self.path.display().to_string(),
            counters: self.counters(),
            max_disk_bytes: self.config.max_disk_bytes,
            paused: self.is_paused(),
            retention: RetentionView {
                raw_hours: r.raw_hours,
                minute_days: r.minute_days,
                hour_days: r.hour_days,
            },
            tiers,
            queue_capacity: QUEUE_CAPACITY,
            last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
            last_commit_ms: opt(s.last_commit_ms.load(Ordering::Relaxed)),
            last_checkpoint_ms: opt(s.last_checkpoint_ms.load(Ordering::Relaxed)),
        })
    }

    /// Sizes and the writer's counters, without reading the database.
    pub fn counters(&self) -> StoreCounters {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let s = &self.stats;
        StoreCounters {
            file_bytes: size(&self.path),
            wal_bytes: size(&wal),
            write_queue: s.queued.load(Ordering::Relaxed),
            batches_written: s.batches.load(Ordering::Relaxed),
            rows_written: s.rows.load(Ordering::Relaxed),
            dropped_queue_full: s.dropped_full.load(Ordering::Relaxed),
            dropped_write_errors: s.dropped_errors.load(Ordering::Relaxed),
            write_errors: s.write_errors.load(Ordering::Relaxed),
            expired_rows: s.expired_rows.load(Ordering::Relaxed),
            evicted_rows: s.evicted_rows.load(Ordering::Relaxed),
        }
    }
}
