//! `chaos`: run a chaos experiment from a scenario file.
//!
//! `chaos run SCENARIO [--json] [--seed N]` prints control and experiment side by side and
//! exits 0 when every hypothesis holds, 1 when one fails, 2 for invalid input.
//!
//! `chaos check-timeouts CHAIN` checks a call chain's timeouts (chaos-core's `timeout::check`):
//! it prints every hop whose worst case exceeds what its caller has left and every call with no
//! timeout, and exits 0 when there is none, 1 when there are findings, 2 for invalid input.
#![forbid(unsafe_code)]

use chaos_sim::{Simulation, scenario};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "chaos",
    version,
    about = "Chaos experiments on a simulated serverless system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run control and experiment for a scenario and check its hypothesis.
    Run {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Print the JSON report (schema in chaos-sim/REPORT_SCHEMA.md) instead of a table.
        #[arg(long)]
        json: bool,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Check a call chain's timeouts, retries and backoff against each caller's budget.
    CheckTimeouts {
        /// Call chain file (TOML): the root hop, with nested `[[calls]]`.
        chain: PathBuf,
    },
}

/// Writes `text` to stdout. A reader that went away (`chaos run ... | head`) is not an error:
/// the rest is dropped quietly, as other command-line tools do; `print!` would panic.
fn print_quietly(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The deepest call chain `check-timeouts` reads. The TOML reader stops at a recursion limit
/// somewhere past 80 levels with a bare "recursion limit"; this check says where and why first.
const MAX_CHAIN_DEPTH: usize = 64;

/// The line (1-based) and depth of the most deeply nested table header, such as
/// `[[calls.calls]]` (depth 2).
fn deepest_table(text: &str) -> Option<(usize, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let header = line.trim_start().strip_prefix('[')?;
            let name = header.trim_start_matches('[').split(']').next()?;
            Some((i + 1, name.split('.').count()))
        })
        .max_by_key(|&(_, depth)| depth)
}

fn check_timeouts(path: &std::path::Path) -> ExitCode {
    let text = match scenario::read_text(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if let Some((line, depth)) = deepest_table(&text)
        && depth > MAX_CHAIN_DEPTH
    {
        eprintln!(
            "error: {}:{line}: calls nested {depth} deep; expected at most {MAX_CHAIN_DEPTH} \
                 (a real call chain is a handful of hops: check the `[[calls.calls...]]` header)",
            path.display()
        );
        return ExitCode::from(2);
    }
    let chain: chaos_core::timeout::Hop = match toml::from_str(&text) {
        Ok(chain) => chain,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let findings = chaos_core::timeout::check(&chain);
    if findings.is_empty() {
        print_quietly(&format!(
            "{}: every call fits its caller's budget\n",
            chain.name
        ));
        return ExitCode::SUCCESS;
    }
    let mut text = String::new();
    for finding in &findings {
        text.push_str(&format!("{finding}\n"));
    }
    text.push_str(&format!("{} finding(s)\n", findings.len()));
    print_quietly(&text);
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::CheckTimeouts { chain } => check_timeouts(&chain),
        Command::Run {
            scenario: path,
            json,
            seed,
        } => {
            let scenario = match scenario::load(&path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut simulation = match Simulation::new(scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            if let Some(seed) = seed {
                simulation.set_seed(seed);
            }
            let report = simulation.run();
            let text = if json {
                report.to_json() + "\n"
            } else {
                report.to_table()
            };
            print_quietly(&text);
            if let Some(why) = &report.stopped {
                eprintln!("error: {}: {why}", path.display());
            }
            ExitCode::from(report.exit_code() as u8)
        }
    }
}
