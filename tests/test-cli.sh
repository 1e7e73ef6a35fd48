#!/bin/bash
# The command line: help, version, global options before and after the
# command, and usage errors as one line with exit status 2.
. "$(dirname "$0")/lib.sh"

run_cmd "$BMAPSCAN" --help
expect "--help exits 0" 0
grep -q "^Usage: bmapscan" "$WORK/out" && pass "--help on stdout" || fail "--help not on stdout"
[ ! -s "$WORK/err" ] && pass "--help writes nothing on stderr" || fail "--help wrote on stderr"
for c in scan sparse create info; do
        grep -q "^  $c " "$WORK/out" && pass "--help lists $c" || fail "--help does not list $c"
done

run_cmd "$BMAPSCAN" --version
expect "--version" 0
grep -qE '^bmapscan [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/out" && pass "--version format" || fail "--version: $(cat "$WORK/out")"

for c in scan sparse create info; do
        run_cmd "$BMAPSCAN" "$c" --help
        expect "$c --help" 0
        grep -q "^Usage: bmapscan $c" "$WORK/out" && pass "$c --help on stdout" || fail "$c --help: $(cat "$WORK/out")"
done

# Usage errors: exit 2, one line, naming the problem.
check_usage() {
        local name=$1 text=$2
        shift 2
        run_cmd "$BMAPSCAN" "$@"
        expect "$name" 2 "$text"
        one_line "$name"
}
check_usage "no command" "no command" 
check_usage "unknown command" "unknown command 'frobnicate'" frobnicate
check_usage "unknown global option" "unknown option '--frob'" --frob create
check_usage "unknown command option" "unknown option '--frob'" create --frob x
check_usage "unknown short option" "unknown option '-Z'" create -Z x
check_usage "missing value" "needs a value" create x -o
check_usage "create without image" "no IMAGE" create
check_usage "create with two images" "only one IMAGE" create a b
check_usage "info without argument" "no IMAGE or BMAP" info
check_usage "scan without image" "no IMAGE" scan
check_usage "sparse without image" "no IMAGE" sparse
check_usage "bad block size" "power of two" scan --block-size 1000 x
check_usage "block size too small" "power of two" scan --block-size 256 x

# Global options before and after the command.
printf 'x%.0s' $(seq 1 5000) >"$WORK/img"
run_cmd "$BMAPSCAN" -q create "$WORK/img"
expect "-q before the command silences the warning" 0
[ ! -s "$WORK/err" ] && pass "-q: nothing on stderr" || fail "-q: stderr: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" create "$WORK/img" --quiet
[ ! -s "$WORK/err" ] && pass "--quiet after the command" || fail "--quiet after: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" create -v "$WORK/img"
grep -q "found with" "$WORK/err" && pass "-v says how holes were found" || fail "-v: $(cat "$WORK/err")"

# Operational failures: exit 1, one line naming the file.
run_cmd "$BMAPSCAN" create "$WORK/missing.img"
expect "missing image" 1 "$WORK/missing.img"
one_line "missing image"
run_cmd "$BMAPSCAN" info "$WORK/missing.bmap"
expect "missing bmap" 1 "$WORK/missing.bmap"
one_line "missing bmap"

finish
