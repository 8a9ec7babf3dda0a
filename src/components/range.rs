//! The time-range control of the Dashboard and the Operations page: a menu of a page's choices
//! (live, then stored ranges ending now) and a custom range typed as the API takes times
//! (Unix ms, RFC 3339, `now`, or relative like `-6h`; the server reads them, so one parser
//! serves the API and the UI). A fixed range (custom, or dragged on a chart) shows its bounds.

use leptos::prelude::*;

use crate::api::resolve_range;
use crate::charts::{rfc3339_utc, TimeWindow};
use crate::model::history::Span;

/// The menu's value for a fixed range.
const CUSTOM: &str = "custom";

#[component]
pub fn RangeControl(
    /// The span shown now (from the URL).
    #[prop(into)]
    current: Signal<Span>,
    /// The page's choices, live first.
    choices: Vec<Span>,
    /// Called with the span chosen; the page puts it in the URL.
    on_change: Callback<Span>,
) -> impl IntoView {
    let single_live = choices.iter().filter(|s| s.is_live()).count() == 1;
    let text_of =
        move |s: Span| if single_live && s.is_live() { "Live".to_string() } else { s.label() };
    let option = move |s: Span| {
        let label = s.label();
        view! { <option value=label.clone() selected=move || current.get() == s>{text_of(s)}</option> }
    };
    let live: Vec<Span> = choices.iter().copied().filter(|s| s.is_live()).collect();
    let stored: Vec<Span> = choices.iter().copied().filter(|s| !s.is_live()).collect();
    let editing = RwSignal::new(false);
    let custom_open = move || editing.get() || matches!(current.get(), Span::Between(..));
    let picked = {
        let choices = choices.clone();
        move |ev| {
            let value = event_target_value(&ev);
            if value == CUSTOM {
                editing.set(true);
            } else if let Some(span) = choices.iter().copied().find(|s| s.label() == value) {
                editing.set(false);
                on_change.run(span);
            }
        }
    };
    view! {
        <div class="range-control" data-testid="range-control">
            <label>
                "Range "
                <select data-testid="range-select" on:change=picked>
                    {(!live.is_empty()).then(|| view! {
                        <optgroup label="Live">{live.into_iter().map(option).collect_view()}</optgroup>
                    })}
                    <optgroup label="History">
                        {stored.into_iter().map(option).collect_view()}
                        <option value=CUSTOM selected=custom_open>"Custom…"</option>
                    </optgroup>
                </select>
            </label>
            {move || custom_open().then(|| view! { <CustomRange current on_change editing /> })}
        </div>
    }
    .into_any()
}

/// From and To fields and Apply; the error of a bad entry names its field.
#[component]
fn CustomRange(
    current: Signal<Span>,
    on_change: Callback<Span>,
    editing: RwSignal<bool>,
) -> impl IntoView {
    let (from0, to0) = match current.get_untracked() {
        Span::Between(from, to) => (rfc3339_utc(from), rfc3339_utc(to)),
        // The span shown, as a relative range to start from.
        other => (format!("-{}", other.label()), "now".to_string()),
    };
    let from = RwSignal::new(from0);
    let to = RwSignal::new(to0);
    let apply =
        Action::new(|(from, to): &(String, String)| resolve_range(from.clone(), to.clone()));
    Effect::new(move |_| {
        if let Some(Ok(Ok((f, t)))) = apply.value().get() {
            editing.set(false);
            on_change.run(Span::Between(f, t));
        }
    });
    let error = move || match apply.value().get() {
        Some(Ok(Err(e))) => Some(e),
        Some(Err(e)) => Some(format!("Cannot check the range: {e}")),
        _ => None,
    };
    let shown = move || match current.get() {
        Span::Between(f, t) => Some(TimeWindow::between(f, t).describe()),
        _ => None,
    };
    view! {
        <form
            class="custom-range"
            on:submit=move |ev| {
                ev.prevent_default();
                apply.dispatch((from.get_untracked(), to.get_untracked()));
            }
        >
            <label>
                "From "
                <input
                    type="text"
                    data-testid="range-from"
                    placeholder="-6h or 2026-12-02T10:00:00Z"
                    prop:value=move || from.get()
                    on:input=move |ev| from.set(event_target_value(&ev))
                />
            </label>
            <label>
                "To "
                <input
                    type="text"
                    data-testid="range-to"
                    placeholder="now"
                    prop:value=move || to.get()
                    on:input=move |ev| to.set(event_target_value(&ev))
                />
            </label>
            <button type="submit" class="btn" data-testid="range-apply" disabled=move || apply.pending().get()>
                "Apply"
            </button>
            {move || shown().map(|text| view! { <span class="muted" data-testid="range-shown">{text}</span> })}
            {move || error().map(|text| view! { <span class="notice" role="alert" data-testid="range-error">{text}</span> })}
        </form>
    }
}
