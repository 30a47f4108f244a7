//! Client-side retry budgets usable with every retry policy: gRPC's retry throttling (a token
//! bucket with a threshold) and Finagle's `RetryBudget` (a percentage of recent requests plus
//! a per-second reserve). Plain state types, unit-tested alone; the engine keeps one per
//! (calling function, dependency, region, budget), as each client keeps one.

use crate::model::RetryBudget;

/// Thousandths: gRPC keeps its tokens in milli-tokens, and Finagle scales its deposits by
/// 1,000, so both budgets count in integers and never drift.
const SCALE: i64 = 1000;
/// Finagle's `WindowedAdder` splits the window into 10 slices; a slice expires whole.
const SLICES: usize = 10;

/// One budget's state.
#[derive(Clone, Debug)]
pub(crate) enum BudgetState {
    /// gRPC retry throttling.
    Throttle(RetryThrottle),
    /// Finagle's retry budget.
    Percent(PercentBudget),
}

impl BudgetState {
    /// A fresh budget (full tokens, empty window).
    pub(crate) fn new(budget: &RetryBudget) -> Self {
        match *budget {
            RetryBudget::TokenBucket {
                max_tokens,
                token_ratio,
            } => Self::Throttle(RetryThrottle::new(max_tokens, token_ratio)),
            RetryBudget::Percent {
                percent,
                min_retries_per_s,
                ttl,
            } => Self::Percent(PercentBudget::new(
                percent,
                min_retries_per_s,
                u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX),
            )),
        }
    }

    /// A call's first attempt was sent (Finagle deposits per request).
    pub(crate) fn on_request(&mut self, now: u64) {
        if let Self::Percent(b) = self {
            b.deposit(now);
        }
    }

    /// An attempt answered: a success, or a failure the policy would retry (gRPC counts
    /// only those).
    pub(crate) fn on_attempt(&mut self, success: bool) {
        if let Self::Throttle(t) = self {
            if success {
                t.record_success();
            } else {
                t.record_failure();
            }
        }
    }

    /// Whether a retry may be sent now; nothing is taken (see [`Self::commit`]).
    pub(crate) fn allows(&mut self, now: u64) -> bool {
        match self {
            Self::Throttle(t) => t.allows_retry(),
            Self::Percent(b) => b.can_withdraw(now),
        }
    }

    /// A retry the budget allowed is being sent.
    pub(crate) fn commit(&mut self, now: u64) {
        if let Self::Percent(b) = self {
            b.withdraw(now);
        }
    }
}

/// gRPC's retry throttling, in milli-tokens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryThrottle {
    tokens: i64,
    max: i64,
    ratio: i64,
}

impl RetryThrottle {
    /// `max_tokens` (validated: above 0, at most 1000) and `token_ratio` (above 0), both
    /// kept to thousandths as gRPC parses them.
    pub(crate) fn new(max_tokens: f64, token_ratio: f64) -> Self {
        let max = (max_tokens * SCALE as f64).round() as i64;
        Self {
            tokens: max,
            max,
            ratio: (token_ratio * SCALE as f64).round() as i64,
        }
    }
    pub(crate) fn record_failure(&mut self) {
        self.tokens = (self.tokens - SCALE).max(0);
    }
    pub(crate) fn record_success(&mut self) {
        self.tokens = (self.tokens + self.ratio).min(self.max);
    }
    /// Retries are allowed while more than half the maximum is left.
    pub(crate) fn allows_retry(&self) -> bool {
        self.tokens > self.max / 2
    }
    #[cfg(test)]
    pub(crate) fn milli_tokens(&self) -> i64 {
        self.tokens
    }
}

/// Finagle's retry budget: a reserve plus a sum over a window of `SLICES` slices, each
/// request depositing `deposit` and each retry withdrawing `withdrawal`.
#[derive(Clone, Debug)]
pub(crate) struct PercentBudget {
    deposit: i64,
    withdrawal: i64,
    reserve: i64,
    slice_ns: u64,
    /// The slice `slots[epoch % SLICES]` holds.
    epoch: u64,
    slots: [i64; SLICES],
}

impl PercentBudget {
    /// `percent` as a fraction (validated: 0 to 10), `min_retries_per_s` (at least 0),
    /// `ttl_ns` (1 s to 60 s). As Finagle: with `percent == 0` a retry costs 1 and requests
    /// earn nothing, so only the reserve pays.
    pub(crate) fn new(percent: f64, min_retries_per_s: f64, ttl_ns: u64) -> Self {
        let (deposit, withdrawal) = if percent == 0.0 {
            (0, 1)
        } else {
            (SCALE, ((SCALE as f64 / percent) as i64).max(1))
        };
        let ttl_s = ttl_ns as f64 / 1e9;
        Self {
            deposit,
            withdrawal,
            reserve: (min_retries_per_s * ttl_s * withdrawal as f64) as i64,
            slice_ns: (ttl_ns / SLICES as u64).max(1),
            epoch: 0,
            slots: [0; SLICES],
        }
    }

    /// Moves the window to `now`, clearing the slices that expired.
    fn advance(&mut self, now: u64) {
        let epoch = now / self.slice_ns;
        if epoch <= self.epoch {
            return;
        }
        let expired = (epoch - self.epoch).min(SLICES as u64);
        for i in 1..=expired {
            self.slots[((self.epoch + i) % SLICES as u64) as usize] = 0;
        }
        self.epoch = epoch;
    }

