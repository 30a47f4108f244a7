//! Placeholder until the AWS adapter issue lands.
#![forbid(unsafe_code)]
