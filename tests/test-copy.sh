#!/bin/bash
# copy and verify: bmaptool's test image through every bmap version; every
# compression and container from a file and from stdin; damaged streams,
# wrong bmaps and damaged bmaps refused before a byte is written; file
# targets replaced atomically; verify finding a flipped byte; interrupts;
# and block devices (loop devices, skipped where there are none).
. "$(dirname "$0")/lib.sh"

D=$TESTDATA
img=$WORK/test.image
gzip -dc "$D/bmaptool/test.image.gz" >"$img"
size=$(stat -c %s "$img")

# flip_byte FILE OFFSET: inverts every bit of one byte.
flip_byte() {
        local b
        b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
        printf "\\x$(printf %02x $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# flip_effective ORIG COPY: COPY is ORIG with one byte inverted, from a third
# of the way in on, where the format's own decoder then fails or gives other
# bytes. (Rarely a flipped bit changes nothing that is decoded, e.g. the
# code length of a symbol a deflate block never uses: gzip -t passes it
# and the output is the same, so a copy from it is right to succeed.)
flip_effective() {
        local orig=$1 copy=$2 dec off
        case $orig in
        *.gz) dec="gzip -dc" ;;
        *.bz2) dec="bzip2 -dc" ;;
        *.xz) dec="xz -dc" ;;
        *.zst) dec="zstd -dcq" ;;
        *.lz4) dec="lz4 -dcq" ;;
        *.lzo) dec="lzop -dcq" ;;
        esac
        off=$(($(stat -c %s "$orig") / 3))
        while :; do
                cp "$orig" "$copy"
                flip_byte "$copy" $off
                # shellcheck disable=SC2086 # the decoder's words
                $dec <"$copy" 2>/dev/null | cmp -s - <($dec <"$orig") || return 0
                off=$((off + 1))
        done
}

# expect_same NAME FILE: FILE holds exactly the image.
expect_same() {
        if cmp -s "$img" "$2"; then pass "$1"; else fail "$1: $(cmp "$img" "$2" 2>&1 | head -1)"; fi
}

# --- bmaptool's test image, with each bmap version, from the .gz ---------
for v in 1.2 1.3 1.4 2.0; do
        rm -f "$WORK/tgt"
        run_cmd "$BMAPSCAN" copy --bmap "$D/bmaptool/test.image.bmap.v$v" "$D/bmaptool/test.image.gz" "$WORK/tgt"
        expect "copy test.image.gz with the $v bmap" 0
        expect_same "copy with the $v bmap reproduces the image" "$WORK/tgt"
done
rm -f "$WORK/tgt"
run_cmd "$BMAPSCAN" copy --bmap "$D/blockmap/stringified.bmap" "$D/bmaptool/test.image.gz" "$WORK/tgt"
expect "copy with the re-rendered bmap" 0

