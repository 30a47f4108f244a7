//! Property tests of chaos-core, with fixed seeds so every run explores the same cases.
//!
//! Statistical bounds are derived, not guessed:
//! * injection counts are Binomial(n, p): we allow 5 standard deviations plus one, a
//!   per-case false-failure rate under 1e-6;
//! * sample quantiles use the Dvoretzky-Kiefer-Wolfowitz bound
//!   `P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2)`, with `eps` chosen for a rate of 1e-6.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use chaos_core::advanced::LocalMatchCounter;
use chaos_core::fault::{ErrorKind, Fault};
use chaos_core::{Call, Injector, LatencyDist, Plan, Rule};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x00c4_a05e),
        failure_persistence: None,
        ..Config::default()
    }
}

fn quiet(plan: Plan) -> Injector {
    let mut builder = Injector::builder();
    builder.plan(plan).ignore_env();
    builder.build().expect("valid plan")
}

/// Allowed deviation of a Binomial(n, p) count from n*p: 5 sigma, plus 1 for discreteness.
fn binomial_bound(n: u64, p: f64) -> f64 {
    5.0 * (n as f64 * p * (1.0 - p)).sqrt() + 1.0
}

/// DKW: the eps with 2 exp(-2 n eps^2) = 1e-6.
fn dkw_eps(n: usize) -> f64 {
    ((2.0f64 / 1e-6).ln() / (2.0 * n as f64)).sqrt()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn latency_strategy() -> impl Strategy<Value = LatencyDist> {
    let leaf = prop_oneof![
        (0u64..5_000).prop_map(|m| LatencyDist::constant(ms(m))),
        (0u64..1_000, 0u64..1_000).prop_map(|(a, b)| LatencyDist::uniform(
            ms(a.min(b)),
            ms(a.max(b))
        )
        .expect("ordered")),
        (0u64..1_000, 1u64..500)
            .prop_map(|(m, s)| LatencyDist::normal(ms(m), ms(s)).expect("valid")),
        (1u64..1_000, 1u64..5_000).prop_map(|(p50, extra)| {
            LatencyDist::log_normal_p50_p99(ms(p50), ms(p50 + extra)).expect("p99 > p50")
        }),
        (-8.0f64..2.0, 0.0f64..2.0)
            .prop_map(|(mu, sigma)| LatencyDist::log_normal(mu, sigma).expect("valid")),
        (1u64..1_000).prop_map(|m| LatencyDist::exponential(ms(m)).expect("valid")),
        (1u64..100, 1.1f64..5.0).prop_map(|(s, a)| LatencyDist::pareto(ms(s), a).expect("valid")),
        prop::collection::vec(0u64..100, 1..6).prop_map(|steps| {
            let mut value = 0;
            let n = steps.len();
            let points = std::iter::once((0.0, ms(0)))
                .chain(steps.iter().enumerate().map(|(i, s)| {
                    value += s;
                    ((i + 1) as f64 / n as f64, ms(value))
                }))
                .collect();
            LatencyDist::empirical(points).expect("monotone")
        }),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec((0.01f64..1.0, inner), 1..4)
            .prop_map(|parts| LatencyDist::mixture(parts).expect("positive weights"))
    })
}

/// Plans reject duplicate rule names: suffix each generated name with its index.
fn unique_names(rules: Vec<Rule>) -> Vec<Rule> {
    rules
        .into_iter()
        .enumerate()
        .map(|(i, mut rule)| {
            rule.name = rule.name.map(|name| format!("{name}-{i}"));
            rule
        })
        .collect()
}

fn fault_strategy() -> impl Strategy<Value = Fault> {
    prop_oneof![
        latency_strategy().prop_map(Fault::Latency),
        Just(Fault::Error(ErrorKind::Throttle)),
        Just(Fault::Error(ErrorKind::Timeout)),
        Just(Fault::Error(ErrorKind::ConnectionReset)),
        (500u16..600).prop_map(|status| Fault::Error(ErrorKind::ServerError { status })),
        ("[A-Za-z]{1,12}", "[ -~]{0,20}")
            .prop_map(|(name, message)| Fault::Error(ErrorKind::Custom { name, message })),
        (0u64..1_000).prop_map(|b| Fault::Hang { buffer: ms(b) }),
        (100u16..600).prop_map(Fault::Status),
    ]
}

