//! `store-fill`: backfills the history store through the public HTTP API (`POST
//! /api/v1/ingest` with old `timestamp_ms`): N operations, S samples per operation and minute
//! (log-normal durations), minute by minute from the oldest. It keeps the writer's queue short
//! by polling `GET /api/v1/store/stats` (a full queue would drop batches), then waits until
//! everything is written and, optionally, until the hour roll-up has reached the last closed
//! hour.
//!
//! With `--prime`, one sample three hours old is sent first and the tool waits for its hour to
//! be rolled up: from then on every older minute written also updates its (already rolled)
//! hour row in the same transaction, as when old data is imported into a running store.
//! Without it the roll-up would catch up one hour per maintenance step (5 s), an hour of
//! waiting for 30 days.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::Parser;
use hyper::Method;
use vitals_bench::http::{split_url, Conn};
use vitals_bench::{mib, now_unix_ms, process_cpu, OtherLoad, Rng, StoreStats};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

#[derive(Parser)]
#[command(about = "Backfill the history store through POST /api/v1/ingest")]
struct Args {
    /// The server, e.g. http://127.0.0.1:3000
    #[arg(long)]
    base: String,
    /// Bearer token, if the server has one.
    #[arg(long)]
    token: Option<String>,
    /// Operation names are PREFIX + a 4-digit index.
    #[arg(long, default_value = "bench.store.op")]
    prefix: String,
    /// Index of the first operation.
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Operations.
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Oldest minute filled, in minutes before now.
    #[arg(long)]
    from_ago_mins: u64,
    /// Minutes before now where filling stops (exclusive).
    #[arg(long, default_value_t = 1)]
    to_ago_mins: u64,
    /// Samples per operation and minute.
    #[arg(long, default_value_t = 4)]
    per_minute: usize,
    /// Items per POST.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Median and log-sigma of the durations.
    #[arg(long, default_value_t = 20.0)]
    median_ms: f64,
    #[arg(long, default_value_t = 0.8)]
    sigma: f64,
    /// Every n-th sample fails.
    #[arg(long, default_value_t = 50)]
    error_every: u64,
    /// Seed of the durations.
    #[arg(long, default_value_t = 8)]
    seed: u64,
    /// Pause sending while the writer's queue holds more than this many batches.
    #[arg(long, default_value_t = 3)]
    max_queue: u64,
    /// Send one 3-hour-old sample first and wait for its hour to be rolled up.
    #[arg(long)]
    prime: bool,
    /// At the end, wait until the hour roll-up has reached the last closed hour.
    #[arg(long)]
    wait_rolled: bool,
    /// The server's pid, for its CPU time.
    #[arg(long)]
    pid: Option<i32>,
    /// Give up after this long.
    #[arg(long, default_value_t = 3600)]
    max_secs: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn stats(conn: &mut Conn) -> Result<(StoreStats, Duration)> {
    let t = Instant::now();
    let v = conn.get_json("/api/v1/store/stats").await?;
    Ok((StoreStats::from_json(&v), t.elapsed()))
}

async fn post(conn: &mut Conn, body: String) -> Result<u64> {
    let (status, answer) =
        conn.request(Method::POST, "/api/v1/ingest", Some(Bytes::from(body))).await?;
    if status.as_u16() != 202 {
        bail!("ingest answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer)?;
    let dropped = v
        .get("dropped")
        .and_then(|d| d.as_object())
        .map_or(0, |d| d.values().filter_map(serde_json::Value::as_u64).sum());
    Ok(dropped)
}

async fn run(args: Args) -> Result<()> {
    let (addr, _) = split_url(&format!("{}/", args.base.trim_end_matches('/')))?;
    let mut conn = Conn::connect(&addr).await?.with_token(args.token.clone());
    let mut probe = Conn::connect(&addr).await?;
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let started = Instant::now();
    let cpu0 = args.pid.map(|p| process_cpu(p).unwrap_or_default());
    let other = OtherLoad::start(args.pid)?;
    let (before, _) = stats(&mut probe).await?;
    let mut stats_calls = 0u64;
    let mut stats_time = Duration::ZERO;

    if args.prime {
        let at = now_unix_ms() - 3 * HOUR_MS;
        let body = format!(
            r#"{{"operations":[{{"name":"{}{:04}","duration_ms":20,"timestamp_ms":{at}}}]}}"#,
            args.prefix, args.first
        );
        post(&mut conn, body).await?;
        loop {
            let (s, took) = stats(&mut probe).await?;
            stats_calls += 1;
            stats_time += took;
            if s.tier("timing_hour").0 > before.tier("timing_hour").0 {
                break;
            }
            if Instant::now() > deadline {
                bail!("the primed hour was not rolled up in time");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!("  primed: one sample 3 h old, its hour rolled up after {:.1} s",
            started.elapsed().as_secs_f64());
    }

    let now = now_unix_ms();
    let first_minute = (now - args.from_ago_mins * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    let end_minute = (now - args.to_ago_mins * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    let minutes = (end_minute.saturating_sub(first_minute)) / MINUTE_MS;
    let mut rng = Rng::new(args.seed);
    let mut body = String::with_capacity(args.batch * 110);
    let mut in_body = 0usize;
    let (mut items, mut dropped, mut posts) = (0u64, 0u64, 0u64);
    let mut throttled = Duration::ZERO;
    let mut last_poll = Instant::now();
    let fill_started = Instant::now();
    let mut k = 0u64;
    let mut minute = first_minute;
    while minute < end_minute {
        for s in 0..args.series {
            for j in 0..args.per_minute {
                if in_body == 0 {
                    body.clear();
                    body.push_str(r#"{"operations":["#);
                } else {
                    body.push(',');
                }
                let at = minute + (j as u64 * MINUTE_MS + s as u64) / args.per_minute as u64;
                let ok = args.error_every == 0 || !k.is_multiple_of(args.error_every);
                let _ = write!(
                    body,
                    r#"{{"name":"{}{:04}","duration_ms":{},"success":{ok},"timestamp_ms":{at}}}"#,
                    args.prefix,
                    args.first + s,
                    rng.lognormal_ms(args.median_ms, args.sigma)
                );
                k += 1;
                in_body += 1;
                if in_body == args.batch {
                    body.push_str("]}");
                    dropped += post(&mut conn, std::mem::take(&mut body)).await?;
                    items += in_body as u64;
                    posts += 1;
                    in_body = 0;
                }
            }
        }
        minute += MINUTE_MS;
        // Back-pressure: keep the writer's queue short (a full queue drops batches).
        if last_poll.elapsed() >= Duration::from_millis(500) || minute >= end_minute {
            loop {
                let (s, took) = stats(&mut probe).await?;
                stats_calls += 1;
                stats_time += took;
                if s.dropped_queue_full > before.dropped_queue_full {
                    bail!("the writer's queue overflowed: {}", s.line());
                }
                if s.write_queue <= args.max_queue {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the writer did not keep up in time: {}", s.line());
                }
                let t = Instant::now();
                tokio::time::sleep(Duration::from_millis(200)).await;
                throttled += t.elapsed();
            }
            last_poll = Instant::now();
        }
    }
    if in_body > 0 {
        body.push_str("]}");
        dropped += post(&mut conn, body).await?;
        items += in_body as u64;
        posts += 1;
    }
    let sent_secs = fill_started.elapsed().as_secs_f64();

    // Written: three polls in a row, 1.1 s apart (so at least one flush lies between two),
    // find the queue empty and no rows written but the host's one per second.
    let mut last_rows = u64::MAX;
    let mut quiet = 0;
    let after = loop {
        let (s, took) = stats(&mut probe).await?;
        stats_calls += 1;
        stats_time += took;
        let only_host = s.rows_written <= last_rows.saturating_add(5);
        quiet = if s.write_queue == 0 && only_host { quiet + 1 } else { 0 };
        if quiet >= 3 {
            break s;
        }
        last_rows = s.rows_written;
        if Instant::now() > deadline {
            bail!("the writer did not finish in time: {}", s.line());
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    };
    let written_secs = fill_started.elapsed().as_secs_f64();
    let mut rolled_secs = written_secs;
    let mut after = after;
    if args.wait_rolled {
        let last_closed = (now_unix_ms() - HOUR_MS - 2 * MINUTE_MS) / HOUR_MS * HOUR_MS - HOUR_MS;
        loop {
            let (s, took) = stats(&mut probe).await?;
            stats_calls += 1;
            stats_time += took;
            if s.tier("timing_hour").1.is_some_and(|n| n >= last_closed) {
                after = s;
                break;
            }
            if Instant::now() > deadline {
                bail!("the hour roll-up did not catch up in time: {}", s.line());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        rolled_secs = fill_started.elapsed().as_secs_f64();
    }
    let elapsed = started.elapsed();
    let cpu = match (args.pid, cpu0) {
        (Some(p), Some(c0)) => Some((process_cpu(p)? - c0).as_secs_f64()),
        _ => None,
    };
    let rows = after.rows_written - before.rows_written;
    let other_pct = other.percent_of_core(elapsed);
    println!(
        "store-fill series={} first={} minutes={} per_minute={} items={} posts={}",
        args.series, args.first, minutes, args.per_minute, items, posts
    );
    println!(
        "  sent in {sent_secs:.1} s ({:.0} items/s); written after {written_secs:.1} s \
         ({:.0} items/s, {:.0} rows/s); hour roll-up caught up after {rolled_secs:.1} s",
        items as f64 / sent_secs.max(1e-3),
        items as f64 / written_secs.max(1e-3),
        rows as f64 / written_secs.max(1e-3),
    );
    println!(
        "  dropped by the server {dropped}; waited for the writer {:.1} s; {stats_calls} stats \
         calls, {:.1} ms each on average",
        throttled.as_secs_f64(),
        stats_time.as_secs_f64() * 1e3 / stats_calls.max(1) as f64
    );
    if let Some(cpu) = cpu {
        println!("  server CPU              {cpu:.1} s ({:.0} % of a core)",
            cpu / elapsed.as_secs_f64() * 100.0);
    }
    println!("  other processes         {other_pct:.1} % of one core");
    println!("  store after             {}", after.line());
    println!(
        "summary store-fill series={} minutes={} per_minute={} items={} dropped={} \
         written_secs={written_secs:.1} items_per_sec={:.0} rows_written={rows} \
         rolled_secs={rolled_secs:.1} file_mib={} server_cpu_secs={:.1} other_pct={other_pct:.1}",
        args.series,
        minutes,
        args.per_minute,
        items,
        dropped,
        items as f64 / written_secs.max(1e-3),
        mib(after.file_bytes),
        cpu.unwrap_or(f64::NAN)
    );
    if dropped > 0 {
        bail!("the server dropped {dropped} samples");
    }
    Ok(())
}
