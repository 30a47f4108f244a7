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
//! max_events = 1000000000   # work budget of one run (default); past it the run stops, exit 2
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
//! retry_partition = "dynamodb" # SDK client shared with other tables (see below)
//! capacity = { token_bucket = { rate_per_s = 500, burst = 150000 } }
//! # or { server = { workers = 8, discipline = "fifo", abandoned = "serve" } }
//! # discipline = "fifo" | "lifo" | { adaptive_lifo = { standing_queue = 10 } }
//! # abandoned = "serve" | "drop" | "drop_late" (also shed work that would finish too late)
//! # queue_delay = { target = "5ms", interval = "100ms" } (CoDel-style bound on waiting)
//! # or "optimistic_item"
//! # network hops, each way a latency distribution (omit a side for no hop; see `model::Hops`)
//! hops = { request = "2ms", response = { log_normal = { p50 = "2ms", p99 = "9ms" } } }
//!
//! [[network]]               # hops between regions, for dependencies without `hops`
//! from = "eu-west-1"        # the caller's region
//! to = "us-east-1"          # the replica's region (both ways unless the reverse is listed)
//! request = "35ms"          # caller to dependency; omit a side for no hop
//! response = { log_normal = { p50 = "35ms", p99 = "50ms" } }
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
//! [[fault]]                  # a partition: calls held in the network until the window ends
//! fault = "partition"
//! match = { service = "orders" }
//! probability = 1.0
//! window = { start = "4m", duration = "30s" }
//!
//! [hypothesis]
//! success_rate = ">= 99.9%"
//! latency_p99 = "<= 800ms"
//! throttle_rate = "<= 1%"
//! cost_usd = "<= 5"
//! # at most 1% of answered requests slower than 1 s (an array of such tables for several)
//! slow_rate = { over = "1s", at_most = "1%" }
//! # goodput back (see [timeline]) at most 60 s after the last fault window ends
//! recovery_time = "<= 60s"
//!
//! [timeline]                    # optional
//! interval = "5s"               # default: a 1-2-5 step giving at most 120 intervals
//! recovery_tolerance = "10%"    # recovered: goodput >= 90% of the control run's ...
//! recovery_sustain = "25s"      # ... for this long (default 5 intervals)
//! ```
//!
//! Any percentile is a key: `latency_p95`, `latency_p99_99` (the `_` is the decimal point).
//!
//! Call options: `timeout`, `retry` (`"none"`, `"sdk_standard"`, or a table with `attempts`,
//! or instead `within = "10s"` / `within = "deadline"` to retry until success bounded by
//! time, and `backoff` = none | exponential | full_jitter | equal_jitter |
//! decorrelated_jitter | immediate, `base`, `cap`), `retry_budget` (gRPC-style
//! `{ max_tokens = 10, token_ratio = 0.1 }` or Finagle-style `{ percent = "20%",
//! min_retries_per_s = 10, ttl = "10s" }`, shared by the function's calls to the dependency
//! in one region), `hedge = { after = "20ms", max_extra = 1 }` (or `hedge = "20ms"`),
//! `circuit_breaker = { failure_threshold = 5, open_for = "10s", half_open_probes = 1 }`,
//! `fallback = true`, `failover = "us-west-2"`, `quota_scope` (with `retry = "sdk_standard"`:
//! `"environment"`, the default and the SDK's behaviour on Lambda, one retry quota per
//! execution environment; or `"function"`, one shared by all of the function's environments;
//! calls sharing a retry partition must agree on it).
//! A dependency's `retry_partition = "dynamodb"` says which SDK client reaches it: the
//! `sdk_standard` calls of dependencies naming the same partition draw on one quota per
//! Region served, as the SDK's bucket per service and Region does (throttles on one table
//! spend the retries of another); without it a dependency has a quota of its own.
//! Joins: `"all"`, `"any"`, `{ quorum = 3 }`.
//!
//! Fault sites: a dependency call is `region/function/dependency` (service = the dependency,
//! operation = the call's `operation`, `"call"` by default; region = where the call is
//! served); a function invocation is `region/function` (service `lambda`, operation
//! `invoke`). So `match = { site = "eu-west-1/*" }` takes a whole region out.
//!
//! Network: a dependency's `hops` delay every attempt's request before the server sees it
//! (tokens, versions and server lines are taken at server time) and its answer on the way
//! back; a retry pays them again. A `partition` fault holds a call until its window ends,
//! then delivers it: a caller whose timeout ends first gives up, and the dependency still
//! receives the request (`late_deliveries` in the report).
//!
//! Hops between regions: each `[[network]]` entry gives the hops of calls from functions in
//! `from` to replicas in `to`. An attempt crosses its dependency's own `hops` if it has any
//! (they apply from every region and win), else the entry from the caller's region to the
//! region the attempt goes to (after a failover, the failover region's), else the entry
//! for the reverse direction (a pair is symmetric unless its reverse is listed too, and
//! `request` is always caller to dependency), else nothing. `from = to` gives calls inside
//! that region their hops; a region without such an entry has none, so a scenario without
//! `[[network]]` runs exactly as before. (A dependency's `hops` replace the pairs in every
//! region: to model a near and a far replica, give in-region hops as `from = to` entries.)
//! Errors: a region no function runs in and no
//! dependency has a replica in (a pair nothing could cross is taken for a typo, with the
//! closest region suggested), an ordered pair listed twice, an entry with neither
//! `request` nor `response`, and any latency a distribution rejects (negative, NaN).
//! `examples/scenarios/region_failover_latency.toml` shows a failover that keeps the success
//! rate and breaks a latency bound once the cross-region round trip is modelled.
//!
//! Limits (each a located error): files of at most 16 MiB ([`MAX_INPUT_BYTES`]); durations of
//! at most 10 years; steps and invocations nested at most 256 deep; at most 1,000,000
//! branches per invocation, closed-loop clients or requests per burst; `requests` at least 1;
//! an unbounded closed loop needs a mean think time of at least 1us. The full table is in
//! `REPORT_SCHEMA.md`.

