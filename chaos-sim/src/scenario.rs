//! Scenario files (TOML).
//!
//! A scenario file describes the system, the load, the faults and the steady-state
//! hypothesis. Durations are strings with units (`"250ms"`, `"2m"`, `"1h 30m"`); latency
//! distributions and fault rules use chaos-core's forms verbatim. Every table rejects unknown
//! fields; every error names file, line, column and field, and suggests a close name.
//!
//! ```toml
//! [simulation]
//! name = "checkout"
//! seed = 42
//! duration = "10m"          # or requests = 1000000; arrivals stop at the first reached
//! drain = "15m"             # time allowed to finish in-flight work afterwards
//!
//! [account]                 # per region; FACTS.md defaults
//! concurrency = 1000
//! unreserved_minimum = 100
//!
//! [load]
//! target = "checkout"       # a function, or a queue with invocation = "queue"
//! invocation = "sync"       # sync | async | queue
//! kind = "poisson"          # poisson | constant | closed
//! rate_per_s = 200
//! steps = [{ at = "2m", rate_per_s = 400 }]
//! ramps = [{ start = "5m", duration = "1m", to_rate_per_s = 100 }]
//! bursts = [{ at = "30s", count = 500 }]
//! # closed loop: kind = "closed", clients = 500, think_time = "1s", start_spread = "0s"
//!
//! [[function]]
//! name = "checkout"
//! region = "eu-west-1"
//! memory_mb = 1024
//! timeout = "6s"
//! reserved_concurrency = 100
//! cold_start = { log_normal = { p50 = "250ms", p99 = "900ms" } }
//! keep_alive = "10m"
//! scaling = { burst = 1000, per_second = 100 }
//! architecture = "arm64"    # x86_64 | arm64 (price)
//! async = { max_retry_attempts = 2, max_event_age = "6h" }
//! handler = [
//!   { compute = "2ms" },
//!   { fan_out = { call = "inventory", count = 20, join = "all", timeout = "2s" } },
//!   { call = "orders", operation = "PutItem", timeout = "1s",
//!     retry = { attempts = 3, backoff = "full_jitter", base = "25ms", cap = "1s" } },
//!   { invoke = "audit", mode = "async" },
//!   { publish = "emails" },
//! ]
//!
//! [[dependency]]
//! name = "orders"
//! regions = ["eu-west-1", "us-east-1"]
//! latency = { log_normal = { p50 = "6ms", p99 = "25ms" } }
//! capacity = { token_bucket = { rate_per_s = 500, burst = 150000 } }
//! # or { server = { workers = 8, discipline = "fifo", abandoned = "serve" } }
//! # or "optimistic_item"
//!
//! [[queue]]
//! name = "emails"
//! consumer = "mailer"
//! batch_size = 10
//!
//! [[fault]]                  # a chaos-core rule, verbatim
//! fault = { error = "throttle" }
//! match = { site = "eu-west-1/checkout/orders" }
//! probability = 0.2
//! window = { start = "2m", duration = "3m" }
//!
//! [hypothesis]
//! success_rate = ">= 99.9%"
//! latency_p99 = "<= 800ms"
//! throttle_rate = "<= 1%"
//! cost_usd = "<= 5"
//! ```
//!
//! Call options: `timeout`, `retry` (`"none"`, `"sdk_standard"`, or a table with `attempts`,
//! `backoff` = none | exponential | full_jitter | equal_jitter | decorrelated_jitter, `base`,
//! `cap`), `hedge = { after = "20ms", max_extra = 1 }` (or `hedge = "20ms"`),
//! `circuit_breaker = { failure_threshold = 5, open_for = "10s", half_open_probes = 1 }`,
//! `fallback = true`, `failover = "us-west-2"`. Joins: `"all"`, `"any"`, `{ quorum = 3 }`.
//!
//! Fault sites: a dependency call is `region/function/dependency` (service = the dependency,
//! operation = the call's `operation`, `"call"` by default; region = where the call is
//! served); a function invocation is `region/function` (service `lambda`, operation
//! `invoke`). So `match = { site = "eu-west-1/*" }` takes a whole region out.

