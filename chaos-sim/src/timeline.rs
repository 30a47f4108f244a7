//! Per-interval series of a run: what happened when, in memory that grows with the number of
//! intervals, never with the number of requests.
//!
//! The engine keeps a recorder. Counters (arrivals, goodput, failures by cause, retries,
//! throttles) need no hook at all: before the first event at or past an interval's end is
//! processed, the recorder takes the difference of the run's running totals since the last
//! boundary, so every interval holds exactly what happened before its end and the series sum
//! to the run's totals. Levels (a function's concurrency, a dependency's waiting line) are
//! integrated over time as they change, for an exact time-average and a peak per interval.
//! Work in flight at a dependency is known when the work starts (its end time is drawn then),
//! so it is added to the intervals it overlaps at once. Latency quantiles come from one
//! bounded histogram laid out as hdrhistogram's (`metrics::latency_counts`), read and cleared (the
//! range it touched) at each boundary.

use crate::metrics::latency_counts::TwoDigitCounts;
use crate::metrics::{FunctionMetrics, RunMetrics};
use crate::model::Scenario;
use std::time::Duration;

/// Most intervals a run records. Past it the last interval stays open to the run's end (and
/// [`Timeline::open_ended`] says so), so a run longer than planned (a long drain, a 900 s hang)
/// cannot grow the series without bound.
pub const MAX_INTERVALS: usize = 100_000;

/// Intervals a run spans at most under the default interval (see [`interval_of`]).
pub const DEFAULT_INTERVALS: u64 = 120;

/// The interval when the run's length cannot be known before it runs (a closed loop bounded
/// by a request count): one second.
pub const FALLBACK_INTERVAL: Duration = Duration::from_secs(1);

/// The interval of `scenario`'s series: `[timeline] interval` when set; otherwise the smallest
/// of 1, 2 and 5 times a power of ten milliseconds at which the load's planned length spans at
/// most [`DEFAULT_INTERVALS`] intervals. The planned length is `duration`, or for an open loop
/// bounded only by `requests`, `requests / rate_per_s`; when neither tells (a closed loop
/// bounded by `requests`), [`FALLBACK_INTERVAL`].
pub fn interval_of(scenario: &Scenario) -> Duration {
    if let Some(interval) = scenario.timeline.interval {
        return interval;
    }
    let planned = scenario.duration.or_else(|| {
        let requests = scenario.requests?;
        match &scenario.load.shape {
            crate::model::LoadShape::Open(open) if open.rate_per_s > 0.0 => {
                Duration::try_from_secs_f64(requests as f64 / open.rate_per_s).ok()
            }
            _ => None,
        }
    });
    match planned {
        Some(length) => ladder_interval(length),
        None => FALLBACK_INTERVAL,
    }
}

/// The smallest 1-2-5 step (from 1 ms) at which `length` spans at most [`DEFAULT_INTERVALS`].
fn ladder_interval(length: Duration) -> Duration {
    let length_ms = length.as_millis();
    let mut decade: u128 = 1;
    loop {
        for step in [1, 2, 5] {
            let ms = step * decade;
            if length_ms <= ms * u128::from(DEFAULT_INTERVALS) {
                return Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
            }
        }
        decade *= 10;
    }
}

/// A function's series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionSeries {
    /// Function name.
    pub name: String,
    /// Time-averaged concurrent executions in each interval.
    pub concurrency_mean: Vec<f64>,
    /// Most concurrent executions in each interval.
    pub concurrency_peak: Vec<u64>,
    /// Invocations refused with 429 in each interval.
    pub throttles: Vec<u64>,
}

/// A dependency's series (all its regions together).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DependencySeries {
    /// Dependency name.
    pub name: String,
    /// Time-averaged length of the waiting line (queueing servers; 0 otherwise).
    pub queue_mean: Vec<f64>,
    /// Longest waiting line in each interval.
    pub queue_peak: Vec<u64>,
    /// Time-averaged attempts the dependency is working on: from when it starts serving an
    /// attempt until it answers (injected latency included; attempts an injected error failed
    /// never reached it and are not counted).
    pub in_flight_mean: Vec<f64>,
}

