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

/// What a view of operations covers: a live sliding window, or a stored range ending now.
/// Its label (`5m`, `24h`, …) is what the URL carries (`?range=24h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Span {
    Live(super::ops::Window),
    /// The last this many seconds, from the store.
    Stored(u64),
}

/// Stored ranges offered by the UI: label and seconds.
pub const STORED_SPANS: [(&str, u64); 4] =
    [("6h", 21_600), ("24h", 86_400), ("7d", 604_800), ("30d", 2_592_000)];

impl Default for Span {
    fn default() -> Self {
        Span::Live(super::ops::Window::default())
    }
}

impl Span {
    /// Every span the UI offers: the live windows, then the stored ranges.
    pub fn all() -> Vec<Span> {
        let live = super::ops::Window::ALL.into_iter().map(Span::Live);
        live.chain(STORED_SPANS.iter().map(|&(_, secs)| Span::Stored(secs))).collect()
    }

    pub fn secs(self) -> u64 {
        match self {
            Span::Live(w) => w.secs(),
            Span::Stored(secs) => secs,
        }
    }

    /// The label: a window's (`5m`) or a stored range's (`24h`).
    pub fn label(self) -> String {
        match self {
            Span::Live(w) => w.as_str().to_string(),
            Span::Stored(secs) => STORED_SPANS
                .iter()
                .find(|(_, s)| *s == secs)
                .map_or_else(|| format!("{secs}s"), |(l, _)| (*l).to_string()),
        }
    }

    /// Parses a label of [`Span::all`].
    pub fn parse(label: &str) -> Option<Span> {
        Span::all().into_iter().find(|s| s.label() == label)
    }

    /// Width in seconds of the points of a stored range's latency chart (60 to 120 points).
    pub fn stored_step_secs(secs: u64) -> u64 {
        match secs {
            0..=21_600 => 300,
            21_601..=86_400 => 900,
            86_401..=604_800 => 7_200,
            _ => 21_600,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_trip_their_labels() {
        for span in Span::all() {
            assert_eq!(Span::parse(&span.label()), Some(span));
        }
        assert_eq!(Span::parse("24h"), Some(Span::Stored(86_400)));
        assert_eq!(Span::parse("2d"), None);
    }
}
