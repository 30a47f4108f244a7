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
#
# chaos-aws's end-to-end Lambda test (tests/lambda_watch.rs) needs `cargo lambda watch`: this
# script installs cargo-lambda from PyPI into target/cargo-lambda-venv (reused when present;
# CHAOS_AWS_CARGO_LAMBDA_VENV moves it), starts the watcher on a free 127.0.0.1 port running
# the `chaos-echo` function of examples/lambda-orders, exports CHAOS_AWS_LAMBDA_ENDPOINT, and
# stops it on exit. When it cannot, the test fails saying why (CHAOS_AWS_LAMBDA_SETUP_ERROR).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --benches

log=$(mktemp)
moto_pid=""
watch_pid=""
cleanup() {
    if [ -n "$moto_pid" ]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    if [ -n "$watch_pid" ]; then
        # The watcher runs cargo and the function as children: end its process group.
        kill -- "-$watch_pid" 2>/dev/null || kill "$watch_pid" 2>/dev/null || true
        wait "$watch_pid" 2>/dev/null || true
    fi
    rm -f "$log"
}
trap cleanup EXIT

# Installs `package` from PyPI into the virtualenv `venv` unless `venv/bin/exe` is there;
# on failure `why` says what went wrong.
why=""
ensure_venv() {
    local venv=$1 exe=$2 package=$3 name=$4
    [ -x "$venv/bin/$exe" ] && return 0
    echo "chaos-aws tests: installing $name into $venv (once) ..."
    local started=$SECONDS
    if ! python3 -m venv "$venv"; then
        why="python3 -m venv $venv failed: install Python 3 with its venv module"
        return 1
    fi
    if ! "$venv/bin/pip" install --quiet "$package"; then
        why="pip could not install $name from PyPI into $venv"
        return 1
    fi
    echo "chaos-aws tests: $name installed in $((SECONDS - started)) s"
}

# Prints a free loopback port.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_moto() {
    local venv="${CHAOS_AWS_MOTO_VENV:-target/moto-venv}"
    if ! ensure_venv "$venv" moto_server "moto[server]>=5,<6" "moto[server]"; then
        setup_error=$why
        return 1
    fi
    local port
    if ! port=$(free_port); then
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

start_cargo_lambda() {
    local venv="${CHAOS_AWS_CARGO_LAMBDA_VENV:-target/cargo-lambda-venv}"
    if ! ensure_venv "$venv" cargo-lambda "cargo-lambda>=1.9,<2" cargo-lambda; then
        lambda_error=$why
        return 1
    fi
    local port
    if ! port=$(free_port); then
        lambda_error="could not find a free loopback port with python3"
        return 1
    fi
    # Built here, so the watcher finds the function compiled and the build's time is
    # reported apart from the tests'.
    local started=$SECONDS
    if ! cargo build -p lambda-orders --bin chaos-echo; then
        lambda_error="the chaos-echo function (examples/lambda-orders) did not build"
        return 1
    fi
    echo "chaos-aws tests: chaos-echo built in $((SECONDS - started)) s"
    mkdir -p target
    PATH="$PWD/$venv/bin:$PATH" setsid cargo lambda watch -p lambda-orders --bin chaos-echo \
        -A 127.0.0.1 -P "$port" --ignore-changes \
        --env-var "CHAOS_PLAN_FILE=$PWD/chaos-aws/tests/lambda_watch_plan.toml" \
        >target/cargo-lambda-watch.log 2>&1 &
    watch_pid=$!
    local endpoint="http://127.0.0.1:$port"
    for _ in $(seq 1 300); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), timeout=1).close()" 2>/dev/null; then
            export CHAOS_AWS_LAMBDA_ENDPOINT="$endpoint"
            echo "chaos-aws tests: cargo lambda watch serving on $endpoint (pid $watch_pid)"
            return 0
        fi
        if ! kill -0 "$watch_pid" 2>/dev/null; then
            lambda_error="cargo lambda watch exited at start; see target/cargo-lambda-watch.log"
            return 1
        fi
        sleep 0.1
    done
    lambda_error="cargo lambda watch did not listen on $endpoint within 30 s; see target/cargo-lambda-watch.log"
    return 1
}

lambda_error=""
if ! start_cargo_lambda; then
    echo "chaos-aws tests: no cargo lambda watch: $lambda_error (the Lambda end-to-end test will fail)" >&2
    export CHAOS_AWS_LAMBDA_SETUP_ERROR="$lambda_error"
fi

status=0
cargo test --workspace --all-features 2>&1 | tee "$log" || status=$?
echo
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
