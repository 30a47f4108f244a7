//! Reads a request on the wire: which service and operation, which SDK operation invocation
//! (the request key), which attempt.

use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use chaos_core::advanced::hash_str;

use crate::services::Service;

/// What the wrapper knows about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireCall {
    /// The service, when the wrapper knows it.
    pub service: Option<Service>,
    /// The service's signing name (from the SigV4 scope), or the known service's name.
    pub service_name: String,
    /// The operation, as the SDK names it; empty when it was not recognised.
    pub operation: String,
    /// Stable across the attempts of one SDK operation: the hash of `amz-sdk-invocation-id`.
    pub request_key: u64,
    /// 0 for the first attempt (the SDK's `amz-sdk-request: attempt=1`).
    pub attempt: u32,
    /// The SigV4 scope's Region, for ARNs in error bodies.
    pub region: Option<String>,
}

impl WireCall {
    pub(crate) fn read(request: &HttpRequest) -> Self {
        let headers = request.headers();
        let scope = headers.get("authorization").and_then(sigv4_scope);
        let (mut service, mut operation) = (None, String::new());
        if let Some((prefix, op)) = headers.get("x-amz-target").and_then(|t| t.split_once('.')) {
            service = Service::from_target_prefix(prefix);
            operation = op.to_owned();
        }
        let signing_name = scope.map(|(_, name)| name.to_owned());
        if service.is_none() {
            service = signing_name
                .as_deref()
                .and_then(Service::from_name)
                .or_else(|| {
                    host_of(request.uri())
                        .and_then(|host| host.split('.').next())
                        .and_then(Service::from_name)
                });
        }
        if operation.is_empty() {
            operation = match service {
                Some(Service::Lambda) => lambda_operation(request.method(), path_of(request.uri())),
                Some(Service::S3) => s3_operation(request),
                Some(Service::Sns) => query_action(request),
                _ => None,
            }
            .unwrap_or_default();
        }
        let service_name = match service {
            Some(service) => service.name().to_owned(),
            None => signing_name.unwrap_or_default(),
        };
        // Without the SDK's headers (a hand-built request) every request is its own key.
        let request_key = headers.get("amz-sdk-invocation-id").map_or(0, hash_str);
        let attempt = headers
            .get("amz-sdk-request")
            .and_then(sdk_attempt)
            .unwrap_or(0);
        Self {
            service,
            service_name,
            operation,
            request_key,
            attempt,
            region: scope.map(|(region, _)| region.to_owned()),
        }
    }
}

/// `(region, service)` from `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ..`.
fn sigv4_scope(authorization: &str) -> Option<(&str, &str)> {
    let credential = authorization.split("Credential=").nth(1)?;
    let credential = credential.split([',', ' ']).next()?;
    let mut parts = credential.split('/').skip(2);
    Some((parts.next()?, parts.next()?))
}

/// The attempt in `attempt=N; max=M`, counted from 0 (the SDK counts from 1).
fn sdk_attempt(value: &str) -> Option<u32> {
    let number = value
        .split(';')
        .find_map(|pair| pair.trim().strip_prefix("attempt="))?;
    number
        .trim()
        .parse::<u32>()
        .ok()
        .map(|n| n.saturating_sub(1))
}

fn host_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    Some(
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    )
}

fn path_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let from_path = rest.find('/').map_or("/", |at| &rest[at..]);
    from_path.split('?').next().unwrap_or("/")
}

fn query_of(uri: &str) -> &str {
    uri.split_once('?').map_or("", |(_, query)| query)
}

fn has_query_key(uri: &str, key: &str) -> bool {
    query_of(uri)
        .split('&')
        .any(|pair| pair.split('=').next() == Some(key))
}

