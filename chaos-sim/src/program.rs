//! Validation of a [`Scenario`] and its compilation to the flat, index-based form the engine runs.

use crate::core_api::LatencyDist;
use crate::model::*;
use crate::rng::StreamId;
use std::collections::BTreeMap;
use std::time::Duration;

/// A scenario that cannot run, with the path of the offending field.
///
/// Paths look like `function.checkout.handler.1.fan_out.call`; the scenario parser turns them
/// into file, line and column.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A name that is not defined.
    #[error(
        "`{path}`: no {kind} named `{name}` is defined{}",
        suggestion_text(suggestion)
    )]
    Undefined {
        /// Field path.
        path: String,
        /// What kind of element was expected (`function`, `dependency`, `queue`, `region`).
        kind: &'static str,
        /// The name used.
        name: String,
        /// A defined name close to it, if any.
        suggestion: Option<String>,
    },
    /// Two elements with one name.
    #[error("`{path}`: {kind} `{name}` is defined twice; give each a unique name")]
    Duplicate {
        /// Field path.
        path: String,
        /// Element kind.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// Functions that invoke each other in a loop.
    #[error("`{path}`: invocation cycle {cycle}; a function may not (indirectly) invoke itself")]
    Cycle {
        /// Field path of the step that closes the cycle.
        path: String,
        /// The cycle, e.g. `a -> b -> a`.
        cycle: String,
    },
    /// A value out of range.
    #[error("`{path}`: {message}")]
    Invalid {
        /// Field path.
        path: String,
        /// What was wrong and what is expected.
        message: String,
    },
}

impl ModelError {
    /// The field path the error is about.
    pub fn path(&self) -> &str {
        match self {
            ModelError::Undefined { path, .. }
            | ModelError::Duplicate { path, .. }
            | ModelError::Cycle { path, .. }
            | ModelError::Invalid { path, .. } => path,
        }
    }
}

