/* SPDX-License-Identifier: GPL-2.0-or-later */
/* btrfs, from its own trees. The superblock's sys_chunk_array bootstraps
 * the logical→physical map, the chunk tree completes it, the root tree
 * leads to the dev tree (which parts of this device belong to a chunk at
 * all) and to the extent tree (which parts of each chunk hold extents and
 * tree blocks). Used on this device:
 *
 *   - the first 1 MiB (never allocated; boot loaders live there) and every
 *     superblock copy inside the partition, added last;
 *   - in the dev extents of SINGLE, DUP and RAID1* chunks (data, metadata,
 *     system and mixed alike), each extent item and each tree block
 *     (METADATA_ITEM, or EXTENT_ITEM flagged TREE_BLOCK: the chunk, root,
 *     extent, free space, block group, fs and csum trees' blocks all have
 *     one) at every stripe of the chunk on this device (DUP: both copies),
 *     plus what the log trees of an unreplayed fsync hold: their own
 *     blocks (which have no extent item) and the file extents they add;
 *   - every dev extent of a striped or parity profile (RAID0/10/5/6) and
 *     of anything not understood.
 *
 * Every tree block is checked before it is trusted: checksum, bytenr,
 * fsid (or metadata_uuid), owner, level, generation against its parent,
 * first key against its parent's key, keys strictly ascending and inside
 * the parent's range, item data packed inside the block. A tree block of
 * the chunk, root, dev or log trees that fails, a feature not understood,
 * two trees that disagree (dev extents against chunk stripes, block groups
 * against chunks), a tree block on another device: the whole partition is
 * mapped and the report says why.
 *
 * A chunk whose records are in doubt falls back to being mapped whole on
 * its own, and the report names the first such chunk and why: a subtree
 * of the extent (or block group) tree that fails its checks (every chunk
 * its keys span), a block group item whose used bytes differ from what
 * the chunk's extent and metadata items add up to (both are written by
 * the same commit), no block group item, an extent crossing the chunk's
 * end, a tree block in a data chunk or data in a metadata chunk, a skinny
 * METADATA_ITEM without the skinny-metadata flag, and a tree block the
 * probe read from a committed tree that has no extent item.
 *
 * blake2b: the kernel checksums blake2b-256, which OpenSSL 3.0 cannot
 * compute (its BLAKE2b has no digest-length parameter). Those filesystems
 * are read without verifying checksums, relying on the other checks
 * (bytenr, fsid, owner, level, generation, key order, item bounds), and
 * the report says so. An unverified extent tree could then misplace a tree
 * block unseen, so their system and metadata chunks stay mapped whole: an
 * undetected bad data-extent record is the only exposure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btrfs-internal.h"

static const char *const types[] = { "btrfs", NULL };

#define MIB (1024ULL * 1024)

/* ---------------------------------------------------------------- reasons */

int btrfs_bad(Btrfs *b, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->why, sizeof(b->why), fmt, ap);
        va_end(ap);
        return err;
}

int btrfs_bad_in(Btrfs *b, int err, const char *prefix) {
        char tmp[sizeof(b->why)];
        snprintf(tmp, sizeof(tmp), "%s", b->why);
        return btrfs_bad(b, err, "%s: %s", prefix, tmp);
}

void btrfs_chunk_whole(Btrfs *b, Chunk *c, const char *fmt, ...) {
        /* Only a chunk that was mapped extent by extent falls back. */
        bool was = chunk_by_extent(c);
        c->whole = true;
        if (!was || b->n_whole++ > 0)
                return;
        uint64_t t = c->type & BG_TYPE_MASK;
        int k = snprintf(b->whole_why, sizeof(b->whole_why), "%s chunk %" PRIu64 ": ",
                         t == BG_DATA ? "data" : (t & BG_DATA) ? "mixed" : (t & BG_METADATA) ? "metadata" : "system", c->start);
        if (k < 0 || (size_t) k >= sizeof(b->whole_why))
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->whole_why + k, sizeof(b->whole_why) - (size_t) k, fmt, ap);
        va_end(ap);
}

/* ---------------------------------------------------------------- superblock */

