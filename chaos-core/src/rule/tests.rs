use super::*;

#[test]
fn counting_triggers() {
    let every_third = Trigger {
        every: Some(3),
        ..Trigger::default()
    };
    let fired: Vec<u64> = (0..9).filter(|&o| every_third.admits_ordinal(o)).collect();
    assert_eq!(fired, vec![2, 5, 8]);
    let first_two = Trigger {
        first: Some(2),
        ..Trigger::default()
    };
    assert!(first_two.admits_ordinal(1) && !first_two.admits_ordinal(2));
    let after_two = Trigger {
        after: Some(2),
        ..Trigger::default()
    };
    assert!(!after_two.admits_ordinal(1) && after_two.admits_ordinal(2));
}

#[test]
fn window_and_ramp() {
    let s = Rule::new(Fault::Status(503))
        .during(Duration::from_secs(10), Duration::from_secs(20))
        .ramping_up_over(Duration::from_secs(10))
        .schedule;
    assert_eq!(s.intensity(Duration::from_secs(9)), 0.0);
    assert_eq!(s.intensity(Duration::from_secs(10)), 0.0);
    assert_eq!(s.intensity(Duration::from_secs(15)), 0.5);
    assert_eq!(s.intensity(Duration::from_secs(25)), 1.0);
    assert_eq!(s.intensity(Duration::from_secs(30)), 0.0);
}

#[test]
fn a_file_rule_states_its_trigger_and_omitted_fields_take_documented_defaults() {
    #[derive(Deserialize)]
    struct Doc {
        rules: Vec<Rule>,
    }
    let missing = toml::from_str::<Doc>("[[rules]]\nfault = { error = \"throttle\" }\n")
        .err()
        .expect("a rule without a trigger is rejected");
    assert!(
        missing.to_string().contains("how often it fires"),
        "{missing}"
    );
    // A counting trigger says how often by itself: the probability defaults to 1.0.
    let doc: Doc =
        toml::from_str("[[rules]]\nfault = { error = \"throttle\" }\nevery = 3\n").unwrap();
    assert_eq!(doc.rules[0].trigger.probability, 1.0);
    assert_eq!(doc.rules[0].trigger.every, Some(3));
    let doc: Doc =
        toml::from_str("[[rules]]\nfault = { error = \"throttle\" }\nprobability = 1.0\n").unwrap();
    let rule = &doc.rules[0];
    assert_eq!(rule.trigger, Trigger::default());
    assert_eq!(rule.selector, Selector::default());
    assert_eq!(rule.schedule, Schedule::default());
    assert_eq!(rule.name, None);
    assert_eq!(*rule, Rule::error(ErrorKind::Throttle));
}

#[test]
fn a_window_opens_at_its_start_and_closes_at_its_end() {
    let ns = Duration::from_nanos;
    let start = Duration::from_secs(10);
    let s = Rule::new(Fault::Status(503))
        .during(start, Duration::from_secs(20))
        .schedule;
    assert_eq!(s.intensity(start - ns(1)), 0.0);
    assert_eq!(s.intensity(start), 1.0);
    assert_eq!(s.intensity(Duration::from_secs(30) - ns(1)), 1.0);
    assert_eq!(s.intensity(Duration::from_secs(30)), 0.0);
    let open_ended = Rule::new(Fault::Status(503)).starting_at(start).schedule;
    assert_eq!(open_ended.intensity(start - ns(1)), 0.0);
    assert_eq!(open_ended.intensity(Duration::MAX), 1.0);
}

#[test]
fn a_ramp_reaches_full_probability_exactly_at_its_end() {
    let s = Rule::new(Fault::Status(503))
        .ramping_up_over(Duration::from_secs(4))
        .schedule;
    assert_eq!(s.intensity(Duration::ZERO), 0.0);
    assert_eq!(s.intensity(Duration::from_secs(1)), 0.25);
    assert!(s.intensity(Duration::from_secs(4) - Duration::from_nanos(1)) < 1.0);
    assert_eq!(s.intensity(Duration::from_secs(4)), 1.0);
    assert_eq!(s.intensity(Duration::from_secs(400)), 1.0);
}

#[test]
fn counting_triggers_at_their_limits() {
    let trigger = Trigger {
        every: Some(1),
        first: Some(u64::MAX),
        after: Some(0),
        ..Trigger::default()
    };
    assert!(trigger.admits_ordinal(0));
    assert!(trigger.admits_ordinal(u64::MAX));
}

#[test]
fn only_counting_conditions_count_and_only_windows_and_ramps_are_timed() {
    assert!(!Trigger::default().counts_calls());
    for trigger in [
        Rule::error(ErrorKind::Throttle).every(2).trigger,
        Rule::error(ErrorKind::Throttle).first(2).trigger,
        Rule::error(ErrorKind::Throttle).after(2).trigger,
    ] {
        assert!(trigger.counts_calls(), "{trigger:?}");
    }
    assert!(!Schedule::default().is_timed());
    let expiring = Rule::error(ErrorKind::Throttle)
        .expiring_at(SystemTime::UNIX_EPOCH)
        .schedule;
    assert!(
        !expiring.is_timed(),
        "an absolute expiry needs the wall clock, not elapsed time"
    );
    let window = Rule::error(ErrorKind::Throttle)
        .during(Duration::ZERO, Duration::from_secs(1))
        .schedule;
    let ramp = Rule::error(ErrorKind::Throttle)
        .ramping_up_over(Duration::from_secs(1))
        .schedule;
    assert!(window.is_timed() && ramp.is_timed());
}

#[test]
fn every_zero_admits_nothing_rather_than_dividing_by_zero() {
    let trigger = Trigger {
        every: Some(0),
        ..Trigger::default()
    };
    assert!(!trigger.admits_ordinal(0));
    assert!(!trigger.admits_ordinal(41));
}

#[test]
fn defaults_are_left_out_of_the_written_form() {
    #[derive(Serialize)]
    struct Doc {
        rules: Vec<Rule>,
    }
    let minimal = toml::to_string(&Doc {
        rules: vec![Rule::error(ErrorKind::Throttle)],
    })
    .unwrap();
    assert_eq!(
        minimal,
        "[[rules]]\nprobability = 1.0\n\n[rules.fault]\nerror = \"throttle\"\n"
    );
    let set = toml::to_string(&Doc {
        rules: vec![
            Rule::error(ErrorKind::Throttle)
                .with_probability(0.5)
                .for_service("orders"),
        ],
    })
    .unwrap();
    assert!(
        set.contains("probability = 0.5") && set.contains("service = \"orders\""),
        "{set}"
    );
}
