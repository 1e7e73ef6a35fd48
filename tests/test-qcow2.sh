#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# qcow2 as an image, with qemu-img's own files: one small flash-invariant
# layout (MBR with FAT16, and ext3 and ext2 in logical partitions behind an
# EBR chain) converted to qcow2 plain, compressed (deflate and zstd), with
# 4 KiB, 2 MiB and 512-byte clusters, extended L2, metadata preallocation,
# and as the top of two backing chains (over a qcow2 and over a raw file,
# each with changed blocks). For each:
#   - 'scan' writes the same bmap, byte for byte, as 'scan' of the raw image
#     the qcow2 stands for;
#   - 'copy' onto a file of random garbage writes every mapped byte as in
#     that raw image (whose bmap the flash-invariant test holds to the
#     filesystems' own lists), and the filesystems on the target pass their
#     checkers; 'verify' passes;
#   - 'copy --scan' flashes it with the same bmap, and without a bmap
#     'copy' refuses it as it refuses a raw image;
#   - 'create' maps the qcow2's allocated clusters, which hold every byte the
#     scan maps that is not zero.
# And damaged or unsupported files are refused with one line naming the
# file: an L1 entry past the end, a misaligned L2 table, a compressed entry
# past the end, a backing file that is a URL, encryption, an unknown
# incompatible feature; a qcow2 inside gzip; 'sparse' on a qcow2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

: "${SOURCE_ROOT:=$(cd "$(dirname "$0")/.." && pwd)}"
need_tools qemu-img qemu-io python3 openssl sfdisk mke2fs e2fsck mkfs.fat fsck.fat mcopy
cd "$WORK"

rc=0
bash "$SOURCE_ROOT/scripts/mkimage.sh" mbr-fat16-ext3-ext2 raw.img 3 >mkimage.log 2>&1 || rc=$?
if [ $rc = 77 ]; then
        echo "skip: $(tail -n 1 mkimage.log)"
        exit 77
fi
[ $rc = 0 ] || { echo "mkimage.sh failed: $(tail -c 600 mkimage.log)"; exit 1; }
SIZE=$(stat -c %s raw.img)

# partitions START SIZE (bytes) of the image, for the checkers.
sfdisk -J raw.img | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
for p in t["partitions"]:
    if p["type"] not in ("5", "f", "85"):
        print(p["start"] * 512, p["size"] * 512, p["type"])' >parts

# check_target NAME TARGET RAW BMAP: the mapped bytes are RAW's, and each
# filesystem on the target passes its checker.
check_target() {
        local name=$1 tgt=$2 raw=$3 bmap=$4 start size type ok=1
        fc bmap-ranges "$bmap" >ranges
        if ! fc compare "$raw" "$tgt" ranges "$name: mapped bytes" >cmp.log 2>&1; then
                fail "$name: $(tail -n 2 cmp.log)"
                return
        fi
        while read -r start size type; do
                dd if="$tgt" of=part.img bs=64K iflag=skip_bytes,count_bytes skip="$start" count="$size" status=none
                case $type in
                6 | e | c | b) fsck.fat -n part.img >fsck.log 2>&1 || { ok=0; fail "$name: fsck.fat on the target's partition at $start: $(tail -n 3 fsck.log)"; } ;;
                83) e2fsck -fn part.img >fsck.log 2>&1 || { ok=0; fail "$name: e2fsck on the target's partition at $start: $(tail -n 3 fsck.log)"; } ;;
                esac
        done <parts
        [ $ok = 1 ] && pass "$name: copy from the qcow2 holds the flash invariant"
}

