#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What scan maps beyond the filesystems' word, decided without flashing
# (test-flash-integrity flashes the same layouts): non-zero bytes past a
# filesystem's end, a dm-verity tree in that tail, an AVB footer, and the
# user's --map in each form, with its bad values refused. Every image is
# built here with sfdisk, mkfs.ext4 -d, mkfs.fat, mksquashfs and
# veritysetup.
. "$(dirname "$0")/lib.sh"
# For its bmap range helper (fc) only: nothing here needs a loop device.
. "$(dirname "$0")/flash-lib.sh"

for t in sfdisk mkfs.ext4 mkfs.fat python3; do
        command -v "$t" >/dev/null || { echo "$t is not installed: skipping"; exit 77; }
done
MiB=1048576

# check_covered BMAP START END WHAT: every byte of [START, END) is mapped.
check_covered() {
        local m
        m=$(fc mapped-in "$1" "$2" "$3")
        if [ "$m" = $(($3 - $2)) ]; then pass "$4"; else fail "$4: $m of bytes $2-$3 are mapped in $1, not all"; fi
}
# check_untouched BMAP START END WHAT: no byte of [START, END) is mapped.
check_untouched() {
        local m
        m=$(fc mapped-in "$1" "$2" "$3")
        if [ "$m" = 0 ]; then pass "$4"; else fail "$4: $m of bytes $2-$3 are mapped in $1"; fi
}
# how IMAGE PARTNO [SCAN-OPTIONS]: the partition's "how" from scan --json.
how() {
        local img=$1 n=$2
        shift 2
        "$BMAPSCAN" -q scan --json "$@" "$img" |
                python3 -c 'import json, sys
d = json.load(sys.stdin)
print([p["how"] for p in d["partitions"] if p["number"] == int(sys.argv[1])][0])' "$n"
}
check_how() {
        local got=$1 want=$2 what=$3
        case "$got" in
        *"$want"*) pass "$what" ;;
        *) fail "$what: the report says '$got', not '$want'" ;;
        esac
}

mkdir -p "$WORK/files"
for i in $(seq 8); do head -c $((100000 * i)) /dev/urandom >"$WORK/files/f$i"; done

# gpt_ext4 IMG FS_MIB: a 96 MiB GPT image, partition 1 (1-65 MiB, named
# "rootfs") with an ext4 of FS_MIB, partition 2 (65-81 MiB, "env") empty.
gpt_ext4() {
        rm -f "$1"
        truncate -s 96M "$1"
        printf 'label: gpt\nstart=2048, size=131072, type=L, name=rootfs\nstart=133120, size=32768, type=L, name=env\n' |
                sfdisk -q "$1"
        mkfs.ext4 -q -F -d "$WORK/files" -E offset=$MiB "$1" "${2}M"
}

echo "== the tail past a filesystem's end"
img=$WORK/tail.img
gpt_ext4 "$img" 40
# Vendor bytes after the filesystem, not on a block boundary.
head -c 100000 /dev/urandom | dd of="$img" bs=1 seek=$((MiB + 40 * MiB + 12345)) conv=notrunc status=none
"$BMAPSCAN" -q scan --no-checksum -o "$WORK/tail.bmap" "$img"
check_covered "$WORK/tail.bmap" $((MiB + 40 * MiB + 12345)) $((MiB + 40 * MiB + 112345)) \
        "vendor data right after an ext4's end is mapped"
check_untouched "$WORK/tail.bmap" $((MiB + 40 * MiB + 120 * 1024)) $((65 * MiB)) \
        "the zeros after it are not"
check_how "$(how "$img" 1)" "of data past the filesystem's end mapped" "the report says the tail holds data"

