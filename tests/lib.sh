# Shared helpers for the shell tests: a scratch directory removed on exit,
# and checks that count and say what differed.
set -euo pipefail

: "${BMAPSCAN:?BMAPSCAN must point at the bmapscan binary}"
TEST_NAME=$(basename "$0" .sh)
mkdir -p "${TEST_TMPDIR:-/tmp}"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/$TEST_NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# run_cmd: runs a command, keeping its status, stdout and stderr in
# $RC, $WORK/out and $WORK/err.
run_cmd() {
        set +e
        "$@" >"$WORK/out" 2>"$WORK/err"
        RC=$?
        set -e
}

# expect NAME STATUS [STDERR-SUBSTRING]: checks the last run_cmd.
expect() {
        local name=$1 status=$2 text=${3:-}
        if [ "$RC" != "$status" ]; then
                fail "$name: exit status $RC, expected $status; stderr: $(head -c 400 "$WORK/err")"
                return
        fi
        if [ -n "$text" ] && ! grep -qF -- "$text" "$WORK/err"; then
                fail "$name: stderr does not say '$text': $(head -c 400 "$WORK/err")"
                return
        fi
        pass "$name"
}

# one_line NAME: stderr of the last run is exactly one line.
one_line() {
        local n
        n=$(wc -l <"$WORK/err")
        if [ "$n" = 1 ]; then pass "$1: one line on stderr"; else fail "$1: $n lines on stderr: $(cat "$WORK/err")"; fi
}

finish() {
        echo "$TEST_NAME: $PASSED passed, $FAILED failed"
        [ "$FAILED" = 0 ]
}
