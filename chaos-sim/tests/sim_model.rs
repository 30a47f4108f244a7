//! Behaviour of the model's elements, one scenario each.

use chaos_sim::{RunMetrics, Simulation, scenario};

fn run(text: &str) -> (RunMetrics, RunMetrics) {
    let s = scenario::parse(text, "model.toml").unwrap_or_else(|e| panic!("{e}"));
    let sim = Simulation::new(s).unwrap_or_else(|e| panic!("{e}"));
    (sim.run_control(), sim.run_experiment())
}

#[test]
fn thundering_herd_hits_the_scaling_limit_and_account_concurrency() {
    // 3,000 clients start at t = 0. New environments: a bucket of 1,000 refilled at 100/s
    // (FACTS.md); concurrency: 1,000 per account.
    let (m, _) = run(r#"
[simulation]
seed = 3
duration = "20s"
[load]
target = "api"
kind = "closed"
clients = 3000
think_time = "1s"
[[function]]
name = "api"
cold_start = "200ms"
handler = [{ compute = "300ms" }]
"#);
    assert!(m.function_throttles > 0, "the herd is throttled");
    assert!(m.peak_concurrency <= 1000);
    // Cold starts can't outrun the scaling bucket: 1,000 + 100/s over the run (plus the drain).
    let seconds = m.end_time_ns as f64 / 1e9;
    assert!((m.cold_starts as f64) <= 1000.0 + 100.0 * seconds);
    assert!(m.cold_starts >= 1000);
    assert_eq!(m.requests, m.completed() + m.in_flight);
}

#[test]
fn keep_alive_decides_cold_starts() {
    let text = r#"
[simulation]
seed = 1
requests = 10
[load]
target = "api"
kind = "constant"
rate_per_s = 0.01
[[function]]
name = "api"
keep_alive = "KEEP"
handler = [{ compute = "10ms" }]
"#;
    // One request every 100 s: a 1-minute keep-alive loses the environment each time.
    let (short, _) = run(&text.replace("KEEP", "1m"));
    assert_eq!(short.cold_starts, 10);
    let (long, _) = run(&text.replace("KEEP", "10m"));
    assert_eq!(long.cold_starts, 1);
}

#[test]
fn cost_is_billed_per_millisecond_and_per_request() {
    // 1,000 invocations of 100 ms at 1,024 MB, no cold start: 100 GB-s and 1,000 requests.
    let (m, _) = run(r#"
[simulation]
requests = 1000
[load]
target = "api"
kind = "constant"
rate_per_s = 10
[[function]]
name = "api"
memory_mb = 1024
cold_start = "0ms"
handler = [{ compute = "99.5ms" }]
"#);
    assert_eq!(
        m.functions[0].billed_mb_ms,
        1000 * 1024 * 100,
        "99.5 ms bills as 100 ms"
    );
    let expected = 100.0 * 0.000_016_666_7 + 1000.0 * 0.000_000_2;
    assert!((m.cost_usd - expected).abs() < 1e-12, "{}", m.cost_usd);
}

#[test]
fn async_errors_are_retried_twice_then_dead_lettered() {
    let (control, experiment) = run(r#"
[simulation]
requests = 20
[load]
target = "worker"
invocation = "async"
rate_per_s = 1
[[function]]
name = "worker"
cold_start = "0ms"
handler = [{ compute = "5ms" }]
[[fault]]
fault = { error = { server_error = 500 } }
probability = 1.0
match = { site = "*/worker" }
"#);
    assert_eq!(control.succeeded, 20);
    assert_eq!(control.invocations, 20);
    assert_eq!(experiment.failed_error, 20);
    assert_eq!(experiment.dead_lettered, 20);
    // First try, then retries 1 and 2 minutes later (FACTS.md).
    assert_eq!(experiment.invocations, 60);
    assert_eq!(experiment.async_retries, 40);
    assert!(experiment.end_time_ns >= 180 * 1_000_000_000);
}

#[test]
fn queue_batches_are_redelivered_then_dead_lettered() {
    let (control, experiment) = run(r#"
[simulation]
requests = 50
[load]
target = "jobs"
invocation = "queue"
kind = "constant"
rate_per_s = 100
[[function]]
name = "consumer"
cold_start = "0ms"
handler = [{ compute = "20ms" }]
[[queue]]
name = "jobs"
consumer = "consumer"
batch_size = 5
max_concurrency = 2
visibility_timeout = "10s"
max_receives = 3
[[fault]]
fault = { error = "connection_reset" }
probability = 1.0
match = { site = "*/consumer" }
"#);
    assert_eq!(control.succeeded, 50);
    assert!(
        control.invocations <= 50 && control.invocations >= 10,
        "batched"
    );
    assert!(control.peak_concurrency <= 2, "max_concurrency");
    assert_eq!(experiment.dead_lettered, 50);
    assert_eq!(
        experiment.redeliveries, 100,
        "each message comes back twice"
    );
    assert_eq!(experiment.failed_error, 50);
}

#[test]
fn jittered_backoff_beats_plain_exponential_on_a_contended_item() {
    // Brooker (AWS Architecture Blog, 2015): 100 clients write one item with optimistic
    // concurrency at the same instant; plain exponential backoff keeps them colliding.
    let text = r#"
[simulation]
seed = 5
duration = "1s"
drain = "1h"
[load]
target = "writer"
kind = "closed"
clients = 100
think_time = "1h"
[[function]]
name = "writer"
timeout = "15m"
cold_start = "0ms"
handler = [{ call = "item", retry = { attempts = 30, backoff = "BACKOFF", base = "5ms", cap = "2s" } }]
[[dependency]]
name = "item"
latency = "5ms"
capacity = "optimistic_item"
"#;
    let (exponential, _) = run(&text.replace("BACKOFF", "exponential"));
    let (full_jitter, _) = run(&text.replace("BACKOFF", "full_jitter"));
    assert_eq!(exponential.requests, 100);
    assert!(exponential.conflicts > 0);
    assert!(
        full_jitter.attempts < exponential.attempts,
        "jitter {} vs exponential {}",
        full_jitter.attempts,
        exponential.attempts
    );
    assert!(full_jitter.succeeded >= exponential.succeeded);
}

#[test]
fn sdk_retry_quota_runs_dry_under_persistent_throttling() {
    let text = r#"
[simulation]
duration = "60s"
[load]
target = "api"
rate_per_s = 50
[[function]]
name = "api"
handler = [{ call = "table", retry = "sdk_standard", quota_scope = "SCOPE" }]
[[dependency]]
name = "table"
latency = "5ms"
[[fault]]
fault = { error = "throttle" }
probability = 1.0
match = { service = "table" }
"#;
    // 500 tokens at 5 per throttle retry, each granted permit replacing (forgetting) the
    // one held, none ever given back: 100 retries per quota, then none.
    let (_, shared) = run(&text.replace("SCOPE", "function"));
    assert_eq!(shared.retries, 100);
    assert!(shared.retry_quota_exhausted > 0);
    assert_eq!(shared.failed_throttle, shared.requests - shared.in_flight);
    // One quota per execution environment (the SDK's bucket is per process): at most 100
    // each (an environment born late need not run dry before the end), far more in all.
    let (_, per_env) = run(&text.replace("SCOPE", "environment"));
    assert!(per_env.cold_starts > 1);
    assert!(per_env.retries <= 100 * per_env.cold_starts);
    assert!(per_env.retries > 10 * shared.retries, "{}", per_env.retries);
    assert_eq!(
        per_env.failed_throttle,
        per_env.requests - per_env.in_flight
    );
}

#[test]
fn circuit_breaker_short_circuits_and_fallback_is_served() {
    let (_, m) = run(r#"
[simulation]
duration = "60s"
[load]
target = "api"
rate_per_s = 100
[[function]]
name = "api"
handler = [{ call = "recs", timeout = "100ms", fallback = true,
             circuit_breaker = { failure_threshold = 10, open_for = "5s" } }]
[[dependency]]
name = "recs"
latency = "5ms"
[[fault]]
fault = { error = "timeout" }
probability = 1.0
match = { service = "recs" }
window = { start = "10s", duration = "20s" }
"#);
    assert!(m.short_circuited > 0);
    assert!(m.breaker_opened >= 2, "re-opens after a failed probe");
    assert!(m.fallback_served > 0);
    assert_eq!(m.failed(), 0, "the fallback hides every failure");
}

#[test]
fn ramps_steps_and_bursts_shape_arrivals() {
    let (m, _) = run(r#"
[simulation]
seed = 2
duration = "100s"
[load]
target = "api"
kind = "constant"
rate_per_s = 10
steps = [{ at = "50s", rate_per_s = 0 }]
ramps = [{ start = "60s", duration = "20s", to_rate_per_s = 20 }]
bursts = [{ at = "55s", count = 100 }]
[[function]]
name = "api"
handler = [{ compute = "1ms" }]
"#);
    // 10/s for 50 s = 500; a burst of 100; a ramp 0 -> 20/s over 20 s = 200; then 20/s for
    // 20 s = 400. Constant spacing makes this exact up to one arrival per segment edge.
    assert!((1195..=1205).contains(&m.requests), "{}", m.requests);
}

#[test]
fn poisson_arrivals_follow_a_ramped_rate() {
    // 100/s for 60 s, then a ramp to 300/s over 60 s, then 300/s for 60 s:
    // expected count 6,000 + 12,000 + 18,000 = 36,000. A Poisson count has variance equal
    // to its mean: standard deviation 190; allow 5 of them.
    let (m, _) = run(r#"
[simulation]
seed = 8
duration = "180s"
[load]
target = "api"
rate_per_s = 100
ramps = [{ start = "60s", duration = "60s", to_rate_per_s = 300 }]
[account]
concurrency = 5000
unreserved_minimum = 100
[[function]]
name = "api"
handler = [{ compute = "1ms" }]
"#);
    let expected = 36_000.0;
    assert!(
        (m.requests as f64 - expected).abs() < 5.0 * expected.sqrt(),
        "{}",
        m.requests
    );
}

#[test]
fn quota_scope_needs_sdk_standard_and_a_known_scope() {
    let base = r#"[simulation]
duration = "1s"
[load]
target = "api"
rate_per_s = 1
[[function]]
name = "api"
handler = [{ call = "table", STEP }]
[[dependency]]
name = "table"
latency = "5ms"
"#;
    let without_sdk = base.replace("STEP", "quota_scope = \"function\"");
    let e = scenario::parse(&without_sdk, "q.toml").expect_err("quota_scope without sdk_standard");
    let text = e.to_string();
    assert!(text.contains("quota_scope"), "{text}");
    assert!(text.contains("sdk_standard"), "{text}");
    assert!(text.contains("q.toml:8"), "{text}");
    let unknown = base.replace(
        "STEP",
        "retry = \"sdk_standard\", quota_scope = \"process\"",
    );
    let text = scenario::parse(&unknown, "q.toml")
        .expect_err("unknown scope")
        .to_string();
    assert!(
        text.contains("environment") && text.contains("function"),
        "{text}"
    );
}
