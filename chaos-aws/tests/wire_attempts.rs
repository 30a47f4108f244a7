//! The attempts of one SDK operation are decided independently on the wire.
//!
//! Every attempt of an operation carries the same `amz-sdk-invocation-id` (the request key)
//! and its own `amz-sdk-request: attempt=N`; chaos-core decides each from
//! `(seed, rule, request key, site, attempt)`. If the wrapper read the attempt wrongly, or
//! the decision's mix let nearby attempts agree, a throttle on attempt 1 would make one on
//! attempt 2 likelier, and operations would fail far more often than `p^3`.
//!
//! The real aws-sdk-dynamodb (standard mode, 3 attempts) sends every operation through the
//! wrapper to an in-process stand-in that answers every request it receives with a 500, so
//! the SDK makes all three attempts of every operation whatever the wrapper decides, and
//! its retry quota is unlimited, so no retry is ever refused. Which attempts the wrapper
//! throttled is then known for every operation: the ones that did not reach the stand-in.
//! The counts of throttled attempts, of pairs and of the triple are each checked against the
//! binomial distribution independence predicts, with an acceptance interval whose tails hold
//! less than 1e-6 each (computed exactly below): a correct wrapper would fail one of the seven
//! counts with probability below 1.4e-5, and the seeds are fixed.
//!
//! No network: the stand-in is in process, under tokio's paused clock.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_runtime::invocation_id::DefaultInvocationIdGenerator;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use chaos_aws::ChaosHttpClient;
use chaos_core::{CompiledPlan, Injector};
use support::Attempts;

/// The stand-in for the real client: records the (invocation id, attempt header) of each
/// request that reaches it and answers DynamoDB's retryable `InternalServerError`.
#[derive(Clone, Debug, Default)]
struct FailingBackend(Arc<Mutex<Vec<(String, String)>>>);

impl HttpConnector for FailingBackend {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let header = |name| request.headers().get(name).unwrap_or_default().to_owned();
        self.0
            .lock()
            .unwrap()
            .push((header("amz-sdk-invocation-id"), header("amz-sdk-request")));
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"stand-in"}"#;
        let mut response = HttpResponse::new(500.try_into().unwrap(), SdkBody::from(body));
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for FailingBackend {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.clone().into_shared()
    }
}

/// An interval `[lo, hi]` holding `Binomial(n, q)` but for less than `tail` on each side:
/// the pmf summed from both ends in log space (it underflows f64 for large `n`).
fn binomial_interval(n: u64, q: f64, tail: f64) -> (u64, u64) {
    let log_odds = (q / (1.0 - q)).ln();
    let mut log_pmf = Vec::with_capacity(n as usize + 1);
    let mut current = n as f64 * (1.0 - q).ln();
    for k in 0..=n {
        log_pmf.push(current);
        current += ((n - k) as f64 / (k + 1) as f64).ln() + log_odds;
    }
    let pmf = |k: u64| log_pmf[k as usize].exp();
    let (mut lo, mut below) = (0, 0.0);
    while below + pmf(lo) < tail {
        below += pmf(lo);
        lo += 1;
    }
    let (mut hi, mut above) = (n, 0.0);
    while above + pmf(hi) < tail {
        above += pmf(hi);
        hi -= 1;
    }
    (lo, hi)
}

