#!/usr/bin/env bash
# A realistic scenario's speed and memory: the bundled checkout (sync invoke fan-out, SDK
# retries with their quota, cold starts, a throttling window), experiment run, at its own length
# and 10x longer. Peak RSS should stay flat: request state is freed as requests complete.
#
# Usage (from the repository root): chaos-sim/bench/scenario_memory.sh [SCENARIO]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
scenario=${1:-$root/examples/scenarios/checkout.toml}
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p chaos-sim --example scenario_bench
bench="$target/release/examples/scenario_bench"
for factor in 1 10; do
  out=$( { /usr/bin/time -f "peak_rss_kb=%M" "$bench" "$scenario" "$factor"; } 2>&1)
  echo "$out" | tr '\n' ' '
  echo
done
