//! The 404 page; answers HTTP status 404 when rendered on the server.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <section class="page" data-testid="page-not-found">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. Try the "<a href="/">"dashboard"</a>"."</p>
        </section>
    }
}
