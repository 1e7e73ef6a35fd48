/* SPDX-License-Identifier: GPL-2.0-or-later */
/* FAT12/16/32: the reserved sectors, the FATs and the FAT12/16 root
 * directory are always used; a data cluster is used when its FAT entry is
 * nonzero. Bad-cluster marks count as used: what sits under them is the
 * image's to keep. FSInfo free counts are hints and never consulted. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"

static const char *const types[] = { "vfat", "msdos", NULL };

/* A multiple of 12 bytes, so that every chunk of the FAT starts on a whole
 * entry of any width, a FAT12 entry pair included. */
#define FAT_CHUNK ((size_t) 12 * 87381)

#define FAT12_MIN_CLUSTERS 4085
#define FAT16_MAX_CLUSTERS 65524
#define FAT32_MAX_CLUSTERS 0x0FFFFFF5

typedef struct FatGeometry {
        uint32_t sector_size;
        uint32_t cluster_sectors;
        uint32_t reserved;
        uint32_t nfats;
        uint32_t fat_sectors;
        uint64_t total_sectors;
        uint64_t first_data;    /* sector of cluster 2 */
        uint64_t clusters;      /* data clusters: numbers 2 .. clusters + 1 */
        unsigned bits;
        uint32_t root_cluster;  /* FAT32 */
} FatGeometry;

static uint64_t cluster_offset(const FatGeometry *g, uint64_t n) {
        return (g->first_data + (n - 2) * g->cluster_sectors) * g->sector_size;
}

static int parse_bpb(const uint8_t *b, uint64_t part_size, FatGeometry *g, ProbeResult *res) {
        *g = (FatGeometry) {
                .sector_size = get_le16(b + 0x0B),
                .cluster_sectors = b[0x0D],
                .reserved = get_le16(b + 0x0E),
                .nfats = b[0x10],
        };
        uint32_t root_entries = get_le16(b + 0x11);
        uint32_t fat16_sectors = get_le16(b + 0x16), fat32_sectors = get_le32(b + 0x24);

        if (g->sector_size < 512 || g->sector_size > 4096 || !is_pow2(g->sector_size))
                return probe_fail(res, -EINVAL, "bytes per sector %" PRIu32 " is not a power of two from 512 to 4096",
                                  g->sector_size);
        if (g->cluster_sectors > 128 || !is_pow2(g->cluster_sectors))
                return probe_fail(res, -EINVAL, "sectors per cluster %" PRIu32 " is not a power of two from 1 to 128",
                                  g->cluster_sectors);
        if (g->reserved == 0)
                return probe_fail(res, -EINVAL, "no reserved sectors (the boot sector is one)");
        if (g->nfats == 0)
                return probe_fail(res, -EINVAL, "the number of FATs is 0");

        g->total_sectors = get_le16(b + 0x13);
        if (g->total_sectors == 0)
                g->total_sectors = get_le32(b + 0x20);
        if (g->total_sectors == 0)
                return probe_fail(res, -EINVAL, "the total sector count is 0");

        if (fat16_sectors == 0 && fat32_sectors != 0) {
                g->bits = 32;
                g->fat_sectors = fat32_sectors;
                if (root_entries != 0)
                        return probe_fail(res, -EINVAL, "FAT32 with %" PRIu32 " fixed root directory entries",
                                          root_entries);
        } else if (fat16_sectors != 0) {
                g->fat_sectors = fat16_sectors;
                if (root_entries == 0)
                        return probe_fail(res, -EINVAL, "FAT12/16 without root directory entries");
        } else
                return probe_fail(res, -EINVAL, "the FAT size is 0");

        uint64_t fs_bytes = g->total_sectors * g->sector_size;
        if (fs_bytes > part_size)
                return probe_fail(res, -EINVAL,
                                  "the filesystem (%" PRIu64 " bytes) is larger than its partition (%" PRIu64 " bytes)",
                                  fs_bytes, part_size);

        uint64_t root_sectors = div_round_up((uint64_t) root_entries * 32, g->sector_size);
        g->first_data = g->reserved + (uint64_t) g->nfats * g->fat_sectors + root_sectors;
        if (g->first_data >= g->total_sectors)
                return probe_fail(res, -EINVAL,
                                  "the data area would start at sector %" PRIu64 ", past the %" PRIu64 " sectors of the filesystem",
                                  g->first_data, g->total_sectors);
        g->clusters = (g->total_sectors - g->first_data) / g->cluster_sectors;
        if (g->clusters == 0)
                return probe_fail(res, -EINVAL, "no data clusters");

        /* The BPB says FAT32; only between FAT12 and FAT16 does the cluster
         * count decide (mkfs.fat makes FAT32 volumes with few clusters). */
        if (g->bits != 32) {
                g->bits = g->clusters < FAT12_MIN_CLUSTERS ? 12 : 16;
                /* The type label is informational, but one that contradicts
                 * the count means a maker that may read the FAT the other
                 * way: entries of either width would be a guess. */
                const char *other = g->bits == 12 ? "FAT16   " : "FAT12   ";
                if (b[0x26] == 0x29 && memcmp(b + 0x36, other, 8) == 0)
                        return probe_fail(res, -EINVAL, "the boot sector says %.5s, but %" PRIu64 " clusters make it FAT%u",
                                          other, g->clusters, g->bits);
        }
        uint64_t max = g->bits == 32 ? FAT32_MAX_CLUSTERS : FAT16_MAX_CLUSTERS;
        if (g->clusters > max)
                return probe_fail(res, -EINVAL, "%" PRIu64 " clusters are too many for FAT%u", g->clusters, g->bits);

        uint64_t need = div_round_up((g->clusters + 2) * g->bits, 8);
        if (need > (uint64_t) g->fat_sectors * g->sector_size)
                return probe_fail(res, -EINVAL,
                                  "a FAT of %" PRIu32 " sectors is too small for %" PRIu64 " clusters of FAT%u",
                                  g->fat_sectors, g->clusters, g->bits);

        if (g->bits == 32) {
                g->root_cluster = get_le32(b + 0x2C);
                if (g->root_cluster < 2 || g->root_cluster - 2 >= g->clusters)
                        return probe_fail(res, -EINVAL, "the root directory cluster %" PRIu32 " is not a data cluster",
                                          g->root_cluster);
        }
        return 0;
}

