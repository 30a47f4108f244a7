//! proptest strategies for fault plans over your declared call sites (feature `proptest`).
//!
//! A [`PlanSpace`] says what may be generated: which sites (and their services) rules
//! target, which fault kinds, error kinds, latency bounds, probabilities, and whether rules
//! get time windows and ramps. [`PlanSpace::strategy`] checks the bounds (impossible ones
//! are an error) and returns a strategy whose values shrink toward the plan a person would
//! write first: fewer rules, the first site, the first fault kind listed, constant latency,
//! probability 1, no window, seed 0.

use std::fmt;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

use crate::fault::{ErrorKind, Fault};
use crate::latency::LatencyDist;
use crate::plan::Plan;
use crate::rule::Rule;

use super::harness::Site;

/// A fault kind a [`PlanSpace`] may generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultChoice {
    /// Added latency, from a generated distribution.
    Latency,
    /// An error, from the space's error kinds.
    Error,
    /// An injected timeout (held until the invocation's deadline).
    Timeout,
    /// A hang until the deadline minus a generated buffer.
    Hang,
    /// A replaced response status, from the space's statuses.
    Status,
}

impl fmt::Display for FaultChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Latency => "latency",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Hang => "hang",
            Self::Status => "status",
        })
    }
}

/// A [`PlanSpace`] whose bounds admit no plan. Each says which setting and the fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StrategyError {
    /// No sites to target.
    #[error(
        "the plan space has no call sites; pass the sites your handler calls (`harness.sites()`)"
    )]
    NoSites,
    /// `max_rules(0)`, or more than the limit.
    #[error("max_rules({0}) is out of range; expected 1 to 64 rules per plan")]
    RuleCount(usize),
    /// No fault kinds.
    #[error("the plan space has no fault kinds; list at least one in `faults([...])`")]
    NoFaultKinds,
    /// Errors are to be generated but none is listed.
    #[error(
        "`FaultChoice::Error` is listed but `errors([...])` is empty; list error kinds or drop the choice"
    )]
    NoErrorKinds,
    /// Statuses are to be generated but none is listed, or one is not an HTTP status.
    #[error("statuses {0:?} are not usable: list at least one, each 100 to 599")]
    Statuses(Vec<u16>),
    /// The latency bounds are empty.
    #[error("latency bounds {min:?} to {max:?} are empty; expected min <= max and max >= 1ms")]
    LatencyBounds {
        /// The lower bound.
        min: Duration,
        /// The upper bound.
        max: Duration,
    },
    /// The probability bounds are not a range within 0 to 1.
    #[error("probability bounds {min} to {max} are not a range within 0 to 1")]
    ProbabilityBounds {
        /// The lower bound.
        min: f64,
        /// The upper bound.
        max: f64,
    },
    /// Windows were asked for over a horizon too short to hold one.
    #[error("schedules_within({0:?}) leaves no room for a window; use a horizon of at least 1ms")]
    Horizon(Duration),
}

/// What a generated fault plan may contain. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanSpace {
    sites: Vec<Site>,
    max_rules: usize,
    faults: Vec<FaultChoice>,
    errors: Vec<ErrorKind>,
    statuses: Vec<u16>,
    latency: (Duration, Duration),
    hang_buffer: Duration,
    probability: (f64, f64),
    horizon: Option<Duration>,
}

impl PlanSpace {
    /// Plans over `sites` (usually [`Harness::sites`](super::Harness::sites)), with the
    /// defaults: 1 to 3 rules; latency, error and timeout faults; throttles, 503s and
    /// connection resets; latency parameters from 1 ms to 5 s; any probability; no windows.
    pub fn new<S: Into<Site>>(sites: impl IntoIterator<Item = S>) -> Self {
        Self {
            sites: sites.into_iter().map(Into::into).collect(),
            max_rules: 3,
            faults: vec![
                FaultChoice::Latency,
                FaultChoice::Error,
                FaultChoice::Timeout,
            ],
            errors: vec![
                ErrorKind::Throttle,
                ErrorKind::ServerError { status: 503 },
                ErrorKind::ConnectionReset,
            ],
            statuses: vec![503],
            latency: (Duration::from_millis(1), Duration::from_secs(5)),
            hang_buffer: Duration::from_millis(500),
            probability: (0.0, 1.0),
            horizon: None,
        }
    }

    /// At most `count` rules per plan (1 to 64; default 3).
    pub fn max_rules(mut self, count: usize) -> Self {
        self.max_rules = count;
        self
    }

    /// The fault kinds to generate, simplest first: shrinking moves toward the first.
    pub fn faults(mut self, kinds: impl IntoIterator<Item = FaultChoice>) -> Self {
        self.faults = kinds.into_iter().collect();
        self
    }

