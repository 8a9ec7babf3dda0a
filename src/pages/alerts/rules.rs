//! The rules in force: enable, disable, delete, and "Test this rule" over the last hour.

use leptos::prelude::*;

use super::history::EventsTable;
use super::{threshold_words, utc_text};
use crate::api::{delete_alert_rule, get_alert_rules, put_alert_rule, test_alert_rule};
use crate::charts::span_words;
use crate::components::buttons::{ActionButton, DeleteButton};
use crate::model::alerts::{Rule, RuleError, RuleSource, RuleTestResult, Severity};

/// The rules in force, with their buttons and the latest test.
#[component]
pub(super) fn RulesSection(rules_version: RwSignal<u64>) -> impl IntoView {
    let rules = Resource::new(move || rules_version.get(), |_| get_alert_rules());
    let error = RwSignal::new(None::<String>);
    let changed = move |answer: Result<Result<(), RuleError>, ServerFnError>| match answer {
        Ok(Ok(())) => {
            error.set(None);
            rules_version.update(|v| *v += 1);
        }
        Ok(Err(e)) => error.set(Some(e.to_string())),
        Err(e) => error.set(Some(format!("Cannot change the rule: {e}"))),
    };
    let toggle = Action::new(move |rule: &Rule| {
        let mut rule = rule.clone();
        rule.enabled = !rule.enabled;
        async move { changed(put_alert_rule(rule, false).await.map(|r| r.map(|_| ()))) }
    });
    let delete = Action::new(move |name: &String| {
        let name = name.clone();
        async move { changed(delete_alert_rule(name).await) }
    });
    let test = Action::new(|name: &String| {
        let name = name.clone();
        async move {
            let answer = test_alert_rule(name.clone()).await.map_err(|e| e.to_string());
            (name, answer)
        }
    });
    view! {
        <section class="alerts-section" data-testid="alerts-rules">
            <h2>"Rules"</h2>
            {move || error.get().map(|e| view! { <p class="notice" role="alert" data-testid="rules-error">{e}</p> })}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match rules.await {
                        Err(e) => view! { <p class="notice">{format!("Cannot load the rules: {e}")}</p> }.into_any(),
                        Ok(listing) if listing.rules.is_empty() => view! {
                            <p class="muted" data-testid="rules-empty">"No rules yet: add one below."</p>
                        }
                        .into_any(),
                        Ok(listing) => view! {
                            <table class="data plain" data-testid="rules-table">
                                <thead>
                                    <tr>
                                        <th>"Rule"</th>
                                        <th>"Watches"</th>
                                        <th>"Thresholds"</th>
                                        <th>"For"</th>
                                        <th>"Source"</th>
                                        <th>"Enabled"</th>
                                        <th></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {listing
                                        .rules
                                        .into_iter()
                                        .map(|rule| view! { <RuleRow rule toggle delete test /> })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
            {move || test.pending().get().then(|| view! { <p class="muted">"Testing…"</p> })}
            {move || test.value().get().map(|(name, answer)| view! { <RuleTestView name answer /> })}
        </section>
    }
    .into_any()
}

#[component]
fn RuleRow(
    rule: Rule,
    toggle: Action<Rule, ()>,
    delete: Action<String, ()>,
    test: Action<String, (String, Result<RuleTestResult, String>)>,
) -> impl IntoView {
    let unit = rule.target.unit();
    let thresholds = [(Severity::Warning, &rule.warning), (Severity::Critical, &rule.critical)]
        .into_iter()
        .filter_map(|(s, t)| {
            t.as_ref().map(|t| format!("{} {}", s.as_str(), threshold_words(t, unit)))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut timing =
        if rule.for_secs == 0 { "at once".to_string() } else { span_words(rule.for_secs as f64) };
    if rule.keep_firing_for_secs > 0 {
        timing
            .push_str(&format!(", keeps firing {}", span_words(rule.keep_firing_for_secs as f64)));
    }
    let source = match rule.source {
        RuleSource::Default => "default",
        RuleSource::Config => "config",
        RuleSource::Api => "api",
    };
    let from_config = rule.source == RuleSource::Config;
    let summary = rule.summary.clone();
    let described = rule.target.describe();
    let enabled = rule.enabled;
    let name = rule.name.clone();
    let (delete_name, test_name) = (name.clone(), name.clone());
    let toggle_act = Callback::new(move |()| {
        toggle.dispatch(rule.clone());
    });
    let delete_act = Callback::new(move |()| {
        delete.dispatch(delete_name.clone());
    });
    let test_act = Callback::new(move |()| {
        test.dispatch(test_name.clone());
    });
    view! {
        <tr
            data-testid="rule-row"
            data-rule=name.clone()
            data-enabled=if enabled { "true" } else { "false" }
            data-source=source
        >
            <td class="name" title=summary>{name.clone()}</td>
            <td data-col="target">{described}</td>
            <td data-col="thresholds">{thresholds}</td>
            <td>{timing}</td>
            <td>{source}</td>
            <td>{if enabled { "yes" } else { "no" }}</td>
            <td class="actions">
                <ActionButton
                    label=if enabled { "Disable" } else { "Enable" }
                    testid="rule-toggle"
                    title=from_config.then_some("Rules of the config file change there")
                    busy=toggle.pending()
                    locked=from_config
                    act=toggle_act
                />
                {(!from_config).then(|| view! {
                    <DeleteButton testid="rule-delete" busy=delete.pending() act=delete_act />
                })}
                <ActionButton
                    label="Test"
                    testid="rule-test-run"
                    title=Some("When it would have fired over the last hour")
                    busy=test.pending()
                    act=test_act
                />
            </td>
        </tr>
    }
}

/// What a rule would have done over the last hour.
#[component]
fn RuleTestView(name: String, answer: Result<RuleTestResult, String>) -> impl IntoView {
    let body = match answer {
        Err(e) => view! { <p class="notice">{format!("Cannot test the rule: {e}")}</p> }.into_any(),
        Ok(result) => {
            let range = format!(
                "From {} to {}, one evaluation every {}: {} series matched.",
                utc_text(result.from_ms),
                utc_text(result.to_ms),
                span_words(result.step_secs as f64),
                result.series
            );
            let outcome = if let Some(note) = result.note {
                view! { <p class="muted" data-testid="rule-test-note">{note}</p> }.into_any()
            } else if result.events.is_empty() {
                view! { <p class="muted" data-testid="rule-test-none">"It would not have changed state."</p> }
                    .into_any()
            } else {
                view! {
                    <EventsTable events=result.events testid="rule-test-events" row_testid="rule-test-event" />
                }
                .into_any()
            };
            view! {
                <p class="muted">{range}</p>
                {outcome}
            }
            .into_any()
        }
    };
    view! {
        <div class="rule-test" data-testid="rule-test" data-rule=name.clone()>
            <h3>{format!("Test of {name} over the last hour")}</h3>
            {body}
        </div>
    }
}
