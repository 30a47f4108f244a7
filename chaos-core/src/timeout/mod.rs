//! Timeout checks: find the badly tuned timeouts of a call chain before production does.
//!
//! A [`Hop`] is one call: its overall timeout, per-attempt timeout, attempts and backoff, and
//! the calls it makes in turn. [`check`] walks the chain and reports every hop whose worst case
//! exceeds what its caller has left ([`Finding::ExceedsCaller`]), and every call made without
//! any timeout ([`Finding::NoTimeout`]).
//!
//! The worst case of a call, as its caller waits for it, is
//! `min(timeout, attempts x per_attempt + sum of backoff delays)`, where `per_attempt` is the
//! per-attempt timeout, or else the time the callee itself can take (its children's worst
//! cases, in sequence, plus its own work).
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::timeout::{check, Backoff, Finding, Hop};
//! let ms = Duration::from_millis;
//!
//! // API Gateway (29 s) -> checkout Lambda (30 s timeout!) -> orders table, 3 attempts of 10 s.
//! let chain = Hop::new("api").timeout(Duration::from_secs(29)).calls(
//!     Hop::new("checkout").timeout(Duration::from_secs(30)).calls(
//!         Hop::new("orders")
//!             .attempt_timeout(Duration::from_secs(10))
//!             .attempts(3)
//!             .backoff(Backoff::exponential(ms(100), ms(1000))),
//!     ),
//! );
//! let findings = check(&chain);
//! assert!(findings.iter().any(|f| matches!(f, Finding::ExceedsCaller { hop, .. } if hop == "api/checkout")));
//! assert!(findings.iter().any(|f| matches!(f, Finding::ExceedsCaller { hop, .. } if hop == "api/checkout/orders")));
//! ```

use std::fmt;
use std::time::Duration;

use crate::duration::{format_duration, serde_duration, serde_duration_opt};
use serde::{Deserialize, Serialize};

#[cfg(feature = "runtime")]
mod deadline;
#[cfg(feature = "runtime")]
pub use deadline::Deadline;

/// How retries wait between attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// The first delay.
    #[serde(with = "serde_duration")]
    pub base: Duration,
    /// The longest delay.
    #[serde(with = "serde_duration")]
    pub cap: Duration,
    /// Whether the delay doubles each retry (`true`) or stays at `base`.
    #[serde(default = "yes")]
    pub exponential: bool,
}

fn yes() -> bool {
    true
}

impl Backoff {
    /// No wait between attempts.
    pub const NONE: Self = Self {
        base: Duration::ZERO,
        cap: Duration::ZERO,
        exponential: false,
    };

    /// `base x 2^(retry-1)`, capped. Jittered variants wait at most this long, so this is also
    /// their worst case.
    pub fn exponential(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            exponential: true,
        }
    }

    /// The longest wait before retry number `retry` (1 for the first retry).
    pub fn max_delay(&self, retry: u32) -> Duration {
        if self.exponential {
            exponential_ceiling(retry, self.base, self.cap)
        } else {
            self.base.min(self.cap)
        }
    }

    /// The longest total wait over `retries` retries, saturating. Constant time in `retries`:
    /// [`max_delay`](Self::max_delay) stops growing by retry 42 (the doubling stops at 2^40,
    /// and saturates), so the loop adds at most 42 delays, and every later retry waits the
    /// same.
    pub fn total_max_delay(&self, retries: u32) -> Duration {
        let mut total = Duration::ZERO;
        let mut retry = 1;
        while retry <= retries {
            let delay = self.max_delay(retry);
            if delay == self.max_delay(retry + 1) {
                // From here on every retry waits `delay`.
                return total.saturating_add(delay.saturating_mul(retries - retry + 1));
            }
            total = total.saturating_add(delay);
            retry += 1;
        }
        total
    }
}

/// `min(cap, base x 2^(retry - 1))`: the wait before retry number `retry` (1 for the first
/// retry) of a capped exponential backoff, and the most any jittered variant of it waits.
/// The doubling stops after 40 steps and the product saturates, so no input overflows.
///
/// The one definition of this ceiling: the timeout check's worst cases and chaos-sim's
/// backoff policies both use it.
pub fn exponential_ceiling(retry: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 1u64 << retry.saturating_sub(1).min(40);
    let nanos = base.as_nanos().saturating_mul(u128::from(factor));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)).min(cap)
}