# Damaged bmaps: refused before anything is written (no target appears).
for f in "$D"/blockmap/invalid/file-checksum/*.bmap; do
        rm -f "$WORK/tgt"
        run_cmd "$BMAPSCAN" copy --bmap "$f" "$D/bmaptool/test.image.gz" "$WORK/tgt"
        expect "bad file checksum refused: $(basename "$f")" 1 "checksum"
        [ ! -e "$WORK/tgt" ] && pass "nothing written for $(basename "$f")" || fail "a target appeared for $(basename "$f")"
done
for f in "$D"/blockmap/invalid/range/version-*.bmap; do
        run_cmd "$BMAPSCAN" copy --bmap "$f" "$D/bmaptool/test.image.gz" "$WORK/tgt"
        expect "bad range checksum refused: $(basename "$f")" 1 "119-133"
done
for f in "$D"/blockmap/invalid/range/multiple-*.bmap; do
        run_cmd "$BMAPSCAN" copy --bmap "$f" "$D/bmaptool/test.image.gz" "$WORK/tgt"
        expect "bad range checksums refused: $(basename "$f")" 1 "15-18, 119-133, 191"
done
# The padded image with the plain image's bmap: a checksum mismatch, cleanly.
rm -f "$WORK/tgt"
run_cmd "$BMAPSCAN" copy --bmap "$D/bmaptool/test.image.bmap.v2.0" "$D/blockmap/padded-bmap.img.gz" "$WORK/tgt"
expect "padded image with the wrong bmap fails" 1 "checksum mismatch in range"
[ ! -e "$WORK/tgt" ] && pass "no target left after the mismatch" || fail "a target was left after the mismatch"
ls "$WORK"/tgt.bmapscan-* >/dev/null 2>&1 && fail "a temporary file was left" || pass "no temporary file left"

# A regular target that exists is left untouched by a failed copy.
echo "precious" >"$WORK/keep"
run_cmd "$BMAPSCAN" copy --bmap "$D/bmaptool/test.image.bmap.v2.0" "$D/blockmap/padded-bmap.img.gz" "$WORK/keep"
expect "failed copy over an existing file" 1
[ "$(cat "$WORK/keep")" = precious ] && pass "the existing file is unchanged" || fail "the existing file was changed"

# --- bmap discovery ------------------------------------------------------
mkdir "$WORK/find"
cp "$D/bmaptool/test.image.gz" "$WORK/find/a.img.gz"
cp "$D/bmaptool/test.image.bmap.v2.0" "$WORK/find/a.img.bmap"
run_cmd "$BMAPSCAN" -v copy "$WORK/find/a.img.gz" "$WORK/find/out"
expect "bmap found by stripping one extension" 0 "a.img.bmap"
rm "$WORK/find/a.img.bmap"
run_cmd "$BMAPSCAN" copy "$WORK/find/a.img.gz" "$WORK/find/out2"
expect "no bmap: refused" 1 "no bmap found"
one_line "no bmap"
run_cmd "$BMAPSCAN" copy --nobmap "$WORK/find/a.img.gz" "$WORK/find/out2"
expect "--nobmap copies every byte" 0
expect_same "--nobmap copy" "$WORK/find/out2"
run_cmd "$BMAPSCAN" copy - "$WORK/tgt"
expect "stdin without --bmap" 2 "--bmap"
run_cmd "$BMAPSCAN" copy --bmap x --nobmap a b
expect "--bmap with --nobmap" 2 "exclude"

# --- every compression and container, from a file and from stdin --------
bmap=$D/bmaptool/test.image.bmap.v2.0
mkdir "$WORK/c"
cp "$img" "$WORK/c/test.img"
(
        cd "$WORK/c"
        gzip -k -c test.img >img.gz
        pigz -c -b 128 test.img >img.pigz.gz 2>/dev/null || cat test.img | gzip >img.pigz.gz
        bzip2 -k -c test.img >img.bz2
        xz -T2 --block-size=65536 -c test.img >img.xz
        zstd -q -c test.img >img.zst
        lz4 -q -c test.img >img.lz4
        lzop -c test.img >img.lzo
        tar cf - test.img | lzop -c >img.tar.lzo
        cp test.img img.raw
        tar cf img.tar test.img
        tar czf img.tar.gz test.img
        tar cJf img.tar.xz test.img
        tar --zstd -cf img.tar.zst test.img
        echo readme >README
        tar czf img2.tar.gz README test.img
        zip -q img.zip test.img
)
for f in img.raw img.gz img.pigz.gz img.bz2 img.xz img.zst img.lz4 img.lzo img.tar img.tar.gz img.tar.xz img.tar.zst img.tar.lzo img2.tar.gz img.zip; do
        rm -f "$WORK/tgt"
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/$f" "$WORK/tgt"
        expect "copy from $f" 0
        expect_same "$f reproduces the image" "$WORK/tgt"
        [ "$(stat -c %s "$WORK/tgt")" = "$size" ] && pass "$f: target is exactly ImageSize" || fail "$f: target size"
        case $f in
        img.zip) continue ;; # zip needs its central directory: not from a pipe
        esac
        rm -f "$WORK/tgt"
        set +e
        "$BMAPSCAN" copy --bmap "$bmap" - "$WORK/tgt" <"$WORK/c/$f" >/dev/null 2>"$WORK/err"
        RC=$?
        set -e
        expect "copy $f from stdin" 0
        expect_same "$f from stdin reproduces the image" "$WORK/tgt"
done
# The target is sparse: unmapped blocks are holes.
alloc=$(du -B1 "$WORK/tgt" | cut -f1)
[ "$alloc" -lt "$size" ] && pass "the target file is sparse ($alloc of $size bytes allocated)" ||
        fail "the target file is not sparse ($alloc bytes allocated)"

# Damaged streams: truncated and bit-flipped, never a short success.
for f in img.gz img.bz2 img.xz img.zst img.lz4 img.lzo img.tar.gz; do
        n=$(stat -c %s "$WORK/c/$f")
        head -c $((n / 2)) "$WORK/c/$f" >"$WORK/cut"
        rm -f "$WORK/tgt"
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/cut" "$WORK/tgt"
        expect "truncated $f fails" 1
        one_line "truncated $f"
        [ ! -e "$WORK/tgt" ] && pass "truncated $f: no target" || fail "truncated $f left a target"
        flip_effective "$WORK/c/$f" "$WORK/flip"
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/flip" "$WORK/tgt"
        expect "bit-flipped $f fails" 1
done
# lzo: the bmap found beside the .img.lzo (the suffix stripped), as bmaptool
# does; and bmaptool itself flashes our .lzo the same (it runs lzop).
mkdir "$WORK/lzo"
cp "$WORK/c/img.lzo" "$WORK/lzo/vendor.img.lzo"
cp "$bmap" "$WORK/lzo/vendor.img.bmap"
rm -f "$WORK/tgt"
run_cmd "$BMAPSCAN" copy "$WORK/lzo/vendor.img.lzo" "$WORK/tgt"
expect "copy vendor.img.lzo with vendor.img.bmap beside it" 0
expect_same "vendor.img.lzo reproduces the image" "$WORK/tgt"
if command -v bmaptool >/dev/null; then
        rm -f "$WORK/tgt2"
        if bmaptool -q copy --bmap "$bmap" "$WORK/lzo/vendor.img.lzo" "$WORK/tgt2" 2>"$WORK/err"; then
                cmp -s "$WORK/tgt" "$WORK/tgt2" && pass "bmaptool copy of the same .lzo gives the same file" ||
                        fail "bmaptool copy of the .lzo differs from ours"
        else
                fail "bmaptool copy of the .lzo failed: $(head -c 300 "$WORK/err")"
        fi
fi
# Even without checksums (--no-verify) a truncated stream is an error.
n=$(stat -c %s "$WORK/c/img.xz")
head -c $((n / 2)) "$WORK/c/img.xz" >"$WORK/cut"
run_cmd "$BMAPSCAN" copy --no-verify --nobmap "$WORK/cut" "$WORK/tgt"
expect "truncated xz with --nobmap --no-verify fails" 1

# --- verify --------------------------------------------------------------
rm -f "$WORK/tgt"
run_cmd "$BMAPSCAN" copy --verify-after --bmap "$bmap" "$WORK/c/img.zst" "$WORK/tgt"
expect "copy --verify-after" 0 "ranges match"
run_cmd "$BMAPSCAN" verify --bmap "$bmap" "$WORK/c/img.zst" "$WORK/tgt"
expect "verify of a good copy" 0
# Flip one byte inside range 119-133 (block 120).
flip_byte "$WORK/tgt" $((120 * 4096 + 7))
run_cmd "$BMAPSCAN" verify --bmap "$bmap" - "$WORK/tgt"
expect "verify finds a flipped byte" 1 "do not match"
grep -q "bad range 119-133" "$WORK/out" && pass "verify names range 119-133" ||
        fail "verify does not name range 119-133: $(cat "$WORK/out")"

# --- several targets at once ---------------------------------------------
rm -f "$WORK/t1" "$WORK/t2" "$WORK/t3"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.xz" "$WORK/t1" "$WORK/t2" "$WORK/t3"
expect "copy to three targets" 0
for t in t1 t2 t3; do expect_same "target $t" "$WORK/$t"; done

# --- psplash ----------------------------------------------------------------
# PROGRESS lines into a FIFO, as bmaptool writes them: read through a
# descriptor held open read-write here, so the FIFO always has a reader.
big=$WORK/big.img
"${GEN_FILE:?}" "$big" 48M data 5
"$BMAPSCAN" -q create -o "$WORK/big.bmap" "$big" 2>/dev/null || bmaptool create -o "$WORK/big.bmap" "$big"
mkfifo "$WORK/splash"
exec 7<>"$WORK/splash"
rm -f "$WORK/ps-out"
: >"$WORK/splash.log"
# Fed in four parts; after each of the first three, a new, higher percent
# must come before the next part is fed: at least three lines by
# construction, however fast or slow the machine.
start_fed "$BMAPSCAN" -q copy --psplash-pipe "$WORK/splash" --bmap "$WORK/big.bmap" - "$WORK/ps-out" 2>"$WORK/err"
last=0
for part in 0 1 2 3; do
        dd if="$big" bs=1M skip=$((part * 12)) count=12 status=none >&9 2>/dev/null || true
        [ $part = 3 ] && break
        got=
        while read -r -t 60 -u 7 line; do
                echo "$line" >>"$WORK/splash.log"
                p=${line#PROGRESS }
                if [[ $p =~ ^[0-9]+$ ]] && [ "$p" -gt "$last" ]; then
                        last=$p
                        got=1
                        break
                fi
        done
        [ -n "$got" ] || fail "psplash: no new PROGRESS line within 60 s after $(((part + 1) * 12)) MiB"
done
end_fed
set +e
wait $FED_PID
RC=$?
set -e
expect "copy with --psplash-pipe" 0
# The copy has ended: what it wrote is in the FIFO already.
while read -r -t 1 -u 7 line; do echo "$line" >>"$WORK/splash.log"; done
exec 7<&-
if grep -qvE '^PROGRESS [0-9]+$' "$WORK/splash.log"; then
        fail "psplash: a line is not 'PROGRESS <n>': $(grep -vE '^PROGRESS [0-9]+$' "$WORK/splash.log" | head -1)"
else
        pass "psplash: every line is 'PROGRESS <n>'"
fi
[ "$(tail -1 "$WORK/splash.log")" = "PROGRESS 100" ] && pass "psplash: ends with PROGRESS 100" ||
        fail "psplash: last line '$(tail -1 "$WORK/splash.log")'"
[ "$(wc -l <"$WORK/splash.log")" -ge 3 ] && pass "psplash: $(wc -l <"$WORK/splash.log") progress lines" ||
        fail "psplash: only $(wc -l <"$WORK/splash.log") lines"
sort -n -k2 -c "$WORK/splash.log" 2>/dev/null && pass "psplash: percentages never go back" ||
        fail "psplash: percentages go back: $(tr '\n' ' ' <"$WORK/splash.log")"
cmp -s "$big" "$WORK/ps-out" && pass "psplash: the copy is exact" || fail "psplash: the copy differs"
# Nobody reading the FIFO: no hang, no error.
rm -f "$WORK/ps-out"
run_cmd timeout 600 "$BMAPSCAN" -q copy --psplash-pipe "$WORK/splash" --bmap "$WORK/big.bmap" "$big" "$WORK/ps-out"
expect "--psplash-pipe with no reader does not block" 0
# Not a FIFO: a warning, and the file is not written to.
echo "keep" >"$WORK/not-fifo"
rm -f "$WORK/ps-out"
run_cmd "$BMAPSCAN" copy --psplash-pipe "$WORK/not-fifo" --bmap "$bmap" "$WORK/c/img.gz" "$WORK/ps-out"
expect "--psplash-pipe on a regular file warns" 0 "not a FIFO"
[ "$(cat "$WORK/not-fifo")" = keep ] && pass "psplash: a regular file is left alone" || fail "psplash: wrote into a regular file"

# --- interrupts ------------------------------------------------------------
# signal_taken PID: no thread of PID has a signal pending (or PID ended):
# its handler has run, and the flag it sets is set.
signal_taken() {
        kill -0 "$1" 2>/dev/null || return 0
        ! grep -hE '^(SigPnd|ShdPnd):' /proc/"$1"/status /proc/"$1"/task/*/status 2>/dev/null |
                grep -qvE ':[[:space:]]*0+$'
}
# A copy held mid-way (its source a pipe fed from here, a different amount
# each time) and SIGINT once the target is open; then the rest of the
# image is fed: the copy must stop at the next chunk, not finish.
mkdir "$WORK/int"
for i in 1 2 3; do
        rm -f "$WORK/int/slow-out"
        start_fed "$BMAPSCAN" -q copy --bmap "$WORK/big.bmap" - "$WORK/int/slow-out" 2>"$WORK/int.err"
        pid=$FED_PID
        dd if="$big" bs=1M count=$((i * 8)) status=none >&9 2>/dev/null || true
        wait_for_fd $pid "$WORK/int/*" >/dev/null || fail "SIGINT $i: the copy never opened its target"
        kill -INT $pid 2>/dev/null || true
        wait_until signal_taken $pid || fail "SIGINT $i: the signal was never taken"
        dd if="$big" bs=1M skip=$((i * 8)) status=none >&9 2>/dev/null || true
        end_fed
        set +e
        wait $pid
        RC=$?
        set -e
        if [ "$RC" = 1 ] && grep -q "interrupted" "$WORK/int.err"; then
                pass "SIGINT $i: exit 1, says interrupted"
        else
                fail "SIGINT $i: exit $RC, stderr: $(cat "$WORK/int.err")"
        fi
        [ -z "$(ls -A "$WORK/int")" ] && pass "SIGINT $i: no file left" || fail "SIGINT $i: left $(ls -A "$WORK/int")"