# ------------------------------------------------------------ the variants
qemu-img convert -O qcow2 raw.img plain.qcow2
qemu-img convert -c -O qcow2 raw.img deflate.qcow2
qemu-img convert -c -O qcow2 -o compression_type=zstd raw.img zstd.qcow2
qemu-img convert -O qcow2 -o cluster_size=4096 raw.img c4k.qcow2
qemu-img convert -O qcow2 -o cluster_size=2M raw.img c2m.qcow2
qemu-img convert -O qcow2 -o cluster_size=512 raw.img c512.qcow2
qemu-img convert -O qcow2 -o extended_l2=on raw.img extl2.qcow2
qemu-img convert -O qcow2 -o preallocation=metadata raw.img prealloc.qcow2
qemu-img convert -O qcow2 -o compat=0.10 raw.img v2.qcow2
# Two chains: over a qcow2 and over the raw file itself; blocks changed in
# the MBR gap (bootloader bytes) and zeroed at the end (random tail).
qemu-img create -q -f qcow2 -b plain.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 0x5a 4096 8192' -c 'write -z 126M 1M' top.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b raw.img -F raw top-raw.qcow2
qemu-io -c 'write -P 0xa5 8192 4096' -c 'write -z 127M 512K' top-raw.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 top.raw
qemu-img convert -O raw top-raw.qcow2 top-raw.raw

"$BMAPSCAN" scan -q -o raw.bmap raw.img
"$BMAPSCAN" scan -q -o top.raw.bmap top.raw
"$BMAPSCAN" scan -q -o top-raw.raw.bmap top-raw.raw

for v in plain deflate zstd c4k c2m c512 extl2 prealloc v2 top top-raw; do
        raw=raw.img
        [ $v = top ] && raw=top.raw
        [ $v = top-raw ] && raw=top-raw.raw
        run_cmd "$BMAPSCAN" scan -q -o $v.bmap $v.qcow2
        if [ $RC != 0 ]; then
                fail "$v: scan of the qcow2 fails: $(cat "$WORK/err")"
                continue
        fi
        if cmp -s $v.bmap $raw.bmap 2>/dev/null || { [ $raw = raw.img ] && cmp -s $v.bmap raw.bmap; }; then
                pass "$v: scan of the qcow2 writes the raw image's bmap byte for byte"
        else
                fail "$v: the bmaps differ: $(diff $v.bmap $( [ $raw = raw.img ] && echo raw.bmap || echo $raw.bmap) | head -c 600)"
        fi
done

# libfdisk and libblkid see a qcow2 through a sparse copy of the places
# tables live: an EBR whose link to the next one sits in its first slot
# (libfdisk takes it from any slot) must still bring the next EBR along,
# or the logical partition behind it is lost from the qcow2's layout.
cp --sparse=always raw.img ebr-slot.img
python3 - ebr-slot.img <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
mbr = f.read(512)
ext = [struct.unpack("<I", mbr[454 + 16 * i:458 + 16 * i])[0] * 512 for i in range(4) if mbr[450 + 16 * i] in (5, 15, 0x85)][0]
f.seek(ext)
ebr = bytearray(f.read(512))
ebr[446:462], ebr[462:478] = ebr[462:478], ebr[446:462]
f.seek(ext)
f.write(ebr)
PY
qemu-img convert -O qcow2 ebr-slot.img ebr-slot.qcow2
"$BMAPSCAN" scan -q -o ebr-slot.raw.bmap ebr-slot.img
run_cmd "$BMAPSCAN" scan -q -o ebr-slot.bmap ebr-slot.qcow2
expect "ebr-slot: scan of the qcow2" 0
cmp -s ebr-slot.bmap ebr-slot.raw.bmap && pass "ebr-slot: an EBR linking from its first slot: the raw image's bmap" ||
        fail "ebr-slot: the bmaps differ: $(diff ebr-slot.bmap ebr-slot.raw.bmap | head -c 600)"
rm -f ebr-slot.img

# libblkid calls a volume NTFS only when the MFT records the boot sector
# points to say "FILE"; Windows puts $MFT 3 GiB in. Here its first
# records are copied 100 MiB in and the boot sector pointed there: the
# qcow2's layout must still see NTFS, as the raw image's does.
if command -v mkntfs >/dev/null; then
        truncate -s 200M ntfs.img
        mkntfs -q -F -f ntfs.img >/dev/null 2>&1
        python3 - ntfs.img <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
