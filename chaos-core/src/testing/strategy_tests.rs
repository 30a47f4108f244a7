use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};

use crate::fault::{ErrorKind, Fault, InjectedError};
use crate::plan::Plan;

use super::strategy::{FaultChoice, PlanSpace, StrategyError};
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sites() -> Vec<Site> {
    vec![
        Site::new("orders").service("dynamodb").operation("GetItem"),
        Site::new("prices").service("http"),
    ]
}

fn harness() -> Harness {
    Harness::builder()
        .invocations(40)
        .fan_out(40)
        .deadline(ms(1_000))
        .sites(sites())
        .build()
        .unwrap()
}

fn sample(space: &PlanSpace, count: usize) -> Vec<Plan> {
    let strategy = space.strategy().unwrap();
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(3),
        ..Config::default()
    });
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[test]
fn impossible_bounds_are_errors() {
    let space = || PlanSpace::new(sites());
    let err = |space: PlanSpace| space.strategy().map(|_| ()).unwrap_err();
    assert_eq!(
        err(PlanSpace::new(Vec::<Site>::new())),
        StrategyError::NoSites
    );
    assert_eq!(err(space().max_rules(0)), StrategyError::RuleCount(0));
    assert_eq!(err(space().faults([])), StrategyError::NoFaultKinds);
    assert_eq!(err(space().errors([])), StrategyError::NoErrorKinds);
    assert!(
        space()
            .errors([])
            .faults([FaultChoice::Timeout])
            .strategy()
            .is_ok()
    );
    assert_eq!(
        err(space().faults([FaultChoice::Status]).statuses([42])),
        StrategyError::Statuses(vec![42])
    );
    assert!(matches!(
        err(space().latency(ms(10), ms(5))),
        StrategyError::LatencyBounds { .. }
    ));
    assert!(matches!(
        err(space().latency(Duration::ZERO, Duration::ZERO)),
        StrategyError::LatencyBounds { .. }
    ));
    assert!(matches!(
        err(space().probability(0.5, 0.2)),
        StrategyError::ProbabilityBounds { .. }
    ));
    assert!(matches!(
        err(space().probability(0.0, 1.5)),
        StrategyError::ProbabilityBounds { .. }
    ));
    assert_eq!(
        err(space().schedules_within(Duration::ZERO)),
        StrategyError::Horizon(Duration::ZERO)
    );
    assert!(
        err(space().max_rules(0))
            .to_string()
            .contains("expected 1 to 64")
    );
}

#[test]
fn generated_plans_stay_in_their_space_and_run() {
    let space = PlanSpace::new(sites())
        .max_rules(4)
        .faults([
            FaultChoice::Latency,
            FaultChoice::Error,
            FaultChoice::Timeout,
            FaultChoice::Hang,
            FaultChoice::Status,
        ])
        .latency(ms(5), ms(800))
        .probability(0.1, 0.6)
        .schedules_within(ms(2_000));
    let plans = sample(&space, 200);
    let mut kinds = std::collections::BTreeSet::new();
    let mut windows = 0;
    for plan in &plans {
        assert!((1..=4).contains(&plan.rules.len()));
        plan.compile().expect("generated plans compile");
        for rule in &plan.rules {
            kinds.insert(rule.fault.label());
            let p = rule.trigger.probability;
            assert!((0.1..=0.6).contains(&p), "{p}");
            if let Some(window) = rule.schedule.window {
                windows += 1;
                assert!(window.start < ms(2_000) && window.duration <= Some(ms(2_000)));
            }
            if let Fault::Latency(dist) = &rule.fault {
                // Parameters within the bounds: the median is too, but for the exponential's
                // (ln 2 times its mean).
                let median = dist.quantile(0.5).unwrap();
                assert!(median >= ms(3) && median <= ms(801), "{dist:?}");
            }
        }
        // Every generated plan can run against the harness's sites.
        harness()
            .run(plan, |invocation: Invocation| async move {
                invocation.call("orders").await?;
                invocation.call("prices").await?;
                Ok::<_, InjectedError>(Served::Primary)
            })
            .expect("plans target declared sites only");
    }
    assert_eq!(
        kinds.len(),
        4,
        "latency, error, hang and status all appear: {kinds:?}"
    );
    assert!(windows > 0);
}

/// No fallback: any injected error fails the invocation.
async fn bare(invocation: Invocation) -> Result<Served, InjectedError> {
    invocation.call("orders").await?;
    invocation.call("prices").await?;
    Ok(Served::Primary)
}

