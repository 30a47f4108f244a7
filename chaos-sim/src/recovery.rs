//! What the timelines say: the report's form of the series, the time to recover after the
//! last fault window, and the per-phase summary (before / during / after the faults).
//!
//! Definitions (also in `REPORT_SCHEMA.md`): the faults end when the last `[[fault]]` window
//! ends. The load ends at `duration` (or, for a run bounded by `requests`, at the control
//! run's last arrival); intervals after it (the drain) are not compared. The experiment has
//! recovered at the start of the first interval that starts at or after the faults' end and
//! begins `sustain` consecutive intervals, all ending by the load's end, in each of which the
//! experiment's goodput is at least `1 - tolerance` times the control run's. The recovery time
//! is that start minus the faults' end (so its resolution is one interval). With fewer than
//! `sustain` such intervals after the faults, recovery is not measured; otherwise, without
//! such a run of intervals, the experiment did not recover.

use crate::core_api::Rule;
use crate::model::Scenario;
use crate::timeline::{DependencySeries, FunctionSeries, Timeline, interval_of};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// When the scenario's faults end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultsEnd {
    /// There are no fault rules.
    NoFaults,
    /// The last window ends at this time.
    At(Duration),
    /// The rule at this index never ends (no window, or a window without a duration).
    Never(usize),
}

/// When the last of `rules`' windows ends.
pub fn faults_end(rules: &[Rule]) -> FaultsEnd {
    let mut end = None;
    for (i, rule) in rules.iter().enumerate() {
        match rule.schedule.window {
            Some(w) => match w.duration {
                Some(d) => end = end.max(Some(w.start.saturating_add(d))),
                None => return FaultsEnd::Never(i),
            },
            None => return FaultsEnd::Never(i),
        }
    }
    end.map_or(FaultsEnd::NoFaults, FaultsEnd::At)
}

/// When the first of `rules`' windows starts (0 for a rule without a window).
pub fn faults_start(rules: &[Rule]) -> Option<Duration> {
    rules
        .iter()
        .map(|r| r.schedule.window.map_or(Duration::ZERO, |w| w.start))
        .min()
}

/// Whether and when the experiment recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecoveryStatus {
    /// Goodput came back within the tolerance for the sustained period.
    Recovered,
    /// It did not, in the intervals the load left after the faults.
    DidNotRecover,
    /// Not measurable: no window end, or too few intervals after it.
    NotMeasured,
}

/// The time to recover after the last fault window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recovery {
    /// Whether the experiment recovered.
    pub status: RecoveryStatus,
    /// When the last fault window ended, milliseconds (absent when a fault never ends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults_end_ms: Option<f64>,
    /// When the load ended (the end of the compared intervals), milliseconds.
    pub load_end_ms: f64,
    /// Time from the faults' end to the start of the sustained recovered intervals,
    /// milliseconds; only when `status` is `recovered`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_ms: Option<f64>,
    /// The tolerance: goodput at least `1 - tolerance` times the control run's.
    pub tolerance: f64,
    /// Consecutive intervals goodput must stay within it.
    pub sustain_intervals: u64,
    /// Why it was not measured, or what the experiment's goodput was after the faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Recovery {
    /// Measures recovery of `experiment` against `control` for `scenario`'s faults and
    /// `[timeline]` settings.
    pub fn measure(scenario: &Scenario, control: &Timeline, experiment: &Timeline) -> Self {
        let interval_ns = control.interval_ns.max(1);
        let settings = &scenario.timeline;
        let sustain = settings.recovery_sustain.map_or(
            crate::model::TimelineSettings::DEFAULT_SUSTAIN_INTERVALS,
            |d| {
                u64::try_from(d.as_nanos().div_ceil(u128::from(interval_ns)))
                    .unwrap_or(u64::MAX)
                    .max(1)
            },
        );
        let load_end = load_end_ns(scenario, control);
        let mut recovery = Recovery {
            status: RecoveryStatus::NotMeasured,
            faults_end_ms: None,
            load_end_ms: load_end as f64 / 1e6,
            recovery_ms: None,
            tolerance: settings.recovery_tolerance,
            sustain_intervals: sustain,
            detail: None,
        };
        let end = match faults_end(&scenario.faults) {
            FaultsEnd::At(end) => crate::program::nanos(end),
            FaultsEnd::NoFaults => {
                recovery.detail = Some("no fault rules".into());
                return recovery;
            }
            FaultsEnd::Never(i) => {
                recovery.detail = Some(format!(
                    "fault {i} has no window end: nothing comes after the faults"
                ));
                return recovery;
            }
        };
        recovery.faults_end_ms = Some(end as f64 / 1e6);
        let first = end.div_ceil(interval_ns);
        // Intervals that end by the load's end and exist in both runs.
        let last = (load_end / interval_ns)
            .min(control.len() as u64)
            .min(experiment.len() as u64);
        if last < first.saturating_add(sustain) {
            recovery.detail = Some(format!(
                "the load ends {:.3} s after the faults, fewer than the {sustain} intervals \
                 recovery must be sustained for",
                load_end.saturating_sub(end) as f64 / 1e9
            ));
            return recovery;
        }
        let keep = 1.0 - settings.recovery_tolerance;
        let mut streak = 0;
        for i in first..last {
            let i = i as usize;
            if experiment.goodput[i] as f64 >= keep * control.goodput[i] as f64 {
                streak += 1;
                if streak == sustain {
                    let start = (i as u64 + 1 - sustain) * interval_ns;
                    recovery.status = RecoveryStatus::Recovered;
                    recovery.recovery_ms = Some((start - end) as f64 / 1e6);
                    return recovery;
                }
            } else {
                streak = 0;
            }
        }
        let (range, e, c) = (first as usize..last as usize, experiment, control);
        let sum = |t: &Timeline| t.goodput[range.clone()].iter().sum::<u64>();
        recovery.status = RecoveryStatus::DidNotRecover;
        recovery.detail = Some(format!(
            "after the faults the experiment's goodput was {} against the control run's {} \
             ({:.1}%)",
            sum(e),
            sum(c),
            100.0 * sum(e) as f64 / sum(c).max(1) as f64
        ));
        recovery
    }
}

