//! Stored history as it travels on the wire: range answers for operations, events and host
//! figures. Every answer says which tier served it, the step really used and the error bound.

use serde::{Deserialize, Serialize};

use super::ops::OperationSummary;

/// Which stored resolution answered a range query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Raw host samples.
    Raw,
    Minute,
    Hour,
    /// Hour rows for whole hours inside the range, minute rows at its edges.
    MinuteAndHour,
}

/// `GET /api/v1/operations?from=&to=` (and `/api/v1/events?from=&to=`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationsRange {
    pub from_ms: u64,
    pub to_ms: u64,
    pub tier: Tier,
    /// Relative error bound of every quantile (0.01 = 1 %).
    pub relative_error: f64,
    /// Series with samples in the range (before `limit`).
    pub total: usize,
    pub operations: Vec<OperationSummary>,
}

/// One step of an operation's stored series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Start of the step, Unix ms.
    pub at_ms: u64,
    pub count: u64,
    pub errors: u64,
    pub rate_per_min: f64,
    /// Share of failed samples, 0..=100.
    pub error_pct: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// `GET /api/v1/operations/{name}/series?from=&to=&step=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationSeries {
    pub name: String,
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: u64,
    pub tier: Tier,
    pub relative_error: f64,
    /// Steps with samples, oldest first; steps without any are absent (gaps).
    pub points: Vec<SeriesPoint>,
}

/// One step of host history: per requested field, its mean, min and max (`None`: no value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostPoint {
    pub at_ms: u64,
    pub mean: Vec<Option<f64>>,
    pub min: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
}

/// `GET /api/v1/history/host?from=&to=&step=&fields=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostHistory {
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: u64,
    pub tier: Tier,
    pub fields: Vec<String>,
    /// Steps with samples, oldest first; missing steps are gaps.
    pub points: Vec<HostPoint>,
}
