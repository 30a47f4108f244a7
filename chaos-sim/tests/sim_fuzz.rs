//! A bounded, deterministic fuzz of the bundled scenarios: every number and duration in them is
//! replaced in turn by hostile values (zero, negative, huge, NaN, infinite, past 584 years).
//! Each mutant must parse to a located error or run to a report, within a small work budget,
//! without a panic or a hang, with an exit code of 0, 1 or 2.

use chaos_sim::{Simulation, scenario};
use std::path::PathBuf;

const NUMBERS: [&str; 7] = [
    "0",
    "-1",
    "nan",
    "inf",
    "4294967296",
    "18446744073709551615",
    "1e300",
];
const DURATIONS: [&str; 4] = ["\"0s\"", "\"1ns\"", "\"500y\"", "\"-1s\""];

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios")
        .join(name);
    std::fs::read_to_string(path).expect("example")
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

#[test]
fn hostile_values_in_the_bundled_scenarios_never_crash_or_hang() {
    let mut ran = 0;
    let mut rejected = 0;
    for name in ["checkout.toml", "region_outage.toml", "retry_storm.toml"] {
        let text = example(name);
        for (start, end, is_duration) in targets(&text) {
            let values: &[&str] = if is_duration { &DURATIONS } else { &NUMBERS };
            for value in values {
                let mutated = format!("{}{value}{}", &text[..start], &text[end..]);
                match scenario::parse(&mutated, name) {
                    Err(e) => {
                        assert!(e.line > 0 || !e.message.is_empty(), "{e}");
                        rejected += 1;
                    }
                    Ok(mut checked) => {
                        checked.set_max_events(20_000);
                        let report = match Simulation::new(checked) {
                            Ok(sim) => sim.run(),
                            Err(_) => {
                                rejected += 1;
                                continue;
                            }
                        };
                        assert!((0..=2).contains(&report.exit_code()));
                        ran += 1;
                    }
                }
            }
        }
    }
    eprintln!("fuzz: {ran} mutants ran, {rejected} rejected");
    assert!(ran > 20 && rejected > 20, "ran {ran}, rejected {rejected}");
}
