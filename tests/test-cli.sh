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

for c in scan sparse copy verify create info; do
        run_cmd "$BMAPSCAN" "$c" --help
        expect "$c --help" 0
        grep -q "^Usage: bmapscan $c" "$WORK/out" && pass "$c --help on stdout" || fail "$c --help: $(cat "$WORK/out")"
        # Generated from the tables: the global rows in every command's
        # help, and nothing past 80 columns.
        grep -q -- "-q, --quiet" "$WORK/out" && grep -q -- "-v, --verbose" "$WORK/out" &&
                pass "$c --help lists -q and -v" || fail "$c --help lacks -q or -v"
        awk 'length > 80 { bad = 1 } END { exit bad }' "$WORK/out" && pass "$c --help fits 80 columns" ||
                fail "$c --help: $(awk 'length > 80' "$WORK/out" | head -2)"
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
check_usage "global flag given a value" "option '--version' takes no value" --version=1 scan
check_usage "command flag given a value" "option '--json' takes no value" info --json=1 x
check_usage "unknown short option before the command" "unknown option '-Z'" -Z scan x
check_usage "missing value of a long option" "option '--block-size' needs a value" scan x --block-size
# An unknown short option in a cluster after a long option is named, not
# the long option before it; an unknown long option with a value is unknown.
check_usage "unknown short option after a long one" "unknown option '-Z'" info --json -Zq x
check_usage "unknown short option after a long one with a value" "unknown option '-Z'" info --map=0:1M -Zq x
check_usage "unknown long option with a value" "unknown option '--frob' (" info --frob=1 x
check_usage "short flag given a value in its long form" "option '--quiet' takes no value" info --quiet=1 x

# A usage error quotes what was typed as every message shows names: one
# line, no control character reaching the terminal, no password.
check_usage "a newline in an argument" "--map 'a?b' is not START:LENGTH" scan --map $'a\nb' x
check_usage "an escape sequence in a command name" "unknown command 'fr?[31mob'" $'fr\e[31mob'
! grep -q $'\e' "$WORK/err" && pass "usage error: no escape byte on stderr" || fail "usage error: an escape byte reached stderr"
check_usage "a password in a usage error" "not 'https://u:***@h/x'" copy --http-timeout https://u:pw@h/x x y
! grep -q "pw@" "$WORK/err" && pass "usage error: no password" || fail "usage error: the password shown: $(cat "$WORK/err")"

# Global options before and after the command.
printf 'x%.0s' $(seq 1 5000) >"$WORK/img"
run_cmd "$BMAPSCAN" -q create "$WORK/img"
expect "-q before the command silences the warning" 0
[ ! -s "$WORK/err" ] && pass "-q: nothing on stderr" || fail "-q: stderr: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" create "$WORK/img" --quiet
[ ! -s "$WORK/err" ] && pass "--quiet after the command" || fail "--quiet after: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" create -v "$WORK/img"
grep -q "found with" "$WORK/err" && pass "-v says how holes were found" || fail "-v: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" --verbose create "$WORK/img"
grep -q "found with" "$WORK/err" && pass "--verbose before the command" || fail "--verbose before: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" -q scan --version
expect "--version after the command" 0
grep -qE '^bmapscan [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/out" && pass "scan --version" || fail "scan --version: $(cat "$WORK/out")"

# verify catches SIGINT only while it fetches, then gives it back as it
# was: started with SIGINT ignored (a script's background job), it must
# still ignore it while it reads DEST back, not die of it. DEST is a FIFO,
# so verify waits in its open there (past its fetching) until a writer
# comes: its signal state is read while it waits, since once a writer
# comes it fails at once (a FIFO cannot be read at offsets) and exits.
run_cmd "$BMAPSCAN" -q create -o "$WORK/img.bmap" "$WORK/img"
mkfifo "$WORK/dest.fifo"
(trap '' INT; exec "$BMAPSCAN" -q verify --bmap "$WORK/img.bmap" "$WORK/img" "$WORK/dest.fifo") >/dev/null 2>&1 &
pid=$!
state=$(python3 - "$WORK/dest.fifo" "$pid" <<'PY'
import os, sys, time
fifo, pid = sys.argv[1], sys.argv[2]

def read(name):
    try:
        with open("/proc/%s/%s" % (pid, name)) as f:
            return f.read()
    except OSError:
        return ""

def in_fifo_open():
    # The kernel names where a FIFO's open waits for its partner; without
    # wchan (0), a sleeping openat that stays there.
    w = read("wchan")
    if w in ("wait_for_partner", "fifo_open"):
        return True
    return w == "0" and read("syscall").startswith("257 ") and "\nState:\tS" in read("status")

for _ in range(600):
    if in_fifo_open():
        break
    time.sleep(0.1)
else:
    print("never waiting in the open of DEST")
    sys.exit()
ign = next(int(l.split()[1], 16) for l in read("status").splitlines() if l.startswith("SigIgn:"))
print("ignored" if ign & (1 << 1) else "not ignored")
# Let it go on (and fail on the FIFO).
os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
PY
) || true
wait "$pid" || true
[ "$state" = ignored ] && pass "verify reading DEST back: SIGINT ignored as it was at the start" ||
        fail "verify reading DEST back: SIGINT $state (it was ignored at the start)"

# Operational failures: exit 1, one line naming the file.
run_cmd "$BMAPSCAN" create "$WORK/missing.img"
expect "missing image" 1 "$WORK/missing.img"
one_line "missing image"
run_cmd "$BMAPSCAN" info "$WORK/missing.bmap"
expect "missing bmap" 1 "$WORK/missing.bmap"
one_line "missing bmap"

