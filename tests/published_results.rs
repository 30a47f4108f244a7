//! Published results the simulator must reproduce (FACTS.md, "Published results a simulator
//! of this kind should reproduce"; issue 11, item 10). Each test runs a bundled scenario from
//! `examples/scenarios/` through the public API, as `chaos run --json` would, reads the JSON
//! report, and compares it with a value derived independently here (a closed form, or a small
//! model of its own), within a tolerance taken from the sampling variance of the measured
//! figure.

use chaos_core::LatencyDist;
use chaos_sim::model::{BackoffKind, ClosedLoop, LoadShape, Retry, Step};
use chaos_sim::{CheckedScenario, IntoChecked, Scenario, Simulation, scenario};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// A bundled scenario, checked.
fn load(name: &str) -> CheckedScenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    scenario::parse(&text, name).unwrap_or_else(|e| panic!("{e}"))
}

/// The JSON report of a run of `scenario`, as `chaos run --json` prints it.
fn report(scenario: impl IntoChecked, seed: Option<u64>) -> Value {
    let mut simulation = Simulation::new(scenario).unwrap_or_else(|e| panic!("{e}"));
    if let Some(seed) = seed {
        simulation.set_seed(seed);
    }
    serde_json::from_str(&simulation.run().to_json()).unwrap_or_else(|e| panic!("{e}"))
}

/// The JSON report of a bundled scenario at its own seed.
fn report_of(name: &str) -> Value {
    report(load(name), None)
}

fn number(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer}"))
}

#[test]
fn fan_out_to_a_hundred_leaves_makes_one_slow_leaf_in_a_hundred_slow_most_requests() {
    let r = report_of("tail_at_scale.toml");
    let n = number(&r, "/experiment/requests");
    assert_eq!(n, 20_000.0);
    assert_eq!(number(&r, "/experiment/succeeded"), n);

    // Dean & Barroso: P(request slow) = 1 - (1 - p)^N with p = 0.01, N = 100. A request
    // without a faulted leaf is slower than 500 ms only if an exponential leaf (mean 10 ms)
    // took 50 means: 100 e^-50, nothing. The measured fraction of n independent requests has
    // standard deviation sqrt(P (1 - P) / n) = 0.0034; allow 4.
    let expected = 1.0 - 0.99f64.powi(100);
    assert!((expected - 0.634).abs() < 0.001);
    let hypothesis = &r["hypotheses"][0];
    assert_eq!(hypothesis["name"], "slow_rate_over_500ms");
    let measured = number(hypothesis, "/experiment");
    let tolerance = 4.0 * (expected * (1.0 - expected) / n).sqrt();
    assert!(
        (measured - expected).abs() <= tolerance,
        "slow rate {measured} vs {expected} ± {tolerance}"
    );
    assert_eq!(hypothesis["experiment_holds"], false);
    assert_eq!(number(hypothesis, "/control"), 0.0);
}

#[test]
fn the_quantiles_of_a_fan_out_are_those_of_the_maximum_of_its_leaves() {
    let r = report_of("tail_at_scale.toml");
    let n = number(&r, "/control/requests");
    // The request waits for the slowest of N = 100 exponential leaves, mean 10 ms: its
    // CDF is G(x) = F(x)^N, so its q-quantile is F^-1(q^(1/N)) = -mean ln(1 - q^(1/N)).
    let (mean_ms, leaves) = (10.0f64, 100.0f64);
    let leaf_cdf = |x: f64| 1.0 - (-x / mean_ms).exp();
    let leaf_pdf = |x: f64| (-x / mean_ms).exp() / mean_ms;
    for (field, q) in [("p50", 0.5f64), ("p90", 0.9), ("p99", 0.99)] {
        let expected = -mean_ms * (1.0 - q.powf(1.0 / leaves)).ln();
        // A sample quantile's standard deviation is sqrt(q (1 - q) / n) / g(x_q), with g the
        // density of the maximum, N F^(N-1) f; allow 4 of them, plus hdrhistogram's 0.1%.
        let density = leaves * leaf_cdf(expected).powf(leaves - 1.0) * leaf_pdf(expected);
        let sd = (q * (1.0 - q) / n).sqrt() / density;
        let tolerance = 4.0 * sd + 0.001 * expected;
        let measured = number(&r, &format!("/control/latency_ms/{field}"));
        assert!(
            (measured - expected).abs() <= tolerance,
            "{field}: {measured} ms vs {expected:.2} ms ± {tolerance:.2}"
        );
    }
    // One leaf's p99 is 46 ms: the fan-out's is twice that.
    assert!(number(&r, "/control/latency_ms/p99") > 1.9 * -mean_ms * 0.01f64.ln());
}

