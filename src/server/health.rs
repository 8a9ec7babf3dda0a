//! `GET /health`: the state of each component, with a 503 when any is down.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::state::AppState;

/// How a component is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Working, with a problem worth knowing (e.g. the UI bundle is missing).
    Degraded,
    Down,
}

/// A component's answer to a health check.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentHealth {
    pub status: Status,
    pub detail: String,
    pub response_time_ms: f64,
}

/// One component's check: cheap, non-blocking, returns its status and a short detail.
pub type Check = Arc<dyn Fn() -> (Status, String) + Send + Sync>;

/// Every component's health check, by name.
#[derive(Clone, Default)]
pub struct HealthRegistry {
    checks: Vec<(&'static str, Check)>,
}

impl HealthRegistry {
    /// Adds a component. Names are the keys of `components` in the response.
    pub fn register(&mut self, name: &'static str, check: Check) {
        self.checks.push((name, check));
    }

    /// Runs every check, timing each.
    pub fn run(&self) -> Vec<(&'static str, ComponentHealth)> {
        self.checks
            .iter()
            .map(|(name, check)| {
                let started = Instant::now();
                let (status, detail) = check();
                let response_time_ms = started.elapsed().as_secs_f64() * 1000.0;
                (*name, ComponentHealth { status, detail, response_time_ms })
            })
            .collect()
    }
}

#[derive(Serialize)]
struct HealthBody {
    status: Status,
    version: &'static str,
    uptime_secs: u64,
    components: serde_json::Map<String, serde_json::Value>,
}

/// Answers 200 when no component is down, else 503; `status` is the worst component status.
pub async fn health(State(state): State<AppState>) -> Response {
    let results = state.health.run();
    let worst =
        results.iter().map(|(_, c)| c.status).fold(Status::Ok, |worst, s| match (worst, s) {
            (Status::Down, _) | (_, Status::Down) => Status::Down,
            (Status::Degraded, _) | (_, Status::Degraded) => Status::Degraded,
            _ => Status::Ok,
        });
    let components = results
        .into_iter()
        .filter_map(|(name, c)| serde_json::to_value(c).ok().map(|v| (name.to_string(), v)))
        .collect();
    let body = HealthBody {
        status: worst,
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started.elapsed().as_secs(),
        components,
    };
    let code = if worst == Status::Down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(body)).into_response()
}
