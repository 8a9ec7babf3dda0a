//! The collector: a dedicated thread that samples the host every interval (or at once on
//! request) and hands each [`SystemMetrics`] to the async side. The thread alone owns sysinfo
//! (through [`system::SystemSampler`]), so sampling never blocks the async runtime.

pub mod system;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::model::live::SystemMetrics;
use system::SystemSampler;

/// One sample from the collector; `reply` is set when it answers a request for an immediate one.
pub struct Collected {
    pub metrics: SystemMetrics,
    pub reply: Option<oneshot::Sender<()>>,
}

/// The async side's handle on the collector thread.
#[derive(Clone)]
pub struct CollectorHandle {
    requests: std_mpsc::Sender<oneshot::Sender<()>>,
    /// Unix ms of the last sample taken (0 before the first).
    last_sample_ms: Arc<AtomicU64>,
    interval: Duration,
}

impl CollectorHandle {
    /// Asks for a sample now; resolves once it has been published.
    pub async fn sample_now(&self) -> Result<(), &'static str> {
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
}

/// Starts the collector thread. It stops when the receiving side of `out` is dropped.
pub fn spawn(interval: Duration, out: mpsc::Sender<Collected>) -> std::io::Result<CollectorHandle> {
    let (requests, request_rx) = std_mpsc::channel::<oneshot::Sender<()>>();
    let last_sample_ms = Arc::new(AtomicU64::new(0));
    let last = Arc::clone(&last_sample_ms);
    std::thread::Builder::new().name("vitals-collector".into()).spawn(move || {
        let mut sampler = SystemSampler::new();
        let mut next = Instant::now();
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            let reply = match request_rx.recv_timeout(wait) {
                Ok(reply) => Some(reply),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    next += interval;
                    if next < Instant::now() {
                        next = Instant::now() + interval;
                    }
                    None
                }
                // Every handle is gone: keep the schedule without on-demand requests.
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wait);
                    next += interval;
                    None
                }
            };
            let metrics = sampler.sample();
            last.store(crate::server::now_ms(), Ordering::Relaxed);
            if out.blocking_send(Collected { metrics, reply }).is_err() {
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
