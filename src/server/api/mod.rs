//! The versioned REST API (`/api/v1`) and the live WebSocket route, with one error type that
//! answers `{"error", "field"}` and the right status.

use std::collections::HashMap;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use futures::StreamExt;
use serde::Serialize;

pub mod ops;

use super::live::socket::{run_client, SocketPolicy};
use super::security::require_token;
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

    /// The same error, blaming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
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

/// Routes under `/api/v1` plus `/ws`; merged into the main router. Ingestion sits behind the
/// token when one is configured.
pub fn routes(state: &AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/api/v1/ingest", post(crate::server::ingest::http::ingest))
        .route_layer(middleware::from_fn_with_state(state.token.clone(), require_token));
    Router::new()
        .route("/ws", get(live_socket))
        .route("/api/v1/ws/stats", get(ws_stats))
        .route("/api/v1/operations", get(ops::list))
        .route("/api/v1/operations/{name}", get(ops::detail))
        .route("/api/v1/ingest/stats", get(ops::ingest_stats))
        .route("/api/v1/metrics", get(ops::other_metrics))
        .merge(guarded)
}

/// Gives the layers' plain-text refusals under `/api/` (413 from the body limit, 408 from the
/// timeout) the API's JSON error shape. Installed outside those layers.
pub async fn json_errors(req: axum::extract::Request, next: middleware::Next) -> Response {
    let limit_hint = "request body is too large (see --max-body-bytes)";
    let is_api = req.uri().path().starts_with("/api/v1/");
    let response = next.run(req).await;
    if !is_api {
        return response;
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, limit_hint)
            .with_field("body")
            .into_response(),
        StatusCode::REQUEST_TIMEOUT => {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request timed out").into_response()
        }
        _ => response,
    }
}

/// Read buffer of each live socket.
const SOCKET_READ_BUFFER_BYTES: usize = 4 * 1024;
/// A client whose unsent data grows past this is failed (it stopped reading).
const SOCKET_MAX_WRITE_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Largest message a client may send (they are tiny JSON commands).
const SOCKET_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// `GET /ws[?history=N][&operations=true]`: upgrades to the live stream; 503 beyond `--max-clients`.
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
    let operations = match query.get("operations").map(String::as_str) {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => {
            return Err(ApiError::bad_field("operations", "operations: must be true or false"))
        }
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
    let policy = SocketPolicy { history_limit, operations, ..Default::default() };
    // Small buffers: with thousands of clients, tungstenite's 128 KiB defaults would cost
    // ~130 KiB of memory per client; clients only send tiny control messages.
    let upgrade = upgrade
        .read_buffer_size(SOCKET_READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(SOCKET_MAX_WRITE_BUFFER_BYTES)
        .max_message_size(SOCKET_MAX_MESSAGE_BYTES)
        .max_frame_size(SOCKET_MAX_MESSAGE_BYTES);
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
