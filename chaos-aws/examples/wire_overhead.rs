//! What the wire wrapper adds to an SDK call no rule fires on: DynamoDB `GetItem` through the
//! real SDK client, bare (the real HTTP client) or through `ChaosHttpClient` (a plan with
//! one rule that selects another operation, so every request is decided and passes).
//!
//! Usage (build with `--release`):
//!
//! * `wire_overhead count CASE N`: N calls answered in process by a stand-in connector (no
//!   network), CASE `bare`, `chaos` or `chaos_guard` (with an allow-list guard too). For
//!   instruction counts under callgrind: run N and 2N, subtract, divide by N.
//! * `wire_overhead stub ROUNDS N`: the same calls on the wall clock, bare and wrapped
//!   interleaved in ROUNDS rounds of N calls each; prints the median ns per call of each.
//! * `wire_overhead moto ROUNDS N`: as `stub`, but against moto at
//!   `CHAOS_AWS_TEST_ENDPOINT` (plain HTTP on loopback): the overhead beside a real call.
//!
//! This lives in chaos-aws (not the root package) so the SDK crates it needs stay
//! chaos-aws dev-dependencies, built once in the test run's feature set.

use std::hint::black_box;
use std::time::Instant;

use aws_credential_types::Credentials;
use aws_runtime::invocation_id::DefaultInvocationIdGenerator;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use chaos_aws::{ChaosHttpClient, Guard};
use chaos_core::{CompiledPlan, Injector};

/// One rule on the same service, another operation: decided on every request, never fires.
const PLAN: &str = r#"
    seed = 7
    [[rules]]
    name = "throttled-writes"
    fault = { error = "throttle" }
    match = { service = "dynamodb", operation = "PutItem" }
    probability = 1.0
"#;

const TABLE: &str = "chaos-aws-wire-overhead";

/// Answers every request with `{}` (an empty `GetItem` result) without touching the network.
#[derive(Clone, Debug)]
struct InProcess;

impl HttpConnector for InProcess {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let mut response = HttpResponse::new(
            200.try_into()
                .unwrap_or_else(|_| unreachable!("200 is a status")),
            SdkBody::from(&b"{}"[..]),
        );
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for InProcess {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.clone().into_shared()
    }
}

fn wrap(
    real: SharedHttpClient,
    guarded: bool,
) -> Result<ChaosHttpClient, Box<dyn std::error::Error>> {
    let mut injector = Injector::builder();
    injector
        .plan(CompiledPlan::from_toml_str(PLAN)?)
        .ignore_env();
    let mut builder = ChaosHttpClient::builder(real).injector(injector.build()?);
    if guarded {
        builder = builder.guard(
            Guard::builder()
                .allow_environments(["bench"])
                .environment(Some("bench"))
                .build(),
        );
    }
    Ok(builder.build()?)
}

fn client(http: SharedHttpClient, endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::from_keys("AKIDCHAOSTEST", "secret", None))
        .endpoint_url(endpoint)
        .invocation_id_generator(DefaultInvocationIdGenerator::with_seed(7))
        .http_client(http)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn get_item(client: &aws_sdk_dynamodb::Client) -> bool {
    client
        .get_item()
        .table_name(TABLE)
        .key("id", AttributeValue::S("1".into()))
        .send()
        .await
        .is_ok()
}

/// Median of per-round mean ns per call.
fn median(mut rounds: Vec<f64>) -> f64 {
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

async fn interleaved(
    bare: &aws_sdk_dynamodb::Client,
    chaos: &aws_sdk_dynamodb::Client,
    rounds: usize,
    per_round: usize,
) -> (f64, f64) {
    let (mut bare_ns, mut chaos_ns) = (Vec::new(), Vec::new());
    // Warm both paths (connections, caches) before timing.
    for _ in 0..per_round.min(50) {
        black_box(get_item(bare).await);
        black_box(get_item(chaos).await);
    }
    for round in 0..rounds {
        // Alternate which goes first, so drift in the machine's load hits both alike.
        let order: [(&aws_sdk_dynamodb::Client, bool); 2] = if round % 2 == 0 {
            [(bare, false), (chaos, true)]
        } else {
            [(chaos, true), (bare, false)]
        };
        for (client, is_chaos) in order {
            let started = Instant::now();
            for _ in 0..per_round {
                black_box(get_item(client).await);
            }
            let ns = started.elapsed().as_nanos() as f64 / per_round as f64;
            if is_chaos {
                chaos_ns.push(ns);
            } else {
                bare_ns.push(ns);
            }
        }
    }
    (median(bare_ns), median(chaos_ns))
}

async fn create_table(client: &aws_sdk_dynamodb::Client) -> Result<(), Box<dyn std::error::Error>> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let _ = client.delete_table().table_name(TABLE).send().await;
    client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    client
        .put_item()
        .table_name(TABLE)
        .item("id", AttributeValue::S("1".into()))
        .send()
        .await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "stub".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match mode.as_str() {
            "count" => {
                let case = args.next().unwrap_or_else(|| "chaos".to_owned());
                let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
                let real = InProcess.into_shared();
                let http = match case.as_str() {
                    "bare" => real,
                    "chaos" => wrap(real, false)?.into_shared(),
                    "chaos_guard" => wrap(real, true)?.into_shared(),
                    other => return Err(format!("unknown case {other:?}").into()),
                };
                let client = client(http, "http://127.0.0.1:9");
                let mut ok = 0usize;
                for _ in 0..count {
                    ok += usize::from(get_item(&client).await);
                }
                println!("{case}: {ok} of {count} calls answered");
            }
            "stub" | "moto" => {
                let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(21);
                let per_round: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
                let (real, endpoint) = if mode == "moto" {
                    let endpoint = std::env::var("CHAOS_AWS_TEST_ENDPOINT").map_err(|_| {
                        "set CHAOS_AWS_TEST_ENDPOINT to a moto server on loopback"
                    })?;
                    (aws_smithy_http_client::Builder::new().build_http(), endpoint)
                } else {
                    (InProcess.into_shared(), "http://127.0.0.1:9".to_owned())
                };
                let bare = client(real.clone(), &endpoint);
                let chaos = client(wrap(real, false)?.into_shared(), &endpoint);
                if mode == "moto" {
                    create_table(&bare).await?;
                }
                let (bare_ns, chaos_ns) = interleaved(&bare, &chaos, rounds, per_round).await;
                println!(
                    "{mode}: {rounds} rounds x {per_round} calls; median ns/call: bare {bare_ns:.0}, \
                     wrapped {chaos_ns:.0}; added {:.0} ns ({:.4}x)",
                    chaos_ns - bare_ns,
                    chaos_ns / bare_ns
                );
            }
            other => return Err(format!("unknown mode {other:?}: count, stub or moto").into()),
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
