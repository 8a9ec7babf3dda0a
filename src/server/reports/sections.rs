//! Computing a report's sections from the store (blocking: call off the runtime). Every
//! section reads the operations of the report's scope over its range: minute rows at the
//! edges and hour rows inside (see `store::query`), merged per operation name (tags merged)
//! except in the Errors section, which keeps each tag set apart.

use std::collections::{BTreeMap, HashMap};

use crate::model::alerts::{AlertState, Rule, TargetKind};
use crate::model::history::Tier;
use crate::model::ops::LatencyThresholds;
use crate::model::reports::{
    AlertsSection, CountPoint, DistributionsSection, ErrorRow, ErrorsSection, LatencySection,
    NamedHistogram, NamedSeries, OperationRow, OperationsSection, Scope, Section, SectionBody,
    SectionId, Summary, TargetResult, ThroughputSection, MAX_OPERATION_ROWS, TOP_OPERATIONS,
};
use crate::model::tags::{Selection, Tag};
use crate::server::alerts::targets::{op_value, Pattern};
use crate::server::metrics::tags;
use crate::server::stats::{OperationRegistry, RangeStats};
use crate::server::store::query::{self, Plan};
use crate::server::store::{Retention, SeriesKind};

pub(super) const MINUTE_MS: u64 = 60_000;
/// About this many points per chart.
const CHART_POINTS: u64 = 120;
/// Rows of the Errors section at most.
const MAX_ERROR_ROWS: usize = 200;
/// Alert events the Alerts section lists at most.
const MAX_ALERT_EVENTS: usize = 200;

/// A report's scope, compiled.
pub struct ScopeFilter {
    pattern: Option<Pattern>,
    selection: Selection,
}

impl ScopeFilter {
    /// `Err` names what is wrong with the glob.
    pub fn new(scope: &Scope) -> Result<Self, String> {
        let pattern = scope.operations.as_deref().map(Pattern::new).transpose()?;
        let require = scope.tags.iter().map(|(k, v)| Tag { key: k.clone(), value: v.clone() });
        Ok(ScopeFilter { pattern, selection: Selection { require: require.collect(), by: vec![] } })
    }

    /// Whether the series `key` (name and tags) is in scope.
    pub fn keeps(&self, key: &str) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.matches(tags::name_of(key)))
            && self.selection.keeps(key)
    }
}

/// What every section of one computation reads.
pub struct Input<'a> {
    pub conn: &'a rusqlite::Connection,
    /// For the range statistics, read on one connection per core.
    pub readers: &'a query::Readers,
    pub from_ms: u64,
    pub to_ms: u64,
    pub now_ms: u64,
    pub retention: Retention,
    pub scope: &'a ScopeFilter,
    pub thresholds: LatencyThresholds,
    pub apdex_t_ms: f64,
}

impl Input<'_> {
    fn plan(&self) -> rusqlite::Result<Plan> {
        query::plan_now(self.conn, self.from_ms, self.to_ms, self.now_ms, &self.retention, None)
    }

    /// The scope's series over the range, merged per operation name, busiest first.
    fn by_name(&self, plan: &Plan) -> rusqlite::Result<Vec<(String, RangeStats)>> {
        let mut merged: HashMap<String, RangeStats> = HashMap::new();
        for (key, stats) in query::range_stats_parallel(self.readers, SeriesKind::Operation, plan)?
        {
            if self.scope.keeps(&key) {
                merged.entry(tags::name_of(&key).to_string()).or_default().merge(&stats);
            }
        }
        let mut named: Vec<(String, RangeStats)> = merged.into_iter().collect();
        named.sort_by(|a, b| b.1.count().cmp(&a.1.count()).then(a.0.cmp(&b.0)));
        Ok(named)
    }

    fn span_secs(&self, plan: &Plan) -> u64 {
        plan.to_ms.saturating_sub(plan.from_ms).div_ceil(1000).max(1)
    }

    /// A chart's step: about [`CHART_POINTS`] whole minutes, whole hours where only hour
    /// rows exist; and the plan that reads at that step.
    fn chart_plan(&self) -> rusqlite::Result<(Plan, u64)> {
        let span = self.to_ms.saturating_sub(self.from_ms).max(1);
        let asked = span.div_ceil(CHART_POINTS).div_ceil(MINUTE_MS).max(1) * MINUTE_MS;
        let span = (self.from_ms, self.to_ms);
        query::series_plan(self.conn, span, asked, self.now_ms, &self.retention)
    }
}

