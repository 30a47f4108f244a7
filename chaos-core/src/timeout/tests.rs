use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn worst_case_counts_attempts_and_backoff() {
    let hop = Hop::new("db")
        .attempt_timeout(ms(100))
        .attempts(3)
        .backoff(Backoff::exponential(ms(10), ms(15)));
    // 3 x 100 + 10 + 15 (capped from 20).
    assert_eq!(hop.worst_case(), Some(ms(325)));
    assert_eq!(hop.clone().timeout(ms(200)).worst_case(), Some(ms(200)));
    assert_eq!(Hop::new("x").worst_case(), None);
}

#[test]
fn sequential_calls_share_the_callers_budget() {
    let chain = Hop::new("fn")
        .timeout(ms(1000))
        .calls(Hop::new("a").timeout(ms(600)))
        .calls(Hop::new("b").timeout(ms(600)));
    assert_eq!(
        check(&chain),
        vec![Finding::ExceedsCaller {
            hop: "fn/b".into(),
            worst_case: ms(600),
            caller_has_left: ms(400)
        }]
    );
    let parallel = Hop::new("fn")
        .timeout(ms(1000))
        .parallel()
        .calls(Hop::new("a").timeout(ms(600)))
        .calls(Hop::new("b").timeout(ms(600)));
    assert!(check(&parallel).is_empty());
}

#[test]
fn missing_timeouts_are_reported() {
    let chain = Hop::new("fn").timeout(ms(1000)).calls(Hop::new("http"));
    assert_eq!(
        check(&chain),
        vec![Finding::NoTimeout {
            hop: "fn/http".into()
        }]
    );
}

#[test]
fn absurd_inputs_neither_panic_nor_spin() {
    let huge = Duration::from_secs(u64::MAX / 4);
    let hop = Hop::new("db")
        .attempt_timeout(Duration::from_secs(1))
        .attempts(u32::MAX)
        .backoff(Backoff::exponential(huge, huge));
    assert_eq!(hop.worst_case(), Some(Duration::MAX));
    let slow = Backoff::exponential(ms(10), ms(15));
    assert_eq!(
        slow.total_max_delay(u32::MAX),
        ms(10) + ms(15) * (u32::MAX - 1)
    );
    // Same answer as adding the delays one by one.
    for retries in 0..80 {
        let b = Backoff::exponential(ms(1), Duration::from_secs(3600));
        let by_hand = (1..=retries).fold(Duration::ZERO, |t, r| t.saturating_add(b.max_delay(r)));
        assert_eq!(b.total_max_delay(retries), by_hand, "{retries}");
    }
}

#[test]
fn the_tighter_of_a_callers_timeouts_is_its_budget() {
    let chain = Hop::new("fn")
        .timeout(Duration::from_secs(5))
        .attempt_timeout(Duration::from_secs(10))
        .calls(Hop::new("db").timeout(Duration::from_secs(8)));
    assert!(
        matches!(check(&chain).as_slice(), [Finding::ExceedsCaller { hop, .. }] if hop == "fn/db")
    );
}

#[test]
fn hops_read_from_a_file_are_checked_naming_hop_and_field() {
    let cases = [
        ("name = \"api\"\nattempts = 0\n", "api", "attempts"),
        ("name = \"api\"\ntimeout = \"0s\"\n", "api", "timeout"),
        (
            "name = \"api\"\nattempt_timeout = \"0ms\"\n",
            "api",
            "attempt_timeout",
        ),
        ("name = \"  \"\ntimeout = \"1s\"\n", "  ", "name"),
        (
            "name = \"api\"\ntimeout = \"1s\"\n[[calls]]\nname = \"db\"\nattempts = 0\n",
            "db",
            "attempts",
        ),
    ];
    for (text, hop, field) in cases {
        let error = toml::from_str::<Hop>(text).unwrap_err().to_string();
        assert!(
            error.contains(&format!("hop {hop:?}")) && error.contains(&format!("`{field}`")),
            "{text}: {error}"
        );
    }
    let fine: Hop = toml::from_str("name = \"api\"\ntimeout = \"1s\"\n").unwrap();
    assert_eq!(fine.validate(), Ok(()));
}

#[test]
fn validate_names_the_path_of_a_bad_hop_built_in_code() {
    let mut bad = Hop::new("db");
    bad.attempts = 0;
    let chain = Hop::new("api")
        .timeout(ms(100))
        .calls(Hop::new("fn").calls(bad));
    let error = chain.validate().unwrap_err();
    assert_eq!((error.hop.as_str(), error.field), ("api/fn/db", "attempts"));
}

