//! The state machine of one alert instance: pure, clocked by the caller.
//!
//! Each evaluation takes an [`Observation`] and decides the instance's *level* (no breach,
//! warning or critical) with hysteresis: a level is raised when its raise threshold is passed
//! and held until its clear threshold is passed back. The level then drives the lifecycle
//!
//! ```text
//! inactive → pending (for `for_secs`) → firing → recovering (for `keep_firing_for_secs`) → resolved
//! ```
//!
//! with severity changes while firing. An instance whose level flipped between "breach" and
//! "no breach" more than `flap_max_changes` times within `flap_window_ms` is *flapping*: it is
//! held firing, notified once, and released (normal evaluation again) once a whole window has
//! passed without a flip.
//!
//! Which transitions notify: firing, a severity change while firing, flapping, resolved.
//! Pending, a pending breach that cleared, recovering and firing again from recovering are
//! recorded but not notified.

use std::collections::VecDeque;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::alerts::{AlertState, NoDataPolicy, Rule, Severity};

/// Flapping detection, the same for every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlapSettings {
    pub window_ms: u64,
    /// More flips than this within the window mark the instance flapping.
    pub max_changes: usize,
}

impl Default for FlapSettings {
    fn default() -> Self {
        FlapSettings { window_ms: 600_000, max_changes: 6 }
    }
}

/// What one evaluation saw for an instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Observation {
    /// A finite value.
    Value(f64),
    /// A value from fewer samples than the rule's `min_count`: treated as healthy.
    TooFew(f64),
    /// Nothing to evaluate (the series has no samples in the window, or is gone).
    NoData,
}

/// The persisted state of one instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    pub state: AlertState,
    /// The raised level (hysteresis memory); `None`: no breach.
    pub level: Option<Severity>,
    /// The severity notified (firing) or pending.
    pub severity: Option<Severity>,
    pub since_ms: u64,
    pub pending_since_ms: Option<u64>,
    pub recovering_since_ms: Option<u64>,
    pub active_since_ms: Option<u64>,
    pub no_data_runs: u32,
    /// When the level flipped between breach and no breach, within the flap window.
    pub flips: Flips,
    pub flapping: bool,
    pub value: Option<f64>,
    pub acknowledged: bool,
    /// A silence held back a notice that it fires (it fired, or changed severity, silenced):
    /// receivers hear when the silence ends while it still fires.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
    /// It became active under a silence and receivers have not been sent that it fires since:
    /// they are not sent its end either, nor is it re-sent to Alertmanager at start-up. (False
    /// by default, so states stored before this field read as heard.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unheard: bool,
}

impl InstanceState {
    /// Whether this state remembers nothing a fresh one would not: inactive, no breach, no
    /// recent flips, no run of missing data. Such an instance need not be held at all.
    pub fn is_idle(&self) -> bool {
        self.state == AlertState::Inactive
            && self.level.is_none()
            && self.flips.is_empty()
            && !self.flapping
            && self.no_data_runs == 0
    }
}

/// When an instance's level flipped between breach and no breach (Unix ms), oldest first: at
/// most `max_changes + 1` of them, and only the newest while the instance is flapping (all
/// that decides its release), so an instance's memory is bounded whatever its series does.
///
/// The oldest is held inline, the others on the heap: every evaluation of an instance that
/// has flipped reads the oldest (to let it expire), and with the list wholly on the heap that
/// read was a cache miss per instance, the largest cost of judging an alert storm's thousands
/// of instances. Stored as a JSON array, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flips {
    oldest: Option<u64>,
    newer: VecDeque<u64>,
}

impl Flips {
    pub fn is_empty(&self) -> bool {
        self.oldest.is_none()
    }

    pub fn len(&self) -> usize {
        usize::from(self.oldest.is_some()) + self.newer.len()
    }

    /// Notes a flip at `at_ms` (the newest).
    pub fn push(&mut self, at_ms: u64) {
        if self.oldest.is_none() {
            self.oldest = Some(at_ms);
        } else {
            self.newer.push_back(at_ms);
        }
    }

