//! Plans: an ordered list of rules, their file format, and the compiled form that decides.
//!
//! # Combination semantics
//!
//! For each call, every rule whose selector matches and whose schedule is active is evaluated
//! independently (its own roll, keyed by the rule). Then:
//!
//! * the latencies of all firing latency rules **add up**;
//! * the **first** firing failing rule in plan order (error, hang, status) **wins**; later
//!   failing rules are not applied and do not count as injected (they still count the call
//!   for their `every` / `first` / `after` triggers, which stay independent of other rules);
//! * latency is applied before the failure, so a slow failure is possible.
//!
//! # File format
//!
//! ```
//! let plan = chaos_core::plan::Plan::from_toml_str(r#"
//!     seed = 42
//!
//!     [[rules]]
//!     name = "slow-orders"
//!     fault = { latency = { log_normal = { p50 = "50ms", p99 = "400ms" } } }
//!     match = { service = "orders" }
//!     probability = 0.1
//!
//!     [[rules]]
//!     name = "orders-throttle"
//!     fault = { error = "throttle" }
//!     match = { service = "orders", operation = "Put*" }
//!     probability = 0.05
//!     window = { start = "1m", duration = "5m" }
//! "#)?;
//! let compiled = plan.compile()?;
//! assert_eq!(compiled.rule_count(), 2);
//! # Ok::<(), chaos_core::plan::PlanError>(())
//! ```
//!
//! The same plan in JSON: `{"seed": 42, "rules": [{"name": "slow-orders", "fault": {"latency":
//! {"log_normal": {"p50": "50ms", "p99": "400ms"}}}, "match": {"service": "orders"},
//! "probability": 0.1}]}`.

mod call;
mod compiled;
pub(crate) mod counter;
mod error;
mod index;
#[cfg(test)]
mod route_tests;
mod rule;
mod selector;
mod site;
#[cfg(test)]
mod tests;
pub(crate) mod verdict;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::rule::Rule;

pub use call::{Call, CallSite};
pub use compiled::CompiledPlan;
#[cfg(feature = "runtime")]
pub(crate) use compiled::Observer;
#[cfg(test)]
use counter::LocalMatchCounter;
#[cfg(feature = "runtime")]
pub(crate) use counter::SharedMatchCounter;
pub use error::{PlanError, PlanWarning};
pub use site::ResolvedSite;
pub(crate) use verdict::Failure;
pub use verdict::Verdict;

use rule::CompiledRule;

/// Identifies each compilation, so a resolved site is never used with another plan's rules.
static NEXT_PLAN_ID: AtomicU64 = AtomicU64::new(1);

/// An ordered list of rules and the seed that keys their decisions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Keys every decision. The same seed replays the same decisions.
    #[serde(default)]
    pub seed: u64,
    /// The rules, in order (order matters for which failure wins).
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl Plan {
    /// An empty plan with a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rules: Vec::new(),
        }
    }

    /// Adds a rule at the end.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Parses a TOML plan and checks it. Errors carry line and column, or rule index and field.
    ///
    /// Checking compiles the plan; to run it, [`CompiledPlan::from_toml_str`] keeps the
    /// compiled form instead of compiling again.
    pub fn from_toml_str(text: &str) -> Result<Self, PlanError> {
        CompiledPlan::from_toml_str(text).map(CompiledPlan::into_plan)
    }

    /// Parses a JSON plan and checks it (see [`from_toml_str`](Self::from_toml_str)).
    pub fn from_json_str(text: &str) -> Result<Self, PlanError> {
        CompiledPlan::from_json_str(text).map(CompiledPlan::into_plan)
    }

    /// Reads a plan file and checks it: `.json` as JSON, anything else as TOML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PlanError> {
        CompiledPlan::from_file(path).map(CompiledPlan::into_plan)
    }

    /// Parses without checking: the one place text becomes a `Plan`.
    pub(crate) fn parse(
        text: &str,
        format: &'static str,
        path: Option<&Path>,
    ) -> Result<Self, PlanError> {
        let parsed = if format == "json" {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| PlanError::Parse {
            path: path.map(Path::to_path_buf),
            format,
            message,
        })
    }

    /// Writes the plan as TOML.
    pub fn to_toml_string(&self) -> Result<String, PlanError> {
        toml::to_string(self).map_err(|e| PlanError::Parse {
            path: None,
            format: "toml",
            message: e.to_string(),
        })
    }

    /// Writes the plan as JSON.
    pub fn to_json_string(&self) -> String {
        // Serializing these types to JSON cannot fail: every map key is a string.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every rule and compiles selectors and probabilities for fast evaluation.
    pub fn compile(&self) -> Result<CompiledPlan, PlanError> {
        self.clone().into_compiled()
    }

    /// Checks and compiles, keeping this plan as the compiled plan's source.
    fn into_compiled(self) -> Result<CompiledPlan, PlanError> {
        let mut names: HashMap<&str, usize> = HashMap::with_capacity(self.rules.len());
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut needs_elapsed = false;
        let mut needs_wall_clock = false;
        let mut warnings = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if let Some(name) = &rule.name {
                if let Some(&first) = names.get(name.as_str()) {
                    // A name keys the rule's decisions: two rules of one name would fire on
                    // exactly the same calls.
                    return Err(PlanError::Rule {
                        index,
                        name: Some(name.clone()),
                        field: "name".to_owned(),
                        message: format!(
                            "{name:?} is already the name of rule {first}; names must be unique"
                        ),
                    });
                }
                names.insert(name, index);
            }
            let mut compiled = CompiledRule::new(self.seed, index, rule)?;
            warnings.extend(CompiledRule::selector_warnings(rule).into_iter().map(
                |(field, message)| PlanWarning {
                    index,
                    name: rule.name.clone(),
                    field: field.to_owned(),
                    message,
                },
            ));
            // Rules with the same selector share one match per call (see `evaluate`). Only
            // groups led by one of the first `SELECTOR_MEMO` rules are memoized, so only those
            // are searched: compiling stays linear in the number of rules.
            compiled.selector_group = self.rules[..index.min(compiled::SELECTOR_MEMO)]
                .iter()
                .position(|earlier| earlier.selector == rule.selector)
                .unwrap_or(index);
            needs_elapsed |= compiled.timed;
            needs_wall_clock |= rule.schedule.expires_at.is_some();
            rules.push(compiled);
        }
        drop(names);
        Ok(CompiledPlan {
            id: NEXT_PLAN_ID.fetch_add(1, Ordering::Relaxed),
            index: index::ServiceIndex::new(&rules),
            all_plain: rules.iter().all(|rule| rule.plain),
            seed: self.seed,
            rules,
            needs_elapsed,
            needs_wall_clock,
            warnings,
            source: self,
        })
    }
}

/// A plan an injector can run: a [`Plan`] (checked and compiled on the way in) or a
/// [`CompiledPlan`] (used as it is, not compiled again).
pub trait IntoCompiledPlan {
    /// Checks and compiles, unless already compiled.
    fn into_compiled_plan(self) -> Result<CompiledPlan, PlanError>;
}

impl IntoCompiledPlan for Plan {
    fn into_compiled_plan(self) -> Result<CompiledPlan, PlanError> {
        self.into_compiled()
    }
}

impl IntoCompiledPlan for &Plan {
    fn into_compiled_plan(self) -> Result<CompiledPlan, PlanError> {
        self.compile()
    }
}

impl IntoCompiledPlan for CompiledPlan {
    fn into_compiled_plan(self) -> Result<CompiledPlan, PlanError> {
        Ok(self)
    }
}
