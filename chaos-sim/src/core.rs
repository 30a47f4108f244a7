//! The chaos-core touch points, in one place.
//!
//! Everything the simulator takes from chaos-core is imported here, so the rest of the crate
//! names these items through `crate::core` only.

pub use crate::core_shim::{
    Call, CompiledPlan, ErrorKind, Failure, LatencyDist, LocalMatchCounter, Plan, PlanError, Rule,
};

/// Parses a duration the way scenario files write them (`250ms`, `2m`, `1h 30m`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// Formats a duration for reports.
pub fn format_duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}