    /// The error kinds [`FaultChoice::Error`] picks from.
    pub fn errors(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Self {
        self.errors = kinds.into_iter().collect();
        self
    }

    /// The statuses [`FaultChoice::Status`] picks from.
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// Bounds on latency parameters (a constant, a uniform's ends, a log-normal's median and
    /// p99, an exponential's mean), in whole milliseconds. Log-normal and exponential
    /// latencies have tails beyond `max`, as real ones do.
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        self.latency = (min, max);
        self
    }

    /// The longest buffer a generated hang leaves before the deadline (default 500 ms).
    pub fn hang_buffer_up_to(mut self, max: Duration) -> Self {
        self.hang_buffer = max;
        self
    }

    /// Bounds on rule probabilities (default 0 to 1), in steps of 0.001.
    pub fn probability(mut self, min: f64, max: f64) -> Self {
        self.probability = (min, max);
        self
    }

    /// Gives rules optional windows and ramps within `horizon` of the run's start (virtual
    /// time: a sequential run of 1,000 invocations of 50 ms spans 50 s).
    pub fn schedules_within(mut self, horizon: Duration) -> Self {
        self.horizon = Some(horizon);
        self
    }

    /// Checks the bounds and returns the strategy.
    pub fn strategy(&self) -> Result<BoxedStrategy<Plan>, StrategyError> {
        self.validate()?;
        let rule = self.rule_strategy();
        Ok((
            any::<u64>(),
            prop::collection::vec(rule, 1..=self.max_rules),
        )
            .prop_map(|(seed, genes)| plan_from(seed, genes))
            .boxed())
    }

    fn validate(&self) -> Result<(), StrategyError> {
        if self.sites.is_empty() {
            return Err(StrategyError::NoSites);
        }
        if !(1..=64).contains(&self.max_rules) {
            return Err(StrategyError::RuleCount(self.max_rules));
        }
        if self.faults.is_empty() {
            return Err(StrategyError::NoFaultKinds);
        }
        if self.faults.contains(&FaultChoice::Error) && self.errors.is_empty() {
            return Err(StrategyError::NoErrorKinds);
        }
        if self.faults.contains(&FaultChoice::Status)
            && (self.statuses.is_empty() || self.statuses.iter().any(|s| !(100..=599).contains(s)))
        {
            return Err(StrategyError::Statuses(self.statuses.clone()));
        }
        let (min, max) = self.latency;
        if min > max || max < Duration::from_millis(1) {
            return Err(StrategyError::LatencyBounds { min, max });
        }
        let (low, high) = self.probability;
        if !(0.0..=1.0).contains(&low) || !(0.0..=1.0).contains(&high) || low > high {
            return Err(StrategyError::ProbabilityBounds {
                min: low,
                max: high,
            });
        }
        if let Some(horizon) = self.horizon.filter(|h| *h < Duration::from_millis(1)) {
            return Err(StrategyError::Horizon(horizon));
        }
        Ok(())
    }

    fn rule_strategy(&self) -> BoxedStrategy<RuleGene> {
        let target = self.target_strategy();
        let fault = self.fault_strategy();
        let probability = self.probability_strategy();
        let schedule = self.schedule_strategy();
        (target, fault, probability, schedule)
            .prop_map(|(target, fault, probability, schedule)| RuleGene {
                target,
                fault,
                probability,
                schedule,
            })
            .boxed()
    }

