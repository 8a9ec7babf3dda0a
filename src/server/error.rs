//! The one error answer of every HTTP door (REST API, ingestion, security checks): a status and
//! a JSON body `{"error": "...", "field": "..."}`. Its own module so that ingestion, security and
//! the REST routes all use it without depending on each other.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An API error: status, message and the offending field or header (if one is to blame).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub field: Option<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError { status, error: error.into(), field: None }
    }

    /// The same error, blaming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A 400 naming `field`.
    pub fn bad_field(field: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, error: error.into(), field: Some(field.into()) }
    }

    /// A 403 naming the request header that was refused.
    pub fn forbidden_header(header: &str, error: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, error).with_field(header.to_ascii_lowercase())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: &self.error, field: self.field.as_deref() };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // Every rate limit here refills within a second.
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// Checks that `body` is sent as JSON (415 naming `content-type` otherwise) and decodes it as
/// `T`; a mistake is a 400 naming the first bad field by its path (`target.host`), or `body`.
/// `what` names the body in the 415's message.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send {what} as JSON with `Content-Type: application/json`"),
        )
        .with_field("content-type"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        if path == "." || path == "?" || inner.is_syntax() || inner.is_eof() {
            ApiError::bad_field("body", format!("body: {message}"))
        } else {
            ApiError::bad_field(path.clone(), format!("{path}: {message}"))
        }
    })?;
    deserializer.end().map_err(|_| {
        ApiError::bad_field("body", "body: trailing characters after the JSON object")
    })?;
    Ok(value)
}

/// True for paths whose every answer is JSON (the REST API, and OTLP's errors).
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path.starts_with("/v1/")
}

/// Gives every non-JSON 4xx/5xx answer under `/api/` and `/v1/` (OTLP) the API's JSON error shape: 413 from the
/// body limit, 408 from the timeout, 404 for an unknown route, 405 for a wrong method, 400 from
/// an extractor (bad path or query parameter). Installed outside those layers.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_api = is_api_path(req.uri().path());
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    if !is_api || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json")
            || v.as_bytes().starts_with(b"application/x-protobuf")
    });
    // JSON already, or an OTLP `google.rpc.Status` in protobuf.
    if is_json {
        return response;
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "request body is too large (see --max-body-bytes)")
                .with_field("body")
        }
        StatusCode::REQUEST_TIMEOUT => ApiError::new(status, "request timed out"),
        StatusCode::NOT_FOUND => ApiError::new(status, "no such API route").with_field("path"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = allow.as_ref().and_then(|v| v.to_str().ok());
            let hint = allowed.map(|a| format!("; use {a}")).unwrap_or_default();
            ApiError::new(status, format!("method {method} is not allowed on this route{hint}"))
                .with_field("method")
        }
        _ => {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_string();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_lowercase()
            } else {
                text
            };
            let field = if message.contains("query string") { "query" } else { "path" };
            let mut answer = ApiError::new(parts.status, message);
            if parts.status == StatusCode::BAD_REQUEST {
                answer = answer.with_field(field);
            }
            answer
        }
    };
    let mut answer = error.into_response();
    if let Some(allow) = allow {
        answer.headers_mut().insert(axum::http::header::ALLOW, allow);
    }
    answer
}
