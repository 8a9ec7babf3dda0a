//! OTLP decoding and mapping, on requests built with the generated types (protobuf) and on
//! OTLP JSON as the specification writes it.

use axum::http::{header, HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span::SpanKind, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message as _;

use super::*;
use crate::model::ops::{LatencyThresholds, Window};
use crate::server::metrics::{tags, Limits, TimingKind};
use crate::server::stats::SeriesFigures;

const NOW: u64 = 1_780_000_000_000;
const MS: u64 = 1_000_000;

fn app() -> Arc<AppMetrics> {
    AppMetrics::new(Limits::default(), LatencyThresholds::default(), NOW - 600_000)
}

fn otlp() -> Arc<Otlp> {
    Otlp::new(OtlpConfig::default(), NOW - 600_000)
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn span(name: &str, kind: SpanKind, start_ms: u64, end_ms: u64, error: bool) -> Span {
    Span {
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start_ms * MS,
        end_time_unix_nano: end_ms * MS,
        status: error
            .then(|| Status { code: status::StatusCode::Error as i32, ..Default::default() }),
        ..Default::default()
    }
}

fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

use crate::server::metrics::AppMetrics;
use std::sync::Arc;

fn summary(app: &AppMetrics, name: &str) -> Option<crate::model::ops::OperationSummary> {
    app.summaries_of(TimingKind::Operation, Window::M5, NOW).into_iter().find(|s| s.name == name)
}

#[test]
fn spans_become_operations_and_bad_spans_are_named() {
    let app = app();
    let t = NOW - 2_000;
    let request = traces(
        "checkout",
        vec![
            span("GET /cart", SpanKind::Server, t, t + 120, false),
            span("GET /cart", SpanKind::Server, t, t + 80, true),
            span("orders consume", SpanKind::Consumer, t, t + 40, false),
            span("SELECT cart", SpanKind::Client, t, t + 30, false),
            span("GET /late", SpanKind::Server, t + 50, t, false),
            span("", SpanKind::Server, t, t + 1, false),
        ],
    );
    // Through the protobuf encoding, as an SDK sends it.
    let body = request.encode_to_vec();
    let decoded: ExportTraceServiceRequest =
        Encoding::Protobuf.decode(&body, "ExportTraceServiceRequest").unwrap();
    let tally = traces::record(&app, &OtlpConfig::default(), &decoded, NOW);
    assert_eq!((tally.accepted, tally.rejected, tally.ignored), (3, 2, 1));
    let message = tally.message("spans");
    assert!(
        message.starts_with("2 of 5 spans rejected (invalid_name 1, negative_duration 1)"),
        "{message}"
    );
    assert!(message.contains("spans[4]: the span ends before it starts"), "{message}");
    assert!(message.contains("spans[5]: the span name is empty"), "{message}");

    let cart = summary(&app, "GET /cart").expect("GET /cart is an operation");
    assert_eq!((cart.count, cart.error_count), (2, 1));
    assert!((cart.max_ms - 120.0).abs() <= 1.2, "{}", cart.max_ms);
    assert_eq!(summary(&app, "orders consume").map(|s| s.count), Some(1));
    assert!(summary(&app, "SELECT cart").is_none(), "client spans do not count by default");
    // service.name is a tag of the series.
    let series = operation_series(&app);
    let (_, cart) = series.iter().find(|(_, s)| tags::name_of(&s.key) == "GET /cart").unwrap();
    let cart_tags: Vec<_> = tags::tags_of(&cart.key).collect();
    assert_eq!(cart_tags, [("service.name", "checkout")]);
    let stats = app.ingest_stats().otlp;
    assert_eq!((stats.received, stats.accepted, stats.malformed, stats.ignored), (1, 3, 2, 1));
}

/// Every operation series over five minutes, each with its figures.
fn operation_series(app: &AppMetrics) -> Vec<((), SeriesFigures)> {
    let mut series = Vec::new();
    app.series_figures(
        (TimingKind::Operation, Window::M5),
        NOW,
        [false; 4],
        |_| true,
        |_| Some(()),
        &mut series,
    );
    series
}

#[test]
fn configured_kinds_and_attributes_decide() {
    let app = app();
    let config = OtlpConfig::resolve(
        None,
        Some(vec!["client".into()]),
        Some(vec!["db.system".into(), "service.name".into()]),
    )
    .unwrap();
    let t = NOW - 1_000;
    let mut client = span("SELECT cart", SpanKind::Client, t, t + 30, false);
    client.attributes = vec![text("db.system", "postgresql"), text("db.statement", "SELECT 1")];
    let request =
        traces("checkout", vec![client, span("GET /cart", SpanKind::Server, t, t + 1, false)]);
    let tally = traces::record(&app, &config, &request, NOW);
    assert_eq!((tally.accepted, tally.ignored), (1, 1));
    let series = operation_series(&app);
    let pairs: Vec<_> = tags::tags_of(&series[0].1.key).collect();
    assert_eq!(pairs, [("db.system", "postgresql"), ("service.name", "checkout")]);
}

/// OTLP JSON as the specification's example writes it: hex ids, 64-bit integers as strings,
/// enums as numbers, camelCase keys; unknown fields are ignored.
#[test]
fn otlp_json_decodes() {
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"my.service"}},
        {"key":"pid","value":{"intValue":"4242"}}]},
      "scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},"spans":[{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "parentSpanId":"eee19b7ec3c1b173","name":"I'm a server span",
        "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
        "kind":2,"status":{"code":2},"someFutureField":true,
        "attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}]}]}]}]}"#;
    let request: ExportTraceServiceRequest =
        Encoding::Json.decode(json.as_bytes(), "ExportTraceServiceRequest").unwrap();
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.kind, 2);
    assert_eq!(span.end_time_unix_nano - span.start_time_unix_nano, 1_000_000_000);
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
}

