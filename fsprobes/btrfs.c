/* SPDX-License-Identifier: GPL-2.0-or-later */
/* btrfs, from its own trees. The superblock's sys_chunk_array bootstraps
 * the logical→physical map, the chunk tree completes it, the root tree
 * leads to the dev tree (which parts of this device belong to a chunk at
 * all) and to the extent tree (which parts of the data chunks hold
 * extents). Used on this device:
 *
 *   - the first 1 MiB (never allocated; boot loaders live there) and every
 *     superblock copy inside the partition, added last;
 *   - every dev extent of a system, metadata or mixed chunk, of a striped
 *     or parity profile (RAID0/10/5/6) and of anything not understood;
 *   - in the dev extents of SINGLE, DUP and RAID1* data chunks, each extent
 *     item at every stripe of the chunk on this device (DUP: both copies),
 *     plus what the log trees of an unreplayed fsync reference.
 *
 * Every tree block is checked before it is trusted: checksum, bytenr,
 * fsid (or metadata_uuid), owner, level, generation against its parent,
 * first key against its parent's key, keys strictly ascending and inside
 * the parent's range, item data packed inside the block. A tree block that
 * fails, a feature not understood, two trees that disagree (dev extents
 * against chunk stripes, block groups against chunks), a tree block on
 * another device: the whole partition is mapped and the report says why.
 * A data chunk whose block group item counts other used bytes than its
 * extent items add up to (both are written by the same commit) is mapped
 * whole on its own.
 *
 * blake2b: the kernel checksums blake2b-256, which OpenSSL 3.0 cannot
 * compute (its BLAKE2b has no digest-length parameter). Those filesystems
 * are read without verifying checksums, relying on the other checks
 * (bytenr, fsid, owner, level, generation, key order, item bounds), and
 * the report says so. Metadata chunks are mapped whole anyway, so an
 * undetected bad data-extent record is the only exposure. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "hash.h"
#include "probe.h"

static const char *const types[] = { "btrfs", NULL };

#define MIB (1024ULL * 1024)

#define SUPER_OFFSET 65536ULL
#define SUPER_SIZE 4096
#define SUPER_COPIES 3

/* struct btrfs_super_block */
#define SB_FSID 0x20
#define SB_BYTENR 0x30
#define SB_FLAGS 0x38
#define SB_MAGIC 0x40
#define SB_GENERATION 0x48
#define SB_ROOT 0x50
#define SB_CHUNK_ROOT 0x58
#define SB_LOG_ROOT 0x60
#define SB_TOTAL_BYTES 0x70
#define SB_NUM_DEVICES 0x88
#define SB_SECTORSIZE 0x90
#define SB_NODESIZE 0x94
#define SB_SYS_ARRAY_SIZE 0xa0
#define SB_CHUNK_ROOT_GENERATION 0xa4
#define SB_COMPAT_RO 0xb4
#define SB_INCOMPAT 0xbc
#define SB_CSUM_TYPE 0xc4
#define SB_ROOT_LEVEL 0xc6
#define SB_CHUNK_ROOT_LEVEL 0xc7
#define SB_LOG_ROOT_LEVEL 0xc8
#define SB_DEV_ITEM 0xc9 /* devid, then total_bytes */
#define SB_METADATA_UUID 0x23b
#define SB_SYS_ARRAY 0x32b
#define SYS_ARRAY_MAX 2048

#define SUPER_FLAG_WRITTEN (1ULL << 0)
#define SUPER_FLAG_SEEDING (1ULL << 32)
#define SUPER_FLAG_METADUMP (1ULL << 33)
#define SUPER_FLAG_METADUMP_V2 (1ULL << 34)
/* Anything else is an error state (bit 2) or a conversion btrfs-progs left
 * half done (CHANGING_FSID, CHANGING_CSUM, CHANGING_BG_TREE, ...). */
#define SUPER_FLAGS_KNOWN (SUPER_FLAG_WRITTEN | SUPER_FLAG_SEEDING | SUPER_FLAG_METADUMP | SUPER_FLAG_METADUMP_V2)

/* Incompat bits 0-11 (mixed backref, default subvol, mixed groups, lzo,
 * zstd, big metadata, extref, raid56, skinny metadata, no holes, metadata
 * uuid, raid1c34) change nothing about where allocations are recorded.
 * Zoned (12), extent tree v2 (13), raid stripe tree (14), simple quotas
 * (16, new extent tree records), remap tree (17) and anything later do. */
#define INCOMPAT_METADATA_UUID (1ULL << 10)
#define INCOMPAT_ZONED (1ULL << 12)
#define INCOMPAT_EXTENT_TREE_V2 (1ULL << 13)
#define INCOMPAT_RAID_STRIPE_TREE (1ULL << 14)
#define INCOMPAT_KNOWN 0xfffULL
/* free space tree, its valid bit, verity, block group tree */
#define COMPAT_RO_BLOCK_GROUP_TREE (1ULL << 3)
#define COMPAT_RO_KNOWN 0xfULL

/* struct btrfs_header, then items (leaf) or key pointers (node) */
#define HDR_FSID 0x20
#define HDR_BYTENR 0x30
#define HDR_GENERATION 0x50
#define HDR_OWNER 0x58
#define HDR_NRITEMS 0x60
#define HDR_LEVEL 0x64
#define HDR_SIZE 0x65
#define KEY_SIZE 17
#define ITEM_SIZE 25     /* key, data offset from HDR_SIZE, data size */
#define KEY_PTR_SIZE 33  /* key, block pointer, generation */
#define MAX_LEVEL 8

#define KEY_EXTENT_DATA 108
#define KEY_ROOT_ITEM 132
#define KEY_EXTENT_ITEM 168
#define KEY_METADATA_ITEM 169
#define KEY_BLOCK_GROUP_ITEM 192
#define KEY_DEV_EXTENT 204
#define KEY_DEV_ITEM 216
#define KEY_CHUNK_ITEM 228

#define ROOT_TREE_OBJECTID 1ULL
#define EXTENT_TREE_OBJECTID 2ULL
#define CHUNK_TREE_OBJECTID 3ULL
#define DEV_TREE_OBJECTID 4ULL
#define BLOCK_GROUP_TREE_OBJECTID 11ULL
#define DEV_ITEMS_OBJECTID 1ULL
#define FIRST_CHUNK_TREE_OBJECTID 256ULL
#define TREE_LOG_OBJECTID ((uint64_t) -6)

/* struct btrfs_chunk, struct btrfs_stripe */
#define CHUNK_LENGTH 0
#define CHUNK_STRIPE_LEN 16
#define CHUNK_TYPE 24
#define CHUNK_NUM_STRIPES 44
#define CHUNK_SUB_STRIPES 46
#define CHUNK_STRIPES 48
#define STRIPE_SIZE 32

