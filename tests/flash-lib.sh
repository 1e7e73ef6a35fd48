# SPDX-License-Identifier: GPL-2.0-or-later
# What the flash tests share (test-flash-invariant.sh, test-flash-btrfs.sh),
# sourced after lib.sh: loop devices and mounts that the exit trap always
# lets go, the skip when there is no loop device, the byte-range helper
# (flashcheck.py, as 'fc'), the garbage target, partition extraction and
# the comparison of file trees.

export PATH=$PATH:/usr/sbin:/sbin

LOOPS=()
MOUNTS=()
flash_cleanup() {
        local m l
        for m in ${MOUNTS[@]+"${MOUNTS[@]}"}; do
                umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
        for l in ${LOOPS[@]+"${LOOPS[@]}"}; do
                # btrfs remembers the devices it has seen: forget this one.
                btrfs device scan --forget "$l" >/dev/null 2>&1 || true
                losetup -d "$l" 2>/dev/null || true
        done
        rm -rf "$WORK"
}
trap flash_cleanup EXIT
trap 'exit 130' INT TERM

# attach [LOSETUP-OPTIONS] FILE: sets ATTACHED to the loop device now
# backing FILE (and remembers it for the exit trap; not in a subshell, so
# that it is kept).
attach() {
        ATTACHED=$(losetup --find --show "$@") || return 1
        LOOPS+=("$ATTACHED")
}
detach() {
        local l keep=()
        btrfs device scan --forget "$1" >/dev/null 2>&1 || true
        losetup -d "$1" || echo "warning: cannot detach $1" >&2
        for l in "${LOOPS[@]}"; do [ "$l" = "$1" ] || keep+=("$l"); done
        LOOPS=(${keep[@]+"${keep[@]}"})
}

# flash_mount DIR MOUNT-ARGS...: mounts, remembering DIR for the exit trap.
flash_mount() {
        local dir=$1
        shift
        mkdir -p "$dir"
        mount "$@" "$dir" || return 1
        MOUNTS+=("$dir")
}
flash_umount() {
        local m keep=()
        umount "$1" || { echo "warning: cannot unmount $1" >&2; return 1; }
        for m in "${MOUNTS[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
        MOUNTS=(${keep[@]+"${keep[@]}"})
}

# need_tools TOOL...: exits 77 (skip) naming the first one missing.
need_tools() {
        local t
        for t; do
                if ! command -v "$t" >/dev/null; then
                        echo "$t is not installed: skipping"
                        exit 77
                fi
        done
}

# need_loop: exits 77 (skip) when no loop device can be attached.
need_loop() {
        truncate -s 1M "$WORK/probe.img"
        if ! attach "$WORK/probe.img" 2>"$WORK/err"; then
                echo "no loop device can be attached ($(head -c 200 "$WORK/err")): the flash needs one (bmaptool truncates regular files, which would hide unmapped blocks): skipping"
                exit 77
        fi
        detach "$ATTACHED"
        rm -f "$WORK/probe.img"
}

HELPER=$WORK/flashcheck.py
cat >"$HELPER" <<'PYEOF'
#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Byte-range helpers for the flash-invariant and sparse tests. A ranges file
# holds one half-open byte range per line: "START END [LABEL]"; lines starting
# with '#' are comments. Every command prints what it found and exits 1 when
# a check fails, naming the first offending offset.
import bisect
import json
import os
import re
import struct
import sys

BS = 4096


def read_ranges(path):
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            a, b = int(parts[0]), int(parts[1])
            if b > a:
                out.append((a, b, parts[2].strip() if len(parts) > 2 else ""))
    out.sort()
    return out


def merge(ranges):
    """Union of (a, b, ...) ranges as sorted, disjoint (a, b) pairs."""
    out = []
    for r in sorted(ranges):
        a, b = r[0], r[1]
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def subtract(ranges, holes):
    """ranges minus holes; both merged lists of (a, b)."""
    out = []
    holes = merge(holes)
    for a, b in merge(ranges):
        cur = a
        for ha, hb in holes:
            if hb <= cur or ha >= b:
                continue
            if ha > cur:
                out.append((cur, ha))
            cur = max(cur, hb)
            if cur >= b:
                break
        if cur < b:
            out.append((cur, b))
    return out


def total(ranges):
    return sum(b - a for a, b in merge(ranges))


