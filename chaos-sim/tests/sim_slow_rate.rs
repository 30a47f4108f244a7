//! Slow-request rates as a metric and a hypothesis (issue 11, item 7).

use chaos_sim::{Report, Simulation, scenario};

const EXPONENTIAL: &str = r#"
[simulation]
seed = 11
requests = 20000
[account]
concurrency = 100000
[load]
target = "api"
rate_per_s = 1000
[[function]]
name = "api"
cold_start = "0ms"
handler = [{ call = "db" }]
[[dependency]]
name = "db"
latency = { exponential = { mean = "100ms" } }
[hypothesis]
HYPOTHESIS
"#;

fn scenario_with(hypothesis: &str) -> Result<chaos_sim::CheckedScenario, String> {
    scenario::parse(&EXPONENTIAL.replace("HYPOTHESIS", hypothesis), "slow.toml")
        .map_err(|e| e.to_string())
}

#[test]
fn the_slow_rate_of_exponential_latencies_is_the_tail_probability() {
    // Latency is the dependency's exponential service time alone (no cold start, no queueing):
    // P(latency > 200 ms) = exp(-2) = 0.13534. Over n = 20,000 independent requests the
    // measured fraction has standard deviation sqrt(p (1 - p) / n) = 0.00242; allow 4.
    let s = scenario_with("").unwrap_or_else(|e| panic!("{e}"));
    let m = Simulation::new(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .run_control();
    assert_eq!(m.succeeded, 20_000);
    let p = (-2.0f64).exp();
    let tolerance = 4.0 * (p * (1.0 - p) / 20_000.0).sqrt();
    let measured = m.slow_rate(200_000_000);
    assert!(
        (measured - p).abs() <= tolerance,
        "{measured} vs {p} ± {tolerance}"
    );
    // Consistent with the percentiles: the p90 (230 ms) is above 200 ms exactly when more
    // than 10% are slower than 200 ms; nothing is slower than the maximum.
    assert!(m.latency_quantile_ns(0.9) > 200_000_000);
    assert_eq!(m.slow_rate(m.latency.max()), 0.0);
}

#[test]
fn a_slow_rate_hypothesis_holds_or_fails_at_its_bound() {
    // exp(-2) = 13.5% are slower than 200 ms; exp(-5) = 0.67% slower than 500 ms.
    let s = scenario_with(
        r#"slow_rate = [{ over = "500ms", at_most = "1%" }, { over = "200ms", at_most = "10%" }]"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let sim = Simulation::new(s.clone()).unwrap_or_else(|e| panic!("{e}"));
    let (c, e) = (sim.run_control(), sim.run_experiment());
    let report = Report::new(&s, &c, &e);
    let names: Vec<_> = report.hypotheses.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["slow_rate_over_200ms", "slow_rate_over_500ms"]);
    assert!(!report.hypotheses[0].control_holds);
    assert!(report.hypotheses[1].control_holds);
    assert_eq!(report.hypotheses[1].expected, "<= 0.01");
}

#[test]
fn bad_slow_rate_bounds_are_located_and_explained() {
    for (text, field, says) in [
        (
            r#"slow_rate = "1%""#,
            "hypothesis.slow_rate",
            "a table like",
        ),
        (
            r#"slow_rate = { at_most = "1%" }"#,
            "hypothesis.slow_rate",
            "missing `over`",
        ),
        (
            r#"slow_rate = { over = "1s" }"#,
            "hypothesis.slow_rate",
            "missing `at_most`",
        ),
        (
            r#"slow_rate = { over = "0s", at_most = "1%" }"#,
            "hypothesis.slow_rate.over",
            "above 0",
        ),
        (
            r#"slow_rate = { over = "1s", at_most = "150%" }"#,
            "hypothesis.slow_rate.at_most",
            "within 0..1",
        ),
        (
            r#"slow_rate = { over = "1s", at_most = ">= 1%" }"#,
            "hypothesis.slow_rate.at_most",
            "can only be `<=`",
        ),
        (
            r#"slow_rate = { over = "1s", below = "1%" }"#,
            "hypothesis.slow_rate.below",
            "unknown key",
        ),
        (
            r#"slow_rate = [{ over = "1s", at_most = "1%" }, 3]"#,
            "hypothesis.slow_rate[1]",
            "a table like",
        ),
        (
            r#"slow_rates = { over = "1s", at_most = "1%" }"#,
            "hypothesis.slow_rates",
            "did you mean `slow_rate`",
        ),
    ] {
        let error = scenario_with(text)
            .err()
            .unwrap_or_else(|| panic!("{text} parsed"));
        assert!(error.contains(field), "{text}: {error}");
        assert!(error.contains(says), "{text}: {error}");
        assert!(error.contains("slow.toml:"), "{text}: located: {error}");
    }
}

#[test]
fn the_builder_form_sets_and_checks_slow_rate_bounds() {
    use chaos_core::latency::LatencyDist;
    use chaos_sim::ScenarioBuilder;
    use chaos_sim::model::{Dependency, Function, Hypothesis, Step};
    use std::time::Duration;
    let build = |hypothesis: Hypothesis| {
        let mut b = ScenarioBuilder::new("slow", "api");
        b.requests(100)
            .function(Function::new("api", vec![Step::call("db").step()]))
            .dependency(Dependency::new(
                "db",
                LatencyDist::constant(Duration::from_millis(300)),
            ))
            .hypothesis(hypothesis);
        b.build()
    };
    // Every answer takes 300 ms plus a cold start for some: all are slower than 250 ms.
    let h = Hypothesis::default().with_slow_rate(Duration::from_millis(250), 0.5);
    let s = build(h).unwrap_or_else(|e| panic!("{e}"));
    let sim = Simulation::new(s.clone()).unwrap_or_else(|e| panic!("{e}"));
    let (c, e) = (sim.run_control(), sim.run_experiment());
    assert_eq!(c.slow_rate(250_000_000), 1.0);
    let report = Report::new(&s, &c, &e);
    assert_eq!(report.hypotheses[0].name, "slow_rate_over_250ms");
    assert!(!report.hypotheses[0].control_holds);

    let error = build(Hypothesis::default().with_slow_rate(Duration::from_secs(1), 1.5))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("hypothesis.slow_rate[0].at_most"), "{error}");
    let error = build(Hypothesis::default().with_slow_rate(Duration::ZERO, 0.1))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("hypothesis.slow_rate[0].over"), "{error}");
}
