//! Published results the simulator must reproduce (FACTS.md, "Published results a simulator
//! of this kind should reproduce"; issue 11, item 10). Each test runs a bundled scenario from
//! `examples/scenarios/` through the public API, as `chaos run --json` would, reads the JSON
//! report, and compares it with a value derived independently here, within a tolerance taken
//! from the sampling variance of the measured figure.

use chaos_sim::{Simulation, scenario};
use serde_json::Value;
use std::path::PathBuf;

/// The JSON report of a bundled scenario, as `chaos run --json` prints it.
fn report_of(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let checked = scenario::parse(&text, name).unwrap_or_else(|e| panic!("{e}"));
    let report = Simulation::new(checked)
        .unwrap_or_else(|e| panic!("{e}"))
        .run();
    serde_json::from_str(&report.to_json()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn number(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer}"))
}

#[test]
fn fan_out_to_a_hundred_leaves_makes_one_slow_leaf_in_a_hundred_slow_most_requests() {
    let r = report_of("tail_at_scale.toml");
    let n = number(&r, "/experiment/requests");
    assert_eq!(n, 20_000.0);
    assert_eq!(number(&r, "/experiment/succeeded"), n);

    // Dean & Barroso: P(request slow) = 1 - (1 - p)^N with p = 0.01, N = 100. A request
    // without a faulted leaf is slower than 500 ms only if an exponential leaf (mean 10 ms)
    // took 50 means: 100 e^-50, nothing. The measured fraction of n independent requests has
    // standard deviation sqrt(P (1 - P) / n) = 0.0034; allow 4.
    let expected = 1.0 - 0.99f64.powi(100);
    assert!((expected - 0.634).abs() < 0.001);
    let hypothesis = &r["hypotheses"][0];
    assert_eq!(hypothesis["name"], "slow_rate_over_500ms");
    let measured = number(hypothesis, "/experiment");
    let tolerance = 4.0 * (expected * (1.0 - expected) / n).sqrt();
    assert!(
        (measured - expected).abs() <= tolerance,
        "slow rate {measured} vs {expected} ± {tolerance}"
    );
    assert_eq!(hypothesis["experiment_holds"], false);
    assert_eq!(number(hypothesis, "/control"), 0.0);
}

#[test]
fn the_quantiles_of_a_fan_out_are_those_of_the_maximum_of_its_leaves() {
    let r = report_of("tail_at_scale.toml");
    let n = number(&r, "/control/requests");
    // The request waits for the slowest of N = 100 exponential leaves, mean 10 ms: its
    // CDF is G(x) = F(x)^N, so its q-quantile is F^-1(q^(1/N)) = -mean ln(1 - q^(1/N)).
    let (mean_ms, leaves) = (10.0f64, 100.0f64);
    let leaf_cdf = |x: f64| 1.0 - (-x / mean_ms).exp();
    let leaf_pdf = |x: f64| (-x / mean_ms).exp() / mean_ms;
    for (field, q) in [("p50", 0.5f64), ("p90", 0.9), ("p99", 0.99)] {
        let expected = -mean_ms * (1.0 - q.powf(1.0 / leaves)).ln();
        // A sample quantile's standard deviation is sqrt(q (1 - q) / n) / g(x_q), with g the
        // density of the maximum, N F^(N-1) f; allow 4 of them, plus hdrhistogram's 0.1%.
        let density = leaves * leaf_cdf(expected).powf(leaves - 1.0) * leaf_pdf(expected);
        let sd = (q * (1.0 - q) / n).sqrt() / density;
        let tolerance = 4.0 * sd + 0.001 * expected;
        let measured = number(&r, &format!("/control/latency_ms/{field}"));
        assert!(
            (measured - expected).abs() <= tolerance,
            "{field}: {measured} ms vs {expected:.2} ms ± {tolerance:.2}"
        );
    }
    // One leaf's p99 is 46 ms: the fan-out's is twice that.
    assert!(number(&r, "/control/latency_ms/p99") > 1.9 * -mean_ms * 0.01f64.ln());
}
