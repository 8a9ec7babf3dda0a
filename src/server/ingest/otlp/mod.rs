//! OpenTelemetry in: OTLP/HTTP `POST /v1/traces` and `POST /v1/metrics`, protobuf or JSON,
//! plain or gzip, answered as the OpenTelemetry Collector's OTLP/HTTP receiver answers
//! (<https://opentelemetry.io/docs/specs/otlp/#otlphttp>):
//!
//! - 200 with an `Export…ServiceResponse` in the request's encoding; when some items could not
//!   be used, its `partial_success` says how many and why (the rest is recorded);
//! - 400 with a `google.rpc.Status` when the body cannot be read as the request at all (not
//!   protobuf, invalid JSON, invalid UTF-8 in a string, which proto3 forbids, an unsupported
//!   `Content-Encoding`), 413 when it is larger than `--max-body-bytes` (inflated: four times
//!   that), 415 for a content type other than `application/x-protobuf` or `application/json`.
//!   At most [`DECODING_AT_ONCE`] requests are decoded at a time.
//!
//! The messages are the generated types of `opentelemetry-proto` (prost for protobuf, its
//! serde derive for OTLP's JSON mapping: hex ids, 64-bit integers as strings). What a span or
//! a data point becomes is decided in [`traces`] and [`metrics`]; this module is the door.

pub mod config;
pub mod metrics;
pub mod traces;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};

pub use config::OtlpConfig;

use crate::server::metrics::{validate_name, Outcome, Protocol};
use crate::server::state::AppState;

/// An inflated (gzip) body may be this many times `--max-body-bytes`.
pub const INFLATE_FACTOR: usize = 4;
/// Most strings, byte fields and messages (protobuf), or objects, arrays and strings (JSON),
/// one request may hold: each becomes an allocation when decoded, so this bounds what one
/// decoded request holds (about 60 MiB at most). 512 spans with ten attributes each are
/// about 25,000; a batch of more than about 5,000 such spans is refused with 413.
pub const MAX_FIELDS: usize = 250_000;
/// Requests decoded at once; more wait their turn. A decoded message can take many times its
/// bytes in memory (an empty span is 2 bytes on the wire and a few hundred in memory), so
/// this and the body limits bound what decoding holds, whatever arrives.
pub const DECODING_AT_ONCE: usize = 2;
/// Rejected items named in a partial success's message (the count covers all of them).
const NAMED_REJECTIONS: usize = 3;

/// OTLP ingestion's shared part: its settings and the state that turns cumulative metric
/// streams into increments.
pub struct Otlp {
    pub config: OtlpConfig,
    pub cumulative: std::sync::Mutex<metrics::Cumulative>,
    decoding: Arc<tokio::sync::Semaphore>,
}

impl Otlp {
    pub fn new(config: OtlpConfig, started_ms: u64) -> Arc<Self> {
        Arc::new(Otlp {
            config,
            cumulative: metrics::Cumulative::new(started_ms).into(),
            decoding: Arc::new(tokio::sync::Semaphore::new(DECODING_AT_ONCE)),
        })
    }
}

/// The two encodings OTLP/HTTP defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From `Content-Type` (parameters ignored).
    fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next()?.trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    const fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// Counts the fields of a body that would become allocations, up to `MAX_FIELDS + 1`
    /// (see [`MAX_FIELDS`]). Protobuf: every length-delimited field, looking into each one that
    /// reads as a message (a string that happens to read as one only counts more). JSON: every
    /// `{`, `[` and pair of quotes.
    pub fn fields(self, body: &[u8]) -> usize {
        match self {
            Encoding::Protobuf => {
                let mut budget = MAX_FIELDS + 1;
                len_fields(body, 0, &mut budget);
                MAX_FIELDS + 1 - budget
            }
            Encoding::Json => {
                let (mut nested, mut quotes) = (0usize, 0usize);
                for &b in body {
                    nested += usize::from(b == b'{' || b == b'[');
                    quotes += usize::from(b == b'"');
                    if nested + quotes / 2 > MAX_FIELDS {
                        break;
                    }
                }
                nested + quotes / 2
            }
        }
    }

    /// Decodes a request; the error is the Status message.
    pub fn decode<T>(self, body: &[u8], what: &str) -> Result<T, String>
    where
        T: prost::Message + Default + serde::de::DeserializeOwned,
    {
        match self {
            Encoding::Protobuf => {
                T::decode(body).map_err(|e| format!("the body is not a protobuf {what}: {e}"))
            }
            Encoding::Json => {
                let mut de = serde_json::Deserializer::from_slice(body);
                let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner().to_string();
                    let inner = inner.split(" at line ").next().unwrap_or(&inner).to_string();
                    if path == "." || path == "?" {
                        format!("the body is not a JSON {what}: {inner}")
                    } else {
                        format!("the body is not a JSON {what}: {path}: {inner}")
                    }
                })?;
                de.end()
                    .map_err(|_| format!("the body is not a JSON {what}: trailing characters"))?;
                Ok(value)
            }
        }
    }

    /// A 200 answer carrying `message`.
    fn respond<T: prost::Message + serde::Serialize>(self, message: &T) -> Response {
        let body = match self {
            Encoding::Protobuf => message.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec()),
        };
        let mut response = (StatusCode::OK, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        response
    }
}

