//! Host samples in the store: the one list of stored fields (how each is read from and written
//! back into a [`Sample`]), and the rollup of samples into minute and hour rows.
//!
//! The list is append-only: a field added later needs a migration adding its columns, and its
//! old rows read back as "no value".

use crate::model::live::Sample;

/// A stored scalar of the live sample.
pub struct HostField {
    /// Column name, and the name in `/api/v1/history/host?fields=`.
    pub name: &'static str,
    pub get: fn(&Sample) -> Option<f64>,
    pub set: fn(&mut Sample, f64),
}

macro_rules! field {
    ($name:literal, $($path:ident).+, $ty:ty) => {
        HostField {
            name: $name,
            get: |s| Some(s.$($path).+ as f64),
            set: |s, v| s.$($path).+ = v as $ty,
        }
    };
}

/// Every stored field, in column order.
pub const HOST_FIELDS: &[HostField] = &[
    field!("cpu_pct", system.cpu_pct, f32),
    field!("memory_used_bytes", system.memory_used_bytes, u64),
    field!("memory_total_bytes", system.memory_total_bytes, u64),
    field!("memory_pct", system.memory_pct, f32),
    field!("swap_used_bytes", system.swap_used_bytes, u64),
    field!("swap_total_bytes", system.swap_total_bytes, u64),
    field!("load_avg_1", system.load_avg_1, f64),
    field!("load_avg_5", system.load_avg_5, f64),
    field!("load_avg_15", system.load_avg_15, f64),
    field!("net_rx_bytes_per_sec", system.net_rx_bytes_per_sec, f64),
    field!("net_tx_bytes_per_sec", system.net_tx_bytes_per_sec, f64),
    field!("disk_read_bytes_per_sec", system.disk_read_bytes_per_sec, f64),
    field!("disk_write_bytes_per_sec", system.disk_write_bytes_per_sec, f64),
    field!("process_count", system.process_count, u32),
    field!("thread_count", system.thread_count, u32),
    field!("self_cpu_pct", system.self_cpu_pct, f32),
    field!("self_rss_bytes", system.self_rss_bytes, u64),
    field!("actions_per_min", actions.actions_per_min, f64),
    field!("action_avg_duration_ms", actions.avg_duration_ms, f64),
    HostField {
        name: "action_success_pct",
        get: |s| s.actions.success_pct,
        set: |s, v| s.actions.success_pct = Some(v),
    },
    field!("action_queue_depth", actions.queue_depth, f64),
    field!("action_errors", actions.error_count, u64),
    field!("events_queued", events.queued, f64),
    field!("events_processed", events.processed, u64),
    field!("events_failed", events.failed, u64),
    field!("event_avg_processing_ms", events.avg_processing_ms, f64),
];

/// The field called `name`.
pub fn field_index(name: &str) -> Option<usize> {
    HOST_FIELDS.iter().position(|f| f.name == name)
}

/// A sample rebuilt from stored values (`None`: no value). Per-core figures are in
/// `per_core`; the events' `queue_depth` mirrors `queued`, as live.
pub fn sample_from(at_ms: u64, seq: u64, values: &[Option<f64>], per_core: Vec<f32>) -> Sample {
    let mut sample = Sample { at_ms, seq, ..Default::default() };
    for (field, value) in HOST_FIELDS.iter().zip(values) {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            (field.set)(&mut sample, v);
        }
    }
    sample.system.per_core_pct = per_core;
    sample.events.queue_depth = sample.events.queued;
    sample
}

/// Per-core figures as stored: little-endian f32s.
pub fn encode_cores(cores: &[f32]) -> Vec<u8> {
    cores.iter().flat_map(|c| c.to_le_bytes()).collect()
}

pub fn decode_cores(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .filter(|v| v.is_finite())
        .collect()
}

/// Min, max, mean and last of one field over a period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldRollup {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub last: f64,
    /// Values folded in (weights, for rolling minutes into hours).
    pub weight: f64,
}

impl FieldRollup {
    fn of(v: f64, weight: f64) -> Self {
        FieldRollup { min: v, max: v, mean: v, last: v, weight }
    }

    fn fold(&mut self, other: &FieldRollup) {
        let weight = self.weight + other.weight;
        self.mean = if weight > 0.0 {
            (self.mean * self.weight + other.mean * other.weight) / weight
        } else {
            self.mean
        };
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.last = other.last;
        self.weight = weight;
    }
}

/// Rollups of every field over a period, folded oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostRollup {
    /// Raw samples in the period.
    pub samples: u64,
    pub fields: Vec<Option<FieldRollup>>,
}

impl HostRollup {
    /// Folds one raw sample's values (in [`HOST_FIELDS`] order).
    pub fn add_values(&mut self, values: &[Option<f64>]) {
        self.samples += 1;
        self.fields.resize(HOST_FIELDS.len(), None);
        for (slot, v) in self.fields.iter_mut().zip(values) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let one = FieldRollup::of(v, 1.0);
                match slot {
                    Some(acc) => acc.fold(&one),
                    None => *slot = Some(one),
                }
            }
        }
    }

    /// Folds a finer rollup (a minute into an hour), weighting means by its samples.
    pub fn add_rollup(&mut self, finer: &HostRollup) {
        self.samples += finer.samples;
        self.fields.resize(HOST_FIELDS.len(), None);
        for (slot, f) in self.fields.iter_mut().zip(&finer.fields) {
            if let Some(f) = f {
                match slot {
                    Some(acc) => acc.fold(f),
                    None => *slot = Some(*f),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_through_its_stored_value() {
        let mut s = Sample { at_ms: 5, seq: 9, ..Default::default() };
        s.system.cpu_pct = 12.5;
        s.system.memory_used_bytes = 1 << 33;
        s.system.per_core_pct = vec![1.0, 2.0];
        s.actions.success_pct = Some(99.5);
        s.events.queued = 4.0;
        s.events.queue_depth = 4.0;
        s.events.failed = 3;
        let values: Vec<Option<f64>> = HOST_FIELDS.iter().map(|f| (f.get)(&s)).collect();
        let back = sample_from(5, 9, &values, decode_cores(&encode_cores(&s.system.per_core_pct)));
        assert_eq!(back, s);
        let mut unnamed = std::collections::HashSet::new();
        assert!(HOST_FIELDS.iter().all(|f| unnamed.insert(f.name)), "names are unique");
    }

    #[test]
    fn rollups_keep_min_max_mean_and_last_and_minutes_fold_into_hours() {
        let idx = field_index("cpu_pct").unwrap();
        let mut values = vec![None; HOST_FIELDS.len()];
        let mut minute = HostRollup::default();
        for v in [10.0, 30.0, 20.0] {
            values[idx] = Some(v);
            minute.add_values(&values);
        }
        let cpu = minute.fields[idx].unwrap();
        assert_eq!((cpu.min, cpu.max, cpu.mean, cpu.last), (10.0, 30.0, 20.0, 20.0));
        let mut other = HostRollup::default();
        values[idx] = Some(80.0);
        other.add_values(&values);
        let mut hour = HostRollup::default();
        hour.add_rollup(&minute);
        hour.add_rollup(&other);
        let cpu = hour.fields[idx].unwrap();
        assert_eq!((cpu.min, cpu.max, cpu.mean, cpu.last), (10.0, 80.0, 35.0, 80.0));
        assert_eq!(hour.samples, 4);
        assert!(hour.fields[field_index("action_success_pct").unwrap()].is_none());
    }
}
