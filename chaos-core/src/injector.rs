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
//! * A `tracing` event (target `chaos`) for every injection.
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

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::fault::{HANG_WITHOUT_DEADLINE, InjectedError, InjectedKind};
use crate::plan::{
    Call, CompiledPlan, Failure, Observer, Plan, PlanError, SharedMatchCounter, Verdict,
};
use crate::timeout::Deadline;

/// The environment variable that switches every injector off when set (to anything but empty,
/// `0` or `false`).
pub const DISABLE_ENV_VAR: &str = "CHAOS_DISABLED";

/// Limits that keep an experiment from doing more harm than planned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guardrails {
    /// At most this many injections per interval; further firings are vetoed.
    pub max_injections: Option<(u64, Duration)>,
    /// Nothing is injected once this long has passed since the injector started.
    pub expire_after: Option<Duration>,
}

/// Builds an [`Injector`].
#[derive(Debug, Default)]
pub struct InjectorBuilder {
    plan: Plan,
    guardrails: Guardrails,
    ignore_env: bool,
}

impl InjectorBuilder {
    /// The plan to start with.
    pub fn plan(&mut self, plan: Plan) -> &mut Self {
        self.plan = plan;
        self
    }

    /// At most `count` injections per `interval`.
    pub fn max_injections(&mut self, count: u64, interval: Duration) -> &mut Self {
        self.guardrails.max_injections = Some((count, interval));
        self
    }

    /// Stop injecting after `duration`.
    pub fn expire_after(&mut self, duration: Duration) -> &mut Self {
        self.guardrails.expire_after = Some(duration);
        self
    }

    /// Do not read `CHAOS_DISABLED` (for tests that must not depend on the environment).
    pub fn ignore_env(&mut self) -> &mut Self {
        self.ignore_env = true;
        self
    }

    /// Compiles the plan and builds the injector.
    pub fn build(&self) -> Result<Injector, PlanError> {
        if let Some((_, interval)) = self.guardrails.max_injections {
            if interval.is_zero() {
                return Err(PlanError::Guardrail {
                    field: "max_injections".to_owned(),
                    message: "the interval must be above zero, such as 1s".to_owned(),
                });
            }
        }
        let first = Loaded::new(self.plan.compile()?, 0, &self.guardrails);
        let disabled_by_env = !self.ignore_env
            && std::env::var(DISABLE_ENV_VAR)
                .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE"));
        if disabled_by_env {
            tracing::warn!(target: "chaos", "{DISABLE_ENV_VAR} is set: fault injection is off");
        }
        Ok(Injector {
            shared: Arc::new(Shared {
                enabled: AtomicBool::new(!disabled_by_env),
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                current: AtomicU64::new(first.version),
                loaded: ArcSwap::from_pointee(first),
                started: Instant::now(),
                guardrails: self.guardrails.clone(),
                budget: Budget::default(),
                reload: Mutex::new(None),
            }),
        })
    }
}

/// The runtime fault injector. Cheap to clone (an `Arc`); share it across tasks and threads.
#[derive(Clone, Debug)]
pub struct Injector {
    shared: Arc<Shared>,
}

/// Unique ids for injectors and loaded plans, so a thread's cache never confuses two.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
struct Shared {
    enabled: AtomicBool,
    /// Unique id of this injector, keying the per-thread plan caches.
    id: u64,
    /// `version` of the plan in `loaded`; threads compare it with their cached copy.
    current: AtomicU64,
    loaded: ArcSwap<Loaded>,
    started: Instant,
    guardrails: Guardrails,
    budget: Budget,
    /// Reloads publish the plan and its version as one step (two racing reloads must not
    /// leave `current` naming one plan while `loaded` holds the other). Holds the last
    /// reload error.
    reload: Mutex<Option<PlanError>>,
}

#[derive(Debug)]
struct Loaded {
    plan: CompiledPlan,
    /// Reloads before this plan (0 for the first).
    generation: u64,
    /// Globally unique, so a thread's cache entry can never match a different plan.
    version: u64,
    /// Each thread's own counters, registered when the thread first uses this plan.
    thread_counters: Mutex<Vec<Arc<RuleCounters>>>,
    /// Counters for calls that cannot use a thread's cache (re-entrant calls from a tracing
    /// subscriber); written with atomic adds since threads share them.
    shared_counters: RuleCounters,
    matches: SharedMatchCounter,
    /// Whether deciding needs the time since start (timed rules or guardrails).
    needs_elapsed: bool,
}