#define BG_DATA (1ULL << 0)
#define BG_SYSTEM (1ULL << 1)
#define BG_METADATA (1ULL << 2)
#define BG_RAID0 (1ULL << 3)
#define BG_RAID1 (1ULL << 4)
#define BG_DUP (1ULL << 5)
#define BG_RAID10 (1ULL << 6)
#define BG_RAID5 (1ULL << 7)
#define BG_RAID6 (1ULL << 8)
#define BG_RAID1C3 (1ULL << 9)
#define BG_RAID1C4 (1ULL << 10)
#define BG_TYPE_MASK (BG_DATA | BG_SYSTEM | BG_METADATA)
#define BG_PROFILE_MASK (BG_RAID0 | BG_RAID1 | BG_DUP | BG_RAID10 | BG_RAID5 | BG_RAID6 | BG_RAID1C3 | BG_RAID1C4)
#define BG_KNOWN (BG_TYPE_MASK | BG_PROFILE_MASK)
#define BG_MIRRORED (BG_DUP | BG_RAID1 | BG_RAID1C3 | BG_RAID1C4)

#define ROOT_ITEM_GENERATION 160
#define ROOT_ITEM_BYTENR 176
#define ROOT_ITEM_LEVEL 238
#define ROOT_ITEM_MIN_SIZE 239
#define DEV_EXTENT_CHUNK_OFFSET 16
#define DEV_EXTENT_LENGTH 24
#define DEV_EXTENT_SIZE 48
#define DEV_ITEM_TOTAL_BYTES 8
#define DEV_ITEM_MIN_SIZE 16
#define BG_ITEM_USED 0
#define BG_ITEM_FLAGS 16
#define BG_ITEM_SIZE 24
#define EXTENT_ITEM_FLAGS 16
#define EXTENT_FLAG_TREE_BLOCK (1ULL << 1)
#define FILE_EXTENT_TYPE 20
#define FILE_EXTENT_DISK_BYTENR 21
#define FILE_EXTENT_DISK_NUM_BYTES 29
#define FILE_EXTENT_SIZE 53
#define FILE_EXTENT_INLINE 0
#define FILE_EXTENT_REG 1
#define FILE_EXTENT_PREALLOC 2

enum { CSUM_CRC32C, CSUM_XXHASH, CSUM_SHA256, CSUM_BLAKE2B };
static const char *const csum_names[] = { "crc32c", "xxhash64", "sha256", "blake2b" };
static const size_t csum_sizes[] = { 4, 8, 32, 32 };

/* ---------------------------------------------------------------- crc32c */

/* Castagnoli, reflected; slicing by 8 over tables built once. SSE4.2's
 * crc32 instruction computes the same polynomial and is used when the CPU
 * has it, unless BMAPSCAN_CRC32C_PORTABLE is set (the tests use it to run
 * the table code on machines that would not). */
static uint32_t crc32c_table[8][256];
static bool crc32c_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                crc32c_table[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
                for (int t = 1; t < 8; t++)
                        crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
        crc32c_hw = __builtin_cpu_supports("sse4.2") && !getenv("BMAPSCAN_CRC32C_PORTABLE");
#endif
}

static uint32_t crc32c_portable(uint32_t crc, const uint8_t *p, size_t n) {
        const uint32_t(*t)[256] = crc32c_table;
        for (; n >= 8; p += 8, n -= 8) {
                uint32_t lo = get_le32(p) ^ crc, hi = get_le32(p + 4);
                crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
                      t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        }
        for (; n > 0; p++, n--)
                crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xff];
        return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
        uint64_t c = crc;
        for (; n >= 8; p += 8, n -= 8) {
                uint64_t v;
                memcpy(&v, p, sizeof(v)); /* little-endian host: the byte order crc32q expects */
                c = _mm_crc32_u64(c, v);
        }
        uint32_t c32 = (uint32_t) c;
        for (; n > 0; p++, n--)
                c32 = _mm_crc32_u8(c32, *p);
        return c32;
}
#endif

static uint32_t crc32c(const uint8_t *p, size_t n) {
        pthread_once(&crc32c_once, crc32c_init);
#if defined(__x86_64__)
        if (crc32c_hw)
                return ~crc32c_sse42(~0u, p, n);
#endif
        return ~crc32c_portable(~0u, p, n);
}

/* ---------------------------------------------------------------- xxhash64 */

/* XXH64 with seed 0, from the algorithm's description: four accumulator
 * lanes over 32-byte stripes, then the tail in 8, 4 and 1-byte steps, then
 * the avalanche. btrfs stores the result little-endian. */
#define XXH_P1 0x9E3779B185EBCA87ULL
#define XXH_P2 0xC2B2AE3D27D4EB4FULL
#define XXH_P3 0x165667B19E3779F9ULL
#define XXH_P4 0x85EBCA77C2B2AE63ULL
#define XXH_P5 0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, unsigned r) {
        return (x << r) | (x >> (64 - r));
}

static uint64_t xxh_round(uint64_t acc, uint64_t lane) {
        return rotl64(acc + lane * XXH_P2, 31) * XXH_P1;
}

static uint64_t xxh_merge(uint64_t h, uint64_t acc) {
        return (h ^ xxh_round(0, acc)) * XXH_P1 + XXH_P4;
}

static uint64_t xxh64(const uint8_t *p, size_t n) {
        const uint8_t *end = p + n;
        uint64_t h;

        if (n >= 32) {
                uint64_t v1 = XXH_P1 + XXH_P2, v2 = XXH_P2, v3 = 0, v4 = -XXH_P1;
                for (; end - p >= 32; p += 32) {
                        v1 = xxh_round(v1, get_le64(p));
                        v2 = xxh_round(v2, get_le64(p + 8));
                        v3 = xxh_round(v3, get_le64(p + 16));
                        v4 = xxh_round(v4, get_le64(p + 24));
                }
                h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
                h = xxh_merge(h, v1);
                h = xxh_merge(h, v2);
                h = xxh_merge(h, v3);
                h = xxh_merge(h, v4);
        } else
                h = XXH_P5;
        h += n;
        for (; end - p >= 8; p += 8)
                h = rotl64(h ^ xxh_round(0, get_le64(p)), 27) * XXH_P1 + XXH_P4;
        if (end - p >= 4) {
                h = rotl64(h ^ (uint64_t) get_le32(p) * XXH_P1, 23) * XXH_P2 + XXH_P3;
                p += 4;
        }
        for (; p < end; p++)
                h = rotl64(h ^ *p * XXH_P5, 11) * XXH_P1;
        h ^= h >> 33;
        h *= XXH_P2;
        h ^= h >> 29;
        h *= XXH_P3;
        h ^= h >> 32;
        return h;
}

/* ---------------------------------------------------------------- the filesystem */

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
        uint64_t extent_bytes; /* extent items counted in it */
        uint64_t bg_used;
        bool bg_seen;
        bool here;  /* has a dev extent on this device */
        bool whole; /* a data chunk whose extent records were doubtful */
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
        size_t *eligible; /* prefix counts of chunks mapped extent by extent */
        Extents logical;  /* used logical bytes in those chunks */
        uint64_t log_extents;
        unsigned bg_mismatch, doubtful;
        char why[200];
} Btrfs;

