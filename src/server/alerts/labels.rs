//! An alert's labels, read in place: its series' labels, overridden by its rule's, then
//! `alertname` and (when it has one) `severity`. Every change of state reads them twice (a
//! silence's matchers look labels up, the history stores them as JSON) and an alert storm
//! makes hundreds of changes a second, so no map is built for them; owned copies are made only
//! where an event or a listing keeps them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The labels of one alert (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a> {
    pub series: &'a BTreeMap<String, String>,
    pub rule: &'a BTreeMap<String, String>,
    pub alertname: &'a str,
    pub severity: Option<&'a str>,
}

impl<'a> Labels<'a> {
    /// The value of `label`.
    pub fn get(&self, label: &str) -> Option<&'a str> {
        match label {
            "alertname" => Some(self.alertname),
            "severity" if self.severity.is_some() => self.severity,
            _ => self.rule.get(label).or_else(|| self.series.get(label)).map(String::as_str),
        }
    }

    /// Calls `f` with every label once, in key order (as a map of them would hold them).
    pub fn for_each(&self, mut f: impl FnMut(&'a str, &'a str)) {
        let fixed = [("alertname", Some(self.alertname)), ("severity", self.severity)];
        let mut series = self.series.iter().peekable();
        let mut rule = self.rule.iter().peekable();
        let mut fixed = fixed.into_iter().filter_map(|(k, v)| Some((k, v?))).peekable();
        loop {
            let keys = [
                series.peek().map(|&(k, _)| k.as_str()),
                rule.peek().map(|&(k, _)| k.as_str()),
                fixed.peek().map(|&(k, _)| k),
            ];
            let Some(key) = keys.into_iter().flatten().min() else { break };
            // Each source holds a key once; the later ones win.
            let mut value = None;
            if series.peek().is_some_and(|&(k, _)| k == key) {
                value = series.next().map(|(_, v)| v.as_str());
            }
            if rule.peek().is_some_and(|&(k, _)| k == key) {
                value = rule.next().map(|(_, v)| v.as_str());
            }
            if fixed.peek().is_some_and(|&(k, _)| k == key) {
                value = fixed.next().map(|(_, v)| v);
            }
            if let Some(value) = value {
                f(key, value);
            }
        }
    }

    /// Owned copies, for an event or a listing that keeps them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        self.for_each(|k, v| {
            map.insert(k.to_string(), v.to_string());
        });
        map
    }
}

/// A JSON object with the keys in order, as the store keeps labels.
impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut written = Ok(());
        self.for_each(|k, v| {
            if written.is_ok() {
                written = map.serialize_entry(k, v);
            }
        });
        written?;
        map.end()
    }
}

/// [`Labels`] that own what they read (the series' labels shared with the instance), for a
/// history row that the store's writer serialises later.
#[derive(Clone, Debug)]
pub struct OwnedLabels {
    pub series: Arc<BTreeMap<String, String>>,
    pub rule: BTreeMap<String, String>,
    pub alertname: Arc<str>,
    pub severity: Option<&'static str>,
}

impl OwnedLabels {
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            series: &self.series,
            rule: &self.rule,
            alertname: &self.alertname,
            severity: self.severity,
        }
    }
}

/// The same JSON as its [`Labels`].
impl Serialize for OwnedLabels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.labels().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// What the labels are by definition: a map the sources are inserted into in order.
    fn by_inserting(l: &Labels<'_>) -> BTreeMap<String, String> {
        let mut m = l.series.clone();
        m.extend(l.rule.iter().map(|(k, v)| (k.clone(), v.clone())));
        m.insert("alertname".into(), l.alertname.into());
        if let Some(s) = l.severity {
            m.insert("severity".into(), s.into());
        }
        m
    }

    #[test]
    fn the_rule_overrides_the_series_and_the_fixed_labels_override_both() {
        let series = map(&[("a", "1"), ("alertname", "x"), ("severity", "s0"), ("z", "9")]);
        let rule = map(&[("a", "2"), ("b", "3"), ("severity", "s1"), ("team", "web")]);
        let empty = BTreeMap::new();
        let cases = [
            Labels { series: &series, rule: &rule, alertname: "r", severity: Some("critical") },
            Labels { series: &series, rule: &rule, alertname: "r", severity: None },
            Labels { series: &series, rule: &empty, alertname: "r", severity: None },
            Labels { series: &empty, rule: &rule, alertname: "r", severity: Some("warning") },
            Labels { series: &empty, rule: &empty, alertname: "r", severity: None },
        ];
        for l in cases {
            let want = by_inserting(&l);
            assert_eq!(l.to_map(), want, "{l:?}");
            for key in want.keys().map(String::as_str).chain(["nope", "severity"]) {
                assert_eq!(l.get(key), want.get(key).map(String::as_str), "{key} in {l:?}");
            }
            assert_eq!(serde_json::to_string(&l).unwrap(), serde_json::to_string(&want).unwrap());
        }
        let mut keys = Vec::new();
        cases[0].for_each(|k, _| keys.push(k));
        assert_eq!(keys, ["a", "alertname", "b", "severity", "team", "z"]);
    }
}
