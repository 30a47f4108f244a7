//! The future-event list, ordered by `time << 64 | sequence`: a 4-ary min-heap while it holds
//! a few hundred events at most (it then sits in L1), a calendar of time slots in front of
//! small heaps beyond that.
//!
//! Keys are unique, so the order is exactly (time, then insertion). Most events fall a few
//! milliseconds ahead of the clock: those are appended to the bucket of their slot (a
//! `SLOT_NS`-wide span of time) in a ring covering the next `RING` slots, which costs a
//! `Vec::push`. Only the events of the current slot sit in a heap, a small one, so removing
//! the minimum walks two or three levels instead of the eight or nine of one heap holding
//! every event. Events beyond the ring wait in an overflow heap and move into the ring as it
//! advances. Whatever the workload, each part keeps the exact order: the current heap holds
//! every event of slots up to the current one, the ring only later slots, the overflow only
//! slots past the ring.

/// An entry with its ordering key.
pub(crate) trait Keyed: Copy {
    /// `time << 64 | sequence`.
    fn key(&self) -> u128;
}

pub(crate) struct QuadHeap<T> {
    items: Vec<T>,
}

impl<T: Keyed> QuadHeap<T> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Vec::with_capacity(capacity),
        }
    }

    #[inline]
    pub(crate) fn peek_key(&self) -> Option<u128> {
        self.items.first().map(Keyed::key)
    }

    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        self.items.push(item);
        let hole = self.items.len() - 1;
        sift_up(&mut self.items, hole, item);
    }

    /// Removes the minimum. Bottom-up: the hole left by the root descends along the smallest
    /// children to a leaf (three comparisons per level, none against the moved element), then
    /// the last element rises from there, which in an event list is rarely more than a level.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.items.pop()?;
        let items = &mut self.items[..];
        let len = items.len();
        let Some(&top) = items.first() else {
            return Some(last);
        };
        let mut hole = 0;
        loop {
            let first = 4 * hole + 1;
            if let Some(kids) = items.get(first..first + 4) {
                let (k0, k1, k2, k3) = (kids[0].key(), kids[1].key(), kids[2].key(), kids[3].key());
                let (a, ka) = if k1 < k0 { (1, k1) } else { (0, k0) };
                let (b, kb) = if k3 < k2 { (3, k3) } else { (2, k2) };
                let child = first + if kb < ka { b } else { a };
                items[hole] = items[child];
                hole = child;
            } else {
                // The last internal node may have fewer children; theirs are leaves.
                if first < len {
                    let mut child = first;
                    let mut child_key = items[first].key();
                    for (c, item) in items.iter().enumerate().take(len).skip(first + 1) {
                        let k = item.key();
                        if k < child_key {
                            child = c;
                            child_key = k;
                        }
                    }
                    items[hole] = items[child];
                    hole = child;
                }
                break;
            }
        }
        sift_up(items, hole, last);
        Some(top)
    }
}

/// Sorts the events of one slot by key, largest first. Up to `RANKED_MAX` of them are each
/// placed at their rank (how many keys are larger), counted with no data-dependent branch:
/// more instructions than an insertion sort, but an insertion sort of a handful of random
/// keys mispredicts about once per event, which costs more time than the comparisons.
fn sort_slot<T: Keyed>(items: &mut [T]) {
    let n = items.len();
    if n < 2 {
        return;
    }
    if n > RANKED_MAX {
        // Keys are unique, so an unstable sort gives one order.
        items.sort_unstable_by_key(|item| std::cmp::Reverse(item.key()));
        return;
    }
    let mut keys = [0u128; RANKED_MAX];
    let mut copy = [items[0]; RANKED_MAX];
    for ((k, c), item) in keys.iter_mut().zip(copy.iter_mut()).zip(items.iter()) {
        *k = item.key();
        *c = *item;
    }
    let keys = &keys[..n];
    for (i, &key) in keys.iter().enumerate() {
        let rank: usize = keys.iter().map(|&other| usize::from(other > key)).sum();
        items[rank] = copy[i];
    }
}

/// Moves `item` up from the hole at `hole` past every parent with a larger key, and puts it
/// where it stops.
#[inline]
fn sift_up<T: Keyed>(items: &mut [T], mut hole: usize, item: T) {
    let key = item.key();
    while hole > 0 {
        let parent = (hole - 1) / 4;
        let p = items[parent];
        if p.key() <= key {
            break;
        }
        items[hole] = p;
        hole = parent;
    }
    items[hole] = item;
}

