#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# copy --skip-identical, --retries and --progress=json.
#   skip-identical onto a loop device holding the same image writes nothing
#   (the device's own write counter in /sys/block/loopN/stat), onto an older
#   version exactly the 1 MiB pieces that changed, onto garbage everything;
#   the result is a normal copy's in every case, several targets at once
#   too, and an existing file is updated in place.
#   retries: an LD_PRELOAD shim (tests/faulty-io.c) fails the first writes
#   or corrupts the first reads of one spot: one retry mends it; after N the
#   copy fails naming the range, and a file target is left as it was; on a
#   loop device the write error comes from the O_DIRECT descriptor's pwrite
#   and is retried without --verify-after.
#   --progress=json: every line parses, start first, one end per target last,
#   the bytes add up to the mapped bytes; retries, mismatches and a failed
#   target are reported as such; also to a descriptor and a FIFO.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

MiB=$((1 << 20))
# The image: 24 MiB, sparse, with data in pieces of various sizes; its bmap
# from 'create' (holes unmapped).
python3 - "$WORK/v1.img" <<'PY'
import os, random, sys
random.seed(15)
with open(sys.argv[1], "wb") as f:
    f.truncate(24 << 20)
    for start, length in [(0, 64 << 10), (1 << 20, 5 << 20), (8 << 20, 3 << 20 | 12 << 10), (13 << 20, 8 << 10),
                          (16 << 20, 6 << 20)]:
        f.seek(start)
        f.write(random.randbytes(length))
PY
"$BMAPSCAN" create -o "$WORK/v1.bmap" "$WORK/v1.img"
# v2: three spots changed, in three different pieces of two ranges.
cp --sparse=always "$WORK/v1.img" "$WORK/v2.img"
for at in $((2 * MiB + 100)) $((4 * MiB + 4096)) $((17 * MiB + 777)); do
        printf 'CHANGED' | dd of="$WORK/v2.img" bs=1 seek=$at conv=notrunc status=none
done
"$BMAPSCAN" create -o "$WORK/v2.bmap" "$WORK/v2.img"

# mapped_bytes BMAP; changed_bytes BMAP OLD NEW: the bytes of the 1 MiB
# pieces of the ranges (from each range's start) where OLD and NEW differ.
cat >"$WORK/pieces.py" <<'PY'
import re, sys
def ranges(bmap):
    t = open(bmap).read()
    bs = int(re.search(r"<BlockSize>\s*(\d+)", t).group(1))
    size = int(re.search(r"<ImageSize>\s*(\d+)", t).group(1))
    for m in re.finditer(r"<Range[^>]*>\s*([\d-]+)\s*</Range>", t):
        a, _, b = m.group(1).partition("-")
        yield int(a) * bs, min((int(b or a) + 1) * bs, size)
if sys.argv[1] == "mapped":
    print(sum(e - s for s, e in ranges(sys.argv[2])))
else:
    old, new = open(sys.argv[3], "rb").read(), open(sys.argv[4], "rb").read()
    n = 0
    for s, e in ranges(sys.argv[2]):
        for p in range(s, e, 1 << 20):
            q = min(p + (1 << 20), e)
            if old[p:q] != new[p:q]:
                n += q - p
    print(n)
PY
mapped=$(python3 "$WORK/pieces.py" mapped "$WORK/v1.bmap")
changed=$(python3 "$WORK/pieces.py" changed "$WORK/v2.bmap" "$WORK/v1.img" "$WORK/v2.img")
[ "$changed" = $((3 * MiB)) ] || fail "the test's own v2 changes 3 pieces, not $changed bytes"

# written_sectors DEV: field 7 of /sys/block/loopN/stat.
written_sectors() { awk '{ print $7 }' "/sys/block/$(basename "$1")/stat"; }

