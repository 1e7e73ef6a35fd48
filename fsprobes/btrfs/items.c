/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The items of each btrfs tree this probe reads, one handler per tree,
 * each called by the walker (tree.c) for every item of a leaf: chunk and
 * device items, root items, dev extents, extent and metadata items, block
 * group items, and the file extents and tree blocks of log trees. Each
 * checks the item against what the other trees already said. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "btrfs-internal.h"

/* The blocks of the committed trees, as the walker reads them: each must
 * have its extent item (btrfs_check_visited). */
static int record_visited(Btrfs *b, uint64_t logical) {
        if (b->n_visited == b->cap_visited) {
                size_t cap = b->cap_visited ? b->cap_visited * 2 : 256;
                uint64_t *v = realloc(b->visited, cap * sizeof(*v));
                if (!v)
                        return btrfs_bad(b, -ENOMEM, "out of memory for the tree blocks read");
                b->visited = v;
                b->cap_visited = cap;
        }
        b->visited[b->n_visited++] = logical;
        return 0;
}

/* ---------------------------------------------------------------- chunk tree */

static int chunk_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type == KEY_CHUNK_ITEM) {
                if (key->objectid != FIRST_CHUNK_TREE_OBJECTID)
                        return btrfs_bad(b, DOUBT, "chunk tree: chunk item with objectid %" PRIu64, key->objectid);
                int k = btrfs_chunk_add(b, &b->map, key->offset, data, size, true);
                return k < 0 ? btrfs_bad_in(b, k, "chunk tree") : 0;
        }
        if (key->type == KEY_DEV_ITEM && key->objectid == DEV_ITEMS_OBJECTID && key->offset == b->devid) {
                if (size < DEV_ITEM_MIN_SIZE || get_le64(data) != b->devid)
                        return btrfs_bad(b, DOUBT, "chunk tree: bad device item for devid %" PRIu64, b->devid);
                /* The superblock carries a copy of this item; both are
                 * written by the same commit. */
                if (get_le64(data + DEV_ITEM_TOTAL_BYTES) != b->dev_bytes)
                        return btrfs_bad(b, DOUBT,
                                         "the chunk tree gives device %" PRIu64 " %" PRIu64 " bytes, the superblock %" PRIu64,
                                         b->devid, get_le64(data + DEV_ITEM_TOTAL_BYTES), b->dev_bytes);
                b->dev_item_seen = true;
        }
        return 0;
}

static bool same_chunk(const ChunkMap *ma, const Chunk *a, const ChunkMap *mb, const Chunk *c) {
        if (a->start != c->start || a->length != c->length || a->type != c->type || a->num_stripes != c->num_stripes ||
            a->sub_stripes != c->sub_stripes || a->stripe_len != c->stripe_len)
                return false;
        for (uint32_t i = 0; i < a->num_stripes; i++) {
                const Stripe *x = &ma->s[a->first_stripe + i], *y = &mb->s[c->first_stripe + i];
                if (x->devid != y->devid || x->offset != y->offset)
                        return false;
        }
        return true;
}

int btrfs_read_chunk_tree(Btrfs *b) {
        static const Walk w = {
                .name = "chunk tree", .owner = CHUNK_TREE_OBJECTID, .item = chunk_tree_item, .block = record_visited
        };
        int k;

        b->cur = &b->boot;
        k = btrfs_walk_tree(b, &w, get_le64(b->sb + SB_CHUNK_ROOT), b->sb[SB_CHUNK_ROOT_LEVEL],
                            get_le64(b->sb + SB_CHUNK_ROOT_GENERATION));
        if (k < 0)
                return k;
        if (!b->dev_item_seen)
                return btrfs_bad(b, DOUBT, "the chunk tree has no item for this device (devid %" PRIu64 ")", b->devid);
        /* The bootstrap copy must say what the tree says, or one of them is stale. */
        for (size_t i = 0; i < b->boot.n; i++) {
                const Chunk *c = chunk_at(&b->map, b->boot.v[i].start);
                if (!c || !same_chunk(&b->boot, &b->boot.v[i], &b->map, c))
                        return btrfs_bad(b, DOUBT,
                                         "the system chunk at %" PRIu64 " differs between sys_chunk_array and the chunk tree",
                                         b->boot.v[i].start);
        }
        b->cur = &b->map;
        return 0;
}

