//! The serverless model: the Rust form of everything a scenario file can say.
//!
//! Build a [`Scenario`] with [`ScenarioBuilder`](crate::ScenarioBuilder); scenario files produce the same values
//! (see [`crate::scenario`]). Defaults come from `FACTS.md` and are cited where they are set.

use crate::core_api::{LatencyDist, Rule};
use std::time::Duration;

mod calls;
pub use calls::{
    BackoffKind, CallStep, CircuitBreaker, Hedge, MAX_ATTEMPTS_UNTIL_SUCCESS, QuotaScope, Retry,
    RetryBudget, RetryWithin,
};

/// The default region for elements that name none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A complete, validated experiment: system, load, faults and hypothesis.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// The seed every random stream of a run is derived from.
    pub seed: u64,
    /// When arrivals stop (simulated time). At least one of `duration` and `requests` is set.
    pub duration: Option<Duration>,
    /// Stop arriving after this many requests.
    pub requests: Option<u64>,
    /// How long in-flight work may run after arrivals stop; what is left is "in flight".
    pub drain: Duration,
    /// Account-level Lambda settings (per region).
    pub account: Account,
    /// The load applied to the entry point.
    pub load: Load,
    /// Lambda-like functions.
    pub functions: Vec<Function>,
    /// Downstream dependencies (tables, services, databases).
    pub dependencies: Vec<Dependency>,
    /// Network hops between regions (`[[network]]`), for calls to dependencies that have no
    /// `hops` of their own; see [`RegionHops`].
    pub network: Vec<RegionHops>,
    /// Queues that trigger functions.
    pub queues: Vec<Queue>,
    /// chaos-core rules injected in the experiment run (not in the control run).
    pub faults: Vec<Rule>,
    /// The steady state the experiment must keep.
    pub hypothesis: Hypothesis,
    /// The work budget of one run: events processed at most (`[simulation] max_events`,
    /// default [`DEFAULT_MAX_EVENTS`]). A run that reaches it stops with an error instead of
    /// running on.
    pub max_events: u64,
    /// Per-interval series and the recovery measurement (`[timeline]`).
    pub timeline: TimelineSettings,
}

/// How a run's per-interval series are cut and how recovery after the faults is judged
/// (`[timeline]` in a scenario file). See `REPORT_SCHEMA.md` for the definitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimelineSettings {
    /// Interval width; `None`: derived from the load's planned length (about 60 to 120
    /// intervals, see [`crate::timeline::interval_of`]).
    pub interval: Option<Duration>,
    /// The experiment's goodput counts as recovered in an interval when it is at least
    /// `1 - recovery_tolerance` times the control run's in the same interval (default 0.1).
    pub recovery_tolerance: f64,
    /// How long goodput must stay recovered, in whole intervals rounded up; `None`: 5
    /// intervals.
    pub recovery_sustain: Option<Duration>,
}

impl TimelineSettings {
    /// Default tolerance: goodput within 10% of the control run's.
    pub const DEFAULT_TOLERANCE: f64 = 0.1;
    /// Default sustained period, in intervals.
    pub const DEFAULT_SUSTAIN_INTERVALS: u64 = 5;
}

impl Default for TimelineSettings {
    fn default() -> Self {
        Self {
            interval: None,
            recovery_tolerance: Self::DEFAULT_TOLERANCE,
            recovery_sustain: None,
        }
    }
}

/// The longest duration a scenario may use anywhere (10 years of 365 days): chaos-core's limit
/// on every duration in a file, also checked on scenarios built in code.
pub const MAX_DURATION: Duration = crate::core_api::MAX_DURATION;

/// The default work budget of a run: one billion events (minutes of a release build; the
/// bundled examples need about 1.2 million).
pub const DEFAULT_MAX_EVENTS: u64 = 1_000_000_000;

