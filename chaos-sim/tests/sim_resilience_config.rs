//! The TOML and Rust forms of time-bounded retries, retry budgets and server shedding, and
//! their validation: every bad value is an error that names the file, line and field.

use chaos_sim::model::{
    Abandoned, Capacity, ControlledDelay, Dependency, Discipline, Function, Retry, RetryBudget,
    RetryWithin, Step,
};
use chaos_sim::{ScenarioBuilder, Simulation, scenario};
use std::time::Duration;

const BASE: &str = r#"[simulation]
seed = 1
requests = 10

[load]
target = "api"
rate_per_s = 10

[[function]]
name = "api"
handler = [
  { compute = "1ms" },
  { call = "table", CALL },
]

[[dependency]]
name = "table"
latency = "1ms"
capacity = CAPACITY
"#;

fn with(call: &str, capacity: &str) -> String {
    BASE.replace("CALL", call).replace("CAPACITY", capacity)
}

/// The error for `text`, which must be rejected.
fn error(text: &str) -> chaos_sim::ScenarioError {
    match scenario::parse(text, "bad.toml") {
        Ok(_) => panic!("must be rejected:\n{text}"),
        Err(e) => e,
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle} not in the text"))
}

#[test]
fn every_new_form_parses() {
    for (call, capacity) in [
        (
            r#"retry = { within = "2s", backoff = "exponential", base = "10ms", cap = "1s" }"#,
            r#""unlimited""#,
        ),
        (
            r#"retry = { within = "deadline", backoff = "immediate" }"#,
            r#""unlimited""#,
        ),
        (
            r#"retry = { attempts = 5, backoff = "immediate" }, retry_budget = { max_tokens = 10, token_ratio = 0.1 }"#,
            r#""unlimited""#,
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { percent = "20%" }"#,
            r#""unlimited""#,
        ),
        (
            r#"retry = { attempts = 3 }, retry_budget = { percent = 5, min_retries_per_s = 0, ttl = "60s" }"#,
            r#""unlimited""#,
        ),
        (
            "timeout = \"1s\"",
            r#"{ server = { workers = 2, discipline = { adaptive_lifo = { standing_queue = 8 } }, abandoned = "drop_late", queue_delay = {} } }"#,
        ),
        (
            "timeout = \"1s\"",
            r#"{ server = { workers = 2, queue_delay = { target = "10ms", interval = "200ms" } } }"#,
        ),
    ] {
        let text = with(call, capacity);
        let checked = scenario::parse(&text, "ok.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let report = Simulation::new(checked).expect("compiles").run();
        assert_eq!(report.control.requests, 10, "{call} {capacity}");
    }
}

#[test]
fn the_file_form_and_the_rust_form_are_the_same_scenario() {
    let text = with(
        r#"retry = { within = "deadline", backoff = "immediate" }, retry_budget = { percent = "20%", min_retries_per_s = 10, ttl = "10s" }"#,
        r#"{ server = { workers = 2, discipline = { adaptive_lifo = { standing_queue = 8 } }, abandoned = "drop_late", queue_delay = {} } }"#,
    );
    let from_file = scenario::parse(&text, "ok.toml").expect("valid");
    let call = Step::call("table")
        .retry(Retry::UntilSuccess {
            within: RetryWithin::Deadline,
            backoff: chaos_sim::model::BackoffKind::Immediate,
            base: Duration::from_millis(25),
            cap: Duration::from_secs(20),
        })
        .retry_budget(RetryBudget::finagle_default());
    let mut table = Dependency::new(
        "table",
        chaos_core::LatencyDist::constant(Duration::from_millis(1)),
    );
    table.capacity = Capacity::Server {
        workers: 2,
        discipline: Discipline::AdaptiveLifo { standing_queue: 8 },
        abandoned: Abandoned::DropLate,
        queue_delay: Some(ControlledDelay {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
        }),
    };
    let mut builder = ScenarioBuilder::new("scenario", "api");
    builder
        .seed(1)
        .requests(10)
        .load(chaos_sim::model::LoadShape::Open(
            chaos_sim::model::OpenLoop::poisson(10.0),
        ))
        .function(Function::new(
            "api",
            vec![
                Step::Compute(chaos_core::LatencyDist::constant(Duration::from_millis(1))),
                call.step(),
            ],
        ))
        .dependency(table);
    let from_rust = builder.build().expect("valid");
    let a = Simulation::new(from_file).expect("ok").run().to_json();
    let b = Simulation::new(from_rust).expect("ok").run().to_json();
    assert_eq!(a, b);
}

#[test]
fn bad_retry_settings_name_the_line_and_field() {
    let field = "function.api.handler.1";
    for (call, path, words) in [
        (
            r#"retry = { attempts = 3, within = "1s" }"#,
            "retry.within",
            "not both",
        ),
        (
            r#"retry = { backoff = "immediate" }"#,
            "retry",
            "`attempts = 3`",
        ),
        (r#"retry = { within = "0s" }"#, "retry.within", "above 0"),
        (r#"retry = { within = "soon" }"#, "", "deadline"),
        (
            r#"retry_budget = { max_tokens = 10, token_ratio = 0.1 }"#,
            "retry_budget",
            "makes none",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { max_tokens = 10 }"#,
            "retry_budget",
            "both `max_tokens` and `token_ratio`",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { max_tokens = 10, token_ratio = 0 }"#,
            "retry_budget.token_ratio",
            "at least 0.001",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { max_tokens = 1001, token_ratio = 1 }"#,
            "retry_budget.max_tokens",
            "at most 1000",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { percent = "2000%" }"#,
            "retry_budget.percent",
            "0% to 1000%",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { percent = "20%", ttl = "500ms" }"#,
            "retry_budget.ttl",
            "1s to 60s",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { percent = 0, min_retries_per_s = 0 }"#,
            "retry_budget",
            "both 0",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { percent = "20%", max_tokens = 10 }"#,
            "retry_budget",
            "not both",
        ),
        (
            r#"retry = "sdk_standard", retry_budget = { min_retries_per_s = 3 }"#,
            "retry_budget",
            "needs `percent`",
        ),
        (
            r#"retry = { within = "1s" }, hedge = { after = "1ms", max_extra = 63 }"#,
            "hedge.max_extra",
            "at most 62",
        ),
    ] {
        let text = with(call, r#""unlimited""#);
        let e = error(&text);
        assert_eq!(e.line, line_of(&text, "call = \"table\""), "{call}: {e}");
        if !path.is_empty() {
            assert_eq!(e.field, format!("{field}.{path}"), "{call}: {e}");
        }
        assert!(e.message.contains(words), "{call}: {e}");
    }
}

#[test]
fn bad_server_settings_name_the_line_and_field() {
    for (capacity, path, words) in [
        (
            r#"{ server = { workers = 1, discipline = { adaptive_lifo = { standing_queue = 0 } } } }"#,
            "capacity.discipline.standing_queue",
            "at least 1",
        ),
        (
            r#"{ server = { workers = 1, queue_delay = { target = "0ms" } } }"#,
            "capacity.queue_delay.target",
            "above 0",
        ),
        (
            r#"{ server = { workers = 1, queue_delay = { target = "50ms", interval = "10ms" } } }"#,
            "capacity.queue_delay.interval",
            "at least as long as the target",
        ),
        (
            r#"{ server = { workers = 1, abandoned = "drop_later" } }"#,
            "",
            "drop_late",
        ),
        (
            r#"{ server = { workers = 1, queue_delay = { goal = "5ms" } } }"#,
            "",
            "goal",
        ),
    ] {
        let text = with("timeout = \"1s\"", capacity);
        let e = error(&text);
        assert_eq!(e.line, line_of(&text, "capacity ="), "{capacity}: {e}");
        if !path.is_empty() {
            assert_eq!(
                e.field,
                format!("dependency.table.{path}"),
                "{capacity}: {e}"
            );
        }
        assert!(e.message.contains(words), "{capacity}: {e}");
    }
}

#[test]
fn the_rust_form_is_validated_like_a_file() {
    let mut table = Dependency::new(
        "table",
        chaos_core::LatencyDist::constant(Duration::from_millis(1)),
    );
    table.capacity = Capacity::Server {
        workers: 1,
        discipline: Discipline::Fifo,
        abandoned: Abandoned::Drop,
        queue_delay: Some(ControlledDelay {
            target: Duration::from_millis(10),
            interval: Duration::from_millis(1),
        }),
    };
    let mut builder = ScenarioBuilder::new("s", "api");
    builder
        .function(Function::new(
            "api",
            vec![
                Step::call("table")
                    .retry(Retry::None)
                    .retry_budget(RetryBudget::grpc(10.0, 0.1))
                    .step(),
            ],
        ))
        .dependency(Dependency::new(
            "table",
            chaos_core::LatencyDist::constant(Duration::from_millis(1)),
        ));
    let e = builder.build().expect_err("a budget without retries");
    assert!(e.to_string().contains("retry_budget"), "{e}");
    let mut builder = ScenarioBuilder::new("s", "api");
    builder
        .function(Function::new("api", vec![Step::call("table").step()]))
        .dependency(table);
    let e = builder.build().expect_err("interval below target");
    assert!(e.to_string().contains("queue_delay.interval"), "{e}");
}
