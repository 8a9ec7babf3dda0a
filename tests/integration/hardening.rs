//! The doors hold: Host and Origin checks, JSON answers for every API error, body limits above
//! axum's default, and a 202 that says exactly what was dropped and why.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::support::{body_bytes, json, TestApp};

#[tokio::test]
async fn a_foreign_host_reads_nothing() {
    let app = TestApp::new();
    for uri in ["/", "/api/v1/operations", "/health"] {
        let request =
            Request::get(uri).header(header::HOST, "rebound.evil.example").body(Body::empty());
        let (status, body) = json(app.send(request.unwrap()).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(body["field"], "host", "{uri}: {body}");
    }
    let ok = Request::get("/api/v1/operations").header(header::HOST, "localhost:3000");
    assert_eq!(app.send(ok.body(Body::empty()).unwrap()).await.status(), StatusCode::OK);
    let app = TestApp::with(|c| c.allowed_hosts = vec!["vitals.example".into()]);
    let named = Request::get("/api/v1/operations").header(header::HOST, "vitals.example");
    assert_eq!(app.send(named.body(Body::empty()).unwrap()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_page_cannot_change_state_or_open_the_stream() {
    let app = TestApp::new();
    let from = |origin: &str, uri: &str, content_type: &str, body: &'static str| {
        Request::post(uri)
            .header(header::HOST, "127.0.0.1:3000")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let batch = r#"{"operations":[{"name":"forged","duration_ms":1}]}"#;
    // The form a foreign site could post to the UI's server functions, and a fetch to ingest.
    for (uri, content_type, body) in [
        ("/rpc/live/refresh", "application/x-www-form-urlencoded", ""),
        ("/api/v1/ingest", "application/json", batch),
    ] {
        let (status, answer) =
            json(app.send(from("http://evil.example", uri, content_type, body)).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(answer["field"], "origin", "{uri}: {answer}");
    }
    let (_, list) = app.get_json("/api/v1/operations?window=1m").await;
    assert_eq!(list["total"], 0, "the forged batch landed: {list}");
    // The page's own origin, and a client without Origin, get in.
    let own = from("http://127.0.0.1:3000", "/api/v1/ingest", "application/json", batch);
    assert_eq!(app.send(own).await.status(), StatusCode::ACCEPTED);
    let (status, _) = app.ingest(batch).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // A WebSocket upgrade from a foreign page is refused before it is upgraded.
    let upgrade = Request::get("/ws")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "http://evil.example")
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "upgrade")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Body::empty())
        .unwrap();
    let (status, answer) = json(app.send(upgrade).await).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::FORBIDDEN, Some("origin")));
    // An allowed origin is let in.
    let app = TestApp::with(|c| c.allowed_origins = vec!["https://ops.example".into()]);
    let allowed = from("https://ops.example", "/api/v1/ingest", "application/json", batch);
    assert_eq!(app.send(allowed).await.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn every_api_error_is_json_naming_what_was_wrong() {
    let app = TestApp::new();
    let (status, body) = json(app.get("/api/v1/no-such-route").await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::NOT_FOUND, Some("path")));
    let delete = Request::delete("/api/v1/operations").body(Body::empty()).unwrap();
    let (status, body) = json(app.send(delete).await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method")));
    assert!(body["error"].as_str().unwrap().contains("DELETE"), "{body}");
    let (status, body) = json(app.get("/api/v1/operations/%FF").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "path", "{body}");
    // Pages outside the API keep their HTML 404.
    let page = app.get("/no-such-page").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn the_body_limit_is_the_configured_one_above_two_mebibytes() {
    let app = TestApp::with(|c| c.max_body_bytes = 8 * 1024 * 1024);
    let item = r#"{"name":"bulk","duration_ms":1}"#;
    let n = 3 * 1024 * 1024 / item.len() + 1;
    let body = format!(r#"{{"operations":[{}]}}"#, vec![item; n].join(","));
    assert!(body.len() > 3 * 1024 * 1024);
    let (status, answer) = app.ingest(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["operations"], n);
}

#[tokio::test]
async fn the_202_says_what_was_dropped_and_why() {
    let app = TestApp::with(|c| c.max_series = 2);
    let now = vitals::server::now_ms();
    let body = format!(
        r#"{{"operations":[
            {{"name":"a","duration_ms":1}},
            {{"name":"a","duration_ms":1,"timestamp_ms":{future}}},
            {{"name":"a","duration_ms":1,"timestamp_ms":{old}}},
            {{"name":"b","duration_ms":1}},
            {{"name":"c","duration_ms":1}}],
           "gauges":[{{"name":"d","value":1}}]}}"#,
        future = now + 3_600_000,
        // Beyond the store's 30 days of minute rows: too old even for backfill.
        old = now - 31 * 86_400_000,
    );
    let (status, answer) = app.ingest(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["operations"], 2, "{answer}");
    assert_eq!(answer["gauges"], 0, "{answer}");
    assert_eq!(
        answer["dropped"],
        serde_json::json!({"future": 1, "too_old": 1, "series_budget": 2}),
        "{answer}"
    );
    let fields: Vec<&str> = answer["dropped_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["operations[1]", "operations[2]", "operations[4]", "gauges[0]"]);
    let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
    assert_eq!(stats["http"]["dropped_future"], 1, "{stats}");
    assert_eq!(stats["http"]["dropped_too_old"], 1, "{stats}");
    assert_eq!(stats["http"]["dropped_by_cap"], 2, "{stats}");
}

#[tokio::test]
async fn overflowing_statsd_values_are_counted_and_nothing_non_finite_is_kept() {
    let app = TestApp::new();
    let target = app.state.statsd.as_ref().unwrap().local_addr;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = "big:1e308|g\nbig:+1e308|g\nbig:+1e308|g\ntotal:1e308|c\ntotal:1e308|c\nok:1|c";
    socket.send_to(datagram.as_bytes(), target).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stats = loop {
        let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
        if stats["statsd"]["received"] == 1 {
            break stats;
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        tokio::task::yield_now().await;
    };
    assert_eq!(stats["statsd"]["malformed"], 3, "{stats}");
    assert_eq!(stats["statsd"]["accepted"], 3, "{stats}");
    let reasons: Vec<&str> = stats["last_malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().all(|r| r.contains("non-finite")), "{reasons:?}");
    let response = app.get("/api/v1/metrics").await;
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    assert!(!text.contains("null") && !text.contains("inf"), "{text}");
    let metrics: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(metrics["gauges"][0], serde_json::json!(["big", 1e308]));
    assert_eq!(metrics["counters"][1][1]["total"], 1e308, "{metrics}");
}

#[tokio::test]
async fn far_times_a_silence_for_ever_and_a_hidden_flood_of_spans_are_refused_by_name() {
    let app = TestApp::new();
    let post = |uri: &str, content_type: &str, body: Vec<u8>| {
        Request::post(uri).header(header::CONTENT_TYPE, content_type).body(Body::from(body))
    };
    // A time past the year 9999: 400 naming it (it wrapped to a range of all history).
    let far = "/api/v1/operations?from=18446744073709551000&to=18446744073709551615";
    let (status, body) = json(app.get(far).await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("to")), "{body}");
    // A silence "for ever" as the largest number: 400 naming `ends_ms` (it was stored as -1
    // and deleted at once).
    let silence = br#"{"matchers":[{"label":"rule","value":"*"}],"ends_ms":18446744073709551615}"#;
    let request = post("/api/v1/alerts/silences", "application/json", silence.to_vec());
    let (status, body) = json(app.send(request.unwrap()).await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("ends_ms")));
    // 300,000 empty resource spans behind an unknown group: too many fields, refused before
    // decoding (they were decoded, hundreds of MiB).
    let mut flood = vec![0x7b, 0x7c];
    flood.extend([0x0a, 0x00].repeat(300_000));
    let request = post("/v1/traces", "application/x-protobuf", flood);
    let response = app.send(request.unwrap()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // And the server answers as before.
    let (status, _) = app.get_json("/api/v1/operations").await;
    assert_eq!(status, StatusCode::OK);
}
