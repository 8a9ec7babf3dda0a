//! Alerts over HTTP: the rules API (token, validation naming fields, conflicts), the alerts
//! now and their history, and notifications reaching a webhook (retried after a failure) and
//! an Alertmanager-shaped receiver, each a local test server.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use vitals::model::alerts::MAX_SPAN_LABELS;
use vitals::model::live::SystemMetrics;
use vitals::server::api::alerts::query_spans;
use vitals::server::api::range::TimeRange;
use vitals::server::config::Secret;
use vitals::server::metrics::Protocol;

use crate::support::{call_with, start_receiver, TestApp};

const TOKEN: &str = "alerts-test-token";

fn with_token(app_token: bool) -> TestApp {
    TestApp::with(|c| {
        if app_token {
            c.token = Some(Secret::new(TOKEN));
            c.auth = vitals::server::auth::AuthMode::Ingest;
        }
    })
}

async fn call(
    app: &TestApp,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: bool,
) -> (StatusCode, serde_json::Value) {
    call_with(app, method, uri, body, token.then_some(TOKEN)).await
}

const RULE: &str = r#"{"name": "checkout slow",
    "target": {"operation": "api.checkout*", "stat": "p95", "window": "1m"},
    "warning": {"above": 500, "clear_below": 400},
    "critical": {"above": 2000, "clear_below": 1500},
    "for_secs": 0, "min_count": 5, "labels": {"team": "web"},
    "summary": "{{series}}: p95 {{value}} ms"}"#;

#[tokio::test]
async fn the_rules_api_creates_refuses_with_the_field_replaces_and_deletes() {
    let app = with_token(true);
    let (status, body) = call(&app, "GET", "/api/v1/alerts/rules", None, false).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> =
        body["rules"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"host cpu high") && names.contains(&"operation errors"), "{names:?}");
    // Writes need the token.
    let (status, body) = call(&app, "POST", "/api/v1/alerts/rules", Some(RULE), false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = call(&app, "POST", "/api/v1/alerts/rules", Some(RULE), true).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["source"], "api");
    let (status, body) = call(&app, "POST", "/api/v1/alerts/rules", Some(RULE), true).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::CONFLICT, Some("name")));
    // Bad rules name their field.
    let cases = [
        (
            r#"{"name":"x","target":{"host":"cpu_pct"},"warning":{"above":90,"clear_below":95}}"#,
            "warning",
        ),
        (r#"{"name":"x","target":{"host":"cpu"},"warning":{"above":90}}"#, "target.host"),
        (
            r#"{"name":"x","target":{"host":"cpu_pct"},"warning":{"above":90},"for_secs":-5}"#,
            "for_secs",
        ),
        (r#"{"name":"x","target":{},"warning":{"above":90}}"#, "target"),
        (
            r#"{"name":"x","target":{"host":"cpu_pct"},"critical":{"above":90},"severity":"high"}"#,
            "severity",
        ),
        (r#"{"name":"x","target":{"host":"cpu_pct"}}"#, "warning"),
        (
            r#"{"name":"x","target":{"operation":"a[","stat":"p95"},"warning":{"above":1}}"#,
            "target.operation",
        ),
        // Out of range for a number: refused by the JSON reader itself.
        (r#"{"name":"x","target":{"host":"cpu_pct"},"warning":{"above":1e999}}"#, "body"),
    ];
    for (rule, field) in cases {
        let (status, body) = call(&app, "POST", "/api/v1/alerts/rules", Some(rule), true).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rule}: {body}");
        assert_eq!(body["field"].as_str(), Some(field), "{rule}: {body}");
    }
    // Replace, with the name from the URL.
    let changed = RULE.replace("\"for_secs\": 0", "\"for_secs\": 60");
    let (status, body) =
        call(&app, "PUT", "/api/v1/alerts/rules/checkout%20slow", Some(&changed), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["for_secs"], 60);
    let (status, body) = call(&app, "PUT", "/api/v1/alerts/rules/other", Some(RULE), true).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("name")));
    let (status, body) =
        call(&app, "GET", "/api/v1/alerts/rules/checkout%20slow", None, false).await;
    assert_eq!((status, body["for_secs"].as_u64()), (StatusCode::OK, Some(60)));
    let (status, _) =
        call(&app, "DELETE", "/api/v1/alerts/rules/checkout%20slow", None, true).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) =
        call(&app, "DELETE", "/api/v1/alerts/rules/checkout%20slow", None, true).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::NOT_FOUND, Some("name")));
    // Silences validate too.
    let (status, body) =
        call(&app, "POST", "/api/v1/alerts/silences", Some(r#"{"matchers":[],"ends_ms":1}"#), true)
            .await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("matchers")));
    let (status, body) =
        call(&app, "GET", "/api/v1/alerts/history?severity=bad", None, false).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("severity")));
}