b = f.read(512)
cs = struct.unpack("<H", b[11:13])[0] * b[13]
lcn = struct.unpack("<Q", b[0x30:0x38])[0]
f.seek(lcn * cs)
rec = f.read(16384)
new = (100 << 20) // cs
f.seek(new * cs)
f.write(rec)
f.seek(0x30)
f.write(struct.pack("<Q", new))
PY
        qemu-img convert -O qcow2 ntfs.img ntfs.qcow2
        { "$BMAPSCAN" info ntfs.img | grep -E "^ +- " || true; } >ntfs.raw.layout
        { "$BMAPSCAN" info ntfs.qcow2 | grep -E "^ +- " || true; } >ntfs.layout
        if grep -q ' ntfs ' ntfs.raw.layout && cmp -s ntfs.layout ntfs.raw.layout; then
                pass "ntfs-far-mft: the qcow2's layout is the raw image's (NTFS, its MFT 100 MiB in)"
        else
                fail "ntfs-far-mft: layouts differ: raw '$(cat ntfs.raw.layout)' qcow2 '$(cat ntfs.layout)'"
        fi
        rm -f ntfs.img ntfs.qcow2
fi

# copy onto garbage, and verify, for a few (each writes ~90 MiB).
for v in plain deflate zstd extl2 c4k top top-raw; do
        raw=raw.img
        [ $v = top ] && raw=top.raw
        [ $v = top-raw ] && raw=top-raw.raw
        garbage tgt.img "$SIZE" "$v"
        run_cmd "$BMAPSCAN" copy -q --bmap $v.bmap $v.qcow2 tgt.img
        if [ $RC != 0 ]; then
                fail "$v: copy from the qcow2 fails: $(cat "$WORK/err")"
                continue
        fi
        check_target "$v" tgt.img $raw $v.bmap
        run_cmd "$BMAPSCAN" verify --bmap $v.bmap $v.qcow2 tgt.img
        expect "$v: verify of the target against the qcow2" 0
done

# Over HTTP: a qcow2 is read at random through byte ranges, its bmap
# found beside the URL; a server without ranges is refused with one line,
# and so is a qcow2 with a backing file (never fetched for a URL).
# The server is local: no proxy in between.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
SRV_PID=
trap '[ -z "$SRV_PID" ] || kill "$SRV_PID" 2>/dev/null; flash_cleanup' EXIT
mkdir srv
cp deflate.qcow2 plain.qcow2 top.qcow2 srv/
cp deflate.bmap srv/deflate.qcow2.bmap
cp plain.bmap srv/plain.qcow2.bmap
python3 "$SOURCE_ROOT/tests/http-server.py" --root srv --port-file http.port --log http.log 2>http.stderr &
SRV_PID=$!
if wait_until server_ready http.port $SRV_PID; then
        U=http://127.0.0.1:$(cat http.port)
        for v in deflate plain; do
                garbage tgt.img "$SIZE" "http-$v"
                run_cmd "$BMAPSCAN" copy -q "$U/$v.qcow2" tgt.img
                if [ $RC != 0 ]; then
                        fail "$v over HTTP: copy fails: $(cat "$WORK/err")"
                        continue
                fi
                check_target "$v over HTTP" tgt.img raw.img $v.bmap
                n=$(grep -c "^GET /$v.qcow2 bytes=" http.log || true)
                [ "$n" -gt 0 ] && pass "$v over HTTP: read with byte ranges ($n)" || fail "$v over HTTP: no range request"
        done
        run_cmd "$BMAPSCAN" copy -q "$U/noranges/deflate.qcow2" tgt.img
        expect "a qcow2 from a server without ranges is refused" 1 "noranges/deflate.qcow2: is a qcow2 image, which is read at random, and this input cannot seek"
        one_line "qcow2 without ranges"
        run_cmd "$BMAPSCAN" copy -q --bmap top.bmap "$U/top.qcow2" tgt.img
        expect "a qcow2 URL with a backing file is refused" 1 "has a backing file ('plain.qcow2'), which is read only beside a local qcow2 file"
        one_line "qcow2 URL with a backing file"
else
        fail "the HTTP server did not start: $(cat http.stderr)"
fi
kill $SRV_PID 2>/dev/null || true
SRV_PID=

