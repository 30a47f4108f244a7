//! Call sites resolved against a plan: the rules that can match a site, found once.
//!
//! A site's name, service and operation do not change from call to call, so the part of every
//! rule's selector that looks at them can be decided once per (site, plan). What is left per
//! call is the roll: one keyed mix and a comparison per candidate rule. Rules that need more
//! than the roll (route selectors and event conditions, which are per request, counting triggers, windows, ramps, expiries) stay
//! candidates marked "full", and take the same gate the ad hoc path takes.

use std::time::{Duration, SystemTime};

use crate::decision::{DecisionKey, Probability, call_word};

use super::call::{Call, CallSite};
use super::compiled::{CompiledPlan, NoObserver, Observer};
use super::counter::MatchCounter;
use super::verdict::Verdict;

/// The rules of one [`CompiledPlan`] that can match one [`CallSite`], in plan order, with
/// their decision keys and thresholds; made by [`CompiledPlan::resolve`].
///
/// Deciding a call with it ([`CompiledPlan::evaluate_resolved`]) gives exactly the verdict
/// [`CompiledPlan::evaluate`] gives the same call: the selector was decided ahead, the roll
/// is the same function of `(seed, rule, request key, site, attempt)`.
///
/// ```
/// use std::time::Duration;
/// use chaos_core::advanced::LocalMatchCounter;
/// use chaos_core::plan::{Call, CallSite, Plan};
/// use chaos_core::{Rule, fault::ErrorKind};
///
/// let plan = Plan::new(9)
///     .with_rule(Rule::error(ErrorKind::Throttle).for_service("dynamodb").with_probability(0.3))
///     .with_rule(Rule::error(ErrorKind::Throttle).for_service("s3").with_probability(0.3))
///     .compile()?;
/// const ORDERS: CallSite<'static> = CallSite::new("checkout/orders").service("dynamodb");
/// let resolved = plan.resolve(&ORDERS);
/// assert_eq!(resolved.candidate_count(), 1); // the s3 rule can never match here
/// let counter = LocalMatchCounter::new(plan.rule_count());
/// for key in 0..100 {
///     let call = Call::at(key, ORDERS);
///     assert_eq!(
///         plan.evaluate_resolved(&resolved, &call, Duration::ZERO, &counter),
///         plan.evaluate(&call, Duration::ZERO, &counter),
///     );
/// }
/// # Ok::<(), chaos_core::PlanError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ResolvedSite {
    /// The plan resolved against ([`CompiledPlan`]'s id); another plan falls back to the ad
    /// hoc path rather than decide with the wrong rules.
    plan: u64,
    site_hash: u64,
    candidates: Vec<Candidate>,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    key: DecisionKey,
    probability: Probability,
    rule: u32,
    /// The fault fails the call (anything but latency).
    failing: bool,
    /// Only the roll decides: no route or event condition, schedule, expiry or counting trigger.
    plain: bool,
}

impl ResolvedSite {
    /// A site no rule can match (resolved against no plan: deciding with it falls back to
    /// the ad hoc path).
    pub const EMPTY: Self = Self {
        plan: 0,
        site_hash: 0,
        candidates: Vec::new(),
    };

    /// How many rules can match calls at the site.
    pub fn candidate_count(&self) -> usize {
        self.candidates.len()
    }

    /// Whether no rule can match calls at the site: every call there passes.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    #[cfg(feature = "runtime")]
    /// Whether only the roll decides every candidate (no route or event condition, counting trigger,
    /// schedule or expiry): [`evaluate_plain`](Self::evaluate_plain) applies.
    pub(crate) fn is_plain(&self) -> bool {
        self.candidates.iter().all(|candidate| candidate.plain)
    }

