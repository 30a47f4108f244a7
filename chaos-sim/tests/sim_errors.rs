//! Scenario errors: located in the scenario file, rendered without panicking.

use chaos_sim::scenario;

const BASE: &str = r#"[simulation]
seed = 1
requests = 10

[load]
target = "api"
rate_per_s = 10

[[function]]
name = "api"
handler = [{ call = "table" }]

[[dependency]]
name = "table"
latency = "1ms"
"#;

#[test]
fn a_bad_fault_names_the_file_line_column_and_fault() {
    let text = format!(
        "{BASE}\n[[fault]]\nname = \"slow\"\nfault = {{ error = \"throttle\" }}\nprobability = 0.1\n\n\
         [[fault]]\nname = \"slow\"\nfault = {{ error = \"throttle\" }}\nprobability = 0.2\n"
    );
    let err = match scenario::parse(&text, "faults.toml") {
        Ok(_) => panic!("two faults of one name must be rejected"),
        Err(e) => e,
    };
    let second = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("[[fault]]"))
        .nth(1)
        .map(|(i, _)| i + 1)
        .expect("two [[fault]] tables");
    assert_eq!(err.file, "faults.toml");
    assert_eq!(err.line, second, "{err}");
    assert_eq!(err.column, 1);
    assert_eq!(err.field, "fault.1");
    assert!(err.message.contains("\"slow\""), "{err}");
    assert!(!err.to_string().contains("rules[1]"), "{err}");
}

#[test]
fn an_error_past_column_65535_renders_without_panicking() {
    let text = format!("[simulation]\nname = \"{}\" trailing\n", "x".repeat(70_000));
    let err = match scenario::parse(&text, "long.toml") {
        Ok(_) => panic!("trailing junk must be rejected"),
        Err(e) => e,
    };
    assert_eq!(err.line, 2);
    assert!(err.column > 65_535, "{}", err.column);
    let shown = err.to_string();
    assert!(
        shown.contains("long.toml:2:"),
        "{}",
        &shown[..200.min(shown.len())]
    );
    assert!(
        shown.len() < 2_000,
        "a long line is trimmed, not printed whole"
    );
}

#[test]
fn an_input_above_the_size_limit_is_rejected_after_reading_the_limit() {
    // A device that never ends: reading stops at the limit.
    let zero = std::path::Path::new("/dev/zero");
    if zero.exists() {
        let err = scenario::read_text(zero).expect_err("endless input is rejected");
        assert!(err.to_string().contains("16 MiB"), "{err}");
        let err = match scenario::load(zero) {
            Ok(_) => panic!("endless input is rejected"),
            Err(e) => e,
        };
        assert!(err.message.contains("larger than the limit"), "{err}");
    }
}
