//! `GET /ws`: the upgrade (its parameters, the client limit, the handshake) and one client's
//! loop: the client is registered with the tick fan-out (`fanout`) and sent a snapshot, and the
//! fan-out then writes every newer tick to its socket (a slow client skips to the newest instead of queueing
//! a backlog); the loop itself answers `ping`, `subscribe` and `request_metrics` (rate-limited
//! per connection and in total), sends alert changes, waits out what the socket did not take at
//! once, and runs a heartbeat that closes dead connections. The loop is generic over one
//! `Sink + Stream` of messages beside its socket's [`Outlet`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::alerts::AlertMessages;
use super::fanout::Item;
use super::gate::Gate;
use super::outlet::{Outlet, OutletIo};
use super::{Hub, Permit};
use crate::model::live::{ClientMessage, Refusal, ServerMessage};
use crate::server::error::ApiError;
use crate::server::limits;
use crate::server::state::AppState;

/// Read buffer of each live socket. Clients send only small commands (under 100 bytes) and
/// control frames; a bigger message (up to [`SOCKET_MAX_MESSAGE_BYTES`]) still arrives, read
/// in pieces of this size into a buffer grown for it. Every client holds one, touched whole on
/// its first read: 1 KiB instead of 4 measured 28 MiB less at 10,000 clients (BENCHMARKS.md).
const SOCKET_READ_BUFFER_BYTES: usize = 1024;
/// A client whose unsent data grows past this is failed (it stopped reading).
const SOCKET_MAX_WRITE_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Largest message a client may send (they are tiny JSON commands).
const SOCKET_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The whole number `name` of the query, if given; 400 naming it when it is not one.
fn number<T: std::str::FromStr>(
    query: &HashMap<String, String>,
    name: &str,
    problem: &str,
) -> Result<Option<T>, ApiError> {
    query
        .get(name)
        .map(|n| n.parse::<T>().map_err(|_| ApiError::bad_field(name, problem)))
        .transpose()
}

/// The query parameter `name` as a flag (absent: false); 400 naming it unless true or false.
fn flag(query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(String::as_str) {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(_) => Err(ApiError::bad_field(name, format!("{name}: must be true or false"))),
    }
}

/// `GET /ws[?history=N][&operations=true][&alerts=true][&after=SEQ]`: upgrades to the live
/// stream; 503 beyond `--max-clients`, 400 naming a bad parameter or handshake header.
///
/// The handshake is answered here rather than by axum's `WebSocketUpgrade`, which hides the
/// TCP socket: the tick fan-out writes to it directly ([`Outlet`]).
pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    mut request: Request,
) -> Result<Response, ApiError> {
    if request.method() != Method::GET {
        let refusal = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{}: the live stream is opened with GET", request.method()),
        );
        let mut response = refusal.with_field("method").into_response();
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET"));
        return Ok(response);
    }
    let accept = accept_key(request.headers())?;
    let history_limit = number(&query, "history", "must be a whole number of samples")?;
    let operations = flag(&query, "operations")?;
    let alerts = flag(&query, "alerts")?;
    // The newest sample the page already has (rendered into it); 0 or absent: none.
    let after =
        number::<u64>(&query, "after", "must be a sample's sequence number")?.filter(|&n| n > 0);
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket (HTTP/1.1 is needed)",
        ));
    };
    let Some(permit) = state.hub.admit() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many live clients: the limit is {} (--max-clients)",
                state.hub.max_clients()
            ),
        ));
    };
    let hub = state.hub.clone();
    let shutdown = state.shutdown.clone();
    let policy = SocketPolicy { history_limit, operations, alerts, after, ..Default::default() };
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                debug!(error = %e, "A WebSocket upgrade failed.");
                return;
            }
        };
        let Some((stream, early)) = tcp_stream(upgraded) else {
            tracing::error!("A WebSocket upgrade did not come over TCP: closed.");
            return;
        };
        let ended = serve_socket(hub, stream, early, policy, shutdown).await;
        debug!(?ended, "WebSocket client left.");
        drop(permit);
    });
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(response)
}

/// The `Sec-WebSocket-Accept` answering a valid handshake (RFC 6455, 4.2.1); 400 naming the
/// header that is missing or wrong.
fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    let has = |name: HeaderName, token: &str| {
        headers.get_all(&name).iter().any(|value| {
            value.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade") {
        return Err(ApiError::bad_field("connection", "Connection: must include upgrade"));
    }
    if !has(header::UPGRADE, "websocket") {
        return Err(ApiError::bad_field("upgrade", "Upgrade: must be websocket"));
    }
    if !has(header::SEC_WEBSOCKET_VERSION, "13") {
        return Err(ApiError::bad_field(
            "sec-websocket-version",
            "Sec-WebSocket-Version: must be 13",
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::bad_field("sec-websocket-key", "Sec-WebSocket-Key: missing"));
    };
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| ApiError::bad_field("sec-websocket-key", "Sec-WebSocket-Key: unusable"))
}

/// The TCP socket under an upgraded connection, and the bytes already read from it.
fn tcp_stream(upgraded: Upgraded) -> Option<(TcpStream, Bytes)> {
    // axum's server detects the HTTP version first, which wraps the socket; a plain HTTP/1
    // server does not.
    match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
        Ok(parts) => Some((parts.io.into_inner(), parts.read_buf)),
        Err(upgraded) => upgraded
            .downcast::<TokioIo<TcpStream>>()
            .ok()
            .map(|parts| (parts.io.into_inner(), parts.read_buf)),
    }
}