/// The end of the load: `duration`, or the control run's last arrival.
pub(crate) fn load_end_ns(scenario: &Scenario, control: &Timeline) -> u64 {
    scenario
        .duration
        .map_or(control.last_arrival_ns, crate::program::nanos)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1_000.0).round() / 1_000.0
}

/// Failed requests per interval, by cause.
#[derive(Clone, Debug, Serialize)]
pub struct FailedSeries {
    /// Timeouts.
    pub timeout: Vec<u64>,
    /// Throttles.
    pub throttle: Vec<u64>,
    /// Other errors.
    pub error: Vec<u64>,
}

/// A function's series in the report.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionSeriesReport {
    /// Function name.
    pub name: String,
    /// Time-averaged concurrent executions (3 decimals).
    pub concurrency_mean: Vec<f64>,
    /// Most concurrent executions.
    pub concurrency_peak: Vec<u64>,
    /// 429s.
    pub throttles: Vec<u64>,
}

/// A dependency's series in the report.
#[derive(Clone, Debug, Serialize)]
pub struct DependencySeriesReport {
    /// Dependency name.
    pub name: String,
    /// Time-averaged waiting line (3 decimals).
    pub queue_mean: Vec<f64>,
    /// Longest waiting line.
    pub queue_peak: Vec<u64>,
    /// Time-averaged attempts being served (3 decimals).
    pub in_flight_mean: Vec<f64>,
}

/// A run's per-interval series in the report (schema in `REPORT_SCHEMA.md`).
#[derive(Clone, Debug, Serialize)]
pub struct TimelineReport {
    /// Interval width, milliseconds.
    pub interval_ms: f64,
    /// Number of intervals; every series has this many entries.
    pub intervals: usize,
    /// The run outlasted the interval cap and its last interval was held open to its end.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub open_ended: bool,
    /// Requests that arrived.
    pub arrivals: Vec<u64>,
    /// Requests that finished successfully (fallbacks included).
    pub goodput: Vec<u64>,
    /// Requests that failed, by cause.
    pub failed: FailedSeries,
    /// Median latency of the interval's successful requests, ms; `null` when none.
    pub latency_p50_ms: Vec<Option<f64>>,
    /// 99th percentile, as `latency_p50_ms`.
    pub latency_p99_ms: Vec<Option<f64>>,
    /// Retries sent.
    pub retries: Vec<u64>,
    /// Per function.
    pub functions: Vec<FunctionSeriesReport>,
    /// Per dependency.
    pub dependencies: Vec<DependencySeriesReport>,
}

