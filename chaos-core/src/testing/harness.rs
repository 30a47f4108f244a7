//! The harness: a handler run for N invocations under the paused clock, against one plan.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::task::{JoinSet, LocalSet};
use tokio::time::Instant;

use crate::advanced::mix64;
use crate::injector::Injector;
use crate::plan::{Plan, PlanError};
use crate::rule::Selector;

use super::invocation::{HandlerError, Invocation, RunShared, Served};
use super::report::{Outcome, Record, Report};

/// A call site the handler under test makes calls from, with the service and operation a
/// rule can select it by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Site {
    name: String,
    service: String,
    operation: String,
}

impl Site {
    /// A site named `name` (such as `"checkout/orders"`), with no service or operation.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            service: String::new(),
            operation: String::new(),
        }
    }

    /// Sets the service the site calls (such as `"dynamodb"`).
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// Sets the operation the site calls (such as `"GetItem"`).
    pub fn operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = operation.into();
        self
    }

    /// The site's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The service (empty when not set).
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// The operation (empty when not set).
    pub fn operation_name(&self) -> &str {
        &self.operation
    }
}

impl From<&str> for Site {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

/// The order a fan-out spawns the invocations that start together (all of them for a full
/// fan-out; the first `width` otherwise; later ones start in index order as others end).
///
/// Outcomes must not depend on it: fault decisions are keyed by invocation, not by order.
/// Running the same plan with [`Shuffled`](Self::Shuffled) orders checks that your handler's
/// own shared state does not make them depend on it either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpawnOrder {
    /// Invocation 0 first.
    #[default]
    Index,
    /// The last invocation first.
    Reversed,
    /// A permutation drawn from this seed.
    Shuffled(u64),
}

/// Why a harness could not be built or a run could not be judged. None of these is a pass.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// `invocations(0)`.
    #[error(
        "the harness is set to run 0 invocations, which would check nothing; set `invocations(n)` with n >= 1"
    )]
    NoInvocations,
    /// No call site was declared.
    #[error(
        "no call sites declared: fault plans (and the strategies that generate them) target the sites your handler calls; declare each with `site(Site::new(\"name\"))`"
    )]
    NoSites,
    /// A site was declared twice.
    #[error("call site {0:?} is declared twice; declare each site once")]
    DuplicateSite(String),
    /// A site name with glob characters, which rules could not select exactly.
    #[error(
        "call site {0:?} contains a glob character (`*?[]{{}}`); name sites with plain text so rules can select them exactly"
    )]
    GlobInSiteName(String),
    /// `fan_out(0)`.
    #[error("a fan-out of width 0 runs nothing; use `fan_out(n)` with n >= 1, or `sequential()`")]
    ZeroWidth,
    /// A zero invocation deadline.
    #[error(
        "the invocation deadline is zero, so every invocation would time out at once; set `deadline(d)` to the caller's timeout"
    )]
    ZeroDeadline,
    /// The plan did not compile.
    #[error("the plan is invalid: {0}")]
    Plan(#[from] PlanError),
    /// A rule of the plan selects none of the declared sites: it could never fire.
    #[error(
        "rule {rule:?} selects none of the declared call sites ({declared}): it could never fire; fix its `match`, or declare the site it means"
    )]
    RuleMatchesNoSite {
        /// The rule's label.
        rule: String,
        /// The declared sites, comma-separated.
        declared: String,
    },
    /// A rule expires at an absolute time, which only the wall clock can tell.
    #[error(
        "rule {0:?} has an absolute expiry (`expires_at`), which depends on the wall clock; the harness runs on virtual time, so runs would differ: use a window (`during`) instead"
    )]
    WallClockRule(String),
    /// The handler called a site that was not declared.
    #[error(
        "invocation {invocation} called site {site:?}, which is not declared (declared: {declared}); declare it, or fix the name"
    )]
    UndeclaredSite {
        /// The invocation that made the call.
        invocation: u32,
        /// The site it called.
        site: String,
        /// The declared sites, comma-separated.
        declared: String,
    },
    /// No call reached the injector, through [`Invocation::call`] or a layer on
    /// [`Invocation::injector`]: no fault could be injected.
    #[error(
        "no call reached the injector (through `Invocation::call`, or a `ChaosLayer` on `Invocation::injector()` that a rule evaluated), so no fault could reach the handler; route the handler's dependency calls through it"
    )]
    NoCallsMade,
    /// Called from inside a tokio runtime.
    #[error(
        "`Harness::run` was called inside a tokio runtime; it runs its own paused runtime: call it from a plain `#[test]`, not `#[tokio::test]`"
    )]
    InsideRuntime,
    /// The runtime could not be built.
    #[error("could not build the tokio runtime: {0}")]
    Runtime(String),
}

