//! Server-only code: start-up, the router and every background task. Nothing here reaches the
//! WASM bundle.

pub mod alerts;
pub mod api;
pub mod assets;
pub mod auth;
pub mod bus;
pub mod collector;
pub mod config;
pub mod demo;
pub mod error;
pub mod health;
pub mod ingest;
pub mod limits;
pub mod live;
pub mod memory;
pub mod metrics;
pub mod negotiate;
pub mod outbound;
pub mod prometheus;
pub mod publisher;
pub mod recorder;
pub mod reports;
pub mod security;
pub mod site;
pub mod state;
pub mod stats;
pub mod store;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::{info, warn};

use crate::app::{shell, App};
use assets::SiteAssets;
use config::{io_reason, ServeConfig};
use health::{HealthRegistry, Status};
use state::AppState;

/// How long shutdown may take before the process exits regardless.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);
/// Kernel send buffer of each accepted connection (the kernel doubles it for bookkeeping).
pub const SOCKET_SEND_BUFFER_BYTES: usize = 256 * 1024;
/// Exit status when graceful shutdown did not finish within [`SHUTDOWN_GRACE`].
pub const FORCED_EXIT_CODE: i32 = 3;

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds the shared state for `config` and starts the background tasks (collector thread,
/// publisher). Must run inside a Tokio runtime.
pub fn build_state(config: ServeConfig, shutdown: CancellationToken) -> anyhow::Result<AppState> {
    let assets = Arc::new(SiteAssets::load());
    let mut leptos_options = site::options().clone();
    leptos_options.site_pkg_dir = assets.pkg_url_dir().into();
    let mut health = HealthRegistry::default();
    health.register("http", Arc::new(|| (Status::Ok, "serving requests".to_string())));
    let bundle = Arc::clone(&assets);
    health.register("ui_bundle", Arc::new(move || bundle.health()));
    let data_dir = config.data_dir.clone();
    health.register("data_dir", Arc::new(move || data_dir_health(&data_dir)));
    let store = store::Store::open(config.store_config())?;
    let watched_store = store.clone();
    health.register("store", Arc::new(move || watched_store.health()));
    let interval = config.interval();
    let hub = live::Hub::new(interval.as_millis() as u64, config.history, config.max_clients);
    let bus = bus::TickBus::default();
    let limits = metrics::Limits {
        max_series: config.max_series,
        max_set_members: config.max_set_members,
        max_set_bytes: config.max_set_bytes,
        max_tag_sets: config.max_tag_sets_per_name,
        max_statistics_bytes: config.max_statistics_mb << 20,
    };
    let started = now_ms();
    let app = metrics::AppMetrics::new(limits, config.thresholds, started);
    app.lock().attach_store(store.retention().minute_ms());
    let restored = recorder::restore(&store, &app, &hub, config.history, started);
    if restored.samples + restored.minutes > 0 {
        info!(
            samples = restored.samples,
            minutes = restored.minutes,
            "Restored the live history and operation windows from the store."
        );
    }
    tokio::spawn(live::run(Arc::clone(&hub), bus.subscribe(), shutdown.clone()));
    tokio::spawn(recorder::run(store.clone(), Arc::clone(&app), bus.subscribe(), shutdown.clone()));
    let (collected_tx, collected_rx) = tokio::sync::mpsc::channel(4);
    let collector = collector::spawn(interval, collected_tx).context("starting the collector")?;
    tokio::spawn(publisher::run(
        bus.clone(),
        collected_rx,
        Arc::clone(&app),
        restored.last_seq,
        shutdown.clone(),
    ));
    tokio::spawn(prune_periodically(Arc::clone(&app), shutdown.clone()));
    let reports = Arc::new(reports::Reports::new(Default::default()));
    let alerts = alerts::Alerts::new(
        config.alerts.clone(),
        store.clone(),
        Arc::clone(&hub),
        Arc::clone(&app),
        Arc::clone(&reports),
        shutdown.clone(),
    );
    tokio::spawn(alerts::run(Arc::clone(&alerts), bus.subscribe(), shutdown.clone()));
    let watched_alerts = Arc::clone(&alerts);
    health.register("alerts", Arc::new(move || watched_alerts.health()));
    let statsd = match config.statsd {
        Some(addr) => Some(Arc::new(ingest::udp::spawn(addr, Arc::clone(&app)).map_err(|e| {
            anyhow::anyhow!("cannot listen for StatsD on udp://{addr}: {}", io_reason(&e))
        })?)),
        None => None,
    };
    match &statsd {
        Some(listener) => {
            let listener = Arc::clone(listener);
            health.register("statsd", Arc::new(move || listener.health()));
        }
        None => health
            .register("statsd", Arc::new(|| (Status::Ok, "disabled (--statsd off)".to_string()))),
    }
    let watched = collector.clone();
    health.register("collector", Arc::new(move || watched.health()));
    let live_hub = Arc::clone(&hub);
    health.register("live", Arc::new(move || live_hub.health()));
    let origins = Arc::new(security::OriginPolicy::new(
        &config.host,
        &config.allowed_hosts,
        &config.allowed_origins,
        config.trust_forwarded,
    ));
    Ok(AppState {
        leptos_options,
        hub,
        otlp: ingest::otlp::Otlp::new(config.otlp.clone(), started),
        app,
        statsd,
        collector,
        store,
        alerts,
        reports,
        auth: auth::Auth::new(config.token.clone(), config.auth, config.trust_forwarded),
        origins,
        limits: limits::RateLimits::shared(),
        bus,
        config: Arc::new(config),
        started: Instant::now(),
        health: Arc::new(health),
        assets,
        shutdown,
    })
}

/// The data directory's health: a writable directory.
fn data_dir_health(data_dir: &std::path::Path) -> (Status, String) {
    match std::fs::metadata(data_dir) {
        Ok(meta) if meta.is_dir() && !meta.permissions().readonly() => {
            (Status::Ok, format!("{} is writable", data_dir.display()))
        }
        Ok(_) => (Status::Down, format!("{} is not a writable directory", data_dir.display())),
        Err(e) => (Status::Down, format!("{}: {}", data_dir.display(), io_reason(&e))),
    }
}

/// Drops statistics older than the one-hour horizon and holds the statistics' byte budget, every
/// second (checked every 5 s, 10,000 new series grew to twice their budget in between).
async fn prune_periodically(app: Arc<metrics::AppMetrics>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => app.prune(now_ms()),
        }
    }
}

