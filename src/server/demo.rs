//! `vitals serve --demo`: a traffic simulator that sends realistic application data through the
//! real StatsD, HTTP and OTLP paths, so a new user sees a living dashboard at once. Several operations
//! with their own latency profiles (log-normal, with slow outliers), bursts, occasional errors,
//! events, and queue depths rising and falling.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Bytes;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::config::Secret;

/// A simulated operation (StatsD-style names; the HTTP batches use an HTTP-style one).
struct Profile {
    name: &'static str,
    /// Median latency in ms and the spread of its logarithm.
    median_ms: f64,
    sigma: f64,
    /// Samples per second in calm periods.
    per_sec: f64,
    error_rate: f64,
    /// Chance of a slow outlier (10–40 times the median).
    outlier_rate: f64,
}

const OPERATIONS: [Profile; 6] = [
    Profile {
        name: "api.dashboard.get",
        median_ms: 45.0,
        sigma: 0.35,
        per_sec: 12.0,
        error_rate: 0.002,
        outlier_rate: 0.01,
    },
    Profile {
        name: "api.search.get",
        median_ms: 95.0,
        sigma: 0.6,
        per_sec: 6.0,
        error_rate: 0.01,
        outlier_rate: 0.02,
    },
    Profile {
        name: "api.checkout.post",
        median_ms: 220.0,
        sigma: 0.45,
        per_sec: 2.0,
        error_rate: 0.03,
        outlier_rate: 0.02,
    },
    Profile {
        name: "db.query.orders",
        median_ms: 12.0,
        sigma: 0.5,
        per_sec: 20.0,
        error_rate: 0.001,
        outlier_rate: 0.005,
    },
    Profile {
        name: "report.generate",
        median_ms: 2600.0,
        sigma: 0.5,
        per_sec: 0.3,
        error_rate: 0.06,
        outlier_rate: 0.05,
    },
    Profile {
        name: "panel.render.sales",
        median_ms: 800.0,
        sigma: 0.7,
        per_sec: 1.0,
        error_rate: 0.02,
        outlier_rate: 0.04,
    },
];

const EVENTS: [(&str, f64, f64); 2] =
    [("email.send", 40.0, 0.01), ("webhook.deliver", 120.0, 0.04)];

/// Runs until `shutdown`: StatsD datagrams every 100 ms, an HTTP batch every second.
pub async fn run(
    http_addr: SocketAddr,
    statsd_addr: Option<SocketAddr>,
    token: Option<Secret>,
    shutdown: CancellationToken,
) {
    let udp = match UdpSocket::bind("127.0.0.1:0").await {
        Ok(socket) => socket,
        Err(e) => {
            warn!(error = %e, "Demo traffic cannot open a UDP socket; stopping it.");
            return;
        }
    };
    let http_target = loopback(http_addr);
    let mut sim = Simulation::new(fastrand::Rng::new());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let lines = sim.step();
        if let Some(statsd) = statsd_addr {
            for datagram in chunk_lines(&lines, 1400) {
                if let Err(e) = udp.send_to(datagram.as_bytes(), loopback(statsd)).await {
                    debug!(error = %e, "Demo StatsD send failed.");
                }
            }
        }
        if sim.steps.is_multiple_of(10) {
            let batch = sim.http_batch();
            if let Err(e) = post_json(http_target, "/api/v1/ingest", &batch, token.as_ref()).await {
                debug!(error = %e, "Demo HTTP batch failed.");
            }
            let traces = sim.otlp_traces(super::now_ms());
            if let Err(e) = post_json(http_target, "/v1/traces", &traces, token.as_ref()).await {
                debug!(error = %e, "Demo OTLP export failed.");
            }
        }
    }
}

/// The simulated application, advanced in steps of 100 ms.
struct Simulation {
    rng: fastrand::Rng,
    steps: u64,
    action_queue: f64,
    event_queue: f64,
}

impl Simulation {
    fn new(rng: fastrand::Rng) -> Self {
        Simulation { rng, steps: 0, action_queue: 5.0, event_queue: 2.0 }
    }

