//! Stored history as it travels on the wire: range answers for operations, events and host
//! figures. Every answer says which tier served it, the step really used and the error bound.

use serde::{Deserialize, Serialize};

use super::ops::OperationSummary;
use super::MAX_TIME_MS;

/// Which stored resolution answered a range query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Raw host samples.
    Raw,
    Minute,
    Hour,
    /// Hour rows for whole hours inside the range, minute rows at its edges.
    MinuteAndHour,
    /// Day rows (whole UTC days) only.
    Day,
    /// Day rows for whole days inside the range, hour and minute rows at its edges.
    DayAndFiner,
}

impl Tier {
    /// As on the wire: `raw`, `minute`, `hour`, `minute_and_hour`, `day`, `day_and_finer`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "minute",
            Tier::Hour => "hour",
            Tier::MinuteAndHour => "minute_and_hour",
            Tier::Day => "day",
            Tier::DayAndFiner => "day_and_finer",
        }
    }
}

super::named::deserialize_by_name!(
    Tier,
    [Tier::Raw, Tier::Minute, Tier::Hour, Tier::MinuteAndHour, Tier::Day, Tier::DayAndFiner]
);

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
    /// The tag keys (and values) of every series stored in the range, before `tag=`.
    #[serde(default)]
    pub tags: Vec<super::tags::TagValues>,
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

impl SeriesPoint {
    /// The point as the latency charts read it, for steps of `step_ms`.
    pub fn latency(&self, step_ms: u64) -> super::ops::LatencyPoint {
        super::ops::LatencyPoint {
            at_ms: self.at_ms,
            bucket_secs: step_ms / 1000,
            count: self.count,
            errors: self.errors,
            p50_ms: self.p50_ms,
            p95_ms: self.p95_ms,
            p99_ms: self.p99_ms,
        }
    }
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
    /// Steps with samples, oldest first; steps without any are absent (gaps). With `by=`,
    /// every group merged.
    pub points: Vec<SeriesPoint>,
    /// With `by=`: one series per value (or combination) of the `by` keys, in tag order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<SeriesGroup>,
}

/// One group of a series grouped with `by=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesGroup {
    /// The group's values of the `by` keys (a key the series lack is absent).
    pub tags: std::collections::BTreeMap<String, String>,
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

/// One process name's use of the host over a range, from the top-process scans (every 10 s,
/// the top 5 by CPU and by memory each). Processes sharing a name are summed per scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    /// The process's command name (at most 32 bytes).
    pub name: String,
    /// CPU over the range, 100 = one core: the mean over every scan in the range, a scan where
    /// it was not among the top counting as 0 (so a lower bound).
    pub cpu_mean_pct: f64,
    /// Its highest CPU in one scan.
    pub cpu_max_pct: f64,
    /// Its largest resident memory in one scan.
    pub rss_max_bytes: u64,
    /// Scans in which it was among the top processes.
    pub scans: u64,
}

/// `GET /api/v1/host/processes?from=&to=`: the processes that used the most CPU and the most
/// memory over `[from_ms, to_ms)`, at most five each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopProcesses {
    pub from_ms: u64,
    pub to_ms: u64,
    /// Process scans stored in the range.
    pub scans: u64,
    /// Busiest first (by mean CPU, then peak CPU).
    pub by_cpu: Vec<ProcessSummary>,
    /// Largest first (by peak resident memory).
    pub by_memory: Vec<ProcessSummary>,
}

/// What a view covers: a live sliding window, the last so long from the store, or a fixed
/// range from the store (a custom range or a zoom). The URL carries it as `?range=24h` or
/// `?from=<Unix ms>&to=<Unix ms>`, so a view can be shared and survives a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Span {
    Live(super::ops::Window),
    /// The last this many seconds, from the store.
    Stored(u64),
    /// From and to, Unix ms, from the store.
    Between(u64, u64),
}

/// Stored ranges ending now: label and seconds.
pub const STORED_SPANS: [(&str, u64); 6] = [
    ("15m", 900),
    ("1h", 3_600),
    ("6h", 21_600),
    ("24h", 86_400),
    ("7d", 604_800),
    ("30d", 2_592_000),
];

/// Longest range one view covers (the default retention of hour rows).
pub const MAX_SPAN_SECS: u64 = 400 * 86_400;

impl Default for Span {
    fn default() -> Self {
        Span::Live(super::ops::Window::default())
    }
}

impl Span {
    /// The Operations page's choices: the live windows (1m to 1h), then stored ranges beyond
    /// them (6h to 30d).
    pub fn operations_choices() -> Vec<Span> {
        let live = super::ops::Window::ALL.into_iter().map(Span::Live);
        let longest_live = super::ops::Window::ALL.iter().map(|w| w.secs()).max().unwrap_or(0);
        let stored = STORED_SPANS.iter().filter(move |(_, s)| *s > longest_live);
        live.chain(stored.map(|&(_, secs)| Span::Stored(secs))).collect()
    }

    /// The Values page's choices: every stored range (its values are minute rows).
    pub fn values_choices() -> Vec<Span> {
        STORED_SPANS.iter().map(|&(_, secs)| Span::Stored(secs)).collect()
    }

    /// The Dashboard's choices: live (its charts' last minute), then every stored range.
    pub fn dashboard_choices() -> Vec<Span> {
        std::iter::once(Span::Live(super::ops::Window::M1))
            .chain(STORED_SPANS.iter().map(|&(_, secs)| Span::Stored(secs)))
            .collect()
    }

