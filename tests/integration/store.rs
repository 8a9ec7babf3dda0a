//! The history store from the outside: restarts keep data and windows, `kill -9` loses at most
//! the stated bound, backfill lands in its minutes, range queries answer (and refuse bad
//! ranges naming the parameter), and the admin routes need the token.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;

use crate::support::{json, Server, TestApp};

fn ops_body(name: &str, n: usize) -> String {
    let item = format!(r#"{{"name":"{name}","duration_ms":12.5}}"#);
    format!(r#"{{"operations":[{}]}}"#, vec![item; n].join(","))
}

fn count_of(answer: &Value, name: &str) -> u64 {
    answer["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .map_or(0, |o| o["count"].as_u64().unwrap())
}

#[test]
fn sigterm_flushes_everything_and_a_restart_continues_the_hour_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::spawn_in(dir.path(), &[]);
    let (status, body) = first.request("POST", "/api/v1/ingest", Some(&ops_body("export", 40)));
    assert_eq!(status, 202, "{body}");
    // Straight away: whatever is still in memory must be written on the way out.
    assert!(first.terminate().success());
    let second = Server::spawn_in(dir.path(), &[]);
    let hour = second.get_json("/api/v1/operations?window=1h");
    assert_eq!(count_of(&hour, "export"), 40, "{hour}");
    let range = second.get_json("/api/v1/operations?from=-1h");
    assert_eq!(count_of(&range, "export"), 40, "{range}");
    assert_eq!(range["tier"], "minute");
}

#[test]
fn kill_9_loses_at_most_the_last_three_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::spawn_in(dir.path(), &[]);
    let (status, _) = first.request("POST", "/api/v1/ingest", Some(&ops_body("kept", 25)));
    assert_eq!(status, 202);
    // Keep the server busy with other data until the bound has passed (a timing is handed to
    // the store at the first flush after its second is over), then kill it hard.
    let accepted = Instant::now();
    while accepted.elapsed() < Duration::from_millis(3_100) {
        first.request("POST", "/api/v1/ingest", Some(&ops_body("tail", 5)));
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = Server::spawn_in(dir.path(), &[]);
    let range = second.get_json("/api/v1/operations?from=-1h");
    assert_eq!(count_of(&range, "kept"), 25, "{range}");
    // The host samples taken before the kill are history now.
    let host = second.get_json("/api/v1/history/host?from=-10m&step=1s&fields=cpu_pct");
    assert_eq!(host["tier"], "raw");
    assert!(!host["points"].as_array().unwrap().is_empty(), "{host}");
}

#[tokio::test]
async fn backfill_lands_in_its_minute_and_series_answer_per_step() {
    let app = TestApp::new();
    let now = vitals::server::now_ms();
    let at = now - 3 * 3_600_000;
    let body = format!(
        r#"{{"operations":[{{"name":"import","duration_ms":40,"timestamp_ms":{at}}},
                           {{"name":"import","duration_ms":60,"timestamp_ms":{at},"success":false}}]}}"#
    );
    let (status, answer) = app.ingest(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["operations"], 2, "three hours back is inside the store's retention");
    let started = Instant::now();
    let series = loop {
        let (status, series) =
            app.get_json("/api/v1/operations/import/series?from=-4h&step=1m").await;
        if status == StatusCode::OK && !series["points"].as_array().unwrap().is_empty() {
            break series;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{series}");
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    };
    let point = &series["points"][0];
    assert_eq!(point["at_ms"], at - at % 60_000, "{series}");
    assert_eq!((point["count"].as_u64(), point["errors"].as_u64()), (Some(2), Some(1)));
    assert_eq!(point["error_pct"], 50.0);
    assert_eq!(series["step_ms"], 60_000);
    assert_eq!(series["relative_error"], 0.01);
    // It is history, not the last hour.
    let (_, hour) = app.get_json("/api/v1/operations?window=1h").await;
    assert_eq!(hour["total"], 0, "{hour}");
}

