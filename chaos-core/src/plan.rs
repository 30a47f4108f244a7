//! Plans: an ordered list of rules, their file format, and the compiled form that decides.
//!
//! # Combination semantics
//!
//! For each call, every rule whose selector matches and whose schedule is active is evaluated
//! independently (its own roll, keyed by the rule). Then:
//!
//! * the latencies of all firing latency rules **add up**;
//! * the **first** firing failing rule in plan order (error, hang, status) **wins**; later
//!   failing rules are not applied and do not count as injected (they still count the call
//!   for their `every` / `first` / `after` triggers, which stay independent of other rules);
//! * latency is applied before the failure, so a slow failure is possible.
//!
//! # File format
//!
//! ```
//! let plan = chaos_core::plan::Plan::from_toml_str(r#"
//!     seed = 42
//!
//!     [[rules]]
//!     name = "slow-orders"
//!     fault = { latency = { log_normal = { p50 = "50ms", p99 = "400ms" } } }
//!     match = { service = "orders" }
//!     probability = 0.1
//!
//!     [[rules]]
//!     name = "orders-throttle"
//!     fault = { error = "throttle" }
//!     match = { service = "orders", operation = "Put*" }
//!     probability = 0.05
//!     window = { start = "1m", duration = "5m" }
//! "#)?;
//! let compiled = plan.compile()?;
//! assert_eq!(compiled.rule_count(), 2);
//! # Ok::<(), chaos_core::plan::PlanError>(())
//! ```
//!
//! The same plan in JSON: `{"seed": 42, "rules": [{"name": "slow-orders", "fault": {"latency":
//! {"log_normal": {"p50": "50ms", "p99": "400ms"}}}, "match": {"service": "orders"},
//! "probability": 0.1}]}`.

use std::cell::Cell;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::decision::{DecisionKey, Probability, call_word, hash_str, hash_str_const, stream_for};
use crate::fault::{ErrorKind, Fault};
use crate::rule::{EventTest, Rule};

/// An ordered list of rules and the seed that keys their decisions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Keys every decision. The same seed replays the same decisions.
    #[serde(default)]
    pub seed: u64,
    /// The rules, in order (order matters for which failure wins).
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A plan could not be read or is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The text is not a well-formed plan (syntax, unknown field, wrong type, bad duration or
    /// latency). The message carries the line and column.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `"<toml>"` / `"<json>"` for text.
        origin: String,
        /// What the parser said, with the location.
        message: String,
    },
    /// A rule is well-formed but invalid.
    #[error("rule {index}{} field `rules[{index}].{field}`: {message}", name.as_ref().map(|n| format!(" ({n:?})")).unwrap_or_default())]
    Rule {
        /// The rule's index in the plan.
        index: usize,
        /// The rule's name, if it has one.
        name: Option<String>,
        /// The field at fault, such as `probability` or `match.site`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An injector guardrail is invalid.
    #[error("guardrail `{field}`: {message}")]
    Guardrail {
        /// The guardrail at fault, such as `max_injections`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The plan file could not be read.
    #[error("cannot read plan file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        message: String,
    },
}

