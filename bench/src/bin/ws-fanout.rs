//! `ws-fanout`: opens N live WebSocket clients, ramped up gradually, then for a fixed time
//! measures every update's tick-to-receive latency (receive wall time − `sample.at_ms`, both
//! on this machine's clock) into one HDR histogram. Bounded in time; exits by itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use vitals_bench::{
    json_u64_field, latency_summary, mib, micros_histogram, now_unix_us, process_cpu, record,
    status_bytes, OtherLoad,
};

#[derive(Parser)]
#[command(about = "WebSocket fan-out: tick-to-receive latency over N live clients")]
struct Args {
    /// The live stream, e.g. ws://127.0.0.1:3000/ws?history=0
    #[arg(long)]
    url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Measuring time once every client is connected.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// New connections per second during the ramp.
    #[arg(long, default_value_t = 500)]
    ramp_per_sec: u64,
    /// Quiet time between the end of the ramp and the start of measuring.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
    /// The server's process id: its CPU time and memory are reported.
    #[arg(long)]
    pid: Option<i32>,
    /// The server's `GET /api/v1/ws/stats`, read after measuring.
    #[arg(long)]
    stats_url: Option<String>,
    /// Runtime worker threads of this client.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    connect_failures: AtomicU64,
    closed_early: AtomicU64,
}

/// What one client saw while measuring.
#[derive(Default)]
struct ClientReport {
    latencies_us: Vec<u64>,
    seq_gaps: u64,
    bytes: u64,
    /// Bytes of every text message received in the window (updates, alerts, snapshots).
    all_bytes: u64,
    /// Updates received, in the window or not.
    updates: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

fn host_port(url: &str) -> Result<String> {
    let rest = url.strip_prefix("ws://").context("only ws:// URLs are supported")?;
    Ok(rest.split('/').next().unwrap_or(rest).to_string())
}

async fn run(args: Args) -> Result<()> {
    let addr = host_port(&args.url)?;
    let counters = Arc::new(Counters::default());
    let ramp = Duration::from_secs_f64(args.clients as f64 / args.ramp_per_sec.max(1) as f64);
    let begin = Instant::now();
    let measure_start = begin + ramp + Duration::from_secs(args.settle_secs);
    let measure_end = measure_start + Duration::from_secs(args.secs);
    let start_us = now_unix_us() + (measure_start - begin).as_micros() as u64;
    let end_us = start_us + args.secs * 1_000_000;

    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.ramp_per_sec as f64));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut handles = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        ticker.tick().await;
        let (url, addr, counters) = (args.url.clone(), addr.clone(), Arc::clone(&counters));
        handles.push(tokio::spawn(async move {
            client(url, addr, counters, measure_end, start_us, end_us).await
        }));
    }
    let ramp_took = begin.elapsed();
    eprintln!(
        "ws-fanout: {} of {} clients connected after {:.1} s ({} failed)",
        counters.connected.load(Ordering::Relaxed),
        args.clients,
        ramp_took.as_secs_f64(),
        counters.connect_failures.load(Ordering::Relaxed)
    );

    tokio::time::sleep_until(measure_start).await;
    let connected_at_start = counters.connected.load(Ordering::Relaxed);
    let server_cpu_before = args.pid.map(process_cpu).transpose()?;
    let self_cpu_before = process_cpu(std::process::id() as i32)?;
    let other = OtherLoad::start(args.pid)?;
    let mut rss_max = 0u64;
    // Read the server's own view while every client is still connected.
    let stats_at = measure_end - Duration::from_millis(300);
    while Instant::now() < stats_at {
        tokio::time::sleep(Duration::from_millis(500).min(stats_at - Instant::now())).await;
        if let Some(pid) = args.pid {
            rss_max = rss_max.max(status_bytes(pid, "VmRSS").unwrap_or(0));
        }
    }
    let hub_stats = match &args.stats_url {
        Some(url) => timeout(Duration::from_secs(5), vitals_bench::http::get_json_once(url))
            .await
            .ok()
            .and_then(|r| r.ok()),
        None => None,
    };
    tokio::time::sleep_until(measure_end).await;
    let server_cpu = match (args.pid, server_cpu_before) {
        (Some(pid), Some(before)) => Some(process_cpu(pid)? - before),
        _ => None,
    };
    let self_cpu = process_cpu(std::process::id() as i32)? - self_cpu_before;
    let other_pct = other.percent_of_core(Duration::from_secs(args.secs));

    let mut histogram = micros_histogram();
    let (mut seq_gaps, mut bytes, mut all_bytes, mut updates) = (0u64, 0u64, 0u64, 0u64);
    let collect_deadline = measure_end + Duration::from_secs(20);
    for handle in handles {
        if let Ok(Ok(report)) = timeout_at(collect_deadline, handle).await {
            for us in report.latencies_us {
                record(&mut histogram, us);
            }
            seq_gaps += report.seq_gaps;
            bytes += report.bytes;
            all_bytes += report.all_bytes;
            updates += report.updates;
        }
    }

    let expected = connected_at_start * args.secs;
    let secs = args.secs as f64;
    println!("ws-fanout clients={} secs={} url={}", args.clients, args.secs, args.url);
    println!(
        "  connected at start      {connected_at_start} (ramp {:.1} s)",
        ramp_took.as_secs_f64()
    );
    println!("  connect failures        {}", counters.connect_failures.load(Ordering::Relaxed));
    println!("  closed early            {}", counters.closed_early.load(Ordering::Relaxed));
    println!(
        "  updates received        {} in the window (~{} expected at 1 Hz), {} in all",
        histogram.len(),
        expected,
        updates
    );
    println!("  seq gaps (skipped)      {seq_gaps}");
    println!("  update bytes received   {} ({:.0} B/s)", bytes, bytes as f64 / secs);
    println!(
        "  all bytes received      {} ({:.0} B/s per client: updates, alerts, any other message)",
        all_bytes,
        all_bytes as f64 / secs / args.clients.max(1) as f64
    );
    println!("  tick-to-receive         {}", latency_summary(&histogram));
    if let Some(cpu) = server_cpu {
        println!("  server CPU              {:.1} % of one core", cpu.as_secs_f64() / secs * 100.0);
        println!("  server RSS (max)        {} MiB", mib(rss_max));
    }
    println!(
        "  client CPU (this tool)  {:.1} % of one core",
        self_cpu.as_secs_f64() / secs * 100.0
    );
    println!("  other processes         {other_pct:.1} % of one core");
    if let Some(stats) = &hub_stats {
        println!("  server ws/stats         {stats}");
    }
    let q = |p: f64| histogram.value_at_quantile(p) as f64 / 1000.0;
    println!(
        "summary fanout clients={} connected={} failures={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} \
         updates={} gaps={} server_cpu_pct={} server_rss_mib={} client_cpu_pct={:.1} \
         server_tick_to_last_send_p99_ms={} other_pct={:.1}",
        args.clients,
        connected_at_start,
        counters.connect_failures.load(Ordering::Relaxed),
        q(0.5),
        q(0.99),
        histogram.max() as f64 / 1000.0,
        histogram.len(),
        seq_gaps,
        server_cpu.map_or("-".into(), |c| format!("{:.1}", c.as_secs_f64() / secs * 100.0)),
        if args.pid.is_some() { mib(rss_max) } else { "-".into() },
        self_cpu.as_secs_f64() / secs * 100.0,
        hub_stats
            .as_ref()
            .and_then(|s| s.get("tick_to_last_send_p99_ms"))
            .map_or("-".into(), |v| v.to_string()),
        other_pct,
    );
    Ok(())
}

