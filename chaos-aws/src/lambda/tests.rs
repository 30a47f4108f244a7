use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chaos_core::CompiledPlan;
use lambda_runtime::Context as LambdaContext;
use tokio::time::Instant;
use tower::{ServiceExt, service_fn};

use serde_json::json;

use super::*;

fn injector(plan: &str) -> Injector {
    let mut builder = Injector::builder();
    builder
        .plan(CompiledPlan::from_toml_str(plan).expect("test plan"))
        .ignore_env();
    builder.build().expect("test injector")
}

fn rule(fault: &str, extra: &str) -> String {
    format!("seed = 5\n[[rules]]\nname = \"r\"\nfault = {fault}\nprobability = 1.0\n{extra}\n")
}

fn event(request_id: &str, payload: Value, deadline_in: Option<Duration>) -> LambdaEvent<Value> {
    let mut context = LambdaContext::default();
    context.request_id = request_id.to_owned();
    if let Some(left) = deadline_in {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock after 1970");
        context.deadline = u64::try_from((now + left).as_millis()).expect("fits");
    }
    LambdaEvent::new(payload, context)
}

/// A handler that counts its calls and echoes `{"ok": true}`.
fn handler(
    calls: &'static AtomicUsize,
) -> impl Service<LambdaEvent<Value>, Response = Value, Error = lambda_runtime::Error, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(move |_event: LambdaEvent<Value>| async move {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, lambda_runtime::Error>(json!({"ok": true}))
    })
}

fn rest_event() -> Value {
    json!({"httpMethod": "GET", "path": "/orders", "requestContext": {"stage": "prod"}})
}

