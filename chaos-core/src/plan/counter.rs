//! Per-rule call counters for the counting triggers (`every`, `first`, `after`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts each rule's matching calls, for the `every`, `first` and `after` triggers.
pub trait MatchCounter {
    /// Returns this call's 0-based ordinal among the rule's matching calls, and counts it.
    fn next_ordinal(&self, rule_index: usize) -> u64;
}

/// A single-threaded [`MatchCounter`], for the simulator and tests.
#[derive(Debug, Default)]
pub struct LocalMatchCounter {
    counts: Vec<Cell<u64>>,
}

impl LocalMatchCounter {
    /// Counters for a plan of `rule_count` rules.
    pub fn new(rule_count: usize) -> Self {
        Self {
            counts: (0..rule_count).map(|_| Cell::new(0)).collect(),
        }
    }
}

impl MatchCounter for LocalMatchCounter {
    fn next_ordinal(&self, rule_index: usize) -> u64 {
        self.counts.get(rule_index).map_or(0, |cell| {
            let ordinal = cell.get();
            cell.set(ordinal + 1);
            ordinal
        })
    }
}

/// A thread-safe [`MatchCounter`]. Only rules with counting triggers touch it.
#[derive(Debug, Default)]
pub struct SharedMatchCounter {
    counts: Vec<AtomicU64>,
}

impl SharedMatchCounter {
    /// Counters for a plan of `rule_count` rules.
    pub fn new(rule_count: usize) -> Self {
        Self {
            counts: (0..rule_count).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl MatchCounter for SharedMatchCounter {
    fn next_ordinal(&self, rule_index: usize) -> u64 {
        self.counts
            .get(rule_index)
            .map_or(0, |count| count.fetch_add(1, Ordering::Relaxed))
    }
}