    /// Forgets the flips `window_ms` or more before `now_ms`.
    pub fn expire(&mut self, now_ms: u64, window_ms: u64) {
        while self.oldest.is_some_and(|t| now_ms.saturating_sub(t) >= window_ms) {
            self.oldest = self.newer.pop_front();
        }
    }

    /// Keeps the newest flip only.
    fn keep_newest(&mut self) {
        if let Some(newest) = self.newer.pop_back() {
            self.newer.clear();
            self.oldest = Some(newest);
        }
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.oldest.into_iter().chain(self.newer.iter().copied())
    }
}

impl FromIterator<u64> for Flips {
    fn from_iter<I: IntoIterator<Item = u64>>(times: I) -> Self {
        let mut flips = Flips::default();
        times.into_iter().for_each(|t| flips.push(t));
        flips
    }
}

impl Serialize for Flips {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Flips {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut times = Vec::<u64>::deserialize(deserializer)?;
        // Oldest first, whatever an older build stored.
        times.sort_unstable();
        Ok(times.into_iter().collect())
    }
}

/// A change of state worth recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub from: AlertState,
    pub to: AlertState,
    pub severity: Option<Severity>,
    pub value: Option<f64>,
    /// The raise threshold of `severity`.
    pub threshold: Option<f64>,
    /// `pending`, `fired`, `escalated`, `de-escalated`, `recovering`, `firing again`,
    /// `cleared` (a pending breach ended), `resolved`, `flapping`, `no data`.
    pub note: &'static str,
    /// Whether receivers hear of it.
    pub notify: bool,
}

/// The level `value` reaches, given the current one (hysteresis).
pub fn level(rule: &Rule, current: Option<Severity>, value: f64) -> Option<Severity> {
    if let Some(c) = &rule.critical {
        if c.breached(value) || (current == Some(Severity::Critical) && !c.cleared(value)) {
            return Some(Severity::Critical);
        }
    }
    if let Some(w) = &rule.warning {
        if w.breached(value) || (current.is_some() && !w.cleared(value)) {
            return Some(Severity::Warning);
        }
    }
    if current == Some(Severity::Critical) && rule.warning.is_none() {
        // Only a critical threshold: it was cleared above.
        return None;
    }
    None
}

