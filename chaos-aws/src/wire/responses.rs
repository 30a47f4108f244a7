//! The exact error each service sends, in its protocol's shape, for each fault kind.
//!
//! The table in the crate docs ("What each fault becomes on the wire") is this module's
//! contract; `tests` below pin every row.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chaos_core::ErrorKind;

use crate::services::{Protocol, Service};
use crate::wire::identify::WireCall;

/// An error a service sends: HTTP status, error code, message, and who is at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Lambda's throttle `Reason`, when the error is a Lambda throttle.
    pub reason: Option<&'static str>,
    /// Lambda Invoke's function error: 200 with `X-Amz-Function-Error`.
    pub function_error: bool,
}

/// Lambda's throttle reasons; a `custom` error may name one to pick the `Reason`.
pub const LAMBDA_THROTTLE_REASONS: &[&str] = &[
    "ConcurrentInvocationLimitExceeded",
    "FunctionInvocationRateLimitExceeded",
    "ReservedFunctionConcurrentInvocationLimitExceeded",
    "ReservedFunctionInvocationRateLimitExceeded",
    "CallerRateLimitExceeded",
    "ConcurrentSnapshotCreateLimitExceeded",
];

/// The `custom` error name that makes Lambda Invoke answer 200 with `X-Amz-Function-Error`.
pub const LAMBDA_FUNCTION_ERROR: &str = "FunctionError";

/// The error codes a `custom` fault may name, per service, with their HTTP status.
pub(crate) fn error_codes(service: Service) -> &'static [(&'static str, u16)] {
    match service {
        Service::DynamoDb => &[
            ("ProvisionedThroughputExceededException", 400),
            ("ThrottlingException", 400),
            ("RequestLimitExceeded", 400),
            ("ConditionalCheckFailedException", 400),
            ("TransactionConflictException", 400),
            ("TransactionCanceledException", 400),
            ("ResourceNotFoundException", 400),
            ("ItemCollectionSizeLimitExceededException", 400),
            ("ValidationException", 400),
            ("InternalServerError", 500),
            ("ServiceUnavailable", 503),
        ],
        Service::Lambda => &[
            ("TooManyRequestsException", 429),
            ("ServiceException", 500),
            ("ResourceNotFoundException", 404),
            ("ResourceConflictException", 409),
            ("InvalidParameterValueException", 400),
            ("EC2ThrottledException", 502),
            ("ENILimitReachedException", 502),
        ],
        Service::Sqs => &[
            ("RequestThrottled", 400),
            ("KmsThrottled", 400),
            ("QueueDoesNotExist", 400),
            ("OverLimit", 403),
            ("InternalError", 500),
            ("ServiceUnavailable", 503),
        ],
        Service::Sns => &[
            ("Throttled", 429),
            ("KMSThrottling", 400),
            ("NotFound", 404),
            ("InternalError", 500),
        ],
        Service::S3 => &[
            ("SlowDown", 503),
            ("NoSuchKey", 404),
            ("NoSuchBucket", 404),
            ("AccessDenied", 403),
            ("InternalError", 500),
            ("ServiceUnavailable", 503),
        ],
        Service::StepFunctions => &[
            ("ThrottlingException", 400),
            ("ExecutionLimitExceeded", 400),
            ("ExecutionDoesNotExist", 400),
            ("StateMachineDoesNotExist", 400),
            ("InternalFailure", 500),
            ("ServiceUnavailable", 503),
        ],
        Service::Ssm => &[
            ("ThrottlingException", 400),
            ("TooManyUpdates", 400),
            ("ParameterNotFound", 400),
            ("InternalServerError", 500),
        ],
    }
}

/// Whether `name` is a `custom` error the service can send.
pub(crate) fn accepts_custom(service: Service, name: &str) -> bool {
    error_codes(service).iter().any(|(code, _)| *code == name)
        || (service == Service::Lambda
            && (name == LAMBDA_FUNCTION_ERROR || LAMBDA_THROTTLE_REASONS.contains(&name)))
}

/// The codes `custom` accepts for a service, for error messages.
pub(crate) fn custom_names(service: Service) -> String {
    let mut names: Vec<&str> = error_codes(service).iter().map(|(code, _)| *code).collect();
    if service == Service::Lambda {
        names.push(LAMBDA_FUNCTION_ERROR);
        names.extend_from_slice(LAMBDA_THROTTLE_REASONS);
    }
    names.join(", ")
}

