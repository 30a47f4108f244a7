//! The runtime injector: what an application holds.
//!
//! * **Lock-free reads** of the current plan (an [`arc_swap::ArcSwap`]); [`Injector::reload`]
//!   swaps in a new plan while requests are in flight, and a reload that fails leaves the
//!   previous plan in force and says why.
//! * A **kill switch**: [`Injector::disable`], or the `CHAOS_DISABLED` environment variable
//!   (any value but empty, `0` or `false`) read when the injector is built.
//! * **Guardrails**: at most N injections per interval, and an expiry after which nothing is
//!   injected.
//! * **Counters** per rule (evaluated, injected), one set per thread so the hot path writes no
//!   cache line another thread writes; [`Injector::snapshot`] adds them up.
//! * A `tracing` event for every injection, on target `chaos::inject`, with the rule, site,
//!   service, operation, route, request key, attempt and the injected value (`latency_ms`,
//!   `error`, `status`); plan loads, rejections and warnings on target `chaos::plan`. A filter
//!   on `chaos` takes both.
//! * Async application of faults on tokio's timer, so tests under `tokio::time::pause` run in
//!   virtual time.
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::{Call, Injector, Plan, Rule, fault::ErrorKind};
//!
//! let plan = Plan::new(7).with_rule(Rule::error(ErrorKind::Throttle).named("throttle").with_probability(0.5));
//! let injector = Injector::new(plan)?;
//! let failed = (0..1000u64)
//!     .filter(|&key| injector.decide(&Call::new(key, "orders")).failure.is_some())
//!     .count();
//! assert!((400..600).contains(&failed));
//! assert_eq!(injector.snapshot().rules[0].injected, failed as u64);
//! injector.disable();
//! assert!(injector.decide(&Call::new(1, "orders")).is_pass());
//! # Ok::<(), chaos_core::PlanError>(())
//! ```

mod apply;
mod cache;
mod counters;
mod fast;
mod guardrails;
#[cfg(test)]
mod live_tests;
mod loaded;
mod reload;
mod site;
#[cfg(test)]
mod site_tests;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use tokio::sync::Notify;

use crate::plan::{Call, IntoCompiledPlan, PlanError, Verdict};

pub use apply::apply_verdict;
pub use counters::{RuleStats, RuleTotals, Snapshot};
pub use guardrails::{
    DISABLE_ENV_VAR, Guardrails, InjectorBuilder, InjectorError, OnRejectedReload, WindowOrigin,
};
pub use site::{Site, SiteCall};

use counters::{EVALUATED, INJECTED};
use guardrails::Budget;
use loaded::Loaded;

/// The runtime fault injector. Cheap to clone (an `Arc`); share it across tasks and threads.
#[derive(Clone, Debug)]
pub struct Injector {
    shared: Arc<Shared>,
}

/// Unique ids for injectors and loaded plans, so a thread's cache never confuses two.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why injection is off, as the low bits of [`Shared::state`]: no bit set means on.
const KILLED: u64 = 1;
/// The last reload was rejected (with [`OnRejectedReload::NoFaults`]).
const REJECTED: u64 = 2;
/// The bits of [`Shared::state`] that hold injection off; the plan's version is above them.
const OFF: u64 = KILLED | REJECTED;
const VERSION_SHIFT: u32 = 2;

#[derive(Debug)]
struct Shared {
    /// The version of the plan in `loaded` (shifted by [`VERSION_SHIFT`]) and the
    /// [`KILLED`] and [`REJECTED`] bits: a decision reads this one word to learn both whether
    /// to inject and whether its thread's cached plan and resolved sites are current.
    state: AtomicU64,
    /// Woken when injection goes off, so faults in progress end at once.
    stop: Notify,
    on_rejected_reload: OnRejectedReload,
    /// Unique id of this injector, keying the per-thread plan caches.
    id: u64,
    loaded: ArcSwap<Loaded>,
    started: Instant,
    /// What windows and ramps count from: `started`, or each plan's load.
    window_origin: WindowOrigin,
    guardrails: Guardrails,
    budget: Budget,
    /// Reloads publish the plan and its version as one step (two racing reloads must not
    /// leave `current` naming one plan while `loaded` holds the other). Holds the last
    /// reload error.
    reload: Mutex<Option<PlanError>>,
    /// The counts of replaced plans, for cumulative totals. Reloads swap the plan under this
    /// lock, so a snapshot sees each plan once, current or retired.
    retired: Mutex<counters::Retired>,
}

impl Shared {
    /// The state word for plan `version` with the `off` bits.
    const fn state(version: u64, off: u64) -> u64 {
        (version << VERSION_SHIFT) | (off & OFF)
    }

    /// The version of the plan in force.
    #[cfg(test)]
    fn version(&self) -> u64 {
        self.state.load(Ordering::Acquire) >> VERSION_SHIFT
    }
}

impl Injector {
    /// An injector for `plan`, with no guardrails. A [`Plan`](crate::Plan) is checked and
    /// compiled here; a [`CompiledPlan`](crate::CompiledPlan) is used as it is.
    pub fn new(plan: impl IntoCompiledPlan) -> Result<Self, PlanError> {
        let mut builder = Self::builder();
        builder.plan(plan);
        builder.build().map_err(|error| match error {
            InjectorError::Plan(error) => error,
            other => unreachable!("no guardrail is set: {other}"),
        })
    }

