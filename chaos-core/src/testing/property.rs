//! The property runner: generated plans, a fixed proptest seed, shrinking, and a one-line
//! replay of the minimal failure (feature `proptest`).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

use crate::plan::Plan;

use super::harness::{Harness, HarnessError};
use super::invocation::{HandlerError, Invocation, Served};
use super::report::Report;
use super::steady::{SteadyState, Violations};

/// Rebuilds a plan from the JSON a [`PropertyFailure`] prints, for a regression test:
/// `chaos_core::replay!(r#"{"seed":7,"rules":[...]}"#)` is
/// [`Plan::from_json_str`](crate::plan::Plan::from_json_str) on it, so it returns
/// `Result<Plan, PlanError>`.
///
/// ```
/// let plan = chaos_core::replay!(r#"{"seed":7,"rules":[{"name":"timeout@orders","fault":{"error":"timeout"},"match":{"site":"orders"},"probability":1.0}]}"#)?;
/// assert_eq!((plan.seed, plan.rules.len()), (7, 1));
/// # Ok::<(), chaos_core::PlanError>(())
/// ```
#[macro_export]
macro_rules! replay {
    ($json:expr $(,)?) => {
        $crate::plan::Plan::from_json_str($json)
    };
}

/// Checks that a steady state holds for a handler under every plan a strategy generates;
/// on failure, shrinks to a minimal plan and reports it as a [`replay!`](crate::replay) line.
///
/// The proptest generator is seeded from [`seed`](Self::seed) (never from the OS), so the
/// same property explores the same plans on every run and machine.
#[derive(Clone, Debug)]
pub struct Property {
    harness: Harness,
    steady: SteadyState,
    cases: u32,
    seed: u64,
}

/// Why a property did not hold.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PropertyFailure {
    /// A plan broke the steady state; `plan` is the minimal one after shrinking.
    Falsified {
        /// The minimal failing plan.
        plan: Plan,
        /// What it broke.
        violations: Violations,
        /// The run of the minimal plan.
        report: Box<Report>,
        /// The proptest seed the search used.
        seed: u64,
    },
    /// The minimal plan failed during the search and passed when run again: the handler's
    /// outcome depends on something other than the plan (state shared across runs, the wall
    /// clock, an unseeded generator).
    NotReproducible {
        /// The plan that failed once.
        plan: Plan,
        /// Why it failed then.
        reason: String,
    },
    /// The harness could not run: a misconfiguration, not a verdict on the handler.
    Harness(HarnessError),
    /// The property itself is misconfigured.
    Misconfigured(String),
}

impl PropertyFailure {
    /// The minimal failing plan, if a plan failed.
    pub fn plan(&self) -> Option<&Plan> {
        match self {
            Self::Falsified { plan, .. } | Self::NotReproducible { plan, .. } => Some(plan),
            _ => None,
        }
    }

    /// The one line that rebuilds the minimal failing plan in a regression test:
    /// `chaos_core::replay!(r#"{...}"#)`.
    pub fn replay_line(&self) -> Option<String> {
        self.plan().map(replay_line)
    }
}

/// The one line that rebuilds `plan` in a regression test:
/// `chaos_core::replay!(r#"<compact JSON>"#)`, with as many `#` as the JSON needs. For
/// properties written with proptest's own `proptest!` macro: put it in the failure message.
///
/// ```
/// use chaos_core::{Plan, Rule, fault::ErrorKind, testing::replay_line};
/// let plan = Plan::new(3).with_rule(Rule::error(ErrorKind::Throttle).for_site("orders"));
/// let line = replay_line(&plan);
/// assert_eq!(
///     line,
///     r##"chaos_core::replay!(r#"{"seed":3,"rules":[{"fault":{"error":"throttle"},"match":{"site":"orders"},"probability":1.0}]}"#)"##
/// );
/// ```
pub fn replay_line(plan: &Plan) -> String {
    // Plans serialize with string keys only: this cannot fail.
    let json = serde_json::to_string(plan).unwrap_or_default();
    let mut hashes = String::from("#");
    while json.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    format!("chaos_core::replay!(r{hashes}\"{json}\"{hashes})")
}

