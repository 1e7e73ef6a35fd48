#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# throttle-fuse, the benchmark's "card": a loop device over a file on its
# mount is a block device that takes what is written (the backing file and
# a read back through the device hold the same bytes), whose fsync returns
# and reaches the backing file, that bmapscan copy can flash, and that fails
# exactly the requests it is told to with EIO, once (or N times: copy
# --retries writes such a range again and the card ends up holding the
# image). Asserts what happened,
# never a rate (the rates are the benchmark's business). Skips (77) without
# the helper, /dev/fuse or a loop device; the trap detaches the loop devices
# and unmounts the FUSE mounts whatever happens.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/flash-lib.sh"

if [ -z "${THROTTLE_FUSE:-}" ] || [ ! -x "$THROTTLE_FUSE" ]; then
        echo "throttle-fuse is not built (libfuse3-dev is missing): skipping"
        exit 77
fi
[ -c /dev/fuse ] || { echo "no /dev/fuse here: skipping"; exit 77; }
need_tools losetup dd cmp
need_loop

FUSE_MOUNTS=()
# The loop devices hold files on the FUSE mounts open: let them go first,
# then unmount (udev may hold a device open for a moment after an attach,
# so the unmount is retried until it succeeds, within wait_until's bound).
throttle_cleanup() {
        local l m
        for l in ${LOOPS[@]+"${LOOPS[@]}"}; do losetup -d "$l" 2>/dev/null || true; done
        LOOPS=()
        for m in ${FUSE_MOUNTS[@]+"${FUSE_MOUNTS[@]}"}; do
                mountpoint -q "$m" || continue
                wait_until umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
        flash_cleanup
}
trap throttle_cleanup EXIT

# card_mount DIR MOUNTPOINT OPTIONS: mounts throttle-fuse (it returns once
# the mount is up) and remembers it for the trap.
card_mount() {
        mkdir -p "$2"
        "$THROTTLE_FUSE" -o "backing=$1${3:+,$3}" "$2" || return 1
        FUSE_MOUNTS+=("$2")
}
card_umount() {
        local m keep=()
        wait_until umount "$1" 2>/dev/null || return 1
        for m in "${FUSE_MOUNTS[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
        FUSE_MOUNTS=(${keep[@]+"${keep[@]}"})
}
# stat_of MOUNTPOINT FILE KEY: a counter from the mount's .stats.
stat_of() {
        awk -v f="$2" -v k="$3" '$1 == f { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$1/.stats"
}

MiB=$((1024 * 1024))

# --- refusals: one line each
run_cmd "$THROTTLE_FUSE" "$WORK/nowhere"
expect "no backing directory: refused" 2 "backing=DIR is required"
one_line "no backing directory"
mkdir -p "$WORK/empty" "$WORK/m0"
run_cmd "$THROTTLE_FUSE" -o "backing=$WORK/empty" "$WORK/m0"
expect "a backing directory with no file: refused" 1 "holds no regular file"
run_cmd "$THROTTLE_FUSE" -o "backing=$WORK/empty,write_rate=fast" "$WORK/m0"
expect "a rate that is not a number: refused" 2 "a rate is bytes per second"

# --- data through a loop device, at the benchmark's rates
mkdir -p "$WORK/back"
truncate -s 32M "$WORK/back/card.img"
"$GEN_FILE" "$WORK/back/other.img" 1M data 5
card_mount "$WORK/back" "$WORK/mnt" "write_rate=20M,read_rate=60M" || { fail "mount throttle-fuse"; finish; exit 1; }
if ls -A "$WORK/mnt" | sort | tr '\n' ' ' | grep -qx '.stats card.img other.img '; then
        pass "the mount shows the backing files and .stats"
else
        fail "the mount shows: $(ls -A "$WORK/mnt" | tr '\n' ' ')"
fi
if [ "$(stat -c %s "$WORK/mnt/card.img")" = $((32 * MiB)) ]; then
        pass "a card's size is its backing file's"
else
        fail "card.img through the mount is $(stat -c %s "$WORK/mnt/card.img") bytes, not $((32 * MiB))"
fi
attach "$WORK/mnt/card.img" || { fail "attach a loop device over the FUSE file"; finish; exit 1; }
LOOP=$ATTACHED

