//! Per-rule counters, one set per thread, and the snapshot that adds them up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::fault::{ErrorKind, Fault};
use crate::plan::{Call, Observer};

use super::Shared;
use super::fast::FastSite;
use super::loaded::Loaded;

/// Counters of the current plan, added up over threads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Whether injection is on.
    pub enabled: bool,
    /// Whether a rejected reload holds injection off until a valid plan arrives.
    pub suspended: bool,
    /// How many plans were loaded before this one (0 for the first).
    pub generation: u64,
    /// One entry per rule, in plan order.
    pub rules: Vec<RuleStats>,
    /// Firings vetoed by the injection budget.
    pub vetoed_by_budget: u64,
    /// Each rule's counts over every plan this injector has run, by label (name, or `#index`):
    /// monotonic across reloads, for metrics exporters that expect counters never to go back.
    /// A rule that keeps its name across reloads keeps adding to its totals; unnamed rules
    /// share the totals of their index (`#0`), so name the rules whose totals matter.
    pub totals: BTreeMap<String, RuleTotals>,
}

/// One rule's counts, over every plan that had a rule of its label ([`Snapshot::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleTotals {
    /// Calls the rule applied to.
    pub evaluated: u64,
    /// Calls it injected its fault into.
    pub injected: u64,
}

/// The counts of plans no longer in force. A replaced plan may still be counting (a decision
/// that read it before the reload, a thread whose cache still holds it), so it drains here
/// until nothing else holds it, and only then are its counts folded into `totals`: every
/// count is in exactly one place, and totals never go back.
#[derive(Debug, Default)]
pub(super) struct Retired {
    totals: BTreeMap<String, RuleTotals>,
    draining: Vec<Arc<Loaded>>,
}

impl Retired {
    /// Takes a plan just replaced (by `ArcSwap::swap`, which turns readers' borrows into
    /// counted references, so the reference count below sees every reader).
    pub(super) fn retire(&mut self, plan: Arc<Loaded>) {
        self.draining.push(plan);
        self.settle();
    }

    /// Folds in the plans nothing else holds: none can count again.
    fn settle(&mut self) {
        let totals = &mut self.totals;
        self.draining.retain(|plan| {
            let held = Arc::strong_count(plan) > 1;
            if !held {
                add_totals(totals, plan);
            }
            held
        });
    }

    /// The totals over retired plans, draining plans and `current`.
    pub(super) fn cumulative(&mut self, current: &Loaded) -> BTreeMap<String, RuleTotals> {
        self.settle();
        let mut totals = self.totals.clone();
        for plan in &self.draining {
            add_totals(&mut totals, plan);
        }
        add_totals(&mut totals, current);
        totals
    }
}

fn add_totals(totals: &mut BTreeMap<String, RuleTotals>, plan: &Loaded) {
    for (label, counts) in plan.plan.labels().zip(plan.totals()) {
        let entry = totals.entry(label.to_owned()).or_default();
        entry.evaluated = entry.evaluated.saturating_add(counts[EVALUATED]);
        entry.injected = entry.injected.saturating_add(counts[INJECTED]);
    }
}

/// One rule's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleStats {
    /// The rule's name, or `#index`.
    pub label: String,
    /// The fault's label: `latency`, `error`, `hang` or `status`.
    pub fault: &'static str,
    /// Calls the rule applied to (selector matched, schedule active).
    pub evaluated: u64,
    /// Calls it injected its fault into.
    pub injected: u64,
}

pub(super) struct InjectorObserver<'a> {
    pub(super) loaded: &'a Loaded,
    pub(super) counting: Counting<'a>,
    pub(super) shared: &'a Shared,
    /// The time since start, when the decision read it.
    pub(super) elapsed: Option<Duration>,
}

