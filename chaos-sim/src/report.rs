//! Reports: the side-by-side comparison of control and experiment, as a terminal table or as
//! JSON (schema in `REPORT_SCHEMA.md`, versioned by [`SCHEMA_VERSION`]).

use crate::metrics::{FunctionMetrics, RunMetrics};
use crate::model::Scenario;
use crate::recovery::{Recovery, RecoveryStatus, TimelineReport, load_end_ns, phase_table};
use serde::Serialize;
use std::fmt::Write as _;

/// Version of the JSON report schema. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

/// The result of `chaos run`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Which scenario and seed produced this report.
    pub scenario: ScenarioInfo,
    /// The run without faults.
    pub control: RunReport,
    /// The run with faults.
    pub experiment: RunReport,
    /// One entry per hypothesis bound.
    pub hypotheses: Vec<HypothesisResult>,
    /// `"holds"` when every bound holds in both runs, else `"fails"` (always `"fails"` when a
    /// run had no requests or was stopped).
    pub verdict: SteadyState,
    /// Why a run stopped before its end (a resource bound such as the work budget); absent
    /// when both ran to their end. A stopped run's numbers are partial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// What a reader must know to read the numbers (e.g. a run with no requests); absent
    /// when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The scenario has no fault rules, so one run served as both control and experiment
    /// (two runs would be identical); absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ran_once: bool,
    /// Time to recover after the last fault window (definition in `REPORT_SCHEMA.md`);
    /// absent when the scenario has no fault rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// The terminal's per-phase summary, kept out of the JSON (it is derived from the series).
    #[serde(skip)]
    phases: String,
}

/// The experiment's verdict: whether the steady state held. (Named apart from chaos-core's
/// `Verdict`, which is one fault decision.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SteadyState {
    /// Every hypothesis holds.
    Holds,
    /// At least one does not.
    Fails,
}

/// Identifies the run.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// Seed used.
    pub seed: u64,
    /// Fault rules in the experiment.
    pub fault_rules: usize,
}

/// Failed requests by cause.
#[derive(Clone, Debug, Serialize)]
pub struct Failures {
    /// All causes.
    pub total: u64,
    /// Timeouts (a call's, or the function's).
    pub timeout: u64,
    /// Throttles (429 from Lambda, or a dependency's throttling error).
    pub throttle: u64,
    /// Other errors.
    pub error: u64,
}

/// Latency quantiles of successful requests, milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Per-function figures.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionReport {
    /// Function name.
    pub name: String,
    /// Billed invocations.
    pub invocations: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// 429s.
    pub throttles: u64,
    /// Function timeouts.
    pub timeouts: u64,
    /// Most concurrent executions.
    pub peak_concurrency: u64,
    /// Time-averaged concurrent executions (running environments, cold starts included),
    /// from 0 to when the last request finished or the last invocation ended, whichever is
    /// later.
    pub mean_concurrency: f64,
    /// Time-averaged warm pool: running plus idle environments.
    pub mean_warm_environments: f64,
    /// Time-averaged idle warm environments.
    pub mean_idle_environments: f64,
    /// Environments created, retired and alive at the end, and the lifespans of the retired.
    pub environments: EnvironmentReport,
    /// Dollars.
    pub cost_usd: f64,
}

/// A function's execution environments over one run.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentReport {
    /// Environments created (one per cold start).
    pub created: u64,
    /// Environments retired during the run: idle past the keep-alive, or discarded after a
    /// function timeout.
    pub retired: u64,
    /// Environments alive (running or warm) at the end of the span the averages cover.
    pub alive_at_end: u64,
    /// Mean lifespan of the retired environments (creation to retirement), seconds; NaN
    /// (JSON `null`) when none was retired.
    pub lifespan_mean_s: f64,
    /// Longest lifespan of a retired environment, seconds; NaN (JSON `null`) when none was
    /// retired.
    pub lifespan_max_s: f64,
}

/// Rounded to 6 decimals (a microsecond, in seconds), so reports stay short and stable.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

