//! The Alerts page (`/alerts`): the alerts now (kept current by the live stream) with their
//! Acknowledge and Silence buttons, the silences in force, recommendations with their evidence,
//! the rules (enable, disable, delete, test against the last hour), a form for a new rule
//! (checked as it is typed by the same validation the server runs) and the stored history of
//! transitions with their notifications.

mod advice;
mod form;
mod history;
mod rules;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{acknowledge_alert, add_alert_silence, delete_alert_silence, get_alerts_now};
use crate::charts::{number, rfc3339_utc};
use crate::components::buttons::ActionButton;
use crate::components::live::use_live;
use crate::model::alerts::{
    AlertInstance, AlertState, Matcher, ReceiverStats, Severity, Silence, Threshold,
};
use advice::RecommendationsSection;
use form::RuleForm;
use history::HistorySection;
use rules::RulesSection;

/// How long the "Silence 1 h" button silences.
const SILENCE_SECS: u64 = 3600;
/// The labels that name an alert's series, in the order they are looked for.
const SERIES_LABELS: [&str; 6] = ["operation", "event", "gauge", "counter", "host", "vitals"];

#[component]
pub fn AlertsPage() -> impl IntoView {
    // Bumped after a change that the live stream does not carry (silences, rules).
    let now_version = RwSignal::new(0u64);
    let rules_version = RwSignal::new(0u64);
    view! {
        <Title text="Alerts" />
        <section class="page alerts-page" data-testid="page-alerts">
            <div class="page-head">
                <h1>"Alerts"</h1>
                <p class="muted">"Thresholds on any figure, with hysteresis, for and keep-firing times"</p>
            </div>
            <NowSection now_version />
            <RecommendationsSection />
            <RulesSection rules_version />
            <RuleForm rules_version />
            <HistorySection />
        </section>
    }
    .into_any()
}

