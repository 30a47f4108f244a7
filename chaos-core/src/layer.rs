//! A tower [`Layer`]/[`Service`] pair that applies a plan around any service.
//!
//! The request's key and site come from an extractor you supply; injected failures are an
//! [`InjectedError`], which the service's error type must be able to absorb
//! (`S::Error: From<InjectedError>`; tower's `BoxError` does).
//!
//! When every request goes to one place (a client for one service and operation), give the
//! layer a pre-resolved [`Site`] and a request key instead ([`ChaosLayer::at_site`]): the
//! rules are then found once per plan, not per request, for the same verdicts.
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::{Call, ChaosLayer, Injector, Plan, Rule, fault::ErrorKind};
//! use tower::{Service, ServiceBuilder, ServiceExt, BoxError};
//!
//! struct Order { id: u64 }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
//! let injector = Injector::new(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).first(1)))?;
//! let mut service = ServiceBuilder::new()
//!     .layer(ChaosLayer::from_fn(injector, |order: &Order| Call::new(order.id, "checkout/orders")))
//!     .service_fn(|order: Order| async move { Ok::<_, BoxError>(order.id * 10) });
//!
//! let first = service.ready().await?.call(Order { id: 1 }).await;
//! assert!(first.unwrap_err().is::<chaos_core::fault::InjectedError>());
//! assert_eq!(service.ready().await?.call(Order { id: 2 }).await?, 20);
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::fault::InjectedError;
use std::sync::Arc;

use crate::injector::{Injector, Site, SiteCall};
use crate::plan::{Call, Verdict};
use crate::timeout::Deadline;

/// Tells the layer which call a request is: its key, site, service, operation, attempt, event.
pub trait CallExtractor<Req> {
    /// The call this request makes.
    fn extract<'r>(&'r self, request: &'r Req) -> Call<'r>;

    /// The caller's deadline for this request, if it carries one (a Lambda context's remaining
    /// time, a gRPC deadline). A hang fault ends at this deadline minus its buffer; without
    /// one it lasts [`HANG_WITHOUT_DEADLINE`](crate::fault::HANG_WITHOUT_DEADLINE).
    fn deadline(&self, _request: &Req) -> Option<Deadline> {
        None
    }

    /// The request as a call at a pre-resolved [`Site`], when this extractor makes every
    /// request at one ([`SiteExtractor`] does): the layer then decides it at the site, to the
    /// same verdict as [`extract`](Self::extract)'s call, for less. `None` (the default): the
    /// layer decides `extract`'s call.
    fn extract_at_site<'r>(&'r self, _request: &'r Req) -> Option<SiteCall<'r>> {
        None
    }
}

/// A [`CallExtractor`] for requests all made at one [`Site`], keyed by a function; see
/// [`ChaosLayer::at_site`].
pub struct SiteExtractor<F> {
    site: Arc<Site<'static>>,
    request_key: F,
}

impl<F: Clone> Clone for SiteExtractor<F> {
    /// Shares the site (and its resolutions) with the clone.
    fn clone(&self) -> Self {
        Self {
            site: Arc::clone(&self.site),
            request_key: self.request_key.clone(),
        }
    }
}

impl<F> fmt::Debug for SiteExtractor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteExtractor")
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}

impl<Req, F> CallExtractor<Req> for SiteExtractor<F>
where
    F: Fn(&Req) -> u64,
{
    fn extract<'r>(&'r self, request: &'r Req) -> Call<'r> {
        self.site.call((self.request_key)(request)).to_call()
    }

    #[inline]
    fn extract_at_site<'r>(&'r self, request: &'r Req) -> Option<SiteCall<'r>> {
        Some(self.site.call((self.request_key)(request)))
    }
}

/// A [`CallExtractor`] from a function; see [`ChaosLayer::from_fn`].
#[derive(Clone, Copy)]
pub struct FnExtractor<F>(F);

impl<F> fmt::Debug for FnExtractor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnExtractor")
    }
}

impl<Req, F> CallExtractor<Req> for FnExtractor<F>
where
    F: for<'r> Fn(&'r Req) -> Call<'r>,
{
    fn extract<'r>(&'r self, request: &'r Req) -> Call<'r> {
        (self.0)(request)
    }
}

/// Applies an [`Injector`]'s plan around the services it wraps.
#[derive(Clone, Debug)]
pub struct ChaosLayer<X> {
    injector: Injector,
    extractor: X,
}

impl<X> ChaosLayer<X> {
    /// A layer with an extractor implementing [`CallExtractor`].
    pub fn new(injector: Injector, extractor: X) -> Self {
        Self {
            injector,
            extractor,
        }
    }
}

impl<F> ChaosLayer<FnExtractor<F>> {
    /// A layer whose extractor is a function from a request to its [`Call`].
    pub fn from_fn<Req>(injector: Injector, extractor: F) -> Self
    where
        F: for<'r> Fn(&'r Req) -> Call<'r>,
    {
        Self {
            injector,
            extractor: FnExtractor(extractor),
        }
    }
}

