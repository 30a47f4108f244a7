//! The plan each thread caches, and the decision path that reads it.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::decision::call_word;
use crate::plan::{Call, Observer, ResolvedSite, Verdict};

use super::Injector;
use super::counters::{Counting, EVALUATED, InjectorObserver, RuleCounters, SiteTally};
use super::fast::{self, FastHolders};
use super::guardrails::Guardrails;
use super::loaded::Loaded;
use super::site::{self, Site, SiteCall, Token};

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
        self.loaded.retire_thread(&self.counters, &self.sites);
    }
}

/// One thread's resolutions of sites against one plan, by slot ([`site::slot_of`]).
#[derive(Default)]
pub(super) struct ResolvedSites(Vec<ThreadSite>);

/// What the general path at a site reads and fills: the plan's resolutions on this thread,
/// and the thread's short-path table.
pub(super) struct SiteTables<'a> {
    resolved: &'a mut ResolvedSites,
    quick: &'a mut Vec<QuickSite>,
    /// The thread's table of single-roll sites, taken on first need.
    fast: &'a mut FastHolders,
    /// The version of the plan `resolved` belongs to.
    version: u64,
}

#[derive(Default)]
struct ThreadSite {
    /// The token of the site this was resolved for.
    token: Token,
    resolved: ResolvedSite,
    /// Present when the short path decides here: every candidate is plain (only the roll
    /// decides) and no guardrail needs the clock on every call. Counts the calls it passes.
    tally: Option<Arc<SiteTally>>,
}

impl ResolvedSites {
    /// The tallies of the sites resolved here (plain sites only have one).
    pub(super) fn tallies(&self) -> impl Iterator<Item = &Arc<SiteTally>> {
        self.0.iter().filter_map(|site| site.tally.as_ref())
    }

    /// The resolution of the site with `token` in `loaded`, resolving it on first use (and
    /// then, where one plain rule at most can match, taking the site's entry of the thread's
    /// table of single-roll sites).
    fn get(
        &mut self,
        loaded: &Loaded,
        guardrails: &Guardrails,
        token: Token,
        site: &Site<'_>,
        fast: &mut FastHolders,
    ) -> &ThreadSite {
        let slot = site::slot_of(token);
        if self.0.len() <= slot {
            self.0.resize_with(slot + 1, Default::default);
        }
        if let Some(entry) = self.0.get_mut(slot)
            && entry.token != token
        {
            // The slot's previous owner was dropped: its counts go to the plan's.
            if let Some(tally) = &entry.tally {
                loaded.retire_site(tally);
            }
            let resolved = loaded.plan.resolve(&site.call_site());
            let plain = resolved.is_plain() && guardrails.expire_after.is_none();
            let tally = plain.then(|| {
                if resolved.candidate_count() > 1 {
                    return loaded.register_site(&resolved, None);
                }
                let entry = fast.take(token, loaded.version, resolved.plain_rolls().next());
                let tally = loaded.register_site(&resolved, entry);
                if entry.is_some() {
                    fast.held_by(token, &tally);
                }
                tally
            });
            *entry = ThreadSite {
                token,
                tally,
                resolved,
            };
        }
        self.0.get(slot).unwrap_or(&EMPTY)
    }
}

static EMPTY: ThreadSite = ThreadSite {
    token: 0,
    resolved: ResolvedSite::EMPTY,
    tally: None,
};

/// Plans an injector holds for one thread; a handful at most.
pub(super) const CACHED_PLANS_PER_THREAD: usize = 8;

/// What one thread keeps: the plans it decides with, and the direct table of the sites it
/// decides at on the short path.
pub(super) struct ThreadCache {
    plans: Vec<CachedPlan>,
    /// The thread's table of single-roll sites, once it has one, and the tally holding each
    /// entry.
    fast: FastHolders,
    /// By site slot ([`site::slot_of`]): what the short path at that site needs, for the
    /// plan version it was resolved against. Filled by the general path; an entry is only
    /// read when both its token and its version are the call's, and entries of a plan this
    /// thread drops are cleared with it (their tallies then count no more).
    sites: Vec<QuickSite>,
}

impl ThreadCache {
    /// Drops the cached plan at `position`'s short-path sites: the plan is being replaced
    /// or evicted, and its tallies are retired with it.
    fn forget_sites_of(&mut self, position: usize) {
        let Some(version) = self.plans.get(position).map(|entry| entry.version) else {
            return;
        };
        for site in &mut self.sites {
            if site.version == version {
                *site = QuickSite::default();
            }
        }
    }
}

impl Drop for ThreadCache {
    /// The thread ends: its plans are dropped first, which retires every tally and frees
    /// the table entries they held; then the table goes to the next thread.
    fn drop(&mut self) {
        self.sites.clear();
        self.plans.clear();
        self.fast.give_back();
    }
}

