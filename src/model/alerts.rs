//! Alerts on the wire: rules (what to watch and when to raise), instances (one per rule and
//! matching series, with their state), the stored history of transitions, silences, and the
//! live message. Shared by the server, its REST API and the Alerts page; validation lives here
//! too, so the page and the API refuse the same rules with the same words.
//!
//! A rule in JSON (the shape of `POST /api/v1/alerts/rules` and of `[[alerts.rules]]` in TOML):
//!
//! ```json
//! {"name": "checkout slow",
//!  "target": {"operation": "api.checkout*", "stat": "p95", "window": "1m"},
//!  "warning": {"above": 500, "clear_below": 400},
//!  "critical": {"above": 2000, "clear_below": 1500},
//!  "for_secs": 120, "keep_firing_for_secs": 60, "min_count": 20,
//!  "labels": {"team": "web"}, "summary": "Checkout p95 is {{value}} ms"}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ops::Window;

/// Longest rule name, label key or value, summary or runbook text, in characters.
pub const MAX_NAME_CHARS: usize = 120;
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Most labels one rule may add.
pub const MAX_LABELS: usize = 16;
/// Longest `for` or `keep_firing_for`: one day.
pub const MAX_DURATION_SECS: u64 = 86_400;

/// How bad a breach is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

super::named::deserialize_by_name!(Severity, [Severity::Warning, Severity::Critical]);

/// A host figure from the live sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostMetric {
    CpuPct,
    MemoryPct,
    SwapPct,
    Load1,
    Load5,
    Load15,
    /// The fullest mounted disk, 0..=100.
    DiskUsedPct,
    NetRxBytesPerSec,
    NetTxBytesPerSec,
    DiskReadBytesPerSec,
    DiskWriteBytesPerSec,
}

impl HostMetric {
    pub const ALL: [HostMetric; 11] = [
        HostMetric::CpuPct,
        HostMetric::MemoryPct,
        HostMetric::SwapPct,
        HostMetric::Load1,
        HostMetric::Load5,
        HostMetric::Load15,
        HostMetric::DiskUsedPct,
        HostMetric::NetRxBytesPerSec,
        HostMetric::NetTxBytesPerSec,
        HostMetric::DiskReadBytesPerSec,
        HostMetric::DiskWriteBytesPerSec,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            HostMetric::CpuPct => "cpu_pct",
            HostMetric::MemoryPct => "memory_pct",
            HostMetric::SwapPct => "swap_pct",
            HostMetric::Load1 => "load_1",
            HostMetric::Load5 => "load_5",
            HostMetric::Load15 => "load_15",
            HostMetric::DiskUsedPct => "disk_used_pct",
            HostMetric::NetRxBytesPerSec => "net_rx_bytes_per_sec",
            HostMetric::NetTxBytesPerSec => "net_tx_bytes_per_sec",
            HostMetric::DiskReadBytesPerSec => "disk_read_bytes_per_sec",
            HostMetric::DiskWriteBytesPerSec => "disk_write_bytes_per_sec",
        }
    }

    pub fn parse(text: &str) -> Option<HostMetric> {
        HostMetric::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// A statistic of an operation or event series over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OpStat {
    P50,
    P90,
    #[default]
    P95,
    P99,
    Mean,
    Max,
    /// Samples per minute.
    Rate,
    /// Failed share, 0..=100.
    ErrorRate,
    /// Samples in the window.
    Count,
}

