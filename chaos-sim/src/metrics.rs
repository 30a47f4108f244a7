//! What one run measured.

pub(crate) mod latency_counts;

use crate::engine::EnvironmentTotals;
use crate::timeline::Timeline;
use hdrhistogram::Histogram;

/// Highest latency the histogram tracks exactly: 24 hours in nanoseconds (larger values are
/// clamped to it). The engine counts latencies in the same layout
/// ([`latency_counts::ThreeDigitCounts`]) and hands them over at the end of a run.
const HISTOGRAM_MAX_NS: u64 = latency_counts::HIGHEST_TRACKABLE_NS;

/// Per-function counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionMetrics {
    /// Function name.
    pub name: String,
    /// Invocations that ran (billed).
    pub invocations: u64,
    /// Invocations that needed a new environment.
    pub cold_starts: u64,
    /// Invocations refused with 429 (concurrency or scaling rate).
    pub throttles: u64,
    /// Invocations that hit the function timeout.
    pub timeouts: u64,
    /// Invocations that returned an error (timeouts excluded).
    pub errors: u64,
    /// Most concurrent executions.
    pub peak_concurrency: u64,
    /// Billed memory-time, MB x ms (1 ms granularity, init included).
    pub billed_mb_ms: u64,
    /// Cost in dollars.
    pub cost_usd: f64,
    /// The span the environment averages cover, from 0, nanoseconds: until the last request
    /// finished (`RunMetrics::work_end_ns`) or the last invocation of any function ended,
    /// whichever is later.
    pub averaged_over_ns: u64,
    /// Running environments (executions, cold starts included) integrated over
    /// `averaged_over_ns`: environment-nanoseconds.
    pub running_environment_ns: u128,
    /// Idle warm environments integrated over `averaged_over_ns`, environment-nanoseconds.
    /// An idle environment counts until it is reused, its keep-alive ends, or the span ends.
    pub idle_environment_ns: u128,
    /// Time-averaged running environments (`running_environment_ns` / `averaged_over_ns`; 0
    /// when that is 0): the concurrency people size capacity with, next to
    /// `peak_concurrency`.
    pub mean_concurrency: f64,
    /// Time-averaged idle warm environments over `averaged_over_ns`.
    pub mean_idle_environments: f64,
    /// Environments retired during the run: idle past their keep-alive, or discarded after
    /// a function timeout.
    pub environments_retired: u64,
    /// Environments alive (running or warm) at the end of `averaged_over_ns`.
    pub environments_alive_at_end: u64,
    /// Sum of the lifespans of retired environments (creation to retirement), nanoseconds.
    pub environment_lifespan_sum_ns: u128,
    /// Longest lifespan of a retired environment, nanoseconds (0 when none retired).
    pub environment_lifespan_max_ns: u64,
}

impl FunctionMetrics {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// Time-averaged warm pool: running plus idle environments.
    pub fn mean_warm_environments(&self) -> f64 {
        self.mean_concurrency + self.mean_idle_environments
    }

    /// Mean lifespan of the environments retired during the run, nanoseconds; NaN when none
    /// was retired (every environment lived to the end, or none was created).
    pub fn environment_lifespan_mean_ns(&self) -> f64 {
        if self.environments_retired == 0 {
            f64::NAN
        } else {
            self.environment_lifespan_sum_ns as f64 / self.environments_retired as f64
        }
    }

    /// Takes the environment totals over 0 to `end_ns`.
    pub(crate) fn set_environments(&mut self, totals: EnvironmentTotals, end_ns: u64) {
        let per_run = |area: u128| {
            if end_ns == 0 {
                0.0
            } else {
                area as f64 / end_ns as f64
            }
        };
        self.averaged_over_ns = end_ns;
        self.running_environment_ns = totals.running_ns;
        self.idle_environment_ns = totals.idle_ns;
        self.mean_concurrency = per_run(totals.running_ns);
        self.mean_idle_environments = per_run(totals.idle_ns);
        self.environments_retired = totals.retired;
        self.environments_alive_at_end = totals.alive_at_end;
        self.environment_lifespan_sum_ns = totals.lifespan_sum_ns;
        self.environment_lifespan_max_ns = totals.lifespan_max_ns;
    }
}

