//! The compiled plan and the evaluation loop every decision runs.

use std::time::{Duration, SystemTime};

use crate::decision::{call_word, hash_str};
use crate::fault::Fault;

use std::path::Path;

use super::call::Call;
use super::counter::MatchCounter;
use super::index::ServiceIndex;
use super::rule::CompiledRule;
use super::selector::Pattern;
use super::verdict::Verdict;
use super::{IntoCompiledPlan, Plan, PlanError, PlanWarning};

/// Sees each rule's evaluation; the injector uses it for counters, guardrails and traces.
pub(crate) trait Observer {
    /// The rule applied to the call (selector matched, schedule active).
    fn evaluated(&mut self, rule: usize);
    /// The rule decided to fire; returning `false` vetoes it (a guardrail).
    fn permit(&mut self, rule: usize) -> bool;
    /// The rule fired and its fault is applied; `latency` is the delay it added (zero for
    /// faults that fail the call).
    fn injected(&mut self, rule: usize, call: &Call<'_>, latency: Duration);
}

pub(super) struct NoObserver;

impl Observer for NoObserver {
    fn evaluated(&mut self, _: usize) {}
    fn permit(&mut self, _: usize) -> bool {
        true
    }
    fn injected(&mut self, _: usize, _: &Call<'_>, _: Duration) {}
}

/// A checked plan, ready to decide calls. Cheap to share behind an `Arc`.
///
/// Parse a plan straight into this form ([`from_toml_str`](Self::from_toml_str),
/// [`from_json_str`](Self::from_json_str), [`from_file`](Self::from_file)) and hand it to an
/// injector, and it is compiled exactly once. It keeps the [`Plan`] it came from
/// ([`plan`](Self::plan)).
#[derive(Clone, Debug)]
pub struct CompiledPlan {
    /// Unique per compilation (clones share it: same rules), so a [`ResolvedSite`] knows
    /// which plan it belongs to.
    ///
    /// [`ResolvedSite`]: super::ResolvedSite
    pub(super) id: u64,
    pub(super) seed: u64,
    pub(super) rules: Vec<CompiledRule>,
    pub(super) needs_elapsed: bool,
    pub(super) needs_wall_clock: bool,
    /// No rule has a schedule, expiry or counting trigger: only selectors and rolls decide.
    #[cfg_attr(not(feature = "runtime"), allow(dead_code))]
    pub(super) all_plain: bool,
    /// Selectors that can never match, found at compile time.
    pub(super) warnings: Vec<PlanWarning>,
    /// Candidate rules by service, for ad hoc calls.
    pub(super) index: ServiceIndex,
    pub(super) source: Plan,
}

impl CompiledPlan {
    /// Parses a TOML plan, checks it and compiles it. Errors carry line and column, or the
    /// rule's index, name and field path (`rules[1].probability`).
    pub fn from_toml_str(text: &str) -> Result<Self, PlanError> {
        Plan::parse(text, "toml", None)?.into_compiled_plan()
    }

    /// Parses a JSON plan, checks it and compiles it.
    pub fn from_json_str(text: &str) -> Result<Self, PlanError> {
        Plan::parse(text, "json", None)?.into_compiled_plan()
    }

    /// Reads a plan file (`.json` as JSON, anything else as TOML), checks it and compiles it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PlanError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let format = if path.extension().is_some_and(|ext| ext == "json") {
            "json"
        } else {
            "toml"
        };
        Plan::parse(&text, format, Some(path))?.into_compiled_plan()
    }

    /// The plan this was compiled from.
    pub fn plan(&self) -> &Plan {
        &self.source
    }

    /// The plan this was compiled from, by value.
    pub fn into_plan(self) -> Plan {
        self.source
    }

    /// What in the plan is almost surely a mistake though valid, such as a selector that can
    /// never match (`operation = "GET /orders/{id}"`: braces are glob alternation there; the
    /// fix is `route = "/orders/{id}"`). Empty for a plan with nothing suspicious.
    ///
    /// ```
    /// use chaos_core::CompiledPlan;
    /// let plan = CompiledPlan::from_toml_str(r#"
    ///     [[rules]]
    ///     fault = { status = 503 }
    ///     probability = 1.0
    ///     match = { operation = "GET /orders/{id}" }
    /// "#)?;
    /// assert_eq!(plan.warnings()[0].field, "match.operation");
    /// # Ok::<(), chaos_core::PlanError>(())
    /// ```
    pub fn warnings(&self) -> &[PlanWarning] {
        &self.warnings
    }

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

