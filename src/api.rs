//! Server functions behind the UI (thin: they read the server's state and return model types),
//! under `/rpc/`: a door of their own, apart from the documented `/api/v1` routes that external
//! clients use. Being POSTs, they are same-origin only (`security::check_origin`).

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnError;

use crate::model::live::{LiveSnapshot, Sample};
use crate::model::ops::{OperationDetailView, OperationsView, Window};

/// The latest samples (at most `history`) and operation statistics, for the first render and for
/// polling while the live socket is down.
#[server(prefix = "/rpc", endpoint = "live/snapshot")]
pub async fn get_live_snapshot(history: usize) -> Result<LiveSnapshot, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(state.hub.snapshot(Some(history)))
}

/// Takes a sample now (or, within half an interval of the last one, with the next), broadcasts
/// it to every client and returns it. Rate-limited for the whole server.
#[server(prefix = "/rpc", endpoint = "live/refresh")]
pub async fn refresh_now() -> Result<Sample, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    if !state.limits.refresh.admit() {
        return Err(ServerFnError::new("too many refresh requests: try again in a second"));
    }
    state.collector.sample_now().await.map_err(ServerFnError::new)
}

/// Every operation's statistics over `window`, for the Operations page.
#[server(prefix = "/rpc", endpoint = "operations/list")]
pub async fn get_operations(window: Window) -> Result<OperationsView, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    if !state.limits.queries.admit() {
        return Err(ServerFnError::new("too many statistics queries: try again in a second"));
    }
    let app = std::sync::Arc::clone(&state.app);
    // The store's lock may be held by a burst of StatsD: wait for it off the runtime's workers.
    tokio::task::spawn_blocking(move || {
        let now_ms = crate::server::now_ms();
        let (dropped_by_cap, max_series) = app.budget();
        OperationsView {
            window,
            now_ms,
            relative_error: crate::server::stats::OperationRegistry::RELATIVE_ERROR,
            operations: app.summaries(window, now_ms),
            dropped_by_cap,
            max_series,
        }
    })
    .await
    .map_err(|_| ServerFnError::new("the statistics query failed"))
}

/// One operation's latency over time and distribution; `None` when it has no samples.
#[server(prefix = "/rpc", endpoint = "operations/detail")]
pub async fn get_operation_detail(
    name: String,
    window: Window,
) -> Result<Option<OperationDetailView>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    if !state.limits.queries.admit() {
        return Err(ServerFnError::new("too many statistics queries: try again in a second"));
    }
    let app = std::sync::Arc::clone(&state.app);
    tokio::task::spawn_blocking(move || {
        let now_ms = crate::server::now_ms();
        app.detail(&name, window, now_ms).map(|detail| OperationDetailView {
            window,
            now_ms,
            detail,
        })
    })
    .await
    .map_err(|_| ServerFnError::new("the statistics query failed"))
}
