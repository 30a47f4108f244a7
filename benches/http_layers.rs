//! Per-request cost of the HTTP layers (feature `http`), beside tower-resilience-chaos's layer
//! around the same `http` service in the same run. Run: `cargo bench --bench http_layers`.
//!
//! Every case builds an `http::Request` with an `x-request-id` per iteration, as a server
//! receives one, and polls the response once (all futures here complete on the first poll);
//! `bare_service` is that cost with no layer, so each layer's overhead is its figure minus
//! the bare one. Plans hold one rule at 1%: the request ids are picked so it never fires,
//! measuring the path almost every request takes.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chaos_core::advanced::hash_str;
use chaos_core::fault::ErrorKind;
use chaos_core::http::{HttpCallExtractor, HttpChaosLayer};
use chaos_core::{Call, Injector, Plan, Rule};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use tower::{BoxError, Layer, Service};

const SITE: &str = "http";

fn one_rule_at_one_percent() -> Injector {
    let mut builder = Injector::builder();
    builder
        .plan(
            Plan::new(7).with_rule(
                Rule::error(ErrorKind::Throttle)
                    .named("one")
                    .with_probability(0.01),
            ),
        )
        .ignore_env();
    builder.build().expect("a valid plan")
}

/// Request ids the 1% rule does not fire on, for `GET /orders/17` at [`SITE`].
fn quiet_ids(injector: &Injector, count: usize) -> Vec<HeaderValue> {
    (0u64..)
        .map(|n| format!("req-{n:08}"))
        .filter(|id| {
            let call = Call::new(hash_str(id), SITE).operation("GET /orders/17");
            injector.decide(&call).is_pass()
        })
        .take(count)
        .map(|id| HeaderValue::from_str(&id).expect("ASCII"))
        .collect()
}

fn request(id: &HeaderValue) -> Request<String> {
    let mut request = Request::get("/orders/17")
        .body(String::new())
        .expect("a valid request");
    request.headers_mut().insert("x-request-id", id.clone());
    request
}

/// Calls a service whose futures complete on first poll, and polls the response once.
fn call_ready<S: Service<Request<String>>>(
    service: &mut S,
    request: Request<String>,
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

fn http_layers(c: &mut Criterion) {
    let ids = quiet_ids(&one_rule_at_one_percent(), 1024);
    let mut group = c.benchmark_group("http_layer_1pct_error");
    let ok = tower::service_fn(|_request: Request<String>| {
        std::future::ready(Ok::<_, BoxError>(Response::new(String::new())))
    });
    let mut run = |name: &str, service: &mut dyn FnMut(Request<String>) -> bool| {
        group.bench_function(name, |b| {
            let mut next = 0usize;
            b.iter(|| {
                next = (next + 1) % ids.len();
                black_box(service(request(&ids[next])))
            })
        });
    };

    let mut bare = ok;
    run("bare_service", &mut |request| {
        call_ready(&mut bare, request).is_some()
    });

    let mut server = HttpChaosLayer::server(one_rule_at_one_percent())
        .extractor(HttpCallExtractor::new(SITE))
        .layer(ok);
    run("chaos_core_server", &mut |request| {
        call_ready(&mut server, request).is_some()
    });

    let mut client = HttpChaosLayer::client(one_rule_at_one_percent())
        .extractor(HttpCallExtractor::new(SITE))
        .layer(ok);
    run("chaos_core_client", &mut |request| {
        call_ready(&mut client, request).is_some()
    });

    let killed = one_rule_at_one_percent();
    killed.disable();
    let mut switched_off = HttpChaosLayer::server(killed).layer(ok);
    run("chaos_core_kill_switch_on", &mut |request| {
        call_ready(&mut switched_off, request).is_some()
    });

    let peer_layer = tower_resilience_chaos::ChaosLayer::builder()
        .name("peer")
        .error_rate(0.01)
        .error_fn(|_request: &Request<String>| -> BoxError { "chaos".into() })
        .seed(7)
        .build();
    let mut peer = peer_layer.layer(ok);
    // Its future awaits an inner boxed future; it completes on the first poll when the inner
    // one does and no latency is injected.
    run("peer_tower_resilience_chaos", &mut |request| {
        call_ready(&mut peer, request).is_some()
    });
    group.finish();

    // A request the rule fails: the answer is built (response, rule name) on the faulted path.
    let mut group = c.benchmark_group("http_layer_injected_answer");
    let always = {
        let mut builder = Injector::builder();
        builder
            .plan(Plan::new(7).with_rule(Rule::error(ErrorKind::Throttle).named("all")))
            .ignore_env();
        builder.build().expect("a valid plan")
    };
    let infallible = tower::service_fn(|_request: Request<String>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
    });
    let mut answering = HttpChaosLayer::server(always).layer(infallible);
    group.bench_function("chaos_core_server_429", |b| {
        let mut next = 0usize;
        b.iter(|| {
            next = (next + 1) % ids.len();
            black_box(call_ready(&mut answering, request(&ids[next])))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = http_layers
}
criterion_main!(benches);
