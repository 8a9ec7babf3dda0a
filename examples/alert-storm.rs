//! `alert-storm`: the CPU time of one alert evaluation in the storm of `bench/run alerts`, in
//! process and on a simulated clock.
//!
//! `alert-bench eval-cost` drives a running server over HTTP for a minute and reads its timer:
//! the real thing, but each run gives one median, and this VM's speed drifts by ±15 % between
//! runs, more than most changes to the engine gain. This tool replays the same traffic (each
//! second, one sample for each of N operations, the durations and failures `alert-bench`
//! sends) into the engine's own metrics, store and rules, ticks the statistics' upkeep and the
//! evaluation as the server does, and times each evaluation's CPU on the calling thread: a
//! minute of storm takes about a second, so alternating two builds many times is cheap.
//!
//! ```text
//! cargo run --release --features ssr --example alert-storm -- --rules bench/alert-rules.toml
//! ```
//!
//! It prints one line, `summary alert-storm ... transitions_per_eval=... cpu_p50_ms=...
//! cpu_mean_ms=...`, over the evaluations after `--warm-secs`. `bench/run alerts-ab` alternates
//! two builds of it.
//!
//! How much a storm changes sets much of what an evaluation costs, and it depends on the
//! storm's age: while the one-minute windows fill (the first minute), percentiles over few
//! samples swing across their thresholds, and 60 alerts change per evaluation here; from the
//! second minute on, 12. The defaults time the seconds `alert-bench` times (10 to 50). The
//! server's storm changes more still (about 110 per evaluation, its `transitions_per_eval`):
//! there the samples arrive out of step with the ticks.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use nix::time::{clock_gettime, ClockId};
use tokio_util::sync::CancellationToken;
use vitals::model::live::SystemMetrics;
use vitals::model::ops::LatencyThresholds;
use vitals::server::alerts::config::{resolve, AlertArgs};
use vitals::server::alerts::Alerts;
use vitals::server::live::Hub;
use vitals::server::metrics::{AppMetrics, Limits, Protocol, Timing};
use vitals::server::store::{Store, StoreConfig};

#[derive(Parser)]
#[command(about = "CPU per alert evaluation in a simulated alert storm")]
struct Args {
    /// The rules (a TOML file of `[[rules]]`, as `--alert-rules` takes).
    #[arg(long, default_value = "bench/alert-rules.toml")]
    rules: PathBuf,
    /// Distinct operations, each with one sample a second.
    #[arg(long, default_value_t = 1000)]
    operations: usize,
    /// Simulated seconds before evaluations are timed (alerts build up meanwhile). With the
    /// default and `--secs`, the seconds of a storm's life `alert-bench eval-cost` times.
    #[arg(long, default_value_t = 10)]
    warm_secs: u64,
    /// Simulated seconds timed after the warm-up.
    #[arg(long, default_value_t = 40)]
    secs: u64,
    /// KiB written on the evaluating thread before each evaluation, to evict its caches.
    #[arg(long, default_value_t = 0)]
    evict_kib: usize,
}

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map(Duration::from).unwrap_or_default()
}

/// A thread that records, for each `(round, now)` it is sent, one sample of each operation
/// (the durations and failures of `feed` in `bench/src/bin/alert-bench.rs`: change both
/// together) and the statistics' upkeep at
/// `now + 500`, then answers.
fn feeder(
    app: Arc<AppMetrics>,
    operations: usize,
) -> (std::sync::mpsc::Sender<(u64, u64)>, std::sync::mpsc::Receiver<()>) {
    let (feed, rounds) = std::sync::mpsc::channel::<(u64, u64)>();
    let (done, fed) = std::sync::mpsc::channel();
    let names: Vec<String> = (0..operations).map(|i| format!("bench.alert.{i:04}")).collect();
    std::thread::spawn(move || {
        for (round, now) in rounds {
            let mut inner = app.lock();
            for (i, name) in names.iter().enumerate() {
                let i = i as u64;
                let ms = 5.0 + ((i * 7919 + round * 31) % 500) as f64;
                let timing =
                    Timing::operation(name, ms, now).failed_if((i + round).is_multiple_of(50));
                inner.timing(Protocol::Http, timing, now);
            }
            app.upkeep(&mut inner, now + 500);
            drop(inner);
            if done.send(()).is_err() {
                return;
            }
        }
    });
    (feed, fed)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // As the server runs: glibc's arenas bounded, and its log lines formatted (then dropped).
    vitals::server::memory::configure();
    let (log, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(1_024)
        .lossy(true)
        .finish(std::io::sink());
    tracing_subscriber::fmt().with_writer(log).init();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let _entered = runtime.enter();
    let config = resolve(
        &AlertArgs {
            rules_file: Some(&args.rules),
            default_rules: Some(false),
            ..Default::default()
        },
        None,
        None,
    )?;
    let rules = config.rules.len();
    let dir = tempfile::tempdir()?;
    let store = Store::open(StoreConfig::new(dir.path()))?;
    // A whole second in the past, as the server's clock would be.
    let start_ms = vitals::server::now_ms() / 1000 * 1000 - (args.warm_secs + args.secs) * 1000;
    let app = AppMetrics::new(Limits::default(), LatencyThresholds::default(), start_ms);
    let hub = Hub::new(1000, 10, 10);
    let reports = Arc::new(vitals::server::reports::Reports::new(Default::default()));
    let alerts = Alerts::new(
        config,
        store.clone(),
        hub,
        Arc::clone(&app),
        reports,
        CancellationToken::new(),
    );
    // The samples come from another thread, as they do from the server's ingest tasks: the
    // evaluation then finds the series in another core's cache, or in none, as it does there.
    let (feed, fed) = feeder(Arc::clone(&app), args.operations);
    let system = SystemMetrics::default();
    let mut evict = vec![0u8; args.evict_kib * 1024];
    let mut cpu_us = Vec::new();
    let mut transitions_before = 0;
    for round in 0..args.warm_secs + args.secs {
        let now = start_ms + round * 1000;
        feed.send((round, now))?;
        fed.recv()?;
        // What else the server's second does to the caches (other tasks, other processes).
        for (i, b) in evict.iter_mut().enumerate().step_by(64) {
            *b = b.wrapping_add(i as u8);
        }
        std::hint::black_box(&evict);
        if round == args.warm_secs {
            transitions_before = alerts.stats.transitions.load(Ordering::Relaxed);
        }
        let before = thread_cpu();
        alerts.evaluate(&system, now + 500);
        let used = thread_cpu().saturating_sub(before);
        if round >= args.warm_secs {
            cpu_us.push(used.as_secs_f64() * 1e6);
        }
    }
    drop(feed);
    let transitions = alerts.stats.transitions.load(Ordering::Relaxed) - transitions_before;
    let held = alerts.now_limited(start_ms + (args.warm_secs + args.secs) * 1000, 0).total;
    cpu_us.sort_by(f64::total_cmp);
    let at = |q: f64| cpu_us[((cpu_us.len() - 1) as f64 * q).round() as usize] / 1e3;
    let mean = cpu_us.iter().sum::<f64>() / cpu_us.len() as f64 / 1e3;
    println!(
        "summary alert-storm operations={} rules={rules} evaluations={} alerts_held={held} \
         transitions_per_eval={:.1} cpu_p50_ms={:.3} cpu_mean_ms={mean:.3} cpu_p90_ms={:.3} \
         cpu_p99_ms={:.3}",
        args.operations,
        cpu_us.len(),
        transitions as f64 / cpu_us.len() as f64,
        at(0.5),
        at(0.9),
        at(0.99)
    );
    drop(alerts);
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}