# --- --progress=json (no loop device needed) ---------------------------------------
# check_json FILE NTARGETS: every line parses, start first, one end per target
# last, and each end's written + skipped (copy) or checked (verify: nothing
# written) is the start's mapped bytes when ok.
cat >"$WORK/checkjson.py" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
n = int(sys.argv[2])
ev = [json.loads(l) for l in lines]
assert ev and ev[0]["event"] == "start", "the first line is not start"
assert all(e["event"] in ("progress", "retry", "mismatch") for e in ev[1:-n]), "end or start in the middle"
ends = ev[-n:]
assert all(e["event"] == "end" for e in ends), "the last lines are not one end per target"
assert sorted(e["target"] for e in ends) == sorted(ev[0]["targets"]), "ends do not name each target once"
for e in ends:
    if "checked" in e:
        assert "written" not in e and "skipped" not in e, "verify's end says written: %r" % e
    if e["status"] == "ok" and "checked" in e:
        assert e["checked"] == e["bytes"] == ev[0]["mapped_bytes"], "checked does not add up: %r" % e
    elif e["status"] == "ok":
        assert e["written"] + e["skipped"] == e["bytes"] == ev[0]["mapped_bytes"], "bytes do not add up: %r" % e
    else:
        assert e["status"] == "failed" and e["error"], "a failed end without its error: %r" % e
for name in sys.argv[3:]:
    k, _, v = name.partition("=")
    found = [e for e in ev if e["event"] == k and (not v or v in json.dumps(e))]
    assert found, "no %s event%s" % (k, " with " + v if v else "")
print("%d lines" % len(ev))
PY
check_json() {
        local name=$1
        shift
        if out=$(python3 "$WORK/checkjson.py" "$@" 2>&1); then pass "$name: JSON well-formed ($out)"
        else fail "$name: $out: $(head -c 600 "$1")"; fi
}

run_cmd "$BMAPSCAN" copy --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/j1.img" "$WORK/j2.img"
expect "json: copy to two files" 0
cp "$WORK/out" "$WORK/j.json"
check_json "json: stdout, two targets" "$WORK/j.json" 2 end=ok
cmp -s "$WORK/j1.img" "$WORK/v1.img" && pass "json: the copy is the image" || fail "json: j1.img differs"

run_cmd "$BMAPSCAN" copy --progress=json --progress-fd 7 --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/j1.img" \
        7>"$WORK/fd.json"
expect "json: --progress-fd" 0
[ ! -s "$WORK/out" ] && pass "json: --progress-fd leaves stdout empty" || fail "json: stdout: $(head -c 200 "$WORK/out")"
check_json "json: --progress-fd" "$WORK/fd.json" 1

mkfifo "$WORK/fifo"
cat "$WORK/fifo" >"$WORK/fifo.json" &
reader=$!
run_cmd "$BMAPSCAN" copy --progress=json --progress-file "$WORK/fifo" --bmap "$WORK/v1.bmap" "$WORK/v1.img" \
        "$WORK/j1.img"
wait "$reader"
expect "json: --progress-file FIFO" 0
check_json "json: FIFO" "$WORK/fifo.json" 1

# A JSON reader that stalls (its FIFO full) holds the copy up; SIGTERM then
# ends it, its lines dropped: the end lines waited for the reader forever.
mkfifo "$WORK/stall"
exec {stall}<>"$WORK/stall"
python3 -c '
import fcntl, os, sys
fd = int(sys.argv[1])
fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
try:
    while True:
        os.write(fd, b" " * 4096)
except BlockingIOError:
    pass' "$stall"
"$BMAPSCAN" copy --progress=json --progress-file "$WORK/stall" --bmap "$WORK/v1.bmap" "$WORK/v1.img" \
        "$WORK/j3.img" 2>"$WORK/stall.err" &
