#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The flash invariant (SPEC §1), with the real bmaptool: for every layout of
# scripts/mkimage.sh, scan the image, flash it with 'bmaptool copy' onto a
# loop device over random garbage, and check on the target that
#   (1) every filesystem passes its own checker (e2fsck -fn, fsck.fat -n, ...),
#   (2) every file, directory, symlink and their metadata are as in the image,
#   (3) every byte outside the filesystems' free space is the image's (tables,
#       gaps, bootloaders, unknown partitions, the used blocks as each
#       filesystem's own metadata lists them, journals to be replayed),
#   (4) bmaptool's own range-checksum verification passed.
# Also, without flashing: every byte of (3) is inside the bmap; the mapped
# bytes against what the filesystems' tools say is used (printed for every
# layout; over-mapping is reported, under-mapping fails); and 'bmapscan
# sparse' of an expanded copy keeps every mapped byte, zeroes the rest, and
# leaves a file that 'bmaptool create' maps exactly as scan did.
#
# FLASHER=bmapscan flashes a zstd-compressed copy with 'bmapscan copy'
# instead of bmaptool. FLASH_LAYOUTS="a b" runs only those layouts; FLASH_SEED picks the images'
# contents (default 1). Needs loop devices (exit 77 without them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

: "${SOURCE_ROOT:=$(cd "$(dirname "$0")/.." && pwd)}"
MKIMAGE=$SOURCE_ROOT/scripts/mkimage.sh
export PATH=$PATH:/usr/sbin:/sbin
export MTOOLS_SKIP_CHECK=1
SEED=${FLASH_SEED:-1}
LAYOUTS=${FLASH_LAYOUTS:-"gpt-esp-ext4-swap mbr-fat16-ext3-ext2 ext4-bigalloc ext4-metabg ext4-uninit ext4-recovery
gpt4k-ext4-fat32 fat12-floppy gpt-zeroed-primary gpt-lvm-random bare-unknown gpt-btrfs-slot"}
START=$SECONDS

need_tools bmaptool python3 openssl losetup sfdisk mke2fs e2fsck debugfs dumpe2fs mkfs.fat fsck.fat mcopy mdir blkid
need_loop

# ---------------------------------------------------------------- per filesystem
# Each check_KIND L N IPART TPART START SIZE appends the filesystem's used
# byte ranges (absolute in the image) to $d/need and its used byte count to
# $d/usedbytes-N, and runs checks (1) and (2) on the target.

check_ext() {
        local L=$1 N=$2 ip=$3 tp=$4 start=$5 size=$6 kind=$7 what="$1 p$2 ($7)"
        dumpe2fs "$ip" >"$d/dump-$N" 2>"$d/dump-$N.err" || { fail "$what: dumpe2fs on the image fails: $(head -c 300 "$d/dump-$N.err")"; return; }
        fc ext-used "$d/dump-$N" "$start" "p$N $kind: used blocks" >"$d/used-ranges-$N"
        local bc fb bs
        bc=$(sed -n 's/^Block count: *//p' "$d/dump-$N")
        fb=$(sed -n 's/^Free blocks: *//p' "$d/dump-$N")
        bs=$(sed -n 's/^Block size: *//p' "$d/dump-$N")
        echo $(((bc - fb) * bs)) >"$d/usedbytes-$N"
        local from_ranges
        from_ranges=$(sed -n 's/^# fs_bytes [0-9]* used_bytes //p' "$d/used-ranges-$N")
        if [ "$from_ranges" != $(((bc - fb) * bs)) ]; then
                fail "$what: the per-group free ranges of dumpe2fs give $from_ranges used bytes, its header $(((bc - fb) * bs)) (the image is inconsistent?)"
        fi
        cat "$d/used-ranges-$N" >>"$d/need"

        # (1) the checker, on the image first (it must pass there).
        local irc=0 trc=0
        e2fsck -fn "$ip" >"$d/fsck-i-$N" 2>&1 || irc=$?
        e2fsck -fn "$tp" >"$d/fsck-t-$N" 2>&1 || trc=$?
        if [ "$irc" != 0 ]; then
                fail "$what: the image's filesystem does not pass e2fsck -fn itself (exit $irc):"
                show "$d/fsck-i-$N"
        elif [ "$trc" != 0 ]; then
                fail "$what: check (1): e2fsck -fn on the target exits $trc:"
                grep -v '^Pass \|^e2fsck ' "$d/fsck-t-$N" >"$WORK/diff" || true
                show "$WORK/diff" 12
        else
                pass "$what: check (1): e2fsck -fn passes on the target"
        fi

        # (2) every file: rdump both sides, and the directory listings with
        # inode numbers (hard links), modes, owners, sizes and times.
        mkdir -p "$d/fi-$N" "$d/ft-$N"
        if ! timeout 120 debugfs -R "rdump / $d/fi-$N" "$ip" >"$d/rdump-i-$N" 2>&1; then
                fail "$what: debugfs rdump of the image fails: $(tail -c 300 "$d/rdump-i-$N")"
        elif ! timeout 120 debugfs -R "rdump / $d/ft-$N" "$tp" >"$d/rdump-t-$N" 2>&1 ||
                grep -qi 'error\|corrupt\|bad ' "$d/rdump-t-$N"; then
                fail "$what: check (2): debugfs rdump of the target fails:"
                show "$d/rdump-t-$N"
        else
                compare_trees "$what: check (2)" "$d/fi-$N" "$d/ft-$N"
        fi
        (cd "$d/fi-$N" && find . -type d -printf '%P\n') | sort | sed 's|^|ls -l /|' >"$d/ls-$N.cmds"
        debugfs -f "$d/ls-$N.cmds" "$ip" >"$d/ls-i-$N" 2>&1 || true
        debugfs -f "$d/ls-$N.cmds" "$tp" >"$d/ls-t-$N" 2>&1 || true
        if diff "$d/ls-i-$N" "$d/ls-t-$N" >"$WORK/diff"; then
                pass "$what: check (2): debugfs listings of all $(wc -l <"$d/ls-$N.cmds") directories identical (inodes, hard links, modes, owners, times)"
        else
                fail "$what: check (2): debugfs directory listings differ (< image, > target):"
                show "$WORK/diff"
        fi
        rm -rf "$d/fi-$N" "$d/ft-$N"

        # A journal to replay: the blocks it will write and the blocks its
        # bitmap copies mark used are not free. Replay both sides and check
        # the replayed filesystems agree on every used byte and every file.
        if dumpe2fs -h "$ip" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then
                cp --sparse=always "$ip" "$d/ri-$N"
                cp --sparse=always "$tp" "$d/rt-$N"
                local rirc=0 rtrc=0
                # A fixed clock: the replay stamps the superblock's write time.
                E2FSCK_TIME=1600000000 E2FSPROGS_FAKE_TIME=1600000000 \
                        e2fsck -E journal_only -y "$d/ri-$N" >"$d/replay-i-$N" 2>&1 || rirc=$?
                E2FSCK_TIME=1600000000 E2FSPROGS_FAKE_TIME=1600000000 \
                        e2fsck -E journal_only -y "$d/rt-$N" >"$d/replay-t-$N" 2>&1 || rtrc=$?
                if [ "$rirc" != "$rtrc" ]; then
                        fail "$what: journal replay: exit $rirc on the image, $rtrc on the target:"
                        show "$d/replay-t-$N"
                else
                        pass "$what: journal replay: same result on both sides (exit $rirc)"
                fi
                dumpe2fs "$d/ri-$N" >"$d/rdump-$N" 2>/dev/null || true
                fc ext-used "$d/rdump-$N" "$start" "p$N $kind: used after journal replay" >"$d/rused-ranges-$N"
                fc ext-used "$d/rdump-$N" 0 "used after journal replay" >"$d/rused-rel-$N"
                cat "$d/rused-ranges-$N" >>"$d/need"
                fc ext-used "$d/dump-$N" 0 "used before replay" >>"$d/rused-rel-$N"
                if fc compare "$d/ri-$N" "$d/rt-$N" "$d/rused-rel-$N" "$what: after journal replay, used bytes" >"$WORK/out"; then
                        pass "$(cat "$WORK/out")"
                else
                        fail "$(cat "$WORK/out")"
                fi
                mkdir -p "$d/fi-$N" "$d/ft-$N"
                debugfs -R "rdump / $d/fi-$N" "$d/ri-$N" >/dev/null 2>&1 || true
                debugfs -R "rdump / $d/ft-$N" "$d/rt-$N" >/dev/null 2>&1 || true
                compare_trees "$what: after journal replay, check (2)" "$d/fi-$N" "$d/ft-$N"
                rm -rf "$d/fi-$N" "$d/ft-$N" "$d/ri-$N" "$d/rt-$N"
                echo recovery >"$d/whole-ok-$N"
        fi
}

check_fat() {
        local L=$1 N=$2 ip=$3 tp=$4 start=$5 size=$6 what="$1 p$2 (vfat)"
        fc fat-used "$ip" "$start" "p$N vfat: used clusters and metadata" >"$d/used-ranges-$N"
        cat "$d/used-ranges-$N" >>"$d/need"
        local mine fsck_clusters
        mine=$(sed -n 's/^# clusters \([0-9]*\/[0-9]*\) .*/\1/p' "$d/used-ranges-$N")
        fsck.fat -n -v "$ip" >"$d/fsckv-$N" 2>&1 || true
        fsck_clusters=$(sed -n 's/.* files, \([0-9]*\/[0-9]*\) clusters$/\1/p' "$d/fsckv-$N" | tail -n 1)
        if [ "$mine" != "$fsck_clusters" ]; then
                fail "$what: the test's FAT reader counts $mine used clusters, fsck.fat -v $fsck_clusters: the used ranges below are not trustworthy"
        fi
        sed -n 's/^# .* used_bytes \([0-9]*\) .*/\1/p' "$d/used-ranges-$N" >"$d/usedbytes-$N"

        local irc=0 trc=0
        fsck.fat -n "$ip" >"$d/fsck-i-$N" 2>&1 || irc=$?
        fsck.fat -n "$tp" >"$d/fsck-t-$N" 2>&1 || trc=$?
        if [ "$irc" != 0 ]; then
                fail "$what: the image's filesystem does not pass fsck.fat -n itself (exit $irc):"
                show "$d/fsck-i-$N"
        elif [ "$trc" != 0 ]; then
                fail "$what: check (1): fsck.fat -n on the target exits $trc:"
                show "$d/fsck-t-$N" 12
        else
                pass "$what: check (1): fsck.fat -n passes on the target"
        fi

        # (2) mtools reads a FAT32 of fewer than 65525 clusters as FAT16:
        # give it a view that claims the sectors its FAT can describe.
        local vi=$ip vt=$tp
        case $(fc fat-view "$ip" "$d/vi-$N") in
        view)
                fc fat-view "$tp" "$d/vt-$N" >/dev/null 2>&1 || cp "$tp" "$d/vt-$N"
                vi=$d/vi-$N
                vt=$d/vt-$N
                ;;
        impossible*)
                fail "$what: check (2): mtools cannot read this FAT32 (too few clusters, and a FAT too small for a view)"
                return
                ;;
        esac
        mkdir -p "$d/fi-$N" "$d/ft-$N"
        if ! mcopy -s -m -n -i "$vi" ::/ "$d/fi-$N/" </dev/null >"$d/mcopy-i-$N" 2>&1; then
                fail "$what: mcopy from the image fails: $(head -c 300 "$d/mcopy-i-$N")"
        elif ! mcopy -s -m -n -i "$vt" ::/ "$d/ft-$N/" </dev/null >"$d/mcopy-t-$N" 2>&1; then
                fail "$what: check (2): mcopy from the target fails:"
                show "$d/mcopy-t-$N"
        else
                compare_trees "$what: check (2)" "$d/fi-$N" "$d/ft-$N"
        fi
        mdir -/ -a -i "$vi" ::/ >"$d/mdir-i-$N" 2>&1 || true
        mdir -/ -a -i "$vt" ::/ >"$d/mdir-t-$N" 2>&1 || true
        if diff "$d/mdir-i-$N" "$d/mdir-t-$N" >"$WORK/diff"; then
                pass "$what: check (2): mdir listings identical (short and long names, attributes, sizes, dates, label, serial)"
        else
                fail "$what: check (2): mdir listings differ (< image, > target):"
                show "$WORK/diff"
        fi
        rm -rf "$d/fi-$N" "$d/ft-$N" "$d/vi-$N" "$d/vt-$N"
}