/// Per-interval series of one run. Interval `i` covers `[i * interval_ns, (i + 1) *
/// interval_ns)`; the last one ends at the run's last event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// Interval width, nanoseconds.
    pub interval_ns: u64,
    /// The last interval was held open to the run's end because the run outlasted
    /// [`MAX_INTERVALS`] intervals.
    pub open_ended: bool,
    /// Simulated time of the last arrival, nanoseconds (0 without arrivals).
    pub last_arrival_ns: u64,
    /// Requests that arrived in each interval.
    pub arrivals: Vec<u64>,
    /// Requests that finished successfully (fallbacks included) in each interval.
    pub goodput: Vec<u64>,
    /// Requests that failed by a timeout in each interval.
    pub failed_timeout: Vec<u64>,
    /// Requests that failed by a throttle in each interval.
    pub failed_throttle: Vec<u64>,
    /// Requests that failed by another error in each interval.
    pub failed_error: Vec<u64>,
    /// Retries sent in each interval.
    pub retries: Vec<u64>,
    /// Median latency of the requests that succeeded in each interval, nanoseconds (`None`:
    /// none did). 2 significant digits.
    pub latency_p50_ns: Vec<Option<u64>>,
    /// 99th percentile, as `latency_p50_ns`.
    pub latency_p99_ns: Vec<Option<u64>>,
    /// Per function, in definition order.
    pub functions: Vec<FunctionSeries>,
    /// Per dependency, in definition order.
    pub dependencies: Vec<DependencySeries>,
}

impl Timeline {
    /// Number of intervals recorded.
    pub fn len(&self) -> usize {
        self.arrivals.len()
    }

    /// True when no interval was recorded.
    pub fn is_empty(&self) -> bool {
        self.arrivals.is_empty()
    }

    /// Failed requests, all causes, in interval `i`.
    pub fn failed(&self, i: usize) -> u64 {
        self.failed_timeout[i] + self.failed_throttle[i] + self.failed_error[i]
    }
}

/// A level that changes at events: integrated over the current interval.
#[derive(Clone, Copy, Debug, Default)]
struct Level {
    level: u64,
    since: u64,
    /// Level x nanoseconds since the interval's start.
    integral: u128,
    peak: u64,
}

impl Level {
    #[inline]
    fn set(&mut self, now: u64, level: u64) {
        self.integral += u128::from(self.level) * u128::from(now - self.since);
        self.since = now;
        self.level = level;
        self.peak = self.peak.max(level);
    }

    /// Closes the interval at `end` (of length `length`): (mean, peak).
    fn close(&mut self, end: u64, length: u64) -> (f64, u64) {
        self.integral += u128::from(self.level) * u128::from(end - self.since);
        let mean = self.integral as f64 / length.max(1) as f64;
        let peak = self.peak;
        self.integral = 0;
        self.since = end;
        self.peak = self.level;
        (mean, peak)
    }
}

/// The running totals an interval's counts are differences of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Totals {
    arrivals: u64,
    goodput: u64,
    failed_timeout: u64,
    failed_throttle: u64,
    failed_error: u64,
    retries: u64,
}

impl Totals {
    fn of(arrivals: u64, m: &RunMetrics) -> Self {
        Self {
            arrivals,
            goodput: m.succeeded + m.fallback_served,
            failed_timeout: m.failed_timeout,
            failed_throttle: m.failed_throttle,
            failed_error: m.failed_error,
            retries: m.retries,
        }
    }
}

