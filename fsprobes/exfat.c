/* SPDX-License-Identifier: GPL-2.0-or-later */
/* exFAT: everything before the cluster heap (both boot regions, the FATs and
 * the alignment gaps between them) is used, and a cluster is used when the
 * allocation bitmap marks it; with two FATs (TexFAT) each has a bitmap and
 * the union is taken. The FAT is not the allocation record (a contiguous
 * file has no chain, a deleted file keeps its stale one), but its bad-cluster
 * marks are mapped: what sits under them is the image's to keep. The boot
 * checksum must match, and a dirty volume is mapped whole: its bitmap may
 * lag behind the files. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"

static const char *const types[] = { "exfat", NULL };

/* Sectors of one boot region: boot sector, 8 extended boot sectors, OEM
 * parameters, a reserved sector, the checksum sector. The backup follows. */
#define BOOT_REGION_SECTORS 12
#define CHECKSUM_SECTOR 11
/* The lowest FatOffset the specification allows: past both boot regions. */
#define MIN_FAT_OFFSET 24
#define MAX_CLUSTER_COUNT 0xFFFFFFF5u
#define MAX_CLUSTER_SHIFT 25 /* 32 MiB */
#define FAT_EOC 0xFFFFFFFFu
#define FAT_BAD 0xFFFFFFF7u
/* A directory is at most 256 MiB long: a bound for walking the root's chain
 * that also stops a chain that loops. */
#define MAX_DIR_BYTES ((uint64_t) 256 << 20)
#define ENTRY_END 0x00
#define ENTRY_BITMAP 0x81
#define VOL_FLAG_ACTIVE_FAT 0x0001
#define VOL_FLAG_DIRTY 0x0002
/* Reads of the bitmap, the FATs and the root directory go in pieces of at
 * most this size: clusters reach 32 MiB, FATs gigabytes. A multiple of 4
 * (FAT entries) and of 32 (directory entries). */
#define PIECE ((size_t) 1 << 20)

typedef struct ExfatGeometry {
        unsigned sector_shift, cluster_shift; /* bytes, log2 */
        uint64_t volume_sectors;
        uint32_t fat_offset, fat_length; /* sectors */
        uint32_t heap_offset;            /* sector */
        uint32_t clusters;               /* numbers 2 .. clusters + 1 */
        uint32_t root_cluster;
        uint32_t nfats, active_fat;
        uint16_t flags;
} ExfatGeometry;

typedef struct Bitmap {
        uint32_t first_cluster;
        uint64_t length;
} Bitmap;

static uint64_t heap_start(const ExfatGeometry *g) {
        return (uint64_t) g->heap_offset << g->sector_shift;
}

static uint64_t cluster_offset(const ExfatGeometry *g, uint64_t n) {
        return heap_start(g) + ((n - 2) << g->cluster_shift);
}

static bool is_cluster(const ExfatGeometry *g, uint32_t n) {
        return n >= 2 && n - 2 < g->clusters;
}

/* The checksum of the boot region's first 11 sectors, leaving out
 * VolumeFlags and PercentInUse, which change without a rewrite of it. */
static uint32_t boot_checksum(const uint8_t *region, size_t len) {
        uint32_t sum = 0;
        for (size_t i = 0; i < len; i++) {
                if (i == 106 || i == 107 || i == 112)
                        continue;
                sum = ((sum & 1) ? 0x80000000u : 0) + (sum >> 1) + region[i];
        }
        return sum;
}

