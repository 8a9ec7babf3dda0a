//! `range-latency`: times GETs of the history store's range queries on one keep-alive
//! connection, paced under the server's statistics-query limit (200/s), after warm-up
//! requests. Prints each path's answer (tier, how many operations or points) and latency.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use hyper::Method;
use tokio::time::Instant;
use vitals_bench::http::{split_url, Conn};
use vitals_bench::{latency_summary, micros_histogram, record};

#[derive(Parser)]
#[command(about = "Latency of history range queries")]
struct Args {
    /// The server, e.g. http://127.0.0.1:3000
    #[arg(long)]
    base: String,
    /// Paths to time, each on its own.
    #[arg(long, required = true)]
    path: Vec<String>,
    /// Timed requests per path.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Untimed requests first.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// At most this many requests per second (the server allows 200 queries/s).
    #[arg(long, default_value_t = 100)]
    max_rate: u64,
    /// A label for the summary lines.
    #[arg(long, default_value = "range")]
    label: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

/// What an answer holds: `tier`, and the length of `operations` or `points`.
fn describe(v: &serde_json::Value) -> String {
    let tier = v.get("tier").and_then(|t| t.as_str()).unwrap_or("-");
    let len = |k: &str| v.get(k).and_then(|x| x.as_array()).map(Vec::len);
    let total = v.get("total").and_then(serde_json::Value::as_u64);
    match (len("operations"), len("points")) {
        (Some(n), _) => format!("tier={tier} operations={n} total={}", total.unwrap_or(0)),
        (_, Some(n)) => format!("tier={tier} points={n}"),
        _ => format!("tier={tier}"),
    }
}

async fn run(args: Args) -> Result<()> {
    let (addr, _) = split_url(&format!("{}/", args.base.trim_end_matches('/')))?;
    let mut conn = Conn::connect(&addr).await?;
    let gap = Duration::from_micros(1_000_000 / args.max_rate.max(1));
    println!("range-latency requests={} warmup={} max_rate={}/s", args.requests, args.warmup,
        args.max_rate);
    let mut summaries = Vec::new();
    for path in &args.path {
        let mut histogram = micros_histogram();
        let (mut bytes, mut limited) = (0usize, 0u64);
        let mut what = String::new();
        let mut i = 0;
        while i < args.requests + args.warmup {
            let sent = Instant::now();
            let (status, body) = tokio::time::timeout(
                Duration::from_secs(60),
                conn.request(Method::GET, path, None),
            )
            .await??;
            let took = sent.elapsed();
            if status.as_u16() == 429 {
                limited += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if !status.is_success() {
                bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
            }
            if i == 0 {
                what = describe(&serde_json::from_slice(&body)?);
            }
            bytes = body.len();
            if i >= args.warmup {
                record(&mut histogram, took.as_micros() as u64);
            }
            i += 1;
            tokio::time::sleep_until(sent + gap).await;
        }
        println!("  GET {path}");
        println!("    answer              {what}, {bytes} bytes; {limited} answered 429 (retried)");
        println!("    latency             {}", latency_summary(&histogram));
        summaries.push(format!(
            "summary {} path={} {} bytes={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            args.label,
            path,
            what,
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
