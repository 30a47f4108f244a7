//! The raw form of a scenario file, as TOML deserializes it (spans kept for errors), and its duration fields.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    #[serde(default)]
    pub(super) simulation: RawSimulation,
    #[serde(default)]
    pub(super) account: Option<RawAccount>,
    pub(super) load: Spanned<RawLoad>,
    #[serde(default)]
    pub(super) function: Vec<Spanned<RawFunction>>,
    #[serde(default)]
    pub(super) dependency: Vec<Spanned<RawDependency>>,
    #[serde(default)]
    pub(super) network: Vec<Spanned<RawRegionHops>>,
    #[serde(default)]
    pub(super) queue: Vec<Spanned<RawQueue>>,
    #[serde(default)]
    pub(super) fault: Vec<Spanned<Rule>>,
    #[serde(default)]
    pub(super) hypothesis: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) timeline: Option<RawTimeline>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeline {
    pub(super) interval: Option<Spanned<String>>,
    pub(super) recovery_tolerance: Option<Spanned<toml::Value>>,
    pub(super) recovery_sustain: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSimulation {
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) seed: u64,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) duration: Option<Duration>,
    pub(super) requests: Option<u64>,
    pub(super) max_events: Option<u64>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) drain: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub(super) concurrency: Option<u32>,
    pub(super) unreserved_minimum: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawLoadKind {
    Poisson,
    Constant,
    Closed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    pub(super) target: Spanned<String>,
    #[serde(default = "default_invocation")]
    pub(super) invocation: Invocation,
    #[serde(default = "default_kind")]
    pub(super) kind: RawLoadKind,
    pub(super) rate_per_s: Option<f64>,
    #[serde(default)]
    pub(super) steps: Vec<RawStepChange>,
    #[serde(default)]
    pub(super) ramps: Vec<RawRamp>,
    #[serde(default)]
    pub(super) bursts: Vec<RawBurst>,
    pub(super) clients: Option<u32>,
    pub(super) think_time: Option<LatencyDist>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) start_spread: Option<Duration>,
}

pub(super) fn default_invocation() -> Invocation {
    Invocation::Sync
}
pub(super) fn default_kind() -> RawLoadKind {
    RawLoadKind::Poisson
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStepChange {
    #[serde(deserialize_with = "duration")]
    pub(super) at: Duration,
    pub(super) rate_per_s: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRamp {
    #[serde(deserialize_with = "duration")]
    pub(super) start: Duration,
    #[serde(deserialize_with = "duration")]
    pub(super) duration: Duration,
    pub(super) to_rate_per_s: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBurst {
    #[serde(deserialize_with = "duration")]
    pub(super) at: Duration,
    pub(super) count: u32,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawArch {
    #[serde(rename = "x86_64")]
    X86_64,
    Arm64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScaling {
    pub(super) burst: Option<u32>,
    pub(super) per_second: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAsync {
    pub(super) max_retry_attempts: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) max_event_age: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFunction {
    pub(super) name: Spanned<String>,
    pub(super) region: Option<String>,
    pub(super) memory_mb: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) timeout: Option<Duration>,
    pub(super) reserved_concurrency: Option<u32>,
    pub(super) cold_start: Option<LatencyDist>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) keep_alive: Option<Duration>,
    pub(super) scaling: Option<RawScaling>,
    pub(super) architecture: Option<RawArch>,
    #[serde(rename = "async")]
    pub(super) async_config: Option<RawAsync>,
    pub(super) handler: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDependency {
    pub(super) name: Spanned<String>,
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) regions: Vec<String>,
    pub(super) latency: LatencyDist,
    #[serde(default)]
    pub(super) capacity: Option<Spanned<RawCapacity>>,
    #[serde(default)]
    pub(super) hops: Option<Spanned<RawHops>>,
    pub(super) retry_partition: Option<Spanned<String>>,
}

/// `hops = { request = "2ms", response = { log_normal = { p50 = "2ms", p99 = "9ms" } } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHops {
    pub(super) request: Option<LatencyDist>,
    pub(super) response: Option<LatencyDist>,
}

/// `[[network]]`: `from = "us-east-1"`, `to = "eu-west-1"`, `request = "40ms"`,
/// `response = { log_normal = { p50 = "40ms", p99 = "60ms" } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegionHops {
    pub(super) from: Spanned<String>,
    pub(super) to: Spanned<String>,
    pub(super) request: Option<LatencyDist>,
    pub(super) response: Option<LatencyDist>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    pub(super) name: Spanned<String>,
    pub(super) consumer: Spanned<String>,
    pub(super) batch_size: Option<u32>,
    pub(super) max_concurrency: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) visibility_timeout: Option<Duration>,
    pub(super) max_receives: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawCapacityTable {
    TokenBucket {
        rate_per_s: f64,
        burst: f64,
    },
    /// DynamoDB provisioned capacity: units per second and seconds of burst retained.
    Provisioned {
        units_per_s: f64,
        #[serde(default = "default_burst_seconds")]
        burst_seconds: f64,
    },
    Server {
        workers: u32,
        #[serde(default = "default_discipline")]
        discipline: Discipline,
        #[serde(default = "default_abandoned")]
        abandoned: Abandoned,
        queue_delay: Option<RawQueueDelay>,
    },
    OptimisticItem {},
}

/// `queue_delay = { target = "5ms", interval = "100ms" }` (both optional: Facebook's values).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueueDelay {
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) target: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) interval: Option<Duration>,
}

