//! Golden reports: the JSON report of every bundled scenario, at its own seed and at two more,
//! pinned byte for byte in `tests/golden/`. A refactoring must leave them unchanged; a change
//! that means to move the numbers re-pins them with `CHAOS_GOLDEN_UPDATE=1 cargo test -p
//! chaos-sim --test golden_reports` and says why in its commit.

use chaos_sim::{Simulation, scenario};
use std::path::{Path, PathBuf};

const SCENARIOS: [&str; 3] = ["checkout", "region_outage", "retry_storm"];
/// Seeds run besides each scenario's own (`None`).
const SEEDS: [Option<u64>; 3] = [None, Some(1), Some(20_260_101)];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn report(name: &str, seed: Option<u64>) -> String {
    let path = root()
        .join("../examples/scenarios")
        .join(format!("{name}.toml"));
    let mut scenario = scenario::load(&path).expect("bundled scenario loads");
    if let Some(seed) = seed {
        scenario.set_seed(seed);
    }
    let mut json = Simulation::new(scenario)
        .expect("bundled scenario compiles")
        .run()
        .to_json();
    json.push('\n');
    json
}

fn golden_path(name: &str, seed: Option<u64>) -> PathBuf {
    let seed = seed.map_or_else(|| "own".to_string(), |s| s.to_string());
    root()
        .join("tests/golden")
        .join(format!("{name}.seed-{seed}.json"))
}

fn check(name: &str) {
    let update = std::env::var_os("CHAOS_GOLDEN_UPDATE").is_some();
    for seed in SEEDS {
        let got = report(name, seed);
        let path = golden_path(name, seed);
        if update {
            std::fs::write(&path, &got).expect("write golden file");
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (pin with CHAOS_GOLDEN_UPDATE=1)", show(&path)));
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .map_or(0, |i| i + 1);
            panic!(
                "{} changed (first difference at line {line}); \
                 re-pin with CHAOS_GOLDEN_UPDATE=1 only if the change is meant",
                show(&path)
            );
        }
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn golden_names_cover_every_bundled_scenario() {
    let mut bundled: Vec<String> = std::fs::read_dir(root().join("../examples/scenarios"))
        .expect("scenario dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    bundled.sort();
    assert_eq!(bundled, SCENARIOS);
}

#[test]
fn checkout_report_is_pinned() {
    check("checkout");
}

#[test]
fn region_outage_report_is_pinned() {
    check("region_outage");
}

#[test]
fn retry_storm_report_is_pinned() {
    check("retry_storm");
}

#[test]
fn a_seed_sweep_reuses_one_compiled_simulation() {
    let path = root().join("../examples/scenarios/region_outage.toml");
    let scenario = scenario::load(&path).expect("bundled scenario loads");
    let mut sweep = Simulation::new(scenario).expect("compiles");
    sweep.set_seed(1);
    let mut json = sweep.run().to_json();
    json.push('\n');
    assert_eq!(json, report("region_outage", Some(1)));
}