/// Account concurrency, shared by the functions of a region.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    /// Concurrent executions per region (FACTS.md: 1,000 by default).
    pub concurrency: u32,
    /// Concurrency that reservations may not take (FACTS.md: at least 100 stays unreserved).
    pub unreserved_minimum: u32,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            concurrency: 1000,
            unreserved_minimum: 100,
        }
    }
}

/// Where requests enter the system and how they are generated.
#[derive(Clone, Debug)]
pub struct Load {
    /// The function or queue requests go to.
    pub target: String,
    /// How the target is invoked.
    pub invocation: Invocation,
    /// Open or closed loop.
    pub shape: LoadShape,
}

/// How a request reaches its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invocation {
    /// Synchronous invoke (API Gateway style): throttles answer 429 at once.
    Sync,
    /// Asynchronous invoke: the platform queues, retries and dead-letters the event.
    Async,
    /// A message on a queue, consumed in batches by the queue's consumer function.
    Queue,
}

/// Open loop (arrivals regardless of completions) or closed loop (clients that wait).
#[derive(Clone, Debug)]
pub enum LoadShape {
    /// Arrivals at a rate.
    Open(OpenLoop),
    /// A fixed population of clients.
    Closed(ClosedLoop),
}

/// How open-loop arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// Exponential inter-arrival times (a Poisson process).
    Poisson,
    /// Evenly spaced arrivals.
    Constant,
}

/// An open-loop load: a rate that can step and ramp over time, plus bursts.
#[derive(Clone, Debug)]
pub struct OpenLoop {
    /// Poisson or constant spacing.
    pub arrivals: Arrivals,
    /// The rate at t = 0, per simulated second.
    pub rate_per_s: f64,
    /// Instant rate changes.
    pub steps: Vec<RateStep>,
    /// Linear rate changes.
    pub ramps: Vec<RateRamp>,
    /// Extra requests all arriving at one instant.
    pub bursts: Vec<Burst>,
}

impl OpenLoop {
    /// A Poisson load at `rate_per_s`.
    pub fn poisson(rate_per_s: f64) -> Self {
        Self {
            arrivals: Arrivals::Poisson,
            rate_per_s,
            steps: Vec::new(),
            ramps: Vec::new(),
            bursts: Vec::new(),
        }
    }
    /// Evenly spaced arrivals at `rate_per_s`.
    pub fn constant(rate_per_s: f64) -> Self {
        Self {
            arrivals: Arrivals::Constant,
            ..Self::poisson(rate_per_s)
        }
    }
}

/// From `at` on, the rate is `rate_per_s`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateStep {
    /// When the step happens.
    pub at: Duration,
    /// The new rate.
    pub rate_per_s: f64,
}

/// From `start`, the rate moves linearly to `to_rate_per_s` over `duration`, then stays.
#[derive(Clone, Debug, PartialEq)]
pub struct RateRamp {
    /// When the ramp starts.
    pub start: Duration,
    /// How long it lasts.
    pub duration: Duration,
    /// The rate at its end.
    pub to_rate_per_s: f64,
}

/// `count` requests arriving together at `at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Burst {
    /// When the burst arrives.
    pub at: Duration,
    /// How many requests it has.
    pub count: u32,
}

/// A closed loop: clients that send a request, wait for its answer, think, and repeat.
#[derive(Clone, Debug)]
pub struct ClosedLoop {
    /// How many clients.
    pub clients: u32,
    /// Pause between an answer and the client's next request.
    pub think_time: LatencyDist,
    /// Client start times are spread uniformly over this span; zero means every client starts
    /// at t = 0 (the thundering herd).
    pub start_spread: Duration,
}

/// Prices used for cost (FACTS.md, us-east-1, secondary sources).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    /// Dollars per GB-second of billed duration.
    pub per_gb_second: f64,
    /// Dollars per request.
    pub per_request: f64,
}

impl Price {
    /// x86_64: $0.0000166667 per GB-s, $0.20 per 1M requests.
    pub const X86_64: Price = Price {
        per_gb_second: 0.000_016_666_7,
        per_request: 0.000_000_2,
    };
    /// arm64: $0.0000133334 per GB-s, $0.20 per 1M requests.
    pub const ARM64: Price = Price {
        per_gb_second: 0.000_013_333_4,
        per_request: 0.000_000_2,
    };
}

