//! The top processes of the host: every [`PROCESS_INTERVAL`] (10 s) the collector thread reads
//! `/proc/<pid>/stat` of every process (name, CPU ticks, start time, RSS pages) and keeps the
//! [`TOP_N`] (5) processes by CPU and the [`TOP_N`] by resident memory, for recommendations
//! that name the processes behind a saturated host.
//!
//! Reading every process costs CPU (one open and read per process), which is why this runs at a
//! tenth of the host sample's rate (and why sysinfo's per-process refresh is not used, see
//! [`super::procfs`]). A process's CPU % is its ticks since the previous scan over the time
//! between the two scans (100 = one core). A process that started since the previous scan
//! counts all its ticks; one that existed but was not read then (a failed read) has no figure
//! until the next scan. The previous ticks are kept per pid (with the pid's start time, so a
//! reused pid is a new process) for the processes of the last scan only: vanished pids are
//! dropped, and at most [`MAX_PROCESSES`] are read. A process that vanishes mid-read is
//! skipped. Parsers and the arithmetic are pure, tested on fixed text.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

/// How often the processes are read (the host sample's interval when that is longer).
pub const PROCESS_INTERVAL: Duration = Duration::from_secs(10);
/// Processes kept per scan by CPU, and again by resident memory (at most twice this in all).
pub const TOP_N: usize = 5;
/// Longest stored process name, in bytes (the kernel's `comm` is at most 15).
pub const MAX_NAME_BYTES: usize = 32;
/// Most processes read per scan (a bound on the work and on the map of previous ticks).
pub const MAX_PROCESSES: usize = 65_536;

/// What one `/proc/<pid>/stat` line says about a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// The command name (`comm`), sanitised: see [`sanitise_name`].
    pub name: String,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// When the process started, in clock ticks since boot.
    pub start_ticks: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The name is between the first `(` and the last `)` (it may hold
/// spaces and parentheses itself); the numeric fields follow. `None` for malformed text.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?;
    // After the name: field 3 (state) is index 0, so field n is index n - 3.
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    let utime = number(14)?;
    let stime = number(15)?;
    let start_ticks = number(22)?;
    // RSS is signed in the kernel's format; a negative value reads as zero.
    let rss_pages = fields.get(24 - 3)?.parse::<i64>().ok()?.max(0) as u64;
    Some(ProcStat {
        name: sanitise_name(name),
        cpu_ticks: utime.saturating_add(stime),
        start_ticks,
        rss_pages,
    })
}

/// A process name fit to store and show: control characters become `?`, surrounding spaces
/// go, at most [`MAX_NAME_BYTES`] (cut at a character boundary); an empty name is `?`.
pub fn sanitise_name(raw: &str) -> String {
    let mut name = String::with_capacity(raw.len().min(MAX_NAME_BYTES));
    for c in raw.trim().chars().map(|c| if c.is_control() { '?' } else { c }) {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        name.push('?');
    }
    name
}

/// Parses `/proc/uptime`: seconds since boot.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// One process in a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessUsage {
    pub pid: u32,
    pub name: String,
    /// CPU over the time since the previous scan; 100 = one core.
    pub cpu_pct: f64,
    pub rss_bytes: u64,
}

/// The top processes at one moment: the union of the [`TOP_N`] by CPU and by memory.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessSnapshot {
    /// When the scan was taken, Unix ms.
    pub at_ms: u64,
    pub processes: Vec<ProcessUsage>,
}

/// One scan of `/proc`: the time since boot and each readable process.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    pub uptime_secs: f64,
    pub processes: Vec<(u32, ProcStat)>,
}

