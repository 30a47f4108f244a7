//! The plan each thread caches, and the decision path that reads it.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::plan::{Call, CompiledPlan, ResolvedSite, SharedMatchCounter, Verdict};

use super::counters::{Counting, EVALUATED, INJECTED, InjectorObserver, RuleCounters};
use super::guardrails::Guardrails;
use super::site::{self, Site, SiteCall, Token};
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
            thread_counters: Mutex::new(Vec::new()),
            shared_counters: RuleCounters::new(rules),
            matches: SharedMatchCounter::new(rules),
            schedule_origin,
            needs_operation,
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

/// A thread's cached view of one injector's plan, with the sites it resolved against it.
pub(super) struct CachedPlan {
    pub(super) injector: u64,
    pub(super) version: u64,
    pub(super) loaded: Arc<Loaded>,
    pub(super) counters: Arc<RuleCounters>,
    pub(super) sites: ResolvedSites,
}

impl Drop for CachedPlan {
    fn drop(&mut self) {
        self.loaded.retire_thread(&self.counters);
    }
}

/// One thread's resolutions of sites against one plan, by slot ([`site::slot_of`]).
#[derive(Default)]
pub(super) struct ResolvedSites(Vec<ThreadSite>);

#[derive(Default)]
struct ThreadSite {
    /// The token of the site this was resolved for.
    token: Token,
    resolved: ResolvedSite,
    /// Decided by [`ResolvedSite::evaluate_plain`]: every candidate is plain and no
    /// guardrail needs the clock on every call.
    plain: bool,
}

impl ResolvedSites {
    /// The resolution of the site with `token`, if this thread has made it for this plan.
    #[inline]
    fn find(&self, token: Token) -> Option<&ThreadSite> {
        self.0
            .get(site::slot_of(token))
            .filter(|cached| cached.token == token)
    }

    /// The resolution of the site with `token` in `loaded`, resolving it on first use.
    fn get(
        &mut self,
        loaded: &Loaded,
        guardrails: &Guardrails,
        token: Token,
        site: &Site<'_>,
    ) -> &ResolvedSite {
        let slot = site::slot_of(token);
        if self.find(token).is_none() {
            if self.0.len() <= slot {
                self.0.resize_with(slot + 1, Default::default);
            }
            if let Some(entry) = self.0.get_mut(slot) {
                let resolved = loaded.plan.resolve(&site.call_site());
                *entry = ThreadSite {
                    token,
                    plain: resolved.is_plain() && guardrails.expire_after.is_none(),
                    resolved,
                };
            }
        }
        self.0.get(slot).map_or(&EMPTY, |cached| &cached.resolved)
    }
}

static EMPTY: ResolvedSite = ResolvedSite::EMPTY;

/// Plans an injector holds for one thread; a handful at most.
pub(super) const CACHED_PLANS_PER_THREAD: usize = 8;

thread_local! {
    pub(super) static PLAN_CACHE: RefCell<Vec<CachedPlan>> = const { RefCell::new(Vec::new()) };
}

/// The `finish` of a decision that also names the failing rule (from the plan that decided).
pub(super) fn with_label(loaded: &Loaded, verdict: Verdict) -> (Verdict, Option<String>) {
    let label = verdict
        .failure
        .as_ref()
        .and_then(|failure| loaded.plan.label(failure.rule()))
        .map(str::to_owned);
    (verdict, label)
}

