//! OTLP/HTTP end to end: a protobuf request built with the generated types lands with exact
//! counts; JSON, gzip and partial success; every refusal as the Collector answers it; the
//! token; and the `--otlp-addr` listener of the real binary.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::SpanKind, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message as _;
use vitals::server::ingest::otlp::RpcStatus;

use crate::support::{body_bytes, Server, TestApp};

fn now_ms() -> u64 {
    vitals::server::now_ms()
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// `n` server spans named `name`, of `ms` milliseconds each, every `fail_every`-th an error.
fn spans(name: &str, n: usize, ms: u64, fail_every: usize) -> Vec<Span> {
    let end = now_ms() * 1_000_000;
    (0..n)
        .map(|i| Span {
            name: name.into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: end - ms * 1_000_000,
            end_time_unix_nano: end,
            status: (fail_every > 0 && i % fail_every == 0)
                .then(|| Status { code: status::StatusCode::Error as i32, ..Default::default() }),
            ..Default::default()
        })
        .collect()
}

fn post(path: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path).header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn a_protobuf_export_lands_with_exact_counts() {
    let app = TestApp::new();
    let mut all = spans("GET /cart", 300, 120, 10);
    all.extend(spans("GET /search", 212, 40, 0));
    let body = request("shop", all).encode_to_vec();
    let response = app.send(post("/v1/traces", "application/x-protobuf", body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(&body_bytes(response).await[..]).unwrap();
    assert_eq!(answer.partial_success, None, "everything was accepted");

    let (_, list) = app.get_json("/api/v1/operations?window=5m&sort=count").await;
    assert_eq!(list["total"], 2, "{list}");
    let cart = &list["operations"][0];
    assert_eq!((cart["name"].as_str(), cart["count"].as_u64()), (Some("GET /cart"), Some(300)));
    assert_eq!(cart["error_count"], 30);
    assert!((cart["p50_ms"].as_f64().unwrap() / 120.0 - 1.0).abs() <= 0.01, "{cart}");
    assert_eq!(list["operations"][1]["count"], 212);
    // service.name is a dimension.
    let (_, by) = app.get_json("/api/v1/operations?window=5m&by=service.name").await;
    assert_eq!(by["operations"][0]["tags"]["service.name"], "shop", "{by}");
    let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
    assert_eq!(stats["otlp"]["accepted"], 512);
    assert_eq!(stats["otlp"]["received"], 1);
}

#[tokio::test]
async fn json_and_gzip_with_a_partial_success() {
    let app = TestApp::new();
    let end = now_ms() * 1_000_000;
    let json = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"api"}}}}]}},
            "scopeSpans":[{{"spans":[
              {{"name":"POST /pay","kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{end}"}},
              {{"name":"POST /pay","kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{end}","status":{{"code":2}}}},
              {{"name":"POST /pay","kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{end}"}},
              {{"name":"db","kind":3,"startTimeUnixNano":"{}","endTimeUnixNano":"{end}"}}]}}]}}]}}"#,
        end - 250_000_000,
        end - 50_000_000,
        end + 1_000_000,
        end - 5_000_000,
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, json.as_bytes()).unwrap();
    let request = Request::post("/v1/traces")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let answer: ExportTraceServiceResponse =
        serde_json::from_slice(&body_bytes(response).await).unwrap();
    let partial = answer.partial_success.expect("one span was rejected");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("spans[2]: the span ends before it starts"),
        "{}",
        partial.error_message
    );
    let (_, pay) = app.get_json("/api/v1/operations/POST%20%2Fpay?window=5m").await;
    let pay = &pay["summary"];
    assert_eq!((pay["count"].as_u64(), pay["error_count"].as_u64()), (Some(2), Some(1)), "{pay}");
    let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
    assert_eq!(stats["otlp"]["ignored"], 1, "the client span is ignored by default");
}

