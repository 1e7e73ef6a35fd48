/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading btrfs trees: a tree block is found through the chunk map, read
 * through the bounded Reader and checked (checksum, header, keys, item
 * bounds) before anything in it is trusted; a tree is walked depth first
 * with one buffer per level. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "btrfs-internal.h"
#include "checksum.h"
#include "hash.h"

const char *const btrfs_csum_names[CSUM_BLAKE2B + 1] = { "crc32c", "xxhash64", "sha256", "blake2b" };
static const size_t csum_sizes[] = { 4, 8, 32, 32 };

static int read_at(Btrfs *b, uint64_t off, void *buf, size_t n, const char *what) {
        int k = reader_read(b->r, off, buf, n);
        if (k == -ERANGE)
                return btrfs_bad(b, DOUBT, "%s at byte %" PRIu64 " lies outside the partition", what, off);
        if (k == -ENODATA)
                return btrfs_bad(b, k, "%s at byte %" PRIu64 " lies past the end of the image", what, off);
        if (k < 0)
                return btrfs_bad(b, k, "cannot read %s at byte %" PRIu64 ": %s", what, off, strerror(-k));
        return 0;
}

int btrfs_csum_matches(const Btrfs *b, const uint8_t *buf, size_t len) {
        uint8_t sum[32] = {};
        switch (b->csum_type) {
        case CSUM_CRC32C: {
                uint32_t c = crc32c(0, buf + 0x20, len - 0x20);
                for (int i = 0; i < 4; i++)
                        sum[i] = (uint8_t) (c >> (8 * i));
                break;
        }
        case CSUM_XXHASH: {
                uint64_t h = xxhash64(buf + 0x20, len - 0x20, 0);
                for (int i = 0; i < 8; i++)
                        sum[i] = (uint8_t) (h >> (8 * i));
                break;
        }
        case CSUM_SHA256: {
                int k = digest_buffer(CHECKSUM_SHA256, buf + 0x20, len - 0x20, sum);
                if (k < 0)
                        return k;
                break;
        }
        default:
                return 1;
        }
        return memcmp(sum, buf, csum_sizes[b->csum_type]) == 0;
}

/* ---------------------------------------------------------------- tree blocks */

/* Where this device holds the tree block at logical: a copy on this device
 * (the first one: a damaged first copy is a doubt, not a reason to look
 * further), or an error saying why there is none. */
static int map_tree_block(Btrfs *b, uint64_t logical, uint64_t *ret) {
        const ChunkMap *m = b->cur;
        const Chunk *c = chunk_find(m, logical);
        const Stripe *s;
        uint64_t off, phys = 0;
        bool found = false;

        if (!c)
                return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " lies in no chunk", logical);
        off = logical - c->start;
        s = m->s + c->first_stripe;
        if (c->length - off < b->nodesize)
                return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " crosses the end of its chunk", logical);
        if (!(c->type & (BG_METADATA | BG_SYSTEM)) || (c->type & ~BG_KNOWN))
                return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " lies in a chunk of type 0x%" PRIx64, logical, c->type);

        bool overflow = false;
        switch (c->type & BG_PROFILE_MASK) {
        case 0:
        case BG_DUP:
        case BG_RAID1:
        case BG_RAID1C3:
        case BG_RAID1C4:
                for (uint32_t i = 0; i < c->num_stripes && !found; i++)
                        if (s[i].devid == b->devid) {
                                overflow = __builtin_add_overflow(s[i].offset, off, &phys);
                                found = true;
                        }
                break;
        case BG_RAID0:
        case BG_RAID10: {
                /* Striped: stripe_len-sized pieces go round the stripes (RAID10: round the mirror pairs). */
                uint64_t nr = off / c->stripe_len, in = off % c->stripe_len, row, first;
                uint32_t copies = (c->type & BG_RAID10) ? c->sub_stripes : 1;
                uint32_t groups = c->num_stripes / copies;
                if (c->stripe_len - in < b->nodesize)
                        return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " crosses a stripe boundary", logical);
                first = (nr % groups) * copies;
                row = nr / groups; /* row * stripe_len <= off: no overflow */
                for (uint32_t i = 0; i < copies && !found; i++)
                        if (s[first + i].devid == b->devid) {
                                overflow = __builtin_add_overflow(s[first + i].offset, row * c->stripe_len + in, &phys);
                                found = true;
                        }
                break;
        }
        default:
                return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " lies in a %s chunk, which this parser does not read", logical,
                                 btrfs_profile_name(c->type));
        }
        if (!found)
                return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " has no copy on this device (devid %" PRIu64 ")", logical,
                                 b->devid);
        if (overflow || phys > b->dev_bytes || b->dev_bytes - phys < b->nodesize)
                return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " would lie past the device's end", logical);
        *ret = phys;
        return 0;
}

