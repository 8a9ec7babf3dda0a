//! Performance reports: what a report is asked for, its sections as the page and the exports
//! read them, and the before/after comparison. `GET /api/v1/reports/{id}` answers a
//! [`Report`]; each section also comes alone from `/api/v1/reports/{id}/sections/{section}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::alerts::{AlertEvent, Recommendation};
use super::history::{HostPoint, SeriesPoint, Tier};
use super::ops::{HistogramBin, LatencyClass, SortKey, Sortable};

/// Longest name of a report, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Most operations the Operations section lists (the busiest first).
pub const MAX_OPERATION_ROWS: usize = 1_000;
/// Operations the latency, distribution and comparison sections chart (the busiest first).
pub const TOP_OPERATIONS: usize = 5;
/// Most operations one comparison judges (the busiest of the after side first).
pub const MAX_COMPARED: usize = 200;
/// Apdex's satisfied threshold when a report does not set one.
pub const DEFAULT_APDEX_T_MS: f64 = 500.0;

/// Which operations a report covers: a name glob and tags that must all match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// `*` any run, `?` one character; none: every operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Scope {
    /// `api.* region=eu`, or `all operations`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.operations.iter().cloned().collect();
        parts.extend(self.tags.iter().map(|(k, v)| format!("{k}={v}")));
        if parts.is_empty() {
            "all operations".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// A time as the history API takes it: Unix ms, or text (`now`, `-24h`, RFC 3339).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimeArg {
    Ms(u64),
    Text(String),
}

/// A range in a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeArg {
    pub from: TimeArg,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeArg>,
}

/// `POST /api/v1/reports`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub name: String,
    pub from: TimeArg,
    /// Default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeArg>,
    #[serde(default)]
    pub scope: Scope,
    /// The range the Comparison section compares the report's range with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<RangeArg>,
    /// Apdex's T in ms (default [`DEFAULT_APDEX_T_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apdex_t_ms: Option<f64>,
}

/// `POST /api/v1/compare`: each side is `{"from": …, "to": …}`, `{"report": id}` (that
/// report's range and scope) or `{"tag": "version:1.4"}` (over the shared `from`/`to`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// The range of tag sides (default: the last hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeArg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeArg>,
    #[serde(default)]
    pub scope: Scope,
}

/// Why a change was refused, naming the field when one is at fault (the page shows it next
/// to the field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub error: String,
}

/// A report as saved: closed ranges are fixed; a live one (`-1h` to `now`) covers the last
/// `live_ms` whenever it is computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportSpec {
    pub name: String,
    pub from_ms: u64,
    pub to_ms: u64,
    /// Set for "the last N": the range moves with the clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_ms: Option<u64>,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<(u64, u64)>,
    pub apdex_t_ms: f64,
}

/// One saved report in the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportInfo {
    pub id: u64,
    pub spec: ReportSpec,
    pub created_ms: u64,
    /// Bytes of its JSON when last computed (0: not computed yet).
    pub size_bytes: u64,
}

/// `GET /api/v1/reports`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportList {
    pub reports: Vec<ReportInfo>,
}

/// What `POST /api/v1/reports` answers (201).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub id: u64,
    /// The page, the JSON and each export.
    pub urls: BTreeMap<String, String>,
}

/// The sections of a report, in page order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionId {
    Summary,
    Operations,
    Latency,
    Throughput,
    Distributions,
    Errors,
    Host,
    Alerts,
    Recommendations,
    Comparison,
}

impl SectionId {
    pub const ALL: [SectionId; 10] = [
        SectionId::Summary,
        SectionId::Operations,
        SectionId::Latency,
        SectionId::Throughput,
        SectionId::Distributions,
        SectionId::Errors,
        SectionId::Host,
        SectionId::Alerts,
        SectionId::Recommendations,
        SectionId::Comparison,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SectionId::Summary => "summary",
            SectionId::Operations => "operations",
            SectionId::Latency => "latency",
            SectionId::Throughput => "throughput",
            SectionId::Distributions => "distributions",
            SectionId::Errors => "errors",
            SectionId::Host => "host",
            SectionId::Alerts => "alerts",
            SectionId::Recommendations => "recommendations",
            SectionId::Comparison => "comparison",
        }
    }

    pub const fn title(self) -> &'static str {
        match self {
            SectionId::Summary => "Summary",
            SectionId::Operations => "Operations",
            SectionId::Latency => "Latency over time",
            SectionId::Throughput => "Throughput and errors",
            SectionId::Distributions => "Distributions",
            SectionId::Errors => "Errors by operation and tag",
            SectionId::Host => "Host resources",
            SectionId::Alerts => "Alerts fired",
            SectionId::Recommendations => "Recommendations",
            SectionId::Comparison => "Comparison",
        }
    }

    pub fn parse(text: &str) -> Option<SectionId> {
        SectionId::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One alert rule's target judged over the report's range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    pub rule: String,
    /// The series judged (`api.checkout{region=eu}`).
    pub series: String,
    /// `p95 above 300` …
    pub target: String,
    pub value: f64,
    pub passed: bool,
}

