#!/bin/bash
# scan and info IMAGE at the command level: a read-only image scanned by an
# ordinary user, the JSON report, block sizes (checked by bmaptool copy),
# the same bmap for an expanded and a sparse copy, refusals, and the
# one-line picture.
. "$(dirname "$0")/lib.sh"

# A small GPT image: a swap partition, an ext4, random "LVM" bytes, all in
# an expanded file.
img=$WORK/disk.img
mkdir -p "$WORK/root/dir"
for i in $(seq 1 50); do head -c $((i * 3000)) /dev/urandom >"$WORK/root/dir/f$i"; done
truncate -s 24M "$WORK/ext4.part" && mkfs.ext4 -q -F -d "$WORK/root" "$WORK/ext4.part"
truncate -s 8M "$WORK/swap.part" && mkswap -q "$WORK/swap.part"
head -c 4M /dev/urandom >"$WORK/lvm.part"
truncate -s 48M "$WORK/sparse.img"
printf 'label: gpt\nstart=2048, size=16384, type=swap\nstart=18432, size=49152, type=linux\nstart=67584, size=8192, type=lvm\n' |
        sfdisk -q "$WORK/sparse.img"
dd if="$WORK/swap.part" of="$WORK/sparse.img" bs=512 seek=2048 conv=notrunc status=none
dd if="$WORK/ext4.part" of="$WORK/sparse.img" bs=512 seek=18432 conv=notrunc status=none
dd if="$WORK/lvm.part" of="$WORK/sparse.img" bs=512 seek=67584 conv=notrunc status=none
cp --sparse=never "$WORK/sparse.img" "$img"

# The same bmap for the expanded and the sparse copy: holes do not matter.
run_cmd "$BMAPSCAN" scan -o "$WORK/a.bmap" "$img"
expect "scan of the expanded image" 0
run_cmd "$BMAPSCAN" scan -o "$WORK/b.bmap" "$WORK/sparse.img"
expect "scan of the sparse image" 0
cmp -s "$WORK/a.bmap" "$WORK/b.bmap" && pass "expanded and sparse copies give the same bmap" ||
        fail "expanded and sparse copies give different bmaps: $(diff "$WORK/a.bmap" "$WORK/b.bmap" | head -5)"
grep -q "swap: header page" "$WORK/err" && pass "report: swap decided by its header" || fail "report: $(cat "$WORK/err")"
grep -q "ext4: block bitmap" "$WORK/err" && pass "report: ext4 by its bitmap" || fail "report: $(cat "$WORK/err")"
grep -q "unknown: fully mapped" "$WORK/err" && pass "report: random partition fully mapped" ||
        fail "report: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" info "$WORK/a.bmap"
expect "our scan bmap is valid" 0

# bmaptool flashes it and verifies every range checksum.
for bs in 512 4096 65536; do
        run_cmd "$BMAPSCAN" scan --block-size "$bs" -o "$WORK/bs.bmap" "$img"
        expect "scan --block-size $bs" 0
        grep -q "<BlockSize> $bs </BlockSize>" "$WORK/bs.bmap" && pass "block size $bs in the bmap" ||
                fail "block size $bs missing"
        rm -f "$WORK/flashed.img"
        if bmaptool -q copy --bmap "$WORK/bs.bmap" "$img" "$WORK/flashed.img" 2>"$WORK/bt.err"; then
                pass "bmaptool copy accepts and verifies the --block-size $bs bmap"
        else
                fail "bmaptool copy refused the --block-size $bs bmap: $(head -3 "$WORK/bt.err")"
        fi
done

# An ordinary user scans a read-only image.
chmod 0444 "$img"
chmod 0755 "$WORK"
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
        run_cmd setpriv --reuid=65534 --regid=65534 --clear-groups "$BMAPSCAN" scan --no-checksum "$img"
        expect "scan as an ordinary user on a read-only image" 0
        grep -q "<BlockMap>" "$WORK/out" && pass "bmap on stdout" || fail "no bmap on stdout"
else
        run_cmd "$BMAPSCAN" scan --no-checksum "$img"
        expect "scan of a read-only image" 0
fi

