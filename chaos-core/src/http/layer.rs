//! [`HttpChaosLayer`] / [`HttpChaos`]: a plan applied around an `http::Request` service,
//! failures answered in the service's own types.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::injector::Injector;

use super::extract::HttpCallExtractor;
use super::respond::{AnswerHttp, OnInjected, RealisticFaults};

/// Applies an [`Injector`]'s plan around `http::Request` services. Which call a request is
/// comes from an [`HttpCallExtractor`]; what a failed call returns, from an [`OnInjected`]
/// hook. The wrapped service's error type is kept, so axum, hyper and tonic services compose
/// without `HandleErrorLayer`.
#[derive(Clone, Debug)]
pub struct HttpChaosLayer<R> {
    injector: Injector,
    extractor: Arc<HttpCallExtractor>,
    on_injected: R,
}

impl HttpChaosLayer<AnswerHttp> {
    /// Server side: failures become responses ([`AnswerHttp`]: a status fault that status,
    /// throttle 429 with `Retry-After`, timeout 504, ...).
    pub fn server(injector: Injector) -> Self {
        Self {
            injector,
            extractor: Arc::new(HttpCallExtractor::default()),
            on_injected: AnswerHttp::default(),
        }
    }
}

impl HttpChaosLayer<RealisticFaults> {
    /// Client side: a status fault is an `Ok` response with that status, a reset or timeout an
    /// error whose `source()` is an `io::Error` ([`RealisticFaults`]).
    pub fn client(injector: Injector) -> Self {
        Self {
            injector,
            extractor: Arc::new(HttpCallExtractor::default()),
            on_injected: RealisticFaults::default(),
        }
    }
}

impl<R> HttpChaosLayer<R> {
    /// A layer with its own hook: see [`OnInjected`].
    pub fn new(injector: Injector, extractor: HttpCallExtractor, on_injected: R) -> Self {
        Self {
            injector,
            extractor: Arc::new(extractor),
            on_injected,
        }
    }

    /// Replaces the extractor.
    pub fn extractor(mut self, extractor: HttpCallExtractor) -> Self {
        self.extractor = Arc::new(extractor);
        self
    }

    /// Replaces what a failed call returns, such as the caller's own error type.
    pub fn on_injected<R2>(self, on_injected: R2) -> HttpChaosLayer<R2> {
        HttpChaosLayer {
            injector: self.injector,
            extractor: self.extractor,
            on_injected,
        }
    }
}

impl<S, R: Clone> Layer<S> for HttpChaosLayer<R> {
    type Service = HttpChaos<S, R>;

    fn layer(&self, inner: S) -> HttpChaos<S, R> {
        HttpChaos {
            inner,
            injector: self.injector.clone(),
            extractor: Arc::clone(&self.extractor),
            on_injected: self.on_injected.clone(),
        }
    }
}

/// A service wrapped by an [`HttpChaosLayer`].
#[derive(Clone, Debug)]
pub struct HttpChaos<S, R> {
    inner: S,
    injector: Injector,
    extractor: Arc<HttpCallExtractor>,
    on_injected: R,
}

impl<S, R> HttpChaos<S, R> {
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

/// The future of an [`HttpChaos`] service: the inner future untouched when no rule fires (the
/// tower layer's own future type).
pub type HttpChaosFuture<F, T, E> = crate::layer::ResponseFuture<F, T, E>;

impl<S, R, B> Service<Request<B>> for HttpChaos<S, R>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    R: OnInjected<S::Response, S::Error> + Clone + Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HttpChaosFuture<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Kill switch on (or a rejected reload): not even the extractor runs.
        if !self.injector.is_enabled() || self.injector.is_suspended() {
            return self.pass(request);
        }
        // The "METHOD route" operation is built only for plans that select on it.
        let needs_operation = self.injector.needs_operation();
        let (verdict, label) = self
            .extractor
            .with_call_for(&request, needs_operation, |call| {
                self.injector.decide_labelled(call)
            });
        if verdict.is_pass() {
            return self.pass(request);
        }
        let deadline = self.extractor.deadline(&request);
        // The instance poll_ready readied is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let injector = self.injector.clone();
        let on_injected = self.on_injected.clone();
        let future = async move {
            // Held on tokio's clock, ended at once by the kill switch; the label is the deciding
            // plan's, whatever reloads happen meanwhile.
            match injector.apply_decided(verdict, label, deadline).await {
                Err(injected) => on_injected.on_injected(injected),
                // Latency only, or the kill switch ended the fault: the real call goes ahead.
                Ok(()) => ready.call(request).await,
            }
        };
        HttpChaosFuture::faulted(future)
    }
}

impl<S, R> HttpChaos<S, R> {
    fn pass<B>(&mut self, request: Request<B>) -> HttpChaosFuture<S::Future, S::Response, S::Error>
    where
        S: Service<Request<B>>,
    {
        HttpChaosFuture::pass(self.inner.call(request))
    }
}
