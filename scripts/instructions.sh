#!/usr/bin/env bash
# Instructions per injector decision, counted by callgrind (repeatable on a noisy machine):
# the difference between runs of 200k and 100k calls, divided by 100k, so set-up cancels out.
# Usage: bash scripts/instructions.sh   (needs valgrind: apt-get install valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p serverless-chaos --example decide_cost
bin=target/release/examples/decide_cost
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}
printf '%-32s %s\n' case instructions_per_call
# `_site` cases decide at a pre-resolved `Site`; the others build an ad hoc `Call`.
for case in ${CASES:-kill_switch kill_switch_site empty_plan one_rule_not_firing one_rule_1pct \
  one_rule_1pct_call_site one_rule_1pct_site hundred_rules hundred_rules_one_matches \
  hundred_rules_one_matches_site}; do
  small=$(count "$case" 100000)
  large=$(count "$case" 200000)
  printf '%-32s %s\n' "$case" "$(( (large - small) / 100000 ))"
done
