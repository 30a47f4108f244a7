//! Keyed, counter-based randomness for fault decisions.
//!
//! A decision is a pure function of `(seed, rule, request key, call site, attempt)`: the same
//! inputs give the same answer on any thread, in any order, on any machine. That is what makes
//! a faulted call replayable, and what lets a control and an experiment run share their draws.
//!
//! The yes/no roll is a 64-bit mix of the key (about a nanosecond). Only when a fault fires and
//! needs a stream of draws (a latency sample) is a ChaCha8 generator seeded from the same key:
//! re-keying ChaCha costs tens of nanoseconds, too much for every call but fine for the few that
//! fire.
//!
//! ```
//! use chaos_core::advanced::{DecisionKey, Probability};
//! let key = DecisionKey::new(42, 7).for_call(1001, 0xfeed, 0);
//! let one_percent = Probability::new(0.01).unwrap();
//! // Pure: asking again gives the same answer.
//! assert_eq!(one_percent.admits(key), one_percent.admits(key));
//! ```

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finalizer: a bijective 64-bit mix with full avalanche.
#[inline]
pub const fn mix64(z: u64) -> u64 {
    let z = mix64_partial(z);
    z ^ (z >> 31)
}

/// [`mix64`] without its last xor-shift, which leaves the top 33 bits as they are: enough to
/// reject most words against a threshold ([`Probability::partial_bound`]).
#[inline]
const fn mix64_partial(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A portable 64-bit hash of a string (little-endian words, [`mix64`] between them), used to
/// key call sites and rule names. Stable across platforms and releases: value-stability tests
/// pin it. [`hash_str_const`] computes the same value at compile time.
#[inline]
pub fn hash_str(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let mut state = GOLDEN ^ (len as u64);
    if len > 8 && len <= 16 {
        // What the loop below does for names of 9 to 16 bytes (most site names), unrolled.
        state = mix64(state ^ read_u64(bytes, 0));
        state = mix64(state ^ read_u64(bytes, len - 8));
    } else if len >= 8 {
        let mut offset = 0;
        while offset + 8 < len {
            state = mix64(state ^ read_u64(bytes, offset));
            offset += 8;
        }
        // The last word overlaps the previous one rather than being padded: fixed-size loads
        // only, no byte-by-byte tail.
        state = mix64(state ^ read_u64(bytes, len - 8));
    } else if len >= 4 {
        let word = u64::from(read_u32(bytes, 0)) | (u64::from(read_u32(bytes, len - 4)) << 32);
        state = mix64(state ^ word);
    } else if len > 0 {
        let word = u64::from(bytes[0])
            | (u64::from(bytes[len / 2]) << 8)
            | (u64::from(bytes[len - 1]) << 16);
        state = mix64(state ^ word);
    }
    state
}

#[inline]
fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    bytes
        .get(offset..)
        .and_then(<[u8]>::first_chunk::<8>)
        .map_or(0, |word| u64::from_le_bytes(*word))
}

#[inline]
fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    bytes
        .get(offset..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(0, |word| u32::from_le_bytes(*word))
}

/// [`hash_str`] as a `const fn`, so a [`CallSite`](crate::plan::CallSite) in a constant is
/// hashed at compile time. Byte-wise reads: slower at run time, hence two functions (a test
/// checks they agree).
pub const fn hash_str_const(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let mut state = GOLDEN ^ (len as u64);
    if len >= 8 {
        let mut offset = 0;
        while offset + 8 < len {
            state = mix64(state ^ const_read(bytes, offset, 8));
            offset += 8;
        }
        state = mix64(state ^ const_read(bytes, len - 8, 8));
    } else if len >= 4 {
        let word = const_read(bytes, 0, 4) | (const_read(bytes, len - 4, 4) << 32);
        state = mix64(state ^ word);
    } else if len > 0 {
        let word =
            (bytes[0] as u64) | ((bytes[len / 2] as u64) << 8) | ((bytes[len - 1] as u64) << 16);
        state = mix64(state ^ word);
    }
    state
}