/// The per-function limit on creating new execution environments (a token bucket).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalingLimit {
    /// Environments that can be created at once (FACTS.md: 1,000).
    pub burst: u32,
    /// Environments added back per second (FACTS.md: 1,000 per 10 s = 100/s).
    pub per_second: f64,
}

impl Default for ScalingLimit {
    fn default() -> Self {
        Self {
            burst: 1000,
            per_second: 100.0,
        }
    }
}

/// Platform behaviour for asynchronous invokes of a function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsyncConfig {
    /// Retries after a function error, 0 to 2 (FACTS.md: 2 by default, 1 min then 2 min later).
    pub max_retry_attempts: u32,
    /// Events older than this are dropped to the dead-letter count (FACTS.md: 60 s to 6 h).
    pub max_event_age: Duration,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            max_retry_attempts: 2,
            max_event_age: Duration::from_secs(6 * 3600),
        }
    }
}

/// A Lambda-like function.
#[derive(Clone, Debug)]
pub struct Function {
    /// Its name, used by invoke steps, queues and the load.
    pub name: String,
    /// Its region ([`DEFAULT_REGION`] when `None`).
    pub region: Option<String>,
    /// Memory, for cost (128 MB by default).
    pub memory_mb: u32,
    /// Handler time limit (FACTS.md: 3 s by default).
    pub timeout: Duration,
    /// Reserved concurrency: guarantees and caps the function; 0 throttles it.
    pub reserved_concurrency: Option<u32>,
    /// Time to create an environment (cold start, billed).
    pub cold_start: LatencyDist,
    /// How long an idle environment stays warm (FACTS.md: about 10 minutes).
    pub keep_alive: Duration,
    /// Limit on new environments.
    pub scaling: ScalingLimit,
    /// Prices for cost.
    pub price: Price,
    /// Asynchronous invoke behaviour.
    pub async_config: AsyncConfig,
    /// The handler: steps run in sequence.
    pub handler: Vec<Step>,
}

impl Function {
    /// A function with default settings and the given handler.
    pub fn new(name: impl Into<String>, handler: Vec<Step>) -> Self {
        Self {
            name: name.into(),
            region: None,
            memory_mb: 128,
            timeout: Duration::from_secs(3),
            reserved_concurrency: None,
            cold_start: default_cold_start(),
            keep_alive: Duration::from_secs(600),
            scaling: ScalingLimit::default(),
            price: Price::X86_64,
            async_config: AsyncConfig::default(),
            handler,
        }
    }
}

/// Default cold start: log-normal, p50 250 ms, p99 900 ms (FACTS.md: real functions with SDK
/// clients take hundreds of ms).
pub fn default_cold_start() -> LatencyDist {
    LatencyDist::log_normal_p50_p99(Duration::from_millis(250), Duration::from_millis(900))
        .unwrap_or_else(|_| LatencyDist::constant(Duration::from_millis(250)))
}

/// A downstream dependency, possibly replicated in several regions.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// Its name, used by call steps.
    pub name: String,
    /// Regions with a replica (each has its own capacity); empty means [`DEFAULT_REGION`].
    pub regions: Vec<String>,
    /// Latency of one request (service time for a queueing server).
    pub latency: LatencyDist,
    /// Capacity model.
    pub capacity: Capacity,
    /// Network hops between a caller and the dependency (none by default: a request reaches
    /// the server at once and its answer returns at once). When set, they apply to calls
    /// from every region and take the place of any [`RegionHops`] pair.
    pub hops: Hops,
    /// The SDK retry partition its calls draw on (`sdk_standard` retries): dependencies
    /// naming the same partition, such as two DynamoDB tables both set to `"dynamodb"`, are
    /// reached through one SDK client and share its retry quota per Region served, as the
    /// SDK's default partition (`<service>-<Region>`) does. `None` (the default): a quota of
    /// its own, as if each dependency had its own client.
    pub retry_partition: Option<String>,
}

