//! A call step and its resilience: retries (counted, bounded by time, the SDK's standard
//! mode), retry budgets, the SDK quota's scope, hedges and circuit breakers.

use super::Step;
use std::time::Duration;

/// Backoff between retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// Wait `base` every time.
    None,
    /// `min(cap, base * 2^n)`.
    Exponential,
    /// `random(0, min(cap, base * 2^n))`.
    FullJitter,
    /// `v/2 + random(0, v/2)` with `v = min(cap, base * 2^n)`.
    EqualJitter,
    /// `min(cap, random(base, previous * 3))`.
    DecorrelatedJitter,
    /// No wait at all: the retry is sent as soon as the failure is known.
    Immediate,
}

/// Retry policy of a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Retry {
    /// One attempt only.
    None,
    /// Up to `max_attempts` attempts (the first included) with `backoff` between them.
    Backoff {
        /// Attempts including the first.
        max_attempts: u32,
        /// Backoff shape.
        backoff: BackoffKind,
        /// Base delay.
        base: Duration,
        /// Largest delay.
        cap: Duration,
    },
    /// The AWS SDK standard mode (FACTS.md): 3 attempts, full jitter with a 1 s base and a
    /// 20 s cap, and a retry quota of 500 (throttle retry costs 5, other retries 10). As
    /// aws-smithy-runtime does, the client holds its latest retry's permit (a new one
    /// replaces it, and the old tokens are gone) until its next success returns it, even
    /// across a failed operation; a success holding no permit gives 1 back. Which clients share a bucket: [`CallStep::quota_scope()`].
    SdkStandard,
    /// Retries until an attempt succeeds, bounded by time instead of a count: a retry is sent
    /// only if it starts (after its backoff) before the bound. A call still makes at most
    /// [`MAX_ATTEMPTS_UNTIL_SUCCESS`] attempts, so a retry loop that takes no time ends.
    UntilSuccess {
        /// The time bound.
        within: RetryWithin,
        /// Backoff shape.
        backoff: BackoffKind,
        /// Base delay.
        base: Duration,
        /// Largest delay.
        cap: Duration,
    },
}

/// The most attempts one call makes under [`Retry::UntilSuccess`] (hedges and failover
/// included); the call then fails with its last attempt's cause.
pub const MAX_ATTEMPTS_UNTIL_SUCCESS: u32 = 60_000;

/// The time bound of [`Retry::UntilSuccess`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryWithin {
    /// Until the caller's deadline: the invoking function's timeout.
    Deadline,
    /// For this long after the call began (and never past the caller's deadline).
    Elapsed(Duration),
}

/// A client-side limit on retries, shared by every call a function makes to one dependency
/// in one region (its client), usable with every retry policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RetryBudget {
    /// gRPC's retry throttling (gRFC A6): the client starts with `max_tokens`; every attempt
    /// that fails with a retryable error takes 1 token (not below 0), every success adds
    /// `token_ratio` (not above `max_tokens`); a retry is allowed only while more than
    /// `max_tokens / 2` tokens are left. Tokens are counted in thousandths, as gRPC does.
    TokenBucket {
        /// Tokens at the start and at most (gRPC: above 0, at most 1000).
        max_tokens: f64,
        /// Tokens a success adds back (gRPC: above 0; kept to 3 decimals).
        token_ratio: f64,
    },
    /// Finagle's `RetryBudget`: retries may add up to `percent` of the requests (first
    /// attempts) of the last `ttl`, plus a reserve of `min_retries_per_s` retries per
    /// second; requests and retries are counted in a window of 10 slices over `ttl`.
    Percent {
        /// Retries per request allowed, as a fraction (Finagle's default: 0.2), 0 to 10.
        percent: f64,
        /// Retries per second always allowed (Finagle's default: 10).
        min_retries_per_s: f64,
        /// The window (Finagle's default: 10 s; 1 s to 60 s).
        ttl: Duration,
    },
}

