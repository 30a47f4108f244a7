//! Response corruption: what a `corrupt` fault does to the bytes of an answer.
//!
//! A `corrupt` rule lets the call go ahead (the handler runs, the request reaches the
//! service, side effects happen) and mangles what comes back, so the caller's parser and
//! validation are what get tested:
//!
//! ```toml
//! fault = { corrupt = "truncate" }       # also "flip", "empty", "json_invalid"
//! ```
//!
//! | mode           | the body becomes                                                    | models |
//! |----------------|---------------------------------------------------------------------|--------|
//! | `truncate`     | its first `k` bytes, `k` drawn uniformly in `[0, len)`               | a connection cut mid-body, a partial read |
//! | `flip`         | one bit flipped in each of `1 + len / 256` distinct bytes            | silent corruption: the body may still parse, with wrong values |
//! | `empty`        | no bytes at all                                                      | a 200 with an empty body |
//! | `json_invalid` | itself with one ASCII control byte (0x1F) inserted at a drawn offset | a body no JSON parser accepts |
//!
//! `json_invalid` inserts a raw control character because JSON forbids one everywhere: between
//! tokens it is not whitespace, inside a string it must be escaped. So the result is invalid
//! wherever the byte lands, whatever the body held, and the rest of the document is intact (a
//! parser fails part-way, not at the end). An empty body stays empty under `truncate` and
//! `flip` (there is nothing to cut or flip).
//!
//! **Determinism.** Every choice comes from [`Corruption::seed`], which the plan derives from
//! the decision's keyed word `(seed, rule, request key, site, attempt)`: the same call is
//! corrupted the same way on every run, a retry (another attempt) differently. The draws use
//! a ChaCha8 stream and integer arithmetic only, so they are the same on every platform.
//!
//! ```
//! use chaos_core::corrupt::{CorruptMode, Corruption};
//! let body = br#"{"orderId":42,"total":9.99}"#;
//! let truncated = Corruption::new(CorruptMode::Truncate, 7).apply(body);
//! assert!(truncated.len() < body.len() && body.starts_with(&truncated));
//! let invalid = Corruption::new(CorruptMode::JsonInvalid, 7).apply(body);
//! assert!(serde_json::from_slice::<serde_json::Value>(&invalid).is_err());
//! // Replayable: the same seed corrupts the same way.
//! assert_eq!(Corruption::new(CorruptMode::Flip, 7).apply(body), Corruption::new(CorruptMode::Flip, 7).apply(body));
//! ```

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How a `corrupt` fault mangles a response body (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CorruptMode {
    /// Keep a drawn prefix of the body, shorter than the body.
    Truncate,
    /// Flip one bit in each of `1 + len / 256` distinct bytes.
    Flip,
    /// Replace the body with nothing.
    Empty,
    /// Insert a raw control byte (0x1F), which makes any JSON document invalid.
    JsonInvalid,
}

impl CorruptMode {
    /// A short stable label: `truncate`, `flip`, `empty` or `json_invalid`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Truncate => "truncate",
            Self::Flip => "flip",
            Self::Empty => "empty",
            Self::JsonInvalid => "json_invalid",
        }
    }
}

impl fmt::Display for CorruptMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One call's corruption: the mode and the seed of its draws. A plan builds it when a
/// `corrupt` rule fires (the seed comes from the decision's keyed word); adapters apply it to
/// the answer they can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Corruption {
    /// How the body is mangled.
    pub mode: CorruptMode,
    /// The seed of every draw (cut point, flipped bits, insertion offset).
    pub seed: u64,
}

/// The byte `json_invalid` inserts: ASCII unit separator, a control character JSON allows
/// neither between tokens nor unescaped in a string.
pub const JSON_INVALID_BYTE: u8 = 0x1F;

impl Corruption {
    /// A corruption of `mode` drawing from `seed`.
    pub fn new(mode: CorruptMode, seed: u64) -> Self {
        Self { mode, seed }
    }

    /// The corrupted copy of `body`.
    pub fn apply(&self, body: &[u8]) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let len = body.len();
        match self.mode {
            CorruptMode::Empty => Vec::new(),
            CorruptMode::Truncate => body[..below(&mut rng, len)].to_vec(),
            CorruptMode::Flip => {
                let mut out = body.to_vec();
                for position in distinct_positions(&mut rng, len, flip_count(len)) {
                    out[position] ^= 1 << below(&mut rng, 8);
                }
                out
            }
            CorruptMode::JsonInvalid => {
                let at = below(&mut rng, len + 1);
                let mut out = Vec::with_capacity(len + 1);
                out.extend_from_slice(&body[..at]);
                out.push(JSON_INVALID_BYTE);
                out.extend_from_slice(&body[at..]);
                out
            }
        }
    }

    /// The corrupted copy of a text body, for carriers that hold text (a Lambda proxy
    /// response's `body`). `truncate` and `json_invalid` move their offset back to a character
    /// boundary (the draws are those of [`apply`](Self::apply)); bytes `flip` leaves that are
    /// no longer UTF-8 read as U+FFFD, as a lossy decoder shows them.
    pub fn apply_text(&self, body: &str) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let len = body.len();
        match self.mode {
            CorruptMode::Empty => String::new(),
            CorruptMode::Truncate => body[..floor_boundary(body, below(&mut rng, len))].to_owned(),
            CorruptMode::Flip => String::from_utf8_lossy(&self.apply(body.as_bytes())).into_owned(),
            CorruptMode::JsonInvalid => {
                let at = floor_boundary(body, below(&mut rng, len + 1));
                let mut out = String::with_capacity(len + 1);
                out.push_str(&body[..at]);
                out.push(char::from(JSON_INVALID_BYTE));
                out.push_str(&body[at..]);
                out
            }
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a corrupted response ({})", self.mode)
    }
}

