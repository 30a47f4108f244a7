//! `lambda-orders`: a deployable Lambda function (API Gateway HTTP API in front) that reads
//! an order from DynamoDB, with chaos at both seams:
//!
//! * the handler is wrapped in [`ChaosHandlerLayer`]: latency, errors, status answers in the
//!   front door's shape, hangs to the deadline, corrupted answers;
//! * its DynamoDB client sends through [`ChaosHttpClient`]: the exact errors DynamoDB sends
//!   (`ProvisionedThroughputExceededException`, ...), which the real SDK then parses and
//!   retries.
//!
//! Both read one plan, from SSM Parameter Store (`CHAOS_PARAMETER`) or inline
//! (`CHAOS_PLAN`), refreshed every minute off the hot path; a plan that cannot be read means
//! no faults and one warning. Guardrails and metrics come from the environment. Build,
//! environment variables and IAM permissions: `README.md` beside this file.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::types::AttributeValue;
use chaos_aws::{
    AlarmStop, ChaosHandlerLayer, ChaosHttpClient, ConfigSource, EmfLayer, Guard, LiveConfig,
    injector_from_env,
};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tracing_subscriber::layer::SubscriberExt;

type Error = lambda_runtime::Error;

/// `GET /orders/{id}`: the order's item, or 404.
async fn get_order(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let Some(id) = event
        .payload
        .pointer("/pathParameters/id")
        .and_then(Value::as_str)
    else {
        return Ok(http_answer(400, &json!({ "message": "missing order id" })));
    };
    let item = dynamodb
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .send()
        .await;
    Ok(match item {
        Ok(output) => match output.item {
            Some(item) => {
                let status = item.get("status").and_then(|v| v.as_s().ok()).cloned();
                http_answer(200, &json!({ "id": id, "status": status }))
            }
            None => http_answer(404, &json!({ "message": "no such order" })),
        },
        // The fallback under test: throttled past the SDK's retries, answer 503 and let the
        // client come back, rather than fail the invocation.
        Err(error) if is_throttle(&error) => {
            http_answer(503, &json!({ "message": "busy, retry shortly" }))
        }
        Err(error) => return Err(error.into()),
    })
}

fn is_throttle(
    error: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>,
) -> bool {
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    matches!(
        error.as_service_error(),
        Some(
            GetItemError::ProvisionedThroughputExceededException(_)
                | GetItemError::RequestLimitExceeded(_)
        )
    ) || error.as_service_error().and_then(|e| e.meta().code()) == Some("ThrottlingException")
}

fn http_answer(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
    })
}

/// The SDK's usual HTTPS client (hyper, rustls on aws-lc), as `ChaosHttpClient::https` wraps it.
fn plain_https() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let function = env("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "lambda-orders".into());
    // One EMF line per injection, on stdout, where Lambda's log agent turns it into metrics.
    let subscriber = tracing_subscriber::registry()
        .with(EmfLayer::stdout().function(function.clone()))
        .with(tracing_subscriber::fmt::layer().without_time());
    tracing::subscriber::set_global_default(subscriber)?;

    // The function's own AWS calls (the plan, the alarm) go through the plain client: a
    // fault must never hide the configuration that switches faults off.
    let aws = aws_config::defaults(BehaviorVersion::latest())
        .http_client(plain_https())
        .load()
        .await;
    let injector = injector_from_env()?;
    let source = match env("CHAOS_PARAMETER") {
        Some(name) => ConfigSource::ssm(aws_sdk_ssm::Client::new(&aws), name),
        None => ConfigSource::env("CHAOS_PLAN"),
    };
    let live = LiveConfig::new(source, injector.clone());
    // Loaded before the first invocation; later refreshes happen in the background.
    live.refresh().await;

    // Guardrails as `Guard::from_env` reads them, plus the alarm stop condition.
    let mut guard =
        Guard::builder().dry_run(env("CHAOS_DRY_RUN").is_some_and(|v| v == "true" || v == "1"));
    if let Some(list) = env("CHAOS_ALLOWED_ENVIRONMENTS") {
        guard = guard.allow_environments(list.split(',').map(str::to_owned));
    }
    if let Some(alarm) = env("CHAOS_STOP_ALARM") {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws);
        guard = guard.stop_on_alarm(AlarmStop::with_interval(
            cloudwatch,
            alarm,
            Duration::from_secs(30),
        ));
    }

    // DynamoDB through the chaos wrapper: the same injector, so one plan drives both seams.
    let dynamodb_http = ChaosHttpClient::https()
        .injector(injector)
        .site(function)
        .build()?;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&aws)
            .http_client(dynamodb_http)
            .retry_partition(chaos_aws::isolated_retry_partition("lambda-orders"))
            .build(),
    );
    let table: std::sync::Arc<str> = env("ORDERS_TABLE")
        .ok_or("ORDERS_TABLE must name the orders table")?
        .into();

    let handler = ServiceBuilder::new()
        .layer(ChaosHandlerLayer::live(live).guard(guard.build()))
        .service(service_fn(move |event| {
            // Clients are cheap handles: each invocation's future owns its own.
            let (dynamodb, table) = (dynamodb.clone(), table.clone());
            async move { get_order(&dynamodb, &table, event).await }
        }));
    lambda_runtime::run(handler).await
}