/// Lambda's REST routes the wrapper recognises: (method, path with `*` for one label, operation).
pub(crate) const LAMBDA_ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/2015-03-31/functions/*/invocations", "Invoke"),
    (
        "POST",
        "/2014-11-13/functions/*/invoke-async",
        "InvokeAsync",
    ),
    (
        "POST",
        "/2021-11-15/functions/*/response-streaming-invocations",
        "InvokeWithResponseStream",
    ),
    ("GET", "/2015-03-31/functions", "ListFunctions"),
    ("POST", "/2015-03-31/functions", "CreateFunction"),
    ("GET", "/2015-03-31/functions/*", "GetFunction"),
    ("DELETE", "/2015-03-31/functions/*", "DeleteFunction"),
    (
        "GET",
        "/2015-03-31/functions/*/configuration",
        "GetFunctionConfiguration",
    ),
    (
        "PUT",
        "/2015-03-31/functions/*/configuration",
        "UpdateFunctionConfiguration",
    ),
    ("PUT", "/2015-03-31/functions/*/code", "UpdateFunctionCode"),
    (
        "GET",
        "/2015-03-31/functions/*/versions",
        "ListVersionsByFunction",
    ),
    ("POST", "/2015-03-31/functions/*/versions", "PublishVersion"),
    ("GET", "/2015-03-31/functions/*/aliases", "ListAliases"),
    ("POST", "/2015-03-31/functions/*/aliases", "CreateAlias"),
    ("GET", "/2015-03-31/functions/*/policy", "GetPolicy"),
    ("POST", "/2015-03-31/functions/*/policy", "AddPermission"),
    (
        "GET",
        "/2015-03-31/event-source-mappings",
        "ListEventSourceMappings",
    ),
    (
        "POST",
        "/2015-03-31/event-source-mappings",
        "CreateEventSourceMapping",
    ),
    (
        "GET",
        "/2015-03-31/event-source-mappings/*",
        "GetEventSourceMapping",
    ),
    (
        "PUT",
        "/2015-03-31/event-source-mappings/*",
        "UpdateEventSourceMapping",
    ),
    (
        "DELETE",
        "/2015-03-31/event-source-mappings/*",
        "DeleteEventSourceMapping",
    ),
    ("GET", "/2016-08-19/account-settings", "GetAccountSettings"),
    (
        "GET",
        "/2019-09-30/functions/*/concurrency",
        "GetFunctionConcurrency",
    ),
    (
        "PUT",
        "/2017-10-31/functions/*/concurrency",
        "PutFunctionConcurrency",
    ),
    (
        "DELETE",
        "/2017-10-31/functions/*/concurrency",
        "DeleteFunctionConcurrency",
    ),
    ("GET", "/2017-03-31/tags/*", "ListTags"),
    ("POST", "/2017-03-31/tags/*", "TagResource"),
    ("DELETE", "/2017-03-31/tags/*", "UntagResource"),
    ("GET", "/2021-10-31/functions/*/url", "GetFunctionUrlConfig"),
    (
        "POST",
        "/2021-10-31/functions/*/url",
        "CreateFunctionUrlConfig",
    ),
    (
        "PUT",
        "/2021-10-31/functions/*/url",
        "UpdateFunctionUrlConfig",
    ),
    (
        "DELETE",
        "/2021-10-31/functions/*/url",
        "DeleteFunctionUrlConfig",
    ),
    (
        "GET",
        "/2021-10-31/functions/*/urls",
        "ListFunctionUrlConfigs",
    ),
    ("GET", "/2018-10-31/layers", "ListLayers"),
    ("GET", "/2018-10-31/layers/*/versions", "ListLayerVersions"),
    (
        "POST",
        "/2018-10-31/layers/*/versions",
        "PublishLayerVersion",
    ),
    (
        "GET",
        "/2020-04-22/code-signing-configs",
        "ListCodeSigningConfigs",
    ),
    (
        "POST",
        "/2020-04-22/code-signing-configs",
        "CreateCodeSigningConfig",
    ),
];