done

# --- a full disk -----------------------------------------------------------
if [ "$(id -u)" = 0 ] && mkdir -p "$WORK/small" && mount -t tmpfs -o size=256k tmpfs "$WORK/small" 2>/dev/null; then
        echo "precious" >"$WORK/small/target"
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.gz" "$WORK/small/target"
        expect "copy onto a full filesystem fails" 1 "no space"
        one_line "full disk"
        [ "$(cat "$WORK/small/target")" = precious ] && pass "full disk: the existing target is unchanged" ||
                fail "full disk: the target was changed"
        [ "$(ls "$WORK/small" | wc -l)" = 1 ] && pass "full disk: no temporary file left" ||
                fail "full disk: left $(ls "$WORK/small")"
        # Three targets, the middle one on the full filesystem: the others
        # are written in full, and the end says which is which.
        rm -f "$WORK/small/target" "$WORK/m1" "$WORK/m3"
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.gz" "$WORK/m1" "$WORK/small/target" "$WORK/m3"
        expect "three targets, one full: exit 1" 1
        grep -q "m1: OK, " "$WORK/err" && grep -q "m3: OK, " "$WORK/err" && pass "the good targets are reported OK" ||
                fail "no OK lines for the good targets: $(cat "$WORK/err")"
        grep -q "small/target: FAILED: .*no space" "$WORK/err" && pass "the full target is reported FAILED" ||
                fail "no FAILED line for the full target: $(cat "$WORK/err")"
        expect_same "three targets, one full: the first is exact" "$WORK/m1"
        expect_same "three targets, one full: the third is exact" "$WORK/m3"
        [ ! -e "$WORK/small/target" ] && [ "$(ls "$WORK/small" | wc -l)" = 0 ] &&
                pass "three targets, one full: nothing left on the full filesystem" || fail "left $(ls "$WORK/small")"
        umount "$WORK/small"
