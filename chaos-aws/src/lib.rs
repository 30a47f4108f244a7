//! Live chaos experiments on AWS: the same chaos-core plans, injected into real AWS SDK calls
//! with the exact responses the services send.
//!
//! # Five-minute guide
//!
//! **1. Write a plan** (TOML or JSON, chaos-core's format). Rules select calls by `service`
//! (the SigV4 signing name: `dynamodb`, `lambda`, `sqs`, `sns`, `s3`, `states`, `ssm`) and
//! `operation` (as the SDK names it: `GetItem`, `Invoke`):
//!
//! ```toml
//! seed = 2026
//!
//! [[rules]]
//! name = "throttled-reads"
//! fault = { error = "throttle" }          # DynamoDB: ProvisionedThroughputExceededException
//! match = { service = "dynamodb", operation = "GetItem" }
//! probability = 0.2
//!
//! [[rules]]
//! name = "slow-invokes"
//! fault = { latency = { log_normal = { p50 = "80ms", p99 = "900ms" } } }
//! match = { service = "lambda", operation = "Invoke" }
//! probability = 0.5
//! ```
//!
//! **2. Wrap the SDK's HTTP client** with [`ChaosHttpClient`] and hand it to the SDK. With
//! `aws_config`, `aws_config::defaults(..).http_client(chaos)` covers every service; here one
//! service's config takes it:
//!
//! ```no_run
//! use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
//! use chaos_aws::ChaosHttpClient;
//! use chaos_core::CompiledPlan;
//!
//! # async fn example(real_client: aws_smithy_runtime_api::client::http::SharedHttpClient) -> Result<(), Box<dyn std::error::Error>> {
//! let plan = CompiledPlan::from_toml_str(r#"
//!     seed = 2026
//!     [[rules]]
//!     name = "throttled-reads"
//!     fault = { error = "throttle" }
//!     match = { service = "dynamodb", operation = "GetItem" }
//!     probability = 0.2
//! "#)?;
//! // `real_client` is the client that sends the requests: with the `https` feature,
//! // `ChaosHttpClient::https()` builds the SDK's usual one.
//! let chaos = ChaosHttpClient::builder(real_client)
//!     .plan(plan) // checked: unknown services, operations and error codes are errors
//!     .site("checkout/orders")
//!     .build()?;
//! let config = aws_sdk_dynamodb::Config::builder()
//!     .behavior_version(BehaviorVersion::latest())
//!     .region(Region::new("eu-west-1"))
//!     .http_client(chaos.clone())
//!     // Injected throttles drain the retry quota: keep them to this client.
//!     .retry_partition(chaos_aws::isolated_retry_partition("chaos-orders"))
//!     .build();
//! let dynamodb = aws_sdk_dynamodb::Client::from_conf(config);
//! let result = dynamodb.get_item().table_name("orders").send().await;
//! // One GetItem in five is throttled on the wire; the SDK retries it (up to 3 attempts)
//! // and, when every attempt is throttled, returns the typed error:
//! if let Err(error) = result {
//!     if let Some(service_error) = error.as_service_error() {
//!         assert!(service_error.is_provisioned_throughput_exceeded_exception());
//!     }
//! }
//! // The kill switch, live reloads and counters are the injector's.
//! chaos.injector().disable();
//! # Ok(()) }
//! ```
//!
//! **3. Run it.** The SDK's own deserializer, typed errors and retry strategy handle what the
//! wrapper injects, exactly as they handle the real thing.
//!
//! **4. Wrap the Lambda handler** (feature `lambda`) with [`ChaosHandlerLayer`]: the same
//! plan's rules, selected by `site` (the function's name) and `match = { event = [..] }`
//! conditions on the event, add latency, fail the invocation, answer a `status` in the shape
//! of the event's front door (API Gateway REST or HTTP API, ALB), hang until the deadline, or
//! run the handler and corrupt its answer (`fault = { corrupt = "truncate" }`, also `flip`,
//! `empty`, `json_invalid`: see `chaos_core::corrupt`). The request key is the Lambda request
//! id.
//!
//! ```no_run
//! # #[cfg(feature = "lambda")]
//! # async fn example(live: chaos_aws::LiveConfig) -> Result<(), lambda_runtime::Error> {
//! use chaos_aws::{ChaosHandlerLayer, Guard};
//! use lambda_runtime::{LambdaEvent, service_fn};
//! use serde_json::{Value, json};
//!
//! async fn handler(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
//!     Ok(json!({ "statusCode": 200, "body": event.payload.to_string() }))
//! }
//! let service = tower::ServiceBuilder::new()
//!     .layer(ChaosHandlerLayer::live(live).guard(Guard::from_env()))
//!     .service(service_fn(handler));
//! lambda_runtime::run(service).await
//! # }
//! ```
//!
//! A deployable function with both seams (this layer and a DynamoDB client through
//! [`ChaosHttpClient`]), its `cargo lambda build --release --arm64` line, environment
//! variables and IAM permissions is `examples/lambda-orders` in the repository.
//!
//! **5. Switch it live.** [`LiveConfig`] keeps the injector's plan up to date from a
//! [`ConfigSource`]: an environment variable holding the plan inline, a file, (feature
//! `ssm`) an SSM Parameter Store `String` or `SecureString` parameter, or (feature
//! `appconfig`) an AppConfig configuration profile served by the AppConfig Lambda extension.
//! The plan is cached for a TTL ([`DEFAULT_TTL`], a minute) and refreshed in the background:
//! a decision never waits on the network. A source that cannot be read, or a plan that does
//! not parse or names what the wrapper does not know, means *no faults* and one structured
//! warning (`tracing`, target `chaos_aws`) until it is fixed: never a failed call.
//!
//! ```no_run
//! use chaos_aws::{ChaosHttpClient, ConfigSource, LiveConfig};
//! use chaos_core::Injector;
//!
//! # async fn example(real_client: aws_smithy_runtime_api::client::http::SharedHttpClient) -> Result<(), Box<dyn std::error::Error>> {
//! let live = LiveConfig::new(ConfigSource::env("CHAOS_PLAN"), Injector::inert());
//! live.refresh().await; // at start-up; a failure here means no faults, not an error
//! let chaos = ChaosHttpClient::builder(real_client)
//!     .injector(live.injector().clone()) // the same injector: reloads reach the client
//!     .build()?;
//! // Per request or invocation, on the hot path: refetches in the background once stale.
//! live.refresh_if_stale();
//! # let _ = chaos; Ok(()) }
//! ```
//!
//! **Migrating** from failure-lambda (0.x or 1.x) or chaos_lambda? Point the source at the
//! parameter you have: [`LiveConfig`] recognises those formats by their keys and converts
//! them ([`migrate`]); modes chaos-aws cannot inject are named in a warning.
//!
//! # How requests are decided
//!
//! The wrapper reads the service and operation from the request (`x-amz-target` for the JSON
//! protocols, the method and path for Lambda and S3, the form's `Action` for SNS; the service
//! also from the SigV4 credential scope) and asks the injector with a chaos-core `Call`:
//!
//! * request key: the hash of the SDK's `amz-sdk-invocation-id` header, the same for every
//!   attempt of one SDK operation;
//! * attempt: from the SDK's `amz-sdk-request: attempt=N` header, counted from 0;
//! * site: the builder's [`site`](ChaosHttpClientBuilder::site) (`"aws"` by default).
//!
//! So every attempt of a retried operation rolls independently, and a decision replays from
//! `(seed, rule, invocation id, site, attempt)`.
//!
//! # What each fault becomes on the wire
//!
//! | fault | DynamoDB | Lambda | SQS | SNS | S3 | Step Functions (`states`) | SSM |
//! |---|---|---|---|---|---|---|---|
//! | `error = "throttle"` | 400 `ProvisionedThroughputExceededException` with `ThrottlingReasons` (table read or write, by operation) | 429 `TooManyRequestsException`, `Reason: ConcurrentInvocationLimitExceeded` | 400 `RequestThrottled` | 429 `Throttled` | 503 `SlowDown` | 400 `ThrottlingException` | 400 `ThrottlingException` |
//! | `error = { server_error = 500 }` (and 5xx but 503) | `InternalServerError` | `ServiceException` | `InternalError` | `InternalError` | `InternalError` | `InternalFailure` | `InternalServerError` |
//! | `error = { server_error = 503 }` | 503 `ServiceUnavailable` | 503 `ServiceException` | 503 `ServiceUnavailable` | 503 `InternalError` | 503 `ServiceUnavailable` | 503 `ServiceUnavailable` | 503 `InternalServerError` |
//! | `status = 429` | as `throttle`, status 429 | as `throttle` | as `throttle`, 429 | as `throttle` | as `throttle`, 429 | as `throttle`, 429 | as `throttle`, 429 |
//! | `status = N` (other) | N, code `ChaosInjectedStatus` (5xx: as `server_error`) | same | same | same | same | same | same |
//! | `error = "timeout"`, `hang` | a connector timeout error, after the connector's connect + read timeouts when the SDK sets them (else at once) | same | same | same | same | same | same |
//! | `error = "connection_reset"` | a connector I/O error (`ConnectionReset`) | same | same | same | same | same | same |
//! | `latency` | the SDK's own async sleep, then the real request | same | same | same | same | same | same |
//! | `corrupt = "mode"` | the real request (the service acts on it), then its answer's body corrupted: see [Corrupted answers](#corrupted-answers) | same | same | same | same | same | same |
//!
//! Where the generic kind is ambiguous, name the exact error with
//! `error = { custom = { name = "CODE", message = "..." } }`. The codes each service accepts:
//!
//! * DynamoDB: `ProvisionedThroughputExceededException`, `ThrottlingException`,
//!   `RequestLimitExceeded`, `ConditionalCheckFailedException`, `TransactionConflictException`,
//!   `TransactionCanceledException`, `ResourceNotFoundException`,
//!   `ItemCollectionSizeLimitExceededException`, `ValidationException` (400),
//!   `InternalServerError` (500), `ServiceUnavailable` (503).
//! * Lambda: `TooManyRequestsException` (429), a throttle `Reason` by its name
//!   (`ReservedFunctionConcurrentInvocationLimitExceeded`, ... : 429 with that `Reason`),
//!   `FunctionError` (Invoke only: 200 with `X-Amz-Function-Error: Unhandled` and
//!   `{"errorType","errorMessage"}`, so `send()` is `Ok` with `function_error()` set),
//!   `ServiceException` (500), `ResourceNotFoundException` (404), `ResourceConflictException`
//!   (409), `InvalidParameterValueException` (400), `EC2ThrottledException`,
//!   `ENILimitReachedException` (502).
//! * SQS: `RequestThrottled`, `KmsThrottled`, `QueueDoesNotExist` (400), `OverLimit` (403),
//!   `InternalError` (500), `ServiceUnavailable` (503).
//! * SNS: `Throttled` (429), `KMSThrottling` (400), `NotFound` (404), `InternalError` (500).
//! * S3: `SlowDown` (503), `NoSuchKey`, `NoSuchBucket` (404), `AccessDenied` (403),
//!   `InternalError` (500), `ServiceUnavailable` (503).
//! * Step Functions: `ThrottlingException`, `ExecutionLimitExceeded`, `ExecutionDoesNotExist`,
//!   `StateMachineDoesNotExist` (400), `InternalFailure` (500), `ServiceUnavailable` (503).
//! * SSM: `ThrottlingException`, `TooManyUpdates`, `ParameterNotFound` (400),
//!   `InternalServerError` (500).
//!
//! Protocol shapes: DynamoDB, SQS and Step Functions answer `awsJson1_0`, SSM `awsJson1_1`
//! (`{"__type": "namespace#Code", "message": ..}`; SQS adds its query-API code in
//! `x-amzn-query-error`, such as `AWS.SimpleQueueService.NonExistentQueue;Sender`, which is
//! where the SDK reads it); Lambda `restJson1` (code in
//! `x-amzn-errortype`, `{"Type", "message", "Reason"}`); SNS `awsQuery` (`<ErrorResponse>`);
//! S3 `restXml` (`<Error><Code>`). A request to a service the wrapper does not know (a rule
//! with no `service` selects it too) gets JSON with the code in both `__type` and
//! `x-amzn-errortype`.
//!
//! The SDK retries throttles, `RequestTimeout`, 500/502/503/504 and connector errors (three
//! attempts in standard mode); it does not retry `ConditionalCheckFailedException`,
//! `ResourceNotFoundException` or other client errors.
//!
//! # Corrupted answers
//!
//! A `corrupt` rule (`fault = { corrupt = "truncate" }`, also `flip`, `empty`,
//! `json_invalid`: see `chaos_core::corrupt`) lets the request go to the real client: the
//! service receives it and acts on it (a `PutItem` writes its item). The wrapper then reads
//! the answer's body, at most [`DEFAULT_CORRUPT_BODY_LIMIT`] bytes (16 MiB, or
//! [`ChaosHttpClientBuilder::corrupt_body_limit`]; a longer body is corrupted within its first
//! bytes and ends there), corrupts it the way the decision says (mode and seed replay from
//! `(seed, rule, invocation id, site, attempt)`), and hands it to the SDK with the service's
//! status and headers. Two kinds of header are treated apart:
//!
//! * framing: `Content-Length` becomes the corrupted body's length and `Transfer-Encoding`
//!   is dropped, so the answer is whole by its framing and only its content is wrong (a
//!   connection cut before the declared length is `error = "connection_reset"`);
//! * checksums of the content (DynamoDB's `x-amz-crc32`, S3's `x-amz-checksum-*`,
//!   `Content-MD5`, the ETag) stay as the service sent them, wrong for the new body, as they
//!   are when a body is corrupted in transit. The Rust SDK does not check DynamoDB's
//!   `x-amz-crc32` (botocore and the Java SDK do, and retry on a mismatch). It does check
//!   S3's `x-amz-checksum-*` on `GetObject` by default (response checksum validation
//!   `WhenSupported`): a corrupted object is a successful `GetObject` whose body fails to
//!   read with a checksum mismatch (`ChecksumMismatch`, not retried), in every mode.
//!
//! What the SDK then raises, pinned against moto with aws-sdk-dynamodb and aws-sdk-s3
//! (`tests/wire_corrupt.rs`):
//!
//! * a body that is no longer JSON (`json_invalid`, a non-empty `truncate`, most `flip`s):
//!   `SdkError::ServiceError` of the operation's unhandled kind (`code()` and `message()` are
//!   `None`) wrapping the JSON `DeserializeError`, with the raw 200 answer. Standard retry
//!   mode does not retry it: the attempt counts once, and the caller gets the error;
//! * an empty body (`empty`, or a `truncate` to 0 bytes): the SDK reads it as `{}`, so
//!   the call succeeds with an empty output: a `GetItem` sees no item, a `PutItem` succeeds;
//! * a `flip` that leaves valid JSON: the call succeeds with wrong content (a value changed,
//!   or a renamed key skipped: the attribute or the item is missing);
//! * an error answer is corrupted too: its code can no longer be read, so the error is
//!   unhandled instead of typed. A DynamoDB throttle (a 400) so corrupted is not retried; a
//!   500, 502, 503 or 504 still is, by its status.
//!
//! Payloads the SDK does not parse and no checksum covers (a Lambda `Invoke`'s payload, an
//! S3 object stored without a checksum) reach the caller corrupted. The answer to a `HEAD` request has no body and is left as it came.
//!
//! # Operations recognised on the wire
//!
//! Every operation of the JSON-target services (DynamoDB, SQS, Step Functions, SSM) and of SNS.
//! Lambda: the routes in the wrapper's table (Invoke, InvokeAsync, InvokeWithResponseStream,
//! function, version, alias, policy, event-source-mapping, concurrency, tag, URL, layer and
//! code-signing list/create calls). S3: `GetObject`, `PutObject`, `CopyObject`, `HeadObject`,
//! `DeleteObject`, `DeleteObjects`, the multipart calls, `ListObjects(V2)`, `ListBuckets`,
//! `HeadBucket`, `CreateBucket`, `DeleteBucket`. A rule naming another operation of those
//! services is rejected ([`check_plan`]); an unrecognised request is decided with an empty
//! operation (rules without an `operation` selector still apply).
//!
//! # The process-wide retry quota
//!
//! The SDK's standard retry strategy takes retry tokens from a quota shared by every client of
//! one retry partition in the process (by default, per service and Region). Injected throttles
//! and 5xx spend it like real ones: with every `GetItem` throttled, the first ~50 operations
//! make 3 attempts each and later ones 1. That reaches clients the plan does not fault. Give a
//! faulted client its own partition with [`isolated_retry_partition`].
//!
//! # Features
//!
//! * `https`: `ChaosHttpClient::https()`, the SDK's usual HTTPS client to wrap (hyper, rustls
//!   on aws-lc). Without it, wrap any `HttpClient` you build.
//! * `ssm`: `ConfigSource::Ssm` (pulls in `aws-sdk-ssm`).
//! * `appconfig`: `ConfigSource::AppConfig`, AWS AppConfig through the AppConfig Lambda
//!   extension's local endpoint (`localhost:2772`, or `AWS_APPCONFIG_EXTENSION_HTTP_PORT`;
//!   pulls in `hyper`'s HTTP/1 client, already in any function built with the SDK).
//! * `cloudwatch`: `AlarmStop` (pulls in `aws-sdk-cloudwatch`).
//! * `emf`: `EmfLayer` (pulls in `tracing-subscriber`'s registry).
//! * `lambda`: `ChaosHandlerLayer`, faults around `lambda_runtime` handlers (pulls in
//!   `lambda_runtime`). Its `status` responses come from [`http_response`].
//!
//! # Guardrails and metrics
//!
//! * Kill switch (`CHAOS_DISABLED`), expiry and an injection budget are the injector's:
//!   [`injector_from_env`] builds one from `CHAOS_DISABLED`, [`BUDGET_ENV_VAR`] and
//!   [`EXPIRE_AFTER_ENV_VAR`].
//! * [`Guard`] (given to [`ChaosHttpClientBuilder::guard`], and to `ChaosHandlerLayer::guard`
//!   with feature `lambda`; the same guard for both keeps them in step): an allow-list of
//!   environments (nothing is injected unless [`ENVIRONMENT_ENV_VAR`] is listed), dry run
//!   (decide, log and count, inject nothing), and with feature `cloudwatch` an `AlarmStop`:
//!   a CloudWatch alarm polled in the background; while it is in ALARM, or cannot be read,
//!   nothing is injected. [`Guard::from_env`] reads `CHAOS_ALLOWED_ENVIRONMENTS` and
//!   `CHAOS_DRY_RUN`.
//! * Feature `emf`: `EmfLayer`, a `tracing_subscriber` layer writing one CloudWatch Embedded
//!   Metric Format line per injection (dimensions `function`, `rule`, `fault`); the Lambda
//!   layer opens a `chaos_aws.invocation` span (function, request id, dry run) per invocation.
//!
//! # Never a crash
//!
//! Nothing here panics on user input. Latency uses the SDK's sleep; a client built without one
//! (no `rt-tokio`) gets its faults without the delay and one warning.
#![forbid(unsafe_code)]