    /// An injector that never injects (an empty plan).
    pub fn inert() -> Self {
        let mut builder = Self::builder();
        builder.ignore_env();
        // An empty plan always compiles.
        builder
            .build()
            .unwrap_or_else(|_| unreachable!("an empty plan is valid"))
    }

    /// A builder for guardrails and options.
    pub fn builder() -> InjectorBuilder {
        InjectorBuilder::default()
    }

    /// Switches injection off (the kill switch): no call is decided faulty from now on, and
    /// faults in progress in [`apply`](Self::apply) or the tower layer end at once, their calls
    /// going ahead as if no rule had fired.
    pub fn disable(&self) {
        self.switch_off(KILLED);
    }

    /// Switches injection back on (the kill switch only: a rejected reload still holds
    /// injection off until a valid plan arrives).
    pub fn enable(&self) {
        self.shared.state.fetch_and(!KILLED, Ordering::Release);
    }

    /// Whether the kill switch is off, letting the plan inject.
    pub fn is_enabled(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) & KILLED == 0
    }

    /// Whether injection is held off by a rejected reload (see [`OnRejectedReload`]).
    pub fn is_suspended(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) & REJECTED != 0
    }

    /// Whether calls can be faulted now: neither the kill switch nor a rejected reload holds
    /// injection off.
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) & OFF == 0
    }

    /// The version of the plan in force when calls can be faulted now (see
    /// [`is_active`](Self::is_active)); `None` when injection is off. Layers read this once,
    /// before extracting anything from a request, and decide with the `*_at_version` paths.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn active_version(&self) -> Option<u64> {
        let state = self.shared.state.load(Ordering::Acquire);
        (state & OFF == 0).then_some(state >> VERSION_SHIFT)
    }

    /// [`decide_labelled`](Self::decide_labelled) with the plan at `version`, read by
    /// [`active_version`](Self::active_version); `None` when nothing fires.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn decide_labelled_at_version(
        &self,
        version: u64,
        call: &Call<'_>,
    ) -> Option<(Verdict, Option<String>)> {
        self.decide_enabled(version, call)
    }

    fn switch_off(&self, reason: u64) {
        self.shared.state.fetch_or(reason, Ordering::AcqRel);
        // After the bit is set: a fault that registers after this sees the bit.
        self.shared.stop.notify_waiters();
    }

    /// Whether the plan in force selects on operations ([`CompiledPlan::needs_operation`]):
    /// when not, a layer may skip building a call's operation. A reload right after this
    /// returns can make a request decided by the new plan miss its operation (that one
    /// request can then miss an operation-selecting rule).
    ///
    /// [`CompiledPlan::needs_operation`]: crate::CompiledPlan::needs_operation
    pub fn needs_operation(&self) -> bool {
        self.shared.loaded.load().needs_operation
    }

    /// Time since the injector was built, on tokio's clock (virtual under a paused runtime).
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// The time the plan in force's windows and ramps are at: [`elapsed`](Self::elapsed), or,
    /// with [`WindowOrigin::PlanLoad`], the time since that plan was loaded.
    pub fn schedule_elapsed(&self) -> Duration {
        self.shared.loaded.load().schedule_origin.elapsed()
    }

    /// Decides a call: which faults apply. Pure apart from counters and guardrails.
    ///
    /// A call made at the same place every time is decided faster at a pre-resolved
    /// [`Site`] ([`decide_at`](Self::decide_at)), to the same verdict.
    #[inline]
    pub fn decide(&self, call: &Call<'_>) -> Verdict {
        let state = self.shared.state.load(Ordering::Acquire);
        if state & OFF != 0 {
            return Verdict::default();
        }
        // A copy made past the switch: the caller's `Call` need not be written to memory
        // when injection is off.
        let call = *call;
        self.decide_enabled(state >> VERSION_SHIFT, &call)
    }

    /// Decides a call, as [`decide`](Self::decide) does, and also returns the label (name, or
    /// `#index`) of the rule whose failure the verdict carries, read from the plan that
    /// decided: a reload between this decision and the answer built from it cannot name the
    /// new plan's rule. `None` when nothing fails the call. Layers that decide in one place
    /// and answer in another pass both to [`apply_decided`](Self::apply_decided).
    #[inline]
    pub fn decide_labelled(&self, call: &Call<'_>) -> (Verdict, Option<String>) {
        let state = self.shared.state.load(Ordering::Acquire);
        if state & OFF != 0 {
            return (Verdict::default(), None);
        }
        let call = *call;
        self.decide_enabled(state >> VERSION_SHIFT, &call)
    }

    /// Adds up the per-rule counters of the current plan, and each rule's totals over every
    /// plan this injector has run ([`Snapshot::totals`]).
    pub fn snapshot(&self) -> Snapshot {
        let mut retired = self
            .shared
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Under the lock: a reload cannot move this plan into `retired` meanwhile.
        let loaded = self.shared.loaded.load();
        let totals = retired.cumulative(&loaded);
        drop(retired);
        let rules = loaded
            .plan
            .labels()
            .zip(loaded.totals())
            .enumerate()
            .map(|(index, (label, counts))| RuleStats {
                label: label.to_owned(),
                fault: loaded.plan.fault(index).map_or("", |f| f.label()),
                evaluated: counts[EVALUATED],
                injected: counts[INJECTED],
            })
            .collect();
        Snapshot {
            enabled: self.is_enabled(),
            suspended: self.is_suspended(),
            generation: loaded.generation,
            rules,
            totals,
            vetoed_by_budget: self.shared.budget.vetoed.load(Ordering::Relaxed),
        }
    }
}
