#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The flash invariant for the read-only filesystems mapped by their size
# (fsprobes/rofs.c): a squashfs (xz) and an EROFS (lz4hc), each in a GPT
# partition twice its size, the rest of the partition
#   zeros:   only the filesystem is mapped (its size, rounded up to 4 KiB);
#   garbage: vendor bytes after it are mapped too, the zeros are not;
#   verity:  a dm-verity tree right after it ('veritysetup format
#            --hash-offset'): the whole partition is mapped and
#            'veritysetup verify' passes on the target;
# and an ISO 9660 in a partition the same way (zeros). Each is scanned,
# flashed with the real 'bmaptool copy' onto a loop device over garbage,
# and on the target the filesystem mounts (squashfs, EROFS: kernel, loop
# device; ISO: xorriso extracts it) with every file identical, fsck.erofs
# passes, and every byte outside the partition is identical. Mapped bytes
# are printed against the filesystem's own size. Then the ISO layouts that
# must stay mapped in full: a bare ISO image and ISO hybrids with an MBR,
# appended partitions and a GPT (xorriso). Needs loop devices (exit 77).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

need_tools bmaptool python3 openssl losetup sfdisk mksquashfs mkfs.erofs fsck.erofs dump.erofs xorriso veritysetup \
        mkfs.fat
need_loop
MiB=$((1 << 20))
d=$WORK

# part_json JSON N FIELD: a field of partition N in a --json report.
part_json() {
        python3 -c 'import json, sys
for p in json.load(open(sys.argv[1]))["partitions"]:
    if p["number"] == int(sys.argv[2]):
        print(p[sys.argv[3]])' "$@"
}
# mkgpt IMG SIZE START SIZE: a GPT image with one partition, in bytes.
mkgpt() {
        rm -f "$1"
        truncate -s "$2" "$1"
        printf 'label: gpt\nstart=%d, size=%d, type=L, name=rofs\n' $(($3 / 512)) $(($4 / 512)) |
                sfdisk -q --no-reread --no-tell-kernel "$1" >/dev/null
}
put() { dd if="$2" of="$1" bs=1M seek="$3" oflag=seek_bytes conv=notrunc status=none; }
round4k() { echo $((($1 + 4095) / 4096 * 4096)); }

