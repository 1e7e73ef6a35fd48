#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The flash invariant (SPEC §1) for XFS (issue 13), with the real bmaptool:
# a GPT image over garbage with
#   p1  XFS v5 (mkfs.xfs defaults: reflink, rmapbt), filled through a
#       kernel loop mount: a tree, small files, 24 interleaved 1 MiB files
#       of which every other one is deleted again, a reflinked copy, then
#       a large file written into the holes they left;
#   p2  XFS v4 (-m crc=0), filled by a mkfs prototype file (this kernel
#       may not mount v4 at all; where it does, files are also written and
#       deleted through a mount);
#   p3  random bytes.
# scan it, flash it with 'bmaptool copy' onto a loop device over random
# garbage, and check on the target that
#   (1) xfs_repair -n finds both filesystems clean,
#   (2) every file is identical, read back through a read-only kernel
#       mount (-o ro,nouuid: image and target share UUIDs), or for a v4
#       the kernel cannot mount, through xfs_db's block maps of each file,
#   (3) every byte outside the XFS filesystems, and every block xfs_db
#       does not list free ('freesp -d'), is identical,
#   (4) bmaptool verified every range's checksum.
# Also, without flashing: those bytes all lie in the bmap (no data loss);
# and EXACTNESS: the bytes the bmap maps in each partition against xfs_db's
# dblocks − fdblocks (the internal log counted used), both printed: fewer
# fails, more than 5% over fails. Needs loop devices (exit 77 without).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

MIB=$((1024 * 1024))
SEED=${FLASH_SEED:-1}
# mkfs.xfs refuses filesystems under 300 MiB unless it believes it runs
# under fstests.
export TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs

need_tools bmaptool python3 openssl losetup sfdisk mkfs.xfs xfs_db xfs_repair xfs_io
need_loop

# xfs_need DEV OFFSET: the byte ranges (absolute, OFFSET added) the
# filesystem on DEV uses: every block that xfs_db's 'freesp -d' does not
# list; prints "# dblocks D fdblocks F blocksize B" first.
xfs_need() {
        xfs_db -r -c 'sb 0' -c 'p dblocks fdblocks blocksize agblocks' -c 'freesp -d' "$1" >"$d/db" 2>"$WORK/err" ||
                { echo "xfs_db failed: $(head -c 200 "$WORK/err")" >&2; return 1; }
        python3 - "$d/db" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
off = int(sys.argv[2])
v = {k: int(re.search(r'^%s = (\d+)$' % k, text, re.M).group(1)) for k in ('dblocks', 'fdblocks', 'blocksize', 'agblocks')}
bs = v['blocksize']
free = []
for line in text.split('from')[0].splitlines():
    p = line.split()
    if len(p) == 3 and all(x.isdigit() for x in p):
        ag, bno, n = map(int, p)
        free.append(((ag * v['agblocks'] + bno) * bs, (ag * v['agblocks'] + bno + n) * bs))
free.sort()
print('# dblocks %d fdblocks %d blocksize %d' % (v['dblocks'], v['fdblocks'], bs))
at = 0
for a, b in free + [(v['dblocks'] * bs, v['dblocks'] * bs)]:
    if a > at:
        print(at + off, a + off, 'blocks freesp -d does not list')
    at = max(at, b)
PY
}

