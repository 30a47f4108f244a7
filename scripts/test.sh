#!/usr/bin/env bash
# Runs the whole test suite: unit, integration, property, value-stability and doc tests of
# every crate, and builds every example and benchmark. Installs nothing beyond the Rust
# toolchain; later suites that need services start them here.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features
cargo test --workspace --benches --no-run
