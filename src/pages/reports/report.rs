//! One report (`/reports/{id}`): the Summary is in the server-rendered HTML, sent once (not
//! again as hydration data); every other section is a placeholder of its final height that
//! loads when it nears the viewport (medium priority about one screen ahead, low when
//! visible), each with its own loading state, error and retry, and the page counts the
//! sections loaded. `?full=1` (linked from a `<noscript>`) renders every section on the
//! server.

use leptos::html::Div;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::sections::section_view;
use crate::api::reports::{get_report_info, get_report_section};
use crate::charts::rfc3339_utc;
use crate::components::visible::use_visible_once;
use crate::model::reports::{ReportInfo, Section, SectionId};

/// When a section loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Priority {
    /// In the first HTML.
    High,
    /// About one screen before it scrolls into view.
    Medium,
    /// When it is visible.
    Low,
}

fn priority(id: SectionId) -> Priority {
    match id {
        SectionId::Summary => Priority::High,
        SectionId::Operations | SectionId::Latency | SectionId::Throughput => Priority::Medium,
        _ => Priority::Low,
    }
}

/// A section's state on the page.
#[derive(Clone, Debug, PartialEq)]
enum Slot {
    Waiting,
    Loading,
    Ready(Box<Section>),
    Failed(String),
}

#[component]
pub fn ReportPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.with(|p| p.get("id").and_then(|v| v.parse::<u64>().ok()));
    let full = query.with_untracked(|q| q.get("full").is_some_and(|v| v == "1"));
    let info = Resource::new(id, |id| async move {
        match id {
            Some(id) => get_report_info(id).await,
            None => Ok(None),
        }
    });
    view! {
        <Title text="Report" />
        <section class="page report-page" data-testid="page-report">
            <Suspense fallback=|| view! { <p class="muted">"Loading the report…"</p> }>
                {move || info.get().map(|found| match found {
                    Ok(Some(info)) => view! { <ReportBody info full /> }.into_any(),
                    Ok(None) => view! {
                        <h1>"No such report"</h1>
                        <p><a href="/reports">"All reports"</a></p>
                    }.into_any(),
                    Err(e) => failed(&e),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn ReportBody(info: ReportInfo, full: bool) -> impl IntoView {
    let id = info.id;
    let total = SectionId::ALL.len();
    // Sections rendered with the page count as loaded from the start; after navigating in the
    // browser there are none (each loads as a lazy section and counts itself).
    let from_server = in_server_html(id);
    let loaded = RwSignal::new(match (from_server, full) {
        (false, _) => 0,
        (true, true) => total,
        (true, false) => 1,
    });
    let range = format!(
        "{} – {}{}",
        rfc3339_utc(info.spec.from_ms),
        rfc3339_utc(info.spec.to_ms),
        if info.spec.live_ms.is_some() {
            " (the last period, recomputed when its cache entry expires)"
        } else {
            ""
        }
    );
    view! {
        <div class="page-head">
            <h1 data-testid="report-name">{info.spec.name.clone()}</h1>
            <p class="muted">{range}" · "{info.spec.scope.describe()}</p>
            <p class="muted" data-testid="report-progress" aria-live="polite">
                {move || format!("{} of {total} sections loaded", loaded.get())}
            </p>
            <noscript><a href=format!("/reports/{id}?full=1")>"Show every section"</a></noscript>
            <p class="downloads" data-testid="report-downloads">"Download: "
                <a href=format!("/api/v1/reports/{id}.html") download="" data-testid="download-html">"HTML"</a>" · "
                <a href=format!("/api/v1/reports/{id}.md") download="" data-testid="download-md">"Markdown"</a>" · "
                <a href=format!("/api/v1/reports/{id}.json") download="" data-testid="download-json">"JSON"</a>
            </p>
            <p class="muted"><a href="/reports">"All reports"</a></p>
        </div>
        {SectionId::ALL
            .into_iter()
            .map(|section| {
                let server_side = from_server && (full || priority(section) == Priority::High);
                if !server_side {
                    view! { <LazySection id section loaded /> }.into_any()
                } else if interactive(section) {
                    view! { <HydratedSection id section /> }.into_any()
                } else {
                    view! { <ServerSection id section /> }.into_any()
                }
            })
            .collect_view()}
    }
}

/// A load that failed, said in words.
fn failed(e: &impl std::fmt::Display) -> AnyView {
    view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any()
}

fn frame(section: SectionId, body: AnyView) -> impl IntoView {
    view! {
        <section class=format!("card report-section report-{}", section.as_str())
            data-testid="report-section" data-section=section.as_str()>
            <h2>{section.title()}</h2>
            {body}
        </section>
    }
}

/// Whether this render writes report `id` into the server's HTML or takes over what the server
/// wrote (hydrating the page the browser opened), rather than drawing it in the browser after
/// navigating there (the server's sections carry the report's id for this).
fn in_server_html(id: u64) -> bool {
    #[cfg(feature = "ssr")]
    {
        let _ = id;
        true
    }
    #[cfg(not(feature = "ssr"))]
    {
        let selector = format!(".section-body[data-report=\"{id}\"]");
        document().query_selector(&selector).ok().flatten().is_some()
    }
}

/// Sections whose view reacts in the browser (the Operations table sorts), so hydration needs
/// their data.
fn interactive(section: SectionId) -> bool {
    section == SectionId::Operations
}

/// A section rendered with the page (the Summary; every section with `?full=1`), sent once: the
/// server writes it into the HTML, and hydration takes that HTML over as it is (the section does
/// nothing in the browser) rather than receiving the section again as hydration data.
#[component]
fn ServerSection(id: u64, section: SectionId) -> impl IntoView {
    let body = view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {Suspend::new(server_body(id, section))}
        </Suspense>
    }
    .into_any();
    frame(section, body)
}

/// A section's body as the server writes it; in the browser, which takes the server's over, the
/// same element with nothing in it, so that hydration leaves what the server wrote inside.
async fn server_body(id: u64, section: SectionId) -> AnyView {
    #[cfg(feature = "ssr")]
    {
        let inside = match get_report_section(id, section).await {
            Ok(s) => section_view(s),
            Err(e) => failed(&e),
        };
        view! { <div class="section-body" data-report=id.to_string()>{inside}</div> }.into_any()
    }
    #[cfg(not(feature = "ssr"))]
    {
        let _ = section;
        view! { <div class="section-body" data-report=id.to_string()></div> }.into_any()
    }
}

/// An interactive section rendered with the page (`?full=1`): hydrated from its data.
#[component]
fn HydratedSection(id: u64, section: SectionId) -> impl IntoView {
    let data = Resource::new(|| (), move |_| get_report_section(id, section));
    let body = view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(s) => section_view(s),
                Err(e) => failed(&e),
            })}
        </Suspense>
    }
    .into_any();
    frame(section, body)
}

