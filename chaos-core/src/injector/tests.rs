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

fn quiet(plan: Plan) -> Injector {
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
// - `cache.rs` `retire_thread`: `count > 0` to `count >= 0` only adds zero.
// - `cache.rs` `decide_enabled`: the guard `cache[position].version == version` to `false`,
//   and `entry.injector == id` to `!=`, only turn cache hits into misses. A miss loads the
//   current plan and replaces the entry, whose drop retires its counts to the shared
//   counters, and versions are unique across injectors, so a foreign entry never matches:
//   verdicts and snapshots are unchanged, only slower.
// - `mod.rs` `Injector::builder` to `Default::default()`: it is `InjectorBuilder::default()`.

// ---- Pre-resolved sites ----

static PUT_ORDER: Site<'static> = Site::new("checkout/orders")
    .service("dynamodb")
    .operation("PutItem");

fn for_service(service: &str) -> Rule {
    Rule::error(ErrorKind::Throttle).for_service(service)
}

#[test]
fn a_reload_re_resolves_every_site() {
    let injector = quiet(Plan::new(1).with_rule(for_service("dynamodb")));
    assert!(!injector.decide_at(&PUT_ORDER, 1).is_pass());
    injector
        .reload(Plan::new(1).with_rule(for_service("s3")))
        .unwrap();
    assert!(
        injector.decide_at(&PUT_ORDER, 1).is_pass(),
        "the old rules are gone"
    );
    injector
        .reload(Plan::new(1).with_rule(for_service("dynamo*")))
        .unwrap();
    assert!(
        !injector.decide_at(&PUT_ORDER, 1).is_pass(),
        "the new rules apply"
    );
    // Another thread resolves against the same plan on its own.
    std::thread::scope(|scope| {
        scope.spawn(|| assert!(!injector.decide_at(&PUT_ORDER, 1).is_pass()));
    });
}

#[test]
fn the_kill_switch_and_a_rejected_reload_hold_a_site_off() {
    let injector = quiet(Plan::new(1).with_rule(for_service("dynamodb")));
    assert!(!injector.decide_at(&PUT_ORDER, 1).is_pass());
    injector.disable();
    assert!(injector.decide_at(&PUT_ORDER, 1).is_pass());
    injector.enable();
    assert!(!injector.decide_at(&PUT_ORDER, 1).is_pass());
    injector.reload_toml("not toml").unwrap_err();
    assert!(injector.decide_at(&PUT_ORDER, 1).is_pass());
    injector
        .reload(Plan::new(1).with_rule(for_service("dynamodb")))
        .unwrap();
    assert!(!injector.decide_at(&PUT_ORDER, 1).is_pass());
}

#[test]
fn a_dropped_sites_slot_is_never_taken_for_its_next_owner() {
    let injector = quiet(Plan::new(1).with_rule(for_service("dynamodb")));
    for _ in 0..50 {
        let dynamodb = Site::new("orders").service("dynamodb");
        assert!(!injector.decide_at(&dynamodb, 1).is_pass());
        let old = dynamodb.token().unwrap();
        drop(dynamodb);
        // Likely given the freed slot (other tests may take it first): under a new token,
        // so this thread's cached resolution for "dynamodb" is not used for "s3".
        let s3 = Site::new("orders").service("s3");
        assert!(injector.decide_at(&s3, 1).is_pass());
        assert_ne!(s3.token().unwrap(), old);
    }
}

#[test]
fn counting_triggers_and_snapshots_stay_exact_at_a_site() {
    let injector = quiet(
        Plan::new(1)
            .with_rule(for_service("dynamodb").named("first-3").first(3))
            .with_rule(
                Rule::error(ErrorKind::Throttle)
                    .named("never")
                    .for_service("s3"),
            ),
    );
    let faulted: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|thread| {
                let injector = &injector;
                scope.spawn(move || {
                    (0..250)
                        .filter(|i| !injector.decide_at(&PUT_ORDER, thread * 1000 + i).is_pass())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(faulted, 3);
    let snapshot = injector.snapshot();
    assert_eq!(
        (snapshot.rules[0].evaluated, snapshot.rules[0].injected),
        (1000, 3)
    );
    assert_eq!(
        (snapshot.rules[1].evaluated, snapshot.rules[1].injected),
        (0, 0)
    );
}

#[test]
fn event_conditions_are_tested_per_call_at_a_site() {
    let plan = Plan::from_toml_str(
        r#"
        [[rules]]
        fault = { error = "throttle" }
        match = { service = "dynamodb", event = [{ path = "/tenant", equals = "beta" }] }
        probability = 1.0
        "#,
    )
    .unwrap();
    let injector = quiet(plan);
    let beta = serde_json::json!({ "tenant": "beta" });
    let other = serde_json::json!({ "tenant": "prod" });
    assert!(
        !injector
            .decide_site(&PUT_ORDER.call(1).event(&beta))
            .is_pass()
    );
    assert!(
        injector
            .decide_site(&PUT_ORDER.call(1).event(&other))
            .is_pass()
    );
    assert!(injector.decide_at(&PUT_ORDER, 1).is_pass(), "no event");
}

#[test]
fn a_site_used_from_inside_a_tracing_subscriber_decides_the_ad_hoc_way() {
    // A re-entrant decision cannot borrow the thread's cache; it must still decide alike.
    let injector = quiet(Plan::new(1).with_rule(for_service("dynamodb").with_probability(0.5)));
    let expected: Vec<_> = (0..64).map(|k| injector.decide_at(&PUT_ORDER, k)).collect();
    let inner = injector.clone();
    let observed: Vec<_> = super::cache::PLAN_CACHE.with(|cache| {
        let _held = cache.borrow_mut();
        (0..64).map(|k| inner.decide_at(&PUT_ORDER, k)).collect()
    });
    assert_eq!(observed, expected);
}

#[test]
fn site_tallies_keep_snapshots_exact_across_threads_reloads_and_dropped_sites() {
    // Two plain rules can match the site (one per call at most fails it), one cannot.
    let plan = || {
        Plan::new(5)
            .with_rule(for_service("dynamodb").named("a").with_probability(0.3))
            .with_rule(for_service("dynamodb").named("b").with_probability(0.3))
            .with_rule(for_service("s3").named("elsewhere"))
    };
    let injector = quiet(plan());
    let probe = quiet(plan());
    // What each key should get, decided ad hoc on another injector: rule index that failed.
    let expected = |keys: std::ops::Range<u64>| -> [u64; 2] {
        let mut injected = [0; 2];
        for key in keys {
            let call = PUT_ORDER.call(key).to_call();
            if let Some(failure) = probe.decide(&call).failure {
                injected[failure.rule()] += 1;
            }
        }
        injected
    };
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let (injector, probe) = (&injector, &probe);
            scope.spawn(move || {
                // Each site is dropped half-way: its slot is freed and likely reused by the
                // next, whose resolution replaces this thread's and hands its tally over.
                for half in 0..2u64 {
                    let site = Site::new("checkout/orders")
                        .service("dynamodb")
                        .operation("PutItem");
                    for key in 0..250 {
                        let key = thread * 1000 + half * 250 + key;
                        assert_eq!(
                            injector.decide_at(&site, key),
                            probe.decide(&PUT_ORDER.call(key).to_call()),
                        );
                    }
                }
            });
        }
    });
    let injected = (0..4u64)
        .map(|thread| expected(thread * 1000..thread * 1000 + 500))
        .fold([0; 2], |sum, part| [sum[0] + part[0], sum[1] + part[1]]);
    let counts = |snapshot: &crate::Snapshot| -> Vec<(u64, u64)> {
        snapshot
            .rules
            .iter()
            .map(|rule| (rule.evaluated, rule.injected))
            .collect()
    };
    assert_eq!(
        counts(&injector.snapshot()),
        [(2000, injected[0]), (2000, injected[1]), (0, 0)]
    );
    // This thread's tally is read while the thread still holds it.
    for key in 10_000..10_100 {
        injector.decide_at(&PUT_ORDER, key);
    }
    let more = expected(10_000..10_100);
    assert_eq!(
        counts(&injector.snapshot()),
        [
            (2100, injected[0] + more[0]),
            (2100, injected[1] + more[1]),
            (0, 0)
        ]
    );
    // Across a reload, the current plan starts again and the totals carry on.
    injector.reload(plan()).unwrap();
    for key in 20_000..20_050 {
        injector.decide_at(&PUT_ORDER, key);
    }
    let last = expected(20_000..20_050);
    let snapshot = injector.snapshot();
    assert_eq!(snapshot.rules[0].evaluated, 50);
    assert_eq!(snapshot.totals["a"].evaluated, 2150);
    assert_eq!(
        snapshot.totals["b"].injected,
        injected[1] + more[1] + last[1]
    );
}

#[test]
fn a_site_keeps_exact_counts_when_the_thread_evicts_its_plan() {
    // The short path's per-thread site table must forget a plan the thread's cache evicts:
    // the plan is still current, and passes counted into its retired tally would be lost.
    let at_site =
        quiet(Plan::new(3).with_rule(for_service("dynamodb").named("site").with_probability(0.5)));
    let others: Vec<Injector> = (0..CACHED_PLANS_PER_THREAD as u64)
        .map(|seed| {
            quiet(Plan::new(seed).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.5)))
        })
        .collect();
    let mut injected = 0;
    for round in 0..20u64 {
        for key in 0..10 {
            if !at_site.decide_at(&PUT_ORDER, round * 10 + key).is_pass() {
                injected += 1;
            }
        }
        // As many other injectors as a thread caches, ad hoc: the site's plan is evicted.
        for other in &others {
            other.decide(&Call::new(round, "s"));
        }
    }
    let stats = &at_site.snapshot().rules[0];
    assert_eq!((stats.evaluated, stats.injected), (200, injected));
    assert!(injected > 50 && injected < 150, "{injected}");
}

