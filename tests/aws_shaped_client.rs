//! The AWS-SDK-shaped client of `examples/aws_shaped_client`: chaos-core's error kinds reach
//! the handler as DynamoDB's errors, the standard retry mode retries them, and the handler's
//! fallback holds under generated plans.

#[path = "../examples/aws_shaped_client/dynamodb.rs"]
mod dynamodb;

use std::time::Duration;

use chaos_core::fault::ErrorKind;
use chaos_core::testing::{
    FaultChoice, HandlerError, Harness, Outcome, PlanSpace, Property, Site, SteadyState,
};
use chaos_core::{Plan, Rule};
use dynamodb::{GetItemError, HandlerFailure, SdkError};

fn harness() -> Harness {
    Harness::builder()
        .invocations(100)
        .fan_out(100)
        .deadline(Duration::from_secs(1))
        .site(
            Site::new(dynamodb::GET_PRICE)
                .service("dynamodb")
                .operation("GetItem"),
        )
        .build()
        .expect("a valid harness")
}

#[test]
fn each_kind_arrives_as_the_service_would_answer_and_reads_back() {
    let cases = [
        (
            ErrorKind::Throttle,
            Some("ProvisionedThroughputExceededException"),
        ),
        (
            ErrorKind::ServerError { status: 500 },
            Some("InternalServerError"),
        ),
        (
            ErrorKind::ServerError { status: 503 },
            Some("ServiceUnavailable"),
        ),
        (ErrorKind::Timeout, None),
        (ErrorKind::ConnectionReset, None),
    ];
    for (kind, code) in cases {
        let error = dynamodb::as_dynamodb_error(&kind);
        assert_eq!(error.code(), code, "{kind}");
        assert_eq!(HandlerFailure(error).error_kind(), kind);
    }
    assert_eq!(
        dynamodb::as_dynamodb_error(&ErrorKind::Timeout),
        SdkError::<GetItemError>::TimeoutError
    );
}

#[test]
fn a_throttle_storm_is_retried_three_times_then_served_from_the_fallback() {
    let plan = Plan::new(4).with_rule(
        Rule::error(ErrorKind::Throttle)
            .for_service("dynamodb")
            .named("throttled"),
    );
    let report = harness().run(&plan, dynamodb::price_handler).unwrap();
    for record in report.records() {
        assert_eq!(record.outcome, Outcome::Fallback, "{record}");
        assert_eq!((record.calls, record.faulted_calls), (3, 3), "{record}");
        // Two full-jitter backoffs, at most 100 + 200 ms.
        assert!(record.latency <= Duration::from_millis(300), "{record}");
    }
    // Jitter is per invocation, not one shared delay.
    let distinct: std::collections::BTreeSet<_> =
        report.records().iter().map(|r| r.latency).collect();
    assert!(distinct.len() > 50, "{}", distinct.len());
}

#[test]
fn the_fallback_holds_under_generated_plans() {
    let plans = PlanSpace::new(harness().sites().iter().cloned())
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
        .strategy()
        .expect("valid bounds");
    let steady = SteadyState::new()
        .min_success_rate(1.0)
        .failures_are_clean()
        .no_call_after_deadline();
    let result = Property::new(&harness(), steady)
        .cases(64)
        .seed(7)
        .check(plans, dynamodb::price_handler);
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
