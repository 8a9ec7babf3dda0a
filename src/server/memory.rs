//! How the process hands memory back: glibc's allocator, bounded and trimmed.
//!
//! Three settings, measured with the hostile-traffic soak (BENCHMARKS.md, "Soak"):
//! - **Arenas.** glibc gives each thread that allocates under contention its own arena (up to
//!   eight per core) and keeps what is freed in each for reuse; the StatsD thread, the
//!   runtime's workers and the store's writer each grew one and held ~37 MiB of freed memory.
//!   Vitals allows [`ARENA_MAX`].
//! - **Large blocks.** glibc raises its mmap threshold each time a large block is freed, so
//!   after a few big request bodies every later one is carved out of an arena and leaves holes
//!   there. A fixed [`MMAP_THRESHOLD`] keeps blocks from that size up (bodies, rendered pages,
//!   serialised answers) in their own mappings, returned whole when freed.
//! - **Trimming.** Every [`TRIM_EVERY`] `malloc_trim` returns the arenas' free pages, also
//!   those in the middle of a heap, not only at its top.
//!
//! Elsewhere (musl, other systems) all three are no-ops.
//!
//! This is the one module allowed `unsafe` (Cargo.toml denies it elsewhere): calls into
//! glibc's `mallopt` and `malloc_trim`, which take no pointers.

#![allow(unsafe_code)]

use std::time::{Duration, Instant};

/// Arenas glibc may create: the main one and one more for the threads that contend with it.
pub const ARENA_MAX: i32 = 2;

/// Blocks of this size and larger get their own mapping (glibc's default starts here too, but
/// moves up to 32 MiB as large blocks are freed).
pub const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Interval between two trims.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Bytes the allocator really takes for a block of `n` bytes (0: none is made): glibc's chunk,
/// `n` plus its 8-byte header rounded up to 16, at least 32 on 64-bit systems. Estimates of
/// what data holds (the statistics' byte budget) count this, not just `n`: for the many small
/// blocks of sketch bins, the difference was a quarter of the total.
pub const fn malloc_chunk(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let chunk = (n.saturating_add(8 + 15)) & !15;
    if chunk < 32 {
        32
    } else {
        chunk
    }
}

/// Sets the arenas and the mmap threshold. Call first thing in `main`, before any other thread
/// exists.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; it is called before other threads
    // exist, as glibc recommends for M_ARENA_MAX.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns the allocator's free pages to the system; how long it took.
pub fn trim() -> Duration {
    let started = Instant::now();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
    started.elapsed()
}

/// Starts the thread that trims every [`TRIM_EVERY`] for the life of the process.
pub fn spawn_trimmer() -> std::io::Result<()> {
    std::thread::Builder::new().name("vitals-trim".into()).spawn(|| loop {
        std::thread::sleep(TRIM_EVERY);
        let took = trim();
        tracing::debug!(took_us = took.as_micros() as u64, "Returned free memory.");
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_chunk_estimate_is_what_glibc_takes() {
        let mut exact = 0;
        for n in 1..=2_000usize {
            let block: Vec<u8> = Vec::with_capacity(n);
            // SAFETY: the pointer is a live block of the global allocator (glibc's malloc).
            let usable = unsafe { libc::malloc_usable_size(block.as_ptr() as *mut libc::c_void) };
            // The chunk is the usable bytes plus the 8-byte header. glibc may hand out a free
            // chunk a little larger than asked when the rest would be too small to keep (other
            // tests allocate meanwhile), never a smaller one.
            let chunk = usable + 8;
            assert!(malloc_chunk(n) <= chunk, "a block of {n} bytes took {chunk}");
            exact += usize::from(malloc_chunk(n) == chunk);
        }
        assert!(exact >= 1_900, "{exact} of 2,000 blocks as estimated");
        assert_eq!(malloc_chunk(0), 0);
    }

    #[test]
    fn a_trim_after_freeing_lowers_the_resident_size() {
        // Many small blocks in the middle of the heap: freeing them leaves pages that only a
        // trim (not the top-of-heap shrink after `free`) gives back.
        let rss = || -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let mut blocks: Vec<Vec<u8>> = (0..200_000).map(|i| vec![i as u8; 400]).collect();
        let keep_top: Vec<u8> = vec![1; 1000];
        let before_free = rss();
        for b in blocks.iter_mut() {
            *b = Vec::new();
        }
        drop(blocks);
        let freed = rss();
        trim();
        let trimmed = rss();
        assert!(keep_top[0] == 1);
        assert!(
            trimmed + 40_000 < freed.max(before_free),
            "RSS {before_free} kB in use, {freed} kB after free, {trimmed} kB after the trim"
        );
    }
}
