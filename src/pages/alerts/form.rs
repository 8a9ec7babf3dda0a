//! The new-rule form: its fields as typed, checked as they are typed by the validation the
//! server runs, and saved through the API.

use leptos::prelude::*;

use crate::api::put_alert_rule;
use crate::model::alerts::{HostMetric, OpStat, Rule, RuleError, Target, Threshold, VitalsMetric};
use crate::model::ops::Window;

/// What a new rule can watch: the form's value and its label.
const KINDS: [(&str, &str); 6] = [
    ("operation", "operation"),
    ("event", "event"),
    ("host", "host metric"),
    ("gauge", "gauge"),
    ("counter", "counter"),
    ("vitals", "Vitals itself"),
];

/// The new rule form's fields as typed.
#[derive(Clone, Debug, PartialEq)]
struct RuleDraft {
    name: String,
    /// One of [`KINDS`].
    kind: String,
    /// The operation, event, gauge or counter name or glob.
    target: String,
    host: String,
    vitals: String,
    stat: String,
    window: String,
    /// `above` or `below`.
    direction: String,
    warning_raise: String,
    warning_clear: String,
    critical_raise: String,
    critical_clear: String,
    for_secs: String,
    keep_firing_secs: String,
    min_count: String,
    summary: String,
}

impl Default for RuleDraft {
    fn default() -> Self {
        RuleDraft {
            name: String::new(),
            kind: "operation".to_string(),
            target: String::new(),
            host: HostMetric::CpuPct.as_str().to_string(),
            vitals: VitalsMetric::WsTickP99Ms.as_str().to_string(),
            stat: OpStat::P95.as_str().to_string(),
            window: Window::M5.as_str().to_string(),
            direction: "above".to_string(),
            warning_raise: String::new(),
            warning_clear: String::new(),
            critical_raise: String::new(),
            critical_clear: String::new(),
            for_secs: "0".to_string(),
            keep_firing_secs: "0".to_string(),
            min_count: "0".to_string(),
            summary: String::new(),
        }
    }
}

impl RuleDraft {
    fn timed(&self) -> bool {
        matches!(self.kind.as_str(), "operation" | "event")
    }

    /// What the draft watches, or the field that is wrong.
    fn target(&self) -> Result<Target, RuleError> {
        let name = Some(self.target.trim().to_string());
        let stat = OpStat::parse(&self.stat);
        let window = Window::parse(&self.window);
        Ok(match self.kind.as_str() {
            "operation" => Target { operation: name, stat, window, ..Default::default() },
            "event" => Target { event: name, stat, window, ..Default::default() },
            "gauge" => Target { gauge: name, ..Default::default() },
            "counter" => Target { counter: name, ..Default::default() },
            "host" => Target::host(
                HostMetric::parse(&self.host)
                    .ok_or_else(|| RuleError::new("target.host", "pick a host figure"))?,
            ),
            "vitals" => {
                Target::vitals(VitalsMetric::parse(&self.vitals).ok_or_else(|| {
                    RuleError::new("target.vitals", "pick one of Vitals' figures")
                })?)
            }
            _ => return Err(RuleError::new("target", "pick what to watch")),
        })
    }

    fn threshold(
        &self,
        field: &str,
        raise: &str,
        clear: &str,
    ) -> Result<Option<Threshold>, RuleError> {
        let raise = optional_number(field, raise)?;
        let clear = optional_number(field, clear)?;
        let Some(raise) = raise else {
            return match clear {
                Some(_) => Err(RuleError::new(field, "a clear threshold needs a raise threshold")),
                None => Ok(None),
            };
        };
        Ok(Some(if self.direction == "below" {
            Threshold { below: Some(raise), clear_above: clear, ..Default::default() }
        } else {
            Threshold { above: Some(raise), clear_below: clear, ..Default::default() }
        }))
    }

