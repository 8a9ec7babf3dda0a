//! Server functions behind the UI (thin: they read the server's state and return model types).
//! External clients use the documented `/api/v1` routes instead.

use leptos::prelude::*;
use leptos::server_fn::error::ServerFnError;

use crate::model::live::{LiveSnapshot, Sample};

/// The latest samples (at most `history`) and operation statistics, for the first render and for
/// polling while the live socket is down.
#[server(endpoint = "live/snapshot")]
pub async fn get_live_snapshot(history: usize) -> Result<LiveSnapshot, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(state.hub.snapshot(Some(history)))
}

/// Takes a sample now, broadcasts it to every client and returns it.
#[server(endpoint = "live/refresh")]
pub async fn refresh_now() -> Result<Sample, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    state.collector.sample_now().await.map_err(ServerFnError::new)?;
    state.hub.latest().ok_or_else(|| ServerFnError::new("no sample yet"))
}