thread_local! {
    pub(super) static PLAN_CACHE: RefCell<ThreadCache> = const {
        RefCell::new(ThreadCache { plans: Vec::new(), fast: FastHolders::NONE, sites: Vec::new() })
    };
}

/// A site where only rolls decide, as the short path reads it: one entry of a flat
/// per-thread table indexed by the site's slot, holding the call-independent part of the
/// decision (each candidate's key and bound) and the tally its passes count in.
#[derive(Default)]
struct QuickSite {
    /// The site's token (0: empty, never a site's).
    token: Token,
    /// The version of the plan it was resolved against.
    version: u64,
    /// The first candidate's roll, kept inline: most sites have one candidate. A site with
    /// none has a roll that sends a call to the general path only when its partial word is
    /// 0 (one call in 2^64), where the call then passes as it should.
    first: Roll,
    /// The other candidates' rolls, in plan order.
    rest: Box<[Roll]>,
    tally: Option<Arc<SiteTally>>,
}

/// One candidate's roll, for the short path: a partial word above `bound` does not fire.
#[derive(Clone, Copy)]
struct Roll {
    key: crate::decision::DecisionKey,
    bound: u64,
}

impl Roll {
    /// Whether the call with `call_word` may be admitted: then the general path decides.
    #[inline(always)]
    fn may_admit(self, call_word: u64) -> bool {
        self.key.partial_for_call_word(call_word) <= self.bound
    }
}

impl Default for Roll {
    /// A roll that almost never needs the general path (see [`QuickSite::first`]).
    fn default() -> Self {
        Self {
            key: crate::decision::DecisionKey::new(0, 0),
            bound: 0,
        }
    }
}

impl QuickSite {
    fn new(token: Token, version: u64, resolved: &ResolvedSite, tally: Arc<SiteTally>) -> Self {
        let mut rolls = resolved.plain_rolls().map(|(key, probability)| Roll {
            key,
            bound: probability.partial_bound(),
        });
        Self {
            token,
            version,
            first: rolls.next().unwrap_or_default(),
            rest: rolls.collect(),
            tally: Some(tally),
        }
    }
}

/// What a decision returns: the verdict alone, or with the label of the rule whose failure
/// it carries. The short paths answer "nothing fired" with [`pass`](Self::pass), building
/// nothing from the plan.
pub(super) trait Decided {
    /// Nothing fired.
    fn pass() -> Self;
    /// `verdict`, decided by `loaded`.
    fn decided(loaded: &Loaded, verdict: Verdict) -> Self;
}

impl Decided for Verdict {
    #[inline]
    fn pass() -> Self {
        Self::default()
    }

    #[inline]
    fn decided(_: &Loaded, verdict: Verdict) -> Self {
        verdict
    }
}

/// The label is read from the plan that decided: a reload between the decision and the
/// answer built from it cannot name the new plan's rule.
impl Decided for (Verdict, Option<String>) {
    #[inline]
    fn pass() -> Self {
        (Verdict::default(), None)
    }

    fn decided(loaded: &Loaded, verdict: Verdict) -> Self {
        let label = verdict
            .failure
            .as_ref()
            .and_then(|failure| loaded.plan.label(failure.rule()))
            .map(str::to_owned);
        (verdict, label)
    }
}

/// An observer for a call a site's tally already counted as evaluated by every candidate.
struct Tallied<'a>(InjectorObserver<'a>);

impl Observer for Tallied<'_> {
    fn evaluated(&mut self, _rule: usize) {}

    fn permit(&mut self, rule: usize) -> bool {
        self.0.permit(rule)
    }

    fn injected(&mut self, rule: usize, call: &Call<'_>, latency: Duration) {
        self.0.injected(rule, call, latency);
    }
}

/// A faulted call's verdict and the label of the rule whose failure it carries; `None` when
/// nothing fired (what the layers need: a passing call is then one branch, with no label to
/// drop).
#[cfg(feature = "tower")]
impl Decided for Option<(Verdict, Option<String>)> {
    #[inline]
    fn pass() -> Self {
        None
    }

    fn decided(loaded: &Loaded, verdict: Verdict) -> Self {
        if verdict.is_pass() {
            return None;
        }
        Some(<(Verdict, Option<String>)>::decided(loaded, verdict))
    }
}

/// Runs `quick` on this thread's cache entry for the plan at `version` (versions are unique
/// across injectors), if the thread has one: the first step of both short paths. No shared
/// write, no reference count touched; `None` when there is no entry, or the cache cannot be
/// used (re-entered from a tracing subscriber, or the thread is shutting down).
#[inline]
fn with_current_entry<T>(version: u64, quick: impl FnOnce(&CachedPlan) -> Option<T>) -> Option<T> {
    PLAN_CACHE
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let plans = &cache.plans;
            // Most threads use one injector: its entry is the first.
            let entry = match plans.first() {
                Some(first) if first.version == version => first,
                _ => plans.iter().find(|entry| entry.version == version)?,
            };
            quick(entry)
        })
        .ok()
        .flatten()
}

