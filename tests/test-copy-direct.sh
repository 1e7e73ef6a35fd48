#!/bin/bash
# copy writes past the page cache (O_DIRECT) where the target takes it, and
# through it where not: onto loop devices with 512- and 4096-byte logical
# blocks, a file on tmpfs and a file on an ext4 mount, from a bmap of
# 512-byte blocks whose ranges start and end inside 4 KiB blocks and an
# image whose size is not a multiple of 512: every target ends up holding
# exactly the image's mapped bytes (the rest as it was), the aligned bytes
# go direct (counted by -v), the edges through the page cache; and a target
# whose O_DIRECT open or first direct write fails is written all the same.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

need_tools losetup mkfs.ext4 python3
need_loop

# ---- the image and its bmap ----------------------------------------------
# 6 MiB and 2660 bytes: the last 512-byte block holds 100 bytes. Ranges in
# 512-byte blocks: two that start and end inside a 4 KiB block, one of a
# single block, one longer than a copy chunk (4 MiB) from an aligned start
# to an unaligned end, one from an unaligned start to an aligned end, and
# the partial last block after an unaligned start.
img=$WORK/image
size=$((6 * 1048576 + 2660))
head -c $size /dev/urandom >"$img"
RANGES="1-2 9-9 16-10000 10003-12287 12290-12293"
python3 - "$img" "$WORK/image.bmap" $RANGES <<'PY'
import hashlib, sys
img, out, ranges = sys.argv[1], sys.argv[2], sys.argv[3:]
data = open(img, "rb").read()
bs = 512
blocks = (len(data) + bs - 1) // bs
rows, mapped = [], 0
for r in ranges:
    a, b = map(int, r.split("-"))
    chunk = data[a * bs:(b + 1) * bs]
    mapped += b - a + 1
    rows.append('        <Range chksum="%s"> %d-%d </Range>' % (hashlib.sha256(chunk).hexdigest(), a, b))
text = """<?xml version="1.0" ?>
<bmap version="2.0">
    <ImageSize> %d </ImageSize>
    <BlockSize> %d </BlockSize>
    <BlocksCount> %d </BlocksCount>
    <MappedBlocksCount> %d </MappedBlocksCount>
    <ChecksumType> sha256 </ChecksumType>
    <BmapFileChecksum> %s </BmapFileChecksum>
    <BlockMap>
%s
    </BlockMap>
</bmap>
""" % (len(data), bs, blocks, mapped, "0" * 64, "\n".join(rows))
text = text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest(), 1)
open(out, "w").write(text)
PY

# expected BEFORE OUT: what a target that held BEFORE holds after the copy:
# the image's mapped bytes over BEFORE's, the rest of BEFORE unchanged.
expected() {
        python3 - "$img" "$1" "$2" $RANGES <<'PY'
import sys
img, before, out, ranges = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
data = open(img, "rb").read()
buf = bytearray(open(before, "rb").read())
for r in ranges:
    a, b = map(int, r.split("-"))
    s, e = a * 512, min((b + 1) * 512, len(data))
    buf[s:e] = data[s:e]
open(out, "wb").write(buf)
PY
}

