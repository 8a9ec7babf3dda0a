//! `store-write`: what the history store's writing costs. StatsD timers for N series at a
//! steady total rate (log-normal durations, 20 lines per datagram, paced every 10 ms) run for
//! the whole test; meanwhile the tool alternates windows with recording on and recording
//! paused (`POST /api/v1/monitor/pause` / `resume`, with the token) and measures the
//! server's CPU in each: the whole process (`/proc/PID/stat` ticks and the `schedstat`
//! nanoseconds of its living threads) and the store's writer thread (`vitals-store`) alone.
//!
//! Paused, accepted samples are still spooled and handed over once a second, but the store
//! refuses them before the writer's queue: "on − paused" is the writer's cost (transactions,
//! SQLite, roll-ups of what was written). The spool and the flusher cost the same in both.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use hyper::Method;
use vitals_bench::http::{split_url, Conn};
use vitals_bench::{
    living_threads_cpu_ns, mib, process_cpu, status_bytes, threads_schedstat, OtherLoad, Rng,
    StoreStats,
};

#[derive(Parser, Clone)]
#[command(about = "CPU cost of the history store's writes under a steady StatsD load")]
struct Args {
    /// StatsD address of the server.
    #[arg(long)]
    statsd: String,
    /// The server, e.g. http://127.0.0.1:3000
    #[arg(long)]
    base: String,
    /// The server's token (pausing needs it).
    #[arg(long)]
    token: String,
    /// The server's pid.
    #[arg(long)]
    pid: i32,
    /// Series (timer names).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Timer lines per second over all series.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Load before the first window (series created, first minutes written).
    #[arg(long, default_value_t = 20)]
    settle_secs: u64,
    /// Length of each measured window.
    #[arg(long, default_value_t = 30)]
    window_secs: u64,
    /// Pairs of windows (on, paused).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// DogStatsD tags on every line (`|#region:eu,version:N`).
    #[arg(long)]
    tags: bool,
    #[arg(long, default_value_t = 20.0)]
    median_ms: f64,
    #[arg(long, default_value_t = 0.8)]
    sigma: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

/// Sends the load until `stop`, bounded by `max`; counts lines sent.
fn sender(args: &Args, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>, max: Duration) -> Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(&args.statsd)?;
    let mut rng = Rng::new(11);
    let per_tick = (args.rate / 100).max(1);
    let start = Instant::now();
    let mut line_no = 0u64;
    let mut datagram = String::with_capacity(2048);
    for tick in 0u64.. {
        if stop.load(Ordering::Relaxed) || start.elapsed() > max {
            break;
        }
        let due = start + Duration::from_millis(10 * tick);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut in_datagram = 0;
        for _ in 0..per_tick {
            let s = (line_no % args.series as u64) as usize;
            if in_datagram > 0 {
                datagram.push('\n');
            }
            let ms = rng.lognormal_ms(args.median_ms, args.sigma);
            datagram.push_str(&format!("bench.store.op{s:04}:{ms}|ms"));
            if args.tags {
                datagram.push_str(&format!("|#region:eu,version:{}", s % 3));
            }
            line_no += 1;
            in_datagram += 1;
            if in_datagram == 20 {
                socket.send(datagram.as_bytes())?;
                datagram.clear();
                in_datagram = 0;
            }
        }
        if in_datagram > 0 {
            socket.send(datagram.as_bytes())?;
            datagram.clear();
        }
        sent.store(line_no, Ordering::Relaxed);
    }
    Ok(())
}

struct Window {
    on: bool,
    secs: f64,
    cpu_ticks_pct: f64,
    cpu_ns_pct: f64,
    writer_pct: f64,
    rows: u64,
    batches: u64,
    lines: u64,
    other_pct: f64,
}

