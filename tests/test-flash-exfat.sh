#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The flash invariant (SPEC §1) for exFAT (issue 12), with the real bmaptool:
# for each layout, build a partitioned image over random bytes, make an
# exFAT partition with mkfs.exfat and fill it through exfat-fuse (files,
# directories, interleaved appends that fragment, deleted and shrunk files),
# scan it, flash it with 'bmaptool copy' onto a loop device full of other
# random bytes, and check on the target that
#   (1) fsck.exfat -n finds it clean,
#   (2) every file is as in the image (both read back through exfat-fuse
#       -o ro: SHA-256, size, mtime, mode),
#   (3) every byte outside the partitions, everything before the cluster
#       heap and every cluster the allocation bitmap marks is identical.
# Also, without flashing: each of those bytes lies in the bmap (no data
# loss); and EXACTNESS: the bytes the bmap maps inside the partition
# against what the volume uses by dump.exfat (used clusters, the count
# checked against the bitmap read here) plus the structures before the
# cluster heap. Both are printed; the map must hold all of it and exceed it
# by at most 5%.
#
# Layouts: mbr-exfat-4k (4 KiB clusters), gpt-exfat-128k (128 KiB
# clusters), gpt4k-exfat (4096-byte sectors: the image is partitioned and
# formatted through loop devices with 4096-byte logical blocks).
# FLASH_LAYOUTS="a b" runs only those. Needs loop devices and FUSE (exit 77
# without them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

LAYOUTS=${FLASH_LAYOUTS:-"mbr-exfat-4k gpt-exfat-128k gpt4k-exfat"}
START=$SECONDS

need_tools bmaptool python3 openssl losetup sfdisk mkfs.exfat fsck.exfat dump.exfat mount.exfat-fuse
need_loop
if [ ! -c /dev/fuse ]; then
        echo "no /dev/fuse: exfat-fuse cannot mount: skipping"
        exit 77
fi

# exfat_used PART_FILE_OR_DEVICE OFFSET: what the volume uses, read here
# on its own from the boot sector and the bitmap (its chain followed in the
# FAT): "START END LABEL" lines shifted by OFFSET, and a summary line.
EXFAT_USED=$WORK/exfat-used.py
cat >"$EXFAT_USED" <<'PYEOF'
import struct, sys
dev, offset = sys.argv[1], int(sys.argv[2])
with open(dev, "rb") as f:
    b = f.read(512)
    ss, cs = b[108], b[108] + b[109]
    fat_off, heap, clusters, root = struct.unpack_from("<I", b, 80)[0] << ss, struct.unpack_from("<I", b, 88)[0] << ss, \
        struct.unpack_from("<I", b, 92)[0], struct.unpack_from("<I", b, 96)[0]
    def cl(n):
        return heap + ((n - 2) << cs)
    def fat(n):
        f.seek(fat_off + 4 * n)
        return struct.unpack("<I", f.read(4))[0]
    def chain(n, count):
        out = []
        while len(out) < count:
            out.append(n)
            nxt = fat(n)
            n = n + 1 if nxt == 0 else nxt
        return out
    f.seek(cl(root))
    d = f.read(1 << cs)
    e = next(d[i:i + 32] for i in range(0, len(d), 32) if d[i] == 0x81)
    first, length = struct.unpack_from("<I", e, 20)[0], struct.unpack_from("<Q", e, 24)[0]
    bm = b""
    for c in chain(first, -(-length >> cs) if length else 0):
        f.seek(cl(c))
        bm += f.read(1 << cs)
