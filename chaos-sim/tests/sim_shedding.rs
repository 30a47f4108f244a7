//! Load shedding that looks ahead (issue 11, item 5): dropping work that cannot finish before
//! its caller's deadline, a controlled-delay (CoDel) bound on waiting, and adaptive LIFO,
//! each under overload against a small independent model of one server (D/D/1: evenly spaced
//! arrivals, a constant service time) or a bound derived from it.

use chaos_sim::{RunMetrics, Simulation, scenario};
use std::collections::VecDeque;

/// Arrivals 6.25 ms apart (160/s) at a one-worker server whose service takes `S` (about
/// 10 ms, so 100/s): 60% too much work. Each call gives up after `D`. No retries.
const SERVER: &str = r#"
[simulation]
seed = 4
requests = 800
[load]
target = "api"
kind = "constant"
rate_per_s = 160
[[function]]
name = "api"
timeout = "10s"
cold_start = "0ms"
handler = [{ call = "db", timeout = "D" }]
[[dependency]]
name = "db"
latency = "S"
capacity = { server = { workers = 1, discipline = DISCIPLINE, abandoned = "ABANDONED" } }
"#;

const ARRIVAL_NS: u64 = 6_250_000;
/// 10.0037 ms and 95.00013 ms: odd enough that no completion, arrival or deadline of the
/// 800 requests falls on the same nanosecond (the model checks), so the order of events at
/// one instant never decides an outcome.
const SERVICE_NS: u64 = 10_003_700;
const SERVICE: &str = "10ms 3us 700ns";
const DEADLINE_NS: u64 = 95_000_130;
const DEADLINE: &str = "95ms 130ns";

fn run(text: &str) -> RunMetrics {
    let s = scenario::parse(text, "shedding.toml").unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .run_control()
}

fn server(discipline: &str, abandoned: &str) -> RunMetrics {
    run(&SERVER
        .replace("\"D\"", &format!("\"{DEADLINE}\""))
        .replace("\"S\"", &format!("\"{SERVICE}\""))
        .replace("DISCIPLINE", discipline)
        .replace("ABANDONED", abandoned))
}

