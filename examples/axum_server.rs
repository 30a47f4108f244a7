//! Server-side chaos around an axum 0.8 service: injected failures answer as HTTP responses
//! (503, 429 with `Retry-After`, 504), chosen by method and matched route.
//!
//! Run: `cargo run --example axum_server`. Everything runs in-process (no socket); the test
//! suite runs it under tokio's paused clock (`tests/http_examples.rs`).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path};
use axum::routing::get;
use chaos_core::http::{HttpCallExtractor, HttpChaosLayer};
use chaos_core::{CompiledPlan, Injector};
use http::Request;
use tower::ServiceExt;

/// The plan, as a team would write it. Rules select calls by the route template axum matched
/// (`route = "/orders/{id}"`, compared literally), or by operation: the method, a space, then
/// the route (`POST /checkout`; a glob, where braces would be alternation).
pub const PLAN: &str = r#"
seed = 2026

[[rules]]
name = "orders-unavailable"
fault = { status = 503 }
match = { service = "orders-api", route = "/orders/{id}" }
probability = 0.2

[[rules]]
name = "checkout-throttled"
fault = { error = "throttle" }
match = { operation = "POST /checkout" }
probability = 0.5

[[rules]]
name = "slow-orders"
fault = { latency = "150ms" }
match = { route = "/orders/{id}" }
probability = 0.5
"#;

/// The application: an ordinary axum router, its error type `Infallible`.
pub fn app() -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            get(|Path(id): Path<u64>| async move { format!("order {id}") }),
        )
        .route("/checkout", axum::routing::post(|| async { "paid" }))
}

/// The application with server-side chaos. `Router::layer` wraps each route, where axum has
/// already recorded the matched route (`MatchedPath`).
pub fn app_with_chaos(injector: Injector) -> Router {
    let extractor = HttpCallExtractor::new("checkout")
        .service("orders-api")
        .route_from(|extensions| extensions.get::<MatchedPath>().map(MatchedPath::as_str))
        .fallback_seed(2026);
    app().layer(HttpChaosLayer::server(injector).extractor(extractor))
}

/// Sends `n` requests of each kind in-process and counts responses by (request, status).
pub async fn run(n: u32) -> BTreeMap<(&'static str, u16), u32> {
    let plan = CompiledPlan::from_toml_str(PLAN).expect("the example plan is valid");
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    let injector = builder.build().expect("no guardrail is set");
    let app = app_with_chaos(injector);
    let mut statuses = BTreeMap::new();
    for id in 0..n {
        let requests = [
            ("GET /orders/{id}", Request::get(format!("/orders/{id}"))),
            ("POST /checkout", Request::post("/checkout")),
        ];
        for (name, builder) in requests {
            let request = builder
                .header("x-request-id", format!("req-{id}"))
                .body(Body::empty())
                .expect("a valid request");
            // No HandleErrorLayer: the router's error is still Infallible.
            let Ok(response) = app.clone().oneshot(request).await;
            *statuses
                .entry((name, response.status().as_u16()))
                .or_insert(0) += 1;
        }
    }
    statuses
}

// Under a paused clock the injected latencies pass in virtual time, not real time.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    for ((request, status), count) in run(200).await {
        println!("{request:<18} {status}  x{count}");
    }
}
