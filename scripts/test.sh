#!/usr/bin/env bash
# Runs the whole test suite: unit, integration, property, value-stability and doc tests of
# every crate, after running every benchmark once in criterion's test mode (so they cannot rot
# or panic; no timing is judged). Ends with one summary line, "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --benches
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-features 2>&1 | tee "$log" || status=$?
echo
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
