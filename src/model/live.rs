//! The live stream's contract: what one sample holds and the messages exchanged over `/ws`.
//! See docs/live-protocol.md for the protocol as a third-party client sees it.

use serde::{Deserialize, Serialize};

use super::ops::OperationSummary;

/// Operation statistics are recomputed (and offered to subscribers) every this many ticks.
pub const OPERATIONS_EVERY_TICKS: u64 = 5;

/// Most alerts one `alerts` message carries (the API has them all).
pub const LIVE_ALERTS: usize = 50;

/// Host and process metrics at one instant. Rates are per second over the last interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemMetrics {
    /// Host CPU use over the last interval, 0..=100.
    pub cpu_pct: f32,
    /// CPU use of each logical core, 0..=100.
    pub per_core_pct: Vec<f32>,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    /// Memory used, 0..=100.
    pub memory_pct: f32,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub load_avg_1: f64,
    pub load_avg_5: f64,
    pub load_avg_15: f64,
    /// Bytes received and sent per second, summed over every interface but loopback.
    pub net_rx_bytes_per_sec: f64,
    pub net_tx_bytes_per_sec: f64,
    /// Disk I/O summed over the mounted disks.
    pub disk_read_bytes_per_sec: f64,
    pub disk_write_bytes_per_sec: f64,
    /// Processes and threads on the host, kernel threads included (as `top` counts them).
    pub process_count: u32,
    pub thread_count: u32,
    /// What Vitals itself costs: its CPU use (100 = one core) and resident memory.
    pub self_cpu_pct: f32,
    pub self_rss_bytes: u64,
}

/// The monitored application's actions (operations) over the last minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionMetrics {
    pub actions_per_min: f64,
    pub avg_duration_ms: f64,
    /// Successful share, 0..=100; `None` when there were no actions (no data).
    pub success_pct: Option<f64>,
    /// What the application says it is doing now, if it said.
    pub current_action: Option<String>,
    /// Latest `queue.actions` gauge.
    pub queue_depth: f64,
    /// Failed actions in the last minute.
    pub error_count: u64,
}

/// The monitored application's events over the last minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetrics {
    /// Events waiting (the `queue.events` gauge).
    pub queued: f64,
    /// Events processed in the last minute, including failed ones.
    pub processed: u64,
    pub failed: u64,
    pub avg_processing_ms: f64,
    /// Same as `queued`, kept for clients that read queue depths uniformly.
    pub queue_depth: f64,
}

/// Everything measured at one tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix milliseconds of the tick.
    pub at_ms: u64,
    /// Tick number since the server started; gaps mean a client skipped updates.
    pub seq: u64,
    pub system: SystemMetrics,
    pub actions: ActionMetrics,
    pub events: EventMetrics,
}

/// The latest state with its history window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveSnapshot {
    /// Time between two samples.
    pub interval_ms: u64,
    /// Oldest first; the last element is the latest sample.
    pub history: Vec<Sample>,
    /// Per-operation statistics over the last 5 minutes.
    pub operations: Vec<OperationSummary>,
    /// 0: `history` is the whole window. Otherwise `history` holds only the samples after this
    /// one, which the client already has (it connected with `/ws?after=<seq>`): it keeps its
    /// own samples up to it and appends these.
    #[serde(default, skip_serializing_if = "is_default")]
    pub after_seq: u64,
    /// True on every part of a snapshot but its last. A long snapshot is sent as several
    /// messages of a few KiB each (a socket's send buffer keeps the size of the largest message
    /// it ever sent); each part after the first continues the one before it (`after_seq` is the
    /// previous part's last sample), and the operation statistics ride on the last part.
    #[serde(default, skip_serializing_if = "is_default")]
    pub more: bool,
}

/// Whether a field holds its default (0, false), so that it is left out of the message.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl LiveSnapshot {
    pub fn latest(&self) -> Option<&Sample> {
        self.history.last()
    }
}

/// Messages the server sends over `/ws`: one JSON object each, whose first field, `type`,
/// names the variant (`snapshot`, `update`, `alerts`, `alert_counts`, `pong`, `error`); the
/// variant's own fields follow it.
///
/// Written by serde's derive, read back tag first ([`super::tagged`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent on connect and on `request_metrics`: the latest sample and the history window.
    Snapshot(LiveSnapshot),
    /// One per tick.
    Update(SampleUpdate),
    /// The alerts changed (and once on connect), with their list.
    Alerts(AlertList),
    /// The alerts changed (and once on connect), for a client that did not subscribe to their
    /// list: the counts for the header and how many alerts there are.
    AlertCounts(AlertNews),
    /// The answer to a client's `ping`.
    Pong,
    /// A client's request that was refused (e.g. `request_metrics` beyond its rate limit).
    Error(Refusal),
}

super::tagged::tag_first_deserialize!(ServerMessage, "type", {
    "snapshot" => Snapshot(LiveSnapshot),
    "update" => Update(SampleUpdate),
    "alerts" => Alerts(AlertList),
    "alert_counts" => AlertCounts(AlertNews),
    "pong" => Pong,
    "error" => Error(Refusal),
});

/// A [`ServerMessage::Update`]: one per tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleUpdate {
    pub sample: Box<Sample>,
    /// Per-operation statistics over the last 5 minutes, for clients that subscribed to them;
    /// present every few ticks only (`None` means "unchanged").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<OperationSummary>>,
}

