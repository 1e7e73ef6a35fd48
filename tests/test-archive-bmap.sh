#!/bin/bash
# The bmap inside the image's own archive: a zip's .meta/image.bmap
# (etcher's convention) or the image member's name plus .bmap, in a zip
# (stored and deflated, the bmap before or after the image: the central
# directory is read first) or a tar (plain, gzip and zstd, from a file, a
# pipe and HTTP); a streamed archive with the bmap after the image refused
# with nothing written; signed bmap members, clearsigned and detached; a
# bmap member of another image refused; --member choosing the image and its
# bmap; a bmap beside the archive winning; info and verify naming the member.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }
command -v zstd >/dev/null || { echo "no zstd: skipped"; exit 77; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SERVER=$(dirname "$0")/http-server.py
A=$WORK/a
SRV=$WORK/srv
mkdir "$A" "$SRV" "$A/.meta"
PIDS=()
HOMES=()
cleanup() {
        local p h
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        for h in "${HOMES[@]}"; do
                gpgconf --homedir "$h" --kill all 2>/dev/null || true
                rm -rf "$h"
        done
        rm -rf "$WORK"
}
trap cleanup EXIT

# --- The image: 8 MiB, data in two places, holes between --------------------
img=$A/disk.img
"${GEN_FILE:?}" "$WORK/piece" 640K data 3
truncate -s 8M "$img"
dd if="$WORK/piece" of="$img" bs=64K seek=16 conv=notrunc status=none
dd if="$WORK/piece" of="$img" bs=64K seek=100 count=3 conv=notrunc status=none
"$BMAPSCAN" create -o "$A/disk.img.bmap" "$img"
cp "$A/disk.img.bmap" "$A/.meta/image.bmap"
# A second image of another size, and its bmap.
other=$A/other.img
truncate -s 4M "$other"
dd if="$WORK/piece" of="$other" bs=64K seek=2 count=2 conv=notrunc status=none
"$BMAPSCAN" create -o "$A/other.img.bmap" "$other"

# zip NAME MODE MEMBER...: a zip of files under $A, in that order.
zip_of() {
        local out=$1 mode=$2
        shift 2
        (cd "$A" && python3 -c '
import sys, zipfile
mode = zipfile.ZIP_DEFLATED if sys.argv[2] == "deflated" else zipfile.ZIP_STORED
with zipfile.ZipFile(sys.argv[1], "w", mode) as z:
    for m in sys.argv[3:]:
        z.write(m)
' "$out" "$mode" "$@")
}
# tar_of NAME MEMBER...: a tar of files under $A, in that order.
tar_of() {
        local out=$1
        shift
        tar -C "$A" -cf "$out" "$@"
}

# fresh TARGET: 8 MiB of garbage, and a copy of it to tell "nothing written".
fresh() {
        head -c 8M /dev/urandom >"$1"
        cp "$1" "$1.before"
}
# mapped_same NAME BMAP IMAGE TARGET: every mapped byte of IMAGE is in TARGET.
mapped_same() {
        local why
        if why=$(python3 - "$2" "$3" "$4" <<'EOF'
import re, sys
bmap = open(sys.argv[1]).read()
bs = int(re.search(r"<BlockSize>\s*(\d+)", bmap).group(1))
size = int(re.search(r"<ImageSize>\s*(\d+)", bmap).group(1))
img, tgt = open(sys.argv[2], "rb"), open(sys.argv[3], "rb")
n = 0
for m in re.finditer(r"<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*</Range>", bmap):
    a = int(m.group(1)); b = int(m.group(2) or a)
    start, end = a * bs, min((b + 1) * bs, size)
    img.seek(start); tgt.seek(start)
    if img.read(end - start) != tgt.read(end - start):
        sys.exit("bytes %d-%d differ" % (start, end - 1))
    n += 1
if n == 0:
    sys.exit("the bmap maps nothing")
EOF
        ); then pass "$1: the mapped bytes are the image's"; else fail "$1: $why"; fi
}
# untouched NAME TARGET: the refusal wrote nothing.
untouched() {
        if cmp -s "$2" "$2.before"; then pass "$1: nothing written"; else fail "$1: the target was written"; fi
}

# copy_ok NAME SOURCE MEMBER-SAID [ARGS...]: copy from SOURCE (a file, or
# "-" with stdin from $STDIN) names the bmap member and flashes the image.
copy_ok() {
        local name=$1 src=$2 said=$3
        shift 3
        fresh "$WORK/t"
        if [ "$src" = - ]; then
                run_cmd "$BMAPSCAN" copy "$@" - "$WORK/t" <"$STDIN"
        else
                run_cmd "$BMAPSCAN" copy "$@" "$src" "$WORK/t"
        fi
        expect "$name" 0 "$said"
        [ "$RC" = 0 ] && mapped_same "$name" "$A/disk.img.bmap" "$img" "$WORK/t"
        return 0
}

# --- zip ----------------------------------------------------------------------
zip_of "$WORK/meta-deflated.zip" deflated disk.img .meta/image.bmap
copy_ok "zip (deflated), .meta/image.bmap after the image" "$WORK/meta-deflated.zip" \
        "bmap: $WORK/meta-deflated.zip member .meta/image.bmap (not signed)"
zip_of "$WORK/named-stored.zip" stored disk.img.bmap disk.img
copy_ok "zip (stored), disk.img.bmap" "$WORK/named-stored.zip" \
        "bmap: $WORK/named-stored.zip member disk.img.bmap"
zip_of "$WORK/named-after.zip" stored disk.img disk.img.bmap
copy_ok "zip, disk.img.bmap after the image" "$WORK/named-after.zip" "member disk.img.bmap"

# A bmap member after the image whose zip CRC is wrong: the member list
# read first is the only read of it, and it must not pass as an empty (or
# partial) bmap, nor as a good one.
for mode in stored deflated; do
        zip_of "$WORK/badcrc.zip" $mode disk.img disk.img.bmap
        python3 - "$WORK/badcrc.zip" "$A/disk.img.bmap" <<'EOF2'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
crc = struct.pack("<I", zlib.crc32(open(sys.argv[2], "rb").read()))
assert d.count(crc) == 2, "the CRC is in the local header and the central directory"
open(sys.argv[1], "wb").write(d.replace(crc, struct.pack("<I", struct.unpack("<I", crc)[0] ^ 1)))
EOF2
        fresh "$WORK/t"
        run_cmd "$BMAPSCAN" copy "$WORK/badcrc.zip" "$WORK/t"
        expect "zip ($mode), bmap member with a bad CRC after the image: refused" 1 \
                "badcrc.zip: damaged zip archive: member 'disk.img.bmap': ZIP bad CRC"
        one_line "zip ($mode), bmap member with a bad CRC"
        untouched "zip ($mode), bmap member with a bad CRC" "$WORK/t"
done

# The image member's own bmap comes before etcher's name for the whole zip.
cp "$A/other.img.bmap" "$WORK/saved-meta.bmap"
cp "$A/other.img.bmap" "$A/.meta/image.bmap"
zip_of "$WORK/both.zip" deflated .meta/image.bmap disk.img.bmap disk.img
copy_ok "zip with both: the member's own bmap wins" "$WORK/both.zip" "member disk.img.bmap"
cp "$A/disk.img.bmap" "$A/.meta/image.bmap"

# A streamed zip (stdin from a pipe): only what comes before the image.
zip_of "$WORK/meta-first.zip" deflated .meta/image.bmap disk.img
fresh "$WORK/t"
set +e
cat "$WORK/meta-first.zip" | "$BMAPSCAN" copy - "$WORK/t" >"$WORK/out" 2>"$WORK/err"
RC=$?
set -e
expect "zip from a pipe, bmap first" 0 "bmap: standard input member .meta/image.bmap"
[ "$RC" = 0 ] && mapped_same "zip from a pipe" "$A/disk.img.bmap" "$img" "$WORK/t"
fresh "$WORK/t"
set +e
cat "$WORK/meta-deflated.zip" | "$BMAPSCAN" copy - "$WORK/t" >"$WORK/out" 2>"$WORK/err"
RC=$?
set -e
expect "zip from a pipe, bmap after the image: refused" 1 "put the bmap first in the archive"
one_line "zip from a pipe, bmap after the image"
untouched "zip from a pipe, bmap after the image" "$WORK/t"

# --- tar ----------------------------------------------------------------------
tar_of "$WORK/first.tar" disk.img.bmap disk.img
tar_of "$WORK/after.tar" disk.img disk.img.bmap
gzip -1 -c "$WORK/first.tar" >"$WORK/first.tar.gz"
gzip -1 -c "$WORK/after.tar" >"$WORK/after.tar.gz"
zstd -q -1 -c "$WORK/first.tar" >"$WORK/first.tar.zst"
zstd -q -1 -c "$WORK/after.tar" >"$WORK/after.tar.zst"
copy_ok "tar, bmap first" "$WORK/first.tar" "bmap: $WORK/first.tar member disk.img.bmap"
copy_ok "tar.gz, bmap first (streamed)" "$WORK/first.tar.gz" "member disk.img.bmap"
copy_ok "tar.zst, bmap first (streamed)" "$WORK/first.tar.zst" "member disk.img.bmap"
# A local uncompressed tar has its member list read first: the bmap is
# read wherever it stands.
copy_ok "local tar, bmap after the image (member list read first)" "$WORK/after.tar" "member disk.img.bmap"

for f in after.tar.gz after.tar.zst; do
        fresh "$WORK/t"
        run_cmd "$BMAPSCAN" copy "$WORK/$f" "$WORK/t"
        expect "$f, bmap after the image: refused" 1 \
                "holds none before its image member 'disk.img' (looked for disk.img.bmap, disk.bmap): pass --bmap FILE, or put the bmap first in the archive; nothing was written"
        one_line "$f refused"
        untouched "$f refused" "$WORK/t"
done
fresh "$WORK/t"
set +e
cat "$WORK/after.tar" | "$BMAPSCAN" copy - "$WORK/t" >"$WORK/out" 2>"$WORK/err"
RC=$?
set -e
expect "tar from a pipe, bmap after the image: refused" 1 "put the bmap first in the archive"
one_line "tar from a pipe refused"
untouched "tar from a pipe refused" "$WORK/t"
fresh "$WORK/t"
set +e
zstd -dc "$WORK/first.tar.zst" | "$BMAPSCAN" copy - "$WORK/t" >"$WORK/out" 2>"$WORK/err"
RC=$?
set -e
expect "tar from a pipe, bmap first" 0 "standard input member disk.img.bmap"
[ "$RC" = 0 ] && mapped_same "tar from a pipe, bmap first" "$A/disk.img.bmap" "$img" "$WORK/t"

# --bmap, or --nobmap, still works on the refused archive.
copy_ok "--bmap wins over the archive" "$WORK/after.tar.gz" "" --bmap "$A/disk.img.bmap"
fresh "$WORK/t"
run_cmd "$BMAPSCAN" copy --nobmap "$WORK/after.tar.gz" "$WORK/t"
expect "--nobmap copies the image of the refused archive" 0
cmp -s "$img" "$WORK/t" && pass "--nobmap: the whole image" || fail "--nobmap: the target differs from the image"

# A bmap beside the archive wins over the one inside.
cp "$WORK/first.tar.gz" "$WORK/beside.tar.gz"
cp "$A/disk.img.bmap" "$WORK/beside.tar.gz.bmap"
fresh "$WORK/t"
run_cmd "$BMAPSCAN" -v copy "$WORK/beside.tar.gz" "$WORK/t"
expect "a bmap beside the archive" 0 "$WORK/beside.tar.gz.bmap: bmap"
grep -q "member disk.img.bmap" "$WORK/err" && fail "a bmap beside the archive: the member was used" ||
        pass "a bmap beside the archive wins over the member"

# No bmap anywhere: where it was looked for, inside too.
tar_of "$WORK/nobmap.tar" disk.img
fresh "$WORK/t"
run_cmd "$BMAPSCAN" copy "$WORK/nobmap.tar" "$WORK/t"
expect "no bmap in the archive" 1 "in the tar archive: disk.img.bmap, disk.bmap): give --bmap FILE, or --nobmap"
one_line "no bmap in the archive"
untouched "no bmap in the archive" "$WORK/t"

# --- A bmap member of another image ---------------------------------------------
cp "$A/disk.img.bmap" "$WORK/keep.bmap"
cp "$A/other.img.bmap" "$A/disk.img.bmap"
tar_of "$WORK/wrong.tar" disk.img.bmap disk.img
zip_of "$WORK/wrong.zip" deflated disk.img.bmap disk.img
cp "$WORK/keep.bmap" "$A/disk.img.bmap"
for f in wrong.tar wrong.zip; do
        fresh "$WORK/t"
        run_cmd "$BMAPSCAN" copy "$WORK/$f" "$WORK/t"
        expect "$f: a bmap member of another size refused" 1 "they do not belong together"
        one_line "$f refused"
        untouched "$f refused" "$WORK/t"
done
gzip -1 -c "$WORK/wrong.tar" >"$WORK/wrong.tar.gz"
fresh "$WORK/t"
run_cmd "$BMAPSCAN" copy "$WORK/wrong.tar.gz" "$WORK/t"
expect "wrong.tar.gz: a bmap member of another size refused" 1 "the bmap $WORK/wrong.tar.gz member disk.img.bmap says 4194304"

# --- A bmap member given twice (tar -r appends): extracting keeps the last,
# a stream sees the first before the image; neither is taken in silence.
mkdir "$WORK/o"
cp "$A/other.img.bmap" "$WORK/o/disk.img.bmap"
tar -C "$WORK/o" -cf "$WORK/dup-around.tar" disk.img.bmap
tar -C "$A" -rf "$WORK/dup-around.tar" disk.img disk.img.bmap
tar -C "$WORK/o" -cf "$WORK/dup-first.tar" disk.img.bmap
tar -C "$A" -rf "$WORK/dup-first.tar" disk.img.bmap disk.img
gzip -1 -c "$WORK/dup-first.tar" >"$WORK/dup-first.tar.gz"
for f in dup-around.tar dup-first.tar dup-first.tar.gz; do
        fresh "$WORK/t"
        run_cmd "$BMAPSCAN" copy "$WORK/$f" "$WORK/t"
        expect "$f: a bmap member given twice: refused" 1 \
                "$WORK/$f: the tar archive holds member 'disk.img.bmap' more than once"
        one_line "$f: a bmap member given twice"
        untouched "$f: a bmap member given twice" "$WORK/t"
done

# --- --member: the image and its bmap ------------------------------------------
tar_of "$WORK/two.tar" other.img.bmap disk.img.bmap other.img disk.img
fresh "$WORK/t"
run_cmd "$BMAPSCAN" copy "$WORK/two.tar" "$WORK/t"
expect "two images: pick one" 1 "pick one with --member NAME"
copy_ok "--member disk.img uses disk.img.bmap" "$WORK/two.tar" "member disk.img.bmap" --member disk.img
gzip -1 -c "$WORK/two.tar" >"$WORK/two.tar.gz"
head -c 4M /dev/urandom >"$WORK/t4"
run_cmd "$BMAPSCAN" copy --member other.img "$WORK/two.tar.gz" "$WORK/t4"
expect "--member other.img (streamed) uses other.img.bmap" 0 "member other.img.bmap"
[ "$RC" = 0 ] && mapped_same "--member other.img" "$A/other.img.bmap" "$other" "$WORK/t4"

# --- verify and info -------------------------------------------------------------
copy_ok "copy for verify" "$WORK/meta-deflated.zip" "member"
run_cmd "$BMAPSCAN" verify "$WORK/meta-deflated.zip" "$WORK/t"
expect "verify with the bmap in the zip" 0 "match $WORK/meta-deflated.zip member .meta/image.bmap"
printf 'X' | dd of="$WORK/t" bs=1 seek=$((16 * 65536 + 5)) conv=notrunc status=none
run_cmd "$BMAPSCAN" verify "$WORK/meta-deflated.zip" "$WORK/t"
expect "verify finds a changed byte" 1 "do not match"

run_cmd "$BMAPSCAN" info "$WORK/meta-deflated.zip"
expect "info of a zip" 0
grep -q "^bmap: *$WORK/meta-deflated.zip member .meta/image.bmap$" "$WORK/out" &&
        grep -q "^image member: *disk.img$" "$WORK/out" && grep -q "^image size: *8388608 " "$WORK/out" &&
        pass "info names the bmap member and the image member" || fail "info of a zip: $(cat "$WORK/out")"
run_cmd "$BMAPSCAN" info --json "$WORK/first.tar.zst"
expect "info --json of a tar.zst" 0
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["bmap"] == sys.argv[2] + " member disk.img.bmap", j
assert j["image_member"] == "disk.img" and j["image_size"] == 8388608 and j["valid"], j
' "$WORK/out" "$WORK/first.tar.zst" && pass "info --json names the member" || fail "info --json: $(cat "$WORK/out")"

# --- Signed bmap members ----------------------------------------------------------
if command -v gpg >/dev/null && command -v gpgconf >/dev/null; then
        # Short paths: GnuPG's socket paths are limited.
        G=$(mktemp -d /tmp/gpgz.XXXXXX)
        HOMES+=("$G")
        H=$(mktemp -d /tmp/gpgz.XXXXXX)
        HOMES+=("$H")
        export GNUPGHOME=$G
        gpg --batch --quiet --passphrase '' --quick-gen-key 'Test A <a@example.org>' ed25519 sign never 2>/dev/null
        GNUPGHOME=$H gpg --batch --quiet --passphrase '' --quick-gen-key 'Test B <b@example.org>' ed25519 sign never \
                2>/dev/null
        FPR_A=$(gpg --with-colons --fingerprint a@example.org | awk -F: '/^fpr/ { print $10; exit }')
        mkdir "$WORK/s"
        gpg --batch --yes -u "$FPR_A" --clearsign -o "$WORK/s/disk.img.bmap" "$A/disk.img.bmap" 2>/dev/null
        cp "$img" "$WORK/s/disk.img"
        (cd "$WORK/s" && tar -cf "$WORK/clear.tar" disk.img.bmap disk.img)
        copy_ok "clearsigned bmap member" "$WORK/clear.tar" \
                "bmap: $WORK/clear.tar member disk.img.bmap (signed by Test A <a@example.org>, fingerprint $FPR_A)" \
                --fingerprint "$FPR_A"

        cp "$A/disk.img.bmap" "$WORK/s/disk.img.bmap"
        gpg --batch --yes -u "$FPR_A" --armor --detach-sign -o "$WORK/s/disk.img.bmap.asc" "$WORK/s/disk.img.bmap" \
                2>/dev/null
        (cd "$WORK/s" && python3 -c '
import zipfile
with zipfile.ZipFile("../detached.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for m in ("disk.img", "disk.img.bmap", "disk.img.bmap.asc"):
        z.write(m)
')
        copy_ok "detached signature member" "$WORK/detached.zip" \
                "(signed by Test A <a@example.org>, fingerprint $FPR_A, signature in member disk.img.bmap.asc)" \
                --fingerprint "$FPR_A"

        GNUPGHOME=$H gpg --batch --yes -u b@example.org --armor --detach-sign -o "$WORK/s/disk.img.bmap.asc" \
                "$WORK/s/disk.img.bmap" 2>/dev/null
        (cd "$WORK/s" && tar -czf "$WORK/unknown-key.tar.gz" disk.img.bmap disk.img.bmap.asc disk.img)
        fresh "$WORK/t"
        run_cmd "$BMAPSCAN" copy "$WORK/unknown-key.tar.gz" "$WORK/t"
        expect "a signature member by an unknown key: refused" 1 "disk.img.bmap"
        one_line "a signature member by an unknown key"
        untouched "a signature member by an unknown key" "$WORK/t"

        (cd "$WORK/s" && tar -cf "$WORK/unsigned.tar" disk.img.bmap disk.img)
        fresh "$WORK/t"
        run_cmd "$BMAPSCAN" copy --fingerprint "$FPR_A" "$WORK/unsigned.tar" "$WORK/t"
        expect "--fingerprint with no signature member: refused" 1 "no signature found"
        one_line "--fingerprint with no signature member"
        untouched "--fingerprint with no signature member" "$WORK/t"
else
        echo "no gpg: the signed members are not tested"
fi

# --- Over HTTP ----------------------------------------------------------------------
cp "$WORK/meta-deflated.zip" "$WORK/first.tar.gz" "$WORK/after.tar.gz" "$WORK/first.tar" "$SRV/"
python3 "$SERVER" --root "$SRV" --port-file "$WORK/http.port" --log "$WORK/http.log" \
        2>"$WORK/http.stderr" &
PIDS+=($!)
if ! wait_until server_ready "$WORK/http.port" $!; then
        fail "the http server did not start: $(cat "$WORK/http.stderr")"
        finish
        exit
fi
U=http://127.0.0.1:$(cat "$WORK/http.port")
copy_ok "zip over http (ranges), bmap after the image" "$U/meta-deflated.zip" \
        "bmap: $U/meta-deflated.zip member .meta/image.bmap"
grep -qE '^GET /meta-deflated.zip bytes=' "$WORK/http.log" && pass "the zip's central directory read with ranges" ||
        fail "zip over http: no range request: $(cat "$WORK/http.log")"
copy_ok "tar.gz over http, bmap first" "$U/first.tar.gz" "member disk.img.bmap"
copy_ok "tar over http, bmap first" "$U/first.tar" "member disk.img.bmap"
fresh "$WORK/t"
run_cmd "$BMAPSCAN" copy "$U/after.tar.gz" "$WORK/t"
expect "tar.gz over http, bmap after the image: refused" 1 "put the bmap first in the archive; nothing was written"
one_line "tar.gz over http refused"
untouched "tar.gz over http refused" "$WORK/t"
fresh "$WORK/t"
run_cmd "$BMAPSCAN" copy "$U/noranges/meta-deflated.zip" "$WORK/t"
expect "zip over http without ranges, bmap after the image: refused" 1 "put the bmap first in the archive"
untouched "zip over http without ranges" "$WORK/t"

finish