static uint32_t fat_entry(const uint8_t *buf, size_t n, unsigned bits) {
        if (bits == 12) {
                uint16_t v = get_le16(buf + n * 3 / 2);
                return n & 1 ? v >> 4 : v & 0xFFF;
        }
        if (bits == 16)
                return get_le16(buf + n * 2);
        return get_le32(buf + n * 4) & 0x0FFFFFFF;
}

static int read_fat_chunk(const Reader *r, const FatGeometry *g, uint32_t fat, uint64_t off, void *buf, size_t len,
                          ProbeResult *res) {
        uint64_t at = ((uint64_t) g->reserved + (uint64_t) fat * g->fat_sectors) * g->sector_size + off;
        int k = reader_read(r, at, buf, len);
        if (k < 0)
                return probe_fail(res, k, "cannot read FAT #%" PRIu32 " at byte %" PRIu64 ": %s", fat, at, strerror(-k));
        return 0;
}

/* Adds the clusters whose entry is nonzero in any of FATs first ..
 * first + count - 1: mirrors that disagree leave a doubt, and a doubt is
 * mapped. ORing the raw bytes ORs every entry, whatever its width. */
static int collect_clusters(const Reader *r, const FatGeometry *g, uint32_t first, uint32_t count, bool *ret_differ,
                            ProbeResult *res) {
        uint64_t entries = g->clusters + 2;
        uint64_t fat_bytes = div_round_up(entries * g->bits, 8);
        size_t chunk = fat_bytes < FAT_CHUNK ? (size_t) fat_bytes : FAT_CHUNK;
        uint64_t chunk_entries = FAT_CHUNK * 8 / g->bits;
        _cleanup_free_ uint8_t *buf = malloc(chunk);
        _cleanup_free_ uint8_t *other = count > 1 ? malloc(chunk) : NULL;
        bool differ = false, in_run = false;
        uint64_t run = 0;
        int k;

        if (!buf || (count > 1 && !other))
                return probe_fail(res, -ENOMEM, "out of memory for the FAT");

        for (uint64_t off = 0, base = 0; off < fat_bytes; off += FAT_CHUNK, base += chunk_entries) {
                size_t len = fat_bytes - off < FAT_CHUNK ? (size_t) (fat_bytes - off) : FAT_CHUNK;

                k = read_fat_chunk(r, g, first, off, buf, len, res);
                if (k < 0)
                        return k;
                for (uint32_t f = first + 1; f < first + count; f++) {
                        k = read_fat_chunk(r, g, f, off, other, len, res);
                        if (k < 0)
                                return k;
                        if (memcmp(buf, other, len) == 0)
                                continue;
                        differ = true;
                        for (size_t i = 0; i < len; i++)
                                buf[i] |= other[i];
                }

                uint64_t end = entries - base < chunk_entries ? entries : base + chunk_entries;
                for (uint64_t n = base < 2 ? 2 : base; n < end; n++) {
                        bool used = fat_entry(buf, n - base, g->bits) != 0;
                        if (used == in_run)
                                continue;
                        if (used)
                                run = n;
                        else {
                                k = extents_add(&res->used, cluster_offset(g, run), cluster_offset(g, n));
                                if (k < 0)
                                        return probe_fail(res, k, "out of memory for the used clusters");
                        }
                        in_run = used;
                }
        }
        if (in_run) {
                k = extents_add(&res->used, cluster_offset(g, run), cluster_offset(g, entries));
                if (k < 0)
                        return probe_fail(res, k, "out of memory for the used clusters");
        }
        *ret_differ = differ;
        return 0;
}

