//! Per-operation statistics as they travel on the wire: windows, latency classes and summaries.
//! Compiled into the server and the WASM client alike; plain serde data only.

use serde::{Deserialize, Serialize};

/// A sliding window over which operation statistics are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Window {
    #[serde(rename = "1m")]
    M1,
    #[default]
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [Window::M1, Window::M5, Window::M15, Window::H1];

    /// Length of the window in seconds.
    pub const fn secs(self) -> u64 {
        match self {
            Window::M1 => 60,
            Window::M5 => 300,
            Window::M15 => 900,
            Window::H1 => 3600,
        }
    }

    /// The label used in URLs and JSON (`1m`, `5m`, `15m`, `1h`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Window::M1 => "1m",
            Window::M5 => "5m",
            Window::M15 => "15m",
            Window::H1 => "1h",
        }
    }

    /// Parses a label produced by [`Window::as_str`].
    pub fn parse(label: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == label)
    }
}

/// Which timings a view shows: operations, or events (each kept apart, with names of their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Timings {
    #[default]
    Operations,
    Events,
}

impl Timings {
    pub const ALL: [Timings; 2] = [Timings::Operations, Timings::Events];

    /// The label in URLs (`?of=events`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Timings::Operations => "operations",
            Timings::Events => "events",
        }
    }

    pub fn parse(label: &str) -> Option<Timings> {
        Timings::ALL.into_iter().find(|t| t.as_str() == label)
    }
}

/// How fast an operation is, judged from its p95 latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyClass {
    Excellent,
    Good,
    Acceptable,
    Slow,
}

impl LatencyClass {
    pub const fn as_str(self) -> &'static str {
        match self {
            LatencyClass::Excellent => "excellent",
            LatencyClass::Good => "good",
            LatencyClass::Acceptable => "acceptable",
            LatencyClass::Slow => "slow",
        }
    }
}

super::named::deserialize_by_name!(
    LatencyClass,
    [LatencyClass::Excellent, LatencyClass::Good, LatencyClass::Acceptable, LatencyClass::Slow]
);
super::named::deserialize_by_name!(Window, [Window::M1, Window::M5, Window::M15, Window::H1]);

/// Upper bounds (exclusive, in milliseconds) of the latency classes; beyond `acceptable_ms` is slow.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyThresholds {
    pub excellent_ms: f64,
    pub good_ms: f64,
    pub acceptable_ms: f64,
}

impl Default for LatencyThresholds {
    fn default() -> Self {
        LatencyThresholds { excellent_ms: 100.0, good_ms: 2_000.0, acceptable_ms: 5_000.0 }
    }
}

impl LatencyThresholds {
    /// Classifies a p95 latency in milliseconds.
    pub fn classify(&self, p95_ms: f64) -> LatencyClass {
        if p95_ms < self.excellent_ms {
            LatencyClass::Excellent
        } else if p95_ms < self.good_ms {
            LatencyClass::Good
        } else if p95_ms < self.acceptable_ms {
            LatencyClass::Acceptable
        } else {
            LatencyClass::Slow
        }
    }
}

/// Statistics of one operation over one window. Only operations with at least one sample in the
/// window are summarised, so every figure is defined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationSummary {
    pub name: String,
    /// The tags this row is grouped by (`by=`); empty when grouped by name only.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    /// The sliding window summarised; absent for a stored time range (its answer says which).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Samples in the window (sample-rate weights applied, so it may exceed what was received).
    pub count: u64,
    /// Seconds the window really covers: its nominal length, or less right after start-up.
    pub span_secs: u64,
    /// `count` per minute of `span_secs`.
    pub rate_per_min: f64,
    /// Share of successful samples, 0.0..=100.0.
    pub success_pct: f64,
    pub error_count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub latency_class: LatencyClass,
    /// The mean duration of the failed samples (are failures fast, or slow like timeouts?);
    /// absent without failures, or when their durations are not known (rows stored before
    /// the failures' sum was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_mean_ms: Option<f64>,
    /// The successful samples' mean duration beside `error_mean_ms`: present with it, absent
    /// when every sample failed. Absent too without failures (`mean_ms` is then the successes'
    /// mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_mean_ms: Option<f64>,
}

/// One time bucket of an operation: samples, failures and latency quantiles, for the charts of
/// latency, throughput and error rate over time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// Start of the bucket, Unix milliseconds.
    pub at_ms: u64,
    pub bucket_secs: u64,
    pub count: u64,
    /// Failed samples among `count`.
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// One bar of a latency histogram: samples with `lower_ms <= d < upper_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub lower_ms: f64,
    pub upper_ms: f64,
    pub count: u64,
}

/// Everything the detail view needs about one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationDetail {
    pub summary: OperationSummary,
    /// Relative error bound of every quantile above (0.01 = 1 %).
    pub relative_error: f64,
    pub series: Vec<LatencyPoint>,
    pub histogram: Vec<HistogramBin>,
}