/* ---------------------------------------------------------------- root tree */

static int root_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        TreeRoot *t;
        if (key->type != KEY_ROOT_ITEM || key->offset != 0)
                return 0;
        switch (key->objectid) {
        case EXTENT_TREE_OBJECTID:
                t = &b->extent_root;
                break;
        case DEV_TREE_OBJECTID:
                t = &b->dev_root;
                break;
        case BLOCK_GROUP_TREE_OBJECTID:
                t = &b->bg_root;
                break;
        default:
                return 0;
        }
        if (size < ROOT_ITEM_MIN_SIZE)
                return btrfs_bad(b, DOUBT, "root tree: the root item of tree %" PRIu64 " is %" PRIu32 " bytes",
                                 key->objectid, size);
        *t = (TreeRoot) {
                .bytenr = get_le64(data + ROOT_ITEM_BYTENR),
                .generation = get_le64(data + ROOT_ITEM_GENERATION),
                .level = data[ROOT_ITEM_LEVEL],
                .found = true,
        };
        if (t->generation == 0 || t->generation > b->generation)
                return btrfs_bad(b, DOUBT, "root tree: tree %" PRIu64 " has generation %" PRIu64 " (superblock: %" PRIu64 ")",
                                 key->objectid, t->generation, b->generation);
        return 0;
}

static bool root_tree_want(Btrfs *b, uint64_t lo, uint64_t hi) {
        return lo <= BLOCK_GROUP_TREE_OBJECTID && hi >= EXTENT_TREE_OBJECTID;
}

const Walk btrfs_root_walk = {
        .name = "root tree", .owner = ROOT_TREE_OBJECTID, .want = root_tree_want, .item = root_tree_item,
        .block = record_visited
};

/* ---------------------------------------------------------------- dev tree */

static int dev_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type != KEY_DEV_EXTENT || key->objectid != b->devid)
                return 0;
        if (size < DEV_EXTENT_SIZE)
                return btrfs_bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " is %" PRIu32 " bytes", key->offset, size);
        DevExtent d = { .physical = key->offset, .length = get_le64(data + DEV_EXTENT_LENGTH) };
        uint64_t chunk = get_le64(data + DEV_EXTENT_CHUNK_OFFSET);
        if (d.length == 0 || d.physical > b->dev_bytes || b->dev_bytes - d.physical < d.length)
                return btrfs_bad(b, DOUBT, "dev tree: dev extent %" PRIu64 "+%" PRIu64 " does not fit the device (%" PRIu64 " bytes)",
                                 d.physical, d.length, b->dev_bytes);
        if (b->n_dev > 0 && b->dev[b->n_dev - 1].physical + b->dev[b->n_dev - 1].length > d.physical)
                return btrfs_bad(b, DOUBT, "dev tree: dev extents overlap at byte %" PRIu64, d.physical);

        /* Each dev extent is the on-device home of one stripe of its chunk. */
        Chunk *c = chunk_at(&b->map, chunk);
        if (!c)
                return btrfs_bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " belongs to chunk %" PRIu64 ", which does not exist",
                                 d.physical, chunk);
        Stripe *s = b->map.s + c->first_stripe;
        uint32_t i;
        for (i = 0; i < c->num_stripes; i++)
                if (s[i].devid == b->devid && s[i].offset == d.physical && !s[i].matched)
                        break;
        if (i == c->num_stripes)
                return btrfs_bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " is no stripe of chunk %" PRIu64, d.physical, chunk);
        uint64_t div = btrfs_stripe_divisor(c);
        if (div && d.length != c->length / div)
                return btrfs_bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " is %" PRIu64 " bytes, its chunk's stripes %" PRIu64,
                                 d.physical, d.length, c->length / div);
        s[i].matched = true;
        d.chunk = (size_t) (c - b->map.v);

        if (b->n_dev == b->cap_dev) {
                size_t cap = b->cap_dev ? b->cap_dev * 2 : 64;
                DevExtent *v = realloc(b->dev, cap * sizeof(*v));
                if (!v)
                        return btrfs_bad(b, -ENOMEM, "out of memory for the dev extents");
                b->dev = v;
                b->cap_dev = cap;
        }
        b->dev[b->n_dev++] = d;
        return 0;
}