/// Builds a [`Timeline`] as the engine runs.
pub(crate) struct Recorder {
    /// Start of the next interval: the engine calls [`Recorder::roll`] before processing an
    /// event at or past it (`u64::MAX` once the last interval is held open).
    pub(crate) next_boundary: u64,
    interval_ns: u64,
    /// Start of the current interval.
    start: u64,
    last: Totals,
    last_throttles: Vec<u64>,
    /// This interval's successful latencies, to 2 significant digits (1% resolution; the
    /// run's percentiles keep 3), from 1 ns to 24 hours.
    latency: TwoDigitCounts,
    concurrency: Vec<Level>,
    queues: Vec<Level>,
    /// Each server replica's waiting line as last reported, and its dependency.
    replica_queue: Vec<(usize, u64)>,
    /// Dependency work-nanoseconds in the current interval, per dependency (u128: a plain
    /// add, which cannot overflow, costs less than a saturating one on this hot path).
    in_flight_now: Vec<u128>,
    /// Work-nanoseconds of work that runs past the current interval: `[interval offset from
    /// the current one - 1][dependency]`, flattened.
    in_flight_later: Vec<u64>,
    out: Timeline,
}

impl Recorder {
    /// A recorder of `interval` for functions and dependencies named in order; `replica_deps`
    /// maps each server replica to its dependency.
    pub(crate) fn new(
        interval: Duration,
        functions: impl Iterator<Item = String>,
        dependencies: impl Iterator<Item = String>,
        replica_deps: impl Iterator<Item = usize>,
    ) -> Self {
        let interval_ns = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let functions: Vec<FunctionSeries> = functions
            .map(|name| FunctionSeries {
                name,
                ..FunctionSeries::default()
            })
            .collect();
        let dependencies: Vec<DependencySeries> = dependencies
            .map(|name| DependencySeries {
                name,
                ..DependencySeries::default()
            })
            .collect();
        Self {
            next_boundary: interval_ns,
            interval_ns,
            start: 0,
            last: Totals::default(),
            last_throttles: vec![0; functions.len()],
            latency: TwoDigitCounts::new(),
            concurrency: vec![Level::default(); functions.len()],
            queues: vec![Level::default(); dependencies.len()],
            replica_queue: replica_deps.map(|d| (d, 0)).collect(),
            in_flight_now: vec![0; dependencies.len()],
            in_flight_later: Vec::new(),
            out: Timeline {
                interval_ns,
                functions,
                dependencies,
                ..Timeline::default()
            },
        }
    }

    /// A successful request's end-to-end latency.
    #[inline]
    pub(crate) fn record_latency(&mut self, ns: u64) {
        self.latency.record(ns.max(1));
    }

    /// A request arrived now.
    #[inline]
    pub(crate) fn arrival(&mut self, now: u64) {
        self.out.last_arrival_ns = now;
    }

    /// Function `f` now runs `active` executions.
    #[inline]
    pub(crate) fn concurrency(&mut self, f: usize, now: u64, active: u32) {
        self.concurrency[f].set(now, u64::from(active));
    }

    /// Server replica `r`'s waiting line now holds `len` items.
    #[inline]
    pub(crate) fn queue(&mut self, r: usize, now: u64, len: usize) {
        let (dep, old) = self.replica_queue[r];
        let len = len as u64;
        self.replica_queue[r].1 = len;
        let q = &mut self.queues[dep];
        let level = q.level + len - old;
        q.set(now, level);
    }

    /// Dependency `dep` works on an attempt from `now` for `duration`.
    #[inline]
    pub(crate) fn in_flight(&mut self, dep: usize, now: u64, duration: u64) {
        // `now` is before the next boundary: events at or past it roll the intervals first.
        if duration <= self.next_boundary - now {
            self.in_flight_now[dep] += u128::from(duration);
        } else {
            self.in_flight_from(dep, now, duration);
        }
    }

    /// Dependency `dep` works on an attempt for `duration` from `after` nanoseconds past
    /// `now` (a request that crosses the network first, its end drawn at issue time).
    #[inline]
    pub(crate) fn in_flight_after(&mut self, dep: usize, now: u64, after: u64, duration: u64) {
        if after.saturating_add(duration) <= self.next_boundary - now {
            self.in_flight_now[dep] += u128::from(duration);
        } else {
            self.in_flight_from(dep, now.saturating_add(after), duration);
        }
    }

    /// Time left in the current interval at `now` (before the next boundary).
    #[inline]
    pub(crate) fn room(&self, now: u64) -> u64 {
        self.next_boundary - now
    }

