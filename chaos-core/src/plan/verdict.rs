//! What a plan decided for one call.

use std::time::Duration;

use crate::corrupt::Corruption;
use crate::fault::ErrorKind;

/// The failure a plan decided for a call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Fail with an error.
    Error {
        /// Index of the rule that fired.
        rule: usize,
        /// The error.
        kind: ErrorKind,
    },
    /// Hang until the deadline minus `buffer`, then time out.
    Hang {
        /// Index of the rule that fired.
        rule: usize,
        /// Time left to the caller when the hang ends.
        buffer: Duration,
    },
    /// Replace the response with this status.
    Status {
        /// Index of the rule that fired.
        rule: usize,
        /// The HTTP status.
        status: u16,
    },
    /// Let the call go ahead, then corrupt its response.
    Corrupt {
        /// Index of the rule that fired.
        rule: usize,
        /// The mode and the seed drawn from the decision's keyed word.
        corruption: Corruption,
    },
}

impl Failure {
    /// Index of the rule that fired.
    pub fn rule(&self) -> usize {
        match self {
            Self::Error { rule, .. }
            | Self::Hang { rule, .. }
            | Self::Status { rule, .. }
            | Self::Corrupt { rule, .. } => *rule,
        }
    }
}

/// What a plan decided for one call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Latency to add before the call: the sum of the firing latency rules, plus
    /// [`partition_hold`](Self::partition_hold).
    pub added_latency: Duration,
    /// The failure to inject, if any rule decided one. Boxed to keep the common verdict (no
    /// failure) small: it is returned on every call.
    pub failure: Option<Box<Failure>>,
    /// How many rules fired.
    pub fired: u32,
    /// The part of `added_latency` a partition holds the call in the network before
    /// delivering it: the time left until the latest window end among the partitions that
    /// fired (zero when none did). An adapter that tells the network from the server (the
    /// simulator) delays the call's arrival by it; live code just waits `added_latency`.
    pub partition_hold: Duration,
}

impl Verdict {
    /// Whether nothing is injected.
    pub fn is_pass(&self) -> bool {
        self.fired == 0
    }
}