# xfs_files DEV OUT: every regular file's contents, read through xfs_db's
# block map of it (no kernel involved), as OUT/<path>.
xfs_files() {
        local dev=$1 out=$2
        mkdir -p "$out"
        python3 - "$dev" "$out" <<'PY'
import os, re, subprocess, sys
dev, out = sys.argv[1], sys.argv[2]
def db(*cmds):
    args = ['xfs_db', '-r']
    for c in cmds:
        args += ['-c', c]
    return subprocess.run(args + [dev], capture_output=True, text=True, check=True).stdout
sb = db('sb 0', 'p blocksize agblocks agblklog')
bs, agblocks, agblklog = (int(re.search(r'^%s = (\d+)' % k, sb, re.M).group(1)) for k in ('blocksize', 'agblocks', 'agblklog'))
def walk(path):
    for line in db('path ' + (path or '/'), 'ls').splitlines():
        m = re.match(r'\s*\d+\s+\d+\s+(\w+)\s+\S+\s+\d+\s+(\S+)', line)
        if not m or m.group(2) in ('.', '..'):
            continue
        kind, name = m.group(1), m.group(2)
        p = path + '/' + name
        if kind == 'directory':
            os.makedirs(out + p, exist_ok=True)
            walk(p)
        elif kind == 'regular':
            info = db('path ' + p, 'p core.size', 'bmap')
            size = int(re.search(r'core.size = (\d+)', info).group(1))
            data = bytearray(size)
            with open(dev, 'rb') as f:
                for m2 in re.finditer(r'data offset (\d+) startblock (\d+) \((\d+)/(\d+)\) count (\d+) flag (\d)', info):
                    fo, ag, bno, n, flag = int(m2.group(1)), int(m2.group(3)), int(m2.group(4)), int(m2.group(5)), int(m2.group(6))
                    if flag:
                        continue
                    f.seek((ag * agblocks + bno) * bs)
                    chunk = f.read(n * bs)
                    lo = fo * bs
                    if lo < size:
                        data[lo:min(size, lo + n * bs)] = chunk[:min(size, lo + n * bs) - lo]
            open(out + p, 'wb').write(data)
walk('')
PY
}

# fill_mounted DIR: what the kernel writes: a tree, small files, 24
# interleaved 1 MiB files of which every other one is deleted again, a
# reflinked copy, then a large file that can only go into their holes.
fill_mounted() {
        local m=$1 i free
        mkdir -p "$m/dir/sub" "$m/empty-dir"
        for i in $(seq 1 40); do printf 'small file %d\n' "$i" >"$m/dir/s$i.txt"; done
        "$GEN_FILE" "$m/dir/sub/medium" 700K data "$SEED" >/dev/null
        "$GEN_FILE" "$m/dir/odd" 123457 data "$((SEED + 1))" >/dev/null
        truncate -s 6M "$m/sparse"
        "$GEN_FILE" "$d/piece" 256K data "$((SEED + 2))" >/dev/null
        dd if="$d/piece" of="$m/sparse" bs=64K seek=40 conv=notrunc status=none
        for i in $(seq 1 24); do "$GEN_FILE" "$m/f$i" 1M data "$((SEED + 10 + i))" >/dev/null; done
        sync
        for i in $(seq 2 2 24); do rm "$m/f$i"; done
        rm "$m/dir/s7.txt" "$m/dir/s8.txt"
        cp --reflink=auto "$m/f1" "$m/f1.reflink"
        sync
        free=$(df -B1 --output=avail "$m" | tail -1)
        "$GEN_FILE" "$m/big" "$((free - 8 * MIB))" data "$((SEED + 3))" >/dev/null
        sync
}

# proto_tree DIR PROTO: files for mkfs.xfs -p, and the prototype file.
proto_tree() {
        local r=$1 i
        mkdir -p "$r/d"
        { echo boot; echo 0 0; echo 'd--755 0 0'; } >"$2"
        for i in $(seq 1 12); do
                "$GEN_FILE" "$r/p$i" "$((i * 97 + 1))K" data "$((SEED + 40 + i))" >/dev/null
                echo "p$i ---644 0 0 $r/p$i" >>"$2"
        done
        echo 'd d--755 0 0' >>"$2"
        printf 'hello\n' >"$r/d/h"
        { echo "h ---644 0 0 $r/d/h"; echo '$'; echo '$'; } >>"$2"
}

# abort WHAT: a failure after which nothing else can be checked.
abort() {
        fail "$*"
        finish || true
        exit 1
}

L=xfs-gpt
d=$WORK/$L
mkdir -p "$d"
t0=$SECONDS
img=$d/image.img
p1start=$MIB p1size=$((96 * MIB)) p2size=$((64 * MIB)) p3size=$((4 * MIB))
p2start=$((p1start + p1size)) p3start=$((p1start + p1size + p2size))
size=$((p3start + p3size + 2 * MIB))
garbage "$img" "$size" "$L:image:$SEED"
printf 'label: gpt\nstart=%d, size=%d, type=linux\nsize=%d, type=linux\nsize=%d, type=linux\n' \
        $((p1start / 512)) $((p1size / 512)) $((p2size / 512)) $((p3size / 512)) | sfdisk -q "$img" >/dev/null

