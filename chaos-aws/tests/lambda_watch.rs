//! End to end under `cargo lambda watch`: the `chaos-echo` function
//! (`examples/lambda-orders/src/bin/chaos-echo.rs`, the handler layer fed by
//! `tests/lambda_watch_plan.toml`) runs in cargo-lambda's emulator of the Lambda runtime and
//! Invoke APIs, invoked through aws-sdk-lambda on loopback.
//!
//! `scripts/test.sh` installs cargo-lambda from PyPI into a virtualenv, starts the watcher on a
//! free 127.0.0.1 port and exports `CHAOS_AWS_LAMBDA_ENDPOINT`. Without it these tests fail
//! and say why; they never pass without the emulator.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::{Client, config};
use serde_json::{Value, json};

const FUNCTION: &str = "chaos-echo";

fn endpoint() -> String {
    match std::env::var("CHAOS_AWS_LAMBDA_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => match std::env::var("CHAOS_AWS_LAMBDA_SETUP_ERROR") {
            Ok(reason) if !reason.is_empty() => {
                panic!("cargo lambda watch could not be set up: {reason}")
            }
            _ => panic!(
                "CHAOS_AWS_LAMBDA_ENDPOINT is not set: run `bash scripts/test.sh`, which \
                 installs cargo-lambda from PyPI into target/cargo-lambda-venv and starts \
                 `cargo lambda watch -p lambda-orders --bin chaos-echo` on loopback (or start it \
                 yourself with CHAOS_PLAN_FILE=chaos-aws/tests/lambda_watch_plan.toml and \
                 export CHAOS_AWS_LAMBDA_ENDPOINT=http://127.0.0.1:PORT)"
            ),
        },
    }
}

/// A Lambda client for the watcher: static dummy credentials, no retries (each test
/// invocation is one invocation of the function; the SDK's retries are the wire tests' job).
fn client() -> Client {
    let config = config::Builder::new()
        .behavior_version(config::BehaviorVersion::latest())
        .region(config::Region::new("us-east-1"))
        .credentials_provider(Credentials::from_keys("AKIDCHAOSTEST", "secret", None))
        .endpoint_url(endpoint())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        // The first invocation may wait for the watcher to start the function.
        .timeout_config(
            aws_smithy_types::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(600))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

async fn invoke(
    client: &Client,
    payload: &Value,
) -> Result<
    aws_sdk_lambda::operation::invoke::InvokeOutput,
    aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::invoke::InvokeError>,
> {
    client
        .invoke()
        .function_name(FUNCTION)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
}

fn payload_json(output: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Value {
    let bytes = output.payload().map(Blob::as_ref).unwrap_or_default();
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_reach_the_caller_through_the_lambda_runtime() {
    let client = client();

    // Pass-through: no rule selects the event; the handler's own answer comes back.
    let output = invoke(&client, &json!({"fault": "none", "order": 7}))
        .await
        .expect("an unfaulted invocation succeeds");
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), None);
    assert_eq!(
        payload_json(&output),
        json!({"echo": {"fault": "none", "order": 7}, "handled": true})
    );

    // Latency: at least the rule's 300 ms are added (a lower bound the fault guarantees; no
    // upper bound is asserted on a shared machine).
    let started = Instant::now();
    let output = invoke(&client, &json!({"fault": "latency"}))
        .await
        .expect("latency only");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(payload_json(&output)["handled"], true);

    // An injected throttle fails the invocation with the layer's error type
    // (`chaos.throttle`). cargo-lambda answers a function error with HTTP 500 (real Lambda:
    // 200 with `X-Amz-Function-Error`, AWS_NOTES.md), which the SDK reports as a service error.
    let error = invoke(&client, &json!({"fault": "throttle"}))
        .await
        .expect_err("the injected error fails the invocation");
    let raw = error.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 500);
    let body = std::str::from_utf8(raw.body().bytes().unwrap_or_default()).unwrap();
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["errorType"], "chaos.throttle", "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains(r#"rule "throttle""#)),
        "{body}"
    );
    // No typed Invoke error matches (`TooManyRequestsException` is the platform's throttle,
    // not the function's): an unhandled error carrying `errorMessage` in its source.
    let service_error = error.into_service_error();
    assert!(service_error.code().is_none());
    assert!(!service_error.is_too_many_requests_exception());
    let shown = DisplayErrorContext(&service_error).to_string();
    assert!(shown.contains("injected an error (throttled)"), "{shown}");

    // Corruption: the handler ran, its answer is replaced by `null` (`empty`).
    let output = invoke(&client, &json!({"fault": "corrupt"}))
        .await
        .expect("a corrupted answer is still an answer");
    assert_eq!(payload_json(&output), Value::Null);
}
