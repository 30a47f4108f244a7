//! Network hops between regions (`[[network]]`, issue 11 item 3), each against a value derived
//! independently: constant hops give exact latencies (request hop + service + response hop),
//! drawn hops a mean of E[request] + service + E[response] within its standard error.

mod support;

use chaos_sim::{Report, RunMetrics, Simulation, scenario};
use support::{close, constant_latency_ns};

const MS: u64 = 1_000_000;
/// Requests arrive one second apart, the first at 1 s; 20 of them.
const LAST_ARRIVAL_NS: u64 = 20_000 * MS;

/// The cross-region setting of these tests: `api` in `caller`, calling `users` (10 ms,
/// replicated in us-east-1 and us-west-2 unless `regions` says otherwise) one request at a
/// time, so a request's latency is its call's.
struct Setup<'a> {
    caller: &'a str,
    regions: &'a str,
    call: &'a str,
    capacity: &'a str,
    dependency_hops: &'a str,
    network: &'a str,
    fault: &'a str,
    load: &'a str,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            caller: "us-east-1",
            regions: r#"["us-east-1", "us-west-2"]"#,
            call: r#"{ call = "users" }"#,
            capacity: r#""unlimited""#,
            dependency_hops: "",
            network: "",
            fault: "",
            load: "requests = 20\n[load]\ntarget = \"api\"\nkind = \"constant\"\nrate_per_s = 1",
        }
    }
}

impl Setup<'_> {
    fn text(&self) -> String {
        format!(
            r#"[simulation]
seed = 5
{load}
[[function]]
name = "api"
region = "{caller}"
cold_start = "0ms"
handler = [{call}]
[[dependency]]
name = "users"
regions = {regions}
latency = "10ms"
capacity = {capacity}
{dependency_hops}
{network}
{fault}
"#,
            load = self.load,
            caller = self.caller,
            call = self.call,
            regions = self.regions,
            capacity = self.capacity,
            dependency_hops = self.dependency_hops,
            network = self.network,
            fault = self.fault,
        )
    }

    fn sim(&self) -> Simulation {
        sim(&self.text())
    }
}

fn sim(text: &str) -> Simulation {
    support::sim_named(text, "regions.toml")
}

/// The far pair of these tests: 30 ms out, 35 ms back.
const FAR: &str = r#"
[[network]]
from = "us-east-1"
to = "us-west-2"
request = "30ms"
response = "35ms"
"#;

/// Calls served in us-east-1 fail with a 503, at once (the primary replica is down).
const EAST_DOWN: &str = r#"
[[fault]]
name = "east-down"
fault = { error = { server_error = 503 } }
match = { site = "us-east-1/*", service = "users" }
probability = 1.0
"#;

/// Calls served in us-west-2 fail with a 503.
const WEST_DOWN: &str = r#"
[[fault]]
name = "west-down"
fault = { error = { server_error = 503 } }
match = { site = "us-west-2/*", service = "users" }
probability = 1.0
"#;

const FAILOVER_WEST: &str = r#"{ call = "users", failover = "us-west-2" }"#;
const FAILOVER_EAST: &str = r#"{ call = "users", failover = "us-east-1" }"#;

