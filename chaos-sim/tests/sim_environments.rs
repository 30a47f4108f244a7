//! Platform metrics per function (issue 11, item 6): time-averaged concurrency, warm pool and
//! idle environments, environment lifespans; checked against values derived by hand and by
//! Little's law.

use chaos_sim::{FunctionMetrics, Report, RunMetrics, Simulation, scenario};

const MS: u64 = 1_000_000;

fn run(text: &str) -> RunMetrics {
    let s = scenario::parse(text, "environments.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .run_control()
}

fn only_function(m: &RunMetrics) -> &FunctionMetrics {
    assert_eq!(m.functions.len(), 1);
    &m.functions[0]
}

/// Requests arrive in bursts (time, count); each runs a 250 ms handler after a 100 ms cold
/// start when no warm environment is left; environments stay warm for 1 s.
fn bursts(bursts: &str, requests: u32, timeout: &str) -> String {
    format!(
        r#"
[simulation]
seed = 3
requests = {requests}
[load]
target = "api"
rate_per_s = 0.0
bursts = [{bursts}]
[[function]]
name = "api"
timeout = "{timeout}"
cold_start = "100ms"
keep_alive = "1s"
handler = [{{ compute = "250ms" }}]
"#
    )
}

#[test]
fn a_small_run_matches_its_hand_computed_environment_timeline() {
    // 0 s: two requests, two cold starts (A, B), both run 0-0.35 s, then idle.
    // 1 s: one request reuses the environment idle since 0.35 s (0.65 s idle): 1.0-1.25 s.
    //      The other stays idle and expires at 0.35 + 1 = 1.35 s (lifespan 1.35 s).
    // 3 s: the last idle environment (idle since 1.25 s) expired at 2.25 s (lifespan 2.25 s):
    //      a cold start, C, runs 3.0-3.35 s; the run ends there with C warm.
    let m = run(&bursts(
        r#"{ at = "0s", count = 2 }, { at = "1s", count = 1 }, { at = "3s", count = 1 }"#,
        4,
        "10s",
    ));
    assert_eq!(m.succeeded, 4);
    assert_eq!(m.end_time_ns, 3_350 * MS);
    let f = only_function(&m);
    assert_eq!(f.averaged_over_ns, 3_350 * MS);
    assert_eq!(f.cold_starts, 3);
    assert_eq!(f.peak_concurrency, 2);
    // Running: 0.35 + 0.35 + 0.25 + 0.35 s.
    assert_eq!(f.running_environment_ns, u128::from(1_300 * MS));
    // Idle: 0.65 (A before reuse) + 1.0 (A until expiry) + 1.0 (B until expiry) + 0 (C).
    assert_eq!(f.idle_environment_ns, u128::from(2_650 * MS));
    assert_eq!(f.mean_concurrency, 1.3 / 3.35);
    assert_eq!(f.mean_idle_environments, 2.65 / 3.35);
    assert!((f.mean_warm_environments() - 3.95 / 3.35).abs() < 1e-12);
    assert_eq!(f.environments_retired, 2);
    assert_eq!(f.environments_alive_at_end, 1);
    assert_eq!(f.environment_lifespan_sum_ns, u128::from(3_600 * MS));
    assert_eq!(f.environment_lifespan_mean_ns(), 1.8e9);
    assert_eq!(f.environment_lifespan_max_ns, 2_250 * MS);
}

#[test]
fn an_environment_that_times_out_is_retired_at_once() {
    // The 250 ms handler under a 200 ms timeout (counted from the handler's start, after the
    // 100 ms cold start): both invocations end at 0.3 s as timeouts, and Lambda discards
    // their environments; the request at 0.5 s needs a new one, which times out at 0.8 s.
    let m = run(&bursts(
        r#"{ at = "0s", count = 2 }, { at = "500ms", count = 1 }"#,
        3,
        "200ms",
    ));
    let f = only_function(&m);
    assert_eq!(f.timeouts, 3);
    assert_eq!(f.cold_starts, 3);
    assert_eq!(f.environments_retired, 3);
    assert_eq!(f.environments_alive_at_end, 0);
    assert_eq!(f.environment_lifespan_max_ns, 300 * MS);
    assert_eq!(f.environment_lifespan_sum_ns, u128::from(900 * MS));
    assert_eq!(f.idle_environment_ns, 0);
    assert_eq!(f.running_environment_ns, u128::from(900 * MS));
    // The abandoned handler's own end (0.6 + 0.25 s) is the run's last event, but the
    // averages cover the span until the last request and invocation ended: 0.8 s.
    assert_eq!(m.end_time_ns, 850 * MS);
    assert_eq!(f.averaged_over_ns, 800 * MS);
    assert_eq!(f.mean_concurrency, 0.9 / 0.8);
}

#[test]
fn time_averaged_concurrency_follows_littles_law() {
    // Poisson arrivals at 200/s for 300 s; each invocation is its log-normal handler alone
    // (mu = ln 0.1 s, sigma = 0.5; no cold start time, no limits). Every invocation that
    // starts before the end of arrivals finishes inside the run, so the running area is the
    // sum of the durations of N invocations, N ~ Poisson(lambda T), and Little's law gives
    // its mean, lambda T E[D]. The sum is compound Poisson: its variance is lambda T E[D^2].
    // The bound is 5 standard deviations (a false alarm about once in 3.5 million seeds).
    let (lambda, t_s, mu, sigma) = (200.0f64, 300.0f64, 0.1f64.ln(), 0.5f64);
    let text = format!(
        r#"
[simulation]
seed = 11
duration = "{t_s}s"
[account]
concurrency = 100000
unreserved_minimum = 0
[load]
target = "work"
rate_per_s = {lambda}
[[function]]
name = "work"
cold_start = "0ms"
handler = [{{ compute = {{ log_normal = {{ mu = {mu}, sigma = {sigma} }} }} }}]
"#
    );
    let m = run(&text);
    let f = only_function(&m);
    let mean_d = (mu + sigma * sigma / 2.0).exp();
    let mean_d2 = (2.0 * mu + 2.0 * sigma * sigma).exp();
    let expected_area_s = lambda * t_s * mean_d;
    let sd_area_s = (lambda * t_s * mean_d2).sqrt();
    let area_s = f.running_environment_ns as f64 / 1e9;
    assert!(
        (area_s - expected_area_s).abs() <= 5.0 * sd_area_s,
        "running area {area_s} s, Little's law {expected_area_s} +- {}",
        5.0 * sd_area_s
    );
    // The time average is that area over the run: lambda E[D] = 22.7 environments here,
    // up to the few hundred milliseconds the run lasts beyond the last arrival.
    let window_s = f.averaged_over_ns as f64 / 1e9;
    assert!(window_s >= t_s && window_s < t_s + 5.0, "{window_s}");
    assert_eq!(
        f.mean_concurrency,
        f.running_environment_ns as f64 / f.averaged_over_ns as f64
    );
    let little = lambda * mean_d * t_s / window_s;
    assert!(
        (f.mean_concurrency - little).abs() <= 5.0 * sd_area_s / window_s,
        "mean concurrency {} vs lambda E[D] {little}",
        f.mean_concurrency
    );
    // No environment expires within the default 10-minute keep-alive: the pool only grows,
    // and it is never smaller than the running environments.
    assert_eq!(f.environments_retired, 0);
    assert_eq!(f.environments_alive_at_end, f.cold_starts);
    assert!(f.mean_warm_environments() <= f.peak_concurrency as f64);
    assert!(f.mean_warm_environments() >= f.mean_concurrency);
}

#[test]
fn the_report_shows_the_averages_next_to_the_peaks() {
    let s = scenario::parse(
        &bursts(
            r#"{ at = "0s", count = 2 }, { at = "1s", count = 1 }, { at = "3s", count = 1 }"#,
            4,
            "10s",
        ),
        "environments.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let report: Report = Simulation::new(s).unwrap_or_else(|e| panic!("{e}")).run();
    let json: serde_json::Value =
        serde_json::from_str(&report.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let f = &json["control"]["functions"][0];
    assert_eq!(f["peak_concurrency"], 2);
    assert_eq!(f["mean_concurrency"], 0.38806); // 1.3 / 3.35 = 0.388059..., 6 decimals
    assert_eq!(f["mean_idle_environments"], 0.791045);
    assert_eq!(f["mean_warm_environments"], 1.179104);
    assert_eq!(f["environments"]["created"], 3);
    assert_eq!(f["environments"]["retired"], 2);
    assert_eq!(f["environments"]["alive_at_end"], 1);
    assert_eq!(f["environments"]["lifespan_mean_s"], 1.8);
    assert_eq!(f["environments"]["lifespan_max_s"], 2.25);
    let table = report.to_table();
    for row in [
        "mean concurrency",
        "mean warm environments",
        "mean idle environments",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    assert!(table.contains("0.39"), "{table}");
}
