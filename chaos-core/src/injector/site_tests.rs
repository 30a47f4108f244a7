//! Pre-resolved sites: re-resolution on reload, the kill switch and rejected reloads at a site,
//! exact counts through site tallies, and the per-thread table of single-roll sites.

use super::cache::CACHED_PLANS_PER_THREAD;
use super::fast::{FAST_SITES, FastSites};
use super::tests::quiet;
use super::*;
use crate::fault::ErrorKind;
use crate::plan::Plan;
use crate::rule::Rule;

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
