//! One rule, checked and compiled: its selector, trigger, schedule and fault.

use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::corrupt::Corruption;
use crate::decision::{DecisionKey, Probability, hash_str, mix64, stream_for};
use crate::fault::Fault;
use crate::rule::{EventTest, Rule};

use super::PlanError;
use super::call::Call;
use super::compiled::Observer;
use super::counter::MatchCounter;
use super::selector::{CompiledTest, Pattern, glob_never_matches, route_never_matches};
use super::verdict::{Failure, Verdict};

/// Why a partition needs a window with an end: it delivers what it held when the window ends.
const PARTITION_NEEDS_END: &str = "a partition holds calls until its window ends, then \
    delivers them: give the rule a window with a duration, such as \
    `window = { start = \"2m\", duration = \"30s\" }`";

/// Salt of a corruption's seed (the fractional digits of sqrt 3).
const CORRUPTION_SALT: u64 = 0xbb67_ae85_84ca_a73b;

#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    pub(super) label: String,
    pub(super) key: DecisionKey,
    pub(super) fault: Fault,
    /// The fault fails the call (anything but latency).
    pub(super) failing: bool,
    /// No selector part is set: skip matching.
    pub(super) selects_any_call: bool,
    /// Index of the first rule with the same selector.
    pub(super) selector_group: usize,
    /// No schedule, expiry or counting condition: only the probability roll.
    pub(super) plain: bool,
    pub(super) site: Pattern,
    pub(super) service: Pattern,
    pub(super) operation: Pattern,
    /// The route template (per request: a resolved site keeps the rule as a "full" candidate).
    pub(super) route: Pattern,
    /// The selector has a route or event condition: per-call parts to test.
    pub(super) per_call: bool,
    pub(super) event: Vec<(String, CompiledTest)>,
    pub(super) probability: Probability,
    /// [`Probability::partial_bound`] of `probability`, for the short path's rolls.
    pub(super) roll_bound: u64,
    pub(super) trigger: crate::rule::Trigger,
    pub(super) counts_calls: bool,
    pub(super) schedule: crate::rule::Schedule,
    pub(super) timed: bool,
    /// A partition's window end (since the schedule's origin): it holds calls until then.
    pub(super) partition_end: Duration,
}

impl CompiledRule {
    pub(super) fn new(seed: u64, index: usize, rule: &Rule) -> Result<Self, PlanError> {
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
        if let Some(window) = rule.schedule.window
            && window.duration.is_some_and(|d| d.is_zero())
        {
            return Err(fail(
                    "window.duration",
                    "the window is empty; give a duration above zero, or omit it for an open-ended window"
                        .to_owned(),
                ));
        }
        let partition_end = match (&rule.fault, rule.schedule.window) {
            (Fault::Partition, Some(window)) => window.start.saturating_add(
                window
                    .duration
                    .ok_or_else(|| fail("window.duration", PARTITION_NEEDS_END.to_owned()))?,
            ),
            (Fault::Partition, None) => {
                return Err(fail("window", PARTITION_NEEDS_END.to_owned()));
            }
            _ => Duration::ZERO,
        };
        if let Fault::Status(status) = rule.fault
            && !(100..=599).contains(&status)
        {
            return Err(fail(
                "fault.status",
                format!("{status} is not an HTTP status; expected 100 to 599"),
            ));
        }
        if let Some(name) = &rule.name
            && name.trim().is_empty()
        {
            return Err(fail(
                "name",
                "is empty; give the rule a name or omit the field".to_owned(),
            ));
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
        let route = Pattern::compile_route(rule.selector.route.as_deref());
        let selects_any_call = [&site, &service, &operation, &route]
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
            per_call: !matches!(route, Pattern::Any) || !event.is_empty(),
            route,
            event,
            roll_bound: probability.partial_bound(),
            probability,
            counts_calls: rule.trigger.counts_calls(),
            trigger: rule.trigger.clone(),
            timed: rule.schedule.is_timed(),
            schedule: rule.schedule.clone(),
            partition_end,
        })
    }

    /// The schedule, expiry and counting conditions of a rule that has any; returns the
    /// probability in force for this call, or `None` when the rule does not apply.
    #[inline(never)]
    pub(super) fn gate<O: Observer>(
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

    /// Applies a firing rule to the verdict, decided at `elapsed` since the schedule's origin
    /// (only a partition reads it; the plain paths, which have no clock, never hold one: a
    /// partition always has a window). Kept out of line: it runs for the few calls that
    /// fire, and inlining it would crowd the loop every call runs.
    #[cold]
    #[inline(never)]
    pub(super) fn fire<O: Observer>(
        &self,
        index: usize,
        word: u64,
        call: &Call<'_>,
        elapsed: Duration,
        verdict: &mut Verdict,
        observer: &mut O,
    ) {
        if !observer.permit(index) {
            return;
        }
        verdict.fired = verdict.fired.saturating_add(1);
        let mut added = Duration::ZERO;
        match &self.fault {
            Fault::Latency(latency) => {
                added = latency.sample(&mut stream_for(word));
                verdict.added_latency = verdict.added_latency.saturating_add(added);
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
            Fault::Partition => {
                // Held until the window ends; overlapping partitions hold until the last
                // one heals (the holds do not add, unlike latencies).
                added = self.partition_end.saturating_sub(elapsed);
                let hold = verdict.partition_hold.max(added);
                verdict.added_latency = verdict
                    .added_latency
                    .saturating_add(hold - verdict.partition_hold);
                verdict.partition_hold = hold;
            }
            Fault::Corrupt(mode) => {
                // A mix apart from the roll's and the latency stream's: the corruption's
                // draws are independent of both, and replay from the same decision inputs.
                verdict.failure = Some(Box::new(Failure::Corrupt {
                    rule: index,
                    corruption: Corruption::new(*mode, mix64(word ^ CORRUPTION_SALT)),
                }));
            }
        }
        observer.injected(index, call, added);
    }

    #[inline]
    pub(super) fn selects(&self, call: &Call<'_>) -> bool {
        self.service.matches(call.service)
            && self.operation.matches(call.operation)
            && self.site.matches(call.site)
            && (!self.per_call || self.per_call_matches(call))
    }

    /// The selector's per-call parts (route, event conditions), which a resolved site cannot
    /// decide ahead. Out of line: most rules have none, and the selector test every call
    /// runs stays as small as it was before routes.
    #[inline(never)]
    pub(super) fn per_call_matches(&self, call: &Call<'_>) -> bool {
        self.route.matches(call.route) && (self.event.is_empty() || self.event_matches(call.event))
    }

    /// Whether the selector looks at anything a call site does not fix (route, event).
    pub(super) fn selects_per_call(&self) -> bool {
        self.per_call
    }

    /// Selector parts that can never match what their field holds, as `(field, why)`.
    pub(super) fn selector_warnings(rule: &Rule) -> Vec<(&'static str, String)> {
        let selector = &rule.selector;
        let globs = [
            ("match.site", &selector.site),
            ("match.service", &selector.service),
            ("match.operation", &selector.operation),
        ];
        let mut warnings: Vec<_> = globs
            .into_iter()
            .filter_map(|(field, glob)| Some((field, glob_never_matches(glob.as_deref()?)?)))
            .collect();
        if let Some(why) = selector.route.as_deref().and_then(route_never_matches) {
            warnings.push(("match.route", why));
        }
        warnings
    }

    pub(super) fn event_matches(&self, event: Option<&serde_json::Value>) -> bool {
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