/// The width of a slot: 2^19 ns (about half a millisecond), the scale of the latencies simulated.
const SLOT_SHIFT: u32 = 19;
/// Slots in the ring (a power of two): about a second ahead of the current slot.
const RING: usize = 2048;
const RING_WORDS: usize = RING / 64;
/// An empty bucket keeps at most this much capacity (events), so that the ring's idle memory
/// stays bounded (2,048 x 1,024 x 32 bytes at worst) after bursts.
const KEPT_BUCKET_CAPACITY: usize = 1024;

/// A slot of at most this many events is sorted by rank (`sort_slot`).
const RANKED_MAX: usize = 16;

/// `slot` while the queue is a plain heap: every event goes to `late`.
const HEAP_ONLY: u64 = u64::MAX;
/// A heap of up to a few hundred events sits in L1 and is cheaper than the calendar, whose
/// buckets touch more memory; past this many events the calendar pays off.
const CALENDAR_ABOVE: usize = 256;
/// Back to a plain heap below this many (apart from `CALENDAR_ABOVE`, so that a queue near
/// either size does not switch back and forth).
const HEAP_BELOW: usize = 64;

/// The engine's event queue. Keys must never go below the last key popped (an event loop
/// never schedules into the past); keys in slots already passed are still ordered exactly.
/// Small, it is one 4-ary heap (`late`, with `slot == HEAP_ONLY`); past `CALENDAR_ABOVE`
/// events it becomes the calendar, and below `HEAP_BELOW` a heap again.
pub(crate) struct EventQueue<T> {
    /// The events of the current slot when it became current, by key, largest first (the
    /// next event is the last element).
    current: Vec<T>,
    /// Events pushed into the current slot (or an earlier one) since it became current.
    late: QuadHeap<T>,
    /// The ring and the overflow, boxed: rarely touched while the queue is a heap, they stay
    /// out of the engine's hot state.
    ring: Box<Ring<T>>,
    /// The current slot.
    slot: u64,
    len: usize,
}

/// The calendar's slots past the current one.
struct Ring<T> {
    /// `buckets[s % RING]` holds the events of slot `s`, for `slot < s < slot + RING`.
    buckets: [Vec<T>; RING],
    /// Bit `i` set when `buckets[i]` is non-empty.
    occupied: [u64; RING_WORDS],
    /// Events of slots `slot + RING` and later.
    overflow: QuadHeap<T>,
}

#[inline]
fn slot_of(key: u128) -> u64 {
    ((key >> 64) as u64) >> SLOT_SHIFT
}

