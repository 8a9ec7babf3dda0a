//! `http-ingest`: POSTs batches of operations from C keep-alive connections for a fixed time;
//! reports operations/s accepted and the request latency. `--format json` sends the JSON batch
//! of `/api/v1/ingest`; `--format otlp` sends OTLP/HTTP protobuf `ExportTraceServiceRequest`s
//! of server spans to `/v1/traces`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use clap::Parser;
use hyper::Method;
use tokio::time::Instant;
use vitals_bench::http::{split_url, Conn};
use vitals_bench::{
    latency_summary, mib, micros_histogram, process_cpu, record, status_bytes, OtherLoad,
};

#[derive(Parser)]
#[command(about = "HTTP batch ingest: operations/s and latency")]
struct Args {
    /// e.g. http://127.0.0.1:3000/api/v1/ingest
    #[arg(long)]
    url: String,
    /// Operations per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Sending time.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Connections sending at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Distinct operation names.
    #[arg(long, default_value_t = 50)]
    names: usize,
    /// The server's process id, for its CPU time and memory.
    #[arg(long)]
    pid: Option<i32>,
    /// Runtime worker threads of this client.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// `json` (the Vitals batch) or `otlp` (OTLP protobuf spans).
    #[arg(long, default_value = "json")]
    format: String,
}

/// The same bodies as OTLP protobuf: one resource (`service.name`), one scope, `batch` server
/// spans ending within the last minute.
fn otlp_bodies(batch: usize, names: usize) -> Vec<Bytes> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message as _;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (0..8)
        .map(|variant| {
            let spans = (0..batch)
                .map(|i| {
                    let k = (variant * batch + i) as u64;
                    let end = now_ns - (k % 1000) * 1_000_000;
                    Span {
                        trace_id: k.to_be_bytes().repeat(2),
                        span_id: k.to_be_bytes().to_vec(),
                        name: format!("bench.otlp{}", k % names.max(1) as u64),
                        kind: 2,
                        start_time_unix_nano: end - k.wrapping_mul(7919) % 100_000 * 10_000,
                        end_time_unix_nano: end,
                        status: k.is_multiple_of(50).then(|| Status {
                            code: status::StatusCode::Error as i32,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            let service = KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue("bench".into())) }),
                ..Default::default()
            };
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource { attributes: vec![service], ..Default::default() }),
                    scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                    ..Default::default()
                }],
            };
            Bytes::from(request.encode_to_vec())
        })
        .collect()
}

