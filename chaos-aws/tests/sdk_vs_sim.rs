//! The real aws-sdk-dynamodb in standard mode, through the wire wrapper, against the
//! simulator's `sdk_standard` model on the same throttle pattern: attempts per operation and
//! failure rates must agree within bounds from their binomial variance. Answers the wrapper
//! does not throttle come from moto on loopback (`scripts/test.sh`).

#![allow(clippy::unwrap_used)]

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use chaos_sim::{Simulation, scenario};
use support::{Attempts, chaos_client, dynamodb};

/// Operations per pattern.
const OPERATIONS: usize = 400;

/// (attempts per operation, failure rate) of `OPERATIONS` sequential GetItems by one client
/// whose attempts are throttled with probability `p`.
async fn sdk(triggers: &[&str], seed: u64) -> (f64, f64) {
    // Unthrottled attempts need moto: say so clearly when it is missing.
    support::endpoint();
    let mut plan = format!("seed = {seed}\n");
    for (i, trigger) in triggers.iter().enumerate() {
        plan += &format!(
            "[[rules]]\nname = \"throttle-{i}\"\nfault = {{ error = \"throttle\" }}\n\
             match = {{ service = \"dynamodb\", operation = \"GetItem\" }}\n{trigger}\n"
        );
    }
    let chaos = chaos_client(&plan);
    let attempts = Attempts::default();
    let client = dynamodb(&chaos, &attempts, seed);
    let table = format!("quota-{seed}-{}", std::process::id());
    support::create_table(&client, &table).await;
    attempts.clear();
    let mut failed = 0;
    for i in 0..OPERATIONS {
        let answer = client
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S(i.to_string()))
            .send()
            .await;
        if answer.is_err() {
            failed += 1;
        }
    }
    let n = OPERATIONS as f64;
    (attempts.count() as f64 / n, f64::from(failed) / n)
}

/// The same for the simulator: one client (`quota_scope = "function"`) calling a table
/// whose attempts are throttled with probability `p`.
fn sim(triggers: &[&str], seed: u64) -> (f64, f64) {
    let mut text = format!(
        r#"[simulation]
seed = {seed}
requests = {OPERATIONS}
[load]
target = "api"
rate_per_s = 0.2
[[function]]
name = "api"
handler = [{{ call = "table", operation = "GetItem", retry = "sdk_standard", quota_scope = "function" }}]
[[dependency]]
name = "table"
latency = "5ms"
"#
    );
    for trigger in triggers {
        text += &format!(
            "[[fault]]\nfault = {{ error = \"throttle\" }}\nmatch = {{ service = \"table\" }}\n\
             {trigger}\n"
        );
    }
    let s = scenario::parse(&text, "sdk_vs_sim.toml").unwrap_or_else(|e| panic!("{e}"));
    let m = Simulation::new(s).unwrap().run_experiment();
    let n = m.requests as f64;
    assert_eq!(m.requests, OPERATIONS as u64);
    ((m.requests + m.retries) as f64 / n, m.failed() as f64 / n)
}

/// Asserts that two sample means of `OPERATIONS` values each, with per-value variance at
/// most `variance`, differ by less than 4 standard deviations of their difference.
fn agree(what: &str, sdk: f64, sim: f64, variance: f64) {
    let sd = (2.0 * variance / OPERATIONS as f64).sqrt();
    assert!(
        (sdk - sim).abs() <= 4.0 * sd + 1e-9,
        "{what}: SDK {sdk:.4} vs simulator {sim:.4} (4 sd = {:.4})",
        4.0 * sd
    );
}

async fn compare(triggers: &[&str], seed: u64) -> ((f64, f64), (f64, f64)) {
    let real = sdk(triggers, seed).await;
    let model = sim(triggers, seed);
    eprintln!("{triggers:?}: SDK (attempts, failed) {real:?}, simulator {model:?}");
    // A failure is a Bernoulli draw: variance f(1-f), at most 1/4. Attempts per operation
    // lie in 1..=3: variance at most 1.
    let f = (real.1 + model.1) / 2.0;
    agree(
        "failure rate",
        real.1,
        model.1,
        (f * (1.0 - f)).max(1.0 / OPERATIONS as f64),
    );
    agree("attempts per operation", real.0, model.0, 1.0);
    (real, model)
}

#[tokio::test(start_paused = true)]
async fn light_throttling_agrees() {
    // p = 0.1: the quota never runs dry. Attempts per operation: 1 + p + p^2 = 1.11 with
    // variance 0.9 + 4 * 0.09 + 9 * 0.01 - 1.11^2 = 0.1179: within 4 sd of the mean of 400.
    // Failures: Binomial(400, p^3 = 0.001), P(more than 6) < 1e-6.
    let ((attempts, failed), _) = compare(&["probability = 0.1"], 11).await;
    let sd = (0.1179 / OPERATIONS as f64).sqrt();
    assert!((attempts - 1.11).abs() <= 4.0 * sd, "{attempts}");
    assert!(failed <= 6.0 / OPERATIONS as f64, "{failed}");
}

#[tokio::test(start_paused = true)]
async fn heavy_throttling_agrees() {
    // p = 0.7: the held permit comes back on every success, so the quota holds longer than
    // a +1 refund would let it.
    compare(&["probability = 0.7"], 12).await;
}

#[tokio::test(start_paused = true)]
async fn full_throttling_drains_alike() {
    // p = 1: 50 operations get both retries (500 tokens, 10 net each), the rest 1 attempt.
    let ((attempts, failed), (sim_attempts, sim_failed)) =
        compare(&["probability = 1.0"], 13).await;
    let expected = (50.0 * 3.0 + (OPERATIONS as f64 - 50.0)) / OPERATIONS as f64;
    assert!((attempts - expected).abs() < 1e-9, "{attempts}");
    assert!((sim_attempts - expected).abs() < 1e-9, "{sim_attempts}");
    assert_eq!((failed, sim_failed), (1.0, 1.0));
}

#[tokio::test(start_paused = true)]
async fn fully_throttled_then_recovering_agrees() {
    // The first 300 attempts are throttled: 50 operations drain the quota (3 attempts each),
    // 150 more fail at once; then light throttling (p = 0.3) on a quota refilling from 5
    // (the held permit) by 1 per first-try success.
    let ((attempts, failed), _) =
        compare(&["first = 300", "probability = 0.3\nafter = 300"], 14).await;
    // The outage fails 200 operations in 300 attempts; the other 200 make at least one
    // attempt each, and some are throttled and retried.
    let n = OPERATIONS as f64;
    assert!(failed >= 200.0 / n, "{failed}");
    assert!(attempts > 500.0 / n, "{attempts}");
}