/// FACTS.md: DynamoDB retains up to 300 s of unused capacity.
pub(super) fn default_burst_seconds() -> f64 {
    300.0
}

pub(super) fn default_discipline() -> Discipline {
    Discipline::Fifo
}

pub(super) fn default_abandoned() -> Abandoned {
    Abandoned::Serve
}

/// `"unlimited"`, `"optimistic_item"` or a capacity table.
pub(super) enum RawCapacity {
    Unlimited,
    OptimisticItem,
    Table(RawCapacityTable),
}

impl<'de> Deserialize<'de> for RawCapacity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCapacity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"unlimited\", \"optimistic_item\", or a table such as \
                     { token_bucket = { rate_per_s = 500, burst = 1000 } }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawCapacity, E> {
                match v {
                    "unlimited" => Ok(RawCapacity::Unlimited),
                    "optimistic_item" => Ok(RawCapacity::OptimisticItem),
                    other => Err(E::unknown_variant(other, &["unlimited", "optimistic_item"])),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawCapacity, A::Error> {
                RawCapacityTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawCapacity::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetryTable {
    pub(super) attempts: Option<u32>,
    pub(super) within: Option<RawWithin>,
    #[serde(default = "default_backoff")]
    pub(super) backoff: BackoffKind,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) base: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) cap: Option<Duration>,
}
/// `within = "deadline"` or a duration such as `"10s"`.
pub(super) struct RawWithin(pub(super) RetryWithin);

impl<'de> Deserialize<'de> for RawWithin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "deadline" {
            return Ok(RawWithin(RetryWithin::Deadline));
        }
        parse_duration_value(&text)
            .map(|d| RawWithin(RetryWithin::Elapsed(d)))
            .map_err(|e| {
                de::Error::custom(format!(
                    "{e}; `within` takes \"deadline\" (the caller's) or a time such as \"10s\""
                ))
            })
    }
}

/// `retry_budget = { max_tokens = 10, token_ratio = 0.1 }` (gRPC) or
/// `retry_budget = { percent = "20%", min_retries_per_s = 10, ttl = "10s" }` (Finagle).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetryBudget {
    pub(super) max_tokens: Option<f64>,
    pub(super) token_ratio: Option<f64>,
    pub(super) percent: Option<RawPercent>,
    pub(super) min_retries_per_s: Option<f64>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) ttl: Option<Duration>,
}

