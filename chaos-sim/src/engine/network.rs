//! The network between callers and dependencies: request and response hops, and calls a
//! partition holds until its window ends.
//!
//! Without hops or a partition an attempt reaches its dependency when it is issued, and the
//! engine decides capacity at once (the paths in `calls.rs`, unchanged). With them, what a
//! dependency sees happens at *server time*: a request in transit is an [`Transit`] in a slab
//! and a `Kind::Arrive` event when it lands, which takes the token, reads the version or
//! joins the server's line then, whether or not its caller is still waiting (a caller whose
//! timeout ended first has given up; the server still gets the request: `late_deliveries`).
//! Answers cross the response hop back as an `AttemptDone` (or `Deliver`) event.
//!
//! Which hops an attempt crosses is its route's (caller region to replica, resolved at
//! compile time: the dependency's own hops, else the region pair's). Hop draws are keyed by
//! the attempt (its request key and tag) and the crossing, on a stream per dependency and
//! direction, so a retry pays the hops again and the control and experiment runs draw the
//! same hops for the same attempt.

use super::*;

/// Index of the request hop in `DepDef::hops`.
pub(super) const HOP_REQUEST: usize = 0;
/// Index of the response hop in `DepDef::hops`.
pub(super) const HOP_RESPONSE: usize = 1;

/// Who waits for an attempt's answer.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reply {
    /// The call frame that made the attempt (`AttemptDone`).
    Attempt(u32),
    /// A plain call's parent step (`Deliver`, the outcome mapped to its cause); `NONE` for
    /// no one.
    Plain(u32),
}

/// A request crossing the network on `route` (to its replica).
#[derive(Clone, Copy, Debug)]
pub(super) struct Transit {
    route: u32,
    /// The attempt; for a plain call `frame`/`generation` are its parent's.
    item: WorkItem,
    plain: bool,
}

impl<'p> Engine<'p> {
    /// A hop's latency on `route` for `key` in `direction` (`HOP_REQUEST` or
    /// `HOP_RESPONSE`): zero, with no draw, when the route has no hop that way.
    #[inline]
    pub(super) fn hop(&self, route: usize, direction: usize, key: u64) -> u64 {
        match &self.prog.routes[route].hops[direction] {
            None => 0,
            Some(dist) => {
                dist.sample_nanos(&mut KeyedRng::new(self.hop_seeds[route][direction], key))
            }
        }
    }

    /// Sends `item` on `route`: it arrives at the route's replica after `hold` (a partition)
    /// and the request hop.
    pub(super) fn send(&mut self, route: usize, item: WorkItem, hold: u64, plain: bool) {
        let delay = hold.saturating_add(self.hop(route, HOP_REQUEST, item.key));
        let transit = Transit {
            route: route as u32,
            item,
            plain,
        };
        let index = match self.free_transit.pop() {
            Some(index) => {
                self.transit[index as usize] = transit;
                index
            }
            None => {
                self.transit.push(transit);
                (self.transit.len() - 1) as u32
            }
        };
        self.push(
            delay,
            Kind::Arrive,
            item.frame,
            item.generation,
            0,
            item.tag,
            index,
        );
    }