impl Loaded {
    fn new(plan: CompiledPlan, generation: u64, guardrails: &Guardrails) -> Self {
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

    fn register_thread(&self) -> Arc<RuleCounters> {
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
    fn retire_thread(&self, counters: &Arc<RuleCounters>) {
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

    fn total(&self, rule: usize, counter: usize) -> u64 {
        let threads = self
            .thread_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        threads.iter().map(|c| c.get(rule, counter)).sum::<u64>()
            + self.shared_counters.get(rule, counter)
    }
}

/// A thread's cached view of one injector's plan.
struct CachedPlan {
    injector: u64,
    version: u64,
    loaded: Arc<Loaded>,
    counters: Arc<RuleCounters>,
}

impl Drop for CachedPlan {
    fn drop(&mut self) {
        self.loaded.retire_thread(&self.counters);
    }
}

/// Plans an injector holds for one thread; a handful at most.
const CACHED_PLANS_PER_THREAD: usize = 8;

thread_local! {
    static PLAN_CACHE: RefCell<Vec<CachedPlan>> = const { RefCell::new(Vec::new()) };
}

impl Injector {
    /// An injector for `plan`, with no guardrails.
    pub fn new(plan: Plan) -> Result<Self, PlanError> {
        Self::builder().plan(plan).build()
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

    /// Switches injection off (the kill switch). Takes effect for the next call.
    pub fn disable(&self) {
        self.shared.enabled.store(false, Ordering::Relaxed);
    }

    /// Switches injection back on.
    pub fn enable(&self) {
        self.shared.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether injection is on.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// Replaces the plan while calls are in flight. On error the previous plan stays in
    /// force, the error is kept for [`last_reload_error`](Self::last_reload_error), and a
    /// warning is traced.
    pub fn reload(&self, plan: &Plan) -> Result<(), PlanError> {
        let compiled = plan.compile();
        // A poisoned lock only means another thread panicked while holding it; the value is
        // still a plain Option, safe to overwrite.
        let mut last_error = self.shared.reload.lock().unwrap_or_else(|p| p.into_inner());
        match compiled {
            Ok(compiled) => {
                let generation = self.shared.loaded.load().generation + 1;
                let loaded = Loaded::new(compiled, generation, &self.shared.guardrails);
                let version = loaded.version;
                self.shared.loaded.store(Arc::new(loaded));
                // Published after the plan, so a thread that sees the new version loads it.
                self.shared.current.store(version, Ordering::Release);
                *last_error = None;
                tracing::info!(target: "chaos", generation, rules = plan.rules.len(), "chaos plan loaded");
                Ok(())
            }
            Err(error) => {
                tracing::warn!(target: "chaos", %error, "chaos plan rejected; the previous plan stays in force");
                *last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Parses TOML text and reloads; see [`reload`](Self::reload).
    pub fn reload_toml(&self, text: &str) -> Result<(), PlanError> {
        match Plan::from_toml_str(text) {
            Ok(plan) => self.reload(&plan),
            Err(error) => {
                tracing::warn!(target: "chaos", %error, "chaos plan rejected; the previous plan stays in force");
                self.set_reload_error(Some(error.clone()));
                Err(error)
            }
        }
    }

    fn set_reload_error(&self, error: Option<PlanError>) {
        *self.shared.reload.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// Why the last reload failed, if it did (cleared by a successful reload).
    pub fn last_reload_error(&self) -> Option<PlanError> {
        self.shared
            .reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Time since the injector was built, on tokio's clock (virtual under a paused runtime).
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Decides a call: which faults apply. Pure apart from counters and guardrails.
    #[inline]
    pub fn decide(&self, call: &Call<'_>) -> Verdict {
        if !self.shared.enabled.load(Ordering::Relaxed) {
            return Verdict::default();
        }
        self.decide_enabled(call, |_, verdict| verdict)
    }

    /// Decides a call; also returns the label of the failing rule, from the plan that decided.
    pub(crate) fn decide_labelled(&self, call: &Call<'_>) -> (Verdict, Option<String>) {
        if !self.shared.enabled.load(Ordering::Relaxed) {
            return (Verdict::default(), None);
        }
        self.decide_enabled(call, |loaded, verdict| {
            let label = verdict
                .failure
                .as_ref()
                .and_then(|failure| loaded.plan.label(failure.rule()))
                .map(str::to_owned);
            (verdict, label)
        })
    }

    /// The plan comes from a thread-local cache checked against the injector's version: one
    /// shared read, no shared write, no reference count touched. `finish` sees the verdict
    /// with the plan that decided it.
    fn decide_enabled<R>(&self, call: &Call<'_>, finish: impl FnOnce(&Loaded, Verdict) -> R) -> R {
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
    fn evaluate(&self, loaded: &Loaded, counting: Counting<'_>, call: &Call<'_>) -> Verdict {
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

    /// Decides a call and applies the verdict: sleeps the added latency, then fails if a
    /// failing rule fired. A hang sleeps until `deadline` minus the rule's buffer (or
    /// [`HANG_WITHOUT_DEADLINE`]), then fails with a timeout.
    pub async fn apply(
        &self,
        call: &Call<'_>,
        deadline: Option<Deadline>,
    ) -> Result<(), InjectedError> {
        let (verdict, label) = self.decide_labelled(call);
        apply_verdict(verdict, label, deadline).await
    }

    /// Adds up the per-rule counters of the current plan.
    pub fn snapshot(&self) -> Snapshot {
        let loaded = self.shared.loaded.load();
        let rules = loaded
            .plan
            .labels()
            .enumerate()
            .map(|(index, label)| RuleStats {
                label: label.to_owned(),
                fault: loaded.plan.fault(index).map_or("", |f| f.label()),
                evaluated: loaded.total(index, EVALUATED),
                injected: loaded.total(index, INJECTED),
            })
            .collect();
        Snapshot {
            enabled: self.is_enabled(),
            generation: loaded.generation,
            rules,
            vetoed_by_budget: self.shared.budget.vetoed.load(Ordering::Relaxed),
        }
    }
}

/// Applies a verdict decided elsewhere (see [`Injector::apply`]).
pub async fn apply_verdict(
    verdict: Verdict,
    rule_label: Option<String>,
    deadline: Option<Deadline>,
) -> Result<(), InjectedError> {
    if !verdict.added_latency.is_zero() {
        tokio::time::sleep(verdict.added_latency).await;
    }
    let Some(failure) = verdict.failure else {
        return Ok(());
    };
    let failure = *failure;
    let rule = rule_label.unwrap_or_else(|| format!("#{}", failure.rule()));
    let kind = match failure {
        Failure::Error { kind, .. } => InjectedKind::Error(kind),
        Failure::Status { status, .. } => InjectedKind::Status(status),
        Failure::Hang { buffer, .. } => {
            match deadline {
                Some(deadline) => {
                    tokio::time::sleep_until(deadline.instant() - buffer.min(deadline.remaining()))
                        .await
                }
                None => tokio::time::sleep(HANG_WITHOUT_DEADLINE).await,
            }
            InjectedKind::Hang
        }
    };
    Err(InjectedError { rule, kind })
}

/// Counters of the current plan, added up over threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Whether injection is on.
    pub enabled: bool,
    /// How many plans were loaded before this one (0 for the first).
    pub generation: u64,
    /// One entry per rule, in plan order.
    pub rules: Vec<RuleStats>,
    /// Firings vetoed by the injection budget.
    pub vetoed_by_budget: u64,
}

/// One rule's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
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

struct InjectorObserver<'a> {
    loaded: &'a Loaded,
    counting: Counting<'a>,
    shared: &'a Shared,
    elapsed: Duration,
}

impl Observer for InjectorObserver<'_> {
    #[inline]
    fn evaluated(&mut self, rule: usize) {
        self.counting.add(rule, EVALUATED);
    }

    fn permit(&mut self, _rule: usize) -> bool {
        match self.shared.guardrails.max_injections {
            Some((limit, interval)) => self.shared.budget.take(limit, interval, self.elapsed),
            None => true,
        }
    }

    fn injected(&mut self, rule: usize, call: &Call<'_>) {
        self.counting.add(rule, INJECTED);
        let label = self.loaded.plan.label(rule).unwrap_or("?");
        let fault = self.loaded.plan.fault(rule).map_or("", |f| f.label());
        tracing::info!(
            target: "chaos",
            rule = label,
            fault,
            request_key = call.request_key,
            site = call.site,
            attempt = call.attempt,
            "injected fault"
        );
    }
}

/// The injection budget: a count per fixed interval. Touched only when a rule fires.
#[derive(Debug, Default)]
struct Budget {
    /// (interval index, injections admitted in it), updated together: a lock is fine here,
    /// the budget is only consulted when a rule fires.
    window: Mutex<(u64, u64)>,
    vetoed: AtomicU64,
}

impl Budget {
    fn take(&self, limit: u64, interval: Duration, elapsed: Duration) -> bool {
        let index =
            u64::try_from(elapsed.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u64::MAX);
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if index > window.0 {
            *window = (index, 0);
        }
        if window.1 < limit {
            window.1 += 1;
            true
        } else {
            drop(window);
            self.vetoed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

const EVALUATED: usize = 0;
const INJECTED: usize = 1;
const COUNTERS_PER_RULE: usize = 2;
const SLOTS_PER_LINE: usize = 16;

/// 128 bytes: two cache lines, since adjacent-line prefetch makes 64-byte padding leak.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Line([AtomicU64; SLOTS_PER_LINE]);

/// Per-rule counters on cache lines of their own.
#[derive(Debug)]
struct RuleCounters {
    lines: Vec<Line>,
}

impl RuleCounters {
    fn new(rules: usize) -> Self {
        let lines = (rules * COUNTERS_PER_RULE).div_ceil(SLOTS_PER_LINE).max(1);
        Self {
            lines: (0..lines).map(|_| Line::default()).collect(),
        }
    }

    #[inline]
    fn slot(&self, rule: usize, counter: usize) -> Option<&AtomicU64> {
        let slot = rule * COUNTERS_PER_RULE + counter;
        self.lines
            .get(slot / SLOTS_PER_LINE)
            .map(|line| &line.0[slot % SLOTS_PER_LINE])
    }

    /// Adds `count` with an atomic add, for counters several threads write.
    fn add_atomically(&self, rule: usize, counter: usize, count: u64) {
        if let Some(slot) = self.slot(rule, counter) {
            slot.fetch_add(count, Ordering::Relaxed);
        }
    }

    fn get(&self, rule: usize, counter: usize) -> u64 {
        self.slot(rule, counter)
            .map_or(0, |slot| slot.load(Ordering::Relaxed))
    }
}

/// How the current call counts: into its thread's own counters (one writer, so a plain load
/// and store, no locked instruction), or into the shared ones (atomic add).
#[derive(Clone, Copy)]
enum Counting<'a> {
    Owned(&'a RuleCounters),
    Shared(&'a RuleCounters),
}

impl Counting<'_> {
    #[inline]
    fn add(self, rule: usize, counter: usize) {
        match self {
            Self::Owned(counters) => {
                if let Some(slot) = counters.slot(rule, counter) {
                    slot.store(slot.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                }
            }
            Self::Shared(counters) => counters.add_atomically(rule, counter, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::ErrorKind;
    use crate::latency::LatencyDist;
    use crate::rule::Rule;

    fn quiet(plan: Plan) -> Injector {
        let mut builder = Injector::builder();
        builder.plan(plan).ignore_env();
        builder.build().unwrap()
    }

    #[test]
    fn failed_reload_keeps_previous_plan() {
        let injector = quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle).named("all")));
        let err = injector
            .reload_toml("[[rules]]\nfault = { error = \"throttle\" }\nprobability = 2.0\n")
            .unwrap_err();
        assert!(matches!(err, PlanError::Rule { .. }));
        assert!(injector.last_reload_error().is_some());
        assert!(
            injector.decide(&Call::new(1, "s")).failure.is_some(),
            "old plan still in force"
        );
        assert_eq!(injector.snapshot().generation, 0);
        injector.reload(&Plan::new(1)).unwrap();
        assert!(injector.decide(&Call::new(1, "s")).is_pass());
        assert!(injector.last_reload_error().is_none());
        assert_eq!(injector.snapshot().generation, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_caps_injections_per_interval() {
        let mut builder = Injector::builder();
        builder
            .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
            .max_injections(3, Duration::from_secs(1))
            .ignore_env();
        let injector = builder.build().unwrap();
        let count = |inj: &Injector| {
            (0..10)
                .filter(|&k| inj.decide(&Call::new(k, "s")).failure.is_some())
                .count()
        };
        assert_eq!(count(&injector), 3);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(count(&injector), 3);
        assert_eq!(injector.snapshot().vetoed_by_budget, 14);
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_guardrail_stops_injection() {
        let mut builder = Injector::builder();
        builder
            .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
            .expire_after(Duration::from_secs(60))
            .ignore_env();
        let injector = builder.build().unwrap();
        assert!(!injector.decide(&Call::new(1, "s")).is_pass());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(injector.decide(&Call::new(1, "s")).is_pass());
    }

    #[tokio::test(start_paused = true)]
    async fn apply_sleeps_in_virtual_time_and_hangs_to_deadline() {
        let injector = quiet(
            Plan::new(1)
                .with_rule(Rule::latency(LatencyDist::constant(Duration::from_millis(
                    300,
                ))))
                .with_rule(Rule::new(crate::fault::Fault::Hang {
                    buffer: Duration::from_millis(100),
                })),
        );
        let start = Instant::now();
        let deadline = Deadline::after(Duration::from_secs(3));
        let err = injector
            .apply(&Call::new(1, "s"), Some(deadline))
            .await
            .unwrap_err();
        assert_eq!(err.kind, InjectedKind::Hang);
        assert_eq!(err.rule, "#1");
        assert_eq!(start.elapsed(), Duration::from_millis(2_900));
    }

    #[test]
    fn kill_switch() {
        let injector = quiet(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)));
        injector.disable();
        assert!(injector.decide(&Call::new(1, "s")).is_pass());
        assert_eq!(injector.snapshot().rules[0].evaluated, 0);
        injector.enable();
        assert!(!injector.decide(&Call::new(1, "s")).is_pass());
    }

    #[test]
    fn more_injectors_than_cache_slots_neither_leak_nor_lose_counts() {
        let injectors: Vec<Injector> = (0..CACHED_PLANS_PER_THREAD as u64 + 3)
            .map(|seed| {
                quiet(
                    Plan::new(seed)
                        .with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.5)),
                )
            })
            .collect();
        // Rotating through more injectors than a thread caches evicts an entry on every call.
        for round in 0..50u64 {
            for injector in &injectors {
                injector.decide(&Call::new(round, "s"));
            }
        }
        for injector in &injectors {
            assert_eq!(injector.snapshot().rules[0].evaluated, 50);
            let loaded = injector.shared.loaded.load();
            let registered = loaded.thread_counters.lock().unwrap().len();
            assert!(
                registered <= 1,
                "{registered} counter sets registered for one thread"
            );
        }
        // A thread that ends hands its counts over.
        let first = injectors[0].clone();
        std::thread::spawn(move || {
            first.decide(&Call::new(1, "s"));
        })
        .join()
        .unwrap();
        assert_eq!(injectors[0].snapshot().rules[0].evaluated, 51);
        assert!(
            injectors[0]
                .shared
                .loaded
                .load()
                .thread_counters
                .lock()
                .unwrap()
                .len()
                <= 1
        );
    }

    #[test]
    fn racing_reloads_leave_the_version_naming_the_loaded_plan() {
        let injector = quiet(Plan::new(0));
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let injector = &injector;
                scope.spawn(move || {
                    for round in 0..200 {
                        injector.reload(&Plan::new(thread * 1000 + round)).unwrap();
                    }
                });
            }
        });
        let loaded = injector.shared.loaded.load();
        assert_eq!(
            injector.shared.current.load(Ordering::Acquire),
            loaded.version
        );
        assert_eq!(loaded.generation, 800);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_is_exact_under_concurrency() {
        let mut builder = Injector::builder();
        builder
            .plan(Plan::new(1).with_rule(Rule::error(ErrorKind::Throttle)))
            .max_injections(100, Duration::from_secs(3600))
            .ignore_env();
        let injector = builder.build().unwrap();
        let injected: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let injector = &injector;
                    scope.spawn(move || {
                        (0..1_000u64)
                            .filter(|&k| {
                                injector
                                    .decide(&Call::new(t * 1_000 + k, "s"))
                                    .failure
                                    .is_some()
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(injected, 100);
        assert_eq!(injector.snapshot().vetoed_by_budget, 3_900);
    }

    #[test]
    fn counters_add_up_across_threads() {
        let injector =
            quiet(Plan::new(3).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.25)));
        let expected: u64 = (0..4000u64)
            .filter(|&k| {
                // The decision is pure: recompute it on a private injector.
                let probe = quiet(
                    Plan::new(3).with_rule(Rule::error(ErrorKind::Throttle).with_probability(0.25)),
                );
                probe.decide(&Call::new(k, "s")).failure.is_some()
            })
            .count() as u64;
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let injector = injector.clone();
                scope.spawn(move || {
                    for k in (t * 1000)..((t + 1) * 1000) {
                        injector.decide(&Call::new(k, "s"));
                    }
                });
            }
        });
        let stats = &injector.snapshot().rules[0];
        assert_eq!(stats.evaluated, 4000);
        assert_eq!(stats.injected, expected);
    }
}
