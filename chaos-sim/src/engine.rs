//! The discrete-event engine and the interpreter of the serverless model.
//!
//! Hot-path design: events are 32-byte values in a binary heap ordered by (time, sequence);
//! the work in flight lives in a slab of frames (one per running step) indexed by `u32` and
//! reused through a free list, so a run allocates in proportion to the work in flight, never
//! to the number of requests. An event names its frame and the frame's generation; a frame
//! that finished (or was abandoned by a timeout, a hedge winner or a join) has a new
//! generation, so its late events are recognised and ignored: cancellation costs nothing.
//! Frames keep a list of their live children; freeing a frame frees the frames below it (a
//! timed-out handler, the losing branches of a decided join), so abandoned work starts no
//! further step, attempt, retry or hedge. Invocations below it are detached and run on.

use crate::core_api::{Call, CompiledPlan, ErrorKind, Failure, LocalMatchCounter};
use crate::metrics::{FunctionMetrics, RunMetrics};
use crate::model::{
    Abandoned, Arrivals, Backoff, Capacity, Discipline, Invocation, InvokeMode, Join, LoadShape,
    OpenLoop, Retry, Scenario,
};
use crate::program::{CallNode, Entry, Limit, Node, Program, nanos};
use crate::queue::{Keyed, QuadHeap};
use crate::rng::{KeyedRng, combine, mix64, sequential_stream, stream_seed};
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;
use std::collections::VecDeque;
use std::time::Duration;

const NONE: u32 = u32::MAX;
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

    pub fn is_failure(o: u8) -> bool {
        o >= TIMEOUT
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
        ok: u32,
        failed: u32,
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
    /// Retry quota tokens taken by the latest retry of the current phase (0: no retry yet).
    retry_cost: u8,
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
}

#[derive(Debug, Default)]
struct ReplicaState {
    tokens: f64,
    refilled_at: u64,
    version: u32,
    busy: u32,
    waiting: VecDeque<WorkItem>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BreakerMode {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Clone, Copy, Debug)]
struct BreakerState {
    mode: BreakerMode,
    failures: u32,
    open_until: u64,
    probes: u32,
    probe_successes: u32,
    probe_started: u64,
}

#[derive(Debug, Default)]
struct FnState {
    active: u32,
    /// Idle warm environments: the time each became idle, most recent last.
    warm: Vec<u64>,
    scale_tokens: f64,
    scale_refilled_at: u64,
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

/// A piecewise-linear rate schedule: (start, end, rate at start, rate at end), ns and per s.
struct RateSchedule {
    segments: Vec<(u64, u64, f64, f64)>,
    cursor: usize,
}

impl RateSchedule {
    fn new(open: &OpenLoop) -> Self {
        enum Change {
            Step(f64),
            Ramp(u64, f64),
        }
        let mut changes: Vec<(u64, usize, Change)> = Vec::new();
        for (i, s) in open.steps.iter().enumerate() {
            changes.push((nanos(s.at), i, Change::Step(s.rate_per_s)));
        }
        for (i, r) in open.ramps.iter().enumerate() {
            changes.push((
                nanos(r.start),
                open.steps.len() + i,
                Change::Ramp(nanos(r.duration), r.to_rate_per_s),
            ));
        }
        changes.sort_by_key(|c| (c.0, c.1));
        let mut segments = Vec::new();
        let (mut t, mut rate) = (0u64, open.rate_per_s);
        for (at, _, change) in changes {
            let at = at.max(t);
            if at > t {
                segments.push((t, at, rate, rate));
            }
            match change {
                Change::Step(r) => rate = r,
                Change::Ramp(len, to) => {
                    if len > 0 {
                        segments.push((at, at.saturating_add(len), rate, to));
                    }
                    rate = to;
                    t = at.saturating_add(len);
                    continue;
                }
            }
            t = at;
        }
        segments.push((t, u64::MAX, rate, rate));
        Self {
            segments,
            cursor: 0,
        }
    }

    /// The time after `t` at which the expected number of arrivals since `t` reaches `mass`
    /// (the inverse of the cumulative rate), or `None` if the rate stays zero. A constant
    /// process advances by mass 1; a Poisson process by exponential masses, which is exact
    /// for a time-varying rate. `t` never decreases between calls.
    fn advance(&mut self, t: u64, mut mass: f64) -> Option<u64> {
        while self.cursor + 1 < self.segments.len() && self.segments[self.cursor].1 <= t {
            self.cursor += 1;
        }
        let mut from = t;
        for &(start, end, r0, r1) in &self.segments[self.cursor..] {
            let from_s = from.max(start);
            let slope = if end == u64::MAX {
                0.0
            } else {
                (r1 - r0) / ((end - start) as f64 / SECOND as f64)
            };
            let rate_at = |x: u64| r0 + slope * ((x - start) as f64 / SECOND as f64);
            let rate_from = rate_at(from_s);
            let span_mass = if end == u64::MAX {
                f64::INFINITY
            } else {
                (rate_from + r1) / 2.0 * ((end - from_s) as f64 / SECOND as f64)
            };
            if span_mass >= mass && (rate_from > 0.0 || slope > 0.0) {
                // Solve rate_from * d + slope * d^2 / 2 = mass for d (seconds).
                let d = if slope.abs() < 1e-12 {
                    mass / rate_from
                } else {
                    let disc = (rate_from * rate_from + 2.0 * slope * mass).max(0.0);
                    (disc.sqrt() - rate_from) / slope
                };
                let at = from_s.saturating_add((d * SECOND as f64) as u64);
                return Some(if end == u64::MAX { at } else { at.min(end) });
            }
            if end == u64::MAX {
                return None;
            }
            mass -= span_mass.max(0.0);
            from = end;
        }
        None
    }
}

/// Runs one simulation of `program` (faults from `plan` when given) and returns its metrics.
pub(crate) struct Engine<'p> {
    scenario: &'p Scenario,
    prog: &'p Program,
    plan: Option<&'p CompiledPlan>,
    counter: LocalMatchCounter,
    now: u64,
    seq: u64,
    heap: QuadHeap<Event>,
    lanes: Vec<VecDeque<Event>>,
    /// Reused buffer of (delay, branch, outcome) for collapsed fan-outs.
    scratch: Vec<(u64, u32, u8)>,
    frames: Vec<Frame>,
    free: Vec<u32>,
    funcs: Vec<FnState>,
    fmetrics: Vec<FunctionMetrics>,
    region_active: Vec<u32>,
    region_unreserved_active: Vec<u32>,
    replicas: Vec<ReplicaState>,
    breakers: Vec<BreakerState>,
    quotas: Vec<u32>,
    queues: Vec<QueueState>,
    batches: Vec<Vec<Message>>,
    free_batches: Vec<u32>,
    arrival_rng: ChaCha8Rng,
    schedule: Option<RateSchedule>,
    think_stream: u64,
    arrivals: u64,
    stop_at: u64,
    max_requests: u64,
    horizon: u64,
    arrivals_open: bool,
    m: RunMetrics,
    collapse: bool,
    in_flight_requests: u64,
    frames_in_use: u64,
}

/// SDK standard retry quota (FACTS.md): 500 tokens.
const QUOTA_CAPACITY: u32 = 500;

/// SQS event source scaling (FACTS.md): +300 concurrent batches per minute, one every 200 ms.
const QUEUE_SCALE_STEP: u64 = 60 * SECOND / 300;