# direct_bytes ALIGN: the bytes a copy can write direct with that logical
# block size: in each 4 MiB chunk of each range, the aligned middle.
direct_bytes() {
        python3 - "$size" "$1" $RANGES <<'PY'
import sys
size, al, ranges = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
total = 0
for r in ranges:
    a, b = map(int, r.split("-"))
    s, e = a * 512, min((b + 1) * 512, size)
    while s < e:
        ce = min(s + (4 << 20), e)
        lo, hi = -(-s // al) * al, ce // al * al
        total += max(0, hi - lo)
        s = ce
print(total)
PY
}

mapped=$(python3 -c 'import sys; print(sum(min((int(b) + 1) * 512, int(sys.argv[1])) - int(a) * 512 for a, b in (r.split("-") for r in sys.argv[2:])))' "$size" $RANGES)

# check NAME TARGET EXPECTED-FILE: TARGET's first bytes are EXPECTED-FILE.
check() {
        local n
        n=$(stat -c %s "$3")
        if cmp -s -n "$n" "$2" "$3"; then
                pass "$1: holds the image's mapped bytes, the rest unchanged"
        else
                fail "$1: differs from the expected content: $(cmp -n "$n" "$2" "$3" 2>&1 | head -n 1)"
        fi
}

# direct_line TARGET: the bytes -v says went past the page cache.
direct_line() {
        sed -n "s|^$1: \([0-9]*\) of \([0-9]*\) bytes written past the page cache (O_DIRECT)$|\1 \2|p" "$WORK/err"
}

# ---- targets --------------------------------------------------------------
# Two loop devices full of garbage (512- and 4096-byte logical blocks),
# a file on tmpfs and one on an ext4 mount (over a third loop device).
head -c $((8 << 20)) /dev/urandom >"$WORK/garbage"
cp "$WORK/garbage" "$WORK/dev512.img"
cp "$WORK/garbage" "$WORK/dev4k.img"
attach "$WORK/dev512.img" || fail "cannot attach a loop device"
dev512=$ATTACHED
attach -b 4096 "$WORK/dev4k.img" || fail "cannot attach a 4096-byte loop device"
dev4k=$ATTACHED
[ "$(blockdev --getss "$dev4k")" = 4096 ] || fail "$dev4k: logical block $(blockdev --getss "$dev4k"), not 4096"
flash_mount "$WORK/tmpfs" -t tmpfs -o size=32m bmapscan-test || fail "cannot mount a tmpfs"
truncate -s 64M "$WORK/ext4.img"
mkfs.ext4 -q -F "$WORK/ext4.img"
attach "$WORK/ext4.img" || fail "cannot attach the ext4 image"
flash_mount "$WORK/ext4" "$ATTACHED" || fail "cannot mount the ext4 image"

head -c $size /dev/zero >"$WORK/zeros"
expected "$WORK/garbage" "$WORK/want-dev"
expected "$WORK/zeros" "$WORK/want-file"

# All four in one copy: each writer on its own, side by side.
run_cmd "$BMAPSCAN" -v copy --bmap "$WORK/image.bmap" "$img" "$dev512" "$dev4k" "$WORK/tmpfs/out.img" "$WORK/ext4/out.img"
expect "copy onto two loop devices, a tmpfs file and an ext4 file" 0
check "512-byte loop device" "$dev512" "$WORK/want-dev"
check "4096-byte loop device" "$dev4k" "$WORK/want-dev"
check "file on tmpfs" "$WORK/tmpfs/out.img" "$WORK/want-file"
check "file on ext4" "$WORK/ext4/out.img" "$WORK/want-file"
for f in tmpfs ext4; do
        [ "$(stat -c %s "$WORK/$f/out.img")" = $size ] && pass "file on $f: $size bytes" ||
                fail "file on $f: $(stat -c %s "$WORK/$f/out.img") bytes, not $size"
done
# The edges are few: nearly all bytes went direct, exactly the aligned ones.
for pair in "$dev512 512" "$dev4k 4096"; do
        set -- $pair
        want=$(direct_bytes "$2")
        got=$(direct_line "$1")
        [ "$got" = "$want $mapped" ] && pass "$1 (logical block $2): $want of $mapped bytes written direct" ||
                fail "$1 (logical block $2): -v says '${got:-nothing}' direct, expected '$want $mapped'"
done
got=$(direct_line "$WORK/ext4/out.img")
[ -n "$got" ] && [ "${got%% *}" -gt $((mapped / 2)) ] && pass "file on ext4: ${got%% *} of $mapped bytes written direct" ||
        fail "file on ext4: -v says '${got:-nothing}' direct, expected most of $mapped"

# The page cache of the device holds none of the direct bytes: the loop
# device's backing file was written by the loop driver, not through the
# device's cache, so reading the device after dropping only clean pages
# gives the image (the edge pieces were flushed by the copy's fsync).
blockdev --flushbufs "$dev4k"
check "4096-byte loop device after dropping its cache" "$dev4k" "$WORK/want-dev"

# ---- a target without O_DIRECT ------------------------------------------
# NODIRECT=open: the O_DIRECT open fails; =write: the first direct write
# does (both EINVAL, as filesystems without direct I/O say it). Either way
# every byte is written through the page cache.
if [ -n "${NODIRECT_PRELOAD:-}" ] && [ -f "$NODIRECT_PRELOAD" ]; then
        for mode in open write; do
                cp "$WORK/garbage" "$WORK/dev4k.img"
                blockdev --flushbufs "$dev4k"
                # The sanitizer runtime wants to come first; the shim does not
                # care where it is.
                run_cmd env NODIRECT=$mode LD_PRELOAD="$NODIRECT_PRELOAD" \
                        ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
                        "$BMAPSCAN" -v copy --bmap "$WORK/image.bmap" "$img" "$dev4k" "$WORK/ext4/out2.img"
                expect "copy with O_DIRECT refused at $mode" 0
                check "4096-byte loop device, O_DIRECT refused at $mode" "$dev4k" "$WORK/want-dev"
                check "file on ext4, O_DIRECT refused at $mode" "$WORK/ext4/out2.img" "$WORK/want-file"
                for t in "$dev4k" "$WORK/ext4/out2.img"; do
                        got=$(direct_line "$t")
                        [ "$got" = "0 $mapped" ] && pass "$t, O_DIRECT refused at $mode: every byte buffered" ||
                                fail "$t, O_DIRECT refused at $mode: -v says '${got:-nothing}', expected '0 $mapped'"
                done
                rm -f "$WORK/ext4/out2.img"
        done
else
        fail "NODIRECT_PRELOAD does not name the test shim (${NODIRECT_PRELOAD:-unset})"
fi

finish
