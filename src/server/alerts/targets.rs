//! What a rule's target reads at one evaluation: one observation per matching series, with the
//! labels that identify it. Operation and event statistics are computed once per evaluation
//! for each (kind, window) some rule needs, only for the series some rule matches and that are
//! [`Due`]; host figures come from the tick's sample; Vitals' own counters become per-minute
//! increases.
//!
//! ## Cadence
//! A statistic over a window is judged every sixtieth of that window ([`cadence_secs`]): over
//! 1 minute on every tick, over 5 minutes every 5 s, over 15 minutes every 15 s, over an hour
//! every minute, as Prometheus judges a rule once per evaluation interval rather than on every
//! sample. A statistic over an hour moves by little in a second, and judging each series at
//! its cadence is what keeps an evaluation cheap with thousands of series. The series of one
//! window are spread over its cadence by a hash of their key, so each tick judges about
//! 1/cadence of them; host, Vitals, gauge and counter targets are judged on every tick.

use std::collections::{BTreeMap, HashMap, VecDeque};

use globset::Glob;
use regex_automata::meta::Regex;

use super::engine::Observation;
use crate::model::alerts::{HostMetric, OpStat, Rule, TargetKind, VitalsMetric};
use crate::model::live::SystemMetrics;
use crate::model::ops::{OperationSummary, Window};
use crate::server::metrics::{tags, AppMetrics, TimingKind};
use crate::server::stats::{key_hash, SeriesFigures, SeriesKey};

/// The series a host, Vitals or single-value target is about.
pub const HOST_SERIES: &str = "host";

/// A compiled name pattern (a glob; `*` any run, `?` one character). The forms rules use most,
/// a literal name, `prefix*` and `*suffix`, are matched without the glob's regex: every tick
/// matches each due series against each rule's pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The glob's regex, as globset's matcher builds it (whose build panics where this one
    /// returns an error: a glob nested past the engine's limits).
    regex: Regex,
    text: Box<str>,
    fast: Fast,
}

/// A pattern's match without the regex, when its glob has that shape.
#[derive(Clone, Debug)]
enum Fast {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Glob,
}

impl Fast {
    fn of(glob: &str) -> Fast {
        // Everything that is not a literal character in globset's syntax.
        let literal = |s: &str| !s.contains(['*', '?', '[', ']', '{', '}', '\\']);
        if literal(glob) {
            Fast::Exact(glob.into())
        } else if let Some(prefix) = glob.strip_suffix('*').filter(|p| literal(p)) {
            Fast::Prefix(prefix.into())
        } else if let Some(suffix) = glob.strip_prefix('*').filter(|s| literal(s)) {
            Fast::Suffix(suffix.into())
        } else {
            Fast::Glob
        }
    }
}

impl Pattern {
    pub fn new(glob: &str) -> Result<Pattern, String> {
        let parsed = Glob::new(glob).map_err(|e| e.kind().to_string())?;
        // globset's settings (`new_regex` in its lib.rs): bytes, `.` matching a newline.
        let syntax =
            regex_automata::util::syntax::Config::new().utf8(false).dot_matches_new_line(true);
        let config = Regex::config()
            .utf8_empty(false)
            .nfa_size_limit(Some(10 << 20))
            .hybrid_cache_capacity(10 << 20);
        let regex = Regex::builder()
            .syntax(syntax)
            .configure(config)
            .build(parsed.regex())
            .map_err(|_| "too complex a pattern (nested or long past what it can match)")?;
        Ok(Pattern { regex, text: glob.into(), fast: Fast::of(glob) })
    }

    pub fn matches(&self, name: &str) -> bool {
        match &self.fast {
            Fast::Exact(literal) => name == &**literal,
            Fast::Prefix(prefix) => name.starts_with(&**prefix),
            Fast::Suffix(suffix) => name.ends_with(&**suffix),
            Fast::Glob => self.regex.is_match(name.as_bytes()),
        }
    }

    /// The glob it was made from.
    pub fn glob(&self) -> &str {
        &self.text
    }
}

