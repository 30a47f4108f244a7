//! Wire faults in each protocol's exact shape, through the real SDK clients of the services
//! beyond DynamoDB and Lambda: SQS and Step Functions (`awsJson1_0`), SNS (`awsQuery`) and S3
//! (`restXml`). Each test asserts the typed error (or, where the service does not model the
//! error on that operation, its code), the number of attempts on the wire (retried or not),
//! and that requests no rule fires on reach moto on loopback and come back real.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use aws_credential_types::Credentials;
use support::{Attempts, chaos_client, endpoint};

/// A plan faulting every `operation` of `service` with `fault` (TOML inline table).
fn plan(service: &str, operation: &str, fault: &str) -> String {
    format!(
        "seed = 11\n[[rules]]\nname = \"injected\"\nfault = {fault}\n\
         match = {{ service = \"{service}\", operation = \"{operation}\" }}\nprobability = 1.0\n"
    )
}

const THROTTLE: &str = r#"{ error = "throttle" }"#;
const SERVER_ERROR: &str = r#"{ error = { server_error = 500 } }"#;
/// A plan whose one rule selects nothing these tests send: every request reaches moto.
const PASS_THROUGH: &str = "seed = 11\n[[rules]]\nfault = { error = \"throttle\" }\n\
    match = { service = \"dynamodb\", operation = \"Scan\" }\nprobability = 1.0\n";

fn custom(code: &str, message: &str) -> String {
    format!("{{ error = {{ custom = {{ name = \"{code}\", message = \"{message}\" }} }} }}")
}

fn credentials() -> Credentials {
    Credentials::from_keys("AKIDCHAOSTEST", "secret", None)
}

fn retries() -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::standard().with_initial_backoff(Duration::from_millis(10))
}

/// Builds a client of one SDK crate through `chaos`, on moto, with its own retry partition
/// and the attempt recorder; `$extra` adds service-specific settings.
macro_rules! client {
    ($krate:ident, $chaos:expr, $attempts:expr, $partition:expr $(, $extra:ident($value:expr))*) => {{
        use $krate::config::{BehaviorVersion, Region};
        let config = $krate::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials())
            .endpoint_url(endpoint())
            .http_client($chaos.clone())
            .retry_partition(chaos_aws::isolated_retry_partition($partition))
            .interceptor($attempts.clone())
            .retry_config(retries())
            $(.$extra($value))*
            .build();
        $krate::Client::from_conf(config)
    }};
}

/// Every attempt of one operation carries the same invocation id.
fn one_operation(attempts: &Attempts) {
    let seen = attempts.all();
    assert!(
        seen.iter()
            .all(|a| a.invocation_id == seen[0].invocation_id),
        "{seen:?}"
    );
}

#[tokio::test]
async fn sqs_errors_are_typed_by_their_query_codes() {
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    let attempts = Attempts::default();
    let real = client!(
        aws_sdk_sqs,
        chaos_client(PASS_THROUGH),
        attempts,
        "sqs-real"
    );
    let queue_url = real
        .create_queue()
        .queue_name("chaos-aws-orders")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    real.send_message()
        .queue_url(&queue_url)
        .message_body("order 1")
        .send()
        .await
        .unwrap();

    for (fault, code, attempts_made) in [
        (THROTTLE.to_owned(), "RequestThrottled", 3),
        (SERVER_ERROR.to_owned(), "InternalError", 3),
        (
            custom("QueueDoesNotExist", "The specified queue does not exist."),
            "AWS.SimpleQueueService.NonExistentQueue",
            1,
        ),
    ] {
        let attempts = Attempts::default();
        let chaos = chaos_client(&plan("sqs", "SendMessage", &fault));
        let client = client!(aws_sdk_sqs, chaos, attempts, format!("sqs-{code}"));
        let error = client
            .send_message()
            .queue_url(&queue_url)
            .message_body("order 2")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(error.code(), Some(code), "{error:?}");
        match code {
            "RequestThrottled" => assert!(error.is_request_throttled(), "{error:?}"),
            "InternalError" => assert_eq!(error.message(), Some("Internal server error")),
            _ => assert!(error.is_queue_does_not_exist(), "{error:?}"),
        }
        assert_eq!(attempts.count(), attempts_made, "{code}");
        one_operation(&attempts);
    }

    // moto's own error for a missing queue has the same shape: typed, sent once.
    attempts.clear();
    let missing = real
        .send_message()
        .queue_url(queue_url.replace("chaos-aws-orders", "no-such-queue"))
        .message_body("order 3")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_queue_does_not_exist(), "{missing:?}");
    assert_eq!(attempts.count(), 1);
    // The message sent through the wrapper before is in the queue.
    let received = real
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages()[0].body(), Some("order 1"));
}

