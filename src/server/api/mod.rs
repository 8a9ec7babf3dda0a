//! The versioned REST API (`/api/v1`) and the live WebSocket route, with one error type that
//! answers `{"error", "field"}` and the right status.

use std::collections::HashMap;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use serde::Serialize;

use super::live::socket::{run_client, SocketPolicy};
use super::state::AppState;

/// An API error: status, message and the offending field (if one is to blame).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub field: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError { status, error: error.into(), field: None }
    }

    /// A 400 naming `field`.
    pub fn bad_field(field: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, error: error.into(), field: Some(field.into()) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: &self.error, field: self.field.as_deref() };
        (self.status, Json(body)).into_response()
    }
}

/// Routes under `/api/v1` plus `/ws`; merged into the main router.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(live_socket)).route("/api/v1/ws/stats", get(ws_stats))
}

/// `GET /ws[?history=N]`: upgrades to the live stream; 503 beyond `--max-clients`.
async fn live_socket(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let history_limit = match query.get("history") {
        None => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::bad_field("history", "must be a whole number of samples"))?,
        ),
    };
    let Some(permit) = state.hub.admit() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many live clients: the limit is {} (--max-clients)",
                state.hub.max_clients()
            ),
        ));
    };
    let hub = state.hub.clone();
    let shutdown = state.shutdown.clone();
    let policy = SocketPolicy { history_limit, ..Default::default() };
    Ok(upgrade.on_upgrade(move |socket| async move {
        let (sink, stream) = socket.split();
        let ended = run_client(hub, sink, stream, policy, shutdown).await;
        tracing::debug!(?ended, "WebSocket client left.");
        drop(permit);
    }))
}

/// `GET /api/v1/ws/stats`.
async fn ws_stats(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.hub.stats())
}
