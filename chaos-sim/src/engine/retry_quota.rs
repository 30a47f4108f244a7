//! The AWS SDK standard mode's retry quota (FACTS.md): a bucket of 500 tokens per client
//! region; a throttle retry costs 5, any other retry 10; a first-try success refunds 1, a
//! retried success gives its retry's cost back.

/// Tokens in a full quota.
pub(crate) const QUOTA_CAPACITY: u32 = 500;
/// What a retry after a throttle costs.
pub(crate) const THROTTLE_RETRY_COST: u8 = 5;
/// What any other retry costs.
pub(crate) const RETRY_COST: u8 = 10;

/// One retry quota.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryQuota {
    tokens: u32,
}

impl Default for RetryQuota {
    fn default() -> Self {
        Self {
            tokens: QUOTA_CAPACITY,
        }
    }
}

impl RetryQuota {
    /// Takes the cost of a retry (after a throttle when `throttle`); returns the tokens
    /// taken, or `None` (nothing taken) when the quota cannot pay.
    pub(crate) fn take(&mut self, throttle: bool) -> Option<u8> {
        let cost = if throttle {
            THROTTLE_RETRY_COST
        } else {
            RETRY_COST
        };
        self.tokens = self.tokens.checked_sub(u32::from(cost))?;
        Some(cost)
    }

    /// Records a success: a retried one returns `retry_cost` (what its latest retry took), a
    /// first-try one (`retry_cost == 0`) refunds 1. Never above capacity.
    pub(crate) fn refund(&mut self, retry_cost: u8) {
        let refund = if retry_cost > 0 {
            u32::from(retry_cost)
        } else {
            1
        };
        self.tokens = self.tokens.saturating_add(refund).min(QUOTA_CAPACITY);
    }

    /// Tokens left.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> u32 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_retries_cost_5_and_others_10() {
        let mut q = RetryQuota::default();
        assert_eq!(q.take(true), Some(5));
        assert_eq!(q.tokens(), 495);
        assert_eq!(q.take(false), Some(10));
        assert_eq!(q.tokens(), 485);
    }

    #[test]
    fn an_empty_quota_refuses_without_taking() {
        let mut q = RetryQuota::default();
        for _ in 0..50 {
            assert_eq!(q.take(false), Some(10));
        }
        assert_eq!(q.tokens(), 0);
        assert_eq!(q.take(true), None);
        assert_eq!(q.tokens(), 0);
        // Exactly enough is enough.
        q.refund(5);
        assert_eq!(q.take(true), Some(5));
        assert_eq!(q.take(true), None);
    }

    #[test]
    fn successes_refund_and_never_overfill() {
        let mut q = RetryQuota::default();
        q.refund(0);
        assert_eq!(q.tokens(), QUOTA_CAPACITY);
        assert_eq!(q.take(false), Some(10));
        q.refund(0);
        assert_eq!(q.tokens(), 491);
        q.refund(10);
        assert_eq!(q.tokens(), 500);
        assert_eq!(q.take(true), Some(5));
        q.refund(5);
        assert_eq!(q.tokens(), 500);
    }
}
