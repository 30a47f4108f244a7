//! What a run observed: one record per invocation, and the rates and percentiles over them.

use std::fmt;
use std::time::Duration;

use crate::fault::ErrorKind;
use crate::injector::Snapshot;
use crate::plan::Plan;

use super::invocation::{HandlerError, Served};

/// How one invocation ended, as its caller saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Answered from the primary path.
    Ok,
    /// Answered from a fallback.
    Fallback,
    /// Answered with an error of this kind before the deadline.
    Failed(ErrorKind),
    /// Not answered by the deadline: the caller gave up (what a Lambda timeout or an API
    /// gateway's 504 looks like to the caller).
    TimedOut,
    /// The handler panicked (a crashed invocation), with the panic's message.
    Panicked(String),
}

impl Outcome {
    pub(super) fn from_result<E: HandlerError>(result: Result<Served, E>) -> Self {
        match result {
            Ok(Served::Primary) => Self::Ok,
            Ok(Served::Fallback) => Self::Fallback,
            Err(error) => Self::Failed(error.error_kind()),
        }
    }

    /// Whether the caller got an answer (primary or fallback).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Ok | Self::Fallback)
    }

    /// Whether this is a failure that is not a clean, prompt error: the deadline passed, the
    /// handler returned a timeout, or it panicked.
    pub fn is_unclean_failure(&self) -> bool {
        matches!(
            self,
            Self::TimedOut | Self::Failed(ErrorKind::Timeout) | Self::Panicked(_)
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Fallback => f.write_str("fallback"),
            Self::Failed(kind) => write!(f, "failed ({kind})"),
            Self::TimedOut => f.write_str("timed out at the deadline"),
            Self::Panicked(message) => write!(f, "panicked ({message})"),
        }
    }
}

/// What one invocation did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Record {
    /// The invocation's index (its request key).
    pub index: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// Virtual time from its start to its answer (the deadline, if it timed out).
    pub latency: Duration,
    /// Calls it made through the injector.
    pub calls: u32,
    /// Of those, calls a rule fired on.
    pub faulted_calls: u32,
    /// Calls it made after its deadline had passed (its caller had already given up).
    pub calls_after_deadline: u32,
    /// How long it kept running after its deadline (zero if it answered in time).
    pub overrun: Duration,
    /// Whether it was still running when the harness stopped watching it.
    pub abandoned: bool,
    /// Whether it reached the harness's cap on calls per invocation (a retry loop without end).
    pub runaway: bool,
}

impl Record {
    pub(super) fn panicked(index: u32, latency: Duration, message: String) -> Self {
        Self {
            index,
            outcome: Outcome::Panicked(message),
            latency,
            calls: 0,
            faulted_calls: 0,
            calls_after_deadline: 0,
            overrun: Duration::ZERO,
            abandoned: false,
            runaway: false,
        }
    }

    /// Whether the invocation did work after its deadline: ran on past it, or made a call.
    pub fn worked_past_deadline(&self) -> bool {
        !self.overrun.is_zero() || self.calls_after_deadline > 0 || self.abandoned
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invocation {}: {} after {:?}, {} calls ({} faulted",
            self.index, self.outcome, self.latency, self.calls, self.faulted_calls
        )?;
        if self.calls_after_deadline > 0 {
            write!(f, ", {} after the deadline", self.calls_after_deadline)?;
        }
        f.write_str(")")?;
        if self.abandoned {
            write!(f, ", still running {:?} past the deadline", self.overrun)?;
        } else if !self.overrun.is_zero() {
            write!(f, ", ran {:?} past the deadline", self.overrun)?;
        }
        if self.runaway {
            f.write_str(", hit the cap on calls per invocation")?;
        }
        Ok(())
    }
}

/// A run's records, in invocation order, with the plan they ran against.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    plan: Plan,
    records: Vec<Record>,
    snapshot: Snapshot,
}

impl Report {
    pub(super) fn new(plan: Plan, records: Vec<Record>, snapshot: Snapshot) -> Self {
        Self {
            plan,
            records,
            snapshot,
        }
    }

    /// The plan the run used.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// One record per invocation, by index.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The injector's per-rule counters at the end of the run.
    pub fn rule_counters(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The number of invocations.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records (a built harness always runs at least one).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The invocations for which `keep` holds.
    pub fn count(&self, keep: impl Fn(&Record) -> bool) -> usize {
        self.records.iter().filter(|r| keep(r)).count()
    }

    /// The share of invocations answered (primary or fallback), 0 to 1.
    pub fn success_rate(&self) -> f64 {
        self.share(|r| r.outcome.is_success())
    }

    /// The share of invocations answered from a fallback, 0 to 1.
    pub fn fallback_rate(&self) -> f64 {
        self.share(|r| r.outcome == Outcome::Fallback)
    }

    /// The share of invocations that failed in any way, 0 to 1.
    pub fn failure_rate(&self) -> f64 {
        1.0 - self.success_rate()
    }

    /// The latency at quantile `q` (0 < q <= 1) over every invocation, by the nearest-rank
    /// method: the smallest latency at least `q` of the invocations do not exceed. Timed-out
    /// invocations count at the deadline. `None` for `q` outside (0, 1].
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        if !(q > 0.0 && q <= 1.0) || self.records.is_empty() {
            return None;
        }
        let mut latencies: Vec<Duration> = self.records.iter().map(|r| r.latency).collect();
        latencies.sort_unstable();
        let rank = (q * latencies.len() as f64).ceil() as usize;
        latencies.get(rank.clamp(1, latencies.len()) - 1).copied()
    }

    /// Calls made after their invocation's deadline, over the run.
    pub fn calls_after_deadline(&self) -> u64 {
        self.records
            .iter()
            .map(|r| u64::from(r.calls_after_deadline))
            .sum()
    }

    /// Calls a rule fired on, over the run.
    pub fn faulted_calls(&self) -> u64 {
        self.records
            .iter()
            .map(|r| u64::from(r.faulted_calls))
            .sum()
    }

    fn share(&self, keep: impl Fn(&Record) -> bool) -> f64 {
        if self.records.is_empty() {
            return 0.0;
        }
        self.count(keep) as f64 / self.records.len() as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |outcome: fn(&Outcome) -> bool| self.count(|r| outcome(&r.outcome));
        write!(
            f,
            "{} invocations: {} ok, {} fallback, {} failed, {} timed out; {} faulted calls, {} after a deadline",
            self.len(),
            count(|o| *o == Outcome::Ok),
            count(|o| *o == Outcome::Fallback),
            count(|o| matches!(o, Outcome::Failed(_) | Outcome::Panicked(_))),
            count(|o| *o == Outcome::TimedOut),
            self.faulted_calls(),
            self.calls_after_deadline(),
        )?;
        if let (Some(p50), Some(p99)) = (self.latency_quantile(0.5), self.latency_quantile(0.99)) {
            write!(f, "; latency p50 {p50:?}, p99 {p99:?}")?;
        }
        Ok(())
    }
}
