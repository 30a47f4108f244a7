#!/usr/bin/env bash
# Runs the whole test suite: unit, integration, property, value-stability and doc tests of
# every crate, after running every benchmark once in criterion's test mode (so they cannot rot
# or panic; no timing is judged). Ends with one summary line, "N passed, N failed".
#
# chaos-aws's tests talk to an AWS emulator on loopback: this script installs moto (server
# mode) from PyPI into target/moto-venv (reused when present; CHAOS_AWS_MOTO_VENV moves it),
# starts it on a free 127.0.0.1 port, exports CHAOS_AWS_TEST_ENDPOINT, and stops it on exit.
# When moto cannot be installed or started, the AWS tests fail and say why
# (CHAOS_AWS_TEST_SETUP_ERROR); they never pass without it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --benches

log=$(mktemp)
moto_pid=""
cleanup() {
    if [ -n "$moto_pid" ]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    rm -f "$log"
}
trap cleanup EXIT

start_moto() {
    local venv="${CHAOS_AWS_MOTO_VENV:-target/moto-venv}"
    if [ ! -x "$venv/bin/moto_server" ]; then
        echo "chaos-aws tests: installing moto[server] into $venv (once) ..."
        local started=$SECONDS
        if ! python3 -m venv "$venv"; then
            setup_error="python3 -m venv $venv failed: install Python 3 with its venv module"
            return 1
        fi
        if ! "$venv/bin/pip" install --quiet "moto[server]>=5,<6"; then
            setup_error="pip could not install moto[server] from PyPI into $venv"
            return 1
        fi
        echo "chaos-aws tests: moto installed in $((SECONDS - started)) s"
    fi
    local port
    if ! port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'); then
        setup_error="could not find a free loopback port with python3"
        return 1
    fi
    mkdir -p target
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto-server.log 2>&1 &
    moto_pid=$!
    local endpoint="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/', timeout=1)" 2>/dev/null; then
            export CHAOS_AWS_TEST_ENDPOINT="$endpoint"
            echo "chaos-aws tests: moto serving on $endpoint (pid $moto_pid)"
            return 0
        fi
        if ! kill -0 "$moto_pid" 2>/dev/null; then
            setup_error="moto_server exited at start; see target/moto-server.log"
            return 1
        fi
        sleep 0.1
    done
    setup_error="moto_server did not answer on $endpoint within 10 s; see target/moto-server.log"
    return 1
}

setup_error=""
if ! start_moto; then
    echo "chaos-aws tests: no AWS emulator: $setup_error (the AWS tests will fail)" >&2
    export CHAOS_AWS_TEST_SETUP_ERROR="$setup_error"
fi

status=0
cargo test --workspace --all-features 2>&1 | tee "$log" || status=$?
echo
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
