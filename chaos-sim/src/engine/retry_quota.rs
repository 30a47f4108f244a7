//! The AWS SDK standard mode's retry quota, kept as aws-smithy-runtime keeps it (FACTS.md,
//! `client/retries/strategy/standard.rs` and `token_bucket.rs`).
//!
//! Two things hold state. The token bucket (500 tokens) is per retry partition in one
//! process. The client's retry strategy holds at most one retry permit: a granted retry takes
//! its cost from the bucket (5 after a throttle, 10 after a timeout or transient error) and
//! that permit replaces the held one, whose tokens are forgotten (gone from the bucket). The
//! client's next successful attempt, whichever operation it belongs to, releases the held
//! permit (its tokens go back) or, holding none, regenerates 1 token. A failed operation keeps
//! its permit held. One [`RetryQuota`] is one client drawing on its own bucket: a Lambda
//! environment's client, or one client shared by a whole function (see
//! [`QuotaScope`](crate::model::QuotaScope)).

use super::{Engine, FnState, NONE, State};
use crate::model::QuotaScope;

/// Tokens in a full quota.
pub(crate) const QUOTA_CAPACITY: u32 = 500;
/// What a retry after a throttle costs.
pub(crate) const THROTTLE_RETRY_COST: u8 = 5;
/// What any other retry (timeout, transient error) costs.
pub(crate) const RETRY_COST: u8 = 10;

/// One client's retry state over its bucket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryQuota {
    /// Tokens available in the bucket.
    tokens: u32,
    /// Tokens of the permit the client holds (0: none).
    held: u8,
}

impl Default for RetryQuota {
    fn default() -> Self {
        Self {
            tokens: QUOTA_CAPACITY,
            held: 0,
        }
    }
}

impl RetryQuota {
    /// Asks for a retry (after a throttle when `throttle`); returns the tokens taken, or
    /// `None` (nothing taken, the held permit kept) when the bucket cannot pay. A granted
    /// retry's permit replaces the held one, whose tokens are forgotten.
    pub(crate) fn take(&mut self, throttle: bool) -> Option<u8> {
        let cost = if throttle {
            THROTTLE_RETRY_COST
        } else {
            RETRY_COST
        };
        self.tokens = self.tokens.checked_sub(u32::from(cost))?;
        self.held = cost;
        Some(cost)
    }

    /// Records a successful attempt: releases the held permit (its tokens go back) or, holding
    /// none, regenerates 1 token. Never above capacity (with one client per bucket the held
    /// permit always fits; the cap is the bucket's own).
    pub(crate) fn success(&mut self) {
        let back = if self.held > 0 {
            u32::from(std::mem::take(&mut self.held))
        } else {
            1
        };
        self.tokens = self.tokens.saturating_add(back).min(QUOTA_CAPACITY);
    }

    /// Tokens left in the bucket.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> u32 {
        self.tokens
    }

    /// Tokens of the held permit (0: none).
    #[cfg(test)]
    pub(crate) fn held(&self) -> u8 {
        self.held
    }
}

impl FnState {
    /// A slot of `per_env` fresh quotas for a new environment (`NONE` when it needs none).
    pub(super) fn new_quota_slot(&mut self, per_env: usize) -> u32 {
        if per_env == 0 {
            return NONE;
        }
        match self.free_quota_slots.pop() {
            Some(slot) => {
                let first = slot as usize * per_env;
                self.env_quotas[first..first + per_env].fill(RetryQuota::default());
                slot
            }
            None => {
                let slot = (self.env_quotas.len() / per_env) as u32;
                self.env_quotas
                    .resize(self.env_quotas.len() + per_env, RetryQuota::default());
                slot
            }
        }
    }
}