impl Dependency {
    /// An unlimited dependency with the given latency.
    pub fn new(name: impl Into<String>, latency: LatencyDist) -> Self {
        Self {
            name: name.into(),
            regions: Vec::new(),
            latency,
            capacity: Capacity::Unlimited,
            hops: Hops::default(),
            retry_partition: None,
        }
    }

    /// The same dependency behind these network hops.
    pub fn with_hops(mut self, hops: Hops) -> Self {
        self.hops = hops;
        self
    }

    /// The same dependency reached through the SDK retry partition `partition` (such as
    /// `"dynamodb"`): its `sdk_standard` calls share one retry quota with every other
    /// dependency naming the same partition (see [`Dependency::retry_partition`]).
    pub fn with_retry_partition(mut self, partition: impl Into<String>) -> Self {
        self.retry_partition = Some(partition.into());
        self
    }
}

/// The network between a caller and a dependency: every attempt's request crosses `request`
/// before the server sees it (so a token is taken, a version read, a place in a server's line
/// held at server time), and its answer crosses `response` back. Each crossing draws its own
/// sample, keyed by the attempt, so a retry pays the hops again and the control and
/// experiment runs draw the same hops for the same attempt. An `optimistic_item` attempt is a
/// read and then a conditional write, so it crosses each way twice: the version is read when
/// the read arrives, and the write is checked when it arrives, `latency` plus a response and
/// a request hop later. `None` is no hop (zero, and no draw).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hops {
    /// Caller to dependency.
    pub request: Option<LatencyDist>,
    /// Dependency to caller.
    pub response: Option<LatencyDist>,
}

impl Hops {
    /// Hops with these latencies each way.
    pub fn new(request: LatencyDist, response: LatencyDist) -> Self {
        Self {
            request: Some(request),
            response: Some(response),
        }
    }

    /// The same latency distribution each way.
    pub fn symmetric(each_way: LatencyDist) -> Self {
        Self::new(each_way.clone(), each_way)
    }

    /// Whether neither direction has a hop.
    pub fn is_none(&self) -> bool {
        self.request.is_none() && self.response.is_none()
    }
}

/// The network between two regions (`[[network]]` in a scenario file): every attempt a
/// function in `from` makes at a dependency's replica in `to` crosses `hops` (`request` from
/// the caller to the dependency, `response` back), drawn and paid as a dependency's own
/// [`Hops`] are.
///
/// Which hops an attempt crosses, decided once per call and region when the scenario is
/// compiled:
///
/// 1. the dependency's own [`Dependency::hops`], if it has any (the explicit setting wins);
/// 2. else the pair from the caller's region to the region the attempt goes to (after a
///    failover, the failover region's);
/// 3. else the reverse pair: a pair applies both ways (network round trips are symmetric;
///    `request` stays caller to dependency), unless the reverse pair is listed as well;
/// 4. else none.
///
/// `from == to` sets the hops of calls inside that region ([`RegionHops::within`]); a region
/// with no such entry has none, so scenarios without a `[[network]]` table run as before.
/// A dependency's own hops replace the pairs for every region: to model a near replica and
/// a far one, give the in-region hops as `from == to` entries instead.
/// Each region must be one a function runs in or a dependency has a replica in, each ordered
/// pair may be listed once, and each entry needs a hop at least one way.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionHops {
    /// The caller's region.
    pub from: String,
    /// The region of the dependency's replica.
    pub to: String,
    /// The hops each way.
    pub hops: Hops,
}

impl RegionHops {
    /// Hops for calls from `from` to `to` (and from `to` to `from`, unless that pair is set
    /// too).
    pub fn new(from: impl Into<String>, to: impl Into<String>, hops: Hops) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            hops,
        }
    }

    /// Hops for calls inside `region`.
    pub fn within(region: impl Into<String>, hops: Hops) -> Self {
        let region = region.into();
        Self::new(region.clone(), region, hops)
    }
}