static int bad(Btrfs *b, int err, const char *fmt, ...) _printf_(3, 4);
static int bad(Btrfs *b, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->why, sizeof(b->why), fmt, ap);
        va_end(ap);
        return err;
}

/* Puts "prefix: " before the reason already given. */
static int bad_in(Btrfs *b, int err, const char *prefix) {
        char tmp[sizeof(b->why)];
        snprintf(tmp, sizeof(tmp), "%s", b->why);
        return bad(b, err, "%s: %s", prefix, tmp);
}

/* -EUCLEAN: the metadata is inconsistent or damaged; -EOPNOTSUPP: it uses
 * what this parser does not understand. Both map the whole partition; any
 * other error is a failure to read. */
#define DOUBT (-EUCLEAN)
#define UNSUPPORTED (-EOPNOTSUPP)

static Key get_key(const uint8_t *p) {
        return (Key) { get_le64(p), p[8], get_le64(p + 9) };
}

static int key_cmp(const Key *a, const Key *b) {
        if (a->objectid != b->objectid)
                return a->objectid < b->objectid ? -1 : 1;
        if (a->type != b->type)
                return a->type < b->type ? -1 : 1;
        if (a->offset != b->offset)
                return a->offset < b->offset ? -1 : 1;
        return 0;
}

static bool is_pow2(uint64_t v) {
        return v && !(v & (v - 1));
}

static int read_at(Btrfs *b, uint64_t off, void *buf, size_t n, const char *what) {
        int k = reader_read(b->r, off, buf, n);
        if (k == -ERANGE)
                return bad(b, DOUBT, "%s at byte %" PRIu64 " lies outside the partition", what, off);
        if (k == -ENODATA)
                return bad(b, k, "%s at byte %" PRIu64 " lies past the end of the image", what, off);
        if (k < 0)
                return bad(b, k, "cannot read %s at byte %" PRIu64 ": %s", what, off, strerror(-k));
        return 0;
}

/* 1: the checksum of buf (its first 32 bytes hold it, the rest is covered)
 * matches or cannot be verified (blake2b); 0: it does not; <0: error. */