#[tokio::test]
async fn sns_query_errors_and_which_are_retried() {
    use aws_sdk_sns::error::ProvideErrorMetadata;
    let attempts = Attempts::default();
    let real = client!(
        aws_sdk_sns,
        chaos_client(PASS_THROUGH),
        attempts,
        "sns-real"
    );
    let topic_arn = real
        .create_topic()
        .name("chaos-aws-orders")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    assert!(
        real.publish()
            .topic_arn(&topic_arn)
            .message("order 1")
            .send()
            .await
            .unwrap()
            .message_id()
            .is_some()
    );

    // `Throttled` (429) is not modelled on Publish, and neither its code nor 429 is in the
    // SDK's retryable sets: the SDK gives it back after one attempt. A 500 is retried.
    for (fault, code, attempts_made) in [
        (THROTTLE.to_owned(), "Throttled", 1),
        (SERVER_ERROR.to_owned(), "InternalError", 3),
        (custom("NotFound", "Topic does not exist"), "NotFound", 1),
    ] {
        let attempts = Attempts::default();
        let chaos = chaos_client(&plan("sns", "Publish", &fault));
        let client = client!(aws_sdk_sns, chaos, attempts, format!("sns-{code}"));
        let error = client
            .publish()
            .topic_arn(&topic_arn)
            .message("order 2")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(error.code(), Some(code), "{error:?}");
        match code {
            "Throttled" => assert_eq!(error.message(), Some("Rate exceeded")),
            "InternalError" => assert!(error.is_internal_error_exception(), "{error:?}"),
            _ => assert!(error.is_not_found_exception(), "{error:?}"),
        }
        assert_eq!(attempts.count(), attempts_made, "{code}");
        one_operation(&attempts);
    }

    attempts.clear();
    let missing = real
        .publish()
        .topic_arn(topic_arn.replace("chaos-aws-orders", "no-such-topic"))
        .message("order 3")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_not_found_exception(), "{missing:?}");
    assert_eq!(attempts.count(), 1);
}

