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

// ---- Pre-resolved sites and the service index ----

/// Selector parts over a small alphabet, so that generated rules and sites often match: a
/// plain name, a prefix or suffix glob, a full glob, or nothing.
fn name_pattern(names: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        3 => prop::sample::select(names).prop_map(|n| Some(n.to_owned())),
        1 => prop::sample::select(names).prop_map(|n| Some(format!("{}*", n.get(..1).unwrap_or("x")))),
        1 => prop::sample::select(names).prop_map(|n| Some(format!("*{}", n.get(n.len().saturating_sub(1)..).unwrap_or("x")))),
        1 => Just(Some("{a,b}/*".to_owned())),
    ]
}

const SITE_NAMES: &[&str] = &["a/orders", "b/orders", "a/stock", "c"];
const SERVICES: &[&str] = &["dynamodb", "s3", "sqs", ""];
const OPERATIONS: &[&str] = &["PutItem", "GetItem", ""];

/// Rules that exercise every path of a decision at a site: selectors on each part, event
/// conditions, counting triggers, windows and ramps, and faults that add up or compete.
fn site_rule_strategy(timed: bool) -> impl Strategy<Value = Rule> {
    (
        prop_oneof![
            Just(Fault::Error(ErrorKind::Throttle)),
            (500u16..600).prop_map(Fault::Status),
            (0u64..1_000).prop_map(|b| Fault::Hang { buffer: ms(b) }),
            (1u64..500)
                .prop_map(|m| Fault::Latency(LatencyDist::exponential(ms(m)).expect("valid"))),
        ],
        prop::option::of("[a-z]{1,6}"),
        (
            name_pattern(SITE_NAMES),
            name_pattern(SERVICES),
            name_pattern(OPERATIONS),
        ),
        prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0],
        (
            prop::option::of(1u64..5),
            prop::option::of(1u64..20),
            prop::option::of(0u64..20),
        ),
        prop::option::of(prop_oneof![Just("/tenant"), Just("/missing")]),
        prop::option::of((0u64..300, 1u64..300)),
        prop::option::of(1u64..300),
    )
        .prop_map(
            move |(
                fault,
                name,
                (site, service, operation),
                p,
                (every, first, after),
                event,
                window,
                ramp,
            )| {
                let mut rule = Rule::new(fault).with_probability(p);
                rule.name = name;
                rule.selector.site = site;
                rule.selector.service = service;
                rule.selector.operation = operation;
                rule.trigger.every = every;
                rule.trigger.first = first;
                rule.trigger.after = after;
                if let Some(path) = event {
                    rule.selector.event.push(chaos_core::rule::EventCondition {
                        path: path.to_owned(),
                        test: chaos_core::rule::EventTest::Exists(true),
                    });
                }
                if timed {
                    if let Some((start, len)) = window {
                        rule = rule.during(ms(start), ms(len));
                    }
                    rule.schedule.ramp_up = ramp.map(ms);
                }
                rule
            },
        )
}

/// Every (site name, service, operation) the generated calls are made at.
fn sites() -> Vec<chaos_core::Site<'static>> {
    let mut sites = Vec::new();
    for name in SITE_NAMES {
        for service in SERVICES {
            for operation in OPERATIONS {
                sites.push(
                    chaos_core::Site::new(name)
                        .service(service)
                        .operation(operation),
                );
            }
        }
    }
    sites
}

