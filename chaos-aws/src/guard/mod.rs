//! Guardrails the Lambda layer and the wire wrapper check before they inject: an allow-list
//! of environments, a dry-run mode, and (feature `cloudwatch`) a CloudWatch alarm that stops injection while it
//! is in ALARM. The kill switch, expiry and injection budget are the injector's
//! ([`chaos_core::InjectorBuilder`]); [`injector_from_env`] builds one from environment
//! variables.

#[cfg(feature = "cloudwatch")]
mod alarm;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chaos_core::{Injector, InjectorError, Plan};

#[cfg(feature = "cloudwatch")]
pub use alarm::{AlarmReader, AlarmState, AlarmStop, DEFAULT_ALARM_POLL};

/// The environment variable naming the environment a function runs in (`prod`, `staging`):
/// an allow-list ([`GuardBuilder::allow_environments`]) refuses to inject unless it is listed.
pub const ENVIRONMENT_ENV_VAR: &str = "CHAOS_ENVIRONMENT";

/// What a guard lets an invocation do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardMode {
    /// Decide and inject.
    Inject,
    /// Decide, log and count, inject nothing.
    DryRun,
    /// Do not decide: the environment is not allowed, or the stop alarm is in ALARM.
    Off,
}

/// Guardrails around injection, checked on every invocation or request: two atomic loads,
/// and a clock read when an alarm is set (the alarm itself is polled in the background).
/// Give one to `ChaosHandlerLayer::guard` and to [`ChaosHttpClientBuilder::guard`]; clones
/// share the alarm and the dry-run counts. Cheap to clone.
///
/// [`ChaosHttpClientBuilder::guard`]: crate::ChaosHttpClientBuilder::guard
#[derive(Clone)]
pub struct Guard {
    shared: Arc<GuardShared>,
}

struct GuardShared {
    environment: Option<String>,
    allowed: bool,
    dry_run: bool,
    #[cfg(feature = "cloudwatch")]
    alarm: Option<AlarmStop>,
    dry_run_decisions: AtomicU64,
    dry_run_would_inject: AtomicU64,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("environment", &self.shared.environment)
            .field("allowed", &self.shared.allowed)
            .field("dry_run", &self.shared.dry_run)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A builder; with nothing set the guard lets every invocation inject.
    pub fn builder() -> GuardBuilder {
        GuardBuilder::default()
    }

    /// What the current invocation may do. Starts a background alarm poll when due.
    #[inline]
    pub fn mode(&self) -> GuardMode {
        let shared = &self.shared;
        if !shared.allowed {
            return GuardMode::Off;
        }
        #[cfg(feature = "cloudwatch")]
        if let Some(alarm) = &shared.alarm {
            alarm.refresh_if_stale();
            if alarm.is_stopping() {
                return GuardMode::Off;
            }
        }
        if shared.dry_run {
            GuardMode::DryRun
        } else {
            GuardMode::Inject
        }
    }

    /// Whether the environment is allowed to inject.
    pub fn is_allowed(&self) -> bool {
        self.shared.allowed
    }

    /// The environment read from [`ENVIRONMENT_ENV_VAR`] (or set on the builder).
    pub fn environment(&self) -> Option<&str> {
        self.shared.environment.as_deref()
    }

    /// The stop alarm, if one is set.
    #[cfg(feature = "cloudwatch")]
    pub fn alarm(&self) -> Option<&AlarmStop> {
        self.shared.alarm.as_ref()
    }

    /// Dry-run counts: (invocations decided, invocations a rule would have faulted).
    pub fn dry_run_counts(&self) -> (u64, u64) {
        (
            self.shared.dry_run_decisions.load(Ordering::Relaxed),
            self.shared.dry_run_would_inject.load(Ordering::Relaxed),
        )
    }

