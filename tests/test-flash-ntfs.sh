#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The flash invariant (SPEC §1) for NTFS (issue 12), with the real bmaptool:
# a GPT image with an NTFS partition (mkfs.ntfs -Q) filled through ntfs-3g
# (a FUSE mount): directories, files small enough to stay in their MFT
# record, a sparse file, files deleted again, and a large file written
# into the holes they left (fragmented: the test checks it is); and a
# partition of random bytes. scan it, flash it with 'bmaptool copy' onto a
# loop device over random garbage, and check on the target that
#   (1) ntfsfix -n finds the volume clean,
#   (2) every file is identical, read back through 'ntfs-3g -o ro' from
#       image and target (contents, sizes, times),
#   (3) every byte outside the NTFS partition, and every cluster $Bitmap
#       marks used (as ntfscat reads it) plus the sectors past the last
#       cluster (the backup boot sector), is identical,
#   (4) bmaptool verified every range's checksum.
# Also, without flashing: those bytes all lie in the bmap (no data loss);
# and EXACTNESS: the bytes the bmap maps inside the partition against
# ntfscluster's used count (clusters minus free clusters, by ntfsinfo and
# ntfscluster) plus the sectors past the last cluster, both printed:
# fewer fails, more than 5% over fails.
#
# Layouts: ntfs-4k and ntfs-64k (the cluster size); FLASH_LAYOUTS="a b"
# runs only those. Needs loop devices and FUSE (exit 77 without them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

LAYOUTS=${FLASH_LAYOUTS:-"ntfs-4k ntfs-64k"}
MIB=$((1024 * 1024))

need_tools bmaptool python3 openssl losetup sfdisk mkfs.ntfs ntfs-3g ntfsfix ntfsinfo ntfscluster ntfscat
need_loop
if [ ! -e /dev/fuse ]; then
        echo "no /dev/fuse: ntfs-3g cannot mount: skipping"
        exit 77
fi