impl EnvironmentReport {
    fn from_metrics(f: &FunctionMetrics) -> Self {
        let retired = f.environments_retired > 0;
        Self {
            created: f.cold_starts,
            retired: f.environments_retired,
            alive_at_end: f.environments_alive_at_end,
            lifespan_mean_s: round6(f.environment_lifespan_mean_ns() / 1e9),
            lifespan_max_s: if retired {
                round6(f.environment_lifespan_max_ns as f64 / 1e9)
            } else {
                f64::NAN
            },
        }
    }
}

/// One run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Requests that arrived.
    pub requests: u64,
    /// Succeeded without fallback.
    pub succeeded: u64,
    /// Succeeded with a fallback value.
    pub fallback_served: u64,
    /// Failed, by cause.
    pub failed: Failures,
    /// Still running at the end.
    pub in_flight: u64,
    /// (succeeded + fallback_served) / requests; NaN (JSON `null`) with no requests.
    pub success_rate: f64,
    /// failed.throttle / requests; NaN (JSON `null`) with no requests.
    pub throttle_rate: f64,
    /// Latency of successful requests.
    pub latency_ms: LatencyMs,
    /// Dependency attempts per request.
    pub attempts_per_request: f64,
    /// Retries sent.
    pub retries: u64,
    /// Hedges sent.
    pub hedges: u64,
    /// Region failovers.
    pub failovers: u64,
    /// Attempts refused by an open breaker.
    pub short_circuited: u64,
    /// Retries refused by the SDK retry quota.
    pub retry_quota_exhausted: u64,
    /// Retries refused by a call's retry budget.
    pub retries_denied_by_budget: u64,
    /// Dependency throttling errors.
    pub dependency_throttles: u64,
    /// Optimistic-concurrency conflicts.
    pub conflicts: u64,
    /// Abandoned work a server dropped.
    pub dropped_work: u64,
    /// Abandoned work a server served anyway.
    pub abandoned_work_served: u64,
    /// Attempts a partition held in the network until its window ended (left out when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub partition_held: u64,
    /// Requests that reached a stateful dependency after their caller had given up on them
    /// (left out when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub late_deliveries: u64,
    /// Work a server shed because it could not finish before its caller's deadline.
    pub shed_late: u64,
    /// Work a server shed because it waited longer than its controlled-delay bound.
    pub shed_queue_delay: u64,
    /// Function invocations.
    pub invocations: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Function 429s.
    pub function_throttles: u64,
    /// Function timeouts.
    pub function_timeouts: u64,
    /// Most concurrent executions in a region.
    pub peak_concurrency: u64,
    /// Async events and queue messages dead-lettered.
    pub dead_lettered: u64,
    /// Platform retries of async events.
    pub async_retries: u64,
    /// Queue redeliveries.
    pub redeliveries: u64,
    /// Dollars.
    pub cost_usd: f64,
    /// Simulated seconds until the last request finished (the clock at the end when requests
    /// were still in flight). Schema 1 gave the time of the last event here.
    pub simulated_seconds: f64,
    /// Simulated seconds at the last event processed (late timers, detached invocations and
    /// retries can run past the last request).
    pub last_event_seconds: f64,
    /// Events processed.
    pub events: u64,
    /// Timers dropped unprocessed because their step had finished (not in `events`).
    pub cancelled_timers: u64,
    /// Per function.
    pub functions: Vec<FunctionReport>,
    /// Per-interval series.
    pub timeline: TimelineReport,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

fn ms(ns: u64) -> f64 {
    // Rounded to the microsecond so reports stay short and stable.
    (ns as f64 / 1_000.0).round() / 1_000.0
}

