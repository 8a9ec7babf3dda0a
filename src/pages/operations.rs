//! The Operations page (`/operations`): per-operation latency statistics.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn OperationsPage() -> impl IntoView {
    view! {
        <Title text="Operations" />
        <section class="page" data-testid="page-operations">
            <h1>"Operations"</h1>
            <p class="coming">"Per-operation rates, success and latency percentiles appear here."</p>
        </section>
    }
}
