//! Recommendations: advice computed from this server's own data, never generic. Each one says
//! what was found, the numbers behind it, what to try, and where the chart and the data are.
//!
//! - **A slow operation** (p95 over the last 15 minutes above the "good" latency bound, or an
//!   operation with a firing alert): when the slowdown began (the first minute of the current
//!   run above the bound), whether the tail or the median moved against the baseline (the five
//!   hours before the last hour), whether throughput rose at the same time (load-driven) or
//!   not, whether the host was saturated then (CPU, memory, over the slowdown's run when it is
//!   longer than the last 15 minutes, from its minute rows), which other operations slowed at
//!   the same time (a shared dependency), whether its errors rose too, and whether its
//!   failures are fast (refused early) or slow (timeouts), from the mean duration of failed
//!   samples against successful ones. Its link opens the operation's charts on the
//!   Operations page over the six hours it was judged on.
//! - **The host**: CPU or memory saturated over the last 15 minutes, naming the processes that
//!   used the most CPU (for CPU advice) or memory (for memory advice) over that period, from
//!   the collector's top-process scans (every 10 s, the top 5 by CPU and by memory; see
//!   `collector::processes` and `store::query::top_processes`). A slow operation on a
//!   saturated host names them too.
//! - **A cache** (a gauge named like `*cache*hit*`): its hit rate against its alert rule's
//!   target, or 70 % without one.

use std::collections::BTreeMap;

use super::Alerts;
use crate::model::alerts::{
    AlertState, Evidence, Recommendation, Recommendations, Severity, TargetKind,
};
use crate::model::history::{ProcessSummary, Tier, TopProcesses};
use crate::model::ops::{OperationSummary, Window};
use crate::server::collector::processes::TOP_N;
use crate::server::metrics::AppMetrics;
use crate::server::stats::RangeStats;
use crate::server::store::host::field_index;
use crate::server::store::{query, SeriesKind, Store};

const MINUTE_MS: u64 = 60_000;
/// The recent period judged.
const RECENT_MS: u64 = 15 * MINUTE_MS;
const RECENT_PERIOD: &str = "over 15 min";
/// The baseline: from six hours ago to one hour ago.
const BASELINE_FROM_MS: u64 = 6 * 3_600_000;
const BASELINE_TO_MS: u64 = 3_600_000;
/// Most slow operations examined.
const MAX_SLOW: usize = 10;
/// A ratio against the baseline this large counts as "moved".
const MOVED: f64 = 1.5;
/// A cache hit rate below this is advised on when no rule sets a target.
const DEFAULT_CACHE_TARGET_PCT: f64 = 70.0;
/// Mean host CPU and memory over the recent period above which the host is saturated.
const CPU_HOT_PCT: f64 = 85.0;
const MEMORY_HOT_PCT: f64 = 90.0;
/// Failures this many times slower than successes on average are "slow" (timeouts); this many
/// times faster, "fast" (refused early).
const SLOW_FAILURES: f64 = 2.0;
/// A failure rate from which slow failures are what to fix first.
const FREQUENT_FAILURES_PCT: f64 = 5.0;
/// Processes named in the text of a recommendation (the evidence has all of the top 5).
const NAMED_PROCESSES: usize = 3;
const MIB: f64 = 1_048_576.0;

fn ev(label: &str, value: f64, unit: &str, compared_to: Option<f64>) -> Evidence {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    Evidence {
        label: label.to_string(),
        value: round(value),
        unit: unit.to_string(),
        compared_to: compared_to.map(round),
    }
}

const HOUR_MS: u64 = 60 * MINUTE_MS;

/// `from=…&to=…` for the `span_ms` up to `now_ms`, in Unix ms: a link that shows the data the
/// advice was computed from, also when opened later (from a saved report).
fn between(now_ms: u64, span_ms: u64) -> String {
    format!("from={}&to={now_ms}", now_ms.saturating_sub(span_ms))
}

fn pct_change(now: f64, before: f64) -> f64 {
    if before > 0.0 {
        100.0 * (now - before) / before
    } else {
        0.0
    }
}

