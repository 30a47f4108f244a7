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
//! use chaos_core::{Call, CompiledPlan, Injector};
//!
//! let plan = CompiledPlan::from_toml_str(r#"
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
//! // Parsed and compiled once: the injector takes the compiled plan as it is.
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
//! **Calls made at one place** (a client for one service and operation) are decided fastest
//! at a pre-resolved [`Site`]: made once, in a `static` or a client's field, it keeps the
//! rules that can match it per plan (found again after a reload), so a decision there is one
//! read of the injector's state and, per such rule, one keyed mix and a comparison. The
//! verdict is exactly the ad hoc call's:
//!
//! ```
//! use chaos_core::{Injector, Plan, Rule, Site, fault::ErrorKind};
//!
//! static PUT_ORDER: Site<'static> =
//!     Site::new("checkout/orders").service("dynamodb").operation("PutItem");
//!
//! let injector = Injector::new(
//!     Plan::new(2026).with_rule(Rule::error(ErrorKind::Throttle).for_service("dynamodb").with_probability(0.1)),
//! )?;
//! # injector.enable();
//! for request in 0..100 {
//!     let at_site = injector.decide_at(&PUT_ORDER, request);
//!     assert_eq!(at_site, injector.decide(&PUT_ORDER.call(request).to_call()));
//! }
//! # Ok::<(), chaos_core::PlanError>(())
//! ```
//!
//! **Deciding is deterministic and order-independent.** Each rule rolls a keyed 64-bit hash of
//! `(seed, rule, request key, call site, attempt)` (the hash functions are in [`advanced`]), so which calls fail does not
//! depend on threads or call order, and any decision replays from its inputs.
//!
//! **The injector** ([`Injector`]) is what an application holds: lock-free reads of a plan that
//! can be swapped live ([`Injector::reload`]; a rejected plan stops injection until a valid
//! one arrives, see [`OnRejectedReload`]), a kill switch (`CHAOS_DISABLED`, or
//! [`Injector::disable`], which also cuts short faults in progress), guardrails, per-rule
//! counters and a `tracing` event per injection.
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
//! **What a verdict does** is defined once, in [`effect`]: [`Verdict::effect`] gives how long
//! a call is held and how it ends, for the injector and the simulator alike.
//!
//! **tower**: [`ChaosLayer`] wraps any `Service` (feature `tower`, on by default);
//! [`ChaosLayer::at_site`] decides every request at one pre-resolved [`Site`].
//!
//! **Timeout checks**: [`timeout::check`] finds calls whose worst case (attempts, per-attempt
//! timeouts, backoff) exceeds what their caller has left, and calls with no timeout at all;
//! [`Deadline`] carries a caller's remaining time (a Lambda context's deadline) to rules and
//! application code.
//!
//! # Features
//!
//! * `runtime` (default): the live [`Injector`] and [`Deadline`], on tokio's timer (pulls in
//!   tokio, arc-swap and tracing), and [`watch::PlanFile`], a plan file polled for changes.
//!   Without it the crate is plans, decisions, effects and timeout checks only, as the
//!   simulator uses it.
//! * `tower` (default, implies `runtime`): [`ChaosLayer`] / [`Chaos`].
//! * `http` (implies `tower`; adds the `http` crate): `http::HttpChaosLayer` for servers and
//!   clients of `http::Request`, faults answered as responses or I/O errors, retry-aware
//!   decisions (`http::CountAttempts`).
//! * `grpc` (implies `http`; no tonic): `grpc` answers faults in gRPC's wire form
//!   (`grpc-status`), around tonic servers or channels.
//! * `testing` (implies `runtime`): the fallback test harness, module `testing`: your async
//!   handler run for many invocations under tokio's paused clock, against a fault plan, with
//!   steady-state assertions.
//! * `proptest` (implies `testing`): proptest strategies for fault plans over your call
//!   sites, and a property runner that shrinks a failure to a one-line `replay!`.
//!
//! # Never a crash
//!
//! Nothing here panics on user input: every constructor and parser returns an error that names
//! the parameter or field and what was expected.
#![forbid(unsafe_code)]

pub mod advanced;
pub mod corrupt;
mod decision;
pub mod duration;
pub mod effect;
pub mod fault;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "runtime")]
pub mod injector;
pub mod keys;
pub mod latency;
#[cfg(feature = "tower")]
pub mod layer;
pub mod plan;
pub mod rule;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeout;
#[cfg(feature = "runtime")]
pub mod watch;

pub use effect::{Effect, Outcome};
pub use fault::{ErrorKind, Fault, InjectedError, InjectedKind};
#[cfg(feature = "http")]
pub use http::{Attempt, HttpCallExtractor, HttpChaosLayer, OnInjected, TransportFault};
#[cfg(feature = "runtime")]
pub use injector::{
    Injector, InjectorBuilder, InjectorError, OnRejectedReload, RuleTotals, Site, SiteCall,
    Snapshot, WindowOrigin,
};
pub use keys::UniqueKeys;
pub use latency::LatencyDist;
#[cfg(feature = "tower")]
pub use layer::{CallExtractor, Chaos, ChaosLayer, SiteExtractor};
pub use plan::{Call, CallSite, CompiledPlan, Plan, PlanError, PlanWarning, ResolvedSite, Verdict};
pub use rule::Rule;
#[cfg(feature = "runtime")]
pub use timeout::Deadline;
#[cfg(feature = "runtime")]
pub use watch::PlanFile;
