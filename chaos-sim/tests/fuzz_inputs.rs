//! A fuzz target that stays: structure-aware mutations of the bundled scenarios, fault plans
//! and timeout chains, driven by proptest from a fixed seed, run the whole path from text to
//! report (a scenario), to decisions (a plan), or to findings (a timeout chain).
//!
//! Each case must end in one of the three outcomes the `chaos` command maps to exit codes:
//! an input error (2), or a report whose verdict holds (0) or fails (1). A panic fails the
//! case (and proptest shrinks it to the fewest mutations); so does a case that does not end
//! within [`CASE_LIMIT`], which is a liveness backstop for an infinite loop, not a speed
//! assertion: the simulator's own work budget is what must stop a runaway input.
//!
//! Beside the random campaign, a sweep puts each of a few hostile values in every place of
//! every bundled scenario, one at a time.
//!
//! `FUZZ_CASES=20000 cargo test --release -p chaos-sim --test fuzz_inputs` runs a longer
//! campaign; `FUZZ_SEED=N` starts from another seed.

use chaos_sim::{Simulation, scenario};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::sync::mpsc;
use std::time::Duration;

/// How long one case may take before it is called a hang (debug build, loaded machine).
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// Events one run may process: 24 times what the largest shortened bundled scenario needs
/// (checkout: 12,419 per run).
const WORK_BUDGET: u64 = 300_000;

const SCENARIOS: [&str; 4] = [
    "checkout.toml",
    "retry_storm.toml",
    "region_outage.toml",
    "region_failover_latency.toml",
];

/// Values that have broken parsers and simulators before: zeros, negatives, the edges of
/// integer and float ranges, non-numbers, and durations from nothing to centuries.
const NUMBERS: [&str; 16] = [
    "0",
    "-1",
    "1",
    "65535",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "1e308",
    "1e-308",
    "nan",
    "inf",
    "-inf",
    "0.999999999999",
    "100000",
];
const DURATIONS: [&str; 10] = [
    "\"0s\"",
    "\"1ns\"",
    "\"-1s\"",
    "\"584y\"",
    "\"18446744073709551615ns\"",
    "\"100000h\"",
    "\"1\"",
    "\"\"",
    "\"5 parsecs\"",
    "\"1ms\"",
];
/// Fields a scenario may not have, each inserted right after its table's header.
const EXTRA_LINES: [(&str, &str); 10] = [
    ("[load]", "bursts = [{ at = \"1s\", count = 1000000 }]"),
    ("[load]", "bursts = [{ at = \"1s\", count = 50 }]"),
    ("[simulation]", "requests = 0"),
    ("[[function]]", "keep_alive = \"0s\""),
    ("[[function]]", "reserved_concurrency = 0"),
    ("[[function]]", "memory_mb = 10240"),
    ("[hypothesis]", "cost_usd = \"<= 0.001\""),
    ("[hypothesis]", "latency_p50 = \"<= 1ms\""),
    ("[[fault]]", "every = 2"),
    ("[[dependency]]", "region = \"eu-west-1\""),
];

/// One edit of the scenario text; positions are taken modulo the text's current size.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the n-th run of digits with an interesting number.
    Number { nth: usize, value: usize },
    /// Replace the n-th quoted duration-looking string.
    Duration { nth: usize, value: usize },
    /// Delete a line.
    DeleteLine { line: usize },
    /// Duplicate a line (repeated keys, repeated tables).
    DuplicateLine { line: usize },
    /// Insert an extra field after the header of the n-th table it belongs in.
    InsertLine { nth: usize, value: usize },
    /// Overwrite one byte with a structural character.
    Byte { at: usize, value: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 0..NUMBERS.len()).prop_map(|(nth, value)| Mutation::Number { nth, value }),
        2 => (any::<usize>(), 0..DURATIONS.len()).prop_map(|(nth, value)| Mutation::Duration { nth, value }),
        1 => any::<usize>().prop_map(|line| Mutation::DeleteLine { line }),
        1 => any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        2 => (any::<usize>(), 0..EXTRA_LINES.len()).prop_map(|(nth, value)| Mutation::InsertLine { nth, value }),
        1 => (any::<usize>(), prop::sample::select(b"\"'[]{}=,.#\n0-".to_vec()))
            .prop_map(|(at, value)| Mutation::Byte { at, value }),
    ]
}

