//! The HTML shell, the application frame (header, navigation) and the route table.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    lazy_route, path, Lazy, LazyRoute, SsrMode,
};

use crate::components::live::{provide_live, AlertsBadge, LiveBadge, PauseToggle};
use crate::model::PRODUCT_NAME;
use crate::pages::{
    alerts::AlertsPage,
    dashboard::DashboardPage,
    not_found::NotFoundPage,
    operations::OperationsPage,
    reports::{ReportPage, ReportsPage},
    values::ValuesPage,
};

/// The complete HTML document rendered on the server around [`App`].
///
/// The stylesheet and the hydration scripts point at the content-hashed asset folder chosen by
/// the server (`options.site_pkg_dir`), so they can be cached for a year.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::security::set_document_csp();
    let css = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="dark" />
                <link rel="icon" href="/favicon.ico" />
                <link rel="stylesheet" href=css />
                <HydrationScripts options=options.clone() />
                {split_loader_preload(&options)}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The split bundle's loader, which the bundle imports: fetched beside it, not after it.
fn split_loader_preload(options: &LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let loader = crate::server::assets::split_loader();
    #[cfg(not(feature = "ssr"))]
    let loader: Option<String> = None;
    let pkg = options.site_pkg_dir.clone();
    loader.map(|file| view! { <link rel="modulepreload" href=format!("/{pkg}/{file}") /> })
}

/// The application: header with live status, navigation and the routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_live();
    view! {
        <Title formatter=|page: String| format!("{page} · {PRODUCT_NAME}") />
        <Router>
            <header class="app-header">
                <a class="brand" href="/" data-testid="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    {PRODUCT_NAME}
                </a>
                <nav class="app-nav" aria-label="Main">
                    <A href="/" exact=true attr:data-testid="nav-dashboard">"Dashboard"</A>
                    <A href="/operations" attr:data-testid="nav-operations">"Operations"</A>
                    <A href="/values" attr:data-testid="nav-values">"Values"</A>
                    <A href="/alerts" attr:data-testid="nav-alerts">"Alerts"</A>
                    <A href="/reports" attr:data-testid="nav-reports">"Reports"</A>
                </nav>
                <div class="live-slot" data-testid="live-slot">
                    <AlertsBadge />
                    <LiveBadge />
                    <PauseToggle />
                </div>
            </header>
            <main class="app-main">
                <Routes fallback=NotFoundPage>
                    <Route path=path!("") view=|| { mark_hydrated("DashboardPage"); DashboardPage() } ssr=SsrMode::Async />
                    <Route path=path!("operations") view={Lazy::<OperationsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("values") view={Lazy::<ValuesRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("alerts") view={Lazy::<AlertsRoute>::new()} />
                    <Route path=path!("reports") view={Lazy::<ReportsRoute>::new()} />
                    // In order: the header and the report's heading are sent (and painted)
                    // while the Summary is computed; the HTML stays whole without JavaScript.
                    <Route path=path!("reports/:id") view={Lazy::<ReportRoute>::new()} ssr=SsrMode::InOrder />
                </Routes>
            </main>
        </Router>
    }
}

/// Every page but the Dashboard is its own lazily loaded part of the WASM bundle: built with
/// `cargo leptos build --split`, a page's code is fetched when the page is first shown (or
/// hydrated), so the first paint of the Dashboard does not wait for the other pages' code.
/// The build must split (`split = true` in Leptos.toml): an unsplit bundle of these routes does
/// not hydrate, and the server's health says so (`assets.rs`).
macro_rules! lazy_page {
    ($($route:ident => $page:ident),* $(,)?) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                #[cfg(feature = "ssr")]
                preload_parts(stringify!($route));
                mark_hydrated(stringify!($page));
                $page().into_any()
            }
        }
    )*};
}

lazy_page! {
    OperationsRoute => OperationsPage,
    ValuesRoute => ValuesPage,
    AlertsRoute => AlertsPage,
    ReportsRoute => ReportsPage,
    ReportRoute => ReportPage,
}

/// On the server: asks the browser (`<link rel="preload">` in the head) for the parts of the
/// split bundle the lazily loaded route `route` needs, so they arrive beside the shared bundle
/// rather than after it has started. Adds nothing to the body, so hydration is unaffected.
#[cfg(feature = "ssr")]
fn preload_parts(route: &str) {
    use leptos_meta::Link;
    let Ok(state) = crate::server::state::expect_state() else {
        return;
    };
    let pkg = state.leptos_options.site_pkg_dir.clone();
    for part in crate::server::assets::split_parts(route) {
        let href = format!("/{pkg}/{part}.wasm");
        _ = view! {
            <Link rel="preload" href=href as_="fetch" type_="application/wasm" crossorigin="" />
        }
        .to_html();
    }
}

/// Marks the document once the routed page has hydrated (`<html data-hydrated="…">`, naming the
/// page) and the time in a `vitals:hydrated` performance mark: until then the page's controls do
/// not answer. With lazily loaded pages that is after the page's own code has arrived, later
/// than the `load` event; the browser tests and the page-load benchmark wait for it. The effect
/// runs only in the browser, after the page is hydrated.
fn mark_hydrated(page: &'static str) {
    Effect::new(move || {
        #[cfg(feature = "hydrate")]
        if let Some(root) = document().document_element() {
            if root.get_attribute("data-hydrated").is_none() {
                if let Some(performance) = window().performance() {
                    _ = performance.mark("vitals:hydrated");
                }
            }
            _ = root.set_attribute("data-hydrated", page);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = page;
    });
}
