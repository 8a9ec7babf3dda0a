//! How full the host's disks are: the mounted block-device file systems from `/proc/mounts`,
//! each measured with `statvfs`. The parser is pure, for tests on captured text.

use std::collections::HashSet;

/// Mount points of file systems on block devices (`/dev/...`), each device once.
pub fn parse_mounts(text: &str) -> Vec<&str> {
    let mut seen = HashSet::new();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount) = (fields.next()?, fields.next()?);
            (device.starts_with("/dev/") && !device.starts_with("/dev/loop") && seen.insert(device))
                .then_some(mount)
        })
        .collect()
}

/// Used share of the fullest mounted disk, 0..=100 (space available to unprivileged users
/// counts as free, as `df` shows it); `None` when none can be read.
pub fn fullest_used_pct() -> Option<f64> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    parse_mounts(&mounts)
        .into_iter()
        .filter_map(|mount| {
            // /proc/mounts escapes spaces as \040.
            let path = mount.replace("\\040", " ");
            let st = nix::sys::statvfs::statvfs(path.as_str()).ok()?;
            let frag = st.fragment_size() as f64;
            let total = st.blocks() as f64 * frag;
            let free = st.blocks_free() as f64 * frag;
            let avail = st.blocks_available() as f64 * frag;
            let used = total - free;
            let usable = used + avail;
            (usable > 0.0).then(|| (100.0 * used / usable).clamp(0.0, 100.0))
        })
        .max_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_devices_once_each_and_no_virtual_file_systems() {
        let text = "proc /proc proc rw 0 0\n/dev/vda1 / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n\
                    /dev/vda1 /var/lib/docker ext4 rw 0 0\n/dev/vdb /data\\040x xfs rw 0 0\n\
                    /dev/loop0 /snap/core squashfs ro 0 0\n";
        assert_eq!(parse_mounts(text), vec!["/", "/data\\040x"]);
    }

    #[test]
    fn this_host_has_a_measurable_disk() {
        let pct = fullest_used_pct().unwrap();
        assert!((0.0..=100.0).contains(&pct));
    }
}
