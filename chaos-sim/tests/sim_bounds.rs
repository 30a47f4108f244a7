//! Resource bounds: inputs that used to crash, hang or exhaust memory get clear errors.

use chaos_sim::{Simulation, scenario};

/// `n` functions, `f0` invoking `f1` ... invoking `f{n-1}`, which calls a table.
fn chain(n: usize) -> String {
    let mut text = String::from(
        "[simulation]\nseed = 1\nrequests = 20\n\n[load]\ntarget = \"f0\"\nrate_per_s = 10\n\n\
         [account]\nconcurrency = 100000000\n\n[[dependency]]\nname = \"table\"\nlatency = \"1ms\"\n",
    );
    for i in 0..n {
        let handler = if i + 1 == n {
            "[{ call = \"table\" }]".to_string()
        } else {
            format!("[{{ invoke = \"f{}\" }}]", i + 1)
        };
        text.push_str(&format!(
            "\n[[function]]\nname = \"f{i}\"\ntimeout = \"900s\"\nhandler = {handler}\n"
        ));
    }
    text
}

fn parse_err(text: &str) -> scenario::ScenarioError {
    match scenario::parse(text, "bounds.toml") {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn a_chain_of_16000_invocations_is_rejected_not_a_stack_overflow() {
    let e = parse_err(&chain(16_000));
    assert!(e.message.contains("nest more than 256"), "{e}");
}

#[test]
fn a_chain_of_40000_functions_does_not_overflow_the_cycle_check() {
    let mut text = chain(40_000);
    // Close a cycle at the far end: the check must walk the whole chain to find it.
    text = text.replace(
        "handler = [{ call = \"table\" }]",
        "handler = [{ invoke = \"f0\" }]",
    );
    let e = parse_err(&text);
    assert!(
        e.message.contains("invocation cycle"),
        "{}",
        &e.message[..100]
    );
}

#[test]
fn a_chain_within_the_limit_runs() {
    // 120 functions of two levels each (invoke step + handler) stay under 256.
    let s = scenario::parse(&chain(120), "ok.toml").unwrap_or_else(|e| panic!("{e}"));
    let report = Simulation::new(s).expect("compiles").run();
    assert_eq!(report.control.requests, 20);
    assert_eq!(report.control.succeeded, 20);
}

const ONE_FUNCTION: &str = r#"
[[function]]
name = "api"
handler = [{ call = "table" }]

[[dependency]]
name = "table"
latency = "1ms"
"#;

#[test]
fn a_think_time_that_is_almost_always_zero_is_rejected() {
    let text = format!(
        "[simulation]\nduration = \"10s\"\n\n[load]\ntarget = \"api\"\nkind = \"closed\"\n\
         clients = 10\nthink_time = {{ mixture = [ {{ weight = 0.999999, latency = \"0ms\" }}, \
         {{ weight = 0.000001, latency = \"1s\" }} ] }}\n{ONE_FUNCTION}"
    );
    let e = parse_err(&text);
    assert_eq!(e.field, "load.think_time", "{e}");
    assert!(e.message.contains("mean think time"), "{e}");
    // A think time with a real mean is fine.
    let ok = text.replace("0.999999", "0.5").replace("0.000001", "0.5");
    assert!(scenario::parse(&ok, "ok.toml").is_ok());
}

#[test]
fn the_work_budget_stops_a_run_with_a_clear_error() {
    let text = format!(
        "[simulation]\nrequests = 5000\nmax_events = 1000\n\n[load]\ntarget = \"api\"\n\
         rate_per_s = 100\n{ONE_FUNCTION}"
    );
    let s = scenario::parse(&text, "budget.toml").unwrap_or_else(|e| panic!("{e}"));
    let report = Simulation::new(s).expect("compiles").run();
    let why = report.stopped.as_deref().expect("the budget stops the run");
    assert!(why.contains("work budget of 1000 events"), "{why}");
    assert!(report.control.requests < 5000);
    assert_eq!(report.exit_code(), 2);
    assert!(report.to_json().contains("\"stopped\""));

    // The same budget on the builder.
    let mut builder = chaos_sim::ScenarioBuilder::new("b", "api");
    builder
        .requests(5000)
        .max_events(500)
        .function(chaos_sim::model::Function::new(
            "api",
            vec![chaos_sim::model::Step::call("table").step()],
        ))
        .dependency(chaos_sim::model::Dependency::new(
            "table",
            chaos_core::LatencyDist::constant(std::time::Duration::from_millis(1)),
        ));
    let report = Simulation::new(builder.build().expect("valid"))
        .expect("compiles")
        .run();
    assert!(report.stopped.is_some());
    let zero = text.replace("max_events = 1000", "max_events = 0");
    assert_eq!(parse_err(&zero).field, "simulation.max_events");
}

#[test]
fn nested_fan_outs_stop_at_the_frame_bound_instead_of_exhausting_memory() {
    // Each request puts 1,000,000 compute steps in flight (the per-invocation limit); a
    // burst of 10 asks for 10 million at once.
    let text = "[simulation]\nrequests = 10\n\n[load]\ntarget = \"api\"\nrate_per_s = 1\n\
                bursts = [{ at = \"0s\", count = 10 }]\n\n[[function]]\nname = \"api\"\n\
                handler = [{ fan_out = { count = 1000, join = \"all\", fan_out = \
                { count = 1000, join = \"all\", compute = \"1s\" } } }]\n";
    let s = scenario::parse(text, "wide.toml").unwrap_or_else(|e| panic!("{e}"));
    let report = Simulation::new(s).expect("compiles").run();
    let why = report
        .stopped
        .as_deref()
        .expect("the frame bound stops the run");
    assert!(why.contains("steps in flight"), "{why}");
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn huge_client_counts_and_bursts_are_rejected() {
    let clients = format!(
        "[simulation]\nrequests = 10\n\n[load]\ntarget = \"api\"\nkind = \"closed\"\n\
         clients = 5000000\nthink_time = \"1s\"\n{ONE_FUNCTION}"
    );
    assert_eq!(parse_err(&clients).field, "load.clients");
    let burst = format!(
        "[simulation]\nrequests = 10\n\n[load]\ntarget = \"api\"\nrate_per_s = 1\n\
         bursts = [{{ at = \"0s\", count = 5000000 }}]\n{ONE_FUNCTION}"
    );
    assert!(parse_err(&burst).message.contains("burst"));
}

#[test]
fn a_run_without_traffic_is_reported_as_such_and_cannot_pass() {
    let text = format!(
        "[simulation]\nduration = \"0s\"\n\n[load]\ntarget = \"api\"\nrate_per_s = 0\n\
         {ONE_FUNCTION}\n[hypothesis]\nsuccess_rate = \">= 99%\"\n"
    );
    let s = scenario::parse(&text, "idle.toml").unwrap_or_else(|e| panic!("{e}"));
    let report = Simulation::new(s).expect("compiles").run();
    assert_eq!(report.control.requests, 0);
    assert_eq!(report.exit_code(), 1, "nothing measured cannot hold");
    let json = report.to_json();
    assert!(json.contains("\"success_rate\": null"), "{json}");
    assert!(json.contains("had no requests"), "{json}");
    assert!(report.to_table().contains("had no requests"));
    // `requests = 0` asks for no request: rejected rather than running one.
    let zero = text.replace("duration = \"0s\"", "requests = 0");
    assert_eq!(parse_err(&zero).field, "simulation.requests");
}
