//! The browser's end of `/ws`: connects, feeds the [`LiveContext`], reconnects with exponential
//! backoff and jitter, polls a server function while the socket is down, and pauses while the tab
//! is hidden or the user paused (resuming with a fresh snapshot).

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};
use leptos::prelude::*;

use super::live::{ConnStatus, LiveContext, CLIENT_HISTORY};
use crate::model::live::{reconnect_delay_ms, ClientMessage};

/// Starts the connection loop (once per page load).
pub fn start(ctx: LiveContext) {
    let (wake_tx, wake_rx) = mpsc::unbounded::<ClientMessage>();
    let hidden = RwSignal::new(is_hidden());
    let resume = wake_tx.clone();
    let _ = window_event_listener(leptos::ev::visibilitychange, move |_| {
        let now_hidden = is_hidden();
        hidden.set(now_hidden);
        if !now_hidden {
            let _ = resume.unbounded_send(ClientMessage::RequestMetrics);
        }
    });
    // The alerts list while a view wants it (the connection's URL says so too, for the next
    // connection).
    let subscribe = wake_tx.clone();
    Effect::new(move |wanted_before: Option<bool>| {
        let wanted = ctx.alert_list_wanted.get() > 0;
        if wanted_before.unwrap_or(false) != wanted {
            if !wanted {
                ctx.alerts.set(None);
            }
            let message = ClientMessage::Subscribe { operations: None, alerts: Some(wanted) };
            let _ = subscribe.unbounded_send(message);
        }
        wanted
    });
    let resume = wake_tx;
    Effect::new(move |was_paused: Option<bool>| {
        let paused = ctx.paused.get();
        if was_paused == Some(true) && !paused {
            let _ = resume.unbounded_send(ClientMessage::RequestMetrics);
        }
        paused
    });
    leptos::task::spawn_local(run(ctx, hidden, wake_rx));
}

fn is_hidden() -> bool {
    document().visibility_state() == web_sys::VisibilityState::Hidden
}

/// `/ws`, saying which sample the page already has (the dashboard is rendered with the recent
/// history), so the snapshot brings only newer ones, and whether a view wants the alerts list.
fn socket_url(ctx: &LiveContext) -> Option<String> {
    let location = window().location();
    let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
    let host = location.host().ok()?;
    let after = ctx.history.with_untracked(|h| h.last().map(|s| s.seq));
    let after = after.map(|seq| format!("&after={seq}")).unwrap_or_default();
    let alerts = if ctx.alert_list_wanted.get_untracked() > 0 { "&alerts=true" } else { "" };
    Some(format!("{scheme}://{host}/ws?history={CLIENT_HISTORY}{after}{alerts}"))
}

async fn run(
    ctx: LiveContext,
    hidden: RwSignal<bool>,
    mut outbox: mpsc::UnboundedReceiver<ClientMessage>,
) {
    let mut attempt = 0u32;
    loop {
        if let Some(socket) = socket_url(&ctx).and_then(|url| WebSocket::open(&url).ok()) {
            let (mut sink, stream) = socket.split();
            let mut stream = stream.fuse();
            loop {
                futures::select! {
                    incoming = stream.next() => match incoming {
                        Some(Ok(Message::Text(text))) => {
                            attempt = 0;
                            let accepting = !hidden.get_untracked() && !ctx.paused.get_untracked();
                            ctx.receive(&text, accepting);
                        }
                        // The protocol is text only: a binary frame is unreadable too.
                        Some(Ok(Message::Bytes(_))) => ctx.receive("", true),
                        Some(Err(_)) | None => break,
                    },
                    request = outbox.next() => {
                        let Some(request) = request else { break };
                        let Ok(text) = serde_json::to_string(&request) else { continue };
                        if sink.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        attempt = attempt.saturating_add(1);
        ctx.status.set(ConnStatus::Reconnecting { attempt });
        let delay_ms = reconnect_delay_ms(attempt, js_sys::Math::random());
        wait_and_poll(ctx, hidden, delay_ms, attempt).await;
    }
}

/// Waits `delay_ms` before the next attempt, polling the snapshot server function meanwhile so
/// the numbers keep moving: every interval after the first failed attempt, then twice as
/// seldom after each further one (at most every 30 s), so that pages a busy server turned
/// away (too many live clients) do not all poll it every second instead.
async fn wait_and_poll(ctx: LiveContext, hidden: RwSignal<bool>, delay_ms: u32, attempt: u32) {
    let backoff = 1u32 << attempt.saturating_sub(1).min(5);
    let started = js_sys::Date::now();
    loop {
        let elapsed = (js_sys::Date::now() - started) as u32;
        if elapsed >= delay_ms {
            return;
        }
        let every = (ctx.interval_ms.get_untracked() as u32).clamp(250, 5_000);
        let step = every.saturating_mul(backoff).min(30_000).min(delay_ms - elapsed);
        gloo_timers::future::TimeoutFuture::new(step).await;
        if hidden.get_untracked() || ctx.paused.get_untracked() {
            continue;
        }
        if let Ok(snapshot) = crate::api::get_live_snapshot(1).await {
            ctx.interval_ms.set(snapshot.interval_ms);
            if let Some(latest) = snapshot.history.into_iter().last() {
                ctx.push_sample(latest);
            }
        }
    }
}