    #[cfg(feature = "runtime")]
    /// The candidate rules' indices, in plan order (the injector's per-site counts).
    pub(crate) fn candidate_rules(&self) -> impl Iterator<Item = usize> + '_ {
        self.candidates
            .iter()
            .map(|candidate| candidate.rule as usize)
    }

    #[cfg(feature = "runtime")]
    /// Each candidate's decision key and probability, in plan order (the injector's short
    /// path, where [`is_plain`](Self::is_plain)).
    pub(crate) fn plain_rolls(&self) -> impl Iterator<Item = (DecisionKey, Probability)> + '_ {
        self.candidates
            .iter()
            .map(|candidate| (candidate.key, candidate.probability))
    }

    #[cfg(feature = "runtime")]
    /// The part of every candidate's decision word that depends on the call.
    #[inline]
    pub(crate) fn call_word(&self, request_key: u64, attempt: u32) -> u64 {
        call_word(request_key, self.site_hash, attempt)
    }

    #[cfg(feature = "runtime")]
    /// The first step of a decision when [`is_plain`](Self::is_plain): rolls the candidates
    /// in order, handing each rule it rolls to `count`, and stops at the first whose roll
    /// admits the call, returning its position (`None`: nothing fires, every candidate was
    /// counted). [`evaluate_plain_from`](Self::evaluate_plain_from) goes on from there.
    #[inline]
    pub(crate) fn first_admitted(
        &self,
        call_word: u64,
        mut count: impl FnMut(usize),
    ) -> Option<usize> {
        for (position, candidate) in self.candidates.iter().enumerate() {
            count(candidate.rule as usize);
            if candidate
                .probability
                .admits(candidate.key.for_call_word(call_word))
            {
                return Some(position);
            }
        }
        None
    }

    #[cfg(feature = "runtime")]
    /// The rest of a plain decision from the candidate at `position`, the first that
    /// admitted the call (already counted): the verdict [`CompiledPlan::evaluate_resolved`]
    /// gives. Out of line: only calls that fire come here.
    #[cold]
    #[inline(never)]
    pub(crate) fn evaluate_plain_from<O: Observer>(
        &self,
        plan: &CompiledPlan,
        position: usize,
        call_word: u64,
        call: &Call<'_>,
        observer: &mut O,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let rest = self.candidates.get(position..).unwrap_or_default();
        for (offset, candidate) in rest.iter().enumerate() {
            let index = candidate.rule as usize;
            if offset > 0 {
                observer.evaluated(index);
            }
            let word = candidate.key.for_call_word(call_word);
            if candidate.probability.admits(word)
                && !(candidate.failing && verdict.failure.is_some())
                && let Some(rule) = plan.rules.get(index)
            {
                rule.fire(index, word, call, Duration::ZERO, &mut verdict, observer);
            }
        }
        verdict
    }

    /// Whether this was resolved against `plan`.
    pub(crate) fn is_for(&self, plan: &CompiledPlan) -> bool {
        self.plan == plan.id
    }
}

impl Default for ResolvedSite {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl CompiledPlan {
    /// Finds, once, the rules that can match calls at `site` (its name, service and
    /// operation), so that deciding a call there ([`evaluate_resolved`](Self::evaluate_resolved))
    /// skips every other rule and every selector test.
    pub fn resolve(&self, site: &CallSite<'_>) -> ResolvedSite {
        let candidates = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| {
                rule.site.matches(site.name())
                    && rule.service.matches(site.service_name())
                    && rule.operation.matches(site.operation_name())
            })
            .filter_map(|(index, rule)| {
                Some(Candidate {
                    key: rule.key,
                    probability: rule.probability,
                    // Plans of more than 2^32 rules do not fit in memory.
                    rule: u32::try_from(index).ok()?,
                    failing: rule.failing,
                    plain: rule.plain && !rule.selects_per_call(),
                })
            })
            .collect();
        ResolvedSite {
            plan: self.id,
            site_hash: site.site_hash(),
            candidates,
        }
    }

    /// Decides a call made at a resolved site, at `elapsed` since the start: the same verdict
    /// as [`evaluate`](Self::evaluate), for less. The call's site, service and operation are
    /// not looked at again (make it with [`Call::at`] and the resolved [`CallSite`]); its
    /// request key, attempt and event are. A site resolved against another plan is decided
    /// the ad hoc way.
    pub fn evaluate_resolved(
        &self,
        site: &ResolvedSite,
        call: &Call<'_>,
        elapsed: Duration,
        counter: &dyn MatchCounter,
    ) -> Verdict {
        self.evaluate_resolved_observed(site, call, elapsed, None, counter, &mut NoObserver)
    }

    #[inline]
    pub(crate) fn evaluate_resolved_observed<O: Observer>(
        &self,
        site: &ResolvedSite,
        call: &Call<'_>,
        elapsed: Duration,
        now: Option<SystemTime>,
        counter: &dyn MatchCounter,
        observer: &mut O,
    ) -> Verdict {
        if !site.is_for(self) {
            return self.evaluate_observed(call, elapsed, now, counter, observer);
        }
        let mut verdict = Verdict::default();
        if site.candidates.is_empty() {
            return verdict;
        }
        let call_word = call_word(call.request_key, site.site_hash, call.attempt);
        for candidate in &*site.candidates {
            let index = candidate.rule as usize;
            let probability = if candidate.plain {
                observer.evaluated(index);
                candidate.probability
            } else {
                match self.rules.get(index) {
                    Some(rule) if rule.per_call_matches(call) => {
                        match rule.gate(index, elapsed, now, counter, observer) {
                            Some(probability) => probability,
                            None => continue,
                        }
                    }
                    _ => continue,
                }
            };
            let word = candidate.key.for_call_word(call_word);
            // As in the ad hoc loop: a failing rule that loses to an earlier failure counted
            // the call but is not applied.
            if probability.admits(word)
                && !(candidate.failing && verdict.failure.is_some())
                && let Some(rule) = self.rules.get(index)
            {
                rule.fire(index, word, call, elapsed, &mut verdict, observer);
            }
        }
        verdict
    }
}