impl RunReport {
    /// Summarises `m`.
    pub fn from_metrics(m: &RunMetrics) -> Self {
        let mean = if m.latency.is_empty() {
            0.0
        } else {
            (m.latency.mean() / 1_000.0).round() / 1_000.0
        };
        Self {
            requests: m.requests,
            succeeded: m.succeeded,
            fallback_served: m.fallback_served,
            failed: Failures {
                total: m.failed(),
                timeout: m.failed_timeout,
                throttle: m.failed_throttle,
                error: m.failed_error,
            },
            in_flight: m.in_flight,
            success_rate: m.success_rate(),
            throttle_rate: m.throttle_rate(),
            latency_ms: LatencyMs {
                p50: ms(m.latency_quantile_ns(0.5)),
                p90: ms(m.latency_quantile_ns(0.9)),
                p99: ms(m.latency_quantile_ns(0.99)),
                p99_9: ms(m.latency_quantile_ns(0.999)),
                max: ms(if m.latency.is_empty() {
                    0
                } else {
                    m.latency.max()
                }),
                mean,
            },
            attempts_per_request: if m.requests == 0 {
                0.0
            } else {
                m.attempts as f64 / m.requests as f64
            },
            retries: m.retries,
            hedges: m.hedges,
            failovers: m.failovers,
            short_circuited: m.short_circuited,
            retry_quota_exhausted: m.retry_quota_exhausted,
            retries_denied_by_budget: m.retries_denied_by_budget,
            dependency_throttles: m.dependency_throttles,
            conflicts: m.conflicts,
            dropped_work: m.dropped_work,
            abandoned_work_served: m.abandoned_work_served,
            partition_held: m.partition_held,
            late_deliveries: m.late_deliveries,
            shed_late: m.shed_late,
            shed_queue_delay: m.shed_queue_delay,
            invocations: m.invocations,
            cold_starts: m.cold_starts,
            function_throttles: m.function_throttles,
            function_timeouts: m.function_timeouts,
            peak_concurrency: m.peak_concurrency,
            dead_lettered: m.dead_lettered,
            async_retries: m.async_retries,
            redeliveries: m.redeliveries,
            cost_usd: m.cost_usd,
            simulated_seconds: m.work_end_ns as f64 / 1e9,
            last_event_seconds: m.end_time_ns as f64 / 1e9,
            events: m.events,
            cancelled_timers: m.cancelled_timers,
            functions: m
                .functions
                .iter()
                .map(|f| FunctionReport {
                    name: f.name.clone(),
                    invocations: f.invocations,
                    cold_starts: f.cold_starts,
                    throttles: f.throttles,
                    timeouts: f.timeouts,
                    peak_concurrency: f.peak_concurrency,
                    mean_concurrency: round6(f.mean_concurrency),
                    mean_warm_environments: round6(f.mean_warm_environments()),
                    mean_idle_environments: round6(f.mean_idle_environments),
                    environments: EnvironmentReport::from_metrics(f),
                    cost_usd: f.cost_usd,
                })
                .collect(),
            timeline: TimelineReport::from_timeline(&m.timeline),
        }
    }
}

/// One hypothesis bound checked on both runs.
#[derive(Clone, Debug, Serialize)]
pub struct HypothesisResult {
    /// What is measured: `success_rate`, `latency_p99`, `throttle_rate`, `cost_usd`,
    /// `recovery_time` (experiment only: the control run has no faults to recover from).
    pub name: String,
    /// The bound, e.g. `>= 0.999` or `<= 800ms`.
    pub expected: String,
    /// Measured in the control run (milliseconds for latency).
    pub control: f64,
    /// Measured in the experiment run.
    pub experiment: f64,
    /// Holds in the control run (if not, the steady state was never there).
    pub control_holds: bool,
    /// Holds in the experiment run.
    pub experiment_holds: bool,
}