    /// The rule the draft describes (not yet validated), or the field that cannot be read.
    fn rule(&self) -> Result<Rule, RuleError> {
        let mut rule = Rule::new(self.name.trim(), self.target()?);
        rule.warning = self.threshold("warning", &self.warning_raise, &self.warning_clear)?;
        rule.critical = self.threshold("critical", &self.critical_raise, &self.critical_clear)?;
        rule.for_secs = whole("for_secs", &self.for_secs)?;
        rule.keep_firing_for_secs = whole("keep_firing_for_secs", &self.keep_firing_secs)?;
        if self.timed() {
            rule.min_count = whole("min_count", &self.min_count)?;
        }
        rule.summary = self.summary.trim().to_string();
        Ok(rule)
    }

    /// The rule, validated as the server will.
    fn checked(&self) -> Result<Rule, RuleError> {
        let rule = self.rule()?;
        rule.validate()?;
        Ok(rule)
    }
}

fn optional_number(field: &str, text: &str) -> Result<Option<f64>, RuleError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    decimal(text).map(Some).ok_or_else(|| RuleError::new(field, "thresholds are numbers"))
}

/// A number as people type it ("1500", "0.5", "-2", "1e3"); `None` for anything else or
/// beyond f64. In the browser by its own parser: Rust's would add its tables (about 16 KB) to
/// this page's part of the bundle.
fn decimal(text: &str) -> Option<f64> {
    let plain = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if !plain {
        return None;
    }
    #[cfg(feature = "hydrate")]
    // Unary plus on a string: JavaScript's `Number(text)` (cannot throw on a string).
    let value = wasm_bindgen::JsValue::from_str(text).unchecked_into_f64();
    #[cfg(not(feature = "hydrate"))]
    let value = text.parse::<f64>().unwrap_or(f64::NAN);
    value.is_finite().then_some(value)
}

fn whole(field: &str, text: &str) -> Result<u64, RuleError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<u64>().map_err(|_| RuleError::new(field, "must be a whole number, 0 or more"))
}

