//! The plan each thread caches, and the decision path that reads it.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::plan::{Call, CompiledPlan, SharedMatchCounter, Verdict};

use super::counters::{Counting, EVALUATED, INJECTED, InjectorObserver, RuleCounters};
use super::guardrails::Guardrails;
use super::{Injector, NEXT_ID};

#[derive(Debug)]
pub(super) struct Loaded {
    pub(super) plan: CompiledPlan,
    /// Reloads before this plan (0 for the first).
    pub(super) generation: u64,
    /// Globally unique, so a thread's cache entry can never match a different plan.
    pub(super) version: u64,
    /// Each thread's own counters, registered when the thread first uses this plan.
    pub(super) thread_counters: Mutex<Vec<Arc<RuleCounters>>>,
    /// Counters for calls that cannot use a thread's cache (re-entrant calls from a tracing
    /// subscriber); written with atomic adds since threads share them.
    pub(super) shared_counters: RuleCounters,
    pub(super) matches: SharedMatchCounter,
    /// Whether deciding needs the time since start (timed rules or guardrails).
    pub(super) needs_elapsed: bool,
}

impl Loaded {
    pub(super) fn new(plan: CompiledPlan, generation: u64, guardrails: &Guardrails) -> Self {
        let rules = plan.rule_count();
        Self {
            needs_elapsed: plan.needs_elapsed()
                || guardrails.expire_after.is_some()
                || guardrails.max_injections.is_some(),
            plan,
            generation,
            version: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            thread_counters: Mutex::new(Vec::new()),
            shared_counters: RuleCounters::new(rules),
            matches: SharedMatchCounter::new(rules),
        }
    }

    pub(super) fn register_thread(&self) -> Arc<RuleCounters> {
        let counters = Arc::new(RuleCounters::new(self.plan.rule_count()));
        self.thread_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&counters));
        counters
    }

    /// A thread stops using this plan (its cache entry was evicted or replaced, or the thread
    /// ended): its counts move to the shared counters and its slot is freed, so memory does
    /// not grow with threads or cache churn. Under the registry lock, so a snapshot never sees
    /// a count twice or not at all.
    pub(super) fn retire_thread(&self, counters: &Arc<RuleCounters>) {
        let mut threads = self
            .thread_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(position) = threads.iter().position(|c| Arc::ptr_eq(c, counters)) {
            for rule in 0..self.plan.rule_count() {
                for counter in [EVALUATED, INJECTED] {
                    let count = counters.get(rule, counter);
                    if count > 0 {
                        self.shared_counters.add_atomically(rule, counter, count);
                    }
                }
            }
            threads.swap_remove(position);
        }
    }

    pub(super) fn total(&self, rule: usize, counter: usize) -> u64 {
        let threads = self
            .thread_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        threads.iter().map(|c| c.get(rule, counter)).sum::<u64>()
            + self.shared_counters.get(rule, counter)
    }
}

/// A thread's cached view of one injector's plan.
pub(super) struct CachedPlan {
    pub(super) injector: u64,
    pub(super) version: u64,
    pub(super) loaded: Arc<Loaded>,
    pub(super) counters: Arc<RuleCounters>,
}

impl Drop for CachedPlan {
    fn drop(&mut self) {
        self.loaded.retire_thread(&self.counters);
    }
}

/// Plans an injector holds for one thread; a handful at most.
pub(super) const CACHED_PLANS_PER_THREAD: usize = 8;

thread_local! {
    static PLAN_CACHE: RefCell<Vec<CachedPlan>> = const { RefCell::new(Vec::new()) };
}

impl Injector {
    /// The plan comes from a thread-local cache checked against the injector's version: one
    /// shared read, no shared write, no reference count touched. `finish` sees the verdict
    /// with the plan that decided it.
    pub(super) fn decide_enabled<R>(
        &self,
        call: &Call<'_>,
        finish: impl FnOnce(&Loaded, Verdict) -> R,
    ) -> R {
        let version = self.shared.current.load(Ordering::Acquire);
        let id = self.shared.id;
        let mut finish = Some(finish);
        let cached = PLAN_CACHE.try_with(|cache| {
            // A tracing subscriber that calls an injector re-enters here; it takes the slow path.
            let mut cache = cache.try_borrow_mut().ok()?;
            let position = match cache.iter().position(|entry| entry.injector == id) {
                Some(position) if cache[position].version == version => position,
                found => {
                    let loaded = self.shared.loaded.load_full();
                    let entry = CachedPlan {
                        injector: id,
                        version: loaded.version,
                        counters: loaded.register_thread(),
                        loaded,
                    };
                    match found {
                        Some(position) => {
                            cache[position] = entry;
                            position
                        }
                        None => {
                            if cache.len() >= CACHED_PLANS_PER_THREAD {
                                cache.remove(0);
                            }
                            cache.push(entry);
                            cache.len() - 1
                        }
                    }
                }
            };
            let entry = &cache[position];
            let verdict = self.evaluate(&entry.loaded, Counting::Owned(&entry.counters), call);
            finish.take().map(|finish| finish(&entry.loaded, verdict))
        });
        match (cached, finish) {
            (Ok(Some(decided)), _) => decided,
            // Re-entered, or the thread is shutting down: the shared plan and counters.
            (_, Some(finish)) => {
                let loaded = self.shared.loaded.load();
                let verdict =
                    self.evaluate(&loaded, Counting::Shared(&loaded.shared_counters), call);
                finish(&loaded, verdict)
            }
            // `finish` ran inside the cache closure, which then returned its result.
            (Ok(None) | Err(_), None) => unreachable!("finish consumed without a result"),
        }
    }

    #[inline]
    pub(super) fn evaluate(
        &self,
        loaded: &Loaded,
        counting: Counting<'_>,
        call: &Call<'_>,
    ) -> Verdict {
        if loaded.plan.rule_count() == 0 {
            return Verdict::default();
        }
        let guardrails = &self.shared.guardrails;
        // Clocks are read only when a rule or guardrail needs them: a clock read costs more
        // than the rest of a decision.
        let elapsed = if loaded.needs_elapsed {
            self.elapsed()
        } else {
            Duration::ZERO
        };
        if guardrails
            .expire_after
            .is_some_and(|limit| elapsed >= limit)
        {
            return Verdict::default();
        }
        let now = loaded.plan.needs_wall_clock().then(SystemTime::now);
        let mut observer = InjectorObserver {
            loaded,
            counting,
            shared: &self.shared,
            elapsed,
        };
        loaded
            .plan
            .evaluate_observed(call, elapsed, now, &loaded.matches, &mut observer)
    }
}
