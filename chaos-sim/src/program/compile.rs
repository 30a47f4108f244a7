//! The compiler: a scenario's functions, dependencies and queues into flat, index-based
//! definitions and step trees.

use super::checks::{MAX_BRANCHES, check_rate, function_region, max_branches, validate_capacity};
use super::*;

pub(super) struct Compiler<'s> {
    pub(super) scenario: &'s Scenario,
    pub(super) fn_index: BTreeMap<&'s str, usize>,
    pub(super) dep_index: BTreeMap<&'s str, usize>,
    pub(super) queue_index: BTreeMap<&'s str, usize>,
    pub(super) regions: Vec<String>,
    pub(super) nodes: Vec<Node>,
    pub(super) replicas: Vec<ReplicaDef>,
    pub(super) deps: Vec<DepDef>,
    /// `[[network]]` pairs by (caller region, replica region): the entry's index, mirrors of
    /// pairs whose reverse is not listed included.
    pub(super) pairs: BTreeMap<(usize, usize), usize>,
    pub(super) routes: Vec<RouteDef>,
    /// (caller region, replica) -> route.
    pub(super) route_index: BTreeMap<(usize, usize), usize>,
    pub(super) breakers: usize,
    /// (function, retry partition, region) -> retry quota bucket shared by the function's
    /// environments (`quota_scope = "function"`; see `retry_partition.rs`).
    pub(super) quotas: BTreeMap<(usize, usize, usize), usize>,
    /// Retry budget states: (function, dependency, region) and settings, by index; calls
    /// with equal keys and settings share one.
    pub(super) budgets: Vec<((usize, usize, usize), RetryBudget)>,
    /// (function, retry partition, region) -> retry quota index within each of the
    /// function's environments (`quota_scope = "environment"`).
    pub(super) env_quotas: BTreeMap<(usize, usize, usize), usize>,
    /// Invocation edges: (caller, callee, path of the step).
    pub(super) edges: Vec<(usize, usize, String)>,
    pub(super) lanes: Vec<u64>,
}

impl Compiler<'_> {
    pub(super) fn lane(&mut self, delay: u64) -> usize {
        match self.lanes.iter().position(|&d| d == delay) {
            Some(i) => i,
            None => {
                self.lanes.push(delay);
                self.lanes.len() - 1
            }
        }
    }

    pub(super) fn region(&mut self, name: &str) -> usize {
        match self.regions.iter().position(|r| r == name) {
            Some(i) => i,
            None => {
                self.regions.push(name.to_string());
                self.regions.len() - 1
            }
        }
    }
}