/// The throttle error a service sends.
fn throttle(service: Service) -> &'static str {
    match service {
        Service::DynamoDb => "ProvisionedThroughputExceededException",
        Service::Lambda => "TooManyRequestsException",
        Service::Sqs => "RequestThrottled",
        Service::Sns => "Throttled",
        Service::S3 => "SlowDown",
        Service::StepFunctions | Service::Ssm => "ThrottlingException",
    }
}

/// The error a service sends with a 500 (and, with the status changed, other 5xx but 503).
fn internal(service: Service) -> &'static str {
    match service {
        Service::DynamoDb | Service::Ssm => "InternalServerError",
        Service::Lambda => "ServiceException",
        Service::Sqs | Service::Sns | Service::S3 => "InternalError",
        Service::StepFunctions => "InternalFailure",
    }
}

fn status_of(service: Service, code: &str) -> Option<u16> {
    error_codes(service)
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, status)| *status)
}

impl ServiceError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
            function_error: false,
        }
    }

    /// The error `service` sends for an injected error kind (not timeouts or resets: those are
    /// connector errors) or an injected status.
    pub(crate) fn for_kind(service: Service, operation: &str, kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::Throttle => Self::throttled(service, None),
            ErrorKind::ServerError { status } => Self::server_error(service, *status),
            ErrorKind::Custom { name, message } => Self::custom(service, operation, name, message),
            // Callers turn these into connector errors; a response is the fallback.
            ErrorKind::Timeout | ErrorKind::ConnectionReset => Self::server_error(service, 503),
            _ => Self::server_error(service, 500),
        }
    }

    /// The response for an injected `status` fault: the service's throttle for 429, its
    /// server error for 5xx, else a generic error code with that status.
    pub(crate) fn for_status(service: Service, status: u16) -> Self {
        match status {
            429 => Self {
                status,
                ..Self::throttled(service, None)
            },
            500..=599 => Self::server_error(service, status),
            _ => Self::new(
                status,
                "ChaosInjectedStatus",
                format!("Injected status code {status}"),
            ),
        }
    }

    fn throttled(service: Service, reason: Option<&'static str>) -> Self {
        let code = throttle(service);
        let status = status_of(service, code).unwrap_or(400);
        let mut error = match service {
            Service::Lambda => Self::new(status, code, "Rate Exceeded."),
            Service::S3 => Self::new(status, code, "Please reduce your request rate."),
            Service::DynamoDb => Self::new(
                status,
                code,
                "The level of configured provisioned throughput for the table was exceeded. \
                 Consider increasing your provisioning level with the UpdateTable API.",
            ),
            _ => Self::new(status, code, "Rate exceeded"),
        };
        if service == Service::Lambda {
            error.reason = Some(reason.unwrap_or("ConcurrentInvocationLimitExceeded"));
        }
        error
    }

    fn server_error(service: Service, status: u16) -> Self {
        let unavailable = error_codes(service)
            .iter()
            .any(|(code, _)| *code == "ServiceUnavailable");
        if status == 503 && unavailable {
            return Self::new(503, "ServiceUnavailable", "Service unavailable");
        }
        Self::new(status, internal(service), "Internal server error")
    }

    fn custom(service: Service, operation: &str, name: &str, message: &str) -> Self {
        if service == Service::Lambda {
            if let Some(reason) = LAMBDA_THROTTLE_REASONS.iter().find(|r| **r == name) {
                let mut error = Self::throttled(service, Some(reason));
                error.message = message.to_owned();
                return error;
            }
            if name == LAMBDA_FUNCTION_ERROR && operation == "Invoke" {
                let mut error = Self::new(200, LAMBDA_FUNCTION_ERROR, message);
                error.function_error = true;
                return error;
            }
        }
        match error_codes(service).iter().find(|(code, _)| *code == name) {
            Some((code, status)) if *code == throttle(service) => Self {
                status: *status,
                message: message.to_owned(),
                ..Self::throttled(service, None)
            },
            Some((code, status)) => Self::new(*status, code, message),
            // Rejected when the plan is checked; a plan swapped in live may still carry one.
            None => Self::new(400, "ChaosInjectedError", format!("{name}: {message}")),
        }
    }

    /// The HTTP response, in the service's protocol.
    pub(crate) fn to_response(
        &self,
        service: Service,
        call: &WireCall,
        table: Option<&str>,
    ) -> HttpResponse {
        let request_id = format!("chaos-{:016x}-{}", call.request_key, call.attempt);
        let (content_type, body) = match service.protocol() {
            Protocol::AwsJson(content_type) => {
                let mut body = serde_json::json!({
                    "__type": format!("{}#{}", json_namespace(service), self.code),
                    "message": self.message,
                });
                if self.code == "ProvisionedThroughputExceededException" {
                    body["ThrottlingReasons"] = serde_json::json!([{
                        "reason": dynamodb_throttle_reason(&call.operation),
                        "resource": format!(
                            "arn:aws:dynamodb:{}:000000000000:table/{}",
                            call.region.as_deref().unwrap_or("us-east-1"),
                            table.unwrap_or("unknown"),
                        ),
                    }]);
                }
                (content_type, body.to_string())
            }
            Protocol::RestJson if self.function_error => (
                "application/json",
                serde_json::json!({
                    "errorType": "ChaosInjectedError",
                    "errorMessage": self.message,
                })
                .to_string(),
            ),
            Protocol::RestJson => {
                let mut body = serde_json::json!({
                    "Type": if self.status >= 500 { "Service" } else { "User" },
                    "message": self.message,
                });
                if let Some(reason) = self.reason {
                    body["Reason"] = reason.into();
                }
                ("application/json", body.to_string())
            }
            Protocol::AwsQuery(namespace) => (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{}</Type><Code>{}</Code>\
                     <Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                    if self.status >= 500 {
                        "Receiver"
                    } else {
                        "Sender"
                    },
                    self.code,
                    xml_escape(&self.message),
                ),
            ),
            Protocol::RestXml => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code>\
                     <Message>{}</Message><RequestId>{request_id}</RequestId>\
                     <HostId>chaos-aws</HostId></Error>",
                    self.code,
                    xml_escape(&self.message),
                ),
            ),
        };
        // Status codes here are 200 to 599: always valid.
        let status = StatusCode::try_from(self.status).unwrap_or_else(|_| {
            StatusCode::try_from(500).unwrap_or_else(|_| unreachable!("500 is a valid status"))
        });
        let mut response = HttpResponse::new(status, SdkBody::from(body));
        let headers = response.headers_mut();
        headers.insert("content-type", content_type);
        headers.insert("x-amzn-requestid", request_id.clone());
        match service.protocol() {
            Protocol::RestJson if self.function_error => {
                headers.insert("x-amz-function-error", "Unhandled");
                headers.insert("x-amz-executed-version", "$LATEST");
            }
            Protocol::RestJson => {
                headers.insert("x-amzn-errortype", self.code);
            }
            Protocol::RestXml => {
                headers.insert("x-amz-request-id", request_id);
            }
            // SQS speaks JSON but keeps its query-API error codes (awsQueryCompatible): the
            // SDK reads the code from this header, and types `QueueDoesNotExist` only by it.
            Protocol::AwsJson(_) if service == Service::Sqs => {
                let fault = if self.status >= 500 {
                    "Receiver"
                } else {
                    "Sender"
                };
                headers.insert(
                    "x-amzn-query-error",
                    format!("{};{fault}", sqs_query_code(self.code)),
                );
            }
            _ => {}
        }
        response
    }
}

