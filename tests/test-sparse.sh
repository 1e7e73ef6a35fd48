#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bmapscan sparse (SPEC §4) on an expanded image made by scripts/mkimage.sh:
# refusals (a file its user cannot write, an image attached to a loop
# device) leave the image unchanged; --dry-run changes nothing; a real run
# keeps the size and every mapped byte, zeroes (punches) every unmapped one,
# gives the same scan as before, and leaves a file whose hole-based bmap
# ('bmapscan create', 'bmaptool create') maps exactly what scan mapped; a
# second run frees nothing; 'scan --sparse -o' does both at once.
#
# SPARSE_LAYOUT picks the mkimage.sh layout (default gpt-esp-ext4-swap).
. "$(dirname "$0")/lib.sh"

: "${SOURCE_ROOT:=$(cd "$(dirname "$0")/.." && pwd)}"
MKIMAGE=$SOURCE_ROOT/scripts/mkimage.sh
export PATH=$PATH:/usr/sbin:/sbin
LAYOUT=${SPARSE_LAYOUT:-gpt-esp-ext4-swap}
START=$SECONDS

LOOPS=()
RO_DIR=""
cleanup() {
        local l
        for l in "${LOOPS[@]}"; do
                losetup -d "$l" 2>/dev/null || true
        done
        if [ -n "$RO_DIR" ]; then rm -rf "$RO_DIR"; fi
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for t in python3 openssl sfdisk mke2fs mkfs.fat mcopy sha256sum; do
        if ! command -v "$t" >/dev/null; then
                echo "$t is not installed: skipping"
                exit 77
        fi
done

# Byte ranges of a bmap; compare two files over them; check zeros.
HELPER=$WORK/ranges.py
cat >"$HELPER" <<'PYEOF'
import re, sys

def bmap(path):
    t = open(path).read()
    size = int(re.search(r"<ImageSize>\s*(\d+)", t).group(1))
    bs = int(re.search(r"<BlockSize>\s*(\d+)", t).group(1))
    rs = []
    for m in re.finditer(r"<Range[^>]*>\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>", t):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        rs.append((a * bs, min((b + 1) * bs, size)))
    return size, rs

def unmapped(size, rs):
    out, cur = [], 0
    for a, b in rs:
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < size:
        out.append((cur, size))
    return out

def chunks(rs):
    for a, b in rs:
        pos = a
        while pos < b:
            n = min(b - pos, 4 << 20)
            yield pos, n
            pos += n

cmd, bm = sys.argv[1], sys.argv[2]
size, rs = bmap(bm)
if cmd == "mapped-bytes":
    print(sum(b - a for a, b in rs))
elif cmd == "same-mapped":
    # same-mapped BMAP A B: A and B hold the same bytes over every mapped range.
    with open(sys.argv[3], "rb") as fa, open(sys.argv[4], "rb") as fb:
        for pos, n in chunks(rs):
            fa.seek(pos); fb.seek(pos)
            x, y = fa.read(n), fb.read(n)
            if x != y:
                i = next((k for k in range(min(len(x), len(y))) if x[k] != y[k]), min(len(x), len(y)))
                sys.exit("mapped byte %d differs: %s, %s" % (pos + i, x[i:i + 8].hex(), y[i:i + 8].hex()))
    print("%d mapped bytes in %d ranges identical" % (sum(b - a for a, b in rs), len(rs)))
elif cmd == "zero-unmapped":
    # zero-unmapped BMAP F: every unmapped byte of F reads as zero.
    un = unmapped(size, rs)
    with open(sys.argv[3], "rb") as f:
        for pos, n in chunks(un):
            f.seek(pos)
            x = f.read(n)
            if x.count(0) != len(x):
                i = next(k for k in range(len(x)) if x[k])
                sys.exit("unmapped byte %d is 0x%02x, not a hole" % (pos + i, x[i]))
    print("%d unmapped bytes in %d ranges read as zeros" % (sum(b - a for a, b in un), len(un)))
PYEOF
rng() { python3 "$HELPER" "$@"; }

sum_of() { sha256sum "$1" | cut -d' ' -f1; }
# disk_usage FILE: bytes allocated, once written back (ext4 allocates an
# extent block at writeback: measured before, the usage would change later).
disk_usage() {
        sync "$1"
        du -B1 "$1" | cut -f1
}
# freed_bytes: the "(N bytes)" of the last sparse run's stdout.
freed_bytes() { sed -n 's/.*free[ds]\{0,1\} [^(]*(\([0-9]*\) bytes).*/\1/p' "$WORK/out" | head -n 1; }
# unchanged NAME FILE SHA256 DU: the file is as it was, content and allocation.
unchanged() {
        local now du
        now=$(sum_of "$2")
        du=$(disk_usage "$2")
        if [ "$now" = "$3" ] && [ "$du" = "$4" ]; then
                pass "$1: the image is unchanged (sha256 and disk usage)"
        else
                fail "$1: the image changed: sha256 $3 -> $now, disk usage $4 -> $du bytes"
        fi
}
# The mapped block runs of a bmap, adjacent ranges merged (scan cuts long
# runs into 64 MiB ranges; bmaptool does not).
ranges() {
        grep '<Range' "$1" | sed -E 's/.*> *([0-9]+)(-([0-9]+))? *<.*/\1 \3/' |
                awk '{ a = $1; b = ($2 == "" ? $1 : $2)
                       if (n && a == pb + 1) { pb = b } else { if (n) print pa "-" pb; pa = a; pb = b; n = 1 } }
                     END { if (n) print pa "-" pb }'
}