# check_map NAME START END WHAT A B...: the bmap's ranges inside [START,
# END) are exactly the "A B" pairs.
check_map() {
        local name=$1 a=$2 b=$3 what=$4 got want
        shift 4
        got=$(fc within "$d/$name.bmap" "$a" "$b" | tr '\n' ' ')
        want=$(printf '%s %s ' "$@")
        if [ "$got" = "$want" ]; then
                pass "$name: $what: the bmap maps [$want] of bytes $a-$b"
        else
                fail "$name: $what: the bmap maps [${got:-nothing}] of bytes $a-$b, expected [$want]"
        fi
}
# check_how NAME ERE WHAT [N]: partition N's (1) report line matches.
check_how() {
        local how
        how=$(part_json "$d/$1.json" "${4:-1}" how)
        if grep -qE -- "$2" <<<"$how"; then pass "$1: the report says $3: $how"; else fail "$1: the report says '$how', not $3"; fi
}
# scan NAME IMG: the bmap and --json report of IMG.
scan() {
        run_cmd "$BMAPSCAN" scan --json -o "$d/$1.bmap" "$2"
        cp "$WORK/out" "$d/$1.json"
        if [ "$RC" = 0 ]; then pass "$1: bmapscan scan exits 0"; else fail "$1: bmapscan scan exits $RC: $(head -c 400 "$WORK/err")"; fi
        [ "$RC" = 0 ]
}
# flash NAME IMG: bmaptool copy of the bmap onto a loop device over
# garbage; the target file is TGT.
flash() {
        TGT=$d/$1.tgt
        garbage "$TGT" "$(stat -c %s "$2")" "rofs:$1"
        attach "$TGT" || { fail "$1: cannot attach a loop device to the target"; return 1; }
        run_cmd bmaptool copy --bmap "$d/$1.bmap" "$2" "$ATTACHED"
        detach "$ATTACHED"
        if [ "$RC" = 0 ]; then pass "$1: bmaptool copy over garbage exits 0"; else fail "$1: bmaptool copy exits $RC: $(tail -n 3 "$WORK/err")"; fi
        [ "$RC" = 0 ]
}
# same NAME IMG START END WHAT: image and target agree over [START, END).
same() {
        ranges "$d/cmp" "$3" "$4"
        if fc compare "$2" "$TGT" "$d/cmp" "$1: $5" >"$WORK/out"; then pass "$(cat "$WORK/out")"; else fail "$(cat "$WORK/out")"; fi
}
ranges() {
        local f=$1
        shift
        : >"$f"
        while [ $# -ge 2 ]; do echo "$1 $2" >>"$f"; shift 2; done
}
# mount_at NAME FSTYPE FILE START SIZE DIR: mounts that partition of FILE
# read-only through a loop device.
mount_at() {
        attach -r --offset "$4" --sizelimit "$5" "$3" || { fail "$1: cannot attach $3 at $4"; return 1; }
        flash_mount "$6" -t "$2" -o ro "$ATTACHED" && return 0
        fail "$1: the $2 in $3 does not mount: $(dmesg 2>/dev/null | tail -n 2 | tr '\n' ' ')"
        return 1
}
# mount_check NAME FSTYPE IMG START SIZE: the partition of the image and of
# the target ($TGT) both mount, with the same files (contents and
# metadata), and the image's holds the source files' contents.
mount_check() {
        if mount_at "$1" "$2" "$3" "$4" "$5" "$d/mimg" && mount_at "$1" "$2" "$TGT" "$4" "$5" "$d/mtgt"; then
                if diff -r --no-dereference "$d/files" "$d/mimg" >"$WORK/diff" 2>&1; then
                        pass "$1: the image's $2 holds the source files"
                else
                        fail "$1: the image's $2 does not hold the source files: $(head -n 3 "$WORK/diff")"
                fi
                compare_trees "$1: $2 mounted from the target" "$d/mimg" "$d/mtgt"
        fi
        local m l
        for m in "$d/mimg" "$d/mtgt"; do
                if mountpoint -q "$m"; then
                        l=$(findmnt -n -o SOURCE "$m")
                        flash_umount "$m"
                        detach "$l"
                fi
        done
        # An attached loop device whose mount failed.
        for l in ${LOOPS[@]+"${LOOPS[@]}"}; do detach "$l"; done
}

mkdir -p "$d/files/sub/deeper"
garbage "$d/files/big" $((2 * MiB + 12345)) files:big
garbage "$d/files/sub/mid" 300000 files:mid
seq 200000 >"$d/files/sub/text"
echo small >"$d/files/sub/deeper/small"
ln -s sub/text "$d/files/link"

# make_fs KIND OUT: the filesystem image; prints its own tool's size.
make_fs() {
        case $1 in
        squashfs)
                mksquashfs "$d/files" "$2" -comp xz -noappend -quiet -no-progress >/dev/null
                unsquashfs -s "$2" | sed -n 's/^Filesystem size \([0-9]*\) bytes.*/\1/p'
                ;;
        erofs)
                mkfs.erofs --quiet -zlz4hc "$2" "$d/files" >/dev/null
                echo $(($(dump.erofs -s "$2" | sed -n 's/^Filesystem blocks: *\([0-9]*\)/\1/p') * 4096))
                ;;
        iso9660)
                xorriso -as mkisofs -quiet -J -R -o "$2" "$d/files" >/dev/null 2>&1
                echo $(($(xorriso -indev "$2" -toc 2>/dev/null | sed -n 's/^ISO session *: *1 , *0 , *\([0-9]*\)s.*/\1/p') * 2048))
                ;;
        esac
}

