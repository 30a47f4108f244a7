//! When a run's work ends, and the timers it no longer needs (issue 11, item 8).

use chaos_sim::{RunMetrics, Simulation, scenario};

fn run(text: &str) -> RunMetrics {
    let s = scenario::parse(text, "end_time.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .run_control()
}

/// `count` requests arrive together at 2 s; each runs a 250 ms handler on a warm-or-cold
/// environment with no cold-start time, under a function timeout of `timeout`.
fn burst(count: u32, compute: &str, timeout: &str) -> String {
    format!(
        r#"
[simulation]
seed = 5
requests = {count}
[load]
target = "api"
rate_per_s = 0.0
bursts = [{{ at = "2s", count = {count} }}]
[[function]]
name = "api"
timeout = "{timeout}"
cold_start = "0ms"
handler = [{{ compute = "{compute}" }}]
"#
    )
}

#[test]
fn simulated_time_ends_when_the_last_request_finishes_not_at_a_function_timeout() {
    // All 40 requests start at 2 s and take exactly 250 ms: the work ends at 2.25 s. Each
    // invocation's 60 s timeout is no longer needed once it returns; before, the run's clock
    // ran on to 62 s to fire them (well inside the default 900 s drain).
    let m = run(&burst(40, "250ms", "60s"));
    assert_eq!(m.succeeded, 40);
    assert_eq!(m.work_end_ns, 2_250_000_000);
    assert_eq!(
        m.end_time_ns, 2_250_000_000,
        "no event after the last answer"
    );
    // One function-timeout timer per invocation, all cancelled, none processed.
    assert_eq!(m.cancelled_timers, 40);
    assert_eq!(m.function_timeouts, 0);
}

#[test]
fn a_timeout_that_ends_an_invocation_still_fires() {
    // The handler needs 5 s, the function allows 1 s: every request ends at 2 s + 1 s as a
    // function timeout, so no timer is cancelled.
    let m = run(&burst(10, "5s", "1s"));
    assert_eq!(m.function_timeouts, 10);
    assert_eq!(m.failed_timeout, 10);
    assert_eq!(m.work_end_ns, 3_000_000_000);
    assert_eq!(m.cancelled_timers, 0);
}

#[test]
fn cancelled_timers_leave_every_other_number_unchanged() {
    // Same run with a function timeout that never matters (30 s against 250 ms) and one that
    // is barely above the work (300 ms): the timers' only effect was on the event count.
    let mut long = run(&burst(25, "250ms", "30s"));
    let mut short = run(&burst(25, "250ms", "300ms"));
    assert_eq!(long.cancelled_timers, 25);
    assert_eq!(short.cancelled_timers, 25);
    for m in [&mut long, &mut short] {
        m.cancelled_timers = 0;
    }
    assert_eq!(format!("{long:?}"), format!("{short:?}"));
}
