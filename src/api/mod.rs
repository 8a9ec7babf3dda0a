//! Server functions behind the UI (thin: they read the server's state and return model types),
//! under `/rpc/`: a door of their own, apart from the documented `/api/v1` routes that external
//! clients use. Being POSTs, they are same-origin only (`security::check_origin`).

mod codec;
pub mod reports;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos::server_fn::error::ServerFnError;

use self::codec::Answer;

use crate::model::history::{HostHistory, Span};
use crate::model::live::{LiveSnapshot, Sample};
use crate::model::ops::{OperationDetailView, OperationsView, RowsWanted, Timings};
use crate::model::tags::Selection;

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
#[server(prefix = "/rpc", endpoint = "live/snapshot", output = Answer)]
pub async fn get_live_snapshot(history: usize) -> Result<LiveSnapshot, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(state.hub.snapshot(Some(history), false))
}

/// Takes a sample now (or, within half an interval of the last one, with the next), broadcasts
/// it to every client and returns it. Rate-limited for the whole server.
#[server(prefix = "/rpc", endpoint = "live/refresh", output = Answer)]
pub async fn refresh_now() -> Result<Sample, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    if !state.limits.refresh.admit() {
        return Err(ServerFnError::new("too many refresh requests: try again in a second"));
    }
    state.collector.sample_now().await.map_err(ServerFnError::new)
}

/// The operations' statistics over `span` (a live window or a stored range) of the series
/// `selection` keeps, grouped as it says, cut to the rows `wanted`, for the Operations page.
/// JSON in: a URL-encoded form drops a selection's empty lists, which then would not decode.
#[server(prefix = "/rpc", endpoint = "operations/list", input = Json, output = Answer)]
pub async fn get_operations(
    of: Timings,
    span: Span,
    selection: Selection,
    wanted: RowsWanted,
) -> Result<OperationsView, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let kind = timing_kind(of);
    let failed = |e: crate::server::error::ApiError| ServerFnError::new(e.error);
    let now_ms = crate::server::now_ms();
    let (dropped_by_cap, max_series) = state.app.budget();
    let memory = state.app.memory_budget();
    let mut total = 0;
    let mut matched = 0;
    let mut arrange = |ops: &mut Vec<_>| {
        total = ops.len();
        matched = wanted.apply(ops);
    };
    let (operations, tags) = match span {
        Span::Live(window) => {
            state.limits.queries.check().map_err(failed)?;
            let app = std::sync::Arc::clone(&state.app);
            let selected = selection.clone();
            // The store's lock may be held by a burst of StatsD: wait off the runtime's workers.
            let (mut ops, tags) = tokio::task::spawn_blocking(move || {
                (app.summaries_selected(kind, window, now_ms, &selected), app.tag_index(kind))
            })
            .await
            .map_err(|_| ServerFnError::new("the statistics query failed"))?;
            arrange(&mut ops);
            (ops, tags)
        }
        Span::Stored(_) | Span::Between(..) => {
            let (from, to) =
                span.checked_bounds(now_ms).map_err(ServerFnError::new)?.unwrap_or_default();
            let query = std::collections::HashMap::from([
                ("from".to_string(), from.to_string()),
                ("to".to_string(), to.to_string()),
            ]);
            let range = crate::server::api::history::range_summaries(
                &state, kind, &query, &selection, arrange,
            )
            .await
            .map_err(failed)?;
            (range.operations, range.tags)
        }
    };
    Ok(OperationsView {
        of,
        span,
        now_ms,
        relative_error: crate::server::stats::OperationRegistry::RELATIVE_ERROR,
        selection,
        wanted,
        operations,
        total,
        matched,
        tags,
        dropped_by_cap,
        max_series,
        statsd_kernel_dropped: state.app.statsd_kernel_dropped(),
        memory,
    })
}

