//! Decisions on the wire replay: the same plan seed and the same SDK invocation ids give the
//! same per-attempt decisions, each attempt rolls on its own, and every decision is the pure
//! function chaos-core documents.

#![allow(clippy::unwrap_used)]

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use chaos_core::advanced::hash_str;
use chaos_core::{Call, Injector, Plan};
use support::{Attempts, chaos_client, dynamodb};

fn plan(seed: u64) -> String {
    format!(
        r#"
        seed = {seed}
        [[rules]]
        name = "coin"
        fault = {{ error = "throttle" }}
        match = {{ service = "dynamodb", operation = "GetItem" }}
        probability = 0.5
        "#
    )
}

/// Runs 40 GetItem operations on a table moto does not have; returns each attempt as
/// (invocation id, attempt header) and each operation's outcome: `throttled` (injected on its
/// last attempt) or `passed-through` (moto's ResourceNotFoundException, never retried).
async fn run(seed: u64) -> (Vec<(String, String)>, Vec<String>) {
    let chaos = chaos_client(&plan(seed));
    let attempts = Attempts::default();
    let client = dynamodb(&chaos, &attempts, 99);
    support::endpoint(); // fails, saying why, without the emulator
    let mut outcomes = Vec::new();
    for index in 0..40 {
        let result = client
            .get_item()
            .table_name("orders")
            .key("id", AttributeValue::S(index.to_string()))
            .send()
            .await;
        outcomes.push(match result {
            Ok(_) => "ok".to_owned(),
            Err(error) => match error.as_service_error() {
                Some(service) if service.is_provisioned_throughput_exceeded_exception() => {
                    "throttled".to_owned()
                }
                Some(service) if service.is_resource_not_found_exception() => {
                    "passed-through".to_owned()
                }
                _ => format!("unexpected: {error:?}"),
            },
        });
    }
    let seen = attempts
        .all()
        .into_iter()
        .map(|a| (a.invocation_id, a.request_header))
        .collect();
    (seen, outcomes)
}

/// On the real clock: requests that pass go to moto, and under a paused clock tokio would
/// advance time while they wait on the network (firing the SDK's timeouts). Backoff between
/// attempts is shortened (support::dynamodb) so this stays quick.
#[tokio::test]
async fn same_seed_same_decisions_per_attempt() {
    let (first_attempts, first) = run(11).await;
    let (second_attempts, second) = run(11).await;
    assert_eq!(first_attempts, second_attempts);
    assert_eq!(first, second);

    // Each attempt on the wire is chaos-core's pure decision of (seed, rule, invocation id,
    // site, attempt): a fresh injector agrees with what the wire saw.
    let injector = Injector::builder()
        .plan(Plan::from_toml_str(&plan(11)).unwrap())
        .ignore_env()
        .build()
        .unwrap();
    let mut throttled_attempts = 0;
    let mut by_operation: Vec<Vec<bool>> = Vec::new();
    for (invocation_id, header) in &first_attempts {
        let number: u32 = header
            .split(';')
            .next()
            .and_then(|pair| pair.strip_prefix("attempt="))
            .unwrap()
            .parse()
            .unwrap();
        let call = Call::new(hash_str(invocation_id), "tests")
            .service("dynamodb")
            .operation("GetItem")
            .attempt(number - 1);
        let fired = !injector.decide(&call).is_pass();
        throttled_attempts += usize::from(fired);
        if number == 1 {
            by_operation.push(Vec::new());
        }
        by_operation.last_mut().unwrap().push(fired);
    }
    // An operation ends as a throttle exactly when its last attempt was throttled.
    let predicted: Vec<&str> = by_operation
        .iter()
        .map(|fired| {
            if *fired.last().unwrap() {
                "throttled"
            } else {
                "passed-through"
            }
        })
        .collect();
    assert_eq!(predicted, first);
    // Retries roll independently: some operations were throttled, then passed on a retry.
    assert!(
        by_operation
            .iter()
            .any(|fired| fired.len() > 1 && fired[0] && !fired[fired.len() - 1]),
        "{by_operation:?}"
    );
    // Probability 0.5: over the attempts, neither all nor none were throttled.
    assert!(throttled_attempts > 0 && throttled_attempts < first_attempts.len());

    let (_, other_seed) = run(12).await;
    assert_ne!(first, other_seed, "another plan seed gives other decisions");
}
