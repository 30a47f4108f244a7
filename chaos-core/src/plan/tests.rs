use super::*;
use crate::fault::ErrorKind;
use crate::fault::Fault;
use crate::latency::LatencyDist;
use crate::rule::EventTest;
use std::time::{Duration, SystemTime};

#[test]
fn errors_name_rule_and_field() {
    let text = r#"
            [[rules]]
            name = "ok"
            fault = { error = "throttle" }
            probability = 0.5

            [[rules]]
            name = "too-likely"
            fault = { error = "throttle" }
            probability = 1.5
        "#;
    let err = Plan::from_toml_str(text).unwrap_err();
    match &err {
        PlanError::Rule {
            index, name, field, ..
        } => {
            assert_eq!(
                (*index, name.as_deref(), field.as_str()),
                (1, Some("too-likely"), "probability")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("rules[1].probability"), "{err}");
}

#[test]
fn parse_errors_carry_location_and_unknown_fields() {
    let err =
        Plan::from_toml_str("[[rules]]\nfault = { error = \"throttle\" }\nprobablity = 0.5\n")
            .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("probablity") && text.contains("line 3"),
        "{text}"
    );
    let err = Plan::from_toml_str("[[rules]]\nfault = { latency = \"-5ms\" }\n").unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
}

#[test]
fn empty_window_bad_regex_bad_glob() {
    let base = "[[rules]]\nfault = { error = \"timeout\" }\nprobability = 1.0\n";
    let cases = [
        (
            "window = { start = \"1s\", duration = \"0s\" }",
            "window.duration",
        ),
        (
            "match.event = [{ path = \"/a\", regex = \"(\" }]",
            "match.event[0].regex",
        ),
        (
            "match.event = [{ path = \"a.b\", exists = true }]",
            "match.event[0].path",
        ),
        ("match = { site = \"a[\" }", "match.site"),
        ("every = 0", "every"),
    ];
    for (extra, field) in cases {
        let err = Plan::from_toml_str(&format!("{base}{extra}\n")).unwrap_err();
        match err {
            PlanError::Rule { field: f, .. } => assert_eq!(f, field, "{extra}"),
            other => panic!("{extra}: {other:?}"),
        }
    }
}

#[test]
fn duplicate_names_are_rejected() {
    let plan = Plan::new(1)
        .with_rule(Rule::error(ErrorKind::Throttle).named("same"))
        .with_rule(Rule::error(ErrorKind::Timeout).named("same"));
    match plan.compile().unwrap_err() {
        PlanError::Rule {
            index,
            field,
            message,
            ..
        } => {
            assert_eq!((index, field.as_str()), (1, "name"));
            assert!(message.contains("rule 0"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn first_failure_wins_and_latencies_add() {
    let plan = Plan::new(1)
        .with_rule(Rule::latency(crate::latency::LatencyDist::constant(
            Duration::from_millis(5),
        )))
        .with_rule(Rule::error(ErrorKind::Throttle).named("a"))
        .with_rule(Rule::latency(crate::latency::LatencyDist::constant(
            Duration::from_millis(7),
        )))
        .with_rule(Rule::error(ErrorKind::Timeout).named("b"));
    let compiled = plan.compile().unwrap();
    let counter = LocalMatchCounter::new(compiled.rule_count());
    let verdict = compiled.evaluate(&Call::new(9, "x"), Duration::ZERO, &counter);
    assert_eq!(verdict.added_latency, Duration::from_millis(12));
    assert_eq!(
        verdict.failure.as_deref(),
        Some(&Failure::Error {
            rule: 1,
            kind: ErrorKind::Throttle
        })
    );
    assert_eq!(verdict.fired, 3);
}

#[test]
fn selectors_and_event_conditions() {
    let plan = Plan::new(1).with_rule(
        Rule::error(ErrorKind::Throttle)
            .for_service("dynamo*")
            .for_site("eu-*/checkout/*")
            .when_event("/tenant", EventTest::Equals(serde_json::json!("acme")))
            .when_event("/path", EventTest::Regex("^/orders/[0-9]+$".into())),
    );
    let compiled = plan.compile().unwrap();
    let counter = LocalMatchCounter::new(1);
    let hit = serde_json::json!({"tenant": "acme", "path": "/orders/12"});
    let miss = serde_json::json!({"tenant": "other", "path": "/orders/12"});
    let call = Call::new(1, "eu-west-1/checkout/orders").service("dynamodb");
    let at = Duration::ZERO;
    assert!(!compiled.evaluate(&call.event(&hit), at, &counter).is_pass());
    assert!(
        compiled
            .evaluate(&call.event(&miss), at, &counter)
            .is_pass()
    );
    assert!(
        compiled.evaluate(&call, at, &counter).is_pass(),
        "no event: conditions fail"
    );
    let other_region = Call::new(1, "us-east-1/checkout/orders")
        .service("dynamodb")
        .event(&hit);
    assert!(compiled.evaluate(&other_region, at, &counter).is_pass());
}

#[test]
fn rules_sharing_a_selector_share_its_result() {
    let ms = Duration::from_millis;
    let plan = Plan::new(1)
        .with_rule(
            Rule::latency(crate::latency::LatencyDist::constant(ms(1))).for_service("dynamo*"),
        )
        .with_rule(Rule::latency(crate::latency::LatencyDist::constant(ms(10))).for_service("s3"))
        .with_rule(
            Rule::latency(crate::latency::LatencyDist::constant(ms(100))).for_service("dynamo*"),
        )
        .with_rule(
            Rule::latency(crate::latency::LatencyDist::constant(ms(1000))).for_service("s3"),
        );
    let compiled = plan.compile().unwrap();
    let groups: Vec<usize> = compiled.rules.iter().map(|r| r.selector_group).collect();
    assert_eq!(groups, vec![0, 1, 0, 1]);
    let counter = LocalMatchCounter::new(4);
    let latency = |service| {
        compiled
            .evaluate(
                &Call::new(1, "x").service(service),
                Duration::ZERO,
                &counter,
            )
            .added_latency
    };
    assert_eq!(latency("dynamodb"), ms(101));
    assert_eq!(latency("s3"), ms(1010));
    assert_eq!(latency("sqs"), Duration::ZERO);
}

#[test]
fn expiry_applies_only_with_a_wall_clock() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let compiled = Plan::new(1)
        .with_rule(Rule::error(ErrorKind::Throttle).expiring_at(at))
        .compile()
        .unwrap();
    let counter = LocalMatchCounter::new(1);
    let call = Call::new(1, "s");
    let before = at - Duration::from_secs(1);
    assert!(
        !compiled
            .evaluate_at(&call, Duration::ZERO, before, &counter)
            .is_pass()
    );
    assert!(
        compiled
            .evaluate_at(&call, Duration::ZERO, at, &counter)
            .is_pass()
    );
    assert!(compiled.needs_wall_clock());
}

#[test]
fn a_rule_must_say_how_often_it_fires_and_without_match_applies_everywhere() {
    // An omitted trigger once meant "every call": a forgotten line faulted all traffic.
    let err = Plan::from_toml_str("[[rules]]\nfault = { error = \"throttle\" }\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("how often it fires")
            && text.contains("probability = 1.0")
            && text.contains("line 1"),
        "{text}"
    );
    let plan =
        Plan::from_toml_str("[[rules]]\nfault = { error = \"throttle\" }\nprobability = 1.0\n")
            .unwrap();
    let compiled = plan.compile().unwrap();
    let counter = LocalMatchCounter::new(1);
    let fired = (0..1_000u64)
        .filter(|&key| {
            let call = Call::new(key, "any/site")
                .service("any")
                .attempt(key as u32);
            compiled
                .evaluate(&call, Duration::ZERO, &counter)
                .failure
                .is_some()
        })
        .count();
    assert_eq!(fired, 1_000);
}

#[test]
fn compiled_plans_keep_their_source_and_errors_their_path() {
    let text =
        "seed = 9\n[[rules]]\nname = \"x\"\nfault = { error = \"throttle\" }\nprobability = 0.5\n";
    let compiled = CompiledPlan::from_toml_str(text).unwrap();
    assert_eq!(compiled.plan(), &Plan::from_toml_str(text).unwrap());
    let err = CompiledPlan::from_file("/nonexistent/plan.toml").unwrap_err();
    assert!(
        matches!(&err, PlanError::Io { path, .. } if path == std::path::Path::new("/nonexistent/plan.toml"))
    );
    let err = CompiledPlan::from_json_str("{").unwrap_err();
    assert!(err.to_string().starts_with("<json>:"), "{err}");
    let err = CompiledPlan::from_toml_str(
        "[[rules]]\nname = \"bad\"\nfault = { error = \"throttle\" }\nprobability = -1\n",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("rule 0 (\"bad\") field `rules[0].probability`"),
        "{err}"
    );
}

#[test]
fn a_plan_of_many_distinct_rules_compiles_with_one_selector_group_each() {
    let mut plan = Plan::new(1);
    for index in 0..20_000 {
        plan = plan.with_rule(
            Rule::error(ErrorKind::Throttle)
                .named(format!("r{index}"))
                .for_service(format!("s{index}"))
                .with_probability(0.5),
        );
    }
    // Quadratic name and selector checks took 2e8 comparisons here; the time is measured in
    // `cargo bench --bench injector -- plan_compile`, not asserted (machines are noisy).
    let compiled = plan.compile().unwrap();
    assert_eq!(compiled.rule_count(), 20_000);
    let groups: Vec<usize> = compiled.rules.iter().map(|r| r.selector_group).collect();
    assert!(
        groups
            .iter()
            .enumerate()
            .all(|(index, &group)| group == index)
    );
}

#[test]
fn a_window_alone_or_a_ramp_alone_gates_the_compiled_rule() {
    let secs = Duration::from_secs;
    let windowed = Plan::new(1)
        .with_rule(Rule::error(ErrorKind::Throttle).during(secs(10), secs(20)))
        .compile()
        .unwrap();
    let ramped = Plan::new(1)
        .with_rule(Rule::error(ErrorKind::Throttle).ramping_up_over(secs(10)))
        .compile()
        .unwrap();
    assert!(windowed.needs_elapsed() && ramped.needs_elapsed());
    let counter = LocalMatchCounter::new(1);
    let fires = |plan: &CompiledPlan, at: Duration| {
        !plan.evaluate(&Call::new(3, "s"), at, &counter).is_pass()
    };
    assert!(!fires(&windowed, secs(5)));
    assert!(fires(&windowed, secs(15)));
    assert!(!fires(&windowed, secs(30)));
    assert!(
        !fires(&ramped, Duration::ZERO),
        "a ramp starts at probability 0"
    );
    assert!(fires(&ramped, secs(10)));
}

#[test]
fn files_are_read_by_extension_and_keep_seed_and_clock_needs() {
    let dir = std::env::temp_dir().join(format!("chaos-core-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml_path = dir.join("plan.toml");
    let json_path = dir.join("plan.json");
    std::fs::write(
        &toml_path,
        "seed = 9\n[[rules]]\nname = \"x\"\nfault = { error = \"throttle\" }\nprobability = 0.5\n",
    )
    .unwrap();
    std::fs::write(
        &json_path,
        r#"{"seed": 9, "rules": [{"name": "x", "fault": {"error": "throttle"}, "probability": 0.5}]}"#,
    )
    .unwrap();
    let from_toml = CompiledPlan::from_file(&toml_path).unwrap();
    let from_json = CompiledPlan::from_file(&json_path).unwrap();
    assert_eq!(&Plan::from_file(&json_path).unwrap(), from_json.plan());
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(from_toml.plan(), from_json.plan());
    assert_eq!(from_toml.seed(), 9);
    assert_eq!(Plan::new(12345).compile().unwrap().seed(), 12345);
    assert!(!from_toml.needs_elapsed() && !from_toml.needs_wall_clock());
}

#[test]
fn a_ramp_scales_the_rule_probability() {
    // Probability 0.5 halfway up a ramp fires with probability 0.25. Over 4,000 keys the
    // count is binomial: mean 1,000, sigma 27.4, so 5 sigma is within 863..1137; the
    // full probability (2,000) or a sum (4,000) lies far outside.
    let secs = Duration::from_secs;
    let compiled = Plan::new(7)
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .with_probability(0.5)
                .ramping_up_over(secs(10)),
        )
        .compile()
        .unwrap();
    let counter = LocalMatchCounter::new(1);
    let fired = |at: Duration| {
        (0..4_000u64)
            .filter(|&key| {
                !compiled
                    .evaluate(&Call::new(key, "s"), at, &counter)
                    .is_pass()
            })
            .count()
    };
    let half = fired(secs(5));
    assert!((863..=1137).contains(&half), "{half}");
    // At full intensity the rule's own probability: mean 2,000, sigma 31.6.
    let full = fired(secs(20));
    assert!((1842..=2158).contains(&full), "{full}");
}

#[test]
fn event_fields_can_be_required_present_or_absent() {
    let compiled = Plan::new(1)
        .with_rule(
            Rule::error(ErrorKind::Throttle)
                .when_event("/tenant", EventTest::Exists(true))
                .when_event("/debug", EventTest::Exists(false)),
        )
        .compile()
        .unwrap();
    let counter = LocalMatchCounter::new(1);
    let fires = |event: serde_json::Value| {
        !compiled
            .evaluate(&Call::new(1, "s").event(&event), Duration::ZERO, &counter)
            .is_pass()
    };
    assert!(fires(serde_json::json!({"tenant": "a"})));
    assert!(!fires(serde_json::json!({})));
    assert!(!fires(serde_json::json!({"tenant": "a", "debug": true})));
}

#[test]
fn patterns_take_the_shortest_path_and_match_like_globs() {
    use super::selector::Pattern;
    let shown = |glob: Option<&str>| format!("{:?}", Pattern::compile(glob).unwrap());
    assert_eq!(shown(None), "Any");
    assert_eq!(shown(Some("*")), "Any");
    assert_eq!(shown(Some("**")), "Any");
    assert_eq!(shown(Some("s3")), r#"Exact("s3")"#);
    assert_eq!(shown(Some("dynamo*")), r#"Prefix("dynamo")"#);
    assert_eq!(shown(Some("*-west-1")), r#"Suffix("-west-1")"#);
    assert_eq!(shown(Some("eu-*/x")), r#"Glob("eu-*/x")"#);
    // A leading star before more glob syntax is a glob, not a literal suffix.
    let pattern = Pattern::compile(Some("*a*b")).unwrap();
    assert!(pattern.matches("xxaYYb"));
    assert!(!pattern.matches("xxa*c"));
    assert_eq!(shown(Some("*a*b")), r#"Glob("*a*b")"#);
}

// Equivalent mutant: in `CompiledPlan::evaluate_observed`, replacing the selector memo's
// guard `known != UNKNOWN` with `false` only recomputes `selects(call)`, a pure function of
// the rule and call, so every verdict is unchanged (the memo is a speed-up).

#[test]
fn match_counters_count_each_rule_from_zero() {
    let local = LocalMatchCounter::new(2);
    let shared = super::counter::SharedMatchCounter::new(2);
    for counter in [&local as &dyn super::counter::MatchCounter, &shared] {
        assert_eq!(
            [0, 0, 1, 0, 1, 0].map(|rule| counter.next_ordinal(rule)),
            [0, 1, 0, 2, 1, 3]
        );
        assert_eq!(
            counter.next_ordinal(5),
            0,
            "a rule out of range counts nothing"
        );
    }
    // Through a plan: `every 3` fires on the third and sixth matching calls.
    let compiled = Plan::new(1)
        .with_rule(Rule::error(ErrorKind::Throttle).every(3))
        .compile()
        .unwrap();
    let counter = LocalMatchCounter::new(1);
    let fired: Vec<bool> = (0..7)
        .map(|key| {
            !compiled
                .evaluate(&Call::new(key, "s"), Duration::ZERO, &counter)
                .is_pass()
        })
        .collect();
    assert_eq!(fired, [false, false, true, false, false, true, false]);
}

#[test]
fn a_call_site_keeps_its_name() {
    const ORDERS: CallSite<'static> = CallSite::new("checkout/orders");
    assert_eq!(ORDERS.name(), "checkout/orders");
    assert_eq!(Call::at(1, ORDERS).site, "checkout/orders");
}

// Equivalent mutant: `Call::at` without `site_hash` hashes the site's name with `hash_str` when deciding,
// which `CallSite::new` computed the same way (`hash_str_const`); the field is a speed-up.

/// Rules on `exact` services `s0`, `s1`, ... then `globs` rules on `s*`, all firing always:
/// the first rule that selects a call decides it.
fn exact_then_glob_rules(exact: usize, globs: usize) -> CompiledPlan {
    let mut plan = Plan::new(5);
    for i in 0..exact {
        plan.rules
            .push(Rule::error(ErrorKind::Throttle).for_service(format!("s{i}")));
    }
    for _ in 0..globs {
        plan.rules
            .push(Rule::error(ErrorKind::Throttle).for_service("s*"));
    }
    plan.compile().unwrap()
}

#[test]
fn the_service_index_narrows_or_gives_up_without_changing_a_decision() {
    // 3 services x (1 + 2 glob rules) entries: indexed. 20 x (1 + 20): past the limit.
    for (exact, globs, indexed) in [(3, 2, true), (20, 20, false)] {
        let plan = exact_then_glob_rules(exact, globs);
        assert_eq!(
            plan.index.candidates("s1").len() < plan.rule_count(),
            indexed
        );
        let counter = LocalMatchCounter::new(plan.rule_count());
        let first_rule = |service: &str| {
            plan.evaluate(
                &Call::new(1, "x").service(service),
                Duration::ZERO,
                &counter,
            )
            .failure
            .map(|failure| failure.rule())
        };
        assert_eq!(first_rule("s1"), Some(1));
        assert_eq!(first_rule(&format!("s{}", exact - 1)), Some(exact - 1));
        assert_eq!(first_rule("s99"), Some(exact), "the first glob rule");
        assert_eq!(first_rule("t"), None);
    }
}

#[test]
fn a_partition_needs_a_window_with_an_end() {
    let base = "[[rules]]\nname = \"cut\"\nfault = \"partition\"\nprobability = 1.0\n";
    for (extra, field) in [
        ("", "window"),
        ("window = { start = \"1m\" }\n", "window.duration"),
    ] {
        let err = Plan::from_toml_str(&format!("{base}{extra}")).unwrap_err();
        match &err {
            PlanError::Rule { field: got, .. } => assert_eq!(got, field, "{err}"),
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&format!("rules[0].{field}")) && text.contains("duration = \"30s\""),
            "{text}"
        );
    }
    let plan = Plan::from_toml_str(&format!(
        "{base}window = {{ start = \"1m\", duration = \"30s\" }}\n"
    ))
    .expect("valid");
    assert_eq!(plan.rules[0].fault, Fault::Partition);
}

#[test]
fn a_partition_holds_a_call_until_its_window_ends() {
    let s = Duration::from_secs;
    let plan = Plan::new(4)
        .with_rule(Rule::partition(s(10), s(30)).named("cut"))
        .compile()
        .expect("valid");
    let counter = LocalMatchCounter::new(1);
    let at = |elapsed: Duration| plan.evaluate(&Call::new(3, "orders"), elapsed, &counter);
    assert!(at(s(9)).is_pass(), "before the window");
    for (elapsed, hold) in [
        (s(10), s(30)),
        (s(25), s(15)),
        (Duration::from_millis(39_999), Duration::from_millis(1)),
    ] {
        let verdict = at(elapsed);
        assert_eq!(
            (verdict.partition_hold, verdict.added_latency, verdict.fired),
            (hold, hold, 1),
            "at {elapsed:?}"
        );
        assert!(verdict.failure.is_none());
    }
    assert!(at(s(40)).is_pass(), "the window is over: not held");
}

#[test]
fn partitions_hold_until_the_last_heals_and_latencies_add_on_top() {
    let s = Duration::from_secs;
    let plan = Plan::new(4)
        .with_rule(Rule::partition(s(0), s(20)).named("short"))
        .with_rule(Rule::latency(LatencyDist::constant(Duration::from_millis(7))).named("slow"))
        .with_rule(Rule::partition(s(5), s(25)).named("long"))
        .with_rule(Rule::error(ErrorKind::Throttle).named("throttle"))
        .compile()
        .expect("valid");
    let verdict = plan.evaluate(&Call::new(1, "orders"), s(10), &LocalMatchCounter::new(4));
    // Held until 30 s (the later end), plus the 7 ms latency; the error still fires.
    assert_eq!(verdict.partition_hold, s(20));
    assert_eq!(verdict.added_latency, s(20) + Duration::from_millis(7));
    assert_eq!(verdict.fired, 4);
    assert!(matches!(
        verdict.failure.as_deref(),
        Some(Failure::Error { rule: 3, .. })
    ));
    // A resolved site decides the same.
    let site = crate::plan::CallSite::new("orders");
    let resolved = plan.resolve(&site);
    let call = Call::at(1, site);
    assert_eq!(
        plan.evaluate_resolved(&resolved, &call, s(10), &LocalMatchCounter::new(4)),
        verdict
    );
}

#[test]
fn corrupt_rules_parse_locate_their_errors_and_replay() {
    let text = "seed = 5\n[[rules]]\nname = \"mangle\"\nfault = { corrupt = \"truncate\" }\nprobability = 1.0\n";
    let plan = CompiledPlan::from_toml_str(text).expect("a valid plan");
    let counter = crate::advanced::LocalMatchCounter::new(1);
    let decide = |key: u64, attempt: u32| {
        let call = Call::new(key, "orders").attempt(attempt);
        plan.evaluate(&call, Duration::ZERO, &counter)
    };
    let corruption = |verdict: Verdict| match verdict.failure.as_deref() {
        Some(Failure::Corrupt {
            rule: 0,
            corruption,
        }) => *corruption,
        other => panic!("expected a corruption, got {other:?}"),
    };
    let first = corruption(decide(9, 0));
    assert_eq!(first.mode, crate::corrupt::CorruptMode::Truncate);
    // A pure function of the decision's inputs: the same call, the same seed; another
    // attempt or request, another.
    assert_eq!(corruption(decide(9, 0)), first);
    assert_ne!(corruption(decide(9, 1)).seed, first.seed);
    assert_ne!(corruption(decide(10, 0)).seed, first.seed);

    let err =
        Plan::from_toml_str("[[rules]]\nprobability = 1.0\nfault = { corrupt = \"garble\" }\n")
            .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("line 3") && text.contains("json_invalid") && text.contains("garble"),
        "{text}"
    );
}

#[test]
fn a_corruption_is_a_failure_and_the_first_failure_wins() {
    let plan = Plan::new(1)
        .with_rule(Rule::new(crate::Fault::Corrupt(
            crate::corrupt::CorruptMode::Empty,
        )))
        .with_rule(Rule::error(ErrorKind::Throttle))
        .compile()
        .expect("a valid plan");
    let verdict = plan.evaluate(
        &Call::new(1, "orders"),
        Duration::ZERO,
        &crate::advanced::LocalMatchCounter::new(2),
    );
    assert!(matches!(
        verdict.failure.as_deref(),
        Some(Failure::Corrupt { rule: 0, .. })
    ));
    let effect = verdict.effect(None);
    assert!(matches!(
        effect.outcome,
        crate::Outcome::Fail {
            kind: crate::InjectedKind::Corrupt(_),
            ..
        }
    ));
}