impl OpStat {
    pub const ALL: [OpStat; 9] = [
        OpStat::P50,
        OpStat::P90,
        OpStat::P95,
        OpStat::P99,
        OpStat::Mean,
        OpStat::Max,
        OpStat::Rate,
        OpStat::ErrorRate,
        OpStat::Count,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OpStat::P50 => "p50",
            OpStat::P90 => "p90",
            OpStat::P95 => "p95",
            OpStat::P99 => "p99",
            OpStat::Mean => "mean",
            OpStat::Max => "max",
            OpStat::Rate => "rate",
            OpStat::ErrorRate => "error_rate",
            OpStat::Count => "count",
        }
    }

    pub fn parse(text: &str) -> Option<OpStat> {
        OpStat::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The unit the statistic is in, for messages.
    pub const fn unit(self) -> &'static str {
        match self {
            OpStat::Rate => "/min",
            OpStat::ErrorRate => "%",
            OpStat::Count => "",
            _ => "ms",
        }
    }
}

/// One of Vitals' own figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitalsMetric {
    /// p99 of the time from a tick to its last WebSocket send, ms.
    WsTickP99Ms,
    /// StatsD samples dropped (budgets, saturation, too old or future) in the last minute.
    StatsdDropped,
    /// StatsD lines refused as malformed in the last minute.
    StatsdMalformed,
    /// History store write errors in the last minute.
    StoreWriteErrors,
    /// Alert notifications that failed for good in the last minute.
    NotificationFailures,
    /// Share of report-cache look-ups answered from the cache in the last minute, % (no
    /// figure with fewer than ten look-ups).
    ReportCacheHitPct,
}

impl VitalsMetric {
    pub const ALL: [VitalsMetric; 6] = [
        VitalsMetric::WsTickP99Ms,
        VitalsMetric::StatsdDropped,
        VitalsMetric::StatsdMalformed,
        VitalsMetric::StoreWriteErrors,
        VitalsMetric::NotificationFailures,
        VitalsMetric::ReportCacheHitPct,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            VitalsMetric::WsTickP99Ms => "ws_tick_p99_ms",
            VitalsMetric::StatsdDropped => "statsd_dropped",
            VitalsMetric::StatsdMalformed => "statsd_malformed",
            VitalsMetric::StoreWriteErrors => "store_write_errors",
            VitalsMetric::NotificationFailures => "notification_failures",
            VitalsMetric::ReportCacheHitPct => "report_cache_hit_pct",
        }
    }

    pub fn parse(text: &str) -> Option<VitalsMetric> {
        VitalsMetric::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// What a rule watches. Exactly one of `host`, `operation`, `event`, `gauge`, `counter` and
/// `vitals` is set; `stat`, `window` and `tags` belong to `operation` and `event`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostMetric>,
    /// An operation name or glob (`api.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// An event name or glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<OpStat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Tags a series must have (`{"region": "eu"}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// An application gauge's name or glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge: Option<String>,
    /// An application counter's name or glob: its increments per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vitals: Option<VitalsMetric>,
}