/// One operation's latency over time and distribution over `span`, over the tag sets
/// `selection` keeps (its `by` is ignored: a detail is one group); `None` when it has no
/// samples there.
#[server(prefix = "/rpc", endpoint = "operations/detail", input = Json, output = Answer)]
pub async fn get_operation_detail(
    of: Timings,
    name: String,
    span: Span,
    selection: Selection,
) -> Result<Option<OperationDetailView>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let kind = timing_kind(of);
    let failed = |e: crate::server::error::ApiError| ServerFnError::new(e.error);
    let now_ms = crate::server::now_ms();
    let detail = match span {
        Span::Live(window) => {
            state.limits.queries.check().map_err(failed)?;
            let app = std::sync::Arc::clone(&state.app);
            tokio::task::spawn_blocking(move || {
                app.detail_of(kind, &name, window, now_ms, &selection)
            })
            .await
            .map_err(|_| ServerFnError::new("the statistics query failed"))?
        }
        Span::Stored(_) | Span::Between(..) => {
            let bounds =
                span.checked_bounds(now_ms).map_err(ServerFnError::new)?.unwrap_or_default();
            crate::server::api::history::stored_detail(&state, kind, name, bounds, selection)
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
#[server(prefix = "/rpc", endpoint = "history/host", output = Answer)]
pub async fn get_host_history(span: Span) -> Result<HostHistory, ServerFnError> {
    use crate::server::api::range::TimeRange;
    use crate::server::store::host::field_index;
    let state = crate::server::state::expect_state()?;
    let bounds = span.checked_bounds(state.store.now_ms()).map_err(ServerFnError::new)?;
    let Some((from_ms, to_ms)) = bounds else {
        return Err(ServerFnError::new("a live span has no stored history"));
    };
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
#[server(prefix = "/rpc", endpoint = "history/resolve", output = Answer)]
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
#[server(prefix = "/rpc", endpoint = "history/recording", output = Answer)]
pub async fn get_recording_paused() -> Result<bool, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(state.store.is_paused())
}

/// Every counter, gauge and set: current readings from memory, and the names only the store
/// knows (sent before the server started), for the Values page.
#[server(prefix = "/rpc", endpoint = "values/list", output = Answer)]
pub async fn get_values() -> Result<crate::model::values::ValuesView, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let now_ms = crate::server::now_ms();
    let store = state.store.clone();
    let limit = crate::model::values::MAX_LISTED;
    state.limits.queries.check().map_err(|e| ServerFnError::new(e.error))?;
    let stored = tokio::task::spawn_blocking(move || {
        store.readers().with(|c| crate::server::store::query::value_names(c, limit + 1))
    })
    .await
    .map_err(|_| ServerFnError::new("the values query failed"))?
    .unwrap_or_else(|e| {
        tracing::warn!(error = %e, "Listing stored values failed.");
        Vec::new()
    });
    Ok(state.app.other_metrics(now_ms).listing(now_ms, stored, limit))
}

/// A counter's, gauge's or set's stored history over `span` (not a live one), with no more
/// steps than a chart has columns; `None` when nothing of it is stored.
#[server(prefix = "/rpc", endpoint = "values/history", output = Answer)]
pub async fn get_value_history(
    kind: crate::model::values::ValueKind,
    name: String,
    span: Span,
) -> Result<Option<crate::model::values::ValueSeries>, ServerFnError> {
    use crate::server::api::range::TimeRange;
    let state = crate::server::state::expect_state()?;
    let bounds = span.checked_bounds(state.store.now_ms()).map_err(ServerFnError::new)?;
    let Some((from_ms, to_ms)) = bounds else {
        return Err(ServerFnError::new("a live span has no stored history"));
    };
    let step = (to_ms - from_ms).div_ceil(crate::charts::COLUMNS as u64);
    let range = TimeRange { from_ms, to_ms };
    match crate::server::api::history::value_history(&state, kind, name, range, step).await {
        Ok(series) => Ok(Some(series)),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(ServerFnError::new(e.error)),
    }
}

/// Refuses a change unless the request is signed in (the token, or a session from `/login`)
/// when the server has a token; without one, every same-origin request may change alerts.
#[cfg(feature = "ssr")]
pub(crate) async fn require_signed_in(
    state: &crate::server::state::AppState,
) -> Result<(), ServerFnError> {
    use crate::server::auth::{attempts::Peer, Access};
    let (headers, peer): (axum::http::HeaderMap, Peer) =
        leptos_axum::extract().await.map_err(|e| ServerFnError::new(e.to_string()))?;
    match state.auth.access(&headers, peer) {
        Access::Granted => Ok(()),
        Access::Denied => {
            Err(ServerFnError::new("sign in to make changes: this server needs its token"))
        }
        Access::Limited(refusal) => {
            Err(ServerFnError::new(crate::server::auth::refusal_text(refusal)))
        }
    }
}

/// The alerts now (pending, firing, recovering, recently resolved; the worst
/// [`crate::model::live::LIVE_ALERTS`], as the live stream lists them), the active silences and
/// the receivers' counters, for the Alerts page's first render.
#[server(prefix = "/rpc", endpoint = "alerts/now", output = Answer)]
pub async fn get_alerts_now() -> Result<crate::model::alerts::AlertsNow, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let alerts = std::sync::Arc::clone(&state.alerts);
    let now_ms = crate::server::now_ms();
    // The engine's lock may be held by an evaluation: wait off the runtime's workers.
    let limit = crate::model::live::LIVE_ALERTS;
    tokio::task::spawn_blocking(move || alerts.now_limited(now_ms, limit))
        .await
        .map_err(|_| ServerFnError::new("the alerts query failed"))
}