/// Runs the live stream on an upgraded socket (`early`: bytes already read from it) until the
/// client leaves.
pub async fn serve_socket(
    hub: Arc<Hub>,
    stream: TcpStream,
    early: Bytes,
    policy: SocketPolicy,
    shutdown: CancellationToken,
) -> Ended {
    // Small buffers: with thousands of clients, tungstenite's 128 KiB defaults would cost
    // ~130 KiB of memory per client; clients only send tiny control messages.
    let config = WebSocketConfig::default()
        .read_buffer_size(SOCKET_READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(SOCKET_MAX_WRITE_BUFFER_BYTES)
        .max_message_size(Some(SOCKET_MAX_MESSAGE_BYTES))
        .max_frame_size(Some(SOCKET_MAX_MESSAGE_BYTES));
    let outlet = Closing(Outlet::new(stream, SOCKET_MAX_WRITE_BUFFER_BYTES));
    let io = OutletIo::new(Arc::clone(&outlet.0), early);
    let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    run_client(hub, socket, &outlet.0, policy, shutdown).await
}

/// Closes the connection when the client's task ends, however it ends (even by a panic).
struct Closing(Arc<Outlet>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Timing policy of a client loop.
#[derive(Clone, Copy, Debug)]
pub struct SocketPolicy {
    /// A WebSocket ping is sent this often; a client silent for two of these is closed.
    pub heartbeat: Duration,
    /// A single send that takes longer than this closes the client (it stopped reading).
    pub send_timeout: Duration,
    /// Samples of history in the snapshot (`None`: all the hub keeps).
    pub history_limit: Option<usize>,
    /// Whether updates carry operation statistics (the client may change it with `subscribe`).
    pub operations: bool,
    /// Whether alert changes carry the alerts list, not only the counts (the client may change
    /// it with `subscribe`).
    pub alerts: bool,
    /// The newest sample the client already has: the snapshot on connect holds only newer ones.
    pub after: Option<u64>,
}

impl Default for SocketPolicy {
    fn default() -> Self {
        SocketPolicy {
            heartbeat: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            history_limit: None,
            operations: false,
            alerts: false,
            after: None,
        }
    }
}

/// Why a client loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    Dead,
    SendFailed,
    ServerShutdown,
}

/// Runs one client until it leaves, dies or the server shuts down. Ticks reach it through the
/// fan-out, which writes to `outlet` (the socket under `socket`) once the snapshot is sent; the
/// loop wakes only for what is the client's own: its commands, alert changes, a heartbeat, and
/// bytes the socket did not take at once.
///
/// With ten thousand clients the waits live across iterations (a wait dropped and made again
/// would leave and rejoin a list shared by every client, under its lock), the socket and the
/// alerts are polled only when they said they have something ([`Gate`]), and a send that
/// completes at once sets no timer.
pub async fn run_client<W, E>(
    hub: Arc<Hub>,
    socket: W,
    outlet: &Arc<Outlet>,
    policy: SocketPolicy,
    shutdown: CancellationToken,
) -> Ended
where
    W: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin,
{
    let mut socket = Gate::new(socket);
    let mut alert_receiver = hub.subscribe_alerts();
    alert_receiver.borrow_and_update();
    // The fan-out offers it every tick (and the alerts' counts, unless it wants the list) from
    // now on; it takes them after its snapshot.
    outlet.set_wants_operations(policy.operations);
    outlet.set_alert_list(policy.alerts);
    hub.fanout.register(outlet);
    let first = send_snapshot(
        &hub,
        &mut socket,
        outlet,
        policy,
        policy.after,
        policy.operations,
        Permit::Needed,
    );
    if first.await.is_err() {
        return send_failed(&hub);
    }
    let mut list_client = policy.alerts.then(|| hub.list_client());
    // The snapshot's catch-up sent the counts; a subscriber's task sends it the list.
    if list_client.is_some()
        && send_alerts_owed(&hub, &mut socket, outlet, hub.latest_alerts(), policy).await.is_err()
    {
        return send_failed(&hub);
    }
    let alerts = Gate::new(changes(alert_receiver));
    let cancelled = Gate::new(futures::stream::once(shutdown.cancelled()));
    let backlog = outlet.backlog.notified();
    tokio::pin!(alerts, cancelled, backlog);
    let own_limit = limits::connection_snapshot_requests();
    let mut heartbeat = tokio::time::interval(policy.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    let mut wants_operations = policy.operations;
    loop {
        tokio::select! {
            // The branches after the one that is ready are not polled.
            biased;
            Some(()) = cancelled.next() => {
                // Nothing may follow a Close frame.
                outlet.pause();
                let close = Message::Close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: Utf8Bytes::from_static("server shutting down"),
                }));
                let _ = tokio::time::timeout(policy.send_timeout, socket.send(close)).await;
                return Ended::ServerShutdown;
            }
            () = &mut backlog => {
                backlog.set(outlet.backlog.notified());
                // The socket did not take all of a tick (or the fan-out's write failed): the
                // client waits for it as for any send, then gets the newest tick it missed.
                let mut drained = futures::future::poll_fn(|cx| outlet.poll_drain(cx));
                let done = match (&mut drained).now_or_never() {
                    Some(done) => done.is_ok(),
                    None => {
                        let waited = tokio::time::timeout(policy.send_timeout, drained).await;
                        matches!(waited, Ok(Ok(())))
                    }
                };
                if !done {
                    return send_failed(&hub);
                }
                catch_up(&hub, outlet);
            }
            // Only a subscriber's task wakes for the alerts: the fan-out writes the others the
            // counts.
            latest = alerts.next(), if list_client.is_some() => {
                let Some(latest) = latest else { return Ended::ServerShutdown };
                if send_alerts_owed(&hub, &mut socket, outlet, latest, policy).await.is_err() {
                    return send_failed(&hub);
                }
            }
            incoming = socket.next() => {
                last_heard = tokio::time::Instant::now();
                let reply = match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ended::ClientClosed,
                    Some(Ok(Message::Text(text))) => match serde_json::from_str(text.as_str()) {
                        Ok(ClientMessage::Ping) => Some(ServerMessage::Pong),
                        Ok(ClientMessage::Subscribe { operations, alerts }) => {
                            if let Some(operations) = operations {
                                wants_operations = operations;
                                outlet.set_wants_operations(operations);
                            }
                            match alerts {
                                Some(true) if list_client.is_none() => {
                                    list_client = Some(hub.list_client());
                                    outlet.set_alert_list(true);
                                    // The list now, if the latest publication made it (else
                                    // the next one brings it).
                                    let listed = hub.latest_alerts().filter(|m| m.list.is_some());
                                    if send_alerts_owed(&hub, &mut socket, outlet, listed, policy)
                                        .await
                                        .is_err()
                                    {
                                        return send_failed(&hub);
                                    }
                                }
                                Some(false) if list_client.is_some() => {
                                    list_client = None;
                                    outlet.set_alert_list(false);
                                    // A publication this task had not taken yet: the counts.
                                    catch_up(&hub, outlet);
                                }
                                _ => {}
                            }
                            if operations.is_none() && alerts.is_none() {
                                hub.counters.ignored_client_messages.fetch_add(1, Ordering::Relaxed);
                            }
                            continue;
                        }
                        Ok(ClientMessage::RequestMetrics) => {
                            if own_limit.admit() && hub.snapshot_requests.admit() {
                                let sent = send_snapshot(
                                    &hub,
                                    &mut socket,
                                    outlet,
                                    policy,
                                    None,
                                    wants_operations,
                                    Permit::Taken,
                                );
                                if sent.await.is_err() {
                                    return send_failed(&hub);
                                }
                                continue;
                            }
                            hub.counters.rate_limited_requests.fetch_add(1, Ordering::Relaxed);
                            Some(ServerMessage::Error(Refusal {
                                message: "request_metrics: rate limited (at most 2 per second \
                                          per connection); updates keep arriving"
                                    .to_string(),
                            }))
                        }
                        Err(_) => None,
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Binary(_))) => None,
                };
                match reply {
                    Some(message) => {
                        if send_message(&hub, &mut socket, &message, policy).await.is_err() {
                            return send_failed(&hub);
                        }
                    }
                    None => {
                        hub.counters.ignored_client_messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > policy.heartbeat * 2 {
                    hub.counters.dead_connections_closed.fetch_add(1, Ordering::Relaxed);
                    debug!("Closing a WebSocket client that stopped answering.");
                    return Ended::Dead;
                }
                if send(&mut socket, Message::Ping(Default::default()), policy).await.is_err() {
                    return send_failed(&hub);
                }
            }
        }
    }
}