impl RetryBudget {
    /// gRPC's retry throttling with `max_tokens` and `token_ratio`.
    pub fn grpc(max_tokens: f64, token_ratio: f64) -> Self {
        Self::TokenBucket {
            max_tokens,
            token_ratio,
        }
    }
    /// Finagle's retry budget with its defaults: 20% of requests, 10 retries per second,
    /// over 10 s.
    pub fn finagle_default() -> Self {
        Self::Percent {
            percent: 0.2,
            min_retries_per_s: 10.0,
            ttl: Duration::from_secs(10),
        }
    }
}

/// Which calls share an SDK standard-mode retry quota (token bucket and held permit).
///
/// The SDK keeps one bucket per retry partition (service and Region by default) in a
/// process, and each client holds one retry permit. A Lambda execution environment is one
/// process: its client and bucket see only its own invocations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// One quota per execution environment, retry partition and Region served: what the SDK
    /// does on Lambda (the default). A dependency is its own partition unless it names one
    /// ([`Dependency::retry_partition`](crate::model::Dependency::retry_partition)).
    #[default]
    Environment,
    /// One quota per function, retry partition and Region, shared by all of the function's
    /// environments: as if one long-running process with one client served all of its
    /// concurrent work (the simulator's behaviour before it kept quotas per environment).
    Function,
}

/// A second (or further) attempt sent when the first has not answered after `after`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hedge {
    /// Delay before hedging.
    pub after: Duration,
    /// Hedged attempts at most (1 by default).
    pub max_extra: u32,
}

/// A circuit breaker per call site.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreaker {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before letting probes through.
    pub open_for: Duration,
    /// Probe calls allowed while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

/// A dependency call with its client resilience.
#[derive(Clone, Debug)]
pub struct CallStep {
    /// The dependency called.
    pub dependency: String,
    /// Operation name (used by fault selectors), `"call"` by default.
    pub operation: String,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Retry policy.
    pub retry: Retry,
    /// Hedging.
    pub hedge: Option<Hedge>,
    /// Circuit breaker.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// On final failure, succeed with a fallback value instead (counted as "fallback served").
    pub fallback: bool,
    /// On final failure, try the same dependency in this region (with a fresh retry budget).
    pub failover: Option<String>,
    /// A limit on retries shared by the function's calls to this dependency and region,
    /// with any retry policy (on top of `sdk_standard`'s own quota).
    pub retry_budget: Option<RetryBudget>,
    /// Which calls share the retry quota of [`Retry::SdkStandard`] (unused with other
    /// retry policies).
    pub quota_scope: QuotaScope,
}

impl CallStep {
    /// A call with no resilience.
    pub fn new(dependency: impl Into<String>) -> Self {
        Self {
            dependency: dependency.into(),
            operation: "call".into(),
            timeout: None,
            retry: Retry::None,
            hedge: None,
            circuit_breaker: None,
            fallback: false,
            failover: None,
            retry_budget: None,
            quota_scope: QuotaScope::Environment,
        }
    }
    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Sets the retry policy.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }
    /// Hedges once after `after`.
    pub fn hedge_after(mut self, after: Duration) -> Self {
        self.hedge = Some(Hedge {
            after,
            max_extra: 1,
        });
        self
    }
    /// Limits retries with a budget shared by the function's calls to this dependency.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = Some(budget);
        self
    }

    /// Sets which calls share the SDK standard-mode retry quota.
    pub fn quota_scope(mut self, scope: QuotaScope) -> Self {
        self.quota_scope = scope;
        self
    }
    /// On final failure, tries the dependency's replica in `region` (the attempts there
    /// cross the network from the caller's region to it: see
    /// [`RegionHops`](crate::model::RegionHops)).
    pub fn failover(mut self, region: impl Into<String>) -> Self {
        self.failover = Some(region.into());
        self
    }
    /// Serves a fallback on final failure.
    pub fn with_fallback(mut self) -> Self {
        self.fallback = true;
        self
    }
    /// The finished step.
    pub fn step(self) -> Step {
        Step::Call(self)
    }
}

impl From<CallStep> for Step {
    fn from(call: CallStep) -> Self {
        Step::Call(call)
    }
}