impl Report {
    /// Builds the report of a control and an experiment run of `scenario`.
    pub fn new(scenario: &Scenario, control: &RunMetrics, experiment: &RunMetrics) -> Self {
        let h = &scenario.hypothesis;
        let mut hypotheses = Vec::new();
        let mut at_least =
            |name: String, expected: String, bound: f64, c: f64, e: f64, up: bool| {
                let ok = |v: f64| if up { v >= bound } else { v <= bound };
                hypotheses.push(HypothesisResult {
                    name,
                    expected,
                    control: c,
                    experiment: e,
                    control_holds: ok(c),
                    experiment_holds: ok(e),
                });
            };
        if let Some(b) = h.success_rate_at_least {
            at_least(
                "success_rate".into(),
                format!(">= {}", fmt_value(b)),
                b,
                control.success_rate(),
                experiment.success_rate(),
                true,
            );
        }
        for (q, bound) in &h.latency_at_most {
            let bound_ms = bound.as_secs_f64() * 1000.0;
            at_least(
                format!("latency_{}", quantile_label(*q)),
                format!("<= {}ms", fmt_value(bound_ms)),
                bound_ms,
                latency_ms_or_nan(control, *q),
                latency_ms_or_nan(experiment, *q),
                false,
            );
        }
        for (over, bound) in &h.slow_rate_at_most {
            let over_ns = u64::try_from(over.as_nanos()).unwrap_or(u64::MAX);
            let over_ms = over.as_secs_f64() * 1000.0;
            at_least(
                format!("slow_rate_over_{}ms", fmt_value(over_ms)),
                format!("<= {}", fmt_value(*bound)),
                *bound,
                control.slow_rate(over_ns),
                experiment.slow_rate(over_ns),
                false,
            );
        }
        if let Some(b) = h.throttle_rate_at_most {
            at_least(
                "throttle_rate".into(),
                format!("<= {}", fmt_value(b)),
                b,
                control.throttle_rate(),
                experiment.throttle_rate(),
                false,
            );
        }
        if let Some(b) = h.cost_at_most_usd {
            at_least(
                "cost_usd".into(),
                format!("<= {}", fmt_value(b)),
                b,
                control.cost_usd,
                experiment.cost_usd,
                false,
            );
        }
        let recovery = (!scenario.faults.is_empty())
            .then(|| Recovery::measure(scenario, &control.timeline, &experiment.timeline));
        if let (Some(bound), Some(r)) = (h.recovery_time_at_most, &recovery) {
            let bound_ms = bound.as_secs_f64() * 1000.0;
            let measured = match (r.status, r.recovery_ms) {
                (RecoveryStatus::Recovered, Some(ms)) => ms,
                _ => f64::NAN,
            };
            hypotheses.push(HypothesisResult {
                name: "recovery_time".into(),
                expected: format!("<= {}ms", fmt_value(bound_ms)),
                control: f64::NAN,
                experiment: measured,
                // Nothing to recover from without faults: the bound is the experiment's.
                control_holds: true,
                experiment_holds: measured <= bound_ms,
            });
        }
        let mut notes = Vec::new();
        for (run, m) in [("control", control), ("experiment", experiment)] {
            if m.requests == 0 {
                notes.push(format!(
                    "the {run} run had no requests: nothing was measured, so the steady state \
                     cannot hold (check rate_per_s, duration and requests)"
                ));
            }
        }
        let stopped = [("control", control), ("experiment", experiment)]
            .into_iter()
            .find_map(|(run, m)| m.stopped.as_ref().map(|why| format!("{run} run: {why}")));
        let holds = notes.is_empty()
            && stopped.is_none()
            && hypotheses
                .iter()
                .all(|h| h.control_holds && h.experiment_holds);
        Self {
            schema_version: SCHEMA_VERSION,
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                seed: scenario.seed,
                fault_rules: scenario.faults.len(),
            },
            control: RunReport::from_metrics(control),
            experiment: RunReport::from_metrics(experiment),
            hypotheses,
            verdict: if holds {
                SteadyState::Holds
            } else {
                SteadyState::Fails
            },
            stopped,
            notes,
            ran_once: false,
            phases: phase_table(
                scenario,
                &TimelineReport::from_timeline(&control.timeline),
                &TimelineReport::from_timeline(&experiment.timeline),
                recovery.as_ref(),
                load_end_ns(scenario, &control.timeline),
            ),
            recovery,
        }
    }

    /// The process exit code: 0 when every hypothesis holds, 1 otherwise, 2 when a run was
    /// stopped by a resource bound (the input asks for more work than allowed).
    pub fn exit_code(&self) -> i32 {
        if self.stopped.is_some() {
            return 2;
        }
        match self.verdict {
            SteadyState::Holds => 0,
            SteadyState::Fails => 1,
        }
    }

    /// Pretty JSON, arrays of numbers on one line (deterministic: same report, same bytes).
    pub fn to_json(&self) -> String {
        crate::json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A terminal table.
    pub fn to_table(&self) -> String {
        let (c, e) = (&self.control, &self.experiment);
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut row = |label: &str, a: String, b: String| rows.push((label.to_string(), a, b));
        let count = |value: CountOf| (value(c).to_string(), value(e).to_string());
        let counts: [(&str, CountOf); 7] = [
            ("requests", |r| r.requests),
            ("succeeded", |r| r.succeeded),
            ("fallback served", |r| r.fallback_served),
            ("failed: timeout", |r| r.failed.timeout),
            ("failed: throttle", |r| r.failed.throttle),
            ("failed: error", |r| r.failed.error),
            ("in flight at end", |r| r.in_flight),
        ];
        for (label, value) in counts {
            let (a, b) = count(value);
            row(label, a, b);
        }
        row(
            "success rate",
            percent_or_dash(c.success_rate),
            percent_or_dash(e.success_rate),
        );
        for (label, a, b) in [
            ("latency p50", c.latency_ms.p50, e.latency_ms.p50),
            ("latency p90", c.latency_ms.p90, e.latency_ms.p90),
            ("latency p99", c.latency_ms.p99, e.latency_ms.p99),
            ("latency p99.9", c.latency_ms.p99_9, e.latency_ms.p99_9),
            ("latency max", c.latency_ms.max, e.latency_ms.max),
        ] {
            row(label, format!("{a:.3} ms"), format!("{b:.3} ms"));
        }
        row(
            "attempts / request",
            format!("{:.3}", c.attempts_per_request),
            format!("{:.3}", e.attempts_per_request),
        );
        let more_counts: [(&str, CountOf); 5] = [
            ("retries", |r| r.retries),
            ("hedges", |r| r.hedges),
            ("cold starts", |r| r.cold_starts),
            ("function throttles", |r| r.function_throttles),
            ("peak concurrency", |r| r.peak_concurrency),
        ];
        for (label, value) in more_counts {
            let (a, b) = count(value);
            row(label, a, b);
        }
        // Time averages over the run, summed over functions, next to the peak.
        let mean = |r: &RunReport, of: fn(&FunctionReport) -> f64| {
            format!("{:.2}", r.functions.iter().map(of).sum::<f64>())
        };
        for (label, of) in [
            (
                "mean concurrency",
                (|f| f.mean_concurrency) as fn(&FunctionReport) -> f64,
            ),
            ("mean warm environments", |f| f.mean_warm_environments),
            ("mean idle environments", |f| f.mean_idle_environments),
        ] {
            row(label, mean(c, of), mean(e, of));
        }
        row(
            "cost",
            format!("${:.4}", c.cost_usd),
            format!("${:.4}", e.cost_usd),
        );
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let cw = rows
            .iter()
            .map(|r| r.1.len().max(r.2.len()))
            .max()
            .unwrap_or(0)
            .max(10);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} (seed {}, {} fault rule(s))\n",
            self.scenario.name, self.scenario.seed, self.scenario.fault_rules
        );
        if self.ran_once {
            let _ = writeln!(
                out,
                "no faults: ran once, control and experiment are the same run\n"
            );
        }
        let _ = writeln!(
            out,
            "{:width$}  {:>cw$}  {:>cw$}",
            "", "control", "experiment"
        );
        for (label, a, b) in &rows {
            let _ = writeln!(out, "{label:width$}  {a:>cw$}  {b:>cw$}");
        }
        out.push_str(&self.phases);
        if !self.hypotheses.is_empty() {
            let _ = writeln!(out, "\nhypothesis");
            for h in &self.hypotheses {
                let mark = |ok: bool| if ok { "holds" } else { "FAILS" };
                if h.name == "recovery_time" {
                    // Measured on the experiment only: the control run has no faults.
                    let _ = writeln!(
                        out,
                        "  {} {}: experiment {} ({})",
                        h.name,
                        h.expected_for_people(),
                        display_measure(&h.name, h.experiment),
                        mark(h.experiment_holds),
                    );
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  {} {}: control {} ({}), experiment {} ({})",
                    h.name,
                    h.expected_for_people(),
                    display_measure(&h.name, h.control),
                    mark(h.control_holds),
                    display_measure(&h.name, h.experiment),
                    mark(h.experiment_holds),
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "\nerror: stopped early, numbers are partial: {why}");
        }
        if self.hypotheses.iter().any(|h| !h.control_holds) {
            let _ = writeln!(
                out,
                "\nnote: the control run (no faults) already breaks the hypothesis: the steady \
                 state does not hold even without the experiment's faults"
            );
        }
        let _ = writeln!(
            out,
            "\nverdict: {}",
            match self.verdict {
                SteadyState::Holds => "steady state holds",
                SteadyState::Fails => "steady state FAILS",
            }
        );
        out
    }
}