/// The whole HTTP surface: pages, assets, health, APIs, and the layers around them.
pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let context_state = state.clone();
    let shell_options = state.leptos_options.clone();
    let app = Router::new()
        .route("/health", get(health::health))
        .route("/login", get(auth::login_form).post(auth::login_submit))
        .route("/logout", axum::routing::post(auth::logout))
        .merge(api::routes(&state))
        .route(&format!("/{}/{{*path}}", assets::PKG_DIR), get(pkg_asset))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(context_state.clone()),
            move || shell(shell_options.clone()),
        )
        .fallback(fallback);
    with_layers(app, state)
}

/// The app's page routes, generated once per process. Generating them raises a process-wide
/// flag that keeps every `Resource` from loading (leptos_server's `SuppressResourceLoad`), so a
/// page rendered while another router is being built would wait for its data until the request
/// timed out (leptos#4773; seen as a 408 in the integration tests, which build many routers at
/// once). The first call blocks every other until the list exists, and no page renders without it.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The `--otlp-addr` listener's surface: OTLP/HTTP only, behind the same layers.
pub fn otlp_router(state: AppState) -> Router {
    with_layers(api::otlp_routes(&state), state)
}

/// The layers every listener puts around its routes: security headers, compression, body
/// limits, the timeout, JSON errors, sign-in, and the Origin and Host checks.
fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let max_body = state.config.max_body_bytes;
    let origins = Arc::clone(&state.origins);
    let sign_in = state.auth.clone();
    routes
        .layer(middleware::from_fn(security::security_headers))
        .layer(CompressionLayer::new())
        // axum's own 2 MiB default would otherwise cap `--max-body-bytes`.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn_with_state(sign_in, auth::require_sign_in))
        .layer(middleware::from_fn_with_state(origins, security::check_origin))
        .with_state(state)
}

async fn pkg_asset(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("{}/{path}", assets::PKG_DIR);
    state.assets.respond(&path, &headers).unwrap_or_else(assets::stale_asset)
}

