//! Who may read and write: the shared token, browser sessions and the sign-in page.
//!
//! Without `--token` everything is open (Vitals then listens on loopback only). With a token,
//! `--auth` decides what needs it:
//! - `ingest`: writes only (ingestion; later the admin routes); the dashboard and read APIs stay
//!   open to whoever can reach the port.
//! - `all` (the default once a token is set): every page, API and `/ws` as well. Scripts send
//!   `Authorization: Bearer <token>` (or `X-Vitals-Token`); a browser signs in once at `/login`,
//!   which sets an `HttpOnly`, `SameSite=Strict` session cookie (`Secure` when reached over
//!   HTTPS). The token never travels in a URL and is never logged.
//!
//! Always open: `/login` and `/logout`, `/health` (for probes), the site's static assets.
//! Token comparisons take a time that depends only on the token's length. Sessions live in
//! memory (a restart signs everyone out), expire after [`SESSION_TTL`], and at most
//! [`MAX_SESSIONS`] are held (the oldest goes first). Failed tokens are limited per client
//! address ([`attempts`]): after ten, that address's tokens are refused with 429 for a minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::config::Secret;
use super::error::{is_api_path, ApiError};

pub mod attempts;

use attempts::{Attempts, Client, Peer, Refusal};

/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 1000;
/// The session cookie's name.
pub const COOKIE: &str = "vitals_session";

/// What the token protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Writes only.
    Ingest,
    /// Everything but the sign-in page, health and static assets.
    #[default]
    All,
}

impl AuthMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ingest" => Some(AuthMode::Ingest),
            "all" => Some(AuthMode::All),
            _ => None,
        }
    }
}

/// Whether `given` equals `expected`, in a time that depends only on the length of `expected`:
/// neither where the first differing byte is nor how long `given` is shows in the timing.
fn constant_time_eq(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let mut same = (a.len() as u64).ct_eq(&(b.len() as u64));
    for (i, x) in a.iter().enumerate() {
        same &= x.ct_eq(b.get(i).unwrap_or(&0));
    }
    bool::from(same)
}

/// What a request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The token or a live session (or no token is configured).
    Granted,
    /// Neither.
    Denied,
    /// It presented a token, not compared: its address failed too often, or every address
    /// together did.
    Limited(Refusal),
}

/// The token, the mode, the browser sessions and the failed attempts; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    token: Option<Arc<Secret>>,
    mode: AuthMode,
    sessions: Arc<Mutex<HashMap<String, Instant>>>,
    attempts: Arc<Attempts>,
    /// Whether `X-Forwarded-For` names the client (`--trust-forwarded`).
    trust_forwarded: bool,
}

impl Auth {
    pub fn new(token: Option<Secret>, mode: AuthMode, trust_forwarded: bool) -> Self {
        Auth {
            token: token.map(Arc::new),
            mode,
            sessions: Arc::default(),
            attempts: Arc::default(),
            trust_forwarded,
        }
    }

    /// True when no token is configured or `presented` equals it (constant time).
    pub fn admits(&self, presented: Option<&str>) -> bool {
        match (&self.token, presented) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(expected), Some(given)) => constant_time_eq(expected.expose(), given),
        }
    }

    /// Whether reads (pages, APIs, `/ws`) need the token.
    pub fn protects_reads(&self) -> bool {
        self.token.is_some() && self.mode == AuthMode::All
    }

    /// Whether the request carries the token or a live session (always, without a token). A
    /// token presented counts as an attempt of the request's client ([`attempts`]).
    pub fn access(&self, headers: &HeaderMap, peer: Peer) -> Access {
        if self.token.is_none() {
            return Access::Granted;
        }
        if let Some(token) = bearer(headers) {
            return self.attempt(headers, peer, token);
        }
        match session_id(headers).is_some_and(|id| self.session_valid(id)) {
            true => Access::Granted,
            false => Access::Denied,
        }
    }

    /// Compares `token` unless the client is locked out, and counts the attempt.
    fn attempt(&self, headers: &HeaderMap, peer: Peer, token: &str) -> Access {
        let client = Client::resolve(headers, peer, self.trust_forwarded);
        if let Err(refusal) = self.attempts.check(client) {
            return Access::Limited(refusal);
        }
        if self.admits(Some(token)) {
            Access::Granted
        } else {
            self.attempts.wrong(client);
            Access::Denied
        }
    }

    fn session_valid(&self, id: &str) -> bool {
        let Ok(mut sessions) = self.sessions.lock() else { return false };
        match sessions.get(id) {
            Some(created) if created.elapsed() < SESSION_TTL => true,
            Some(_) => {
                sessions.remove(id);
                false
            }
            None => false,
        }
    }

    /// Opens a session; `None` when no random bytes could be had.
    fn open_session(&self) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions.lock().ok()?;
        sessions.retain(|_, created| created.elapsed() < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions.iter().min_by_key(|(_, c)| **c).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), Instant::now());
        Some(id)
    }

    fn close_session(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut sessions)) = (session_id(headers), self.sessions.lock()) {
            sessions.remove(id);
        }
    }

    /// Wrong tokens, and tokens refused uncompared (see [`attempts`]), since the start.
    pub fn attempt_counts(&self) -> (u64, u64) {
        self.attempts.counts()
    }

    /// Sessions held now.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-vitals-token").and_then(|v| v.to_str().ok()))
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn unauthorized() -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or invalid token: send `Authorization: Bearer <token>`",
    )
    .with_field("authorization")
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"vitals\""));
    response
}