static int csum_matches(const Btrfs *b, const uint8_t *buf, size_t len) {
        uint8_t sum[32] = {};
        switch (b->csum_type) {
        case CSUM_CRC32C: {
                uint32_t c = crc32c(buf + 0x20, len - 0x20);
                for (int i = 0; i < 4; i++)
                        sum[i] = (uint8_t) (c >> (8 * i));
                break;
        }
        case CSUM_XXHASH: {
                uint64_t h = xxh64(buf + 0x20, len - 0x20);
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

/* ---------------------------------------------------------------- chunks */

static const Chunk *chunk_find(const ChunkMap *m, uint64_t logical) {
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

static Chunk *chunk_find_mut(ChunkMap *m, uint64_t logical) {
        return (Chunk *) chunk_find(m, logical);
}

static Chunk *chunk_at(ChunkMap *m, uint64_t start) {
        Chunk *c = chunk_find_mut(m, start);
        return c && c->start == start ? c : NULL;
}

static const char *profile_name(uint64_t type) {
        switch (type & BG_PROFILE_MASK) {
        case 0:
                return "single";
        case BG_DUP:
                return "DUP";
        case BG_RAID0:
                return "RAID0";
        case BG_RAID1:
                return "RAID1";
        case BG_RAID10:
                return "RAID10";
        case BG_RAID5:
                return "RAID5";
        case BG_RAID6:
                return "RAID6";
        case BG_RAID1C3:
                return "RAID1C3";
        case BG_RAID1C4:
                return "RAID1C4";
        default:
                return "unknown";
        }
}

/* How many stripes' worth of data the chunk's length spans (its stripes
 * each hold length / that many bytes); 0 for a profile we do not know,
 * which is mapped whole whatever its dev extents say. */
static uint64_t stripe_divisor(const Chunk *c) {
        if (c->type & ~BG_KNOWN)
                return 0;
        switch (c->type & BG_PROFILE_MASK) {
        case 0:
        case BG_DUP:
        case BG_RAID1:
        case BG_RAID1C3:
        case BG_RAID1C4:
                return 1;
        case BG_RAID0:
                return c->num_stripes;
        case BG_RAID10:
                return c->num_stripes / c->sub_stripes;
        case BG_RAID5:
                return c->num_stripes - 1;
        case BG_RAID6:
                return c->num_stripes - 2;
        default:
                return 0;
        }
}

/* A data chunk on this device whose every copy holds the same bytes at the
 * same offset: its extents can be mapped one by one on each stripe. */
static bool chunk_by_extent(const Chunk *c) {
        return c->here && !c->whole && (c->type & ~BG_KNOWN) == 0 && (c->type & BG_TYPE_MASK) == BG_DATA &&
               ((c->type & BG_PROFILE_MASK) == 0 || (c->type & BG_MIRRORED));
}

/* Parses one chunk item (p, size bytes) at logical start into m, checking
 * what the kernel's chunk validation checks; with in_order, it must come
 * after every chunk already in m. */
static int chunk_add(Btrfs *b, ChunkMap *m, uint64_t start, const uint8_t *p, size_t size, bool in_order) {
        if (size < CHUNK_STRIPES)
                return bad(b, DOUBT, "chunk item at %" PRIu64 " is %zu bytes, too short", start, size);
        Chunk c = {
                .start = start,
                .length = get_le64(p + CHUNK_LENGTH),
                .stripe_len = get_le64(p + CHUNK_STRIPE_LEN),
                .type = get_le64(p + CHUNK_TYPE),
                .num_stripes = get_le16(p + CHUNK_NUM_STRIPES),
                .sub_stripes = get_le16(p + CHUNK_SUB_STRIPES),
                .first_stripe = m->ns,
        };
        uint64_t profile = c.type & BG_PROFILE_MASK, div;
        uint32_t want = 0;

        if (c.num_stripes == 0 || size != CHUNK_STRIPES + (size_t) c.num_stripes * STRIPE_SIZE)
                return bad(b, DOUBT, "chunk at %" PRIu64 ": %u stripes in a %zu-byte item", start, c.num_stripes, size);
        if (c.length == 0 || c.length % b->sectorsize || start % b->sectorsize || start + c.length < start)
                return bad(b, DOUBT, "chunk at %" PRIu64 " has a bad length %" PRIu64, start, c.length);
        if (!is_pow2(c.stripe_len))
                return bad(b, DOUBT, "chunk at %" PRIu64 " has a bad stripe length %" PRIu64, start, c.stripe_len);
        if (!(c.type & BG_TYPE_MASK) || (profile & (profile - 1)))
                return bad(b, DOUBT, "chunk at %" PRIu64 " has type 0x%" PRIx64, start, c.type);
        switch (profile) {
        case 0:
                want = 1;
                break;
        case BG_DUP:
        case BG_RAID1:
                want = 2;
                break;
        case BG_RAID1C3:
                want = 3;
                break;
        case BG_RAID1C4:
                want = 4;
                break;
        case BG_RAID10:
                if (c.sub_stripes != 2 || c.num_stripes % 2)
                        return bad(b, DOUBT, "RAID10 chunk at %" PRIu64 ": %u stripes, %u sub-stripes", start,
                                   c.num_stripes, c.sub_stripes);
                break;
        case BG_RAID5:
                if (c.num_stripes < 2)
                        return bad(b, DOUBT, "RAID5 chunk at %" PRIu64 " with %u stripes", start, c.num_stripes);
                break;
        case BG_RAID6:
                if (c.num_stripes < 3)
                        return bad(b, DOUBT, "RAID6 chunk at %" PRIu64 " with %u stripes", start, c.num_stripes);
                break;
        default:
                break;
        }
        if (want && c.num_stripes != want)
                return bad(b, DOUBT, "%s chunk at %" PRIu64 " with %u stripes", profile_name(c.type), start,
                           c.num_stripes);
        div = stripe_divisor(&c);
        if (div && c.length % div)
                return bad(b, DOUBT, "chunk at %" PRIu64 ": %" PRIu64 " bytes do not split into its %u stripes", start,
                           c.length, c.num_stripes);
        if (in_order && m->n > 0) {
                const Chunk *prev = &m->v[m->n - 1];
                if (start < prev->start + prev->length)
                        return bad(b, DOUBT, "chunks at %" PRIu64 " and %" PRIu64 " overlap or are out of order",
                                   prev->start, start);
        }

        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                Chunk *v = realloc(m->v, cap * sizeof(*v));
                if (!v)
                        return bad(b, -ENOMEM, "out of memory for the chunk map");
                m->v = v;
                m->cap = cap;
        }
        if (m->caps - m->ns < c.num_stripes) {
                size_t cap = m->caps ? m->caps * 2 : 128;
                while (cap - m->ns < c.num_stripes)
                        cap *= 2;
                Stripe *s = realloc(m->s, cap * sizeof(*s));
                if (!s)
                        return bad(b, -ENOMEM, "out of memory for the chunk map");
                m->s = s;
                m->caps = cap;
        }
        for (uint32_t i = 0; i < c.num_stripes; i++) {
                const uint8_t *sp = p + CHUNK_STRIPES + (size_t) i * STRIPE_SIZE;
                m->s[m->ns + i] = (Stripe) { .devid = get_le64(sp), .offset = get_le64(sp + 8) };
                if (profile == BG_DUP && get_le64(sp) != get_le64(p + CHUNK_STRIPES))
                        return bad(b, DOUBT, "DUP chunk at %" PRIu64 " spans two devices", start);
        }
        m->ns += c.num_stripes;
        m->v[m->n++] = c;
        return 0;
}

static void chunk_map_done(ChunkMap *m) {
        free(m->v);
        free(m->s);
        *m = (ChunkMap) {};
}

static int cmp_chunk(const void *a, const void *b) {
        const Chunk *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

/* The superblock's copy of the system chunks: (key, chunk item) pairs. */
static int parse_sys_array(Btrfs *b) {
        uint32_t size = get_le32(b->sb + SB_SYS_ARRAY_SIZE);
        const uint8_t *a = b->sb + SB_SYS_ARRAY;
        ChunkMap tmp = {};
        int k = 0;

        if (size == 0 || size > SYS_ARRAY_MAX)
                return bad(b, DOUBT, "sys_chunk_array_size %" PRIu32 " is not 1..%d", size, SYS_ARRAY_MAX);
        for (uint32_t off = 0; off < size;) {
                if (size - off < KEY_SIZE + CHUNK_STRIPES) {
                        k = bad(b, DOUBT, "sys_chunk_array: %" PRIu32 " stray bytes at its end", size - off);
                        goto out;
                }
                Key key = get_key(a + off);
                const uint8_t *c = a + off + KEY_SIZE;
                size_t len = CHUNK_STRIPES + (size_t) get_le16(c + CHUNK_NUM_STRIPES) * STRIPE_SIZE;
                if (key.type != KEY_CHUNK_ITEM || key.objectid != FIRST_CHUNK_TREE_OBJECTID) {
                        k = bad(b, DOUBT, "sys_chunk_array holds key type %u, not a chunk", key.type);
                        goto out;
                }
                if (len > size - off - KEY_SIZE) {
                        k = bad(b, DOUBT, "sys_chunk_array: the chunk at %" PRIu64 " runs past its end", key.offset);
                        goto out;
                }
                if (!(get_le64(c + CHUNK_TYPE) & BG_SYSTEM)) {
                        k = bad(b, DOUBT, "sys_chunk_array holds a non-system chunk at %" PRIu64, key.offset);
                        goto out;
                }
                /* The order is not promised here: collect, then sort. */
                k = chunk_add(b, &tmp, key.offset, c, len, false);
                if (k < 0)
                        goto out;
                off += KEY_SIZE + (uint32_t) len;
        }
        qsort(tmp.v, tmp.n, sizeof(*tmp.v), cmp_chunk);
        for (size_t i = 1; i < tmp.n; i++)
                if (tmp.v[i].start < tmp.v[i - 1].start + tmp.v[i - 1].length) {
                        k = bad(b, DOUBT, "sys_chunk_array: chunks at %" PRIu64 " and %" PRIu64 " overlap",
                                tmp.v[i - 1].start, tmp.v[i].start);
                        goto out;
                }
        b->boot = tmp;
        return 0;
out:
        chunk_map_done(&tmp);
        return k;
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
                return bad(b, DOUBT, "tree block %" PRIu64 " lies in no chunk", logical);
        off = logical - c->start;
        s = m->s + c->first_stripe;
        if (c->length - off < b->nodesize)
                return bad(b, DOUBT, "tree block %" PRIu64 " crosses the end of its chunk", logical);
        if (!(c->type & (BG_METADATA | BG_SYSTEM)) || (c->type & ~BG_KNOWN))
                return bad(b, DOUBT, "tree block %" PRIu64 " lies in a chunk of type 0x%" PRIx64, logical, c->type);

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
                        return bad(b, DOUBT, "tree block %" PRIu64 " crosses a stripe boundary", logical);
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
                return bad(b, DOUBT, "tree block %" PRIu64 " lies in a %s chunk, which this parser does not read", logical,
                           profile_name(c->type));
        }
        if (!found)
                return bad(b, DOUBT, "tree block %" PRIu64 " has no copy on this device (devid %" PRIu64 ")", logical,
                           b->devid);
        if (overflow || phys > b->dev_bytes || b->dev_bytes - phys < b->nodesize)
                return bad(b, DOUBT, "tree block %" PRIu64 " would lie past the device's end", logical);
        *ret = phys;
        return 0;
}

typedef struct Walk {
        const char *name;
        uint64_t owner;
        /* Whether a subtree whose keys have objectids lo..hi (inclusive) is
         * worth reading; NULL: all of them are. */
        bool (*want)(Btrfs *b, uint64_t lo, uint64_t hi);
        int (*item)(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size);
} Walk;

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
                return bad(b, DOUBT, "%s: tree block pointer %" PRIu64 " is not sector-aligned", w->name, logical);
        k = map_tree_block(b, logical, &phys);
        if (k < 0)
                return bad_in(b, k, w->name);
        char what[48];
        snprintf(what, sizeof(what), "tree block %" PRIu64, logical);
        k = read_at(b, phys, buf, ns, what);
        if (k < 0)
                return bad_in(b, k, w->name);

        k = csum_matches(b, buf, ns);
        if (k < 0)
                return bad(b, k, "%s: cannot checksum tree block %" PRIu64 ": %s", w->name, logical, strerror(-k));
        if (k == 0)
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " (byte %" PRIu64 ") fails its %s checksum", w->name, logical,
                           phys, csum_names[b->csum_type]);
        if (get_le64(buf + HDR_BYTENR) != logical)
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " says it is block %" PRIu64, w->name, logical,
                           get_le64(buf + HDR_BYTENR));
        if (memcmp(buf + HDR_FSID, b->meta_fsid, 16) != 0)
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " belongs to another filesystem", w->name, logical);
        if (buf[HDR_LEVEL] != level)
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " has level %u, expected %u", w->name, logical, buf[HDR_LEVEL],
                           level);
        /* Nothing is newer than the transaction after the committed one (a log's). */
        if (get_le64(buf + HDR_GENERATION) > b->generation + 1)
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " has generation %" PRIu64 ", newer than the filesystem's %" PRIu64,
                           w->name, logical, get_le64(buf + HDR_GENERATION), b->generation);
        if (generation && get_le64(buf + HDR_GENERATION) != generation)
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " has generation %" PRIu64 ", expected %" PRIu64, w->name,
                           logical, get_le64(buf + HDR_GENERATION), generation);
        if (get_le64(buf + HDR_OWNER) != w->owner)
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " is owned by tree %" PRId64, w->name, logical,
                           (int64_t) get_le64(buf + HDR_OWNER));

        n = get_le32(buf + HDR_NRITEMS);
        room = ns - HDR_SIZE;
        if (n > room / (level ? KEY_PTR_SIZE : ITEM_SIZE) || (n == 0 && (level > 0 || lo)))
                return bad(b, DOUBT, "%s: tree block %" PRIu64 " claims %" PRIu32 " items", w->name, logical, n);

        uint32_t data_end = room; /* leaf item data is packed downwards from the block's end */
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *p = buf + HDR_SIZE + (size_t) i * (level ? KEY_PTR_SIZE : ITEM_SIZE);
                key = get_key(p);
                if (i == 0 && lo && key_cmp(&key, lo) != 0)
                        return bad(b, DOUBT, "%s: tree block %" PRIu64 " starts with another key than its parent says",
                                   w->name, logical);
                if (i > 0 && key_cmp(&prev, &key) >= 0)
                        return bad(b, DOUBT, "%s: tree block %" PRIu64 ": keys out of order at item %" PRIu32, w->name,
                                   logical, i);
                if (hi && key_cmp(&key, hi) >= 0)
                        return bad(b, DOUBT, "%s: tree block %" PRIu64 ": key beyond its parent's range at item %" PRIu32,
                                   w->name, logical, i);
                prev = key;
                if (level) {
                        uint64_t ptr = get_le64(p + KEY_SIZE);
                        if (ptr == 0 || ptr % b->sectorsize || get_le64(p + KEY_SIZE + 8) == 0)
                                return bad(b, DOUBT, "%s: node %" PRIu64 " has a bad pointer at item %" PRIu32, w->name,
                                           logical, i);
                        continue;
                }
                uint32_t off = get_le32(p + KEY_SIZE), size = get_le32(p + KEY_SIZE + 4);
                if ((uint64_t) off + size != data_end || off < (uint64_t) n * ITEM_SIZE)
                        return bad(b, DOUBT, "%s: leaf %" PRIu64 ": item %" PRIu32 " data at %" PRIu32 "+%" PRIu32
                                   " is not packed inside the block", w->name, logical, i, off, size);
                data_end = off;
        }
        return 0;
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
static int walk_tree(Btrfs *b, const Walk *w, uint64_t root, unsigned level, uint64_t generation) {
        struct {
                uint32_t n, slot;
                Key hi;
                bool has_hi;
        } f[MAX_LEVEL];
        unsigned cur = level;
        int k;

        if (level >= MAX_LEVEL)
                return bad(b, DOUBT, "%s: root level %u (at most %d)", w->name, level, MAX_LEVEL - 1);
        k = read_tree_block(b, w, root, level, generation, NULL, NULL, b->blocks[level]);
        if (k < 0)
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
                k = read_tree_block(b, w, get_le64(p + KEY_SIZE), child, get_le64(p + KEY_SIZE + 8), &lo,
                                    has_hi ? &hi : NULL, b->blocks[child]);
                if (k < 0)
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

/* ---------------------------------------------------------------- chunk tree */

static int chunk_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type == KEY_CHUNK_ITEM) {
                if (key->objectid != FIRST_CHUNK_TREE_OBJECTID)
                        return bad(b, DOUBT, "chunk tree: chunk item with objectid %" PRIu64, key->objectid);
                int k = chunk_add(b, &b->map, key->offset, data, size, true);
                return k < 0 ? bad_in(b, k, "chunk tree") : 0;
        }
        if (key->type == KEY_DEV_ITEM && key->objectid == DEV_ITEMS_OBJECTID && key->offset == b->devid) {
                if (size < DEV_ITEM_MIN_SIZE || get_le64(data) != b->devid)
                        return bad(b, DOUBT, "chunk tree: bad device item for devid %" PRIu64, b->devid);
                /* The superblock carries a copy of this item; both are
                 * written by the same commit. */
                if (get_le64(data + DEV_ITEM_TOTAL_BYTES) != b->dev_bytes)
                        return bad(b, DOUBT,
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

static int read_chunk_tree(Btrfs *b) {
        static const Walk w = { .name = "chunk tree", .owner = CHUNK_TREE_OBJECTID, .item = chunk_tree_item };
        int k;

        b->cur = &b->boot;
        k = walk_tree(b, &w, get_le64(b->sb + SB_CHUNK_ROOT), b->sb[SB_CHUNK_ROOT_LEVEL],
                      get_le64(b->sb + SB_CHUNK_ROOT_GENERATION));
        if (k < 0)
                return k;
        if (!b->dev_item_seen)
                return bad(b, DOUBT, "the chunk tree has no item for this device (devid %" PRIu64 ")", b->devid);
        /* The bootstrap copy must say what the tree says, or one of them is stale. */
        for (size_t i = 0; i < b->boot.n; i++) {
                const Chunk *c = chunk_at(&b->map, b->boot.v[i].start);
                if (!c || !same_chunk(&b->boot, &b->boot.v[i], &b->map, c))
                        return bad(b, DOUBT, "the system chunk at %" PRIu64 " differs between sys_chunk_array and the chunk tree",
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
                return bad(b, DOUBT, "root tree: the root item of tree %" PRIu64 " is %" PRIu32 " bytes", key->objectid, size);
        *t = (TreeRoot) {
                .bytenr = get_le64(data + ROOT_ITEM_BYTENR),
                .generation = get_le64(data + ROOT_ITEM_GENERATION),
                .level = data[ROOT_ITEM_LEVEL],
                .found = true,
        };
        if (t->generation == 0 || t->generation > b->generation)
                return bad(b, DOUBT, "root tree: tree %" PRIu64 " has generation %" PRIu64 " (superblock: %" PRIu64 ")",
                           key->objectid, t->generation, b->generation);
        return 0;
}

static bool root_tree_want(Btrfs *b, uint64_t lo, uint64_t hi) {
        return lo <= BLOCK_GROUP_TREE_OBJECTID && hi >= EXTENT_TREE_OBJECTID;
}

/* ---------------------------------------------------------------- dev tree */

static int dev_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type != KEY_DEV_EXTENT || key->objectid != b->devid)
                return 0;
        if (size < DEV_EXTENT_SIZE)
                return bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " is %" PRIu32 " bytes", key->offset, size);
        DevExtent d = { .physical = key->offset, .length = get_le64(data + DEV_EXTENT_LENGTH) };
        uint64_t chunk = get_le64(data + DEV_EXTENT_CHUNK_OFFSET);
        if (d.length == 0 || d.physical > b->dev_bytes || b->dev_bytes - d.physical < d.length)
                return bad(b, DOUBT, "dev tree: dev extent %" PRIu64 "+%" PRIu64 " does not fit the device (%" PRIu64 " bytes)",
                           d.physical, d.length, b->dev_bytes);
        if (b->n_dev > 0 && b->dev[b->n_dev - 1].physical + b->dev[b->n_dev - 1].length > d.physical)
                return bad(b, DOUBT, "dev tree: dev extents overlap at byte %" PRIu64, d.physical);

        /* Each dev extent is the on-device home of one stripe of its chunk. */
        Chunk *c = chunk_at(&b->map, chunk);
        if (!c)
                return bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " belongs to chunk %" PRIu64 ", which does not exist",
                           d.physical, chunk);
        Stripe *s = b->map.s + c->first_stripe;
        uint32_t i;
        for (i = 0; i < c->num_stripes; i++)
                if (s[i].devid == b->devid && s[i].offset == d.physical && !s[i].matched)
                        break;
        if (i == c->num_stripes)
                return bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " is no stripe of chunk %" PRIu64, d.physical, chunk);
        uint64_t div = stripe_divisor(c);
        if (div && d.length != c->length / div)
                return bad(b, DOUBT, "dev tree: dev extent at %" PRIu64 " is %" PRIu64 " bytes, its chunk's stripes %" PRIu64,
                           d.physical, d.length, c->length / div);
        s[i].matched = true;
        d.chunk = (size_t) (c - b->map.v);

        if (b->n_dev == b->cap_dev) {
                size_t cap = b->cap_dev ? b->cap_dev * 2 : 64;
                DevExtent *v = realloc(b->dev, cap * sizeof(*v));
                if (!v)
                        return bad(b, -ENOMEM, "out of memory for the dev extents");
                b->dev = v;
                b->cap_dev = cap;
        }
        b->dev[b->n_dev++] = d;
        return 0;
}

