//! `query-latency`: loads N distinct operations through the HTTP API (a few samples each,
//! spread over the last hour with `timestamp_ms`), then times GETs of the operations list.

use std::time::Duration;

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::Parser;
use hyper::Method;
use tokio::time::Instant;
use vitals_bench::http::{split_url, Conn};
use vitals_bench::{latency_summary, micros_histogram, now_unix_ms, record};

#[derive(Parser)]
#[command(about = "Operations query latency with many distinct operations")]
struct Args {
    /// The server, e.g. http://127.0.0.1:3000
    #[arg(long)]
    base: String,
    /// Paths to time, each on its own.
    #[arg(long, default_values_t = ["/api/v1/operations?window=1h".to_string()])]
    path: Vec<String>,
    /// Distinct operations loaded first.
    #[arg(long, default_value_t = 1000)]
    operations: usize,
    /// Samples per operation, spread over the last hour.
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// Timed requests per path (after 10 warm-up requests).
    #[arg(long, default_value_t = 200)]
    requests: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let (addr, _) = split_url(&format!("{}/", args.base.trim_end_matches('/')))?;
    let mut conn = Conn::connect(&addr).await?;

    // Load: sample j of operation i lands (i * samples + j) / total of an hour ago (< 1 h).
    let now = now_unix_ms();
    let total = (args.operations * args.samples).max(1) as u64;
    let mut ops = Vec::with_capacity(total as usize);
    for i in 0..args.operations {
        for j in 0..args.samples {
            let k = (i * args.samples + j) as u64;
            let age_ms = 5_000 + k * (3_600_000 - 60_000) / total;
            ops.push(serde_json::json!({
                "name": format!("bench.query.{i:04}"),
                "duration_ms": ((k * 7919) % 100_000) as f64 / 100.0,
                "success": !k.is_multiple_of(20),
                "timestamp_ms": now - age_ms,
            }));
        }
    }
    for chunk in ops.chunks(1000) {
        let body = Bytes::from(serde_json::to_vec(&serde_json::json!({ "operations": chunk }))?);
        let (status, answer) = conn.request(Method::POST, "/api/v1/ingest", Some(body)).await?;
        if status.as_u16() != 202 {
            bail!("loading answered {status}: {}", String::from_utf8_lossy(&answer));
        }
    }

    println!(
        "query-latency operations={} samples_each={} requests={}",
        args.operations, args.samples, args.requests
    );
    let mut summaries = Vec::new();
    for path in &args.path {
        // A JSON answer lists its operations; the Prometheus exposition is text.
        let list = if path.starts_with("/api/") {
            conn.get_json(path).await?
        } else {
            serde_json::Value::Null
        };
        let listed = list.get("total").and_then(|t| t.as_u64()).unwrap_or(0);
        let returned = list.get("operations").and_then(|o| o.as_array()).map_or(0, |o| o.len());
        let mut histogram = micros_histogram();
        let mut bytes = 0usize;
        for i in 0..args.requests + 10 {
            let sent = Instant::now();
            let (status, body) = tokio::time::timeout(
                Duration::from_secs(30),
                conn.request(Method::GET, path, None),
            )
            .await??;
            let took = sent.elapsed();
            if !status.is_success() {
                bail!("GET {path}: {status}");
            }
            bytes = body.len();
            if i >= 10 {
                record(&mut histogram, took.as_micros() as u64);
            }
        }
        println!("  GET {path}");
        println!("    operations          total {listed}, returned {returned}, {bytes} bytes");
        println!("    latency             {}", latency_summary(&histogram));
        summaries.push(format!(
            "summary query path={} total={} returned={} bytes={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            path,
            listed,
            returned,
            bytes,
            histogram.value_at_quantile(0.5) as f64 / 1000.0,
            histogram.value_at_quantile(0.99) as f64 / 1000.0,
            histogram.max() as f64 / 1000.0
        ));
    }
    for line in summaries {
        println!("{line}");
    }
    Ok(())
}
