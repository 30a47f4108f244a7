//! Fault policies for serverless chaos experiments: one fault definition that runs in a unit
//! test, in the `chaos-sim` simulator, and in production.
//!
//! # A tour
//!
//! **Latency** is a [`LatencyDist`]: constant, uniform, normal, log-normal (by median and p99,
//! the way latency is quoted), exponential, Pareto, empirical, or a weighted mixture.
//!
//! **A rule** is a [`Fault`] plus which calls it selects, how often it fires, and when.
//! **A plan** is an ordered list of rules and a seed, written in TOML or JSON:
//!
//! ```
//! use chaos_core::{Call, Injector, Plan};
//!
//! let plan = Plan::from_toml_str(r#"
//!     seed = 2026
//!
//!     [[rules]]
//!     name = "slow-dynamodb"
//!     fault = { latency = { log_normal = { p50 = "40ms", p99 = "300ms" } } }
//!     match = { service = "dynamodb" }
//!     probability = 0.25
//!
//!     [[rules]]
//!     name = "throttled-writes"
//!     fault = { error = "throttle" }
//!     match = { service = "dynamodb", operation = "PutItem" }
//!     probability = 0.1
//! "#)?;
//! let injector = Injector::new(plan)?;
//! # injector.enable();
//!
//! let call = Call::new(17, "checkout/orders").service("dynamodb").operation("PutItem");
//! let verdict = injector.decide(&call);
//! // The decision is a pure function of (seed, rule, request key, site, attempt):
//! assert_eq!(verdict, injector.decide(&call));
//! # Ok::<(), chaos_core::PlanError>(())
//! ```
//!
//! **Deciding is deterministic and order-independent.** Each rule rolls a keyed 64-bit hash of
//! `(seed, rule, request key, call site, attempt)` ([`decision`]), so which calls fail does not
//! depend on threads or call order, and any decision replays from its inputs.
//!
//! **The injector** ([`Injector`]) is what an application holds: lock-free reads of a plan that
//! can be swapped live ([`Injector::reload`]; a bad plan leaves the old one in force), a kill
//! switch (`CHAOS_DISABLED`), guardrails, per-rule counters and a `tracing` event per injection.
//! [`Injector::apply`] sleeps on tokio's timer, so tests under a paused clock take no real time:
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::{Call, Injector, LatencyDist, Plan, Rule};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let injector = Injector::new(Plan::new(1).with_rule(Rule::latency(LatencyDist::constant(Duration::from_secs(5)))))?;
//! # injector.enable();
//! let started = tokio::time::Instant::now();
//! injector.apply(&Call::new(1, "payments"), None).await?;
//! assert_eq!(started.elapsed(), Duration::from_secs(5)); // virtual seconds
//! # Ok(()) }
//! ```
//!
//! **tower**: [`ChaosLayer`] wraps any `Service` (feature `tower`, on by default).
//!
//! **Timeout checks**: [`timeout::check`] finds calls whose worst case (attempts, per-attempt
//! timeouts, backoff) exceeds what their caller has left, and calls with no timeout at all;
//! [`Deadline`] carries a caller's remaining time (a Lambda context's deadline) to rules and
//! application code.
//!
//! # Never a crash
//!
//! Nothing here panics on user input: every constructor and parser returns an error that names
//! the parameter or field and what was expected.
#![forbid(unsafe_code)]

pub mod decision;
pub mod duration;
pub mod fault;
pub mod injector;
pub mod latency;
#[cfg(feature = "tower")]
pub mod layer;
pub mod plan;
pub mod rule;
pub mod timeout;

pub use fault::{ErrorKind, Fault, InjectedError};
pub use injector::{Injector, Snapshot};
pub use latency::LatencyDist;
#[cfg(feature = "tower")]
pub use layer::{Chaos, ChaosLayer};
pub use plan::{Call, CallSite, CompiledPlan, Plan, PlanError, Verdict};
pub use rule::Rule;
pub use timeout::Deadline;
