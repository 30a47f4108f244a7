//! Calls to dependencies and their resilience: attempts, timeouts, hedges, retries, the retry quota, circuit breakers and failover.

use super::*;

impl<'p> Engine<'p> {
    pub(super) fn call_node(&self, id: u32) -> &'p CallNode {
        match &self.prog.nodes[self.frames[id as usize].node as usize] {
            Node::Call(c) => c,
            _ => unreachable_call(),
        }
    }

    pub(super) fn issue_attempt(&mut self, id: u32, hedge: bool) {
        let node = self.call_node(id);
        let frame = self.frames[id as usize];
        let State::Call(mut cs) = frame.state else {
            return;
        };
        let tag = cs.next_tag;
        if u32::from(tag) >= MAX_ATTEMPTS_UNTIL_SUCCESS {
            // Only `until_success` gets here (counted policies are checked to stay below
            // 64 attempts): the call ends with its last attempt's cause.
            return self.complete(id, outcome::cause(cs.last_cause));
        }
        cs.next_tag += 1;
        if !hedge {
            cs.tries += 1;
            cs.hedges = 0;
            cs.try_tag = tag;
        }
        cs.outstanding |= tag_bit(tag);
        self.frames[id as usize].state = State::Call(cs);
        if node.guarded && !self.guards_allow(id, node, tag, hedge, cs) {
            return;
        }
        self.m.attempts += 1;
        let replica = if cs.in_failover {
            node.failover.unwrap_or(node.primary)
        } else {
            node.primary
        };
        // The site of the phase: `site_primary` or `site_failover`.
        let phase = usize::from(cs.in_failover);
        let dep = &self.prog.deps[node.dep];
        let generation = frame.generation;
        match &dep.capacity {
            Capacity::Unlimited | Capacity::TokenBucket { .. } => {
                let reply = Reply::Attempt(id);
                let (key, deadline) = (frame.key, frame.deadline);
                let (mut delay, mut out) = if node.network[phase] {
                    self.network_attempt(node, replica, phase, key, tag, deadline, reply)
                } else {
                    self.immediate_attempt(node, replica, phase, key, tag, deadline)
                };
                if out == outcome::HELD {
                    (delay, out) = self.held_attempt(node, replica, key, tag, deadline, reply);
                }
                if out != outcome::SENT {
                    self.push(delay, Kind::AttemptDone, id, generation, out, tag, 0);
                }
            }
            Capacity::OptimisticItem => {
                let decided = self.fault_verdict(node, phase, frame.key, tag, frame.deadline);
                match self.delivery(decided) {
                    Err((delay, out)) => {
                        self.push(delay, Kind::AttemptDone, id, generation, out, tag, 0)
                    }
                    Ok(delivery) if delivery.hold == 0 && !node.network[phase] => {
                        let attempt_key = combine(frame.key, u64::from(tag));
                        let lat = dep
                            .latency
                            .sample_nanos(&mut self.service_rng(node.dep, attempt_key));
                        let version = self.replicas[replica].version;
                        self.tl
                            .in_flight(node.dep, self.now, delivery.added.saturating_add(lat));
                        self.push(
                            delivery.added.saturating_add(lat),
                            Kind::AttemptDone,
                            id,
                            generation,
                            outcome::OCC_CHECK,
                            tag,
                            version,
                        );
                    }
                    Ok(delivery) => {
                        let item = WorkItem {
                            frame: id,
                            generation,
                            tag,
                            deadline: frame.deadline,
                            key: combine(frame.key, u64::from(tag)),
                            added: delivery.added,
                            enqueued: self.now,
                        };
                        self.send(node.routes[phase], item, delivery.hold, false);
                    }
                }
            }
            Capacity::Server { .. } => {
                let decided = self.fault_verdict(node, phase, frame.key, tag, frame.deadline);
                match self.delivery(decided) {
                    Err((delay, out)) => {
                        self.push(delay, Kind::AttemptDone, id, generation, out, tag, 0)
                    }
                    Ok(delivery) => {
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
                            added: delivery.added,
                            enqueued: self.now,
                        };
                        if delivery.hold == 0 && !node.request_hop[phase] {
                            self.server_offer(replica, item);
                        } else {
                            self.send(node.routes[phase], item, delivery.hold, false);
                        }
                    }
                }
            }
        }
        self.arm_attempt_timers(id, node, tag, hedge, cs);
    }

    /// A retry budget's deposit for a new request, and the circuit breaker's verdict: `false`
    /// when an open circuit fails the attempt fast (its result is queued). Only calls with a
    /// breaker, a quota or a budget get here.
    #[inline(always)]
    fn guards_allow(
        &mut self,
        id: u32,
        node: &CallNode,
        tag: u16,
        hedge: bool,
        cs: CallState,
    ) -> bool {
        if let Some(states) = node.budget
            && !hedge
            && cs.tries == 1
        {
            // A request reaches the client: Finagle's budget earns its deposit.
            self.budgets[states[usize::from(cs.in_failover)]].on_request(self.now);
        }
        // Circuit breaker: an open circuit fails fast without calling.
        if let Some((b, cfg)) = &node.breaker {
            // Each replica (primary, failover) has its own breaker.
            if !self.breaker_allows(*b + usize::from(cs.in_failover), cfg) {
                self.m.short_circuited += 1;
                let generation = self.frames[id as usize].generation;
                self.push(
                    0,
                    Kind::AttemptDone,
                    id,
                    generation,
                    outcome::CIRCUIT_OPEN,
                    tag,
                    0,
                );
                return false;
            }
        }
        true
    }

    /// The faults for one attempt: `Ok(added latency)`, or `Err((delay, outcome))` when a rule
    /// fails the attempt, or `Err((0, outcome::HELD))` when a partition holds it (the delivery
    /// is in `self.held`).
    #[inline]
    pub(super) fn fault_verdict(
        &mut self,
        node: &CallNode,
        phase: usize,
        request_key: u64,
        tag: u16,
        deadline: u64,
    ) -> Result<u64, (u64, u8)> {
        if self.plan.is_none() {
            return Ok(0);
        }
        self.evaluate_faults(node, phase, request_key, tag, deadline)
    }

    #[inline(never)]
    pub(super) fn evaluate_faults(
        &mut self,
        node: &CallNode,
        phase: usize,
        request_key: u64,
        tag: u16,
        deadline: u64,
    ) -> Result<u64, (u64, u8)> {
        let Some(plan) = self.plan else {
            return Ok(0);
        };
        let resolved = &self.call_sites[node.id as usize][phase];
        if resolved.is_empty() {
            // No rule can match the site: `evaluate` would find none (and count nothing).
            return Ok(0);
        }
        let site = if phase == 0 {
            &node.site_primary
        } else {
            &node.site_failover
        };
        let call = Call {
            request_key,
            site,
            site_hash: None,
            service: &self.prog.deps[node.dep].name,
            operation: &node.operation,
            route: "",
            attempt: u32::from(tag),
            event: None,
        };
        let elapsed = Duration::from_nanos(self.now);
        let verdict = plan.evaluate_resolved(resolved, &call, elapsed, &self.counter);
        // The caller's deadline, when one is known: the attempt's timeout or what is left of
        // the frame's deadline.
        let budget = match (node.timeout_ns, deadline) {
            (None, u64::MAX) => None,
            (t, d) => Some(t.unwrap_or(u64::MAX).min(d.saturating_sub(self.now))),
        };
        match verdict_effect(&verdict, budget)? {
            Delivery { hold: 0, added } => Ok(added),
            held => {
                self.m.partition_held += 1;
                self.held = held;
                Err((0, outcome::HELD))
            }
        }
    }

    /// An attempt's fault decision as a delivery (held or not) or a failure.
    pub(super) fn delivery(&self, decided: Result<u64, (u64, u8)>) -> Result<Delivery, (u64, u8)> {
        match decided {
            Ok(added) => Ok(Delivery { hold: 0, added }),
            Err((_, outcome::HELD)) => Ok(self.held),
            Err(failed) => Err(failed),
        }
    }

    /// One attempt at an unlimited or token-bucket replica with no hops (or failed by a
    /// fault): (delay, attempt outcome); `outcome::HELD` when a partition holds it (see
    /// `held_attempt`). Inline: it runs once per fan-out branch, and it is what it was
    /// before hops and partitions.
    #[inline(always)]
    pub(super) fn immediate_attempt(
        &mut self,
        node: &CallNode,
        replica: usize,
        phase: usize,
        request_key: u64,
        tag: u16,
        deadline: u64,
    ) -> (u64, u8) {
        let (delay, out, served) =
            self.immediate_attempt_unrecorded(node, replica, phase, request_key, tag, deadline);
        if served {
            self.tl.in_flight(node.dep, self.now, delay);
        }
        (delay, out)
    }

    /// [`Self::immediate_attempt`] without the timeline's record of the dependency's work:
    /// (delay, attempt outcome, whether the dependency served it). A collapsed fan-out adds
    /// its branches' work up itself, once.
    #[inline(always)]
    pub(super) fn immediate_attempt_unrecorded(
        &mut self,
        node: &CallNode,
        replica: usize,
        phase: usize,
        request_key: u64,
        tag: u16,
        deadline: u64,
    ) -> (u64, u8, bool) {
        let added = match self.fault_verdict(node, phase, request_key, tag, deadline) {
            Ok(added) => added,
            Err((delay, out)) => return (delay, out, false),
        };
        let dep = &self.prog.deps[node.dep];
        let attempt_key = combine(request_key, u64::from(tag));
        let lat = dep
            .latency
            .sample_nanos(&mut self.service_rng(node.dep, attempt_key));
        if let Capacity::TokenBucket { rate_per_s, burst } = dep.capacity
            && !self.replicas[replica]
                .bucket
                .take(self.now, rate_per_s, burst)
        {
            self.m.dependency_throttles += 1;
            return (added.saturating_add(lat), outcome::THROTTLE, true);
        }
        (added.saturating_add(lat), outcome::OK, true)
    }

    /// Arms the attempt's timeout and the try's next hedge: after the first attempt of a try,
    /// and after each hedge while the try has sent fewer than `max_extra` hedges. Hedge timers
    /// carry the try's first tag.
    pub(super) fn arm_attempt_timers(
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
    pub(super) fn hedge_fire(&mut self, id: u32, tag: u16) {
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

    pub(super) fn attempt_result(&mut self, id: u32, tag: u16, mut out: u8, version: u32) {
        let State::Call(mut cs) = self.frames[id as usize].state else {
            return;
        };
        if !cs.is_outstanding(tag) {
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
        cs.outstanding &= !tag_bit(tag);
        if node.guarded {
            self.guards_record(id, node, out, cs.in_failover);
        }
        if out == outcome::OK {
            return self.complete(id, outcome::OK);
        }
        cs.last_cause = out;
        self.frames[id as usize].state = State::Call(cs);
        if cs.outstanding != 0 {
            return; // a hedge is still running
        }
        self.after_failure(id, node, cs);
    }

    /// An attempt's result as the call's breaker, retry budget and retry quota see it. Only
    /// calls with one of them get here.
    #[inline(always)]
    fn guards_record(&mut self, id: u32, node: &CallNode, out: u8, in_failover: bool) {
        if let Some((b, cfg)) = &node.breaker
            && out != outcome::CIRCUIT_OPEN
        {
            self.breaker_record(*b + usize::from(in_failover), cfg, out == outcome::OK);
        }
        if let Some(states) = node.budget {
            // gRPC counts successes and the failures its policy would retry.
            let success = out == outcome::OK;
            if success || retryable(&node.retry, out) {
                self.budgets[states[usize::from(in_failover)]].on_attempt(success);
            }
        }
        if out == outcome::OK
            && let Some(buckets) = node.quota
        {
            // SDK standard mode: a success releases the client's held retry permit (its
            // tokens go back), or regenerates 1 token when it holds none.
            let q = buckets[usize::from(in_failover)];
            if let Some(quota) = self.quota_mut(id, node.quota_scope, q) {
                quota.success();
            }
        }
    }

    #[inline]
    pub(super) fn after_failure(&mut self, id: u32, node: &CallNode, mut cs: CallState) {
        let out = cs.last_cause;
        let RetrySchedule {
            max_attempts,
            backoff,
            base_ns: base,
            cap_ns: cap,
        } = node.retry_schedule;
        let policy_allows = u32::from(cs.tries) < max_attempts;
        if policy_allows && retryable(&node.retry, out) {
            // A time-bounded policy needs its wait to decide; counted ones draw it only once
            // the retry is granted.
            let bounded = match node.retry {
                Retry::UntilSuccess { .. } => {
                    Some(self.backoff_sleep(id, node, backoff, base, cap, cs))
                }
                _ => None,
            };
            if bounded.is_none_or(|sleep| self.retry_in_time(node, id, sleep))
                && (!node.guarded || self.guards_grant_retry(id, node, out, cs.in_failover))
            {
                let sleep = match bounded {
                    Some(sleep) => sleep,
                    None => self.backoff_sleep(id, node, backoff, base, cap, cs),
                };
                cs.prev_sleep = sleep;
                let frame = &mut self.frames[id as usize];
                frame.state = State::Call(cs);
                // `timer` inlined by hand: every retry goes through here.
                let generation = frame.generation;
                self.push(sleep, Kind::BackoffDone, id, generation, 0, 0, 0);
                return;
            }
        }
        if node.failover.is_some() && !cs.in_failover && out != outcome::FATAL {
            cs.in_failover = true;
            cs.tries = 0;
            cs.hedges = 0;
            cs.prev_sleep = 0;
            // The failover region's client draws on its own Region's quota; the primary
            // region's client keeps its permit until its next success.
            self.frames[id as usize].state = State::Call(cs);
            self.m.failovers += 1;
            return self.issue_attempt(id, false);
        }
        if node.fallback {
            return self.complete(id, outcome::FALLBACK);
        }
        self.complete(id, outcome::cause(out));
    }

    /// The wait before the call's next retry (keyed by the call and the next attempt, so
    /// drawing it never moves another draw).
    #[inline]
    fn backoff_sleep(
        &self,
        id: u32,
        node: &CallNode,
        backoff: BackoffKind,
        base: u64,
        cap: u64,
        cs: CallState,
    ) -> u64 {
        let n = u32::from(cs.tries); // retry number, 1-based
        let mut rng = self.streams.keyed(
            node.backoff_stream,
            combine(self.frames[id as usize].key, u64::from(cs.next_tag)),
        );
        crate::backoff::delay(backoff, n, base, cap, cs.prev_sleep, rng.unit())
    }

    /// Whether a retry that waits `sleep` first starts within the policy's time bound
    /// (always, for counted policies). An attempt starting at the bound has no time left.
    fn retry_in_time(&self, node: &CallNode, id: u32, sleep: u64) -> bool {
        let Retry::UntilSuccess { within, .. } = node.retry else {
            return true;
        };
        let frame = &self.frames[id as usize];
        let bound = match within {
            RetryWithin::Deadline => frame.deadline,
            RetryWithin::Elapsed(d) => frame.start.saturating_add(nanos(d)).min(frame.deadline),
        };
        self.now.saturating_add(sleep) < bound
    }

    /// Whether the call's retry budget and retry quota (if any) let a retry go, in that
    /// order; a granted retry is paid for (quota tokens taken, budget withdrawal committed).
    #[inline(never)]
    fn guards_grant_retry(&mut self, id: u32, node: &CallNode, out: u8, in_failover: bool) -> bool {
        if !self.budget_allows(node, in_failover)
            || self.take_quota(id, node, out, in_failover).is_none()
        {
            return false;
        }
        if let Some(states) = node.budget {
            self.budgets[states[usize::from(in_failover)]].commit(self.now);
        }
        true
    }

    /// Whether the call's retry budget (if any) lets a retry go; counts a refusal.
    fn budget_allows(&mut self, node: &CallNode, in_failover: bool) -> bool {
        let Some(states) = node.budget else {
            return true;
        };
        let allowed = self.budgets[states[usize::from(in_failover)]].allows(self.now);
        if !allowed {
            self.m.retries_denied_by_budget += 1;
        }
        allowed
    }

    /// SDK standard mode's retry quota: a throttle retry costs 5, any other 10 (FACTS.md).
    /// The bucket is the one of the region the phase is served in (primary or failover).
    /// Returns the tokens taken (0 without a quota), or `None` when the quota refuses.
    pub(super) fn take_quota(
        &mut self,
        id: u32,
        node: &CallNode,
        out: u8,
        in_failover: bool,
    ) -> Option<u8> {
        let Some(buckets) = node.quota else {
            return Some(0);
        };
        let q = buckets[usize::from(in_failover)];
        let taken = self
            .quota_mut(id, node.quota_scope, q)
            .map_or(Some(0), |quota| quota.take(out == outcome::THROTTLE));
        if taken.is_none() {
            self.m.retry_quota_exhausted += 1;
        }
        taken
    }

    pub(super) fn breaker_allows(&mut self, b: usize, cfg: &crate::model::CircuitBreaker) -> bool {
        self.breakers[b].allows(self.now, cfg)
    }

    pub(super) fn breaker_record(
        &mut self,
        b: usize,
        cfg: &crate::model::CircuitBreaker,
        success: bool,
    ) {
        if self.breakers[b].record(self.now, cfg, success) {
            self.m.breaker_opened += 1;
        }
    }
}

/// Whether `retry` retries an attempt that failed with `out`.
fn retryable(retry: &Retry, out: u8) -> bool {
    match retry {
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
    }
}

/// An attempt's bit in `CallState::outstanding`: tags beyond 63 (only `until_success` makes
/// them) reuse the bits of finished tries; see `CallState::is_outstanding`.
#[inline(always)]
pub(super) fn tag_bit(tag: u16) -> u64 {
    1 << (tag & 63)
}

impl CallState {
    /// Whether the attempt `tag` is still awaited. Its bit alone could belong to an attempt
    /// 64 tags later; the 64 most recent tags have distinct bits, and an older attempt was
    /// finished (its bit cleared) before its try was retried, so it is stale.
    #[inline(always)]
    pub(super) fn is_outstanding(&self, tag: u16) -> bool {
        self.outstanding & tag_bit(tag) != 0 && self.next_tag - tag <= 64
    }
}
