//! The recorder: the store's link to the rest of the server. It subscribes to the tick bus
//! (host samples, and the top processes every 10 s), takes what the metrics store accepted
//! once a second ([`FLUSH_EVERY`]) and hands both to the store's writer; at start-up it
//! refills the in-memory windows and the live history ring from the store, so charts and the
//! 1 h window continue across a restart (the downtime is a gap: no samples were taken).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::bus::Subscription;
use super::live::Hub;
use super::metrics::{AppMetrics, TimingKind};
use super::stats::MAX_FUTURE_MS;
use super::store::{query, SeriesKind, Store, FLUSH_EVERY};

/// What start-up restored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub samples: usize,
    pub minutes: usize,
    /// Sequence number of the newest restored sample (the next tick continues from it).
    pub last_seq: u64,
}

/// Refills the live history (the newest `history` samples within its span) and the in-memory
/// operation and event windows (the last hour of minutes). Blocking.
pub fn restore(
    store: &Store,
    app: &AppMetrics,
    hub: &Hub,
    history: usize,
    now_ms: u64,
) -> Restored {
    let span_ms = (history as u64).saturating_mul(hub.interval_ms());
    let samples = store
        .readers()
        .with(|c| query::recent_host_samples(c, now_ms.saturating_sub(span_ms), history))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Cannot read the stored host samples.");
            Vec::new()
        });
    let last_seq = samples.last().map_or(0, |s| s.seq);
    let restored_samples = samples.len();
    hub.restore_history(samples);
    let minutes = store
        .readers()
        .with(|c| {
            // Not what a clock set ahead in the last run stamped far ahead of this one.
            let from = now_ms.saturating_sub(3_600_000 + 60_000);
            query::recent_timings(c, (from, now_ms.saturating_add(MAX_FUTURE_MS)))
        })
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Cannot read the stored operation minutes.");
            Vec::new()
        });
    let restored_minutes = minutes.len();
    {
        let mut inner = app.lock();
        for (kind, name, at_ms, rollup) in &minutes {
            let kind = match kind {
                SeriesKind::Event => TimingKind::Event,
                _ => TimingKind::Operation,
            };
            inner.restore_minute(kind, name, *at_ms, rollup, now_ms);
        }
    }
    Restored { samples: restored_samples, minutes: restored_minutes, last_seq }
}

/// Hands host ticks and accepted data to the store until shutdown, then flushes the rest.
pub async fn run(
    store: Store,
    app: Arc<AppMetrics>,
    mut ticks: Subscription,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(FLUSH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flushed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            tick = ticks.next() => match tick {
                Some(tick) => {
                    store.write_host(tick.sample.clone());
                    if let Some(processes) = &tick.processes {
                        store.write_processes(processes.clone());
                    }
                    // At 1 Hz sampling the flush rides on the tick: one wake-up (and the writer
                    // one batch after the other) a second instead of two. The timer still
                    // flushes when ticks are slower than FLUSH_EVERY.
                    if flushed.elapsed() + FLUSH_SLACK >= FLUSH_EVERY {
                        flush(&store, &app).await;
                        flushed = tokio::time::Instant::now();
                        every.reset_after(FLUSH_EVERY + FLUSH_SLACK);
                    }
                }
                None => break,
            },
            _ = every.tick() => {
                flush(&store, &app).await;
                flushed = tokio::time::Instant::now();
            }
        }
    }
}

/// A tick this close to the next timed flush flushes instead of it (ticks jitter a little).
const FLUSH_SLACK: Duration = Duration::from_millis(200);

/// Takes what the metrics store accepted since the last flush and queues it for the writer.
pub async fn flush(store: &Store, app: &Arc<AppMetrics>) {
    let app = Arc::clone(app);
    let now = store.now_ms();
    if let Ok(batch) =
        tokio::task::spawn_blocking(move || app.lock().take_for_store(now, false)).await
    {
        store.write(batch);
    }
}

/// The last flush at shutdown: everything accepted is queued and committed (blocking, bounded
/// by `timeout`).
pub fn flush_on_shutdown(store: &Store, app: &AppMetrics, timeout: Duration) {
    let batch = app.lock().take_for_store(store.now_ms(), true);
    store.write(batch);
    if !store.flush(timeout) {
        tracing::warn!("The history store did not finish writing before shutdown.");
    }
    store.close();
}
