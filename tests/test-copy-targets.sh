#!/bin/bash
# copy's targets: a missing /dev path is refused and nothing is created;
# /dev/null verifies and writes nothing; other character devices, FIFOs,
# sockets and directories are refused; the same DEST twice is refused;
# symbolic links get what they point to written; a copy killed with SIGKILL
# leaves nothing beside its target, and where the filesystem has no
# O_TMPFILE (fuse2fs) the next copy removes what the killed one left.
. "$(dirname "$0")/lib.sh"

D=$TESTDATA
bmap=$D/bmaptool/test.image.bmap.v2.0
gz=$D/bmaptool/test.image.gz
img=$WORK/test.image
gzip -dc "$gz" >"$img"

# Everything made outside $WORK, removed whatever happens.
made=()
mounts=()
loops=()
cleanup() {
        for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
        for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
        for f in "${made[@]}"; do rm -f "$f"; done
        rm -rf "$WORK"
}
trap cleanup EXIT

# expect_absent NAME PATH
expect_absent() {
        if [ -e "$2" ] || [ -L "$2" ]; then fail "$1: $2 was created"; else pass "$1: nothing created"; fi
}

# --- missing paths on /dev ----------------------------------------------------
missing=/dev/bmapscan-test-missing-$$
made+=("$missing")
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$missing"
expect "a missing /dev path is refused" 1 "$missing: no such device; nothing was written (lsblk lists the disks)"
one_line "missing /dev path"
expect_absent "missing /dev path" "$missing"
# The same from a pipe: refused before a byte of the image is read.
run_cmd "$BMAPSCAN" copy --bmap "$bmap" - "$missing" <"$gz"
expect "a missing /dev path is refused with the image on stdin" 1 "no such device"
expect_absent "missing /dev path, stdin" "$missing"
# Under a directory of /dev that does not exist either.
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "/dev/disk/by-id/bmapscan-test-$$/x"
expect "a path under a missing /dev directory is refused" 1 "no such device"
# A link that leads to a missing device (an unplugged /dev/disk/by-id/...).
ln -s "$missing" "$WORK/dangling-dev"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/dangling-dev"
expect "a link to a missing device is refused" 1 "the link leads to $missing, which does not exist"
one_line "link to a missing device"
expect_absent "link to a missing device" "$missing"
# A regular file where a device should be: refused, left as it is.
regular=/dev/bmapscan-test-regular-$$
made+=("$regular")
echo precious >"$regular"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$regular"
expect "a regular file on /dev is refused" 1 "a regular file on the /dev filesystem"
[ "$(cat "$regular")" = precious ] && pass "the regular file on /dev is unchanged" || fail "the file on /dev was written"
rm -f "$regular"
# A devtmpfs mounted somewhere else is /dev's filesystem too.
mkdir "$WORK/devmnt"
if [ "$(id -u)" = 0 ] && mount -t devtmpfs devtmpfs "$WORK/devmnt" 2>/dev/null; then
        mounts+=("$WORK/devmnt")
        made+=("/dev/bmapscan-test-devmnt-$$")
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/devmnt/bmapscan-test-devmnt-$$"
        expect "a missing path on a devtmpfs mounted elsewhere is refused" 1 "no such device"
        expect_absent "devtmpfs elsewhere" "$WORK/devmnt/bmapscan-test-devmnt-$$"
        umount "$WORK/devmnt"
else
        echo "skip: cannot mount a devtmpfs here: the devtmpfs-elsewhere check"
fi
# /dev/shm is a filesystem of its own, for files: a file may go there.
if [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d /dev)" ]; then
        shm=/dev/shm/bmapscan-test-$$
        made+=("$shm")
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$shm"
        expect "a new file in /dev/shm is written" 0
        cmp -s "$img" "$shm" && pass "the file in /dev/shm holds the image" || fail "the file in /dev/shm differs"
        rm -f "$shm"
fi

# --- /dev/null and other nodes ---------------------------------------------------
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" /dev/null
expect "/dev/null as DEST" 0 "/dev/null: OK, verified 468.0 KiB against the bmap, nothing written"
[ "$(stat -c %t:%T /dev/null)" = 1:3 ] && pass "/dev/null is still the null device" || fail "/dev/null was replaced"
# It really verifies: the padded image does not match this bmap.
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$D/blockmap/padded-bmap.img.gz" /dev/null
expect "/dev/null with the wrong image fails" 1 "checksum mismatch"
run_cmd "$BMAPSCAN" copy --verify-after --bmap "$bmap" "$gz" /dev/null
expect "/dev/null with --verify-after" 0 "/dev/null: not read back (--verify-after)"
run_cmd "$BMAPSCAN" copy --nobmap "$gz" /dev/null
expect "/dev/null with --nobmap" 0 "/dev/null: OK, read 802.5 KiB (not verified: no bmap), nothing written"
run_cmd "$BMAPSCAN" -q copy --bmap "$bmap" "$gz" /dev/null
expect "/dev/null with -q" 0
[ ! -s "$WORK/err" ] && pass "/dev/null with -q: silent" || fail "/dev/null with -q said: $(cat "$WORK/err")"
rm -f "$WORK/f1"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/f1" /dev/null
expect "a file and /dev/null" 0 "/dev/null: OK, verified 468.0 KiB against the bmap, nothing written"
cmp -s "$img" "$WORK/f1" && pass "a file and /dev/null: the file holds the image" || fail "the file beside /dev/null differs"
for dev in /dev/zero /dev/full /dev/urandom; do
        [ -c "$dev" ] || continue
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$dev"
        expect "$dev is refused" 1 "$dev: a character device, not a disk"
        one_line "$dev"