for KIND in squashfs erofs iso9660; do
        echo "== $KIND"
        size=$(make_fs $KIND "$d/fs")
        [ -n "$size" ] && [ "$size" -gt 0 ] || { fail "$KIND: its tool gives no size"; continue; }
        fsz=$(round4k "$size")
        ps=$MiB
        psz=$(((2 * fsz + MiB - 1) / MiB * MiB))
        isz=$((ps + psz + MiB))
        echo "    $KIND: $size bytes by its own tool, $(stat -c %s "$d/fs") bytes of file, in a partition of $psz"
        for TAIL in zeros garbage verity; do
                [ $KIND != iso9660 ] || [ $TAIL = zeros ] || continue
                N=$KIND-$TAIL
                mkgpt "$d/img" $isz $ps $psz
                # The partition as a file of its own, then into the image.
                cp "$d/fs" "$d/part"
                truncate -s $psz "$d/part"
                case $TAIL in
                garbage)
                        vat=$((fsz + 8192 + 123))
                        garbage "$d/vendor" 100000 "vendor:$KIND"
                        dd if="$d/vendor" of="$d/part" bs=1 seek=$vat conv=notrunc status=none
                        ;;
                verity)
                        veritysetup format --hash-offset=$fsz --data-blocks=$((fsz / 4096)) "$d/part" "$d/part" \
                                >"$d/format"
                        rh=$(awk '/^Root hash:/ {print $3}' "$d/format")
                        ;;
                esac
                put "$d/img" "$d/part" $ps
                scan $N "$d/img" || continue
                mapped=$(part_json "$d/$N.json" 1 mapped_bytes)
                fs_size=$(part_json "$d/$N.json" 1 filesystem_size)
                echo "    EXACT $N: mapped $mapped bytes of the partition, the filesystem is $size bytes" \
                        "($(pct "$mapped" "$size")%), the report's size $fs_size"
                [ "$fs_size" = "$size" ] && pass "$N: the report's filesystem size is its tool's ($size)" ||
                        fail "$N: the report says the filesystem is $fs_size bytes, its tool $size"
                case $TAIL in
                zeros)
                        check_how $N "^$KIND: .*mapped in full$" "the size it read"
                        check_map $N $ps $((ps + psz)) "the filesystem, rounded up to 4 KiB" $ps $((ps + fsz))
                        ;;
                garbage)
                        check_how $N "of data past the filesystem's end mapped" "the tail holds data"
                        check_map $N $ps $((ps + psz)) "the filesystem and the vendor bytes' 4 KiB blocks" \
                                $ps $((ps + fsz)) $((ps + vat / 4096 * 4096)) $((ps + $(round4k $((vat + 100000)))))
                        ;;
                verity)
                        check_how $N "dm-verity hash tree in the partition.s tail" "the dm-verity tree"
                        check_map $N $ps $((ps + psz)) "the whole partition" $ps $((ps + psz))
                        ;;
                esac
                flash $N "$d/img" || continue
                same $N "$d/img" 0 $ps "the bytes before the partition (GPT)"
                same $N "$d/img" $((ps + psz)) $isz "the bytes after it (the backup GPT)"
                same $N "$d/img" $ps $((ps + size)) "the filesystem"
                case $TAIL in
                garbage) same $N "$d/img" $((ps + vat)) $((ps + vat + 100000)) "the vendor bytes" ;;
                verity)
                        same $N "$d/img" $ps $((ps + psz)) "the whole partition"
                        extract "$TGT" $ps $psz "$d/tpart"
                        if veritysetup verify --hash-offset=$fsz --data-blocks=$((fsz / 4096)) "$d/tpart" "$d/tpart" \
                                "$rh" >"$WORK/verify" 2>&1; then
                                pass "$N: veritysetup verify passes on the target's partition"
                        else
                                fail "$N: veritysetup verify fails on the target's partition: $(tr '\n' ' ' <"$WORK/verify")"
                        fi
                        rm -f "$d/tpart"
                        ;;
                esac
                case $KIND in
                squashfs | erofs) mount_check $N $KIND "$d/img" $ps $psz ;;
                iso9660)
                        # No iso9660 kernel driver here: xorriso reads both.
                        extract "$TGT" $ps $psz "$d/tpart"
                        rm -rf "$d/out" "$d/ref"
                        if xorriso -osirrox on -indev "$d/tpart" -extract / "$d/out" >"$WORK/x" 2>&1 &&
                                xorriso -osirrox on -indev "$d/part" -extract / "$d/ref" >"$WORK/x" 2>&1; then
                                compare_trees "$N: xorriso -extract from the target" "$d/ref" "$d/out"
                                diff -r --no-dereference "$d/files" "$d/out" >/dev/null &&
                                        pass "$N: the target's ISO holds the source files" ||
                                        fail "$N: the target's ISO does not hold the source files"
                        else
                                fail "$N: xorriso cannot read an ISO: $(tail -n 2 "$WORK/x")"
                        fi
                        chmod -R u+w "$d/out" "$d/ref" 2>/dev/null || true
                        rm -rf "$d/out" "$d/ref" "$d/tpart"
                        ;;
                esac
                if [ $KIND = erofs ]; then
                        extract "$TGT" $ps $psz "$d/tpart"
                        if fsck.erofs "$d/tpart" >"$WORK/fsck" 2>&1; then pass "$N: fsck.erofs passes on the target"; else
                                fail "$N: fsck.erofs fails on the target: $(tail -n 3 "$WORK/fsck")"
                        fi
                        rm -f "$d/tpart"
                fi
                rm -f "$TGT"
        done
