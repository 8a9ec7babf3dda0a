//! The rolling in-memory history: a ring of the newest samples whose memory is fixed by its
//! capacity however long the server runs.

use std::collections::VecDeque;

use crate::model::live::Sample;

/// A ring buffer of samples, oldest first.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    samples: VecDeque<Sample>,
}

impl History {
    /// A history of at most `capacity` samples (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        History { capacity, samples: VecDeque::with_capacity(capacity) }
    }

    /// Appends a sample, dropping the oldest when full.
    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The newest `n` samples, oldest first.
    pub fn newest(&self, n: usize) -> Vec<Sample> {
        let skip = self.samples.len().saturating_sub(n);
        self.samples.iter().skip(skip).cloned().collect()
    }

    /// The samples after the one numbered `seq` (at most the newest `n`), oldest first; `None`
    /// when that sample is no longer (or not) held.
    pub fn after(&self, seq: u64, n: usize) -> Option<Vec<Sample>> {
        let at = self.samples.iter().rposition(|s| s.seq == seq)?;
        let newer = self.samples.len() - at - 1;
        let skip = at + 1 + newer.saturating_sub(n);
        Some(self.samples.iter().skip(skip).cloned().collect())
    }

    /// Whether the sample numbered `seq` is held.
    pub fn holds(&self, seq: u64) -> bool {
        self.samples.iter().rev().any(|s| s.seq == seq)
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seq: u64) -> Sample {
        Sample { seq, ..Default::default() }
    }

    #[test]
    fn keeps_the_newest_up_to_capacity() {
        let mut h = History::new(3);
        assert!(h.is_empty() && h.latest().is_none());
        for seq in 1..=10 {
            h.push(s(seq));
            assert!(h.len() <= 3);
        }
        assert_eq!(h.latest().unwrap().seq, 10);
        let seqs: Vec<u64> = h.newest(usize::MAX).iter().map(|x| x.seq).collect();
        assert_eq!(seqs, vec![8, 9, 10]);
        let seqs: Vec<u64> = h.newest(2).iter().map(|x| x.seq).collect();
        assert_eq!(seqs, vec![9, 10]);
        assert_eq!(h.newest(0).len(), 0);
    }

    #[test]
    fn capacity_never_grows() {
        let mut h = History::new(0);
        assert_eq!(h.capacity(), 1);
        for seq in 0..100_000 {
            h.push(s(seq));
        }
        assert_eq!(h.len(), 1);
        assert!(h.samples.capacity() < 16);
    }

    #[test]
    fn after_gives_the_newer_samples_or_none_when_the_sample_is_gone() {
        let mut h = History::new(5);
        for seq in 1..=7 {
            h.push(s(seq));
        }
        let seqs = |v: Option<Vec<Sample>>| v.map(|v| v.iter().map(|s| s.seq).collect::<Vec<_>>());
        assert_eq!(seqs(h.after(5, 10)), Some(vec![6, 7]));
        assert_eq!(seqs(h.after(3, 1)), Some(vec![7]), "at most the newest n");
        assert_eq!(seqs(h.after(7, 10)), Some(vec![]), "nothing newer");
        assert_eq!(seqs(h.after(2, 10)), None, "no longer held");
        assert_eq!(seqs(h.after(9, 10)), None, "not (yet) held: another server's numbers");
    }
}