impl Plan {
    /// An empty plan with a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rules: Vec::new(),
        }
    }

    /// Adds a rule at the end.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Parses a TOML plan and checks it. Errors carry line and column, or rule index and field.
    pub fn from_toml_str(text: &str) -> Result<Self, PlanError> {
        Self::parse_toml(text, "<toml>")
    }

    /// Parses a JSON plan and checks it.
    pub fn from_json_str(text: &str) -> Result<Self, PlanError> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| PlanError::Parse {
            origin: "<json>".to_owned(),
            message: e.to_string(),
        })?;
        plan.compile()?;
        Ok(plan)
    }

    /// Reads a plan file: `.json` as JSON, anything else as TOML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PlanError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::Io {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        if path.extension().is_some_and(|ext| ext == "json") {
            Self::from_json_str(&text).map_err(|e| match e {
                PlanError::Parse { message, .. } => PlanError::Parse {
                    origin: shown,
                    message,
                },
                other => other,
            })
        } else {
            Self::parse_toml(&text, &shown)
        }
    }

    fn parse_toml(text: &str, origin: &str) -> Result<Self, PlanError> {
        let plan: Plan = toml::from_str(text).map_err(|e| PlanError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        plan.compile()?;
        Ok(plan)
    }

    /// Writes the plan as TOML.
    pub fn to_toml_string(&self) -> Result<String, PlanError> {
        toml::to_string(self).map_err(|e| PlanError::Parse {
            origin: "<toml>".to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the plan as JSON.
    pub fn to_json_string(&self) -> String {
        // Serializing these types to JSON cannot fail: every map key is a string.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every rule and compiles selectors and probabilities for fast evaluation.
    pub fn compile(&self) -> Result<CompiledPlan, PlanError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut needs_elapsed = false;
        let mut needs_wall_clock = false;
        for (index, rule) in self.rules.iter().enumerate() {
            if let Some(name) = &rule.name {
                if let Some(first) = self.rules[..index]
                    .iter()
                    .position(|r| r.name.as_ref() == Some(name))
                {
                    // A name keys the rule's decisions: two rules of one name would fire on
                    // exactly the same calls.
                    return Err(PlanError::Rule {
                        index,
                        name: Some(name.clone()),
                        field: "name".to_owned(),
                        message: format!(
                            "{name:?} is already the name of rule {first}; names must be unique"
                        ),
                    });
                }
            }
            let mut compiled = CompiledRule::new(self.seed, index, rule)?;
            // Rules with the same selector share one match per call (see `evaluate`).
            compiled.selector_group = self.rules[..index]
                .iter()
                .position(|earlier| earlier.selector == rule.selector)
                .unwrap_or(index);
            needs_elapsed |= compiled.timed;
            needs_wall_clock |= rule.schedule.expires_at.is_some();
            rules.push(compiled);
        }
        Ok(CompiledPlan {
            seed: self.seed,
            rules,
            needs_elapsed,
            needs_wall_clock,
        })
    }
}

/// One call, as a plan sees it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// Identifies the logical request (a request id's hash, a simulated request's number):
    /// the same key, site and attempt always get the same decision.
    pub request_key: u64,
    /// Where the call is made, such as `"checkout/orders"`.
    pub site: &'a str,
    /// The hash of `site`, when known in advance (a [`CallSite`]); `None`: hashed per call.
    pub site_hash: Option<u64>,
    /// The service called, such as `"dynamodb"`.
    pub service: &'a str,
    /// The operation, such as `"PutItem"`.
    pub operation: &'a str,
    /// The attempt number, 0 for the first try, so retries get fresh decisions.
    pub attempt: u32,
    /// The handler's event, for rules with event conditions.
    pub event: Option<&'a serde_json::Value>,
}

impl<'a> Call<'a> {
    /// A first attempt at `site`, with no service, operation or event.
    pub fn new(request_key: u64, site: &'a str) -> Self {
        Self {
            request_key,
            site,
            site_hash: None,
            service: "",
            operation: "",
            attempt: 0,
            event: None,
        }
    }

    /// A first attempt at a pre-hashed [`CallSite`]: the cheapest call to decide.
    ///
    /// ```
    /// use chaos_core::plan::{Call, CallSite};
    /// const ORDERS: CallSite<'static> = CallSite::new("checkout/orders");
    /// let call = Call::at(42, ORDERS).service("dynamodb");
    /// assert_eq!(call.site, "checkout/orders");
    /// ```
    pub fn at(request_key: u64, site: CallSite<'a>) -> Self {
        Self {
            site_hash: Some(site.hash),
            ..Self::new(request_key, site.name)
        }
    }

    /// Sets the service.
    pub fn service(mut self, service: &'a str) -> Self {
        self.service = service;
        self
    }

    /// Sets the operation.
    pub fn operation(mut self, operation: &'a str) -> Self {
        self.operation = operation;
        self
    }

    /// Sets the attempt number (0 for the first try).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the handler's event.
    pub fn event(mut self, event: &'a serde_json::Value) -> Self {
        self.event = Some(event);
        self
    }
}

/// A call site with its hash computed once: in a `const`, at compile time. Decisions key on
/// the site's hash, so a call made at a `CallSite` skips hashing the site's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallSite<'a> {
    name: &'a str,
    hash: u64,
}

impl<'a> CallSite<'a> {
    /// A call site named `name`, such as `"checkout/orders"`.
    pub const fn new(name: &'a str) -> Self {
        Self {
            name,
            hash: hash_str_const(name),
        }
    }

    /// The site's name.
    pub const fn name(&self) -> &'a str {
        self.name
    }
}

