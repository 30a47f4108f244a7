//! Times one scenario file's experiment run on one core: simulated requests and events per
//! wall-clock second, and the peak work in flight. With a duration multiplier, the same
//! scenario runs longer, to show that memory follows the work in flight, not the requests.
//!
//! Usage: `scenario_bench [SCENARIO] [DURATION_FACTOR]` (defaults
//! `examples/scenarios/checkout.toml` and 1). Peak memory: `chaos-sim/bench/scenario_memory.sh`.
#![forbid(unsafe_code)]

use chaos_sim::{CheckedScenario, Simulation, scenario};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .map_or("examples/scenarios/checkout.toml", String::as_str);
    let factor: u32 = args.get(2).map_or(Ok(1), |a| a.parse())?;
    let mut model = scenario::load(std::path::Path::new(path))?.into_scenario();
    if let Some(duration) = model.duration {
        model.duration = Some(duration * factor);
    }
    let simulation = Simulation::new(CheckedScenario::new(model)?)?;

    let started = Instant::now();
    let m = simulation.run_experiment();
    let wall = started.elapsed().as_secs_f64();
    println!("scenario={path} duration_factor={factor}");
    println!(
        "wall_s={wall:.3} requests={} requests_per_s={:.0} events_per_s={:.0} peak_frames={} peak_event_queue={}",
        m.requests,
        m.requests as f64 / wall,
        m.events as f64 / wall,
        m.peak_frames,
        m.peak_event_queue
    );
    Ok(())
}
