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
