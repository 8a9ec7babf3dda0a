//! The live connection as the UI sees it: a context every page reads (status, pause, the recent
//! samples and operation statistics), the header's status badge and the pause toggle. In the
//! browser the context is fed by [`super::live_socket`].

use leptos::prelude::*;

use crate::model::alerts::{AlertCounts, AlertInstance};
use crate::model::live::{
    AlertList, AlertNews, LiveSnapshot, Refusal, Sample, SampleUpdate, ServerMessage,
};

/// Samples the browser keeps: the charts' 60-second window at 1 Hz, plus slack.
pub const CLIENT_HISTORY: usize = 90;

/// State of the browser's live connection to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnStatus {
    /// Server-rendered page or hydration in progress: no socket yet.
    Connecting,
    Live,
    /// The socket is up but its latest message could not be read (a client older than the
    /// server, or a broken proxy): the page is not moving. `undecodable` counts such messages
    /// since the page loaded.
    Unreadable {
        undecodable: u64,
    },
    /// The socket is down; `attempt` counts reconnection attempts since it was last live.
    Reconnecting {
        attempt: u32,
    },
}

/// Live state shared through context by every page.
#[derive(Clone, Copy)]
pub struct LiveContext {
    pub status: RwSignal<ConnStatus>,
    /// True while the user has paused live updates.
    pub paused: RwSignal<bool>,
    /// Recent samples, oldest first (empty until the first snapshot arrives).
    pub history: RwSignal<Vec<Sample>>,
    pub interval_ms: RwSignal<u64>,
    /// Messages from the server that could not be decoded, since the page loaded.
    pub undecodable: RwSignal<u64>,
    /// The server's latest refusal of a request of ours (e.g. a rate limit), if any.
    pub last_error: RwSignal<Option<String>>,
    /// Firing and pending alerts by severity (the header badge).
    pub alert_counts: RwSignal<AlertCounts>,
    /// The alerts now, worst first, once the server has sent them (`None` before, and while no
    /// page wants them: see [`Self::want_alert_list`]): the first
    /// [`crate::model::live::LIVE_ALERTS`] of `.1` in all.
    pub alerts: RwSignal<Option<(Vec<AlertInstance>, usize)>>,
    /// Counts the server's word that the alerts changed (with their list or only their counts):
    /// what views that refetch on a change track.
    pub alerts_changed: RwSignal<u64>,
    /// The number of the last alerts publication taken (`AlertList::seq`).
    pub alerts_seen: StoredValue<Option<u64>>,
    /// How many views want the alerts list ([`Self::want_alert_list`]); while none does, the
    /// server sends only the counts.
    pub alert_list_wanted: RwSignal<u32>,
}

impl LiveContext {
    /// Replaces the history with a snapshot, or continues it with one that says `after_seq`.
    /// The parts of a long snapshot (`more`) are taken silently: the charts redraw once, when
    /// the last part has arrived.
    pub fn apply_snapshot(&self, snapshot: LiveSnapshot) {
        // The browser does not subscribe to operation statistics; the Operations page asks for
        // its own with a server function.
        let LiveSnapshot { interval_ms, mut history, after_seq, more, .. } = snapshot;
        let merge = |own: &mut Vec<Sample>| {
            if after_seq > 0 {
                // The rest of what this page already has (see `socket_url`), or of the
                // snapshot's previous part.
                own.retain(|s| s.seq <= after_seq);
                own.append(&mut history);
            } else {
                *own = history;
            }
            let excess = own.len().saturating_sub(CLIENT_HISTORY);
            own.drain(..excess);
        };
        if !more {
            self.interval_ms.set(interval_ms);
        }
        update_part(self.history, more, merge);
    }

    /// Takes the samples a page was rendered with, unless live ones arrived first.
    pub fn seed(&self, history: &[Sample]) {
        if self.history.with_untracked(Vec::is_empty) && !history.is_empty() {
            self.history.set(history.to_vec());
        }
    }

    /// Appends one sample (ignoring one already seen).
    pub fn push_sample(&self, sample: Sample) {
        self.history.update(|h| {
            if h.last().is_some_and(|last| last.seq >= sample.seq && last.at_ms >= sample.at_ms) {
                return;
            }
            h.push(sample);
            let excess = h.len().saturating_sub(CLIENT_HISTORY);
            h.drain(..excess);
        });
    }