/// Counts the length-delimited fields of a protobuf message into `budget` (down to 0), and
/// those of each field that reads as a message itself; false when `buf` is not wire format.
/// A group (wire types 3 and 4, which prost skips) counts as a field and its fields are read
/// in line. Each byte is read at most once per nesting level; below [`COUNTED_DEPTH`] levels a
/// field is not looked into but charged as many fields as its bytes could hold (two bytes
/// each at least), so that nesting deeper hides nothing from the count.
fn len_fields(mut buf: &[u8], depth: u32, budget: &mut usize) -> bool {
    use prost::encoding::{decode_key, decode_varint, WireType};
    while !buf.is_empty() {
        let Ok((_, wire_type)) = decode_key(&mut buf) else { return false };
        let skip = match wire_type {
            WireType::Varint => match decode_varint(&mut buf) {
                Ok(_) => 0,
                Err(_) => return false,
            },
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::StartGroup => {
                *budget = budget.saturating_sub(1);
                0
            }
            WireType::EndGroup => 0,
            WireType::LengthDelimited => {
                let Ok(len) = decode_varint(&mut buf) else { return false };
                let Some(len) = usize::try_from(len).ok().filter(|l| *l <= buf.len()) else {
                    return false;
                };
                if *budget == 0 {
                    return true;
                }
                *budget -= 1;
                if depth < COUNTED_DEPTH {
                    let mut inner = *budget;
                    if len_fields(&buf[..len], depth + 1, &mut inner) {
                        *budget = inner;
                    }
                } else {
                    *budget = budget.saturating_sub(len / 2);
                }
                len
            }
        };
        if skip > buf.len() {
            return false;
        }
        buf = &buf[skip..];
    }
    true
}

/// Nesting levels [`len_fields`] looks into (OTLP's own messages nest about eight deep with an
/// attribute's value; an `AnyValue` may nest further).
const COUNTED_DEPTH: u32 = 12;

/// `google.rpc.Status`, the body of every OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    /// A `google.rpc.Code` (3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 13 INTERNAL).
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// A request refused whole.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn bad(message: impl Into<String>) -> Self {
        Refusal { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    fn respond(self, encoding: Encoding) -> Response {
        let code = match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => 8,
            s if s.is_server_error() => 13,
            _ => 3,
        };
        let status = RpcStatus { code, message: self.message };
        let mut response = encoding.respond(&status);
        *response.status_mut() = self.status;
        response
    }
}

/// The body as sent, or inflated when `Content-Encoding: gzip`, reading at most `limit` bytes.
pub fn inflate<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, Refusal> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(std::borrow::Cow::Borrowed(body)),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let read = flate2::read::MultiGzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut out);
            match read {
                Err(e) => Err(Refusal::bad(format!("the body is not valid gzip: {e}"))),
                Ok(n) if n > limit => Err(Refusal {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!("the inflated body is larger than {limit} bytes"),
                }),
                Ok(_) => Ok(std::borrow::Cow::Owned(out)),
            }
        }
        Some(other) => Err(Refusal::bad(format!(
            "unsupported Content-Encoding `{other}`: send the body plain or as gzip"
        ))),
    }
}

/// What became of the items (spans or data points) of one request.
#[derive(Debug, Default, PartialEq)]
pub struct Tally {
    pub accepted: u64,
    pub rejected: u64,
    /// Left out by configuration (span kinds); not an error.
    pub ignored: u64,
    /// Rejections by reason.
    pub reasons: BTreeMap<&'static str, u64>,
    /// The first rejected items: where, and why in words.
    pub named: Vec<String>,
}

impl Tally {
    /// Counts an item refused before it reached the metrics store.
    pub fn reject(&mut self, reason: &'static str, at: impl FnOnce() -> String, why: &str) {
        self.rejected += 1;
        *self.reasons.entry(reason).or_default() += 1;
        if self.named.len() < NAMED_REJECTIONS {
            self.named.push(format!("{}: {why}", at()));
        }
    }

    /// Counts what the metrics store made of an item.
    pub fn outcome(&mut self, outcome: Outcome, at: impl FnOnce() -> String) {
        if outcome == Outcome::Accepted {
            self.accepted += 1;
        } else {
            self.reject(outcome.reason(), at, outcome.reason());
        }
    }

