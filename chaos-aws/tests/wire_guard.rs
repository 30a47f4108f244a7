//! The wire wrapper honours the same guardrails as the Lambda layer: the environment
//! allow-list, dry run, the stop alarm (a `Guard`), the injection budget and the expiry (the
//! injector's), and a live configuration kept fresh off the request path. The real client
//! here is an in-process stand-in that answers every request with an empty `GetItem` result
//! and counts what reaches it, so the tests run on tokio's paused clock (budget minutes and
//! expiries pass in virtual time) and need no network.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::body::SdkBody;
use chaos_aws::{ChaosHttpClient, ConfigSource, Guard, LiveConfig};
use chaos_core::{CompiledPlan, Injector, InjectorBuilder};
use support::{Attempts, dynamodb};

const THROTTLE_GET_ITEM: &str = r#"
    seed = 1
    [[rules]]
    name = "throttled-reads"
    fault = { error = "throttle" }
    match = { service = "dynamodb", operation = "GetItem" }
    probability = 1.0
"#;

/// The real client's stand-in: answers `{}` (an empty `GetItem` result) and counts.
#[derive(Clone, Debug, Default)]
struct Backend(Arc<AtomicUsize>);

impl Backend {
    fn reached(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl HttpConnector for Backend {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        self.0.fetch_add(1, Ordering::SeqCst);
        let mut response =
            HttpResponse::new(200.try_into().unwrap(), SdkBody::from(r#"{}"#.as_bytes()));
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Backend {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.clone().into_shared()
    }
}

/// Lets background tasks run until `done`; fails (rather than hangs) when they never finish.
async fn settle(done: impl Fn() -> bool, what: &str) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{what} never finished: nothing started it");
}

fn injector_with(configure: impl FnOnce(&mut InjectorBuilder)) -> Injector {
    let mut builder = Injector::builder();
    builder
        .plan(CompiledPlan::from_toml_str(THROTTLE_GET_ITEM).unwrap())
        .ignore_env();
    configure(&mut builder);
    builder.build().unwrap()
}

fn wrapped(backend: &Backend, injector: Injector, guard: Option<Guard>) -> ChaosHttpClient {
    let mut builder = ChaosHttpClient::builder(backend.clone()).injector(injector);
    if let Some(guard) = guard {
        builder = builder.guard(guard);
    }
    builder.build().unwrap()
}

/// One `GetItem`: whether it was throttled, and the attempts the SDK made.
async fn get_item(chaos: &ChaosHttpClient, ids_seed: u64) -> (bool, usize) {
    let attempts = Attempts::default();
    let result = dynamodb(chaos, &attempts, ids_seed)
        .get_item()
        .table_name("orders")
        .key("id", AttributeValue::S("1".into()))
        .send()
        .await;
    let throttled = match result {
        Ok(_) => false,
        Err(error) => {
            let error = error.into_service_error();
            assert!(
                error.is_provisioned_throughput_exceeded_exception(),
                "{error:?}"
            );
            true
        }
    };
    (throttled, attempts.count())
}

#[tokio::test(start_paused = true)]
async fn outside_the_allowed_environments_requests_go_out_undecided() {
    let backend = Backend::default();
    let guard = Guard::builder()
        .allow_environments(["staging"])
        .environment(Some("prod"))
        .build();
    let chaos = wrapped(&backend, injector_with(|_| {}), Some(guard));
    assert_eq!(get_item(&chaos, 1).await, (false, 1));
    assert_eq!(backend.reached(), 1);
    let stats = &chaos.injector().snapshot().rules[0];
    assert_eq!(
        (stats.evaluated, stats.injected),
        (0, 0),
        "not even decided"
    );

    // The same plan in an allowed environment: every attempt throttled, none reach the backend.
    let backend = Backend::default();
    let guard = Guard::builder()
        .allow_environments(["staging"])
        .environment(Some("staging"))
        .build();
    let chaos = wrapped(&backend, injector_with(|_| {}), Some(guard));
    assert_eq!(get_item(&chaos, 2).await, (true, 3));
    assert_eq!(backend.reached(), 0);
}

#[tokio::test(start_paused = true)]
async fn dry_run_decides_and_counts_but_sends_every_request_untouched() {
    let backend = Backend::default();
    let guard = Guard::builder()
        .dry_run(true)
        .environment(Some("dev"))
        .build();
    let chaos = wrapped(&backend, injector_with(|_| {}), Some(guard.clone()));
    assert_eq!(get_item(&chaos, 3).await, (false, 1));
    assert_eq!(backend.reached(), 1);
    assert_eq!(guard.dry_run_counts(), (1, 1), "decided, would inject");
    // A request no rule selects is decided and counted too.
    let attempts = Attempts::default();
    dynamodb(&chaos, &attempts, 4)
        .put_item()
        .table_name("orders")
        .item("id", AttributeValue::S("1".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(guard.dry_run_counts(), (2, 1));
    assert_eq!(backend.reached(), 2);
    assert_eq!(chaos.guard().unwrap().dry_run_counts(), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn the_injection_budget_caps_wire_faults_per_minute() {
    let backend = Backend::default();
    let chaos = wrapped(
        &backend,
        injector_with(|builder| {
            builder.max_injections(2, Duration::from_secs(60));
        }),
        None,
    );
    // Two attempts throttled, the budget is spent, the third attempt goes out and succeeds.
    assert_eq!(get_item(&chaos, 5).await, (false, 3));
    assert_eq!(backend.reached(), 1);
    // The rest of the minute: nothing injected.
    assert_eq!(get_item(&chaos, 6).await, (false, 1));
    assert_eq!(backend.reached(), 2);
    // Next minute: a fresh budget.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(get_item(&chaos, 7).await, (false, 3));
    assert_eq!(backend.reached(), 3);
    let snapshot = chaos.injector().snapshot();
    assert_eq!(snapshot.rules[0].injected, 4);
    assert_eq!(snapshot.vetoed_by_budget, 3);
}

#[tokio::test(start_paused = true)]
async fn an_expired_injector_lets_every_request_through() {
    let backend = Backend::default();
    let chaos = wrapped(
        &backend,
        injector_with(|builder| {
            builder.expire_after(Duration::from_secs(300));
        }),
        None,
    );
    assert_eq!(get_item(&chaos, 8).await, (true, 3));
    assert_eq!(backend.reached(), 0);
    tokio::time::advance(Duration::from_secs(300)).await;
    assert_eq!(get_item(&chaos, 9).await, (false, 1));
    assert_eq!(backend.reached(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_kill_switch_reaches_the_wire() {
    let backend = Backend::default();
    let chaos = wrapped(&backend, injector_with(|_| {}), None);
    chaos.injector().disable();
    assert_eq!(get_item(&chaos, 10).await, (false, 1));
    chaos.injector().enable();
    assert_eq!(get_item(&chaos, 11).await, (true, 3));
}

#[tokio::test(start_paused = true)]
async fn a_live_configuration_is_refreshed_by_the_requests_themselves() {
    let path = std::env::temp_dir().join(format!("chaos-aws-wire-live-{}", std::process::id()));
    std::fs::write(&path, THROTTLE_GET_ITEM).unwrap();
    let mut builder = Injector::builder();
    builder.ignore_env();
    let live = LiveConfig::with_ttl(
        ConfigSource::file(&path),
        builder.build().unwrap(),
        Duration::from_secs(60),
    );
    let backend = Backend::default();
    let chaos = ChaosHttpClient::builder(backend.clone())
        .live(live.clone())
        .build()
        .unwrap();
    // The first request starts the fetch in the background and goes out with no plan yet.
    let (throttled, _) = get_item(&chaos, 12).await;
    assert!(!throttled, "the first request does not wait for the fetch");
    settle(|| !live.is_stale(), "the fetch the first request started").await;
    assert_eq!(get_item(&chaos, 13).await, (true, 3));

    // A plan emptied on disk takes effect once the TTL passes and a request notices.
    std::fs::write(&path, "seed = 1\n").unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    let _ = get_item(&chaos, 14).await;
    settle(|| !live.is_stale(), "the refetch a request started").await;
    assert_eq!(get_item(&chaos, 15).await, (false, 1));
    std::fs::remove_file(&path).unwrap();
}

#[cfg(feature = "cloudwatch")]
mod alarm {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;

    use chaos_aws::{AlarmReader, AlarmState, AlarmStop};

    use super::*;

    /// An alarm whose state the test sets.
    #[derive(Clone)]
    struct SetAlarm(Arc<Mutex<AlarmState>>);

    impl AlarmReader for SetAlarm {
        fn read<'a>(
            &'a self,
            _alarm_name: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<AlarmState, String>> + Send + 'a>> {
            let state = *self.0.lock().unwrap();
            Box::pin(async move { Ok(state) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_alarm_stops_wire_faults_while_in_alarm() {
        let state = SetAlarm(Arc::new(Mutex::new(AlarmState::Ok)));
        let alarm =
            AlarmStop::with_interval(state.clone(), "orders-errors", Duration::from_secs(10));
        assert_eq!(alarm.poll().await, AlarmState::Ok);
        let guard = Guard::builder()
            .environment(None)
            .stop_on_alarm(alarm.clone())
            .build();
        let backend = Backend::default();
        let chaos = wrapped(&backend, injector_with(|_| {}), Some(guard));
        assert_eq!(get_item(&chaos, 20).await, (true, 3));

        // The alarm fires; once the next poll is due, a request starts it in the background
        // and injection stops by the following request.
        *state.0.lock().unwrap() = AlarmState::Alarm;
        tokio::time::advance(Duration::from_secs(10)).await;
        let _ = get_item(&chaos, 21).await;
        settle(
            || alarm.state() == AlarmState::Alarm,
            "the poll the request started",
        )
        .await;
        let reached = backend.reached();
        assert_eq!(get_item(&chaos, 22).await, (false, 1));
        assert_eq!(backend.reached(), reached + 1);

        // Cleared: faults resume after the next poll.
        *state.0.lock().unwrap() = AlarmState::Ok;
        tokio::time::advance(Duration::from_secs(10)).await;
        let _ = get_item(&chaos, 23).await;
        settle(
            || alarm.state() == AlarmState::Ok,
            "the poll the request started",
        )
        .await;
        assert_eq!(get_item(&chaos, 24).await, (true, 3));
    }
}
