#!/usr/bin/env bash
# Instructions per injector decision, counted by callgrind (repeatable on a noisy machine).
#
# Usage: bash scripts/instructions.sh   (needs valgrind: apt-get install valgrind)
#   Counts `examples/decide_cost`: the difference between runs of 200k and 100k calls,
#   divided by 100k, so set-up cancels out. The ad hoc cases name their site at run time
#   (a constant name could be hashed at compile time or not, depending on inlining).
#
# Usage: bash scripts/instructions.sh --bench [BINARY]   (needs python3 as well)
#   Counts the criterion binary's own cases (`cargo bench --bench injector`), so the
#   figures go beside the wall-clock ones: each case runs under callgrind with
#   `--profile-time 1`; the instructions of the timed loop (the `Bencher::iter` function
#   and what it calls) over its trip count (the most common execution count among its
#   instructions). `a_harness_floor` is the loop alone. BINARY defaults to the newest
#   `target/release/deps/injector-*`; pass an older build to compare.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--bench" ]]; then
  bin=${2:-}
  if [[ -z "$bin" ]]; then
    cargo bench --quiet --bench injector --no-run
    bin=$(ls -t target/release/deps/injector-* | grep -v '\.d$' | head -n 1)
  fi
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  printf '%-52s %s\n' case instructions_per_iteration
  for case in ${CASES:-per_call/a_harness_floor per_call/a_kill_switch_on \
    per_call/a_kill_switch_on_site per_call/b_one_rule_1pct_not_firing \
    per_call/b_one_rule_1pct_not_firing_call_site per_call/b_one_rule_1pct_not_firing_site \
    per_call/c_hundred_rules_one_matches per_call/c_hundred_rules_one_matches_site \
    per_call/peer_fail_point_1pct tower_layer_1pct_error/inner_service_alone \
    tower_layer_1pct_error/chaos_core_site tower_layer_1pct_error/chaos_core \
    tower_layer_1pct_error/peer_tower_resilience_chaos}; do
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$out" \
      "$bin" --bench --profile-time 1 "${case}\$" >/dev/null 2>&1
    printf '%-52s %s\n' "$case" "$(python3 - "$out" <<'PY'
import collections, re, sys
own = collections.defaultdict(collections.Counter)  # function -> instruction -> count
called = collections.Counter()                       # function -> inclusive cost of calls
names, function, address, in_call = {}, None, 0, False
for line in open(sys.argv[1]):
    match = re.match(r'^(c?)fn=\((\d+)\)(?: (.*))?$', line)
    if match:
        if match.group(3):
            names[match.group(2)] = match.group(3)
        if not match.group(1):
            function = match.group(2)
        continue
    if line.startswith('calls='):
        in_call = True
        continue
    match = re.match(r'^(0x[0-9a-f]+|[+-]\d+|\*)\s+\S+\s+(\d+)', line)
    if not match or function is None:
        continue
    position = match.group(1)
    if position.startswith('0x'):
        address = int(position, 16)
    elif position != '*':
        address += int(position)
    if in_call:
        called[function] += int(match.group(2))
        in_call = False
    else:
        own[function][address] += int(match.group(2))
loops = [f for f in own if re.search(r'Bencher.*::iter$', names.get(f, ''))]
total, loop = max((sum(own[f].values()) + called[f], f) for f in loops)
trips = collections.Counter(c for c in own[loop].values() if c > 1000)
trip = max(trips.items(), key=lambda kv: (kv[1], kv[0]))[0]
print(f'{total / trip:.1f}')
PY
)"
  done
  exit 0
fi

cargo build --release --quiet -p serverless-chaos --example decide_cost
bin=target/release/examples/decide_cost
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}
printf '%-32s %s\n' case instructions_per_call
# `_site` cases decide at a pre-resolved `Site`; the others build an ad hoc `Call`
# (`_call_site`: at a pre-hashed `CallSite`).
for case in ${CASES:-kill_switch kill_switch_site empty_plan one_rule_not_firing one_rule_1pct \
  one_rule_1pct_call_site one_rule_1pct_site hundred_rules hundred_rules_one_matches \
  hundred_rules_one_matches_site}; do
  small=$(count "$case" 100000)
  large=$(count "$case" 200000)
  printf '%-32s %s\n' "$case" "$(( (large - small) / 100000 ))"
done
