//! Conversion from the raw form to the model, recording each field's span.

use super::*;

use super::hypothesis::convert_hypothesis;
use super::raw::*;

pub(super) fn fail(path: impl Into<String>, message: impl Into<String>) -> Located {
    Located {
        path: path.into(),
        message: message.into(),
    }
}
pub(super) fn convert(raw: RawScenario, spans: &mut Spans) -> Result<Scenario, Located> {
    let sim = raw.simulation;
    let functions = convert_functions(raw.function, spans)?;
    let dependencies = convert_dependencies(raw.dependency, spans)?;
    let network = convert_network(raw.network, spans);
    let queues = convert_queues(raw.queue, spans);
    let load = convert_load(raw.load, spans)?;
    let mut account = Account::default();
    if let Some(a) = raw.account {
        if let Some(c) = a.concurrency {
            account.concurrency = c;
        }
        if let Some(u) = a.unreserved_minimum {
            account.unreserved_minimum = u;
        }
    }
    let hypothesis = convert_hypothesis(raw.hypothesis, spans)?;
    let mut timeline = TimelineSettings::default();
    if let Some(t) = raw.timeline {
        let mut duration_field = |name: &str, value: Option<Spanned<String>>| {
            let Some(value) = value else {
                return Ok(None);
            };
            let path = format!("timeline.{name}");
            spans.record(&path, value.span());
            super::raw::parse_duration_value(value.get_ref())
                .map(Some)
                .map_err(|m| fail(path, m))
        };
        timeline.interval = duration_field("interval", t.interval)?;
        timeline.recovery_sustain = duration_field("recovery_sustain", t.recovery_sustain)?;
        if let Some(tolerance) = t.recovery_tolerance {
            let path = "timeline.recovery_tolerance";
            spans.record(path, tolerance.span());
            let value = tolerance.into_inner();
            timeline.recovery_tolerance = match &value {
                toml::Value::String(text) if !text.trim_start().starts_with(['<', '>']) => {
                    super::hypothesis::bound_ratio(path, &value, "<=")?
                }
                toml::Value::Float(_) | toml::Value::Integer(_) => {
                    super::hypothesis::bound_ratio(path, &value, "<=")?
                }
                _ => {
                    return Err(fail(
                        path,
                        "expected a fraction like \"10%\" or 0.1 (how far below the control \
                         run's goodput still counts as recovered)",
                    ));
                }
            };
        }
    }
    Ok(Scenario {
        name: sim.name.unwrap_or_else(|| "scenario".to_string()),
        seed: sim.seed,
        duration: sim.duration,
        requests: sim.requests,
        max_events: sim.max_events.unwrap_or(DEFAULT_MAX_EVENTS),
        drain: sim.drain.unwrap_or(Duration::from_secs(900)),
        account,
        load,
        functions,
        dependencies,
        network,
        queues,
        faults: raw
            .fault
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                spans.record(format!("fault.{i}"), rule.span());
                rule.into_inner()
            })
            .collect(),
        hypothesis,
        timeline,
    })
}

