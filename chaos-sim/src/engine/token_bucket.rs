//! A token bucket: `burst` tokens, refilled continuously at `rate_per_s`.

const SECOND: f64 = 1e9;

/// A token bucket's level and when it was last refilled (virtual nanoseconds). The rate and
/// burst are passed to [`TokenBucket::take`], so one type serves Lambda's scaling limit and a
/// dependency's capacity.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokenBucket {
    tokens: f64,
    refilled_at: u64,
}

impl TokenBucket {
    /// A full bucket at time 0.
    pub(crate) fn full(burst: f64) -> Self {
        Self {
            tokens: burst,
            refilled_at: 0,
        }
    }

    /// Refills up to `now` and takes one token; `false` (nothing taken) when less than one
    /// token is left. `now` never decreases between calls.
    pub(crate) fn take(&mut self, now: u64, rate_per_s: f64, burst: f64) -> bool {
        let elapsed = now.saturating_sub(self.refilled_at) as f64 / SECOND;
        self.tokens = (self.tokens + elapsed * rate_per_s).min(burst);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_full_bucket_serves_its_burst_then_refuses() {
        let mut b = TokenBucket::full(3.0);
        assert!(b.take(0, 1.0, 3.0));
        assert!(b.take(0, 1.0, 3.0));
        assert!(b.take(0, 1.0, 3.0));
        assert!(!b.take(0, 1.0, 3.0));
    }

    #[test]
    fn it_refills_at_the_rate_and_never_above_the_burst() {
        let mut b = TokenBucket::full(2.0);
        assert!(b.take(0, 4.0, 2.0));
        assert!(b.take(0, 4.0, 2.0));
        assert!(!b.take(S / 8, 4.0, 2.0)); // 0.5 token
        assert!(b.take(S / 4, 4.0, 2.0)); // 1.0 token
        assert!(!b.take(S / 4, 4.0, 2.0));
        // A long idle time refills to the burst only.
        assert!(b.take(100 * S, 4.0, 2.0));
        assert!(b.take(100 * S, 4.0, 2.0));
        assert!(!b.take(100 * S, 4.0, 2.0));
    }

    #[test]
    fn an_empty_bucket_with_zero_rate_stays_empty() {
        let mut b = TokenBucket::default();
        assert!(!b.take(1000 * S, 0.0, 10.0));
    }
}
