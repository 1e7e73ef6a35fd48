#!/bin/bash
# The quick start: installs the dependencies, builds bmapscan, makes a sample
# disk image (an ext4 filesystem holding some files, as a sparse file), writes
# its bmap with 'bmapscan create', describes it with 'bmapscan info', and
# proves the bmap right by flashing the image with the real 'bmaptool copy'
# (which checks every range checksum) and comparing the result.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null
BMAPSCAN=$PWD/build/src/bmapscan

demo=build/demo
rm -rf "$demo"
mkdir -p "$demo/files"
echo "== making a sample image in $demo"
# Some files to put in the filesystem: documentation, a little random data.
cp -r /usr/share/doc/bmap-tools /usr/share/doc/e2fsprogs "$demo/files/" 2>/dev/null || true
head -c 8M /dev/urandom >"$demo/files/random.bin"
seq 1 200000 >"$demo/files/numbers.txt"
truncate -s 256M "$demo/sample.img"
mkfs.ext4 -q -F -L demo -d "$demo/files" "$demo/sample.img"
echo "   sample.img: $(du -h --apparent-size "$demo/sample.img" | cut -f1) apparent, $(du -h "$demo/sample.img" | cut -f1) on disk"

echo "== bmapscan create -o sample.bmap sample.img"
start=$(date +%s.%N)
"$BMAPSCAN" create -o "$demo/sample.bmap" "$demo/sample.img"
end=$(date +%s.%N)
python3 -c "print('   done in %.3f s' % ($end - $start))"

echo "== bmapscan info sample.bmap"
"$BMAPSCAN" info "$demo/sample.bmap" | sed 's/^/   /'

echo "== bmaptool copy --bmap sample.bmap sample.img flashed.img (checks every range checksum)"
bmaptool -q copy --bmap "$demo/sample.bmap" "$demo/sample.img" "$demo/flashed.img"
cmp "$demo/sample.img" "$demo/flashed.img"
echo "   flashed.img is identical to sample.img"
echo "demo: OK"
