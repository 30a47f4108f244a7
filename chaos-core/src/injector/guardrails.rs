//! Guardrails, the kill switch's environment variable, and the builder.

use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::plan::{CompiledPlan, IntoCompiledPlan, Plan, PlanError};

use super::loaded::Loaded;
use super::{Injector, KILLED, NEXT_ID, Shared};

/// The environment variable that switches every injector off when set: any non-empty value
/// other than `0` or `false` (any case, surrounding spaces ignored) disables, including a
/// value that is not valid UTF-8.
pub const DISABLE_ENV_VAR: &str = "CHAOS_DISABLED";

/// Whether a value of [`DISABLE_ENV_VAR`] disables injection (`None`: the variable is unset).
/// A value that is not UTF-8 disables: someone set it, and failing safe means no chaos.
fn disables(value: Option<&OsStr>) -> bool {
    let Some(value) = value else {
        return false;
    };
    match value.to_str() {
        Some(text) => {
            let text = text.trim();
            !(text.is_empty() || text == "0" || text.eq_ignore_ascii_case("false"))
        }
        None => true,
    }
}

/// Limits that keep an experiment from doing more harm than planned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guardrails {
    /// At most this many injections per interval; further firings are vetoed.
    pub max_injections: Option<(u64, Duration)>,
    /// Nothing is injected once this long has passed since the injector started.
    pub expire_after: Option<Duration>,
}

/// What a rejected reload does to the plan in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnRejectedReload {
    /// Inject nothing until a valid plan is loaded (the default): a broken plan pushed to stop
    /// an experiment stops it. Faults in progress end at once, as with the kill switch.
    #[default]
    NoFaults,
    /// Keep injecting with the previous plan.
    KeepPrevious,
}

/// What the windows and ramps of a live plan count from (set with
/// [`InjectorBuilder::windows_from`]).
///
/// A rule's `window = { start = "2m" }` and `ramp_up = "1m"` are offsets from an origin. In a
/// simulation that is the simulation's start; in a live injector it is, by default, the
/// injector's start, so a plan reloaded later keeps the timeline the injector began with (a
/// window that is over stays over). Operators who push a plan to start an experiment usually
/// mean "from now": [`PlanLoad`](Self::PlanLoad) restarts the timeline at every load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowOrigin {
    /// Windows and ramps count from the injector's start, across reloads (the default).
    #[default]
    InjectorStart,
    /// Windows and ramps count from the moment the plan in force was loaded (built, or
    /// reloaded): `window = { start = "0s", duration = "5m" }` pushed at any time runs for
    /// the next five minutes. The `expire_after` guardrail and the injection budget still
    /// count from the injector's start.
    PlanLoad,
}

/// An injector could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InjectorError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A guardrail is invalid.
    #[error("guardrail `{field}`: {message}")]
    Guardrail {
        /// The guardrail at fault, such as `max_injections`.
        field: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Builds an [`Injector`].
#[derive(Debug)]
pub struct InjectorBuilder {
    plan: Result<CompiledPlan, PlanError>,
    guardrails: Guardrails,
    on_rejected_reload: OnRejectedReload,
    ignore_env: bool,
    window_origin: WindowOrigin,
}

impl Default for InjectorBuilder {
    fn default() -> Self {
        Self {
            plan: Plan::default().into_compiled_plan(),
            guardrails: Guardrails::default(),
            on_rejected_reload: OnRejectedReload::default(),
            ignore_env: false,
            window_origin: WindowOrigin::default(),
        }
    }
}

impl InjectorBuilder {
    /// The plan to start with: a [`Plan`] is checked and compiled here (an error surfaces in
    /// [`build`](Self::build)); a [`CompiledPlan`] is used as it is.
    pub fn plan(&mut self, plan: impl IntoCompiledPlan) -> &mut Self {
        self.plan = plan.into_compiled_plan();
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

    /// What a rejected reload does ([`OnRejectedReload::NoFaults`] unless set).
    pub fn on_rejected_reload(&mut self, policy: OnRejectedReload) -> &mut Self {
        self.on_rejected_reload = policy;
        self
    }

    /// What the plan's windows and ramps count from: the injector's start (the default) or
    /// each plan's load ([`WindowOrigin::PlanLoad`]).
    ///
    /// ```
    /// use chaos_core::{Injector, Plan, WindowOrigin};
    /// let injector = Injector::builder()
    ///     .plan(Plan::new(1))
    ///     .windows_from(WindowOrigin::PlanLoad)
    ///     .build()?;
    /// # Ok::<(), chaos_core::InjectorError>(())
    /// ```
    pub fn windows_from(&mut self, origin: WindowOrigin) -> &mut Self {
        self.window_origin = origin;
        self
    }

    /// Do not read `CHAOS_DISABLED` (for tests that must not depend on the environment).
    pub fn ignore_env(&mut self) -> &mut Self {
        self.ignore_env = true;
        self
    }

    /// Builds the injector. Several injectors can be built from one builder; each gets a copy
    /// of the compiled plan (not a second compilation).
    pub fn build(&self) -> Result<Injector, InjectorError> {
        if let Some((_, interval)) = self.guardrails.max_injections
            && interval.is_zero()
        {
            return Err(InjectorError::Guardrail {
                field: "max_injections",
                message: "the interval must be above zero, such as 1s".to_owned(),
            });
        }
        let plan = self.plan.clone()?;
        let started = Instant::now();
        let first = Loaded::new(plan, 0, &self.guardrails, started);
        let disabled_by_env =
            !self.ignore_env && disables(std::env::var_os(DISABLE_ENV_VAR).as_deref());
        if disabled_by_env {
            tracing::warn!(target: "chaos", "{DISABLE_ENV_VAR} is set: fault injection is off");
        }
        Ok(Injector {
            shared: Arc::new(Shared {
                state: AtomicU64::new(Shared::state(
                    first.version,
                    if disabled_by_env { KILLED } else { 0 },
                )),
                stop: Notify::new(),
                on_rejected_reload: self.on_rejected_reload,
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                loaded: ArcSwap::from_pointee(first),
                started,
                window_origin: self.window_origin,
                guardrails: self.guardrails.clone(),
                budget: Budget::default(),
                reload: Mutex::new(None),
                retired: Mutex::default(),
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

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn chaos_disabled_disables_on_any_value_but_empty_0_or_false() {
        let off = |value: &str| disables(Some(OsStr::new(value)));
        assert!(!disables(None));
        for value in ["", "  ", "0", "false", "FALSE", "False", " false "] {
            assert!(!off(value), "{value:?} leaves injection on");
        }
        for value in ["1", "true", "yes", "off", "disabled", "00"] {
            assert!(off(value), "{value:?} disables");
        }
    }

    #[test]
    fn builder_setters_set_the_builder_they_are_called_on() {
        let mut builder = InjectorBuilder::default();
        builder
            .max_injections(3, Duration::from_secs(1))
            .expire_after(Duration::from_secs(9))
            .on_rejected_reload(OnRejectedReload::KeepPrevious)
            .ignore_env();
        assert!(builder.ignore_env);
        assert_eq!(
            builder.guardrails,
            Guardrails {
                max_injections: Some((3, Duration::from_secs(1))),
                expire_after: Some(Duration::from_secs(9)),
            }
        );
        assert_eq!(builder.on_rejected_reload, OnRejectedReload::KeepPrevious);
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_chaos_disabled_disables() {
        use std::os::unix::ffi::OsStringExt;
        let value = OsString::from_vec(vec![0x66, 0xff, 0x6f]);
        assert!(disables(Some(&value)));
    }
}
