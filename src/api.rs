//! Server functions behind the UI (thin: they read the server's state and return model types),
//! under `/rpc/`: a door of their own, apart from the documented `/api/v1` routes that external
//! clients use. Being POSTs, they are same-origin only (`security::check_origin`).

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnError;

use crate::model::history::{HostHistory, Span};
use crate::model::live::{LiveSnapshot, Sample};
use crate::model::ops::{OperationDetailView, OperationsView, Timings};

/// The server's registry for a view's timings.
#[cfg(feature = "ssr")]
fn timing_kind(of: Timings) -> crate::server::metrics::TimingKind {
    match of {
        Timings::Operations => crate::server::metrics::TimingKind::Operation,
        Timings::Events => crate::server::metrics::TimingKind::Event,
    }
}

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

/// Every operation's statistics over `span` (a live window or a stored range), for the
/// Operations page.
#[server(prefix = "/rpc", endpoint = "operations/list")]
pub async fn get_operations(of: Timings, span: Span) -> Result<OperationsView, ServerFnError> {
    use crate::server::metrics::tags::Selection;
    let state = crate::server::state::expect_state()?;
    let kind = timing_kind(of);
    let failed = |e: crate::server::error::ApiError| ServerFnError::new(e.error);
    let now_ms = crate::server::now_ms();
    let (dropped_by_cap, max_series) = state.app.budget();
    let operations = match span {
        Span::Live(window) => {
            state.limits.queries.check().map_err(failed)?;
            let app = std::sync::Arc::clone(&state.app);
            // The store's lock may be held by a burst of StatsD: wait off the runtime's workers.
            tokio::task::spawn_blocking(move || app.summaries_of(kind, window, now_ms))
                .await
                .map_err(|_| ServerFnError::new("the statistics query failed"))?
        }
        Span::Stored(_) | Span::Between(..) => {
            let (from, to) = span.bounds(now_ms).unwrap_or_default();
            let query = std::collections::HashMap::from([
                ("from".to_string(), from.to_string()),
                ("to".to_string(), to.to_string()),
            ]);
            crate::server::api::history::range_summaries(
                &state,
                kind,
                &query,
                &Selection::default(),
                |_| {},
            )
            .await
            .map_err(failed)?
            .operations
        }
    };
    Ok(OperationsView {
        of,
        span,
        now_ms,
        relative_error: crate::server::stats::OperationRegistry::RELATIVE_ERROR,
        operations,
        dropped_by_cap,
        max_series,
    })
}

/// One operation's latency over time and distribution over `span`; `None` when it has no
/// samples there.
#[server(prefix = "/rpc", endpoint = "operations/detail")]
pub async fn get_operation_detail(
    of: Timings,
    name: String,
    span: Span,
) -> Result<Option<OperationDetailView>, ServerFnError> {
    use crate::server::metrics::tags::Selection;
    let state = crate::server::state::expect_state()?;
    let kind = timing_kind(of);
    let failed = |e: crate::server::error::ApiError| ServerFnError::new(e.error);
    let now_ms = crate::server::now_ms();
    let detail = match span {
        Span::Live(window) => {
            state.limits.queries.check().map_err(failed)?;
            let app = std::sync::Arc::clone(&state.app);
            tokio::task::spawn_blocking(move || {
                app.detail_of(kind, &name, window, now_ms, &Selection::default())
            })
            .await
            .map_err(|_| ServerFnError::new("the statistics query failed"))?
        }
        Span::Stored(_) | Span::Between(..) => {
            let bounds = span.bounds(now_ms).unwrap_or_default();
            crate::server::api::history::stored_detail(&state, kind, name, bounds)
                .await
                .map_err(failed)?
        }
    };
    Ok(detail.map(|detail| OperationDetailView { span, now_ms, detail }))
}

/// The host fields the Dashboard's charts draw from stored history, in [`HostHistory`] order.
pub const DASHBOARD_FIELDS: [&str; 7] = [
    "cpu_pct",
    "memory_pct",
    "actions_per_min",
    "action_avg_duration_ms",
    "action_queue_depth",
    "events_queued",
    "action_errors",
];

/// Stored host history over `span` (not a live one) for the Dashboard's charts, with no more
/// steps than a chart has columns.
#[server(prefix = "/rpc", endpoint = "history/host")]
pub async fn get_host_history(span: Span) -> Result<HostHistory, ServerFnError> {
    use crate::server::api::range::TimeRange;
    use crate::server::store::host::field_index;
    let state = crate::server::state::expect_state()?;
    let Some((from_ms, to_ms)) = span.bounds(state.store.now_ms()) else {
        return Err(ServerFnError::new("a live span has no stored history"));
    };
    if from_ms >= to_ms {
        return Err(ServerFnError::new("from: must be before to"));
    }
    let fields = DASHBOARD_FIELDS.iter().filter_map(|f| field_index(f)).collect();
    // One step per chart column: no more points than pixels to draw them on.
    let step = (to_ms - from_ms).div_ceil(crate::charts::COLUMNS as u64).max(1000);
    crate::server::api::history::host_history(&state, TimeRange { from_ms, to_ms }, step, fields)
        .await
        .map_err(|e| ServerFnError::new(e.error))
}

/// A custom range typed by a user (Unix ms, RFC 3339, `now` or relative like `-24h`, as the
/// API takes them) as Unix ms, or what is wrong with it, naming the field (an answer, not a
/// failed request: a typo is not a server error).
#[server(prefix = "/rpc", endpoint = "history/resolve")]
pub async fn resolve_range(
    from: String,
    to: String,
) -> Result<Result<(u64, u64), String>, ServerFnError> {
    use crate::server::api::range::time_range;
    let state = crate::server::state::expect_state()?;
    let query =
        std::collections::HashMap::from([("from".to_string(), from), ("to".to_string(), to)]);
    Ok(match time_range(&query, state.store.now_ms()) {
        Err(e) => Err(e.error),
        Ok(r) if (r.to_ms - r.from_ms) / 1000 > crate::model::history::MAX_SPAN_SECS => {
            Err("from: at most 400 days before to".to_string())
        }
        Ok(r) => Ok((r.from_ms, r.to_ms)),
    })
}

/// Whether recording to the history store is paused (`POST /api/v1/monitor/pause`).
#[server(prefix = "/rpc", endpoint = "history/recording")]
pub async fn get_recording_paused() -> Result<bool, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(state.store.is_paused())
}