/// Computes one section (not Alerts, Recommendations or Comparison, which read other owners:
/// see `reports::Reports`). `rules` are the enabled alert rules, for the Summary's targets.
pub fn compute(input: &Input<'_>, id: SectionId, rules: &[Rule]) -> rusqlite::Result<Section> {
    let plan = input.plan()?;
    let mut section = Section {
        id,
        from_ms: plan.from_ms,
        to_ms: plan.to_ms,
        tier: plan.tier,
        relative_error: OperationRegistry::RELATIVE_ERROR,
        computed_ms: input.now_ms,
        empty: None,
        body: SectionBody::NotAsked,
    };
    let nothing = "no operation of this scope has samples in this range";
    match id {
        SectionId::Summary => {
            let named = input.by_name(&plan)?;
            match summary(input, &plan, &named, rules) {
                Some(s) => section.body = SectionBody::Summary(s),
                None => section.empty = Some(nothing.into()),
            }
        }
        SectionId::Operations => {
            let named = input.by_name(&plan)?;
            let span = input.span_secs(&plan);
            let left_out = named.len().saturating_sub(MAX_OPERATION_ROWS);
            let rows: Vec<OperationRow> = named
                .iter()
                .take(MAX_OPERATION_ROWS)
                .filter_map(|(name, s)| operation_row(name, s, span, input))
                .collect();
            if rows.is_empty() {
                section.empty = Some(nothing.into());
            }
            section.body = SectionBody::Operations(OperationsSection {
                rows,
                apdex_t_ms: input.apdex_t_ms,
                left_out,
            });
        }
        SectionId::Latency => {
            let named = input.by_name(&plan)?;
            let (chart, step_ms) = input.chart_plan()?;
            let mut series = Vec::new();
            for (name, _) in named.iter().take(TOP_OPERATIONS) {
                let keep = |key: &str| input.scope.keeps(key);
                let points = query::series_points(
                    input.conn,
                    SeriesKind::Operation,
                    name,
                    keep,
                    &chart,
                    step_ms,
                )?
                .unwrap_or_default();
                series.push(NamedSeries { name: name.clone(), points });
            }
            if series.is_empty() {
                section.empty = Some(nothing.into());
            }
            (section.from_ms, section.tier) = (chart.from_ms, chart.tier);
            section.body = SectionBody::Latency(LatencySection { step_ms, series });
        }
        SectionId::Throughput => {
            let (chart, step_ms) = input.chart_plan()?;
            let mut steps: BTreeMap<u64, CountPoint> = BTreeMap::new();
            query::scan_counts(
                input.conn,
                SeriesKind::Operation,
                &chart,
                |at, key, count, errors| {
                    if input.scope.keeps(key) {
                        let slot =
                            chart.from_ms + at.saturating_sub(chart.from_ms) / step_ms * step_ms;
                        let p = steps.entry(slot).or_insert(CountPoint {
                            at_ms: slot,
                            count: 0,
                            errors: 0,
                        });
                        p.count = p.count.saturating_add(count);
                        p.errors = p.errors.saturating_add(errors.min(count));
                    }
                },
            )?;
            let points: Vec<CountPoint> = steps.into_values().collect();
            if points.is_empty() {
                section.empty = Some(nothing.into());
            }
            (section.from_ms, section.tier) = (chart.from_ms, chart.tier);
            section.body = SectionBody::Throughput(ThroughputSection { step_ms, points });
        }
        SectionId::Distributions => {
            let named = input.by_name(&plan)?;
            let histograms: Vec<NamedHistogram> = named
                .iter()
                .take(TOP_OPERATIONS)
                .map(|(name, s)| NamedHistogram {
                    name: name.clone(),
                    count: s.count(),
                    bins: s.histogram(),
                })
                .collect();
            if histograms.is_empty() {
                section.empty = Some(nothing.into());
            }
            section.body = SectionBody::Distributions(DistributionsSection { histograms });
        }
        SectionId::Errors => {
            let mut rows: Vec<ErrorRow> =
                query::range_stats_parallel(input.readers, SeriesKind::Operation, &plan)?
                    .into_iter()
                    .filter(|(key, s)| input.scope.keeps(key) && s.errors() > 0)
                    .map(|(key, s)| {
                        let (ok_mean_ms, failed_mean_ms) = s.split_means();
                        ErrorRow {
                            name: tags::name_of(&key).to_string(),
                            tags: tags::tags_of(&key)
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                            count: s.count(),
                            errors: s.errors(),
                            error_pct: 100.0 * s.errors() as f64 / s.count().max(1) as f64,
                            failed_mean_ms,
                            ok_mean_ms,
                        }
                    })
                    .collect();
            rows.sort_by(|a, b| b.errors.cmp(&a.errors).then(a.name.cmp(&b.name)));
            rows.truncate(MAX_ERROR_ROWS);
            if rows.is_empty() {
                section.empty = Some("no operation of this scope failed in this range".into());
            }
            section.body = SectionBody::Errors(ErrorsSection { rows });
        }
        SectionId::Alerts => {
            let filter = crate::server::store::alerts::HistoryFilter {
                from_ms: input.from_ms,
                to_ms: input.to_ms,
                rule: None,
                severity: None,
                q: None,
                limit: crate::server::store::alerts::MAX_HISTORY_EVENTS,
            };
            let (events, more) = crate::server::store::alerts::history(input.conn, &filter)?;
            let mut fired: Vec<_> =
                events.into_iter().filter(|e| e.to == AlertState::Firing).collect();
            let truncated = more || fired.len() > MAX_ALERT_EVENTS;
            fired.truncate(MAX_ALERT_EVENTS);
            if fired.is_empty() {
                section.empty = Some("no alert fired in this range".into());
            }
            (section.from_ms, section.tier) = (input.from_ms, Tier::Raw);
            section.body = SectionBody::Alerts(AlertsSection { events: fired, truncated });
        }
        SectionId::Host | SectionId::Recommendations | SectionId::Comparison => {}
    }
    Ok(section)
}

