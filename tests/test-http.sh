#!/bin/bash
# copy and verify from http:// and https:// URLs, against tests/http-server.py
# on 127.0.0.1: bmaps found beside the URL, TLS with and without the CA,
# transfers that break or stall resumed with byte ranges (or refused with
# the offset when they cannot be), 404s, redirects, credentials in the URL
# and in ~/.netrc (never printed), and seeks that skip a raw image's holes.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }
command -v openssl >/dev/null || { echo "no openssl: skipped"; exit 77; }
# The servers are local: no proxy in between.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

SERVER=$(dirname "$0")/http-server.py
D=$TESTDATA
SRV=$WORK/srv
mkdir "$SRV" "$WORK/home"
export HOME=$WORK/home
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT

# start_server NAME [ARGS...]: a server on a free port, its log in
# $WORK/NAME.log; sets PORT. Polls for the port file; gives up after 60 s
# (a python start on a loaded machine), or when the server dies.
# A stalled response stays silent for 600 s: far longer than any
# --http-timeout used here, so only the client's own timer can end a stall
# (never the server closing the connection, whatever the machine's load).
start_server() {
        local name=$1
        shift
        python3 "$SERVER" --root "$SRV" --port-file "$WORK/$name.port" --log "$WORK/$name.log" --stall 600 "$@" \
                2>"$WORK/$name.stderr" &
        PIDS+=($!)
        if ! wait_until server_ready "$WORK/$name.port" $!; then
                echo "FAIL the $name server did not start: $(cat "$WORK/$name.stderr")"
                exit 1
        fi
        PORT=$(cat "$WORK/$name.port")
        : >"$WORK/$name.log"
}

# expect_same NAME EXPECTED FILE
expect_same() {
        if cmp -s "$2" "$3"; then pass "$1"; else fail "$1: $(cmp "$2" "$3" 2>&1 | head -1)"; fi
}
# requests LOG PATTERN: how many logged requests match (grep -E).
requests() {
        grep -cE -- "$2" "$1" || true
}
# sent LOG PATH: body bytes the server sent for GETs of PATH.
sent() {
        awk -v p="$2" '$1 == "GET" && $2 == p { s += $5 } END { print s + 0 }' "$1"
}
# no_leftovers NAME TARGET: no temporary file beside TARGET.
no_leftovers() {
        if ls "$2".bmapscan-* >/dev/null 2>&1; then fail "$1: a temporary file was left"; else pass "$1: no temporary file"; fi
}

# --- The images --------------------------------------------------------
small=$WORK/small.img
gzip -dc "$D/bmaptool/test.image.gz" >"$small"
cp "$D/bmaptool/test.image.gz" "$SRV/a.img.gz"
cp "$D/bmaptool/test.image.bmap.v2.0" "$SRV/a.img.bmap"
xz -0 -c "$small" >"$SRV/x.img.xz"
cp "$D/bmaptool/test.image.bmap.v2.0" "$SRV/x.img.bmap"
cp "$D/bmaptool/test.image.bmap.v2.0" "$SRV/other.bmap"
cp "$small" "$SRV/noext"

# A 64 MiB image with 24 MiB of data in three pieces and holes between them,
# raw and compressed, with its bmap.
big=$WORK/big.img
"${GEN_FILE:?}" "$WORK/piece" 8M data 7
truncate -s 64M "$big"
for at in 0 28 56; do
        dd if="$WORK/piece" of="$big" bs=1M seek=$at conv=notrunc status=none
done
"$BMAPSCAN" create -o "$SRV/big.img.bmap" "$big"
cp --sparse=always "$big" "$SRV/big.img"
gzip -1 -c "$big" >"$SRV/big.img.gz"
zstd -q -1 -c "$big" >"$SRV/big.img.zst"
cp "$SRV/big.img.bmap" "$SRV/big.bmap"

start_server http
P=$PORT
U=http://127.0.0.1:$P

