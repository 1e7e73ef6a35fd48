#!/bin/bash
# shellcheck disable=SC2317 # functions called through variables
# The benchmark of SPEC section 6: bmapscan against the tool users would
# otherwise run, side by side on the same data, in one run.
#
#   scripts/bench.sh [--runs N] [--scratch DIR] [WORKLOAD...]
#
# Builds the project if needed (in $BUILD_DIR, default $REPO/build), prepares
# each workload's files in the scratch directory (default $REPO/build/bench;
# a file already there with the right size and recipe is reused), then runs
# bmapscan and the peer alternately, N times each (default 5, at least 5),
# after one untimed run of each to warm the page cache, and prints the median
# wall-clock times. Times are for a warm page cache: they measure CPU work,
# not the disk.
#
# Adding a workload: write a function workload_NAME that prepares its files
# and calls bench_pair (see workload_create), and add NAME to WORKLOADS.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO/build}
RUNS=5
SCRATCH=$REPO/build/bench
WORKLOADS=(create)
SELECTED=()

usage() {
        echo "usage: $0 [--runs N] [--scratch DIR] [WORKLOAD...]"
        echo "workloads: ${WORKLOADS[*]}"
        echo "environment: BUILD_DIR (default \$REPO/build)"
}

while [ $# -gt 0 ]; do
        case $1 in
        --runs)
                RUNS=${2:?--runs needs a number}
                shift 2
                ;;
        --runs=*)
                RUNS=${1#--runs=}
                shift
                ;;
        --scratch)
                SCRATCH=${2:?--scratch needs a directory}
                shift 2
                ;;
        --scratch=*)
                SCRATCH=${1#--scratch=}
                shift
                ;;
        -h | --help)
                usage
                exit 0
                ;;
        -*)
                usage >&2
                exit 2
                ;;
        *)
                SELECTED+=("$1")
                shift
                ;;
        esac
done
if ! [[ $RUNS =~ ^[0-9]+$ ]] || [ "$RUNS" -lt 5 ]; then
        echo "bench: --runs must be a number of at least 5" >&2
        exit 2
fi
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${WORKLOADS[@]}")
for w in "${SELECTED[@]}"; do
        if ! [[ " ${WORKLOADS[*]} " == *" $w "* ]]; then
                echo "bench: unknown workload '$w' (known: ${WORKLOADS[*]})" >&2
                exit 2
        fi
done

if ! command -v bmaptool >/dev/null; then
        echo "bench: bmaptool is not installed (Debian: apt-get install bmap-tools); it is the peer every workload is measured against" >&2
        exit 1
fi

# ---------------------------------------------------------------- helpers

log() { echo "bench: $*" >&2; }

build() {
        if [ ! -d "$BUILD_DIR" ] || [ ! -f "$BUILD_DIR/build.ninja" ]; then
                log "configuring $BUILD_DIR"
                meson setup "$BUILD_DIR" "$REPO" >/dev/null
        fi
        log "building in $BUILD_DIR"
        meson compile -C "$BUILD_DIR" >/dev/null
        BMAPSCAN=$BUILD_DIR/src/bmapscan
        [ -x "$BMAPSCAN" ] || { log "no $BMAPSCAN after the build"; exit 1; }
        GEN_FILE=$BUILD_DIR/tests/gen-file
        if [ ! -x "$GEN_FILE" ]; then
                # Tests disabled in that build: gen-file is standalone, build it here.
                GEN_FILE=$SCRATCH/gen-file
                cc -O2 -o "$GEN_FILE" "$REPO/tests/gen-file.c"
        fi
}

# timed FUNCTION: runs it and appends "WALL CPU" (seconds; CPU is user +
# system, of all its threads and children) to the file $TIMES.
timed() {
        local TIMEFORMAT='%3R %3U %3S' t
        t=$( { time "$1" 2>>"$SCRATCH/bench.err"; } 2>&1) || {
                log "$1 failed:"
                tail -n 5 "$SCRATCH/bench.err" >&2
                exit 1
        }
        awk '{ printf "%s %.3f\n", $1, $2 + $3 }' <<<"$t" >>"$TIMES"
}

