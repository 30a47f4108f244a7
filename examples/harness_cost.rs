//! Runs the fallback test harness once, for instruction counts (callgrind is repeatable on a
//! noisy machine, wall time is not): N invocations of a trivial handler, each delayed 2 s by
//! a rule, as one fan-out or one after another.
//!
//! Instructions per invocation, set-up cancelled out:
//! `cargo build --release --example harness_cost`, then for N in 10000 and 20000
//! `valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/harness_cost fan_out N`
//! and divide the difference of the two counts by 10,000.

use std::process::ExitCode;
use std::time::Duration;

use chaos_core::testing::{Harness, Invocation, Served};
use chaos_core::{InjectedError, LatencyDist, Plan, Rule};

async fn trivial(invocation: Invocation) -> Result<Served, InjectedError> {
    invocation.call("orders").await?;
    Ok(Served::Primary)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "fan_out".to_owned());
    let count: u32 = match args.next().map(|n| n.parse()) {
        None => 10_000,
        Some(Ok(count)) => count,
        Some(Err(error)) => {
            eprintln!(
                "error: the invocation count is not a number ({error}); usage: harness_cost [fan_out|sequential] [N]"
            );
            return ExitCode::from(2);
        }
    };
    let width = match mode.as_str() {
        "fan_out" => count,
        "sequential" => 1,
        other => {
            eprintln!("error: unknown mode {other:?}; expected `fan_out` or `sequential`");
            return ExitCode::from(2);
        }
    };
    let plan = Plan::new(1).with_rule(Rule::latency(LatencyDist::constant(Duration::from_secs(2))));
    let harness = Harness::builder()
        .invocations(count)
        .fan_out(width)
        .deadline(Duration::from_secs(3))
        .site("orders")
        .build();
    let report = harness.and_then(|harness| harness.run(&plan, trivial));
    match report {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