/// Computes every recommendation at `now_ms` (blocking: reads the store).
pub fn compute(alerts: &Alerts, app: &AppMetrics, store: &Store, now_ms: u64) -> Recommendations {
    let mut items = Vec::new();
    let good_ms = app.thresholds().good_ms;
    let recent_from = now_ms.saturating_sub(RECENT_MS);
    let baseline_from = now_ms.saturating_sub(BASELINE_FROM_MS);
    let baseline_to = now_ms.saturating_sub(BASELINE_TO_MS);
    let host = host_load(store, recent_from, now_ms, RECENT_PERIOD);
    if let Some(rec) = host_advice(&host, now_ms) {
        items.push(rec);
    }
    // Slow operations: over the bound now, or named by a firing alert.
    let recent: Vec<OperationSummary> = app.summaries(Window::M15, now_ms);
    let alerting: Vec<String> = alerts
        .now(now_ms)
        .alerts
        .into_iter()
        .filter(|a| a.state.is_active() || a.state == AlertState::Pending)
        .filter_map(|a| a.labels.get("operation").cloned())
        .collect();
    let mut slow: Vec<&OperationSummary> =
        recent.iter().filter(|s| s.p95_ms > good_ms || alerting.contains(&s.name)).collect();
    slow.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms));
    slow.truncate(MAX_SLOW);
    if !slow.is_empty() {
        let baseline = range_by_name(store, baseline_from, baseline_to, now_ms);
        let recent_by_name: BTreeMap<&str, &OperationSummary> =
            recent.iter().map(|s| (s.name.as_str(), s)).collect();
        for op in slow {
            items.push(slow_operation(
                store,
                op,
                &baseline,
                &recent_by_name,
                &host,
                good_ms,
                now_ms,
            ));
        }
    }
    items.extend(cache_advice(alerts, app, now_ms));
    items.sort_by_key(|r| std::cmp::Reverse(r.severity));
    Recommendations { now_ms, recent_from_ms: recent_from, baseline_from_ms: baseline_from, items }
}

/// Host CPU and memory over a period: (mean, max) of each, when stored, and the top processes
/// then.
#[derive(Default)]
struct HostLoad {
    cpu: Option<(f64, f64)>,
    memory: Option<(f64, f64)>,
    processes: TopProcesses,
    /// The period in words for evidence labels: "over 15 min", "since it began".
    period: &'static str,
}

impl HostLoad {
    fn cpu_hot(&self) -> bool {
        self.cpu.is_some_and(|(mean, _)| mean > CPU_HOT_PCT)
    }

    fn memory_hot(&self) -> bool {
        self.memory.is_some_and(|(mean, _)| mean > MEMORY_HOT_PCT)
    }
}

/// "postgres (46 % CPU on average, peak 60 %), java (…)": the first [`NAMED_PROCESSES`].
fn cpu_names(processes: &[ProcessSummary]) -> String {
    let named: Vec<String> = processes
        .iter()
        .take(NAMED_PROCESSES)
        .map(|p| {
            format!(
                "{} ({:.0} % CPU on average, peak {:.0} %)",
                p.name, p.cpu_mean_pct, p.cpu_max_pct
            )
        })
        .collect();
    named.join(", ")
}

/// "java (950 MiB at most), postgres (…)": the first [`NAMED_PROCESSES`].
fn memory_names(processes: &[ProcessSummary]) -> String {
    let named: Vec<String> = processes
        .iter()
        .take(NAMED_PROCESSES)
        .map(|p| format!("{} ({:.0} MiB at most)", p.name, p.rss_max_bytes as f64 / MIB))
        .collect();
    named.join(", ")
}

/// Evidence for each top process by CPU: its mean CPU over the period (peak compared).
fn cpu_evidence<'a>(
    processes: &'a [ProcessSummary],
    period: &'a str,
) -> impl Iterator<Item = Evidence> + 'a {
    processes.iter().map(move |p| {
        ev(
            &format!("process {}, CPU mean {period} (vs peak)", p.name),
            p.cpu_mean_pct,
            "%",
            Some(p.cpu_max_pct),
        )
    })
}

/// Evidence for each top process by memory: its largest resident memory over the period.
fn memory_evidence<'a>(
    processes: &'a [ProcessSummary],
    period: &'a str,
) -> impl Iterator<Item = Evidence> + 'a {
    processes.iter().map(move |p| {
        ev(
            &format!("process {}, largest RSS {period}", p.name),
            p.rss_max_bytes as f64 / MIB,
            "MiB",
            None,
        )
    })
}

/// The host over `[from_ms, to_ms)`: the last 15 minutes from the raw samples, a longer period
/// (a slowdown's run) from the minute rows.
fn host_load(store: &Store, from_ms: u64, to_ms: u64, period: &'static str) -> HostLoad {
    let fields: Vec<usize> =
        ["cpu_pct", "memory_pct"].iter().filter_map(|f| field_index(f)).collect();
    let tier = if to_ms.saturating_sub(from_ms) > RECENT_MS { Tier::Minute } else { Tier::Raw };
    let points = store
        .readers()
        .with(|c| query::host_points(c, tier, from_ms, to_ms, MINUTE_MS, &fields))
        .unwrap_or_default();
    let summary = |i: usize| -> Option<(f64, f64)> {
        let means: Vec<f64> =
            points.iter().filter_map(|p| p.mean.get(i).copied().flatten()).collect();
        let max =
            points.iter().filter_map(|p| p.max.get(i).copied().flatten()).fold(f64::NAN, f64::max);
        (!means.is_empty()).then(|| (means.iter().sum::<f64>() / means.len() as f64, max))
    };
    let processes = store
        .readers()
        .with(|c| query::top_processes(c, from_ms, to_ms, TOP_N))
        .unwrap_or_default();
    HostLoad { cpu: summary(0), memory: summary(1), processes, period }
}

