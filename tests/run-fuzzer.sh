#!/bin/bash
# Runs one libFuzzer harness for a bounded time from a seed corpus made
# here (small real images and the test-data bmaps), in a scratch directory.
set -euo pipefail
fuzzer=$1 name=$2 seconds=${FUZZ_SECONDS:-15}
mkdir -p "${TEST_TMPDIR:-/tmp}"
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cd "$work"
case "$name" in
fuzz-bmap)
        cp "$TESTDATA"/bmaptool/*.v* "$TESTDATA"/blockmap/*.bmap "$work/corpus/"
        ;;
fuzz-layout)
        truncate -s 1M a.img && printf 'label: dos\nstart=63, size=500, type=c\nstart=600, size=1000, type=5\nstart=700, size=200, type=83\n' | sfdisk -q a.img
        truncate -s 1M b.img && printf 'label: gpt\nstart=40, size=800, type=linux\nsize=200, type=swap\n' | sfdisk -q b.img
        truncate -s 256K c.img && mkswap -q c.img
        # Only the interesting head and tail matter; keep seeds small.
        head -c 65536 a.img >corpus/mbr; head -c 65536 b.img >corpus/gpt; cp c.img corpus/swap
        ;;
fuzz-simg)
        # Sparse images from both writers: img2simg (RAW and FILL 0) and
        # scan --simg (DONT_CARE, a CRC32 chunk, 512-byte blocks), small.
        head -c 20000 /dev/urandom >s.img && head -c 12288 /dev/zero >>s.img && printf 'tail' >>s.img
        if command -v img2simg >/dev/null; then img2simg s.img corpus/img2simg >/dev/null 2>&1 || true; fi
        truncate -s 64K s.img
        "$BMAPSCAN" scan -q --simg corpus/crc --simg-crc s.img >/dev/null 2>&1 || true
        "$BMAPSCAN" scan -q --simg corpus/b512 --simg-block-size 512 s.img >/dev/null 2>&1 || true
        ;;
fuzz-qcow2)
        # Small qemu-img images of one pattern file: plain, compressed
        # (deflate and zstd), extended L2, 512-byte clusters, version 2.
        if command -v qemu-img >/dev/null; then
                head -c 262144 /dev/urandom >r.img && head -c 262144 /dev/zero >>r.img
                { yes bmapscan || true; } | head -c 262144 >>r.img
                # Whole files (a few hundred KiB): cut, their tables would
                # point past their ends and only the refusals be reached.
                qemu-img convert -O qcow2 r.img corpus/plain
                qemu-img convert -c -O qcow2 -o cluster_size=4096 r.img corpus/deflate
                qemu-img convert -c -O qcow2 -o cluster_size=4096,compression_type=zstd r.img corpus/zstd
                qemu-img convert -O qcow2 -o extended_l2=on,cluster_size=16384 r.img corpus/extl2
                qemu-img convert -O qcow2 -o cluster_size=512 r.img corpus/c512
                qemu-img convert -O qcow2 -o compat=0.10 r.img corpus/v2
        fi
        ;;
fuzz-fat)
        for f in 12 16 32; do
                rm -f f$f.img
                mkfs.fat -C -F $f f$f.img $((f == 32 ? 33000 : 2000)) >/dev/null 2>&1 || continue
                head -c 262144 f$f.img >corpus/fat$f
        done
        ;;
fuzz-exfat)
        # Small volumes cut after the root directory: the probe reads the rest
        # as zeros (the harness pads them to the volume's size).
        for c in 512 4K 64K; do
                rm -f e.img && truncate -s 4M e.img
                mkfs.exfat -b 4K -c $c e.img >/dev/null 2>&1 || continue
                heap=$(python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(512); print(struct.unpack_from("<I",b,88)[0] << b[108])' e.img)
                head -c $((heap + 8 * 65536)) e.img | python3 -c 'import sys; d=sys.stdin.buffer.read(); sys.stdout.buffer.write(d.rstrip(b"\0"))' >corpus/exfat-$c
        done
        ;;
fuzz-lvm)
        # PV heads (label, metadata area header, text) made by the real tools
        # on a loop device that LVM alone is shown, and their VG text bare.
        # Without a loop device the corpus starts empty.
        export LVM_SYSTEM_DIR=$work/lvm
        mkdir -p "$LVM_SYSTEM_DIR"
        truncate -s 16M p.img
        if l=$(losetup --find --show p.img 2>/dev/null); then
                printf 'devices { filter = [ "a|^%s$|", "r|.*|" ] global_filter = [ "a|^%s$|", "r|.*|" ] use_devicesfile = 0 hints = "none" obtain_device_list_from_udev = 0 }\nglobal { activation = 0 }\nbackup { backup = 0 archive = 0 }\n' "$l" "$l" >"$LVM_SYSTEM_DIR/lvm.conf"
                i=0
                for step in "pvcreate $l" "vgcreate -s 1M vg $l" "lvcreate -an --zero n -n root -L 3M vg" \
                        "lvcreate -an --zero n -n swap -L 1M vg" "lvextend -L 5M vg/root"; do
                        i=$((i + 1))
                        $step >/dev/null 2>&1 || break
                        head -c 20K "$l" >corpus/pv$i
                done
                vgcfgbackup -f corpus/text vg >/dev/null 2>&1 || true
                losetup -d "$l"
        fi
        ;;
fuzz-lzo)
        # Each header and block checksum flag lzop writes, stored (random)
        # and compressed blocks, two members, trailing zeros; small inputs.
        head -c 300000 /dev/urandom >r && head -c 200000 /dev/zero >z && cat r z r >m
        lzop -1 -c <m >corpus/l1 && lzop -9 -c m >corpus/l9 && lzop -F -c <m >corpus/nock
        lzop --crc32 -CC -c <m >corpus/crc && lzop -CC -c <z >corpus/adler
        cat corpus/l1 corpus/adler >corpus/two && cp corpus/nock corpus/pad && head -c 64 /dev/zero >>corpus/pad
        ;;
fuzz-btrfs)
        # Sparse seeds (see fuzz-btrfs.c): the non-zero 4 KiB blocks of small
        # filesystems, whose trees lie megabytes in.
        mkdir -p root/d && printf 'hello\n' >root/d/small && head -c 9000 /dev/urandom >root/f1 && head -c 70000 /dev/urandom >root/d/f2
        i=0
        for args in "--mixed -n 4096" "-n 4096" "-n 4096 -d dup -m single" "-n 4096 --csum xxhash" "-n 16384 -m dup -d dup" \
                "-n 4096 -O ^skinny-metadata"; do
                i=$((i + 1))
                rm -f b.img && truncate -s $([[ $args == --mixed* ]] && echo 16M || echo 120M) b.img
                mkfs.btrfs -f -q $args --rootdir root b.img >/dev/null 2>&1 || continue
                python3 - b.img corpus/btrfs$i <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()[:128 << 20]
out = [b'BTRFSPRS']
for at in range(0, len(data), 4096):
    blk = data[at:at + 4096]
    if blk.count(0) != len(blk):
        out.append((at // 4096).to_bytes(4, 'little') + blk.ljust(4096, b'\0'))
open(sys.argv[2], 'wb').write(b''.join(out))
PY
                # The mixed one keeps its chunk tree at 1 MiB: a raw prefix reaches it.
                if [[ $args == --mixed* ]]; then head -c 1200K b.img >corpus/btrfs-raw; fi
        done
        ;;
fuzz-ntfs)
        # Sparse seeds (see fuzz-ntfs.c): the sectors of small volumes that
        # are neither zeros nor 0xFF, and one raw prefix.
        head -c 70000 /dev/urandom >f1
        i=0
        for args in "-c 512" "-c 4096" "-c 4096 -s 4096" "-c 1024"; do
                i=$((i + 1))
                rm -f n.img && truncate -s $([[ $args == *-s* ]] && echo 8M || echo 2M) n.img
                mkfs.ntfs -Q -F $args n.img >/dev/null 2>&1 || continue
                [ $i != 4 ] || ntfscp -f n.img f1 f1 >/dev/null 2>&1 || true
                python3 - n.img corpus/ntfs$i <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
out = [b'NTFSSPRS']
for at in range(0, len(data), 512):
    s = data[at:at + 512]
    if s.count(0) != 512 and s.count(255) != 512:
        out.append((at // 512).to_bytes(4, 'little') + s)
open(sys.argv[2], 'wb').write(b''.join(out))
PY
                [ $i != 1 ] || head -c 40K n.img >corpus/ntfs-raw
        done
        ;;
fuzz-xfs)
        # Sparse seeds (see fuzz-xfs.c): the non-zero sectors of small
        # filesystems, v5 and v4, filled by a prototype file (no mount).
        mkdir -p root/d && printf 'hello\n' >root/d/small && head -c 9000 /dev/urandom >root/f1 && head -c 70000 /dev/urandom >root/f2
        printf 'boot\n0 0\nd--755 0 0\nf1 ---644 0 0 %s/root/f1\nf2 ---644 0 0 %s/root/f2\nd d--755 0 0\nsmall ---644 0 0 %s/root/d/small\n$\n$\n' \
                "$work" "$work" "$work" >proto
        i=0
        for args in "" "-m crc=0" "-b size=1024 -d agcount=2" "-m crc=0 -b size=1024 -d agcount=2" "-m crc=0 -p proto" "-p proto -d agcount=2"; do
                i=$((i + 1))
                rm -f x.img && truncate -s $([[ $args == *agcount=2* ]] && echo 32M || echo 16M) x.img
                TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs mkfs.xfs -q -f $args x.img >/dev/null 2>&1 || continue
                python3 - x.img corpus/xfs$i <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
out = [b'XFSSPRS\0']
for at in range(0, len(data), 512):
    s = data[at:at + 512]
    if s.count(0) != 512:
        out.append((at // 512).to_bytes(4, 'little') + s)
open(sys.argv[2], 'wb').write(b''.join(out))
PY
        done
        ;;
fuzz-f2fs)
        # Sparse seeds (see fuzz-f2fs.c): the non-zero 4 KiB blocks of small
        # sloaded volumes, whose checkpoint and SIT lie megabytes in.
        mkdir -p root/d && printf 'hello\n' >root/d/small && head -c 9000 /dev/urandom >root/f1 && head -c 30000 /dev/urandom >root/d/f2
        i=0
        for args in "" "-O extra_attr,inode_checksum,sb_checksum" "-s 2"; do
                i=$((i + 1))
                rm -f f.img && truncate -s 64M f.img
                mkfs.f2fs -f $args f.img >/dev/null 2>&1 || continue
                # The first a fresh mkfs (compact summary), the others sloaded.
                [ $i = 1 ] || sload.f2fs -f root f.img >/dev/null 2>&1 || continue
                python3 - f.img corpus/f2fs$i <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
out = [b'F2FSSPRS']
for at in range(0, len(data), 4096):
    blk = data[at:at + 4096]
    if blk.count(0) != len(blk):
        out.append((at // 4096).to_bytes(4, 'little') + blk)
open(sys.argv[2], 'wb').write(b''.join(out))
PY
        done
        ;;
fuzz-rofs)
        # Whole small images: the probe reads each one's last byte.
        mkdir -p root/d && printf 'hello\n' >root/d/small && head -c 20000 /dev/urandom >root/f1
        mksquashfs root corpus/squashfs -comp xz -noappend -quiet -no-progress >/dev/null 2>&1 || true
        mkfs.erofs --quiet corpus/erofs root >/dev/null 2>&1 || true
        xorriso -as mkisofs -quiet -no-pad -J -o corpus/iso root >/dev/null 2>&1 || true
        # With an El Torito catalog, so the boot entries reach the fuzzer.
        xorriso -as mkisofs -quiet -no-pad -J -b f1 -no-emul-boot -o corpus/iso-eltorito root >/dev/null 2>&1 || true
        mkfs.cramfs root corpus/cramfs >/dev/null 2>&1 || true
        ;;
esac
# libFuzzer's default exit status for a finding is 77, which meson reads as
# "skipped": make every finding (crash, leak, timeout, OOM) a failure.
export LSAN_OPTIONS=suppressions=$(cd "$(dirname "$0")" && pwd)/lsan-fuzz.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -error_exitcode=1 -timeout_exitcode=1 \
        -print_final_stats=1 corpus 2>&1 | tail -15