/// A few different bodies, so no two consecutive requests are byte-identical.
fn bodies(batch: usize, names: usize) -> Vec<Bytes> {
    (0..8)
        .map(|variant| {
            let ops: Vec<serde_json::Value> = (0..batch)
                .map(|i| {
                    let k = (variant * batch + i) as u64;
                    serde_json::json!({
                        "name": format!("bench.http{}", k % names.max(1) as u64),
                        "duration_ms": (k.wrapping_mul(7919) % 100_000) as f64 / 100.0,
                        "success": !k.is_multiple_of(50),
                    })
                })
                .collect();
            Bytes::from(
                serde_json::to_vec(&serde_json::json!({ "operations": ops })).unwrap_or_default(),
            )
        })
        .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

struct Worker {
    histogram: hdrhistogram::Histogram<u64>,
    accepted_batches: u64,
    failed: u64,
}

async fn run(args: Args) -> Result<()> {
    let (addr, path) = split_url(&args.url)?;
    let (bodies, content_type, ok) = match args.format.as_str() {
        "json" => (bodies(args.batch, args.names), "application/json", 202),
        "otlp" => (otlp_bodies(args.batch, args.names), "application/x-protobuf", 200),
        other => anyhow::bail!("--format must be json or otlp, not {other}"),
    };
    let bodies = Arc::new(bodies);
    // One warm-up request proves the server accepts the batch shape.
    let mut probe = Conn::connect(&addr).await?.with_content_type(content_type);
    let (status, answer) = probe.request(Method::POST, &path, Some(bodies[0].clone())).await?;
    if status.as_u16() != ok {
        anyhow::bail!("warm-up POST answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    drop(probe);

    let server_cpu0 = args.pid.map(process_cpu).transpose()?;
    let self_cpu0 = process_cpu(std::process::id() as i32)?;
    let other = OtherLoad::start(args.pid)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.secs);
    let mut handles = Vec::new();
    for w in 0..args.concurrency.max(1) {
        let (addr, path, bodies) = (addr.clone(), path.clone(), Arc::clone(&bodies));
        handles.push(tokio::spawn(async move {
            let mut worker =
                Worker { histogram: micros_histogram(), accepted_batches: 0, failed: 0 };
            let Ok(mut conn) = Conn::connect(&addr).await else {
                worker.failed += 1;
                return worker;
            };
            conn = conn.with_content_type(content_type);
            let mut i = w;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let sent = Instant::now();
                let answer = tokio::time::timeout_at(
                    deadline + Duration::from_secs(30),
                    conn.request(Method::POST, &path, Some(body)),
                )
                .await;
                match answer {
                    Ok(Ok((status, _))) if status.as_u16() == ok => {
                        record(&mut worker.histogram, sent.elapsed().as_micros() as u64);
                        worker.accepted_batches += 1;
                    }
                    _ => {
                        worker.failed += 1;
                        match Conn::connect(&addr).await {
                            Ok(c) => conn = c.with_content_type(content_type),
                            Err(_) => return worker,
                        }
                    }
                }
            }
            worker
        }));
    }
    let mut histogram = micros_histogram();
    let (mut batches, mut failed) = (0u64, 0u64);
    for handle in handles {
        let worker = handle.await?;
        histogram.add(&worker.histogram)?;
        batches += worker.accepted_batches;
        failed += worker.failed;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = match (args.pid, server_cpu0) {
        (Some(pid), Some(before)) => Some(process_cpu(pid)? - before),
        _ => None,
    };
    let self_cpu = process_cpu(std::process::id() as i32)? - self_cpu0;
    let other_pct = other.percent_of_core(start.elapsed());
    let ops = batches * args.batch as u64;
    let body_bytes = bodies.iter().map(|b| b.len()).sum::<usize>() / bodies.len();

    println!(
        "http-ingest format={} batch={} concurrency={} secs={} body={} bytes",
        args.format, args.batch, args.concurrency, args.secs, body_bytes
    );
    println!("  accepted batches       {batches} ({failed} failed) in {elapsed:.2} s");
    println!("  operations/s           {:.0}", ops as f64 / elapsed);
    println!("  requests/s             {:.0}", batches as f64 / elapsed);
    println!(
        "  body throughput        {:.1} MB/s",
        (batches as f64 * body_bytes as f64) / elapsed / 1e6
    );
    println!("  request latency        {}", latency_summary(&histogram));
    if let (Some(cpu), Some(pid)) = (server_cpu, args.pid) {
        println!(
            "  server CPU             {:.0} % of one core, {:.0} ns per operation, RSS {} MiB",
            cpu.as_secs_f64() / elapsed * 100.0,
            cpu.as_nanos() as f64 / ops.max(1) as f64,
            mib(status_bytes(pid, "VmRSS")?)
        );
    }
    println!(
        "  client CPU (this tool) {:.0} % of one core",
        self_cpu.as_secs_f64() / elapsed * 100.0
    );
    println!("  other processes        {other_pct:.0} % of one core");
    println!(
        "summary http format={} concurrency={} ops_per_sec={:.0} p50_ms={:.2} p99_ms={:.2} \
         failed={} server_cpu_pct={} server_ns_per_op={} other_pct={:.0}",
        args.format,
        args.concurrency,
        ops as f64 / elapsed,
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        failed,
        server_cpu.map_or("-".into(), |c| format!("{:.0}", c.as_secs_f64() / elapsed * 100.0)),
        server_cpu
            .map_or("-".into(), |c| format!("{:.0}", c.as_nanos() as f64 / ops.max(1) as f64)),
        other_pct,
    );
    Ok(())
}