#[test]
fn a_failing_property_shrinks_to_one_rule_and_replays() {
    let space = PlanSpace::new(sites()).faults([FaultChoice::Latency, FaultChoice::Error]);
    let property = Property::new(&harness(), SteadyState::new().min_success_rate(0.9)).seed(11);
    let failure = property.check(space.strategy().unwrap(), bare).unwrap_err();
    let PropertyFailure::Falsified { plan, report, .. } = &failure else {
        panic!("{failure}");
    };
    // Minimal: seed 0, one rule on one site, on every call, with the least latency that
    // misses the 1 s deadline (shrinking halves toward the smallest failing value).
    assert_eq!(plan.seed, 0, "{failure}");
    assert_eq!(plan.rules.len(), 1, "{failure}");
    let rule = &plan.rules[0];
    assert_eq!(rule.trigger.probability, 1.0, "{failure}");
    assert_eq!(rule.selector.site.as_deref(), Some("orders"), "{failure}");
    assert_eq!(
        rule.fault,
        Fault::Latency(crate::LatencyDist::constant(ms(1_001))),
        "{failure}"
    );
    assert_eq!(report.success_rate(), 0.0);
    // The printed line is one line, and it rebuilds the same plan.
    let line = failure.replay_line().unwrap();
    assert!(
        !line.contains('\n') && failure.to_string().contains(&line),
        "{failure}"
    );
    let json = line
        .strip_prefix("chaos_core::replay!(r#\"")
        .and_then(|l| l.strip_suffix("\"#)"))
        .unwrap();
    assert_eq!(&crate::replay!(json).unwrap(), plan);
}

#[test]
fn a_holding_property_passes_and_a_vacuous_one_is_refused() {
    let space = PlanSpace::new(sites())
        .faults([FaultChoice::Error])
        .errors([ErrorKind::Throttle]);
    let with_fallback = |invocation: Invocation| async move {
        let primary = async {
            invocation.call("orders").await?;
            invocation.call("prices").await
        };
        Ok::<_, ErrorKind>(match primary.await {
            Ok(()) => Served::Primary,
            Err(_) => Served::Fallback,
        })
    };
    let steady = SteadyState::new()
        .min_success_rate(1.0)
        .failures_are_clean();
    let property = Property::new(&harness(), steady.clone()).cases(32);
    property
        .check(space.strategy().unwrap(), with_fallback)
        .unwrap();
    let none = Property::new(&harness(), steady).cases(0);
    let err = none
        .check(space.strategy().unwrap(), with_fallback)
        .unwrap_err();
    assert!(matches!(err, PropertyFailure::Misconfigured(_)), "{err}");
    let mut typo = Harness::builder();
    typo.site("order");
    let err = Property::new(
        &typo.build().unwrap(),
        SteadyState::new().min_success_rate(1.0),
    )
    .check(PlanSpace::new(["order"]).strategy().unwrap(), bare)
    .unwrap_err();
    assert!(
        matches!(
            err,
            PropertyFailure::Harness(HarnessError::UndeclaredSite { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_handler_that_remembers_across_runs_is_reported_not_reproducible() {
    // Fails only the first run it ever sees: the minimal plan then passes on replay.
    let failed_once = Arc::new(AtomicBool::new(false));
    let space = PlanSpace::new(sites())
        .faults([FaultChoice::Latency])
        .latency(ms(1), ms(10));
    let err = Property::new(&harness(), SteadyState::new().min_success_rate(1.0))
        .cases(4)
        .check(space.strategy().unwrap(), move |invocation: Invocation| {
            let first = !failed_once.swap(true, Ordering::SeqCst);
            async move {
                invocation
                    .call("orders")
                    .await
                    .map_err(|e| e.error_kind())?;
                if first {
                    return Err(ErrorKind::Throttle);
                }
                Ok(Served::Primary)
            }
        })
        .unwrap_err();
    assert!(
        matches!(err, PropertyFailure::NotReproducible { .. }),
        "{err}"
    );
}

#[test]
fn the_replay_line_quotes_any_plan() {
    // A rule name that would end a `r#"..."#` string early.
    let rule = crate::Rule::error(ErrorKind::Throttle).named(r##"odd"#"name"##);
    let plan = Plan::new(1).with_rule(rule);
    let line = replay_line(&plan);
    let json = line
        .strip_prefix("chaos_core::replay!(r##\"")
        .and_then(|l| l.strip_suffix("\"##)"))
        .unwrap_or_else(|| panic!("two hashes: {line}"));
    assert_eq!(crate::replay!(json).unwrap(), plan);
}
