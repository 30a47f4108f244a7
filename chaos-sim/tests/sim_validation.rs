//! Validation against known results: order statistics of a fan-out, tail amplification and
//! hedging (FACTS.md), conservation, and equivalence of the collapsed fan-out path.

use chaos_core::latency::LatencyDist;
use chaos_sim::model::Step;
use chaos_sim::{RunMetrics, Simulation, reference, scenario};
use std::time::Duration;

const MS: u64 = 1_000_000;

fn fan_out_scenario(
    leaf: LatencyDist,
    count: u32,
    step: Step,
    requests: u64,
    rate: f64,
) -> Simulation {
    let scenario =
        reference::fan_out(requests, count, step, rate, 1, leaf).expect("valid scenario");
    Simulation::new(scenario).expect("compiles")
}

/// Density of a log-normal with parameters (mu, sigma) of ln(seconds), at `x` seconds.
fn log_normal_pdf(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x.ln() - mu) / sigma;
    (-0.5 * z * z).exp() / (x * sigma * (2.0 * std::f64::consts::PI).sqrt())
}

#[test]
fn fan_out_quantiles_match_order_statistics() {
    let (mu, sigma, k, n) = ((0.020f64).ln(), 0.5, 10u32, 40_000u64);
    let leaf = LatencyDist::log_normal(mu, sigma).expect("valid");
    let sim = fan_out_scenario(leaf.clone(), k, Step::call("leaf").step(), n, 1000.0);
    let m = sim.run_control();
    assert_eq!(m.succeeded, n);
    for q in [0.5f64, 0.9, 0.99] {
        // The join waits for the slowest of k independent leaves: P(max <= x) = F(x)^k, so
        // the q-quantile is F^-1(q^(1/k)).
        let leaf_q = q.powf(1.0 / f64::from(k));
        let expected = leaf.quantile(leaf_q).expect("analytic").as_secs_f64();
        // Standard error of a sample quantile: sqrt(q(1-q)/n) / g(x_q), with g the density
        // of the max, k F^(k-1) f. Allow 5 standard errors plus the histogram's resolution
        // (3 significant digits: relative error at most 1e-3).
        let density = f64::from(k)
            * leaf_q.powf(f64::from(k - 1) / f64::from(k))
            * log_normal_pdf(expected, mu, sigma);
        let standard_error = (q * (1.0 - q) / n as f64).sqrt() / density;
        let tolerance = 5.0 * standard_error + 1e-3 * expected;
        let simulated = m.latency_quantile_ns(q) as f64 / 1e9;
        assert!(
            (simulated - expected).abs() <= tolerance,
            "q={q}: simulated {simulated}, expected {expected} +- {tolerance}"
        );
    }
}

fn slow_fraction(m: &RunMetrics) -> f64 {
    // Slow = took the 1 s branch somewhere: anything above 900 ms.
    m.latency
        .count_between(900 * MS, m.latency.max().max(900 * MS)) as f64
        / m.requests as f64
}

fn bimodal_leaf() -> LatencyDist {
    LatencyDist::mixture(vec![
        (0.99, LatencyDist::constant(Duration::from_millis(10))),
        (0.01, LatencyDist::constant(Duration::from_secs(1))),
    ])
    .expect("valid mixture")
}

#[test]
fn tail_amplification_at_fan_out_100() {
    let n = 10_000;
    let sim = fan_out_scenario(bimodal_leaf(), 100, Step::call("leaf").step(), n, 100.0);
    let m = sim.run_control();
    // Dean and Barroso: P(slow) = 1 - 0.99^100 = 0.634. Binomial standard error with
    // n = 10,000: sqrt(0.634 * 0.366 / n) = 0.0048; 5 standard errors = 0.024.
    let expected = 1.0 - 0.99f64.powi(100);
    let fraction = slow_fraction(&m);
    assert!(
        (fraction - expected).abs() < 0.024,
        "slow fraction {fraction}"
    );
    assert!((expected - 0.634).abs() < 0.001);
}

#[test]
fn hedging_at_20ms_cuts_the_tail_for_one_percent_more_requests() {
    let n = 10_000;
    let hedged = Step::call("leaf")
        .hedge_after(Duration::from_millis(20))
        .step();
    let sim = fan_out_scenario(bimodal_leaf(), 100, hedged, n, 100.0);
    let m = sim.run_control();
    // A leaf is slow only if the first try and its hedge are both slow: p = 0.01^2, so
    // P(slow request) = 1 - (1 - 1e-4)^100 = 0.00995. Standard error with n = 10,000:
    // sqrt(0.00995 * 0.99 / n) = 0.00099; 5 standard errors = 0.005.
    let expected = 1.0 - (1.0 - 1e-4f64).powi(100);
    let fraction = slow_fraction(&m);
    assert!(
        (fraction - expected).abs() < 0.005,
        "slow fraction {fraction}"
    );
    // A hedge is sent exactly when the first try is slow (p = 0.01) over n * 100 leaf calls:
    // standard error sqrt(0.01 * 0.99 / 1e6) = 1e-4; 5 standard errors = 5e-4.
    let leaf_calls = (n * 100) as f64;
    let extra = m.hedges as f64 / leaf_calls;
    assert!((extra - 0.01).abs() < 5e-4, "extra requests {extra}");
    assert_eq!(m.attempts, n * 100 + m.hedges);
}