    /// Adds `work` nanoseconds of dependency `dep`'s work, all within the current interval.
    #[inline]
    pub(crate) fn add_in_flight_here(&mut self, dep: usize, work: u128) {
        self.in_flight_now[dep] += work;
    }

    /// Work from `start` (at or after the current interval's start) for `duration`, added to
    /// every interval it overlaps.
    #[cold]
    fn in_flight_from(&mut self, dep: usize, start: u64, duration: u64) {
        let end = start.saturating_add(duration);
        let here = self.next_boundary.min(end).saturating_sub(start);
        self.in_flight_now[dep] += u128::from(here);
        let deps = self.in_flight_now.len();
        // Intervals after the current one that the work overlaps, held to MAX_INTERVALS.
        let mut at = self.next_boundary.max(start);
        let mut offset =
            usize::try_from((at - self.next_boundary) / self.interval_ns).unwrap_or(usize::MAX);
        let room = MAX_INTERVALS.saturating_sub(self.out.len() + 1);
        while at < end && offset < room {
            // The end of the interval `offset` places after the current one.
            let interval_end = self
                .next_boundary
                .saturating_add(self.interval_ns.saturating_mul(offset as u64 + 1));
            let until = interval_end.min(end);
            let slot = offset * deps + dep;
            if self.in_flight_later.len() <= slot {
                self.in_flight_later.resize((offset + 1) * deps, 0);
            }
            self.in_flight_later[slot] = self.in_flight_later[slot].saturating_add(until - at);
            at = until;
            offset += 1;
        }
    }

    /// Closes every interval that ends at or before `time`, given the run's totals so far (all
    /// of them from events before `time`). Once per interval: kept out of the run loop.
    #[cold]
    #[inline(never)]
    pub(crate) fn roll(
        &mut self,
        time: u64,
        arrivals: u64,
        m: &RunMetrics,
        functions: &[FunctionMetrics],
    ) {
        while time >= self.next_boundary {
            let end = self.next_boundary;
            self.close(end, arrivals, m, functions);
            if self.out.len() + 1 >= MAX_INTERVALS {
                self.next_boundary = u64::MAX;
                self.out.open_ended = true;
            } else {
                self.next_boundary = end.saturating_add(self.interval_ns);
            }
        }
    }

    /// Closes the intervals up to the run's last event at `end` and returns the series, cut
    /// after the interval in which the work ended (`work_end`: the last request finished).
    /// What the run counted after that interval (a retry of detached work, a late answer
    /// nobody waits for) is added to its counts, so the series still sum to the run's
    /// totals, and the length of the series does not depend on such stragglers (nor on the
    /// engine's mode: one event per fan-out branch runs later events than a collapsed one).
    pub(crate) fn finish(
        &mut self,
        end: u64,
        work_end: u64,
        arrivals: u64,
        m: &RunMetrics,
        functions: &[FunctionMetrics],
    ) -> Timeline {
        self.roll(end, arrivals, m, functions);
        // The last interval is a whole one: nothing changes after the last event.
        let close_at = if self.out.open_ended {
            end.max(self.start)
        } else {
            self.start.saturating_add(self.interval_ns)
        };
        self.close(close_at, arrivals, m, functions);
        let keep = usize::try_from(work_end / self.interval_ns + 1)
            .unwrap_or(usize::MAX)
            .min(self.out.len());
        let out = &mut self.out;
        fold_after(&mut out.arrivals, keep);
        fold_after(&mut out.goodput, keep);
        fold_after(&mut out.failed_timeout, keep);
        fold_after(&mut out.failed_throttle, keep);
        fold_after(&mut out.failed_error, keep);
        fold_after(&mut out.retries, keep);
        out.latency_p50_ns.truncate(keep);
        out.latency_p99_ns.truncate(keep);
        for f in &mut out.functions {
            fold_after(&mut f.throttles, keep);
            f.concurrency_mean.truncate(keep);
            f.concurrency_peak.truncate(keep);
        }
        for d in &mut out.dependencies {
            d.queue_mean.truncate(keep);
            d.queue_peak.truncate(keep);
            d.in_flight_mean.truncate(keep);
        }
        std::mem::take(&mut self.out)
    }