static bool dev_tree_want(Btrfs *b, uint64_t lo, uint64_t hi) {
        return lo <= b->devid && hi >= b->devid;
}

const Walk btrfs_dev_walk = {
        .name = "dev tree", .owner = DEV_TREE_OBJECTID, .want = dev_tree_want, .item = dev_tree_item, .block = record_visited
};

/* Every stripe of every chunk on this device must have its dev extent:
 * a stripe the dev tree does not know is space the chunk tree says is used. */
int btrfs_check_stripes_matched(Btrfs *b) {
        for (size_t i = 0; i < b->map.n; i++) {
                const Chunk *c = &b->map.v[i];
                for (uint32_t j = 0; j < c->num_stripes; j++) {
                        const Stripe *s = &b->map.s[c->first_stripe + j];
                        if (s->devid == b->devid && !s->matched)
                                return btrfs_bad(b, DOUBT, "chunk %" PRIu64 " has a stripe at byte %" PRIu64 " with no dev extent",
                                                 c->start, s->offset);
                }
        }
        return 0;
}

/* ---------------------------------------------------------------- extent and block group trees */

/* Prefix counts of the chunks mapped extent by extent, to tell in
 * O(log n) whether a subtree's key range touches one. */
int btrfs_count_eligible(Btrfs *b) {
        b->eligible = malloc((b->map.n + 1) * sizeof(*b->eligible));
        if (!b->eligible)
                return btrfs_bad(b, -ENOMEM, "out of memory");
        b->eligible[0] = 0;
        for (size_t i = 0; i < b->map.n; i++)
                b->eligible[i + 1] = b->eligible[i] + chunk_by_extent(&b->map.v[i]);
        return 0;
}

/* The chunks [*ret_first, *ret_last) of m that overlap logical lo..hi inclusive. */
static void chunks_overlapping(const ChunkMap *m, uint64_t lo, uint64_t hi, size_t *ret_first, size_t *ret_last) {
        size_t a = 0, z = m->n, first;
        /* first chunk ending after lo */
        while (a < z) {
                size_t mid = a + (z - a) / 2;
                if (m->v[mid].start + m->v[mid].length <= lo)
                        a = mid + 1;
                else
                        z = mid;
        }
        first = a;
        /* first chunk starting after hi */
        a = first, z = m->n;
        while (a < z) {
                size_t mid = a + (z - a) / 2;
                if (m->v[mid].start <= hi)
                        a = mid + 1;
                else
                        z = mid;
        }
        *ret_first = first;
        *ret_last = a;
}

/* Whether a chunk mapped extent by extent overlaps logical lo..hi inclusive. */
static bool extent_tree_want(Btrfs *b, uint64_t lo, uint64_t hi) {
        size_t first, last;
        chunks_overlapping(&b->map, lo, hi, &first, &last);
        return last > first && b->eligible[last] > b->eligible[first];
}

/* A subtree of the extent or block group tree that fails its checks: the
 * records of the chunks its keys span are lost with it, so those chunks
 * are mapped whole, as all of them were before this probe read tree
 * blocks; the other chunks keep their extents. */
