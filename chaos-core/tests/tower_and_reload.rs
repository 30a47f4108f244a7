//! The tower layer under tokio's paused clock, and hot reloads while calls are in flight.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chaos_core::fault::{ErrorKind, Fault, InjectedError, InjectedKind};
use chaos_core::{Call, ChaosLayer, Injector, LatencyDist, Plan, Rule};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

fn quiet(plan: Plan) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    builder.build().expect("valid plan")
}

fn echo_service(injector: Injector) -> impl Service<u64, Response = u64, Error = BoxError> + Clone {
    ServiceBuilder::new()
        .layer(ChaosLayer::from_fn(injector, |request: &u64| {
            Call::new(*request, "orders").service("dynamodb")
        }))
        .service_fn(|request: u64| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, BoxError>(request)
        })
}

#[tokio::test(start_paused = true)]
async fn latency_is_added_in_virtual_time() {
    let injector = quiet(Plan::new(1).with_rule(Rule::latency(LatencyDist::constant(
        Duration::from_millis(250),
    ))));
    let mut service = echo_service(injector);
    let started = tokio::time::Instant::now();
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(5)
        .await
        .expect("latency only delays");
    assert_eq!(response, 5);
    assert_eq!(started.elapsed(), Duration::from_millis(260));
}

#[tokio::test(start_paused = true)]
async fn errors_and_statuses_surface_as_injected_errors() {
    let plan = Plan::new(1)
        .with_rule(Rule::error(ErrorKind::Throttle).named("throttle").first(1))
        .with_rule(Rule::new(Fault::Status(503)).named("status").first(2));
    let mut service = echo_service(quiet(plan));
    let mut kinds = Vec::new();
    for request in 0..3 {
        match service.ready().await.expect("ready").call(request).await {
            Ok(value) => kinds.push(format!("ok {value}")),
            Err(error) => {
                let injected = error
                    .downcast::<InjectedError>()
                    .expect("an injected error, not a real one");
                kinds.push(format!("{} {:?}", injected.rule, injected.kind));
            }
        }
    }
    // Call 0: both rules fire; the first failing rule in plan order wins, and the status rule
    // still counts the call. Call 1: only the status rule is within its first two. Call 2:
    // nothing fires.
    assert_eq!(
        kinds,
        vec![
            format!("throttle {:?}", InjectedKind::Error(ErrorKind::Throttle)),
            format!("status {:?}", InjectedKind::Status(503)),
            "ok 2".to_owned()
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn inner_service_is_not_called_when_the_call_fails() {
    let calls = std::sync::Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    let mut service = ServiceBuilder::new()
        .layer(ChaosLayer::from_fn(
            quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::ConnectionReset).every(2))),
            |request: &u64| Call::new(*request, "s"),
        ))
        .service_fn(move |request: u64| {
            counted.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, BoxError>(request) }
        });
    let mut failures = 0;
    for request in 0..10 {
        if service
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .is_err()
        {
            failures += 1;
        }
    }
    assert_eq!(failures, 5);
    assert_eq!(calls.load(Ordering::Relaxed), 5);
}

