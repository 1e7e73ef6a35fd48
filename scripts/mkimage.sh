#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# mkimage.sh LAYOUT OUT.img [SEED]: builds one of the test and benchmark disk
# images ('mkimage.sh --list' names them). Each partition is made as a file of its own (mke2fs -d, mkfs.fat +
# mcopy, mkswap, random bytes) from a source tree generated from SEED, then
# laid into the disk image, whose table is written by sfdisk. Gaps hold
# "bootloader" bytes and the space after the last partition random data;
# deleted files leave stale data in the filesystems' free space. The image is
# EXPANDED (every byte written, no holes), as vendors ship them.
#
# Exit status: 0 built; 1 failed; 2 usage; 77 this layout cannot be built
# here (a missing tool or no loop device), with the reason on stderr.
#
# With MKIMAGE_MANIFEST=FILE, also writes what was built, for the tests:
#   image SIZE SECTOR_SIZE TABLE          (TABLE: gpt, dos or none)
#   part NUMBER START SIZE KIND [FS_SIZE] (bytes; KIND: ext2 ext3 ext4 vfat
#                                          swap btrfs lvm raw extended)
#   member N FILE SIZE                    (a further image file of the same
#                                          multi-device filesystem: btrfs-2dev
#                                          writes OUT and OUT.dev2, each one
#                                          bare btrfs device)
#
# The btrfs layouts: file contents are fixed by SEED, but btrfs itself puts
# random device and chunk-tree UUIDs and the time of making into its
# metadata, and the layouts written through a loop mount (btrfs-written,
# btrfs-log, btrfs-2dev: 77 without loop devices or mount) leave the
# allocation to the kernel: their bytes differ from run to run, their
# files' contents do not. btrfs-bgt needs a mkfs.btrfs that offers
# '-O block-group-tree' (77 otherwise).
set -euo pipefail

LAYOUTS="gpt-esp-ext4-swap mbr-fat16-ext3-ext2 ext4-bigalloc ext4-metabg ext4-uninit ext4-recovery
gpt4k-ext4-fat32 fat12-floppy gpt-zeroed-primary gpt-lvm-random bare-unknown gpt-btrfs-slot
btrfs-default btrfs-single btrfs-mixed btrfs-dup btrfs-written btrfs-log btrfs-bgt gpt-btrfs-ext4
btrfs-2dev"

usage() {
        echo "usage: $0 LAYOUT OUT.img [SEED]" >&2
        echo "layouts:" $LAYOUTS >&2
        exit 2
}
if [ "${1:-}" = --list ]; then
        printf '%s\n' $LAYOUTS
        exit 0
fi
[ $# -ge 2 ] && [ $# -le 3 ] || usage
LAYOUT=$1
OUT=$2
SEED=${3:-1}
case " $(echo $LAYOUTS) " in
*" $LAYOUT "*) ;;
*) echo "mkimage: unknown layout '$LAYOUT'" >&2; usage ;;
esac

export PATH=$PATH:/usr/sbin:/sbin
export MTOOLS_SKIP_CHECK=1
# Fixed timestamps in the filesystems mke2fs makes.
export E2FSPROGS_FAKE_TIME=1600000000

K=1024
M=$((1024 * 1024))

die() { echo "mkimage: $LAYOUT: $*" >&2; exit 1; }
skip() { echo "mkimage: $LAYOUT: cannot be built here: $*" >&2; exit 77; }
need() {
        local t
        for t; do command -v "$t" >/dev/null || skip "'$t' is not installed"; done
}
need python3 openssl sfdisk mke2fs debugfs e2fsck dumpe2fs dd