/// Every rule in force, disabled ones included, by name.
#[server(prefix = "/rpc", endpoint = "alerts/rules", output = Answer)]
pub async fn get_alert_rules() -> Result<crate::model::alerts::RulesView, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(crate::model::alerts::RulesView { rules: state.alerts.rules() })
}

/// Creates (`create`) or replaces a rule; a refused rule is an answer naming its field, not a
/// failed request. Needs sign-in when the server has a token.
#[server(prefix = "/rpc", endpoint = "alerts/rules/put", input = Json, output = Answer)]
pub async fn put_alert_rule(
    rule: crate::model::alerts::Rule,
    create: bool,
) -> Result<Result<crate::model::alerts::Rule, crate::model::alerts::RuleError>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    require_signed_in(&state).await?;
    Ok(state.alerts.put_rule(rule, create).map_err(|e| e.words()))
}

/// Deletes a rule made through the API or the page, or a built-in one (remembered); a rule of
/// the config file is refused. Needs sign-in when the server has a token.
#[server(prefix = "/rpc", endpoint = "alerts/rules/delete", output = Answer)]
pub async fn delete_alert_rule(
    name: String,
) -> Result<Result<(), crate::model::alerts::RuleError>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    require_signed_in(&state).await?;
    Ok(state.alerts.delete_rule(&name).map_err(|e| e.words()))
}

/// When the rule `name` would have gone pending, fired and resolved over the last hour of
/// stored data (as `POST /api/v1/alerts/rules/{name}/test`). Needs sign-in when the server
/// has a token, like the REST route.
#[server(prefix = "/rpc", endpoint = "alerts/rules/test", output = Answer)]
pub async fn test_alert_rule(
    name: String,
) -> Result<crate::model::alerts::RuleTestResult, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    require_signed_in(&state).await?;
    let Some(rule) = state.alerts.rule(&name) else {
        return Err(ServerFnError::new(format!("no rule named {name}")));
    };
    let to_ms = state.store.now_ms();
    let span =
        crate::server::api::range::TimeRange { from_ms: to_ms.saturating_sub(3_600_000), to_ms };
    crate::server::api::alerts::run_test(&state, rule, span)
        .await
        .map_err(|e| ServerFnError::new(e.error))
}

/// Acknowledges (or not) a pending or firing alert until it resolves; false when there is no
/// such alert. Needs sign-in when the server has a token.
#[server(prefix = "/rpc", endpoint = "alerts/ack", output = Answer)]
pub async fn acknowledge_alert(id: String, acknowledged: bool) -> Result<bool, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    require_signed_in(&state).await?;
    Ok(state.alerts.acknowledge(&id, acknowledged))
}

/// Longest silence the page makes: 30 days.
pub const MAX_SILENCE_SECS: u64 = 30 * 86_400;

