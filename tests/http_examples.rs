//! The HTTP and gRPC examples, run in-process under tokio's paused clock: each fault shows up
//! as the response or error it stands for, in the expected proportions.

#[path = "../examples/axum_server.rs"]
#[allow(dead_code)]
mod axum_server;

use std::time::Duration;

use axum::body::Body;
use chaos_core::Injector;
use http::Request;
use tokio::time::Instant;
use tower::ServiceExt;

/// `count` lies within `sd` standard deviations of Binomial(n, p)'s mean.
fn within(count: u32, n: u32, p: f64, sd: f64) -> bool {
    let mean = f64::from(n) * p;
    let spread = sd * (mean * (1.0 - p)).sqrt();
    (f64::from(count) - mean).abs() <= spread
}

#[tokio::test(start_paused = true)]
async fn axum_server_answers_injected_faults_as_responses() {
    let n = 1000;
    let statuses = axum_server::run(n).await;
    let get = |request, status| statuses.get(&(request, status)).copied().unwrap_or(0);
    assert!(
        within(get("GET /orders/{id}", 503), n, 0.2, 6.0),
        "{statuses:?}"
    );
    assert_eq!(
        get("GET /orders/{id}", 200) + get("GET /orders/{id}", 503),
        n
    );
    assert!(
        within(get("POST /checkout", 429), n, 0.5, 6.0),
        "{statuses:?}"
    );
    assert_eq!(get("POST /checkout", 200) + get("POST /checkout", 429), n);
    // The same seed and request ids replay exactly.
    assert_eq!(axum_server::run(n).await, statuses);
}

#[tokio::test(start_paused = true)]
async fn axum_sees_the_matched_route_and_the_throttle_headers() {
    // The route template axum matched, not the path, compared literally.
    let plan = r#"
        seed = 1
        [[rules]]
        name = "orders-throttled"
        fault = { error = "throttle" }
        match = { route = "/orders/{id}" }
        every = 1
    "#;
    let plan = chaos_core::CompiledPlan::from_toml_str(plan).expect("valid");
    assert_eq!(plan.warnings(), &[]);
    // The same template as an operation glob is alternation of one choice: warned about.
    let glob = chaos_core::CompiledPlan::from_toml_str(
        r#"
        [[rules]]
        fault = { error = "throttle" }
        match = { operation = "GET /orders/{id}" }
        every = 1
    "#,
    )
    .expect("valid");
    assert_eq!(glob.warnings().len(), 1);
    assert!(
        glob.warnings()[0]
            .message
            .contains(r#"`match.route = "/orders/{id}"`"#),
        "{}",
        glob.warnings()[0]
    );
    let injector = Injector::new(plan).expect("valid");
    let app = axum_server::app_with_chaos(injector);
    let started = Instant::now();
    let request = Request::get("/orders/7")
        .body(Body::empty())
        .expect("valid");
    let Ok(response) = app.oneshot(request).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-chaos-rule"], "orders-throttled");
    assert_eq!(started.elapsed(), Duration::ZERO);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .expect("a small body");
    assert_eq!(
        std::str::from_utf8(&body).expect("utf-8"),
        "chaos: rule \"orders-throttled\" injected an error (throttled)\n"
    );
}

#[path = "../examples/client_retries.rs"]
#[allow(dead_code)]
mod client_retries;

#[tokio::test(start_paused = true)]
async fn client_retries_recover_only_when_attempts_are_counted() {
    let n = 1000;
    // Per try, a fault fires with p = 1 - 0.8 * 0.9 = 0.28.
    let p_fault = 1.0 - 0.8 * 0.9;
    let uncounted = client_retries::run(n, false).await;
    // Every retry meets the first decision: nothing recovers.
    assert_eq!(uncounted.after_retries, 0, "{uncounted:?}");
    assert!(
        within(n - uncounted.first_try, n, p_fault, 6.0),
        "{uncounted:?}"
    );
    // Both kinds of fault reached the policy as what they stand for, and it retried both:
    // 503 responses (p = 0.2) and reset errors (p = 0.8 * 0.1).
    assert!(
        within(uncounted.failed_status, n, 0.2, 6.0),
        "{uncounted:?}"
    );
    assert!(
        within(uncounted.failed_error, n, 0.08, 6.0),
        "{uncounted:?}"
    );

    let counted = client_retries::run(n, true).await;
    // The first try is decided exactly as before.
    assert_eq!(counted.first_try, uncounted.first_try);
    // A request fails only if all 4 tries fault: p = 0.28^4, about 0.6%.
    let failed = counted.failed_status + counted.failed_error;
    assert!(within(failed, n, p_fault.powi(4), 6.0), "{counted:?}");
    assert_eq!(counted.first_try + counted.after_retries + failed, n);
    // Replayable.
    assert_eq!(client_retries::run(n, true).await, counted);
}

#[path = "../examples/grpc_service.rs"]
#[allow(dead_code)]
mod grpc_service;

#[tokio::test(start_paused = true)]
async fn tonic_clients_see_injected_faults_as_grpc_statuses() {
    let n = 2000;
    let codes = grpc_service::run(n).await;
    let count = |code: &str| codes.get(code).copied().unwrap_or(0);
    // Rules roll independently; the first failing rule in plan order wins.
    assert!(within(count("Unavailable"), n, 0.15, 6.0), "{codes:?}");
    assert!(
        within(count("ResourceExhausted"), n, 0.85 * 0.1, 6.0),
        "{codes:?}"
    );
    assert!(
        within(count("DeadlineExceeded"), n, 0.85 * 0.9 * 0.05, 6.0),
        "{codes:?}"
    );
    assert_eq!(
        count("Ok") + count("Unavailable") + count("ResourceExhausted") + count("DeadlineExceeded"),
        n,
        "{codes:?}"
    );
    assert_eq!(grpc_service::run(n).await, codes);
}

#[tokio::test(start_paused = true)]
async fn an_injected_grpc_timeout_waits_for_the_clients_grpc_timeout() {
    let plan = r#"
        seed = 1
        [[rules]]
        name = "orders-timeout"
        fault = { error = "timeout" }
        match = { service = "shop.Orders", operation = "Get" }
        every = 1
    "#;
    let injector = Injector::new(chaos_core::CompiledPlan::from_toml_str(plan).expect("valid"))
        .expect("valid");
    let mut client = tonic::client::Grpc::new(grpc_service::server_with_chaos(injector));
    let mut request = tonic::Request::new(String::from("1"));
    request.set_timeout(Duration::from_millis(750));
    client.ready().await.expect("ready");
    let started = Instant::now();
    let status = client
        .unary(
            request,
            http::uri::PathAndQuery::from_static("/shop.Orders/Get"),
            grpc_service::Utf8Codec,
        )
        .await
        .expect_err("an injected timeout");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert_eq!(
        status.message(),
        "chaos: rule \"orders-timeout\" injected an error (timed out)"
    );
    // tonic's grpc-timeout header has millisecond resolution at this size: exact.
    assert_eq!(started.elapsed(), Duration::from_millis(750));
}
