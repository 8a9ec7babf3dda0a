//! The collector: a dedicated thread that samples the host every interval (or at once on
//! request) and hands each [`SystemMetrics`] to the async side. The thread alone owns sysinfo
//! (through [`system::SystemSampler`]), so sampling never blocks the async runtime. Every
//! [`processes::PROCESS_INTERVAL`] it also reads the top processes ([`processes`]), on the same
//! thread, and hands them over with that sample.

pub mod disks;
pub mod processes;
pub mod procfs;
pub mod system;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::model::live::{Sample, SystemMetrics};
use crate::server::health::Status;
use processes::{ProcessSnapshot, ProcessTracker, PROCESS_INTERVAL};
use system::SystemSampler;

/// One sample from the collector; `replies` are the requests for an immediate sample that it
/// answers (the publisher sends each the published sample). `processes`: the top processes,
/// on the samples that come with a process scan.
pub struct Collected {
    pub metrics: SystemMetrics,
    pub replies: Vec<oneshot::Sender<Sample>>,
    pub processes: Option<ProcessSnapshot>,
}

/// The async side's handle on the collector thread.
#[derive(Clone)]
pub struct CollectorHandle {
    requests: std_mpsc::Sender<oneshot::Sender<Sample>>,
    /// Unix ms of the last sample taken (0 before the first).
    last_sample_ms: Arc<AtomicU64>,
    interval: Duration,
}

impl CollectorHandle {
    /// Asks for a sample now; resolves with it once it has been published. A request within
    /// [`min_sample_span`] of the previous sample is answered once that span has passed, and the
    /// schedule restarts from the new sample, so no sample covers too short a time.
    pub async fn sample_now(&self) -> Result<Sample, &'static str> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).map_err(|_| "the collector has stopped")?;
        rx.await.map_err(|_| "the collector has stopped")
    }

    /// Unix ms of the last sample, 0 before the first.
    pub fn last_sample_ms(&self) -> u64 {
        self.last_sample_ms.load(Ordering::Relaxed)
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The collector's own health: down when samples stopped arriving.
    pub fn health(&self) -> (Status, String) {
        let last = self.last_sample_ms();
        let interval_ms = self.interval.as_millis() as u64;
        let age_ms = crate::server::now_ms().saturating_sub(last);
        if last == 0 {
            (Status::Ok, "starting: no sample yet".to_string())
        } else if age_ms > 3 * interval_ms + 1000 {
            (Status::Down, format!("last sample {age_ms} ms ago (interval {interval_ms} ms)"))
        } else {
            (Status::Ok, format!("last sample {age_ms} ms ago"))
        }
    }
}

/// The shortest time one sample may cover: half the interval, at most 500 ms. A request for a
/// sample sooner after the previous one waits until then, so that no sample's CPU and rate
/// figures are computed over a sliver of time (and the next scheduled one is not shortened).
pub fn min_sample_span(interval: Duration) -> Duration {
    (interval / 2).min(Duration::from_millis(500))
}

/// Starts the collector thread. It stops when the receiving side of `out` is dropped.
pub fn spawn(interval: Duration, out: mpsc::Sender<Collected>) -> std::io::Result<CollectorHandle> {
    let (requests, request_rx) = std_mpsc::channel::<oneshot::Sender<Sample>>();
    let last_sample_ms = Arc::new(AtomicU64::new(0));
    let last = Arc::clone(&last_sample_ms);
    std::thread::Builder::new().name("vitals-collector".into()).spawn(move || {
        let mut sampler = SystemSampler::new();
        // The first process scan is the base; the next comes with the first sample after one
        // interval, then every PROCESS_INTERVAL (or every sample, when samples are rarer).
        let mut tracker = ProcessTracker::for_this_host();
        let _ = tracker.sample(crate::server::now_ms());
        let mut next_scan = Instant::now() + interval;
        let mut next = Instant::now();
        let mut last_taken = Instant::now();
        let min_span = min_sample_span(interval);
        // Requests for a sample now, answered by the next sample taken.
        let mut waiting: Vec<oneshot::Sender<Sample>> = Vec::new();
        loop {
            let due = if waiting.is_empty() { next } else { next.min(last_taken + min_span) };
            let wait = due.saturating_duration_since(Instant::now());
            match request_rx.recv_timeout(wait) {
                Ok(reply) => {
                    waiting.push(reply);
                    if last_taken.elapsed() < min_span {
                        continue;
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                // Every handle is gone: keep the schedule without on-demand requests.
                Err(std_mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
            if waiting.is_empty() {
                next += interval;
                if next < Instant::now() {
                    next = Instant::now() + interval;
                }
            } else {
                // An on-demand sample: the next scheduled one covers a whole interval from it.
                next = Instant::now() + interval;
            }
            let metrics = sampler.sample();
            last_taken = Instant::now();
            last.store(crate::server::now_ms(), Ordering::Relaxed);
            let processes = if last_taken >= next_scan {
                next_scan = last_taken + PROCESS_INTERVAL.max(interval).saturating_sub(min_span);
                let started = Instant::now();
                let snapshot = tracker.sample(crate::server::now_ms());
                debug!(took_us = started.elapsed().as_micros() as u64, "Read the processes.");
                snapshot
            } else {
                None
            };
            let replies = std::mem::take(&mut waiting);
            if out.blocking_send(Collected { metrics, replies, processes }).is_err() {
                debug!("Collector output closed; stopping.");
                break;
            }
        }
    })?;
    if interval < Duration::from_millis(100) {
        warn!(interval_ms = interval.as_millis() as u64, "Sampling faster than 10 Hz costs CPU.");
    }
    Ok(CollectorHandle { requests, last_sample_ms, interval })
}