    /// Records a dry-run decision (the Lambda layer does; an adapter deciding on its own
    /// in [`GuardMode::DryRun`] calls this so the counts stay whole).
    pub fn count_dry_run(&self, would_inject: bool) {
        self.shared
            .dry_run_decisions
            .fetch_add(1, Ordering::Relaxed);
        if would_inject {
            self.shared
                .dry_run_would_inject
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Builds a [`Guard`].
#[derive(Clone, Debug, Default)]
pub struct GuardBuilder {
    allow: Option<Vec<String>>,
    environment: Option<Option<String>>,
    dry_run: bool,
    #[cfg(feature = "cloudwatch")]
    alarm: Option<AlarmStop>,
}

impl GuardBuilder {
    /// Inject only where [`ENVIRONMENT_ENV_VAR`] holds one of `environments` (compared
    /// exactly, surrounding spaces ignored). Unset or unlisted: nothing is injected, and one
    /// warning says why. An empty list allows nothing.
    pub fn allow_environments<I, E>(mut self, environments: I) -> Self
    where
        I: IntoIterator<Item = E>,
        E: Into<String>,
    {
        self.allow = Some(
            environments
                .into_iter()
                .map(|environment| environment.into().trim().to_owned())
                .collect(),
        );
        self
    }

    /// The environment to check against the allow-list, instead of reading
    /// [`ENVIRONMENT_ENV_VAR`] (`None`: no environment is named).
    pub fn environment(mut self, environment: Option<&str>) -> Self {
        self.environment = Some(environment.map(|e| e.trim().to_owned()));
        self
    }

    /// Decide, log and count every invocation, but inject nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Stop injecting while `alarm` is in ALARM (or cannot be read).
    #[cfg(feature = "cloudwatch")]
    pub fn stop_on_alarm(mut self, alarm: AlarmStop) -> Self {
        self.alarm = Some(alarm);
        self
    }

    /// Builds the guard, reading [`ENVIRONMENT_ENV_VAR`] unless an environment was set.
    pub fn build(self) -> Guard {
        let environment = self.environment.unwrap_or_else(|| {
            std::env::var(ENVIRONMENT_ENV_VAR)
                .ok()
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
        });
        let allowed = match &self.allow {
            None => true,
            Some(list) => environment
                .as_ref()
                .is_some_and(|environment| list.iter().any(|allowed| allowed == environment)),
        };
        if let (false, Some(list)) = (allowed, &self.allow) {
            tracing::warn!(
                target: "chaos_aws",
                environment = environment.as_deref().unwrap_or("<unset>"),
                allowed = ?list,
                "chaos: this environment is not in the allow-list; injecting nothing \
                 (set {ENVIRONMENT_ENV_VAR} to a listed environment to inject)"
            );
        }
        Guard {
            shared: Arc::new(GuardShared {
                environment,
                allowed,
                dry_run: self.dry_run,
                #[cfg(feature = "cloudwatch")]
                alarm: self.alarm,
                dry_run_decisions: AtomicU64::new(0),
                dry_run_would_inject: AtomicU64::new(0),
            }),
        }
    }
}

/// `CHAOS_ALLOWED_ENVIRONMENTS`: a comma-separated allow-list read by [`Guard::from_env`].
pub const ALLOWED_ENVIRONMENTS_ENV_VAR: &str = "CHAOS_ALLOWED_ENVIRONMENTS";
/// `CHAOS_DRY_RUN`: `true` or `1` turns dry-run on in [`Guard::from_env`].
pub const DRY_RUN_ENV_VAR: &str = "CHAOS_DRY_RUN";
/// `CHAOS_MAX_INJECTIONS_PER_MINUTE`: the injection budget read by [`injector_from_env`].
pub const BUDGET_ENV_VAR: &str = "CHAOS_MAX_INJECTIONS_PER_MINUTE";
/// `CHAOS_EXPIRE_AFTER`: a duration (`30m`, `2h`) after which [`injector_from_env`]'s
/// injector stops injecting.
pub const EXPIRE_AFTER_ENV_VAR: &str = "CHAOS_EXPIRE_AFTER";

impl Guard {
    /// A guard from environment variables: [`ALLOWED_ENVIRONMENTS_ENV_VAR`] (comma-separated;
    /// unset means no allow-list), [`ENVIRONMENT_ENV_VAR`] and [`DRY_RUN_ENV_VAR`].
    pub fn from_env() -> Guard {
        let mut builder = Guard::builder();
        if let Ok(list) = std::env::var(ALLOWED_ENVIRONMENTS_ENV_VAR) {
            builder = builder.allow_environments(
                list.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned),
            );
        }
        let dry_run = std::env::var(DRY_RUN_ENV_VAR)
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"));
        builder.dry_run(dry_run).build()
    }
}

/// An injector with no plan yet (feed it with [`LiveConfig`](crate::LiveConfig)) and the
/// guardrails named by environment variables: the kill switch (`CHAOS_DISABLED`), the budget
/// ([`BUDGET_ENV_VAR`], injections per minute) and the expiry ([`EXPIRE_AFTER_ENV_VAR`]).
/// A value that does not parse is an error naming the variable.
pub fn injector_from_env() -> Result<Injector, InjectorError> {
    let mut builder = Injector::builder();
    builder.plan(Plan::new(0));
    if let Ok(text) = std::env::var(BUDGET_ENV_VAR) {
        let count = text
            .trim()
            .parse::<u64>()
            .map_err(|_| InjectorError::Guardrail {
                field: "max_injections",
                message: format!(
                    "{BUDGET_ENV_VAR} is {text:?}; expected a whole number of injections per \
                     minute, such as 30"
                ),
            })?;
        builder.max_injections(count, Duration::from_secs(60));
    }
    if let Ok(text) = std::env::var(EXPIRE_AFTER_ENV_VAR) {
        let duration = chaos_core::duration::parse_duration(text.trim()).map_err(|error| {
            InjectorError::Guardrail {
                field: "expire_after",
                message: format!(
                    "{EXPIRE_AFTER_ENV_VAR} is {text:?}: {error}; expected a duration such as 30m"
                ),
            }
        })?;
        builder.expire_after(duration);
    }
    builder.build()
}

#[cfg(test)]
mod tests;