/// Builds a [`Harness`]; every setting is checked by [`build`](Self::build).
#[derive(Clone, Debug)]
pub struct HarnessBuilder {
    invocations: u32,
    width: u32,
    deadline: Duration,
    watch_after_deadline: Duration,
    max_calls: u32,
    spawn_order: SpawnOrder,
    sites: Vec<Site>,
}

impl Default for HarnessBuilder {
    fn default() -> Self {
        Self {
            invocations: 100,
            width: 1,
            deadline: Duration::from_secs(3),
            watch_after_deadline: Duration::from_secs(900),
            max_calls: 10_000,
            spawn_order: SpawnOrder::Index,
            sites: Vec::new(),
        }
    }
}

impl HarnessBuilder {
    /// How many invocations a run makes (default 100).
    pub fn invocations(&mut self, count: u32) -> &mut Self {
        self.invocations = count;
        self
    }

    /// One invocation at a time, each starting when the previous one ends (the default).
    pub fn sequential(&mut self) -> &mut Self {
        self.width = 1;
        self
    }

    /// Up to `width` invocations in flight at once: the first `width` start together at
    /// time zero, and each later one starts when one in flight ends. `fan_out(n)` with `n`
    /// the number of invocations starts them all together.
    pub fn fan_out(&mut self, width: u32) -> &mut Self {
        self.width = width;
        self
    }

    /// The invocation's deadline: how long its caller waits (default 3 s). An invocation
    /// not answered by then is [`Outcome::TimedOut`].
    pub fn deadline(&mut self, deadline: Duration) -> &mut Self {
        self.deadline = deadline;
        self
    }

    /// How long the harness keeps running a handler past its deadline, to see the work it
    /// does after its caller gave up (default 900 s, Lambda's longest timeout; virtual time
    /// costs nothing). A handler still running then is dropped and marked abandoned.
    pub fn watch_after_deadline(&mut self, duration: Duration) -> &mut Self {
        self.watch_after_deadline = duration;
        self
    }

    /// The most calls one invocation may make (default 10,000). Past it, a call never
    /// returns, so a retry loop with no backoff ends at the deadline as a timed-out,
    /// runaway invocation instead of spinning for ever.
    pub fn max_calls_per_invocation(&mut self, count: u32) -> &mut Self {
        self.max_calls = count;
        self
    }

    /// The order a fan-out spawns the invocations that start together.
    pub fn spawn_order(&mut self, order: SpawnOrder) -> &mut Self {
        self.spawn_order = order;
        self
    }

    /// Declares a call site the handler calls through [`Invocation::call`].
    pub fn site(&mut self, site: impl Into<Site>) -> &mut Self {
        self.sites.push(site.into());
        self
    }

    /// Declares several call sites.
    pub fn sites<S: Into<Site>>(&mut self, sites: impl IntoIterator<Item = S>) -> &mut Self {
        self.sites.extend(sites.into_iter().map(Into::into));
        self
    }

    /// Checks the settings.
    pub fn build(&self) -> Result<Harness, HarnessError> {
        if self.invocations == 0 {
            return Err(HarnessError::NoInvocations);
        }
        if self.width == 0 {
            return Err(HarnessError::ZeroWidth);
        }
        if self.deadline.is_zero() {
            return Err(HarnessError::ZeroDeadline);
        }
        if self.sites.is_empty() {
            return Err(HarnessError::NoSites);
        }
        for (index, site) in self.sites.iter().enumerate() {
            if site.name.contains(['*', '?', '[', ']', '{', '}']) {
                return Err(HarnessError::GlobInSiteName(site.name.clone()));
            }
            if self.sites[..index].iter().any(|s| s.name == site.name) {
                return Err(HarnessError::DuplicateSite(site.name.clone()));
            }
        }
        Ok(Harness {
            settings: self.clone(),
        })
    }
}

/// Runs a handler for many invocations against a fault plan, on a current-thread tokio
/// runtime with the paused clock: seconds of injected latency take no wall time, and the
/// same plan gives the same [`Report`] on every run and machine.
#[derive(Clone, Debug)]
pub struct Harness {
    settings: HarnessBuilder,
}

