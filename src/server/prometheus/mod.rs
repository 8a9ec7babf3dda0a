//! `GET /metrics`: everything Vitals knows, in the Prometheus text format 0.0.4 (or OpenMetrics
//! when the scraper's `Accept` asks for it), so any Prometheus scrapes it unchanged.
//!
//! What is exposed (names in `README.md`, "Prometheus"):
//! - the latest host sample as gauges (`vitals_host_*`, `vitals_process_*`);
//! - per operation and event series (name and tag set): a summary of the duration in seconds,
//!   quantiles 0.5, 0.9, 0.95 and 0.99 from the sketches over `?window=` (1m by default; 5m,
//!   15m, 1h), with `_sum` and `_count` counting every sample since the series was first held,
//!   and a counter of failures. Tags become labels (a series whose labels sanitise like an
//!   earlier one's, `a.b` and `a-b`, is skipped and counted as below);
//! - StatsD counters (total since start) and gauges under their own sanitised names, sets as
//!   gauges of their unique members in the last minute;
//! - Vitals' own figures: WebSocket clients and sends, ticks, tick-to-send latency, ingestion
//!   per protocol and outcome, series and statistics budgets, the store's size and writes.
//!
//! Vitals' own families are written first, so an application metric whose sanitised name is
//! taken is skipped (counted in `vitals_exposition_names_skipped`). Cardinality is bounded by
//! the series budget: every series exposed is one Vitals holds.

mod text;

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::metrics::{tags, OtherMetrics, TimingKind};
use super::state::AppState;
use crate::model::live::Sample;
use crate::model::ops::Window;
pub use text::Format;
use text::{Exposition, Kind, Labels};

/// One figure of a protocol's ingestion counters.
type ProtocolFigure = fn(&super::metrics::ProtocolStats) -> u64;

/// Quantiles of every duration summary.
const QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// `GET /metrics?window=1m`.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let window = match query.get("window") {
        None => Window::M1,
        Some(w) => Window::parse(w).ok_or_else(|| {
            ApiError::bad_field("window", "window: must be one of 1m, 5m, 15m, 1h")
        })?,
    };
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    state.limits.queries.check()?;
    // Reading the statistics takes the metrics lock, which a burst of StatsD may hold.
    let body = tokio::task::spawn_blocking(move || {
        render(&state, window, format, crate::server::now_ms())
    })
    .await
    .map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the exposition could not be built")
    })?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// The whole exposition at `now_ms`.
pub fn render(state: &AppState, window: Window, format: Format, now_ms: u64) -> String {
    let mut exp = Exposition::new(format);
    let latest = state.hub.latest();
    if let Some(sample) = &latest {
        host(&mut exp, sample);
    }
    own(&mut exp, state, latest.as_ref());
    alerts(&mut exp, state, now_ms);
    report_cache(&mut exp, state);
    for kind in [TimingKind::Operation, TimingKind::Event] {
        timings(&mut exp, state, kind, window, now_ms);
    }
    statsd(&mut exp, &state.app.other_metrics(now_ms));
    let skipped = exp.skipped();
    if let Some(mut f) = exp.family(
        "vitals_exposition_names_skipped",
        Kind::Gauge,
        "Application metrics (families, or series within one) left out of this exposition \
         because their sanitised name or label set was taken.",
    ) {
        f.value(&Labels::new(), skipped as f64);
    }
    exp.finish()
}

/// One gauge family with a single unlabelled value.
fn gauge(exp: &mut Exposition, name: &str, help: &str, value: f64) {
    if let Some(mut f) = exp.family(name, Kind::Gauge, help) {
        f.value(&Labels::new(), value);
    }
}

/// One counter family with a single unlabelled value.
fn counter(exp: &mut Exposition, name: &str, help: &str, value: f64) {
    if let Some(mut f) = exp.family(name, Kind::Counter, help) {
        f.value(&Labels::new(), value);
    }
}