    /// Applies a message from the server.
    pub fn apply(&self, message: ServerMessage) {
        match message {
            ServerMessage::Snapshot(snapshot) => self.apply_snapshot(snapshot),
            ServerMessage::Update(SampleUpdate { sample, .. }) => self.push_sample(*sample),
            ServerMessage::Alerts(AlertList { seq, counts, mut alerts, total, offset, more }) => {
                if self.alert_list_wanted.get_untracked() == 0 {
                    // Sent before the last view that wanted the list went: its news only.
                    if !more {
                        self.alerts_news(seq, counts);
                    }
                    return;
                }
                // A part after the first continues the list at `offset`; the page redraws
                // once, when the last part has arrived.
                let merge = |held: &mut Option<(Vec<AlertInstance>, usize)>| {
                    let (list, shown_total) = held.get_or_insert_with(Default::default);
                    list.truncate(offset);
                    list.append(&mut alerts);
                    *shown_total = total.max(list.len());
                };
                update_part(self.alerts, more, merge);
                if !more {
                    self.alerts_news(seq, counts);
                }
            }
            ServerMessage::AlertCounts(AlertNews { seq, counts, .. }) => {
                self.alerts_news(seq, counts)
            }
            ServerMessage::Pong => {}
            ServerMessage::Error(Refusal { message }) => self.last_error.set(Some(message)),
        }
    }

    /// Takes the counts of alerts publication `seq`, and counts it as a change unless it is
    /// the one already seen (the list brought to this page when it subscribed).
    fn alerts_news(&self, seq: u64, counts: AlertCounts) {
        self.alert_counts.set(counts);
        if self.alerts_seen.get_value() != Some(seq) {
            self.alerts_seen.set_value(Some(seq));
            self.alerts_changed.update(|n| *n += 1);
        }
    }

    /// Asks the server for the alerts list (not only their counts) for as long as the calling
    /// view lives. Once no view wants it, the list held is dropped (by the connection, when it
    /// unsubscribes) and lists still arriving are not kept, so that a view shown later never
    /// starts from a stale one.
    pub fn want_alert_list(&self) {
        let wanted = self.alert_list_wanted;
        wanted.update(|n| *n += 1);
        on_cleanup(move || {
            wanted.try_update(|n| *n = n.saturating_sub(1));
        });
    }

    /// Takes one text message from the socket: applies it (unless `accepting` is false and it
    /// is not a snapshot) and marks the connection live, or counts it as unreadable.
    pub fn receive(&self, text: &str, accepting: bool) {
        match serde_json::from_str::<ServerMessage>(text) {
            Ok(message) => {
                self.status.set(ConnStatus::Live);
                // Alerts are not paused with the charts.
                let always = matches!(
                    message,
                    ServerMessage::Snapshot(_)
                        | ServerMessage::Alerts(_)
                        | ServerMessage::AlertCounts(_)
                );
                if accepting || always {
                    self.apply(message);
                }
            }
            Err(_) => {
                let undecodable = self.undecodable.get_untracked() + 1;
                self.undecodable.set(undecodable);
                self.status.set(ConnStatus::Unreadable { undecodable });
            }
        }
    }
}

/// Applies one part of a message sent in parts: silently while `more` follow, so that what
/// reads `signal` redraws once, when the last part has arrived.
fn update_part<T: 'static + Send + Sync>(
    signal: RwSignal<T>,
    more: bool,
    apply: impl FnOnce(&mut T),
) {
    if more {
        signal.update_untracked(apply);
    } else {
        signal.update(apply);
    }
}

/// Creates the live context for the application and, in the browser, connects it. Call once,
/// in `App`.
pub fn provide_live() -> LiveContext {
    let ctx = LiveContext {
        status: RwSignal::new(ConnStatus::Connecting),
        paused: RwSignal::new(false),
        history: RwSignal::new(Vec::new()),
        interval_ms: RwSignal::new(1000),
        undecodable: RwSignal::new(0),
        last_error: RwSignal::new(None),
        alert_counts: RwSignal::new(AlertCounts::default()),
        alerts: RwSignal::new(None),
        alerts_changed: RwSignal::new(0),
        alerts_seen: StoredValue::new(None),
        alert_list_wanted: RwSignal::new(0),
    };
    provide_context(ctx);
    #[cfg(feature = "hydrate")]
    super::live_socket::start(ctx);
    ctx
}

/// Returns the application's live context.
pub fn use_live() -> LiveContext {
    use_context::<LiveContext>().unwrap_or_else(provide_live)
}