impl HypothesisResult {
    /// The bound as a person writes it: rates in percent (`>= 99.9%`), the rest as stored.
    fn expected_for_people(&self) -> String {
        if self.name == "recovery_time" {
            let bound = self
                .expected
                .trim_start_matches("<= ")
                .trim_end_matches("ms");
            return bound.parse::<f64>().map_or(self.expected.clone(), |ms| {
                format!("<= {}", crate::recovery::human_ms(ms))
            });
        }
        if !is_rate(&self.name) {
            return self.expected.clone();
        }
        match self.expected.split_once(' ') {
            Some((op, value)) => match value.parse::<f64>() {
                Ok(fraction) => format!("{op} {}%", fmt_value(fraction * 100.0)),
                Err(_) => self.expected.clone(),
            },
            None => self.expected.clone(),
        }
    }
}

/// Whether a hypothesis measures a fraction (`success_rate`, `slow_rate_over_1000ms`).
fn is_rate(name: &str) -> bool {
    name.ends_with("_rate") || name.starts_with("slow_rate_")
}

/// A ratio in percent, or `-` when it was not measured (no requests).
fn percent_or_dash(ratio: f64) -> String {
    if ratio.is_nan() {
        "-".to_owned()
    } else {
        format!("{:.4}%", ratio * 100.0)
    }
}