static int parse_boot(const Reader *r, ExfatGeometry *g, ProbeResult *res) {
        uint8_t b[512];
        int k;

        k = reader_read(r, 0, b, sizeof(b));
        if (k < 0)
                return probe_fail(res, k, "cannot read the boot sector: %s", strerror(-k));
        if (memcmp(b + 3, "EXFAT   ", 8) != 0)
                return probe_fail(res, -EINVAL, "no \"EXFAT\" name in the boot sector");
        if (get_le16(b + 510) != 0xAA55)
                return probe_fail(res, -EINVAL, "the boot signature is %04" PRIx16 ", not AA55", get_le16(b + 510));
        if (b[105] != 1)
                return probe_fail(res, -EINVAL, "unknown exFAT revision %u.%02u", b[105], b[104]);

        *g = (ExfatGeometry) {
                .sector_shift = b[108],
                .cluster_shift = b[108] + b[109],
                .volume_sectors = get_le64(b + 72),
                .fat_offset = get_le32(b + 80),
                .fat_length = get_le32(b + 84),
                .heap_offset = get_le32(b + 88),
                .clusters = get_le32(b + 92),
                .root_cluster = get_le32(b + 96),
                .flags = get_le16(b + 106),
                .nfats = b[110],
        };
        if (g->sector_shift < 9 || g->sector_shift > 12)
                return probe_fail(res, -EINVAL, "bytes per sector 2^%u is not 512 to 4096", g->sector_shift);
        if (g->cluster_shift > MAX_CLUSTER_SHIFT)
                return probe_fail(res, -EINVAL, "clusters of 2^%u bytes are larger than 32 MiB", g->cluster_shift);
        if (g->nfats != 1 && g->nfats != 2)
                return probe_fail(res, -EINVAL, "%" PRIu32 " FATs (1 or 2 exist)", g->nfats);
        g->active_fat = g->flags & VOL_FLAG_ACTIVE_FAT ? 1 : 0;
        if (g->active_fat >= g->nfats)
                return probe_fail(res, -EINVAL, "the active FAT #1 does not exist (1 FAT)");

        /* The whole boot region at once: its checksum covers 11 sectors. */
        size_t sector = (size_t) 1 << g->sector_shift;
        _cleanup_free_ uint8_t *region = malloc(BOOT_REGION_SECTORS * sector);
        if (!region)
                return probe_fail(res, -ENOMEM, "out of memory for the boot region");
        k = reader_read(r, 0, region, BOOT_REGION_SECTORS * sector);
        if (k < 0)
                return probe_fail(res, k, "cannot read the boot region: %s", strerror(-k));
        uint32_t sum = boot_checksum(region, CHECKSUM_SECTOR * sector);
        for (size_t i = 0; i < sector; i += 4)
                if (get_le32(region + CHECKSUM_SECTOR * sector + i) != sum)
                        return probe_fail(res, -EINVAL,
                                          "the boot checksum sector says %08" PRIx32 ", the boot region sums to %08" PRIx32,
                                          get_le32(region + CHECKSUM_SECTOR * sector + i), sum);

        /* Every field checked before any of them becomes an offset. The
         * volume length first: past the partition, nothing else matters. */
        if (g->volume_sectors > r->size >> g->sector_shift)
                return probe_fail(res, -EINVAL,
                                  "the volume (%" PRIu64 " sectors of %zu bytes) is larger than its partition (%" PRIu64 " bytes)",
                                  g->volume_sectors, sector, r->size);
        if (g->fat_offset < MIN_FAT_OFFSET)
                return probe_fail(res, -EINVAL, "the FAT at sector %" PRIu32 " overlaps the boot regions", g->fat_offset);
        if (g->clusters == 0 || g->clusters > MAX_CLUSTER_COUNT)
                return probe_fail(res, -EINVAL, "%" PRIu32 " clusters (1 to %" PRIu32 " exist)", g->clusters,
                                  MAX_CLUSTER_COUNT);
        if (((uint64_t) g->fat_length << g->sector_shift) < ((uint64_t) g->clusters + 2) * 4)
                return probe_fail(res, -EINVAL, "a FAT of %" PRIu32 " sectors is too small for %" PRIu32 " clusters",
                                  g->fat_length, g->clusters);
        uint64_t fats_end = g->fat_offset + (uint64_t) g->nfats * g->fat_length;
        if (fats_end > g->heap_offset)
                return probe_fail(res, -EINVAL, "the FATs end at sector %" PRIu64 ", past the cluster heap at %" PRIu32,
                                  fats_end, g->heap_offset);
        uint64_t heap_end = g->heap_offset + ((uint64_t) g->clusters << (g->cluster_shift - g->sector_shift));
        if (heap_end > g->volume_sectors)
                return probe_fail(res, -EINVAL,
                                  "the cluster heap ends at sector %" PRIu64 ", past the volume's %" PRIu64 " sectors",
                                  heap_end, g->volume_sectors);
        if (!is_cluster(g, g->root_cluster))
                return probe_fail(res, -EINVAL, "the root directory cluster %" PRIu32 " is not a cluster of the heap",
                                  g->root_cluster);
        return 0;
}

