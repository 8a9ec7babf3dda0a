//! Vitals: a self-hosted, real-time performance dashboard. This crate is both the server
//! (feature `ssr`) and the WASM client (feature `hydrate`); `model` is the contract they share.

pub mod api;
pub mod app;
pub mod charts;
pub mod components;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod server;

/// Entry point of the WASM bundle: attaches the client to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazily loaded routes (app.rs) need their code fetched before they hydrate.
    leptos::mount::hydrate_lazy(app::App);
}