/// One series a rule matched and what it saw there (borrowed from the evaluation's
/// [`Context`], so that judging thousands of series allocates nothing per series).
#[derive(Clone, Debug, PartialEq)]
pub struct Seen<'c> {
    /// The series key: an operation's name and tags, a gauge's name, or [`HOST_SERIES`].
    pub series: &'c str,
    /// [`key_hash`] of `series` (what [`crate::server::alerts::instance_key`] combines with
    /// the rule's).
    pub hash: u64,
    /// What labels the series has (built only for a new alert: see [`Seen::labels`]).
    pub source: Source,
    pub observation: Observation,
}

/// Where a series' labels come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The series key's name under this label, and its tags (`operation`, `event`, `gauge`,
    /// `counter`).
    Series(&'static str),
    /// One fixed label (`host` = `cpu_pct`, `vitals` = `ws_tick_p99_ms`).
    Fixed(&'static str, &'static str),
}

impl Seen<'_> {
    /// The labels of the series.
    pub fn labels(&self) -> BTreeMap<String, String> {
        match self.source {
            Source::Fixed(label, value) => BTreeMap::from([(label.to_string(), value.to_string())]),
            Source::Series(label) => {
                let mut labels: BTreeMap<String, String> = tags::tags_of(self.series)
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                labels.insert(label.to_string(), tags::name_of(self.series).to_string());
                labels
            }
        }
    }
}

/// Vitals' own running totals at one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VitalsTotals {
    pub ws_tick_p99_ms: Option<f64>,
    pub statsd_dropped: u64,
    pub statsd_malformed: u64,
    pub store_write_errors: u64,
    pub notification_failures: u64,
    /// Report-cache hits and misses so far.
    pub report_cache_lookups: (u64, u64),
}

/// Recent totals, to turn counters into increases over the last minute.
#[derive(Debug, Default)]
pub struct VitalsHistory {
    ring: VecDeque<(u64, VitalsTotals)>,
}

impl VitalsHistory {
    /// Notes `totals` at `now_ms` and keeps a minute (and a little) of them.
    pub fn push(&mut self, now_ms: u64, totals: VitalsTotals) {
        self.ring.push_back((now_ms, totals));
        while self.ring.len() > 2
            && self.ring.get(1).is_some_and(|(t, _)| now_ms.saturating_sub(*t) >= 60_000)
        {
            self.ring.pop_front();
        }
    }

    /// The increase of a counter over (about) the last minute.
    fn increase(&self, read: impl Fn(&VitalsTotals) -> u64) -> Option<f64> {
        let (_, first) = self.ring.front()?;
        let (_, last) = self.ring.back()?;
        Some(read(last).saturating_sub(read(first)) as f64)
    }

    fn latest(&self) -> Option<&VitalsTotals> {
        self.ring.back().map(|(_, t)| t)
    }
}

/// How often, in seconds, a statistic over `window` is judged: 1 for 1m, 5 for 5m, 15 for 15m,
/// 60 for 1h (see the module docs).
pub const fn cadence_secs(window: Window) -> u64 {
    let secs = window.secs() / 60;
    if secs == 0 {
        1
    } else {
        secs
    }
}

/// Which series one evaluation judges: a series over a window of cadence `c` seconds has its
/// slot, [`key_hash`]`(key) mod c`, and is due when a second of that slot has begun since the last
/// evaluation (every series on the first). Ticks of any length work: a tick of `c` seconds or
/// more judges every series, a tick within the same second judges none of cadence above 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// The second of the last evaluation; `None`: judge everything.
    prev_sec: Option<u64>,
    cur_sec: u64,
}

impl Due {
    /// Every series is due (the first evaluation, tests, back-tests).
    pub const ALL: Due = Due { prev_sec: None, cur_sec: 0 };

    /// The series due at `now_ms` when the last evaluation ran at `prev_ms`.
    pub fn since(prev_ms: Option<u64>, now_ms: u64) -> Due {
        Due { prev_sec: prev_ms.map(|ms| ms / 1000), cur_sec: now_ms / 1000 }
    }

    /// Whether the series `key` over `window` is judged now.
    pub fn series(&self, key: &str, window: Window) -> bool {
        self.hashed(key_hash(key), window)
    }

