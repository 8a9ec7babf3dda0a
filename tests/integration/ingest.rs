//! Ingestion end to end: HTTP batches (whole acceptance or rejection, statuses, token), StatsD
//! over loopback UDP (volume, garbage), and the operations API that reads it back.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::Value;

use crate::support::{body_bytes, call_with, TestApp};

#[tokio::test]
async fn a_bad_batch_is_rejected_whole_and_a_good_one_after_it_is_accepted() {
    let app = TestApp::new();
    let (status, body) = app
        .ingest(
            r#"{"operations":[{"name":"checkout","duration_ms":120},
                              {"name":"checkout","duration_ms":90},
                              {"name":"search","duration_ms":-3}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "operations[2].duration_ms");
    assert_eq!(
        body["error"],
        "operations[2].duration_ms: must be a finite number >= 0 and <= 1e12"
    );
    let (_, list) = app.get_json("/api/v1/operations?window=1m").await;
    assert_eq!(list["total"], 0, "nothing of the bad batch may land: {list}");

    let (status, body) = app
        .ingest(
            r#"{"operations":[{"name":"checkout","duration_ms":120,"success":false},
                              {"name":"checkout","duration_ms":80,"tags":{"region":"eu"}}],
                "events":[{"processing_ms":15}],
                "gauges":[{"name":"queue.actions","value":7}],
                "current_action":"nightly export"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, serde_json::json!({"operations": 2, "events": 1, "gauges": 1, "dropped": {}}));
    let (status, list) = app.get_json("/api/v1/operations?window=1m&sort=count").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["relative_error"], 0.01);
    assert_eq!(list["window"], "1m");
    let op = &list["operations"][0];
    assert_eq!(op["name"], "checkout");
    assert_eq!(op["count"], 2);
    assert_eq!(op["error_count"], 1);
    assert_eq!(op["success_pct"], 50.0);
    assert_eq!(op["max_ms"], 120.0);
    assert_eq!(op["latency_class"], "good");
    let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
    assert_eq!(stats["http"]["rejected"], 1);
    assert_eq!(stats["http"]["received"], 1);
    assert_eq!(stats["http"]["accepted"], 4);
}