    /// Advances 100 ms and returns the StatsD lines the application sent meanwhile.
    fn step(&mut self) -> String {
        self.steps += 1;
        let rng = &mut self.rng;
        let secs = self.steps as f64 / 10.0;
        // A burst of three times the traffic for 6 s in every 45.
        let burst = if (self.steps / 10) % 45 < 6 { 3.0 } else { 1.0 };
        let mut lines = String::new();
        for p in &OPERATIONS {
            for _ in 0..poisson(rng, p.per_sec * burst / 10.0) {
                let slowdown = if burst > 1.0 { 1.6 } else { 1.0 };
                let mut ms = lognormal(rng, p.median_ms * slowdown, p.sigma);
                if rng.f64() < p.outlier_rate {
                    ms *= 10.0 + 30.0 * rng.f64();
                }
                let failed = rng.f64() < p.error_rate * burst;
                let _ = writeln!(
                    lines,
                    "{}:{ms:.2}|ms|#env:demo{}",
                    p.name,
                    if failed { ",success:false" } else { "" }
                );
            }
        }
        for (name, median, fail) in EVENTS {
            for _ in 0..poisson(rng, 1.5 * burst) {
                let ms = lognormal(rng, median, 0.4);
                let failed = rng.f64() < fail;
                let _ = writeln!(
                    lines,
                    "event.{name}:{ms:.2}|ms{}",
                    if failed { "|#success:false" } else { "" }
                );
            }
        }
        // Queues drift towards a slowly swinging level, and fill up during bursts.
        let action_target = 8.0 + 6.0 * (secs / 30.0).sin() + (burst - 1.0) * 25.0;
        self.action_queue = (self.action_queue * 0.9 + action_target * 0.1 + rng.f64() * 2.0 - 1.0)
            .clamp(0.0, 400.0);
        let event_target = 3.0 + 2.0 * (secs / 17.0).cos() + (burst - 1.0) * 10.0;
        self.event_queue =
            (self.event_queue * 0.9 + event_target * 0.1 + rng.f64() - 0.5).clamp(0.0, 400.0);
        let _ = writeln!(lines, "queue.actions:{:.0}|g", self.action_queue);
        let _ = writeln!(lines, "demo.requests:{}|c", poisson(rng, 40.0 * burst));
        let _ = writeln!(lines, "demo.users:user{}|s", rng.u32(0..500));
        lines
    }

    /// The HTTP batch sent once a second: an HTTP-named operation, the event queue and the
    /// current action.
    fn http_batch(&mut self) -> serde_json::Value {
        let action = (self.steps % 700 >= 350).then_some("report.generate #4711");
        serde_json::json!({
            "operations": [{
                "name": "GET /api/profile",
                "duration_ms": lognormal(&mut self.rng, 30.0, 0.3),
                "success": self.rng.f64() > 0.005,
                "tags": {"source": "http"}
            }],
            "gauges": [{"name": "queue.events", "value": self.event_queue.round()}],
            "current_action": action,
        })
    }
}

impl Simulation {
    /// The OTLP/HTTP JSON export sent once a second, as an instrumented service's SDK sends it:
    /// a few server spans of `POST /cart/items` (the operation), each with the client span of
    /// the database call inside it (ignored by default: it times part of the same work).
    fn otlp_traces(&mut self, now_ms: u64) -> serde_json::Value {
        let mut spans = Vec::new();
        for i in 0..poisson(&mut self.rng, 3.0) {
            let end_ns = now_ms.saturating_sub(u64::from(i) * 37) * 1_000_000;
            let ms = lognormal(&mut self.rng, 65.0, 0.4);
            let start_ns = end_ns.saturating_sub((ms * 1e6) as u64);
            let failed = self.rng.f64() < 0.02;
            let trace_id = format!("{:016x}{:016x}", self.rng.u64(..), self.rng.u64(..));
            let span_id = format!("{:016x}", self.rng.u64(..));
            spans.push(serde_json::json!({
                "traceId": trace_id, "spanId": span_id, "name": "POST /cart/items", "kind": 2,
                "startTimeUnixNano": start_ns.to_string(), "endTimeUnixNano": end_ns.to_string(),
                "status": {"code": if failed { 2 } else { 1 }},
            }));
            spans.push(serde_json::json!({
                "traceId": trace_id, "spanId": format!("{:016x}", self.rng.u64(..)),
                "parentSpanId": span_id, "name": "INSERT cart_items", "kind": 3,
                "startTimeUnixNano": (start_ns + 1_000_000).to_string(),
                "endTimeUnixNano": (end_ns.saturating_sub(1_000_000)).to_string(),
            }));
        }
        serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "cart-service"}}]},
            "scopeSpans": [{"scope": {"name": "vitals-demo"}, "spans": spans}],
        }]})
    }
}

