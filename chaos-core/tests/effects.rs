//! What a verdict does is defined once (`Verdict::effect`): the live injector holds each call
//! exactly as long as the effect says and ends it the same way, for every fault kind.

use std::time::Duration;

use chaos_core::advanced::LocalMatchCounter;
use chaos_core::{Call, CompiledPlan, Deadline, Injector, Outcome};

const KINDS: &[&str] = &[
    r#"fault = { latency = "250ms" }"#,
    r#"fault = { error = "throttle" }"#,
    r#"fault = { error = "timeout" }"#,
    r#"fault = { error = "connection_reset" }"#,
    r#"fault = { error = { server_error = 503 } }"#,
    r#"fault = { hang = { buffer = "100ms" } }"#,
    r#"fault = { hang = { buffer = "0s" } }"#,
    r#"fault = { status = 429 }"#,
];

fn plan(fault: &str) -> CompiledPlan {
    let text = format!(
        "seed = 5\n[[rules]]\nfault = {{ latency = \"40ms\" }}\nprobability = 1.0\n[[rules]]\nname = \"r\"\n{fault}\nprobability = 1.0\n"
    );
    CompiledPlan::from_toml_str(&text).expect("valid plan")
}

#[tokio::test(start_paused = true)]
async fn the_injector_applies_exactly_the_effect_of_each_fault_kind() {
    for fault in KINDS {
        for deadline in [Some(Duration::from_secs(3)), None] {
            let compiled = plan(fault);
            let call = Call::new(7, "checkout/orders");
            let verdict = compiled.evaluate(&call, Duration::ZERO, &LocalMatchCounter::new(2));
            let effect = verdict.effect(deadline);

            let mut builder = Injector::builder();
            builder.plan(compiled).ignore_env();
            let injector = builder.build().expect("valid plan");
            let start = tokio::time::Instant::now();
            let result = injector.apply(&call, deadline.map(Deadline::after)).await;
            assert_eq!(
                start.elapsed(),
                effect.delay,
                "{fault}, deadline {deadline:?}"
            );
            match (&effect.outcome, result) {
                (Outcome::Proceed, Ok(())) => {}
                (Outcome::Fail { kind, .. }, Err(error)) => {
                    assert_eq!(&error.kind, kind, "{fault}");
                    assert_eq!(error.rule, "r");
                }
                (expected, got) => panic!("{fault}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn timeouts_and_hangs_are_timeouts_and_nothing_else_is() {
    let timeouts: Vec<bool> = KINDS
        .iter()
        .map(|fault| {
            let compiled = plan(fault);
            let verdict = compiled.evaluate(
                &Call::new(7, "s"),
                Duration::ZERO,
                &LocalMatchCounter::new(2),
            );
            matches!(verdict.effect(None).outcome, Outcome::Fail { ref kind, .. } if kind.is_timeout())
        })
        .collect();
    assert_eq!(
        timeouts,
        vec![false, false, true, false, false, true, true, false]
    );
}

#[tokio::test(start_paused = true)]
async fn a_verdict_applied_without_an_injector_fails_under_its_rules_label() {
    use chaos_core::advanced::apply_verdict;
    use chaos_core::{ErrorKind, InjectedError, InjectedKind};
    let compiled = plan(r#"fault = { error = "throttle" }"#);
    let counter = LocalMatchCounter::new(compiled.rule_count());
    let verdict = || compiled.evaluate(&Call::new(1, "s"), Duration::ZERO, &counter);
    let started = tokio::time::Instant::now();
    let labelled = apply_verdict(verdict(), Some("r".into()), None).await;
    // The latency rule's 40 ms runs first, then the call fails.
    assert_eq!(started.elapsed(), Duration::from_millis(40));
    assert_eq!(
        labelled,
        Err(InjectedError {
            rule: "r".into(),
            kind: InjectedKind::Error(ErrorKind::Throttle)
        })
    );
    let unlabelled = apply_verdict(verdict(), None, None).await;
    assert_eq!(unlabelled.map_err(|e| e.rule), Err("#1".to_owned()));
}
