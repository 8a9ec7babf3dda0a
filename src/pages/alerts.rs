//! The Alerts page. Its feature arrives in a later release; until then it says what is coming.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AlertsPage() -> impl IntoView {
    view! {
        <Title text="Alerts" />
        <section class="page" data-testid="page-alerts">
            <h1>"Alerts"</h1>
            <p class="coming">"Coming soon: Threshold alerts on any metric or operation, with hysteresis so they do not flap, and a history of when each fired and cleared."</p>
        </section>
    }
}
