//! The wire wrapper through the real AWS SDK: typed errors and their fields, attempts on the
//! wire, latency on tokio's paused clock, and replayable decisions. Requests the wrapper does
//! not answer go to moto on loopback (started by `scripts/test.sh`).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use support::{Attempts, chaos_client, dynamodb, endpoint, lambda};

const THROTTLE_GET_ITEM: &str = r#"
    seed = 1
    [[rules]]
    name = "throttled-reads"
    fault = { error = "throttle" }
    match = { service = "dynamodb", operation = "GetItem" }
    probability = 1.0
"#;

#[tokio::test(start_paused = true)]
async fn dynamodb_throttle_is_typed_carries_its_reasons_and_is_retried() {
    let chaos = chaos_client(THROTTLE_GET_ITEM);
    let attempts = Attempts::default();
    let client = dynamodb(&chaos, &attempts, 1);
    let error = client
        .get_item()
        .table_name("orders")
        .key("id", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap_err();
    let error = error.into_service_error();
    let aws_sdk_dynamodb::operation::get_item::GetItemError::ProvisionedThroughputExceededException(
        error,
    ) = error
    else {
        panic!("expected ProvisionedThroughputExceededException, got {error:?}");
    };
    let reasons = error.throttling_reasons();
    assert_eq!(reasons.len(), 1);
    assert_eq!(
        reasons[0].reason(),
        Some("TableReadProvisionedThroughputExceeded")
    );
    assert_eq!(
        reasons[0].resource(),
        Some("arn:aws:dynamodb:eu-west-1:000000000000:table/orders")
    );
    // Standard retry mode: three attempts of one operation, one invocation id, attempts 1..3.
    let seen = attempts.all();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|a| a.invocation_id == seen[0].invocation_id)
    );
    let numbers: Vec<&str> = seen
        .iter()
        .map(|a| a.request_header.split(';').next().unwrap())
        .collect();
    assert_eq!(numbers, ["attempt=1", "attempt=2", "attempt=3"]);
}

#[tokio::test(start_paused = true)]
async fn dynamodb_error_codes_named_in_the_plan() {
    for (code, retried) in [
        ("ThrottlingException", true),
        ("RequestLimitExceeded", true),
        ("InternalServerError", true),
        ("ConditionalCheckFailedException", false),
    ] {
        let chaos = chaos_client(&format!(
            r#"
            seed = 3
            [[rules]]
            fault = {{ error = {{ custom = {{ name = "{code}", message = "injected" }} }} }}
            match = {{ service = "dynamodb", operation = "PutItem" }}
            probability = 1.0
            "#
        ));
        let attempts = Attempts::default();
        let error = dynamodb(&chaos, &attempts, 2)
            .put_item()
            .table_name("orders")
            .item("id", AttributeValue::S("1".into()))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        use aws_sdk_dynamodb::error::ProvideErrorMetadata;
        assert_eq!(error.code(), Some(code), "{error:?}");
        assert_eq!(error.message(), Some("injected"));
        let typed = match code {
            "ThrottlingException" => error.is_throttling_exception(),
            "RequestLimitExceeded" => error.is_request_limit_exceeded(),
            "InternalServerError" => error.is_internal_server_error(),
            _ => error.is_conditional_check_failed_exception(),
        };
        assert!(typed, "{code}: {error:?}");
        assert_eq!(attempts.count(), if retried { 3 } else { 1 }, "{code}");
    }
}