# --json: one object on stdout instead of the bmap; with -o both.
run_cmd "$BMAPSCAN" scan --json "$img"
expect "scan --json" 0
if python3 - "$WORK/out" <<'PY'; then pass "scan --json fields"; else fail "scan --json: $(head -c 300 "$WORK/out")"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert d["table"] == "gpt" and d["sector_size"] == 512, d
parts = {p["number"]: p for p in d["partitions"]}
assert parts[1]["filesystem"] == "swap" and parts[1]["probed"] and parts[1]["mapped_bytes"] == 4096, parts[1]
assert parts[2]["filesystem"] == "ext4" and parts[2]["probed"] and parts[2]["probe"] == "ext", parts[2]
assert not parts[3]["probed"] and parts[3]["mapped_bytes"] == parts[3]["size"], parts[3]
assert d["mapped_blocks"] * d["block_size"] >= d["mapped_bytes"] and d["ranges"] >= 1
PY
grep -q "<bmap" "$WORK/out" && fail "--json also printed a bmap on stdout" || pass "--json prints no bmap"
run_cmd "$BMAPSCAN" scan --json -o "$WORK/c.bmap" "$img"
expect "scan --json -o" 0
cmp -s "$WORK/a.bmap" "$WORK/c.bmap" && pass "--json -o writes the same bmap" || fail "--json -o bmap differs"

# info IMAGE: the table and the picture.
run_cmd "$BMAPSCAN" info "$img"
expect "info IMAGE" 0
grep -q "gpt partition table" "$WORK/out" && pass "info names the table" || fail "info: $(cat "$WORK/out")"
grep -qE '^\[[#.a-zA-Z?]{64}\]$' "$WORK/out" && pass "info draws a 64-character picture" ||
        fail "info picture: $(cat "$WORK/out")"
run_cmd "$BMAPSCAN" info --json "$img"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["partitions"]) == 3' "$WORK/out" &&
        pass "info --json IMAGE" || fail "info --json IMAGE: $(head -c 300 "$WORK/out")"

# Refusals: one line, exit 1.
run_cmd "$BMAPSCAN" scan "$WORK/missing.img"
expect "missing image" 1 "missing.img"
one_line "missing image"
: >"$WORK/empty.img"
run_cmd "$BMAPSCAN" scan "$WORK/empty.img"
expect "empty image" 1 "empty"
one_line "empty image"
run_cmd "$BMAPSCAN" scan "$WORK"
expect "a directory" 1 "not an image file"
for c in info sparse; do
        run_cmd "$BMAPSCAN" "$c" "$WORK/empty.img"
        expect "$c of an empty image" 1 "empty"
        one_line "$c of an empty image"
done

# Images under one sector: one unknown region, mapped in full, for every
# command (libfdisk refuses to read a table from them).
printf 'short' >"$WORK/tiny.img"
printf '%511s' x >"$WORK/tiny511.img"
for t in tiny tiny511; do
        n=$(stat -c %s "$WORK/$t.img")
        run_cmd "$BMAPSCAN" scan --json -o "$WORK/$t.bmap" "$WORK/$t.img"
        expect "scan of a $n-byte image" 0
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); n=int(sys.argv[2]); assert d["image_size"] == n and d["mapped_bytes"] == n and d["table"] == "none", d' "$WORK/out" "$n" &&
                pass "scan of a $n-byte image: one region, all $n bytes mapped" || fail "scan of a $n-byte image: $(head -c 400 "$WORK/out")"
        run_cmd "$BMAPSCAN" info "$WORK/$t.bmap"
        expect "the bmap of a $n-byte image is valid" 0
        run_cmd "$BMAPSCAN" info "$WORK/$t.img"
        expect "info of a $n-byte image" 0
        grep -q "smaller than one 512-byte sector: mapped in full" "$WORK/out" && pass "info of a $n-byte image says why" ||
                fail "info of a $n-byte image: $(cat "$WORK/out")"
        run_cmd "$BMAPSCAN" sparse "$WORK/$t.img"
        expect "sparse of a $n-byte image" 0
        [ "$(stat -c %s "$WORK/$t.img")" = "$n" ] && pass "sparse keeps the $n bytes" || fail "sparse changed the size"
