//! Drives one HTTP layer case for `n` requests, for instruction counts under callgrind
//! (`scripts/http_instructions.sh`): `bare`, `server`, `client`, `kill_switch` or `peer`
//! (tower-resilience-chaos). Every case builds the same requests; the plan holds one rule at
//! 1% that does not fire on them.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Waker};

use chaos_core::advanced::hash_str;
use chaos_core::fault::ErrorKind;
use chaos_core::http::{HttpCallExtractor, HttpChaosLayer};
use chaos_core::{Call, Injector, Plan, Rule};
use http::{HeaderValue, Request, Response};
use tower::{BoxError, Layer, Service};

fn injector() -> Injector {
    let mut builder = Injector::builder();
    builder
        .plan(Plan::new(7).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.01)))
        .ignore_env();
    builder.build().expect("a valid plan")
}

fn drive<S: Service<Request<String>>>(mut service: S, ids: &[HeaderValue], n: usize) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut done = 0;
    for i in 0..n {
        let mut request = Request::get("/orders/17")
            .body(String::new())
            .expect("a valid request");
        request
            .headers_mut()
            .insert("x-request-id", ids[i % ids.len()].clone());
        if service.poll_ready(&mut cx).is_pending() {
            continue;
        }
        let future = pin!(service.call(request));
        done += usize::from(black_box(future.poll(&mut cx)).is_ready());
    }
    done
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "server".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let probe = injector();
    let ids: Vec<HeaderValue> = (0u64..)
        .map(|n| format!("req-{n:08}"))
        .filter(|id| {
            let call = Call::new(hash_str(id), "http").operation("GET /orders/17");
            probe.decide(&call).is_pass()
        })
        .take(1024)
        .map(|id| HeaderValue::from_str(&id).expect("ASCII"))
        .collect();
    let ok = tower::service_fn(|_request: Request<String>| {
        std::future::ready(Ok::<_, BoxError>(Response::new(String::new())))
    });
    let done = match case.as_str() {
        "bare" => drive(ok, &ids, n),
        "server" => drive(
            HttpChaosLayer::server(injector())
                .extractor(HttpCallExtractor::new("http"))
                .layer(ok),
            &ids,
            n,
        ),
        "client" => drive(
            HttpChaosLayer::client(injector())
                .extractor(HttpCallExtractor::new("http"))
                .layer(ok),
            &ids,
            n,
        ),
        "kill_switch" => {
            let killed = injector();
            killed.disable();
            drive(HttpChaosLayer::server(killed).layer(ok), &ids, n)
        }
        "peer" => drive(
            tower_resilience_chaos::ChaosLayer::builder()
                .name("peer")
                .error_rate(0.01)
                .error_fn(|_request: &Request<String>| -> BoxError { "chaos".into() })
                .seed(7)
                .build()
                .layer(ok),
            &ids,
            n,
        ),
        other => {
            eprintln!("unknown case {other:?}: expected bare, server, client, kill_switch or peer");
            std::process::exit(2);
        }
    };
    println!("{case}: {done} of {n} requests answered on the first poll");
}