# Another filesystem appended after the first one (a FAT image after an
# ext4, an ext4 after a squashfs): its zeros are its free clusters and
# empty tables, which garbage on a target would turn into corruption, so
# the whole rest of the partition is mapped.
img=$WORK/appended.img
gpt_ext4 "$img" 40
rm -f "$WORK/app.fat"
mkfs.fat -C -n APPENDED "$WORK/app.fat" 8192 >/dev/null
dd if="$WORK/app.fat" of="$img" bs=1M seek=$((1 + 40 + 1)) conv=notrunc status=none
"$BMAPSCAN" -q scan --no-checksum -o "$WORK/appended.bmap" "$img"
check_covered "$WORK/appended.bmap" $((MiB + 40 * MiB)) $((65 * MiB)) \
        "a FAT image appended after an ext4: the rest of the partition is mapped"
check_how "$(how "$img" 1)" "vfat past the filesystem's end (at 41.0 MiB): the rest mapped in full" \
        "the report names the appended filesystem"
# An ISO 9660 keeps its first 32 KiB zero (the system area; btrfs its
# first 64 KiB): libblkid is asked before the first data too.
if command -v xorriso >/dev/null; then
        rm -f "$WORK/app.iso"
        xorriso -as mkisofs -quiet -o "$WORK/app.iso" "$WORK/files" 2>/dev/null
        gpt_ext4 "$img" 40
        dd if="$WORK/app.iso" of="$img" bs=1M seek=$((1 + 40 + 2)) conv=notrunc status=none
        check_how "$(how "$img" 1)" "iso9660 past the filesystem's end (at 42.0 MiB): the rest mapped in full" \
                "an ISO 9660 (zeros first) appended after an ext4 is found by probing before its data"
else
        echo "xorriso is not installed: the appended ISO case skipped"
fi

img=$WORK/resize.img
gpt_ext4 "$img" 40
"$BMAPSCAN" -q scan --no-checksum -o "$WORK/resize.bmap" "$img"
check_untouched "$WORK/resize.bmap" $((MiB + 40 * MiB)) $((65 * MiB)) "a zero tail (first-boot resize) stays unmapped"
cp --sparse=always "$img" "$WORK/resize-sparse.img"
fallocate --dig-holes "$WORK/resize-sparse.img" 2>/dev/null || true
"$BMAPSCAN" -q scan --no-checksum -o "$WORK/resize2.bmap" "$WORK/resize-sparse.img"
if cmp -s <(grep -v '<!--\|BmapFileChecksum' "$WORK/resize.bmap") <(grep -v '<!--\|BmapFileChecksum' "$WORK/resize2.bmap"); then
        pass "a sparse copy of it gets the same bmap"
else
        fail "a sparse copy of it gets another bmap"
fi

# A FAT smaller than its partition, zeros after it.
img=$WORK/fat.img
truncate -s 64M "$img"
printf 'label: dos\nstart=2048, size=98304, type=c\n' | sfdisk -q "$img"
mkfs.fat -F 16 -C "$WORK/fatpart" 16384 >/dev/null
dd if="$WORK/fatpart" of="$img" bs=1M seek=1 conv=notrunc status=none
"$BMAPSCAN" -q scan --no-checksum -o "$WORK/fat.bmap" "$img"
check_untouched "$WORK/fat.bmap" $((MiB + 16 * MiB)) $((MiB + 48 * MiB)) "FAT: the zeros after a 16 MiB FAT in 48 MiB stay unmapped"

echo "== dm-verity in the partition's tail"
if command -v veritysetup >/dev/null; then
        img=$WORK/verity.img
        gpt_ext4 "$img" 48
        dd if="$img" of="$WORK/p1" bs=1M skip=1 count=64 status=none
        veritysetup format --hash-offset=$((48 * MiB)) --data-blocks=$((48 * 256)) "$WORK/p1" "$WORK/p1" >/dev/null
        dd if="$WORK/p1" of="$img" bs=1M seek=1 conv=notrunc status=none
        "$BMAPSCAN" -q scan --no-checksum -o "$WORK/verity.bmap" "$img"
        check_covered "$WORK/verity.bmap" $MiB $((65 * MiB)) "ext4 + dm-verity tree: the whole partition is mapped"
        check_how "$(how "$img" 1)" "dm-verity hash tree in the partition's tail" "the report says dm-verity"
        run_cmd "$BMAPSCAN" scan --no-checksum -o "$WORK/x.bmap" "$img"
        if grep -q "mapped in full: 64.0 MiB at 1.0 MiB: partition 1: dm-verity" "$WORK/err"; then
                pass "the report lists the region"
        else
                fail "the report does not list the dm-verity region: $(cat "$WORK/err")"
        fi
        # The same tree with the superblock at an odd 512-byte offset.
        gpt_ext4 "$img" 48
        dd if="$img" of="$WORK/p1" bs=1M skip=1 count=64 status=none
        veritysetup format --hash-offset=$((48 * MiB + 8192 + 512)) --data-blocks=$((48 * 256)) "$WORK/p1" "$WORK/p1" >/dev/null
        dd if="$WORK/p1" of="$img" bs=1M seek=1 conv=notrunc status=none
        check_how "$(how "$img" 1)" "superblock at 48.0 MiB" "a superblock 8.5 KiB past the filesystem's end is found"