#[test]
fn bodies_that_are_not_requests_are_refused_naming_why() {
    let not_protobuf = Encoding::Protobuf
        .decode::<ExportTraceServiceRequest>(b"\xff\xff\xff\xff", "ExportTraceServiceRequest")
        .unwrap_err();
    assert!(
        not_protobuf.starts_with("the body is not a protobuf ExportTraceServiceRequest"),
        "{not_protobuf}"
    );
    // A span name that is not UTF-8: proto3 strings must be, so the request cannot be read.
    let mut bytes =
        traces("s", vec![span("GET /x", SpanKind::Server, 1, 2, false)]).encode_to_vec();
    let at = bytes.windows(6).position(|w| w == b"GET /x").unwrap();
    bytes[at] = 0xff;
    let invalid_utf8 = Encoding::Protobuf
        .decode::<ExportTraceServiceRequest>(&bytes, "ExportTraceServiceRequest")
        .unwrap_err();
    assert!(invalid_utf8.contains("UTF-8"), "{invalid_utf8}");
    let bad_json = Encoding::Json
        .decode::<ExportTraceServiceRequest>(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#,
            "ExportTraceServiceRequest",
        )
        .unwrap_err();
    assert!(
        bad_json.contains("resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"),
        "{bad_json}"
    );
    let trailing = Encoding::Json.decode::<ExportTraceServiceRequest>(b"{} {}", "x").unwrap_err();
    assert!(trailing.contains("trailing"), "{trailing}");
}

