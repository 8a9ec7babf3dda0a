//! The statistics' byte budget (`--max-statistics-mb`): one bound on the estimated bytes of the
//! operation and event windows together (buckets, sketch bins, names; see
//! `OperationRegistry::memory_bytes`), whatever arrives.
//!
//! Two rules keep it. While the statistics hold their budget, samples of *new* series are
//! dropped and counted (`dropped_by_memory`, reason `statistics_budget`); known series keep
//! counting. Known series still grow (a busy series fills its ladder of buckets towards a full
//! hour), so every prune (every second) counts the bytes afresh and, when they are over the
//! budget, drops the in-memory windows of the series idle longest until a tenth of the budget
//! is free again (`statistics_evicted`). An evicted series loses its live windows only: what
//! the store has not been handed of it goes to the spool first, and a new sample starts it
//! afresh. Between two
//! prunes the bytes can pass the budget by what known series add in those seconds.

use std::cmp::Reverse;

use super::{forget_tag_set, Inner, TimingKind};

/// Default budget: 12 MiB, chosen for the 64 MiB RSS target of the whole process under the
/// hostile-traffic soak (BENCHMARKS.md, "Soak"). The estimate counts the blocks the allocator
/// really takes (`server::memory::malloc_chunk`), not only the bytes asked for.
pub const DEFAULT_MAX_STATISTICS_BYTES: usize = 12 * 1024 * 1024;

impl Inner {
    /// Estimated bytes of the operation and event statistics, as of the last prune plus the
    /// series added since.
    pub(super) fn statistics_bytes(&self) -> usize {
        self.operations.memory_bytes() + self.events.memory_bytes()
    }

    /// Whether a new operation or event series fits the byte budget.
    pub(super) fn statistics_room(&self) -> bool {
        self.statistics_bytes() < self.limits.max_statistics_bytes
    }

    /// Over the budget: evicts the series idle longest (the biggest first among equally idle)
    /// until a tenth of the budget is free.
    pub(super) fn enforce_statistics_budget(&mut self) {
        let max = self.limits.max_statistics_bytes;
        let held = self.statistics_bytes();
        if held <= max {
            return;
        }
        let mut excess = held - (max - max / 10);
        let mut idle: Vec<(u64, Reverse<usize>, TimingKind, Box<str>)> = Vec::new();
        for kind in [TimingKind::Operation, TimingKind::Event] {
            idle.extend(
                self.registry(kind)
                    .recency()
                    .map(|(key, newest, bytes)| (newest, Reverse(bytes), kind, Box::from(key))),
            );
        }
        idle.sort_unstable_by_key(|c| (c.0, c.1));
        for (_, _, kind, key) in idle {
            if excess == 0 {
                break;
            }
            let (registry, spool) = match kind {
                TimingKind::Operation => (&mut self.operations, &mut self.spool),
                TimingKind::Event => (&mut self.events, &mut self.spool),
            };
            let freed = registry.evict(&key, |at_ms, rollup| {
                if let Some(spool) = spool.as_mut() {
                    // A full spool refuses the minute and counts its samples as dropped.
                    let _ = spool.add_rollup(kind.series_kind(), &key, at_ms, rollup);
                }
            });
            excess = excess.saturating_sub(freed);
            forget_tag_set(&mut self.tag_sets[usize::from(kind == TimingKind::Event)], &key);
            self.statistics_evicted += 1;
        }
    }
}