impl TimelineReport {
    /// The report's form of `t`.
    pub fn from_timeline(t: &Timeline) -> Self {
        let means = |v: &[f64]| v.iter().map(|x| round3(*x)).collect();
        let lat = |v: &[Option<u64>]| v.iter().map(|x| x.map(ms)).collect();
        Self {
            interval_ms: t.interval_ns as f64 / 1e6,
            intervals: t.len(),
            open_ended: t.open_ended,
            arrivals: t.arrivals.clone(),
            goodput: t.goodput.clone(),
            failed: FailedSeries {
                timeout: t.failed_timeout.clone(),
                throttle: t.failed_throttle.clone(),
                error: t.failed_error.clone(),
            },
            latency_p50_ms: lat(&t.latency_p50_ns),
            latency_p99_ms: lat(&t.latency_p99_ns),
            retries: t.retries.clone(),
            functions: t
                .functions
                .iter()
                .map(|f: &FunctionSeries| FunctionSeriesReport {
                    name: f.name.clone(),
                    concurrency_mean: means(&f.concurrency_mean),
                    concurrency_peak: f.concurrency_peak.clone(),
                    throttles: f.throttles.clone(),
                })
                .collect(),
            dependencies: t
                .dependencies
                .iter()
                .map(|d: &DependencySeries| DependencySeriesReport {
                    name: d.name.clone(),
                    queue_mean: means(&d.queue_mean),
                    queue_peak: d.queue_peak.clone(),
                    in_flight_mean: means(&d.in_flight_mean),
                })
                .collect(),
        }
    }
}

/// The terminal summary: per phase (before, during, after the faults) goodput and failures per
/// second and the worst interval's p99 in both runs, a sparkline of goodput, and recovery.
pub(crate) fn phase_table(
    scenario: &Scenario,
    control: &TimelineReport,
    experiment: &TimelineReport,
    recovery: Option<&Recovery>,
    load_end: u64,
) -> String {
    let interval_ms = control.interval_ms;
    let interval_ns = crate::program::nanos(interval_of(scenario)).max(1);
    let start = faults_start(&scenario.faults).map(crate::program::nanos);
    let end = match faults_end(&scenario.faults) {
        FaultsEnd::At(d) => Some(crate::program::nanos(d)),
        _ => None,
    };
    // Phase of interval i by its start: 0 before, 1 during, 2 after; None past the load.
    let phase_of = |i: usize| -> Option<usize> {
        let at = (i as u64).saturating_mul(interval_ns);
        if at >= load_end {
            return None;
        }
        Some(match (start, end) {
            (Some(s), _) if at < s => 0,
            (_, Some(e)) if at >= e => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        })
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ntimeline ({} intervals of {})",
        experiment.intervals,
        human_ms(interval_ms)
    );
    // Without faults the whole load is one phase.
    let names = match start {
        Some(_) => ["before", "during", "after"],
        None => ["run", "", ""],
    };
    let mut spans = [(u64::MAX, 0u64); 3];
    let n = control.intervals.max(experiment.intervals);
    for i in 0..n {
        if let Some(p) = phase_of(i) {
            let at = i as u64 * interval_ns;
            spans[p].0 = spans[p].0.min(at);
            spans[p].1 = spans[p].1.max(at.saturating_add(interval_ns));
        }
    }
    let present: Vec<usize> = (0..3).filter(|p| spans[*p].0 != u64::MAX).collect();
    let header: Vec<String> = present
        .iter()
        .map(|&p| {
            format!(
                "{} {}-{}",
                names[p],
                human_ms(spans[p].0 as f64 / 1e6),
                human_ms(spans[p].1 as f64 / 1e6)
            )
        })
        .collect();
    let width = header.iter().map(String::len).max().unwrap_or(0).max(12);
    let _ = write!(out, "{:26}", "");
    for h in &header {
        let _ = write!(out, "  {h:>width$}");
    }
    out.push('\n');
    type Measure = fn(&TimelineReport, usize) -> Option<f64>;
    let rows: [(&str, Measure); 3] = [
        ("goodput/s", |t, i| t.goodput.get(i).map(|v| *v as f64)),
        ("failed/s", |t, i| {
            Some(
                (t.failed.timeout.get(i)? + t.failed.throttle.get(i)? + t.failed.error.get(i)?)
                    as f64,
            )
        }),
        ("worst p99 ms", |t, i| {
            t.latency_p99_ms.get(i).copied().flatten()
        }),
    ];
    for (label, measure) in rows {
        for (run, t) in [("control", control), ("experiment", experiment)] {
            let _ = write!(out, "{label:<14} {run:<11}");
            for &p in &present {
                let values: Vec<f64> = (0..t.intervals)
                    .filter(|i| phase_of(*i) == Some(p))
                    .filter_map(|i| measure(t, i))
                    .collect();
                let cell = if label.starts_with("worst") {
                    values
                        .iter()
                        .copied()
                        .reduce(f64::max)
                        .map_or("-".to_owned(), |v| format!("{v:.1}"))
                } else {
                    let seconds = (spans[p].1 - spans[p].0) as f64 / 1e9;
                    format!("{:.1}", values.iter().sum::<f64>() / seconds.max(1e-9))
                };
                let _ = write!(out, "  {cell:>width$}");
            }
            out.push('\n');
        }
    }
    let shown = (0..n).take_while(|i| phase_of(*i).is_some()).count();
    for (run, t) in [("control", control), ("experiment", experiment)] {
        let _ = writeln!(
            out,
            "{:26}  {}",
            format!("goodput {run}"),
            sparkline(
                &t.goodput[..shown.min(t.goodput.len())],
                peak(control, experiment, shown)
            )
        );
    }
    if let Some(r) = recovery {
        let _ = writeln!(out, "recovery: {}", describe(r));
    }
    out
}

