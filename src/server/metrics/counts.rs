//! What the metrics store counts about its own input: per-protocol received, accepted and
//! dropped figures (each drop with its reason) and the last malformed inputs, bounded.

use std::collections::VecDeque;

use serde::Serialize;

/// Malformed inputs kept for inspection.
pub const KEEP_MALFORMED: usize = 20;
/// Characters of a malformed input kept (the rest is cut).
pub const MALFORMED_INPUT_CHARS: usize = 200;
/// Characters of a reason kept.
const REASON_CHARS: usize = 200;

/// Which protocol an input came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Statsd,
    Http,
    /// OpenTelemetry OTLP/HTTP (traces and metrics).
    Otlp,
}

impl Protocol {
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Statsd => "statsd",
            Protocol::Http => "http",
            Protocol::Otlp => "otlp",
        }
    }
}

/// Counters for one ingestion protocol.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ProtocolStats {
    /// Datagrams (StatsD) or requests (HTTP, OTLP) received.
    pub received: u64,
    /// Items (lines or batch entries) accepted.
    pub accepted: u64,
    /// Requests refused whole (HTTP) — their items are not counted as accepted.
    pub rejected: u64,
    /// Lines or items that could not be used: unparseable, or a value that is (or would make a
    /// total) not a finite number.
    pub malformed: u64,
    /// Samples dropped because their series was new and the series budget (`--max-series`)
    /// is spent.
    pub dropped_by_cap: u64,
    /// Samples dropped because their operation or event series was new and the statistics'
    /// byte budget (`--max-statistics-mb`) is spent.
    pub dropped_by_memory: u64,
    /// Samples dropped as older than the one-hour horizon.
    pub dropped_too_old: u64,
    /// Samples dropped as stamped too far in the future (beyond the allowed clock skew).
    pub dropped_future: u64,
    /// Samples dropped because one series received more in one second than it can count.
    pub dropped_saturated: u64,
    /// Datagrams the kernel dropped before Vitals read them, because the socket's receive
    /// buffer was full (StatsD only: the socket's own count in `/proc/net/udp`, read once a
    /// second).
    pub dropped_by_kernel: u64,
    /// Set members not stored because the set (or all sets) hold as many as allowed; the
    /// set's unique count is then a lower bound.
    pub set_members_dropped: u64,
    /// Items left out by configuration, not by fault: OTLP spans of a kind that does not count
    /// (`--otlp-span-kinds`).
    pub ignored: u64,
}

/// A rejected input kept for inspection.
#[derive(Clone, Debug, Serialize)]
pub struct Malformed {
    pub protocol: &'static str,
    pub at_ms: u64,
    pub input: String,
    pub reason: String,
}

/// The counters of every protocol and the last malformed inputs.
#[derive(Default)]
pub struct IngestCounts {
    pub statsd: ProtocolStats,
    pub http: ProtocolStats,
    pub otlp: ProtocolStats,
    malformed: VecDeque<Malformed>,
}

impl IngestCounts {
    pub fn of(&mut self, protocol: Protocol) -> &mut ProtocolStats {
        match protocol {
            Protocol::Statsd => &mut self.statsd,
            Protocol::Http => &mut self.http,
            Protocol::Otlp => &mut self.otlp,
        }
    }

    /// Counts a malformed input and keeps it (cut to a bounded length), dropping the oldest.
    pub fn malformed(&mut self, protocol: Protocol, input: &str, reason: &str, now_ms: u64) {
        self.of(protocol).malformed += 1;
        if self.malformed.len() == KEEP_MALFORMED {
            self.malformed.pop_front();
        }
        self.malformed.push_back(Malformed {
            protocol: protocol.name(),
            at_ms: now_ms,
            input: input.chars().take(MALFORMED_INPUT_CHARS).collect(),
            reason: reason.chars().take(REASON_CHARS).collect(),
        });
    }

    /// The kept malformed inputs, newest first.
    pub fn last_malformed(&self) -> Vec<Malformed> {
        self.malformed.iter().rev().cloned().collect()
    }

    /// Samples dropped by the series budget, over every protocol.
    pub fn dropped_by_cap(&self) -> u64 {
        self.all().map(|p| p.dropped_by_cap).sum()
    }

    /// Samples dropped by the statistics' byte budget, over every protocol.
    pub fn dropped_by_memory(&self) -> u64 {
        self.all().map(|p| p.dropped_by_memory).sum()
    }

    fn all(&self) -> impl Iterator<Item = &ProtocolStats> {
        [&self.statsd, &self.http, &self.otlp].into_iter()
    }
}
