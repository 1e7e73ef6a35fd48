#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Signed bmaps: keys made at test time (A and S in the default keyring, S
# signing with a subkey; B in a home of its own; C only in a keyring file),
# bmaptool's test image and bmap signed clearsigned, detached armored and
# detached binary. Good signatures are accepted; every refusal (bad, unknown
# key, wrong fingerprint, wrong keyring, no signature when one is asked for,
# corrupt signature) exits 1 with one line naming the bmap, before any
# target is opened: an existing target is unchanged and a new one is not
# created. Also verify and info with signed bmaps, --keyring leaving no
# temporary home and no agent behind, and bmaptool where it can verify.
. "$(dirname "$0")/lib.sh"

if ! command -v gpg >/dev/null || ! command -v gpgconf >/dev/null; then
        echo "test-sig: gpg is needed to make signed bmaps" >&2
        exit 77
fi

D=$TESTDATA/bmaptool
img=$D/test.image.gz
gzip -dc "$img" >"$WORK/test.image"

# Three GnuPG homes with short paths (socket paths are limited): G is the
# default keyring of every bmapscan run; B and C sign with keys G lacks.
G=$(mktemp -d /tmp/gpgt.XXXXXX)
HB=$(mktemp -d /tmp/gpgt.XXXXXX)
HC=$(mktemp -d /tmp/gpgt.XXXXXX)
cleanup() {
        local h
        for h in "$G" "$HB" "$HC"; do
                gpgconf --homedir "$h" --kill all 2>/dev/null || true
                rm -rf "$h"
        done
        rm -rf "$WORK"
}
trap cleanup EXIT
export GNUPGHOME=$G

gen_key() { # HOME UID [USAGE]
        GNUPGHOME=$1 gpg --batch --quiet --passphrase '' --quick-gen-key "$2" ed25519 "${3:-sign}" never 2>/dev/null
}
fpr_of() { # HOME UID: the primary key's fingerprint
        GNUPGHOME=$1 gpg --with-colons --fingerprint "$2" | awk -F: '/^fpr/ { print $10; exit }'
}
gen_key "$G" 'Test A <a@example.org>'
gen_key "$HB" 'Test B <b@example.org>'
gen_key "$HC" 'Test C <c@example.org>'
FPR_A=$(fpr_of "$G" a@example.org)
FPR_B=$(fpr_of "$HB" b@example.org)
FPR_C=$(fpr_of "$HC" c@example.org)
# S: a certification-only primary key that signs with its subkey.
gen_key "$G" 'Test S <s@example.org>' cert
FPR_S=$(fpr_of "$G" s@example.org)
gpg --batch --quiet --passphrase '' --quick-add-key "$FPR_S" ed25519 sign never 2>/dev/null
FPR_S_SUB=$(gpg --with-colons --fingerprint --fingerprint s@example.org | awk -F: '/^sub/ { s = 1 } s && /^fpr/ { print $10; exit }')
GNUPGHOME=$HC gpg --export "$FPR_C" >"$WORK/c.gpg"
GNUPGHOME=$HC gpg --export --armor "$FPR_C" >"$WORK/c.asc"
cp "$HC/pubring.kbx" "$WORK/c.kbx"
gpg --export "$FPR_A" >"$WORK/a.gpg"
for f in "$FPR_A" "$FPR_B" "$FPR_C" "$FPR_S" "$FPR_S_SUB"; do
        if [ ${#f} != 40 ]; then
                echo "test-sig: could not make the test keys (fingerprint '$f')" >&2
                exit 1
        fi
done
[ "$FPR_S" != "$FPR_S_SUB" ] || { echo "test-sig: key S has no signing subkey" >&2; exit 1; }
KEYID_B=${FPR_B: -16}
KEYID_A=${FPR_A: -16}
KEYID_C=${FPR_C: -16}

# sign HOME KEY MODE IN OUT: clearsign, armor (detached .asc) or binary.
sign() {
        local h=$1 key=$2 mode=$3 in=$4 out=$5
        case $mode in
        clear) GNUPGHOME=$h gpg --batch --yes -u "$key" --clearsign -o "$out" "$in" ;;
        armor) GNUPGHOME=$h gpg --batch --yes -u "$key" --armor --detach-sign -o "$out" "$in" ;;
        binary) GNUPGHOME=$h gpg --batch --yes -u "$key" --detach-sign -o "$out" "$in" ;;
        esac 2>/dev/null
}

