//! Rules: a fault, which calls it applies to, how often it fires, and when.
//!
//! A rule is `fault + selector + trigger + schedule`. In a plan or scenario file:
//!
//! ```toml
//! [[rules]]
//! name = "orders-throttle"                 # optional; keys the rule's decisions (see below)
//! fault = { error = "throttle" }
//! match = { service = "orders", operation = "Put*", site = "checkout/*" }   # globs; absent = any
//! # HTTP layers: the route template the request matched, compared literally (braces are the
//! # router's, not glob alternation): `match = { route = "/orders/{id}" }`.
//! probability = 0.2                        # trigger: each matching call rolls independently
//! after = 100                              # optional: only after the first 100 matching calls
//! window = { start = "2m", duration = "3m" }   # relative to the injector's (or simulation's) start
//! ramp_up = "1m"                           # the probability grows linearly from 0 over the first minute
//! expires_at = "2026-12-01T00:00:00Z"      # absolute expiry (live injectors only)
//!
//! [[rules]]
//! fault = { status = 503 }
//! every = 10                               # every 10th matching call
//! # Conditions on a handler's event (JSON pointer paths); all must hold.
//! match.event = [
//!   { path = "/detail/tenant", equals = "acme" },
//!   { path = "/headers/x-chaos", exists = true },
//!   { path = "/path", prefix = "/checkout" },
//!   { path = "/path", regex = "^/orders/[0-9]+$" },
//! ]
//! ```
//!
//! The triggers combine: a call fires when every counting condition (`every`, `first`, `after`)
//! holds for its ordinal among the rule's matching calls *and* its probability roll succeeds.
//! The probability roll is order-independent (a pure function of the call); the counting
//! conditions count calls in arrival order, so under concurrency they are exact in number but
//! not in which call they pick.
//!
//! A named rule's decisions are keyed by its name, an unnamed rule's by its index in the plan:
//! name rules whose decisions must not move when rules are added before them.
//!
//! # Defaults: what an omitted field means
//!
//! A rule in a file needs `fault` and a trigger: `probability`, or a counting trigger
//! (`every`, `first`, `after`). A rule with no trigger is rejected, with the fix in the error:
//! an omitted trigger used to mean "every call", so one forgotten line in a plan pushed to
//! live configuration faulted all traffic. Everything else may be left out:
//!
//! | Field         | When omitted                                                           |
//! |---------------|------------------------------------------------------------------------|
//! | `probability` | an error, unless `every`, `first` or `after` is set: then `1.0`        |
//! | `match`       | every site, service and operation; no event condition                  |
//! | `every`, `first`, `after` | no counting condition                                      |
//! | `window`      | active from the start, for ever (`start` alone defaults to `0s`)       |
//! | `ramp_up`     | full probability at once                                               |
//! | `expires_at`  | never expires                                                          |
//! | `name`        | none: the rule is labelled `#index` and its decisions keyed by index   |
//!
//! So `fault = { error = "throttle" }` with `probability = 1.0` and no `match` throttles every
//! call the injector (or simulator) sees: write `match` for anything but a deliberate blanket
//! fault.
//!
//! Code is explicit by construction: [`Rule::new`] and the other constructors start at
//! probability `1.0` with the other defaults above. Boundaries: a window
//! is active from `start` (inclusive) to `start + duration` (exclusive); a ramp reaches the
//! full probability at `start + ramp_up`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::duration::{serde_duration, serde_duration_opt};
use crate::fault::{ErrorKind, Fault};
use crate::latency::LatencyDist;

/// A rule: a fault, which calls it applies to, how often, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleRepr", into = "RuleRepr")]
pub struct Rule {
    /// A name, shown in counters and traces, and the key of the rule's decisions.
    pub name: Option<String>,
    /// What happens when the rule fires.
    pub fault: Fault,
    /// Which calls the rule applies to.
    pub selector: Selector,
    /// How often it fires among the calls it applies to.
    pub trigger: Trigger,
    /// When it is active.
    pub schedule: Schedule,
}

