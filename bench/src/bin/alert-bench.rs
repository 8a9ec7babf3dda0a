//! `alert-bench`: the cost and the speed of alerting.
//!
//! - `eval-cost`: keeps N distinct operations busy through the HTTP API (every one gets samples
//!   every second, so every rule matches every series) and reads the server's own timer of each
//!   evaluation (`vitals_alert_evaluation_seconds` in `/metrics`) once a second: the time one
//!   tick's evaluation of every rule over every series takes, and the CPU time it used
//!   (`vitals_alert_evaluation_cpu_seconds`, without waits for a lock or a CPU).
//! - `breach`: a local webhook receiver; a rule with `for_secs = 0` on a gauge, then, R times,
//!   a gauge of its own is pushed over the threshold and the time until the webhook's `firing`
//!   POST arrives is measured (then back under it, waiting for `resolved`).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use vitals_bench::http::{split_url, Conn};
use vitals_bench::{latency_summary, micros_histogram, now_unix_ms, record};

#[derive(Parser)]
#[command(about = "Alert evaluation cost and breach-to-webhook latency")]
struct Args {
    /// The server, e.g. http://127.0.0.1:3000
    #[arg(long)]
    base: String,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    EvalCost {
        /// Distinct operations kept busy.
        #[arg(long, default_value_t = 1000)]
        operations: usize,
        /// Seconds measured (after 10 s of warm-up).
        #[arg(long, default_value_t = 60)]
        secs: u64,
    },
    Breach {
        /// Where the webhook receiver listens (the server's --webhook points here).
        #[arg(long)]
        listen: String,
        /// Breaches measured.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        match args.what {
            What::EvalCost { operations, secs } => eval_cost(&args.base, operations, secs).await,
            What::Breach { listen, rounds } => breach(&args.base, &listen, rounds).await,
        }
    })
}

async fn post(conn: &mut Conn, path: &str, body: serde_json::Value) -> Result<(u16, Bytes)> {
    let body = Bytes::from(serde_json::to_vec(&body)?);
    let (status, answer) = conn.request(Method::POST, path, Some(body)).await?;
    Ok((status.as_u16(), answer))
}

/// One sample per operation now (every one busy in every window). `examples/alert-storm.rs`
/// (the server's crate, which this workspace does not link) replays the same durations and
/// failures in process: change both together.
async fn feed(conn: &mut Conn, operations: usize, round: u64) -> Result<()> {
    let now = now_unix_ms();
    let ops: Vec<serde_json::Value> = (0..operations)
        .map(|i| {
            serde_json::json!({
                "name": format!("bench.alert.{i:04}"),
                "duration_ms": 5.0 + ((i as u64 * 7919 + round * 31) % 500) as f64,
                "success": (i as u64 + round) % 50 != 0,
                "timestamp_ms": now,
            })
        })
        .collect();
    for chunk in ops.chunks(1000) {
        let (status, answer) = post(conn, "/api/v1/ingest", serde_json::json!({ "operations": chunk })).await?;
        if status != 202 {
            bail!("ingest answered {status}: {}", String::from_utf8_lossy(&answer));
        }
    }
    Ok(())
}

