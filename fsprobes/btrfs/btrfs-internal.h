/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the files of the btrfs probe share: the probe's state, the chunk map
 * and the tree walker's interface. probe.c runs the steps; chunks.c builds
 * the logical→physical map; tree.c reads and checks tree blocks and walks
 * trees; items.c handles the items of each tree. Helpers that run once per
 * item or per key are static inline here, so that the cut into files adds
 * no call on the scan's hot path. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "extents.h"
#include "ondisk.h"
#include "probe.h"

typedef struct Key {
        uint64_t objectid;
        uint8_t type;
        uint64_t offset;
} Key;

typedef struct Stripe {
        uint64_t devid, offset;
        bool matched; /* by a dev extent of this device */
} Stripe;

typedef struct Chunk {
        uint64_t start, length, type, stripe_len;
        uint32_t num_stripes, sub_stripes;
        size_t first_stripe; /* in the map's stripe pool */
        uint64_t extent_bytes; /* its extent and metadata items add up to */
        uint64_t bg_used;
        bool bg_seen;
        bool here;  /* has a dev extent on this device */
        bool whole; /* mapped whole: its extent records were doubtful */
} Chunk;

typedef struct ChunkMap {
        Chunk *v;
        size_t n, cap;
        Stripe *s;
        size_t ns, caps;
} ChunkMap;

typedef struct DevExtent {
        uint64_t physical, length;
        size_t chunk;
} DevExtent;

typedef struct TreeRoot {
        uint64_t bytenr, generation;
        uint8_t level;
        bool found;
} TreeRoot;

typedef struct Btrfs {
        const Reader *r;
        uint8_t sb[SUPER_SIZE];
        uint32_t sectorsize, nodesize;
        unsigned csum_type;
        uint64_t generation, incompat, compat_ro, num_devices, devid, dev_bytes;
        const uint8_t *meta_fsid;
        ChunkMap boot, map;
        const ChunkMap *cur; /* which map tree blocks are read through */
        uint8_t *blocks[MAX_LEVEL];
        DevExtent *dev;
        size_t n_dev, cap_dev;
        bool dev_item_seen;
        TreeRoot extent_root, dev_root, bg_root;
        TreeRoot *logs;
        size_t n_logs, cap_logs;
        uint64_t *visited; /* the committed trees' blocks this probe read */
        size_t n_visited, cap_visited;
        size_t *eligible; /* prefix counts of chunks mapped extent by extent */
        Extents logical;  /* used logical bytes in those chunks */
        uint64_t tree_blocks, log_blocks, log_extents;
        unsigned n_whole;   /* chunks that fell back to being mapped whole */
        char whole_why[160]; /* the first one and why */
        char why[200];
} Btrfs;

/* Records why the probe stops in b->why and returns err. */
int btrfs_bad(Btrfs *b, int err, const char *fmt, ...) _printf_(3, 4);
/* Puts "prefix: " before the reason already given. */
int btrfs_bad_in(Btrfs *b, int err, const char *prefix);
/* Gives up mapping chunk c extent by extent: it is mapped whole, and the
 * first chunk to fall back says why in the report. */
void btrfs_chunk_whole(Btrfs *b, Chunk *c, const char *fmt, ...) _printf_(3, 4);

/* -EUCLEAN: the metadata is inconsistent or damaged; -EOPNOTSUPP: it uses
 * what this parser does not understand. Both map the whole partition; any
 * other error is a failure to read. */
#define DOUBT (-EUCLEAN)
#define UNSUPPORTED (-EOPNOTSUPP)

static inline Key get_key(const uint8_t *p) {
        return (Key) { get_le64(p), p[8], get_le64(p + 9) };
}

static inline int key_cmp(const Key *a, const Key *b) {
        if (a->objectid != b->objectid)
                return a->objectid < b->objectid ? -1 : 1;
        if (a->type != b->type)
                return a->type < b->type ? -1 : 1;
        if (a->offset != b->offset)
                return a->offset < b->offset ? -1 : 1;
        return 0;
}

/* ---------------------------------------------------------------- chunks.c */

static inline const Chunk *chunk_find(const ChunkMap *m, uint64_t logical) {
        size_t lo = 0, hi = m->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (m->v[mid].start <= logical)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == 0)
                return NULL;
        const Chunk *c = &m->v[lo - 1];
        return logical - c->start < c->length ? c : NULL;
}