/// Everything one simulation run counted.
#[derive(Clone, Debug)]
pub struct RunMetrics {
    /// Requests that arrived.
    pub requests: u64,
    /// Requests that succeeded without a fallback.
    pub succeeded: u64,
    /// Requests that succeeded because a fallback value was served somewhere.
    pub fallback_served: u64,
    /// Requests that failed by a timeout.
    pub failed_timeout: u64,
    /// Requests that failed by a throttle.
    pub failed_throttle: u64,
    /// Requests that failed by another error.
    pub failed_error: u64,
    /// Requests still running when the run ended.
    pub in_flight: u64,
    /// End-to-end latency of successful requests (fallbacks included), nanoseconds.
    pub latency: Histogram<u64>,
    /// Dependency attempts sent (first tries, retries, hedges, failovers).
    pub attempts: u64,
    /// Retries sent.
    pub retries: u64,
    /// Hedged attempts sent.
    pub hedges: u64,
    /// Calls moved to another region.
    pub failovers: u64,
    /// Attempts refused by an open circuit breaker.
    pub short_circuited: u64,
    /// Times a breaker opened.
    pub breaker_opened: u64,
    /// Retries refused by the SDK retry quota.
    pub retry_quota_exhausted: u64,
    /// Retries a call's retry budget refused (gRPC throttling or a percentage budget).
    pub retries_denied_by_budget: u64,
    /// Attempts a token bucket throttled.
    pub dependency_throttles: u64,
    /// Conditional writes that conflicted.
    pub conflicts: u64,
    /// Work a server dropped because its caller had given up.
    pub dropped_work: u64,
    /// Work a server served although its caller had given up.
    pub abandoned_work_served: u64,
    /// Attempts a partition held in the network until its window ended.
    pub partition_held: u64,
    /// Requests that reached a token bucket, queueing server or optimistic item after their
    /// caller had given up on them (held by a partition or a hop past the caller's timeout).
    pub late_deliveries: u64,
    /// Work a server shed when a worker took it, because its service would have ended at or
    /// after its caller's deadline (`abandoned = "drop_late"`).
    pub shed_late: u64,
    /// Work a server shed because it had waited longer than its controlled-delay bound.
    pub shed_queue_delay: u64,
    /// Longest server waiting line.
    pub peak_server_queue: u64,
    /// Function invocations that ran.
    pub invocations: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Function throttles (429).
    pub function_throttles: u64,
    /// Function timeouts.
    pub function_timeouts: u64,
    /// Most concurrent executions in one region.
    pub peak_concurrency: u64,
    /// Most concurrent executions of unreserved functions in one region.
    pub peak_unreserved_concurrency: u64,
    /// Asynchronous events accepted.
    pub async_events: u64,
    /// Platform retries of asynchronous events.
    pub async_retries: u64,
    /// Events and messages sent to the dead-letter count.
    pub dead_lettered: u64,
    /// Messages published to queues.
    pub messages_published: u64,
    /// Messages redelivered after a failed batch.
    pub redeliveries: u64,
    /// Total cost in dollars.
    pub cost_usd: f64,
    /// Per-function counters, in definition order.
    pub functions: Vec<FunctionMetrics>,
    /// Events processed.
    pub events: u64,
    /// Simulated time of the last event processed, nanoseconds (a late timer, a detached
    /// invocation or a retry can run past the last request's end).
    pub end_time_ns: u64,
    /// Simulated time the last request finished, nanoseconds: when the work the load brought
    /// ended. When requests are still in flight at the end (a stopped run, a drain cut short),
    /// the clock at the end instead.
    pub work_end_ns: u64,
    /// Timers dropped unprocessed because their step had already finished (mostly function
    /// timeouts of invocations that returned in time); not counted in `events`.
    pub cancelled_timers: u64,
    /// Events found earlier than the clock (must be 0).
    pub time_regressions: u64,
    /// Most step frames alive at once (memory tracks this, not the request count).
    pub peak_frames: u64,
    /// Step frames alive at the end.
    pub frames_in_flight_at_end: u64,
    /// Most events waiting in the heap at once (fixed-delay timers excluded).
    pub peak_event_queue: u64,
    /// Why the run stopped before its end, when a resource bound stopped it (the work budget
    /// `max_events`, or the frames or events in flight); `None` for a run that ended.
    pub stopped: Option<String>,
    /// Per-interval series (see [`crate::timeline`]).
    pub timeline: Timeline,
}