async fn eval_cost(base: &str, operations: usize, secs: u64) -> Result<()> {
    let (addr, _) = split_url(&format!("{}/", base.trim_end_matches('/')))?;
    let mut conn = Conn::connect(&addr).await?;
    let rules = conn.get_json("/api/v1/alerts/rules").await?;
    let enabled = rules["rules"].as_array().map_or(0, |r| r.iter().filter(|r| r["enabled"] == true).count());
    println!("alert-eval operations={operations} rules={enabled} secs={secs}");
    let mut histogram = micros_histogram();
    // The statistics' upkeep for each tick (sliding every window), which runs before the
    // evaluation and is timed on its own.
    let mut upkeep = micros_histogram();
    // The CPU time of each evaluation (the timer above is wall time: it also counts waits for
    // the statistics' lock, which this tool's own pushes take, and for a CPU).
    let mut cpu = micros_histogram();
    let mut last_count = 0u64;
    // Transitions over the evaluations measured (the history rows they add): how much the
    // storm changes, which the evaluation's cost depends on. The first reading after the
    // warm-up (transitions and evaluations, taken together) and the last.
    let mut first = None::<(f64, u64)>;
    let mut last_transitions = 0.0f64;
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(secs + 10) {
        let tick = Instant::now();
        feed(&mut conn, operations, round).await?;
        round += 1;
        let (status, text) = conn.request(Method::GET, "/metrics", None).await?;
        if !status.is_success() {
            bail!("GET /metrics: {status}");
        }
        let text = String::from_utf8_lossy(&text);
        let value = |name: &str| -> Option<f64> {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        };
        let count = value("vitals_alert_evaluations_total").unwrap_or(0.0) as u64;
        let seconds = value("vitals_alert_evaluation_seconds").ok_or_else(|| anyhow!("no evaluation timer in /metrics"))?;
        if let Some(total) = value("vitals_alert_transitions_total") {
            if started.elapsed() >= Duration::from_secs(10) {
                first.get_or_insert((total, count));
                last_transitions = total;
            }
        }
        if started.elapsed() >= Duration::from_secs(10) && count != last_count {
            record(&mut histogram, (seconds * 1e6) as u64);
            if let Some(seconds) = value("vitals_statistics_upkeep_seconds") {
                record(&mut upkeep, (seconds * 1e6) as u64);
            }
            if let Some(seconds) = value("vitals_alert_evaluation_cpu_seconds") {
                record(&mut cpu, (seconds * 1e6) as u64);
            }
        }
        last_count = count;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }
    let (_, now) = (0, conn.get_json("/api/v1/alerts").await?);
    let alerts = now["alerts"].as_array().map_or(0, |a| a.len());
    println!("  one evaluation of every rule  {}", latency_summary(&histogram));
    println!("  its CPU time                  {}", latency_summary(&cpu));
    println!("  statistics upkeep per tick    {}", latency_summary(&upkeep));
    let per_eval = first.map_or(f64::NAN, |(total, count)| {
        (last_transitions - total) / last_count.saturating_sub(count).max(1) as f64
    });
    println!(
        "summary alert-eval operations={operations} rules={enabled} instances_listed={alerts} transitions_per_eval={per_eval:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} cpu_p50_ms={:.3} cpu_p99_ms={:.3} upkeep_p50_ms={:.3}",
        histogram.value_at_quantile(0.5) as f64 / 1e3,
        histogram.value_at_quantile(0.99) as f64 / 1e3,
        histogram.max() as f64 / 1e3,
        cpu.value_at_quantile(0.5) as f64 / 1e3,
        cpu.value_at_quantile(0.99) as f64 / 1e3,
        upkeep.value_at_quantile(0.5) as f64 / 1e3
    );
    Ok(())
}

/// Reads each webhook POST and sends its `status` (`firing`, `resolved`) on `tx`.
async fn receive(listener: tokio::net::TcpListener, tx: mpsc::UnboundedSender<(String, Instant)>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { return };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let Ok(n) = stream.read(&mut chunk).await else { return };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() < end + 4 + length {
                    continue;
                }
                let at = Instant::now();
                let body: serde_json::Value =
                    serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or_default();
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                if let Some(status) = body["status"].as_str() {
                    let _ = tx.send((status.to_string(), at));
                }
                return;
            }
        });
    }
}

async fn breach(base: &str, listen: &str, rounds: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(receive(listener, tx));
    let (addr, _) = split_url(&format!("{}/", base.trim_end_matches('/')))?;
    let mut conn = Conn::connect(&addr).await?;
    let rule = serde_json::json!({
        "name": "bench breach", "target": {"gauge": "bench.breach.*"},
        "critical": {"above": 100, "clear_below": 50}, "for_secs": 0
    });
    let (status, answer) = post(&mut conn, "/api/v1/alerts/rules", rule).await?;
    if status != 201 {
        bail!("creating the rule answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    println!("alert-breach rounds={rounds} (webhook on {listen}, rule for_secs=0)");
    let mut histogram = micros_histogram();
    // A gauge of its own each round: one alert breached and cleared over and over would (rightly)
    // be held as flapping.
    let gauge = |round: usize, v: f64| {
        serde_json::json!({"gauges": [{"name": format!("bench.breach.{round}"), "value": v}]})
    };
    for round in 0..rounds {
        let sent = Instant::now();
        let (status, _) = post(&mut conn, "/api/v1/ingest", gauge(round, 500.0)).await?;
        if status != 202 {
            bail!("ingest answered {status}");
        }
        let at = wait_for(&mut rx, "firing").await?;
        record(&mut histogram, at.duration_since(sent).as_micros() as u64);
        post(&mut conn, "/api/v1/ingest", gauge(round, 0.0)).await?;
        wait_for(&mut rx, "resolved").await?;
    }
    println!("  breach to webhook receipt     {}", latency_summary(&histogram));
    println!(
        "summary alert-breach rounds={rounds} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        histogram.value_at_quantile(0.5) as f64 / 1e3,
        histogram.value_at_quantile(0.99) as f64 / 1e3,
        histogram.max() as f64 / 1e3
    );
    Ok(())
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<(String, Instant)>, status: &str) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| anyhow!("no {status} webhook within 30 s"))?;
        match next {
            Some((s, at)) if s == status => return Ok(at),
            Some(_) => continue,
            None => bail!("the receiver stopped"),
        }
    }
}
