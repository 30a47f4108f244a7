#!/usr/bin/env bash
# Instructions per request through the HTTP layers and tower-resilience-chaos, counted by
# callgrind (repeatable on a noisy machine): the difference between runs of 200k and 100k
# requests, divided by 100k, so set-up cancels out. `bare` is the request and service alone;
# a layer's overhead is its figure minus bare's.
# Usage: bash scripts/http_instructions.sh   (needs valgrind: apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p serverless-chaos --example http_layer_cost
bin=target/release/examples/http_layer_cost
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}
printf '%-12s %s\n' case instructions_per_request
for case in bare server client kill_switch peer; do
  small=$(count "$case" 100000)
  large=$(count "$case" 200000)
  printf '%-12s %s\n' "$case" "$(( (large - small) / 100000 ))"
done