/// `hedging.toml`'s store: Pareto with minimum `STORE_SCALE_MS` and shape 1, so one request's
/// survival function is S(t) = scale / t (t >= scale); the hedge goes out after
/// `HEDGE_AFTER_MS`, one request's p98 (S = 0.02).
const STORE_SCALE_MS: f64 = 1.8;
const HEDGE_AFTER_MS: f64 = 90.0;

/// The q-quantile of one request to the store, and the density there: x = scale / (1 - q),
/// f(x) = scale / x^2 = (1 - q) / x.
fn unhedged_quantile(q: f64) -> (f64, f64) {
    let x = STORE_SCALE_MS / (1.0 - q);
    (x, (1.0 - q) / x)
}

/// The q-quantile of a hedged request, and its density there. The engine sends the hedge `d`
/// after the first attempt and ends the call at the first answer (the slower attempt's is
/// dropped), and draws each attempt's time independently (keyed by attempt), so the call
/// takes T = min(X1, d + X2): P(T > t) = S(t) S(t - d) for t > d. Once t - d > scale
/// (quantiles above 1 - S(d + scale), 0.980), t (t - d) = scale^2 / (1 - q), and the density
/// is (1 - q) (1 / t + 1 / (t - d)).
fn hedged_quantile(q: f64) -> (f64, f64) {
    let (s, d) = (STORE_SCALE_MS, HEDGE_AFTER_MS);
    assert!(
        1.0 - q < s / (d + s),
        "closed form holds above the 0.980 quantile"
    );
    let t = (d + (d * d + 4.0 * s * s / (1.0 - q)).sqrt()) / 2.0;
    (t, (1.0 - q) * (1.0 / t + 1.0 / (t - d)))
}

/// The standard deviation of a sample q-quantile of n draws: sqrt(q (1 - q) / n) / density.
fn quantile_deviation(q: f64, n: f64, density: f64) -> f64 {
    (q * (1.0 - q) / n).sqrt() / density
}

/// `scenario` with every hedge removed.
fn without_hedges(scenario: CheckedScenario) -> Scenario {
    let mut scenario = scenario.into_scenario();
    for function in &mut scenario.functions {
        for step in &mut function.handler {
            if let Step::Call(call) = step {
                call.hedge = None;
            }
        }
    }
    scenario
}

#[test]
fn the_hedging_scenario_is_the_one_the_closed_forms_describe() {
    let checked = load("hedging.toml");
    let store = &checked.dependencies[0];
    let scale = Duration::from_micros((STORE_SCALE_MS * 1000.0) as u64);
    assert_eq!(
        store.latency,
        LatencyDist::pareto(scale, 1.0).expect("valid")
    );
    let Step::Call(call) = &checked.functions[0].handler[0] else {
        panic!("the handler is one call");
    };
    let hedge = call.hedge.as_ref().expect("hedged");
    assert_eq!(hedge.after, Duration::from_millis(HEDGE_AFTER_MS as u64));
    assert_eq!(hedge.max_extra, 1);
    assert_eq!(call.retry, Retry::None);
    // d is one request's p98: S(d) = 2%.
    assert!((STORE_SCALE_MS / HEDGE_AFTER_MS - 0.02).abs() < 1e-12);
}