/* FSInfo and the backup boot sector belong in the reserved area; should a
 * BPB place them past it, they are still the filesystem's. */
static int add_fat32_extra(const uint8_t *b, const FatGeometry *g, ProbeResult *res) {
        const struct {
                uint16_t sector, count;
        } extra[] = {
                { get_le16(b + 0x30), 1 },
                { get_le16(b + 0x32), 3 },
        };
        for (size_t i = 0; i < ELEMENTSOF(extra); i++) {
                uint64_t s = extra[i].sector;
                if (s < g->reserved || s == 0xFFFF || s >= g->total_sectors)
                        continue;
                uint64_t e = s + extra[i].count < g->total_sectors ? s + extra[i].count : g->total_sectors;
                int k = extents_add(&res->used, s * g->sector_size, e * g->sector_size);
                if (k < 0)
                        return probe_fail(res, k, "out of memory");
        }
        return 0;
}

static int collect(const Reader *r, const char *fstype, ProbeResult *res) {
        uint8_t boot[512], last[4096];
        FatGeometry g;
        int k;

        k = reader_read(r, 0, boot, sizeof(boot));
        if (k < 0)
                return probe_fail(res, k, "cannot read the boot sector: %s", strerror(-k));
        k = parse_bpb(boot, r->size, &g, res);
        if (k < 0)
                return k;

        /* A FAT that lies past the end of a truncated image would be read
         * as an I/O error anyway, but clusters past it would not be read at
         * all: find out now, as fsck.fat does. */
        uint64_t fs_bytes = g.total_sectors * g.sector_size;
        k = reader_read(r, fs_bytes - g.sector_size, last, g.sector_size);
        if (k < 0)
                return probe_fail(res, k, "cannot read the last sector of the filesystem (byte %" PRIu64 "): %s",
                                  fs_bytes - g.sector_size, strerror(-k));

        uint32_t first = 0, count = g.nfats;
        bool mirrored = true;
        if (g.bits == 32 && (boot[0x28] & 0x80)) {
                /* Mirroring off: only the active FAT is kept up to date. */
                mirrored = false;
                first = boot[0x28] & 0x0F;
                count = 1;
                if (first >= g.nfats)
                        return probe_fail(res, -EINVAL, "the active FAT #%" PRIu32 " does not exist (%" PRIu32 " FATs)",
                                          first, g.nfats);
        }

        extents_clear(&res->used);
        k = extents_add(&res->used, 0, g.first_data * g.sector_size);
        if (k < 0)
                return probe_fail(res, k, "out of memory");
        bool differ = false;
        k = collect_clusters(r, &g, first, count, &differ, res);
        if (k < 0)
                return k;
        if (g.bits == 32) {
                uint64_t root = cluster_offset(&g, g.root_cluster);
                if (!extents_contains(&res->used, root, root + (uint64_t) g.cluster_sectors * g.sector_size))
                        return probe_fail(res, -EINVAL, "the root directory cluster %" PRIu32 " is marked free",
                                          g.root_cluster);
                k = add_fat32_extra(boot, &g, res);
                if (k < 0)
                        return k;
        }

        char fats[64], csize[32];
        uint32_t cluster_bytes = g.cluster_sectors * g.sector_size;
        if (!mirrored)
                snprintf(fats, sizeof(fats), "active FAT #%" PRIu32 " (mirroring off)", first);
        else if (differ)
                snprintf(fats, sizeof(fats), "the %" PRIu32 " FATs differ: their union", g.nfats);
        else
                snprintf(fats, sizeof(fats), "FAT #0");
        if (cluster_bytes < 1024)
                snprintf(csize, sizeof(csize), "%" PRIu32 "-byte", cluster_bytes);
        else
                snprintf(csize, sizeof(csize), "%" PRIu32 " KiB", cluster_bytes / 1024);
        snprintf(res->how, sizeof(res->how), "FAT%u, %s, %s clusters", g.bits, fats, csize);
        res->fs_size = fs_bytes;
        return 0;
}

const FsProbe fsprobe_fat = {
        .name = "fat",
        .types = types,
        .collect = collect,
};
