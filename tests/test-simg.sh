#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Android sparse images, out and in, against libsparse's own tools:
#   - 'scan --simg' of flash-invariant layouts, expanded by simg2img, holds
#     the image's bytes on every block the bmap maps; a zero block of a used
#     file is a FILL chunk; other block sizes and a ragged image size too;
#   - img2simg's output (RAW and FILL 0 chunks) flashed by 'copy' onto a
#     garbage loop device, with the bmap and without one (its chunks are the
#     map), equals simg2img's expansion on the mapped blocks; our own sparse
#     image without a bmap writes its RAW and FILL chunks and leaves the
#     DONT_CARE blocks as they were; a zstd-compressed one likewise;
#   - 'verify' and 'info' of a sparse image;
#   - a corrupted CRC32 chunk, a truncated file and a bad chunk size each
#     fail with one line naming the chunk.
# Needs loop devices for the flashes (exit 77 without them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

: "${SOURCE_ROOT:=$(cd "$(dirname "$0")/.." && pwd)}"
MKIMAGE=$SOURCE_ROOT/scripts/mkimage.sh
export MTOOLS_SKIP_CHECK=1
LAYOUTS=${SIMG_LAYOUTS:-"gpt-esp-ext4-swap mbr-fat16-ext3-ext2 gpt4k-ext4-fat32 fat12-floppy bare-unknown"}
# The layouts also flashed onto a loop device (the others are checked
# through simg2img only, which needs none).
FLASHED=${SIMG_FLASHED:-"gpt-esp-ext4-swap fat12-floppy"}

need_tools img2simg simg2img simg_dump python3 openssl losetup zstd mkfs.fat mcopy
need_loop

# flash IMAGE ARGS... : copies IMAGE onto a garbage loop device of SIZE
# bytes (the global $size), keeping the garbage in $WORK/garbage; the
# device is $ATTACHED. Status of the copy in $RC, output in $WORK/err.
flash() {
        local image=$1
        shift
        garbage "$WORK/garbage" "$size" "$(basename "$image")"
        cp "$WORK/garbage" "$WORK/target"
        attach "$WORK/target"
        run_cmd "$BMAPSCAN" copy -q "$@" "$image" "$ATTACHED"
}