done

echo "== ISO images that stay mapped in full"
# whole_check NAME IMG WHAT: every byte of IMG is in the bmap.
whole_check() {
        scan "$1" "$2" || return
        local mapped
        mapped=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["mapped_bytes"])' "$d/$1.json")
        if [ "$mapped" = "$(stat -c %s "$2")" ]; then
                pass "$1: $3: all $mapped bytes mapped"
        else
                fail "$1: $3: $mapped of $(stat -c %s "$2") bytes mapped"
        fi
}
xorriso -as mkisofs -quiet -J -R -o "$d/bare.iso" "$d/files" >/dev/null 2>&1
# Zeros past the volume, as a bare ISO written to a larger disk image.
truncate -s $(($(stat -c %s "$d/bare.iso") + MiB)) "$d/bare.iso"
whole_check bare-iso "$d/bare.iso" "a bare ISO (no partition table) keeps the whole-disk rule"
check_how bare-iso "spans the disk" "the whole-disk rule" 0
rm -f "$d/efi.img"
mkfs.fat -C "$d/efi.img" 2048 >/dev/null
xorriso -as mkisofs -quiet -J -R --protective-msdos-label -o "$d/h-mbr.iso" "$d/files" >/dev/null 2>&1
whole_check hybrid-mbr "$d/h-mbr.iso" "an ISO hybrid with an MBR partition over the ISO"
xorriso -as mkisofs -quiet -J -R -append_partition 2 0xef "$d/efi.img" -o "$d/h-app.iso" "$d/files" >/dev/null 2>&1
whole_check hybrid-appended "$d/h-app.iso" "an ISO hybrid with an appended EFI partition (MBR)"
xorriso -as mkisofs -quiet -J -R -partition_offset 16 -append_partition 2 0xef "$d/efi.img" -appended_part_as_gpt \
        -o "$d/h-gpt.iso" "$d/files" >/dev/null 2>&1
whole_check hybrid-gpt "$d/h-gpt.iso" "an ISO hybrid with a GPT and an appended EFI partition"
# And flashed: the hybrid is identical byte for byte.
if flash hybrid-gpt "$d/h-gpt.iso"; then
        same hybrid-gpt "$d/h-gpt.iso" 0 "$(stat -c %s "$d/h-gpt.iso")" "the whole ISO hybrid"
        rm -f "$TGT"
fi

finish
