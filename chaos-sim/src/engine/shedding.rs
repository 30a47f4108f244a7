//! Load shedding at a server's waiting line: which request a worker takes next (FIFO, LIFO,
//! adaptive LIFO) and the controlled-delay bound on waiting (CoDel). Plain state, unit-tested
//! alone; `servers.rs` applies it.

use crate::model::{ControlledDelay, Discipline};
use std::collections::VecDeque;
use std::time::Duration;

/// Takes the request a worker serves next from `waiting`.
#[inline]
pub(crate) fn take_next<T>(waiting: &mut VecDeque<T>, discipline: Discipline) -> Option<T> {
    match discipline {
        Discipline::Fifo => waiting.pop_front(),
        Discipline::Lifo => waiting.pop_back(),
        Discipline::AdaptiveLifo { standing_queue } => {
            if waiting.len() > standing_queue as usize {
                waiting.pop_back()
            } else {
                waiting.pop_front()
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The controlled-delay state of one server replica: the least sojourn seen in the current
/// interval and whether the previous interval was overloaded.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct QueueDelayState {
    started: bool,
    interval_end: u64,
    min_sojourn: u64,
    overloaded: bool,
}

impl QueueDelayState {
    /// Records a request leaving the waiting line at `now` after waiting `sojourn` (0 for one
    /// that found a free worker) and says whether to shed it. An interval starts at the
    /// first request taken after the previous one ended.
    pub(crate) fn sheds(&mut self, now: u64, sojourn: u64, bound: &ControlledDelay) -> bool {
        let target = nanos(bound.target);
        let interval = nanos(bound.interval);
        if !self.started || now >= self.interval_end {
            // A standing queue: even the shortest wait of the interval was above target.
            self.overloaded = self.started && self.min_sojourn > target;
            self.started = true;
            self.interval_end = now.saturating_add(interval);
            self.min_sojourn = sojourn;
        } else {
            self.min_sojourn = self.min_sojourn.min(sojourn);
        }
        // Under a standing queue, twice the target (folly's Codel): the work served then
        // waited between the target and twice it, so the standing queue stays detected
        // instead of flickering off at every interval.
        let limit = if self.overloaded {
            target.saturating_mul(2)
        } else {
            interval
        };
        sojourn > limit
    }

    /// Whether the last completed interval had a standing queue.
    #[cfg(test)]
    pub(crate) fn overloaded(&self) -> bool {
        self.overloaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn bound() -> ControlledDelay {
        ControlledDelay {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn adaptive_lifo_is_fifo_up_to_the_threshold_and_lifo_above_it() {
        let adaptive = Discipline::AdaptiveLifo { standing_queue: 3 };
        let mut line: VecDeque<u32> = (1..=3).collect();
        assert_eq!(take_next(&mut line, adaptive), Some(1), "3 waiting: oldest");
        let mut line: VecDeque<u32> = (1..=5).collect();
        assert_eq!(take_next(&mut line, adaptive), Some(5), "5 waiting: newest");
        assert_eq!(take_next(&mut line, adaptive), Some(4), "4 waiting: newest");
        assert_eq!(
            take_next(&mut line, adaptive),
            Some(1),
            "3 waiting: oldest again"
        );
        assert_eq!(take_next(&mut line, Discipline::Lifo), Some(3));
        assert_eq!(take_next(&mut line, Discipline::Fifo), Some(2));
        assert_eq!(take_next(&mut line, adaptive), None);
    }

    #[test]
    fn a_least_wait_at_the_target_is_not_a_standing_queue() {
        let mut s = QueueDelayState::default();
        assert!(!s.sheds(0, 5 * MS, &bound()));
        assert!(!s.sheds(50 * MS, 30 * MS, &bound()));
        // The least wait of interval 1 was exactly the target: not above it.
        assert!(!s.sheds(100 * MS, 30 * MS, &bound()));
        assert!(!s.overloaded());
    }

    #[test]
    fn without_a_standing_queue_only_waits_over_the_interval_are_shed() {
        let mut s = QueueDelayState::default();
        assert!(!s.sheds(0, 0, &bound()));
        assert!(
            !s.sheds(10 * MS, 100 * MS, &bound()),
            "at the interval: kept"
        );
        assert!(s.sheds(20 * MS, 100 * MS + 1, &bound()));
        // The first interval's least sojourn was 0: the next is not overloaded.
        assert!(!s.sheds(100 * MS, 50 * MS, &bound()));
        assert!(!s.overloaded());
    }

    #[test]
    fn a_standing_queue_bounds_waits_at_twice_the_target_until_the_line_empties() {
        let mut s = QueueDelayState::default();
        // Interval 1 (0..100 ms): every request waited over 5 ms.
        assert!(!s.sheds(0, 6 * MS, &bound()));
        assert!(!s.sheds(50 * MS, 40 * MS, &bound()));
        // Interval 2 starts at 100 ms: overloaded, so 2 x 5 ms is the bound.
        assert!(s.sheds(100 * MS, 10 * MS + 1, &bound()));
        assert!(s.overloaded());
        assert!(
            !s.sheds(120 * MS, 10 * MS, &bound()),
            "at twice the target: kept"
        );
        // A request that found a free worker (0) proves the line emptied.
        assert!(!s.sheds(150 * MS, 0, &bound()));
        assert!(
            s.sheds(160 * MS, 11 * MS, &bound()),
            "overloaded until 200 ms"
        );
        assert!(!s.sheds(200 * MS, 11 * MS, &bound()), "interval 3 is not");
        assert!(!s.overloaded());
        // Interval 3's least sojourn was 11 ms: interval 4 is overloaded again.
        assert!(s.sheds(300 * MS, 11 * MS, &bound()));
    }
}