// ---- The table of single-roll sites ----

use super::fast::{FAST_SITES, FastSites};

/// Snapshot counts as `(evaluated, injected)` per rule.
fn rule_counts(injector: &Injector) -> Vec<(u64, u64)> {
    injector
        .snapshot()
        .rules
        .iter()
        .map(|rule| (rule.evaluated, rule.injected))
        .collect()
}

#[test]
fn sites_beyond_the_tables_capacity_decide_alike_and_count_exactly() {
    // Three times as many sites as a thread's table has entries: slots share entries, so
    // some sites hold one and the rest decide on the general short path.
    let plan = || {
        Plan::new(9)
            .with_rule(for_service("dynamodb").named("d").with_probability(0.2))
            .with_rule(for_service("s3").named("s").with_probability(0.4))
    };
    let injector = quiet(plan());
    let probe = quiet(plan());
    let services = ["dynamodb", "s3", "sqs"];
    let sites: Vec<Site<'static>> = (0..3 * FAST_SITES)
        .map(|index| Site::new("orders").service(services[index % 3]))
        .collect();
    let (expected, held) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut expected = [(0u64, 0u64); 2];
                for round in 0..4u64 {
                    for (index, site) in sites.iter().enumerate() {
                        let key = round * 10_000 + index as u64;
                        let verdict = injector.decide_at(site, key);
                        assert_eq!(verdict, probe.decide(&site.call(key).to_call()));
                        let rule = match index % 3 {
                            0 => 0,
                            1 => 1,
                            _ => continue,
                        };
                        expected[rule].0 += 1;
                        expected[rule].1 += u64::from(!verdict.is_pass());
                    }
                }
                (expected, FastSites::held_on_this_thread())
            })
            .join()
            .unwrap()
    });
    assert!(held > 0 && held <= FAST_SITES, "{held}");
    assert_eq!(rule_counts(&injector), expected);
}