    pub fn secs(self) -> u64 {
        match self {
            Span::Live(w) => w.secs(),
            Span::Stored(secs) => secs,
            Span::Between(from, to) => to.saturating_sub(from) / 1000,
        }
    }

    pub fn is_live(self) -> bool {
        matches!(self, Span::Live(_))
    }

    /// The stored range it covers at `now_ms`, `None` for a live window.
    pub fn bounds(self, now_ms: u64) -> Option<(u64, u64)> {
        match self {
            Span::Live(_) => None,
            Span::Stored(secs) => Some((now_ms.saturating_sub(secs.saturating_mul(1000)), now_ms)),
            Span::Between(from, to) => Some((from, to)),
        }
    }

    /// [`Self::bounds`] of a span a request brought, or what is wrong with it: a range that
    /// ends before it starts, ends after [`MAX_TIME_MS`], or is longer than [`MAX_SPAN_SECS`]
    /// (the REST API's time parameters refuse the same).
    pub fn checked_bounds(self, now_ms: u64) -> Result<Option<(u64, u64)>, String> {
        let Some((from, to)) = self.bounds(now_ms) else { return Ok(None) };
        if self.secs() > MAX_SPAN_SECS {
            return Err(format!("span: at most {} days", MAX_SPAN_SECS / 86_400));
        }
        if from >= to {
            return Err("span: from must be before to".to_string());
        }
        if to > MAX_TIME_MS {
            return Err(format!("span: to must be at most {MAX_TIME_MS}"));
        }
        Ok(Some((from, to)))
    }

    /// The label: a window's (`5m`), a stored range's (`24h`), or `custom`.
    pub fn label(self) -> String {
        match self {
            Span::Live(w) => w.as_str().to_string(),
            Span::Stored(secs) => STORED_SPANS
                .iter()
                .find(|(_, s)| *s == secs)
                .map_or_else(|| format!("{secs}s"), |(l, _)| (*l).to_string()),
            Span::Between(..) => "custom".to_string(),
        }
    }

    /// The URL query that restores it: `range=24h` or `from=…&to=…`.
    pub fn to_query(self) -> String {
        match self {
            Span::Between(from, to) => format!("from={from}&to={to}"),
            other => format!("range={}", other.label()),
        }
    }

    /// Reads a URL's `range`, `from` and `to` against a page's `choices`: from and to (Unix ms,
    /// from before to, at most [`MAX_SPAN_SECS`] apart) win over a range label; `None` when
    /// neither is usable.
    pub fn from_query(
        range: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        choices: &[Span],
    ) -> Option<Span> {
        let ms = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
        if let (Some(from), Some(to)) = (ms(from), ms(to)) {
            if from < to && (to - from) / 1000 <= MAX_SPAN_SECS {
                return Some(Span::Between(from, to));
            }
        }
        let range = range?;
        choices.iter().copied().find(|s| s.label() == range)
    }

    /// Width in seconds of the points of a stored range's charts (60 to 120 points).
    pub fn stored_step_secs(secs: u64) -> u64 {
        match secs {
            0..=3_600 => 60,
            3_601..=21_600 => 300,
            21_601..=86_400 => 900,
            86_401..=604_800 => 7_200,
            _ => 21_600,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span a request brought is checked as the REST API checks its times: the pages never
    /// send these, a hand-made request to a server function may.
    #[test]
    fn spans_from_requests_are_checked() {
        let now = 1_700_000_000_000;
        assert_eq!(Span::Live(super::super::ops::Window::M5).checked_bounds(now), Ok(None));
        assert_eq!(Span::Stored(3600).checked_bounds(now), Ok(Some((now - 3_600_000, now))));
        assert_eq!(Span::Between(1_000, 61_000).checked_bounds(now), Ok(Some((1_000, 61_000))));
        let refused = [
            Span::Between(now, now - 120_000),
            Span::Between(u64::MAX, 0),
            Span::Between(now, now),
            Span::Between(MAX_TIME_MS, MAX_TIME_MS + 1),
            Span::Between(0, now),
            Span::Stored(u64::MAX / 999),
            Span::Stored(0),
        ];
        for span in refused {
            assert!(span.checked_bounds(now).is_err(), "{span:?}");
        }
    }

    #[test]
    fn spans_round_trip_through_the_url() {
        for choices in [Span::operations_choices(), Span::dashboard_choices()] {
            for span in &choices {
                let query = span.to_query();
                let range = query.strip_prefix("range=");
                assert_eq!(Span::from_query(range, None, None, &choices), Some(*span));
            }
        }
        let ops = Span::operations_choices();
        assert_eq!(
            Span::from_query(Some("15m"), None, None, &ops),
            Some(Span::Live(super::super::ops::Window::M15))
        );
        let dash = Span::dashboard_choices();
        assert_eq!(Span::from_query(Some("15m"), None, None, &dash), Some(Span::Stored(900)));
        assert_eq!(Span::from_query(Some("2d"), None, None, &dash), None);
        let fixed = Span::Between(1_000, 61_000);
        assert_eq!(fixed.to_query(), "from=1000&to=61000");
        assert_eq!(Span::from_query(Some("1h"), Some("1000"), Some("61000"), &dash), Some(fixed));
        // Unusable bounds fall back to the range label.
        assert_eq!(
            Span::from_query(Some("1h"), Some("9"), Some("5"), &dash),
            Some(Span::Stored(3600))
        );
        assert_eq!(Span::from_query(None, Some("x"), Some("5"), &dash), None);
        assert_eq!(fixed.bounds(99), Some((1_000, 61_000)));
        assert_eq!(Span::Stored(60).bounds(100_000), Some((40_000, 100_000)));
    }
}