/// The byte ranges of every maximal run of ASCII digits.
fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// The byte ranges of quoted strings that start with a digit (durations, percentages, bounds).
fn quoted_values(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'"'
            && bytes[i + 1].is_ascii_digit()
            && let Some(len) = text[i + 1..].find(['"', '\n'])
        {
            ranges.push((i, i + 1 + len + 1));
            i += len + 2;
            continue;
        }
        i += 1;
    }
    ranges
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    match *mutation {
        Mutation::Number { nth, value } => {
            replace_nth(text, &digit_runs(text), nth, NUMBERS[value])
        }
        Mutation::Duration { nth, value } => {
            replace_nth(text, &quoted_values(text), nth, DURATIONS[value])
        }
        Mutation::DeleteLine { line } if !lines.is_empty() => {
            lines.remove(line % lines.len());
            lines.join("\n")
        }
        Mutation::DuplicateLine { line } if !lines.is_empty() => {
            let at = line % lines.len();
            lines.insert(at, lines[at]);
            lines.join("\n")
        }
        Mutation::InsertLine { nth, value } => {
            let (header, line) = EXTRA_LINES[value];
            let headers: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == header).collect();
            if headers.is_empty() {
                return text.to_owned();
            }
            lines.insert(headers[nth % headers.len()] + 1, line);
            lines.join("\n")
        }
        Mutation::Byte { at, value } if !text.is_empty() => {
            let mut bytes = text.as_bytes().to_vec();
            let at = at % bytes.len();
            bytes[at] = value;
            // Overwriting part of a multi-byte character is not a text file; skip it.
            String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
        }
        _ => text.to_owned(),
    }
}

fn replace_nth(text: &str, ranges: &[(usize, usize)], nth: usize, with: &str) -> String {
    if ranges.is_empty() {
        return text.to_owned();
    }
    let (start, end) = ranges[nth % ranges.len()];
    format!("{}{}{}", &text[..start], with, &text[end..])
}

/// A bundled scenario, shortened so a debug build runs a case in milliseconds.
fn base_scenario(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("bundled scenario");
    let shortened = text
        .replace("duration = \"5m\"\n", "duration = \"3s\"\n")
        .replace("duration = \"10m\"\n", "duration = \"3s\"\n");
    assert_ne!(
        shortened, text,
        "{name}: the run length to shorten has moved"
    );
    shortened
}

/// The exit code the `chaos` command would give, computed within [`CASE_LIMIT`].
fn outcome(text: String) -> Result<i32, String> {
    bounded(move || {
        let scenario = match scenario::parse(&text, "fuzz.toml") {
            // A small work budget: a mutation that makes the run longer meets it (exit 2).
            Ok(mut scenario) => {
                let budget = scenario.scenario().max_events.min(WORK_BUDGET);
                scenario.set_max_events(budget);
                scenario
            }
            Err(error) => {
                // Rendering the error is part of the path (a caret line once panicked).
                let _ = error.to_string();
                return 2;
            }
        };
        match Simulation::new(scenario) {
            Ok(simulation) => simulation.run().exit_code(),
            Err(error) => {
                let _ = error.to_string();
                2
            }
        }
    })
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn mutated_scenarios_end_in_an_exit_code() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let bases: Vec<String> = SCENARIOS.iter().map(|name| base_scenario(name)).collect();
    let by_code: [AtomicU64; 3] = Default::default();
    fuzz("scenarios", &bases, 300, |text| match outcome(text) {
        Ok(code @ 0..=2) => {
            by_code[code as usize].fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Ok(code) => Err(format!("exit code {code}")),
        Err(why) => Err(why),
    });
    let [holds, fails, invalid] = by_code.map(AtomicU64::into_inner);
    eprintln!("exit 0: {holds}, exit 1: {fails}, exit 2: {invalid}");
    // A target whose cases are all input errors tests only the parser.
    assert!(
        holds + fails >= (holds + fails + invalid) / 4,
        "too few cases reach a report: {holds} + {fails} of {}",
        holds + fails + invalid
    );
}

fn example_text(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(path);
    std::fs::read_to_string(path).expect("bundled example")
}

/// Runs `case` on mutations of `base` from a fixed seed; `case` returns `Err` for a defect.
fn fuzz(
    name: &str,
    bases: &[String],
    default_cases: u64,
    case: impl Fn(String) -> Result<(), String>,
) {
    let cases = env_number("FUZZ_CASES", default_cases);
    let seed = env_number("FUZZ_SEED", 20_261_130) ^ chaos_core::advanced::hash_str(name);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = (0..bases.len(), prop::collection::vec(mutation(), 1..3));
    let result = runner.run(&strategy, |(base, mutations)| {
        let mut text = bases[base].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        case(text.clone())
            .map_err(|why| TestCaseError::fail(format!("{why}\n--- input ---\n{text}")))
    });
    if let Err(failure) = result {
        panic!("{name}: {failure}");
    }
}

/// Runs `body` in a thread that must end within [`CASE_LIMIT`] without panicking.
fn bounded<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("fuzz-case".into())
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
        })
        .map_err(|e| e.to_string())?;
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        )),
        Err(_) => Err(format!("did not end within {CASE_LIMIT:?}")),
    }
}