else
        echo "skip: no tmpfs mount here (not root?): the full-disk checks"
fi

# --- block devices (loop) --------------------------------------------------
loops=()
made_nodes=()
cleanup_loops() {
        for n in "${made_nodes[@]}"; do umount "$n" 2>/dev/null || true; done
        for l in "${loops[@]}"; do
                umount "$l" 2>/dev/null || true
                umount "${l}p1" 2>/dev/null || true
                losetup -d "$l" 2>/dev/null || true
        done
        for n in "${made_nodes[@]}"; do rm -f "$n"; done
        rm -rf "$WORK"
}
trap cleanup_loops EXIT
# attach FILE [losetup args]: sets DEV (never in a subshell: the list of
# devices to detach must survive).
attach() {
        DEV=$(losetup --find --show "$@" 2>/dev/null) || return 1
        loops+=("$DEV")
}
head -c $((size + 65536)) /dev/urandom >"$WORK/dev.img"
if attach "$WORK/dev.img"; then
        dev=$DEV
        name=$(basename "$dev")
        ratio_before=$(cat "/sys/block/$name/bdi/max_ratio")
        sched_before=$(cat "/sys/block/$name/queue/scheduler")
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.xz" "$dev"
        expect "copy onto a loop device" 0
        # Unmapped blocks keep the garbage: compare a mapped block, and let
        # verify below read every range back.
        cmp -s <(dd if="$dev" bs=4096 skip=120 count=14 status=none) <(dd if="$img" bs=4096 skip=120 count=14 status=none) &&
                pass "the device holds the mapped blocks" || fail "mapped blocks 120-133 differ on the device"
        [ "$(cat "/sys/block/$name/bdi/max_ratio")" = "$ratio_before" ] && pass "writeback ratio restored" ||
                fail "max_ratio now $(cat "/sys/block/$name/bdi/max_ratio"), was $ratio_before"
        [ "$(cat "/sys/block/$name/queue/scheduler")" = "$sched_before" ] && pass "scheduler restored" ||
                fail "scheduler now $(cat "/sys/block/$name/queue/scheduler"), was $sched_before"
        run_cmd "$BMAPSCAN" verify --bmap "$bmap" - "$dev"
        expect "verify reads the device back" 0

        # Too small: refused, nothing written.
        head -c $((size / 2)) /dev/urandom >"$WORK/small.img"
        if attach "$WORK/small.img"; then
                sdev=$DEV
                before=$(sha256sum <"$sdev")
                run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.gz" "$sdev"
                expect "a device smaller than the image is refused" 1 "smaller than the image"
                one_line "too small"
                [ "$(sha256sum <"$sdev")" = "$before" ] && pass "the small device is unchanged" ||
                        fail "the small device was written"
        fi

        # Mounted (the device, then a partition of it): refused, unchanged.
        # Read-only and without journal replay: a read-write ext4 writes its
        # superblock on mount, on unmount and at each journal commit.
        truncate -s 64M "$WORK/mnt.img"
        printf 'label: dos\nstart=2048, size=100000, type=83\n' | sfdisk -q "$WORK/mnt.img"
        # Without udev nobody makes the partition's node: make it from sysfs.
        mdev=
        if attach -P "$WORK/mnt.img"; then
                mdev=$DEV
                # The kernel's own scan is done before losetup returns; a
                # kernel without the DOS partition parser finds nothing, and
                # partx adds them (synchronously, through BLKPG).
                [ -e "/sys/block/${mdev#/dev/}/${mdev#/dev/}p1/dev" ] || partx -a "$mdev" 2>/dev/null || true
                if [ ! -e "${mdev}p1" ] && [ -e "/sys/block/${mdev#/dev/}/${mdev#/dev/}p1/dev" ]; then
                        IFS=: read -r ma mi <"/sys/block/${mdev#/dev/}/${mdev#/dev/}p1/dev"
                        mknod "${mdev}p1" b "$ma" "$mi" && made_nodes+=("${mdev}p1")
                fi
        fi
        if [ -n "${mdev:-}" ] && mkfs.ext4 -q "${mdev}p1" 2>/dev/null && mkdir -p "$WORK/m" &&
                mount -o ro,noload "${mdev}p1" "$WORK/m" 2>/dev/null; then
                before=$(sha256sum <"$mdev")
                run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.gz" "$mdev"
                expect "a disk with a mounted partition is refused" 1 "mounted"
                one_line "mounted partition"
                run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.gz" "${mdev}p1"
                expect "a mounted partition is refused" 1 "mounted"
                umount "$WORK/m"
                [ "$(sha256sum <"$mdev")" = "$before" ] && pass "the mounted disk is unchanged" ||
                        fail "the mounted disk was written"
        else
                echo "skip: no partitions on loop devices here (partition scanning off): the mounted-partition checks"
        fi

        # A mounted device (the whole loop device holds a filesystem).
        truncate -s 32M "$WORK/fs.img"
        mkfs.ext4 -q -F "$WORK/fs.img"
        if attach "$WORK/fs.img" && mkdir -p "$WORK/m2" && mount -o ro,noload "$DEV" "$WORK/m2" 2>/dev/null; then
                fdev=$DEV
                before=$(sha256sum <"$fdev")
                run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$WORK/c/img.gz" "$fdev"
                expect "a mounted device is refused" 1 "is mounted on"
                one_line "mounted device"
                umount "$WORK/m2"
                [ "$(sha256sum <"$fdev")" = "$before" ] && pass "the mounted device is unchanged" ||
                        fail "the mounted device was written"
        else
                echo "skip: cannot mount a loop device here"
        fi

        # O_EXCL is held during the copy: a second exclusive open fails.
        # The copy is held mid-way (fed from here) until that is checked.
        start_fed "$BMAPSCAN" -q copy --bmap "$bmap" - "$dev" 2>"$WORK/excl.err"
        pid=$FED_PID
        dd if="$img" bs=64k count=4 status=none >&9 2>/dev/null || true
        if ! wait_for_fd $pid "$dev" >/dev/null; then
                fail "O_EXCL: the copy never opened $dev: $(cat "$WORK/excl.err")"
        elif python3 -c 'import os,sys; os.open(sys.argv[1], os.O_WRONLY | os.O_EXCL)' "$dev" 2>/dev/null; then
                fail "O_EXCL: a second exclusive open succeeded during the copy"
        else
                pass "O_EXCL: held during the copy"
        fi
        dd if="$img" bs=64k skip=4 status=none >&9 2>/dev/null || true
        end_fed
        set +e
        wait $pid
        RC=$?
        set -e
        [ "$RC" = 0 ] && pass "O_EXCL: the held copy then completes" || fail "O_EXCL: copy exit $RC: $(cat "$WORK/excl.err")"

        # --discard: the unmapped blocks read back as zeros (a loop device
        # punches holes in its file); the mapped ones hold the image, the
        # bytes past the image keep their garbage.
        dsize=$(blockdev --getsize64 "$dev")
        head -c "$dsize" /dev/urandom >"$dev"
        tail_before=$(dd if="$dev" bs=1 skip=$size status=none | sha256sum)
        run_cmd "$BMAPSCAN" copy --discard --bmap "$bmap" "$WORK/c/img.zst" "$dev"
        expect "copy --discard onto a loop device" 0
        whole=$((size / 512 * 512))
        cmp -s <(head -c $whole "$dev") <(head -c $whole "$img") &&
                pass "--discard: the device holds the image, free blocks as zeros" ||
                fail "--discard: the device differs from the image: $(cmp <(head -c $whole "$dev") <(head -c $whole "$img") 2>&1 | head -1)"
        [ "$(dd if="$dev" bs=1 skip=$size status=none | sha256sum)" = "$tail_before" ] &&
                pass "--discard: nothing past the image was discarded" || fail "--discard: the bytes past the image changed"

        # SIGINT during a copy onto a device: exit 1, says so, settings back.
        truncate -s 64M "$WORK/int-dev.img"
        attach "$WORK/int-dev.img" || fail "cannot attach a second loop device"
        idev=$DEV
        iname=$(basename "$idev")
        ratio_before=$(cat "/sys/block/$iname/bdi/max_ratio")
        sched_before=$(cat "/sys/block/$iname/queue/scheduler")
        for i in 1 2; do
                start_fed "$BMAPSCAN" -q copy --nobmap - "$idev" 2>"$WORK/int.err"
                pid=$FED_PID
                dd if="$big" bs=1M count=$((i * 8)) status=none >&9 2>/dev/null || true
                wait_for_fd $pid "$idev" >/dev/null || fail "device SIGINT $i: the copy never opened $idev"
                kill -INT $pid 2>/dev/null || true
                wait_until signal_taken $pid || fail "device SIGINT $i: the signal was never taken"
                dd if="$big" bs=1M skip=$((i * 8)) status=none >&9 2>/dev/null || true
                end_fed
                set +e
                wait $pid
                RC=$?
                set -e
                [ "$RC" = 1 ] && grep -q "interrupted by SIGINT" "$WORK/int.err" &&
                        pass "device SIGINT $i: exit 1, says interrupted" ||
                        fail "device SIGINT $i: exit $RC, stderr: $(cat "$WORK/int.err")"
                grep -q "flash it again\|nothing was written" "$WORK/int.err" && pass "device SIGINT $i: says what state the device is in" ||
                        fail "device SIGINT $i: no state: $(cat "$WORK/int.err")"
                [ "$(cat "/sys/block/$iname/bdi/max_ratio")" = "$ratio_before" ] && pass "device SIGINT $i: writeback ratio restored" ||
                        fail "device SIGINT $i: max_ratio now $(cat "/sys/block/$iname/bdi/max_ratio"), was $ratio_before"
                [ "$(cat "/sys/block/$iname/queue/scheduler")" = "$sched_before" ] && pass "device SIGINT $i: scheduler restored" ||
                        fail "device SIGINT $i: scheduler now $(cat "/sys/block/$iname/queue/scheduler"), was $sched_before"
        done

        # --removable-device: a loop device is not removable.
        run_cmd "$BMAPSCAN" copy --removable-device --bmap "$bmap" "$WORK/c/img.gz" "$dev"
        expect "--removable-device refuses a fixed disk" 1 "not a removable disk"