# median: the median of the numbers on stdin.
median() {
        sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# prepare_file PATH SIZE GEN-FILE-ARGS...: makes PATH with gen-file unless
# it is already there with this size and recipe.
prepare_file() {
        local path=$1 size=$2
        shift 2
        local recipe want
        recipe="gen-file $size $* (gen-file.c $(sha256sum "$REPO/tests/gen-file.c" | cut -c1-16))"
        want=$(numfmt --from=iec "$size")
        if [ -f "$path" ] && [ "$(stat -c %s "$path")" = "$want" ] && [ "$(cat "$path.recipe" 2>/dev/null)" = "$recipe" ]; then
                log "reusing $path ($recipe)"
                return
        fi
        log "generating $path ($recipe)"
        rm -f "$path.recipe"
        "$GEN_FILE" "$path" "$size" "$@"
        sync -f "$path" 2>/dev/null || sync
        echo "$recipe" >"$path.recipe"
}

ROWS=()
STATUS=0

# bench_pair WORKLOAD PEER-NAME TARGET-RATIO OURS-FUNCTION PEER-FUNCTION
# [COMPARE-A COMPARE-B]: runs each function once untimed (warming the page
# cache), then RUNS times each, alternately, and records the medians. With
# COMPARE-A and COMPARE-B, the two files (the outputs of the warm-up runs)
# must be byte-identical.
bench_pair() {
        local name=$1 peer=$2 target=$3 ours_fn=$4 peer_fn=$5 cmp_a=${6:-} cmp_b=${7:-}
        local i same="-"

        log "$name: warm-up run of each (untimed)"
        "$ours_fn"
        "$peer_fn"
        if [ -n "$cmp_a" ]; then
                if cmp -s "$cmp_a" "$cmp_b"; then
                        same="identical"
                        echo "$name: bmapscan and $peer outputs are byte-identical ($(stat -c %s "$cmp_a") bytes)"
                else
                        same="DIFFER"
                        STATUS=1
                        echo "$name: bmapscan and $peer outputs DIFFER:"
                        diff "$cmp_a" "$cmp_b" | head -n 10 | sed 's/^/    /' || true
                fi
        fi
        local ours_t=$SCRATCH/$name.bmapscan.times peer_t=$SCRATCH/$name.peer.times
        : >"$ours_t"
        : >"$peer_t"
        for ((i = 1; i <= RUNS; i++)); do
                # Alternate which goes first, so that neither always follows the other.
                if ((i % 2)); then
                        TIMES=$ours_t timed "$ours_fn"
                        TIMES=$peer_t timed "$peer_fn"
                else
                        TIMES=$peer_t timed "$peer_fn"
                        TIMES=$ours_t timed "$ours_fn"
                fi
                log "$name: run $i/$RUNS done"
        done
        local ours_med peer_med ratio met
        ours_med=$(cut -d' ' -f1 "$ours_t" | median)
        peer_med=$(cut -d' ' -f1 "$peer_t" | median)
        echo "$name: bmapscan wall (s): $(cut -d' ' -f1 "$ours_t" | tr '\n' ' '); median CPU $(cut -d' ' -f2 "$ours_t" | median) s"
        echo "$name: $peer wall (s): $(cut -d' ' -f1 "$peer_t" | tr '\n' ' '); median CPU $(cut -d' ' -f2 "$peer_t" | median) s"
        ratio=$(awk -v p="$peer_med" -v o="$ours_med" 'BEGIN { if (o > 0) printf "%.1fx", p / o; else print "inf" }')
        met=$(awk -v p="$peer_med" -v o="$ours_med" -v t="$target" 'BEGIN { print (o > 0 && p / o >= t) ? "yes" : "NO" }')
        ROWS+=("$name|$(printf '%.3f' "$ours_med")|$(printf '%.3f' "$peer_med")|$peer|$ratio|>= ${target}x|$met|$same")
}

# -------------------------------------------------------------- workloads

# create: bmap with checksums of a 2 GiB sparse image holding about 1 GiB
# of data in many extents, against bmaptool create.
CREATE_IMG=
create_ours() { "$BMAPSCAN" create "$CREATE_IMG" >"$SCRATCH/create.bmapscan.bmap"; }
create_peer() { bmaptool create "$CREATE_IMG" >"$SCRATCH/create.bmaptool.bmap"; }
workload_create() {
        CREATE_IMG=$SCRATCH/create-2G.img
        prepare_file "$CREATE_IMG" 2G extents 1 1G
        local ranges
        ranges=$("$BMAPSCAN" create --no-checksum "$CREATE_IMG" | grep -c "<Range")
        echo "create: $CREATE_IMG: 2 GiB with $(du -h "$CREATE_IMG" | cut -f1) allocated, in $ranges ranges"
        bench_pair create "bmaptool create" 2 create_ours create_peer \
                "$SCRATCH/create.bmapscan.bmap" "$SCRATCH/create.bmaptool.bmap"
}

# Later: workload_scan (scan of an expanded vendor image vs bmaptool create,
# >= 3x), workload_copy (copy of gz/xz/zstd images vs bmaptool copy, >= 2x),
# workload_sparse (scan --no-checksum of a 1 TiB sparse image, < 1 s). Each
# is one function like workload_create, plus its name in WORKLOADS.

# ------------------------------------------------------------------- main

mkdir -p "$SCRATCH"
build
echo "bench: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(bmaptool --version 2>&1 | head -n 1), scratch $SCRATCH"
echo "bench: each tool runs once untimed first, so the page cache is warm and the"
echo "bench: times measure CPU work, not the disk; then $RUNS timed runs each, alternating."
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
        echo "bench: WARNING: the machine is busy (load average $load on $(nproc) CPUs): wall times and ratios are unreliable"
fi
: >"$SCRATCH/bench.err"
for w in "${SELECTED[@]}"; do
        "workload_$w"
done

echo
{
        echo "workload|bmapscan (s)|peer (s)|peer name|ratio (peer/bmapscan)|target|met|output"
        printf '%s\n' "${ROWS[@]}"
} | awk -F '|' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NF; rows = NR }
        END {
                for (r = 1; r <= rows; r++) {
                        line = ""
                        for (i = 1; i <= n; i++) line = line (i < n ? sprintf("%-" w[i] "s | ", cell[r, i]) : cell[r, i])
                        print line
                        if (r == 1) { sep = ""; for (i = 1; i <= n; i++) sep = sep sprintf(i < n ? "%s-|-" : "%s", substr("------------------------------", 1, w[i])); print sep }
                }
        }'
echo "(median wall time of $RUNS runs each, warm page cache)"
exit $STATUS