#[test]
fn mutated_plans_compile_or_fail_cleanly_and_decide_without_panicking() {
    use chaos_core::{Call, Injector, Plan};
    let bases = vec![example_text("plans/checkout.toml")];
    fuzz("plans", &bases, 400, |text| {
        bounded(move || {
            let plan = match Plan::from_toml_str(&text) {
                Ok(plan) => plan,
                Err(error) => {
                    let _ = error.to_string();
                    return;
                }
            };
            let Ok(injector) = Injector::new(plan) else {
                return;
            };
            injector.enable();
            for key in 0..64u64 {
                for (service, operation) in
                    [("orders", "PutItem"), ("orders", "GetItem"), ("stock", "")]
                {
                    let call = Call::new(key, "checkout/orders")
                        .service(service)
                        .operation(operation)
                        .attempt(u32::try_from(key % 4).unwrap_or(0));
                    let _ = injector.decide(&call);
                }
            }
        })
    });
}

#[test]
fn mutated_timeout_chains_check_or_fail_cleanly() {
    let bases = vec![example_text("timeouts/checkout_chain.toml")];
    fuzz("timeouts", &bases, 400, |text| {
        bounded(move || {
            if let Ok(chain) = toml::from_str::<chaos_core::timeout::Hop>(&text) {
                for finding in chaos_core::timeout::check(&chain) {
                    let _ = finding.to_string();
                }
            }
        })
    });
}

#[test]
fn the_mutations_reach_the_simulator() {
    // A fuzz target whose every case is a parse error tests only the parser: check that the
    // unmutated bases run, and that one number mutation of each still parses.
    for name in SCENARIOS {
        let text = base_scenario(name);
        assert!(matches!(outcome(text.clone()), Ok(0 | 1)), "{name}");
        let nudged = apply(&text, &Mutation::Number { nth: 0, value: 15 });
        assert_ne!(nudged, text);
    }
}

/// Byte ranges of the numbers and the quoted durations of `text`, comments excluded.
fn targets(text: &str) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.split('#').next().unwrap_or("");
        let bytes = code.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                let end = code[i + 1..].find('"').map_or(bytes.len(), |e| i + 2 + e);
                let inner = &code[i + 1..end.saturating_sub(1).max(i + 1)];
                if inner.starts_with(|c: char| c.is_ascii_digit()) {
                    out.push((offset + i, offset + end, true));
                }
                i = end;
            } else if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            {
                let mut end = i;
                while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
                    end += 1;
                }
                out.push((offset + i, offset + end, false));
                i = end;
            } else {
                i += 1;
            }
        }
        offset += line.len();
    }
    out
}

/// The sweep's values: a subset of [`NUMBERS`] and [`DURATIONS`], so every place of every
/// scenario gets each of them in a few seconds.
const SWEEP_NUMBERS: [&str; 7] = [
    "0",
    "-1",
    "nan",
    "inf",
    "4294967296",
    "18446744073709551615",
    "1e308",
];
const SWEEP_DURATIONS: [&str; 4] = ["\"0s\"", "\"1ns\"", "\"584y\"", "\"-1s\""];

#[test]
fn every_hostile_value_in_every_place_ends_in_an_exit_code() {
    let (mut ran, mut rejected) = (0, 0);
    for name in SCENARIOS {
        let text = base_scenario(name);
        for (start, end, is_duration) in targets(&text) {
            let values: &[&str] = if is_duration {
                &SWEEP_DURATIONS
            } else {
                &SWEEP_NUMBERS
            };
            for value in values {
                let mutated = format!("{}{value}{}", &text[..start], &text[end..]);
                match outcome(mutated) {
                    Ok(2) => rejected += 1,
                    Ok(0 | 1) => ran += 1,
                    other => panic!("{name}: {value} at byte {start}: {other:?}"),
                }
            }
        }
    }
    // Both paths are exercised: values the checks reject, and values that run.
    assert!(ran > 20 && rejected > 20, "ran {ran}, rejected {rejected}");
}
