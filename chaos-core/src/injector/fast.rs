//! Each thread's table of single-roll sites: the fastest decision at a [`Site`](super::Site).
//!
//! Most sites have at most one rule that can match them, and a plain one (only its roll
//! decides). For those, a thread keeps in a fixed table, direct-mapped by the site's slot,
//! the site's token, the plan version it was resolved against, the rule's key and bound, and
//! the count of the calls it passed. Deciding there reads a thread-local that needs no
//! borrow flag and no destructor check (a `Cell` of a reference, set up once per thread),
//! then one entry of the table: no `RefCell`, no pointer chase to a tally.
//!
//! The table is leaked once per thread that decides at a site, and handed to the next thread
//! when its thread ends, so threads that come and go reuse a few tables. Its entries are
//! atomics (only the owning thread writes them, with plain loads and stores): a snapshot on
//! another thread reads the counts through the [`SiteTally`](super::counters::SiteTally)
//! that holds the entry. An entry is taken when a site's tally is made and given back when
//! that tally is retired, or given up to a newer tally (its count then moves into the
//! holder's own, under the holder's lock), so each count is in exactly one place.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::decision::{DecisionKey, Probability};

use super::counters::SiteTally;
use super::site::{self, Token};

/// Entries per thread: of sites whose slots share an entry (slots this far apart), the one
/// resolved last holds it, and the others decide on the general short path.
pub(super) const FAST_SITES: usize = 128;

/// One site where one plain rule at most can match, as the fastest path reads it.
#[repr(align(64))]
#[derive(Debug, Default)]
pub(super) struct FastSite {
    /// The site's token; 0 when the entry is free.
    token: AtomicU64,
    /// The version of the plan the site was resolved against.
    version: AtomicU64,
    /// The rule's [`DecisionKey`], or 0 for a site no rule can match (with a bound of 0, a
    /// roll that sends a call on only when its partial word is 0: one call in 2^64, which the
    /// general path then passes as it should).
    key: AtomicU64,
    /// The largest partial word that may fire ([`Probability::partial_bound`]).
    bound: AtomicU64,
    /// Calls passed here since the entry was taken; each was evaluated by the site's rule.
    calls: AtomicU64,
}

impl FastSite {
    /// Whether the call with `call_word` passes at the site with `token` under the plan at
    /// `version`, counting it if so; `false` (nothing counted) when the entry is another's
    /// or the roll may fire.
    #[inline(always)]
    fn passes(&self, version: u64, token: Token, call_word: u64) -> bool {
        if self.token.load(Ordering::Relaxed) != token
            || self.version.load(Ordering::Relaxed) != version
        {
            return false;
        }
        let key = DecisionKey::from_bits(self.key.load(Ordering::Relaxed));
        if key.partial_for_call_word(call_word) <= self.bound.load(Ordering::Relaxed) {
            return false;
        }
        self.calls.store(
            self.calls.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        true
    }

    /// The calls counted here.
    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Frees the entry, returning the calls it counted: the fastest path stops using it.
    /// Only the owning thread calls this.
    pub(super) fn release(&self) -> u64 {
        self.token.store(0, Ordering::Relaxed);
        self.version.store(0, Ordering::Relaxed);
        self.calls.swap(0, Ordering::Relaxed)
    }
}

/// One thread's entries, by slot modulo [`FAST_SITES`].
#[repr(align(128))]
#[derive(Debug)]
pub(super) struct FastSites([FastSite; FAST_SITES]);

/// A thread's table of single-roll sites, if it has one, and the tally that holds each
/// entry; kept in the thread's cache (only its thread reads it).
pub(super) struct FastHolders {
    table: Option<&'static FastSites>,
    /// By entry; a tally retired since may still be named (its entry was released with it).
    holders: Vec<Option<Arc<SiteTally>>>,
}

impl FastHolders {
    /// No table yet.
    pub(super) const NONE: Self = Self {
        table: None,
        holders: Vec::new(),
    };

    /// Takes the entry of the site with `token` for the plan at `version` (see
    /// [`FastSites::take`]). A tally holding it gives it up: the newest resolution decides
    /// fastest, and since each resolution takes the entry once, two plans (or two sites
    /// whose slots share the entry) never trade it back and forth.
    pub(super) fn take(
        &mut self,
        token: Token,
        version: u64,
        rule: Option<(DecisionKey, Probability)>,
    ) -> Option<&'static FastSite> {
        let table = FastSites::for_this_thread(&mut self.table);
        let index = entry_index(token);
        if let Some(holder) = self.holders.get_mut(index).and_then(Option::take) {
            holder.give_up_fast_entry();
        }
        table.take(token, version, rule)
    }