/// One call in a chain, with the calls it makes in turn.
///
/// Read from a file, every hop is checked ([`Hop::validate_one`]): a name, at least one
/// attempt, timeouts above zero.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "HopRepr")]
pub struct Hop {
    /// The callee's name.
    pub name: String,
    /// The caller's overall limit for this call, all attempts included.
    #[serde(
        default,
        with = "serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// The caller's limit on each attempt.
    #[serde(
        default,
        with = "serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub attempt_timeout: Option<Duration>,
    /// Attempts, the first included (at least 1).
    #[serde(default = "one")]
    pub attempts: u32,
    /// Wait between attempts.
    #[serde(default = "no_backoff")]
    pub backoff: Backoff,
    /// The callee's own work besides its calls.
    #[serde(default, with = "serde_duration")]
    pub work: Duration,
    /// Whether the callee makes its calls in parallel (fan-out) rather than in sequence.
    #[serde(default)]
    pub parallel: bool,
    /// The calls the callee makes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Hop>,
}

/// The file form of a [`Hop`], checked on the way in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HopRepr {
    // The callee's name.
    name: String,
    // The caller's overall limit for this call, all attempts included.
    #[serde(
        default,
        with = "serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    timeout: Option<Duration>,
    // The caller's limit on each attempt.
    #[serde(
        default,
        with = "serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    attempt_timeout: Option<Duration>,
    // Attempts, the first included (at least 1).
    #[serde(default = "one")]
    attempts: u32,
    // Wait between attempts.
    #[serde(default = "no_backoff")]
    backoff: Backoff,
    // The callee's own work besides its calls.
    #[serde(default, with = "serde_duration")]
    work: Duration,
    // Whether the callee makes its calls in parallel (fan-out) rather than in sequence.
    #[serde(default)]
    parallel: bool,
    // The calls the callee makes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    calls: Vec<Hop>,
}

impl TryFrom<HopRepr> for Hop {
    type Error = HopError;

    fn try_from(repr: HopRepr) -> Result<Self, HopError> {
        let hop = Hop {
            name: repr.name,
            timeout: repr.timeout,
            attempt_timeout: repr.attempt_timeout,
            attempts: repr.attempts,
            backoff: repr.backoff,
            work: repr.work,
            parallel: repr.parallel,
            calls: repr.calls,
        };
        // Its calls were checked as they were read.
        hop.validate_one()?;
        Ok(hop)
    }
}

/// A [`Hop`] that cannot be checked: it names the hop and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("hop {hop:?}, field `{field}`: {message}")]
pub struct HopError {
    /// The hop's path from the root (`"api/checkout"`), or its name.
    pub hop: String,
    /// The field at fault: `name`, `attempts`, `timeout` or `attempt_timeout`.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn one() -> u32 {
    1
}

fn no_backoff() -> Backoff {
    Backoff::NONE
}

impl Hop {
    /// A call to `name`, one attempt, no timeout, no work, no further calls.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            timeout: None,
            attempt_timeout: None,
            attempts: 1,
            backoff: Backoff::NONE,
            work: Duration::ZERO,
            parallel: false,
            calls: Vec::new(),
        }
    }

    /// Sets the overall timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the per-attempt timeout.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Sets the number of attempts (at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Sets the backoff between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the callee's own work time.
    pub fn work(mut self, work: Duration) -> Self {
        self.work = work;
        self
    }

    /// Makes the callee's calls run in parallel.
    pub fn parallel(mut self) -> Self {
        self.parallel = true;
        self
    }

    /// Adds a call the callee makes.
    pub fn calls(mut self, hop: Hop) -> Self {
        self.calls.push(hop);
        self
    }

    /// Checks this hop alone (not its calls): a non-blank name, at least one attempt,
    /// timeouts above zero. Errors name the hop and the field.
    pub fn validate_one(&self) -> Result<(), HopError> {
        self.validate_at(&self.name)
    }

    /// Checks this hop and every call below it; errors carry the hop's path.
    pub fn validate(&self) -> Result<(), HopError> {
        self.validate_tree(&self.name)
    }

    fn validate_tree(&self, path: &str) -> Result<(), HopError> {
        self.validate_at(path)?;
        for hop in &self.calls {
            hop.validate_tree(&format!("{path}/{}", hop.name))?;
        }
        Ok(())
    }

    fn validate_at(&self, path: &str) -> Result<(), HopError> {
        let error = |field, message: &str| {
            Err(HopError {
                hop: path.to_owned(),
                field,
                message: message.to_owned(),
            })
        };
        if self.name.trim().is_empty() {
            return error(
                "name",
                "is empty; name the callee, such as \"orders-table\"",
            );
        }
        if self.attempts == 0 {
            return error(
                "attempts",
                "is 0; attempts count the first try, so write at least 1",
            );
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return error(
                "timeout",
                "is 0, which fails every call; give a limit above zero or omit it",
            );
        }
        if self.attempt_timeout.is_some_and(|t| t.is_zero()) {
            return error(
                "attempt_timeout",
                "is 0, which fails every attempt; give a limit above zero or omit it",
            );
        }
        Ok(())
    }

    /// How long the callee can take for one attempt if nothing cuts it short: its calls (in
    /// sequence, or the slowest when parallel) plus its own work. `None` when unbounded: a
    /// leaf with no declared work is opaque (a remote service that may hang), and so is any
    /// callee below which such a call has no timeout.
    pub fn callee_worst_case(&self) -> Option<Duration> {
        if self.calls.is_empty() && self.work.is_zero() {
            return None;
        }
        let mut total = Duration::ZERO;
        for hop in &self.calls {
            let worst = hop.worst_case()?;
            total = if self.parallel {
                total.max(worst)
            } else {
                total.saturating_add(worst)
            };
        }
        Some(total.saturating_add(self.work))
    }

    /// How long the caller can wait for this call, attempts and backoff included; `None` when
    /// unbounded.
    pub fn worst_case(&self) -> Option<Duration> {
        let callee = self.callee_worst_case();
        let per_attempt = match self.attempt_timeout {
            Some(limit) => Some(callee.map_or(limit, |w| w.min(limit))),
            None => callee,
        };
        let all_attempts = per_attempt.map(|per| {
            per.saturating_mul(self.attempts.max(1))
                .saturating_add(self.backoff.total_max_delay(self.attempts.max(1) - 1))
        });
        match (all_attempts, self.timeout) {
            (Some(total), Some(limit)) => Some(total.min(limit)),
            (total, limit) => total.or(limit),
        }
    }
}