/// Converts one handler step. Over 120 lines because a step is one flat table whose kind is
/// decided by which key is present: the checks of which fields go with which kind read best
/// together, next to the conversion of each kind.
pub(super) fn convert_step(
    step: Spanned<RawStep>,
    path: &str,
    spans: &mut Spans,
) -> Result<Step, Located> {
    spans.record(path, step.span());
    let s = step.into_inner();
    let kinds = [
        s.compute.is_some(),
        s.call.is_some(),
        s.fan_out.is_some(),
        s.invoke.is_some(),
        s.publish.is_some(),
        s.sequence.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds != 1 {
        return Err(fail(
            path,
            format!(
                "a step needs exactly one of `compute`, `call`, `fan_out`, `invoke`, `publish`, \
                 `sequence`; found {kinds}"
            ),
        ));
    }
    let only = |ok: bool, field: &str, kind: &str| -> Result<(), Located> {
        if ok {
            Ok(())
        } else {
            Err(fail(
                format!("{path}.{field}"),
                format!("`{field}` only applies to {kind}"),
            ))
        }
    };
    only(
        s.count.is_none() && s.join.is_none(),
        "count",
        "the table inside `fan_out = { ... }`",
    )?;
    let is_call = s.call.is_some();
    only(
        s.mode.is_none() || s.invoke.is_some(),
        "mode",
        "`invoke` steps",
    )?;
    for (present, field) in [
        (s.operation.is_some(), "operation"),
        (s.timeout.is_some(), "timeout"),
        (s.retry.is_some(), "retry"),
        (s.retry_budget.is_some(), "retry_budget"),
        (s.hedge.is_some(), "hedge"),
        (s.circuit_breaker.is_some(), "circuit_breaker"),
        (s.fallback.is_some(), "fallback"),
        (s.failover.is_some(), "failover"),
    ] {
        only(!present || is_call, field, "`call` steps")?;
    }
    if let Some(dist) = s.compute {
        return Ok(Step::Compute(dist));
    }
    if let Some(name) = s.publish {
        spans.record(format!("{path}.publish"), name.span());
        return Ok(Step::Publish(name.into_inner()));
    }
    if let Some(name) = s.invoke {
        spans.record(format!("{path}.invoke"), name.span());
        return Ok(Step::Invoke(InvokeStep {
            function: name.into_inner(),
            mode: s.mode.unwrap_or(InvokeMode::Sync),
        }));
    }
    if let Some(children) = s.sequence {
        let mut steps = Vec::new();
        for (i, c) in children.into_iter().enumerate() {
            steps.push(convert_step(c, &format!("{path}.sequence.{i}"), spans)?);
        }
        return Ok(Step::Sequence(steps));
    }
    if let Some(inner) = s.fan_out {
        let inner = *inner;
        let fan_path = format!("{path}.fan_out");
        let span = inner.span();
        let mut table = inner.into_inner();
        let count = table.count.take().ok_or_else(|| {
            fail(
                format!("{fan_path}.count"),
                "a fan-out needs `count = N` (parallel branches)",
            )
        })?;
        let join = table.join.take().unwrap_or(Join::All);
        // The branch is the rest of the table, located at the fan-out's own path.
        let branch = convert_step(Spanned::new(span, table), &fan_path, spans)?;
        return Ok(Step::FanOut(FanOut {
            count,
            join,
            step: Box::new(branch),
        }));
    }
    let Some(dependency) = s.call else {
        return Err(fail(path, "empty step"));
    };
    spans.record(format!("{path}.call"), dependency.span());
    if let Some(f) = &s.failover {
        spans.record(format!("{path}.failover"), f.span());
    }
    let retry = match s.retry {
        None | Some(RawRetry::None) => Retry::None,
        Some(RawRetry::SdkStandard) => Retry::SdkStandard,
        Some(RawRetry::Table(t)) => convert_retry_table(t, path)?,
    };
    let retry_budget = match s.retry_budget {
        None => None,
        Some(b) => {
            spans.record(format!("{path}.retry_budget"), b.span());
            Some(convert_retry_budget(b.into_inner(), path)?)
        }
    };
    if s.quota_scope.is_some() && retry != Retry::SdkStandard {
        return Err(fail(
            format!("{path}.quota_scope"),
            "`quota_scope` applies to `retry = \"sdk_standard\"` only: set that retry \
             policy or remove `quota_scope`",
        ));
    }
    Ok(Step::Call(CallStep {
        dependency: dependency.into_inner(),
        operation: s.operation.unwrap_or_else(|| "call".to_string()),
        timeout: s.timeout,
        retry,
        hedge: s.hedge.map(|h| Hedge {
            after: h.0.after,
            max_extra: h.0.max_extra,
        }),
        circuit_breaker: s.circuit_breaker.map(|b| CircuitBreaker {
            failure_threshold: b.failure_threshold,
            open_for: b.open_for,
            half_open_probes: b.half_open_probes,
        }),
        fallback: s.fallback.unwrap_or(false),
        failover: s.failover.map(Spanned::into_inner),
        retry_budget,
        quota_scope: s.quota_scope.unwrap_or_default(),
    }))
}

/// `{ attempts = N, ... }` (a count) or `{ within = "10s" | "deadline", ... }` (a time).
fn convert_retry_table(t: RawRetryTable, path: &str) -> Result<Retry, Located> {
    let backoff = t.backoff;
    let base = t.base.unwrap_or(Duration::from_millis(25));
    let cap = t.cap.unwrap_or(Duration::from_secs(20));
    match (t.attempts, t.within) {
        (Some(max_attempts), None) => Ok(Retry::Backoff {
            max_attempts,
            backoff,
            base,
            cap,
        }),
        (None, Some(within)) => Ok(Retry::UntilSuccess {
            within: within.0,
            backoff,
            base,
            cap,
        }),
        (Some(_), Some(_)) => Err(fail(
            format!("{path}.retry.within"),
            "set `attempts` (retry a number of times) or `within` (retry until success for a \
             time), not both",
        )),
        (None, None) => Err(fail(
            format!("{path}.retry"),
            "a retry table needs `attempts = 3` (a count) or `within = \"10s\"` / \
             `within = \"deadline\"` (until success, bounded by time)",
        )),
    }
}

/// gRPC's throttling (`max_tokens`, `token_ratio`) or Finagle's budget (`percent`,
/// `min_retries_per_s`, `ttl`).
fn convert_retry_budget(b: RawRetryBudget, path: &str) -> Result<RetryBudget, Located> {
    let grpc = b.max_tokens.is_some() || b.token_ratio.is_some();
    let finagle = b.percent.is_some() || b.min_retries_per_s.is_some() || b.ttl.is_some();
    let at = format!("{path}.retry_budget");
    match (grpc, finagle) {
        (true, false) => match (b.max_tokens, b.token_ratio) {
            (Some(max_tokens), Some(token_ratio)) => Ok(RetryBudget::TokenBucket {
                max_tokens,
                token_ratio,
            }),
            _ => Err(fail(
                at,
                "gRPC-style retry throttling needs both `max_tokens` and `token_ratio` (e.g. \
                 { max_tokens = 10, token_ratio = 0.1 })",
            )),
        },
        (false, true) => {
            let Some(percent) = b.percent else {
                return Err(fail(
                    at,
                    "a percentage budget needs `percent` (e.g. { percent = \"20%\", \
                     min_retries_per_s = 10, ttl = \"10s\" })",
                ));
            };
            Ok(RetryBudget::Percent {
                percent: percent.0,
                min_retries_per_s: b.min_retries_per_s.unwrap_or(10.0),
                ttl: b.ttl.unwrap_or(Duration::from_secs(10)),
            })
        }
        (true, true) => Err(fail(
            at,
            "use either gRPC's throttling (`max_tokens`, `token_ratio`) or a percentage budget \
             (`percent`, `min_retries_per_s`, `ttl`), not both",
        )),
        (false, false) => Err(fail(
            at,
            "an empty retry budget: set { max_tokens = 10, token_ratio = 0.1 } or \
             { percent = \"20%\" }",
        )),
    }
}

fn convert_functions(
    raw: Vec<Spanned<RawFunction>>,
    spans: &mut Spans,
) -> Result<Vec<Function>, Located> {
    let mut functions = Vec::new();
    for f in raw {
        let span = f.span();
        let f = f.into_inner();
        let name = f.name.get_ref().clone();
        let base = format!("function.{name}");
        spans.record(&base, span);
        spans.record(format!("{base}.name"), f.name.span());
        spans.record(format!("{base}.handler"), f.handler.span());
        let handler_path = format!("{base}.handler");
        let mut handler = Vec::new();
        for (i, step) in f.handler.into_inner().into_iter().enumerate() {
            handler.push(convert_step(step, &format!("{handler_path}.{i}"), spans)?);
        }
        let mut function = Function::new(name, handler);
        function.region = f.region;
        if let Some(m) = f.memory_mb {
            function.memory_mb = m;
        }
        if let Some(t) = f.timeout {
            function.timeout = t;
        }
        function.reserved_concurrency = f.reserved_concurrency;
        if let Some(c) = f.cold_start {
            function.cold_start = c;
        }
        if let Some(k) = f.keep_alive {
            function.keep_alive = k;
        }
        if let Some(s) = f.scaling {
            function.scaling = ScalingLimit {
                burst: s.burst.unwrap_or(function.scaling.burst),
                per_second: s.per_second.unwrap_or(function.scaling.per_second),
            };
        }
        if let Some(RawArch::Arm64) = f.architecture {
            function.price = Price::ARM64;
        }
        if let Some(a) = f.async_config {
            if let Some(n) = a.max_retry_attempts {
                function.async_config.max_retry_attempts = n;
            }
            if let Some(age) = a.max_event_age {
                if age < Duration::from_secs(60) || age > Duration::from_secs(6 * 3600) {
                    return Err(fail(
                        format!("{base}.async"),
                        "max_event_age must be between 1m and 6h (the Lambda range)",
                    ));
                }
                function.async_config.max_event_age = age;
            }
        }
        functions.push(function);
    }
    Ok(functions)
}

fn convert_dependencies(
    raw: Vec<Spanned<RawDependency>>,
    spans: &mut Spans,
) -> Result<Vec<Dependency>, Located> {
    let mut dependencies = Vec::new();
    for d in raw {
        let span = d.span();
        let d = d.into_inner();
        let name = d.name.get_ref().clone();
        let base = format!("dependency.{name}");
        spans.record(&base, span);
        spans.record(format!("{base}.name"), d.name.span());
        let mut regions = d.regions;
        if let Some(r) = d.region {
            if !regions.is_empty() {
                return Err(fail(
                    format!("{base}.region"),
                    "set either `region` or `regions`, not both",
                ));
            }
            regions.push(r);
        }
        if let Some(c) = &d.capacity {
            spans.record(format!("{base}.capacity"), c.span());
        }
        let capacity = match d.capacity.map(Spanned::into_inner) {
            None | Some(RawCapacity::Unlimited) => Capacity::Unlimited,
            Some(RawCapacity::OptimisticItem)
            | Some(RawCapacity::Table(RawCapacityTable::OptimisticItem {})) => {
                Capacity::OptimisticItem
            }
            Some(RawCapacity::Table(RawCapacityTable::TokenBucket { rate_per_s, burst })) => {
                Capacity::TokenBucket { rate_per_s, burst }
            }
            Some(RawCapacity::Table(RawCapacityTable::Provisioned {
                units_per_s,
                burst_seconds,
            })) => {
                // `f64::max` would turn a NaN burst into 1: check the inputs first.
                if !(burst_seconds.is_finite() && burst_seconds >= 0.0) {
                    return Err(fail(
                        format!("{base}.capacity.burst_seconds"),
                        format!(
                            "expected a number of seconds of at least 0, found {burst_seconds}"
                        ),
                    ));
                }
                if !(units_per_s.is_finite() && units_per_s >= 0.0) {
                    return Err(fail(
                        format!("{base}.capacity.units_per_s"),
                        format!("expected a rate of at least 0 per second, found {units_per_s}"),
                    ));
                }
                Capacity::TokenBucket {
                    rate_per_s: units_per_s,
                    burst: (units_per_s * burst_seconds).max(1.0),
                }
            }
            Some(RawCapacity::Table(RawCapacityTable::Server {
                workers,
                discipline,
                abandoned,
                queue_delay,
            })) => Capacity::Server {
                workers,
                discipline,
                abandoned,
                queue_delay: queue_delay.map(|q| ControlledDelay {
                    target: q.target.unwrap_or(Duration::from_millis(5)),
                    interval: q.interval.unwrap_or(Duration::from_millis(100)),
                }),
            },
        };
        let hops = match d.hops {
            None => Hops::default(),
            Some(hops) => {
                spans.record(format!("{base}.hops"), hops.span());
                let hops = hops.into_inner();
                if hops.request.is_none() && hops.response.is_none() {
                    return Err(fail(
                        format!("{base}.hops"),
                        "set `request`, `response` or both, such as \
                         `hops = { request = \"2ms\", response = \"2ms\" }`, or remove `hops`",
                    ));
                }
                Hops {
                    request: hops.request,
                    response: hops.response,
                }
            }
        };
        let retry_partition = d.retry_partition.map(|p| {
            spans.record(format!("{base}.retry_partition"), p.span());
            p.into_inner()
        });
        dependencies.push(Dependency {
            name,
            regions,
            latency: d.latency,
            capacity,
            hops,
            retry_partition,
        });
    }
    Ok(dependencies)
}

/// `[[network]]` entries, located by their index (`network.0.from`); the program checks the
/// region names, duplicate pairs and empty entries, for files and builders alike.
fn convert_network(raw: Vec<Spanned<RawRegionHops>>, spans: &mut Spans) -> Vec<RegionHops> {
    let mut network = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let base = format!("network.{i}");
        spans.record(&base, entry.span());
        let entry = entry.into_inner();
        spans.record(format!("{base}.from"), entry.from.span());
        spans.record(format!("{base}.to"), entry.to.span());
        network.push(RegionHops::new(
            entry.from.into_inner(),
            entry.to.into_inner(),
            Hops {
                request: entry.request,
                response: entry.response,
            },
        ));
    }
    network
}

