//! The chaos-core touch points, in one place.
//!
//! Everything the simulator takes from chaos-core is imported here, so the rest of the crate
//! names these items through `crate::core_api` only.

pub use chaos_core::advanced::{Failure, LocalMatchCounter, hash_str, mix64};
pub use chaos_core::duration::{MAX_DURATION, parse_duration};
pub use chaos_core::fault::{ErrorKind, Fault};
pub use chaos_core::latency::LatencyDist;
pub use chaos_core::plan::{Call, CallSite, CompiledPlan, Plan, PlanError, ResolvedSite};
pub use chaos_core::rule::Rule;
pub use chaos_core::timeout::exponential_ceiling;
pub use chaos_core::{InjectedKind, Outcome, Verdict};