# ---------------------------------------------------------------- the image

base=$WORK/base.img
rc=0
bash "$MKIMAGE" "$LAYOUT" "$base" 7 >"$WORK/mkimage.log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
        echo "cannot build the $LAYOUT image (mkimage.sh exit $rc): $(tail -c 400 "$WORK/mkimage.log")"
        [ "$rc" = 77 ] && exit 77
        exit 1
fi
size=$(stat -c %s "$base")
base_sum=$(sum_of "$base")
base_du=$(disk_usage "$base")
echo "image: $LAYOUT, $size bytes, $base_du on disk"
run_cmd "$BMAPSCAN" scan --no-checksum -o "$WORK/base-nc.bmap" "$base"
expect "scan --no-checksum of the expanded image" 0
run_cmd "$BMAPSCAN" scan -o "$WORK/base.bmap" "$base"
expect "scan of the expanded image" 0
mapped=$(rng mapped-bytes "$WORK/base.bmap")
echo "scan maps $mapped of $size bytes"
if [ "$mapped" -ge "$size" ]; then
        fail "scan maps the whole image: nothing to punch, the checks below would prove nothing"
fi

# ---------------------------------------------------------------- refusals

# A file its user cannot write. Root writes anything: run as nobody.
ro=$WORK/ro.img
as_nobody=()
if [ "$(id -u)" != 0 ]; then
        as_nobody=(env)
elif command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
        as_nobody=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
elif command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
        as_nobody=(runuser -u nobody --)