    /// [`Self::series`] for the key whose [`key_hash`] is `hash`.
    pub fn hashed(&self, hash: u64, window: Window) -> bool {
        let cadence = cadence_secs(window);
        let Some(prev) = self.prev_sec else { return true };
        if cadence <= 1 {
            return true;
        }
        let begun = self.cur_sec.saturating_sub(prev);
        if begun >= cadence {
            return true;
        }
        let slot = hash % cadence;
        // The seconds begun are prev + 1 ..= cur: is one of them in the slot?
        let first = (prev + 1) % cadence;
        (slot + cadence - first) % cadence < begun
    }

    /// Whether the series whose [`key_hash`] is `hash`, of a rule over `window`, is judged
    /// now (a rule without a window: always).
    pub fn window(&self, window: Option<Window>, hash: u64) -> bool {
        window.is_none_or(|w| self.hashed(hash, w))
    }
}

/// A rule's name pattern and required tags.
type Wanted<'r> = (&'r Pattern, &'r BTreeMap<String, String>);

/// The statistics of every due series of one (kind, window) some rule reads, and which rules'
/// series each is. Rules that share a glob and tags (the usual case: one glob, several
/// statistics) are matched once per series.
#[derive(Default)]
struct Found {
    /// The distinct globs and tags of the rules over this (kind, window).
    wanted: Vec<(String, BTreeMap<String, String>)>,
    /// `wanted.len()` flags per series, flat: whether its name and tags match `wanted[i]`.
    matches: Vec<bool>,
    /// Each series' first flag in `matches`, and its figures (with the quantiles the rules
    /// over this (kind, window) read).
    rows: Vec<(usize, SeriesFigures)>,
}

/// Everything one evaluation reads, gathered by [`Context::prepare`].
pub struct Context<'a> {
    pub now_ms: u64,
    pub system: &'a SystemMetrics,
    pub disk_used_pct: Option<f64>,
    pub app: &'a AppMetrics,
    pub vitals: &'a VitalsHistory,
    /// Counter increases in the last complete minute and gauge values, by name.
    values: Option<(HashMap<String, f64>, HashMap<String, f64>)>,
    summaries: HashMap<(TimingKind, Window), Found>,
    due: Due,
    /// Emptied [`Found`]s of an earlier evaluation, by (kind, window), whose room is reused (a
    /// thousand series' figures take ~150 KB: allocated anew each tick, they were mapped,
    /// faulted in page by page and unmapped again).
    spare: HashMap<(TimingKind, Window), Found>,
}

/// What one evaluation's [`Context`] leaves for the next: its emptied buffers, one per
/// (kind, window) a rule read.
#[derive(Default)]
pub struct Scratch(HashMap<(TimingKind, Window), Found>);

impl<'a> Context<'a> {
    pub fn new(
        now_ms: u64,
        system: &'a SystemMetrics,
        disk_used_pct: Option<f64>,
        app: &'a AppMetrics,
        vitals: &'a VitalsHistory,
    ) -> Self {
        Context {
            now_ms,
            system,
            disk_used_pct,
            app,
            vitals,
            values: None,
            summaries: HashMap::new(),
            due: Due::ALL,
            spare: HashMap::new(),
        }
    }

    /// Reuses the buffers `scratch` holds (see [`Context::into_scratch`]).
    pub fn reusing(mut self, scratch: Scratch) -> Self {
        self.spare = scratch.0;
        self
    }

    /// The buffers of this evaluation, emptied, for the next one.
    pub fn into_scratch(self) -> Scratch {
        let mut spare = self.spare;
        spare.extend(self.summaries.into_iter().map(|(key, mut found)| {
            found.wanted.clear();
            found.matches.clear();
            found.rows.clear();
            (key, found)
        }));
        Scratch(spare)
    }

    /// Judges only the series `due` names (by default every series).
    pub fn judging(mut self, due: Due) -> Self {
        self.due = due;
        self
    }

