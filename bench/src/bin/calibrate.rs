//! `calibrate`: how fast this machine is right now, as the time one thread takes for a fixed
//! piece of work (sorting pseudo-random integers, hashing them, and floating-point maths).
//!
//! This VM's speed moves by up to 1.7× between hours, and every other figure moves with it.
//! `bench/run` runs this first, so that each run records the machine's speed beside its
//! figures, and BENCHMARKS.md's table can say whether a change came with a slower machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use vitals_bench::OtherLoad;

#[derive(Parser)]
#[command(about = "Times a fixed single-thread CPU workload (lower is faster)")]
struct Args {
    /// Times the workload is run; the median is reported.
    #[arg(long, default_value_t = 9)]
    repeats: usize,
}

/// Integers sorted and hashed per round.
const INTEGERS: usize = 1 << 19;
/// Floating-point steps per round.
const FLOATS: usize = 1 << 21;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Sorting: branches and memory, as the server's maps and sketches are.
fn sort_round(seed: u64, buf: &mut Vec<u64>) -> u64 {
    let mut state = seed | 1;
    buf.clear();
    buf.extend((0..INTEGERS).map(|_| xorshift(&mut state)));
    buf.sort_unstable();
    buf[INTEGERS / 2]
}

/// Hashing: integer multiply and shifts, as the server's keys are.
fn hash_round(values: &[u64]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| (h ^ v).wrapping_mul(0x1000_0000_01b3).rotate_left(5))
}

/// Floating point: logarithms and roots, as percentiles and rates are.
fn float_round(seed: u64) -> f64 {
    let mut x = (seed % 1000) as f64 + 1.5;
    let mut sum = 0.0;
    for _ in 0..FLOATS {
        x = x * 1.000_000_1 + 0.25;
        sum += x.ln() + x.sqrt();
    }
    sum
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let repeats = args.repeats.max(1);
    let other = OtherLoad::start(None)?;
    let start = Instant::now();
    let mut buf = Vec::with_capacity(INTEGERS);
    let (mut sorts, mut hashes, mut floats, mut totals) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..repeats as u64 {
        let t0 = Instant::now();
        black_box(sort_round(black_box(round + 1), &mut buf));
        let t1 = Instant::now();
        black_box(hash_round(black_box(&buf)));
        let t2 = Instant::now();
        black_box(float_round(black_box(round + 7)));
        let t3 = Instant::now();
        sorts.push(t1 - t0);
        hashes.push(t2 - t1);
        floats.push(t3 - t2);
        totals.push(t3 - t0);
    }
    let other_pct = other.percent_of_core(start.elapsed());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "calibrate repeats={repeats} (one thread: sort {INTEGERS} integers, hash them, {FLOATS} ln + sqrt)"
    );
    println!(
        "summary machine cpu_ms={:.1} sort_ms={:.1} hash_ms={:.2} float_ms={:.1} other_pct={:.0}",
        ms(median(totals)),
        ms(median(sorts)),
        ms(median(hashes)),
        ms(median(floats)),
        other_pct
    );
    Ok(())
}