impl<'p> Engine<'p> {
    pub(crate) fn new(
        scenario: &'p Scenario,
        prog: &'p Program,
        plan: Option<&'p CompiledPlan>,
    ) -> Self {
        let funcs = prog
            .functions
            .iter()
            .map(|f| FnState {
                scale_tokens: f64::from(f.scaling.burst),
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
                tokens: match prog.deps[r.dep].capacity {
                    Capacity::TokenBucket { burst, .. } => burst,
                    _ => 0.0,
                },
                ..ReplicaState::default()
            })
            .collect();
        let schedule = match &scenario.load.shape {
            LoadShape::Open(open) => Some(RateSchedule::new(open)),
            LoadShape::Closed(_) => None,
        };
        Self {
            scenario,
            prog,
            plan: plan.filter(|p| p.rule_count() > 0),
            counter: LocalMatchCounter::new(plan.map_or(0, |p| p.rule_count())),
            now: 0,
            seq: 0,
            heap: QuadHeap::with_capacity(1024),
            lanes: prog.lanes.iter().map(|_| VecDeque::new()).collect(),
            scratch: Vec::new(),
            frames: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            funcs,
            fmetrics,
            region_active: vec![0; prog.regions.len()],
            region_unreserved_active: vec![0; prog.regions.len()],
            replicas,
            breakers: vec![
                BreakerState {
                    mode: BreakerMode::Closed,
                    failures: 0,
                    open_until: 0,
                    probes: 0,
                    probe_successes: 0,
                    probe_started: 0,
                };
                prog.breakers
            ],
            quotas: vec![QUOTA_CAPACITY; prog.quotas],
            queues: (0..prog.queues.len())
                .map(|_| QueueState::default())
                .collect(),
            batches: Vec::new(),
            free_batches: Vec::new(),
            arrival_rng: sequential_stream(scenario.seed, "arrivals"),
            schedule,
            think_stream: stream_seed(scenario.seed, "think_time"),
            arrivals: 0,
            stop_at: scenario.duration.map_or(u64::MAX, nanos),
            max_requests: scenario.requests.unwrap_or(u64::MAX),
            horizon: u64::MAX,
            arrivals_open: true,
            m: RunMetrics::new(),
            collapse: true,
            in_flight_requests: 0,
            frames_in_use: 0,
        }
    }

    /// Whether fan-outs of plain calls are joined at issue time (the default) or run with one
    /// event per branch. Both give the same results; the option exists to test that.
    pub(crate) fn collapse_fan_outs(mut self, on: bool) -> Self {
        self.collapse = on;
        self
    }

