#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# copy --scan: a raw image with no bmap, scanned and flashed in one command.
# For each layout of scripts/mkimage.sh named in COPYSCAN_LAYOUTS:
#   - onto a loop device over garbage: every byte the filesystems use (by
#     their own tools: dumpe2fs, the FAT) and every byte outside them is the
#     image's, the checkers pass on the target, and every byte outside the
#     scan's ranges is still the garbage (only what the filesystems use is
#     written); --verify-after reads it back against the copy's checksums;
#   - --scan-bmap writes exactly 'scan -o''s bmap, checksums included (also
#     with --map and --block-size), and it finds a range damaged later;
#   - onto files, several at once: the same bytes as 'scan' + 'copy --bmap';
# and the refusals (stdin, a URL, compressed, archived, a FIFO, --scan
# with --bmap, --nobmap or --member, its options without it), each one line
# with nothing written. Without loop devices the loop device part is
# skipped, the rest runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

: "${SOURCE_ROOT:=$(cd "$(dirname "$0")/.." && pwd)}"
MKIMAGE=$SOURCE_ROOT/scripts/mkimage.sh
export MTOOLS_SKIP_CHECK=1
LAYOUTS=${COPYSCAN_LAYOUTS:-"gpt-esp-ext4-swap mbr-fat16-ext3-ext2"}

need_tools python3 openssl sfdisk mke2fs e2fsck dumpe2fs mkfs.fat fsck.fat mcopy zstd tar
HAVE_LOOP=1
truncate -s 1M "$WORK/probe.img"
if attach "$WORK/probe.img" 2>"$WORK/err"; then
        detach "$ATTACHED"
else
        HAVE_LOOP=0
        echo "no loop device can be attached ($(head -c 200 "$WORK/err")): the loop device checks are skipped"
fi
rm -f "$WORK/probe.img"

# same NAME A B: the two files are byte for byte equal.
same() {
        if cmp -s "$2" "$3"; then
                pass "$1"
        else
                fail "$1: $(cmp "$2" "$3" 2>&1 | head -n 1)"
                diff <(grep -v BmapFileChecksum "$2") <(grep -v BmapFileChecksum "$3") | head -n 6 | sed 's/^/      /'
        fi
}
# fc_check ARGS...: a flashcheck comparison, its line as the verdict.
fc_check() {
        if fc "$@" >"$WORK/fc"; then pass "$(cat "$WORK/fc")"; else fail "$(cat "$WORK/fc")"; fi
}

# need_ranges D IMG: $D/need gets every byte that must reach a target, by
# the filesystems' own tools, and $D/fsck the checks to run on a target:
# "START SIZE KIND" per filesystem.
need_ranges() {
        local d=$1 img=$2 size n start psize kind
        read -r _ size _ _ < <(grep '^image ' "$d/manifest")
        : >"$d/need"
        : >"$d/fsparts"
        : >"$d/fsck"
        while read -r _ n start psize kind _; do
                case $kind in
                ext2 | ext3 | ext4)
                        extract "$img" "$start" "$psize" "$d/part"
                        dumpe2fs "$d/part" >"$d/dump" 2>/dev/null
                        fc ext-used "$d/dump" "$start" "p$n $kind: used blocks" | grep -v '^#' >>"$d/need"
                        ;;
                vfat)
                        extract "$img" "$start" "$psize" "$d/part"
                        fc fat-used "$d/part" "$start" "p$n vfat: used clusters" | grep -v '^#' >>"$d/need"
                        ;;
                swap)
                        echo "$start $((start + 4096)) p$n swap: header page" >>"$d/need"
                        ;;
                *) continue ;;
                esac
                echo "$start $((start + psize))" >>"$d/fsparts"
                echo "$start $psize $kind" >>"$d/fsck"
        done < <(grep '^part ' "$d/manifest")
        rm -f "$d/part"
        fc complement "$size" "$d/fsparts" "outside the filesystems" >>"$d/need"
}

# fsck_target L D TGT: each filesystem's checker passes on the target.
fsck_target() {
        local L=$1 d=$2 tgt=$3 start psize kind rc
        while read -r start psize kind; do
                extract "$tgt" "$start" "$psize" "$d/tpart"
                rc=0
                case $kind in
                ext2 | ext3 | ext4) e2fsck -fn "$d/tpart" >"$WORK/fsck" 2>&1 || rc=$? ;;
                vfat) fsck.fat -n "$d/tpart" >"$WORK/fsck" 2>&1 || rc=$? ;;
                swap) continue ;;
                esac
                if [ "$rc" = 0 ]; then
                        pass "$L: $kind at byte $start passes its checker on the target"
                else
                        fail "$L: $kind at byte $start: the checker exits $rc on the target: $(tail -n 3 "$WORK/fsck")"
                fi
        done <"$d/fsck"
        rm -f "$d/tpart"
}