    fn target_strategy(&self) -> BoxedStrategy<Target> {
        let sites: Vec<Target> = self
            .sites
            .iter()
            .map(|s| Target::Site(s.name().to_owned()))
            .collect();
        let mut services: Vec<String> = self
            .sites
            .iter()
            .map(|s| s.service_name().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        services.sort();
        services.dedup();
        let site = prop::sample::select(sites).boxed();
        if services.is_empty() {
            return prop_oneof![site, Just(Target::Everything)].boxed();
        }
        let service = prop::sample::select(services).prop_map(Target::Service);
        prop_oneof![site, service, Just(Target::Everything)].boxed()
    }

    fn fault_strategy(&self) -> BoxedStrategy<Fault> {
        let arms: Vec<BoxedStrategy<Fault>> = self
            .faults
            .iter()
            .map(|choice| match choice {
                FaultChoice::Latency => self.latency_strategy().prop_map(Fault::Latency).boxed(),
                FaultChoice::Error => prop::sample::select(self.errors.clone())
                    .prop_map(Fault::Error)
                    .boxed(),
                FaultChoice::Timeout => Just(Fault::Error(ErrorKind::Timeout)).boxed(),
                FaultChoice::Hang => (0..=millis(self.hang_buffer))
                    .prop_map(|buffer| Fault::Hang {
                        buffer: Duration::from_millis(buffer),
                    })
                    .boxed(),
                FaultChoice::Status => prop::sample::select(self.statuses.clone())
                    .prop_map(Fault::Status)
                    .boxed(),
            })
            .collect();
        // A union shrinks toward its first arm: the first kind listed.
        prop::strategy::Union::new(arms).boxed()
    }

    fn latency_strategy(&self) -> BoxedStrategy<LatencyDist> {
        let (min, max) = (millis(self.latency.0), millis(self.latency.1));
        let positive = min.max(1);
        let ms = Duration::from_millis;
        let constant = (min..=max).prop_map(move |m| LatencyDist::constant(ms(m)));
        let uniform = (min..=max, min..=max).prop_filter_map("uniform bounds", move |(a, b)| {
            LatencyDist::uniform(ms(a.min(b)), ms(a.max(b))).ok()
        });
        let log_normal = (positive..=max, positive..=max).prop_filter_map(
            "log-normal needs p99 above p50",
            move |(a, b)| {
                let (p50, p99) = (a.min(b), a.max(b));
                // Equal draws get a p99 one millisecond above (a narrow, valid spread).
                LatencyDist::log_normal_p50_p99(ms(p50), ms(p99.max(p50 + 1))).ok()
            },
        );
        let exponential = (positive..=max).prop_filter_map("exponential mean", move |m| {
            LatencyDist::exponential(ms(m)).ok()
        });
        prop_oneof![constant, uniform, log_normal, exponential].boxed()
    }

    fn probability_strategy(&self) -> BoxedStrategy<f64> {
        let (low, high) = self.probability;
        let (low, high) = ((low * 1000.0).ceil() as u32, (high * 1000.0).floor() as u32);
        let high = high.max(low);
        // The highest probability first: "every matching call" is the plan people read fastest.
        prop_oneof![Just(high), low..=high]
            .prop_map(|permille| f64::from(permille) / 1000.0)
            .boxed()
    }

    fn schedule_strategy(&self) -> BoxedStrategy<Option<ScheduleGene>> {
        let Some(horizon) = self.horizon else {
            return Just(None).boxed();
        };
        let horizon = millis(horizon).max(1);
        let window = prop::option::of((0..horizon, 1..=horizon));
        let ramp = prop::option::of(1..=horizon);
        prop::option::of((window, ramp))
            .prop_map(|gene| {
                gene.map(|(window, ramp)| ScheduleGene {
                    window: window.map(|(start, length)| {
                        (Duration::from_millis(start), Duration::from_millis(length))
                    }),
                    ramp: ramp.map(Duration::from_millis),
                })
            })
            .boxed()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Clone, Debug)]
enum Target {
    Site(String),
    Service(String),
    Everything,
}

#[derive(Clone, Debug)]
struct ScheduleGene {
    window: Option<(Duration, Duration)>,
    ramp: Option<Duration>,
}

#[derive(Clone, Debug)]
struct RuleGene {
    target: Target,
    fault: Fault,
    probability: f64,
    schedule: Option<ScheduleGene>,
}

/// Builds the plan. Rules are named by what they do and where ("timeout@orders"), so the
/// replay line reads as a sentence and a rule keeps its decisions when another is shrunk
/// away (decisions are keyed by the rule's name).
fn plan_from(seed: u64, genes: Vec<RuleGene>) -> Plan {
    let mut plan = Plan::new(seed);
    let mut names: Vec<String> = Vec::new();
    for gene in genes {
        let kind = match &gene.fault {
            Fault::Error(kind) => kind.label(),
            other => other.label(),
        };
        let (mut rule, place) = match gene.target {
            Target::Site(site) => (Rule::new(gene.fault).for_site(site.clone()), site),
            Target::Service(service) => (
                Rule::new(gene.fault).for_service(service.clone()),
                format!("service {service}"),
            ),
            Target::Everything => (Rule::new(gene.fault), "all".to_owned()),
        };
        let base = format!("{kind}@{place}");
        let mut name = base.clone();
        let mut copy = 2;
        while names.contains(&name) {
            name = format!("{base}#{copy}");
            copy += 1;
        }
        names.push(name.clone());
        rule = rule.named(name).with_probability(gene.probability);
        if let Some(schedule) = gene.schedule {
            if let Some((start, length)) = schedule.window {
                rule = rule.during(start, length);
            }
            if let Some(ramp) = schedule.ramp {
                rule = rule.ramping_up_over(ramp);
            }
        }
        plan = plan.with_rule(rule);
    }
    plan
}