/// A percentage: `"20%"` or the number `20`; kept as a fraction.
pub(super) struct RawPercent(pub(super) f64);

impl<'de> Deserialize<'de> for RawPercent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawPercent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage such as \"20%\" or 20")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPercent, E> {
                v.trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .map(|p| RawPercent(p / 100.0))
                    .ok_or_else(|| {
                        E::custom(format!(
                            "expected a percentage such as \"20%\", found \"{v}\""
                        ))
                    })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawPercent, E> {
                Ok(RawPercent(v / 100.0))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPercent, E> {
                Ok(RawPercent(v as f64 / 100.0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPercent, E> {
                Ok(RawPercent(v as f64 / 100.0))
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) fn default_backoff() -> BackoffKind {
    BackoffKind::FullJitter
}

pub(super) enum RawRetry {
    None,
    SdkStandard,
    Table(RawRetryTable),
}

impl<'de> Deserialize<'de> for RawRetry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRetry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"none\", \"sdk_standard\", or a table such as \
                     { attempts = 3, backoff = \"full_jitter\", base = \"25ms\", cap = \"1s\" } \
                     or { within = \"10s\", backoff = \"immediate\" }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRetry, E> {
                match v {
                    "none" => Ok(RawRetry::None),
                    "sdk_standard" => Ok(RawRetry::SdkStandard),
                    other => Err(E::unknown_variant(other, &["none", "sdk_standard"])),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRetry, A::Error> {
                RawRetryTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawRetry::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHedgeTable {
    #[serde(deserialize_with = "duration")]
    pub(super) after: Duration,
    #[serde(default = "one")]
    pub(super) max_extra: u32,
}
pub(super) fn one() -> u32 {
    1
}

/// `"20ms"` or `{ after = "20ms", max_extra = 1 }`.
pub(super) struct RawHedge(pub(super) RawHedgeTable);

impl<'de> Deserialize<'de> for RawHedge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHedge;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a delay like \"20ms\" or { after = \"20ms\", max_extra = 1 }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHedge, E> {
                let after = parse_duration_value(v).map_err(E::custom)?;
                Ok(RawHedge(RawHedgeTable {
                    after,
                    max_extra: 1,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHedge, A::Error> {
                RawHedgeTable::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawHedge)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub(super) failure_threshold: u32,
    #[serde(deserialize_with = "duration")]
    pub(super) open_for: Duration,
    #[serde(default = "one")]
    pub(super) half_open_probes: u32,
}

/// One handler step: exactly one of the kind keys, plus options for that kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) compute: Option<LatencyDist>,
    pub(super) call: Option<Spanned<String>>,
    pub(super) fan_out: Option<Box<Spanned<RawStep>>>,
    pub(super) invoke: Option<Spanned<String>>,
    pub(super) publish: Option<Spanned<String>>,
    pub(super) sequence: Option<Vec<Spanned<RawStep>>>,
    // fan-out options (inside `fan_out = { ... }`)
    pub(super) count: Option<u32>,
    pub(super) join: Option<Join>,
    // invoke options
    pub(super) mode: Option<InvokeMode>,
    // call options
    pub(super) operation: Option<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) timeout: Option<Duration>,
    pub(super) retry: Option<RawRetry>,
    pub(super) retry_budget: Option<Spanned<RawRetryBudget>>,
    pub(super) hedge: Option<RawHedge>,
    pub(super) circuit_breaker: Option<RawBreaker>,
    pub(super) fallback: Option<bool>,
    pub(super) failover: Option<Spanned<String>>,
    pub(super) quota_scope: Option<QuotaScope>,
}

// ------------------------------------------------------------------ durations

pub(super) fn parse_duration_value(text: &str) -> Result<Duration, String> {
    // chaos-core's message names the input, the limit and the expected form.
    crate::core_api::parse_duration(text).map_err(|e| e.to_string())
}

pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration_value(&text).map_err(de::Error::custom)
}

pub(super) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}