/// What a short path found.
pub(super) enum Quick {
    /// No rule fires: the call passes (and is counted).
    Pass,
    /// A rule's roll admitted the call (it and the rules before it are counted): the rest
    /// of the decision goes on from there.
    Admitted,
    /// The short path does not apply; nothing was counted.
    Unsettled,
}

/// The short path of an ad hoc decision, when this injector's plan is in the thread's cache,
/// current, and has only plain rules: the rolls of the rules that select the call, each
/// counted in the thread's own counters. Out of line and returning a small value in
/// registers, so the entry points stay small enough to inline everywhere (a switched-off
/// decision is then a load and a branch in the caller) and "nothing fired" builds nothing.
#[inline(never)]
pub(super) fn ad_hoc_quick(version: u64, call: &Call<'_>) -> Quick {
    with_current_entry(version, |entry| {
        if !entry.loaded.plain {
            return None;
        }
        let counters = &*entry.counters;
        Some(
            match entry
                .loaded
                .plan
                .first_admitted(call, |rule| counters.add_owned(rule, EVALUATED))
            {
                None => Quick::Pass,
                Some(_) => Quick::Admitted,
            },
        )
    })
    .unwrap_or(Quick::Unsettled)
}

/// The short path of a decision at a site: this thread's table has the site resolved
/// against the plan at `version`, only rolls decide there, and none admits the call (whose
/// [`call_word`] the caller computed from the site's own hash). It writes one counter, the
/// site's tally, and returns `true`; `false` (nothing counted) leaves the decision to the
/// general path. No hashing, no shared write: a thread-local borrow, two compares to find
/// the entry, then per candidate a keyed mix short of its last step and one compare.
/// Out of line (it returns a flag in a register, so callers still branch straight to their
/// answer): sites with one rule at most decide on the thread's table of single-roll sites
/// before this, and callers' loops keep fewer registers live without it.
#[inline(never)]
fn site_quick(version: u64, token: Token, call_word: u64) -> bool {
    PLAN_CACHE
        .try_with(|cache| {
            let Ok(cache) = cache.try_borrow() else {
                return false;
            };
            let Some(site) = cache.sites.get(site::slot_of(token)) else {
                return false;
            };
            if site.token != token || site.version != version {
                return false;
            }
            let Some(tally) = &site.tally else {
                return false;
            };
            // A roll at or under its bound may fire: the general path decides it exactly.
            if site.first.may_admit(call_word)
                || site.rest.iter().any(|roll| roll.may_admit(call_word))
            {
                return false;
            }
            tally.add_owned();
            true
        })
        .unwrap_or(false)
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
        decide: impl FnOnce(&Loaded, Counting<'_>, Option<SiteTables<'_>>) -> R,
    ) -> R {
        let id = self.shared.id;
        let mut decide = Some(decide);
        let cached = PLAN_CACHE.try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let position = match cache.plans.iter().position(|entry| entry.injector == id) {
                Some(position)
                    if cache
                        .plans
                        .get(position)
                        .is_some_and(|entry| entry.version == version) =>
                {
                    position
                }
                _ => self.cache_miss(&mut cache, version)?,
            };
            let ThreadCache { plans, fast, sites } = &mut *cache;
            let entry = plans.get_mut(position)?;
            let decide = decide.take()?;
            Some(decide(
                &entry.loaded,
                Counting::Owned(&entry.counters),
                Some(SiteTables {
                    resolved: &mut entry.sites,
                    quick: sites,
                    fast,
                    version: entry.version,
                }),
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
    fn cache_miss(&self, cache: &mut ThreadCache, version: u64) -> Option<usize> {
        let id = self.shared.id;
        let found = cache.plans.iter().position(|entry| entry.injector == id);
        if let Some(position) = found
            && cache.plans.get(position)?.version == version
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
                cache.forget_sites_of(position);
                *cache.plans.get_mut(position)? = entry;
                position
            }
            None => {
                if cache.plans.len() >= CACHED_PLANS_PER_THREAD {
                    cache.forget_sites_of(0);
                    cache.plans.remove(0);
                }
                cache.plans.push(entry);
                cache.plans.len() - 1
            }
        })
    }

    /// Decides an ad hoc call with the plan at `version`: the short path when it can
    /// (see [`ad_hoc_quick`]), the general one otherwise.
    #[inline(always)]
    pub(super) fn decide_enabled<R: Decided>(&self, version: u64, call: &Call<'_>) -> R {
        match ad_hoc_quick(version, call) {
            Quick::Pass => R::pass(),
            Quick::Admitted => self.fire_ad_hoc(version, call),
            Quick::Unsettled => self.decide_ad_hoc_slow(version, call),
        }
    }

    /// The rest of a short-path ad hoc decision, which found a rule whose roll admits the
    /// call and counted it and the rules before it. The rolls are pure, so that rule is
    /// found again here, without counting. Out of line: only calls that fire come here.
    #[cold]
    #[inline(never)]
    fn fire_ad_hoc<R: Decided>(&self, version: u64, call: &Call<'_>) -> R {
        let fired = with_current_entry(version, |entry| {
            let plan = &entry.loaded.plan;
            let (position, call_word) = plan.first_admitted(call, |_| {})?;
            let mut observer = InjectorObserver {
                loaded: &entry.loaded,
                counting: Counting::Owned(&entry.counters),
                shared: &self.shared,
                elapsed: None,
            };
            let verdict = plan.evaluate_plain_from(call, position, call_word, &mut observer);
            Some(R::decided(&entry.loaded, verdict))
        });
        // The short path just found this entry on this thread, and nothing ran here since.
        fired.unwrap_or_else(|| self.decide_ad_hoc_slow(version, call))
    }

    /// An ad hoc decision the short path cannot take: timed or counting rules, guardrails
    /// on the clock, a plan not yet in the thread's cache.
    #[inline(never)]
    fn decide_ad_hoc_slow<R: Decided>(&self, version: u64, call: &Call<'_>) -> R {
        self.with_cached_plan(version, |loaded, counting, _| {
            R::decided(loaded, self.evaluate(loaded, counting, call, None))
        })
    }

    /// Decides a call at a [`Site`] with the plan at `version`: the thread's table of
    /// single-roll sites when it can (see [`fast::passes`]), the general short path (see
    /// [`site_quick`]) or the slow path otherwise.
    #[inline(always)]
    pub(super) fn decide_site_enabled<'s, R: Decided>(
        &self,
        version: u64,
        site: &'s Site<'s>,
        request_key: u64,
        attempt: u32,
        event: Option<&'s serde_json::Value>,
    ) -> R {
        let token = site.token();
        if let Some(token) = token {
            let call_word = call_word(request_key, site.call_site().site_hash(), attempt);
            if fast::passes(version, token, call_word) || site_quick(version, token, call_word) {
                return R::pass();
            }
        }
        self.decide_site_slow(
            version,
            SiteCall::from_parts(site, request_key, attempt, event),
            token,
        )
    }

    /// A decision at a site that the short path did not settle: first use, a reload, other
    /// injectors, timed or counting rules, or a rule that may fire. Resolves the site for
    /// next time (and, where only rolls decide, gives the short path its entry); there,
    /// counts as the short path does (the site's tally), otherwise per rule.
    #[cold]
    #[inline(never)]
    fn decide_site_slow<R: Decided>(
        &self,
        version: u64,
        call: SiteCall<'_>,
        token: Option<Token>,
    ) -> R {
        self.with_cached_plan(version, |loaded, counting, tables| {
            let ad_hoc = call.to_call();
            let (Some(tables), Some(token)) = (tables, token) else {
                // No thread cache, or no slot: decided the ad hoc way, to the same verdict.
                return R::decided(loaded, self.evaluate(loaded, counting, &ad_hoc, None));
            };
            let site = tables.resolved.get(
                loaded,
                &self.shared.guardrails,
                token,
                call.site(),
                tables.fast,
            );
            let Some(tally) = &site.tally else {
                let verdict = self.evaluate(loaded, counting, &ad_hoc, Some(&site.resolved));
                return R::decided(loaded, verdict);
            };
            // A short path decides here from now on (until this plan leaves the thread): the
            // thread's table of single-roll sites when the site holds its entry there, or
            // the general one.
            let slot = site::slot_of(token);
            if !tally.holds_fast_entry() {
                if tables.quick.len() <= slot {
                    tables.quick.resize_with(slot + 1, Default::default);
                }
                if let Some(quick) = tables.quick.get_mut(slot)
                    && (quick.token != token || quick.version != tables.version)
                {
                    *quick =
                        QuickSite::new(token, tables.version, &site.resolved, Arc::clone(tally));
                }
            }
            // Every candidate is plain, so the call is evaluated by each, fired or not.
            tally.add_owned();
            let resolved = &site.resolved;
            let call_word = resolved.call_word(call.request_key(), call.attempt_number());
            let verdict = match resolved.first_admitted(call_word, |_| {}) {
                None => Verdict::default(),
                Some(position) => {
                    let mut observer = Tallied(InjectorObserver {
                        loaded,
                        counting,
                        shared: &self.shared,
                        elapsed: None,
                    });
                    resolved.evaluate_plain_from(
                        &loaded.plan,
                        position,
                        call_word,
                        &ad_hoc,
                        &mut observer,
                    )
                }
            };
            R::decided(loaded, verdict)
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