/// Offers the newest tick, and the newest alerts' counts, to a client that may have missed
/// them (its snapshot was being sent, or its socket was busy, when the fan-out passed).
fn catch_up(hub: &Hub, outlet: &Outlet) {
    let latest = [hub.latest_tick().map(Item::Tick), hub.latest_alerts().map(Item::Alerts)];
    for item in latest.into_iter().flatten() {
        item.catch_up(hub, outlet);
    }
}

/// Sends what the client is owed of `messages`, an alerts publication (the list to a
/// subscriber); nothing when it has it.
async fn send_alerts_owed<S: Sink<Message> + Unpin>(
    hub: &Hub,
    sink: &mut S,
    outlet: &Outlet,
    messages: Option<Arc<AlertMessages>>,
    policy: SocketPolicy,
) -> Result<(), ()> {
    match messages.and_then(|m| outlet.alerts_owed(&m)) {
        Some(parts) => send_parts(hub, sink, &parts, policy).await,
        None => Ok(()),
    }
}

/// Every new value of a watch channel, marked seen as it is taken; ends when the sender is
/// gone. The pending wait lives inside the stream, so it survives the other branches of a
/// `select!` firing.
fn changes<T: Clone>(receiver: watch::Receiver<T>) -> impl Stream<Item = T> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        let value = receiver.borrow_and_update().clone();
        Some((value, receiver))
    })
}

/// Counts a client dropped because a send failed or timed out (it stopped reading).
fn send_failed(hub: &Hub) -> Ended {
    hub.counters.failed_sends.fetch_add(1, Ordering::Relaxed);
    Ended::SendFailed
}