#[test]
fn a_hedge_after_one_requests_p98_cuts_the_tail_for_two_percent_more_requests() {
    let hedged = report_of("hedging.toml");
    // Without the hedge, ten times the requests: the unhedged p99.9 sits where the density is
    // thin (its deviation at n requests is 3.2% x sqrt(10^6 / n)).
    let mut plain = without_hedges(load("hedging.toml"));
    plain.requests = Some(1_000_000);
    let plain = report(plain, None);
    let n = number(&hedged, "/control/requests");
    assert_eq!(n, 100_000.0);
    assert_eq!(number(&hedged, "/control/succeeded"), n);
    let plain_n = number(&plain, "/control/requests");
    assert_eq!(plain_n, 1_000_000.0);
    // A request fails only if it outlasts the 15-minute function timeout: P = 1.8 ms / 900 s
    // = 2e-6, about 2 in 10^6 (more than 10 with probability 1e-5). Leaving 10 out of the
    // successes moves a quantile's rank by 1e-5, a third of the p99.9's standard deviation
    // (3.2e-5), well within the 4 allowed.
    let timeouts = number(&plain, "/control/failed/timeout");
    assert!(timeouts <= 10.0, "{timeouts}");
    assert_eq!(number(&plain, "/control/succeeded") + timeouts, plain_n);
    for r in [&hedged, &plain] {
        assert_eq!(r["ran_once"], true, "no faults: one run");
    }

    // The hedged tail against P(T > t) = S(t) S(t - d).
    let mut p99_9 = [(0.0, 0.0); 2];
    for (field, q) in [("p99", 0.99f64), ("p99_9", 0.999)] {
        for (i, (r, n, (expected, density))) in [
            (&plain, plain_n, unhedged_quantile(q)),
            (&hedged, n, hedged_quantile(q)),
        ]
        .into_iter()
        .enumerate()
        {
            let measured = number(r, &format!("/control/latency_ms/{field}"));
            // 4 standard deviations, plus hdrhistogram's 0.1% (3 significant digits).
            let deviation = quantile_deviation(q, n, density);
            let tolerance = 4.0 * deviation + 0.001 * expected;
            assert!(
                (measured - expected).abs() <= tolerance,
                "{} {field}: {measured} ms vs {expected:.2} ms ± {tolerance:.2}",
                ["unhedged", "hedged"][i]
            );
            if field == "p99_9" {
                p99_9[i] = (measured, deviation / expected);
            }
        }
    }
    // The paper's point: the p99.9 falls from 1,800 ms to 117.6 ms, 15.3 times lower (BigTable:
    // 1,800 ms -> 74 ms). The ratio of the two measured quantiles moves by the two relative
    // deviations in quadrature (3.2% and 1.9%); allow 4, plus hdrhistogram's 0.1% twice.
    let expected_ratio = unhedged_quantile(0.999).0 / hedged_quantile(0.999).0;
    assert!((expected_ratio - 15.31).abs() < 0.01, "{expected_ratio}");
    let ratio = p99_9[0].0 / p99_9[1].0;
    let relative = 4.0 * (p99_9[0].1.powi(2) + p99_9[1].1.powi(2)).sqrt() + 0.002;
    assert!(
        (ratio / expected_ratio - 1.0).abs() <= relative,
        "p99.9 cut {ratio:.1}x vs {expected_ratio:.1}x ± {:.0}%",
        100.0 * relative
    );

    // The cost: a hedge goes out for each request slower than d, S(d) = 2% of them: a
    // binomial fraction, standard deviation sqrt(p (1 - p) / n); allow 4.
    let expected = STORE_SCALE_MS / HEDGE_AFTER_MS;
    let hedges = number(&hedged, "/control/hedges");
    let tolerance = 4.0 * (expected * (1.0 - expected) / n).sqrt();
    assert!(
        (hedges / n - expected).abs() <= tolerance,
        "hedged fraction {} vs {expected} ± {tolerance:.4}",
        hedges / n
    );
    let attempts = number(&hedged, "/control/attempts_per_request");
    assert!((attempts - (1.0 + hedges / n)).abs() < 1e-9, "{attempts}");
    assert_eq!(number(&plain, "/control/hedges"), 0.0);
    assert_eq!(number(&plain, "/control/attempts_per_request"), 1.0);

    // The scenario's own hypothesis (p99.9 at most 150 ms) holds only with the hedge.
    assert_eq!(hedged["verdict"], "holds");
    assert_eq!(plain["verdict"], "fails");
}

