//! "Test this rule": replays a rule over a stored range (the last hour by default) at one
//! evaluation per minute, with the same state machine as live evaluation, and says when it
//! would have gone pending, fired and resolved.
//!
//! What each step sees: operation and event statistics over the rule's window ending at the
//! step, merged exactly from the stored minute rows of each matching series (so a p95 over
//! 5 m is the p95 of those five minutes, within the sketch's bound); host figures as the
//! minute's mean; counters and gauges as stored per minute. Vitals' own figures and the disk
//! fill are not stored, so those rules cannot be replayed (the answer says so).
//!
//! Bounded whatever matches: an operation or event rule replays at most [`MAX_SERIES`] series
//! (the answer's note says when more matched), reading the range's minute rows once, oldest
//! first, and holding only each series' window of them.

use std::collections::{BTreeMap, HashMap, VecDeque};

use axum::http::StatusCode;

use super::engine::{self, FlapSettings, InstanceState, Observation};
use super::targets::{op_value, Pattern, HOST_SERIES};
use crate::model::alerts::{AlertEvent, HostMetric, Rule, RuleTestResult, TargetKind};
use crate::model::history::Tier;
use crate::server::error::ApiError;
use crate::server::metrics::{tags, AppMetrics};
use crate::server::stats::{RangeStats, Rollup};
use crate::server::store::host::field_index;
use crate::server::store::{query, SeriesKind, Store};

const STEP_MS: u64 = 60_000;
/// Longest range a test replays: one day of minutes.
pub const MAX_RANGE_MS: u64 = 24 * 3_600_000;
/// Most transitions one answer lists.
const MAX_EVENTS: usize = 500;
/// One series being replayed: its window's minutes, and what each step judged so far saw.
type Replay = (VecDeque<(u64, Rollup)>, Vec<Observation>);

/// Most series of an operation or event rule one test replays (the first seen in the range);
/// the answer's note says when more matched.
pub const MAX_SERIES: usize = 1_000;

fn failed(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "A rule test query failed.");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the rule test query failed")
}