copier=$!
# Its SIGTERM handler is set (SigCgt): from then on a SIGTERM is a clean stop,
# whose lines go to the full FIFO, wherever it is. bmapscan's, once it runs:
# the forked shell before its exec catches SIGTERM too (it then dies of it).
catching() {
        gone "$copier" && return 2
        local m
        [ "$(cat "/proc/$copier/comm" 2>/dev/null)" = bmapscan ] || return 1
        m=$(awk '/^SigCgt:/ { print $2 }' "/proc/$copier/status" 2>/dev/null) || return 1
        [ -n "$m" ] && (((0x$m >> 14) & 1))
}
if wait_until catching; then
        kill -TERM "$copier"
        if wait_until gone "$copier"; then
                rc=0; wait "$copier" || rc=$?
                [ "$rc" = 1 ] && grep -q "interrupted by SIGTERM" "$WORK/stall.err" \
                        && pass "json: a stalled reader, SIGTERM: the copy ends" \
                        || fail "json: stalled reader: exit $rc: $(head -c 300 "$WORK/stall.err")"
        else
                fail "json: a stalled reader: the copy hangs after SIGTERM"
                kill -KILL "$copier"; wait "$copier" || true
        fi
else
        fail "json: the copy never caught SIGTERM: $(head -c 300 "$WORK/stall.err")"
        kill -KILL "$copier" 2>/dev/null; wait "$copier" || true
fi
exec {stall}<&-
[ ! -e "$WORK/j3.img" ] && pass "json: the interrupted copy left no file" || fail "json: j3.img exists"

# Periodic progress: the image comes from a pipe that holds back its second
# half until a progress line has been written.
has_progress() { grep -q '"event":"progress"' "$WORK/p.json" 2>/dev/null; }
run_cmd "$BMAPSCAN" copy --progress=json --progress-file "$WORK/p.json" --bmap "$WORK/v1.bmap" - "$WORK/j1.img" \
        < <(head -c $((12 * MiB)) "$WORK/v1.img"; wait_until has_progress || true; tail -c +$((12 * MiB + 1)) "$WORK/v1.img")
expect "json: a copy from a stalling pipe" 0
check_json "json: periodic progress" "$WORK/p.json" 1 progress end=ok
cmp -s "$WORK/j1.img" "$WORK/v1.img" && pass "json: the stalled copy is the image" || fail "json: j1.img differs"

run_cmd "$BMAPSCAN" copy --progress=json --progress-fd 7 --progress-file "$WORK/x" --bmap "$WORK/v1.bmap" \
        "$WORK/v1.img" "$WORK/j1.img" 7>/dev/null
expect "json: --progress-fd and --progress-file exclude each other" 2 "exclude each other"

# A mismatch, from verify: one byte of a mapped range changed in the copy.
cp "$WORK/v1.img" "$WORK/bad.img"
printf 'X' | dd of="$WORK/bad.img" bs=1 seek=$((9 * MiB)) conv=notrunc status=none
run_cmd "$BMAPSCAN" verify --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/bad.img"
expect "json: verify finds the bad range" 1 "do not match"
check_json "json: verify's mismatch" "$WORK/out" 1 mismatch end=failed
python3 - "$WORK/out" "$mapped" <<'PY' && pass "json: verify's failed end: every range checked" || fail "json: $(tail -n1 "$WORK/out")"
import json, sys
e = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert e["checked"] == e["bytes"] == int(sys.argv[2]), e
PY
grep -q '^{' "$WORK/err" && fail "json: JSON on stderr" || pass "json: the bad range's text line is on stderr"
grep -qF "bad range" "$WORK/err" && pass "json: the bad range said on stderr" || fail "json: no bad range line"
run_cmd "$BMAPSCAN" verify --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/j1.img"
expect "json: verify of a good copy" 0
check_json "json: verify's end, ok" "$WORK/out" 1 end=ok "end=\"checked\": $mapped"

# verify of an Android sparse image with no bmap (its chunks are the map):
# JSON too, and its bad ranges off stdout (they were printed there, between
# no start and no end).
if command -v img2simg >/dev/null; then
        mkdir "$WORK/simg"
        img2simg "$WORK/v1.img" "$WORK/simg/v1.simg"
        run_cmd "$BMAPSCAN" verify --progress=json "$WORK/simg/v1.simg" "$WORK/v1.img"
        expect "json: verify of a sparse image" 0
        python3 - "$WORK/out" <<'PY2' && pass "json: verify of a sparse image: start, end ok" || fail "json: $(head -c 400 "$WORK/out")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert ev[0]["event"] == "start" and ev[-1]["event"] == "end" and ev[-1]["status"] == "ok", ev
