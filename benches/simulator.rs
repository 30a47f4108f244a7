//! Simulator throughput on the fan-out model of `../shared/baselines/simpy_fanout.py`:
//! Poisson 1000/s, fan-out 10, log-normal leaves (median 20 ms, sigma 0.5), join all.
//!
//! `cargo bench --bench simulator` reports simulated requests per second (criterion's
//! element throughput) for the default engine (fan-outs of plain calls joined at issue
//! time) and for one event per branch, and prints a one-shot 1,000,000-request run of each.
//! Side by side with SimPy: `chaos-sim/bench/compare_simpy.sh`.
//!
//! `checkout` times the bundled checkout scenario's experiment run (sync invoke fan-out, SDK
//! retries and their quota, cold starts, a throttling window): a realistic mix rather than the
//! reference model. Its memory as requests grow 10x: `chaos-sim/bench/scenario_memory.sh`.

use chaos_sim::Simulation;
use chaos_sim::model::Step;
use chaos_sim::reference;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Instant;

fn fan_out_model(requests: u64, collapse: bool) -> Simulation {
    let scenario = reference::fan_out(
        requests,
        10,
        Step::call("leaf").step(),
        1000.0,
        1,
        reference::baseline_leaf(),
    )
    .expect("valid scenario");
    let mut simulation = Simulation::new(scenario).expect("compiles");
    simulation.set_collapse_fan_outs(collapse);
    simulation
}

fn one_shot(requests: u64, collapse: bool) {
    let simulation = fan_out_model(requests, collapse);
    let started = Instant::now();
    let metrics = simulation.run_control();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "one-shot {} requests ({}): {:.0} requests/s, {:.0} events/s, wall {:.3} s",
        requests,
        if collapse { "collapsed" } else { "per-branch" },
        requests as f64 / wall,
        metrics.events as f64 / wall,
        wall
    );
}

fn simulator(c: &mut Criterion) {
    one_shot(1_000_000, true);
    one_shot(1_000_000, false);
    let requests = 100_000;
    let mut group = c.benchmark_group("fanout_k10");
    group.throughput(Throughput::Elements(requests));
    group.sample_size(10);
    for (name, collapse) in [("collapsed", true), ("per_branch", false)] {
        let simulation = fan_out_model(requests, collapse);
        group.bench_with_input(BenchmarkId::new(name, requests), &simulation, |b, sim| {
            b.iter(|| black_box(sim.run_control().events))
        });
    }
    group.finish();
}

fn checkout(c: &mut Criterion) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios/checkout.toml");
    let simulation = Simulation::new(chaos_sim::scenario::load(&path).expect("bundled scenario"))
        .expect("compiles");
    let requests = simulation.run_experiment().requests;
    let mut group = c.benchmark_group("checkout");
    group.throughput(Throughput::Elements(requests));
    group.sample_size(10);
    group.bench_function("experiment", |b| {
        b.iter(|| black_box(simulation.run_experiment().events))
    });
    group.finish();
}

criterion_group!(benches, simulator, checkout);
criterion_main!(benches);
