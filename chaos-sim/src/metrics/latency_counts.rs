//! Latency counts laid out index for index as an hdrhistogram from 1 ns to 24 hours, with a
//! cheaper record where the engine needs one per request.
//!
//! A record is an index computation, an add and four compares (hdrhistogram's
//! `saturating_record` also goes through a checked lookup and a call, about three times the
//! instructions). The counts remember the lowest and highest index touched, so reading
//! quantiles, clearing (the timeline does at every interval) and handing the counts over to
//! an hdrhistogram touch only that range. They also keep the smallest and largest value
//! recorded, so the hdrhistogram they are replayed into ends in exactly the state it would
//! have if every value had been recorded into it directly.

use hdrhistogram::Histogram;

/// Highest value tracked, as the run's histogram: 24 hours in nanoseconds. Larger values
/// count at this value's index (hdrhistogram's `saturating_record`), unless they still fit
/// the last bucket.
pub(crate) const HIGHEST_TRACKABLE_NS: u64 = 24 * 3600 * 1_000_000_000;

/// Counts for 2 significant digits (single-unit resolution up to 2 * 10^2 needs 256
/// sub-buckets: half of them is 2^7).
pub(crate) type TwoDigitCounts = LatencyCounts<7>;
/// Counts for 3 significant digits (2 * 10^3 needs 2,048 sub-buckets: half is 2^10).
pub(crate) type ThreeDigitCounts = LatencyCounts<10>;

/// Counts by hdrhistogram's index for a histogram whose `sub_bucket_half_count_magnitude`
/// is `HALF` and whose lowest discernible value is 1 (unit magnitude 0).
pub(crate) struct LatencyCounts<const HALF: u32> {
    counts: Box<[u64]>,
    total: u64,
    /// Lowest and highest index recorded since the last clear (`lowest > highest`: none).
    lowest: usize,
    highest: usize,
    /// Smallest and largest value recorded (after saturation), as hdrhistogram keeps them.
    min_value: u64,
    max_value: u64,
}

impl<const HALF: u32> LatencyCounts<HALF> {
    const HALF_COUNT: u64 = 1 << HALF;
    /// Values below the sub-bucket count share bucket 0.
    const SUB_BUCKET_MASK: u64 = 2 * Self::HALF_COUNT - 1;
    /// 64 minus the sub-bucket count's magnitude.
    const LEADING_ZERO_COUNT_BASE: u32 = 64 - (HALF + 1);

    pub(crate) fn new() -> Self {
        Self {
            counts: vec![0; Self::counts_len(HIGHEST_TRACKABLE_NS)].into_boxed_slice(),
            total: 0,
            lowest: usize::MAX,
            highest: 0,
            min_value: u64::MAX,
            max_value: 0,
        }
    }

    /// Counts `ns` (at least 1; larger than [`HIGHEST_TRACKABLE_NS`] saturates).
    #[inline]
    pub(crate) fn record(&mut self, mut ns: u64) {
        let mut index = Self::index_for(ns);
        if index >= self.counts.len() {
            (index, ns) = self.saturated();
        }
        self.counts[index] += 1;
        self.total += 1;
        self.lowest = self.lowest.min(index);
        self.highest = self.highest.max(index);
        self.min_value = self.min_value.min(ns);
        self.max_value = self.max_value.max(ns);
    }

    #[cold]
    fn saturated(&self) -> (usize, u64) {
        let index = Self::index_for(HIGHEST_TRACKABLE_NS).min(self.counts.len() - 1);
        (index, HIGHEST_TRACKABLE_NS)
    }

    /// The values at quantiles `low` and `high` (`0 < low <= high <= 1`), as hdrhistogram's
    /// `value_at_quantile` gives them: the highest value equivalent to the first index at
    /// which the running count reaches `ceil(quantile * total)` (at least 1). `None` when
    /// empty.
    pub(crate) fn quantiles(&self, low: f64, high: f64) -> Option<(u64, u64)> {
        if self.total == 0 {
            return None;
        }
        let target = |q: f64| ((q * self.total as f64).ceil() as u64).max(1);
        let (low_target, high_target) = (target(low), target(high));
        let mut seen = 0u64;
        let mut low_value = None;
        for index in self.lowest..=self.highest {
            seen += self.counts[index];
            if low_value.is_none() && seen >= low_target {
                low_value = Some(Self::highest_equivalent(Self::value_for(index)));
            }
            if seen >= high_target {
                let high_value = Self::highest_equivalent(Self::value_for(index));
                return Some((low_value.unwrap_or(high_value), high_value));
            }
        }
        // Unreachable while `total` is the sum of the counts: the scan reaches it.
        None
    }

