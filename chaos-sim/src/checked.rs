//! [`CheckedScenario`]: a scenario that passed every check, with its program and fault plan
//! compiled, once.

use crate::core_api::{CompiledPlan, Plan, PlanError};
use crate::model::Scenario;
use crate::program::{ModelError, Program};
use crate::rng::FAULT_PLAN_SEED;
use std::sync::Arc;

/// Why a scenario cannot be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The model is inconsistent (undefined names, cycles, out-of-range values).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// chaos-core rejected the fault rules.
    #[error("fault rules: {0}")]
    Plan(#[from] PlanError),
}

/// A validated scenario together with its compiled program and compiled fault plan.
///
/// [`crate::scenario::parse`] and [`crate::ScenarioBuilder::build`] return one; a
/// [`crate::Simulation`] runs it without compiling anything again. Neither compiled part
/// depends on the seed, so [`CheckedScenario::set_seed`] keeps them. Read the scenario
/// through `Deref` (`checked.seed`, `checked.functions`); it cannot be changed in ways that
/// would bypass the checks.
#[derive(Clone, Debug)]
pub struct CheckedScenario {
    scenario: Scenario,
    pub(crate) program: Arc<Program>,
    pub(crate) plan: Arc<CompiledPlan>,
}

impl CheckedScenario {
    /// Validates `scenario` and compiles its program and fault plan.
    pub fn new(scenario: Scenario) -> Result<Self, SimError> {
        let program = Program::compile(&scenario)?;
        let plan = compile_plan(&scenario)?;
        Ok(Self {
            scenario,
            program: Arc::new(program),
            plan: Arc::new(plan),
        })
    }

    /// Assembles a checked value from parts compiled by the scenario parser.
    pub(crate) fn from_parts(scenario: Scenario, program: Program, plan: CompiledPlan) -> Self {
        Self {
            scenario,
            program: Arc::new(program),
            plan: Arc::new(plan),
        }
    }

    /// Uses another seed (the compiled parts do not depend on it).
    pub fn set_seed(&mut self, seed: u64) -> &mut Self {
        self.scenario.seed = seed;
        self
    }

    /// Sets the work budget of a run (events processed at most; see
    /// [`Scenario::max_events`]); at least 1. The compiled parts do not depend on it.
    pub fn set_max_events(&mut self, max_events: u64) -> &mut Self {
        self.scenario.max_events = max_events.max(1);
        self
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The scenario, to change and check again.
    pub fn into_scenario(self) -> Scenario {
        self.scenario
    }
}

impl std::ops::Deref for CheckedScenario {
    type Target = Scenario;

    fn deref(&self) -> &Scenario {
        &self.scenario
    }
}

/// The fault plan of `scenario`. Its seed is fixed: the scenario seed reaches fault decisions
/// through the request keys (`Streams::request_key`), so one compiled plan serves every seed.
pub(crate) fn compile_plan(scenario: &Scenario) -> Result<CompiledPlan, PlanError> {
    Plan {
        seed: FAULT_PLAN_SEED,
        rules: scenario.faults.clone(),
    }
    .compile()
}

/// What [`crate::Simulation::new`] accepts: a [`CheckedScenario`] (used as is) or a
/// [`Scenario`] (checked and compiled first).
pub trait IntoChecked {
    /// The checked scenario, compiling it if needed.
    fn into_checked(self) -> Result<CheckedScenario, SimError>;
}

impl IntoChecked for CheckedScenario {
    fn into_checked(self) -> Result<CheckedScenario, SimError> {
        Ok(self)
    }
}

impl IntoChecked for Scenario {
    fn into_checked(self) -> Result<CheckedScenario, SimError> {
        CheckedScenario::new(self)
    }
}
