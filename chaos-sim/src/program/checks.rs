//! Checks on a scenario that need no compilation (ranges, rates, load) and on the compiled
//! graph (invocation cycles, nesting depth).

use super::*;

/// The highest arrival rate a load may ask for: beyond it the gap between arrivals rounds to
/// zero nanoseconds and virtual time would stop.
const MAX_LOAD_RATE_PER_S: f64 = 10_000_000.0;

/// The largest burst: every burst request is created at one instant.
const MAX_BURST: u32 = 1_000_000;

/// Most clients of a closed loop (each is a request in flight and an event).
const MAX_CLIENTS: u32 = 1_000_000;

/// The least mean think time of an unbounded closed loop.
const MIN_MEAN_THINK: Duration = Duration::from_micros(1);

/// The mean of `dist`, estimated from 1,000 evenly spaced quantiles (midpoints), so a
/// distribution that is zero with probability above 0.9995 estimates as zero.
pub(super) fn approximate_mean(dist: &LatencyDist) -> Duration {
    const N: u32 = 1_000;
    let total: f64 = (0..N)
        .filter_map(|i| dist.quantile((f64::from(i) + 0.5) / f64::from(N)))
        .map(|d| d.as_secs_f64())
        .sum();
    Duration::try_from_secs_f64(total / f64::from(N)).unwrap_or(Duration::MAX)
}

/// The deepest chain of nested steps and invocations a model may have (see
/// `Compiler::check_nesting`). Lambda itself stops recursive loops after 16 invocations.
pub(super) const MAX_NESTING: u32 = 256;

/// The most branches one invocation may have in flight (the product of nested fan-outs).
pub(super) const MAX_BRANCHES: u64 = 1_000_000;

pub(super) fn check_load_rate(path: &str, rate: f64) -> Result<(), ModelError> {
    check_rate(path, rate)?;
    if rate > MAX_LOAD_RATE_PER_S {
        return Err(invalid(
            path,
            format!("expected at most {MAX_LOAD_RATE_PER_S:.0} requests per second, found {rate}"),
        ));
    }
    Ok(())
}

/// How many branches a step can have in flight at once: nested fan-outs multiply, a sequence
/// runs one step at a time.
pub(super) fn max_branches(step: &Step) -> u64 {
    match step {
        Step::FanOut(f) => u64::from(f.count).saturating_mul(max_branches(&f.step)),
        Step::Sequence(steps) => steps.iter().map(max_branches).max().unwrap_or(1),
        _ => 1,
    }
}

pub(super) fn check_rate(path: &str, rate: f64) -> Result<(), ModelError> {
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(invalid(
            path,
            format!("expected a rate of at least 0 per second, found {rate}"),
        ));
    }
    Ok(())
}

pub(super) fn function_region(f: &Function) -> &str {
    f.region.as_deref().unwrap_or(DEFAULT_REGION)
}

pub(super) fn validate_capacity(path: &str, capacity: &Capacity) -> Result<(), ModelError> {
    match capacity {
        Capacity::TokenBucket { rate_per_s, burst } => {
            check_rate(&format!("{path}.capacity.rate_per_s"), *rate_per_s)?;
            if !(burst.is_finite() && *burst >= 1.0) {
                return Err(invalid(
                    format!("{path}.capacity.burst"),
                    "expected a bucket size of at least 1",
                ));
            }
        }
        Capacity::Server { workers, .. } if *workers == 0 => {
            return Err(invalid(
                format!("{path}.capacity.workers"),
                "expected at least 1 worker",
            ));
        }
        Capacity::Server {
            discipline,
            queue_delay,
            ..
        } => super::resilience::validate_server(path, *discipline, queue_delay.as_ref())?,
        _ => {}
    }
    Ok(())
}

