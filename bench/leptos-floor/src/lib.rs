//! The least a Leptos 0.8 app like Vitals' first page needs: a router with two routes, a
//! server function's answer read into a struct, JSON messages from a WebSocket into a signal.
//! With the `islands` feature the same app is built as islands: the router and the page render on
//! the server only, and the live part is the one island that hydrates.
use futures::StreamExt;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub seq: u64,
    pub at_ms: u64,
    pub cpu_pct: f32,
    pub memory_pct: f32,
    pub name: String,
}

#[server(prefix = "/rpc", endpoint = "snapshot")]
pub async fn snapshot() -> Result<Vec<Sample>, ServerFnError> {
    Ok(Vec::new())
}

/// The live part: a server function's answer and a socket's messages drawn as they come.
fn live() -> impl IntoView {
    let samples = RwSignal::new(Vec::<Sample>::new());
    let first = Resource::new(|| (), |_| snapshot());
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            let Ok(ws) = gloo_net::websocket::futures::WebSocket::open("/ws") else { return };
            let (_, mut read) = ws.split();
            while let Some(Ok(gloo_net::websocket::Message::Text(t))) = read.next().await {
                if let Ok(s) = serde_json::from_str::<Sample>(&t) {
                    samples.update(|v| v.push(s));
                }
            }
        });
    });
    view! {
        <p>{move || samples.with(|s| s.len())}" samples"</p>
        <Suspense fallback=|| "…">{move || first.get().map(|r| r.map(|v| v.len()).unwrap_or(0))}</Suspense>
        <ul>{move || samples.get().into_iter().map(|s| view! { <li>{s.name}" "{s.seq}</li> }).collect_view()}</ul>
    }
}

/// As islands, only this hydrates; the page around it (below) is the server's alone.
#[cfg(feature = "islands")]
#[island]
fn Live() -> impl IntoView {
    live()
}

#[cfg(feature = "islands")]
#[component]
fn Home() -> impl IntoView {
    view! { <Title text="Home" /><Live /> }
}

#[cfg(not(feature = "islands"))]
#[component]
fn Home() -> impl IntoView {
    view! { <Title text="Home" />{live()} }
}

#[component]
fn Other() -> impl IntoView {
    view! { <p>"other"</p> }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Router>
            <nav><A href="/">"Home"</A><A href="/other">"Other"</A></nav>
            <Routes fallback=|| "Not found">
                <Route path=path!("/") view=Home />
                <Route path=path!("/other") view=Other />
            </Routes>
        </Router>
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    #[cfg(not(feature = "islands"))]
    leptos::mount::hydrate_body(App);
    #[cfg(feature = "islands")]
    leptos::mount::hydrate_islands();
}
