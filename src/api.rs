//! Server functions behind the UI (thin: they read the server's state and return model types).
//! External clients use the documented `/api/v1` routes instead.

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnError;

use crate::model::live::{LiveSnapshot, Sample};
use crate::model::ops::{OperationDetailView, OperationsView, Window};

/// The latest samples (at most `history`) and operation statistics, for the first render and for
/// polling while the live socket is down.
#[server(endpoint = "live/snapshot")]
pub async fn get_live_snapshot(history: usize) -> Result<LiveSnapshot, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(state.hub.snapshot(Some(history)))
}

/// Takes a sample now, broadcasts it to every client and returns it.
#[server(endpoint = "live/refresh")]
pub async fn refresh_now() -> Result<Sample, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    state.collector.sample_now().await.map_err(ServerFnError::new)?;
    state.hub.latest().ok_or_else(|| ServerFnError::new("no sample yet"))
}

/// Every operation's statistics over `window`, for the Operations page.
#[server(endpoint = "operations/list")]
pub async fn get_operations(window: Window) -> Result<OperationsView, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let now_ms = crate::server::now_ms();
    let stats = state.app.ingest_stats();
    Ok(OperationsView {
        window,
        now_ms,
        relative_error: crate::server::stats::OperationRegistry::RELATIVE_ERROR,
        operations: state.app.summaries(window, now_ms),
        dropped_by_cap: stats.statsd.dropped_by_cap + stats.http.dropped_by_cap,
        max_series: stats.max_series,
    })
}

/// One operation's latency over time and distribution; `None` when it has no samples.
#[server(endpoint = "operations/detail")]
pub async fn get_operation_detail(
    name: String,
    window: Window,
) -> Result<Option<OperationDetailView>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let now_ms = crate::server::now_ms();
    Ok(state.app.detail(&name, window, now_ms).map(|detail| OperationDetailView {
        window,
        now_ms,
        detail,
    }))
}