fn peak(control: &TimelineReport, experiment: &TimelineReport, shown: usize) -> u64 {
    control
        .goodput
        .iter()
        .take(shown)
        .chain(experiment.goodput.iter().take(shown))
        .copied()
        .max()
        .unwrap_or(0)
}

/// At most 60 columns, each the sum of consecutive intervals, scaled to the larger run's
/// highest column; `.` marks zero.
fn sparkline(values: &[u64], peak_interval: u64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let per = values.len().div_ceil(60).max(1);
    let top = peak_interval.saturating_mul(per as u64).max(1);
    values
        .chunks(per)
        .map(|c| {
            let sum: u64 = c.iter().sum();
            if sum == 0 {
                '.'
            } else {
                let level = (sum as f64 / top as f64 * 8.0).ceil() as usize;
                BARS[level.clamp(1, 8) - 1]
            }
        })
        .collect()
}

/// A recovery in words.
pub(crate) fn describe(r: &Recovery) -> String {
    let criterion = format!(
        "goodput within {}% of control for {} interval(s)",
        crate::report::fmt_value(r.tolerance * 100.0),
        r.sustain_intervals
    );
    match (r.status, r.recovery_ms, r.faults_end_ms) {
        (RecoveryStatus::Recovered, Some(ms), Some(end)) => format!(
            "{} after the last fault window ended at {} ({criterion})",
            human_ms(ms),
            human_ms(end)
        ),
        (RecoveryStatus::DidNotRecover, _, _) => format!(
            "DID NOT RECOVER by the load's end at {} ({criterion}); {}",
            human_ms(r.load_end_ms),
            r.detail.as_deref().unwrap_or("")
        ),
        _ => format!(
            "not measured: {}",
            r.detail.as_deref().unwrap_or("no fault window end")
        ),
    }
}

/// `1500` -> `1.5s`, `250` -> `250ms`, `90000` -> `90s`.
pub(crate) fn human_ms(ms: f64) -> String {
    if ms >= 1000.0 || ms == 0.0 {
        format!(
            "{}s",
            crate::report::fmt_value((ms / 1000.0 * 1000.0).round() / 1000.0)
        )
    } else {
        format!("{}ms", crate::report::fmt_value(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_scales_to_the_peak_and_marks_zero() {
        assert_eq!(sparkline(&[0, 1, 4, 8], 8), ".▁▄█");
        // 120 intervals fold into 60 columns of two.
        let folded = sparkline(&[2; 120], 2);
        assert_eq!(folded.chars().count(), 60);
        assert!(folded.chars().all(|c| c == '█'));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_ms(250.0), "250ms");
        assert_eq!(human_ms(1500.0), "1.5s");
        assert_eq!(human_ms(90_000.0), "90s");
    }
}
