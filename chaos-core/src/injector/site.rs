//! Pre-resolved call sites: a handle made once (in a `static`, or a client's field) whose
//! candidate rules each thread finds once per plan, the way `tracing` caches a callsite's
//! interest.
//!
//! A [`Site`] gets a slot number the first time it decides. Each thread's cached plan keeps,
//! by slot, the site's [`ResolvedSite`]: the rules whose selectors can match the site's name,
//! service and operation, with their keys and thresholds. The cached plan is checked against
//! the injector's state word on every decision, so a reload (a new version) drops every
//! resolution at once, and the kill switch (a bit in the same word) ends a decision before
//! the cache is looked at. A slot freed by a dropped site is reused under a new generation,
//! which a stale resolution never matches.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::plan::{Call, CallSite, Verdict};

use super::{Injector, OFF, VERSION_SHIFT};

/// A call site resolved once per plan: the fastest way to decide calls made at one place in
/// the code, to one service and operation.
///
/// Make it once, in a `static` or a client's field, and decide with
/// [`Injector::decide_at`] (or [`Injector::decide_site`] for a retry's attempt number or a
/// handler's event). The verdict is exactly the one [`Injector::decide`] gives the same call
/// made ad hoc ([`SiteCall::to_call`]): only the work is done ahead.
///
/// ```
/// use chaos_core::{Injector, Plan, Rule, Site, fault::ErrorKind};
///
/// static PUT_ORDER: Site<'static> =
///     Site::new("checkout/orders").service("dynamodb").operation("PutItem");
///
/// let injector = Injector::new(
///     Plan::new(7)
///         .with_rule(Rule::error(ErrorKind::Throttle).for_service("dynamodb").with_probability(0.5))
///         .with_rule(Rule::error(ErrorKind::Throttle).for_service("s3")),
/// )?;
/// # injector.enable();
/// let throttled = (0..1000u64)
///     .filter(|&request| !injector.decide_at(&PUT_ORDER, request).is_pass())
///     .count();
/// assert!((400..600).contains(&throttled)); // the s3 rule is not even looked at
///
/// // A retry is another attempt, with a decision of its own; the same inputs replay.
/// let retry = PUT_ORDER.call(17).attempt(1);
/// assert_eq!(injector.decide_site(&retry), injector.decide(&retry.to_call()));
/// # Ok::<(), chaos_core::PlanError>(())
/// ```
pub struct Site<'a> {
    call_site: CallSite<'a>,
    /// This site's slot in the threads' caches of resolved sites and the slot's generation
    /// (see [`Token`]); 0 until the site first decides.
    token: AtomicU64,
}

/// A slot number (low [`SLOT_BITS`] bits) and the generation of its current owner (above):
/// never 0, and never the same for two sites, so a resolution cached for a dropped site is
/// not taken for its slot's next owner.
pub(super) type Token = u64;
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// Slot numbers in use and free; taken once per site, given back when it is dropped.
struct Slots {
    next: u64,
    free: Vec<u64>,
    generation: u64,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    next: 0,
    free: Vec::new(),
    generation: 0,
});

impl<'a> Site<'a> {
    /// A site named `name`, such as `"checkout/orders"`, with no service or operation.
    pub const fn new(name: &'a str) -> Self {
        Self::at(CallSite::new(name))
    }

    /// A site from a [`CallSite`].
    pub const fn at(call_site: CallSite<'a>) -> Self {
        Self {
            call_site,
            token: AtomicU64::new(0),
        }
    }

    /// Sets the service every call at this site goes to.
    pub const fn service(mut self, service: &'a str) -> Self {
        self.call_site = self.call_site.service(service);
        self
    }

    /// Sets the operation every call at this site makes.
    pub const fn operation(mut self, operation: &'a str) -> Self {
        self.call_site = self.call_site.operation(operation);
        self
    }