/* Reads the tree block at logical into buf and checks it: checksum,
 * header, items inside the block and in strict key order, the first key
 * equal to the parent's key for it (lo) and every key below the parent's
 * next key (hi). */
static int read_tree_block(Btrfs *b, const Walk *w, uint64_t logical, unsigned level, uint64_t generation,
                           const Key *lo, const Key *hi, uint8_t *buf) {
        uint32_t ns = b->nodesize, n, room;
        uint64_t phys = 0;
        Key prev = {}, key;
        int k;

        if (logical == 0 || logical % b->sectorsize)
                return btrfs_bad(b, DOUBT, "%s: tree block pointer %" PRIu64 " is not sector-aligned", w->name, logical);
        k = map_tree_block(b, logical, &phys);
        if (k < 0)
                return btrfs_bad_in(b, k, w->name);
        char what[48];
        snprintf(what, sizeof(what), "tree block %" PRIu64, logical);
        k = read_at(b, phys, buf, ns, what);
        if (k < 0)
                return btrfs_bad_in(b, k, w->name);

        k = btrfs_csum_matches(b, buf, ns);
        if (k < 0)
                return btrfs_bad(b, k, "%s: cannot checksum tree block %" PRIu64 ": %s", w->name, logical, strerror(-k));
        if (k == 0)
                return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " (byte %" PRIu64 ") fails its %s checksum", w->name, logical,
                                 phys, btrfs_csum_names[b->csum_type]);
        if (get_le64(buf + HDR_BYTENR) != logical)
                return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " says it is block %" PRIu64, w->name, logical,
                                 get_le64(buf + HDR_BYTENR));
        if (memcmp(buf + HDR_FSID, b->meta_fsid, 16) != 0)
                return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " belongs to another filesystem", w->name, logical);
        if (buf[HDR_LEVEL] != level)
                return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " has level %u, expected %u", w->name, logical, buf[HDR_LEVEL],
                                 level);
        /* Nothing is newer than the transaction after the committed one (a log's). */
        if (get_le64(buf + HDR_GENERATION) > b->generation + 1)
                return btrfs_bad(b, DOUBT,
                                 "%s: tree block %" PRIu64 " has generation %" PRIu64 ", newer than the filesystem's %" PRIu64,
                                 w->name, logical, get_le64(buf + HDR_GENERATION), b->generation);
        if (generation && get_le64(buf + HDR_GENERATION) != generation)
                return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " has generation %" PRIu64 ", expected %" PRIu64, w->name,
                                 logical, get_le64(buf + HDR_GENERATION), generation);
        if (get_le64(buf + HDR_OWNER) != w->owner)
                return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " is owned by tree %" PRId64, w->name, logical,
                                 (int64_t) get_le64(buf + HDR_OWNER));

        n = get_le32(buf + HDR_NRITEMS);
        room = ns - HDR_SIZE;
        if (n > room / (level ? KEY_PTR_SIZE : ITEM_SIZE) || (n == 0 && (level > 0 || lo)))
                return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " claims %" PRIu32 " items", w->name, logical, n);

        uint32_t data_end = room; /* leaf item data is packed downwards from the block's end */
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *p = buf + HDR_SIZE + (size_t) i * (level ? KEY_PTR_SIZE : ITEM_SIZE);
                key = get_key(p);
                if (i == 0 && lo && key_cmp(&key, lo) != 0)
                        return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 " starts with another key than its parent says",
                                         w->name, logical);
                if (i > 0 && key_cmp(&prev, &key) >= 0)
                        return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 ": keys out of order at item %" PRIu32, w->name,
                                         logical, i);
                if (hi && key_cmp(&key, hi) >= 0)
                        return btrfs_bad(b, DOUBT, "%s: tree block %" PRIu64 ": key beyond its parent's range at item %" PRIu32,
                                         w->name, logical, i);
                prev = key;
                if (level) {
                        uint64_t ptr = get_le64(p + KEY_SIZE);
                        if (ptr == 0 || ptr % b->sectorsize || get_le64(p + KEY_SIZE + 8) == 0)
                                return btrfs_bad(b, DOUBT, "%s: node %" PRIu64 " has a bad pointer at item %" PRIu32, w->name,
                                                 logical, i);
                        continue;
                }
                uint32_t off = get_le32(p + KEY_SIZE), size = get_le32(p + KEY_SIZE + 4);
                if ((uint64_t) off + size != data_end || off < (uint64_t) n * ITEM_SIZE)
                        return btrfs_bad(b, DOUBT, "%s: leaf %" PRIu64 ": item %" PRIu32 " data at %" PRIu32 "+%" PRIu32
                                         " is not packed inside the block", w->name, logical, i, off, size);
                data_end = off;
        }
        return 0;
}

