use std::time::Duration;

use crate::fault::ErrorKind;
use crate::latency::LatencyDist;
use crate::plan::Plan;
use crate::rule::Rule;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn harness(invocations: u32, width: u32) -> Harness {
    Harness::builder()
        .invocations(invocations)
        .fan_out(width)
        .deadline(ms(1_000))
        .site(Site::new("orders").service("dynamodb").operation("GetItem"))
        .site("cache")
        .build()
        .expect("valid harness")
}

/// One call at `orders`, a 100 ms timeout of its own, a fallback on any failure.
async fn with_fallback(invocation: Invocation) -> Result<Served, ErrorKind> {
    let call = tokio::time::timeout(ms(100), invocation.call("orders")).await;
    match call {
        Ok(Ok(())) => {
            tokio::time::sleep(ms(10)).await;
            Ok(Served::Primary)
        }
        _ => Ok(Served::Fallback),
    }
}

#[test]
fn latency_runs_on_the_virtual_clock() {
    let plan = Plan::new(1).with_rule(Rule::latency(LatencyDist::constant(ms(40))));
    let report = harness(50, 50).run(&plan, with_fallback).unwrap();
    assert_eq!(report.len(), 50);
    for record in report.records() {
        assert_eq!(record.outcome, Outcome::Ok, "{record}");
        assert_eq!(
            record.latency,
            ms(50),
            "40 ms injected + 10 ms of work: {record}"
        );
        assert_eq!((record.calls, record.faulted_calls), (1, 1));
    }
    // Over its own 100 ms timeout: every invocation serves its fallback at 100 ms.
    let slow = Plan::new(1).with_rule(Rule::latency(LatencyDist::constant(ms(2_000))));
    let report = harness(50, 1).run(&slow, with_fallback).unwrap();
    assert_eq!(report.fallback_rate(), 1.0);
    assert_eq!(report.latency_quantile(1.0), Some(ms(100)));
}