/// How many bytes `flip` changes in a body of `len` bytes.
fn flip_count(len: usize) -> usize {
    if len == 0 { 0 } else { 1 + len / 256 }
}

/// A draw in `[0, bound)` (0 when `bound` is 0): the high half of a 64x64-bit product
/// (Lemire's method without rejection; the bias, below 2^-32 for any body size, does not
/// matter here, and the result is the same on every platform and rand release).
fn below(rng: &mut ChaCha8Rng, bound: usize) -> usize {
    let wide = u128::from(rng.next_u64()) * bound as u128;
    // The high half is below `bound`, which fits in usize.
    usize::try_from(wide >> 64).unwrap_or(0)
}

/// `count` distinct positions in `[0, len)`, in increasing order (Floyd's sampling: exactly
/// `count` draws, no retries).
fn distinct_positions(rng: &mut ChaCha8Rng, len: usize, count: usize) -> Vec<usize> {
    let mut chosen = std::collections::BTreeSet::new();
    for upper in (len - count)..len {
        let candidate = below(rng, upper + 1);
        if !chosen.insert(candidate) {
            chosen.insert(upper);
        }
    }
    chosen.into_iter().collect()
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"orderId":42,"items":[{"sku":"A-1","qty":2}],"total":19.98}"#;

    fn modes() -> [CorruptMode; 4] {
        [
            CorruptMode::Truncate,
            CorruptMode::Flip,
            CorruptMode::Empty,
            CorruptMode::JsonInvalid,
        ]
    }

    #[test]
    fn every_mode_changes_a_nonempty_body_and_replays() {
        for mode in modes() {
            for seed in 0..200 {
                let corruption = Corruption::new(mode, seed);
                let out = corruption.apply(BODY);
                assert_ne!(out, BODY, "{mode} seed {seed}");
                assert_eq!(out, corruption.apply(BODY), "{mode} replays");
            }
        }
    }

    #[test]
    fn truncate_keeps_a_strict_prefix_and_reaches_every_length() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..2_000 {
            let out = Corruption::new(CorruptMode::Truncate, seed).apply(BODY);
            assert!(out.len() < BODY.len() && BODY.starts_with(&out));
            seen.insert(out.len());
        }
        // 2,000 uniform draws over 61 lengths miss one with probability < 61 * (60/61)^2000.
        assert_eq!(seen.len(), BODY.len());
    }

    #[test]
    fn flip_changes_exactly_one_bit_in_each_chosen_byte() {
        let long = vec![b'a'; 1_000];
        for (body, expected) in [(BODY, 1), (&long[..], 1 + 1_000 / 256)] {
            for seed in 0..100 {
                let out = Corruption::new(CorruptMode::Flip, seed).apply(body);
                assert_eq!(out.len(), body.len());
                let changed: Vec<u32> = out
                    .iter()
                    .zip(body)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .filter(|&bits| bits > 0)
                    .collect();
                assert_eq!(changed, vec![1; expected], "seed {seed}");
            }
        }
    }

    #[test]
    fn json_invalid_is_never_json_and_keeps_the_rest() {
        let documents: [&[u8]; 5] = [BODY, b"123", b"\"text\"", b"[]", b""];
        for body in documents {
            for seed in 0..300 {
                let out = Corruption::new(CorruptMode::JsonInvalid, seed).apply(body);
                assert!(serde_json::from_slice::<serde_json::Value>(&out).is_err());
                let without: Vec<u8> = out
                    .iter()
                    .copied()
                    .filter(|&b| b != JSON_INVALID_BYTE)
                    .collect();
                assert_eq!(without, body);
            }
        }
    }

    #[test]
    fn empty_bodies_stay_empty_where_nothing_can_be_cut() {
        for mode in [CorruptMode::Truncate, CorruptMode::Flip, CorruptMode::Empty] {
            assert!(Corruption::new(mode, 3).apply(b"").is_empty(), "{mode}");
            assert!(Corruption::new(mode, 3).apply_text("").is_empty(), "{mode}");
        }
    }

    #[test]
    fn text_corruption_stays_on_character_boundaries() {
        let text = "ünïcödé ✓ {\"a\":\"ß\"}";
        for seed in 0..500 {
            let truncated = Corruption::new(CorruptMode::Truncate, seed).apply_text(text);
            assert!(text.starts_with(&truncated) && truncated.len() < text.len());
            let invalid = Corruption::new(CorruptMode::JsonInvalid, seed).apply_text(text);
            assert_eq!(invalid.replace('\u{1f}', ""), text);
            let flipped = Corruption::new(CorruptMode::Flip, seed).apply_text(text);
            assert_ne!(flipped, text);
        }
        // ASCII text: the same draws as the byte form.
        let ascii = std::str::from_utf8(BODY).unwrap_or_default();
        for mode in modes() {
            let corruption = Corruption::new(mode, 11);
            assert_eq!(
                corruption.apply_text(ascii).into_bytes(),
                corruption.apply(BODY)
            );
        }
    }

    /// Pinned outputs: corruption is part of the replay promise, like the decision values.
    #[test]
    fn value_stability() {
        let short = b"0123456789";
        let pinned: [(CorruptMode, &[u8]); 4] = [
            (CorruptMode::Truncate, b"0123"),
            (CorruptMode::Flip, b"0123556789"),
            (CorruptMode::Empty, b""),
            (CorruptMode::JsonInvalid, b"0123\x1f456789"),
        ];
        for (mode, expected) in pinned {
            assert_eq!(Corruption::new(mode, 1).apply(short), expected, "{mode}");
        }
    }
}
