//! The real aws-sdk-dynamodb in standard mode, through the wire wrapper, against the
//! simulator's `sdk_standard` model on the same throttle pattern: attempts per operation and
//! failure rates must agree within bounds from their binomial variance; and two tables behind
//! one client, where throttles on one spend the other's retries, attempt for attempt. Answers
//! the wrapper does not throttle come from moto on loopback (`scripts/test.sh`).

#![allow(clippy::unwrap_used)]

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use chaos_sim::{Simulation, scenario};
use support::{Attempts, chaos_client, dynamodb};

/// Operations per pattern.
const OPERATIONS: usize = 400;

/// (attempts per operation, failure rate) of `OPERATIONS` sequential GetItems by one client
/// whose attempts are throttled with probability `p`, and the attempts each failed
/// operation made (fewer than 3: the retry quota refused a retry).
async fn sdk(triggers: &[&str], seed: u64) -> ((f64, f64), Vec<usize>) {
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
    let mut failed = Vec::new();
    for i in 0..OPERATIONS {
        let before = attempts.count();
        let answer = client
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S(i.to_string()))
            .send()
            .await;
        if answer.is_err() {
            failed.push(attempts.count() - before);
        }
    }
    let n = OPERATIONS as f64;
    let rates = (attempts.count() as f64 / n, failed.len() as f64 / n);
    (rates, failed)
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

/// The SDK's and the simulator's (attempts per operation, failure rate), checked to agree,
/// and the attempts each of the SDK's failed operations made.
async fn compare(triggers: &[&str], seed: u64) -> ((f64, f64), (f64, f64), Vec<usize>) {
    let (real, attempts_of_failures) = sdk(triggers, seed).await;
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
    (real, model, attempts_of_failures)
}

#[tokio::test(start_paused = true)]
async fn light_throttling_agrees() {
    // p = 0.1: the quota never runs dry. Attempts per operation: 1 + p + p^2 = 1.11 with
    // variance 0.9 + 4 * 0.09 + 9 * 0.01 - 1.11^2 = 0.1179: within 4 sd of the mean of 400.
    // Failures: Binomial(400, p^3 = 0.001), P(more than 6) < 1e-6.
    //
    // Seed 11 fails 4 operations (1.155 attempts each): chance, not correlated attempts. Its
    // 400 invocation ids happen to draw 58 first-attempt throttles (40 expected; P(>= 58) is
    // 0.0027) and 4 triples (P(>= 4) = 7.6e-4). Replayed offline from chaos-core's pure
    // decision, 5,000 other seeds give triple counts that follow Binomial(400, 0.001) (4 or
    // more in 5 runs, 3.8 expected), and tests/wire_attempts.rs checks every pair and the
    // triple of attempts over 3,000 operations against independence.
    let ((attempts, failed), _, attempts_of_failures) = compare(&["probability = 0.1"], 11).await;
    // The failures are triples, not refused retries: each made its three attempts.
    assert!(
        attempts_of_failures.iter().all(|&made| made == 3),
        "{attempts_of_failures:?}"
    );
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
    let ((attempts, failed), (sim_attempts, sim_failed), attempts_of_failures) =
        compare(&["probability = 1.0"], 13).await;
    assert_eq!(attempts_of_failures, [vec![3; 50], vec![1; 350]].concat());
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
    let ((attempts, failed), _, _) =
        compare(&["first = 300", "probability = 0.3\nafter = 300"], 14).await;
    // The outage fails 200 operations in 300 attempts; the other 200 make at least one
    // attempt each, and some are throttled and retried.
    let n = OPERATIONS as f64;
    assert!(failed >= 200.0 / n, "{failed}");
    assert!(attempts > 500.0 / n, "{attempts}");
}

/// Operations per table in the two-table comparison: 120 while only `orders` throttles, 40
/// more while `carts` throttles too.
const PAIRS: usize = 160;
const CARTS_FINE: usize = 120;