static int extent_tree_lost(Btrfs *b, uint64_t lo, uint64_t hi) {
        char why[sizeof(b->why)];
        size_t first, last;
        snprintf(why, sizeof(why), "%s", b->why);
        chunks_overlapping(&b->map, lo, hi, &first, &last);
        for (size_t i = first; i < last; i++)
                btrfs_chunk_whole(b, &b->map.v[i], "%s", why);
        return 0;
}

static int block_group_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        Chunk *c = chunk_at(&b->map, key->objectid);
        if (size < BG_ITEM_SIZE)
                return btrfs_bad(b, DOUBT, "block group item at %" PRIu64 " is %" PRIu32 " bytes", key->objectid, size);
        if (!c || c->length != key->offset)
                return btrfs_bad(b, DOUBT, "block group %" PRIu64 "+%" PRIu64 " has no chunk", key->objectid, key->offset);
        if (get_le64(data + BG_ITEM_FLAGS) != c->type)
                return btrfs_bad(b, DOUBT, "block group %" PRIu64 " has flags 0x%" PRIx64 ", its chunk 0x%" PRIx64, key->objectid,
                                 get_le64(data + BG_ITEM_FLAGS), c->type);
        if (c->bg_seen)
                return btrfs_bad(b, DOUBT, "block group %" PRIu64 " is recorded twice", key->objectid);
        c->bg_seen = true;
        c->bg_used = get_le64(data + BG_ITEM_USED);
        return 0;
}

/* Marks whole every chunk that [start, start + len) touches; a range that
 * leaves the chunks altogether is a doubt about the whole device. */
static int chunks_whole(Btrfs *b, uint64_t start, uint64_t len, const char *what) {
        uint64_t at = start, end = start + len;
        while (at < end) {
                Chunk *c = chunk_find_mut(&b->map, at);
                if (!c)
                        return btrfs_bad(b, DOUBT, "%s %" PRIu64 "+%" PRIu64 " reaches byte %" PRIu64 ", in no chunk", what, start,
                                         len, at);
                btrfs_chunk_whole(b, c, "%s %" PRIu64 "+%" PRIu64 " crosses its end", what, start, len);
                at = c->start + c->length;
        }
        return 0;
}

/* Whether the extent or metadata item key (data, size) cannot be one of
 * chunk c's extents: then c is mapped whole, saying why. Else *ret_tree
 * tells a tree block from a data extent. A tree block the kernel would
 * look up under another key, or an extent in a chunk of the other kind,
 * puts all of the chunk's records in doubt. */
static bool extent_item_doubt(Btrfs *b, Chunk *c, const Key *key, const uint8_t *data, uint32_t size, bool *ret_tree) {
        uint64_t start = key->objectid, flags;
        bool tree;

        if (key->type == KEY_METADATA_ITEM) {
                /* Without the feature, the kernel looks tree blocks up as
                 * EXTENT_ITEMs only: such an item is not what it records. */
                if (!(b->incompat & INCOMPAT_SKINNY_METADATA)) {
                        btrfs_chunk_whole(b, c, "skinny metadata item at %" PRIu64 ", but no skinny-metadata flag", start);
                        return true;
                }
                if (key->offset >= MAX_LEVEL) {
                        btrfs_chunk_whole(b, c, "tree block %" PRIu64 " of level %" PRIu64, start, key->offset);
                        return true;
                }
                tree = true;
        } else {
                if (size < EXTENT_ITEM_MIN_SIZE) {
                        btrfs_chunk_whole(b, c, "extent item at %" PRIu64 " of %" PRIu32 " bytes", start, size);
                        return true;
                }
                flags = get_le64(data + EXTENT_ITEM_FLAGS) & (EXTENT_FLAG_DATA | EXTENT_FLAG_TREE_BLOCK);
                if (flags != EXTENT_FLAG_DATA && flags != EXTENT_FLAG_TREE_BLOCK) {
                        btrfs_chunk_whole(b, c, "extent item at %" PRIu64 " with flags 0x%" PRIx64, start,
                                          get_le64(data + EXTENT_ITEM_FLAGS));
                        return true;
                }
                tree = flags == EXTENT_FLAG_TREE_BLOCK;
                if (tree && key->offset != b->nodesize) {
                        btrfs_chunk_whole(b, c, "tree block %" PRIu64 " of %" PRIu64 " bytes", start, key->offset);
                        return true;
                }
        }
        if (start % b->sectorsize) {
                btrfs_chunk_whole(b, c, "extent at %" PRIu64 " is not sector-aligned", start);
                return true;
        }
        if (tree && !(c->type & (BG_METADATA | BG_SYSTEM))) {
                btrfs_chunk_whole(b, c, "tree block %" PRIu64 " in a data chunk", start);
                return true;
        }
        if (!tree && !(c->type & BG_DATA)) {
                btrfs_chunk_whole(b, c, "data extent %" PRIu64 " in a chunk without data", start);
                return true;
        }
        *ret_tree = tree;
        return false;
}

