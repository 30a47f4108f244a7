//! Timelines (issue 11, item 1): per-interval series sum to the run's totals, a fault window
//! that the system recovers from gives the recovery time derived by hand, a metastable
//! failure does not recover, and bad `[timeline]` input is an error at its line.

use chaos_sim::recovery::RecoveryStatus;
use chaos_sim::report::SteadyState;
use chaos_sim::{RunMetrics, Simulation, scenario};
use std::path::PathBuf;

fn example_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios")
        .join(name);
    std::fs::read_to_string(path).expect("bundled scenario")
}

fn golden_scenario_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/scenarios")
        .join(name);
    std::fs::read_to_string(path).expect("test scenario")
}

fn assert_series_sum_to_totals(what: &str, m: &RunMetrics) {
    let t = &m.timeline;
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    assert!(!t.is_empty(), "{what}: no intervals");
    assert_eq!(sum(&t.arrivals), m.requests, "{what}: arrivals");
    assert_eq!(
        sum(&t.goodput),
        m.succeeded + m.fallback_served,
        "{what}: goodput"
    );
    assert_eq!(sum(&t.failed_timeout), m.failed_timeout, "{what}: timeouts");
    assert_eq!(
        sum(&t.failed_throttle),
        m.failed_throttle,
        "{what}: throttles"
    );
    assert_eq!(sum(&t.failed_error), m.failed_error, "{what}: errors");
    assert_eq!(sum(&t.retries), m.retries, "{what}: retries");
    for (f, series) in m.functions.iter().zip(&t.functions) {
        assert_eq!(series.name, f.name);
        assert_eq!(
            sum(&series.throttles),
            f.throttles,
            "{what}: {} 429s",
            f.name
        );
        let peak = series.concurrency_peak.iter().copied().max().unwrap_or(0);
        assert_eq!(peak, f.peak_concurrency, "{what}: {} peak", f.name);
        // A mean never exceeds the interval's peak.
        for (mean, peak) in series.concurrency_mean.iter().zip(&series.concurrency_peak) {
            assert!(*mean <= *peak as f64 + 1e-9, "{what}: {mean} > {peak}");
        }
    }
    // Every series has one entry per interval; the last interval holds the work's end.
    let n = t.len();
    for v in [
        &t.goodput,
        &t.failed_timeout,
        &t.failed_throttle,
        &t.failed_error,
        &t.retries,
    ] {
        assert_eq!(v.len(), n, "{what}");
    }
    assert_eq!(t.latency_p99_ns.len(), n, "{what}");
    assert_eq!(
        n as u64,
        m.work_end_ns / t.interval_ns + 1,
        "{what}: length"
    );
    // A quantile per interval exactly where some request succeeded in it.
    for (g, p) in t.goodput.iter().zip(&t.latency_p50_ns) {
        assert_eq!(*g > 0, p.is_some(), "{what}");
    }
    let peak_queue = t
        .dependencies
        .iter()
        .flat_map(|d| d.queue_peak.iter().copied())
        .max()
        .unwrap_or(0);
    assert!(peak_queue <= m.peak_server_queue.max(1) * t.dependencies.len() as u64);
}

#[test]
fn series_sum_to_the_run_totals_exactly() {
    for name in ["checkout.toml", "retry_storm.toml", "region_outage.toml"] {
        let s = scenario::parse(&example_text(name), name).expect("valid");
        let sim = Simulation::new(s).expect("compiles");
        assert_series_sum_to_totals(&format!("{name} control"), &sim.run_control());
        assert_series_sum_to_totals(&format!("{name} experiment"), &sim.run_experiment());
    }
    let text = golden_scenario_text("fan_outs.toml");
    let mut sim =
        Simulation::new(scenario::parse(&text, "fan_outs.toml").expect("valid")).expect("compiles");
    for collapse in [true, false] {
        sim.set_collapse_fan_outs(collapse);
        assert_series_sum_to_totals("fan_outs", &sim.run_experiment());
    }
}

/// One worker serving 5 ms queries to constant arrivals at 100/s (utilisation 0.5, no
/// queue), and a window from 20 s to 30 s in which every query issued is 15 ms slower (20 ms:
/// 50/s, half the arrival rate). No timeouts, no retries: nothing is lost, work only waits.
const BACKLOG: &str = r#"[simulation]
name = "backlog"
seed = 3
duration = "60s"

