//! Guardrails, the kill switch's environment variable, and the builder.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::plan::{Plan, PlanError};

use super::cache::Loaded;
use super::{Injector, NEXT_ID, Shared};

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

/// The injection budget: a count per fixed interval. Touched only when a rule fires.
#[derive(Debug, Default)]
pub(super) struct Budget {
    /// (interval index, injections admitted in it), updated together: a lock is fine here,
    /// the budget is only consulted when a rule fires.
    pub(super) window: Mutex<(u64, u64)>,
    pub(super) vetoed: AtomicU64,
}

impl Budget {
    pub(super) fn take(&self, limit: u64, interval: Duration, elapsed: Duration) -> bool {
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