/// The alerts now and the silences in force.
#[component]
fn NowSection(now_version: RwSignal<u64>) -> impl IntoView {
    let live = use_live();
    live.want_alert_list();
    let now = Resource::new(move || now_version.get(), |_| get_alerts_now());
    let error = RwSignal::new(None::<String>);
    let ack = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            error.set(match acknowledge_alert(id, true).await {
                Ok(true) => None,
                Ok(false) => Some("That alert is no longer pending or firing.".to_string()),
                Err(e) => Some(format!("Cannot acknowledge: {e}")),
            });
        }
    });
    let silence = Action::new(move |matchers: &Vec<Matcher>| {
        let matchers = matchers.clone();
        async move {
            let comment = "silenced for 1 h from the Alerts page".to_string();
            error.set(match add_alert_silence(matchers, SILENCE_SECS, comment).await {
                Ok(Ok(_)) => {
                    now_version.update(|v| *v += 1);
                    None
                }
                Ok(Err(e)) => Some(format!("Cannot silence: {e}")),
                Err(e) => Some(format!("Cannot silence: {e}")),
            });
        }
    });
    let unsilence = Action::new(move |id: &u64| {
        let id = *id;
        async move {
            error.set(match delete_alert_silence(id).await {
                Ok(_) => {
                    now_version.update(|v| *v += 1);
                    None
                }
                Err(e) => Some(format!("Cannot end the silence: {e}")),
            });
        }
    });
    view! {
        <section class="alerts-section" data-testid="alerts-now">
            <h2>"Now"</h2>
            {move || error.get().map(|e| view! { <p class="notice" role="alert" data-testid="alerts-action-error">{e}</p> })}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match now.await {
                        Err(e) => view! { <p class="notice">{format!("Cannot load the alerts: {e}")}</p> }.into_any(),
                        Ok(data) => {
                            let seed = (data.alerts, data.total);
                            // The live stream's list once it has sent one, else this answer's.
                            let alerts = Memo::new(move |_| {
                                live.alerts.get().unwrap_or_else(|| seed.clone())
                            });
                            view! {
                                <AlertsTable alerts ack silence />
                                <SilencesList silences=data.silences unsilence />
                                <Receivers receivers=data.receivers />
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn AlertsTable(
    /// The worst alerts, and how many there are in all.
    alerts: Memo<(Vec<AlertInstance>, usize)>,
    ack: Action<String, ()>,
    silence: Action<Vec<Matcher>, ()>,
) -> impl IntoView {
    let empty = Memo::new(move |_| alerts.with(|(a, _)| a.is_empty()));
    // Rows are keyed by alert and update in place: a new list (at every change of any alert)
    // redraws what changed, and a focused button keeps its focus.
    let ids = Memo::new(move |_| {
        alerts.with(|(a, _)| a.iter().map(|x| x.id.clone()).collect::<Vec<_>>())
    });
    view! {
        {move || {
            let (listed, total) = alerts.with(|(a, total)| (a.len(), *total));
            (total > listed).then(|| view! {
                <p class="notice" data-testid="alerts-cut">
                    {format!(
                        "{total} alerts: the {listed} most urgent are listed (firing critical \
                         first, then the newest); GET /api/v1/alerts lists every one."
                    )}
                </p>
            })
        }}
        {move || {
            if empty.get() {
                return view! {
                    <p class="muted" data-testid="alerts-empty">
                        "No alerts: nothing is pending, firing or recently resolved."
                    </p>
                }
                .into_any();
            }
            view! {
                <table class="data plain" data-testid="alerts-table">
                    <thead>
                        <tr>
                            <th>"State"</th>
                            <th>"Severity"</th>
                            <th>"Rule"</th>
                            <th>"Series"</th>
                            <th>"Value"</th>
                            <th>"Since"</th>
                            <th>"Marks"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || ids.get() key=|id| id.clone() let(id)>
                            <AlertRow id alerts ack silence />
                        </For>
                    </tbody>
                </table>
            }
            .into_any()
        }}
    }
}

/// "500 ms / 100 ms": the value against the threshold it crossed.
fn value_text(alert: &AlertInstance) -> String {
    match (alert.value, alert.threshold) {
        (Some(v), Some(t)) => {
            format!("{} / {}", with_unit(v, &alert.unit), with_unit(t, &alert.unit))
        }
        (Some(v), None) => with_unit(v, &alert.unit),
        (None, _) => "no data".to_string(),
    }
}

/// Flapping, acknowledged, silenced: what sets an alert apart.
fn marks(alert: &AlertInstance) -> impl IntoView {
    let silenced = alert.silenced_by.map(|id| format!("silence {id}"));
    view! {
        {alert.flapping.then(|| view! { <span class="mark" data-testid="mark-flapping">"flapping"</span> })}
        {alert.acknowledged.then(|| view! { <span class="mark" data-testid="mark-acknowledged">"acknowledged"</span> })}
        {silenced.map(|title| view! { <span class="mark" title=title data-testid="mark-silenced">"silenced"</span> })}
    }
}

/// The row of alert `id`, drawn from the newest list that holds it.
#[component]
fn AlertRow(
    id: String,
    alerts: Memo<(Vec<AlertInstance>, usize)>,
    ack: Action<String, ()>,
    silence: Action<Vec<Matcher>, ()>,
) -> impl IntoView {
    let find = {
        let id = id.clone();
        move |(list, _): &(Vec<AlertInstance>, usize)| list.iter().find(|a| a.id == id).cloned()
    };
    let id_for_ack = id.clone();
    let Some(first) = alerts.with_untracked(&find) else {
        return ().into_any();
    };
    // Kept as last seen when the list no longer holds it (the row is then on its way out).
    let alert = Memo::new(move |last: Option<&AlertInstance>| {
        alerts.with(&find).or_else(|| last.cloned()).unwrap_or_else(|| first.clone())
    });
    let state = Memo::new(move |_| alert.with(|a| a.state.as_str()));
    let severity = Memo::new(move |_| alert.with(|a| a.severity.map_or("", Severity::as_str)));
    let can_ack = Memo::new(move |_| {
        alert.with(|a| {
            matches!(a.state, AlertState::Pending | AlertState::Firing | AlertState::Recovering)
                && !a.acknowledged
        })
    });
    let can_silence = Memo::new(move |_| {
        alert.with(|a| a.silenced_by.is_none() && a.state != AlertState::Resolved)
    });
    let rule = alert.with_untracked(|a| a.rule.clone());
    let ack_act = Callback::new(move |()| {
        ack.dispatch(id_for_ack.clone());
    });
    let silence_act = Callback::new(move |()| {
        silence.dispatch(alert.with_untracked(silence_matchers));
    });
    view! {
        <tr
            data-testid="alert-row"
            data-state=move || state.get()
            data-rule=rule
            data-severity=move || severity.get()
            data-id=id
        >
            // The cells are drawn again when the alert changes; the buttons' cell is kept (a
            // focused button keeps its focus), its buttons shown while they can act.
            {move || alert.with(alert_cells)}
            <td class="actions">
                {move || can_ack.get().then(|| view! {
                    <ActionButton label="Acknowledge" testid="alert-ack" busy=ack.pending() act=ack_act />
                })}
                {move || can_silence.get().then(|| view! {
                    <ActionButton
                        label="Silence 1 h"
                        testid="alert-silence"
                        title=Some("Mute notifications of this rule for this series for an hour")
                        busy=silence.pending()
                        act=silence_act
                    />
                })}
            </td>
        </tr>
    }
    .into_any()
}

/// An alert's cells but its buttons: state, severity, rule, series with its summary, value,
/// since when, marks.
fn alert_cells(alert: &AlertInstance) -> impl IntoView {
    let state = alert.state.as_str();
    let severity = alert.severity.map_or("", Severity::as_str);
    let active = alert.active_since_ms.map(|ms| format!("active since {}", utc_text(ms)));
    view! {
        <td><span class=format!("state state-{state}")>{state}</span></td>
        <td><span class=format!("severity severity-{severity}")>{severity}</span></td>
        <td class="name" title=alert.rule.clone()>{alert.rule.clone()}</td>
        <td class="name" title=alert.summary.clone()>
            {alert.series.clone()}
            <span class="row-tags">{alert.summary.clone()}</span>
        </td>
        <td data-col="value">{value_text(alert)}</td>
        <td title=active>{utc_text(alert.since_ms)}</td>
        <td class="marks">{marks(alert)}</td>
    }
}

#[component]
fn SilencesList(silences: Vec<Silence>, unsilence: Action<u64, ()>) -> impl IntoView {
    let body = if silences.is_empty() {
        view! { <p class="muted" data-testid="silences-empty">"No silences in force."</p> }
            .into_any()
    } else {
        view! {
            <table class="data plain" data-testid="silences">
                <thead>
                    <tr>
                        <th>"Matches"</th>
                        <th>"Until"</th>
                        <th>"Comment"</th>
                        <th></th>
                    </tr>
                </thead>
                <tbody>
                    {silences
                        .into_iter()
                        .map(|s| {
                            let id = s.id;
                            let matches: Vec<String> =
                                s.matchers.iter().map(|m| format!("{}={}", m.label, m.value)).collect();
                            let comment = if s.created_by.is_empty() {
                                s.comment.clone()
                            } else {
                                format!("{} ({})", s.comment, s.created_by)
                            };
                            view! {
                                <tr data-testid="silence-row" data-id=id.to_string()>
                                    <td class="name">{matches.join(", ")}</td>
                                    <td>{utc_text(s.ends_ms)}</td>
                                    <td>{comment}</td>
                                    <td class="actions">
                                        <ActionButton
                                            label="Delete"
                                            testid="silence-delete"
                                            busy=unsilence.pending()
                                            act=Callback::new(move |()| {
                                                unsilence.dispatch(id);
                                            })
                                        />
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <h3>"Silences"</h3>
        {body}
    }
}

/// Notification receivers' counters (nothing when none is configured).
#[component]
fn Receivers(receivers: Vec<ReceiverStats>) -> impl IntoView {
    (!receivers.is_empty()).then(|| {
        let rows = receivers
            .into_iter()
            .map(|r| {
                let error = r.last_error.clone().unwrap_or_default();
                view! {
                    <tr data-testid="receiver-row">
                        <td class="name">{r.receiver.clone()}</td>
                        <td>{r.sent}</td>
                        <td>{r.retried}</td>
                        <td>{r.failed}</td>
                        <td>{r.dropped}</td>
                        <td>{r.queued}</td>
                        <td class="wrap">{error}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h3>"Notifications"</h3>
            <table class="data plain" data-testid="receivers">
                <thead>
                    <tr>
                        <th>"Receiver"</th>
                        <th>"Sent"</th>
                        <th>"Retried"</th>
                        <th>"Failed"</th>
                        <th>"Dropped"</th>
                        <th>"Queued"</th>
                        <th>"Last error"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        }
    })
}

/// Matchers that silence `alert`'s rule on its series: `alertname` and the label naming the
/// series, each matched literally.
fn silence_matchers(alert: &AlertInstance) -> Vec<Matcher> {
    let mut matchers =
        vec![Matcher { label: "alertname".to_string(), value: glob_literal(&alert.rule) }];
    if let Some((label, value)) =
        SERIES_LABELS.iter().find_map(|l| alert.labels.get(*l).map(|v| (*l, v)))
    {
        matchers.push(Matcher { label: label.to_string(), value: glob_literal(value) });
    }
    matchers
}

/// `text` as a glob matching only itself (matcher values are globs).
fn glob_literal(text: &str) -> String {
    let mut glob = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}') {
            glob.push('[');
            glob.push(c);
            glob.push(']');
        } else {
            glob.push(c);
        }
    }
    glob
}

/// `at_ms` as people read it: "2026-12-02 10:00:00 UTC".
pub(super) fn utc_text(at_ms: u64) -> String {
    format!("{} UTC", rfc3339_utc(at_ms).trim_end_matches('Z').replace('T', " "))
}

pub(super) fn with_unit(v: f64, unit: &str) -> String {
    if unit.is_empty() {
        number(v)
    } else {
        format!("{} {unit}", number(v))
    }
}

/// "> 100 ms, clears at ≤ 50 ms".
pub(super) fn threshold_words(t: &Threshold, unit: &str) -> String {
    match (t.above, t.below) {
        (Some(a), _) => match t.clear_below {
            Some(c) => format!("> {}, clears at ≤ {}", with_unit(a, unit), with_unit(c, unit)),
            None => format!("> {}", with_unit(a, unit)),
        },
        (_, Some(b)) => match t.clear_above {
            Some(c) => format!("< {}, clears at ≥ {}", with_unit(b, unit), with_unit(c, unit)),
            None => format!("< {}", with_unit(b, unit)),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silences_match_the_rule_and_the_series_literally() {
        let alert = AlertInstance {
            id: "1".into(),
            rule: "slow*".into(),
            series: "api[1]{region=eu}".into(),
            labels: [("operation", "api[1]"), ("region", "eu"), ("alertname", "slow*")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state: AlertState::Firing,
            severity: Some(Severity::Warning),
            value: Some(1.0),
            threshold: Some(0.5),
            since_ms: 0,
            active_since_ms: None,
            flapping: false,
            acknowledged: false,
            silenced_by: None,
            summary: String::new(),
            unit: "ms".into(),
        };
        let m = silence_matchers(&alert);
        assert_eq!(m[0], Matcher { label: "alertname".into(), value: "slow[*]".into() });
        assert_eq!(m[1], Matcher { label: "operation".into(), value: "api[[]1[]]".into() });
        assert_eq!(m.len(), 2);
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn a_literal_glob_matches_its_text_and_nothing_else() {
        use crate::server::alerts::targets::Pattern;
        for text in ["api[1]", "a*b?c", "x{y}", "GET /api/items", "]["] {
            let pattern = Pattern::new(&glob_literal(text)).unwrap();
            assert!(pattern.matches(text), "{text}");
            assert!(!pattern.matches(&format!("{text}z")), "{text}");
        }
        assert!(!Pattern::new(&glob_literal("a*")).unwrap().matches("abc"));
    }

    #[test]
    fn numbers_and_thresholds_read_as_words() {
        assert_eq!(
            threshold_words(&Threshold::above(100.0, 50.0), "ms"),
            "> 100 ms, clears at ≤ 50 ms"
        );
        assert_eq!(
            threshold_words(&Threshold { below: Some(5.0), ..Default::default() }, ""),
            "< 5"
        );
        assert_eq!(utc_text(1_796_205_600_000), "2026-12-02 10:00:00 UTC");
    }
}