    /// An attempt at an unlimited or token-bucket dependency behind hops: its faults, then
    /// [`attempt_over_network`](Self::attempt_over_network).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn network_attempt(
        &mut self,
        node: &CallNode,
        replica: usize,
        phase: usize,
        request_key: u64,
        tag: u16,
        deadline: u64,
        reply: Reply,
    ) -> (u64, u8) {
        let decided = self.fault_verdict(node, phase, request_key, tag, deadline);
        match self.delivery(decided) {
            Ok(delivery) => self.attempt_over_network(
                node,
                replica,
                request_key,
                tag,
                deadline,
                delivery,
                reply,
            ),
            Err(failed) => failed,
        }
    }

    /// An attempt at an unlimited or token-bucket dependency that a partition holds
    /// (`immediate_attempt` answered `outcome::HELD`).
    #[cold]
    #[inline(never)]
    pub(super) fn held_attempt(
        &mut self,
        node: &CallNode,
        replica: usize,
        request_key: u64,
        tag: u16,
        deadline: u64,
        reply: Reply,
    ) -> (u64, u8) {
        let delivery = self.held;
        self.attempt_over_network(node, replica, request_key, tag, deadline, delivery, reply)
    }

    /// An attempt at an unlimited or token-bucket dependency behind hops or a partition.
    /// Unlimited: answered after hold, hops, added latency and service time, all known now.
    /// Token bucket: the token is taken when the request arrives, so a request that has to
    /// cross the network is sent (`outcome::SENT`).
    #[allow(clippy::too_many_arguments)]
    fn attempt_over_network(
        &mut self,
        node: &CallNode,
        replica: usize,
        request_key: u64,
        tag: u16,
        deadline: u64,
        delivery: Delivery,
        reply: Reply,
    ) -> (u64, u8) {
        let key = combine(request_key, u64::from(tag));
        let route = node.route_to(replica);
        let to_server = delivery
            .hold
            .saturating_add(self.hop(route, HOP_REQUEST, key));
        if to_server > 0
            && matches!(
                self.prog.deps[node.dep].capacity,
                Capacity::TokenBucket { .. }
            )
        {
            let (frame, plain) = match reply {
                Reply::Attempt(id) => (id, false),
                Reply::Plain(parent) => (parent, true),
            };
            let generation = if frame == NONE {
                0
            } else {
                self.frames[frame as usize].generation
            };
            let item = WorkItem {
                frame,
                generation,
                tag,
                deadline,
                key,
                added: delivery.added,
                enqueued: self.now,
            };
            self.send(route, item, delivery.hold, plain);
            return (0, outcome::SENT);
        }
        let (at_server, out) =
            self.bucket_or_unlimited(node.dep, replica, key, delivery.added, to_server);
        let back = self.hop(route, HOP_RESPONSE, key);
        (
            to_server.saturating_add(at_server).saturating_add(back),
            out,
        )
    }

    /// Capacity and service at an unlimited or token-bucket replica (decided now, the
    /// request landing `arrives_in` from now): (time at the server, outcome). The timeline
    /// counts the dependency's work from when the request lands.
    fn bucket_or_unlimited(
        &mut self,
        dep: usize,
        replica: usize,
        key: u64,
        added: u64,
        arrives_in: u64,
    ) -> (u64, u8) {
        let lat = self.prog.deps[dep]
            .latency
            .sample_nanos(&mut self.service_rng(dep, key));
        self.tl
            .in_flight_after(dep, self.now, arrives_in, added.saturating_add(lat));
        let out = match self.prog.deps[dep].capacity {
            Capacity::TokenBucket { rate_per_s, burst }
                if !self.replicas[replica]
                    .bucket
                    .take(self.now, rate_per_s, burst) =>
            {
                self.m.dependency_throttles += 1;
                outcome::THROTTLE
            }
            _ => outcome::OK,
        };
        (added.saturating_add(lat), out)
    }

    /// A request lands at its dependency (`Kind::Arrive`): the server acts on it now, even if
    /// its caller has given up.
    pub(super) fn arrive(&mut self, index: u32) {
        let Some(&Transit { route, item, plain }) = self.transit.get(index as usize) else {
            return;
        };
        self.free_transit.push(index);
        let route = route as usize;
        let (dep, replica) = (self.prog.routes[route].dep, self.prog.routes[route].replica);
        let waiting = if plain {
            item.frame != NONE && self.valid(item.frame, item.generation)
        } else {
            !self.work_abandoned(&item)
        };
        if !waiting {
            self.m.late_deliveries += 1;
        }
        match self.prog.deps[dep].capacity {
            Capacity::Server {
                workers, abandoned, ..
            } => {
                // Work whose caller left lands like any other; the server's policy for
                // abandoned work applies now if a worker would take it at once (otherwise
                // when a worker picks it from the line, as for all waiting work): `drop` and
                // `drop_late` both drop it, as `server_next` does.
                if !waiting && self.replicas[replica].busy < workers {
                    if abandoned != Abandoned::Serve {
                        self.m.dropped_work += 1;
                        return;
                    }
                    self.m.abandoned_work_served += 1;
                }
                self.server_offer(replica, item);
            }
            Capacity::OptimisticItem => {
                // A caller that gave up reads nothing it would write back.
                if waiting {
                    let version = self.replicas[replica].version;
                    let lat = self.prog.deps[dep]
                        .latency
                        .sample_nanos(&mut self.service_rng(dep, item.key));
                    // The read is the dependency's work, as without hops.
                    self.tl
                        .in_flight(dep, self.now, item.added.saturating_add(lat));
                    // The read's answer crosses back, the conditional write crosses over.
                    let between = self
                        .hop(route, HOP_RESPONSE, item.key)
                        .saturating_add(self.hop(route, HOP_REQUEST, combine(item.key, 1)));
                    self.push(
                        item.added.saturating_add(lat).saturating_add(between),
                        Kind::OccWrite,
                        item.frame,
                        item.generation,
                        0,
                        item.tag,
                        version,
                    );
                }
            }
            Capacity::Unlimited | Capacity::TokenBucket { .. } => {
                let (at_server, out) =
                    self.bucket_or_unlimited(dep, replica, item.key, item.added, 0);
                if waiting {
                    let delay = at_server.saturating_add(self.hop(route, HOP_RESPONSE, item.key));
                    if plain {
                        let out = if outcome::is_failure(out) {
                            outcome::cause(out)
                        } else {
                            out
                        };
                        self.push(delay, Kind::Deliver, item.frame, item.generation, out, 0, 0);
                    } else {
                        self.push(
                            delay,
                            Kind::AttemptDone,
                            item.frame,
                            item.generation,
                            out,
                            item.tag,
                            0,
                        );
                    }
                }
            }
        }
    }

    /// An optimistic item's conditional write lands (`Kind::OccWrite`) with the version its
    /// read saw: it succeeds if no write landed since, and its answer crosses back. A caller
    /// that gave up before the write landed is taken not to have sent it.
    pub(super) fn occ_write(&mut self, id: u32, tag: u16, version: u32) {
        let State::Call(cs) = self.frames[id as usize].state else {
            return;
        };
        if !cs.is_outstanding(tag) {
            return;
        }
        let node = self.call_node(id);
        let replica = if cs.in_failover {
            node.failover.unwrap_or(node.primary)
        } else {
            node.primary
        };
        let r = &mut self.replicas[replica];
        let out = if r.version == version {
            r.version = r.version.wrapping_add(1);
            outcome::OK
        } else {
            self.m.conflicts += 1;
            outcome::CONFLICT
        };
        let key = combine(self.frames[id as usize].key, u64::from(tag));
        let route = node.routes[usize::from(cs.in_failover)];
        let back = self.hop(route, HOP_RESPONSE, combine(key, 1));
        self.timer_with(back, Kind::AttemptDone, id, out, tag);
    }

    /// A queueing server finished an attempt: its answer crosses the response hop.
    pub(super) fn server_answer(&mut self, id: u32, tag: u16, replica: usize) {
        if !self.prog.replicas[replica].response_hops {
            return self.attempt_result(id, tag, outcome::OK, 0);
        }
        let route = self.call_node(id).route_to(replica);
        if self.prog.routes[route].hops[HOP_RESPONSE].is_none() {
            return self.attempt_result(id, tag, outcome::OK, 0);
        }
        let key = combine(self.frames[id as usize].key, u64::from(tag));
        let back = self.hop(route, HOP_RESPONSE, key);
        self.timer_with(back, Kind::AttemptDone, id, outcome::OK, tag);
    }

    fn timer_with(&mut self, delay: u64, kind: Kind, frame: u32, out: u8, tag: u16) {
        let generation = self.frames[frame as usize].generation;
        self.push(delay, kind, frame, generation, out, tag, 0);
    }

    /// Whether a plain call can be answered at issue time: not when a token bucket must see
    /// the request after a hop or a partition's hold (fan-outs of such calls run one event
    /// per branch).
    pub(super) fn decided_at_issue(&self, call: &CallNode) -> bool {
        !(matches!(
            self.prog.deps[call.dep].capacity,
            Capacity::TokenBucket { .. }
        ) && (call.network[0] || self.plan_partitions))
    }
}