assert ev[-1]["bytes"] == ev[-1]["checked"] > 0 and "written" not in ev[-1], ev
PY2
        run_cmd "$BMAPSCAN" verify --progress=json "$WORK/simg/v1.simg" "$WORK/bad.img"
        expect "json: verify of a sparse image finds the bad range" 1 "differ from"
        check_json "json: verify of a sparse image, a bad range" "$WORK/out" 1 end=failed
        grep -qF "bad range" "$WORK/err" && pass "json: the sparse image's bad range said on stderr" \
                || fail "json: no bad range line on stderr"
else
        echo "skip json: verify of a sparse image (no img2simg)"
fi

# --- --progress=json for failures before the copy ----------------------------------------
# Every way a copy (or verify) can fail before its first byte: the JSON
# still has its "start" (with what was known) and then one failed "end" per
# DEST, each carrying the error line said on stderr; nothing else.
cat >"$WORK/checkfail.py" <<'PY'
import json, sys
out, err, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ev = [json.loads(l) for l in open(out).read().splitlines()]
lines = open(err).read().splitlines()
assert len(ev) == 1 + n, "%d lines, not start and %d ends" % (len(ev), n)
assert ev[0]["event"] == "start" and len(ev[0]["targets"]) == n, "no start first, naming %d targets" % n
ends = ev[1:]
assert [e["target"] for e in ends] == ev[0]["targets"], "the ends do not name each target once"
for e in ends:
    assert e["event"] == "end" and e["status"] == "failed" and e["bytes"] == 0, "not a failed end: %r" % e
    msg = e["error"]
    # The same line as on stderr: "bmapscan: MSG", or a usage error's
    # "bmapscan CMD: MSG (see 'bmapscan CMD --help')".
    assert msg and any(l == "bmapscan: " + msg or (l.startswith("bmapscan ") and (": " + msg + " (see ") in l)
                       for l in lines), "the end's error %r is not the line on stderr %r" % (msg, lines)
print(ev[1]["error"])
PY
# fails_before NAME STATUS NTARGETS CMD...: runs a copy or verify that must
# fail before writing (or reading) anything, with --progress=json.
fails_before() {
        local name=$1 status=$2 n=$3 out
        shift 3
        run_cmd "$@"
        expect "json before the copy: $name" "$status"
        if out=$(python3 "$WORK/checkfail.py" "$WORK/out" "$WORK/err" "$n" 2>&1); then
                pass "json before the copy: $name: start, $n failed ends ($out)"
        else
                fail "json before the copy: $name: $out: $(head -c 600 "$WORK/out")"
        fi
}
copyj() { "$BMAPSCAN" copy --progress=json "$@"; }
mkdir "$WORK/pre"
fails_before "no such bmap" 1 2 copyj --bmap "$WORK/none.bmap" "$WORK/v1.img" "$WORK/pre/a.img" "$WORK/pre/b.img"
fails_before "no such image" 1 1 copyj --bmap "$WORK/v1.bmap" "$WORK/none.img" "$WORK/pre/a.img"
echo "not a bmap" >"$WORK/pre/junk.bmap"
fails_before "a bmap that is not one" 1 1 copyj --bmap "$WORK/pre/junk.bmap" "$WORK/v1.img" "$WORK/pre/a.img"
head -c 1M "$WORK/v1.img" >"$WORK/small.img"
"$BMAPSCAN" create -o "$WORK/small.bmap" "$WORK/small.img"
fails_before "a bmap of another image" 1 1 copyj --bmap "$WORK/small.bmap" "$WORK/v1.img" "$WORK/pre/a.img"
fails_before "a DEST under /dev that is not there" 1 2 \
        copyj --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/pre/a.img" /dev/bmapscan-none
