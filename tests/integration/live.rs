//! The live WebSocket against a real server: snapshot then updates, ping/pong, request_metrics,
//! garbage tolerated, the client limit, and a stalled client not delaying others.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::support::Server;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, query: &str) -> Socket {
    let url = format!("ws://{}/ws{query}", server.addr);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Whether `message` is about the alerts (`alerts` or `alert_counts`: sent on connect and
/// whenever the firing set changes, interleaved with everything else).
fn is_alerts(message: &Value) -> bool {
    message["type"] == "alerts" || message["type"] == "alert_counts"
}

/// The next JSON text message that `wanted` takes, waiting at most `limit`.
async fn next_json_where<S>(socket: &mut S, limit: Duration, wanted: fn(&Value) -> bool) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("timed out waiting for a message")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            if wanted(&value) {
                return value;
            }
        }
    }
}

/// The next JSON text message other than the alerts', waiting at most `limit`.
async fn next_json(socket: &mut Socket, limit: Duration) -> Value {
    next_json_where(socket, limit, |m| !is_alerts(m)).await
}

#[tokio::test]
async fn snapshot_then_two_updates_within_two_and_a_half_seconds() {
    let server = Server::spawn(&["--interval-secs", "1"]);
    let started = Instant::now();
    let mut socket = connect(&server, "").await;
    let snapshot = next_json(&mut socket, Duration::from_millis(2500)).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["interval_ms"], 1000);
    assert!(snapshot["history"].is_array());
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        let left = Duration::from_millis(2500).saturating_sub(started.elapsed());
        let update = next_json(&mut socket, left).await;
        assert_eq!(update["type"], "update", "{update}");
        let system = &update["sample"]["system"];
        assert!(system["memory_total_bytes"].as_u64().unwrap() > 0);
        assert!(system["cpu_pct"].as_f64().unwrap() >= 0.0);
        assert!(update["sample"]["actions"].is_object() && update["sample"]["events"].is_object());
        seqs.push(update["sample"]["seq"].as_u64().unwrap());
    }
    assert!(seqs[1] > seqs[0]);
}

#[tokio::test]
async fn a_page_that_has_the_history_gets_only_newer_samples() {
    let server = Server::spawn(&["--interval-secs", "1"]);
    let mut socket = connect(&server, "?history=90").await;
    let whole = next_json(&mut socket, Duration::from_secs(5)).await;
    let mut latest = whole["history"].as_array().unwrap().last().map(|s| s["seq"].clone());
    while latest.is_none() {
        let update = next_json(&mut socket, Duration::from_secs(5)).await;
        latest = Some(update["sample"]["seq"].clone());
    }
    let seq = latest.unwrap().as_u64().unwrap();
    // Wait for one more tick, so that there is something newer than `seq`.
    loop {
        let update = next_json(&mut socket, Duration::from_secs(5)).await;
        if update["sample"]["seq"].as_u64() > Some(seq) {
            break;
        }
    }
    let mut page = connect(&server, &format!("?history=90&after={seq}")).await;
    let snapshot = next_json(&mut page, Duration::from_secs(5)).await;
    assert_eq!(snapshot["after_seq"], seq, "{snapshot}");
    let seqs: Vec<u64> = snapshot["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seq"].as_u64().unwrap())
        .collect();
    assert!(!seqs.is_empty() && seqs.iter().all(|&s| s > seq), "{seqs:?} after {seq}");
    // A sample the server does not hold (another server's numbers): the whole snapshot.
    let mut other = connect(&server, "?history=90&after=999999").await;
    let snapshot = next_json(&mut other, Duration::from_secs(5)).await;
    assert!(snapshot.get("after_seq").is_none(), "{snapshot}");
    assert!(snapshot["history"].as_array().unwrap().len() > seqs.len());
    for (field, value) in [("after", "soon"), ("history", "lots"), ("alerts", "maybe")] {
        let bad = format!("ws://{}/ws?{field}={value}", server.addr);
        match tokio_tungstenite::connect_async(bad).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400);
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
                assert!(body.contains(&format!(r#""field":"{field}""#)), "{body}");
            }
            other => panic!("a bad `{field}` is refused with 400: {other:?}"),
        }
    }
    // And the stream goes on for everyone.
    let update = next_json(&mut page, Duration::from_secs(5)).await;
    assert_eq!(update["type"], "update", "{update}");
}