/// The form for a new rule; saved rules join the list above.
#[component]
pub(super) fn RuleForm(rules_version: RwSignal<u64>) -> impl IntoView {
    let draft = RwSignal::new(RuleDraft::default());
    let checked = Memo::new(move |_| draft.with(RuleDraft::checked));
    let unit = Memo::new(move |_| draft.with(|d| d.target().map_or("", |t| t.unit())));
    // Client-side problems show once the form is edited; the server's answer until the next edit.
    let touched = RwSignal::new(false);
    let answer = RwSignal::new(None::<Result<String, String>>);
    let save = Action::new(move |rule: &Rule| {
        let rule = rule.clone();
        async move {
            answer.set(Some(match put_alert_rule(rule, true).await {
                Ok(Ok(saved)) => {
                    rules_version.update(|v| *v += 1);
                    Ok(saved.name)
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("Cannot save the rule: {e}")),
            }));
        }
    });
    let edit = move |set: fn(&mut RuleDraft, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            draft.update(|d| set(d, value));
            touched.set(true);
            answer.set(None);
        }
    };
    let error = move || match answer.get() {
        Some(Err(e)) => Some(e),
        Some(Ok(_)) => None,
        None => touched.get().then(|| checked.get().err().map(|e| e.to_string())).flatten(),
    };
    let kind_is = move |kinds: &'static [&'static str]| {
        move || draft.with(|d| kinds.contains(&d.kind.as_str()))
    };
    // One labelled input: `kind` is "text" or "number" (any step).
    let input_field = move |kind: &'static str,
                            label: &'static str,
                            testid: &'static str,
                            get: fn(&RuleDraft) -> String,
                            set: fn(&mut RuleDraft, String)| {
        view! {
            <label>
                <span>{label}</span>
                <input
                    type=kind
                    step=(kind == "number").then_some("any")
                    data-testid=testid
                    prop:value=move || draft.with(get)
                    on:input=edit(set)
                />
            </label>
        }
    };
    let text_field = move |label, testid, get, set| input_field("text", label, testid, get, set);
    let number_field =
        move |label, testid, get, set| input_field("number", label, testid, get, set);
    let select = move |label: &'static str,
                       testid: &'static str,
                       options: Vec<(&'static str, &'static str)>,
                       get: fn(&RuleDraft) -> &str,
                       set: fn(&mut RuleDraft, String)| {
        view! {
            <label>
                <span>{label}</span>
                <select data-testid=testid on:change=edit(set)>
                    {options
                        .into_iter()
                        .map(|(value, text)| view! {
                            <option value=value selected=move || draft.with(|d| get(d) == value)>{text}</option>
                        })
                        .collect_view()}
                </select>
            </label>
        }
    };
    let named = kind_is(&["operation", "event", "gauge", "counter"]);
    let timed = kind_is(&["operation", "event"]);
    let host = kind_is(&["host"]);
    let vitals = kind_is(&["vitals"]);
    let clear_hint = move || {
        let below = draft.with(|d| d.direction == "below");
        if below {
            "clears at or above"
        } else {
            "clears at or below"
        }
    };
    view! {
        <section class="alerts-section" data-testid="alerts-new-rule">
            <h2>"New rule"</h2>
            <form
                class="rule-form"
                data-testid="rule-form"
                novalidate=true
                on:submit=move |ev| {
                    ev.prevent_default();
                    touched.set(true);
                    answer.set(None);
                    if let Ok(rule) = checked.get_untracked() {
                        save.dispatch(rule);
                    }
                }
            >
                <fieldset>
                    <legend>"What"</legend>
                    {text_field("Name", "rule-name", |d| d.name.clone(), |d, v| d.name = v)}
                    {select(
                        "Watches",
                        "rule-kind",
                        KINDS.to_vec(),
                        |d| d.kind.as_str(),
                        |d, v| d.kind = v,
                    )}
                    <label hidden=move || !named()>
                        <span>"Name or glob"</span>
                        <input
                            type="text"
                            placeholder="api.checkout* or queue.depth"
                            data-testid="rule-target"
                            prop:value=move || draft.with(|d| d.target.clone())
                            on:input=edit(|d, v| d.target = v)
                        />
                    </label>
                    <div class="field-group" hidden=move || !timed()>
                        {select(
                            "Statistic",
                            "rule-stat",
                            OpStat::ALL.iter().map(|s| (s.as_str(), s.as_str())).collect(),
                            |d| d.stat.as_str(),
                            |d, v| d.stat = v,
                        )}
                        {select(
                            "Window",
                            "rule-window",
                            Window::ALL.iter().map(|w| (w.as_str(), w.as_str())).collect(),
                            |d| d.window.as_str(),
                            |d, v| d.window = v,
                        )}
                    </div>
                    <div class="field-group" hidden=move || !host()>
                        {select(
                            "Host figure",
                            "rule-host",
                            HostMetric::ALL.iter().map(|m| (m.as_str(), m.as_str())).collect(),
                            |d| d.host.as_str(),
                            |d, v| d.host = v,
                        )}
                    </div>
                    <div class="field-group" hidden=move || !vitals()>
                        {select(
                            "Vitals figure",
                            "rule-vitals",
                            VitalsMetric::ALL.iter().map(|m| (m.as_str(), m.as_str())).collect(),
                            |d| d.vitals.as_str(),
                            |d, v| d.vitals = v,
                        )}
                    </div>
                </fieldset>
                <fieldset>
                    <legend>{move || format!("When (in {})", match unit.get() { "" => "its own unit", u => u })}</legend>
                    {select(
                        "Raise when",
                        "rule-direction",
                        vec![("above", "above"), ("below", "below")],
                        |d| d.direction.as_str(),
                        |d, v| d.direction = v,
                    )}
                    <div class="field-group">
                        {number_field("Warning", "rule-warning-raise", |d| d.warning_raise.clone(), |d, v| d.warning_raise = v)}
                        <span class="muted">{clear_hint}</span>
                        {number_field("clear", "rule-warning-clear", |d| d.warning_clear.clone(), |d, v| d.warning_clear = v)}
                    </div>
                    <div class="field-group">
                        {number_field("Critical (optional)", "rule-critical-raise", |d| d.critical_raise.clone(), |d, v| d.critical_raise = v)}
                        <span class="muted">{clear_hint}</span>
                        {number_field("clear", "rule-critical-clear", |d| d.critical_clear.clone(), |d, v| d.critical_clear = v)}
                    </div>
                    <div class="field-group">
                        {number_field("For (s)", "rule-for", |d| d.for_secs.clone(), |d, v| d.for_secs = v)}
                        {number_field("Keep firing (s)", "rule-keep-firing", |d| d.keep_firing_secs.clone(), |d, v| d.keep_firing_secs = v)}
                        <span hidden=move || !timed()>
                            {number_field("Min samples", "rule-min-count", |d| d.min_count.clone(), |d, v| d.min_count = v)}
                        </span>
                    </div>
                    {text_field("Summary (optional; {{value}}, {{threshold}}, {{series}})", "rule-summary", |d| d.summary.clone(), |d, v| d.summary = v)}
                </fieldset>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" data-testid="rule-save" disabled=move || save.pending().get()>
                        "Save rule"
                    </button>
                    {move || error().map(|e| view! { <span class="notice" role="alert" data-testid="rule-error">{e}</span> })}
                    {move || match answer.get() {
                        Some(Ok(name)) => Some(view! { <span class="muted" data-testid="rule-saved">{format!("Saved rule {name}.")}</span> }),
                        _ => None,
                    }}
                </div>
            </form>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alerts::RuleSource;

    #[test]
    fn thresholds_are_plain_finite_numbers() {
        for (text, want) in [("1500", Some(1500.0)), ("0.5", Some(0.5)), ("-2", Some(-2.0))] {
            assert_eq!(decimal(text), want, "{text}");
        }
        assert_eq!(decimal("1e3"), Some(1000.0));
        for text in ["", "abc", "inf", "NaN", "1e400", "0x10", "1,5", "12 ms", "-", "1e"] {
            assert_eq!(decimal(text), None, "{text}");
        }
    }

    fn draft() -> RuleDraft {
        RuleDraft {
            name: " slow op ".into(),
            target: "e2e.alert.op".into(),
            window: "1m".into(),
            warning_raise: "100".into(),
            warning_clear: "50".into(),
            for_secs: "2".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_filled_in_form_makes_the_rule_the_api_takes() {
        let rule = draft().checked().unwrap();
        assert_eq!(rule.name, "slow op");
        assert_eq!(rule.target.describe(), "p95 of e2e.alert.op over 1m");
        assert_eq!(rule.warning, Some(Threshold::above(100.0, 50.0)));
        assert_eq!((rule.critical, rule.for_secs, rule.source), (None, 2, RuleSource::Api));
        let mut d = draft();
        d.direction = "below".into();
        d.warning_raise = "70".into();
        d.warning_clear = "75".into();
        d.critical_raise = "50".into();
        assert_eq!(
            d.checked().unwrap().critical,
            Some(Threshold { below: Some(50.0), ..Default::default() })
        );
        d.kind = "host".into();
        d.host = "memory_pct".into();
        d.min_count = "junk".into();
        let host = d.checked().unwrap();
        assert_eq!((host.target.describe(), host.min_count), ("host memory_pct".to_string(), 0));
    }

    #[test]
    fn a_wrong_form_names_its_field() {
        let field = |edit: fn(&mut RuleDraft)| {
            let mut d = draft();
            edit(&mut d);
            d.checked().unwrap_err().field
        };
        assert_eq!(field(|d| d.name = " ".into()), "name");
        assert_eq!(field(|d| d.warning_clear = "150".into()), "warning");
        assert_eq!(field(|d| d.warning_raise = String::new()), "warning");
        assert_eq!(field(|d| d.warning_raise = "x".into()), "warning");
        assert_eq!(field(|d| d.critical_clear = "1".into()), "critical");
        assert_eq!(field(|d| d.for_secs = "-1".into()), "for_secs");
        assert_eq!(field(|d| d.for_secs = "90000".into()), "for_secs");
        assert_eq!(field(|d| d.target = String::new()), "target.operation");
    }
}