async fn send<S: Sink<Message> + Unpin>(
    sink: &mut S,
    message: Message,
    policy: SocketPolicy,
) -> Result<(), ()> {
    let mut sending = sink.send(message);
    // Nearly every send completes at once (the socket has room): no timer for those.
    if let Some(done) = (&mut sending).now_or_never() {
        return done.map_err(|_| ());
    }
    match tokio::time::timeout(policy.send_timeout, sending).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Sends the snapshot, part after part ([`Hub::snapshot_message`]): the samples after `after`
/// when the hub still holds that one, else the whole snapshot; the client's own only under a
/// permit of the server-wide snapshot limit, else the shared one. No tick comes between its
/// parts; then the client takes the ticks after the snapshot's newest, beginning with the
/// newest one if it is newer.
async fn send_snapshot<S: Sink<Message> + Unpin>(
    hub: &Hub,
    sink: &mut S,
    outlet: &Outlet,
    policy: SocketPolicy,
    after: Option<u64>,
    operations: bool,
    permit: Permit,
) -> Result<(), ()> {
    outlet.pause();
    // Read before the snapshot is made: a tick published in between is in both, and the page
    // ignores a sample it has.
    let newest = hub.latest_tick().map(|t| t.seq);
    let parts = hub.snapshot_message(policy.history_limit, after, operations, permit).ok_or(())?;
    send_parts(hub, sink, &parts, policy).await?;
    outlet.start_after(newest);
    catch_up(hub, outlet);
    Ok(())
}

/// Sends a message's parts in order, each completed before the next (so the socket's buffer
/// never holds more than one).
async fn send_parts<S: Sink<Message> + Unpin>(
    hub: &Hub,
    sink: &mut S,
    parts: &[Utf8Bytes],
    policy: SocketPolicy,
) -> Result<(), ()> {
    for part in parts.iter() {
        send_counted(hub, sink, part.clone(), policy).await?;
    }
    Ok(())
}

/// Sends shared bytes and counts them.
async fn send_counted<S: Sink<Message> + Unpin>(
    hub: &Hub,
    sink: &mut S,
    bytes: Utf8Bytes,
    policy: SocketPolicy,
) -> Result<(), ()> {
    let len = bytes.len();
    send(sink, Message::Text(bytes), policy).await?;
    hub.count_sent(len);
    Ok(())
}

async fn send_message<S: Sink<Message> + Unpin>(
    hub: &Hub,
    sink: &mut S,
    message: &ServerMessage,
    policy: SocketPolicy,
) -> Result<(), ()> {
    let text = serde_json::to_string(message).map_err(|_| ())?;
    send_counted(hub, sink, Utf8Bytes::from(text), policy).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::live::{AlertList, AlertNews, Sample, SampleUpdate};
    use tokio::net::TcpListener;

    /// A client on a real loopback socket, as the browser is: what it reads, what it says.
    struct Client {
        ws: WebSocketStream<TcpStream>,
        task: tokio::task::JoinHandle<Ended>,
    }

    impl Client {
        /// The next message from the server (waits at most 10 s).
        async fn next(&mut self) -> Message {
            let next = tokio::time::timeout(Duration::from_secs(10), self.ws.next()).await;
            next.expect("no message came").expect("the server closed").expect("a bad frame")
        }

        async fn send(&mut self, message: Message) {
            self.ws.send(message).await.unwrap();
        }
    }

    /// Starts a client loop on a fresh loopback connection.
    async fn client(hub: &Arc<Hub>, policy: SocketPolicy, stop: &CancellationToken) -> Client {
        connect(hub, policy, stop, None).await
    }

    /// Starts a client loop whose socket holds only a few kilobytes on either side (so a
    /// client that stops reading is soon felt by the server), when `small` is given.
    async fn connect(
        hub: &Arc<Hub>,
        policy: SocketPolicy,
        stop: &CancellationToken,
        small: Option<usize>,
    ) -> Client {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (far, _) = listener.accept().await.unwrap();
        if let Some(bytes) = small {
            socket2::SockRef::from(&far).set_send_buffer_size(bytes).unwrap();
            socket2::SockRef::from(&near).set_recv_buffer_size(bytes).unwrap();
        }
        let task =
            tokio::spawn(serve_socket(Arc::clone(hub), far, Bytes::new(), policy, stop.clone()));
        let ws = WebSocketStream::from_raw_socket(near, Role::Client, None).await;
        Client { ws, task }
    }

    /// Waits (at most 10 s) until `done` holds, as threads of the fan-out work beside the test;
    /// whether it does.
    async fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::task::yield_now().await;
        }
        true
    }

    /// A hub holding `samples` published samples.
    fn hub_with(samples: u64, max_clients: u64) -> Arc<Hub> {
        let hub = Hub::new(1000, 300, max_clients);
        for seq in 1..=samples {
            publish(&hub, seq);
        }
        hub
    }

    fn parse(message: Message) -> ServerMessage {
        match message {
            Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn publish(hub: &Hub, seq: u64) {
        hub.publish(Sample { seq, ..Default::default() }, None);
    }

    fn update_has_operations(message: Message) -> bool {
        match parse(message) {
            ServerMessage::Update(SampleUpdate { operations, .. }) => operations.is_some(),
            other => panic!("expected an update, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn operations_reach_only_clients_that_subscribe() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        let mut plain = client(&hub, SocketPolicy::default(), &stop).await;
        let mut subscriber = client(&hub, SocketPolicy::default(), &stop).await;
        assert!(matches!(parse(plain.next().await), ServerMessage::Snapshot(_)));
        assert!(matches!(parse(subscriber.next().await), ServerMessage::Snapshot(_)));
        let subscribe = r#"{"type":"subscribe","operations":true}"#;
        subscriber.send(Message::Text(subscribe.into())).await;
        // A ping after the subscription proves the subscription was read first.
        subscriber.send(Message::Text(r#"{"type":"ping"}"#.into())).await;
        assert_eq!(parse(subscriber.next().await), ServerMessage::Pong);
        hub.publish(Sample { seq: 1, ..Default::default() }, Some(vec![]));
        assert!(!update_has_operations(plain.next().await));
        assert!(update_has_operations(subscriber.next().await));
        assert_eq!(hub.stats().ignored_client_messages, 0);
        stop.cancel();
    }

    /// Publishes `n` firing alerts as the alert engine does: the list only while a client
    /// wants it; `changed` false to bring the list to a new subscriber.
    fn publish_alerts(hub: &Hub, n: usize, changed: bool) {
        let counts = crate::model::alerts::AlertCounts { critical: n as u32, ..Default::default() };
        let alerts = (0..n)
            .map(|i| crate::model::alerts::AlertInstance {
                id: format!("{i:016x}"),
                ..Default::default()
            })
            .collect();
        hub.publish_alerts(counts, hub.wants_alert_list().then_some(alerts), n, changed);
    }

    /// Publications made at once from several threads (an evaluation and an acknowledgement,
    /// say) each take their own number: none is lost to another's, and the latest is the last
    /// numbered.
    #[test]
    fn alerts_published_from_many_threads_at_once_each_take_their_own_number() {
        let hub = Hub::new(1000, 10, 10);
        let (threads, each) = (4, 500);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| (0..each).for_each(|_| publish_alerts(&hub, 3, true)));
            }
        });
        assert_eq!(hub.latest_alerts().map(|m| m.seq), Some(threads * each));
    }

    /// The next message's publication number and kind: the alerts listed (`Some`) or only
    /// counted (`None`).
    async fn alerts_message(c: &mut Client) -> (u64, Option<usize>) {
        match parse(c.next().await) {
            ServerMessage::Alerts(AlertList { seq, alerts, total, .. }) => {
                assert_eq!(total, 3);
                (seq, Some(alerts.len()))
            }
            ServerMessage::AlertCounts(AlertNews { seq, counts, total }) => {
                assert_eq!((counts.critical, total), (3, 3));
                (seq, None)
            }
            other => panic!("expected alerts, got {other:?}"),
        }
    }

    async fn say(c: &mut Client, text: &str) {
        c.send(Message::Text(text.into())).await;
    }

    /// Sends a ping and waits for its pong: what was said before it has been read.
    async fn ping(c: &mut Client) {
        say(c, r#"{"type":"ping"}"#).await;
        assert_eq!(parse(c.next().await), ServerMessage::Pong);
    }

    #[tokio::test]
    async fn the_alerts_list_reaches_only_clients_that_subscribe_and_is_made_only_for_them() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        let mut plain = client(&hub, SocketPolicy::default(), &stop).await;
        let listing = SocketPolicy { alerts: true, ..Default::default() };
        let mut lister = client(&hub, listing, &stop).await;
        assert!(matches!(parse(plain.next().await), ServerMessage::Snapshot(_)));
        assert!(matches!(parse(lister.next().await), ServerMessage::Snapshot(_)));
        assert!(hub.wants_alert_list(), "a client that connected with alerts=true");
        publish_alerts(&hub, 3, true);
        assert_eq!(alerts_message(&mut plain).await, (1, None));
        assert_eq!(alerts_message(&mut lister).await, (1, Some(3)));
        // The lister leaves: nobody wants the list, so the next publication makes none.
        stop.cancel();
        assert_eq!(lister.task.await.unwrap(), Ended::ServerShutdown);
        assert!(!hub.wants_alert_list());
        publish_alerts(&hub, 3, true);
        assert!(hub.latest_alerts().unwrap().list.is_none());
        // A client that subscribes later is owed the list (the alert engine publishes it on its
        // next tick, as no news: the others are not sent it again); once made, a client that
        // subscribes gets it at once.
        let stop = CancellationToken::new();
        let mut watcher = client(&hub, SocketPolicy::default(), &stop).await;
        let mut late = client(&hub, SocketPolicy::default(), &stop).await;
        for c in [&mut watcher, &mut late] {
            assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
            assert_eq!(alerts_message(c).await, (2, None));
        }
        say(&mut late, r#"{"type":"subscribe","alerts":true}"#).await;
        ping(&mut late).await;
        assert!(hub.alert_list_missing());
        publish_alerts(&hub, 3, false);
        assert!(!hub.alert_list_missing());
        assert_eq!(alerts_message(&mut late).await, (2, Some(3)));
        publish(&hub, 1);
        assert!(
            matches!(parse(watcher.next().await), ServerMessage::Update(_)),
            "the list repeated for a subscriber is not sent to the others"
        );
        assert!(matches!(parse(late.next().await), ServerMessage::Update(_)));
        let mut second = client(&hub, SocketPolicy::default(), &stop).await;
        assert!(matches!(parse(second.next().await), ServerMessage::Snapshot(_)));
        assert_eq!(alerts_message(&mut second).await, (2, None));
        say(&mut second, r#"{"type":"subscribe","alerts":true}"#).await;
        assert_eq!(alerts_message(&mut second).await, (2, Some(3)), "the list made for another");
        // Unsubscribing goes back to the counts.
        say(&mut late, r#"{"type":"subscribe","alerts":false}"#).await;
        ping(&mut late).await;
        publish_alerts(&hub, 3, true);
        assert_eq!(alerts_message(&mut late).await, (3, None));
        assert_eq!(alerts_message(&mut second).await, (3, Some(3)));
        assert_eq!(alerts_message(&mut watcher).await, (3, None));
        assert_eq!(hub.stats().ignored_client_messages, 0);
        stop.cancel();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_alerts_counts_reach_the_clients_from_the_fan_out_without_their_tasks() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        let mut plain = Vec::new();
        for _ in 0..3 {
            plain.push(client(&hub, SocketPolicy::default(), &stop).await);
        }
        let listing = SocketPolicy { alerts: true, ..Default::default() };
        let mut lister = client(&hub, listing, &stop).await;
        for c in plain.iter_mut().chain([&mut lister]) {
            assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
        }
        // A tick hands the fan-out its list of clients; one more connects after it.
        publish(&hub, 1);
        for c in plain.iter_mut().chain([&mut lister]) {
            assert!(matches!(parse(c.next().await), ServerMessage::Update(_)));
        }
        plain.push(client(&hub, SocketPolicy::default(), &stop).await);
        assert!(matches!(parse(plain[3].next().await), ServerMessage::Snapshot(_)));
        let before = hub.stats().messages_sent;
        publish_alerts(&hub, 3, true);
        // This test's runtime has one thread, and it does not yield here: no client's task can
        // run, so only the fan-out's threads can write the counts.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hub.stats().messages_sent < before + 4 {
            assert!(std::time::Instant::now() < deadline, "the counts were not written");
            std::thread::yield_now();
        }
        for c in &mut plain {
            assert_eq!(alerts_message(c).await, (1, None));
        }
        // The subscriber's own task sends it the list.
        assert_eq!(alerts_message(&mut lister).await, (1, Some(3)));
        assert_eq!(hub.stats().messages_sent, before + 5);
        stop.cancel();
    }

    #[tokio::test]
    async fn snapshot_then_updates_then_pong_and_snapshot_on_request() {
        let hub = Hub::new(1000, 10, 10);
        publish(&hub, 1);
        let stop = CancellationToken::new();
        let mut c = client(&hub, SocketPolicy::default(), &stop).await;
        match parse(c.next().await) {
            ServerMessage::Snapshot(snap) => assert_eq!(snap.history.len(), 1),
            other => panic!("{other:?}"),
        }
        publish(&hub, 2);
        match parse(c.next().await) {
            ServerMessage::Update(SampleUpdate { sample, .. }) => assert_eq!(sample.seq, 2),
            other => panic!("{other:?}"),
        }
        c.send(Message::Text(r#"{"type":"ping"}"#.into())).await;
        assert_eq!(parse(c.next().await), ServerMessage::Pong);
        c.send(Message::Text("garbage".into())).await;
        c.send(Message::Text(r#"{"type":"request_metrics"}"#.into())).await;
        match parse(c.next().await) {
            ServerMessage::Snapshot(snap) => assert_eq!(snap.history.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(hub.stats().ignored_client_messages, 1);
        stop.cancel();
        assert_eq!(c.task.await.unwrap(), Ended::ServerShutdown);
    }

    /// A tick of about 10 KB, more than a small socket holds.
    fn publish_big(hub: &Hub, seq: u64) {
        let mut sample = Sample { seq, ..Default::default() };
        sample.system.per_core_pct = vec![12.5; 2_000];
        hub.publish(sample, None);
    }

    #[tokio::test]
    async fn a_slow_client_skips_to_the_newest_tick_and_the_skip_is_counted() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        let mut slow = connect(&hub, SocketPolicy::default(), &stop, Some(4096)).await;
        let mut fast = client(&hub, SocketPolicy::default(), &stop).await;
        // Both get their snapshot; the slow one does not read anything more for a while.
        assert!(matches!(parse(slow.next().await), ServerMessage::Snapshot(_)));
        assert!(matches!(parse(fast.next().await), ServerMessage::Snapshot(_)));
        for seq in 1..=20 {
            publish_big(&hub, seq);
            // The fast client receives every tick while the slow one's socket stays full.
            match parse(fast.next().await) {
                ServerMessage::Update(SampleUpdate { sample, .. }) => assert_eq!(sample.seq, seq),
                other => panic!("{other:?}"),
            }
        }
        // The alerts change meanwhile: the fast client hears it, the slow one's socket is full.
        publish_alerts(&hub, 3, true);
        assert_eq!(alerts_message(&mut fast).await, (1, None));
        // The slow client now reads: it gets the few ticks its socket held and then the
        // newest, whole (a tick the socket took only part of is finished before the next),
        // and the alerts' counts it missed, once.
        let (mut seen, mut alerts) = (Vec::new(), Vec::new());
        while seen.last() != Some(&20) || alerts.is_empty() {
            match parse(slow.next().await) {
                ServerMessage::Update(SampleUpdate { sample, .. }) => seen.push(sample.seq),
                ServerMessage::AlertCounts(AlertNews { seq, .. }) => alerts.push(seq),
                other => panic!("{other:?}"),
            }
        }
        assert!(seen.len() <= 5, "slow client got a backlog: {seen:?}");
        publish(&hub, 21);
        assert!(matches!(parse(slow.next().await), ServerMessage::Update(_)));
        assert_eq!(alerts, [1], "the counts once");
        assert!(hub.stats().skipped_updates >= 15, "{:?}", hub.stats());
        stop.cancel();
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_after_two_heartbeats() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        // A short heartbeat on the real clock (a paused clock needs tokio's `test-util`, which
        // would make the test build compile everything built on tokio a second time).
        let policy = SocketPolicy { heartbeat: Duration::from_millis(50), ..Default::default() };
        let mut c = client(&hub, policy, &stop).await;
        assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
        let ended = c.task.await.unwrap();
        assert_eq!(ended, Ended::Dead);
        assert_eq!(hub.stats().dead_connections_closed, 1);
        // It was pinged before being given up on.
        let mut pings = 0;
        while let Some(Ok(m)) = c.ws.next().await {
            pings += usize::from(matches!(m, Message::Ping(_)));
        }
        assert!(pings >= 1);
    }

    #[tokio::test]
    async fn a_tick_still_waiting_on_a_slow_socket_counts_in_the_latency_figures() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        // The only client takes its snapshot, then never reads again.
        let mut slow = connect(&hub, SocketPolicy::default(), &stop, Some(4096)).await;
        assert!(matches!(parse(slow.next().await), ServerMessage::Snapshot(_)));
        let mut seq = 0;
        loop {
            seq += 1;
            publish_big(&hub, seq);
            let round = hub.latest_tick().unwrap();
            // Until the fan-out has offered it: taken whole, or left waiting on the socket.
            let offered = eventually(|| {
                round.last_send_ns.load(Ordering::Relaxed) > 0
                    || round.queued.load(Ordering::Relaxed) > 0
            });
            assert!(offered.await, "tick {seq} was never offered");
            if round.queued.load(Ordering::Relaxed) > 0 {
                break;
            }
            assert!(seq < 1_000, "no tick ever waited");
        }
        // The waiting tick is measured when the next one is published, as still waiting.
        let measured = hub.stats().latency_ticks_measured;
        publish_big(&hub, seq + 1);
        let stats = hub.stats();
        assert_eq!(stats.latency_ticks_measured, measured + 1, "{stats:?}");
        assert!(stats.tick_to_last_send_p99_ms.unwrap() > 0.0);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_failed_after_the_send_timeout() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        let policy = SocketPolicy { send_timeout: Duration::from_millis(50), ..Default::default() };
        // The client takes its snapshot, then never reads again.
        let mut c = connect(&hub, policy, &stop, Some(4096)).await;
        assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
        let mut seq = 0;
        let ended = loop {
            seq += 1;
            publish_big(&hub, seq);
            let wait = tokio::time::timeout(Duration::from_millis(10), &mut c.task).await;
            if let Ok(ended) = wait {
                break ended.unwrap();
            }
            assert!(seq < 1_000, "the client was never failed");
        };
        assert_eq!(ended, Ended::SendFailed);
        assert_eq!(hub.stats().failed_sends, 1);
    }

    #[tokio::test]
    async fn a_long_snapshot_arrives_in_small_parts_that_the_page_puts_together() {
        use crate::components::live::{provide_live, CLIENT_HISTORY};
        use crate::server::live::PART_BYTES;
        use leptos::prelude::{GetUntracked, Owner, WithUntracked};
        let hub = Hub::new(1000, 300, 10);
        for seq in 1..=300 {
            let mut sample =
                Sample { seq, at_ms: 1_700_000_000_000 + seq * 1000, ..Sample::default() };
            sample.system.per_core_pct = vec![12.5; 8];
            sample.actions.current_action = Some("report.generate".into());
            hub.publish(sample, None);
        }
        let stop = CancellationToken::new();
        // As the browser connects without samples of its own, then with the first 250.
        for after in [None, Some(250)] {
            let policy = SocketPolicy { after, ..Default::default() };
            let mut c = client(&hub, policy, &stop).await;
            let mut parts = Vec::new();
            loop {
                let Message::Text(text) = c.next().await else {
                    continue;
                };
                let ServerMessage::Snapshot(part) = parse(Message::Text(text.clone())) else {
                    continue;
                };
                assert!(text.len() <= PART_BYTES + 256, "a part of {} B", text.len());
                parts.push(text);
                if !part.more {
                    break;
                }
            }
            let owner = Owner::new();
            owner.with(|| {
                let live = provide_live();
                let own: Vec<Sample> = (1..=after.unwrap_or(0))
                    .map(|seq| Sample {
                        seq,
                        at_ms: 1_700_000_000_000 + seq * 1000,
                        ..Sample::default()
                    })
                    .collect();
                live.seed(&own[own.len().saturating_sub(CLIENT_HISTORY)..]);
                for part in &parts {
                    live.receive(part.as_str(), true);
                }
                let seqs: Vec<u64> =
                    live.history.with_untracked(|h| h.iter().map(|s| s.seq).collect());
                let wanted: Vec<u64> = (211..=300).collect();
                assert_eq!(seqs, wanted, "after {after:?}, from {} parts", parts.len());
                assert_eq!(live.undecodable.get_untracked(), 0);
            });
            if after.is_none() {
                assert!(parts.len() > 10, "300 samples in {} parts", parts.len());
            }
        }
        stop.cancel();
    }

    /// Reads one snapshot, part after part, and applies it to the samples `own` as the browser
    /// does (a part with `after_seq` keeps the samples up to it and appends; one without
    /// replaces them): the sample numbers the client ends up with, and the parts' operation
    /// statistics.
    async fn take_snapshot(c: &mut Client, mut own: Vec<u64>) -> (Vec<u64>, Vec<String>) {
        let mut operations = Vec::new();
        loop {
            let ServerMessage::Snapshot(part) = parse(c.next().await) else {
                continue;
            };
            if part.after_seq > 0 {
                own.retain(|&seq| seq <= part.after_seq);
            } else {
                own.clear();
            }
            own.extend(part.history.iter().map(|s| s.seq));
            operations.extend(part.operations.into_iter().map(|o| o.name));
            if !part.more {
                return (own, operations);
            }
        }
    }

    #[tokio::test]
    async fn reconnecting_for_a_private_snapshot_is_limited_server_wide_and_still_served() {
        // A script that reconnects in a loop, each time asking for a snapshot only it gets: all
        // samples but the oldest, or the samples after the oldest (more than a page's few).
        let hub = hub_with(300, 1000);
        let stop = CancellationToken::new();
        let started = std::time::Instant::now();
        for i in 0..300 {
            let (policy, own) = if i % 2 == 0 {
                (SocketPolicy { history_limit: Some(299), ..Default::default() }, vec![])
            } else {
                (SocketPolicy { after: Some(1), ..Default::default() }, vec![1])
            };
            let mut c = client(&hub, policy, &stop).await;
            let (seqs, _) = take_snapshot(&mut c, own).await;
            // Every client ends up with the newest samples, in order, at least as many as it
            // asked for: its own snapshot, or the shared full one.
            let newest: Vec<u64> = (301 - seqs.len() as u64..=300).collect();
            assert_eq!(seqs, newest, "client {i}");
            assert!(seqs.len() >= 299, "client {i} got {seqs:?}");
            c.send(Message::Close(None)).await;
            assert_eq!(c.task.await.unwrap(), Ended::ClientClosed);
        }
        // The server-wide snapshot limit: 50 per second, burst 100; plus the shared full
        // snapshot, serialised once for the tick.
        let allowed = 100 + (50.0 * started.elapsed().as_secs_f64()).ceil() as u64 + 1;
        let serialised = hub.stats().snapshots_serialised;
        assert!(serialised <= allowed, "{serialised} snapshots serialised, at most {allowed}");
        // With the limit spent, a page's few samples are still its own: 90, not the 300.
        let policy = SocketPolicy { history_limit: Some(90), ..Default::default() };
        let mut page = client(&hub, policy, &stop).await;
        let (seqs, _) = take_snapshot(&mut page, vec![]).await;
        assert_eq!(seqs, (211..=300).collect::<Vec<u64>>());
        stop.cancel();
    }

    #[tokio::test]
    async fn both_snapshot_variants_are_serialised_once_per_tick_however_clients_alternate() {
        let hub = Hub::new(1000, 10, 10);
        let summary = super::super::tests::checkout_summary();
        for seq in 1..=5 {
            hub.publish(Sample { seq, ..Default::default() }, Some(vec![summary.clone()]));
        }
        let stop = CancellationToken::new();
        let mut clients = Vec::new();
        // Browsers and clients subscribed to the operation statistics connect in turn; the
        // subscribers also ask for a fresh snapshot.
        for i in 0..10 {
            let operations = i % 2 == 1;
            let mut c =
                client(&hub, SocketPolicy { operations, ..Default::default() }, &stop).await;
            let (seqs, names) = take_snapshot(&mut c, vec![]).await;
            assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
            assert_eq!(names, if operations { vec!["api.checkout".to_string()] } else { vec![] });
            if operations {
                say(&mut c, r#"{"type":"request_metrics"}"#).await;
                let (_, names) = take_snapshot(&mut c, vec![]).await;
                assert_eq!(names, vec!["api.checkout".to_string()]);
            }
            clients.push(c);
        }
        assert_eq!(hub.stats().snapshots_serialised, 2, "one of each variant");
        assert_eq!(hub.stats().rate_limited_requests, 0);
        stop.cancel();
    }

    #[tokio::test]
    async fn every_client_gets_every_tick_once_and_in_order() {
        let hub = Hub::new(1000, 10, 100);
        let stop = CancellationToken::new();
        let mut clients = Vec::new();
        for _ in 0..40 {
            let mut c = client(&hub, SocketPolicy::default(), &stop).await;
            assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
            clients.push(c);
        }
        // Each tick is written by the fan-out's threads, a share of the clients each, from a
        // different first client every time.
        for seq in 1..=5 {
            publish(&hub, seq);
            for c in &mut clients {
                match parse(c.next().await) {
                    ServerMessage::Update(SampleUpdate { sample, .. }) => {
                        assert_eq!(sample.seq, seq);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        // Nothing more: no tick twice.
        say(&mut clients[0], r#"{"type":"ping"}"#).await;
        assert_eq!(parse(clients[0].next().await), ServerMessage::Pong);
        // The threads count their share after writing it all.
        // Each client's snapshot and five ticks, and one pong.
        let sent = 40 + 40 * 5 + 1;
        eventually(|| hub.stats().messages_sent >= sent).await;
        let stats = hub.stats();
        assert_eq!((stats.messages_sent, stats.skipped_updates), (sent, 0));
        stop.cancel();
    }

    #[tokio::test]
    async fn no_tick_comes_between_the_parts_of_a_snapshot() {
        let hub = hub_with(300, 100);
        let stop = CancellationToken::new();
        let mut clients = Vec::new();
        for _ in 0..10 {
            let mut c = client(&hub, SocketPolicy::default(), &stop).await;
            take_snapshot(&mut c, vec![]).await;
            clients.push(c);
        }
        // Ticks as fast as they can be published while the clients ask for snapshots (in about
        // a dozen parts each; the browser drops a sample that comes between two parts).
        struct Stop(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Stop {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Relaxed);
            }
        }
        let publishing = Stop(Arc::new(std::sync::atomic::AtomicBool::new(true)));
        let publisher = std::thread::spawn({
            let (hub, publishing) = (Arc::clone(&hub), Arc::clone(&publishing.0));
            move || {
                let mut seq = 300;
                while publishing.load(Ordering::Relaxed) {
                    seq += 1;
                    publish(&hub, seq);
                    std::thread::yield_now();
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for c in &mut clients {
            for _ in 0..2 {
                say(c, r#"{"type":"request_metrics"}"#).await;
                let mut parts = 0;
                loop {
                    assert!(std::time::Instant::now() < deadline, "no whole snapshot came");
                    match parse(c.next().await) {
                        ServerMessage::Snapshot(part) => {
                            parts += 1;
                            if !part.more {
                                break;
                            }
                        }
                        ServerMessage::Update(update) if parts > 0 => {
                            panic!("tick {} after part {parts} of a snapshot", update.sample.seq)
                        }
                        _ => {}
                    }
                }
                assert!(parts > 5, "{parts} parts");
            }
        }
        drop(publishing);
        publisher.join().unwrap();
        stop.cancel();
    }

    #[tokio::test]
    async fn a_hub_is_freed_with_its_fan_out_once_its_clients_left() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        let mut c = client(&hub, SocketPolicy::default(), &stop).await;
        assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
        // The fan-out's threads have written a round.
        publish(&hub, 1);
        assert!(matches!(parse(c.next().await), ServerMessage::Update(_)));
        c.send(Message::Close(None)).await;
        assert_eq!(c.task.await.unwrap(), Ended::ClientClosed);
        let weak = Arc::downgrade(&hub);
        let threads = hub.fanout.threads();
        drop(hub);
        // A thread holds the hub only while it writes a round, and ends with it.
        eventually(|| weak.upgrade().is_none() && threads.upgrade().is_none()).await;
        assert!(weak.upgrade().is_none(), "the fan-out's threads keep the hub");
        assert!(threads.upgrade().is_none(), "the fan-out's threads go on");
    }

    #[tokio::test]
    async fn clients_that_come_and_go_between_ticks_do_not_grow_the_fan_out() {
        // Ticks may be an hour apart; a script reconnecting in a loop meanwhile.
        let hub = hub_with(1, 10);
        let stop = CancellationToken::new();
        for _ in 0..50 {
            let mut c = client(&hub, SocketPolicy::default(), &stop).await;
            assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
            c.send(Message::Close(None)).await;
            assert_eq!(c.task.await.unwrap(), Ended::ClientClosed);
        }
        assert!(hub.fanout.listed() <= 4, "{} clients listed", hub.fanout.listed());
        stop.cancel();
    }

    #[tokio::test]
    async fn the_client_closing_ends_the_loop() {
        let hub = Hub::new(1000, 10, 10);
        let stop = CancellationToken::new();
        let mut c = client(&hub, SocketPolicy::default(), &stop).await;
        assert!(matches!(parse(c.next().await), ServerMessage::Snapshot(_)));
        c.send(Message::Close(None)).await;
        assert_eq!(c.task.await.unwrap(), Ended::ClientClosed);
    }
}
