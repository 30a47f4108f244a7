//! Regression tests for engine defects: orphaned work after a timeout or a decided join,
//! chained hedges, SDK standard retry classification, function-level hangs.

use chaos_sim::{RunMetrics, Simulation, scenario};

fn sim(text: &str) -> Simulation {
    let s = scenario::parse(text, "fixes.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s).unwrap_or_else(|e| panic!("{e}"))
}

fn control(text: &str) -> RunMetrics {
    sim(text).run_control()
}

fn experiment(text: &str) -> RunMetrics {
    sim(text).run_experiment()
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
fn a_timed_out_handler_starts_no_further_step() {
    let m = control(&format!(
        r#"{SPACED}
[[function]]
name = "api"
timeout = "1s"
cold_start = "0ms"
handler = [
  {{ compute = "2s" }},
  {{ invoke = "worker", mode = "async" }},
  {{ call = "db", timeout = "1s" }},
  {{ publish = "jobs" }},
]
[[function]]
name = "worker"
cold_start = "0ms"
handler = [{{ compute = "1ms" }}]
[[function]]
name = "consumer"
cold_start = "0ms"
handler = [{{ compute = "1ms" }}]
[[queue]]
name = "jobs"
consumer = "consumer"
[[dependency]]
name = "db"
latency = "5ms"
"#
    ));
    assert_eq!(m.functions[0].timeouts, 20);
    assert_eq!(m.failed_timeout, 20);
    assert_eq!(m.functions[1].invocations, 0, "the worker is never invoked");
    assert_eq!(m.async_events, 0);
    assert_eq!(m.attempts, 0, "db gets no call after the timeout");
    assert_eq!(m.messages_published, 0);
    assert_eq!(m.functions[2].invocations, 0);
    assert_eq!(m.frames_in_flight_at_end, 0, "cancelled frames are freed");
    assert_eq!(m.requests, m.completed() + m.in_flight);
}

#[test]
fn a_timed_out_handler_stops_retrying_and_leaves_queued_server_work_queued() {
    // The call's attempts time out at 400 ms and are retried; the invocation times out at 1 s.
    // The server (one worker, 3 s per request, "serve") keeps serving the abandoned work.
    let text = format!(
        r#"{SPACED}
[[function]]
name = "api"
timeout = "1s"
cold_start = "0ms"
handler = [{{ call = "db", timeout = "400ms",
  retry = {{ attempts = 10, backoff = "none", base = "100ms", cap = "100ms" }} }}]
[[dependency]]
name = "db"
latency = "3s"
capacity = {{ server = {{ workers = 1, discipline = "fifo", abandoned = "ABANDONED" }} }}
"#
    );
    for abandoned in ["serve", "drop"] {
        let m = control(&text.replace("ABANDONED", abandoned));
        // Attempts at 0, 500 ms (400 ms timeout + 100 ms backoff); the next retry would
        // start at 1 s, when the invocation has timed out.
        assert_eq!(m.attempts, 2 * 20, "{abandoned}");
        assert_eq!(m.retries, 20, "{abandoned}");
        assert_eq!(m.functions[0].timeouts, 20, "{abandoned}");
        assert_eq!(m.frames_in_flight_at_end, 0, "{abandoned}");
        if abandoned == "drop" {
            assert!(m.dropped_work > 0);
        } else {
            assert!(m.abandoned_work_served > 0);
        }
    }
}

#[test]
fn a_sync_callee_of_a_timed_out_invocation_runs_to_its_own_end() {
    // The callee is its own invocation: the caller's timeout does not stop it.
    let m = control(&format!(
        r#"{SPACED}
[[function]]
name = "api"
timeout = "1s"
cold_start = "0ms"
handler = [{{ invoke = "worker" }}, {{ call = "db", timeout = "1s" }}]
[[function]]
name = "worker"
timeout = "5s"
cold_start = "0ms"
handler = [{{ compute = "2s" }}, {{ call = "table", timeout = "1s" }}]
[[dependency]]
name = "db"
latency = "5ms"
[[dependency]]
name = "table"
latency = "5ms"
"#
    ));
    assert_eq!(m.functions[0].timeouts, 20);
    assert_eq!(m.functions[1].invocations, 20);
    assert_eq!(m.functions[1].timeouts, 0);
    assert_eq!(m.attempts, 20, "the worker calls table; api never calls db");
    assert_eq!(m.frames_in_flight_at_end, 0);
}

#[test]
fn the_losing_branch_of_a_decided_any_join_starts_nothing() {
    // One worker, 30 ms per request: branch 0 is served at once and wins at 30 ms; branch 1
    // waits behind it. Without cancellation branch 1 would time out at 40 ms and retry.
    let text = format!(
        r#"{SPACED}
[[function]]
name = "api"
cold_start = "0ms"
handler = [{{ fan_out = {{ call = "db", count = 2, join = JOIN, timeout = "40ms",
  retry = {{ attempts = 3, backoff = "none", base = "1ms", cap = "1ms" }} }} }}]
[[dependency]]
name = "db"
latency = "30ms"
capacity = {{ server = {{ workers = 1, discipline = "fifo", abandoned = "serve" }} }}
"#
    );
    for join in ["\"any\"", "{ quorum = 1 }"] {
        let m = control(&text.replace("JOIN", join));
        assert_eq!(m.succeeded, 20, "{join}");
        assert_eq!(m.attempts, 2 * 20, "{join}: no retry of the losing branch");
        assert_eq!(m.retries, 0, "{join}");
        // The loser's queued request was abandoned, and the server still serves it.
        assert_eq!(m.abandoned_work_served, 20, "{join}");
        assert_eq!(m.frames_in_flight_at_end, 0, "{join}");
    }
}

#[test]
fn hedges_chain_up_to_max_extra_within_each_try() {
    let text = format!(
        r#"{SPACED}
[[function]]
name = "api"
cold_start = "0ms"
handler = [{{ call = "db", hedge = {{ after = "10ms", max_extra = 3 }} RETRY }}]
[[dependency]]
name = "db"
latency = "100ms"
"#
    );
    let m = control(&text.replace("RETRY", ""));
    assert_eq!(m.hedges, 3 * 20, "three hedges per request");
    assert_eq!(m.attempts, 4 * 20);
    assert_eq!(m.succeeded, 20);

    // Two tries that both time out: each gets its own three hedges.
    let m = control(&text.replace(
        "RETRY",
        r#", timeout = "50ms", retry = { attempts = 2, backoff = "none", base = "1ms", cap = "1ms" }"#,
    ));
    assert_eq!(m.hedges, 6 * 20);
    assert_eq!(m.retries, 20);
    assert_eq!(m.attempts, 8 * 20);
    assert_eq!(m.failed_timeout, 20);
    assert_eq!(m.frames_in_flight_at_end, 0);
}

#[test]
fn sdk_standard_retries_only_what_the_sdk_retries() {
    let text = format!(
        r#"{SPACED}
[[function]]
name = "api"
cold_start = "0ms"
handler = [{{ call = "db", retry = RETRY, timeout = "100ms" }}]
[[dependency]]
name = "db"
latency = "5ms"
[[fault]]
fault = FAULT
probability = 1.0
match = {{ service = "db" }}
"#
    );
    let sdk = |fault: &str| {
        experiment(
            &text
                .replace("RETRY", "\"sdk_standard\"")
                .replace("FAULT", fault),
        )
    };
    // FACTS.md: throttles, timeouts, IO errors and 500/502/503/504 are retried (3 attempts).
    // (An injected timeout holds the attempt until its 100 ms timeout: chaos-core's effect.)
    for fault in [
        r#"{ error = "throttle" }"#,
        r#"{ error = "timeout" }"#,
        r#"{ error = "connection_reset" }"#,
        r#"{ error = { server_error = 500 } }"#,
        r#"{ error = { server_error = 503 } }"#,
        r#"{ status = 502 }"#,
        r#"{ status = 504 }"#,
    ] {
        let m = sdk(fault);
        assert_eq!(m.retries, 2 * 20, "{fault} is retried");
        assert_eq!(m.attempts, 3 * 20, "{fault}");
    }
    // Custom errors, other 5xx and 4xx are not.
    for fault in [
        r#"{ error = { custom = { name = "InventoryUnavailable", message = "x" } } }"#,
        r#"{ error = { server_error = 501 } }"#,
        r#"{ status = 505 }"#,
        r#"{ status = 404 }"#,
    ] {
        let m = sdk(fault);
        assert_eq!(m.retries, 0, "{fault} is not retried");
        assert_eq!(m.attempts, 20, "{fault}");
        assert_eq!(m.failed_error, 20, "{fault}");
    }
    // An explicit retry policy keeps retrying custom errors, as before.
    let m = experiment(
        &text
            .replace(
                "RETRY",
                r#"{ attempts = 3, backoff = "none", base = "1ms", cap = "1ms" }"#,
            )
            .replace(
                "FAULT",
                r#"{ error = { custom = { name = "X", message = "y" } } }"#,
            ),
    );
    assert_eq!(m.retries, 2 * 20);
}

#[test]
fn sdk_standard_does_not_retry_a_conditional_check_failure() {
    // Many concurrent writers on one optimistic item: conditional writes conflict.
    let text = r#"
[simulation]
seed = 2
requests = 400
[load]
target = "api"
kind = "constant"
rate_per_s = 1000
[[function]]
name = "api"
cold_start = "0ms"
handler = [{ call = "item", retry = RETRY }]
[[dependency]]
name = "item"
latency = "20ms"
capacity = "optimistic_item"
"#;
    let m = control(&text.replace("RETRY", "\"sdk_standard\""));
    assert!(m.conflicts > 0, "writers conflict");
    assert_eq!(
        m.retries, 0,
        "ConditionalCheckFailedException is not retried"
    );
    assert_eq!(m.failed_error, m.conflicts);
    let m = control(&text.replace(
        "RETRY",
        r#"{ attempts = 3, backoff = "full_jitter", base = "10ms", cap = "1s" }"#,
    ));
    assert!(m.retries > 0, "an explicit policy still retries conflicts");
}

#[test]
fn a_function_level_hang_is_a_timeout() {
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
fault = {{ hang = {{ buffer = "100ms" }} }}
probability = 1.0
match = {{ service = "lambda" }}
"#
    ));
    let api = &m.functions[0];
    assert_eq!(api.timeouts, 20, "a hang ends at the function timeout");
    assert_eq!(api.errors, 0);
    assert_eq!(m.failed_timeout, 20);
    assert_eq!(m.attempts, 0, "the handler never ran");
    // The runtime restarts after a timeout: every invocation is a cold start.
    assert_eq!(api.cold_starts, 20);
    // Billed for the full timeout.
    assert_eq!(api.billed_mb_ms, 20 * 128 * 1000);
    assert_eq!(m.frames_in_flight_at_end, 0);
}

#[test]
fn fixed_runs_are_deterministic() {
    let text = r#"
[simulation]
seed = 11
duration = "20s"
[load]
target = "api"
rate_per_s = 300
[[function]]
name = "api"
timeout = "200ms"
handler = [
  { fan_out = { call = "db", count = 3, join = "any", timeout = "50ms",
      hedge = { after = "5ms", max_extra = 2 }, retry = "sdk_standard" } },
  { invoke = "worker", mode = "async" },
]
[[function]]
name = "worker"
handler = [{ call = "db", timeout = "100ms" }]
[[dependency]]
name = "db"
latency = { exponential = { mean = "15ms" } }
capacity = { server = { workers = 4, discipline = "fifo", abandoned = "serve" } }
[[fault]]
fault = { error = { server_error = 503 } }
match = { service = "db" }
probability = 0.1
"#;
    let a = sim(text).run().to_json();
    let b = sim(text).run().to_json();
    assert_eq!(a, b);
    let m = experiment(text);
    assert_eq!(m.requests, m.completed() + m.in_flight);
    assert_eq!(m.time_regressions, 0);
}
