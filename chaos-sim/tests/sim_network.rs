//! Network hops and partitions (issue 11, items 2 and 3), each against a value derived
//! independently: closed forms for constant hops, a renewal model for the contended item, the
//! window's end for a partition.

mod support;

use chaos_sim::{Report, Simulation, scenario};
use support::{close, constant_latency_ns};

fn sim(text: &str) -> Simulation {
    support::sim_named(text, "network.toml")
}

const MS: u64 = 1_000_000;
/// `one_call`'s 20 requests arrive one second apart, the first at 1 s.
const LAST_ARRIVAL_NS: u64 = 20_000 * MS;

/// One request at a time (1 per second), no cold start: a request's latency is its call's.
fn one_call(capacity: &str, hops: &str, call: &str) -> String {
    format!(
        r#"
[simulation]
seed = 11
requests = 20
[load]
target = "api"
kind = "constant"
rate_per_s = 1
[[function]]
name = "api"
cold_start = "0ms"
handler = [{call}]
[[dependency]]
name = "db"
latency = "10ms"
capacity = {capacity}
{hops}
"#
    )
}

#[test]
fn constant_hops_add_to_the_end_to_end_latency_in_closed_form() {
    let hops = r#"hops = { request = "3ms", response = "4ms" }"#;
    let call = r#"{ call = "db" }"#;
    // One round trip: 3 + 10 + 4 ms. An optimistic item's attempt is a read and then a
    // conditional write, two round trips around its 10 ms: 2 x (3 + 4) + 10 ms.
    let cases = [
        (r#""unlimited""#, 17),
        (
            r#"{ token_bucket = { rate_per_s = 1000, burst = 1000 } }"#,
            17,
        ),
        (r#"{ server = { workers = 1 } }"#, 17),
        (r#""optimistic_item""#, 24),
    ];
    for (capacity, want_ms) in cases {
        let with = sim(&one_call(capacity, hops, call)).run_control();
        let without = sim(&one_call(capacity, "", call)).run_control();
        let (got, base) = (constant_latency_ns(&with), constant_latency_ns(&without));
        assert!(close(got, want_ms * MS), "{capacity}: {got} ns");
        assert!(close(base, 10 * MS), "{capacity} without hops: {base} ns");
        assert_eq!(with.requests, 20);
        // The end of the work is exact.
        assert_eq!(
            with.work_end_ns,
            LAST_ARRIVAL_NS + want_ms * MS,
            "{capacity}"
        );
    }
}

#[test]
fn fan_outs_of_plain_calls_to_a_token_bucket_behind_a_hop_land_one_by_one() {
    // Plain branches (no resilience) to a bucket that must see each request after its hop:
    // each branch lands as an event. 8 tokens, no refill: the first request's 5 branches
    // take 5, the second's find 3 (its join fails on the first throttle, when the answer
    // crosses back), and every later one fails.
    let hops = r#"hops = { request = "3ms", response = "4ms" }"#;
    let fan_out = r#"{ fan_out = { call = "db", count = 5, join = "all" } }"#;
    let m = sim(&one_call(
        r#"{ token_bucket = { rate_per_s = 0, burst = 8 } }"#,
        hops,
        fan_out,
    ))
    .run_control();
    assert_eq!((m.succeeded, m.failed_throttle), (1, 19));
    assert_eq!((m.attempts, m.dependency_throttles), (100, 92));
    assert!(close(m.latency_quantile_ns(1.0), 17 * MS));
    let plenty = sim(&one_call(
        r#"{ token_bucket = { rate_per_s = 1000, burst = 1000 } }"#,
        hops,
        fan_out,
    ))
    .run_control();
    assert_eq!(constant_latency_ns(&plenty) / MS, 17);
}

#[test]
fn a_retry_pays_the_hops_again_on_every_attempt() {
    // A one-token bucket that never refills: the first request takes the token, and every
    // later attempt is throttled when it lands; with no backoff, a request's three attempts
    // end at 3 x (request hop + service + response hop) plus two constant 5 ms waits.
    let capacity = r#"{ token_bucket = { rate_per_s = 0, burst = 1 } }"#;
    let call = r#"{ call = "db", retry = { attempts = 3, backoff = "none", base = "5ms" } }"#;
    for (hops, per_attempt_ms) in [
        ("", 10),
        (r#"hops = { request = "3ms", response = "4ms" }"#, 17),
        (r#"hops = { request = "5ms" }"#, 15),
    ] {
        let m = sim(&one_call(capacity, hops, call)).run_control();
        assert_eq!((m.succeeded, m.failed_throttle), (1, 19), "{hops}");
        assert_eq!((m.attempts, m.dependency_throttles), (58, 57), "{hops}");
        assert_eq!(
            m.work_end_ns,
            LAST_ARRIVAL_NS + 3 * per_attempt_ms * MS + 2 * 5 * MS,
            "{hops}"
        );
    }
}

#[test]
fn the_builder_form_gives_the_same_run_as_the_file() {
    use chaos_core::latency::LatencyDist;
    use chaos_sim::ScenarioBuilder;
    use chaos_sim::model::{Dependency, Function, Hops, LoadShape, OpenLoop, Step};
    use std::time::Duration;
    let ms = Duration::from_millis;
    let text = one_call(
        r#""unlimited""#,
        r#"hops = { request = { log_normal = { p50 = "2ms", p99 = "9ms" } }, response = "4ms" }"#,
        r#"{ call = "db" }"#,
    );
    let from_file = sim(&text);
    let mut function = Function::new("api", vec![Step::call("db").step()]);
    function.cold_start = LatencyDist::constant(Duration::ZERO);
    let request_hop = LatencyDist::log_normal_p50_p99(ms(2), ms(9)).expect("valid");
    let mut b = ScenarioBuilder::new("network", "api");
    b.seed(11)
        .requests(20)
        .load(LoadShape::Open(OpenLoop::constant(1.0)))
        .function(function)
        .dependency(
            Dependency::new("db", LatencyDist::constant(ms(10)))
                .with_hops(Hops::new(request_hop, LatencyDist::constant(ms(4)))),
        );
    let built = Simulation::new(b.build().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (from_file.run_control(), built.run_control());
    assert_eq!(
        (a.work_end_ns, a.latency_quantile_ns(0.5), a.events),
        (b.work_end_ns, b.latency_quantile_ns(0.5), b.events)
    );
    // Drawn hops: requests differ (log-normal request hop), and every one is at least the
    // constant parts (10 ms service, 4 ms back).
    assert!(a.latency_quantile_ns(0.0) >= 14 * MS);
    assert!(a.latency_quantile_ns(1.0) > a.latency_quantile_ns(0.0));
}

/// The contended item under Poisson writes, each attempt once (no retry): the version is
/// read when the read lands and the write is checked `W` later, where `W` is the service
/// time plus the response hop back and the request hop over between them. A write conflicts
/// iff another write succeeded within the `W` before it, so successes form a renewal process
/// with gaps `W + Exp(1/λ)`: the conflict fraction is `λW / (1 + λW)`.
#[test]
fn hops_widen_the_conflict_window_of_a_contended_item_as_a_renewal_model_predicts() {
    let rate: f64 = 50.0;
    let seconds: f64 = 200.0;
    let run = |hops: &str| {
        sim(&format!(
            r#"
[simulation]
seed = 3
duration = "{seconds}s"
[load]
target = "writer"
kind = "poisson"
rate_per_s = {rate}
[[function]]
name = "writer"
cold_start = "0ms"
handler = [{{ call = "item" }}]
[[dependency]]
name = "item"
latency = "10ms"
capacity = "optimistic_item"
{hops}
"#
        ))
        .run_control()
    };
    for (hops, window_s) in [
        ("", 0.010),
        (r#"hops = { request = "5ms", response = "5ms" }"#, 0.020),
        (r#"hops = { request = "15ms", response = "5ms" }"#, 0.030),
    ] {
        let m = run(hops);
        let n = m.attempts as f64;
        assert_eq!(m.attempts, m.requests);
        let conflict = m.conflicts as f64 / n;
        let lw = rate * window_s;
        let expected = lw / (1.0 + lw);
        // Bound: successes S over time T are a renewal count with gap mean μ = W + 1/λ and
        // variance 1/λ², so Var S ≈ T/(λ²μ³); attempts N are Poisson(λT). The fraction
        // 1 - S/N moves by at most sd(S)/N + S·sd(N)/N²; allow 4 of that.
        let mu = window_s + 1.0 / rate;
        let sd_s = (seconds / (rate * rate * mu.powi(3))).sqrt();
        let s = n - m.conflicts as f64;
        let bound = 4.0 * (sd_s / n + s * n.sqrt() / (n * n));
        assert!(
            (conflict - expected).abs() <= bound,
            "{hops}: conflict fraction {conflict:.4}, model {expected:.4} ± {bound:.4}"
        );
    }
}

#[test]
fn a_contended_item_behind_hops_takes_calls_of_more_than_64_attempts() {
    // Regression: an attempt's conditional write looked its tag up with `1 << tag`, which
    // overflows from the 65th attempt of a call retrying until success (a panic in debug
    // builds). 70 clients in lockstep (constant hops and waits): every round all read the
    // same version at the same instant and only the first write lands, so client k
    // succeeds at its k-th attempt, and a round takes four 1 ms hops plus the 1 ms wait.
    let clients: u64 = 70;
    let m = sim(&format!(
        r#"
[simulation]
seed = 1
requests = {clients}
[load]
target = "writer"
kind = "closed"
clients = {clients}
[[function]]
name = "writer"
cold_start = "0ms"
handler = [{{ call = "item", retry = {{ within = "deadline", backoff = "none", base = "1ms" }} }}]
[[dependency]]
name = "item"
latency = "0ms"
capacity = "optimistic_item"
hops = {{ request = "1ms", response = "1ms" }}
"#
    ))
    .run_control();
    assert_eq!(m.succeeded, clients);
    assert_eq!(m.attempts, clients * (clients + 1) / 2);
    assert_eq!(m.conflicts, clients * (clients - 1) / 2);
    assert_eq!(m.work_end_ns, (clients * 4 + (clients - 1)) * MS);
}

/// A steady 10 requests per second; a partition from 2 s to 5 s on the calls to `db`.
fn partitioned(capacity: &str, call: &str) -> String {
    format!(
        r#"
[simulation]
seed = 2
duration = "10s"
[load]
target = "api"
kind = "constant"
rate_per_s = 10
[[function]]
name = "api"
cold_start = "0ms"
timeout = "30s"
handler = [{call}]
[[dependency]]
name = "db"
latency = "10ms"
capacity = {capacity}
[[fault]]
name = "cut"
fault = "partition"
probability = 1.0
match = {{ service = "db" }}
window = {{ start = "2s", duration = "3s" }}
"#
    )
}

#[test]
fn a_partition_delivers_held_calls_when_its_window_ends() {
    let s = sim(&partitioned(r#""unlimited""#, r#"{ call = "db" }"#));
    let (control, m) = (s.run_control(), s.run_experiment());
    // Requests arrive at 0.1, 0.2, ..., 9.9 s. Those at 2.0, ..., 4.9 s are held until 5 s:
    // nothing fails, the first waits 3 s, and the others are untouched.
    assert_eq!(m.partition_held, 30);
    assert_eq!((m.succeeded, m.requests), (99, 99));
    assert!(close(m.latency_quantile_ns(1.0), 3_010 * MS));
    assert!(close(m.latency_quantile_ns(0.5), 10 * MS));
    assert_eq!(control.partition_held, 0);
    assert!(close(control.latency_quantile_ns(1.0), 10 * MS));
}

#[test]
fn a_caller_that_times_out_gives_up_and_the_server_still_gets_the_request() {
    // Every held call's 50 ms timeout ends before the partition heals at 5 s (the last is
    // sent at 4.9 s): its caller fails with a timeout, and when the window ends the server
    // receives all 30 anyway and serves them (workers are free).
    let text = partitioned(
        r#"{ server = { workers = 50 } }"#,
        r#"{ call = "db", timeout = "50ms" }"#,
    );
    let m = sim(&text).run_experiment();
    assert_eq!(m.partition_held, 30);
    assert_eq!((m.failed_timeout, m.succeeded), (30, 69));
    assert_eq!((m.late_deliveries, m.abandoned_work_served), (30, 30));
    // With `abandoned = "drop"` the server drops them instead.
    let dropped =
        sim(&text.replace("workers = 50", r#"workers = 50, abandoned = "drop""#)).run_experiment();
    assert_eq!(
        (
            dropped.late_deliveries,
            dropped.dropped_work,
            dropped.abandoned_work_served
        ),
        (30, 30, 0)
    );

    // A token bucket spends tokens on the late requests when they land. 75 tokens, no
    // refill: the 19 requests before the window take 19; at 5 s the 30 held ones take 30
    // for callers that left, and of the 50 requests from 5.0 s on only 26 find a token.
    // Without the late deliveries all 50 would have.
    let bucket = sim(&partitioned(
        r#"{ token_bucket = { rate_per_s = 0, burst = 75 } }"#,
        r#"{ call = "db", timeout = "50ms" }"#,
    ))
    .run_experiment();
    assert_eq!(bucket.late_deliveries, 30);
    assert_eq!(bucket.failed_timeout, 30);
    assert_eq!((bucket.succeeded, bucket.dependency_throttles), (45, 24));
}

#[test]
fn drop_late_drops_abandoned_work_that_lands_at_a_free_worker() {
    // As above, 30 calls whose callers gave up land when the partition heals, at free workers.
    // `drop_late` drops work whose caller left (and sheds work that would finish late), as
    // `drop` does. It used to let such work through to its look-ahead: counted as abandoned
    // work served and then shed as late, or served in full had its deadline still been ahead.
    let text = partitioned(
        r#"{ server = { workers = 50, abandoned = "drop_late" } }"#,
        r#"{ call = "db", timeout = "50ms" }"#,
    );
    let m = sim(&text).run_experiment();
    assert_eq!(
        (
            m.late_deliveries,
            m.dropped_work,
            m.abandoned_work_served,
            m.shed_late
        ),
        (30, 30, 0, 0)
    );
    assert_eq!((m.failed_timeout, m.succeeded), (30, 69));
}

#[test]
fn hop_runs_are_deterministic_and_report_the_new_counters() {
    let text = partitioned(
        r#"{ server = { workers = 50 } }"#,
        r#"{ call = "db", timeout = "50ms" }"#,
    )
    .replace(
        r#"capacity = { server"#,
        "hops = { request = { exponential = { mean = \"2ms\" } } }\ncapacity = { server",
    );
    let report = |s: &Simulation| {
        let (c, e) = (s.run_control(), s.run_experiment());
        serde_json::to_string(&Report::new(s.scenario(), &c, &e)).expect("serializes")
    };
    let s = sim(&text);
    let first = report(&s);
    assert_eq!(first, report(&sim(&text)));
    assert!(first.contains("\"partition_held\":30"), "{first}");
    assert!(first.contains("\"late_deliveries\":30"), "{first}");
    // Counters that stay at zero are left out (reports of scenarios without hops or
    // partitions are unchanged).
    let quiet = report(&sim(&one_call(r#""unlimited""#, "", r#"{ call = "db" }"#)));
    assert!(!quiet.contains("partition_held") && !quiet.contains("late_deliveries"));
}

#[test]
fn bad_hops_are_located_errors_that_say_the_fix() {
    for (hops, says) in [
        ("hops = {}", "set `request`, `response` or both"),
        (r#"hops = { requets = "2ms" }"#, "requets"),
        (r#"hops = { request = "-2ms" }"#, "negative"),
    ] {
        let text = one_call(r#""unlimited""#, hops, r#"{ call = "db" }"#);
        let error = scenario::parse(&text, "network.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{hops} parsed"));
        assert!(error.contains(says), "{hops}: {error}");
        assert!(
            error.contains("network.toml:17"),
            "{hops}: located: {error}"
        );
    }
}
