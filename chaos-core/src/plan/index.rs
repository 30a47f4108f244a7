//! Which rules an ad hoc call can match, found from its service with one hash and a table
//! lookup instead of testing every rule's selector.

use std::collections::BTreeMap;

use crate::decision::hash_str;

use super::rule::CompiledRule;
use super::selector::Pattern;

/// Past this many entries in all lists together, the index gives up narrowing (every call
/// gets every rule), so a plan of many services and many glob rules stays linear in memory.
const MAX_ENTRIES_PER_RULE: usize = 8;
const EMPTY: u32 = u32::MAX;

/// Rules by the exact service their selector names. A call's candidates are, in plan order,
/// the rules naming its service's hash and the rules naming no exact service (any service,
/// or a glob). The index only narrows: each candidate still tests its whole selector, so two
/// names of one hash cost a few extra tests, never a wrong decision.
#[derive(Clone, Debug, Default)]
pub(super) struct ServiceIndex {
    /// (hash of a service name, the candidates of a call to it in plan order).
    by_service: Box<[(u64, Box<[u32]>)]>,
    /// Open addressing over `by_service` (a power of two, at most half full): slot
    /// `hash & mask`, then the next; holds an index into `by_service`, or `EMPTY`.
    table: Box<[u32]>,
    /// The candidates of a call to a service no rule names exactly, in plan order.
    other: Box<[u32]>,
}

impl ServiceIndex {
    pub(super) fn new(rules: &[CompiledRule]) -> Self {
        // A plan of more than 2^32 rules does not fit in memory.
        let count = u32::try_from(rules.len()).unwrap_or(u32::MAX);
        let mut by_service: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (index, rule) in (0..count).zip(rules) {
            if let Pattern::Exact(service) = &rule.service {
                by_service.entry(hash_str(service)).or_default().push(index);
            }
        }
        let other: Vec<u32> = (0..count)
            .zip(rules)
            .filter(|(_, rule)| !matches!(rule.service, Pattern::Exact(_)))
            .map(|(index, _)| index)
            .collect();
        let entries = by_service
            .values()
            .map(|exact| exact.len() + other.len())
            .sum::<usize>();
        if by_service.is_empty() || entries > rules.len().saturating_mul(MAX_ENTRIES_PER_RULE) {
            return Self {
                by_service: Box::new([]),
                table: Box::new([]),
                other: (0..count).collect(),
            };
        }
        let by_service: Box<[(u64, Box<[u32]>)]> = by_service
            .into_iter()
            .map(|(hash, mut candidates)| {
                candidates.extend_from_slice(&other);
                candidates.sort_unstable();
                (hash, candidates.into_boxed_slice())
            })
            .collect();
        let mut table = vec![EMPTY; (by_service.len() * 2).next_power_of_two()];
        let mask = table.len() - 1;
        for (position, (hash, _)) in (0..u32::MAX).zip(by_service.iter()) {
            let mut slot = (*hash as usize) & mask;
            while table.get(slot).is_some_and(|&taken| taken != EMPTY) {
                slot = (slot + 1) & mask;
            }
            if let Some(free) = table.get_mut(slot) {
                *free = position;
            }
        }
        Self {
            by_service,
            table: table.into_boxed_slice(),
            other: other.into_boxed_slice(),
        }
    }

    /// The candidates of a call to `service`, in plan order.
    #[inline]
    pub(super) fn candidates(&self, service: &str) -> &[u32] {
        if self.by_service.is_empty() {
            return &self.other;
        }
        let hash = hash_str(service);
        let mask = self.table.len() - 1;
        let mut slot = (hash as usize) & mask;
        // At most half full: an empty slot ends every probe.
        while let Some(&position) = self.table.get(slot) {
            match self.by_service.get(position as usize) {
                Some((found, candidates)) if *found == hash => return candidates,
                Some(_) => slot = (slot + 1) & mask,
                None => break,
            }
        }
        &self.other
    }
}