# p1: v5 through the kernel.
attach -o "$p1start" --sizelimit "$p1size" "$img" || abort "cannot attach p1"
loop=$ATTACHED
mkfs.xfs -q -f "$loop" >"$d/mkfs.log" 2>&1 || abort "mkfs.xfs fails: $(tail -c 300 "$d/mkfs.log")"
if ! flash_mount "$d/mnt" -t xfs "$loop" 2>"$WORK/err"; then
        echo "the kernel cannot mount XFS here ($(head -c 200 "$WORK/err")): skipping"
        exit 77
fi
fill_mounted "$d/mnt"
# xfs_io's bmap: a header line, then one line per extent.
extents=$(xfs_io -r -c bmap "$d/mnt/big" | tail -n +2 | grep -vc hole || true)
if [ "${extents:-0}" -gt 1 ]; then
        pass "p1: the large file is fragmented ($extents extents)"
else
        fail "p1: the large file is not fragmented (${extents:-?} extents): the test would not show it"
fi
flash_umount "$d/mnt"
detach "$loop"

# p2: v4 by a prototype file, and through the kernel where it mounts v4.
proto_tree "$d/proto" "$d/proto.txt"
attach -o "$p2start" --sizelimit "$p2size" "$img" || abort "cannot attach p2"
loop=$ATTACHED
mkfs.xfs -q -f -m crc=0 -p "$d/proto.txt" "$loop" >"$d/mkfs.log" 2>&1 || abort "mkfs.xfs -m crc=0 fails: $(tail -c 300 "$d/mkfs.log")"
V4_MOUNTS=0
if flash_mount "$d/mnt4" -t xfs "$loop" 2>/dev/null; then
        V4_MOUNTS=1
        for i in 1 3 5; do rm "$d/mnt4/p$i"; done
        "$GEN_FILE" "$d/mnt4/written" 3M data "$((SEED + 60))" >/dev/null
        sync
        flash_umount "$d/mnt4"
        echo "    the kernel mounts v4: files also written and deleted through it"
else
        echo "    the kernel does not mount v4: p2 holds what mkfs.xfs -p wrote"
fi
detach "$loop"
rm -rf "$d/proto"

# The separate count: xfs_db on each partition.
: >"$d/need"
for p in 1 2; do
        eval "ps=\$p${p}start psz=\$p${p}size"
        extract "$img" "$ps" "$psz" "$d/p$p"
        if xfs_repair -n "$d/p$p" >"$d/repair-image$p" 2>&1; then
                pass "p$p: xfs_repair -n finds the image's filesystem clean"
        else
                fail "p$p: the image's filesystem is not clean itself: $(tail -c 300 "$d/repair-image$p")"
        fi
        xfs_need "$d/p$p" "$ps" >"$d/need$p" || fail "p$p: cannot read the free space with xfs_db"
        cat "$d/need$p" >>"$d/need"
        rm -f "$d/p$p"
done
fc complement "$size" <(echo "$p1start $((p1start + p1size))"; echo "$p2start $((p2start + p2size))") \
        "outside the XFS partitions" >"$d/outside"

# The scan.
run_cmd "$BMAPSCAN" scan --json -o "$d/bmap" "$img"
if [ "$RC" != 0 ]; then
        abort "bmapscan scan exits $RC: $(head -c 400 "$WORK/err")"
fi
cp "$WORK/out" "$d/json"
for p in 1 2; do
        how=$(fc json-parts "$d/json" | awk -v p=$p '$1 == "part" && $2 == p {for (i = 9; i <= NF; i++) printf "%s ", $i}')
        if grep -q 'free-space B+trees' <<<"$how"; then
                pass "p$p: scan reads the XFS partition: $how"
        else
                fail "p$p: scan does not read the XFS partition by its free-space trees: $how"
        fi
done
cat "$d/need" "$d/outside" >"$d/all-need"
if fc uncovered "$d/all-need" "$d/bmap" >"$WORK/out"; then
        pass "no data loss: $(cat "$WORK/out")"
else
        fail "DATA LOSS in the bmap itself: $(cat "$WORK/out")"
fi