fn display_measure(name: &str, value: f64) -> String {
    if name == "recovery_time" {
        if value.is_nan() {
            "- (did not recover, or not measured; see recovery above)".to_owned()
        } else {
            crate::recovery::human_ms(value)
        }
    } else if value.is_nan() {
        "nothing to measure (no successful request)".to_owned()
    } else if is_rate(name) {
        format!("{:.4}%", value * 100.0)
    } else if name.starts_with("latency_") {
        format!("{value:.3} ms")
    } else if name.starts_with("cost") {
        format!("${value:.4}")
    } else {
        fmt_value(value)
    }
}

/// A latency quantile in milliseconds, or NaN (JSON `null`) when the run had no successful
/// request to measure: every comparison with NaN is false, so the bound fails rather than
/// holding vacuously at 0 ms.
fn latency_ms_or_nan(run: &RunMetrics, q: f64) -> f64 {
    if run.succeeded + run.fallback_served == 0 {
        f64::NAN
    } else {
        ms(run.latency_quantile_ns(q))
    }
}

/// Reads one count of a run, for a row of the table.
type CountOf = fn(&RunReport) -> u64;

/// Up to 9 decimals, trailing zeros trimmed (`0.999`, not `0.9990000000000001`).
pub(crate) fn fmt_value(v: f64) -> String {
    format!("{v:.9}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}

/// `0.99` -> `p99`, `0.999` -> `p99_9`, `0.5` -> `p50`.
pub fn quantile_label(q: f64) -> String {
    let pct = format!("{}", (q * 100_000.0).round() / 1000.0);
    format!("p{}", pct.replace('.', "_"))
}
