//! `POST /api/v1/ingest`: a JSON batch of operations, events, gauges and the current action,
//! accepted or rejected whole, with the first bad item named.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::server::error::ApiError;
use crate::server::metrics::{
    tags, validate_name, AppMetrics, Outcome, Protocol, Timing, DEFAULT_EVENT_NAME,
    MAX_ACTION_CHARS,
};
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

/// Most tags one operation may carry.
pub const MAX_TAGS: usize = 32;
/// Items named in a 202's `dropped_items` (the counts cover all of them).
const MAX_DROPPED_ITEMS: usize = 20;

/// The 202 answer: how many items of each kind were recorded, and what was dropped and why.
/// A batch that validates is never refused whole, but single items can still be dropped by the
/// store (the series budget, a timestamp out of range, a total that would stop being finite).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Accepted {
    pub operations: usize,
    pub events: usize,
    pub gauges: usize,
    /// Dropped items by reason (`series_budget`, `too_old`, `future`, `saturated`,
    /// `malformed`), all kinds together; empty when everything was recorded.
    pub dropped: BTreeMap<String, usize>,
    /// The first dropped items, each with its field path and reason.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dropped_items: Vec<DroppedItem>,
}

/// One dropped item of a batch.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct DroppedItem {
    pub field: String,
    pub reason: String,
}

impl Accepted {
    fn note(&mut self, kind: &str, index: usize, outcome: Outcome) -> bool {
        if outcome == Outcome::Accepted {
            return true;
        }
        *self.dropped.entry(outcome.reason().to_string()).or_default() += 1;
        if self.dropped_items.len() < MAX_DROPPED_ITEMS {
            self.dropped_items.push(DroppedItem {
                field: format!("{kind}[{index}]"),
                reason: outcome.reason().to_string(),
            });
        }
        false
    }
}

