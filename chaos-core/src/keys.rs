//! Request keys for calls that carry no request id: [`UniqueKeys`].
//!
//! # The constant-key trap
//!
//! A decision is a pure function of `(seed, rule, request key, site, attempt)`. Give every call
//! the same key (`Call::new(0, ..)`, or a key hashed from a header that is always absent) and
//! every call gets the same roll: `probability = 0.1` then injects into all calls or into none
//! (0 of 1000), never into one in ten. Keys must differ per logical request:
//!
//! * hash a request id the caller already has ([`hash_str`](crate::advanced::hash_str) of an
//!   `x-request-id` or a trace id): the best choice, as a retried request keeps its id and a
//!   recorded id replays its decision;
//! * when there is none, draw a fresh key per call from [`UniqueKeys`] (opt in): a counter
//!   mixed with a seed, so a sequential run with the same seed sees the same keys in the same
//!   order (replayable), while under concurrency which request gets which key follows arrival
//!   order (as counting triggers do, see ARCHITECTURE.md, determinism rule 2).
//!
//! Retries of one request should keep its key and raise the attempt number instead
//! ([`Call::attempt`](crate::Call::attempt)), so each retry rolls anew and replays.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::decision::mix64;

/// A source of distinct request keys: the `n`-th key is a fixed mix of `(seed, n)`, so the
/// sequence replays under the same seed. Clones share the counter.
///
/// ```
/// use chaos_core::{Call, Injector, Plan, Rule, UniqueKeys, fault::ErrorKind};
///
/// let injector = Injector::new(Plan::new(3).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.1)))?;
/// let keys = UniqueKeys::new(3);
/// let injected = (0..1000)
///     .filter(|_| injector.decide(&Call::new(keys.next_key(), "orders")).failure.is_some())
///     .count();
/// assert!((50..150).contains(&injected), "{injected}"); // not 0, not 1000
/// // The same seed replays the same keys.
/// assert_eq!(UniqueKeys::new(3).next_key(), UniqueKeys::new(3).next_key());
/// # Ok::<(), chaos_core::PlanError>(())
/// ```
#[derive(Clone, Debug)]
pub struct UniqueKeys {
    seed: u64,
    next: Arc<AtomicU64>,
}

impl UniqueKeys {
    /// Keys derived from `seed`, starting at the first of its sequence.
    pub fn new(seed: u64) -> Self {
        Self {
            seed: mix64(seed ^ KEY_DOMAIN),
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The next key: distinct from every earlier key of this source (a bijective mix of the
    /// counter, which wraps only after 2^64 keys).
    pub fn next_key(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // mix64 is a bijection, so distinct counters give distinct keys for one seed.
        mix64(n ^ self.seed)
    }

    /// How many keys have been handed out.
    pub fn issued(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

impl Default for UniqueKeys {
    /// Keys from seed 0.
    fn default() -> Self {
        Self::new(0)
    }
}

/// Separates these keys from other uses of the same seed (a plan's seed, say).
const KEY_DOMAIN: u64 = 0x6b65_7973_2d75_6e71; // "keys-unq"

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_replay_under_a_seed() {
        let keys = UniqueKeys::new(9);
        let first: Vec<u64> = (0..1000).map(|_| keys.next_key()).collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
        let again = UniqueKeys::new(9);
        assert!(first.iter().all(|&key| key == again.next_key()));
        assert_ne!(UniqueKeys::new(10).next_key(), first[0]);
        assert_eq!(keys.issued(), 1000);
        // Clones share the sequence: no key is handed out twice.
        let clone = keys.clone();
        assert_ne!(clone.next_key(), keys.next_key());
    }
}
