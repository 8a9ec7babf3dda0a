//! The stored history over HTTP: range summaries and per-step series of operations and events,
//! host history, the top processes over a range, the current host sample, the store's statistics, and the token-protected
//! admin routes (delete old data, pause and resume recording).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::ops::internal;
use super::range::{self, TimeRange};
use crate::model::history::{
    HostHistory, OperationSeries, OperationsRange, SeriesGroup, Span, Tier, TopProcesses,
};
use crate::model::live::Sample;
use crate::model::ops::OperationSummary;
use crate::model::values::{ValueKind, ValueSeries};
use crate::server::collector::processes::TOP_N;
use crate::server::error::ApiError;
use crate::server::metrics::tags::Selection;
use crate::server::metrics::TimingKind;
use crate::server::state::AppState;
use crate::server::stats::{Group, OperationRegistry, RangeStats};
use crate::server::store::host::{field_index, HOST_FIELDS};
use crate::server::store::{query, Store, StoreStats};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

fn store_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "A history query failed.");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the history query failed")
}

/// Runs a blocking store read off the runtime's workers.
async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    state.limits.queries.check()?;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&store)).await.map_err(|_| internal())?
}

/// The range answer of `GET /api/v1/operations?from=&to=`; `arrange` sorts and cuts it.
pub async fn range_summaries(
    state: &AppState,
    kind: TimingKind,
    query: &HashMap<String, String>,
    selection: &Selection,
    arrange: impl FnOnce(&mut Vec<OperationSummary>),
) -> Result<OperationsRange, ApiError> {
    let selection = selection.clone();
    let store = &state.store;
    let range = range::time_range(query, store.now_ms())?;
    let thresholds = state.app.thresholds();
    let (plan, mut operations, tags) = read(state, move |store| {
        let retention = store.retention();
        let readers = store.readers();
        readers
            .with(|c| {
                query::plan_now(c, range.from_ms, range.to_ms, store.now_ms(), &retention, None)
            })
            .and_then(|plan| {
                let stats = query::range_stats_parallel(readers, kind.series_kind(), &plan)?;
                Ok((plan, stats))
            })
            .map_err(store_failed)
            .map(|(plan, stats)| {
                let span_secs = (plan.to_ms - plan.from_ms).div_ceil(1000);
                let tags =
                    crate::server::metrics::tags::tag_index(stats.iter().map(|(k, _)| k.as_str()));
                let mut groups: std::collections::BTreeMap<Group, RangeStats> = Default::default();
                for (key, s) in &stats {
                    if selection.keeps(key) {
                        groups.entry(selection.group_of(key)).or_default().merge(s);
                    }
                }
                let ops = groups
                    .into_iter()
                    .filter_map(|((name, tags), s)| {
                        let mut summary = s.summary(&name, span_secs, &thresholds)?;
                        summary.tags = tags;
                        Some(summary)
                    })
                    .collect::<Vec<_>>();
                (plan, ops, tags)
            })
    })
    .await?;
    let total = operations.len();
    arrange(&mut operations);
    Ok(OperationsRange {
        from_ms: plan.from_ms,
        to_ms: plan.to_ms,
        tier: plan.tier,
        relative_error: OperationRegistry::RELATIVE_ERROR,
        total,
        operations,
        tags,
    })
}

/// `GET /api/v1/operations/{name}/series?from=&to=&step=&tag=k:v&by=k` (and
/// `/api/v1/events/{name}/series`): the series `tag=` keeps, merged, and with `by=` one series
/// per group as well. Steps are whole minutes; a step of whole hours, or a range older than the
/// minute rows, is served from hour rows (and rounded up to whole hours), a step of whole days
/// from day rows where they are rolled up (see `store::query::plan`).
pub async fn series(
    kind: TimingKind,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<OperationSeries>, ApiError> {
    let (query, selection) = super::ops::split_query(pairs)?;
    let now = state.store.now_ms();
    let range = range::time_range(&query, now)?;
    let asked = range::step(&query, range, MINUTE_MS)?;
    let wanted = name.clone();
    let answer = read(&state, move |store| {
        store
            .readers()
            .with(|c| {
                let retention = store.retention();
                let span = (range.from_ms, range.to_ms);
                let (plan, step) = query::series_plan(c, span, asked, now, &retention)?;
                let series = kind.series_kind();
                let keep = |key: &str| selection.keeps(key);
                let Some(points) = query::series_points(c, series, &wanted, keep, &plan, step)?
                else {
                    return Ok(None);
                };
                let groups = if selection.by.is_empty() {
                    Vec::new()
                } else {
                    let group = |key: &str| keep(key).then(|| selection.group_of(key).1);
                    query::series_points_grouped(c, series, &wanted, group, &plan, step)?
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(tags, points)| SeriesGroup { tags, points })
                        .collect()
                };
                Ok(Some((plan.from_ms, step, plan.tier, points, groups)))
            })
            .map_err(store_failed)
    })
    .await?;
    let Some((from_ms, step, tier, points, groups)) = answer else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("nothing stored for '{name}'"))
            .with_field("name"));
    };
    Ok(Json(OperationSeries {
        name,
        from_ms,
        to_ms: range.to_ms,
        step_ms: step,
        tier,
        relative_error: OperationRegistry::RELATIVE_ERROR,
        points,
        groups,
    }))
}