check_swap() {
        local L=$1 N=$2 ip=$3 tp=$4 start=$5 size=$6 what="$1 p$2 (swap)"
        local page=4096
        echo "$start $((start + page)) p$N swap: header page" >>"$d/need"
        echo "$page" >"$d/usedbytes-$N"
        blkid -p -o export "$ip" | grep -v '^DEVNAME=' >"$d/blkid-i-$N" || true
        blkid -p -o export "$tp" | grep -v '^DEVNAME=' >"$d/blkid-t-$N" || true
        if ! grep -q '^TYPE=swap$' "$d/blkid-i-$N"; then
                fail "$what: blkid does not see swap in the image: $(tr '\n' ' ' <"$d/blkid-i-$N")"
        elif diff "$d/blkid-i-$N" "$d/blkid-t-$N" >"$WORK/diff"; then
                pass "$what: check (1): the target's swap header is intact ($(grep -E '^(UUID|LABEL|VERSION)=' "$d/blkid-t-$N" | tr '\n' ' '))"
        else
                fail "$what: check (1): the swap header differs on the target:"
                show "$WORK/diff"
        fi
}

check_btrfs() {
        local L=$1 N=$2 ip=$3 tp=$4 start=$5 size=$6 what="$1 p$2 (btrfs)"
        # Without a btrfs reader of our own: the first MiB (never allocated,
        # holds the superblock) and the superblock mirror must be identical;
        # the rest is judged by btrfs check and btrfs restore.
        echo "$start $((start + 1048576)) p$N btrfs: first MiB and superblock" >>"$d/need"
        if [ "$size" -gt $((64 * 1048576 + 4096)) ]; then
                echo "$((start + 64 * 1048576)) $((start + 64 * 1048576 + 4096)) p$N btrfs: superblock mirror" >>"$d/need"
        fi
        echo "" >"$d/usedbytes-$N"
        # For the report: the device space its chunks take (an upper bound
        # of what it uses), from its dev tree.
        btrfs inspect-internal dump-tree -t dev "$ip" 2>/dev/null |
                awk -v s="$start" '/DEV_EXTENT/ {p = $6; sub(/\)/, "", p)} / length / && p != "" {print s + p, s + p + $NF, "btrfs dev extent"; p = ""}' \
                        >"$d/btrfs-extents-$N" || true
        awk '{t += $2 - $1; n++} END {print t + 1048576, n + 0}' "$d/btrfs-extents-$N" >"$d/btrfs-chunks-$N"
        cat "$d/btrfs-extents-$N" >>"$d/ideal-extra"
        if ! command -v btrfs >/dev/null; then
                echo "skip $what: btrfs-progs is not installed: checks (1) and (2) not run"
                return
        fi
        local irc=0 trc=0
        btrfs check --readonly "$ip" >"$d/fsck-i-$N" 2>&1 || irc=$?
        btrfs check --readonly "$tp" >"$d/fsck-t-$N" 2>&1 || trc=$?
        if [ "$irc" != 0 ]; then
                fail "$what: the image's filesystem does not pass btrfs check itself (exit $irc):"
                show "$d/fsck-i-$N"
        elif [ "$trc" != 0 ]; then
                fail "$what: check (1): btrfs check --readonly on the target exits $trc:"
                show "$d/fsck-t-$N" 12
        else
                pass "$what: check (1): btrfs check --readonly passes on the target"
        fi
        mkdir -p "$d/fi-$N" "$d/ft-$N"
        if ! btrfs restore -x -m -S "$ip" "$d/fi-$N" >"$d/restore-i-$N" 2>&1; then
                fail "$what: btrfs restore from the image fails: $(tail -c 300 "$d/restore-i-$N")"
        elif ! btrfs restore -x -m -S "$tp" "$d/ft-$N" >"$d/restore-t-$N" 2>&1; then
                fail "$what: check (2): btrfs restore from the target fails:"
                show "$d/restore-t-$N"
        else
                compare_trees "$what: check (2)" "$d/fi-$N" "$d/ft-$N" nodirtime
        fi
        rm -rf "$d/fi-$N" "$d/ft-$N"
}

