//! The state every handler shares, built once at start-up.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use tokio_util::sync::CancellationToken;

use super::alerts::Alerts;
use super::assets::SiteAssets;
use super::auth::Auth;
use super::bus::TickBus;
use super::collector::CollectorHandle;
use super::config::ServeConfig;
use super::health::HealthRegistry;
use super::ingest::udp::StatsdListener;
use super::limits::RateLimits;
use super::live::Hub;
use super::metrics::AppMetrics;
use super::security::OriginPolicy;
use super::store::Store;

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<ServeConfig>,
    pub started: Instant,
    /// The token, what it protects, and browser sessions.
    pub auth: Auth,
    pub origins: Arc<OriginPolicy>,
    pub limits: Arc<RateLimits>,
    /// The tick bus: every collected tick, as typed data, for every subscriber.
    pub bus: TickBus,
    pub health: Arc<HealthRegistry>,
    pub assets: Arc<SiteAssets>,
    pub hub: Arc<Hub>,
    /// Application metrics from StatsD, the HTTP API and OTLP.
    pub app: Arc<AppMetrics>,
    /// OTLP ingestion's settings and cumulative-stream state.
    pub otlp: Arc<super::ingest::otlp::Otlp>,
    /// The StatsD listener, unless disabled.
    pub statsd: Option<Arc<StatsdListener>>,
    pub collector: CollectorHandle,
    /// The history store (SQLite in the data directory).
    pub store: Store,
    /// Alert rules, their instances, silences and notifications.
    pub alerts: Arc<Alerts>,
    /// Saved reports and the report cache.
    pub reports: Arc<crate::server::reports::Reports>,
    /// Cancelled when the server starts shutting down; long-lived tasks and sockets watch it.
    pub shutdown: CancellationToken,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The application state inside a server function.
pub fn expect_state() -> Result<AppState, leptos::prelude::ServerFnError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| leptos::prelude::ServerFnError::new("server state is not available"))
}
