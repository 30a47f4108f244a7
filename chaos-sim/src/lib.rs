//! # chaos-sim
//!
//! A deterministic discrete-event simulator of serverless fan-out. Describe a system
//! (functions, dependencies, queues, regions), a load, chaos-core fault rules and a
//! steady-state hypothesis; [`Simulation::run`] runs a control run (no faults) and an
//! experiment run (faults) with common random numbers and reports them side by side.
//! The same scenario and seed give a byte-identical report.
//!
//! ```
//! use chaos_sim::{scenario, Simulation};
//!
//! let text = r#"
//!     [simulation]
//!     seed = 7
//!     requests = 2000
//!
//!     [load]
//!     target = "api"
//!     rate_per_s = 200
//!
//!     [[function]]
//!     name = "api"
//!     handler = [{ fan_out = { call = "table", count = 4, join = "all" } }]
//!
//!     [[dependency]]
//!     name = "table"
//!     latency = "10ms"
//!
//!     [[fault]]
//!     fault = { error = "throttle" }
//!     probability = 0.01
//!
//!     [hypothesis]
//!     success_rate = ">= 90%"
//! "#;
//! let scenario = scenario::parse(text, "inline.toml")?;
//! let report = Simulation::new(scenario)?.run();
//! assert_eq!(report.control.requests, 2000);
//! assert_eq!(report.exit_code(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each run also keeps per-interval series ([`timeline`]: arrivals, goodput, failures,
//! latency, concurrency, queues, work in flight), in memory proportional to the intervals,
//! and the report derives from them the time to recover after the last fault window
//! ([`recovery`]), which a `recovery_time = "<= 60s"` hypothesis bounds.
//!
//! The scenario format is documented in [`scenario`]; the Rust form of the model in
//! [`model`] ([`ScenarioBuilder`]); the JSON report in `REPORT_SCHEMA.md`. Both
//! [`scenario::parse`] and [`ScenarioBuilder::build`] return a [`CheckedScenario`]: validated,
//! with its program and fault plan compiled once; neither depends on the seed, so
//! [`Simulation::set_seed`] sweeps seeds without compiling again.
//!
//! Every input is bounded: a run has a work budget (`max_events`), and input that would
//! exhaust memory, overflow the stack or never end is an error, not a crash or a hang (limits
//! in [`scenario`] and `REPORT_SCHEMA.md`).
//!
//! ## Determinism
//!
//! Virtual time is an integer count of nanoseconds; events are ordered by (time, insertion
//! sequence); nothing iterates a hash map; no wall clock and no thread RNG are read. Random
//! draws come from streams named by purpose and element ([`rng::Streams`]), keyed by call, so
//! adding an element or a fault does not shift any other draw.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod builder;
mod checked;
mod core_api;
mod engine;
pub mod experiment;
mod json;
pub mod metrics;
pub mod model;
mod program;
mod queue;
pub mod recovery;
pub mod reference;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod timeline;

pub use builder::ScenarioBuilder;
pub use checked::{CheckedScenario, IntoChecked};
pub use experiment::{SimError, Simulation};
pub use metrics::{FunctionMetrics, RunMetrics};
pub use model::Scenario;
pub use program::ModelError;
pub use report::{Report, SCHEMA_VERSION};
pub use scenario::ScenarioError;