/// What the Operations page shows: the operations wanted over one window, how many more there
/// are, and the cardinality cap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationsView {
    pub of: Timings,
    /// The live window or stored range summarised.
    pub span: super::history::Span,
    /// Unix ms the statistics were computed at.
    pub now_ms: u64,
    /// Relative error bound of every quantile (0.01 = 1 %).
    pub relative_error: f64,
    /// The tag selection applied (`tag=`, `by=`).
    pub selection: super::tags::Selection,
    /// The rows asked for.
    pub wanted: RowsWanted,
    /// The first rows wanted, in order.
    pub operations: Vec<OperationSummary>,
    /// Rows in view (grouped as `selection` says), before the name filter.
    pub total: usize,
    /// Rows whose name matched the filter; those past `operations` were not sent.
    pub matched: usize,
    /// The tag keys and values of the series in view, before the selection: what the tag
    /// filter suggests and the group-by control offers.
    pub tags: Vec<super::tags::TagValues>,
    /// Samples dropped because their name was new and the cap was reached.
    pub dropped_by_cap: u64,
    pub max_series: usize,
    /// StatsD datagrams the kernel dropped before Vitals read them (receive buffer full).
    pub statsd_kernel_dropped: u64,
    /// What the statistics' byte budget did: samples of new series dropped, series evicted
    /// from memory, and the budget in MiB.
    pub memory: MemoryBudgetUse,
}

/// What the statistics' byte budget (`--max-statistics-mb`) has done since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryBudgetUse {
    pub dropped: u64,
    pub evicted: u64,
    pub max_mb: u64,
}

/// One operation's detail as the Operations page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationDetailView {
    pub span: super::history::Span,
    pub now_ms: u64,
    pub detail: OperationDetail,
}

/// A column the operations table can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Name,
    Count,
    Rate,
    Success,
    Errors,
    Mean,
    P50,
    P90,
    #[default]
    P95,
    P99,
    Max,
}

impl SortKey {
    pub const ALL: [SortKey; 11] = [
        SortKey::Name,
        SortKey::Count,
        SortKey::Rate,
        SortKey::Success,
        SortKey::Errors,
        SortKey::Mean,
        SortKey::P50,
        SortKey::P90,
        SortKey::P95,
        SortKey::P99,
        SortKey::Max,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Count => "count",
            SortKey::Rate => "rate",
            SortKey::Success => "success",
            SortKey::Errors => "errors",
            SortKey::Mean => "mean",
            SortKey::P50 => "p50",
            SortKey::P90 => "p90",
            SortKey::P95 => "p95",
            SortKey::P99 => "p99",
            SortKey::Max => "max",
        }
    }

    pub fn parse(label: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == label)
    }

    /// The natural direction: names A→Z, success rate worst first, everything else largest first.
    pub const fn default_descending(self) -> bool {
        !matches!(self, SortKey::Name | SortKey::Success)
    }
}

/// A row of operation figures a table can sort by [`SortKey`]: the live summaries and a
/// report's rows.
pub trait Sortable {
    fn sort_name(&self) -> &str;
    /// The row's figure for `key` (never asked for `Name`; 0 for a figure the row lacks).
    fn figure(&self, key: SortKey) -> f64;
}

impl Sortable for OperationSummary {
    fn sort_name(&self) -> &str {
        &self.name
    }

    fn figure(&self, key: SortKey) -> f64 {
        match key {
            SortKey::Name => 0.0,
            SortKey::Count => self.count as f64,
            SortKey::Rate => self.rate_per_min,
            SortKey::Success => self.success_pct,
            SortKey::Errors => self.error_count as f64,
            SortKey::Mean => self.mean_ms,
            SortKey::P50 => self.p50_ms,
            SortKey::P90 => self.p90_ms,
            SortKey::P95 => self.p95_ms,
            SortKey::P99 => self.p99_ms,
            SortKey::Max => self.max_ms,
        }
    }
}

/// `a` against `b` in the order `key` and `descending` give (ties broken by name, A→Z).
fn compare<T: Sortable>(a: &T, b: &T, key: SortKey, descending: bool) -> std::cmp::Ordering {
    let primary = match key {
        SortKey::Name => a.sort_name().cmp(b.sort_name()),
        _ => a.figure(key).total_cmp(&b.figure(key)),
    };
    let primary = if descending { primary.reverse() } else { primary };
    primary.then_with(|| a.sort_name().cmp(b.sort_name()))
}

/// Sorts rows by `key` (ties broken by name, A→Z).
pub fn sort_operations<T: Sortable>(ops: &mut [T], key: SortKey, descending: bool) {
    ops.sort_by(|a, b| compare(a, b, key, descending));
}

