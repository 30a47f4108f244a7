//! Platform-level reporting (issue 11, item 6): a scenario without faults runs once.

use chaos_sim::{Simulation, scenario};

const NO_FAULTS: &str = r#"
[simulation]
seed = 11
requests = 2000
[load]
target = "api"
rate_per_s = 100
[[function]]
name = "api"
handler = [{ call = "db" }]
[[dependency]]
name = "db"
latency = { exponential = { mean = "100ms" } }
"#;

#[test]
fn a_scenario_without_faults_runs_once_and_says_so() {
    // No [[fault]] table: the experiment would repeat the control run event for event.
    let s = scenario::parse(NO_FAULTS, "platform.toml").unwrap_or_else(|e| panic!("{e}"));
    let sim = Simulation::new(s).unwrap_or_else(|e| panic!("{e}"));
    let report = sim.run();
    assert!(report.ran_once);
    assert_eq!(
        format!("{:?}", report.control),
        format!("{:?}", report.experiment)
    );
    assert_eq!(
        format!("{:?}", sim.run_experiment()),
        format!("{:?}", sim.run_control())
    );
    assert!(report.to_json().contains("\"ran_once\": true"));
    assert!(report.to_table().contains("no faults: ran once"));
}