# copy --scan: the qcow2 scanned as its virtual disk, then flashed; its
# bmap is the raw image's. Without a bmap and without --scan: refused, as
# for a raw image, suggesting --scan.
for v in deflate top; do
        raw=raw.img
        [ $v = top ] && raw=top.raw
        garbage tgt.img "$SIZE" "scan-$v"
        run_cmd "$BMAPSCAN" copy -q --scan --scan-bmap $v.scan.bmap $v.qcow2 tgt.img
        if [ $RC != 0 ]; then
                fail "$v: copy --scan from the qcow2 fails: $(cat "$WORK/err")"
                continue
        fi
        cmp -s $v.scan.bmap $v.bmap && pass "$v: copy --scan's bmap is scan's" || fail "$v: copy --scan's bmap differs from scan's"
        check_target "$v (copy --scan)" tgt.img $raw $v.bmap
done
mkdir -p alone && cp plain.qcow2 alone/
run_cmd "$BMAPSCAN" copy alone/plain.qcow2 tgt.img
expect "a qcow2 without a bmap is refused as a raw image is" 1 "--scan"
one_line "qcow2 without a bmap"

# create: the allocated clusters hold every non-zero mapped byte.
for v in plain top top-raw; do
        raw=raw.img
        [ $v = top ] && raw=top.raw
        [ $v = top-raw ] && raw=top-raw.raw
        run_cmd "$BMAPSCAN" create -o $v.create.bmap $v.qcow2
        expect "$v: create on the qcow2" 0
        fc bmap-ranges $v.create.bmap >cranges
        fc complement "$SIZE" cranges >unmapped
        if fc zeros $raw unmapped "$v: what create leaves out" >z.log 2>&1; then
                pass "$v: create leaves out only zeros"
        else
                fail "$v: create leaves out data: $(tail -n 2 z.log)"
        fi
done
garbage tgt.img "$SIZE" create
run_cmd "$BMAPSCAN" copy -q --bmap top.create.bmap top.qcow2 tgt.img
expect "top: copy with create's bmap" 0

# info says what the qcow2 is.
run_cmd "$BMAPSCAN" info top.qcow2
expect "info on a qcow2 chain" 0
grep -q "qcow2: version 3, 64.0 KiB clusters" "$WORK/out" && grep -q "qcow2 backing chain: plain.qcow2 (qcow2)" "$WORK/out" &&
        grep -q "dos partition table" "$WORK/out" && pass "info: qcow2 lines and the layout" ||
        fail "info on a qcow2 chain: $(head -n 6 "$WORK/out")"

# info --json: a "qcow2" object beside the layout, the chain with each
# file's format; an internal snapshot is noted (the active state is read).
cp zstd.qcow2 snap.qcow2
qemu-img snapshot -c before snap.qcow2
for v in top top-raw snap; do
        run_cmd "$BMAPSCAN" info --json $v.qcow2
        expect "$v: info --json" 0
        if python3 - "$WORK/out" $v <<'PY' >json.log 2>&1; then
import json, sys
o = json.load(open(sys.argv[1]))
v = sys.argv[2]
q = o["qcow2"]
assert o["partitions"] and o["image_size"] == q["virtual_size"], "no layout, or sizes differ"
assert q["version"] == 3 and q["cluster_size"] == 65536, q
assert q["clusters"] == (q["virtual_size"] + 65535) // 65536, q
assert 0 < q["allocated_clusters"] <= q["clusters"], q
chain = [(b["name"], b["format"]) for b in q["backing"]]
want = {"top": [("plain.qcow2", "qcow2")], "top-raw": [("raw.img", "raw")], "snap": []}[v]
assert chain == want, chain
assert all(b["path"].endswith("/" + b["name"]) and b["size"] > 0 for b in q["backing"]), q["backing"]
if v == "snap":
    assert q["compression"] == "zstd" and q["compressed_clusters"] > 0, q
    assert q["snapshots"] == 1 and "active state" in q["snapshots_note"], q
else:
    assert q["compression"] == "deflate" and q["compressed_clusters"] == 0, q
    assert q["snapshots"] == 0 and q["snapshots_note"] is None, q
PY
                pass "$v: info --json has the qcow2 object"
        else
                fail "$v: info --json: $(tail -n 3 json.log)"
        fi
