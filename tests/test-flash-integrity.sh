#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The flash invariant where a filesystem's own word is not enough (issue
# 10): dm-verity trees, Android AVB footers and vbmeta, vendor data past a
# filesystem's end, zeros past a small FAT, and the user's --map. Each
# layout is built here with the real tools (sfdisk, mkfs.ext4 -d,
# mkfs.fat + mcopy, mksquashfs, veritysetup, systemd-repart), scanned
# with 'bmapscan scan --json -o', and flashed with 'bmaptool copy' and
# with 'bmapscan copy' onto a loop device over random garbage (bmaptool
# truncates a regular file, which would hide unmapped blocks); then on
# the target:
#   1 ext4 + dm-verity in one partition: the report says dm-verity,
#     veritysetup verify passes, e2fsck -fn passes, the partition is
#     byte-identical. A control flashes the bmap a scan without the
#     dm-verity check would have written (the ext4's used blocks and the
#     tail): veritysetup verify must fail on that target, or this test
#     proves nothing. The same tree without a superblock: only the
#     non-zero tail is mapped (nothing says it is a tree), and --map
#     part:1 makes it verify.
#   2 squashfs + appended hash tree (OpenWrt): the squashfs probe reads
#     its size, the tree's superblock in the tail maps the partition
#     whole, verify passes.
#   3 ext4 data + DPS hash partition from systemd-repart: both mapped
#     whole, verify passes; signed (Verity=signature) beside an
#     unprotected root-b: the root hash in the verity-sig partition pins
#     root-a, mapped whole, root-b only as its ext4 says; and by hand
#     (sfdisk + veritysetup), an A/B
#     pair of same-sized ext4 partitions beside one hash partition: both
#     could be its data, both are mapped whole.
#   4 an AVB footer and a vbmeta partition (written here, FORMATS.md §8):
#     every byte of both partitions identical.
#   5 vendor bytes right after an ext4's end: identical; the zero rest of
#     the tail not in the bmap; the ext4's free space not either.
#   6 a FAT smaller than its partition: the zero tail not in the bmap;
#     fsck.fat -n passes and the files read back are identical.
#   7 --map part:N, START:LENGTH and label:NAME on layout 6: each region
#     mapped, reported, and identical on the target (non-zero bytes in the
#     FATs' free space, zeros in the tail, garbage underneath).
# INTEGRITY_LAYOUTS="1 4" runs only those; INTEGRITY_FLASHERS picks the
# flashers (default "bmaptool bmapscan"). Needs loop devices (exit 77).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

LAYOUTS=${INTEGRITY_LAYOUTS:-"1 2 3 4 5 6 7"}
FLASHERS=${INTEGRITY_FLASHERS:-"bmaptool bmapscan"}
START=$SECONDS
MiB=$((1 << 20))

need_tools bmaptool python3 openssl losetup sfdisk mkfs.ext4 e2fsck dumpe2fs mkfs.fat fsck.fat mcopy \
        mksquashfs veritysetup systemd-repart fallocate
need_loop

# ---------------------------------------------------------------- helpers

IJ=$WORK/ij.py
cat >"$IJ" <<'PYEOF'
# The --json report and bmap questions of this test.
import json
import sys


cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "part":
    # part JSON N: "mapped_bytes size filesystem how" of partition N.
    for p in json.load(open(args[0]))["partitions"]:
        if p["number"] == int(args[1]):
            print(p["mapped_bytes"], p["size"], p["filesystem"] or "-", p["how"].replace("\n", " "))
            sys.exit(0)
    sys.exit("no partition %s in %s" % (args[1], args[0]))
elif cmd == "region":
    # region JSON START SIZE TEXT: a "mapped in full" region of exactly
    # these bytes whose reason holds TEXT; prints it.
    for r in json.load(open(args[0])).get("regions_mapped_in_full", []):
        if r["start"] == int(args[1]) and r["size"] == int(args[2]) and args[3] in r["why"]:
            print(r["why"])
            sys.exit(0)
    sys.exit("none of %s" % json.dumps(json.load(open(args[0])).get("regions_mapped_in_full")))
elif cmd == "roothash":
    # roothash REPART_JSON: the root hash systemd-repart printed.
    hs = [p["roothash"] for p in json.load(open(args[0])) if p.get("roothash")]
    if len(hs) != 1:
        sys.exit("%d root hashes in %s" % (len(hs), args[0]))
    print(hs[0])
else:
    sys.exit("ij: unknown command " + cmd)
PYEOF
ij() { python3 "$IJ" "$@"; }

# part_offsets IMG: st[N] and sz[N], the caller's arrays, get the byte
# start and size of each partition N, from sfdisk's dump (in sectors).
part_offsets() {
        local n s z
        while read -r n s z; do
                st[n]=$((s * 512))
                sz[n]=$((z * 512))
        done < <(sfdisk -d "$1" | sed -n 's/^[^ ]*[^0-9]\([0-9]*\) : start= *\([0-9]*\), size= *\([0-9]*\),.*/\1 \2 \3/p')
}