/// Silences the alerts whose labels match every matcher from now for `duration_secs` (1 s to
/// 30 days); a refused silence is an answer naming its field. Needs sign-in when the server
/// has a token.
#[server(prefix = "/rpc", endpoint = "alerts/silences/add", input = Json, output = Answer)]
pub async fn add_alert_silence(
    matchers: Vec<crate::model::alerts::Matcher>,
    duration_secs: u64,
    comment: String,
) -> Result<Result<crate::model::alerts::Silence, crate::model::alerts::RuleError>, ServerFnError> {
    use crate::model::alerts::{RuleError, Silence};
    let state = crate::server::state::expect_state()?;
    require_signed_in(&state).await?;
    if !(1..=MAX_SILENCE_SECS).contains(&duration_secs) {
        return Ok(Err(RuleError::new("ends_ms", "a silence lasts 1 s to 30 days")));
    }
    let now_ms = crate::server::now_ms();
    let silence = Silence {
        id: 0,
        matchers,
        starts_ms: now_ms,
        ends_ms: now_ms + duration_secs * 1000,
        comment,
        created_by: "Alerts page".to_string(),
    };
    Ok(state.alerts.add_silence(silence, now_ms))
}

/// Ends a silence; false when there is none with `id`. Needs sign-in when the server has a
/// token.
#[server(prefix = "/rpc", endpoint = "alerts/silences/delete", output = Answer)]
pub async fn delete_alert_silence(id: u64) -> Result<bool, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    require_signed_in(&state).await?;
    Ok(state.alerts.delete_silence(id))
}

/// Longest history the page asks for: 400 days, the hour tier's retention.
pub const MAX_HISTORY_HOURS: u64 = 400 * 24;

/// Stored alert transitions of the last `hours` (1 to 9,600), newest first, with their
/// notification attempts: of one rule, one severity, and holding the text `q` (in the rule,
/// series, labels or note) when given; at most 200.
#[server(prefix = "/rpc", endpoint = "alerts/history", input = Json, output = Answer)]
pub async fn get_alert_history(
    rule: Option<String>,
    severity: Option<crate::model::alerts::Severity>,
    q: Option<String>,
    hours: u64,
) -> Result<crate::model::alerts::AlertHistory, ServerFnError> {
    use crate::server::store::alerts::HistoryFilter;
    let state = crate::server::state::expect_state()?;
    let to_ms = state.store.now_ms();
    let from_ms = to_ms.saturating_sub(hours.clamp(1, MAX_HISTORY_HOURS) * 3_600_000);
    let text = |v: Option<String>| {
        v.map(|v| v.trim().chars().take(200).collect::<String>()).filter(|v| !v.is_empty())
    };
    let filter = HistoryFilter {
        from_ms,
        to_ms,
        rule: text(rule),
        severity: severity.map(|s| s.as_str().to_string()),
        q: text(q),
        limit: 200,
    };
    crate::server::api::alerts::query_history(&state, filter)
        .await
        .map_err(|e| ServerFnError::new(e.error))
}

/// When alerts fired over `span`, of the instances whose labels hold every one of `labels`
/// (at most 8; e.g. `("operation", name)`), for the bands the Dashboard and Operations charts
/// draw; a live span covers its last minutes.
#[server(prefix = "/rpc", endpoint = "alerts/spans", input = Json, output = Answer)]
pub async fn get_alert_spans(
    span: Span,
    labels: Vec<(String, String)>,
) -> Result<crate::model::alerts::AlertSpans, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let now_ms = state.store.now_ms();
    let (from_ms, to_ms) = match span {
        Span::Live(window) => (now_ms.saturating_sub(window.secs() * 1000), now_ms),
        _ => span.checked_bounds(now_ms).map_err(ServerFnError::new)?.unwrap_or((now_ms, now_ms)),
    };
    let range = crate::server::api::range::TimeRange {
        from_ms,
        to_ms: to_ms.max(from_ms.saturating_add(1)),
    };
    crate::server::api::alerts::query_spans(&state, range, labels)
        .await
        .map_err(|e| ServerFnError::new(e.error))
}

/// Advice computed from this server's data, each with its evidence (as
/// `GET /api/v1/recommendations`), for the Alerts page.
#[server(prefix = "/rpc", endpoint = "alerts/recommendations", output = Answer)]
pub async fn get_recommendations() -> Result<crate::model::alerts::Recommendations, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    crate::server::api::alerts::compute_recommendations(&state)
        .await
        .map_err(|e| ServerFnError::new(e.error))
}
