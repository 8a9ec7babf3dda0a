//! Recommendations: advice computed from this server's own data, never generic. Each one says
//! what was found, the numbers behind it, what to try, and where the chart and the data are.
//!
//! - **A slow operation** (p95 over the last 15 minutes above the "good" latency bound, or an
//!   operation with a firing alert): when the slowdown began (the first minute of the current
//!   run above the bound), whether the tail or the median moved against the baseline (the five
//!   hours before the last hour), whether throughput rose at the same time (load-driven) or
//!   not, whether the host was saturated then (CPU, memory), which other operations slowed at
//!   the same time (a shared dependency), and whether its errors rose too.
//! - **The host**: CPU or memory saturated over the last 15 minutes.
//! - **A cache** (a gauge named like `*cache*hit*`): its hit rate against its alert rule's
//!   target, or 70 % without one.
//!
//! The collector does not keep the top processes per sample, so host advice names no process.

use std::collections::BTreeMap;

use super::Alerts;
use crate::model::alerts::{
    AlertState, Evidence, Recommendation, Recommendations, Severity, TargetKind,
};
use crate::model::history::Tier;
use crate::model::ops::{OperationSummary, Window};
use crate::server::metrics::AppMetrics;
use crate::server::stats::RangeStats;
use crate::server::store::host::field_index;
use crate::server::store::{query, SeriesKind, Store};

const MINUTE_MS: u64 = 60_000;
/// The recent period judged.
const RECENT_MS: u64 = 15 * MINUTE_MS;
/// The baseline: from six hours ago to one hour ago.
const BASELINE_FROM_MS: u64 = 6 * 3_600_000;
const BASELINE_TO_MS: u64 = 3_600_000;
/// Most slow operations examined.
const MAX_SLOW: usize = 10;
/// A ratio against the baseline this large counts as "moved".
const MOVED: f64 = 1.5;
/// A cache hit rate below this is advised on when no rule sets a target.
const DEFAULT_CACHE_TARGET_PCT: f64 = 70.0;

fn ev(label: &str, value: f64, unit: &str, compared_to: Option<f64>) -> Evidence {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    Evidence {
        label: label.to_string(),
        value: round(value),
        unit: unit.to_string(),
        compared_to: compared_to.map(round),
    }
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
    let host = host_load(store, recent_from, now_ms);
    if let Some(rec) = host_advice(&host) {
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

/// Host CPU and memory over the recent period: (mean, max) of each, when stored.
#[derive(Default)]
struct HostLoad {
    cpu: Option<(f64, f64)>,
    memory: Option<(f64, f64)>,
}

fn host_load(store: &Store, from_ms: u64, to_ms: u64) -> HostLoad {
    let fields: Vec<usize> =
        ["cpu_pct", "memory_pct"].iter().filter_map(|f| field_index(f)).collect();
    let points = store
        .readers()
        .with(|c| query::host_points(c, Tier::Raw, from_ms, to_ms, MINUTE_MS, &fields))
        .unwrap_or_default();
    let summary = |i: usize| -> Option<(f64, f64)> {
        let means: Vec<f64> =
            points.iter().filter_map(|p| p.mean.get(i).copied().flatten()).collect();
        let max =
            points.iter().filter_map(|p| p.max.get(i).copied().flatten()).fold(f64::NAN, f64::max);
        (!means.is_empty()).then(|| (means.iter().sum::<f64>() / means.len() as f64, max))
    };
    HostLoad { cpu: summary(0), memory: summary(1) }
}

fn host_advice(host: &HostLoad) -> Option<Recommendation> {
    let (cpu_mean, cpu_max) = host.cpu.unwrap_or((0.0, 0.0));
    let (mem_mean, mem_max) = host.memory.unwrap_or((0.0, 0.0));
    let cpu_hot = cpu_mean > 85.0;
    let mem_hot = mem_mean > 90.0;
    if !cpu_hot && !mem_hot {
        return None;
    }
    let mut findings = Vec::new();
    let mut evidence = Vec::new();
    if cpu_hot {
        findings.push(format!(
            "Host CPU averaged {cpu_mean:.0} % over the last 15 minutes (peak {cpu_max:.0} %)."
        ));
        evidence.push(ev("host CPU, mean over 15 min", cpu_mean, "%", Some(85.0)));
    }
    if mem_hot {
        findings.push(format!("Memory was {mem_mean:.0} % used on average (peak {mem_max:.0} %)."));
        evidence.push(ev("host memory, mean over 15 min", mem_mean, "%", Some(90.0)));
    }
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
        suggestion: if cpu_hot {
            "Every operation on this host competes for CPU: find the busiest process (top -o %CPU), \
             move batch work off peak hours, or add cores."
                .into()
        } else {
            "The host may start swapping: find the largest processes (top -o %MEM) and bound \
             their caches, or add memory."
                .into()
        },
        link: "/?range=1h".into(),
        data: "/api/v1/history/host?from=-1h&step=1m&fields=cpu_pct,memory_pct".into(),
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
            let plan = query::plan_now(c, from_ms, to_ms.max(from_ms + 1), now_ms, &retention)?;
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
    let since_ms = store
        .readers()
        .with(|c| {
            let from = now_ms.saturating_sub(BASELINE_FROM_MS);
            let plan = query::plan_now(c, from, now_ms, now_ms, &store.retention())?;
            query::series_points(c, SeriesKind::Operation, name, |_| true, &plan, MINUTE_MS)
        })
        .ok()
        .flatten()
        .and_then(|points| {
            let mut since = None;
            let mut last_at = now_ms;
            for p in points.iter().rev() {
                if last_at.saturating_sub(p.at_ms) > 3 * MINUTE_MS || p.p95_ms <= good_ms {
                    break;
                }
                since = Some(p.at_ms);
                last_at = p.at_ms;
            }
            since
        });
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
            let span_min = (BASELINE_FROM_MS - BASELINE_TO_MS) as f64 / MINUTE_MS as f64;
            let base_rate = b.count() as f64 / span_min;
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
    let host_busy = host.cpu.is_some_and(|(mean, _)| mean > 85.0)
        || host.memory.is_some_and(|(mean, _)| mean > 90.0);
    if let Some((cpu, _)) = host.cpu {
        evidence.push(ev("host CPU, mean over 15 min", cpu, "%", None));
        findings.push(if host_busy {
            format!("The host was saturated meanwhile (CPU {cpu:.0} %).")
        } else {
            format!("The host was not saturated (CPU {cpu:.0} %).")
        });
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
    let suggestion = if !together.is_empty() {
        "Several operations slowed together: look at what they share (the database, a cache, an \
         upstream API) before the operation itself."
    } else if load_driven {
        "The slowdown follows the load: add capacity or concurrency limits, cache repeated work, \
         or queue it; compare p95 against throughput on the Operations page."
    } else if host_busy {
        "The host was saturated: the operation waits for CPU or memory; fix the host first."
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
        link: "/operations?range=6h".to_string(),
        data: format!(
            "/api/v1/operations/{}/series?from=-6h&step=1m",
            crate::model::percent_encode(name)
        ),
    }
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
                link: format!("/values?kind=gauge&name={}&range=24h", crate::model::percent_encode(&name)),
                data: format!("/api/v1/metrics/gauge/{}/series?from=-24h&step=5m", crate::model::percent_encode(&name)),
            })
        })
        .collect()
}
