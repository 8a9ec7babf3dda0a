//! Spans become operations: the span's name is the operation, its duration (end − start) the
//! timing, status ERROR a failure, and the configured resource and span attributes
//! (`--otlp-attributes`, default `service.name`) its tags. Only the configured span kinds
//! count (`--otlp-span-kinds`, default server and consumer); the others are ignored and
//! counted as such. A span without a valid name, without both times, ending before it starts
//! or lasting longer than 1e12 ms is rejected, named in the partial success; the rest of the
//! request is recorded.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

use super::config::OtlpConfig;
use super::{select, Tally};
use crate::server::metrics::{tags, validate_name, AppMetrics, Protocol, Timing};
use crate::server::stats::MAX_DURATION_MS;

/// Records every span of `request` that counts; says what became of each.
pub fn record(
    app: &AppMetrics,
    config: &OtlpConfig,
    request: &ExportTraceServiceRequest,
    now_ms: u64,
) -> Tally {
    let mut tally = Tally::default();
    let mut m = app.lock();
    m.count_received(Protocol::Otlp);
    let mut key = String::new();
    for (r, resource_spans) in request.resource_spans.iter().enumerate() {
        let resource_attributes =
            resource_spans.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let resource_tags = select(&config.attributes, resource_attributes);
        for (s, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            for (i, span) in scope_spans.spans.iter().enumerate() {
                let at = || format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                if !config.span_kinds.counts(span.kind) {
                    tally.ignored += 1;
                    continue;
                }
                let (duration_ms, end_ms) = match timing(span) {
                    Ok(timing) => timing,
                    Err((reason, why)) => {
                        m.note_malformed(Protocol::Otlp, &span.name, why, now_ms);
                        tally.reject(reason, at, why);
                        continue;
                    }
                };
                // Span attributes win over resource attributes of the same key.
                let span_tags = select(&config.attributes, &span.attributes);
                let pairs =
                    span_tags.iter().chain(resource_tags.iter()).map(|(k, v)| (*k, v.as_ref()));
                tags::series_key(&mut key, &mut Vec::new(), &span.name, pairs);
                let failed =
                    span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32);
                let t = Timing::operation(&key, duration_ms, end_ms).failed_if(failed);
                tally.outcome(m.timing(Protocol::Otlp, t, now_ms), at);
            }
        }
    }
    m.count_ignored(Protocol::Otlp, tally.ignored);
    tally
}

/// A span's duration in ms and its end in Unix ms, or why it cannot be used.
fn timing(span: &Span) -> Result<(f64, u64), (&'static str, &'static str)> {
    if let Err(why) = validate_name(&span.name) {
        return Err(("invalid_name", name_rule(why)));
    }
    let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
    if start == 0 || end == 0 {
        return Err(("missing_time", "the span has no start or no end time"));
    }
    let Some(ns) = end.checked_sub(start) else {
        return Err(("negative_duration", "the span ends before it starts"));
    };
    let duration_ms = ns as f64 / 1e6;
    if duration_ms > MAX_DURATION_MS {
        return Err(("invalid_duration", "the span lasts longer than 1e12 ms"));
    }
    Ok((duration_ms, end / 1_000_000))
}

/// The name rule in a span's words.
fn name_rule(why: &str) -> &'static str {
    match why {
        "must not be empty" => "the span name is empty",
        "must be at most 200 characters" => "the span name is longer than 200 characters",
        _ => "the span name holds control characters",
    }
}