/// Which calls a rule applies to. Every part that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Glob over the call site, such as `"checkout/*"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Glob over the service, such as `"dynamodb"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Glob over the operation, such as `"Put*"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The route template an HTTP request matched, such as `"/orders/{id}"`, compared
    /// literally: braces are the template's, not glob alternation. A trailing `*` outside
    /// braces matches any route with that prefix (`"/orders/*"`); `"*"` matches any route.
    /// Calls with no route (`""`: not HTTP, or no router) match only `"*"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Conditions on the handler's event; all must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event: Vec<EventCondition>,
}

/// A condition on a field of a handler's JSON event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EventConditionRepr", into = "EventConditionRepr")]
pub struct EventCondition {
    /// A JSON pointer (RFC 6901), such as `"/detail/tenant"`.
    pub path: String,
    /// The test applied to the field at `path`.
    pub test: EventTest,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventConditionRepr {
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
}

impl TryFrom<EventConditionRepr> for EventCondition {
    type Error = String;

    fn try_from(repr: EventConditionRepr) -> Result<Self, String> {
        let path = repr.path;
        let tests = [
            repr.equals.map(EventTest::Equals),
            repr.exists.map(EventTest::Exists),
            repr.prefix.map(EventTest::Prefix),
            repr.regex.map(EventTest::Regex),
        ];
        let mut set = tests.into_iter().flatten();
        match (set.next(), set.next()) {
            (Some(test), None) => Ok(Self { path, test }),
            _ => Err(format!(
                "event condition on {path:?} needs exactly one of `equals`, `exists`, `prefix`, `regex`"
            )),
        }
    }
}

impl From<EventCondition> for EventConditionRepr {
    fn from(condition: EventCondition) -> Self {
        let mut repr = Self {
            path: condition.path,
            equals: None,
            exists: None,
            prefix: None,
            regex: None,
        };
        match condition.test {
            EventTest::Equals(value) => repr.equals = Some(value),
            EventTest::Exists(flag) => repr.exists = Some(flag),
            EventTest::Prefix(prefix) => repr.prefix = Some(prefix),
            EventTest::Regex(regex) => repr.regex = Some(regex),
        }
        repr
    }
}

/// The test an [`EventCondition`] applies.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EventTest {
    /// The field equals this JSON value.
    Equals(serde_json::Value),
    /// The field is present (`true`) or absent (`false`).
    Exists(bool),
    /// The field is a string starting with this prefix.
    Prefix(String),
    /// The field is a string matching this regular expression.
    Regex(String),
}

/// How often a rule fires among the calls it applies to. All set parts must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// Probability that a matching call fires, in `[0, 1]`. Defaults to `1.0` (every
    /// matching call) when omitted.
    pub probability: f64,
    /// Fire on every n-th matching call (the n-th, 2n-th, ...).
    pub every: Option<u64>,
    /// Fire only on the first n matching calls.
    pub first: Option<u64>,
    /// Fire only after the first n matching calls.
    pub after: Option<u64>,
}

impl Default for Trigger {
    fn default() -> Self {
        Self {
            probability: 1.0,
            every: None,
            first: None,
            after: None,
        }
    }
}

impl Trigger {
    /// Whether any counting condition is set (these need a per-rule call counter).
    pub fn counts_calls(&self) -> bool {
        self.every.is_some() || self.first.is_some() || self.after.is_some()
    }

    /// Whether the counting conditions admit the call with this 0-based ordinal.
    pub fn admits_ordinal(&self, ordinal: u64) -> bool {
        let position = ordinal.saturating_add(1);
        self.every
            .is_none_or(|n| n > 0 && position.is_multiple_of(n))
            && self.first.is_none_or(|n| position <= n)
            && self.after.is_none_or(|n| position > n)
    }
}

/// When a rule is active.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    /// Start and length of the active window, relative to the injector's start. `None`: always.
    pub window: Option<Window>,
    /// The probability ramps linearly from 0 at the window's start (or the injector's start) to
    /// its full value over this long.
    pub ramp_up: Option<Duration>,
    /// Absolute time after which the rule is off. Only live injectors have a wall clock; the
    /// simulator ignores it.
    pub expires_at: Option<SystemTime>,
}

/// An active window relative to the injector's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// When the window opens.
    #[serde(with = "serde_duration", default = "zero")]
    pub start: Duration,
    /// How long it stays open; `None`: until the end.
    #[serde(
        with = "serde_duration_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
}