[account]
concurrency = 100000
unreserved_minimum = 100

[load]
target = "api"
kind = "constant"
rate_per_s = 100

[[function]]
name = "api"
timeout = "900s"
cold_start = "0ms"
handler = [{ call = "db" }]

[[dependency]]
name = "db"
latency = "5ms"
capacity = { server = { workers = 1 } }

[[fault]]
name = "slow"
fault = { latency = "15ms" }
probability = 1.0
window = { start = "20s", duration = "10s" }

[timeline]
interval = "1s"

[hypothesis]
recovery_time = "<= 12s"
"#;

#[test]
fn recovery_from_a_backlog_takes_the_time_derived_by_hand() {
    // By hand: from 20 s the worker never idles until the window's queries are done. The
    // window brings λW = 100/s x 10 s = 1000 queries of 20 ms: 20 s of work, done at 40 s.
    // Until then it completes one query per 20 ms, 50/s, half the control run's 100/s (below
    // the 90% tolerance); from 40 s it serves the backlog of 5 ms queries at 200/s, then
    // 100/s (at or above the control's). So goodput is back 40 - 30 = 10 s after the window
    // ends: W (λ s_slow - 1) = 10 s. Resolution: one interval (1 s).
    let report = Simulation::new(scenario::parse(BACKLOG, "backlog.toml").expect("valid"))
        .expect("compiles")
        .run();
    let r = report
        .recovery
        .as_ref()
        .expect("a fault window to recover from");
    assert_eq!(r.status, RecoveryStatus::Recovered, "{r:?}");
    let seconds = r.recovery_ms.expect("recovered") / 1000.0;
    assert!(
        (seconds - 10.0).abs() <= 1.0,
        "recovery {seconds} s, expected 10 s +- 1"
    );
    assert_eq!(r.faults_end_ms, Some(30_000.0));
    let h = &report.hypotheses[0];
    assert_eq!(h.name, "recovery_time");
    assert!(h.control_holds && h.experiment_holds, "{h:?}");
    assert_eq!(report.verdict, SteadyState::Holds);

    // The series show the mechanism: 50 a second through the window's backlog, then 200.
    let e = &report.experiment.timeline;
    assert!(
        e.goodput[32..38].iter().all(|g| (49..=51).contains(g)),
        "{:?}",
        e.goodput
    );
    assert!(
        e.goodput[41..48].iter().all(|g| (199..=201).contains(g)),
        "{:?}",
        e.goodput
    );
    assert!(
        report.control.timeline.goodput[5..55]
            .iter()
            .all(|g| *g == 100)
    );
    let queue = &e.dependencies[0].queue_peak;
    // About 500 queries waiting when the window closes: (100 - 50)/s x 10 s.
    assert!((495..=505).contains(&queue[29]), "{}", queue[29]);

    // A tighter bound fails in the experiment, holds in the control run.
    let tight = BACKLOG.replace("<= 12s", "<= 8s");
    let report = Simulation::new(scenario::parse(&tight, "tight.toml").expect("valid"))
        .expect("compiles")
        .run();
    assert!(!report.hypotheses[0].experiment_holds);
    assert_eq!(report.verdict, SteadyState::Fails);

    // The terminal summary shows the phases and the recovery.
    let table = report.to_table();
    for part in [
        "before 0s-20s",
        "during 20s-30s",
        "after 30s-60s",
        "recovery: 10s",
    ] {
        assert!(table.contains(part), "{part} missing from\n{table}");
    }
}