def round_out(ranges, bs=BS, limit=None):
    out = []
    for a, b in merge(ranges):
        ra, rb = a // bs * bs, -(-b // bs) * bs
        if limit is not None:
            rb = min(rb, limit)
        out.append((ra, rb))
    return merge(out)


def label_of(labelled, off):
    for a, b, lab in labelled:
        if a <= off < b:
            return lab
    return ""


# ---------------------------------------------------------------- bmap


def bmap_ranges(path):
    """(image_size, block_size, merged byte ranges) of a bmap."""
    text = open(path).read()
    size = int(re.search(r"<ImageSize>\s*(\d+)\s*</ImageSize>", text).group(1))
    bs = int(re.search(r"<BlockSize>\s*(\d+)\s*</BlockSize>", text).group(1))
    out = []
    for m in re.finditer(r"<Range[^>]*>\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>", text):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        out.append((a * bs, min((b + 1) * bs, size)))
    return size, bs, merge(out)


# ---------------------------------------------------------------- ext


def ext_used(dump, offset):
    """Used byte ranges of an ext filesystem from 'dumpe2fs' output (block
    bitmap per group), shifted by offset."""
    count = bsize = None
    cluster = None
    free = []
    in_groups = False
    for line in open(dump, errors="replace"):
        if line.startswith("Block count:"):
            count = int(line.split(":")[1])
        elif line.startswith("Block size:"):
            bsize = int(line.split(":")[1])
        elif line.startswith("Cluster size:"):
            cluster = int(line.split(":")[1])
        elif line.startswith("Group "):
            in_groups = True
        elif in_groups and line.strip().startswith("Free blocks:"):
            spec = line.split(":", 1)[1].strip()
            for item in filter(None, (x.strip() for x in spec.split(","))):
                a, _, b = item.partition("-")
                a = int(a)
                b = int(b) if b else a
                free.append((a, b))
    if count is None or bsize is None:
        sys.exit("ext-used: no 'Block count' / 'Block size' in %s" % dump)
    ratio = (cluster or bsize) // bsize
    # dumpe2fs names each free cluster by its first block.
    free_bytes = [(a * bsize, min((b + ratio) * bsize, count * bsize)) for a, b in free]
    used = subtract([(0, count * bsize)], free_bytes)
    return [(a + offset, b + offset) for a, b in used], count * bsize


# ---------------------------------------------------------------- FAT


