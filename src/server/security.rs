//! Security policy: the listen-address rule, the `Host` and `Origin` checks (DNS rebinding and
//! cross-site requests), the response security headers and the document's
//! Content-Security-Policy. Who may read and write (the token, sessions) is `auth`'s.
//!
//! - **Host**: every request's `Host` must be an IP literal (which no DNS rebinding can
//!   produce), `localhost` (or a `*.localhost` name), the listen host, or one of
//!   `--allowed-hosts`; with `--trust-forwarded`, `X-Forwarded-Host` is checked the same way.
//! - **Origin**: a request that changes state (any method but GET, HEAD and OPTIONS, which
//!   covers ingestion and the UI's server functions) and every `/ws` upgrade must come from the
//!   server's own origin (the scheme and `Host` it was reached at) or one of
//!   `--allowed-origins`. A request without `Origin` (curl, SDKs, agents) passes this rule unless
//!   the browser marks it `Sec-Fetch-Site: cross-site`.
//!
//! Both refusals are 403 with a JSON error naming the header.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::config::Secret;
use super::error::ApiError;

/// Which hosts and origins the server answers; built once from the configuration.
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    /// Host names accepted besides IP literals and `localhost` (lower case, without port).
    hosts: Vec<String>,
    /// Origins accepted besides the server's own (`scheme://host[:port]`, lower case).
    origins: Vec<String>,
    /// Whether `X-Forwarded-Proto` / `X-Forwarded-Host` from a reverse proxy are believed.
    trust_forwarded: bool,
}

impl OriginPolicy {
    pub fn new(
        listen_host: &str,
        allowed_hosts: &[String],
        allowed_origins: &[String],
        trust_forwarded: bool,
    ) -> Self {
        let mut hosts: Vec<String> = allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        hosts.push(listen_host.to_ascii_lowercase());
        let origins =
            allowed_origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect();
        OriginPolicy { hosts, origins, trust_forwarded }
    }

    /// Whether a `Host` value (`name[:port]`) is one this server answers to.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        name == "localhost" || name.ends_with(".localhost") || self.hosts.contains(&name)
    }

    /// Whether `origin` may make state-changing requests to a server reached as `own`
    /// (`scheme://host[:port]`).
    pub fn origin_allowed(&self, origin: &str, own: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        own.is_some_and(|own| same_origin(&origin, &own.to_ascii_lowercase()))
            || self.origins.contains(&origin)
    }

    /// The origin the request was addressed to: the scheme and `Host` it arrived with (from
    /// the reverse proxy's headers when they are trusted).
    fn own_origin(&self, headers: &HeaderMap) -> Option<String> {
        let forwarded = |name: &str| {
            self.trust_forwarded
                .then(|| headers.get(name).and_then(|v| v.to_str().ok()))
                .flatten()
                .map(|v| v.split(',').next().unwrap_or(v).trim().to_string())
        };
        let scheme = forwarded("x-forwarded-proto").unwrap_or_else(|| "http".to_string());
        let host = forwarded("x-forwarded-host").or_else(|| {
            headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_string)
        })?;
        Some(format!("{scheme}://{host}"))
    }
}

/// The name part of a `Host` value: `[::1]:3000` -> `::1`, `example.com:80` -> `example.com`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Same scheme, host and port, with the scheme's default port made explicit.
fn same_origin(a: &str, b: &str) -> bool {
    fn normal(origin: &str) -> Option<(String, String)> {
        let (scheme, rest) = origin.split_once("://")?;
        let default = match scheme {
            "http" => "80",
            "https" => "443",
            _ => return None,
        };
        let name = host_name(rest);
        let port = rest.strip_prefix('[').map_or(rest, |r| r.split(']').nth(1).unwrap_or(""));
        let port = port.rsplit_once(':').map_or(default, |(_, p)| p);
        let port = if port.is_empty() { default } else { port };
        Some((scheme.to_string(), format!("{name}:{port}")))
    }
    matches!((normal(a), normal(b)), (Some(x), Some(y)) if x == y)
}