/// The SDK side of the two-table case: one DynamoDB client (so one retry partition, one
/// bucket, one held permit) makes `PAIRS` pairs of operations in sequence, a GetItem on
/// `orders` (every attempt throttled) and then a PutItem on `carts` (throttled from its
/// 121st attempt on). Returns the attempts on each table.
async fn sdk_two_tables(seed: u64) -> (usize, usize) {
    support::endpoint();
    let plan = format!(
        "seed = {seed}\n\
         [[rules]]\nname = \"orders\"\nfault = {{ error = \"throttle\" }}\nprobability = 1.0\n\
         match = {{ service = \"dynamodb\", operation = \"GetItem\" }}\n\
         [[rules]]\nname = \"carts\"\nfault = {{ error = \"throttle\" }}\nprobability = 1.0\n\
         after = {CARTS_FINE}\nmatch = {{ service = \"dynamodb\", operation = \"PutItem\" }}\n"
    );
    let chaos = chaos_client(&plan);
    let attempts = Attempts::default();
    let client = dynamodb(&chaos, &attempts, seed);
    let orders = format!("orders-{seed}-{}", std::process::id());
    let carts = format!("carts-{seed}-{}", std::process::id());
    support::create_table(&client, &orders).await;
    support::create_table(&client, &carts).await;
    let (mut on_orders, mut on_carts) = (0, 0);
    for i in 0..PAIRS {
        let before = attempts.count();
        let _ = client
            .get_item()
            .table_name(&orders)
            .key("id", AttributeValue::S(i.to_string()))
            .send()
            .await;
        let between = attempts.count();
        let _ = client
            .put_item()
            .table_name(&carts)
            .item("id", AttributeValue::S(i.to_string()))
            .send()
            .await;
        on_orders += between - before;
        on_carts += attempts.count() - between;
    }
    (on_orders, on_carts)
}

/// The simulator on the same pattern: one environment calling `orders` then `carts` (with a
/// fallback, as the loop above goes on after a failure), both `sdk_standard`, sharing a
/// retry partition or not. Returns all attempts.
fn sim_two_tables(seed: u64, shared: bool) -> u64 {
    let partition = if shared {
        "retry_partition = \"dynamodb\""
    } else {
        ""
    };
    let text = format!(
        r#"[simulation]
seed = {seed}
requests = {PAIRS}
[load]
target = "api"
kind = "constant"
rate_per_s = 0.1
[[function]]
name = "api"
timeout = "10s"
handler = [
  {{ call = "orders", operation = "GetItem", retry = "sdk_standard", fallback = true }},
  {{ call = "carts", operation = "PutItem", retry = "sdk_standard", fallback = true }},
]
[[dependency]]
name = "orders"
latency = "5ms"
{partition}
[[dependency]]
name = "carts"
latency = "5ms"
{partition}
[[fault]]
fault = {{ error = "throttle" }}
match = {{ service = "orders" }}
probability = 1.0
[[fault]]
fault = {{ error = "throttle" }}
match = {{ service = "carts" }}
probability = 1.0
after = {CARTS_FINE}
"#
    );
    let s = scenario::parse(&text, "two_tables.toml").unwrap_or_else(|e| panic!("{e}"));
    let m = Simulation::new(s).unwrap().run_experiment();
    assert_eq!((m.requests, m.cold_starts), (PAIRS as u64, 1));
    m.attempts
}

#[tokio::test(start_paused = true)]
async fn throttles_on_one_table_spend_the_retries_of_another_as_one_client_does() {
    let (orders, carts) = sdk_two_tables(15).await;
    eprintln!("SDK attempts: orders {orders}, carts {carts}");
    // One bucket and one held permit for both tables (see chaos-sim's
    // tests/sim_retry_partition.rs for the derivation): `orders` gets 2 retries in pairs 1 to
    // 99 (net -5 a pair: `carts`'s first-try success returns the held 5), 1 in each later
    // pair while `carts` succeeds, 1 in pair 121 and none after; `carts` gets no retry at
    // all once it throttles, the bucket being empty.
    assert_eq!(orders, 99 * 3 + 21 * 2 + 2 + 39);
    assert_eq!(carts, PAIRS);
    // The simulator agrees exactly when the tables share a retry partition, and not when
    // each has a quota of its own (then `carts` would get 2 retries in each of its 40
    // throttled pairs, and `orders` would drain alone after 50).
    assert_eq!(sim_two_tables(15, true), (orders + carts) as u64);
    assert_eq!(
        sim_two_tables(15, false),
        (50 * 3 + 110) + (CARTS_FINE + 40 * 3) as u64
    );
}
