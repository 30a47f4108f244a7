//! What a handler under test holds for one invocation: its key, its deadline, and the
//! injector at its call sites.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::advanced::mix64;
use crate::effect::Outcome as EffectOutcome;
use crate::fault::{ErrorKind, InjectedError, InjectedKind};
use crate::injector::Injector;
use crate::plan::{Call, CompiledPlan};
use crate::timeout::Deadline;

use super::harness::Site;

/// How a handler answered an invocation it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Served {
    /// From its primary path (the dependency answered).
    Primary,
    /// From a fallback (a cache, a default, a degraded answer).
    Fallback,
}

/// How the harness reads a handler's error: as one of chaos-core's [`ErrorKind`]s, so that a
/// timeout can be told from a clean, prompt error.
///
/// Implement it for your handler's error type; it is implemented for [`ErrorKind`],
/// [`InjectedError`] (a hang reads as a timeout; an injected status as a throttle for 429, a
/// server error for 5xx, else a custom `"Status"` error), tokio's `Elapsed` (a timeout) and
/// [`std::convert::Infallible`].
pub trait HandlerError {
    /// The kind of failure this error stands for.
    fn error_kind(&self) -> ErrorKind;
}

impl HandlerError for ErrorKind {
    fn error_kind(&self) -> ErrorKind {
        self.clone()
    }
}

impl HandlerError for InjectedError {
    fn error_kind(&self) -> ErrorKind {
        match &self.kind {
            InjectedKind::Error(kind) => kind.clone(),
            InjectedKind::Hang => ErrorKind::Timeout,
            InjectedKind::Status(429) => ErrorKind::Throttle,
            InjectedKind::Status(status @ 500..=599) => ErrorKind::ServerError { status: *status },
            InjectedKind::Status(status) => ErrorKind::Custom {
                name: "Status".to_owned(),
                message: format!("HTTP {status}"),
            },
            InjectedKind::Corrupt(corruption) => ErrorKind::Custom {
                name: "CorruptResponse".to_owned(),
                message: corruption.to_string(),
            },
            // `InjectedKind` is non-exhaustive: a kind added later reads as its message.
            #[allow(unreachable_patterns)]
            other => ErrorKind::Custom {
                name: "Injected".to_owned(),
                message: other.to_string(),
            },
        }
    }
}

impl HandlerError for tokio::time::error::Elapsed {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::Timeout
    }
}

impl HandlerError for std::convert::Infallible {
    fn error_kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// What the harness shares with every invocation of one run.
#[derive(Debug)]
pub(super) struct RunShared {
    pub(super) injector: Injector,
    pub(super) plan: CompiledPlan,
    pub(super) sites: Vec<Site>,
    pub(super) deadline: Duration,
}

/// What one invocation's calls did, read by the harness when it ends.
#[derive(Debug, Default)]
pub(super) struct CallLog {
    /// Calls made, per declared site (the next call's attempt number).
    pub(super) per_site: Vec<u32>,
    pub(super) calls: u32,
    /// Calls at least one rule fired on (latency included).
    pub(super) faults: u32,
    pub(super) after_deadline: u32,
    /// The first call at a site the harness was not told about.
    pub(super) undeclared: Option<String>,
    /// Calls allowed before a call never returns (see `max_calls_per_invocation`).
    pub(super) max_calls: u32,
    /// Whether the handler reached `max_calls`.
    pub(super) runaway: bool,
}

/// One invocation of the handler under test: hand it to your handler, and make each
/// dependency call through [`call`](Self::call) at the site the call is made from.
///
/// Cheap to clone, `Send` and `Sync`: pass it into the clients your handler builds.
#[derive(Clone, Debug)]
pub struct Invocation {
    index: u32,
    started: Instant,
    deadline: Deadline,
    shared: Arc<RunShared>,
    log: Arc<Mutex<CallLog>>,
}

impl Invocation {
    pub(super) fn new(index: u32, shared: Arc<RunShared>) -> Self {
        let started = Instant::now();
        let per_site = vec![0; shared.sites.len()];
        Self {
            index,
            started,
            deadline: Deadline::after(shared.deadline),
            shared,
            log: Arc::new(Mutex::new(CallLog {
                per_site,
                ..CallLog::default()
            })),
        }
    }