impl Harness {
    /// A builder with the defaults: 100 sequential invocations, a 3 s deadline, no sites.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    /// The declared call sites.
    pub fn sites(&self) -> &[Site] {
        &self.settings.sites
    }

    /// The number of invocations per run.
    pub fn invocations(&self) -> u32 {
        self.settings.invocations
    }

    /// The invocation deadline.
    pub fn deadline(&self) -> Duration {
        self.settings.deadline
    }

    /// Runs `handler` for every invocation against `plan`. `handler` is called once per
    /// invocation with its [`Invocation`], and its future runs as a task of its own (on one
    /// thread: it need not be `Send`, but it must own what it uses, so move `Arc`s of the
    /// handler's dependencies into it).
    ///
    /// Errors are misconfigurations, never a verdict on the handler: a plan that does not
    /// compile or has a rule no declared site can meet, a call at an undeclared site, or a
    /// run in which no call went through the injector.
    pub fn run<H, F, E>(&self, plan: &Plan, handler: H) -> Result<Report, HarnessError>
    where
        H: FnMut(Invocation) -> F,
        F: Future<Output = Result<Served, E>> + 'static,
        E: HandlerError + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(HarnessError::InsideRuntime);
        }
        let compiled = plan.compile()?;
        self.check_rules_can_fire(plan)?;
        if let Some((index, rule)) = plan
            .rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.schedule.expires_at.is_some())
        {
            return Err(HarnessError::WallClockRule(rule.label(index)));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|error| HarnessError::Runtime(error.to_string()))?;
        let records = runtime.block_on(LocalSet::new().run_until(async {
            // Built on the paused clock, so the plan's windows count virtual time from here.
            let mut builder = Injector::builder();
            builder.plan(compiled.clone()).ignore_env();
            let injector = builder.build().map_err(|error| match error {
                crate::InjectorError::Plan(error) => HarnessError::Plan(error),
                other => HarnessError::Runtime(other.to_string()),
            })?;
            let shared = Arc::new(RunShared {
                injector,
                plan: compiled,
                sites: self.settings.sites.clone(),
                deadline: self.settings.deadline,
            });
            let records = self.drive(&shared, handler).await;
            Ok::<_, HarnessError>((records, shared.injector.snapshot()))
        }))?;
        let (records, snapshot) = records;
        self.judge_calls(&records, &snapshot)?;
        Ok(Report::new(
            plan.clone(),
            records.into_iter().map(|(record, _)| record).collect(),
            snapshot,
        ))
    }

    /// Spawns the invocations, `width` at a time, and collects their records by index.
    async fn drive<H, F, E>(
        &self,
        shared: &Arc<RunShared>,
        mut handler: H,
    ) -> Vec<(Record, Option<String>)>
    where
        H: FnMut(Invocation) -> F,
        F: Future<Output = Result<Served, E>> + 'static,
        E: HandlerError + 'static,
    {
        let settings = &self.settings;
        let total = settings.invocations;
        let width = settings.width.min(total);
        let mut first: Vec<u32> = (0..width).collect();
        match settings.spawn_order {
            SpawnOrder::Index => {}
            SpawnOrder::Reversed => first.reverse(),
            SpawnOrder::Shuffled(seed) => shuffle(&mut first, seed),
        }
        let mut slots: Vec<Option<(Record, Option<String>)>> = vec![None; total as usize];
        let mut tasks = JoinSet::new();
        // Which invocation each task runs and when it started, to record one that panicked
        // (looked up by task id, never iterated).
        let mut task_index = HashMap::new();
        let mut spawn = |index: u32, tasks: &mut JoinSet<(Record, Option<String>)>| {
            let invocation = Invocation::new(index, Arc::clone(shared));
            let future = handler(invocation.clone());
            let task = tasks.spawn_local(watch(
                invocation,
                future,
                settings.watch_after_deadline,
                settings.max_calls,
            ));
            (task.id(), (index, Instant::now()))
        };
        for &index in &first {
            let (id, started) = spawn(index, &mut tasks);
            task_index.insert(id, started);
        }
        let mut next = width;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((record, undeclared)) => {
                    let index = record.index as usize;
                    slots[index] = Some((record, undeclared));
                }
                // A handler that panicked is an outcome of its own (as a crashed Lambda
                // answers with an error), not the end of the run.
                Err(error) => {
                    if let Some(&(index, started)) = task_index.get(&error.id()) {
                        let record =
                            Record::panicked(index, started.elapsed(), panic_message(error));
                        slots[index as usize] = Some((record, None));
                    }
                }
            }
            if next < total {
                let (id, started) = spawn(next, &mut tasks);
                task_index.insert(id, started);
                next += 1;
            }
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(index, slot)| {
                // Every task either returned its record or panicked: unreachable, kept total.
                slot.unwrap_or_else(|| {
                    let record = Record::panicked(index as u32, Duration::ZERO, String::new());
                    (record, None)
                })
            })
            .collect()
    }

    fn check_rules_can_fire(&self, plan: &Plan) -> Result<(), HarnessError> {
        for (index, rule) in plan.rules.iter().enumerate() {
            if !self
                .settings
                .sites
                .iter()
                .any(|site| selects(&rule.selector, site))
            {
                return Err(HarnessError::RuleMatchesNoSite {
                    rule: rule.label(index),
                    declared: self.declared(),
                });
            }
        }
        Ok(())
    }

    fn judge_calls(
        &self,
        records: &[(Record, Option<String>)],
        snapshot: &crate::Snapshot,
    ) -> Result<(), HarnessError> {
        if let Some((record, Some(site))) = records.iter().find(|(_, site)| site.is_some()) {
            return Err(HarnessError::UndeclaredSite {
                invocation: record.index,
                site: site.clone(),
                declared: self.declared(),
            });
        }
        // Calls through a layer on the run's injector are not in the records, but a rule
        // that evaluated one counted it.
        let evaluated = snapshot.rules.iter().any(|rule| rule.evaluated > 0);
        if records.iter().all(|(record, _)| record.calls == 0) && !evaluated {
            return Err(HarnessError::NoCallsMade);
        }
        Ok(())
    }

    fn declared(&self) -> String {
        let names: Vec<&str> = self.settings.sites.iter().map(Site::name).collect();
        names.join(", ")
    }
}

