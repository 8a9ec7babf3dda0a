//! The live connection as the UI sees it: a context every page reads, the header's status badge
//! and the pause toggle.

use leptos::prelude::*;

/// State of the browser's live connection to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnStatus {
    /// Server-rendered page or hydration in progress: no socket yet.
    Connecting,
    Live,
    /// The socket is down; `attempt` counts reconnection attempts since it was last live.
    Reconnecting {
        attempt: u32,
    },
    /// The user paused live updates.
    Paused,
}

/// Live state shared through context by every page.
#[derive(Clone, Copy)]
pub struct LiveContext {
    pub status: RwSignal<ConnStatus>,
    /// True while the user has paused live updates.
    pub paused: RwSignal<bool>,
}

/// Creates the live context for the application. Call once, in `App`.
pub fn provide_live() -> LiveContext {
    let ctx =
        LiveContext { status: RwSignal::new(ConnStatus::Connecting), paused: RwSignal::new(false) };
    provide_context(ctx);
    ctx
}

/// Returns the application's live context.
pub fn use_live() -> LiveContext {
    use_context::<LiveContext>().unwrap_or_else(provide_live)
}

/// The header badge: "Live", "Reconnecting (attempt n)", "Paused" or "Connecting".
#[component]
pub fn LiveBadge() -> impl IntoView {
    let live = use_live();
    let label = move || match (live.paused.get(), live.status.get()) {
        (true, _) | (_, ConnStatus::Paused) => "Paused".to_string(),
        (false, ConnStatus::Connecting) => "Connecting".to_string(),
        (false, ConnStatus::Live) => "Live".to_string(),
        (false, ConnStatus::Reconnecting { attempt }) => {
            format!("Reconnecting (attempt {attempt})")
        }
    };
    let class = move || match (live.paused.get(), live.status.get()) {
        (true, _) | (_, ConnStatus::Paused) => "badge badge-paused",
        (false, ConnStatus::Live) => "badge badge-live",
        (false, ConnStatus::Reconnecting { .. }) => "badge badge-down",
        (false, ConnStatus::Connecting) => "badge badge-idle",
    };
    view! {
        <span class=class data-testid="live-badge" role="status" aria-live="polite">
            {label}
        </span>
    }
}

/// A button that pauses and resumes live updates.
#[component]
pub fn PauseToggle() -> impl IntoView {
    let live = use_live();
    view! {
        <button
            type="button"
            class="btn"
            data-testid="pause-toggle"
            aria-pressed=move || if live.paused.get() { "true" } else { "false" }
            on:click=move |_| live.paused.update(|p| *p = !*p)
        >
            {move || if live.paused.get() { "Resume" } else { "Pause" }}
        </button>
    }
}