/// The failure a plan decided for a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Fail with an error.
    Error {
        /// Index of the rule that fired.
        rule: usize,
        /// The error.
        kind: ErrorKind,
    },
    /// Hang until the deadline minus `buffer`, then time out.
    Hang {
        /// Index of the rule that fired.
        rule: usize,
        /// Time left to the caller when the hang ends.
        buffer: Duration,
    },
    /// Replace the response with this status.
    Status {
        /// Index of the rule that fired.
        rule: usize,
        /// The HTTP status.
        status: u16,
    },
}

impl Failure {
    /// Index of the rule that fired.
    pub fn rule(&self) -> usize {
        match self {
            Self::Error { rule, .. } | Self::Hang { rule, .. } | Self::Status { rule, .. } => *rule,
        }
    }
}

/// What a plan decided for one call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Latency to add before the call (sum of the firing latency rules).
    pub added_latency: Duration,
    /// The failure to inject, if any rule decided one. Boxed to keep the common verdict (no
    /// failure) small: it is returned on every call.
    pub failure: Option<Box<Failure>>,
    /// How many rules fired.
    pub fired: u32,
}

impl Verdict {
    /// Whether nothing is injected.
    pub fn is_pass(&self) -> bool {
        self.fired == 0
    }
}

/// Counts each rule's matching calls, for the `every`, `first` and `after` triggers.
pub trait MatchCounter {
    /// Returns this call's 0-based ordinal among the rule's matching calls, and counts it.
    fn next_ordinal(&self, rule_index: usize) -> u64;
}

/// A single-threaded [`MatchCounter`], for the simulator and tests.
#[derive(Debug, Default)]
pub struct LocalMatchCounter {
    counts: Vec<Cell<u64>>,
}

impl LocalMatchCounter {
    /// Counters for a plan of `rule_count` rules.
    pub fn new(rule_count: usize) -> Self {
        Self {
            counts: (0..rule_count).map(|_| Cell::new(0)).collect(),
        }
    }
}

impl MatchCounter for LocalMatchCounter {
    fn next_ordinal(&self, rule_index: usize) -> u64 {
        self.counts.get(rule_index).map_or(0, |cell| {
            let ordinal = cell.get();
            cell.set(ordinal + 1);
            ordinal
        })
    }
}

/// A thread-safe [`MatchCounter`]. Only rules with counting triggers touch it.
#[derive(Debug, Default)]
pub struct SharedMatchCounter {
    counts: Vec<AtomicU64>,
}

