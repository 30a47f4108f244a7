//! Testing your fallbacks (feature `testing`).

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
pub use property::{Property, PropertyFailure};
pub use report::{Outcome, Record, Report};
pub use steady::{SteadyState, Violation, Violations};
#[cfg(feature = "proptest")]
pub use strategy::{FaultChoice, PlanSpace, StrategyError};