mod convert;
mod hypothesis;
mod location;
mod raw;

use crate::checked::{CheckedScenario, compile_plan};
use crate::core_api::{LatencyDist, PlanError, Rule};
use crate::model::*;
use crate::program::closest;
use convert::convert;
use location::{Located, Spans, toml_error};
use raw::RawScenario;
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

/// The largest input file `load` reads (16 MiB): a larger file, or one that never ends (a
/// device), is rejected after reading this much.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a UTF-8 text file of at most [`MAX_INPUT_BYTES`], never more than that from it.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is larger than the limit of {MAX_INPUT_BYTES} bytes (16 MiB)"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is not UTF-8"))
}

/// Reads, parses and checks a scenario file (at most [`MAX_INPUT_BYTES`]).
pub fn load(path: &Path) -> Result<CheckedScenario, ScenarioError> {
    let file = path.display().to_string();
    let text = read_text(path).map_err(|e| ScenarioError {
        file: file.clone(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the file: {e}"),
        snippet: None,
    })?;
    parse(&text, &file)
}

/// Parses and checks scenario text, compiling its program and fault plan once; `file` is only
/// used in error messages, which name the file, line, column and field (for a `[[fault]]`
/// chaos-core rejects: the fault's table and name).
pub fn parse(text: &str, file: &str) -> Result<CheckedScenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
    let mut spans = Spans::default();
    let scenario = convert(raw, &mut spans).map_err(|e| spans.error(text, file, e))?;
    let program = crate::program::Program::compile(&scenario).map_err(|e| {
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
    let plan = compile_plan(&scenario).map_err(|e| spans.error(text, file, plan_error(&e)))?;
    Ok(CheckedScenario::from_parts(scenario, program, plan))
}

/// A fault rule chaos-core rejected, placed at its `[[fault]]` table.
fn plan_error(e: &PlanError) -> Located {
    match e {
        PlanError::Rule {
            index,
            name,
            field,
            message,
        } => {
            let which = name.as_ref().map_or_else(
                || format!("fault {}", index + 1),
                |n| format!("fault {n:?}"),
            );
            Located {
                path: format!("fault.{index}"),
                message: format!("{which}: `{field}`: {message}"),
            }
        }
        other => Located {
            path: "fault".to_string(),
            message: other.to_string(),
        },
    }
}