fn zero() -> Duration {
    Duration::ZERO
}

impl Schedule {
    /// The factor (0 to 1) applied to the probability at `elapsed`; 0 outside the window.
    pub fn intensity(&self, elapsed: Duration) -> f64 {
        let start = match self.window {
            Some(Window { start, duration }) => {
                if elapsed < start || duration.is_some_and(|d| elapsed >= start.saturating_add(d)) {
                    return 0.0;
                }
                start
            }
            None => Duration::ZERO,
        };
        match self.ramp_up {
            Some(ramp) if !ramp.is_zero() => {
                ((elapsed - start).as_secs_f64() / ramp.as_secs_f64()).min(1.0)
            }
            _ => 1.0,
        }
    }

    /// Whether the schedule depends on elapsed time.
    pub fn is_timed(&self) -> bool {
        self.window.is_some() || self.ramp_up.is_some()
    }
}

impl Rule {
    /// A rule that applies `fault` to every call, always. Narrow it with the builder methods.
    ///
    /// ```
    /// use std::time::Duration;
    /// use chaos_core::{fault::{ErrorKind, Fault}, rule::Rule};
    /// let rule = Rule::new(Fault::Error(ErrorKind::Throttle))
    ///     .named("orders-throttle")
    ///     .for_service("orders")
    ///     .with_probability(0.2)
    ///     .during(Duration::from_secs(120), Duration::from_secs(180));
    /// assert_eq!(rule.trigger.probability, 0.2);
    /// ```
    pub fn new(fault: Fault) -> Self {
        Self {
            name: None,
            fault,
            selector: Selector::default(),
            trigger: Trigger::default(),
            schedule: Schedule::default(),
        }
    }

    /// A latency rule.
    pub fn latency(latency: LatencyDist) -> Self {
        Self::new(Fault::Latency(latency))
    }

    /// An error rule.
    pub fn error(kind: ErrorKind) -> Self {
        Self::new(Fault::Error(kind))
    }

    /// A partition: calls decided from `start` for `duration` (since the injector's or the
    /// simulation's start) are held in the network until the window ends, then delivered.
    ///
    /// ```
    /// use std::time::Duration;
    /// use chaos_core::{Call, Plan, rule::Rule};
    /// use chaos_core::advanced::LocalMatchCounter;
    /// let plan = Plan::new(1)
    ///     .with_rule(Rule::partition(Duration::from_secs(60), Duration::from_secs(30)))
    ///     .compile()?;
    /// let at = |s| plan.evaluate(&Call::new(7, "orders"), Duration::from_secs(s), &LocalMatchCounter::new(1));
    /// assert_eq!(at(70).partition_hold, Duration::from_secs(20));
    /// assert!(at(90).is_pass());
    /// # Ok::<(), chaos_core::PlanError>(())
    /// ```
    pub fn partition(start: Duration, duration: Duration) -> Self {
        Self::new(Fault::Partition).during(start, duration)
    }

    /// Names the rule.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Applies only to call sites matching the glob.
    pub fn for_site(mut self, glob: impl Into<String>) -> Self {
        self.selector.site = Some(glob.into());
        self
    }

    /// Applies only to services matching the glob.
    pub fn for_service(mut self, glob: impl Into<String>) -> Self {
        self.selector.service = Some(glob.into());
        self
    }

    /// Applies only to operations matching the glob.
    pub fn for_operation(mut self, glob: impl Into<String>) -> Self {
        self.selector.operation = Some(glob.into());
        self
    }

    /// Applies only to HTTP requests that matched the route template, such as
    /// `"/orders/{id}"` (compared literally; see [`Selector::route`]).
    pub fn for_route(mut self, route: impl Into<String>) -> Self {
        self.selector.route = Some(route.into());
        self
    }

    /// Adds a condition on the handler's event.
    pub fn when_event(mut self, path: impl Into<String>, test: EventTest) -> Self {
        self.selector.event.push(EventCondition {
            path: path.into(),
            test,
        });
        self
    }

    /// Fires with this probability (validated when the plan is compiled).
    pub fn with_probability(mut self, probability: f64) -> Self {
        self.trigger.probability = probability;
        self
    }