mkfifo "$WORK/pre/fifo"
fails_before "a FIFO as DEST" 1 1 copyj --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/pre/fifo"
fails_before "the same DEST twice" 2 2 copyj --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/pre/a.img" "$WORK/pre/a.img"
fails_before "DEST is the image" 1 1 copyj --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/v1.img"
fails_before "DEST in a directory that is not there" 1 2 \
        copyj --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/pre/a.img" "$WORK/pre/none/b.img"
fails_before "--bmap with --nobmap" 2 1 copyj --nobmap --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/pre/a.img"
fails_before "--scan of standard input" 2 1 copyj --scan - "$WORK/pre/a.img" <"$WORK/v1.img"
fails_before "--scan-bmap without --scan" 2 1 \
        copyj --scan-bmap "$WORK/pre/s.bmap" --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/pre/a.img"
[ -z "$(ls -A "$WORK/pre" | grep -v -e '^junk.bmap$' -e '^fifo$')" ] && pass "json before the copy: nothing written" \
        || fail "json before the copy: $WORK/pre holds $(ls -A "$WORK/pre")"
# To a FIFO too (the reader is waited for before anything else happens).
cat "$WORK/fifo" >"$WORK/prefifo.json" &
reader=$!
run_cmd "$BMAPSCAN" copy --progress=json --progress-file "$WORK/fifo" --bmap "$WORK/none.bmap" "$WORK/v1.img" \
        "$WORK/pre/a.img"
wait "$reader"
python3 "$WORK/checkfail.py" "$WORK/prefifo.json" "$WORK/err" 1 >/dev/null 2>&1 \
        && pass "json before the copy: to a FIFO" || fail "json before the copy: FIFO: $(head -c 400 "$WORK/prefifo.json")"
verifyj() { "$BMAPSCAN" verify --progress=json "$@"; }
fails_before "verify: no such bmap" 1 1 verifyj --bmap "$WORK/none.bmap" "$WORK/v1.img" "$WORK/j1.img"
fails_before "verify: no such image (nor its bmap)" 1 1 verifyj "$WORK/none.img" "$WORK/j1.img"
fails_before "verify: no such DEST" 1 1 verifyj --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/none.img"

# --- retries with the faulty-io shim (file targets) --------------------------------------
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
spot=$((9 * MiB + 1234))        # in the range 8-11 MiB
faulty() { env LD_PRELOAD="$FAULTY_IO" FAULTY_MATCH="$WORK/r" FAULTY_OFFSET=$spot "$@"; }

mkdir "$WORK/r"
run_cmd faulty FAULTY_WRITE_EIO=1 "$BMAPSCAN" copy --retries 2 --progress=json --bmap "$WORK/v1.bmap" \
        "$WORK/v1.img" "$WORK/r/a.img"
expect "retries: a write error, then success" 0 "writing it again, attempt 1 of 2"
grep -qF "1 range written again" "$WORK/err" && pass "retries: the end line counts the range" \
        || fail "retries: end line: $(tail -n 2 "$WORK/err")"
check_json "retries: JSON retry event" "$WORK/out" 1 "retry=write error" end=ok
cmp -s "$WORK/r/a.img" "$WORK/v1.img" && pass "retries: the file is the image" || fail "retries: a.img differs"

cp "$WORK/bad.img" "$WORK/r/old.img"
run_cmd faulty FAULTY_WRITE_EIO=3 "$BMAPSCAN" copy --retries 2 --progress=json --bmap "$WORK/v1.bmap" \
        "$WORK/v1.img" "$WORK/r/old.img"
expect "retries: still failing after 2 retries" 1 "still after 2 retries"
grep -qF "range 2048-2818 (bytes 8388608-11546623)" "$WORK/err" && pass "retries: the failing range named" \
        || fail "retries: range not named: $(grep -v '^bmapscan: warning' "$WORK/err" | head -c 400)"
check_json "retries: JSON failed end" "$WORK/out" 1 end=failed
cmp -s "$WORK/r/old.img" "$WORK/bad.img" && pass "retries: the failed copy left the file as it was" \
        || fail "retries: old.img changed"