# --- Plain copies, bmaps found beside the URL -----------------------------
run_cmd "$BMAPSCAN" -v copy "$U/a.img.gz" "$WORK/t1"
expect "gz over http, bmap found beside it" 0 "$U/a.img.bmap"
expect_same "gz over http: the image" "$small" "$WORK/t1"
grep -q "^HEAD /a.img.gz.bmap " "$WORK/http.log" && grep -q "^HEAD /a.img.bmap " "$WORK/http.log" &&
        pass "bmap looked for as IMAGE.bmap, then one extension stripped" || fail "bmap lookups: $(cat "$WORK/http.log")"

run_cmd "$BMAPSCAN" copy "$U/big.img.zst" "$WORK/t2"
expect "zstd over http (big.img.bmap found)" 0
expect_same "zstd over http: the image" "$big" "$WORK/t2"

run_cmd "$BMAPSCAN" copy "$U/big.img.gz" "$WORK/t3"
expect "big gz over http" 0
expect_same "big gz over http: the image" "$big" "$WORK/t3"

run_cmd "$BMAPSCAN" copy "$U/x.img.xz" "$WORK/t4"
expect "xz over http (its index read with ranges)" 0
expect_same "xz over http: the image" "$small" "$WORK/t4"

# A raw image: the holes are skipped with range requests, not downloaded.
: >"$WORK/http.log"
run_cmd "$BMAPSCAN" copy "$U/big.img" "$WORK/t5"
expect "raw image over http" 0
expect_same "raw image over http: the image" "$big" "$WORK/t5"
n=$(sent "$WORK/http.log" /big.img)
[ "$n" -lt $((40 << 20)) ] && pass "raw image: $n of $((64 << 20)) bytes sent" ||
        fail "raw image: $n bytes sent for a 64 MiB image with 24 MiB of data"
[ "$(requests "$WORK/http.log" '^GET /big.img bytes=')" -ge 1 ] && pass "raw image: holes skipped with Range requests" ||
        fail "raw image: no Range request: $(cat "$WORK/http.log")"

run_cmd "$BMAPSCAN" copy --bmap "$U/other.bmap" "$U/noext" "$WORK/t6"
expect "--bmap as a URL" 0
expect_same "--bmap as a URL: the image" "$small" "$WORK/t6"

run_cmd "$BMAPSCAN" copy --nobmap "$U/a.img.gz" "$WORK/t7"
expect "--nobmap over http" 0
expect_same "--nobmap over http: the image" "$small" "$WORK/t7"

run_cmd "$BMAPSCAN" verify "$U/a.img.gz" "$WORK/t1"
expect "verify finds the bmap beside a URL" 0

# A ?query stays at the end of each bmap name tried.
: >"$WORK/http.log"
run_cmd "$BMAPSCAN" copy "$U/a.img.gz?token=42" "$WORK/t8"
expect "URL with a query" 0
grep -q "^HEAD /a.img.bmap?token=42 " "$WORK/http.log" && pass "the query is kept after .bmap" ||
        fail "query: $(cat "$WORK/http.log")"

# Extensions are stripped from the path only, never from the host.
run_cmd "$BMAPSCAN" copy "$U/noext" "$WORK/t9"
expect "a name without an extension" 1 "(looked for $U/noext.bmap)"
# The bmap is looked for beside the URL, then (none there) inside the
# image, which is not there either.
run_cmd "$BMAPSCAN" copy "$U/" "$WORK/t9"
expect "a URL that names no file" 1 "$U/: HTTP 404: the image is not there"
run_cmd "$BMAPSCAN" copy "http://127.0.0.1:1/a.img.gz" "$WORK/t9"
expect "nothing listening" 1 "cannot connect"
one_line "nothing listening"

cp "$SRV/a.img.gz" "$SRV/alone.img.gz"
run_cmd "$BMAPSCAN" copy "$U/alone.img.gz" "$WORK/t9"
expect "no bmap beside the URL" 1 "no bmap found (looked for $U/alone.img.gz.bmap, $U/alone.img.bmap, $U/alone.bmap)"
one_line "no bmap beside the URL"
run_cmd "$BMAPSCAN" copy "$U/missing.img.gz" "$WORK/t9"
expect "no bmap beside a URL that is not there" 1 "$U/missing.img.gz: HTTP 404: the image is not there"
one_line "no bmap beside a URL that is not there"