plain=$WORK/plain.bmap
cp "$D/test.image.bmap.v2.0" "$plain"
# A copy of a plain bmap in a directory of its own: NAME.bmap, no signature.
fresh_bmap() {
        mkdir -p "$WORK/$1"
        cp "$plain" "$WORK/$1/$1.bmap"
        echo "$WORK/$1/$1.bmap"
}

expect_same() {
        if cmp -s "$WORK/test.image" "$2"; then pass "$1"; else fail "$1: $(cmp "$WORK/test.image" "$2" 2>&1 | head -1)"; fi
}

# copy_ok NAME STDERR-TEXT ARGS...: the copy succeeds and reproduces the image.
copy_ok() {
        local name=$1 text=$2
        shift 2
        rm -f "$WORK/tgt"
        run_cmd "$BMAPSCAN" copy "$@" "$img" "$WORK/tgt"
        expect "$name" 0 "$text"
        expect_same "$name: the target holds the image" "$WORK/tgt"
}

# copy_refused NAME STDERR-TEXT ARGS...: exit 1, one line on stderr holding
# the text, an existing target unchanged and a second one not created.
copy_refused() {
        local name=$1 text=$2
        shift 2
        rm -rf "$WORK/dst"
        mkdir "$WORK/dst"
        echo precious >"$WORK/dst/old"
        run_cmd "$BMAPSCAN" copy "$@" "$img" "$WORK/dst/old" "$WORK/dst/new"
        expect "$name" 1 "$text"
        one_line "$name"
        if [ "$(cat "$WORK/dst/old")" = precious ] && [ "$(ls -A "$WORK/dst")" = old ]; then
                pass "$name: targets untouched"
        else
                fail "$name: the targets were touched: $(ls -A "$WORK/dst" | tr '\n' ' ')"
        fi
}

# --- Good signatures ----------------------------------------------------------
sign "$G" "$FPR_A" clear "$plain" "$WORK/clear-a.bmap"
copy_ok "clearsigned by A" "good signature by Test A <a@example.org> (fingerprint $FPR_A)" --bmap "$WORK/clear-a.bmap"

b=$(fresh_bmap det-asc)
sign "$G" "$FPR_A" armor "$b" "$b.asc"
copy_ok "detached armored .asc beside the bmap" "good signature in $b.asc by Test A" --bmap "$b"

b=$(fresh_bmap det-sig)
sign "$G" "$FPR_A" binary "$b" "$b.sig"
copy_ok "detached binary .sig beside the bmap" "good signature in $b.sig by Test A" --bmap "$b"

# Found beside a bmap that was itself found beside the image.
mkdir "$WORK/found"
cp "$img" "$WORK/found/disk.img.gz"
cp "$plain" "$WORK/found/disk.img.bmap"
sign "$G" "$FPR_A" binary "$WORK/found/disk.img.bmap" "$WORK/found/disk.img.bmap.sig"
rm -f "$WORK/tgt"
run_cmd "$BMAPSCAN" copy "$WORK/found/disk.img.gz" "$WORK/tgt"
expect "signature of a discovered bmap" 0 "good signature in $WORK/found/disk.img.bmap.sig"

# .asc before .sig, as bmaptool looks: a broken .sig beside a good .asc is not read.
b=$(fresh_bmap both)
sign "$G" "$FPR_A" armor "$b" "$b.asc"
echo garbage >"$b.sig"
copy_ok ".asc is taken before .sig" "good signature in $b.asc" --bmap "$b"