fn host_advice(host: &HostLoad, now_ms: u64) -> Option<Recommendation> {
    let (cpu_mean, cpu_max) = host.cpu.unwrap_or((0.0, 0.0));
    let (mem_mean, mem_max) = host.memory.unwrap_or((0.0, 0.0));
    let cpu_hot = host.cpu_hot();
    let mem_hot = host.memory_hot();
    if !cpu_hot && !mem_hot {
        return None;
    }
    let mut findings = Vec::new();
    let mut evidence = Vec::new();
    let by_cpu = &host.processes.by_cpu;
    let by_memory = &host.processes.by_memory;
    if cpu_hot {
        findings.push(format!(
            "Host CPU averaged {cpu_mean:.0} % over the last 15 minutes (peak {cpu_max:.0} %)."
        ));
        evidence.push(ev("host CPU, mean over 15 min", cpu_mean, "%", Some(CPU_HOT_PCT)));
        if !by_cpu.is_empty() {
            findings.push(format!("The busiest processes: {}.", cpu_names(by_cpu)));
            evidence.extend(cpu_evidence(by_cpu, host.period));
        }
    }
    if mem_hot {
        findings.push(format!("Memory was {mem_mean:.0} % used on average (peak {mem_max:.0} %)."));
        evidence.push(ev("host memory, mean over 15 min", mem_mean, "%", Some(MEMORY_HOT_PCT)));
        if !by_memory.is_empty() {
            findings.push(format!("The largest processes: {}.", memory_names(by_memory)));
            evidence.extend(memory_evidence(by_memory, host.period));
        }
    }
    let busiest: Vec<&str> = by_cpu.iter().take(NAMED_PROCESSES).map(|p| p.name.as_str()).collect();
    let largest: Vec<&str> =
        by_memory.iter().take(NAMED_PROCESSES).map(|p| p.name.as_str()).collect();
    let suggestion = if cpu_hot {
        let who = if busiest.is_empty() {
            "find the busiest process (top -o %CPU)".to_string()
        } else {
            format!("start with {} (the busiest over these 15 minutes)", busiest.join(", "))
        };
        format!(
            "Every operation on this host competes for CPU: {who}, move batch work off peak \
             hours, or add cores."
        )
    } else {
        let who = if largest.is_empty() {
            "find the largest processes (top -o %MEM)".to_string()
        } else {
            format!("look at {} (the largest over these 15 minutes)", largest.join(", "))
        };
        format!("The host may start swapping: {who} and bound their caches, or add memory.")
    };
    Some(Recommendation {
        title: if cpu_hot {
            "The host is CPU-saturated".into()
        } else {
            "The host is short of memory".into()
        },
        severity: if cpu_mean > 95.0 || mem_mean > 95.0 {
            Severity::Critical
        } else {
            Severity::Warning
        },
        subject: "host".into(),
        since_ms: None,
        findings,
        evidence,
        suggestion,
        link: format!("/?{}", between(now_ms, HOUR_MS)),
        data: format!(
            "/api/v1/history/host?{}&step=1m&fields=cpu_pct,memory_pct",
            between(now_ms, HOUR_MS)
        ),
    })
}

/// Every operation's merged statistics over `[from, to)` by name (all tag sets).
fn range_by_name(
    store: &Store,
    from_ms: u64,
    to_ms: u64,
    now_ms: u64,
) -> BTreeMap<String, RangeStats> {
    let retention = store.retention();
    let stats = store
        .readers()
        .with(|c| {
            let to_ms = to_ms.max(from_ms + 1);
            let plan = query::plan_now(c, from_ms, to_ms, now_ms, &retention, None)?;
            query::range_stats(c, SeriesKind::Operation, &plan)
        })
        .unwrap_or_default();
    let mut by_name: BTreeMap<String, RangeStats> = BTreeMap::new();
    for (key, s) in stats {
        by_name
            .entry(crate::server::metrics::tags::name_of(&key).to_string())
            .or_default()
            .merge(&s);
    }
    by_name
}