#[test]
fn threads_that_come_and_go_reuse_tables_and_keep_counts_exact() {
    let injector = quiet(Plan::new(4).with_rule(for_service("dynamodb").with_probability(0.5)));
    let threads = 40u64;
    let made_before = FastSites::made();
    let mut injected = 0;
    for thread in 0..threads {
        injected += std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let faulted = (0..100)
                        .filter(|key| !injector.decide_at(&PUT_ORDER, thread * 100 + key).is_pass())
                        .count() as u64;
                    // The site decided on this thread's table.
                    assert_eq!(FastSites::held_on_this_thread(), 1);
                    faulted
                })
                .join()
                .unwrap()
        });
    }
    assert_eq!(rule_counts(&injector), [(threads * 100, injected)]);
    // Each thread handed its table on when it ended (other tests' threads may take some).
    let made = FastSites::made() - made_before;
    assert!(
        made < threads as usize / 2,
        "{made} tables for {threads} threads"
    );
}

#[test]
fn two_injectors_at_one_site_on_one_thread_hand_its_entry_over_once() {
    // The second injector's resolution takes the site's entry from the first (whose count so
    // far moves to its tally), and the first decides on the general short path; both exact,
    // whether they take turns or run one after the other (as benchmarks do).
    let make =
        |seed| quiet(Plan::new(seed).with_rule(for_service("dynamodb").with_probability(0.3)));
    let (first, second) = (make(1), make(2));
    let (first_probe, second_probe) = (make(1), make(2));
    let pair = [(&first, &first_probe), (&second, &second_probe)];
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut injected = [0u64; 2];
            let mut decide = |index: usize, keys: std::ops::Range<u64>| {
                let (injector, probe) = pair[index];
                for key in keys {
                    let verdict = injector.decide_at(&PUT_ORDER, key);
                    assert_eq!(verdict, probe.decide(&PUT_ORDER.call(key).to_call()));
                    injected[index] += u64::from(!verdict.is_pass());
                }
            };
            decide(0, 0..300);
            decide(1, 0..300);
            for key in 300..500 {
                decide(0, key..key + 1);
                decide(1, key..key + 1);
            }
            decide(0, 500..800);
            assert_eq!(FastSites::held_on_this_thread(), 1);
            assert_eq!(rule_counts(&first), [(800, injected[0])]);
            assert_eq!(rule_counts(&second), [(500, injected[1])]);
        });
    });
}

