//! `proc-sample`: a process's CPU use (% of one core) and resident memory over a fixed time,
//! after a settling pause. Used for the idle benchmark.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use vitals_bench::{
    living_threads_cpu_ns, mib, process_cpu, status_bytes, thread_count, OtherLoad,
};

#[derive(Parser)]
#[command(about = "CPU and RSS of a process over a fixed time")]
struct Args {
    /// The process to watch.
    #[arg(long)]
    pid: i32,
    /// Pause before measuring.
    #[arg(long, default_value_t = 10)]
    settle_secs: u64,
    /// Measuring time.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// A label for the summary line.
    #[arg(long, default_value = "idle")]
    label: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::thread::sleep(Duration::from_secs(args.settle_secs));
    let start = Instant::now();
    let cpu0 = process_cpu(args.pid)?;
    let ns0 = living_threads_cpu_ns(args.pid)?;
    let other = OtherLoad::start(Some(args.pid))?;
    let mut rss = Vec::new();
    for second in 1..=args.secs {
        let due = start + Duration::from_secs(second);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        rss.push(status_bytes(args.pid, "VmRSS")?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = (process_cpu(args.pid)? - cpu0).as_secs_f64();
    let ns = living_threads_cpu_ns(args.pid)?.saturating_sub(ns0) as f64 / 1e9;
    let rss_mean = rss.iter().sum::<u64>() / rss.len().max(1) as u64;
    let rss_max = rss.iter().copied().max().unwrap_or(0);
    let hwm = status_bytes(args.pid, "VmHWM")?;
    let threads = thread_count(args.pid)?;
    let other_pct = other.percent_of_core(start.elapsed());

    println!(
        "proc-sample {} pid={} secs={} settle={}",
        args.label, args.pid, args.secs, args.settle_secs
    );
    println!(
        "  CPU                     {:.3} % of one core ({:.0} ms in {:.1} s, /proc/PID/stat ticks)",
        cpu / elapsed * 100.0,
        cpu * 1e3,
        elapsed
    );
    println!(
        "  CPU (schedstat, ns)     {:.3} % of one core (living threads only)",
        ns / elapsed * 100.0
    );
    println!(
        "  RSS                     mean {} MiB, max {} MiB, peak (VmHWM) {} MiB",
        mib(rss_mean),
        mib(rss_max),
        mib(hwm)
    );
    println!("  threads                 {threads}");
    println!("  other processes         {other_pct:.1} % of one core");
    println!(
        "summary {} cpu_pct={:.3} cpu_pct_schedstat={:.3} rss_mib_mean={} rss_mib_max={} vmhwm_mib={} threads={} other_pct={:.1}",
        args.label,
        cpu / elapsed * 100.0,
        ns / elapsed * 100.0,
        mib(rss_mean),
        mib(rss_max),
        mib(hwm),
        threads,
        other_pct
    );
    Ok(())
}