impl Observer for InjectorObserver<'_> {
    #[inline]
    fn evaluated(&mut self, rule: usize) {
        self.counting.add(rule, EVALUATED);
    }

    fn permit(&mut self, _rule: usize) -> bool {
        match self.shared.guardrails.max_injections {
            Some((limit, interval)) => {
                let elapsed = self
                    .elapsed
                    .unwrap_or_else(|| self.shared.started.elapsed());
                self.shared.budget.take(limit, interval, elapsed)
            }
            None => true,
        }
    }

    fn injected(&mut self, rule: usize, call: &Call<'_>, latency: Duration) {
        self.counting.add(rule, INJECTED);
        let plan = &self.loaded.plan;
        let label = plan.label(rule).unwrap_or("?");
        let fault = plan.fault(rule);
        let (error, status) = match fault {
            Some(Fault::Error(kind)) => (
                Some(kind.label()),
                match kind {
                    ErrorKind::ServerError { status } => Some(*status),
                    _ => None,
                },
            ),
            Some(Fault::Status(status)) => (None, Some(*status)),
            _ => (None, None),
        };
        // Latency in milliseconds, with the sub-millisecond part (a sampled delay rarely is
        // whole), or a partition's hold; absent for faults that fail the call.
        let latency_ms = matches!(fault, Some(Fault::Latency(_) | Fault::Partition))
            .then(|| latency.as_secs_f64() * 1e3);
        tracing::info!(
            target: "chaos::inject",
            rule = label,
            fault = fault.map_or("", Fault::label),
            site = call.site,
            service = call.service,
            operation = call.operation,
            route = (!call.route.is_empty()).then_some(call.route),
            request_key = call.request_key,
            attempt = call.attempt,
            latency_ms,
            error,
            status,
            "injected fault"
        );
    }
}

pub(super) const EVALUATED: usize = 0;
pub(super) const INJECTED: usize = 1;
pub(super) const COUNTERS_PER_RULE: usize = 2;
pub(super) const SLOTS_PER_LINE: usize = 16;

/// 128 bytes: two cache lines, since adjacent-line prefetch makes 64-byte padding leak.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(super) struct Line([AtomicU64; SLOTS_PER_LINE]);

/// Per-rule counters on cache lines of their own.
#[derive(Debug)]
pub(super) struct RuleCounters {
    pub(super) lines: Vec<Line>,
}

impl RuleCounters {
    pub(super) fn new(rules: usize) -> Self {
        let lines = (rules * COUNTERS_PER_RULE).div_ceil(SLOTS_PER_LINE).max(1);
        Self {
            lines: (0..lines).map(|_| Line::default()).collect(),
        }
    }

    #[inline]
    pub(super) fn slot(&self, rule: usize, counter: usize) -> Option<&AtomicU64> {
        let slot = rule * COUNTERS_PER_RULE + counter;
        self.lines
            .get(slot / SLOTS_PER_LINE)
            .map(|line| &line.0[slot % SLOTS_PER_LINE])
    }