async fn client(
    url: String,
    addr: String,
    counters: Arc<Counters>,
    measure_end: Instant,
    start_us: u64,
    end_us: u64,
) -> ClientReport {
    let mut report = ClientReport::default();
    let connect = async {
        let stream = TcpStream::connect(&addr).await?;
        stream.set_nodelay(true)?;
        // Small buffers: ten thousand clients live in this one process, and tungstenite zeroes
        // the free part of its read buffer before every read (an update is under 1 KiB; a
        // bigger message is read in several pieces).
        let config = WebSocketConfig::default().read_buffer_size(2 * 1024).write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config)).await?;
        anyhow::Ok(ws)
    };
    let mut ws = match timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(ws)) => ws,
        _ => {
            counters.connect_failures.fetch_add(1, Ordering::Relaxed);
            return report;
        }
    };
    counters.connected.fetch_add(1, Ordering::Relaxed);
    let mut last_seq: Option<u64> = None;
    // One timer for the whole run, not one per message: the tool's own cost per message comes
    // out of the CPU the server under test shares with it.
    let end = tokio::time::sleep_until(measure_end);
    tokio::pin!(end);
    loop {
        let message = tokio::select! {
            biased;
            next = ws.next() => match next {
                Some(Ok(message)) => message,
                _ => {
                    counters.closed_early.fetch_add(1, Ordering::Relaxed);
                    return report;
                }
            },
            () = &mut end => break,
        };
        let received_us = now_unix_us();
        let Message::Text(text) = message else { continue };
        if received_us >= start_us && received_us < end_us {
            report.all_bytes += text.len() as u64;
        }
        if !text.starts_with("{\"type\":\"update\"") {
            continue;
        }
        report.updates += 1;
        let (Some(at_ms), Some(seq)) =
            (json_u64_field(&text, "at_ms"), json_u64_field(&text, "seq"))
        else {
            continue;
        };
        if received_us < start_us || received_us >= end_us {
            last_seq = Some(seq);
            continue;
        }
        report.latencies_us.push(received_us.saturating_sub(at_ms * 1000));
        report.bytes += text.len() as u64;
        if let Some(last) = last_seq {
            report.seq_gaps += seq.saturating_sub(last + 1);
        }
        last_seq = Some(seq);
    }
    let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
    report
}
