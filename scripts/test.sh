#!/bin/bash
# Installs the dependencies, builds bmapscan twice (normal, and with the
# address and undefined-behaviour sanitizers), both with warnings as errors,
# and runs the whole test suite in each. The README's test command and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh

total_ok=0 total_fail=0 total_skip=0 status=0
run_suite() {
        local dir=$1 suite=""
        shift
        # A trailing "--suite NAME" selects what to run; the rest goes to meson setup.
        if [ $# -ge 2 ] && [ "${*: -2:1}" = --suite ]; then
                suite="--suite ${*: -1}"
                set -- "${@:1:$#-2}"
        fi
        echo "=== building in $dir ($*)"
        if [ -d "$dir" ]; then
                meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
        else
                meson setup "$dir" -Dwerror=true "$@" >/dev/null
        fi
        meson compile -C "$dir"
        echo "=== testing in $dir"
        set +e
        meson test -C "$dir" --print-errorlogs --num-processes "$(nproc)" $suite | tee "$dir/test-output.txt"
        local rc=${PIPESTATUS[0]}
        set -e
        [ "$rc" = 0 ] || status=1
        local ok fail skip
        ok=$(awk '/^Ok:/ {print $2}' "$dir/test-output.txt")
        fail=$(awk '/^Fail:/ {print $2}' "$dir/test-output.txt")
        skip=$(awk '/^Skipped:/ {print $2}' "$dir/test-output.txt")
        to=$(awk '/^Timeout:/ {print $2}' "$dir/test-output.txt")
        total_ok=$((total_ok + ${ok:-0}))
        total_fail=$((total_fail + ${fail:-0} + ${to:-0}))
        total_skip=$((total_skip + ${skip:-0}))
}

run_suite build
run_suite build-sanitize -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
# The fuzzers, each for a short bounded time (FUZZ_SECONDS, default 20).
if command -v clang >/dev/null; then
        CC=clang run_suite build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
                --suite fuzz
fi

echo "tests: $total_ok passed, $total_fail failed, $total_skip skipped"
exit $status