# ntfs_need PART_FILE OFFSET: the byte ranges (absolute, OFFSET added) the
# volume in PART_FILE uses by ntfs-3g's reading of $Bitmap, and the
# sectors past its last cluster up to the backup boot sector; prints
# "# clusters N cluster_size C used U tail T" first.
ntfs_need() {
        ntfscat -f -i 6 "$1" >"$d/bitmap" 2>"$WORK/err" || { echo "ntfscat failed: $(head -c 200 "$WORK/err")" >&2; return 1; }
        python3 - "$1" "$d/bitmap" "$2" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read(512)
bits = open(sys.argv[2], 'rb').read()
off = int(sys.argv[3])
bps = struct.unpack_from('<H', b, 11)[0]
spc = b[13] if b[13] <= 0x80 else 1 << (256 - b[13])
cs = bps * spc
total = struct.unpack_from('<Q', b, 0x28)[0]
clusters = total // spc
out, used, run = [], 0, None
for c in range(clusters + 1):
    on = c < clusters and bits[c // 8] >> (c % 8) & 1
    used += bool(on)
    if on and run is None:
        run = c
    elif not on and run is not None:
        out.append((run * cs, c * cs, 'used clusters'))
        run = None
tail = (total + 1) * bps - clusters * cs
print('# clusters %d cluster_size %d used %d tail %d' % (clusters, cs, used, tail))
for a, e, lab in out:
    print(a + off, e + off, lab)
print(clusters * cs + off, (total + 1) * bps + off, 'past the last cluster (backup boot sector)')
print(off, off + 512, 'boot sector')
PY
}

# fill DIR: what ntfs-3g writes: a tree, small (resident) files, a sparse
# file, 24 interleaved 1 MiB files of which every other one is deleted
# again, then a large file that can only go into their holes.
fill() {
        local m=$1 i
        mkdir -p "$m/dir/sub" "$m/empty-dir"
        for i in $(seq 1 40); do printf 'small file %d\n' "$i" >"$m/dir/s$i.txt"; done
        "$GEN_FILE" "$m/dir/sub/medium" 700K data "$SEED" >/dev/null
        "$GEN_FILE" "$m/dir/odd" 123457 data "$((SEED + 1))" >/dev/null
        truncate -s 6M "$m/sparse"
        "$GEN_FILE" "$d/piece" 256K data "$((SEED + 2))" >/dev/null
        dd if="$d/piece" of="$m/sparse" bs=64K seek=40 conv=notrunc status=none
        for i in $(seq 1 24); do "$GEN_FILE" "$m/f$i" 1M data "$((SEED + 10 + i))" >/dev/null; done
        for i in $(seq 2 2 24); do rm "$m/f$i"; done
        rm "$m/dir/s7.txt" "$m/dir/s8.txt"
        # Bigger than what is left past the last file: it fills the holes.
        local free
        free=$(df -B1 --output=avail "$m" | tail -1)
        "$GEN_FILE" "$m/big" "$((free - 6 * MIB))" data "$((SEED + 3))" >/dev/null
        sync
}

one_layout() {
        L=$1
        local cs t0=$SECONDS
        case $L in
        ntfs-4k) cs=4096 ;;
        ntfs-64k) cs=65536 ;;
        *) fail "unknown layout $L"; return ;;
        esac
        echo "== $L"
        d=$WORK/$L
        mkdir -p "$d"
        SEED=$((${FLASH_SEED:-1} * 100 + cs / 4096))
        local img=$d/image.img p1start=$MIB p1size=$((40 * MIB)) p2size=$((4 * MIB))
        local size=$((p1start + p1size + p2size + 2 * MIB))
        garbage "$img" "$size" "$L:image:$SEED"
        # The partitions' contents start as garbage too: mkfs.ntfs -Q
        # leaves free clusters as they were, as on a reused disk.
        printf 'label: gpt\nstart=%d, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\nsize=%d, type=linux\n' \
                $((p1start / 512)) $((p1size / 512)) $((p2size / 512)) | sfdisk -q "$img" >/dev/null

        if ! attach -o "$p1start" --sizelimit "$p1size" "$img"; then
                fail "$L: cannot attach the NTFS partition"
                return
        fi
        local loop=$ATTACHED
        if ! mkfs.ntfs -Q -F -c "$cs" -p $((p1start / 512)) -H 64 -S 32 "$loop" >"$d/mkfs.log" 2>&1; then
                fail "$L: mkfs.ntfs fails: $(tail -c 300 "$d/mkfs.log")"
                detach "$loop"
                return
        fi
        if ! flash_mount "$d/mnt" -t ntfs-3g "$loop" 2>"$WORK/err"; then
                echo "ntfs-3g cannot mount here ($(head -c 200 "$WORK/err")): skipping"
                exit 77
        fi
        fill "$d/mnt"
        flash_umount "$d/mnt"
        local runs
        runs=$(ntfsinfo -f -v -F /big "$loop" 2>/dev/null | sed -n 's/^Total runs: \([0-9]*\).*/\1/p' | head -1)
        if [ "${runs:-0}" -gt 1 ]; then
                pass "$L: the large file is fragmented ($runs runs)"
        else
                fail "$L: the large file is not fragmented (${runs:-?} runs): the test would not show it"
        fi
        if ntfsfix -n "$loop" >"$d/fix-image" 2>&1; then
                pass "$L: ntfsfix -n finds the image's volume clean"
        else
                fail "$L: the image's volume is not clean itself: $(tail -c 300 "$d/fix-image")"
        fi
        local vol_clusters free_clusters
        vol_clusters=$(ntfsinfo -f -m "$loop" 2>/dev/null | awk -F: '/Volume Size in Clusters/ {gsub(/ /, "", $2); print $2}')
        free_clusters=$(ntfscluster -f --info "$loop" 2>/dev/null | awk -F: '/clusters of free space/ {gsub(/ /, "", $2); print $2}')
        detach "$loop"
        extract "$img" "$p1start" "$p1size" "$d/p1"
        if ! ntfs_need "$d/p1" "$p1start" >"$d/need"; then
                fail "$L: cannot read \$Bitmap with ntfscat"
                return
        fi
        rm -f "$d/p1"
        fc complement "$size" <(echo "$p1start $((p1start + p1size))") "outside the NTFS partition" >"$d/outside"

        # The scan.
        run_cmd "$BMAPSCAN" scan --json -o "$d/bmap" "$img"
        if [ "$RC" != 0 ]; then
                fail "$L: bmapscan scan exits $RC: $(head -c 400 "$WORK/err")"
                return
        fi
        cp "$WORK/out" "$d/json"
        local how
        how=$(fc json-parts "$d/json" | awk '$1 == "part" && $2 == 1 {for (i = 9; i <= NF; i++) printf "%s ", $i}')
        if grep -q 'cluster bitmap' <<<"$how"; then
                pass "$L: scan reads the NTFS partition: $how"
        else
                fail "$L: scan does not read the NTFS partition by its bitmap: $how"
        fi
        cat "$d/need" "$d/outside" >"$d/all-need"
        if fc uncovered "$d/all-need" "$d/bmap" >"$WORK/out"; then
                pass "$L: no data loss: $(cat "$WORK/out")"
        else
                fail "$L: DATA LOSS in the bmap itself: $(cat "$WORK/out")"
        fi

        # EXACTNESS against ntfscluster's count.
        local mapped used tail want
        mapped=$(fc mapped-in "$d/bmap" "$p1start" $((p1start + p1size)))
        read -r _ _ _ _ _ _ used _ tail <<<"$(head -1 "$d/need")"
        if [ -z "$vol_clusters" ] || [ -z "$free_clusters" ]; then
                fail "$L: no cluster counts from ntfsinfo/ntfscluster"
        else
                [ "$used" = $((vol_clusters - free_clusters)) ] &&
                        pass "$L: \$Bitmap by ntfscat: $used used clusters, as ntfscluster counts ($vol_clusters - $free_clusters free)" ||
                        fail "$L: \$Bitmap by ntfscat has $used used clusters, ntfscluster $((vol_clusters - free_clusters))"
                want=$(((vol_clusters - free_clusters) * cs + tail))
                echo "    exactness $L: ntfscluster says $((vol_clusters - free_clusters)) of $vol_clusters clusters of $cs bytes used = $((want - tail)) bytes, +$tail past the last cluster = $want; scan maps $mapped (+$(pct "$mapped" "$want")%)"
                if [ "$mapped" -lt "$want" ]; then
                        fail "$L: DATA LOSS: scan maps $mapped bytes of the partition, ntfscluster says $want are used"
                elif [ "$mapped" -gt $((want + want / 20)) ]; then
                        fail "$L: NOT EXACT: scan maps $mapped bytes, more than 5% over $want"
                else
                        pass "$L: exact within 5%: scan maps $mapped bytes, ntfscluster $want"
                fi
        fi

        # The flash onto garbage.
        local tgt=$d/target
        garbage "$tgt" "$size" "$L:target:$SEED"
        if ! attach "$tgt"; then
                fail "$L: cannot attach the target"
                return
        fi
        run_cmd bmaptool copy --bmap "$d/bmap" "$img" "$ATTACHED"
        detach "$ATTACHED"
        if [ "$RC" = 0 ]; then
                pass "$L: check (4): bmaptool copy verified every range checksum"
        else
                fail "$L: check (4): bmaptool copy exits $RC: $(grep -v ': info: ' "$WORK/err" | tail -n 4)"
                return
        fi

        # (1) and (2): image and target mounted read-only side by side.
        local iloop tloop
        attach -r -o "$p1start" --sizelimit "$p1size" "$img" && iloop=$ATTACHED
        attach -r -o "$p1start" --sizelimit "$p1size" "$tgt" && tloop=$ATTACHED
        if [ -z "${iloop:-}" ] || [ -z "${tloop:-}" ]; then
                fail "$L: cannot attach image and target read-only"
                return
        fi
        if ntfsfix -n "$tloop" >"$d/fix-target" 2>&1; then
                pass "$L: check (1): ntfsfix -n finds the target's volume clean"
        else
                fail "$L: check (1): ntfsfix -n on the target: $(tail -c 300 "$d/fix-target")"
        fi
        if flash_mount "$d/mi" -t ntfs-3g -o ro "$iloop" 2>"$WORK/err" &&
                flash_mount "$d/mt" -t ntfs-3g -o ro "$tloop" 2>>"$WORK/err"; then
                compare_trees "$L: check (2)" "$d/mi" "$d/mt"
                flash_umount "$d/mt"
                flash_umount "$d/mi"
        else
                fail "$L: check (2): cannot mount image or target read-only: $(head -c 300 "$WORK/err")"
        fi
        detach "$tloop"
        detach "$iloop"

        # (3) byte for byte.
        local f what
        for f in outside need; do
                [ $f = outside ] && what="outside the NTFS partition" || what="clusters \$Bitmap marks used, the boot sector and the backup boot sector"
                if fc compare "$img" "$tgt" "$d/$f" "$L: check (3): $what" >"$WORK/out"; then
                        pass "$(cat "$WORK/out")"
                else
                        fail "$(cat "$WORK/out")"
                fi
        done
        echo "    ($L took $((SECONDS - t0)) s)"
        rm -rf "$d"
}

for l in $LAYOUTS; do one_layout "$l"; done
finish
