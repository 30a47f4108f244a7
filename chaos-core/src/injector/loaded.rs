//! A loaded plan: the compiled rules with what the injector keeps beside them, and the
//! registry of the counters threads write for it (per rule and per pre-resolved site), which
//! `snapshot()` adds up.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::plan::{CompiledPlan, ResolvedSite, SharedMatchCounter};

use super::NEXT_ID;
use super::cache::ResolvedSites;
use super::counters::{COUNTERS_PER_RULE, EVALUATED, INJECTED, RuleCounters, SiteTally};
use super::fast::FastSite;
use super::guardrails::Guardrails;

#[derive(Debug)]
pub(super) struct Loaded {
    pub(super) plan: CompiledPlan,
    /// Reloads before this plan (0 for the first).
    pub(super) generation: u64,
    /// Globally unique, so a thread's cache entry can never match a different plan.
    pub(super) version: u64,
    /// Each thread's own counters, registered when the thread first uses this plan.
    pub(super) thread_counters: Mutex<ThreadCounts>,
    /// Counters for calls that cannot use a thread's cache (re-entrant calls from a tracing
    /// subscriber), and for threads that stopped using this plan; written with atomic adds
    /// since threads share them.
    pub(super) shared_counters: RuleCounters,
    pub(super) matches: SharedMatchCounter,
    /// Ad hoc calls take the short path: every rule is plain and no guardrail reads the
    /// clock on every call.
    pub(super) plain: bool,
    /// Whether every decision needs the time since start (timed rules, the expiry guardrail;
    /// the budget reads the clock only when a rule fires).
    pub(super) needs_elapsed: bool,
    /// What the plan's windows and ramps count from: the injector's start, or this plan's
    /// load ([`WindowOrigin::PlanLoad`](super::WindowOrigin::PlanLoad)).
    pub(super) schedule_origin: Instant,
    /// [`CompiledPlan::needs_operation`], read once here (per request by the HTTP layers).
    pub(super) needs_operation: bool,
}

/// The counters threads are writing for one plan: per rule, and per pre-resolved site.
#[derive(Debug, Default)]
pub(super) struct ThreadCounts {
    pub(super) threads: Vec<Arc<RuleCounters>>,
    pub(super) sites: Vec<Arc<SiteTally>>,
}

impl Loaded {
    pub(super) fn new(
        plan: CompiledPlan,
        generation: u64,
        guardrails: &Guardrails,
        schedule_origin: Instant,
    ) -> Self {
        let rules = plan.rule_count();
        let needs_operation = plan.needs_operation();
        // Loading is where an operator looks: say here what in the plan can never match.
        for warning in plan.warnings() {
            tracing::warn!(target: "chaos::plan", generation, %warning, "chaos plan warning");
        }
        Self {
            needs_elapsed: plan.needs_elapsed() || guardrails.expire_after.is_some(),
            plain: plan.is_plain() && guardrails.expire_after.is_none(),
            plan,
            generation,
            version: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            thread_counters: Mutex::new(ThreadCounts::default()),
            shared_counters: RuleCounters::new(rules),
            matches: SharedMatchCounter::new(rules),
            schedule_origin,
            needs_operation,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, ThreadCounts> {
        self.thread_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn register_thread(&self) -> Arc<RuleCounters> {
        let counters = Arc::new(RuleCounters::new(self.plan.rule_count()));
        self.counts().threads.push(Arc::clone(&counters));
        counters
    }

    /// A tally for a site this thread resolved (plain, so the short path decides there),
    /// counting in `fast` too when the site holds an entry of the thread's table.
    pub(super) fn register_site(
        &self,
        resolved: &ResolvedSite,
        fast: Option<&'static FastSite>,
    ) -> Arc<SiteTally> {
        let tally = Arc::new(SiteTally::new(resolved.candidate_rules(), fast));
        self.counts().sites.push(Arc::clone(&tally));
        tally
    }

    /// A thread stops using this plan (its cache entry was evicted or replaced, or the thread
    /// ended): its counts, per rule and per site, move to the shared counters and their
    /// slots are freed, so memory does not grow with threads or cache churn. Under the
    /// registry lock, so a snapshot never sees a count twice or not at all.
    pub(super) fn retire_thread(&self, counters: &Arc<RuleCounters>, sites: &ResolvedSites) {
        let mut registry = self.counts();
        if let Some(position) = registry
            .threads
            .iter()
            .position(|c| Arc::ptr_eq(c, counters))
        {
            for rule in 0..self.plan.rule_count() {
                for counter in [EVALUATED, INJECTED] {
                    let count = counters.get(rule, counter);
                    if count > 0 {
                        self.shared_counters.add_atomically(rule, counter, count);
                    }
                }
            }
            registry.threads.swap_remove(position);
        }
        for tally in sites.tallies() {
            Self::retire_tally(&mut registry, &self.shared_counters, tally);
        }
    }

    /// One site's tally leaves the registry, its counts moved to the shared counters.
    pub(super) fn retire_site(&self, tally: &Arc<SiteTally>) {
        Self::retire_tally(&mut self.counts(), &self.shared_counters, tally);
    }

    fn retire_tally(registry: &mut ThreadCounts, shared: &RuleCounters, tally: &Arc<SiteTally>) {
        let position = registry.sites.iter().position(|t| Arc::ptr_eq(t, tally));
        // Its table entry, if any, is freed even when it was retired before.
        tally.retire(position.map(|_| shared));
        if let Some(position) = position {
            registry.sites.swap_remove(position);
        }
    }

    /// Every rule's counts (`[evaluated, injected]`, in plan order), added up over threads,
    /// sites and the shared counters under the registry lock.
    pub(super) fn totals(&self) -> Vec<[u64; COUNTERS_PER_RULE]> {
        let registry = self.counts();
        let mut totals: Vec<[u64; COUNTERS_PER_RULE]> = (0..self.plan.rule_count())
            .map(|rule| {
                [EVALUATED, INJECTED].map(|counter| {
                    registry
                        .threads
                        .iter()
                        .map(|c| c.get(rule, counter))
                        .fold(self.shared_counters.get(rule, counter), u64::saturating_add)
                })
            })
            .collect();
        for tally in &registry.sites {
            tally.add_to(&mut totals);
        }
        totals
    }
}