fn host(exp: &mut Exposition, sample: &Sample) {
    let s = &sample.system;
    gauge(
        exp,
        "vitals_host_cpu_percent",
        "Host CPU use over the last interval (0-100).",
        f64::from(s.cpu_pct),
    );
    if let Some(mut f) = exp.family(
        "vitals_host_cpu_core_percent",
        Kind::Gauge,
        "CPU use of each logical core (0-100).",
    ) {
        for (core, pct) in s.per_core_pct.iter().enumerate() {
            f.value(&Labels::new().with("core", &core.to_string()), f64::from(*pct));
        }
    }
    let bytes = [
        ("vitals_host_memory_used_bytes", "Memory in use.", s.memory_used_bytes),
        ("vitals_host_memory_total_bytes", "Memory installed.", s.memory_total_bytes),
        ("vitals_host_swap_used_bytes", "Swap in use.", s.swap_used_bytes),
        ("vitals_host_swap_total_bytes", "Swap configured.", s.swap_total_bytes),
        (
            "vitals_process_resident_memory_bytes",
            "Resident memory of Vitals itself.",
            s.self_rss_bytes,
        ),
    ];
    for (name, help, value) in bytes {
        gauge(exp, name, help, value as f64);
    }
    if let Some(mut f) = exp.family(
        "vitals_host_load_average",
        Kind::Gauge,
        "Load average over 1, 5 and 15 minutes.",
    ) {
        for (period, value) in [("1m", s.load_avg_1), ("5m", s.load_avg_5), ("15m", s.load_avg_15)]
        {
            f.value(&Labels::new().with("period", period), value);
        }
    }
    let rates = [
        (
            "vitals_host_network_receive_bytes_per_second",
            "Bytes received over all interfaces, per second.",
            s.net_rx_bytes_per_sec,
        ),
        (
            "vitals_host_network_transmit_bytes_per_second",
            "Bytes sent over all interfaces, per second.",
            s.net_tx_bytes_per_sec,
        ),
        (
            "vitals_host_disk_read_bytes_per_second",
            "Bytes read from disk by all processes, per second.",
            s.disk_read_bytes_per_sec,
        ),
        (
            "vitals_host_disk_write_bytes_per_second",
            "Bytes written to disk by all processes, per second.",
            s.disk_write_bytes_per_sec,
        ),
    ];
    for (name, help, value) in rates {
        gauge(exp, name, help, value);
    }
    gauge(exp, "vitals_host_processes", "Processes on the host.", f64::from(s.process_count));
    gauge(exp, "vitals_host_threads", "Threads on the host.", f64::from(s.thread_count));
    gauge(
        exp,
        "vitals_process_cpu_percent",
        "CPU use of Vitals itself (100 = one core).",
        f64::from(s.self_cpu_pct),
    );
    gauge(
        exp,
        "vitals_queue_actions",
        "Latest queue.actions gauge of the application.",
        sample.actions.queue_depth,
    );
    gauge(
        exp,
        "vitals_queue_events",
        "Latest queue.events gauge of the application.",
        sample.events.queued,
    );
}