else
        echo "veritysetup is not installed: dm-verity cases skipped"
fi
if command -v veritysetup >/dev/null && command -v mksquashfs >/dev/null; then
        # squashfs + tree (OpenWrt): the probe reads bytes_used, the tree's
        # superblock right after it maps the rest; without a tree only the
        # squashfs is mapped.
        img=$WORK/sq.img
        gpt_ext4 "$img" 16
        mksquashfs "$WORK/files" "$WORK/sq" -noappend -quiet -no-progress >/dev/null
        sq=$(( ($(stat -c %s "$WORK/sq") + 4095) / 4096 * 4096))
        truncate -s $sq "$WORK/sq"
        # Over the ext4: zeros, then the squashfs.
        dd if=/dev/zero of="$img" bs=1M seek=1 count=64 conv=notrunc status=none
        dd if="$WORK/sq" of="$img" bs=1M seek=1 conv=notrunc status=none
        "$BMAPSCAN" -q scan --no-checksum -o "$WORK/sq.bmap" "$img"
        check_untouched "$WORK/sq.bmap" $((MiB + sq)) $((65 * MiB)) "squashfs: the zeros after bytes_used stay unmapped"
        check_how "$(how "$img" 1)" "squashfs: bytes_used" "the report names the squashfs probe"
        veritysetup format --hash-offset=$sq --data-blocks=$((sq / 4096)) "$WORK/sq" "$WORK/sq" >/dev/null
        dd if="$WORK/sq" of="$img" bs=1M seek=1 conv=notrunc status=none
        "$BMAPSCAN" -q scan --no-checksum -o "$WORK/sqv.bmap" "$img"
        check_covered "$WORK/sqv.bmap" $MiB $((65 * MiB)) "squashfs + dm-verity tree: the whole partition is mapped"
        check_how "$(how "$img" 1)" "dm-verity hash tree in the partition's tail (superblock at" \
                "the report names the tree after the squashfs"
fi

echo "== an Android AVB footer"
img=$WORK/avb.img
gpt_ext4 "$img" 32
python3 - "$img" $MiB $((64 * MiB)) <<'EOF'
import os, struct, sys
path, start, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(start + 32 * 1048576)
    f.write(os.urandom(400 * 1024))  # the hash tree
    vb = 34 * 1048576
    f.seek(start + vb)
    f.write(b"AVB0" + struct.pack(">II", 1, 0) + os.urandom(1000))
    f.seek(start + size - 64)
    f.write(b"AVBf" + struct.pack(">IIQQQ", 1, 0, 32 * 1048576, vb, 1012) + bytes(28))
EOF
"$BMAPSCAN" -q scan --no-checksum -o "$WORK/avb.bmap" "$img"
check_covered "$WORK/avb.bmap" $MiB $((65 * MiB)) "AVB footer: the whole partition is mapped"
check_how "$(how "$img" 1)" "Android AVB footer" "the report says AVB"

