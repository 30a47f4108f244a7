//! One fault definition, written once, runs in application code (the injector) and in the
//! simulator: the product's central promise, checked end to end across the crates.

use chaos_core::{Call, ErrorKind, InjectedKind, Injector, Rule};
use std::time::Duration;

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

/// A checkout function making one call to `orders` (5 ms, 1 s timeout), with `rule` as its
/// one fault and a 99% success hypothesis.
fn checkout_scenario(requests: u32, rule: &str) -> String {
    format!(
        r#"
[simulation]
seed = 11
requests = {requests}

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
{rule}

[hypothesis]
success_rate = ">= 99%"
"#
    )
}

#[test]
fn the_same_rule_text_drives_the_simulator() {
    let scenario_text = checkout_scenario(4000, RULE);
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

/// How a call ended, in the terms the injector and the simulator share.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    /// The call went ahead (after any added latency).
    Succeeded,
    /// The caller gave up at its deadline.
    TimedOut,
    /// The service throttled the call.
    Throttled,
    /// Another error (a 5xx, a reset, a replaced status, a corrupted answer).
    Failed,
}

/// Every fault kind, with how a call ends under it when its caller allows 1 s.
const FAULT_KINDS: [(&str, Ending); 8] = [
    (r#"{ latency = "200ms" }"#, Ending::Succeeded),
    (r#"{ error = "throttle" }"#, Ending::Throttled),
    (r#"{ error = { server_error = 503 } }"#, Ending::Failed),
    (r#"{ error = "connection_reset" }"#, Ending::Failed),
    (r#"{ error = "timeout" }"#, Ending::TimedOut),
    (r#"{ hang = { buffer = "100ms" } }"#, Ending::TimedOut),
    (r#"{ status = 503 }"#, Ending::Failed),
    // Live, an adapter that reads the answer corrupts it; the injector alone (and the
    // simulator, which models no payloads) fail the caller, as a parse failure does.
    (r#"{ corrupt = "truncate" }"#, Ending::Failed),
];

fn rule_text(fault: &str) -> String {
    format!(
        "name = \"r\"\nfault = {fault}\nmatch = {{ site = \"*/checkout/orders\" }}\nprobability = 1.0\n"
    )
}

/// What the live injector does with the rule: the ending and the virtual time it took.
fn live_ending(fault: &str) -> (Ending, Duration) {
    let mut plan = chaos_core::Plan::new(11);
    plan.rules
        .push(toml::from_str(&rule_text(fault)).expect("the rule parses"));
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    let injector = builder.build().expect("valid plan");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let started = tokio::time::Instant::now();
        let deadline = chaos_core::Deadline::after(Duration::from_secs(1));
        let result = injector
            .apply(&Call::new(7, "us-east-1/checkout/orders"), Some(deadline))
            .await;
        let ending = match result {
            Ok(()) => Ending::Succeeded,
            Err(e) if e.kind.is_timeout() => Ending::TimedOut,
            Err(e) if e.kind == InjectedKind::Error(ErrorKind::Throttle) => Ending::Throttled,
            Err(_) => Ending::Failed,
        };
        (ending, started.elapsed())
    })
}

/// What the simulator does with the same rule text on a call with a 1 s timeout.
fn simulated_ending(fault: &str) -> (Ending, f64) {
    let text = checkout_scenario(200, &rule_text(fault));
    let scenario = chaos_sim::scenario::parse(&text, "kinds.toml").expect("valid scenario");
    let run = chaos_sim::Simulation::new(scenario)
        .expect("compiles")
        .run()
        .experiment;
    let every = |count: u64| count == run.requests;
    let ending = if every(run.succeeded) {
        Ending::Succeeded
    } else if every(run.failed.timeout) {
        Ending::TimedOut
    } else if every(run.failed.throttle) {
        Ending::Throttled
    } else if every(run.failed.error) {
        Ending::Failed
    } else {
        panic!(
            "{fault}: requests ended in more than one way: {:?}",
            run.failed
        )
    };
    (ending, run.latency_ms.p50)
}

#[test]
fn each_fault_kind_ends_a_call_the_same_way_live_and_simulated() {
    for (fault, expected) in FAULT_KINDS {
        let (live, took) = live_ending(fault);
        let (simulated, p50_ms) = simulated_ending(fault);
        assert_eq!((live, simulated), (expected, expected), "{fault}");
        match expected {
            // Latency adds to the call: the injector waits it out, the simulator adds it to
            // the dependency's 5 ms.
            Ending::Succeeded => {
                assert_eq!(took, Duration::from_millis(200), "{fault}");
                assert!((p50_ms - 205.0).abs() < 1.0, "{fault}: p50 {p50_ms} ms");
            }
            // A timeout or a hang holds the call until the caller gives up (a hang keeps its
            // buffer back, to fail cleanly before the deadline).
            Ending::TimedOut => assert!(
                took >= Duration::from_millis(900) && took <= Duration::from_secs(1),
                "{fault}: took {took:?}"
            ),
            // Errors fail at once.
            Ending::Throttled | Ending::Failed => assert_eq!(took, Duration::ZERO, "{fault}"),
        }
    }
}
