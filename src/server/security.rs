//! Security policy in one place: the listen-address rule, the bearer-token check (constant time),
//! the response security headers and the document's Content-Security-Policy.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::config::Secret;

/// Resolves `host:port` and enforces the rule that only loopback may be served without a token.
/// Returns the address to bind, or the one-line reason to refuse.
pub fn listen_addr(host: &str, port: u16, token: Option<&Secret>) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host '{host}': {e}"))?
        .collect();
    let first = *addrs.first().ok_or_else(|| format!("host '{host}' has no address"))?;
    let loopback = addrs.iter().all(|a| is_loopback(a.ip()));
    if !loopback && token.is_none() {
        return Err(format!(
            "refusing to listen on {host} without a token: anyone on the network could use it. \
             Set one with --token <SECRET> or VITALS_TOKEN=<SECRET>, or bind to 127.0.0.1"
        ));
    }
    Ok(first)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The token that protected routes require, if one is configured.
#[derive(Clone, Default)]
pub struct TokenGuard(Option<Arc<Secret>>);

impl TokenGuard {
    pub fn new(token: Option<Secret>) -> Self {
        TokenGuard(token.map(Arc::new))
    }

    /// True when no token is configured or `presented` equals it. The comparison takes the same
    /// time wherever the first differing byte is.
    pub fn admits(&self, presented: Option<&str>) -> bool {
        match (&self.0, presented) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(expected), Some(given)) => {
                bool::from(expected.expose().as_bytes().ct_eq(given.as_bytes()))
            }
        }
    }
}

/// Middleware for routes behind the token: `Authorization: Bearer <token>` or `X-Vitals-Token`.
/// Answers 401 with a JSON body when the token is missing or wrong.
pub async fn require_token(State(guard): State<TokenGuard>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-vitals-token").and_then(|v| v.to_str().ok()));
    if guard.admits(presented) {
        return next.run(req).await;
    }
    let body = serde_json::json!({
        "error": "missing or invalid token: send `Authorization: Bearer <token>`",
        "field": "authorization",
    });
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"vitals\""));
    response
}

/// The policy for responses that are not the HTML document (JSON, assets): nothing may run.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The document's policy: its own scripts (inline ones only with this response's nonce), its own
/// WASM, WebSocket back to the same origin, no framing.
pub fn document_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Sets the document's CSP (with the nonce leptos_axum generated for this response). Called
/// while the shell renders on the server.
pub fn set_document_csp() {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&document_csp(&nonce.to_string())) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Adds the security headers every response carries; a CSP set by the handler is kept.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(API_CSP));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_needs_no_token() {
        assert!(listen_addr("127.0.0.1", 0, None).is_ok());
        assert!(listen_addr("::1", 0, None).is_ok());
        assert!(listen_addr("localhost", 0, None).is_ok());
    }

    #[test]
    fn other_addresses_need_a_token() {
        let err = listen_addr("0.0.0.0", 3000, None).unwrap_err();
        assert!(err.contains("--token"), "{err}");
        assert!(err.contains("VITALS_TOKEN"), "{err}");
        let token = Secret::new("s3cret-s3cret");
        assert!(listen_addr("0.0.0.0", 3000, Some(&token)).is_ok());
    }

    #[test]
    fn token_guard_compares_exactly() {
        let open = TokenGuard::new(None);
        assert!(open.admits(None));
        let guard = TokenGuard::new(Some(Secret::new("abc123")));
        assert!(guard.admits(Some("abc123")));
        assert!(!guard.admits(Some("abc124")));
        assert!(!guard.admits(Some("abc1234")));
        assert!(!guard.admits(Some("")));
        assert!(!guard.admits(None));
    }
}