    /// Forgets what was recorded: only the touched range is written.
    pub(crate) fn clear(&mut self) {
        if self.lowest <= self.highest {
            self.counts[self.lowest..=self.highest].fill(0);
        }
        self.total = 0;
        self.lowest = usize::MAX;
        self.highest = 0;
        self.min_value = u64::MAX;
        self.max_value = 0;
    }

    /// Records every count into `histogram`, which must have this layout (lowest value 1,
    /// highest [`HIGHEST_TRACKABLE_NS`], the matching significant digits). Each index is
    /// recorded at its lowest value, except that the smallest and largest values recorded are
    /// recorded as themselves, so the histogram's minimum and maximum are exact too.
    pub(crate) fn add_to(&self, histogram: &mut Histogram<u64>) {
        if self.total == 0 {
            return;
        }
        let (min_index, max_index) = (
            self.index_of_recorded(self.min_value),
            self.index_of_recorded(self.max_value),
        );
        for index in self.lowest..=self.highest {
            let count = self.counts[index];
            if count == 0 {
                continue;
            }
            let mut rest = count;
            if index == max_index {
                // Recorded last within the index, so that the maximum is this exact value.
                rest -= 1;
            }
            if index == min_index && rest > 0 {
                record_n(histogram, self.min_value, rest);
                rest = 0;
            }
            if rest > 0 {
                record_n(histogram, Self::value_for(index), rest);
            }
            if index == max_index {
                record_n(histogram, self.max_value, 1);
            }
        }
    }

    fn index_of_recorded(&self, value: u64) -> usize {
        Self::index_for(value).min(self.counts.len() - 1)
    }

    /// hdrhistogram's `bucket_for`.
    #[inline]
    fn bucket_for(value: u64) -> u32 {
        Self::LEADING_ZERO_COUNT_BASE - (value | Self::SUB_BUCKET_MASK).leading_zeros()
    }

    /// hdrhistogram's `index_for`: bucket `b`'s upper half starts at `(b + 1) * 2^HALF`.
    #[inline]
    fn index_for(value: u64) -> usize {
        let bucket = Self::bucket_for(value);
        let sub_bucket = value >> bucket;
        ((u64::from(bucket) << HALF) + sub_bucket) as usize
    }

    /// hdrhistogram's `value_for`: the lowest value counted at `index`.
    fn value_for(index: usize) -> u64 {
        let index = index as u64;
        let bucket = index >> HALF;
        if bucket == 0 {
            index
        } else {
            ((index & (Self::HALF_COUNT - 1)) + Self::HALF_COUNT) << (bucket - 1)
        }
    }

    /// hdrhistogram's `highest_equivalent` of a bucket's lowest value.
    fn highest_equivalent(lowest: u64) -> u64 {
        if lowest == u64::MAX {
            return u64::MAX;
        }
        lowest.saturating_add(1 << Self::bucket_for(lowest)) - 1
    }

    /// hdrhistogram's counts length for `highest`: `(buckets + 1) * 2^HALF`, with the buckets
    /// needed to cover `highest` (each doubles the range of the one before).
    fn counts_len(highest: u64) -> usize {
        let mut smallest_untrackable = 2 * Self::HALF_COUNT;
        let mut buckets = 1usize;
        while smallest_untrackable <= highest {
            if smallest_untrackable > u64::MAX / 2 {
                buckets += 1;
                break;
            }
            smallest_untrackable <<= 1;
            buckets += 1;
        }
        (buckets + 1) << HALF
    }
}