b=$(fresh_bmap explicit)
sign "$G" "$FPR_A" binary "$b" "$WORK/elsewhere.signature"
echo garbage >"$b.asc" # --bmap-sig wins over what is beside the bmap
copy_ok "--bmap-sig names the signature" "good signature in $WORK/elsewhere.signature" --bmap "$b" \
        --bmap-sig "$WORK/elsewhere.signature"
copy_refused "--bmap-sig naming a missing file" "cannot read the bmap signature '$WORK/missing.asc'" \
        --bmap "$b" --bmap-sig "$WORK/missing.asc"

# A signing subkey: --fingerprint may name it or its primary key.
sign "$G" s@example.org clear "$plain" "$WORK/clear-s.bmap"
copy_ok "clearsigned by a subkey" "fingerprint $FPR_S)" --bmap "$WORK/clear-s.bmap"
copy_ok "--fingerprint naming the primary key of the signing subkey" "good signature" \
        --bmap "$WORK/clear-s.bmap" --fingerprint "$FPR_S"
copy_ok "--fingerprint naming the signing subkey" "good signature" --bmap "$WORK/clear-s.bmap" \
        --fingerprint "$FPR_S_SUB"

# --fingerprint: case and spaces do not matter.
spaced=$(echo "$FPR_A" | tr 'A-F' 'a-f' | sed 's/..../& /g')
copy_ok "--fingerprint matching" "good signature" --bmap "$WORK/clear-a.bmap" --fingerprint "$FPR_A"
copy_ok "--fingerprint in lower case with spaces" "good signature" --bmap "$WORK/clear-a.bmap" --fingerprint "$spaced"
copy_ok "--fingerprint with a detached signature" "good signature" --bmap "$WORK/det-sig/det-sig.bmap" \
        --fingerprint "$FPR_A"

# --- Refusals -----------------------------------------------------------------
sign "$HB" "$FPR_B" clear "$plain" "$WORK/clear-b.bmap"
copy_refused "clearsigned by B, not in the keyring" "$KEYID_B" --bmap "$WORK/clear-b.bmap"
expect "clearsigned by B: says how to fix it" 1 "import the signer's public key"
expect "clearsigned by B: names the bmap" 1 "$WORK/clear-b.bmap:"
b=$(fresh_bmap det-b)
sign "$HB" "$FPR_B" armor "$b" "$b.asc"
copy_refused "detached signature by B" "$KEYID_B, which is not in GnuPG's default keyring" --bmap "$b"
expect "detached signature by B: names the signature" 1 "$b.asc"