for L in $LAYOUTS; do
        d=$WORK/$L
        mkdir -p "$d" "$d/nobmap"
        bash "$MKIMAGE" "$L" "$d/img" >/dev/null 2>"$d/mk.err" || { fail "$L: mkimage: $(tail -c 300 "$d/mk.err")"; continue; }
        size=$(stat -c %s "$d/img")

        # Out: the sparse image holds every mapped block; the bmap beside it.
        run_cmd "$BMAPSCAN" scan -o "$d/img.bmap" --simg "$d/img.simg" "$d/img"
        [ "$RC" = 0 ] || { fail "$L: scan --simg exits $RC: $(head -c 300 "$WORK/err")"; continue; }
        fc bmap-ranges "$d/img.bmap" >"$d/ranges"
        simg2img "$d/img.simg" "$d/exp" 2>"$d/s2i.err" || { fail "$L: simg2img refuses it: $(head -c 300 "$d/s2i.err")"; continue; }
        if [ "$(stat -c %s "$d/exp")" != "$size" ]; then
                fail "$L: simg2img expands it to $(stat -c %s "$d/exp") bytes, the image has $size"
        elif fc compare "$d/img" "$d/exp" "$d/ranges" "$L: simg2img" >"$d/cmp"; then
                pass "$L: scan --simg -> simg2img: $(cat "$d/cmp")"
        else
                fail "$(cat "$d/cmp")"
        fi
        # The chunk map is the bmap: RAW and FILL blocks = mapped blocks.
        "$BMAPSCAN" info --json "$d/img.simg" >"$d/info.json"
        mapped=$(sed -n 's/.*"mapped_bytes":\([0-9]*\).*/\1/p' "$d/info.json")
        want=$(fc total "$d/ranges")
        # The bmap's last range may end at a partial block; the chunks
        # count whole blocks.
        if [ "$mapped" = "$want" ] || [ "$mapped" = $(((want + 4095) / 4096 * 4096)) ]; then
                pass "$L: RAW and FILL chunks cover the mapped bytes ($mapped)"
        else
                fail "$L: RAW and FILL chunks cover $mapped bytes, the bmap maps $want"
        fi

        case " $FLASHED " in *" $L "*) ;; *) continue ;; esac

        # In: our own sparse image, without a bmap: its chunks are the map.
        cp "$d/img.simg" "$d/nobmap/img.simg"
        flash "$d/nobmap/img.simg"
        if [ "$RC" != 0 ]; then
                fail "$L: copy of the sparse image without a bmap exits $RC: $(head -c 300 "$WORK/err")"
        elif fc compare "$d/img" "$ATTACHED" "$d/ranges" "$L: copy of the simg, no bmap" >"$d/cmp"; then
                pass "$(cat "$d/cmp")"
                fc complement "$size" "$d/ranges" unmapped >"$d/unmapped"
                if fc compare "$WORK/garbage" "$ATTACHED" "$d/unmapped" "$L: DONT_CARE blocks" >"$d/cmp"; then
                        pass "$L: DONT_CARE blocks left as they were on the target"
                else
                        fail "$(cat "$d/cmp") (DONT_CARE blocks were written)"
                fi
        else
                fail "$(cat "$d/cmp")"
        fi
        # verify without a bmap: the chunks against the device; then one
        # flipped byte inside a mapped range is a bad range.
        run_cmd "$BMAPSCAN" verify "$d/nobmap/img.simg" "$ATTACHED"
        expect "$L: verify of the simg without a bmap" 0 "match"
        first=$(awk '!/^#/ { print $1; exit }' "$d/ranges")
        printf '\x5a' | cmp -s - <(dd if="$ATTACHED" bs=1 skip=$((first + 100)) count=1 status=none) &&
                printf '\xa5' >"$WORK/byte" || printf '\x5a' >"$WORK/byte"
        dd if="$WORK/byte" of="$ATTACHED" bs=1 seek=$((first + 100)) conv=notrunc status=none
        run_cmd "$BMAPSCAN" verify "$d/nobmap/img.simg" "$ATTACHED"
        expect "$L: verify of a damaged device" 1 "differ from"
        grep -q "bad range $((first / 4096))-$((first / 4096)) " "$WORK/out" &&
                pass "$L: verify names the bad block" || fail "$L: verify prints: $(head -c 300 "$WORK/out")"
        detach "$ATTACHED"

        # img2simg (RAW and FILL 0 only), with the bmap, then without one.
        img2simg "$d/img" "$d/i2s.simg"
        simg2img "$d/i2s.simg" "$d/i2s.exp"
        grep -q 'Fill' <(simg_dump -v "$d/i2s.simg") || fail "$L: img2simg wrote no FILL chunk (the test expects some)"
        flash "$d/i2s.simg" --bmap "$d/img.bmap"
        if [ "$RC" != 0 ]; then
                fail "$L: copy of img2simg's output with the bmap exits $RC: $(head -c 300 "$WORK/err")"
        elif fc compare "$d/i2s.exp" "$ATTACHED" "$d/ranges" "$L: img2simg + bmap" >"$d/cmp"; then
                pass "$(cat "$d/cmp")"
        else
                fail "$(cat "$d/cmp")"
        fi
        detach "$ATTACHED"
        cp "$d/i2s.simg" "$d/nobmap/i2s.simg"
        flash "$d/nobmap/i2s.simg"
        echo "0 $size all" >"$d/all"
        if [ "$RC" != 0 ]; then
                fail "$L: copy of img2simg's output without a bmap exits $RC: $(head -c 300 "$WORK/err")"
        elif fc compare "$d/i2s.exp" "$ATTACHED" "$d/all" "$L: img2simg, no bmap (every chunk)" >"$d/cmp"; then
                pass "$(cat "$d/cmp")"
        else
                fail "$(cat "$d/cmp")"
        fi
        detach "$ATTACHED"

        # Compressed: the same chunks through zstd.
        zstd -q -o "$d/nobmap/img.simg.zst" "$d/img.simg"
        flash "$d/nobmap/img.simg.zst"
        if [ "$RC" != 0 ]; then
                fail "$L: copy of the .simg.zst exits $RC: $(head -c 300 "$WORK/err")"
        elif fc compare "$d/img" "$ATTACHED" "$d/ranges" "$L: copy of the .simg.zst" >"$d/cmp"; then
                pass "$(cat "$d/cmp")"
        else
                fail "$(cat "$d/cmp")"
        fi
        detach "$ATTACHED"
