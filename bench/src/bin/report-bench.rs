//! `report-bench`: the cost of a performance report over a closed hour. It backfills N
//! operations (`PREFIX` + a 4-digit index, S samples per operation and minute, log-normal
//! durations, one in `--error-every` failing) into the history store through `POST
//! /api/v1/ingest`, waits until `GET /api/v1/operations?from=&to=` counts every sample and the
//! writer is quiet, then times on one keep-alive connection:
//!
//! - `GET /api/v1/reports/{id}` (every section) on fresh reports over the same range: cold,
//!   since the cache and the saved sections are per report;
//! - the same GET on one of them once its cache is cleared (its sections read back from the
//!   store, as after a restart), then again and again: cached;
//! - `GET /api/v1/reports/{id}/sections/{section}` once each, in page order, on a fresh report;
//! - the `.html` and `.md` exports of a report over a few operations and over all of them.
//!
//! The report range starts on a minute that is not an hour boundary, so no whole hour lies in
//! it: every section reads minute rows (the heavier tier). Requests are paced so that the
//! server's statistics-query limit (200/s, burst 400) never answers 429 in the middle of a
//! timed report.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use hyper::{Method, StatusCode};
use tokio::time::Instant;
use vitals_bench::http::{split_url, Conn};
use vitals_bench::{
    latency_summary, median, micros_histogram, ms, now_unix_ms, process_cpu, record, OtherLoad,
    Rng, StoreStats,
};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
/// The sections of a report in page order (`GET /api/v1/reports/{id}/sections/{section}`).
const SECTIONS: [&str; 10] = [
    "summary",
    "operations",
    "latency",
    "throughput",
    "distributions",
    "errors",
    "host",
    "alerts",
    "recommendations",
    "comparison",
];
/// Pause before each timed cold report: the query limit refills 400 permits in 2 s, and a
/// cold report takes a few dozen (one per store read).
const REFILL: Duration = Duration::from_millis(2_500);