/// The target as one value, once validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TargetKind<'a> {
    Host(HostMetric),
    Operation { glob: &'a str, stat: OpStat, window: Window },
    Event { glob: &'a str, stat: OpStat, window: Window },
    Gauge(&'a str),
    Counter(&'a str),
    Vitals(VitalsMetric),
}

impl Target {
    pub fn host(metric: HostMetric) -> Target {
        Target { host: Some(metric), ..Default::default() }
    }

    pub fn operation(glob: &str, stat: OpStat, window: Window) -> Target {
        Target {
            operation: Some(glob.to_string()),
            stat: Some(stat),
            window: Some(window),
            ..Default::default()
        }
    }

    pub fn gauge_named(glob: &str) -> Target {
        Target { gauge: Some(glob.to_string()), ..Default::default() }
    }

    pub fn vitals(metric: VitalsMetric) -> Target {
        Target { vitals: Some(metric), ..Default::default() }
    }

    /// The one thing watched, or the field that is wrong.
    pub fn kind(&self) -> Result<TargetKind<'_>, RuleError> {
        let set = [
            self.host.is_some(),
            self.operation.is_some(),
            self.event.is_some(),
            self.gauge.is_some(),
            self.counter.is_some(),
            self.vitals.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(RuleError::new(
                "target",
                "must name exactly one of host, operation, event, gauge, counter or vitals",
            ));
        }
        let timing = self.operation.is_some() || self.event.is_some();
        if !timing && (self.stat.is_some() || self.window.is_some() || !self.tags.is_empty()) {
            return Err(RuleError::new(
                "target",
                "stat, window and tags apply to operation and event targets only",
            ));
        }
        if let Some(glob) = self.operation.as_deref().or(self.event.as_deref()) {
            let field = if self.operation.is_some() { "target.operation" } else { "target.event" };
            check_glob(field, glob)?;
            for (key, value) in &self.tags {
                check_text("target.tags", key, MAX_NAME_CHARS)?;
                check_text("target.tags", value, MAX_NAME_CHARS)?;
            }
            if self.tags.len() > MAX_LABELS {
                return Err(RuleError::new("target.tags", "at most 16 tags"));
            }
            let stat = self.stat.unwrap_or_default();
            let window = self.window.unwrap_or(Window::M1);
            return Ok(match &self.operation {
                Some(_) => TargetKind::Operation { glob, stat, window },
                None => TargetKind::Event { glob, stat, window },
            });
        }
        if let Some(glob) = &self.gauge {
            check_glob("target.gauge", glob)?;
            return Ok(TargetKind::Gauge(glob));
        }
        if let Some(glob) = &self.counter {
            check_glob("target.counter", glob)?;
            return Ok(TargetKind::Counter(glob));
        }
        if let Some(metric) = self.host {
            return Ok(TargetKind::Host(metric));
        }
        match self.vitals {
            Some(metric) => Ok(TargetKind::Vitals(metric)),
            None => Err(RuleError::new("target", "is empty")),
        }
    }

    /// A short human description: `p95 of api.* over 1m`, `host cpu_pct`.
    pub fn describe(&self) -> String {
        match self.kind() {
            Ok(TargetKind::Host(m)) => format!("host {}", m.as_str()),
            Ok(TargetKind::Operation { glob, stat, window }) => {
                format!("{} of {glob} over {}{}", stat.as_str(), window.as_str(), self.tag_text())
            }
            Ok(TargetKind::Event { glob, stat, window }) => format!(
                "{} of event {glob} over {}{}",
                stat.as_str(),
                window.as_str(),
                self.tag_text()
            ),
            Ok(TargetKind::Gauge(g)) => format!("gauge {g}"),
            Ok(TargetKind::Counter(c)) => format!("counter {c} per minute"),
            Ok(TargetKind::Vitals(m)) => format!("vitals {}", m.as_str()),
            Err(e) => e.message,
        }
    }

    fn tag_text(&self) -> String {
        if self.tags.is_empty() {
            return String::new();
        }
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!(" where {}", tags.join(", "))
    }

    /// The unit of the watched figure, for messages.
    pub fn unit(&self) -> &'static str {
        match self.kind() {
            Ok(TargetKind::Operation { stat, .. } | TargetKind::Event { stat, .. }) => stat.unit(),
            Ok(TargetKind::Host(m)) => match m {
                HostMetric::CpuPct
                | HostMetric::MemoryPct
                | HostMetric::SwapPct
                | HostMetric::DiskUsedPct => "%",
                HostMetric::Load1 | HostMetric::Load5 | HostMetric::Load15 => "",
                _ => "B/s",
            },
            Ok(TargetKind::Counter(_)) => "/min",
            Ok(TargetKind::Vitals(VitalsMetric::WsTickP99Ms)) => "ms",
            Ok(TargetKind::Vitals(VitalsMetric::ReportCacheHitPct)) => "%",
            Ok(TargetKind::Vitals(_)) => "/min",
            _ => "",
        }
    }
}

/// A raise threshold and its clear threshold: `above` with `clear_below` (a rising figure), or
/// `below` with `clear_above` (a falling one, e.g. a cache hit rate). Without a clear threshold
/// the raise threshold clears too (no hysteresis).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_above: Option<f64>,
}