used, n = [(0, heap, "boot regions, FATs, up to the cluster heap")], 0
for i in range(clusters):
    if bm[i // 8] >> (i % 8) & 1:
        n += 1
        a = cl(i + 2)
        if used[-1][1] == a and used[-1][2] == "clusters":
            used[-1] = (used[-1][0], a + (1 << cs), "clusters")
        else:
            used.append((a, a + (1 << cs), "clusters"))
print("# heap %d cluster_bytes %d clusters %d used_clusters %d need %d" % (heap, 1 << cs, clusters, n, heap + (n << cs)))
for a, z, lab in used:
    print(a + offset, z + offset, "exfat " + lab)
PYEOF

# dump_used DEVICE: used clusters by dump.exfat (total - free).
dump_used() {
        dump.exfat "$1" 2>/dev/null | awk -F: '/^Total Clusters/ { t = $2 } /^Free Clusters/ { f = $2 }
                END { if (t == "" || f == "") exit 1; print t - f }'
}

# dirty_clear DEVICE: the volume's VolumeFlags has no dirty bit (exfat-fuse
# clears it when it lets go of the volume).
dirty_clear() {
        local f
        f=$(od -An -tu1 -j106 -N1 "$1" | tr -d ' ') || return 1
        [ $((f & 2)) = 0 ]
}

# fill DIR SEED: files, directories, fragmentation, deletions.
fill() {
        local m=$1 s=$2 i
        mkdir -p "$m/dir/sub" "$m/empty" "$m/gone-dir"
        garbage "$m/one-byte" 1 "$s-1"
        garbage "$m/dir/a.bin" 300000 "$s-a"
        garbage "$m/dir/sub/b.bin" 5000000 "$s-b"
        garbage "$m/odd-size" 131073 "$s-odd"
        : >"$m/empty-file"
        # Two files grown in turns: their clusters interleave (FAT chains).
        for i in 1 2 3 4 5 6; do
                garbage "$WORK/piece" 70000 "$s-frag-$i"
                cat "$WORK/piece" >>"$m/frag1"
                sync "$m/frag1"
                cat "$WORK/piece" "$WORK/piece" >>"$m/dir/frag2"
                sync "$m/dir/frag2"
        done
        for i in $(seq 1 40); do garbage "$m/dir/sub/small$i" $((i * 997)) "$s-s$i"; done
        # Deleted: a large file, a directory of files, most of another.
        garbage "$m/deleted.bin" 9000000 "$s-del"
        for i in 1 2 3; do garbage "$m/gone-dir/f$i" 400000 "$s-g$i"; done
        sync "$m/deleted.bin"
        rm -f "$m/deleted.bin"
        rm -rf "$m/gone-dir"
        garbage "$m/shrunk" 2000000 "$s-shr"
        sync "$m/shrunk"
        truncate -s 100000 "$m/shrunk"
        touch -d @1600000000 "$m/dir/a.bin"
}

# fuse_mount DIR DEVICE [ro]: an exfat-fuse mount, unmounted by the trap.
fuse_mount() {
        flash_mount "$1" -t exfat-fuse -o "${3:-rw}" "$2" 2>"$WORK/err"
}

# let_go DIR DEVICE: unmounts and waits until the volume is clean on disk.
let_go() {
        flash_umount "$1" || return 1
        if ! wait_until dirty_clear "$2"; then
                fail "$L: exfat-fuse left the volume marked dirty after unmounting"
                return 1
        fi
}

# ---------------------------------------------------------------- one layout

run_layout() {
        L=$1
        local img=$WORK/$L.img tgt=$WORK/$L.target bmap=$WORK/$L.bmap d=$WORK/$L
        local size sector=512 cluster table start psize lo
        mkdir -p "$d"
        case $L in
        mbr-exfat-4k) size=$((100 << 20)) table=dos cluster=4K ;;
        gpt-exfat-128k) size=$((160 << 20)) table=gpt cluster=128K ;;
        gpt4k-exfat) size=$((128 << 20)) table=gpt cluster=32K sector=4096 ;;
        *) fail "unknown layout $L"; return ;;
        esac
        echo "--- $L"

        # Random bytes everywhere first: free clusters and gaps hold stale
        # data, as on a used card.
        garbage "$img" "$size" "image-$L"
        attach -b "$sector" "$img" || { fail "$L: cannot attach the image"; return; }
        lo=$ATTACHED
        # Partition 1 is exFAT, leaving a gap before it and space after it.
        local s1=$((2 << 20)) l1=$((size - (6 << 20)))
        if [ "$table" = dos ]; then
                printf 'label: dos\nstart=%d, size=%d, type=7\n' $((s1 / sector)) $((l1 / sector)) | sfdisk -q "$lo"
        else
                printf 'label: gpt\nstart=%d, size=%d, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' \
                        $((s1 / sector)) $((l1 / sector)) | sfdisk -q "$lo"
        fi
        detach "$lo"
        start=$s1 psize=$l1

        attach -b "$sector" -o "$start" --sizelimit "$psize" "$img" || { fail "$L: cannot attach the partition"; return; }
        lo=$ATTACHED
        if ! mkfs.exfat -c "$cluster" "$lo" >"$d/mkfs" 2>&1; then
                fail "$L: mkfs.exfat fails: $(tail -2 "$d/mkfs")"
                detach "$lo"
                return
        fi
        if ! fuse_mount "$d/mnt" "$lo"; then
                fail "$L: exfat-fuse cannot mount the image's partition: $(head -c 300 "$WORK/err")"
                detach "$lo"
                return
        fi
        fill "$d/mnt" "$L"
        # Mounted, the volume is marked dirty: its bitmap may lag behind the
        # files, so the whole partition is mapped.
        sync
        run_cmd "$BMAPSCAN" scan --no-checksum -o "$d/dirty.bmap" "$img"
        if [ "$RC" = 0 ] && grep -q "exfat: the volume is marked dirty.*: fully mapped" "$WORK/err" &&
                [ "$(fc mapped-in "$d/dirty.bmap" "$start" $((start + psize)))" = "$psize" ]; then
                pass "$L: while mounted: dirty, the partition mapped whole"
        else
                fail "$L: while mounted (dirty): exit $RC, $(grep exfat "$WORK/err")"
        fi
        let_go "$d/mnt" "$lo" || { detach "$lo"; return; }
        if fsck.exfat -n "$lo" >"$d/fsck-image" 2>&1; then
                pass "$L: the image's exFAT is clean ($(grep -o 'directories.*' "$d/fsck-image"))"
        else
                fail "$L: the image's exFAT is not clean itself:"
                show "$d/fsck-image"
        fi
        [ "$(od -An -tu1 -j108 -N1 "$lo" | tr -d ' ')" = $((sector == 4096 ? 12 : 9)) ] &&
                pass "$L: $sector-byte sectors" || fail "$L: the volume's sectors are not $sector bytes"
        python3 "$EXFAT_USED" "$lo" "$start" >"$d/need"
        local dused
        dused=$(dump_used "$lo") || dused=-1
        fuse_mount "$d/mnt" "$lo" ro && fc tree-list "$d/mnt" restored >"$d/list-image"
        flash_umount "$d/mnt"
        detach "$lo"

        # The count read here agrees with the filesystem's own.
        read -r _ _ heap _ cbytes _ clusters _ nused _ need <<<"$(head -1 "$d/need")"
        if [ "$nused" = "$dused" ]; then
                pass "$L: the bitmap marks $nused of $clusters clusters of $cbytes bytes, as dump.exfat counts"
        else
                fail "$L: the bitmap read here marks $nused clusters, dump.exfat counts $dused"
        fi

        run_cmd "$BMAPSCAN" scan -o "$bmap" "$img"
        expect "$L: scan" 0
        if grep -q "exfat: allocation bitmap, ${cluster%K} KiB clusters, $sector-byte sectors" "$WORK/err"; then
                pass "$L: report: $(grep -o 'exfat: allocation.*' "$WORK/err")"
        else
                fail "$L: report does not say the bitmap decided: $(cat "$WORK/err")"
        fi

        # What must be on the target: the filesystem's used bytes and
        # everything outside the partition.
        cp "$d/need" "$d/keep"
        printf '%d %d outside\n' 0 "$start" >>"$d/keep"
        printf '%d %d outside\n' $((start + psize)) "$size" >>"$d/keep"
        if fc uncovered "$d/keep" "$bmap" >"$d/unc"; then
                pass "$L: $(cat "$d/unc")"
        else
                fail "$L: data loss: $(cat "$d/unc")"
        fi
        local mapped
        mapped=$(fc mapped-in "$bmap" "$start" $((start + psize)))
        local limit=$((need + need / 20))
        echo "    exactness $L: mapped $mapped bytes in the exFAT partition; the volume uses $need" \
                "($heap before the cluster heap + $dused used clusters of $cbytes by dump.exfat): +$(pct "$mapped" "$need")%"
        if [ "$mapped" -ge "$need" ] && [ "$mapped" -le "$limit" ]; then
                pass "$L: exactness: mapped $mapped within 5% of $need"
        else
                fail "$L: exactness: mapped $mapped, the volume uses $need (limit $limit)"
        fi

        # Flash onto garbage through a loop device.
        garbage "$tgt" "$size" "target-$L"
        attach "$tgt" || { fail "$L: cannot attach the target"; return; }
        lo=$ATTACHED
        if bmaptool -q copy --bmap "$bmap" "$img" "$lo" 2>"$d/bt.err"; then
                pass "$L: bmaptool copy verified every range"
        else
                fail "$L: bmaptool copy fails: $(head -3 "$d/bt.err")"
        fi
        detach "$lo"

        # (3) bytes, (1) fsck, (2) files.
        if fc compare "$img" "$tgt" "$d/keep" "$L: used and outside bytes" >"$d/cmp"; then
                pass "$(cat "$d/cmp")"
        else
                fail "$(cat "$d/cmp")"
        fi
        attach -r -b "$sector" -o "$start" --sizelimit "$psize" "$tgt" || { fail "$L: cannot attach the target's partition"; return; }
        lo=$ATTACHED
        if fsck.exfat -n "$lo" >"$d/fsck-target" 2>&1; then
                pass "$L: the target's exFAT is clean"
        else
                fail "$L: fsck.exfat -n on the target:"
                show "$d/fsck-target"
        fi
        if fuse_mount "$d/mnt" "$lo" ro; then
                fc tree-list "$d/mnt" restored >"$d/list-target"
                flash_umount "$d/mnt"
                if diff "$d/list-image" "$d/list-target" >"$d/diff"; then
                        pass "$L: $(wc -l <"$d/list-image") files and directories identical (SHA-256, size, mtime, mode)"
                else
                        fail "$L: files differ between image and target:"
                        show "$d/diff"
                fi
        else
                fail "$L: exfat-fuse cannot mount the target: $(head -c 300 "$WORK/err")"
        fi
        detach "$lo"
        rm -f "$img" "$tgt"
}

for layout in $LAYOUTS; do
        run_layout "$layout"
done
echo "$((SECONDS - START)) s"
finish