def fat_geometry(b):
    ss, spc, res, nfats, root_entries, tot16, _media, fat16 = struct.unpack_from("<HBHBHHBH", b, 11)
    tot32 = struct.unpack_from("<I", b, 0x20)[0]
    fat32 = struct.unpack_from("<I", b, 0x24)[0]
    total_s = tot16 or tot32
    if fat16 == 0 and fat32:
        bits, fatsz = 32, fat32
    else:
        bits, fatsz = None, fat16
    root_s = -(-root_entries * 32 // ss)
    first = res + nfats * fatsz + root_s
    clusters = (total_s - first) // spc
    if bits is None:
        bits = 12 if clusters < 4085 else 16
    return dict(ss=ss, spc=spc, res=res, nfats=nfats, fatsz=fatsz, total=total_s, first=first,
                clusters=clusters, bits=bits, flags=struct.unpack_from("<H", b, 0x28)[0] if bits == 32 else 0,
                root_entries=root_entries)


def fat_used(path, offset):
    """Used byte ranges of a FAT filesystem, read from its FAT (an
    implementation of its own, checked against fsck.fat's cluster count)."""
    with open(path, "rb") as f:
        b = f.read(512)
        g = fat_geometry(b)
        active = 0
        if g["bits"] == 32 and g["flags"] & 0x80:
            active = g["flags"] & 0x0F
        f.seek((g["res"] + active * g["fatsz"]) * g["ss"])
        fat = f.read(g["fatsz"] * g["ss"])
    n = g["clusters"] + 2
    used = [(0, g["first"] * g["ss"])]
    cbytes = g["spc"] * g["ss"]
    nused = 0
    run = None
    for c in range(2, n + 1):
        if c < n:
            if g["bits"] == 12:
                v = struct.unpack_from("<H", fat, c * 3 // 2)[0]
                v = v >> 4 if c & 1 else v & 0xFFF
            elif g["bits"] == 16:
                v = struct.unpack_from("<H", fat, c * 2)[0]
            else:
                v = struct.unpack_from("<I", fat, c * 4)[0] & 0x0FFFFFFF
        else:
            v = 0
        if v:
            nused += 1
            if run is None:
                run = c
        elif run is not None:
            start = (g["first"] + (run - 2) * g["spc"]) * g["ss"]
            used.append((start, start + (c - run) * cbytes))
            run = None
    return [(a + offset, b + offset) for a, b in merge(used)], g, nused


def fat_view(part, out):
    """mtools decides FAT32 by the cluster count: a FAT32 with fewer than
    65525 clusters is read as FAT16 and looks broken. Writes a copy whose
    BPB claims as many sectors as its FAT can describe (a larger filesystem
    with the same files), or says no view is needed."""
    with open(part, "rb") as f:
        b = bytearray(f.read(512))
    g = fat_geometry(b)
    if g["bits"] != 32 or g["clusters"] >= 65525:
        print("none")
        return 0
    entries = g["fatsz"] * g["ss"] // 4
    if entries - 2 < 65525:
        print("impossible: the FAT holds %d entries" % entries)
        return 0
    total_s = g["first"] + (entries - 2) * g["spc"]
    struct.pack_into("<I", b, 0x20, total_s)
    with open(part, "rb") as src, open(out, "wb") as dst:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            dst.write(chunk)
        dst.seek(0)
        dst.write(b)
        dst.truncate(total_s * g["ss"])
    print("view")
    return 0


# ---------------------------------------------------------------- compare


def compare(img, tgt, ranges_path, what):
    """Bytes of IMG and TGT are identical over every listed range."""
    labelled = read_ranges(ranges_path)
    rs = merge(labelled)
    with open(img, "rb") as fa, open(tgt, "rb") as fb:
        for a, b in rs:
            pos = a
            while pos < b:
                n = min(b - pos, 4 << 20)
                fa.seek(pos)
                fb.seek(pos)
                x, y = fa.read(n), fb.read(n)
                if x != y:
                    if len(x) != len(y):
                        print("%s: short read at byte %d (image %d, target %d bytes)" % (what, pos, len(x), len(y)))
                        return 1
                    i = next(k for k in range(len(x)) if x[k] != y[k])
                    off = pos + i
                    j = i
                    while j < len(x) and x[j] != y[j]:
                        j += 1
                    print("%s: first difference at byte %d (0x%x, in %s): image %s, target %s; %d differing bytes follow"
                          % (what, off, off, label_of(labelled, off) or "?", x[i:i + 8].hex(), y[i:i + 8].hex(), j - i))
                    return 1
                pos += n
    print("%s: %d bytes in %d ranges identical" % (what, total(rs), len(rs)))
    return 0


def zeros(img, ranges_path, what):
    rs = merge(read_ranges(ranges_path))
    with open(img, "rb") as f:
        for a, b in rs:
            pos = a
            while pos < b:
                n = min(b - pos, 4 << 20)
                f.seek(pos)
                x = f.read(n)
                if x.count(0) != len(x):
                    i = next(k for k in range(len(x)) if x[k])
                    print("%s: byte %d (0x%x) is %02x, not zero" % (what, pos + i, pos + i, x[i]))
                    return 1
                pos += n
    print("%s: %d bytes in %d ranges are zeros" % (what, total(rs), len(rs)))
    return 0


# ---------------------------------------------------------------- btrfs


BTRFS_SUPER_COPIES = (64 << 10, 64 << 20, 256 << 30)
# Profiles whose stripes each hold the whole chunk: a data extent lies at
# the same chunk offset in every stripe.
BTRFS_MIRRORED = ("single", "DUP", "RAID1", "RAID1C3", "RAID1C4")


def btrfs_chunks(path):
    """Chunks from 'dump-tree -t chunk': logical -> (length, flags, profile, [(devid, physical)])."""
    chunks = {}
    cur = None
    for line in open(path, errors="replace"):
        m = re.search(r"\bitem \d+ key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)", line)
        if m:
            cur = [int(m.group(1)), None, [], "", ""]
            chunks[cur[0]] = cur
            continue
        if cur is None:
            continue
        m = re.search(r"^\s*length (\d+) owner \d+ stripe_len \d+ type (\S+)", line)
        if m:
            cur[1] = int(m.group(1))
            parts = m.group(2).split("|")
            cur[3] = "|".join(p for p in parts if p in ("DATA", "METADATA", "SYSTEM"))
            prof = [p for p in parts if p not in ("DATA", "METADATA", "SYSTEM")]
            cur[4] = prof[0] if prof else "single"
            continue
        m = re.search(r"^\s*stripe \d+ devid (\d+) offset (\d+)", line)
        if m:
            cur[2].append((int(m.group(1)), int(m.group(2))))
            continue
        if re.search(r"\bitem \d+ key ", line):
            cur = None
    out = {}
    for logical, length, stripes, flags, prof in chunks.values():
        if length is None or not stripes:
            sys.exit("btrfs-need: chunk at %d: no length or no stripes in %s" % (logical, path))
        out[logical] = (length, flags, prof, stripes)
    return out


def btrfs_need(chunk_dump, dev_dump, extent_dump, devid, devsize, offset, log_dump=None, nodesize=16384):
    """What a btrfs device uses, by btrfs-progs' own dumps: the first MiB,
    the superblock copies inside the device, the dev extents of every chunk
    whose profile stripes data (RAID0/10/5/6, unknown: the whole dev
    extent), and for the chunks of every other profile (data, metadata,
    system and mixed alike) each data extent item and each tree block
    (METADATA_ITEM, or EXTENT_ITEM flagged TREE_BLOCK; NODESIZE bytes) at
    every stripe on this device, and, from LOG_DUMP (the dumps of the log
    root tree and the log trees), each log tree block and each file extent
    of the log trees (fsync'd data and the blocks holding it have no extent
    item until the log is replayed). Returns (labelled absolute ranges,
    summary dict); its whole_chunk_need is what mapping SYSTEM, METADATA
    and mixed chunks whole (the rule before issue 12) needs."""
    chunks = btrfs_chunks(chunk_dump)
    out = [(offset, offset + (1 << 20), "first MiB (primary superblock)")]
    sb = 0
    for c in BTRFS_SUPER_COPIES[1:]:
        if c + 4096 <= devsize:
            out.append((offset + c, offset + c + 4096, "superblock copy at %d" % c))
            sb += 1
    s = dict(devid=devid, dev_extents=0, dev_extent_bytes=0, whole=0, whole_bytes=0, by_extent_chunks=0,
             meta_dev_extent_bytes=0, items=0, item_bytes=0, tree_blocks=0, tree_block_bytes=0, sb_copies=sb,
             log_blocks=0, log_block_bytes=0, log_extents=0, log_bytes=0)
    per_extent = {}  # logical chunk start -> its stripes on this device
    before = list(out)  # the whole-chunk rule's ranges
    seen = set()
    cur = None
    for line in open(dev_dump, errors="replace"):
        m = re.search(r"\bitem \d+ key \((\d+) DEV_EXTENT (\d+)\)", line)
        if m:
            cur = (int(m.group(1)), int(m.group(2)))
            continue
        m = re.search(r"chunk_offset (\d+) length (\d+)", line)
        if m and cur:
            dev, phys = cur
            cur = None
            if dev != devid:
                continue
            logical, length = int(m.group(1)), int(m.group(2))
            if logical not in chunks:
                sys.exit("btrfs-need: dev extent at %d names chunk %d, which the chunk tree lacks" % (phys, logical))
            clen, flags, prof, stripes = chunks[logical]
            if (devid, phys) not in stripes:
                sys.exit("btrfs-need: dev extent at %d is not a stripe of chunk %d" % (phys, logical))
            seen.add(phys)
            s["dev_extents"] += 1
            s["dev_extent_bytes"] += length
            if flags != "DATA":
                s["meta_dev_extent_bytes"] += length
            if flags != "DATA" or prof not in BTRFS_MIRRORED:
                before.append((offset + phys, offset + phys + length, ""))
            if prof in BTRFS_MIRRORED:
                per_extent.setdefault(logical, []).append(phys)
            else:
                out.append((offset + phys, offset + phys + length, "dev extent of %s|%s chunk %d, stripe %d" % (
                    flags, prof, logical, stripes.index((devid, phys)))))
                s["whole"] += 1
                s["whole_bytes"] += length
    # Every stripe on this device has its dev extent.
    for logical, (clen, flags, prof, stripes) in sorted(chunks.items()):
        for dev, phys in stripes:
            if dev == devid and phys not in seen:
                sys.exit("btrfs-need: chunk %d has a stripe at %d on device %d and no dev extent there" % (logical, phys, devid))
    s["by_extent_chunks"] = len(per_extent)
    starts = sorted(per_extent)

    def extent(bytenr, length, what):
        """Adds the extent at every stripe on this device; its copies."""
        i = bisect.bisect_right(starts, bytenr) - 1
        if i < 0:
            return 0
        logical = starts[i]
        clen, flags, prof, stripes = chunks[logical]
        if bytenr >= logical + clen:
            return 0
        if bytenr + length > logical + clen:
            sys.exit("btrfs-need: %s %d+%d crosses the end of chunk %d" % (what, bytenr, length, logical))
        for phys in per_extent[logical]:
            a = offset + phys + bytenr - logical
            out.append((a, a + length, "%s %d+%d of %s|%s chunk %d, stripe %d" % (
                what, bytenr, length, flags, prof, logical, stripes.index((devid, phys)))))
            if flags == "DATA":
                before.append((a, a + length, ""))
        return len(per_extent[logical])

    # An EXTENT_ITEM's kind is on its next line ("refs 1 gen 6 flags DATA").
    pending = None
    for line in open(extent_dump, errors="replace"):
        m = re.search(r"\bitem \d+ key \((\d+) (EXTENT_ITEM|METADATA_ITEM) (\d+)\)", line)
        if m:
            if m.group(2) == "METADATA_ITEM":
                n = extent(int(m.group(1)), nodesize, "tree block")
                s["tree_blocks"] += n > 0
                s["tree_block_bytes"] += n * nodesize
            else:
                pending = (int(m.group(1)), int(m.group(3)))
            continue
        m = re.search(r"^\s*refs \d+ gen \d+ flags (\S+)", line)
        if m and pending:
            bytenr, length = pending
            pending = None
            if "TREE_BLOCK" in m.group(1):
                n = extent(bytenr, length, "tree block")
                s["tree_blocks"] += n > 0
                s["tree_block_bytes"] += n * length
            else:
                n = extent(bytenr, length, "data extent")
                s["items"] += n > 0
                s["item_bytes"] += n * length
    if log_dump:
        for line in open(log_dump, errors="replace"):
            m = re.search(r"^(?:leaf (\d+) items|node (\d+) level)", line)
            if m and "flags" not in line:
                n = extent(int(m.group(1) or m.group(2)), nodesize, "log tree block")
                s["log_blocks"] += n > 0
                s["log_block_bytes"] += n * nodesize
                continue
            m = re.search(r"extent data disk byte (\d+) nr (\d+)", line)
            if m and int(m.group(1)):
                n = extent(int(m.group(1)), int(m.group(2)), "log tree file extent")
                if n:
                    s["log_extents"] += 1
                    s["log_bytes"] += n * int(m.group(2))
    s["need"] = total(out)
    s["whole_chunk_need"] = total(before)
    return out, s


def tree_list(root, restored):
    """One line per entry below ROOT: path, type, mode, owner, size,
    mtime, and for files the SHA-256 of the content, for symlinks the
    target; for a mounted filesystem also the inode number, link count,
    atime, ctime and the extended attributes (a restored copy has new
    ones). Directory sizes are btrfs's own only when mounted."""
    import hashlib
    import stat as st
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [""] + sorted(dirnames + filenames):
            p = os.path.join(dirpath, name) if name else dirpath
            if not name and dirpath != root:
                continue
            rel = os.path.relpath(p, root)
            a = os.lstat(p)
            kind = "d" if st.S_ISDIR(a.st_mode) else "f" if st.S_ISREG(a.st_mode) else "l" if st.S_ISLNK(a.st_mode) else "o"
            f = [rel, kind, "%o" % a.st_mode, "%d:%d" % (a.st_uid, a.st_gid)]
            if kind != "d" or not restored:
                f.append("size=%d" % a.st_size)
                f.append("mtime=%d" % a.st_mtime_ns)
            if not restored:
                f += ["ino=%d" % a.st_ino, "nlink=%d" % a.st_nlink, "atime=%d" % a.st_atime_ns, "ctime=%d" % a.st_ctime_ns]
                if kind in "dfl":
                    try:
                        xs = sorted(os.listxattr(p, follow_symlinks=False))
                        f.append("xattr=" + ",".join("%s:%s" % (x, hashlib.sha256(os.getxattr(p, x, follow_symlinks=False)).hexdigest()[:16]) for x in xs))
                    except OSError as e:
                        f.append("xattr-error=%s" % e.errno)
            if kind == "f":
                h = hashlib.sha256()
                try:
                    with open(p, "rb") as fh:
                        while True:
                            b = fh.read(1 << 20)
                            if not b:
                                break
                            h.update(b)
                    f.append(h.hexdigest())
                except OSError as e:
                    # btrfs refuses data whose checksum does not match: EIO.
                    f.append("read-error=%s" % os.strerror(e.errno))
            elif kind == "l":
                f.append("-> " + os.readlink(p))
            elif kind == "o":
                f.append("rdev=%d" % a.st_rdev)
            lines.append(" ".join(f))
    return lines


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "ext-used":
        used, fs_bytes = ext_used(args[0], int(args[1]))
        print("# fs_bytes %d used_bytes %d" % (fs_bytes, total(used)))
        for a, b in used:
            print(a, b, args[2] if len(args) > 2 else "")
    elif cmd == "fat-used":
        used, g, nused = fat_used(args[0], int(args[1]))
        print("# clusters %d/%d cluster_bytes %d meta_bytes %d fs_bytes %d used_bytes %d bits %d" % (
            nused, g["clusters"], g["spc"] * g["ss"], g["first"] * g["ss"], g["total"] * g["ss"], total(used), g["bits"]))
        for a, b in used:
            print(a, b, args[2] if len(args) > 2 else "")
    elif cmd == "fat-view":
        return fat_view(args[0], args[1])
    elif cmd == "bmap-ranges":
        size, bs, rs = bmap_ranges(args[0])
        print("# image_size %d block_size %d mapped_bytes %d ranges %d" % (size, bs, total(rs), len(rs)))
        for a, b in rs:
            print(a, b)
    elif cmd == "complement":
        # complement SIZE RANGES LABEL: [0, SIZE) minus the ranges.
        for a, b in subtract([(0, int(args[0]))], [(a, b) for a, b, _ in read_ranges(args[1])]):
            print(a, b, args[2] if len(args) > 2 else "")
    elif cmd == "mapped-in":
        # mapped-in BMAP START END: bytes the bmap maps inside [START, END).
        _, _, rs = bmap_ranges(args[0])
        a, b = int(args[1]), int(args[2])
        print(sum(max(0, min(e, b) - max(s, a)) for s, e in rs))
    elif cmd == "within":
        # within BMAP START END: the bmap's mapped bytes inside [START, END), a range a line.
        _, _, rs = bmap_ranges(args[0])
        a0, b0 = int(args[1]), int(args[2])
        for a, b in rs:
            if b > a0 and a < b0:
                print(max(a, a0), min(b, b0))
    elif cmd == "total":
        rs = [(a, b) for a, b, _ in read_ranges(args[0])]
        print(total(rs))
    elif cmd == "round-total":
        # round-total RANGES IMAGE_SIZE: bytes after rounding out to 4096-byte blocks.
        rs = [(a, b) for a, b, _ in read_ranges(args[0])]
        print(total(round_out(rs, BS, int(args[1]))))
    elif cmd == "uncovered":
        # uncovered NEED BMAP: ranges of NEED the bmap leaves out.
        labelled = read_ranges(args[0])
        _, _, mapped = bmap_ranges(args[1])
        left = subtract([(a, b) for a, b, _ in labelled], mapped)
        if not left:
            print("every needed byte (%d) is mapped" % total(labelled))
            return 0
        print("%d needed bytes in %d ranges are not mapped; the first: %s" % (
            total(left), len(left), ", ".join("%d-%d (%s)" % (a, b, label_of(labelled, a) or "?") for a, b in left[:4])))
        return 1
    elif cmd == "subset":
        # subset A B: every range of bmap A lies inside bmap B.
        _, _, ra = bmap_ranges(args[0])
        _, _, rb = bmap_ranges(args[1])
        left = subtract(ra, rb)
        print("%d bytes of %s outside %s; %s maps %d bytes fewer" % (
            total(left), os.path.basename(args[0]), os.path.basename(args[1]), os.path.basename(args[0]),
            total(rb) - total(ra)))
        return 1 if left else 0
    elif cmd == "compare":
        return compare(args[0], args[1], args[2], args[3])
    elif cmd == "zeros":
        return zeros(args[0], args[1], args[2])
    elif cmd == "json-parts":
        # One line per partition: number start size container probed mapped filesystem how.
        j = json.load(open(args[0]))
        print("table", j["table"], j["sector_size"], j["image_size"], j.get("mapped_bytes", 0), j.get("mapped_blocks", 0))
        for p in j["partitions"]:
            print("part", p["number"], p["start"], p["size"], int(bool(p["container"])), int(bool(p["probed"])),
                  p["mapped_bytes"], p["filesystem"] or "-", p["how"].replace("\n", " "))
    elif cmd == "btrfs-need":
        # btrfs-need CHUNK_DUMP DEV_DUMP EXTENT_DUMP DEVID DEVSIZE OFFSET LABEL [LOG_DUMP [NODESIZE]]
        rs, s = btrfs_need(args[0], args[1], args[2], int(args[3]), int(args[4]), int(args[5]),
                           args[7] if len(args) > 7 else None, int(args[8]) if len(args) > 8 else 16384)
        print("# " + " ".join("%s %d" % kv for kv in s.items()))
        for a, b, lab in sorted(rs):
            print(a, b, "%s: %s" % (args[6], lab))
    elif cmd == "round-total-in":
        # round-total-in RANGES START END: bytes of [START, END) in the
        # 4096-byte blocks (of the image) that the ranges touch.
        a0, b0 = int(args[1]), int(args[2])
        rs = round_out([(a, b) for a, b, _ in read_ranges(args[0])], BS)
        print(sum(max(0, min(b, b0) - max(a, a0)) for a, b in rs))
    elif cmd == "pick":
        # pick RANGES REGEX [EVERY]: the ranges whose label matches, or
        # every EVERY-th of them; whole 4096-byte blocks inside each only
        # (for punching holes in a copy: the tests' self-tests).
        rx, every = re.compile(args[1]), int(args[2]) if len(args) > 2 else 1
        k = 0
        for a, b, lab in read_ranges(args[0]):
            if not rx.search(lab):
                continue
            k += 1
            ra, rb = -(-a // BS) * BS, b // BS * BS
            if k % every == 0 and rb > ra:
                print(ra, rb, lab)
    elif cmd == "tree-list":
        # tree-list DIR [restored]
        for line in tree_list(args[0], len(args) > 1 and args[1] == "restored"):
            print(line)
    else:
        sys.exit("flashcheck: unknown command %s" % cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
PYEOF
fc() { python3 "$HELPER" "$@"; }
# extract FILE START SIZE OUT: a partition's bytes as a file of its own.
extract() {
        dd if="$1" of="$4" bs=1M skip="$2" count="$3" iflag=skip_bytes,count_bytes status=none
}
# garbage FILE SIZE KEY: random bytes, nothing like the image's.
garbage() {
        head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -iter 1 -pass "pass:garbage:$3" >"$1"
}
# show FILE [N]: its first N (8) lines, indented (reads it all: no SIGPIPE).
show() { sed -n "1,${2:-8}s/^/      /p" "$1"; }
pct() { python3 -c 'import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); print("%.2f" % ((a - b) * 100.0 / b if b else 0))' "$1" "$2"; }

# tree_meta DIR [nodirtime]: one line per entry: path, type and mode,
# owner, size, mtime, symlink target (diff -r compares the contents).
tree_meta() {
        # debugfs rdump cannot set a symlink's own time: theirs are left out
        # here (the debugfs directory listings compare them); btrfs restore
        # sets a directory's time before it fills it, so not those either.
        local dirtime='%T@'
        [ "${2:-}" != nodirtime ] || dirtime='-'
        (cd "$1" && find . -type f -printf '%p %M %U:%G %s %T@\n' &&
                find . -type d -printf "%p %M %U:%G %s $dirtime\n" &&
                find . ! -type f ! -type d ! -type l -printf '%p %M %U:%G %s %T@\n' &&
                find . -type l -printf '%p %M %U:%G %s -> %l\n') | sort
}

# compare_trees WHAT IMAGE_DIR TARGET_DIR [nodirtime]: contents, symlinks
# and metadata.
compare_trees() {
        local what=$1 a=$2 b=$3 n
        n=$(find "$a" | wc -l)
        if ! diff -r --no-dereference "$a" "$b" >"$WORK/diff" 2>&1; then
                fail "$what: files differ between image and target (of $n entries):"
                show "$WORK/diff"
                return
        fi
        if ! diff <(tree_meta "$a" "${4:-}") <(tree_meta "$b" "${4:-}") >"$WORK/diff" 2>&1; then
                fail "$what: file metadata differs (< image, > target):"
                show "$WORK/diff"
                return
        fi
        pass "$what: $n files, directories and symlinks identical (contents and metadata)"
}