# mkgpt IMG SIZE_MIB "START_MIB SIZE_MIB TYPE NAME"...: a GPT image.
mkgpt() {
        local img=$1 size=$2 p s z t n
        shift 2
        rm -f "$img"
        truncate -s $((size * MiB)) "$img"
        {
                echo "label: gpt"
                for p; do
                        read -r s z t n <<<"$p"
                        echo "start=$((s * 2048)), size=$((z * 2048)), type=$t, name=$n"
                done
        } | sfdisk -q --no-reread --no-tell-kernel "$img" >/dev/null
}
# put IMG FILE OFFSET: FILE's bytes into IMG at byte OFFSET.
put() {
        dd if="$2" of="$1" bs=1M seek="$3" oflag=seek_bytes conv=notrunc status=none
}
# rnd FILE SIZE KEY: random bytes, the same for the same key.
rnd() { garbage "$1" "$2" "content:$3"; }
# tree DIR KEY: a few MiB of random files.
tree() {
        mkdir -p "$1/sub/deeper"
        rnd "$1/big" $((2 * MiB + 12345)) "$2:big"
        rnd "$1/sub/mid" 300000 "$2:mid"
        rnd "$1/sub/deeper/small" 777 "$2:small"
        echo "$2" >"$1/name.txt"
}
# mkext4 FILE FS_MIB DIR [FILE_MIB]: an ext4 of FS_MIB holding DIR, in a
# file of FILE_MIB (zeros after the filesystem).
mkext4() {
        rm -f "$1"
        truncate -s $((${4:-$2} * MiB)) "$1"
        mkfs.ext4 -q -F -b 4096 -d "$3" "$1" "$2M"
}
# ranges FILE START END...: a ranges file for 'fc'.
ranges() {
        local f=$1
        shift
        : >"$f"
        while [ $# -ge 2 ]; do
                echo "$1 $2" >>"$f"
                shift 2
        done
}

# scan NAME IMG [SCAN-ARGS...]: scans into $d/NAME.bmap, $d/NAME.json
# and $d/NAME.err (the report).
scan() {
        local name=$1 img=$2
        shift 2
        run_cmd "$BMAPSCAN" scan --json -o "$d/$name.bmap" "$@" "$img"
        cp "$WORK/out" "$d/$name.json"
        cp "$WORK/err" "$d/$name.err"
        if [ "$RC" != 0 ]; then
                fail "$L $name: bmapscan scan $* exits $RC: $(head -c 600 "$WORK/err")"
                return 1
        fi
        pass "$L $name: bmapscan scan --json -o ${*:+$* }exits 0"
        sed 's/^/      /' "$d/$name.err"
}

# how NAME N ERE WHAT: partition N's "how" in the --json report matches.
how() {
        local line
        if ! line=$(ij part "$d/$1.json" "$2" 2>&1); then
                fail "$L $1 p$2: $line"
                return
        fi
        if grep -qE -- "$3" <<<"$line"; then
                pass "$L $1 p$2: the report says $4"
        else
                fail "$L $1 p$2: the report does not say $4 (/$3/): $(cut -d' ' -f4- <<<"$line")"
        fi
}

# in_full NAME START SIZE TEXT: the --json report and the stderr report
# both list these bytes as mapped in full, for a reason that says TEXT.
in_full() {
        local why
        if why=$(ij region "$d/$1.json" "$2" "$3" "$4" 2>&1); then
                pass "$L $1: --json: mapped in full: bytes $2+$3: $why"
        else
                fail "$L $1: --json has no region mapped in full at byte $2 of $3 bytes saying '$4': $why"
        fi
        if grep -F 'mapped in full: ' "$d/$1.err" | grep -qF -- "$4"; then
                pass "$L $1: stderr: $(grep -F 'mapped in full: ' "$d/$1.err" | grep -F -- "$4" | head -n 1 | sed 's/^ *//')"
        else
                fail "$L $1: stderr has no 'mapped in full: ... $4' line: $(grep -F 'mapped in full' "$d/$1.err" || echo none)"
        fi
}

# covered NAME START END WHAT: the bmap maps every byte of [START, END).
covered() {
        ranges "$d/need" "$2" "$3"
        if fc uncovered "$d/need" "$d/$1.bmap" >"$WORK/out"; then
                pass "$L $1: the bmap maps bytes $2-$3 ($4)"
        else
                fail "$L $1: DATA LOSS: $4 ($2-$3): $(cat "$WORK/out")"
        fi
}
# exactly NAME START END WHAT EXPECTED...: the bmap's ranges inside
# [START, END) are exactly the EXPECTED "A B" pairs (none if none).
exactly() {
        local name=$1 a=$2 b=$3 what=$4 got want
        shift 4
        got=$(fc within "$d/$name.bmap" "$a" "$b" | tr '\n' ' ')
        want=$(printf '%s %s ' "$@")
        [ $# != 0 ] || want=
        if [ "$got" = "$want" ]; then
                pass "$L $name: $what: the bmap maps [${want:-nothing}] of bytes $a-$b"
        else
                fail "$L $name: $what: the bmap maps [${got:-nothing}] of bytes $a-$b, expected [${want:-nothing}]"
        fi
}

# flash NAME IMG FLASHER: the bmap NAME onto a loop device over garbage;
# the target file is $d/NAME.FLASHER.tgt, left in TGT.
flash() {
        local name=$1 img=$2 who=$3 loop
        TGT=$d/$name.$who.tgt
        garbage "$TGT" "$(stat -c %s "$img")" "$L:$name:$who"
        if ! attach "$TGT"; then
                fail "$L $name: cannot attach a loop device to the target"
                return 1
        fi
        loop=$ATTACHED
        case $who in
        bmaptool) run_cmd bmaptool copy --bmap "$d/$name.bmap" "$img" "$loop" ;;
        bmapscan) run_cmd "$BMAPSCAN" copy --bmap "$d/$name.bmap" "$img" "$loop" ;;
        esac
        detach "$loop"
        if [ "$RC" = 0 ]; then
                pass "$L $name: $who copy onto $loop over garbage exits 0 (every range checksum verified)"
        else
                fail "$L $name: $who copy exits $RC: $(grep -v ': info: ' "$WORK/err" | tail -n 4)"
                return 1
        fi
}