#[derive(Parser)]
#[command(about = "Report latency, cold and cached, and export sizes")]
struct Args {
    /// The server, e.g. http://127.0.0.1:3000
    #[arg(long)]
    base: String,
    /// Operation names are PREFIX + a 4-digit index.
    #[arg(long, default_value = "bench.report.op")]
    prefix: String,
    /// Operations backfilled (and in the reports' scope).
    #[arg(long, default_value_t = 1000)]
    operations: usize,
    /// Samples per operation and minute.
    #[arg(long, default_value_t = 20)]
    per_minute: usize,
    /// Minutes of data, which is also the reports' range.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// The oldest minute, in minutes before now (over an hour: backfill into the store).
    #[arg(long, default_value_t = 180)]
    from_ago_mins: u64,
    /// Items per POST (5,000 items are about 550 KB).
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Median and log-sigma of the durations.
    #[arg(long, default_value_t = 20.0)]
    median_ms: f64,
    #[arg(long, default_value_t = 0.8)]
    sigma: f64,
    /// Every n-th sample fails (100: 1 %).
    #[arg(long, default_value_t = 100)]
    error_every: u64,
    /// Seed of the durations.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Pause sending while the writer's queue holds more than this many batches.
    #[arg(long, default_value_t = 3)]
    max_queue: u64,
    /// Fresh reports timed cold (all sections in one GET).
    #[arg(long, default_value_t = 5)]
    cold_reports: usize,
    /// Timed GETs of one report once it is cached.
    #[arg(long, default_value_t = 50)]
    cached_requests: usize,
    /// The scope glob of the small export (50 names of the default 1,000).
    #[arg(long, default_value = "bench.report.op00[0-4]?")]
    small_scope: String,
    /// The server's pid, for its CPU time per cold report.
    #[arg(long)]
    pid: Option<i32>,
    /// Give up after this long.
    #[arg(long, default_value_t = 1200)]
    max_secs: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

/// What the backfill covers: `[from_ms, to_ms)` on minute boundaries.
#[derive(Clone, Copy)]
struct Span {
    from_ms: u64,
    to_ms: u64,
}

async fn post_ingest(conn: &mut Conn, body: String) -> Result<u64> {
    let (status, answer) =
        conn.request(Method::POST, "/api/v1/ingest", Some(Bytes::from(body))).await?;
    if status != StatusCode::ACCEPTED {
        bail!("ingest answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer)?;
    Ok(v.get("dropped")
        .and_then(|d| d.as_object())
        .map_or(0, |d| d.values().filter_map(serde_json::Value::as_u64).sum()))
}

async fn store_stats(conn: &mut Conn) -> Result<StoreStats> {
    Ok(StoreStats::from_json(&conn.get_json("/api/v1/store/stats").await?))
}

/// Sends the samples minute by minute, keeping the writer's queue short; answers the items
/// and errors sent.
async fn backfill(
    args: &Args,
    conn: &mut Conn,
    probe: &mut Conn,
    span: Span,
    deadline: Instant,
) -> Result<(u64, u64)> {
    let before = store_stats(probe).await?;
    let mut rng = Rng::new(args.seed);
    let mut body = String::with_capacity(args.batch * 110);
    let (mut in_body, mut items, mut errors, mut dropped) = (0usize, 0u64, 0u64, 0u64);
    let mut minute = span.from_ms;
    while minute < span.to_ms {
        for s in 0..args.operations {
            for j in 0..args.per_minute {
                body.push_str(if in_body == 0 { r#"{"operations":["# } else { "," });
                let at = minute + (j as u64 * MINUTE_MS + s as u64) / args.per_minute as u64;
                let ok = args.error_every == 0 || !(items + 1).is_multiple_of(args.error_every);
                errors += u64::from(!ok);
                let _ = write!(
                    body,
                    r#"{{"name":"{}{s:04}","duration_ms":{},"success":{ok},"timestamp_ms":{at}}}"#,
                    args.prefix,
                    rng.lognormal_ms(args.median_ms, args.sigma)
                );
                items += 1;
                in_body += 1;
                if in_body == args.batch {
                    body.push_str("]}");
                    dropped += post_ingest(conn, std::mem::take(&mut body)).await?;
                    in_body = 0;
                }
            }
        }
        minute += MINUTE_MS;
        // Back-pressure: a full writer queue would drop batches.
        loop {
            let s = store_stats(probe).await?;
            if s.dropped_queue_full > before.dropped_queue_full {
                bail!("the writer's queue overflowed: {}", s.line());
            }
            if s.write_queue <= args.max_queue {
                break;
            }
            if Instant::now() > deadline {
                bail!("the writer did not keep up in time: {}", s.line());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if in_body > 0 {
        body.push_str("]}");
        dropped += post_ingest(conn, body).await?;
    }
    if dropped > 0 {
        bail!("the server dropped {dropped} samples");
    }
    Ok((items, errors))
}

/// Polls `GET /api/v1/operations?from=&to=` until every operation is listed with all of its
/// samples and errors; answers the polls made.
async fn wait_stored(
    args: &Args,
    probe: &mut Conn,
    span: Span,
    items: u64,
    errors: u64,
    deadline: Instant,
) -> Result<u64> {
    let path = format!("/api/v1/operations?from={}&to={}&limit=1000", span.from_ms, span.to_ms);
    let mut polls = 0u64;
    loop {
        polls += 1;
        let v = probe.get_json(&path).await?;
        let total = v.get("total").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let ours: Vec<&serde_json::Value> = v
            .get("operations")
            .and_then(|o| o.as_array())
            .into_iter()
            .flatten()
            .filter(|o| {
                o.get("name").and_then(|n| n.as_str()).is_some_and(|n| n.starts_with(&args.prefix))
            })
            .collect();
        let field = |k: &str| {
            ours.iter().filter_map(|o| o.get(k).and_then(serde_json::Value::as_u64)).sum::<u64>()
        };
        let (count, error_count) = (field("count"), field("error_count"));
        if ours.len() == args.operations && count == items && error_count == errors {
            return Ok(polls);
        }
        if Instant::now() > deadline {
            bail!(
                "not all stored in time: {} of {} operations ({total} in all), {count} of \
                 {items} samples, {error_count} of {errors} errors",
                ours.len(),
                args.operations
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the hour roll-up has passed the data and the writer has been idle (queue
/// empty, no rows but the host's one a second) for three polls 1.1 s apart, so that no
/// background writing overlaps the timed requests.
async fn wait_writer_idle(probe: &mut Conn, span: Span, deadline: Instant) -> Result<StoreStats> {
    let last_hour = (span.to_ms - 1) / HOUR_MS * HOUR_MS;
    loop {
        let s = store_stats(probe).await?;
        if s.tier("timing_hour").1.is_some_and(|newest| newest >= last_hour) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the hour roll-up did not reach the data in time: {}", s.line());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (mut last_rows, mut quiet) = (u64::MAX, 0);
    loop {
        let s = store_stats(probe).await?;
        let only_host = s.rows_written <= last_rows.saturating_add(5);
        quiet = if s.write_queue == 0 && only_host { quiet + 1 } else { 0 };
        if quiet >= 3 {
            return Ok(s);
        }
        last_rows = s.rows_written;
        if Instant::now() > deadline {
            bail!("the writer did not go quiet in time: {}", s.line());
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

/// `POST /api/v1/reports` over `span` with an operations glob; answers the new id.
async fn create_report(conn: &mut Conn, span: Span, glob: &str) -> Result<u64> {
    let body = serde_json::json!({
        "name": "bench",
        "from": span.from_ms,
        "to": span.to_ms,
        "scope": { "operations": glob },
    });
    let (status, answer) = conn
        .request(Method::POST, "/api/v1/reports", Some(Bytes::from(serde_json::to_vec(&body)?)))
        .await?;
    if status != StatusCode::CREATED {
        bail!("POST /api/v1/reports answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer)?;
    v.get("id").and_then(serde_json::Value::as_u64).context("no id in the created report")
}

/// One timed GET that must answer 200: the time and the body.
async fn timed_get(conn: &mut Conn, path: &str) -> Result<(Duration, Bytes)> {
    let sent = Instant::now();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(120), conn.request(Method::GET, path, None))
            .await
            .with_context(|| format!("GET {path} timed out"))??;
    let took = sent.elapsed();
    if status != StatusCode::OK {
        bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok((took, body))
}

async fn clear_cache(conn: &mut Conn) -> Result<()> {
    let (status, body) = conn.request(Method::POST, "/api/v1/cache/clear", None).await?;
    if !status.is_success() {
        bail!("POST /api/v1/cache/clear: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// `hits/misses` of the closed-report cache.
async fn closed_cache(conn: &mut Conn) -> Result<(u64, u64)> {
    let v = conn.get_json("/api/v1/cache/stats").await?;
    let kinds = v.get("kinds").and_then(|k| k.as_array()).cloned().unwrap_or_default();
    let closed = kinds.iter().find(|k| k.get("kind").and_then(|x| x.as_str()) == Some("closed"));
    let n = |k: &str| closed.and_then(|c| c.get(k)).and_then(serde_json::Value::as_u64);
    Ok((n("hits").unwrap_or(0), n("misses").unwrap_or(0)))
}

/// The tier of a report's first section and the operations its Operations section counts
/// (rows listed and left out).
fn describe(report: &serde_json::Value) -> (String, usize) {
    let sections = report.get("sections").and_then(|s| s.as_array());
    let tier = sections
        .and_then(|s| s.first())
        .and_then(|s| s.get("tier"))
        .and_then(|t| t.as_str())
        .unwrap_or("-")
        .to_string();
    let body = sections
        .and_then(|s| s.iter().find(|s| s.get("id").and_then(|i| i.as_str()) == Some("operations")))
        .and_then(|s| s.get("body"));
    let rows = body.and_then(|b| b.get("rows")).and_then(|r| r.as_array()).map_or(0, Vec::len);
    let left_out = body.and_then(|b| b.get("left_out")).and_then(serde_json::Value::as_u64);
    (tier, rows + left_out.unwrap_or(0) as usize)
}

fn cpu_ms(pid: Option<i32>) -> Option<f64> {
    pid.and_then(|p| process_cpu(p).ok()).map(|d| d.as_secs_f64() * 1e3)
}

async fn run(args: Args) -> Result<()> {
    let (addr, _) = split_url(&format!("{}/", args.base.trim_end_matches('/')))?;
    let mut conn = Conn::connect(&addr).await?;
    let mut probe = Conn::connect(&addr).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_secs);

    let now = now_unix_ms();
    let mut from_ms = (now - args.from_ago_mins * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    if from_ms.is_multiple_of(HOUR_MS) {
        from_ms -= MINUTE_MS;
    }
    let span = Span { from_ms, to_ms: from_ms + args.minutes * MINUTE_MS };
    println!(
        "report-bench operations={} minutes={} per_minute={} from_ago_mins={} cold_reports={} \
         cached_requests={}",
        args.operations,
        args.minutes,
        args.per_minute,
        args.from_ago_mins,
        args.cold_reports,
        args.cached_requests
    );

    let (items, errors) = backfill(&args, &mut conn, &mut probe, span, deadline).await?;
    let sent_secs = started.elapsed().as_secs_f64();
    let polls = wait_stored(&args, &mut probe, span, items, errors, deadline).await?;
    let stored_secs = started.elapsed().as_secs_f64();
    let store = wait_writer_idle(&mut probe, span, deadline).await?;
    println!(
        "  backfill                {items} samples ({errors} failed) sent in {sent_secs:.1} s, \
         all counted by /api/v1/operations after {stored_secs:.1} s ({polls} polls), writer idle \
         after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("  store                   {}", store.line());

    // 1. Cold: a fresh report each time, the cache cleared as well.
    let all_glob = format!("{}*", args.prefix);
    let other = OtherLoad::start(args.pid)?;
    let timed_from = Instant::now();
    let mut cold_ms = Vec::with_capacity(args.cold_reports);
    let mut first_id = None;
    let (mut tier, mut rows, mut report_bytes) = (String::new(), 0, 0);
    for i in 0..args.cold_reports {
        tokio::time::sleep(REFILL).await;
        let id = create_report(&mut conn, span, &all_glob).await?;
        clear_cache(&mut conn).await?;
        let cpu0 = cpu_ms(args.pid);
        let (took, body) = timed_get(&mut conn, &format!("/api/v1/reports/{id}")).await?;
        let cpu = cpu_ms(args.pid).zip(cpu0).map(|(a, b)| a - b);
        let report: serde_json::Value = serde_json::from_slice(&body)?;
        (tier, rows) = describe(&report);
        report_bytes = body.len();
        let took_ms = took.as_secs_f64() * 1e3;
        cold_ms.push(took_ms);
        first_id.get_or_insert(id);
        println!(
            "  cold report {}           id {id}: {took_ms:.1} ms, {} bytes, tier {tier}, {rows} \
             operations{}",
            i + 1,
            body.len(),
            cpu.map_or(String::new(), |c| format!(", server CPU {c:.0} ms"))
        );
        if rows != args.operations {
            bail!("report {id} lists {rows} operations, not {}", args.operations);
        }
    }
    let cold_p50 = median(&cold_ms);
    let cold_max = cold_ms.iter().copied().fold(f64::NAN, f64::max);
    let list: Vec<String> = cold_ms.iter().map(|m| format!("{m:.1}")).collect();
    println!(
        "  cold, all sections      median {cold_p50:.1} ms, max {cold_max:.1} ms ({} ms)",
        list.join(", ")
    );

    // 2. Saved: the cache cleared, the first report's sections are read back from the store
    //    (as after a restart). Then cached: the same report again and again.
    let id = first_id.context("no cold report was made (--cold-reports 0)")?;
    let path = format!("/api/v1/reports/{id}");
    tokio::time::sleep(REFILL).await;
    clear_cache(&mut conn).await?;
    let (saved, _) = timed_get(&mut conn, &path).await?;
    let saved_ms = saved.as_secs_f64() * 1e3;
    println!("  saved, all sections     {saved_ms:.1} ms (cache cleared, sections read back)");
    let (hits0, misses0) = closed_cache(&mut probe).await?;
    let mut cached = micros_histogram();
    for _ in 0..args.cached_requests {
        let (took, _) = timed_get(&mut conn, &path).await?;
        record(&mut cached, took.as_micros() as u64);
    }
    let (hits1, misses1) = closed_cache(&mut probe).await?;
    println!(
        "  cached, all sections    {}; cache hits +{}, misses +{}",
        latency_summary(&cached),
        hits1 - hits0,
        misses1 - misses0
    );
    if misses1 > misses0 {
        bail!("the cached GETs missed the cache {} times", misses1 - misses0);
    }

    // 3. Each section once, in page order, on a fresh report.
    tokio::time::sleep(REFILL).await;
    let id = create_report(&mut conn, span, &all_glob).await?;
    clear_cache(&mut conn).await?;
    let mut section_ms = Vec::with_capacity(SECTIONS.len());
    let mut line = String::new();
    for name in SECTIONS {
        let (took, body) =
            timed_get(&mut conn, &format!("/api/v1/reports/{id}/sections/{name}")).await?;
        let took_ms = took.as_secs_f64() * 1e3;
        section_ms.push((name, took_ms));
        let _ = write!(line, "\n    {name:<16}    {took_ms:>8.1} ms, {:>9} bytes", body.len());
    }
    let sections_total: f64 = section_ms.iter().map(|s| s.1).sum();
    println!("  cold, section by section (report {id}, total {sections_total:.1} ms):{line}");

    // 4. Exports: a report over the small scope (cold first, as JSON), and the first report.
    tokio::time::sleep(REFILL).await;
    let small = create_report(&mut conn, span, &args.small_scope).await?;
    let (took, body) = timed_get(&mut conn, &format!("/api/v1/reports/{small}")).await?;
    let (_, small_rows) = describe(&serde_json::from_slice(&body)?);
    println!(
        "  cold, {small_rows} operations      {:.1} ms ({} bytes, scope {})",
        took.as_secs_f64() * 1e3,
        body.len(),
        args.small_scope
    );
    let mut sizes = Vec::new();
    for (label, report) in [(small_rows, small), (rows, first_id.unwrap_or(small))] {
        for ext in ["html", "md"] {
            let (took, body) =
                timed_get(&mut conn, &format!("/api/v1/reports/{report}.{ext}")).await?;
            println!(
                "  export {ext:<4} {label:>4} ops    {:>9} bytes, {:.1} ms (sections cached)",
                body.len(),
                took.as_secs_f64() * 1e3
            );
            sizes.push(body.len());
        }
    }
    let other_pct = other.percent_of_core(timed_from.elapsed());
    println!("  other processes         {other_pct:.1} % of one core while timing");

    let mut sections_kv = String::new();
    for (name, took_ms) in &section_ms {
        let _ = write!(sections_kv, " {name}_ms={took_ms:.1}");
    }
    println!(
        "summary report operations={} tier={tier} report_bytes={report_bytes} cold_ms={} \
         cold_p50_ms={cold_p50:.1} cold_max_ms={cold_max:.1} saved_ms={saved_ms:.1} cached_p50_ms={:.2} \
         cached_p99_ms={:.2} html_{small_rows}_bytes={} md_{small_rows}_bytes={} \
         html_{rows}_bytes={} md_{rows}_bytes={} other_pct={other_pct:.1}",
        args.operations,
        list.join(","),
        ms(cached.value_at_quantile(0.5)),
        ms(cached.value_at_quantile(0.99)),
        sizes.first().copied().unwrap_or(0),
        sizes.get(1).copied().unwrap_or(0),
        sizes.get(2).copied().unwrap_or(0),
        sizes.get(3).copied().unwrap_or(0),
    );
    println!(
        "summary report-sections operations={} total_ms={sections_total:.1}{sections_kv}",
        args.operations
    );
    Ok(())
}
