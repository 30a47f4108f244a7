use std::time::Duration;

use tokio::time::Instant;

use super::cache::CACHED_PLANS_PER_THREAD;
use super::*;
use crate::fault::ErrorKind;
use crate::fault::InjectedKind;
use crate::latency::LatencyDist;
use crate::plan::Plan;
use crate::rule::Rule;
use crate::timeout::Deadline;

pub(super) fn quiet(plan: Plan) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    builder.build().unwrap()
}

#[test]
fn failed_reload_keeps_previous_plan_when_asked_to() {
    let mut builder = Injector::builder();
    builder
        .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).named("all")))
        .on_rejected_reload(OnRejectedReload::KeepPrevious)
        .ignore_env();
    let injector = builder.build().unwrap();
    let err = injector
        .reload_toml("[[rules]]\nfault = { error = \"throttle\" }\nprobability = 2.0\n")
        .unwrap_err();
    assert!(matches!(err, PlanError::Rule { .. }));
    assert!(injector.last_reload_error().is_some());
    assert!(
        injector.decide(&Call::new(1, "s")).failure.is_some(),
        "old plan still in force"
    );
    assert_eq!(injector.snapshot().generation, 0);
    injector.reload(Plan::new(1)).unwrap();
    assert!(injector.decide(&Call::new(1, "s")).is_pass());
    assert!(injector.last_reload_error().is_none());
    assert_eq!(injector.snapshot().generation, 1);
}

#[tokio::test(start_paused = true)]
async fn budget_caps_injections_per_interval() {
    let mut builder = Injector::builder();
    builder
        .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
        .max_injections(3, Duration::from_secs(1))
        .ignore_env();
    let injector = builder.build().unwrap();
    let count = |inj: &Injector| {
        (0..10)
            .filter(|&k| inj.decide(&Call::new(k, "s")).failure.is_some())
            .count()
    };
    assert_eq!(count(&injector), 3);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(count(&injector), 3);
    assert_eq!(injector.snapshot().vetoed_by_budget, 14);
}

#[tokio::test(start_paused = true)]
async fn expiry_guardrail_stops_injection() {
    let mut builder = Injector::builder();
    builder
        .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
        .expire_after(Duration::from_secs(60))
        .ignore_env();
    let injector = builder.build().unwrap();
    assert!(!injector.decide(&Call::new(1, "s")).is_pass());
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(injector.decide(&Call::new(1, "s")).is_pass());
}

#[tokio::test(start_paused = true)]
async fn apply_sleeps_in_virtual_time_and_hangs_to_deadline() {
    let injector = quiet(
        Plan::new(1)
            .with_rule(Rule::latency(LatencyDist::constant(Duration::from_millis(
                300,
            ))))
            .with_rule(Rule::new(crate::fault::Fault::Hang {
                buffer: Duration::from_millis(100),
            })),
    );
    let start = Instant::now();
    let deadline = Deadline::after(Duration::from_secs(3));
    let err = injector
        .apply(&Call::new(1, "s"), Some(deadline))
        .await
        .unwrap_err();
    assert_eq!(err.kind, InjectedKind::Hang);
    assert_eq!(err.rule, "#1");
    assert_eq!(start.elapsed(), Duration::from_millis(2_900));
}

#[test]
fn kill_switch() {
    let injector = quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)));
    injector.disable();
    assert!(injector.decide(&Call::new(1, "s")).is_pass());
    assert_eq!(injector.snapshot().rules[0].evaluated, 0);
    injector.enable();
    assert!(!injector.decide(&Call::new(1, "s")).is_pass());
}

#[test]
fn more_injectors_than_cache_slots_neither_leak_nor_lose_counts() {
    let injectors: Vec<Injector> = (0..CACHED_PLANS_PER_THREAD as u64 + 3)
        .map(|seed| {
            quiet(Plan::new(seed).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.5)))
        })
        .collect();
    // Rotating through more injectors than a thread caches evicts an entry on every call.
    for round in 0..50u64 {
        for injector in &injectors {
            injector.decide(&Call::new(round, "s"));
        }
    }
    for injector in &injectors {
        assert_eq!(injector.snapshot().rules[0].evaluated, 50);
        let loaded = injector.shared.loaded.load();
        let registered = loaded.thread_counters.lock().unwrap().threads.len();
        assert!(
            registered <= 1,
            "{registered} counter sets registered for one thread"
        );
    }
    // A thread that ends hands its counts over.
    let first = injectors[0].clone();
    std::thread::spawn(move || {
        first.decide(&Call::new(1, "s"));
    })
    .join()
    .unwrap();
    assert_eq!(injectors[0].snapshot().rules[0].evaluated, 51);
    assert!(
        injectors[0]
            .shared
            .loaded
            .load()
            .thread_counters
            .lock()
            .unwrap()
            .threads
            .len()
            <= 1
    );
}

