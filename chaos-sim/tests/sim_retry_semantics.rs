//! Retry semantics users write (issue 11, item 4): retrying until success bounded by time, an
//! immediate retry, and retry budgets (gRPC's throttling, Finagle's percentage) with any
//! backoff, each against a value derived independently of the engine.

use chaos_sim::{RunMetrics, Simulation, scenario};

fn run(text: &str) -> RunMetrics {
    let s = scenario::parse(text, "retry.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .run_experiment()
}

const MS: f64 = 1e6;

/// Requests 1 ms apart calling `db` (1 ms, unlimited) with `RETRY`; every attempt throttled
/// with probability `P`, at once (a failed attempt takes no time). `TIMEOUT` is the
/// function's.
const BERNOULLI: &str = r#"
[simulation]
seed = 11
requests = 20000
[load]
target = "api"
kind = "constant"
rate_per_s = 1000
[[function]]
name = "api"
timeout = "TIMEOUT"
cold_start = "0ms"
handler = [{ call = "db", retry = RETRY }]
[[dependency]]
name = "db"
latency = "1ms"
[[fault]]
fault = { error = "throttle" }
match = { service = "db" }
probability = P
"#;

fn bernoulli(retry: &str, p: f64, timeout: &str) -> RunMetrics {
    run(&BERNOULLI
        .replace("RETRY", retry)
        .replace("TIMEOUT", timeout)
        .replace("= P", &format!("= {p}")))
}

/// Attempts of one request when each fails independently with probability `p` and at most
/// `n` are made: a geometric law truncated at `n`. Returns (mean, variance, P(all fail)).
fn truncated_geometric(p: f64, n: u32) -> (f64, f64, f64) {
    let mut mean = 0.0;
    let mut second = 0.0;
    for k in 1..=n {
        let prob = if k < n {
            p.powi(k as i32 - 1) * (1.0 - p)
        } else {
            p.powi(n as i32 - 1)
        };
        mean += f64::from(k) * prob;
        second += f64::from(k * k) * prob;
    }
    (mean, second - mean * mean, p.powi(n as i32))
}

/// Checks attempts per request and failed requests against the truncated geometric law,
/// within 5 standard deviations of the sample mean / binomial count.
fn assert_geometric(m: &RunMetrics, p: f64, n: u32) {
    let requests = m.requests as f64;
    let (mean, var, all_fail) = truncated_geometric(p, n);
    let observed = m.attempts as f64 / requests;
    let sd = (var / requests).sqrt();
    assert!(
        (observed - mean).abs() <= 5.0 * sd,
        "attempts per request {observed:.4}, expected {mean:.4} +- {:.4}",
        5.0 * sd
    );
    let failed = m.failed_throttle as f64;
    let expected = requests * all_fail;
    let sd = (requests * all_fail * (1.0 - all_fail)).sqrt();
    assert!(
        (failed - expected).abs() <= 5.0 * sd,
        "failed {failed}, expected {expected:.1} +- {:.1}",
        5.0 * sd
    );
    assert_eq!(m.attempts, m.requests + m.retries);
    assert_eq!(m.completed(), m.requests);
}

#[test]
fn retrying_within_a_time_cap_makes_the_attempts_that_start_before_it() {
    // Attempt k starts at (k - 1) x 10 ms; a retry goes only if it starts before 45 ms, so
    // at most 5 attempts (the 5th starts at 40 ms).
    let p = 0.5;
    let m = bernoulli(
        r#"{ within = "45ms", backoff = "none", base = "10ms" }"#,
        p,
        "60s",
    );
    assert_geometric(&m, p, 5);
    // The slowest success is a 5th attempt: 40 ms of waits and 1 ms of service.
    let slowest = m.latency_quantile_ns(1.0) as f64 / MS;
    assert!(
        (40.9..=41.1).contains(&slowest),
        "slowest success {slowest} ms"
    );
    // A cap on a multiple of the wait: the attempt at exactly 40 ms would start at the
    // bound, with no time left, so only 4 attempts.
    let m = bernoulli(
        r#"{ within = "40ms", backoff = "none", base = "10ms" }"#,
        p,
        "60s",
    );
    assert_geometric(&m, p, 4);
}

#[test]
fn retrying_until_the_deadline_is_bounded_by_the_callers_time() {
    let p = 0.5;
    let capped = bernoulli(
        r#"{ within = "45ms", backoff = "none", base = "10ms" }"#,
        p,
        "60s",
    );
    // The function's 45 ms timeout is the deadline: the same attempts, decided by the same
    // keys, as the 45 ms cap.
    let deadline = bernoulli(
        r#"{ within = "deadline", backoff = "none", base = "10ms" }"#,
        p,
        "45ms",
    );
    assert_geometric(&deadline, p, 5);
    assert_eq!(deadline.attempts, capped.attempts);
    assert_eq!(deadline.failed_throttle, capped.failed_throttle);
    assert_eq!(
        deadline.function_timeouts, 0,
        "every call ends before the deadline"
    );
    // A cap beyond the deadline is cut to the deadline.
    let beyond = bernoulli(
        r#"{ within = "10s", backoff = "none", base = "10ms" }"#,
        p,
        "45ms",
    );
    assert_eq!(beyond.attempts, capped.attempts);
}

#[test]
fn an_immediate_retry_does_not_wait() {
    let p = 0.3;
    let m = bernoulli(r#"{ attempts = 4, backoff = "immediate" }"#, p, "60s");
    assert_geometric(&m, p, 4);
    // Failed attempts take no time and retries do not wait: every success takes 1 ms (to
    // the histogram's 0.1%).
    for q in [0.0, 1.0] {
        let latency = m.latency_quantile_ns(q) as f64 / MS;
        assert!((latency - 1.0).abs() <= 0.001, "quantile {q}: {latency} ms");
    }
}

#[test]
fn a_retry_loop_that_takes_no_time_ends_at_the_attempt_limit() {
    let m = run(&BERNOULLI
        .replace("requests = 20000", "requests = 1")
        .replace("RETRY", r#"{ within = "1s", backoff = "immediate" }"#)
        .replace("TIMEOUT", "60s")
        .replace("= P", "= 1.0"));
    assert_eq!(
        m.attempts,
        u64::from(chaos_sim::model::MAX_ATTEMPTS_UNTIL_SUCCESS)
    );
    assert_eq!(m.failed_throttle, 1, "the call fails with its last cause");
}

/// Requests 100 ms apart (so no two overlap) calling `db` with 3 attempts, immediate
/// retries and gRPC throttling (10 tokens, 0.5 back per success). Every attempt fails in
/// [0, 2.05 s) (requests 1 to 20) and from `RESUME` on; none fails in between.
const THROTTLED: &str = r#"
[simulation]
seed = 2
requests = 50
[load]
target = "api"
kind = "constant"
rate_per_s = 10
[[function]]
name = "api"
timeout = "10s"
cold_start = "0ms"
handler = [{ call = "db", retry = { attempts = 3, backoff = "immediate" }, retry_budget = { max_tokens = 10, token_ratio = 0.5 } }]
[[dependency]]
name = "db"
latency = "1ms"
[[fault]]
name = "outage"
fault = { error = "throttle" }
match = { service = "db" }
probability = 1.0
window = { start = "0s", duration = "2050ms" }
[[fault]]
name = "again"
fault = { error = "throttle" }
match = { service = "db" }
probability = 1.0
window = { start = "RESUME", duration = "1h" }
"#;

#[test]
fn grpc_throttling_stops_retries_at_half_the_tokens_and_restarts_above_it() {
    // The outage, token by token: request 1 fails 3 times (10 -> 9 -> 8 -> 7, two
    // retries); request 2 fails (6, retry) and fails (5: not above 5, denied); requests 3
    // to 20 fail once each and are denied (tokens floor at 0).
    //
    // Then k first-try successes add 0.5 each. A retry after a failure needs more than 5
    // tokens once the failure took its token: more than 6 before it, so k >= 13.
    for (successes, retries_after) in [(12u64, 0u64), (13, 1)] {
        let resume = format!("{}ms", 2050 + 100 * successes);
        let m = run(&THROTTLED.replace("RESUME", &resume));
        assert_eq!(m.requests, 50);
        let failing_after = 50 - 20 - successes;
        assert_eq!(m.succeeded, successes, "k = {successes}");
        assert_eq!(m.retries, 3 + retries_after, "k = {successes}");
        // Every failing request after the first is denied once; with k = 13 the first
        // retries once, then is denied too.
        assert_eq!(
            m.retries_denied_by_budget,
            1 + 18 + failing_after,
            "k = {successes}"
        );
        assert_eq!(m.failed_throttle, 20 + failing_after);
    }
}

/// Requests 10 ms apart for 100 s, every attempt throttled, 10 attempts with `BACKOFF`, and
/// a percentage budget of `PERCENT` with `MIN` retries per second over 1 s.
const PERCENT: &str = r#"
[simulation]
seed = 8
duration = "100s"
[load]
target = "api"
kind = "constant"
rate_per_s = 100
[[function]]
name = "api"
timeout = "10s"
cold_start = "0ms"
handler = [{ call = "db", retry = { attempts = 10, backoff = "BACKOFF", base = "1ms", cap = "4ms" }, retry_budget = { percent = "20%", min_retries_per_s = MIN, ttl = "1s" } }]
[[dependency]]
name = "db"
latency = "1ms"
[[fault]]
fault = { error = "throttle" }
match = { service = "db" }
probability = 1.0
"#;

#[test]
fn a_percentage_budget_holds_retries_to_its_percent_of_requests_under_total_failure() {
    // Under total failure every call retries as long as the budget lets it. The budget
    // allows, in any window of 1 s, 20% of that window's requests plus `min` x 1 s of
    // reserve; a retry's withdrawal leaves the window with the slice it was made in, so
    // the allowance renews every second: retries = 0.2 x requests + min x 100 s, give or
    // take one window's allowance (20 + min) at the end, where the last window's is cut
    // short.
    for backoff in [
        "none",
        "exponential",
        "full_jitter",
        "equal_jitter",
        "decorrelated_jitter",
        "immediate",
    ] {
        for min in [0.0, 5.0] {
            let m = run(&PERCENT
                .replace("BACKOFF", backoff)
                .replace("= MIN", &format!("= {min}")));
            // The first arrival is at 10 ms.
            assert_eq!(m.requests, 9_999);
            let expected = 0.2 * m.requests as f64 + min * 100.0;
            let slack = 20.0 + min + 1.0;
            assert!(
                (m.retries as f64 - expected).abs() <= slack,
                "{backoff}, min {min}: {} retries, expected {expected} +- {slack}",
                m.retries
            );
            // A call stops retrying only when the budget refuses (never at 10 attempts).
            assert_eq!(m.retries_denied_by_budget, m.requests, "{backoff}");
            assert_eq!(m.failed_throttle, m.requests);
        }
    }
}

#[test]
fn the_sdk_standard_mode_takes_a_budget_on_top_of_its_quota() {
    let m = run(&THROTTLED
        .replace(
            r#"retry = { attempts = 3, backoff = "immediate" }"#,
            r#"retry = "sdk_standard""#,
        )
        .replace("rate_per_s = 10\n", "rate_per_s = 0.1\n")
        .replace("2050ms", "1000s")
        .replace("RESUME", "2000s"));
    // Requests 10 s apart, all failing: the quota (500 tokens, 5 per throttle retry) would
    // pay 100 retries, the budget stops them after 3 (as in the throttling test above).
    assert_eq!(m.retries, 3);
    assert_eq!(m.retry_quota_exhausted, 0);
    assert_eq!(m.retries_denied_by_budget, 1 + 48);
}
