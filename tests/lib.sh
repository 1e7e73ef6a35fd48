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

# wait_until CMD...: runs CMD every tenth of a second until it succeeds.
# Status 1 when it never does within about 60 s, or at once when CMD says
# it never will (status 2): a test waits for a condition, never for a time.
wait_until() {
        local i rc
        for ((i = 0; i < 600; i++)); do
                rc=0
                "$@" || rc=$?
                [ $rc = 0 ] && return 0
                [ $rc = 2 ] && return 1
                sleep 0.1
        done
        return 1
}

# gone PID: the process has ended.
gone() { ! kill -0 "$1" 2>/dev/null; }

# server_ready PORT_FILE PID: the server wrote its port (2: it died first).
server_ready() {
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 2
        return 1
}

# wait_for_fd PID PATTERN: waits until process PID has a file open whose
# /proc/PID/fd link matches the glob PATTERN, and prints that fd's /proc
# path. Status 1 when PID ends first, or after about 60 s.
wait_for_fd() { wait_until fd_open "$@"; }
# fd_open PID PATTERN: prints the /proc path of PID's descriptor whose link
# matches the glob PATTERN; status 2 when PID has ended.
fd_open() {
        local pid=$1 pattern=$2 f l state
        for f in /proc/"$pid"/fd/*; do
                l=$(readlink "$f" 2>/dev/null) || continue
                # shellcheck disable=SC2053 # PATTERN is a glob
                if [[ $l == $pattern ]]; then
                        echo "$f"
                        return 0
                fi
        done
        state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 2
        [[ $state == Z* ]] && return 2
        return 1
}

# start_fed CMD...: runs CMD in the background, its standard input a FIFO
# this shell writes to through fd 9 (feed it with >&9, close it with
# end_fed), and sets FED_PID: a test holds the command mid-way as long as
# it needs to, with no race against its speed.
start_fed() {
        rm -f "$WORK/feed"
        mkfifo "$WORK/feed"
        "$@" <"$WORK/feed" &
        FED_PID=$!
        exec 9>"$WORK/feed"
}
end_fed() {
        exec 9>&-
}
