//! The versioned REST API (`/api/v1`): thin handlers over the stores, answering JSON and, on
//! error, the one [`ApiError`](crate::server::error::ApiError) shape. `/ws` is routed here too
//! (its handler lives with the live hub in `live::socket`).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{middleware, Json, Router};

pub mod alerts;
pub mod history;
pub mod ops;
pub mod range;
pub mod reports;

use super::auth::require_token;
use super::metrics::TimingKind;
use super::state::AppState;

/// Routes under `/api/v1` plus `/ws`; merged into the main router. Ingestion needs the token
/// whenever one is configured; reads need it under `--auth all` (see `auth`).
pub fn routes(state: &AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/api/v1/ingest", post(crate::server::ingest::http::ingest))
        .route("/api/v1/data", delete(history::delete_data))
        .route("/api/v1/monitor/pause", post(history::pause))
        .route("/api/v1/monitor/resume", post(history::resume))
        .route("/api/v1/alerts/rules", post(alerts::create_rule))
        .route(
            "/api/v1/alerts/rules/{name}",
            axum::routing::put(alerts::replace_rule).delete(alerts::delete_rule),
        )
        .route("/api/v1/alerts/rules/{name}/test", post(alerts::test_rule))
        .route("/api/v1/alerts/silences", post(alerts::create_silence))
        .route("/api/v1/alerts/silences/{id}", delete(alerts::delete_silence))
        .route("/api/v1/alerts/{id}/ack", post(alerts::acknowledge).delete(alerts::acknowledge))
        .route("/api/v1/reports", post(reports::create))
        .route("/api/v1/reports/{id}", delete(reports::delete))
        .route("/api/v1/cache/clear", post(reports::cache_clear))
        .route_layer(middleware::from_fn_with_state(state.auth.clone(), require_token));
    Router::new()
        .merge(otlp_routes(state))
        .route("/ws", get(crate::server::live::socket::upgrade))
        .route("/api/v1/ws/stats", get(ws_stats))
        .route("/api/v1/operations", get(|s, q| ops::list(TimingKind::Operation, s, q)))
        .route(
            "/api/v1/operations/{name}",
            get(|s, p, q| ops::detail(TimingKind::Operation, s, p, q)),
        )
        .route(
            "/api/v1/operations/{name}/series",
            get(|s, p, q| history::series(TimingKind::Operation, s, p, q)),
        )
        .route("/api/v1/events", get(|s, q| ops::list(TimingKind::Event, s, q)))
        .route("/api/v1/events/{name}", get(|s, p, q| ops::detail(TimingKind::Event, s, p, q)))
        .route(
            "/api/v1/events/{name}/series",
            get(|s, p, q| history::series(TimingKind::Event, s, p, q)),
        )
        .route("/api/v1/metrics/{kind}/{name}/series", get(history::value_series))
        .route("/api/v1/host", get(history::current_host))
        .route("/api/v1/history/host", get(history::host))
        .route("/api/v1/host/processes", get(history::host_processes))
        .route("/api/v1/store/stats", get(history::store_stats))
        .route("/api/v1/monitor", get(history::recording))
        .route("/api/v1/ingest/stats", get(ops::ingest_stats))
        .route("/api/v1/alerts", get(alerts::now))
        .route("/api/v1/alerts/rules", get(alerts::rules))
        .route("/api/v1/alerts/rules/{name}", get(alerts::rule))
        .route("/api/v1/alerts/history", get(alerts::history))
        .route("/api/v1/alerts/spans", get(alerts::spans))
        .route("/api/v1/recommendations", get(alerts::recommendations))
        .route("/api/v1/reports", get(reports::list))
        .route("/api/v1/reports/{id}", get(reports::get))
        .route("/api/v1/reports/{id}/sections/{section}", get(reports::section))
        .route("/api/v1/compare", post(reports::compare))
        .route("/api/v1/cache/stats", get(reports::cache_stats))
        .route("/api/v1/metrics", get(ops::other_metrics))
        .route("/metrics", get(crate::server::prometheus::metrics))
        .merge(guarded)
}

/// OTLP/HTTP (`/v1/traces`, `/v1/metrics`): on the main port and on `--otlp-addr`; ingestion,
/// so the token guards it whenever one is configured.
pub fn otlp_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/traces", post(crate::server::ingest::otlp::traces))
        .route("/v1/metrics", post(crate::server::ingest::otlp::metrics))
        .route_layer(middleware::from_fn_with_state(state.auth.clone(), require_token))
}

/// `GET /api/v1/ws/stats`.
async fn ws_stats(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.hub.stats())
}