    /// Whether any rule selects on the operation (`match.operation`): when none does, a caller
    /// may leave [`Call::operation`] empty, to the same verdicts (decisions never key on it), and
    /// skip building it (the HTTP layers skip formatting `"METHOD route"`).
    pub fn needs_operation(&self) -> bool {
        self.rules
            .iter()
            .any(|rule| !matches!(rule.operation, Pattern::Any))
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
        // Only the rules that can match the call's service, in plan order.
        for &index in self.index.candidates(call.service) {
            let index = index as usize;
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
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
                rule.fire(index, word, call, elapsed, &mut verdict, observer);
            }
        }
        verdict
    }
}

/// The injector's short path (the simulator decides with `evaluate`).
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
impl CompiledPlan {
    /// Whether only selectors and rolls decide (no schedule, expiry or counting trigger):
    /// [`first_admitted`](Self::first_admitted) applies.
    pub(crate) fn is_plain(&self) -> bool {
        self.all_plain
    }

    /// The first step of an ad hoc decision when [`is_plain`](Self::is_plain): tests the
    /// call's candidates in order, hands each rule that selects the call to `count`, and
    /// stops at the first whose roll may admit it, returning its position among the
    /// candidates and the call's word (`None`: nothing fires, every selecting rule was
    /// counted). A roll is settled on its partial word ([`Probability::partial_bound`]):
    /// "may admit" is exact but for about 2^-31 of words, which
    /// [`evaluate_plain_from`](Self::evaluate_plain_from), going on from there, decides on
    /// the full word.
    ///
    /// [`Probability::partial_bound`]: crate::decision::Probability::partial_bound
    #[inline]
    pub(crate) fn first_admitted(
        &self,
        call: &Call<'_>,
        mut count: impl FnMut(usize),
    ) -> Option<(usize, u64)> {
        let mut call_word_once = None;
        let mut last_group = LastGroup::default();
        for (position, &index) in self.index.candidates(call.service).iter().enumerate() {
            let index = index as usize;
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            if !last_group.selects(rule, call) {
                continue;
            }
            count(index);
            let call_word = *call_word_once.get_or_insert_with(|| call_word_of(call));
            if rule.key.partial_for_call_word(call_word) <= rule.roll_bound {
                return Some((position, call_word));
            }
        }
        None
    }

    /// The rest of a plain ad hoc decision from the candidate at `position`, the first that
    /// admitted the call (already counted): the verdict [`evaluate`](Self::evaluate) gives.
    /// Out of line: only calls that fire come here.
    #[cold]
    #[inline(never)]
    pub(crate) fn evaluate_plain_from<O: Observer>(
        &self,
        call: &Call<'_>,
        position: usize,
        call_word: u64,
        observer: &mut O,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let candidates = self.index.candidates(call.service);
        let rest = candidates.get(position..).unwrap_or_default();
        let mut last_group = LastGroup::default();
        for (offset, &index) in rest.iter().enumerate() {
            let index = index as usize;
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            if offset > 0 {
                if !last_group.selects(rule, call) {
                    continue;
                }
                observer.evaluated(index);
            }
            let word = rule.key.for_call_word(call_word);
            if rule.probability.admits(word) && !(rule.failing && verdict.failure.is_some()) {
                rule.fire(index, word, call, Duration::ZERO, &mut verdict, observer);
            }
        }
        verdict
    }
}

/// The part of every rule's decision word that depends on the call. Out of line: computed
/// once per call, and inlined it would keep the call's fields live (spilled) across the
/// rule loop of the short path.
#[inline(never)]
fn call_word_of(call: &Call<'_>) -> u64 {
    let site_hash = call.site_hash.unwrap_or_else(|| hash_str(call.site));
    call_word(call.request_key, site_hash, call.attempt)
}

/// The selector result of the last group of rules with one selector: plans often put runs
/// of rules on one service, which then test the call once.
struct LastGroup {
    group: usize,
    selected: bool,
}

impl Default for LastGroup {
    fn default() -> Self {
        Self {
            group: usize::MAX,
            selected: false,
        }
    }
}

impl LastGroup {
    #[inline]
    fn selects(&mut self, rule: &CompiledRule, call: &Call<'_>) -> bool {
        if rule.selects_any_call {
            return true;
        }
        if rule.selector_group != self.group {
            self.group = rule.selector_group;
            self.selected = selects_out_of_line(rule, call);
        }
        self.selected
    }
}

/// A rule's selector test, out of the short path's rule loop: inlined, it keeps the call's
/// names live (spilled) across a loop whose rules often select any call.
#[inline(never)]
fn selects_out_of_line(rule: &CompiledRule, call: &Call<'_>) -> bool {
    rule.selects(call)
}

pub(super) const SELECTOR_MEMO: usize = 64;
const UNKNOWN: u8 = 0;
const NOT_SELECTED: u8 = 1;
const SELECTED: u8 = 2;