done
[ "$(cat "$WORK/tiny.img")" = short ] && pass "sparse of a 5-byte image leaves its bytes" || fail "tiny image changed"

# A name with a newline and a byte that is not UTF-8: the report shows it
# as error lines do ('?'), the JSON is valid UTF-8 (U+FFFD for the byte).
weird="$WORK/new"$'\n'"line"$'\xff'".img"
cp "$WORK/tiny.img" "$weird"
run_cmd "$BMAPSCAN" scan -o "$WORK/weird.bmap" "$weird"
expect "scan of an oddly named image" 0
grep -qxF "$WORK/new?line?.img: 5 bytes, no partition table, 512-byte sectors" "$WORK/err" &&
        pass "report: the name escaped on its one line" || fail "report: $(cat -A "$WORK/err" | head -3)"
LC_ALL=C grep -q $'\xff' "$WORK/err" && fail "report: the raw 0xff byte reached stderr" || pass "report: no raw 0xff byte"
run_cmd "$BMAPSCAN" scan --json "$weird"
expect "scan --json of an oddly named image" 0
if python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["image"] == sys.argv[1] + "/new\nline\ufffd.img", d["image"]' "$WORK" <"$WORK/out"; then
        pass "scan --json of an oddly named image: valid UTF-8 JSON"
else
        fail "scan --json of an oddly named image: $(head -c 300 "$WORK/out" | cat -A)"
fi
run_cmd "$BMAPSCAN" scan "$WORK/missing"$'\n'"x"$'\xff'
expect "an oddly named missing image" 1 "$WORK/missing?x?"
one_line "an oddly named missing image"
chmod 0644 "$img"
cp "$img" "$WORK/self.img"
before=$(sha256sum <"$WORK/self.img")
run_cmd "$BMAPSCAN" scan -o "$WORK/self.img" "$WORK/self.img"
expect "-o naming the image" 1 "the image itself"
[ "$(sha256sum <"$WORK/self.img")" = "$before" ] && pass "the image is unchanged" || fail "the image was changed"

# A truncated image: whatever lies in a partition cut by the end of the
# image is mapped, never lost. (libfdisk rejects a GPT whose backup is cut
# off and sees only the protective MBR, so the whole image is mapped.)
head -c $((30 << 20)) "$img" >"$WORK/cut.img"
run_cmd "$BMAPSCAN" scan --json -o "$WORK/cut.bmap" "$WORK/cut.img"
expect "scan of a truncated GPT image" 0
python3 - "$WORK/out" <<'PY' && pass "truncated GPT: the cut partition is mapped" || fail "truncated GPT: $(head -c 600 "$WORK/out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mapped_bytes"] >= d["image_size"] - 18432 * 512, d
PY
# The same with an MBR, which survives the cut: the cut ext4 is mapped in full.
truncate -s 48M "$WORK/mbr.img"
printf 'label: dos\nstart=2048, size=16384, type=82\nstart=18432, size=49152, type=83\n' | sfdisk -q "$WORK/mbr.img"
dd if="$WORK/swap.part" of="$WORK/mbr.img" bs=512 seek=2048 conv=notrunc status=none
dd if="$WORK/ext4.part" of="$WORK/mbr.img" bs=512 seek=18432 conv=notrunc status=none
head -c $((30 << 20)) "$WORK/mbr.img" >"$WORK/cut-mbr.img"
run_cmd "$BMAPSCAN" scan --json -o "$WORK/cut-mbr.bmap" "$WORK/cut-mbr.img"
expect "scan of a truncated MBR image" 0
python3 - "$WORK/out" <<'PY' && pass "truncated MBR: the cut ext4 is fully mapped, the swap still probed" || fail "truncated MBR: $(head -c 800 "$WORK/out")"
import json, sys
d = json.load(open(sys.argv[1]))
p = {p["number"]: p for p in d["partitions"]}
assert d["table"] == "dos", d["table"]
assert p[1]["probed"] and p[1]["mapped_bytes"] == 4096, p[1]
assert "fully mapped" in p[2]["how"], p[2]
assert p[2]["mapped_bytes"] == d["image_size"] - p[2]["start"], p[2]
PY

finish