/// The header badge: "Live", "Stalled: n unreadable updates", "Reconnecting (attempt n)",
/// "Paused" or "Connecting".
#[component]
pub fn LiveBadge() -> impl IntoView {
    let live = use_live();
    let label = move || match (live.paused.get(), live.status.get()) {
        (true, _) => "Paused".to_string(),
        (false, ConnStatus::Connecting) => "Connecting".to_string(),
        (false, ConnStatus::Live) => "Live".to_string(),
        (false, ConnStatus::Unreadable { undecodable }) => {
            format!("Stalled: {undecodable} unreadable updates")
        }
        (false, ConnStatus::Reconnecting { attempt }) => {
            format!("Reconnecting (attempt {attempt})")
        }
    };
    let class = move || match (live.paused.get(), live.status.get()) {
        (true, _) => "badge badge-paused",
        (false, ConnStatus::Live) => "badge badge-live",
        (false, ConnStatus::Reconnecting { .. } | ConnStatus::Unreadable { .. }) => {
            "badge badge-down"
        }
        (false, ConnStatus::Connecting) => "badge badge-idle",
    };
    view! {
        <span class=class data-testid="live-badge" role="status" aria-live="polite">
            {label}
        </span>
    }
}

/// The header's alert badge: firing alerts by severity (and pending ones), a link to the
/// Alerts page.
#[component]
pub fn AlertsBadge() -> impl IntoView {
    let live = use_live();
    let text = move || {
        let c = live.alert_counts.get();
        let mut parts = Vec::new();
        if c.critical > 0 {
            parts.push(format!("{} critical", c.critical));
        }
        if c.warning > 0 {
            parts.push(format!("{} warning", c.warning));
        }
        if c.pending > 0 {
            parts.push(format!("{} pending", c.pending));
        }
        if parts.is_empty() {
            "No alerts".to_string()
        } else {
            parts.join(" · ")
        }
    };
    let class = move || {
        let c = live.alert_counts.get();
        if c.critical > 0 {
            "badge badge-critical"
        } else if c.warning > 0 {
            "badge badge-warning"
        } else if c.pending > 0 {
            "badge badge-pending"
        } else {
            "badge badge-idle"
        }
    };
    view! {
        <a href="/alerts" class=class data-testid="alerts-badge" aria-live="polite">
            {text}
        </a>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_message_is_counted_and_the_connection_is_not_live() {
        let owner = Owner::new();
        owner.with(|| {
            let live = provide_live();
            live.receive(r#"{"type":"pong"}"#, true);
            assert_eq!(live.status.get_untracked(), ConnStatus::Live);
            live.receive(r#"{"type":"update","sample":{"at_ms":null}}"#, true);
            assert_eq!(live.status.get_untracked(), ConnStatus::Unreadable { undecodable: 1 });
            live.receive("not json", true);
            assert_eq!(live.undecodable.get_untracked(), 2);
            live.receive(r#"{"type":"error","message":"rate limited"}"#, true);
            assert_eq!(live.status.get_untracked(), ConnStatus::Live);
            assert_eq!(live.last_error.get_untracked().as_deref(), Some("rate limited"));
        });
    }

    #[test]
    fn a_snapshot_after_the_pages_samples_continues_them() {
        let owner = Owner::new();
        owner.with(|| {
            let live = provide_live();
            let sample = |seq| Sample { seq, ..Default::default() };
            live.seed(&[sample(1), sample(2), sample(3)]);
            live.seed(&[sample(9)]);
            let seqs =
                || live.history.with_untracked(|h| h.iter().map(|s| s.seq).collect::<Vec<_>>());
            assert_eq!(seqs(), [1, 2, 3], "a second seed does not replace live samples");
            let after = LiveSnapshot {
                interval_ms: 1000,
                history: vec![sample(4), sample(5)],
                after_seq: 3,
                ..Default::default()
            };
            live.apply_snapshot(after);
            assert_eq!(seqs(), [1, 2, 3, 4, 5]);
            let whole = LiveSnapshot { history: vec![sample(1)], ..Default::default() };
            live.apply_snapshot(whole);
            assert_eq!(seqs(), [1], "a whole snapshot replaces");
        });
    }

    #[test]
    fn the_alerts_message_says_how_many_there_are_beyond_those_listed() {
        let owner = Owner::new();
        owner.with(|| {
            let live = provide_live();
            live.want_alert_list();
            let counts = r#""counts":{"critical":60,"warning":0,"pending":0}"#;
            live.receive(&format!(r#"{{"type":"alerts",{counts},"alerts":[],"total":60}}"#), false);
            assert_eq!(live.alerts.get_untracked(), Some((vec![], 60)));
            assert_eq!(live.alert_counts.get_untracked().critical, 60);
            // From a server that does not say: what is listed is all there is.
            live.receive(&format!(r#"{{"type":"alerts",{counts},"alerts":[]}}"#), true);
            assert_eq!(live.alerts.get_untracked(), Some((vec![], 0)));
        });
    }

    #[test]
    fn the_parts_of_an_alerts_list_redraw_the_page_once() {
        let owner = Owner::new();
        owner.with(|| {
            let live = provide_live();
            live.want_alert_list();
            let alert = |id: &str| -> AlertInstance {
                serde_json::from_value(serde_json::json!({"id": id, "rule": "r", "series": "s",
                    "labels": {}, "state": "firing", "since_ms": 0, "unit": "ms"}))
                .unwrap()
            };
            let redraws = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let counted = redraws.clone();
            let page = Memo::new(move |_| {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                live.alerts.with(|a| {
                    a.as_ref().map(|(list, total)| {
                        (list.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), *total)
                    })
                })
            });
            let part = |ids: &[&str], offset, more| {
                ServerMessage::Alerts(AlertList {
                    seq: 1,
                    counts: AlertCounts { critical: 5, ..Default::default() },
                    alerts: ids.iter().map(|id| alert(id)).collect(),
                    total: 7,
                    offset,
                    more,
                })
            };
            live.apply(part(&["old"], 0, false));
            assert_eq!(page.get_untracked(), Some((vec!["old".to_string()], 7)));
            live.apply(part(&["a", "b"], 0, true));
            live.apply(part(&["c", "d"], 2, true));
            assert_eq!(page.get_untracked(), Some((vec!["old".to_string()], 7)));
            assert_eq!(live.alert_counts.get_untracked().critical, 5);
            live.apply(part(&["e"], 4, false));
            let listed = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
            assert_eq!(page.get_untracked(), Some((listed, 7)));
            assert_eq!(redraws.load(std::sync::atomic::Ordering::Relaxed), 2);
            // Publication 1 again (the list brought to a page that has just subscribed) is no
            // change; the counts of publication 2 are.
            assert_eq!(live.alerts_changed.get_untracked(), 1);
            live.apply(part(&["f"], 0, false));
            assert_eq!(live.alerts_changed.get_untracked(), 1);
            let counts = AlertCounts { critical: 6, ..Default::default() };
            live.apply(ServerMessage::AlertCounts(AlertNews { seq: 2, counts, total: 8 }));
            assert_eq!(live.alerts_changed.get_untracked(), 2);
            assert_eq!(live.alert_counts.get_untracked().critical, 6);
            assert_eq!(page.get_untracked().unwrap().0, ["f"], "the list is left as it was");
        });
    }

    #[test]
    fn a_list_that_arrives_when_no_view_wants_it_is_not_kept() {
        let owner = Owner::new();
        owner.with(|| {
            let live = provide_live();
            let list = r#"{"type":"alerts","seq":4,"counts":{"critical":2,"warning":0,"pending":0},"alerts":[],"total":2}"#;
            live.receive(list, true);
            assert_eq!(live.alerts.get_untracked(), None);
            assert_eq!(live.alert_counts.get_untracked().critical, 2);
            assert_eq!(live.alerts_changed.get_untracked(), 1);
        });
    }

    #[test]
    fn the_parts_of_a_snapshot_redraw_the_charts_once() {
        let owner = Owner::new();
        owner.with(|| {
            let live = provide_live();
            let sample = |seq| Sample { seq, ..Default::default() };
            live.seed(&[sample(1), sample(2)]);
            let redraws = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let counted = redraws.clone();
            let chart = Memo::new(move |_| {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                live.history.with(|h| h.iter().map(|s| s.seq).collect::<Vec<_>>())
            });
            assert_eq!(chart.get_untracked(), [1, 2]);
            let part = |seqs: std::ops::RangeInclusive<u64>, after_seq, more| LiveSnapshot {
                interval_ms: 1000,
                history: seqs.map(sample).collect(),
                after_seq,
                more,
                ..Default::default()
            };
            live.apply_snapshot(part(5..=6, 0, true));
            live.apply_snapshot(part(7..=8, 6, true));
            assert_eq!(chart.get_untracked(), [1, 2], "drawn before the last part");
            live.apply_snapshot(part(9..=9, 8, false));
            assert_eq!(chart.get_untracked(), [5, 6, 7, 8, 9]);
            assert_eq!(redraws.load(std::sync::atomic::Ordering::Relaxed), 2);
        });
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