check_layout() {
        local L=$1 d=$WORK/$1 rc=0 size
        mkdir -p "$d"
        echo "=== $L"
        MKIMAGE_MANIFEST=$d/manifest bash "$MKIMAGE" "$L" "$d/img" 1 >"$d/mkimage.log" 2>&1 || rc=$?
        if [ "$rc" = 77 ]; then
                echo "skip $L: $(tail -n 1 "$d/mkimage.log")"
                return
        elif [ "$rc" != 0 ]; then
                fail "$L: mkimage.sh exits $rc: $(tail -c 600 "$d/mkimage.log")"
                return
        fi
        local img=$d/img
        size=$(stat -c %s "$img")
        run_cmd "$BMAPSCAN" scan -o "$d/scan.bmap" "$img"
        expect "$L: scan -o" 0
        fc bmap-ranges "$d/scan.bmap" | grep -v '^#' >"$d/mapped"
        fc complement "$size" "$d/mapped" "not mapped" >"$d/unmapped"
        need_ranges "$d" "$img"
        if fc uncovered "$d/need" "$d/scan.bmap" >"$WORK/fc"; then
                pass "$L: scan's bmap: $(cat "$WORK/fc")"
        else
                fail "$L: scan's bmap leaves needed bytes out (the copy cannot hold the invariant): $(cat "$WORK/fc")"
        fi

        # Onto a loop device over garbage: the flash invariant.
        if [ "$HAVE_LOOP" = 1 ]; then
                garbage "$d/tgt" "$size" "$L"
                cp "$d/tgt" "$d/garbage"
                attach "$d/tgt"
                local loop=$ATTACHED
                run_cmd "$BMAPSCAN" copy --scan --scan-bmap "$d/copy.bmap" --verify-after "$img" "$loop"
                detach "$loop"
                expect "$L: copy --scan --scan-bmap --verify-after onto a loop device" 0 "all "
                if grep -q "^$img: scanned: .* partitions\?, .* read; flashing .* of .* in [0-9]* ranges$" "$WORK/err"; then
                        pass "$L: the copy says what the scan found in one line"
                else
                        fail "$L: no 'scanned:' line: $(head -c 400 "$WORK/err")"
                fi
                same "$L: --scan-bmap writes the bmap 'scan -o' writes, byte for byte" "$d/copy.bmap" "$d/scan.bmap"
                fc_check compare "$img" "$d/tgt" "$d/need" "$L: loop target: every used and not-filesystem byte"
                fc_check compare "$img" "$d/tgt" "$d/mapped" "$L: loop target: every mapped byte"
                fc_check compare "$d/garbage" "$d/tgt" "$d/unmapped" "$L: loop target: nothing written outside the scan's ranges"
                fsck_target "$L" "$d" "$d/tgt"

                # The saved bmap finds a range damaged after the copy.
                local off
                off=$(awk 'NR == 2 {print $1 + 100}' "$d/mapped")
                printf '\x5a\xa5' | dd of="$d/tgt" bs=1 seek="$off" conv=notrunc status=none
                run_cmd "$BMAPSCAN" verify --bmap "$d/copy.bmap" "$img" "$d/tgt"
                expect "$L: verify with the saved bmap: a damaged target fails" 1 "do not match"
                if grep -q "bad range .*(bytes [0-9]*-[0-9]*)" "$WORK/out" &&
                        awk -v o="$off" '{ if (match($0, /bytes [0-9]+-[0-9]+/)) { split(substr($0, RSTART + 6, RLENGTH - 6), r, "-"); if (r[1] <= o && o <= r[2]) f = 1 } } END { exit !f }' "$WORK/out"; then
                        pass "$L: the bad range named contains byte $off"
                else
                        fail "$L: no bad range naming byte $off: $(head -c 300 "$WORK/out")"
                fi
                rm -f "$d/tgt" "$d/garbage"
        fi

        # Onto two files at once: the same bytes as scan + copy --bmap.
        run_cmd "$BMAPSCAN" copy --scan --verify-after "$img" "$d/f1" "$d/f2"
        expect "$L: copy --scan onto two files, each read back" 0 "all "
        run_cmd "$BMAPSCAN" copy --bmap "$d/scan.bmap" "$img" "$d/ref"
        expect "$L: copy --bmap of scan's bmap" 0
        same "$L: file target: copy --scan gives what scan + copy --bmap gives" "$d/f1" "$d/ref"
        same "$L: second file target: the same" "$d/f2" "$d/ref"
        fc_check zeros "$d/f1" "$d/unmapped" "$L: file target: unmapped bytes"
        rm -f "$d/f1" "$d/f2" "$d/ref"

        # --map and --block-size as scan takes them; --no-verify still
        # hashes what --scan-bmap keeps.
        run_cmd "$BMAPSCAN" scan --block-size 8192 --map part:1 -o "$d/scan8.bmap" "$img"
        expect "$L: scan --block-size 8192 --map part:1" 0
        run_cmd "$BMAPSCAN" -q copy --scan --no-verify --block-size 8192 --map part:1 --scan-bmap "$d/copy8.bmap" "$img" /dev/null
        expect "$L: copy --scan --block-size 8192 --map part:1 to /dev/null" 0
        if [ -s "$WORK/err" ]; then fail "$L: -q copy --scan prints: $(head -c 300 "$WORK/err")"; fi
        same "$L: --scan-bmap with --map and --block-size: scan's bmap" "$d/copy8.bmap" "$d/scan8.bmap"

        # -v: scan's whole report.
        run_cmd "$BMAPSCAN" -v copy --scan "$img" /dev/null
        expect "$L: -v copy --scan to /dev/null" 0 "(scanned: no checksums to verify it against), nothing written"
        if grep -q '^  part start ' "$WORK/err" && grep -q '^mapped .* in [0-9]* ranges$' "$WORK/err"; then
                pass "$L: -v prints scan's per-partition report"
        else
                fail "$L: -v: no per-partition report: $(head -c 400 "$WORK/err")"
        fi
        rm -rf "$d"
}