/// The Summary: the whole scope merged, and every operation target of `rules` judged over
/// the range for each operation it names.
fn summary(
    input: &Input<'_>,
    plan: &Plan,
    named: &[(String, RangeStats)],
    rules: &[Rule],
) -> Option<Summary> {
    let mut all = RangeStats::default();
    named.iter().for_each(|(_, s)| all.merge(s));
    let count = all.count();
    if count == 0 {
        return None;
    }
    let span = input.span_secs(plan);
    let [p50_ms, _, p95_ms, p99_ms] = all.summary_quantiles();
    let mut targets = Vec::new();
    for rule in rules.iter().filter(|r| r.enabled) {
        let Ok(TargetKind::Operation { glob, stat, .. }) = rule.target.kind() else { continue };
        let Ok(pattern) = Pattern::new(glob) else { continue };
        let threshold = rule.critical.as_ref().or(rule.warning.as_ref());
        let Some(threshold) = threshold else { continue };
        for (name, s) in named.iter().filter(|(n, _)| pattern.matches(n)) {
            if !rule.target.tags.is_empty() || s.count() < rule.min_count {
                continue;
            }
            let Some(summary) = s.summary(name, span, &input.thresholds) else { continue };
            let value = op_value(&summary, stat);
            if !value.is_finite() {
                continue;
            }
            let raise = threshold.raise();
            let side = if threshold.above.is_some() { "above" } else { "below" };
            targets.push(TargetResult {
                rule: rule.name.clone(),
                series: name.clone(),
                target: format!(
                    "{} {side} {}",
                    stat.as_str(),
                    crate::server::alerts::number_text(raise)
                ),
                value,
                passed: !threshold.breached(value),
            });
        }
    }
    targets.truncate(MAX_OPERATION_ROWS);
    Some(Summary {
        operations: named.len(),
        count,
        rate_per_min: count as f64 * 60.0 / span as f64,
        error_pct: 100.0 * all.errors() as f64 / count as f64,
        p50_ms,
        p95_ms,
        p99_ms,
        latency_class: input.thresholds.classify(p95_ms),
        targets,
    })
}

fn operation_row(name: &str, s: &RangeStats, span: u64, input: &Input<'_>) -> Option<OperationRow> {
    let summary = s.summary(name, span, &input.thresholds)?;
    Some(OperationRow {
        name: name.to_string(),
        tags: BTreeMap::new(),
        count: summary.count,
        rate_per_min: summary.rate_per_min,
        success_pct: summary.success_pct,
        p50_ms: summary.p50_ms,
        p90_ms: summary.p90_ms,
        p95_ms: summary.p95_ms,
        p99_ms: summary.p99_ms,
        max_ms: summary.max_ms,
        latency_class: summary.latency_class,
        apdex: s.apdex(input.apdex_t_ms).unwrap_or(0.0),
    })
}
