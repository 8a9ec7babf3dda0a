//! Helpers: an in-process router with a temporary data directory, and a spawned `vitals` binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;
use vitals::server::config::ServeConfig;
use vitals::server::state::AppState;
use vitals::server::{build_state, router};

/// A router over a fresh state whose data directory lives as long as the value.
pub struct TestApp {
    pub router: axum::Router,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig {
            data_dir: dir.path().to_path_buf(),
            statsd: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        adjust(&mut config);
        let state = build_state(config, Default::default()).unwrap();
        TestApp { router: router(state.clone()), state, _dir: dir }
    }

    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(request).await.unwrap()
    }

    pub async fn get(&self, uri: &str) -> Response<Body> {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    pub async fn get_json(&self, uri: &str) -> (axum::http::StatusCode, serde_json::Value) {
        let response = self.get(uri).await;
        let status = response.status();
        (status, serde_json::from_slice(&body_bytes(response).await).unwrap())
    }

    /// POSTs a JSON body to `/api/v1/ingest`.
    pub async fn ingest(&self, body: &str) -> (axum::http::StatusCode, serde_json::Value) {
        let request = Request::post("/api/v1/ingest")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.send(request).await;
        let status = response.status();
        (status, serde_json::from_slice(&body_bytes(response).await).unwrap())
    }
}

/// The status and JSON body of a response; panics, showing the body, when it is not JSON.
pub async fn json(response: Response<Body>) -> (axum::http::StatusCode, serde_json::Value) {
    let status = response.status();
    let bytes = body_bytes(response).await;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

pub async fn body_bytes(response: Response<Body>) -> Vec<u8> {
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

pub async fn body_text(response: Response<Body>) -> String {
    String::from_utf8(body_bytes(response).await).unwrap()
}

/// The `vitals` binary under test.
pub fn vitals() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vitals"));
    for (key, _) in std::env::vars() {
        if key.starts_with("VITALS_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A running `vitals serve` on a free port; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The log lines written before the server listened.
    pub startup: Vec<String>,
    _log: mpsc::Receiver<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn spawn(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self::spawn_in(dir.path(), extra);
        server._dir = Some(dir);
        server
    }

    /// A server on the data directory `dir` (which outlives it).
    pub fn spawn_in(dir: &std::path::Path, extra: &[&str]) -> Self {
        let mut child = vitals()
            .args(["serve", "--port", "0", "--statsd", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut startup = Vec::new();
        let addr = loop {
            let line = log.recv_timeout(Duration::from_secs(20)).expect("server did not start");
            if let Some(rest) = line.split("Listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
            startup.push(line);
        };
        Server { child, addr, startup, _log: log, _dir: None }
    }

    /// A request with an optional JSON body over a fresh connection: status and body.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let stream = std::net::TcpStream::connect(self.addr).unwrap();
        self.request_over(stream, method, path, &[], body)
    }

    /// [`Self::request`] from the local address `source` (any of 127.0.0.0/8), with headers.
    pub fn request_from(
        &self,
        source: std::net::IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
        socket.connect(&self.addr.into()).unwrap();
        self.request_over(socket.into(), method, path, headers, None)
    }

    fn request_over(
        &self,
        mut stream: std::net::TcpStream,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String) {
        use std::io::{Read, Write};
        let body = body.unwrap_or("");
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    /// The JSON answer of a GET (status 200 expected).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.request("GET", path, None);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local receiver that records what it is sent and fails the first `fail_first` requests.
#[derive(Clone, Default)]
pub struct Receiver {
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
    fail_first: std::sync::Arc<std::sync::Mutex<usize>>,
}

pub async fn start_receiver(fail_first: usize) -> (std::net::SocketAddr, Receiver) {
    let receiver = Receiver {
        fail_first: std::sync::Arc::new(std::sync::Mutex::new(fail_first)),
        ..Default::default()
    };
    let state = receiver.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let state = state.clone();
        async move {
            let path = req.uri().path().to_string();
            let bytes = axum::body::to_bytes(req.into_body(), 8 << 20).await.unwrap();
            let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            let mut fail = state.fail_first.lock().unwrap();
            state.seen.lock().unwrap().push((path, value));
            if *fail > 0 {
                *fail -= 1;
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            }
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, receiver)
}

/// Sends `method uri` with a JSON `body` (and the bearer `token`) through the router: the
/// status and the JSON answer (`null` for 204).
pub async fn call_with(
    app: &TestApp,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (axum::http::StatusCode, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let response =
        app.send(request.body(Body::from(body.unwrap_or("").to_string())).unwrap()).await;
    let status = response.status();
    if status == axum::http::StatusCode::NO_CONTENT {
        return (status, serde_json::Value::Null);
    }
    json(response).await
}
