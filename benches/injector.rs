//! Per-call cost of the injector, side by side with its peers in the same run:
//! the `fail` crate's fail point (feature on, point configured) and tower-resilience-chaos's
//! layer. Run: `cargo bench --bench injector`. Figures go to BENCHMARKS.md.
//!
//! Cases (issues 2 and 7): (a) kill switch on, (b) one rule at 1% that does not fire, (c) 100
//! rules (all on the call's service; or on 100 services, one of them the call's), (d) two
//! threads at once against one shared injector (per-call cost must not rise), each both ad
//! hoc (a `Call` built per request) and at a pre-resolved `Site` (`_site`).
//!
//! Each call site is what application code writes: build a `Call` from the request, or name
//! a `static` site, (the request key is opaque to the optimizer) and branch on the verdict.

use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chaos_core::fault::ErrorKind;
use chaos_core::{Call, CallSite, ChaosLayer, Injector, Plan, Rule, Site};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{BoxError, Layer, Service};

const SITE: &str = "checkout/orders";

/// The site's name as application code has it for an ad hoc `Call`: known only at run time,
/// so the compiler cannot hash it ahead (whether it could would depend on inlining, and
/// make the ad hoc figures move with unrelated changes).
fn site_name() -> &'static str {
    black_box(SITE)
}
/// The same site, hashed at compile time.
const ORDERS: CallSite<'static> = CallSite::new(SITE);
/// The same site, pre-resolved, with its service.
static ORDERS_SITE: Site<'static> = Site::new(SITE).service("dynamodb");

fn injector(plan: Plan) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    builder.build().expect("valid plan")
}

fn one_rule_at_one_percent() -> Injector {
    injector(
        Plan::new(7).with_rule(
            Rule::error(ErrorKind::Throttle)
                .named("one")
                .with_probability(0.01),
        ),
    )
}

/// Request keys the 1% rule does not fire on, so case (b) measures the not-firing path only.
fn quiet_keys(injector: &Injector, count: usize) -> Vec<u64> {
    (0u64..)
        .filter(|&k| {
            injector
                .decide(&Call::new(k, SITE).service("dynamodb"))
                .is_pass()
        })
        .take(count)
        .collect()
}

fn hundred_rules() -> Injector {
    let mut plan = Plan::new(7);
    for i in 0..100 {
        plan.rules.push(
            Rule::error(ErrorKind::ServerError { status: 503 })
                .named(format!("rule-{i}"))
                .for_service("dynamodb")
                .with_probability(0.0001),
        );
    }
    injector(plan)
}

/// 100 rules on 100 services, of which the calls' service is one.
fn hundred_rules_one_matches() -> Injector {
    let mut plan = Plan::new(7);
    for i in 0..100 {
        let service = if i == 50 {
            "dynamodb".to_owned()
        } else {
            format!("service-{i}")
        };
        plan.rules.push(
            Rule::error(ErrorKind::ServerError { status: 503 })
                .named(format!("rule-{i}"))
                .for_service(service)
                .with_probability(0.0001),
        );
    }
    injector(plan)
}

fn fail_point_guarded() -> Option<u64> {
    fail::fail_point!("bench_point", |_| None);
    Some(1)
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_call");

    // The harness alone (key, black_box, loop): what every case below pays before deciding.
    group.bench_function("a_harness_floor", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(black_box(key) != 0)
        })
    });

    let killed = one_rule_at_one_percent();
    killed.disable();
    let site = site_name();
    group.bench_function("a_kill_switch_on", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(
                killed
                    .decide(&Call::new(black_box(key), site).service("dynamodb"))
                    .is_pass(),
            )
        })
    });

    group.bench_function("a_kill_switch_on_site", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(killed.decide_at(&ORDERS_SITE, black_box(key)).is_pass())
        })
    });

    let one = one_rule_at_one_percent();
    let keys = quiet_keys(&one, 4096);
    let site = site_name();
    group.bench_function("b_one_rule_1pct_not_firing", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(
                one.decide(&Call::new(black_box(keys[i]), site).service("dynamodb"))
                    .is_pass(),
            )
        })
    });

    group.bench_function("b_one_rule_1pct_not_firing_call_site", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(
                one.decide(&Call::at(black_box(keys[i]), ORDERS).service("dynamodb"))
                    .is_pass(),
            )
        })
    });

    group.bench_function("b_one_rule_1pct_not_firing_site", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(one.decide_at(&ORDERS_SITE, black_box(keys[i])).is_pass())
        })
    });

    let hundred = hundred_rules();
    let site = site_name();
    group.bench_function("c_hundred_rules", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(
                hundred
                    .decide(&Call::new(black_box(key), site).service("dynamodb"))
                    .is_pass(),
            )
        })
    });

    group.bench_function("c_hundred_rules_site", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(hundred.decide_at(&ORDERS_SITE, black_box(key)).is_pass())
        })
    });

    let one_of_hundred = hundred_rules_one_matches();
    let site = site_name();
    group.bench_function("c_hundred_rules_one_matches", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(
                one_of_hundred
                    .decide(&Call::new(black_box(key), site).service("dynamodb"))
                    .is_pass(),
            )
        })
    });
    group.bench_function("c_hundred_rules_one_matches_site", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(
                one_of_hundred
                    .decide_at(&ORDERS_SITE, black_box(key))
                    .is_pass(),
            )
        })
    });

    let _scenario = fail::FailScenario::setup();
    fail::cfg("bench_point", "1%return").expect("valid fail point config");
    group.bench_function("peer_fail_point_1pct", |b| {
        b.iter(|| black_box(fail_point_guarded()))
    });
    group.finish();
}