use crate::core_api::{LatencyDist, Rule};
use crate::model::*;
use crate::program::closest;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

/// A scenario file that cannot be used: where and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    /// The file (as given).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field, as a dotted path.
    pub field: String,
    /// What is wrong, what was expected, and the fix.
    pub message: String,
    /// The offending source line with a caret under the column.
    pub snippet: Option<String>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "`{}`: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

/// Reads and parses a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: file.clone(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the file: {e}"),
        snippet: None,
    })?;
    parse(&text, &file)
}

/// Parses scenario text; `file` is only used in error messages.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
    let mut spans = Spans::default();
    let scenario = convert(raw, &mut spans).map_err(|e| spans.error(text, file, e))?;
    crate::program::Program::compile(&scenario).map_err(|e| {
        let message = e.to_string();
        let message = message
            .split_once("`: ")
            .map_or(message.clone(), |(_, m)| m.to_string());
        spans.error(
            text,
            file,
            Located {
                path: e.path().to_string(),
                message,
            },
        )
    })?;
    Ok(scenario)
}

// ------------------------------------------------------------------ error location

/// An error with a field path, before it is given a position.
struct Located {
    path: String,
    message: String,
}

#[derive(Default)]
struct Spans {
    by_path: BTreeMap<String, Range<usize>>,
}

impl Spans {
    fn record(&mut self, path: impl Into<String>, span: Range<usize>) {
        self.by_path.entry(path.into()).or_insert(span);
    }

    fn error(&self, text: &str, file: &str, e: Located) -> ScenarioError {
        // The recorded span of the path, else of its closest recorded ancestor.
        let mut path = e.path.as_str();
        let offset = loop {
            if let Some(span) = self.by_path.get(path) {
                break Some(span.start);
            }
            match path.rsplit_once('.') {
                Some((parent, _)) => path = parent,
                None => break None,
            }
        };
        let offset = offset.unwrap_or_else(|| section_offset(text, &e.path));
        positioned(text, file, offset, e.path, e.message)
    }
}

/// Offset of the section a path starts with (`[load]`, `[[function]]`), else 0.
fn section_offset(text: &str, path: &str) -> usize {
    let section = path.split('.').next().unwrap_or("");
    for pattern in [format!("[{section}]"), format!("[[{section}]]")] {
        if let Some(i) = text.find(&pattern) {
            return i;
        }
    }
    0
}

fn line_col(text: &str, offset: usize) -> (usize, usize, &str) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    (line, column, &text[line_start..line_end])
}

fn positioned(
    text: &str,
    file: &str,
    offset: usize,
    field: String,
    message: String,
) -> ScenarioError {
    let (line, column, source) = line_col(text, offset);
    let gutter = line.to_string().len();
    let snippet = format!(
        "{:gutter$} |\n{line} | {source}\n{:gutter$} | {:>column$}",
        "", "", "^"
    );
    ScenarioError {
        file: file.to_string(),
        line,
        column,
        field,
        message,
        snippet: Some(snippet),
    }
}

/// The dotted field path at `offset`: the enclosing `[table]` plus the nearest `key =`.
fn field_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let mut section = String::new();
    for line in before.lines().rev() {
        let t = line.trim_start();
        if t.starts_with('[') {
            section = t
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            break;
        }
    }
    // The span may sit on the key itself (unknown field) or on the value.
    let after = &text[offset..];
    let word: String = after
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let key = if !word.is_empty() && after[word.len()..].trim_start().starts_with('=') {
        Some(word)
    } else {
        before.rfind('=').map(|eq| {
            let k: String = before[..eq]
                .trim_end()
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            k.chars().rev().collect::<String>()
        })
    };
    match key {
        Some(k) if !k.is_empty() && !section.is_empty() => format!("{section}.{k}"),
        Some(k) if !k.is_empty() => k,
        _ => section,
    }
}