/* The entry of cluster n in the active FAT. */
static int fat_next(const Reader *r, const ExfatGeometry *g, uint32_t n, uint32_t *ret, ProbeResult *res) {
        uint64_t at = ((uint64_t) g->fat_offset + (uint64_t) g->active_fat * g->fat_length) << g->sector_shift;
        uint8_t v[4];
        int k = reader_read(r, at + (uint64_t) n * 4, v, sizeof(v));
        if (k < 0)
                return probe_fail(res, k, "cannot read the FAT entry of cluster %" PRIu32 ": %s", n, strerror(-k));
        *ret = get_le32(v);
        return 0;
}

/* Walks a chain one cluster at a time. A contiguous file may have no chain
 * (its FAT entries are left zero), so a zero entry continues with the next
 * cluster, as the Linux driver reads the bitmap; anything else that is not
 * a cluster or the end mark is a broken chain. *ret is 0 at the end. */
static int chain_step(const Reader *r, const ExfatGeometry *g, const char *what, uint32_t n, uint32_t *ret,
                      ProbeResult *res) {
        uint32_t next = 0;
        int k = fat_next(r, g, n, &next, res);
        if (k < 0)
                return k;
        if (next == FAT_EOC)
                next = 0;
        else if (next == 0)
                next = n + 1;
        else if (!is_cluster(g, next))
                return probe_fail(res, -EINVAL, "the %s's chain goes from cluster %" PRIu32 " to %" PRIu32 ", not a cluster",
                                  what, n, next);
        if (next && !is_cluster(g, next))
                return probe_fail(res, -EINVAL, "the %s runs past the last cluster", what);
        *ret = next;
        return 0;
}

/* Finds the allocation bitmap entries (one per FAT) in the root directory,
 * reading it up to its end mark or until every bitmap is found. */
static int find_bitmaps(const Reader *r, const ExfatGeometry *g, Bitmap bitmaps[2], ProbeResult *res) {
        uint64_t cluster_bytes = (uint64_t) 1 << g->cluster_shift;
        size_t piece = cluster_bytes < PIECE ? (size_t) cluster_bytes : PIECE;
        _cleanup_free_ uint8_t *buf = malloc(piece);
        unsigned found = 0;
        int k;

        if (!buf)
                return probe_fail(res, -ENOMEM, "out of memory for the root directory");
        uint32_t c = g->root_cluster;
        for (uint64_t walked = 0; c; walked += cluster_bytes) {
                if (walked >= MAX_DIR_BYTES)
                        return probe_fail(res, -EINVAL, "the root directory is longer than 256 MiB (a loop in its chain?)");
                for (uint64_t off = 0; off < cluster_bytes; off += piece) {
                        k = reader_read(r, cluster_offset(g, c) + off, buf, piece);
                        if (k < 0)
                                return probe_fail(res, k, "cannot read the root directory (cluster %" PRIu32 "): %s", c,
                                                  strerror(-k));
                        for (size_t i = 0; i < piece; i += 32) {
                                const uint8_t *e = buf + i;
                                if (e[0] == ENTRY_END)
                                        goto end;
                                if (e[0] != ENTRY_BITMAP)
                                        continue;
                                unsigned which = e[1] & 1;
                                if (which >= g->nfats || bitmaps[which].length)
                                        return probe_fail(res, -EINVAL, "an unexpected allocation bitmap entry (for FAT #%u)",
                                                          which);
                                bitmaps[which] = (Bitmap) { get_le32(e + 20), get_le64(e + 24) };
                                if (bitmaps[which].length == 0)
                                        return probe_fail(res, -EINVAL, "the allocation bitmap for FAT #%u is empty", which);
                                if (++found == g->nfats)
                                        return 0;
                        }
                }
                k = chain_step(r, g, "root directory", c, &c, res);
                if (k < 0)
                        return k;
        }
end:
        return probe_fail(res, -EINVAL, "the root directory has %u allocation bitmap entries for %" PRIu32 " FATs", found,
                          g->nfats);
}

/* Adds the clusters one bitmap marks used; also returns the clusters the
 * bitmap itself occupies, to check that it marks them. */