"$GEN_FILE" "$WORK/data" 8M data 11
fsyncs0=$(stat_of "$WORK/mnt" card.img fsyncs)
run_cmd dd if="$WORK/data" of="$LOOP" bs=1M seek=3 oflag=direct conv=fsync,notrunc status=none
expect "dd of 8 MiB with O_DIRECT and fsync onto the throttled loop device" 0
fsyncs1=$(stat_of "$WORK/mnt" card.img fsyncs)
if [ "$fsyncs1" -gt "$fsyncs0" ]; then
        pass "the device's fsync reached the card ($fsyncs0 -> $fsyncs1 fsyncs)"
else
        fail "fsync of $LOOP did not reach throttle-fuse (fsyncs $fsyncs0 -> $fsyncs1)"
fi
written=$(stat_of "$WORK/mnt" card.img written)
if [ "$written" -ge $((8 * MiB)) ]; then
        pass "the card counted the write ($written bytes)"
else
        fail "the card counted $written bytes written, expected at least $((8 * MiB))"
fi
# The backing file itself (not through the mount) holds the bytes.
if cmp -s -n $((8 * MiB)) -i $((3 * MiB)):0 "$WORK/back/card.img" "$WORK/data"; then
        pass "the backing file holds the bytes written"
else
        fail "the backing file differs from what was written at 3 MiB: $(cmp -n $((8 * MiB)) -i $((3 * MiB)):0 "$WORK/back/card.img" "$WORK/data" 2>&1)"
fi
if cmp -s -n $((3 * MiB)) "$WORK/back/card.img" /dev/zero; then
        pass "the bytes before the write are still zeros"
else
        fail "the backing file changed before 3 MiB"
fi
read0=$(stat_of "$WORK/mnt" card.img read)
dd if="$LOOP" of="$WORK/readback" bs=1M skip=3 count=8 iflag=direct status=none
if cmp -s "$WORK/readback" "$WORK/data"; then
        pass "an O_DIRECT read through the loop device returns the bytes"
else
        fail "the read back through $LOOP differs: $(cmp "$WORK/readback" "$WORK/data" 2>&1)"
fi
read1=$(stat_of "$WORK/mnt" card.img read)
if [ $((read1 - read0)) -ge $((8 * MiB)) ]; then
        pass "the read went through the card ($((read1 - read0)) bytes)"
else
        fail "the card counted $((read1 - read0)) bytes read, expected at least $((8 * MiB))"
fi

# bmapscan copy onto the card: the mapped bytes land, the rest is untouched.
"$GEN_FILE" "$WORK/image.img" 24M random 21 maxpiece=2M
"$BMAPSCAN" create -o "$WORK/image.bmap" "$WORK/image.img"
dd if=/dev/zero of="$LOOP" bs=1M count=32 oflag=direct conv=fsync status=none
run_cmd "$BMAPSCAN" copy --bmap "$WORK/image.bmap" "$WORK/image.img" "$LOOP"
expect "bmapscan copy onto the throttled loop device" 0
if cmp -s -n $((24 * MiB)) "$WORK/back/card.img" "$WORK/image.img"; then
        pass "the card holds the image after bmapscan copy"
else
        fail "the card differs from the image: $(cmp -n $((24 * MiB)) "$WORK/back/card.img" "$WORK/image.img" 2>&1)"
fi
detach "$LOOP"
if card_umount "$WORK/mnt"; then
        pass "unmounted once the loop device let go"
else
        fail "cannot unmount $WORK/mnt"
fi
if mountpoint -q "$WORK/mnt"; then fail "$WORK/mnt is still a mount point"; else pass "the mount is gone"; fi

# --- fault injection: the request holding the offset fails once with EIO.
# The offsets are mid-device, away from what udev's probe of a new loop
# device reads (its first and last blocks).
mkdir -p "$WORK/back2"
truncate -s 32M "$WORK/back2/card.img"
card_mount "$WORK/back2" "$WORK/mnt2" "write_rate=0,read_rate=0,fail_write=$((12 * MiB + 4096)),fail_read=$((20 * MiB))" ||
        { fail "mount throttle-fuse with faults"; finish; exit 1; }