impl Threshold {
    pub fn above(raise: f64, clear: f64) -> Threshold {
        Threshold { above: Some(raise), clear_below: Some(clear), ..Default::default() }
    }

    pub fn below(raise: f64, clear: f64) -> Threshold {
        Threshold { below: Some(raise), clear_above: Some(clear), ..Default::default() }
    }

    /// The threshold that raises.
    pub fn raise(&self) -> f64 {
        self.above.or(self.below).unwrap_or(f64::NAN)
    }

    /// Whether `value` breaches the raise threshold.
    pub fn breached(&self, value: f64) -> bool {
        match (self.above, self.below) {
            (Some(a), _) => value > a,
            (_, Some(b)) => value < b,
            _ => false,
        }
    }

    /// Whether `value` is back at or past the clear threshold (a raised level ends).
    pub fn cleared(&self, value: f64) -> bool {
        match (self.above, self.below) {
            (Some(a), _) => value <= self.clear_below.unwrap_or(a),
            (_, Some(b)) => value >= self.clear_above.unwrap_or(b),
            _ => true,
        }
    }

    fn validate(&self, field: &'static str) -> Result<(), RuleError> {
        let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
        if ![self.above, self.below, self.clear_below, self.clear_above].into_iter().all(finite) {
            return Err(RuleError::new(field, "thresholds must be finite numbers"));
        }
        match (self.above, self.below) {
            (Some(a), None) => {
                if self.clear_above.is_some() {
                    return Err(RuleError::new(field, "clear_above goes with below, not above"));
                }
                if self.clear_below.is_some_and(|c| c > a) {
                    return Err(RuleError::new(
                        field,
                        "clear_below must not be above the raise threshold (above)",
                    ));
                }
                Ok(())
            }
            (None, Some(b)) => {
                if self.clear_below.is_some() {
                    return Err(RuleError::new(field, "clear_below goes with above, not below"));
                }
                if self.clear_above.is_some_and(|c| c < b) {
                    return Err(RuleError::new(
                        field,
                        "clear_above must not be below the raise threshold (below)",
                    ));
                }
                Ok(())
            }
            _ => Err(RuleError::new(field, "needs exactly one of above or below")),
        }
    }
}

/// What an instance does after `no_data_after` evaluations without data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// Treat as healthy: a firing alert resolves.
    #[default]
    Ok,
    /// Keep the last state.
    Keep,
    /// Raise at the rule's highest severity.
    Alert,
}

fn yes() -> bool {
    true
}

fn three() -> u32 {
    3
}

/// Where a rule comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    /// Built in (useful on first start); can be changed or deleted through the API.
    Default,
    /// The TOML config file: read-only through the API (the file wins).
    Config,
    /// Created or changed through the API or the Alerts page; kept in the store.
    #[default]
    Api,
}

/// An alert rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<Threshold>,
    /// How long a breach must last before the alert fires (pending until then).
    #[serde(default)]
    pub for_secs: u64,
    /// How long a firing alert keeps firing after its value cleared ("recovering").
    #[serde(default)]
    pub keep_firing_for_secs: u64,
    /// Fewest samples in the window for an operation or event statistic to count; below it
    /// the series is treated as healthy (no error-rate alert on 3 requests).
    #[serde(default)]
    pub min_count: u64,
    #[serde(default)]
    pub no_data: NoDataPolicy,
    /// Evaluations without data before `no_data` applies.
    #[serde(default = "three")]
    pub no_data_after: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runbook: String,
    /// Set by the server; ignored on input.
    #[serde(default)]
    pub source: RuleSource,
}

/// A rule that cannot be used: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

impl RuleError {
    pub fn new(field: &str, message: &str) -> RuleError {
        RuleError { field: field.to_string(), message: message.to_string() }
    }
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), RuleError> {
    if text.chars().count() > max {
        return Err(RuleError {
            field: field.into(),
            message: format!("at most {max} characters"),
        });
    }
    if text.chars().any(char::is_control) {
        return Err(RuleError::new(field, "must not hold control characters"));
    }
    Ok(())
}