impl<F> ChaosLayer<SiteExtractor<F>> {
    /// A layer for requests all made at `site`, each keyed by `request_key`: decided at the
    /// pre-resolved site, the cheapest way.
    ///
    /// ```
    /// use chaos_core::{ChaosLayer, Injector, Plan, Rule, Site, fault::ErrorKind};
    /// use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), BoxError> {
    /// let injector = Injector::new(
    ///     Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).for_service("orders").first(1)),
    /// )?;
    /// # injector.enable();
    /// let site = Site::new("checkout/orders").service("orders");
    /// let mut service = ServiceBuilder::new()
    ///     .layer(ChaosLayer::at_site(injector, site, |order_id: &u64| *order_id))
    ///     .service_fn(|order_id: u64| async move { Ok::<_, BoxError>(order_id * 10) });
    /// assert!(service.ready().await?.call(1).await.is_err());
    /// assert_eq!(service.ready().await?.call(2).await?, 20);
    /// # Ok(()) }
    /// ```
    pub fn at_site<Req>(injector: Injector, site: Site<'static>, request_key: F) -> Self
    where
        F: Fn(&Req) -> u64,
    {
        Self {
            injector,
            extractor: SiteExtractor {
                site: Arc::new(site),
                request_key,
            },
        }
    }
}

impl<S, X: Clone> Layer<S> for ChaosLayer<X> {
    type Service = Chaos<S, X>;

    fn layer(&self, inner: S) -> Chaos<S, X> {
        Chaos {
            inner,
            injector: self.injector.clone(),
            extractor: self.extractor.clone(),
        }
    }
}

/// A service wrapped by a [`ChaosLayer`].
#[derive(Clone, Debug)]
pub struct Chaos<S, X> {
    inner: S,
    injector: Injector,
    extractor: X,
}

impl<S, X> Chaos<S, X> {
    /// Wraps `inner`.
    pub fn new(inner: S, injector: Injector, extractor: X) -> Self {
        Self {
            inner,
            injector,
            extractor,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The injector.
    pub fn injector(&self) -> &Injector {
        &self.injector
    }
}

type BoxedResponse<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of a [`Chaos`] service: the inner future untouched when no rule fires.
    pub struct ResponseFuture<F, R, E> {
        #[pin]
        state: State<F, R, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, R, E> {
        // No fault: the inner service's own future.
        Pass { #[pin] inner: F },
        // A fault: delay and/or failure, then (for latency only) the inner call.
        Faulted { future: FaultedFuture<R, E> },
    }
}

/// A faulted request's boxed future, dropped out of line: the drop of every
/// [`ResponseFuture`] then stays small enough to inline into the caller, and only the few
/// faulted requests pay for the call.
struct FaultedFuture<R, E>(Option<BoxedResponse<R, E>>);

impl<R, E> Drop for FaultedFuture<R, E> {
    #[inline]
    fn drop(&mut self) {
        drop_out_of_line(self.0.take());
    }
}

#[cold]
#[inline(never)]
fn drop_out_of_line<T>(value: T) {
    drop(value);
}

impl<F, R, E> fmt::Debug for ResponseFuture<F, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state {
            State::Pass { .. } => f.write_str("ResponseFuture::Pass"),
            State::Faulted { .. } => f.write_str("ResponseFuture::Faulted"),
        }
    }
}

impl<F, R, E> ResponseFuture<F, R, E> {
    /// No fault: the inner service's own future, polled in place.
    #[inline]
    pub(crate) fn pass(inner: F) -> Self {
        Self {
            state: State::Pass { inner },
        }
    }

    /// A fault: the boxed delay and/or failure (and, after latency, the inner call).
    pub(crate) fn faulted(future: impl Future<Output = Result<R, E>> + Send + 'static) -> Self {
        Self {
            state: State::Faulted {
                future: FaultedFuture(Some(Box::pin(future))),
            },
        }
    }
}

impl<F, R, E> Future for ResponseFuture<F, R, E>
where
    F: Future<Output = Result<R, E>>,
{
    type Output = Result<R, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Pass { inner } => inner.poll(cx),
            StateProj::Faulted { future } => match future.0.as_mut() {
                Some(future) => future.as_mut().poll(cx),
                // Taken only by the drop, after which nothing polls.
                None => Poll::Pending,
            },
        }
    }
}

impl<S, X, Req> Service<Req> for Chaos<S, X>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: From<InjectedError> + Send + 'static,
    X: CallExtractor<Req>,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Response, S::Error>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        // With the kill switch on, not even the extractor runs.
        if let Some(version) = self.injector.active_version() {
            let faulted = match self.extractor.extract_at_site(&request) {
                Some(call) => self
                    .injector
                    .decide_site_labelled_at_version(version, &call),
                None => self
                    .injector
                    .decide_labelled_at_version(version, &self.extractor.extract(&request)),
            };
            if let Some((verdict, label)) = faulted {
                return self.faulted(request, verdict, label);
            }
        }
        ResponseFuture::pass(self.inner.call(request))
    }
}

impl<S, X> Chaos<S, X> {
    /// The future of a faulted request: holds it for the effect, then fails it or calls the
    /// inner service. Out of line: few requests are faulted, and the future built here
    /// would otherwise widen every call's stack frame.
    #[cold]
    #[inline(never)]
    fn faulted<Req>(
        &mut self,
        request: Req,
        verdict: Verdict,
        label: Option<String>,
    ) -> ResponseFuture<S::Future, S::Response, S::Error>
    where
        S: Service<Req> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Response: Send + 'static,
        S::Error: From<InjectedError> + Send + 'static,
        X: CallExtractor<Req>,
        Req: Send + 'static,
    {
        let deadline = self.extractor.deadline(&request);
        // The instance made ready by poll_ready is the one to call later; leave a fresh clone
        // in its place (tower's usual pattern for services called from a future).
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let injector = self.injector.clone();
        let future = async move {
            // Cut short if the kill switch is thrown while the call is held.
            injector.apply_decided(verdict, label, deadline).await?;
            ready.call(request).await
        };
        ResponseFuture::faulted(future)
    }
}