static inline Chunk *chunk_find_mut(ChunkMap *m, uint64_t logical) {
        return (Chunk *) chunk_find(m, logical);
}

static inline Chunk *chunk_at(ChunkMap *m, uint64_t start) {
        Chunk *c = chunk_find_mut(m, start);
        return c && c->start == start ? c : NULL;
}

/* A chunk on this device whose every copy holds the same bytes at the
 * same offset (single, DUP, RAID1*): its extents, data extents and tree
 * blocks alike, can be mapped one by one on each stripe. */
static inline bool chunk_by_extent(const Chunk *c) {
        return c->here && !c->whole && (c->type & ~BG_KNOWN) == 0 &&
               ((c->type & BG_PROFILE_MASK) == 0 || (c->type & BG_MIRRORED));
}

/* "single", "DUP", "RAID10", ...: the profile bits of a chunk type. */
const char *btrfs_profile_name(uint64_t type);
/* How many stripes' worth of data the chunk's length spans (its stripes
 * each hold length / that many bytes); 0 for a profile we do not know,
 * which is mapped whole whatever its dev extents say. */
uint64_t btrfs_stripe_divisor(const Chunk *c);
/* Parses one chunk item (p, size bytes) at logical start into m, checking
 * what the kernel's chunk validation checks; with in_order, it must come
 * after every chunk already in m. */
int btrfs_chunk_add(Btrfs *b, ChunkMap *m, uint64_t start, const uint8_t *p, size_t size, bool in_order);
void btrfs_chunk_map_done(ChunkMap *m);
/* The superblock's copy of the system chunks into b->boot. */
int btrfs_parse_sys_array(Btrfs *b);

/* ---------------------------------------------------------------- tree.c */

/* Indexed by the superblock's csum_type (ondisk.h), for the report. */
extern const char *const btrfs_csum_names[CSUM_BLAKE2B + 1];
/* 1: the checksum of buf (its first 32 bytes hold it, the rest is covered)
 * matches or cannot be verified (blake2b); 0: it does not; <0: error. */
int btrfs_csum_matches(const Btrfs *b, const uint8_t *buf, size_t len);

typedef struct Walk {
        const char *name;
        uint64_t owner;
        /* Whether a subtree whose keys have objectids lo..hi (inclusive) is
         * worth reading; NULL: all of them are. */
        bool (*want)(Btrfs *b, uint64_t lo, uint64_t hi);
        int (*item)(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size);
        /* Called for every tree block read and checked; NULL: nothing. */
        int (*block)(Btrfs *b, uint64_t logical);
        /* A tree block that fails its checks (b->why says how) and whose
         * keys would have objectids lo..hi: with lost, the walk skips its
         * subtree once lost returns 0; NULL: the walk fails. */
        int (*lost)(Btrfs *b, uint64_t lo, uint64_t hi);
} Walk;

/* Walks the tree rooted at root (a tree block at logical address root,
 * of the level and generation its parent records), checking every block,
 * and calls w->item for each item of every leaf w->want lets it reach. */
int btrfs_walk_tree(Btrfs *b, const Walk *w, uint64_t root, unsigned level, uint64_t generation);

/* ---------------------------------------------------------------- items.c */

/* Fills b->map from the chunk tree, read through b->boot, and checks both
 * against each other; then tree blocks are mapped through b->map. */
int btrfs_read_chunk_tree(Btrfs *b);
/* The root tree's walk finds the extent, dev and block group tree roots;
 * the dev tree's collects this device's dev extents; the extent tree's
 * (and the block group tree's) count the used extents of the chunks mapped
 * extent by extent, and the block groups' used bytes. */
extern const Walk btrfs_root_walk, btrfs_dev_walk, btrfs_extent_walk, btrfs_bg_walk;
/* Every stripe of every chunk on this device must have its dev extent. */
int btrfs_check_stripes_matched(Btrfs *b);
/* Prepares extent_tree_want: which chunks are mapped extent by extent. */
int btrfs_count_eligible(Btrfs *b);
/* Every committed tree block read so far must have its extent item: a
 * chunk holding one that has none is mapped whole. */
int btrfs_check_visited(Btrfs *b);
/* Adds what the log trees of an unreplayed fsync write. */
int btrfs_read_logs(Btrfs *b);