impl Engine<'_> {
    /// The quota a call's attempt draws on: `index` (from the call node's `quota`) of the
    /// function (`QuotaScope::Function`) or of the environment running the call (the nearest
    /// invocation above frame `id`).
    pub(super) fn quota_mut(
        &mut self,
        id: u32,
        scope: QuotaScope,
        index: usize,
    ) -> Option<&mut RetryQuota> {
        if scope == QuotaScope::Function {
            return self.quotas.get_mut(index);
        }
        let mut frame = id;
        while frame != NONE {
            let f = &self.frames[frame as usize];
            if let State::Invocation {
                function,
                quota_slot,
                ..
            } = f.state
            {
                let function = function as usize;
                let per_env = self.prog.env_quotas[function];
                if quota_slot == NONE {
                    return None;
                }
                return self.funcs[function]
                    .env_quotas
                    .get_mut(quota_slot as usize * per_env + index);
            }
            frame = f.parent;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's bookkeeping for one operation, as the SDK's orchestrator drives it: after
    /// each attempt, a success releases; a retryable failure with attempts left asks the
    /// quota. `attempts` are the outcomes the server gives (`Ok(())` or `Err(throttle)`).
    /// Returns (attempts made, succeeded).
    fn operation(q: &mut RetryQuota, answers: &[Result<(), bool>]) -> (usize, bool) {
        for (i, answer) in answers.iter().enumerate() {
            match *answer {
                Ok(()) => {
                    q.success();
                    return (i + 1, true);
                }
                Err(throttle) => {
                    if i + 1 == 3 || q.take(throttle).is_none() {
                        return (i + 1, false);
                    }
                }
            }
        }
        (answers.len(), false)
    }

    #[test]
    fn throttle_retries_cost_5_and_others_10() {
        let mut q = RetryQuota::default();
        assert_eq!(q.take(true), Some(5));
        assert_eq!((q.tokens(), q.held()), (495, 5));
        assert_eq!(q.take(false), Some(10));
        // The new permit replaced the old one, whose 5 tokens are forgotten.
        assert_eq!((q.tokens(), q.held()), (485, 10));
    }

    #[test]
    fn throttled_operations_drain_5_per_retry_and_keep_the_last_permit() {
        // Every operation throttled on all 3 attempts: 2 retries each, each 5 tokens, each
        // replacing (forgetting) the previous permit: 500 -> 495 -> 490, and so on.
        let mut q = RetryQuota::default();
        let mut seen = vec![];
        for _ in 0..3 {
            let (attempts, ok) = operation(&mut q, &[Err(true), Err(true), Err(true)]);
            assert_eq!((attempts, ok), (3, false));
            seen.push(q.tokens());
        }
        assert_eq!(seen, [490, 480, 470]);
        // The failure did not lose the permit: the next first-try success gives 5 back,
        // not the +1 of a plain first-try success.
        assert_eq!(q.held(), 5);
        assert_eq!(operation(&mut q, &[Ok(())]), (1, true));
        assert_eq!((q.tokens(), q.held()), (475, 0));
        // Holding nothing, a first-try success regenerates 1.
        operation(&mut q, &[Ok(())]);
        assert_eq!(q.tokens(), 476);
    }

    #[test]
    fn a_retried_success_returns_its_permit_and_the_earlier_ones_stay_spent() {
        let mut q = RetryQuota::default();
        // Throttled, throttled, then served: 500 -> 495 -> 490, then the held 5 come back.
        assert_eq!(
            operation(&mut q, &[Err(true), Err(true), Ok(())]),
            (3, true)
        );
        assert_eq!((q.tokens(), q.held()), (495, 0));
        // A timeout retry then success: 495 -> 485 -> 495.
        assert_eq!(operation(&mut q, &[Err(false), Ok(())]), (2, true));
        assert_eq!(q.tokens(), 495);
    }

    #[test]
    fn an_empty_bucket_refuses_without_taking_and_keeps_the_held_permit() {
        let mut q = RetryQuota::default();
        for _ in 0..50 {
            assert_eq!(q.take(false), Some(10));
        }
        assert_eq!((q.tokens(), q.held()), (0, 10));
        assert_eq!(q.take(true), None);
        assert_eq!((q.tokens(), q.held()), (0, 10));
        // The next success releases the held permit: exactly enough for two throttle retries.
        q.success();
        assert_eq!(q.tokens(), 10);
        assert_eq!(q.take(true), Some(5));
        assert_eq!(q.take(true), Some(5));
        assert_eq!(q.take(true), None);
    }

    #[test]
    fn fully_throttled_then_recovering_drains_to_the_floor_and_refills() {
        // Fully throttled: each operation spends 10 (two throttle retries) net, until fewer
        // than 5 tokens are left: 500 / 10 = 50 operations get both retries.
        let mut q = RetryQuota::default();
        let mut attempts = 0;
        for _ in 0..60 {
            attempts += operation(&mut q, &[Err(true), Err(true), Err(true)]).0;
        }
        // 50 operations with 3 attempts, then 10 with 1 (the bucket is at 0, the last
        // permit of 5 still held).
        assert_eq!(attempts, 50 * 3 + 10);
        assert_eq!((q.tokens(), q.held()), (0, 5));
        // Recovery: the first success returns the held 5, each later one 1.
        operation(&mut q, &[Ok(())]);
        assert_eq!(q.tokens(), 5);
        for _ in 0..495 {
            operation(&mut q, &[Ok(())]);
        }
        assert_eq!(q.tokens(), QUOTA_CAPACITY);
        operation(&mut q, &[Ok(())]);
        assert_eq!(q.tokens(), QUOTA_CAPACITY, "never above capacity");
    }

    /// Each new environment gets `per_env` full quotas of its own, at the next slot; a retired
    /// environment's slot is reused by the next one, with its quotas reset to full.
    #[test]
    fn environments_get_fresh_quota_slots_and_reuse_retired_ones_reset() {
        let mut state = FnState::default();
        assert_eq!(state.new_quota_slot(0), NONE, "no quotas, no slot");
        assert!(state.env_quotas.is_empty());

        assert_eq!(state.new_quota_slot(3), 0);
        assert_eq!(state.new_quota_slot(3), 1);
        assert_eq!(state.env_quotas.len(), 6);

        // The second environment drains one quota and retires.
        assert_eq!(state.env_quotas[4].take(true), Some(THROTTLE_RETRY_COST));
        assert_eq!(state.env_quotas[5].take(false), Some(RETRY_COST));
        state.free_quota_slots.push(1);

        assert_eq!(state.new_quota_slot(3), 1, "the retired slot is reused");
        assert_eq!(state.env_quotas.len(), 6, "reuse does not grow the quotas");
        assert!(
            state
                .env_quotas
                .iter()
                .all(|q| q.tokens() == QUOTA_CAPACITY && q.held() == 0),
            "a reused slot starts full: {:?}",
            state.env_quotas
        );

        assert_eq!(state.new_quota_slot(3), 2, "no free slot: the next one");
        assert_eq!(state.env_quotas.len(), 9);
    }
}