fn suggestion_text(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

/// The defined name closest to `name`, if close enough to be a likely typo.
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ModelError {
    ModelError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How a function's concurrency is limited.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Limit {
    Reserved(u32),
    Unreserved,
}

#[derive(Clone, Debug)]
pub(crate) struct FnDef {
    pub name: String,
    pub region: usize,
    pub memory_mb: u64,
    pub timeout_ns: u64,
    pub limit: Limit,
    pub cold_start: LatencyDist,
    pub cold_stream: StreamId,
    pub keep_alive_ns: u64,
    pub scaling: ScalingLimit,
    pub price: Price,
    pub async_config: AsyncConfig,
    pub root: u32,
    pub site: String,
    pub timeout_lane: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct ReplicaDef {
    pub dep: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct DepDef {
    pub name: String,
    pub latency: LatencyDist,
    pub capacity: Capacity,
    pub service_stream: StreamId,
    /// (region, replica index).
    pub replicas: Vec<(usize, usize)>,
}

#[derive(Clone, Debug)]
pub(crate) struct CallNode {
    pub dep: usize,
    pub primary: usize,
    pub failover: Option<usize>,
    pub site_primary: String,
    pub site_failover: String,
    pub operation: String,
    pub timeout_ns: Option<u64>,
    pub retry: Retry,
    pub hedge: Option<(u64, u32)>,
    pub breaker: Option<(usize, CircuitBreaker)>,
    /// SDK standard retry quota buckets: [primary, failover] (the same bucket when both
    /// replicas are in one region). A bucket is keyed by (calling function, dependency,
    /// region served): the SDK's retry partition is per service and Region, process-wide.
    /// All environments of a function share it, an approximation of one per process.
    pub quota: Option<[usize; 2]>,
    pub fallback: bool,
    pub backoff_stream: StreamId,
    /// No resilience and a capacity decided at issue time: runs without a frame of its own.
    pub plain: bool,
    pub timeout_lane: usize,
    pub hedge_lane: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Compute { dist: LatencyDist, stream: StreamId },
    Call(Box<CallNode>),
    FanOut { count: u32, join: Join, child: u32 },
    Sequence { children: Vec<u32> },
    Invoke { function: usize, mode: InvokeMode },
    Publish { queue: usize },
}

#[derive(Clone, Debug)]
pub(crate) struct QueueDef {
    pub consumer: usize,
    pub batch_size: u32,
    pub max_concurrency: u32,
    pub visibility_timeout_ns: u64,
    pub max_receives: u32,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Entry {
    Function(usize, Invocation),
    Queue(usize),
}

/// The compiled, index-based form of a scenario.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub regions: Vec<String>,
    pub functions: Vec<FnDef>,
    pub deps: Vec<DepDef>,
    pub replicas: Vec<ReplicaDef>,
    pub nodes: Vec<Node>,
    pub queues: Vec<QueueDef>,
    pub breakers: usize,
    pub quotas: usize,
    pub entry: Entry,
    /// Unreserved pool size per region.
    pub unreserved_pool: Vec<u32>,
    /// Distinct fixed timer delays; timers of one delay fire in the order they were set, so
    /// each delay gets a FIFO lane instead of heap entries.
    pub lanes: Vec<u64>,
}

struct Compiler<'s> {
    scenario: &'s Scenario,
    fn_index: BTreeMap<&'s str, usize>,
    dep_index: BTreeMap<&'s str, usize>,
    queue_index: BTreeMap<&'s str, usize>,
    regions: Vec<String>,
    nodes: Vec<Node>,
    replicas: Vec<ReplicaDef>,
    deps: Vec<DepDef>,
    breakers: usize,
    /// (function, dependency, region) -> retry quota bucket.
    quotas: BTreeMap<(usize, usize, usize), usize>,
    /// Invocation edges: (caller, callee, path of the step).
    edges: Vec<(usize, usize, String)>,
    lanes: Vec<u64>,
}

impl Compiler<'_> {
    fn lane(&mut self, delay: u64) -> usize {
        match self.lanes.iter().position(|&d| d == delay) {
            Some(i) => i,
            None => {
                self.lanes.push(delay);
                self.lanes.len() - 1
            }
        }
    }

    fn region(&mut self, name: &str) -> usize {
        match self.regions.iter().position(|r| r == name) {
            Some(i) => i,
            None => {
                self.regions.push(name.to_string());
                self.regions.len() - 1
            }
        }
    }
}

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
fn approximate_mean(dist: &LatencyDist) -> Duration {
    const N: u32 = 1_000;
    let total: f64 = (0..N)
        .filter_map(|i| dist.quantile((f64::from(i) + 0.5) / f64::from(N)))
        .map(|d| d.as_secs_f64())
        .sum();
    Duration::try_from_secs_f64(total / f64::from(N)).unwrap_or(Duration::MAX)
}

/// The deepest chain of nested steps and invocations a model may have (see
/// `Compiler::check_nesting`). Lambda itself stops recursive loops after 16 invocations.
pub(crate) const MAX_NESTING: u32 = 256;

/// The most branches one invocation may have in flight (the product of nested fan-outs).
const MAX_BRANCHES: u64 = 1_000_000;

fn check_load_rate(path: &str, rate: f64) -> Result<(), ModelError> {
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
fn max_branches(step: &Step) -> u64 {
    match step {
        Step::FanOut(f) => u64::from(f.count).saturating_mul(max_branches(&f.step)),
        Step::Sequence(steps) => steps.iter().map(max_branches).max().unwrap_or(1),
        _ => 1,
    }
}

fn check_rate(path: &str, rate: f64) -> Result<(), ModelError> {
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(invalid(
            path,
            format!("expected a rate of at least 0 per second, found {rate}"),
        ));
    }
    Ok(())
}

fn function_region(f: &Function) -> &str {
    f.region.as_deref().unwrap_or(DEFAULT_REGION)
}

impl Program {
    /// Validates `scenario` and compiles it.
    pub(crate) fn compile(scenario: &Scenario) -> Result<Program, ModelError> {
        let mut c = Compiler {
            scenario,
            fn_index: BTreeMap::new(),
            dep_index: BTreeMap::new(),
            queue_index: BTreeMap::new(),
            regions: Vec::new(),
            nodes: Vec::new(),
            replicas: Vec::new(),
            deps: Vec::new(),
            breakers: 0,
            quotas: BTreeMap::new(),
            edges: Vec::new(),
            lanes: Vec::new(),
        };
        if scenario.duration.is_none() && scenario.requests.is_none() {
            return Err(invalid(
                "simulation.duration",
                "set `duration` (e.g. \"10m\") or `requests` so the run ends",
            ));
        }
        for (i, f) in scenario.functions.iter().enumerate() {
            if c.fn_index.insert(&f.name, i).is_some() {
                return Err(ModelError::Duplicate {
                    path: format!("function.{}.name", f.name),
                    kind: "function",
                    name: f.name.clone(),
                });
            }
        }
        for (i, d) in scenario.dependencies.iter().enumerate() {
            if c.dep_index.insert(&d.name, i).is_some() {
                return Err(ModelError::Duplicate {
                    path: format!("dependency.{}.name", d.name),
                    kind: "dependency",
                    name: d.name.clone(),
                });
            }
        }
        for (i, q) in scenario.queues.iter().enumerate() {
            if c.queue_index.insert(&q.name, i).is_some() {
                return Err(ModelError::Duplicate {
                    path: format!("queue.{}.name", q.name),
                    kind: "queue",
                    name: q.name.clone(),
                });
            }
        }
        // Regions: every function region and dependency replica region, in definition order.
        for f in &scenario.functions {
            c.region(function_region(f));
        }
        for (i, d) in scenario.dependencies.iter().enumerate() {
            let path = format!("dependency.{}", d.name);
            validate_capacity(&path, &d.capacity)?;
            let names: Vec<String> = if d.regions.is_empty() {
                vec![DEFAULT_REGION.to_string()]
            } else {
                d.regions.clone()
            };
            let mut replicas = Vec::new();
            for r in &names {
                let region = c.region(r);
                if replicas.iter().any(|&(reg, _)| reg == region) {
                    return Err(invalid(
                        format!("{path}.regions"),
                        format!("region `{r}` is listed twice"),
                    ));
                }
                c.replicas.push(ReplicaDef { dep: i });
                replicas.push((region, c.replicas.len() - 1));
            }
            c.deps.push(DepDef {
                name: d.name.clone(),
                latency: d.latency.clone(),
                capacity: d.capacity.clone(),
                service_stream: StreamId::named(&format!("service/{}", d.name)),
                replicas,
            });
        }
        let mut functions = Vec::new();
        let account = scenario.account.clone();
        if account.unreserved_minimum > account.concurrency {
            return Err(invalid(
                "account.unreserved_minimum",
                "must not exceed account.concurrency",
            ));
        }
        let mut reserved_by_region: BTreeMap<usize, u64> = BTreeMap::new();
        for (i, f) in scenario.functions.iter().enumerate() {
            let path = format!("function.{}", f.name);
            if !(128..=10240).contains(&f.memory_mb) {
                return Err(invalid(
                    format!("{path}.memory_mb"),
                    format!(
                        "expected 128 to 10240 MB (the Lambda range), found {}",
                        f.memory_mb
                    ),
                ));
            }
            if f.timeout.is_zero() || f.timeout > Duration::from_secs(900) {
                return Err(invalid(
                    format!("{path}.timeout"),
                    "expected a timeout between 1ms and 15m (the Lambda maximum)",
                ));
            }
            if f.async_config.max_retry_attempts > 2 {
                return Err(invalid(
                    format!("{path}.async.max_retry_attempts"),
                    "expected 0, 1 or 2 (the Lambda range)",
                ));
            }
            check_rate(&format!("{path}.scaling.per_second"), f.scaling.per_second)?;
            if f.handler.is_empty() {
                return Err(invalid(
                    format!("{path}.handler"),
                    "a handler needs at least one step, e.g. [{ compute = \"5ms\" }]",
                ));
            }
            let region = c.region(function_region(f));
            if let Some(r) = f.reserved_concurrency {
                *reserved_by_region.entry(region).or_default() += u64::from(r);
            }
            let handler_path = format!("{path}.handler");
            let root = c.sequence(i, &handler_path, &f.handler)?;
            let timeout_lane = c.lane(nanos(f.timeout));
            functions.push(FnDef {
                name: f.name.clone(),
                region,
                memory_mb: u64::from(f.memory_mb),
                timeout_ns: nanos(f.timeout),
                limit: match f.reserved_concurrency {
                    Some(r) => Limit::Reserved(r),
                    None => Limit::Unreserved,
                },
                cold_start: f.cold_start.clone(),
                cold_stream: StreamId::named(&format!("cold_start/{}", f.name)),
                keep_alive_ns: nanos(f.keep_alive),
                scaling: f.scaling,
                price: f.price,
                async_config: f.async_config,
                root,
                site: format!("{}/{}", function_region(f), f.name),
                timeout_lane,
            });
        }
        let mut unreserved_pool = vec![account.concurrency; c.regions.len()];
        for (region, reserved) in &reserved_by_region {
            let limit = u64::from(account.concurrency - account.unreserved_minimum);
            if *reserved > limit {
                return Err(invalid(
                    "function.reserved_concurrency",
                    format!(
                        "functions in {} reserve {reserved}, more than account.concurrency minus \
                         account.unreserved_minimum ({limit})",
                        c.regions[*region]
                    ),
                ));
            }
            unreserved_pool[*region] = account.concurrency - *reserved as u32;
        }
        let mut queues = Vec::new();
        for q in &scenario.queues {
            let path = format!("queue.{}", q.name);
            let consumer = c.lookup_function(&format!("{path}.consumer"), &q.consumer)?;
            if queues.len() >= usize::from(u16::MAX) {
                return Err(invalid(path, "at most 65535 queues"));
            }
            if !(2..=1000).contains(&q.max_concurrency) {
                return Err(invalid(
                    format!("queue.{}.max_concurrency", q.name),
                    format!(
                        "expected 2 to 1000 (Lambda's MaximumConcurrency for SQS), found {}",
                        q.max_concurrency
                    ),
                ));
            }
            if q.batch_size == 0 || q.max_concurrency == 0 || q.max_receives == 0 {
                return Err(invalid(
                    path,
                    "batch_size, max_concurrency and max_receives must be at least 1",
                ));
            }
            queues.push(QueueDef {
                consumer,
                batch_size: q.batch_size,
                max_concurrency: q.max_concurrency,
                visibility_timeout_ns: nanos(q.visibility_timeout),
                max_receives: q.max_receives,
            });
        }
        // Publish edges go to the queue's consumer.
        let publish_edges: Vec<(usize, usize, String)> = c
            .edges
            .iter()
            .filter(|e| e.1 >= functions.len())
            .map(|e| (e.0, queues[e.1 - functions.len()].consumer, e.2.clone()))
            .collect();
        c.edges.retain(|e| e.1 < functions.len());
        c.edges.extend(publish_edges);
        let order = c.check_cycles()?;
        c.check_nesting(&functions, &order)?;
        let entry = c.entry()?;
        validate_load(&scenario.load.shape, scenario.requests)?;
        for (path, d) in [
            ("simulation.duration", scenario.duration),
            ("simulation.drain", Some(scenario.drain)),
        ] {
            if d.is_some_and(|d| d > MAX_DURATION) {
                return Err(invalid(
                    path,
                    "expected at most 3650 days (the longest duration a scenario may use)",
                ));
            }
        }
        if scenario.requests == Some(0) {
            return Err(invalid(
                "simulation.requests",
                "expected at least 1 request (leave `requests` out to bound the run by `duration`)",
            ));
        }
        if scenario.max_events == 0 {
            return Err(invalid(
                "simulation.max_events",
                "expected a work budget of at least 1 event",
            ));
        }
        Ok(Program {
            regions: c.regions,
            functions,
            deps: c.deps,
            replicas: c.replicas,
            nodes: c.nodes,
            queues,
            breakers: c.breakers,
            quotas: c.quotas.len(),
            entry,
            unreserved_pool,
            lanes: c.lanes,
        })
    }
}

fn validate_capacity(path: &str, capacity: &Capacity) -> Result<(), ModelError> {
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
        _ => {}
    }
    Ok(())
}