static int collect_bitmap(const Reader *r, const ExfatGeometry *g, const Bitmap *bm, unsigned which, Extents *own,
                          ProbeResult *res) {
        uint64_t cluster_bytes = (uint64_t) 1 << g->cluster_shift;
        uint64_t need = div_round_up(g->clusters, 8);
        size_t piece = cluster_bytes < PIECE ? (size_t) cluster_bytes : PIECE;
        _cleanup_free_ uint8_t *buf = malloc(piece);
        bool in_run = false;
        uint64_t run = 0, bit = 0;
        int k;

        if (!buf)
                return probe_fail(res, -ENOMEM, "out of memory for the allocation bitmap");
        if (bm->length < need)
                return probe_fail(res, -EINVAL, "the allocation bitmap for FAT #%u has %" PRIu64 " bytes, %" PRIu64 " needed",
                                  which, bm->length, need);
        if (!is_cluster(g, bm->first_cluster))
                return probe_fail(res, -EINVAL, "the allocation bitmap for FAT #%u starts at cluster %" PRIu32
                                  ", outside the heap", which, bm->first_cluster);
        if (div_round_up(bm->length, cluster_bytes) > g->clusters)
                return probe_fail(res, -EINVAL, "the allocation bitmap for FAT #%u (%" PRIu64 " bytes) is larger than the heap",
                                  which, bm->length);

        uint32_t c = bm->first_cluster;
        for (uint64_t done = 0; done < need;) {
                if (!c)
                        return probe_fail(res, -EINVAL, "the allocation bitmap for FAT #%u ends after %" PRIu64 " of %" PRIu64
                                          " bytes", which, done, need);
                k = extents_add(own, cluster_offset(g, c), cluster_offset(g, c) + cluster_bytes);
                if (k < 0)
                        return probe_fail(res, k, "out of memory");
                for (uint64_t off = 0; off < cluster_bytes && done < need; off += piece) {
                        size_t len = need - done < piece ? (size_t) (need - done) : piece;
                        k = reader_read(r, cluster_offset(g, c) + off, buf, len);
                        if (k < 0)
                                return probe_fail(res, k, "cannot read the allocation bitmap (cluster %" PRIu32 "): %s", c,
                                                  strerror(-k));
                        done += len;
                        /* Bits past the last cluster are no clusters. */
                        if (done == need && g->clusters % 8)
                                buf[len - 1] &= (uint8_t) ((1u << (g->clusters % 8)) - 1);
                        for (size_t i = 0; i < len; i++) {
                                /* Whole bytes of one kind are the common case. */
                                if ((buf[i] == 0 && !in_run) || (buf[i] == 0xFF && in_run)) {
                                        bit += 8;
                                        continue;
                                }
                                for (unsigned j = 0; j < 8; j++, bit++) {
                                        bool used = buf[i] >> j & 1;
                                        if (used == in_run)
                                                continue;
                                        if (used)
                                                run = bit;
                                        else {
                                                k = extents_add(&res->used, cluster_offset(g, run + 2),
                                                                cluster_offset(g, bit + 2));
                                                if (k < 0)
                                                        return probe_fail(res, k, "out of memory for the used clusters");
                                        }
                                        in_run = used;
                                }
                        }
                }
                if (done < need) {
                        k = chain_step(r, g, "allocation bitmap", c, &c, res);
                        if (k < 0)
                                return k;
                }
        }
        if (in_run) {
                k = extents_add(&res->used, cluster_offset(g, run + 2), cluster_offset(g, (uint64_t) g->clusters + 2));
                if (k < 0)
                        return probe_fail(res, k, "out of memory for the used clusters");
        }
        return 0;
}

/* Adds the clusters that any FAT marks bad. */
static int collect_bad(const Reader *r, const ExfatGeometry *g, uint64_t *ret_bad, ProbeResult *res) {
        uint64_t fat_bytes = ((uint64_t) g->clusters + 2) * 4;
        size_t piece = fat_bytes < PIECE ? (size_t) fat_bytes : PIECE;
        _cleanup_free_ uint8_t *buf = malloc(piece);
        uint64_t bad = 0;
        int k;

        if (!buf)
                return probe_fail(res, -ENOMEM, "out of memory for the FAT");
        for (uint32_t f = 0; f < g->nfats; f++) {
                uint64_t at = ((uint64_t) g->fat_offset + (uint64_t) f * g->fat_length) << g->sector_shift;
                for (uint64_t off = 0; off < fat_bytes; off += piece) {
                        size_t len = fat_bytes - off < piece ? (size_t) (fat_bytes - off) : piece;
                        k = reader_read(r, at + off, buf, len);
                        if (k < 0)
                                return probe_fail(res, k, "cannot read FAT #%" PRIu32 " at byte %" PRIu64 ": %s", f, at + off,
                                                  strerror(-k));
                        for (size_t i = 0; i < len; i += 4) {
                                uint64_t n = off / 4 + i / 4;
                                if (n < 2 || get_le32(buf + i) != FAT_BAD)
                                        continue;
                                bad++;
                                k = extents_add(&res->used, cluster_offset(g, n), cluster_offset(g, n + 1));
                                if (k < 0)
                                        return probe_fail(res, k, "out of memory for the bad clusters");
                        }
                }
        }
        *ret_bad = bad;
        return 0;
}