/// The address to send to: the listener's own, with an unspecified IP replaced by loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// Splits newline-terminated lines into datagrams of at most `max` bytes.
fn chunk_lines(lines: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines.lines() {
        if !current.is_empty() && current.len() + line.len() + 1 > max {
            out.push(std::mem::take(&mut current));
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn lognormal(rng: &mut fastrand::Rng, median: f64, sigma: f64) -> f64 {
    // Box-Muller for a standard normal draw.
    let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}

fn poisson(rng: &mut fastrand::Rng, mean: f64) -> u32 {
    // Knuth's method; means here are small.
    let limit = (-mean).exp();
    let (mut k, mut p) = (0u32, 1.0f64);
    loop {
        p *= rng.f64();
        if p <= limit || k > 1000 {
            return k;
        }
        k += 1;
    }
}

/// POSTs a batch to the server's own ingestion API.
async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    token: Option<&Secret>,
) -> anyhow::Result<()> {
    let endpoint = super::outbound::Endpoint::at(addr, path);
    let body = Bytes::from(serde_json::to_vec(body)?);
    super::outbound::post_json(&endpoint, body, token, Duration::from_secs(10))
        .await
        .map_err(|e| anyhow::anyhow!("ingest: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_chunked_into_datagrams_without_splitting_a_line() {
        let lines = "a:1|ms\n".repeat(500);
        let chunks = chunk_lines(&lines, 1400);
        assert!(chunks.iter().all(|c| c.len() <= 1400 && c.ends_with('\n')));
        assert_eq!(chunks.iter().map(|c| c.lines().count()).sum::<usize>(), 500);
    }

    #[test]
    fn every_simulated_line_and_batch_is_valid() {
        struct Count(usize);
        impl crate::server::ingest::statsd::StatsdSink for Count {
            fn timer(&mut self, _: &str, _: f64, _: f64, _: bool, _: &Tags<'_>) {
                self.0 += 1;
            }
            fn counter(&mut self, _: &str, _: f64, _: &Tags<'_>) {
                self.0 += 1;
            }
            fn gauge(&mut self, _: &str, _: f64, _: bool, _: &Tags<'_>) {
                self.0 += 1;
            }
            fn set(&mut self, _: &str, _: &str, _: &Tags<'_>) {
                self.0 += 1;
            }
            fn malformed(&mut self, line: &[u8], error: LineError<'_>) {
                panic!("{}: {error}", String::from_utf8_lossy(line));
            }
        }
        use crate::server::ingest::statsd::{parse_datagram, LineError, Tags};
        let mut sim = Simulation::new(fastrand::Rng::with_seed(3));
        let mut count = Count(0);
        for _ in 0..600 {
            let lines = sim.step();
            for datagram in chunk_lines(&lines, 1400) {
                parse_datagram(datagram.as_bytes(), &mut count);
            }
        }
        assert!(count.0 > 600 * 3, "a minute of demo traffic sent only {} lines", count.0);
        let batch: crate::server::ingest::http::Batch =
            serde_json::from_value(sim.http_batch()).unwrap();
        assert!(crate::server::ingest::http::validate(&batch).is_ok());
        // The OTLP export decodes as OTLP JSON, and its server spans all count.
        let now = 1_780_000_000_000;
        let body = serde_json::to_vec(&sim.otlp_traces(now)).unwrap();
        let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            crate::server::ingest::otlp::Encoding::Json.decode(&body, "traces").unwrap();
        let spans = request.resource_spans[0].scope_spans[0].spans.len() as u64;
        let app = crate::server::metrics::AppMetrics::new(
            Default::default(),
            Default::default(),
            now - 60_000,
        );
        let config = crate::server::ingest::otlp::OtlpConfig::default();
        let tally = crate::server::ingest::otlp::traces::record(&app, &config, &request, now);
        assert_eq!((tally.accepted, tally.ignored, tally.rejected), (spans / 2, spans / 2, 0));
    }

    #[test]
    fn distributions_are_centred_where_asked() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut draws: Vec<f64> = (0..20_000).map(|_| lognormal(&mut rng, 100.0, 0.5)).collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[draws.len() / 2];
        assert!((90.0..110.0).contains(&median), "{median}");
        let mean = (0..20_000).map(|_| poisson(&mut rng, 3.0) as f64).sum::<f64>() / 20_000.0;
        assert!((2.9..3.1).contains(&mean), "{mean}");
    }
}