fn validate_load(shape: &LoadShape, requests: Option<u64>) -> Result<(), ModelError> {
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

impl<'s> Compiler<'s> {
    fn lookup_function(&self, path: &str, name: &str) -> Result<usize, ModelError> {
        self.fn_index
            .get(name)
            .copied()
            .ok_or_else(|| ModelError::Undefined {
                path: path.to_string(),
                kind: "function",
                name: name.to_string(),
                suggestion: closest(name, self.fn_index.keys().copied()),
            })
    }

    fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    fn sequence(&mut self, function: usize, path: &str, steps: &[Step]) -> Result<u32, ModelError> {
        if steps.len() == 1 {
            return self.step(function, &format!("{path}.0"), &steps[0]);
        }
        let mut children = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            children.push(self.step(function, &format!("{path}.{i}"), s)?);
        }
        Ok(self.push(Node::Sequence { children }))
    }

    fn step(&mut self, function: usize, path: &str, step: &Step) -> Result<u32, ModelError> {
        let scenario = self.scenario;
        let fname = &scenario.functions[function].name;
        match step {
            Step::Compute(dist) => {
                let stream = StreamId::named(&format!("compute/{fname}/{path}"));
                Ok(self.push(Node::Compute {
                    dist: dist.clone(),
                    stream,
                }))
            }
            Step::Sequence(steps) => {
                if steps.is_empty() {
                    return Err(invalid(
                        format!("{path}.sequence"),
                        "a sequence needs at least one step",
                    ));
                }
                self.sequence(function, &format!("{path}.sequence"), steps)
            }
            Step::FanOut(f) => {
                let p = format!("{path}.fan_out");
                if f.count == 0 || f.count > 100_000 {
                    return Err(invalid(
                        format!("{p}.count"),
                        format!("expected a count between 1 and 100000, found {}", f.count),
                    ));
                }
                let branches = max_branches(step);
                if branches > MAX_BRANCHES {
                    return Err(invalid(
                        format!("{p}.count"),
                        format!(
                            "nested fan-outs put {branches} branches in flight per invocation; \
                             expected at most {MAX_BRANCHES}: lower a count"
                        ),
                    ));
                }
                if let Join::Quorum(k) = f.join {
                    if k == 0 || k > f.count {
                        return Err(invalid(
                            format!("{p}.join"),
                            format!("quorum must be between 1 and count ({})", f.count),
                        ));
                    }
                }
                let child = self.step(function, &p, &f.step)?;
                Ok(self.push(Node::FanOut {
                    count: f.count,
                    join: f.join,
                    child,
                }))
            }
            Step::Invoke(inv) => {
                let callee = self.lookup_function(&format!("{path}.invoke"), &inv.function)?;
                self.edges
                    .push((function, callee, format!("{path}.invoke")));
                Ok(self.push(Node::Invoke {
                    function: callee,
                    mode: inv.mode,
                }))
            }
            Step::Publish(queue) => {
                let q = self
                    .queue_index
                    .get(queue.as_str())
                    .copied()
                    .ok_or_else(|| ModelError::Undefined {
                        path: format!("{path}.publish"),
                        kind: "queue",
                        name: queue.clone(),
                        suggestion: closest(queue, self.queue_index.keys().copied()),
                    })?;
                // Resolved to the consumer once queues are compiled.
                self.edges.push((
                    function,
                    scenario.functions.len() + q,
                    format!("{path}.publish"),
                ));
                Ok(self.push(Node::Publish { queue: q }))
            }
            Step::Call(call) => self.call(function, path, call),
        }
    }

    fn call(&mut self, function: usize, path: &str, call: &CallStep) -> Result<u32, ModelError> {
        let scenario = self.scenario;
        let f = &scenario.functions[function];
        let dep = self
            .dep_index
            .get(call.dependency.as_str())
            .copied()
            .ok_or_else(|| ModelError::Undefined {
                path: format!("{path}.call"),
                kind: "dependency",
                name: call.dependency.clone(),
                suggestion: closest(&call.dependency, self.dep_index.keys().copied()),
            })?;
        let home = self.region(function_region(f));
        let replicas = self.deps[dep].replicas.clone();
        // Same-region replica if there is one, else the dependency's first region.
        let (primary_region, primary) = replicas
            .iter()
            .copied()
            .find(|(r, _)| *r == home)
            .unwrap_or(replicas[0]);
        let failover = match &call.failover {
            None => None,
            Some(region_name) => {
                let found = replicas
                    .iter()
                    .find(|(r, _)| self.regions[*r] == *region_name)
                    .copied();
                match found {
                    Some((region, replica)) => Some((region_name.clone(), region, replica)),
                    None => {
                        let names: Vec<&str> = replicas
                            .iter()
                            .map(|(r, _)| self.regions[*r].as_str())
                            .collect();
                        return Err(ModelError::Undefined {
                            path: format!("{path}.failover"),
                            kind: "region of this dependency",
                            name: region_name.clone(),
                            suggestion: closest(region_name, names.into_iter()),
                        });
                    }
                }
            }
        };
        if let Some(t) = call.timeout {
            if t.is_zero() {
                return Err(invalid(
                    format!("{path}.timeout"),
                    "expected a timeout above 0",
                ));
            }
        }
        let max_attempts = match &call.retry {
            Retry::None => 1,
            Retry::SdkStandard => 3,
            Retry::Backoff { max_attempts, .. } => *max_attempts,
        };
        if max_attempts == 0 {
            return Err(invalid(
                format!("{path}.retry.attempts"),
                "expected at least 1 attempt (the first try counts)",
            ));
        }
        let hedges = call.hedge.as_ref().map_or(0, |h| h.max_extra);
        // Every attempt of a call has a bit in a 64-bit mask: attempts x (1 + hedges) per
        // region, twice with failover.
        let phases = if call.failover.is_some() { 2 } else { 1 };
        let attempt_bits = u64::from(max_attempts)
            .checked_mul(1 + u64::from(hedges))
            .and_then(|n| n.checked_mul(phases));
        if attempt_bits.is_none_or(|n| n > 63) {
            return Err(invalid(
                format!("{path}.retry.attempts"),
                "attempts x (1 + hedge max_extra) x (2 with failover) must be at most 63",
            ));
        }
        let breaker = match &call.circuit_breaker {
            Some(b) => {
                if b.failure_threshold == 0 || b.half_open_probes == 0 {
                    return Err(invalid(
                        format!("{path}.circuit_breaker"),
                        "failure_threshold and half_open_probes must be at least 1",
                    ));
                }
                // One breaker per replica the call can reach.
                let first = self.breakers;
                self.breakers += if call.failover.is_some() { 2 } else { 1 };
                Some((first, b.clone()))
            }
            None => None,
        };
        let quota = if call.retry == Retry::SdkStandard {
            let mut bucket = |region: usize| {
                let next = self.quotas.len();
                *self.quotas.entry((function, dep, region)).or_insert(next)
            };
            let primary_bucket = bucket(primary_region);
            let failover_bucket = failover
                .as_ref()
                .map_or(primary_bucket, |&(_, region, _)| bucket(region));
            Some([primary_bucket, failover_bucket])
        } else {
            None
        };
        let dep_name = &scenario.dependencies[dep].name;
        let plain = call.timeout.is_none()
            && call.retry == Retry::None
            && call.hedge.is_none()
            && breaker.is_none()
            && !call.fallback
            && failover.is_none()
            && matches!(
                scenario.dependencies[dep].capacity,
                Capacity::Unlimited | Capacity::TokenBucket { .. }
            );
        let timeout_lane = call.timeout.map_or(0, |t| self.lane(nanos(t)));
        let hedge_lane = call.hedge.as_ref().map_or(0, |h| self.lane(nanos(h.after)));
        let node = CallNode {
            plain,
            timeout_lane,
            hedge_lane,
            dep,
            primary,
            site_primary: format!("{}/{}/{}", self.regions[primary_region], f.name, dep_name),
            site_failover: failover
                .as_ref()
                .map(|(r, _, _)| format!("{r}/{}/{}", f.name, dep_name))
                .unwrap_or_default(),
            failover: failover.map(|(_, _, replica)| replica),
            operation: call.operation.clone(),
            timeout_ns: call.timeout.map(nanos),
            retry: call.retry.clone(),
            hedge: call.hedge.as_ref().map(|h| (nanos(h.after), h.max_extra)),
            breaker,
            quota,
            fallback: call.fallback,
            backoff_stream: StreamId::named(&format!("backoff/{}/{path}", f.name)),
        };
        Ok(self.push(Node::Call(Box::new(node))))
    }

    /// Rejects invocation cycles and returns the functions in post-order (callees before
    /// callers). Depth-first with an explicit stack: a chain of 40,000 functions must not
    /// overflow the compiler's stack.
    fn check_cycles(&self) -> Result<Vec<usize>, ModelError> {
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
    fn check_nesting(&self, functions: &[FnDef], order: &[usize]) -> Result<(), ModelError> {
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

    fn entry(&self) -> Result<Entry, ModelError> {
        let load = &self.scenario.load;
        match load.invocation {
            Invocation::Queue => self
                .queue_index
                .get(load.target.as_str())
                .map(|&q| Entry::Queue(q))
                .ok_or_else(|| ModelError::Undefined {
                    path: "load.target".into(),
                    kind: "queue",
                    name: load.target.clone(),
                    suggestion: closest(&load.target, self.queue_index.keys().copied()),
                }),
            mode => Ok(Entry::Function(
                self.lookup_function("load.target", &load.target)?,
                mode,
            )),
        }
    }
}