run_cmd faulty FAULTY_READ_CORRUPT=1 "$BMAPSCAN" copy --retries 1 --verify-after --bmap "$WORK/v1.bmap" \
        "$WORK/v1.img" "$WORK/r/b.img"
expect "retries: read back wrong once, written again" 0 "read back wrong: writing them again, attempt 1 of 1"
cmp -s "$WORK/r/b.img" "$WORK/v1.img" && pass "retries: read-back retry gives the image" || fail "retries: b.img differs"

run_cmd faulty FAULTY_READ_CORRUPT=all "$BMAPSCAN" copy --retries 2 --verify-after --bmap "$WORK/v1.bmap" \
        "$WORK/v1.img" "$WORK/r/old.img"
expect "retries: always reading back wrong fails" 1 "read back wrong, still after 2 retries"
grep -qF "attempt 2 of 2" "$WORK/err" && pass "retries: each attempt announced" || fail "retries: attempts not said"
cmp -s "$WORK/r/old.img" "$WORK/bad.img" && pass "retries: file untouched after read-back failure" \
        || fail "retries: old.img changed after read-back failure"

# A buffered write's error comes with the flush, not with the write: the
# pieces written since the last flush are written again (they were not: the
# first failed flush failed the copy, whatever --retries said).
run_cmd faulty FAULTY_SYNC_EIO=1 "$BMAPSCAN" copy --retries 1 --verify-after --progress=json \
        --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$WORK/r/e.img"
expect "retries: a flush that fails once" 0 "writing it again, attempt 1 of 1"
check_json "retries: a failed flush's retry in JSON" "$WORK/out" 1 "retry=write error" end=ok
cmp -s "$WORK/r/e.img" "$WORK/v1.img" && pass "retries: after a failed flush the file is the image" \
        || fail "retries: e.img differs"
run_cmd faulty FAULTY_SYNC_EIO=all "$BMAPSCAN" copy --retries 2 --verify-after --bmap "$WORK/v1.bmap" \
        "$WORK/v1.img" "$WORK/r/old.img"
expect "retries: a flush that always fails" 1 "still after 2 retries"
cmp -s "$WORK/r/old.img" "$WORK/bad.img" && pass "retries: file untouched after failed flushes" \
        || fail "retries: old.img changed after failed flushes"

run_cmd faulty FAULTY_WRITE_EIO=1 "$BMAPSCAN" copy --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" \
        "$WORK/r/c.img" "$WORK/d.img"
expect "json: one target of two fails (no --retries)" 1 "FAILED"
check_json "json: one failed target, one good" "$WORK/out" 2 end=failed end=ok

# --- skip-identical onto files --------------------------------------------------------
cp "$WORK/v1.img" "$WORK/f.img"
ino=$(stat -c %i "$WORK/f.img")
run_cmd "$BMAPSCAN" copy --skip-identical --bmap "$WORK/v2.bmap" "$WORK/v2.img" "$WORK/f.img"
expect "skip-identical: file holding v1 gets v2" 0 "checked, 3.0 MiB written"
cmp -s "$WORK/f.img" "$WORK/v2.img" && pass "skip-identical: the file is v2" || fail "skip-identical: f.img differs"
[ "$(stat -c %i "$WORK/f.img")" = "$ino" ] && pass "skip-identical: the file was updated in place" \
        || fail "skip-identical: the file was replaced"
truncate -s 40M "$WORK/f.img"
run_cmd "$BMAPSCAN" copy --skip-identical --bmap "$WORK/v2.bmap" "$WORK/v2.img" "$WORK/f.img"
expect "skip-identical: a larger file" 0 ", 0 bytes written"
[ "$(stat -c %s "$WORK/f.img")" = $((24 * MiB)) ] && pass "skip-identical: the file was cut to the image's size" \
        || fail "skip-identical: size $(stat -c %s "$WORK/f.img")"

