//! Alerts over HTTP: rules (list, create, replace, delete, test), the alerts now, their
//! history, silences and acknowledgements. Writes need the token when one is set (routed
//! behind `require_token`); without one they are same-origin only, like every state-changing
//! route.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::range;
use crate::model::alerts::{AlertHistory, Rule, RuleError, RulesView, Silence, MAX_SPAN_LABELS};
use crate::server::alerts::RuleChangeError;
use crate::server::error::{decode_json, ApiError};
use crate::server::state::AppState;
use crate::server::store::alerts::{HistoryFilter, MAX_HISTORY_EVENTS};

fn rule_error(e: RuleError) -> ApiError {
    ApiError::bad_field(e.field.clone(), format!("{}: {}", e.field, e.message))
}

/// A refused rule change as an answer: 400, 404 or 409 naming the field to blame, in the words
/// of [`RuleChangeError::words`].
pub fn change_error(e: RuleChangeError) -> ApiError {
    let status = match &e {
        RuleChangeError::Invalid(e) => return rule_error(e.clone()),
        RuleChangeError::NotFound(_) => StatusCode::NOT_FOUND,
        RuleChangeError::FromConfig(_) | RuleChangeError::Exists(_) | RuleChangeError::TooMany => {
            StatusCode::CONFLICT
        }
    };
    let words = e.words();
    let error = match &e {
        RuleChangeError::Exists(name) => {
            format!("{}; PUT /api/v1/alerts/rules/{name} changes it", words.message)
        }
        _ => words.message,
    };
    ApiError::new(status, error).with_field(words.field)
}

/// `GET /api/v1/alerts/rules`.
pub async fn rules(State(state): State<AppState>) -> Json<RulesView> {
    Json(RulesView { rules: state.alerts.rules() })
}

/// `GET /api/v1/alerts/rules/{name}`.
pub async fn rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    state.alerts.rule(&name).map(Json).ok_or_else(|| change_error(RuleChangeError::NotFound(name)))
}