/// The query-API code SQS sends in `x-amzn-query-error` for one of its errors.
fn sqs_query_code(code: &str) -> &str {
    match code {
        "QueueDoesNotExist" => "AWS.SimpleQueueService.NonExistentQueue",
        "KmsThrottled" => "KMS.ThrottlingException",
        other => other,
    }
}

/// The error a request to a service the wrapper does not know gets: JSON with the code in
/// both places JSON protocols read it.
pub(crate) fn generic_response(
    kind_code: &'static str,
    status: u16,
    message: &str,
) -> HttpResponse {
    let body = serde_json::json!({ "__type": kind_code, "message": message }).to_string();
    let status = StatusCode::try_from(status).unwrap_or_else(|_| {
        StatusCode::try_from(500).unwrap_or_else(|_| unreachable!("500 is a valid status"))
    });
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/json");
    response.headers_mut().insert("x-amzn-errortype", kind_code);
    response
}

fn json_namespace(service: Service) -> &'static str {
    match service {
        Service::DynamoDb => "com.amazonaws.dynamodb.v20120810",
        Service::Sqs => "com.amazonaws.sqs",
        Service::StepFunctions => "com.amazonaws.states",
        Service::Ssm => "com.amazonaws.ssm",
        _ => "com.amazonaws",
    }
}

fn dynamodb_throttle_reason(operation: &str) -> &'static str {
    match operation {
        "GetItem"
        | "BatchGetItem"
        | "Query"
        | "Scan"
        | "TransactGetItems"
        | "ExecuteStatement"
        | "BatchExecuteStatement" => "TableReadProvisionedThroughputExceeded",
        _ => "TableWriteProvisionedThroughputExceeded",
    }
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
