//! The only owner of sysinfo: turns host, network, disk and own-process readings into
//! [`SystemMetrics`]. Blocking; runs on the collector thread. Network bytes, load and the
//! process and thread counts come from [`super::procfs`], where one file holds what sysinfo
//! reads from many.

use std::time::Instant;

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Pid, ProcessRefreshKind,
    ProcessesToUpdate, RefreshKind, System,
};

use super::procfs::{self, NetDelta};
use crate::model::live::SystemMetrics;

/// Samples the host. Rates are computed over the time since the previous sample.
pub struct SystemSampler {
    system: System,
    network: NetDelta,
    disks: Disks,
    own_pid: Option<Pid>,
    last: Instant,
}

impl Default for SystemSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemSampler {
    pub fn new() -> Self {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::everything()),
        );
        let mut network = NetDelta::default();
        network.update(&std::fs::read_to_string("/proc/net/dev").unwrap_or_default());
        SystemSampler {
            system,
            network,
            disks: Disks::new_with_refreshed_list_specifics(
                DiskRefreshKind::nothing().with_io_usage(),
            ),
            own_pid: sysinfo::get_current_pid().ok(),
            last: Instant::now(),
        }
    }

    /// Takes one sample. The first call's CPU and rate figures cover the time since `new`.
    pub fn sample(&mut self) -> SystemMetrics {
        let elapsed_secs = self.last.elapsed().as_secs_f64().max(1e-3);
        self.last = Instant::now();
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let net = self.network.update(&read_proc("/proc/net/dev"));
        self.disks.refresh_specifics(true, DiskRefreshKind::nothing().with_io_usage());
        let load = procfs::parse_loadavg(&read_proc("/proc/loadavg")).unwrap_or_default();
        let process_count = procfs::count_processes();
        let (self_cpu_pct, self_rss_bytes) = self.own_usage();

        let (read, written) = self.disks.list().iter().fold((0u64, 0u64), |(r, w), d| {
            let usage = d.usage();
            (r + usage.read_bytes, w + usage.written_bytes)
        });
        let memory_total = self.system.total_memory();
        let memory_used = self.system.used_memory();
        SystemMetrics {
            cpu_pct: round2(self.system.global_cpu_usage()),
            per_core_pct: self.system.cpus().iter().map(|c| round2(c.cpu_usage())).collect(),
            memory_used_bytes: memory_used,
            memory_total_bytes: memory_total,
            memory_pct: if memory_total == 0 {
                0.0
            } else {
                round2((memory_used as f64 / memory_total as f64 * 100.0) as f32)
            },
            swap_used_bytes: self.system.used_swap(),
            swap_total_bytes: self.system.total_swap(),
            load_avg_1: load.one,
            load_avg_5: load.five,
            load_avg_15: load.fifteen,
            net_rx_bytes_per_sec: (net.rx as f64 / elapsed_secs).round(),
            net_tx_bytes_per_sec: (net.tx as f64 / elapsed_secs).round(),
            disk_read_bytes_per_sec: (read as f64 / elapsed_secs).round(),
            disk_write_bytes_per_sec: (written as f64 / elapsed_secs).round(),
            process_count,
            thread_count: load.tasks.max(process_count),
            self_cpu_pct,
            self_rss_bytes,
        }
    }

    fn own_usage(&mut self) -> (f32, u64) {
        let Some(pid) = self.own_pid else {
            return (0.0, 0);
        };
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu().with_memory().without_tasks(),
        );
        self.system.process(pid).map_or((0.0, 0), |p| (round2(p.cpu_usage()), p.memory()))
    }
}

/// A `/proc` file's text; empty when it cannot be read (the readings from it are then zero).
fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Rounds to two decimals: enough for a dashboard, and shorter on the wire.
fn round2(value: f32) -> f32 {
    if value.is_finite() {
        (value * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_plausible() {
        let mut sampler = SystemSampler::new();
        let first = sampler.sample();
        let second = sampler.sample();
        for m in [&first, &second] {
            assert!((0.0..=100.0).contains(&m.cpu_pct), "{}", m.cpu_pct);
            assert!(!m.per_core_pct.is_empty());
            assert!(m.memory_total_bytes > 0 && m.memory_used_bytes <= m.memory_total_bytes);
            assert!((0.0..=100.0).contains(&m.memory_pct));
            assert!(m.self_rss_bytes > 0, "own RSS");
        }
        assert!(first.process_count >= 1 && first.thread_count >= first.process_count);
        assert_eq!(round2(12.3456), 12.35);
        assert_eq!(round2(f32::NAN), 0.0);
    }
}
