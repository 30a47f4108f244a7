//! The execution environments of one function over time: how many ran and idled on average,
//! and how long each lived, for the platform metrics people size capacity with.
//!
//! Running environments are integrated as the area under their count, exact in integer
//! nanoseconds: each running period adds its end minus its start, so the ledger only sums the
//! times periods start and end (no multiplication per change) and settles the periods still
//! running at the end. An idle environment's period is known exactly only when it ends: it is
//! reused (the period ends now), or found expired (it ended at `idle since + keep-alive`,
//! however much later the engine looks), or the run ends (it ends at the end of the run or at
//! its expiry, whichever comes first). Each period is added when it ends, so expiry needs no
//! timer and costs nothing per event.

/// An idle warm environment of a function.
#[derive(Clone, Copy, Debug)]
pub(super) struct IdleEnvironment {
    /// When it became idle.
    pub(super) since: u64,
    /// When it was created (its cold start began).
    pub(super) born: u64,
    /// Its slot of SDK retry quotas in the function's `FnState::env_quotas` (`NONE`: none).
    pub(super) quota_slot: u32,
}

/// One function's environment accounting.
#[derive(Debug, Default)]
pub(super) struct EnvironmentLedger {
    /// Sum of the times running periods started.
    starts_ns: u128,
    /// Sum of the times running periods ended.
    ends_ns: u128,
    /// When the count of running environments last changed.
    last_change: u64,
    /// Idle environments x nanoseconds, over idle periods that ended.
    idle_ns: u128,
    /// Environments retired (expired idle, or discarded after a timeout).
    retired: u64,
    /// Sum and largest of their lifespans, nanoseconds.
    lifespan_sum_ns: u128,
    lifespan_max_ns: u64,
}

/// What the ledger reports at the end of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct EnvironmentTotals {
    pub(crate) running_ns: u128,
    pub(crate) idle_ns: u128,
    pub(crate) retired: u64,
    pub(crate) alive_at_end: u64,
    pub(crate) lifespan_sum_ns: u128,
    pub(crate) lifespan_max_ns: u64,
}

impl EnvironmentLedger {
    /// An environment starts running at `now`.
    #[inline(always)]
    pub(super) fn starts_running(&mut self, now: u64) {
        self.starts_ns += u128::from(now);
        self.last_change = now;
    }

    /// A running environment stops running at `now`.
    #[inline(always)]
    pub(super) fn stops_running(&mut self, now: u64) {
        self.ends_ns += u128::from(now);
        self.last_change = now;
    }

    /// When the count of running environments last changed.
    pub(super) fn last_change(&self) -> u64 {
        self.last_change
    }

    /// `env` is taken from the idle pool at `now` (within its keep-alive).
    #[inline]
    pub(super) fn reused(&mut self, env: IdleEnvironment, now: u64) {
        self.idle_ns += u128::from(now - env.since);
    }

    /// `env` was found expired: it was idle until `since + keep_alive` and retired then.
    pub(super) fn expired(&mut self, env: IdleEnvironment, keep_alive: u64) {
        let end = env.since.saturating_add(keep_alive);
        self.idle_ns += u128::from(end - env.since);
        self.retire(env.born, end);
    }

    /// An environment created at `born` ends at `at`.
    pub(super) fn retire(&mut self, born: u64, at: u64) {
        let lifespan = at.saturating_sub(born);
        self.retired += 1;
        self.lifespan_sum_ns += u128::from(lifespan);
        self.lifespan_max_ns = self.lifespan_max_ns.max(lifespan);
    }

    /// Closes the books at `end`, the end of the span the averages cover (not before
    /// `last_change`): `running` environments still running, and the idle pool as it stands
    /// (expired environments retired at their expiry, the rest alive at the end).
    pub(super) fn finish(
        mut self,
        end: u64,
        running: u32,
        idle: &[IdleEnvironment],
        keep_alive: u64,
    ) -> EnvironmentTotals {
        // Closed periods add end minus start; the `running` open ones end at `end`.
        let running_ns = self.ends_ns + u128::from(running) * u128::from(end) - self.starts_ns;
        let mut alive_at_end = u64::from(running);
        for &env in idle {
            let expiry = env.since.saturating_add(keep_alive);
            if expiry <= end {
                self.expired(env, keep_alive);
            } else {
                self.idle_ns += u128::from(end - env.since);
                alive_at_end += 1;
            }
        }
        EnvironmentTotals {
            running_ns,
            idle_ns: self.idle_ns,
            retired: self.retired,
            alive_at_end,
            lifespan_sum_ns: self.lifespan_sum_ns,
            lifespan_max_ns: self.lifespan_max_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn running_time_is_the_area_under_the_count() {
        let mut ledger = EnvironmentLedger::default();
        ledger.starts_running(S); // 0 -> 1 at 1 s
        ledger.starts_running(2 * S); // 1 -> 2 at 2 s
        ledger.stops_running(4 * S); // 2 -> 1 at 4 s
        assert_eq!(ledger.last_change(), 4 * S);
        let totals = ledger.finish(5 * S, 1, &[], S);
        // 1 x 1 s + 2 x 2 s + 1 x 1 s.
        assert_eq!(totals.running_ns, u128::from(6 * S));
        assert_eq!(totals.alive_at_end, 1);
    }

    #[test]
    fn idle_periods_end_at_reuse_expiry_or_the_end_of_the_run() {
        let mut ledger = EnvironmentLedger::default();
        let keep_alive = 10 * S;
        ledger.reused(
            IdleEnvironment {
                since: S,
                born: 0,
                quota_slot: 0,
            },
            3 * S,
        ); // 2 s idle
        ledger.expired(
            IdleEnvironment {
                since: 4 * S,
                born: S,
                quota_slot: 0,
            },
            keep_alive,
        ); // 10 s, dies at 14 s
        let idle = [
            IdleEnvironment {
                since: 5 * S,
                born: 0,
                quota_slot: 0,
            }, // expires at 15 s: before the end
            IdleEnvironment {
                since: 15 * S,
                born: 2 * S,
                quota_slot: 0,
            }, // still warm at 20 s
        ];
        let totals = ledger.finish(20 * S, 0, &idle, keep_alive);
        assert_eq!(totals.idle_ns, u128::from((2 + 10 + 10 + 5) * S));
        assert_eq!(totals.retired, 2);
        assert_eq!(totals.lifespan_sum_ns, u128::from(13 * S + 15 * S));
        assert_eq!(totals.lifespan_max_ns, 15 * S);
        assert_eq!(totals.alive_at_end, 1);
    }
}