    /// Fires on every n-th matching call.
    pub fn every(mut self, n: u64) -> Self {
        self.trigger.every = Some(n);
        self
    }

    /// Fires only on the first n matching calls.
    pub fn first(mut self, n: u64) -> Self {
        self.trigger.first = Some(n);
        self
    }

    /// Fires only after the first n matching calls.
    pub fn after(mut self, n: u64) -> Self {
        self.trigger.after = Some(n);
        self
    }

    /// Active from `start` for `duration`, relative to the injector's start.
    pub fn during(mut self, start: Duration, duration: Duration) -> Self {
        self.schedule.window = Some(Window {
            start,
            duration: Some(duration),
        });
        self
    }

    /// Active from `start` on.
    pub fn starting_at(mut self, start: Duration) -> Self {
        self.schedule.window = Some(Window {
            start,
            duration: None,
        });
        self
    }

    /// Ramps the probability up linearly over `ramp`.
    pub fn ramping_up_over(mut self, ramp: Duration) -> Self {
        self.schedule.ramp_up = Some(ramp);
        self
    }

    /// Switches the rule off at an absolute time.
    pub fn expiring_at(mut self, at: SystemTime) -> Self {
        self.schedule.expires_at = Some(at);
        self
    }

    /// The label used in counters and traces: the name, or `#index`.
    pub fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("#{index}"))
    }
}

// ---- file format: one flat table per rule ----

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    fault: Fault,
    #[serde(default, rename = "match", skip_serializing_if = "selector_is_any")]
    selector: Selector,
    /// Required unless a counting trigger says how often the rule fires: see [`MISSING_TRIGGER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<Window>,
    #[serde(
        default,
        with = "serde_duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    ramp_up: Option<Duration>,
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    expires_at: Option<SystemTime>,
}

/// Why a rule in a file must say how often it fires: an omitted trigger used to mean "every
/// call", so a plan pushed to live configuration with a forgotten `probability` faulted all
/// traffic. Files now state it; code that builds a [`Rule`] keeps the `1.0` default.
const MISSING_TRIGGER: &str = "a rule must say how often it fires: add `probability` \
    (e.g. `probability = 0.05`; `probability = 1.0` fires on every matching call), or a \
    counting trigger (`every`, `first` or `after`)";

fn selector_is_any(selector: &Selector) -> bool {
    *selector == Selector::default()
}

impl TryFrom<RuleRepr> for Rule {
    type Error = &'static str;

    fn try_from(repr: RuleRepr) -> Result<Self, Self::Error> {
        let counts = repr.every.is_some() || repr.first.is_some() || repr.after.is_some();
        if repr.probability.is_none() && !counts {
            return Err(MISSING_TRIGGER);
        }
        // Range checks (probability, windows, globs, regexes) happen when the plan is
        // compiled, where the error can name the rule's index and the field.
        Ok(Self {
            name: repr.name,
            fault: repr.fault,
            selector: repr.selector,
            trigger: Trigger {
                probability: repr.probability.unwrap_or(1.0),
                every: repr.every,
                first: repr.first,
                after: repr.after,
            },
            schedule: Schedule {
                window: repr.window,
                ramp_up: repr.ramp_up,
                expires_at: repr.expires_at,
            },
        })
    }
}

impl From<Rule> for RuleRepr {
    fn from(rule: Rule) -> Self {
        Self {
            name: rule.name,
            fault: rule.fault,
            selector: rule.selector,
            // Written unless a counting trigger already says how often (and it is 1.0), so
            // the written form reads back.
            probability: (rule.trigger.probability != 1.0 || !rule.trigger.counts_calls())
                .then_some(rule.trigger.probability),
            every: rule.trigger.every,
            first: rule.trigger.first,
            after: rule.trigger.after,
            window: rule.schedule.window,
            ramp_up: rule.schedule.ramp_up,
            expires_at: rule.schedule.expires_at,
        }
    }
}

mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(at) => serializer.serialize_some(&humantime::format_rfc3339(*at).to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| {
            humantime::parse_rfc3339_weak(&t).map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid time {t:?}: {e}; expected RFC 3339, such as \"2026-12-01T00:00:00Z\""
                ))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests;
