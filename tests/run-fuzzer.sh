#!/bin/bash
# Runs one libFuzzer harness for a bounded time from a seed corpus made
# here (small real images and the test-data bmaps), in a scratch directory.
set -euo pipefail
fuzzer=$1 name=$2 seconds=${FUZZ_SECONDS:-20}
mkdir -p "${TEST_TMPDIR:-/tmp}"
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cd "$work"
case "$name" in
fuzz-bmap)
        cp "$TESTDATA"/bmaptool/*.v* "$TESTDATA"/blockmap/*.bmap "$work/corpus/"
        ;;
fuzz-layout)
        truncate -s 1M a.img && printf 'label: dos\nstart=63, size=500, type=c\nstart=600, size=1000, type=5\nstart=700, size=200, type=83\n' | sfdisk -q a.img
        truncate -s 1M b.img && printf 'label: gpt\nstart=40, size=800, type=linux\nsize=200, type=swap\n' | sfdisk -q b.img
        truncate -s 256K c.img && mkswap -q c.img
        # Only the interesting head and tail matter; keep seeds small.
        head -c 65536 a.img >corpus/mbr; head -c 65536 b.img >corpus/gpt; cp c.img corpus/swap
        ;;
fuzz-fat)
        for f in 12 16 32; do
                rm -f f$f.img
                mkfs.fat -C -F $f f$f.img $((f == 32 ? 33000 : 2000)) >/dev/null 2>&1 || continue
                head -c 262144 f$f.img >corpus/fat$f
        done
        ;;
esac
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 corpus 2>&1 | tail -15