#[tokio::test]
async fn s3_xml_errors_slow_down_and_missing_keys() {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use aws_sdk_s3::primitives::ByteStream;
    let attempts = Attempts::default();
    let real = client!(
        aws_sdk_s3,
        chaos_client(PASS_THROUGH),
        attempts,
        "s3-real",
        force_path_style(true)
    );
    let bucket = "chaos-aws-orders";
    let _ = real.create_bucket().bucket(bucket).send().await;
    real.put_object()
        .bucket(bucket)
        .key("orders/1.json")
        .body(ByteStream::from_static(br#"{"total": 42}"#))
        .send()
        .await
        .unwrap();

    for (operation, fault, code, attempts_made) in [
        ("GetObject", THROTTLE.to_owned(), "SlowDown", 3),
        ("GetObject", SERVER_ERROR.to_owned(), "InternalError", 3),
        (
            "GetObject",
            custom("NoSuchKey", "The specified key does not exist."),
            "NoSuchKey",
            1,
        ),
        ("PutObject", THROTTLE.to_owned(), "SlowDown", 3),
    ] {
        let attempts = Attempts::default();
        let chaos = chaos_client(&plan("s3", operation, &fault));
        let client = client!(
            aws_sdk_s3,
            chaos,
            attempts,
            format!("s3-{operation}-{code}"),
            force_path_style(true)
        );
        let (code_seen, message) = if operation == "GetObject" {
            let error = client
                .get_object()
                .bucket(bucket)
                .key("orders/1.json")
                .send()
                .await
                .unwrap_err()
                .into_service_error();
            assert_eq!(error.is_no_such_key(), code == "NoSuchKey", "{error:?}");
            (
                error.code().map(str::to_owned),
                error.message().map(str::to_owned),
            )
        } else {
            let error = client
                .put_object()
                .bucket(bucket)
                .key("orders/2.json")
                .body(ByteStream::from_static(b"{}"))
                .send()
                .await
                .unwrap_err()
                .into_service_error();
            (
                error.code().map(str::to_owned),
                error.message().map(str::to_owned),
            )
        };
        assert_eq!(code_seen.as_deref(), Some(code), "{operation}");
        if code == "SlowDown" {
            assert_eq!(message.as_deref(), Some("Please reduce your request rate."));
        }
        assert_eq!(attempts.count(), attempts_made, "{operation} {code}");
        one_operation(&attempts);
    }

    // Untouched requests are moto's: the object reads back, a missing key is typed, sent once.
    let object = real
        .get_object()
        .bucket(bucket)
        .key("orders/1.json")
        .send()
        .await
        .unwrap();
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], br#"{"total": 42}"#);
    attempts.clear();
    let missing = real
        .get_object()
        .bucket(bucket)
        .key("orders/404.json")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_no_such_key(), "{missing:?}");
    assert_eq!(attempts.count(), 1);
}

#[tokio::test]
async fn step_functions_json_errors() {
    use aws_sdk_sfn::error::ProvideErrorMetadata;
    let attempts = Attempts::default();
    let real = client!(
        aws_sdk_sfn,
        chaos_client(PASS_THROUGH),
        attempts,
        "sfn-real"
    );
    let definition = r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#;
    let machine_arn = real
        .create_state_machine()
        .name("chaos-aws-checkout")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/chaos-aws-checkout")
        .send()
        .await
        .unwrap()
        .state_machine_arn
        .clone();
    real.start_execution()
        .state_machine_arn(&machine_arn)
        .input("{}")
        .send()
        .await
        .unwrap();

    // `ThrottlingException` is not modelled on StartExecution: an unmodelled error with that
    // code, which the SDK's throttling classifier retries.
    for (fault, code, attempts_made) in [
        (THROTTLE.to_owned(), "ThrottlingException", 3),
        (SERVER_ERROR.to_owned(), "InternalFailure", 3),
        (
            custom("StateMachineDoesNotExist", "State Machine Does Not Exist"),
            "StateMachineDoesNotExist",
            1,
        ),
    ] {
        let attempts = Attempts::default();
        let chaos = chaos_client(&plan("states", "StartExecution", &fault));
        let client = client!(aws_sdk_sfn, chaos, attempts, format!("sfn-{code}"));
        let error = client
            .start_execution()
            .state_machine_arn(&machine_arn)
            .input("{}")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(error.code(), Some(code), "{error:?}");
        assert_eq!(
            error.is_state_machine_does_not_exist(),
            code == "StateMachineDoesNotExist",
            "{error:?}"
        );
        assert_eq!(attempts.count(), attempts_made, "{code}");
        one_operation(&attempts);
    }

    attempts.clear();
    let missing = real
        .describe_execution()
        .execution_arn(format!(
            "{}:no-such-execution",
            machine_arn.replace(":stateMachine:", ":execution:")
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_execution_does_not_exist(), "{missing:?}");
    assert_eq!(attempts.count(), 1);
}