#[tokio::test]
async fn a_breach_fires_shows_in_the_api_and_its_history_then_resolves() {
    // One sample at start and none for an hour: this test's own evaluations (in the past, so
    // that both transitions are stored before they are read) are the only ones after the
    // first, which must not see the breach as of now.
    let app = TestApp::with(|c| c.interval_secs = 3600.0);
    let (status, body) = call(&app, "POST", "/api/v1/alerts/rules", Some(RULE), false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let evaluations = || app.state.alerts.stats.evaluations.load(Ordering::Relaxed);
    wait_for("the start-up tick's evaluation", || evaluations() >= 1).await;
    let now = vitals::server::now_ms();
    let batch: Vec<String> = (0..10)
        .map(|_| {
            format!(r#"{{"name":"api.checkout","duration_ms":900,"timestamp_ms":{}}}"#, now - 3000)
        })
        .collect();
    let (status, body) = app.ingest(&format!(r#"{{"operations":[{}]}}"#, batch.join(","))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Evaluated as of two seconds ago, so that both transitions are in the past when read.
    app.state.alerts.evaluate(&SystemMetrics::default(), now - 2000);
    let (_, body) = call(&app, "GET", "/api/v1/alerts", None, false).await;
    let firing: Vec<&serde_json::Value> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "checkout slow")
        .collect();
    assert_eq!(firing.len(), 1, "{body}");
    assert_eq!(firing[0]["state"], "firing");
    assert_eq!(firing[0]["severity"], "warning");
    assert_eq!(firing[0]["labels"]["operation"], "api.checkout");
    assert!(body["counts"]["warning"].as_u64().unwrap() >= 1);
    // (Evaluated as of two seconds ago: both transitions are in the past when the history is
    // read.) The test endpoint replays the stored minutes (none complete yet: no transitions).
    let (status, body) =
        call(&app, "POST", "/api/v1/alerts/rules/checkout%20slow/test", None, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["step_secs"], 60);
    // Whole minutes only: the minute under way is not replayed, nor stamped past now.
    let to_ms = body["to_ms"].as_u64().unwrap();
    assert!(to_ms % 60_000 == 0 && to_ms <= vitals::server::now_ms(), "{body}");
    // Fast samples bring the p95 under the clear threshold: resolved.
    let fast: Vec<String> = (0..400)
        .map(|_| {
            format!(r#"{{"name":"api.checkout","duration_ms":5,"timestamp_ms":{}}}"#, now - 1500)
        })
        .collect();
    let (status, body) = app.ingest(&format!(r#"{{"operations":[{}]}}"#, fast.join(","))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.state.alerts.evaluate(&SystemMetrics::default(), now - 1000);
    assert!(app.state.store.flush(Duration::from_secs(10)));
    let (status, body) =
        call(&app, "GET", "/api/v1/alerts/history?rule=checkout%20slow", None, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let notes: Vec<&str> =
        body["events"].as_array().unwrap().iter().map(|e| e["note"].as_str().unwrap()).collect();
    assert_eq!(notes, ["resolved", "fired"], "newest first: {body}");
    // The charts' bands: one span, from the firing to the resolving evaluation, of that
    // operation only.
    let (status, body) =
        call(&app, "GET", "/api/v1/alerts/spans?from=-1h&operation=api.checkout", None, false)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let spans: Vec<_> = body["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["rule"] == "checkout slow")
        .map(|s| (s["severity"].clone(), s["from_ms"].as_u64(), s["to_ms"].as_u64()))
        .collect();
    assert_eq!(spans, [(serde_json::json!("warning"), Some(now - 2000), Some(now - 1000))]);
    let (_, body) =
        call(&app, "GET", "/api/v1/alerts/spans?from=-1h&operation=db.query", None, false).await;
    assert_eq!(body["spans"], serde_json::json!([]), "{body}");
    let (status, body) =
        call(&app, "GET", "/api/v1/alerts/spans?from=yesterday-ish", None, false).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("from")));
    let (status, _) = call(&app, "GET", "/api/v1/alerts", None, false).await;
    assert_eq!(status, StatusCode::OK, "the server answers after the bad range");
    // The charts' server function may ask for a few labels, not any number.
    let range = TimeRange { from_ms: now - 60_000, to_ms: now };
    let labels = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let refused = query_spans(&app.state, range, labels(MAX_SPAN_LABELS + 1)).await.unwrap_err();
    assert_eq!(
        (refused.status, refused.field.as_deref()),
        (StatusCode::BAD_REQUEST, Some("labels"))
    );
    assert!(query_spans(&app.state, range, labels(MAX_SPAN_LABELS)).await.is_ok());
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An app without default rules that notifies the webhook at `hook` (`/hook`) and the
/// Alertmanager at `am`.
fn notifying(hook: std::net::SocketAddr, am: std::net::SocketAddr) -> TestApp {
    TestApp::with(|c| {
        c.alerts.default_rules = false;
        c.alerts.receivers = vitals::server::alerts::config::resolve(
            &vitals::server::alerts::config::AlertArgs {
                webhooks: &[format!("http://{hook}/hook")],
                alertmanager: Some(&format!("http://{am}")),
                ..Default::default()
            },
            None,
            None,
        )
        .unwrap()
        .receivers;
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_reach_a_webhook_after_a_retry_and_alertmanager_in_its_v2_shape() {
    let (hook, webhook) = start_receiver(1).await;
    let (am, alertmanager) = start_receiver(0).await;
    let app = notifying(hook, am);
    let rule = r#"{"name":"queue deep","target":{"gauge":"queue.*"},
        "critical":{"above":100,"clear_below":50},"runbook":"drain it"}"#;
    let (status, body) = call(&app, "POST", "/api/v1/alerts/rules", Some(rule), false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let now = vitals::server::now_ms();
    app.state.app.lock().gauge(Protocol::Statsd, "queue.jobs", 250.0, false, now);
    app.state.alerts.evaluate(&SystemMetrics::default(), now);
    wait_for("the webhook's retry", || webhook.seen.lock().unwrap().len() >= 2).await;
    wait_for("alertmanager", || !alertmanager.seen.lock().unwrap().is_empty()).await;
    let (path, payload) = webhook.seen.lock().unwrap()[1].clone();
    assert_eq!(path, "/hook");
    assert_eq!(payload["version"], 1);
    assert_eq!(payload["status"], "firing");
    assert_eq!(payload["alert"]["rule"], "queue deep");
    assert_eq!(payload["alert"]["labels"]["gauge"], "queue.jobs");
    assert_eq!(payload["alert"]["severity"], "critical");
    assert_eq!(payload["event"]["note"], "fired");
    assert_eq!(payload["runbook"], "drain it");
    let (path, alerts) = alertmanager.seen.lock().unwrap()[0].clone();
    assert_eq!(path, "/api/v2/alerts");
    let first = &alerts[0];
    assert_eq!(first["labels"]["alertname"], "queue deep");
    assert_eq!(first["labels"]["severity"], "critical");
    assert_eq!(first["annotations"]["runbook"], "drain it");
    assert!(first["startsAt"].as_str().unwrap().ends_with('Z'));
    // The attempts are in the history: one retried, then sent.
    let history_attempts = || async {
        assert!(app.state.store.flush(Duration::from_secs(10)));
        let (_, body) =
            call(&app, "GET", "/api/v1/alerts/history?rule=queue%20deep", None, false).await;
        body["events"][0]["notifications"].as_array().cloned().unwrap_or_default()
    };
    let mut attempts = history_attempts().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while attempts.iter().filter(|a| a["receiver"].as_str().unwrap().starts_with("webhook")).count()
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "attempts: {attempts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        attempts = history_attempts().await;
    }
    let outcomes: Vec<&str> = attempts
        .iter()
        .filter(|a| a["receiver"].as_str().unwrap().starts_with("webhook"))
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["retrying", "sent"]);
    let (_, now_body) = call(&app, "GET", "/api/v1/alerts", None, false).await;
    let hook_stats = now_body["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["receiver"].as_str().unwrap().starts_with("webhook"))
        .unwrap()
        .clone();
    assert_eq!((hook_stats["sent"].as_u64(), hook_stats["retried"].as_u64()), (Some(1), Some(1)));
    // Resolution is notified too.
    app.state.app.lock().gauge(Protocol::Statsd, "queue.jobs", 10.0, false, now + 1000);
    app.state.alerts.evaluate(&SystemMetrics::default(), now + 1000);
    wait_for("the resolved webhook", || webhook.seen.lock().unwrap().len() >= 3).await;
    assert_eq!(webhook.seen.lock().unwrap()[2].1["status"], "resolved");
}

/// A webhook and an Alertmanager that answer every request, and an app that notifies them.
async fn notified_app() -> (TestApp, crate::support::Receiver, crate::support::Receiver) {
    let (hook, webhook) = start_receiver(0).await;
    let (am, alertmanager) = start_receiver(0).await;
    let app = notifying(hook, am);
    let rule = r#"{"name":"queue deep","target":{"gauge":"queue.*"},
        "warning":{"above":100,"clear_below":50},"critical":{"above":200,"clear_below":150}}"#;
    let (status, body) = call(&app, "POST", "/api/v1/alerts/rules", Some(rule), false).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (app, webhook, alertmanager)
}

fn set_queue(app: &TestApp, value: f64, at: u64) {
    app.state.app.lock().gauge(Protocol::Statsd, "queue.jobs", value, false, at);
    app.state.alerts.evaluate(&SystemMetrics::default(), at);
}

fn silence_queues(app: &TestApp, now: u64) -> u64 {
    let silence = vitals::model::alerts::Silence {
        id: 0,
        matchers: vec![vitals::model::alerts::Matcher {
            label: "gauge".into(),
            value: "queue.*".into(),
        }],
        starts_ms: 0,
        ends_ms: now + 3_600_000,
        comment: "maintenance".into(),
        created_by: "ops".into(),
    };
    app.state.alerts.add_silence(silence, now).unwrap().id
}

/// Whether an Alertmanager alert (one element of a POST) has ended by `now`.
fn ended(alert: &serde_json::Value, now: u64) -> bool {
    let ends = alert["endsAt"].as_str().unwrap();
    let ends = humantime::parse_rfc3339(ends).unwrap();
    ends.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 <= now
}

#[tokio::test(flavor = "multi_thread")]
async fn receivers_that_heard_an_alert_fire_hear_it_end_even_under_a_silence() {
    let (app, webhook, alertmanager) = notified_app().await;
    let now = vitals::server::now_ms();
    set_queue(&app, 150.0, now);
    wait_for("the firing notices", || {
        webhook.seen.lock().unwrap().len() == 1 && alertmanager.seen.lock().unwrap().len() == 1
    })
    .await;
    silence_queues(&app, now);
    // It escalates under the silence (not sent), then ends: the end is sent.
    set_queue(&app, 300.0, now + 1000);
    set_queue(&app, 10.0, now + 2000);
    wait_for("the resolved webhook", || webhook.seen.lock().unwrap().len() == 2).await;
    assert_eq!(webhook.seen.lock().unwrap()[1].1["status"], "resolved");
    wait_for("alertmanager's resolve", || alertmanager.seen.lock().unwrap().len() == 2).await;
    let (_, alerts) = alertmanager.seen.lock().unwrap()[1].clone();
    let warning = alerts.as_array().unwrap().iter().find(|a| a["labels"]["severity"] == "warning");
    assert!(warning.is_some_and(|a| ended(a, now + 2000 + 5_000)), "{alerts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_a_silence_held_back_is_announced_when_the_silence_ends() {
    let (app, webhook, alertmanager) = notified_app().await;
    let now = vitals::server::now_ms();
    let silence = silence_queues(&app, now);
    set_queue(&app, 250.0, now);
    set_queue(&app, 250.0, now + 1000);
    assert!(webhook.seen.lock().unwrap().is_empty(), "silenced");
    assert!(app.state.alerts.delete_silence(silence));
    set_queue(&app, 250.0, now + 2000);
    wait_for("the announcement", || webhook.seen.lock().unwrap().len() == 1).await;
    let (_, payload) = webhook.seen.lock().unwrap()[0].clone();
    assert_eq!(
        (payload["status"].as_str(), payload["event"]["note"].as_str()),
        (Some("firing"), Some("silence ended"))
    );
    wait_for("alertmanager", || alertmanager.seen.lock().unwrap().len() == 1).await;
    // Announced once, then its end as usual.
    set_queue(&app, 250.0, now + 3000);
    set_queue(&app, 10.0, now + 4000);
    wait_for("the resolved webhook", || webhook.seen.lock().unwrap().len() == 2).await;
    assert_eq!(webhook.seen.lock().unwrap()[1].1["status"], "resolved");
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_hears_the_old_label_set_end_when_the_severity_changes() {
    let (app, _webhook, alertmanager) = notified_app().await;
    let now = vitals::server::now_ms();
    set_queue(&app, 150.0, now);
    wait_for("the warning", || alertmanager.seen.lock().unwrap().len() == 1).await;
    set_queue(&app, 300.0, now + 1000);
    wait_for("the escalation", || alertmanager.seen.lock().unwrap().len() == 2).await;
    let (_, alerts) = alertmanager.seen.lock().unwrap()[1].clone();
    let severity = |a: &serde_json::Value| a["labels"]["severity"].as_str().unwrap().to_string();
    let critical = alerts.as_array().unwrap().iter().find(|a| severity(a) == "critical");
    let warning = alerts.as_array().unwrap().iter().find(|a| severity(a) == "warning");
    assert!(critical.is_some_and(|a| !ended(a, now + 1000 + 5_000)), "{alerts}");
    assert!(warning.is_some_and(|a| ended(a, now + 1000 + 5_000)), "{alerts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_is_sent_the_alerts_still_firing_after_a_restart() {
    let (am, alertmanager) = start_receiver(0).await;
    let dir = tempfile::tempdir().unwrap();
    let am_url = format!("http://{am}");
    let args = ["--alertmanager", am_url.as_str()];
    let mut first = crate::support::Server::spawn_in(dir.path(), &args);
    let rule = r#"{"name":"queue deep","target":{"gauge":"queue.*"},
        "critical":{"above":100,"clear_below":50}}"#;
    assert_eq!(first.request("POST", "/api/v1/alerts/rules", Some(rule)).0, 201);
    let statsd: std::net::SocketAddr = first
        .startup
        .iter()
        .find_map(|l| l.split("udp://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|a| a.trim_end_matches([',', ')', '.']).parse().unwrap())
        .expect("the StatsD address in the start-up lines");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let fired = |seen: &[(String, serde_json::Value)]| {
        seen.iter().any(|(_, alerts)| {
            alerts
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["labels"]["alertname"] == "queue deep"))
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !fired(&alertmanager.seen.lock().unwrap()) {
        assert!(tokio::time::Instant::now() < deadline, "the alert never reached Alertmanager");
        socket.send_to(b"queue.jobs:250|g", statsd).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Silenced since: Alertmanager holds it still, so it is re-sent all the same.
    let ends = vitals::server::now_ms() + 3_600_000;
    let silence =
        format!(r#"{{"matchers":[{{"label":"gauge","value":"queue.*"}}],"ends_ms":{ends}}}"#);
    assert_eq!(first.request("POST", "/api/v1/alerts/silences", Some(&silence)).0, 201);
    assert!(first.terminate().success());
    let before = alertmanager.seen.lock().unwrap().len();
    let _second = crate::support::Server::spawn_in(dir.path(), &args);
    wait_for("the alerts re-sent after the restart", || {
        fired(&alertmanager.seen.lock().unwrap()[before..])
    })
    .await;
    let (_, alerts) = alertmanager.seen.lock().unwrap()[before].clone();
    let now = vitals::server::now_ms();
    assert!(!ended(&alerts[0], now), "still firing: {alerts}");
}