# ---------------------------------------------------------------- per layout

# json_part START SIZE: the scan report's line for that partition.
json_part() {
        awk -v s="$1" -v z="$2" '$1 == "part" && $3 == s && $4 == z && $5 == 0' "$d/parts"
}

check_layout() {
        local L=$1 t0=$SECONDS
        d=$WORK/$L
        mkdir -p "$d"
        echo "=== $L"
        local rc=0
        MKIMAGE_MANIFEST=$d/manifest bash "$MKIMAGE" "$L" "$d/img" "$SEED" >"$d/mkimage.log" 2>&1 || rc=$?
        if [ "$rc" = 77 ]; then
                echo "skip $L: $(tail -n 1 "$d/mkimage.log")"
                rm -rf "$d"
                return
        elif [ "$rc" != 0 ]; then
                fail "$L: mkimage.sh exits $rc: $(tail -c 600 "$d/mkimage.log")"
                rm -rf "$d"
                return
        fi
        local img=$d/img size sector table
        read -r _ size sector table < <(grep '^image ' "$d/manifest")

        # The scan, with checksums, and its JSON report.
        run_cmd "$BMAPSCAN" scan --json "$img" -o "$d/img.bmap"
        if [ "$RC" != 0 ]; then
                fail "$L: bmapscan scan --json exits $RC: $(head -c 600 "$WORK/err")"
                rm -rf "$d"
                return
        fi
        pass "$L: bmapscan scan --json -o exits 0"
        cp "$WORK/out" "$d/report.json"
        cp "$WORK/err" "$d/report.txt"
        if ! fc json-parts "$d/report.json" >"$d/parts" 2>"$WORK/err"; then
                fail "$L: the --json report does not parse: $(head -c 300 "$WORK/err"); stdout: $(head -c 300 "$d/report.json")"
                rm -rf "$d"
                return
        fi
        if [ "${FLASH_MUTANT:-}" = holes ]; then
                # Self-test of this test: scan's bmap replaced by the hole-based
                # bmap of a copy made sparse by cp, the flaw bmapscan exists to
                # fix (zero-filled used blocks are left out): checks must fail.
                echo "    MUTANT: the bmap is bmaptool create's of a cp --sparse=always copy"
                cp --sparse=always "$img" "$d/mutant.img"
                bmaptool create -o "$d/img.bmap" "$d/mutant.img" 2>/dev/null
                rm -f "$d/mutant.img"
        fi
        fc bmap-ranges "$d/img.bmap" >"$d/bmap-ranges"

        # The layout the scan found is the one built.
        local jt
        jt=$(awk '$1 == "table" {print $2, $3}' "$d/parts")
        if [ "$jt" = "$table $sector" ]; then
                pass "$L: scan finds the $table table with $sector-byte sectors"
        else
                fail "$L: scan finds table '$jt', built '$table $sector'; scan says:"
                show "$d/report.txt" 12
        fi

        # Ground truth, from the filesystems' own tools: $d/need lists every
        # byte that must reach the target.
        : >"$d/need"
        : >"$d/fsparts"
        : >"$d/ideal-extra"
        local kind n start psize
        local -a fsl=()
        while read -r _ n start psize kind _; do
                [ "$kind" != extended ] || continue
                local jp
                jp=$(json_part "$start" "$psize")
                if [ -z "$jp" ]; then
                        fail "$L p$n ($kind): scan has no partition at byte $start of $psize bytes"
                        jp="part $n $start $psize 0 0 0 - NOTFOUND"
                fi
                echo "$jp" >"$d/jpart-$n"
                local jfs jprobed
                jfs=$(awk '{print $8}' <<<"$jp")
                jprobed=$(awk '{print $6}' <<<"$jp")
                case $kind in
                ext2 | ext3 | ext4 | vfat | swap | btrfs)
                        echo "$start $((start + psize))" >>"$d/fsparts"
                        fsl+=("$n $start $psize $kind")
                        if [ "$jfs" = "$kind" ]; then
                                pass "$L p$n: scan says $kind"
                        else
                                fail "$L p$n: scan says filesystem '$jfs', built $kind"
                        fi
                        ;;
                lvm | raw)
                        echo "$start $((start + psize)) p$n $kind: not a filesystem" >>"$d/need"
                        ;;
                esac
        done < <(grep '^part ' "$d/manifest")
        fc complement "$size" "$d/fsparts" "outside the filesystems (tables, gaps, bootloaders, unpartitioned space)" >"$d/outside"
        cat "$d/outside" >>"$d/need"

        # The flash: a loop device over garbage, bmaptool copy onto it.
        local tgt=$d/target loop
        garbage "$tgt" "$size" "$L:$SEED"
        if attach "$tgt"; then
                loop=$ATTACHED
        else
                fail "$L: cannot attach a loop device to the target"
                rm -rf "$d"
                return
        fi
        if [ "${FLASHER:-bmaptool}" = bmapscan ]; then
                # Our own flasher, from a compressed image: the decoder and
                # the pipeline face the same invariant.
                zstd -q -f -T2 "$img" -o "$d/img.zst"
                run_cmd "$BMAPSCAN" -q copy --bmap "$d/img.bmap" "$d/img.zst" "$loop"
                rm -f "$d/img.zst"
        else
                run_cmd bmaptool copy --bmap "$d/img.bmap" "$img" "$loop"
        fi
        detach "$loop"
        if [ "$RC" = 0 ]; then
                pass "$L: check (4): ${FLASHER:-bmaptool} copy verified every range checksum"
        else
                fail "$L: check (4): ${FLASHER:-bmaptool} copy exits $RC: $(grep -v ': info: ' "$WORK/err" | tail -n 4)"
        fi

        # Per filesystem: used ranges, checks (1) and (2).
        local entry
        for entry in "${fsl[@]}"; do
                read -r n start psize kind <<<"$entry"
                local ip=$d/pi-$n tp=$d/pt-$n
                if [ "$start" = 0 ] && [ "$psize" = "$size" ]; then
                        ip=$img
                        tp=$tgt
                else
                        extract "$img" "$start" "$psize" "$ip"
                        extract "$tgt" "$start" "$psize" "$tp"
                fi
                case $kind in
                ext*) check_ext "$L" "$n" "$ip" "$tp" "$start" "$psize" "$kind" ;;
                vfat) check_fat "$L" "$n" "$ip" "$tp" "$start" "$psize" ;;
                swap) check_swap "$L" "$n" "$ip" "$tp" "$start" "$psize" ;;
                btrfs) check_btrfs "$L" "$n" "$ip" "$tp" "$start" "$psize" ;;
                esac
                [ "$ip" = "$img" ] || rm -f "$ip" "$tp"
        done

        # (3) every needed byte, one region kind at a time; and, without
        # flashing, every needed byte inside the bmap (the data-loss check).
        if fc compare "$img" "$tgt" "$d/outside" "$L: check (3): outside the filesystems" >"$WORK/out"; then pass "$(cat "$WORK/out")"; else fail "$(cat "$WORK/out")"; fi
        while read -r n start psize kind _; do
                case $kind in extended) continue ;; esac
                grep " p$n " "$d/need" >"$d/need-$n" || true
                [ -s "$d/need-$n" ] || continue
                if fc compare "$img" "$tgt" "$d/need-$n" "$L: check (3): p$n ($kind) used or not-a-filesystem bytes" >"$WORK/out"; then
                        pass "$(cat "$WORK/out")"
                else
                        fail "$(cat "$WORK/out")"
                fi
        done < <(grep '^part ' "$d/manifest")
        if fc uncovered "$d/need" "$d/img.bmap" >"$WORK/out"; then
                pass "$L: no data loss: $(cat "$WORK/out")"
        else
                fail "$L: DATA LOSS in the bmap itself: $(cat "$WORK/out")"
        fi

        exactness "$L"
        sparse_check "$L"
        echo "    ($L took $((SECONDS - t0)) s)"
        rm -rf "$d"
}