static int read_super(Btrfs *b) {
        uint8_t *sb = b->sb;
        int k = reader_read(b->r, SUPER_OFFSET, sb, SUPER_SIZE);
        if (k < 0)
                return btrfs_bad(b, k == -ERANGE ? -EINVAL : k, "cannot read the superblock at 64 KiB: %s",
                                 k == -ERANGE    ? "the partition is too small"
                                 : k == -ENODATA ? "past the end of the image"
                                                 : strerror(-k));
        if (memcmp(sb + SB_MAGIC, "_BHRfS_M", 8) != 0)
                return btrfs_bad(b, -EINVAL, "no btrfs magic in the superblock at 64 KiB");
        if (get_le64(sb + SB_BYTENR) != SUPER_OFFSET)
                return btrfs_bad(b, -EINVAL, "the superblock at 64 KiB says it belongs at byte %" PRIu64, get_le64(sb + SB_BYTENR));

        b->csum_type = get_le16(sb + SB_CSUM_TYPE);
        if (b->csum_type >= ELEMENTSOF(btrfs_csum_names))
                return btrfs_bad(b, UNSUPPORTED, "unknown checksum type %u", b->csum_type);
        k = btrfs_csum_matches(b, sb, SUPER_SIZE);
        if (k < 0)
                return btrfs_bad(b, k, "cannot checksum the superblock: %s", strerror(-k));
        if (k == 0)
                return btrfs_bad(b, -EINVAL, "the superblock fails its %s checksum", btrfs_csum_names[b->csum_type]);

        b->sectorsize = get_le32(sb + SB_SECTORSIZE);
        b->nodesize = get_le32(sb + SB_NODESIZE);
        if (b->sectorsize < 4096 || b->sectorsize > 65536 || !is_pow2(b->sectorsize))
                return btrfs_bad(b, -EINVAL, "sector size %" PRIu32 " is not a power of two from 4 to 64 KiB", b->sectorsize);
        if (b->nodesize < b->sectorsize || b->nodesize > 65536 || !is_pow2(b->nodesize))
                return btrfs_bad(b, -EINVAL, "node size %" PRIu32 " is not a power of two from the sector size to 64 KiB",
                                 b->nodesize);

        uint64_t flags = get_le64(sb + SB_FLAGS);
        if (flags & ~SUPER_FLAGS_KNOWN)
                return btrfs_bad(b, UNSUPPORTED, "superblock flags 0x%" PRIx64 " (an error state or an unfinished conversion)",
                                 (uint64_t) (flags & ~SUPER_FLAGS_KNOWN));
        b->incompat = get_le64(sb + SB_INCOMPAT);
        b->compat_ro = get_le64(sb + SB_COMPAT_RO);
        if (b->incompat & INCOMPAT_ZONED)
                return btrfs_bad(b, UNSUPPORTED, "zoned filesystem");
        if (b->incompat & INCOMPAT_EXTENT_TREE_V2)
                return btrfs_bad(b, UNSUPPORTED, "extent tree v2");
        if (b->incompat & INCOMPAT_RAID_STRIPE_TREE)
                return btrfs_bad(b, UNSUPPORTED, "raid stripe tree");
        if (b->incompat & ~INCOMPAT_KNOWN)
                return btrfs_bad(b, UNSUPPORTED, "unknown incompat features 0x%" PRIx64,
                                 (uint64_t) (b->incompat & ~INCOMPAT_KNOWN));
        if (b->compat_ro & ~COMPAT_RO_KNOWN)
                return btrfs_bad(b, UNSUPPORTED, "unknown compat_ro features 0x%" PRIx64,
                                 (uint64_t) (b->compat_ro & ~COMPAT_RO_KNOWN));
        b->meta_fsid = sb + (b->incompat & INCOMPAT_METADATA_UUID ? SB_METADATA_UUID : SB_FSID);

        b->generation = get_le64(sb + SB_GENERATION);
        b->num_devices = get_le64(sb + SB_NUM_DEVICES);
        b->devid = get_le64(sb + SB_DEV_ITEM);
        b->dev_bytes = get_le64(sb + SB_DEV_ITEM + DEV_ITEM_TOTAL_BYTES);
        if (b->generation == 0 || b->generation == UINT64_MAX)
                return btrfs_bad(b, -EINVAL, "superblock generation %" PRIu64, b->generation);
        if (b->num_devices == 0)
                return btrfs_bad(b, -EINVAL, "the superblock counts no devices");
        if (b->devid == 0)
                return btrfs_bad(b, DOUBT, "this is the target of an unfinished device replace");
        if (b->dev_bytes < SUPER_OFFSET + SUPER_SIZE || b->dev_bytes > get_le64(sb + SB_TOTAL_BYTES))
                return btrfs_bad(b, -EINVAL, "the device's size %" PRIu64 " does not fit the filesystem's %" PRIu64, b->dev_bytes,
                                 get_le64(sb + SB_TOTAL_BYTES));
        if (b->dev_bytes > b->r->size)
                return btrfs_bad(b, -EINVAL, "the device (%" PRIu64 " bytes) is larger than its partition (%" PRIu64 " bytes)",
                                 b->dev_bytes, b->r->size);
        return 0;
}

/* ---------------------------------------------------------------- result */

