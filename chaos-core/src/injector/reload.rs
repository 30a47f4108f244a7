//! Replacing the plan while calls are in flight.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::plan::{Plan, PlanError};

use super::Injector;
use super::cache::Loaded;

impl Injector {
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
}
