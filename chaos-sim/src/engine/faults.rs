//! Fault effects: what an injected verdict does to an attempt, from chaos-core's one
//! definition of each fault kind's effect (`Verdict::effect`), mapped to the engine's outcome
//! codes.

use super::*;
use crate::core_api::{InjectedKind, Outcome, Verdict};

/// How a call that goes ahead is delayed: `hold` in the network before the server sees it
/// (a partition), then `added` latency (a slowdown at the server).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Delivery {
    pub(super) hold: u64,
    pub(super) added: u64,
}

/// The effect of `verdict` on a call whose caller has `budget` left (`None`: no known
/// deadline): `Ok(delivery)` when the call proceeds, `Err((delay, outcome))` when it fails
/// after `delay`. Inline: it runs once per attempt a plan looks at.
#[inline(always)]
pub(super) fn verdict_effect(
    verdict: &Verdict,
    budget: Option<u64>,
) -> Result<Delivery, (u64, u8)> {
    let effect = verdict.effect(budget.map(Duration::from_nanos));
    let delay = nanos(effect.delay);
    match effect.outcome {
        Outcome::Fail { kind, .. } => Err((delay, injected_outcome(&kind))),
        _ => {
            // A partition's hold is part of the effect's delay; the rest is added latency.
            let hold = nanos(verdict.partition_hold).min(delay);
            Ok(Delivery {
                hold,
                added: delay - hold,
            })
        }
    }
}

/// The attempt outcome of an injected failure of `kind`.
fn injected_outcome(kind: &InjectedKind) -> u8 {
    match kind {
        InjectedKind::Error(ErrorKind::Throttle) => outcome::THROTTLE,
        InjectedKind::Error(ErrorKind::Timeout) | InjectedKind::Hang => outcome::TIMEOUT,
        InjectedKind::Error(
            ErrorKind::ConnectionReset
            | ErrorKind::ServerError {
                status: 500 | 502 | 503 | 504,
            },
        ) => outcome::TRANSIENT,
        InjectedKind::Status(status) => match status {
            429 => outcome::THROTTLE,
            500 | 502 | 503 | 504 => outcome::TRANSIENT,
            500..=599 => outcome::ERROR,
            _ => outcome::FATAL,
        },
        // The simulator models no payloads: a corrupted answer is the caller failing to use
        // it, an error no client retries (the AWS SDK does not retry a response it cannot
        // deserialize). The dependency's own service time is not spent: the call ends after
        // the added latency, like any injected failure.
        InjectedKind::Corrupt(_) => outcome::FATAL,
        _ => outcome::ERROR,
    }
}