/// How a dependency limits work.
#[derive(Clone, Debug, PartialEq)]
pub enum Capacity {
    /// No limit: every request takes a latency sample.
    Unlimited,
    /// DynamoDB-style: a token per request, refilled at `rate_per_s` up to `burst`; an empty
    /// bucket answers with a throttling error.
    TokenBucket {
        /// Tokens added per second.
        rate_per_s: f64,
        /// Bucket size (DynamoDB keeps up to 300 s of unused capacity).
        burst: f64,
    },
    /// A server with `workers` parallel workers and a waiting line.
    Server {
        /// Parallel workers.
        workers: u32,
        /// Which waiting request is served next.
        discipline: Discipline,
        /// What happens to work its caller has given up on, or would give up on before it
        /// could finish.
        abandoned: Abandoned,
        /// A bound on the time work may wait, controlled-delay style (CoDel); `None`: work
        /// waits as long as the other settings let it.
        queue_delay: Option<ControlledDelay>,
    },
    /// A single item under optimistic concurrency: a request reads the version, and its
    /// conditional write at the end fails if another write landed in between.
    OptimisticItem,
}

impl Capacity {
    /// A FIFO server with `workers` workers that serves abandoned work and bounds no wait.
    pub fn server(workers: u32) -> Self {
        Capacity::Server {
            workers,
            discipline: Discipline::Fifo,
            abandoned: Abandoned::Serve,
            queue_delay: None,
        }
    }
}

/// Queue discipline of a [`Capacity::Server`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Discipline {
    /// Oldest first.
    Fifo,
    /// Newest first.
    Lifo,
    /// Oldest first while the waiting line is short, newest first while more than
    /// `standing_queue` requests wait: under a standing queue the oldest work is the work
    /// whose callers are about to give up, so fresh work goes first (adaptive LIFO, as
    /// Facebook's "Fail at Scale" describes it).
    AdaptiveLifo {
        /// Waiting requests above which the newest is served first (at least 1).
        standing_queue: u32,
    },
}

/// What a [`Capacity::Server`] does with work its caller abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Abandoned {
    /// Serve it anyway (how retry storms become metastable).
    Serve,
    /// Drop it when it reaches a worker after the caller's deadline.
    Drop,
    /// Look ahead: drop work whose caller has given up, and shed work whose service (its
    /// time is known when a worker takes it) would end at or after the caller's deadline;
    /// the caller of shed work gets a throttling error at once instead of waiting for its
    /// timeout, and the worker takes the next request.
    DropLate,
}

/// A controlled-delay bound on a server's waiting line (CoDel as RPC servers use it: Nichols
/// and Jacobson's standing-queue test, with the bounds of Facebook's "Fail at Scale" and its
/// folly implementation).
///
/// Each request taken from the line has waited some time (its sojourn). An `interval` is
/// *overloaded* when the least sojourn of the requests taken in it was above `target`: the
/// line never emptied (a standing queue). While the previous interval was overloaded, a
/// request that waited longer than twice `target` is shed (so served work waits between
/// the target and twice it, and the standing queue stays detected); otherwise one that
/// waited longer than `interval`. Shed work's caller gets a throttling error at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlledDelay {
    /// The sojourn a standing queue is allowed (Facebook: 5 ms).
    pub target: Duration,
    /// The window over which the least sojourn is measured (Facebook: 100 ms).
    pub interval: Duration,
}

/// A queue whose messages trigger a consumer function in batches.
#[derive(Clone, Debug)]
pub struct Queue {
    /// Its name, used by publish steps and the load.
    pub name: String,
    /// The function that consumes batches.
    pub consumer: String,
    /// Messages per batch (SQS default 10).
    pub batch_size: u32,
    /// Most concurrent batches (FACTS.md: 2 to 1,000; starts at 5, +300 per minute).
    pub max_concurrency: u32,
    /// A failed batch's messages come back after this long (SQS default 30 s).
    pub visibility_timeout: Duration,
    /// After this many receives a message goes to the dead-letter count.
    pub max_receives: u32,
}