/// A client's text frame, masked as RFC 6455 asks of clients.
fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn a_command_sent_with_the_handshake_is_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::spawn(&["--interval-secs", "5"]);
    // The handshake and a ping in one write: the ping reaches the server with the request,
    // before the connection is upgraded.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = format!(
        "GET /ws?history=0 HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    )
    .into_bytes();
    bytes.extend(masked_text(br#"{"type":"ping"}"#));
    tcp.write_all(&bytes).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's own example of the answer to this key.
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    let role = tokio_tungstenite::tungstenite::protocol::Role::Client;
    let mut socket = tokio_tungstenite::WebSocketStream::from_raw_socket(tcp, role, None).await;
    let pong = next_json_where(&mut socket, Duration::from_secs(5), |m| m["type"] == "pong");
    assert_eq!(pong.await["type"], "pong");
}

#[tokio::test]
async fn a_bad_handshake_is_refused_naming_the_header() {
    use axum::http::{header, Request, StatusCode};
    let app = crate::support::TestApp::new();
    let upgrade = |version: &str| {
        Request::get("/ws?history=0")
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, version)
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, body) = crate::support::json(app.get("/ws").await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("connection")));
    let mut head = upgrade("13");
    *head.method_mut() = axum::http::Method::HEAD;
    // (A HEAD answer has no body to name the field in.)
    let refused = app.send(head).await;
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.headers()[header::ALLOW], "GET");
    let (status, body) = crate::support::json(app.send(upgrade("8")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "sec-websocket-version", "{body}");
    let mut not_websocket = upgrade("13");
    not_websocket.headers_mut().insert(header::UPGRADE, "h2c".parse().unwrap());
    let (status, body) = crate::support::json(app.send(not_websocket).await).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("upgrade")));
    let mut keyless = upgrade("13");
    keyless.headers_mut().remove(header::SEC_WEBSOCKET_KEY);
    let (status, body) = crate::support::json(app.send(keyless).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "sec-websocket-key", "{body}");
    // A valid handshake on a connection that cannot be upgraded (this test's requests are
    // handed to the router without one).
    let (status, body) = crate::support::json(app.send(upgrade("13")).await).await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("HTTP/1.1"), "{body}");
}