#[test]
fn racing_reloads_leave_the_version_naming_the_loaded_plan() {
    let injector = quiet(Plan::new(0));
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let injector = &injector;
            scope.spawn(move || {
                for round in 0..200 {
                    injector.reload(Plan::new(thread * 1000 + round)).unwrap();
                }
            });
        }
    });
    let loaded = injector.shared.loaded.load();
    assert_eq!(injector.shared.version(), loaded.version);
    assert_eq!(loaded.generation, 800);
}

#[tokio::test(start_paused = true)]
async fn budget_is_exact_under_concurrency() {
    let mut builder = Injector::builder();
    builder
        .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
        .max_injections(100, Duration::from_secs(3600))
        .ignore_env();
    let injector = builder.build().unwrap();
    let injected: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let injector = &injector;
                scope.spawn(move || {
                    (0..1_000u64)
                        .filter(|&k| {
                            injector
                                .decide(&Call::new(t * 1_000 + k, "s"))
                                .failure
                                .is_some()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(injected, 100);
    assert_eq!(injector.snapshot().vetoed_by_budget, 3_900);
}

#[test]
fn counters_add_up_across_threads() {
    let injector =
        quiet(Plan::new(3).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.25)));
    let expected: u64 = (0..4000u64)
        .filter(|&k| {
            // The decision is pure: recompute it on a private injector.
            let probe = quiet(
                Plan::new(3).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.25)),
            );
            probe.decide(&Call::new(k, "s")).failure.is_some()
        })
        .count() as u64;
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let injector = injector.clone();
            scope.spawn(move || {
                for k in (t * 1000)..((t + 1) * 1000) {
                    injector.decide(&Call::new(k, "s"));
                }
            });
        }
    });
    let stats = &injector.snapshot().rules[0];
    assert_eq!(stats.evaluated, 4000);
    assert_eq!(stats.injected, expected);
}

