//! Makes N decisions of one injector configuration, for instruction counting under
//! callgrind (`scripts/instructions.sh`), which is repeatable where wall time here is not.
//!
//! Usage: `decide_cost CASE N` with CASE one of `kill_switch`, `empty_plan`,
//! `one_rule_not_firing`, `one_rule_1pct`, `one_rule_1pct_call_site`, `hundred_rules`,
//! `hundred_rules_one_matches`, and the pre-resolved site cases `kill_switch_site`,
//! `one_rule_1pct_site`, `hundred_rules_one_matches_site`.

use std::hint::black_box;

use chaos_core::fault::ErrorKind;
use chaos_core::{Call, CallSite, Injector, Plan, Rule, Site};

/// The call site, hashed at compile time, for the `_call_site` case.
const ORDERS: CallSite<'static> = CallSite::new("checkout/orders");
/// The same site, pre-resolved, for the `_site` cases.
static ORDERS_SITE: Site<'static> = Site::new("checkout/orders").service("dynamodb");

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "one_rule_1pct".to_owned());
    let calls: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let one_rule = |p: f64| {
        Plan::new(7).with_rule(
            Rule::error(ErrorKind::Throttle)
                .named("one")
                .with_probability(p),
        )
    };
    let plan = match case.as_str() {
        "kill_switch"
        | "kill_switch_site"
        | "one_rule_1pct"
        | "one_rule_1pct_call_site"
        | "tower_inner"
        | "tower_ad_hoc"
        | "tower_site"
        | "one_rule_1pct_site" => one_rule(0.01),
        "one_rule_not_firing" => one_rule(0.0),
        "empty_plan" => Plan::new(7),
        "hundred_rules" => Plan {
            seed: 7,
            rules: (0..100)
                .map(|i| {
                    Rule::error(ErrorKind::Throttle)
                        .named(format!("rule-{i}"))
                        .for_service("dynamodb")
                        .with_probability(0.0001)
                })
                .collect(),
        },
        // 100 rules on 100 services, of which the calls' service is one.
        "hundred_rules_one_matches" | "hundred_rules_one_matches_site" => Plan {
            seed: 7,
            rules: (0..100)
                .map(|i| {
                    let service = if i == 50 {
                        "dynamodb".to_owned()
                    } else {
                        format!("service-{i}")
                    };
                    Rule::error(ErrorKind::Throttle)
                        .named(format!("rule-{i}"))
                        .for_service(service)
                        .with_probability(0.01)
                })
                .collect(),
        },
        other => {
            eprintln!("unknown case {other:?}");
            std::process::exit(2);
        }
    };
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    let injector = match builder.build() {
        Ok(injector) => injector,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    if let Some(layer) = case.strip_prefix("tower_") {
        tower_calls(injector, layer, calls);
        return;
    }
    if case.starts_with("kill_switch") {
        injector.disable();
    }
    let mut faulted = 0u64;
    // `_call_site` is an ad hoc `Call` at a pre-hashed `CallSite`, not a `Site`.
    if case.ends_with("_site") && !case.ends_with("_call_site") {
        for key in 0..calls {
            if !injector.decide_at(&ORDERS_SITE, black_box(key)).is_pass() {
                faulted += 1;
            }
        }
        println!("{case}: {calls} calls, {faulted} faulted");
        return;
    }
    let pre_hashed = case.ends_with("_call_site");
    // A site named at run time, as an application's would be: the compiler must not hash
    // a constant name ahead (whether it can depends on inlining, which would make the count
    // move with unrelated changes).
    let site_name = black_box("checkout/orders");
    for key in 0..calls {
        let call = if pre_hashed {
            Call::at(black_box(key), ORDERS)
        } else {
            Call::new(black_box(key), site_name)
        }
        .service("dynamodb");
        if !injector.decide(&call).is_pass() {
            faulted += 1;
        }
    }
    println!("{case}: {calls} calls, {faulted} faulted");
}

/// Calls through the tower layer (`ad_hoc`: a `Call` per request; `site`: at a `Site`) or
/// the inner service alone (`inner`), polling each response once.
fn tower_calls(injector: Injector, layer: &str, calls: u64) {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use tower::{BoxError, Layer, Service};

    fn call_ready<S: Service<u64>>(service: &mut S, request: u64) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if !matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))) {
            return false;
        }
        let future = pin!(service.call(request));
        matches!(future.poll(&mut cx), Poll::Ready(Ok(_)))
    }
    fn run<S: Service<u64>>(mut service: S, calls: u64) -> u64 {
        (0..calls)
            .filter(|&key| !call_ready(&mut service, black_box(key)))
            .count() as u64
    }

    let echo = tower::service_fn(|request: u64| std::future::ready(Ok::<u64, BoxError>(request)));
    let failed = match layer {
        "inner" => run(echo, calls),
        "site" => run(
            chaos_core::ChaosLayer::at_site(
                injector,
                Site::new("checkout/orders").service("dynamodb"),
                |request: &u64| *request,
            )
            .layer(echo),
            calls,
        ),
        _ => run(
            chaos_core::ChaosLayer::from_fn(injector, |request: &u64| {
                Call::new(*request, "checkout/orders").service("dynamodb")
            })
            .layer(echo),
            calls,
        ),
    };
    println!("tower_{layer}: {calls} calls, {failed} failed");
}