    /// Computes, under one lock each, the statistics of every due series some rule in `rules`
    /// matches, for each (kind, window) they need, and the counters and gauges when a rule
    /// reads them.
    pub fn prepare(&mut self, rules: &[(&Rule, Option<&Pattern>)]) {
        let mut needs: HashMap<(TimingKind, Window), (Vec<Wanted<'_>>, [bool; 4])> = HashMap::new();
        let mut values = false;
        for (rule, pattern) in rules {
            let Some(pattern) = pattern else { continue };
            let (key, stat) = match rule.target.kind() {
                Ok(TargetKind::Operation { window, stat, .. }) => {
                    ((TimingKind::Operation, window), stat)
                }
                Ok(TargetKind::Event { window, stat, .. }) => ((TimingKind::Event, window), stat),
                Ok(TargetKind::Gauge(_) | TargetKind::Counter(_)) => {
                    values = true;
                    continue;
                }
                _ => continue,
            };
            let (wanted, quantiles) = needs.entry(key).or_default();
            wanted.push((pattern, &rule.target.tags));
            if let Some(i) = quantile_index(stat) {
                quantiles[i] = true;
            }
        }
        if values {
            let other = self.app.other_metrics(self.now_ms);
            let counters = other.counters.into_iter().map(|(k, v)| (k, v.last_minute)).collect();
            let gauges = other.gauges.into_iter().collect();
            self.values = Some((counters, gauges));
        }
        for ((kind, window), (mut wanted, quantiles)) in needs {
            wanted.sort_by(|a, b| (a.0.glob(), a.1).cmp(&(b.0.glob(), b.1)));
            wanted.dedup_by(|a, b| (a.0.glob(), a.1) == (b.0.glob(), b.1));
            let due = self.due;
            let Found { wanted: mut globs, mut matches, mut rows } =
                self.spare.remove(&(kind, window)).unwrap_or_default();
            let keep = |key: &SeriesKey| {
                let name = tags::name_of(key);
                let first = matches.len();
                matches.extend(wanted.iter().map(|(p, t)| p.matches(name) && has_tags(key, t)));
                if matches[first..].contains(&true) {
                    Some(first)
                } else {
                    matches.truncate(first);
                    None
                }
            };
            let is_due = |hash| due.hashed(hash, window);
            let group = (kind, window);
            self.app.series_figures(group, self.now_ms, quantiles, is_due, keep, &mut rows);
            globs.extend(wanted.iter().map(|(p, t)| (p.glob().to_string(), (*t).clone())));
            self.summaries.insert((kind, window), Found { wanted: globs, matches, rows });
        }
    }

    /// What `rule` sees now: one entry per matching series (none for a counter or gauge
    /// rule that [`Self::prepare`] was not given).
    pub fn observe(&self, rule: &Rule, pattern: Option<&Pattern>) -> Vec<Seen<'_>> {
        let mut seen = Vec::new();
        self.observe_into(rule, pattern, &mut seen);
        seen
    }

    /// [`Self::observe`] into `seen`, emptied first: an evaluation reuses one list for all its
    /// rules (a thousand series' entries, allocated anew per rule, were a fifth of an alert
    /// storm's time in `malloc`).
    pub fn observe_into<'s>(
        &'s self,
        rule: &Rule,
        pattern: Option<&Pattern>,
        seen: &mut Vec<Seen<'s>>,
    ) {
        seen.clear();
        let mut single = |value: Option<f64>, label: &'static str, name: &'static str| {
            seen.push(Seen {
                series: HOST_SERIES,
                hash: key_hash(HOST_SERIES),
                source: Source::Fixed(label, name),
                observation: value
                    .filter(|v| v.is_finite())
                    .map_or(Observation::NoData, Observation::Value),
            });
        };
        match rule.target.kind() {
            Ok(TargetKind::Host(metric)) => {
                single(host_value(self.system, self.disk_used_pct, metric), "host", metric.as_str())
            }
            Ok(TargetKind::Vitals(metric)) => {
                single(vitals_value(self.vitals, metric), "vitals", metric.as_str())
            }
            Ok(TargetKind::Operation { stat, window, .. }) => self.timings(
                rule,
                pattern,
                (TimingKind::Operation, window),
                stat,
                "operation",
                seen,
            ),
            Ok(TargetKind::Event { stat, window, .. }) => {
                self.timings(rule, pattern, (TimingKind::Event, window), stat, "event", seen)
            }
            Ok(TargetKind::Gauge(_)) => {
                if let (Some(pattern), Some((_, gauges))) = (pattern, &self.values) {
                    named(gauges, pattern, "gauge", seen);
                }
            }
            Ok(TargetKind::Counter(_)) => {
                if let (Some(pattern), Some((counters, _))) = (pattern, &self.values) {
                    named(counters, pattern, "counter", seen);
                }
            }
            Err(_) => {}
        }
    }

    fn timings<'s>(
        &'s self,
        rule: &Rule,
        pattern: Option<&Pattern>,
        group: (TimingKind, Window),
        stat: OpStat,
        label: &'static str,
        seen: &mut Vec<Seen<'s>>,
    ) {
        let Some(pattern) = pattern else { return };
        let Some(found) = self.summaries.get(&group) else { return };
        let Some(which) = found
            .wanted
            .iter()
            .position(|(glob, tags)| glob == pattern.glob() && *tags == rule.target.tags)
        else {
            return;
        };
        // Room for every row: a filtered iterator would grow the list a dozen times.
        seen.reserve(found.rows.len());
        let rows = found.rows.iter().filter(|(first, _)| found.matches[first + which]);
        seen.extend(rows.map(|(_, s)| {
            let value = figure_value(s, stat).filter(|v| v.is_finite());
            let observation = match value {
                None => Observation::NoData,
                Some(v) if s.count < rule.min_count => Observation::TooFew(v),
                Some(v) => Observation::Value(v),
            };
            Seen { series: &s.key, hash: s.hash, source: Source::Series(label), observation }
        }));
    }
}