impl Compiler<'_> {
    /// Indexes functions, dependencies and queues by name, rejecting duplicates.
    pub(super) fn index_names(&mut self) -> Result<(), ModelError> {
        let scenario = self.scenario;
        for (i, f) in scenario.functions.iter().enumerate() {
            if self.fn_index.insert(&f.name, i).is_some() {
                return Err(ModelError::Duplicate {
                    path: format!("function.{}.name", f.name),
                    kind: "function",
                    name: f.name.clone(),
                });
            }
        }
        for (i, d) in scenario.dependencies.iter().enumerate() {
            if self.dep_index.insert(&d.name, i).is_some() {
                return Err(ModelError::Duplicate {
                    path: format!("dependency.{}.name", d.name),
                    kind: "dependency",
                    name: d.name.clone(),
                });
            }
        }
        for (i, q) in scenario.queues.iter().enumerate() {
            if self.queue_index.insert(&q.name, i).is_some() {
                return Err(ModelError::Duplicate {
                    path: format!("queue.{}.name", q.name),
                    kind: "queue",
                    name: q.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Regions (every function's and every dependency replica's, in definition order) and
    /// dependencies with their replicas.
    pub(super) fn compile_dependencies(&mut self) -> Result<(), ModelError> {
        let scenario = self.scenario;
        for f in &scenario.functions {
            self.region(function_region(f));
        }
        for (i, d) in scenario.dependencies.iter().enumerate() {
            let path = format!("dependency.{}", d.name);
            validate_capacity(&path, &d.capacity)?;
            super::retry_partition::validate_retry_partition(&path, d.retry_partition.as_deref())?;
            let names: Vec<String> = if d.regions.is_empty() {
                vec![DEFAULT_REGION.to_string()]
            } else {
                d.regions.clone()
            };
            let mut replicas = Vec::new();
            for r in &names {
                let region = self.region(r);
                if replicas.iter().any(|&(reg, _)| reg == region) {
                    return Err(invalid(
                        format!("{path}.regions"),
                        format!("region `{r}` is listed twice"),
                    ));
                }
                self.replicas.push(ReplicaDef {
                    dep: i,
                    response_hops: false,
                });
                replicas.push((region, self.replicas.len() - 1));
            }
            self.deps.push(DepDef {
                name: d.name.clone(),
                latency: d.latency.clone(),
                capacity: d.capacity.clone(),
                service_stream: StreamId::named(&format!("service/{}", d.name)),
                replicas,
                hop_streams: [
                    StreamId::named(&format!("hop_request/{}", d.name)),
                    StreamId::named(&format!("hop_response/{}", d.name)),
                ],
            });
        }
        Ok(())
    }

    /// Functions (their handlers compiled to step trees) and the unreserved concurrency pool
    /// of each region.
    pub(super) fn compile_functions(&mut self) -> Result<(Vec<FnDef>, Vec<u32>), ModelError> {
        let scenario = self.scenario;
        let mut functions = Vec::new();
        let account = scenario.account.clone();
        if account.unreserved_minimum > account.concurrency {
            return Err(invalid(
                "account.unreserved_minimum",
                "must not exceed account.concurrency",
            ));
        }
        let mut reserved_by_region: BTreeMap<usize, u64> = BTreeMap::new();
        for (i, f) in scenario.functions.iter().enumerate() {
            let path = format!("function.{}", f.name);
            if !(128..=10240).contains(&f.memory_mb) {
                return Err(invalid(
                    format!("{path}.memory_mb"),
                    format!(
                        "expected 128 to 10240 MB (the Lambda range), found {}",
                        f.memory_mb
                    ),
                ));
            }
            if f.timeout.is_zero() || f.timeout > Duration::from_secs(900) {
                return Err(invalid(
                    format!("{path}.timeout"),
                    "expected a timeout between 1ms and 15m (the Lambda maximum)",
                ));
            }
            if f.async_config.max_retry_attempts > 2 {
                return Err(invalid(
                    format!("{path}.async.max_retry_attempts"),
                    "expected 0, 1 or 2 (the Lambda range)",
                ));
            }
            check_rate(&format!("{path}.scaling.per_second"), f.scaling.per_second)?;
            if f.handler.is_empty() {
                return Err(invalid(
                    format!("{path}.handler"),
                    "a handler needs at least one step, e.g. [{ compute = \"5ms\" }]",
                ));
            }
            let region = self.region(function_region(f));
            if let Some(r) = f.reserved_concurrency {
                *reserved_by_region.entry(region).or_default() += u64::from(r);
            }
            let handler_path = format!("{path}.handler");
            let root = self.sequence(i, &handler_path, &f.handler)?;
            let timeout_lane = self.lane(nanos(f.timeout));
            functions.push(FnDef {
                name: f.name.clone(),
                region,
                memory_mb: u64::from(f.memory_mb),
                timeout_ns: nanos(f.timeout),
                limit: match f.reserved_concurrency {
                    Some(r) => Limit::Reserved(r),
                    None => Limit::Unreserved,
                },
                cold_start: f.cold_start.clone(),
                cold_stream: StreamId::named(&format!("cold_start/{}", f.name)),
                keep_alive_ns: nanos(f.keep_alive),
                scaling: f.scaling,
                price: f.price,
                async_config: f.async_config,
                root,
                site: format!("{}/{}", function_region(f), f.name),
                timeout_lane,
            });
        }
        let mut unreserved_pool = vec![account.concurrency; self.regions.len()];
        for (region, reserved) in &reserved_by_region {
            let limit = u64::from(account.concurrency - account.unreserved_minimum);
            if *reserved > limit {
                return Err(invalid(
                    "function.reserved_concurrency",
                    format!(
                        "functions in {} reserve {reserved}, more than account.concurrency minus \
                         account.unreserved_minimum ({limit})",
                        self.regions[*region]
                    ),
                ));
            }
            unreserved_pool[*region] = account.concurrency - *reserved as u32;
        }
        Ok((functions, unreserved_pool))
    }

    /// Queues and their consumers.
    pub(super) fn compile_queues(&mut self) -> Result<Vec<QueueDef>, ModelError> {
        let scenario = self.scenario;
        let mut queues = Vec::new();
        for q in &scenario.queues {
            let path = format!("queue.{}", q.name);
            let consumer = self.lookup_function(&format!("{path}.consumer"), &q.consumer)?;
            if queues.len() >= usize::from(u16::MAX) {
                return Err(invalid(path, "at most 65535 queues"));
            }
            if !(2..=1000).contains(&q.max_concurrency) {
                return Err(invalid(
                    format!("queue.{}.max_concurrency", q.name),
                    format!(
                        "expected 2 to 1000 (Lambda's MaximumConcurrency for SQS), found {}",
                        q.max_concurrency
                    ),
                ));
            }
            if q.batch_size == 0 || q.max_concurrency == 0 || q.max_receives == 0 {
                return Err(invalid(
                    path,
                    "batch_size, max_concurrency and max_receives must be at least 1",
                ));
            }
            queues.push(QueueDef {
                consumer,
                batch_size: q.batch_size,
                max_concurrency: q.max_concurrency,
                visibility_timeout_ns: nanos(q.visibility_timeout),
                max_receives: q.max_receives,
            });
        }
        Ok(queues)
    }
}

impl<'s> Compiler<'s> {
    pub(super) fn lookup_function(&self, path: &str, name: &str) -> Result<usize, ModelError> {
        self.fn_index
            .get(name)
            .copied()
            .ok_or_else(|| ModelError::Undefined {
                path: path.to_string(),
                kind: "function",
                name: name.to_string(),
                suggestion: closest(name, self.fn_index.keys().copied()),
            })
    }

    pub(super) fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    pub(super) fn sequence(
        &mut self,
        function: usize,
        path: &str,
        steps: &[Step],
    ) -> Result<u32, ModelError> {
        if steps.len() == 1 {
            return self.step(function, &format!("{path}.0"), &steps[0]);
        }
        let mut children = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            children.push(self.step(function, &format!("{path}.{i}"), s)?);
        }
        Ok(self.push(Node::Sequence { children }))
    }

    pub(super) fn step(
        &mut self,
        function: usize,
        path: &str,
        step: &Step,
    ) -> Result<u32, ModelError> {
        let scenario = self.scenario;
        let fname = &scenario.functions[function].name;
        match step {
            Step::Compute(dist) => {
                let stream = StreamId::named(&format!("compute/{fname}/{path}"));
                Ok(self.push(Node::Compute {
                    dist: dist.clone(),
                    stream,
                }))
            }
            Step::Sequence(steps) => {
                if steps.is_empty() {
                    return Err(invalid(
                        format!("{path}.sequence"),
                        "a sequence needs at least one step",
                    ));
                }
                self.sequence(function, &format!("{path}.sequence"), steps)
            }
            Step::FanOut(f) => {
                let p = format!("{path}.fan_out");
                if f.count == 0 || f.count > 100_000 {
                    return Err(invalid(
                        format!("{p}.count"),
                        format!("expected a count between 1 and 100000, found {}", f.count),
                    ));
                }
                let branches = max_branches(step);
                if branches > MAX_BRANCHES {
                    return Err(invalid(
                        format!("{p}.count"),
                        format!(
                            "nested fan-outs put {branches} branches in flight per invocation; \
                             expected at most {MAX_BRANCHES}: lower a count"
                        ),
                    ));
                }
                if let Join::Quorum(k) = f.join
                    && (k == 0 || k > f.count)
                {
                    return Err(invalid(
                        format!("{p}.join"),
                        format!("quorum must be between 1 and count ({})", f.count),
                    ));
                }
                let child = self.step(function, &p, &f.step)?;
                Ok(self.push(Node::FanOut {
                    count: f.count,
                    join: f.join,
                    child,
                }))
            }
            Step::Invoke(inv) => {
                let callee = self.lookup_function(&format!("{path}.invoke"), &inv.function)?;
                self.edges
                    .push((function, callee, format!("{path}.invoke")));
                Ok(self.push(Node::Invoke {
                    function: callee,
                    mode: inv.mode,
                }))
            }
            Step::Publish(queue) => {
                let q = self
                    .queue_index
                    .get(queue.as_str())
                    .copied()
                    .ok_or_else(|| ModelError::Undefined {
                        path: format!("{path}.publish"),
                        kind: "queue",
                        name: queue.clone(),
                        suggestion: closest(queue, self.queue_index.keys().copied()),
                    })?;
                // Resolved to the consumer once queues are compiled.
                self.edges.push((
                    function,
                    scenario.functions.len() + q,
                    format!("{path}.publish"),
                ));
                Ok(self.push(Node::Publish { queue: q }))
            }
            Step::Call(call) => self.call(function, path, call),
        }
    }

    /// Validates and compiles one call step. Over 120 lines because it is one table's checks
    /// in the order a reader meets the fields (timeout, retry, hedge, breaker, failover, quota);
    /// split, each piece would need the same half-dozen values passed in.
    pub(super) fn call(
        &mut self,
        function: usize,
        path: &str,
        call: &CallStep,
    ) -> Result<u32, ModelError> {
        let scenario = self.scenario;
        let f = &scenario.functions[function];
        let dep = self
            .dep_index
            .get(call.dependency.as_str())
            .copied()
            .ok_or_else(|| ModelError::Undefined {
                path: format!("{path}.call"),
                kind: "dependency",
                name: call.dependency.clone(),
                suggestion: closest(&call.dependency, self.dep_index.keys().copied()),
            })?;
        let home = self.region(function_region(f));
        let replicas = self.deps[dep].replicas.clone();
        // Same-region replica if there is one, else the dependency's first region.
        let (primary_region, primary) = replicas
            .iter()
            .copied()
            .find(|(r, _)| *r == home)
            .unwrap_or(replicas[0]);
        let failover = match &call.failover {
            None => None,
            Some(region_name) => {
                let found = replicas
                    .iter()
                    .find(|(r, _)| self.regions[*r] == *region_name)
                    .copied();
                match found {
                    Some((region, replica)) => Some((region_name.clone(), region, replica)),
                    None => {
                        let names: Vec<&str> = replicas
                            .iter()
                            .map(|(r, _)| self.regions[*r].as_str())
                            .collect();
                        return Err(ModelError::Undefined {
                            path: format!("{path}.failover"),
                            kind: "region of this dependency",
                            name: region_name.clone(),
                            suggestion: closest(region_name, names.into_iter()),
                        });
                    }
                }
            }
        };
        if let Some(t) = call.timeout
            && t.is_zero()
        {
            return Err(invalid(
                format!("{path}.timeout"),
                "expected a timeout above 0",
            ));
        }
        let max_attempts = match &call.retry {
            Retry::None => 1,
            Retry::SdkStandard => 3,
            Retry::Backoff { max_attempts, .. } => *max_attempts,
            // Bounded by time; checked below.
            Retry::UntilSuccess { .. } => 1,
        };
        if max_attempts == 0 {
            return Err(invalid(
                format!("{path}.retry.attempts"),
                "expected at least 1 attempt (the first try counts)",
            ));
        }
        let hedges = call.hedge.as_ref().map_or(0, |h| h.max_extra);
        super::resilience::validate_retry(path, &call.retry, call.retry_budget.as_ref(), hedges)?;
        // Every attempt of a counted policy has a bit in a 64-bit mask: attempts x (1 +
        // hedges) per region, twice with failover. `until_success` reuses the bits of
        // finished tries (only the current try's attempts can be outstanding).
        let phases = if call.failover.is_some() { 2 } else { 1 };
        let attempt_bits = u64::from(max_attempts)
            .checked_mul(1 + u64::from(hedges))
            .and_then(|n| n.checked_mul(phases));
        if attempt_bits.is_none_or(|n| n > 63) {
            return Err(invalid(
                format!("{path}.retry.attempts"),
                "attempts x (1 + hedge max_extra) x (2 with failover) must be at most 63",
            ));
        }
        let breaker = match &call.circuit_breaker {
            Some(b) => {
                if b.failure_threshold == 0 || b.half_open_probes == 0 {
                    return Err(invalid(
                        format!("{path}.circuit_breaker"),
                        "failure_threshold and half_open_probes must be at least 1",
                    ));
                }
                // One breaker per replica the call can reach.
                let first = self.breakers;
                self.breakers += if call.failover.is_some() { 2 } else { 1 };
                Some((first, b.clone()))
            }
            None => None,
        };
        let quota = if call.retry == Retry::SdkStandard {
            let scope = call.quota_scope;
            let primary_bucket = self.quota_bucket(path, function, dep, primary_region, scope)?;
            let failover_bucket = match &failover {
                Some((_, region, _)) => self.quota_bucket(path, function, dep, *region, scope)?,
                None => primary_bucket,
            };
            Some([primary_bucket, failover_bucket])
        } else {
            None
        };
        let budget = call.retry_budget.map(|settings| {
            let mut state = |region: usize| {
                let key = (function, dep, region);
                match self
                    .budgets
                    .iter()
                    .position(|(k, b)| *k == key && *b == settings)
                {
                    Some(i) => i,
                    None => {
                        self.budgets.push((key, settings));
                        self.budgets.len() - 1
                    }
                }
            };
            let primary_state = state(primary_region);
            let failover_state = failover
                .as_ref()
                .map_or(primary_state, |&(_, region, _)| state(region));
            [primary_state, failover_state]
        });
        let dep_name = &scenario.dependencies[dep].name;
        let plain = call.timeout.is_none()
            && call.retry == Retry::None
            && call.hedge.is_none()
            && breaker.is_none()
            && !call.fallback
            && failover.is_none()
            && matches!(
                scenario.dependencies[dep].capacity,
                Capacity::Unlimited | Capacity::TokenBucket { .. }
            );
        let primary_route = self.route(dep, home, primary_region, primary);
        let failover_route = failover
            .as_ref()
            .map_or(primary_route, |&(_, region, replica)| {
                self.route(dep, home, region, replica)
            });
        let routes = [primary_route, failover_route];
        let timeout_lane = call.timeout.map_or(0, |t| self.lane(nanos(t)));
        let hedge_lane = call.hedge.as_ref().map_or(0, |h| self.lane(nanos(h.after)));
        let guarded = breaker.is_some() || quota.is_some() || budget.is_some();
        let node = CallNode {
            // Pushed next, below.
            id: self.nodes.len() as u32,
            plain,
            guarded,
            network: routes.map(|r| self.routes[r].has_hops),
            request_hop: routes.map(|r| self.routes[r].hops[0].is_some()),
            routes,
            timeout_lane,
            hedge_lane,
            dep,
            primary,
            site_primary: format!("{}/{}/{}", self.regions[primary_region], f.name, dep_name),
            site_failover: failover
                .as_ref()
                .map(|(r, _, _)| format!("{r}/{}/{}", f.name, dep_name))
                .unwrap_or_default(),
            failover: failover.map(|(_, _, replica)| replica),
            operation: call.operation.clone(),
            timeout_ns: call.timeout.map(nanos),
            retry: call.retry.clone(),
            retry_schedule: RetrySchedule::of(&call.retry),
            hedge: call.hedge.as_ref().map(|h| (nanos(h.after), h.max_extra)),
            breaker,
            quota,
            budget,
            quota_scope: call.quota_scope,
            fallback: call.fallback,
            backoff_stream: StreamId::named(&format!("backoff/{}/{path}", f.name)),
        };
        Ok(self.push(Node::Call(Box::new(node))))
    }

    pub(super) fn entry(&self) -> Result<Entry, ModelError> {
        let load = &self.scenario.load;
        match load.invocation {
            Invocation::Queue => self
                .queue_index
                .get(load.target.as_str())
                .map(|&q| Entry::Queue(q))
                .ok_or_else(|| ModelError::Undefined {
                    path: "load.target".into(),
                    kind: "queue",
                    name: load.target.clone(),
                    suggestion: closest(&load.target, self.queue_index.keys().copied()),
                }),
            mode => Ok(Entry::Function(
                self.lookup_function("load.target", &load.target)?,
                mode,
            )),
        }
    }
}
