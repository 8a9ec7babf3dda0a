//! The buttons that run an action, one shape for every page: greyed while their action is under
//! way (so a double click sends one), and a Delete that asks once more before it deletes. One
//! component compiled once, where each page's own `<button>` was a view of its own in the bundle.
//! Used by the lazily loaded pages only (the Dashboard's Refresh keeps its own button, so that the
//! first page's part of the bundle does not carry this one).

use leptos::prelude::*;

/// A button that runs `act` on a click, disabled while `busy`.
#[component]
pub fn ActionButton(
    /// What it says (a signal when it changes, as "Refreshing…").
    #[prop(into)]
    label: Signal<&'static str>,
    /// Its `data-testid`.
    testid: &'static str,
    /// Red, for what cannot be undone.
    #[prop(optional)]
    danger: bool,
    /// What it does, said on hover.
    #[prop(optional_no_strip)]
    title: Option<&'static str>,
    /// Disabled while true: its action is under way, or it cannot run here.
    #[prop(into)]
    busy: Signal<bool>,
    act: Callback<()>,
) -> impl IntoView {
    view! {
        <button
            type="button"
            class=if danger { "btn btn-danger" } else { "btn" }
            data-testid=testid
            title=title
            disabled=move || busy.get()
            on:click=move |_| act.run(())
        >
            {move || label.get()}
        </button>
    }
}

/// Delete: the first click arms it ("Really delete?"), the second runs `act`.
#[component]
pub fn DeleteButton(
    testid: &'static str,
    #[prop(into)] busy: Signal<bool>,
    act: Callback<()>,
) -> impl IntoView {
    let armed = RwSignal::new(false);
    let label = Signal::derive(move || if armed.get() { "Really delete?" } else { "Delete" });
    let click = Callback::new(move |()| {
        if armed.get_untracked() {
            armed.set(false);
            act.run(());
        } else {
            armed.set(true);
        }
    });
    view! { <ActionButton label testid danger=true busy act=click /> }
}