#[test]
fn a_reload_hands_the_sites_entry_to_the_new_plan() {
    let injector = quiet(Plan::new(1).with_rule(for_service("dynamodb").with_probability(0.5)));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let site = Site::new("orders").service("dynamodb");
            let decided = |range: std::ops::Range<u64>| {
                range
                    .filter(|&key| !injector.decide_at(&site, key).is_pass())
                    .count() as u64
            };
            let before = decided(0..200);
            assert_eq!(FastSites::held_on_this_thread(), 1);
            injector
                .reload(Plan::new(2).with_rule(for_service("dynamo*").with_probability(0.5)))
                .unwrap();
            let after = decided(200..500);
            assert_eq!(FastSites::held_on_this_thread(), 1, "released, then taken");
            assert_eq!(rule_counts(&injector), [(300, after)]);
            let totals = &injector.snapshot().totals["#0"];
            assert_eq!((totals.evaluated, totals.injected), (500, before + after));
            // A site no rule can match holds an entry too, and counts nothing.
            let s3 = Site::new("orders").service("s3");
            assert!((0..100).all(|key| injector.decide_at(&s3, key).is_pass()));
            assert_eq!(FastSites::held_on_this_thread(), 2);
            assert_eq!(rule_counts(&injector), [(300, after)]);
        });
    });
}
