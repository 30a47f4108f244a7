use std::convert::Infallible;
use std::io;
use std::time::Duration;

use http::header::HeaderName;
use http::{Method, Request, Response};
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::*;
use crate::fault::{ErrorKind, Fault, InjectedError};
use crate::timeout::Deadline;
use crate::{Injector, LatencyDist, Plan, Rule};

fn injector(rule: Rule) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(Plan::new(5).with_rule(rule)).ignore_env();
    builder.build().expect("a valid plan")
}

fn request(headers: &[(&str, &str)]) -> Request<String> {
    let mut builder = Request::builder().method(Method::GET).uri("/orders/17");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(String::new()).expect("a valid request")
}

#[test]
fn the_key_comes_from_the_first_header_present() {
    let extractor = HttpCallExtractor::new("api");
    let with_id = request(&[("x-request-id", "req-1")]);
    let with_id = extractor.extract(&with_id);
    assert_eq!(with_id.request_key, crate::advanced::hash_str("req-1"));
    // Retries and other spans of one trace share the trace id, not the parent id.
    let span = |parent| {
        extractor
            .extract(&request(&[(
                "traceparent",
                &format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{parent}-01"),
            )]))
            .request_key
    };
    assert_eq!(span("00f067aa0ba902b7"), span("b7ad6b7169203331"));
    assert_eq!(
        span("00f067aa0ba902b7"),
        crate::advanced::hash_str("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    // An empty header is no key.
    let custom = HttpCallExtractor::new("api")
        .key_headers([HeaderName::from_static("x-amzn-trace-id")])
        .fallback_seed(1);
    let blank = request(&[("x-amzn-trace-id", "")]);
    assert_ne!(
        custom.extract(&blank).request_key,
        crate::advanced::hash_str("")
    );
    // An extension wins over headers.
    let mut keyed = request(&[("x-request-id", "req-1")]);
    keyed.extensions_mut().insert(RequestKey(99));
    assert_eq!(extractor.extract(&keyed).request_key, 99);
}

#[test]
fn requests_with_no_key_get_distinct_keys_that_replay_under_a_seed() {
    let keys = |seed| {
        let extractor = HttpCallExtractor::new("api").fallback_seed(seed);
        (0..100)
            .map(|_| extractor.extract(&request(&[])).request_key)
            .collect::<Vec<_>>()
    };
    let first = keys(7);
    let mut distinct = first.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 100);
    assert_eq!(first, keys(7));
    assert_ne!(first, keys(8));
}

#[test]
fn operation_is_method_and_route_from_the_configured_source() {
    let plain = request(&[]);
    let path = HttpCallExtractor::new("api").extract(&plain);
    assert_eq!(path.operation(), "GET /orders/17");
    // A long route does not fit inline.
    let long_route = format!("/{}", "x".repeat(200));
    let long = Request::delete(long_route.as_str())
        .body(())
        .expect("valid");
    assert_eq!(
        HttpCallExtractor::new("api").extract(&long).operation(),
        format!("DELETE {long_route}")
    );
    let mut routed = request(&[]);
    routed
        .extensions_mut()
        .insert(MatchedRoute("/orders/{id}".into()));
    let extractor = HttpCallExtractor::new("api").service("orders");
    let pieces = extractor.extract(&routed);
    assert_eq!(pieces.operation(), "GET /orders/{id}");
    let call = extractor.call(&pieces);
    assert_eq!(
        (call.site, call.service, call.operation),
        ("api", "orders", "GET /orders/{id}")
    );
    assert_eq!(call.site_hash, Some(crate::advanced::hash_str("api")));
    // A route function (axum's MatchedPath) wins over the extension.
    let from_fn = HttpCallExtractor::new("api")
        .route_from(|_| Some("/fixed"))
        .operation_form(OperationForm::Route);
    assert_eq!(from_fn.extract(&routed).operation(), "/fixed");
    let grpc = HttpCallExtractor::grpc("rpc");
    let rpc = Request::post("/shop.Orders/Get").body(()).expect("valid");
    let pieces = grpc.extract(&rpc);
    assert_eq!(
        (pieces.service(), pieces.operation()),
        (Some("shop.Orders"), "Get")
    );
    assert_eq!(grpc.call(&pieces).service, "shop.Orders");
}

#[test]
fn attempts_come_from_the_extension_or_a_header() {
    let extractor =
        HttpCallExtractor::new("api").attempt_header(HeaderName::from_static("amz-sdk-request"));
    assert_eq!(extractor.extract(&request(&[])).attempt, 0);
    let sdk = request(&[("amz-sdk-request", "attempt=3; max=3")]);
    assert_eq!(extractor.extract(&sdk).attempt, 2);
    assert_eq!(
        extractor
            .extract(&request(&[("amz-sdk-request", "4")]))
            .attempt,
        4
    );
    let mut counted = sdk;
    counted.extensions_mut().insert(Attempt(9));
    assert_eq!(extractor.extract(&counted).attempt, 9);
}

#[test]
fn timeouts_parse_in_each_format() {
    let ms = Duration::from_millis;
    assert_eq!(TimeoutFormat::Grpc.parse("250m"), Some(ms(250)));
    assert_eq!(TimeoutFormat::Grpc.parse("2S"), Some(ms(2000)));
    assert_eq!(
        TimeoutFormat::Grpc.parse("1H"),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        TimeoutFormat::Grpc.parse("7u"),
        Some(Duration::from_micros(7))
    );
    assert_eq!(
        TimeoutFormat::Grpc.parse("123456789m"),
        None,
        "over 8 digits"
    );
    assert_eq!(TimeoutFormat::Grpc.parse("m"), None);
    assert_eq!(TimeoutFormat::Grpc.parse("5x"), None);
    assert_eq!(TimeoutFormat::Grpc.parse("-5m"), None);
    assert_eq!(TimeoutFormat::Millis.parse("1500"), Some(ms(1500)));
    assert_eq!(TimeoutFormat::Humantime.parse("1s 500ms"), Some(ms(1500)));
    assert_eq!(TimeoutFormat::Humantime.parse("soon"), None);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_the_extension_or_the_earliest_header() {
    let extractor = HttpCallExtractor::new("api").timeout_header(
        HeaderName::from_static("x-timeout-ms"),
        TimeoutFormat::Millis,
    );
    let remaining = |request: &Request<String>| {
        extractor
            .deadline(request)
            .map(|deadline| deadline.remaining())
    };
    assert_eq!(remaining(&request(&[])), None);
    let both = request(&[("grpc-timeout", "3S"), ("x-timeout-ms", "800")]);
    assert_eq!(remaining(&both), Some(Duration::from_millis(800)));
    assert_eq!(
        remaining(&request(&[("grpc-timeout", "bogus")])),
        None,
        "a malformed header sets no deadline"
    );
    let mut extended = both;
    extended
        .extensions_mut()
        .insert(Deadline::after(Duration::from_secs(9)));
    assert_eq!(remaining(&extended), Some(Duration::from_secs(9)));
}

#[test]
fn an_opted_in_event_carries_method_path_route_and_headers() {
    let extractor = HttpCallExtractor::new("api").with_event(true);
    let event = extractor
        .extract(&request(&[("x-tenant", "acme")]))
        .event
        .expect("an event");
    assert_eq!(event["method"], "GET");
    assert_eq!(event["path"], "/orders/17");
    assert_eq!(event["headers"]["x-tenant"], "acme");
    // Event conditions in a plan see it.
    let rule = Rule::new(Fault::Status(403)).when_event(
        "/headers/x-tenant",
        crate::rule::EventTest::Equals("acme".into()),
    );
    let injector = injector(rule);
    let acme = request(&[("x-tenant", "acme")]);
    let pieces = extractor.extract(&acme);
    assert!(injector.decide(&extractor.call(&pieces)).failure.is_some());
    let other = request(&[("x-tenant", "other")]);
    let pieces = extractor.extract(&other);
    assert!(injector.decide(&extractor.call(&pieces)).is_pass());
}

fn ok_service()
-> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future = impl Send>
+ Clone
+ Send
+ 'static {
    service_fn(|_request: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::from("real")))
    })
}

