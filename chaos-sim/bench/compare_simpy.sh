#!/usr/bin/env bash
# Side-by-side throughput of chaos-sim and SimPy on the same fan-out model
# (../shared/baselines/simpy_fanout.py: Poisson 1000/s, fan-out 10, log-normal median 20 ms
# sigma 0.5, join all), plus peak memory of chaos-sim at 100k and 1M requests.
#
# Usage (from the repository root): chaos-sim/bench/compare_simpy.sh [REQUESTS]
# SimPy is installed once into a private virtualenv by ../shared/baselines/simpy.sh.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
requests=${1:-1000000}
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p chaos-sim --example fanout_bench
bench="$target/release/examples/fanout_bench"

rate() { sed -n 's/.*requests_per_s=\([0-9,]*\).*/\1/p' | tr -d ,; }

echo "== chaos-sim, $requests requests (one core)"
ours_out=$("$bench" "$requests" 10 collapsed 1)
echo "$ours_out"
ours=$(echo "$ours_out" | rate)
per_branch_out=$("$bench" "$requests" 10 per-branch 1)
echo "$per_branch_out" | sed -n 1,2p
per_branch=$(echo "$per_branch_out" | rate)

echo "== SimPy, 100000 requests (timeout variant, its fastest form)"
simpy_out=$(bash "$root/../shared/baselines/simpy.sh" 100000 10 timeout 1)
echo "$simpy_out"
simpy=$(echo "$simpy_out" | rate)

echo "== memory (peak RSS) as requests grow 10x"
for n in $((requests / 10)) "$requests"; do
  rss=$( { /usr/bin/time -f "%M" "$bench" "$n" 10 collapsed 1 >/dev/null; } 2>&1 | tail -1)
  echo "requests=$n peak_rss_kb=$rss"
done

echo "== summary"
echo "chaos-sim requests/s: $ours (one event per branch: $per_branch)"
echo "SimPy requests/s:     $simpy"
awk -v a="$ours" -v b="$per_branch" -v s="$simpy" \
  'BEGIN { printf "ratio: %.1fx (one event per branch: %.1fx)\n", a / s, b / s }'