for L in $LAYOUTS; do
        check_layout "$L"
done

# ---------------------------------------------------------------- refusals
# refused NAME STATUS TEXT ARGS...: one line saying TEXT, nothing written
# (the old target and no --scan-bmap file).
img=$WORK/small.img
bash "$MKIMAGE" fat12-floppy "$img" 1 >"$WORK/mk.log" 2>&1 || fail "mkimage fat12-floppy: $(tail -n 2 "$WORK/mk.log")"
echo "the old target" >"$WORK/keep"
refused() {
        local name=$1 status=$2 text=$3
        shift 3
        run_cmd "$BMAPSCAN" "$@"
        expect "$name" "$status" "$text"
        one_line "$name"
        if [ "$(cat "$WORK/keep")" = "the old target" ] && [ ! -e "$WORK/saved.bmap" ]; then
                pass "$name: nothing written"
        else
                fail "$name: something was written"
        fi
}
refused "--scan from stdin" 2 "standard input cannot be scanned" copy --scan --scan-bmap "$WORK/saved.bmap" - "$WORK/keep" <"$img"
refused "--scan of a URL" 2 "is a URL; download it first" copy --scan --scan-bmap "$WORK/saved.bmap" http://127.0.0.1:9/disk.img "$WORK/keep"
zstd -q -f "$img" -o "$WORK/small.img.zst"
refused "--scan of a compressed image" 1 "zstd: --scan needs random access to the raw image: decompress it first" copy --scan --scan-bmap "$WORK/saved.bmap" "$WORK/small.img.zst" "$WORK/keep"
tar -C "$WORK" -cf "$WORK/small.tar" small.img
refused "--scan of an archived image" 1 "needs random access to the raw image: decompress it first" copy --scan --scan-bmap "$WORK/saved.bmap" "$WORK/small.tar" "$WORK/keep"
mkfifo "$WORK/fifo"
refused "--scan of a FIFO" 1 "not a regular file or block device (a FIFO): --scan needs random access" copy --scan "$WORK/fifo" "$WORK/keep"
refused "--scan with --bmap" 2 "--scan excludes --bmap and --nobmap" copy --scan --bmap "$WORK/x.bmap" "$img" "$WORK/keep"
refused "--scan with --nobmap" 2 "--scan excludes --bmap and --nobmap" copy --scan --nobmap "$img" "$WORK/keep"
refused "--scan with --member" 2 "--scan excludes --member" copy --scan --member small.img "$WORK/small.tar" "$WORK/keep"
refused "--scan-bmap without --scan" 2 "go with --scan" copy --scan-bmap "$WORK/saved.bmap" --nobmap "$img" "$WORK/keep"
refused "--map without --scan" 2 "go with --scan" copy --map part:1 --nobmap "$img" "$WORK/keep"
refused "--scan-bmap onto the image" 1 "is the image itself" copy --scan --scan-bmap "$img" "$img" "$WORK/keep"
refused "no bmap and no --scan: the message suggests it" 1 "give --bmap FILE, --scan to flash what its filesystems use, or --nobmap" copy "$img" "$WORK/keep"

echo "($SECONDS s in all)"
finish
