use super::*;

fn call(service: Service, operation: &str) -> WireCall {
    WireCall {
        service: Some(service),
        service_name: service.name().to_owned(),
        operation: operation.to_owned(),
        request_key: 7,
        attempt: 1,
        region: Some("eu-west-1".to_owned()),
    }
}

fn render(service: Service, operation: &str, error: &ServiceError) -> (u16, String, String) {
    let response = error.to_response(service, &call(service, operation), Some("orders"));
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join("\n");
    let body = std::str::from_utf8(response.body().bytes().expect("in-memory body"))
        .expect("utf-8 body")
        .to_owned();
    (response.status().as_u16(), headers, body)
}

#[test]
fn dynamodb_throttle_carries_throttling_reasons() {
    let error = ServiceError::for_kind(Service::DynamoDb, "GetItem", &ErrorKind::Throttle);
    let (status, headers, body) = render(Service::DynamoDb, "GetItem", &error);
    assert_eq!(status, 400);
    assert!(
        headers.contains("content-type: application/x-amz-json-1.0"),
        "{headers}"
    );
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    );
    assert_eq!(
        body["ThrottlingReasons"][0]["reason"],
        "TableReadProvisionedThroughputExceeded"
    );
    assert_eq!(
        body["ThrottlingReasons"][0]["resource"],
        "arn:aws:dynamodb:eu-west-1:000000000000:table/orders"
    );
    let write = ServiceError::for_kind(Service::DynamoDb, "PutItem", &ErrorKind::Throttle);
    let (_, _, body) = render(Service::DynamoDb, "PutItem", &write);
    assert!(
        body.contains("TableWriteProvisionedThroughputExceeded"),
        "{body}"
    );
}

#[test]
fn every_service_throttles_and_fails_in_its_shape() {
    let cases = [
        (
            Service::DynamoDb,
            400,
            "ProvisionedThroughputExceededException",
            500,
            "InternalServerError",
        ),
        (
            Service::Lambda,
            429,
            "TooManyRequestsException",
            500,
            "ServiceException",
        ),
        (Service::Sqs, 400, "RequestThrottled", 500, "InternalError"),
        (Service::Sns, 429, "Throttled", 500, "InternalError"),
        (Service::S3, 503, "SlowDown", 500, "InternalError"),
        (
            Service::StepFunctions,
            400,
            "ThrottlingException",
            500,
            "InternalFailure",
        ),
        (
            Service::Ssm,
            400,
            "ThrottlingException",
            500,
            "InternalServerError",
        ),
    ];
    for (service, throttle_status, throttle_code, server_status, server_code) in cases {
        let throttled = ServiceError::for_kind(service, "X", &ErrorKind::Throttle);
        assert_eq!(
            (throttled.status, throttled.code),
            (throttle_status, throttle_code),
            "{service:?}"
        );
        let failed = ServiceError::for_kind(service, "X", &ErrorKind::ServerError { status: 500 });
        assert_eq!(
            (failed.status, failed.code),
            (server_status, server_code),
            "{service:?}"
        );
        let (_, headers, body) = render(service, "X", &throttled);
        match service.protocol() {
            Protocol::AwsJson(_) => {
                assert!(body.contains(&format!("#{throttle_code}\"")), "{body}")
            }
            Protocol::RestJson => assert!(
                headers.contains(&format!("x-amzn-errortype: {throttle_code}")),
                "{headers}"
            ),
            Protocol::AwsQuery(_) => assert!(
                body.starts_with("<ErrorResponse")
                    && body.contains(&format!("<Code>{throttle_code}</Code>")),
                "{body}"
            ),
            Protocol::RestXml => assert!(
                body.contains(&format!("<Error><Code>{throttle_code}</Code>")),
                "{body}"
            ),
        }
    }
}

