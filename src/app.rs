//! The HTML shell, the application frame (header, navigation) and the route table.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path, SsrMode,
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
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
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
                    <Route path=path!("") view=DashboardPage ssr=SsrMode::Async />
                    <Route path=path!("operations") view=OperationsPage ssr=SsrMode::Async />
                    <Route path=path!("values") view=ValuesPage ssr=SsrMode::Async />
                    <Route path=path!("alerts") view=AlertsPage />
                    <Route path=path!("reports") view=ReportsPage />
                    // In order: the header and the report's heading are sent (and painted)
                    // while the Summary is computed; the HTML stays whole without JavaScript.
                    <Route path=path!("reports/:id") view=ReportPage ssr=SsrMode::InOrder />
                </Routes>
            </main>
        </Router>
    }
}
