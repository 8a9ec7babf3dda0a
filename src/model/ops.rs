//! Per-operation statistics as they travel on the wire: windows, latency classes and summaries.
//! Compiled into the server and the WASM client alike; plain serde data only.

use serde::{Deserialize, Serialize};

/// A sliding window over which operation statistics are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
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

/// How fast an operation is, judged from its p95 latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub window: Window,
    /// Samples in the window (sample-rate weights applied, so it may exceed what was received).
    pub count: u64,
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
}

/// Latency quantiles of one time bucket, for the latency-over-time chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// Start of the bucket, Unix milliseconds.
    pub at_ms: u64,
    pub bucket_secs: u64,
    pub count: u64,
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