#[test]
fn lambda_throttle_reason_and_function_error() {
    let throttled = ServiceError::for_kind(Service::Lambda, "Invoke", &ErrorKind::Throttle);
    let (status, _, body) = render(Service::Lambda, "Invoke", &throttled);
    assert_eq!(status, 429);
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["Reason"], "ConcurrentInvocationLimitExceeded");
    assert_eq!(body["Type"], "User");

    let custom = |name: &str| ErrorKind::Custom {
        name: name.into(),
        message: "boom".into(),
    };
    let reserved = ServiceError::for_kind(
        Service::Lambda,
        "Invoke",
        &custom("ReservedFunctionConcurrentInvocationLimitExceeded"),
    );
    assert_eq!(
        reserved.reason,
        Some("ReservedFunctionConcurrentInvocationLimitExceeded")
    );
    assert_eq!((reserved.status, reserved.message.as_str()), (429, "boom"));

    let function_error =
        ServiceError::for_kind(Service::Lambda, "Invoke", &custom("FunctionError"));
    let (status, headers, body) = render(Service::Lambda, "Invoke", &function_error);
    assert_eq!(status, 200);
    assert!(
        headers.contains("x-amz-function-error: Unhandled"),
        "{headers}"
    );
    assert!(!headers.contains("x-amzn-errortype"), "{headers}");
    assert!(body.contains("\"errorMessage\":\"boom\""), "{body}");
    // Not an Invoke: no function to fail.
    let elsewhere =
        ServiceError::for_kind(Service::Lambda, "GetFunction", &custom("FunctionError"));
    assert_eq!(elsewhere.status, 400);
}

#[test]
fn statuses_and_custom_codes() {
    let unavailable = ServiceError::for_status(Service::DynamoDb, 503);
    assert_eq!(
        (unavailable.status, unavailable.code),
        (503, "ServiceUnavailable")
    );
    let lambda_503 = ServiceError::for_status(Service::Lambda, 503);
    assert_eq!(
        (lambda_503.status, lambda_503.code),
        (503, "ServiceException")
    );
    let too_many = ServiceError::for_status(Service::S3, 429);
    assert_eq!((too_many.status, too_many.code), (429, "SlowDown"));
    let teapot = ServiceError::for_status(Service::Sqs, 418);
    assert_eq!((teapot.status, teapot.code), (418, "ChaosInjectedStatus"));
    let conditional = ServiceError::for_kind(
        Service::DynamoDb,
        "PutItem",
        &ErrorKind::Custom {
            name: "ConditionalCheckFailedException".into(),
            message: "no".into(),
        },
    );
    assert_eq!(
        (conditional.status, conditional.code),
        (400, "ConditionalCheckFailedException")
    );
    assert!(accepts_custom(Service::Lambda, "FunctionError"));
    assert!(!accepts_custom(Service::DynamoDb, "FunctionError"));
}

#[test]
fn xml_messages_are_escaped() {
    let error = ServiceError::for_kind(
        Service::S3,
        "GetObject",
        &ErrorKind::Custom {
            name: "NoSuchKey".into(),
            message: "<a & b>".into(),
        },
    );
    let (status, _, body) = render(Service::S3, "GetObject", &error);
    assert_eq!(status, 404);
    assert!(
        body.contains("<Message>&lt;a &amp; b&gt;</Message>"),
        "{body}"
    );
}

#[test]
fn sqs_errors_carry_their_query_code_header() {
    for (code, header) in [
        (
            "QueueDoesNotExist",
            "x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender",
        ),
        (
            "KmsThrottled",
            "x-amzn-query-error: KMS.ThrottlingException;Sender",
        ),
        (
            "RequestThrottled",
            "x-amzn-query-error: RequestThrottled;Sender",
        ),
        (
            "InternalError",
            "x-amzn-query-error: InternalError;Receiver",
        ),
    ] {
        let kind = ErrorKind::Custom {
            name: code.to_owned(),
            message: "m".to_owned(),
        };
        let error = ServiceError::for_kind(Service::Sqs, "SendMessage", &kind);
        let (_, headers, body) = render(Service::Sqs, "SendMessage", &error);
        assert!(headers.contains(header), "{code}: {headers}");
        assert!(
            body.contains(&format!("com.amazonaws.sqs#{code}")),
            "{body}"
        );
    }
    // Other JSON services do not send it.
    let error = ServiceError::for_kind(
        Service::StepFunctions,
        "StartExecution",
        &ErrorKind::Throttle,
    );
    let (_, headers, _) = render(Service::StepFunctions, "StartExecution", &error);
    assert!(!headers.contains("x-amzn-query-error"), "{headers}");
}