# Changed after signing: one range moved, with the file checksum made right
# again, so that only the signature can tell.
fix_file_checksum() { # FILE
        local old zeros new
        old=$(sed -n 's/.*<BmapFileChecksum> *\([0-9a-f]*\) *<.*/\1/p' "$1")
        zeros=$(printf '%*s' ${#old} '' | tr ' ' 0)
        sed -i "s/$old/$zeros/" "$1"
        new=$(sha256sum "$1" | cut -d' ' -f1)
        sed -i "s/$zeros/$new/" "$1"
}
sed '/^-----BEGIN PGP SIGNATURE/,$!s/> 3-5 </> 3-4 </' "$WORK/clear-a.bmap" >"$WORK/changed.bmap"
cmp -s "$WORK/clear-a.bmap" "$WORK/changed.bmap" && fail "the test could not change the signed bmap"
copy_refused "clearsigned, changed after signing" "is BAD" --bmap "$WORK/changed.bmap"
b=$(fresh_bmap det-changed)
sign "$G" "$FPR_A" binary "$b" "$b.sig"
# A comment changed and the file checksum made right again: a valid bmap
# that only the signature can tell from the one signed.
sed -i 's/a list of useful (mapped) block numbers/a list of other block numbers/' "$b"
fix_file_checksum "$b"
cmp -s "$plain" "$b" && fail "the test could not change the detached-signed bmap"
copy_refused "detached, bmap changed after signing" "the signature in '$b.sig' is BAD" --bmap "$b"
copy_ok "the changed bmap itself is valid (only the signature refuses it)" "" --bmap "$b" --no-sig-verify

copy_refused "--fingerprint not matching" "not by the key --fingerprint names ($FPR_B)" \
        --bmap "$WORK/clear-a.bmap" --fingerprint "$FPR_B"
copy_refused "--fingerprint not matching a detached signature" "by Test A <a@example.org> (fingerprint $FPR_A)" \
        --bmap "$WORK/det-asc/det-asc.bmap" --fingerprint "$FPR_S"

# Expired key, expired signature, revoked key: made in the past with gpg's
# faked clock, or revoked with the certificate gpg stores at generation.
GNUPGHOME=$G gpg --batch --quiet --passphrase '' --faked-system-time 20200101T000000 \
        --quick-gen-key 'Test E <e@example.org>' ed25519 sign 1d 2>/dev/null
GNUPGHOME=$G gpg --batch --yes --faked-system-time 20200101T010000 -u e@example.org --clearsign \
        -o "$WORK/clear-expired-key.bmap" "$plain" 2>/dev/null
copy_refused "signed by an expired key" "which has expired" --bmap "$WORK/clear-expired-key.bmap"
GNUPGHOME=$G gpg --batch --quiet --passphrase '' --faked-system-time 20200101T000000 \
        --quick-gen-key 'Test F <f@example.org>' ed25519 sign never 2>/dev/null
GNUPGHOME=$G gpg --batch --yes --faked-system-time 20200101T010000 --default-sig-expire 1d -u f@example.org \
        --clearsign -o "$WORK/clear-expired-sig.bmap" "$plain" 2>/dev/null
copy_refused "an expired signature" "its clearsigned signature has expired" --bmap "$WORK/clear-expired-sig.bmap"
gen_key "$G" 'Test R <r@example.org>'
FPR_R=$(fpr_of "$G" r@example.org)
b=$(fresh_bmap det-revoked)
sign "$G" "$FPR_R" armor "$b" "$b.asc"
copy_ok "signed by R before its revocation" "good signature" --bmap "$b"
sed 's/^://' "$G/openpgp-revocs.d/$FPR_R.rev" | gpg --batch --quiet --import 2>/dev/null
copy_refused "signed by a revoked key" "$FPR_R, which has been revoked" --bmap "$b"

# --keyring: only the keys of that file count.
sign "$HC" "$FPR_C" clear "$plain" "$WORK/clear-c.bmap"
before=$(ls -d /tmp/bmapscan-gpg-* 2>/dev/null | sort || true)
copy_ok "--keyring with key C (exported, binary)" "good signature by Test C" --bmap "$WORK/clear-c.bmap" \
        --keyring "$WORK/c.gpg"
copy_ok "--keyring with key C (exported, armored)" "good signature by Test C" --bmap "$WORK/clear-c.bmap" \
        --keyring "$WORK/c.asc"
copy_ok "--keyring with key C (a keybox)" "good signature by Test C" --bmap "$WORK/clear-c.bmap" \
        --keyring "$WORK/c.kbx"
copy_ok "--keyring and --fingerprint" "good signature by Test C" --bmap "$WORK/clear-c.bmap" \
        --keyring "$WORK/c.gpg" --fingerprint "$FPR_C"
copy_refused "key C is not in the default keyring" "$KEYID_C" --bmap "$WORK/clear-c.bmap"
copy_refused "signed by A, --keyring with C only" "$KEYID_A, which is not in the keyring '$WORK/c.gpg'" \
        --bmap "$WORK/clear-a.bmap" --keyring "$WORK/c.gpg"
copy_refused "signed by A, a keybox with C only" "not in the keyring '$WORK/c.kbx'" \
        --bmap "$WORK/clear-a.bmap" --keyring "$WORK/c.kbx"
b=$(fresh_bmap det-c)
sign "$HC" "$FPR_C" binary "$b" "$b.sig"
copy_ok "--keyring with a detached signature" "good signature in $b.sig by Test C" --bmap "$b" --keyring "$WORK/c.gpg"
copy_refused "detached by C, --keyring with A only" "not in the keyring '$WORK/a.gpg'" --bmap "$b" \
        --keyring "$WORK/a.gpg"
: >"$WORK/empty.gpg"
copy_refused "an empty keyring" "holds no OpenPGP public key" --bmap "$WORK/clear-c.bmap" --keyring "$WORK/empty.gpg"
copy_refused "a missing keyring" "cannot read keyring '$WORK/nokeyring.gpg'" --bmap "$WORK/clear-c.bmap" \
        --keyring "$WORK/nokeyring.gpg"
run_cmd "$BMAPSCAN" copy --bmap "$WORK/clear-c.bmap" --keyring "http://127.0.0.1:1/keys.gpg" "$img" "$WORK/tgt-url"
expect "a keyring URL is refused: the trusted keys must be local" 2 "must be a local file, not a URL"
[ ! -e "$WORK/tgt-url" ] && pass "a keyring URL: nothing written" || fail "a keyring URL: a target was written"
after=$(ls -d /tmp/bmapscan-gpg-* 2>/dev/null | sort || true)
if [ "$before" = "$after" ]; then pass "--keyring leaves no temporary GnuPG home"; else fail "temporary homes left: $after"; fi
if ps -eo args | grep -v grep | grep -q 'bmapscan-gpg-'; then
        fail "a process for a temporary GnuPG home is still running: $(ps -eo pid,args | grep 'bmapscan-gpg-' | grep -v grep)"
else
        pass "--keyring leaves no gpg-agent or dirmngr running"
fi

# No signature at all: fine, unless a signature is asked for.
b=$(fresh_bmap unsigned)
run_cmd "$BMAPSCAN" -v copy --bmap "$b" "$img" "$WORK/tgt"
expect "an unsigned bmap is used (as bmaptool does)" 0 "not signed"
copy_refused "no signature, with --fingerprint" "no signature found" --bmap "$b" --fingerprint "$FPR_A"
expect "no signature, with --fingerprint: says what to do" 1 "get the signature, or name it with --bmap-sig"
copy_refused "no signature, with --keyring" "but --keyring expects one" --bmap "$b" --keyring "$WORK/a.gpg"

# Corrupt signatures.
b=$(fresh_bmap corrupt)
echo "this is not a signature" >"$b.asc"
copy_refused "a text .asc that is no signature" "the signature in '$b.asc' is not a valid OpenPGP signature" --bmap "$b"
rm "$b.asc"
: >"$b.sig"
copy_refused "an empty .sig" "is not a valid OpenPGP signature" --bmap "$b"
sign "$G" "$FPR_A" binary "$b" "$WORK/full.sig"
head -c 40 "$WORK/full.sig" >"$b.sig"
copy_refused "a truncated .sig" "$b.sig" --bmap "$b"
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[-8] ^= 0xff; open(sys.argv[2], "wb").write(d)' \
        "$WORK/full.sig" "$b.sig"
copy_refused "a .sig with a flipped byte" "$b.sig" --bmap "$b"
# A signed message (not a detached signature) vouches for nothing else.
echo "some other text" >"$WORK/other.txt"
GNUPGHOME=$G gpg --batch --yes -u "$FPR_A" --sign -o "$b.sig" "$WORK/other.txt" 2>/dev/null
copy_refused "a signed message given as .sig" "holds no detached OpenPGP signature" --bmap "$b"
GNUPGHOME=$G gpg --batch --yes -u "$FPR_A" --sign -o "$b.sig" "$b" 2>/dev/null
copy_refused "the bmap signed as a message, given as .sig" "holds no detached OpenPGP signature" --bmap "$b"
rm "$b.sig"
sign "$G" "$FPR_A" clear "$WORK/other.txt" "$b.asc"
copy_refused "a clearsigned other text given as .asc" "holds no detached OpenPGP signature" --bmap "$b"
# A clearsigned bmap whose signature block is damaged.
python3 - "$WORK/clear-a.bmap" "$WORK/clear-damaged.bmap" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = lines.index("-----BEGIN PGP SIGNATURE-----") + 2  # past the blank line
c = lines[i][30]
lines[i] = lines[i][:30] + ("A" if c != "A" else "B") + lines[i][31:]
open(sys.argv[2], "w").write("\n".join(lines))
EOF
cmp -s "$WORK/clear-a.bmap" "$WORK/clear-damaged.bmap" && fail "the test could not damage the signature"
copy_refused "a clearsigned bmap with a damaged signature" "$WORK/clear-damaged.bmap: " --bmap "$WORK/clear-damaged.bmap"
# A clearsigned bmap cut before its signature.
sed '/^-----BEGIN PGP SIGNATURE/,$d' "$WORK/clear-a.bmap" >"$WORK/clear-cut.bmap"
copy_refused "a clearsigned bmap without its signature" "$WORK/clear-cut.bmap: " --bmap "$WORK/clear-cut.bmap"
run_cmd "$BMAPSCAN" copy --no-sig-verify --bmap "$WORK/clear-cut.bmap" "$img" "$WORK/tgt"
expect "cut before its signature: refused even with --no-sig-verify" 1 "not a complete clearsigned message"

# --- --no-sig-verify ----------------------------------------------------------------
copy_ok "--no-sig-verify: clearsigned by an unknown key" "not verified" --bmap "$WORK/clear-b.bmap" --no-sig-verify
copy_ok "--no-sig-verify: damaged clearsigned signature" "not verified" --bmap "$WORK/clear-damaged.bmap" \
        --no-sig-verify
run_cmd "$BMAPSCAN" copy --no-sig-verify --bmap "$WORK/clear-b.bmap" "$img" "$WORK/tgt"
expect "--no-sig-verify: one warning line" 0 "warning: $WORK/clear-b.bmap: clearsigned, but the signature was not verified"
one_line "--no-sig-verify"
copy_ok "--no-sig-verify: a bad detached signature is not read" "" --bmap "$WORK/det-changed/det-changed.bmap" \
        --no-sig-verify
# The text taken out by hand is GnuPG's byte for byte, or the file checksum
# would not match: a bmap with lines GnuPG dash-escapes, signed.
awk 'NR == 2 { print "<!-- lines that start with a dash:"; print "- one"; print "-two"; print "-->" } { print }' \
        "$plain" >"$WORK/dashes.bmap"
fix_file_checksum "$WORK/dashes.bmap"
sign "$G" "$FPR_A" clear "$WORK/dashes.bmap" "$WORK/clear-dashes.bmap"
if grep -q '^- - one$' "$WORK/clear-dashes.bmap"; then pass "gpg dash-escaped the bmap"; else fail "gpg did not dash-escape"; fi
copy_ok "dash-escaped clearsigned bmap, verified" "good signature" --bmap "$WORK/clear-dashes.bmap"
copy_ok "dash-escaped clearsigned bmap, --no-sig-verify" "not verified" --bmap "$WORK/clear-dashes.bmap" --no-sig-verify

# --- Usage ---------------------------------------------------------------------------
run_cmd "$BMAPSCAN" copy --bmap-sig x.asc --no-sig-verify --bmap "$plain" "$img" "$WORK/tgt"
expect "--bmap-sig with --no-sig-verify" 2 "--no-sig-verify excludes"
run_cmd "$BMAPSCAN" copy --keyring x --nobmap "$img" "$WORK/tgt"
expect "--keyring with --nobmap" 2 "--nobmap excludes"
run_cmd "$BMAPSCAN" copy --fingerprint "$KEYID_A" --bmap "$plain" "$img" "$WORK/tgt"
expect "--fingerprint with a short key id" 2 "not a whole key fingerprint"
copy_refused "--bmap-sig with a clearsigned bmap" "the bmap is clearsigned, it carries its own signature" \
        --bmap "$WORK/clear-a.bmap" --bmap-sig "$WORK/det-asc/det-asc.bmap.asc"

# --- verify --------------------------------------------------------------------------
copy_ok "copy for verify" "" --bmap "$plain"
run_cmd "$BMAPSCAN" verify --bmap "$WORK/clear-a.bmap" "$img" "$WORK/tgt"
expect "verify with a clearsigned bmap" 0 "good signature by Test A"
run_cmd "$BMAPSCAN" verify --bmap "$WORK/det-sig/det-sig.bmap" --fingerprint "$FPR_A" "$img" "$WORK/tgt"
expect "verify with a detached signature and --fingerprint" 0 "all 48 ranges match"
run_cmd "$BMAPSCAN" verify --bmap "$WORK/clear-b.bmap" "$img" "$WORK/tgt"
expect "verify refuses a bmap signed by an unknown key" 1 "$KEYID_B"
one_line "verify, unknown key"
run_cmd "$BMAPSCAN" verify --bmap "$WORK/clear-c.bmap" --keyring "$WORK/c.kbx" "$img" "$WORK/tgt"
expect "verify with --keyring" 0 "good signature by Test C"
run_cmd "$BMAPSCAN" verify --bmap "$WORK/clear-a.bmap" --fingerprint "$FPR_C" "$img" "$WORK/tgt"
expect "verify with a wrong --fingerprint" 1 "not by the key --fingerprint names"
run_cmd "$BMAPSCAN" verify --bmap "$WORK/clear-b.bmap" --no-sig-verify "$img" "$WORK/tgt"
expect "verify --no-sig-verify" 0 "not verified"
run_cmd "$BMAPSCAN" verify --bmap "$WORK/unsigned/unsigned.bmap" --keyring "$WORK/a.gpg" "$img" "$WORK/tgt"
expect "verify: no signature with --keyring" 1 "no signature found"

# --- info ------------------------------------------------------------------------------
run_cmd "$BMAPSCAN" info "$WORK/clear-a.bmap"
expect "info on a clearsigned bmap" 0
grep -qx "signature:       clearsigned, verified: good signature by Test A <a@example.org> (fingerprint $FPR_A)" \
        "$WORK/out" && pass "info: the signature line" || fail "info: signature line: $(cat "$WORK/out")"
grep -qx 'file checksum:   verified' "$WORK/out" && pass "info: the signed text's file checksum verifies" ||
        fail "info: file checksum: $(cat "$WORK/out")"
[ ! -s "$WORK/err" ] && pass "info on a good clearsigned bmap: nothing on stderr" || fail "info: stderr: $(cat "$WORK/err")"
run_cmd "$BMAPSCAN" info "$WORK/clear-b.bmap"
expect "info on a bmap signed by an unknown key: not a failure" 0 "warning: $WORK/clear-b.bmap: "
one_line "info, unknown key"
grep -q "^signature:       clearsigned, NOT verified: .*$KEYID_B, which is not in GnuPG's default keyring" "$WORK/out" &&
        pass "info: says the signature does not verify" || fail "info: $(cat "$WORK/out")"
grep -qx 'valid:           yes' "$WORK/out" && pass "info: the bmap itself is valid" || fail "info: $(cat "$WORK/out")"
run_cmd "$BMAPSCAN" info --json "$WORK/clear-a.bmap"
expect "info --json on a clearsigned bmap" 0
python3 - "$WORK/out" "$FPR_A" <<'EOF' && pass "info --json: the signature object" || fail "info --json: $(cat "$WORK/out")"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["signature"]
ok = (s == {"type": "clearsigned", "verified": True, "signer": "Test A <a@example.org>", "fingerprint": sys.argv[2],
            "problem": None} and d["valid"] is True and d["file_checksum"] == "ok")
sys.exit(0 if ok else 1)
EOF
run_cmd "$BMAPSCAN" info --json "$WORK/clear-b.bmap"
expect "info --json, unknown key" 0
python3 - "$WORK/out" "$KEYID_B" <<'EOF' && pass "info --json: unverified signature" || fail "info --json: $(cat "$WORK/out")"
import json, sys
s = json.load(open(sys.argv[1]))["signature"]
sys.exit(0 if s["verified"] is False and s["signer"] is None and sys.argv[2] in s["problem"] else 1)
EOF
run_cmd "$BMAPSCAN" info --json "$plain"
grep -q '"signature"' "$WORK/out" && fail "info --json on an unsigned bmap has a signature member" ||
        pass "info --json on an unsigned bmap: no signature member"

# --- Over HTTP --------------------------------------------------------------------
# The bmap and its .asc beside an image URL with a ?query: the signature is
# asked for as NAME.bmap.asc?query, and checked like a local one.
if command -v python3 >/dev/null; then
        unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
        mkdir -p "$WORK/srv"
        cp "$img" "$WORK/srv/disk.img"
        cp "$plain" "$WORK/srv/disk.img.bmap"
        sign "$G" "$FPR_A" armor "$WORK/srv/disk.img.bmap" "$WORK/srv/disk.img.bmap.asc"
        python3 "$(dirname "$0")/http-server.py" --root "$WORK/srv" --port-file "$WORK/http.port" \
                --log "$WORK/http.log" 2>"$WORK/http.err" &
        http_pid=$!
        if wait_until server_ready "$WORK/http.port" $http_pid; then
                url="http://127.0.0.1:$(cat "$WORK/http.port")/disk.img?token=7"
                rm -f "$WORK/tgt"
                run_cmd "$BMAPSCAN" copy --fingerprint "$FPR_A" "$url" "$WORK/tgt"
                expect "over HTTP: bmap and .asc found beside the URL, signature good" 0 "good signature"
                expect_same "over HTTP: the target holds the image" "$WORK/tgt"
                grep -q "GET /disk.img.bmap.asc" "$WORK/http.log" && pass "over HTTP: the .asc was fetched before the query" ||
                        fail "over HTTP: no GET of disk.img.bmap.asc: $(cat "$WORK/http.log")"
                sign "$HB" "$FPR_B" armor "$WORK/srv/disk.img.bmap" "$WORK/srv/disk.img.bmap.asc"
                rm -f "$WORK/tgt"
                run_cmd "$BMAPSCAN" copy --fingerprint "$FPR_A" "$url" "$WORK/tgt"
                expect "over HTTP: a signature by another key is refused" 1
                [ ! -e "$WORK/tgt" ] && pass "over HTTP: nothing written" || fail "over HTTP: a target was written"
        else
                fail "the HTTP server did not start: $(cat "$WORK/http.err")"
        fi
        kill "$http_pid" 2>/dev/null || true
        wait "$http_pid" 2>/dev/null || true
fi

# --- bmaptool ------------------------------------------------------------------------
# Debian's bmaptool 3.6 verifies with the python3 "gpgme" module; without it
# it refuses every signed bmap, so there is nothing to compare.
if command -v bmaptool >/dev/null && python3 -c 'import gpgme' 2>/dev/null; then
        for f in clear-a det-asc/det-asc det-sig/det-sig; do
                rm -f "$WORK/tgt"
                run_cmd bmaptool copy --bmap "$WORK/$f.bmap" "$img" "$WORK/tgt"
                expect "bmaptool accepts $f" 0
        done
        for f in clear-b changed det-changed/det-changed; do
                run_cmd bmaptool copy --bmap "$WORK/$f.bmap" "$img" "$WORK/tgt"
                expect "bmaptool refuses $f" 1
        done
else
        echo "skip: bmaptool cannot verify signatures here (no python3 gpgme module)"
fi

finish
