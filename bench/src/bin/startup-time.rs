//! `startup-time`: time from exec of `vitals serve` to its first 200 from `GET /health`, over a
//! given data directory (a large store, say). Each run picks a free port, starts the server,
//! polls `/health` every millisecond on a fresh connection, then stops the server with SIGTERM
//! and waits for it to exit. With `--drop-caches` (root only) the page cache is dropped before
//! the cold runs, so the database is read from disk.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use vitals_bench::{median, mib, status_bytes};

#[derive(Parser)]
#[command(about = "Time from exec to the first 200 from /health")]
struct Args {
    /// The server binary.
    #[arg(long)]
    bin: String,
    /// Its data directory.
    #[arg(long)]
    data_dir: String,
    /// Warm runs (the database in the page cache).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Cold runs, each after dropping the page cache (needs root).
    #[arg(long, default_value_t = 0)]
    cold_runs: usize,
    /// Give up on one start after this long.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One `GET /health` on a new connection: the status code, or `None` if nothing answers yet.
fn health(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < 12 {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got += n,
        }
    }
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn drop_caches() -> Result<()> {
    // Written pages first, so dropping really empties the cache of the database.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").context("drop the page cache (root?)")
}

/// Starts the server once; (ms to the first 200, RSS then in bytes, ms to exit on SIGTERM).
fn one(args: &Args) -> Result<(f64, u64, f64)> {
    let port = free_port()?;
    let started = Instant::now();
    let mut child = Command::new(&args.bin)
        .args(["serve", "--port", &port.to_string(), "--statsd", "off", "--data-dir"])
        .arg(&args.data_dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", args.bin))?;
    let pid = child.id() as i32;
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let ready = loop {
        if let Some(code) = health(port) {
            if code == 200 {
                break started.elapsed();
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited during start-up: {status}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no 200 from /health within {} s", args.timeout_secs);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let rss = status_bytes(pid, "VmRSS").unwrap_or(0);
    let stopping = Instant::now();
    // SAFETY: kill only sends a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let stop_deadline = stopping + Duration::from_secs(10);
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > stop_deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!("the server did not stop within 10 s of SIGTERM"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((ready.as_secs_f64() * 1e3, rss, stopping.elapsed().as_secs_f64() * 1e3))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let db = format!("{}/vitals.db", args.data_dir);
    let size = std::fs::metadata(&db).map_or(0, |m| m.len());
    println!("startup-time data_dir={} vitals.db {} MiB", args.data_dir, mib(size));
    let report = |label: &str, times: &[f64]| {
        let max = times.iter().copied().fold(0.0, f64::max);
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "summary startup {label} db_mib={} runs={} median_ms={:.1} min_ms={min:.1} max_ms={max:.1}",
            mib(size),
            times.len(),
            median(times)
        );
    };
    let mut cold = Vec::new();
    for i in 0..args.cold_runs {
        drop_caches()?;
        let (ms, rss, stop_ms) = one(&args)?;
        println!("  cold run {}: first 200 after {ms:.1} ms, RSS {} MiB, exit {stop_ms:.0} ms after SIGTERM",
            i + 1, mib(rss));
        cold.push(ms);
    }
    let mut warm = Vec::new();
    for i in 0..args.runs {
        let (ms, rss, stop_ms) = one(&args)?;
        println!("  warm run {}: first 200 after {ms:.1} ms, RSS {} MiB, exit {stop_ms:.0} ms after SIGTERM",
            i + 1, mib(rss));
        warm.push(ms);
    }
    if !cold.is_empty() {
        report("cold", &cold);
    }
    if !warm.is_empty() {
        report("warm", &warm);
    }
    Ok(())
}