#[test]
fn content_types_and_encodings() {
    let mut headers = HeaderMap::new();
    assert_eq!(Encoding::of(&headers), None);
    headers.insert(header::CONTENT_TYPE, "application/x-protobuf".parse().unwrap());
    assert_eq!(Encoding::of(&headers), Some(Encoding::Protobuf));
    headers.insert(header::CONTENT_TYPE, "Application/JSON; charset=utf-8".parse().unwrap());
    assert_eq!(Encoding::of(&headers), Some(Encoding::Json));
    headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
    assert_eq!(Encoding::of(&headers), None);

    let plain = b"hello otlp".repeat(100);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gz = gz.finish().unwrap();
    let mut headers = HeaderMap::new();
    assert_eq!(
        inflate(&headers, &plain, 10).unwrap().as_ref(),
        &plain[..],
        "plain is not limited here"
    );
    headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    assert_eq!(inflate(&headers, &gz, 1_000).unwrap().as_ref(), &plain[..]);
    let bomb = inflate(&headers, &gz, 999).unwrap_err();
    assert_eq!(bomb.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(inflate(&headers, b"not gzip", 1_000).unwrap_err().status, StatusCode::BAD_REQUEST);
    headers.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
    let br = inflate(&headers, &gz, 1_000).unwrap_err();
    assert!(br.message.contains("unsupported Content-Encoding `br`"), "{}", br.message);
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric { name: name.into(), unit: unit.into(), data: Some(data), ..Default::default() }
}

fn metrics(list: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![text("service.name", "api")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics { metrics: list, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn number(value: f64, attrs: Vec<KeyValue>, start_ms: u64, time_ms: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start_ms * MS,
        time_unix_nano: time_ms * MS,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn counter(app: &AppMetrics, name: &str) -> Option<f64> {
    app.other_metrics(NOW).counters.into_iter().find(|(n, _)| n == name).map(|(_, c)| c.total)
}

fn gauge(app: &AppMetrics, name: &str) -> Option<f64> {
    app.other_metrics(NOW).gauges.into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[test]
fn gauges_sum_the_newest_moment_across_attribute_sets() {
    let (app, otlp) = (app(), otlp());
    let points = vec![
        number(100.0, vec![text("state", "used")], 0, NOW - 20_000),
        number(30.0, vec![text("state", "used")], 0, NOW - 10_000),
        number(12.0, vec![text("state", "free")], 0, NOW - 10_000),
    ];
    let request =
        metrics(vec![metric("memory.usage", "By", Data::Gauge(Gauge { data_points: points }))]);
    let tally = metrics::record(&app, &otlp, &request, NOW);
    assert_eq!((tally.accepted, tally.rejected), (3, 0));
    assert_eq!(gauge(&app, "memory.usage"), Some(42.0));
}

#[test]
fn cumulative_sums_add_their_increase_and_survive_a_reset() {
    let (app, otlp) = (app(), otlp());
    let sum = |value: f64, start_ms: u64, time_ms: u64| {
        metrics(vec![metric(
            "requests",
            "1",
            Data::Sum(Sum {
                data_points: vec![number(value, vec![text("route", "/a")], start_ms, time_ms)],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
        )])
    };
    let before_vitals = NOW - 3_600_000;
    // A stream that began before Vitals: its first point is only a baseline.
    metrics::record(&app, &otlp, &sum(1_000.0, before_vitals, NOW - 30_000), NOW);
    assert_eq!(counter(&app, "requests"), None);
    metrics::record(&app, &otlp, &sum(1_025.0, before_vitals, NOW - 20_000), NOW);
    assert_eq!(counter(&app, "requests"), Some(25.0));
    // The same point again (a retry) adds nothing.
    metrics::record(&app, &otlp, &sum(1_025.0, before_vitals, NOW - 20_000), NOW);
    assert_eq!(counter(&app, "requests"), Some(25.0));
    // The process restarted: a new start time, the whole value is new.
    metrics::record(&app, &otlp, &sum(7.0, NOW - 5_000, NOW - 1_000), NOW);
    assert_eq!(counter(&app, "requests"), Some(32.0));
    // A stream that began after Vitals counts from its first point.
    let mut other = sum(5.0, NOW - 60_000, NOW);
    other.resource_metrics[0].scope_metrics[0].metrics[0].name = "jobs".into();
    metrics::record(&app, &otlp, &other, NOW);
    assert_eq!(counter(&app, "jobs"), Some(5.0));
}

#[test]
fn bad_points_are_rejected_and_the_rest_recorded() {
    let (app, otlp) = (app(), otlp());
    let delta = |points| {
        Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        })
    };
    let request = metrics(vec![
        metric(
            "hits",
            "1",
            delta(vec![
                number(3.0, vec![], 0, NOW),
                number(f64::NAN, vec![], 0, NOW),
                number(-1.0, vec![], 0, NOW),
            ]),
        ),
        metric(
            "odd",
            "1",
            Data::Sum(Sum {
                data_points: vec![number(1.0, vec![], 0, NOW)],
                aggregation_temporality: 0,
                is_monotonic: true,
            }),
        ),
        metric("", "1", delta(vec![number(1.0, vec![], 0, NOW)])),
        metric(
            "bad.hist",
            "ms",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 1,
                    bucket_counts: vec![1],
                    explicit_bounds: vec![5.0],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            }),
        ),
    ]);
    let tally = metrics::record(&app, &otlp, &request, NOW);
    assert_eq!(tally.accepted, 1);
    assert_eq!(tally.rejected, 5);
    let reasons: Vec<_> = tally.reasons.keys().copied().collect();
    assert_eq!(
        reasons,
        [
            "invalid_buckets",
            "invalid_name",
            "negative_increment",
            "non_finite",
            "unspecified_temporality"
        ]
    );
    assert_eq!(counter(&app, "hits"), Some(3.0));
    assert!(tally
        .message("data points")
        .contains("metrics[0].dataPoints[1] (hits): the value is not a finite number"));
}

#[test]
fn wide_histograms_stay_counters_and_fine_ones_feed_an_operation() {
    let (app, otlp) = (app(), otlp());
    // The OpenTelemetry default buckets, in seconds: far wider than 1 %.
    let bounds =
        vec![0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
    let mut counts = vec![0u64; bounds.len() + 1];
    counts[3] = 90;
    counts[5] = 10;
    let wide = Data::Histogram(Histogram {
        data_points: vec![HistogramDataPoint {
            time_unix_nano: NOW * MS,
            count: 100,
            sum: Some(2.1),
            bucket_counts: counts,
            explicit_bounds: bounds,
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    // Scale 6: 64 buckets per doubling; bucket i holds (2^(i/64), 2^((i+1)/64)] ms. Ten values
    // in each of buckets 320..420 (32 to 95 ms), 1,000 in all.
    let scale = 6;
    let exp = Data::ExponentialHistogram(ExponentialHistogram {
        data_points: vec![ExponentialHistogramDataPoint {
            time_unix_nano: (NOW - 1_000) * MS,
            count: 1_000,
            sum: Some(60_000.0),
            scale,
            positive: Some(Buckets { offset: 320, bucket_counts: vec![10; 100] }),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let request = metrics(vec![
        metric("http.server.request.duration", "s", wide),
        metric("db.duration", "ms", exp),
    ]);
    let tally = metrics::record(&app, &otlp, &request, NOW);
    assert_eq!((tally.accepted, tally.rejected), (2, 0), "{:?}", tally.named);
    assert_eq!(counter(&app, "http.server.request.duration.count"), Some(100.0));
    assert!((counter(&app, "http.server.request.duration.sum").unwrap() - 2.1).abs() < 1e-9);
    assert!(summary(&app, "http.server.request.duration").is_none());
    let db = summary(&app, "db.duration").expect("a fine histogram is an operation");
    assert_eq!(db.count, 1_000);
    // The median lies between buckets 369 and 370, at 2^(370/64) ms.
    let true_p50 = (370.0f64 / 64.0).exp2();
    assert!((db.p50_ms / true_p50 - 1.0).abs() <= 0.02, "{} vs {true_p50}", db.p50_ms);
    assert_eq!(counter(&app, "db.duration.count"), Some(1_000.0));
}

#[test]
fn explicit_buckets_feed_an_operation_only_within_the_bound() {
    // 2 % apart: (100, 102] pins within 1 % of its geometric middle.
    let fine = metrics::explicit_samples(&[100.0, 102.0], &[0.0, 7.0, 0.0], None, None).unwrap();
    assert_eq!(fine.len(), 1);
    assert!((fine[0].0 - 101.0).abs() < 0.01 && fine[0].1 == 7.0);
    assert!(metrics::explicit_samples(&[100.0, 103.0], &[0.0, 7.0, 0.0], None, None).is_none());
    // The outer buckets need min or max; with them they are bounded too.
    assert!(metrics::explicit_samples(&[100.0], &[1.0, 0.0], None, None).is_none());
    let edges = metrics::explicit_samples(&[100.0], &[1.0, 1.0], Some(99.5), Some(100.5)).unwrap();
    assert_eq!(edges.len(), 2);
    // Scale 5 (±1.1 %) is too coarse, scale 6 fine.
    assert!(metrics::exponential_samples(5, 0, 0.0, &[1.0], None, None).is_none());
    assert!(metrics::exponential_samples(6, 0, 0.0, &[1.0], None, None).is_some());
}

#[test]
fn cumulative_streams_are_in_order_bounded_and_follow_a_downscale() {
    use metrics::Increase::{Baseline, By};
    // Vitals started at 1e6 s; a stream that starts at 2e6 s, seen a second later.
    let mut c = metrics::Cumulative::new(1_000_000_000);
    let (start, now) = (2_000_000_000 * MS, 2_000_001_000);
    let at = |s: u64| start + s * 1_000_000_000;
    assert_eq!(c.increase(1, (start, at(1)), (0, 0), &[10.0], now).unwrap(), By(vec![10.0]));
    assert_eq!(c.increase(1, (start, at(2)), (0, 0), &[12.0], now).unwrap(), By(vec![2.0]));
    // A retried or late point adds nothing and leaves the state alone.
    assert_eq!(c.increase(1, (start, at(1)), (0, 0), &[10.0], now).unwrap(), Baseline);
    assert_eq!(c.increase(1, (start, at(2)), (0, 0), &[12.0], now).unwrap(), Baseline);
    assert_eq!(c.increase(1, (start, at(3)), (0, 0), &[15.0], now).unwrap(), By(vec![3.0]));
    // A new start time is a reset: the whole value counts.
    let restart = start + 60 * 1_000_000_000;
    assert_eq!(c.increase(1, (restart, at(90)), (0, 0), &[4.0], now).unwrap(), By(vec![4.0]));
    // Without a start time, going down is a reset (Prometheus' rule).
    assert_eq!(c.increase(7, (0, at(1)), (0, 0), &[9.0], now).unwrap(), Baseline);
    assert_eq!(c.increase(7, (0, at(2)), (0, 0), &[3.0], now).unwrap(), By(vec![3.0]));
    // A stream that began long before it was first seen (or before Vitals) is a baseline.
    let old = (now - 3 * 3_600_000) * MS;
    assert_eq!(c.increase(8, (old, at(1)), (0, 0), &[50.0], now).unwrap(), Baseline);
    // An exponential histogram at scale 1, offset 4 (buckets 4, 5, 6, 7) downscaled to scale 0,
    // offset 2 (buckets 2, 3): 4,5 → 2 and 6,7 → 3. Empty buckets outside the new window
    // do not stop it.
    c.increase(2, (start, at(1)), (1, 4), &[1.0, 2.0, 3.0, 4.0, 0.0], now).unwrap();
    c.rescale(2, 0, 0, 2, 2);
    assert_eq!(
        c.increase(2, (start, at(2)), (0, 2), &[4.0, 7.0], now).unwrap(),
        By(vec![1.0, 0.0])
    );
    // A layout that cannot be followed, same start: a new baseline, nothing counted twice.
    assert_eq!(c.increase(2, (start, at(3)), (5, 0), &[9.0, 9.0, 9.0], now).unwrap(), Baseline);
    assert_eq!(
        c.increase(2, (start, at(4)), (5, 0), &[9.0, 10.0, 9.0], now).unwrap(),
        By(vec![0.0, 1.0, 0.0])
    );
    let held = c.len();
    for key in 100..(100 + (metrics::MAX_STREAMS - held) as u64) {
        c.increase(key, (start, at(1)), (0, 0), &[1.0], now).unwrap();
    }
    assert_eq!(
        c.increase(u64::MAX, (start, at(1)), (0, 0), &[1.0], now),
        Err("cumulative_streams")
    );
    assert_eq!(c.len(), metrics::MAX_STREAMS);
    // Two hours later the idle streams are forgotten and there is room again.
    assert!(c.increase(u64::MAX, (start, at(1)), (0, 0), &[1.0], now + 2 * 3_600_000).is_ok());
    assert_eq!(c.len(), 1);
}

#[test]
fn a_point_claiming_a_huge_count_is_recorded_in_bounded_time() {
    let (app, otlp) = (app(), otlp());
    // With a store attached, a point two hours old is backfilled, where nothing refuses it.
    app.lock().attach_store(30 * 86_400_000);
    // 1e15 samples in one bucket of a fine histogram: its counters take them, the operation
    // does not (it would take a billion weighted records under the metrics lock).
    let exp = Data::ExponentialHistogram(ExponentialHistogram {
        data_points: vec![ExponentialHistogramDataPoint {
            time_unix_nano: (NOW - 2 * 3_600_000) * MS,
            count: 1_000_000_000_000_000,
            scale: 6,
            positive: Some(Buckets { offset: 320, bucket_counts: vec![1_000_000_000_000_000] }),
            ..Default::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let started = std::time::Instant::now();
    let tally = metrics::record(&app, &otlp, &metrics(vec![metric("huge", "ms", exp)]), NOW);
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(tally.accepted, 1);
    assert_eq!(counter(&app, "huge.count"), Some(1e15));
}

#[test]
fn a_gauge_from_two_resources_adds_up_and_a_bad_name_rejects_every_point() {
    let (app, otlp) = (app(), otlp());
    let gauge_of = |v: f64| {
        metric(
            "queue.depth",
            "1",
            Data::Gauge(Gauge { data_points: vec![number(v, vec![], 0, NOW - 1_000)] }),
        )
    };
    let mut request = metrics(vec![gauge_of(4.0)]);
    let mut second = request.resource_metrics[0].clone();
    second.scope_metrics[0].metrics = vec![gauge_of(6.0)];
    request.resource_metrics.push(second);
    let bad = Data::Gauge(Gauge { data_points: vec![number(1.0, vec![], 0, NOW); 3] });
    request.resource_metrics[0].scope_metrics[0].metrics.push(metric("bad\u{7}", "1", bad));
    let tally = metrics::record(&app, &otlp, &request, NOW);
    assert_eq!(gauge(&app, "queue.depth"), Some(10.0));
    assert_eq!((tally.accepted, tally.rejected), (2, 3));
}

#[test]
fn requests_with_too_many_fields_are_counted_before_decoding() {
    // 512 spans with ten attributes: well within the bound.
    let mut spans = Vec::new();
    for i in 0..512 {
        let mut s = span("GET /cart", SpanKind::Server, 1, 2, false);
        s.attributes = (0..10).map(|k| text(&format!("k{k}"), &format!("v{i}"))).collect();
        spans.push(s);
    }
    let body = traces("shop", spans).encode_to_vec();
    let counted = Encoding::Protobuf.fields(&body);
    assert!((512 * 40..MAX_FIELDS / 5).contains(&counted), "{counted}");
    // Empty spans, two bytes each: half a million of them are refused before decoding.
    let empty = traces("shop", vec![Span::default(); 500_000]).encode_to_vec();
    assert!(Encoding::Protobuf.fields(&empty) > MAX_FIELDS);
    let json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        vec!["{}"; 300_000].join(",")
    );
    assert!(Encoding::Json.fields(json.as_bytes()) > MAX_FIELDS);
    assert_eq!(Encoding::Json.fields(br#"{"a":"b","c":[1]}"#), 5);
    // Not wire format at all: counted as far as it reads, and decoding names the problem.
    assert_eq!(Encoding::Protobuf.fields(&[0xff, 0xff]), 0);
}

#[test]
fn groups_and_deep_nesting_hide_no_fields_from_the_count() {
    let empties = |n: usize| [0x0a, 0x00].repeat(n);
    // An unknown group first (field 15, start and end), then 300,000 empty `ResourceSpans`:
    // prost skips the group and decodes the rest, so the count must see them.
    let mut grouped = vec![0x7b, 0x7c];
    grouped.extend(empties(300_000));
    let decoded =
        ExportTraceServiceRequest::decode(grouped.as_slice()).map(|r| r.resource_spans.len());
    assert_eq!(decoded.ok(), Some(300_000));
    assert!(Encoding::Protobuf.fields(&grouped) > MAX_FIELDS);
    // The same fields fourteen messages deep.
    let mut nested = empties(300_000);
    for _ in 0..14 {
        let mut outer = vec![0x0a];
        prost::encoding::encode_varint(nested.len() as u64, &mut outer);
        outer.extend(nested);
        nested = outer;
    }
    assert!(Encoding::Protobuf.fields(&nested) > MAX_FIELDS);
    // A small body with a group still counts as it should: the group and its one message.
    assert_eq!(Encoding::Protobuf.fields(&[0x7b, 0x0a, 0x00, 0x7c]), 2);
}