    /// The invocation's number, from 0: also its request key, which keys every fault decision
    /// made for it (so invocation 17 meets the same faults on every run).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The request key fault decisions are keyed by (the index).
    pub fn request_key(&self) -> u64 {
        u64::from(self.index)
    }

    /// The invocation's deadline (its caller's timeout), on the virtual clock.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Virtual time since the invocation started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The run's injector, for call sites wired through [`ChaosLayer`](crate::ChaosLayer):
    /// key their calls with [`request_key`](Self::request_key). Calls made that way are
    /// decided and applied by the layer, but the harness does not see them: it counts calls
    /// (and calls after the deadline) made through [`call`](Self::call) only.
    pub fn injector(&self) -> &Injector {
        &self.shared.injector
    }

    /// A generator for the handler's own randomness (backoff jitter), seeded from the plan's
    /// seed and the invocation's index: the same on every run whatever the task order.
    pub fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(mix64(
            self.shared.plan.seed() ^ mix64(u64::from(self.index).wrapping_add(0x7e57)),
        ))
    }

    /// Makes a call at the declared site `site` through the injector: decides it (the n-th
    /// call at a site within this invocation is attempt n - 1, so retries get fresh
    /// decisions), holds it on the virtual clock for the fault's effect, then returns the
    /// injected error, if any. On `Ok` the real call goes ahead: make it after this returns.
    ///
    /// An injected `timeout` holds the call until the invocation's deadline, a hang until
    /// the deadline minus its buffer: wrap the call in your own timeout, as production code
    /// does. A call at a site the harness was not told about is not faulted, and the run
    /// reports it as an error ([`HarnessError::UndeclaredSite`](super::HarnessError)).
    pub async fn call(&self, site: &str) -> Result<(), InjectedError> {
        let Some(site_index) = self.shared.sites.iter().position(|s| s.name() == site) else {
            let mut log = self.lock();
            log.undeclared.get_or_insert_with(|| site.to_owned());
            return Ok(());
        };
        let declared = &self.shared.sites[site_index];
        let attempt = {
            let mut log = self.lock();
            if log.calls >= log.max_calls {
                log.runaway = true;
                None
            } else {
                let attempt = log.per_site[site_index];
                log.per_site[site_index] = attempt.saturating_add(1);
                log.calls = log.calls.saturating_add(1);
                if Instant::now() > self.deadline.instant() {
                    log.after_deadline = log.after_deadline.saturating_add(1);
                }
                Some(attempt)
            }
        };
        let Some(attempt) = attempt else {
            // A handler calling without end (a retry loop with no backoff) would spin for
            // ever on a paused clock; parked here, it ends at the deadline.
            return std::future::pending().await;
        };
        let call = Call::new(self.request_key(), declared.name())
            .service(declared.service_name())
            .operation(declared.operation_name())
            .attempt(attempt);
        let verdict = self.shared.injector.decide(&call);
        if verdict.is_pass() {
            return Ok(());
        }
        {
            let mut log = self.lock();
            log.faults = log.faults.saturating_add(1);
        }
        let effect = verdict.effect(Some(self.deadline.remaining()));
        if !effect.delay.is_zero() {
            tokio::time::sleep(effect.delay).await;
        }
        match effect.outcome {
            EffectOutcome::Fail { rule, kind } => Err(InjectedError {
                rule: self
                    .shared
                    .plan
                    .label(rule)
                    .map_or_else(|| format!("#{rule}"), str::to_owned),
                kind,
            }),
            _ => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CallLog> {
        // The log holds counts only; a handler that panicked while holding it left them
        // consistent.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn limit_calls(&self, max_calls: u32) {
        self.lock().max_calls = max_calls;
    }

    pub(super) fn take_log(&self) -> CallLog {
        std::mem::take(&mut *self.lock())
    }
}