impl RunMetrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: 0,
            succeeded: 0,
            fallback_served: 0,
            failed_timeout: 0,
            failed_throttle: 0,
            failed_error: 0,
            in_flight: 0,
            latency: Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_hist())),
            attempts: 0,
            retries: 0,
            hedges: 0,
            failovers: 0,
            short_circuited: 0,
            breaker_opened: 0,
            retry_quota_exhausted: 0,
            retries_denied_by_budget: 0,
            dependency_throttles: 0,
            conflicts: 0,
            dropped_work: 0,
            abandoned_work_served: 0,
            partition_held: 0,
            late_deliveries: 0,
            shed_late: 0,
            shed_queue_delay: 0,
            peak_server_queue: 0,
            invocations: 0,
            cold_starts: 0,
            function_throttles: 0,
            function_timeouts: 0,
            peak_concurrency: 0,
            peak_unreserved_concurrency: 0,
            async_events: 0,
            async_retries: 0,
            dead_lettered: 0,
            messages_published: 0,
            redeliveries: 0,
            cost_usd: 0.0,
            functions: Vec::new(),
            events: 0,
            end_time_ns: 0,
            work_end_ns: 0,
            cancelled_timers: 0,
            time_regressions: 0,
            peak_frames: 0,
            frames_in_flight_at_end: 0,
            peak_event_queue: 0,
            stopped: None,
            timeline: Timeline::default(),
        }
    }

    /// Requests that finished (succeeded or failed).
    pub fn completed(&self) -> u64 {
        self.succeeded + self.fallback_served + self.failed()
    }

    /// The fraction of answered requests (successes and fallbacks, whose latencies the
    /// percentiles describe) slower than `over_ns`; NaN when none was answered. Latencies
    /// within the histogram's resolution (0.1%) of `over_ns` count as not slower.
    pub fn slow_rate(&self, over_ns: u64) -> f64 {
        let answered = self.latency.len();
        if answered == 0 {
            return f64::NAN;
        }
        let at_most = self.latency.count_between(0, over_ns);
        answered.saturating_sub(at_most) as f64 / answered as f64
    }

    /// Requests that failed, all causes.
    pub fn failed(&self) -> u64 {
        self.failed_timeout + self.failed_throttle + self.failed_error
    }

    /// Successes (fallbacks included) over requests; NaN (nothing measured: JSON `null`, and
    /// every bound on it fails) when there were no requests.
    pub fn success_rate(&self) -> f64 {
        ratio(
            self.succeeded + self.fallback_served,
            self.requests,
            f64::NAN,
        )
    }

    /// Requests failed by a throttle over requests; NaN when there were no requests.
    pub fn throttle_rate(&self) -> f64 {
        ratio(self.failed_throttle, self.requests, f64::NAN)
    }

    /// Latency quantile `q` of successful requests, nanoseconds (0 with no successes).
    pub fn latency_quantile_ns(&self, q: f64) -> u64 {
        if self.latency.is_empty() {
            0
        } else {
            self.latency.value_at_quantile(q)
        }
    }
}

fn ratio(a: u64, b: u64, empty: f64) -> f64 {
    if b == 0 { empty } else { a as f64 / b as f64 }
}

#[cold]
fn unreachable_hist() -> Histogram<u64> {
    // 3 significant figures and these bounds are valid constants for hdrhistogram.
    panic!("internal invariant: constant histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(succeeded: u64, fallback: u64, timeout: u64, throttle: u64, error: u64) -> RunMetrics {
        let mut m = RunMetrics::new();
        m.succeeded = succeeded;
        m.fallback_served = fallback;
        m.failed_timeout = timeout;
        m.failed_throttle = throttle;
        m.failed_error = error;
        m.requests = succeeded + fallback + timeout + throttle + error;
        m
    }

    #[test]
    fn success_rate_counts_fallbacks_as_successes() {
        let m = run(60, 20, 10, 5, 5);
        assert_eq!(m.success_rate(), 0.8);
        assert_eq!(m.failed(), 20);
        assert_eq!(m.completed(), 100);
        assert_eq!(run(0, 10, 0, 0, 0).success_rate(), 1.0);
    }

    #[test]
    fn throttle_rate_is_throttled_failures_over_requests() {
        let m = run(80, 0, 10, 6, 4);
        assert_eq!(m.throttle_rate(), 0.06);
        // Requests still in flight count in the denominator.
        let mut m = run(50, 0, 0, 25, 0);
        m.requests = 100;
        assert_eq!(m.throttle_rate(), 0.25);
        assert_eq!(m.success_rate(), 0.5);
    }

    #[test]
    fn rates_of_a_run_without_requests_are_not_numbers() {
        let m = RunMetrics::new();
        assert!(m.success_rate().is_nan());
        assert!(m.throttle_rate().is_nan());
        assert_eq!(m.latency_quantile_ns(0.99), 0);
    }
}
