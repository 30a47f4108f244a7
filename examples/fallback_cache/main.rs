//! A property test of a handler's cache fallback, run against generated fault plans: the
//! correct handler holds its steady state under every plan; its buggy twin (falls back on
//! errors but not on timeouts, retries past the deadline) is caught, and the failure shrinks
//! to a one-line plan a regression test can paste (`tests/fallbacks.rs` keeps it).
//!
//! Run: `cargo run --example fallback_cache`. 256 plans x 200 invocations each, with seconds
//! of injected latency, on tokio's paused clock: well under a second of wall time per handler
//! in release mode.

mod handlers;

use std::process::ExitCode;

use chaos_core::testing::Property;

fn main() -> ExitCode {
    let harness = handlers::harness();
    let plans = match handlers::plans().strategy() {
        Ok(plans) => plans,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let property = Property::new(&harness, handlers::steady_state()).seed(2026);

    let prices = handlers::Prices::warm();
    let correct = property.check(plans.clone(), |invocation| {
        handlers::correct(invocation, prices.clone())
    });
    match &correct {
        Ok(()) => println!("correct handler: the steady state held under 256 generated plans"),
        Err(failure) => println!("correct handler: FAILED\n{failure}"),
    }

    let buggy = property.check(plans, |invocation| {
        handlers::buggy(invocation, prices.clone())
    });
    match &buggy {
        Ok(()) => println!("buggy twin: not caught (it should have been)"),
        Err(failure) => println!("buggy twin: caught\n{failure}"),
    }
    if correct.is_ok() && buggy.is_err() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