/// `record_n` of a value this layout counted: always in range.
fn record_n(histogram: &mut Histogram<u64>, value: u64, count: u64) {
    if histogram.record_n(value, count).is_err() {
        histogram.saturating_record_n(value, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn reference(sigfig: u8) -> Histogram<u64> {
        Histogram::new_with_bounds(1, HIGHEST_TRACKABLE_NS, sigfig).expect("valid bounds")
    }

    /// Records `values` in both and compares quantiles, then the replayed histogram.
    fn assert_same<const HALF: u32>(sigfig: u8, values: &[u64]) {
        let mut ours = LatencyCounts::<HALF>::new();
        let mut theirs = reference(sigfig);
        for &v in values {
            ours.record(v);
            theirs.saturating_record(v);
        }
        for (low, high) in [(0.5, 0.99), (1e-9, 1.0), (0.25, 0.75), (0.999, 0.999)] {
            assert_eq!(
                ours.quantiles(low, high),
                Some((
                    theirs.value_at_quantile(low),
                    theirs.value_at_quantile(high)
                )),
                "quantiles {low}, {high} of {} values",
                values.len()
            );
        }
        let mut replayed = reference(sigfig);
        ours.add_to(&mut replayed);
        assert!(replayed == theirs, "replayed counts differ");
        assert_eq!(
            (
                replayed.len(),
                replayed.min(),
                replayed.min_nz(),
                replayed.max()
            ),
            (theirs.len(), theirs.min(), theirs.min_nz(), theirs.max())
        );
        assert_eq!(replayed.mean().to_bits(), theirs.mean().to_bits());
        assert_eq!(replayed.stdev().to_bits(), theirs.stdev().to_bits());
    }

    fn assert_same_both(values: &[u64]) {
        assert_same::<7>(2, values);
        assert_same::<10>(3, values);
    }

    #[test]
    fn the_layout_is_hdrhistograms() {
        assert_eq!(
            TwoDigitCounts::counts_len(HIGHEST_TRACKABLE_NS),
            reference(2).distinct_values()
        );
        assert_eq!(
            ThreeDigitCounts::counts_len(HIGHEST_TRACKABLE_NS),
            reference(3).distinct_values()
        );
        for value in [
            1,
            2,
            127,
            128,
            255,
            256,
            257,
            511,
            512,
            1_000,
            65_535,
            1 << 40,
        ] {
            assert_eq!(
                TwoDigitCounts::highest_equivalent(TwoDigitCounts::value_for(
                    TwoDigitCounts::index_for(value)
                )),
                reference(2).highest_equivalent(value),
                "{value}"
            );
            assert_eq!(
                ThreeDigitCounts::highest_equivalent(ThreeDigitCounts::value_for(
                    ThreeDigitCounts::index_for(value)
                )),
                reference(3).highest_equivalent(value),
                "{value}"
            );
        }
    }

    #[test]
    fn quantiles_and_replays_equal_hdrhistograms_on_edges() {
        assert_same_both(&[1]);
        assert_same_both(&[1, 255, 256, 257]);
        assert_same_both(&[2047, 2048, 2049, 4097, 4099]);
        assert_same_both(&[HIGHEST_TRACKABLE_NS, HIGHEST_TRACKABLE_NS + 1, u64::MAX]);
        assert_same_both(&[u64::MAX / 2, 3, 3, 3]);
        assert_same_both(&[5_000_001, 5_000_003]); // smallest and largest share an index
        assert_same_both(&(1..=100).map(|ms| ms * 1_000_000).collect::<Vec<_>>());
    }

    #[test]
    fn quantiles_and_replays_equal_hdrhistograms_on_random_latencies() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let n = rng.random_range(1..2_000);
            // Log-uniform from 1 ns to about 10^13 ns, so every bucket is exercised.
            let values: Vec<u64> = (0..n)
                .map(|_| (10f64.powf(rng.random_range(0.0..13.0)) as u64).max(1))
                .collect();
            assert_same_both(&values);
        }
    }

    #[test]
    fn cleared_counts_are_empty_and_forget_what_they_held() {
        let mut ours = TwoDigitCounts::new();
        ours.record(5_000_000);
        ours.record(9_000_000);
        ours.clear();
        assert_eq!(ours.quantiles(0.5, 0.99), None);
        let mut untouched = reference(2);
        ours.add_to(&mut untouched);
        assert!(untouched.is_empty());
        ours.record(7_000_000);
        let mut theirs = reference(2);
        theirs.record(7_000_000).expect("in range");
        let p = theirs.value_at_quantile(0.5);
        assert_eq!(ours.quantiles(0.5, 0.99), Some((p, p)));
        assert_eq!(ours.counts.iter().sum::<u64>(), 1);
    }
}