#[test]
fn a_failover_to_a_far_region_adds_exactly_its_request_and_response_hops() {
    // Every call fails at once in us-east-1 and fails over: 30 + 10 + 35 ms. An optimistic
    // item's attempt is a read and then a conditional write, two round trips around its
    // 10 ms: 2 x (30 + 35) + 10 ms.
    for (capacity, far_ms) in [
        (r#""unlimited""#, 75),
        (
            r#"{ token_bucket = { rate_per_s = 1000, burst = 1000 } }"#,
            75,
        ),
        (r#"{ server = { workers = 2 } }"#, 75),
        (r#""optimistic_item""#, 140),
    ] {
        let with = Setup {
            call: FAILOVER_WEST,
            network: FAR,
            fault: EAST_DOWN,
            capacity,
            ..Setup::default()
        }
        .sim();
        let without = Setup {
            call: FAILOVER_WEST,
            fault: EAST_DOWN,
            capacity,
            ..Setup::default()
        }
        .sim();
        let (far, near) = (with.run_experiment(), without.run_experiment());
        assert_eq!((far.failovers, near.failovers), (20, 20), "{capacity}");
        assert!(close(constant_latency_ns(&far), far_ms * MS), "{capacity}");
        assert!(close(constant_latency_ns(&near), 10 * MS), "{capacity}");
        // Exact: the last request ends its call's latency after it arrived.
        assert_eq!(far.work_end_ns, LAST_ARRIVAL_NS + far_ms * MS, "{capacity}");
        assert_eq!(
            far.work_end_ns - near.work_end_ns,
            (far_ms - 10) * MS,
            "{capacity}"
        );
        // The control run's calls stay in us-east-1: no pair, no hop.
        let control = with.run_control();
        assert_eq!(control.failovers, 0);
        assert_eq!(control.work_end_ns, LAST_ARRIVAL_NS + 10 * MS, "{capacity}");
    }
}

#[test]
fn calls_inside_a_region_pay_only_that_regions_own_entry() {
    // Only the far pair: an in-region call crosses nothing.
    let far_only = Setup {
        network: FAR,
        ..Setup::default()
    }
    .sim()
    .run_control();
    assert_eq!(far_only.work_end_ns, LAST_ARRIVAL_NS + 10 * MS);
    // `from = to` sets the in-region hops: 1 + 10 + 2 ms; the far pair still applies after
    // a failover.
    let within = format!(
        "{FAR}\n[[network]]\nfrom = \"us-east-1\"\nto = \"us-east-1\"\nrequest = \"1ms\"\n\
         response = \"2ms\"\n"
    );
    let s = Setup {
        call: FAILOVER_WEST,
        network: &within,
        fault: EAST_DOWN,
        ..Setup::default()
    }
    .sim();
    assert_eq!(s.run_control().work_end_ns, LAST_ARRIVAL_NS + 13 * MS);
    assert_eq!(s.run_experiment().work_end_ns, LAST_ARRIVAL_NS + 75 * MS);
}

#[test]
fn a_dependencys_own_hops_win_over_the_region_pair() {
    let s = Setup {
        call: FAILOVER_WEST,
        network: FAR,
        fault: EAST_DOWN,
        dependency_hops: r#"hops = { request = "2ms", response = "3ms" }"#,
        ..Setup::default()
    }
    .sim();
    // 2 + 10 + 3 ms from every region, in-region or failed over.
    assert_eq!(s.run_control().work_end_ns, LAST_ARRIVAL_NS + 15 * MS);
    let m = s.run_experiment();
    assert_eq!(m.failovers, 20);
    assert_eq!(m.work_end_ns, LAST_ARRIVAL_NS + 15 * MS);
    // One way only: the other way has no hop, and the pair does not fill it in.
    let one_way = Setup {
        call: FAILOVER_WEST,
        network: FAR,
        fault: EAST_DOWN,
        dependency_hops: r#"hops = { request = "2ms" }"#,
        ..Setup::default()
    }
    .sim()
    .run_experiment();
    assert_eq!(one_way.work_end_ns, LAST_ARRIVAL_NS + 12 * MS);
}

#[test]
fn a_pair_serves_both_ways_unless_its_reverse_is_listed() {
    // From us-west-2, failing over to us-east-1: the pair listed from us-east-1 applies
    // mirrored (request stays caller to dependency): 30 + 10 + 35 ms.
    let mirrored = Setup {
        caller: "us-west-2",
        call: FAILOVER_EAST,
        network: FAR,
        fault: WEST_DOWN,
        ..Setup::default()
    }
    .sim()
    .run_experiment();
    assert_eq!(mirrored.failovers, 20);
    assert_eq!(mirrored.work_end_ns, LAST_ARRIVAL_NS + 75 * MS);
    // The reverse listed too: each direction its own, 40 + 10 + 45 ms from us-west-2 ...
    let both = format!(
        "{FAR}\n[[network]]\nfrom = \"us-west-2\"\nto = \"us-east-1\"\nrequest = \"40ms\"\n\
         response = \"45ms\"\n"
    );
    let reverse = Setup {
        caller: "us-west-2",
        call: FAILOVER_EAST,
        network: &both,
        fault: WEST_DOWN,
        ..Setup::default()
    }
    .sim()
    .run_experiment();
    assert_eq!(reverse.work_end_ns, LAST_ARRIVAL_NS + 95 * MS);
    // ... and the listed pair unchanged from us-east-1.
    let forward = Setup {
        call: FAILOVER_WEST,
        network: &both,
        fault: EAST_DOWN,
        ..Setup::default()
    }
    .sim()
    .run_experiment();
    assert_eq!(forward.work_end_ns, LAST_ARRIVAL_NS + 75 * MS);
}

#[test]
fn a_retry_across_regions_pays_the_pair_again_and_the_bucket_sees_it_at_server_time() {
    // The table lives only in us-west-2: every call from us-east-1 crosses the pair (3 ms
    // out, 4 ms back). One token that never refills: the first request takes it, every later
    // attempt is throttled when it lands; three attempts with constant 5 ms waits end at
    // 3 x (3 + 10 + 4) + 2 x 5 ms.
    let network = "[[network]]\nfrom = \"us-east-1\"\nto = \"us-west-2\"\nrequest = \"3ms\"\n\
                   response = \"4ms\"\n";
    let m = Setup {
        regions: r#"["us-west-2"]"#,
        capacity: r#"{ token_bucket = { rate_per_s = 0, burst = 1 } }"#,
        call: r#"{ call = "users", retry = { attempts = 3, backoff = "none", base = "5ms" } }"#,
        network,
        ..Setup::default()
    }
    .sim()
    .run_control();
    assert_eq!((m.succeeded, m.failed_throttle), (1, 19));
    assert_eq!((m.attempts, m.dependency_throttles), (58, 57));
    assert_eq!(m.work_end_ns, LAST_ARRIVAL_NS + 3 * 17 * MS + 2 * 5 * MS);
}

/// Drawn hops: the mean latency is the service time plus each hop's mean. 4,000 requests at
/// 100/s from us-east-1 to a table only in eu-west-1: request hop exponential (mean 20 ms,
/// variance 400 ms²), response hop uniform on [10, 30] ms (mean 20, variance 400/12 ms²),
/// service 10 ms: mean 50 ms, standard deviation sqrt(433.3) ms. Allowed: 4 standard errors
/// plus the histogram's 0.1% resolution. Both directions of the pair (listed, and mirrored)
/// give it.
#[test]
fn the_mean_latency_is_service_plus_the_hops_means_within_four_standard_errors() {
    let network = r#"
[[network]]
from = "us-east-1"
to = "eu-west-1"
request = { exponential = { mean = "20ms" } }
response = { uniform = { low = "10ms", high = "30ms" } }
"#;
    let requests = 4000.0;
    let want_ms = 50.0;
    let sd_ms = (400.0_f64 + 400.0 / 12.0).sqrt();
    let bound_ms = 4.0 * sd_ms / f64::sqrt(requests) + want_ms / 1000.0;
    for (caller, regions) in [
        ("us-east-1", r#"["eu-west-1"]"#),
        // A function in eu-west-1 (it names the region in use) calling a table only in
        // us-east-1: the mirror.
        ("eu-west-1", r#"["us-east-1"]"#),
    ] {
        let m = Setup {
            caller,
            regions,
            network,
            load: "requests = 4000\n[load]\ntarget = \"api\"\nkind = \"constant\"\n\
                   rate_per_s = 100",
            ..Setup::default()
        }
        .sim()
        .run_control();
        assert_eq!(m.succeeded, 4000);
        let mean_ms = m.latency.mean() / 1e6;
        assert!(
            (mean_ms - want_ms).abs() <= bound_ms,
            "{caller}: mean {mean_ms:.3} ms, expected {want_ms} ± {bound_ms:.3}"
        );
        // Every latency is at least the constant parts: 10 ms service + 10 ms back.
        assert!(m.latency_quantile_ns(0.0) >= 20 * MS - 20 * MS / 1000);
    }
}

#[test]
fn a_scenario_whose_calls_cross_no_listed_pair_reports_exactly_as_without_the_table() {
    let report = |s: &Simulation| {
        let (c, e) = (s.run_control(), s.run_experiment());
        serde_json::to_string(&Report::new(s.scenario(), &c, &e)).expect("serializes")
    };
    // No failover: every call stays in us-east-1, which no entry names as a pair.
    let base = Setup {
        fault: EAST_DOWN,
        ..Setup::default()
    };
    let with = Setup {
        network: FAR,
        ..base
    };
    let (plain, listed) = (report(&base.sim()), report(&with.sim()));
    assert_eq!(plain, listed);
    // The same seed gives the same report with drawn hops; a crossed pair changes it.
    let drawn = Setup {
        call: FAILOVER_WEST,
        network: "[[network]]\nfrom = \"us-east-1\"\nto = \"us-west-2\"\n\
                  request = { exponential = { mean = \"20ms\" } }\n",
        ..base
    };
    let first = report(&drawn.sim());
    assert_eq!(first, report(&drawn.sim()));
    assert_ne!(first, plain);
}

#[test]
fn fan_outs_across_regions_give_the_same_results_in_both_engine_modes() {
    let network = "[[network]]\nfrom = \"us-east-1\"\nto = \"us-west-2\"\n\
                   request = { exponential = { mean = \"20ms\" } }\nresponse = \"4ms\"\n";
    for capacity in [
        r#""unlimited""#,
        r#"{ token_bucket = { rate_per_s = 50, burst = 20 } }"#,
    ] {
        let setup = Setup {
            regions: r#"["us-west-2"]"#,
            call: r#"{ fan_out = { call = "users", count = 5, join = { quorum = 3 } } }"#,
            network,
            capacity,
            load: "requests = 300\n[load]\ntarget = \"api\"\nkind = \"poisson\"\nrate_per_s = 20",
            ..Setup::default()
        };
        let mut per_branch = setup.sim();
        per_branch.set_collapse_fan_outs(false);
        let (a, b) = (setup.sim().run_control(), per_branch.run_control());
        let summary = |m: &RunMetrics| {
            (
                m.succeeded,
                m.failed_throttle,
                m.attempts,
                m.dependency_throttles,
                m.work_end_ns,
                m.latency_quantile_ns(0.5),
                m.latency_quantile_ns(0.99),
            )
        };
        assert_eq!(summary(&a), summary(&b), "{capacity}");
        // The hops were crossed: no answer before 10 ms service + 4 ms back.
        assert!(a.latency_quantile_ns(0.0) >= 14 * MS - 14 * MS / 1000);
    }
}

#[test]
fn the_builder_form_gives_the_same_run_as_the_file() {
    use chaos_core::latency::LatencyDist;
    use chaos_sim::ScenarioBuilder;
    use chaos_sim::model::{Dependency, Function, Hops, LoadShape, OpenLoop, RegionHops, Step};
    use std::time::Duration;
    let ms = Duration::from_millis;
    let network = "[[network]]\nfrom = \"us-east-1\"\nto = \"us-west-2\"\n\
                   request = { exponential = { mean = \"20ms\" } }\nresponse = \"35ms\"\n\
                   [[network]]\nfrom = \"us-east-1\"\nto = \"us-east-1\"\nrequest = \"1ms\"\n";
    let from_file = Setup {
        call: FAILOVER_WEST,
        network,
        fault: EAST_DOWN,
        ..Setup::default()
    }
    .sim();
    let mut function = Function::new(
        "api",
        vec![Step::call("users").failover("us-west-2").step()],
    );
    function.region = Some("us-east-1".into());
    function.cold_start = LatencyDist::constant(Duration::ZERO);
    let mut users = Dependency::new("users", LatencyDist::constant(ms(10)));
    users.regions = vec!["us-east-1".into(), "us-west-2".into()];
    let far = Hops::new(
        LatencyDist::exponential(ms(20)).expect("valid"),
        LatencyDist::constant(ms(35)),
    );
    let near = Hops {
        request: Some(LatencyDist::constant(ms(1))),
        response: None,
    };
    let mut b = ScenarioBuilder::new("regions", "api");
    b.seed(5)
        .requests(20)
        .load(LoadShape::Open(OpenLoop::constant(1.0)))
        .function(function)
        .dependency(users)
        .region_hops(RegionHops::new("us-east-1", "us-west-2", far))
        .region_hops(RegionHops::within("us-east-1", near));
    for rule in &from_file.scenario().faults {
        b.fault(rule.clone());
    }
    let built = Simulation::new(b.build().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    for (a, b) in [
        (from_file.run_control(), built.run_control()),
        (from_file.run_experiment(), built.run_experiment()),
    ] {
        assert_eq!(
            (
                a.work_end_ns,
                a.latency_quantile_ns(0.5),
                a.events,
                a.failovers
            ),
            (
                b.work_end_ns,
                b.latency_quantile_ns(0.5),
                b.events,
                b.failovers
            )
        );
    }
    // In-region: 1 ms out, none back; failed over: at least 35 ms back on top.
    assert_eq!(built.run_control().work_end_ns, LAST_ARRIVAL_NS + 11 * MS);
    assert!(built.run_experiment().latency_quantile_ns(0.0) >= 45 * MS - 45 * MS / 1000);
}

/// The 1-based line of the `n`-th (0-based) line of `text` containing `needle`.
fn line_of(text: &str, needle: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no line {n} with {needle:?}"))
}

#[test]
fn bad_network_entries_are_errors_at_their_line_that_say_the_fix() {
    let entry = |body: &str| format!("[[network]]\n{body}\n");
    let cases: Vec<(String, &str, usize, &str, &str)> = vec![
        // (network text, needle for the line, which occurrence, field, message part)
        (
            entry("from = \"us-east-1\"\nto = \"us-west2\"\nrequest = \"30ms\""),
            "to = \"us-west2\"",
            0,
            "network.0.to",
            "did you mean `us-west-2`?",
        ),
        (
            entry("from = \"eu-central-1\"\nto = \"us-west-2\"\nrequest = \"30ms\""),
            "from = \"eu-central-1\"",
            0,
            "network.0.from",
            "no function runs in region `eu-central-1` and no dependency has a replica there",
        ),
        (
            format!(
                "{}{}",
                entry("from = \"us-east-1\"\nto = \"us-west-2\"\nrequest = \"30ms\""),
                entry("from = \"us-east-1\"\nto = \"us-west-2\"\nrequest = \"40ms\"")
            ),
            "from = \"us-east-1\"",
            1,
            "network.1.from",
            "already set by [[network]] entry 1",
        ),
        (
            entry("from = \"us-east-1\"\nto = \"us-west-2\""),
            "[[network]]",
            0,
            "network.0",
            "set `request`, `response` or both",
        ),
        (
            entry("from = \"us-east-1\"\nto = \"us-west-2\"\nrequest = \"-30ms\""),
            "request = \"-30ms\"",
            0,
            "network.request",
            "negative",
        ),
        (
            entry("from = \"us-east-1\"\nto = \"us-west-2\"\nrequets = \"30ms\""),
            "requets",
            0,
            "network.requets",
            "did you mean `request`?",
        ),
        (
            entry(
                "from = \"us-east-1\"\nto = \"us-west-2\"\n\
                 response = { pareto = { scale = \"30ms\", shape = nan } }",
            ),
            "response = {",
            0,
            "network.response",
            "`shape` = NaN; expected a finite number > 0",
        ),
        (
            entry("from = \"us-east-1\"\nrequest = \"30ms\""),
            "[[network]]",
            0,
            "network",
            "missing field `to`",
        ),
    ];
    for (network, needle, occurrence, field, says) in cases {
        let text = Setup {
            network: &network,
            ..Setup::default()
        }
        .text();
        let error = match scenario::parse(&text, "regions.toml") {
            Ok(_) => panic!("accepted:\n{network}"),
            Err(e) => e,
        };
        assert_eq!(error.file, "regions.toml");
        assert_eq!(
            error.line,
            line_of(&text, needle, occurrence),
            "{network}: {error}"
        );
        assert_eq!(error.field, field, "{network}: {error}");
        assert!(error.message.contains(says), "{network}: {error}");
    }
}

#[test]
fn the_builder_checks_network_entries_as_a_file_is_checked() {
    use chaos_core::latency::LatencyDist;
    use chaos_sim::model::{Dependency, Function, Hops, RegionHops, Step};
    use chaos_sim::{ModelError, ScenarioBuilder, SimError};
    use std::time::Duration;
    let build = |entries: &[RegionHops]| {
        let mut b = ScenarioBuilder::new("regions", "api");
        b.function(Function::new("api", vec![Step::call("users").step()]))
            .dependency(Dependency::new(
                "users",
                LatencyDist::constant(Duration::from_millis(10)),
            ));
        for entry in entries {
            b.region_hops(entry.clone());
        }
        match b.build() {
            Ok(_) => None,
            Err(SimError::Model(ModelError::Invalid { path, message })) => Some((path, message)),
            Err(other) => panic!("{other}"),
        }
    };
    let hop = Hops::symmetric(LatencyDist::constant(Duration::from_millis(1)));
    assert_eq!(build(&[RegionHops::within("us-east-1", hop.clone())]), None);
    let (path, message) = build(&[RegionHops::new("us-east-1", "us-est-1", hop.clone())])
        .expect("a region nothing uses is rejected");
    assert_eq!(path, "network.0.to");
    assert!(message.contains("did you mean `us-east-1`?"), "{message}");
    let (path, _) = build(&[
        RegionHops::within("us-east-1", hop.clone()),
        RegionHops::within("us-east-1", hop),
    ])
    .expect("a pair listed twice is rejected");
    assert_eq!(path, "network.1.from");
    let (path, _) = build(&[RegionHops::within("us-east-1", Hops::default())])
        .expect("an entry with no hop is rejected");
    assert_eq!(path, "network.0");
}

/// The bundled `region_failover_latency.toml` shows what its comment says. During the
/// four-minute outage (0.4 of the ten minutes) every request fails over and pays two hops of
/// about 32 ms each (log-normal, p99 40 ms: under 25 ms with probability 0.5%), so it is
/// slower than 50 ms; after the window the circuit breaker can keep calls failing over for at
/// most its `open_for` (10 s, 1/60 of the run); before it, calls are as slow as the control
/// run's. With σ the binomial standard deviation of the window's share of about 60,000
/// requests, the slow rate lies in [0.4 - 4σ - 0.01, 0.4 + 1/60 + 4σ + the control's].
#[test]
fn the_bundled_failover_example_keeps_its_success_rate_and_breaks_its_latency_bound() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios/region_failover_latency.toml");
    let s = Simulation::new(scenario::load(&path).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let report = s.run();
    assert_eq!(report.exit_code(), 1);
    let holds = |name: &str| {
        let h = report
            .hypotheses
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        (h.control_holds, h.experiment_holds)
    };
    assert_eq!(holds("success_rate"), (true, true));
    assert_eq!(holds("latency_p99"), (true, false));
    assert_eq!(holds("slow_rate_over_50ms"), (true, false));
    let (control, experiment) = (s.run_control(), s.run_experiment());
    let n = experiment.requests as f64;
    let sigma = (0.4 * 0.6 / n).sqrt();
    let slow = experiment.slow_rate(50 * MS);
    let (low, high) = (
        0.4 - 4.0 * sigma - 0.01,
        0.4 + 1.0 / 60.0 + 4.0 * sigma + control.slow_rate(50 * MS),
    );
    assert!(
        (low..=high).contains(&slow),
        "slow rate {slow:.4}, expected {low:.4}..{high:.4}"
    );
    // Without the network table (region_outage.toml's model) failing over costs nothing.
    let text = std::fs::read_to_string(&path).expect("readable");
    let cut = text.find("\n[[network]]").expect("a network table");
    let faults = text.find("\n[[fault]]").expect("a fault");
    let without = format!("{}{}", &text[..cut], &text[faults..]);
    let m = sim(&without).run_experiment();
    assert!(m.slow_rate(50 * MS) < 0.01, "{}", m.slow_rate(50 * MS));
}

/// One replica, two callers: `api` in us-east-1 calls the us-west-2 server across the pair
/// (30 + 10 + 35 ms), then invokes `edge` in us-west-2, whose call to the same server stays
/// in the region (10 ms, no pair): 85 ms in all, per request.
#[test]
fn one_replica_answers_each_caller_over_its_own_route() {
    let text = format!(
        r#"[simulation]
seed = 5
requests = 20
[load]
target = "api"
kind = "constant"
rate_per_s = 1
[[function]]
name = "api"
region = "us-east-1"
cold_start = "0ms"
handler = [{{ call = "users" }}, {{ invoke = "edge" }}]
[[function]]
name = "edge"
region = "us-west-2"
cold_start = "0ms"
handler = [{{ call = "users" }}]
[[dependency]]
name = "users"
regions = ["us-west-2"]
latency = "10ms"
capacity = {{ server = {{ workers = 2 }} }}
{FAR}
"#
    );
    let m = sim(&text).run_control();
    assert_eq!(m.succeeded, 20);
    assert_eq!(m.work_end_ns, LAST_ARRIVAL_NS + 85 * MS);
    assert!(close(constant_latency_ns(&m), 85 * MS));
}