run_cmd "$BMAPSCAN" copy --nobmap "$U/missing.img.gz" "$WORK/t9"
expect "a 404 image" 1 "$U/missing.img.gz: HTTP 404: the image is not there: check the URL"
one_line "404"
[ ! -e "$WORK/t9" ] && pass "404: no target" || fail "404: a target appeared"

run_cmd "$BMAPSCAN" copy "$U/redirect/a.img.gz" "$WORK/t10"
expect "a redirect" 0
expect_same "a redirect: the image" "$small" "$WORK/t10"

run_cmd "$BMAPSCAN" copy --nobmap "$U/redirect-file/a.img.gz" "$WORK/t10b"
expect "a redirect to file:// refused" 1 "redirects only to http:// and https://"
one_line "redirect to file://"

run_cmd "$BMAPSCAN" copy "$U/noranges/x.img.xz" "$WORK/t10c"
expect "xz from a server without ranges (no index read)" 0
expect_same "xz without ranges: the image" "$small" "$WORK/t10c"

# A server that refuses HEAD: the bmap is looked for with GET.
run_cmd "$BMAPSCAN" copy "$U/nohead/a.img.gz" "$WORK/t11"
expect "HEAD refused: GET instead" 0
expect_same "HEAD refused: the image" "$small" "$WORK/t11"

# --- Broken and stalled transfers -----------------------------------------
: >"$WORK/http.log"
run_cmd "$BMAPSCAN" copy "$U/drop-once/big.img.gz" "$WORK/t12"
expect "a transfer broken midway is resumed" 0 "resuming in 0.5 s (attempt 1 of at most 50)"
expect_same "resumed transfer: the image" "$big" "$WORK/t12"
grep -qE "^GET /drop-once/big.img.gz bytes=[1-9][0-9]*- 206 " "$WORK/http.log" && pass "resumed with a Range request" ||
        fail "no resumption in the log: $(cat "$WORK/http.log")"
grep -qE "^GET /drop-once/big.img.bmap bytes=[1-9][0-9]*- 206 " "$WORK/http.log" && pass "the bmap's download resumed too" ||
        fail "no resumption of the bmap in the log: $(cat "$WORK/http.log")"

run_cmd "$BMAPSCAN" copy --nobmap "$U/drop-once/big.img" "$WORK/t13"
expect "raw --nobmap broken midway is resumed" 0
expect_same "raw resumed: the image" "$big" "$WORK/t13"

echo precious >"$WORK/keep"
half=$(($(stat -c %s "$SRV/big.img.gz") / 2))
run_cmd "$BMAPSCAN" copy --bmap "$U/big.img.bmap" "$U/drop-noranges/big.img.gz" "$WORK/keep"
expect "a break without ranges fails" 1 "at byte $half of $(stat -c %s "$SRV/big.img.gz"), and the server cannot resume"
one_line "break without ranges"
[ "$(cat "$WORK/keep")" = precious ] && pass "break without ranges: the existing target is untouched" ||
        fail "break without ranges: the existing target changed"
no_leftovers "break without ranges" "$WORK/keep"
run_cmd "$BMAPSCAN" copy --nobmap "$U/drop-noranges/big.img" "$WORK/t14"
expect "raw --nobmap, a break without ranges fails (never a short copy)" 1 "byte $((32 << 20))"
[ ! -e "$WORK/t14" ] && pass "break without ranges: no target" || fail "break without ranges: a target was left"
no_leftovers "raw break without ranges" "$WORK/t14"

: >"$WORK/http.log"
run_cmd "$BMAPSCAN" copy --http-timeout 1 "$U/stall-once/big.img.zst" "$WORK/t15"
expect "a stalled transfer is resumed" 0
expect_same "stalled then resumed: the image" "$big" "$WORK/t15"
grep -qE "^GET /stall-once/big.img.zst bytes=[1-9][0-9]*- 206 " "$WORK/http.log" && pass "stall: resumed with a Range request" ||
        fail "stall: no resumption in the log: $(cat "$WORK/http.log")"
