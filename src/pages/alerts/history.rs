//! The stored history of transitions, filtered, with their notification attempts.

use leptos::prelude::*;

use super::{number, utc_text};
use crate::api::get_alert_history;
use crate::charts::rfc3339_utc;
use crate::components::live::use_live;
use crate::components::throttle::{on_alert_changes, ALERT_REFETCH};
use crate::model::alerts::{AlertEvent, NotificationAttempt, Severity};

/// History ranges offered, in hours.
const HISTORY_HOURS: [(u64, &str); 5] =
    [(1, "1 h"), (6, "6 h"), (24, "24 h"), (168, "7 d"), (720, "30 d")];

/// Stored transitions, filtered, refreshed when the live alerts change (at most every few
/// seconds).
#[component]
pub(super) fn HistorySection() -> impl IntoView {
    let live = use_live();
    let rule = RwSignal::new(String::new());
    let severity = RwSignal::new(None::<Severity>);
    let q = RwSignal::new(String::new());
    let hours = RwSignal::new(24u64);
    // A change is read at once (at most every few seconds), and again a little later:
    // transitions reach the store within a second, notification attempts later still.
    let refreshes = RwSignal::new(0u64);
    on_alert_changes(live, ALERT_REFETCH, move || {
        refreshes.update(|n| *n += 1);
        set_timeout(
            move || {
                let _ = refreshes.try_update(|n| *n += 1);
            },
            std::time::Duration::from_secs(2),
        );
    });
    let history = Resource::new(
        move || (rule.get(), severity.get(), q.get(), hours.get(), refreshes.get()),
        |(rule, severity, q, hours, _)| get_alert_history(Some(rule), severity, Some(q), hours),
    );
    view! {
        <section class="alerts-section" data-testid="alerts-history">
            <h2>"History"</h2>
            <div class="toolbar">
                <input
                    type="text"
                    placeholder="Rule name"
                    aria-label="Only the rule named"
                    data-testid="history-rule"
                    prop:value=move || rule.get()
                    on:change=move |ev| rule.set(event_target_value(&ev).trim().to_string())
                />
                <select
                    aria-label="Severity"
                    data-testid="history-severity"
                    on:change=move |ev| severity.set(Severity::parse(&event_target_value(&ev)))
                >
                    <option value="" selected=move || severity.get().is_none()>"any severity"</option>
                    <option value="warning" selected=move || severity.get() == Some(Severity::Warning)>"warning"</option>
                    <option value="critical" selected=move || severity.get() == Some(Severity::Critical)>"critical"</option>
                </select>
                <input
                    type="search"
                    placeholder="Text in rule, series, labels or note"
                    aria-label="Search the history"
                    data-testid="history-q"
                    prop:value=move || q.get()
                    on:change=move |ev| q.set(event_target_value(&ev))
                />
                <select
                    aria-label="Range"
                    data-testid="history-range"
                    on:change=move |ev| {
                        if let Ok(h) = event_target_value(&ev).parse() {
                            hours.set(h);
                        }
                    }
                >
                    {HISTORY_HOURS
                        .into_iter()
                        .map(|(h, label)| view! {
                            <option value=h.to_string() selected=move || hours.get() == h>{format!("last {label}")}</option>
                        })
                        .collect_view()}
                </select>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match history.await {
                        Err(e) => view! { <p class="notice">{format!("Cannot load the history: {e}")}</p> }.into_any(),
                        Ok(h) if h.events.is_empty() => view! {
                            <p class="muted" data-testid="history-empty">"No alert changes in this range."</p>
                        }
                        .into_any(),
                        Ok(h) => {
                            let truncated = h.truncated.then(|| view! {
                                <p class="muted" data-testid="history-truncated">
                                    {format!("The latest {} are listed; narrow the filters for older ones.", h.events.len())}
                                </p>
                            });
                            view! {
                                <EventsTable events=h.events testid="history-table" row_testid="history-row" />
                                {truncated}
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

/// One transition, stored or from a rule test.
/// Transitions as a table, a row each (the history, and a rule's test).
#[component]
pub(super) fn EventsTable(
    events: Vec<AlertEvent>,
    testid: &'static str,
    row_testid: &'static str,
) -> impl IntoView {
    let rows =
        events.into_iter().map(|e| view! { <EventRow event=e testid=row_testid /> }).collect_view();
    view! {
        <table class="data plain" data-testid=testid>
            <thead>
                <tr>
                    <th>"Time"</th>
                    <th>"Rule"</th>
                    <th>"Series"</th>
                    <th>"Change"</th>
                    <th>"Value"</th>
                    <th>"Notifications"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn EventRow(event: AlertEvent, testid: &'static str) -> impl IntoView {
    let change = format!("{} → {}", event.from.as_str(), event.to.as_str());
    let severity = event.severity.map_or("", Severity::as_str);
    let value = match (event.value, event.threshold) {
        (Some(v), Some(t)) => format!("{} / {}", number(v), number(t)),
        (Some(v), None) => number(v),
        (None, _) => "no data".to_string(),
    };
    let notifications: Vec<String> = event.notifications.iter().map(attempt_words).collect();
    view! {
        <tr
            data-testid=testid
            data-rule=event.rule.clone()
            data-from=event.from.as_str()
            data-to=event.to.as_str()
        >
            <td title=rfc3339_utc(event.at_ms)>{utc_text(event.at_ms)}</td>
            <td class="name">{event.rule.clone()}</td>
            <td class="name">{event.series.clone()}</td>
            <td>
                <span class=format!("state state-{}", event.to.as_str())>{change}</span>
                " "
                <span class=format!("severity severity-{severity}")>{severity}</span>
                <span class="row-tags">{event.note.clone()}</span>
            </td>
            <td>{value}</td>
            <td class="wrap" data-col="notifications">
                {notifications.into_iter().map(|n| view! { <span class="row-tags">{n}</span> }).collect_view()}
            </td>
        </tr>
    }
}

fn attempt_words(a: &NotificationAttempt) -> String {
    let detail = if a.detail.is_empty() { String::new() } else { format!(": {}", a.detail) };
    format!("{} #{} {}{detail}", a.receiver, a.attempt, a.outcome)
}