/// A [`ServerMessage::Alerts`]: firing and pending counts for the header, and the alerts now,
/// worst first (at most [`LIVE_ALERTS`] of `total`). A long list comes in parts, as a snapshot
/// does: `offset` is the place of a part's first alert in the list (0: a new list begins), and
/// every part but the last says `more`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertList {
    /// The publication's number: it grows with every change, and the same number again means
    /// nothing changed (the list sent to a client that has just subscribed).
    #[serde(default)]
    pub seq: u64,
    pub counts: super::alerts::AlertCounts,
    pub alerts: Vec<super::alerts::AlertInstance>,
    /// The alerts there are in all, listed or not.
    #[serde(default)]
    pub total: usize,
    #[serde(default, skip_serializing_if = "is_default")]
    pub offset: usize,
    #[serde(default, skip_serializing_if = "is_default")]
    pub more: bool,
}

/// A [`ServerMessage::AlertCounts`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertNews {
    /// As [`AlertList::seq`].
    #[serde(default)]
    pub seq: u64,
    pub counts: super::alerts::AlertCounts,
    pub total: usize,
}

/// A [`ServerMessage::Error`]: what was refused, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub message: String,
}

/// Messages a client may send; anything else is ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Ping,
    RequestMetrics,
    /// Whether updates should carry operation statistics, and whether alert changes should
    /// carry the list of alerts or only their counts (both off unless asked for; a field left
    /// out changes nothing).
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operations: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alerts: Option<bool>,
    },
}

/// The delay before reconnection attempt `attempt` (1-based): 1 s doubling up to 30 s, scaled by
/// `jitter` in 0.0..1.0 to between 80 % and 120 % of that (never above 30 s).
pub fn reconnect_delay_ms(attempt: u32, jitter: f64) -> u32 {
    let base = 1000u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(15)).min(30_000);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    ((base as f64 * factor) as u64).min(30_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty() {
        let mid: Vec<u32> = (1..=7).map(|a| reconnect_delay_ms(a, 0.5)).collect();
        assert_eq!(mid, vec![1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(reconnect_delay_ms(1, 0.0), 800);
        assert_eq!(reconnect_delay_ms(1, 1.0), 1200);
        assert_eq!(reconnect_delay_ms(6, 1.0), 30000);
        assert_eq!(reconnect_delay_ms(u32::MAX, 0.99), 30000);
    }

    #[test]
    fn messages_round_trip_with_type_tags() {
        let update = ServerMessage::Update(SampleUpdate {
            sample: Box::new(Sample { seq: 7, at_ms: 1_700_000_000_000, ..Default::default() }),
            operations: None,
        });
        let json = serde_json::to_string(&update).unwrap();
        assert!(json.starts_with(r#"{"type":"update","sample":{"#), "{json}");
        assert!(!json.contains("operations"));
        assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), update);
        let pong = serde_json::to_string(&ServerMessage::Pong).unwrap();
        assert_eq!(pong, r#"{"type":"pong"}"#);
        let snap =
            ServerMessage::Snapshot(LiveSnapshot { interval_ms: 1000, ..Default::default() });
        let json = serde_json::to_string(&snap).unwrap();
        assert!(
            json.starts_with(r#"{"type":"snapshot","interval_ms":1000,"history":[]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), snap);
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"request_metrics"}"#).unwrap(),
            ClientMessage::RequestMetrics
        );
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","alerts":true}"#).unwrap(),
            ClientMessage::Subscribe { operations: None, alerts: Some(true) }
        );
        let counts =
            ServerMessage::AlertCounts(AlertNews { seq: 2, counts: Default::default(), total: 3 });
        let json = serde_json::to_string(&counts).unwrap();
        assert!(json.starts_with(r#"{"type":"alert_counts","seq":2,"counts":{"#), "{json}");
        assert!(json.ends_with(r#""total":3}"#), "{json}");
    }

    #[test]
    fn every_message_reads_back_as_written_and_a_misplaced_type_is_refused() {
        let read = |json: &str| serde_json::from_str::<ServerMessage>(json);
        let messages = [
            ServerMessage::Snapshot(LiveSnapshot {
                interval_ms: 1000,
                history: vec![Sample { seq: 3, ..Default::default() }],
                after_seq: 2,
                more: true,
                ..Default::default()
            }),
            ServerMessage::Update(SampleUpdate {
                sample: Box::new(Sample { seq: 4, ..Default::default() }),
                operations: Some(vec![]),
            }),
            ServerMessage::Alerts(AlertList {
                seq: 9,
                counts: Default::default(),
                alerts: vec![],
                total: 60,
                offset: 50,
                more: true,
            }),
            ServerMessage::AlertCounts(AlertNews { seq: 9, counts: Default::default(), total: 1 }),
            ServerMessage::Pong,
            ServerMessage::Error(Refusal { message: "rate limited".into() }),
        ];
        for message in messages {
            let json = serde_json::to_string(&message).unwrap();
            assert_eq!(read(&json).unwrap(), message, "{json}");
        }
        // Fields a newer server adds are passed over, in every variant.
        assert_eq!(read(r#"{"type":"pong","since":1}"#).unwrap(), ServerMessage::Pong);
        assert_eq!(
            read(r#"{"type":"error","code":7,"message":"m","extra":[1,{"a":2}]}"#).unwrap(),
            ServerMessage::Error(Refusal { message: "m".into() })
        );
        let refused = |json: &str| read(json).unwrap_err().to_string();
        assert!(refused(r#"{"message":"m","type":"error"}"#)
            .contains("`type` must come first, not `message`"));
        assert!(refused(r#"{"type":"gossip"}"#).contains("unknown variant `gossip`"));
        assert!(refused(r#"{"type":"error"}"#).contains("missing field `message`"));
        assert!(refused("{}").contains("missing field `type`"));
        assert!(refused("[]").contains("expected an object whose first field is `type`"));
    }
}
