//! The fallback property of `examples/fallback_cache`: the correct handler holds under
//! generated plans, the buggy twin is caught, and the shrunk failure is kept as a regression.

#[path = "../examples/fallback_cache/handlers.rs"]
mod handlers;

use std::time::Duration;

use chaos_core::fault::ErrorKind;
use chaos_core::testing::{Outcome, Property, PropertyFailure, SpawnOrder, Violation};
use chaos_core::{LatencyDist, Plan, Rule};

/// Found by `the_buggy_twin_is_caught_and_shrinks_to_the_kept_regression` (proptest seed
/// 2026): every pricing call slowed by a constant 286 ms. With the service's own 15 ms, each
/// attempt takes 301 ms, one over the twin's 300 ms per-try timeout; it treats each timed-out
/// attempt as "try again", never as "use the cache", and its four attempts with backoff run
/// past the caller's 1 s deadline. Shrinking found the smallest such slowdown.
const SLOW_PRICING_JUST_OVER_THE_PER_TRY_TIMEOUT: &str = r#"{"seed":0,"rules":[{"name":"latency@pricing/get","fault":{"latency":{"constant":"286ms"}},"match":{"site":"pricing/get"},"probability":1.0}]}"#;

fn property() -> Property {
    Property::new(&handlers::harness(), handlers::steady_state()).seed(2026)
}

#[test]
fn the_correct_handler_holds_under_generated_plans() {
    let prices = handlers::Prices::warm();
    let plans = handlers::plans().strategy().expect("valid bounds");
    let result = property().check(plans, |invocation| {
        handlers::correct(invocation, prices.clone())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn the_buggy_twin_is_caught_and_shrinks_to_the_kept_regression() {
    let prices = handlers::Prices::warm();
    let plans = handlers::plans().strategy().expect("valid bounds");
    let failure = property()
        .check(plans, |invocation| {
            handlers::buggy(invocation, prices.clone())
        })
        .expect_err("the twin's bug must be found");
    let PropertyFailure::Falsified {
        plan, violations, ..
    } = &failure
    else {
        panic!("expected a falsified steady state: {failure}");
    };
    let kept: Plan = chaos_core::replay!(SLOW_PRICING_JUST_OVER_THE_PER_TRY_TIMEOUT).unwrap();
    assert_eq!(plan, &kept, "{failure}");
    assert!(
        failure
            .to_string()
            .contains(SLOW_PRICING_JUST_OVER_THE_PER_TRY_TIMEOUT),
        "the printed replay line is the kept one: {failure}"
    );
    assert!(
        violations
            .0
            .iter()
            .any(|v| matches!(v, Violation::CallAfterDeadline { .. })),
        "{failure}"
    );
}

#[test]
fn regression_slow_pricing_just_over_the_per_try_timeout() {
    let plan = chaos_core::replay!(SLOW_PRICING_JUST_OVER_THE_PER_TRY_TIMEOUT).unwrap();
    let harness = handlers::harness();
    let prices = handlers::Prices::warm();

    let buggy = harness
        .run(&plan, |invocation| {
            handlers::buggy(invocation, prices.clone())
        })
        .unwrap();
    // Every invocation: four attempts time out (301 ms > 300 ms), with 25, 50, 100 and
    // 200 ms of backoff after them. The caller gives up at 1 s, in the third backoff; the
    // fourth attempt starts at 1,075 ms, after the deadline, and the handler gives up at
    // 4 x 300 + 375 = 1,575 ms.
    for record in buggy.records() {
        assert_eq!(record.outcome, Outcome::TimedOut, "{record}");
        assert_eq!(
            (record.calls, record.calls_after_deadline),
            (4, 1),
            "{record}"
        );
        assert_eq!(record.overrun, Duration::from_millis(575), "{record}");
    }
    assert!(handlers::steady_state().check(&buggy).is_err());

    let correct = harness
        .run(&plan, |invocation| {
            handlers::correct(invocation, prices.clone())
        })
        .unwrap();
    handlers::steady_state()
        .check(&correct)
        .unwrap_or_else(|violations| panic!("{violations}"));
    // The fix serves the cache (or a clean error for the 5 uncached items) in time.
    assert_eq!(correct.count(|r| r.outcome == Outcome::Fallback), 190);
    assert_eq!(
        correct.count(|r| matches!(r.outcome, Outcome::Failed(_))),
        10
    );
}

#[test]
fn the_search_and_its_shrinking_are_deterministic() {
    let prices = handlers::Prices::warm();
    let run = || {
        let plans = handlers::plans().strategy().expect("valid bounds");
        property()
            .cases(64)
            .check(plans, |invocation| {
                handlers::buggy(invocation, prices.clone())
            })
            .expect_err("caught")
    };
    assert_eq!(run(), run());
}

#[test]
fn both_handlers_give_the_same_records_whatever_the_spawn_order() {
    // Slow, throttled and timing-out pricing calls, the timeouts in a window: outcomes
    // depend on retries, backoff and the clock, and still not on task order.
    let slow =
        LatencyDist::log_normal_p50_p99(Duration::from_millis(40), Duration::from_millis(900))
            .expect("p99 above p50");
    let plan = Plan::new(31)
        .with_rule(Rule::latency(slow).with_probability(0.4).named("slow"))
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .with_probability(0.2)
                .named("throttled"),
        )
        .with_rule(
            Rule::error(ErrorKind::Timeout)
                .with_probability(0.5)
                .during(Duration::from_millis(200), Duration::from_millis(600))
                .named("timeouts"),
        );
    let prices = handlers::Prices::warm();
    for buggy in [false, true] {
        let run = |order: SpawnOrder| {
            let harness = handlers::harness_builder()
                .fan_out(200)
                .spawn_order(order)
                .build()
                .expect("a valid harness");
            let prices = prices.clone();
            harness
                .run(&plan, move |invocation| {
                    let prices = prices.clone();
                    async move {
                        if buggy {
                            handlers::buggy(invocation, prices).await
                        } else {
                            handlers::correct(invocation, prices).await
                        }
                    }
                })
                .expect("runs")
        };
        let first = run(SpawnOrder::Index);
        assert!(first.count(|r| r.outcome == Outcome::Ok) > 0);
        assert!(first.count(|r| r.outcome != Outcome::Ok) > 0);
        for order in [
            SpawnOrder::Index,
            SpawnOrder::Reversed,
            SpawnOrder::Shuffled(1),
            SpawnOrder::Shuffled(99),
        ] {
            assert_eq!(
                first.records(),
                run(order).records(),
                "buggy: {buggy}, {order:?}"
            );
        }
    }
}