impl Injector {
    /// Runs `decide` with this thread's cached plan at `version` (loading it on a miss) and
    /// the thread's own counters and resolved sites: no shared write, no reference count
    /// touched. A call that cannot use the cache (re-entered from a tracing subscriber, or
    /// made while the thread shuts down) decides with the shared plan and counters, and no
    /// resolved sites.
    #[inline]
    fn with_cached_plan<R>(
        &self,
        version: u64,
        decide: impl FnOnce(&Loaded, Counting<'_>, Option<&mut ResolvedSites>) -> R,
    ) -> R {
        let id = self.shared.id;
        let mut decide = Some(decide);
        let cached = PLAN_CACHE.try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let position = match cache.iter().position(|entry| entry.injector == id) {
                Some(position)
                    if cache
                        .get(position)
                        .is_some_and(|entry| entry.version == version) =>
                {
                    position
                }
                _ => self.cache_miss(&mut cache, version)?,
            };
            let entry = cache.get_mut(position)?;
            let decide = decide.take()?;
            Some(decide(
                &entry.loaded,
                Counting::Owned(&entry.counters),
                Some(&mut entry.sites),
            ))
        });
        match (cached, decide) {
            (Ok(Some(decided)), _) => decided,
            (_, Some(decide)) => {
                let loaded = self.shared.loaded.load();
                decide(&loaded, Counting::Shared(&loaded.shared_counters), None)
            }
            // `decide` ran inside the cache closure, which then returned its result.
            (Ok(None) | Err(_), None) => unreachable!("decided without a result"),
        }
    }

    /// Finds or loads this injector's entry: the plan's version moved, or another injector's
    /// entry comes first.
    #[cold]
    #[inline(never)]
    fn cache_miss(&self, cache: &mut Vec<CachedPlan>, version: u64) -> Option<usize> {
        let id = self.shared.id;
        let found = cache.iter().position(|entry| entry.injector == id);
        if let Some(position) = found
            && cache.get(position)?.version == version
        {
            return Some(position);
        }
        let loaded = self.shared.loaded.load_full();
        let entry = CachedPlan {
            injector: id,
            version: loaded.version,
            counters: loaded.register_thread(),
            loaded,
            sites: ResolvedSites::default(),
        };
        Some(match found {
            Some(position) => {
                *cache.get_mut(position)? = entry;
                position
            }
            None => {
                if cache.len() >= CACHED_PLANS_PER_THREAD {
                    cache.remove(0);
                }
                cache.push(entry);
                cache.len() - 1
            }
        })
    }

    /// Decides an ad hoc call with the plan at `version`; `finish` sees the verdict with the
    /// plan that decided it.
    #[inline]
    pub(super) fn decide_enabled<R>(
        &self,
        version: u64,
        call: &Call<'_>,
        finish: impl FnOnce(&Loaded, Verdict) -> R,
    ) -> R {
        // The short path when this injector's plan is in the thread's cache, current, and
        // has only plain rules (see `decide_site_enabled`).
        let mut finish = Some(finish);
        let id = self.shared.id;
        let quick = PLAN_CACHE.try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let entry = cache.iter().find(|entry| entry.injector == id)?;
            if entry.version != version || !entry.loaded.plain {
                return None;
            }
            let finish = finish.take()?;
            let counters = &*entry.counters;
            let plan = &entry.loaded.plan;
            let Some((position, call_word)) =
                plan.first_admitted(call, |rule| counters.add_owned(rule, EVALUATED))
            else {
                return Some(finish(&entry.loaded, Verdict::default()));
            };
            let mut observer = InjectorObserver {
                loaded: &entry.loaded,
                counting: Counting::Owned(counters),
                shared: &self.shared,
                elapsed: None,
            };
            let verdict = plan.evaluate_plain_from(call, position, call_word, &mut observer);
            Some(finish(&entry.loaded, verdict))
        });
        if let Ok(Some(decided)) = quick {
            return decided;
        }
        let Some(finish) = finish else {
            unreachable!("the quick path took `finish` and returned its result")
        };
        self.with_cached_plan(version, |loaded, counting, _| {
            finish(loaded, self.evaluate(loaded, counting, call, None))
        })
    }

    /// Decides a call at a [`Site`] with the plan at `version`.
    ///
    /// The common case takes the shortest path: this injector's plan is in the thread's
    /// cache and current, the thread has resolved the site, and only rolls decide
    /// there. Anything else (first use, a reload, other injectors, timed or counting rules)
    /// takes the general path, which resolves the site for next time.
    #[inline]
    pub(super) fn decide_site_enabled<R>(
        &self,
        version: u64,
        call: &SiteCall<'_>,
        finish: impl FnOnce(&Loaded, Verdict) -> R,
    ) -> R {
        let token = call.site().token();
        let mut finish = Some(finish);
        if let Some(token) = token {
            let id = self.shared.id;
            let quick = PLAN_CACHE.try_with(|cache| {
                let cache = cache.try_borrow().ok()?;
                let entry = cache.iter().find(|entry| entry.injector == id)?;
                if entry.version != version {
                    return None;
                }
                let resolved = &entry
                    .sites
                    .find(token)
                    .filter(|cached| cached.plain)?
                    .resolved;
                let finish = finish.take()?;
                let call_word = resolved.call_word(call.request_key(), call.attempt_number());
                let counters = &*entry.counters;
                let Some(position) =
                    resolved.first_admitted(call_word, |rule| counters.add_owned(rule, EVALUATED))
                else {
                    return Some(finish(&entry.loaded, Verdict::default()));
                };
                let mut observer = InjectorObserver {
                    loaded: &entry.loaded,
                    counting: Counting::Owned(counters),
                    shared: &self.shared,
                    elapsed: None,
                };
                let verdict = resolved.evaluate_plain_from(
                    &entry.loaded.plan,
                    position,
                    call_word,
                    &call.to_call(),
                    &mut observer,
                );
                Some(finish(&entry.loaded, verdict))
            });
            if let Ok(Some(decided)) = quick {
                return decided;
            }
        }
        let Some(finish) = finish else {
            unreachable!("the quick path took `finish` and returned its result")
        };
        self.with_cached_plan(version, |loaded, counting, sites| {
            let ad_hoc = call.to_call();
            let resolved = match (sites, token) {
                (Some(sites), Some(token)) => {
                    Some(sites.get(loaded, &self.shared.guardrails, token, call.site()))
                }
                // No thread cache, or no slot: decided the ad hoc way, to the same verdict.
                _ => None,
            };
            finish(loaded, self.evaluate(loaded, counting, &ad_hoc, resolved))
        })
    }

    /// Decides `call` with `loaded` (at its resolved site when given), with the guardrails.
    #[inline]
    pub(super) fn evaluate(
        &self,
        loaded: &Loaded,
        counting: Counting<'_>,
        call: &Call<'_>,
        site: Option<&ResolvedSite>,
    ) -> Verdict {
        if loaded.plan.rule_count() == 0 || site.is_some_and(ResolvedSite::is_empty) {
            return Verdict::default();
        }
        let guardrails = &self.shared.guardrails;
        // Clocks are read only when a rule or guardrail needs them: a clock read costs more
        // than the rest of a decision. The budget reads it only when a rule fires.
        let clock = loaded.needs_elapsed.then(Instant::now);
        let elapsed = clock.map(|now| now.saturating_duration_since(self.shared.started));
        if let (Some(limit), Some(elapsed)) = (guardrails.expire_after, elapsed)
            && elapsed >= limit
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
        // Windows and ramps count from the plan's origin (the injector's start unless
        // anchored to the plan's load).
        let elapsed = clock.map_or(Duration::ZERO, |now| {
            now.saturating_duration_since(loaded.schedule_origin)
        });
        match site {
            Some(site) => loaded.plan.evaluate_resolved_observed(
                site,
                call,
                elapsed,
                now,
                &loaded.matches,
                &mut observer,
            ),
            None => {
                loaded
                    .plan
                    .evaluate_observed(call, elapsed, now, &loaded.matches, &mut observer)
            }
        }
    }
}