# same NAME IMG START END WHAT: image and target ($TGT) agree over bytes
# [START, END).
same() {
        ranges "$d/cmp" "$3" "$4"
        if fc compare "$2" "$TGT" "$d/cmp" "$L $1 ($WHO): $5" >"$WORK/out"; then
                pass "$(cat "$WORK/out")"
        else
                fail "$(cat "$WORK/out")"
        fi
}

# fsck_ext NAME FILE: e2fsck -fn passes on FILE.
fsck_ext() {
        if e2fsck -fn "$2" >"$WORK/fsck" 2>&1; then
                pass "$L $1 ($WHO): e2fsck -fn passes on the target"
        else
                fail "$L $1 ($WHO): e2fsck -fn fails on the target: $(tail -n 5 "$WORK/fsck" | tr '\n' ' ')"
        fi
}

# verify NAME WHAT VERITYSETUP-VERIFY-ARGS...: veritysetup verify passes.
verify() {
        local name=$1 what=$2
        shift 2
        if veritysetup verify "$@" >"$WORK/verify" 2>&1; then
                pass "$L $name ($WHO): veritysetup verify passes on the target's $what"
        else
                fail "$L $name ($WHO): veritysetup verify fails on the target's $what: $(tr '\n' ' ' <"$WORK/verify")"
        fi
}

# ---------------------------------------------------------------- 1: ext4 + dm-verity in one partition