fn lambda_operation(method: &str, path: &str) -> Option<String> {
    let labels: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    LAMBDA_ROUTES
        .iter()
        .find(|(route_method, route, _)| {
            *route_method == method && {
                let pattern: Vec<&str> = route.split('/').collect();
                pattern.len() == labels.len()
                    && pattern
                        .iter()
                        .zip(&labels)
                        .all(|(want, got)| *want == "*" || want == got)
            }
        })
        .map(|(_, _, operation)| (*operation).to_owned())
}

/// S3 operations the wrapper recognises (see [`s3_operation`]).
pub(crate) const S3_OPERATIONS: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateMultipartUpload",
    "DeleteBucket",
    "DeleteObject",
    "DeleteObjects",
    "GetObject",
    "HeadBucket",
    "HeadObject",
    "ListBuckets",
    "ListObjects",
    "ListObjectsV2",
    "PutObject",
    "UploadPart",
];

/// The common object and bucket operations, path-style (`/bucket/key`) or virtual-hosted
/// (`bucket.s3.REGION.amazonaws.com/key`).
fn s3_operation(request: &HttpRequest) -> Option<String> {
    let uri = request.uri();
    let path = path_of(uri).trim_start_matches('/');
    let virtual_hosted = host_of(uri).is_some_and(|host| {
        host.split_once('.')
            .is_some_and(|(first, rest)| first != "s3" && rest.starts_with("s3"))
    });
    let (bucket, key) = if virtual_hosted {
        (true, !path.is_empty())
    } else {
        match path.split_once('/') {
            Some((_, key)) => (true, !key.is_empty()),
            None => (!path.is_empty(), false),
        }
    };
    let has = |name| has_query_key(uri, name);
    let operation = match (request.method(), bucket, key) {
        ("GET", false, _) => "ListBuckets",
        ("GET", true, true) => "GetObject",
        ("PUT", true, true) if has("uploadId") => "UploadPart",
        ("PUT", true, true) if request.headers().contains_key("x-amz-copy-source") => "CopyObject",
        ("PUT", true, true) => "PutObject",
        ("HEAD", true, true) => "HeadObject",
        ("DELETE", true, true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true, true) => "DeleteObject",
        ("POST", true, true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true, true) if has("uploadId") => "CompleteMultipartUpload",
        ("GET", true, false) if query_of(uri).contains("list-type=2") => "ListObjectsV2",
        ("GET", true, false) if query_of(uri).is_empty() => "ListObjects",
        ("HEAD", true, false) => "HeadBucket",
        ("PUT", true, false) if query_of(uri).is_empty() => "CreateBucket",
        ("DELETE", true, false) if query_of(uri).is_empty() => "DeleteBucket",
        ("POST", true, false) if has("delete") => "DeleteObjects",
        _ => return None,
    };
    Some(operation.to_owned())
}