# A failed copy leaves a file it says it did not change as it was: the
# size too (it was cut to the image's size when opened, and then called
# "not changed").
cp --sparse=always "$WORK/v1.img" "$WORK/g.img"
truncate -s 40M "$WORK/g.img"
cp --sparse=always "$WORK/g.img" "$WORK/g.ref"
run_cmd "$BMAPSCAN" copy --skip-identical --bmap "$WORK/v1.bmap" "$WORK/bad.img" "$WORK/g.img"
expect "skip-identical: a damaged image onto a larger file" 1 "the target file was not changed"
cmp -s "$WORK/g.img" "$WORK/g.ref" && pass "skip-identical: the file said unchanged is unchanged" \
        || fail "skip-identical: g.img changed (size $(stat -c %s "$WORK/g.img"))"
# And a file smaller than the image is grown at the end.
head -c $((5 * MiB)) "$WORK/v1.img" >"$WORK/g.img"
run_cmd "$BMAPSCAN" copy --skip-identical --bmap "$WORK/v2.bmap" "$WORK/v2.img" "$WORK/g.img"
expect "skip-identical: a smaller file" 0 "OK"
cmp -s "$WORK/g.img" "$WORK/v2.img" && pass "skip-identical: the smaller file became v2" || fail "skip-identical: g.img differs"

# --- skip-identical onto loop devices -----------------------------------------------------
need_loop
head -c $((32 * MiB)) /dev/urandom >"$WORK/garbage"
for n in a b c; do cp "$WORK/garbage" "$WORK/loop-$n"; done
attach "$WORK/loop-a"; A=$ATTACHED
attach "$WORK/loop-b"; B=$ATTACHED
attach "$WORK/loop-c"; C=$ATTACHED

# expect_written NAME DEV BEFORE BYTES
expect_written() {
        local got=$((($(written_sectors "$2") - $3) * 512))
        if [ "$got" = "$4" ]; then pass "$1: $got bytes written to the device"
        else fail "$1: $got bytes written to the device, expected $4"; fi
}
# same_as_normal NAME DEV REF: the device is byte for byte the normal copy's.
same_as_normal() {
        if cmp -s "$2" "$3"; then pass "$1: the device equals a normal copy"; else fail "$1: $2 differs from $3"; fi
}

run_cmd "$BMAPSCAN" copy --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$A"
expect "loop: normal copy of v1 (the reference)" 0
before=$(written_sectors "$B")
run_cmd "$BMAPSCAN" copy --skip-identical --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$B"
expect "loop: skip-identical onto garbage" 0 "$B: OK"
expect_written "loop: garbage" "$B" "$before" "$mapped"
same_as_normal "loop: garbage" "$B" "$A"
check_json "loop: garbage JSON" "$WORK/out" 1 end=ok

before=$(written_sectors "$B")
run_cmd "$BMAPSCAN" copy --skip-identical --verify-after --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$B"
expect "loop: skip-identical onto the same image" 0 ", 0 bytes written"
expect_written "loop: the same image" "$B" "$before" 0
same_as_normal "loop: the same image" "$B" "$A"
python3 - "$WORK/out" "$mapped" <<'PY' && pass "loop: JSON end says all skipped" || fail "loop: JSON end: $(tail -n1 "$WORK/out")"
import json, sys
e = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert e["written"] == 0 and e["skipped"] == int(sys.argv[2]), e
PY

run_cmd "$BMAPSCAN" copy --bmap "$WORK/v2.bmap" "$WORK/v2.img" "$A"
expect "loop: normal copy of v2 (the reference)" 0
before=$(written_sectors "$B")
run_cmd "$BMAPSCAN" copy --skip-identical --bmap "$WORK/v2.bmap" "$WORK/v2.img" "$B"
expect "loop: skip-identical of v2 onto v1" 0 "checked, 3.0 MiB written"
expect_written "loop: the older version" "$B" "$before" "$changed"
same_as_normal "loop: the older version" "$B" "$A"