/// Applies `rule` to one call, runs `withdraw` one virtual second in, and returns the call's
/// result and how long it was held.
async fn held_then_withdrawn(
    rule: Rule,
    withdraw: impl FnOnce(&Injector),
) -> (Result<(), crate::fault::InjectedError>, Duration) {
    let injector = quiet(Plan::new(1).with_rule(rule));
    let start = Instant::now();
    let running = {
        let injector = injector.clone();
        tokio::spawn(async move { injector.apply(&Call::new(1, "s"), None).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    withdraw(&injector);
    (running.await.unwrap(), start.elapsed())
}

fn hang() -> Rule {
    Rule::new(crate::fault::Fault::Hang {
        buffer: Duration::ZERO,
    })
}

#[tokio::test(start_paused = true)]
async fn kill_switch_cuts_short_a_fault_in_progress() {
    let (result, held) = held_then_withdrawn(hang(), Injector::disable).await;
    assert_eq!(result, Ok(()), "a withdrawn fault lets the call go ahead");
    assert!(
        held < Duration::from_secs(2),
        "the 900 s hang went on for {held:?} after the kill switch"
    );
}

#[tokio::test(start_paused = true)]
async fn kill_switch_cuts_short_a_long_latency() {
    let latency = Rule::latency(LatencyDist::constant(Duration::from_secs(600)));
    let (result, held) = held_then_withdrawn(latency, Injector::disable).await;
    assert_eq!(result, Ok(()));
    assert!(held < Duration::from_secs(2));
}

#[test]
fn a_rejected_reload_means_no_faults_until_a_valid_plan() {
    let injector = quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).named("all")));
    assert!(injector.decide(&Call::new(1, "s")).failure.is_some());
    let err = injector
        .reload_toml("[[rules]]\nfault = { error = \"throttle\" }\nprobability = 2.0\n")
        .unwrap_err();
    assert!(matches!(err, PlanError::Rule { .. }));
    assert!(
        injector.decide(&Call::new(1, "s")).is_pass(),
        "a broken plan pushed to stop chaos must stop it"
    );
    assert!(injector.is_suspended() && injector.is_enabled());
    assert!(injector.snapshot().suspended);
    injector.enable();
    assert!(
        injector.decide(&Call::new(1, "s")).is_pass(),
        "the kill switch does not lift a rejection"
    );
    injector
        .reload(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
        .unwrap();
    assert!(injector.decide(&Call::new(1, "s")).failure.is_some());
    assert!(!injector.is_suspended());
}

#[tokio::test(start_paused = true)]
async fn a_rejected_reload_cuts_short_a_fault_in_progress() {
    let (result, held) = held_then_withdrawn(hang(), |injector| {
        assert!(injector.reload_toml("not a plan").is_err());
    })
    .await;
    assert_eq!(result, Ok(()));
    assert!(held < Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn an_injected_timeout_error_waits_for_the_deadline() {
    let injector = quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Timeout)));
    let start = Instant::now();
    let err = injector
        .apply(
            &Call::new(1, "s"),
            Some(Deadline::after(Duration::from_secs(3))),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, InjectedKind::Error(ErrorKind::Timeout));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    // No deadline known: fails at once.
    let start = Instant::now();
    assert!(injector.apply(&Call::new(1, "s"), None).await.is_err());
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_budget_admits_exactly_its_limit_and_renews_exactly_at_the_interval() {
    let mut builder = Injector::builder();
    builder
        .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
        .max_injections(2, Duration::from_secs(10))
        .ignore_env();
    let injector = builder.build().unwrap();
    let fails = |key| injector.decide(&Call::new(key, "s")).failure.is_some();
    assert!(fails(1) && fails(2));
    assert!(!fails(3), "the limit is exact");
    tokio::time::advance(Duration::from_secs(10) - Duration::from_nanos(1)).await;
    assert!(!fails(4), "still the first interval");
    tokio::time::advance(Duration::from_nanos(1)).await;
    assert!(
        fails(5) && fails(6),
        "a new interval starts exactly at 10 s"
    );
    assert!(!fails(7));
    assert_eq!(injector.snapshot().vetoed_by_budget, 3);
}

#[test]
fn a_zero_budget_interval_is_an_injector_error() {
    let mut builder = Injector::builder();
    builder.max_injections(1, Duration::ZERO).ignore_env();
    match builder.build().unwrap_err() {
        InjectorError::Guardrail { field, .. } => assert_eq!(field, "max_injections"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_expiry_guardrail_ends_exactly_at_its_limit() {
    let mut builder = Injector::builder();
    builder
        .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
        .expire_after(Duration::from_secs(60))
        .ignore_env();
    let injector = builder.build().unwrap();
    tokio::time::advance(Duration::from_secs(60) - Duration::from_nanos(1)).await;
    assert!(!injector.decide(&Call::new(1, "s")).is_pass());
    tokio::time::advance(Duration::from_nanos(1)).await;
    assert!(injector.decide(&Call::new(1, "s")).is_pass());
}

#[test]
fn a_plan_given_compiled_is_not_compiled_again() {
    let compiled = crate::CompiledPlan::from_toml_str(
        "seed = 3\n[[rules]]\nname = \"t\"\nfault = { error = \"throttle\" }\nprobability = 1.0\n",
    )
    .unwrap();
    assert_eq!(compiled.plan().rules.len(), 1);
    let injector = Injector::new(compiled).unwrap();
    assert_eq!(injector.snapshot().rules[0].label, "t");
}

#[test]
fn a_fault_that_fails_at_once_needs_no_tokio_runtime() {
    // Polled by hand, as another executor would: no tokio timer may be touched.
    let injector = quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).named("t")));
    let call = Call::new(1, "s");
    let mut applying = std::pin::pin!(injector.apply(&call, None));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match applying.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(e)) => {
            assert_eq!(e.kind, InjectedKind::Error(ErrorKind::Throttle))
        }
        other => panic!("{other:?}"),
    }
}

// Equivalent mutants (cargo-mutants), judged by reading the code:
// - `loaded.rs` `retire_thread`: `count > 0` to `count >= 0` only adds zero.
// - `cache.rs` `decide_enabled`: the guard `cache[position].version == version` to `false`,
//   and `entry.injector == id` to `!=`, only turn cache hits into misses. A miss loads the
//   current plan and replaces the entry, whose drop retires its counts to the shared
//   counters, and versions are unique across injectors, so a foreign entry never matches:
//   verdicts and snapshots are unchanged, only slower.
// - `mod.rs` `Injector::builder` to `Default::default()`: it is `InjectorBuilder::default()`.