/// What a token not compared is told: 429 JSON naming the field, and when to try again.
pub fn refusal_text(refusal: Refusal) -> String {
    match refusal {
        Refusal::LockedOut { retry_after_secs } => {
            format!("too many wrong tokens from this address: try again in {retry_after_secs} s")
        }
        Refusal::Paused => {
            "too many wrong tokens from everywhere: token checks pause for a second".to_string()
        }
    }
}

fn retry_after(refusal: Refusal) -> HeaderValue {
    HeaderValue::from(match refusal {
        Refusal::LockedOut { retry_after_secs } => retry_after_secs,
        Refusal::Paused => attempts::SERVER_PAUSE.as_secs(),
    })
}

fn limited(refusal: Refusal) -> Response {
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, refusal_text(refusal))
        .with_field("authorization")
        .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, retry_after(refusal));
    response
}

/// Middleware for write routes: the token (or a session) when one is configured; 401 JSON else.
pub async fn require_token(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    match auth.access(req.headers(), Peer::of(req.extensions())) {
        Access::Granted => next.run(req).await,
        Access::Denied => unauthorized(),
        Access::Limited(refusal) => limited(refusal),
    }
}

/// Paths open to everyone whatever the mode.
fn always_open(path: &str) -> bool {
    matches!(path, "/login" | "/logout" | "/health" | "/favicon.ico" | "/robots.txt")
        || path.strip_prefix('/').and_then(super::assets::in_pkg).is_some()
}

/// Middleware for every route under `--auth all`: unauthenticated API calls get 401 JSON,
/// a browser asking for a page is sent to the sign-in page.
pub async fn require_sign_in(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !auth.protects_reads() || always_open(path) {
        return next.run(req).await;
    }
    match auth.access(req.headers(), Peer::of(req.extensions())) {
        Access::Granted => return next.run(req).await,
        Access::Limited(refusal) => return limited(refusal),
        Access::Denied => {}
    }
    let wants_page = req.method() == Method::GET
        && !is_api_path(path)
        && path != "/ws"
        && path != "/metrics"
        && !path.starts_with("/rpc/");
    if wants_page {
        let next_path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        return Redirect::to(&format!("/login?next={}", url_escape(next_path))).into_response();
    }
    unauthorized()
}

/// Percent-escapes what is not safe in a query value.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only a local path may be the target after signing in (no open redirect). Browsers read `\`
/// as `/` and drop tabs and line feeds, so `/\evil` or `/<tab>/evil` would be `//evil`, another
/// host: a path with a backslash, whitespace or a control character is refused whole.
fn safe_next(next: Option<&str>) -> String {
    let local = |p: &str| {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    };
    match next {
        Some(p) if local(p) => p.into(),
        _ => "/".into(),
    }
}

/// The sign-in page's own policy: its inline style, a form to itself, nothing else.
const LOGIN_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