fn own(exp: &mut Exposition, state: &AppState, latest: Option<&Sample>) {
    let hub = state.hub.stats();
    gauge(
        exp,
        "vitals_websocket_clients",
        "Live WebSocket clients connected.",
        hub.connected_clients as f64,
    );
    counter(
        exp,
        "vitals_websocket_messages_sent_total",
        "Messages sent to live clients.",
        hub.messages_sent as f64,
    );
    counter(
        exp,
        "vitals_websocket_bytes_sent_total",
        "Bytes sent to live clients.",
        hub.bytes_sent as f64,
    );
    counter(
        exp,
        "vitals_websocket_refused_total",
        "WebSocket connections refused (client limit).",
        hub.refused_connections as f64,
    );
    counter(
        exp,
        "vitals_ticks_total",
        "Samples taken since the start.",
        latest.map_or(0, |s| s.seq) as f64,
    );
    let latency = [
        ("vitals_tick_send_latency_p50_seconds", "Median time from a tick's publication to its last send completing, over recent ticks.", hub.tick_to_last_send_p50_ms),
        ("vitals_tick_send_latency_p99_seconds", "99th percentile of the time from a tick's publication to its last send completing, over recent ticks.", hub.tick_to_last_send_p99_ms),
    ];
    for (name, help, ms) in latency {
        if let Some(ms) = ms {
            gauge(exp, name, help, ms / 1e3);
        }
    }
    let (wrong, refused) = state.auth.attempt_counts();
    counter(exp, "vitals_auth_wrong_tokens_total", "Wrong tokens presented.", wrong as f64);
    counter(
        exp,
        "vitals_auth_refused_total",
        "Tokens refused without being compared: too many wrong ones from their address, or from everywhere.",
        refused as f64,
    );
    let ingest = state.app.ingest_stats();
    let protocols = [("statsd", &ingest.statsd), ("http", &ingest.http), ("otlp", &ingest.otlp)];
    let per_protocol: [(&str, &str, ProtocolFigure); 5] = [
        (
            "vitals_ingest_received_total",
            "Datagrams (StatsD) or requests (HTTP, OTLP) received.",
            |p| p.received,
        ),
        ("vitals_ingest_accepted_total", "Lines or items accepted.", |p| p.accepted),
        ("vitals_ingest_malformed_total", "Lines or items that could not be used.", |p| {
            p.malformed
        }),
        ("vitals_ingest_rejected_total", "Requests refused whole.", |p| p.rejected),
        (
            "vitals_ingest_ignored_total",
            "Items left out by configuration (OTLP spans of kinds that do not count).",
            |p| p.ignored,
        ),
    ];
    for (name, help, get) in per_protocol {
        if let Some(mut f) = exp.family(name, Kind::Counter, help) {
            for (protocol, stats) in protocols {
                f.value(&Labels::new().with("protocol", protocol), get(stats) as f64);
            }
        }
    }
    if let Some(mut f) =
        exp.family("vitals_ingest_dropped_total", Kind::Counter, "Samples dropped, by reason.")
    {
        for (protocol, p) in protocols {
            let reasons = [
                ("series_budget", p.dropped_by_cap),
                ("statistics_budget", p.dropped_by_memory),
                ("too_old", p.dropped_too_old),
                ("future", p.dropped_future),
                ("saturated", p.dropped_saturated),
                ("kernel_buffer", p.dropped_by_kernel),
                ("set_members", p.set_members_dropped),
            ];
            for (reason, n) in reasons {
                f.value(&Labels::new().with("protocol", protocol).with("reason", reason), n as f64);
            }
        }
    }
    if let Some(mut f) = exp.family("vitals_series", Kind::Gauge, "Series held, by kind.") {
        let k = ingest.series_by_kind;
        for (kind, n) in [
            ("operation", k.operations),
            ("event", k.events),
            ("counter", k.counters),
            ("gauge", k.gauges),
            ("set", k.sets),
        ] {
            f.value(&Labels::new().with("kind", kind), n as f64);
        }
    }
    gauge(
        exp,
        "vitals_series_budget",
        "Series of every kind that may be held (--max-series).",
        ingest.max_series as f64,
    );
    gauge(
        exp,
        "vitals_statistics_bytes",
        "Estimated bytes of the operation and event statistics.",
        ingest.statistics_bytes as f64,
    );
    gauge(
        exp,
        "vitals_statistics_budget_bytes",
        "Bytes the statistics may hold (--max-statistics-mb).",
        ingest.max_statistics_bytes as f64,
    );
    counter(
        exp,
        "vitals_statistics_evicted_total",
        "Series whose in-memory windows were dropped by the byte budget.",
        ingest.statistics_evicted as f64,
    );
    counter(
        exp,
        "vitals_store_spool_dropped_samples_total",
        "Samples the history store never got: its spool of late samples was full.",
        ingest.spool_dropped as f64,
    );
    gauge(
        exp,
        "vitals_statistics_upkeep_seconds",
        "How long the last tick's upkeep of the operation and event statistics took.",
        state.app.last_upkeep().as_secs_f64(),
    );
    let store = state.store.counters();
    gauge(
        exp,
        "vitals_store_file_bytes",
        "Size of the history store's database file.",
        store.file_bytes as f64,
    );
    gauge(
        exp,
        "vitals_store_wal_bytes",
        "Size of the history store's write-ahead log.",
        store.wal_bytes as f64,
    );
    gauge(
        exp,
        "vitals_store_write_queue",
        "Batches waiting for the store's writer.",
        store.write_queue as f64,
    );
    counter(
        exp,
        "vitals_store_rows_written_total",
        "Rows written to the history store.",
        store.rows_written as f64,
    );
    counter(
        exp,
        "vitals_store_write_errors_total",
        "Writes to the history store that failed (each is retried).",
        store.write_errors as f64,
    );
    if let Some(mut f) = exp.family(
        "vitals_store_dropped_batches_total",
        Kind::Counter,
        "Batches the store dropped, by reason.",
    ) {
        f.value(&Labels::new().with("reason", "queue_full"), store.dropped_queue_full as f64);
        f.value(&Labels::new().with("reason", "write_errors"), store.dropped_write_errors as f64);
    }
}

