//! serverless-chaos: chaos engineering for serverless systems.
//!
//! This facade re-exports the workspace's crates:
//!
//! * [`core`] (`chaos-core`): fault policies, deterministic decisions, the runtime injector,
//!   the tower layer and timeout checks;
//! * [`sim`] (`chaos-sim`): the deterministic discrete-event simulator and its `chaos` command.
//!
//! The AWS adapter (`chaos-aws`) is not re-exported: its SDK dependencies are heavy, and a
//! simulation should build without them.
#![forbid(unsafe_code)]
// The README's examples compile and run as doctests of this crate.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use chaos_core as core;
pub use chaos_sim as sim;