outdir=$(dirname -- "$OUT")
[ -d "$outdir" ] || die "directory '$outdir' does not exist"
# Scratch space beside OUT: same filesystem, and the final rename is atomic.
TMP=$(mktemp -d "$outdir/.mkimage-$LAYOUT.XXXXXX")
LOOP=""
# What the btrfs layouts written through a mount hold: the mount point
# (unmounted first) and their loop devices.
MNT=""
LOOPS=()
cleanup() {
        if [ -n "$MNT" ] && mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
        local l
        for l in ${LOOPS[@]+"${LOOPS[@]}"}; do
                btrfs device scan --forget "$l" >/dev/null 2>&1 || true
                losetup -d "$l" 2>/dev/null || true
        done
        if [ -n "$LOOP" ]; then losetup -d "$LOOP" 2>/dev/null || true; fi
        rm -rf -- "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
IMG=$TMP/disk.img
IMG2=""
MANIFEST_LINES=()

# ---------------------------------------------------------------- helpers

# rand_stream SIZE KEY: SIZE pseudo-random bytes on stdout, fixed by SEED and KEY.
rand_stream() {
        head -c "$1" /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -iter 1 -pass "pass:bmapscan:$SEED:$LAYOUT:$2"
}
rand_file() { rand_stream "$2" "$3" >"$1"; }
# rand_at FILE OFFSET SIZE KEY: writes random bytes into FILE at OFFSET.
rand_at() {
        rand_stream "$3" "$4" | dd of="$1" bs=64K iflag=fullblock seek="$2" oflag=seek_bytes conv=notrunc status=none
}
# put FILE OFFSET PART: copies PART (holes read as zeros, written out) into FILE at OFFSET.
put() {
        dd if="$3" of="$1" bs=1M seek="$2" oflag=seek_bytes conv=notrunc status=none
}
# new_disk SIZE: an image of SIZE bytes of written zeros (no holes).
new_disk() {
        head -c "$1" /dev/zero >"$IMG"
}
# MKIMAGE_UUID_SALT keeps two test runs at once (the normal and the
# sanitizer build) from making filesystems with one UUID: btrfs and blkid
# know every attached loop device, and mkfs.btrfs refuses a UUID in use.
seeded_uuid() {
        python3 -c 'import sys, uuid; print(uuid.uuid5(uuid.NAMESPACE_OID, sys.argv[1]))' \
                "bmapscan:$SEED:$LAYOUT:${MKIMAGE_UUID_SALT:+$MKIMAGE_UUID_SALT:}$1"
}
manifest() { MANIFEST_LINES+=("$*"); }

# gen_tree DIR KEY NFILES BUDGET [fat]: a source tree of NFILES files holding
# at most about BUDGET bytes: mostly small files, some empty, a few large
# ones, nested directories; for non-FAT trees also symlinks (short, long,
# dangling), hard links and varied permissions. Deterministic from SEED/KEY.
gen_tree() {
        python3 - "$1" "bmapscan:$SEED:$LAYOUT:$2" "$3" "$4" "${5:-}" <<'EOF'
import os, random, sys

root, key, nfiles, budget, flavour = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
fat = flavour == "fat"
rng = random.Random(key)
os.makedirs(root, exist_ok=True)
words = ["boot", "lib", "etc", "usr", "share", "data", "cfg", "modules", "firmware", "Docs", "img", "var",
         "opt", "Cache", "log", "include", "bin", "src", "locale", "fonts"]
dirs = [""]
ndirs = max(2, nfiles // 12)
for i in range(ndirs):
    parent = rng.choice(dirs)
    if parent.count("/") >= 6:
        parent = ""
    name = "%s-%d" % (rng.choice(words), i)
    if rng.random() < 0.15:
        name = "a-rather-long-directory-name-for-vfat-lfn-entries-%s-%d" % (rng.choice(words), i)
    d = os.path.join(parent, name)
    os.makedirs(os.path.join(root, d))
    dirs.append(d)
# A few empty directories stay empty: drop them from the choices.
for d in rng.sample(dirs[1:], min(3, len(dirs) - 1)):
    dirs.remove(d)

left = budget
files = []
for i in range(nfiles):
    r = rng.random()
    if r < 0.06:
        size = 0
    elif r < 0.45:
        size = rng.randint(1, 4096)
    elif r < 0.55:
        size = 4096 * rng.randint(1, 8)  # whole blocks
    elif r < 0.85:
        size = rng.randint(4097, 65536)
    elif r < 0.97:
        size = rng.randint(65537, 512 * 1024)
    else:
        size = rng.randint(2 << 20, 6 << 20)
    # Small budgets (a floppy) get proportionally small files.
    size = min(size, max(budget // 4, 4096) if size > (2 << 20) else max(budget // 10, 4096), max(0, left))
    left -= size
    ext = rng.choice([".bin", ".txt", ".cfg", ".so", ".dat", "", ".ko", ".JPG"])
    name = "%s%s_%d%s" % (rng.choice(words).lower(), rng.choice(["", "-x", "_Y", ".v2"]), i, ext)
    if rng.random() < 0.1:
        name = "long-file-name-with-several-parts-%d-%s%s" % (i, rng.choice(words), ext)
    path = os.path.join(root, rng.choice(dirs), name)
    kind = rng.random()
    with open(path, "wb") as f:
        if kind < 0.15 and size:
            # text: compressible, line structured
            line = ("%s %d\n" % (rng.choice(words), rng.randint(0, 10**6))).encode()
            f.write((line * (size // len(line) + 1))[:size])
        elif kind < 0.25 and size > 16384:
            # a zero-filled stretch inside the data: used blocks that read as zeros
            a = rng.randint(0, size // 2)
            b = min(size, a + rng.randint(8192, 65536))
            f.write(rng.randbytes(a))
            f.write(bytes(b - a))
            f.write(rng.randbytes(size - b))
        else:
            f.write(rng.randbytes(size))
    mode = rng.choice([0o644, 0o644, 0o644, 0o600, 0o755, 0o444, 0o640])
    if not fat:
        os.chmod(path, mode)
    t = 1500000000 + rng.randint(0, 10**8)
    os.utime(path, (t, t))
    files.append(path)

if not fat:
    for i in range(max(3, nfiles // 30)):
        d = os.path.join(root, rng.choice(dirs))
        r = rng.random()
        if r < 0.5:
            target = os.path.relpath(rng.choice(files), d)
        elif r < 0.7:
            target = "/" + "/".join(rng.choice(words) for _ in range(rng.randint(12, 30)))  # long: not inline
        elif r < 0.85:
            target = "does-not-exist-%d" % i  # dangling
        else:
            target = os.path.relpath(os.path.join(root, rng.choice(dirs)), d) or "."
        os.symlink(target, os.path.join(d, "link_%d" % i))
    for i in range(max(2, nfiles // 50)):
        src = rng.choice(files)
        os.link(src, os.path.join(root, rng.choice(dirs), "hardlink_%d" % i))
    os.chmod(os.path.join(root, dirs[1]), 0o700)
for d in sorted(dirs, key=lambda d: -d.count("/")):
    t = 1500000000 + rng.randint(0, 10**8)
    os.utime(os.path.join(root, d), (t, t), follow_symlinks=False)
EOF
}

# junk_tree DIR KEY BUDGET: files that are copied in and deleted again, so
# that the filesystem's free space holds stale data.
junk_tree() {
        local i chunk=$((512 * K))
        [ "$3" -ge $((2 * chunk)) ] || chunk=$(($3 / 2))
        mkdir -p "$1"
        for ((i = 0; i < $3 / chunk; i++)); do
                rand_file "$1/junk$i" "$chunk" "$2-junk$i"
        done
}

# mk_ext FILE FS_SIZE TYPE KEY NFILES BUDGET [MKE2FS-OPTIONS...]
mk_ext() {
        local file=$1 size=$2 type=$3 key=$4 nfiles=$5 budget=$6
        shift 6
        local src=$TMP/src-$key
        gen_tree "$src" "$key" "$nfiles" "$budget"
        junk_tree "$src/junk" "$key" $((budget / 4))
        truncate -s "$size" "$file"
        mke2fs -q -F -t "$type" -U "$(seeded_uuid "$key")" -E "hash_seed=$(seeded_uuid "$key-hash")" \
                -L "$key" -d "$src" "$@" "$file" >"$TMP/mke2fs.log" 2>&1 ||
                die "mke2fs -t $type $* failed: $(cat "$TMP/mke2fs.log")"
        # Delete the junk: its blocks become free but keep their bytes.
        {
                for f in "$src"/junk/*; do echo "rm /junk/${f##*/}"; done
                echo "rmdir /junk"
        } >"$TMP/junk.cmds"
        debugfs -w -f "$TMP/junk.cmds" "$file" >"$TMP/debugfs.log" 2>&1 || die "debugfs rm junk failed: $(cat "$TMP/debugfs.log")"
        if grep -q "rm: \|rmdir: " "$TMP/debugfs.log"; then die "debugfs rm junk: $(cat "$TMP/debugfs.log")"; fi
        rm -rf "$src"
        e2fsck -fn "$file" >"$TMP/fsck.log" 2>&1 || die "the new $type filesystem does not pass e2fsck -fn: $(cat "$TMP/fsck.log")"
}

# mk_fat FILE SIZE BITS KEY NFILES BUDGET [MKFS.FAT-OPTIONS...]; with
# FAT_BUILD_SIZE set, the filesystem is made that large, populated, and then
# shrunk to SIZE (see fat_shrink).
mk_fat() {
        local file=$1 size=$2 bits=$3 key=$4 nfiles=$5 budget=$6
        shift 6
        local final=$size
        size=${FAT_BUILD_SIZE:-$size}
        need mkfs.fat mcopy mdeltree fsck.fat
        local src=$TMP/src-$key
        gen_tree "$src" "$key" "$nfiles" "$budget" fat
        truncate -s "$size" "$file"
        mkfs.fat -F "$bits" -i "$(printf '%08X' $((SEED * 2654435761 % 4294967296)))" -n "$(echo "${key:0:11}" | tr a-z A-Z)" "$@" "$file" \
                >"$TMP/mkfs.log" 2>&1 || die "mkfs.fat -F $bits $* failed: $(cat "$TMP/mkfs.log")"
        # The junk first, so that its clusters sit between the files'.
        junk_tree "$TMP/junk-$key" "$key" $((budget / 4))
        mkdir -p "$TMP/junkroot-$key/junk" && mv "$TMP/junk-$key"/* "$TMP/junkroot-$key/junk/"
        mcopy -s -m -i "$file" "$TMP/junkroot-$key/junk" ::/ </dev/null >"$TMP/mcopy.log" 2>&1 ||
                die "mcopy of the junk failed: $(cat "$TMP/mcopy.log")"
        mcopy -s -m -i "$file" "$src"/* ::/ </dev/null >"$TMP/mcopy.log" 2>&1 ||
                die "mcopy -s failed: $(cat "$TMP/mcopy.log")"
        mdeltree -i "$file" ::/junk </dev/null >"$TMP/mcopy.log" 2>&1 || die "mdeltree failed: $(cat "$TMP/mcopy.log")"
        rm -rf "$src" "$TMP/junkroot-$key"
        [ "$final" = "$size" ] || fat_shrink "$file" "$final"
        fsck.fat -n "$file" >"$TMP/fsck.log" 2>&1 || die "the new FAT$bits filesystem does not pass fsck.fat -n: $(cat "$TMP/fsck.log")"
}

# fat_shrink FILE SIZE: makes the FAT filesystem in FILE end at SIZE bytes
# (its used clusters must all lie below) and truncates FILE there. This is
# how a FAT32 with fewer than 65525 clusters gets its files: mtools decides
# FAT32 by the cluster count, so it is populated while still large enough.
fat_shrink() {
        python3 - "$1" "$2" <<'EOF' || die "cannot shrink the FAT filesystem in $1"
import struct, sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    b = bytearray(f.read(512))
    ss, spc, res, nfats = struct.unpack_from("<HBHB", b, 11)
    fatsz = struct.unpack_from("<I", b, 0x24)[0]
    assert struct.unpack_from("<H", b, 0x16)[0] == 0 and fatsz, "not a FAT32 BPB"
    total = size // ss
    first_data = res + nfats * fatsz
    clusters = (total - first_data) // spc
    f.seek(res * ss)
    fat = f.read(fatsz * ss)
    entries = [v & 0x0FFFFFFF for v in struct.unpack_from("<%dI" % (len(fat) // 4), fat)]
    beyond = [n for n in range(clusters + 2, len(entries)) if entries[n]]
    if beyond:
        sys.exit("clusters %d.. are used past the new end (cluster %d)" % (beyond[0], clusters + 1))
    free = sum(1 for n in range(2, clusters + 2) if entries[n] == 0)
    struct.pack_into("<I", b, 0x20, total)
    f.seek(0)
    f.write(b)
    backup = struct.unpack_from("<H", b, 0x32)[0]
    if backup and backup < res:
        f.seek(backup * ss)
        f.write(b)
    fsinfo = struct.unpack_from("<H", b, 0x30)[0]
    f.seek(fsinfo * ss + 488)
    f.write(struct.pack("<I", free))
    f.truncate(size)
EOF
}

# mk_swap FILE SIZE KEY: a swap area over stale random pages.
mk_swap() {
        need mkswap
        rand_file "$1" "$2" "$3-stale"
        mkswap -L "$3" -U "$(seeded_uuid "$3")" "$1" >"$TMP/mkswap.log" 2>&1 || die "mkswap failed: $(cat "$TMP/mkswap.log")"
}

# table FILE: writes the sfdisk script on stdin into FILE's table.
table() {
        sfdisk -q --no-reread --no-tell-kernel "$1" >"$TMP/sfdisk.log" 2>&1 || die "sfdisk failed: $(cat "$TMP/sfdisk.log")"
}

# bootloader: "boot code" in the MBR and bootloader bytes at sector 64 (as a
# Rockchip idbloader), as vendors' images have them.
bootloader_gpt() {
        { printf '\xfa\x31\xc0\x8e\xd0'; rand_stream 435 mbr-code; } | dd of="$IMG" conv=notrunc status=none
        rand_at "$IMG" $((64 * 512)) $((200 * K)) idbloader
        rand_at "$IMG" $((512 * K)) $((300 * K)) u-boot
}

# tail_random FROM: random data from FROM to the end of the GPT's usable
# area (the backup table stays intact) or, for MBR, of the disk.
tail_random() {
        local from=$1 end ss
        end=$(sfdisk -d "$IMG" 2>/dev/null | sed -n 's/^last-lba: *//p')
        ss=$(sfdisk -d "$IMG" 2>/dev/null | sed -n 's/^sector-size: *//p')
        if [ -n "$end" ]; then end=$(((end + 1) * ${ss:-512})); else end=$(stat -c %s "$IMG"); fi
        [ "$end" -gt "$from" ] || die "no room after the last partition ($from >= $end)"
        rand_at "$IMG" "$from" $((end - from)) after-last
}

# ---------------------------------------------------------------- layouts

GPT_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
GPT_LINUX=0FC63DAF-8483-4772-8E79-3D69D8477DE4
GPT_SWAP=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F
GPT_LVM=E6D6D379-F507-44C2-A23C-238F2A3DF928

layout_gpt_esp_ext4_swap() {
        local disk=$((160 * M)) s1=$((1 * M)) z1=$((40 * M)) s2=$((41 * M)) z2=$((80 * M)) s3=$((121 * M)) z3=$((16 * M))
        mk_fat "$TMP/p1" "$z1" 32 esp 300 $((10 * M)) -h $((s1 / 512))
        mk_ext "$TMP/p2" "$z2" ext4 rootfs 1500 $((36 * M)) -b 4096
        mk_swap "$TMP/p3" "$z3" swap
        new_disk "$disk"
        table "$IMG" <<EOF
label: gpt
label-id: $(seeded_uuid label)
unit: sectors
first-lba: 34
start=$((s1 / 512)), size=$((z1 / 512)), type=$GPT_ESP, name="EFI system", uuid=$(seeded_uuid p1)
start=$((s2 / 512)), size=$((z2 / 512)), type=$GPT_LINUX, name="rootfs", uuid=$(seeded_uuid p2)
start=$((s3 / 512)), size=$((z3 / 512)), type=$GPT_SWAP, name="swap", uuid=$(seeded_uuid p3)
EOF
        put "$IMG" "$s1" "$TMP/p1"
        put "$IMG" "$s2" "$TMP/p2"
        put "$IMG" "$s3" "$TMP/p3"
        bootloader_gpt
        tail_random $((s3 + z3))
        manifest image "$disk" 512 gpt
        manifest part 1 "$s1" "$z1" vfat
        manifest part 2 "$s2" "$z2" ext4
        manifest part 3 "$s3" "$z3" swap
}

layout_mbr_fat16_ext3_ext2() {
        local disk=$((128 * M))
        local s1=$((63 * 512)) z1=$((40960 * 512))
        local xs=$((22 * M)) xz=$((92 * M))
        local z5=$((48 * M)) z6=$((32 * M)) f6=$((20 * M))
        mk_fat "$TMP/p1" "$z1" 16 boot 400 $((8 * M)) -h 63
        mk_ext "$TMP/p5" "$z5" ext3 root3 1200 $((20 * M)) -b 1024
        mk_ext "$TMP/p6" "$f6" ext2 data2 500 $((8 * M)) -b 4096
        new_disk "$disk"
        # The extended partition's gaps hold random bytes: only the EBRs
        # sfdisk writes over them are tables, the rest must be kept too.
        rand_at "$IMG" "$xs" "$xz" ebr-gaps
        # Logical partitions 1 MiB after their EBRs (sfdisk puts each EBR
        # in the sector before or at the start of the extended partition).
        local s5=$((xs + 1 * M)) s6=$((xs + 1 * M + z5 + 1 * M))
        table "$IMG" <<EOF
label: dos
label-id: 0x$(printf '%08x' $((SEED * 40503 + 12345)))
unit: sectors
start=63, size=$((z1 / 512)), type=6, bootable
start=$((xs / 512)), size=$((xz / 512)), type=5
start=$((s5 / 512)), size=$((z5 / 512)), type=83
start=$((s6 / 512)), size=$((z6 / 512)), type=83
EOF
        # The EBRs must have come out clean over the random bytes: the table
        # reads back as written.
        sfdisk -d "$IMG" >"$TMP/dump" 2>&1 || die "the table does not read back: $(cat "$TMP/dump")"
        grep -q "5 : start= *$((s5 / 512)), size= *$((z5 / 512)), type=83" "$TMP/dump" &&
                grep -q "6 : start= *$((s6 / 512)), size= *$((z6 / 512)), type=83" "$TMP/dump" ||
                die "the logical partitions do not read back: $(cat "$TMP/dump")"
        put "$IMG" "$s1" "$TMP/p1"
        put "$IMG" "$s5" "$TMP/p5"
        # ext2 smaller than its partition: the rest of the partition holds stale bytes.
        rand_at "$IMG" "$s6" "$z6" p6-stale
        put "$IMG" "$s6" "$TMP/p6"
        { printf '\xfa\x31\xc0\x8e\xd0'; rand_stream 435 mbr-code; } | dd of="$IMG" conv=notrunc status=none
        rand_at "$IMG" $((8 * K)) $((20 * K)) spl
        rand_at "$IMG" $((s1 + z1)) $((xs - s1 - z1)) env
        tail_random $((xs + xz))
        manifest image "$disk" 512 dos
        manifest part 1 "$s1" "$z1" vfat
        manifest part 2 "$xs" "$xz" extended
        manifest part 5 "$s5" "$z5" ext3
        manifest part 6 "$s6" "$z6" ext2 "$f6"
}

bare_ext() {
        local size=$1
        shift
        mk_ext "$IMG.fs" "$size" "$@"
        new_disk "$size"
        put "$IMG" 0 "$IMG.fs"
        rm -f "$IMG.fs"
        manifest image "$size" 512 none
        manifest part 0 0 "$size" "$1"
}

layout_ext4_bigalloc() {
        bare_ext $((128 * M)) ext4 bigalloc 800 $((40 * M)) -b 4096 -O bigalloc -C $((64 * K))
}

layout_ext4_metabg() {
        bare_ext $((96 * M)) ext4 metabg 1500 $((28 * M)) -b 1024 -O meta_bg,64bit,^resize_inode
}

layout_ext4_uninit() {
        # Mostly empty, with many groups: most are BLOCK_UNINIT.
        bare_ext $((256 * M)) ext4 uninit 300 $((6 * M)) -b 4096 -g 4096 -N 8192
        # Into a file: 'dumpe2fs | grep -q' dies of SIGPIPE under pipefail
        # when grep stops reading before dumpe2fs is done.
        dumpe2fs "$IMG" >"$TMP/dump" 2>/dev/null || die "dumpe2fs failed"
        grep -q BLOCK_UNINIT "$TMP/dump" || die "no BLOCK_UNINIT group: $(grep '^Group' "$TMP/dump" | head)"
}

# ext4 whose journal holds a committed, unreplayed transaction: it rewrites
# three free blocks (F1) and the block bitmap, in which it marks sixteen
# more free blocks (F2) used; F2 got its data in place before the commit
# (ordered mode). On disk F1 and F2 look free: only the journal says not.
layout_ext4_recovery() {
        local size=$((64 * M)) fs=$TMP/fs
        mk_ext "$fs" "$size" ext4 journal 600 $((24 * M)) -b 4096 -O ^metadata_csum
        local free bbm
        free=$(dumpe2fs "$fs" 2>/dev/null | sed -n '/^Group 0:/,/^Group 1:/s/^ *Free blocks: *//p')
        bbm=$(dumpe2fs "$fs" 2>/dev/null | sed -n '/^Group 0:/,/^Group 1:/s/^ *Block bitmap at \([0-9]*\).*/\1/p')
        # The last free run of group 0 with room for 3 + 16 blocks.
        local run a b
        for run in ${free//,/ }; do
                a=${run%-*}
                b=${run#*-}
                if [ $((b - a)) -ge 400 ]; then local fa=$a; fi
        done
        [ -n "${fa:-}" ] && [ -n "$bbm" ] || die "no free run in group 0 (free: $free, bitmap at: $bbm)"
        local f1=$((fa + 100)) f2=$((fa + 200))
        # F2's data, written in place.
        rand_at "$fs" $((f2 * 4096)) $((16 * 4096)) f2-data
        # The journaled bitmap: the on-disk one with F2 set.
        dd if="$fs" of="$TMP/bitmap" bs=4096 skip="$bbm" count=1 status=none
        python3 - "$TMP/bitmap" "$f2" 16 <<'EOF'
import sys
path, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = bytearray(open(path, "rb").read())
for blk in range(first, first + n):
    b[blk // 8] |= 1 << (blk % 8)
open(path, "wb").write(b)
EOF
        { cat "$TMP/bitmap"; rand_stream $((3 * 4096)) f1-data; } >"$TMP/jblocks"
        printf 'jo\njw -b %s,%s,%s,%s %s\njc\n' "$bbm" "$f1" $((f1 + 1)) $((f1 + 2)) "$TMP/jblocks" >"$TMP/j.cmds"
        debugfs -w -f "$TMP/j.cmds" "$fs" >"$TMP/debugfs.log" 2>&1 || die "debugfs journal write failed: $(cat "$TMP/debugfs.log")"
        if ! dumpe2fs -h "$fs" 2>/dev/null | grep -q needs_recovery; then
                debugfs -w -R "feature needs_recovery" "$fs" >"$TMP/debugfs.log" 2>&1 || die "cannot set needs_recovery: $(cat "$TMP/debugfs.log")"
        fi
        dumpe2fs -h "$fs" 2>/dev/null | grep -q needs_recovery || die "needs_recovery is not set"
        # Check the transaction replays as intended (on a copy).
        cp --sparse=always "$fs" "$TMP/replayed"
        e2fsck -E journal_only -y "$TMP/replayed" >"$TMP/fsck.log" 2>&1 || true
        cmp -s <(dd if="$TMP/replayed" bs=4096 skip="$f1" count=3 status=none) <(rand_stream $((3 * 4096)) f1-data) ||
                die "the journal did not replay F1: $(cat "$TMP/fsck.log")"
        dumpe2fs "$TMP/replayed" 2>/dev/null | sed -n '/^Group 0:/,/^Group 1:/s/^ *Free blocks: *//p' | grep -q "$((f2 - 1)), $((f2 + 16))-\|-$((f2 - 1)), $((f2 + 16))" ||
                die "the replayed bitmap does not mark F2 used: $(dumpe2fs "$TMP/replayed" 2>/dev/null | grep -m1 ' Free blocks: ')"
        rm -f "$TMP/replayed"
        new_disk "$size"
        put "$IMG" 0 "$fs"
        manifest image "$size" 512 none
        manifest part 0 0 "$size" ext4
}

layout_gpt4k_ext4_fat32() {
        local disk=$((128 * M)) s1=$((1 * M)) z1=$((48 * M)) s2=$((49 * M)) z2=$((64 * M))
        mk_ext "$TMP/p1" "$z1" ext4 root4k 800 $((20 * M)) -b 4096
        # A FAT32 with 4096-byte sectors needs 256 MiB for 65525 clusters:
        # this one is smaller (16320 clusters), as mkfs.fat allows.
        FAT_BUILD_SIZE=$((260 * M)) mk_fat "$TMP/p2" "$z2" 32 boot4k 300 $((12 * M)) -S 4096 -s 1 -h $((s2 / 4096))
        new_disk "$disk"
        if LOOP=$(losetup -b 4096 --find --show "$IMG" 2>"$TMP/losetup.log"); then
                table "$LOOP" <<EOF
label: gpt
label-id: $(seeded_uuid label)
unit: sectors
start=$((s1 / 4096)), size=$((z1 / 4096)), type=$GPT_LINUX, name="root", uuid=$(seeded_uuid p1)
start=$((s2 / 4096)), size=$((z2 / 4096)), type=$GPT_ESP, name="boot", uuid=$(seeded_uuid p2)
EOF
                sync
                losetup -d "$LOOP"
                LOOP=""
        elif command -v fdisk >/dev/null; then
                # No loop device: fdisk can be told the sector size of a file.
                echo "mkimage: $LAYOUT: no loop device ($(cat "$TMP/losetup.log")): writing the 4096-byte-sector GPT with fdisk -b 4096" >&2
                printf 'g\nn\n1\n%s\n+%s\nn\n2\n%s\n+%s\nt\n2\n1\nw\n' $((s1 / 4096)) $((z1 / 4096 - 1)) \
                        $((s2 / 4096)) $((z2 / 4096 - 1)) | fdisk -b 4096 "$IMG" >"$TMP/fdisk.log" 2>&1 ||
                        die "fdisk -b 4096 failed: $(cat "$TMP/fdisk.log")"
        else
                skip "no loop device to give the image 4096-byte sectors, and no fdisk -b 4096"
        fi
        put "$IMG" "$s1" "$TMP/p1"
        put "$IMG" "$s2" "$TMP/p2"
        { printf '\xfa\x31\xc0\x8e\xd0'; rand_stream 435 mbr-code; } | dd of="$IMG" conv=notrunc status=none
        # 4096-byte sectors: the GPT array ends at 24 KiB; a bootloader at 64 KiB.
        rand_at "$IMG" $((64 * K)) $((400 * K)) bootloader
        # last-lba counts 4096-byte sectors: 5 at the end hold the backup GPT.
        rand_at "$IMG" $((s2 + z2)) $((disk - (s2 + z2) - 8 * 4096)) after-last
        manifest image "$disk" 4096 gpt
        manifest part 1 "$s1" "$z1" ext4
        manifest part 2 "$s2" "$z2" vfat
}

layout_fat12_floppy() {
        local size=$((1440 * K))
        mk_fat "$IMG.fs" "$size" 12 floppy 60 $((900 * K))
        new_disk "$size"
        put "$IMG" 0 "$IMG.fs"
        rm -f "$IMG.fs"
        manifest image "$size" 512 none
        manifest part 0 0 "$size" vfat
}

layout_gpt_zeroed_primary() {
        local disk=$((64 * M)) s1=$((1 * M)) z1=$((56 * M))
        mk_ext "$TMP/p1" "$z1" ext4 zeroed 700 $((20 * M)) -b 4096
        new_disk "$disk"
        table "$IMG" <<EOF
label: gpt
label-id: $(seeded_uuid label)
unit: sectors
start=$((s1 / 512)), size=$((z1 / 512)), type=$GPT_LINUX, name="root", uuid=$(seeded_uuid p1)
EOF
        put "$IMG" "$s1" "$TMP/p1"
        bootloader_gpt
        tail_random $((s1 + z1))
        # The primary GPT header is lost: the backup at the last LBA remains.
        dd if=/dev/zero of="$IMG" bs=512 seek=1 count=1 conv=notrunc status=none
        sfdisk -d "$IMG" 2>/dev/null | grep -q "start= *$((s1 / 512))," || die "the table is not found from the backup GPT"
        manifest image "$disk" 512 gpt
        manifest part 1 "$s1" "$z1" ext4
}

layout_gpt_lvm_random() {
        local disk=$((96 * M)) s1=$((1 * M)) z1=$((32 * M)) s2=$((33 * M)) z2=$((56 * M))
        rand_file "$TMP/p1" "$z1" lvm
        mk_ext "$TMP/p2" "$z2" ext4 lvmroot 700 $((20 * M)) -b 4096
        new_disk "$disk"
        table "$IMG" <<EOF
label: gpt
label-id: $(seeded_uuid label)
unit: sectors
start=$((s1 / 512)), size=$((z1 / 512)), type=$GPT_LVM, name="lvm", uuid=$(seeded_uuid p1)
start=$((s2 / 512)), size=$((z2 / 512)), type=$GPT_LINUX, name="root", uuid=$(seeded_uuid p2)
EOF
        put "$IMG" "$s1" "$TMP/p1"
        put "$IMG" "$s2" "$TMP/p2"
        bootloader_gpt
        tail_random $((s2 + z2))
        manifest image "$disk" 512 gpt
        manifest part 1 "$s1" "$z1" lvm
        manifest part 2 "$s2" "$z2" ext4
}

layout_bare_unknown() {
        local size=$((32 * M))
        rand_file "$IMG" "$size" bare
        manifest image "$size" 512 none
        manifest part 0 0 "$size" raw
}

layout_gpt_btrfs_slot() {
        command -v mkfs.btrfs >/dev/null || skip "mkfs.btrfs is not installed (btrfs-progs)"
        local disk=$((200 * M)) s1=$((1 * M)) z1=$((160 * M)) s2=$((161 * M)) z2=$((32 * M))
        local src=$TMP/src-slot
        gen_tree "$src" slot 600 $((24 * M))
        rand_file "$TMP/p1" "$z1" btrfs-stale
        mkfs.btrfs -q -f -U "$(seeded_uuid p1-fs)" -L slot-a --rootdir "$src" "$TMP/p1" >"$TMP/mkfs.log" 2>&1 ||
                die "mkfs.btrfs failed: $(cat "$TMP/mkfs.log")"
        rm -rf "$src"
        mk_ext "$TMP/p2" "$z2" ext4 slotdata 200 $((8 * M)) -b 4096
        new_disk "$disk"
        table "$IMG" <<EOF
label: gpt
label-id: $(seeded_uuid label)
unit: sectors
start=$((s1 / 512)), size=$((z1 / 512)), type=$GPT_LINUX, name="slot-a", uuid=$(seeded_uuid p1)
start=$((s2 / 512)), size=$((z2 / 512)), type=$GPT_LINUX, name="data", uuid=$(seeded_uuid p2)
EOF
        put "$IMG" "$s1" "$TMP/p1"
        put "$IMG" "$s2" "$TMP/p2"
        bootloader_gpt
        tail_random $((s2 + z2))
        manifest image "$disk" 512 gpt
        manifest part 1 "$s1" "$z1" btrfs
        manifest part 2 "$s2" "$z2" ext4
}

# ---------------------------------------------------------------- btrfs

# mk_btrfs FILE SIZE KEY NFILES BUDGET [MKFS.BTRFS-OPTIONS...]: a btrfs made
# by mkfs.btrfs --rootdir from a seeded tree, over stale random bytes (its
# free space keeps them: mkfs writes only what it allocates).
mk_btrfs() {
        local file=$1 size=$2 key=$3 nfiles=$4 budget=$5
        shift 5
        need mkfs.btrfs btrfs
        local src=$TMP/src-$key
        gen_tree "$src" "$key" "$nfiles" "$budget"
        rand_file "$file" "$size" "$key-stale"
        mkfs.btrfs -q -f -K -U "$(seeded_uuid "$key-fs")" -L "$key" --rootdir "$src" "$@" "$file" >"$TMP/mkfs.log" 2>&1 ||
                die "mkfs.btrfs $* failed: $(cat "$TMP/mkfs.log")"
        rm -rf "$src"
        # mkfs.btrfs --rootdir grows a regular file it finds too small.
        [ "$(stat -c %s "$file")" = "$size" ] ||
                die "mkfs.btrfs $* grew the $size-byte file to $(stat -c %s "$file") bytes: give it a smaller tree or more room"
        btrfs check --readonly "$file" >"$TMP/check.log" 2>&1 ||
                die "the new btrfs ($*) does not pass btrfs check --readonly: $(tail -n 20 "$TMP/check.log")"
}

# bare_btrfs SIZE KEY NFILES BUDGET [MKFS.BTRFS-OPTIONS...]: a disk that is
# one btrfs device, no partition table.
bare_btrfs() {
        local size=$1
        mk_btrfs "$IMG" "$@"
        manifest image "$size" 512 none
        manifest part 0 0 "$size" btrfs
}

# btrfs_attach FILE: sets BLOOP to a loop device over FILE (for mounting),
# or exits 77: no loop device here.
btrfs_attach() {
        need losetup
        BLOOP=$(losetup --find --show "$1" 2>"$TMP/losetup.log") ||
                skip "no loop device ($(head -c 200 "$TMP/losetup.log")): this layout is written through a mount"
        LOOPS+=("$BLOOP")
}

# btrfs_mount DEV [MOUNT-OPTIONS]: mounts DEV on $MNT, or exits 77 (no
# btrfs in this kernel, no right to mount). nodiscard: a loop device turns
# discards into holes in the image, and freed space must keep its stale bytes.
btrfs_mount() {
        need mount umount mountpoint
        MNT=$TMP/mnt
        mkdir -p "$MNT"
        mount -t btrfs -o "nodiscard,noatime${2:+,$2}" "$1" "$MNT" 2>"$TMP/mount.log" ||
                skip "cannot mount btrfs ($(head -c 300 "$TMP/mount.log")): this layout is written through a mount"
}

# btrfs_umount: unmounts $MNT, which commits everything (no log tree is left).
btrfs_umount() {
        btrfs filesystem sync "$MNT" >/dev/null
        umount "$MNT" || die "cannot unmount $MNT"
        MNT=""
}
btrfs_detach() {
        local l
        for l in "${LOOPS[@]}"; do
                btrfs device scan --forget "$l" >/dev/null 2>&1 || true
                losetup -d "$l" || die "cannot detach $l"
        done
        LOOPS=()
}

# btrfs-default: what mkfs.btrfs makes by default (DUP metadata, free-space
# tree, no-holes), filled with --rootdir.
layout_btrfs_default() {
        bare_btrfs $((160 * M)) default 900 $((40 * M))
}

layout_btrfs_single() {
        bare_btrfs $((128 * M)) single 700 $((36 * M)) -m single -d single
}

# Mixed block groups (data and metadata in the same chunks), as mkfs
# chooses for small filesystems; 80 MiB keeps the superblock copy at 64 MiB.
layout_btrfs_mixed() {
        bare_btrfs $((80 * M)) mixed 500 $((24 * M)) --mixed
}

# DUP data: every data extent is written twice on the one device.
layout_btrfs_dup() {
        bare_btrfs $((256 * M)) dup 600 $((28 * M)) -d dup
}

# Block group items in their own tree (compat_ro BLOCK_GROUP_TREE), where
# the installed mkfs.btrfs can make it.
layout_btrfs_bgt() {
        need mkfs.btrfs
        mkfs.btrfs -O list-all 2>&1 | grep -q '^block-group-tree' ||
                skip "mkfs.btrfs $(mkfs.btrfs --version 2>&1 | awk '{print $NF}') cannot make a block-group-tree filesystem ('-O list-all' does not offer it: btrfs-progs before 6.3 has it only in experimental builds)"
        bare_btrfs $((160 * M)) bgt 800 $((36 * M)) -O block-group-tree
}

# btrfs made by mkfs, then written by the kernel through a loop mount with
# compress=zstd: subvolumes (one nested), a read-only snapshot, files
# deleted afterwards (free space inside data chunks, still holding their
# bytes), files deleted from the subvolume but kept by the snapshot, files
# overwritten in their middle (the old extent stays whole while any part
# of it is referenced), preallocated extents (fallocate, one also past
# EOF, partly written). Unmounted cleanly: no log tree.
layout_btrfs_written() {
        need mkfs.btrfs btrfs fallocate
        local size=$((192 * M))
        mk_btrfs "$IMG" "$size" written 150 $((6 * M))
        btrfs_attach "$IMG"
        btrfs_mount "$BLOOP" compress=zstd
        local m=$MNT
        btrfs subvolume create "$m/@root" >/dev/null || die "btrfs subvolume create failed"
        btrfs subvolume create "$m/@home" >/dev/null || die "btrfs subvolume create failed"
        gen_tree "$TMP/src-root" rootw 500 $((20 * M))
        gen_tree "$TMP/src-home" homew 250 $((12 * M))
        cp -a "$TMP/src-root/." "$m/@root/"
        cp -a "$TMP/src-home/." "$m/@home/"
        rm -rf "$TMP/src-root" "$TMP/src-home"
        btrfs subvolume create "$m/@home/nested" >/dev/null || die "btrfs subvolume create (nested) failed"
        rand_file "$m/@home/nested/blob.bin" $((3 * M)) nested-blob
        # Kept by the snapshot, deleted from @root after it.
        junk_tree "$m/@root/kept-by-snapshot" snapkept $((6 * M))
        rand_file "$m/@root/overwritten.bin" $((4 * M)) overwritten
        rand_file "$m/@home/bookend.bin" $((4 * M)) bookend
        btrfs filesystem sync "$m" >/dev/null
        btrfs subvolume snapshot -r "$m/@root" "$m/@root-snapshot" >/dev/null || die "btrfs subvolume snapshot failed"
        # Junk written, committed, deleted: freed data extents with stale bytes.
        junk_tree "$m/@root/junk" junkroot $((10 * M))
        junk_tree "$m/junk-top" junktop $((6 * M))
        btrfs filesystem sync "$m" >/dev/null
        rm -rf "$m/@root/junk" "$m/junk-top" "$m/@root/kept-by-snapshot"
        # Overwritten middles: copy-on-write leaves the old extents in place.
        rand_at "$m/@root/overwritten.bin" $((1 * M)) $((512 * K)) overwritten-middle
        rand_at "$m/@home/bookend.bin" $((1 * M)) $((2 * M)) bookend-middle
        # Preallocated: 8 MiB with 64 KiB written in its middle, and 2 MiB
        # preallocated past the end of a small file.
        fallocate -l $((8 * M)) "$m/@home/prealloc.img" || die "fallocate failed"
        rand_at "$m/@home/prealloc.img" $((3 * M)) $((64 * K)) prealloc-middle
        rand_file "$m/@home/prealloc-keep-size.txt" 5000 keep-size
        fallocate -n -o 5000 -l $((2 * M)) "$m/@home/prealloc-keep-size.txt" || die "fallocate --keep-size failed"
        btrfs_umount
        btrfs_detach
        btrfs check --readonly "$IMG" >"$TMP/check.log" 2>&1 ||
                die "the written btrfs does not pass btrfs check --readonly: $(tail -n 20 "$TMP/check.log")"
        manifest image "$size" 512 none
        manifest part 0 0 "$size" btrfs
}

# A crash image: a btrfs whose last fsyncs live only in its log tree
# (log_root != 0), as a device holds it when the power is cut after an
# fsync and before the next commit: mkfs --rootdir of a seeded tree,
# mounted, a file written and committed, then appended to and a new file
# written, both fsync'd; the image is the backing file copied at that
# moment (the mount is thrown away). The appended and new data have file
# extents in the log tree and no extent item in the extent tree.
layout_btrfs_log() {
        need mkfs.btrfs btrfs sync
        local size=$((160 * M))
        mk_btrfs "$IMG" "$size" log 400 $((16 * M))
        btrfs_attach "$IMG"
        btrfs_mount "$BLOOP"
        local m=$MNT
        rand_file "$m/appended.bin" $((1 * M)) appended
        btrfs filesystem sync "$m" >/dev/null
        rand_stream $((2 * M)) appended-more >>"$m/appended.bin"
        sync "$m/appended.bin"
        rand_file "$m/fsynced-new.bin" $((1 * M + 5000)) fsynced-new
        sync "$m/fsynced-new.bin"
        local logroot
        logroot=$(btrfs inspect-internal dump-super "$BLOOP" | awk '$1 == "log_root" {print $2}')
        [ -n "$logroot" ] && [ "$logroot" != 0 ] || die "no log tree after fsync (log_root ${logroot:-?}): a commit came first"
        # What the device holds now, as a regular read of the backing file sees it.
        cp --sparse=never "$IMG" "$TMP/crashed"
        btrfs_umount
        btrfs_detach
        mv -f "$TMP/crashed" "$IMG"
        [ "$(btrfs inspect-internal dump-super "$IMG" | awk '$1 == "log_root" {print $2}')" = "$logroot" ] ||
                die "the copied image lost its log tree"
        btrfs check --readonly "$IMG" >"$TMP/check.log" 2>&1 ||
                die "the crash image does not pass btrfs check --readonly: $(tail -n 20 "$TMP/check.log")"
        manifest image "$size" 512 none
        manifest part 0 0 "$size" btrfs
}

# GPT: an ext4 and, after a gap of bootloader bytes, a btrfs partition that
# starts 3 sectors past a 4 KiB boundary (its blocks straddle the bmap's).
layout_gpt_btrfs_ext4() {
        local disk=$((208 * M)) s1=$((1 * M)) z1=$((40 * M)) s2=$((42 * M + 3 * 512)) z2=$((144 * M))
        mk_ext "$TMP/p1" "$z1" ext4 boot 300 $((10 * M)) -b 4096
        mk_btrfs "$TMP/p2" "$z2" root 800 $((36 * M))
        new_disk "$disk"
        table "$IMG" <<EOF
label: gpt
label-id: $(seeded_uuid label)
unit: sectors
first-lba: 34
start=$((s1 / 512)), size=$((z1 / 512)), type=$GPT_LINUX, name="boot", uuid=$(seeded_uuid p1)
start=$((s2 / 512)), size=$((z2 / 512)), type=$GPT_LINUX, name="root", uuid=$(seeded_uuid p2)
EOF
        put "$IMG" "$s1" "$TMP/p1"
        put "$IMG" "$s2" "$TMP/p2"
        bootloader_gpt
        rand_at "$IMG" $((s1 + z1)) $((s2 - s1 - z1)) gap
        tail_random $((s2 + z2))
        manifest image "$disk" 512 gpt
        manifest part 1 "$s1" "$z1" ext4
        manifest part 2 "$s2" "$z2" btrfs
}

# A two-device filesystem, single data and RAID1 metadata, written through
# a mount (mkfs.btrfs --rootdir takes one device only). Two image files:
# OUT (devid 1) and OUT.dev2 (devid 2), each a bare btrfs device, named in
# the manifest's 'member' line.
layout_btrfs_2dev() {
        need mkfs.btrfs btrfs
        local size=$((128 * M))
        IMG2=$TMP/disk.img.dev2
        rand_file "$IMG" "$size" dev1-stale
        rand_file "$IMG2" "$size" dev2-stale
        mkfs.btrfs -q -f -K -U "$(seeded_uuid fs)" -L twodev -d single -m raid1 "$IMG" "$IMG2" >"$TMP/mkfs.log" 2>&1 ||
                die "mkfs.btrfs -d single -m raid1 failed: $(cat "$TMP/mkfs.log")"
        btrfs_attach "$IMG"
        local l1=$BLOOP
        btrfs_attach "$IMG2"
        local l2=$BLOOP
        btrfs device scan "$l1" "$l2" >/dev/null 2>&1 || true
        btrfs_mount "$l1" "device=$l1,device=$l2"
        gen_tree "$TMP/src" twodev 900 $((60 * M))
        junk_tree "$MNT/junk" twodev $((16 * M))
        btrfs filesystem sync "$MNT" >/dev/null
        cp -a "$TMP/src/." "$MNT/"
        rm -rf "$TMP/src"
        btrfs filesystem sync "$MNT" >/dev/null
        rm -rf "$MNT/junk"
        btrfs_umount
        btrfs check --readonly "$l1" >"$TMP/check.log" 2>&1 ||
                die "the two-device btrfs does not pass btrfs check --readonly: $(tail -n 20 "$TMP/check.log")"
        # Data on both devices, or the test of one member proves little.
        btrfs inspect-internal dump-tree -t chunk "$l1" 2>/dev/null | grep -A6 'type DATA' |
                grep -o 'devid [0-9]*' | sort -u >"$TMP/datadevs" || true
        [ "$(wc -l <"$TMP/datadevs")" = 2 ] || die "the data chunks are not on both devices: $(tr '\n' ' ' <"$TMP/datadevs")"
        btrfs_detach
        manifest image "$size" 512 none
        manifest part 0 0 "$size" btrfs
        manifest member 2 "$OUT.dev2" "$size"
}

"layout_${LAYOUT//-/_}"

# Every byte written: no holes anywhere (as vendors ship images).
for f in "$IMG" ${IMG2:+"$IMG2"}; do
        size=$(stat -c %s "$f")
        alloc=$(($(stat -c %b "$f") * $(stat -c %B "$f")))
        [ "$alloc" -ge "$size" ] || die "the image ${f##*/} has holes ($alloc of $size bytes allocated)"
done
if [ -n "$IMG2" ]; then mv -f -- "$IMG2" "$OUT.dev2"; fi
size=$(stat -c %s "$IMG")
mv -f -- "$IMG" "$OUT"
if [ -n "${MKIMAGE_MANIFEST:-}" ]; then
        printf '%s\n' "${MANIFEST_LINES[@]}" >"$MKIMAGE_MANIFEST"
fi
echo "mkimage: $LAYOUT: $OUT ($((size / K)) KiB, seed $SEED)${IMG2:+; second device: $OUT.dev2}"