pub(super) fn validate_load(shape: &LoadShape, requests: Option<u64>) -> Result<(), ModelError> {
    match shape {
        LoadShape::Open(open) => {
            check_load_rate("load.rate_per_s", open.rate_per_s)?;
            for s in &open.steps {
                check_load_rate("load.steps.rate_per_s", s.rate_per_s)?;
            }
            for r in &open.ramps {
                check_load_rate("load.ramps.to_rate_per_s", r.to_rate_per_s)?;
            }
            for b in &open.bursts {
                if b.count > MAX_BURST {
                    return Err(invalid(
                        "load.bursts.count",
                        format!(
                            "expected at most {MAX_BURST} requests in one burst, found {}",
                            b.count
                        ),
                    ));
                }
            }
        }
        LoadShape::Closed(closed) => {
            if closed.clients == 0 || closed.clients > MAX_CLIENTS {
                return Err(invalid(
                    "load.clients",
                    format!(
                        "expected 1 to {MAX_CLIENTS} clients, found {}",
                        closed.clients
                    ),
                ));
            }
            // With (almost) no think time and no request bound, clients whose calls take no
            // time would loop forever at one instant: virtual time must be able to advance.
            // "Almost": a think time that is zero with probability just under 1 passes a
            // test of its maximum, so the test is on its mean (the work budget is the
            // backstop for what the mean cannot see).
            if requests.is_none() && approximate_mean(&closed.think_time) < MIN_MEAN_THINK {
                return Err(invalid(
                    "load.think_time",
                    "a closed loop whose mean think time is under 1us needs `requests` in \
                     [simulation] to bound it; set `requests`, or give a think time whose mean \
                     is above zero such as \"1ms\"",
                ));
            }
        }
    }
    Ok(())
}

