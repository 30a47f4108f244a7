//! The fan-out model of `shared/baselines/simpy_fanout.py`, timed on one core.
//!
//! Poisson arrivals at 1000/s; each request fans out to K parallel calls with log-normal
//! latency (median 20 ms, sigma 0.5) and joins them all; no contention.
//!
//! Usage: `fanout_bench [REQUESTS] [FANOUT] [collapsed|per-branch] [SEED]`
//! (defaults 1000000 10 collapsed 1). `per-branch` runs one event per branch.
#![forbid(unsafe_code)]

use chaos_core::latency::LatencyDist;
use chaos_sim::Simulation;
use chaos_sim::model::{
    Account, Dependency, Function, Join, LoadShape, OpenLoop, ScenarioBuilder, Step,
};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let requests: u64 = args.get(1).map_or(Ok(1_000_000), |a| a.parse())?;
    let fan_out: u32 = args.get(2).map_or(Ok(10), |a| a.parse())?;
    let mode = args.get(3).map_or("collapsed", String::as_str);
    let seed: u64 = args.get(4).map_or(Ok(1), |a| a.parse())?;
    let (mu, sigma) = ((0.020f64).ln(), 0.5);

    let mut builder = ScenarioBuilder::new("fanout", "fanout");
    builder
        .seed(seed)
        .requests(requests)
        .account(Account {
            concurrency: 10_000_000,
            unreserved_minimum: 0,
        })
        .load(LoadShape::Open(OpenLoop::poisson(1000.0)));
    let mut function = Function::new(
        "fanout",
        vec![Step::fan_out(fan_out, Join::All, Step::call("leaf").step())],
    );
    function.cold_start = LatencyDist::constant(Duration::ZERO);
    builder
        .function(function)
        .dependency(Dependency::new("leaf", LatencyDist::log_normal(mu, sigma)?));
    let mut simulation = Simulation::new(builder.build()?)?;
    simulation.set_collapse_fan_outs(mode != "per-branch");

    let started = Instant::now();
    let m = simulation.run_control();
    let wall = started.elapsed().as_secs_f64();

    println!("variant=chaos-sim-{mode} N={requests} K={fan_out} seed={seed}");
    println!(
        "wall_s={wall:.3} requests_per_s={:.0} subcalls_per_s={:.0} events_per_s={:.0} sim_time_s={:.1}",
        requests as f64 / wall,
        (requests * u64::from(fan_out)) as f64 / wall,
        m.events as f64 / wall,
        m.end_time_ns as f64 / 1e9
    );
    let leaf = LatencyDist::log_normal(mu, sigma)?;
    for q in [0.5f64, 0.9, 0.99, 0.999] {
        let analytic = leaf
            .quantile(q.powf(1.0 / f64::from(fan_out)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        println!(
            "p{}: sim={:.2} ms analytic={analytic:.2} ms",
            q * 100.0,
            m.latency_quantile_ns(q) as f64 / 1e6
        );
    }
    println!(
        "peak_frames={} peak_event_queue={}",
        m.peak_frames, m.peak_event_queue
    );
    Ok(())
}
