#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The flash invariant (SPEC §1) for LVM2 (issue 13), with the real bmaptool.
# No device-mapper here: LVs are created with 'lvcreate -an --zero n', each
# filesystem is made in a file the LV's size and written at the LV's
# segments (from 'lvs --segments'), and read back the same way. Layouts:
#   installer: GPT with an ESP (FAT), /boot (ext4) and a PV holding VG 'vg'
#     with 'root' (XFS when the XFS probe is built in, else ext4; files
#     written through a kernel mount, some deleted) and 'home' (ext4,
#     extended past another LV so that it has two segments), unallocated
#     extents left holding garbage;
#   thin: a PV holding a linear LV and a thin pool (made with vgcfgrestore,
#     as lvcreate needs device-mapper for one): the pool's sub-LVs are
#     mapped whole, and the report says so;
#   twopvs: a VG over two PV images, scanned one at a time: an LV with
#     segments on both is mapped whole on each, an LV on one PV is read.
# For each: scan → bmaptool copy onto a garbage loop device → every LV
# reassembled from the target's segments passes fsck and its files are
# identical to the image's; the PV's label and metadata (everything before
# pe_start), the bytes outside the partitions, and what is mapped whole are
# byte-identical; unallocated extents are not required. EXACTNESS: per LV,
# the bytes mapped in its extents against the filesystem's own used count
# (dumpe2fs, xfs_db), printed: fewer fails, more than 5% over fails.
# Needs loop devices and lvm2 (exit 77 without them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/flash-lib.sh"

LAYOUTS=${FLASH_LAYOUTS:-"installer thin twopvs"}
MIB=$((1024 * 1024))

need_tools bmaptool python3 openssl losetup sfdisk pvcreate vgcreate lvcreate lvextend lvs vgcfgbackup vgcfgrestore \
        mkfs.ext4 e2fsck dumpe2fs mkfs.fat fsck.fat
need_loop

# The XFS probe is another part of issue 13: XFS root once it is built in.
ROOTFS=ext4
if grep -q 'fsprobe_xfs' "$SOURCE_ROOT/fsprobes/registry.c" 2>/dev/null && command -v mkfs.xfs >/dev/null &&
        command -v xfs_db >/dev/null && command -v xfs_repair >/dev/null; then
        ROOTFS=xfs
fi