echo "== --map"
img=$WORK/map.img
gpt_ext4 "$img" 40
"$BMAPSCAN" -q scan --no-checksum -o "$WORK/plain.bmap" "$img"
# Somewhere the ext4 calls free: its last MiB.
free_at=$((MiB + 39 * MiB))
check_untouched "$WORK/plain.bmap" $free_at $((free_at + 65536)) "(the ext4's last MiB is free without --map)"
"$BMAPSCAN" -q scan --no-checksum --map $free_at:64K -o "$WORK/m1.bmap" "$img"
check_covered "$WORK/m1.bmap" $free_at $((free_at + 65536)) "--map START:LENGTH in an ext4's free space is mapped"
check_untouched "$WORK/m1.bmap" $((free_at + 65536)) $((free_at + 131072)) "and nothing more of it"
"$BMAPSCAN" -q scan --no-checksum --map 40M:1M -o "$WORK/m2.bmap" "$img"
check_covered "$WORK/m2.bmap" $((40 * MiB)) $((41 * MiB)) "--map with suffixes"
"$BMAPSCAN" -q scan --no-checksum --map part:1 -o "$WORK/m3.bmap" "$img"
check_covered "$WORK/m3.bmap" $MiB $((65 * MiB)) "--map part:1"
"$BMAPSCAN" -q scan --no-checksum --map label:rootfs --map 90M:4K -o "$WORK/m4.bmap" "$img"
check_covered "$WORK/m4.bmap" $MiB $((65 * MiB)) "--map label:rootfs"
run_cmd "$BMAPSCAN" scan --no-checksum --map label:rootfs -o "$WORK/m5.bmap" "$img"
if grep -q "mapped in full: 64.0 MiB at 1.0 MiB: --map label:rootfs (partition 1)" "$WORK/err"; then
        pass "the report names the --map region"
else
        fail "the report does not name the --map region: $(cat "$WORK/err")"
fi
"$BMAPSCAN" -q scan --json --map part:1 "$img" >"$WORK/m.json"
if python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); r = d["regions_mapped_in_full"]; sys.exit(0 if r and r[0]["why"].startswith("--map part:1") and r[0]["size"] == 64 << 20 else 1)' "$WORK/m.json"; then
        pass "--json lists the region"
else
        fail "--json does not list the region: $(head -c 600 "$WORK/m.json")"
fi
run_cmd "$BMAPSCAN" info --map part:2 "$img"
expect "info --map" 0
grep -q "mapped in full: 16.0 MiB at 65.0 MiB: --map part:2" "$WORK/out" && pass "info reports the region" ||
        fail "info does not report the region: $(cat "$WORK/out")"

# sparse --map keeps the region's bytes and holes everything else free.
cp "$img" "$WORK/sp.img"
head -c 65536 /dev/urandom | dd of="$WORK/sp.img" bs=1 seek=$free_at conv=notrunc status=none
dd if="$WORK/sp.img" of="$WORK/region" bs=64K skip=$((free_at / 65536)) count=1 status=none
run_cmd "$BMAPSCAN" sparse --map $free_at:64K "$WORK/sp.img"
expect "sparse --map" 0
if cmp -s "$WORK/region" <(dd if="$WORK/sp.img" bs=64K skip=$((free_at / 65536)) count=1 status=none); then
        pass "sparse kept the --map region"
else
        fail "sparse punched the --map region"
fi

echo "== bad --map values: one line, exit 2, nothing written"
for bad in "part:9" "label:nope" "95M:2M" "foo" "1M" "1M:0" "part:0" "part:x" "label:" ":4K" "1Q:4K"; do
        rm -f "$WORK/bad.bmap"
        run_cmd "$BMAPSCAN" scan --map "$bad" -o "$WORK/bad.bmap" "$img"
        expect "scan --map $bad" 2 "--map"
        one_line "scan --map $bad"
        [ ! -e "$WORK/bad.bmap" ] && pass "scan --map $bad: no bmap written" || fail "scan --map $bad: a bmap was written"
done
run_cmd "$BMAPSCAN" sparse --map part:7 "$img"
expect "sparse --map part:7" 2 "no partition 7"
run_cmd "$BMAPSCAN" info --map 1G:1M "$img"
expect "info --map past the end" 2 "reach past the end of the image"

finish
