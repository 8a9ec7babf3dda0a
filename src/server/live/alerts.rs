//! The alerts on the live stream: every client hears that they changed, with the counts for
//! the header (`alert_counts`); only the clients that subscribed to the list (the Alerts page)
//! get the alerts themselves (`alerts`, in parts). In an alert storm the list is tens of KiB per
//! change, which a Dashboard never shows; and while no client wants it, it is not made at all.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::watch;

use super::{runs, serialise, Hub, Parts};
use crate::model::alerts::{AlertCounts, AlertInstance};
use crate::model::live::{ServerMessage, LIVE_ALERTS};

/// The latest alerts messages, each serialised once and shared.
#[derive(Clone)]
pub struct AlertMessages {
    /// `alert_counts`, for every client that did not subscribe to the list.
    pub counts: Utf8Bytes,
    /// `alerts` in parts, for the clients that did; `None` when no client wanted it then.
    pub list: Option<Parts>,
}

impl AlertMessages {
    /// What a client gets: the list when it subscribed to it and the list was made, else the
    /// counts (a subscriber that joined after the list was left out gets it on the next tick:
    /// see [`Hub::alert_list_missing`]).
    pub fn for_client(&self, wants_list: bool) -> &[Utf8Bytes] {
        match (&self.list, wants_list) {
            (Some(list), true) => list,
            _ => std::slice::from_ref(&self.counts),
        }
    }
}

/// A client's subscription to the alerts list; ends when dropped.
pub struct ListClient {
    hub: Arc<Hub>,
}

impl Drop for ListClient {
    fn drop(&mut self) {
        self.hub.list_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    /// Sends the alerts now to every client and to each new one after its snapshot: `alerts`
    /// (the first [`LIVE_ALERTS`], in parts of about [`super::PART_BYTES`]) to those that
    /// subscribed to the list when it is given, `alert_counts` to the others.
    pub fn publish_alerts(
        &self,
        counts: AlertCounts,
        alerts: Option<Vec<AlertInstance>>,
        total: usize,
    ) {
        let list = match alerts {
            Some(alerts) => match list_parts(counts, alerts, total) {
                Some(parts) => Some(parts),
                None => return,
            },
            None => None,
        };
        let Some(counts) = serialise(&ServerMessage::AlertCounts { counts, total }) else {
            return;
        };
        self.alerts.send_replace(Some(AlertMessages { counts, list }));
    }

    /// A receiver of the latest alerts messages, for one client.
    pub fn subscribe_alerts(&self) -> watch::Receiver<Option<AlertMessages>> {
        self.alerts.subscribe()
    }

    /// Subscribes one client to the alerts list, for as long as the returned value lives.
    pub fn list_client(self: &Arc<Self>) -> ListClient {
        self.list_clients.fetch_add(1, Ordering::AcqRel);
        ListClient { hub: Arc::clone(self) }
    }

    /// Whether any client wants the alerts list (else publishing makes only the counts).
    pub fn wants_alert_list(&self) -> bool {
        self.list_clients.load(Ordering::Acquire) > 0
    }

    /// The alerts list of the latest publication, if it made one.
    pub fn alert_list(&self) -> Option<Parts> {
        self.alerts.borrow().as_ref().and_then(|m| m.list.clone())
    }

    /// Whether a client wants the alerts list that the latest publication left out (a client
    /// subscribed since): the alert engine then publishes again on its next tick.
    pub fn alert_list_missing(&self) -> bool {
        self.wants_alert_list() && self.alerts.borrow().as_ref().is_some_and(|m| m.list.is_none())
    }
}

/// The `alerts` message listing the first [`LIVE_ALERTS`] of `alerts`, in parts of about
/// [`super::PART_BYTES`], each serialised once.
fn list_parts(counts: AlertCounts, mut alerts: Vec<AlertInstance>, total: usize) -> Option<Parts> {
    alerts.truncate(LIVE_ALERTS);
    let total = total.max(alerts.len());
    let runs = runs(alerts);
    let last = runs.len() - 1;
    let mut offset = 0;
    let mut parts = Vec::with_capacity(runs.len());
    for (i, alerts) in runs.into_iter().enumerate() {
        let listed = alerts.len();
        let more = i < last;
        let message = ServerMessage::Alerts { counts, alerts, total, offset, more };
        parts.push(serialise(&message)?);
        offset += listed;
    }
    Some(parts.into())
}