fn check_glob(field: &'static str, glob: &str) -> Result<(), RuleError> {
    if glob.trim().is_empty() {
        return Err(RuleError::new(field, "must not be empty"));
    }
    check_text(field, glob, MAX_NAME_CHARS)
}

impl Rule {
    /// A rule with defaults around `target` and one threshold.
    pub fn new(name: &str, target: Target) -> Rule {
        Rule {
            name: name.to_string(),
            enabled: true,
            target,
            warning: None,
            critical: None,
            for_secs: 0,
            keep_firing_for_secs: 0,
            min_count: 0,
            no_data: NoDataPolicy::Ok,
            no_data_after: 3,
            labels: BTreeMap::new(),
            summary: String::new(),
            runbook: String::new(),
            source: RuleSource::Api,
        }
    }

    /// Checks every field; the first problem names its field.
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.name.trim().is_empty() {
            return Err(RuleError::new("name", "must not be empty"));
        }
        check_text("name", &self.name, MAX_NAME_CHARS)?;
        if self.name.contains('/') {
            return Err(RuleError::new("name", "must not contain /"));
        }
        self.target.kind()?;
        if self.warning.is_none() && self.critical.is_none() {
            return Err(RuleError::new(
                "warning",
                "a rule needs a warning or a critical threshold",
            ));
        }
        if let Some(t) = &self.warning {
            t.validate("warning")?;
        }
        if let Some(t) = &self.critical {
            t.validate("critical")?;
        }
        if let (Some(w), Some(c)) = (&self.warning, &self.critical) {
            if w.above.is_some() != c.above.is_some() {
                return Err(RuleError::new(
                    "critical",
                    "must point the same way as warning (both above or both below)",
                ));
            }
        }
        if self.for_secs > MAX_DURATION_SECS {
            return Err(RuleError::new("for_secs", "at most 86400 (one day)"));
        }
        if self.keep_firing_for_secs > MAX_DURATION_SECS {
            return Err(RuleError::new("keep_firing_for_secs", "at most 86400 (one day)"));
        }
        if self.no_data_after == 0 || self.no_data_after > 86_400 {
            return Err(RuleError::new("no_data_after", "1 to 86400 evaluations"));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(RuleError::new("labels", "at most 16 labels"));
        }
        for (key, value) in &self.labels {
            let ok_key = !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !key.starts_with(|c: char| c.is_ascii_digit());
            if !ok_key {
                return Err(RuleError::new(
                    "labels",
                    "label names are letters, digits and _ (not starting with a digit)",
                ));
            }
            check_text("labels", value, MAX_NAME_CHARS)?;
        }
        check_text("summary", &self.summary, MAX_TEXT_CHARS)?;
        check_text("runbook", &self.runbook, MAX_TEXT_CHARS)?;
        Ok(())
    }

    /// The highest severity the rule can raise.
    pub fn top_severity(&self) -> Severity {
        if self.critical.is_some() {
            Severity::Critical
        } else {
            Severity::Warning
        }
    }

    /// The threshold of `severity`.
    pub fn threshold(&self, severity: Severity) -> Option<&Threshold> {
        match severity {
            Severity::Warning => self.warning.as_ref(),
            Severity::Critical => self.critical.as_ref(),
        }
    }
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    #[default]
    Inactive,
    /// Breaching, for less than the rule's `for`.
    Pending,
    Firing,
    /// Cleared, firing on for the rule's `keep_firing_for`.
    Recovering,
    Resolved,
}

impl AlertState {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Recovering => "recovering",
            AlertState::Resolved => "resolved",
        }
    }

    /// Whether the alert counts as firing (notified and shown in the header).
    pub const fn is_active(self) -> bool {
        matches!(self, AlertState::Firing | AlertState::Recovering)
    }
}

