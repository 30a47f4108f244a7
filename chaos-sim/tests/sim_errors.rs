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

fn field_of_error(text: &str) -> String {
    match scenario::parse(text, "bad.toml") {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            assert!(e.line > 0, "{e}");
            e.field
        }
    }
}

#[test]
fn nan_or_negative_burst_seconds_are_rejected_with_a_location() {
    for bad in ["nan", "-1.0", "inf"] {
        let text = BASE.replace(
            "latency = \"1ms\"",
            &format!(
                "latency = \"1ms\"\ncapacity = {{ provisioned = {{ units_per_s = 100, burst_seconds = {bad} }} }}"
            ),
        );
        assert_eq!(
            field_of_error(&text),
            "dependency.table.capacity.burst_seconds",
            "{bad}"
        );
    }
}

#[test]
fn cost_bounds_must_be_finite_and_not_negative() {
    for bad in ["NaN", "inf", "-1", "$-0.5"] {
        let text = format!("{BASE}\n[hypothesis]\ncost_usd = \"<= {bad}\"\n");
        assert_eq!(field_of_error(&text), "hypothesis.cost_usd", "{bad}");
    }
    let ok = format!("{BASE}\n[hypothesis]\ncost_usd = \"<= $5.00\"\n");
    assert!(scenario::parse(&ok, "ok.toml").is_ok());
}

#[test]
fn durations_near_584_years_are_rejected_not_saturated() {
    let text = BASE.replace("requests = 10", "duration = \"500y\"");
    assert_eq!(field_of_error(&text), "simulation.duration");
    let drain = BASE.replace("requests = 10", "requests = 10\ndrain = \"500y\"");
    assert_eq!(field_of_error(&drain), "simulation.drain");
}

#[test]
fn the_attempt_limit_check_does_not_wrap() {
    // 2^31 attempts x (1 + 4294967295 hedges) x 2 regions is 2^64: a u64 product wraps to 0.
    let text = BASE
        .replace(
            "handler = [{ call = \"table\" }]",
            "handler = [{ call = \"table\", failover = \"us-west-2\", \
             retry = { attempts = 2147483648, base = \"1ms\", cap = \"1ms\" }, \
             hedge = { after = \"1ms\", max_extra = 4294967295 } }]",
        )
        .replace(
            "latency = \"1ms\"",
            "latency = \"1ms\"\nregions = [\"us-east-1\", \"us-west-2\"]",
        );
    let e = match scenario::parse(&text, "bad.toml") {
        Ok(_) => panic!("absurd attempts must be rejected"),
        Err(e) => e,
    };
    assert!(e.message.contains("at most 63"), "{e}");
}

#[test]
fn a_fault_that_does_not_say_how_often_it_fires_is_located_at_its_table() {
    // Only the last table is at fault: the error must not borrow the previous table's field.
    let text =
        format!("{BASE}\n[[fault]]\nname = \"outage\"\nfault = {{ error = \"throttle\" }}\n");
    let err = match scenario::parse(&text, "faults.toml") {
        Ok(_) => panic!("a fault without a trigger must be rejected"),
        Err(e) => e,
    };
    let table = 1 + text
        .lines()
        .position(|l| l.starts_with("[[fault]]"))
        .expect("a [[fault]] table");
    assert_eq!((err.line, err.column), (table, 1), "{err}");
    assert_eq!(err.field, "fault", "{err}");
    assert!(err.message.contains("probability = 1.0"), "{err}");
}

#[test]
fn a_latency_of_centuries_is_rejected_where_it_is_written() {
    // Virtual time is 64-bit nanoseconds (584 years): a longer latency would saturate into
    // "never ends" instead of being reported.
    let text = BASE.replace("latency = \"1ms\"", "latency = { constant = \"500y\" }");
    let err = match scenario::parse(&text, "slow.toml") {
        Ok(_) => panic!("a 500-year latency must be rejected"),
        Err(e) => e,
    };
    let line = 1 + text
        .lines()
        .position(|l| l.contains("500y"))
        .expect("the latency line");
    assert_eq!(err.line, line, "{err}");
    assert!(err.message.contains("10 years"), "{err}");
}