static bool dev_tree_want(Btrfs *b, uint64_t lo, uint64_t hi) {
        return lo <= b->devid && hi >= b->devid;
}

/* Every stripe of every chunk on this device must have its dev extent:
 * a stripe the dev tree does not know is space the chunk tree says is used. */
static int check_stripes_matched(Btrfs *b) {
        for (size_t i = 0; i < b->map.n; i++) {
                const Chunk *c = &b->map.v[i];
                for (uint32_t j = 0; j < c->num_stripes; j++) {
                        const Stripe *s = &b->map.s[c->first_stripe + j];
                        if (s->devid == b->devid && !s->matched)
                                return bad(b, DOUBT, "chunk %" PRIu64 " has a stripe at byte %" PRIu64 " with no dev extent",
                                           c->start, s->offset);
                }
        }
        return 0;
}

/* ---------------------------------------------------------------- extent and block group trees */

/* Prefix counts of the chunks mapped extent by extent, to tell in
 * O(log n) whether a subtree's key range touches one. */
static int count_eligible(Btrfs *b) {
        b->eligible = malloc((b->map.n + 1) * sizeof(*b->eligible));
        if (!b->eligible)
                return bad(b, -ENOMEM, "out of memory");
        b->eligible[0] = 0;
        for (size_t i = 0; i < b->map.n; i++)
                b->eligible[i + 1] = b->eligible[i] + chunk_by_extent(&b->map.v[i]);
        return 0;
}

