//! A chart panel: a titled box holding an SVG drawn by [`crate::charts`], redrawn reactively.

use leptos::prelude::*;

/// `svg` is recomputed whenever its inputs change; the markup comes from our own chart code.
#[component]
pub fn ChartPanel(
    #[prop(into)] title: String,
    #[prop(into)] testid: String,
    #[prop(into)] svg: Signal<String>,
) -> impl IntoView {
    view! {
        <figure class="chart-panel" data-testid=testid>
            <figcaption>{title}</figcaption>
            <div class="chart" inner_html=move || svg.get()></div>
        </figure>
    }
}