/// `backoff_jitter.toml`'s setup, the blog's simulation: every network crossing takes
/// |N(10 ms, 2 ms)|, the row answers at once, and backoff starts at 10 ms (the simulator's
/// `base` is the first exponential wait; the blog's code writes 2 x 5 ms) with a 2 s cap.
const HOP_MEAN_MS: f64 = 10.0;
const HOP_SD_MS: f64 = 2.0;
const BACKOFF_BASE_MS: f64 = 10.0;
const BACKOFF_CAP_MS: f64 = 2000.0;
/// The backoff kinds of the blog, plain exponential first.
const BLOG_KINDS: [BackoffKind; 4] = [
    BackoffKind::Exponential,
    BackoffKind::FullJitter,
    BackoffKind::EqualJitter,
    BackoffKind::DecorrelatedJitter,
];
/// Client counts compared: the blog plots 10 to 100.
const CLIENT_COUNTS: [u32; 3] = [20, 50, 100];
/// Seeds of the simulator per configuration, and independent runs of the model.
const SIMULATED_RUNS: u64 = 20;
const MODEL_RUNS: u64 = 100;

/// What one run of contending clients measured.
#[derive(Clone, Copy, Debug)]
struct Contention {
    /// Calls (conditional writes) per client.
    calls_per_client: f64,
    /// When the last client's update landed and its answer came back, seconds.
    seconds: f64,
}

/// The mean of `runs` and the variance of that mean.
fn mean_and_variance(runs: &[Contention], field: fn(&Contention) -> f64) -> (f64, f64) {
    let n = runs.len() as f64;
    let mean = runs.iter().map(field).sum::<f64>() / n;
    let variance = runs.iter().map(|r| (field(r) - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, variance / n)
}

/// `backoff_jitter.toml` with `clients` clients backing off with `backoff`.
fn contention_scenario(clients: u32, backoff: BackoffKind) -> CheckedScenario {
    let mut scenario = load("backoff_jitter.toml").into_scenario();
    let LoadShape::Closed(ClosedLoop {
        clients: population,
        ..
    }) = &mut scenario.load.shape
    else {
        panic!("the clients are a closed loop");
    };
    *population = clients;
    scenario.requests = Some(u64::from(clients));
    let Some(Step::Call(call)) = scenario.functions[0].handler.first_mut() else {
        panic!("the handler is one call");
    };
    let Retry::UntilSuccess { backoff: kind, .. } = &mut call.retry else {
        panic!("the clients retry until success");
    };
    *kind = backoff;
    CheckedScenario::new(scenario).unwrap_or_else(|e| panic!("{e}"))
}

/// The simulator's figures for every client count and backoff kind, computed once for the
/// tests that read them.
fn simulated(clients: u32, backoff: BackoffKind) -> &'static [Contention] {
    static SWEEP: std::sync::OnceLock<Vec<(u32, BackoffKind, Vec<Contention>)>> =
        std::sync::OnceLock::new();
    let sweep = SWEEP.get_or_init(|| {
        let mut sweep = Vec::new();
        for clients in CLIENT_COUNTS {
            for kind in BLOG_KINDS {
                sweep.push((clients, kind, simulate(clients, kind)));
            }
        }
        sweep
    });
    sweep
        .iter()
        .find(|(c, k, _)| (*c, *k) == (clients, backoff))
        .map(|(_, _, runs)| runs.as_slice())
        .expect("a swept configuration")
}

/// The simulator's reports of `clients` clients backing off with `backoff`, one per seed.
fn simulate(clients: u32, backoff: BackoffKind) -> Vec<Contention> {
    let mut simulation =
        Simulation::new(contention_scenario(clients, backoff)).unwrap_or_else(|e| panic!("{e}"));
    (1..=SIMULATED_RUNS)
        .map(|seed| {
            simulation.set_seed(seed);
            let r: Value = serde_json::from_str(&simulation.run().to_json()).expect("JSON");
            let n = f64::from(clients);
            // Every update lands (no client ran out of time retrying: the counted-attempt
            // limit does not apply to retries until success, so 100 clients are faithful).
            assert_eq!(number(&r, "/control/requests"), n);
            assert_eq!(
                number(&r, "/control/succeeded"),
                n,
                "{backoff:?} seed {seed}"
            );
            // Each attempt is one conditional write; all but each client's last conflicted.
            let calls = number(&r, "/control/attempts_per_request");
            let conflicts = number(&r, "/control/conflicts");
            assert!(
                (calls - (conflicts + n) / n).abs() < 1e-6,
                "{calls} {conflicts}"
            );
            Contention {
                calls_per_client: calls,
                seconds: number(&r, "/control/simulated_seconds"),
            }
        })
        .collect()
}

