//! Retry-aware decisions: [`CountAttempts`] numbers the retries `tower::retry` makes.

use http::Request;
use tower::retry::Policy;

use super::extract::Attempt;

/// A request that carries its attempt number, for [`CountAttempts`]. Implemented for
/// `http::Request` (the [`Attempt`] extension); implement it for your own request types.
pub trait CarriesAttempt {
    /// The attempt number, 0 for the first try.
    fn attempt(&self) -> u32;
    /// Sets the attempt number.
    fn set_attempt(&mut self, attempt: u32);
}

impl<B> CarriesAttempt for Request<B> {
    fn attempt(&self) -> u32 {
        self.extensions().get::<Attempt>().map_or(0, |a| a.0)
    }

    fn set_attempt(&mut self, attempt: u32) {
        self.extensions_mut().insert(Attempt(attempt));
    }
}

/// Wraps a `tower::retry` policy so every copy it makes for a retry carries the next attempt
/// number: the chaos layer below then rolls each retry anew (same request key, attempt 1, 2,
/// ...), and any retry's decision replays from its key and attempt.
///
/// Without it every retry of a request is decided exactly like the first try: a request a
/// rule failed fails on every retry, and retries never recover.
///
/// ```
/// use chaos_core::http::CountAttempts;
/// # #[derive(Clone)] struct MyPolicy;
/// # type Req = http::Request<String>; type Res = http::Response<String>; type E = tower::BoxError;
/// # impl tower::retry::Policy<Req, Res, E> for MyPolicy {
/// #     type Future = std::future::Ready<()>;
/// #     fn retry(&mut self, _: &mut Req, _: &mut Result<Res, E>) -> Option<Self::Future> { None }
/// #     fn clone_request(&mut self, req: &Req) -> Option<Req> { None }
/// # }
/// let retry = tower::retry::RetryLayer::new(CountAttempts::new(MyPolicy));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CountAttempts<P> {
    policy: P,
}

impl<P> CountAttempts<P> {
    /// Wraps `policy`.
    pub fn new(policy: P) -> Self {
        Self { policy }
    }

    /// The wrapped policy.
    pub fn get_ref(&self) -> &P {
        &self.policy
    }

    /// Unwraps the policy.
    pub fn into_inner(self) -> P {
        self.policy
    }
}

impl<P, Req, Res, E> Policy<Req, Res, E> for CountAttempts<P>
where
    P: Policy<Req, Res, E>,
    Req: CarriesAttempt,
{
    type Future = P::Future;

    fn retry(&mut self, request: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        self.policy.retry(request, result)
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        // tower::retry sends the copy made here on the next retry, then copies that one for
        // the retry after: each copy is one attempt further on.
        let mut copy = self.policy.clone_request(request)?;
        copy.set_attempt(request.attempt().saturating_add(1));
        Some(copy)
    }
}