/* Whether a chunk mapped extent by extent overlaps logical lo..hi inclusive. */
static bool extent_tree_want(Btrfs *b, uint64_t lo, uint64_t hi) {
        const ChunkMap *m = &b->map;
        size_t a = 0, z = m->n, first, last;
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
        last = a;
        return last > first && b->eligible[last] > b->eligible[first];
}

static int block_group_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        Chunk *c = chunk_at(&b->map, key->objectid);
        if (size < BG_ITEM_SIZE)
                return bad(b, DOUBT, "block group item at %" PRIu64 " is %" PRIu32 " bytes", key->objectid, size);
        if (!c || c->length != key->offset)
                return bad(b, DOUBT, "block group %" PRIu64 "+%" PRIu64 " has no chunk", key->objectid, key->offset);
        if (get_le64(data + BG_ITEM_FLAGS) != c->type)
                return bad(b, DOUBT, "block group %" PRIu64 " has flags 0x%" PRIx64 ", its chunk 0x%" PRIx64, key->objectid,
                           get_le64(data + BG_ITEM_FLAGS), c->type);
        if (c->bg_seen)
                return bad(b, DOUBT, "block group %" PRIu64 " is recorded twice", key->objectid);
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
                        return bad(b, DOUBT, "%s %" PRIu64 "+%" PRIu64 " reaches byte %" PRIu64 ", in no chunk", what, start,
                                   len, at);
                if (chunk_by_extent(c))
                        b->doubtful++;
                c->whole = true;
                at = c->start + c->length;
        }
        return 0;
}

