//! Guardrails end to end: a CloudWatch alarm in moto stops injection by the next
//! invocation once polled, and the metric lines (EMF) name the function, rule and fault.
//! Alone in its binary with the EMF test: tracing caches call-site interest process-wide.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use chaos_aws::{
    AlarmReader, AlarmState, AlarmStop, ChaosHandlerLayer, EmfLayer, Guard, HandlerError,
};
use chaos_core::{CompiledPlan, Injector};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing_subscriber::layer::SubscriberExt;

/// moto's CloudWatch over the JSON 1.0 protocol: the Rust SDK speaks Smithy RPC v2 CBOR,
/// which moto does not serve (getmoto/moto#9195). Loopback only; moto does not check
/// signatures, so the request carries a well-formed but unsigned Authorization header.
#[derive(Clone)]
struct MotoCloudWatch {
    address: String,
}

impl MotoCloudWatch {
    fn new() -> Self {
        let endpoint = support::endpoint();
        let address = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        Self { address }
    }

    async fn call(&self, operation: &str, body: Value) -> Value {
        let address = self.address.clone();
        let operation = operation.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let body = body.to_string();
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            write!(
                stream,
                "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-amz-json-1.0\r\n\
                 X-Amz-Target: GraniteServiceVersion20100801.{operation}\r\n\
                 Authorization: AWS4-HMAC-SHA256 Credential=AKIDCHAOSTEST/20260101/eu-west-1/monitoring/aws4_request, SignedHeaders=host, Signature=00\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            let (head, body) = response.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"), "{operation}: {response}");
            // moto answers with Content-Length (no chunking) since the request closes.
            serde_json::from_str(body).unwrap()
        })
        .await
        .unwrap()
    }
}

impl AlarmReader for MotoCloudWatch {
    fn read<'a>(
        &'a self,
        alarm_name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<AlarmState, String>> + Send + 'a>> {
        Box::pin(async move {
            let output = self
                .call("DescribeAlarms", json!({"AlarmNames": [alarm_name]}))
                .await;
            match output["MetricAlarms"][0]["StateValue"].as_str() {
                Some("ALARM") => Ok(AlarmState::Alarm),
                Some("OK") => Ok(AlarmState::Ok),
                Some("INSUFFICIENT_DATA") => Ok(AlarmState::InsufficientData),
                other => Err(format!("no alarm state: {other:?}")),
            }
        })
    }
}

fn injector(plan: &str) -> Injector {
    let mut builder = Injector::builder();
    builder
        .plan(CompiledPlan::from_toml_str(plan).unwrap())
        .ignore_env();
    builder.build().unwrap()
}

const THROTTLE_ALL: &str = r#"
seed = 9
[[rules]]
name = "throttle-all"
fault = { error = "throttle" }
probability = 1.0
"#;

fn event(request_id: &str, function: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.to_owned();
    context.env_config = Arc::new(lambda_runtime::Config {
        function_name: function.to_owned(),
        ..Default::default()
    });
    LambdaEvent::new(json!({}), context)
}

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

async fn set_state(client: &MotoCloudWatch, alarm: &str, state: &str) {
    client
        .call(
            "SetAlarmState",
            json!({"AlarmName": alarm, "StateValue": state, "StateReason": "chaos-aws test"}),
        )
        .await;
}

#[tokio::test]
async fn an_alarm_in_alarm_stops_injection_by_the_next_invocation() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let client = MotoCloudWatch::new();
    let alarm = "chaos-aws-tests-error-rate";
    client
        .call(
            "PutMetricAlarm",
            json!({"AlarmName": alarm, "Namespace": "Orders", "MetricName": "Errors",
                   "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 5.0,
                   "ComparisonOperator": "GreaterThanThreshold"}),
        )
        .await;
    set_state(&client, alarm, "OK").await;
    // Interval zero: every invocation starts a background poll; `poll` waits for it.
    let stop = AlarmStop::with_interval(client.clone(), alarm, Duration::ZERO);
    let guard = Guard::builder()
        .environment(None)
        .stop_on_alarm(stop.clone())
        .build();
    let layer = ChaosHandlerLayer::new(injector(THROTTLE_ALL)).guard(guard);

    assert_eq!(stop.poll().await, AlarmState::Ok);
    let error = layer
        .layer(handler(&CALLS))
        .oneshot(event("a-1", "orders"))
        .await
        .expect_err("injected while OK");
    assert!(matches!(error, HandlerError::Injected(_)), "{error}");
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);

    set_state(&client, alarm, "ALARM").await;
    assert_eq!(stop.poll().await, AlarmState::Alarm);
    let response = layer
        .layer(handler(&CALLS))
        .oneshot(event("a-2", "orders"))
        .await
        .expect("no injection while in ALARM");
    assert_eq!(response, json!({"ok": true}));
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);

    set_state(&client, alarm, "OK").await;
    assert_eq!(stop.poll().await, AlarmState::Ok);
    layer
        .layer(handler(&CALLS))
        .oneshot(event("a-3", "orders"))
        .await
        .expect_err("injection resumes once OK");

    // A missing alarm is a guardrail nobody can read: no faults.
    let missing = AlarmStop::new(client, "chaos-aws-tests-no-such-alarm");
    assert_eq!(missing.poll().await, AlarmState::Unreadable);
    assert!(missing.is_stopping());
}

#[tokio::test]
async fn one_metric_line_per_injection_and_dry_run_lines_say_so() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let subscriber = tracing_subscriber::registry().with(EmfLayer::with_sink(move |line| {
        sink.lock().unwrap().push(line.to_owned())
    }));
    let _default = tracing::subscriber::set_default(subscriber);

    let layer = ChaosHandlerLayer::new(injector(THROTTLE_ALL));
    for id in ["m-1", "m-2"] {
        layer
            .layer(handler(&CALLS))
            .oneshot(event(id, "orders-fn"))
            .await
            .expect_err("injected");
    }
    let guard = Guard::builder().environment(None).dry_run(true).build();
    let dry = ChaosHandlerLayer::new(injector(THROTTLE_ALL)).guard(guard.clone());
    dry.layer(handler(&CALLS))
        .oneshot(event("m-3", "orders-fn"))
        .await
        .expect("dry run injects nothing");
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(guard.dry_run_counts(), (1, 1));

    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (index, line) in lines.iter().enumerate() {
        let line: Value = serde_json::from_str(line).unwrap();
        let dry_run = index == 2;
        let metric = if dry_run { "WouldInject" } else { "Injections" };
        assert_eq!(line["function"], "orders-fn");
        assert_eq!(line["rule"], "throttle-all");
        assert_eq!(line["fault"], "error");
        assert_eq!(line["dry_run"], dry_run);
        assert_eq!(line[metric], 1);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Chaos");
        assert_eq!(
            directive["Dimensions"],
            json!([["function", "rule", "fault"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": metric, "Unit": "Count"}])
        );
        assert!(line["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
}
