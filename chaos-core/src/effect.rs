//! What a verdict *does* to a call: the one definition of each fault kind's effect.
//!
//! A [`Verdict`] says which faults fired; [`Verdict::effect`] turns it into an [`Effect`]: how
//! long the call is held, then what happens. It is a pure function of the verdict and of the
//! time the caller has left, so the live injector ([`Injector::apply`], which sleeps on tokio's
//! clock) and the simulator (which schedules an event in virtual time) give the same rule the
//! same outcome.
//!
//! | Fault                      | Held for                                      | Then                     |
//! |----------------------------|-----------------------------------------------|--------------------------|
//! | latency only               | the added latency                             | the real call goes ahead |
//! | `error = "throttle"` etc.  | the added latency                             | fails with that error    |
//! | `error = "timeout"`        | until the caller's deadline (\*)              | fails as a timeout       |
//! | `hang = { buffer }`        | until the deadline minus `buffer` (\*\*)      | fails as a timeout       |
//! | `status = N`               | the added latency                             | answers with status `N`  |
//! | `"partition"`              | until its window ends (\*\*\*), plus latencies  | the real call goes ahead |
//! | `corrupt = "mode"`         | the added latency                             | the real call goes ahead and its answer is corrupted (\*\*\*\*) |
//!
//! Held times never go below the added latency (latencies apply before failures).
//!
//! (\*\*\*) **A partition delivers late.** A call decided while a partition's window is open
//! is held in the network until the window ends (its schedule's origin is the one every
//! window has: the injector's start, or the plan's load with
//! [`WindowOrigin::PlanLoad`](crate::WindowOrigin)), then delivered: the hold is part of
//! [`Verdict::added_latency`] and named apart in [`Verdict::partition_hold`]. A call decided
//! after the window is not held. The deadline does not shorten the hold: a caller whose own
//! timeout ends first gives up (in the simulator the server still receives the request when
//! the partition heals), which is what separates a partition from a `hang`.
//!
//! (\*) **An injected timeout waits.** A real timeout is the caller giving up after waiting, so
//! an injected one holds the call until the caller's deadline when one is known (the caller's
//! own timer and the injected error then agree). With no known deadline the wait is unknown,
//! and the error comes after the added latency only; use a `hang` to hold such a call.
//!
//! (\*\*) With no known deadline a hang lasts [`HANG_WITHOUT_DEADLINE`] (Lambda's 900 s limit).
//!
//! (\*\*\*\*) A corruption is an [`Outcome::Fail`] with [`InjectedKind::Corrupt`]: adapters that
//! can read the answer (chaos-aws's Lambda handler layer and its wire wrapper for SDK
//! clients) make the real call and corrupt what
//! it returns ([`crate::corrupt`]); where nothing can read the answer the caller fails, as a
//! caller does when it cannot parse what came back: the generic tower layer returns the
//! [`InjectedError`](crate::InjectedError), the HTTP layers answer 502 (servers) or an
//! `InvalidData` transport error (clients), the simulator counts a non-retried error.
//!
//! ```
//! use std::time::Duration;
//! use chaos_core::{Call, Plan, Rule, fault::ErrorKind, Outcome};
//! use chaos_core::advanced::LocalMatchCounter;
//!
//! let plan = Plan::new(1).with_rule(Rule::error(ErrorKind::Timeout)).compile()?;
//! let verdict = plan.evaluate(&Call::new(7, "orders"), Duration::ZERO, &LocalMatchCounter::new(1));
//! let effect = verdict.effect(Some(Duration::from_secs(3)));
//! assert_eq!(effect.delay, Duration::from_secs(3));
//! assert!(effect.until_deadline);
//! assert!(matches!(effect.outcome, Outcome::Fail { ref kind, .. } if kind.is_timeout()));
//! # Ok::<(), chaos_core::PlanError>(())
//! ```
//!
//! [`Injector::apply`]: crate::Injector::apply

use std::time::Duration;

use crate::fault::{ErrorKind, HANG_WITHOUT_DEADLINE, InjectedKind};
use crate::plan::{Failure, Verdict};

/// What an injected verdict does to a call: hold it for `delay`, then `outcome`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// How long the call is held before `outcome`, counted from when it was decided.
    pub delay: Duration,
    /// Whether `delay` runs to the caller's deadline (an injected timeout, or a hang with no
    /// buffer): a caller whose own timer fires at the deadline sees its own timeout then.
    pub until_deadline: bool,
    /// What happens once the delay is over.
    pub outcome: Outcome,
}

/// What happens to a call once an [`Effect`]'s delay is over.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The real call goes ahead (nothing failing fired).
    Proceed,
    /// The call fails with an injected error.
    Fail {
        /// Index of the rule that decided the failure.
        rule: usize,
        /// What the caller sees.
        kind: InjectedKind,
    },
}

