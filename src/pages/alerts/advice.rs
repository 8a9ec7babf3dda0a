//! Recommendations: advice computed from this server's own data (`GET
//! /api/v1/recommendations`), each with its findings, the numbers behind them, a suggestion and
//! a link to the chart and range that shows it. Fetched again when the live alerts change (at
//! most every few seconds).

use leptos::prelude::*;

use super::{utc_text, with_unit};
use crate::api::get_recommendations;
use crate::components::live::use_live;
use crate::components::throttle::{on_alert_changes, ALERT_REFETCH};
use crate::model::alerts::{Evidence, Recommendation};

#[component]
pub(super) fn RecommendationsSection() -> impl IntoView {
    let live = use_live();
    let changes = RwSignal::new(0u64);
    on_alert_changes(live, ALERT_REFETCH, move || changes.update(|n| *n += 1));
    let advice = Resource::new(move || changes.get(), |_| get_recommendations());
    view! {
        <section class="alerts-section" data-testid="alerts-recommendations">
            <h2>"Recommendations"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match advice.await {
                        Err(e) => view! {
                            <p class="notice">{format!("Cannot load the recommendations: {e}")}</p>
                        }.into_any(),
                        Ok(r) if r.items.is_empty() => view! {
                            <p class="muted" data-testid="recommendations-empty">
                                {format!(
                                    "Nothing to recommend: no operation slowed or failed more since {} than before, the host is not saturated and every cache meets its target.",
                                    utc_text(r.recent_from_ms),
                                )}
                            </p>
                        }.into_any(),
                        Ok(r) => r.items.into_iter().map(|item| view! { <Advice item /> }).collect_view().into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Advice(item: Recommendation) -> impl IntoView {
    let since = item.since_ms.map(|at| format!("since {}", utc_text(at)));
    view! {
        <article
            class=format!("advice {}", item.severity.as_str())
            data-testid="recommendation"
            data-subject=item.subject.clone()
        >
            <h3>
                <span class=format!("severity severity-{}", item.severity.as_str())>{item.severity.as_str()}</span>
                " "
                {item.title}
            </h3>
            {since.map(|s| view! { <p class="muted">{s}</p> })}
            <ul class="findings">
                {item.findings.into_iter().map(|f| view! { <li>{f}</li> }).collect_view()}
            </ul>
            <table class="data evidence">
                <thead><tr><th>"Evidence"</th><th>"Value"</th><th>"Compared with"</th></tr></thead>
                <tbody>
                    {item.evidence.into_iter().map(|e| view! { <EvidenceRow e /> }).collect_view()}
                </tbody>
            </table>
            <p class="suggestion"><strong>"Suggestion: "</strong>{item.suggestion}</p>
            <p class="muted">
                <a href=item.link data-testid="recommendation-link">"Show it on the chart"</a>
                " · "
                <a href=item.data>"The data (JSON)"</a>
            </p>
        </article>
    }
}

#[component]
fn EvidenceRow(e: Evidence) -> impl IntoView {
    let compared = e.compared_to.map(|c| with_unit(c, &e.unit)).unwrap_or_default();
    view! {
        <tr>
            <td>{e.label}</td>
            <td>{with_unit(e.value, &e.unit)}</td>
            <td>{compared}</td>
        </tr>
    }
}
