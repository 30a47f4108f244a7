//! Live-plan behaviour across reloads: window origins, cumulative counters.

use std::time::Duration;

use super::*;
use crate::fault::ErrorKind;
use crate::plan::Plan;
use crate::rule::Rule;

fn built(plan: Plan, origin: WindowOrigin) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(plan).windows_from(origin).ignore_env();
    builder.build().expect("valid")
}

/// A minute-long window from `0s`, as an operator pushes it to start an experiment now.
fn first_minute() -> Plan {
    Plan::new(1).with_rule(
        Rule::error(ErrorKind::Throttle)
            .named("first-minute")
            .during(Duration::ZERO, Duration::from_secs(60)),
    )
}

fn throttled(injector: &Injector) -> usize {
    (0..100)
        .filter(|&key| injector.decide(&Call::new(key, "orders")).failure.is_some())
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_window_reloaded_later_counts_from_the_load_when_anchored_there() {
    let anchored = built(Plan::new(1), WindowOrigin::PlanLoad);
    let from_start = built(Plan::new(1), WindowOrigin::InjectorStart);
    tokio::time::advance(Duration::from_secs(120)).await;
    for injector in [&anchored, &from_start] {
        injector.reload(first_minute()).expect("valid");
    }
    // Anchored: the window is open at once, for its minute.
    assert_eq!(anchored.schedule_elapsed(), Duration::ZERO);
    assert_eq!(throttled(&anchored), 100);
    // From the injector's start: t = 120 s is past the window, as before the option.
    assert_eq!(from_start.schedule_elapsed(), Duration::from_secs(120));
    assert_eq!(throttled(&from_start), 0);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(throttled(&anchored), 100);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(throttled(&anchored), 0);
    // Another reload restarts the anchored timeline.
    anchored.reload(first_minute()).expect("valid");
    assert_eq!(throttled(&anchored), 100);
    // The guardrails' clock is still the injector's.
    assert_eq!(anchored.elapsed(), Duration::from_secs(180));
}

#[tokio::test(start_paused = true)]
async fn a_ramp_reloaded_later_starts_from_zero_when_anchored_to_the_load() {
    let ramp = || {
        Plan::new(3).with_rule(
            Rule::error(ErrorKind::Throttle)
                .starting_at(Duration::ZERO)
                .ramping_up_over(Duration::from_secs(100)),
        )
    };
    let anchored = built(Plan::new(1), WindowOrigin::PlanLoad);
    let from_start = built(ramp(), WindowOrigin::InjectorStart);
    tokio::time::advance(Duration::from_secs(300)).await;
    anchored.reload(ramp()).expect("valid");
    from_start.reload(ramp()).expect("valid");
    assert_eq!(throttled(&anchored), 0);
    assert_eq!(throttled(&from_start), 100);
    tokio::time::advance(Duration::from_secs(50)).await;
    // Half way up the ramp: probability 0.5 over 100 keys, within 5 standard deviations.
    let half = throttled(&anchored);
    assert!((25..=75).contains(&half), "{half}");
}
