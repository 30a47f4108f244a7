//! A price-lookup handler with a cache fallback, written twice: correctly, and with two bugs
//! real handlers ship. Shared by `examples/fallback_cache/main.rs` and `tests/fallbacks.rs`.
//!
//! The handler answers "what does item N cost?" from a pricing service (a DynamoDB table,
//! reached at the call site `pricing/get`). When the service fails or is slow, it answers
//! from a cache of last-known prices, which holds 95 of the 100 items; for the other 5 it
//! returns a clean `PriceUnavailable` error. Its caller (an API gateway) waits 1 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chaos_core::fault::ErrorKind;
use chaos_core::testing::{
    HandlerError, Harness, HarnessBuilder, Invocation, PlanSpace, Served, Site, SteadyState,
};

/// The call site of the pricing service.
pub const PRICING: &str = "pricing/get";
/// How long the handler's caller waits.
pub const DEADLINE: Duration = Duration::from_secs(1);
/// Each attempt at the pricing service may take this long.
const PER_TRY: Duration = Duration::from_millis(300);
/// What the pricing service takes when nothing is injected.
const SERVICE_TIME: Duration = Duration::from_millis(15);
/// Time kept back to answer from the cache before the deadline.
const ANSWER_MARGIN: Duration = Duration::from_millis(50);
/// Items priced.
const ITEMS: u32 = 100;
/// Items the cache holds (0 to 94).
const CACHED: u32 = 95;

/// What the handler's clients fail with.
#[derive(Clone, Debug, PartialEq)]
pub enum PriceError {
    /// The pricing service answered with an error (throttled, 5xx, reset).
    Service(ErrorKind),
    /// An attempt ran out of time.
    TimedOut,
    /// Neither the service nor the cache has the item's price.
    PriceUnavailable,
}

impl HandlerError for PriceError {
    fn error_kind(&self) -> ErrorKind {
        match self {
            Self::Service(kind) => kind.clone(),
            Self::TimedOut => ErrorKind::Timeout,
            Self::PriceUnavailable => ErrorKind::Custom {
                name: "PriceUnavailable".into(),
                message: "no price for the item".into(),
            },
        }
    }
}

/// The pricing service's client: a call through the injector at [`PRICING`], then the
/// service's own time.
pub async fn fetch_price(invocation: &Invocation, item: u32) -> Result<u64, PriceError> {
    invocation
        .call(PRICING)
        .await
        .map_err(|injected| PriceError::Service(injected.error_kind()))?;
    tokio::time::sleep(SERVICE_TIME).await;
    Ok(u64::from(item) * 100 + 99)
}

/// The handler's dependencies: the cache of last-known prices.
#[derive(Debug)]
pub struct Prices {
    cache: BTreeMap<u32, u64>,
}

impl Prices {
    /// A cache warm with items 0 to 94.
    pub fn warm() -> Arc<Self> {
        Arc::new(Self {
            cache: (0..CACHED)
                .map(|item| (item, u64::from(item) * 100 + 99))
                .collect(),
        })
    }

    fn cached(&self, item: u32) -> Result<Served, PriceError> {
        self.cache
            .get(&item)
            .map(|_| Served::Fallback)
            .ok_or(PriceError::PriceUnavailable)
    }
}

/// The correct handler: every attempt is bounded by what is left of the deadline (less the
/// time to answer), throttles and timeouts alike are retried with backoff while time
/// remains, and any failure ends in the cache.
pub async fn correct(invocation: Invocation, prices: Arc<Prices>) -> Result<Served, PriceError> {
    let item = invocation.index() % ITEMS;
    let mut backoff = Duration::from_millis(25);
    for _ in 0..3 {
        let budget = invocation
            .deadline()
            .remaining()
            .saturating_sub(ANSWER_MARGIN);
        if budget.is_zero() {
            break;
        }
        let attempt = tokio::time::timeout(PER_TRY.min(budget), fetch_price(&invocation, item));
        // An error and a timed-out attempt are treated alike: back off, retry if time is left.
        if let Ok(Ok(_price)) = attempt.await {
            return Ok(Served::Primary);
        }
        let left = invocation
            .deadline()
            .remaining()
            .saturating_sub(ANSWER_MARGIN);
        tokio::time::sleep(backoff.min(left)).await;
        backoff *= 2;
    }
    prices.cached(item)
}

/// The buggy twin, as it was first written: it falls back to the cache when the service
/// answers with an error, but treats a timed-out attempt as "try again", up to four
/// attempts of 300 ms with backoff, with no look at the deadline. So a slow or hanging
/// pricing service makes it run past its caller's deadline (and keep calling the service
/// after the caller gave up), and the cache it has is never used.
pub async fn buggy(invocation: Invocation, prices: Arc<Prices>) -> Result<Served, PriceError> {
    let item = invocation.index() % ITEMS;
    let mut backoff = Duration::from_millis(25);
    for _ in 0..4 {
        match tokio::time::timeout(PER_TRY, fetch_price(&invocation, item)).await {
            Ok(Ok(_price)) => return Ok(Served::Primary),
            Ok(Err(_)) => return prices.cached(item),
            Err(_elapsed) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    Err(PriceError::TimedOut)
}

/// The harness both handlers run under: 200 invocations, 50 in flight at a time.
pub fn harness() -> Harness {
    harness_builder().build().expect("a valid harness")
}

/// The settings of [`harness`], to vary.
pub fn harness_builder() -> HarnessBuilder {
    let mut builder = Harness::builder();
    builder
        .invocations(200)
        .fan_out(50)
        .deadline(DEADLINE)
        .site(Site::new(PRICING).service("dynamodb").operation("GetItem"));
    builder
}

/// What must hold however the pricing service misbehaves: at least 95% answered (the cache
/// covers 95 items of 100), failures are clean errors, nothing runs or calls past the
/// deadline, and even the slowest answer comes in time.
pub fn steady_state() -> SteadyState {
    SteadyState::new()
        .min_success_rate(0.95)
        .failures_are_clean()
        .no_call_after_deadline()
        .no_work_after_deadline()
        .max_latency(1.0, DEADLINE)
}

/// The plans to try: up to three rules of latency (up to 5 s), errors, injected timeouts
/// and hangs, on the pricing site or the whole service, with windows within the first 2 s.
pub fn plans() -> PlanSpace {
    use chaos_core::testing::FaultChoice;
    PlanSpace::new(harness().sites().iter().cloned())
        .faults([
            FaultChoice::Latency,
            FaultChoice::Error,
            FaultChoice::Timeout,
            FaultChoice::Hang,
        ])
        .schedules_within(Duration::from_secs(2))
}