/// Each of `threads` threads makes `iters` calls; returns the wall time of the slowest, so the
/// figure is the per-call cost seen by each thread while the others run.
fn run_threads(threads: usize, iters: u64, work: &(dyn Fn(u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        work(i.wrapping_mul(threads as u64).wrapping_add(t as u64));
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    let shared = one_rule_at_one_percent();
    let site = site_name();
    let decide = |key: u64| {
        black_box(
            shared
                .decide(&Call::new(black_box(key), site).service("dynamodb"))
                .is_pass(),
        );
    };
    group.bench_function("d_injector_1_thread", |b| {
        b.iter_custom(|iters| run_threads(1, iters, &decide))
    });
    group.bench_function("d_injector_2_threads", |b| {
        b.iter_custom(|iters| run_threads(2, iters, &decide))
    });
    let decide_at_site = |key: u64| {
        black_box(shared.decide_at(&ORDERS_SITE, black_box(key)).is_pass());
    };
    group.bench_function("d_injector_site_1_thread", |b| {
        b.iter_custom(|iters| run_threads(1, iters, &decide_at_site))
    });
    group.bench_function("d_injector_site_2_threads", |b| {
        b.iter_custom(|iters| run_threads(2, iters, &decide_at_site))
    });

    // Calibration: thread-private work of a similar size (hashing and mixing, no shared
    // memory). Its 2-thread / 1-thread ratio is what this VM does to perfectly parallel code.
    let private_work = |key: u64| {
        let mut word = chaos_core::advanced::hash_str(black_box(SITE)) ^ key;
        for _ in 0..12 {
            word = chaos_core::advanced::mix64(word);
        }
        black_box(word);
    };
    group.bench_function("calibration_private_work_1_thread", |b| {
        b.iter_custom(|iters| run_threads(1, iters, &private_work))
    });
    group.bench_function("calibration_private_work_2_threads", |b| {
        b.iter_custom(|iters| run_threads(2, iters, &private_work))
    });

    let _scenario = fail::FailScenario::setup();
    fail::cfg("bench_point", "1%return").expect("valid fail point config");
    let fail_point = |_key: u64| {
        black_box(fail_point_guarded());
    };
    group.bench_function("peer_fail_point_1_thread", |b| {
        b.iter_custom(|iters| run_threads(1, iters, &fail_point))
    });
    group.bench_function("peer_fail_point_2_threads", |b| {
        b.iter_custom(|iters| run_threads(2, iters, &fail_point))
    });
    group.finish();
}

/// Calls a service whose futures complete on first poll, and polls the response once.
fn call_ready<S: Service<u64>>(
    service: &mut S,
    request: u64,
) -> Option<Result<S::Response, S::Error>> {
    let mut cx = Context::from_waker(Waker::noop());
    if !matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))) {
        return None;
    }
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

fn tower_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("tower_layer_1pct_error");
    let echo = tower::service_fn(|request: u64| std::future::ready(Ok::<u64, BoxError>(request)));

    let mut inner = echo;
    group.bench_function("inner_service_alone", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(call_ready(&mut inner, key))
        })
    });

    let at_site = ChaosLayer::at_site(
        one_rule_at_one_percent(),
        Site::new(SITE).service("dynamodb"),
        |request: &u64| *request,
    );
    let mut ours_at_site = at_site.layer(echo);
    group.bench_function("chaos_core_site", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(call_ready(&mut ours_at_site, key))
        })
    });

    let site = site_name();
    let layer = ChaosLayer::from_fn(one_rule_at_one_percent(), move |request: &u64| {
        Call::new(*request, site)
    });
    let mut ours = layer.layer(echo);
    group.bench_function("chaos_core", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(call_ready(&mut ours, key))
        })
    });

    let peer_layer = tower_resilience_chaos::ChaosLayer::builder()
        .name("peer")
        .error_rate(0.01)
        .error_fn(|_request: &u64| -> BoxError { "chaos".into() })
        .seed(7)
        .build();
    let mut peer = peer_layer.layer(echo);
    // Its future awaits an inner boxed future; it completes on the first poll when the inner
    // one does and no latency is injected.
    group.bench_function("peer_tower_resilience_chaos", |b| {
        let mut key = 0u64;
        b.iter(|| {
            key = key.wrapping_add(1);
            black_box(call_ready(&mut peer, key))
        })
    });
    group.finish();
}

/// Compiling a plan of 20,000 rules with distinct names and services: linear in the rules
/// (duplicate names by hash map, selector groups memoised), where it once was quadratic.
fn plan_compile(c: &mut Criterion) {
    let mut plan = Plan::new(1);
    for index in 0..20_000 {
        plan.rules.push(
            Rule::error(ErrorKind::Throttle)
                .named(format!("r{index}"))
                .for_service(format!("s{index}"))
                .with_probability(0.5),
        );
    }
    let mut group = c.benchmark_group("plan_compile");
    group.sample_size(10);
    group.bench_function("20000_rules", |b| {
        b.iter(|| black_box(plan.compile().expect("valid plan")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = single_thread, threads, tower_layers, plan_compile
}
criterion_main!(benches);