    /// The site's name, hash, service and operation.
    pub const fn call_site(&self) -> CallSite<'a> {
        self.call_site
    }

    /// A first attempt at this site, with no event.
    pub fn call(&self, request_key: u64) -> SiteCall<'_> {
        SiteCall {
            site: self,
            request_key,
            attempt: 0,
            event: None,
        }
    }

    /// This site's token, taking a slot on first use; `None` when every slot is taken (more
    /// than 16 million live sites): the site then decides the ad hoc way.
    #[inline(always)]
    pub(super) fn token(&self) -> Option<Token> {
        match self.token.load(Ordering::Acquire) {
            0 => self.take_slot(),
            token => Some(token),
        }
    }

    #[cold]
    fn take_slot(&self) -> Option<Token> {
        let token = {
            let mut slots = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
            let slot = match slots.free.pop() {
                Some(slot) => slot,
                None if slots.next <= SLOT_MASK => {
                    slots.next += 1;
                    slots.next - 1
                }
                None => return None,
            };
            slots.generation = slots.generation.wrapping_add(1);
            slot | (slots.generation.max(1) << SLOT_BITS)
        };
        match self
            .token
            .compare_exchange(0, token, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Some(token),
            // Another thread gave this site a slot first: hand ours back.
            Err(theirs) => {
                release(token);
                Some(theirs)
            }
        }
    }
}

/// The slot a token names.
pub(super) fn slot_of(token: Token) -> usize {
    (token & SLOT_MASK) as usize
}

fn release(token: Token) {
    SLOTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .free
        .push(token & SLOT_MASK);
}

impl Drop for Site<'_> {
    fn drop(&mut self) {
        let token = *self.token.get_mut();
        if token != 0 {
            release(token);
        }
    }
}

impl Clone for Site<'_> {
    /// The same site; the clone takes a slot of its own when it first decides.
    fn clone(&self) -> Self {
        Self::at(self.call_site)
    }
}

impl fmt::Debug for Site<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.call_site.name())
            .field("service", &self.call_site.service_name())
            .field("operation", &self.call_site.operation_name())
            .finish()
    }
}

/// One call at a [`Site`]: its request key, attempt and event (the site gives the rest).
#[derive(Clone, Copy, Debug)]
pub struct SiteCall<'s> {
    site: &'s Site<'s>,
    request_key: u64,
    attempt: u32,
    event: Option<&'s serde_json::Value>,
}

impl<'s> SiteCall<'s> {
    /// A call at `site` from its parts (the injector's paths pass them separately, so the
    /// short path keeps them in registers).
    pub(super) fn from_parts(
        site: &'s Site<'s>,
        request_key: u64,
        attempt: u32,
        event: Option<&'s serde_json::Value>,
    ) -> Self {
        Self {
            site,
            request_key,
            attempt,
            event,
        }
    }

    /// Sets the attempt number (0 for the first try), so retries get fresh decisions.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the handler's event, for rules with event conditions.
    pub fn event(mut self, event: &'s serde_json::Value) -> Self {
        self.event = Some(event);
        self
    }

    /// The site.
    pub fn site(&self) -> &'s Site<'s> {
        self.site
    }

    /// The request key.
    pub fn request_key(&self) -> u64 {
        self.request_key
    }

    /// The attempt number.
    pub fn attempt_number(&self) -> u32 {
        self.attempt
    }

    /// The same call made ad hoc: [`Injector::decide`] gives it the same verdict.
    #[inline]
    pub fn to_call(&self) -> Call<'s> {
        Call {
            attempt: self.attempt,
            event: self.event,
            ..Call::at(self.request_key, self.site.call_site)
        }
    }
}

impl Injector {
    /// Decides a first attempt at a pre-resolved [`Site`]: one read of the injector's state,
    /// then per rule that can match the site a keyed mix and a comparison.
    #[inline]
    pub fn decide_at(&self, site: &Site<'_>, request_key: u64) -> Verdict {
        let state = self.shared.state.load(Ordering::Acquire);
        if state & OFF != 0 {
            return Verdict::default();
        }
        self.decide_site_enabled(state >> VERSION_SHIFT, site, request_key, 0, None)
    }

    /// Decides a call at a pre-resolved [`Site`] (see [`decide_at`](Self::decide_at)).
    #[inline]
    pub fn decide_site(&self, call: &SiteCall<'_>) -> Verdict {
        let state = self.shared.state.load(Ordering::Acquire);
        if state & OFF != 0 {
            return Verdict::default();
        }
        self.decide_site_enabled(
            state >> VERSION_SHIFT,
            call.site,
            call.request_key,
            call.attempt,
            call.event,
        )
    }

    /// Decides a call at a site with the plan at `version` (read by
    /// [`active_version`](Self::active_version)); also returns the label of the failing rule,
    /// and `None` when nothing fires.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn decide_site_labelled_at_version(
        &self,
        version: u64,
        call: &SiteCall<'_>,
    ) -> Option<(Verdict, Option<String>)> {
        self.decide_site_enabled(
            version,
            call.site,
            call.request_key,
            call.attempt,
            call.event,
        )
    }
}