/// Files from the site root (favicon, robots.txt), else the app renders its 404 page.
async fn fallback(State(state): State<AppState>, req: Request<Body>) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    if let Some(response) = state.assets.respond(&path, req.headers()) {
        return response;
    }
    let context_state = state.clone();
    let options = state.leptos_options.clone();
    let render = leptos_axum::render_app_to_stream_with_context(
        move || provide_context(context_state.clone()),
        move || shell(options.clone()),
    );
    render(req).await.into_response()
}

/// Runs `vitals serve` until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let addr = security::listen_addr(&config.host, config.port, config.token.as_ref())
        .map_err(anyhow::Error::msg)?;
    if let Some(statsd) = config.statsd {
        security::listen_addr(&statsd.ip().to_string(), statsd.port(), config.token.as_ref())
            .map_err(|e| anyhow::anyhow!("StatsD: {e}"))?;
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {}",
            config.data_dir.display(),
            io_reason(&e)
        )
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {}", io_reason(&e)))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let shutdown = CancellationToken::new();
    let mut config = config;
    if config.alerts.base_url.is_empty() && !local.ip().is_unspecified() {
        config.alerts.base_url = format!("http://{local}");
    }
    let state = build_state(config, shutdown.clone())?;
    tokio::spawn(watch_signals(shutdown.clone()));
    if state.config.demo {
        tokio::spawn(demo::run(
            local,
            state.statsd.as_ref().map(|l| l.local_addr),
            state.config.token.clone(),
            shutdown.clone(),
        ));
        info!("Demo traffic is on: simulated operations arrive over StatsD and HTTP.");
    }
    if let Some(every) = state.config.report_every {
        tokio::spawn(reports::schedule::run(state.clone(), every, shutdown.clone()));
        info!(
            "A {} report will be written into the data directory after each period.",
            every.as_str()
        );
    }
    let otlp_listener = match state.config.otlp.addr {
        Some(otlp) => Some(serve_otlp(otlp, state.clone(), shutdown.clone()).await?),
        None => None,
    };
    let (store, metrics, alerts) =
        (state.store.clone(), Arc::clone(&state.app), Arc::clone(&state.alerts));
    let app = router(state);
    info!(addr = %local, "Listening on http://{local}");
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        // A client that stops reading may hold at most this much of the kernel's memory, and a
        // stalled live client blocks the server's sends to it (skipping ticks) soon instead of
        // after megabytes.
        let socket = socket2::SockRef::from(&*tcp);
        if let Err(e) = socket.set_send_buffer_size(SOCKET_SEND_BUFFER_BYTES) {
            tracing::debug!(error = %e, "Cannot bound a socket's send buffer.");
        }
    });
    let served =
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("serving HTTP");
    // The OTLP listener's requests in flight finish too (its graceful shutdown began with
    // the main one's), then everything accepted reaches the disk before the process ends.
    if let Some(listener) = otlp_listener {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE / 2, listener).await;
    }
    tokio::task::spawn_blocking(move || {
        // The alerts' states first: the flush closes the store behind them.
        alerts.persist_all();
        recorder::flush_on_shutdown(&store, &metrics, SHUTDOWN_GRACE / 2);
    })
    .await
    .context("flushing the history store")?;
    served?;
    info!("Stopped.");
    Ok(())
}

/// Binds `--otlp-addr` and serves OTLP/HTTP on it until shutdown; the task ends when its
/// graceful shutdown has finished.
async fn serve_otlp(
    addr: std::net::SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    security::listen_addr(&addr.ip().to_string(), addr.port(), state.config.token.as_ref())
        .map_err(|e| anyhow::anyhow!("OTLP: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for OTLP on {addr}: {}", io_reason(&e)))?;
    let local = listener.local_addr().context("reading the OTLP address")?;
    info!(addr = %local, "OTLP/HTTP on http://{local}/v1/traces and /v1/metrics");
    let app = otlp_router(state);
    Ok(tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
        if let Err(e) = served {
            warn!(error = %e, "The OTLP listener stopped.");
        }
    }))
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM and bounds how long shutdown may take.
async fn watch_signals(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "Cannot listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    info!("Shutting down: finishing in-flight requests.");
    shutdown.cancel();
    tokio::time::sleep(SHUTDOWN_GRACE).await;
    // Graceful shutdown did not finish: say so in the exit status, so a supervisor (and the
    // shutdown test) can tell a forced exit from a clean one.
    warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "Shutdown grace period over; forcing exit.");
    std::process::exit(FORCED_EXIT_CODE);
}
