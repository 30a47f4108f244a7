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

fn totals(injector: &Injector, label: &str) -> (u64, u64) {
    injector
        .snapshot()
        .totals
        .get(label)
        .map_or((0, 0), |t| (t.evaluated, t.injected))
}

fn always(name: &str) -> Rule {
    Rule::error(ErrorKind::Throttle).named(name)
}

#[test]
fn totals_survive_reloads_exactly() {
    let injector = built(
        Plan::new(1).with_rule(always("kept")),
        WindowOrigin::default(),
    );
    for key in 0..10 {
        injector.decide(&Call::new(key, "orders"));
    }
    // A thread still holding the first plan in its cache, counting into it after the reload.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let holder = {
        let injector = injector.clone();
        std::thread::spawn(move || {
            injector.decide(&Call::new(100, "orders"));
            done.send(()).expect("main waits");
            wait.recv().expect("main sends");
            // The thread's cache is refreshed here: this decision uses the new plan.
            injector.decide(&Call::new(101, "orders"));
        })
    };
    finished.recv().expect("thread decided");
    injector
        .reload(
            Plan::new(2)
                .with_rule(always("new"))
                .with_rule(always("kept")),
        )
        .expect("valid");
    assert_eq!(totals(&injector, "kept"), (11, 11));
    for key in 0..5 {
        injector.decide(&Call::new(key, "orders"));
    }
    // `kept` loses every roll to `new`'s failure but still counts the call (evaluated).
    assert_eq!(totals(&injector, "kept"), (16, 11));
    assert_eq!(totals(&injector, "new"), (5, 5));
    go.send(()).expect("thread waits");
    holder.join().expect("no panic");
    assert_eq!(totals(&injector, "kept"), (17, 11));
    assert_eq!(totals(&injector, "new"), (6, 6));
    // The current plan's own counters restart with it; the totals do not.
    let snapshot = injector.snapshot();
    assert_eq!(
        (
            snapshot.rules[1].label.as_str(),
            snapshot.rules[1].evaluated
        ),
        ("kept", 6)
    );
    // A rejected reload changes nothing.
    assert!(injector.reload_toml("not a plan").is_err());
    assert_eq!(totals(&injector, "kept"), (17, 11));
}

#[test]
fn totals_never_go_back_while_threads_decide_through_reloads() {
    let injector = built(
        Plan::new(0).with_rule(always("steady")),
        WindowOrigin::default(),
    );
    const THREADS: u64 = 2;
    const CALLS: u64 = 20_000;
    let deciders: Vec<_> = (0..THREADS)
        .map(|thread| {
            let injector = injector.clone();
            std::thread::spawn(move || {
                for key in 0..CALLS {
                    injector.decide(&Call::new(thread * CALLS + key, "orders"));
                }
            })
        })
        .collect();
    let mut last = 0;
    for round in 1..200 {
        injector
            .reload(Plan::new(round).with_rule(always("steady")))
            .expect("valid");
        let (evaluated, _) = totals(&injector, "steady");
        assert!(evaluated >= last, "{evaluated} < {last} at round {round}");
        last = evaluated;
    }
    for decider in deciders {
        decider.join().expect("no panic");
    }
    // Every decision counted exactly once, whichever plan decided it.
    assert_eq!(
        totals(&injector, "steady"),
        (THREADS * CALLS, THREADS * CALLS)
    );
}

#[test]
fn totals_stay_exact_at_single_roll_sites_while_threads_decide_through_reloads() {
    // Sites with one plain rule count in their threads' tables of single-roll sites; each
    // reload retires those counts (and a snapshot reads them) while the threads go on.
    static ORDERS: crate::Site<'static> = crate::Site::new("orders").service("dynamodb");
    let plan = || {
        Plan::new(3).with_rule(
            Rule::error(ErrorKind::Throttle)
                .named("some")
                .for_service("dynamodb")
                .with_probability(0.25),
        )
    };
    let injector = built(plan(), WindowOrigin::default());
    // The same seed and rule name in every plan: each key's verdict never changes.
    let probe = built(plan(), WindowOrigin::default());
    const THREADS: u64 = 3;
    const CALLS: u64 = 20_000;
    let deciders: Vec<_> = (0..THREADS)
        .map(|thread| {
            let injector = injector.clone();
            std::thread::spawn(move || {
                (0..CALLS)
                    .filter(|key| !injector.decide_at(&ORDERS, thread * CALLS + key).is_pass())
                    .count() as u64
            })
        })
        .collect();
    let mut last = (0, 0);
    for round in 1..200 {
        if round % 20 == 0 {
            injector.reload(plan()).expect("valid");
        }
        let now = totals(&injector, "some");
        assert!(now.0 >= last.0 && now.1 >= last.1, "{now:?} < {last:?}");
        last = now;
    }
    let injected: u64 = deciders
        .into_iter()
        .map(|decider| decider.join().expect("no panic"))
        .sum();
    let expected = (0..THREADS * CALLS)
        .filter(|&key| !probe.decide_at(&ORDERS, key).is_pass())
        .count() as u64;
    assert_eq!(injected, expected);
    assert_eq!(totals(&injector, "some"), (THREADS * CALLS, expected));
}

#[tokio::test(start_paused = true)]
async fn a_partition_holds_until_its_window_ends_counted_from_the_plans_origin() {
    let s = Duration::from_secs;
    let partition = || Plan::new(1).with_rule(Rule::partition(s(10), s(20)).named("cut"));
    let anchored = built(Plan::new(1), WindowOrigin::PlanLoad);
    let from_start = built(partition(), WindowOrigin::InjectorStart);
    tokio::time::advance(s(100)).await;
    anchored.reload(partition()).expect("valid");
    let held = |injector: &Injector| injector.decide(&Call::new(1, "orders")).partition_hold;
    // From the injector's start the window (10 s to 30 s) is long over; from the load it
    // opens in 10 s.
    assert_eq!((held(&anchored), held(&from_start)), (s(0), s(0)));
    tokio::time::advance(s(15)).await;
    assert_eq!(held(&anchored), s(15));
    // `apply` waits out the hold, then lets the call go ahead, whatever the deadline says.
    let before = tokio::time::Instant::now();
    let deadline = crate::timeout::Deadline::after(s(1));
    anchored
        .apply(&Call::new(1, "orders"), Some(deadline))
        .await
        .expect("a partition delivers, it does not fail");
    assert_eq!(before.elapsed(), s(15));
    // Decided after the window: not held.
    assert_eq!(held(&anchored), s(0));
    let snapshot = anchored.snapshot();
    assert_eq!(snapshot.totals.get("cut").map(|t| t.injected), Some(2));
}