layout1() {
        local ps=$MiB psz=$((64 * MiB)) ho=$((48 * MiB)) db=$((48 * 256)) rh
        tree "$d/files" l1
        mkgpt "$d/img" 66 "1 64 L system"
        mkext4 "$d/part" 48 "$d/files" 64
        veritysetup format --hash-offset=$ho --data-blocks=$db "$d/part" "$d/part" >"$d/format"
        rh=$(awk '/^Root hash:/ {print $3}' "$d/format")
        put "$d/img" "$d/part" $ps
        scan s "$d/img" || return 0
        how s 1 "dm-verity hash tree in the partition's tail \(superblock at 48\.0 MiB\): fully mapped" \
                "dm-verity in the tail"
        in_full s $ps $psz "dm-verity superblock at partition byte $ho"
        covered s $ps $((ps + psz)) "the whole partition"
        for WHO in $FLASHERS; do
                flash s "$d/img" "$WHO" || continue
                same s "$d/img" $ps $((ps + psz)) "the whole partition (ext4, dm-verity superblock and tree)"
                extract "$TGT" $ps $psz "$d/tpart"
                verify s "partition (--hash-offset=$ho)" --hash-offset=$ho --data-blocks=$db "$d/tpart" "$d/tpart" "$rh"
                fsck_ext s "$d/tpart"
                rm -f "$TGT" "$d/tpart"
        done

        # The control: the bmap of the ext4's used blocks and the tail
        # (what a scan that trusts the filesystem and maps only the
        # non-zero tail writes) must break the tree, or the verify above
        # proves nothing: dm-verity hashes the free blocks too.
        WHO=control
        dumpe2fs "$d/part" >"$d/dump" 2>/dev/null
        fc ext-used "$d/dump" $ps >"$d/used"
        # Kept: outside the partition, the ext4's used blocks, the tail.
        { echo "0 $ps"; grep -v '^#' "$d/used"; echo "$((ps + ho)) $((66 * MiB))"; } >"$d/keep"
        cp --sparse=never "$d/img" "$d/naive.img"
        fc complement $((66 * MiB)) "$d/keep" | while read -r a b _; do
                a=$(((a + 4095) / 4096 * 4096))
                b=$((b / 4096 * 4096))
                [ $b -le $a ] || fallocate -p -o $a -l $((b - a)) "$d/naive.img"
        done
        bmaptool create -o "$d/naive.bmap" "$d/naive.img" 2>/dev/null
        rm -f "$d/naive.img"
        flash naive "$d/img" bmaptool || return 0
        extract "$TGT" $ps $psz "$d/tpart"
        if veritysetup verify --hash-offset=$ho --data-blocks=$db "$d/tpart" "$d/tpart" "$rh" >"$WORK/verify" 2>&1; then
                fail "$L control: veritysetup verify PASSES after flashing only the ext4's used blocks and the tail: the checks above prove nothing"
        else
                pass "$L control: with only the ext4's used blocks and the tail flashed, veritysetup verify fails as it must ($(head -n 1 "$WORK/verify"))"
        fi
        rm -f "$TGT" "$d/tpart"

        # The same tree without a superblock (veritysetup --no-superblock):
        # nothing on disk says it is one, so scan maps the non-zero tail
        # only (SPEC §1: past the end, only zeros are free) and the ext4's
        # free blocks are not mapped: the user's --map part:1 is the way.
        local salt=5a17
        mkext4 "$d/part" 48 "$d/files" 64
        veritysetup format --no-superblock --salt=$salt --hash-offset=$ho --data-blocks=$db "$d/part" "$d/part" >"$d/format"
        rh=$(awk '/^Root hash:/ {print $3}' "$d/format")
        put "$d/img" "$d/part" $ps
        scan nosb "$d/img" || return 0
        how nosb 1 "of data past the filesystem.s end mapped" "the tree past the filesystem's end is mapped"
        local hb
        hb=$(awk '/^Hash blocks:/ {print $3}' "$d/format")
        covered nosb $((ps + ho)) $((ps + ho + hb * 4096)) "the tree ($hb blocks, no superblock)"
        exactly nosb $((ps + 48 * MiB)) $((ps + psz)) "the tail past the ext4 (only the tree)" \
                $((ps + ho)) $((ps + ho + hb * 4096))
        scan nosbmap "$d/img" --map part:1 || return 0
        in_full nosbmap $ps $psz "--map part:1 (partition 1)"
        for WHO in $FLASHERS; do
                flash nosbmap "$d/img" "$WHO" || continue
                same nosbmap "$d/img" $ps $((ps + psz)) "the whole partition (ext4, tree without superblock)"
                extract "$TGT" $ps $psz "$d/tpart"
                verify nosbmap "partition (--no-superblock, --map part:1)" --no-superblock --salt=$salt \
                        --hash-offset=$ho --data-blocks=$db "$d/tpart" "$d/tpart" "$rh"
                rm -f "$TGT" "$d/tpart"
        done
}

# ---------------------------------------------------------------- 2: squashfs + appended hash tree

layout2() {
        local ps=$MiB psz=$((16 * MiB)) sq rh
        tree "$d/files" l2
        mksquashfs "$d/files" "$d/sq" -noappend -quiet -no-progress >/dev/null
        sq=$(stat -c %s "$d/sq")
        sq=$(((sq + 4095) / 4096 * 4096))
        truncate -s $sq "$d/sq"
        veritysetup format --hash-offset=$sq --data-blocks=$((sq / 4096)) "$d/sq" "$d/sq" >"$d/format"
        rh=$(awk '/^Root hash:/ {print $3}' "$d/format")
        echo "    squashfs of $sq bytes, with its tree $(stat -c %s "$d/sq") bytes, in a partition of $psz"
        mkgpt "$d/img" 18 "1 16 L rootfs"
        put "$d/img" "$d/sq" $ps
        scan s "$d/img" || return 0
        local line
        line=$(ij part "$d/s.json" 1)
        if [ "$(cut -d' ' -f1 <<<"$line")" = $psz ]; then
                pass "$L s p1: the whole partition is mapped ($psz bytes)"
        else
                fail "$L s p1: $(cut -d' ' -f1 <<<"$line") of $psz bytes mapped: $(cut -d' ' -f4- <<<"$line")"
        fi
        # The squashfs probe maps bytes_used; the tail's superblock is what
        # maps the rest of the partition.
        how s 1 'squashfs: bytes_used.*dm-verity hash tree in the partition.s tail.*fully mapped' \
                "squashfs by its size, then the dm-verity tree in its tail"
        in_full s $ps $psz "dm-verity superblock at partition byte $sq"
        covered s $ps $((ps + psz)) "the whole partition"
        for WHO in $FLASHERS; do
                flash s "$d/img" "$WHO" || continue
                same s "$d/img" $ps $((ps + psz)) "the whole partition (squashfs, tree, zeros)"
                extract "$TGT" $ps $psz "$d/tpart"
                verify s "partition (--hash-offset=$sq)" --hash-offset=$sq --data-blocks=$((sq / 4096)) "$d/tpart" "$d/tpart" "$rh"
                rm -f "$TGT" "$d/tpart"
        done
}