    /// The partial-success message: counts by reason, then the first items named. Empty
    /// when nothing was rejected.
    pub fn message(&self, items: &str) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let reasons: Vec<String> = self.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        format!(
            "{} of {} {items} rejected ({}); {}",
            self.rejected,
            self.rejected + self.accepted,
            reasons.join(", "),
            self.named.join("; ")
        )
    }
}

/// The text of an attribute value as a tag value, when it is a scalar and a valid name.
pub fn tag_value(value: Option<&any_value::Value>) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    let text = match value? {
        any_value::Value::StringValue(s) => Cow::Borrowed(s.as_str()),
        any_value::Value::BoolValue(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        any_value::Value::IntValue(i) => Cow::Owned(i.to_string()),
        any_value::Value::DoubleValue(d) if d.is_finite() => Cow::Owned(d.to_string()),
        _ => return None,
    };
    validate_name(&text).is_ok().then_some(text)
}

/// The configured attributes found in `attributes`, in the configuration's order.
pub fn select<'a>(
    keys: &[String],
    attributes: &'a [KeyValue],
) -> Vec<(&'a str, std::borrow::Cow<'a, str>)> {
    let mut tags = Vec::new();
    for kv in attributes {
        if keys.contains(&kv.key) {
            if let Some(value) = tag_value(kv.value.as_ref().and_then(|v| v.value.as_ref())) {
                tags.push((kv.key.as_str(), value));
            }
        }
    }
    tags
}

/// Which of the two signals a request carries.
#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
}

/// `POST /v1/traces`.
pub async fn traces(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    export(state, headers, body, Signal::Traces).await
}

/// `POST /v1/metrics`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    export(state, headers, body, Signal::Metrics).await
}

async fn export(state: AppState, headers: HeaderMap, body: Bytes, signal: Signal) -> Response {
    let app = Arc::clone(&state.app);
    let Some(encoding) = Encoding::of(&headers) else {
        let mut m = app.lock();
        m.count_received(Protocol::Otlp);
        m.count_rejected(Protocol::Otlp);
        drop(m);
        let refusal = Refusal {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send OTLP as `Content-Type: application/x-protobuf` or `application/json`"
                .into(),
        };
        return refusal.respond(Encoding::Json);
    };
    let otlp = Arc::clone(&state.otlp);
    let limit = state.config.max_body_bytes.saturating_mul(INFLATE_FACTOR);
    let Ok(_turn) = Arc::clone(&otlp.decoding).acquire_owned().await else {
        return Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "shutting down".into(),
        }
        .respond(encoding);
    };
    // Decoding and recording run off the async workers, as HTTP ingestion does.
    let answer = tokio::task::spawn_blocking(move || {
        let now = crate::server::now_ms();
        let result = inflate(&headers, &body, limit).and_then(|body| {
            if encoding.fields(&body) > MAX_FIELDS {
                return Err(Refusal {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!(
                        "the request holds more than {MAX_FIELDS} strings and messages: \
                         send smaller batches"
                    ),
                });
            }
            Ok(body)
        });
        let result = result.and_then(|body| match signal {
            Signal::Traces => {
                let request: ExportTraceServiceRequest =
                    encoding.decode(&body, "ExportTraceServiceRequest").map_err(Refusal::bad)?;
                let tally = traces::record(&app, &otlp.config, &request, now);
                let partial = (tally.rejected > 0).then(|| ExportTracePartialSuccess {
                    rejected_spans: tally.rejected as i64,
                    error_message: tally.message("spans"),
                });
                Ok(encoding.respond(&ExportTraceServiceResponse { partial_success: partial }))
            }
            Signal::Metrics => {
                let request: ExportMetricsServiceRequest =
                    encoding.decode(&body, "ExportMetricsServiceRequest").map_err(Refusal::bad)?;
                let tally = metrics::record(&app, &otlp, &request, now);
                let partial = (tally.rejected > 0).then(|| ExportMetricsPartialSuccess {
                    rejected_data_points: tally.rejected as i64,
                    error_message: tally.message("data points"),
                });
                Ok(encoding.respond(&ExportMetricsServiceResponse { partial_success: partial }))
            }
        });
        if let Err(refusal) = &result {
            let mut m = app.lock();
            m.count_received(Protocol::Otlp);
            m.count_rejected(Protocol::Otlp);
            let what = match signal {
                Signal::Traces => "OTLP traces request",
                Signal::Metrics => "OTLP metrics request",
            };
            m.note_malformed(Protocol::Otlp, what, &refusal.message, now);
        }
        result
    })
    .await;
    match answer {
        Ok(Ok(response)) => response,
        Ok(Err(refusal)) => refusal.respond(encoding),
        Err(_) => Refusal {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "ingestion failed".into(),
        }
        .respond(encoding),
    }
}

#[cfg(test)]
mod tests;
