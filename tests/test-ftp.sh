#!/bin/bash
# copy and verify from ftp:// and sftp:// URLs: against pyftpdlib
# (tests/ftp-server.py) and an OpenSSH sshd started here on a free port of
# 127.0.0.1 with its own config, host key and authorized_keys. Bmaps found
# beside the URL, a raw image's holes skipped by resuming further on, a
# broken transfer resumed (and refused when the file changed meanwhile),
# a missing file and a refused login in one line, passwords never shown;
# sftp host keys checked against ~/.ssh/known_hosts, an unknown or changed
# one refused with what to do.
. "$(dirname "$0")/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY ftp_proxy FTP_PROXY

D=$TESTDATA
SRV=$WORK/srv
mkdir -p "$SRV" "$WORK/home/.ssh"
export HOME=$WORK/home
PIDS=()
cleanup() {
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        rm -rf "$WORK"
}
trap cleanup EXIT

# expect_same NAME EXPECTED FILE
expect_same() {
        if cmp -s "$2" "$3"; then pass "$1"; else fail "$1: $(cmp "$2" "$3" 2>&1 | head -1)"; fi
}
# no_password NAME WORD: WORD is in neither stdout nor stderr of the last run.
no_password() {
        if grep -qF -- "$2" "$WORK/out" "$WORK/err"; then fail "$1: the password is shown"; else pass "$1: no password shown"; fi
}

# --- The images --------------------------------------------------------
small=$WORK/small.img
gzip -dc "$D/bmaptool/test.image.gz" >"$small"
cp "$D/bmaptool/test.image.gz" "$SRV/a.img.gz"
cp "$D/bmaptool/test.image.bmap.v2.0" "$SRV/a.img.bmap"
# 64 MiB with 24 MiB of data in three pieces and holes between them.
big=$WORK/big.img
"${GEN_FILE:?}" "$WORK/piece" 8M data 7
truncate -s 64M "$big"
for at in 0 28 56; do
        dd if="$WORK/piece" of="$big" bs=1M seek=$at conv=notrunc status=none
done
"$BMAPSCAN" create -o "$SRV/big.img.bmap" "$big"
cp --sparse=always "$big" "$SRV/big.img"
zstd -q -1 -c "$big" >"$SRV/big.img.zst"
cp "$big" "$SRV/grow.img"
cp "$big" "$SRV/same.img"
cp "$SRV/big.img.bmap" "$SRV/grow.img.bmap"

SKIPPED=0

# --- FTP -------------------------------------------------------------------
# Debian's pyftpdlib is for Debian's python3, which may not be first in PATH.
PY=
for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null && "$p" -c 'import pyftpdlib' 2>/dev/null; then PY=$p; break; fi
done

# start_ftp NAME [ARGS...]: sets PORT; the server's log is $WORK/NAME.log.
start_ftp() {
        local name=$1
        shift
        "$PY" "$(dirname "$0")/ftp-server.py" --root "$SRV" --port-file "$WORK/$name.port" --log "$WORK/$name.log" \
                --user user --password 'pa:ss@w0rd' "$@" 2>"$WORK/$name.stderr" &
        PIDS+=($!)
        if ! wait_until server_ready "$WORK/$name.port" $!; then
                echo "FAIL the $name server did not start: $(cat "$WORK/$name.stderr")"
                exit 1
        fi
        PORT=$(cat "$WORK/$name.port")
}

if [ -z "$PY" ]; then
        echo "no python3 with pyftpdlib (python3-pyftpdlib): the FTP part is skipped"
        SKIPPED=$((SKIPPED + 1))