/// `Action=Publish&...` in an `awsQuery` form body held in memory.
fn query_action(request: &HttpRequest) -> Option<String> {
    let body = std::str::from_utf8(request.body().bytes()?).ok()?;
    body.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn request(
        method: &str,
        uri: &str,
        headers: &[(&'static str, &'static str)],
        body: &'static str,
    ) -> HttpRequest {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(SdkBody::from(body)).expect("test request");
        HttpRequest::try_from(request).expect("test request converts")
    }

    const AUTH_LAMBDA: &str = "AWS4-HMAC-SHA256 Credential=AKID/20261130/eu-west-1/lambda/aws4_request, SignedHeaders=host, Signature=0";

    #[test]
    fn json_target_names_service_and_operation() {
        let call = WireCall::read(&request(
            "POST",
            "http://127.0.0.1:5000/",
            &[
                ("x-amz-target", "DynamoDB_20120810.GetItem"),
                ("amz-sdk-invocation-id", "abc"),
                ("amz-sdk-request", "attempt=2; max=3"),
            ],
            "{}",
        ));
        assert_eq!(call.service, Some(Service::DynamoDb));
        assert_eq!(call.operation, "GetItem");
        assert_eq!(call.request_key, hash_str("abc"));
        assert_eq!(call.attempt, 1);
    }

    #[test]
    fn attempt_is_read_wherever_the_sdk_puts_it() {
        // The SDK adds `ttl=` first when it knows the read timeout and the clock skew.
        for (header, attempt) in [
            ("attempt=1; max=3", 0),
            ("attempt=3; max=3", 2),
            ("ttl=20261201T101500Z; attempt=2; max=3", 1),
            ("max=5;attempt=4", 3),
            ("attempt=x; max=3", 0),
        ] {
            assert_eq!(sdk_attempt(header).unwrap_or(0), attempt, "{header}");
        }
    }

    #[test]
    fn lambda_routes_by_method_and_path() {
        let invoke = WireCall::read(&request(
            "POST",
            "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/checkout/invocations?Qualifier=live",
            &[("authorization", AUTH_LAMBDA)],
            "{}",
        ));
        assert_eq!(invoke.service, Some(Service::Lambda));
        assert_eq!(invoke.operation, "Invoke");
        assert_eq!(invoke.region.as_deref(), Some("eu-west-1"));
        for (method, path, operation) in [
            ("GET", "/2015-03-31/functions/checkout", "GetFunction"),
            ("GET", "/2015-03-31/functions/", "ListFunctions"),
            ("PUT", "/2015-03-31/functions/f/code", "UpdateFunctionCode"),
            ("PATCH", "/2015-03-31/functions/f/code", ""),
        ] {
            let call = WireCall::read(&request(
                method,
                &format!("http://127.0.0.1:1{path}"),
                &[("authorization", AUTH_LAMBDA)],
                "",
            ));
            assert_eq!(call.operation, operation, "{method} {path}");
        }
    }

    #[test]
    fn s3_and_sns_operations() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/s3/aws4_request";
        for (method, uri, operation) in [
            ("GET", "http://127.0.0.1:9/bucket/a/b.txt", "GetObject"),
            (
                "GET",
                "https://bucket.s3.us-east-1.amazonaws.com/a.txt",
                "GetObject",
            ),
            (
                "GET",
                "https://bucket.s3.us-east-1.amazonaws.com/?list-type=2",
                "ListObjectsV2",
            ),
            ("GET", "http://127.0.0.1:9/", "ListBuckets"),
            (
                "PUT",
                "http://127.0.0.1:9/bucket/k?partNumber=1&uploadId=x",
                "UploadPart",
            ),
            ("HEAD", "http://127.0.0.1:9/bucket", "HeadBucket"),
        ] {
            let call = WireCall::read(&request(method, uri, &[("authorization", auth)], ""));
            assert_eq!(call.service, Some(Service::S3), "{uri}");
            assert_eq!(call.operation, operation, "{method} {uri}");
        }
        let sns = WireCall::read(&request(
            "POST",
            "http://127.0.0.1:9/",
            &[(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/sns/aws4_request",
            )],
            "Action=Publish&Version=2010-03-31&TopicArn=x",
        ));
        assert_eq!(
            (sns.service, sns.operation.as_str()),
            (Some(Service::Sns), "Publish")
        );
    }

    #[test]
    fn unknown_services_keep_their_signing_name() {
        let call = WireCall::read(&request(
            "POST",
            "http://127.0.0.1:9/",
            &[(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/kinesis/aws4_request",
            )],
            "",
        ));
        assert_eq!(
            (call.service, call.service_name.as_str()),
            (None, "kinesis")
        );
        assert_eq!((call.request_key, call.attempt), (0, 0));
    }

    #[test]
    fn attempts_count_from_zero() {
        assert_eq!(sdk_attempt("attempt=1; max=3"), Some(0));
        assert_eq!(sdk_attempt("attempt=3"), Some(2));
        assert_eq!(sdk_attempt("max=3"), None);
        assert_eq!(sdk_attempt("attempt=x"), None);
    }
}
