//! Golden reports: the JSON report of every bundled scenario, at its own seed and at two more,
//! pinned byte for byte in `tests/golden/`, in the default engine mode and with one event per
//! fan-out branch (`set_collapse_fan_outs(false)`), plus `tests/golden/scenarios/fan_outs.toml`,
//! a scenario made to exercise the per-branch paths. Scenarios that fan out only to
//! invocations (`ONE_FILE`) run one event per branch in both modes, so both modes must match
//! the same file; those that fan out to plain calls (`fan_outs`, `tail_at_scale`) have a
//! `.per-branch` file, which differs only in the engine's own work (tested for `fan_outs`).
//! A refactoring must leave them unchanged; a change that means to move the numbers re-pins
//! them with `CHAOS_GOLDEN_UPDATE=1 cargo test -p chaos-sim --test golden_reports` and says
//! why in its commit.

use chaos_sim::{Simulation, scenario};
use std::path::{Path, PathBuf};

/// Every scenario in `examples/scenarios/`.
const BUNDLED: [&str; 8] = [
    "backoff_jitter",
    "checkout",
    "hedging",
    "metastable",
    "region_failover_latency",
    "region_outage",
    "retry_storm",
    "tail_at_scale",
];
/// The bundled scenarios that fan out only to invocations, or not at all: both engine modes
/// match one file.
/// The others (and `fan_outs`) fan out to plain calls and have a `.per-branch` file.
const ONE_FILE: [&str; 7] = [
    "backoff_jitter",
    "checkout",
    "hedging",
    "metastable",
    "region_failover_latency",
    "region_outage",
    "retry_storm",
];
/// Seeds run besides each scenario's own (`None`).
const SEEDS: [Option<u64>; 3] = [None, Some(1), Some(20_260_101)];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How fan-outs run: `Collapsed` is the default engine, `PerBranch` one event per branch.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Collapsed,
    PerBranch,
}

fn scenario_path(name: &str) -> PathBuf {
    let bundled = root()
        .join("../examples/scenarios")
        .join(format!("{name}.toml"));
    if bundled.exists() {
        bundled
    } else {
        root()
            .join("tests/golden/scenarios")
            .join(format!("{name}.toml"))
    }
}

fn report(name: &str, seed: Option<u64>, mode: Mode) -> String {
    let mut scenario = scenario::load(&scenario_path(name)).expect("scenario loads");
    if let Some(seed) = seed {
        scenario.set_seed(seed);
    }
    let mut simulation = Simulation::new(scenario).expect("scenario compiles");
    simulation.set_collapse_fan_outs(mode == Mode::Collapsed);
    let mut json = simulation.run().to_json();
    json.push('\n');
    json
}

fn golden_path(name: &str, seed: Option<u64>, mode: Mode) -> PathBuf {
    let seed = seed.map_or_else(|| "own".to_string(), |s| s.to_string());
    let mode = match mode {
        Mode::PerBranch if !ONE_FILE.contains(&name) => ".per-branch",
        _ => "",
    };
    root()
        .join("tests/golden")
        .join(format!("{name}.seed-{seed}{mode}.json"))
}

fn check(name: &str) {
    check_mode(name, Mode::Collapsed);
    check_mode(name, Mode::PerBranch);
}

fn check_mode(name: &str, mode: Mode) {
    let update = std::env::var_os("CHAOS_GOLDEN_UPDATE").is_some();
    for seed in SEEDS {
        let got = report(name, seed, mode);
        let path = golden_path(name, seed, mode);
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
    assert_eq!(bundled, BUNDLED);
}

#[test]
fn backoff_jitter_report_is_pinned() {
    check("backoff_jitter");
}

#[test]
fn hedging_report_is_pinned() {
    check("hedging");
}

#[test]
fn checkout_report_is_pinned() {
    check("checkout");
}

#[test]
fn metastable_report_is_pinned() {
    check("metastable");
}

#[test]
fn region_failover_latency_report_is_pinned() {
    check("region_failover_latency");
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
fn tail_at_scale_report_is_pinned() {
    check("tail_at_scale");
}

#[test]
fn fan_outs_report_is_pinned() {
    check("fan_outs");
}

#[test]
fn the_engine_modes_differ_only_in_the_event_count() {
    // Otherwise a per-branch golden could pin a per-branch bug. Only measures of the engine's
    // own work may differ: events, the timers it cancelled, and when its last event (a late
    // per-branch answer nobody waits for) was processed; when the work ended may not.
    const ENGINE_WORK: [&str; 3] = [
        "\"events\"",
        "\"cancelled_timers\"",
        "\"last_event_seconds\"",
    ];
    let strip = |json: String| {
        json.lines()
            .filter(|l| !ENGINE_WORK.iter().any(|f| l.trim_start().starts_with(f)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for seed in SEEDS {
        let collapsed = report("fan_outs", seed, Mode::Collapsed);
        let per_branch = report("fan_outs", seed, Mode::PerBranch);
        assert_ne!(collapsed, per_branch, "per-branch runs more events");
        assert_eq!(strip(collapsed), strip(per_branch));
    }
}

#[test]
fn a_seed_sweep_reuses_one_compiled_simulation() {
    let path = root().join("../examples/scenarios/region_outage.toml");
    let scenario = scenario::load(&path).expect("bundled scenario loads");
    let mut sweep = Simulation::new(scenario).expect("compiles");
    sweep.set_seed(1);
    let mut json = sweep.run().to_json();
    json.push('\n');
    assert_eq!(json, report("region_outage", Some(1), Mode::Collapsed));
}