/// CPU % of `ticks` clock ticks over `elapsed_secs` (100 = one core); 0 over no time.
pub fn cpu_pct(ticks: u64, ticks_per_sec: f64, elapsed_secs: f64) -> f64 {
    if elapsed_secs <= 0.0 || ticks_per_sec <= 0.0 {
        return 0.0;
    }
    let pct = ticks as f64 / ticks_per_sec / elapsed_secs * 100.0;
    if pct.is_finite() {
        (pct * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// The union of the `n` processes using the most CPU and the `n` using the most memory,
/// busiest first (ties: more memory first, then the lower pid). Processes with neither CPU nor
/// memory are not kept.
pub fn top_processes(all: &[ProcessUsage], n: usize) -> Vec<ProcessUsage> {
    let mut by_cpu: Vec<&ProcessUsage> = all.iter().filter(|p| p.cpu_pct > 0.0).collect();
    by_cpu.sort_by(|a, b| {
        b.cpu_pct.total_cmp(&a.cpu_pct).then(b.rss_bytes.cmp(&a.rss_bytes)).then(a.pid.cmp(&b.pid))
    });
    let mut by_rss: Vec<&ProcessUsage> = all.iter().filter(|p| p.rss_bytes > 0).collect();
    by_rss.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    let mut kept: Vec<ProcessUsage> = Vec::with_capacity(2 * n);
    for p in by_cpu.into_iter().take(n).chain(by_rss.into_iter().take(n)) {
        if !kept.iter().any(|k| k.pid == p.pid) {
            kept.push(p.clone());
        }
    }
    kept.sort_by(|a, b| {
        b.cpu_pct.total_cmp(&a.cpu_pct).then(b.rss_bytes.cmp(&a.rss_bytes)).then(a.pid.cmp(&b.pid))
    });
    kept
}

/// Turns successive scans into CPU % per process (see the module's notes).
pub struct ProcessTracker {
    ticks_per_sec: f64,
    page_bytes: u64,
    /// Per pid of the previous scan: its start time and CPU ticks.
    previous: HashMap<u32, (u64, u64)>,
    previous_uptime_secs: Option<f64>,
}

impl ProcessTracker {
    /// A tracker for a host with `ticks_per_sec` clock ticks a second and pages of
    /// `page_bytes`.
    pub fn new(ticks_per_sec: f64, page_bytes: u64) -> Self {
        ProcessTracker {
            ticks_per_sec,
            page_bytes,
            previous: HashMap::new(),
            previous_uptime_secs: None,
        }
    }

    /// This host's clock tick rate and page size (100 and 4096 when they cannot be read).
    pub fn for_this_host() -> Self {
        use nix::unistd::{sysconf, SysconfVar};
        let read = |var| sysconf(var).ok().flatten().filter(|v| *v > 0);
        let ticks = read(SysconfVar::CLK_TCK).unwrap_or(100) as f64;
        let page = read(SysconfVar::PAGE_SIZE).unwrap_or(4096) as u64;
        Self::new(ticks, page)
    }

    /// Folds in a scan: every process's usage since the previous scan, all of them (`None` for
    /// the first scan, which is only the base, or a scan no later than the previous one).
    pub fn update(&mut self, scan: Scan) -> Option<Vec<ProcessUsage>> {
        let before_uptime = self.previous_uptime_secs.replace(scan.uptime_secs);
        let mut seen = HashMap::with_capacity(scan.processes.len());
        let mut usage = Vec::with_capacity(scan.processes.len());
        let elapsed = before_uptime.map(|b| scan.uptime_secs - b);
        for (pid, stat) in scan.processes {
            seen.insert(pid, (stat.start_ticks, stat.cpu_ticks));
            let Some(elapsed) = elapsed else { continue };
            let ticks = match self.previous.get(&pid) {
                Some(&(start, ticks)) if start == stat.start_ticks => {
                    stat.cpu_ticks.saturating_sub(ticks)
                }
                // New since the previous scan (or a reused pid): all its ticks are recent.
                _ if before_uptime
                    .is_some_and(|b| stat.start_ticks as f64 / self.ticks_per_sec >= b) =>
                {
                    stat.cpu_ticks
                }
                // It existed then but was not read: no figure this time.
                _ => 0,
            };
            usage.push(ProcessUsage {
                pid,
                cpu_pct: cpu_pct(ticks, self.ticks_per_sec, elapsed),
                rss_bytes: stat.rss_pages.saturating_mul(self.page_bytes),
                name: stat.name,
            });
        }
        self.previous = seen;
        elapsed.filter(|e| *e > 0.0).map(|_| usage)
    }

    /// Reads `/proc` and folds the scan in: the top processes (`None` on the first call).
    /// Blocking; runs on the collector thread.
    pub fn sample(&mut self, at_ms: u64) -> Option<ProcessSnapshot> {
        let all = self.update(scan_proc())?;
        Some(ProcessSnapshot { at_ms, processes: top_processes(&all, TOP_N) })
    }
}

/// Reads `/proc/uptime` and `/proc/<pid>/stat` of every process (at most [`MAX_PROCESSES`]);
/// a process that vanishes or cannot be read or parsed is skipped.
pub fn scan_proc() -> Scan {
    let uptime_secs =
        std::fs::read_to_string("/proc/uptime").ok().and_then(|t| parse_uptime(&t)).unwrap_or(0.0);
    let mut processes = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Scan { uptime_secs, processes };
    };
    let mut buf = Vec::with_capacity(512);
    for entry in entries.filter_map(Result::ok) {
        if processes.len() >= MAX_PROCESSES {
            break;
        }
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        buf.clear();
        let path = format!("/proc/{pid}/stat");
        // Gone since the directory was listed, or not ours to read: skipped.
        let read = std::fs::File::open(&path).and_then(|f| f.take(4096).read_to_end(&mut buf));
        if read.is_err() {
            continue;
        }
        if let Some(stat) = parse_stat(&String::from_utf8_lossy(&buf)) {
            processes.push((pid, stat));
        }
    }
    Scan { uptime_secs, processes }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line's shape: pid, (comm), state, then fields 4.. (utime 14, stime 15,
    /// starttime 22, rss 24).
    fn stat_line(comm: &str, utime: u64, stime: u64, start: u64, rss: i64) -> String {
        format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 1234 0 0 0 {utime} {stime} 0 0 20 0 3 0 \
             {start} 123456789 {rss} 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 \
             0 0 0\n"
        )
    }

    fn stat(name: &str, cpu_ticks: u64, start_ticks: u64, rss_pages: u64) -> ProcStat {
        ProcStat { name: name.into(), cpu_ticks, start_ticks, rss_pages }
    }

    #[test]
    fn stat_lines_give_name_ticks_start_and_rss_even_with_parentheses_in_the_name() {
        assert_eq!(
            parse_stat(&stat_line("vitals", 150, 50, 9000, 2048)),
            Some(stat("vitals", 200, 9000, 2048))
        );
        // A name with spaces and parentheses, even one that looks like the fields after it.
        assert_eq!(
            parse_stat(&stat_line("my (weird) proc", 7, 3, 10, 5)),
            Some(stat("my (weird) proc", 10, 10, 5))
        );
        assert_eq!(
            parse_stat(&stat_line("x) R 1 (y", 1, 1, 2, 3)),
            Some(stat("x) R 1 (y", 2, 2, 3))
        );
        assert_eq!(parse_stat(&stat_line("neg", 0, 0, 1, -1)).map(|s| s.rss_pages), Some(0));
        // A process that vanished mid-read: empty or cut short.
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("4242 (vitals) S 1 4242"), None);
        assert_eq!(parse_stat("4242 vitals S 1"), None);
    }

    #[test]
    fn names_are_sanitised_and_bounded() {
        assert_eq!(sanitise_name("bash"), "bash");
        assert_eq!(sanitise_name("a\nb\u{1b}c"), "a?b?c");
        assert_eq!(sanitise_name("  "), "?");
        let long = "é".repeat(40);
        let cut = sanitise_name(&long);
        assert!(cut.len() <= MAX_NAME_BYTES && cut.chars().all(|c| c == 'é'), "{cut}");
        assert_eq!(cut.len(), MAX_NAME_BYTES);
        assert_eq!(parse_uptime("12345.67 400.00\n"), Some(12345.67));
        assert_eq!(parse_uptime("nan 1"), None);
    }

    #[test]
    fn cpu_percent_is_ticks_over_time_with_one_core_at_100() {
        assert_eq!(cpu_pct(100, 100.0, 1.0), 100.0);
        assert_eq!(cpu_pct(250, 100.0, 10.0), 25.0);
        assert_eq!(cpu_pct(2000, 100.0, 10.0), 200.0, "two cores busy");
        assert_eq!(cpu_pct(5, 100.0, 0.0), 0.0);
    }

    #[test]
    fn the_tracker_computes_cpu_since_the_previous_scan_and_forgets_vanished_pids() {
        let mut t = ProcessTracker::new(100.0, 4096);
        let first = Scan {
            uptime_secs: 100.0,
            processes: vec![(1, stat("init", 500, 0, 10)), (2, stat("db", 1000, 50, 100))],
        };
        assert_eq!(t.update(first), None, "the first scan is the base");
        let second = Scan {
            uptime_secs: 110.0,
            processes: vec![
                (1, stat("init", 510, 0, 10)),
                // pid 2 vanished; pid 3 started after the previous scan (at 105 s).
                (3, stat("build", 800, 10_500, 50)),
            ],
        };
        let usage = t.update(second).unwrap();
        let pct = |pid| usage.iter().find(|p| p.pid == pid).map(|p| p.cpu_pct);
        assert_eq!(pct(1), Some(1.0));
        assert_eq!(pct(3), Some(80.0), "a new process counts all its ticks");
        assert_eq!(usage.iter().find(|p| p.pid == 3).unwrap().rss_bytes, 50 * 4096);
        assert!(!t.previous.contains_key(&2), "vanished pids are dropped");
        // pid 2 is back with another start time (a reused pid) that began before the previous
        // scan and was not read then: no figure, rather than its whole life at once.
        let third = Scan {
            uptime_secs: 120.0,
            processes: vec![(1, stat("init", 510, 0, 10)), (2, stat("db", 9000, 60, 100))],
        };
        let usage = t.update(third).unwrap();
        assert_eq!(usage.iter().map(|p| p.cpu_pct).collect::<Vec<_>>(), vec![0.0, 0.0]);
        let fourth = Scan { uptime_secs: 130.0, processes: vec![(2, stat("db", 9500, 60, 100))] };
        assert_eq!(t.update(fourth).unwrap()[0].cpu_pct, 50.0);
        assert_eq!(t.previous.len(), 1);
    }

    #[test]
    fn top_processes_keep_the_busiest_and_the_largest_once_each() {
        let p = |pid, cpu_pct, rss_bytes| ProcessUsage {
            pid,
            name: format!("p{pid}"),
            cpu_pct,
            rss_bytes,
        };
        let all: Vec<ProcessUsage> =
            (1..=20).map(|i| p(i, f64::from(i), 1000 - u64::from(i))).collect();
        let top = top_processes(&all, 3);
        let pids: Vec<u32> = top.iter().map(|p| p.pid).collect();
        // By CPU: 20, 19, 18; by memory: 1, 2, 3; busiest first.
        assert_eq!(pids, vec![20, 19, 18, 3, 2, 1]);
        // One process on both lists is kept once.
        let both = vec![p(1, 90.0, 5000), p(2, 1.0, 10), p(3, 0.0, 0)];
        let top = top_processes(&both, 1);
        assert_eq!(top.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![1]);
        assert!(top_processes(&[p(9, 0.0, 0)], 5).is_empty(), "idle, empty processes are not kept");
    }

    #[test]
    fn this_host_has_readable_processes_including_this_one() {
        let scan = scan_proc();
        assert!(scan.uptime_secs > 0.0);
        let me = std::process::id();
        assert!(scan.processes.iter().any(|(pid, _)| *pid == me), "this test process is read");
        let mut t = ProcessTracker::for_this_host();
        assert_eq!(t.sample(1), None);
        // Burn a little CPU so the next scan has something to show.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        let all = t.update(scan_proc()).unwrap();
        let mine = all.iter().find(|p| p.pid == me).unwrap();
        assert!(mine.cpu_pct > 0.0 && mine.rss_bytes > 0, "{mine:?}");
        let top = top_processes(&all, TOP_N);
        assert!(!top.is_empty() && top.len() <= 2 * TOP_N, "{top:?}");
        // /proc/uptime counts hundredths of a second: a scan needs a later one.
        std::thread::sleep(Duration::from_millis(30));
        let snapshot = t.sample(3).unwrap();
        assert!(snapshot.processes.len() <= 2 * TOP_N && snapshot.at_ms == 3);
    }
}