/// The wait before retry `n` (1 for the first) in ms: the blog's formulas, with the first
/// exponential wait as `base`. `previous_ms` is the client's previous wait; `unit` a uniform
/// draw in [0, 1).
fn model_wait_ms(kind: BackoffKind, n: u32, previous_ms: f64, unit: f64) -> f64 {
    let exponential = (BACKOFF_BASE_MS * 2f64.powi(n as i32 - 1)).min(BACKOFF_CAP_MS);
    match kind {
        BackoffKind::Exponential => exponential,
        BackoffKind::FullJitter => unit * exponential,
        BackoffKind::EqualJitter => exponential / 2.0 + unit * exponential / 2.0,
        BackoffKind::DecorrelatedJitter => {
            let previous = if n == 1 { BACKOFF_BASE_MS } else { previous_ms };
            (BACKOFF_BASE_MS + unit * (3.0 * previous - BACKOFF_BASE_MS)).min(BACKOFF_CAP_MS)
        }
        other => panic!("{other:?} is not one of the blog's kinds"),
    }
}

/// A message in the model's network, delivered at its time (ns).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Message {
    /// A client's read reaches the row.
    Read,
    /// A client's conditional write reaches the row, with the version its read saw.
    Write(u64),
    /// The row's answer to a write reaches its client: whether it landed.
    Answer(bool),
}

/// An independent model of the blog's simulation, sharing no code with the simulator: its own
/// event loop and random stream. Every client reads the row's version when its read arrives,
/// sends its conditional write when the read's answer is back (the row answers at once), and
/// the write lands only if no other write landed since its read; a client whose write failed
/// waits its backoff once the answer is back, then reads again. Returns the run's figures and
/// the most calls one client made.
fn model_run(clients: usize, backoff: BackoffKind, seed: u64) -> (Contention, u32) {
    use rand::{RngExt, SeedableRng};
    use rand_distr::{Distribution, Normal};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let hop_ms = Normal::new(HOP_MEAN_MS, HOP_SD_MS).expect("valid normal");
    // |N(10, 2)| as the blog draws it; a draw below 0 is 5 standard deviations away.
    let hop = |rng: &mut rand_chacha::ChaCha8Rng| (hop_ms.sample(rng).abs() * 1e6) as u64;
    let mut queue = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut send = |queue: &mut BinaryHeap<_>, at: u64, client: usize, message: Message| {
        sequence += 1;
        queue.push(Reverse((at, sequence, client, message)));
    };
    for client in 0..clients {
        let at = hop(&mut rng);
        send(&mut queue, at, client, Message::Read);
    }
    let (mut version, mut calls, mut finished) = (0u64, 0u64, 0u64);
    let mut made = vec![0u32; clients];
    let mut previous_ms = vec![0f64; clients];
    while let Some(Reverse((now, _, client, message))) = queue.pop() {
        match message {
            Message::Read => {
                let at = now + hop(&mut rng) + hop(&mut rng);
                send(&mut queue, at, client, Message::Write(version));
            }
            Message::Write(seen) => {
                calls += 1;
                made[client] += 1;
                let landed = seen == version;
                if landed {
                    version += 1;
                }
                let at = now + hop(&mut rng);
                send(&mut queue, at, client, Message::Answer(landed));
            }
            Message::Answer(true) => finished = finished.max(now),
            Message::Answer(false) => {
                let wait = model_wait_ms(backoff, made[client], previous_ms[client], rng.random());
                previous_ms[client] = wait;
                let at = now + (wait * 1e6) as u64 + hop(&mut rng);
                send(&mut queue, at, client, Message::Read);
            }
        }
    }
    assert_eq!(version, clients as u64, "every client's update landed once");
    let most = made.iter().copied().max().unwrap_or(0);
    let run = Contention {
        calls_per_client: calls as f64 / clients as f64,
        seconds: finished as f64 / 1e9,
    };
    (run, most)
}