#[test]
fn reloads_while_calls_are_in_flight_see_one_plan_or_the_other() {
    let always = Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).named("always"));
    let never = Plan::new(1).with_rule(
        Rule::error(ErrorKind::Throttle)
            .named("never")
            .with_probability(0.0),
    );
    let injector = quiet(always.clone());
    let stop = AtomicBool::new(false);
    let (failed, passed) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        for thread in 0..3u64 {
            let (injector, stop, failed, passed) = (injector.clone(), &stop, &failed, &passed);
            scope.spawn(move || {
                let mut key = thread;
                while !stop.load(Ordering::Relaxed) {
                    key += 3;
                    let verdict = injector.decide(&Call::new(key, "s"));
                    // Each decision comes whole from one plan: a failure is always "always"'s.
                    match verdict.failure.as_deref() {
                        Some(failure) => {
                            assert_eq!(failure.rule(), 0);
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        for round in 0..2_000 {
            let plan = if round % 2 == 0 { &never } else { &always };
            injector.reload(plan).expect("valid plan");
        }
        injector.reload(&never).expect("valid plan");
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(injector.snapshot().generation, 2_001);
    // After the last reload every thread sees the new plan.
    std::thread::scope(|scope| {
        for _ in 0..3 {
            let injector = injector.clone();
            scope.spawn(move || assert!(injector.decide(&Call::new(1, "s")).is_pass()));
        }
    });
    assert!(failed.load(Ordering::Relaxed) + passed.load(Ordering::Relaxed) > 0);
}

#[test]
fn a_plan_that_fails_to_check_stops_injection_and_keeps_the_old_plan_loaded() {
    let injector = quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Timeout).named("t")));
    let error = injector
        .reload_toml("[[rules]]\nfault = { error = \"timeout\" }\nprobability = 1.0\nwindow = { start = \"1s\", duration = \"0s\" }\n")
        .expect_err("empty window");
    assert!(error.to_string().contains("window.duration"), "{error}");
    // A rejected reload means no faults until a valid plan arrives.
    assert!(injector.decide(&Call::new(1, "s")).is_pass());
    let snapshot = injector.snapshot();
    assert!(snapshot.suspended);
    // The old plan stays loaded (its counters readable), not in force.
    assert_eq!(snapshot.rules[0].label, "t");
}

/// Collects formatted tracing output in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_injection_emits_a_tracing_event() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let injector = quiet(
        Plan::new(1).with_rule(
            Rule::error(ErrorKind::Throttle)
                .named("orders-throttle")
                .every(2),
        ),
    );
    tracing::subscriber::with_default(subscriber, || {
        for key in 0..4 {
            injector.decide(&Call::new(key, "checkout/orders"));
        }
    });
    let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8");
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("injected fault"))
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert!(
        events[0].contains("rule=\"orders-throttle\"")
            || events[0].contains("rule=orders-throttle"),
        "{text}"
    );
    assert!(
        events[0].contains("request_key=1") && events[1].contains("request_key=3"),
        "{text}"
    );
    assert!(
        events[0].contains("fault=\"error\"") || events[0].contains("fault=error"),
        "{text}"
    );
}

/// Run by `chaos_disabled_env_var_switches_injection_off` in a child process whose
/// environment has `CHAOS_DISABLED` set (editing this process's environment would race with
/// other tests).
#[test]
#[ignore = "run as a child process by chaos_disabled_env_var_switches_injection_off"]
fn child_sees_chaos_disabled() {
    let injector = Injector::new(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
        .expect("valid plan");
    assert!(!injector.is_enabled());
    assert!(injector.decide(&Call::new(1, "s")).is_pass());
}

#[test]
fn chaos_disabled_env_var_switches_injection_off() {
    let run = |value: &str| {
        std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--ignored",
                "--exact",
                "child_sees_chaos_disabled",
                "--nocapture",
            ])
            .env(chaos_core::injector::DISABLE_ENV_VAR, value)
            .output()
            .expect("child runs")
    };
    let disabled = run("1");
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stdout)
    );
    // "0" and "false" leave injection on, so the child's assertion fails.
    assert!(!run("false").status.success());
}

/// An extractor whose requests carry the caller's deadline.
#[derive(Clone)]
struct WithDeadline;

impl chaos_core::layer::CallExtractor<(u64, chaos_core::Deadline)> for WithDeadline {
    fn extract<'r>(&'r self, request: &'r (u64, chaos_core::Deadline)) -> Call<'r> {
        Call::new(request.0, "s")
    }

    fn deadline(&self, request: &(u64, chaos_core::Deadline)) -> Option<chaos_core::Deadline> {
        Some(request.1)
    }
}

#[tokio::test(start_paused = true)]
async fn a_hang_through_the_layer_ends_at_the_requests_deadline_minus_the_buffer() {
    let injector = quiet(Plan::new(1).with_rule(Rule::new(Fault::Hang {
        buffer: Duration::from_millis(200),
    })));
    let mut service = ServiceBuilder::new()
        .layer(ChaosLayer::new(injector, WithDeadline))
        .service_fn(
            |request: (u64, chaos_core::Deadline)| async move { Ok::<_, BoxError>(request.0) },
        );
    let started = tokio::time::Instant::now();
    let deadline = chaos_core::Deadline::after(Duration::from_secs(3));
    let error = service
        .ready()
        .await
        .expect("ready")
        .call((1, deadline))
        .await
        .expect_err("hangs, then fails");
    assert_eq!(
        error.downcast::<InjectedError>().expect("injected").kind,
        InjectedKind::Hang
    );
    assert_eq!(started.elapsed(), Duration::from_millis(2_800));
}