fn toml_error(text: &str, file: &str, e: &toml::de::Error) -> ScenarioError {
    let offset = e.span().map_or(0, |s| s.start);
    let mut message = e.message().trim().to_string();
    if let Some(s) = suggest_from_message(&message) {
        message.push_str(&format!("; did you mean `{s}`?"));
    }
    positioned(text, file, offset, field_at(text, offset), message)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and variants), the closest
/// expected name.
fn suggest_from_message(message: &str) -> Option<String> {
    let rest = message
        .split_once("unknown field ")
        .or_else(|| message.split_once("unknown variant "))?
        .1;
    let names: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let (found, expected) = names.split_first()?;
    closest(found, expected.iter().copied())
}

// ------------------------------------------------------------------ raw forms

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    simulation: RawSimulation,
    #[serde(default)]
    account: Option<RawAccount>,
    load: Spanned<RawLoad>,
    #[serde(default)]
    function: Vec<Spanned<RawFunction>>,
    #[serde(default)]
    dependency: Vec<Spanned<RawDependency>>,
    #[serde(default)]
    queue: Vec<Spanned<RawQueue>>,
    #[serde(default)]
    fault: Vec<Rule>,
    #[serde(default)]
    hypothesis: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSimulation {
    name: Option<String>,
    #[serde(default)]
    seed: u64,
    #[serde(default, deserialize_with = "opt_duration")]
    duration: Option<Duration>,
    requests: Option<u64>,
    #[serde(default, deserialize_with = "opt_duration")]
    drain: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    concurrency: Option<u32>,
    unreserved_minimum: Option<u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawLoadKind {
    Poisson,
    Constant,
    Closed,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawInvocation {
    Sync,
    Async,
    Queue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    target: Spanned<String>,
    #[serde(default = "default_invocation")]
    invocation: RawInvocation,
    #[serde(default = "default_kind")]
    kind: RawLoadKind,
    rate_per_s: Option<f64>,
    #[serde(default)]
    steps: Vec<RawStepChange>,
    #[serde(default)]
    ramps: Vec<RawRamp>,
    #[serde(default)]
    bursts: Vec<RawBurst>,
    clients: Option<u32>,
    think_time: Option<LatencyDist>,
    #[serde(default, deserialize_with = "opt_duration")]
    start_spread: Option<Duration>,
}

fn default_invocation() -> RawInvocation {
    RawInvocation::Sync
}
fn default_kind() -> RawLoadKind {
    RawLoadKind::Poisson
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStepChange {
    #[serde(deserialize_with = "duration")]
    at: Duration,
    rate_per_s: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRamp {
    #[serde(deserialize_with = "duration")]
    start: Duration,
    #[serde(deserialize_with = "duration")]
    duration: Duration,
    to_rate_per_s: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurst {
    #[serde(deserialize_with = "duration")]
    at: Duration,
    count: u32,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawArch {
    #[serde(rename = "x86_64")]
    X86_64,
    Arm64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScaling {
    burst: Option<u32>,
    per_second: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsync {
    max_retry_attempts: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    max_event_age: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: Spanned<String>,
    region: Option<String>,
    memory_mb: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    timeout: Option<Duration>,
    reserved_concurrency: Option<u32>,
    cold_start: Option<LatencyDist>,
    #[serde(default, deserialize_with = "opt_duration")]
    keep_alive: Option<Duration>,
    scaling: Option<RawScaling>,
    architecture: Option<RawArch>,
    #[serde(rename = "async")]
    async_config: Option<RawAsync>,
    handler: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    name: Spanned<String>,
    region: Option<String>,
    #[serde(default)]
    regions: Vec<String>,
    latency: LatencyDist,
    #[serde(default)]
    capacity: Option<RawCapacity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Spanned<String>,
    consumer: Spanned<String>,
    batch_size: Option<u32>,
    max_concurrency: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    visibility_timeout: Option<Duration>,
    max_receives: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawCapacityTable {
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
        discipline: RawDiscipline,
        #[serde(default = "default_abandoned")]
        abandoned: RawAbandoned,
    },
    OptimisticItem {},
}

/// FACTS.md: DynamoDB retains up to 300 s of unused capacity.
fn default_burst_seconds() -> f64 {
    300.0
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawDiscipline {
    Fifo,
    Lifo,
}
fn default_discipline() -> RawDiscipline {
    RawDiscipline::Fifo
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawAbandoned {
    Serve,
    Drop,
}
fn default_abandoned() -> RawAbandoned {
    RawAbandoned::Serve
}

/// `"unlimited"`, `"optimistic_item"` or a capacity table.
enum RawCapacity {
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

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawJoin {
    All,
    Any,
    Quorum(u32),
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawBackoff {
    None,
    Exponential,
    FullJitter,
    EqualJitter,
    DecorrelatedJitter,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetryTable {
    attempts: u32,
    #[serde(default = "default_backoff")]
    backoff: RawBackoff,
    #[serde(default, deserialize_with = "opt_duration")]
    base: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    cap: Option<Duration>,
}
fn default_backoff() -> RawBackoff {
    RawBackoff::FullJitter
}

enum RawRetry {
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
                     { attempts = 3, backoff = \"full_jitter\", base = \"25ms\", cap = \"1s\" }",
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
struct RawHedgeTable {
    #[serde(deserialize_with = "duration")]
    after: Duration,
    #[serde(default = "one")]
    max_extra: u32,
}
fn one() -> u32 {
    1
}

/// `"20ms"` or `{ after = "20ms", max_extra = 1 }`.
struct RawHedge(RawHedgeTable);

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
struct RawBreaker {
    failure_threshold: u32,
    #[serde(deserialize_with = "duration")]
    open_for: Duration,
    #[serde(default = "one")]
    half_open_probes: u32,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum RawInvokeMode {
    Sync,
    Async,
}

/// One handler step: exactly one of the kind keys, plus options for that kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    compute: Option<LatencyDist>,
    call: Option<Spanned<String>>,
    fan_out: Option<Box<Spanned<RawStep>>>,
    invoke: Option<Spanned<String>>,
    publish: Option<Spanned<String>>,
    sequence: Option<Vec<Spanned<RawStep>>>,
    // fan-out options (inside `fan_out = { ... }`)
    count: Option<u32>,
    join: Option<RawJoin>,
    // invoke options
    mode: Option<RawInvokeMode>,
    // call options
    operation: Option<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    timeout: Option<Duration>,
    retry: Option<RawRetry>,
    hedge: Option<RawHedge>,
    circuit_breaker: Option<RawBreaker>,
    fallback: Option<bool>,
    failover: Option<Spanned<String>>,
}

// ------------------------------------------------------------------ durations

fn parse_duration_value(text: &str) -> Result<Duration, String> {
    crate::core_api::parse_duration(text).map_err(|e| {
        format!("invalid duration `{text}` ({e}); expected a number with a unit, like \"250ms\", \"2m\" or \"1h 30m\"")
    })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration_value(&text).map_err(de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

// ------------------------------------------------------------------ conversion

fn fail(path: impl Into<String>, message: impl Into<String>) -> Located {
    Located {
        path: path.into(),
        message: message.into(),
    }
}

fn convert(raw: RawScenario, spans: &mut Spans) -> Result<Scenario, Located> {
    let sim = raw.simulation;
    let mut functions = Vec::new();
    for f in raw.function {
        let span = f.span();
        let f = f.into_inner();
        let name = f.name.get_ref().clone();
        let base = format!("function.{name}");
        spans.record(&base, span);
        spans.record(format!("{base}.name"), f.name.span());
        spans.record(format!("{base}.handler"), f.handler.span());
        let handler_path = format!("{base}.handler");
        let mut handler = Vec::new();
        for (i, step) in f.handler.into_inner().into_iter().enumerate() {
            handler.push(convert_step(step, &format!("{handler_path}.{i}"), spans)?);
        }
        let mut function = Function::new(name, handler);
        function.region = f.region;
        if let Some(m) = f.memory_mb {
            function.memory_mb = m;
        }
        if let Some(t) = f.timeout {
            function.timeout = t;
        }
        function.reserved_concurrency = f.reserved_concurrency;
        if let Some(c) = f.cold_start {
            function.cold_start = c;
        }
        if let Some(k) = f.keep_alive {
            function.keep_alive = k;
        }
        if let Some(s) = f.scaling {
            function.scaling = ScalingLimit {
                burst: s.burst.unwrap_or(function.scaling.burst),
                per_second: s.per_second.unwrap_or(function.scaling.per_second),
            };
        }
        if let Some(RawArch::Arm64) = f.architecture {
            function.price = Price::ARM64;
        }
        if let Some(a) = f.async_config {
            if let Some(n) = a.max_retry_attempts {
                function.async_config.max_retry_attempts = n;
            }
            if let Some(age) = a.max_event_age {
                if age < Duration::from_secs(60) || age > Duration::from_secs(6 * 3600) {
                    return Err(fail(
                        format!("{base}.async"),
                        "max_event_age must be between 1m and 6h (the Lambda range)",
                    ));
                }
                function.async_config.max_event_age = age;
            }
        }
        functions.push(function);
    }
    let mut dependencies = Vec::new();
    for d in raw.dependency {
        let span = d.span();
        let d = d.into_inner();
        let name = d.name.get_ref().clone();
        let base = format!("dependency.{name}");
        spans.record(&base, span);
        spans.record(format!("{base}.name"), d.name.span());
        let mut regions = d.regions;
        if let Some(r) = d.region {
            if !regions.is_empty() {
                return Err(fail(
                    format!("{base}.region"),
                    "set either `region` or `regions`, not both",
                ));
            }
            regions.push(r);
        }
        let capacity = match d.capacity {
            None | Some(RawCapacity::Unlimited) => Capacity::Unlimited,
            Some(RawCapacity::OptimisticItem)
            | Some(RawCapacity::Table(RawCapacityTable::OptimisticItem {})) => {
                Capacity::OptimisticItem
            }
            Some(RawCapacity::Table(RawCapacityTable::TokenBucket { rate_per_s, burst })) => {
                Capacity::TokenBucket { rate_per_s, burst }
            }
            Some(RawCapacity::Table(RawCapacityTable::Provisioned {
                units_per_s,
                burst_seconds,
            })) => Capacity::TokenBucket {
                rate_per_s: units_per_s,
                burst: (units_per_s * burst_seconds).max(1.0),
            },
            Some(RawCapacity::Table(RawCapacityTable::Server {
                workers,
                discipline,
                abandoned,
            })) => Capacity::Server {
                workers,
                discipline: match discipline {
                    RawDiscipline::Fifo => Discipline::Fifo,
                    RawDiscipline::Lifo => Discipline::Lifo,
                },
                abandoned: match abandoned {
                    RawAbandoned::Serve => Abandoned::Serve,
                    RawAbandoned::Drop => Abandoned::Drop,
                },
            },
        };
        dependencies.push(Dependency {
            name,
            regions,
            latency: d.latency,
            capacity,
        });
    }
    let mut queues = Vec::new();
    for q in raw.queue {
        let span = q.span();
        let q = q.into_inner();
        let name = q.name.get_ref().clone();
        let base = format!("queue.{name}");
        spans.record(&base, span);
        spans.record(format!("{base}.name"), q.name.span());
        spans.record(format!("{base}.consumer"), q.consumer.span());
        let mut queue = Queue::new(name, q.consumer.into_inner());
        if let Some(b) = q.batch_size {
            queue.batch_size = b;
        }
        if let Some(c) = q.max_concurrency {
            queue.max_concurrency = c;
        }
        if let Some(v) = q.visibility_timeout {
            queue.visibility_timeout = v;
        }
        if let Some(m) = q.max_receives {
            queue.max_receives = m;
        }
        queues.push(queue);
    }
    let load_span = raw.load.span();
    let load = raw.load.into_inner();
    spans.record("load", load_span);
    spans.record("load.target", load.target.span());
    let shape = match load.kind {
        RawLoadKind::Closed => {
            let Some(clients) = load.clients else {
                return Err(fail("load.clients", "a closed loop needs `clients = N`"));
            };
            if load.rate_per_s.is_some() {
                return Err(fail(
                    "load.rate_per_s",
                    "a closed loop has no rate; remove `rate_per_s` or use kind = \"poisson\"",
                ));
            }
            for (field, set) in [
                ("load.steps", !load.steps.is_empty()),
                ("load.ramps", !load.ramps.is_empty()),
                ("load.bursts", !load.bursts.is_empty()),
            ] {
                if set {
                    return Err(fail(
                        field,
                        "steps, ramps and bursts shape an open loop's rate; a closed loop has \
                         none: remove them or use kind = \"poisson\"",
                    ));
                }
            }
            LoadShape::Closed(ClosedLoop {
                clients,
                think_time: load
                    .think_time
                    .unwrap_or_else(|| LatencyDist::constant(Duration::ZERO)),
                start_spread: load.start_spread.unwrap_or(Duration::ZERO),
            })
        }
        kind => {
            if load.clients.is_some() || load.think_time.is_some() || load.start_spread.is_some() {
                return Err(fail(
                    "load.clients",
                    "`clients`, `think_time` and `start_spread` belong to kind = \"closed\"",
                ));
            }
            let Some(rate) = load.rate_per_s else {
                return Err(fail(
                    "load.rate_per_s",
                    "an open loop needs `rate_per_s = N` (requests per second)",
                ));
            };
            LoadShape::Open(OpenLoop {
                arrivals: match kind {
                    RawLoadKind::Constant => Arrivals::Constant,
                    _ => Arrivals::Poisson,
                },
                rate_per_s: rate,
                steps: load
                    .steps
                    .into_iter()
                    .map(|s| RateStep {
                        at: s.at,
                        rate_per_s: s.rate_per_s,
                    })
                    .collect(),
                ramps: load
                    .ramps
                    .into_iter()
                    .map(|r| RateRamp {
                        start: r.start,
                        duration: r.duration,
                        to_rate_per_s: r.to_rate_per_s,
                    })
                    .collect(),
                bursts: load
                    .bursts
                    .into_iter()
                    .map(|b| Burst {
                        at: b.at,
                        count: b.count,
                    })
                    .collect(),
            })
        }
    };
    let mut account = Account::default();
    if let Some(a) = raw.account {
        if let Some(c) = a.concurrency {
            account.concurrency = c;
        }
        if let Some(u) = a.unreserved_minimum {
            account.unreserved_minimum = u;
        }
    }
    let hypothesis = convert_hypothesis(raw.hypothesis, spans)?;
    Ok(Scenario {
        name: sim.name.unwrap_or_else(|| "scenario".to_string()),
        seed: sim.seed,
        duration: sim.duration,
        requests: sim.requests,
        drain: sim.drain.unwrap_or(Duration::from_secs(900)),
        account,
        load: Load {
            target: load.target.into_inner(),
            invocation: match load.invocation {
                RawInvocation::Sync => Invocation::Sync,
                RawInvocation::Async => Invocation::Async,
                RawInvocation::Queue => Invocation::Queue,
            },
            shape,
        },
        functions,
        dependencies,
        queues,
        faults: raw.fault,
        hypothesis,
    })
}

fn convert_step(step: Spanned<RawStep>, path: &str, spans: &mut Spans) -> Result<Step, Located> {
    spans.record(path, step.span());
    let s = step.into_inner();
    let kinds = [
        s.compute.is_some(),
        s.call.is_some(),
        s.fan_out.is_some(),
        s.invoke.is_some(),
        s.publish.is_some(),
        s.sequence.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds != 1 {
        return Err(fail(
            path,
            format!(
                "a step needs exactly one of `compute`, `call`, `fan_out`, `invoke`, `publish`, \
                 `sequence`; found {kinds}"
            ),
        ));
    }
    let only = |ok: bool, field: &str, kind: &str| -> Result<(), Located> {
        if ok {
            Ok(())
        } else {
            Err(fail(
                format!("{path}.{field}"),
                format!("`{field}` only applies to {kind}"),
            ))
        }
    };
    only(
        s.count.is_none() && s.join.is_none(),
        "count",
        "the table inside `fan_out = { ... }`",
    )?;
    let is_call = s.call.is_some();
    only(
        s.mode.is_none() || s.invoke.is_some(),
        "mode",
        "`invoke` steps",
    )?;
    for (present, field) in [
        (s.operation.is_some(), "operation"),
        (s.timeout.is_some(), "timeout"),
        (s.retry.is_some(), "retry"),
        (s.hedge.is_some(), "hedge"),
        (s.circuit_breaker.is_some(), "circuit_breaker"),
        (s.fallback.is_some(), "fallback"),
        (s.failover.is_some(), "failover"),
    ] {
        only(!present || is_call, field, "`call` steps")?;
    }
    if let Some(dist) = s.compute {
        return Ok(Step::Compute(dist));
    }
    if let Some(name) = s.publish {
        spans.record(format!("{path}.publish"), name.span());
        return Ok(Step::Publish(name.into_inner()));
    }
    if let Some(name) = s.invoke {
        spans.record(format!("{path}.invoke"), name.span());
        return Ok(Step::Invoke(InvokeStep {
            function: name.into_inner(),
            mode: match s.mode {
                Some(RawInvokeMode::Async) => InvokeMode::Async,
                _ => InvokeMode::Sync,
            },
        }));
    }
    if let Some(children) = s.sequence {
        let mut steps = Vec::new();
        for (i, c) in children.into_iter().enumerate() {
            steps.push(convert_step(c, &format!("{path}.sequence.{i}"), spans)?);
        }
        return Ok(Step::Sequence(steps));
    }
    if let Some(inner) = s.fan_out {
        let inner = *inner;
        let fan_path = format!("{path}.fan_out");
        let span = inner.span();
        let mut table = inner.into_inner();
        let count = table.count.take().ok_or_else(|| {
            fail(
                format!("{fan_path}.count"),
                "a fan-out needs `count = N` (parallel branches)",
            )
        })?;
        let join = match table.join.take().unwrap_or(RawJoin::All) {
            RawJoin::All => Join::All,
            RawJoin::Any => Join::Any,
            RawJoin::Quorum(k) => Join::Quorum(k),
        };
        // The branch is the rest of the table, located at the fan-out's own path.
        let branch = convert_step(Spanned::new(span, table), &fan_path, spans)?;
        return Ok(Step::FanOut(FanOut {
            count,
            join,
            step: Box::new(branch),
        }));
    }
    let Some(dependency) = s.call else {
        return Err(fail(path, "empty step"));
    };
    spans.record(format!("{path}.call"), dependency.span());
    if let Some(f) = &s.failover {
        spans.record(format!("{path}.failover"), f.span());
    }
    let retry = match s.retry {
        None | Some(RawRetry::None) => Retry::None,
        Some(RawRetry::SdkStandard) => Retry::SdkStandard,
        Some(RawRetry::Table(t)) => Retry::Backoff {
            max_attempts: t.attempts,
            backoff: match t.backoff {
                RawBackoff::None => Backoff::None,
                RawBackoff::Exponential => Backoff::Exponential,
                RawBackoff::FullJitter => Backoff::FullJitter,
                RawBackoff::EqualJitter => Backoff::EqualJitter,
                RawBackoff::DecorrelatedJitter => Backoff::DecorrelatedJitter,
            },
            base: t.base.unwrap_or(Duration::from_millis(25)),
            cap: t.cap.unwrap_or(Duration::from_secs(20)),
        },
    };
    Ok(Step::Call(CallStep {
        dependency: dependency.into_inner(),
        operation: s.operation.unwrap_or_else(|| "call".to_string()),
        timeout: s.timeout,
        retry,
        hedge: s.hedge.map(|h| Hedge {
            after: h.0.after,
            max_extra: h.0.max_extra,
        }),
        circuit_breaker: s.circuit_breaker.map(|b| CircuitBreaker {
            failure_threshold: b.failure_threshold,
            open_for: b.open_for,
            half_open_probes: b.half_open_probes,
        }),
        fallback: s.fallback.unwrap_or(false),
        failover: s.failover.map(Spanned::into_inner),
    }))
}

const HYPOTHESIS_KEYS: &[&str] = &[
    "success_rate",
    "throttle_rate",
    "cost_usd",
    "latency_p50",
    "latency_p90",
    "latency_p99",
    "latency_p99_9",
];

fn convert_hypothesis(
    raw: BTreeMap<String, Spanned<toml::Value>>,
    spans: &mut Spans,
) -> Result<Hypothesis, Located> {
    let mut h = Hypothesis::default();
    for (key, value) in raw {
        let path = format!("hypothesis.{key}");
        spans.record(&path, value.span());
        let value = value.into_inner();
        match key.as_str() {
            "success_rate" => h.success_rate_at_least = Some(bound_ratio(&path, &value, ">=")?),
            "throttle_rate" => h.throttle_rate_at_most = Some(bound_ratio(&path, &value, "<=")?),
            "cost_usd" => {
                let text = bound_text(&path, &value, "<=")?;
                let amount = text.trim_start_matches('$').trim();
                h.cost_at_most_usd = Some(amount.parse::<f64>().map_err(|_| {
                    fail(
                        &path,
                        format!("expected dollars like \"<= 5.00\", found `{text}`"),
                    )
                })?);
            }
            k if k.starts_with("latency_p") => {
                let pct: f64 = k["latency_p".len()..]
                    .replace('_', ".")
                    .parse()
                    .map_err(|_| {
                        fail(
                            &path,
                            "expected a key like latency_p50, latency_p99 or latency_p99_9",
                        )
                    })?;
                if !(pct > 0.0 && pct <= 100.0) {
                    return Err(fail(&path, "the percentile must be in (0, 100]"));
                }
                let text = bound_text(&path, &value, "<=")?;
                let bound = parse_duration_value(text).map_err(|m| fail(&path, m))?;
                h.latency_at_most.push((pct / 100.0, bound));
            }
            other => {
                let hint = closest(other, HYPOTHESIS_KEYS.iter().copied())
                    .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                return Err(fail(
                    &path,
                    format!(
                        "unknown hypothesis `{other}`, expected one of {}{hint}",
                        HYPOTHESIS_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    h.latency_at_most
        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    Ok(h)
}

/// The text after the operator, which must be `op` when present.
fn bound_text<'v>(path: &str, value: &'v toml::Value, op: &str) -> Result<&'v str, Located> {
    let text = match value {
        toml::Value::String(s) => s.trim(),
        _ => {
            return Err(fail(path, format!("expected a string like \"{op} ...\"")));
        }
    };
    let other = if op == ">=" { "<=" } else { ">=" };
    if text.starts_with(other) {
        return Err(fail(
            path,
            format!("this bound can only be `{op}` (found `{other}`)"),
        ));
    }
    Ok(text.strip_prefix(op).unwrap_or(text).trim())
}

/// A ratio written as `">= 99.9%"`, `">= 0.999"` or a bare number.
fn bound_ratio(path: &str, value: &toml::Value, op: &str) -> Result<f64, Located> {
    let ratio = match value {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        _ => {
            let text = bound_text(path, value, op)?;
            let (number, scale) = match text.strip_suffix('%') {
                Some(n) => (n.trim(), 0.01),
                None => (text, 1.0),
            };
            number.parse::<f64>().map_err(|_| {
                fail(
                    path,
                    format!(
                        "expected a ratio like \"{op} 99.9%\" or \"{op} 0.999\", found `{text}`"
                    ),
                )
            })? * scale
        }
    };
    if !(0.0..=1.0).contains(&ratio) {
        return Err(fail(
            path,
            format!("a ratio must be within 0..1 (0%..100%), found {ratio}"),
        ));
    }
    Ok(ratio)
}
