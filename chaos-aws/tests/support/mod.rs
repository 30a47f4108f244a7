//! Shared by the integration tests: the emulator's endpoint, SDK clients wired through the
//! chaos wrapper, and an interceptor that records every attempt on the wire.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_runtime::invocation_id::DefaultInvocationIdGenerator;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chaos_aws::ChaosHttpClient;
use chaos_core::{CompiledPlan, Injector};

/// The moto server `scripts/test.sh` started. Fails the test, saying why, when there is none:
/// these tests never pass without the emulator.
pub fn endpoint() -> String {
    match std::env::var("CHAOS_AWS_TEST_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => match std::env::var("CHAOS_AWS_TEST_SETUP_ERROR") {
            Ok(reason) if !reason.is_empty() => {
                panic!("the AWS emulator (moto) could not be set up: {reason}")
            }
            _ => panic!(
                "CHAOS_AWS_TEST_ENDPOINT is not set: run `bash scripts/test.sh`, which installs \
                 moto[server] from PyPI into target/moto-venv and starts it on loopback \
                 (or start `moto_server -H 127.0.0.1 -p PORT` and export \
                 CHAOS_AWS_TEST_ENDPOINT=http://127.0.0.1:PORT)"
            ),
        },
    }
}

/// The plain HTTP client that reaches moto (no TLS: loopback only).
pub fn real_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

/// A wrapper with a plan (checked), the injector built to ignore `CHAOS_DISABLED`.
pub fn chaos_client(plan_toml: &str) -> ChaosHttpClient {
    let plan = CompiledPlan::from_toml_str(plan_toml).unwrap();
    chaos_aws::check_plan(plan.plan()).unwrap();
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    ChaosHttpClient::builder(real_client())
        .injector(builder.build().unwrap())
        .site("tests")
        .build()
        .unwrap()
}

/// One attempt as it left the SDK: its invocation id and `amz-sdk-request` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub invocation_id: String,
    pub request_header: String,
}

/// Records every attempt the SDK transmits (through the wrapper, faulted or not).
#[derive(Clone, Debug, Default)]
pub struct Attempts(Arc<Mutex<Vec<Attempt>>>);

impl Attempts {
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub fn all(&self) -> Vec<Attempt> {
        self.0.lock().unwrap().clone()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "attempt-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request().headers();
        let header = |name| headers.get(name).unwrap_or_default().to_owned();
        self.0.lock().unwrap().push(Attempt {
            invocation_id: header("amz-sdk-invocation-id"),
            request_header: header("amz-sdk-request"),
        });
        Ok(())
    }
}

/// Standard mode (3 attempts) with a 10 ms initial backoff, so tests on the real clock are
/// quick; the attempt count is what the tests assert.
fn fast_retries() -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::standard()
        .with_initial_backoff(std::time::Duration::from_millis(10))
}

fn credentials() -> Credentials {
    Credentials::from_keys("AKIDCHAOSTEST", "secret", None)
}

/// A DynamoDB client through `chaos`, with its own retry partition, recording attempts.
/// Invocation ids come from a seeded generator, so a run's ids (and decisions) repeat.
pub fn dynamodb(
    chaos: &ChaosHttpClient,
    attempts: &Attempts,
    ids_seed: u64,
) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(credentials())
        .endpoint_url(endpoint_or_unused())
        .http_client(chaos.clone())
        .retry_partition(chaos_aws::isolated_retry_partition(format!(
            "test-{ids_seed}"
        )))
        .invocation_id_generator(DefaultInvocationIdGenerator::with_seed(ids_seed))
        .interceptor(attempts.clone())
        .retry_config(fast_retries())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A Lambda client through `chaos`, with its own retry partition, recording attempts.
pub fn lambda(chaos: &ChaosHttpClient, attempts: &Attempts) -> aws_sdk_lambda::Client {
    use aws_sdk_lambda::config::{BehaviorVersion, Region};
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(credentials())
        .endpoint_url(endpoint_or_unused())
        .http_client(chaos.clone())
        .retry_partition(chaos_aws::isolated_retry_partition("test-lambda"))
        .interceptor(attempts.clone())
        .retry_config(fast_retries())
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// Tests whose every request is answered by the wrapper never reach the endpoint; they
/// still need one to build a client. They run under a paused clock, where real network
/// I/O would let tokio's auto-advance fire the SDK's timeouts.
fn endpoint_or_unused() -> String {
    std::env::var("CHAOS_AWS_TEST_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9".to_owned())
}

/// Creates a pay-per-request DynamoDB table keyed by the string attribute `id`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}