#[derive(Clone, Copy, Debug)]
enum Pick {
    Fifo,
    Lifo,
    /// LIFO while more than this many wait.
    Adaptive(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Policy {
    Serve,
    /// Skip work whose caller gave up (deadline reached).
    Drop,
    /// Skip work that would finish at or after its deadline.
    DropLate,
}

/// The independent model: one worker, request k (1..=n) arriving at k x `a`, giving up at
/// arrival + `d`; service `s`. Returns the requests answered before their deadline, and
/// the number of instants where two of (arrival, completion, deadline) coincide (then the
/// engine's event order would matter; the parameters above are chosen to have none).
fn single_server(n: u64, a: u64, s: u64, d: u64, pick: Pick, policy: Policy) -> (u64, u64) {
    let mut next = 1;
    let mut waiting: VecDeque<u64> = VecDeque::new();
    let mut free_at = 0;
    let (mut in_time, mut ties) = (0, 0);
    loop {
        if waiting.is_empty() {
            if next > n {
                return (in_time, ties);
            }
            free_at = free_at.max(next * a);
        }
        while next <= n && next * a <= free_at {
            ties += u64::from(next * a == free_at && !waiting.is_empty());
            waiting.push_back(next * a);
            next += 1;
        }
        let taken = match pick {
            Pick::Fifo => waiting.pop_front(),
            Pick::Lifo => waiting.pop_back(),
            Pick::Adaptive(k) if waiting.len() > k => waiting.pop_back(),
            Pick::Adaptive(_) => waiting.pop_front(),
        };
        let Some(arrived) = taken else { continue };
        let deadline = arrived + d;
        ties += u64::from(free_at == deadline || free_at + s == deadline);
        let skip = match policy {
            Policy::Serve => false,
            Policy::Drop => free_at >= deadline,
            Policy::DropLate => free_at + s >= deadline,
        };
        if skip {
            continue;
        }
        in_time += u64::from(free_at + s < deadline);
        free_at += s;
    }
}

fn model(pick: Pick, policy: Policy) -> u64 {
    let (in_time, ties) = single_server(800, ARRIVAL_NS, SERVICE_NS, DEADLINE_NS, pick, policy);
    assert_eq!(
        ties, 0,
        "{pick:?} {policy:?}: the parameters must avoid ties"
    );
    in_time
}

#[test]
fn looking_ahead_keeps_goodput_at_capacity_where_dropping_late_work_loses_it() {
    // Plain FIFO drop: the line grows 3.75 ms per request, so request n (from 0) waits
    // n x 3.75 ms and answers in time while n x 3.75 + 10.0037 < 95.00013 ms: n <= 22, 23
    // requests. After that every request served has waited past deadline - service, and
    // answers too late, while the worker stays busy.
    let n0 =
        ((DEADLINE_NS - SERVICE_NS) as f64 / (SERVICE_NS - ARRIVAL_NS) as f64).floor() as u64 + 1;
    assert_eq!(n0, 23);
    assert_eq!(model(Pick::Fifo, Policy::Drop), n0);
    let drop = server("\"fifo\"", "drop");
    assert_eq!(drop.succeeded, n0);
    assert!(drop.dropped_work > 0);
    assert_eq!(drop.shed_late, 0);
    // Looking ahead, the worker only takes work it can finish in time, so it is busy with
    // useful work: about 5 s / 10 ms = 500 answers.
    let expected = model(Pick::Fifo, Policy::DropLate);
    assert!((490..=510).contains(&expected), "{expected}");
    let late = server("\"fifo\"", "drop_late");
    assert_eq!(late.succeeded, expected);
    assert_eq!(
        late.abandoned_work_served, 0,
        "no work is served for nobody"
    );
    // Shed work is answered at once with a throttling error.
    assert_eq!(late.failed_throttle, late.shed_late);
    assert_eq!(late.failed_timeout, late.dropped_work);
    assert_eq!(late.succeeded + late.failed(), 800);
    // Every success answered before its deadline (to the histogram's 0.1%).
    assert!(late.latency_quantile_ns(1.0) <= DEADLINE_NS * 1001 / 1000);
}

#[test]
fn adaptive_lifo_serves_fresh_work_under_a_standing_queue() {
    // FIFO serving everything: only the first 23 answer in time (as above).
    let fifo = server("\"fifo\"", "serve");
    assert_eq!(model(Pick::Fifo, Policy::Serve), 23);
    assert_eq!(fifo.succeeded, 23);
    // Adaptive LIFO: once more than 4 wait, the newest (at most 6.25 ms old) goes first.
    let expected = model(Pick::Adaptive(4), Policy::Serve);
    assert!(expected > 450, "{expected}");
    let adaptive = server("{ adaptive_lifo = { standing_queue = 4 } }", "serve");
    assert_eq!(adaptive.succeeded, expected);
    // Served fresh: past the start, an answer takes the service time plus at most one
    // arrival gap (the newest request arrived less than 6.25 ms before the worker freed).
    // At the start the line is short and served in order: it grows by 0.6 requests per
    // service, so it passes 4 after at most 8 services, under 2% of the answers.
    let slow = adaptive.slow_rate((SERVICE_NS + ARRIVAL_NS) * 1001 / 1000);
    assert!(slow <= 0.02, "slow rate {slow}");
    let fifo_slow = fifo.slow_rate((SERVICE_NS + ARRIVAL_NS) * 1001 / 1000);
    assert!(fifo_slow > 0.5, "FIFO answers stale work: {fifo_slow}");
    // ...while below the threshold it is FIFO: a light load answers in arrival order, as
    // FIFO does, with the same latencies.
    let light = |discipline: &str| {
        run(&SERVER
            .replace("\"D\"", "\"1s\"")
            .replace("\"S\"", "\"5ms\"")
            .replace("rate_per_s = 160", "rate_per_s = 150")
            .replace("DISCIPLINE", discipline)
            .replace("ABANDONED", "serve"))
    };
    let light_fifo = light("\"fifo\"");
    let light_adaptive = light("{ adaptive_lifo = { standing_queue = 4 } }");
    assert_eq!(
        format!("{:?}", light_fifo.latency),
        format!("{:?}", light_adaptive.latency)
    );
    // Pure LIFO agrees with the model too.
    assert_eq!(
        server("\"lifo\"", "serve").succeeded,
        model(Pick::Lifo, Policy::Serve)
    );
}

/// Arrivals every 2 ms (500/s) at a one-worker server taking 10 ms (100/s) for 20 s; calls
/// give up after 1 s. `QUEUE_DELAY` bounds waiting.
const CODEL: &str = r#"
[simulation]
seed = 6
duration = "20s"
[load]
target = "api"
kind = "constant"
rate_per_s = 500
[[function]]
name = "api"
timeout = "10s"
cold_start = "0ms"
handler = [{ call = "db", timeout = "1s" }]
[[dependency]]
name = "db"
latency = "10ms"
capacity = { server = { workers = 1, abandoned = "drop" QUEUE_DELAY } }
"#;

#[test]
fn controlled_delay_keeps_the_wait_near_its_target() {
    const MS: u64 = 1_000_000;
    let codel = run(&CODEL.replace(
        "QUEUE_DELAY",
        r#", queue_delay = { target = "5ms", interval = "100ms" }"#,
    ));
    // Once the first intervals show a standing queue, a request is served only if it
    // waited at most 2 x 5 ms; with an arrival every 2 ms there always is one that waited
    // between 8 and 10 ms. So answers take 10 ms of service plus 8 to 10 ms of waiting,
    // except in the first two intervals (before the standing queue is detected), at most
    // 0.2 s / 10 ms = 20 answers, 1% of the 2,000 served.
    assert!(
        codel.slow_rate(20 * MS + 20_000) <= 0.01,
        "slow rate {}",
        codel.slow_rate(20 * MS + 20_000)
    );
    let p50 = codel.latency_quantile_ns(0.5);
    assert!((18 * MS..=20 * MS + 20_000).contains(&p50), "p50 {p50}");
    // The worker is never idle and never serves for nobody: 20 s / 10 ms answers, give or
    // take the one in service at the end.
    assert!(
        (1_998..=2_001).contains(&codel.succeeded),
        "{}",
        codel.succeeded
    );
    assert_eq!(codel.abandoned_work_served, 0);
    assert!(codel.shed_queue_delay > 7_000, "{}", codel.shed_queue_delay);
    assert_eq!(codel.failed_throttle, codel.shed_queue_delay);
    // Without the bound, FIFO with drop serves work that waited close to the 1 s
    // deadline: (1 s - 10 ms) / 8 ms = 123.75, so 124 answers, all at the start.
    let plain = run(&CODEL.replace("QUEUE_DELAY", ""));
    assert_eq!(plain.succeeded, 124);
    assert!(plain.latency_quantile_ns(0.5) > 400 * MS);
}