    fn close(&mut self, end: u64, arrivals: u64, m: &RunMetrics, functions: &[FunctionMetrics]) {
        let length = end - self.start;
        let now = Totals::of(arrivals, m);
        let last = std::mem::replace(&mut self.last, now);
        let out = &mut self.out;
        out.arrivals.push(now.arrivals - last.arrivals);
        out.goodput.push(now.goodput - last.goodput);
        out.failed_timeout
            .push(now.failed_timeout - last.failed_timeout);
        out.failed_throttle
            .push(now.failed_throttle - last.failed_throttle);
        out.failed_error.push(now.failed_error - last.failed_error);
        out.retries.push(now.retries - last.retries);
        let quantiles = self.latency.quantiles(0.5, 0.99);
        out.latency_p50_ns.push(quantiles.map(|q| q.0));
        out.latency_p99_ns.push(quantiles.map(|q| q.1));
        self.latency.clear();
        for (i, series) in out.functions.iter_mut().enumerate() {
            let (mean, peak) = self.concurrency[i].close(end, length);
            series.concurrency_mean.push(mean);
            series.concurrency_peak.push(peak);
            let total = functions.get(i).map_or(0, |f| f.throttles);
            series.throttles.push(total - self.last_throttles[i]);
            self.last_throttles[i] = total;
        }
        let deps = self.in_flight_now.len();
        let carried = self.in_flight_later.len().min(deps);
        for (d, series) in out.dependencies.iter_mut().enumerate() {
            let (mean, peak) = self.queues[d].close(end, length);
            series.queue_mean.push(mean);
            series.queue_peak.push(peak);
            let work = self.in_flight_now[d];
            series
                .in_flight_mean
                .push(work as f64 / length.max(1) as f64);
            // The next interval starts with what earlier work carried into it.
            self.in_flight_now[d] = if d < carried {
                u128::from(self.in_flight_later[d])
            } else {
                0
            };
        }
        self.in_flight_later.drain(..carried);
        self.start = end;
    }
}

