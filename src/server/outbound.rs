//! Vitals' own HTTP requests to other servers (alert receivers, the demo's ingestion): one
//! HTTP/1.1 POST of a JSON body per connection, over plain TCP, bounded by a timeout. Only
//! `http://` URLs: a receiver that needs TLS sits behind a local relay or Alertmanager.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::net::TcpStream;

use super::config::Secret;

/// Most bytes of an answer's body kept for an error message.
const ERROR_BODY_CHARS: usize = 200;

/// Where a POST goes: an `http://host[:port]/path` URL, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as given (without credentials, which are refused).
    pub url: String,
    host: String,
    port: u16,
    /// `host[:port]` for the `Host` header.
    authority: String,
    path: String,
}

impl Endpoint {
    /// Parses `url`; the error says what is wrong in one line.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        // Errors show the URL without its credentials: they end up in logs and on the console.
        let shown = without_credentials(url);
        let uri: hyper::Uri = url.parse().map_err(|_| format!("{shown} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "{shown}: https receivers are not supported yet; use http:// (a local relay or \
                     Alertmanager for TLS)"
                ))
            }
            _ => return Err(format!("{shown} must start with http://")),
        }
        let authority = uri.authority().ok_or_else(|| format!("{shown} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "{shown}: credentials in the URL are refused (they would be logged)"
            ));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        if host.is_empty() {
            return Err(format!("{shown} has no host"));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        Ok(Endpoint {
            url: url.to_string(),
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            path,
        })
    }

    /// An endpoint at a socket address and path.
    pub fn at(addr: std::net::SocketAddr, path: &str) -> Endpoint {
        Endpoint {
            url: format!("http://{addr}{path}"),
            host: addr.ip().to_string(),
            port: addr.port(),
            authority: addr.to_string(),
            path: path.to_string(),
        }
    }

    /// The URL as logs and the API show it: its query (where a relay's key often sits) left
    /// out, as `?…`.
    pub fn shown(&self) -> String {
        match self.url.split_once('?') {
            Some((before, _)) => format!("{before}?…"),
            None => self.url.clone(),
        }
    }

    /// The same server with another path (Alertmanager's API under its base URL).
    pub fn with_path(&self, path: &str) -> Endpoint {
        let base = self.path.trim_end_matches('/');
        let path = format!("{base}{path}");
        Endpoint { url: format!("http://{}{path}", self.authority), path, ..self.clone() }
    }
}

/// POSTs `body` as JSON to `endpoint` within `timeout`; a non-2xx answer is an error naming
/// its status and the start of its body.
pub async fn post_json(
    endpoint: &Endpoint,
    body: Bytes,
    token: Option<&Secret>,
    timeout: Duration,
) -> Result<(), String> {
    tokio::time::timeout(timeout, post(endpoint, body, token))
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

async fn post(endpoint: &Endpoint, body: Bytes, token: Option<&Secret>) -> Result<(), String> {
    let stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("cannot connect: {}", super::config::io_reason(&e)))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = hyper::Request::post(endpoint.path.as_str())
        .header(hyper::header::HOST, endpoint.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("vitals/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = token {
        request =
            request.header(hyper::header::AUTHORIZATION, format!("Bearer {}", token.expose()));
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let answer = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if status.is_success() {
        return Ok(());
    }
    let text: String = String::from_utf8_lossy(&answer).chars().take(ERROR_BODY_CHARS).collect();
    Err(format!("answered {status}: {}", text.trim()))
}

/// `url` with whatever precedes an `@` in its authority replaced by `***`.
fn without_credentials(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..after_scheme], &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let e = Endpoint::parse("http://127.0.0.1:9093").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("127.0.0.1", 9093, "/"));
        assert_eq!(e.with_path("/api/v2/alerts").url, "http://127.0.0.1:9093/api/v2/alerts");
        let e = Endpoint::parse("http://hooks.local/a/b?x=1").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/a/b?x=1"));
        assert_eq!(e.shown(), "http://hooks.local/a/b?…", "the query may hold a key");
        assert_eq!(Endpoint::parse("http://h:1/p").unwrap().shown(), "http://h:1/p");
        assert!(Endpoint::parse("https://x").unwrap_err().contains("https"));
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("not a url").is_err());
        let refused = Endpoint::parse("http://user:SECRET@x/").unwrap_err();
        assert!(refused.contains("credentials") && !refused.contains("SECRET"), "{refused}");
        assert!(refused.starts_with("http://***@x/"), "{refused}");
        let https = Endpoint::parse("https://user:SECRET@x/hook").unwrap_err();
        assert!(!https.contains("SECRET"), "{https}");
        assert_eq!(without_credentials("http://h:1/p@q"), "http://h:1/p@q");
    }
}
