//! The Reports page. Its feature arrives in a later release; until then it says what is coming.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ReportsPage() -> impl IntoView {
    view! {
        <Title text="Reports" />
        <section class="page" data-testid="page-reports">
            <h1>"Reports"</h1>
            <p class="coming">"Coming soon: Server-rendered performance reports over any period, before/after comparisons that prove what an optimisation gained, with charts and recommendations backed by evidence."</p>
        </section>
    }
}