static void format_size(char *buf, size_t n, uint64_t bytes) {
        if (bytes < 1024)
                snprintf(buf, n, "%" PRIu64 "-byte", bytes);
        else if (bytes < 1024 * 1024)
                snprintf(buf, n, "%" PRIu64 " KiB", bytes / 1024);
        else
                snprintf(buf, n, "%" PRIu64 " MiB", bytes / (1024 * 1024));
}

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        _cleanup_extents_ Extents own = EXTENTS_INIT;
        Bitmap bitmaps[2] = {};
        ExfatGeometry g;
        uint64_t bad = 0;
        int k;

        k = parse_boot(r, &g, res);
        if (k < 0)
                return k;
        uint64_t fs_bytes = g.volume_sectors << g.sector_shift;
        if (g.flags & VOL_FLAG_DIRTY) {
                k = probe_whole(r, res, "the volume is marked dirty (not cleanly unmounted): fully mapped");
                res->fs_size = fs_bytes;
                return k;
        }

        /* A truncated image would read as an error where a cluster is read,
         * but the clusters in the lost part would not be read at all. */
        uint8_t last[4096];
        k = reader_read(r, fs_bytes - ((uint64_t) 1 << g.sector_shift), last, (size_t) 1 << g.sector_shift);
        if (k < 0)
                return probe_fail(res, k, "cannot read the last sector of the volume (byte %" PRIu64 "): %s",
                                  fs_bytes - ((uint64_t) 1 << g.sector_shift), strerror(-k));

        extents_clear(&res->used);
        k = extents_add(&res->used, 0, heap_start(&g));
        if (k < 0)
                return probe_fail(res, k, "out of memory");
        k = find_bitmaps(r, &g, bitmaps, res);
        if (k < 0)
                return k;
        for (unsigned i = 0; i < g.nfats; i++) {
                k = collect_bitmap(r, &g, &bitmaps[i], i, &own, res);
                if (k < 0)
                        return k;
        }
        /* A bitmap that leaves itself or the root directory free describes
         * some other volume: its free bits cannot be trusted. */
        EXTENTS_FOREACH(x, &own)
                if (!extents_contains(&res->used, x->start, x->end))
                        return probe_fail(res, -EINVAL, "the allocation bitmap marks its own cluster %" PRIu64 " free",
                                          (x->start - heap_start(&g)) / ((uint64_t) 1 << g.cluster_shift) + 2);
        uint64_t root = cluster_offset(&g, g.root_cluster);
        if (!extents_contains(&res->used, root, root + ((uint64_t) 1 << g.cluster_shift)))
                return probe_fail(res, -EINVAL, "the root directory cluster %" PRIu32 " is marked free", g.root_cluster);
        k = collect_bad(r, &g, &bad, res);
        if (k < 0)
                return k;

        char csize[32], bads[48] = "";
        format_size(csize, sizeof(csize), (uint64_t) 1 << g.cluster_shift);
        if (bad)
                snprintf(bads, sizeof(bads), ", %" PRIu64 " bad cluster marks", bad);
        snprintf(res->how, sizeof(res->how), "%s, %s clusters, %u-byte sectors%s",
                 g.nfats == 2 ? "TexFAT: union of 2 allocation bitmaps" : "allocation bitmap", csize,
                 1u << g.sector_shift, bads);
        res->fs_size = fs_bytes;
        return 0;
}

const FsProbe fsprobe_exfat = {
        .name = "exfat",
        .types = types,
        .collect = collect,
};