#[tokio::test(start_paused = true)]
async fn latency_holds_then_the_handler_answers() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let layer = ChaosHandlerLayer::new(injector(&rule(r#"{ latency = "2s" }"#, "")));
    let started = Instant::now();
    let response = layer
        .layer(handler(&CALLS))
        .oneshot(event("req-1", json!({}), None))
        .await
        .expect("latency only");
    assert_eq!(response, json!({"ok": true}));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn errors_fail_the_invocation_without_the_handler() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let layer = ChaosHandlerLayer::new(injector(&rule(r#"{ error = "throttle" }"#, "")));
    let error = layer
        .layer(handler(&CALLS))
        .oneshot(event("req-2", json!({}), None))
        .await
        .expect_err("injected");
    assert!(
        matches!(&error, HandlerError::Injected(e) if e.rule == "r"),
        "{error}"
    );
    let diagnostic = Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "chaos.throttle");
    assert!(
        diagnostic.error_message.contains("throttled"),
        "{}",
        diagnostic.error_message
    );
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn status_faults_answer_in_the_front_doors_shape() {
    static SKIPPED: AtomicUsize = AtomicUsize::new(0);
    let layer = ChaosHandlerLayer::new(injector(&rule("{ status = 503 }", "")));
    let response = layer
        .layer(handler(&SKIPPED))
        .oneshot(event("req-3", rest_event(), None))
        .await
        .expect("a response");
    assert_eq!(response["statusCode"], 503);
    assert_eq!(
        response["body"],
        r#"{"message":"Injected status code 503"}"#
    );
    assert_eq!(SKIPPED.load(Ordering::SeqCst), 0, "the handler is skipped");
    // chaos-core's mapping decides the head: `Retry-After` on a 503, the rule named.
    assert_eq!(response["headers"]["retry-after"], "1");
    assert_eq!(response["headers"]["x-chaos-rule"], "r");
    assert_eq!(response["headers"]["content-type"], "application/json");

    let alb = json!({"httpMethod": "GET", "requestContext": {"elb": {"targetGroupArn": "arn"}}});
    let response = layer
        .layer(handler(&SKIPPED))
        .oneshot(event("req-4", alb, None))
        .await
        .expect("a response");
    assert_eq!(response["statusDescription"], "503 Service Unavailable");

    static RAN: AtomicUsize = AtomicUsize::new(0);
    let replacing = ChaosHandlerLayer::new(injector(&rule("{ status = 500 }", "")))
        .status_mode(StatusMode::ReplaceResponse);
    let response = replacing
        .layer(handler(&RAN))
        .oneshot(event("req-5", rest_event(), None))
        .await
        .expect("a response");
    assert_eq!(response["statusCode"], 500);
    assert_eq!(
        RAN.load(Ordering::SeqCst),
        1,
        "the handler ran, its answer replaced"
    );
}

#[tokio::test(start_paused = true)]
async fn hangs_hold_until_the_deadline_minus_the_buffer() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let layer = ChaosHandlerLayer::new(injector(&rule(r#"{ hang = { buffer = "500ms" } }"#, "")));
    let started = Instant::now();
    let error = layer
        .layer(handler(&CALLS))
        .oneshot(event("req-6", json!({}), Some(Duration::from_secs(3))))
        .await
        .expect_err("a hang ends in an error");
    // The deadline is in whole milliseconds of the wall clock: allow for its rounding.
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(2_498) && held <= Duration::from_millis(2_500),
        "{held:?}"
    );
    assert!(matches!(&error, HandlerError::Injected(e) if e.kind == InjectedKind::Hang));
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn event_conditions_target_invocations() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let plan = rule(
        r#"{ error = "timeout" }"#,
        r#"match = { event = [{ path = "/requestContext/http/method", equals = "POST" }] }"#,
    );
    let layer = ChaosHandlerLayer::new(injector(&plan));
    let http =
        |method: &str| json!({"version": "2.0", "requestContext": {"http": {"method": method}}});
    let get = layer
        .layer(handler(&CALLS))
        .oneshot(event("req-7", http("GET"), None))
        .await;
    assert!(get.is_ok());
    let post = layer
        .layer(handler(&CALLS))
        .oneshot(event("req-8", http("POST"), None))
        .await;
    assert!(matches!(post, Err(HandlerError::Injected(_))));
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn decisions_follow_the_request_id_and_the_kill_switch() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let plan = "seed = 8\n[[rules]]\nfault = { error = \"throttle\" }\nprobability = 0.5\n";
    let layer = ChaosHandlerLayer::new(injector(plan)).site("checkout");
    let mut failed = Vec::new();
    for _ in 0..2 {
        let mut this_round = Vec::new();
        for id in 0..200 {
            let result = layer
                .layer(handler(&CALLS))
                .oneshot(event(&format!("request-{id}"), json!({}), None))
                .await;
            this_round.push(result.is_err());
        }
        failed.push(this_round);
    }
    assert_eq!(
        failed[0], failed[1],
        "the same request ids get the same decisions"
    );
    let count = failed[0].iter().filter(|f| **f).count();
    // Binomial(200, 0.5): mean 100, sd ~7.1; 70..=130 is beyond 4 sd.
    assert!((70..=130).contains(&count), "{count}");

    layer.shared.injector.disable();
    let result = layer
        .layer(handler(&CALLS))
        .oneshot(event("request-0", json!({}), None))
        .await;
    assert!(result.is_ok(), "the kill switch stops injection");
}

#[tokio::test(start_paused = true)]
async fn corruption_runs_the_handler_and_mangles_its_answer_reproducibly() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let http_handler = service_fn(|_event: LambdaEvent<Value>| async {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Ok::<_, lambda_runtime::Error>(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": r#"{"orderId":4242,"total":19.98}"#,
        }))
    });
    let layer = ChaosHandlerLayer::new(injector(&rule(r#"{ corrupt = "json_invalid" }"#, "")));
    let call = |id: &'static str| {
        layer
            .layer(http_handler)
            .oneshot(event(id, rest_event(), None))
    };
    let first = call("req-c1").await.expect("an answer");
    assert_eq!(first["statusCode"], 200, "the handler's status stands");
    let body = first["body"].as_str().expect("a string body");
    assert!(serde_json::from_str::<Value>(body).is_err(), "{body}");
    assert_eq!(
        body.replace('\u{1f}', ""),
        r#"{"orderId":4242,"total":19.98}"#
    );
    // The same request id replays the same corruption.
    assert_eq!(call("req-c1").await.expect("an answer"), first);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2, "the handler ran each time");

    // A direct invoke's payload: `empty` answers null.
    static DIRECT: AtomicUsize = AtomicUsize::new(0);
    let empty = ChaosHandlerLayer::new(injector(&rule(r#"{ corrupt = "empty" }"#, "")))
        .layer(handler(&DIRECT))
        .oneshot(event("req-c2", json!({}), None))
        .await
        .expect("an answer");
    assert_eq!(empty, Value::Null);
    assert_eq!(DIRECT.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_handler_error_is_not_corrupted() {
    let failing = service_fn(|_event: LambdaEvent<Value>| async {
        Err::<Value, lambda_runtime::Error>("no stock".into())
    });
    let error = ChaosHandlerLayer::new(injector(&rule(r#"{ corrupt = "truncate" }"#, "")))
        .layer(failing)
        .oneshot(event("req-c3", json!({}), None))
        .await
        .expect_err("the handler's own error");
    assert!(matches!(&error, HandlerError::Handler(e) if e.to_string() == "no stock"));
}