/// `width` bytes at `offset`, little-endian.
const fn const_read(bytes: &[u8], offset: usize, width: usize) -> u64 {
    let mut word = 0u64;
    let mut i = 0;
    while i < width {
        word |= (bytes[offset + i] as u64) << (8 * i);
        i += 1;
    }
    word
}

/// The part of a decision key fixed for a rule within a plan: `(seed, rule id)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecisionKey(u64);

impl DecisionKey {
    /// Keys a rule of a plan. `rule_id` identifies the rule (the hash of its name, or its index
    /// when unnamed), so adding a rule does not change the decisions of the named others.
    pub const fn new(seed: u64, rule_id: u64) -> Self {
        Self(mix64(seed ^ mix64(rule_id.wrapping_add(GOLDEN))))
    }

    /// The key as one word, for tables that keep it in an atomic.
    #[cfg(feature = "runtime")]
    #[inline]
    pub(crate) const fn to_bits(self) -> u64 {
        self.0
    }

    /// The key [`to_bits`](Self::to_bits) gave.
    #[cfg(feature = "runtime")]
    #[inline]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The 64-bit decision word of this rule for a call.
    #[inline]
    pub const fn for_call(self, request_key: u64, site_hash: u64, attempt: u32) -> u64 {
        self.for_call_word(call_word(request_key, site_hash, attempt))
    }

    /// The decision word of this rule for a call whose [`call_word`] is known: one mix, so
    /// a plan of many rules hashes the call once.
    #[inline]
    pub const fn for_call_word(self, call_word: u64) -> u64 {
        mix64(self.0 ^ call_word)
    }

    /// [`for_call_word`](Self::for_call_word) short of the mix's last step: the same top 33
    /// bits, two instructions fewer. Compared with [`Probability::partial_bound`], it
    /// settles the common "does not fire" case without the full word.
    #[inline]
    pub(crate) const fn partial_for_call_word(self, call_word: u64) -> u64 {
        mix64_partial(self.0 ^ call_word)
    }
}

/// The part of every decision key that depends only on the call: `(request key, call-site
/// hash, attempt)`.
#[inline]
pub const fn call_word(request_key: u64, site_hash: u64, attempt: u32) -> u64 {
    let keyed = mix64(request_key ^ GOLDEN);
    mix64(keyed ^ site_hash.wrapping_add((attempt as u64).wrapping_mul(GOLDEN)))
}

/// A probability stored as a 64-bit threshold, so a roll is one integer comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probability {
    threshold: u64,
    always: bool,
}

impl Probability {
    /// Always.
    pub const ALWAYS: Self = Self {
        threshold: u64::MAX,
        always: true,
    };

    /// A probability in `[0, 1]`; `None` outside it (or NaN).
    pub fn new(p: f64) -> Option<Self> {
        if !(0.0..=1.0).contains(&p) {
            return None;
        }
        if p == 1.0 {
            return Some(Self::ALWAYS);
        }
        // p * 2^64, exact for the probabilities people write down (to 2^-53).
        let threshold = (p * 18_446_744_073_709_551_616.0) as u64;
        Some(Self {
            threshold,
            always: false,
        })
    }

    /// Whether a decision word falls under this probability. Words are uniform on `u64`, so
    /// the chance is exactly `threshold / 2^64`.
    #[inline]
    pub const fn admits(self, word: u64) -> bool {
        self.always || word < self.threshold
    }

    /// The largest partial word ([`DecisionKey::partial_for_call_word`]) whose full word
    /// this probability may admit. The mix's last step (`z ^ (z >> 31)`) keeps the top 33
    /// bits, so a partial word above `threshold | (2^33 - 1)` has a full word above the
    /// threshold: it is not admitted. At or below the bound, only the full word decides.
    #[inline]
    pub(crate) const fn partial_bound(self) -> u64 {
        if self.always {
            u64::MAX
        } else {
            self.threshold | PARTIAL_LOW_BITS
        }
    }
}