/// Calls as (request key, site index, attempt, with the event), from one seed.
fn generated_calls(seed: u64, count: u64, site_count: usize) -> Vec<(u64, usize, u32, bool)> {
    (0..count)
        .map(|i| {
            let word = chaos_core::advanced::mix64(seed ^ i);
            (
                word >> 20,
                (word % site_count as u64) as usize,
                (word >> 8) as u32 % 3,
                word & 0x40 != 0,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(config(64))]

    /// The site path and the ad hoc path decide every call alike, counting triggers, windows
    /// and ramps (at virtual times crossing them) and event conditions included.
    #[test]
    fn a_resolved_site_decides_as_the_ad_hoc_call(rules in prop::collection::vec(site_rule_strategy(true), 1..8), seed in any::<u64>(), calls_seed in any::<u64>()) {
        let plan = Plan { seed, rules: unique_names(rules) }.compile().expect("valid plan");
        let sites = sites();
        let resolved: Vec<_> = sites.iter().map(|site| plan.resolve(&site.call_site())).collect();
        let event = serde_json::json!({ "tenant": "t1" });
        let at_site = LocalMatchCounter::new(plan.rule_count());
        let ad_hoc = LocalMatchCounter::new(plan.rule_count());
        for (i, (key, site, attempt, with_event)) in generated_calls(calls_seed, 300, sites.len()).into_iter().enumerate() {
            let mut call = Call::at(key, sites[site].call_site()).attempt(attempt);
            if with_event {
                call = call.event(&event);
            }
            let elapsed = ms(i as u64 * 2);
            prop_assert_eq!(
                plan.evaluate_resolved(&resolved[site], &call, elapsed, &at_site),
                plan.evaluate(&call, elapsed, &ad_hoc),
                "call {} {:?}", i, call
            );
        }
    }

    /// Through the injector: the same verdicts, and the same counters in `snapshot()`.
    #[test]
    fn an_injector_decides_at_a_site_as_ad_hoc(rules in prop::collection::vec(site_rule_strategy(false), 1..8), seed in any::<u64>(), calls_seed in any::<u64>()) {
        let plan = Plan { seed, rules: unique_names(rules) };
        let at_sites = quiet(plan.clone());
        let ad_hoc = quiet(plan.clone());
        // The reference: the plan's own ad hoc evaluation, outside any injector.
        let compiled = plan.compile().expect("valid plan");
        let counter = LocalMatchCounter::new(compiled.rule_count());
        let sites = sites();
        let event = serde_json::json!({ "tenant": "t1" });
        for (key, site, attempt, with_event) in generated_calls(calls_seed, 300, sites.len()) {
            let mut call = sites[site].call(key).attempt(attempt);
            if with_event {
                call = call.event(&event);
            }
            let expected = compiled.evaluate(&call.to_call(), Duration::ZERO, &counter);
            prop_assert_eq!(&ad_hoc.decide(&call.to_call()), &expected);
            prop_assert_eq!(at_sites.decide_site(&call), expected);
        }
        prop_assert_eq!(at_sites.snapshot().rules, ad_hoc.snapshot().rules);
    }

    /// The ad hoc path against a model written from the documented semantics (each selected
    /// rule rolls its keyed word; the first failure wins), over rules indexed by service.
    #[test]
    fn ad_hoc_decisions_match_the_model(rules in prop::collection::vec((prop::option::of(prop::sample::select(SERVICES)), any::<bool>(), 0.0f64..=1.0), 1..40), seed in any::<u64>(), calls_seed in any::<u64>()) {
        use chaos_core::advanced::{DecisionKey, Probability, hash_str};
        let plan = Plan {
            seed,
            rules: rules.iter().enumerate().map(|(i, &(service, named, p))| {
                let mut rule = Rule::error(ErrorKind::Throttle).with_probability(p);
                rule.selector.service = service.map(str::to_owned);
                rule.name = named.then(|| format!("r{i}"));
                rule
            }).collect(),
        };
        let injector = quiet(plan.clone());
        for (key, site, attempt, _) in generated_calls(calls_seed, 200, SERVICES.len()) {
            let service = SERVICES[site];
            let verdict = injector.decide(&Call::new(key, "site/x").service(service).attempt(attempt));
            let mut fired = 0;
            let mut first_failure = None;
            for (index, rule) in plan.rules.iter().enumerate() {
                if rule.selector.service.as_deref().is_some_and(|s| s != service) {
                    continue;
                }
                let rule_id = rule.name.as_deref().map_or(index as u64, hash_str);
                let word = DecisionKey::new(seed, rule_id).for_call(key, hash_str("site/x"), attempt);
                if Probability::new(rule.trigger.probability).expect("in range").admits(word) && first_failure.is_none() {
                    fired += 1;
                    first_failure = Some(index);
                }
            }
            prop_assert_eq!(verdict.fired, fired);
            prop_assert_eq!(verdict.failure.map(|f| f.rule()), first_failure);
        }
    }
}
