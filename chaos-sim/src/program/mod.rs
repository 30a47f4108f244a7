//! Validation of a [`Scenario`] and its compilation to the flat, index-based form the engine runs.

use crate::core_api::LatencyDist;
use crate::model::*;
use crate::rng::StreamId;

mod checks;
mod compile;
mod network;
mod resilience;
mod retry_partition;

use checks::{validate_hypothesis, validate_load};
use compile::Compiler;
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
    /// Some route to this replica has a response hop (else a server's answers need no
    /// route lookup).
    pub response_hops: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct DepDef {
    pub name: String,
    pub latency: LatencyDist,
    pub capacity: Capacity,
    pub service_stream: StreamId,
    /// (region, replica index).
    pub replicas: Vec<(usize, usize)>,
    /// The streams of hops to this dependency, whichever setting they come from
    /// (`hop_request/<name>`, `hop_response/<name>`).
    pub hop_streams: [StreamId; 2],
}

/// The network between one caller region and one replica: the hops its attempts cross,
/// resolved at compile time (see `network.rs`), so the engine looks a hop up by route alone.
#[derive(Clone, Debug)]
pub(crate) struct RouteDef {
    /// The dependency (its hop streams).
    pub dep: usize,
    /// The replica attempts on this route go to.
    pub replica: usize,
    /// [request, response] latencies, `None` for no hop.
    pub hops: [Option<LatencyDist>; 2],
    /// Whether a request or answer on this route crosses a hop.
    pub has_hops: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct CallNode {
    /// This node's index in `Program::nodes` (the engine keeps per-node state by it).
    pub id: u32,
    pub dep: usize,
    pub primary: usize,
    pub failover: Option<usize>,
    /// Network routes to the replicas: [primary, failover] (the primary's again without
    /// failover), indexing `Program::routes`.
    pub routes: [usize; 2],
    pub site_primary: String,
    pub site_failover: String,
    pub operation: String,
    pub timeout_ns: Option<u64>,
    pub retry: Retry,
    /// `retry`'s numbers.
    pub retry_schedule: RetrySchedule,
    pub hedge: Option<(u64, u32)>,
    pub breaker: Option<(usize, CircuitBreaker)>,
    /// SDK standard retry quotas: [primary, failover] (the same quota when both replicas
    /// are in one region). A quota is keyed by (calling function, retry partition, region
    /// served), the partition being the dependency unless it names one:
    /// the SDK's retry partition is per service and Region in a process. With
    /// `QuotaScope::Function` these index `Program::quotas`, shared by all of the function's
    /// environments; with `QuotaScope::Environment` they index the function's
    /// `env_quotas` quotas held by each of its environments.
    pub quota: Option<[usize; 2]>,
    /// Retry budget states: [primary, failover], keyed like `quota` and by the budget.
    pub budget: Option<[usize; 2]>,
    /// Which calls share the quota.
    pub quota_scope: QuotaScope,
    pub fallback: bool,
    pub backoff_stream: StreamId,
    /// No resilience and a capacity decided at issue time: runs without a frame of its own.
    pub plain: bool,
    /// Has a circuit breaker, a retry quota or a retry budget (state kept per attempt):
    /// calls without any skip all of that bookkeeping in one test.
    pub guarded: bool,
    /// The route has network hops (attempts take the network path): [primary, failover].
    pub network: [bool; 2],
    /// The route has a request hop (a server sees requests after it): [primary, failover].
    pub request_hop: [bool; 2],
    pub timeout_lane: usize,
    pub hedge_lane: usize,
}

impl CallNode {
    /// The route to `replica`, the call's primary or failover replica.
    #[inline]
    pub fn route_to(&self, replica: usize) -> usize {
        self.routes[usize::from(replica != self.primary)]
    }
}

/// A retry policy's numbers, converted once when the program is built (a failed attempt
/// reads them without matching on the policy or converting durations).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetrySchedule {
    /// Attempts per phase (primary or failover) the policy allows, the first included: 0
    /// without retries, `u32::MAX` when time bounds them instead.
    pub max_attempts: u32,
    pub backoff: BackoffKind,
    pub base_ns: u64,
    pub cap_ns: u64,
}

impl RetrySchedule {
    pub(crate) fn of(retry: &Retry) -> Self {
        let (max_attempts, backoff, base_ns, cap_ns) = match retry {
            Retry::None => (0, BackoffKind::None, 0, 0),
            Retry::Backoff {
                max_attempts,
                backoff,
                base,
                cap,
            } => (*max_attempts, *backoff, nanos(*base), nanos(*cap)),
            Retry::SdkStandard => (
                crate::backoff::SDK_STANDARD_ATTEMPTS,
                BackoffKind::FullJitter,
                crate::backoff::SDK_STANDARD_BASE_NS,
                crate::backoff::SDK_STANDARD_CAP_NS,
            ),
            Retry::UntilSuccess {
                backoff, base, cap, ..
            } => (u32::MAX, *backoff, nanos(*base), nanos(*cap)),
        };
        Self {
            max_attempts,
            backoff,
            base_ns,
            cap_ns,
        }
    }
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
    /// Network routes (caller region to replica) that calls use.
    pub routes: Vec<RouteDef>,
    pub nodes: Vec<Node>,
    pub queues: Vec<QueueDef>,
    pub breakers: usize,
    pub quotas: usize,
    /// Each retry budget state's settings, by index.
    pub budgets: Vec<RetryBudget>,
    /// Retry quotas each environment of a function holds (`QuotaScope::Environment`), by
    /// function.
    pub env_quotas: Vec<usize>,
    pub entry: Entry,
    /// Unreserved pool size per region.
    pub unreserved_pool: Vec<u32>,
    /// Distinct fixed timer delays; timers of one delay fire in the order they were set, so
    /// each delay gets a FIFO lane instead of heap entries.
    pub lanes: Vec<u64>,
}

impl Program {
    /// Validates `scenario` and compiles it: names, dependencies and regions, functions,
    /// queues, then the checks that need the whole graph (cycles, nesting, entry, load).
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
            pairs: BTreeMap::new(),
            routes: Vec::new(),
            route_index: BTreeMap::new(),
            breakers: 0,
            quotas: BTreeMap::new(),
            budgets: Vec::new(),
            env_quotas: BTreeMap::new(),
            edges: Vec::new(),
            lanes: Vec::new(),
        };
        if scenario.duration.is_none() && scenario.requests.is_none() {
            return Err(invalid(
                "simulation.duration",
                "set `duration` (e.g. \"10m\") or `requests` so the run ends",
            ));
        }
        c.index_names()?;
        c.compile_dependencies()?;
        c.compile_network()?;
        let (functions, unreserved_pool) = c.compile_functions()?;
        let queues = c.compile_queues()?;
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
        validate_hypothesis(&scenario.hypothesis)?;
        checks::validate_timeline(scenario)?;
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
        let env_quotas = (0..functions.len())
            .map(|f| c.env_quotas.range((f, 0, 0)..(f + 1, 0, 0)).count())
            .collect();
        Ok(Program {
            regions: c.regions,
            functions,
            deps: c.deps,
            replicas: c.replicas,
            routes: c.routes,
            nodes: c.nodes,
            queues,
            breakers: c.breakers,
            quotas: c.quotas.len(),
            budgets: c.budgets.into_iter().map(|(_, b)| b).collect(),
            env_quotas,
            entry,
            unreserved_pool,
            lanes: c.lanes,
        })
    }
}