/// Middleware: refuses requests whose `Host` (or trusted `X-Forwarded-Host`) is not one of
/// this server's names, and cross-origin requests that change state or open `/ws`.
pub async fn check_origin(
    State(policy): State<Arc<OriginPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    match admit(&policy, req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}

fn admit(policy: &OriginPolicy, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut names = vec!["host"];
    if policy.trust_forwarded {
        names.push("x-forwarded-host");
    }
    for name in names {
        if let Some(host) = header_str(name) {
            if !policy.host_allowed(host.split(',').next().unwrap_or(host)) {
                return Err(ApiError::forbidden_header(
                    name,
                    format!(
                        "{name} '{}' is not a name of this server; add it with --allowed-hosts",
                        host.chars().take(100).collect::<String>()
                    ),
                ));
            }
        }
    }
    let upgrade = header_str("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if safe && !upgrade {
        return Ok(());
    }
    match header_str("origin") {
        Some(origin) => {
            if policy.origin_allowed(origin, policy.own_origin(headers).as_deref()) {
                Ok(())
            } else {
                Err(ApiError::forbidden_header(
                    "origin",
                    format!(
                        "cross-origin request from '{}' refused; add the origin with \
                         --allowed-origins",
                        origin.chars().take(100).collect::<String>()
                    ),
                ))
            }
        }
        None if header_str("sec-fetch-site") == Some("cross-site") => {
            Err(ApiError::forbidden_header("sec-fetch-site", "cross-site request refused"))
        }
        None => Ok(()),
    }
}

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
    // Not `no-referrer`: under it browsers send `Origin: null` with same-origin form posts
    // (the sign-in form), which the Origin rule must refuse. `same-origin` still tells other
    // sites nothing.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(API_CSP));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

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

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn hosts_are_ip_literals_localhost_the_listen_host_or_allowed() {
        let policy = OriginPolicy::new("127.0.0.1", &["vitals.example".into()], &[], false);
        for ok in ["127.0.0.1:3000", "localhost:3000", "[::1]:3000", "10.1.2.3", "VITALS.example"] {
            assert!(policy.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example:3000", "localhost.evil.example", "127.0.0.1.nip.io"] {
            assert!(!policy.host_allowed(bad), "{bad}");
        }
        let err = admit(&policy, &Method::GET, &headers(&[("host", "evil.example")])).unwrap_err();
        assert_eq!((err.status, err.field.as_deref()), (StatusCode::FORBIDDEN, Some("host")));
    }

    #[test]
    fn state_changes_and_upgrades_must_be_same_origin_or_allowed() {
        let policy = OriginPolicy::new("127.0.0.1", &[], &["https://ops.example".into()], false);
        let post = |origin: &'static str| {
            admit(
                &policy,
                &Method::POST,
                &headers(&[("host", "127.0.0.1:3000"), ("origin", origin)]),
            )
        };
        assert!(post("http://127.0.0.1:3000").is_ok());
        assert!(post("https://ops.example").is_ok());
        let err = post("http://evil.example").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("origin"));
        assert!(post("http://127.0.0.1:3001").is_err());
        assert!(post("null").is_err());
        // A foreign page's WebSocket upgrade is a GET, and refused too.
        let upgrade = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
            ("upgrade", "websocket"),
        ]);
        assert!(admit(&policy, &Method::GET, &upgrade).is_err());
        // Reads from a foreign page are not state changes (CORS keeps their answers away).
        let read = headers(&[("host", "127.0.0.1:3000"), ("origin", "http://evil.example")]);
        assert!(admit(&policy, &Method::GET, &read).is_ok());
        // No Origin: curl and SDKs pass, unless the browser says cross-site.
        assert!(admit(&policy, &Method::POST, &headers(&[("host", "127.0.0.1:3000")])).is_ok());
        let marked = headers(&[("host", "127.0.0.1:3000"), ("sec-fetch-site", "cross-site")]);
        assert!(admit(&policy, &Method::POST, &marked).is_err());
    }

    #[test]
    fn behind_a_proxy_the_forwarded_origin_counts_only_when_trusted() {
        let h = headers(&[
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "vitals.example"),
            ("x-forwarded-proto", "https"),
            ("origin", "https://vitals.example"),
        ]);
        let trusting = OriginPolicy::new("127.0.0.1", &["vitals.example".into()], &[], true);
        assert!(admit(&trusting, &Method::POST, &h).is_ok());
        let wary = OriginPolicy::new("127.0.0.1", &["vitals.example".into()], &[], false);
        assert!(admit(&wary, &Method::POST, &h).is_err());
        let unknown = OriginPolicy::new("127.0.0.1", &[], &[], true);
        let err = admit(&unknown, &Method::POST, &h).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("x-forwarded-host"));
    }
}
