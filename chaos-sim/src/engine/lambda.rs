//! The Lambda platform: concurrency limits, scaling, cold starts, handlers, billing, timeouts.

use super::*;

impl<'p> Engine<'p> {
    /// Starts an invocation of `function` for `parent`; `Err` is a throttle (429).
    pub(super) fn start_invocation(
        &mut self,
        parent: u32,
        function: usize,
        key: u64,
        retry: u32,
    ) -> Result<u32, ()> {
        self.start_invocation_for(parent, function, key, retry, false)
    }

    /// `start_invocation`; with `request`, the invocation is an open-loop request's whole
    /// work (no parent: see `State::Invocation::request`).
    pub(super) fn start_invocation_for(
        &mut self,
        parent: u32,
        function: usize,
        key: u64,
        retry: u32,
        request: bool,
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
        let mut reused = None;
        if let Some(&env) = state.warm.last() {
            if now - env.since <= def.keep_alive_ns {
                state.warm.pop();
                state.environments.reused(env, now);
                reused = Some(env);
            } else {
                // The stack is ordered by idle time: the top expired, so all did.
                for env in state.warm.drain(..) {
                    state.environments.expired(env, def.keep_alive_ns);
                    if env.quota_slot != NONE {
                        state.free_quota_slots.push(env.quota_slot);
                    }
                }
            }
        }
        let warm = reused.is_some();
        if !warm {
            let burst = f64::from(def.scaling.burst);
            if !state.scaling.take(now, def.scaling.per_second, burst) {
                self.fmetrics[function].throttles += 1;
                return Err(());
            }
        }
        let quota_slot = match reused {
            Some(env) => env.quota_slot,
            None => state.new_quota_slot(self.prog.env_quotas[function]),
        };
        state.environments.starts_running(now);
        state.active += 1;
        let active = state.active;
        self.tl.concurrency(function, now, active);
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
                env_born: reused.map_or(now, |env| env.born),
                quota_slot,
                request,
            },
        );
        if warm {
            self.begin_handler(id);
        } else {
            fm_cold(&mut self.fmetrics[function]);
            let init = def
                .cold_start
                .sample_nanos(&mut self.streams.keyed(def.cold_stream, inv_key));
            if let State::Invocation { init_ns, .. } = &mut self.frames[id as usize].state {
                *init_ns = init;
            }
            self.timer(init, Kind::ColdStartDone, id, 0);
        }
        Ok(id)
    }

    pub(super) fn begin_handler(&mut self, id: u32) {
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
        let function = *function as usize;
        let def = &self.prog.functions[function];
        frame.deadline = now.saturating_add(def.timeout_ns);
        let key = frame.key;
        self.lane_timer(def.timeout_lane, Kind::InvocationTimeout, id, 0);
        // A site no rule can match passes every call (`evaluate` would count nothing).
        if let Some(plan) = self.plan
            && !self.function_sites[function].is_empty()
        {
            let call = Call {
                request_key: key,
                site: &def.site,
                site_hash: None,
                service: "lambda",
                operation: "invoke",
                route: "",
                attempt: 0,
                event: None,
            };
            let resolved = &self.function_sites[function];
            let elapsed = Duration::from_nanos(now);
            let verdict = plan.evaluate_resolved(resolved, &call, elapsed, &self.counter);
            let added = nanos(verdict.added_latency);
            if let Some(failure) = verdict.failure.as_deref() {
                if matches!(
                    failure,
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
                if let Err((delay, out)) = verdict_effect(&verdict, Some(def.timeout_ns)) {
                    let generation = self.frames[id as usize].generation;
                    self.push(delay, Kind::Deliver, id, generation, out, 0, 0);
                    return;
                }
            }
            if added > 0 {
                self.timer(added, Kind::HandlerStart, id, 0);
                return;
            }
        }
        self.run_handler(id);
    }

    pub(super) fn run_handler(&mut self, id: u32) {
        let f = &self.frames[id as usize];
        let (node, key, deadline) = (f.node, f.key, f.deadline);
        self.start_node(node, id, key, deadline);
    }

    pub(super) fn release_environment(
        &mut self,
        function: usize,
        keep_warm: bool,
        handler_start: u64,
        init_ns: u64,
        env_born: u64,
        quota_slot: u32,
    ) {
        let def = &self.prog.functions[function];
        let billed_ns = self
            .now
            .saturating_sub(handler_start)
            .saturating_add(init_ns);
        let fm = &mut self.fmetrics[function];
        fm.invocations += 1;
        fm.billed_mb_ms = fm
            .billed_mb_ms
            .saturating_add(billed_mb_ms(def.memory_mb, billed_ns));
        let now = self.now;
        let state = &mut self.funcs[function];
        state.environments.stops_running(now);
        state.active -= 1;
        self.tl.concurrency(function, self.now, state.active);
        if keep_warm {
            state.warm.push(IdleEnvironment {
                since: now,
                born: env_born,
                quota_slot,
            });
        } else {
            state.environments.retire(env_born, now);
            if quota_slot != NONE {
                state.free_quota_slots.push(quota_slot);
            }
        }
        self.region_active[def.region] -= 1;
        if matches!(def.limit, Limit::Unreserved) {
            self.region_unreserved_active[def.region] -= 1;
        }
    }

    pub(super) fn finish_invocation(&mut self, id: u32, out: u8) {
        self.end_invocation(id, out, false);
    }

    pub(super) fn invocation_timeout(&mut self, id: u32) {
        self.end_invocation(id, outcome::TIMEOUT, true);
    }

    /// Ends an invocation with `out`: counts it, releases its environment (not reused warm
    /// after a timeout: Lambda restarts the runtime), and completes its frame.
    pub(super) fn end_invocation(&mut self, id: u32, out: u8, timed_out: bool) {
        let Frame {
            start,
            state:
                State::Invocation {
                    function,
                    handler_start,
                    init_ns,
                    env_born,
                    quota_slot,
                    request,
                },
            ..
        } = self.frames[id as usize]
        else {
            return;
        };
        let metrics = &mut self.fmetrics[function as usize];
        if timed_out {
            metrics.timeouts += 1;
        } else if outcome::is_failure(out) {
            metrics.errors += 1;
        }
        self.release_environment(
            function as usize,
            !timed_out,
            handler_start,
            init_ns,
            env_born,
            quota_slot,
        );
        self.complete(id, out);
        if request {
            self.request_ended(start, out);
        }
    }
}

/// MB-milliseconds billed for an invocation of `billed_ns` (1 ms granularity, at least 1 ms),
/// saturating rather than wrapping.
pub(super) fn billed_mb_ms(memory_mb: u64, billed_ns: u64) -> u64 {
    memory_mb.saturating_mul(billed_ns.div_ceil(1_000_000).max(1))
}

#[cfg(test)]
mod tests {
    use super::billed_mb_ms;

    #[test]
    fn billing_rounds_up_to_the_millisecond_and_saturates() {
        assert_eq!(billed_mb_ms(1024, 0), 1024);
        assert_eq!(billed_mb_ms(1024, 1), 1024);
        assert_eq!(billed_mb_ms(1024, 1_000_001), 2048);
        assert_eq!(
            billed_mb_ms(10_240, u64::MAX),
            10_240 * u64::MAX.div_ceil(1_000_000)
        );
        assert_eq!(billed_mb_ms(u64::MAX, 2_000_000), u64::MAX);
    }
}
