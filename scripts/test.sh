#!/bin/bash
# Installs the dependencies, builds bmapscan twice (normal, and with the
# address and undefined-behaviour sanitizers), both with warnings as errors,
# and runs the whole test suite in each, then the fuzzers briefly. The
# README's test command and CI.
#
# The two suites run at the same time: most of their time is spent waiting
# on loop devices, fsync, mkfs and the real bmaptool rather than computing,
# so on 2 cores they overlap well (a quiet 2-core machine: see the closing
# line's seconds). Every test waits for conditions, never for time, so the
# extra load does not make any of them flaky.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh
START=$SECONDS

# setup DIR MESON-ARGS...: configures (or reconfigures) and compiles DIR.
setup() {
        local dir=$1
        shift
        echo "=== building in $dir ($*)"
        if [ -d "$dir" ]; then
                meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
        else
                meson setup "$dir" -Dwerror=true "$@" >/dev/null
        fi
        meson compile -C "$dir" >"$dir/compile-output.txt" 2>&1 || {
                cat "$dir/compile-output.txt"
                return 1
        }
}

# run_tests DIR [MESON-TEST-ARGS...]: runs the tests into DIR/test-output.txt;
# its status in DIR/test-status.
run_tests() {
        local dir=$1
        shift
        set +e
        meson test -C "$dir" --print-errorlogs --num-processes "$(nproc)" "$@" >"$dir/test-output.txt" 2>&1
        echo $? >"$dir/test-status"
        set -e
}

total_ok=0 total_fail=0 total_skip=0 status=0
# report DIR: prints a finished run and adds its counts.
report() {
        local dir=$1 ok fail skip to
        echo "=== tests in $dir"
        cat "$dir/test-output.txt"
        [ "$(cat "$dir/test-status")" = 0 ] || status=1
        ok=$(awk '/^Ok:/ {print $2}' "$dir/test-output.txt")
        fail=$(awk '/^Fail:/ {print $2}' "$dir/test-output.txt")
        skip=$(awk '/^Skipped:/ {print $2}' "$dir/test-output.txt")
        to=$(awk '/^Timeout:/ {print $2}' "$dir/test-output.txt")
        [ -n "$ok" ] || { echo "no test summary in $dir: the test run did not finish"; status=1; }
        total_ok=$((total_ok + ${ok:-0}))
        total_fail=$((total_fail + ${fail:-0} + ${to:-0}))
        total_skip=$((total_skip + ${skip:-0}))
}

setup build
setup build-sanitize -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
# The fuzzers' build compiles while the suites run: they spend most of
# their time waiting on devices and tools, and the compiler fills it.
fuzz_build= fuzz_log=$(mktemp)
if command -v clang >/dev/null; then
        (CC=clang setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false) \
                >"$fuzz_log" 2>&1 &
        fuzz_build=$!
fi
run_tests build &
normal=$!
run_tests build-sanitize &
sanitize=$!
wait "$normal" "$sanitize"
report build
report build-sanitize

# The fuzzers, each for a short bounded time (FUZZ_SECONDS, default 15).
if [ -n "$fuzz_build" ]; then
        wait "$fuzz_build" || { cat "$fuzz_log"; exit 1; }
        cat "$fuzz_log"; rm -f "$fuzz_log"
        run_tests build-fuzz --suite fuzz
        report build-fuzz
fi

echo "=== $((SECONDS - START)) s"
echo "tests: $total_ok passed, $total_fail failed, $total_skip skipped"
exit $status