    // ---------------------------------------------------------------- queue & slab

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        delay: u64,
        kind: Kind,
        frame: u32,
        generation: u32,
        outcome: u8,
        tag: u16,
        data: u32,
    ) {
        self.seq += 1;
        self.heap.push(Event {
            key: (u128::from(self.now.saturating_add(delay)) << 64) | u128::from(self.seq),
            frame,
            generation,
            kind,
            outcome,
            tag,
            data,
        });
        self.m.peak_event_queue = self.m.peak_event_queue.max(self.heap.len() as u64);
    }

    #[inline]
    fn timer(&mut self, delay: u64, kind: Kind, frame: u32, tag: u16) {
        let generation = self.frames[frame as usize].generation;
        self.push(delay, kind, frame, generation, 0, tag, 0);
    }

    /// A timer with the fixed delay of `lane`: appended to that lane, already in order.
    #[inline]
    fn lane_timer(&mut self, lane: usize, kind: Kind, frame: u32, tag: u16) {
        self.seq += 1;
        let event = Event {
            key: (u128::from(self.now.saturating_add(self.prog.lanes[lane])) << 64)
                | u128::from(self.seq),
            frame,
            generation: self.frames[frame as usize].generation,
            kind,
            outcome: 0,
            tag,
            data: 0,
        };
        self.lanes[lane].push_back(event);
    }

    /// The earliest event of the heap and the lanes, if it is not past the horizon.
    #[inline]
    fn next_event(&mut self) -> Option<Event> {
        let mut best = self.heap.peek_key();
        let mut from_lane = usize::MAX;
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(e) = lane.front() {
                if best.is_none_or(|b| e.key < b) {
                    best = Some(e.key);
                    from_lane = i;
                }
            }
        }
        if (best? >> 64) as u64 > self.horizon {
            return None;
        }
        if from_lane == usize::MAX {
            self.heap.pop()
        } else {
            self.lanes[from_lane].pop_front()
        }
    }

    #[inline]
    fn alloc(&mut self, parent: u32, node: u32, key: u64, deadline: u64, state: State) -> u32 {
        let parent_generation = if parent == NONE {
            0
        } else {
            self.frames[parent as usize].generation
        };
        self.frames_in_use += 1;
        self.m.peak_frames = self.m.peak_frames.max(self.frames_in_use);
        let next_sibling = if parent == NONE {
            NONE
        } else {
            self.frames[parent as usize].first_child
        };
        let frame = Frame {
            generation: 0,
            parent,
            parent_generation,
            first_child: NONE,
            prev_sibling: NONE,
            next_sibling,
            node,
            key,
            start: self.now,
            deadline,
            state,
        };
        let id = match self.free.pop() {
            Some(i) => {
                let generation = self.frames[i as usize].generation;
                self.frames[i as usize] = Frame {
                    generation,
                    ..frame
                };
                i
            }
            None => {
                self.frames.push(frame);
                (self.frames.len() - 1) as u32
            }
        };
        if parent != NONE {
            if next_sibling != NONE {
                self.frames[next_sibling as usize].prev_sibling = id;
            }
            self.frames[parent as usize].first_child = id;
        }
        id
    }

    /// Removes `id` from its parent's list of children.
    #[inline]
    fn unlink(&mut self, id: u32) {
        let Frame {
            parent,
            prev_sibling,
            next_sibling,
            ..
        } = self.frames[id as usize];
        if parent == NONE {
            return;
        }
        if prev_sibling == NONE {
            self.frames[parent as usize].first_child = next_sibling;
        } else {
            self.frames[prev_sibling as usize].next_sibling = next_sibling;
        }
        if next_sibling != NONE {
            self.frames[next_sibling as usize].prev_sibling = prev_sibling;
        }
        let f = &mut self.frames[id as usize];
        f.prev_sibling = NONE;
        f.next_sibling = NONE;
    }

    /// Frees `id`. Work still running below it is cancelled: its frames are freed too (their
    /// late events then fail the generation check and are ignored, work queued at a server
    /// counts as abandoned), so no further step, attempt, retry or hedge starts for them.
    /// Invocations and asynchronous events below it are detached instead: a function invoked
    /// by a caller that gave up runs to its own end, as on the platform.
    fn release(&mut self, id: u32) {
        loop {
            let child = self.frames[id as usize].first_child;
            if child == NONE {
                break;
            }
            match self.frames[child as usize].state {
                State::Invocation { .. } | State::Async { .. } => {
                    self.unlink(child);
                    self.frames[child as usize].parent = NONE;
                }
                _ => self.release(child),
            }
        }
        self.unlink(id);
        let f = &mut self.frames[id as usize];
        f.generation = f.generation.wrapping_add(1);
        f.state = State::Free;
        f.parent = NONE;
        self.frames_in_use -= 1;
        self.free.push(id);
    }

    #[inline]
    fn valid(&self, frame: u32, generation: u32) -> bool {
        frame != NONE && self.frames[frame as usize].generation == generation
    }

    /// Finishes `id` and reports `outcome` to its parent.
    fn complete(&mut self, id: u32, outcome: u8) {
        let Frame {
            parent,
            parent_generation,
            ..
        } = self.frames[id as usize];
        self.release(id);
        if self.valid(parent, parent_generation) {
            self.child_done(parent, outcome);
        }
    }

    /// Reports `outcome` to `parent` through the queue (for results known at once; keeps
    /// a step's start from re-entering its parent).
    fn deliver_later(&mut self, parent: u32, outcome: u8) {
        if parent != NONE {
            let generation = self.frames[parent as usize].generation;
            self.push(0, Kind::Deliver, parent, generation, outcome, 0, 0);
        }
    }

    // ---------------------------------------------------------------- run loop

    pub(crate) fn run(mut self) -> RunMetrics {
        self.start_load();
        while let Some(ev) = self.next_event() {
            let time = ev.time();
            if time < self.now {
                self.m.time_regressions += 1;
            }
            self.now = time;
            self.m.events += 1;
            self.dispatch(ev);
        }
        self.finish()
    }

    fn finish(mut self) -> RunMetrics {
        self.m.end_time_ns = self.now;
        self.m.requests = self.arrivals;
        self.m.in_flight = self.in_flight_requests;
        self.m.frames_in_flight_at_end = self.frames_in_use;
        for (i, f) in self.prog.functions.iter().enumerate() {
            let fm = &mut self.fmetrics[i];
            fm.cost_usd = fm.billed_mb_ms as f64 / 1024.0 / 1000.0 * f.price.per_gb_second
                + fm.invocations as f64 * f.price.per_request;
        }
        self.m.cost_usd = self.fmetrics.iter().map(|f| f.cost_usd).sum();
        self.m.invocations = self.fmetrics.iter().map(|f| f.invocations).sum();
        self.m.cold_starts = self.fmetrics.iter().map(|f| f.cold_starts).sum();
        self.m.function_throttles = self.fmetrics.iter().map(|f| f.throttles).sum();
        self.m.function_timeouts = self.fmetrics.iter().map(|f| f.timeouts).sum();
        self.m.functions = self.fmetrics;
        self.m
    }

    fn dispatch(&mut self, ev: Event) {
        match ev.kind {
            Kind::Arrival => self.on_arrival(),
            Kind::Burst => {
                for _ in 0..ev.data {
                    if self.arrivals >= self.max_requests {
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
                }
            }
            Kind::Deliver => self.child_done(ev.frame, ev.outcome),
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
                self.attempt_result(ev.frame, ev.tag, outcome::OK, 0);
                self.server_next(ev.data as usize);
            }
            Kind::AsyncRetry => self.async_try(ev.frame),
        }
    }

    // ---------------------------------------------------------------- load

    fn start_load(&mut self) {
        match &self.scenario.load.shape {
            LoadShape::Open(open) => {
                for b in &open.bursts {
                    let at = nanos(b.at);
                    if at < self.stop_at {
                        self.push(at, Kind::Burst, NONE, 0, 0, 0, b.count);
                    }
                }
                self.schedule_next_arrival();
            }
            LoadShape::Closed(closed) => {
                let spread = nanos(closed.start_spread);
                let stream = stream_seed(self.scenario.seed, "client_start");
                for client in 0..closed.clients {
                    let at = if spread == 0 {
                        0
                    } else {
                        (KeyedRng::new(stream, u64::from(client)).unit() * spread as f64) as u64
                    };
                    self.push(at, Kind::ClientWake, NONE, 0, 0, 0, client);
                }
                self.arrivals_open = false;
            }
        }
    }

    fn close_arrivals_if_done(&mut self) {
        if self.horizon == u64::MAX {
            let end = if self.stop_at == u64::MAX {
                self.now
            } else {
                self.stop_at.max(self.now)
            };
            self.horizon = end.saturating_add(nanos(self.scenario.drain));
        }
    }

    fn schedule_next_arrival(&mut self) {
        let Some(schedule) = self.schedule.as_mut() else {
            return;
        };
        let open = match &self.scenario.load.shape {
            LoadShape::Open(open) => open,
            LoadShape::Closed(_) => return,
        };
        let mass = match open.arrivals {
            Arrivals::Poisson => rand_distr::Exp1.sample(&mut self.arrival_rng),
            Arrivals::Constant => 1.0,
        };
        let next = schedule
            .advance(self.now, mass)
            .filter(|&at| at < self.stop_at);
        match next {
            Some(at) => {
                let delay = at - self.now;
                self.push(delay, Kind::Arrival, NONE, 0, 0, 0, 0);
            }
            None => {
                self.arrivals_open = false;
                self.close_arrivals_if_done();
            }
        }
    }

    fn on_arrival(&mut self) {
        self.new_request(NONE);
        if self.arrivals >= self.max_requests {
            self.arrivals_open = false;
            self.close_arrivals_if_done();
        } else {
            self.schedule_next_arrival();
        }
    }

    fn new_request(&mut self, client: u32) {
        let arrival = self.arrivals;
        self.arrivals += 1;
        self.in_flight_requests += 1;
        // The request key depends only on the arrival index, so a control run and an
        // experiment run key the same request identically.
        let key = mix64(arrival ^ 0x5851_f42d_4c95_7f2d);
        let root = self.alloc(
            NONE,
            NONE,
            key,
            u64::MAX,
            State::Request { arrival, client },
        );
        match self.prog.entry {
            Entry::Function(f, Invocation::Async) => {
                self.start_async(root, f, key);
            }
            Entry::Function(f, _) => {
                if self.start_invocation(root, f, key, 0).is_err() {
                    self.deliver_later(root, outcome::THROTTLE);
                }
            }
            Entry::Queue(q) => {
                let generation = self.frames[root as usize].generation;
                self.publish(q, root, generation, key);
            }
        }
    }

    fn request_done(&mut self, id: u32, out: u8) {
        let f = self.frames[id as usize];
        let State::Request { client, arrival } = f.state else {
            return;
        };
        self.in_flight_requests -= 1;
        match out {
            outcome::OK | outcome::FALLBACK => {
                if out == outcome::OK {
                    self.m.succeeded += 1;
                } else {
                    self.m.fallback_served += 1;
                }
                self.m
                    .latency
                    .saturating_record((self.now - f.start).max(1));
            }
            outcome::TIMEOUT => self.m.failed_timeout += 1,
            outcome::THROTTLE => self.m.failed_throttle += 1,
            _ => self.m.failed_error += 1,
        }
        self.release(id);
        if client != NONE {
            if let LoadShape::Closed(closed) = &self.scenario.load.shape {
                let mut rng = KeyedRng::new(self.think_stream, combine(u64::from(client), arrival));
                let think = closed.think_time.sample_nanos(&mut rng);
                self.push(think, Kind::ClientWake, NONE, 0, 0, 0, client);
            }
        }
    }

    // ---------------------------------------------------------------- steps

    /// Starts `node` as a child of `parent`.
    fn start_node(&mut self, node: u32, parent: u32, key: u64, deadline: u64) {
        let prog = self.prog;
        match &prog.nodes[node as usize] {
            Node::Compute { dist, stream } => {
                let delay = dist.sample_nanos(&mut KeyedRng::new(*stream, key));
                let id = self.alloc(parent, node, key, deadline, State::Compute);
                self.timer(delay, Kind::ComputeDone, id, 0);
            }
            Node::Sequence { children } => {
                let id = self.alloc(
                    parent,
                    node,
                    key,
                    deadline,
                    State::Sequence {
                        next: 0,
                        fallback: false,
                    },
                );
                self.start_node(children[0], id, combine(key, 0), deadline);
            }
            Node::FanOut { count, join, child } if self.collapse && self.plain_leaf(*child) => {
                self.collapsed_fan_out(*count, *join, *child, parent, key, deadline);
            }
            Node::FanOut { count, child, .. } => {
                let id = self.alloc(
                    parent,
                    node,
                    key,
                    deadline,
                    State::FanOut {
                        ok: 0,
                        failed: 0,
                        fallback: false,
                    },
                );
                if let Node::Call(call) = &prog.nodes[*child as usize]
                    && call.plain
                {
                    // Branches of plain calls: the same steps as `start_node` on each, without
                    // the dispatch.
                    for i in 0..*count {
                        self.plain_call(call, id, combine(key, u64::from(i)), deadline);
                    }
                } else {
                    for i in 0..*count {
                        self.start_node(*child, id, combine(key, u64::from(i)), deadline);
                    }
                }
            }
            Node::Call(call) if call.plain => self.plain_call(call, parent, key, deadline),
            Node::Call(_) => {
                let id = self.alloc(
                    parent,
                    node,
                    key,
                    deadline,
                    State::Call(CallState::default()),
                );
                self.issue_attempt(id, false);
            }
            Node::Invoke { function, mode } => match mode {
                InvokeMode::Sync => {
                    if self.start_invocation(parent, *function, key, 0).is_err() {
                        self.deliver_later(parent, outcome::THROTTLE);
                    }
                }
                InvokeMode::Async => {
                    self.start_async(NONE, *function, key);
                    self.deliver_later(parent, outcome::OK);
                }
            },
            Node::Publish { queue } => {
                self.publish(*queue, NONE, 0, key);
                self.deliver_later(parent, outcome::OK);
            }
        }
    }

    /// A call with no resilience and an immediate capacity decision: the result goes straight
    /// to the parent, with no frame for the call.
    #[inline]
    fn plain_call(&mut self, call: &CallNode, parent: u32, key: u64, deadline: u64) {
        self.m.attempts += 1;
        let site = call.site_primary.as_str();
        let (delay, out) = self.immediate_attempt(call, call.primary, site, key, 0, deadline);
        let out = if outcome::is_failure(out) {
            outcome::cause(out)
        } else {
            out
        };
        if parent != NONE {
            let generation = self.frames[parent as usize].generation;
            self.push(delay, Kind::Deliver, parent, generation, out, 0, 0);
        }
    }

    fn plain_leaf(&self, node: u32) -> bool {
        matches!(&self.prog.nodes[node as usize], Node::Call(c) if c.plain)
    }

    /// A fan-out of plain calls. Their results are all known when they are sent (the
    /// capacity and fault decisions are made at issue time and completion has no side
    /// effect), so the join's time and outcome are computed here and delivered as one event
    /// instead of one event per branch. Results are identical to the event-per-branch path:
    /// ties are broken by branch index, as the insertion sequence would.
    fn collapsed_fan_out(
        &mut self,
        count: u32,
        join: Join,
        child: u32,
        parent: u32,
        key: u64,
        deadline: u64,
    ) {
        let Node::Call(call) = &self.prog.nodes[child as usize] else {
            return;
        };
        let call: &CallNode = call;
        let site = call.site_primary.as_str();
        let mut results = std::mem::take(&mut self.scratch);
        results.clear();
        for i in 0..count {
            self.m.attempts += 1;
            let branch_key = combine(key, u64::from(i));
            let (delay, out) =
                self.immediate_attempt(call, call.primary, site, branch_key, 0, deadline);
            let out = if outcome::is_failure(out) {
                outcome::cause(out)
            } else {
                out
            };
            results.push((delay, i, out));
        }
        let decided = match join {
            // All: the first failure (by time, then branch) decides, else the last success.
            Join::All => results
                .iter()
                .filter(|r| outcome::is_failure(r.2))
                .min_by_key(|r| (r.0, r.1))
                .map(|r| (r.0, r.2))
                .unwrap_or_else(|| (results.iter().map(|r| r.0).max().unwrap_or(0), outcome::OK)),
            // Any: the first success decides, else the last failure.
            Join::Any => results
                .iter()
                .filter(|r| !outcome::is_failure(r.2))
                .min_by_key(|r| (r.0, r.1))
                .map(|r| (r.0, outcome::OK))
                .unwrap_or_else(|| {
                    results
                        .iter()
                        .max_by_key(|r| (r.0, r.1))
                        .map_or((0, outcome::ERROR), |r| (r.0, r.2))
                }),
            Join::Quorum(needed) => {
                results.sort_unstable_by_key(|r| (r.0, r.1));
                let (mut ok, mut failed) = (0, 0);
                let mut decided = (0, outcome::OK);
                for &(delay, _, out) in &results {
                    if outcome::is_failure(out) {
                        failed += 1;
                    } else {
                        ok += 1;
                    }
                    if ok >= needed {
                        decided = (delay, outcome::OK);
                        break;
                    }
                    if failed > count - needed {
                        decided = (delay, out);
                        break;
                    }
                }
                decided
            }
        };
        self.scratch = results;
        if parent != NONE {
            let generation = self.frames[parent as usize].generation;
            self.push(
                decided.0,
                Kind::Deliver,
                parent,
                generation,
                decided.1,
                0,
                0,
            );
        }
    }

    fn child_done(&mut self, id: u32, out: u8) {
        let Frame {
            state,
            node,
            key,
            deadline,
            ..
        } = self.frames[id as usize];
        match state {
            State::Request { .. } => self.request_done(id, out),
            State::Invocation { .. } => self.finish_invocation(id, out),
            State::Async { .. } => self.async_result(id, out),
            State::Batch { .. } => self.batch_result(id, out),
            State::Sequence { next, fallback } => {
                let Node::Sequence { children } = &self.prog.nodes[node as usize] else {
                    return;
                };
                if outcome::is_failure(out) {
                    return self.complete(id, out);
                }
                let fallback = fallback || out == outcome::FALLBACK;
                let next = next + 1;
                if next as usize == children.len() {
                    let out = if fallback {
                        outcome::FALLBACK
                    } else {
                        outcome::OK
                    };
                    return self.complete(id, out);
                }
                let child = children[next as usize];
                self.frames[id as usize].state = State::Sequence { next, fallback };
                self.start_node(child, id, combine(key, u64::from(next)), deadline);
            }
            State::FanOut {
                mut ok,
                mut failed,
                mut fallback,
            } => {
                let Node::FanOut { count, join, .. } = self.prog.nodes[node as usize] else {
                    return;
                };
                if outcome::is_failure(out) {
                    failed += 1;
                } else {
                    ok += 1;
                    fallback |= out == outcome::FALLBACK;
                }
                let needed = match join {
                    Join::All => count,
                    Join::Any => 1,
                    Join::Quorum(k) => k,
                };
                let success = if fallback {
                    outcome::FALLBACK
                } else {
                    outcome::OK
                };
                if ok >= needed {
                    self.complete(id, success);
                } else if failed > count - needed {
                    self.complete(id, out);
                } else {
                    self.frames[id as usize].state = State::FanOut {
                        ok,
                        failed,
                        fallback,
                    };
                }
            }
            State::Compute | State::Call(_) | State::Free => {}
        }
    }

    // ---------------------------------------------------------------- functions

    /// Starts an invocation of `function` for `parent`; `Err` is a throttle (429).
    fn start_invocation(
        &mut self,
        parent: u32,
        function: usize,
        key: u64,
        retry: u32,
    ) -> Result<u32, ()> {
        let def = &self.prog.functions[function];
        let region = def.region;
        let fits = match def.limit {
            Limit::Reserved(n) => self.funcs[function].active < n,
            Limit::Unreserved => {
                self.region_unreserved_active[region] < self.prog.unreserved_pool[region]
            }
        };
        if !fits {
            self.fmetrics[function].throttles += 1;
            return Err(());
        }
        let now = self.now;
        let state = &mut self.funcs[function];
        let mut warm = false;
        if let Some(&idle_since) = state.warm.last() {
            if now - idle_since <= def.keep_alive_ns {
                state.warm.pop();
                warm = true;
            } else {
                // The stack is ordered by idle time: the top expired, so all did.
                state.warm.clear();
            }
        }
        if !warm {
            let elapsed = (now - state.scale_refilled_at) as f64 / SECOND as f64;
            state.scale_tokens = (state.scale_tokens + elapsed * def.scaling.per_second)
                .min(f64::from(def.scaling.burst));
            state.scale_refilled_at = now;
            if state.scale_tokens < 1.0 {
                self.fmetrics[function].throttles += 1;
                return Err(());
            }
            state.scale_tokens -= 1.0;
        }
        state.active += 1;
        let active = state.active;
        self.region_active[region] += 1;
        if matches!(def.limit, Limit::Unreserved) {
            self.region_unreserved_active[region] += 1;
        }
        let fm = &mut self.fmetrics[function];
        fm.peak_concurrency = fm.peak_concurrency.max(u64::from(active));
        self.m.peak_concurrency = self
            .m
            .peak_concurrency
            .max(u64::from(self.region_active[region]));
        self.m.peak_unreserved_concurrency = self
            .m
            .peak_unreserved_concurrency
            .max(u64::from(self.region_unreserved_active[region]));
        let inv_key = combine(key, u64::from(retry));
        let id = self.alloc(
            parent,
            def.root,
            inv_key,
            u64::MAX,
            State::Invocation {
                function: function as u32,
                handler_start: 0,
                init_ns: 0,
            },
        );
        if warm {
            self.begin_handler(id);
        } else {
            fm_cold(&mut self.fmetrics[function]);
            let init = def
                .cold_start
                .sample_nanos(&mut KeyedRng::new(def.cold_stream, inv_key));
            if let State::Invocation { init_ns, .. } = &mut self.frames[id as usize].state {
                *init_ns = init;
            }
            self.timer(init, Kind::ColdStartDone, id, 0);
        }
        Ok(id)
    }

    fn begin_handler(&mut self, id: u32) {
        let now = self.now;
        let frame = &mut self.frames[id as usize];
        let State::Invocation {
            function,
            handler_start,
            ..
        } = &mut frame.state
        else {
            return;
        };
        *handler_start = now;
        let def = &self.prog.functions[*function as usize];
        frame.deadline = now.saturating_add(def.timeout_ns);
        let key = frame.key;
        self.lane_timer(def.timeout_lane, Kind::InvocationTimeout, id, 0);
        if let Some(plan) = self.plan {
            let call = Call {
                request_key: key,
                site: &def.site,
                site_hash: None,
                service: "lambda",
                operation: "invoke",
                attempt: 0,
                event: None,
            };
            let verdict = plan.evaluate(&call, Duration::from_nanos(now), &self.counter);
            let added = nanos(verdict.added_latency);
            if let Some(failure) = verdict.failure {
                if matches!(
                    *failure,
                    Failure::Hang { .. }
                        | Failure::Error {
                            kind: ErrorKind::Timeout,
                            ..
                        }
                ) {
                    // The handler hangs: nothing runs, and the invocation timeout armed above
                    // ends it as a timeout (counted in `timeouts`, environment not reused,
                    // the full timeout billed). An injected `timeout` error at the function
                    // level is the same thing: Lambda has no error that ends an invocation
                    // as a timeout early, only its timeout does (as failure-lambda's
                    // `timeout` mode does, by sleeping past it).
                    return;
                }
                let (delay, out) = failure_effect(&failure, added, def.timeout_ns);
                let generation = self.frames[id as usize].generation;
                self.push(delay, Kind::Deliver, id, generation, out, 0, 0);
                return;
            }
            if added > 0 {
                self.timer(added, Kind::HandlerStart, id, 0);
                return;
            }
        }
        self.run_handler(id);
    }

    fn run_handler(&mut self, id: u32) {
        let f = self.frames[id as usize];
        self.start_node(f.node, id, f.key, f.deadline);
    }

    fn release_environment(
        &mut self,
        function: usize,
        keep_warm: bool,
        handler_start: u64,
        init_ns: u64,
    ) {
        let def = &self.prog.functions[function];
        let billed_ns = self
            .now
            .saturating_sub(handler_start)
            .saturating_add(init_ns);
        let billed_ms = billed_ns.div_ceil(1_000_000).max(1);
        let fm = &mut self.fmetrics[function];
        fm.invocations += 1;
        fm.billed_mb_ms += def.memory_mb * billed_ms;
        let state = &mut self.funcs[function];
        state.active -= 1;
        if keep_warm {
            state.warm.push(self.now);
        }
        self.region_active[def.region] -= 1;
        if matches!(def.limit, Limit::Unreserved) {
            self.region_unreserved_active[def.region] -= 1;
        }
    }

    fn finish_invocation(&mut self, id: u32, out: u8) {
        self.end_invocation(id, out, false);
    }

    fn invocation_timeout(&mut self, id: u32) {
        self.end_invocation(id, outcome::TIMEOUT, true);
    }

    /// Ends an invocation with `out`: counts it, releases its environment (not reused warm
    /// after a timeout: Lambda restarts the runtime), and completes its frame.
    fn end_invocation(&mut self, id: u32, out: u8, timed_out: bool) {
        let State::Invocation {
            function,
            handler_start,
            init_ns,
            ..
        } = self.frames[id as usize].state
        else {
            return;
        };
        let metrics = &mut self.fmetrics[function as usize];
        if timed_out {
            metrics.timeouts += 1;
        } else if outcome::is_failure(out) {
            metrics.errors += 1;
        }
        self.release_environment(function as usize, !timed_out, handler_start, init_ns);
        self.complete(id, out);
    }

    // ---------------------------------------------------------------- async invoke

    fn start_async(&mut self, parent: u32, function: usize, key: u64) {
        self.m.async_events += 1;
        let id = self.alloc(
            parent,
            NONE,
            key,
            u64::MAX,
            State::Async {
                function: function as u32,
                first: self.now,
                error_retries: 0,
                throttle_retries: 0,
            },
        );
        self.async_try(id);
    }

    fn async_try(&mut self, id: u32) {
        let f = self.frames[id as usize];
        let State::Async {
            function,
            first,
            error_retries,
            throttle_retries,
        } = f.state
        else {
            return;
        };
        let attempt = error_retries + throttle_retries;
        if self
            .start_invocation(id, function as usize, f.key, attempt)
            .is_err()
        {
            // Throttled events go back to the platform queue: backoff from 1 s up to 5 min
            // (FACTS.md), until the maximum event age.
            let delay = (SECOND << throttle_retries.min(9)).min(300 * SECOND);
            let max_age = nanos(
                self.prog.functions[function as usize]
                    .async_config
                    .max_event_age,
            );
            if self.now.saturating_add(delay).saturating_sub(first) > max_age {
                self.m.dead_lettered += 1;
                return self.complete(id, outcome::THROTTLE);
            }
            self.m.async_retries += 1;
            self.frames[id as usize].state = State::Async {
                function,
                first,
                error_retries,
                throttle_retries: throttle_retries + 1,
            };
            self.timer(delay, Kind::AsyncRetry, id, 0);
        }
    }

    fn async_result(&mut self, id: u32, out: u8) {
        let State::Async {
            function,
            first,
            error_retries,
            throttle_retries,
        } = self.frames[id as usize].state
        else {
            return;
        };
        if !outcome::is_failure(out) {
            return self.complete(id, out);
        }
        let config = self.prog.functions[function as usize].async_config;
        // Function errors are retried 1 min, then 2 min later (FACTS.md).
        let delay = 60 * SECOND * u64::from(error_retries + 1);
        if error_retries >= config.max_retry_attempts
            || self.now.saturating_add(delay).saturating_sub(first) > nanos(config.max_event_age)
        {
            self.m.dead_lettered += 1;
            return self.complete(id, out);
        }
        self.m.async_retries += 1;
        self.frames[id as usize].state = State::Async {
            function,
            first,
            error_retries: error_retries + 1,
            throttle_retries,
        };
        self.timer(delay, Kind::AsyncRetry, id, 0);
    }

    // ---------------------------------------------------------------- queues

    fn publish(&mut self, queue: usize, root: u32, root_generation: u32, key: u64) {
        let q = &mut self.queues[queue];
        q.first_message_at.get_or_insert(self.now);
        q.messages.push_back(Message {
            root,
            root_generation,
            key,
            receives: 0,
        });
        self.m.messages_published += 1;
        self.queue_dispatch(queue);
    }

    /// Concurrent batches allowed now: 5 at first, +300 per minute (FACTS.md), up to the max.
    fn queue_cap(&self, queue: usize) -> u32 {
        let def = &self.prog.queues[queue];
        let since = self.queues[queue]
            .first_message_at
            .map_or(0, |t| self.now - t);
        let grown = 5 + since / QUEUE_SCALE_STEP;
        def.max_concurrency
            .min(u32::try_from(grown).unwrap_or(u32::MAX))
    }

    fn queue_dispatch(&mut self, queue: usize) {
        loop {
            let cap = self.queue_cap(queue);
            let def = &self.prog.queues[queue];
            let q = &mut self.queues[queue];
            if q.messages.is_empty() {
                return;
            }
            if q.in_flight >= cap {
                if cap < def.max_concurrency {
                    // The scaling cap, not the message count, holds messages back: poll
                    // again when the cap next rises, not only when a batch finishes
                    // (batches may run for minutes while the event source keeps scaling).
                    let since = q.first_message_at.map_or(0, |t| self.now - t);
                    let delay = QUEUE_SCALE_STEP - since % QUEUE_SCALE_STEP;
                    self.schedule_poll_in(queue, delay);
                }
                return;
            }
            let take = (def.batch_size as usize).min(q.messages.len());
            let batch_id = match self.free_batches.pop() {
                Some(b) => b,
                None => {
                    self.batches.push(Vec::new());
                    (self.batches.len() - 1) as u32
                }
            };
            let batch = &mut self.batches[batch_id as usize];
            batch.clear();
            batch.extend(q.messages.drain(..take));
            for m in batch.iter_mut() {
                m.receives += 1;
            }
            let key = combine(batch[0].key, u64::from(batch[0].receives));
            q.in_flight += 1;
            let consumer = def.consumer;
            let id = self.alloc(
                NONE,
                NONE,
                key,
                u64::MAX,
                State::Batch {
                    queue: queue as u32,
                    batch: batch_id,
                },
            );
            if self.start_invocation(id, consumer, key, 0).is_err() {
                // Throttled: the messages stay invisible for the visibility timeout, then
                // return; the receive counts already went up.
                self.settle_batch(id, outcome::THROTTLE);
                self.schedule_poll(queue);
                return;
            }
        }
    }

    fn batch_result(&mut self, id: u32, out: u8) {
        if let Some(queue) = self.settle_batch(id, out) {
            self.queue_dispatch(queue);
        }
    }

    /// Settles a finished (or throttled) batch; returns its queue when a worker slot freed
    /// up and more messages may be dispatched now.
    fn settle_batch(&mut self, id: u32, out: u8) -> Option<usize> {
        let State::Batch { queue, batch } = self.frames[id as usize].state else {
            return None;
        };
        let queue = queue as usize;
        self.queues[queue].in_flight -= 1;
        let max_receives = self.prog.queues[queue].max_receives;
        let mut messages = std::mem::take(&mut self.batches[batch as usize]);
        if outcome::is_failure(out) {
            // Dead-letter the messages out of receives; the rest come back later.
            let mut kept = 0;
            for i in 0..messages.len() {
                let m = messages[i];
                if m.receives >= max_receives {
                    self.m.dead_lettered += 1;
                    if self.valid(m.root, m.root_generation) {
                        self.child_done(m.root, out);
                    }
                } else {
                    messages[kept] = m;
                    kept += 1;
                }
            }
            messages.truncate(kept);
            if !messages.is_empty() {
                self.m.redeliveries += messages.len() as u64;
                self.batches[batch as usize] = messages;
                let delay = self.prog.queues[queue].visibility_timeout_ns;
                self.push(delay, Kind::QueueRedeliver, NONE, 0, 0, queue as u16, batch);
                self.release(id);
                // A queue with a timer pending: poll it so remaining messages keep flowing.
                self.schedule_poll(queue);
                return None;
            }
        } else {
            for m in &messages {
                if self.valid(m.root, m.root_generation) {
                    self.child_done(m.root, out);
                }
            }
        }
        messages.clear();
        self.batches[batch as usize] = messages;
        self.free_batches.push(batch);
        self.release(id);
        Some(queue)
    }

    fn schedule_poll(&mut self, queue: usize) {
        self.schedule_poll_in(queue, SECOND);
    }

    /// Polls the queue `delay` from now, unless a poll is already pending (at most one per
    /// queue, so the event order stays a function of the seed alone).
    fn schedule_poll_in(&mut self, queue: usize, delay: u64) {
        if !self.queues[queue].poll_pending && !self.queues[queue].messages.is_empty() {
            self.queues[queue].poll_pending = true;
            self.push(delay, Kind::QueuePoll, NONE, 0, 0, 0, queue as u32);
        }
    }

    fn queue_redeliver(&mut self, queue: usize, batch: u32) {
        let mut messages = std::mem::take(&mut self.batches[batch as usize]);
        self.queues[queue].messages.extend(messages.iter().copied());
        messages.clear();
        self.batches[batch as usize] = messages;
        self.free_batches.push(batch);
        self.queue_dispatch(queue);
    }

    // ---------------------------------------------------------------- calls

    fn call_node(&self, id: u32) -> &'p CallNode {
        match &self.prog.nodes[self.frames[id as usize].node as usize] {
            Node::Call(c) => c,
            _ => unreachable_call(),
        }
    }

    fn issue_attempt(&mut self, id: u32, hedge: bool) {
        let node = self.call_node(id);
        let frame = self.frames[id as usize];
        let State::Call(mut cs) = frame.state else {
            return;
        };
        let tag = cs.next_tag;
        if tag >= 63 {
            return self.complete(id, outcome::ERROR);
        }
        cs.next_tag += 1;
        if !hedge {
            cs.tries += 1;
            cs.hedges = 0;
            cs.try_tag = tag;
        }
        cs.outstanding |= 1 << tag;
        self.frames[id as usize].state = State::Call(cs);
        // Circuit breaker: an open circuit fails fast without calling.
        if let Some((b, cfg)) = &node.breaker {
            // Each replica (primary, failover) has its own breaker.
            if !self.breaker_allows(*b + usize::from(cs.in_failover), cfg) {
                self.m.short_circuited += 1;
                let generation = frame.generation;
                self.push(
                    0,
                    Kind::AttemptDone,
                    id,
                    generation,
                    outcome::CIRCUIT_OPEN,
                    tag,
                    0,
                );
                return;
            }
        }
        self.m.attempts += 1;
        let (replica, site) = if cs.in_failover {
            (
                node.failover.unwrap_or(node.primary),
                node.site_failover.as_str(),
            )
        } else {
            (node.primary, node.site_primary.as_str())
        };
        let dep = &self.prog.deps[node.dep];
        let generation = frame.generation;
        match &dep.capacity {
            Capacity::Unlimited | Capacity::TokenBucket { .. } => {
                let (delay, out) =
                    self.immediate_attempt(node, replica, site, frame.key, tag, frame.deadline);
                self.push(delay, Kind::AttemptDone, id, generation, out, tag, 0);
            }
            Capacity::OptimisticItem => {
                match self.fault_verdict(node, site, frame.key, tag, frame.deadline) {
                    Err((delay, out)) => {
                        self.push(delay, Kind::AttemptDone, id, generation, out, tag, 0)
                    }
                    Ok(added) => {
                        let attempt_key = combine(frame.key, u64::from(tag));
                        let lat = dep
                            .latency
                            .sample_nanos(&mut KeyedRng::new(dep.service_stream, attempt_key));
                        let version = self.replicas[replica].version;
                        self.push(
                            added.saturating_add(lat),
                            Kind::AttemptDone,
                            id,
                            generation,
                            outcome::OCC_CHECK,
                            tag,
                            version,
                        );
                    }
                }
            }
            Capacity::Server { .. } => {
                match self.fault_verdict(node, site, frame.key, tag, frame.deadline) {
                    Err((delay, out)) => {
                        self.push(delay, Kind::AttemptDone, id, generation, out, tag, 0)
                    }
                    Ok(added) => {
                        let deadline = match node.timeout_ns {
                            Some(t) => self.now.saturating_add(t).min(frame.deadline),
                            None => frame.deadline,
                        };
                        let item = WorkItem {
                            frame: id,
                            generation,
                            tag,
                            deadline,
                            key: combine(frame.key, u64::from(tag)),
                            added,
                        };
                        self.server_offer(replica, item);
                    }
                }
            }
        }
        self.arm_attempt_timers(id, node, tag, hedge, cs);
    }

    /// The faults for one attempt: `Ok(added latency)`, or `Err((delay, outcome))` when a rule
    /// fails the attempt.
    #[inline]
    fn fault_verdict(
        &mut self,
        node: &CallNode,
        site: &str,
        request_key: u64,
        tag: u16,
        deadline: u64,
    ) -> Result<u64, (u64, u8)> {
        if self.plan.is_none() {
            return Ok(0);
        }
        self.evaluate_faults(node, site, request_key, tag, deadline)
    }

    #[inline(never)]
    fn evaluate_faults(
        &mut self,
        node: &CallNode,
        site: &str,
        request_key: u64,
        tag: u16,
        deadline: u64,
    ) -> Result<u64, (u64, u8)> {
        let Some(plan) = self.plan else {
            return Ok(0);
        };
        let call = Call {
            request_key,
            site,
            site_hash: None,
            service: &self.prog.deps[node.dep].name,
            operation: &node.operation,
            attempt: u32::from(tag),
            event: None,
        };
        let verdict = plan.evaluate(&call, Duration::from_nanos(self.now), &self.counter);
        let added = nanos(verdict.added_latency);
        match verdict.failure {
            None => Ok(added),
            Some(failure) => {
                let budget = node
                    .timeout_ns
                    .unwrap_or(u64::MAX)
                    .min(deadline.saturating_sub(self.now));
                Err(failure_effect(&failure, added, budget))
            }
        }
    }

    /// One attempt at an unlimited or token-bucket replica (or failed by a fault):
    /// (delay, attempt outcome).
    fn immediate_attempt(
        &mut self,
        node: &CallNode,
        replica: usize,
        site: &str,
        request_key: u64,
        tag: u16,
        deadline: u64,
    ) -> (u64, u8) {
        let added = match self.fault_verdict(node, site, request_key, tag, deadline) {
            Ok(added) => added,
            Err(failed) => return failed,
        };
        let dep = &self.prog.deps[node.dep];
        let attempt_key = combine(request_key, u64::from(tag));
        let lat = dep
            .latency
            .sample_nanos(&mut KeyedRng::new(dep.service_stream, attempt_key));
        if let Capacity::TokenBucket { rate_per_s, burst } = dep.capacity {
            let r = &mut self.replicas[replica];
            let elapsed = (self.now - r.refilled_at) as f64 / SECOND as f64;
            r.tokens = (r.tokens + elapsed * rate_per_s).min(burst);
            r.refilled_at = self.now;
            if r.tokens < 1.0 {
                self.m.dependency_throttles += 1;
                return (added.saturating_add(lat), outcome::THROTTLE);
            }
            r.tokens -= 1.0;
        }
        (added.saturating_add(lat), outcome::OK)
    }

    /// Arms the attempt's timeout and the try's next hedge: after the first attempt of a try,
    /// and after each hedge while the try has sent fewer than `max_extra` hedges. Hedge timers
    /// carry the try's first tag.
    fn arm_attempt_timers(
        &mut self,
        id: u32,
        node: &CallNode,
        tag: u16,
        hedge: bool,
        cs: CallState,
    ) {
        if node.timeout_ns.is_some() {
            self.lane_timer(node.timeout_lane, Kind::AttemptTimeout, id, tag);
        }
        if let Some((_, max_extra)) = node.hedge
            && (!hedge || u32::from(cs.hedges) < max_extra)
        {
            self.lane_timer(node.hedge_lane, Kind::HedgeFire, id, cs.try_tag);
        }
    }

    /// A hedge timer of the try that started with `tag`: sends a hedge if that try is still
    /// waiting for an answer and has hedges left.
    fn hedge_fire(&mut self, id: u32, tag: u16) {
        let node = self.call_node(id);
        let State::Call(mut cs) = self.frames[id as usize].state else {
            return;
        };
        let max_extra = node.hedge.map_or(0, |h| h.1);
        if tag != cs.try_tag || cs.outstanding == 0 || u32::from(cs.hedges) >= max_extra {
            return;
        }
        cs.hedges += 1;
        self.frames[id as usize].state = State::Call(cs);
        self.m.hedges += 1;
        self.issue_attempt(id, true);
    }

    fn attempt_result(&mut self, id: u32, tag: u16, mut out: u8, version: u32) {
        let State::Call(mut cs) = self.frames[id as usize].state else {
            return;
        };
        if cs.outstanding & (1 << tag) == 0 {
            return;
        }
        let node = self.call_node(id);
        if out == outcome::OCC_CHECK {
            let replica = if cs.in_failover {
                node.failover.unwrap_or(node.primary)
            } else {
                node.primary
            };
            let r = &mut self.replicas[replica];
            if r.version == version {
                r.version = r.version.wrapping_add(1);
                out = outcome::OK;
            } else {
                self.m.conflicts += 1;
                out = outcome::CONFLICT;
            }
        }
        cs.outstanding &= !(1 << tag);
        if let Some((b, cfg)) = &node.breaker {
            if out != outcome::CIRCUIT_OPEN {
                self.breaker_record(*b + usize::from(cs.in_failover), cfg, out == outcome::OK);
            }
        }
        if out == outcome::OK {
            if let Some(buckets) = node.quota {
                // SDK standard mode: a first-try success refunds 1 token (FACTS.md); a
                // retried success releases its retry permit, returning that retry's cost.
                let q = buckets[usize::from(cs.in_failover)];
                let refund = if cs.retry_cost > 0 {
                    u32::from(cs.retry_cost)
                } else {
                    1
                };
                self.quotas[q] = (self.quotas[q] + refund).min(QUOTA_CAPACITY);
            }
            return self.complete(id, outcome::OK);
        }
        cs.last_cause = out;
        self.frames[id as usize].state = State::Call(cs);
        if cs.outstanding != 0 {
            return; // a hedge is still running
        }
        self.after_failure(id, node, cs);
    }

    fn after_failure(&mut self, id: u32, node: &CallNode, mut cs: CallState) {
        let out = cs.last_cause;
        let retryable = match node.retry {
            // FACTS.md: the SDK's classifiers retry throttling codes, timeouts, IO errors and
            // HTTP 500/502/503/504; not ConditionalCheckFailedException (CONFLICT) nor
            // application errors.
            Retry::SdkStandard => matches!(
                out,
                outcome::THROTTLE | outcome::TIMEOUT | outcome::TRANSIENT
            ),
            _ => matches!(
                out,
                outcome::THROTTLE
                    | outcome::TIMEOUT
                    | outcome::ERROR
                    | outcome::CONFLICT
                    | outcome::TRANSIENT
            ),
        };
        let (max_attempts, backoff, base, cap) = match &node.retry {
            Retry::None => (1, Backoff::None, 0, 0),
            Retry::Backoff {
                max_attempts,
                backoff,
                base,
                cap,
            } => (*max_attempts, *backoff, nanos(*base), nanos(*cap)),
            Retry::SdkStandard => (3, Backoff::FullJitter, SECOND, 20 * SECOND),
        };
        let quota_granted = retryable
            && u32::from(cs.tries) < max_attempts
            && match self.take_quota(node, out, cs.in_failover) {
                Some(cost) => {
                    cs.retry_cost = cost;
                    true
                }
                None => false,
            };
        if quota_granted {
            let n = u32::from(cs.tries); // retry number, 1-based
            let mut rng = KeyedRng::new(
                node.backoff_stream,
                combine(self.frames[id as usize].key, u64::from(cs.next_tag)),
            );
            let ceiling = base.saturating_mul(1u64 << (n - 1).min(40)).min(cap);
            let sleep = match backoff {
                Backoff::None => base,
                Backoff::Exponential => ceiling,
                Backoff::FullJitter => (rng.unit() * ceiling as f64) as u64,
                Backoff::EqualJitter => ceiling / 2 + (rng.unit() * (ceiling / 2) as f64) as u64,
                Backoff::DecorrelatedJitter => {
                    let prev = if cs.prev_sleep == 0 {
                        base
                    } else {
                        cs.prev_sleep
                    };
                    let high = prev.saturating_mul(3).max(base);
                    (base + (rng.unit() * (high - base) as f64) as u64).min(cap)
                }
            };
            cs.prev_sleep = sleep;
            self.frames[id as usize].state = State::Call(cs);
            self.timer(sleep, Kind::BackoffDone, id, 0);
            return;
        }
        if node.failover.is_some() && !cs.in_failover && out != outcome::FATAL {
            cs.in_failover = true;
            cs.tries = 0;
            cs.hedges = 0;
            cs.prev_sleep = 0;
            // The failover region's client draws on its own Region's quota; the primary
            // region's last permit is spent.
            cs.retry_cost = 0;
            self.frames[id as usize].state = State::Call(cs);
            self.m.failovers += 1;
            return self.issue_attempt(id, false);
        }
        if node.fallback {
            return self.complete(id, outcome::FALLBACK);
        }
        self.complete(id, outcome::cause(out));
    }

    /// SDK standard mode's retry quota: a throttle retry costs 5, any other 10 (FACTS.md).
    /// The bucket is the one of the region the phase is served in (primary or failover).
    /// Returns the tokens taken (0 without a quota), or `None` when the quota refuses.
    fn take_quota(&mut self, node: &CallNode, out: u8, in_failover: bool) -> Option<u8> {
        let Some(buckets) = node.quota else {
            return Some(0);
        };
        let q = buckets[usize::from(in_failover)];
        let cost: u8 = if out == outcome::THROTTLE { 5 } else { 10 };
        if self.quotas[q] < u32::from(cost) {
            self.m.retry_quota_exhausted += 1;
            return None;
        }
        self.quotas[q] -= u32::from(cost);
        Some(cost)
    }

    fn breaker_allows(&mut self, b: usize, cfg: &crate::model::CircuitBreaker) -> bool {
        let now = self.now;
        let s = &mut self.breakers[b];
        if s.mode == BreakerMode::Open {
            if now < s.open_until {
                return false;
            }
            s.mode = BreakerMode::HalfOpen;
            s.probes = 0;
            s.probe_successes = 0;
        }
        if s.mode == BreakerMode::HalfOpen {
            // A probe whose caller vanished never reports; give up on it after `open_for`.
            if s.probes >= cfg.half_open_probes && now - s.probe_started > nanos(cfg.open_for) {
                s.probes = s.probe_successes;
            }
            if s.probes >= cfg.half_open_probes {
                return false;
            }
            s.probes += 1;
            s.probe_started = now;
        }
        true
    }

    fn breaker_record(&mut self, b: usize, cfg: &crate::model::CircuitBreaker, success: bool) {
        let now = self.now;
        let s = &mut self.breakers[b];
        match (s.mode, success) {
            (BreakerMode::Closed, true) => s.failures = 0,
            (BreakerMode::Closed, false) => {
                s.failures += 1;
                if s.failures >= cfg.failure_threshold {
                    s.mode = BreakerMode::Open;
                    s.open_until = now.saturating_add(nanos(cfg.open_for));
                    self.m.breaker_opened += 1;
                }
            }
            (BreakerMode::HalfOpen, true) => {
                s.probe_successes += 1;
                if s.probe_successes >= cfg.half_open_probes {
                    s.mode = BreakerMode::Closed;
                    s.failures = 0;
                }
            }
            (BreakerMode::HalfOpen, false) => {
                s.mode = BreakerMode::Open;
                s.open_until = now.saturating_add(nanos(cfg.open_for));
                self.m.breaker_opened += 1;
            }
            (BreakerMode::Open, _) => {}
        }
    }

    // ---------------------------------------------------------------- servers

    fn server_config(&self, replica: usize) -> (u32, Discipline, Abandoned) {
        match self.prog.deps[self.prog.replicas[replica].dep].capacity {
            Capacity::Server {
                workers,
                discipline,
                abandoned,
            } => (workers, discipline, abandoned),
            _ => (1, Discipline::Fifo, Abandoned::Serve),
        }
    }

    fn server_offer(&mut self, replica: usize, item: WorkItem) {
        let (workers, _, _) = self.server_config(replica);
        let r = &mut self.replicas[replica];
        if r.busy < workers {
            self.start_service(replica, item);
        } else {
            r.waiting.push_back(item);
            self.m.peak_server_queue = self.m.peak_server_queue.max(r.waiting.len() as u64);
        }
    }

    fn start_service(&mut self, replica: usize, item: WorkItem) {
        let dep = &self.prog.deps[self.prog.replicas[replica].dep];
        let service = dep
            .latency
            .sample_nanos(&mut KeyedRng::new(dep.service_stream, item.key));
        self.replicas[replica].busy += 1;
        // Injected latency at a server lengthens its service time: a slowdown.
        self.push(
            service.saturating_add(item.added),
            Kind::ServerDone,
            item.frame,
            item.generation,
            0,
            item.tag,
            replica as u32,
        );
    }

    fn work_abandoned(&self, item: &WorkItem) -> bool {
        if !self.valid(item.frame, item.generation) {
            return true;
        }
        match self.frames[item.frame as usize].state {
            State::Call(cs) => cs.outstanding & (1 << item.tag) == 0,
            _ => true,
        }
    }

    fn server_next(&mut self, replica: usize) {
        let (_, discipline, abandoned) = self.server_config(replica);
        self.replicas[replica].busy -= 1;
        loop {
            let r = &mut self.replicas[replica];
            let next = match discipline {
                Discipline::Fifo => r.waiting.pop_front(),
                Discipline::Lifo => r.waiting.pop_back(),
            };
            let Some(item) = next else {
                return;
            };
            if abandoned == Abandoned::Drop
                && (self.now > item.deadline || self.work_abandoned(&item))
            {
                self.m.dropped_work += 1;
                continue;
            }
            if self.work_abandoned(&item) {
                self.m.abandoned_work_served += 1;
            }
            self.start_service(replica, item);
            return;
        }
    }
}