done

# ---------------------------------------------------------------- chunk types
# A FAT volume (no holes in files) holding a file of zeros and one of a
# repeated word: their blocks are mapped, and written as FILL chunks.
f=$WORK/fat
mkdir -p "$f"
mkfs.fat -C -S 4096 -s 1 "$f/img" 8192 >/dev/null
head -c $((64 * 4096)) /dev/zero >"$f/zeros.bin"
python3 -c 'import sys; sys.stdout.buffer.write(b"\xde\xad\xbe\xef" * (8 * 1024))' >"$f/word.bin"
head -c 100000 /dev/urandom >"$f/rand.bin"
mcopy -i "$f/img" "$f/zeros.bin" "$f/word.bin" "$f/rand.bin" ::
run_cmd "$BMAPSCAN" scan -q --simg "$f/img.simg" "$f/img"
expect "fat: scan --simg" 0
simg_dump -v "$f/img.simg" >"$f/dump"
if grep -q 'Fill with 0x00000000' "$f/dump" && grep -qi 'Fill with 0xefbeadde' "$f/dump"; then
        pass "fat: a file's zero blocks and its repeated word are FILL chunks"
else
        fail "fat: no FILL chunks for the zero or word-filled file: $(grep -c Fill "$f/dump") FILL chunks"
fi
"$BMAPSCAN" info --json "$f/img.simg" >"$f/info.json"
fz=$(sed -n 's/.*"fill_zero_blocks":\([0-9]*\).*/\1/p' "$f/info.json")
[ "${fz:-0}" -ge 64 ] && pass "fat: info counts $fz FILL 0 blocks" || fail "fat: info counts ${fz:-?} FILL 0 blocks, want 64 or more"
run_cmd "$BMAPSCAN" info "$f/img.simg"
expect "info of a sparse image" 0
grep -q '^chunks: .*RAW.*FILL.*DONT_CARE' "$WORK/out" && pass "info lists the chunks by type" ||
        fail "info prints: $(head -c 400 "$WORK/out")"

# Other block sizes, and an image whose size is no multiple of the block.
for bs in 512 65536; do
        "$BMAPSCAN" scan -q -o "$f/b.bmap" --simg "$f/b$bs.simg" --simg-block-size $bs "$f/img"
        simg2img "$f/b$bs.simg" "$f/b$bs.exp"
        fc bmap-ranges "$f/b.bmap" >"$f/ranges"
        if fc compare "$f/img" "$f/b$bs.exp" "$f/ranges" "fat: --simg-block-size $bs" >"$f/cmp"; then
                pass "$(cat "$f/cmp")"
        else
                fail "$(cat "$f/cmp")"
        fi