/// Whether the series `key` has every tag of `wanted`.
fn has_tags(key: &str, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| tags::tags_of(key).any(|(tk, tv)| tk == k && tv == v))
}

/// Appends the values whose name `pattern` matches to `seen`, by name.
fn named<'c>(
    values: &'c HashMap<String, f64>,
    pattern: &Pattern,
    label: &'static str,
    seen: &mut Vec<Seen<'c>>,
) {
    let first = seen.len();
    seen.extend(values.iter().filter(|(name, _)| pattern.matches(name)).map(|(name, value)| {
        Seen {
            series: name,
            hash: key_hash(name),
            source: Source::Series(label),
            observation: if value.is_finite() {
                Observation::Value(*value)
            } else {
                Observation::NoData
            },
        }
    }));
    seen[first..].sort_by(|a, b| a.series.cmp(b.series));
}

/// Where `stat` sits among a [`SeriesFigures`]' quantiles (p50, p90, p95, p99), if it is one.
fn quantile_index(stat: OpStat) -> Option<usize> {
    match stat {
        OpStat::P50 => Some(0),
        OpStat::P90 => Some(1),
        OpStat::P95 => Some(2),
        OpStat::P99 => Some(3),
        _ => None,
    }
}

/// The statistic `stat` of one series' figures (`None`: a quantile not computed).
fn figure_value(s: &SeriesFigures, stat: OpStat) -> Option<f64> {
    match stat {
        OpStat::P50 | OpStat::P90 | OpStat::P95 | OpStat::P99 => s.quantiles[quantile_index(stat)?],
        OpStat::Mean => Some(s.mean_ms),
        OpStat::Max => Some(s.max_ms),
        OpStat::Rate => Some(s.rate_per_min),
        OpStat::ErrorRate => Some(100.0 - s.success_pct),
        OpStat::Count => Some(s.count as f64),
    }
}

/// The statistic `stat` of a summary.
pub fn op_value(s: &OperationSummary, stat: OpStat) -> f64 {
    match stat {
        OpStat::P50 => s.p50_ms,
        OpStat::P90 => s.p90_ms,
        OpStat::P95 => s.p95_ms,
        OpStat::P99 => s.p99_ms,
        OpStat::Mean => s.mean_ms,
        OpStat::Max => s.max_ms,
        OpStat::Rate => s.rate_per_min,
        OpStat::ErrorRate => 100.0 - s.success_pct,
        OpStat::Count => s.count as f64,
    }
}

