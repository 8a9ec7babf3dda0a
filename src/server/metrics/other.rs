//! StatsD counters, gauges and sets: their values, the per-minute roll-over, and their bounds.
//! Every value held is finite: an update that would make one infinite is refused by the caller
//! (see [`super::Inner`]), and set members are bounded per set and in total bytes.

use std::collections::HashSet;

use serde::Serialize;

use crate::model::values::{ValueKind, ValueReading, ValuesView};

/// A counter: its total since start and the increments of the current and previous minute.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CounterValue {
    pub total: f64,
    pub last_minute: f64,
    #[serde(skip)]
    pub(super) minute: u64,
    #[serde(skip)]
    pub(super) current: f64,
    #[serde(skip)]
    pub(super) updated_ms: u64,
}

impl CounterValue {
    /// The counter after adding `delta` at minute `minute`, or `None` when a figure would stop
    /// being finite.
    pub(super) fn added(&self, delta: f64, minute: u64, now_ms: u64) -> Option<CounterValue> {
        let mut next = self.clone();
        if next.minute != minute {
            next.last_minute = if next.minute + 1 == minute { next.current } else { 0.0 };
            next.current = 0.0;
            next.minute = minute;
        }
        next.total += delta;
        next.current += delta;
        next.updated_ms = now_ms;
        (next.total.is_finite() && next.current.is_finite()).then_some(next)
    }

    /// The counter as read at minute `minute`.
    pub(super) fn read_at(&self, minute: u64) -> CounterValue {
        let mut v = self.clone();
        if v.minute != minute {
            v.last_minute = if v.minute + 1 == minute { v.current } else { 0.0 };
        }
        v
    }
}

/// A gauge's value and when it last changed.
#[derive(Clone, Copy, Debug, Default)]
pub struct GaugeValue {
    pub value: f64,
    pub(super) updated_ms: u64,
}

/// Unique members of a set in the current and previous minute.
#[derive(Clone, Debug, Default)]
pub struct SetValue {
    pub(super) minute: u64,
    pub(super) current: HashSet<Box<str>, foldhash::fast::RandomState>,
    /// Bytes of the members in `current`.
    pub(super) bytes: usize,
    pub(super) previous_unique: usize,
    /// Whether members were dropped this minute (the count is then a lower bound).
    pub(super) saturated: bool,
    pub(super) previous_saturated: bool,
    pub(super) updated_ms: u64,
}

impl SetValue {
    /// Starts minute `minute` if it is a new one; returns the bytes freed.
    pub(super) fn roll_to(&mut self, minute: u64) -> usize {
        if self.minute == minute {
            return 0;
        }
        let next = self.minute + 1 == minute;
        self.previous_unique = if next { self.current.len() } else { 0 };
        self.previous_saturated = next && self.saturated;
        self.saturated = false;
        self.current = HashSet::default();
        self.minute = minute;
        std::mem::take(&mut self.bytes)
    }

    /// Unique members of the last full minute (or so far this minute, whichever is more), and
    /// whether that is a lower bound, as read at minute `minute`.
    pub(super) fn unique_at(&self, minute: u64) -> (usize, bool) {
        if self.minute == minute {
            let current = (self.current.len(), self.saturated);
            let previous = (self.previous_unique, self.previous_saturated);
            current.max(previous)
        } else if self.minute + 1 == minute {
            (self.current.len(), self.saturated)
        } else {
            (0, false)
        }
    }

    /// Heap bytes a member costs when stored: its text as the allocator rounds it (16-byte
    /// granules plus a header), and its slot in the table (the boxed pointer and length, the
    /// control byte, and the table's spare capacity at its 7/8 load factor).
    pub(super) fn member_cost(member: &str) -> usize {
        const ALLOCATION_HEADER: usize = 16;
        const TABLE_SLOT: usize = (std::mem::size_of::<Box<str>>() + 1) * 8 / 7 + 1;
        member.len().next_multiple_of(16) + ALLOCATION_HEADER + TABLE_SLOT
    }
}

/// One set in the `GET /api/v1/metrics` answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SetReading {
    pub name: String,
    /// Unique members seen in the last full minute (or so far this minute, whichever is more).
    pub unique: usize,
    /// True when members were dropped by the set bounds: `unique` is then a lower bound.
    pub lower_bound: bool,
}

/// The JSON answer of `GET /api/v1/metrics`: counters, gauges and sets, by name.
#[derive(Clone, Debug, Serialize)]
pub struct OtherMetrics {
    pub counters: Vec<(String, CounterValue)>,
    pub gauges: Vec<(String, f64)>,
    pub sets: Vec<SetReading>,
}

impl OtherMetrics {
    /// The Values page's list: these readings and the `stored` names not among them (with no
    /// value), by kind then name, at most `limit`.
    pub fn listing(
        self,
        now_ms: u64,
        stored: Vec<(ValueKind, String)>,
        limit: usize,
    ) -> ValuesView {
        let reading = |kind, name, value, total, lower_bound| ValueReading {
            kind,
            name,
            value,
            total,
            lower_bound,
        };
        let mut readings: Vec<ValueReading> = Vec::new();
        for (name, c) in self.counters {
            readings.push(reading(
                ValueKind::Counter,
                name,
                Some(c.last_minute),
                Some(c.total),
                false,
            ));
        }
        for (name, v) in self.gauges {
            readings.push(reading(ValueKind::Gauge, name, Some(v), None, false));
        }
        for s in self.sets {
            readings.push(reading(
                ValueKind::Set,
                s.name,
                Some(s.unique as f64),
                None,
                s.lower_bound,
            ));
        }
        let held: HashSet<(ValueKind, String)> =
            readings.iter().map(|r| (r.kind, r.name.clone())).collect();
        for (kind, name) in stored {
            if !held.contains(&(kind, name.clone())) {
                readings.push(reading(kind, name, None, None, false));
            }
        }
        readings.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        let truncated = readings.len() > limit;
        readings.truncate(limit);
        ValuesView { now_ms, readings, truncated }
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn the_listing_merges_memory_and_store_once_each_by_kind_then_name() {
        let metrics = OtherMetrics {
            counters: vec![(
                "hits".into(),
                CounterValue { total: 9.0, last_minute: 3.0, ..Default::default() },
            )],
            gauges: vec![("queue".into(), 7.0)],
            sets: vec![SetReading { name: "users".into(), unique: 4, lower_bound: true }],
        };
        let stored =
            vec![(ValueKind::Gauge, "queue".to_string()), (ValueKind::Counter, "old".to_string())];
        let view = metrics.listing(1, stored, 10);
        let names: Vec<(&str, Option<f64>)> =
            view.readings.iter().map(|r| (r.name.as_str(), r.value)).collect();
        assert_eq!(
            names,
            vec![("hits", Some(3.0)), ("old", None), ("queue", Some(7.0)), ("users", Some(4.0))]
        );
        assert!(view.readings[3].lower_bound && !view.truncated);
        assert!(
            OtherMetrics { counters: vec![], gauges: vec![], sets: vec![] }
                .listing(1, vec![(ValueKind::Set, "a".into()), (ValueKind::Set, "b".into())], 1)
                .truncated
        );
    }
}