fi
if [ ${#as_nobody[@]} = 0 ]; then
        echo "skip: read-only refusal: running as root without setpriv or runuser"
else
        # nobody must reach the file (and the binary): $WORK may sit under a
        # directory it cannot enter, so fall back to a directory in /tmp.
        chmod 755 "$WORK"
        mkdir -p "$WORK/ro"
        chmod 755 "$WORK/ro"
        ro=$WORK/ro/ro.img
        cp "$base" "$ro"
        chmod 444 "$ro"
        if ! "${as_nobody[@]}" test -r "$ro" 2>/dev/null; then
                RO_DIR=$(mktemp -d /tmp/test-sparse-ro.XXXXXX)
                chmod 755 "$RO_DIR"
                mv "$ro" "$RO_DIR/ro.img"
                ro=$RO_DIR/ro.img
        fi
        if ! "${as_nobody[@]}" test -r "$ro" 2>/dev/null || ! "${as_nobody[@]}" test -x "$BMAPSCAN" 2>/dev/null; then
                echo "skip: read-only refusal: user nobody cannot reach $ro or run $BMAPSCAN"
        else
                ro_du=$(disk_usage "$ro")
                run_cmd "${as_nobody[@]}" "$BMAPSCAN" sparse "$ro"
                expect "sparse of a read-only file (as $("${as_nobody[@]}" id -un))" 1 "$ro"
                one_line "sparse of a read-only file"
                if grep -qi 'writ' "$WORK/err"; then
                        pass "sparse of a read-only file: the message says it needs to write"
                else
                        fail "sparse of a read-only file: the message does not say it needs to write: $(cat "$WORK/err")"
                fi
                unchanged "sparse of a read-only file" "$ro" "$base_sum" "$ro_du"
                run_cmd "${as_nobody[@]}" "$BMAPSCAN" scan --sparse -o /dev/null "$ro"
                expect "scan --sparse of a read-only file" 1 "$ro"
                unchanged "scan --sparse of a read-only file" "$ro" "$base_sum" "$ro_du"
        fi
        rm -f "$ro"
fi

# An image attached to a loop device.
lo=$WORK/loop.img
cp --sparse=never "$base" "$lo"
lo_du=$(disk_usage "$lo")
if dev=$(losetup --find --show "$lo" 2>"$WORK/err"); then
        LOOPS+=("$dev")
        run_cmd "$BMAPSCAN" sparse "$lo"
        expect "sparse of an image attached to $dev" 1 "$(basename "$dev")"
        one_line "sparse of an attached image"
        unchanged "sparse of an attached image" "$lo" "$base_sum" "$lo_du"
        run_cmd "$BMAPSCAN" scan --sparse -o "$WORK/attached.bmap" "$lo"
        expect "scan --sparse of an image attached to $dev" 1 "$(basename "$dev")"
        unchanged "scan --sparse of an attached image" "$lo" "$base_sum" "$lo_du"
        losetup -d "$dev"
        LOOPS=()
else
        echo "skip: loop-device refusal: no loop device ($(head -c 200 "$WORK/err"))"
fi
rm -f "$lo"

# Not a regular file.
run_cmd "$BMAPSCAN" sparse "$WORK"
expect "sparse of a directory" 1
one_line "sparse of a directory"

# A file with no write bit, as its owner (root, here: root can open it for
# writing all the same, so the mode is what is checked).
ro2=$WORK/mode444.img
cp --sparse=never "$base" "$ro2"
chmod 444 "$ro2"
ro2_du=$(disk_usage "$ro2")
for how in sparse "scan --sparse -o $WORK/mode444.bmap"; do
        read -r -a args <<<"$how"
        run_cmd "$BMAPSCAN" "${args[@]}" "$ro2"
        expect "$how of a mode-0444 file" 1 "$ro2"
        one_line "$how of a mode-0444 file"
        grep -q "chmod u+w" "$WORK/err" && pass "$how of a mode-0444 file: says chmod u+w" ||
                fail "$how of a mode-0444 file: $(cat "$WORK/err")"
        unchanged "$how of a mode-0444 file" "$ro2" "$base_sum" "$ro2_du"
done
[ ! -e "$WORK/mode444.bmap" ] && pass "scan --sparse of a mode-0444 file: refused before writing a bmap" ||
        fail "scan --sparse of a mode-0444 file wrote a bmap"
run_cmd "$BMAPSCAN" sparse --dry-run "$ro2"
expect "sparse --dry-run of a mode-0444 file (it writes nothing)" 0
rm -f "$ro2"

# A file another process holds open for writing (this shell, on fd 9):
# refused, unchanged; once closed, it may be punched.
busy=$WORK/busy.img
cp --sparse=never "$base" "$busy"
busy_du=$(disk_usage "$busy")
exec 9>>"$busy"
for how in sparse "scan --sparse -o $WORK/busy.bmap"; do
        read -r -a args <<<"$how"
        run_cmd "$BMAPSCAN" "${args[@]}" "$busy"
        expect "$how of a file open for writing elsewhere" 1 "$busy: another process has the file open; close it first"
        one_line "$how of a file open for writing elsewhere"
done
exec 9>&-
unchanged "sparse of a file open for writing elsewhere" "$busy" "$base_sum" "$busy_du"
# -q: only errors, so nothing at all on success.
run_cmd "$BMAPSCAN" -q sparse "$busy"
expect "-q sparse once the file is closed" 0
[ ! -s "$WORK/out" ] && [ ! -s "$WORK/err" ] && pass "-q sparse prints nothing" ||
        fail "-q sparse printed: $(cat "$WORK/out" "$WORK/err")"
[ "$(disk_usage "$busy")" -lt "$busy_du" ] && pass "-q sparse punched the file" || fail "-q sparse freed nothing"
rm -f "$busy"

# ---------------------------------------------------------------- dry run

img=$WORK/work.img
cp --sparse=never "$base" "$img"
img_du=$(disk_usage "$img")
run_cmd "$BMAPSCAN" sparse --dry-run "$img"
expect "sparse --dry-run" 0
would=$(freed_bytes)
echo "dry run: $(cat "$WORK/out")"
unchanged "sparse --dry-run" "$img" "$base_sum" "$img_du"

# ---------------------------------------------------------------- the real run

run_cmd "$BMAPSCAN" sparse "$img"
expect "sparse" 0
freed=$(freed_bytes)
after_du=$(disk_usage "$img")
echo "sparse: $(cat "$WORK/out")"
echo "disk usage: $img_du -> $after_du bytes (scan maps $mapped; dry run said $would, the run $freed)"
if [ "$(stat -c %s "$img")" = "$size" ]; then
        pass "sparse keeps the size ($size bytes)"
else
        fail "sparse changed the size: $size -> $(stat -c %s "$img") bytes"
fi
if [ -z "$freed" ] || [ "$freed" = 0 ]; then
        fail "sparse frees nothing (stdout: $(cat "$WORK/out"))"
elif [ "$after_du" -gt $((mapped + mapped / 50 + 1048576)) ]; then
        fail "after sparse the image takes $after_du bytes on disk, scan maps $mapped"
else
        pass "sparse frees $freed bytes; the image takes $after_du bytes, scan maps $mapped"
fi
if [ -n "$would" ] && [ -n "$freed" ] && [ $((would > freed ? would - freed : freed - would)) -le $((freed / 100 + 65536)) ]; then
        pass "--dry-run announced what the run freed ($would vs $freed bytes)"
else
        fail "--dry-run said it would free '$would' bytes, the run freed '$freed'"
fi
if rng same-mapped "$WORK/base.bmap" "$base" "$img" >"$WORK/out" 2>&1; then pass "sparse: $(cat "$WORK/out")"; else fail "sparse changed a mapped byte: $(cat "$WORK/out")"; fi
if rng zero-unmapped "$WORK/base.bmap" "$img" >"$WORK/out" 2>&1; then pass "sparse: $(cat "$WORK/out")"; else fail "sparse: $(cat "$WORK/out")"; fi

# The same scan afterwards, with and without checksums.
run_cmd "$BMAPSCAN" scan --no-checksum -o "$WORK/after-nc.bmap" "$img"
expect "scan --no-checksum after sparse" 0
if cmp -s "$WORK/base-nc.bmap" "$WORK/after-nc.bmap"; then
        pass "scan --no-checksum gives the identical bmap after sparse"
else
        fail "scan --no-checksum differs after sparse:"
        diff "$WORK/base-nc.bmap" "$WORK/after-nc.bmap" | sed -n '1,10s/^/      /p'
fi
run_cmd "$BMAPSCAN" scan -o "$WORK/after.bmap" "$img"
expect "scan after sparse" 0
if cmp -s "$WORK/base.bmap" "$WORK/after.bmap"; then
        pass "scan (with checksums) gives the identical bmap after sparse"
else
        fail "scan with checksums differs after sparse:"
        diff "$WORK/base.bmap" "$WORK/after.bmap" | sed -n '1,10s/^/      /p'
fi

# The holes are exactly the unmapped blocks: hole-based bmaps agree.
run_cmd "$BMAPSCAN" create --no-checksum -o "$WORK/create.bmap" "$img"
expect "create --no-checksum on the punched image" 0
if diff <(ranges "$WORK/create.bmap") <(ranges "$WORK/base-nc.bmap") >"$WORK/diff"; then
        pass "create maps exactly the $(ranges "$WORK/create.bmap" | wc -l) ranges scan mapped"
else
        fail "create and scan map different ranges (< create, > scan):"
        sed -n '1,10s/^/      /p' "$WORK/diff"
fi
if command -v bmaptool >/dev/null; then
        if bmaptool create --no-checksum -o "$WORK/bmaptool.bmap" "$img" 2>"$WORK/err"; then
                if diff <(ranges "$WORK/bmaptool.bmap") <(ranges "$WORK/base-nc.bmap") >"$WORK/diff"; then
                        pass "bmaptool create maps exactly the ranges scan mapped"
                else
                        fail "bmaptool create and scan map different ranges (< bmaptool, > scan):"
                        sed -n '1,10s/^/      /p' "$WORK/diff"
                fi
        else
                fail "bmaptool create on the punched image fails: $(head -c 300 "$WORK/err")"
        fi
else
        echo "skip: bmaptool is not installed: no bmaptool create comparison"
fi

# A second run finds nothing left to free.
run_cmd "$BMAPSCAN" sparse "$img"
expect "second sparse" 0
again=$(freed_bytes)
if [ "$again" = 0 ]; then
        pass "a second sparse frees 0 bytes"
else
        fail "a second sparse frees '$again' bytes: $(cat "$WORK/out")"
fi

# ---------------------------------------------------------------- scan --sparse

both=$WORK/both.img
cp --sparse=never "$base" "$both"
run_cmd "$BMAPSCAN" scan --sparse -o "$WORK/both.bmap" "$both"
expect "scan --sparse -o" 0
if cmp -s "$WORK/both.bmap" "$WORK/base.bmap"; then
        pass "scan --sparse -o writes the same bmap as scan -o"
else
        fail "scan --sparse -o writes another bmap than scan -o:"
        diff "$WORK/base.bmap" "$WORK/both.bmap" | sed -n '1,10s/^/      /p'
fi
if cmp "$both" "$img" >"$WORK/out" 2>&1; then
        pass "scan --sparse leaves the same bytes as sparse"
else
        fail "scan --sparse leaves other bytes than sparse: $(head -n 1 "$WORK/out")"
fi
run_cmd "$BMAPSCAN" create --no-checksum -o "$WORK/both-create.bmap" "$both"
expect "create on the scan --sparse image" 0
if diff <(ranges "$WORK/both-create.bmap") <(ranges "$WORK/base-nc.bmap") >"$WORK/diff"; then
        pass "scan --sparse punched exactly the unmapped blocks ($(disk_usage "$both") bytes on disk)"
else
        fail "after scan --sparse, create and scan map different ranges (< create, > scan):"
        sed -n '1,10s/^/      /p' "$WORK/diff"
fi

echo "($((SECONDS - START)) s)"
finish
