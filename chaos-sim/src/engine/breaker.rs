//! A circuit breaker's state: closed, open until a time, or half-open with a probe budget.

use crate::model::CircuitBreaker;
use crate::program::nanos;

/// Where a breaker is in its cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BreakerMode {
    /// Calls go through; consecutive failures are counted.
    Closed,
    /// Calls are refused until `open_until`.
    Open,
    /// Up to `half_open_probes` calls go through; all must succeed to close.
    HalfOpen,
}

/// One breaker (per call site and replica). Times are virtual nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Breaker {
    pub(crate) mode: BreakerMode,
    failures: u32,
    open_until: u64,
    probes: u32,
    probe_successes: u32,
    probe_started: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            mode: BreakerMode::Closed,
            failures: 0,
            open_until: 0,
            probes: 0,
            probe_successes: 0,
            probe_started: 0,
        }
    }
}

impl Breaker {
    /// Whether a call may go out at `now`. An open breaker turns half-open once its open time
    /// has passed; a half-open one lets `half_open_probes` probes through (a probe whose caller
    /// vanished never reports: it is given up after `open_for`).
    pub(crate) fn allows(&mut self, now: u64, cfg: &CircuitBreaker) -> bool {
        if self.mode == BreakerMode::Open {
            if now < self.open_until {
                return false;
            }
            self.mode = BreakerMode::HalfOpen;
            self.probes = 0;
            self.probe_successes = 0;
        }
        if self.mode == BreakerMode::HalfOpen {
            if self.probes >= cfg.half_open_probes
                && now.saturating_sub(self.probe_started) > nanos(cfg.open_for)
            {
                self.probes = self.probe_successes;
            }
            if self.probes >= cfg.half_open_probes {
                return false;
            }
            self.probes += 1;
            self.probe_started = now;
        }
        true
    }

    /// Records a call's result at `now`; returns whether the breaker opened.
    pub(crate) fn record(&mut self, now: u64, cfg: &CircuitBreaker, success: bool) -> bool {
        match (self.mode, success) {
            (BreakerMode::Closed, true) => self.failures = 0,
            (BreakerMode::Closed, false) => {
                self.failures = self.failures.saturating_add(1);
                if self.failures >= cfg.failure_threshold {
                    self.open(now, cfg);
                    return true;
                }
            }
            (BreakerMode::HalfOpen, true) => {
                self.probe_successes += 1;
                if self.probe_successes >= cfg.half_open_probes {
                    self.mode = BreakerMode::Closed;
                    self.failures = 0;
                }
            }
            (BreakerMode::HalfOpen, false) => {
                self.open(now, cfg);
                return true;
            }
            (BreakerMode::Open, _) => {}
        }
        false
    }

    fn open(&mut self, now: u64, cfg: &CircuitBreaker) {
        self.mode = BreakerMode::Open;
        self.open_until = now.saturating_add(nanos(cfg.open_for));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    fn cfg(threshold: u32, probes: u32) -> CircuitBreaker {
        CircuitBreaker {
            failure_threshold: threshold,
            open_for: Duration::from_secs(10),
            half_open_probes: probes,
        }
    }

    fn opened(threshold: u32, probes: u32) -> (Breaker, CircuitBreaker) {
        let cfg = cfg(threshold, probes);
        let mut b = Breaker::default();
        for i in 0..threshold {
            assert!(b.allows(0, &cfg));
            assert_eq!(b.record(0, &cfg, false), i + 1 == threshold);
        }
        assert_eq!(b.mode, BreakerMode::Open);
        (b, cfg)
    }

    #[test]
    fn it_opens_at_the_failure_threshold_not_before() {
        let cfg = cfg(3, 1);
        let mut b = Breaker::default();
        assert!(!b.record(0, &cfg, false));
        assert!(!b.record(0, &cfg, false));
        assert_eq!(b.mode, BreakerMode::Closed);
        assert!(b.record(0, &cfg, false));
        assert_eq!(b.mode, BreakerMode::Open);
    }

    #[test]
    fn a_success_resets_the_consecutive_failures() {
        let cfg = cfg(2, 1);
        let mut b = Breaker::default();
        assert!(!b.record(0, &cfg, false));
        assert!(!b.record(0, &cfg, true));
        assert!(!b.record(0, &cfg, false));
        assert_eq!(b.mode, BreakerMode::Closed);
        assert!(b.record(0, &cfg, false));
    }

    #[test]
    fn an_open_breaker_refuses_calls_until_its_open_time_has_passed() {
        let (mut b, cfg) = opened(2, 1);
        assert!(!b.allows(1, &cfg));
        assert!(!b.allows(10 * S - 1, &cfg));
        assert_eq!(b.mode, BreakerMode::Open);
        assert!(b.allows(10 * S, &cfg));
        assert_eq!(b.mode, BreakerMode::HalfOpen);
    }

    #[test]
    fn half_open_lets_exactly_the_probe_limit_through() {
        let (mut b, cfg) = opened(1, 2);
        assert!(b.allows(10 * S, &cfg));
        assert!(b.allows(10 * S, &cfg));
        assert!(!b.allows(10 * S, &cfg));
        // Still refused while the probes are out and not yet given up on.
        assert!(!b.allows(20 * S, &cfg));
    }

    #[test]
    fn all_probes_succeeding_closes_it_and_one_failure_reopens_it() {
        let (mut b, cfg) = opened(1, 2);
        assert!(b.allows(10 * S, &cfg));
        assert!(b.allows(10 * S, &cfg));
        assert!(!b.record(11 * S, &cfg, true));
        assert_eq!(b.mode, BreakerMode::HalfOpen);
        assert!(!b.record(11 * S, &cfg, true));
        assert_eq!(b.mode, BreakerMode::Closed);
        // Closed again: it counts failures from zero.
        assert!(b.record(12 * S, &cfg, false));

        let (mut b, cfg) = opened(1, 2);
        assert!(b.allows(10 * S, &cfg));
        assert!(b.record(10 * S + 5, &cfg, false));
        assert_eq!(b.mode, BreakerMode::Open);
        assert!(!b.allows(20 * S, &cfg));
        assert!(b.allows(20 * S + 5, &cfg));
    }

    #[test]
    fn probes_that_never_report_are_given_up_after_open_for() {
        let (mut b, cfg) = opened(1, 1);
        assert!(b.allows(10 * S, &cfg));
        assert!(!b.allows(20 * S, &cfg));
        assert!(b.allows(20 * S + 1, &cfg));
    }

    #[test]
    fn results_while_open_change_nothing() {
        let (mut b, cfg) = opened(1, 1);
        assert!(!b.record(1, &cfg, true));
        assert!(!b.record(1, &cfg, false));
        assert!(!b.allows(10 * S - 1, &cfg));
    }
}