done
mkfifo "$WORK/fifo"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/fifo"
expect "a FIFO is refused" 1 "a FIFO, not a file or a disk"
one_line "FIFO"
[ -p "$WORK/fifo" ] && pass "the FIFO is still a FIFO" || fail "the FIFO was replaced"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$WORK/sock"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/sock"
expect "a socket is refused" 1 "a socket, not a file or a disk"
mkdir "$WORK/dir"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/dir"
expect "a directory is refused" 1 "a directory"
# A FIFO among good targets: refused before anything is written.
rm -f "$WORK/f1"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/f1" "$WORK/fifo"
expect "a FIFO after a good target" 1 "a FIFO"
expect_absent "a FIFO after a good target" "$WORK/f1"

# --- the same target twice ------------------------------------------------------
mkdir "$WORK/dup"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/dup/new" "$WORK/dup/../dup/new"
expect "a new file twice is refused" 2 "$WORK/dup/new and $WORK/dup/../dup/new are the same file"
one_line "a new file twice"
expect_absent "a new file twice" "$WORK/dup/new"
echo precious >"$WORK/dup/old"
ln -s old "$WORK/dup/link"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/dup/link" "$WORK/dup/other" "$WORK/dup/old"
expect "a file and a link to it are refused" 2 "$WORK/dup/link and $WORK/dup/old are the same file"
[ "$(cat "$WORK/dup/old")" = precious ] && pass "duplicate: the file is unchanged" || fail "duplicate: the file was written"
expect_absent "duplicate: the other target" "$WORK/dup/other"
ln "$WORK/dup/old" "$WORK/dup/hardlink"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/dup/old" "$WORK/dup/hardlink"
expect "two hard links to one file are refused" 2 "are the same file"
ln -s ../dup/new "$WORK/dup/newlink"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/dup/new" "$WORK/dup/newlink"
expect "a new file and a dangling link to it are refused" 2 "are the same file"

# --- symbolic links ----------------------------------------------------------
echo old >"$WORK/real"
ln -s real "$WORK/link"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/link"
expect "copy to a link to a file" 0
[ -L "$WORK/link" ] && [ "$(readlink "$WORK/link")" = real ] && pass "the link is still a link" ||
        fail "the link was replaced by a file"
cmp -s "$img" "$WORK/real" && pass "the file the link points to holds the image" || fail "the linked file differs"
mkdir "$WORK/sub"
ln -s sub/created "$WORK/dangling"
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/dangling"
expect "copy to a dangling link" 0
[ -L "$WORK/dangling" ] && cmp -s "$img" "$WORK/sub/created" && pass "the dangling link's file was created" ||
        fail "the dangling link's file was not created"

# --- SIGKILL leaves nothing behind ---------------------------------------------
# kill_mid_copy DIR DEST: a copy to DIR/DEST, fed from here, killed with
# SIGKILL once its (unnamed or temporary) file in DIR holds data.
holds_data() { [ "$(stat -L -c %b "$1" 2>/dev/null || echo 0)" -gt 0 ]; }
kill_mid_copy() {
        local dir=$1 dest=$2 fd
        start_fed "$BMAPSCAN" -q copy --nobmap - "$dir/$dest" 2>"$WORK/kill.err"
        head -c 8M /dev/urandom >&9 2>/dev/null || true
        if ! fd=$(wait_for_fd "$FED_PID" "$dir/*"); then
                fail "kill: the copy never opened a file in $dir: $(cat "$WORK/kill.err")"
        else
                wait_until holds_data "$fd" || fail "kill: nothing was written to $fd"
        fi
        kill -KILL "$FED_PID" 2>/dev/null || true
        end_fed
        wait "$FED_PID" 2>/dev/null || true
}
mkdir "$WORK/kill"
echo precious >"$WORK/kill/keep"
kill_mid_copy "$WORK/kill" keep
[ "$(ls -A "$WORK/kill")" = keep ] && pass "SIGKILL: only the target is left" || fail "SIGKILL: left $(ls -A "$WORK/kill")"
[ "$(cat "$WORK/kill/keep")" = precious ] && pass "SIGKILL: the target is unchanged" || fail "SIGKILL: the target changed"
rm "$WORK/kill/keep"
kill_mid_copy "$WORK/kill" new
[ -z "$(ls -A "$WORK/kill")" ] && pass "SIGKILL, new target: nothing is left" || fail "SIGKILL, new target: left $(ls -A "$WORK/kill")"