#[tokio::test(start_paused = true)]
async fn a_server_answers_failures_as_responses_and_keeps_its_error_type() {
    let throttle = Rule::error(ErrorKind::Throttle)
        .named("throttle-orders")
        .first(1);
    let service = HttpChaosLayer::server(injector(throttle)).layer(ok_service());
    // The error type is still Infallible: no HandleErrorLayer needed.
    let response: Result<Response<String>, Infallible> =
        service.clone().oneshot(request(&[])).await;
    let response = response.expect("infallible");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()[RULE_HEADER], "throttle-orders");
    assert!(
        response.body().contains("throttle-orders"),
        "{}",
        response.body()
    );
    let next = service.oneshot(request(&[])).await.expect("infallible");
    assert_eq!(next.body(), "real");
}

#[tokio::test(start_paused = true)]
async fn an_injected_timeout_waits_for_the_callers_deadline_then_answers_504() {
    let service = HttpChaosLayer::server(injector(Rule::error(ErrorKind::Timeout).first(1)))
        .layer(ok_service());
    let started = Instant::now();
    let response = service
        .oneshot(request(&[("grpc-timeout", "1500m")]))
        .await
        .expect("infallible");
    assert_eq!(response.status(), 504);
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
    assert_eq!(response.headers()[RULE_HEADER], "#0");
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_real_call() {
    let slow = Rule::latency(LatencyDist::constant(Duration::from_millis(250)));
    let service = HttpChaosLayer::server(injector(slow)).layer(ok_service());
    let started = Instant::now();
    let response = service.oneshot(request(&[])).await.expect("infallible");
    assert_eq!(response.body(), "real");
    assert_eq!(started.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn the_kill_switch_ends_a_held_call_which_then_goes_ahead() {
    let injector = injector(Rule::new(Fault::Hang {
        buffer: Duration::ZERO,
    }));
    let service = HttpChaosLayer::server(injector.clone()).layer(ok_service());
    let started = Instant::now();
    let call = tokio::spawn(service.oneshot(request(&[("grpc-timeout", "60S")])));
    tokio::time::sleep(Duration::from_secs(2)).await;
    injector.disable();
    let response = call.await.expect("joined").expect("infallible");
    assert_eq!(response.body(), "real");
    // Woken by the switch itself, not by polling it.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    // Switched off before the call: no fault at all.
    let service = HttpChaosLayer::server(injector).layer(ok_service());
    let response = service.oneshot(request(&[])).await.expect("infallible");
    assert_eq!(response.body(), "real");
}

fn boxed_client()
-> impl Service<Request<String>, Response = Response<String>, Error = BoxError, Future = impl Send>
+ Clone
+ Send
+ 'static {
    service_fn(|_request: Request<String>| async {
        Ok::<_, BoxError>(Response::new(String::from("real")))
    })
}

#[tokio::test(start_paused = true)]
async fn a_client_sees_statuses_as_responses_and_resets_as_io_errors() {
    let status =
        HttpChaosLayer::client(injector(Rule::new(Fault::Status(503)))).layer(boxed_client());
    let response = status.oneshot(request(&[])).await.expect("a response");
    assert_eq!(response.status(), 503);

    let reset = HttpChaosLayer::client(injector(Rule::error(ErrorKind::ConnectionReset)))
        .layer(boxed_client());
    let error = reset.oneshot(request(&[])).await.expect_err("an error");
    let fault = error
        .downcast_ref::<TransportFault>()
        .expect("a transport fault");
    assert_eq!(fault.io_error().kind(), io::ErrorKind::ConnectionReset);
    let source = error.source().expect("a source");
    assert_eq!(
        source.downcast_ref::<io::Error>().map(io::Error::kind),
        Some(io::ErrorKind::ConnectionReset)
    );
}

#[tokio::test(start_paused = true)]
async fn on_injected_builds_the_callers_own_error() {
    #[derive(Debug, PartialEq)]
    enum MyError {
        Chaos(String),
    }
    let layer = HttpChaosLayer::client(injector(Rule::error(ErrorKind::Throttle).named("t")))
        .on_injected(
            |fault: InjectedError| -> Result<Response<String>, MyError> {
                Err(MyError::Chaos(fault.rule))
            },
        );
    let service = layer.layer(service_fn(|_request: Request<String>| async {
        Ok::<_, MyError>(Response::new(String::new()))
    }));
    let error = service.oneshot(request(&[])).await.expect_err("an error");
    assert_eq!(error, MyError::Chaos("t".into()));
}

/// Retries on any 5xx, at most `left` times.
#[derive(Clone)]
struct RetryServerErrors {
    left: u32,
}

impl tower::retry::Policy<Request<String>, Response<String>, BoxError> for RetryServerErrors {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<String>,
        result: &mut Result<Response<String>, BoxError>,
    ) -> Option<Self::Future> {
        let failed = result
            .as_ref()
            .map_or(true, |response| response.status().is_server_error());
        (failed && self.left > 0).then(|| {
            self.left -= 1;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, request: &Request<String>) -> Option<Request<String>> {
        let mut copy = Request::new(request.body().clone());
        *copy.headers_mut() = request.headers().clone();
        if let Some(attempt) = request.extensions().get::<Attempt>() {
            copy.extensions_mut().insert(*attempt);
        }
        Some(copy)
    }
}

/// Counts requests (of `n`, each with its own id) that end in a 2xx after up to 3 retries.
async fn recovered(count_attempts: bool, n: u32) -> (u32, u32) {
    let injector = injector(Rule::new(Fault::Status(503)).with_probability(0.5));
    let client = HttpChaosLayer::client(injector.clone()).layer(boxed_client());
    let mut ok = 0;
    for id in 0..n {
        let policy = RetryServerErrors { left: 3 };
        let request = request(&[("x-request-id", &format!("req-{id}"))]);
        let result = if count_attempts {
            tower::retry::Retry::new(CountAttempts::new(policy), client.clone())
                .oneshot(request)
                .await
        } else {
            tower::retry::Retry::new(policy, client.clone())
                .oneshot(request)
                .await
        };
        ok += u32::from(result.expect("a response").status().is_success());
    }
    let injected = injector.snapshot().rules[0].injected;
    (ok, u32::try_from(injected).expect("small"))
}

#[tokio::test(start_paused = true)]
async fn counted_retries_roll_anew_and_uncounted_ones_never_recover() {
    let n = 400;
    // Without attempts, a request the rule failed fails on every retry: about n/2 succeed,
    // all on their first try.
    let (ok, injected) = recovered(false, n).await;
    // Binomial(400, 0.5): mean 200, sd 10; 6 sd either side.
    assert!((140..=260).contains(&ok), "{ok}");
    // Every failed request was failed on each of its 4 tries: no retry recovered.
    assert_eq!(injected, 4 * (n - ok));
    // With attempts, a request fails only if all 4 tries do: p = 1/16.
    let (ok, injected) = recovered(true, n).await;
    let failed = n - ok;
    // Binomial(400, 1/16): mean 25, sd 4.84; 6 sd above the mean.
    assert!(failed <= 25 + 30, "{failed}");
    assert!(failed > 0, "some requests fail all 4 tries");
    assert!(injected > n / 2, "retries were decided anew: {injected}");
    // Replayable: the same run again gives the same outcome.
    assert_eq!(recovered(true, n).await, (ok, injected));
}

#[test]
fn with_call_builds_the_same_call_as_extract_even_when_nested() {
    let summary = |call: &crate::Call<'_>| {
        (
            call.request_key,
            call.site.to_owned(),
            call.site_hash,
            call.service.to_owned(),
            call.operation.to_owned(),
            call.attempt,
        )
    };
    let mut routed = request(&[("x-request-id", "r-9")]);
    routed.extensions_mut().insert(Attempt(2));
    for extractor in [
        HttpCallExtractor::new("api").service("orders"),
        HttpCallExtractor::new("api").operation_form(OperationForm::Route),
        HttpCallExtractor::grpc("rpc"),
    ] {
        let expected = summary(&extractor.call(&extractor.extract(&routed)));
        assert_eq!(extractor.with_call(&routed, summary), expected);
        // Re-entrant use (the per-thread buffer is busy) still gives the same call.
        let nested = extractor.with_call(&routed, |outer| {
            (summary(outer), extractor.with_call(&routed, summary))
        });
        assert_eq!(nested, (expected.clone(), expected));
    }
}

#[tokio::test(start_paused = true)]
async fn the_answer_names_the_rule_of_the_plan_that_decided_despite_a_reload() {
    let hang = |name: &str| {
        Rule::new(Fault::Hang {
            buffer: Duration::ZERO,
        })
        .named(name)
    };
    let injector = injector(hang("before-reload"));
    let service = HttpChaosLayer::server(injector.clone()).layer(ok_service());
    let call = tokio::spawn(service.oneshot(request(&[("grpc-timeout", "2S")])));
    tokio::time::sleep(Duration::from_secs(1)).await;
    injector
        .reload(Plan::new(1).with_rule(hang("after-reload")))
        .expect("valid");
    let response = call.await.expect("joined").expect("infallible");
    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()[RULE_HEADER], "before-reload");
}

#[test]
fn the_operation_is_built_only_for_plans_that_select_on_it() {
    let by_route = Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).for_route("/orders"));
    let by_operation =
        Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).for_operation("GET /orders"));
    assert!(!by_route.compile().expect("valid").needs_operation());
    assert!(by_operation.compile().expect("valid").needs_operation());
    assert!(!injector(by_route.rules[0].clone()).needs_operation());
    assert!(injector(by_operation.rules[0].clone()).needs_operation());
    let extractor = HttpCallExtractor::new("api");
    let routed = request(&[("x-request-id", "r-1")]);
    let parts = |call: &crate::Call<'_>| {
        (
            call.request_key,
            call.route.to_owned(),
            call.operation.to_owned(),
        )
    };
    let full = extractor.with_call_for(&routed, true, parts);
    let lean = extractor.with_call_for(&routed, false, parts);
    assert_eq!((full.0, full.1.as_str()), (lean.0, lean.1.as_str()));
    assert_eq!(full.2, format!("GET {}", full.1));
    assert_eq!(lean.2, "");
}

#[tokio::test(start_paused = true)]
async fn a_corruption_the_layer_cannot_read_into_fails_the_call_recognisably() {
    let corrupt = || Rule::new(Fault::Corrupt(crate::corrupt::CorruptMode::Truncate)).named("c");
    let server = HttpChaosLayer::server(injector(corrupt())).layer(ok_service());
    let response = server.oneshot(request(&[])).await.expect("infallible");
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()[RULE_HEADER], "c");

    let client = HttpChaosLayer::client(injector(corrupt())).layer(boxed_client());
    let error = client.oneshot(request(&[])).await.expect_err("an error");
    let fault = error
        .downcast_ref::<TransportFault>()
        .expect("a transport fault");
    assert_eq!(fault.io_error().kind(), io::ErrorKind::InvalidData);
}