/// A host figure of the sample.
pub fn host_value(
    m: &SystemMetrics,
    disk_used_pct: Option<f64>,
    metric: HostMetric,
) -> Option<f64> {
    let pct = |used: u64, total: u64| (total > 0).then(|| 100.0 * used as f64 / total as f64);
    Some(match metric {
        HostMetric::CpuPct => f64::from(m.cpu_pct),
        HostMetric::MemoryPct => f64::from(m.memory_pct),
        HostMetric::SwapPct => return pct(m.swap_used_bytes, m.swap_total_bytes).or(Some(0.0)),
        HostMetric::Load1 => m.load_avg_1,
        HostMetric::Load5 => m.load_avg_5,
        HostMetric::Load15 => m.load_avg_15,
        HostMetric::DiskUsedPct => return disk_used_pct,
        HostMetric::NetRxBytesPerSec => m.net_rx_bytes_per_sec,
        HostMetric::NetTxBytesPerSec => m.net_tx_bytes_per_sec,
        HostMetric::DiskReadBytesPerSec => m.disk_read_bytes_per_sec,
        HostMetric::DiskWriteBytesPerSec => m.disk_write_bytes_per_sec,
    })
}

fn vitals_value(history: &VitalsHistory, metric: VitalsMetric) -> Option<f64> {
    match metric {
        VitalsMetric::WsTickP99Ms => history.latest()?.ws_tick_p99_ms,
        VitalsMetric::StatsdDropped => history.increase(|t| t.statsd_dropped),
        VitalsMetric::StatsdMalformed => history.increase(|t| t.statsd_malformed),
        VitalsMetric::StoreWriteErrors => history.increase(|t| t.store_write_errors),
        VitalsMetric::NotificationFailures => history.increase(|t| t.notification_failures),
        VitalsMetric::ReportCacheHitPct => {
            let hits = history.increase(|t| t.report_cache_lookups.0)?;
            let misses = history.increase(|t| t.report_cache_lookups.1)?;
            (hits + misses >= MIN_CACHE_LOOKUPS).then(|| 100.0 * hits / (hits + misses))
        }
    }
}

