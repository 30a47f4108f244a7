//! Which rules an ad hoc call can match, found from its service with one hash and a binary
//! search instead of testing every rule's selector.

use std::collections::BTreeMap;

use crate::decision::hash_str;

use super::rule::CompiledRule;
use super::selector::Pattern;

/// Rules by the exact service their selector names. A call's candidates are the rules of its
/// service's hash merged, in plan order, with the rules that name no exact service (any
/// service, or a glob). The index only narrows: each candidate still tests its whole
/// selector, so two names of one hash cost a few extra tests, never a wrong decision.
#[derive(Clone, Debug, Default)]
pub(super) struct ServiceIndex {
    /// (hash of a service name, rules naming exactly that service in plan order), by hash.
    by_service: Box<[(u64, Box<[u32]>)]>,
    /// Rules naming no exact service, in plan order.
    other: Box<[u32]>,
}

impl ServiceIndex {
    pub(super) fn new(rules: &[CompiledRule]) -> Self {
        let mut by_service: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        let mut other = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            // A plan of more than 2^32 rules does not fit in memory.
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            match &rule.service {
                Pattern::Exact(service) => {
                    by_service.entry(hash_str(service)).or_default().push(index)
                }
                _ => other.push(index),
            }
        }
        Self {
            by_service: by_service
                .into_iter()
                .map(|(hash, rules)| (hash, rules.into_boxed_slice()))
                .collect(),
            other: other.into_boxed_slice(),
        }
    }

    /// The candidates of a call to `service`: two lists in plan order, disjoint, to be merged.
    #[inline]
    pub(super) fn candidates(&self, service: &str) -> (&[u32], &[u32]) {
        if self.by_service.is_empty() {
            return (&[], &self.other);
        }
        let hash = hash_str(service);
        let exact = self
            .by_service
            .binary_search_by_key(&hash, |(hash, _)| *hash)
            .ok()
            .and_then(|found| self.by_service.get(found))
            .map_or(&[][..], |(_, rules)| rules);
        (exact, &self.other)
    }
}

/// Walks two ascending, disjoint lists of rule indices in ascending order.
pub(super) struct Merged<'a> {
    pub(super) left: &'a [u32],
    pub(super) right: &'a [u32],
}

impl Iterator for Merged<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        let take_left = match (self.left.first(), self.right.first()) {
            (Some(left), Some(right)) => left < right,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_left {
            &mut self.left
        } else {
            &mut self.right
        };
        let (&first, rest) = list.split_first()?;
        *list = rest;
        Some(first as usize)
    }
}

/// A call's candidate rules: one list walked as it is, or two merged.
pub(super) enum Candidates<'a> {
    One(std::slice::Iter<'a, u32>),
    Merged(Merged<'a>),
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            Self::One(rules) => rules.next().map(|&index| index as usize),
            Self::Merged(merged) => merged.next(),
        }
    }
}