fn rule_strategy() -> impl Strategy<Value = Rule> {
    (
        fault_strategy(),
        prop::option::of("[a-z][a-z0-9-]{0,10}"),
        prop::option::of("[a-z*]{1,8}"),
        0.0f64..=1.0,
        prop::option::of(1u64..10),
        prop::option::of((0u64..10_000, 1u64..10_000)),
        prop::option::of(1u64..10_000),
        prop::option::of(0u64..4_000_000_000),
    )
        .prop_map(|(fault, name, service, p, every, window, ramp, expires)| {
            let mut rule = Rule::new(fault).with_probability(p);
            rule.name = name;
            rule.selector.service = service;
            rule.trigger.every = every;
            if let Some((start, len)) = window {
                rule = rule.during(ms(start), ms(len));
            }
            rule.schedule.ramp_up = ramp.map(ms);
            rule.schedule.expires_at =
                expires.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
            rule
        })
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn injection_rate_is_within_binomial_bound(p in 0.0f64..=1.0, seed in any::<u64>()) {
        let injector = quiet(Plan::new(seed).with_rule(Rule::error(ErrorKind::Throttle).with_probability(p)));
        let n = 20_000u64;
        let fired = (0..n).filter(|&k| injector.decide(&Call::new(k, "site")).failure.is_some()).count();
        let expected = n as f64 * p;
        prop_assert!((fired as f64 - expected).abs() <= binomial_bound(n, p),
            "p={p} fired={fired} expected={expected}");
    }

    #[test]
    fn windows_and_ramps_are_respected(start in 0u64..1_000, len in 1u64..1_000, ramp in 1u64..2_000, seed in any::<u64>()) {
        let plan = Plan::new(seed).with_rule(
            Rule::error(ErrorKind::Throttle).during(ms(start), ms(len)).ramping_up_over(ms(ramp)));
        let compiled = plan.compile().expect("valid");
        let counter = LocalMatchCounter::new(1);
        for t in (0..2_500).step_by(7) {
            let at = ms(t);
            let fired = (0..50u64)
                .filter(|&k| compiled.evaluate(&Call::new(k, "s"), at, &counter).failure.is_some())
                .count();
            if t < start || t >= start + len {
                prop_assert_eq!(fired, 0, "outside the window at {}ms", t);
            }
            if t >= start + ramp && t < start + len {
                prop_assert_eq!(fired, 50, "fully ramped at {}ms", t);
            }
        }
    }

    #[test]
    fn expiry_is_respected(expires in 1u64..1_000_000, probe in 0u64..2_000_000) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(expires);
        let compiled = Plan::new(1).with_rule(Rule::error(ErrorKind::Timeout).expiring_at(at)).compile().expect("valid");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(probe);
        let verdict = compiled.evaluate_at(&Call::new(1, "s"), Duration::ZERO, now, &LocalMatchCounter::new(1));
        prop_assert_eq!(verdict.failure.is_some(), probe < expires);
    }

    #[test]
    fn samples_stay_in_support(dist in latency_strategy(), seed in any::<u64>()) {
        let lowest = dist.quantile(0.0).expect("q in range");
        let highest = dist.quantile(1.0).expect("q in range");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..500 {
            let sample = dist.sample(&mut rng);
            // Round-to-nanosecond slack on the bounds.
            prop_assert!(sample + Duration::from_nanos(1) >= lowest, "{sample:?} < {lowest:?} for {dist:?}");
            prop_assert!(sample <= highest + Duration::from_nanos(1), "{sample:?} > {highest:?} for {dist:?}");
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn sample_quantiles_match_the_distribution(dist in latency_strategy(), seed in any::<u64>()) {
        let n = 20_000;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut samples: Vec<Duration> = (0..n).map(|_| dist.sample(&mut rng)).collect();
        samples.sort();
        let eps = dkw_eps(n);
        for q in [0.05, 0.25, 0.5, 0.75, 0.9, 0.99] {
            // F(X_(k)) lies in [F(x-), F(x)]; with atoms (constants, mixtures of constants)
            // the empirical CDF can sit anywhere in the jump, so test both ends.
            let x = samples[(q * n as f64) as usize];
            let below = dist.cdf(x.saturating_sub(Duration::from_nanos(1)));
            let at = dist.cdf(x + Duration::from_nanos(1));
            prop_assert!(below - eps <= q && q <= at + eps,
                "q={q}: F(x-)={below} F(x)={at} eps={eps} x={x:?} for {dist:?}");
        }
    }

    #[test]
    fn decisions_do_not_depend_on_order_or_threads(rules in prop::collection::vec(rule_strategy(), 1..6), seed in any::<u64>(), shuffle_seed in any::<u64>()) {
        // Counting triggers count in arrival order by design; the claim is for the rest.
        let rules = unique_names(rules).into_iter().map(|mut r| { r.trigger.every = None; r.schedule.window = None; r.schedule.ramp_up = None; r }).collect();
        let plan = Plan { seed, rules };
        let sites = ["a/orders", "b/inventory", "c"];
        let calls: Vec<(u64, usize, u32)> = (0..400u64).map(|k| (k * 7919, (k % 3) as usize, (k % 4) as u32)).collect();
        let reference = quiet(plan.clone());
        let expected: BTreeMap<usize, _> = calls.iter().enumerate()
            .map(|(i, &(key, site, attempt))| (i, reference.decide(&Call::new(key, sites[site]).service("svc").attempt(attempt))))
            .collect();

        let mut order: Vec<usize> = (0..calls.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(shuffle_seed);
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        let shared = quiet(plan);
        let observed: BTreeMap<usize, _> = std::thread::scope(|scope| {
            let handles: Vec<_> = order.chunks(order.len().div_ceil(4)).map(|chunk| {
                let injector = shared.clone();
                let calls = &calls;
                scope.spawn(move || chunk.iter().map(|&i| {
                    let (key, site, attempt) = calls[i];
                    (i, injector.decide(&Call::new(key, sites[site]).service("svc").attempt(attempt)))
                }).collect::<Vec<_>>())
            }).collect();
            handles.into_iter().flat_map(|h| h.join().expect("no panic")).collect()
        });
        prop_assert_eq!(observed, expected);
    }

    #[test]
    fn plans_round_trip_through_json_and_toml(rules in prop::collection::vec(rule_strategy(), 0..5), seed in any::<u64>()) {
        let plan = Plan { seed: seed >> 1, rules: unique_names(rules) }; // TOML integers are i64
        let toml_text = plan.to_toml_string().expect("serializable");
        prop_assert_eq!(Plan::from_toml_str(&toml_text).expect("own output parses"), plan.clone(), "{}", toml_text);
        let json_text = plan.to_json_string();
        prop_assert_eq!(Plan::from_json_str(&json_text).expect("own output parses"), plan);
    }
}