static int extent_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        uint64_t start = key->objectid, len;

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
                return bad(b, DOUBT, "extent tree: extent %" PRIu64 "+%" PRIu64, start, len);
        Chunk *c = chunk_find_mut(&b->map, start);
        if (!c)
                return bad(b, DOUBT, "extent tree: extent %" PRIu64 "+%" PRIu64 " lies in no chunk", start, len);
        /* An extent across a chunk's end, or a tree block in a data
         * chunk: the chunks involved are not what they claim to be. */
        if (start + len - c->start > c->length)
                return chunks_whole(b, start, len, "extent tree: extent");
        if (!chunk_by_extent(c))
                return 0;
        if (key->type == KEY_METADATA_ITEM || (size >= EXTENT_ITEM_FLAGS + 8 && (get_le64(data + EXTENT_ITEM_FLAGS) & EXTENT_FLAG_TREE_BLOCK)))
                return chunks_whole(b, start, len, "extent tree: tree block");
        c->extent_bytes += len;
        int k = extents_add(&b->logical, start, start + len);
        return k < 0 ? bad(b, k, "out of memory for the extents") : 0;
}

static int bg_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        return key->type == KEY_BLOCK_GROUP_ITEM ? block_group_item(b, key, data, size) : 0;
}

/* ---------------------------------------------------------------- log trees */

