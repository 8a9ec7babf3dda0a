//! StatsD counters, gauges and sets as the Values page and `GET /api/v1/metrics/{kind}/{name}/
//! series` show them: their current readings and their stored history per step.

use serde::{Deserialize, Serialize};

/// A kind of value series.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    #[default]
    Counter,
    Gauge,
    Set,
}

impl ValueKind {
    pub const ALL: [ValueKind; 3] = [ValueKind::Counter, ValueKind::Gauge, ValueKind::Set];

    pub const fn as_str(self) -> &'static str {
        match self {
            ValueKind::Counter => "counter",
            ValueKind::Gauge => "gauge",
            ValueKind::Set => "set",
        }
    }

    pub fn parse(text: &str) -> Option<ValueKind> {
        ValueKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The kind as a title word.
    pub const fn title(self) -> &'static str {
        match self {
            ValueKind::Counter => "Counter",
            ValueKind::Gauge => "Gauge",
            ValueKind::Set => "Set",
        }
    }

    /// What a point's value is, for chart legends and descriptions.
    pub const fn meaning(self) -> &'static str {
        match self {
            ValueKind::Counter => "increments per minute",
            ValueKind::Gauge => "last value",
            ValueKind::Set => "unique members per minute",
        }
    }
}

/// One step of a stored value series, from the minute values in it: a counter's increments per
/// minute (their sum over the step's minutes), a gauge's last value, a set's most unique
/// members in one of its minutes; with the least and most minute values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValuePoint {
    /// Start of the step, Unix ms.
    pub at_ms: u64,
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

/// A value series over a range; steps without a stored minute are absent (gaps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueSeries {
    pub kind: ValueKind,
    pub name: String,
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: u64,
    pub points: Vec<ValuePoint>,
}

/// A value series as the Values page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueReading {
    pub kind: ValueKind,
    pub name: String,
    /// A counter's increments in the last full minute, a gauge's value, a set's unique members;
    /// `None` when only the store knows the name (nothing received since the server started).
    pub value: Option<f64>,
    /// A counter's total since the server started.
    pub total: Option<f64>,
    /// A set whose members were dropped by its bounds: `value` is a lower bound.
    pub lower_bound: bool,
}

/// Every value series known, in memory or in the store, by kind then name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ValuesView {
    pub now_ms: u64,
    pub readings: Vec<ValueReading>,
    /// Whether the list was cut at [`MAX_LISTED`].
    pub truncated: bool,
}

/// Most series the Values page lists.
pub const MAX_LISTED: usize = 5_000;

/// Folds minute values (`(at_ms, value)`, oldest first) into steps of `step_ms` from `from_ms`,
/// as [`ValuePoint`] says; non-finite values are skipped.
pub fn fold_steps(
    kind: ValueKind,
    minutes: &[(u64, f64)],
    from_ms: u64,
    step_ms: u64,
) -> Vec<ValuePoint> {
    let step_ms = step_ms.max(1);
    let step_minutes = (step_ms as f64 / 60_000.0).max(1.0);
    let mut out: Vec<ValuePoint> = Vec::new();
    let mut sum = 0.0;
    for &(at_ms, v) in minutes.iter().filter(|(at, v)| v.is_finite() && *at >= from_ms) {
        let slot = from_ms + (at_ms - from_ms) / step_ms * step_ms;
        match out.last_mut() {
            Some(p) if p.at_ms == slot => {
                p.min = p.min.min(v);
                p.max = p.max.max(v);
                sum += v;
                p.value = match kind {
                    ValueKind::Counter => sum / step_minutes,
                    ValueKind::Gauge => v,
                    ValueKind::Set => p.max,
                };
            }
            _ => {
                sum = v;
                let value = if kind == ValueKind::Counter { v / step_minutes } else { v };
                out.push(ValuePoint { at_ms: slot, value, min: v, max: v });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_sum_counters_per_minute_keep_a_gauges_last_and_a_sets_most() {
        let m = 60_000;
        let minutes = [(0, 6.0), (m, 2.0), (2 * m, 10.0), (5 * m, 1.0), (6 * m, f64::NAN)];
        let counter = fold_steps(ValueKind::Counter, &minutes, 0, 3 * m);
        assert_eq!(counter.len(), 2);
        assert_eq!((counter[0].value, counter[0].min, counter[0].max), (6.0, 2.0, 10.0));
        assert_eq!((counter[1].at_ms, counter[1].value), (3 * m, 1.0 / 3.0));
        let gauge = fold_steps(ValueKind::Gauge, &minutes, 0, 3 * m);
        assert_eq!(gauge[0].value, 10.0);
        let set = fold_steps(ValueKind::Set, &minutes[..2], 0, 3 * m);
        assert_eq!(set[0].value, 6.0);
        // One-minute steps are the minute values themselves.
        let same = fold_steps(ValueKind::Counter, &minutes[..3], 0, m);
        assert_eq!(same.iter().map(|p| p.value).collect::<Vec<_>>(), vec![6.0, 2.0, 10.0]);
        assert_eq!(ValueKind::parse("gauge"), Some(ValueKind::Gauge));
        assert_eq!(serde_json::to_string(&ValueKind::Set).unwrap(), "\"set\"");
    }
}
