//! The alerts on the live stream: every client hears that they changed, with the counts for
//! the header (`alert_counts`); only the clients that subscribed to the list (the Alerts page)
//! get the alerts themselves (`alerts`, in parts). In an alert storm the list is tens of KiB per
//! change, which a Dashboard never shows; and while no client wants it, it is not made at all.
//!
//! The counts are written to the clients that did not subscribe by the tick fan-out, framed
//! once, as ticks are ([`super::fanout::Fanout::publish_alerts`]): in a storm the alerts change
//! every second, and waking every client's task for the same bytes would cost what it cost for
//! ticks. Only the subscribers' tasks wake, to send the list. Which publication a client has,
//! and in which form, is kept on its socket's [`super::outlet::Outlet`], where both writers read
//! it under one lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::outlet::text_frame;
use super::{runs, serialise, Hub, Parts};
use crate::model::alerts::{AlertCounts, AlertInstance};
use crate::model::live::{AlertList, AlertNews, ServerMessage, LIVE_ALERTS};

/// The latest alerts messages, each serialised once and shared.
#[derive(Clone)]
pub struct AlertMessages {
    /// The publication's number (`AlertList::seq`): the same again for the list
    /// made for a client that subscribed since, without a change.
    pub seq: u64,
    /// `alert_counts`, for every client that did not subscribe to the list.
    pub counts: Utf8Bytes,
    /// The same, framed once for the fan-out.
    pub counts_frame: Bytes,
    /// `alerts` in parts, for the clients that did; `None` when no client wanted it then.
    pub list: Option<Parts>,
}

/// Which of a publication a client was sent last: its number, and whether the list came with
/// it.
pub type Sent = Option<(u64, bool)>;

impl AlertMessages {
    /// Whether a client is owed this publication, and as the list: the list when it subscribed
    /// to it and the list was made, else the counts (a subscriber that joined after the list
    /// was left out gets it on the next tick: see [`Hub::alert_list_missing`]). Nothing when it
    /// has this publication already in that form or with the list (a publication repeated
    /// only to bring the list to a new subscriber is not news to the others), or a newer one
    /// (the fan-out's threads and the client's task both write: an older one that reaches the
    /// socket late is not sent). Noted in `sent` when owed.
    pub fn owed(&self, wants_list: bool, sent: &mut Sent) -> Option<bool> {
        let listed = wants_list && self.list.is_some();
        if let Some((seq, had_list)) = *sent {
            if seq > self.seq || (seq == self.seq && (had_list || !listed)) {
                return None;
            }
        }
        *sent = Some((self.seq, listed));
        Some(listed)
    }

    /// What a client's task sends it of this publication, if it is owed it ([`Self::owed`]).
    pub fn for_client(&self, wants_list: bool, sent: &mut Sent) -> Option<Parts> {
        let listed = self.owed(wants_list, sent)?;
        Some(match &self.list {
            Some(list) if listed => Arc::clone(list),
            _ => Arc::from([self.counts.clone()]),
        })
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
    ///
    /// `changed`: whether this is news (a change); false when it only brings the list to a
    /// client that subscribed since the last publication, which then keeps its number.
    /// Publications are numbered and handed out one at a time, in the order they come; the
    /// caller keeps that order the order of the states they count (the alert engine publishes
    /// under its lock). False when it could not be serialised (nothing was sent).
    pub fn publish_alerts(
        &self,
        counts: AlertCounts,
        alerts: Option<Vec<AlertInstance>>,
        total: usize,
        changed: bool,
    ) -> bool {
        let _publishing = self.alerts_publishing.lock().unwrap_or_else(|p| p.into_inner());
        let last = self.alerts.borrow().as_ref().map_or(0, |m| m.seq);
        let seq = if changed { last + 1 } else { last };
        let list = match alerts {
            Some(alerts) => match list_parts(seq, counts, alerts, total) {
                Some(parts) => Some(parts),
                None => return false,
            },
            None => None,
        };
        let Some(counts) = serialise(&ServerMessage::AlertCounts(AlertNews { seq, counts, total }))
        else {
            return false;
        };
        let counts_frame = text_frame(&counts);
        let messages = Arc::new(AlertMessages { seq, counts, counts_frame, list });
        self.alerts.send_replace(Some(Arc::clone(&messages)));
        self.fanout.publish_alerts(self, messages);
        true
    }

    /// A receiver of the latest alerts messages, for one client.
    pub fn subscribe_alerts(&self) -> watch::Receiver<Option<Arc<AlertMessages>>> {
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

    /// The latest publication, if any.
    pub fn latest_alerts(&self) -> Option<Arc<AlertMessages>> {
        self.alerts.borrow().clone()
    }

    /// Whether a client wants the alerts list that the latest publication left out (a client
    /// subscribed since): the alert engine then publishes again on its next tick.
    pub fn alert_list_missing(&self) -> bool {
        self.wants_alert_list() && self.alerts.borrow().as_ref().is_some_and(|m| m.list.is_none())
    }
}

/// The `alerts` message listing the first [`LIVE_ALERTS`] of `alerts`, in parts of about
/// [`super::PART_BYTES`], each serialised once.
fn list_parts(
    seq: u64,
    counts: AlertCounts,
    mut alerts: Vec<AlertInstance>,
    total: usize,
) -> Option<Parts> {
    alerts.truncate(LIVE_ALERTS);
    let total = total.max(alerts.len());
    let runs = runs(alerts);
    let last = runs.len() - 1;
    let mut offset = 0;
    let mut parts = Vec::with_capacity(runs.len());
    for (i, alerts) in runs.into_iter().enumerate() {
        let listed = alerts.len();
        let more = i < last;
        let message = ServerMessage::Alerts(AlertList { seq, counts, alerts, total, offset, more });
        parts.push(serialise(&message)?);
        offset += listed;
    }
    Some(parts.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(seq: u64, list: bool) -> AlertMessages {
        let counts = Utf8Bytes::from_static("{}");
        let list = list.then(|| Parts::from([Utf8Bytes::from_static("[]")]));
        AlertMessages { seq, counts_frame: text_frame(&counts), counts, list }
    }

    #[test]
    fn a_publication_is_owed_once_in_each_form_and_never_after_a_newer_one() {
        let mut sent = None;
        assert_eq!(messages(1, false).owed(false, &mut sent), Some(false));
        assert_eq!(messages(1, false).owed(false, &mut sent), None, "the same again");
        // Made again with the list for a new subscriber: owed to it, not to the others.
        assert_eq!(messages(1, true).owed(false, &mut sent), None);
        assert_eq!(messages(1, true).owed(true, &mut sent), Some(true));
        assert_eq!(messages(1, true).owed(true, &mut sent), None);
        assert_eq!(messages(2, true).owed(false, &mut sent), Some(false));
        // An older publication that reaches a socket after a newer one is not sent.
        assert_eq!(messages(1, true).owed(true, &mut sent), None);
        assert_eq!(messages(1, false).owed(false, &mut sent), None);
        assert_eq!(sent, Some((2, false)));
    }
}
