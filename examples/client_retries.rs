//! A client call path with client-side chaos and retries: injected 503s come back as
//! responses, injected resets as errors whose source is an `io::Error`, and a retry policy that
//! classifies them the way production code does recovers from both, because each retry rolls
//! anew (`CountAttempts`).
//!
//! Run: `cargo run --example client_retries`. The backend is an in-process service (no
//! socket); the test suite runs this under tokio's paused clock (`tests/http_examples.rs`).

use std::error::Error;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use chaos_core::http::{CountAttempts, HttpChaosLayer};
use chaos_core::{CompiledPlan, Injector};
use http::{Request, Response};
use tower::retry::{Policy, RetryLayer};
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

/// Client-side faults: the dependency answers 503 to a fifth of the calls and resets the
/// connection on a tenth.
pub const PLAN: &str = r#"
seed = 7

[[rules]]
name = "inventory-503"
fault = { status = 503 }
match = { site = "inventory" }
probability = 0.2

[[rules]]
name = "inventory-reset"
fault = { error = "connection_reset" }
match = { site = "inventory" }
probability = 0.1
"#;

/// Retries 5xx, 429 and connection resets, up to `max_retries` times, with exponential
/// backoff from 50 ms: a policy as production code writes it, knowing nothing of chaos.
#[derive(Clone, Debug)]
pub struct RetryTransient {
    /// Retries left.
    pub max_retries: u32,
    /// Retries made so far.
    pub retries: u32,
}

/// Whether an error is a transient I/O failure, found by walking the source chain.
fn is_transient_io(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::TimedOut
            );
        }
        next = error.source();
    }
    false
}

impl<B: Clone> Policy<Request<B>, Response<String>, BoxError> for RetryTransient {
    type Future = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn retry(
        &mut self,
        _request: &mut Request<B>,
        result: &mut Result<Response<String>, BoxError>,
    ) -> Option<Self::Future> {
        let transient = match result {
            Ok(response) => response.status().is_server_error() || response.status() == 429,
            Err(error) => is_transient_io(error.as_ref()),
        };
        if !transient || self.retries >= self.max_retries {
            return None;
        }
        let backoff = Duration::from_millis(50) * 2u32.pow(self.retries);
        self.retries += 1;
        Some(Box::pin(tokio::time::sleep(backoff)))
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        let mut copy = Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        // Extensions are not Clone as a whole: copying the attempt is CountAttempts' job.
        Some(copy)
    }
}

/// How requests ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Succeeded on the first try.
    pub first_try: u32,
    /// Succeeded after one or more retries.
    pub after_retries: u32,
    /// Failed with an error status after every retry.
    pub failed_status: u32,
    /// Failed with a transport error after every retry.
    pub failed_error: u32,
}

/// Sends `n` requests, each with its own `x-request-id`, through retry and client-side chaos.
/// With `count_attempts` off, every retry of a request meets its first decision again.
pub async fn run(n: u32, count_attempts: bool) -> Outcomes {
    let plan = CompiledPlan::from_toml_str(PLAN).expect("the example plan is valid");
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    let injector = builder.build().expect("no guardrail is set");
    let extractor = chaos_core::HttpCallExtractor::new("inventory").service("inventory-api");
    let chaos = HttpChaosLayer::client(injector).extractor(extractor);
    // The dependency: answers 200 and counts how often it was reached.
    let backend = service_fn(|request: Request<String>| async move {
        let attempt = request
            .extensions()
            .get::<chaos_core::Attempt>()
            .map_or(0, |a| a.0);
        let mut response = Response::new(String::from("in stock"));
        response
            .headers_mut()
            .insert("x-attempt", http::HeaderValue::from(attempt));
        Ok::<_, BoxError>(response)
    });
    let mut outcomes = Outcomes::default();
    for id in 0..n {
        let policy = RetryTransient {
            max_retries: 3,
            retries: 0,
        };
        let request = Request::get("http://inventory/items/42")
            .header("x-request-id", format!("order-{id}"))
            .body(String::new())
            .expect("a valid request");
        let result = if count_attempts {
            ServiceBuilder::new()
                .layer(RetryLayer::new(CountAttempts::new(policy)))
                .layer(chaos.clone())
                .service(backend)
                .oneshot(request)
                .await
        } else {
            ServiceBuilder::new()
                .layer(RetryLayer::new(policy))
                .layer(chaos.clone())
                .service(backend)
                .oneshot(request)
                .await
        };
        match result {
            Ok(response) if response.status().is_success() => {
                if response.headers()["x-attempt"] == "0" {
                    outcomes.first_try += 1;
                } else {
                    outcomes.after_retries += 1;
                }
            }
            Ok(_) => outcomes.failed_status += 1,
            Err(_) => outcomes.failed_error += 1,
        }
    }
    outcomes
}

// Under a paused clock the retries' backoff passes in virtual time, not real time.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    for count_attempts in [false, true] {
        let outcomes = run(1000, count_attempts).await;
        println!("attempts counted: {count_attempts:<5} {outcomes:?}");
    }
}