/// A service that is up (always ready) or down (never ready: its error must reach the caller
/// of `poll_ready`).
#[derive(Clone)]
struct Stub {
    up: bool,
}

impl Service<u64> for Stub {
    type Response = u64;
    type Error = BoxError;
    type Future = std::future::Ready<Result<u64, BoxError>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(if self.up { Ok(()) } else { Err("down".into()) })
    }

    fn call(&mut self, request: u64) -> Self::Future {
        std::future::ready(Ok(request))
    }
}

#[tokio::test(start_paused = true)]
async fn readiness_is_the_inner_services_and_futures_say_whether_they_fault() {
    use tower::Layer;
    let layer = ChaosLayer::from_fn(quiet(Plan::new(1)), |request: &u64| {
        Call::new(*request, "orders")
    });
    assert!(format!("{layer:?}").contains("FnExtractor"), "{layer:?}");
    let mut down = layer.layer(Stub { up: false });
    let error = down.ready().await.err().expect("the inner service is down");
    assert_eq!(error.to_string(), "down");

    let mut passing = layer.layer(Stub { up: true });
    let future = passing.ready().await.expect("ready").call(1);
    assert_eq!(format!("{future:?}"), "ResponseFuture::Pass");
    let mut faulting = ChaosLayer::from_fn(
        quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle))),
        |request: &u64| Call::new(*request, "orders"),
    )
    .layer(Stub { up: true });
    let future = faulting.ready().await.expect("ready").call(1);
    assert_eq!(format!("{future:?}"), "ResponseFuture::Faulted");
    assert!(future.await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_layer_at_a_site_faults_exactly_the_requests_the_ad_hoc_layer_faults() {
    let plan = Plan::new(3)
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .named("throttle")
                .for_service("dynamodb")
                .with_probability(0.3),
        )
        .with_rule(Rule::error(ErrorKind::Throttle).for_service("s3"));
    let mut ad_hoc = echo_service(quiet(plan.clone()));
    let mut at_site = ServiceBuilder::new()
        .layer(ChaosLayer::at_site(
            quiet(plan),
            chaos_core::Site::new("orders").service("dynamodb"),
            |request: &u64| *request,
        ))
        .service_fn(|request: u64| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, BoxError>(request)
        });
    let mut faulted = 0;
    for request in 0..200u64 {
        let expected = ad_hoc.ready().await.expect("ready").call(request).await;
        let observed = at_site.ready().await.expect("ready").call(request).await;
        match (expected, observed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string());
                faulted += 1;
            }
            (a, b) => panic!("request {request}: ad hoc {a:?}, at the site {b:?}"),
        }
    }
    // Binomial(200, 0.3): mean 60, 5 standard deviations 32.
    assert!((28..=92).contains(&faulted), "{faulted} of 200 at 30%");
}

#[tokio::test(start_paused = true)]
async fn a_partition_delivers_the_request_when_its_window_ends() {
    let start = tokio::time::Instant::now();
    let injector = quiet(Plan::new(1).with_rule(Rule::partition(
        Duration::from_secs(1),
        Duration::from_secs(4),
    )));
    let reached = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reached.clone();
    let mut service = ServiceBuilder::new()
        .layer(ChaosLayer::from_fn(injector, |request: &u64| {
            Call::new(*request, "orders")
        }))
        .service_fn(move |request: u64| {
            seen.lock().expect("not poisoned").push(start.elapsed());
            async move { Ok::<_, BoxError>(request) }
        });
    // Before the window: untouched. During it: held until 5 s, then delivered (not failed).
    // After it: untouched again.
    let mut answered = Vec::new();
    for at_ms in [500, 2_000, 4_999, 6_000] {
        tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
        let value = service
            .ready()
            .await
            .expect("ready")
            .call(at_ms)
            .await
            .expect("a partition delivers");
        answered.push((value, start.elapsed()));
    }
    let ms = Duration::from_millis;
    assert_eq!(
        answered,
        vec![
            (500, ms(500)),
            (2_000, ms(5_000)),
            (4_999, ms(5_000)),
            (6_000, ms(6_000))
        ]
    );
    assert_eq!(
        *reached.lock().expect("not poisoned"),
        vec![ms(500), ms(5_000), ms(5_000), ms(6_000)]
    );
}