fn fm_cold(fm: &mut FunctionMetrics) {
    fm.cold_starts += 1;
}

#[cold]
fn unreachable_call() -> ! {
    // Frames in the Call state are only ever created for Call nodes.
    panic!("internal invariant: a call frame points at a non-call node")
}

/// Delay and attempt outcome of an injected failure (`budget` is the time the caller has).
fn failure_effect(failure: &Failure, added: u64, budget: u64) -> (u64, u8) {
    match failure {
        Failure::Error { kind, .. } => (
            added,
            match kind {
                ErrorKind::Throttle => outcome::THROTTLE,
                ErrorKind::Timeout => outcome::TIMEOUT,
                ErrorKind::ConnectionReset
                | ErrorKind::ServerError {
                    status: 500 | 502 | 503 | 504,
                } => outcome::TRANSIENT,
                ErrorKind::ServerError { .. } | ErrorKind::Custom { .. } => outcome::ERROR,
            },
        ),
        Failure::Hang { buffer, .. } => (
            budget.saturating_sub(nanos(*buffer)).max(added),
            outcome::TIMEOUT,
        ),
        Failure::Status { status, .. } => (
            added,
            match status {
                429 => outcome::THROTTLE,
                500 | 502 | 503 | 504 => outcome::TRANSIENT,
                500..=599 => outcome::ERROR,
                _ => outcome::FATAL,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, steps: Vec<(u64, f64)>, ramps: Vec<(u64, u64, f64)>) -> RateSchedule {
        RateSchedule::new(&OpenLoop {
            arrivals: Arrivals::Constant,
            rate_per_s: rate,
            steps: steps
                .into_iter()
                .map(|(at, r)| crate::model::RateStep {
                    at: Duration::from_secs(at),
                    rate_per_s: r,
                })
                .collect(),
            ramps: ramps
                .into_iter()
                .map(|(s, d, to)| crate::model::RateRamp {
                    start: Duration::from_secs(s),
                    duration: Duration::from_secs(d),
                    to_rate_per_s: to,
                })
                .collect(),
            bursts: Vec::new(),
        })
    }

    #[test]
    fn constant_rate_spacing_is_exact() {
        let mut s = schedule(4.0, vec![], vec![]);
        assert_eq!(s.advance(0, 1.0), Some(SECOND / 4));
        assert_eq!(s.advance(SECOND, 2.0), Some(SECOND + SECOND / 2));
    }

    #[test]
    fn a_ramp_from_zero_integrates_linearly() {
        // Rate 0 until 10 s, then 0 -> 10/s over 10 s: mass 5 by 15 s (area of the triangle
        // 0.5 * 5 s * 5/s), 50 by 20 s.
        let mut s = schedule(0.0, vec![], vec![(10, 10, 10.0)]);
        let at = s.advance(0, 12.5).expect("positive rate ahead");
        assert!((at as f64 / SECOND as f64 - 15.0).abs() < 1e-6, "{at}");
        let at = s.advance(0, 60.0).expect("positive rate ahead");
        assert!((at as f64 / SECOND as f64 - 21.0).abs() < 1e-6, "{at}");
    }

    #[test]
    fn a_rate_that_drops_to_zero_for_good_ends_arrivals() {
        let mut s = schedule(1.0, vec![(5, 0.0)], vec![]);
        assert!(s.advance(0, 4.0).is_some());
        assert_eq!(s.advance(0, 6.0), None);
    }
}
