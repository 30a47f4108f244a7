//! Replacing the plan while calls are in flight.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::plan::{CompiledPlan, IntoCompiledPlan, PlanError};

use tokio::time::Instant;

use super::loaded::Loaded;
use super::{Injector, OnRejectedReload, REJECTED, Shared, WindowOrigin};

impl Injector {
    /// Replaces the plan while calls are in flight. A [`Plan`](crate::Plan) is checked and
    /// compiled here; a [`CompiledPlan`] is used as it is.
    ///
    /// On error the error is kept for [`last_reload_error`](Self::last_reload_error), a
    /// warning is traced, and, with the default [`OnRejectedReload::NoFaults`], nothing is
    /// injected until a valid plan is loaded (faults in progress end at once); with
    /// [`OnRejectedReload::KeepPrevious`] the previous plan stays in force.
    pub fn reload(&self, plan: impl IntoCompiledPlan) -> Result<(), PlanError> {
        self.reload_compiled(plan.into_compiled_plan())
    }

    /// Parses TOML text, compiles it once and reloads; see [`reload`](Self::reload).
    pub fn reload_toml(&self, text: &str) -> Result<(), PlanError> {
        self.reload_compiled(CompiledPlan::from_toml_str(text))
    }

    fn reload_compiled(&self, plan: Result<CompiledPlan, PlanError>) -> Result<(), PlanError> {
        match plan {
            Ok(compiled) => {
                self.publish(compiled);
                Ok(())
            }
            Err(error) => Err(self.reject(error)),
        }
    }

    fn publish(&self, compiled: CompiledPlan) {
        let rules = compiled.rule_count();
        // A poisoned lock only means another thread panicked while holding it; the value is
        // still a plain Option, safe to overwrite.
        let mut last_error = self.shared.reload.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.shared.loaded.load().generation.saturating_add(1);
        let schedule_origin = match self.shared.window_origin {
            WindowOrigin::PlanLoad => Instant::now(),
            _ => self.shared.started,
        };
        let loaded = Loaded::new(
            compiled,
            generation,
            &self.shared.guardrails,
            schedule_origin,
        );
        let version = loaded.version;
        let mut retired = self
            .shared
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let replaced = self.shared.loaded.swap(Arc::new(loaded));
        retired.retire(replaced);
        drop(retired);
        // Published after the plan, so a thread that sees the new version loads it; in the
        // same step a rejection is lifted (under the lock, so a racing rejection cannot be
        // lost) while the kill switch stays as it is.
        let _ = self
            .shared
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                Some(Shared::state(version, state & !REJECTED))
            });
        *last_error = None;
        tracing::info!(target: "chaos::plan", generation, rules, "chaos plan loaded");
    }

    fn reject(&self, error: PlanError) -> PlanError {
        let mut last_error = self.shared.reload.lock().unwrap_or_else(|p| p.into_inner());
        match self.shared.on_rejected_reload {
            OnRejectedReload::KeepPrevious => {
                tracing::warn!(target: "chaos::plan", %error, "chaos plan rejected; the previous plan stays in force");
            }
            OnRejectedReload::NoFaults => {
                tracing::warn!(target: "chaos::plan", %error, "chaos plan rejected; no faults are injected until a valid plan is loaded");
                self.switch_off(REJECTED);
            }
        }
        *last_error = Some(error.clone());
        error
    }

    /// Why the last reload failed, if it did (cleared by a successful reload).
    pub fn last_reload_error(&self) -> Option<PlanError> {
        self.shared
            .reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
