//! Steady-state assertions over a [`Report`]: what must hold however the faults fall.

use std::fmt;
use std::time::Duration;

use super::report::{Record, Report};

/// What must hold over a run, checked by [`check`](Self::check). Start from
/// [`SteadyState::new`] and add the assertions that matter; a steady state with none is a
/// misconfiguration, never a pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SteadyState {
    min_success_rate: Option<f64>,
    max_fallback_rate: Option<f64>,
    latency: Vec<(f64, Duration)>,
    no_call_after_deadline: bool,
    clean_failures: bool,
    no_work_after_deadline: bool,
}

/// One way a run broke its steady state (or the steady state could not be checked).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Violation {
    /// Fewer invocations were answered than required.
    SuccessRate {
        /// The share answered.
        observed: f64,
        /// The least share required.
        required: f64,
        /// The first invocation that was not answered.
        example: Option<Record>,
    },
    /// More invocations were served from a fallback than allowed.
    FallbackRate {
        /// The share served from a fallback.
        observed: f64,
        /// The most allowed.
        allowed: f64,
    },
    /// A latency quantile was over its limit.
    Latency {
        /// The quantile, such as 0.99.
        quantile: f64,
        /// Its value on the virtual clock.
        observed: Duration,
        /// The limit.
        limit: Duration,
        /// The slowest invocation.
        example: Option<Record>,
    },
    /// Calls were made after their invocation's deadline.
    CallAfterDeadline {
        /// How many invocations did.
        invocations: usize,
        /// The first one.
        example: Record,
    },
    /// An invocation failed by timing out (or returning a timeout, or panicking) rather than
    /// with a clean, prompt error.
    UncleanFailure {
        /// How many invocations did.
        invocations: usize,
        /// The first one.
        example: Record,
    },
    /// An invocation kept working after its deadline.
    WorkAfterDeadline {
        /// How many invocations did.
        invocations: usize,
        /// The first one.
        example: Record,
    },
    /// The steady state itself is wrong: it asserts nothing, or a bound is out of range.
    Misconfigured(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let example = |f: &mut fmt::Formatter<'_>, record: &Option<Record>| match record {
            Some(record) => write!(f, " (e.g. {record})"),
            None => Ok(()),
        };
        match self {
            Self::SuccessRate {
                observed,
                required,
                example: record,
            } => {
                write!(
                    f,
                    "success rate {:.4}% is below the required {:.4}%",
                    observed * 100.0,
                    required * 100.0
                )?;
                example(f, record)
            }
            Self::FallbackRate { observed, allowed } => write!(
                f,
                "fallback rate {:.4}% is above the allowed {:.4}%",
                observed * 100.0,
                allowed * 100.0
            ),
            Self::Latency {
                quantile,
                observed,
                limit,
                example: record,
            } => {
                write!(
                    f,
                    "latency p{} is {observed:?}, over the limit {limit:?}",
                    quantile * 100.0
                )?;
                example(f, record)
            }
            Self::CallAfterDeadline {
                invocations,
                example,
            } => write!(
                f,
                "{invocations} invocations made calls after their deadline (e.g. {example})"
            ),
            Self::UncleanFailure {
                invocations,
                example,
            } => write!(
                f,
                "{invocations} invocations failed by timing out instead of with a clean error (e.g. {example})"
            ),
            Self::WorkAfterDeadline {
                invocations,
                example,
            } => write!(
                f,
                "{invocations} invocations kept working after their deadline (e.g. {example})"
            ),
            Self::Misconfigured(why) => write!(f, "the steady state is misconfigured: {why}"),
        }
    }
}

