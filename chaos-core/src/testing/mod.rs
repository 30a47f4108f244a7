//! Testing your fallbacks: your real async handler, run for many invocations against fault
//! plans on tokio's paused clock, with steady-state assertions (feature `testing`; the
//! generated plans and shrinking need feature `proptest`).
//!
//! A fallback is code that runs when something else has already gone wrong, which is why it
//! is the code least often run before production. The harness runs it on purpose: it calls
//! your handler N times (one after another, or as a fan-out), with an [`Injector`] deciding
//! each dependency call the handler makes, on a current-thread tokio runtime whose clock is
//! paused. Seconds of injected latency take no wall time (10,000 invocations with 2 s of
//! latency each run in tens of milliseconds), and every run of the same plan gives the same
//! [`Report`], on every machine, whatever order the tasks run in.
//!
//! # 1. Declare your call sites and build a harness
//!
//! A site is where the handler calls a dependency. Declaring them lets plans (and the
//! strategies that generate plans) target them, and turns a typo in a site name into an
//! error instead of a test that injects nothing.
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::testing::{Harness, Site};
//!
//! let harness = Harness::builder()
//!     .invocations(500)
//!     .fan_out(50)                          // 50 in flight; `sequential()` for one at a time
//!     .deadline(Duration::from_secs(1))     // how long the caller waits
//!     .site(Site::new("pricing/get").service("dynamodb").operation("GetItem"))
//!     .build()?;
//! assert_eq!(harness.sites().len(), 1);
//! # Ok::<(), chaos_core::testing::HarnessError>(())
//! ```
//!
//! # 2. Route your handler's dependency calls through the invocation
//!
//! The harness calls your handler with an [`Invocation`]. Before each real call, the
//! handler (or the client it builds) awaits [`Invocation::call`] at the call's site: the
//! injector decides the call, holds it on the virtual clock for an injected latency, and
//! returns the injected error, if any. The n-th call at a site in one invocation is attempt
//! n - 1, so retries get fresh decisions. The handler says how it answered with [`Served`],
//! and its error type tells the harness what kind of failure it is ([`HandlerError`]).
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::fault::ErrorKind;
//! use chaos_core::testing::{HandlerError, Invocation, Served};
//!
//! /// Gets a price, or answers from a cache of last-known prices.
//! async fn price(invocation: Invocation) -> Result<Served, ErrorKind> {
//!     let attempt = async {
//!         invocation.call("pricing/get").await.map_err(|e| e.error_kind())?;
//!         tokio::time::sleep(Duration::from_millis(15)).await; // the real call
//!         Ok::<_, ErrorKind>(())
//!     };
//!     match tokio::time::timeout(Duration::from_millis(300), attempt).await {
//!         Ok(Ok(())) => Ok(Served::Primary),
//!         // An error or a slow service: the cache answers.
//!         _ => Ok(Served::Fallback),
//!     }
//! }
//! ```
//!
//! A handler whose clients are tower services can wrap them in a
//! [`ChaosLayer`](crate::ChaosLayer) built on [`Invocation::injector`], keying calls with
//! [`Invocation::request_key`]; the harness then sees their outcomes but not the calls
//! themselves (call counts and "no call after the deadline" cover [`Invocation::call`]).
//!
//! # 3. Run a plan and read the report
//!
//! [`Harness::run`] runs every invocation against one plan and returns a [`Report`]: one
//! [`Record`] per invocation (its [`Outcome`]: ok, fallback, failed with an error kind,
//! timed out at the deadline, or panicked; its latency on the virtual clock; its calls, the
//! calls made after its deadline, and how long it ran past the deadline), with the rates and
//! percentiles over them.
//!
//! ```
//! # use std::time::Duration;
//! # use chaos_core::fault::ErrorKind;
//! # use chaos_core::testing::{HandlerError, Harness, Invocation, Served, Site};
//! # async fn price(invocation: Invocation) -> Result<Served, ErrorKind> {
//! #     let attempt = async {
//! #         invocation.call("pricing/get").await.map_err(|e| e.error_kind())?;
//! #         tokio::time::sleep(Duration::from_millis(15)).await;
//! #         Ok::<_, ErrorKind>(())
//! #     };
//! #     match tokio::time::timeout(Duration::from_millis(300), attempt).await {
//! #         Ok(Ok(())) => Ok(Served::Primary),
//! #         _ => Ok(Served::Fallback),
//! #     }
//! # }
//! use chaos_core::{LatencyDist, Plan, Rule};
//! use chaos_core::testing::Outcome;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let harness = Harness::builder().invocations(500).fan_out(50)
//! #     .deadline(Duration::from_secs(1)).site(Site::new("pricing/get")).build()?;
//! // A quarter of the pricing calls take two seconds.
//! let slow = LatencyDist::constant(Duration::from_secs(2));
//! let plan = Plan::new(7).with_rule(Rule::latency(slow).for_site("pricing/get").with_probability(0.25));
//! let report = harness.run(&plan, price)?;
//!
//! assert_eq!(report.success_rate(), 1.0);
//! assert!(report.fallback_rate() > 0.15 && report.fallback_rate() < 0.35);
//! // The slow calls end at the handler's own 300 ms timeout, not at the 2 s.
//! assert_eq!(report.latency_quantile(1.0), Some(Duration::from_millis(300)));
//! assert!(report.records().iter().all(|r| r.outcome != Outcome::TimedOut));
//! // Deterministic: the same plan, the same report.
//! assert_eq!(report, harness.run(&plan, price)?);
//! # Ok(()) }
//! ```
//!
//! # 4. Say what must hold: the steady state
//!
//! A [`SteadyState`] lists what must hold however the faults fall: a least success rate, a
//! most fallback rate, latency percentiles on the virtual clock, no call after the
//! deadline (the caller gave up: the call is wasted load), every failure a clean error
//! rather than a timeout. [`SteadyState::check`] returns every broken assertion, each with an
//! example invocation.
//!
//! ```
//! # use std::time::Duration;
//! # use chaos_core::fault::ErrorKind;
//! # use chaos_core::testing::{Harness, Invocation, Served, Site};
//! use chaos_core::{Plan, Rule};
//! use chaos_core::testing::{SteadyState, Violation};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let harness = Harness::builder().invocations(100).deadline(Duration::from_secs(1))
//! #     .site(Site::new("pricing/get")).build()?;
//! let steady = SteadyState::new()
//!     .min_success_rate(0.99)
//!     .failures_are_clean()
//!     .no_call_after_deadline()
//!     .max_latency(0.99, Duration::from_millis(800));
//!
//! // A handler with no fallback and no timeout of its own.
//! let no_fallback = |invocation: Invocation| async move {
//!     invocation.call("pricing/get").await?;
//!     Ok::<_, chaos_core::InjectedError>(Served::Primary)
//! };
//! let plan = Plan::new(1).with_rule(Rule::error(ErrorKind::Timeout).with_probability(0.1));
//! let violations = steady.check(&harness.run(&plan, no_fallback)?).unwrap_err();
//! // About 10% fail, each after waiting out the whole 1 s deadline for its timeout.
//! assert!(matches!(violations.0[0], Violation::SuccessRate { .. }));
//! assert!(matches!(violations.0[1], Violation::Latency { .. }));
//! assert!(matches!(violations.0[2], Violation::UncleanFailure { .. }));
//! # Ok(()) }
//! ```
//!
#![cfg_attr(feature = "proptest", doc = include_str!("guide_property.md"))]
//! # Determinism: what the harness promises, and what your handler must do
//!
//! Fault decisions are keyed by `(plan seed, rule, invocation index, site, attempt)`,
//! never by order; latencies are drawn from streams keyed the same way; the clock is
//! virtual; the runtime has one thread. So a run's report depends on the plan alone, and is
//! the same when the invocations are spawned in another order ([`SpawnOrder`], tested). Your
//! handler keeps that promise if it draws its own randomness from [`Invocation::rng`], reads
//! time from tokio (never `std::time`), and keeps no state from one run to the next (a
//! property that fails once and passes on replay says so). Counting triggers (`every`,
//! `first`, `after`) count calls in arrival order: use probabilities in plans whose
//! invocations overlap.
//!
//! # Misconfiguration is an error, never a pass
//!
//! Zero invocations, no declared sites, a zero deadline or width, a rule that selects no
//! declared site or expires at a wall-clock time, a call at an undeclared site, a run in
//! which no call reached the injector, a steady state that asserts nothing, and strategy
//! bounds that admit no plan are all errors that say what to fix ([`HarnessError`], [`Violation::Misconfigured`],
//! `StrategyError`).
//!
//! [`Injector`]: crate::Injector

mod harness;
mod invocation;
#[cfg(feature = "proptest")]
mod property;
mod report;
mod steady;
#[cfg(feature = "proptest")]
pub mod strategy;
#[cfg(test)]
#[cfg(feature = "proptest")]
mod strategy_tests;
#[cfg(test)]
mod tests;

pub use harness::{Harness, HarnessBuilder, HarnessError, Site, SpawnOrder};
pub use invocation::{HandlerError, Invocation, Served};
#[cfg(feature = "proptest")]
pub use property::{Property, PropertyFailure, replay_line};
pub use report::{Outcome, Record, Report};
pub use steady::{SteadyState, Violation, Violations};
#[cfg(feature = "proptest")]
pub use strategy::{FaultChoice, PlanSpace, StrategyError};