#[tokio::test(start_paused = true)]
async fn latency_runs_on_the_sdks_sleep_then_the_fault_lands() {
    // Latency and a non-retried error on the same call: the call is held 5 virtual seconds,
    // then fails once.
    let chaos = chaos_client(
        r#"
        seed = 4
        [[rules]]
        name = "slow"
        fault = { latency = "5s" }
        match = { service = "dynamodb" }
        probability = 1.0
        [[rules]]
        name = "conflict"
        fault = { error = { custom = { name = "ConditionalCheckFailedException", message = "no" } } }
        match = { service = "dynamodb", operation = "PutItem" }
        probability = 1.0
        "#,
    );
    let attempts = Attempts::default();
    let started = tokio::time::Instant::now();
    let error = dynamodb(&chaos, &attempts, 3)
        .put_item()
        .table_name("orders")
        .item("id", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_conditional_check_failed_exception(), "{error:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(attempts.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn connector_faults_are_dispatch_failures_and_are_retried() {
    for kind in ["timeout", "connection_reset"] {
        let chaos = chaos_client(&format!(
            r#"
            seed = 5
            [[rules]]
            fault = {{ error = "{kind}" }}
            match = {{ service = "dynamodb", operation = "GetItem" }}
            probability = 1.0
            "#
        ));
        let attempts = Attempts::default();
        let error = dynamodb(&chaos, &attempts, 4)
            .get_item()
            .table_name("orders")
            .key("id", AttributeValue::S("1".into()))
            .send()
            .await
            .unwrap_err();
        let dispatch = match &error {
            aws_sdk_dynamodb::error::SdkError::DispatchFailure(failure) => {
                failure.as_connector_error()
            }
            _ => None,
        };
        let connector = dispatch
            .unwrap_or_else(|| panic!("{kind}: expected a dispatch failure, got {error:?}"));
        match kind {
            "timeout" => assert!(connector.is_timeout(), "{connector:?}"),
            _ => assert!(connector.is_io(), "{connector:?}"),
        }
        assert_eq!(attempts.count(), 3, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn lambda_invoke_throttle_carries_its_reason() {
    let chaos = chaos_client(
        r#"
        seed = 6
        [[rules]]
        fault = { error = { custom = { name = "ReservedFunctionConcurrentInvocationLimitExceeded", message = "Rate Exceeded." } } }
        match = { service = "lambda", operation = "Invoke" }
        probability = 1.0
        "#,
    );
    let attempts = Attempts::default();
    let error = lambda(&chaos, &attempts)
        .invoke()
        .function_name("checkout")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(error) = error
    else {
        panic!("expected TooManyRequestsException, got {error:?}");
    };
    assert_eq!(
        error.reason().map(|r| r.as_str()),
        Some("ReservedFunctionConcurrentInvocationLimitExceeded")
    );
    assert_eq!(error.r#type(), Some("User"));
    assert_eq!(error.message(), Some("Rate Exceeded."));
    assert_eq!(attempts.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn lambda_function_error_is_a_successful_invoke() {
    let chaos = chaos_client(
        r#"
        seed = 7
        [[rules]]
        fault = { error = { custom = { name = "FunctionError", message = "payment declined" } } }
        match = { service = "lambda", operation = "Invoke" }
        probability = 1.0
        "#,
    );
    let attempts = Attempts::default();
    let output = lambda(&chaos, &attempts)
        .invoke()
        .function_name("checkout")
        .payload(Blob::new(r#"{"order": 1}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), Some("Unhandled"));
    let payload: serde_json::Value =
        serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    assert_eq!(payload["errorMessage"], "payment declined");
    assert_eq!(attempts.count(), 1);
}

/// Requests no rule fires on reach moto untouched; moto's own errors come back typed, and the
/// non-retryable ones are sent once.
#[tokio::test]
async fn passes_through_to_moto_and_real_errors_stay_real() {
    let endpoint = endpoint();
    // A rule on another operation: every request here passes through.
    let chaos = chaos_client(THROTTLE_GET_ITEM.replace("GetItem", "Scan").as_str());
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "loopback only: {endpoint}"
    );
    let attempts = Attempts::default();
    let client = dynamodb(&chaos, &attempts, 5);
    let table = "chaos-aws-pass-through";
    let _ = client.delete_table().table_name(table).send().await;
    support::create_table(&client, table).await;
    client
        .put_item()
        .table_name(table)
        .item("id", AttributeValue::S("1".into()))
        .item("total", AttributeValue::N("42".into()))
        .send()
        .await
        .unwrap();
    let item = client
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        item.item().unwrap()["total"],
        AttributeValue::N("42".into())
    );

    attempts.clear();
    let missing = client
        .get_item()
        .table_name("no-such-table")
        .key("id", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    assert_eq!(
        attempts.count(),
        1,
        "ResourceNotFoundException is not retried"
    );

    // Lambda through the wrapper to moto: a missing function is moto's 404, sent once.
    let lambda_attempts = Attempts::default();
    let error = lambda(&chaos, &lambda_attempts)
        .invoke()
        .function_name("no-such-function")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_resource_not_found_exception(), "{error:?}");
    assert_eq!(lambda_attempts.count(), 1);
    assert_eq!(chaos.injector().snapshot().rules[0].injected, 0);
}
