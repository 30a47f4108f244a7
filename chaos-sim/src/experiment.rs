//! Experiments: a control run and an experiment run with common random numbers.

use crate::core_api::{CompiledPlan, Plan, PlanError};
use crate::engine::Engine;
use crate::metrics::RunMetrics;
use crate::model::Scenario;
use crate::program::{ModelError, Program};
use crate::report::Report;
use crate::rng::FAULT_PLAN_SEED;

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

/// A scenario ready to run: validated, compiled, its faults compiled.
pub struct Simulation {
    scenario: Scenario,
    program: Program,
    plan: CompiledPlan,
    collapse_fan_outs: bool,
}

impl Simulation {
    /// Validates and compiles `scenario`.
    pub fn new(scenario: Scenario) -> Result<Self, SimError> {
        let program = Program::compile(&scenario)?;
        // The plan's seed is fixed: the scenario seed reaches fault decisions through the
        // request keys (`Streams::request_key`), so one compiled plan serves every seed.
        let plan = Plan {
            seed: FAULT_PLAN_SEED,
            rules: scenario.faults.clone(),
        }
        .compile()?;
        Ok(Self {
            scenario,
            program,
            plan,
            collapse_fan_outs: true,
        })
    }

    /// Fan-outs of plain calls (no resilience, unlimited or token-bucket capacity) are joined
    /// when they are sent, with one event for the join instead of one per branch: results are
    /// identical, runs are faster. Turn it off to run every branch as its own event.
    pub fn set_collapse_fan_outs(&mut self, on: bool) -> &mut Self {
        self.collapse_fan_outs = on;
        self
    }

    /// Runs the same scenario with another seed. The compiled program and fault plan do not
    /// depend on the seed, so a seed sweep reuses them.
    pub fn set_seed(&mut self, seed: u64) -> &mut Self {
        self.scenario.seed = seed;
        self
    }

    /// The scenario being simulated.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Runs without faults.
    pub fn run_control(&self) -> RunMetrics {
        Engine::new(&self.scenario, &self.program, None)
            .collapse_fan_outs(self.collapse_fan_outs)
            .run()
    }

    /// Runs with the scenario's faults.
    pub fn run_experiment(&self) -> RunMetrics {
        Engine::new(&self.scenario, &self.program, Some(&self.plan))
            .collapse_fan_outs(self.collapse_fan_outs)
            .run()
    }

    /// Runs control and experiment and checks the hypothesis on both.
    pub fn run(&self) -> Report {
        let control = self.run_control();
        let experiment = self.run_experiment();
        Report::new(&self.scenario, &control, &experiment)
    }
}
