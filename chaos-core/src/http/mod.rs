//! Chaos for HTTP services and clients (feature `http`): faults that look like the real thing.
//!
//! * [`HttpChaosLayer::server`]: injected failures become responses of the service's own
//!   type ([`fault_response`]): a status fault that status, a throttle 429 with `Retry-After`,
//!   a timeout or hang 504, a server error its code, each with a one-line body naming the
//!   rule. The service's error type is untouched, so an axum `Router` (whose error is
//!   `Infallible`) takes the layer with no `HandleErrorLayer`.
//! * [`HttpChaosLayer::client`]: a status fault comes back as `Ok(response)` with that
//!   status, a reset or timeout as a [`TransportFault`] whose `source()` is an `io::Error` of
//!   the right kind; `.on_injected(..)` builds the caller's own error or response instead.
//! * A `corrupt` fault cannot reach into a generic body: servers answer it 502 Bad Gateway,
//!   clients see a [`TransportFault`] of kind `InvalidData` (see [`crate::corrupt`]).
//! * [`HttpCallExtractor`]: which call a request is (key from `x-request-id` /
//!   `traceparent`, never a constant; method and matched route; attempt; deadline from
//!   `grpc-timeout`, another header or an extension).
//! * [`CountAttempts`]: wraps a `tower::retry` policy so each retry rolls anew.
//!
//! ```
//! use chaos_core::{Fault, Injector, Plan, Rule};
//! use chaos_core::http::HttpChaosLayer;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let injector = Injector::new(Plan::new(1).with_rule(Rule::new(Fault::Status(503)).named("orders-down").first(1)))?;
//! let service = ServiceBuilder::new()
//!     .layer(HttpChaosLayer::server(injector))
//!     .service(service_fn(|_request: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("ok")))
//!     }));
//!
//! let response = service.clone().oneshot(Request::new(String::new())).await?;
//! assert_eq!(response.status(), 503);
//! assert_eq!(response.headers()["x-chaos-rule"], "orders-down");
//! let response = service.oneshot(Request::new(String::new())).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! # Keys, retries and replay
//!
//! A decision is a pure function of `(seed, rule, request key, site, attempt)`, so the key
//! must differ per logical request (a constant key makes `probability = 0.1` all or nothing,
//! see [`crate::keys`]) and retries must raise the attempt, or a retried request meets the
//! same decision every time. With a request id header, a retry keeps its key; [`Attempt`]
//! (set by [`CountAttempts`] or your own retry loop) makes it roll anew; both replay. A
//! request with no key gets a fresh one from a seeded counter
//! ([`HttpCallExtractor::fallback_seed`]): distinct per request, the same sequence on every
//! sequential run.
//!
//! # The kill switch
//!
//! A call held by a fault checks the kill switch every 100 ms of (virtual) time and goes ahead
//! unfaulted once it is thrown.

mod extract;
mod layer;
mod respond;
mod retry;

pub use extract::{
    Attempt, HttpCallExtractor, MatchedRoute, OperationForm, RequestCall, RequestKey, RouteFn,
    TimeoutFormat,
};
pub use layer::{HttpChaos, HttpChaosFuture, HttpChaosLayer};
#[cfg(feature = "grpc")]
pub(crate) use respond::insert_rule_header;
pub use respond::{
    AnswerHttp, FaultBody, OnInjected, RULE_HEADER, RealisticFaults, ResponseOptions,
    TransportFault, fault_response, fault_status,
};
pub use retry::{CarriesAttempt, CountAttempts};

#[cfg(test)]
mod tests;
