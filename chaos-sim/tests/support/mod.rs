//! Helpers shared by the network-hop tests (`sim_network.rs`, `sim_region_hops.rs`).

use chaos_sim::{RunMetrics, Simulation, scenario};

/// Parses and checks `text` (named `file` in errors), panicking with the rendered error.
pub fn sim_named(text: &str, file: &str) -> Simulation {
    let s = scenario::parse(text, file).unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The latency every request had (they are all equal), from the histogram (3 significant
/// digits: within 0.1%), checked against the smallest and largest.
pub fn constant_latency_ns(m: &RunMetrics) -> u64 {
    assert_eq!(m.succeeded, m.requests, "every request succeeds");
    let (low, high) = (m.latency_quantile_ns(0.0), m.latency_quantile_ns(1.0));
    assert!(
        high - low <= high / 1000,
        "all requests take the same time: {low}..{high}"
    );
    high
}

/// Whether `got` is within the histogram's 0.1% of `want`.
pub fn close(got: u64, want: u64) -> bool {
    got.abs_diff(want) <= want / 1000
}
