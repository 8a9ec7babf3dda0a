//! The publisher task: turns each collected host sample plus the application's figures into a
//! [`Sample`] and hands it to the tick bus, after the statistics' upkeep for the tick. What the live views show of the application (the
//! actions and events cards, the busiest operations) is decided here, not in the metrics store.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bus::{Tick, TickBus};
use super::collector::Collected;
use super::metrics::{AppMetrics, Inner, QUEUE_ACTIONS, QUEUE_EVENTS};
use crate::model::live::{ActionMetrics, EventMetrics, Sample, OPERATIONS_EVERY_TICKS};
use crate::model::ops::{OperationSummary, Window};

/// The most operations a tick carries (busiest first); the API has them all.
pub const LIVE_OPERATIONS: usize = 200;

/// Publishes until the collector stops or the server shuts down. Ticks are numbered from
/// `last_seq + 1` (the newest restored sample's number, so restored history continues).
pub async fn run(
    bus: TickBus,
    mut collected: mpsc::Receiver<Collected>,
    app: Arc<AppMetrics>,
    last_seq: u64,
    shutdown: CancellationToken,
) {
    let mut seq = last_seq;
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = collected.recv() => next,
        };
        let Some(Collected { metrics, replies, processes }) = next else { return };
        seq += 1;
        let at_ms = crate::server::now_ms();
        let app = Arc::clone(&app);
        let with_operations = seq % OPERATIONS_EVERY_TICKS == 1 || !replies.is_empty();
        // Reading the store may wait for its lock behind a burst of ingestion: off the
        // runtime's workers.
        let read = tokio::task::spawn_blocking(move || {
            let mut inner = app.lock();
            app.upkeep(&mut inner, at_ms);
            let figures = live_figures(&inner, at_ms);
            drop(inner);
            (figures, with_operations.then(|| busiest_operations(&app, at_ms)))
        })
        .await;
        let Ok(((actions, events), operations)) = read else { continue };
        let sample = Sample { at_ms, seq, system: metrics, actions, events };
        bus.publish(Tick { sample: sample.clone(), operations, processes });
        for reply in replies {
            let _ = reply.send(sample.clone());
        }
    }
}

/// What the live stream shows for the application at `now_ms`: the last minute's actions and
/// events, and the queue gauges.
pub fn live_figures(inner: &Inner, now_ms: u64) -> (ActionMetrics, EventMetrics) {
    let ops = inner.operation_totals(Window::M1, now_ms);
    let events = inner.event_totals(Window::M1, now_ms);
    let action_queue = inner.gauge_value(QUEUE_ACTIONS).unwrap_or(0.0);
    let event_queue = inner.gauge_value(QUEUE_EVENTS).unwrap_or(0.0);
    (
        ActionMetrics {
            actions_per_min: ops.rate_per_min,
            avg_duration_ms: ops.mean_ms,
            success_pct: ops.success_pct,
            current_action: inner.current_action().map(str::to_string),
            queue_depth: action_queue,
            error_count: ops.error_count,
        },
        EventMetrics {
            queued: event_queue,
            processed: events.count,
            failed: events.error_count,
            avg_processing_ms: events.mean_ms,
            queue_depth: event_queue,
        },
    )
}

/// The busiest operations over five minutes, at most [`LIVE_OPERATIONS`].
fn busiest_operations(app: &AppMetrics, now_ms: u64) -> Vec<OperationSummary> {
    let mut ops = app.summaries(Window::M5, now_ms);
    ops.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    ops.truncate(LIVE_OPERATIONS);
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::LatencyThresholds;
    use crate::server::metrics::{Limits, Protocol, Timing};

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn live_figures_come_from_operations_events_and_queue_gauges() {
        let metrics = AppMetrics::new(Limits::default(), LatencyThresholds::default(), 0);
        {
            let mut m = metrics.lock();
            for i in 0..10 {
                m.timing(
                    Protocol::Http,
                    Timing::operation("op", 100.0, NOW).failed_if(i == 0),
                    NOW,
                );
            }
            m.timing(Protocol::Http, Timing::event("e", 20.0, NOW).failed_if(true), NOW);
            m.gauge(Protocol::Statsd, QUEUE_ACTIONS, 7.0, false, NOW);
            m.gauge(Protocol::Statsd, QUEUE_ACTIONS, -2.0, true, NOW);
            m.gauge(Protocol::Statsd, QUEUE_EVENTS, 3.0, false, NOW);
            m.set_current_action(Some("export"));
        }
        let (actions, events) = live_figures(&metrics.lock(), NOW);
        assert_eq!(actions.actions_per_min, 10.0);
        assert_eq!(actions.error_count, 1);
        assert!((actions.success_pct.unwrap() - 90.0).abs() < 1e-9);
        assert!((actions.avg_duration_ms - 100.0).abs() < 1e-9);
        assert_eq!(actions.queue_depth, 5.0);
        assert_eq!(actions.current_action.as_deref(), Some("export"));
        assert_eq!((events.processed, events.failed, events.queue_depth), (1, 1, 3.0));
        let stats = metrics.ingest_stats();
        assert_eq!(stats.http.accepted, 11);
        assert_eq!(stats.statsd.accepted, 3);
    }

    #[test]
    fn a_minute_without_actions_has_no_success_rate() {
        let metrics = AppMetrics::new(Limits::default(), LatencyThresholds::default(), 0);
        metrics.lock().timing(Protocol::Http, Timing::operation("op", 1.0, NOW), NOW);
        let (later, _) = live_figures(&metrics.lock(), NOW + 120_000);
        assert_eq!((later.success_pct, later.actions_per_min), (None, 0.0));
    }

    #[test]
    fn right_after_start_the_rate_counts_the_time_really_covered() {
        // Started 10 s ago; 10 samples: 60 per minute, not 10 per minute.
        let metrics = AppMetrics::new(Limits::default(), LatencyThresholds::default(), NOW - 9_000);
        for i in 0..10 {
            metrics.lock().timing(Protocol::Http, Timing::operation("op", 1.0, NOW - i * 900), NOW);
        }
        let (actions, _) = live_figures(&metrics.lock(), NOW);
        assert!((actions.actions_per_min - 60.0).abs() < 1e-9, "{actions:?}");
        let hour = metrics.summaries(Window::H1, NOW);
        assert_eq!(hour[0].span_secs, 10);
        assert!((hour[0].rate_per_min - 60.0).abs() < 1e-9);
    }
}