impl fmt::Display for PropertyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Falsified {
                plan,
                violations,
                report,
                seed,
            } => write!(
                f,
                "steady state broken (proptest seed {seed}; minimal plan after shrinking): {violations}\n  \
                 run: {report}\n  replay: {}",
                replay_line(plan)
            ),
            Self::NotReproducible { plan, reason } => write!(
                f,
                "a plan failed once ({reason}) and passed when run again: the handler depends on \
                 something besides the plan (state kept across runs, the wall clock, an unseeded \
                 generator)\n  replay: {}",
                replay_line(plan)
            ),
            Self::Harness(error) => write!(f, "the harness could not run: {error}"),
            Self::Misconfigured(why) => write!(f, "the property is misconfigured: {why}"),
        }
    }
}

impl std::error::Error for PropertyFailure {}

impl Property {
    /// A property of `harness` runs: `steady` holds for every generated plan. 256 cases,
    /// proptest seed 0, unless set.
    pub fn new(harness: &Harness, steady: SteadyState) -> Self {
        Self {
            harness: harness.clone(),
            steady,
            cases: 256,
            seed: 0,
        }
    }

    /// How many plans to try (default 256).
    pub fn cases(mut self, cases: u32) -> Self {
        self.cases = cases;
        self
    }

    /// The proptest seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Runs `handler` under every plan `plans` generates, until one breaks the steady
    /// state; then shrinks it. `Ok` means every case held.
    pub fn check<S, H, F, E>(&self, plans: S, handler: H) -> Result<(), PropertyFailure>
    where
        S: Strategy<Value = Plan>,
        H: Fn(Invocation) -> F,
        F: Future<Output = Result<Served, E>> + 'static,
        E: HandlerError + 'static,
    {
        if self.cases == 0 {
            return Err(PropertyFailure::Misconfigured(
                "cases(0) tries no plan, so it would always pass; use at least 1 (256 is proptest's default)"
                    .to_owned(),
            ));
        }
        let config = Config {
            cases: self.cases,
            rng_seed: RngSeed::Fixed(self.seed),
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        // A harness error is a misconfiguration: kept, and every later case fails at once
        // so that the search ends quickly.
        let harness_error: RefCell<Option<HarnessError>> = RefCell::new(None);
        let outcome = runner.run(&plans, |plan| {
            if harness_error.borrow().is_some() {
                return Err(TestCaseError::fail("the harness could not run"));
            }
            match self.harness.run(&plan, &handler) {
                Ok(report) => self
                    .steady
                    .check(&report)
                    .map_err(|violations| TestCaseError::fail(violations.to_string())),
                Err(error) => {
                    *harness_error.borrow_mut() = Some(error);
                    Err(TestCaseError::fail("the harness could not run"))
                }
            }
        });
        if let Some(error) = harness_error.into_inner() {
            return Err(PropertyFailure::Harness(error));
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(TestError::Abort(reason)) => Err(PropertyFailure::Misconfigured(format!(
                "proptest gave up: {reason}"
            ))),
            Err(TestError::Fail(reason, plan)) => {
                // Runs are deterministic: the minimal plan fails again, and its report is
                // the one the search saw.
                let report = self
                    .harness
                    .run(&plan, &handler)
                    .map_err(PropertyFailure::Harness)?;
                match self.steady.check(&report) {
                    Err(violations) => Err(PropertyFailure::Falsified {
                        plan,
                        violations,
                        report: Box::new(report),
                        seed: self.seed,
                    }),
                    Ok(()) => Err(PropertyFailure::NotReproducible {
                        plan,
                        reason: reason.to_string(),
                    }),
                }
            }
        }
    }
}