/// Headline figures of the whole scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub operations: usize,
    pub count: u64,
    pub rate_per_min: f64,
    pub error_pct: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub latency_class: LatencyClass,
    pub targets: Vec<TargetResult>,
}

/// One row of the Operations section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationRow {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub count: u64,
    pub rate_per_min: f64,
    pub success_pct: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub latency_class: LatencyClass,
    /// Apdex at the report's T, 0..=1, within the sketch's error at T and 4T.
    pub apdex: f64,
}

impl Sortable for OperationRow {
    fn sort_name(&self) -> &str {
        &self.name
    }

    fn figure(&self, key: SortKey) -> f64 {
        match key {
            SortKey::Count => self.count as f64,
            SortKey::Rate => self.rate_per_min,
            SortKey::Success => self.success_pct,
            SortKey::Errors => self.count as f64 * (100.0 - self.success_pct) / 100.0,
            SortKey::P50 => self.p50_ms,
            SortKey::P90 => self.p90_ms,
            SortKey::P95 => self.p95_ms,
            SortKey::P99 => self.p99_ms,
            SortKey::Max => self.max_ms,
            SortKey::Name | SortKey::Mean => 0.0,
        }
    }
}

/// One operation's series over the range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedSeries {
    pub name: String,
    pub points: Vec<SeriesPoint>,
}

/// One operation's histogram over the range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedHistogram {
    pub name: String,
    pub count: u64,
    pub bins: Vec<HistogramBin>,
}

/// Failures of one series (name and tags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRow {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub count: u64,
    pub errors: u64,
    pub error_pct: f64,
    /// The failed samples' mean duration: are failures fast (refused early) or slow
    /// (timeouts)? Absent when unknown (rows stored before the store kept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_mean_ms: Option<f64>,
    /// The successful samples' mean duration, beside it; absent when every sample failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_mean_ms: Option<f64>,
}

/// The verdict of a before/after comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    /// No significant change (`~`).
    NoChange,
    NeedMoreData,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Verdict {
    /// As tables show it: `improved`, `regressed`, `~`, `need more data`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::NoChange => "~",
            Verdict::NeedMoreData => "need more data",
        }
    }
}

/// The comparison of one quantile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantileChange {
    pub before_ms: f64,
    pub after_ms: f64,
    /// (after - before) / before in %; none when before is 0.
    pub change_pct: Option<f64>,
    /// 95 % confidence interval of the change in %, when it can be stated.
    pub interval_pct: Option<(f64, f64)>,
    /// Two-sided p-value of the test on per-window values, with enough windows.
    pub p_value: Option<f64>,
    pub verdict: Verdict,
    /// Windows of each side with enough samples for this quantile.
    pub windows_before: usize,
    pub windows_after: usize,
}

/// One operation before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    pub name: String,
    pub before_count: u64,
    pub after_count: u64,
    pub p50: QuantileChange,
    pub p95: QuantileChange,
    pub p99: QuantileChange,
    pub windows_before: usize,
    pub windows_after: usize,
}

/// A side of a comparison as it was resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideInfo {
    pub from_ms: u64,
    pub to_ms: u64,
    /// `version=1.4` when the side is a tag's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `POST /api/v1/compare` and a report's Comparison section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub before: SideInfo,
    pub after: SideInfo,
    pub rows: Vec<ComparisonRow>,
    /// Geometric mean of after/before across operations, as a change in %, per quantile
    /// (a summary, not a test).
    pub geomean_p50_pct: Option<f64>,
    pub geomean_p95_pct: Option<f64>,
    pub geomean_p99_pct: Option<f64>,
    /// Width of the windows that are the unit of replication, ms.
    pub window_ms: u64,
    /// The method and its assumptions, in words.
    pub method: String,
    /// Operations left out beyond [`MAX_COMPARED`].
    pub left_out: usize,
}

/// One section's content: an object whose first field, `kind`, names the section
/// (`summary`, `operations`, ...); the section's own fields follow it.
///
/// Written by serde's derive, read back tag first ([`super::tagged`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SectionBody {
    Summary(Summary),
    Operations(OperationsSection),
    Latency(LatencySection),
    Throughput(ThroughputSection),
    Distributions(DistributionsSection),
    Errors(ErrorsSection),
    Host(HostSection),
    Alerts(AlertsSection),
    Recommendations(RecommendationsSection),
    Comparison(Box<Comparison>),
    /// No baseline was set (the Comparison section).
    NotAsked,
}

super::tagged::tag_first_deserialize!(SectionBody, "kind", {
    "summary" => Summary(Summary),
    "operations" => Operations(OperationsSection),
    "latency" => Latency(LatencySection),
    "throughput" => Throughput(ThroughputSection),
    "distributions" => Distributions(DistributionsSection),
    "errors" => Errors(ErrorsSection),
    "host" => Host(HostSection),
    "alerts" => Alerts(AlertsSection),
    "recommendations" => Recommendations(RecommendationsSection),
    "comparison" => Comparison(Box<Comparison>),
    "not_asked" => NotAsked,
});

/// [`SectionBody::Operations`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationsSection {
    pub rows: Vec<OperationRow>,
    pub apdex_t_ms: f64,
    pub left_out: usize,
}