/// Fewest report-cache look-ups in a minute that give a hit rate.
const MIN_CACHE_LOOKUPS: f64 = 10.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alerts::{Target, Threshold};
    use crate::model::ops::LatencyThresholds;
    use crate::server::metrics::{Limits, Protocol, Timing};

    const NOW: u64 = 1_700_000_000_000;

    /// A glob the regex engine cannot take (nested past its limit) is refused with a reason,
    /// not a panic; one within it matches as written.
    #[test]
    fn a_glob_too_complex_to_match_is_refused_not_a_panic() {
        let nested = format!("{}a{}", "{".repeat(300), "}".repeat(300));
        assert!(Pattern::new(&nested).unwrap_err().contains("too complex"));
        let fine = format!("{}a{}", "{".repeat(3), "}".repeat(3));
        let pattern = Pattern::new(&fine).unwrap();
        assert!(pattern.matches("a") && !pattern.matches("b"));
        assert_eq!(pattern.glob(), fine);
    }

    #[test]
    fn an_evaluation_reusing_the_last_ones_buffers_sees_only_its_own_series() {
        let app = AppMetrics::new(Limits::default(), LatencyThresholds::default(), NOW - 60_000);
        app.lock().timing(Protocol::Http, Timing::operation("api.cart", 5.0, NOW - 1_000), NOW);
        let p95 = Rule::new("p95", Target::operation("api.*", OpStat::P95, Window::M1));
        let count = Rule::new("count", Target::operation("db.*", OpStat::Count, Window::M1));
        let (api, db) = (Pattern::new("api.*").unwrap(), Pattern::new("db.*").unwrap());
        let (system, vitals) = (SystemMetrics::default(), VitalsHistory::default());
        let mut first = Context::new(NOW, &system, None, &app, &vitals);
        first.prepare(&[(&p95, Some(&api))]);
        assert_eq!(first.observe(&p95, Some(&api)).len(), 1);
        let scratch = first.into_scratch();
        // The next evaluation has only the other rule, over the same window.
        app.lock().timing(Protocol::Http, Timing::operation("db.query", 5.0, NOW - 1_000), NOW);
        let mut next = Context::new(NOW, &system, None, &app, &vitals).reusing(scratch);
        next.prepare(&[(&count, Some(&db))]);
        let seen: Vec<&str> = next.observe(&count, Some(&db)).iter().map(|s| s.series).collect();
        assert_eq!(seen, ["db.query"]);
        assert!(next.observe(&p95, Some(&api)).is_empty(), "the last evaluation's rule is gone");
    }

    #[test]
    fn operation_rules_see_each_matching_series_with_its_tags_and_min_count() {
        let app = AppMetrics::new(Limits::default(), LatencyThresholds::default(), NOW - 60_000);
        {
            let (mut key, mut scratch) = (String::new(), Vec::new());
            tags::series_key(&mut key, &mut scratch, "api.checkout", [("region", "eu")]);
            let mut m = app.lock();
            for i in 0..30 {
                let t = Timing::operation(&key, 100.0 + f64::from(i), NOW - 1_000).failed_if(i < 3);
                m.timing(Protocol::Http, t, NOW);
            }
            m.timing(Protocol::Http, Timing::operation("api.cart", 5.0, NOW - 1_000), NOW);
            m.timing(Protocol::Http, Timing::operation("db.query", 5.0, NOW - 1_000), NOW);
        }
        let mut rule =
            Rule::new("errors", Target::operation("api.*", OpStat::ErrorRate, Window::M1));
        rule.warning = Some(Threshold::above(5.0, 4.0));
        rule.min_count = 20;
        let pattern = Pattern::new("api.*").unwrap();
        let (system, vitals) = (SystemMetrics::default(), VitalsHistory::default());
        let mut ctx = Context::new(NOW, &system, None, &app, &vitals);
        ctx.prepare(&[(&rule, Some(&pattern))]);
        let seen = ctx.observe(&rule, Some(&pattern));
        assert_eq!(seen.len(), 2, "{seen:?}");
        let checkout =
            seen.iter().find(|s| s.labels().get("operation").unwrap() == "api.checkout").unwrap();
        assert_eq!(checkout.labels().get("region").map(String::as_str), Some("eu"));
        assert_eq!(checkout.observation, Observation::Value(10.0));
        let cart =
            seen.iter().find(|s| s.labels().get("operation").unwrap() == "api.cart").unwrap();
        assert_eq!(cart.observation, Observation::TooFew(0.0));
        // A tag filter narrows the series.
        rule.target.tags.insert("region".into(), "us".into());
        let mut ctx = Context::new(NOW, &system, None, &app, &vitals);
        ctx.prepare(&[(&rule, Some(&pattern))]);
        assert!(ctx.observe(&rule, Some(&pattern)).is_empty());
        // Rules over one window prepared together each see their own series, also when they
        // share a glob (matched once per series) or differ only by their tags.
        let mut eu = Rule::new("eu", Target::operation("api.*", OpStat::Count, Window::M1));
        eu.target.tags.insert("region".into(), "eu".into());
        let all = Rule::new("all", Target::operation("api.*", OpStat::P95, Window::M1));
        let db = Rule::new("db", Target::operation("db.*", OpStat::Count, Window::M1));
        let db_pattern = Pattern::new("db.*").unwrap();
        let mut ctx = Context::new(NOW, &system, None, &app, &vitals);
        ctx.prepare(&[(&eu, Some(&pattern)), (&all, Some(&pattern)), (&db, Some(&db_pattern))]);
        let names = |rule: &Rule, pattern: &Pattern| {
            let mut names: Vec<String> = ctx
                .observe(rule, Some(pattern))
                .iter()
                .map(|s| tags::name_of(s.series).to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&eu, &pattern), ["api.checkout"]);
        assert_eq!(names(&all, &pattern), ["api.cart", "api.checkout"]);
        assert_eq!(names(&db, &db_pattern), ["db.query"]);
    }

    #[test]
    fn each_series_is_judged_once_per_cadence_whatever_the_tick() {
        let keys: Vec<String> = (0..200).map(|i| format!("api.op{i}")).collect();
        // Ticks of one second: over any run of `cadence` ticks, each series once.
        for window in Window::ALL {
            let cadence = cadence_secs(window);
            let mut prev = NOW - 1_000;
            let mut judged = vec![0u64; keys.len()];
            for tick in 0..cadence * 3 {
                let now = NOW + tick * 1_000;
                let due = Due::since(Some(prev), now);
                for (i, key) in keys.iter().enumerate() {
                    judged[i] += u64::from(due.series(key, window));
                }
                prev = now;
            }
            assert!(judged.iter().all(|&n| n == 3), "{window:?}: {judged:?}");
        }
        assert_eq!([1, 5, 15, 60], Window::ALL.map(cadence_secs));
        // Spread: a 1 h window judges about a sixtieth of its series per tick, not all at once.
        let due = Due::since(Some(NOW - 1_000), NOW);
        let per_tick = keys.iter().filter(|k| due.series(k, Window::H1)).count();
        assert!((1..=12).contains(&per_tick), "{per_tick} of 200");
        // The first evaluation, and a tick as long as the cadence, judge everything.
        assert!(keys.iter().all(|k| Due::ALL.series(k, Window::H1)));
        assert!(keys.iter().all(|k| Due::since(None, NOW).series(k, Window::H1)));
        let long = Due::since(Some(NOW - 5_000), NOW);
        assert!(keys.iter().all(|k| long.series(k, Window::M5)));
        // Half-second ticks: the second tick within one second judges nothing slower than 1 s.
        let within = Due::since(Some(NOW), NOW + 500);
        assert!(keys.iter().all(|k| within.series(k, Window::M1)));
        assert!(!keys.iter().any(|k| within.series(k, Window::M5)));
    }

    #[test]
    fn vitals_counters_become_increases_over_the_last_minute() {
        let mut h = VitalsHistory::default();
        for i in 0..=120u64 {
            let totals = VitalsTotals { statsd_dropped: i * 2, ..Default::default() };
            h.push(NOW + i * 1_000, totals);
        }
        let per_minute = vitals_value(&h, VitalsMetric::StatsdDropped).unwrap();
        assert!((118.0..=122.0).contains(&per_minute), "{per_minute}");
        assert_eq!(vitals_value(&h, VitalsMetric::WsTickP99Ms), None);
    }

    #[test]
    fn the_report_cache_hit_rate_needs_enough_look_ups() {
        let mut h = VitalsHistory::default();
        h.push(NOW, VitalsTotals { report_cache_lookups: (100, 50), ..Default::default() });
        h.push(
            NOW + 60_000,
            VitalsTotals { report_cache_lookups: (106, 52), ..Default::default() },
        );
        assert_eq!(vitals_value(&h, VitalsMetric::ReportCacheHitPct), None, "8 look-ups");
        h.push(
            NOW + 61_000,
            VitalsTotals { report_cache_lookups: (112, 54), ..Default::default() },
        );
        let pct = vitals_value(&h, VitalsMetric::ReportCacheHitPct).unwrap();
        assert!((pct - 75.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn host_figures() {
        let m = SystemMetrics {
            cpu_pct: 50.0,
            swap_used_bytes: 1,
            swap_total_bytes: 4,
            ..Default::default()
        };
        assert_eq!(host_value(&m, None, HostMetric::CpuPct), Some(50.0));
        assert_eq!(host_value(&m, None, HostMetric::SwapPct), Some(25.0));
        assert_eq!(host_value(&m, None, HostMetric::DiskUsedPct), None);
        assert_eq!(host_value(&m, Some(91.0), HostMetric::DiskUsedPct), Some(91.0));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// The matches made without the regex (a literal, `prefix*`, `*suffix`) are the
            /// glob's own, and so is every other shape.
            #[test]
            fn patterns_match_exactly_what_their_glob_matches(
                glob in r"[ab./\n*?{},\[\]!\\-]{0,8}",
                names in prop::collection::vec(r"[ab./\n{},\[\]!\\-]{0,7}", 1..20),
            ) {
                prop_assume!(Glob::new(&glob).is_ok());
                let pattern = Pattern::new(&glob).unwrap();
                let reference = Glob::new(&glob).unwrap().compile_matcher();
                for name in names.iter().chain([&glob]) {
                    prop_assert_eq!(
                        pattern.matches(name),
                        reference.is_match(name),
                        "glob {:?}, name {:?}",
                        glob,
                        name
                    );
                }
            }
        }
    }
}