else
        start_ftp ftp
        # The password holds ':' and '@', percent-encoded in the URL.
        U="ftp://user:pa%3Ass%40w0rd@127.0.0.1:$PORT"
        SHOWN="ftp://user:***@127.0.0.1:$PORT"

        run_cmd "$BMAPSCAN" -v copy "$U/big.img.zst" "$WORK/f1"
        expect "ftp: zstd image, its bmap found beside it" 0 "$SHOWN/big.img.bmap"
        expect_same "ftp: zstd image: the image" "$big" "$WORK/f1"
        grep -qF "no $SHOWN/big.img.bmap.asc or $SHOWN/big.img.bmap.sig" "$WORK/err" &&
                pass "ftp: a signature looked for beside the bmap" || fail "ftp: signature lookup: $(head -c 400 "$WORK/err")"
        no_password "ftp copy" "w0rd"

        run_cmd "$BMAPSCAN" verify "$U/big.img.zst" "$WORK/f1"
        expect "ftp: verify" 0
        no_password "ftp verify" "w0rd"

        # A raw image: its holes are skipped by asking again further on
        # (REST), not downloaded; the downloads sum to less than the image.
        head -c 64M /dev/urandom >"$WORK/f2"
        : >"$WORK/ftp.log"
        run_cmd "$BMAPSCAN" copy "$U/big.img" "$WORK/f2"
        expect "ftp: raw image with holes" 0
        expect_same "ftp: raw image: the image (holes zeroed over random bytes)" "$big" "$WORK/f2"
        n=$(grep -c 'RETR .*big.img' "$WORK/ftp.log" || true)
        [ "$n" -gt 1 ] && pass "ftp: raw image read in $n downloads, holes skipped" ||
                fail "ftp: raw image read in $n downloads: $(tail -5 "$WORK/ftp.log")"

        run_cmd "$BMAPSCAN" copy --nobmap "$U/nope.img" "$WORK/f3"
        expect "ftp: a missing file" 1 "$SHOWN/nope.img: the file is not there"
        one_line "ftp: a missing file"
        [ ! -e "$WORK/f3" ] && pass "ftp: a missing file: no target" || fail "ftp: a missing file left a target"

        run_cmd "$BMAPSCAN" copy "$U/a.img.gz" "$WORK/f4"
        expect "ftp: gzip image, a.img.bmap found" 0
        expect_same "ftp: gzip image" "$small" "$WORK/f4"

        run_cmd "$BMAPSCAN" copy --nobmap "ftp://user:wr0ng-pw@127.0.0.1:$PORT/a.img.gz" "$WORK/f5"
        expect "ftp: a wrong password" 1 "ftp://user:***@127.0.0.1:$PORT/a.img.gz: the server refused the login"
        one_line "ftp: a wrong password"
        no_password "ftp: a wrong password" "wr0ng-pw"

        # A download cut at 5 MiB is resumed from there (REST), the size
        # unchanged.
        start_ftp cut --break-file big.img.zst --break-at 5242880
        run_cmd "$BMAPSCAN" copy "ftp://user:pa%3Ass%40w0rd@127.0.0.1:$PORT/big.img.zst" "$WORK/f6"
        expect "ftp: a broken download is resumed" 0 "resuming"
        expect_same "ftp: resumed download: the image" "$big" "$WORK/f6"
        grep -q "cutting big.img.zst" "$WORK/cut.log" && pass "ftp: the server did cut the download" ||
                fail "ftp: the server did not cut the download"

        # The same, but the file grew meanwhile: not spliced.
        start_ftp grow --break-file grow.img --break-at 5242880 --grow
        run_cmd "$BMAPSCAN" copy --nobmap "ftp://user:pa%3Ass%40w0rd@127.0.0.1:$PORT/grow.img" "$WORK/f7"
        expect "ftp: a file changed before the resumption is refused" 1 "the file changed on the server"
        # The resumption's warning, then the error: one line.
        n=$(grep -vc "^bmapscan: warning: " "$WORK/err" || true)
        [ "$n" = 1 ] && pass "ftp: a file changed: one error line" || fail "ftp: a file changed: $(cat "$WORK/err")"

        # Replaced by another file of the same size (a rebuilt image of a
        # fixed size): its modification time (MDTM) tells, not its size.
        start_ftp same --break-file same.img --break-at 5242880 --replace
        run_cmd "$BMAPSCAN" copy --nobmap "ftp://user:pa%3Ass%40w0rd@127.0.0.1:$PORT/same.img" "$WORK/f8"
        expect "ftp: a file replaced by one of the same size is refused" 1 "has another modification time for the file: the file changed on the server"
        grep -q "cutting same.img" "$WORK/same.log" && pass "ftp: the server did replace the file" ||
                fail "ftp: the server did not replace the file"

        # ';type=' in an ftp URL makes libcurl list the directory (d) or
        # transfer text (a), other bytes than the file's; it also rode along
        # on the bmap looked for beside the image ("x.img;type=i.bmap" is
        # x.img itself). Refused in one line, nothing written.
        for t in d a i; do
                run_cmd "$BMAPSCAN" copy --nobmap "$U/big.img;type=$t" "$WORK/f9"
                expect "ftp: ;type=$t refused" 1 "type="
                one_line "ftp: ;type=$t"
                [ ! -e "$WORK/f9" ] && pass "ftp: ;type=$t: no target" || { fail "ftp: ;type=$t wrote a target"; rm -f "$WORK/f9"; }
        done
        run_cmd "$BMAPSCAN" copy "$U/big.img;type=i" "$WORK/f9"
        expect "ftp: ;type=i with the bmap looked for beside it refused" 1 "type="
        one_line "ftp: ;type=i with a bmap lookup"