# -o onto something that is not a regular file is written into, never
# replaced by a renamed temporary file. A private /dev/null (char 1,3) where
# mknod works: a regression must not break the machine's.
null=/dev/null
if mknod "$WORK/null" c 1 3 2>/dev/null; then null=$WORK/null; fi
for c in scan create; do
        run_cmd "$BMAPSCAN" -q "$c" --no-checksum -o "$null" "$WORK/img"
        expect "$c -o $null" 0
        if [ -c "$null" ] && [ "$(stat -c %t,%T "$null")" = 1,3 ]; then
                pass "$c -o $null: still the character device 1,3"
        else
                fail "$c -o $null: now $(stat -c %F "$null" 2>&1)"
        fi
done
# A block device node is refused, not written over (a node of our own, for
# loop 7,0: nothing is opened).
if mknod "$WORK/blk" b 7 0 2>/dev/null; then
        run_cmd "$BMAPSCAN" create --no-checksum -o "$WORK/blk" "$WORK/img"
        expect "create -o a block device" 1 "is a block device"
        one_line "create -o a block device"
        [ -b "$WORK/blk" ] && pass "create -o a block device: still a block device" || fail "create -o: $WORK/blk replaced"
fi
# A FIFO with a reader gets the bmap, and stays a FIFO.
mkfifo "$WORK/out.fifo"
for c in scan create; do
        timeout 60 cat "$WORK/out.fifo" >"$WORK/fifo.got" &
        reader=$!
        run_cmd timeout 60 "$BMAPSCAN" -q "$c" -o "$WORK/out.fifo" "$WORK/img"
        wait "$reader" || true
        expect "$c -o FIFO" 0
        grep -q "</bmap>" "$WORK/fifo.got" && pass "$c -o FIFO: the reader got the whole bmap" ||
                fail "$c -o FIFO: the reader got: $(head -c 200 "$WORK/fifo.got")"
        [ -p "$WORK/out.fifo" ] && pass "$c -o FIFO: still a FIFO" || fail "$c -o FIFO: now $(stat -c %F "$WORK/out.fifo")"
done
# /dev/fd/1 (like /dev/stdout, a link through /proc to our stdout, here a
# file): written into, the link left alone.
run_cmd "$BMAPSCAN" -q scan --no-checksum -o /dev/fd/1 "$WORK/img"
expect "scan -o /dev/fd/1" 0
grep -q "</bmap>" "$WORK/out" && pass "scan -o /dev/fd/1: the bmap reached stdout" || fail "scan -o /dev/fd/1: stdout: $(head -c 200 "$WORK/out")"
[ -L /dev/fd ] && [ -L /dev/stdout ] && pass "/dev/fd and /dev/stdout are still links" || fail "/dev/fd or /dev/stdout replaced"

# copy onto a symlink replaces the file it points to and keeps the link;
# onto /dev/fd/1 (stdout, a file here) it never touches the link itself.
echo old >"$WORK/copied.img"
ln -s copied.img "$WORK/copy-link"
run_cmd "$BMAPSCAN" -q copy --nobmap "$WORK/img" "$WORK/copy-link"
expect "copy onto a symlink" 0
[ -L "$WORK/copy-link" ] && cmp -s "$WORK/img" "$WORK/copied.img" && pass "copy onto a symlink: the link kept, its file written" ||
        fail "copy onto a symlink: $(ls -l "$WORK/copy-link" "$WORK/copied.img" 2>&1)"
run_cmd "$BMAPSCAN" -q copy --nobmap "$WORK/img" /dev/fd/1
expect "copy onto /dev/fd/1" 0
cmp -s "$WORK/img" "$WORK/out" && pass "copy onto /dev/fd/1: the image reached the file" || fail "copy onto /dev/fd/1: $(ls -l "$WORK/out")"
[ -L /dev/fd ] && [ -L /dev/stdout ] && pass "/dev/fd and /dev/stdout are still links" || fail "/dev/fd or /dev/stdout replaced"

# Images that cannot be scanned: a FIFO no one writes to (open must not
# wait for a writer: timeout catches a hang, the assertion is the message),
# and a /proc file whose size says 0.
mkfifo "$WORK/in.fifo"
for c in scan info sparse create; do
        run_cmd timeout 60 "$BMAPSCAN" "$c" "$WORK/in.fifo"
        expect "$c of a FIFO with no writer" 1 "(a FIFO)"
        one_line "$c of a FIFO"
        grep -qF "$WORK/in.fifo" "$WORK/err" && pass "$c of a FIFO: names it" || fail "$c of a FIFO: $(cat "$WORK/err")"
        if [ "$c" != create ]; then
                grep -q "$c needs to seek; save it to a file first" "$WORK/err" && pass "$c of a FIFO: says why and what to do" ||
                        fail "$c of a FIFO: $(cat "$WORK/err")"
        fi
done
run_cmd "$BMAPSCAN" info --json "$WORK/in.fifo"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["valid"] and "FIFO" in d["error"], d' "$WORK/out" &&
        pass "info --json of a FIFO: the error in the JSON" || fail "info --json of a FIFO: $(head -c 300 "$WORK/out")"
if [ -r /proc/version ]; then
        for c in scan info create; do
                run_cmd "$BMAPSCAN" "$c" /proc/version
                expect "$c /proc/version" 1 "has no fixed size (a /proc or /sys file?)"
                one_line "$c /proc/version"
        done
fi

finish
