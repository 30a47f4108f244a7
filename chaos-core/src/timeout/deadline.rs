//! A caller's deadline on tokio's clock (feature `runtime`).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// A point in time by which a caller needs an answer, on tokio's clock (virtual under a
/// paused runtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `remaining` from now.
    pub fn after(remaining: Duration) -> Self {
        Self {
            at: later_by(Instant::now(), remaining),
        }
    }

    /// A deadline at an instant.
    pub fn at(instant: Instant) -> Self {
        Self { at: instant }
    }

    /// A deadline from milliseconds since the Unix epoch (a Lambda context's `deadline`),
    /// given the current wall-clock time.
    pub fn from_epoch_millis(deadline_ms: u64, now: SystemTime) -> Self {
        // A deadline past what the platform's clock can represent never arrives.
        let remaining = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_millis(deadline_ms))
            .map_or(Duration::MAX, |deadline| {
                deadline.duration_since(now).unwrap_or(Duration::ZERO)
            });
        Self::after(remaining)
    }

    /// The instant of the deadline.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The earlier of this deadline and `timeout` from now: what a call made now may wait.
    pub fn capped(&self, timeout: Duration) -> Self {
        Self {
            at: self.at.min(later_by(Instant::now(), timeout)),
        }
    }
}

/// `from + by`, or about 30 years from `from` when that overflows the clock (as tokio does for
/// far-future sleeps): a deadline that far away never arrives.
fn later_by(from: Instant, by: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    from.checked_add(by)
        .unwrap_or_else(|| from.checked_add(FAR_FUTURE).unwrap_or(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn far_deadlines_do_not_overflow() {
        let deadline = Deadline::after(Duration::MAX);
        assert!(deadline.remaining() > Duration::from_secs(86_400 * 365));
        assert!(!deadline.capped(Duration::MAX).is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_counts_down_in_virtual_time() {
        let deadline = Deadline::after(ms(500));
        tokio::time::advance(ms(200)).await;
        assert_eq!(deadline.remaining(), ms(300));
        assert_eq!(deadline.capped(ms(100)).remaining(), ms(100));
        tokio::time::advance(ms(300)).await;
        assert!(deadline.is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn an_epoch_deadline_far_in_the_future_does_not_panic() {
        let deadline = Deadline::from_epoch_millis(u64::MAX, SystemTime::UNIX_EPOCH);
        assert!(!deadline.is_expired());
        let past = Deadline::from_epoch_millis(0, SystemTime::now());
        assert!(past.is_expired());
    }
}
