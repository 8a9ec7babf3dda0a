//! The rules every Vitals starts with, useful before anyone writes one: host CPU, memory and
//! disk, slow and failing operations, the live stream's latency and StatsD drops. Each can be
//! changed, disabled or deleted through the API (a deletion is remembered); `[alerts]
//! default-rules = false` starts without them.

use crate::model::alerts::{
    HostMetric, NoDataPolicy, OpStat, Rule, RuleSource, Target, Threshold, VitalsMetric,
};
use crate::model::ops::{LatencyThresholds, Window};

/// The built-in rules; the slow-operation rule follows the "good" latency bound.
pub fn rules(thresholds: &LatencyThresholds) -> Vec<Rule> {
    let rule = |name: &str, target: Target, summary: &str| {
        let mut r = Rule::new(name, target);
        r.summary = summary.to_string();
        r.source = RuleSource::Default;
        r
    };
    let mut cpu = rule(
        "host cpu high",
        Target::host(HostMetric::CpuPct),
        "Host CPU is at {{value}} % (over {{threshold}} %)",
    );
    cpu.critical = Some(Threshold::above(90.0, 85.0));
    cpu.for_secs = 300;
    let mut memory = rule(
        "host memory high",
        Target::host(HostMetric::MemoryPct),
        "Host memory is {{value}} % used (over {{threshold}} %)",
    );
    memory.critical = Some(Threshold::above(90.0, 85.0));
    memory.for_secs = 60;
    let mut disk = rule(
        "host disk full",
        Target::host(HostMetric::DiskUsedPct),
        "The fullest disk is {{value}} % used (over {{threshold}} %)",
    );
    disk.critical = Some(Threshold::above(90.0, 88.0));
    disk.for_secs = 60;
    let good = thresholds.good_ms;
    let mut slow = rule(
        "operation slow",
        Target::operation("*", OpStat::P95, Window::M1),
        "{{series}}: p95 is {{value}} ms, above the good bound of {{threshold}} ms",
    );
    slow.warning = Some(Threshold::above(good, good * 0.9));
    slow.for_secs = 120;
    slow.min_count = 5;
    let mut errors = rule(
        "operation errors",
        Target::operation("*", OpStat::ErrorRate, Window::M5),
        "{{series}}: {{value}} % of requests failed (over {{threshold}} %)",
    );
    errors.warning = Some(Threshold::above(5.0, 4.0));
    errors.for_secs = 300;
    errors.min_count = 20;
    let mut ws = rule(
        "live stream slow",
        Target::vitals(VitalsMetric::WsTickP99Ms),
        "The live stream's tick-to-send p99 is {{value}} ms (over {{threshold}} ms)",
    );
    ws.warning = Some(Threshold::above(100.0, 80.0));
    ws.for_secs = 60;
    ws.no_data = NoDataPolicy::Ok;
    let mut drops = rule(
        "statsd drops",
        Target::vitals(VitalsMetric::StatsdDropped),
        "StatsD dropped {{value}} samples or datagrams in the last minute (see /api/v1/ingest/stats)",
    );
    drops.warning = Some(Threshold { above: Some(0.0), ..Default::default() });
    let mut cache = rule(
        "report cache misses",
        Target::vitals(VitalsMetric::ReportCacheHitPct),
        "The report cache answered only {{value}} % of look-ups in the last minute (under {{threshold}} %)",
    );
    cache.warning = Some(Threshold::below(70.0, 75.0));
    cache.for_secs = 300;
    cache.no_data = NoDataPolicy::Ok;
    vec![cpu, memory, disk, slow, errors, ws, drops, cache]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_rule_is_valid_and_named_once() {
        let rules = rules(&LatencyThresholds::default());
        let mut names: Vec<_> = rules.iter().map(|r| r.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), rules.len());
        for r in &rules {
            r.validate().unwrap_or_else(|e| panic!("{}: {e}", r.name));
        }
    }
}
