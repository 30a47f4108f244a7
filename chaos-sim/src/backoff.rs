//! Backoff between retries: pure functions of the retry number, the policy and one uniform
//! draw, so they can be tested with fixed draws. The exponential ceiling is chaos-core's
//! `timeout::exponential_ceiling`, the one the timeout check's worst cases use.
//!
//! Times are nanoseconds. Every function saturates instead of wrapping.

use crate::core_api::exponential_ceiling;
use crate::model::BackoffKind;
use std::time::Duration;

/// The AWS SDK's standard retry mode (FACTS.md): 3 attempts, full jitter, base 1 s, cap 20 s.
pub const SDK_STANDARD_ATTEMPTS: u32 = 3;
/// The SDK standard mode's backoff base, in nanoseconds.
pub const SDK_STANDARD_BASE_NS: u64 = 1_000_000_000;
/// The SDK standard mode's backoff cap, in nanoseconds (20 s).
pub const SDK_STANDARD_CAP_NS: u64 = 20_000_000_000;

/// `min(cap, base x 2^(retry - 1))` for retry number `retry` (1 for the first retry), in
/// nanoseconds: chaos-core's `exponential_ceiling` (the doubling stops after 40 steps).
pub fn ceiling(retry: u32, base: u64, cap: u64) -> u64 {
    let ceiling = exponential_ceiling(retry, Duration::from_nanos(base), Duration::from_nanos(cap));
    u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX)
}

/// The wait before retry number `retry` (1 for the first retry) under `backoff`.
///
/// `unit` is a uniform draw in [0, 1) (used by the jittered policies only); `previous` is the
/// previous wait of the same call (0 before its first retry; decorrelated jitter only).
pub fn delay(
    backoff: BackoffKind,
    retry: u32,
    base: u64,
    cap: u64,
    previous: u64,
    unit: f64,
) -> u64 {
    let ceiling = ceiling(retry, base, cap);
    match backoff {
        BackoffKind::Immediate => 0,
        BackoffKind::None => base,
        BackoffKind::Exponential => ceiling,
        BackoffKind::FullJitter => (unit * ceiling as f64) as u64,
        BackoffKind::EqualJitter => ceiling / 2 + (unit * (ceiling / 2) as f64) as u64,
        BackoffKind::DecorrelatedJitter => {
            let prev = if previous == 0 { base } else { previous };
            let high = prev.saturating_mul(3).max(base);
            base.saturating_add((unit * (high - base) as f64) as u64)
                .min(cap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_ceiling_doubles_from_base_up_to_the_cap() {
        assert_eq!(ceiling(1, 100 * MS, 1000 * MS), 100 * MS);
        assert_eq!(ceiling(2, 100 * MS, 1000 * MS), 200 * MS);
        assert_eq!(ceiling(4, 100 * MS, 1000 * MS), 800 * MS);
        assert_eq!(ceiling(5, 100 * MS, 1000 * MS), 1000 * MS);
        assert_eq!(ceiling(u32::MAX, u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(ceiling(0, 100 * MS, 1000 * MS), 100 * MS);
    }

    #[test]
    fn constant_and_exponential_ignore_the_draw() {
        for unit in [0.0, 0.5, 0.999] {
            assert_eq!(delay(BackoffKind::None, 3, 7 * MS, 5 * MS, 0, unit), 7 * MS);
            assert_eq!(
                delay(BackoffKind::Exponential, 3, 10 * MS, 1000 * MS, 0, unit),
                40 * MS
            );
        }
    }

    #[test]
    fn an_immediate_retry_never_waits() {
        for (retry, previous, unit) in [(1, 0, 0.0), (5, 40 * MS, 0.999)] {
            assert_eq!(
                delay(
                    BackoffKind::Immediate,
                    retry,
                    10 * MS,
                    1000 * MS,
                    previous,
                    unit
                ),
                0
            );
        }
    }

    #[test]
    fn full_jitter_scales_the_ceiling() {
        assert_eq!(
            delay(BackoffKind::FullJitter, 3, 10 * MS, 1000 * MS, 0, 0.0),
            0
        );
        assert_eq!(
            delay(BackoffKind::FullJitter, 3, 10 * MS, 1000 * MS, 0, 0.25),
            10 * MS
        );
        assert_eq!(
            delay(BackoffKind::FullJitter, 9, 10 * MS, 1000 * MS, 0, 0.5),
            500 * MS
        );
    }

    #[test]
    fn equal_jitter_is_half_the_ceiling_plus_a_jittered_half() {
        // ceiling(3) = 40 ms: 20 ms + unit x 20 ms.
        assert_eq!(
            delay(BackoffKind::EqualJitter, 3, 10 * MS, 1000 * MS, 0, 0.0),
            20 * MS
        );
        assert_eq!(
            delay(BackoffKind::EqualJitter, 3, 10 * MS, 1000 * MS, 0, 0.5),
            30 * MS
        );
        assert_eq!(
            delay(BackoffKind::EqualJitter, 3, 10 * MS, 1000 * MS, 0, 0.75),
            35 * MS
        );
        // Odd ceilings: both halves are floored (3 ns waits 1 ns + unit x 1 ns, rounded down).
        assert_eq!(delay(BackoffKind::EqualJitter, 1, 3, 1000, 0, 0.999_999), 1);
    }

    #[test]
    fn decorrelated_jitter_draws_between_base_and_three_times_the_previous_wait() {
        // First retry: previous = base, so [base, 3 base).
        assert_eq!(
            delay(
                BackoffKind::DecorrelatedJitter,
                1,
                10 * MS,
                1000 * MS,
                0,
                0.0
            ),
            10 * MS
        );
        assert_eq!(
            delay(
                BackoffKind::DecorrelatedJitter,
                1,
                10 * MS,
                1000 * MS,
                0,
                0.5
            ),
            20 * MS
        );
        // Later: [base, 3 x previous), capped.
        assert_eq!(
            delay(
                BackoffKind::DecorrelatedJitter,
                2,
                10 * MS,
                1000 * MS,
                40 * MS,
                0.5
            ),
            65 * MS
        );
        assert_eq!(
            delay(
                BackoffKind::DecorrelatedJitter,
                2,
                10 * MS,
                100 * MS,
                40 * MS,
                0.99
            ),
            100 * MS
        );
        // A previous wait below base / 3 still draws from base.
        assert_eq!(
            delay(
                BackoffKind::DecorrelatedJitter,
                2,
                10 * MS,
                1000 * MS,
                1,
                0.9
            ),
            10 * MS
        );
    }

    #[test]
    fn the_sdk_standard_cap_holds_at_every_retry() {
        for retry in 1..70 {
            let d = delay(
                BackoffKind::FullJitter,
                retry,
                SDK_STANDARD_BASE_NS,
                SDK_STANDARD_CAP_NS,
                0,
                0.999_999,
            );
            assert!(d <= SDK_STANDARD_CAP_NS, "retry {retry}: {d}");
        }
        // Retry 6 would be 32 s uncapped; the cap makes it 20 s at most.
        assert_eq!(
            ceiling(6, SDK_STANDARD_BASE_NS, SDK_STANDARD_CAP_NS),
            SDK_STANDARD_CAP_NS
        );
        assert_eq!(
            ceiling(5, SDK_STANDARD_BASE_NS, SDK_STANDARD_CAP_NS),
            16 * SDK_STANDARD_BASE_NS
        );
    }
}
