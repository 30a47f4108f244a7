//! A handler that calls DynamoDB through an AWS-SDK-shaped client, property-tested against
//! generated plans of chaos-core error kinds: each injected kind reaches the handler as the
//! error DynamoDB would answer with (a throttle as `ProvisionedThroughputExceededException`,
//! a 500 as `InternalServerError`, a timeout as the SDK's `TimeoutError`, a reset as a
//! dispatch failure), through the SDK's standard retry mode.
//!
//! Run: `cargo run --example aws_shaped_client`.

mod dynamodb;

use std::process::ExitCode;
use std::time::Duration;

use chaos_core::fault::ErrorKind;
use chaos_core::testing::{FaultChoice, Harness, PlanSpace, Property, Site, SteadyState};

fn main() -> ExitCode {
    println!("What each injected kind looks like to the handler:");
    for kind in [
        ErrorKind::Throttle,
        ErrorKind::ServerError { status: 500 },
        ErrorKind::ServerError { status: 503 },
        ErrorKind::Timeout,
        ErrorKind::ConnectionReset,
    ] {
        println!(
            "  {:<28} -> {}",
            kind.to_string(),
            dynamodb::as_dynamodb_error(&kind)
        );
    }

    let harness = match Harness::builder()
        .invocations(300)
        .fan_out(100)
        .deadline(Duration::from_secs(1))
        .site(
            Site::new(dynamodb::GET_PRICE)
                .service("dynamodb")
                .operation("GetItem"),
        )
        .build()
    {
        Ok(harness) => harness,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let plans = PlanSpace::new(harness.sites().iter().cloned())
        .faults([
            FaultChoice::Error,
            FaultChoice::Latency,
            FaultChoice::Timeout,
        ])
        .errors([
            ErrorKind::Throttle,
            ErrorKind::ServerError { status: 500 },
            ErrorKind::ServerError { status: 503 },
            ErrorKind::ConnectionReset,
        ])
        .strategy();
    let plans = match plans {
        Ok(plans) => plans,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let steady = SteadyState::new()
        .min_success_rate(1.0)
        .failures_are_clean()
        .no_call_after_deadline()
        .max_latency(0.99, Duration::from_secs(1));
    match Property::new(&harness, steady)
        .seed(7)
        .check(plans, dynamodb::price_handler)
    {
        Ok(()) => {
            println!("\nThe handler answered every invocation in time under 256 generated plans.");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("\n{failure}");
            ExitCode::FAILURE
        }
    }
}
