//! The step interpreter: sequences, fan-outs and their joins, plain calls.

use super::*;

impl<'p> Engine<'p> {
    /// Starts `node` as a child of `parent`.
    pub(super) fn start_node(&mut self, node: u32, parent: u32, key: u64, deadline: u64) {
        let prog = self.prog;
        match &prog.nodes[node as usize] {
            Node::Compute { dist, stream } => {
                let delay = dist.sample_nanos(&mut self.streams.keyed(*stream, key));
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
            Node::FanOut { count, join, child } => {
                let needed = join_needs(*join, *count);
                let id = self.alloc(
                    parent,
                    node,
                    key,
                    deadline,
                    State::FanOut {
                        successes_left: needed,
                        failures_left: count - needed,
                        fallback: false,
                    },
                );
                if let Node::Call(call) = &prog.nodes[*child as usize]
                    && call.plain
                {
                    let generation = self.frames[id as usize].generation;
                    if let Some(fan_out) = self.unfaulted_fan_out(call, key) {
                        self.unfaulted_branches(fan_out, id, generation, *count);
                        return;
                    }
                    // Branches of plain calls: the same steps as `start_node` on each, without
                    // the dispatch.
                    for i in 0..*count {
                        if self.stopped.is_some() {
                            break;
                        }
                        let branch_key = combine(key, u64::from(i));
                        self.plain_call_to(call, id, generation, branch_key, deadline);
                    }
                } else {
                    for i in 0..*count {
                        if self.stopped.is_some() {
                            break;
                        }
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
    #[inline(always)]
    pub(super) fn plain_call(&mut self, call: &CallNode, parent: u32, key: u64, deadline: u64) {
        if parent == NONE {
            // Nobody waits for the answer, but the dependency still sees the request (a held
            // or hopped request reaches it later).
            self.m.attempts += 1;
            let phase = 0; // the primary replica's site
            let reply = Reply::Plain(NONE);
            if call.network[0] {
                self.network_attempt(call, call.primary, phase, key, 0, deadline, reply);
            } else {
                let (_, out) = self.immediate_attempt(call, call.primary, phase, key, 0, deadline);
                if out == outcome::HELD {
                    self.held_attempt(call, call.primary, key, 0, deadline, reply);
                }
            }
        } else {
            let generation = self.frames[parent as usize].generation;
            self.plain_call_to(call, parent, generation, key, deadline);
        }
    }

    /// `plain_call` under a parent frame whose generation the caller has read.
    #[inline(always)]
    fn plain_call_to(
        &mut self,
        call: &CallNode,
        parent: u32,
        generation: u32,
        key: u64,
        deadline: u64,
    ) {
        self.m.attempts += 1;
        let phase = 0; // the primary replica's site
        let (mut delay, mut out) = if call.network[0] {
            let reply = Reply::Plain(parent);
            self.network_attempt(call, call.primary, phase, key, 0, deadline, reply)
        } else {
            self.immediate_attempt(call, call.primary, phase, key, 0, deadline)
        };
        // `HELD` and `SENT` sort with the failures: the common path tests nothing more.
        if outcome::is_failure(out) {
            if out == outcome::HELD {
                let reply = Reply::Plain(parent);
                (delay, out) = self.held_attempt(call, call.primary, key, 0, deadline, reply);
            }
            if out == outcome::SENT {
                return; // the answer is delivered when the request lands
            }
            out = outcome::cause_of(out);
        }
        self.push(delay, Kind::Deliver, parent, generation, out, 0, 0);
    }

    /// A fan-out of `call` whose branches are served at once and all succeed: no fault plan,
    /// no network on the primary route, an unlimited dependency (`None` otherwise). What does
    /// not change between branches (the dependency, its stream, the interval's room) is looked
    /// up once.
    #[inline(always)]
    fn unfaulted_fan_out(&self, call: &CallNode, key: u64) -> Option<UnfaultedFanOut<'p>> {
        let prog: &'p Program = self.prog;
        let dep = &prog.deps[call.dep];
        (self.plan.is_none() && !call.network[0] && matches!(dep.capacity, Capacity::Unlimited))
            .then(|| UnfaultedFanOut {
                dep: call.dep,
                latency: &dep.latency,
                seed: self.service_seeds[call.dep],
                key,
                room: self.tl.room(self.now),
            })
    }

    /// Branch `i` of an unfaulted fan-out: its service time, drawn as `immediate_attempt`
    /// draws attempt tag 0 of the branch's key, and its work recorded (`work_here` collects
    /// the work that ends in the current interval, recorded once by the caller).
    #[inline(always)]
    fn unfaulted_branch(
        &mut self,
        fan_out: &UnfaultedFanOut<'p>,
        i: u32,
        work_here: &mut u128,
    ) -> u64 {
        let attempt_key = combine(combine(fan_out.key, u64::from(i)), 0);
        let service = fan_out
            .latency
            .sample_nanos(&mut KeyedRng::new(fan_out.seed, attempt_key));
        if service <= fan_out.room {
            *work_here += u128::from(service);
        } else {
            self.tl.in_flight(fan_out.dep, self.now, service);
        }
        service
    }

    /// The branches of an unfaulted fan-out of plain calls, one event each: every branch
    /// answers `OK` after its service time (the steps of `plain_call_to` on each branch).
    #[inline(never)]
    fn unfaulted_branches(
        &mut self,
        fan_out: UnfaultedFanOut<'p>,
        parent: u32,
        generation: u32,
        count: u32,
    ) {
        let mut work_here = 0u128;
        let mut sent = 0;
        // Only a push can stop the run inside the loop (it answers when it does).
        let mut stopped = self.stopped.is_some();
        for i in 0..count {
            if stopped {
                break;
            }
            sent += 1;
            let service = self.unfaulted_branch(&fan_out, i, &mut work_here);
            stopped = self.push_or_stop(
                service,
                Kind::Deliver,
                parent,
                generation,
                outcome::OK,
                0,
                0,
            );
        }
        self.m.attempts += sent;
        self.tl.add_in_flight_here(fan_out.dep, work_here);
    }

    /// Whether `node` is a plain call whose answer is known at issue time (fan-outs of them
    /// are joined at issue time).
    pub(super) fn plain_leaf(&self, node: u32) -> bool {
        matches!(&self.prog.nodes[node as usize], Node::Call(c) if c.plain && self.decided_at_issue(c))
    }

    /// A fan-out of plain calls. Their results are all known when they are sent (the
    /// capacity and fault decisions are made at issue time and completion has no side
    /// effect), so the join's time and outcome are computed here and delivered as one event
    /// instead of one event per branch. Results are identical to the event-per-branch path:
    /// ties are broken by branch index, as the insertion sequence would.
    pub(super) fn collapsed_fan_out(
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
        let phase = 0; // the primary replica's site
        let mut results = std::mem::take(&mut self.scratch);
        results.clear();
        // Tested once per fan-out, not per branch. `plain_leaf` admits only calls answered at
        // issue time, so neither path sends a request (`outcome::SENT`).
        let reply = Reply::Plain(NONE);
        // The dependency's work that ends in the current interval, recorded once.
        let room = self.tl.room(self.now);
        let mut work_here = 0u128;
        if let Some(fan_out) = self.unfaulted_fan_out(call, key) {
            self.m.attempts += u64::from(count);
            for i in 0..count {
                let service = self.unfaulted_branch(&fan_out, i, &mut work_here);
                results.push((service, i, outcome::OK));
            }
        } else if call.network[0] {
            for i in 0..count {
                self.m.attempts += 1;
                let branch_key = combine(key, u64::from(i));
                let (delay, out) =
                    self.network_attempt(call, call.primary, phase, branch_key, 0, deadline, reply);
                results.push((delay, i, outcome::cause_of(out)));
            }
        } else {
            for i in 0..count {
                self.m.attempts += 1;
                let branch_key = combine(key, u64::from(i));
                let (mut delay, mut out, served) = self.immediate_attempt_unrecorded(
                    call,
                    call.primary,
                    phase,
                    branch_key,
                    0,
                    deadline,
                );
                if served {
                    if delay <= room {
                        work_here += u128::from(delay);
                    } else {
                        self.tl.in_flight(call.dep, self.now, delay);
                    }
                }
                if outcome::is_failure(out) {
                    if out == outcome::HELD {
                        let primary = call.primary;
                        (delay, out) =
                            self.held_attempt(call, primary, branch_key, 0, deadline, reply);
                    }
                    out = outcome::cause_of(out);
                }
                results.push((delay, i, out));
            }
        }
        self.tl.add_in_flight_here(call.dep, work_here);
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

    /// A child of `id` finished with `out`. Inline for the commonest case, a branch of a
    /// fan-out that does not yet decide its join (one per branch in the per-branch engine).
    #[inline]
    pub(super) fn child_done(&mut self, id: u32, out: u8) {
        if let State::FanOut {
            successes_left,
            failures_left,
            fallback,
        } = &mut self.frames[id as usize].state
        {
            // Counted in place when the join is not decided (the deciding branch leaves the
            // state as it was for `child_done_deciding`).
            if outcome::is_failure(out) {
                if *failures_left > 0 {
                    *failures_left -= 1;
                    return;
                }
            } else if *successes_left > 1 {
                *successes_left -= 1;
                if out != outcome::OK {
                    *fallback = true; // the only other success
                }
                return;
            }
        }
        self.child_done_deciding(id, out);
    }

    /// The rest of `child_done`: requests, invocations, batches, sequences, and a fan-out's
    /// deciding branch.
    #[inline(never)]
    fn child_done_deciding(&mut self, id: u32, out: u8) {
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
                successes_left,
                failures_left,
                fallback,
            } => {
                // A join's deciding answer (a success or failure the join cannot absorb);
                // other answers were counted in place by `child_done`.
                if outcome::is_failure(out) {
                    if failures_left == 0 {
                        self.complete(id, out);
                    } else {
                        self.frames[id as usize].state = State::FanOut {
                            successes_left,
                            failures_left: failures_left - 1,
                            fallback,
                        };
                    }
                } else if successes_left <= 1 {
                    let success = if fallback || out == outcome::FALLBACK {
                        outcome::FALLBACK
                    } else {
                        outcome::OK
                    };
                    self.complete(id, success);
                } else {
                    self.frames[id as usize].state = State::FanOut {
                        successes_left: successes_left - 1,
                        failures_left,
                        fallback: fallback || out == outcome::FALLBACK,
                    };
                }
            }
            State::Compute | State::Call(_) | State::Free => {}
        }
    }
}

/// Successes that decide a join of `count` branches (validated: 1 <= k <= count for a quorum).
fn join_needs(join: Join, count: u32) -> u32 {
    match join {
        Join::All => count,
        Join::Any => 1,
        Join::Quorum(k) => k,
    }
}

/// What the branches of an unfaulted fan-out share ([`Engine::unfaulted_fan_out`]).
struct UnfaultedFanOut<'p> {
    dep: usize,
    latency: &'p crate::core_api::LatencyDist,
    seed: u64,
    key: u64,
    room: u64,
}