impl Compiler<'_> {
    /// Rejects invocation cycles and returns the functions in post-order (callees before
    /// callers). Depth-first with an explicit stack: a chain of 40,000 functions must not
    /// overflow the compiler's stack.
    pub(super) fn check_cycles(&self) -> Result<Vec<usize>, ModelError> {
        let n = self.scenario.functions.len();
        let mut adjacency: Vec<Vec<(usize, &str)>> = vec![Vec::new(); n];
        for (from, to, path) in &self.edges {
            adjacency[*from].push((*to, path));
        }
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut color = vec![0u8; n];
        let mut order = Vec::with_capacity(n);
        // (function, index of its next edge to follow)
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for start in 0..n {
            if color[start] != 0 {
                continue;
            }
            color[start] = 1;
            stack.push((start, 0));
            while let Some(top) = stack.last_mut() {
                let (node, edge) = *top;
                let Some(&(next, path)) = adjacency[node].get(edge) else {
                    color[node] = 2;
                    order.push(node);
                    stack.pop();
                    continue;
                };
                top.1 += 1;
                match color[next] {
                    0 => {
                        color[next] = 1;
                        stack.push((next, 0));
                    }
                    1 => {
                        let begin = stack.iter().position(|&(s, _)| s == next).unwrap_or(0);
                        let mut names: Vec<&str> = stack[begin..]
                            .iter()
                            .map(|&(i, _)| self.scenario.functions[i].name.as_str())
                            .collect();
                        names.push(&self.scenario.functions[next].name);
                        return Err(ModelError::Cycle {
                            path: path.to_string(),
                            cycle: names.join(" -> "),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(order)
    }

    /// Rejects a model whose deepest chain of nested steps and invocations (sync, async or
    /// through a queue, all started at once by the engine) exceeds [`MAX_NESTING`]: the
    /// engine starts and completes such a chain recursively.
    pub(super) fn check_nesting(
        &self,
        functions: &[FnDef],
        order: &[usize],
    ) -> Result<(), ModelError> {
        // Nodes are pushed after their children, so one forward pass gives each node's depth.
        let mut node_depth = vec![0u32; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            node_depth[i] = 1 + match node {
                Node::Sequence { children } => children
                    .iter()
                    .map(|&c| node_depth[c as usize])
                    .max()
                    .unwrap_or(0),
                Node::FanOut { child, .. } => node_depth[*child as usize],
                _ => 0,
            };
        }
        let mut depth = vec![0u32; functions.len()];
        let mut callees: Vec<Vec<usize>> = vec![Vec::new(); functions.len()];
        for (from, to, _) in &self.edges {
            callees[*from].push(*to);
        }
        for &f in order {
            let below = callees[f].iter().map(|&g| depth[g]).max().unwrap_or(0);
            depth[f] = node_depth[functions[f].root as usize]
                .saturating_add(1)
                .saturating_add(below);
            if depth[f] > MAX_NESTING {
                return Err(invalid(
                    format!("function.{}.handler", functions[f].name),
                    format!(
                        "steps and invocations starting here nest more than {MAX_NESTING} \
                         deep (functions invoking functions, fan-outs within sequences); \
                         flatten the chain"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Bounds a builder can set that the TOML reader already refuses (`over` above 0, a
/// fraction within 0..1).
pub(super) fn validate_hypothesis(h: &Hypothesis) -> Result<(), ModelError> {
    for (i, (over, fraction)) in h.slow_rate_at_most.iter().enumerate() {
        if over.is_zero() {
            return Err(invalid(
                format!("hypothesis.slow_rate[{i}].over"),
                "the threshold must be above 0 (every answer takes some time)",
            ));
        }
        if !(0.0..=1.0).contains(fraction) {
            return Err(invalid(
                format!("hypothesis.slow_rate[{i}].at_most"),
                format!("a fraction must be within 0..1 (0%..100%), found {fraction}"),
            ));
        }
    }
    Ok(())
}

/// `[timeline]` and the recovery bound: positive durations, a tolerance within [0, 1), at
/// most [`crate::timeline::MAX_INTERVALS`] intervals over the planned run, and a recovery
/// bound only where there is a fault window to recover from.
pub(super) fn validate_timeline(scenario: &Scenario) -> Result<(), ModelError> {
    let t = &scenario.timeline;
    for (field, value) in [
        ("interval", t.interval),
        ("recovery_sustain", t.recovery_sustain),
    ] {
        match value {
            Some(d) if d.is_zero() => {
                return Err(invalid(
                    format!("timeline.{field}"),
                    "expected a duration above 0, like \"1s\"",
                ));
            }
            Some(d) if d > MAX_DURATION => {
                return Err(invalid(
                    format!("timeline.{field}"),
                    "expected at most 3650 days (the longest duration a scenario may use)",
                ));
            }
            _ => {}
        }
    }
    if let (Some(interval), Some(duration)) = (t.interval, scenario.duration) {
        let intervals = duration.as_nanos() / interval.as_nanos().max(1);
        if intervals >= crate::timeline::MAX_INTERVALS as u128 {
            return Err(invalid(
                "timeline.interval",
                format!(
                    "{interval:?} cuts the {duration:?} run into {intervals} intervals, more \
                     than the {} a run records; use a longer interval (or leave it out: the \
                     default gives about 60 to 120)",
                    crate::timeline::MAX_INTERVALS
                ),
            ));
        }
    }
    if !(0.0..1.0).contains(&t.recovery_tolerance) {
        return Err(invalid(
            "timeline.recovery_tolerance",
            format!(
                "expected a fraction in [0%, 100%) of the control run's goodput, found {}",
                t.recovery_tolerance
            ),
        ));
    }
    if scenario.hypothesis.recovery_time_at_most.is_some() {
        match crate::recovery::faults_end(&scenario.faults) {
            crate::recovery::FaultsEnd::At(_) => {}
            crate::recovery::FaultsEnd::NoFaults => {
                return Err(invalid(
                    "hypothesis.recovery_time",
                    "the scenario has no [[fault]] to recover from; add a fault with a \
                     `window = { start = ..., duration = ... }`, or remove this bound",
                ));
            }
            crate::recovery::FaultsEnd::Never(i) => {
                return Err(invalid(
                    "hypothesis.recovery_time",
                    format!(
                        "fault {i} has no end (no `window`, or a window without `duration`), \
                         so there is no time after the faults to recover in; give it \
                         `window = {{ start = ..., duration = ... }}`"
                    ),
                ));
            }
        }
    }
    Ok(())
}