fi

# --- SFTP ------------------------------------------------------------------
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
if [ ! -x "$SSHD" ] || ! command -v ssh-keygen >/dev/null || ! command -v ssh-keyscan >/dev/null; then
        echo "no sshd, ssh-keygen or ssh-keyscan (openssh-server): the SFTP part is skipped"
        SKIPPED=$((SKIPPED + 1))
else
        S=$WORK/sshd
        mkdir "$S"
        ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
        ssh-keygen -q -t ed25519 -N '' -f "$HOME/.ssh/id_ed25519"
        cp "$HOME/.ssh/id_ed25519.pub" "$S/authorized_keys"
        # sshd as root needs its privilege separation directory.
        [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
        sshd_ready() {
                grep -q "Server listening on" "$S/log" && return 0
                kill -0 "$1" 2>/dev/null || return 2
                return 1
        }
        SP=
        for try in 1 2 3; do
                port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
                cat >"$S/config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
                "$SSHD" -D -e -f "$S/config" 2>"$S/log" &
                pid=$!
                if wait_until sshd_ready $pid; then
                        PIDS+=($pid)
                        SP=$port
                        break
                fi
                kill $pid 2>/dev/null || true
                wait $pid 2>/dev/null || true
        done
        if [ -z "$SP" ]; then
                echo "sshd did not start ($(tail -c 300 "$S/log")): the SFTP part is skipped"
                SKIPPED=$((SKIPPED + 1))
        else
                SU="sftp://127.0.0.1:$SP$SRV"

                # No known_hosts yet: refused, saying how to add the key.
                run_cmd "$BMAPSCAN" copy "$SU/big.img.zst" "$WORK/s1"
                expect "sftp: an unknown host key is refused" 1 "the host key of [127.0.0.1]:$SP is not in $HOME/.ssh/known_hosts"
                grep -qF "ssh-keyscan -p $SP 127.0.0.1 >> $HOME/.ssh/known_hosts" "$WORK/err" &&
                        pass "sftp: the message says how to add the key" || fail "sftp: message: $(cat "$WORK/err")"
                one_line "sftp: an unknown host key"
                [ ! -e "$WORK/s1" ] && pass "sftp: an unknown host key: no target" || fail "sftp: a target was written"

                # As the message says.
                ssh-keyscan -p "$SP" 127.0.0.1 2>/dev/null >>"$HOME/.ssh/known_hosts"
                run_cmd "$BMAPSCAN" -v copy "$SU/big.img.zst" "$WORK/s1"
                expect "sftp: zstd image, its bmap found beside it" 0 "$SU/big.img.bmap"
                expect_same "sftp: zstd image: the image" "$big" "$WORK/s1"

                run_cmd "$BMAPSCAN" verify "$SU/big.img.zst" "$WORK/s1"
                expect "sftp: verify" 0

                head -c 64M /dev/urandom >"$WORK/s2"
                run_cmd "$BMAPSCAN" copy "$SU/big.img" "$WORK/s2"
                expect "sftp: raw image with holes (skipped by seeking)" 0
                expect_same "sftp: raw image: the image" "$big" "$WORK/s2"

                run_cmd "$BMAPSCAN" copy --nobmap "$SU/nope.img" "$WORK/s3"
                expect "sftp: a missing file" 1 "$SU/nope.img: the file is not there"
                one_line "sftp: a missing file"

                # A password in the URL is never shown (the server takes
                # keys only: the key logs in, the password stays unused).
                run_cmd "$BMAPSCAN" copy --nobmap "sftp://$(id -un):t0p-s3cret@127.0.0.1:$SP$SRV/nope.img" "$WORK/s3"
                expect "sftp: a password in the URL" 1 "sftp://$(id -un):***@127.0.0.1:$SP$SRV/nope.img"
                no_password "sftp: a password in the URL" "t0p-s3cret"

                # Another key for this host in known_hosts: refused as a
                # possible impostor.
                ssh-keygen -q -t ed25519 -N '' -f "$WORK/other_key"
                echo "[127.0.0.1]:$SP $(cut -d' ' -f1-2 "$WORK/other_key.pub")" >"$HOME/.ssh/known_hosts"
                run_cmd "$BMAPSCAN" copy "$SU/big.img.zst" "$WORK/s4"
                expect "sftp: a changed host key is refused" 1 "the host key of [127.0.0.1]:$SP differs from the one in"
                one_line "sftp: a changed host key"
        fi
fi

[ "$SKIPPED" = 2 ] && exit 77
finish