    /// Notes that `tally` holds the entry of the site with `token`.
    pub(super) fn held_by(&mut self, token: Token, tally: &Arc<SiteTally>) {
        if self.holders.is_empty() {
            self.holders.resize_with(FAST_SITES, || None);
        }
        if let Some(holder) = self.holders.get_mut(entry_index(token)) {
            *holder = Some(Arc::clone(tally));
        }
    }

    /// The thread is ending (see [`FastSites::give_back`]).
    pub(super) fn give_back(&mut self) {
        self.holders.clear();
        FastSites::give_back(&mut self.table);
    }
}

/// The entry of a site's token.
#[inline(always)]
fn entry_index(token: Token) -> usize {
    site::slot_of(token) % FAST_SITES
}

/// Tables of threads that ended, for the next threads to take.
static SPARE_TABLES: Mutex<Vec<&'static FastSites>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's table, once it has one. A `Cell` of a reference, with a constant
    /// initializer: reading it is one load, with no borrow flag and no destructor state.
    static THREAD_TABLE: Cell<Option<&'static FastSites>> = const { Cell::new(None) };
}

/// Whether the call passes at the site with `token` under the plan at `version`, by this
/// thread's table (counted there if so): `false` sends it on to the other paths.
#[inline(always)]
pub(super) fn passes(version: u64, token: Token, call_word: u64) -> bool {
    match THREAD_TABLE.get() {
        Some(table) => table.entry(token).passes(version, token, call_word),
        None => false,
    }
}

impl FastSites {
    /// The entry the site with `token` maps to.
    #[inline(always)]
    fn entry(&'static self, token: Token) -> &'static FastSite {
        &self.0[entry_index(token)]
    }

    /// This thread's table, taking one (a spare, or a new one) on first use. Only the owner
    /// of the thread's cache calls this, and keeps the result to hand back with
    /// [`give_back`](Self::give_back) when the thread ends.
    fn for_this_thread(held: &mut Option<&'static Self>) -> &'static Self {
        if let Some(table) = *held {
            return table;
        }
        let spare = SPARE_TABLES.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let table = spare.unwrap_or_else(|| {
            #[cfg(test)]
            TABLES_MADE.fetch_add(1, Ordering::Relaxed);
            Box::leak(Box::new(Self(std::array::from_fn(|_| FastSite::default()))))
        });
        *held = Some(table);
        THREAD_TABLE.set(Some(table));
        table
    }

    /// Takes the entry of the site with `token` for the plan at `version`, with one plain
    /// rule (its key and probability) or none: `None` when another site or plan holds it.
    fn take(
        &'static self,
        token: Token,
        version: u64,
        rule: Option<(DecisionKey, Probability)>,
    ) -> Option<&'static FastSite> {
        let entry = self.entry(token);
        if entry.token.load(Ordering::Relaxed) != 0 {
            return None;
        }
        let (key, bound) = rule.map_or((0, 0), |(key, probability)| {
            (key.to_bits(), probability.partial_bound())
        });
        entry.key.store(key, Ordering::Relaxed);
        entry.bound.store(bound, Ordering::Relaxed);
        entry.version.store(version, Ordering::Relaxed);
        entry.calls.store(0, Ordering::Relaxed);
        entry.token.store(token, Ordering::Relaxed);
        Some(entry)
    }

    /// The thread is ending: the fastest path stops reading the table, and the table goes to
    /// the spares. Every entry was released with its tally before (the thread's plans were
    /// dropped first); any left is freed, its count lost only if a tally was never retired.
    fn give_back(held: &mut Option<&'static Self>) {
        // Decisions from destructors that run later take the other paths.
        THREAD_TABLE.set(None);
        if let Some(table) = held.take() {
            // No assertion here: a panic in a thread-local destructor aborts the host.
            for entry in &table.0 {
                entry.release();
            }
            SPARE_TABLES
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(table);
        }
    }

    /// How many entries of this thread's table are held (tests).
    #[cfg(test)]
    pub(super) fn held_on_this_thread() -> usize {
        THREAD_TABLE.get().map_or(0, |table| {
            table
                .0
                .iter()
                .filter(|entry| entry.token.load(Ordering::Relaxed) != 0)
                .count()
        })
    }

    /// How many tables were ever made (tests).
    #[cfg(test)]
    pub(super) fn made() -> usize {
        TABLES_MADE.load(Ordering::Relaxed)
    }
}

/// Tables made so far, in this test process.
#[cfg(test)]
static TABLES_MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
