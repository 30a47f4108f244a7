//! Modeling-accuracy tests: SQS event-source scaling while batches are long, an injected
//! function-level timeout error, and the SDK standard retry quota (per Region, refunds).

use chaos_sim::{RunMetrics, Simulation, scenario};

fn sim(text: &str) -> Simulation {
    let s = scenario::parse(text, "modeling.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s).unwrap_or_else(|e| panic!("{e}"))
}

fn control(text: &str) -> RunMetrics {
    sim(text).run_control()
}

fn experiment(text: &str) -> RunMetrics {
    sim(text).run_experiment()
}

/// 2,000 messages published within 20 ms to a queue whose consumer takes 10 minutes per
/// batch, so no batch finishes during the run: only the event source's scaling can raise
/// the consumer's concurrency. `DRAIN` is how long the run goes on after the last publish.
const LONG_BATCHES: &str = r#"
[simulation]
seed = 3
requests = 2000
drain = "DRAIN"
[load]
target = "jobs"
invocation = "queue"
kind = "constant"
rate_per_s = 100000
[[function]]
name = "consumer"
timeout = "15m"
cold_start = "0ms"
handler = [{ compute = "10m" }]
[[queue]]
name = "jobs"
consumer = "consumer"
batch_size = 1
max_concurrency = 100
"#;

#[test]
fn sqs_scaling_grows_while_long_batches_hold_every_slot() {
    // FACTS.md: 5 concurrent batches at first, +300 per minute (one every 200 ms), up to
    // MaximumConcurrency. After ~10 s: 5 + 50 = 55; after 2 minutes: capped at 100.
    let m = control(&LONG_BATCHES.replace("DRAIN", "10s"));
    let peak = m.functions[0].peak_concurrency;
    assert!(
        (54..=56).contains(&peak),
        "scaling follows +300/min while every slot is busy: peak {peak}"
    );
    let m = control(&LONG_BATCHES.replace("DRAIN", "2m"));
    assert_eq!(
        m.functions[0].peak_concurrency, 100,
        "MaximumConcurrency reached"
    );
    assert_eq!(m.functions[0].invocations, 0, "no batch finished");
    // Same seed, same run.
    let again = control(&LONG_BATCHES.replace("DRAIN", "2m"));
    assert_eq!(format!("{m:?}"), format!("{again:?}"));
}

/// Requests one second apart, so no request's work overlaps another's.
const SPACED: &str = r#"
[simulation]
seed = 5
requests = 20
[load]
target = "api"
kind = "constant"
rate_per_s = 1
"#;

#[test]
fn an_injected_function_level_timeout_error_is_a_timeout() {
    let m = experiment(&format!(
        r#"{SPACED}
[[function]]
name = "api"
timeout = "1s"
cold_start = "0ms"
handler = [{{ compute = "10ms" }}, {{ call = "db", timeout = "1s" }}]
[[dependency]]
name = "db"
latency = "5ms"
[[fault]]
fault = {{ error = "timeout" }}
probability = 1.0
match = {{ service = "lambda" }}
"#
    ));
    let api = &m.functions[0];
    assert_eq!(api.timeouts, 20, "counted as timeouts");
    assert_eq!(api.errors, 0, "not as errors");
    assert_eq!(m.failed_timeout, 20);
    assert_eq!(m.attempts, 0, "the handler never ran");
    // The runtime restarts after a timeout: every invocation is a cold start.
    assert_eq!(api.cold_starts, 20);
    // Billed for the full timeout.
    assert_eq!(api.billed_mb_ms, 20 * 128 * 1000);
    assert_eq!(m.frames_in_flight_at_end, 0);
}

/// `api` in us-east-1 calls `db` (replicated in us-east-1 and us-west-2) with the SDK's
/// standard retries and fails over to us-west-2. Requests 5 s apart: no overlap (a phase
/// takes at most 1 s + 2 s of backoff), so the quota arithmetic is exact.
const FAILOVER: &str = r#"
[simulation]
seed = 9
requests = 600
[load]
target = "api"
kind = "constant"
rate_per_s = 0.2
[[function]]
name = "api"
region = "us-east-1"
timeout = "60s"
cold_start = "0ms"
handler = [{ call = "db", retry = "sdk_standard", failover = "us-west-2" }]
[[dependency]]
name = "db"
regions = ["us-east-1", "us-west-2"]
latency = "5ms"
[[fault]]
name = "east-throttles"
fault = { error = "throttle" }
probability = 1.0
match = { site = "us-east-1/*", service = "db" }
[[fault]]
name = "west-some-throttles"
fault = { error = "throttle" }
match = { site = "us-west-2/*", service = "db" }
probability = 0.2
"#;

#[test]
fn failover_draws_on_the_other_regions_retry_quota() {
    let m = experiment(FAILOVER);
    assert_eq!(m.failovers, 600, "every request fails over");
    // us-east-1: every attempt throttled; 2 retries x 5 tokens = 10 per request, so the
    // 500-token bucket covers the first 50 requests, then each request's first retry is
    // refused. us-west-2 has its own bucket, which one in five throttles do not drain
    // (first-try successes refund 1, retried successes refund their cost).
    assert_eq!(
        m.retry_quota_exhausted,
        600 - 50,
        "only us-east-1's bucket runs dry"
    );
    assert!(
        m.retries > 2 * 50,
        "us-west-2 keeps retrying: {}",
        m.retries
    );
    // With its own quota us-west-2 only fails when all three attempts are throttled.
    assert!(
        m.failed_throttle < 30,
        "failed after failover: {}",
        m.failed_throttle
    );
}

#[test]
fn a_retried_success_refunds_its_retry_cost() {
    // One in five attempts throttled, 3,000 requests. Without refunds of retried
    // successes the bucket loses ~0.4 tokens per request on average (0.24 retries x 5,
    // +0.8 refunded by first-try successes) and runs dry; with them it gains ~0.56.
    let m = experiment(
        r#"
[simulation]
seed = 4
requests = 3000
[load]
target = "api"
kind = "constant"
rate_per_s = 100
[[function]]
name = "api"
timeout = "60s"
cold_start = "0ms"
handler = [{ call = "db", retry = "sdk_standard" }]
[[dependency]]
name = "db"
latency = "5ms"
[[fault]]
fault = { error = "throttle" }
match = { service = "db" }
probability = 0.2
"#,
    );
    assert!(m.retries > 500, "retries happen: {}", m.retries);
    assert_eq!(m.retry_quota_exhausted, 0, "the quota never runs dry");
}