super::named::deserialize_by_name!(
    AlertState,
    [
        AlertState::Inactive,
        AlertState::Pending,
        AlertState::Firing,
        AlertState::Recovering,
        AlertState::Resolved,
    ]
);

/// One rule applied to one series (an operation and tag set, a gauge, the host).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertInstance {
    /// Stable id of the rule and series (hex), for acknowledgements and links.
    pub id: String,
    pub rule: String,
    /// The series: an operation name and its tags, a gauge's name, or `host`.
    pub series: String,
    /// `alertname`, `severity`, the series' labels and the rule's labels.
    pub labels: BTreeMap<String, String>,
    pub state: AlertState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The last value evaluated (`None`: no data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The raise threshold of `severity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// When the current state began, Unix ms.
    pub since_ms: u64,
    /// When the alert first went pending or firing in this episode, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since_ms: Option<u64>,
    #[serde(default)]
    pub flapping: bool,
    #[serde(default)]
    pub acknowledged: bool,
    /// The silence that mutes it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<u64>,
    /// The rule's summary with `{{value}}` and `{{threshold}}` filled in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    pub unit: String,
}

/// One outcome of sending a notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationAttempt {
    pub at_ms: u64,
    /// `webhook <url>` or `alertmanager <url>`.
    pub receiver: String,
    pub attempt: u32,
    /// `sent`, `retrying`, `failed`, `dropped` (queue full) or `silenced`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One stored transition of an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub id: u64,
    pub at_ms: u64,
    pub rule: String,
    pub instance: String,
    pub series: String,
    pub labels: BTreeMap<String, String>,
    pub from: AlertState,
    pub to: AlertState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// What happened in words: `fired`, `resolved`, `flapping`, `escalated` …
    pub note: String,
    #[serde(default)]
    pub notifications: Vec<NotificationAttempt>,
}

/// A silence matcher: `label` matches `value` as a glob (`*` any run, `?` one character;
/// without them, equality).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub label: String,
    pub value: String,
}

/// A silence: alerts whose labels match every matcher are not notified between its start and
/// end (they are still evaluated, stored and shown, marked silenced).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Set by the server.
    #[serde(default)]
    pub id: u64,
    pub matchers: Vec<Matcher>,
    /// Unix ms; defaults to now.
    #[serde(default)]
    pub starts_ms: u64,
    pub ends_ms: u64,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub created_by: String,
}

impl Silence {
    /// Checks the silence as given (`now_ms` fills a missing start).
    pub fn validate(&mut self, now_ms: u64) -> Result<(), RuleError> {
        if self.matchers.is_empty() {
            return Err(RuleError::new("matchers", "at least one matcher"));
        }
        if self.matchers.len() > MAX_LABELS {
            return Err(RuleError::new("matchers", "at most 16 matchers"));
        }
        for m in &self.matchers {
            if m.label.is_empty() {
                return Err(RuleError::new("matchers", "a matcher needs a label"));
            }
            check_text("matchers", &m.label, MAX_NAME_CHARS)?;
            check_text("matchers", &m.value, MAX_NAME_CHARS)?;
        }
        if self.starts_ms == 0 {
            self.starts_ms = now_ms;
        }
        if self.starts_ms > super::MAX_TIME_MS {
            return Err(RuleError::new("starts_ms", "must be before the year 10000"));
        }
        if self.ends_ms > super::MAX_TIME_MS {
            return Err(RuleError::new(
                "ends_ms",
                "must be before the year 10000 (for ever: 253402300799999)",
            ));
        }
        if self.ends_ms <= self.starts_ms {
            return Err(RuleError::new("ends_ms", "must be after starts_ms"));
        }
        check_text("comment", &self.comment, MAX_TEXT_CHARS)?;
        check_text("created_by", &self.created_by, MAX_NAME_CHARS)?;
        Ok(())
    }

    /// Whether the silence is in force at `now_ms`.
    pub fn active_at(&self, now_ms: u64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }
}

/// Firing alerts by severity, for the header badge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCounts {
    pub critical: u32,
    pub warning: u32,
    pub pending: u32,
}

/// What the Alerts page and `GET /api/v1/alerts` show now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsNow {
    pub now_ms: u64,
    pub counts: AlertCounts,
    /// Pending, firing, recovering and recently resolved instances, worst first (the Alerts
    /// page and the live stream list the first [`crate::model::live::LIVE_ALERTS`]).
    pub alerts: Vec<AlertInstance>,
    /// How many such instances there are in all, listed or not.
    #[serde(default)]
    pub total: usize,
    pub silences: Vec<Silence>,
    pub receivers: Vec<ReceiverStats>,
}

/// A notification receiver's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverStats {
    pub receiver: String,
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    pub dropped: u64,
    pub queued: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// When a rule would have fired over a past range ("test this rule").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleTestResult {
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_secs: u64,
    /// Series the rule matched in the range.
    pub series: usize,
    /// Transitions it would have made, oldest first.
    pub events: Vec<AlertEvent>,
    /// Why nothing could be evaluated, when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The rules as listed, with problems found when they were loaded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesView {
    pub rules: Vec<Rule>,
}

/// Alert history as listed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertHistory {
    pub from_ms: u64,
    pub to_ms: u64,
    pub events: Vec<AlertEvent>,
    /// Whether more events matched than the answer holds.
    pub truncated: bool,
}

/// One number a recommendation rests on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub label: String,
    pub value: f64,
    pub unit: String,
    /// What it is compared with (a baseline, a target), when anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_to: Option<f64>,
}

/// Advice computed from this server's data, with the numbers that justify it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub title: String,
    pub severity: Severity,
    /// What it is about: an operation's name, `host`, a gauge.
    pub subject: String,
    /// When the problem began, when that could be told, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// The findings in words, each backed by `evidence`.
    pub findings: Vec<String>,
    pub evidence: Vec<Evidence>,
    pub suggestion: String,
    /// The page (and range) that shows it.
    pub link: String,
    /// The API answer with the data behind it.
    pub data: String,
}

/// `GET /api/v1/recommendations`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recommendations {
    pub now_ms: u64,
    /// The recent period judged and the baseline it is compared with.
    pub recent_from_ms: u64,
    pub baseline_from_ms: u64,
    pub items: Vec<Recommendation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        let mut r = Rule::new("slow", Target::operation("api.*", OpStat::P95, Window::M1));
        r.warning = Some(Threshold::above(500.0, 400.0));
        r
    }

    #[test]
    fn the_issue_example_parses_and_validates() {
        let json = r#"{"name": "checkout slow",
            "target": {"operation": "api.checkout*", "stat": "p95", "window": "1m"},
            "warning": {"above": 500, "clear_below": 400},
            "critical": {"above": 2000, "clear_below": 1500},
            "for_secs": 120, "keep_firing_for_secs": 60, "min_count": 20,
            "labels": {"team": "web"}, "summary": "..."}"#;
        let r: Rule = serde_json::from_str(json).unwrap();
        r.validate().unwrap();
        assert_eq!(r.top_severity(), Severity::Critical);
        assert!(matches!(r.target.kind(), Ok(TargetKind::Operation { stat: OpStat::P95, .. })));
        for target in [
            r#"{"host": "cpu_pct"}"#,
            r#"{"gauge": "queue.actions"}"#,
            r#"{"vitals": "ws_tick_p99_ms"}"#,
        ] {
            let t: Target = serde_json::from_str(target).unwrap();
            t.kind().unwrap();
        }
    }

    #[test]
    fn bad_rules_name_their_field() {
        let field = |r: &Rule| r.validate().unwrap_err().field;
        let mut r = rule();
        r.warning = Some(Threshold::above(500.0, 600.0));
        assert_eq!(field(&r), "warning");
        r.warning = Some(Threshold { above: Some(f64::INFINITY), ..Default::default() });
        assert_eq!(field(&r), "warning");
        r.warning = None;
        assert_eq!(field(&r), "warning");
        let mut r = rule();
        r.target = Target::default();
        assert_eq!(field(&r), "target");
        r.target = Target {
            host: Some(HostMetric::CpuPct),
            gauge: Some("g".into()),
            ..Default::default()
        };
        assert_eq!(field(&r), "target");
        let mut r = rule();
        r.name = " ".into();
        assert_eq!(field(&r), "name");
        let mut r = rule();
        r.critical = Some(Threshold::below(10.0, 20.0));
        assert_eq!(field(&r), "critical");
        let mut r = rule();
        r.labels.insert("bad key".into(), "v".into());
        assert_eq!(field(&r), "labels");
        assert!(serde_json::from_str::<Rule>(r#"{"name":"x","target":{"host":"nope"}}"#).is_err());
        assert!(serde_json::from_str::<Rule>(
            r#"{"name":"x","target":{"host":"cpu_pct"},"for_secs":-1}"#
        )
        .is_err());
    }

    #[test]
    fn thresholds_raise_and_clear_with_hysteresis() {
        let up = Threshold::above(500.0, 400.0);
        assert!(up.breached(501.0) && !up.breached(500.0));
        assert!(!up.cleared(450.0) && up.cleared(399.0));
        let down = Threshold::below(70.0, 75.0);
        assert!(down.breached(69.0) && !down.breached(71.0));
        assert!(!down.cleared(72.0) && down.cleared(76.0));
        let plain = Threshold { above: Some(10.0), ..Default::default() };
        assert!(plain.cleared(10.0) && !plain.cleared(10.5));
    }

    #[test]
    fn silences_need_matchers_and_an_end_after_their_start() {
        let mut s = Silence {
            id: 0,
            matchers: vec![Matcher { label: "operation".into(), value: "api.*".into() }],
            starts_ms: 0,
            ends_ms: 2_000,
            comment: String::new(),
            created_by: String::new(),
        };
        s.validate(1_000).unwrap();
        assert!(s.active_at(1_500) && !s.active_at(2_000));
        assert_eq!(s.starts_ms, 1_000);
        let mut late = s.clone();
        late.starts_ms = 0;
        late.ends_ms = 500;
        assert_eq!(late.validate(1_000).unwrap_err().field, "ends_ms");
        // "For ever" as the largest number would not fit the store's column (it read back as
        // -1 and expired at once): refused, naming the field; the year 9999 is the limit.
        let mut forever = s.clone();
        forever.ends_ms = u64::MAX;
        assert_eq!(forever.validate(1_000).unwrap_err().field, "ends_ms");
        forever.ends_ms = super::super::MAX_TIME_MS;
        forever.validate(1_000).unwrap();
        forever.starts_ms = u64::MAX - 1;
        assert_eq!(forever.validate(1_000).unwrap_err().field, "starts_ms");
    }
}

/// Most spans one answer holds (the longest first are kept).
pub const MAX_SPANS: usize = 200;

/// Most `(label, value)` pairs a spans query may require.
pub const MAX_SPAN_LABELS: usize = 8;

/// A stretch of time during which one alert instance was firing (or recovering): what the
/// charts draw as a band.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertSpan {
    pub rule: String,
    pub series: String,
    /// The worst severity it reached in the span.
    pub severity: Severity,
    pub from_ms: u64,
    /// `None` while it still fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<u64>,
}

/// The spans overlapping `[from_ms, to_ms)`, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertSpans {
    pub from_ms: u64,
    pub to_ms: u64,
    pub spans: Vec<AlertSpan>,
    /// More overlapped than [`MAX_SPANS`]; the shortest were left out.
    pub truncated: bool,
}