else
        echo "skip: no loop device here: the block-device checks"
fi


# --- Several images in one archive, and --member ----------------------------
# other.img comes first, of the same size: copying the first in silence
# would flash it. (Read ahead, a local plain tar is refused at once;
# streamed, with checksums, its first range already fails them.)
M=$WORK/mem
mkdir -p "$M"
cp "$img" "$M/test.image"
cp "$D/bmaptool/test.image.bmap.v2.0" "$M/test.image.bmap"
head -c "$size" /dev/urandom >"$M/other.img"
(cd "$M" && tar cf both.tar other.img test.image test.image.bmap && gzip -c both.tar >both.tar.gz)
bm=$M/test.image.bmap
for a in both.tar both.tar.gz; do
        for v in "" --no-verify; do
                echo precious >"$WORK/keep"
                run_cmd "$BMAPSCAN" copy $v --bmap "$bm" "$M/$a" "$WORK/keep"
                if [ "$a$v" = both.tar.gz ]; then
                        expect "$a verified: the first image fails the checksums, named" 1 \
                                "$M/$a (member 'other.img'): checksum mismatch in range"
                else
                        expect "$a ${v:-verified}: two images refused" 1 \
                                "$M/$a: 2 members could be the image (other.img, test.image): pick one with --member NAME"
                fi
                one_line "$a ${v:-verified}: two images"
                [ "$(cat "$WORK/keep")" = precious ] && pass "$a ${v:-verified}: the existing target is unchanged" ||
                        fail "$a ${v:-verified}: the existing target was changed"
                ls "$WORK"/keep.bmapscan-* >/dev/null 2>&1 && fail "$a: a temporary file was left" ||
                        pass "$a ${v:-verified}: no temporary file left"
        done
