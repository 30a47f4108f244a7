//! The `chaos` binary: exit codes, JSON output, seed override.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios")
        .join(name)
}

fn chaos(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn exit_code_is_0_when_the_hypothesis_holds_and_1_when_it_fails() {
    let holds = chaos(&[
        "run",
        example("region_outage.toml").to_str().expect("utf-8"),
    ]);
    assert_eq!(holds.status.code(), Some(0));
    let table = String::from_utf8_lossy(&holds.stdout);
    assert!(table.contains("control") && table.contains("experiment"));
    assert!(table.contains("steady state holds"));
    let fails = chaos(&["run", example("checkout.toml").to_str().expect("utf-8")]);
    assert_eq!(fails.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fails.stdout).contains("FAILS"));
}

#[test]
fn invalid_input_exits_2_with_a_located_error() {
    let dir = std::env::temp_dir().join(format!("chaos-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.toml");
    let text = std::fs::read_to_string(example("checkout.toml"))
        .expect("example")
        .replace("duration = \"5m\"", "duration = \"5 parsecs\"");
    let line = 1 + text
        .lines()
        .position(|l| l.contains("5 parsecs"))
        .expect("the mutated line");
    std::fs::write(&bad, text).expect("write");
    let out = chaos(&["run", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("bad.toml:{line}:12")), "{err}");
    assert!(err.contains("simulation.duration"), "{err}");
    let missing = chaos(&["run", dir.join("missing.toml").to_str().expect("utf-8")]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(chaos(&["run"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_has_the_schema_version_and_seed_overrides() {
    let path = example("region_outage.toml");
    let path = path.to_str().expect("utf-8");
    let out = chaos(&["run", path, "--json", "--seed", "5"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["schema_version"], chaos_sim::SCHEMA_VERSION);
    assert_eq!(json["scenario"]["seed"], 5);
    assert_eq!(json["verdict"], "holds");
    let again = chaos(&["run", path, "--json", "--seed", "5"]);
    assert_eq!(out.stdout, again.stdout, "same seed, same bytes");
    let other = chaos(&["run", path, "--json", "--seed", "6"]);
    assert_ne!(out.stdout, other.stdout);
}

#[test]
fn check_timeouts_reports_each_finding_and_exits_1() {
    let chain =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/timeouts/checkout_chain.toml");
    let out = chaos(&["check-timeouts", chain.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("api-gateway/checkout: can take 30s but its caller has only 29s left"),
        "{text}"
    );
    assert!(
        text.contains("api-gateway/checkout/orders: can take 30s 300ms"),
        "{text}"
    );
    assert!(
        text.contains("api-gateway/checkout/email-webhook: no timeout"),
        "{text}"
    );
    assert!(text.contains("3 finding(s)"), "{text}");

    let dir = std::env::temp_dir().join(format!("chaos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "name = \"api\"\ntimeout = \"10s\"\n[[calls]]\nname = \"db\"\ntimeout = \"1s\"\n",
    )
    .expect("write");
    let out = chaos(&["check-timeouts", good.to_str().expect("utf-8")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"api\"\ntimout = \"10s\"\n").expect("write");
    let out = chaos(&["check-timeouts", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("timout") && error.contains("line 2"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_pipe_exits_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args([
            "run",
            example("region_outage.toml").to_str().expect("utf-8"),
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // Like `| head -c 10`: read a little, then close the pipe before the report is written.
    let mut stdout = child.stdout.take().expect("piped");
    let _ = stdout.read(&mut [0u8; 0]);
    drop(stdout);
    let out = child.wait_with_output().expect("waits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn check_timeouts_names_a_chain_nested_too_deep() {
    // Past ~80 levels the TOML reader itself gives up with a bare "recursion limit".
    let mut text = String::from("name = \"a\"\ntimeout = \"1s\"\n");
    for depth in 1..=100 {
        let header = vec!["calls"; depth].join(".");
        text.push_str(&format!("[[{header}]]\nname = \"x\"\ntimeout = \"1s\"\n"));
    }
    let dir = std::env::temp_dir().join(format!("chaos-cli-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let deep = dir.join("deep.toml");
    std::fs::write(&deep, &text).expect("write");
    let out = chaos(&["check-timeouts", deep.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    let last_header = 1 + lines
        .iter()
        .rposition(|l| l.starts_with("[["))
        .expect("headers");
    assert!(
        error.contains(&format!("deep.toml:{last_header}: calls nested 100 deep")),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