# Two at once: B holds v2 already, C garbage.
beforeb=$(written_sectors "$B") beforec=$(written_sectors "$C")
run_cmd "$BMAPSCAN" copy --skip-identical --bmap "$WORK/v2.bmap" "$WORK/v2.img" "$B" "$C"
expect "loop: two targets at once" 0
expect_written "loop: two targets, the one holding v2" "$B" "$beforeb" 0
expect_written "loop: two targets, the garbage one" "$C" "$beforec" "$mapped"
same_as_normal "loop: two targets, B" "$B" "$A"
same_as_normal "loop: two targets, C" "$C" "$A"

# A write error on the device, retried once, without --verify-after: copy
# writes a device through a second descriptor opened with O_DIRECT, whose
# pwrite returns the device's EIO itself (a buffered write's error would
# only come with the final flush). FAULTY_DIRECT=1 fails only writes on an
# O_DIRECT descriptor: the retry below is that of the write path that runs.
run_cmd env LD_PRELOAD="$FAULTY_IO" FAULTY_MATCH="$C" FAULTY_OFFSET=$spot FAULTY_DIRECT=1 FAULTY_WRITE_EIO=1 \
        "$BMAPSCAN" copy -v --retries 1 --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$C"
expect "loop: an O_DIRECT write error retried" 0 "writing it again, attempt 1 of 1"
grep -qF "$C: $mapped of $mapped bytes written past the page cache (O_DIRECT)" "$WORK/err" \
        && pass "loop: every byte went through the O_DIRECT descriptor" \
        || fail "loop: not all written direct: $(grep -F 'O_DIRECT' "$WORK/err")"
check_json "loop: the O_DIRECT write's retry in JSON" "$WORK/out" 1 "retry=write error" end=ok
run_cmd "$BMAPSCAN" copy --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$A"
same_as_normal "loop: after a retried write" "$C" "$A"
run_cmd env LD_PRELOAD="$FAULTY_IO" FAULTY_MATCH="$C" FAULTY_OFFSET=$spot FAULTY_DIRECT=1 FAULTY_WRITE_EIO=2 \
        "$BMAPSCAN" copy --retries 1 --progress=json --bmap "$WORK/v1.bmap" "$WORK/v1.img" "$C"
expect "loop: an O_DIRECT write error that stays" 1 "still after 1 retries"
grep -qF "range 2048-2818 (bytes 8388608-11546623)" "$WORK/err" && pass "loop: the failing range named" \
        || fail "loop: range not named: $(head -c 400 "$WORK/err")"
check_json "loop: a write error that stays, in JSON" "$WORK/out" 1 "retry=write error" \
        "end=range 2048-2818 (bytes 8388608-11546623)"


# The device, not its page cache: the image ends 100 bytes into a block, so
# its last piece is not 512-byte aligned and cannot be read with O_DIRECT as
# it is. It was read through the cache, dropping only the whole pages of the
# range first (none): while another program holds the device open (the
# kernel drops a device's cache only at its last close), a device changed
# behind that cache was taken as identical, not written, and called OK.
head -c $((MiB + 100)) /dev/urandom >"$WORK/tail.img"
"$BMAPSCAN" create -o "$WORK/tail.bmap" "$WORK/tail.img" 2>/dev/null
run_cmd "$BMAPSCAN" copy --bmap "$WORK/tail.bmap" "$WORK/tail.img" "$C"
expect "loop: the unaligned image, normal copy" 0
exec {holder}<"$C"
dd if="$C" of=/dev/null bs=4096 skip=256 count=1 status=none
printf 'ZZZZ' | dd of="$WORK/loop-c" bs=1 seek=$((MiB + 10)) conv=notrunc,fsync status=none
run_cmd "$BMAPSCAN" copy --skip-identical --bmap "$WORK/tail.bmap" "$WORK/tail.img" "$C"
exec {holder}<&-
expect "loop: a changed unaligned last piece, the device held open" 0 ", 100 bytes written"
cmp -s <(head -c $((MiB + 100)) "$C") "$WORK/tail.img" \
        && pass "loop: the changed unaligned piece was written" || fail "loop: $C does not hold tail.img"

finish