#[tokio::test]
async fn metrics_in_json_become_counters_and_gauges() {
    let app = TestApp::new();
    let t = now_ms() * 1_000_000;
    let json = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[
            {{"name":"jobs.done","unit":"1","sum":{{"aggregationTemporality":1,"isMonotonic":true,
              "dataPoints":[{{"asInt":"5","timeUnixNano":"{t}"}},{{"asDouble":2.5,"timeUnixNano":"{t}"}}]}}}},
            {{"name":"queue.depth","gauge":{{"dataPoints":[
              {{"asInt":"7","timeUnixNano":"{t}","attributes":[{{"key":"queue","value":{{"stringValue":"a"}}}}]}},
              {{"asInt":"4","timeUnixNano":"{t}","attributes":[{{"key":"queue","value":{{"stringValue":"b"}}}}]}}]}}}},
            {{"name":"broken","gauge":{{"dataPoints":[{{"timeUnixNano":"{t}"}}]}}}}]}}]}}]}}"#
    );
    let response = app.send(post("/v1/metrics", "application/json", json.into_bytes())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: ExportMetricsServiceResponse =
        serde_json::from_slice(&body_bytes(response).await).unwrap();
    let partial = answer.partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(partial.error_message.contains("(broken): the data point has no value"));
    let (_, values) = app.get_json("/api/v1/metrics").await;
    assert_eq!(values["counters"][0][0], "jobs.done", "{values}");
    assert_eq!(values["counters"][0][1]["total"], 7.5, "{values}");
    assert_eq!(values["gauges"][0], serde_json::json!(["queue.depth", 11.0]));
}

#[tokio::test]
async fn refusals_are_answered_as_the_collector_does() {
    let app = TestApp::with(|c| c.max_body_bytes = 4096);
    // Not a content type OTLP defines.
    let response = app.send(post("/v1/traces", "text/plain", b"hello".to_vec())).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Not protobuf: a google.rpc.Status in protobuf, code 3 (INVALID_ARGUMENT).
    let response =
        app.send(post("/v1/traces", "application/x-protobuf", vec![0xff, 0xff, 0xff])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let status = RpcStatus::decode(&body_bytes(response).await[..]).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.starts_with("the body is not a protobuf ExportTraceServiceRequest"));
    // Invalid JSON: the Status in JSON, naming where.
    let response = app
        .send(post("/v1/metrics", "application/json", b"{\"resourceMetrics\":7}".to_vec()))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let status: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert!(status["message"].as_str().unwrap().contains("resourceMetrics"), "{status}");
    // Too large as sent, and too large once inflated.
    let big = request("s", spans("GET /x", 200, 1, 0)).encode_to_vec();
    assert!(big.len() > 4096);
    let response = app.send(post("/v1/traces", "application/x-protobuf", big.clone())).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bomb = vec![0u8; 4096 * vitals::server::ingest::otlp::INFLATE_FACTOR + 1];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &bomb).unwrap();
    let request = Request::post("/v1/traces")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    assert_eq!(app.send(request).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let request = Request::post("/v1/traces")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "zstd")
        .body(Body::from(vec![1, 2, 3]))
        .unwrap();
    assert_eq!(app.send(request).await.status(), StatusCode::BAD_REQUEST);
    // Nothing of those landed; each refusal is counted.
    let (_, stats) = app.get_json("/api/v1/ingest/stats").await;
    assert_eq!(stats["otlp"]["accepted"], 0);
    assert_eq!(stats["otlp"]["rejected"], 5, "{stats}");
}

#[tokio::test]
async fn the_token_guards_otlp() {
    let app = TestApp::with(|c| c.token = Some(vitals::server::config::Secret::new("tok-otlp-42")));
    let body = request("s", spans("GET /x", 1, 1, 0)).encode_to_vec();
    let response = app.send(post("/v1/traces", "application/x-protobuf", body.clone())).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let request = Request::post("/v1/traces")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::AUTHORIZATION, "Bearer tok-otlp-42")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(app.send(request).await.status(), StatusCode::OK);
}

#[test]
fn the_otlp_listener_serves_only_otlp() {
    let server = Server::spawn(&["--otlp-addr", "127.0.0.1:0"]);
    let line = server
        .startup
        .iter()
        .find_map(|l| l.split("OTLP/HTTP on http://").nth(1))
        .expect("the OTLP address is logged");
    let addr: std::net::SocketAddr = line.split('/').next().unwrap().parse().unwrap();
    assert_ne!(addr, server.addr);
    let body = request("s", spans("GET /otlp-port", 3, 5, 0)).encode_to_vec();
    let send = |path: &str, body: &[u8]| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).split_whitespace().nth(1).unwrap_or("").to_string()
    };
    assert_eq!(send("/v1/traces", &body), "200");
    assert_eq!(send("/api/v1/ingest", b"{}"), "404", "the OTLP port serves OTLP only");
    let list = server.get_json("/api/v1/operations?window=5m");
    assert_eq!(list["operations"][0]["name"], "GET /otlp-port", "{list}");
    assert_eq!(list["operations"][0]["count"], 3);
}