done
# A local plain tar is refused before any target is opened.
rm -f "$WORK/mt"
run_cmd "$BMAPSCAN" copy --bmap "$bm" "$M/both.tar" "$WORK/mt"
expect "both.tar: refused before writing" 1 "nothing was written"
[ ! -e "$WORK/mt" ] && pass "both.tar: no target appeared" || fail "both.tar: a target appeared"
# From stdin it can only be told at the end: the copy fails then.
run_cmd sh -c 'cat "$1" | "$2" copy --no-verify --bmap "$3" - "$4"' sh "$M/both.tar" "$BMAPSCAN" "$bm" "$WORK/mt"
expect "both.tar from stdin: two images refused at the end" 1 "2 members could be the image (other.img, test.image)"
[ ! -e "$WORK/mt" ] && pass "both.tar from stdin: no target left" || fail "both.tar from stdin: a target was left"

for a in both.tar both.tar.gz; do
        rm -f "$WORK/mt"
        # No --bmap: the member's bmap is found beside the archive.
        run_cmd "$BMAPSCAN" -v copy --member test.image "$M/$a" "$WORK/mt"
        expect "$a --member test.image" 0 "$M/test.image.bmap"
        expect_same "$a --member test.image: the image" "$WORK/mt"
        run_cmd "$BMAPSCAN" verify --member test.image "$M/$a" "$WORK/mt"
        expect "verify --member test.image $a" 0
        run_cmd "$BMAPSCAN" copy --member missing.img --bmap "$bm" "$M/$a" "$WORK/mt2"
        expect "$a --member missing.img" 1 \
                "has no member 'missing.img' (its files: other.img, test.image, test.image.bmap): name one of them with --member NAME"
        one_line "$a --member missing.img"
        [ ! -e "$WORK/mt2" ] && pass "$a --member missing.img: no target" || fail "$a --member missing.img: a target appeared"
        run_cmd "$BMAPSCAN" verify --member missing.img --bmap "$bm" "$M/$a" "$WORK/mt"
        expect "verify --member missing.img $a" 1 "has no member 'missing.img'"