/// `GET /api/v1/history/host?from=&to=&step=&fields=cpu_pct,memory_pct`: see [`host_history`].
pub async fn host(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<HostHistory>, ApiError> {
    let now = state.store.now_ms();
    let range: TimeRange = range::time_range(&query, now)?;
    let fields: Vec<usize> = match query.get("fields") {
        None => (0..HOST_FIELDS.len()).collect(),
        Some(list) => list
            .split(',')
            .map(|name| {
                field_index(name.trim()).ok_or_else(|| {
                    let known: Vec<&str> = HOST_FIELDS.iter().map(|f| f.name).collect();
                    ApiError::bad_field(
                        "fields",
                        format!("fields: unknown field '{name}' (known: {})", known.join(", ")),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let step = range::step(&query, range, 1000)?;
    host_history(&state, range, step, fields).await.map(Json)
}

/// Host history over `range` at about `asked_ms` per step, for the fields at `fields` (indices
/// into [`HOST_FIELDS`]). Steps under a minute read raw samples (within their retention),
/// whole minutes minute rows, whole hours (or anything older than the minute rows) hour rows;
/// the step is rounded up to the tier's unit. More than [`range::MAX_POINTS`] steps is a 400
/// naming `step`.
pub async fn host_history(
    state: &AppState,
    range: TimeRange,
    asked_ms: u64,
    fields: Vec<usize>,
) -> Result<HostHistory, ApiError> {
    let now = state.store.now_ms();
    let retention = state.store.retention();
    let raw_ok = range.from_ms >= now.saturating_sub(retention.raw_ms());
    let minute_ok = range.from_ms >= now.saturating_sub(retention.minute_ms());
    let (tier, unit) = if asked_ms < MINUTE_MS && raw_ok {
        (Tier::Raw, 1)
    } else if !asked_ms.is_multiple_of(HOUR_MS) && minute_ok {
        (Tier::Minute, MINUTE_MS)
    } else {
        (Tier::Hour, HOUR_MS)
    };
    let step = asked_ms.max(1).div_ceil(unit) * unit;
    if (range.to_ms - range.from_ms).div_ceil(step) > range::MAX_POINTS {
        return Err(ApiError::bad_field("step", "step: would return too many points"));
    }
    let from_ms = range.from_ms - range.from_ms % step;
    let picked = fields.clone();
    let points = read(state, move |store| {
        store
            .readers()
            .with(|c| query::host_points(c, tier, from_ms, range.to_ms, step, &picked))
            .map_err(store_failed)
    })
    .await?;
    Ok(HostHistory {
        from_ms,
        to_ms: range.to_ms,
        step_ms: step,
        tier,
        fields: fields.iter().map(|&i| HOST_FIELDS[i].name.to_string()).collect(),
        points,
    })
}

/// `GET /api/v1/host/processes?from=&to=`: the processes that used the most CPU and memory over
/// the range (default: the last hour), from the top-process scans kept as long as raw host
/// samples; see [`query::top_processes`]. A bad `from` or `to` is a 400 naming it.
pub async fn host_processes(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<TopProcesses>, ApiError> {
    let range = range::time_range(&params, state.store.now_ms())?;
    read(&state, move |store| {
        store
            .readers()
            .with(|c| query::top_processes(c, range.from_ms, range.to_ms, TOP_N))
            .map_err(store_failed)
    })
    .await
    .map(Json)
}

/// `GET /api/v1/metrics/{kind}/{name}/series?from=&to=&step=` with kind `counter`, `gauge` or
/// `set`: see [`value_history`]. Without `step`, the shortest whole-minute step giving at most
/// [`range::DEFAULT_POINTS`] points.
pub async fn value_series(
    State(state): State<AppState>,
    Path((kind, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ValueSeries>, ApiError> {
    let kind = ValueKind::parse(&kind)
        .ok_or_else(|| ApiError::bad_field("kind", "kind: must be counter, gauge or set"))?;
    let range = range::time_range(&query, state.store.now_ms())?;
    let step = range::step(&query, range, MINUTE_MS)?;
    value_history(&state, kind, name, range, step).await.map(Json)
}

/// A counter's, gauge's or set's stored minutes over `range`, folded into steps of `asked_ms`
/// rounded up to whole minutes ([`crate::model::values::fold_steps`]); more than
/// [`range::MAX_POINTS`] steps is a 400 naming `step`, a name never stored a 404.
pub async fn value_history(
    state: &AppState,
    kind: ValueKind,
    name: String,
    range: TimeRange,
    asked_ms: u64,
) -> Result<ValueSeries, ApiError> {
    let step = asked_ms.max(1).div_ceil(MINUTE_MS) * MINUTE_MS;
    if (range.to_ms - range.from_ms).div_ceil(step) > range::MAX_POINTS {
        return Err(ApiError::bad_field("step", "step: would return too many points"));
    }
    let from_ms = range.from_ms - range.from_ms % step;
    let wanted = name.clone();
    let minutes = read(state, move |store| {
        store
            .readers()
            .with(|c| query::value_points(c, kind.into(), &wanted, from_ms, range.to_ms))
            .map_err(store_failed)
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("nothing stored for {} '{name}'", kind.as_str()),
        )
        .with_field("name")
    })?;
    Ok(ValueSeries {
        kind,
        name,
        from_ms,
        to_ms: range.to_ms,
        step_ms: step,
        points: crate::model::values::fold_steps(kind, &minutes, from_ms, step),
    })
}

/// `GET /api/v1/host`: the latest host sample.
pub async fn current_host(State(state): State<AppState>) -> Result<Json<Sample>, ApiError> {
    state.hub.latest().map(Json).ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no sample has been taken yet")
    })
}

/// `GET /api/v1/store/stats`.
pub async fn store_stats(State(state): State<AppState>) -> Result<Json<StoreStats>, ApiError> {
    read(&state, |store| store.stats().map_err(store_failed)).await.map(Json)
}

#[derive(Serialize)]
pub struct Deleted {
    pub before_ms: u64,
    pub deleted_rows: u64,
}

/// `DELETE /api/v1/data?before=-30d` (token): deletes every stored row older than `before`.
pub async fn delete_data(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Deleted>, ApiError> {
    let text = query
        .get("before")
        .ok_or_else(|| ApiError::bad_field("before", "before: required (a time, e.g. -30d)"))?;
    let before_ms = range::parse_time(text, state.store.now_ms()).ok_or_else(|| {
        ApiError::bad_field(
            "before",
            format!("before: must be Unix ms, RFC 3339 or like -30d (got {text})"),
        )
    })?;
    let store = state.store.clone();
    let deleted_rows = tokio::task::spawn_blocking(move || store.delete_before(before_ms))
        .await
        .map_err(|_| internal())?
        .map_err(store_failed)?;
    Ok(Json(Deleted { before_ms, deleted_rows }))
}

#[derive(Serialize)]
pub struct Recording {
    pub paused: bool,
}

/// `POST /api/v1/monitor/pause` (token): stops recording to the store; live views go on.
pub async fn pause(State(state): State<AppState>) -> Json<Recording> {
    state.store.set_paused(true);
    Json(Recording { paused: true })
}

/// `POST /api/v1/monitor/resume` (token).
pub async fn resume(State(state): State<AppState>) -> Json<Recording> {
    state.store.set_paused(false);
    Json(Recording { paused: false })
}

/// `GET /api/v1/monitor`: whether recording is paused.
pub async fn recording(State(state): State<AppState>) -> Json<Recording> {
    Json(Recording { paused: state.store.is_paused() })
}

/// One name's stored statistics (of the tag sets `selection` keeps) from `from_ms` to `to_ms`
/// as the detail view shows them:
/// summary, latency, throughput and errors over time (60 to 120 points,
/// [`Span::stored_step_secs`]) and histogram; `None` when nothing of it is stored there.
pub async fn stored_detail(
    state: &AppState,
    kind: TimingKind,
    name: String,
    (from_ms, to_ms): (u64, u64),
    selection: Selection,
) -> Result<Option<crate::model::ops::OperationDetail>, ApiError> {
    let now = state.store.now_ms();
    let asked = Span::stored_step_secs(to_ms.saturating_sub(from_ms) / 1000) * 1000;
    let thresholds = state.app.thresholds();
    read(state, move |store| {
        store
            .readers()
            .with(|c| {
                let retention = store.retention();
                // Rows no wider than the step (the summary's plan has day rows in it).
                let (by_step, step) =
                    query::series_plan(c, (from_ms, to_ms), asked, now, &retention)?;
                let plan = query::plan_now(c, by_step.from_ms, to_ms, now, &retention, None)?;
                let mut merged = RangeStats::default();
                for (key, s) in query::range_stats(c, kind.series_kind(), &plan)? {
                    if crate::server::metrics::tags::name_of(&key) == name && selection.keeps(&key)
                    {
                        merged.merge(&s);
                    }
                }
                let span_secs = (plan.to_ms - plan.from_ms).div_ceil(1000);
                let Some(summary) = merged.summary(&name, span_secs, &thresholds) else {
                    return Ok(None);
                };
                let keep = |key: &str| selection.keeps(key);
                let points =
                    query::series_points(c, kind.series_kind(), &name, keep, &by_step, step)?
                        .unwrap_or_default();
                let series = points.iter().map(|p| p.latency(step)).collect();
                Ok(Some(crate::model::ops::OperationDetail {
                    summary,
                    relative_error: OperationRegistry::RELATIVE_ERROR,
                    series,
                    histogram: merged.histogram(),
                }))
            })
            .map_err(store_failed)
    })
    .await
}
