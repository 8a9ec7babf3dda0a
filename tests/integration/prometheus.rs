//! `GET /metrics`: what was ingested comes out in the Prometheus text format, read back by an
//! independent parser (the `prometheus-parse` crate); OpenMetrics on request; the read token.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use prometheus_parse::{Sample, Scrape, Value};
use vitals::server::metrics::Protocol;

use crate::support::{body_text, json, TestApp};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

fn number(sample: Option<&Sample>) -> f64 {
    match sample.map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("not a number: {other:?}"),
    }
}

async fn scrape(app: &TestApp, uri: &str) -> (StatusCode, String, String) {
    let response = app.get(uri).await;
    let status = response.status();
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
    (status, content_type, body_text(response).await)
}

#[tokio::test]
async fn ingested_operations_and_statsd_values_are_exposed_for_prometheus() {
    let app = TestApp::new();
    let ops: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#"{{"name":"checkout","duration_ms":{},"success":{},"tags":{{"region":"eu","app.version":"2.1"}}}}"#,
                100 + i * 10,
                i != 0
            )
        })
        .collect();
    let body = format!(
        r#"{{"operations":[{}],"events":[{{"name":"mail","processing_ms":5}}]}}"#,
        ops.join(",")
    );
    assert_eq!(app.ingest(&body).await.0, StatusCode::ACCEPTED);
    {
        let now = vitals::server::now_ms();
        let mut m = app.state.app.lock();
        m.counter(Protocol::Statsd, "api.hits", 3.0, now);
        m.counter(Protocol::Statsd, "api.hits", 4.0, now);
        m.gauge(Protocol::Statsd, "pool-size", 12.0, false, now);
        // Sanitises to the same name as the gauge above: left out, and counted.
        m.gauge(Protocol::Statsd, "pool.size", 13.0, false, now);
    }

    let (status, content_type, text) = scrape(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let scrape = parse(&text);
    let labels = [("operation", "checkout"), ("region", "eu"), ("app_version", "2.1")];
    // Exact counts, the sum in seconds, failures, and quantiles within the stated 1 %.
    assert_eq!(number(find(&scrape, "vitals_operation_duration_seconds_count", &labels)), 10.0);
    let sum = number(find(&scrape, "vitals_operation_duration_seconds_sum", &labels));
    assert!((sum - 1.45).abs() < 1e-9, "{sum}");
    assert_eq!(number(find(&scrape, "vitals_operation_errors_total", &labels)), 1.0, "{text}");
    let Some(Value::Summary(quantiles)) =
        find(&scrape, "vitals_operation_duration_seconds", &labels).map(|s| &s.value)
    else {
        panic!("no summary in {text}");
    };
    let q = |wanted: f64| quantiles.iter().find(|c| c.quantile == wanted).unwrap().count;
    // Nearest rank over 100, 110, ..., 190 ms: p50 is the 5th (140 ms), p99 the 10th.
    assert!((q(0.5) - 0.140).abs() <= 0.140 * 0.01, "{quantiles:?}");
    assert!((q(0.99) - 0.190).abs() <= 0.190 * 0.01, "{quantiles:?}");
    assert_eq!(quantiles.len(), 4);
    assert_eq!(
        number(find(&scrape, "vitals_event_duration_seconds_count", &[("event", "mail")])),
        1.0
    );
    // StatsD values under their own sanitised names; a clash is skipped and counted.
    assert_eq!(number(find(&scrape, "api_hits_total", &[])), 7.0);
    assert!(text.contains("# TYPE api_hits_total counter\n"), "{text}");
    assert_eq!(number(find(&scrape, "pool_size", &[])), 12.0);
    assert_eq!(number(find(&scrape, "vitals_exposition_names_skipped", &[])), 1.0);
    // Vitals' own figures.
    let accepted = find(&scrape, "vitals_ingest_accepted_total", &[("protocol", "http")]);
    assert_eq!(number(accepted), 11.0);
    assert_eq!(number(find(&scrape, "vitals_series", &[("kind", "operation")])), 1.0);
    assert!(number(find(&scrape, "vitals_statistics_bytes", &[])) > 0.0);
    assert!(find(&scrape, "vitals_statistics_upkeep_seconds", &[]).is_some(), "{text}");
    assert!(find(&scrape, "vitals_store_file_bytes", &[]).is_some());
    // The alerting's counters, from zero (this test's operations breach no rule).
    assert_eq!(number(find(&scrape, "vitals_alert_transitions_total", &[])), 0.0, "{text}");
    assert_eq!(number(find(&scrape, "vitals_alert_instances_skipped_total", &[])), 0.0, "{text}");
    // Every family has its help and type, once.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert_eq!(text.matches(&format!("# TYPE {name} ")).count(), 1, "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
}

#[tokio::test]
async fn tags_that_sanitise_alike_never_repeat_a_sample() {
    let app = TestApp::new();
    // `a.b` and `a-b` are both the label `a_b`: two series, one label set.
    let datagram = b"checkout:5|ms|#a.b:1\ncheckout:7|ms|#a-b:1";
    vitals::server::ingest::udp::apply_datagram(&app.state.app, datagram, vitals::server::now_ms());
    let (status, _, text) = scrape(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (sample, _value) = line.rsplit_once(' ').unwrap();
        assert!(seen.insert(sample), "repeated: {sample}\n{text}");
    }
    let scrape = parse(&text);
    let labels = [("operation", "checkout"), ("a_b", "1")];
    assert_eq!(number(find(&scrape, "vitals_operation_duration_seconds_count", &labels)), 1.0);
    assert!(find(&scrape, "vitals_operation_errors_total", &labels).is_some(), "{text}");
    // Left out of the summary and of the error counter, and counted.
    assert_eq!(number(find(&scrape, "vitals_exposition_names_skipped", &[])), 2.0, "{text}");
}

#[tokio::test]
async fn openmetrics_is_served_when_asked_for_and_bad_windows_are_named() {
    let app = TestApp::new();
    app.ingest(r#"{"operations":[{"name":"a","duration_ms":5}]}"#).await;
    let request = Request::get("/metrics?window=5m")
        .header(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = body_text(response).await;
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE vitals_operation_errors counter\n"), "{text}");
    assert!(text.contains("vitals_operation_errors_total{operation=\"a\"} 0\n"), "{text}");
    assert!(text.contains("over the last 5m"), "{text}");

    let (status, body) = json(app.get("/metrics?window=2m").await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("window")));
}

#[tokio::test]
async fn with_a_token_the_exposition_needs_it() {
    let app =
        TestApp::with(|c| c.token = Some(vitals::server::config::Secret::new("tok-metrics-1")));
    assert_eq!(app.get("/metrics").await.status(), StatusCode::UNAUTHORIZED);
    let request = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer tok-metrics-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status(), StatusCode::OK);
}