#[test]
fn outcomes_follow_the_handler_and_the_deadline() {
    let plan = Plan::new(3).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.5));
    // No fallback: errors surface as their kind.
    let report = harness(200, 200)
        .run(&plan, |invocation: Invocation| async move {
            invocation.call("orders").await?;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    let failed = report.count(|r| r.outcome == Outcome::Failed(ErrorKind::Throttle));
    assert_eq!(failed as u64, report.faulted_calls());
    assert_eq!(failed + report.count(|r| r.outcome == Outcome::Ok), 200);
    // Binomial(200, 0.5): 5 sigma is about 35.
    assert!((65..=135).contains(&failed), "{failed}");

    // A handler slower than its deadline times out at the deadline, and is watched on.
    let report = harness(3, 1)
        .run(&Plan::new(0), |invocation: Invocation| async move {
            invocation.call("orders").await?;
            tokio::time::sleep(ms(1_500)).await;
            invocation.call("cache").await?;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    for record in report.records() {
        assert_eq!(record.outcome, Outcome::TimedOut);
        assert_eq!(record.latency, ms(1_000));
        assert_eq!(record.overrun, ms(500));
        assert_eq!((record.calls, record.calls_after_deadline), (2, 1));
        assert!(!record.abandoned && record.worked_past_deadline());
    }
}

#[test]
fn an_answer_at_the_deadline_is_in_time() {
    let report = harness(1, 1)
        .run(&Plan::new(0), |invocation: Invocation| async move {
            invocation.call("orders").await?;
            tokio::time::sleep(ms(1_000)).await;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    assert_eq!(report.records()[0].outcome, Outcome::Ok);
    assert_eq!(report.records()[0].latency, ms(1_000));
}

#[test]
fn injected_timeouts_hold_until_the_deadline_and_hangs_until_before_it() {
    let plan = Plan::new(0).with_rule(Rule::error(ErrorKind::Timeout));
    let report = harness(2, 2)
        .run(&plan, |invocation: Invocation| async move {
            invocation.call("orders").await?;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    // The injected timeout returns at the deadline's instant, which is still in time.
    assert_eq!(
        report.records()[0].outcome,
        Outcome::Failed(ErrorKind::Timeout)
    );
    assert_eq!(report.records()[0].latency, ms(1_000));
    assert!(report.records()[0].outcome.is_unclean_failure());

    let hang = crate::fault::Fault::Hang { buffer: ms(300) };
    let plan = Plan::new(0).with_rule(Rule::new(hang));
    let report = harness(1, 1)
        .run(&plan, |invocation: Invocation| async move {
            invocation.call("orders").await?;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    assert_eq!(
        report.records()[0].outcome,
        Outcome::Failed(ErrorKind::Timeout)
    );
    assert_eq!(report.records()[0].latency, ms(700));
}

#[test]
fn a_panic_and_a_runaway_loop_are_outcomes_not_crashes() {
    let plan = Plan::new(0).with_rule(Rule::error(ErrorKind::Throttle));
    let mut harness_builder = Harness::builder();
    harness_builder
        .invocations(4)
        .fan_out(4)
        .deadline(ms(1_000))
        .max_calls_per_invocation(50)
        .site("orders");
    let report = harness_builder
        .build()
        .unwrap()
        .run(&plan, |invocation: Invocation| async move {
            if invocation.index() == 2 {
                panic!("bug in invocation two");
            }
            // Retries a throttle at once, for ever.
            while invocation.call("orders").await.is_err() {}
            Ok::<_, ErrorKind>(Served::Primary)
        })
        .unwrap();
    assert_eq!(
        report.records()[2].outcome,
        Outcome::Panicked("bug in invocation two".into())
    );
    let runaway = &report.records()[0];
    assert!(runaway.runaway && runaway.abandoned, "{runaway}");
    assert_eq!(
        (runaway.outcome.clone(), runaway.calls),
        (Outcome::TimedOut, 50)
    );
}

#[test]
fn misconfigurations_are_errors() {
    let build = |edit: &dyn Fn(&mut HarnessBuilder)| {
        let mut builder = Harness::builder();
        builder.site("orders");
        edit(&mut builder);
        builder.build().map(|_| ())
    };
    assert_eq!(
        build(&|b| {
            b.invocations(0);
        }),
        Err(HarnessError::NoInvocations)
    );
    assert_eq!(
        build(&|b| {
            b.fan_out(0);
        }),
        Err(HarnessError::ZeroWidth)
    );
    assert_eq!(
        build(&|b| {
            b.deadline(Duration::ZERO);
        }),
        Err(HarnessError::ZeroDeadline)
    );
    assert_eq!(
        build(&|b| {
            b.site("orders");
        }),
        Err(HarnessError::DuplicateSite("orders".into()))
    );
    assert_eq!(
        build(&|b| {
            b.site("orders/*");
        }),
        Err(HarnessError::GlobInSiteName("orders/*".into()))
    );
    let none = Harness::builder().build().unwrap_err();
    assert_eq!(none, HarnessError::NoSites);
    assert!(none.to_string().contains("declare each"), "{none}");

    let harness = harness(2, 1);
    let elsewhere = Plan::new(0).with_rule(
        Rule::error(ErrorKind::Throttle)
            .for_service("s3")
            .named("s3"),
    );
    let err = harness.run(&elsewhere, with_fallback).unwrap_err();
    assert!(
        matches!(err, HarnessError::RuleMatchesNoSite { ref rule, .. } if rule == "s3"),
        "{err}"
    );
    let expiring = Rule::error(ErrorKind::Throttle).expiring_at(std::time::SystemTime::UNIX_EPOCH);
    let err = harness
        .run(&Plan::new(0).with_rule(expiring), with_fallback)
        .unwrap_err();
    assert_eq!(err, HarnessError::WallClockRule("#0".into()));
    let invalid = Plan::new(0).with_rule(Rule::error(ErrorKind::Throttle).with_probability(2.0));
    assert!(matches!(
        harness.run(&invalid, with_fallback),
        Err(HarnessError::Plan(_))
    ));

    let typo = harness
        .run(&Plan::new(0), |invocation: Invocation| async move {
            invocation.call("order").await?;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap_err();
    assert_eq!(
        typo,
        HarnessError::UndeclaredSite {
            invocation: 0,
            site: "order".into(),
            declared: "orders, cache".into()
        }
    );
    let silent = harness
        .run(&Plan::new(0), |_| async {
            Ok::<_, ErrorKind>(Served::Primary)
        })
        .unwrap_err();
    assert_eq!(silent, HarnessError::NoCallsMade);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inside = runtime.block_on(async { harness.run(&Plan::new(0), with_fallback) });
    assert_eq!(inside.unwrap_err(), HarnessError::InsideRuntime);
}

/// A plan whose every part is order-sensitive if anything is: random latency, errors,
/// timeouts and a window.
fn busy_plan(seed: u64) -> Plan {
    let latency = LatencyDist::log_normal_p50_p99(ms(20), ms(400)).unwrap();
    Plan::new(seed)
        .with_rule(Rule::latency(latency).with_probability(0.5).named("slow"))
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .with_probability(0.2)
                .named("throttle"),
        )
        .with_rule(
            Rule::error(ErrorKind::Timeout)
                .with_probability(0.3)
                .during(ms(50), ms(200))
                .named("timeouts"),
        )
}

/// Retries up to three times with jittered backoff; falls back after.
async fn retrying(invocation: Invocation) -> Result<Served, ErrorKind> {
    use rand::RngExt;
    let mut rng = invocation.rng();
    for _ in 0..3 {
        match tokio::time::timeout(ms(150), invocation.call("orders")).await {
            Ok(Ok(())) => return Ok(Served::Primary),
            _ => tokio::time::sleep(ms(rng.random_range(1..40))).await,
        }
    }
    Ok(Served::Fallback)
}

#[test]
fn runs_are_deterministic_whatever_the_spawn_order() {
    let plan = busy_plan(9);
    let run = |order: SpawnOrder| {
        let mut builder = Harness::builder();
        builder
            .invocations(300)
            .fan_out(300)
            .deadline(ms(1_000))
            .spawn_order(order)
            .site("orders");
        builder.build().unwrap().run(&plan, retrying).unwrap()
    };
    let first = run(SpawnOrder::Index);
    assert_eq!(first, run(SpawnOrder::Index), "same plan, same report");
    for order in [
        SpawnOrder::Reversed,
        SpawnOrder::Shuffled(1),
        SpawnOrder::Shuffled(2),
    ] {
        assert_eq!(first.records(), run(order).records(), "{order:?}");
    }
    // Not vacuous: the run has every outcome the plan can cause.
    assert!(first.count(|r| r.outcome == Outcome::Fallback) > 0);
    assert!(first.count(|r| r.outcome == Outcome::Ok) > 0);
    assert!(first.count(|r| r.calls > 1) > 0, "retries happened");
    // And another seed is another run.
    let other = {
        let mut builder = Harness::builder();
        builder
            .invocations(300)
            .fan_out(300)
            .deadline(ms(1_000))
            .site("orders");
        builder
            .build()
            .unwrap()
            .run(&busy_plan(10), retrying)
            .unwrap()
    };
    assert_ne!(first.records(), other.records());
}

#[test]
fn a_bounded_fan_out_starts_each_invocation_as_one_ends() {
    let plan = Plan::new(0).with_rule(Rule::latency(LatencyDist::constant(ms(100))));
    let starts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&starts);
    let origin = std::sync::Arc::new(std::sync::OnceLock::new());
    harness(10, 4)
        .run(&plan, move |invocation: Invocation| {
            let origin = origin.get_or_init(tokio::time::Instant::now);
            seen.lock()
                .unwrap()
                .push((invocation.index(), origin.elapsed()));
            with_fallback(invocation)
        })
        .unwrap();
    let starts = starts.lock().unwrap().clone();
    let at = |index: u32| starts.iter().find(|(i, _)| *i == index).unwrap().1;
    // 110 ms each (100 injected + 10 of work), four at a time.
    assert_eq!(
        (at(0), at(3), at(4), at(7), at(8)),
        (ms(0), ms(0), ms(110), ms(110), ms(220))
    );
}

#[test]
fn steady_state_assertions_pass_and_fail_on_what_they_check() {
    let plan = Plan::new(5).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.25));
    let report = harness(400, 400).run(&plan, with_fallback).unwrap();
    let fallback = report.fallback_rate();
    assert!(fallback > 0.1 && fallback < 0.4, "{fallback}");
    assert!(
        SteadyState::new()
            .min_success_rate(1.0)
            .check(&report)
            .is_ok()
    );
    assert!(
        SteadyState::new()
            .max_fallback_rate(fallback)
            .check(&report)
            .is_ok()
    );
    let err = SteadyState::new()
        .max_fallback_rate(fallback - 0.01)
        .check(&report)
        .unwrap_err();
    assert!(
        matches!(err.0[..], [Violation::FallbackRate { .. }]),
        "{err}"
    );
    assert!(
        SteadyState::new()
            .max_latency(1.0, ms(10))
            .check(&report)
            .is_ok()
    );
    let err = SteadyState::new()
        .max_latency(1.0, ms(9))
        .check(&report)
        .unwrap_err();
    assert!(err.to_string().contains("latency p100 is 10ms"), "{err}");

    let late = harness(2, 1)
        .run(&Plan::new(0), |invocation: Invocation| async move {
            tokio::time::sleep(ms(1_200)).await;
            invocation.call("orders").await?;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    let all = SteadyState::new()
        .min_success_rate(0.5)
        .no_call_after_deadline()
        .failures_are_clean()
        .no_work_after_deadline();
    let err = all.check(&late).unwrap_err();
    assert_eq!(err.0.len(), 4, "{err}");
    assert!(matches!(
        err.0[1],
        Violation::CallAfterDeadline { invocations: 2, .. }
    ));
    assert!(err.to_string().contains("invocation 0: timed out"), "{err}");
}

#[test]
fn a_steady_state_that_checks_nothing_or_nonsense_is_an_error() {
    let report = harness(1, 1).run(&Plan::new(0), with_fallback).unwrap();
    for steady in [
        SteadyState::new(),
        SteadyState::new().min_success_rate(99.0),
        SteadyState::new().max_fallback_rate(f64::NAN),
        SteadyState::new().max_latency(0.0, ms(1)),
    ] {
        let err = steady.check(&report).unwrap_err();
        assert!(matches!(err.0[..], [Violation::Misconfigured(_)]), "{err}");
    }
}

#[test]
fn latency_quantiles_use_the_nearest_rank() {
    let plan = Plan::new(0);
    let report = harness(10, 10)
        .run(&plan, |invocation: Invocation| async move {
            invocation.call("orders").await?;
            tokio::time::sleep(ms(u64::from(invocation.index() + 1) * 10)).await;
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    assert_eq!(report.latency_quantile(0.5), Some(ms(50)));
    assert_eq!(report.latency_quantile(0.51), Some(ms(60)));
    assert_eq!(report.latency_quantile(0.01), Some(ms(10)));
    assert_eq!(report.latency_quantile(1.0), Some(ms(100)));
    assert_eq!(report.latency_quantile(0.0), None);
    assert_eq!(report.latency_quantile(1.5), None);
}

/// A handler whose dependency is a tower service wrapped in the crate's own `ChaosLayer`,
/// on the run's injector: its faults apply, and the run counts as having reached the
/// injector.
#[cfg(feature = "tower")]
#[test]
fn a_chaos_layer_on_the_runs_injector_is_faulted() {
    use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

    struct Get {
        key: u64,
    }
    let plan = Plan::new(2).with_rule(
        Rule::error(ErrorKind::Throttle)
            .for_site("orders")
            .with_probability(0.5),
    );
    let report = harness(100, 100)
        .run(&plan, |invocation: Invocation| async move {
            let layer = crate::ChaosLayer::from_fn(invocation.injector().clone(), |get: &Get| {
                crate::Call::new(get.key, "orders")
            });
            let mut orders = ServiceBuilder::new()
                .layer(layer)
                .service_fn(|_: Get| async { Ok::<_, BoxError>(7) });
            let get = Get {
                key: invocation.request_key(),
            };
            let answer = match orders.ready().await {
                Ok(service) => service.call(get).await,
                Err(error) => Err(error),
            };
            Ok::<_, ErrorKind>(if answer.is_ok() {
                Served::Primary
            } else {
                Served::Fallback
            })
        })
        .unwrap();
    // The same decisions as `Invocation::call` would make: keyed by the invocation.
    let injector = crate::Injector::new(plan).unwrap();
    for record in report.records() {
        let faulted = injector
            .decide(&crate::Call::new(u64::from(record.index), "orders"))
            .failure
            .is_some();
        let expected = if faulted {
            Outcome::Fallback
        } else {
            Outcome::Ok
        };
        assert_eq!(record.outcome, expected, "{record}");
    }
    assert!(report.fallback_rate() > 0.2 && report.fallback_rate() < 0.8);
}

/// Invocation 0 answers at once; 1 answers 100 ms after its deadline with no call after it;
/// 2 makes a call 200 ms after its deadline, then answers.
fn mixed_report() -> Report {
    harness(3, 3)
        .run(&Plan::new(5), |invocation: Invocation| async move {
            invocation.call("orders").await?;
            match invocation.index() {
                0 => {}
                1 => tokio::time::sleep(ms(1_100)).await,
                _ => {
                    tokio::time::sleep(ms(1_200)).await;
                    invocation.call("cache").await?;
                }
            }
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap()
}

#[test]
fn records_and_reports_say_what_happened() {
    let report = mixed_report();
    assert!(!report.is_empty());
    assert_eq!(report.plan(), &Plan::new(5));
    assert_eq!(report.calls_after_deadline(), 1);
    assert_eq!(report.success_rate(), 1.0 / 3.0);
    assert_eq!(report.failure_rate(), 1.0 - 1.0 / 3.0);
    let [on_time, late, calling] = report.records() else {
        panic!("three records");
    };
    assert!(!on_time.worked_past_deadline());
    assert!(late.worked_past_deadline(), "ran 100 ms past");
    assert_eq!((late.overrun, late.calls_after_deadline), (ms(100), 0));
    assert!(calling.worked_past_deadline());
    assert_eq!(
        on_time.to_string(),
        "invocation 0: ok after 0ns, 1 calls (0 faulted)"
    );
    assert_eq!(
        late.to_string(),
        "invocation 1: timed out at the deadline after 1s, 1 calls (0 faulted), ran 100ms past the deadline"
    );
    assert_eq!(
        calling.to_string(),
        "invocation 2: timed out at the deadline after 1s, 2 calls (0 faulted, 1 after the deadline), ran 200ms past the deadline"
    );
    assert_eq!(
        report.to_string(),
        "3 invocations: 1 ok, 0 fallback, 0 failed, 2 timed out; 0 faulted calls, 1 after a deadline; latency p50 1s, p99 1s"
    );
    // Only the record that called late is named, and counted.
    let err = SteadyState::new()
        .min_success_rate(0.5)
        .no_call_after_deadline()
        .check(&report)
        .unwrap_err();
    assert!(
        matches!(
            &err.0[..],
            [
                Violation::SuccessRate { example: Some(first_failure), .. },
                Violation::CallAfterDeadline { invocations: 1, example },
            ] if first_failure.index == 1 && example.index == 2
        ),
        "{err}"
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with("success rate 33.3333% is below"),
        "{shown}"
    );
    assert_eq!(shown.matches("; ").count(), 1, "{shown}");
    assert!(
        shown.contains("past the deadline); 1 invocations made calls after their deadline"),
        "{shown}"
    );
}

#[test]
fn a_record_still_running_or_runaway_says_so() {
    let mut builder = Harness::builder();
    builder
        .invocations(1)
        .deadline(ms(100))
        .watch_after_deadline(ms(50))
        .max_calls_per_invocation(3)
        .site("orders");
    let report = builder
        .build()
        .unwrap()
        .run(&Plan::new(0), |invocation: Invocation| async move {
            loop {
                invocation.call("orders").await?;
            }
            #[allow(unreachable_code)]
            Ok::<_, crate::fault::InjectedError>(Served::Primary)
        })
        .unwrap();
    let record = &report.records()[0];
    assert!(record.abandoned && record.runaway && record.worked_past_deadline());
    assert_eq!(record.overrun, ms(50));
    assert_eq!(
        report.calls_after_deadline(),
        0,
        "its calls were all in time"
    );
    assert_eq!(
        record.to_string(),
        "invocation 0: timed out at the deadline after 100ms, 3 calls (0 faulted), still running 50ms past the deadline, hit the cap on calls per invocation"
    );
}