# exactness L: the bmap against the filesystems' used bytes plus the bytes
# that are not filesystem; under-mapping fails, over-mapping is reported.
exactness() {
        local L=$1 n start psize kind
        while read -r _ n start psize kind _; do
                case $kind in extended | lvm | raw) continue ;; esac
                local used jmapped jprobed how
                used=$(cat "$d/usedbytes-$n" 2>/dev/null || true)
                jmapped=$(awk '{print $7}' "$d/jpart-$n")
                # Not found in the report: what the bmap maps of it.
                [ "$(awk '{print $9}' "$d/jpart-$n")" != NOTFOUND ] ||
                        jmapped=$(fc mapped-in "$d/img.bmap" "$start" $((start + psize)))
                jprobed=$(awk '{print $6}' "$d/jpart-$n")
                how=$(cut -d' ' -f9- "$d/jpart-$n")
                if [ -z "$used" ]; then
                        local chunks=""
                        [ ! -s "$d/btrfs-chunks-$n" ] ||
                                chunks="; its dev extents plus the first MiB take $(awk '{print $1 " bytes (" $2 " extents)"}' "$d/btrfs-chunks-$n")"
                        echo "    exact $L p$n ($kind): scan maps $jmapped bytes of $psize$chunks; used bytes not known to the test ($how)"
                        continue
                fi
                echo "    exact $L p$n ($kind): used $used bytes by its own tools, scan maps $jmapped (+$(pct "$jmapped" "$used")%) of $psize: $how"
                if [ "$jmapped" -lt "$used" ]; then
                        fail "$L p$n ($kind): DATA LOSS: scan maps $jmapped bytes, the filesystem uses $used"
                elif [ -f "$d/whole-ok-$n" ]; then
                        if [ "$jmapped" = "$psize" ]; then
                                pass "$L p$n ($kind): needs journal recovery: mapped whole (allowed)"
                        else
                                pass "$L p$n ($kind): needs journal recovery: mapped $jmapped bytes, the union of the bitmaps before and after replay uses $(fc total <(grep " p$n " "$d/need"))"
                        fi
                elif [ "$jprobed" != 1 ]; then
                        fail "$L p$n ($kind): not read by its probe: mapped whole ($how)"
                elif [ "$jmapped" -gt $((used + used / 100 + 8192)) ]; then
                        echo "    REPORT $L p$n ($kind): over-mapped by $((jmapped - used)) bytes ($(pct "$jmapped" "$used")%)"
                        pass "$L p$n ($kind): probed, maps at least what is used"
                else
                        pass "$L p$n ($kind): probed and exact (within 1%)"
                fi
        done < <(grep '^part ' "$d/manifest")

        local mapped ideal usedsum nonfs
        mapped=$(sed -n 's/^# .* mapped_bytes \([0-9]*\) .*/\1/p' "$d/bmap-ranges")
        # btrfs: its dev extents stand in for its used bytes (an upper bound).
        cat "$d/need" "$d/ideal-extra" >"$d/ideal" 2>/dev/null || cp "$d/need" "$d/ideal"
        ideal=$(fc round-total "$d/ideal" "$(grep '^image ' "$d/manifest" | awk '{print $2}')")
        usedsum=$({ cat "$d"/usedbytes-* 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')
        grep -v ' p[0-9]* \(ext\|vfat\|swap\|btrfs\)' "$d/need" >"$d/nonfs" || true
        nonfs=$(fc total "$d/nonfs")
        echo "    exact $L: bmap maps $mapped bytes; filesystems use $usedsum + not-filesystem $nonfs = $((usedsum + nonfs)); rounded out to 4 KiB blocks$([ ! -s "$d/ideal-extra" ] || echo ", with btrfs counted by its dev extents"): $ideal; excess $((mapped - ideal)) bytes ($(pct "$mapped" "$ideal")%)"
        if [ "$mapped" -gt $((ideal + ideal / 100)) ]; then
                echo "    REPORT $L: the bmap maps $(pct "$mapped" "$ideal")% more than the used and not-filesystem bytes"
        fi
}

# sparse_check L: bmapscan sparse on an expanded copy: size kept, every
# mapped byte kept, every unmapped byte a hole, disk usage about the mapped
# size; bmaptool create on the result maps what scan mapped; a copy made
# sparse by cp maps at most that.
sparse_check() {
        local L=$1 e=$d/sparse.img
        cp --sparse=never "$d/img" "$e"
        sync "$e"
        local size before after mapped
        size=$(stat -c %s "$e")
        before=$(du -B1 "$e" | cut -f1)
        run_cmd "$BMAPSCAN" sparse "$e"
        if [ "$RC" != 0 ]; then
                fail "$L: bmapscan sparse exits $RC: $(head -c 300 "$WORK/err")"
                rm -f "$e"
                return
        fi
        sync "$e"
        after=$(du -B1 "$e" | cut -f1)
        mapped=$(sed -n 's/^# .* mapped_bytes \([0-9]*\) .*/\1/p' "$d/bmap-ranges")
        echo "    sparse $L: du $before -> $after bytes; the bmap maps $mapped; bmapscan says: $(cat "$WORK/out")"
        if [ "$(stat -c %s "$e")" != "$size" ]; then
                fail "$L: bmapscan sparse changed the size: $size -> $(stat -c %s "$e")"
        fi
        if [ "$after" -gt $((mapped + mapped / 50 + 1048576)) ]; then
                fail "$L: after bmapscan sparse the copy still takes $after bytes on disk, the bmap maps $mapped"
        else
                pass "$L: sparse: disk usage $before -> $after bytes (mapped $mapped)"
        fi
        grep -v '^#' "$d/bmap-ranges" >"$d/mapped"
        fc complement "$size" "$d/mapped" "unmapped" >"$d/unmapped"
        if fc compare "$d/img" "$e" "$d/mapped" "$L: sparse: mapped bytes" >"$WORK/out"; then pass "$(cat "$WORK/out")"; else fail "$(cat "$WORK/out")"; fi
        if fc zeros "$e" "$d/unmapped" "$L: sparse: unmapped bytes" >"$WORK/out"; then pass "$(cat "$WORK/out")"; else fail "$(cat "$WORK/out")"; fi
        # bmaptool create finds the data with FIEMAP: exactly scan's blocks.
        if bmaptool create --no-checksum -o "$d/create.bmap" "$e" 2>"$WORK/err"; then
                # As block sets: scan cuts long runs into adjacent 64 MiB ranges.
                if diff <(fc bmap-ranges "$d/create.bmap" | grep -v '^#') <(grep -v '^#' "$d/bmap-ranges") >"$WORK/diff"; then
                        pass "$L: sparse: bmaptool create on the punched copy maps exactly scan's ranges"
                else
                        fail "$L: sparse: bmaptool create on the punched copy maps other ranges than scan (< bmaptool, > scan):"
                        show "$WORK/diff"
                fi
        else
                fail "$L: bmaptool create on the punched copy fails: $(head -c 300 "$WORK/err")"
        fi
        # A copy re-sparsified by cp loses the zero blocks inside used data:
        # a hole-based bmap of it maps a subset of scan's (those zero blocks
        # are what bmapscan exists to keep).
        cp --sparse=always "$e" "$d/resparse.img"
        rm -f "$e"
        if bmaptool create --no-checksum -o "$d/resparse.bmap" "$d/resparse.img" 2>"$WORK/err"; then
                if fc subset "$d/resparse.bmap" "$d/img.bmap" >"$WORK/out"; then
                        pass "$L: sparse: the cp --sparse=always copy's hole-based bmap lies inside scan's ($(cat "$WORK/out"))"
                else
                        fail "$L: sparse: the cp --sparse=always copy holds data scan left unmapped: $(cat "$WORK/out")"
                fi
        else
                fail "$L: bmaptool create on the cp --sparse=always copy fails: $(head -c 300 "$WORK/err")"
        fi
        rm -f "$d/resparse.img"
}

for L in $LAYOUTS; do
        check_layout "$L"
done
echo "($((SECONDS - START)) s in all)"
finish