# The server never closes a stalled response (see start_server): the client
# noticed the silence itself, after --http-timeout, and said so.
grep -qE "stall-once/big.img.zst: no data for 1 s at byte [0-9]+.*: resuming in" "$WORK/err" &&
        pass "stall noticed after --http-timeout (the warning says 'no data for 1 s')" ||
        fail "stall: no warning of a 1 s stall: $(cat "$WORK/err")"

run_cmd "$BMAPSCAN" copy --http-timeout 1 --bmap "$U/big.img.bmap" "$U/stall-always/big.img.zst" "$WORK/t16"
expect "a transfer that stalls every time fails" 1 "no data for 1 s at byte"
grep -q "attempts to resume" "$WORK/err" && pass "stalls: gave up after bounded attempts" || fail "stalls: $(cat "$WORK/err")"
# Each attempt is announced as a warning; the failure itself is one line.
[ "$(grep -c "resuming in" "$WORK/err")" = 5 ] && pass "stalls: each of the 5 attempts announced" ||
        fail "stalls: $(grep -c "resuming in" "$WORK/err") attempts announced"
[ "$(grep -vc '^bmapscan: warning: ' "$WORK/err")" = 1 ] && pass "stalls every time: one error line" ||
        fail "stalls every time: $(cat "$WORK/err")"
[ ! -e "$WORK/t16" ] && pass "stalls: no target" || fail "stalls: a target was left"

# SIGINT during a stall: the bmap's download stops at its middle and the
# server stays silent far longer than any bound here, and --http-timeout
# is longer still, so only the signal can end the wait. copy and verify
# take it the same way: exit 1, one line saying the bmap was interrupted.
# interrupt_in_stall NAME CMD...: runs CMD, waits for the server to log
# the stalled GET, sends SIGINT and waits for the command to end.
interrupt_in_stall() {
        local name=$1 pid
        shift
        : >"$WORK/http.log"
        "$@" >"$WORK/out" 2>"$WORK/err" &
        pid=$!
        # The server logs a stalled GET after the half it sends; bmapscan
        # set its handler before asking.
        if ! wait_until grep -q "^GET /stall-always/big.img.bmap " "$WORK/http.log"; then
                fail "$name: the bmap was never asked for: $(cat "$WORK/http.log" "$WORK/err")"
                kill -9 $pid 2>/dev/null || true
                wait $pid 2>/dev/null || true
                return
        fi
        kill -INT $pid 2>/dev/null || true
        if ! wait_until gone $pid; then
                fail "$name: SIGINT did not end it: $(cat "$WORK/err")"
                kill -9 $pid 2>/dev/null || true
        fi
        set +e
        wait $pid
        RC=$?
        set -e
        expect "$name: SIGINT in a stall ends it" 1 "$U/stall-always/big.img.bmap: interrupted; nothing was written"
        one_line "$name: SIGINT in a stall"
}
interrupt_in_stall "copy" "$BMAPSCAN" copy --http-timeout 3600 --bmap "$U/stall-always/big.img.bmap" \
        "$U/big.img.zst" "$WORK/t16b"
[ ! -e "$WORK/t16b" ] && pass "copy: SIGINT in a stall: no target" || fail "copy: SIGINT in a stall: a target was left"
copy_err=$(cat "$WORK/err")
interrupt_in_stall "verify" "$BMAPSCAN" verify --http-timeout 3600 --bmap "$U/stall-always/big.img.bmap" \
        "$U/big.img.zst" "$WORK/t2"
[ "$(cat "$WORK/err")" = "$copy_err" ] && pass "verify: SIGINT in a stall says what copy says" ||
        fail "verify: SIGINT in a stall: '$(cat "$WORK/err")', copy said '$copy_err'"

# verify resumes a stalled bmap download as copy does, after its
# --http-timeout, and says so.
: >"$WORK/http.log"
# (big.bmap: big.img.bmap had its one stall in the copy above.)
run_cmd "$BMAPSCAN" verify --http-timeout 1 --bmap "$U/stall-once/big.bmap" "$U/big.img.zst" "$WORK/t2"
expect "verify: a stalled bmap download is resumed" 0
grep -qE "stall-once/big.bmap: no data for 1 s at byte [0-9]+.*: resuming in" "$WORK/err" &&
        pass "verify: the resumption is announced" || fail "verify: no warning of the stall: $(cat "$WORK/err")"