impl<T: Keyed> EventQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            current: Vec::with_capacity(64),
            late: QuadHeap::with_capacity(64),
            ring: Box::new(Ring {
                buckets: std::array::from_fn(|_| Vec::new()),
                occupied: [0; RING_WORDS],
                overflow: QuadHeap::with_capacity(64),
            }),
            slot: HEAP_ONLY,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, item: T) {
        self.len += 1;
        let slot = slot_of(item.key());
        if slot <= self.slot {
            self.late.push(item);
            if self.len > CALENDAR_ABOVE && self.slot == HEAP_ONLY {
                self.switch_to_calendar();
            }
        } else {
            self.place(item, slot);
        }
    }

    /// Puts an event of a slot after the current one in the ring or the overflow.
    #[inline(always)]
    fn place(&mut self, item: T, slot: u64) {
        if slot - self.slot < RING as u64 {
            let i = slot as usize % RING;
            // Marked on every push: a test for the first event would mispredict about once
            // per slot, which costs more than the extra store.
            self.ring.occupied[i / 64] |= 1 << (i % 64);
            self.ring.buckets[i].push(item);
        } else {
            self.ring.overflow.push(item);
        }
    }

    /// Whether the next event is in `late` rather than `current`; `None` when both are empty.
    #[inline]
    fn next_is_late(&self) -> Option<bool> {
        match (self.current.last(), self.late.peek_key()) {
            (Some(c), Some(l)) => Some(l < c.key()),
            (Some(_), None) => Some(false),
            (None, Some(_)) => Some(true),
            (None, None) => None,
        }
    }

    /// The heap becomes the calendar, its current slot that of the earliest event.
    #[cold]
    fn switch_to_calendar(&mut self) {
        let Some(first) = self.late.peek_key() else {
            return;
        };
        self.slot = slot_of(first);
        let mut items = std::mem::take(&mut self.late.items);
        for item in items.drain(..) {
            let slot = slot_of(item.key());
            if slot <= self.slot {
                self.late.push(item);
            } else {
                self.place(item, slot);
            }
        }
    }

    /// The calendar (its current slot done: `current` and `late` empty) becomes one heap.
    #[cold]
    fn switch_to_heap(&mut self) {
        for word in 0..RING_WORDS {
            while self.ring.occupied[word] != 0 {
                let i = word * 64 + self.ring.occupied[word].trailing_zeros() as usize;
                self.ring.occupied[word] &= self.ring.occupied[word] - 1;
                let mut bucket = std::mem::take(&mut self.ring.buckets[i]);
                for item in bucket.drain(..) {
                    self.late.push(item);
                }
                self.ring.buckets[i] = bucket;
            }
        }
        let mut overflow = std::mem::take(&mut self.ring.overflow.items);
        for item in overflow.drain(..) {
            self.late.push(item);
        }
        self.ring.overflow.items = overflow;
        self.slot = HEAP_ONLY;
    }

    /// `next_is_late`, first moving to the next occupied slot if the current one is done.
    #[inline]
    fn next_source(&mut self) -> Option<bool> {
        match self.next_is_late() {
            Some(late) => Some(late),
            None if self.advance() => self.next_is_late(),
            None => None,
        }
    }

    /// The smallest key (advancing to the next non-empty slot when the current one is done).
    #[cfg(test)]
    pub(crate) fn peek_key(&mut self) -> Option<u128> {
        let late = self.next_source()?;
        if late {
            self.late.peek_key()
        } else {
            self.current.last().map(Keyed::key)
        }
    }

    /// Removes the minimum.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.pop_if(|_| true)
    }

    /// Removes the minimum if `accept` takes its key; the queue is unchanged otherwise (but
    /// for moving to the next occupied slot). One look for what a peek and a pop would do.
    #[inline]
    pub(crate) fn pop_if(&mut self, accept: impl FnOnce(u128) -> bool) -> Option<T> {
        let late = self.next_source()?;
        let item = if late {
            if !accept(self.late.peek_key()?) {
                return None;
            }
            self.late.pop()
        } else {
            if !accept(self.current.last()?.key()) {
                return None;
            }
            self.current.pop()
        };
        self.len -= usize::from(item.is_some());
        item
    }

    /// Removes the minimum if its key is below `bound` ([`pop_if`](Self::pop_if) with that
    /// test). The common case first: nothing was pushed into the current slot since it became
    /// current, so the next event is the last of `current`.
    #[inline]
    pub(crate) fn pop_below(&mut self, bound: u128) -> Option<T> {
        if self.late.items.is_empty()
            && let Some(&next) = self.current.last()
        {
            if next.key() >= bound {
                return None;
            }
            self.current.truncate(self.current.len() - 1);
            self.len -= 1;
            return Some(next);
        }
        self.pop_if(|key| key < bound)
    }

    /// Moves to the next slot that holds events and makes its events current (sorted);
    /// false when there are none. Called only when `current` and `late` are empty; below
    /// `HEAP_BELOW` events, turns the queue into one heap instead.
    fn advance(&mut self) -> bool {
        if self.slot == HEAP_ONLY {
            return false;
        }
        if self.len < HEAP_BELOW {
            self.switch_to_heap();
            return self.len > 0;
        }
        let next = match self.next_ring_slot() {
            Some(slot) => slot,
            None => match self.ring.overflow.peek_key() {
                Some(key) => slot_of(key),
                None => return false,
            },
        };
        self.slot = next;
        let i = next as usize % RING;
        if self.ring.occupied[i / 64] & (1 << (i % 64)) != 0 {
            self.ring.occupied[i / 64] &= !(1 << (i % 64));
            // `current` is empty: trade buffers instead of copying.
            std::mem::swap(&mut self.current, &mut self.ring.buckets[i]);
            // The bucket keeps the old buffer for its next turn, unless a crowd of events
            // once made it large: buckets holding no events must not hold memory.
            if self.ring.buckets[i].capacity() > KEPT_BUCKET_CAPACITY {
                self.ring.buckets[i] = Vec::new();
            }
        }
        // Overflow events whose slot the ring now covers (or that are current).
        while let Some(key) = self.ring.overflow.peek_key()
            && slot_of(key) - self.slot < RING as u64
        {
            let Some(item) = self.ring.overflow.pop() else {
                break;
            };
            let slot = slot_of(key);
            if slot == self.slot {
                self.current.push(item);
            } else {
                let i = slot as usize % RING;
                self.ring.buckets[i].push(item);
                self.ring.occupied[i / 64] |= 1 << (i % 64);
            }
        }
        sort_slot(&mut self.current);
        true
    }

    /// The first slot after the current one whose bucket holds events.
    #[inline]
    fn next_ring_slot(&self) -> Option<u64> {
        let start = (self.slot as usize + 1) % RING;
        // Walk the bitmap from `start`, wrapping once: at most RING_WORDS + 1 words.
        let mut word = start / 64;
        let mut bits = self.ring.occupied[word] & (u64::MAX << (start % 64));
        for _ in 0..=RING_WORDS {
            if bits != 0 {
                let i = word * 64 + bits.trailing_zeros() as usize;
                let ahead = (i + RING - start) % RING;
                return Some(self.slot + 1 + ahead as u64);
            }
            word = (word + 1) % RING_WORDS;
            bits = self.ring.occupied[word];
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::KeyedRng;
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};

    impl Keyed for u128 {
        fn key(&self) -> u128 {
            *self
        }
    }

    /// The queues under test, behind one interface.
    trait Queue {
        fn push(&mut self, key: u128);
        /// Pops the minimum if it is below `limit`.
        fn pop_below(&mut self, limit: u128) -> Option<u128>;
        fn pop(&mut self) -> Option<u128> {
            self.pop_below(u128::MAX)
        }
    }

    impl Queue for QuadHeap<u128> {
        fn push(&mut self, key: u128) {
            QuadHeap::push(self, key);
        }
        fn pop_below(&mut self, limit: u128) -> Option<u128> {
            if self.peek_key()? < limit {
                QuadHeap::pop(self)
            } else {
                None
            }
        }
    }

    impl Queue for EventQueue<u128> {
        fn push(&mut self, key: u128) {
            EventQueue::push(self, key);
        }
        fn pop_below(&mut self, limit: u128) -> Option<u128> {
            self.pop_if(|key| key < limit)
        }
    }

    /// Drives `queue` like the engine (fixed seed): take the earliest of the queue and a lane
    /// of fixed-delay timers (the queue's only if it comes before the lane's, as
    /// `next_event` does), then schedule a few events after it, with delays from `delay`;
    /// checks every event against a binary heap holding the same events, and the count at
    /// the end.
    fn matches_a_binary_heap(
        queue: &mut impl Queue,
        steps: usize,
        mut delay: impl FnMut(&mut KeyedRng) -> u128,
    ) {
        let mut rng = KeyedRng::new(7, 7);
        let mut heap = BinaryHeap::new();
        let mut lane: VecDeque<u128> = VecDeque::new();
        let (mut seq, mut now, mut popped) = (0u128, 0u128, 0usize);
        for _ in 0..steps {
            let pushes = (rng.unit() * 3.0) as u32 + u32::from(heap.is_empty() && lane.is_empty());
            for _ in 0..pushes {
                seq += 1;
                let key = ((now + delay(&mut rng)) << 64) | seq;
                queue.push(key);
                heap.push(Reverse(key));
            }
            if rng.unit() < 0.2 {
                // A timer 3 ms out: often due before what the queue peeked.
                seq += 1;
                lane.push_back(((now + 3_000_000) << 64) | seq);
            }
            let lane_key = lane.front().copied().unwrap_or(u128::MAX);
            let key = match queue.pop_below(lane_key) {
                Some(key) => {
                    assert_eq!(Some(key), heap.pop().map(|r| r.0));
                    popped += 1;
                    Some(key)
                }
                None => {
                    assert!(heap.peek().is_none_or(|r| r.0 > lane_key));
                    lane.pop_front()
                }
            };
            if let Some(key) = key {
                assert!(key >> 64 >= now, "time went back");
                now = key >> 64;
            }
        }
        while let Some(key) = queue.pop() {
            assert_eq!(Some(key), heap.pop().map(|r| r.0));
            popped += 1;
        }
        assert!(heap.is_empty());
        assert!(popped > steps / 2);
    }

    /// Milliseconds ahead mostly, some now, some far beyond the calendar's ring.
    fn mixed(rng: &mut KeyedRng) -> u128 {
        match (rng.unit() * 10.0) as u32 {
            0 => 0,
            1 => (rng.unit() * 1e12) as u128,
            2 => (rng.unit() * 1e5) as u128,
            _ => (rng.unit() * 1e8) as u128,
        }
    }

    #[test]
    fn a_slot_sorted_by_rank_is_in_descending_key_order() {
        // Sizes on both sides of `RANKED_MAX`, times that tie (told apart by sequence).
        let mut rng = KeyedRng::new(3, 5);
        for n in 0..=(2 * RANKED_MAX + 3) {
            let mut items: Vec<u128> = (0..n)
                .map(|seq| {
                    (((rng.unit() * 4.0) as u128) << 64)
                        | ((rng.unit() * 1e6) as u128 * 64 + seq as u128)
                })
                .collect();
            let mut expected = items.clone();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            sort_slot(&mut items);
            assert_eq!(items, expected, "{n} events");
        }
    }

    #[test]
    fn the_quad_heap_pops_in_the_same_order_as_a_binary_heap() {
        matches_a_binary_heap(&mut QuadHeap::with_capacity(16), 100_000, mixed);
    }

    #[test]
    fn the_event_queue_pops_in_the_same_order_as_a_binary_heap() {
        matches_a_binary_heap(&mut EventQueue::new(), 100_000, mixed);
    }

    #[test]
    fn the_event_queue_keeps_order_at_every_time_scale() {
        // Everything within one slot (late pushes and ties), around the ring's edge, and
        // sparse events that skip whole turns of the ring.
        let slot = 1u128 << SLOT_SHIFT;
        let ring = slot * RING as u128;
        matches_a_binary_heap(&mut EventQueue::new(), 20_000, |rng| {
            (rng.unit() * 3.0) as u128
        });
        matches_a_binary_heap(&mut EventQueue::new(), 20_000, |rng| {
            ring - slot + (rng.unit() * 2.0 * slot as f64) as u128
        });
        matches_a_binary_heap(&mut EventQueue::new(), 20_000, |rng| {
            (rng.unit() * 5.0 * ring as f64) as u128
        });
    }

    #[test]
    fn the_event_queue_counts_and_empties() {
        let mut queue = EventQueue::new();
        assert_eq!(queue.pop(), None);
        assert_eq!(queue.peek_key(), None);
        for (seq, time) in [5u128 << 40, 0, 1, 1 << 30].into_iter().enumerate() {
            queue.push((time << 64) | seq as u128);
        }
        assert_eq!(queue.len(), 4);
        let order: Vec<u128> = std::iter::from_fn(|| queue.pop())
            .map(|k| k >> 64)
            .collect();
        assert_eq!(order, [0, 1, 1 << 30, 5 << 40]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_crowded_slot_leaves_no_large_buffer_behind() {
        let slot = 1u128 << SLOT_SHIFT;
        let mut queue = EventQueue::new();
        let mut seq = 0;
        for _ in 0..100_000 {
            seq += 1;
            queue.push((slot << 64) | seq);
        }
        for s in 2..RING as u128 {
            seq += 1;
            queue.push(((s * slot) << 64) | seq);
        }
        let mut popped = 0;
        while queue.pop().is_some() {
            popped += 1;
        }
        assert_eq!(popped, seq);
        let largest = queue.ring.buckets.iter().map(Vec::capacity).max();
        assert!(largest <= Some(KEPT_BUCKET_CAPACITY), "{largest:?}");
    }

    #[test]
    fn the_event_queue_keeps_order_as_it_turns_calendar_and_back() {
        // Grow far past CALENDAR_ABOVE, drain below HEAP_BELOW, again and again, with pops
        // throughout, delays from zero to beyond the ring; check both forms were used.
        let mut rng = KeyedRng::new(3, 3);
        let mut queue = EventQueue::new();
        let mut heap = BinaryHeap::new();
        let (mut seq, mut now) = (0u128, 0u128);
        let (mut calendar_seen, mut heap_seen) = (0, 0);
        for round in 0..20 {
            let target = if round % 2 == 0 { 2_000 } else { 10 };
            while (heap.len() < target) == (round % 2 == 0) {
                let growing = round % 2 == 0;
                let pushes = if growing {
                    2
                } else {
                    u32::from(rng.unit() < 0.3)
                };
                for _ in 0..pushes {
                    seq += 1;
                    let key = ((now + mixed(&mut rng)) << 64) | seq;
                    queue.push(key);
                    heap.push(Reverse(key));
                }
                let got = queue.pop();
                assert_eq!(got, heap.pop().map(|r| r.0));
                if let Some(key) = got {
                    now = key >> 64;
                }
                if queue.slot == HEAP_ONLY {
                    heap_seen += 1;
                } else {
                    calendar_seen += 1;
                }
                if heap.is_empty() {
                    break;
                }
            }
        }
        while let Some(key) = queue.pop() {
            assert_eq!(Some(key), heap.pop().map(|r| r.0));
        }
        assert!(heap.is_empty());
        assert!(
            calendar_seen > 1_000 && heap_seen > 1_000,
            "{calendar_seen} {heap_seen}"
        );
    }
}