static int extent_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        uint64_t start = key->objectid, len;
        bool tree = false;

        switch (key->type) {
        case KEY_EXTENT_ITEM:
                len = key->offset;
                break;
        case KEY_METADATA_ITEM:
                len = b->nodesize;
                break;
        case KEY_BLOCK_GROUP_ITEM:
                return block_group_item(b, key, data, size);
        default:
                return 0;
        }
        if (len == 0 || start + len < start)
                return btrfs_bad(b, DOUBT, "extent tree: extent %" PRIu64 "+%" PRIu64, start, len);
        Chunk *c = chunk_find_mut(&b->map, start);
        if (!c)
                return btrfs_bad(b, DOUBT, "extent tree: extent %" PRIu64 "+%" PRIu64 " lies in no chunk", start, len);
        /* An extent across a chunk's end: the chunks involved are not what
         * they claim to be. */
        if (start + len - c->start > c->length)
                return chunks_whole(b, start, len, "extent");
        if (!chunk_by_extent(c) || extent_item_doubt(b, c, key, data, size, &tree))
                return 0;
        c->extent_bytes += len;
        b->tree_blocks += tree;
        int k = extents_add(&b->logical, start, start + len);
        return k < 0 ? btrfs_bad(b, k, "out of memory for the extents") : 0;
}

static int bg_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        return key->type == KEY_BLOCK_GROUP_ITEM ? block_group_item(b, key, data, size) : 0;
}

const Walk btrfs_extent_walk = {
        .name = "extent tree", .owner = EXTENT_TREE_OBJECTID, .want = extent_tree_want, .item = extent_tree_item,
        .block = record_visited, .lost = extent_tree_lost
};

const Walk btrfs_bg_walk = {
        .name = "block group tree", .owner = BLOCK_GROUP_TREE_OBJECTID, .want = extent_tree_want, .item = bg_tree_item,
        .block = record_visited, .lost = extent_tree_lost
};

int btrfs_check_visited(Btrfs *b) {
        for (size_t i = 0; i < b->n_visited; i++) {
                uint64_t at = b->visited[i];
                Chunk *c = chunk_find_mut(&b->map, at);
                if (!c)
                        return btrfs_bad(b, DOUBT, "tree block %" PRIu64 " lies in no chunk of the chunk tree", at);
                if (chunk_by_extent(c) && !extents_contains(&b->logical, at, at + b->nodesize))
                        btrfs_chunk_whole(b, c, "tree block %" PRIu64 " has no extent item", at);
        }
        return 0;
}

/* ---------------------------------------------------------------- log trees */