done
run_cmd "$BMAPSCAN" copy --member test.image --bmap "$bm" "$D/bmaptool/test.image.gz" "$WORK/mt2"
expect "--member of an image that is no archive" 1 "no tar or zip archive (it is gzip)"

# A checksum mismatch names the image and the member.
cp "$img" "$M/bad.img"
flip_byte "$M/bad.img" 4096
(cd "$M" && tar czf bad.tar.gz test.image.bmap bad.img)
run_cmd "$BMAPSCAN" copy --bmap "$bm" "$M/bad.tar.gz" "$WORK/mt2"
expect "a damaged member: the mismatch names the archive and the member" 1 \
        "$M/bad.tar.gz (member 'bad.img'): checksum mismatch in range"

# --- A decompression bomb behind a 64 MiB bmap ------------------------------
# 64 MiB of zeros compressed, the file doubled to 16 MiB or more (3.5 GiB of
# zeros): refused once the first 64 MiB are passed, the compressed offset
# named far before the end of the file.
truncate -s 64M "$M/z.img"
"$BMAPSCAN" create -o "$M/z.bmap" "$M/z.img"
head -c 64M /dev/zero | gzip -1 >"$M/bomb.gz"
while [ "$(stat -c %s "$M/bomb.gz")" -lt $((16 << 20)) ]; do
        cat "$M/bomb.gz" "$M/bomb.gz" >"$M/bomb.tmp" && mv "$M/bomb.tmp" "$M/bomb.gz"