run_cmd "$BMAPSCAN" copy --http-timeout 0 "$U/a.img.gz" "$WORK/t17"
expect "--http-timeout 0 refused" 2 "--http-timeout"

# --- Credentials ----------------------------------------------------------
run_cmd "$BMAPSCAN" -v copy "http://user:secret@127.0.0.1:$P/auth/a.img.gz" "$WORK/t18"
expect "credentials in the URL" 0 "http://user:***@127.0.0.1:$P/auth/a.img.bmap"
expect_same "credentials in the URL: the image" "$small" "$WORK/t18"
grep -q secret "$WORK/out" "$WORK/err" && fail "the password was printed: $(cat "$WORK/err")" || pass "the password is not printed"

run_cmd "$BMAPSCAN" -v copy "http://user:wrong@127.0.0.1:$P/auth/a.img.gz" "$WORK/t19"
expect "a wrong password" 1 "HTTP 401"
one_line "wrong password"
grep -q wrong "$WORK/out" "$WORK/err" && fail "the wrong password was printed: $(cat "$WORK/err")" ||
        pass "the wrong password is not printed"

run_cmd "$BMAPSCAN" copy "$U/auth/a.img.gz" "$WORK/t19"
expect "no credentials" 1 "~/.netrc"
one_line "no credentials"

printf 'machine 127.0.0.1\nlogin user\npassword secret\n' >"$HOME/.netrc"
chmod 600 "$HOME/.netrc"
run_cmd "$BMAPSCAN" -v copy "$U/redirect/auth/a.img.gz" "$WORK/t20"
expect "credentials from ~/.netrc (after a redirect)" 0
expect_same "netrc: the image" "$small" "$WORK/t20"
grep -q secret "$WORK/out" "$WORK/err" && fail "netrc: the password was printed" || pass "netrc: the password is not printed"
rm "$HOME/.netrc"

# --- HTTPS ----------------------------------------------------------------
# A CA of our own and a certificate for 127.0.0.1 signed by it.
(
        cd "$WORK"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
                -days 2 -subj /CN=bmapscan-test-ca -addext basicConstraints=critical,CA:TRUE \
                -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr \
                -subj /CN=127.0.0.1 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >srv.ext
        openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 \
                -extfile srv.ext 2>/dev/null
)
start_server https --cert "$WORK/srv.crt" --key "$WORK/srv.key"
S=https://127.0.0.1:$PORT

run_cmd "$BMAPSCAN" copy --ca-file "$WORK/ca.crt" "$S/big.img.gz" "$WORK/t21"
expect "https with --ca-file" 0
expect_same "https: the image" "$big" "$WORK/t21"

run_cmd "$BMAPSCAN" copy --ca-file "$WORK/ca.crt" "$S/drop-once/big.img.zst" "$WORK/t22"
expect "https broken midway is resumed" 0
expect_same "https resumed: the image" "$big" "$WORK/t22"

run_cmd "$BMAPSCAN" copy "$S/a.img.gz" "$WORK/t23"
expect "https without the CA refused" 1 "certificate"
one_line "https without the CA"
grep -q -- "--ca-file" "$WORK/err" && pass "untrusted certificate: says to use --ca-file" || fail "no hint: $(cat "$WORK/err")"

run_cmd "$BMAPSCAN" copy --ca-file "$WORK/srv.key" "$S/a.img.gz" "$WORK/t23"
expect "--ca-file that holds no certificate" 1 "no PEM certificate"

# verify transfers as copy does: the bmap beside an https URL, with the CA.
run_cmd "$BMAPSCAN" verify --ca-file "$WORK/ca.crt" "$S/big.img.gz" "$WORK/t21"
expect "verify over https with --ca-file" 0 "all 3 ranges match $S/big.img.bmap"
run_cmd "$BMAPSCAN" verify "$S/big.img.gz" "$WORK/t21"
expect "verify over https without the CA refused" 1 "--ca-file"
one_line "verify over https without the CA"

finish