#[test]
fn a_worst_case_equal_to_what_is_left_fits_and_one_nanosecond_more_does_not() {
    let chain = |worst: Duration| {
        Hop::new("fn")
            .timeout(ms(1_000))
            .work(ms(400))
            .calls(Hop::new("db").timeout(worst))
    };
    // 1 s budget, 400 ms of own work before the call: 600 ms left.
    assert_eq!(check(&chain(ms(600))), vec![]);
    assert_eq!(
        check(&chain(ms(600) + Duration::from_nanos(1))),
        vec![Finding::ExceedsCaller {
            hop: "fn/db".into(),
            worst_case: ms(600) + Duration::from_nanos(1),
            caller_has_left: ms(600),
        }]
    );
}

#[test]
fn parallel_calls_each_get_the_whole_budget_sequential_ones_share_it() {
    let calls = |parallel: bool| {
        let fan = Hop::new("fn")
            .timeout(ms(1_000))
            .calls(Hop::new("a").timeout(ms(600)))
            .calls(Hop::new("b").timeout(ms(600)));
        check(&if parallel { fan.parallel() } else { fan })
    };
    assert_eq!(calls(true), vec![]);
    assert_eq!(
        calls(false),
        vec![Finding::ExceedsCaller {
            hop: "fn/b".into(),
            worst_case: ms(600),
            caller_has_left: ms(400),
        }]
    );
}

#[test]
fn backoff_doubles_from_base_up_to_the_cap() {
    let backoff = Backoff::exponential(ms(100), ms(350));
    let delays: Vec<Duration> = (1..=4).map(|r| backoff.max_delay(r)).collect();
    assert_eq!(delays, vec![ms(100), ms(200), ms(350), ms(350)]);
    let constant = Backoff {
        exponential: false,
        ..backoff
    };
    assert_eq!(constant.max_delay(3), ms(100));
    assert_eq!(backoff.total_max_delay(0), Duration::ZERO);
    assert_eq!(backoff.total_max_delay(3), ms(650));
    // Attempts x per-attempt timeout + backoff.
    let hop = Hop::new("db")
        .attempt_timeout(ms(50))
        .attempts(3)
        .backoff(backoff);
    assert_eq!(hop.worst_case(), Some(ms(150) + ms(300)));
    assert_eq!(hop.clone().timeout(ms(200)).worst_case(), Some(ms(200)));
}

#[test]
fn a_backoff_read_from_a_file_is_exponential_unless_it_says_otherwise() {
    let hop: Hop = toml::from_str(
        "name = \"db\"\nattempt_timeout = \"1s\"\nbackoff = { base = \"100ms\", cap = \"1s\" }\n",
    )
    .unwrap();
    assert_eq!(hop.backoff, Backoff::exponential(ms(100), ms(1000)));
    let constant: Backoff =
        toml::from_str("base = \"100ms\"\ncap = \"1s\"\nexponential = false\n").unwrap();
    assert_eq!(constant.max_delay(5), ms(100));
}

#[test]
fn a_callee_without_timeouts_is_bounded_by_its_work_and_timed_calls() {
    // Own work only.
    assert_eq!(Hop::new("fn").work(ms(100)).worst_case(), Some(ms(100)));
    // Calls with timeouts and no own work: their sum, or the slowest in parallel.
    let fan = Hop::new("fn")
        .calls(Hop::new("a").timeout(ms(300)))
        .calls(Hop::new("b").timeout(ms(200)));
    assert_eq!(fan.callee_worst_case(), Some(ms(500)));
    assert_eq!(fan.clone().parallel().callee_worst_case(), Some(ms(300)));
    assert_eq!(fan.clone().work(ms(50)).worst_case(), Some(ms(550)));
    // An opaque leaf, or a call below with no timeout: unbounded.
    assert_eq!(Hop::new("http").worst_case(), None);
    assert_eq!(Hop::new("fn").calls(Hop::new("http")).worst_case(), None);
    // The caller sees the bound and reports what exceeds its budget.
    let chain = Hop::new("api").timeout(ms(400)).calls(fan);
    assert_eq!(
        check(&chain),
        vec![
            Finding::NoTimeout {
                hop: "api/fn".into()
            },
            Finding::ExceedsCaller {
                hop: "api/fn".into(),
                worst_case: ms(500),
                caller_has_left: ms(400),
            },
        ]
    );
}

#[test]
fn findings_say_what_is_wrong_and_how_to_fix_it() {
    let exceeds = Finding::ExceedsCaller {
        hop: "api/fn".into(),
        worst_case: ms(1500),
        caller_has_left: ms(400),
    };
    assert_eq!(
        exceeds.to_string(),
        "api/fn: can take 1s 500ms but its caller has only 400ms left; lower its timeout or \
         attempts, or raise the caller's timeout"
    );
    let none = Finding::NoTimeout {
        hop: "api/http".into(),
    };
    assert_eq!(
        none.to_string(),
        "api/http: no timeout; a hung callee holds the caller until its own limit"
    );
}