impl SharedMatchCounter {
    /// Counters for a plan of `rule_count` rules.
    pub fn new(rule_count: usize) -> Self {
        Self {
            counts: (0..rule_count).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl MatchCounter for SharedMatchCounter {
    fn next_ordinal(&self, rule_index: usize) -> u64 {
        self.counts
            .get(rule_index)
            .map_or(0, |count| count.fetch_add(1, Ordering::Relaxed))
    }
}

/// Sees each rule's evaluation; the injector uses it for counters, guardrails and traces.
pub(crate) trait Observer {
    /// The rule applied to the call (selector matched, schedule active).
    fn evaluated(&mut self, rule: usize);
    /// The rule decided to fire; returning `false` vetoes it (a guardrail).
    fn permit(&mut self, rule: usize) -> bool;
    /// The rule fired and its fault is applied.
    fn injected(&mut self, rule: usize, call: &Call<'_>);
}

struct NoObserver;

impl Observer for NoObserver {
    fn evaluated(&mut self, _: usize) {}
    fn permit(&mut self, _: usize) -> bool {
        true
    }
    fn injected(&mut self, _: usize, _: &Call<'_>) {}
}

/// A checked plan, ready to decide calls. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CompiledPlan {
    seed: u64,
    rules: Vec<CompiledRule>,
    needs_elapsed: bool,
    needs_wall_clock: bool,
}

impl CompiledPlan {
    /// The number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The plan's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Each rule's label (its name, or `#index`), in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.label.as_str())
    }

    /// The label (name, or `#index`) of rule `index`.
    pub fn label(&self, index: usize) -> Option<&str> {
        self.rules.get(index).map(|r| r.label.as_str())
    }

    /// The fault of rule `index`.
    pub fn fault(&self, index: usize) -> Option<&Fault> {
        self.rules.get(index).map(|r| &r.fault)
    }

    /// Whether any rule's schedule depends on elapsed time (windows, ramps).
    pub fn needs_elapsed(&self) -> bool {
        self.needs_elapsed
    }

    /// Whether any rule has an absolute expiry.
    pub fn needs_wall_clock(&self) -> bool {
        self.needs_wall_clock
    }

    /// Decides a call at `elapsed` since the start (the simulator passes virtual time).
    /// Absolute expiries are ignored: there is no wall clock here.
    pub fn evaluate(
        &self,
        call: &Call<'_>,
        elapsed: Duration,
        counter: &dyn MatchCounter,
    ) -> Verdict {
        self.evaluate_observed(call, elapsed, None, counter, &mut NoObserver)
    }

    /// Decides a call at `elapsed` since the start and wall-clock time `now` (live injectors).
    pub fn evaluate_at(
        &self,
        call: &Call<'_>,
        elapsed: Duration,
        now: SystemTime,
        counter: &dyn MatchCounter,
    ) -> Verdict {
        self.evaluate_observed(call, elapsed, Some(now), counter, &mut NoObserver)
    }

    #[inline]
    pub(crate) fn evaluate_observed<O: Observer>(
        &self,
        call: &Call<'_>,
        elapsed: Duration,
        now: Option<SystemTime>,
        counter: &dyn MatchCounter,
        observer: &mut O,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        // Hashed on the first rule that needs it, once per call.
        let mut call_word_once = None;
        // Selector results by group (the first rule with that selector), for the first
        // groups: plans often put many rules on one service.
        let mut selector_memo = [UNKNOWN; SELECTOR_MEMO];
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.selects_any_call {
                let selected = match selector_memo.get(rule.selector_group) {
                    Some(&known) if known != UNKNOWN => known == SELECTED,
                    _ => {
                        let selected = rule.selects(call);
                        if let Some(slot) = selector_memo.get_mut(rule.selector_group) {
                            *slot = if selected { SELECTED } else { NOT_SELECTED };
                        }
                        selected
                    }
                };
                if !selected {
                    continue;
                }
            }
            let probability = if rule.plain {
                observer.evaluated(index);
                rule.probability
            } else {
                match rule.gate(index, elapsed, now, counter, observer) {
                    Some(probability) => probability,
                    None => continue,
                }
            };
            let call_word = *call_word_once.get_or_insert_with(|| {
                let site_hash = call.site_hash.unwrap_or_else(|| hash_str(call.site));
                call_word(call.request_key, site_hash, call.attempt)
            });
            let word = rule.key.for_call_word(call_word);
            // A failing rule that loses to an earlier failure still counted the call (its
            // triggers stay independent of other rules) but is not applied.
            if probability.admits(word) && !(rule.failing && verdict.failure.is_some()) {
                rule.fire(index, word, call, &mut verdict, observer);
            }
        }
        verdict
    }
}

const SELECTOR_MEMO: usize = 64;
const UNKNOWN: u8 = 0;
const NOT_SELECTED: u8 = 1;
const SELECTED: u8 = 2;

#[derive(Debug)]
struct CompiledRule {
    label: String,
    key: DecisionKey,
    fault: Fault,
    /// The fault fails the call (anything but latency).
    failing: bool,
    /// No selector part is set: skip matching.
    selects_any_call: bool,
    /// Index of the first rule with the same selector.
    selector_group: usize,
    /// No schedule, expiry or counting condition: only the probability roll.
    plain: bool,
    site: Pattern,
    service: Pattern,
    operation: Pattern,
    event: Vec<(String, CompiledTest)>,
    probability: Probability,
    trigger: crate::rule::Trigger,
    counts_calls: bool,
    schedule: crate::rule::Schedule,
    timed: bool,
}

impl CompiledRule {
    fn new(seed: u64, index: usize, rule: &Rule) -> Result<Self, PlanError> {
        let fail = |field: &str, message: String| PlanError::Rule {
            index,
            name: rule.name.clone(),
            field: field.to_owned(),
            message,
        };
        let probability = Probability::new(rule.trigger.probability).ok_or_else(|| {
            fail(
                "probability",
                format!(
                    "{} is outside [0, 1]; write a fraction, such as 0.05 for 5%",
                    rule.trigger.probability
                ),
            )
        })?;
        for (field, value) in [("every", rule.trigger.every), ("first", rule.trigger.first)] {
            if value == Some(0) {
                return Err(fail(field, "must be at least 1".to_owned()));
            }
        }
        if let Some(window) = rule.schedule.window {
            if window.duration.is_some_and(|d| d.is_zero()) {
                return Err(fail(
                    "window.duration",
                    "the window is empty; give a duration above zero, or omit it for an open-ended window"
                        .to_owned(),
                ));
            }
        }
        if let Fault::Status(status) = rule.fault {
            if !(100..=599).contains(&status) {
                return Err(fail(
                    "fault.status",
                    format!("{status} is not an HTTP status; expected 100 to 599"),
                ));
            }
        }
        if let Some(name) = &rule.name {
            if name.trim().is_empty() {
                return Err(fail(
                    "name",
                    "is empty; give the rule a name or omit the field".to_owned(),
                ));
            }
        }
        let mut event = Vec::with_capacity(rule.selector.event.len());
        for (position, condition) in rule.selector.event.iter().enumerate() {
            let field = format!("match.event[{position}]");
            if !(condition.path.is_empty() || condition.path.starts_with('/')) {
                return Err(fail(
                    &format!("{field}.path"),
                    format!(
                        "{:?} is not a JSON pointer; write it as \"/{}\"",
                        condition.path,
                        condition.path.replace('.', "/")
                    ),
                ));
            }
            let test = match &condition.test {
                EventTest::Equals(value) => CompiledTest::Equals(value.clone()),
                EventTest::Exists(flag) => CompiledTest::Exists(*flag),
                EventTest::Prefix(prefix) => CompiledTest::Prefix(prefix.clone()),
                EventTest::Regex(pattern) => {
                    CompiledTest::Regex(Regex::new(pattern).map_err(|e| {
                        fail(&format!("{field}.regex"), format!("invalid regex: {e}"))
                    })?)
                }
            };
            event.push((condition.path.clone(), test));
        }
        let rule_id = rule.name.as_deref().map_or(index as u64, hash_str);
        let site =
            Pattern::compile(rule.selector.site.as_deref()).map_err(|m| fail("match.site", m))?;
        let service = Pattern::compile(rule.selector.service.as_deref())
            .map_err(|m| fail("match.service", m))?;
        let operation = Pattern::compile(rule.selector.operation.as_deref())
            .map_err(|m| fail("match.operation", m))?;
        let selects_any_call = [&site, &service, &operation]
            .iter()
            .all(|p| matches!(p, Pattern::Any))
            && event.is_empty();
        Ok(Self {
            label: rule.label(index),
            key: DecisionKey::new(seed, rule_id),
            failing: rule.fault.is_failure(),
            fault: rule.fault.clone(),
            selects_any_call,
            selector_group: index,
            plain: !rule.schedule.is_timed()
                && rule.schedule.expires_at.is_none()
                && !rule.trigger.counts_calls(),
            site,
            service,
            operation,
            event,
            probability,
            counts_calls: rule.trigger.counts_calls(),
            trigger: rule.trigger.clone(),
            timed: rule.schedule.is_timed(),
            schedule: rule.schedule.clone(),
        })
    }

    /// The schedule, expiry and counting conditions of a rule that has any; returns the
    /// probability in force for this call, or `None` when the rule does not apply.
    #[inline(never)]
    fn gate<O: Observer>(
        &self,
        index: usize,
        elapsed: Duration,
        now: Option<SystemTime>,
        counter: &dyn MatchCounter,
        observer: &mut O,
    ) -> Option<Probability> {
        let intensity = if self.timed {
            self.schedule.intensity(elapsed)
        } else {
            1.0
        };
        if intensity <= 0.0 || self.expired(now) {
            return None;
        }
        observer.evaluated(index);
        if self.counts_calls && !self.trigger.admits_ordinal(counter.next_ordinal(index)) {
            return None;
        }
        if intensity >= 1.0 {
            Some(self.probability)
        } else {
            Probability::new(self.trigger.probability * intensity)
        }
    }

    /// Applies a firing rule to the verdict. Kept out of line: it runs for the few calls that
    /// fire, and inlining it would crowd the loop every call runs.
    #[cold]
    #[inline(never)]
    fn fire<O: Observer>(
        &self,
        index: usize,
        word: u64,
        call: &Call<'_>,
        verdict: &mut Verdict,
        observer: &mut O,
    ) {
        if !observer.permit(index) {
            return;
        }
        verdict.fired += 1;
        match &self.fault {
            Fault::Latency(latency) => {
                let delay = latency.sample(&mut stream_for(word));
                verdict.added_latency = verdict.added_latency.saturating_add(delay);
            }
            Fault::Error(kind) => {
                verdict.failure = Some(Box::new(Failure::Error {
                    rule: index,
                    kind: kind.clone(),
                }));
            }
            Fault::Hang { buffer } => {
                verdict.failure = Some(Box::new(Failure::Hang {
                    rule: index,
                    buffer: *buffer,
                }));
            }
            Fault::Status(status) => {
                verdict.failure = Some(Box::new(Failure::Status {
                    rule: index,
                    status: *status,
                }));
            }
        }
        observer.injected(index, call);
    }

    #[inline]
    fn selects(&self, call: &Call<'_>) -> bool {
        self.service.matches(call.service)
            && self.operation.matches(call.operation)
            && self.site.matches(call.site)
            && (self.event.is_empty() || self.event_matches(call.event))
    }

    fn event_matches(&self, event: Option<&serde_json::Value>) -> bool {
        let Some(event) = event else {
            return false;
        };
        self.event.iter().all(|(path, test)| {
            let field = event.pointer(path);
            match test {
                CompiledTest::Exists(flag) => field.is_some() == *flag,
                CompiledTest::Equals(value) => field == Some(value),
                CompiledTest::Prefix(prefix) => field
                    .and_then(|f| f.as_str())
                    .is_some_and(|s| s.starts_with(prefix.as_str())),
                CompiledTest::Regex(regex) => field
                    .and_then(|f| f.as_str())
                    .is_some_and(|s| regex.is_match(s)),
            }
        })
    }

    fn expired(&self, now: Option<SystemTime>) -> bool {
        match (self.schedule.expires_at, now) {
            (Some(at), Some(now)) => now >= at,
            _ => false,
        }
    }
}

#[derive(Debug)]
enum CompiledTest {
    Equals(serde_json::Value),
    Exists(bool),
    Prefix(String),
    Regex(Regex),
}

/// A compiled glob. Plain names and `prefix*` / `*suffix` patterns skip the glob engine.
enum Pattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Glob(globset::GlobMatcher),
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::Exact(s) => write!(f, "Exact({s:?})"),
            Self::Prefix(s) => write!(f, "Prefix({s:?})"),
            Self::Suffix(s) => write!(f, "Suffix({s:?})"),
            Self::Glob(g) => write!(f, "Glob({:?})", g.glob().glob()),
        }
    }
}

