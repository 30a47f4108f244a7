use std::path::PathBuf;

use chaos_core::Call;

use super::*;

const GOOD_TOML: &str = r#"
seed = 9
[[rules]]
name = "throttled-reads"
fault = { error = "throttle" }
match = { service = "dynamodb", operation = "GetItem" }
probability = 1.0
"#;

const GOOD_JSON: &str = r#"{"seed": 9, "rules": [{"name": "throttled-reads",
  "fault": {"error": "throttle"}, "match": {"service": "dynamodb", "operation": "GetItem"},
  "probability": 1.0}]}"#;

/// A file under the system's temporary directory, removed when dropped.
struct TempPlan(PathBuf);

impl TempPlan {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("chaos-aws-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("temp file");
        Self(path)
    }
    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).expect("temp file");
    }
}

impl Drop for TempPlan {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn injector() -> Injector {
    let mut builder = Injector::builder();
    builder.ignore_env();
    builder.build().expect("an empty injector builds")
}

fn throttles_get_item(injector: &Injector) -> bool {
    let call = Call::new(1, "aws").service("dynamodb").operation("GetItem");
    !injector.decide(&call).is_pass()
}

#[tokio::test(start_paused = true)]
async fn file_plans_load_in_toml_and_json() {
    for (name, text) in [("toml", GOOD_TOML), ("json", GOOD_JSON)] {
        let file = TempPlan::new(&format!("load.{name}"), text);
        let live = LiveConfig::new(ConfigSource::file(&file.0), injector());
        assert!(!throttles_get_item(live.injector()), "nothing loaded yet");
        assert_eq!(
            live.refresh().await,
            RefreshOutcome::Loaded { rules: 1 },
            "{name}"
        );
        assert!(throttles_get_item(live.injector()), "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn plans_naming_unknown_services_are_refused() {
    let file = TempPlan::new(
        "unknown.toml",
        &GOOD_TOML.replace("\"dynamodb\"", "\"dynamo\""),
    );
    let live = LiveConfig::new(ConfigSource::file(&file.0), injector());
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("an unknown service must not load");
    };
    assert!(
        reason.contains("\"dynamo\"") && reason.contains(&file.0.display().to_string()),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn environment_variables_missing_or_not_a_plan() {
    let live = LiveConfig::new(
        ConfigSource::env("CHAOS_AWS_TEST_NO_SUCH_VARIABLE"),
        injector(),
    );
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("an unset variable must not load");
    };
    assert!(
        reason.contains("environment variable CHAOS_AWS_TEST_NO_SUCH_VARIABLE"),
        "{reason}"
    );
    // Cargo sets CARGO_PKG_NAME for the test process: "chaos-aws" is no plan.
    let live = LiveConfig::new(ConfigSource::env("CARGO_PKG_NAME"), injector());
    assert!(matches!(
        live.refresh().await,
        RefreshOutcome::NoFaults { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn refreshes_run_in_the_background_once_the_ttl_passes() {
    let file = TempPlan::new("ttl.toml", GOOD_TOML);
    let live = LiveConfig::with_ttl(
        ConfigSource::file(&file.0),
        injector(),
        Duration::from_secs(60),
    );
    assert!(live.is_stale());
    // The hot path starts the fetch and returns; the plan arrives once the task has run.
    live.refresh_if_stale();
    assert!(!throttles_get_item(live.injector()));
    while live.is_stale() {
        tokio::task::yield_now().await;
    }
    assert!(throttles_get_item(live.injector()));

    // Within the TTL a changed file is not read; after it, it is.
    file.write("seed = 9\n");
    tokio::time::advance(Duration::from_secs(59)).await;
    live.refresh_if_stale();
    tokio::task::yield_now().await;
    assert!(throttles_get_item(live.injector()), "still cached");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(live.is_stale());
    live.refresh_if_stale();
    while live.is_stale() {
        tokio::task::yield_now().await;
    }
    assert!(
        !throttles_get_item(live.injector()),
        "the emptied plan is loaded"
    );
}

#[tokio::test(start_paused = true)]
async fn migrated_configurations_load_from_any_source() {
    // failure-lambda 1.x, as a team keeps it in its SSM parameter.
    let flags = r#"{"exception": {"enabled": true, "percentage": 100, "exception_msg": "boom"},
                    "diskspace": {"enabled": false}}"#;
    let file = TempPlan::new("failure-lambda.json", flags);
    let live = LiveConfig::new(ConfigSource::file(&file.0), injector());
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 1 });
    assert!(!live.injector().decide(&Call::new(3, "orders")).is_pass());

    // A bad value: no faults, and the reason names the format and the field.
    file.write(r#"{"exception": {"enabled": true, "percentage": 250}}"#);
    let RefreshOutcome::NoFaults { reason } = live.refresh().await else {
        panic!("a bad percentage must not load");
    };
    assert!(
        reason.contains("failure-lambda 1.x") && reason.contains("exception.percentage"),
        "{reason}"
    );
    assert!(live.injector().decide(&Call::new(3, "orders")).is_pass());

    // chaos_lambda's parameter, disabled: an empty plan.
    file.write(r#"{"is_enabled": false, "fault_type": "latency", "delay": 400, "rate": 1}"#);
    assert_eq!(live.refresh().await, RefreshOutcome::Loaded { rules: 0 });
}