#[test]
fn collapsed_fan_out_gives_the_same_results_as_one_event_per_branch() {
    let leaf = LatencyDist::log_normal((0.020f64).ln(), 0.5).expect("valid");
    let mut sim = fan_out_scenario(leaf, 10, Step::call("leaf").step(), 5_000, 1000.0);
    let collapsed = sim.run_control();
    sim.set_collapse_fan_outs(false);
    let per_branch = sim.run_control();
    assert_eq!(collapsed.latency, per_branch.latency);
    assert_eq!(collapsed.succeeded, per_branch.succeeded);
    assert_eq!(collapsed.attempts, per_branch.attempts);
    assert!(per_branch.events > collapsed.events);
}

const CONTENDED: &str = r#"
[simulation]
seed = SEED
duration = "30s"
drain = "0s"

[account]
concurrency = 200
unreserved_minimum = 100

[load]
target = "api"
rate_per_s = RATE
bursts = [{ at = "10s", count = 300 }]

[[function]]
name = "api"
timeout = "2s"
reserved_concurrency = 40
cold_start = { log_normal = { p50 = "100ms", p99 = "400ms" } }
handler = [
  { fan_out = { call = "db", count = 3, join = { quorum = 2 }, timeout = "300ms",
      retry = { attempts = 3, backoff = "decorrelated_jitter", base = "10ms", cap = "200ms" } } },
  { call = "cache", fallback = true, timeout = "50ms" },
  { invoke = "worker" },
]

[[function]]
name = "worker"
timeout = "1s"
handler = [{ call = "table" }]

[[dependency]]
name = "db"
latency = { exponential = { mean = "8ms" } }
capacity = { server = { workers = WORKERS, discipline = "lifo", abandoned = "drop" } }

[[dependency]]
name = "cache"
latency = { log_normal = { p50 = "2ms", p99 = "80ms" } }

[[dependency]]
name = "table"
latency = "3ms"
capacity = { token_bucket = { rate_per_s = 150, burst = 50 } }

[[fault]]
fault = { error = "timeout" }
match = { service = "db" }
probability = 0.05
"#;

#[test]
fn conservation_and_limits_hold_under_contention() {
    // A grid of loads and capacities (fixed seeds): every run must conserve requests, keep
    // concurrency within its limits and never move time backwards.
    for (seed, rate, workers) in [(1, 50, 2), (2, 150, 4), (3, 400, 1), (4, 20, 8)] {
        let text = CONTENDED
            .replace("SEED", &seed.to_string())
            .replace("RATE", &rate.to_string())
            .replace("WORKERS", &workers.to_string());
        let s = scenario::parse(&text, "contended.toml").expect("valid scenario");
        let sim = Simulation::new(s).expect("compiles");
        for m in [sim.run_control(), sim.run_experiment()] {
            assert_eq!(
                m.requests,
                m.succeeded + m.fallback_served + m.failed() + m.in_flight,
                "seed {seed}: arrivals = completed + failed + in flight"
            );
            assert_eq!(m.time_regressions, 0, "no event in the past");
            let api = &m.functions[0];
            assert!(api.peak_concurrency <= 40, "reserved concurrency respected");
            // Unreserved pool = 200 - 40 reserved.
            assert!(m.peak_unreserved_concurrency <= 160);
            assert!(m.peak_concurrency <= 200, "account concurrency respected");
        }
    }
}

#[test]
fn stopping_early_leaves_requests_in_flight_and_they_are_counted() {
    let text = CONTENDED
        .replace("SEED", "9")
        .replace("RATE", "300")
        .replace("WORKERS", "1");
    let sim = Simulation::new(scenario::parse(&text, "x.toml").expect("valid")).expect("ok");
    let m = sim.run_control();
    assert!(m.in_flight > 0, "drain = 0s must leave work in flight");
    assert_eq!(m.requests, m.completed() + m.in_flight);
}

#[test]
fn collapsed_fan_out_is_equivalent_under_faults_and_throttling() {
    for join in ["\"all\"", "\"any\"", "{ quorum = 3 }"] {
        let text = format!(
            r#"
[simulation]
seed = 4
duration = "20s"
[load]
target = "api"
rate_per_s = 200
[[function]]
name = "api"
handler = [{{ fan_out = {{ call = "table", count = 5, join = {join} }} }}]
[[dependency]]
name = "table"
latency = {{ log_normal = {{ p50 = "5ms", p99 = "40ms" }} }}
capacity = {{ token_bucket = {{ rate_per_s = 800, burst = 100 }} }}
[[fault]]
fault = {{ error = {{ server_error = 503 }} }}
probability = 0.05
[[fault]]
fault = {{ latency = "30ms" }}
probability = 0.1
"#
        );
        let mut sim =
            Simulation::new(scenario::parse(&text, "eq.toml").expect("valid")).expect("ok");
        let collapsed = sim.run_experiment();
        sim.set_collapse_fan_outs(false);
        let per_branch = sim.run_experiment();
        assert!(
            collapsed.dependency_throttles > 0,
            "{join}: the bucket throttles"
        );
        assert!(collapsed.failed() > 0, "{join}: faults fail requests");
        assert_eq!(collapsed.latency, per_branch.latency, "{join}");
        assert_eq!(collapsed.failed_error, per_branch.failed_error, "{join}");
        assert_eq!(
            collapsed.failed_throttle, per_branch.failed_throttle,
            "{join}"
        );
        assert_eq!(
            collapsed.dependency_throttles, per_branch.dependency_throttles,
            "{join}"
        );
    }
}