done
head -c 1000 /dev/urandom >>"$f/img"
run_cmd "$BMAPSCAN" scan -o "$f/r.bmap" --simg "$f/r.simg" "$f/img"
expect "a ragged image size is padded, with a warning" 0 "padded with 3096 zero bytes"
simg2img "$f/r.simg" "$f/r.exp"
fc bmap-ranges "$f/r.bmap" >"$f/ranges"
[ "$(stat -c %s "$f/r.exp")" = $(($(stat -c %s "$f/img") + 3096)) ] && fc compare "$f/img" "$f/r.exp" "$f/ranges" "ragged" >"$f/cmp" &&
        pass "ragged: $(cat "$f/cmp")" || fail "ragged: $(cat "$f/cmp" 2>/dev/null) size $(stat -c %s "$f/r.exp")"
# The bmap the same scan wrote goes with the padded sparse image: copy
# takes both (the padding is the sparse image's, not a different image),
# and writes the image's own size.
run_cmd "$BMAPSCAN" copy -q --bmap "$f/r.bmap" "$f/r.simg" "$f/r.out"
if [ "$RC" != 0 ]; then
        fail "ragged: copy of the padded sparse image with its bmap exits $RC: $(head -c 300 "$WORK/err")"
elif [ "$(stat -c %s "$f/r.out")" != "$(stat -c %s "$f/img")" ]; then
        fail "ragged: copy writes $(stat -c %s "$f/r.out") bytes, the image has $(stat -c %s "$f/img")"
elif fc compare "$f/img" "$f/r.out" "$f/ranges" "ragged, copied with its bmap" >"$f/cmp"; then
        pass "$(cat "$f/cmp")"
else
        fail "$(cat "$f/cmp")"
fi
# More than the padding is another image.
truncate -s -4096 "$f/img"
"$BMAPSCAN" scan -q -o "$f/short.bmap" "$f/img"
run_cmd "$BMAPSCAN" copy -q --bmap "$f/short.bmap" "$f/r.simg" "$f/r.out"
expect "ragged: a bmap a block shorter than the sparse image" 1 "do not belong together"

