//! The bundled retry storm (examples/scenarios/retry_storm.toml) is metastable: the trigger
//! ends and goodput stays near zero. Each server-side mitigation of issue 11 item 5, written
//! as a user would in the scenario file, brings it back; a retry budget (item 4) stops the
//! retries, and then does as well as not retrying at all.

use chaos_sim::{Simulation, scenario};

fn storm() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios/retry_storm.toml");
    std::fs::read_to_string(path).expect("bundled scenario")
}

fn experiment(text: &str) -> chaos_sim::report::RunReport {
    let s = scenario::parse(text, "storm.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s).expect("valid").run().experiment
}

fn experiment_success_rate(text: &str) -> f64 {
    experiment(text).success_rate
}

const SERVER: &str =
    r#"capacity = { server = { workers = 1, discipline = "fifo", abandoned = "serve" } }"#;
const RETRY: &str =
    r#"retry = { attempts = 4, backoff = "exponential", base = "10ms", cap = "100ms" }"#;

#[test]
fn every_new_mitigation_recovers_from_the_retry_storm() {
    let text = storm();
    assert!(text.contains(SERVER) && text.contains(RETRY));
    let unmitigated = experiment_success_rate(&text);
    assert!(unmitigated < 0.5, "the storm is metastable: {unmitigated}");
    for (name, from, to) in [
        (
            "look-ahead shedding",
            SERVER,
            r#"capacity = { server = { workers = 1, abandoned = "drop_late" } }"#,
        ),
        (
            "controlled delay",
            SERVER,
            r#"capacity = { server = { workers = 1, queue_delay = { target = "5ms", interval = "100ms" } } }"#,
        ),
        (
            "adaptive LIFO",
            SERVER,
            r#"capacity = { server = { workers = 1, discipline = { adaptive_lifo = { standing_queue = 10 } } } }"#,
        ),
    ] {
        let rate = experiment_success_rate(&text.replace(from, to));
        // The trigger is 30 s of a 600 s run; a system that recovers loses at most what
        // failed during it and shortly after.
        assert!(rate > 0.9, "{name}: success rate {rate}");
    }
}

#[test]
fn a_retry_budget_stops_the_storm_s_retries_and_does_as_well_as_no_retries() {
    let text = storm();
    let storm = experiment(&text);
    let none = experiment(&text.replace(RETRY, r#"retry = "none""#));
    let throttled = experiment(&text.replace(
        RETRY,
        &format!("{RETRY}, retry_budget = {{ max_tokens = 10, token_ratio = 0.1 }}"),
    ));
    // gRPC's throttling allows retries only while fewer than 5 more failures than 50
    // successes have been seen: through the storm it denies nearly all of them.
    assert!(
        throttled.retries * 100 < storm.retries,
        "{} retries throttled, {} unthrottled",
        throttled.retries,
        storm.retries
    );
    assert!(throttled.retries_denied_by_budget > 10_000);
    // Without retries the server still serves the work abandoned during the trigger (this
    // scenario serves abandoned work), so recovery waits for that backlog to drain; the
    // throttled client reaches the same success rate as one that never retries.
    assert!(
        (throttled.success_rate - none.success_rate).abs() < 0.02,
        "throttled {}, no retries {}",
        throttled.success_rate,
        none.success_rate
    );
    assert!(throttled.success_rate > storm.success_rate + 0.2);
}