/* A block that failed its checks, not a failure to read it: w->lost may
 * give up its subtree (keys lo..hi) and let the walk go on. */
static int give_up(Btrfs *b, const Walk *w, int k, uint64_t lo, uint64_t hi) {
        return k == DOUBT && w->lost ? w->lost(b, lo, hi) : k;
}

static int leaf_items(Btrfs *b, const Walk *w, const uint8_t *buf) {
        uint32_t n = get_le32(buf + HDR_NRITEMS);
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *p = buf + HDR_SIZE + (size_t) i * ITEM_SIZE;
                Key key = get_key(p);
                int k = w->item(b, &key, buf + HDR_SIZE + get_le32(p + KEY_SIZE), get_le32(p + KEY_SIZE + 4));
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Walks the tree rooted at root, depth first, without recursion: one
 * buffer per level. The checks of read_tree_block make every key range
 * disjoint, so no block is read twice and no walk can loop. */
int btrfs_walk_tree(Btrfs *b, const Walk *w, uint64_t root, unsigned level, uint64_t generation) {
        struct {
                uint32_t n, slot;
                Key hi;
                bool has_hi;
        } f[MAX_LEVEL];
        unsigned cur = level;
        int k;

        if (level >= MAX_LEVEL)
                return btrfs_bad(b, DOUBT, "%s: root level %u (at most %d)", w->name, level, MAX_LEVEL - 1);
        k = read_tree_block(b, w, root, level, generation, NULL, NULL, b->blocks[level]);
        if (k < 0)
                return give_up(b, w, k, 0, UINT64_MAX);
        if (w->block && (k = w->block(b, root)) < 0)
                return k;
        if (level == 0)
                return leaf_items(b, w, b->blocks[0]);
        f[level].n = get_le32(b->blocks[level] + HDR_NRITEMS);
        f[level].slot = 0;
        f[level].hi = (Key) {};
        f[level].has_hi = false;

        for (;;) {
                if (f[cur].slot >= f[cur].n) {
                        if (cur == level)
                                return 0;
                        cur++;
                        continue;
                }
                const uint8_t *p = b->blocks[cur] + HDR_SIZE + (size_t) f[cur].slot * KEY_PTR_SIZE;
                Key lo = get_key(p), hi = f[cur].hi;
                bool has_hi = f[cur].has_hi;
                if (++f[cur].slot < f[cur].n) {
                        hi = get_key(p + KEY_PTR_SIZE);
                        has_hi = true;
                }
                if (w->want && !w->want(b, lo.objectid, has_hi ? hi.objectid : UINT64_MAX))
                        continue;
                unsigned child = cur - 1;
                uint64_t ptr = get_le64(p + KEY_SIZE);
                k = read_tree_block(b, w, ptr, child, get_le64(p + KEY_SIZE + 8), &lo, has_hi ? &hi : NULL, b->blocks[child]);
                if (k < 0) {
                        k = give_up(b, w, k, lo.objectid, has_hi ? hi.objectid : UINT64_MAX);
                        if (k < 0)
                                return k;
                        continue;
                }
                if (w->block && (k = w->block(b, ptr)) < 0)
                        return k;
                if (child == 0) {
                        k = leaf_items(b, w, b->blocks[0]);
                        if (k < 0)
                                return k;
                        continue;
                }
                f[child].n = get_le32(b->blocks[child] + HDR_NRITEMS);
                f[child].slot = 0;
                f[child].hi = hi;
                f[child].has_hi = has_hi;
                cur = child;
        }
}
