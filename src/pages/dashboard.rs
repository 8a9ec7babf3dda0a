//! The dashboard (`/`): live host, process and application metrics.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn DashboardPage() -> impl IntoView {
    view! {
        <Title text="Dashboard" />
        <section class="page" data-testid="page-dashboard">
            <h1>"Dashboard"</h1>
            <p class="coming">"Live host and application metrics appear here."</p>
        </section>
    }
}
