#!/bin/bash
# bmapscan create against the real bmaptool create (bmap-tools 3.6): on files
# made by gen-file with fixed seeds, our bmap must be byte-identical to its
# (with and without checksums, on stdout and with -o), bmaptool copy must
# accept ours and reproduce the image, and the refusals must be clean.
. "$(dirname "$0")/lib.sh"

: "${GEN_FILE:?GEN_FILE must point at the gen-file binary}"
if ! command -v bmaptool >/dev/null; then
        echo "bmaptool is not installed: skipping"
        exit 77
fi
START=$SECONDS
K=1024
M=$((1024 * 1024))

# show_diff A B: the first lines where two files differ.
show_diff() {
        diff "$1" "$2" | head -n 20 | sed 's/^/    /' || true
}

# same NAME OURS REF: ours is byte-identical to bmaptool's.
same() {
        local name=$1 ours=$2 ref=$3
        if cmp -s "$ours" "$ref"; then
                pass "$name"
        else
                fail "$name: differs from bmaptool ($(cmp "$ours" "$ref" 2>&1 | head -n 1)); diff ours bmaptool:"
                show_diff "$ours" "$ref"
        fi
}

# check_case NAME SIZE MODE SEED [OPTIONS...]: generates the file and runs
# every comparison on it. NOCOPY=1 leaves out bmaptool copy (for huge
# sparse files, which cmp would take long to read).
check_case() {
        local name=$1 size=$2 nocopy=${NOCOPY:-0}
        shift 2
        local f=$WORK/$name.img d=$WORK/$name t0
        t0=$(date +%s%N)
        echo "-- $name: gen-file $size $*"
        mkdir -p "$d"
        if ! "$GEN_FILE" "$f" "$size" "$@" 2>"$d/gen.err"; then
                fail "$name: gen-file $size $* failed: $(cat "$d/gen.err")"
                return
        fi

        # bmaptool's answers: stdout, --no-checksum, -o.
        if ! bmaptool create "$f" >"$d/ref.bmap" 2>"$d/ref.err" ||
                ! bmaptool create --no-checksum "$f" >"$d/ref-nc.bmap" 2>>"$d/ref.err" ||
                ! bmaptool create -o "$d/ref-o.bmap" "$f" 2>>"$d/ref.err"; then
                fail "$name: bmaptool create failed (gen-file $size $*): $(head -c 400 "$d/ref.err")"
                return
        fi

        # Ours on stdout; exit 0 and the no-holes warning exactly when bmaptool warns.
        run_cmd "$BMAPSCAN" create "$f"
        if [ "$RC" != 0 ]; then
                fail "$name: bmapscan create exited $RC: $(head -c 400 "$WORK/err")"
                return
        fi
        cp "$WORK/out" "$d/ours.bmap"
        cp "$WORK/err" "$d/ours.err"
        same "$name: create (stdout)" "$d/ours.bmap" "$d/ref.bmap"

        local blocks mapped
        blocks=$(sed -n 's|.*<BlocksCount> *\([0-9]*\) *</BlocksCount>.*|\1|p' "$d/ref.bmap")
        mapped=$(sed -n 's|.*<MappedBlocksCount> *\([0-9]*\) *</MappedBlocksCount>.*|\1|p' "$d/ref.bmap")
        if [ "$blocks" = "$mapped" ]; then
                if grep -q "no holes" "$d/ours.err"; then
                        pass "$name: warns that there are no holes"
                else
                        fail "$name: all $blocks blocks mapped but no 'no holes' warning; stderr: $(cat "$d/ours.err")"
                fi
        else
                if [ ! -s "$d/ours.err" ]; then
                        pass "$name: quiet ($mapped of $blocks blocks mapped)"
                else
                        fail "$name: $mapped of $blocks blocks mapped, yet stderr says: $(head -c 400 "$d/ours.err")"
                fi
        fi

        run_cmd "$BMAPSCAN" create --no-checksum "$f"
        if [ "$RC" != 0 ]; then
                fail "$name: create --no-checksum exited $RC: $(head -c 400 "$WORK/err")"
        else
                cp "$WORK/out" "$d/ours-nc.bmap"
                same "$name: create --no-checksum" "$d/ours-nc.bmap" "$d/ref-nc.bmap"
        fi

        # -o, over a stale longer file that must be replaced entirely.
        head -c 100000 /dev/urandom | base64 >"$d/ours-o.bmap"
        run_cmd "$BMAPSCAN" create -o "$d/ours-o.bmap" "$f"
        if [ "$RC" != 0 ]; then
                fail "$name: create -o exited $RC: $(head -c 400 "$WORK/err")"
        elif [ -s "$WORK/out" ]; then
                fail "$name: create -o also wrote $(wc -c <"$WORK/out") bytes on stdout"
        else
                same "$name: create -o" "$d/ours-o.bmap" "$d/ref-o.bmap"
        fi

        # bmaptool copy with our bmap: it verifies our checksums as it copies.
        if [ "$nocopy" = 1 ]; then
                :
        elif bmaptool copy --bmap "$d/ours.bmap" "$f" "$d/target" >"$d/copy.out" 2>&1; then
                if cmp -s "$f" "$d/target"; then
                        pass "$name: bmaptool copy with our bmap reproduces the image"
                else
                        fail "$name: bmaptool copy with our bmap gave a different file: $(cmp "$f" "$d/target" 2>&1 | head -n 1)"
                fi
        else
                fail "$name: bmaptool copy rejected our bmap:"
                tail -n 5 "$d/copy.out" | sed 's/^/    /'
        fi
        rm -rf "$d" "$f"
        echo "   ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

echo "== generated files"
# Tiny files around one block, as data and as random (hole-y) layouts.
check_case "data-1" 1 data 1
check_case "random-1" 1 random 1
check_case "data-4095" 4095 data 4095
check_case "random-4095" 4095 random 5
check_case "data-4096" 4096 data 4096
check_case "random-4096" 4096 random 4096
check_case "data-4097" 4097 data 4097
check_case "random-4097" 4097 random 1
# Whole-hole files, block multiples or not.
for size in 1 4095 4096 4097 $((M)) 10000001 $((64 * M + 1)); do
        check_case "holes-$size" "$size" holes 0
done
# No holes at all.
check_case "data-3M+123" $((3 * M + 123)) data 3
check_case "zeros-2M+5" $((2 * M + 5)) zeros 0
check_case "data-8M" $((8 * M)) data 8
# Sizes whose comments round up to the next unit (bmaptool prints
# "1024.0 KiB"), and TiB-sized sparse files.
check_case "data-1M-1" $((M - 1)) data 9
NOCOPY=1 check_case "holes-1G-1" $((1024 * M - 1)) holes 0
NOCOPY=1 check_case "holes-16T-4K" $((16 * 1024 * 1024 * M - 4096)) holes 0
NOCOPY=1 check_case "extents-15T+12345" $((15 * 1024 * 1024 * M + 12345)) extents 10 3M
# Random holes, various sizes and seeds.
check_case "random-100000" 100000 random 11
check_case "random-1M+1" $((M + 1)) random 12
check_case "random-7M+1" $((7 * M + 1)) random 13
check_case "random-16M" $((16 * M)) random 14
check_case "random-33M+4095" $((33 * M + 4095)) random 15
check_case "random-64M" $((64 * M)) random 16
for seed in 50 51 52 53 54 55; do
        check_case "random-small-$seed" $((seed * 49999 % (3 * M) + 1)) random "$seed" maxpiece=$(((seed % 5 + 1) * 3))K
done
# Many small pieces: several thousand extents, past both tools' FIEMAP batch
# sizes (ours 1024, bmaptool's 4680).
check_case "random-many-56M" $((56 * M)) random 17 maxpiece=1K
# The last, partial block: mapped, or a hole.
check_case "tail-data-9M+100" $((9 * M + 100)) random 18 tail=data
check_case "tail-hole-9M+100" $((9 * M + 100)) random 19 tail=hole
check_case "tail-data-5000" 5000 random 20 tail=data
check_case "tail-hole-12289" 12289 random 21 tail=hole
# Preallocated (unwritten) regions, some partly written, some past EOF.
check_case "falloc-5M" $((5 * M)) falloc 22
check_case "falloc-20M+17" $((20 * M + 17)) falloc 23
check_case "falloc-48M" $((48 * M)) falloc 24
check_case "falloc-tail-data-8M+1" $((8 * M + 1)) falloc 25 tail=data
check_case "falloc-tail-data-6M" $((6 * M)) falloc 26 tail=data
check_case "falloc-tail-hole-12M" $((12 * M)) falloc 27 tail=hole
check_case "falloc-many-16M" $((16 * M)) falloc 28 maxpiece=8K
for seed in 60 61 62 63 64 65; do
        check_case "falloc-small-$seed" $((seed * 77777 % (2 * M) + 1)) falloc "$seed" tail=data
done
# A few extents spread over a sparse file, as in the benchmark.
check_case "extents-48M" $((48 * M)) extents 29 $((12 * M))

echo "== refusals"
img=$WORK/refuse.img
"$GEN_FILE" "$img" $((300 * K + 7)) random 40
cp "$img" "$WORK/refuse.orig"

: >"$WORK/empty.img"
run_cmd "$BMAPSCAN" create "$WORK/empty.img"
expect "empty file refused with exit 1" 1 "empty"
one_line "empty file"
[ ! -s "$WORK/out" ] && pass "empty file: nothing on stdout" || fail "empty file: wrote on stdout"

mkdir -p "$WORK/adir"
run_cmd "$BMAPSCAN" create "$WORK/adir"
expect "directory refused with exit 1" 1
one_line "directory"
[ ! -s "$WORK/out" ] && pass "directory: nothing on stdout" || fail "directory: wrote on stdout"

run_cmd "$BMAPSCAN" create "$WORK/does-not-exist.img"
expect "missing image refused with exit 1" 1 "does-not-exist.img"
one_line "missing image"

run_cmd "$BMAPSCAN" create -o "$img" "$img"
expect "-o IMAGE (same path) refused with exit 1" 1
one_line "-o IMAGE"
cmp -s "$img" "$WORK/refuse.orig" && pass "-o IMAGE: image unchanged" || fail "-o IMAGE: the image was changed"

ln -s "$img" "$WORK/refuse-symlink"
run_cmd "$BMAPSCAN" create -o "$WORK/refuse-symlink" "$img"
expect "-o symlink to IMAGE refused with exit 1" 1
cmp -s "$img" "$WORK/refuse.orig" && pass "-o symlink: image unchanged" || fail "-o symlink: the image was changed"
[ -L "$WORK/refuse-symlink" ] && pass "-o symlink: still a symlink" || fail "-o symlink: the symlink was replaced"

ln "$img" "$WORK/refuse-hardlink"
run_cmd "$BMAPSCAN" create -o "$WORK/refuse-hardlink" "$img"
expect "-o hard link to IMAGE refused with exit 1" 1
cmp -s "$img" "$WORK/refuse.orig" && pass "-o hard link: image unchanged" || fail "-o hard link: the image was changed"

run_cmd "$BMAPSCAN" create -o "$WORK/adir/sub/x.bmap" "$img"
expect "-o in a missing directory fails with exit 1" 1
one_line "-o in a missing directory"

echo "== took $((SECONDS - START)) s"
finish