/// [`SectionBody::Latency`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySection {
    pub step_ms: u64,
    pub series: Vec<NamedSeries>,
}

/// [`SectionBody::Throughput`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputSection {
    pub step_ms: u64,
    pub points: Vec<CountPoint>,
}

/// [`SectionBody::Distributions`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistributionsSection {
    pub histograms: Vec<NamedHistogram>,
}

/// [`SectionBody::Errors`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorsSection {
    pub rows: Vec<ErrorRow>,
}

/// [`SectionBody::Host`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostSection {
    pub step_ms: u64,
    pub fields: Vec<String>,
    pub points: Vec<HostPoint>,
}

/// [`SectionBody::Alerts`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertsSection {
    pub events: Vec<AlertEvent>,
    pub truncated: bool,
}

/// [`SectionBody::Recommendations`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendationsSection {
    pub items: Vec<Recommendation>,
}

/// A computed section: its range and what it found. `empty` says in words why there is
/// nothing (a range with no data is a report that says so, not an error).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub id: SectionId,
    pub from_ms: u64,
    pub to_ms: u64,
    pub tier: Tier,
    /// The sketch's relative error of every quantile shown.
    pub relative_error: f64,
    pub computed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<String>,
    pub body: SectionBody,
}

/// Counts of samples and failures per step (the Throughput section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountPoint {
    pub at_ms: u64,
    pub count: u64,
    pub errors: u64,
}

/// One kind of cached entry and how the cache serves it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheKindStats {
    /// `live` (sections of reports over the last N), `closed` (of fixed ranges), `comparison`.
    pub kind: String,
    /// How long an entry of this kind is kept at most, seconds; none: until evicted.
    pub ttl_secs: Option<u64>,
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    /// hits / (hits + misses) in %, none before the first look-up.
    pub hit_pct: Option<f64>,
    /// Entries removed by their TTL or to keep within the size limit.
    pub evictions: u64,
}

/// `GET /api/v1/cache/stats`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    pub capacity_bytes: u64,
    pub kinds: Vec<CacheKindStats>,
    /// Over every kind.
    pub hit_pct: Option<f64>,
}

/// `GET /api/v1/reports/{id}`: every section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub info: ReportInfo,
    pub sections: Vec<Section>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_ids_round_trip_in_page_order() {
        for id in SectionId::ALL {
            assert_eq!(SectionId::parse(id.as_str()), Some(id));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{}\"", id.as_str()));
        }
        assert_eq!(SectionId::parse("nope"), None);
        assert!(SectionId::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn section_bodies_read_back_as_written_kind_first() {
        let bodies = [
            SectionBody::Operations(OperationsSection {
                rows: vec![],
                apdex_t_ms: 500.0,
                left_out: 2,
            }),
            SectionBody::Latency(LatencySection { step_ms: 60_000, series: vec![] }),
            SectionBody::Throughput(ThroughputSection {
                step_ms: 60_000,
                points: vec![CountPoint { at_ms: 1, count: 9, errors: 1 }],
            }),
            SectionBody::Distributions(DistributionsSection { histograms: vec![] }),
            SectionBody::Errors(ErrorsSection { rows: vec![] }),
            SectionBody::Host(HostSection {
                step_ms: 1000,
                fields: vec!["cpu_pct".into()],
                points: vec![],
            }),
            SectionBody::Alerts(AlertsSection { events: vec![], truncated: true }),
            SectionBody::Recommendations(RecommendationsSection { items: vec![] }),
            SectionBody::NotAsked,
        ];
        for body in bodies {
            let json = serde_json::to_string(&body).unwrap();
            assert!(json.starts_with(r#"{"kind":""#), "{json}");
            assert_eq!(serde_json::from_str::<SectionBody>(&json).unwrap(), body, "{json}");
        }
        let read =
            |json: &str| serde_json::from_str::<SectionBody>(json).map_err(|e| e.to_string());
        assert_eq!(
            read(r#"{"kind":"errors","rows":[],"note":"from a newer server"}"#),
            Ok(SectionBody::Errors(ErrorsSection { rows: vec![] }))
        );
        assert!(read(r#"{"rows":[],"kind":"errors"}"#)
            .unwrap_err()
            .contains("`kind` must come first"));
        assert!(read(r#"{"kind":"weather"}"#).unwrap_err().contains("unknown variant `weather`"));
    }

    #[test]
    fn a_request_takes_ms_or_text_times_and_refuses_unknown_fields() {
        let r: ReportRequest = serde_json::from_str(
            r#"{"name":"w","from":"-1h","to":1700000000000,"scope":{"operations":"api.*","tags":{"region":"eu"}}}"#,
        )
        .unwrap();
        assert_eq!(r.from, TimeArg::Text("-1h".into()));
        assert_eq!(r.to, Some(TimeArg::Ms(1_700_000_000_000)));
        assert_eq!(r.scope.describe(), "api.* region=eu");
        assert!(
            serde_json::from_str::<ReportRequest>(r#"{"name":"w","from":1,"color":1}"#).is_err()
        );
    }
}