static int add_used(Btrfs *b, Extents *used) {
        uint64_t size = b->r->size;
        int k = extents_add(used, 0, size < MIB ? size : MIB);

        for (size_t i = 0; i < b->n_dev && k >= 0; i++) {
                const DevExtent *d = &b->dev[i];
                const Chunk *c = &b->map.v[d->chunk];
                if (!chunk_by_extent(c)) {
                        k = extents_add(used, d->physical, d->physical + d->length);
                        continue;
                }
                /* The chunk's used logical ranges, at this stripe. */
                const Extent *v = b->logical.v;
                size_t lo = 0, hi = b->logical.n;
                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        if (v[mid].end <= c->start)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                for (size_t j = lo; j < b->logical.n && v[j].start < c->start + c->length && k >= 0; j++) {
                        uint64_t s = v[j].start > c->start ? v[j].start : c->start;
                        uint64_t e = v[j].end < c->start + c->length ? v[j].end : c->start + c->length;
                        k = extents_add(used, d->physical + (s - c->start), d->physical + (e - c->start));
                }
        }
        /* Last, so that nothing can take them away: the superblock copies. */
        for (unsigned i = 0; i < SUPER_COPIES && k >= 0; i++) {
                uint64_t off = i == 0 ? SUPER_OFFSET : 16384ULL << (12 * i);
                if (off <= size && size - off >= SUPER_SIZE)
                        k = extents_add(used, off, off + SUPER_SIZE);
        }
        return k < 0 ? btrfs_bad(b, k, "out of memory for the used extents") : 0;
}

/* "DUP metadata, single data", or "mixed single": the profiles in use. */
static void describe_profiles(const Btrfs *b, char *buf, size_t len) {
        static const char *const kinds[] = { "metadata", "data", "mixed" };
        char names[3][96] = {};
        size_t at = 0;

        for (size_t i = 0; i < b->map.n; i++) {
                const Chunk *c = &b->map.v[i];
                uint64_t t = c->type & BG_TYPE_MASK;
                int kind = t == BG_DATA ? 1 : (t & BG_DATA) ? 2 : (t & BG_METADATA) ? 0 : -1;
                if (kind < 0)
                        continue;
                const char *name = c->type & ~BG_KNOWN ? "unknown" : btrfs_profile_name(c->type);
                char *list = names[kind];
                size_t n = strlen(name);
                bool dup = false;
                for (const char *p = list; (p = strstr(p, name)); p += n)
                        if ((p == list || p[-1] == '+') && (p[n] == 0 || p[n] == '+'))
                                dup = true;
                if (!dup && strlen(list) + n + 2 < sizeof(names[kind]))
                        snprintf(list + strlen(list), sizeof(names[kind]) - strlen(list), "%s%s", list[0] ? "+" : "", name);
        }
        buf[0] = 0;
        for (int kind = 0; kind < 3; kind++) {
                if (!names[kind][0])
                        continue;
                int w = kind == 2 ? snprintf(buf + at, len - at, "%smixed %s", at ? ", " : "", names[kind])
                                  : snprintf(buf + at, len - at, "%s%s %s", at ? ", " : "", names[kind], kinds[kind]);
                if (w < 0 || (size_t) w >= len - at)
                        break;
                at += (size_t) w;
        }
}

static void describe(const Btrfs *b, ProbeResult *res) {
        char profiles[128], extra[224] = "";
        size_t at = 0;

        describe_profiles(b, profiles, sizeof(profiles));
#define EXTRA(...)                                                                                   \
        do {                                                                                         \
                int _w = snprintf(extra + at, sizeof(extra) - at, __VA_ARGS__);                      \
                if (_w > 0 && (size_t) _w < sizeof(extra) - at)                                      \
                        at += (size_t) _w;                                                           \
        } while (0)
        if (b->num_devices > 1)
                EXTRA("; devid %" PRIu64 " of %" PRIu64 " devices", b->devid, b->num_devices);
        if (get_le64(b->sb + SB_LOG_ROOT))
                EXTRA("; log tree: %" PRIu64 " blocks, %" PRIu64 " file extents", b->log_blocks, b->log_extents);
        if (b->n_whole)
                EXTRA("; %u chunk%s mapped whole (%s)", b->n_whole, b->n_whole == 1 ? "" : "s", b->whole_why);
#undef EXTRA
        /* The report line may be cut; it is only read by people. */
        int k = snprintf(res->how, sizeof(res->how), "chunk, dev%s and extent trees (%s%s; %s; %" PRIu64 " tree blocks)",
                         b->compat_ro & COMPAT_RO_BLOCK_GROUP_TREE ? ", block-group" : "", btrfs_csum_names[b->csum_type],
                         b->csum_type == CSUM_BLAKE2B ? " not verified: structure checks only, metadata in full" : "",
                         profiles, b->tree_blocks);
        if (k > 0 && (size_t) k < sizeof(res->how))
                strncat(res->how, extra, sizeof(res->how) - (size_t) k - 1);
}

