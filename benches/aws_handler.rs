//! Per-invocation cost of chaos-aws's Lambda handler layer with its configuration cached and
//! one rule, beside the bare handler in the same run. Run:
//! `cargo bench --bench aws_handler`. The figure to compare with chaos_lambda (which reads
//! SSM on every invocation: `/work/shared/baselines/chaos_lambda.sh`) is the layer's minus the
//! bare handler's.
//!
//! Each iteration builds a `LambdaEvent` (a clone of a prepared one, as the runtime hands
//! over a fresh event) and polls the handler's future once (nothing here waits). The rule
//! fires at 1%; the request ids are picked so it never fires, measuring the path almost every
//! invocation takes.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chaos_aws::{ChaosHandlerLayer, ConfigSource, LiveConfig};
use chaos_core::advanced::hash_str;
use chaos_core::{Call, Injector};
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tower::{Layer, Service, service_fn};

const FUNCTION: &str = "orders";
const PLAN: &str = r#"{"seed": 7, "rules": [{"name": "one", "fault": {"error": "throttle"},
  "probability": 0.01}]}"#;

fn events(injector: &Injector, count: usize) -> Vec<LambdaEvent<Value>> {
    let payload = json!({"httpMethod": "GET", "path": "/orders/17"});
    (0u64..)
        .map(|n| format!("0d9b2c6e-{n:012}"))
        .filter(|id| {
            let call = Call::new(hash_str(id), FUNCTION).event(&payload);
            injector.decide(&call).is_pass()
        })
        .take(count)
        .map(|id| {
            let mut context = lambda_runtime::Context::default();
            context.request_id = id;
            LambdaEvent::new(payload.clone(), context)
        })
        .collect()
}

fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("nothing in this benchmark waits"),
    }
}

fn handler_layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _entered = runtime.enter();
    // The plan as a live configuration would load it, from a file (cached for an hour).
    let path = std::env::temp_dir().join(format!("chaos-aws-bench-{}.json", std::process::id()));
    std::fs::write(&path, PLAN).expect("temp plan");
    let mut builder = Injector::builder();
    builder.ignore_env();
    let live = LiveConfig::with_ttl(
        ConfigSource::file(&path),
        builder.build().expect("an injector"),
        Duration::from_secs(3600),
    );
    runtime.block_on(live.refresh());
    let events = events(live.injector(), 1024);

    let bare = service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>(json!({"statusCode": 200}))
    });
    let mut chaos = ChaosHandlerLayer::live(live.clone())
        .site(FUNCTION)
        .layer(bare);
    let mut plain = bare;

    let mut group = c.benchmark_group("aws_handler");
    let mut n = 0usize;
    group.bench_function("bare_handler", |b| {
        b.iter(|| {
            n = (n + 1) % events.len();
            black_box(poll_once(plain.call(events[n].clone())).is_ok())
        })
    });
    group.bench_function("chaos_layer_cached_one_rule", |b| {
        b.iter(|| {
            n = (n + 1) % events.len();
            black_box(poll_once(chaos.call(events[n].clone())).is_ok())
        })
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, handler_layer);
criterion_main!(benches);