#[test]
fn the_backoff_scenario_is_the_blogs_setup() {
    let checked = load("backoff_jitter.toml");
    let row = &checked.dependencies[0];
    let hop = LatencyDist::normal(
        Duration::from_millis(HOP_MEAN_MS as u64),
        Duration::from_millis(HOP_SD_MS as u64),
    )
    .expect("valid");
    assert_eq!(row.hops.request.as_ref(), Some(&hop));
    assert_eq!(row.hops.response.as_ref(), Some(&hop));
    assert_eq!(row.latency, LatencyDist::constant(Duration::ZERO));
    assert_eq!(row.capacity, chaos_sim::model::Capacity::OptimisticItem);
    let Step::Call(call) = &checked.functions[0].handler[0] else {
        panic!("the handler is one call");
    };
    assert_eq!(
        call.retry,
        Retry::UntilSuccess {
            within: chaos_sim::model::RetryWithin::Deadline,
            backoff: BackoffKind::FullJitter,
            base: Duration::from_millis(BACKOFF_BASE_MS as u64),
            cap: Duration::from_millis(BACKOFF_CAP_MS as u64),
        }
    );
    assert!(matches!(
        &checked.load.shape,
        LoadShape::Closed(c) if c.clients == 50 && c.start_spread.is_zero()
    ));
    assert_eq!(checked.requests, Some(50));
    assert_eq!(
        checked.functions[0].cold_start,
        LatencyDist::constant(Duration::ZERO)
    );
}

#[test]
fn clients_contending_on_one_row_match_an_independent_model_for_every_backoff() {
    for clients in CLIENT_COUNTS {
        for kind in BLOG_KINDS {
            let simulated = simulated(clients, kind);
            let (modelled, most): (Vec<Contention>, Vec<u32>) = (1..=MODEL_RUNS)
                .map(|run| model_run(clients as usize, kind, 1_000_000 + run))
                .unzip();
            // No client comes near a counted policy's 63 attempts either (the most is 44,
            // plain exponential with 100 clients).
            assert!(most.iter().all(|&m| m < 63), "{clients} {kind:?}: {most:?}");
            for (what, field) in [
                (
                    "calls per client",
                    (|r: &Contention| r.calls_per_client) as fn(&_) -> f64,
                ),
                ("seconds to finish", |r: &Contention| r.seconds),
            ] {
                let (sim, sim_var) = mean_and_variance(simulated, field);
                let (model, model_var) = mean_and_variance(&modelled, field);
                // Means over independent runs: the difference has variance sim_var +
                // model_var; allow 4 standard errors.
                let tolerance = 4.0 * (sim_var + model_var).sqrt();
                assert!(
                    (sim - model).abs() <= tolerance,
                    "{clients} clients, {kind:?}, {what}: simulated {sim:.3}, model {model:.3} \
                     ± {tolerance:.3}"
                );
            }
        }
    }
}

#[test]
fn jittered_backoff_needs_far_fewer_calls_and_plain_exponential_is_by_far_the_slowest() {
    // Brooker's two findings, on the simulator's means over its seeds. Margins: every gap
    // is more than 4 standard errors of the difference, and at least the factors below
    // (measured: exponential makes 1.4x, 1.8x, 2.2x the calls of the costliest jittered
    // kind at 20, 50, 100 clients, and takes 8x to 10x as long as the slowest one).
    let calls = |r: &Contention| r.calls_per_client;
    let seconds = |r: &Contention| r.seconds;
    for (clients, least_call_ratio) in CLIENT_COUNTS.into_iter().zip([1.3, 1.6, 2.0]) {
        let exponential = simulated(clients, BackoffKind::Exponential);
        for jittered in &BLOG_KINDS[1..] {
            let runs = simulated(clients, *jittered);
            for (what, field, least_ratio) in [
                (
                    "calls per client",
                    calls as fn(&Contention) -> f64,
                    least_call_ratio,
                ),
                ("seconds to finish", seconds, 5.0),
            ] {
                let (slow, slow_var) = mean_and_variance(exponential, field);
                let (fast, fast_var) = mean_and_variance(runs, field);
                let gap = 4.0 * (slow_var + fast_var).sqrt();
                assert!(
                    slow - fast > gap && slow >= least_ratio * fast,
                    "{clients} clients, {what}: exponential {slow:.2} vs {jittered:?} \
                     {fast:.2} (gap needed {gap:.2} and x{least_ratio})"
                );
            }
        }
    }
    // The calls plain exponential wastes grow with the crowd: per client, from 20 to 100
    // clients, more than twice; full jitter's by about half.
    let mean_calls = |clients, kind| mean_and_variance(simulated(clients, kind), calls).0;
    let growth = |kind| mean_calls(100, kind) / mean_calls(20, kind);
    assert!(growth(BackoffKind::Exponential) > 2.0);
    assert!(growth(BackoffKind::FullJitter) < 1.8);
}
