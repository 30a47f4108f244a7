//! End to end under `cargo lambda watch`: the `chaos-echo` function
//! (`examples/lambda-orders/src/bin/chaos-echo.rs`, the handler layer fed by
//! `tests/lambda_watch_plan.toml`) runs in cargo-lambda's emulator of the Lambda runtime and
//! Invoke APIs, invoked through aws-sdk-lambda on loopback.
//!
//! `scripts/test.sh` installs cargo-lambda from PyPI into a virtualenv, starts the watcher on a
//! free 127.0.0.1 port and exports `CHAOS_AWS_LAMBDA_ENDPOINT`. Without it these tests fail
//! and say why; they never pass without the emulator.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::{Client, config};
use chaos_core::advanced::{Failure, hash_str};
use chaos_core::corrupt::CorruptMode;
use chaos_core::{Call, CompiledPlan, Injector};
use serde_json::{Value, json};
use support::Attempts;

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
    Client::from_conf(client_config().build())
}

/// `client()`'s settings, to add an HTTP client or interceptor to.
fn client_config() -> config::Builder {
    config::Builder::new()
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

/// A `corrupt` rule on the caller's side (the wire wrapper around aws-sdk-lambda's HTTP
/// client) lets the invocation run and hands the caller the function's real answer corrupted
/// as the decision says. Invoke's payload is the raw body, so the SDK accepts every corrupted
/// form and the caller's own parsing is what meets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_invoke_answer_is_the_functions_real_answer_corrupted() {
    let event = json!({"fault": "none", "order": 11});
    let original = invoke(&client(), &event)
        .await
        .expect("an unfaulted invocation succeeds");
    let original = original.payload().unwrap().as_ref().to_vec();
    assert_eq!(
        serde_json::from_slice::<Value>(&original).unwrap(),
        json!({"echo": event, "handled": true})
    );
    let modes = [
        CorruptMode::Truncate,
        CorruptMode::Flip,
        CorruptMode::Empty,
        CorruptMode::JsonInvalid,
    ];
    for (index, mode) in modes.into_iter().enumerate() {
        let plan = format!(
            "seed = {}\n[[rules]]\nname = \"corrupt\"\nfault = {{ corrupt = \"{mode}\" }}\n\
             match = {{ service = \"lambda\", operation = \"Invoke\" }}\nprobability = 1.0\n",
            70 + index
        );
        let attempts = Attempts::default();
        let chaos = support::chaos_client(&plan);
        let through_chaos = Client::from_conf(
            client_config()
                .http_client(chaos)
                .interceptor(attempts.clone())
                .build(),
        );
        let output = invoke(&through_chaos, &event)
            .await
            .unwrap_or_else(|e| panic!("{mode}: a corrupted answer is still an answer: {e:?}"));
        assert_eq!(output.status_code(), 200, "{mode}");
        assert_eq!(output.function_error(), None, "{mode}");
        // Replay the decision from its inputs: the first attempt's invocation id is the key.
        let seen = attempts.all();
        assert_eq!(seen.len(), 1, "{mode}: retries are off");
        let injector = Injector::builder()
            .plan(CompiledPlan::from_toml_str(&plan).unwrap())
            .ignore_env()
            .build()
            .unwrap();
        let call = Call::new(hash_str(&seen[0].invocation_id), "tests")
            .service("lambda")
            .operation("Invoke");
        let verdict = injector.decide(&call);
        let Some(Failure::Corrupt { corruption, .. }) = verdict.failure.as_deref() else {
            panic!("{mode}: the rule decides a corruption");
        };
        let payload = output.payload().map(Blob::as_ref).unwrap_or_default();
        assert_eq!(payload, corruption.apply(&original).as_slice(), "{mode}");
        assert_ne!(payload, original.as_slice(), "{mode}: the answer changed");
        assert_ne!(
            serde_json::from_slice::<Value>(payload).ok(),
            Some(json!({"echo": event, "handled": true})),
            "{mode}: the caller does not read the answer the function gave"
        );
    }
}