/// The violations of one check, in the order the assertions were added; never empty.
#[derive(Clone, Debug, PartialEq)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, violation) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl SteadyState {
    /// A steady state that asserts nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// At least `rate` (0 to 1) of the invocations are answered, by the primary path or a
    /// fallback.
    pub fn min_success_rate(mut self, rate: f64) -> Self {
        self.min_success_rate = Some(rate);
        self
    }

    /// At most `rate` (0 to 1) of the invocations are answered from a fallback.
    pub fn max_fallback_rate(mut self, rate: f64) -> Self {
        self.max_fallback_rate = Some(rate);
        self
    }

    /// The latency at `quantile` (0 < q <= 1, such as 0.99) is at most `limit` on the
    /// virtual clock. Timed-out invocations count at the deadline.
    pub fn max_latency(mut self, quantile: f64, limit: Duration) -> Self {
        self.latency.push((quantile, limit));
        self
    }

    /// No call is made after its invocation's deadline (the caller has given up: the call
    /// is wasted load on a dependency that may be struggling).
    pub fn no_call_after_deadline(mut self) -> Self {
        self.no_call_after_deadline = true;
        self
    }

    /// Every failure is a clean error returned before the deadline: no invocation times
    /// out, returns a timeout, or panics.
    pub fn failures_are_clean(mut self) -> Self {
        self.clean_failures = true;
        self
    }

    /// No invocation keeps running after its deadline.
    pub fn no_work_after_deadline(mut self) -> Self {
        self.no_work_after_deadline = true;
        self
    }

    /// Checks `report` against every assertion; all broken ones are returned.
    pub fn check(&self, report: &Report) -> Result<(), Violations> {
        if let Some(why) = self.misconfiguration() {
            return Err(Violations(vec![Violation::Misconfigured(why)]));
        }
        let mut violations = Vec::new();
        let first =
            |keep: &dyn Fn(&Record) -> bool| report.records().iter().find(|r| keep(r)).cloned();
        if let Some(required) = self.min_success_rate {
            let observed = report.success_rate();
            if observed < required {
                violations.push(Violation::SuccessRate {
                    observed,
                    required,
                    example: first(&|r| !r.outcome.is_success()),
                });
            }
        }
        if let Some(allowed) = self.max_fallback_rate {
            let observed = report.fallback_rate();
            if observed > allowed {
                violations.push(Violation::FallbackRate { observed, allowed });
            }
        }
        for &(quantile, limit) in &self.latency {
            // The quantile was checked above; a report always has records.
            let Some(observed) = report.latency_quantile(quantile) else {
                continue;
            };
            if observed > limit {
                let slowest = report
                    .records()
                    .iter()
                    .max_by_key(|r| (r.latency, u32::MAX - r.index));
                violations.push(Violation::Latency {
                    quantile,
                    observed,
                    limit,
                    example: slowest.cloned(),
                });
            }
        }
        let mut all = |keep: &dyn Fn(&Record) -> bool, make: fn(usize, Record) -> Violation| {
            if let Some(example) = first(keep) {
                violations.push(make(report.count(keep), example));
            }
        };
        if self.no_call_after_deadline {
            all(&|r| r.calls_after_deadline > 0, |invocations, example| {
                Violation::CallAfterDeadline {
                    invocations,
                    example,
                }
            });
        }
        if self.clean_failures {
            all(
                &|r| r.outcome.is_unclean_failure(),
                |invocations, example| Violation::UncleanFailure {
                    invocations,
                    example,
                },
            );
        }
        if self.no_work_after_deadline {
            all(&Record::worked_past_deadline, |invocations, example| {
                Violation::WorkAfterDeadline {
                    invocations,
                    example,
                }
            });
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Violations(violations))
        }
    }

    fn misconfiguration(&self) -> Option<String> {
        if *self == Self::default() {
            return Some(
                "it asserts nothing, so every run would pass; add an assertion such as `min_success_rate(0.99)`"
                    .to_owned(),
            );
        }
        let rate_ok = |rate: f64| (0.0..=1.0).contains(&rate);
        if let Some(rate) = self.min_success_rate.filter(|&r| !rate_ok(r)) {
            return Some(format!(
                "min_success_rate({rate}) is not a rate; expected 0 to 1 (0.99 for 99%)"
            ));
        }
        if let Some(rate) = self.max_fallback_rate.filter(|&r| !rate_ok(r)) {
            return Some(format!(
                "max_fallback_rate({rate}) is not a rate; expected 0 to 1 (0.2 for 20%)"
            ));
        }
        if let Some(&(quantile, _)) = self.latency.iter().find(|(q, _)| !(*q > 0.0 && *q <= 1.0)) {
            return Some(format!(
                "max_latency({quantile}, ..) needs a quantile above 0 and at most 1 (0.99 for p99)"
            ));
        }
        None
    }
}