async fn set_recording(conn: &mut Conn, on: bool) -> Result<()> {
    let path = if on { "/api/v1/monitor/resume" } else { "/api/v1/monitor/pause" };
    let (status, body) = conn.request(Method::POST, path, None).await?;
    if !status.is_success() {
        bail!("POST {path}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

async fn store_stats(conn: &mut Conn) -> Result<StoreStats> {
    Ok(StoreStats::from_json(&conn.get_json("/api/v1/store/stats").await?))
}

async fn run(args: Args) -> Result<()> {
    let (addr, _) = split_url(&format!("{}/", args.base.trim_end_matches('/')))?;
    let mut conn = Conn::connect(&addr).await?.with_token(Some(args.token.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let total = Duration::from_secs(
        args.settle_secs + (args.window_secs + 5) * 2 * args.rounds as u64 + 30,
    );
    let sender_thread = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        let args = args.clone();
        std::thread::spawn(move || sender(&args, stop, sent, total))
    };
    set_recording(&mut conn, true).await?;
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;

    let mut windows = Vec::new();
    for round in 0..args.rounds * 2 {
        let on = round % 2 == 0;
        set_recording(&mut conn, on).await?;
        // Let what was accepted before the switch reach the writer (and be written or
        // refused): wait for the next flush, then for the queue to be empty.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        loop {
            if store_stats(&mut conn).await?.write_queue == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s0 = store_stats(&mut conn).await?;
        let start = Instant::now();
        let ticks0 = process_cpu(args.pid)?;
        let ns0 = living_threads_cpu_ns(args.pid)?;
        let (w0, _) = threads_schedstat(args.pid, "vitals-store")?;
        let lines0 = sent.load(Ordering::Relaxed);
        let other = OtherLoad::start(Some(args.pid))?;
        tokio::time::sleep(Duration::from_secs(args.window_secs)).await;
        let secs = start.elapsed().as_secs_f64();
        let ticks = (process_cpu(args.pid)? - ticks0).as_secs_f64();
        let ns = living_threads_cpu_ns(args.pid)?.saturating_sub(ns0) as f64 / 1e9;
        let (w1, _) = threads_schedstat(args.pid, "vitals-store")?;
        let other_pct = other.percent_of_core(start.elapsed());
        let lines = sent.load(Ordering::Relaxed) - lines0;
        let s1 = store_stats(&mut conn).await?;
        let w = Window {
            on,
            secs,
            cpu_ticks_pct: ticks / secs * 100.0,
            cpu_ns_pct: ns / secs * 100.0,
            writer_pct: (w1 - w0).as_secs_f64() / secs * 100.0,
            rows: s1.rows_written - s0.rows_written,
            batches: s1.batches_written - s0.batches_written,
            lines,
            other_pct,
        };
        println!(
            "  window {} recording {:6}  {:.1} s, {:.0} lines/s: server CPU {:.3} % (ticks), \
             {:.3} % (schedstat); writer thread {:.3} %; {} rows in {} commits; other \
             processes {:.1} %",
            round + 1,
            if on { "on" } else { "paused" },
            w.secs,
            w.lines as f64 / w.secs,
            w.cpu_ticks_pct,
            w.cpu_ns_pct,
            w.writer_pct,
            w.rows,
            w.batches,
            w.other_pct
        );
        windows.push(w);
    }
    set_recording(&mut conn, true).await?;
    stop.store(true, Ordering::Relaxed);
    match sender_thread.join() {
        Ok(r) => r?,
        Err(_) => bail!("the sender thread panicked"),
    }
    let stats = store_stats(&mut conn).await?;
    let ingest = conn.get_json("/api/v1/ingest/stats").await?;
    let accepted = ingest.pointer("/statsd/accepted").and_then(|v| v.as_u64()).unwrap_or(0);
    let rss = status_bytes(args.pid, "VmRSS")?;

    let mean = |on: bool, f: fn(&Window) -> f64| {
        let v: Vec<f64> = windows.iter().filter(|w| w.on == on).map(f).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let (on_ticks, off_ticks) = (mean(true, |w| w.cpu_ticks_pct), mean(false, |w| w.cpu_ticks_pct));
    let (on_ns, off_ns) = (mean(true, |w| w.cpu_ns_pct), mean(false, |w| w.cpu_ns_pct));
    let (on_writer, off_writer) = (mean(true, |w| w.writer_pct), mean(false, |w| w.writer_pct));
    let rows_per_sec = mean(true, |w| w.rows as f64 / w.secs);
    let other = windows.iter().map(|w| w.other_pct).sum::<f64>() / windows.len().max(1) as f64;
    println!(
        "store-write series={} rate={} tags={} windows={}x{} s",
        args.series, args.rate, args.tags, args.rounds * 2, args.window_secs
    );
    println!(
        "  server CPU, recording on     {on_ticks:.3} % (ticks), {on_ns:.3} % (schedstat)"
    );
    println!(
        "  server CPU, recording paused {off_ticks:.3} % (ticks), {off_ns:.3} % (schedstat)"
    );
    println!(
        "  store's extra CPU            {:.3} % (ticks), {:.3} % (schedstat) of one core",
        on_ticks - off_ticks,
        on_ns - off_ns
    );
    println!(
        "  writer thread                {on_writer:.3} % on, {off_writer:.3} % paused; \
         {rows_per_sec:.0} rows/s written"
    );
    println!("  StatsD lines accepted        {accepted}; RSS {} MiB", mib(rss));
    println!("  store                        {}", stats.line());
    println!("  other processes              {other:.1} % of one core (mean)");
    println!(
        "summary store-write series={} rate={} on_pct={on_ns:.3} paused_pct={off_ns:.3} \
         extra_pct={:.3} extra_pct_ticks={:.3} writer_thread_pct={on_writer:.3} \
         writer_thread_paused_pct={off_writer:.3} rows_per_sec={rows_per_sec:.0} rss_mib={} \
         other_pct={other:.1}",
        args.series,
        args.rate,
        on_ns - off_ns,
        on_ticks - off_ticks,
        mib(rss)
    );
    Ok(())
}