/// Replays `rule` over `[from_ms, to_ms)` (blocking: reads the store).
pub fn run(
    rule: &Rule,
    store: &Store,
    app: &AppMetrics,
    from_ms: u64,
    to_ms: u64,
    flap: FlapSettings,
) -> Result<RuleTestResult, ApiError> {
    if to_ms.saturating_sub(from_ms) > MAX_RANGE_MS {
        return Err(ApiError::bad_field("from", "from: a rule test covers at most 24 hours"));
    }
    let from_ms = from_ms / STEP_MS * STEP_MS;
    // Whole minutes only: the minute under way is not complete (its rate would read low), and
    // a step past it would be stamped in the future.
    let to_ms = (to_ms / STEP_MS * STEP_MS).max(from_ms);
    let mut result =
        RuleTestResult { from_ms, to_ms, step_secs: STEP_MS / 1000, ..Default::default() };
    let steps: Vec<u64> = (from_ms..to_ms).step_by(STEP_MS as usize).map(|t| t + STEP_MS).collect();
    let kind = rule.target.kind().map_err(|e| ApiError::bad_field(e.field.clone(), e.message))?;
    // Whether an operation or event rule matched more series than are replayed.
    let mut more_series = false;
    // Each series' value at the end of each step.
    let series: BTreeMap<String, (BTreeMap<String, String>, Vec<Observation>)> = match kind {
        TargetKind::Host(metric) => {
            let Some(values) = host_values(store, metric, from_ms, to_ms, &steps)? else {
                result.note =
                    Some(format!("host {} is not stored; it cannot be replayed", metric.as_str()));
                return Ok(result);
            };
            let labels = BTreeMap::from([("host".to_string(), metric.as_str().to_string())]);
            BTreeMap::from([(HOST_SERIES.to_string(), (labels, values))])
        }
        TargetKind::Operation { glob, stat, window } | TargetKind::Event { glob, stat, window } => {
            let pattern = Pattern::new(glob).map_err(|e| ApiError::bad_field("target", e))?;
            let wanted = if rule.target.operation.is_some() {
                SeriesKind::Operation
            } else {
                SeriesKind::Event
            };
            let label = if wanted == SeriesKind::Operation { "operation" } else { "event" };
            let window_ms = window.secs() * 1000;
            let thresholds = app.thresholds();
            // What a step sees of one series: its window's minutes merged.
            let observe = |key: &str, minutes: &VecDeque<(u64, Rollup)>, end: u64| {
                let mut stats = RangeStats::default();
                for (at, rollup) in minutes {
                    if *at + STEP_MS <= end && *at + window_ms >= end {
                        stats.add(rollup);
                    }
                }
                match stats.summary(key, window.secs(), &thresholds) {
                    None => Observation::NoData,
                    Some(s) => {
                        let v = op_value(&s, stat);
                        if !v.is_finite() {
                            Observation::NoData
                        } else if s.count < rule.min_count {
                            Observation::TooFew(v)
                        } else {
                            Observation::Value(v)
                        }
                    }
                }
            };
            // The minute rows come oldest first: each series keeps only its window's minutes,
            // and a step is judged for every series once the rows reach its end, so memory
            // holds at most MAX_SERIES windows, whatever the range.
            let mut replays: HashMap<String, Replay> = HashMap::new();
            let mut judged = 0;
            let close_steps_before =
                |replays: &mut HashMap<String, Replay>, judged: &mut usize, at: u64| {
                    while let Some(&end) = steps.get(*judged).filter(|&&end| end <= at) {
                        for (key, (minutes, observations)) in replays.iter_mut() {
                            observations.push(observe(key, minutes, end));
                            let oldest = (end + STEP_MS).saturating_sub(window_ms);
                            while minutes.front().is_some_and(|(m, _)| *m < oldest) {
                                minutes.pop_front();
                            }
                        }
                        *judged += 1;
                    }
                };
            let span = (from_ms.saturating_sub(window_ms), to_ms);
            store
                .readers()
                .with(|c| {
                    query::each_timing_minute(c, span, |kind, key, at, rollup| {
                        let keep = kind == wanted
                            && pattern.matches(tags::name_of(&key))
                            && rule.target.tags.iter().all(|(k, v)| {
                                tags::tags_of(&key).any(|(tk, tv)| tk == k && tv == v)
                            });
                        if !keep {
                            return;
                        }
                        close_steps_before(&mut replays, &mut judged, at);
                        let held = replays.len();
                        match replays.get_mut(&key) {
                            Some((minutes, _)) => minutes.push_back((at, rollup)),
                            None if held < MAX_SERIES => {
                                let before = vec![Observation::NoData; judged];
                                replays.insert(key, (VecDeque::from([(at, rollup)]), before));
                            }
                            None => more_series = true,
                        }
                    })
                })
                .map_err(failed)?;
            close_steps_before(&mut replays, &mut judged, u64::MAX);
            replays
                .into_iter()
                .map(|(key, (_, observations))| {
                    let mut labels: BTreeMap<String, String> =
                        tags::tags_of(&key).map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    labels.insert(label.to_string(), tags::name_of(&key).to_string());
                    (key, (labels, observations))
                })
                .collect()
        }
        TargetKind::Gauge(glob) | TargetKind::Counter(glob) => {
            let pattern = Pattern::new(glob).map_err(|e| ApiError::bad_field("target", e))?;
            let (wanted, label) = if rule.target.gauge.is_some() {
                (crate::model::values::ValueKind::Gauge, "gauge")
            } else {
                (crate::model::values::ValueKind::Counter, "counter")
            };
            let names = store.readers().with(|c| query::value_names(c, 5_000)).map_err(failed)?;
            let mut out = BTreeMap::new();
            for (_, name) in names.into_iter().filter(|(k, n)| *k == wanted && pattern.matches(n)) {
                // Only minutes with an update are stored; live, a gauge keeps its last value
                // and a counter reads 0 for a minute without increments, until the series
                // has been idle for `IDLE_MS`: read that far back, and carry them so.
                let hold_ms = crate::server::metrics::IDLE_MS;
                let since = from_ms.saturating_sub(hold_ms);
                let mut points = store
                    .readers()
                    .with(|c| query::value_points(c, wanted.into(), &name, since, to_ms))
                    .map_err(failed)?
                    .unwrap_or_default();
                points.sort_by_key(|&(at, _)| at);
                let counter = wanted == crate::model::values::ValueKind::Counter;
                let mut next = 0;
                let mut last: Option<(u64, f64)> = None;
                let observations = steps
                    .iter()
                    .map(|end| {
                        let minute = end - STEP_MS;
                        while let Some(&(at, v)) = points.get(next).filter(|(at, _)| *at <= minute)
                        {
                            last = Some((at, v));
                            next += 1;
                        }
                        match last {
                            Some((at, v)) if at == minute => Observation::Value(v),
                            Some((at, _)) if minute - at < hold_ms && counter => {
                                Observation::Value(0.0)
                            }
                            Some((at, v)) if minute - at < hold_ms => Observation::Value(v),
                            _ => Observation::NoData,
                        }
                    })
                    .collect();
                out.insert(
                    name.clone(),
                    (BTreeMap::from([(label.to_string(), name)]), observations),
                );
            }
            out
        }
        TargetKind::Vitals(metric) => {
            result.note =
                Some(format!("vitals {} is not stored; it cannot be replayed", metric.as_str()));
            return Ok(result);
        }
    };
    result.series = series.len();
    if series.is_empty() {
        result.note = Some("no stored series matches the rule in this range".to_string());
    } else if more_series {
        result.note = Some(format!(
            "more than {MAX_SERIES} series match the rule in this range: the first {MAX_SERIES} \
             seen were replayed"
        ));
    }
    // Live, a series is judged every `cadence` seconds: a minute without data is that many
    // "no data" evaluations (the no-data policy counts evaluations, not minutes).
    let cadence = rule.target.window.map_or(1, super::targets::cadence_secs).max(1);
    let per_minute = (STEP_MS / 1000 / cadence).max(1);
    for (key, (labels, observations)) in series {
        let mut st = InstanceState::default();
        let mut labels = labels;
        labels.insert("alertname".to_string(), rule.name.clone());
        let judged = steps.iter().zip(observations).flat_map(|(end, observation)| {
            let times = if matches!(observation, Observation::NoData) { per_minute } else { 1 };
            (0..times).rev().map(move |k| (end - k * cadence * 1000, observation))
        });
        for (end, observation) in judged {
            // Live holds no instance for a series at rest: no data then changes nothing.
            if matches!(observation, Observation::NoData) && st.is_idle() {
                continue;
            }
            if let Some(t) = engine::evaluate(rule, &mut st, observation, end, flap) {
                if result.events.len() >= MAX_EVENTS {
                    break;
                }
                result.events.push(AlertEvent {
                    id: result.events.len() as u64 + 1,
                    at_ms: end,
                    rule: rule.name.clone(),
                    instance: super::instance_id(&rule.name, &key),
                    series: super::series_text(&key),
                    labels: labels.clone(),
                    from: t.from,
                    to: t.to,
                    severity: t.severity,
                    value: t.value,
                    threshold: t.threshold,
                    note: t.note.to_string(),
                    notifications: Vec::new(),
                });
            }
        }
    }
    result.events.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then(a.series.cmp(&b.series)));
    Ok(result)
}

