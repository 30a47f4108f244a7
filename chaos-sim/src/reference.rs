//! Reference models with known answers, shared by the validation tests, the benchmark and the
//! side-by-side comparison with SimPy (`../shared/baselines/simpy_fanout.py`).

use std::time::Duration;

use crate::builder::ScenarioBuilder;
use crate::checked::{CheckedScenario, SimError};
use crate::core_api::LatencyDist;
use crate::model::{Account, Dependency, Function, Join, LoadShape, OpenLoop, Step};

/// A request fans out to `fan_out` copies of `branch` (calls to the dependency `"leaf"`) and
/// joins them all; Poisson arrivals at `rate_per_s`; no contention (unlimited concurrency, no
/// cold starts), so the join's latency is the maximum of independent leaf latencies:
/// `P(max <= x) = F(x)^fan_out`.
///
/// The benchmark model is `fan_out(1_000_000, 10, Step::call("leaf").step(), 1000.0, seed,
/// log-normal median 20 ms sigma 0.5)`.
pub fn fan_out(
    requests: u64,
    fan_out: u32,
    branch: Step,
    rate_per_s: f64,
    seed: u64,
    leaf: LatencyDist,
) -> Result<CheckedScenario, SimError> {
    let mut builder = ScenarioBuilder::new("fanout", "fanout");
    builder
        .seed(seed)
        .requests(requests)
        .account(Account {
            concurrency: 10_000_000,
            unreserved_minimum: 0,
        })
        .load(LoadShape::Open(OpenLoop::poisson(rate_per_s)));
    let mut function = Function::new("fanout", vec![Step::fan_out(fan_out, Join::All, branch)]);
    function.cold_start = LatencyDist::constant(Duration::ZERO);
    builder
        .function(function)
        .dependency(Dependency::new("leaf", leaf));
    builder.build()
}

/// The leaf of the SimPy baseline: log-normal, median 20 ms, sigma 0.5.
pub fn baseline_leaf() -> LatencyDist {
    // Both parameters are constants inside the valid range; a failure here is a bug.
    LatencyDist::log_normal_median_sigma(Duration::from_millis(20), 0.5)
        .unwrap_or_else(|e| unreachable!("constant parameters are valid: {e}"))
}
