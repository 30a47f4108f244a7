//! [`ScenarioBuilder`]: a scenario in Rust, validated like a scenario file.
//!
//! It sits apart from [`crate::model`] so that the model stays plain data: the model does not
//! import the compiler (the private `program` module), which imports the model.

use crate::checked::{CheckedScenario, SimError};
use crate::core_api::Rule;
use crate::model::{
    Account, DEFAULT_MAX_EVENTS, Dependency, Function, Hypothesis, Invocation, Load, LoadShape,
    OpenLoop, Queue, RegionHops, Scenario, TimelineSettings,
};
use std::time::Duration;

/// Builds a [`Scenario`] in Rust; `build` validates it like a scenario file.
#[derive(Clone, Debug)]
pub struct ScenarioBuilder {
    scenario: Scenario,
}

impl ScenarioBuilder {
    /// A scenario named `name` with seed 0, a Poisson load of 100/s on `entry`, running 60 s.
    pub fn new(name: impl Into<String>, entry: impl Into<String>) -> Self {
        Self {
            scenario: Scenario {
                name: name.into(),
                seed: 0,
                duration: Some(Duration::from_secs(60)),
                requests: None,
                drain: Duration::from_secs(900),
                account: Account::default(),
                load: Load {
                    target: entry.into(),
                    invocation: Invocation::Sync,
                    shape: LoadShape::Open(OpenLoop::poisson(100.0)),
                },
                functions: Vec::new(),
                dependencies: Vec::new(),
                network: Vec::new(),
                queues: Vec::new(),
                faults: Vec::new(),
                hypothesis: Hypothesis::default(),
                max_events: DEFAULT_MAX_EVENTS,
                timeline: TimelineSettings::default(),
            },
        }
    }
    /// Sets the seed.
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.scenario.seed = seed;
        self
    }
    /// Arrivals stop after this much simulated time.
    pub fn duration(&mut self, duration: Duration) -> &mut Self {
        self.scenario.duration = Some(duration);
        self
    }
    /// Arrivals stop after this many requests (and no time limit unless `duration` is set again).
    pub fn requests(&mut self, requests: u64) -> &mut Self {
        self.scenario.requests = Some(requests);
        self.scenario.duration = None;
        self
    }
    /// Sets how long work may drain after arrivals stop.
    pub fn drain(&mut self, drain: Duration) -> &mut Self {
        self.scenario.drain = drain;
        self
    }
    /// Sets account concurrency settings.
    pub fn account(&mut self, account: Account) -> &mut Self {
        self.scenario.account = account;
        self
    }
    /// Sets the load shape.
    pub fn load(&mut self, shape: LoadShape) -> &mut Self {
        self.scenario.load.shape = shape;
        self
    }
    /// Sets how the entry point is invoked.
    pub fn invocation(&mut self, invocation: Invocation) -> &mut Self {
        self.scenario.load.invocation = invocation;
        self
    }
    /// Adds a function.
    pub fn function(&mut self, function: Function) -> &mut Self {
        self.scenario.functions.push(function);
        self
    }
    /// Adds a dependency.
    pub fn dependency(&mut self, dependency: Dependency) -> &mut Self {
        self.scenario.dependencies.push(dependency);
        self
    }
    /// Adds the network hops between two regions (`[[network]]` in a file); see
    /// [`RegionHops`] for which hops an attempt crosses.
    pub fn region_hops(&mut self, hops: RegionHops) -> &mut Self {
        self.scenario.network.push(hops);
        self
    }
    /// Adds a queue.
    pub fn queue(&mut self, queue: Queue) -> &mut Self {
        self.scenario.queues.push(queue);
        self
    }
    /// Adds a fault rule (experiment run only).
    pub fn fault(&mut self, rule: Rule) -> &mut Self {
        self.scenario.faults.push(rule);
        self
    }
    /// Sets the work budget of a run: events processed at most (see
    /// [`Scenario::max_events`]).
    pub fn max_events(&mut self, max_events: u64) -> &mut Self {
        self.scenario.max_events = max_events;
        self
    }
    /// Sets the hypothesis.
    pub fn hypothesis(&mut self, hypothesis: Hypothesis) -> &mut Self {
        self.scenario.hypothesis = hypothesis;
        self
    }
    /// Sets the per-interval series' interval and the recovery criteria (`[timeline]`).
    pub fn timeline(&mut self, timeline: TimelineSettings) -> &mut Self {
        self.scenario.timeline = timeline;
        self
    }
    /// Validates the scenario and compiles it (program and fault plan), once.
    pub fn build(&self) -> Result<CheckedScenario, SimError> {
        CheckedScenario::new(self.scenario.clone())
    }
}
