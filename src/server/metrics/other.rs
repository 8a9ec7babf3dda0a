//! StatsD counters, gauges and sets: their values, the per-minute roll-over, and their bounds.
//! Every value held is finite: an update that would make one infinite is refused by the caller
//! (see [`super::Inner`]), and set members are bounded per set and in total bytes.

use std::collections::HashSet;

use serde::Serialize;

use crate::model::values::{ValueKind, ValueReading, ValuesView};

/// The start of minute `minute` (minutes since the Unix epoch), Unix ms.
pub(super) const fn minute_ms(minute: u64) -> u64 {
    minute.saturating_mul(60_000)
}

/// What of one counter, gauge or set the history store has not been handed yet.
///
/// The store keeps one row per series and minute, replaced by each value handed to it, so a
/// minute's row must last be written with that minute's final value. Updates mark the series
/// here and the flush clears the mark, both under the metrics lock: a time comparison would miss
/// updates stamped before a flush that took the lock first (ingestion stamps before it locks).
/// A minute left with a value not yet handed over keeps that value until the next flush; at most
/// one such minute is held, so should two minutes end between flushes (a flush stalled for over
/// a minute) the earlier one's row keeps the last value flushed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Unstored {
    /// Whether the current value changed since the last flush.
    changed: bool,
    /// A finished minute's final value not handed over yet: when (Unix ms, within that minute)
    /// and the value.
    finished: Option<(u64, f64)>,
}

impl Unstored {
    /// Notes an update of the current value.
    pub(super) fn mark(&mut self) {
        self.changed = true;
    }

    /// Notes that the current value, stamped `at_ms`, is final: a new minute starts.
    pub(super) fn finish(&mut self, at_ms: u64, value: f64) {
        if std::mem::take(&mut self.changed) {
            self.finished = Some((at_ms, value));
        }
    }

    /// Hands `store` what it has not had (the finished minute's value first, then the current
    /// value, stamped `at_ms`, if it changed) and clears the marks.
    pub(super) fn take(&mut self, at_ms: u64, value: f64, mut store: impl FnMut(u64, f64)) {
        if let Some((finished_ms, finished)) = self.finished.take() {
            store(finished_ms, finished);
        }
        if std::mem::take(&mut self.changed) {
            store(at_ms, value);
        }
    }
}

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
    #[serde(skip)]
    pub(super) unstored: Unstored,
}

impl CounterValue {
    /// The counter after adding `delta` at minute `minute`, or `None` when a figure would stop
    /// being finite. An update stamped in an earlier minute than the counter's (the clock
    /// stepped back, or a thread stamped it before another's update took the lock) counts in
    /// the counter's minute: minutes only move forward, so a finished minute is never reopened
    /// from zero and its stored value replaced by a smaller one.
    pub(super) fn added(&self, delta: f64, minute: u64, now_ms: u64) -> Option<CounterValue> {
        let mut next = self.clone();
        if next.minute < minute {
            next.unstored.finish(minute_ms(next.minute), next.current);
            next.last_minute = if next.minute + 1 == minute { next.current } else { 0.0 };
            next.current = 0.0;
            next.minute = minute;
        }
        next.total += delta;
        next.current += delta;
        next.updated_ms = next.updated_ms.max(now_ms);
        next.unstored.mark();
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
    pub(super) unstored: Unstored,
}

impl GaugeValue {
    /// The gauge set to `value` at `now_ms`. Like a counter's minute, its time only moves
    /// forward (see [`CounterValue::added`]). When `now_ms` starts a new minute, the value it
    /// replaces is kept as its minute's last until the next flush (see [`Unstored`]).
    pub(super) fn set(self, value: f64, now_ms: u64) -> GaugeValue {
        let mut next = self;
        let updated_ms = self.updated_ms.max(now_ms);
        if self.updated_ms / 60_000 < updated_ms / 60_000 {
            next.unstored.finish(self.updated_ms, self.value);
        }
        next.value = value;
        next.updated_ms = updated_ms;
        next.unstored.mark();
        next
    }
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
    pub(super) unstored: Unstored,
}

impl SetValue {
    /// Starts minute `minute` if it is later than the set's; returns the bytes freed. An
    /// earlier minute (the clock stepped back) leaves the set in its minute, as a counter does
    /// (see [`CounterValue::added`]).
    pub(super) fn roll_to(&mut self, minute: u64) -> usize {
        if self.minute >= minute {
            return 0;
        }
        self.unstored.finish(minute_ms(self.minute), self.current.len() as f64);
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