    /// Adds `count` with an atomic add, for counters several threads write.
    pub(super) fn add_atomically(&self, rule: usize, counter: usize, count: u64) {
        if let Some(slot) = self.slot(rule, counter) {
            slot.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Adds one to a counter only this thread writes: a load and a store, no locked
    /// instruction (snapshots read it with a relaxed load). Wrapping, as
    /// [`SiteTally::add_owned`]: 2^64 calls are out of reach.
    #[inline]
    pub(super) fn add_owned(&self, rule: usize, counter: usize) {
        if let Some(slot) = self.slot(rule, counter) {
            slot.store(
                slot.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        }
    }

    pub(super) fn get(&self, rule: usize, counter: usize) -> u64 {
        self.slot(rule, counter)
            .map_or(0, |slot| slot.load(Ordering::Relaxed))
    }
}

/// The calls one thread decided on the short path at one pre-resolved site with one plan:
/// nothing fired, and every candidate rule there is plain, so each of these calls was
/// evaluated by every candidate. One count here stands for one `evaluated` count of each
/// candidate, added in when counters are read: the short path writes one counter, however
/// many rules the site has. Only its thread writes it (a load and a store); aligned like
/// [`Line`], so two threads' tallies never share a cache line. A site with one rule at most
/// may hold an entry of its thread's table of single-roll sites ([`FastSite`]), whose count
/// is then this tally's too, until the tally is retired or gives the entry up.
#[repr(align(128))]
#[derive(Debug)]
pub(super) struct SiteTally {
    calls: AtomicU64,
    /// The entry of the thread's table this site decides at, while it holds it. Only the
    /// owning thread takes it away, under this lock, which snapshots take too (inside the
    /// plan's registry lock): a count moving from the entry to `calls` is seen once.
    fast: Mutex<Option<&'static FastSite>>,
    /// The site's candidate rules (indices into the plan).
    rules: Box<[u32]>,
}

impl SiteTally {
    pub(super) fn new(
        rules: impl IntoIterator<Item = usize>,
        fast: Option<&'static FastSite>,
    ) -> Self {
        Self {
            calls: AtomicU64::new(0),
            fast: Mutex::new(fast),
            rules: rules
                .into_iter()
                .filter_map(|rule| u32::try_from(rule).ok())
                .collect(),
        }
    }

    fn fast_entry(&self) -> MutexGuard<'_, Option<&'static FastSite>> {
        self.fast.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the site decides on its thread's table of single-roll sites.
    pub(super) fn holds_fast_entry(&self) -> bool {
        self.fast_entry().is_some()
    }

    /// Gives the table entry up (another site or plan takes it): its count moves to this
    /// tally's own, and the site decides on the general short path from now on.
    pub(super) fn give_up_fast_entry(&self) {
        let mut fast = self.fast_entry();
        if let Some(entry) = fast.take() {
            let calls = self.calls.load(Ordering::Relaxed);
            self.calls
                .store(calls.wrapping_add(entry.release()), Ordering::Relaxed);
        }
    }

    /// Counts one call; only the owning thread calls this. Wrapping: a count of 2^64 calls
    /// is out of reach (centuries at a call per nanosecond).
    #[inline]
    pub(super) fn add_owned(&self) {
        self.calls.store(
            self.calls.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// The calls counted, here and in the table entry the tally holds.
    fn total_calls(&self) -> u64 {
        let fast = self.fast_entry();
        let in_entry = fast.map_or(0, FastSite::calls);
        self.calls.load(Ordering::Relaxed).wrapping_add(in_entry)
    }

    /// Adds this tally's counts to per-rule `totals` (indexed by rule, then counter).
    pub(super) fn add_to(&self, totals: &mut [[u64; COUNTERS_PER_RULE]]) {
        let calls = self.total_calls();
        if calls == 0 {
            return;
        }
        for &rule in &self.rules {
            if let Some(counts) = totals.get_mut(rule as usize) {
                counts[EVALUATED] = counts[EVALUATED].saturating_add(calls);
            }
        }
    }

    /// The thread stops using this tally: its table entry is freed, and its counts move into
    /// `shared` (when the tally is still registered; the owning thread, under the plan's
    /// registry lock).
    pub(super) fn retire(&self, shared: Option<&RuleCounters>) {
        let mut fast = self.fast_entry();
        let mut calls = self.calls.swap(0, Ordering::Relaxed);
        if let Some(entry) = fast.take() {
            calls = calls.wrapping_add(entry.release());
        }
        drop(fast);
        let Some(shared) = shared else {
            return;
        };
        if calls == 0 {
            return;
        }
        for &rule in &self.rules {
            shared.add_atomically(rule as usize, EVALUATED, calls);
        }
    }
}

/// How the current call counts: into its thread's own counters (one writer, so a plain load
/// and store, no locked instruction), or into the shared ones (atomic add).
#[derive(Clone, Copy)]
pub(super) enum Counting<'a> {
    Owned(&'a RuleCounters),
    Shared(&'a RuleCounters),
}

impl Counting<'_> {
    #[inline]
    pub(super) fn add(self, rule: usize, counter: usize) {
        match self {
            Self::Owned(counters) => counters.add_owned(rule, counter),
            Self::Shared(counters) => counters.add_atomically(rule, counter, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_and_counter_has_a_slot_of_its_own() {
        let rules = 20;
        let counters = RuleCounters::new(rules);
        let value = |rule: usize, counter: usize| (rule * 10 + counter + 1) as u64;
        for rule in 0..rules {
            for counter in 0..COUNTERS_PER_RULE {
                counters.add_atomically(rule, counter, value(rule, counter));
            }
        }
        for rule in 0..rules {
            for counter in 0..COUNTERS_PER_RULE {
                assert_eq!(counters.get(rule, counter), value(rule, counter));
            }
        }
        assert_eq!(counters.get(rules * 8, 0), 0, "past the end counts nothing");
    }
}