impl Queue {
    /// A queue with SQS-like defaults.
    pub fn new(name: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            consumer: consumer.into(),
            batch_size: 10,
            max_concurrency: 1000,
            visibility_timeout: Duration::from_secs(30),
            max_receives: 3,
        }
    }
}

/// One node of a handler's step tree.
#[derive(Clone, Debug)]
pub enum Step {
    /// CPU work for a sampled time.
    Compute(LatencyDist),
    /// A call to a dependency, with client resilience.
    Call(CallStep),
    /// `count` copies of a step run in parallel, joined.
    FanOut(FanOut),
    /// Invoke another function.
    Invoke(InvokeStep),
    /// Publish a message to a queue (completes at once).
    Publish(String),
    /// Steps in order; the first failure fails the sequence.
    Sequence(Vec<Step>),
}

impl Step {
    /// A plain call to `dependency` (no timeout, no retries).
    pub fn call(dependency: impl Into<String>) -> CallStep {
        CallStep::new(dependency)
    }
    /// Fan out `count` copies of `step`, joined by `join`.
    pub fn fan_out(count: u32, join: Join, step: Step) -> Step {
        Step::FanOut(FanOut {
            count,
            join,
            step: Box::new(step),
        })
    }
}

/// How a fan-out's results are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Join {
    /// Wait for every branch; any failure fails the fan-out.
    All,
    /// The first success wins; fails only when every branch failed.
    Any,
    /// Succeeds when `k` branches succeeded; fails as soon as that is impossible.
    Quorum(u32),
}

/// A fan-out step.
#[derive(Clone, Debug)]
pub struct FanOut {
    /// Parallel branches.
    pub count: u32,
    /// Join rule.
    pub join: Join,
    /// What each branch runs.
    pub step: Box<Step>,
}

/// Invoke mode of an [`InvokeStep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvokeMode {
    /// Wait for the result; 429 when the callee has no concurrency left.
    Sync,
    /// Hand the event to the platform and continue at once.
    Async,
}

/// Invoke another function.
#[derive(Clone, Debug)]
pub struct InvokeStep {
    /// The callee.
    pub function: String,
    /// Sync or async.
    pub mode: InvokeMode,
}

/// The steady-state hypothesis. Every bound set must hold in both runs: in the control run
/// (otherwise the steady state was never there) and in the experiment run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hypothesis {
    /// Successes (fallbacks included) over requests, at least.
    pub success_rate_at_least: Option<f64>,
    /// Latency quantiles of successful requests, at most: (quantile in (0,1), bound).
    pub latency_at_most: Vec<(f64, Duration)>,
    /// Requests failed by a throttle over requests, at most.
    pub throttle_rate_at_most: Option<f64>,
    /// Total cost in dollars, at most.
    pub cost_at_most_usd: Option<f64>,
    /// Slow-request rates, at most: (latency threshold, largest fraction of answered requests
    /// slower than it), in threshold order. See [`RunMetrics::slow_rate`](crate::RunMetrics::slow_rate).
    pub slow_rate_at_most: Vec<(Duration, f64)>,
    /// Time to recover after the last fault window ends, at most (`recovery_time = "<= 60s"`):
    /// holds only when the experiment run recovered within it (see `REPORT_SCHEMA.md`).
    pub recovery_time_at_most: Option<Duration>,
}

impl Hypothesis {
    /// Adds the bound "at most `fraction` of answered requests take longer than `over`"
    /// (`slow_rate = { over = "1s", at_most = "1%" }` in TOML).
    pub fn with_slow_rate(mut self, over: Duration, fraction: f64) -> Self {
        self.slow_rate_at_most.push((over, fraction));
        self.slow_rate_at_most.sort_by_key(|b| b.0);
        self
    }

    /// True when no bound is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