/// The bits of a word the mix's last step can change.
const PARTIAL_LOW_BITS: u64 = (1 << 33) - 1;

/// A ChaCha8 stream keyed by a decision word, for the draws a fired fault needs.
pub fn stream_for(word: u64) -> ChaCha8Rng {
    // A different mix than the yes/no roll, so the latency drawn is independent of the roll.
    ChaCha8Rng::seed_from_u64(mix64(word ^ 0x5851_f42d_4c95_7f2d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_edges() {
        assert!(Probability::new(-0.1).is_none());
        assert!(Probability::new(1.1).is_none());
        assert!(Probability::new(f64::NAN).is_none());
        let never = Probability::new(0.0).unwrap();
        assert!(!never.admits(0));
        let always = Probability::new(1.0).unwrap();
        assert!(always.admits(u64::MAX));
        let half = Probability::new(0.5).unwrap();
        assert!(half.admits(u64::MAX / 2 - 1) && !half.admits(u64::MAX / 2 + 1));
    }

    #[test]
    fn a_partial_word_above_the_bound_is_never_admitted() {
        // Words near the bound's edge, where the last mix step could carry a decision.
        let probabilities = [0.0, 1e-9, 0.01, 0.3, 0.5, 0.999_999, 1.0];
        for p in probabilities {
            let probability = Probability::new(p).unwrap();
            let bound = probability.partial_bound();
            let key = DecisionKey::new(7, 3);
            let mut rejected = 0u32;
            for n in 0..200_000u64 {
                let call_word = mix64(n ^ 0x1234);
                let partial = key.partial_for_call_word(call_word);
                let full = key.for_call_word(call_word);
                assert_eq!(full, partial ^ (partial >> 31));
                if partial > bound {
                    rejected += 1;
                    assert!(!probability.admits(full), "p {p}, n {n}");
                }
                if probability.admits(full) {
                    assert!(partial <= bound, "p {p}, n {n}");
                }
            }
            // Below the bound but not admitted happens for at most 2^33 / 2^64 of words.
            let expected_rejected = if p == 1.0 { 0 } else { 200_000 };
            let admitted = (200_000 - rejected) as f64 / 200_000.0;
            assert!(rejected <= expected_rejected);
            // The fraction not settled by the bound is p (plus ~2^-31): within 5 sigma.
            let sigma = (p * (1.0 - p) / 200_000.0).sqrt();
            assert!(
                (admitted - p).abs() <= 5.0 * sigma + 1e-6,
                "p {p}: {admitted}"
            );
        }
        // The edge itself: the largest partial word under a threshold's top bits.
        let probability = Probability::new(0.25).unwrap();
        let bound = probability.partial_bound();
        for partial in [bound, bound + 1, bound - 1, bound & !PARTIAL_LOW_BITS] {
            let full = partial ^ (partial >> 31);
            if partial > bound {
                assert!(!probability.admits(full));
            }
        }
    }

    #[test]
    fn const_and_run_time_hashes_agree() {
        let text = "eu-west-1/checkout/orders/PutItem/with-a-long-tail-0123456789";
        for end in 0..=text.len() {
            for start in 0..end.min(5) {
                let piece = &text[start..end];
                assert_eq!(hash_str(piece), hash_str_const(piece), "{piece:?}");
            }
        }
        const AT_COMPILE_TIME: u64 = hash_str_const("checkout/orders");
        assert_eq!(AT_COMPILE_TIME, hash_str("checkout/orders"));
    }

    #[test]
    fn hash_distinguishes_lengths_and_tails() {
        assert_ne!(hash_str(""), hash_str("\0"));
        assert_ne!(hash_str("abc"), hash_str("acc"));
        assert_ne!(hash_str("abcde"), hash_str("abdde"));
        for len in 0..40 {
            let text: String = "x".repeat(len);
            assert_ne!(hash_str(&text), hash_str(&format!("{text}y")));
        }
        assert_ne!(hash_str("abcdefgh"), hash_str("abcdefgh\0"));
        assert_ne!(hash_str("orders"), hash_str("order"));
    }
}
