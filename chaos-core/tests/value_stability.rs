//! Pins exact decisions and samples for fixed seeds. Reproducibility is a promise to users
//! (a seed in a bug report must replay the same faults after an upgrade): if one of these
//! changes, that is a breaking change and needs a release note, not a new expected value.

use std::time::Duration;

use chaos_core::advanced::LocalMatchCounter;
use chaos_core::advanced::{DecisionKey, hash_str, mix64};
use chaos_core::fault::ErrorKind;
use chaos_core::{Call, LatencyDist, Plan, Rule};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn hashes_and_keys() {
    let observed = [
        mix64(0),
        mix64(1),
        hash_str(""),
        hash_str("checkout/orders"),
        DecisionKey::new(42, 7).for_call(1001, hash_str("checkout/orders"), 0),
        DecisionKey::new(42, 7).for_call(1001, hash_str("checkout/orders"), 1),
    ];
    assert_eq!(observed, PINNED_HASHES, "{observed:#x?}");
}

#[test]
fn plan_decisions() {
    let plan = Plan::new(2026)
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .named("throttle")
                .with_probability(0.3),
        )
        .with_rule(
            Rule::latency(LatencyDist::log_normal_p50_p99(ms(20), ms(200)).expect("valid"))
                .with_probability(0.5),
        );
    let compiled = plan.compile().expect("valid");
    let counter = LocalMatchCounter::new(2);
    let mut failures = 0u64;
    let mut latencies = Vec::new();
    for key in 0..64u64 {
        let verdict =
            compiled.evaluate(&Call::new(key, "checkout/orders"), Duration::ZERO, &counter);
        if verdict.failure.is_some() {
            failures |= 1 << key;
        }
        if key < 8 {
            latencies.push(verdict.added_latency.as_nanos() as u64);
        }
    }
    assert_eq!(
        (failures, latencies.as_slice()),
        (PINNED_FAILURES, &PINNED_LATENCIES[..]),
        "{failures:#x} {latencies:?}"
    );
}

#[test]
fn samples() {
    let dists = [
        LatencyDist::uniform(ms(5), ms(15)).expect("valid"),
        LatencyDist::normal(ms(20), ms(5)).expect("valid"),
        LatencyDist::log_normal_p50_p99(ms(6), ms(25)).expect("valid"),
        LatencyDist::exponential(ms(10)).expect("valid"),
        LatencyDist::pareto(ms(1), 1.5).expect("valid"),
        LatencyDist::empirical(vec![(0.0, ms(1)), (0.9, ms(8)), (1.0, ms(40))]).expect("valid"),
        LatencyDist::mixture(vec![
            (0.99, LatencyDist::constant(ms(10))),
            (0.01, LatencyDist::constant(ms(1000))),
        ])
        .expect("valid"),
    ];
    let observed: Vec<[u64; 3]> = dists
        .iter()
        .map(|d| {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            [
                d.sample_nanos(&mut rng),
                d.sample_nanos(&mut rng),
                d.sample_nanos(&mut rng),
            ]
        })
        .collect();
    assert_eq!(observed, PINNED_SAMPLES, "{observed:?}");
}

const PINNED_HASHES: [u64; 6] = [
    0x0,
    0x5692_161d_100b_05e5,
    0x9e37_79b9_7f4a_7c15,
    0xa1f6_3539_f8fa_ca25,
    0xb296_6073_e257_0893,
    0x2c87_25ee_7ad9_916e,
];
const PINNED_FAILURES: u64 = 0x9f02_4006_2c18_0041;
const PINNED_LATENCIES: [u64; 8] = [0, 0, 17_743_690, 0, 15_317_286, 0, 0, 14_472_082];
const PINNED_SAMPLES: [[u64; 3]; 7] = [
    [6_577_961, 6_679_894, 12_042_761],
    [16_123_140, 13_082_891, 24_448_565],
    [3_728_856, 2_567_900, 10_355_947],
    [1_583_209, 4_743_558, 21_486_690],
    [3_424_542, 3_284_572, 1_263_295],
    [2_227_303, 2_306_584, 6_477_703],
    [10_000_000, 10_000_000, 10_000_000],
];

// Equivalent mutants (cargo-mutants) in `decision::hash_str`: `|` to `^` where the word is
// assembled (the 4-to-7-byte and 1-to-3-byte branches) joins operands with no set bit in
// common (a `u32` and a `u32 << 32`; bytes shifted by 0, 8 and 16), so `|` and `^` agree.