fn login_page(next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let next = next.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
    let error = error.map_or(String::new(), |text| {
        format!(r#"<p class="error" role="alert" data-testid="login-error">{text}</p>"#)
    });
    let html = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · Vitals</title>
<style>body{{font:16px system-ui,sans-serif;background:#0f1419;color:#e6e6e6;display:grid;place-items:center;min-height:100vh;margin:0}}
form{{background:#1a2129;padding:2rem;border-radius:8px;display:grid;gap:.75rem;min-width:18rem}}
input,button{{font:inherit;padding:.5rem;border-radius:4px;border:1px solid #3a4550}}
button{{background:#2f81f7;color:#fff;border:0;cursor:pointer}}.error{{color:#f85149;margin:0}}</style></head>
<body><form method="post" action="/login" data-testid="login-form"><h1>Vitals</h1>
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{next}">{error}
<button type="submit">Sign in</button></form></body></html>"#
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(LOGIN_CSP));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /login[?next=/path]`: the sign-in form (or straight on when signing in is not needed).
pub async fn login_form(
    State(auth): State<Auth>,
    Query(query): Query<HashMap<String, String>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(query.get("next").map(String::as_str));
    if !auth.protects_reads() || auth.access(&headers, peer) == Access::Granted {
        return Redirect::to(&next).into_response();
    }
    login_page(&next, None, StatusCode::OK)
}

/// The sign-in form's fields.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: checks the token and opens a session (a cookie), then goes on to `next`.
/// Same-origin only (the Origin rule); wrong tokens are limited per address ([`attempts`]).
pub async fn login_submit(
    State(auth): State<Auth>,
    peer: Peer,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    const WRONG: Option<&str> = Some("Wrong token.");
    if auth.token.is_none() {
        return login_page(&next, WRONG, StatusCode::UNAUTHORIZED);
    }
    match auth.attempt(&headers, peer, &form.token) {
        Access::Granted => {}
        Access::Denied => return login_page(&next, WRONG, StatusCode::UNAUTHORIZED),
        Access::Limited(refusal) => {
            // A person at the form reads the form again, with the reason and the wait.
            let text = refusal_text(refusal);
            let mut page = login_page(&next, Some(&text), StatusCode::TOO_MANY_REQUESTS);
            page.headers_mut().insert(header::RETRY_AFTER, retry_after(refusal));
            return page;
        }
    }
    let Some(id) = auth.open_session() else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session")
            .into_response();
    };
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /logout`: closes the session and clears the cookie.
pub async fn logout(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    auth.close_session(&headers);
    let mut response = Redirect::to("/login").into_response();
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        let open = Auth::new(None, AuthMode::All, false);
        assert!(open.admits(None));
        let auth = Auth::new(Some(Secret::new("abc123")), AuthMode::All, false);
        assert!(auth.admits(Some("abc123")));
        for wrong in ["abc124", "abc1234", "abc12", "", "ABC123"] {
            assert!(!auth.admits(Some(wrong)), "{wrong}");
        }
        assert!(!auth.admits(None));
    }

    #[test]
    fn sessions_are_bounded_and_found_by_cookie() {
        let auth = Auth::new(Some(Secret::new("t")), AuthMode::All, false);
        let first = auth.open_session().unwrap();
        assert_eq!(first.len(), 64);
        for _ in 0..MAX_SESSIONS + 10 {
            auth.open_session().unwrap();
        }
        assert_eq!(auth.session_count(), MAX_SESSIONS);
        let last = auth.open_session().unwrap();
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; {COOKIE}={last}");
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(auth.access(&headers, Peer::default()), Access::Granted);
        auth.close_session(&headers);
        assert_eq!(auth.access(&headers, Peer::default()), Access::Denied);
    }

    #[test]
    fn only_local_paths_follow_a_sign_in() {
        assert_eq!(safe_next(Some("/operations?window=1h")), "/operations?window=1h");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "evil"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(url_escape("/ops?a=1&b"), "/ops%3Fa%3D1%26b");
    }

    #[test]
    fn a_path_a_browser_would_read_as_another_host_is_refused() {
        // Browsers drop tabs and line feeds from a URL, so `/\t/evil` is `//evil`.
        for bad in ["/\t/evil.example", "/\n/evil", "/\r\n/evil", "/ /x", "/\\evil", "/\u{0}x"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some("/operations?window=1h")), "/operations?window=1h");
    }
}