    fn slot(&mut self) -> &mut i64 {
        &mut self.slots[(self.epoch % SLICES as u64) as usize]
    }

    fn balance(&self) -> i64 {
        self.reserve + self.slots.iter().sum::<i64>()
    }

    pub(crate) fn deposit(&mut self, now: u64) {
        self.advance(now);
        let d = self.deposit;
        *self.slot() += d;
    }

    pub(crate) fn can_withdraw(&mut self, now: u64) -> bool {
        self.advance(now);
        self.balance() >= self.withdrawal
    }

    pub(crate) fn withdraw(&mut self, now: u64) {
        self.advance(now);
        let w = self.withdrawal;
        *self.slot() -= w;
    }

    /// Retries the budget would allow now (Finagle's `balance`).
    #[cfg(test)]
    pub(crate) fn retries_left(&mut self, now: u64) -> i64 {
        self.advance(now);
        self.balance() / self.withdrawal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn grpc_throttle_stops_at_half_and_restarts_above_it() {
        // gRPC's own example: 4 tokens, ratio 1.6, threshold 2.
        let mut t = RetryThrottle::new(4.0, 1.6);
        t.record_failure(); // 3
        assert!(t.allows_retry());
        t.record_success(); // 4.6 capped at 4
        assert_eq!(t.milli_tokens(), 4000);
        t.record_failure(); // 3
        assert!(t.allows_retry());
        t.record_failure(); // 2: at the threshold, not above it
        assert!(!t.allows_retry());
        t.record_success(); // 3.6
        assert!(t.allows_retry());
        for _ in 0..10 {
            t.record_failure();
        }
        assert_eq!(t.milli_tokens(), 0, "never below zero");
        t.record_success(); // 1.6
        assert!(!t.allows_retry());
        t.record_success(); // 3.2
        assert!(t.allows_retry());
    }

    #[test]
    fn grpc_throttle_keeps_thousandths() {
        let mut t = RetryThrottle::new(10.0, 0.0015);
        assert_eq!(t.ratio, 2, "0.0015 rounds to 2 thousandths");
        for _ in 0..5 {
            t.record_failure();
        }
        assert_eq!(t.milli_tokens(), 5000);
        assert!(!t.allows_retry());
        t.record_success();
        assert!(t.allows_retry(), "5.002 > 5");
    }

    #[test]
    fn finagle_budget_allows_percent_of_requests_plus_the_reserve() {
        // 20%: a retry costs 5,000, a request earns 1,000; reserve 1/s x 10 s = 10 retries.
        let mut b = PercentBudget::new(0.2, 1.0, 10 * S);
        assert_eq!(b.retries_left(0), 10);
        for _ in 0..50 {
            b.deposit(0);
        }
        assert_eq!(b.retries_left(0), 20, "10 from the reserve, 50 x 20%");
        for _ in 0..20 {
            assert!(b.can_withdraw(0));
            b.withdraw(0);
        }
        assert!(!b.can_withdraw(0));
        // The slice of t = 0 expires at the 10th slice boundary after it (10 s), not before.
        assert!(!b.can_withdraw(10 * S - 1));
        assert!(b.can_withdraw(10 * S));
        assert_eq!(b.retries_left(10 * S), 10, "only the reserve is left");
    }

    #[test]
    fn finagle_budget_expires_slices_one_by_one() {
        // No reserve, 50%: 2 requests pay one retry.
        let mut b = PercentBudget::new(0.5, 0.0, S);
        b.deposit(0); // slice 0
        b.deposit(S / 10); // slice 1
        assert_eq!(b.retries_left(S / 10), 1);
        b.withdraw(S / 10);
        assert_eq!(b.retries_left(S / 10), 0);
        // At 1 s slice 0 (+1,000) expires, leaving -1,000 in the window.
        assert!(!b.can_withdraw(S));
        b.deposit(S);
        b.deposit(S);
        assert_eq!(b.retries_left(S), 0, "1,000 net: below a 2,000 withdrawal");
        // At 1.1 s slice 1 (+1,000 -2,000) expires.
        assert_eq!(b.retries_left(S + S / 10), 1);
        // A long idle gap clears every slice.
        assert_eq!(b.retries_left(100 * S), 0);
    }

    #[test]
    fn finagle_budget_with_zero_percent_spends_only_the_reserve() {
        let mut b = PercentBudget::new(0.0, 2.0, 5 * S);
        for _ in 0..1000 {
            b.deposit(0);
        }
        assert_eq!(b.retries_left(0), 10, "2/s x 5 s");
    }

    #[test]
    fn budget_state_routes_events_to_its_kind() {
        let mut g = BudgetState::new(&RetryBudget::grpc(2.0, 1.0));
        g.on_request(0);
        assert!(g.allows(0));
        g.on_attempt(false); // 1: at the threshold
        assert!(!g.allows(0));
        g.commit(0); // no effect on a throttle
        g.on_attempt(true);
        assert!(g.allows(0));
        let mut f = BudgetState::new(&RetryBudget::Percent {
            percent: 1.0,
            min_retries_per_s: 0.0,
            ttl: std::time::Duration::from_secs(1),
        });
        f.on_attempt(false); // no effect on a percentage budget
        assert!(!f.allows(0));
        f.on_request(0);
        assert!(f.allows(0));
        f.commit(0);
        assert!(!f.allows(0));
    }
}