fn slow_operation(
    store: &Store,
    op: &OperationSummary,
    baseline: &BTreeMap<String, RangeStats>,
    recent: &BTreeMap<&str, &OperationSummary>,
    host: &HostLoad,
    good_ms: f64,
    now_ms: u64,
) -> Recommendation {
    let name = &op.name;
    let mut findings = Vec::new();
    let mut evidence = vec![ev("p95 over the last 15 min", op.p95_ms, "ms", Some(good_ms))];
    // When it began: the first minute of the current run above the bound (gaps of up to two
    // minutes without samples do not end a run).
    let points = store
        .readers()
        .with(|c| {
            let from = now_ms.saturating_sub(BASELINE_FROM_MS);
            let step = Some(MINUTE_MS);
            let plan = query::plan_now(c, from, now_ms, now_ms, &store.retention(), step)?;
            query::series_points(c, SeriesKind::Operation, name, |_| true, &plan, MINUTE_MS)
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut since_ms = None;
    let mut last_at = now_ms;
    for p in points.iter().rev() {
        if last_at.saturating_sub(p.at_ms) > 3 * MINUTE_MS || p.p95_ms <= good_ms {
            break;
        }
        since_ms = Some(p.at_ms);
        last_at = p.at_ms;
    }
    if let Some(since) = since_ms {
        let mins = now_ms.saturating_sub(since) / MINUTE_MS;
        findings.push(format!("Its p95 has been above {good_ms:.0} ms for about {mins} minutes."));
    }
    let base = baseline.get(name.as_str()).filter(|b| b.count() > 0);
    let mut load_driven = false;
    let mut tail_only = false;
    match base {
        None => findings
            .push("No baseline: it has no samples between six hours and one hour ago.".into()),
        Some(b) => {
            let [b50, b95, b99] = b.quantiles();
            // Per minute of the baseline the operation was known in: from its first stored
            // minute (an operation, or a Vitals, newer than six hours has a shorter baseline).
            let baseline_to = now_ms.saturating_sub(BASELINE_TO_MS);
            let first = points.first().map_or(0, |p| p.at_ms);
            let known_from = now_ms.saturating_sub(BASELINE_FROM_MS).max(first);
            let span_min = (baseline_to.saturating_sub(known_from) / MINUTE_MS).max(1) as f64;
            let base_rate = b.count() as f64 / span_min;
            // A slowdown older than the last hour is in its own baseline.
            let overlapped = since_ms.is_some_and(|since| since < baseline_to);
            let base_err = 100.0 * b.errors() as f64 / b.count().max(1) as f64;
            evidence.push(ev("p50 now vs baseline", op.p50_ms, "ms", Some(b50)));
            evidence.push(ev("p99 now vs baseline", op.p99_ms, "ms", Some(b99)));
            evidence.push(ev(
                "throughput now vs baseline",
                op.rate_per_min,
                "/min",
                Some(base_rate),
            ));
            evidence.push(ev(
                "errors now vs baseline",
                100.0 - op.success_pct,
                "%",
                Some(base_err),
            ));
            let median_moved = b50 > 0.0 && op.p50_ms / b50 >= MOVED;
            let tail_moved = b99 > 0.0 && op.p99_ms / b99 >= MOVED;
            tail_only = tail_moved && !median_moved;
            match (median_moved, tail_moved) {
                (true, _) => findings.push(format!(
                    "The median moved too: p50 {:.0} ms against {:.0} ms before (+{:.0} %): every request is slower.",
                    op.p50_ms, b50, pct_change(op.p50_ms, b50)
                )),
                (false, true) => findings.push(format!(
                    "Only the tail moved: p99 {:.0} ms against {:.0} ms before, while p50 stayed near {:.0} ms.",
                    op.p99_ms, b99, b50
                )),
                (false, false) if overlapped => findings.push(format!(
                    "It began before the baseline ended (six hours to one hour ago), so the \
                     baseline holds part of the slowdown (p95 {b95:.0} ms there): the comparison \
                     understates it."
                )),
                (false, false) => findings.push(format!(
                    "It was already this slow before (p95 {b95:.0} ms in the baseline): not a regression."
                )),
            }
            if base_rate > 0.0 && op.rate_per_min / base_rate >= 1.3 {
                load_driven = true;
                findings.push(format!(
                    "Throughput rose at the same time: {:.1}/min against {:.1}/min (+{:.0} %): load-driven.",
                    op.rate_per_min, base_rate, pct_change(op.rate_per_min, base_rate)
                ));
            } else {
                findings.push(format!(
                    "Throughput did not rise ({:.1}/min against {:.1}/min): not load-driven.",
                    op.rate_per_min, base_rate
                ));
            }
            let err_now = 100.0 - op.success_pct;
            if err_now > base_err + 1.0 {
                findings
                    .push(format!("Its errors rose too: {err_now:.1} % against {base_err:.1} %."));
            }
        }
    }
    let failures = failures_finding(op);
    if let Some((finding, error_mean, ok_mean)) = &failures {
        findings.push(finding.clone());
        evidence.push(ev("failures' mean vs successes' mean", *error_mean, "ms", Some(*ok_mean)));
    }
    let slow_failures = failures.as_ref().is_some_and(|(_, e, ok)| *e >= SLOW_FAILURES * ok)
        && 100.0 - op.success_pct >= FREQUENT_FAILURES_PCT;
    // The host over the slowdown's run when it is longer than the recent period (from its
    // first minute, six hours at most), else over the recent period.
    let run_from = since_ms.filter(|&since| since < now_ms.saturating_sub(RECENT_MS));
    let run_host;
    let (host, period_words) = match run_from {
        Some(from) => {
            run_host = host_load(store, from, now_ms, "since it began");
            (&run_host, "since it began")
        }
        None => (host, "over the last 15 minutes"),
    };
    let host_busy = host.cpu_hot() || host.memory_hot();
    if let Some((cpu, _)) = host.cpu {
        evidence.push(ev(&format!("host CPU, mean {}", host.period), cpu, "%", None));
    }
    if let Some((memory, _)) = host.memory {
        evidence.push(ev(&format!("host memory, mean {}", host.period), memory, "%", None));
    }
    let hot: Vec<String> = [
        host.cpu.filter(|_| host.cpu_hot()).map(|(v, _)| format!("CPU {v:.0} %")),
        host.memory.filter(|_| host.memory_hot()).map(|(v, _)| format!("memory {v:.0} %")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !hot.is_empty() {
        findings.push(format!("The host was saturated {period_words} ({}).", hot.join(", ")));
    } else if let Some((cpu, _)) = host.cpu {
        let memory = host.memory.map_or(String::new(), |(m, _)| format!(", memory {m:.0} %"));
        findings
            .push(format!("The host was not saturated {period_words} (CPU {cpu:.0} %{memory})."));
    }
    // On a saturated host, the processes that took the CPU or the memory then.
    let mut hogs: Vec<&str> = Vec::new();
    if host.cpu_hot() && !host.processes.by_cpu.is_empty() {
        findings
            .push(format!("The busiest processes then: {}.", cpu_names(&host.processes.by_cpu)));
        evidence.extend(cpu_evidence(&host.processes.by_cpu, host.period).take(NAMED_PROCESSES));
        hogs.extend(host.processes.by_cpu.iter().take(NAMED_PROCESSES).map(|p| p.name.as_str()));
    } else if host.memory_hot() && !host.processes.by_memory.is_empty() {
        findings.push(format!(
            "The largest processes then: {}.",
            memory_names(&host.processes.by_memory)
        ));
        evidence
            .extend(memory_evidence(&host.processes.by_memory, host.period).take(NAMED_PROCESSES));
        hogs.extend(host.processes.by_memory.iter().take(NAMED_PROCESSES).map(|p| p.name.as_str()));
    }
    // Other operations that slowed at the same time.
    let mut together: Vec<(String, f64)> = recent
        .iter()
        .filter(|(other, _)| **other != name.as_str())
        .filter_map(|(other, s)| {
            let b = baseline.get(*other).filter(|b| b.count() > 0)?;
            let [_, b95, _] = b.quantiles();
            (b95 > 0.0 && s.p95_ms / b95 >= MOVED).then(|| (other.to_string(), s.p95_ms / b95))
        })
        .collect();
    together.sort_by(|a, b| b.1.total_cmp(&a.1));
    together.truncate(5);
    if !together.is_empty() {
        let names: Vec<String> = together.iter().map(|(n, r)| format!("{n} (×{r:.1})")).collect();
        findings.push(format!(
            "Other operations slowed at the same time: {}: a shared dependency?",
            names.join(", ")
        ));
        evidence.push(ev("other operations slowed by ≥1.5×", together.len() as f64, "", None));
    }
    let host_first = if hogs.is_empty() {
        "The host was saturated: the operation waits for CPU or memory; fix the host first."
            .to_string()
    } else {
        format!(
            "The host was saturated: the operation waits for CPU or memory; fix the host first, \
             starting with {}.",
            hogs.join(", ")
        )
    };
    let suggestion = if !together.is_empty() {
        "Several operations slowed together: look at what they share (the database, a cache, an \
         upstream API) before the operation itself."
    } else if load_driven {
        "The slowdown follows the load: add capacity or concurrency limits, cache repeated work, \
         or queue it; compare p95 against throughput on the Operations page."
    } else if host_busy {
        host_first.as_str()
    } else if slow_failures {
        // Timeouts on a saturated host or under load are a symptom: those come first.
        "Its failures are slow and frequent: requests wait until something gives up. Find what \
         they wait for (a dependency timing out, a pool exhausted, a lock) and give it a deadline \
         shorter than the caller's, so failures are fast and retried or shed."
    } else if tail_only {
        "Only some requests are slow: look for lock contention, cold caches, garbage collection or \
         a slow path for certain inputs (group by tag to find which)."
    } else {
        "Every request got slower without more load: look at what changed when it began (a deploy, \
         a query plan, a dependency)."
    };
    Recommendation {
        title: format!("{name} is slow"),
        severity: if op.p95_ms > 2.0 * good_ms { Severity::Critical } else { Severity::Warning },
        subject: name.clone(),
        since_ms,
        findings,
        evidence,
        suggestion: suggestion.to_string(),
        link: format!(
            "/operations?op={}&{}",
            crate::model::percent_encode(name),
            between(now_ms, 6 * HOUR_MS)
        ),
        data: format!(
            "/api/v1/operations/{}/series?{}&step=1m",
            crate::model::percent_encode(name),
            between(now_ms, 6 * HOUR_MS)
        ),
    }
}

/// Whether the operation's failures over the recent period are fast or slow against its
/// successes: the finding, the failures' mean and the successes' mean (ms). `None` without
/// failures (or successes), or when their durations are unknown.
fn failures_finding(op: &OperationSummary) -> Option<(String, f64, f64)> {
    let error_mean = op.error_mean_ms?;
    let ok_mean = op.ok_mean_ms?;
    let share = 100.0 - op.success_pct;
    let finding = if error_mean >= SLOW_FAILURES * ok_mean {
        format!(
            "Its failures are slow: {error_mean:.0} ms on average against {ok_mean:.0} ms for \
             successes ({share:.1} % of requests): they wait for something that gives up late \
             (a timeout?)."
        )
    } else if error_mean * SLOW_FAILURES <= ok_mean {
        format!(
            "Its failures are fast: {error_mean:.0} ms on average against {ok_mean:.0} ms for \
             successes ({share:.1} % of requests): refused early, they pull its percentiles \
             down, not up."
        )
    } else {
        format!(
            "Its failures take about as long as its successes: {error_mean:.0} ms against \
             {ok_mean:.0} ms on average ({share:.1} % of requests)."
        )
    };
    Some((finding, error_mean, ok_mean))
}

fn cache_advice(alerts: &Alerts, app: &AppMetrics, now_ms: u64) -> Vec<Recommendation> {
    let gauges = app.other_metrics(now_ms).gauges;
    let rules = alerts.rules();
    gauges
        .into_iter()
        .filter(|(name, _)| {
            let n = name.to_ascii_lowercase();
            n.contains("cache") && n.contains("hit")
        })
        .filter_map(|(name, value)| {
            // The target: a rule's falling threshold on this gauge, else 70 %.
            let target = rules
                .iter()
                .filter(|r| matches!(r.target.kind(), Ok(TargetKind::Gauge(g)) if super::targets::Pattern::new(g).is_ok_and(|p| p.matches(&name))))
                .find_map(|r| r.warning.or(r.critical).and_then(|t| t.below))
                .unwrap_or(DEFAULT_CACHE_TARGET_PCT);
            (value < target).then(|| Recommendation {
                title: format!("{name} is below its target"),
                severity: Severity::Warning,
                subject: name.clone(),
                since_ms: None,
                findings: vec![format!("The hit rate is {value:.1} % against a target of {target:.0} %.")],
                evidence: vec![ev("hit rate", value, "%", Some(target))],
                suggestion: "Misses cost a full computation each: check the cache's size and eviction \
                             (is it too small for the working set?), its TTLs, and keys that vary \
                             needlessly (user or time in the key)."
                    .to_string(),
                link: format!(
                    "/values?kind=gauge&name={}&{}",
                    crate::model::percent_encode(&name),
                    between(now_ms, 24 * HOUR_MS)
                ),
                data: format!(
                    "/api/v1/metrics/gauge/{}/series?{}&step=5m",
                    crate::model::percent_encode(&name),
                    between(now_ms, 24 * HOUR_MS)
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::live::Sample;
    use crate::server::collector::processes::{ProcessSnapshot, ProcessUsage};
    use crate::server::store::StoreConfig;

    const MIB_BYTES: u64 = 1 << 20;

    /// A store with 15 minutes of host samples at `cpu_pct` and `memory_pct`, and a process
    /// scan every 10 s: `postgres` busy and small, `java` idle and large, `cron` a little of
    /// both.
    fn loaded(cpu_pct: f32, memory_pct: f32) -> (Store, tempfile::TempDir, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let now = crate::server::now_ms();
        for i in 1..=90u64 {
            let at_ms = now - i * 10_000;
            let mut s = Sample { at_ms, seq: i, ..Default::default() };
            s.system.cpu_pct = cpu_pct;
            s.system.memory_pct = memory_pct;
            assert!(store.write_host(s));
            let p = |pid, name: &str, cpu_pct, rss_mib: u64| ProcessUsage {
                pid,
                name: name.into(),
                cpu_pct,
                rss_bytes: rss_mib * MIB_BYTES,
            };
            let scan =
                vec![p(1, "postgres", 150.0, 200), p(2, "java", 1.0, 6000), p(3, "cron", 5.0, 10)];
            assert!(store.write_processes(ProcessSnapshot { at_ms, processes: scan }));
            if i % 20 == 0 {
                assert!(store.flush(Duration::from_secs(10)));
            }
        }
        assert!(store.flush(Duration::from_secs(10)));
        (store, dir, now)
    }

    /// An operation over 15 minutes: 100 samples, `errors` of them failed taking `error_ms`
    /// each, the rest `ok_ms`.
    fn failing(errors: u64, error_ms: f64, ok_ms: f64) -> OperationSummary {
        let count = 100;
        let mean = (error_ms * errors as f64 + ok_ms * (count - errors) as f64) / count as f64;
        OperationSummary {
            name: "api.pay".into(),
            tags: Default::default(),
            window: Some(Window::M15),
            count,
            span_secs: 900,
            rate_per_min: count as f64 / 15.0,
            success_pct: 100.0 - errors as f64,
            error_count: errors,
            min_ms: error_ms.min(ok_ms),
            mean_ms: mean,
            max_ms: error_ms.max(ok_ms),
            p50_ms: ok_ms,
            p90_ms: ok_ms,
            p95_ms: ok_ms,
            p99_ms: error_ms.max(ok_ms),
            latency_class: crate::model::ops::LatencyClass::Slow,
            error_mean_ms: (errors > 0).then_some(error_ms),
            ok_mean_ms: (errors > 0 && errors < count).then_some(ok_ms),
        }
    }

    #[test]
    fn failures_are_told_fast_or_slow_against_successes() {
        let (text, error_mean, ok_mean) = failures_finding(&failing(10, 30_000.0, 200.0)).unwrap();
        assert!(
            text.starts_with("Its failures are slow: 30000 ms on average against 200 ms"),
            "{text}"
        );
        assert_eq!((error_mean, ok_mean), (30_000.0, 200.0));
        let (text, ..) = failures_finding(&failing(10, 3.0, 200.0)).unwrap();
        assert!(
            text.starts_with("Its failures are fast: 3 ms on average against 200 ms"),
            "{text}"
        );
        let (text, ..) = failures_finding(&failing(10, 250.0, 200.0)).unwrap();
        assert!(text.starts_with("Its failures take about as long"), "{text}");
        // Nothing to say without failures, with only failures, or when their durations are
        // unknown.
        assert!(failures_finding(&failing(0, 0.0, 200.0)).is_none());
        assert!(failures_finding(&failing(100, 30_000.0, 200.0)).is_none());
        let unknown = OperationSummary {
            error_mean_ms: None,
            ok_mean_ms: None,
            ..failing(10, 30_000.0, 200.0)
        };
        assert!(failures_finding(&unknown).is_none());
    }

    #[test]
    fn a_slow_operation_with_slow_failures_is_told_to_bound_what_it_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        let now = crate::server::now_ms();
        let op = OperationSummary { p95_ms: 30_000.0, ..failing(10, 30_000.0, 200.0) };
        let host = HostLoad { period: RECENT_PERIOD, ..Default::default() };
        let rec =
            slow_operation(&store, &op, &BTreeMap::new(), &BTreeMap::new(), &host, 2000.0, now);
        assert!(rec.findings.iter().any(|f| f.starts_with("Its failures are slow")), "{rec:?}");
        assert!(
            rec.suggestion.starts_with("Its failures are slow and frequent"),
            "{}",
            rec.suggestion
        );
        let e = rec.evidence.iter().find(|e| e.label.starts_with("failures' mean")).unwrap();
        assert_eq!((e.value, e.compared_to), (30_000.0, Some(200.0)));
        // Its link opens this operation's charts.
        assert!(rec.link.starts_with("/operations?op=api.pay&from="), "{}", rec.link);
    }

    #[test]
    fn cpu_advice_names_the_busiest_processes_as_evidence_and_in_the_suggestion() {
        let (store, _dir, now) = loaded(97.0, 40.0);
        let host = host_load(&store, now - RECENT_MS, now, RECENT_PERIOD);
        let rec = host_advice(&host, now).expect("a saturated host is advised on");
        let text = rec.findings.join(" ");
        assert!(text.contains("The busiest processes: postgres (150 % CPU"), "{text}");
        assert!(rec.suggestion.contains("start with postgres, cron, java"), "{}", rec.suggestion);
        let pg = rec.evidence.iter().find(|e| e.label.contains("postgres")).unwrap();
        assert_eq!((pg.value, pg.unit.as_str()), (150.0, "%"));
        assert!(!text.contains("largest"), "memory is fine: {text}");
    }

    #[test]
    fn memory_advice_names_the_largest_processes() {
        let (store, _dir, now) = loaded(20.0, 95.0);
        let host = host_load(&store, now - RECENT_MS, now, RECENT_PERIOD);
        let rec = host_advice(&host, now).expect("a host short of memory is advised on");
        let text = rec.findings.join(" ");
        assert!(text.contains("The largest processes: java (6000 MiB at most)"), "{text}");
        assert!(rec.suggestion.contains("look at java, postgres, cron"), "{}", rec.suggestion);
        let java = rec.evidence.iter().find(|e| e.label.contains("java")).unwrap();
        assert_eq!((java.value, java.unit.as_str()), (6000.0, "MiB"));
        assert!(!rec.evidence.iter().any(|e| e.label.contains("CPU mean over 15 min (vs")));
        // Not saturated: no advice.
        let (calm, _dir, now) = loaded(20.0, 40.0);
        assert!(host_advice(&host_load(&calm, now - RECENT_MS, now, RECENT_PERIOD), now).is_none());
    }

    /// A slowdown of 45 minutes on a host saturated for its first 40 and calm since: the host
    /// is read over the whole run (from the minute rows), not over the calm last 15 minutes.
    #[test]
    fn a_long_slowdown_reads_the_host_over_its_whole_run() {
        use crate::server::stats::Rollup;
        use crate::server::store::{Batch, TimingRow};
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let now = crate::server::now_ms();
        let run_from = (now - 45 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
        // The store's clock stays at the run's start while the run is written, so that no
        // minute is rolled up before its samples are in (they arrive in a burst, not live).
        let clock = Arc::new(AtomicU64::new(run_from));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig {
            clock: Arc::new({
                let clock = Arc::clone(&clock);
                move || clock.load(Ordering::Relaxed)
            }),
            ..StoreConfig::new(dir.path())
        })
        .unwrap();
        let calm_from = now - 5 * MINUTE_MS;
        for (i, at_ms) in (run_from..now).step_by(10_000).enumerate() {
            let mut s = Sample { at_ms, seq: i as u64 + 1, ..Default::default() };
            s.system.cpu_pct = if at_ms < calm_from { 99.0 } else { 20.0 };
            s.system.memory_pct = 40.0;
            assert!(store.write_host(s));
            if i % 20 == 0 {
                assert!(store.flush(Duration::from_secs(10)));
            }
        }
        // The operation's p95 at 5 s in every minute of the run.
        let timings = (run_from..now)
            .step_by(MINUTE_MS as usize)
            .map(|at_ms| {
                let mut rollup = Rollup::default();
                rollup.record(5000.0, 10, true);
                TimingRow { kind: SeriesKind::Operation, name: "api.pay".into(), at_ms, rollup }
            })
            .collect();
        assert!(store.write(Batch { timings, values: vec![] }));
        assert!(store.flush(Duration::from_secs(10)));
        clock.store(now, Ordering::Relaxed);
        assert!(store.maintain_now());
        let recent = host_load(&store, now - RECENT_MS, now, RECENT_PERIOD);
        assert!(!recent.cpu_hot(), "the last 15 minutes: {:?}", recent.cpu);
        let op = OperationSummary { p95_ms: 5000.0, ..failing(0, 0.0, 5000.0) };
        let none = BTreeMap::new();
        let rec = slow_operation(&store, &op, &none, &BTreeMap::new(), &recent, 2000.0, now);
        let text = rec.findings.join(" ");
        assert!(text.contains("above 2000 ms for about 4"), "{text}");
        assert!(text.contains("The host was saturated since it began (CPU "), "{text}");
        let cpu = rec.evidence.iter().find(|e| e.label == "host CPU, mean since it began");
        assert!(cpu.is_some_and(|e| e.value > CPU_HOT_PCT), "{:?}", rec.evidence);
    }
}