#[tokio::test]
async fn wrong_content_type_is_415_and_broken_json_names_the_field() {
    let app = TestApp::new();
    let response = app
        .send(
            Request::post("/api/v1/ingest")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_eq!(body["field"], "content-type");

    let (status, body) = app.ingest(r#"{"operations":[{"name":"a","duration_ms":"fast"}]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "operations[0].duration_ms", "{body}");
    let (status, body) = app.ingest(r#"{"operations":[{"name":"a","duraton_ms":1}]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("unknown field `duraton_ms`"), "{body}");
    let (status, body) = app.ingest("{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "body", "{body}");
    let name = "x".repeat(201);
    let (status, body) =
        app.ingest(&format!(r#"{{"gauges":[{{"name":"{name}","value":1}}]}}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "gauges[0].name");
}

#[tokio::test]
async fn over_the_body_limit_is_413_in_json() {
    let app = TestApp::with(|c| c.max_body_bytes = 256);
    let big =
        format!(r#"{{"operations":[{}]}}"#, vec![r#"{"name":"a","duration_ms":1}"#; 20].join(","));
    let (status, body) = app.ingest(&big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["field"], "body", "{body}");
    // The server is still fine afterwards.
    let (status, _) = app.ingest(r#"{"operations":[{"name":"a","duration_ms":1}]}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn ingest_requires_the_token_when_one_is_configured() {
    let app = TestApp::with(|c| {
        c.token = Some(vitals::server::config::Secret::new("tok-123456"));
        c.auth = vitals::server::auth::AuthMode::Ingest;
    });
    let (status, body) = app.ingest(r#"{"operations":[]}"#).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["field"], "authorization");
    let request = Request::post("/api/v1/ingest")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "Bearer tok-123456")
        .body(Body::from(r#"{"operations":[{"name":"a","duration_ms":1}]}"#))
        .unwrap();
    assert_eq!(app.send(request).await.status(), StatusCode::ACCEPTED);
    // With `--auth ingest`, reading stays open.
    assert_eq!(app.get("/api/v1/operations").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn operations_api_validates_its_parameters() {
    let app = TestApp::new();
    for (uri, field) in [
        ("/api/v1/operations?window=2h", "window"),
        ("/api/v1/operations?sort=speed", "sort"),
        ("/api/v1/operations?limit=0", "limit"),
        ("/api/v1/operations?order=up", "order"),
    ] {
        let (status, body) = app.get_json(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["field"], field, "{uri}");
    }
    let (status, body) = app.get_json("/api/v1/operations/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["field"], "name");
}

/// The Operations page's server function over 450 operations: only the rows wanted travel.
#[tokio::test]
async fn the_operations_page_gets_the_first_rows_filtered_and_sorted_by_the_server() {
    let app = TestApp::new();
    let ops: Vec<String> = (0..450)
        .map(|i| format!(r#"{{"name":"{}.{i:03}","duration_ms":{i}}}"#, ["api", "db"][i % 2]))
        .collect();
    let (status, _) = app.ingest(&format!(r#"{{"operations":[{}]}}"#, ops.join(","))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let page = |wanted: &str| {
        format!(
            r#"{{"of":"operations","span":{{"Live":"5m"}},"selection":{{}},"wanted":{wanted}}}"#
        )
    };
    let app = &app;
    let list = |body: String| async move {
        let (status, view) =
            call_with(app, "POST", "/rpc/operations/list", Some(&body), None).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        let names: Vec<String> = view["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect();
        (view["total"].as_u64().unwrap(), view["matched"].as_u64().unwrap(), names)
    };
    // The first 200 by p95, slowest first, and how many there are.
    let (total, matched, names) =
        list(page(r#"{"sort":"p95","descending":true,"filter":"","limit":200}"#)).await;
    assert_eq!((total, matched, names.len()), (450, 450, 200));
    assert_eq!(names[..2], ["db.449", "api.448"]);
    assert_eq!(names[199], "api.250");
    // Filtered (in any case) and sorted by name, A to Z.
    let (total, matched, names) =
        list(page(r#"{"sort":"name","descending":false,"filter":" DB.1","limit":3}"#)).await;
    assert_eq!((total, matched), (450, 50));
    assert_eq!(names, ["db.101", "db.103", "db.105"]);
}

/// A span the pages never send (inverted, overflowing, decades long) is refused by the server
/// functions as the REST API refuses such times, and the server answers the next request.
#[tokio::test]
async fn server_functions_refuse_spans_the_api_would_refuse() {
    let app = TestApp::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now = now.as_millis() as u64;
    let wanted = r#"{"sort":"name","descending":false,"filter":"","limit":10}"#;
    for span in [
        format!(r#"{{"Between":[{now},{}]}}"#, now - 120_000),
        format!(r#"{{"Between":[{},0]}}"#, u64::MAX),
        format!(r#"{{"Stored":{}}}"#, u64::MAX / 999),
    ] {
        let bodies = [
            (
                "/rpc/operations/list",
                format!(
                    r#"{{"of":"operations","span":{span},"selection":{{}},"wanted":{wanted}}}"#
                ),
            ),
            (
                "/rpc/operations/detail",
                format!(r#"{{"of":"operations","name":"x","span":{span},"selection":{{}}}}"#),
            ),
        ];
        for (uri, body) in bodies {
            let request = Request::builder()
                .method("POST")
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            let response = app.send(request).await;
            let status = response.status();
            let text = String::from_utf8_lossy(&body_bytes(response).await).into_owned();
            assert!(status.is_server_error() || status.is_client_error(), "{uri} {span}: {status}");
            assert!(text.contains("span:"), "{uri} {span}: {text}");
        }
    }
    let fine = format!(
        r#"{{"of":"operations","span":{{"Stored":3600}},"selection":{{}},"wanted":{wanted}}}"#
    );
    let (status, view) = call_with(&app, "POST", "/rpc/operations/list", Some(&fine), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
}

#[tokio::test]
async fn operation_detail_has_series_and_histogram() {
    let app = TestApp::new();
    let ops: Vec<String> =
        (1..=100).map(|i| format!(r#"{{"name":"GET /api/items","duration_ms":{i}}}"#)).collect();
    let (status, _) = app.ingest(&format!(r#"{{"operations":[{}]}}"#, ops.join(","))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, detail) = app.get_json("/api/v1/operations/GET%20%2Fapi%2Fitems?window=5m").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["window"], "5m");
    assert_eq!(detail["summary"]["count"], 100);
    let p50 = detail["summary"]["p50_ms"].as_f64().unwrap();
    assert!((49.0..=51.5).contains(&p50), "{p50}");
    let histogram = detail["histogram"].as_array().unwrap();
    let total: u64 = histogram.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 100);
    assert!(!detail["series"].as_array().unwrap().is_empty());
}

/// Waits until the server has received `datagrams` StatsD datagrams.
async fn wait_for_datagrams(app: &TestApp, datagrams: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
        if stats["statsd"]["received"].as_u64().unwrap() >= datagrams {
            return stats;
        }
        assert!(Instant::now() < deadline, "server got only {stats}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn ten_thousand_timers_over_udp_all_appear() {
    let app = TestApp::new();
    let target = app.state.statsd.as_ref().unwrap().local_addr;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = 0u64;
    for chunk in 0..50u64 {
        for datagram in 0..10u64 {
            let lines: Vec<String> = (0..20)
                .map(|i| format!("udp.op{}:{}|ms", (chunk * 200 + datagram * 20 + i) % 4, i + 1))
                .collect();
            socket.send_to(lines.join("\n").as_bytes(), target).unwrap();
            sent += 1;
        }
        // Let the listener drain before the next 200 lines, so the test measures ingestion and
        // not the kernel's default socket buffer.
        wait_for_datagrams(&app, sent).await;
    }
    let (_, list) = app.get_json("/api/v1/operations?window=1m&sort=name").await;
    let ops = list["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 4, "{list}");
    let total: u64 = ops.iter().map(|o| o["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 10_000);
    assert!(ops.iter().all(|o| o["count"] == 2_500));
    let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
    assert_eq!(stats["statsd"]["accepted"], 10_000);
    assert_eq!(stats["statsd"]["malformed"], 0);
}

#[tokio::test]
async fn the_listener_survives_garbage() {
    let app = TestApp::new();
    let target = app.state.statsd.as_ref().unwrap().local_addr;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let len = (seed % 300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        socket.send_to(&bytes, target).unwrap();
    }
    socket.send_to(b"no type here\nsurvivor:42|ms|#success:true\n:|\n", target).unwrap();
    let stats = wait_for_datagrams(&app, 201).await;
    assert!(stats["statsd"]["malformed"].as_u64().unwrap() >= 2, "{stats}");
    let last = stats["last_malformed"].as_array().unwrap();
    assert!(!last.is_empty() && last[0]["reason"].is_string(), "{stats}");
    let (status, detail) = app.get_json("/api/v1/operations/survivor?window=1m").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["summary"]["count"], 1);
    assert_eq!(detail["summary"]["max_ms"], 42.0);
}