done
bomb_size=$(stat -c %s "$M/bomb.gz")
echo precious >"$WORK/keep"
run_cmd "$BMAPSCAN" copy --bmap "$M/z.bmap" "$M/bomb.gz" "$WORK/keep"
expect "a bomb is refused" 1 "$M/bomb.gz: decodes to more than 67108864 bytes (the bmap's image size), by compressed byte "
one_line "a bomb"
at=$(sed -n 's/.*by compressed byte \([0-9]*\).*/\1/p' "$WORK/err")
[ -n "$at" ] && [ "$at" -lt $((bomb_size / 2)) ] && pass "a bomb: stopped at compressed byte $at of $bomb_size" ||
        fail "a bomb: stopped at compressed byte '${at}' of $bomb_size"
[ "$(cat "$WORK/keep")" = precious ] && pass "a bomb: the existing target is unchanged" ||
        fail "a bomb: the existing target was changed"
ls "$WORK"/keep.bmapscan-* >/dev/null 2>&1 && fail "a bomb: a temporary file was left" || pass "a bomb: no temporary file left"
run_cmd sh -c 'cat "$1" | "$2" copy --bmap "$3" - "$4"' sh "$M/bomb.gz" "$BMAPSCAN" "$M/z.bmap" "$WORK/keep"
expect "a bomb from stdin is refused" 1 "decodes to more than 67108864 bytes"
at=$(sed -n 's/.*by compressed byte \([0-9]*\).*/\1/p' "$WORK/err")
[ -n "$at" ] && [ "$at" -lt $((bomb_size / 2)) ] && pass "a bomb from stdin: stopped at compressed byte $at" ||
        fail "a bomb from stdin: stopped at compressed byte '${at}' of $bomb_size"
rm -f "$M/bomb.gz"

echo "== SIGINT while standard input has nothing to read"
# The writer of the FIFO stays open and silent: the copy must end on the
# signal alone, not when its input does.
mkdir -p "$WORK/stall"
start_fed "$BMAPSCAN" -q copy --bmap "$WORK/big.bmap" - "$WORK/stall/out" 2>"$WORK/stall.err"
dd if="$big" bs=1M count=3 status=none >&9
if wait_for_fd "$FED_PID" "$WORK/stall/*" >/dev/null || wait_for_fd "$FED_PID" "$WORK/stall" >/dev/null; then
        kill -INT "$FED_PID"
        if wait_until gone "$FED_PID"; then
                set +e; wait "$FED_PID"; rc=$?; set -e
                [ $rc = 1 ] && grep -q "interrupted by SIGINT" "$WORK/stall.err" &&
                        pass "a copy stalled on its input stops on SIGINT while the input stays open" ||
                        fail "stalled SIGINT: exit $rc, stderr: $(cat "$WORK/stall.err")"
        else
                fail "a copy stalled on its input did not stop on SIGINT while the input stayed open"
                kill -KILL "$FED_PID" 2>/dev/null || true
        fi
        [ -z "$(ls -A "$WORK/stall")" ] && pass "stalled SIGINT: nothing left in the target directory" ||
                fail "stalled SIGINT: left $(ls -A "$WORK/stall")"
else
        fail "stalled SIGINT: the copy never opened its target"
fi
end_fed

finish