#[tokio::test]
async fn bad_ranges_are_400_naming_the_parameter() {
    let app = TestApp::new();
    for (uri, field) in [
        ("/api/v1/operations?from=-1h&to=-2h", "from"),
        ("/api/v1/operations?to=whenever", "to"),
        ("/api/v1/operations/x/series?from=-30d&step=1m", "step"),
        ("/api/v1/operations/x/series?step=soon", "step"),
        ("/api/v1/history/host?fields=cpu_pct,nope", "fields"),
        ("/api/v1/history/host?from=-7d&step=1s", "step"),
        ("/api/v1/events?from=yesterday", "from"),
    ] {
        let (status, body) = app.get_json(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["field"], field, "{uri}: {body}");
    }
    let (status, body) = app.get_json("/api/v1/operations/never-seen/series").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn the_current_host_sample_and_store_stats_are_rest_answers() {
    let app = TestApp::new();
    let started = Instant::now();
    let host = loop {
        let (status, host) = app.get_json("/api/v1/host").await;
        if status == StatusCode::OK {
            break host;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
        assert!(started.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    };
    assert!(host["system"]["memory_total_bytes"].as_u64().unwrap() > 0, "{host}");
    let (status, stats) = app.get_json("/api/v1/store/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert!(stats["path"].as_str().unwrap().ends_with("vitals.db"), "{stats}");
    assert_eq!(stats["retention"]["minute_days"], 30);
    let tables: Vec<&str> =
        stats["tiers"].as_array().unwrap().iter().map(|t| t["table"].as_str().unwrap()).collect();
    for table in ["host_raw", "host_minute", "host_hour", "timing_minute", "timing_hour"] {
        assert!(tables.contains(&table), "{table} in {tables:?}");
    }
    assert!(tables.contains(&"timing_day"), "{tables:?}");
    let (_, health) = app.get_json("/health").await;
    assert_eq!(health["components"]["store"]["status"], "ok", "{health}");
}

#[tokio::test]
async fn pausing_and_deleting_need_the_token_and_pausing_shows_in_health() {
    let app =
        TestApp::with(|c| c.token = Some(vitals::server::config::Secret::new("s3cret-token")));
    let post = |path: &str, token: Option<&str>| {
        let mut request = Request::post(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::empty()).unwrap()
    };
    let (status, _) = json(app.send(post("/api/v1/monitor/pause", None)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) =
        json(app.send(post("/api/v1/monitor/pause", Some("s3cret-token"))).await).await;
    assert_eq!((status, body["paused"].as_bool()), (StatusCode::OK, Some(true)));
    let request = Request::get("/health").header("authorization", "Bearer s3cret-token");
    let (_, health) = json(app.send(request.body(Body::empty()).unwrap()).await).await;
    assert_eq!(health["components"]["store"]["status"], "degraded", "{health}");
    let (status, body) =
        json(app.send(post("/api/v1/monitor/resume", Some("s3cret-token"))).await).await;
    assert_eq!((status, body["paused"].as_bool()), (StatusCode::OK, Some(false)));
    let delete = |token: Option<&str>| {
        let mut request = Request::delete("/api/v1/data?before=now");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::empty()).unwrap()
    };
    let (status, _) = json(app.send(delete(None)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = json(app.send(delete(Some("s3cret-token"))).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["deleted_rows"].is_u64(), "{body}");
}

#[tokio::test]
async fn gauges_have_a_stored_history_per_minute() {
    let app = TestApp::new();
    let (status, _) = app.ingest(r#"{"gauges":[{"name":"queue.actions","value":7}]}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let started = Instant::now();
    let series = loop {
        let (status, series) =
            app.get_json("/api/v1/metrics/gauge/queue.actions/series?from=-10m").await;
        if status == StatusCode::OK {
            break series;
        }
        assert_eq!(status, StatusCode::NOT_FOUND, "{series}");
        assert!(started.elapsed() < Duration::from_secs(20), "{series}");
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    };
    assert_eq!(series["points"][0]["value"], 7.0, "{series}");
    assert_eq!(series["kind"], "gauge", "{series}");
    // Steps fold minutes: a gauge keeps its last value, with the least and most.
    let (_, wide) =
        app.get_json("/api/v1/metrics/gauge/queue.actions/series?from=-1h&step=15m").await;
    assert_eq!(wide["step_ms"], 900_000, "{wide}");
    assert_eq!(
        (wide["points"][0]["value"].as_f64(), wide["points"][0]["max"].as_f64()),
        (Some(7.0), Some(7.0)),
        "{wide}"
    );
    let (status, body) =
        app.get_json("/api/v1/metrics/gauge/queue.actions/series?from=-30d&step=1m").await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("step")), "{body}");
    let (status, body) = app.get_json("/api/v1/metrics/histogram/x/series").await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("kind")));
}

#[tokio::test]
async fn tags_filter_and_group_live_windows_and_stored_ranges() {
    let app = TestApp::new();
    let item = |region: &str| {
        format!(r#"{{"name":"checkout","duration_ms":50,"tags":{{"region":"{region}","v":"2"}}}}"#)
    };
    let items: Vec<String> = ["eu", "eu", "us"].iter().map(|r| item(r)).collect();
    let (status, _) = app.ingest(&format!(r#"{{"operations":[{}]}}"#, items.join(","))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, all) = app.get_json("/api/v1/operations?window=5m").await;
    assert_eq!((all["total"].as_u64(), count_of(&all, "checkout")), (Some(1), 3), "{all}");
    let (_, eu) = app.get_json("/api/v1/operations?window=5m&tag=region:eu").await;
    assert_eq!(count_of(&eu, "checkout"), 2, "{eu}");
    let (_, grouped) = app.get_json("/api/v1/operations?window=5m&by=region&sort=count").await;
    let rows: Vec<(String, u64)> = grouped["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["tags"]["region"].as_str().unwrap().to_string(), o["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(rows, vec![("eu".to_string(), 2), ("us".to_string(), 1)], "{grouped}");
    let (_, detail) = app.get_json("/api/v1/operations/checkout?window=5m&tag=region:us").await;
    assert_eq!(detail["summary"]["count"], 1, "{detail}");
    // The store keeps the tag sets apart too.
    let started = Instant::now();
    loop {
        let (_, range) = app.get_json("/api/v1/operations?from=-10m&by=region&tag=v:2").await;
        if range["total"] == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{range}");
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
    let (_, series) =
        app.get_json("/api/v1/operations/checkout/series?from=-10m&tag=region:eu").await;
    assert_eq!(series["points"][0]["count"], 2, "{series}");
    assert!(series.get("groups").is_none(), "{series}");
    // `by=` on a series: the merged total and one series per group.
    let (_, series) = app.get_json("/api/v1/operations/checkout/series?from=-10m&by=region").await;
    assert_eq!(series["points"][0]["count"], 3, "{series}");
    let groups: Vec<(String, u64)> = series["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["tags"]["region"].as_str().unwrap().into(),
                g["points"][0]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, vec![("eu".to_string(), 2), ("us".to_string(), 1)], "{series}");
    // A range lists the tag keys and values stored in it, whatever `tag=` keeps.
    let (_, range) = app.get_json("/api/v1/operations?from=-10m&tag=region:us").await;
    assert_eq!(range["tags"][0]["key"], "region", "{range}");
    assert_eq!(range["tags"][0]["values"], serde_json::json!(["eu", "us"]), "{range}");
    assert_eq!(range["tags"][1]["values"], serde_json::json!(["2"]), "{range}");
    let (status, body) = app.get_json("/api/v1/operations?tag=nocolon").await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("tag")));
    let many: Vec<String> = (0..17).map(|i| format!("k{i}")).collect();
    let (status, body) = app.get_json(&format!("/api/v1/operations?by={}", many.join(","))).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("by")), "{body}");
}