static int log_root_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type != KEY_ROOT_ITEM || key->objectid != TREE_LOG_OBJECTID)
                return 0;
        if (size < ROOT_ITEM_MIN_SIZE)
                return bad(b, DOUBT, "log root tree: a root item of %" PRIu32 " bytes", size);
        if (b->n_logs == b->cap_logs) {
                size_t cap = b->cap_logs ? b->cap_logs * 2 : 16;
                TreeRoot *v = realloc(b->logs, cap * sizeof(*v));
                if (!v)
                        return bad(b, -ENOMEM, "out of memory for the log trees");
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

/* A file extent the log writes: replay makes it used, whether or not the
 * extent tree knows it yet. */
static int log_tree_item(Btrfs *b, const Key *key, const uint8_t *data, uint32_t size) {
        if (key->type != KEY_EXTENT_DATA)
                return 0;
        if (size <= FILE_EXTENT_TYPE)
                return bad(b, DOUBT, "log tree: file extent item of %" PRIu32 " bytes", size);
        if (data[FILE_EXTENT_TYPE] == FILE_EXTENT_INLINE)
                return 0;
        if (data[FILE_EXTENT_TYPE] != FILE_EXTENT_REG && data[FILE_EXTENT_TYPE] != FILE_EXTENT_PREALLOC)
                return bad(b, DOUBT, "log tree: file extent of type %u", data[FILE_EXTENT_TYPE]);
        if (size < FILE_EXTENT_SIZE)
                return bad(b, DOUBT, "log tree: file extent item of %" PRIu32 " bytes", size);
        uint64_t start = get_le64(data + FILE_EXTENT_DISK_BYTENR), len = get_le64(data + FILE_EXTENT_DISK_NUM_BYTES);
        if (start == 0) /* a hole */
                return 0;
        if (len == 0 || start + len < start)
                return bad(b, DOUBT, "log tree: file extent at %" PRIu64 " of %" PRIu64 " bytes", start, len);
        b->log_extents++;
        /* It must lie in a chunk the committed chunk tree knows. */
        const Chunk *c = chunk_find(&b->map, start);
        if (!c || start + len - c->start > c->length)
                return chunks_whole(b, start, len, "log tree: file extent");
        if (!chunk_by_extent(c))
                return 0;
        int k = extents_add(&b->logical, start, start + len);
        return k < 0 ? bad(b, k, "out of memory for the extents") : 0;
}

static int read_logs(Btrfs *b) {
        static const Walk root_walk = { .name = "log root tree", .owner = TREE_LOG_OBJECTID, .item = log_root_item };
        static const Walk log_walk = { .name = "log tree", .owner = TREE_LOG_OBJECTID, .item = log_tree_item };
        uint64_t root = get_le64(b->sb + SB_LOG_ROOT);
        int k;

        /* The log is written by the transaction after the committed one. */
        k = walk_tree(b, &root_walk, root, b->sb[SB_LOG_ROOT_LEVEL], b->generation + 1);
        if (k < 0)
                return k;
        for (size_t i = 0; i < b->n_logs; i++) {
                k = walk_tree(b, &log_walk, b->logs[i].bytenr, b->logs[i].level, b->logs[i].generation);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* ---------------------------------------------------------------- superblock */

static int read_super(Btrfs *b) {
        uint8_t *sb = b->sb;
        int k = reader_read(b->r, SUPER_OFFSET, sb, SUPER_SIZE);
        if (k < 0)
                return bad(b, k == -ERANGE ? -EINVAL : k, "cannot read the superblock at 64 KiB: %s",
                           k == -ERANGE ? "the partition is too small" : k == -ENODATA ? "past the end of the image" : strerror(-k));
        if (memcmp(sb + SB_MAGIC, "_BHRfS_M", 8) != 0)
                return bad(b, -EINVAL, "no btrfs magic in the superblock at 64 KiB");
        if (get_le64(sb + SB_BYTENR) != SUPER_OFFSET)
                return bad(b, -EINVAL, "the superblock at 64 KiB says it belongs at byte %" PRIu64, get_le64(sb + SB_BYTENR));

        b->csum_type = get_le16(sb + SB_CSUM_TYPE);
        if (b->csum_type >= ELEMENTSOF(csum_names))
                return bad(b, UNSUPPORTED, "unknown checksum type %u", b->csum_type);
        k = csum_matches(b, sb, SUPER_SIZE);
        if (k < 0)
                return bad(b, k, "cannot checksum the superblock: %s", strerror(-k));
        if (k == 0)
                return bad(b, -EINVAL, "the superblock fails its %s checksum", csum_names[b->csum_type]);

        b->sectorsize = get_le32(sb + SB_SECTORSIZE);
        b->nodesize = get_le32(sb + SB_NODESIZE);
        if (b->sectorsize < 4096 || b->sectorsize > 65536 || !is_pow2(b->sectorsize))
                return bad(b, -EINVAL, "sector size %" PRIu32 " is not a power of two from 4 to 64 KiB", b->sectorsize);
        if (b->nodesize < b->sectorsize || b->nodesize > 65536 || !is_pow2(b->nodesize))
                return bad(b, -EINVAL, "node size %" PRIu32 " is not a power of two from the sector size to 64 KiB",
                           b->nodesize);

        uint64_t flags = get_le64(sb + SB_FLAGS);
        if (flags & ~SUPER_FLAGS_KNOWN)
                return bad(b, UNSUPPORTED, "superblock flags 0x%" PRIx64 " (an error state or an unfinished conversion)",
                           (uint64_t) (flags & ~SUPER_FLAGS_KNOWN));
        b->incompat = get_le64(sb + SB_INCOMPAT);
        b->compat_ro = get_le64(sb + SB_COMPAT_RO);
        if (b->incompat & INCOMPAT_ZONED)
                return bad(b, UNSUPPORTED, "zoned filesystem");
        if (b->incompat & INCOMPAT_EXTENT_TREE_V2)
                return bad(b, UNSUPPORTED, "extent tree v2");
        if (b->incompat & INCOMPAT_RAID_STRIPE_TREE)
                return bad(b, UNSUPPORTED, "raid stripe tree");
        if (b->incompat & ~INCOMPAT_KNOWN)
                return bad(b, UNSUPPORTED, "unknown incompat features 0x%" PRIx64, (uint64_t) (b->incompat & ~INCOMPAT_KNOWN));
        if (b->compat_ro & ~COMPAT_RO_KNOWN)
                return bad(b, UNSUPPORTED, "unknown compat_ro features 0x%" PRIx64, (uint64_t) (b->compat_ro & ~COMPAT_RO_KNOWN));
        b->meta_fsid = sb + (b->incompat & INCOMPAT_METADATA_UUID ? SB_METADATA_UUID : SB_FSID);

        b->generation = get_le64(sb + SB_GENERATION);
        b->num_devices = get_le64(sb + SB_NUM_DEVICES);
        b->devid = get_le64(sb + SB_DEV_ITEM);
        b->dev_bytes = get_le64(sb + SB_DEV_ITEM + DEV_ITEM_TOTAL_BYTES);
        if (b->generation == 0 || b->generation == UINT64_MAX)
                return bad(b, -EINVAL, "superblock generation %" PRIu64, b->generation);
        if (b->num_devices == 0)
                return bad(b, -EINVAL, "the superblock counts no devices");
        if (b->devid == 0)
                return bad(b, DOUBT, "this is the target of an unfinished device replace");
        if (b->dev_bytes < SUPER_OFFSET + SUPER_SIZE || b->dev_bytes > get_le64(sb + SB_TOTAL_BYTES))
                return bad(b, -EINVAL, "the device's size %" PRIu64 " does not fit the filesystem's %" PRIu64, b->dev_bytes,
                           get_le64(sb + SB_TOTAL_BYTES));
        if (b->dev_bytes > b->r->size)
                return bad(b, -EINVAL, "the device (%" PRIu64 " bytes) is larger than its partition (%" PRIu64 " bytes)",
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
        return k < 0 ? bad(b, k, "out of memory for the used extents") : 0;
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
                const char *name = c->type & ~BG_KNOWN ? "unknown" : profile_name(c->type);
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
        char profiles[128], extra[160] = "";
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
                EXTRA("; log tree: %" PRIu64 " file extents", b->log_extents);
        if (b->doubtful)
                EXTRA("; %u data chunks mapped whole (extent records crossing them)", b->doubtful);
        if (b->bg_mismatch)
                EXTRA("; %u data chunks mapped whole (block group usage differs from their extents)", b->bg_mismatch);
#undef EXTRA
        /* The report line may be cut; it is only read by people. */
        int k = snprintf(res->how, sizeof(res->how), "chunk, dev%s and extent trees (%s%s; %s)",
                         b->compat_ro & COMPAT_RO_BLOCK_GROUP_TREE ? ", block-group" : "", csum_names[b->csum_type],
                         b->csum_type == CSUM_BLAKE2B ? " not verified: structure checks only" : "", profiles);
        if (k > 0 && (size_t) k < sizeof(res->how))
                strncat(res->how, extra, sizeof(res->how) - (size_t) k - 1);
}

/* ---------------------------------------------------------------- the probe */

static void btrfs_done(Btrfs *b) {
        chunk_map_done(&b->boot);
        chunk_map_done(&b->map);
        for (int i = 0; i < MAX_LEVEL; i++)
                free(b->blocks[i]);
        free(b->dev);
        free(b->logs);
        free(b->eligible);
        extents_done(&b->logical);
}

static int run(Btrfs *b, ProbeResult *res) {
        static const Walk root_walk = {
                .name = "root tree", .owner = ROOT_TREE_OBJECTID, .want = root_tree_want, .item = root_tree_item
        };
        static const Walk dev_walk = {
                .name = "dev tree", .owner = DEV_TREE_OBJECTID, .want = dev_tree_want, .item = dev_tree_item
        };
        static const Walk extent_walk = {
                .name = "extent tree", .owner = EXTENT_TREE_OBJECTID, .want = extent_tree_want, .item = extent_tree_item
        };
        static const Walk bg_walk = {
                .name = "block group tree", .owner = BLOCK_GROUP_TREE_OBJECTID, .want = extent_tree_want, .item = bg_tree_item
        };
        _cleanup_extents_ Extents used = EXTENTS_INIT;
        bool bgt;
        int k;

        k = read_super(b);
        if (k < 0)
                return k;
        for (int i = 0; i < MAX_LEVEL; i++)
                if (!(b->blocks[i] = malloc(b->nodesize)))
                        return bad(b, -ENOMEM, "out of memory for tree blocks");
        k = parse_sys_array(b);
        if (k < 0)
                return k;
        k = read_chunk_tree(b);
        if (k < 0)
                return k;

        k = walk_tree(b, &root_walk, get_le64(b->sb + SB_ROOT), b->sb[SB_ROOT_LEVEL], b->generation);
        if (k < 0)
                return k;
        bgt = b->compat_ro & COMPAT_RO_BLOCK_GROUP_TREE;
        if (!b->extent_root.found || !b->dev_root.found)
                return bad(b, DOUBT, "the root tree has no %s tree", b->extent_root.found ? "dev" : "extent");
        if (bgt != b->bg_root.found)
                return bad(b, DOUBT, "the block group tree is %s, but the feature flag is %s", bgt ? "missing" : "present",
                           bgt ? "set" : "clear");

        k = walk_tree(b, &dev_walk, b->dev_root.bytenr, b->dev_root.level, b->dev_root.generation);
        if (k < 0)
                return k;
        k = check_stripes_matched(b);
        if (k < 0)
                return k;
        for (size_t i = 0; i < b->n_dev; i++)
                b->map.v[b->dev[i].chunk].here = true;

        k = count_eligible(b);
        if (k < 0)
                return k;
        k = walk_tree(b, &extent_walk, b->extent_root.bytenr, b->extent_root.level, b->extent_root.generation);
        if (k < 0)
                return k;
        if (bgt) {
                k = walk_tree(b, &bg_walk, b->bg_root.bytenr, b->bg_root.level, b->bg_root.generation);
                if (k < 0)
                        return k;
        }
        /* A block group's used bytes are the sum of its extents, committed
         * together: a difference means extent records we did not see. */
        for (size_t i = 0; i < b->map.n; i++) {
                Chunk *c = &b->map.v[i];
                if (!chunk_by_extent(c))
                        continue;
                if (!c->bg_seen)
                        return bad(b, DOUBT, "data chunk %" PRIu64 " has no block group item", c->start);
                if (c->bg_used != c->extent_bytes) {
                        c->whole = true;
                        b->bg_mismatch++;
                }
        }
        if (get_le64(b->sb + SB_LOG_ROOT)) {
                k = read_logs(b);
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