attach "$WORK/mnt2/card.img" || { fail "attach a loop device over the faulty FUSE file"; finish; exit 1; }
LOOP=$ATTACHED
"$GEN_FILE" "$WORK/mib" 1M data 31
run_cmd dd if="$WORK/mib" of="$LOOP" bs=1M seek=12 oflag=direct status=none
expect "the first write over the faulty offset fails" 1 "Input/output error"
run_cmd dd if="$WORK/mib" of="$LOOP" bs=1M seek=12 oflag=direct conv=fsync status=none
expect "the second write over it succeeds" 0
if cmp -s -n "$MiB" -i $((12 * MiB)):0 "$WORK/back2/card.img" "$WORK/mib"; then
        pass "the retried write landed"
else
        fail "the backing file does not hold the retried write"
fi
run_cmd dd if="$LOOP" of=/dev/null bs=1M skip=20 count=1 iflag=direct status=none
expect "the first read over the faulty offset fails" 1 "Input/output error"
run_cmd dd if="$LOOP" of=/dev/null bs=1M skip=20 count=1 iflag=direct status=none
expect "the second read over it succeeds" 0
run_cmd dd if="$LOOP" of=/dev/null bs=1M skip=12 count=1 iflag=direct status=none
expect "a read elsewhere succeeds" 0
injected=$(stat_of "$WORK/mnt2" card.img injected)
if [ "$injected" = 2 ]; then
        pass "exactly two faults were injected"
else
        fail "$injected faults were injected, expected 2 (one write, one read)"
fi
detach "$LOOP"
card_umount "$WORK/mnt2" || fail "cannot unmount $WORK/mnt2"

# --- bmapscan copy --retries onto a card that fails writes: the write error
# of copy's O_DIRECT pwrite to the loop device is the card's EIO, at once,
# and is written again without --verify-after. fail_count=3: the first copy
# (--retries 1) meets two faults and fails naming the range; the second meets
# the last one, retries once and the card then holds the image.
mkdir -p "$WORK/back3"
truncate -s 16M "$WORK/back3/card.img"
# The image: 16 MiB, data from 4 MiB to 10 MiB (one range, blocks 1024-2559).
truncate -s 16M "$WORK/r.img"
"$GEN_FILE" "$WORK/r-data" 6M data 41
dd if="$WORK/r-data" of="$WORK/r.img" bs=1M seek=4 conv=notrunc status=none
"$BMAPSCAN" create -o "$WORK/r.bmap" "$WORK/r.img"
card_mount "$WORK/back3" "$WORK/mnt3" "write_rate=0,read_rate=0,fail_write=$((6 * MiB + 4096)),fail_count=3" ||
        { fail "mount throttle-fuse with three write faults"; finish; exit 1; }
attach "$WORK/mnt3/card.img" || { fail "attach a loop device over the failing card"; finish; exit 1; }
LOOP=$ATTACHED
run_cmd "$BMAPSCAN" copy --retries 1 --bmap "$WORK/r.bmap" "$WORK/r.img" "$LOOP"
expect "copy --retries 1: a card that fails a write twice" 1 "still after 1 retries"
grep -qF "range 1024-2559 (bytes 4194304-10485759)" "$WORK/err" && pass "the failing range is named" \
        || fail "the failing range is not named: $(head -c 400 "$WORK/err")"
run_cmd "$BMAPSCAN" copy --retries 1 --bmap "$WORK/r.bmap" "$WORK/r.img" "$LOOP"
expect "copy --retries 1: a card that fails a write once" 0 "writing it again, attempt 1 of 1"
if cmp -s "$WORK/back3/card.img" "$WORK/r.img"; then
        pass "after the retry the card holds the image"
else
        fail "the card differs from the image: $(cmp "$WORK/back3/card.img" "$WORK/r.img" 2>&1)"
fi
injected=$(stat_of "$WORK/mnt3" card.img injected)
if [ "$injected" = 3 ]; then
        pass "the card failed three writes"
else
        fail "$injected faults were injected, expected 3"
fi
detach "$LOOP"
card_umount "$WORK/mnt3" || fail "cannot unmount $WORK/mnt3"

finish