/// Checks a whole batch; the error names the first bad field.
pub fn validate(batch: &Batch) -> Result<(), ApiError> {
    for (i, op) in batch.operations.iter().enumerate() {
        validate_name(&op.name).map_err(|e| bad(format!("operations[{i}].name"), e))?;
        check_duration(op.duration_ms)
            .map_err(|e| bad(format!("operations[{i}].duration_ms"), e))?;
        if let Some(tags) = &op.tags {
            if tags.len() > MAX_TAGS {
                return Err(bad(format!("operations[{i}].tags"), "must hold at most 32 tags"));
            }
            for (key, value) in tags {
                validate_name(key).map_err(|e| bad(format!("operations[{i}].tags"), e))?;
                validate_name(value).map_err(|e| bad(format!("operations[{i}].tags.{key}"), e))?;
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
        if action.chars().count() > MAX_ACTION_CHARS || action.chars().any(char::is_control) {
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
        Err("must be a finite number >= 0 and <= 1e12")
    }
}

fn bad(field: String, rule: &str) -> ApiError {
    ApiError::bad_field(field.clone(), format!("{field}: {rule}"))
}

/// The handler. Decoding and recording run off the async runtime's workers: a large batch, or
/// the store's lock held by a burst of StatsD, must not stall other requests.
pub async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let app = Arc::clone(&state.app);
    let answer = tokio::task::spawn_blocking(move || {
        let result = decode(&headers, &body).and_then(|batch| {
            validate(&batch)?;
            Ok(record(&app, &batch, crate::server::now_ms()))
        });
        if result.is_err() {
            app.lock().count_rejected(Protocol::Http);
        }
        result
    })
    .await;
    match answer {
        Ok(Ok(accepted)) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
        Ok(Err(error)) => error.into_response(),
        Err(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ingestion failed").into_response()
        }
    }
}

/// Checks the content type and decodes the body; the error names the first bad field.
pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Batch, ApiError> {
    crate::server::error::decode_json(headers, body, "the batch")
}

/// Records a validated batch and says what became of each item.
pub fn record(app: &AppMetrics, batch: &Batch, now: u64) -> Accepted {
    let mut answer = Accepted::default();
    let mut m = app.lock();
    m.count_received(Protocol::Http);
    let (mut key, mut scratch) = (String::new(), Vec::new());
    for (i, op) in batch.operations.iter().enumerate() {
        let at = op.timestamp_ms.unwrap_or(now);
        let tags = op.tags.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
        tags::series_key(&mut key, &mut scratch, &op.name, tags);
        let t = Timing::operation(&key, op.duration_ms, at).failed_if(!op.success);
        let outcome = m.timing(Protocol::Http, t, now);
        answer.operations += usize::from(answer.note("operations", i, outcome));
    }
    for (i, ev) in batch.events.iter().enumerate() {
        let name = ev.name.as_deref().unwrap_or(DEFAULT_EVENT_NAME);
        let t = Timing::event(name, ev.processing_ms, now).failed_if(!ev.success);
        let outcome = m.timing(Protocol::Http, t, now);
        answer.events += usize::from(answer.note("events", i, outcome));
    }
    for (i, g) in batch.gauges.iter().enumerate() {
        let outcome = m.gauge(Protocol::Http, &g.name, g.value, false, now);
        answer.gauges += usize::from(answer.note("gauges", i, outcome));
    }
    if let Some(action) = &batch.current_action {
        m.set_current_action(action.as_deref());
    }
    answer
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

    mod properties {
        use super::*;
        use crate::model::ops::LatencyThresholds;
        use crate::server::metrics::Limits;
        use proptest::prelude::*;

        fn json_headers() -> HeaderMap {
            let mut headers = HeaderMap::new();
            headers.insert(axum::http::header::CONTENT_TYPE, "application/json".parse().unwrap());
            headers
        }

        fn operation() -> impl Strategy<Value = OperationIn> {
            ("[a-zA-Z0-9 /._-]{1,40}", 0.0f64..1e7, any::<bool>()).prop_map(
                |(name, duration_ms, success)| OperationIn {
                    name,
                    duration_ms,
                    success,
                    timestamp_ms: None,
                    tags: None,
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A valid batch decodes to itself, validates, and every item is recorded.
            #[test]
            fn valid_batches_are_recorded_whole(
                operations in prop::collection::vec(operation(), 0..40),
                gauges in prop::collection::vec(("[a-z.]{1,20}", -1e12f64..1e12), 0..10),
            ) {
                let gauges: Vec<GaugeIn> =
                    gauges.into_iter().map(|(name, value)| GaugeIn { name, value }).collect();
                let batch = Batch { operations, gauges, ..Default::default() };
                let body = serde_json::to_vec(&batch).unwrap();
                let decoded = decode(&json_headers(), &body).unwrap();
                prop_assert!(validate(&decoded).is_ok());
                let app = AppMetrics::new(Limits::default(), LatencyThresholds::default(), 0);
                let now = 1_700_000_000_000;
                let answer = record(&app, &decoded, now);
                prop_assert_eq!(answer.operations, batch.operations.len());
                prop_assert_eq!(answer.gauges, batch.gauges.len());
                prop_assert!(answer.dropped.is_empty());
                let count: u64 = app
                    .summaries(crate::model::ops::Window::M1, now)
                    .iter()
                    .map(|s| s.count)
                    .sum();
                prop_assert_eq!(count, batch.operations.len() as u64);
            }

            /// Arbitrary bytes never panic the decoder and never get past it half-read.
            #[test]
            fn arbitrary_bodies_are_answered_not_panicked_on(
                body in prop::collection::vec(any::<u8>(), 0..256),
            ) {
                match decode(&json_headers(), &body) {
                    Ok(batch) => { let _ = validate(&batch); }
                    Err(e) => prop_assert!(e.field.is_some(), "{:?}", e),
                }
            }

            /// A bad item anywhere rejects the batch naming exactly that item.
            #[test]
            fn one_bad_duration_is_named(
                operations in prop::collection::vec(operation(), 1..20),
                bad in any::<prop::sample::Index>(),
                value in prop::sample::select(vec![-1.0, 2e12, -0.5]),
            ) {
                let mut batch = Batch { operations, ..Default::default() };
                let i = bad.index(batch.operations.len());
                batch.operations[i].duration_ms = value;
                let err = validate(&batch).unwrap_err();
                let field = format!("operations[{i}].duration_ms");
                prop_assert_eq!(err.field.as_deref(), Some(field.as_str()));
            }
        }
    }
}
