//! The discrete-event engine and the interpreter of the serverless model.
//!
//! Hot-path design: events are 32-byte values in a calendar queue (`crate::queue`) ordered by
//! (time, sequence);
//! the work in flight lives in a slab of frames (one per running step) indexed by `u32` and
//! reused through a free list, so a run allocates in proportion to the work in flight, never
//! to the number of requests. An event names its frame and the frame's generation; a frame
//! that finished (or was abandoned by a timeout, a hedge winner or a join) has a new
//! generation, so its late events are recognised and ignored: cancellation costs nothing.
//! Frames keep a list of their live children; freeing a frame frees the frames below it (a
//! timed-out handler, the losing branches of a decided join), so abandoned work starts no
//! further step, attempt, retry or hedge. Invocations below it are detached and run on.

mod arrivals;
mod async_queues;
mod breaker;
mod calls;
mod environments;
mod faults;
mod frames;
mod lambda;
mod network;
mod retry_budget;
mod retry_quota;
mod servers;
mod shedding;
mod steps;
mod token_bucket;

use arrivals::RateSchedule;
use breaker::Breaker;
pub(crate) use environments::EnvironmentTotals;
use environments::{EnvironmentLedger, IdleEnvironment};
use faults::{Delivery, verdict_effect};
use network::{Reply, Transit};
use retry_budget::BudgetState;
use retry_quota::RetryQuota;
use shedding::QueueDelayState;
use token_bucket::TokenBucket;

use crate::core_api::{
    Call, CallSite, CompiledPlan, ErrorKind, Failure, Fault, LocalMatchCounter, ResolvedSite,
};
use crate::metrics::latency_counts::ThreeDigitCounts;
use crate::metrics::{FunctionMetrics, RunMetrics};
use crate::model::{
    Abandoned, Arrivals, BackoffKind, Capacity, ControlledDelay, Discipline, Invocation,
    InvokeMode, Join, LoadShape, MAX_ATTEMPTS_UNTIL_SUCCESS, OpenLoop, Retry, RetryWithin,
    Scenario,
};
use crate::program::{CallNode, Entry, Limit, Node, Program, RetrySchedule, nanos};
use crate::queue::{EventQueue, Keyed};
use crate::rng::{KeyedRng, StreamId, Streams, combine};
use crate::timeline::Recorder;
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;
use std::collections::VecDeque;
use std::time::Duration;

const NONE: u32 = u32::MAX;
/// `lane_front` when every lane is empty: above any event's key (no event has both the last
/// time and the last sequence number).
const NO_LANE_EVENT: u128 = u128::MAX;
const SECOND: u64 = 1_000_000_000;

/// Outcome codes carried by events and passed up the step tree.
mod outcome {
    pub const OK: u8 = 0;
    pub const FALLBACK: u8 = 1;
    pub const TIMEOUT: u8 = 2;
    pub const THROTTLE: u8 = 3;
    pub const ERROR: u8 = 4;
    /// Attempt level only: a retryable error that is not a throttle or timeout.
    pub const CONFLICT: u8 = 5;
    /// Attempt level only: an error no client retries (4xx, open circuit).
    pub const FATAL: u8 = 6;
    /// Attempt level only: a conditional write to check against the item's version.
    pub const OCC_CHECK: u8 = 7;
    /// Attempt level only: refused by an open circuit breaker (not retried, may fail over).
    pub const CIRCUIT_OPEN: u8 = 8;
    /// Attempt level only: a transient error the AWS SDK's standard mode retries (HTTP
    /// 500/502/503/504, a reset connection; FACTS.md), unlike `ERROR` and `CONFLICT`.
    pub const TRANSIENT: u8 = 9;
    /// Not an outcome: a partition holds the attempt (`Engine::held` says how long).
    pub const HELD: u8 = u8::MAX - 1;
    /// Not an outcome: the attempt was sent through the network, its answer comes later.
    pub const SENT: u8 = u8::MAX;