# ---------------------------------------------------------------- 3: DPS data + hash partitions

layout3() {
        local rh
        tree "$d/files" l3
        mkdir -p "$d/defs"
        cat >"$d/defs/10-root.conf" <<EOF
[Partition]
Type=root
Format=ext4
CopyFiles=$d/files:/
Verity=data
VerityMatchKey=root
SizeMinBytes=64M
SizeMaxBytes=64M
EOF
        cat >"$d/defs/20-root-verity.conf" <<EOF
[Partition]
Type=root-verity
Verity=hash
VerityMatchKey=root
SizeMinBytes=8M
SizeMaxBytes=8M
EOF
        if ! systemd-repart --empty=create --size=auto --definitions="$d/defs" --dry-run=no --json=short \
                "$d/img" >"$d/repart.json" 2>"$d/repart.err"; then
                fail "$L repart: systemd-repart fails: $(tail -n 3 "$d/repart.err" | tr '\n' ' ')"
                return 0
        fi
        rh=$(ij roothash "$d/repart.json")
        # Where the partitions are: sfdisk's dump (start and size in sectors).
        local -a st sz
        part_offsets "$d/img"
        echo "    systemd-repart: root at ${st[1]} (${sz[1]} bytes), root-verity at ${st[2]} (${sz[2]} bytes), root hash $rh"
        scan repart "$d/img" || return 0
        how repart 1 'the data of the dm-verity hash partition 2: fully mapped' "the data of hash partition 2"
        how repart 2 'dm-verity hash partition.*fully mapped' "a dm-verity hash partition"
        in_full repart "${st[1]}" "${sz[1]}" "data of the dm-verity hash partition 2"
        in_full repart "${st[2]}" "${sz[2]}" "dm-verity hash partition"
        covered repart "${st[1]}" $((st[1] + sz[1])) "root (data)"
        covered repart "${st[2]}" $((st[2] + sz[2])) "root-verity (hash)"
        for WHO in $FLASHERS; do
                flash repart "$d/img" "$WHO" || continue
                same repart "$d/img" "${st[1]}" $((st[1] + sz[1])) "the data partition"
                same repart "$d/img" "${st[2]}" $((st[2] + sz[2])) "the hash partition"
                extract "$TGT" "${st[1]}" "${sz[1]}" "$d/tdata"
                extract "$TGT" "${st[2]}" "${sz[2]}" "$d/thash"
                verify repart "data and hash partitions" "$d/tdata" "$d/thash" "$rh"
                fsck_ext repart "$d/tdata"
                rm -f "$TGT" "$d/tdata" "$d/thash"
        done
        rm -f "$d/img"

        # Signed (Verity=signature): an A/B pair of root partitions, the
        # verity-sig partition's root hash names A by its partition UUID:
        # A is mapped whole, B (no tree over it) only as its ext4 says.
        mkdir -p "$d/files-b"
        tree "$d/files-b" l3b
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 2 -subj /CN=bmapscan-test \
                >/dev/null 2>&1
        cat >"$d/defs/15-root-b.conf" <<EOF
[Partition]
Type=root
Label=root-b
Format=ext4
CopyFiles=$d/files-b:/
SizeMinBytes=64M
SizeMaxBytes=64M
EOF
        cat >"$d/defs/30-root-verity-sig.conf" <<EOF
[Partition]
Type=root-verity-sig
Verity=signature
VerityMatchKey=root
EOF
        if ! systemd-repart --empty=create --size=auto --definitions="$d/defs" --dry-run=no --json=short \
                --private-key="$d/key.pem" --certificate="$d/cert.pem" "$d/img" >"$d/repart.json" 2>"$d/repart.err"; then
                fail "$L sig: systemd-repart fails: $(tail -n 3 "$d/repart.err" | tr '\n' ' ')"
        else
                rh=$(ij roothash "$d/repart.json")
                part_offsets "$d/img"
                echo "    systemd-repart: root-a at ${st[1]}, root-b at ${st[2]}, root-verity at ${st[3]}, root-verity-sig at ${st[4]}"
                if scan sig "$d/img"; then
                        how sig 1 'the data of the dm-verity tree whose root hash partition 4 signs: fully mapped' \
                                "the data of the tree partition 4 signs"
                        how sig 2 '^[0-9]+ [0-9]+ ext4 ext4: block bitmap$' "only its ext4 (not the signed data)"
                        how sig 3 'dm-verity hash partition.*fully mapped' "a dm-verity hash partition"
                        in_full sig "${st[1]}" "${sz[1]}" "partition 1: data of the dm-verity tree signed in partition 4"
                        covered sig "${st[1]}" $((st[1] + sz[1])) "root-a (signed data)"
                        covered sig "${st[3]}" $((st[3] + sz[3])) "root-verity (hash)"
                        covered sig "${st[4]}" $((st[4] + sz[4])) "root-verity-sig"
                        for WHO in $FLASHERS; do
                                flash sig "$d/img" "$WHO" || continue
                                same sig "$d/img" "${st[1]}" $((st[1] + sz[1])) "root-a (signed data)"
                                same sig "$d/img" "${st[3]}" $((st[4] + sz[4])) "root-verity and root-verity-sig"
                                extract "$TGT" "${st[1]}" "${sz[1]}" "$d/tdata"
                                extract "$TGT" "${st[3]}" "${sz[3]}" "$d/thash"
                                verify sig "root-a and root-verity" "$d/tdata" "$d/thash" "$rh"
                                extract "$TGT" "${st[2]}" "${sz[2]}" "$d/tdata"
                                fsck_ext sig "$d/tdata"
                                rm -f "$TGT" "$d/tdata" "$d/thash"
                        done
                fi
        fi
        rm -f "$d/img"

        # By hand: an A/B pair of same-sized ext4 partitions (both DPS
        # root x86-64) and one hash partition (root-verity x86-64) over A.
        # Nothing on disk says which one it protects: both are mapped.
        local root=4f68bce3-e8cd-4db1-96e7-fbcaf984b709 verity=2c7357ed-ebd2-46d9-aec1-23d437ec2bf5
        mkgpt "$d/img" 74 "1 32 $root root-a" "33 32 $root root-b" "65 8 $verity root-verity"
        mkext4 "$d/a" 32 "$d/files"
        mkext4 "$d/b" 32 "$d/files-b"
        truncate -s $((8 * MiB)) "$d/h"
        veritysetup format "$d/a" "$d/h" >"$d/format"
        rh=$(awk '/^Root hash:/ {print $3}' "$d/format")
        put "$d/img" "$d/a" $MiB
        put "$d/img" "$d/b" $((33 * MiB))
        put "$d/img" "$d/h" $((65 * MiB))
        scan ab "$d/img" || return 0
        how ab 1 'could be the data of the dm-verity hash partition 3 \(one of 2 candidates\): fully mapped' \
                "it could be the data of hash partition 3 (one of 2 candidates)"
        how ab 2 'could be the data of the dm-verity hash partition 3 \(one of 2 candidates\): fully mapped' \
                "it could be the data of hash partition 3 (one of 2 candidates)"
        how ab 3 'dm-verity hash partition.*fully mapped' "a dm-verity hash partition"
        in_full ab $MiB $((32 * MiB)) "partition 1: data of the dm-verity hash partition 3"
        in_full ab $((33 * MiB)) $((32 * MiB)) "partition 2: data of the dm-verity hash partition 3"
        in_full ab $((65 * MiB)) $((8 * MiB)) "partition 3: dm-verity hash partition"
        covered ab $MiB $((73 * MiB)) "root-a, root-b and root-verity"
        for WHO in $FLASHERS; do
                flash ab "$d/img" "$WHO" || continue
                same ab "$d/img" $MiB $((73 * MiB)) "root-a, root-b and root-verity"
                extract "$TGT" $MiB $((32 * MiB)) "$d/tdata"
                extract "$TGT" $((65 * MiB)) $((8 * MiB)) "$d/thash"
                verify ab "root-a and root-verity" "$d/tdata" "$d/thash" "$rh"
                rm -f "$TGT" "$d/tdata" "$d/thash"
        done
}

