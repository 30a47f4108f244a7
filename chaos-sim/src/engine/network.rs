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
//! Hop draws are keyed by the attempt (its request key and tag) and the crossing, on a
//! stream per dependency and direction, so a retry pays the hops again and the control and
//! experiment runs draw the same hops for the same attempt.

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

/// A request crossing the network to `replica`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transit {
    replica: u32,
    /// The attempt; for a plain call `frame`/`generation` are its parent's.
    item: WorkItem,
    plain: bool,
}

impl<'p> Engine<'p> {
    /// A hop's latency for `key` in `direction` (`HOP_REQUEST` or `HOP_RESPONSE`): zero, with
    /// no draw, when the dependency has no hop that way.
    #[inline]
    pub(super) fn hop(&self, dep: usize, direction: usize, key: u64) -> u64 {
        match &self.prog.deps[dep].hops[direction] {
            None => 0,
            Some(dist) => {
                dist.sample_nanos(&mut KeyedRng::new(self.hop_seeds[dep][direction], key))
            }
        }
    }

    /// Sends `item` to `replica`: it arrives after `hold` (a partition) and the request hop.
    pub(super) fn send(&mut self, replica: usize, item: WorkItem, hold: u64, plain: bool) {
        let dep = self.prog.replicas[replica].dep;
        let delay = hold.saturating_add(self.hop(dep, HOP_REQUEST, item.key));
        let transit = Transit {
            replica: replica as u32,
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
        site: &str,
        request_key: u64,
        tag: u16,
        deadline: u64,
        reply: Reply,
    ) -> (u64, u8) {
        let decided = self.fault_verdict(node, site, request_key, tag, deadline);
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
        let to_server = delivery
            .hold
            .saturating_add(self.hop(node.dep, HOP_REQUEST, key));
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
            self.send(replica, item, delivery.hold, plain);
            return (0, outcome::SENT);
        }
        let (at_server, out) = self.bucket_or_unlimited(node.dep, replica, key, delivery.added);
        let back = self.hop(node.dep, HOP_RESPONSE, key);
        (
            to_server.saturating_add(at_server).saturating_add(back),
            out,
        )
    }

    /// Capacity and service at an unlimited or token-bucket replica, now: (time at the
    /// server, outcome).
    fn bucket_or_unlimited(
        &mut self,
        dep: usize,
        replica: usize,
        key: u64,
        added: u64,
    ) -> (u64, u8) {
        let lat = self.prog.deps[dep]
            .latency
            .sample_nanos(&mut self.service_rng(dep, key));
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
        let Some(&Transit {
            replica,
            item,
            plain,
        }) = self.transit.get(index as usize)
        else {
            return;
        };
        self.free_transit.push(index);
        let replica = replica as usize;
        let dep = self.prog.replicas[replica].dep;
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
                // when a worker picks it from the line, as for all waiting work).
                if !waiting && self.replicas[replica].busy < workers {
                    if abandoned == Abandoned::Drop {
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
                    // The read's answer crosses back, the conditional write crosses over.
                    let between = self
                        .hop(dep, HOP_RESPONSE, item.key)
                        .saturating_add(self.hop(dep, HOP_REQUEST, combine(item.key, 1)));
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
                let (at_server, out) = self.bucket_or_unlimited(dep, replica, item.key, item.added);
                if waiting {
                    let delay = at_server.saturating_add(self.hop(dep, HOP_RESPONSE, item.key));
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
        if cs.outstanding & (1 << tag) == 0 {
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
        let back = self.hop(node.dep, HOP_RESPONSE, combine(key, 1));
        self.timer_with(back, Kind::AttemptDone, id, out, tag);
    }

    /// A queueing server finished an attempt: its answer crosses the response hop.
    pub(super) fn server_answer(&mut self, id: u32, tag: u16, replica: usize) {
        let dep = self.prog.replicas[replica].dep;
        if self.prog.deps[dep].hops[HOP_RESPONSE].is_none() {
            return self.attempt_result(id, tag, outcome::OK, 0);
        }
        let key = combine(self.frames[id as usize].key, u64::from(tag));
        let back = self.hop(dep, HOP_RESPONSE, key);
        self.timer_with(back, Kind::AttemptDone, id, outcome::OK, tag);
    }

    fn timer_with(&mut self, delay: u64, kind: Kind, frame: u32, out: u8, tag: u16) {
        let generation = self.frames[frame as usize].generation;
        self.push(delay, kind, frame, generation, out, tag, 0);
    }

    /// Whether a plain call to `dep` can be answered at issue time: not when a token bucket
    /// must see the request after a hop or a partition's hold (fan-outs of such calls run
    /// one event per branch).
    pub(super) fn decided_at_issue(&self, dep: usize) -> bool {
        let def = &self.prog.deps[dep];
        !(matches!(def.capacity, Capacity::TokenBucket { .. })
            && (def.has_hops || self.plan_partitions))
    }
}