/// Alerts firing and pending, notifications by receiver and outcome, the evaluation's cost.
fn alerts(exp: &mut Exposition, state: &AppState, now_ms: u64) {
    let now = state.alerts.now_limited(now_ms, 0);
    if let Some(mut f) = exp.family(
        "vitals_alerts",
        Kind::Gauge,
        "Alerts now by state and severity (silenced ones excluded).",
    ) {
        let c = now.counts;
        f.value(
            &Labels::new().with("state", "firing").with("severity", "critical"),
            f64::from(c.critical),
        );
        f.value(
            &Labels::new().with("state", "firing").with("severity", "warning"),
            f64::from(c.warning),
        );
        f.value(
            &Labels::new().with("state", "pending").with("severity", "any"),
            f64::from(c.pending),
        );
    }
    if let Some(mut f) = exp.family(
        "vitals_alert_notifications_total",
        Kind::Counter,
        "Alert notifications by receiver and outcome (retried counts each failed attempt).",
    ) {
        for r in &now.receivers {
            for (outcome, n) in [
                ("sent", r.sent),
                ("retried", r.retried),
                ("failed", r.failed),
                ("dropped", r.dropped),
            ] {
                f.value(
                    &Labels::new().with("receiver", &r.receiver).with("outcome", outcome),
                    n as f64,
                );
            }
        }
    }
    let stats = &state.alerts.stats;
    counter(
        exp,
        "vitals_alert_evaluations_total",
        "Evaluations of every alert rule (one per tick).",
        stats.evaluations.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    counter(
        exp,
        "vitals_alert_transitions_total",
        "Alert transitions recorded in the history (pending, firing, recovering, resolved, ...).",
        stats.transitions.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    counter(
        exp,
        "vitals_alert_instances_skipped_total",
        "Breaching series left without an alert instance because the most instances are held \
         (once per series and evaluation).",
        stats.skipped_instances.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    gauge(
        exp,
        "vitals_alert_evaluation_seconds",
        "How long the last evaluation of every alert rule took, publishing its changes included.",
        stats.last_eval_us.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6,
    );
    gauge(
        exp,
        "vitals_alert_evaluation_cpu_seconds",
        "CPU time the last evaluation of every alert rule used, publishing its changes included.",
        stats.last_eval_cpu_us.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6,
    );
}

/// A report-cache metric: name, kind, help, and the values of one cache kind by `result`
/// label (none when empty).
type CacheFamily = (
    &'static str,
    Kind,
    &'static str,
    fn(&crate::model::reports::CacheKindStats) -> Vec<(&'static str, u64)>,
);

/// The report cache per kind: look-ups by outcome, evictions, entries and bytes held.
fn report_cache(exp: &mut Exposition, state: &AppState) {
    let stats = state.reports.cache.stats();
    let families: [CacheFamily; 4] = [
        (
            "vitals_report_cache_lookups_total",
            Kind::Counter,
            "Report cache look-ups by kind and result.",
            |k| vec![("hit", k.hits), ("miss", k.misses)],
        ),
        (
            "vitals_report_cache_evictions_total",
            Kind::Counter,
            "Report cache entries removed by their TTL or the size limit, by kind.",
            |k| vec![("", k.evictions)],
        ),
        ("vitals_report_cache_entries", Kind::Gauge, "Report cache entries held, by kind.", |k| {
            vec![("", k.entries)]
        }),
        ("vitals_report_cache_bytes", Kind::Gauge, "Report cache bytes held, by kind.", |k| {
            vec![("", k.bytes)]
        }),
    ];
    for (name, kind, help, values) in families {
        if let Some(mut f) = exp.family(name, kind, help) {
            for k in &stats.kinds {
                for (result, n) in values(k) {
                    let mut labels = Labels::new().with("kind", &k.kind);
                    if !result.is_empty() {
                        labels.push("result", result);
                    }
                    f.value(&labels, n as f64);
                }
            }
        }
    }
}

/// The duration summary and failure counter of every operation (or event) series.
fn timings(exp: &mut Exposition, state: &AppState, kind: TimingKind, window: Window, now_ms: u64) {
    let (noun, label) = match kind {
        TimingKind::Operation => ("operation", "operation"),
        TimingKind::Event => ("event", "event"),
    };
    let series = state.app.export(kind, window, now_ms);
    let labels_of = |key: &str| {
        let mut labels = Labels::new().with(label, tags::name_of(key));
        for (k, v) in tags::tags_of(key) {
            labels.push(k, v);
        }
        labels
    };
    let help = format!(
        "Duration of each {noun} in seconds: quantiles over the last {} (within {} % relative error), sum and count since first seen.",
        window.as_str(),
        crate::server::stats::OperationRegistry::RELATIVE_ERROR * 100.0
    );
    if let Some(mut f) =
        exp.family(&format!("vitals_{noun}_duration_seconds"), Kind::Summary, &help)
    {
        for (key, summary, lifetime) in &series {
            let quantiles: Vec<(f64, f64)> = summary.as_ref().map_or_else(Vec::new, |s| {
                let ms = [s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms];
                QUANTILES.into_iter().zip(ms).map(|(q, ms)| (q, ms / 1e3)).collect()
            });
            f.summary(&labels_of(key), &quantiles, lifetime.sum_ms() / 1e3, lifetime.count);
        }
    }
    let help = format!("Failed {noun}s since first seen.");
    if let Some(mut f) = exp.family(&format!("vitals_{noun}_errors_total"), Kind::Counter, &help) {
        for (key, _, lifetime) in &series {
            f.value(&labels_of(key), lifetime.errors as f64);
        }
    }
}

/// StatsD counters, gauges and sets under their own (sanitised) names.
fn statsd(exp: &mut Exposition, other: &OtherMetrics) {
    for (name, value) in &other.counters {
        let help = format!("StatsD counter {name}: total since it was first seen.");
        if let Some(mut f) = exp.family(name, Kind::Counter, &help) {
            f.value(&Labels::new(), value.total);
        }
    }
    for (name, value) in &other.gauges {
        let help = format!("StatsD gauge {name}.");
        if let Some(mut f) = exp.family(name, Kind::Gauge, &help) {
            f.value(&Labels::new(), *value);
        }
    }
    for set in &other.sets {
        let help = format!("StatsD set {}: unique members in the last minute.", set.name);
        if let Some(mut f) = exp.family(&set.name, Kind::Gauge, &help) {
            f.value(&Labels::new(), set.unique as f64);
        }
    }
}