# ---------------------------------------------------------------- 4: Android AVB

layout4() {
        local ps=$MiB psz=$((48 * MiB)) vs=$((49 * MiB)) vsz=$MiB
        tree "$d/files" l4
        mkgpt "$d/img" 51 "1 48 L system_a" "49 1 L vbmeta_a"
        mkext4 "$d/part" 32 "$d/files" 48
        rnd "$d/rand" $MiB l4
        # avbtool's add_hashtree_footer layout: the filesystem, the hash
        # tree (here random bytes of the size a sha256 tree of 32 MiB has),
        # vbmeta, zeros, the footer in the last 64 bytes; and a vbmeta
        # partition: the blob, then zeros.
        python3 - "$d/part" "$d/vbmeta" "$d/rand" <<'PYEOF'
import struct
import sys

part, vbpart, rand = sys.argv[1:4]
noise = open(rand, "rb").read()
size = 48 << 20
image = 32 << 20
tree = (8192 // 128 + 1) * 4096


def vbmeta(auth, aux, salt):
    h = bytearray(256)
    struct.pack_into(">4sIIQQI", h, 0, b"AVB0", 1, 0, auth, aux, 1)
    struct.pack_into(">QQQQ", h, 32, 0, 32, 32, 256)                 # hash, signature in auth
    struct.pack_into(">QQQQQQ", h, 64, 0, 520, 520, 0, 520, aux - 520)  # key, metadata, descriptors in aux
    h[128:128 + 11] = b"avbtool 1.2"
    return bytes(h) + noise[salt:salt + auth + aux]


vb = vbmeta(320, 1600, 4096)
vbo = image + tree
with open(part, "r+b") as f:
    f.seek(image)
    f.write(noise[100000:100000 + tree])
    f.seek(vbo)
    f.write(vb)
    f.seek(size - 64)
    f.write(struct.pack(">4sIIQQQ28x", b"AVBf", 1, 0, image, vbo, len(vb)))
with open(vbpart, "wb") as f:
    f.write(vbmeta(576, 2048, 600000))
    f.truncate(1 << 20)
PYEOF
        put "$d/img" "$d/part" $ps
        put "$d/img" "$d/vbmeta" $vs
        scan s "$d/img" || return 0
        how s 1 'Android AVB footer.*fully mapped' "an Android AVB footer"
        how s 2 'Android AVB vbmeta: fully mapped' "Android AVB vbmeta"
        in_full s $ps $psz "partition 1: Android AVB footer"
        in_full s $vs $vsz "partition 2: Android AVB vbmeta"
        covered s $ps $((ps + psz)) "system_a (ext4, tree, vbmeta, footer)"
        covered s $vs $((vs + vsz)) "vbmeta_a"
        for WHO in $FLASHERS; do
                flash s "$d/img" "$WHO" || continue
                same s "$d/img" $ps $((ps + psz)) "system_a: every byte (ext4 and its free blocks, tree, vbmeta, zeros, footer)"
                same s "$d/img" $vs $((vs + vsz)) "vbmeta_a: every byte (blob and zeros)"
                extract "$TGT" $ps $psz "$d/tpart"
                fsck_ext s "$d/tpart"
                rm -f "$TGT" "$d/tpart"
        done
}

# ---------------------------------------------------------------- 5: vendor data after an ext4

layout5() {
        local ps=$MiB psz=$((64 * MiB)) fe=$((41 * MiB)) va vb
        # Not on a block boundary at either end.
        va=$((fe + 12288 + 100))
        vb=$((va + 102400 + 37))
        tree "$d/files" l5
        mkgpt "$d/img" 66 "1 64 L vendor"
        mkext4 "$d/part" 40 "$d/files" 64
        rnd "$d/blob" $((vb - va)) l5
        put "$d/part" "$d/blob" $((va - ps))
        put "$d/img" "$d/part" $ps
        scan s "$d/img" || return 0
        how s 1 'ext4: block bitmap.*of data past the filesystem.s end mapped' "data past the filesystem's end is mapped"
        covered s $va $vb "the vendor bytes"
        exactly s $fe $((ps + psz)) "the tail past the ext4 (only the vendor bytes' blocks)" \
                $((va / 4096 * 4096)) $(((vb + 4095) / 4096 * 4096))
        dumpe2fs "$d/part" >"$d/dump" 2>/dev/null
        fc ext-used "$d/dump" $ps "ext4 used" >"$d/used"
        if fc uncovered "$d/used" "$d/s.bmap" >"$WORK/out"; then
                pass "$L s: the ext4's used blocks are mapped: $(cat "$WORK/out")"
        else
                fail "$L s: DATA LOSS in the ext4: $(cat "$WORK/out")"
        fi
        local used mapped
        used=$(fc round-total-in "$d/used" $ps $fe)
        mapped=$(fc mapped-in "$d/s.bmap" $ps $fe)
        if [ "$mapped" = "$used" ]; then
                pass "$L s: inside the ext4 the bmap maps what its bitmaps say is used ($mapped of $((fe - ps)) bytes): free space stays free"
        else
                fail "$L s: inside the ext4 the bmap maps $mapped bytes, its bitmaps say $used of $((fe - ps)) are used"
        fi
        for WHO in $FLASHERS; do
                flash s "$d/img" "$WHO" || continue
                same s "$d/img" $va $vb "the vendor bytes after the ext4"
                cp "$d/used" "$d/cmp-used"
                if fc compare "$d/img" "$TGT" "$d/cmp-used" "$L s ($WHO): the ext4's used blocks" >"$WORK/out"; then
                        pass "$(cat "$WORK/out")"
                else
                        fail "$(cat "$WORK/out")"
                fi
                extract "$TGT" $ps $psz "$d/tpart"
                fsck_ext s "$d/tpart"
                rm -f "$TGT" "$d/tpart"
        done
}

# ---------------------------------------------------------------- 6, 7: FAT smaller than its partition, --map

# fat IMG_FILE SIZE_MIB DIR: a FAT filesystem file holding DIR's files.
fat() {
        rm -f "$1"
        mkfs.fat -C "$1" $(($2 * 1024)) >/dev/null
        MTOOLS_SKIP_CHECK=1 mcopy -s -i "$1" "$3"/* ::/
}

# The image of layouts 6 and 7: p1 "boot", 48 MiB, a FAT of 16 MiB and
# zeros; p2 "uboot-env" and p3 "data", 8 MiB FATs each, with "U-Boot
# environment" bytes in clusters their FATs call free.
build_fat_image() {
        tree "$d/files" l6
        mkdir -p "$d/small"
        rnd "$d/small/file" 100000 l6-small
        fat "$d/p1" 16 "$d/files"
        fat "$d/p2" 8 "$d/small"
        fat "$d/p3" 8 "$d/small"
        rnd "$d/env" 65536 l6-env
        put "$d/p2" "$d/env" $((6 * MiB))
        rnd "$d/env" 65536 l6-env3
        put "$d/p3" "$d/env" $((6 * MiB))
        mkgpt "$d/img" 66 "1 48 L boot" "49 8 L uboot-env" "57 8 L data"
        put "$d/img" "$d/p1" $MiB
        put "$d/img" "$d/p2" $((49 * MiB))
        put "$d/img" "$d/p3" $((57 * MiB))
}

# fat_files NAME PART_START PART_SIZE: fsck.fat -n passes on the target's
# partition and the files read back with mcopy are the image's.
fat_files() {
        extract "$TGT" "$2" "$3" "$d/tpart"
        if fsck.fat -n "$d/tpart" >"$WORK/fsck" 2>&1; then
                pass "$L $1 ($WHO): fsck.fat -n passes on the target's partition at $2"
        else
                fail "$L $1 ($WHO): fsck.fat -n fails on the target's partition at $2: $(tail -n 4 "$WORK/fsck" | tr '\n' ' ')"
        fi
        rm -rf "$d/back"
        mkdir "$d/back"
        if MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$d/tpart" '::/*' "$d/back/" 2>"$WORK/mcopy" &&
                diff -r "$d/files" "$d/back" >"$WORK/diff" 2>&1; then
                pass "$L $1 ($WHO): the files read back from the target with mcopy are the image's ($(find "$d/back" -type f | wc -l) files)"
        else
                fail "$L $1 ($WHO): the files read back from the target differ: $(head -c 300 "$WORK/mcopy") $(head -n 4 "$WORK/diff")"
        fi
        rm -rf "$d/back" "$d/tpart"
}

layout6() {
        build_fat_image
        scan s "$d/img" || return 0
        how s 1 '^vfat|fat' "a FAT"
        if grep -q 'past the filesystem' <<<"$(ij part "$d/s.json" 1)"; then
                fail "$L s p1: the report speaks of data past the FAT's end, where there are only zeros: $(ij part "$d/s.json" 1)"
        else
                pass "$L s p1: no data past the FAT's end reported"
        fi
        exactly s $((17 * MiB)) $((49 * MiB)) "p1's zero tail after the 16 MiB FAT"
        exactly s $((55 * MiB)) $((55 * MiB + 65536)) "p2's free cluster with the env bytes (no --map)"
        for WHO in $FLASHERS; do
                flash s "$d/img" "$WHO" || continue
                fat_files s $MiB $((48 * MiB))
                rm -f "$TGT"
        done
}

layout7() {
        build_fat_image
        # p1's tail (zeros, garbage underneath), all of p2, all of p3.
        scan m "$d/img" --map part:2 --map 20M:1M --map label:data || return 0
        in_full m $((49 * MiB)) $((8 * MiB)) "--map part:2 (partition 2)"
        in_full m $((20 * MiB)) $MiB "--map 20M:1M"
        in_full m $((57 * MiB)) $((8 * MiB)) "--map label:data (partition 3)"
        covered m $((49 * MiB)) $((57 * MiB)) "--map part:2"
        covered m $((20 * MiB)) $((21 * MiB)) "--map 20M:1M"
        covered m $((57 * MiB)) $((65 * MiB)) "--map label:data"
        exactly m $((17 * MiB)) $((49 * MiB)) "p1's zero tail: only --map 20M:1M" $((20 * MiB)) $((21 * MiB))
        # A --map naming nothing is a usage error of one line.
        run_cmd "$BMAPSCAN" scan -o "$d/x.bmap" --map label:nosuch "$d/img"
        if [ "$RC" != 0 ] && [ "$(wc -l <"$WORK/err")" = 1 ] && grep -q 'nosuch' "$WORK/err"; then
                pass "$L: --map label:nosuch fails ($RC) in one line: $(cat "$WORK/err")"
        else
                fail "$L: --map label:nosuch exits $RC: $(head -c 300 "$WORK/err")"
        fi
        for WHO in $FLASHERS; do
                flash m "$d/img" "$WHO" || continue
                same m "$d/img" $((49 * MiB)) $((57 * MiB)) "--map part:2: all of uboot-env, with the env bytes in free clusters"
                same m "$d/img" $((20 * MiB)) $((21 * MiB)) "--map 20M:1M: zeros in boot's tail"
                same m "$d/img" $((57 * MiB)) $((65 * MiB)) "--map label:data: all of data, with the env bytes in free clusters"
                fat_files m $MiB $((48 * MiB))
                rm -f "$TGT"
        done
}

# ---------------------------------------------------------------- main

for L in $LAYOUTS; do
        t0=$SECONDS
        d=$WORK/l$L
        rm -rf "$d"
        mkdir -p "$d"
        echo "=== layout $L"
        L=l$L
        "layout${L#l}"
        echo "    ($L took $((SECONDS - t0)) s)"
        rm -rf "$d"
done
echo "($((SECONDS - START)) s in all)"
finish