mod config;
#[cfg(feature = "emf")]
mod emf;
mod error;
mod guard;
pub mod http_response;
#[cfg(feature = "lambda")]
mod lambda;
pub mod migrate;
mod services;
mod wire;

#[cfg(feature = "appconfig")]
pub use config::{
    APPCONFIG_PORT_ENV_VAR, AppConfigSource, DEFAULT_APPCONFIG_PORT, DEFAULT_APPCONFIG_TIMEOUT,
};
pub use config::{
    ConfigSource, DEFAULT_TTL, LiveConfig, MAX_PLAN_BYTES, RefreshOutcome, SourceError,
};
#[cfg(feature = "emf")]
pub use emf::{DEFAULT_NAMESPACE, EmfLayer};
pub use error::ConfigError;
pub use guard::{
    ALLOWED_ENVIRONMENTS_ENV_VAR, BUDGET_ENV_VAR, DRY_RUN_ENV_VAR, ENVIRONMENT_ENV_VAR,
    EXPIRE_AFTER_ENV_VAR, Guard, GuardBuilder, GuardMode, injector_from_env,
};
#[cfg(feature = "cloudwatch")]
pub use guard::{AlarmReader, AlarmState, AlarmStop, DEFAULT_ALARM_POLL};
#[cfg(feature = "lambda")]
pub use lambda::{ChaosHandler, ChaosHandlerLayer, HandlerError, StatusMode};
pub use services::{Service, check_plan};
pub use wire::corrupt::DEFAULT_CORRUPT_BODY_LIMIT;
pub use wire::responses::{LAMBDA_FUNCTION_ERROR, LAMBDA_THROTTLE_REASONS};
pub use wire::{ChaosHttpClient, ChaosHttpClientBuilder, isolated_retry_partition};