impl Pattern {
    fn compile(glob: Option<&str>) -> Result<Self, String> {
        let Some(glob) = glob else {
            return Ok(Self::Any);
        };
        let is_meta = |c: char| matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\');
        if glob == "*" || glob == "**" {
            return Ok(Self::Any);
        }
        if !glob.contains(is_meta) {
            return Ok(Self::Exact(glob.to_owned()));
        }
        if let Some(prefix) = glob.strip_suffix('*') {
            if !prefix.contains(is_meta) {
                return Ok(Self::Prefix(prefix.to_owned()));
            }
        }
        if let Some(suffix) = glob.strip_prefix('*') {
            if !suffix.contains(is_meta) {
                return Ok(Self::Suffix(suffix.to_owned()));
            }
        }
        globset::Glob::new(glob)
            .map(|g| Self::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid glob {glob:?}: {e}"))
    }

    #[inline]
    fn matches(&self, text: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => s == text,
            Self::Prefix(p) => text.starts_with(p.as_str()),
            Self::Suffix(s) => text.ends_with(s.as_str()),
            Self::Glob(g) => g.is_match(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::ErrorKind;

    #[test]
    fn errors_name_rule_and_field() {
        let text = r#"
            [[rules]]
            name = "ok"
            fault = { error = "throttle" }

            [[rules]]
            name = "too-likely"
            fault = { error = "throttle" }
            probability = 1.5
        "#;
        let err = Plan::from_toml_str(text).unwrap_err();
        match &err {
            PlanError::Rule {
                index, name, field, ..
            } => {
                assert_eq!(
                    (*index, name.as_deref(), field.as_str()),
                    (1, Some("too-likely"), "probability")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("rules[1].probability"), "{err}");
    }

    #[test]
    fn parse_errors_carry_location_and_unknown_fields() {
        let err =
            Plan::from_toml_str("[[rules]]\nfault = { error = \"throttle\" }\nprobablity = 0.5\n")
                .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("probablity") && text.contains("line 3"),
            "{text}"
        );
        let err = Plan::from_toml_str("[[rules]]\nfault = { latency = \"-5ms\" }\n").unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }

    #[test]
    fn empty_window_bad_regex_bad_glob() {
        let base = "[[rules]]\nfault = { error = \"timeout\" }\n";
        let cases = [
            (
                "window = { start = \"1s\", duration = \"0s\" }",
                "window.duration",
            ),
            (
                "match.event = [{ path = \"/a\", regex = \"(\" }]",
                "match.event[0].regex",
            ),
            (
                "match.event = [{ path = \"a.b\", exists = true }]",
                "match.event[0].path",
            ),
            ("match = { site = \"a[\" }", "match.site"),
            ("every = 0", "every"),
        ];
        for (extra, field) in cases {
            let err = Plan::from_toml_str(&format!("{base}{extra}\n")).unwrap_err();
            match err {
                PlanError::Rule { field: f, .. } => assert_eq!(f, field, "{extra}"),
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let plan = Plan::new(1)
            .with_rule(Rule::error(ErrorKind::Throttle).named("same"))
            .with_rule(Rule::error(ErrorKind::Timeout).named("same"));
        match plan.compile().unwrap_err() {
            PlanError::Rule {
                index,
                field,
                message,
                ..
            } => {
                assert_eq!((index, field.as_str()), (1, "name"));
                assert!(message.contains("rule 0"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn first_failure_wins_and_latencies_add() {
        let plan = Plan::new(1)
            .with_rule(Rule::latency(crate::latency::LatencyDist::constant(
                Duration::from_millis(5),
            )))
            .with_rule(Rule::error(ErrorKind::Throttle).named("a"))
            .with_rule(Rule::latency(crate::latency::LatencyDist::constant(
                Duration::from_millis(7),
            )))
            .with_rule(Rule::error(ErrorKind::Timeout).named("b"));
        let compiled = plan.compile().unwrap();
        let counter = LocalMatchCounter::new(compiled.rule_count());
        let verdict = compiled.evaluate(&Call::new(9, "x"), Duration::ZERO, &counter);
        assert_eq!(verdict.added_latency, Duration::from_millis(12));
        assert_eq!(
            verdict.failure.as_deref(),
            Some(&Failure::Error {
                rule: 1,
                kind: ErrorKind::Throttle
            })
        );
        assert_eq!(verdict.fired, 3);
    }

    #[test]
    fn selectors_and_event_conditions() {
        let plan = Plan::new(1).with_rule(
            Rule::error(ErrorKind::Throttle)
                .for_service("dynamo*")
                .for_site("eu-*/checkout/*")
                .when_event("/tenant", EventTest::Equals(serde_json::json!("acme")))
                .when_event("/path", EventTest::Regex("^/orders/[0-9]+$".into())),
        );
        let compiled = plan.compile().unwrap();
        let counter = LocalMatchCounter::new(1);
        let hit = serde_json::json!({"tenant": "acme", "path": "/orders/12"});
        let miss = serde_json::json!({"tenant": "other", "path": "/orders/12"});
        let call = Call::new(1, "eu-west-1/checkout/orders").service("dynamodb");
        let at = Duration::ZERO;
        assert!(!compiled.evaluate(&call.event(&hit), at, &counter).is_pass());
        assert!(
            compiled
                .evaluate(&call.event(&miss), at, &counter)
                .is_pass()
        );
        assert!(
            compiled.evaluate(&call, at, &counter).is_pass(),
            "no event: conditions fail"
        );
        let other_region = Call::new(1, "us-east-1/checkout/orders")
            .service("dynamodb")
            .event(&hit);
        assert!(compiled.evaluate(&other_region, at, &counter).is_pass());
    }

    #[test]
    fn rules_sharing_a_selector_share_its_result() {
        let ms = Duration::from_millis;
        let plan = Plan::new(1)
            .with_rule(
                Rule::latency(crate::latency::LatencyDist::constant(ms(1))).for_service("dynamo*"),
            )
            .with_rule(
                Rule::latency(crate::latency::LatencyDist::constant(ms(10))).for_service("s3"),
            )
            .with_rule(
                Rule::latency(crate::latency::LatencyDist::constant(ms(100)))
                    .for_service("dynamo*"),
            )
            .with_rule(
                Rule::latency(crate::latency::LatencyDist::constant(ms(1000))).for_service("s3"),
            );
        let compiled = plan.compile().unwrap();
        let groups: Vec<usize> = compiled.rules.iter().map(|r| r.selector_group).collect();
        assert_eq!(groups, vec![0, 1, 0, 1]);
        let counter = LocalMatchCounter::new(4);
        let latency = |service| {
            compiled
                .evaluate(
                    &Call::new(1, "x").service(service),
                    Duration::ZERO,
                    &counter,
                )
                .added_latency
        };
        assert_eq!(latency("dynamodb"), ms(101));
        assert_eq!(latency("s3"), ms(1010));
        assert_eq!(latency("sqs"), Duration::ZERO);
    }

    #[test]
    fn expiry_applies_only_with_a_wall_clock() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let compiled = Plan::new(1)
            .with_rule(Rule::error(ErrorKind::Throttle).expiring_at(at))
            .compile()
            .unwrap();
        let counter = LocalMatchCounter::new(1);
        let call = Call::new(1, "s");
        let before = at - Duration::from_secs(1);
        assert!(
            !compiled
                .evaluate_at(&call, Duration::ZERO, before, &counter)
                .is_pass()
        );
        assert!(
            compiled
                .evaluate_at(&call, Duration::ZERO, at, &counter)
                .is_pass()
        );
        assert!(compiled.needs_wall_clock());
    }
}
