//! `/api/v1/operations`, `/api/v1/operations/{name}`, `/api/v1/ingest/stats` and
//! `/api/v1/metrics`: what the ingestion pipeline knows, as JSON.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::range;
use crate::model::ops::{
    OperationDetail, OperationSummary, RowsWanted, SortKey, Window, MAX_TABLE_ROWS,
};
use crate::server::error::ApiError;
use crate::server::metrics::tags::Selection;
use crate::server::metrics::{IngestStats, OtherMetrics, TimingKind};
use crate::server::state::AppState;
use crate::server::stats::OperationRegistry;

/// The list answer.
#[derive(Debug, Serialize)]
pub struct OperationList {
    pub window: Window,
    /// Relative error bound of every quantile (0.01 = 1 %).
    pub relative_error: f64,
    pub sort: SortKey,
    /// Operations with samples in the window (before `limit`).
    pub total: usize,
    pub operations: Vec<OperationSummary>,
}

/// The detail answer.
#[derive(Debug, Serialize)]
pub struct OperationDetailAnswer {
    pub window: Window,
    #[serde(flatten)]
    pub detail: OperationDetail,
}

fn window_param(query: &HashMap<String, String>) -> Result<Window, ApiError> {
    match query.get("window") {
        None => Ok(Window::default()),
        Some(w) => Window::parse(w)
            .ok_or_else(|| ApiError::bad_field("window", "window: must be one of 1m, 5m, 15m, 1h")),
    }
}

/// The query's parameters by name (the last of repeated ones) and its tag selection (every
/// `tag=key:value`, and `by=key1,key2`).
pub(super) fn split_query(
    pairs: Vec<(String, String)>,
) -> Result<(HashMap<String, String>, Selection), ApiError> {
    let tags: Vec<&str> =
        pairs.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.as_str()).collect();
    let by = pairs.iter().rev().find(|(k, _)| k == "by").map(|(_, v)| v.as_str());
    let selection = Selection::parse(tags, by).map_err(|e| {
        let field = if e.starts_with("by:") { "by" } else { "tag" };
        ApiError::bad_field(field, e)
    })?;
    Ok((pairs.into_iter().collect(), selection))
}

/// Sorting and paging of a list answer (`sort`, `order`, `limit`; 100 rows unless asked).
fn list_params(query: &HashMap<String, String>) -> Result<RowsWanted, ApiError> {
    let sort = match query.get("sort") {
        None => SortKey::default(),
        Some(s) => SortKey::parse(s).ok_or_else(|| {
            let names: Vec<&str> = SortKey::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::bad_field("sort", format!("sort: must be one of {}", names.join(", ")))
        })?,
    };
    let descending = match query.get("order").map(String::as_str) {
        None => sort.default_descending(),
        Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::bad_field("order", "order: must be asc or desc")),
    };
    let limit = match query.get("limit") {
        None => 100,
        Some(l) => {
            l.parse::<usize>().ok().filter(|l| (1..=MAX_TABLE_ROWS).contains(l)).ok_or_else(
                || {
                    let message = format!("limit: must be between 1 and {MAX_TABLE_ROWS}");
                    ApiError::bad_field("limit", message)
                },
            )?
        }
    };
    Ok(RowsWanted { sort, descending, filter: String::new(), limit })
}

/// `GET /api/v1/operations?window=5m&sort=p95&order=desc&limit=100` (and `/api/v1/events`):
/// the in-memory window; with `from`/`to`, the stored range (see [`super::history`]).
pub async fn list(
    kind: TimingKind,
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let (query, selection) = split_query(pairs)?;
    let params = list_params(&query)?;
    if range::wants_range(&query) {
        let answer = super::history::range_summaries(&state, kind, &query, &selection, |ops| {
            params.apply(ops);
        })
        .await?;
        return Ok(Json(answer).into_response());
    }
    let window = window_param(&query)?;
    state.limits.queries.check()?;
    let app = std::sync::Arc::clone(&state.app);
    // Summarising takes the store's lock, which a burst of StatsD may hold: off the workers.
    let mut operations = tokio::task::spawn_blocking(move || {
        app.summaries_selected(kind, window, crate::server::now_ms(), &selection)
    })
    .await
    .map_err(|_| internal())?;
    let total = params.apply(&mut operations);
    Ok(Json(OperationList {
        window,
        relative_error: OperationRegistry::RELATIVE_ERROR,
        sort: params.sort,
        total,
        operations,
    })
    .into_response())
}

/// `GET /api/v1/operations/{name}?window=5m` (and `/api/v1/events/{name}`).
pub async fn detail(
    kind: TimingKind,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<OperationDetailAnswer>, ApiError> {
    let (query, selection) = split_query(pairs)?;
    let window = window_param(&query)?;
    state.limits.queries.check()?;
    let app = std::sync::Arc::clone(&state.app);
    let wanted = name.clone();
    let found = tokio::task::spawn_blocking(move || {
        app.detail_of(kind, &wanted, window, crate::server::now_ms(), &selection)
    })
    .await
    .map_err(|_| internal())?;
    let what = match kind {
        TimingKind::Operation => "operation",
        TimingKind::Event => "event",
    };
    let detail = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no samples for {what} '{name}' in the last {}", window.as_str()),
        )
        .with_field("name")
    })?;
    Ok(Json(OperationDetailAnswer { window, detail }))
}

pub fn internal() -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the statistics query failed")
}

/// `GET /api/v1/ingest/stats`.
pub async fn ingest_stats(State(state): State<AppState>) -> Json<IngestStats> {
    Json(state.app.ingest_stats())
}

/// `GET /api/v1/metrics`: counters, gauges and sets.
pub async fn other_metrics(State(state): State<AppState>) -> Json<OtherMetrics> {
    Json(state.app.other_metrics(crate::server::now_ms()))
}