/// A section that loads when it nears the viewport, with its own state and retry.
#[component]
fn LazySection(id: u64, section: SectionId, loaded: RwSignal<usize>) -> impl IntoView {
    let node = NodeRef::<Div>::new();
    let margin = if priority(section) == Priority::Medium { "100% 0px" } else { "0px" };
    let visible = use_visible_once(node, margin);
    let slot = RwSignal::new(Slot::Waiting);
    let load = move || {
        slot.set(Slot::Loading);
        leptos::task::spawn_local(async move {
            match get_report_section(id, section).await {
                Ok(s) => {
                    slot.set(Slot::Ready(Box::new(s)));
                    loaded.update(|n| *n += 1);
                }
                Err(e) => slot.set(Slot::Failed(e.to_string())),
            }
        });
    };
    Effect::new(move |_| {
        if visible.get() && slot.get_untracked() == Slot::Waiting {
            load();
        }
    });
    let body = view! {
        <div node_ref=node class="section-slot" data-testid="section-slot"
            data-state=move || match slot.get() {
                Slot::Waiting => "waiting",
                Slot::Loading => "loading",
                Slot::Ready(_) => "ready",
                Slot::Failed(_) => "failed",
            }>
            {move || match slot.get() {
                Slot::Waiting => view! { <p class="muted">"Loads as you scroll to it."</p> }.into_any(),
                Slot::Loading => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Slot::Ready(s) => section_view(*s),
                Slot::Failed(e) => view! {
                    <p class="error" role="alert">{format!("This section could not be loaded: {e}")}</p>
                    <button type="button" data-testid="section-retry" on:click=move |_| load()>"Retry"</button>
                }.into_any(),
            }}
        </div>
    }
    .into_any();
    frame(section, body)
}