/// A problem [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// The call can take longer than its caller has left: the caller times out first, and its
    /// retries (if any) pile onto work still running below.
    ExceedsCaller {
        /// Path of the call, such as `"api/checkout/orders"`.
        hop: String,
        /// How long the call can take.
        #[serde(with = "serde_duration")]
        worst_case: Duration,
        /// What the caller has left when it makes the call.
        #[serde(with = "serde_duration")]
        caller_has_left: Duration,
    },
    /// The call has neither a timeout nor a per-attempt timeout.
    NoTimeout {
        /// Path of the call.
        hop: String,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExceedsCaller {
                hop,
                worst_case,
                caller_has_left,
            } => write!(
                f,
                "{hop}: can take {} but its caller has only {} left; lower its timeout or attempts, \
                 or raise the caller's timeout",
                format_duration(*worst_case),
                format_duration(*caller_has_left)
            ),
            Self::NoTimeout { hop } => write!(
                f,
                "{hop}: no timeout; a hung callee holds the caller until its own limit"
            ),
        }
    }
}

/// Checks a call chain rooted at `root` (the entry point's own limit is `root.timeout`).
pub fn check(root: &Hop) -> Vec<Finding> {
    let mut findings = Vec::new();
    if root.timeout.is_none() && root.attempt_timeout.is_none() {
        findings.push(Finding::NoTimeout {
            hop: root.name.clone(),
        });
    }
    let budget = budget_of(root);
    check_children(root, &root.name, budget, &mut findings);
    findings
}

/// What a callee has for one attempt: the tighter of its per-attempt and overall timeouts.
fn budget_of(hop: &Hop) -> Option<Duration> {
    match (hop.attempt_timeout, hop.timeout) {
        (Some(attempt), Some(overall)) => Some(attempt.min(overall)),
        (attempt, overall) => attempt.or(overall),
    }
}

fn check_children(caller: &Hop, path: &str, budget: Option<Duration>, findings: &mut Vec<Finding>) {
    let mut spent = caller.work;
    for hop in &caller.calls {
        let hop_path = format!("{path}/{}", hop.name);
        if hop.timeout.is_none() && hop.attempt_timeout.is_none() {
            findings.push(Finding::NoTimeout {
                hop: hop_path.clone(),
            });
        }
        let worst = hop.worst_case();
        if let (Some(budget), Some(worst)) = (budget, worst) {
            let left = budget.saturating_sub(spent);
            if worst > left {
                findings.push(Finding::ExceedsCaller {
                    hop: hop_path.clone(),
                    worst_case: worst,
                    caller_has_left: left,
                });
            }
        }
        if !caller.parallel {
            spent = spent.saturating_add(worst.unwrap_or(Duration::ZERO));
        }
        let own_budget = budget_of(hop);
        check_children(hop, &hop_path, own_budget, findings);
    }
}

#[cfg(test)]
mod tests;
