//! `POST /api/v1/ingest`: a JSON batch of operations, events, gauges and the current action,
//! accepted or rejected whole, with the first bad item named.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{validate_name, Protocol, DEFAULT_EVENT_NAME};
use crate::server::api::ApiError;
use crate::server::state::AppState;

/// One operation timing.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct OperationIn {
    pub name: String,
    pub duration_ms: f64,
    #[serde(default = "yes")]
    pub success: bool,
    #[serde(default)]
    pub timestamp_ms: Option<u64>,
    #[serde(default)]
    pub tags: Option<HashMap<String, String>>,
}

/// One processed event.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    #[serde(default)]
    pub name: Option<String>,
    pub processing_ms: f64,
    #[serde(default = "yes")]
    pub success: bool,
}

/// One gauge reading (`queue.actions` and `queue.events` are the queue depths).
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct GaugeIn {
    pub name: String,
    pub value: f64,
}

/// The request body.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    #[serde(default)]
    pub operations: Vec<OperationIn>,
    #[serde(default)]
    pub events: Vec<EventIn>,
    #[serde(default)]
    pub gauges: Vec<GaugeIn>,
    /// Absent: unchanged; `null`: cleared; a string: set.
    #[serde(default, deserialize_with = "some_or_null")]
    pub current_action: Option<Option<String>>,
}

fn yes() -> bool {
    true
}

fn some_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The 202 answer.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Accepted {
    pub operations: usize,
    pub events: usize,
    pub gauges: usize,
}

/// Checks a whole batch; the error names the first bad field.
pub fn validate(batch: &Batch) -> Result<(), ApiError> {
    for (i, op) in batch.operations.iter().enumerate() {
        validate_name(&op.name).map_err(|e| bad(format!("operations[{i}].name"), e))?;
        check_duration(op.duration_ms)
            .map_err(|e| bad(format!("operations[{i}].duration_ms"), e))?;
        if let Some(tags) = &op.tags {
            for key in tags.keys() {
                validate_name(key).map_err(|e| bad(format!("operations[{i}].tags"), e))?;
            }
        }
    }
    for (i, ev) in batch.events.iter().enumerate() {
        if let Some(name) = &ev.name {
            validate_name(name).map_err(|e| bad(format!("events[{i}].name"), e))?;
        }
        check_duration(ev.processing_ms)
            .map_err(|e| bad(format!("events[{i}].processing_ms"), e))?;
    }
    for (i, g) in batch.gauges.iter().enumerate() {
        validate_name(&g.name).map_err(|e| bad(format!("gauges[{i}].name"), e))?;
        if !g.value.is_finite() {
            return Err(bad(format!("gauges[{i}].value"), "must be a finite number"));
        }
    }
    if let Some(Some(action)) = &batch.current_action {
        if action.chars().count() > 200 || action.chars().any(char::is_control) {
            return Err(bad(
                "current_action".into(),
                "must be at most 200 printable characters or null",
            ));
        }
    }
    Ok(())
}

fn check_duration(value: f64) -> Result<(), &'static str> {
    if (0.0..=crate::server::stats::MAX_DURATION_MS).contains(&value) {
        Ok(())
    } else {
        Err("must be a finite number >= 0")
    }
}

fn bad(field: String, rule: &str) -> ApiError {
    ApiError::bad_field(field.clone(), format!("{field}: {rule}"))
}

/// The handler.
pub async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match ingest_inner(&state, &headers, &body) {
        Ok(accepted) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
        Err(error) => {
            state.app.lock().count_rejected(Protocol::Http);
            error.into_response()
        }
    }
}

fn ingest_inner(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Accepted, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the batch as JSON with `Content-Type: application/json`",
        )
        .with_field("content-type"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let batch: Batch = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        if path == "." || path == "?" || inner.is_syntax() || inner.is_eof() {
            ApiError::bad_field("body", format!("body: {message}"))
        } else {
            ApiError::bad_field(path.clone(), format!("{path}: {message}"))
        }
    })?;
    validate(&batch)?;
    let now = crate::server::now_ms();
    let mut app = state.app.lock();
    app.count_received(Protocol::Http);
    for op in &batch.operations {
        let at = op.timestamp_ms.unwrap_or(now);
        app.operation(Protocol::Http, &op.name, op.duration_ms, op.success, 1.0, at, now);
    }
    for ev in &batch.events {
        let name = ev.name.as_deref().unwrap_or(DEFAULT_EVENT_NAME);
        app.event(Protocol::Http, name, ev.processing_ms, ev.success, 1.0, now, now);
    }
    for g in &batch.gauges {
        app.gauge(Protocol::Http, &g.name, g.value, false);
    }
    if let Some(action) = &batch.current_action {
        app.set_current_action(action.clone());
    }
    Ok(Accepted {
        operations: batch.operations.len(),
        events: batch.events.len(),
        gauges: batch.gauges.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(json: &str) -> Batch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_good_batch_validates() {
        let b = batch(
            r#"{"operations":[{"name":"a","duration_ms":1.5},{"name":"b","duration_ms":0,"success":false,"tags":{"env":"prod"}}],
               "events":[{"processing_ms":3}],"gauges":[{"name":"queue.actions","value":4}],"current_action":null}"#,
        );
        assert!(validate(&b).is_ok());
        assert_eq!(b.current_action, Some(None));
        assert!(b.operations[0].success);
        assert!(batch("{}").current_action.is_none());
    }

    #[test]
    fn the_first_bad_item_is_named() {
        let cases = [
            (
                r#"{"operations":[{"name":"a","duration_ms":1},{"name":"b","duration_ms":-1}]}"#,
                "operations[1].duration_ms",
            ),
            (r#"{"operations":[{"name":"","duration_ms":1}]}"#, "operations[0].name"),
            (r#"{"events":[{"processing_ms":-5}]}"#, "events[0].processing_ms"),
            (r#"{"gauges":[{"name":"x\u0007","value":1}]}"#, "gauges[0].name"),
        ];
        for (json, field) in cases {
            let err = validate(&batch(json)).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{json}");
            assert!(err.error.starts_with(field), "{}", err.error);
        }
    }
}
