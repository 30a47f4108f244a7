//! Scenario files: the examples parse and run deterministically; bad input gets a located
//! error with a suggestion, never a panic.

use chaos_sim::{Simulation, scenario};
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios")
        .join(name)
}

fn example_text(name: &str) -> String {
    std::fs::read_to_string(example(name)).expect("example exists")
}

#[test]
fn every_example_parses_and_compiles() {
    for name in ["checkout.toml", "retry_storm.toml", "region_outage.toml"] {
        let s = scenario::load(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        Simulation::new(s).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn same_seed_gives_byte_identical_json_and_another_seed_differs() {
    let s = scenario::load(&example("checkout.toml")).expect("valid");
    let first = Simulation::new(s.clone()).expect("ok").run().to_json();
    let second = Simulation::new(s.clone()).expect("ok").run().to_json();
    assert_eq!(first, second);
    let mut other = s;
    other.set_seed(other.seed + 1);
    let third = Simulation::new(other).expect("ok").run().to_json();
    assert_ne!(first, third);
}

#[test]
fn an_element_nobody_calls_shifts_no_draw() {
    // Streams are keyed by element name and call, not by draw order or element index.
    let text = example_text("region_outage.toml");
    let with_extra = format!(
        "{text}\n[[dependency]]\nname = \"unused\"\nlatency = {{ exponential = {{ mean = \"5ms\" }} }}\n"
    );
    let a = Simulation::new(scenario::parse(&text, "a.toml").expect("valid"))
        .expect("ok")
        .run()
        .to_json();
    let b = Simulation::new(scenario::parse(&with_extra, "b.toml").expect("valid"))
        .expect("ok")
        .run()
        .to_json();
    // The only difference: the unused dependency's (empty) series in each run's timeline.
    let mut b: serde_json::Value = serde_json::from_str(&b).expect("JSON");
    for run in ["control", "experiment"] {
        let deps = b[run]["timeline"]["dependencies"]
            .as_array_mut()
            .expect("series per dependency");
        let unused = deps.pop().expect("the unused dependency's series");
        assert_eq!(unused["name"], "unused");
        assert!(
            unused["in_flight_mean"]
                .as_array()
                .is_some_and(|v| v.iter().all(|x| x == 0.0))
        );
    }
    let a: serde_json::Value = serde_json::from_str(&a).expect("JSON");
    assert_eq!(a, b);
}

#[test]
fn control_and_experiment_share_random_numbers() {
    // A fault that never fires leaves the experiment identical to the control run.
    let text = example_text("checkout.toml").replace("probability = 0.2", "probability = 0.0");
    let report = Simulation::new(scenario::parse(&text, "c.toml").expect("valid"))
        .expect("ok")
        .run();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["control"], json["experiment"]);
    assert_eq!(json["schema_version"], chaos_sim::SCHEMA_VERSION);
}

#[test]
fn retry_storm_is_metastable_and_dropping_abandoned_work_recovers() {
    let text = example_text("retry_storm.toml");
    let storm = Simulation::new(scenario::parse(&text, "storm.toml").expect("valid"))
        .expect("ok")
        .run();
    assert_eq!(storm.control.success_rate, 1.0);
    // The trigger lasts 30 s of 600 s; a system that recovered would lose a few percent.
    assert!(
        storm.experiment.success_rate < 0.5,
        "{}",
        storm.experiment.success_rate
    );
    let fixed = text.replace("abandoned = \"serve\"", "abandoned = \"drop\"");
    let recovered = Simulation::new(scenario::parse(&fixed, "fixed.toml").expect("valid"))
        .expect("ok")
        .run();
    assert!(
        recovered.experiment.success_rate > 0.9,
        "{}",
        recovered.experiment.success_rate
    );
}

#[test]
fn region_failover_keeps_the_steady_state() {
    let report = Simulation::new(scenario::load(&example("region_outage.toml")).expect("valid"))
        .expect("ok")
        .run();
    assert_eq!(report.exit_code(), 0);
    assert!(report.experiment.failovers > 0);
    let without = example_text("region_outage.toml").replace("failover = \"us-west-2\" ", "");
    let report = Simulation::new(scenario::parse(&without, "r.toml").expect("valid"))
        .expect("ok")
        .run();
    assert_eq!(
        report.exit_code(),
        1,
        "without failover the outage fails requests"
    );
}

fn parse_error(text: &str) -> chaos_sim::ScenarioError {
    match scenario::parse(text, "bad.toml") {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

const SMALL: &str = r#"[simulation]
duration = "1m"

[load]
target = "api"
rate_per_s = 10

[[function]]
name = "api"
handler = [{ call = "orders", timeout = "1s" }]

[[dependency]]
name = "orders"
latency = "5ms"
"#;

#[test]
fn unknown_field_names_line_column_field_and_suggestion() {
    let text = SMALL.replace("name = \"api\"", "name = \"api\"\nreserved_concurency = 5");
    let e = parse_error(&text);
    assert_eq!((e.file.as_str(), e.line, e.column), ("bad.toml", 10, 1));
    assert_eq!(e.field, "function.reserved_concurency");
    assert!(
        e.message.contains("did you mean `reserved_concurrency`"),
        "{}",
        e.message
    );
}

#[test]
fn bad_duration_unit_is_located() {
    let e = parse_error(&SMALL.replace("timeout = \"1s\"", "timeout = \"1 sec0\""));
    assert_eq!(e.line, 10);
    assert_eq!(e.field, "function.timeout");
    assert!(e.message.contains("invalid duration"), "{}", e.message);
    assert!(
        e.message.contains("250ms"),
        "says what is expected: {}",
        e.message
    );
}

#[test]
fn undefined_dependency_suggests_the_close_name() {
    let e = parse_error(&SMALL.replace("call = \"orders\"", "call = \"order\""));
    assert_eq!(e.line, 10);
    assert_eq!(e.column, 21);
    assert!(e.field.ends_with(".call"), "{}", e.field);
    assert!(e.message.contains("did you mean `orders`"), "{}", e.message);
}

#[test]
fn invocation_cycle_is_an_error() {
    let text = format!("{SMALL}\n[[function]]\nname = \"b\"\nhandler = [{{ invoke = \"api\" }}]\n")
        .replace(
            "handler = [{ call = \"orders\", timeout = \"1s\" }]",
            "handler = [{ invoke = \"b\" }]",
        );
    let e = parse_error(&text);
    assert!(e.message.contains("invocation cycle"), "{}", e.message);
    assert!(e.message.contains("api -> b -> api") || e.message.contains("b -> api -> b"));
    assert!(e.line > 1);
}

#[test]
fn unknown_variant_and_bad_hypothesis_are_explained() {
    let e = parse_error(&SMALL.replace("rate_per_s = 10", "rate_per_s = 10\nkind = \"poison\""));
    assert!(
        e.message.contains("did you mean `poisson`"),
        "{}",
        e.message
    );
    let e = parse_error(&format!(
        "{SMALL}\n[hypothesis]\nsucess_rate = \">= 99%\"\n"
    ));
    assert!(
        e.message.contains("did you mean `success_rate`"),
        "{}",
        e.message
    );
    let e = parse_error(&format!(
        "{SMALL}\n[hypothesis]\nsuccess_rate = \"<= 99%\"\n"
    ));
    assert!(e.message.contains("only be `>=`"), "{}", e.message);
}

#[test]
fn mutated_files_never_panic() {
    // Deterministic mutations of a real example: delete or replace one byte at many places.
    let text = example_text("checkout.toml");
    let bytes = text.as_bytes();
    for i in (0..bytes.len()).step_by(5) {
        for variant in 0..3u8 {
            let mut mutated = bytes.to_vec();
            match variant {
                0 => {
                    mutated.remove(i);
                }
                1 => mutated[i] = b'"',
                _ => mutated[i] = b'9',
            }
            let Ok(text) = String::from_utf8(mutated) else {
                continue;
            };
            if let Ok(s) = scenario::parse(&text, "m.toml") {
                let _ = Simulation::new(s);
            }
        }
    }
}

#[test]
fn closed_loop_that_could_spin_at_one_instant_is_rejected() {
    // Zero think time, zero latency, bounded only by duration: virtual time would never move.
    let spinning = SMALL
        .replace("rate_per_s = 10", "kind = \"closed\"\nclients = 3")
        .replace("latency = \"5ms\"", "latency = \"0s\"");
    let e = parse_error(&spinning);
    assert_eq!(e.field, "load.think_time");
    assert!(e.to_string().contains("requests"), "{e}");
    // Bounded by a request count, the same loop is fine.
    let bounded = spinning.replace("duration = \"1m\"", "requests = 50");
    let report = chaos_sim::Simulation::new(scenario::parse(&bounded, "ok.toml").expect("valid"))
        .expect("compiles")
        .run();
    assert_eq!(report.control.requests, 50);
}

#[test]
fn inputs_that_would_stop_time_or_exhaust_memory_are_rejected() {
    let cases = [
        // The gap between arrivals would round to 0 ns: time would stop.
        (SMALL.replace("rate_per_s = 10", "rate_per_s = 1e15"), "load.rate_per_s"),
        // Every burst request is created at one instant.
        (
            SMALL.replace("rate_per_s = 10", "rate_per_s = 10\nbursts = [{ at = \"1s\", count = 4000000000 }]"),
            "load.bursts.count",
        ),
        // Nested fan-outs multiply: 10^10 branches per invocation.
        (
            SMALL.replace(
                "handler = [{ call = \"orders\", timeout = \"1s\" }]",
                "handler = [{ fan_out = { count = 100000, fan_out = { call = \"orders\", count = 100000 } } }]",
            ),
            "fan_out.count",
        ),
    ];
    for (text, field) in cases {
        let e = parse_error(&text);
        assert!(e.field.contains(field), "{field}: got {} ({e})", e.field);
    }
}

#[test]
fn fields_of_the_other_load_kind_are_rejected_not_ignored() {
    let closed_with_steps = SMALL.replace(
        "rate_per_s = 10",
        "kind = \"closed\"\nclients = 3\nthink_time = \"1s\"\nsteps = [{ at = \"1s\", rate_per_s = 5 }]",
    );
    assert_eq!(parse_error(&closed_with_steps).field, "load.steps");
    let open_with_spread =
        SMALL.replace("rate_per_s = 10", "rate_per_s = 10\nstart_spread = \"1s\"");
    assert_eq!(parse_error(&open_with_spread).field, "load.clients");
}

#[test]
fn a_latency_bound_fails_when_nothing_succeeded() {
    // Reserved concurrency 0 throttles every request: there is no latency to measure, and a
    // latency bound must not hold vacuously at 0 ms.
    let text = format!(
        "{}\n[hypothesis]\nlatency_p99 = \"<= 1ms\"\n",
        SMALL.replace("name = \"api\"", "name = \"api\"\nreserved_concurrency = 0")
    );
    let report = chaos_sim::Simulation::new(scenario::parse(&text, "zero.toml").expect("valid"))
        .expect("compiles")
        .run();
    assert_eq!(report.control.succeeded, 0);
    assert_eq!(report.exit_code(), 1);
    assert!(
        report.to_json().contains("\"control\": null"),
        "{}",
        report.to_json()
    );
    assert!(
        report.to_table().contains("no successful request"),
        "{}",
        report.to_table()
    );
}
