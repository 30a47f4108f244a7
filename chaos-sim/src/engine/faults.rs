//! Fault effects: what an injected failure does to an attempt.

use super::*;

/// Delay and attempt outcome of an injected failure (`budget` is the time the caller has).
pub(super) fn failure_effect(failure: &Failure, added: u64, budget: u64) -> (u64, u8) {
    match failure {
        Failure::Error { kind, .. } => (
            added,
            match kind {
                ErrorKind::Throttle => outcome::THROTTLE,
                ErrorKind::Timeout => outcome::TIMEOUT,
                ErrorKind::ConnectionReset
                | ErrorKind::ServerError {
                    status: 500 | 502 | 503 | 504,
                } => outcome::TRANSIENT,
                ErrorKind::ServerError { .. } | ErrorKind::Custom { .. } => outcome::ERROR,
            },
        ),
        Failure::Hang { buffer, .. } => (
            budget.saturating_sub(nanos(*buffer)).max(added),
            outcome::TIMEOUT,
        ),
        Failure::Status { status, .. } => (
            added,
            match status {
                429 => outcome::THROTTLE,
                500 | 502 | 503 | 504 => outcome::TRANSIENT,
                500..=599 => outcome::ERROR,
                _ => outcome::FATAL,
            },
        ),
    }
}
