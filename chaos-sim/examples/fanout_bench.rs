//! The fan-out model of `shared/baselines/simpy_fanout.py`, timed on one core.
//!
//! Poisson arrivals at 1000/s; each request fans out to K parallel calls with log-normal
//! latency (median 20 ms, sigma 0.5) and joins them all; no contention.
//!
//! Usage: `fanout_bench [REQUESTS] [FANOUT] [collapsed|per-branch] [SEED]`
//! (defaults 1000000 10 collapsed 1). `per-branch` runs one event per branch.
#![forbid(unsafe_code)]

use chaos_sim::Simulation;
use chaos_sim::model::Step;
use chaos_sim::reference;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let requests: u64 = args.get(1).map_or(Ok(1_000_000), |a| a.parse())?;
    let fan_out: u32 = args.get(2).map_or(Ok(10), |a| a.parse())?;
    let mode = args.get(3).map_or("collapsed", String::as_str);
    let seed: u64 = args.get(4).map_or(Ok(1), |a| a.parse())?;
    let leaf = reference::baseline_leaf();
    let scenario = reference::fan_out(
        requests,
        fan_out,
        Step::call("leaf").step(),
        1000.0,
        seed,
        leaf.clone(),
    )?;
    let mut simulation = Simulation::new(scenario)?;
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