done
run_cmd "$BMAPSCAN" info --json raw.img
python3 -c 'import json,sys; assert "qcow2" not in json.load(open(sys.argv[1]))' "$WORK/out" &&
        pass "info --json on a raw image has no qcow2 object" || fail "info --json on a raw image: $(head -c 300 "$WORK/out")"

# ------------------------------------------------------------ refusals
# patch FILE OFFSET HEX: writes bytes into a file.
patch() { python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$@"; }
be64() { python3 -c 'import struct,sys; print(struct.unpack(">Q", open(sys.argv[1],"rb").read()[int(sys.argv[2]):int(sys.argv[2])+8])[0])' "$@"; }

l1=$(be64 plain.qcow2 40)
l1e=$(be64 plain.qcow2 "$l1")
cp plain.qcow2 l1-past.qcow2
patch l1-past.qcow2 "$l1" "$(printf '%016x' $(((1 << 40) | (1 << 63))))"
cp plain.qcow2 l2-misaligned.qcow2
patch l2-misaligned.qcow2 "$l1" "$(printf '%016x' $((l1e + 512)))"
# The first compressed L2 entry, pointed past the end of the file.
cp deflate.qcow2 comp-past.qcow2
python3 - comp-past.qcow2 <<'PY'
import struct, sys, os
f = open(sys.argv[1], "r+b")
d = f.read()
cb = struct.unpack(">I", d[20:24])[0]
l1off = struct.unpack(">Q", d[40:48])[0]
l2off = struct.unpack(">Q", d[l1off:l1off + 8])[0] & 0x00fffffffffffe00
x = 62 - (cb - 8)
for i in range((1 << cb) // 8):
    w = struct.unpack(">Q", d[l2off + 8 * i:l2off + 8 * i + 8])[0]
    if w & (1 << 62):
        w = (w & ~((1 << x) - 1)) | (len(d) + 4096)
        f.seek(l2off + 8 * i)
        f.write(struct.pack(">Q", w))
        break
else:
    sys.exit("no compressed entry")
PY
qemu-img create -q -f qcow2 -u -b http://example.com/base.qcow2 -F qcow2 url.qcow2 64M
cp plain.qcow2 encrypted.qcow2
patch encrypted.qcow2 32 00000002
cp plain.qcow2 unknown.qcow2
patch unknown.qcow2 72 0000000000100000

for c in "l1-past:L1 entry 0 (guest byte 0): its L2 table points past the end of the file" \
        "l2-misaligned:its L2 table is not aligned to a cluster" \
        "comp-past:a compressed cluster past the end of the file" \
        "url:its backing file 'http://example.com/base.qcow2' is not a local path" \
        "encrypted:is encrypted (LUKS)" \
        "unknown:unknown incompatible feature (bit 20"; do
        f=${c%%:*} want=${c#*:}
        run_cmd "$BMAPSCAN" scan -o /dev/null $f.qcow2
        expect "$f: scan refuses" 1 "$f.qcow2: "
        grep -qF -- "$want" "$WORK/err" && pass "$f: says '$want'" || fail "$f: stderr does not say '$want': $(cat "$WORK/err")"
        one_line "$f: scan"
        garbage tgt.img 1M x
        run_cmd "$BMAPSCAN" copy --nobmap $f.qcow2 tgt.img
        expect "$f: copy refuses" 1 "$want"
        one_line "$f: copy"
done

gzip -1 -c plain.qcow2 >plain.qcow2.gz
run_cmd "$BMAPSCAN" copy --bmap plain.bmap plain.qcow2.gz tgt.img
expect "a qcow2 in gzip is refused" 1 "decompress it first: qcow2 needs random access"
one_line "qcow2 in gzip"
run_cmd "$BMAPSCAN" sparse plain.qcow2
expect "sparse refuses a qcow2" 1 "punching holes works on raw images"
one_line "sparse on a qcow2"
run_cmd sh -c "cat plain.qcow2 | '$BMAPSCAN' copy --bmap plain.bmap - tgt.img"
expect "a qcow2 from a pipe is refused" 1 "cannot seek"

finish
