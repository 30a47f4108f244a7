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
