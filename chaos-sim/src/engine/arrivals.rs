//! Arrivals: the open-loop rate schedule, closed-loop clients, requests and their end.

use super::*;

/// A piecewise-linear rate schedule: (start, end, rate at start, rate at end), ns and per s.
pub(super) struct RateSchedule {
    segments: Vec<(u64, u64, f64, f64)>,
    cursor: usize,
}

impl RateSchedule {
    pub(super) fn new(open: &OpenLoop) -> Self {
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
    #[inline]
    pub(super) fn advance(&mut self, t: u64, mut mass: f64) -> Option<u64> {
        while self.cursor + 1 < self.segments.len() && self.segments[self.cursor].1 <= t {
            self.cursor += 1;
        }
        // The last segment (a constant rate from its start on: every constant load): the
        // loop's arithmetic for it, without the loop (its rate at any time is exactly `r0`).
        if let Some(&(start, u64::MAX, r0, _)) = self.segments.get(self.cursor) {
            if r0 > 0.0 {
                let d = mass / r0;
                return Some(t.max(start).saturating_add((d * SECOND as f64) as u64));
            }
            return None;
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

impl<'p> Engine<'p> {
    pub(super) fn start_load(&mut self) {
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
                let stream = StreamId::named("client_start");
                for client in 0..closed.clients {
                    if self.stopped.is_some() {
                        break;
                    }
                    let at = if spread == 0 {
                        0
                    } else {
                        (self.streams.keyed(stream, u64::from(client)).unit() * spread as f64)
                            as u64
                    };
                    self.push(at, Kind::ClientWake, NONE, 0, 0, 0, client);
                }
                self.arrivals_open = false;
            }
        }
    }

    pub(super) fn close_arrivals_if_done(&mut self) {
        if self.horizon == u64::MAX {
            let end = if self.stop_at == u64::MAX {
                self.now
            } else {
                self.stop_at.max(self.now)
            };
            self.horizon = end.saturating_add(nanos(self.scenario.drain));
            self.horizon_key = self
                .horizon
                .checked_add(1)
                .map_or(u128::MAX, |after| u128::from(after) << 64);
            self.pop_bound = self.lane_front.0.min(self.horizon_key);
        }
    }

    pub(super) fn schedule_next_arrival(&mut self) {
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

    pub(super) fn on_arrival(&mut self) {
        self.new_request(NONE);
        if self.arrivals >= self.max_requests {
            self.arrivals_open = false;
            self.close_arrivals_if_done();
        } else {
            self.schedule_next_arrival();
        }
    }

    pub(super) fn new_request(&mut self, client: u32) {
        let arrival = self.arrivals;
        self.arrivals += 1;
        self.in_flight_requests += 1;
        self.tl.arrival(self.now);
        // The request key depends only on the arrival index, so a control run and an
        // experiment run key the same request identically.
        let key = self.streams.request_key(arrival);
        if client == NONE
            && let Entry::Function(f, Invocation::Sync) = self.prog.entry
        {
            // The invocation is the request's frame; a throttled request gets one of its own
            // to be answered through the queue, as below.
            if self.start_invocation_for(NONE, f, key, 0, true).is_err() {
                let root = self.alloc_request(key, arrival, client);
                self.deliver_later(root, outcome::THROTTLE);
            }
            return;
        }
        let root = self.alloc_request(key, arrival, client);
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

    /// A frame of its own for request `arrival` (from `client`, or `NONE` when open-loop),
    /// with no parent, no program node and no deadline.
    #[inline(always)]
    fn alloc_request(&mut self, key: u64, arrival: u64, client: u32) -> u32 {
        self.alloc(
            NONE,
            NONE,
            key,
            u64::MAX,
            State::Request { arrival, client },
        )
    }

    pub(super) fn request_done(&mut self, id: u32, out: u8) {
        let f = self.frames[id as usize];
        let State::Request { client, arrival } = f.state else {
            return;
        };
        self.request_ended(f.start, out);
        self.release(id);
        if client != NONE
            && let LoadShape::Closed(closed) = &self.scenario.load.shape
        {
            let mut rng = self.streams.keyed(
                StreamId::named("think_time"),
                combine(u64::from(client), arrival),
            );
            let think = closed.think_time.sample_nanos(&mut rng);
            self.push(think, Kind::ClientWake, NONE, 0, 0, 0, client);
        }
    }
}

impl Engine<'_> {
    /// A request that arrived at `start` ended now with `out`: its counts and latency.
    pub(super) fn request_ended(&mut self, start: u64, out: u8) {
        self.in_flight_requests -= 1;
        self.m.work_end_ns = self.now;
        match out {
            outcome::OK | outcome::FALLBACK => {
                if out == outcome::OK {
                    self.m.succeeded += 1;
                } else {
                    self.m.fallback_served += 1;
                }
                self.latency.record((self.now - start).max(1));
                self.tl.record_latency(self.now - start);
            }
            outcome::TIMEOUT => self.m.failed_timeout += 1,
            outcome::THROTTLE => self.m.failed_throttle += 1,
            _ => self.m.failed_error += 1,
        }
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
    pub(super) fn constant_rate_spacing_is_exact() {
        let mut s = schedule(4.0, vec![], vec![]);
        assert_eq!(s.advance(0, 1.0), Some(SECOND / 4));
        assert_eq!(s.advance(SECOND, 2.0), Some(SECOND + SECOND / 2));
    }

    #[test]
    pub(super) fn a_ramp_from_zero_integrates_linearly() {
        // Rate 0 until 10 s, then 0 -> 10/s over 10 s: mass 5 by 15 s (area of the triangle
        // 0.5 * 5 s * 5/s), 50 by 20 s.
        let mut s = schedule(0.0, vec![], vec![(10, 10, 10.0)]);
        let at = s.advance(0, 12.5).expect("positive rate ahead");
        assert!((at as f64 / SECOND as f64 - 15.0).abs() < 1e-6, "{at}");
        let at = s.advance(0, 60.0).expect("positive rate ahead");
        assert!((at as f64 / SECOND as f64 - 21.0).abs() < 1e-6, "{at}");
    }

    #[test]
    pub(super) fn a_rate_that_drops_to_zero_for_good_ends_arrivals() {
        let mut s = schedule(1.0, vec![(5, 0.0)], vec![]);
        assert!(s.advance(0, 4.0).is_some());
        assert_eq!(s.advance(0, 6.0), None);
    }
}