impl Verdict {
    /// The effect of this verdict on a call whose caller has `remaining` time left (`None`:
    /// no known deadline). See the [module docs](crate::effect) for each fault kind.
    pub fn effect(&self, remaining: Option<Duration>) -> Effect {
        let added = self.added_latency;
        let Some(failure) = self.failure.as_deref() else {
            return Effect {
                delay: added,
                until_deadline: false,
                outcome: Outcome::Proceed,
            };
        };
        let (delay, until_deadline, kind) = match failure {
            Failure::Error {
                kind: ErrorKind::Timeout,
                ..
            } => match remaining {
                Some(remaining) => (
                    added.max(remaining),
                    true,
                    InjectedKind::Error(ErrorKind::Timeout),
                ),
                None => (added, false, InjectedKind::Error(ErrorKind::Timeout)),
            },
            Failure::Error { kind, .. } => (added, false, InjectedKind::Error(kind.clone())),
            Failure::Hang { buffer, .. } => match remaining {
                Some(remaining) => (
                    added.max(remaining.saturating_sub(*buffer)),
                    buffer.is_zero(),
                    InjectedKind::Hang,
                ),
                None => (
                    added.saturating_add(HANG_WITHOUT_DEADLINE),
                    false,
                    InjectedKind::Hang,
                ),
            },
            Failure::Status { status, .. } => (added, false, InjectedKind::Status(*status)),
            Failure::Corrupt { corruption, .. } => {
                (added, false, InjectedKind::Corrupt(*corruption))
            }
        };
        Effect {
            delay,
            until_deadline,
            outcome: Outcome::Fail {
                rule: failure.rule(),
                kind,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(added_ms: u64, failure: Option<Failure>) -> Verdict {
        Verdict {
            added_latency: Duration::from_millis(added_ms),
            fired: u32::from(failure.is_some()) + u32::from(added_ms > 0),
            failure: failure.map(Box::new),
            partition_hold: Duration::ZERO,
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn each_fault_kind_has_one_effect() {
        let deadline = Some(MS(3_000));
        let pass = verdict(40, None).effect(deadline);
        assert_eq!((pass.delay, pass.outcome), (MS(40), Outcome::Proceed));

        let throttle = Failure::Error {
            rule: 2,
            kind: ErrorKind::Throttle,
        };
        let effect = verdict(40, Some(throttle)).effect(deadline);
        assert_eq!(effect.delay, MS(40));
        assert_eq!(
            effect.outcome,
            Outcome::Fail {
                rule: 2,
                kind: InjectedKind::Error(ErrorKind::Throttle)
            }
        );

        let status = Failure::Status {
            rule: 0,
            status: 503,
        };
        let effect = verdict(0, Some(status)).effect(deadline);
        assert_eq!(effect.delay, Duration::ZERO);
        assert!(matches!(
            effect.outcome,
            Outcome::Fail {
                kind: InjectedKind::Status(503),
                ..
            }
        ));
    }

    #[test]
    fn an_injected_timeout_waits_for_the_deadline_when_known() {
        let timeout = || {
            Some(Failure::Error {
                rule: 0,
                kind: ErrorKind::Timeout,
            })
        };
        let effect = verdict(10, timeout()).effect(Some(MS(3_000)));
        assert_eq!((effect.delay, effect.until_deadline), (MS(3_000), true));
        // Latency already past the deadline is not cut short.
        assert_eq!(
            verdict(5_000, timeout()).effect(Some(MS(3_000))).delay,
            MS(5_000)
        );
        let unknown = verdict(10, timeout()).effect(None);
        assert_eq!((unknown.delay, unknown.until_deadline), (MS(10), false));
        assert!(matches!(unknown.outcome, Outcome::Fail { kind, .. } if kind.is_timeout()));
    }

    #[test]
    fn a_partition_delivers_after_its_hold_whatever_the_deadline() {
        let held = Verdict {
            added_latency: MS(4_040),
            partition_hold: MS(4_000),
            fired: 2,
            failure: None,
        };
        for deadline in [Some(MS(1_000)), None] {
            let effect = held.effect(deadline);
            assert_eq!(
                (effect.delay, effect.until_deadline, effect.outcome),
                (MS(4_040), false, Outcome::Proceed)
            );
        }
    }

    #[test]
    fn a_hang_ends_buffer_before_the_deadline() {
        let hang = |buffer| {
            Some(Failure::Hang {
                rule: 1,
                buffer: MS(buffer),
            })
        };
        let effect = verdict(300, hang(100)).effect(Some(MS(3_000)));
        assert_eq!((effect.delay, effect.until_deadline), (MS(2_900), false));
        assert!(verdict(0, hang(0)).effect(Some(MS(3_000))).until_deadline);
        // A buffer longer than the time left: no wait beyond the added latency.
        assert_eq!(
            verdict(300, hang(5_000)).effect(Some(MS(3_000))).delay,
            MS(300)
        );
        assert_eq!(
            verdict(300, hang(100)).effect(None).delay,
            MS(300) + HANG_WITHOUT_DEADLINE
        );
        assert_eq!(
            verdict(0, hang(0)).effect(Some(Duration::MAX)).delay,
            Duration::MAX
        );
    }
}