/// Evaluates one observation at `now_ms`; returns the transition it caused, if any.
pub fn evaluate(
    rule: &Rule,
    st: &mut InstanceState,
    observation: Observation,
    now_ms: u64,
    flap: FlapSettings,
) -> Option<Transition> {
    let new_level = match observation {
        Observation::Value(v) => {
            st.no_data_runs = 0;
            st.value = Some(v);
            level(rule, st.level, v)
        }
        Observation::TooFew(v) => {
            st.no_data_runs = 0;
            st.value = Some(v);
            None
        }
        Observation::NoData => {
            st.no_data_runs = st.no_data_runs.saturating_add(1);
            st.value = None;
            if st.no_data_runs < rule.no_data_after {
                st.level
            } else {
                match rule.no_data {
                    NoDataPolicy::Ok => None,
                    NoDataPolicy::Keep => st.level,
                    NoDataPolicy::Alert => Some(rule.top_severity()),
                }
            }
        }
    };
    let flipped = new_level.is_some() != st.level.is_some();
    st.level = new_level;
    // Flap bookkeeping.
    if flipped {
        st.flips.push(now_ms);
    }
    st.flips.expire(now_ms, flap.window_ms);
    let threshold_of = |s: Option<Severity>| s.and_then(|s| rule.threshold(s)).map(|t| t.raise());
    if st.flapping {
        // Released once a whole window has passed without a flip: only the newest counts.
        st.flips.keep_newest();
        if !st.flips.is_empty() {
            // Held firing; a worse level still raises the severity.
            if let Some(s) = new_level {
                if st.severity.is_none_or(|cur| s > cur) {
                    st.severity = Some(s);
                }
            }
            return None;
        }
        st.flapping = false;
    } else if st.flips.len() > flap.max_changes {
        st.flapping = true;
        st.flips.keep_newest();
        let from = st.state;
        let severity = new_level.or(st.severity).or(Some(rule.top_severity()));
        st.severity = severity;
        st.active_since_ms.get_or_insert(now_ms);
        st.recovering_since_ms = None;
        st.pending_since_ms = None;
        if from != AlertState::Firing {
            st.state = AlertState::Firing;
            st.since_ms = now_ms;
        }
        return Some(Transition {
            from,
            to: AlertState::Firing,
            severity,
            value: st.value,
            threshold: threshold_of(severity),
            note: "flapping",
            notify: true,
        });
    }
    let no_data_note = matches!(observation, Observation::NoData);
    let go = |st: &mut InstanceState,
              to: AlertState,
              severity: Option<Severity>,
              note: &'static str,
              notify: bool| {
        let from = st.state;
        st.state = to;
        st.since_ms = now_ms;
        st.severity = severity;
        Some(Transition {
            from,
            to,
            severity,
            value: st.value,
            threshold: threshold_of(severity),
            note: if no_data_note && note == "fired" { "no data" } else { note },
            notify,
        })
    };
    let for_ms = rule.for_secs.saturating_mul(1000);
    let keep_ms = rule.keep_firing_for_secs.saturating_mul(1000);
    match (st.state, new_level) {
        (AlertState::Inactive | AlertState::Resolved, Some(s)) => {
            st.active_since_ms = Some(now_ms);
            st.acknowledged = false;
            if for_ms == 0 {
                go(st, AlertState::Firing, Some(s), "fired", true)
            } else {
                st.pending_since_ms = Some(now_ms);
                go(st, AlertState::Pending, Some(s), "pending", false)
            }
        }
        (AlertState::Inactive | AlertState::Resolved, None) => None,
        (AlertState::Pending, None) => {
            st.pending_since_ms = None;
            st.active_since_ms = None;
            go(st, AlertState::Inactive, None, "cleared", false)
        }
        (AlertState::Pending, Some(s)) => {
            let since = st.pending_since_ms.unwrap_or(now_ms);
            if now_ms.saturating_sub(since) >= for_ms {
                st.pending_since_ms = None;
                go(st, AlertState::Firing, Some(s), "fired", true)
            } else {
                st.severity = Some(s);
                None
            }
        }
        (AlertState::Firing, Some(s)) => match st.severity {
            Some(cur) if cur == s => None,
            Some(cur) if s > cur => go(st, AlertState::Firing, Some(s), "escalated", true),
            _ => go(st, AlertState::Firing, Some(s), "de-escalated", true),
        },
        (AlertState::Firing, None) => {
            let severity = st.severity;
            if keep_ms == 0 {
                st.active_since_ms = None;
                go(st, AlertState::Resolved, severity, "resolved", true)
            } else {
                st.recovering_since_ms = Some(now_ms);
                go(st, AlertState::Recovering, severity, "recovering", false)
            }
        }
        (AlertState::Recovering, Some(s)) => {
            st.recovering_since_ms = None;
            let escalated = st.severity.is_some_and(|cur| s > cur);
            go(st, AlertState::Firing, Some(s), "firing again", escalated)
        }
        (AlertState::Recovering, None) => {
            let since = st.recovering_since_ms.unwrap_or(now_ms);
            if now_ms.saturating_sub(since) >= keep_ms {
                st.recovering_since_ms = None;
                st.active_since_ms = None;
                let severity = st.severity;
                go(st, AlertState::Resolved, severity, "resolved", true)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alerts::{HostMetric, Target, Threshold};

    const S: u64 = 1_000;

    fn rule(for_secs: u64, keep_secs: u64) -> Rule {
        let mut r = Rule::new("cpu", Target::host(HostMetric::CpuPct));
        r.warning = Some(Threshold::above(80.0, 70.0));
        r.critical = Some(Threshold::above(95.0, 90.0));
        r.for_secs = for_secs;
        r.keep_firing_for_secs = keep_secs;
        r
    }

    /// Feeds one value a second from t = 1 s; returns (second, note, state) of each transition.
    fn run(
        rule: &Rule,
        values: &[Option<f64>],
    ) -> (Vec<(u64, &'static str, AlertState)>, InstanceState) {
        let mut st = InstanceState::default();
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let now = (i as u64 + 1) * S;
            let obs = v.map_or(Observation::NoData, Observation::Value);
            if let Some(t) = evaluate(rule, &mut st, obs, now, FlapSettings::default()) {
                out.push((now / S, t.note, t.to));
            }
        }
        (out, st)
    }

    #[test]
    fn pending_until_for_then_firing_then_resolved() {
        let r = rule(3, 0);
        let v = [50.0, 85.0, 85.0, 85.0, 85.0, 60.0].map(Some);
        let (t, st) = run(&r, &v);
        assert_eq!(
            t,
            vec![
                (2, "pending", AlertState::Pending),
                (5, "fired", AlertState::Firing),
                (6, "resolved", AlertState::Resolved),
            ]
        );
        assert_eq!(st.severity, Some(Severity::Warning));
    }

    #[test]
    fn a_breach_shorter_than_for_never_fires() {
        let (t, _) = run(&rule(5, 0), &[85.0, 85.0, 60.0, 85.0, 60.0].map(Some));
        assert!(t.iter().all(|(_, note, _)| *note != "fired"), "{t:?}");
        assert_eq!(t.last().unwrap().1, "cleared");
    }

    #[test]
    fn a_value_oscillating_between_clear_and_raise_fires_once() {
        let r = rule(0, 0);
        let v = [85.0, 75.0, 79.0, 72.0, 81.0, 71.0, 78.0].map(Some);
        let (t, st) = run(&r, &v);
        assert_eq!(t, vec![(1, "fired", AlertState::Firing)]);
        assert_eq!(st.state, AlertState::Firing);
        // Past the clear threshold it resolves.
        let (t, _) = run(&r, &[85.0, 75.0, 69.0].map(Some));
        assert_eq!(t.last().unwrap(), &(3, "resolved", AlertState::Resolved));
    }

    #[test]
    fn severity_escalates_and_de_escalates_with_hysteresis() {
        let (t, _) = run(&rule(0, 0), &[85.0, 96.0, 92.0, 89.0, 60.0].map(Some));
        let notes: Vec<_> = t.iter().map(|x| x.1).collect();
        assert_eq!(notes, ["fired", "escalated", "de-escalated", "resolved"]);
        assert_eq!(t[2].0, 4, "critical holds until below its clear threshold (90)");
    }

    #[test]
    fn keep_firing_for_holds_then_resolves_and_a_new_breach_refires_silently() {
        let r = rule(0, 3);
        let (t, _) = run(&r, &[85.0, 60.0, 60.0, 85.0, 60.0, 60.0, 60.0, 60.0].map(Some));
        assert_eq!(
            t,
            vec![
                (1, "fired", AlertState::Firing),
                (2, "recovering", AlertState::Recovering),
                (4, "firing again", AlertState::Firing),
                (5, "recovering", AlertState::Recovering),
                (8, "resolved", AlertState::Resolved),
            ]
        );
    }

    #[test]
    fn an_instance_that_flips_too_often_is_held_firing_and_notified_once() {
        let r = rule(0, 0);
        let mut v = Vec::new();
        for _ in 0..8 {
            v.push(Some(85.0));
            v.push(Some(50.0));
        }
        let (t, st) = run(&r, &v);
        let flapping: Vec<_> = t.iter().filter(|x| x.1 == "flapping").collect();
        assert_eq!(flapping.len(), 1, "{t:?}");
        assert!(st.flapping);
        assert_eq!(st.state, AlertState::Firing);
        let after: Vec<_> = t.iter().skip_while(|x| x.1 != "flapping").skip(1).collect();
        assert!(after.is_empty(), "held firing, no more transitions: {after:?}");
        // Quiet for a whole window: released and resolved.
        let mut st = st;
        let quiet_from = 17 * S;
        let mut last = None;
        for i in 0..=600 {
            let now = quiet_from + i * S;
            if let Some(t) =
                evaluate(&r, &mut st, Observation::Value(50.0), now, FlapSettings::default())
            {
                last = Some(t);
            }
        }
        let last = last.unwrap();
        assert_eq!((last.note, last.to), ("resolved", AlertState::Resolved));
        assert!(!st.flapping);
    }

    #[test]
    fn a_flapping_instance_remembers_only_its_newest_flip_and_is_released_a_window_after_it() {
        let r = rule(0, 0);
        let flap = FlapSettings { window_ms: 100 * S, max_changes: 3 };
        let mut st = InstanceState::default();
        let mut last_flip = 0;
        // A flip every second for five minutes: flapping from the fourth flip on.
        for i in 1..=300 {
            let v = if i % 2 == 1 { 85.0 } else { 50.0 };
            evaluate(&r, &mut st, Observation::Value(v), i * S, flap);
            last_flip = i * S;
            assert!(
                st.flips.len() <= flap.max_changes + 1,
                "{} flips held at {i} s",
                st.flips.len()
            );
        }
        assert!(st.flapping);
        assert_eq!(st.flips.iter().collect::<Vec<_>>(), [last_flip]);
        // Quiet: still held a second short of the window after the newest flip, released at it.
        let quiet = if 300 % 2 == 1 { 85.0 } else { 50.0 };
        let t = evaluate(&r, &mut st, Observation::Value(quiet), last_flip + 99 * S, flap);
        assert!(t.is_none() && st.flapping);
        let t = evaluate(&r, &mut st, Observation::Value(quiet), last_flip + 100 * S, flap);
        assert!(!st.flapping);
        assert_eq!(t.map(|t| t.note), Some("resolved"));
    }

    #[test]
    fn flips_are_stored_as_an_array_oldest_first_and_read_back_in_order() {
        let flips: Flips = [10, 20, 30].into_iter().collect();
        assert_eq!(serde_json::to_string(&flips).unwrap(), "[10,20,30]");
        // As an older build stored them (a list), in any order.
        let back: Flips = serde_json::from_str("[30,10,20]").unwrap();
        assert_eq!(back, flips);
        let empty: Flips = serde_json::from_str("[]").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        let mut expiring = flips.clone();
        expiring.expire(35, 20);
        assert_eq!(expiring.iter().collect::<Vec<_>>(), [20, 30]);
    }

    #[test]
    fn no_data_policies_apply_after_n_evaluations() {
        let mut r = rule(0, 0);
        r.no_data_after = 2;
        // ok: a firing alert resolves after two evaluations without data.
        let (t, _) = run(&r, &[Some(85.0), None, None]);
        assert_eq!(t.last().unwrap(), &(3, "resolved", AlertState::Resolved));
        // keep: it stays firing.
        r.no_data = NoDataPolicy::Keep;
        let (t, st) = run(&r, &[Some(85.0), None, None, None]);
        assert_eq!(t.len(), 1);
        assert_eq!(st.state, AlertState::Firing);
        // alert: no data raises at the top severity.
        r.no_data = NoDataPolicy::Alert;
        let (t, st) = run(&r, &[Some(50.0), None, None]);
        assert_eq!(t, vec![(3, "no data", AlertState::Firing)]);
        assert_eq!(st.severity, Some(Severity::Critical));
        // One missing evaluation changes nothing.
        let (t, _) = run(&r, &[Some(85.0), None, Some(85.0)]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn too_few_samples_count_as_healthy() {
        let r = rule(0, 0);
        let mut st = InstanceState::default();
        let f = FlapSettings::default();
        assert!(evaluate(&r, &mut st, Observation::TooFew(99.0), S, f).is_none());
        assert_eq!(st.state, AlertState::Inactive);
        evaluate(&r, &mut st, Observation::Value(99.0), 2 * S, f).unwrap();
        let t = evaluate(&r, &mut st, Observation::TooFew(99.0), 3 * S, f).unwrap();
        assert_eq!(t.note, "resolved");
    }

    #[test]
    fn falling_figures_use_below_and_clear_above() {
        let mut r = Rule::new("cache", Target::gauge_named("cache.hit_pct"));
        r.warning = Some(Threshold::below(70.0, 75.0));
        let (t, _) = run(&r, &[80.0, 69.0, 72.0, 76.0].map(Some));
        let notes: Vec<_> = t.iter().map(|x| (x.0, x.1)).collect();
        assert_eq!(notes, [(2, "fired"), (4, "resolved")]);
    }
}