#[test]
fn a_metastable_retry_storm_does_not_recover_and_fails_its_bound() {
    // The bundled retry storm: after the 30 s slowdown ends at 2m30s, the worker's queue stays
    // full of abandoned work, callers time out and retry, and goodput stays near zero.
    let text = example_text("retry_storm.toml");
    assert!(
        text.contains("recovery_time = \"<= 60s\""),
        "the example states the bound"
    );
    let report = Simulation::new(scenario::parse(&text, "storm.toml").expect("valid"))
        .expect("compiles")
        .run();
    let r = report.recovery.as_ref().expect("measured");
    assert_eq!(r.status, RecoveryStatus::DidNotRecover, "{r:?}");
    assert_eq!(r.recovery_ms, None);
    let h = report
        .hypotheses
        .iter()
        .find(|h| h.name == "recovery_time")
        .expect("the bound is checked");
    assert!(h.control_holds && !h.experiment_holds && h.experiment.is_nan());
    assert_eq!(report.verdict, SteadyState::Fails);
    // Independently of the criterion: after the faults the experiment's goodput is under 1%
    // of the control run's, interval by interval summed.
    let after = (150_000.0 / report.experiment.timeline.interval_ms) as usize;
    let last = (600_000.0 / report.experiment.timeline.interval_ms) as usize;
    let sum = |g: &[u64]| g[after..last].iter().sum::<u64>() as f64;
    let (e, c) = (
        sum(&report.experiment.timeline.goodput),
        sum(&report.control.timeline.goodput),
    );
    assert!(e < 0.01 * c, "experiment {e} vs control {c}");
    assert!(report.to_table().contains("DID NOT RECOVER"));
}

#[test]
fn same_seed_gives_byte_identical_timelines() {
    let run = || {
        Simulation::new(scenario::parse(BACKLOG, "backlog.toml").expect("valid"))
            .expect("compiles")
            .run()
            .to_json()
    };
    let first = run();
    assert_eq!(first, run());
    assert!(first.contains("\"recovery\""));
    assert!(first.contains("\"goodput\": [")); // series on one line each
}

#[test]
fn the_default_interval_gives_at_most_120_intervals() {
    // 10 minutes: 5 s intervals (120); the drain adds no intervals past the work's end.
    let s = scenario::parse(&example_text("retry_storm.toml"), "s.toml").expect("valid");
    let m = Simulation::new(s).expect("compiles").run_control();
    assert_eq!(m.timeline.interval_ns, 5_000_000_000);
    assert!(
        (120..=122).contains(&m.timeline.len()),
        "{}",
        m.timeline.len()
    );
}