    pub fn is_failure(o: u8) -> bool {
        o >= TIMEOUT
    }
    /// The request-level outcome of an attempt's outcome: a success as it is, a failure by
    /// its cause.
    pub fn cause_of(o: u8) -> u8 {
        if is_failure(o) { cause(o) } else { o }
    }
    /// The request-level cause of an attempt-level failure.
    pub fn cause(o: u8) -> u8 {
        match o {
            TIMEOUT | THROTTLE => o,
            _ => ERROR,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Arrival,
    Burst,
    ClientWake,
    Deliver,
    ComputeDone,
    AttemptDone,
    AttemptTimeout,
    HedgeFire,
    BackoffDone,
    ColdStartDone,
    HandlerStart,
    InvocationTimeout,
    ServerDone,
    AsyncRetry,
    QueuePoll,
    QueueRedeliver,
    /// A request crossed the network to its dependency (`data`: its transit slot).
    Arrive,
    /// An optimistic item's conditional write lands (`data`: the version its read saw).
    OccWrite,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    /// `time << 64 | seq`: one comparison orders by time, then by insertion.
    key: u128,
    frame: u32,
    generation: u32,
    kind: Kind,
    outcome: u8,
    tag: u16,
    data: u32,
}

impl Event {
    #[inline]
    fn time(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

impl Keyed for Event {
    #[inline]
    fn key(&self) -> u128 {
        self.key
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    Free,
    Request {
        arrival: u64,
        client: u32,
    },
    Invocation {
        function: u32,
        handler_start: u64,
        init_ns: u64,
        /// When its execution environment was created.
        env_born: u64,
        /// Its environment's slot of SDK retry quotas (`NONE`: none).
        quota_slot: u32,
        /// It is an open-loop request's whole work (the entry function, invoked
        /// synchronously): the request has no frame of its own and ends when it ends.
        request: bool,
    },
    Async {
        function: u32,
        first: u64,
        error_retries: u32,
        throttle_retries: u32,
    },
    Batch {
        queue: u32,
        batch: u32,
    },
    Sequence {
        next: u32,
        fallback: bool,
    },
    FanOut {
        /// Successes still needed to decide the join (at least 1 while it runs), and
        /// failures it still survives: counted down, so that a branch's answer needs no look
        /// at the program and one test.
        successes_left: u32,
        failures_left: u32,
        fallback: bool,
    },
    Compute,
    Call(CallState),
}

#[derive(Clone, Copy, Debug, Default)]
struct CallState {
    /// Next attempt tag (hedges and failover attempts included).
    next_tag: u16,
    /// Non-hedge attempts in the current phase (primary or failover).
    tries: u16,
    /// Hedges sent in the current try.
    hedges: u16,
    /// Tag of the current try's first (non-hedge) attempt.
    try_tag: u16,
    outstanding: u64,
    in_failover: bool,
    prev_sleep: u64,
    last_cause: u8,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    generation: u32,
    parent: u32,
    parent_generation: u32,
    /// Live child frames form a doubly linked list, so that finishing (or abandoning) a
    /// frame cancels the work below it.
    first_child: u32,
    prev_sibling: u32,
    next_sibling: u32,
    node: u32,
    key: u64,
    start: u64,
    deadline: u64,
    state: State,
}

#[derive(Clone, Copy, Debug)]
struct WorkItem {
    frame: u32,
    generation: u32,
    tag: u16,
    deadline: u64,
    key: u64,
    added: u64,
    /// When it joined the waiting line (its sojourn is measured from here).
    enqueued: u64,
}

#[derive(Debug, Default)]
struct ReplicaState {
    bucket: TokenBucket,
    version: u32,
    busy: u32,
    waiting: VecDeque<WorkItem>,
    /// The controlled-delay bound's state (servers with `queue_delay` only).
    queue_delay: QueueDelayState,
}

#[derive(Debug, Default)]
struct FnState {
    active: u32,
    /// Idle warm environments, by the time each became idle, most recent last.
    warm: Vec<IdleEnvironment>,
    scaling: TokenBucket,
    /// Running and idle environments over time, and their lifespans.
    environments: EnvironmentLedger,
    /// SDK retry quotas kept per environment (`QuotaScope::Environment`): a slot of
    /// `Program::env_quotas[function]` quotas per live environment.
    env_quotas: Vec<RetryQuota>,
    /// Slots of retired environments, reused by new ones.
    free_quota_slots: Vec<u32>,
}

#[derive(Clone, Copy, Debug)]
struct Message {
    root: u32,
    root_generation: u32,
    key: u64,
    receives: u32,
}

#[derive(Debug, Default)]
struct QueueState {
    messages: VecDeque<Message>,
    in_flight: u32,
    first_message_at: Option<u64>,
    poll_pending: bool,
}

/// Runs one simulation of `program` (faults from `plan` when given) and returns its metrics.
pub(crate) struct Engine<'p> {
    scenario: &'p Scenario,
    prog: &'p Program,
    plan: Option<&'p CompiledPlan>,
    counter: LocalMatchCounter,
    /// The plan's rules that can match each call node's sites ([primary, failover], by node
    /// index; empty without a plan), resolved once: a site no rule matches skips deciding.
    call_sites: Vec<[ResolvedSite; 2]>,
    /// The same for each function's invocations.
    function_sites: Vec<ResolvedSite>,
    now: u64,
    seq: u64,
    heap: EventQueue<Event>,
    lanes: Vec<VecDeque<Event>>,
    /// The earliest key at the front of a lane and its lane (`NO_LANE_EVENT` when all are
    /// empty), kept so that taking the next event need not look at every lane.
    lane_front: (u128, usize),
    /// Each lane's front key (`NO_LANE_EVENT` when empty).
    lane_fronts: Vec<u128>,
    /// Reused buffer of (delay, branch, outcome) for collapsed fan-outs.
    scratch: Vec<(u64, u32, u8)>,
    frames: Vec<Frame>,
    free: Vec<u32>,
    funcs: Vec<FnState>,
    fmetrics: Vec<FunctionMetrics>,
    region_active: Vec<u32>,
    region_unreserved_active: Vec<u32>,
    replicas: Vec<ReplicaState>,
    breakers: Vec<Breaker>,
    quotas: Vec<RetryQuota>,
    budgets: Vec<BudgetState>,
    queues: Vec<QueueState>,
    batches: Vec<Vec<Message>>,
    free_batches: Vec<u32>,
    arrival_rng: ChaCha8Rng,
    schedule: Option<RateSchedule>,
    streams: Streams,
    /// Each dependency's service-time stream seed, computed once (drawn per attempt).
    service_seeds: Vec<u64>,
    /// Each route's hop stream seeds (its dependency's): [request, response].
    hop_seeds: Vec<[u64; 2]>,
    /// Requests crossing the network to a dependency, and the free slots among them.
    transit: Vec<Transit>,
    free_transit: Vec<u32>,
    /// The fault plan has a partition (token buckets then take tokens when requests land).
    plan_partitions: bool,
    /// The delivery of the attempt whose faults last answered `outcome::HELD`.
    held: Delivery,
    arrivals: u64,
    stop_at: u64,
    max_requests: u64,
    horizon: u64,
    /// Keys below this are at or before the horizon: `(horizon + 1) << 64`, or `u128::MAX`
    /// while the horizon is `u64::MAX` (every key of time <= horizon is below it).
    horizon_key: u128,
    /// The queue's events below this key come next: `min(lane_front.0, horizon_key)`, kept
    /// whenever either changes (one load per event instead of the comparison).
    pop_bound: u128,
    arrivals_open: bool,
    m: RunMetrics,
    collapse: bool,
    in_flight_requests: u64,
    frames_in_use: u64,
    /// Set when a resource bound stops the run; loops that start work check it.
    stopped: Option<String>,
    /// `stopped.is_some()`, kept as a flag the run loop tests in one instruction.
    halted: bool,
    /// Per-interval series.
    tl: Recorder,
    /// Successful requests' latencies, handed over to `m.latency` when the run ends.
    latency: ThreeDigitCounts,
}

/// Step frames alive at once, at most (about 100 bytes each): beyond this a run stops with an
/// error instead of allocating until the process aborts (nested fan-outs, huge bursts).
pub(crate) const MAX_FRAMES_IN_FLIGHT: u64 = 4_000_000;
/// Events waiting at once, at most (48 bytes each).
pub(crate) const MAX_EVENTS_IN_FLIGHT: usize = 8_000_000;

/// SQS event source scaling (FACTS.md): +300 concurrent batches per minute, one every 200 ms.
const QUEUE_SCALE_STEP: u64 = 60 * SECOND / 300;

impl<'p> Engine<'p> {
    pub(crate) fn new(
        scenario: &'p Scenario,
        prog: &'p Program,
        plan: Option<&'p CompiledPlan>,
    ) -> Self {
        let streams = Streams::new(scenario.seed);
        let funcs = prog
            .functions
            .iter()
            .map(|f| FnState {
                scaling: TokenBucket::full(f64::from(f.scaling.burst)),
                ..FnState::default()
            })
            .collect();
        let fmetrics = prog
            .functions
            .iter()
            .map(|f| FunctionMetrics::new(&f.name))
            .collect();
        let replicas = prog
            .replicas
            .iter()
            .map(|r| ReplicaState {
                bucket: match prog.deps[r.dep].capacity {
                    Capacity::TokenBucket { burst, .. } => TokenBucket::full(burst),
                    _ => TokenBucket::default(),
                },
                ..ReplicaState::default()
            })
            .collect();
        let schedule = match &scenario.load.shape {
            LoadShape::Open(open) => Some(RateSchedule::new(open)),
            LoadShape::Closed(_) => None,
        };
        let plan = plan.filter(|p| p.rule_count() > 0);
        let (call_sites, function_sites) =
            plan.map_or((Vec::new(), Vec::new()), |plan| resolve_sites(plan, prog));
        Self {
            scenario,
            prog,
            plan,
            call_sites,
            function_sites,
            counter: LocalMatchCounter::new(plan.map_or(0, |p| p.rule_count())),
            now: 0,
            seq: 0,
            heap: EventQueue::new(),
            lanes: prog.lanes.iter().map(|_| VecDeque::new()).collect(),
            lane_front: (NO_LANE_EVENT, 0),
            lane_fronts: vec![NO_LANE_EVENT; prog.lanes.len()],
            scratch: Vec::new(),
            frames: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            funcs,
            fmetrics,
            region_active: vec![0; prog.regions.len()],
            region_unreserved_active: vec![0; prog.regions.len()],
            replicas,
            breakers: vec![Breaker::default(); prog.breakers],
            quotas: vec![RetryQuota::default(); prog.quotas],
            budgets: prog.budgets.iter().map(BudgetState::new).collect(),
            queues: (0..prog.queues.len())
                .map(|_| QueueState::default())
                .collect(),
            batches: Vec::new(),
            free_batches: Vec::new(),
            arrival_rng: streams.sequential("arrivals"),
            service_seeds: prog
                .deps
                .iter()
                .map(|d| streams.seed_of(d.service_stream))
                .collect(),
            hop_seeds: prog
                .routes
                .iter()
                .map(|r| prog.deps[r.dep].hop_streams.map(|s| streams.seed_of(s)))
                .collect(),
            transit: Vec::new(),
            free_transit: Vec::new(),
            held: Delivery::default(),
            plan_partitions: plan.is_some_and(|p| {
                (0..p.rule_count()).any(|i| matches!(p.fault(i), Some(Fault::Partition)))
            }),
            schedule,
            streams,
            arrivals: 0,
            stop_at: scenario.duration.map_or(u64::MAX, nanos),
            max_requests: scenario.requests.unwrap_or(u64::MAX),
            horizon: u64::MAX,
            horizon_key: u128::MAX,
            pop_bound: u128::MAX,
            arrivals_open: true,
            m: RunMetrics::new(),
            collapse: true,
            in_flight_requests: 0,
            frames_in_use: 0,
            stopped: None,
            halted: false,
            tl: Recorder::new(
                crate::timeline::interval_of(scenario),
                prog.functions.iter().map(|f| f.name.clone()),
                prog.deps.iter().map(|d| d.name.clone()),
                prog.replicas.iter().map(|r| r.dep),
            ),
            latency: ThreeDigitCounts::new(),
        }
    }

    /// Whether fan-outs of plain calls are joined at issue time (the default) or run with one
    /// event per branch. Both give the same results; the option exists to test that.
    pub(crate) fn collapse_fan_outs(mut self, on: bool) -> Self {
        self.collapse = on;
        self
    }

    // ---------------------------------------------------------------- run loop

    pub(crate) fn run(mut self) -> RunMetrics {
        self.start_load();
        let max_events = self.scenario.max_events;
        while !self.halted
            && let Some(ev) = self.next_event()
        {
            if self.m.events >= max_events {
                self.stop(format!(
                    "the run reached its work budget of {} events (`max_events` in \
                     [simulation]) at {:.3} simulated seconds; raise it, or check for work \
                     that never ends",
                    self.scenario.max_events,
                    self.now as f64 / 1e9
                ));
                break;
            }
            let time = ev.time();
            if time >= self.tl.next_boundary {
                // Every event before `time` has been processed: close the intervals it ends.
                self.tl.roll(time, self.arrivals, &self.m, &self.fmetrics);
            }
            if time < self.now {
                self.m.time_regressions += 1;
            }
            self.now = time;
            self.m.events += 1;
            // The commonest event (a branch's or a step's answer) first, tested once.
            if ev.kind == Kind::Deliver {
                self.on_deliver(ev);
                continue;
            }
            self.dispatch(ev);
        }
        self.finish()
    }

    /// Stops the run (the first reason is kept).
    #[cold]
    fn stop(&mut self, reason: String) {
        if self.stopped.is_none() {
            self.stopped = Some(reason);
            self.halted = true;
        }
    }

    fn finish(mut self) -> RunMetrics {
        self.m.stopped = self.stopped.take();
        self.latency.add_to(&mut self.m.latency);
        self.m.end_time_ns = self.now;
        if self.in_flight_requests > 0 {
            self.m.work_end_ns = self.now;
        }
        self.m.requests = self.arrivals;
        self.m.in_flight = self.in_flight_requests;
        self.m.frames_in_flight_at_end = self.frames_in_use;
        // The platform averages cover 0 to when the last request finished or the last
        // invocation ended, whichever is later: the same span in both engine modes (a late
        // per-branch answer nobody waits for moves the last event, not this).
        let window = self
            .funcs
            .iter()
            .map(|f| f.environments.last_change())
            .fold(self.m.work_end_ns, u64::max);
        for (i, f) in self.prog.functions.iter().enumerate() {
            let fm = &mut self.fmetrics[i];
            fm.cost_usd = fm.billed_mb_ms as f64 / 1024.0 / 1000.0 * f.price.per_gb_second
                + fm.invocations as f64 * f.price.per_request;
            let state = &mut self.funcs[i];
            let totals = std::mem::take(&mut state.environments).finish(
                window,
                state.active,
                &state.warm,
                f.keep_alive_ns,
            );
            fm.set_environments(totals, window);
        }
        self.m.cost_usd = self.fmetrics.iter().map(|f| f.cost_usd).sum();
        self.m.invocations = self.fmetrics.iter().map(|f| f.invocations).sum();
        self.m.cold_starts = self.fmetrics.iter().map(|f| f.cold_starts).sum();
        self.m.function_throttles = self.fmetrics.iter().map(|f| f.throttles).sum();
        self.m.function_timeouts = self.fmetrics.iter().map(|f| f.timeouts).sum();
        self.m.timeline = self.tl.finish(
            self.now,
            self.m.work_end_ns,
            self.arrivals,
            &self.m,
            &self.fmetrics,
        );
        self.m.functions = self.fmetrics;
        self.m
    }

    /// An answer for a frame, dropped if the frame has ended since.
    #[inline(always)]
    fn on_deliver(&mut self, ev: Event) {
        if self.valid(ev.frame, ev.generation) {
            self.child_done(ev.frame, ev.outcome);
        }
    }

    /// Every event but `Deliver` (which the run loop takes first).
    fn dispatch(&mut self, ev: Event) {
        match ev.kind {
            Kind::Arrival => self.on_arrival(),
            Kind::Burst => {
                for _ in 0..ev.data {
                    if self.arrivals >= self.max_requests || self.stopped.is_some() {
                        break;
                    }
                    self.new_request(NONE);
                }
            }
            Kind::ClientWake => {
                if self.now < self.stop_at && self.arrivals < self.max_requests {
                    self.new_request(ev.data);
                } else {
                    self.close_arrivals_if_done();
                }
            }
            Kind::QueuePoll => {
                self.queues[ev.data as usize].poll_pending = false;
                self.queue_dispatch(ev.data as usize);
            }
            Kind::QueueRedeliver => self.queue_redeliver(usize::from(ev.tag), ev.data),
            _ if !self.valid(ev.frame, ev.generation) => {
                // The frame finished or was abandoned; only a server still owns the worker.
                if ev.kind == Kind::ServerDone {
                    self.server_next(ev.data as usize);
                } else if ev.kind == Kind::Arrive {
                    // Carries no frame (its transit slot knows the attempt): it lands whether
                    // or not its caller still waits.
                    self.arrive(ev.data);
                }
            }
            Kind::Deliver => self.on_deliver(ev),
            Kind::ComputeDone => self.complete(ev.frame, outcome::OK),
            Kind::AttemptDone => self.attempt_result(ev.frame, ev.tag, ev.outcome, ev.data),
            Kind::AttemptTimeout => self.attempt_result(ev.frame, ev.tag, outcome::TIMEOUT, 0),
            Kind::HedgeFire => self.hedge_fire(ev.frame, ev.tag),
            Kind::BackoffDone => {
                // Counted when sent: a retry whose caller gave up during the backoff is not.
                self.m.retries += 1;
                self.issue_attempt(ev.frame, false)
            }
            Kind::ColdStartDone => self.begin_handler(ev.frame),
            Kind::HandlerStart => self.run_handler(ev.frame),
            Kind::InvocationTimeout => self.invocation_timeout(ev.frame),
            Kind::ServerDone => {
                self.server_answer(ev.frame, ev.tag, ev.data as usize);
                self.server_next(ev.data as usize);
            }
            Kind::OccWrite => self.occ_write(ev.frame, ev.tag, ev.data),
            Kind::Arrive => self.arrive(ev.data),
            Kind::AsyncRetry => self.async_try(ev.frame),
        }
    }
}

/// The plan's candidates at every call node's sites and every function's invocation site.
fn resolve_sites(
    plan: &CompiledPlan,
    prog: &Program,
) -> (Vec<[ResolvedSite; 2]>, Vec<ResolvedSite>) {
    let calls = prog
        .nodes
        .iter()
        .map(|node| match node {
            Node::Call(call) => {
                let service = prog.deps[call.dep].name.as_str();
                [&call.site_primary, &call.site_failover].map(|site| {
                    plan.resolve(
                        &CallSite::new(site)
                            .service(service)
                            .operation(&call.operation),
                    )
                })
            }
            _ => [ResolvedSite::EMPTY, ResolvedSite::EMPTY],
        })
        .collect();
    let functions = prog
        .functions
        .iter()
        .map(|f| plan.resolve(&CallSite::new(&f.site).service("lambda").operation("invoke")))
        .collect();
    (calls, functions)
}

fn fm_cold(fm: &mut FunctionMetrics) {
    fm.cold_starts += 1;
}

#[cold]
fn unreachable_call() -> ! {
    // Frames in the Call state are only ever created for Call nodes.
    panic!("internal invariant: a call frame points at a non-call node")
}