/// Runs `operations` GetItems with attempts throttled with probability `p` by a plan of
/// seed `seed`; returns, per operation in order, which of its three attempts were throttled.
async fn throttled_attempts(p: f64, seed: u64, operations: usize) -> Vec<[bool; 3]> {
    let plan = format!(
        "seed = {seed}\n[[rules]]\nname = \"throttle\"\nfault = {{ error = \"throttle\" }}\n\
         match = {{ service = \"dynamodb\", operation = \"GetItem\" }}\nprobability = {p}\n"
    );
    let mut injector = Injector::builder();
    injector
        .plan(CompiledPlan::from_toml_str(&plan).unwrap())
        .ignore_env();
    let backend = FailingBackend::default();
    let chaos = ChaosHttpClient::builder(backend.clone())
        .injector(injector.build().unwrap())
        .site("tests")
        .build()
        .unwrap();
    let sent = Attempts::default();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
        .credentials_provider(Credentials::from_keys("AKIDCHAOSTEST", "secret", None))
        .endpoint_url("http://127.0.0.1:9")
        .http_client(chaos)
        // No retry is refused: every operation makes its three attempts.
        .retry_partition(
            RetryPartition::custom(format!("independence-{seed}"))
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .invocation_id_generator(DefaultInvocationIdGenerator::with_seed(seed))
        .interceptor(sent.clone())
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(3))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    for i in 0..operations {
        let result = client
            .get_item()
            .table_name("orders")
            .key("id", AttributeValue::S(i.to_string()))
            .send()
            .await;
        assert!(result.is_err(), "every operation ends in an error here");
    }
    let reached: std::collections::BTreeSet<(String, String)> =
        backend.0.lock().unwrap().iter().cloned().collect();
    let mut by_operation: BTreeMap<String, (usize, Vec<bool>)> = BTreeMap::new();
    for (order, attempt) in sent.all().into_iter().enumerate() {
        let throttled = !reached.contains(&(
            attempt.invocation_id.clone(),
            attempt.request_header.clone(),
        ));
        let number = attempt
            .request_header
            .split(';')
            .find_map(|pair| pair.trim().strip_prefix("attempt="))
            .unwrap()
            .to_owned();
        let entry = by_operation
            .entry(attempt.invocation_id)
            .or_insert((order, Vec::new()));
        assert_eq!(number, (entry.1.len() + 1).to_string(), "attempts in order");
        entry.1.push(throttled);
    }
    let mut operations_in_order: Vec<(usize, Vec<bool>)> = by_operation.into_values().collect();
    operations_in_order.sort_unstable_by_key(|(order, _)| *order);
    operations_in_order
        .into_iter()
        .map(|(_, throttled)| {
            <[bool; 3]>::try_from(throttled).expect("three attempts per operation")
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn attempts_of_one_operation_are_throttled_independently() {
    // p = 1/2 gives the most power per attempt sent: 3,000 operations put the pairs at
    // 750 +- 16% and the triple at 375 +- 24% (the 1e-6 tails). A wrapper that gave every
    // attempt one key would throttle each pair together 1,500 times.
    const OPERATIONS: usize = 3_000;
    const TAIL: f64 = 1e-6;
    let (p, seed) = (0.5, 11);
    let outcomes = throttled_attempts(p, seed, OPERATIONS).await;
    assert_eq!(outcomes.len(), OPERATIONS);
    let count = |attempts: &[usize]| {
        outcomes
            .iter()
            .filter(|fired| attempts.iter().all(|&a| fired[a]))
            .count() as u64
    };
    let checks: [(&[usize], i32); 7] = [
        (&[0], 1),
        (&[1], 1),
        (&[2], 1),
        (&[0, 1], 2),
        (&[0, 2], 2),
        (&[1, 2], 2),
        (&[0, 1, 2], 3),
    ];
    for (attempts, power) in checks {
        let observed = count(attempts);
        let (lo, hi) = binomial_interval(OPERATIONS as u64, p.powi(power), TAIL);
        assert!(
            (lo..=hi).contains(&observed),
            "p = {p}, seed {seed}: attempts {attempts:?} throttled together in {observed} of \
             {OPERATIONS} operations; independent attempts put that in {lo}..={hi} \
             (P(outside) < {:e})",
            2.0 * TAIL
        );
    }
}

#[test]
fn the_binomial_interval_is_exact_on_small_cases() {
    // Binomial(10, 0.5): P(X = 0) = P(X = 10) = 1/1024, P(X <= 1) = 11/1024.
    assert_eq!(binomial_interval(10, 0.5, 1.0 / 1024.0 + 1e-12), (1, 9));
    assert_eq!(binomial_interval(10, 0.5, 1.0 / 1024.0 - 1e-12), (0, 10));
    assert_eq!(binomial_interval(10, 0.5, 11.0 / 1024.0 + 1e-12), (2, 8));
    // A wide one: Binomial(4000, 0.027) has mean 108 and sd 10.3; 1e-6 tails sit near
    // 4.8 sd out.
    let (lo, hi) = binomial_interval(4_000, 0.027, 1e-6);
    assert!(
        (50..=65).contains(&lo) && (155..=170).contains(&hi),
        "{lo}..={hi}"
    );
}