/// `POST /api/v1/alerts/rules`: 201 with the rule.
pub async fn create_rule(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let rule: Rule = decode_json(&headers, &body, "the rule")?;
    let rule = state.alerts.put_rule(rule, true).map_err(change_error)?;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

/// `PUT /api/v1/alerts/rules/{name}`: replaces the rule (the body's name must match or be
/// absent).
pub async fn replace_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Rule>, ApiError> {
    let mut value: serde_json::Value = decode_json(&headers, &body, "the rule")?;
    if let Some(object) = value.as_object_mut() {
        match object.get("name").and_then(|n| n.as_str()) {
            None => {
                object.insert("name".to_string(), serde_json::Value::String(name.clone()));
            }
            Some(given) if given.trim() != name => {
                let why = format!("name: the body names {given}, the URL {name}");
                return Err(ApiError::bad_field(
                    "name",
                    format!("{why}; delete and create to rename"),
                ));
            }
            Some(_) => {}
        }
    }
    let text = serde_json::to_vec(&value).unwrap_or_default();
    let rule: Rule = decode_json(&headers, &text, "the rule")?;
    state.alerts.put_rule(rule, false).map(Json).map_err(change_error)
}

/// `DELETE /api/v1/alerts/rules/{name}`: 204.
pub async fn delete_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.alerts.delete_rule(&name).map_err(change_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/alerts/rules/{name}/test`: when the rule (as stored, or the one in the body)
/// would have fired over the last hour (or `?from=&to=`).
pub async fn test_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<crate::model::alerts::RuleTestResult>, ApiError> {
    let rule = if body.iter().all(u8::is_ascii_whitespace) {
        state
            .alerts
            .rule(&name)
            .ok_or_else(|| change_error(RuleChangeError::NotFound(name.clone())))?
    } else {
        let rule: Rule = decode_json(&headers, &body, "the rule")?;
        crate::server::alerts::validate(&rule).map_err(rule_error)?;
        rule
    };
    let now = state.store.now_ms();
    let mut query = query;
    query.entry("from".to_string()).or_insert_with(|| "-1h".to_string());
    let span = range::time_range(&query, now)?;
    run_test(&state, rule, span).await.map(Json)
}

/// When `rule` would have gone pending, fired and resolved over `span` of stored data (the
/// REST route and the Alerts page's "Test this rule").
pub async fn run_test(
    state: &AppState,
    rule: Rule,
    span: range::TimeRange,
) -> Result<crate::model::alerts::RuleTestResult, ApiError> {
    state.limits.queries.check()?;
    let store = state.store.clone();
    let app = std::sync::Arc::clone(&state.app);
    let flap = state.config.alerts.flap;
    tokio::task::spawn_blocking(move || {
        crate::server::alerts::backtest::run(&rule, &store, &app, span.from_ms, span.to_ms, flap)
    })
    .await
    .map_err(|_| super::ops::internal())?
}

/// `GET /api/v1/alerts`: the alerts now, silences and receivers.
pub async fn now(State(state): State<AppState>) -> Json<crate::model::alerts::AlertsNow> {
    let alerts = std::sync::Arc::clone(&state.alerts);
    let now = crate::server::now_ms();
    Json(tokio::task::spawn_blocking(move || alerts.now(now)).await.unwrap_or_default())
}

/// `GET /api/v1/alerts/history?from=&to=&rule=&severity=&q=&limit=`.
pub async fn history(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<AlertHistory>, ApiError> {
    let now = state.store.now_ms();
    let mut query = query;
    query.entry("from".to_string()).or_insert_with(|| "-24h".to_string());
    let span = range::time_range(&query, now)?;
    let severity = match query.get("severity").map(String::as_str) {
        None | Some("") => None,
        Some(s @ ("warning" | "critical")) => Some(s.to_string()),
        Some(other) => {
            return Err(ApiError::bad_field(
                "severity",
                format!("severity: warning or critical (got {other})"),
            ))
        }
    };
    let limit = match query.get("limit") {
        None => 200,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY_EVENTS).contains(n))
            .ok_or_else(|| {
                ApiError::bad_field("limit", format!("limit: 1 to {MAX_HISTORY_EVENTS} (got {n})"))
            })?,
    };
    let text = |k: &str| query.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let filter = HistoryFilter {
        from_ms: span.from_ms,
        to_ms: span.to_ms,
        rule: text("rule"),
        severity,
        q: text("q").map(|q| q.chars().take(200).collect()),
        limit,
    };
    query_history(&state, filter).await.map(Json)
}

/// Stored alert transitions matching `filter`, newest first, with their notification attempts
/// (the REST route and the Alerts page).
pub async fn query_history(
    state: &AppState,
    filter: HistoryFilter,
) -> Result<AlertHistory, ApiError> {
    let (from_ms, to_ms) = (filter.from_ms, filter.to_ms);
    state.limits.queries.check()?;
    let store = state.store.clone();
    let (events, truncated) = tokio::task::spawn_blocking(move || {
        store.readers().with(|c| crate::server::store::alerts::history(c, &filter))
    })
    .await
    .map_err(|_| super::ops::internal())?
    .map_err(|e| {
        tracing::warn!(error = %e, "The alert history query failed.");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the alert history query failed")
    })?;
    Ok(AlertHistory { from_ms, to_ms, events, truncated })
}

/// `POST /api/v1/alerts/silences`: 201 with the silence and its id.
pub async fn create_silence(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let silence: Silence = decode_json(&headers, &body, "the silence")?;
    let silence = state.alerts.add_silence(silence, crate::server::now_ms()).map_err(rule_error)?;
    Ok((StatusCode::CREATED, Json(silence)).into_response())
}

/// `DELETE /api/v1/alerts/silences/{id}`: 204.
pub async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    if state.alerts.delete_silence(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("no silence {id}")).with_field("id"))
    }
}

/// `POST /api/v1/alerts/{id}/ack` and `DELETE` (un-acknowledge): 204.
pub async fn acknowledge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: axum::http::Method,
) -> Result<StatusCode, ApiError> {
    let ack = method == axum::http::Method::POST;
    if state.alerts.acknowledge(&id, ack) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("no pending or firing alert {id}"))
            .with_field("id"))
    }
}

/// `GET /api/v1/recommendations`: advice from this server's data, with its evidence.
pub async fn recommendations(
    State(state): State<AppState>,
) -> Result<Json<crate::model::alerts::Recommendations>, ApiError> {
    compute_recommendations(&state).await.map(Json)
}

/// Advice from this server's data, off the runtime's workers (the REST route and the Alerts
/// page).
pub async fn compute_recommendations(
    state: &AppState,
) -> Result<crate::model::alerts::Recommendations, ApiError> {
    state.limits.queries.check()?;
    let (alerts, app, store) = (
        std::sync::Arc::clone(&state.alerts),
        std::sync::Arc::clone(&state.app),
        state.store.clone(),
    );
    let now = crate::server::now_ms();
    tokio::task::spawn_blocking(move || {
        crate::server::alerts::recommend::compute(&alerts, &app, &store, now)
    })
    .await
    .map_err(|_| super::ops::internal())
}

/// `GET /api/v1/alerts/spans?from=&to=&operation=&event=`: when alerts fired over a range (of
/// one operation's or event's series when given), as the charts draw them.
pub async fn spans(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<crate::model::alerts::AlertSpans>, ApiError> {
    let now = state.store.now_ms();
    let mut query = query;
    query.entry("from".to_string()).or_insert_with(|| "-1h".to_string());
    let span = range::time_range(&query, now)?;
    let labels = ["operation", "event"]
        .into_iter()
        .filter_map(|label| {
            let value = query.get(label).map(|v| v.trim()).filter(|v| !v.is_empty())?;
            Some((label.to_string(), value.to_string()))
        })
        .collect();
    query_spans(&state, span, labels).await.map(Json)
}

/// The firing spans overlapping `span` of the instances whose labels hold every one of
/// `labels` (at most [`MAX_SPAN_LABELS`]; the REST route and the charts' bands).
pub async fn query_spans(
    state: &AppState,
    span: range::TimeRange,
    labels: Vec<(String, String)>,
) -> Result<crate::model::alerts::AlertSpans, ApiError> {
    if labels.len() > MAX_SPAN_LABELS {
        let words = format!("labels: at most {MAX_SPAN_LABELS} (got {})", labels.len());
        return Err(ApiError::bad_field("labels", words));
    }
    state.limits.queries.check()?;
    let store = state.store.clone();
    let (spans, truncated) = tokio::task::spawn_blocking(move || {
        store
            .readers()
            .with(|c| crate::server::store::alerts::spans(c, span.from_ms, span.to_ms, &labels))
    })
    .await
    .map_err(|_| super::ops::internal())?
    .map_err(|e| {
        tracing::warn!(error = %e, "The alert spans query failed.");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the alert spans query failed")
    })?;
    Ok(crate::model::alerts::AlertSpans {
        from_ms: span.from_ms,
        to_ms: span.to_ms,
        spans,
        truncated,
    })
}
