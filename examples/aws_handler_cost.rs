//! Makes N invocations of a Lambda handler, bare or behind chaos-aws's handler layer (cached
//! live configuration, one rule at 1% that never fires on these ids), for instruction
//! counting under callgrind: run 200k and 100k, subtract, divide by 100k.
//!
//! Usage: `aws_handler_cost CASE N` with CASE `bare` or `chaos`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chaos_aws::{ChaosHandlerLayer, ConfigSource, LiveConfig};
use chaos_core::advanced::hash_str;
use chaos_core::{Call, Injector};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tower::{Layer, Service, service_fn};

const FUNCTION: &str = "orders";
const PLAN: &str = r#"{"seed": 7, "rules": [{"name": "one", "fault": {"error": "throttle"},
  "probability": 0.01}]}"#;

fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("nothing here waits"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "chaos".to_owned());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let _entered = runtime.enter();
    let path = std::env::temp_dir().join(format!("chaos-aws-cost-{}.json", std::process::id()));
    std::fs::write(&path, PLAN)?;
    let mut builder = Injector::builder();
    builder.ignore_env();
    let live = LiveConfig::with_ttl(
        ConfigSource::file(&path),
        builder.build()?,
        Duration::from_secs(3600),
    );
    runtime.block_on(live.refresh());
    std::fs::remove_file(&path)?;
    let payload = json!({"httpMethod": "GET", "path": "/orders/17"});
    let events: Vec<LambdaEvent<Value>> = (0u64..)
        .map(|n| format!("0d9b2c6e-{n:012}"))
        .filter(|id| {
            let call = Call::new(hash_str(id), FUNCTION).event(&payload);
            live.injector().decide(&call).is_pass()
        })
        .take(1024)
        .map(|id| {
            let mut context = lambda_runtime::Context::default();
            context.request_id = id;
            LambdaEvent::new(payload.clone(), context)
        })
        .collect();
    let bare = service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>(json!({"statusCode": 200}))
    });
    let mut chaos = ChaosHandlerLayer::live(live).site(FUNCTION).layer(bare);
    let mut plain = bare;
    let mut ok = 0usize;
    for i in 0..count {
        let event = events[i % events.len()].clone();
        let passed = if case == "bare" {
            poll_once(plain.call(event)).is_ok()
        } else {
            poll_once(chaos.call(event)).is_ok()
        };
        ok += usize::from(black_box(passed));
    }
    println!("{case}: {ok} of {count} invocations answered");
    Ok(())
}