fn error_of(text: &str) -> scenario::ScenarioError {
    match scenario::parse(text, "t.toml") {
        Ok(_) => panic!("must be rejected:\n{text}"),
        Err(e) => e,
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle in text")
}

#[test]
fn bad_timeline_settings_are_errors_at_their_line() {
    for (from, to, field, says) in [
        (
            "interval = \"1s\"",
            "interval = \"0s\"",
            "timeline.interval",
            "above 0",
        ),
        (
            "interval = \"1s\"",
            "interval = \"100us\"",
            "timeline.interval",
            "intervals",
        ),
        (
            "interval = \"1s\"",
            "interval = \"1s\"\nrecovery_tolerance = \"150%\"",
            "timeline.recovery_tolerance",
            "0..1",
        ),
        (
            "interval = \"1s\"",
            "interval = \"1s\"\nrecovery_sustain = \"0s\"",
            "timeline.recovery_sustain",
            "above 0",
        ),
        (
            "interval = \"1s\"",
            "interval = \"soon\"",
            "timeline.interval",
            "soon",
        ),
        (
            "recovery_time = \"<= 12s\"",
            "recovery_time = \">= 12s\"",
            "hypothesis.recovery_time",
            "`<=`",
        ),
    ] {
        let text = BACKLOG.replace(from, to);
        let err = error_of(&text);
        assert_eq!(err.field, field, "{err}");
        let needle = to.lines().last().unwrap_or(to);
        assert_eq!(err.line, line_of(&text, needle), "{err}");
        assert!(err.message.contains(says), "{err}");
    }
}

#[test]
fn a_recovery_bound_needs_a_fault_window_that_ends() {
    let no_end = BACKLOG.replace(
        "window = { start = \"20s\", duration = \"10s\" }",
        "window = { start = \"20s\" }",
    );
    let err = error_of(&no_end);
    assert_eq!(err.field, "hypothesis.recovery_time");
    assert_eq!(err.line, line_of(&no_end, "recovery_time"));
    assert!(err.message.contains("no end"), "{err}");

    let start = BACKLOG.find("[[fault]]").expect("fault");
    let end = BACKLOG.find("[timeline]").expect("timeline");
    let no_faults = format!("{}{}", &BACKLOG[..start], &BACKLOG[end..]);
    let err = error_of(&no_faults);
    assert_eq!(err.field, "hypothesis.recovery_time");
    assert!(err.message.contains("no [[fault]]"), "{err}");
}

#[test]
fn the_builder_form_sets_and_checks_the_timeline() {
    use chaos_core::latency::LatencyDist;
    use chaos_sim::ScenarioBuilder;
    use chaos_sim::model::{Dependency, Function, Hypothesis, Step, TimelineSettings};
    use std::time::Duration;
    let build = |timeline: TimelineSettings, hypothesis: Hypothesis| {
        let mut b = ScenarioBuilder::new("built", "api");
        b.duration(Duration::from_secs(60))
            .function(Function::new("api", vec![Step::call("db").step()]))
            .dependency(Dependency::new(
                "db",
                LatencyDist::constant(Duration::from_millis(3)),
            ))
            .timeline(timeline)
            .hypothesis(hypothesis);
        b.build()
    };
    let every_2s = TimelineSettings {
        interval: Some(Duration::from_secs(2)),
        ..TimelineSettings::default()
    };
    let s = build(every_2s, Hypothesis::default()).unwrap_or_else(|e| panic!("{e}"));
    let m = Simulation::new(s).expect("compiles").run_control();
    assert_eq!(m.timeline.interval_ns, 2_000_000_000);
    // 60 s of load, the last request ending just after: 30 or 31 intervals.
    assert!(
        (30..=31).contains(&m.timeline.len()),
        "{}",
        m.timeline.len()
    );
    assert_series_sum_to_totals("built", &m);
    // The dependency is busy 3 ms per request at 100/s: 0.3 in flight on average.
    let in_flight = &m.timeline.dependencies[0].in_flight_mean;
    let mean = in_flight[1..29].iter().sum::<f64>() / 28.0;
    assert!((mean - 0.3).abs() < 0.03, "{mean}");

    let error = |timeline, hypothesis| {
        build(timeline, hypothesis)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let zero = TimelineSettings {
        interval: Some(Duration::ZERO),
        ..TimelineSettings::default()
    };
    assert!(error(zero, Hypothesis::default()).contains("timeline.interval"));
    let loose = TimelineSettings {
        recovery_tolerance: 1.5,
        ..TimelineSettings::default()
    };
    assert!(error(loose, Hypothesis::default()).contains("timeline.recovery_tolerance"));
    let bound = Hypothesis {
        recovery_time_at_most: Some(Duration::from_secs(60)),
        ..Hypothesis::default()
    };
    assert!(error(TimelineSettings::default(), bound).contains("hypothesis.recovery_time"));
}

#[test]
fn too_few_intervals_after_the_faults_is_not_measured_and_fails_the_bound() {
    // The load ends 3 s after the window: fewer than the 5 intervals recovery must last.
    let short = BACKLOG.replace("duration = \"60s\"", "duration = \"33s\"");
    let report = Simulation::new(scenario::parse(&short, "short.toml").expect("valid"))
        .expect("compiles")
        .run();
    let r = report.recovery.as_ref().expect("faults");
    assert_eq!(r.status, RecoveryStatus::NotMeasured, "{r:?}");
    assert!(
        r.detail.as_deref().unwrap_or("").contains("fewer than"),
        "{r:?}"
    );
    assert!(!report.hypotheses[0].experiment_holds);
    // With a 2 s sustain (2 intervals) and a 50% tolerance it is measured: goodput is 50/s
    // against 100/s during the backlog, exactly at the tolerance, so it counts as recovered
    // at once.
    let lenient = short.replace(
        "interval = \"1s\"",
        "interval = \"1s\"\nrecovery_sustain = \"2s\"\nrecovery_tolerance = \"50%\"",
    );
    let report = Simulation::new(scenario::parse(&lenient, "lenient.toml").expect("valid"))
        .expect("compiles")
        .run();
    let r = report.recovery.as_ref().expect("faults");
    assert_eq!(r.sustain_intervals, 2);
    assert_eq!(r.status, RecoveryStatus::Recovered, "{r:?}");
    assert_eq!(r.recovery_ms, Some(0.0));
}

/// One request a second for 20 s to `db` (10 ms of service) behind `hops`, 1 s intervals.
fn behind_hops(capacity: &str, hops: &str, call: &str) -> String {
    format!(
        r#"
[simulation]
seed = 5
requests = 20
[load]
target = "api"
kind = "constant"
rate_per_s = 1
[timeline]
interval = "1s"
[[function]]
name = "api"
cold_start = "0ms"
handler = [{call}]
[[dependency]]
name = "db"
latency = "10ms"
capacity = {capacity}
{hops}
"#
    )
}

/// The dependency's work over the whole series: sum of (time-averaged work in flight x
/// interval), nanoseconds.
fn dependency_work_ns(m: &RunMetrics) -> f64 {
    let t = &m.timeline;
    t.dependencies[0].in_flight_mean.iter().sum::<f64>() * t.interval_ns as f64
}

#[test]
fn work_in_flight_counts_requests_that_cross_network_hops() {
    // Every attempt is served for 10 ms, with or without hops: the dependency's work over the
    // run is attempts x 10 ms whatever the network adds around it (an optimistic item's work
    // is its read, as without hops).
    let hops = r#"hops = { request = "3ms", response = "4ms" }"#;
    let capacities = [
        r#""unlimited""#,
        r#"{ token_bucket = { rate_per_s = 1000, burst = 1000 } }"#,
        r#"{ server = { workers = 1 } }"#,
        r#""optimistic_item""#,
    ];
    let calls = [
        (r#"{ call = "db" }"#, 1),
        (r#"{ call = "db", retry = { attempts = 3 } }"#, 1),
        (
            r#"{ fan_out = { call = "db", count = 5, join = "all" } }"#,
            5,
        ),
    ];
    for capacity in capacities {
        for (call, per_request) in calls {
            if capacity.contains("optimistic") && per_request > 1 {
                continue; // branches writing one item conflict: not every attempt succeeds
            }
            for collapse in [true, false] {
                let run = |hops: &str| {
                    let s = scenario::parse(&behind_hops(capacity, hops, call), "hops.toml")
                        .unwrap_or_else(|e| panic!("{e}"));
                    let mut sim = Simulation::new(s).unwrap_or_else(|e| panic!("{e}"));
                    sim.set_collapse_fan_outs(collapse);
                    sim.run_control()
                };
                let (with, without) = (run(hops), run(""));
                let what = format!("{capacity}, {call}, collapsed {collapse}");
                assert_eq!(with.succeeded, 20, "{what}");
                assert_eq!(with.attempts, 20 * per_request, "{what}");
                let want = (20 * per_request) as f64 * 10e6;
                let (got, base) = (dependency_work_ns(&with), dependency_work_ns(&without));
                assert!((base - want).abs() < 1.0, "{what} without hops: {base} ns");
                assert!((got - want).abs() < 1.0, "{what} with hops: {got} ns");
            }
        }
    }
}

#[test]
fn calls_a_partition_holds_are_in_flight_when_they_land() {
    // 10 requests a second; a partition holds the calls to `db` from 2 s to 5 s and delivers
    // the 30 it held when it heals: the dependency works on nothing in between, then on
    // 30 + 10 calls of 10 ms in the interval from 5 s (0.4 on average).
    let text = r#"
[simulation]
seed = 2
duration = "10s"
[load]
target = "api"
kind = "constant"
rate_per_s = 10
[timeline]
interval = "1s"
[[function]]
name = "api"
cold_start = "0ms"
timeout = "30s"
handler = [{ call = "db" }]
[[dependency]]
name = "db"
latency = "10ms"
[[fault]]
name = "cut"
fault = "partition"
probability = 1.0
match = { service = "db" }
window = { start = "2s", duration = "3s" }
"#;
    let s = scenario::parse(text, "partition.toml").unwrap_or_else(|e| panic!("{e}"));
    let m = Simulation::new(s).expect("compiles").run_experiment();
    assert_eq!(m.partition_held, 30);
    let in_flight = &m.timeline.dependencies[0].in_flight_mean;
    assert_eq!(&in_flight[2..5], &[0.0, 0.0, 0.0], "{in_flight:?}");
    assert!((in_flight[5] - 0.4).abs() < 1e-9, "{in_flight:?}");
    assert!((dependency_work_ns(&m) - m.requests as f64 * 10e6).abs() < 1.0);
}