/// Adds the counts after the first `keep` entries to the last kept one and drops them.
fn fold_after(series: &mut Vec<u64>, keep: usize) {
    if keep == 0 || series.len() <= keep {
        return;
    }
    let tail: u64 = series.drain(keep..).sum();
    series[keep - 1] += tail;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(interval_ns: u64) -> Recorder {
        Recorder::new(
            Duration::from_nanos(interval_ns),
            ["f".to_string()].into_iter(),
            ["d".to_string()].into_iter(),
            [0usize].into_iter(),
        )
    }

    #[test]
    fn the_default_interval_spans_at_most_120_intervals_on_a_1_2_5_ladder() {
        let ms = |d: Duration| ladder_interval(d).as_millis();
        assert_eq!(ms(Duration::from_secs(600)), 5_000); // 120 intervals
        assert_eq!(ms(Duration::from_secs(601)), 10_000); // 61 intervals
        assert_eq!(ms(Duration::from_secs(60)), 500);
        assert_eq!(ms(Duration::from_secs(240)), 2_000);
        assert_eq!(ms(Duration::from_secs(241)), 5_000);
        assert_eq!(ms(Duration::from_millis(50)), 1);
        assert_eq!(ms(Duration::from_secs(3600)), 50_000); // 72 intervals
    }

    #[test]
    fn a_level_is_averaged_over_time_and_peaks_within_its_interval() {
        let mut r = recorder(100);
        r.concurrency(0, 10, 2); // 2 from 10 to 60
        r.concurrency(0, 60, 5); // 5 from 60 to 70
        r.concurrency(0, 70, 1); // 1 from 70 to 250
        let m = RunMetrics::new();
        let t = r.finish(250, 250, 0, &m, &[]);
        let f = &t.functions[0];
        assert_eq!(f.concurrency_peak, vec![5, 1, 1]);
        // (2*50 + 5*10 + 1*30) / 100 = 1.8; then 1 throughout, the last interval whole.
        assert_eq!(f.concurrency_mean, vec![1.8, 1.0, 1.0]);
    }

    #[test]
    fn work_in_flight_is_split_across_the_intervals_it_overlaps() {
        let mut r = recorder(100);
        r.in_flight(0, 50, 30); // inside interval 0
        r.in_flight(0, 90, 230); // 10 in 0, 100 in 1, 100 in 2, 20 in 3
        let m = RunMetrics::new();
        let t = r.finish(400, 399, 0, &m, &[]);
        assert_eq!(t.dependencies[0].in_flight_mean, vec![0.4, 1.0, 1.0, 0.2]);
        // Cut after the interval the work ended in: the rest is not shown.
        let mut r = recorder(100);
        r.in_flight(0, 90, 230);
        let t = r.finish(400, 150, 0, &m, &[]);
        assert_eq!(t.dependencies[0].in_flight_mean, vec![0.1, 1.0]);
    }

    #[test]
    fn work_that_starts_later_is_added_from_its_start() {
        let mut r = recorder(100);
        r.in_flight_after(0, 50, 10, 20); // 60..80, inside interval 0
        r.in_flight_after(0, 50, 40, 30); // 90..120: 10 in 0, 20 in 1
        r.in_flight_after(0, 50, 170, 230); // 220..450: 80 in 2, 100 in 3, 50 in 4
        let m = RunMetrics::new();
        let t = r.finish(500, 499, 0, &m, &[]);
        assert_eq!(
            t.dependencies[0].in_flight_mean,
            vec![0.3, 0.2, 0.8, 1.0, 0.5]
        );
    }

    #[test]
    fn counts_are_differences_of_the_totals_at_each_boundary() {
        let mut r = recorder(100);
        let mut m = RunMetrics::new();
        m.succeeded = 3;
        m.retries = 1;
        r.roll(150, 4, &m, &[]); // totals before 150: interval 0 closes with them
        m.succeeded = 5;
        m.failed_throttle = 2;
        r.roll(420, 9, &m, &[]); // intervals 1, 2, 3 close; 1 takes the change
        m.retries = 4;
        let t = r.finish(420, 420, 9, &m, &[]);
        assert_eq!(t.arrivals, vec![4, 5, 0, 0, 0]);
        assert_eq!(t.goodput, vec![3, 2, 0, 0, 0]);
        assert_eq!(t.failed_throttle, vec![0, 2, 0, 0, 0]);
        assert_eq!(t.retries, vec![1, 0, 0, 0, 3]);
        // Work that ended in interval 1: later counts fold into it.
        let mut r = recorder(100);
        let t = r.finish(420, 199, 9, &m, &[]);
        assert_eq!(t.retries, vec![4, 0]);
        assert_eq!(t.goodput, vec![5, 0]);
    }

    #[test]
    fn latency_quantiles_are_per_interval() {
        let mut r = recorder(1_000_000);
        let m = RunMetrics::new();
        for ms in 1..=100 {
            r.record_latency(ms * 1_000_000);
        }
        r.roll(1_000_000, 0, &m, &[]);
        r.record_latency(7_000_000);
        let t = r.finish(1_500_000, 1_500_000, 0, &m, &[]);
        let p50 = t.latency_p50_ns[0].unwrap_or(0) as f64 / 1e6;
        let p99 = t.latency_p99_ns[0].unwrap_or(0) as f64 / 1e6;
        assert!((p50 - 50.0).abs() <= 0.5, "{p50}");
        assert!((p99 - 99.0).abs() <= 1.0, "{p99}");
        assert_eq!(t.latency_p50_ns[1].map(|v| v / 100_000), Some(70));
    }

    #[test]
    fn a_run_past_the_interval_cap_holds_its_last_interval_open() {
        let mut r = recorder(1);
        r.in_flight(0, 0, u64::MAX / 2);
        let mut m = RunMetrics::new();
        m.succeeded = 1;
        let end = MAX_INTERVALS as u64 * 3;
        let t = r.finish(end, end, 1, &m, &[]);
        assert_eq!(t.len(), MAX_INTERVALS);
        assert!(t.open_ended);
        assert_eq!(t.goodput.iter().sum::<u64>(), 1);
    }
}