fn convert_queues(raw: Vec<Spanned<RawQueue>>, spans: &mut Spans) -> Vec<Queue> {
    let mut queues = Vec::new();
    for q in raw {
        let span = q.span();
        let q = q.into_inner();
        let name = q.name.get_ref().clone();
        let base = format!("queue.{name}");
        spans.record(&base, span);
        spans.record(format!("{base}.name"), q.name.span());
        spans.record(format!("{base}.consumer"), q.consumer.span());
        let mut queue = Queue::new(name, q.consumer.into_inner());
        if let Some(b) = q.batch_size {
            queue.batch_size = b;
        }
        if let Some(c) = q.max_concurrency {
            queue.max_concurrency = c;
        }
        if let Some(v) = q.visibility_timeout {
            queue.visibility_timeout = v;
        }
        if let Some(m) = q.max_receives {
            queue.max_receives = m;
        }
        queues.push(queue);
    }
    queues
}

fn convert_load(raw: Spanned<RawLoad>, spans: &mut Spans) -> Result<Load, Located> {
    let load_span = raw.span();
    let load = raw.into_inner();
    spans.record("load", load_span);
    spans.record("load.target", load.target.span());
    let shape = match load.kind {
        RawLoadKind::Closed => {
            let Some(clients) = load.clients else {
                return Err(fail("load.clients", "a closed loop needs `clients = N`"));
            };
            if load.rate_per_s.is_some() {
                return Err(fail(
                    "load.rate_per_s",
                    "a closed loop has no rate; remove `rate_per_s` or use kind = \"poisson\"",
                ));
            }
            for (field, set) in [
                ("load.steps", !load.steps.is_empty()),
                ("load.ramps", !load.ramps.is_empty()),
                ("load.bursts", !load.bursts.is_empty()),
            ] {
                if set {
                    return Err(fail(
                        field,
                        "steps, ramps and bursts shape an open loop's rate; a closed loop has \
                         none: remove them or use kind = \"poisson\"",
                    ));
                }
            }
            LoadShape::Closed(ClosedLoop {
                clients,
                think_time: load
                    .think_time
                    .unwrap_or_else(|| LatencyDist::constant(Duration::ZERO)),
                start_spread: load.start_spread.unwrap_or(Duration::ZERO),
            })
        }
        kind => {
            if load.clients.is_some() || load.think_time.is_some() || load.start_spread.is_some() {
                return Err(fail(
                    "load.clients",
                    "`clients`, `think_time` and `start_spread` belong to kind = \"closed\"",
                ));
            }
            let Some(rate) = load.rate_per_s else {
                return Err(fail(
                    "load.rate_per_s",
                    "an open loop needs `rate_per_s = N` (requests per second)",
                ));
            };
            LoadShape::Open(OpenLoop {
                arrivals: match kind {
                    RawLoadKind::Constant => Arrivals::Constant,
                    _ => Arrivals::Poisson,
                },
                rate_per_s: rate,
                steps: load
                    .steps
                    .into_iter()
                    .map(|s| RateStep {
                        at: s.at,
                        rate_per_s: s.rate_per_s,
                    })
                    .collect(),
                ramps: load
                    .ramps
                    .into_iter()
                    .map(|r| RateRamp {
                        start: r.start,
                        duration: r.duration,
                        to_rate_per_s: r.to_rate_per_s,
                    })
                    .collect(),
                bursts: load
                    .bursts
                    .into_iter()
                    .map(|b| Burst {
                        at: b.at,
                        count: b.count,
                    })
                    .collect(),
            })
        }
    };
    Ok(Load {
        target: load.target.into_inner(),
        invocation: load.invocation,
        shape,
    })
}