/// Runs one invocation: until its deadline as its caller sees it, then on (up to `watch`)
/// to see the work it does after its caller gave up.
async fn watch<F, E>(
    invocation: Invocation,
    future: F,
    watch: Duration,
    max_calls: u32,
) -> (Record, Option<String>)
where
    F: Future<Output = Result<Served, E>>,
    E: HandlerError,
{
    let started = Instant::now();
    let deadline = invocation.deadline().instant();
    invocation.limit_calls(max_calls);
    let mut future = pin!(future);
    let mut at_deadline = pin!(tokio::time::sleep_until(deadline));
    // The handler is polled first: an answer ready at the deadline's instant is in time.
    let answered = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = future.as_mut().poll(cx) {
            Poll::Ready(Some(result))
        } else if at_deadline.as_mut().poll(cx).is_ready() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    })
    .await;
    let (outcome, latency, overrun, abandoned) = match answered {
        Some(result) => (
            Outcome::from_result(result),
            started.elapsed(),
            Duration::ZERO,
            false,
        ),
        None => {
            let watch_end = deadline.checked_add(watch).unwrap_or(deadline);
            let finished = tokio::time::timeout_at(watch_end, future).await.is_ok();
            let overrun = Instant::now().saturating_duration_since(deadline);
            (
                Outcome::TimedOut,
                deadline.saturating_duration_since(started),
                overrun,
                !finished,
            )
        }
    };
    let log = invocation.take_log();
    let record = Record {
        index: invocation.index(),
        outcome,
        latency,
        calls: log.calls,
        faulted_calls: log.faults,
        calls_after_deadline: log.after_deadline,
        overrun,
        abandoned,
        runaway: log.runaway,
    };
    (record, log.undeclared)
}

/// Whether a rule's selector can select calls at `site` (event conditions aside: they
/// depend on the handler's event, which the harness does not know).
fn selects(selector: &Selector, site: &Site) -> bool {
    let matches = |glob: &Option<String>, text: &str| match glob {
        None => true,
        Some(glob) => globset::Glob::new(glob)
            // An invalid glob failed to compile before this check runs.
            .is_ok_and(|g| g.compile_matcher().is_match(text)),
    };
    matches(&selector.site, &site.name)
        && matches(&selector.service, &site.service)
        && matches(&selector.operation, &site.operation)
}

/// A Fisher-Yates shuffle on a keyed hash: order-independent of any global generator.
fn shuffle(items: &mut [u32], seed: u64) {
    for i in (1..items.len()).rev() {
        let j = (mix64(seed ^ mix64(i as u64)) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return "cancelled".to_owned();
    }
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
