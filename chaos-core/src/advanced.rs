//! Building blocks for adapters and simulators: the pinned hash functions, the raw failure a
//! plan decided, and call counters. Applications need none of this; [`crate::Injector`] and
//! [`crate::Verdict::effect`] cover them.
//!
//! These items are stable in behaviour (the hashes are pinned by
//! `chaos-core/tests/value_stability.rs`: the same inputs give the same words on every
//! platform and release), but their signatures may change more freely than the crate root's.
//!
//! * [`mix64`], [`hash_str`], [`hash_str_const`]: SplitMix64's finalizer and the string hash
//!   every call site and rule name goes through; a simulator derives its own streams from
//!   them so that one seed means one thing everywhere.
//! * [`call_word`], [`DecisionKey`], [`Probability`], [`stream_for`]: the decision itself, a
//!   keyed word compared with a 64-bit threshold, and the ChaCha8 stream a firing rule draws
//!   its latency from.
//! * [`Failure`]: which failing rule won and what it asked for, before [`crate::effect`]
//!   turns it into an outcome.
//! * [`MatchCounter`], [`LocalMatchCounter`], [`SharedMatchCounter`]: the call counts behind
//!   the `every`, `first` and `after` triggers; [`crate::CompiledPlan::evaluate`] takes one.

pub use crate::decision::{
    DecisionKey, Probability, call_word, hash_str, hash_str_const, mix64, stream_for,
};
#[cfg(feature = "runtime")]
pub use crate::injector::apply_verdict;
pub use crate::plan::counter::{LocalMatchCounter, MatchCounter, SharedMatchCounter};
pub use crate::plan::verdict::Failure;
