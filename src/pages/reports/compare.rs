//! The tag comparison of `/reports`: one tag value against another over the same range (a
//! version against the next, one region against another), judged by the same statistics as a
//! report's Comparison section and shown with the same table.

use leptos::prelude::*;

use super::sections::comparison;
use crate::api::reports::compare;
use crate::model::reports::{CompareRequest, Comparison, Refused, Scope, TimeArg};

/// The ranges offered: label and `from` (to now).
const RANGES: [(&str, &str); 3] =
    [("Last hour", "-1h"), ("Last 24 hours", "-24h"), ("Last 7 days", "-7d")];

#[component]
pub fn CompareTags() -> impl IntoView {
    let before = RwSignal::new(String::new());
    let after = RwSignal::new(String::new());
    let range = RwSignal::new("-1h".to_string());
    let operations = RwSignal::new(String::new());
    let answer = RwSignal::new(None::<Result<Comparison, Refused>>);
    let run = Action::new(move |request: &CompareRequest| {
        let request = request.clone();
        async move {
            let result = match compare(request).await {
                Ok(result) => result,
                Err(e) => Err(Refused { field: None, error: e.to_string() }),
            };
            answer.set(Some(result));
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let side = |tag: String| serde_json::json!({ "tag": tag.trim() });
        let ops = operations.get_untracked();
        run.dispatch(CompareRequest {
            before: side(before.get_untracked()),
            after: side(after.get_untracked()),
            from: Some(TimeArg::Text(range.get_untracked())),
            to: None,
            scope: Scope {
                operations: Some(ops.trim().to_string()).filter(|o| !o.is_empty()),
                tags: Default::default(),
            },
        });
    };
    let error_for = move |field: &'static str| {
        move || {
            answer.with(|a| match a {
                Some(Err(r)) if r.field.as_deref().is_some_and(|f| f.starts_with(field)) => {
                    Some(view! { <span class="field-error" role="alert">{r.error.clone()}</span> })
                }
                _ => None,
            })
        }
    };
    view! {
        <form class="card report-form" data-testid="compare-form" on:submit=submit>
            <h2>"Compare two tag values"</h2>
            <p class="muted">"The same operations over the same range, one tag value against another: "
                "a version against the next, one region against another."</p>
            <label>"Before"
                <input type="text" data-testid="compare-before" required placeholder="version:1.4"
                    prop:value=move || before.get() on:input=move |ev| before.set(event_target_value(&ev)) />
                {error_for("before")}
            </label>
            <label>"After"
                <input type="text" data-testid="compare-after" required placeholder="version:1.5"
                    prop:value=move || after.get() on:input=move |ev| after.set(event_target_value(&ev)) />
                {error_for("after")}
            </label>
            <label>"Range"
                <select data-testid="compare-range" on:change=move |ev| range.set(event_target_value(&ev))>
                    {RANGES.into_iter().map(|(label, value)| view! {
                        <option value=value selected=move || range.get() == value>{label}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Operations"
                <input type="text" data-testid="compare-operations" placeholder="api.* (all when empty)"
                    prop:value=move || operations.get() on:input=move |ev| operations.set(event_target_value(&ev)) />
                {error_for("scope")}
            </label>
            <button type="submit" data-testid="compare-run" disabled=move || run.pending().get()>
                {move || if run.pending().get() { "Comparing…" } else { "Compare" }}
            </button>
            {move || answer.with(|a| match a {
                Some(Err(r)) if !r.field.as_deref().is_some_and(|f| {
                    ["before", "after", "scope"].iter().any(|shown| f.starts_with(shown))
                }) => Some(view! { <p class="error" role="alert">{r.error.clone()}</p> }.into_any()),
                Some(Ok(c)) => Some(view! {
                    <div class="compare-result" data-testid="compare-result">{comparison(c.clone())}</div>
                }.into_any()),
                _ => None,
            })}
        </form>
    }
}