# EXACTNESS against xfs_db's dblocks − fdblocks.
for p in 1 2; do
        eval "ps=\$p${p}start psz=\$p${p}size"
        read -r _ _ dblocks _ fdblocks _ bs <<<"$(head -1 "$d/need$p")"
        mapped=$(fc mapped-in "$d/bmap" "$ps" $((ps + psz)))
        want=$(((dblocks - fdblocks) * bs))
        echo "    exactness p$p: xfs_db says dblocks $dblocks - fdblocks $fdblocks = $((dblocks - fdblocks)) blocks of $bs = $want bytes used (log included); scan maps $mapped (+$(pct "$mapped" "$want")%: the AGFL and free-space btree blocks, which fdblocks counts free)"
        if [ "$mapped" -lt "$want" ]; then
                fail "p$p: DATA LOSS: scan maps $mapped bytes of the partition, xfs_db says $want are used"
        elif [ "$mapped" -gt $((want + want / 20)) ]; then
                fail "p$p: NOT EXACT: scan maps $mapped bytes, more than 5% over $want"
        else
                pass "p$p: exact within 5%: scan maps $mapped bytes, xfs_db $want"
        fi
done

# The flash onto garbage.
tgt=$d/target
garbage "$tgt" "$size" "$L:target:$SEED"
attach "$tgt" || abort "cannot attach the target"
run_cmd bmaptool copy --bmap "$d/bmap" "$img" "$ATTACHED"
detach "$ATTACHED"
if [ "$RC" = 0 ]; then
        pass "check (4): bmaptool copy verified every range checksum"
else
        abort "check (4): bmaptool copy exits $RC: $(grep -v ': info: ' "$WORK/err" | tail -n 4)"
fi

# (1) and (2).
for p in 1 2; do
        eval "ps=\$p${p}start psz=\$p${p}size"
        extract "$tgt" "$ps" "$psz" "$d/t$p"
        if xfs_repair -n "$d/t$p" >"$d/repair-target$p" 2>&1; then
                pass "p$p: check (1): xfs_repair -n finds the target's filesystem clean"
        else
                fail "p$p: check (1): xfs_repair -n on the target: $(tail -c 300 "$d/repair-target$p")"
        fi
        rm -f "$d/t$p"
        iloop= tloop=
        attach -r -o "$ps" --sizelimit "$psz" "$img" && iloop=$ATTACHED
        attach -r -o "$ps" --sizelimit "$psz" "$tgt" && tloop=$ATTACHED
        if [ -z "$iloop" ] || [ -z "$tloop" ]; then
                fail "p$p: cannot attach image and target read-only"
                continue
        fi
        if [ $p = 1 ] || [ $V4_MOUNTS = 1 ]; then
                if flash_mount "$d/mi$p" -t xfs -o ro,nouuid "$iloop" 2>"$WORK/err" &&
                        flash_mount "$d/mt$p" -t xfs -o ro,nouuid "$tloop" 2>>"$WORK/err"; then
                        compare_trees "p$p: check (2), kernel mounts" "$d/mi$p" "$d/mt$p"
                        flash_umount "$d/mt$p"
                        flash_umount "$d/mi$p"
                else
                        fail "p$p: check (2): cannot mount image or target read-only: $(head -c 300 "$WORK/err")"
                fi
        else
                if xfs_files "$iloop" "$d/fi$p" 2>"$WORK/err" && xfs_files "$tloop" "$d/ft$p" 2>>"$WORK/err"; then
                        n=$(find "$d/fi$p" -type f | wc -l)
                        if [ "$n" -gt 10 ] && diff -r "$d/fi$p" "$d/ft$p" >"$WORK/diff" 2>&1; then
                                pass "p$p: check (2), read through xfs_db block maps: $n files identical"
                        else
                                fail "p$p: check (2): files read through xfs_db differ ($n files):"
                                show "$WORK/diff"
                        fi
                else
                        fail "p$p: check (2): cannot read the files with xfs_db: $(head -c 300 "$WORK/err")"
                fi
        fi
        detach "$tloop"
        detach "$iloop"
done

# (3) byte for byte.
for f in outside need; do
        [ $f = outside ] && what="outside the XFS partitions" || what="blocks xfs_db does not list free"
        if fc compare "$img" "$tgt" "$d/$f" "check (3): $what" >"$WORK/out"; then
                pass "$(cat "$WORK/out")"
        else
                fail "$(cat "$WORK/out")"
        fi
done
echo "    ($L took $((SECONDS - t0)) s)"
finish