static int log_root_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type != KEY_ROOT_ITEM || key->objectid != TREE_LOG_OBJECTID)
                return 0;
        if (size < ROOT_ITEM_MIN_SIZE)
                return btrfs_bad(b, DOUBT, "log root tree: a root item of %" PRIu32 " bytes", size);
        if (b->n_logs == b->cap_logs) {
                size_t cap = b->cap_logs ? b->cap_logs * 2 : 16;
                TreeRoot *v = realloc(b->logs, cap * sizeof(*v));
                if (!v)
                        return btrfs_bad(b, -ENOMEM, "out of memory for the log trees");
                b->logs = v;
                b->cap_logs = cap;
        }
        b->logs[b->n_logs++] = (TreeRoot) {
                .bytenr = get_le64(data + ROOT_ITEM_BYTENR),
                .generation = get_le64(data + ROOT_ITEM_GENERATION),
                .level = data[ROOT_ITEM_LEVEL],
                .found = true,
        };
        return 0;
}

/* A block of a log tree: written after the commit, it has no extent item,
 * and replay reads it. */
static int log_block(Btrfs *b, uint64_t logical) {
        const Chunk *c = chunk_find(&b->map, logical);
        b->log_blocks++;
        if (!c || !chunk_by_extent(c))
                return 0;
        int k = extents_add(&b->logical, logical, logical + b->nodesize);
        return k < 0 ? btrfs_bad(b, k, "out of memory for the extents") : 0;
}

/* A file extent the log writes: replay makes it used, whether or not the
 * extent tree knows it yet. */
static int log_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type != KEY_EXTENT_DATA)
                return 0;
        if (size <= FILE_EXTENT_TYPE)
                return btrfs_bad(b, DOUBT, "log tree: file extent item of %" PRIu32 " bytes", size);
        if (data[FILE_EXTENT_TYPE] == FILE_EXTENT_INLINE)
                return 0;
        if (data[FILE_EXTENT_TYPE] != FILE_EXTENT_REG && data[FILE_EXTENT_TYPE] != FILE_EXTENT_PREALLOC)
                return btrfs_bad(b, DOUBT, "log tree: file extent of type %u", data[FILE_EXTENT_TYPE]);
        if (size < FILE_EXTENT_SIZE)
                return btrfs_bad(b, DOUBT, "log tree: file extent item of %" PRIu32 " bytes", size);
        uint64_t start = get_le64(data + FILE_EXTENT_DISK_BYTENR), len = get_le64(data + FILE_EXTENT_DISK_NUM_BYTES);
        if (start == 0) /* a hole */
                return 0;
        if (len == 0 || start + len < start)
                return btrfs_bad(b, DOUBT, "log tree: file extent at %" PRIu64 " of %" PRIu64 " bytes", start, len);
        b->log_extents++;
        /* It must lie in a chunk the committed chunk tree knows. */
        const Chunk *c = chunk_find(&b->map, start);
        if (!c || start + len - c->start > c->length)
                return chunks_whole(b, start, len, "log tree: file extent");
        if (!chunk_by_extent(c))
                return 0;
        int k = extents_add(&b->logical, start, start + len);
        return k < 0 ? btrfs_bad(b, k, "out of memory for the extents") : 0;
}

int btrfs_read_logs(Btrfs *b) {
        static const Walk root_walk = {
                .name = "log root tree", .owner = TREE_LOG_OBJECTID, .item = log_root_item, .block = log_block
        };
        static const Walk log_walk = {
                .name = "log tree", .owner = TREE_LOG_OBJECTID, .item = log_tree_item, .block = log_block
        };
        uint64_t root = get_le64(b->sb + SB_LOG_ROOT);
        int k;

        /* The log is written by the transaction after the committed one. */
        k = btrfs_walk_tree(b, &root_walk, root, b->sb[SB_LOG_ROOT_LEVEL], b->generation + 1);
        if (k < 0)
                return k;
        for (size_t i = 0; i < b->n_logs; i++) {
                k = btrfs_walk_tree(b, &log_walk, b->logs[i].bytenr, b->logs[i].level, b->logs[i].generation);
                if (k < 0)
                        return k;
        }
        return 0;
}