# LVM sees only the loop devices of this test, keeps nothing outside the
# images (no backup, archive, devices file or hints) and never activates.
export LVM_SYSTEM_DIR=$WORK/lvm
mkdir -p "$LVM_SYSTEM_DIR"
lvm_devices() {
        local a="" l
        for l; do a+="\"a|^$l\$|\", "; done
        cat >"$LVM_SYSTEM_DIR/lvm.conf" <<EOF
devices { filter = [ $a"r|.*|" ] global_filter = [ $a"r|.*|" ] obtain_device_list_from_udev = 0 use_devicesfile = 0 hints = "none" }
global { activation = 0 }
backup { backup = 0 archive = 0 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
EOF
}
# lvmq CMD...: an lvm command, quiet unless it fails.
lvmq() {
        if ! "$@" >"$WORK/lvm.out" 2>&1; then
                echo "    $* fails: $(grep -v -e 'leaked on' -e WARNING "$WORK/lvm.out" | tail -n 3)" >&2
                return 1
        fi
}

# lv_segs VG/LV: "lv_start size pv_dev pv_offset" per segment, in bytes.
lv_segs() {
        local vg=${1%/*} ext
        ext=$(vgs --noheadings --units b --nosuffix -o vg_extent_size "$vg" 2>/dev/null | tr -d ' ')
        lvs -a --noheadings --units b --nosuffix --segments -o seg_start,seg_size,seg_pe_ranges "$1" 2>/dev/null |
                while read -r start size ranges; do
                        local dev=${ranges%%:*} pe=${ranges#*:}
                        pe=${pe%%-*}
                        local pes
                        pes=$(pvs --noheadings --units b --nosuffix -o pe_start "$dev" 2>/dev/null | tr -d ' ')
                        echo "$start $size $dev $((pes + pe * ext))"
                done
}

# put_lv FSFILE SEGS DEV=FILE:OFFSET...: writes FSFILE at the segments; each
# PV device is named with the image file and the PV's offset in it.
put_lv() {
        local fs=$1 segs=$2 start size dev off map file base
        shift 2
        while read -r start size dev off; do
                for map; do
                        [ "${map%%=*}" = "$dev" ] || continue
                        file=${map#*=}
                        base=${file##*:}
                        file=${file%:*}
                        dd if="$fs" of="$file" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
                                skip="$start" count="$size" seek=$((base + off)) status=none
                done
        done <"$segs"
}
# get_lv OUT SEGS DEV=FILE:OFFSET...: the LV reassembled from its segments.
get_lv() {
        local out=$1 segs=$2 start size dev off map file base
        shift 2
        : >"$out"
        while read -r start size dev off; do
                for map; do
                        [ "${map%%=*}" = "$dev" ] || continue
                        file=${map#*=}
                        base=${file##*:}
                        file=${file%:*}
                        dd if="$file" of="$out" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
                                skip=$((base + off)) count="$size" seek="$start" status=none
                done
        done <"$segs"
}
# seg_ranges SEGS DEV BASE: the image byte ranges of the segments on DEV.
seg_ranges() {
        awk -v dev="$2" -v base="$3" '$3 == dev { printf "%d %d lv\n", base + $4, base + $4 + $2 }' "$1"
}

# fill_tree DIR SEED: files of several sizes, some deleted again.
fill_tree() {
        local m=$1 s=$2 i
        mkdir -p "$m/etc" "$m/usr/lib" "$m/var/log"
        for i in $(seq 1 30); do printf 'config %d\n' "$i" >"$m/etc/c$i.conf"; done
        for i in $(seq 1 12); do "$GEN_FILE" "$m/usr/lib/lib$i.so" $((i * 40))K data $((s + i)) >/dev/null; done
        "$GEN_FILE" "$m/var/log/big" 3M data $((s + 50)) >/dev/null
        ln -s ../usr/lib/lib1.so "$m/etc/link"
}

# make_fs TYPE OUT SIZE DIR: a filesystem in a file, filled from DIR; XFS
# (and ext4 for root) through a kernel mount, with some files deleted.
make_fs() {
        local type=$1 out=$2 size=$3 dir=$4
        rm -f "$out"
        truncate -s "$size" "$out"
        case $type in
        ext4)
                mkfs.ext4 -q -F -d "$dir" "$out" >/dev/null 2>&1 || return 1 ;;
        xfs)
                TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs mkfs.xfs -q -f "$out" >/dev/null 2>&1 || return 1
                attach "$out" || return 1
                local l=$ATTACHED
                flash_mount "$out.mnt" "$l" || { detach "$l"; return 1; }
                cp -a "$dir/." "$out.mnt/"
                rm -f "$out.mnt"/usr/lib/lib3.so "$out.mnt"/usr/lib/lib7.so "$out.mnt"/etc/c1*.conf
                sync
                flash_umount "$out.mnt"
                detach "$l"
                rmdir "$out.mnt" ;;
        esac
}
fs_check() {
        case $1 in
        ext4) e2fsck -fn "$2" >"$WORK/fsck" 2>&1 ;;
        xfs) xfs_repair -n -f "$2" >"$WORK/fsck" 2>&1 ;;
        esac
}
# fs_used TYPE FILE: the filesystem's own count of used bytes.
fs_used() {
        case $1 in
        ext4)
                dumpe2fs -h "$2" 2>/dev/null | awk -F: '/^Block count/ {b=$2} /^Free blocks/ {f=$2} /^Block size/ {s=$2} END {print (b - f) * s}' ;;
        xfs)
                xfs_db -r -f -c 'sb 0' -c 'print dblocks fdblocks blocksize' "$2" 2>/dev/null |
                        awk -F' = ' '/^dblocks/ {d=$2} /^fdblocks/ {f=$2} /^blocksize/ {s=$2} END {print (d - f) * s}' ;;
        esac
}

# vol JSON PARTNUM LV FIELD: a field of a volume in the scan's JSON.
vol() {
        python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
for p in j["partitions"]:
    if p["number"] != int(sys.argv[2]):
        continue
    for v in p["volumes"]:
        if v["name"].split("/")[-1] == sys.argv[3]:
            x = v[sys.argv[4]]
            print(json.dumps(x) if isinstance(x, bool) else x)
' "$@"
}

# check_lv NAME TYPE JSON PARTNUM SEGS MAPS_IMG MAPS_TGT: exactness, fsck and
# file trees of an LV read from the image and from the target.
check_lv() {
        local name=$1 type=$2 json=$3 pn=$4 segs=$5 mi=$6 mt=$7 probed mapped used
        probed=$(vol "$json" "$pn" "$name" probed)
        if [ "$probed" = true ]; then
                pass "$L: LV $name read: $(vol "$json" "$pn" "$name" how)"
        else
                fail "$L: LV $name not read: $(vol "$json" "$pn" "$name" how)"
        fi
        get_lv "$d/$name.img-lv" "$segs" $mi
        get_lv "$d/$name.tgt-lv" "$segs" $mt
        mapped=$(vol "$json" "$pn" "$name" mapped_bytes)
        used=$(fs_used "$type" "$d/$name.img-lv")
        echo "    exactness $L $name ($type): the filesystem counts $used bytes used; scan maps $mapped (+$(pct "$mapped" "$used")%)"
        if [ -z "$used" ] || [ "$used" = 0 ]; then
                fail "$L: LV $name: no used count from the filesystem's tools"
        elif [ "$mapped" -lt "$used" ]; then
                fail "$L: LV $name: DATA LOSS: $mapped bytes mapped, $used used"
        elif [ "$mapped" -gt $((used + used / 20)) ]; then
                fail "$L: LV $name: NOT EXACT: $mapped bytes mapped, more than 5% over $used"
        else
                pass "$L: LV $name exact within 5%: $mapped mapped, $used used"
        fi
        if fs_check "$type" "$d/$name.tgt-lv"; then
                pass "$L: LV $name on the target passes fsck"
        else
                fail "$L: LV $name on the target fails fsck: $(tail -c 300 "$WORK/fsck")"
        fi
        local li lt
        attach -r "$d/$name.img-lv" && li=$ATTACHED
        attach -r "$d/$name.tgt-lv" && lt=$ATTACHED
        # XFS refuses a second filesystem with the same UUID: nouuid.
        local opts=ro,norecovery
        [ "$type" != xfs ] || opts=$opts,nouuid
        if flash_mount "$d/mi" -o "$opts" "$li" 2>"$WORK/err" && flash_mount "$d/mt" -o "$opts" "$lt" 2>>"$WORK/err"; then
                compare_trees "$L: LV $name" "$d/mi" "$d/mt"
                flash_umount "$d/mt"
                flash_umount "$d/mi"
        else
                fail "$L: LV $name: cannot mount image or target read-only: $(head -c 300 "$WORK/err")"
                mountpoint -q "$d/mi" && flash_umount "$d/mi"
        fi
        detach "$lt"
        detach "$li"
        rm -f "$d/$name.img-lv" "$d/$name.tgt-lv"
}

# scan_and_flash IMG: scan into $d/bmap and $d/json, flash onto $d/target.
scan_and_flash() {
        local img=$1 size
        size=$(stat -c %s "$img")
        run_cmd "$BMAPSCAN" scan --json -o "$d/bmap" "$img"
        if [ "$RC" != 0 ]; then
                fail "$L: bmapscan scan exits $RC: $(head -c 400 "$WORK/err")"
                return 1
        fi
        cp "$WORK/out" "$d/json"
        garbage "$d/target" "$size" "$L:target:$img"
        attach "$d/target" || { fail "$L: cannot attach the target"; return 1; }
        run_cmd bmaptool copy --bmap "$d/bmap" "$img" "$ATTACHED"
        detach "$ATTACHED"
        if [ "$RC" = 0 ]; then
                pass "$L: bmaptool copy verified every range checksum"
        else
                fail "$L: bmaptool copy exits $RC: $(grep -v ': info: ' "$WORK/err" | tail -n 4)"
                return 1
        fi
}

compare_ranges() {
        if fc compare "$1" "$2" "$3" "$4" >"$WORK/out"; then pass "$(cat "$WORK/out")"; else fail "$(cat "$WORK/out")"; fi
}

layout_installer() {
        local img=$d/image.img esp=$MIB boot=$((9 * MIB)) pv=$((25 * MIB)) pvsize=$((104 * MIB))
        local size=$((pv + pvsize + MIB))
        garbage "$img" "$size" "$L:image"
        printf 'label: gpt\nstart=2048, size=16384, type=uefi\nsize=32768, type=linux\nsize=%d, type=lvm\n' \
                $((pvsize / 512)) | sfdisk -q "$img" >/dev/null
        # ESP and /boot.
        mkdir -p "$d/bootdir/grub"
        for i in 1 2 3; do "$GEN_FILE" "$d/bootdir/vmlinuz-$i" 900K data $((i + 7)) >/dev/null; done
        echo 'menuentry' >"$d/bootdir/grub/grub.cfg"
        make_fs ext4 "$d/boot.fs" $((16 * MIB)) "$d/bootdir" || { fail "$L: mkfs.ext4 /boot"; return; }
        dd if="$d/boot.fs" of="$img" bs=1M seek=$((boot / MIB)) conv=notrunc status=none
        truncate -s $((8 * MIB)) "$d/esp.fs"
        mkfs.fat -n ESP "$d/esp.fs" >/dev/null 2>&1 || { fail "$L: mkfs.fat"; return; }
        dd if="$d/esp.fs" of="$img" bs=1M seek=$((esp / MIB)) conv=notrunc status=none
        rm -f "$d/boot.fs" "$d/esp.fs"

        # The PV, over garbage: LVM writes only its label and metadata.
        attach -o "$pv" --sizelimit "$pvsize" "$img" || { fail "$L: cannot attach the PV"; return; }
        local l=$ATTACHED
        lvm_devices "$l"
        if ! { lvmq pvcreate "$l" && lvmq vgcreate -s 1M vg "$l" &&
                lvmq lvcreate -an --zero n -n root -L 48M vg && lvmq lvcreate -an --zero n -n home -L 12M vg &&
                lvmq lvcreate -an --zero n -n spacer -L 4M vg && lvmq lvextend -L 24M vg/home; }; then
                detach "$l"
                fail "$L: cannot build the VG"
                return
        fi
        lv_segs vg/root >"$d/root.segs"
        lv_segs vg/home >"$d/home.segs"
        local pe_start
        pe_start=$(pvs --noheadings --units b --nosuffix -o pe_start "$l" 2>/dev/null | tr -d ' ')
        detach "$l"
        local dev
        dev=$(awk '{print $3; exit}' "$d/root.segs")
        if [ "$(wc -l <"$d/home.segs")" = 2 ]; then
                pass "$L: LV home has two segments: $(tr '\n' ';' <"$d/home.segs")"
        else
                fail "$L: LV home should have two segments: $(cat "$d/home.segs")"
        fi

        mkdir -p "$d/rootdir" "$d/homedir"
        fill_tree "$d/rootdir" 100
        fill_tree "$d/homedir" 200
        "$GEN_FILE" "$d/homedir/photo" 5M data 300 >/dev/null
        make_fs "$ROOTFS" "$d/root.fs" $((48 * MIB)) "$d/rootdir" || { fail "$L: cannot make the $ROOTFS root"; return; }
        make_fs ext4 "$d/home.fs" $((24 * MIB)) "$d/homedir" || { fail "$L: cannot make the ext4 home"; return; }
        put_lv "$d/root.fs" "$d/root.segs" "$dev=$img:$pv"
        put_lv "$d/home.fs" "$d/home.segs" "$dev=$img:$pv"
        rm -f "$d/root.fs" "$d/home.fs"

        scan_and_flash "$img" || return
        local pn
        pn=$(fc json-parts "$d/json" | awk '$1 == "part" && $8 == "LVM2_member" {print $2}')
        local how
        how=$(fc json-parts "$d/json" | awk -v n="$pn" '$1 == "part" && $2 == n {for (i = 9; i <= NF; i++) printf "%s ", $i}')
        if grep -q 'LVM2 PV of VG vg' <<<"$how"; then pass "$L: the PV is read: $how"; else fail "$L: the PV is not read: $how"; fi
        check_lv root "$ROOTFS" "$d/json" "$pn" "$d/root.segs" "$dev=$img:$pv" "$dev=$d/target:$pv"
        check_lv home ext4 "$d/json" "$pn" "$d/home.segs" "$dev=$img:$pv" "$dev=$d/target:$pv"
        # The spacer holds garbage no filesystem claims: mapped whole.
        if [ "$(vol "$d/json" "$pn" spacer mapped_bytes)" = $((4 * MIB)) ]; then
                pass "$L: LV spacer (no filesystem) mapped whole"
        else
                fail "$L: LV spacer should be mapped whole: $(vol "$d/json" "$pn" spacer how)"
        fi
        # Unallocated extents are free: the PV maps its label, metadata and LVs' used bytes only.
        local pvmapped
        pvmapped=$(fc mapped-in "$d/bmap" "$pv" $((pv + pvsize)))
        echo "    $L: the PV maps $pvmapped of $pvsize bytes"
        [ "$pvmapped" -lt $((pvsize / 2)) ] && pass "$L: unallocated extents and LVs' free space left out" ||
                fail "$L: the PV maps $pvmapped of $pvsize bytes"

        # Byte for byte: tables, ESP, /boot (all mapped: no probe needed to say so
        # would be wrong: they are whole or probed; compare the PV's head and the tables).
        printf '%d %d primary GPT\n%d %d PV label and metadata\n%d %d backup GPT and tail\n' \
                0 $esp "$pv" $((pv + pe_start)) $((pv + pvsize)) "$size" >"$d/same"
        compare_ranges "$img" "$d/target" "$d/same" "$L: tables, PV label and metadata"
        extract "$d/target" "$boot" $((16 * MIB)) "$d/boot.t"
        e2fsck -fn "$d/boot.t" >"$WORK/fsck" 2>&1 && pass "$L: /boot on the target passes e2fsck" ||
                fail "$L: /boot on the target: $(tail -c 300 "$WORK/fsck")"
        extract "$d/target" "$esp" $((8 * MIB)) "$d/esp.t"
        fsck.fat -n "$d/esp.t" >"$WORK/fsck" 2>&1 && pass "$L: the ESP on the target passes fsck.fat" ||
                fail "$L: the ESP on the target: $(tail -c 300 "$WORK/fsck")"
        rm -f "$d/boot.t" "$d/esp.t"

        # info shows the LVs under the PV, and the picture marks them.
        run_cmd "$BMAPSCAN" info "$img"
        if grep -q '^ .* LV root .*'"$ROOTFS" "$WORK/out" && grep -q '^ .* LV home .*ext4' "$WORK/out" &&
                grep -q 'l/L an LVM2 PV' "$WORK/out"; then
                pass "$L: info lists the LVs under their PV"
        else
                fail "$L: info does not list the LVs: $(cat "$WORK/out")"
        fi
}

layout_thin() {
        local img=$d/image.img size=$((64 * MIB))
        garbage "$img" "$size" "$L:image"
        attach "$img" || { fail "$L: cannot attach"; return; }
        local l=$ATTACHED
        lvm_devices "$l"
        if ! { lvmq pvcreate "$l" && lvmq vgcreate -s 1M vg "$l" && lvmq lvcreate -an --zero n -n root -L 16M vg &&
                lvmq lvcreate -an --zero n -n pdata -L 16M vg && lvmq lvcreate -an --zero n -n pmeta -L 4M vg &&
                lvmq vgcfgbackup -f "$d/vg.txt" vg; }; then
                detach "$l"
                fail "$L: cannot build the VG"
                return
        fi
        # lvcreate makes a thin pool only through device-mapper: write the
        # pool into the metadata, as lvconvert would, and restore it.
        python3 - "$d/vg.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
for old, name in (("pdata", "pool_tdata"), ("pmeta", "pool_tmeta")):
    t = t.replace("\t%s {" % old, "\t%s {" % name)
    i = t.index("\t%s {" % name)
    j = t.index("status = [", i)
    k = t.index("]", j)
    t = t[:j] + t[j:k].replace(', "VISIBLE"', "") + t[k:]
pool = '''
pool {
id = "Pool00-aaaa-bbbb-cccc-dddd-eeee-ffffff"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 16
type = "thin-pool"
metadata = "pool_tmeta"
pool = "pool_tdata"
transaction_id = 1
chunk_size = 128
discards = "passdown"
zero_new_blocks = 1
}
}
thin1 {
id = "Thin00-aaaa-bbbb-cccc-dddd-eeee-ffffff"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 1
segment1 {
start_extent = 0
extent_count = 64
type = "thin"
thin_pool = "pool"
transaction_id = 0
device_id = 1
}
}
'''
i = t.index("logical_volumes {") + len("logical_volumes {")
open(sys.argv[1], "w").write(t[:i] + pool + t[i:])
PY
        if ! lvmq vgcfgrestore --force -f "$d/vg.txt" vg; then
                detach "$l"
                fail "$L: vgcfgrestore of the thin pool fails"
                return
        fi
        lv_segs vg/root >"$d/root.segs"
        lv_segs vg/pool_tdata >"$d/tdata.segs"
        lv_segs vg/pool_tmeta >"$d/tmeta.segs"
        lvs -a -o lv_name,segtype vg >"$d/lvs" 2>&1 && grep -q "thin-pool" "$d/lvs" && pass "$L: LVM lists a thin pool" ||
                fail "$L: LVM does not list the thin pool: $(grep -v leaked "$d/lvs" | tail -n 4)"
        detach "$l"
        local dev
        dev=$(awk '{print $3; exit}' "$d/root.segs")
        mkdir -p "$d/rootdir"
        fill_tree "$d/rootdir" 400
        make_fs ext4 "$d/root.fs" $((16 * MIB)) "$d/rootdir" || { fail "$L: mkfs root"; return; }
        put_lv "$d/root.fs" "$d/root.segs" "$dev=$img:0"
        rm -f "$d/root.fs"

        scan_and_flash "$img" || return
        local n
        for n in pool_tdata pool_tmeta; do
                local here mapped how
                here=$(vol "$d/json" 0 $n bytes_here)
                mapped=$(vol "$d/json" 0 $n mapped_bytes)
                how=$(vol "$d/json" 0 $n how)
                if [ -n "$here" ] && [ "$here" = "$mapped" ] && [ "$here" -gt 0 ] && grep -q 'thin-pool' <<<"$how"; then
                        pass "$L: $n mapped whole ($mapped bytes): $how"
                else
                        fail "$L: $n should be mapped whole, saying thin-pool: $mapped of $here: $how"
                fi
        done
        grep -q 'thin-pool LV' <<<"$(vol "$d/json" 0 pool how)" && pass "$L: the report names the pool: $(vol "$d/json" 0 pool how)" ||
                fail "$L: the pool's row: $(vol "$d/json" 0 pool how)"
        { seg_ranges "$d/tdata.segs" "$dev" 0; seg_ranges "$d/tmeta.segs" "$dev" 0; } >"$d/pool"
        compare_ranges "$img" "$d/target" "$d/pool" "$L: the thin pool's data and metadata"
        check_lv root ext4 "$d/json" 0 "$d/root.segs" "$dev=$img:0" "$dev=$d/target:0"
}

layout_twopvs() {
        local size=$((48 * MIB)) a=$d/pv1.img b=$d/pv2.img
        garbage "$a" "$size" "$L:a"
        garbage "$b" "$size" "$L:b"
        attach "$a" || { fail "$L: cannot attach"; return; }
        local la=$ATTACHED
        attach "$b" || { fail "$L: cannot attach"; return; }
        local lb=$ATTACHED
        lvm_devices "$la" "$lb"
        if ! { lvmq pvcreate "$la" "$lb" && lvmq vgcreate -s 1M vg "$la" "$lb" &&
                lvmq lvcreate -an --zero n -n root -L 16M vg "$la" && lvmq lvcreate -an --zero n -n span -L 8M vg "$la" &&
                lvmq lvextend -L 16M vg/span "$lb" && lvmq lvcreate -an --zero n -n data -L 16M vg "$lb"; }; then
                detach "$lb"
                detach "$la"
                fail "$L: cannot build the VG"
                return
        fi
        lv_segs vg/root >"$d/root.segs"
        lv_segs vg/span >"$d/span.segs"
        lv_segs vg/data >"$d/data.segs"
        detach "$lb"
        detach "$la"
        mkdir -p "$d/t1" "$d/t2" "$d/t3"
        fill_tree "$d/t1" 500
        fill_tree "$d/t2" 600
        fill_tree "$d/t3" 700
        make_fs ext4 "$d/fs" $((16 * MIB)) "$d/t1" && put_lv "$d/fs" "$d/root.segs" "$la=$a:0"
        make_fs ext4 "$d/fs" $((16 * MIB)) "$d/t2" && put_lv "$d/fs" "$d/span.segs" "$la=$a:0" "$lb=$b:0"
        make_fs ext4 "$d/fs" $((16 * MIB)) "$d/t3" && put_lv "$d/fs" "$d/data.segs" "$lb=$b:0"
        rm -f "$d/fs"

        local img name lv dev
        for img in "$a" "$b"; do
                [ "$img" = "$a" ] && { dev=$la; lv=root; } || { dev=$lb; lv=data; }
                name=$(basename "$img" .img)
                scan_and_flash "$img" || return
                local here mapped how
                here=$(vol "$d/json" 0 span bytes_here)
                mapped=$(vol "$d/json" 0 span mapped_bytes)
                how=$(vol "$d/json" 0 span how)
                if [ "$here" = $((8 * MIB)) ] && [ "$mapped" = "$here" ] && grep -q 'other PVs' <<<"$how"; then
                        pass "$L: $name: LV span (on two PVs) mapped whole here: $how"
                else
                        fail "$L: $name: LV span should be mapped whole ($mapped of $here): $how"
                fi
                seg_ranges "$d/span.segs" "$dev" 0 >"$d/span"
                compare_ranges "$img" "$d/target" "$d/span" "$L: $name: LV span's extents here"
                check_lv $lv ext4 "$d/json" 0 "$d/$lv.segs" "$dev=$img:0" "$dev=$d/target:0"
        done
}

for L in $LAYOUTS; do
        echo "== $L (root: $ROOTFS)"
        d=$WORK/$L
        mkdir -p "$d"
        t0=$SECONDS
        "layout_$L"
        echo "    ($L took $((SECONDS - t0)) s)"
        rm -rf "$d"
done
finish
