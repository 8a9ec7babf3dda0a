//! The buttons that run an action, one shape for every page: greyed while their action is under
//! way (so a double click sends one), and a Delete that asks once more before it deletes. One
//! component compiled once, where each page's own `<button>` was a view of its own in the bundle.
//! Used by the lazily loaded pages only (the Dashboard's Refresh keeps its own button, so that the
//! first page's part of the bundle does not carry this one).

use leptos::prelude::*;

/// A button that runs `act` on a click, disabled while `busy` (its action's `pending()`) or
/// for good when `locked`. Plain props (a fixed label, the action's own memo) keep Leptos's
/// generic signal code out of the bundle: with `Signal` props this component cost the pages
/// that share it 11 KB.
#[component]
pub fn ActionButton(
    /// What it says.
    label: &'static str,
    /// Its `data-testid`.
    testid: &'static str,
    /// What it does, said on hover.
    #[prop(optional_no_strip)]
    title: Option<&'static str>,
    /// Disabled while true: its action is under way.
    busy: Memo<bool>,
    /// Disabled for good (it cannot run here).
    #[prop(optional)]
    locked: bool,
    act: Callback<()>,
) -> impl IntoView {
    view! {
        <button
            type="button"
            class="btn"
            data-testid=testid
            title=title
            disabled=move || locked || busy.get()
            on:click=move |_| act.run(())
        >
            {label}
        </button>
    }
}

/// Delete: the first click arms it ("Really delete?"), the second runs `act`; disabled while
/// `busy`.
#[component]
pub fn DeleteButton(testid: &'static str, busy: Memo<bool>, act: Callback<()>) -> impl IntoView {
    let armed = RwSignal::new(false);
    view! {
        <button
            type="button"
            class="btn btn-danger"
            data-testid=testid
            disabled=move || busy.get()
            on:click=move |_| {
                if armed.get_untracked() {
                    armed.set(false);
                    act.run(());
                } else {
                    armed.set(true);
                }
            }
        >
            {move || if armed.get() { "Really delete?" } else { "Delete" }}
        </button>
    }
}