/// Rows a table shows at first, and how many more each "Show more" adds.
pub const TABLE_ROWS: usize = 200;

/// Most rows one answer may hold.
pub const MAX_TABLE_ROWS: usize = 10_000;

/// Which rows of a long table the server sends: those whose name holds `filter` (in any case),
/// in `sort` order, the first `limit` of them. The table is cut on the server so that a page
/// never carries (nor a server renders) ten thousand rows nobody scrolls to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RowsWanted {
    pub sort: SortKey,
    pub descending: bool,
    #[serde(default)]
    pub filter: String,
    pub limit: usize,
}

impl Default for RowsWanted {
    fn default() -> Self {
        RowsWanted {
            sort: SortKey::default(),
            descending: SortKey::default().default_descending(),
            filter: String::new(),
            limit: TABLE_ROWS,
        }
    }
}

impl RowsWanted {
    /// Keeps the rows wanted, in order, and returns how many matched the filter. Only the rows
    /// kept are sorted: the rest are just partitioned off.
    pub fn apply<T: Sortable>(&self, rows: &mut Vec<T>) -> usize {
        let needle = self.filter.trim().to_lowercase();
        if !needle.is_empty() {
            rows.retain(|r| r.sort_name().to_lowercase().contains(&needle));
        }
        let matched = rows.len();
        let limit = self.limit.clamp(1, MAX_TABLE_ROWS);
        let (key, descending) = (self.sort, self.descending);
        if rows.len() > limit {
            rows.select_nth_unstable_by(limit - 1, |a, b| compare(a, b, key, descending));
            rows.truncate(limit);
        }
        sort_operations(rows, key, descending);
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, p95_ms: f64, count: u64) -> OperationSummary {
        OperationSummary {
            name: name.into(),
            tags: Default::default(),
            window: Some(Window::M5),
            count,
            span_secs: 300,
            rate_per_min: count as f64 / 5.0,
            success_pct: 100.0,
            error_count: 0,
            min_ms: 1.0,
            mean_ms: p95_ms / 2.0,
            max_ms: p95_ms * 2.0,
            p50_ms: p95_ms / 2.0,
            p90_ms: p95_ms,
            p95_ms,
            p99_ms: p95_ms,
            latency_class: LatencyThresholds::default().classify(p95_ms),
            error_mean_ms: None,
            ok_mean_ms: None,
        }
    }

    #[test]
    fn thresholds_classify_p95() {
        let t = LatencyThresholds::default();
        assert_eq!(t.classify(99.9), LatencyClass::Excellent);
        assert_eq!(t.classify(100.0), LatencyClass::Good);
        assert_eq!(t.classify(1999.0), LatencyClass::Good);
        assert_eq!(t.classify(2000.0), LatencyClass::Acceptable);
        assert_eq!(t.classify(5000.0), LatencyClass::Slow);
    }

    #[test]
    fn sorting_by_any_column() {
        let mut ops = vec![op("b", 10.0, 5), op("a", 300.0, 1), op("c", 10.0, 9)];
        sort_operations(&mut ops, SortKey::P95, true);
        let names: Vec<_> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        sort_operations(&mut ops, SortKey::Count, false);
        let names: Vec<_> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        sort_operations(&mut ops, SortKey::Name, true);
        let names: Vec<_> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
        assert_eq!(SortKey::parse("p99"), Some(SortKey::P99));
        assert_eq!(SortKey::parse("bogus"), None);
        assert_eq!(Window::parse("15m"), Some(Window::M15));
        assert_eq!(Window::parse("2h"), None);
    }

    #[test]
    fn the_rows_wanted_are_filtered_sorted_and_cut() {
        let mut ops: Vec<OperationSummary> =
            (0..500).map(|i| op(&format!("Api.Call{i:03}"), i as f64, 1000 - i)).collect();
        ops.push(op("report.render", 10_000.0, 1));
        let wanted = RowsWanted { limit: 3, ..RowsWanted::default() };
        let mut rows = ops.clone();
        assert_eq!(wanted.apply(&mut rows), 501);
        let names: Vec<_> = rows.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["report.render", "Api.Call499", "Api.Call498"]);
        // The filter ignores case; the count is of the matches before the cut.
        let wanted = RowsWanted { sort: SortKey::Count, filter: "api.call4".into(), ..wanted };
        let mut rows = ops.clone();
        assert_eq!(wanted.apply(&mut rows), 100);
        let names: Vec<_> = rows.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["Api.Call400", "Api.Call401", "Api.Call402"]);
        // Ascending, and a limit beyond the rows keeps them all.
        let wanted = RowsWanted { descending: false, limit: 1000, ..wanted };
        let mut rows = ops.clone();
        assert_eq!(wanted.apply(&mut rows), 100);
        assert_eq!(rows.len(), 100);
        assert_eq!(rows[0].name, "Api.Call499");
    }
}