# ---------------------------------------------------------------- damage
"$BMAPSCAN" scan -q --simg "$f/crc.simg" --simg-crc "$f/img"
python3 - "$f/crc.simg" "$f/badcrc.simg" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[-1] ^= 0x10
open(sys.argv[2], 'wb').write(d)
EOF
nchunks=$(python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1],"rb").read(28), 20)[0])' "$f/crc.simg")
run_cmd "$BMAPSCAN" copy -q "$f/crc.simg" "$f/out.img"
expect "a good CRC32 chunk passes" 0
run_cmd "$BMAPSCAN" copy -q "$f/badcrc.simg" "$f/out.img"
expect "a corrupted CRC32 chunk" 1 "chunk $nchunks of $nchunks (CRC32"
one_line "a corrupted CRC32 chunk"
zstd -q -f "$f/badcrc.simg"
run_cmd "$BMAPSCAN" copy -q "$f/badcrc.simg.zst" "$f/out.img"
expect "a corrupted CRC32 chunk, compressed" 1 "chunk $nchunks of $nchunks (CRC32"
head -c 50000 "$f/crc.simg" >"$f/trunc.simg"
run_cmd "$BMAPSCAN" copy -q "$f/trunc.simg" "$f/out.img"
expect "a truncated sparse image" 1 "the file is incomplete"
one_line "a truncated sparse image"
python3 - "$f/crc.simg" "$f/badsize.simg" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
# The first chunk's total_sz, one more.
struct.pack_into("<I", d, 28 + 8, struct.unpack_from("<I", d, 28 + 8)[0] + 1)
open(sys.argv[2], 'wb').write(d)
EOF
run_cmd "$BMAPSCAN" copy -q "$f/badsize.simg" "$f/out.img"
expect "a bad chunk size" 1 "chunk 1 of $nchunks"
one_line "a bad chunk size"
run_cmd "$BMAPSCAN" info "$f/badsize.simg"
expect "info of a bad chunk size" 1 "total size"
# A bmap that maps less than the RAW chunks: the copy skips the unmapped
# RAW data. With a bmap without checksums the sparse image's CRC32 is the
# only check of what is written, so skipping must not give it up by a seek:
# damaged data after the skipped stretch is refused, naming the CRC32 chunk.
head -c $((3 * 65536)) /dev/urandom >"$f/u.img"
"$BMAPSCAN" scan -q --simg "$f/u.simg" --simg-crc "$f/u.img"
cp "$f/u.img" "$f/u2.img"
fallocate --punch-hole -o 65536 -l 65536 "$f/u2.img"
"$BMAPSCAN" create -q --no-checksum -o "$f/u-nosum.bmap" "$f/u2.img"
"$BMAPSCAN" create -q -o "$f/u-sum.bmap" "$f/u2.img"
python3 - "$f/u.simg" "$f/ud.simg" <<'EOF2'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[28 + 12 + 2 * 65536 + 100] ^= 1   # in the third 64 KiB: mapped, after the gap
open(sys.argv[2], 'wb').write(d)
EOF2
run_cmd "$BMAPSCAN" copy -q --bmap "$f/u-nosum.bmap" "$f/ud.simg" "$f/u.out"
expect "damaged RAW data past a skipped stretch, a bmap without checksums" 1 "(CRC32"
run_cmd "$BMAPSCAN" copy -q --bmap "$f/u-sum.bmap" "$f/ud.simg" "$f/u.out"
expect "damaged RAW data past a skipped stretch, a bmap with checksums" 1 "checksum mismatch"
run_cmd "$BMAPSCAN" copy -q --bmap "$f/u-nosum.bmap" "$f/u.simg" "$f/u.out"
expect "an intact sparse image, part of it skipped" 0
fc bmap-ranges "$f/u-sum.bmap" >"$f/ranges"
fc compare "$f/u.img" "$f/u.out" "$f/ranges" "partly skipped" >"$f/cmp" && pass "$(cat "$f/cmp")" || fail "$(cat "$f/cmp")"
# 28 + 16 bytes that stand for 2^58 bytes (2^32-1 blocks of 64 MiB), all
# DONT_CARE or one FILL: info and verify answer at once (the CRC over
# repeated bytes is computed, and verify stops where DEST ends), never
# spinning over the output.
python3 - "$f" <<'EOF2'
import struct, sys
h = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, 64 << 20, 0xFFFFFFFF, 1, 0)
open(sys.argv[1] + "/dc-bomb.simg", "wb").write(h + struct.pack("<HHII", 0xCAC3, 0, 0xFFFFFFFF, 12))
open(sys.argv[1] + "/fill-bomb.simg", "wb").write(h + struct.pack("<HHIII", 0xCAC2, 0, 0xFFFFFFFF, 16, 0x12345678))
EOF2
head -c 1M /dev/zero >"$f/small.img"
for b in dc-bomb fill-bomb; do
        run_cmd timeout 60 "$BMAPSCAN" info "$f/$b.simg"
        expect "$b: info" 0
        run_cmd timeout 60 "$BMAPSCAN" verify "$f/$b.simg" "$f/small.img"
        [ "$RC" != 124 ] && pass "$b: verify ends (exit $RC)" || fail "$b: verify still runs after 60 s"
done
grep -q "bad range 0-4294967294 " "$WORK/out" && pass "fill-bomb: verify names the range past DEST's end" ||
        fail "fill-bomb: verify prints: $(head -c 300 "$WORK/out")"
# scan's own refusals.
run_cmd "$BMAPSCAN" scan --simg-crc "$f/img"
expect "--simg-crc without --simg" 2 "--simg"
run_cmd "$BMAPSCAN" scan --simg "$f/img" "$f/img"
expect "--simg onto the image itself" 1 "the image itself"
run_cmd "$BMAPSCAN" scan --simg /dev/null "$f/img"
expect "--simg onto a device" 1 "not a regular file"
# With neither a bmap nor a sparse image: the refusal says what to do.
run_cmd "$BMAPSCAN" copy -q "$f/img" "$f/out.img"
expect "a raw image without a bmap" 1 "no bmap found"

finish