/* ---------------------------------------------------------------- the probe */

static void btrfs_done(Btrfs *b) {
        btrfs_chunk_map_done(&b->boot);
        btrfs_chunk_map_done(&b->map);
        for (int i = 0; i < MAX_LEVEL; i++)
                free(b->blocks[i]);
        free(b->dev);
        free(b->logs);
        free(b->visited);
        free(b->eligible);
        extents_done(&b->logical);
}

static int run(Btrfs *b, ProbeResult *res) {
        _cleanup_extents_ Extents used = EXTENTS_INIT;
        bool bgt;
        int k;

        k = read_super(b);
        if (k < 0)
                return k;
        for (int i = 0; i < MAX_LEVEL; i++)
                if (!(b->blocks[i] = malloc(b->nodesize)))
                        return btrfs_bad(b, -ENOMEM, "out of memory for tree blocks");
        k = btrfs_parse_sys_array(b);
        if (k < 0)
                return k;
        k = btrfs_read_chunk_tree(b);
        if (k < 0)
                return k;

        k = btrfs_walk_tree(b, &btrfs_root_walk, get_le64(b->sb + SB_ROOT), b->sb[SB_ROOT_LEVEL], b->generation);
        if (k < 0)
                return k;
        bgt = b->compat_ro & COMPAT_RO_BLOCK_GROUP_TREE;
        if (!b->extent_root.found || !b->dev_root.found)
                return btrfs_bad(b, DOUBT, "the root tree has no %s tree", b->extent_root.found ? "dev" : "extent");
        if (bgt != b->bg_root.found)
                return btrfs_bad(b, DOUBT, "the block group tree is %s, but the feature flag is %s", bgt ? "missing" : "present",
                                 bgt ? "set" : "clear");

        k = btrfs_walk_tree(b, &btrfs_dev_walk, b->dev_root.bytenr, b->dev_root.level, b->dev_root.generation);
        if (k < 0)
                return k;
        k = btrfs_check_stripes_matched(b);
        if (k < 0)
                return k;
        for (size_t i = 0; i < b->n_dev; i++) {
                Chunk *c = &b->map.v[b->dev[i].chunk];
                c->here = true;
                if (b->csum_type == CSUM_BLAKE2B && (c->type & (BG_METADATA | BG_SYSTEM)))
                        c->whole = true;
        }

        k = btrfs_count_eligible(b);
        if (k < 0)
                return k;
        k = btrfs_walk_tree(b, &btrfs_extent_walk, b->extent_root.bytenr, b->extent_root.level, b->extent_root.generation);
        if (k < 0)
                return k;
        if (bgt) {
                k = btrfs_walk_tree(b, &btrfs_bg_walk, b->bg_root.bytenr, b->bg_root.level, b->bg_root.generation);
                if (k < 0)
                        return k;
        }
        /* Before the log's blocks join them: the committed extent tree
         * must know every committed tree block read so far. */
        k = btrfs_check_visited(b);
        if (k < 0)
                return k;
        /* A block group's used bytes are the sum of its extents (a tree
         * block counts nodesize), committed together: a difference means
         * extent records we did not see. */
        for (size_t i = 0; i < b->map.n; i++) {
                Chunk *c = &b->map.v[i];
                if (!chunk_by_extent(c))
                        continue;
                if (!c->bg_seen)
                        btrfs_chunk_whole(b, c, "no block group item");
                else if (c->bg_used != c->extent_bytes)
                        btrfs_chunk_whole(b, c,
                                          "block group usage differs from its extents (%" PRIu64 " used, extents %" PRIu64 ")",
                                          c->bg_used, c->extent_bytes);
        }
        if (get_le64(b->sb + SB_LOG_ROOT)) {
                k = btrfs_read_logs(b);
                if (k < 0)
                        return k;
        }

        k = add_used(b, &used);
        if (k < 0)
                return k;
        extents_done(&res->used);
        res->used = used;
        used = EXTENTS_INIT;
        res->fs_size = b->dev_bytes;
        describe(b, res);
        return 0;
}

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        Btrfs b = { .r = r, .logical = EXTENTS_INIT };
        int k = run(&b, res);
        btrfs_done(&b);
        if (k == DOUBT || k == UNSUPPORTED)
                return probe_whole(r, res, "%s: fully mapped", b.why);
        if (k < 0)
                return probe_fail(res, k, "%s", b.why);
        return 0;
}

const FsProbe fsprobe_btrfs = {
        .name = "btrfs",
        .types = types,
        .collect = collect,
};