/// The host figure per step (the minute's mean); `None` when the figure is not stored.
fn host_values(
    store: &Store,
    metric: HostMetric,
    from_ms: u64,
    to_ms: u64,
    steps: &[u64],
) -> Result<Option<Vec<Observation>>, ApiError> {
    let fields: Vec<&str> = match metric {
        HostMetric::CpuPct => vec!["cpu_pct"],
        HostMetric::MemoryPct => vec!["memory_pct"],
        HostMetric::SwapPct => vec!["swap_used_bytes", "swap_total_bytes"],
        HostMetric::Load1 => vec!["load_avg_1"],
        HostMetric::Load5 => vec!["load_avg_5"],
        HostMetric::Load15 => vec!["load_avg_15"],
        HostMetric::DiskUsedPct => return Ok(None),
        HostMetric::NetRxBytesPerSec => vec!["net_rx_bytes_per_sec"],
        HostMetric::NetTxBytesPerSec => vec!["net_tx_bytes_per_sec"],
        HostMetric::DiskReadBytesPerSec => vec!["disk_read_bytes_per_sec"],
        HostMetric::DiskWriteBytesPerSec => vec!["disk_write_bytes_per_sec"],
    };
    let indices: Vec<usize> = fields.iter().filter_map(|f| field_index(f)).collect();
    let points = store
        .readers()
        .with(|c| query::host_points(c, Tier::Minute, from_ms, to_ms, STEP_MS, &indices))
        .map_err(failed)?;
    let by_minute: HashMap<u64, Option<f64>> = points
        .into_iter()
        .map(|p| {
            let value = match p.mean.as_slice() {
                [Some(v)] => Some(*v),
                [Some(used), Some(total)] if *total > 0.0 => Some(100.0 * used / total),
                [Some(_), Some(_)] => Some(0.0),
                _ => None,
            };
            (p.at_ms, value)
        })
        .collect();
    Ok(Some(
        steps
            .iter()
            .map(|end| match by_minute.get(&(end - STEP_MS)).copied().flatten() {
                Some(v) if v.is_finite() => Observation::Value(v),
                _ => Observation::NoData,
            })
            .collect(),
    ))
}
