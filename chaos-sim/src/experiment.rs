//! Experiments: a control run and an experiment run with common random numbers.

pub use crate::checked::SimError;
use crate::checked::{CheckedScenario, IntoChecked};
use crate::engine::Engine;
use crate::metrics::RunMetrics;
use crate::model::Scenario;
use crate::report::Report;

/// A scenario ready to run: validated, compiled, its faults compiled.
pub struct Simulation {
    checked: CheckedScenario,
    collapse_fan_outs: bool,
}

impl Simulation {
    /// A simulation of `scenario`: a [`CheckedScenario`] (from [`crate::scenario::parse`] or
    /// [`crate::ScenarioBuilder::build`]) is used as is; a [`Scenario`] is checked and
    /// compiled first.
    pub fn new(scenario: impl IntoChecked) -> Result<Self, SimError> {
        Ok(Self {
            checked: scenario.into_checked()?,
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
        self.checked.set_seed(seed);
        self
    }

    /// The scenario being simulated.
    pub fn scenario(&self) -> &Scenario {
        self.checked.scenario()
    }

    /// Runs without faults.
    pub fn run_control(&self) -> RunMetrics {
        Engine::new(self.checked.scenario(), &self.checked.program, None)
            .collapse_fan_outs(self.collapse_fan_outs)
            .run()
    }

    /// Runs with the scenario's faults.
    pub fn run_experiment(&self) -> RunMetrics {
        Engine::new(
            self.checked.scenario(),
            &self.checked.program,
            Some(&self.checked.plan),
        )
        .collapse_fan_outs(self.collapse_fan_outs)
        .run()
    }

    /// Runs control and experiment and checks the hypothesis on both. A scenario without
    /// fault rules runs once (both runs would be identical): the report's `ran_once` says so.
    pub fn run(&self) -> Report {
        let control = self.run_control();
        if self.checked.plan.rule_count() == 0 {
            let mut report = Report::new(self.checked.scenario(), &control, &control);
            report.ran_once = true;
            return report;
        }
        let experiment = self.run_experiment();
        Report::new(self.checked.scenario(), &control, &experiment)
    }
}
