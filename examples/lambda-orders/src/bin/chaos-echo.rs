//! The function `tests/lambda_watch.rs` invokes under `cargo lambda watch`: a handler that
//! echoes its event, wrapped in [`ChaosHandlerLayer`] exactly as a deployed function is (plan
//! from a live configuration, guardrails from the environment).
//!
//! The plan is the file named by `CHAOS_PLAN_FILE` (`tests/lambda_watch_plan.toml`, whose
//! rules select on the event's `fault` field). Run it by hand with
//! `cargo lambda watch -p chaos-aws --example lambda_watch_function --features lambda
//! --env-var CHAOS_PLAN_FILE=chaos-aws/tests/lambda_watch_plan.toml`, then
//! `cargo lambda invoke lambda_watch_function --data-ascii '{"fault":"throttle"}'`.

use chaos_aws::{ChaosHandlerLayer, ConfigSource, Guard, LiveConfig, injector_from_env};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tower::ServiceBuilder;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    Ok(json!({ "echo": event.payload, "handled": true }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let path = std::env::var("CHAOS_PLAN_FILE")
        .map_err(|_| "CHAOS_PLAN_FILE must name the plan file (tests/lambda_watch_plan.toml)")?;
    let live = LiveConfig::new(ConfigSource::file(path), injector_from_env()?);
    // Loaded before the first invocation, so the first one is decided by the plan too.
    live.refresh().await;
    let handler = ServiceBuilder::new()
        .layer(ChaosHandlerLayer::live(live).guard(Guard::from_env()))
        .service(service_fn(echo));
    lambda_runtime::run(handler).await
}
