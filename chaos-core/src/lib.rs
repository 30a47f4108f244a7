//! Fault policies for serverless chaos experiments.
#![forbid(unsafe_code)]

pub mod decision;
pub mod duration;
pub mod fault;
pub mod latency;
pub mod plan;
pub mod rule;
