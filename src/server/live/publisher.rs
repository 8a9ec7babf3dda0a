//! The publisher task: turns each collected host sample plus the application's figures into a
//! [`Sample`], and hands it to the hub.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::model::live::{ActionMetrics, EventMetrics, Sample, OPERATIONS_EVERY_TICKS};
use crate::model::ops::OperationSummary;
use crate::server::collector::Collected;

/// Where the application's side of a sample comes from (the ingestion pipeline).
pub trait AppSource: Send + Sync {
    /// Actions and events over the last minute, as of `now_ms`.
    fn live_figures(&self, now_ms: u64) -> (ActionMetrics, EventMetrics);
    /// Per-operation statistics for the live views, as of `now_ms`.
    fn operations(&self, now_ms: u64) -> Vec<OperationSummary>;
}

/// Publishes until the collector stops or the server shuts down.
pub async fn run(
    hub: Arc<Hub>,
    mut collected: mpsc::Receiver<Collected>,
    app: Arc<dyn AppSource>,
    shutdown: CancellationToken,
) {
    let mut seq = 0u64;
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = collected.recv() => next,
        };
        let Some(Collected { metrics, reply }) = next else { return };
        seq += 1;
        let at_ms = crate::server::now_ms();
        let (actions, events) = app.live_figures(at_ms);
        let operations =
            (seq % OPERATIONS_EVERY_TICKS == 1 || reply.is_some()).then(|| app.operations(at_ms));
        hub.publish(Sample { at_ms, seq, system: metrics, actions, events }, operations);
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }
}