# --- stale temporaries, made by hand ---------------------------------------------
# Only the regular, unlocked files named TARGET.bmapscan-XXXXXX that we own
# are removed; locked ones belong to a copy that is running.
st=$WORK/stale
mkdir "$st"
echo precious >"$st/t"
for n in t.bmapscan-abc123 t.bmapscan-ZZ9zz9; do head -c 4096 /dev/urandom >"$st/$n"; done
for n in t.bmapscan-abc1234 t.bmapscan-abc12 t.bmapscan-abc_12 u.bmapscan-abc123 t.bmapscan-lckd01 t.bmapscan-other1; do
        echo keep >"$st/$n"
done
chown 12345 "$st/t.bmapscan-other1"
ln -s t "$st/t.bmapscan-link01"
mkdir "$st/t.bmapscan-dir001"
exec 8<"$st/t.bmapscan-lckd01"
flock -x 8
run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$st/t"
exec 8<&-
expect "copy over stale temporaries" 0 "removed the temporary files of an earlier copy that was killed"
for n in t.bmapscan-abc123 t.bmapscan-ZZ9zz9; do
        grep -q "$n" "$WORK/err" && pass "stale: $n is named" || fail "stale: $n not named: $(cat "$WORK/err")"
done
want="t t.bmapscan-abc12 t.bmapscan-abc1234 t.bmapscan-abc_12 t.bmapscan-dir001 t.bmapscan-link01 t.bmapscan-lckd01 t.bmapscan-other1 u.bmapscan-abc123"
got=$(cd "$st" && ls -A | sort | tr '\n' ' ' | sed 's/ $//')
want=$(echo "$want" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] && pass "stale: exactly the stale ones were removed" || fail "stale: left '$got', expected '$want'"
cmp -s "$img" "$st/t" && pass "stale: the target holds the image" || fail "stale: the target differs"

# --- a filesystem without O_TMPFILE (fuse2fs) ---------------------------------------
if command -v fuse2fs >/dev/null && [ -e /dev/fuse ]; then
        truncate -s 128M "$WORK/fuse.img"
        mkfs.ext4 -q -F "$WORK/fuse.img"
        mkdir "$WORK/fuse"
        if fuse2fs -o fakeroot "$WORK/fuse.img" "$WORK/fuse" >/dev/null 2>&1; then
                mounts+=("$WORK/fuse")
                rmdir "$WORK/fuse/lost+found" 2>/dev/null || true
                echo precious >"$WORK/fuse/keep"
                kill_mid_copy "$WORK/fuse" keep
                left=$(cd "$WORK/fuse" && ls -A | grep -v '^keep$' || true)
                [[ $left =~ ^keep\.bmapscan-[A-Za-z0-9]{6}$ ]] &&
                        pass "no O_TMPFILE: SIGKILL leaves the named temporary ($left)" ||
                        fail "no O_TMPFILE: expected one keep.bmapscan-XXXXXX, found '$left'"
                [ "$(cat "$WORK/fuse/keep")" = precious ] && pass "no O_TMPFILE: the target is unchanged" ||
                        fail "no O_TMPFILE: the target changed"
                run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/fuse/keep"
                expect "no O_TMPFILE: the next copy" 0 "removed the temporary files of an earlier copy that was killed: $left"
                [ "$(ls -A "$WORK/fuse")" = keep ] && pass "no O_TMPFILE: the stale temporary is gone" ||
                        fail "no O_TMPFILE: left $(ls -A "$WORK/fuse")"
                cmp -s "$img" "$WORK/fuse/keep" && pass "no O_TMPFILE: the target holds the image" ||
                        fail "no O_TMPFILE: the target differs"
                umount "$WORK/fuse"
        else
                echo "skip: fuse2fs cannot mount here: the no-O_TMPFILE checks"
        fi
else
        echo "skip: no fuse2fs: the no-O_TMPFILE checks"
fi

# --- block devices through links -----------------------------------------------------
size=$(stat -c %s "$img")
head -c $((size + 65536)) /dev/urandom >"$WORK/dev.img"
if dev=$(losetup --find --show "$WORK/dev.img" 2>/dev/null); then
        loops+=("$dev")
        ln -s "$dev" "$WORK/by-id"
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$WORK/by-id"
        expect "copy to a link to a device" 0
        [ -L "$WORK/by-id" ] && pass "the device link is still a link" || fail "the device link was replaced"
        cmp -s <(dd if="$dev" bs=4096 skip=120 count=14 status=none) <(dd if="$img" bs=4096 skip=120 count=14 status=none) &&
                pass "the device behind the link holds the image" || fail "the device behind the link differs"
        run_cmd "$BMAPSCAN" copy --bmap "$bmap" "$gz" "$dev" "$WORK/by-id"
        expect "a device and a link to it are refused" 2 "$dev and $WORK/by-id are the same device"
        one_line "a device twice"
else
        echo "skip: no loop device here: the device-link checks"
fi

finish
