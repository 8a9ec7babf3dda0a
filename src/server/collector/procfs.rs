//! The host readings that sysinfo takes expensively, read from one `/proc` file each.
//!
//! sysinfo's network refresh opens seven `/sys/class/net/<if>/statistics` files per interface
//! and asks netlink for every address, and its process count reads `/proc/<pid>/stat` and
//! `/proc/<pid>/task` of every process; together they were two thirds of an idle server's
//! sampling cost. `/proc/net/dev` holds every interface's byte counters in one read, and
//! `/proc/loadavg` holds the host's task count next to the load averages. Parsers are pure so
//! they can be tested on captured text.

use std::collections::HashMap;

/// Byte counters of one network interface since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub rx: u64,
    pub tx: u64,
}

/// Parses `/proc/net/dev`: interface name and its received and transmitted bytes. The two
/// header lines and malformed lines are skipped.
pub fn parse_net_dev(text: &str) -> impl Iterator<Item = (&str, NetCounters)> {
    text.lines().filter_map(|line| {
        let (name, rest) = line.split_once(':')?;
        let mut fields = rest.split_whitespace();
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit bytes.
        let rx = fields.next()?.parse().ok()?;
        let tx = fields.nth(7)?.parse().ok()?;
        Some((name.trim(), NetCounters { rx, tx }))
    })
}

/// Turns successive `/proc/net/dev` readings into bytes moved since the previous reading,
/// summed over interfaces other than loopback (traffic that stays on the host is not network
/// traffic). An interface that appeared since the previous reading counts from its next
/// reading; a counter that went backwards (the interface was recreated) counts as zero.
#[derive(Default)]
pub struct NetDelta {
    previous: HashMap<Box<str>, NetCounters>,
}

impl NetDelta {
    pub fn update(&mut self, text: &str) -> NetCounters {
        let mut moved = NetCounters::default();
        let mut seen: HashMap<Box<str>, NetCounters> = HashMap::with_capacity(self.previous.len());
        for (name, now) in parse_net_dev(text) {
            if name == "lo" {
                continue;
            }
            if let Some(before) = self.previous.get(name) {
                moved.rx += now.rx.saturating_sub(before.rx);
                moved.tx += now.tx.saturating_sub(before.tx);
            }
            seen.insert(name.into(), now);
        }
        self.previous = seen;
        moved
    }
}

/// What `/proc/loadavg` holds: the three load averages and the number of tasks (threads,
/// kernel threads included) that exist on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub tasks: u32,
}

/// Parses `/proc/loadavg`, e.g. `0.08 0.03 0.00 1/213 4242`.
pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut fields = text.split_whitespace();
    let mut average = || fields.next()?.parse::<f64>().ok().filter(|v| v.is_finite());
    let (one, five, fifteen) = (average()?, average()?, average()?);
    let tasks = fields.next()?.split_once('/')?.1.parse().ok()?;
    Some(LoadAvg { one, five, fifteen, tasks })
}

/// The number of processes on the host, as `top` counts them (kernel threads included): the
/// numeric entries of `/proc`. One directory listing, no per-process reads.
pub fn count_processes() -> u32 {
    std::fs::read_dir("/proc").map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count() as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 15692532509 8579404    0    0    0     0          0         0 15692532509 8579404    0    0    0     0       0          0
  eth0: 959612120   35986    0    0    0     0          0         0  1845073   19818    0    0    0     0       0          0
 wlan0:1000 5 0 0 0 0 0 0 2000 7 0 0 0 0 0 0
";

    #[test]
    fn net_dev_lines_give_bytes_per_interface() {
        let parsed: Vec<_> = parse_net_dev(NET_DEV).collect();
        assert_eq!(
            parsed,
            vec![
                ("lo", NetCounters { rx: 15_692_532_509, tx: 15_692_532_509 }),
                ("eth0", NetCounters { rx: 959_612_120, tx: 1_845_073 }),
                ("wlan0", NetCounters { rx: 1000, tx: 2000 }),
            ]
        );
        assert_eq!(parse_net_dev("garbage\neth0: 1 2\n").count(), 0);
    }

    #[test]
    fn net_delta_sums_interfaces_but_loopback_and_survives_resets() {
        let mut delta = NetDelta::default();
        assert_eq!(delta.update(NET_DEV), NetCounters::default(), "the first reading is a base");
        let later = "eth0: 959612220 0 0 0 0 0 0 0 1845573 0 0 0 0 0 0 0\n\
                     wlan0: 1010 0 0 0 0 0 0 0 2001 0 0 0 0 0 0 0\n\
                     lo: 99999999999 0 0 0 0 0 0 0 99999999999 0 0 0 0 0 0 0\n";
        assert_eq!(delta.update(later), NetCounters { rx: 110, tx: 501 });
        // eth0 recreated (counters restart), wlan0 gone, usb0 new: nothing counted twice.
        let reset =
            "eth0: 5 0 0 0 0 0 0 0 6 0 0 0 0 0 0 0\nusb0: 700 0 0 0 0 0 0 0 800 0 0 0 0 0 0 0\n";
        assert_eq!(delta.update(reset), NetCounters::default());
        let next =
            "eth0: 15 0 0 0 0 0 0 0 26 0 0 0 0 0 0 0\nusb0: 701 0 0 0 0 0 0 0 802 0 0 0 0 0 0 0\n";
        assert_eq!(delta.update(next), NetCounters { rx: 11, tx: 22 });
    }

    #[test]
    fn loadavg_gives_averages_and_tasks() {
        assert_eq!(
            parse_loadavg("0.08 0.03 0.00 1/213 4242\n"),
            Some(LoadAvg { one: 0.08, five: 0.03, fifteen: 0.0, tasks: 213 })
        );
        assert_eq!(parse_loadavg("0.08 0.03"), None);
        assert_eq!(parse_loadavg("nan 0 0 1/2 3"), None);
    }

    #[test]
    fn this_host_reads_plausibly() {
        let processes = count_processes();
        let load = parse_loadavg(&std::fs::read_to_string("/proc/loadavg").unwrap()).unwrap();
        assert!(processes >= 1, "{processes}");
        assert!(load.tasks >= processes, "tasks {} < processes {processes}", load.tasks);
        let mut delta = NetDelta::default();
        delta.update(&std::fs::read_to_string("/proc/net/dev").unwrap());
    }
}
