//! `/api/v1/operations`, `/api/v1/operations/{name}`, `/api/v1/ingest/stats` and
//! `/api/v1/metrics`: what the ingestion pipeline knows, as JSON.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::model::ops::{sort_operations, OperationDetail, OperationSummary, SortKey, Window};
use crate::server::error::ApiError;
use crate::server::metrics::{IngestStats, OtherMetrics};
use crate::server::state::AppState;
use crate::server::stats::OperationRegistry;

/// Most operations one list answer may hold.
pub const MAX_LIMIT: usize = 10_000;

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

/// `GET /api/v1/operations?window=5m&sort=p95&order=desc&limit=100`.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<OperationList>, ApiError> {
    let window = window_param(&query)?;
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
    let limit =
        match query.get("limit") {
            None => 100,
            Some(l) => l.parse::<usize>().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(
                || ApiError::bad_field("limit", "limit: must be between 1 and 10000"),
            )?,
        };
    state.limits.queries.check()?;
    let app = std::sync::Arc::clone(&state.app);
    // Summarising takes the store's lock, which a burst of StatsD may hold: off the workers.
    let mut operations =
        tokio::task::spawn_blocking(move || app.summaries(window, crate::server::now_ms()))
            .await
            .map_err(|_| internal())?;
    let total = operations.len();
    sort_operations(&mut operations, sort, descending);
    operations.truncate(limit);
    Ok(Json(OperationList {
        window,
        relative_error: OperationRegistry::RELATIVE_ERROR,
        sort,
        total,
        operations,
    }))
}

/// `GET /api/v1/operations/{name}?window=5m`.
pub async fn detail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<OperationDetailAnswer>, ApiError> {
    let window = window_param(&query)?;
    state.limits.queries.check()?;
    let app = std::sync::Arc::clone(&state.app);
    let wanted = name.clone();
    let found =
        tokio::task::spawn_blocking(move || app.detail(&wanted, window, crate::server::now_ms()))
            .await
            .map_err(|_| internal())?;
    let detail = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no samples for operation '{name}' in the last {}", window.as_str()),
        )
        .with_field("name")
    })?;
    Ok(Json(OperationDetailAnswer { window, detail }))
}

fn internal() -> ApiError {
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
