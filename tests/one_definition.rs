//! One fault definition, written once, runs in application code (the injector) and in the
//! simulator: the product's central promise, checked end to end across the crates.

use chaos_core::{Call, Injector, Rule};

/// A rule as a team would write it, once.
const RULE: &str = r#"
name = "orders-throttled"
fault = { error = "throttle" }
match = { site = "*/checkout/orders" }
probability = 0.25
"#;

fn rule() -> Rule {
    toml::from_str(RULE).expect("the rule parses")
}

#[test]
fn the_rule_drives_the_live_injector() {
    let mut plan = chaos_core::Plan::new(11);
    plan.rules.push(rule());
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    let injector = builder.build().expect("valid plan");
    let n = 20_000u64;
    let fired = (0..n)
        .filter(|&key| {
            injector
                .decide(&Call::new(key, "us-east-1/checkout/orders"))
                .failure
                .is_some()
        })
        .count() as f64;
    // Binomial(20000, 0.25): standard deviation 61; 5 sigma.
    assert!((fired - 5_000.0).abs() < 5.0 * 61.3, "fired {fired}");
    assert!(
        injector
            .decide(&Call::new(1, "us-east-1/checkout/stock"))
            .is_pass()
    );
}

#[test]
fn the_same_rule_text_drives_the_simulator() {
    let scenario_text = format!(
        r#"
[simulation]
seed = 11
requests = 4000

[load]
target = "checkout"
rate_per_s = 100

[[function]]
name = "checkout"
handler = [{{ call = "orders", timeout = "1s" }}]

[[dependency]]
name = "orders"
latency = "5ms"

[[fault]]
{RULE}

[hypothesis]
success_rate = ">= 99%"
"#
    );
    let scenario =
        chaos_sim::scenario::parse(&scenario_text, "inline.toml").expect("valid scenario");
    let report = chaos_sim::Simulation::new(scenario)
        .expect("compiles")
        .run();
    assert_eq!(
        report.control.failed.throttle, 0,
        "no faults in the control run"
    );
    // No retries: each request makes one call, throttled with probability 0.25.
    // Binomial(4000, 0.25): standard deviation 27.4; 5 sigma.
    let throttled = report.experiment.failed.throttle as f64;
    assert!(
        (throttled - 1_000.0).abs() < 5.0 * 27.4,
        "throttled {throttled}"
    );
    assert_eq!(
        report.exit_code(),
        1,
        "25% throttles break a 99% success hypothesis"
    );
}