#[tokio::test]
async fn ping_request_metrics_and_garbage() {
    let server = Server::spawn(&["--interval-secs", "5"]);
    let mut socket = connect(&server, "?history=1").await;
    assert_eq!(next_json(&mut socket, Duration::from_secs(5)).await["type"], "snapshot");
    socket.send(Message::Text("not json at all".into())).await.unwrap();
    socket.send(Message::Text(r#"{"type":"subscribe"}"#.into())).await.unwrap();
    socket.send(Message::Binary(vec![0xff, 0x00].into())).await.unwrap();
    // Twenty times the socket's read buffer: read whole all the same, and ignored.
    socket.send(Message::Text("x".repeat(20_000).into())).await.unwrap();
    socket.send(Message::Text(r#"{"type":"ping"}"#.into())).await.unwrap();
    let mut reply = next_json(&mut socket, Duration::from_secs(5)).await;
    while reply["type"] == "update" {
        reply = next_json(&mut socket, Duration::from_secs(5)).await;
    }
    assert_eq!(reply["type"], "pong");
    socket.send(Message::Text(r#"{"type":"request_metrics"}"#.into())).await.unwrap();
    let mut reply = next_json(&mut socket, Duration::from_secs(5)).await;
    while reply["type"] == "update" {
        reply = next_json(&mut socket, Duration::from_secs(5)).await;
    }
    assert_eq!(reply["type"], "snapshot");
    assert!(reply["history"].as_array().unwrap().len() <= 1);
    let stats: Value =
        serde_json::from_str(crate::cli::http_get_body(&server.url("/api/v1/ws/stats")).as_str())
            .unwrap();
    assert_eq!(stats["ignored_client_messages"], 4, "{stats}");
    assert_eq!(stats["connected_clients"], 1, "{stats}");
    assert!(stats["messages_sent"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn clients_beyond_the_limit_are_refused_with_503() {
    let server = Server::spawn(&["--max-clients", "1"]);
    let mut first = connect(&server, "").await;
    assert_eq!(next_json(&mut first, Duration::from_secs(5)).await["type"], "snapshot");
    let url = format!("ws://{}/ws", server.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("--max-clients"), "{body}");
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    let stats = crate::cli::http_get_body(&server.url("/api/v1/ws/stats"));
    assert!(stats.contains("\"refused_connections\":1"), "{stats}");
}

/// A client whose kernel receive buffer is tiny and that never reads: the server's sends to it
/// really block once a few kilobytes are in flight.
async fn connect_stalled(server: &Server) -> Socket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let stream = tokio::net::TcpStream::from_std(socket.into()).unwrap();
    let url = format!("ws://{}/ws", server.addr);
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    tokio_tungstenite::client_async(url, stream).await.unwrap().0
}

fn ws_stats(server: &Server) -> Value {
    serde_json::from_str(&crate::cli::http_get_body(&server.url("/api/v1/ws/stats"))).unwrap()
}

#[tokio::test]
async fn a_stalled_client_does_not_delay_another() {
    let server = Server::spawn(&["--interval-secs", "0.02"]);
    let mut reader = connect(&server, "?history=0").await;
    assert_eq!(next_json(&mut reader, Duration::from_secs(5)).await["type"], "snapshot");
    // Let the history fill, so that snapshots are large (300 samples, over 100 KB).
    for _ in 0..300 {
        next_json(&mut reader, Duration::from_secs(2)).await;
    }
    // This client asks for snapshots and never reads a byte: its sends block.
    let mut stalled = connect_stalled(&server).await;
    for _ in 0..5 {
        stalled.send(Message::text(r#"{"type":"request_metrics"}"#)).await.unwrap();
    }
    // The stall is real: the server skips ticks for the stalled client while the other one
    // keeps getting every update on time.
    let started = Instant::now();
    let mut updates = 0;
    let mut last_seq = None;
    while updates < 30 {
        let message = next_json(&mut reader, Duration::from_secs(2)).await;
        if message["type"] == "update" {
            let seq = message["sample"]["seq"].as_u64().unwrap();
            if let Some(last) = last_seq {
                assert_eq!(seq, last + 1, "the reading client skipped an update");
            }
            last_seq = Some(seq);
            updates += 1;
        }
    }
    // 30 ticks at 50 Hz take 0.6 s; allow scheduling slack on a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    // The server's sends to it block: it skips ticks, or (blocked past the 10 s send timeout)
    // is closed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = ws_stats(&server);
        if stats["skipped_updates"].as_u64().unwrap() > 0 || stats["failed_sends"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the stalled client never stalled: {stats}");
        next_json(&mut reader, Duration::from_secs(2)).await;
    }
    drop(stalled);
}

/// POSTs an empty form to `path` and returns the JSON body (a server function's answer).
fn post_empty(server: &Server, path: &str) -> Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{out}");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("{out}"))
}

#[tokio::test]
async fn refresh_takes_a_new_sample_and_every_client_sees_it() {
    // Scheduled samples are 60 s apart: whatever arrives after the first came from a refresh.
    let server = Server::spawn(&["--interval-secs", "60"]);
    let mut client = connect(&server, "").await;
    let snapshot = next_json(&mut client, Duration::from_secs(5)).await;
    assert_eq!(snapshot["type"], "snapshot");
    let first = post_empty(&server, "/rpc/live/refresh");
    let second = post_empty(&server, "/rpc/live/refresh");
    let (seq1, seq2) = (first["seq"].as_u64().unwrap(), second["seq"].as_u64().unwrap());
    assert_eq!(seq2, seq1 + 1, "{first} {second}");
    // The second waited for the shortest span a sample may cover (500 ms here).
    let gap = second["at_ms"].as_u64().unwrap() - first["at_ms"].as_u64().unwrap();
    assert!(gap >= 450, "samples {gap} ms apart");
    // Both reach the live stream as updates.
    let mut seen = Vec::new();
    while !seen.contains(&seq2) {
        let message = next_json(&mut client, Duration::from_secs(5)).await;
        if message["type"] == "update" {
            seen.push(message["sample"]["seq"].as_u64().unwrap());
        }
    }
    assert!(seen.contains(&seq1), "{seen:?}");
}

#[tokio::test]
async fn every_client_is_told_the_alert_counts_on_connect_and_subscribers_the_list() {
    let server = Server::spawn(&["--interval-secs", "1"]);
    let mut plain = connect(&server, "").await;
    let counts = next_json_where(&mut plain, Duration::from_secs(5), is_alerts).await;
    assert_eq!(counts["type"], "alert_counts", "{counts}");
    assert!(counts["counts"]["critical"].is_u64(), "{counts}");
    assert!(counts["total"].is_u64() && counts.get("alerts").is_none(), "{counts}");
    // A client that asks for the list gets it (the next tick makes it when nobody wanted it).
    let mut lister = connect(&server, "?alerts=true").await;
    let mut list = next_json_where(&mut lister, Duration::from_secs(5), is_alerts).await;
    while list["type"] == "alert_counts" {
        list = next_json_where(&mut lister, Duration::from_secs(5), is_alerts).await;
    }
    assert_eq!(list["type"], "alerts", "{list}");
    assert!(list["alerts"].is_array() && list["counts"]["critical"].is_u64(), "{list}");
}
