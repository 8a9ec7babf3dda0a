//! Server functions behind the UI (thin: they read the server's state and return model types),
//! under `/rpc/`: a door of their own, apart from the documented `/api/v1` routes that external
//! clients use. Being POSTs, they are same-origin only (`security::check_origin`).

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnError;

use crate::model::history::Span;
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

/// Every operation's statistics over `span` (a live window, or a stored range ending now), for
/// the Operations page.
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
        Span::Stored(secs) => {
            let from = (now_ms.saturating_sub(secs * 1000)).to_string();
            let query = std::collections::HashMap::from([("from".to_string(), from)]);
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
        Span::Stored(secs) => crate::server::api::history::stored_detail(&state, kind, name, secs)
            .await
            .map_err(failed)?,
    };
    Ok(detail.map(|detail| OperationDetailView { span, now_ms, detail }))
}
