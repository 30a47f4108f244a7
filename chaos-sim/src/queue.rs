//! The future-event list: a 4-ary min-heap of events keyed by `time << 64 | sequence`.
//!
//! Keys are unique, so the order is exactly (time, then insertion). Four children per node
//! halve the depth of a binary heap and keep siblings in adjacent cache lines, which is what a
//! pop-heavy event loop pays for.

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

    pub(crate) fn len(&self) -> usize {
        self.items.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::KeyedRng;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    impl Keyed for u128 {
        fn key(&self) -> u128 {
            *self
        }
    }

    #[test]
    fn pops_in_the_same_order_as_a_binary_heap() {
        // A simulation-like workload (fixed seed): pop one, push a few in its future,
        // including ties in time broken by sequence.
        let mut rng = KeyedRng::new(7, 7);
        let mut quad = QuadHeap::with_capacity(16);
        let mut heap = BinaryHeap::new();
        let (mut seq, mut now) = (0u128, 0u128);
        for _ in 0..100_000 {
            let pushes = (rng.unit() * 3.0) as u32 + u32::from(heap.is_empty());
            for _ in 0..pushes {
                seq += 1;
                let delay = match (rng.unit() * 10.0) as u32 {
                    0 => 0,
                    1 => (rng.unit() * 1e12) as u128,
                    _ => (rng.unit() * 1e8) as u128,
                };
                let key = ((now + delay) << 64) | seq;
                quad.push(key);
                heap.push(Reverse(key));
            }
            let popped = quad.pop();
            assert_eq!(popped, heap.pop().map(|r| r.0));
            if let Some(key) = popped {
                now = key >> 64;
            }
            assert_eq!(quad.len(), heap.len());
        }
    }
}
