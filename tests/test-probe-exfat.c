/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The exFAT probe against volumes made by mkfs.exfat: the used clusters must
 * be exactly those the allocation bitmap marks, counted again here by a
 * plain separate parse and by dump.exfat; every broken, dirty, truncated or
 * fuzzed volume must fail or be mapped whole, never crash or shrink. Files
 * are "written" by setting bitmap bits (the probe reads nothing else); the
 * flash test (test-flash-exfat.sh) writes real files through exfat-fuse. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "probe-mutants.h"
#include "test-helpers.h"
#include "probe.h"

static uint64_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}

static int patch(const char *path, uint64_t off, const void *buf, size_t n) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t k = pwrite(fd, buf, n, (off_t) off);
        close(fd);
        return k == (ssize_t) n ? 0 : -EIO;
}

static uint8_t *load(const char *path, size_t *ret_size) {
        size_t n = file_size(path);
        uint8_t *buf = n ? malloc(n) : NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (!buf || fd < 0 || pread(fd, buf, n, 0) != (ssize_t) n) {
                free(buf);
                buf = NULL;
        }
        if (fd >= 0)
                close(fd);
        *ret_size = buf ? n : 0;
        return buf;
}

/* A private, writable mapping of a whole image: sparse gigabytes cost
 * only the pages touched. */
static uint8_t *map_image(const char *path, size_t *ret_size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t n = file_size(path);
        void *p = fd >= 0 && n ? mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) : MAP_FAILED;
        if (fd >= 0)
                close(fd);
        *ret_size = p == MAP_FAILED ? 0 : n;
        return p == MAP_FAILED ? NULL : p;
}

static int save(const char *path, const uint8_t *buf, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t k = pwrite(fd, buf, n, 0);
        close(fd);
        return k == (ssize_t) n ? 0 : -EIO;
}

static int probe_file(const char *path, uint64_t size, ProbeResult *res) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0, "cannot open %s", path);
        if (fd < 0)
                return -errno;
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        Reader r = reader_from_fd(fd, file_size(path), 0, size ? size : file_size(path));
        int k = fsprobe_exfat.collect(&r, "exfat", res);
        close(fd);
        return k;
}

static int probe_mem(const uint8_t *img, uint64_t image_size, uint64_t size, ProbeResult *res) {
        Reader r = reader_from_mem(img, image_size, 0, size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        return fsprobe_exfat.collect(&r, "exfat", res);
}

/* The geometry of a volume, read here on its own. */
typedef struct Geo {
        uint64_t bps, cluster_bytes, volume_bytes, heap, clusters, fat, fat_bytes, root, bitmap_cluster,
                bitmap_bytes, bitmap_entry;
} Geo;

static bool geo_of(const uint8_t *img, size_t n, Geo *g) {
        if (n < 512)
                return false;
        *g = (Geo) {
                .bps = (uint64_t) 1 << img[108],
                .cluster_bytes = (uint64_t) 1 << (img[108] + img[109]),
                .clusters = get_le32(img + 92),
        };
        g->volume_bytes = get_le64(img + 72) * g->bps;
        g->heap = get_le32(img + 88) * g->bps;
        g->fat = get_le32(img + 80) * g->bps;
        g->fat_bytes = get_le32(img + 84) * g->bps;
        g->root = g->heap + (get_le32(img + 96) - 2) * g->cluster_bytes;
        if (g->root + g->cluster_bytes > n)
                return false;
        /* mkfs.exfat puts the bitmap entry in the root's first cluster. */
        for (uint64_t e = g->root; e < g->root + g->cluster_bytes; e += 32)
                if (img[e] == 0x81) {
                        g->bitmap_entry = e;
                        g->bitmap_cluster = get_le32(img + e + 20);
                        g->bitmap_bytes = get_le64(img + e + 24);
                        return true;
                }
        return false;
}

static uint64_t cluster_at(const Geo *g, uint64_t n) {
        return g->heap + (n - 2) * g->cluster_bytes;
}

/* The separate count: bit by bit over a contiguous bitmap, one extent per
 * used cluster, with none of the probe's chaining or run merging. */
static uint64_t ref_used(const uint8_t *img, const Geo *g, Extents *ret) {
        const uint8_t *bm = img + cluster_at(g, g->bitmap_cluster);
        uint64_t used = 0;
        extents_clear(ret);
        extents_add(ret, 0, g->heap);
        for (uint64_t i = 0; i < g->clusters; i++)
                if (bm[i / 8] & (1u << (i % 8))) {
                        used++;
                        extents_add(ret, cluster_at(g, i + 2), cluster_at(g, i + 3));
                }
        return used;
}

/* dump.exfat's cluster counts: the filesystem's own. */
static bool dump_counts(const char *path, uint64_t *ret_total, uint64_t *ret_free) {
        char cmd[PATH_MAX + 64], line[512];
        unsigned long long v;
        int found = 0;
        snprintf(cmd, sizeof(cmd), "dump.exfat '%s' 2>/dev/null", path);
        FILE *p = popen(cmd, "re");
        if (!p)
                return false;
        while (fgets(line, sizeof(line), p)) {
                if (sscanf(line, "Total Clusters: %llu", &v) == 1)
                        *ret_total = v, found |= 1;
                else if (sscanf(line, "Free Clusters: %llu", &v) == 1)
                        *ret_free = v, found |= 2;
        }
        pclose(p);
        return found == 3;
}

/* Recomputes the main boot region's checksum sector after a patch. */
static void fix_checksum(uint8_t *img) {
        if (img[108] < 9 || img[108] > 12)
                return;
        size_t bps = (size_t) 1 << img[108];
        uint32_t sum = 0;
        for (size_t i = 0; i < 11 * bps; i++)
                if (i != 106 && i != 107 && i != 112)
                        sum = (sum >> 1 | sum << 31) + img[i];
        for (size_t i = 0; i < bps; i += 4)
                put_le32(img + 11 * bps + i, sum);
}

/* Marks about one cluster in density of those not yet used, in runs of
 * 1 to 40, as files would: pseudo-random, the same on every run. */
static void fill_bitmap(uint8_t *img, const Geo *g, unsigned density) {
        uint8_t *bm = img + cluster_at(g, g->bitmap_cluster);
        for (uint64_t i = 0; i < g->clusters;) {
                uint64_t len = 1 + rng() % 40;
                if (rng() % density == 0)
                        for (uint64_t j = i; j < i + len && j < g->clusters; j++)
                                bm[j / 8] |= (uint8_t) (1u << (j % 8));
                i += len + rng() % (2 * len + 1);
        }
}

/* Probes the volume in path and checks it cluster for cluster against the
 * separate count and dump.exfat. */
static void check_image(const char *name, const char *path, const char *how, ProbeResult *res) {
        _cleanup_extents_ Extents ref = EXTENTS_INIT;
        size_t n;
        uint8_t *img = map_image(path, &n);
        uint64_t total = 0, free_clusters = 0;
        Geo g;

        CHECK(img && geo_of(img, n, &g), "%s: cannot read the volume", name);
        if (!img || !geo_of(img, n, &g)) {
                if (img)
                        munmap(img, n);
                return;
        }
        int k = probe_file(path, 0, res);
        CHECK(k == 0, "%s: probe failed: %s", name, res->how);
        uint64_t used = ref_used(img, &g, &ref);
        munmap(img, n);
        if (k < 0)
                return;
        CHECK_STR_CONTAINS(res->how, how);
        CHECK(extents_equal(&res->used, &ref), "%s: the probe's extents differ from the separate count (%zu vs %zu extents)",
              name, res->used.n, ref.n);
        CHECK(dump_counts(path, &total, &free_clusters), "%s: cannot parse dump.exfat", name);
        uint64_t mapped = extents_total(&res->used);
        uint64_t expected = g.heap + (total - free_clusters) * g.cluster_bytes;
        printf("%-30s %-62s used clusters: probe %" PRIu64 ", dump.exfat %" PRIu64 " of %" PRIu64 "; mapped %" PRIu64
               ", expected %" PRIu64 "\n",
               name, res->how, (mapped - g.heap) / g.cluster_bytes, total - free_clusters, total, mapped, expected);
        CHECK_U64(mapped, expected);
        CHECK_U64(used, total - free_clusters);
        CHECK_U64(res->fs_size, g.volume_bytes);
        CHECK(res->used.n && res->used.v[res->used.n - 1].end <= g.heap + g.clusters * g.cluster_bytes,
              "%s: an extent reaches past the cluster heap", name);
        CHECK(res->used.n && res->used.v[0].start == 0 && res->used.v[0].end >= g.heap,
              "%s: the boot regions and FATs are not all used", name);
}

/* mkfs.exfat on a file of the given size, bitmap filled, checked. */
static void test_mkfs(const char *name, const char *args, const char *size, unsigned density, const char *how) {
        ProbeResult res = { .used = EXTENTS_INIT };
        char file[64];
        size_t n;
        Geo g;

        snprintf(file, sizeof(file), "%s.img", name);
        PATH_COPY(img, file);
        if (sh("truncate -s %s '%s' && mkfs.exfat %s '%s' >/dev/null", size, img, args, img) != 0)
                return;
        check_image(name, img, how, &res);
        uint8_t *buf = map_image(img, &n);
        if (buf && geo_of(buf, n, &g)) {
                fill_bitmap(buf, &g, density);
                uint64_t at = cluster_at(&g, g.bitmap_cluster);
                CHECK(patch(img, at, buf + at, g.bitmap_bytes) == 0, "%s: cannot write the bitmap", name);
                char filled[96];
                snprintf(filled, sizeof(filled), "%s-filled", name);
                check_image(filled, img, how, &res);
        }
        if (buf)
                munmap(buf, n);
        probe_result_done(&res);
        unlink(img);
}

/* 4096-byte sectors: mkfs.exfat takes them from the device, so a loop
 * device with 4096-byte logical blocks, detached by the same shell. */
static void test_4k_sectors(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "4kn.img");
        size_t n;
        Geo g;

        if (sh("truncate -s 96M '%s'", img) != 0)
                return;
        if (sh_quiet("L=$(losetup --find --show -b 4096 '%s' 2>/dev/null) || exit 77; trap 'losetup -d $L' EXIT; "
                     "mkfs.exfat -c 32K $L >/dev/null",
                     img) != 0) {
                printf("%-30s no loop device with 4096-byte sectors: skipped\n", "exfat-4096-byte-sectors");
                unlink(img);
                return;
        }
        _cleanup_free_ uint8_t *buf = load(img, &n);
        CHECK(buf && buf[108] == 12, "mkfs.exfat on a 4Kn loop device made sectors of 2^%u", buf ? buf[108] : 0);
        check_image("exfat-4096-byte-sectors", img, "32 KiB clusters, 4096-byte sectors", &res);
        if (buf && geo_of(buf, n, &g)) {
                fill_bitmap(buf, &g, 3);
                save(img, buf, n);
                check_image("exfat-4096-byte-sectors-filled", img, "4096-byte sectors", &res);
        }
        probe_result_done(&res);
        unlink(img);
}

/* The bitmap spans many clusters, and its chain through the FAT is
 * followed: moved to other clusters with a chain that jumps, it is read
 * from there; a chain that leaves the heap makes the probe fail. */
static void test_bitmap_chain(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents ref = EXTENTS_INIT;
        PATH_COPY(img, "chain.img");
        size_t n;
        Geo g;

        if (sh("truncate -s 64M '%s' && mkfs.exfat -c 512 '%s' >/dev/null", img, img) != 0)
                return;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        if (!buf || !geo_of(buf, n, &g))
                return;
        uint64_t nbm = div_round_up(g.bitmap_bytes, g.cluster_bytes);
        CHECK(nbm >= 8, "the bitmap takes %" PRIu64 " clusters, too few to test its chain", nbm);
        fill_bitmap(buf, &g, 4);
        CHECK(save(img, buf, n) == 0, "cannot write chain.img");
        check_image("exfat-512-byte-clusters", img, "512-byte clusters", &res);

        /* Copy the bitmap to clusters 40000.. in two pieces, 40000.. and
         * 50000.., chained in the FAT, and point the entry there. */
        uint64_t half = nbm / 2;
        uint8_t *bm = buf + cluster_at(&g, g.bitmap_cluster);
        _cleanup_free_ uint8_t *copy = malloc(nbm * g.cluster_bytes);
        if (!copy)
                return;
        memcpy(copy, bm, nbm * g.cluster_bytes);
        for (uint64_t i = 0; i < nbm; i++) {
                uint64_t c = i < half ? 40000 + i : 50000 + i - half;
                uint64_t next = i + 1 == nbm ? 0xFFFFFFFF : i + 1 < half ? c + 1 : i + 1 == half ? 50000 : c + 1;
                memcpy(buf + cluster_at(&g, c), copy + i * g.cluster_bytes, g.cluster_bytes);
                put_le32(buf + g.fat + c * 4, (uint32_t) next);
        }
        /* The new bitmap marks its own clusters; the old one is left as it was. */
        for (uint64_t i = 0; i < nbm; i++) {
                uint64_t c = (i < half ? 40000 + i : 50000 + i - half) - 2;
                for (uint64_t j = 0; j < nbm; j++) {
                        uint64_t at = j < half ? 40000 + j : 50000 + j - half;
                        if (c / 8 / g.cluster_bytes == j)
                                buf[cluster_at(&g, at) + c / 8 % g.cluster_bytes] |= (uint8_t) (1u << (c % 8));
                }
        }
        put_le32(buf + g.bitmap_entry + 20, 40000);
        CHECK(save(img, buf, n) == 0, "cannot write chain.img");
        CHECK(probe_file(img, 0, &res) == 0, "a bitmap in two pieces: %s", res.how);
        /* The reference: the bits of the moved bitmap, read in order. */
        uint64_t used = 0;
        extents_clear(&ref);
        extents_add(&ref, 0, g.heap);
        for (uint64_t i = 0; i < g.clusters; i++) {
                uint64_t piece = i / 8 / g.cluster_bytes;
                uint64_t at = piece < half ? 40000 + piece : 50000 + piece - half;
                if (buf[cluster_at(&g, at) + i / 8 % g.cluster_bytes] & (1u << (i % 8))) {
                        used++;
                        extents_add(&ref, cluster_at(&g, i + 2), cluster_at(&g, i + 3));
                }
        }
        CHECK(extents_equal(&res.used, &ref), "a bitmap in two pieces: not read along its chain");
        printf("%-30s %-62s %" PRIu64 " bitmap clusters in 2 pieces, %" PRIu64 " clusters used, mapped %" PRIu64 "\n",
               "exfat-bitmap-chain", res.how, nbm, used, extents_total(&res.used));

        /* A chain that leaves the heap, loops to its own end early, or is
         * marked bad: a failure with a reason, never a partial bitmap. */
        const struct {
                uint32_t v;
                const char *why;
        } broken[] = {
                { (uint32_t) g.clusters + 2, "not a cluster" },
                { 0xFFFFFFF7, "not a cluster" },
                { 0xFFFFFFFF, "ends after" },
        };
        uint8_t keep[4];
        memcpy(keep, buf + g.fat + 40001 * 4, 4);
        for (size_t i = 0; i < ELEMENTSOF(broken); i++) {
                put_le32(buf + g.fat + 40001 * 4, broken[i].v);
                CHECK(probe_mem(buf, n, n, &res) < 0, "a broken bitmap chain (%08" PRIx32 ") accepted", broken[i].v);
                CHECK_STR_CONTAINS(res.how, broken[i].why);
        }
        memcpy(buf + g.fat + 40001 * 4, keep, 4);
        CHECK(probe_mem(buf, n, n, &res) == 0, "the repaired chain: %s", res.how);
        probe_result_done(&res);
        unlink(img);
}

/* Two FATs, two bitmaps (TexFAT): the union of both is mapped, and the
 * active FAT's chains are followed. mkfs.exfat leaves room for a second
 * FAT in its alignment gap; the second bitmap goes into free clusters. */
static void test_texfat(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "texfat.img");
        size_t n;
        Geo g;

        if (sh("truncate -s 64M '%s' && mkfs.exfat -c 4K '%s' >/dev/null", img, img) != 0)
                return;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        if (!buf || !geo_of(buf, n, &g))
                return;
        CHECK(g.fat + 2 * g.fat_bytes <= g.heap, "no room for a second FAT");
        buf[110] = 2;
        memcpy(buf + g.fat + g.fat_bytes, buf + g.fat, g.fat_bytes);
        /* The second bitmap at cluster 10000, marking 100..199 and itself. */
        const uint64_t second = 10000;
        uint8_t *bm2 = buf + cluster_at(&g, second);
        memcpy(bm2, buf + cluster_at(&g, g.bitmap_cluster), g.bitmap_bytes);
        for (uint64_t c = 100; c < 200; c++)
                bm2[(c - 2) / 8] |= (uint8_t) (1u << ((c - 2) % 8));
        bm2[(second - 2) / 8] |= (uint8_t) (1u << ((second - 2) % 8));
        put_le32(buf + g.fat + second * 4, 0xFFFFFFFF);
        put_le32(buf + g.fat + g.fat_bytes + second * 4, 0xFFFFFFFF);
        /* Its entry goes where the end-of-directory entry was. */
        uint64_t slot = g.root;
        while (buf[slot] != 0)
                slot += 32;
        memcpy(buf + slot, buf + g.bitmap_entry, 32);
        buf[slot + 1] = 1;
        put_le32(buf + slot + 20, (uint32_t) second);
        fix_checksum(buf);
        CHECK(save(img, buf, n) == 0, "cannot write texfat.img");

        CHECK(probe_mem(buf, n, n, &res) == 0, "TexFAT: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "TexFAT: union of 2 allocation bitmaps");
        CHECK(extents_contains(&res.used, cluster_at(&g, 100), cluster_at(&g, 200)) &&
                      extents_contains(&res.used, cluster_at(&g, second), cluster_at(&g, second + 1)),
              "TexFAT: the clusters only the second bitmap marks are not mapped");
        uint64_t first_only = g.heap + 4 * g.cluster_bytes;     /* bitmap, up-case, root: 4 clusters */
        printf("%-30s %-62s mapped %" PRIu64 " (the first bitmap alone: %" PRIu64 ")\n", "exfat-texfat", res.how,
               extents_total(&res.used), first_only);
        CHECK_U64(extents_total(&res.used), first_only + 101 * g.cluster_bytes);

        /* The second FAT active (VolumeFlags is outside the checksum). */
        buf[106] |= 1;
        CHECK(probe_mem(buf, n, n, &res) == 0, "TexFAT, FAT #1 active: %s", res.how);
        CHECK_U64(extents_total(&res.used), first_only + 101 * g.cluster_bytes);

        /* Two FATs with one bitmap, or two bitmaps for the same FAT: both
         * doubtful. */
        buf[slot] = 0;
        CHECK(probe_mem(buf, n, n, &res) < 0, "two FATs with one bitmap accepted");
        CHECK_STR_CONTAINS(res.how, "1 allocation bitmap entries for 2 FATs");
        buf[slot] = 0x81;
        buf[slot + 1] = 0;
        CHECK(probe_mem(buf, n, n, &res) < 0, "two bitmaps for FAT #0 accepted");
        CHECK_STR_CONTAINS(res.how, "unexpected allocation bitmap");
        probe_result_done(&res);
        unlink(img);
}

/* Bad-cluster marks in the FAT are mapped even where the bitmap says free. */
static void test_bad_clusters(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "bad.img");
        size_t n;
        Geo g;

        if (sh("truncate -s 32M '%s' && mkfs.exfat -c 8K '%s' >/dev/null", img, img) != 0)
                return;
        _cleanup_free_ uint8_t *buf = load(img, &n);
        if (!buf || !geo_of(buf, n, &g))
                return;
        CHECK(probe_mem(buf, n, n, &res) == 0, "before the bad marks: %s", res.how);
        uint64_t before = extents_total(&res.used);
        const uint64_t bad[] = { 50, 51, 1000, g.clusters + 1 };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                put_le32(buf + g.fat + bad[i] * 4, 0xFFFFFFF7);
        CHECK(probe_mem(buf, n, n, &res) == 0, "bad clusters: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "4 bad cluster marks");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(extents_contains(&res.used, cluster_at(&g, bad[i]), cluster_at(&g, bad[i] + 1)),
                      "bad cluster %" PRIu64 " is not mapped", bad[i]);
        CHECK_U64(extents_total(&res.used), before + ELEMENTSOF(bad) * g.cluster_bytes);
        probe_result_done(&res);
        unlink(img);
}

/* A damaged volume: the probe fails with a reason containing why (or maps
 * the whole partition, saying why), never maps less. */
static void check_fail_or_whole(const char *what, const uint8_t *img, uint64_t image_size, uint64_t size, const char *why) {
        ProbeResult res = { .used = EXTENTS_INIT };
        check_damaged("exfat-corrupt", what, probe_mem(img, image_size, size, &res), &res, size, why);
        probe_result_done(&res);
}

static void test_corrupt(void) {
        PATH_COPY(path, "corrupt.img");
        size_t n;
        Geo g;

        if (sh("truncate -s 48M '%s' && mkfs.exfat -c 4K '%s' >/dev/null", path, path) != 0)
                return;
        _cleanup_free_ uint8_t *orig = load(path, &n);
        _cleanup_free_ uint8_t *img = malloc(n);
        if (!orig || !img || !geo_of(orig, n, &g))
                return;
        uint64_t part = n;

        /* A flipped byte anywhere in the checksummed sectors, or in the
         * checksum sector itself. */
        const uint64_t flips[] = { 100, 72, 200, 512 * 5 + 17, 512 * 11 + 2 };
        for (size_t i = 0; i < ELEMENTSOF(flips); i++) {
                char what[64];
                memcpy(img, orig, n);
                img[flips[i]] ^= 0x10;
                snprintf(what, sizeof(what), "byte %" PRIu64 " of the boot region flipped", flips[i]);
                check_fail_or_whole(what, img, n, part, "boot checksum");
        }
        /* The flags and PercentInUse are outside it. */
        memcpy(img, orig, n);
        img[112] = 42;
        ProbeResult res = { .used = EXTENTS_INIT };
        CHECK(probe_mem(img, n, part, &res) == 0, "PercentInUse changed: %s", res.how);
        probe_result_done(&res);

        memcpy(img, orig, n);
        img[106] |= 2;
        check_fail_or_whole("dirty", img, n, part, "dirty");

        memcpy(img, orig, n);
        put_le64(img + 72, get_le64(img + 72) + 1);
        fix_checksum(img);
        check_fail_or_whole("VolumeLength one sector past the partition", img, n, part, "larger than its partition");
        memcpy(img, orig, n);
        put_le64(img + 72, UINT64_MAX);
        fix_checksum(img);
        check_fail_or_whole("VolumeLength 2^64-1", img, n, part, "larger than its partition");
        memcpy(img, orig, n);
        check_fail_or_whole("partition one sector short", img, n, part - 512, "larger than its partition");

        /* The bitmap entry pointing past the volume, or too short. */
        memcpy(img, orig, n);
        put_le32(img + g.bitmap_entry + 20, (uint32_t) g.clusters + 2);
        check_fail_or_whole("bitmap past the volume", img, n, part, "outside the heap");
        memcpy(img, orig, n);
        put_le32(img + g.bitmap_entry + 20, 0xFFFFFFFF);
        check_fail_or_whole("bitmap at cluster 2^32-1", img, n, part, "outside the heap");
        memcpy(img, orig, n);
        put_le64(img + g.bitmap_entry + 24, 3);
        check_fail_or_whole("bitmap of 3 bytes", img, n, part, "needed");
        memcpy(img, orig, n);
        put_le64(img + g.bitmap_entry + 24, UINT64_MAX);
        check_fail_or_whole("bitmap of 2^64-1 bytes", img, n, part, "larger than the heap");
        memcpy(img, orig, n);
        img[g.bitmap_entry] = 0x01;
        check_fail_or_whole("no bitmap entry", img, n, part, "0 allocation bitmap entries");

        /* A bitmap that leaves itself or the root directory free. */
        memcpy(img, orig, n);
        uint64_t bit = get_le32(img + 96) - 2;
        img[cluster_at(&g, g.bitmap_cluster) + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
        check_fail_or_whole("root directory marked free", img, n, part, "marked free");
        memcpy(img, orig, n);
        bit = g.bitmap_cluster - 2;
        img[cluster_at(&g, g.bitmap_cluster) + bit / 8] &= (uint8_t) ~(1u << (bit % 8));
        check_fail_or_whole("bitmap marks itself free", img, n, part, "its own cluster");

        /* Geometry that does not add up. */
        struct {
                size_t at, len;
                uint64_t v;
                const char *why;
        } geo[] = {
                { 108, 1, 8, "bytes per sector" },
                { 108, 1, 13, "bytes per sector" },
                { 109, 1, 17, "larger than 32 MiB" },
                { 110, 1, 0, "FATs" },
                { 110, 1, 3, "FATs" },
                { 80, 4, 12, "overlaps the boot regions" },
                { 84, 4, 1, "too small" },
                { 88, 4, 100, "past the cluster heap" },
                { 92, 4, 0, "clusters" },
                { 92, 4, 0xFFFFFFFF, "clusters" },
                { 92, 4, (uint32_t) g.clusters + 1, "past the volume" },
                { 96, 4, 1, "root directory cluster" },
                { 96, 4, (uint32_t) g.clusters + 2, "root directory cluster" },
                { 105, 1, 2, "revision" },
                { 3, 1, 'F', "EXFAT" },
        };
        for (size_t i = 0; i < ELEMENTSOF(geo); i++) {
                char what[64];
                memcpy(img, orig, n);
                if (geo[i].len == 1)
                        img[geo[i].at] = (uint8_t) geo[i].v;
                else
                        put_le32(img + geo[i].at, (uint32_t) geo[i].v);
                fix_checksum(img);
                snprintf(what, sizeof(what), "byte %zu set to %" PRIu64, geo[i].at, geo[i].v);
                check_fail_or_whole(what, img, n, part, geo[i].why);
        }
        memcpy(img, orig, n);
        img[510] = 0;
        check_fail_or_whole("no AA55", img, n, part, "AA55");
        memcpy(img, orig, n);
        img[106] |= 1;
        check_fail_or_whole("FAT #1 active of 1", img, n, part, "active FAT");

        /* Truncated images: the region is whole but the file ends early. */
        memcpy(img, orig, n);
        check_fail_or_whole("truncated to half", img, n / 2, part, "last sector");
        check_fail_or_whole("truncated to 4 KiB", img, 4096, part, "boot region");
        check_fail_or_whole("truncated to 100 bytes", img, 100, part, "boot sector");
        check_fail_or_whole("one sector short", img, n - 512, part, "last sector");
        check_fail_or_whole("truncated after the heap start", img, g.heap + 4096, part, NULL);

        /* The same through a file descriptor. */
        PATH_COPY(cut, "cut.img");
        if (sh("head -c %" PRIu64 " '%s' > '%s'", g.heap + 65536, path, cut) == 0) {
                int fd = open(cut, O_RDONLY | O_CLOEXEC);
                Reader r = reader_from_fd(fd, file_size(cut), 0, n);
                CHECK(fsprobe_exfat.collect(&r, "exfat", &res) < 0, "a truncated file accepted: %s", res.how);
                printf("%-30s truncated file: %s\n", "exfat-corrupt", res.how);
                if (fd >= 0)
                        close(fd);
        }
        probe_result_done(&res);
        unlink(cut);
        unlink(path);
}

/* A volume shorter than its partition: the rest is free, fs_size says
 * where the volume ends. */
static void test_shorter(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "short.img");
        if (sh("truncate -s 20M '%s' && mkfs.exfat -c 16K '%s' >/dev/null && truncate -s 32M '%s'", img, img, img) != 0)
                return;
        check_image("exfat-volume-shorter-file", img, "16 KiB clusters", &res);
        CHECK(res.fs_size <= 20 << 20 && res.fs_size > 19 << 20, "fs_size %" PRIu64 " for a 20 MiB volume", res.fs_size);
        CHECK(res.used.n && res.used.v[res.used.n - 1].end <= res.fs_size, "an extent past the volume's end");
        probe_result_done(&res);
        unlink(img);
}

/* Random damage to valid volumes must never crash, read outside the region
 * or map outside it. The hot zone: the boot sector, the bitmap and root
 * directory clusters. */
static void mutate_image(const char *name, unsigned rounds) {
        size_t n;
        _cleanup_free_ uint8_t *orig = load(tpath(name), &n);
        Geo g;
        CHECK(orig && geo_of(orig, n, &g), "cannot load %s", name);
        if (!orig || !geo_of(orig, n, &g))
                return;
        _cleanup_free_ uint8_t *img = malloc(n);
        ProbeResult res = { .used = EXTENTS_INIT };
        unsigned ok = 0;
        if (!img)
                return;
        memcpy(img, orig, n);
        for (unsigned round = 0; round < rounds; round++) {
                unsigned changes = 1 + (unsigned) (rng() % 8);
                for (unsigned c = 0; c < changes; c++) {
                        uint64_t zone = rng() % 4;
                        size_t at = zone == 0   ? (size_t) (64 + rng() % 64)
                                    : zone == 1 ? (size_t) (cluster_at(&g, g.bitmap_cluster) + rng() % g.bitmap_bytes)
                                    : zone == 2 ? (size_t) (g.root + rng() % 128)
                                                : (size_t) (g.fat + rng() % 64);
                        img[at] = rng() % 3 ? (uint8_t) rng() : (uint8_t) (img[at] ^ (1u << (rng() % 8)));
                }
                /* Mostly keep the checksum right, so the damage gets past it. */
                if (rng() % 4)
                        fix_checksum(img);
                uint64_t image_size = rng() % 8 ? n : rng() % n;
                uint64_t size = rng() % 8 ? n : rng() % (2 * n);
                int k = probe_mem(img, image_size, size, &res);
                if (check_mutant(k, &res, size, round))
                        ok++;
                if (round % 4 == 3)
                        memcpy(img, orig, n);
        }
        printf("%-30s %u of %u mutations still parsed\n", name, ok, rounds);
        probe_result_done(&res);
}

/* Millions of clusters, every other one used: the worst case for extents. */
static void test_large(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "large.img");

        if (sh("truncate -s 2G '%s' && mkfs.exfat -c 512 '%s' >/dev/null", img, img) != 0)
                return;
        size_t n;
        uint8_t *buf = map_image(img, &n);
        Geo g;
        uint64_t used = 0;
        CHECK(buf && geo_of(buf, n, &g), "cannot read large.img");
        if (!buf || !geo_of(buf, n, &g)) {
                if (buf)
                        munmap(buf, n);
                return;
        }
        uint8_t *bm = buf + cluster_at(&g, g.bitmap_cluster);
        for (uint64_t i = 0; i < g.bitmap_bytes; i++)
                bm[i] |= 0x55;
        CHECK(patch(img, cluster_at(&g, g.bitmap_cluster), bm, g.bitmap_bytes) == 0, "cannot write the bitmap");
        for (uint64_t i = 0; i < g.clusters; i++)
                used += bm[i / 8] >> (i % 8) & 1;
        munmap(buf, n);

        int k = probe_file(img, 0, &res);
        CHECK(k == 0, "large: %s", res.how);
        printf("%-30s %-62s %" PRIu64 " of %" PRIu64 " clusters used, %zu extents\n",
               "exfat-4M-clusters-alternate", res.how, used, g.clusters, res.used.n);
        CHECK_U64(extents_total(&res.used), g.heap + used * g.cluster_bytes);
        /* How fast is for scripts/bench.sh to say, not a test. */
        probe_result_done(&res);
        unlink(img);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        if (system("command -v mkfs.exfat >/dev/null && command -v dump.exfat >/dev/null") != 0) {
                printf("test-probe-exfat: mkfs.exfat or dump.exfat (exfatprogs) missing, skipped\n");
                return 77;
        }
        if (!base || !*base)
                base = "/tmp";
        if (sh("mkdir -p '%s'", base) != 0)
                return 1;
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-probe-exfat-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }

        test_mkfs("exfat-4k-clusters", "-c 4K", "64M", 3, "allocation bitmap, 4 KiB clusters, 512-byte sectors");
        test_mkfs("exfat-128k-clusters", "-c 128K", "300M", 2, "128 KiB clusters");
        test_mkfs("exfat-512-byte-clusters", "-c 512", "16M", 3, "512-byte clusters");
        test_mkfs("exfat-32m-clusters", "-c 32M", "1G", 2, "32 MiB clusters");
        test_mkfs("exfat-default-no-gap", "-b 4K", "40M", 5, "allocation bitmap");
        test_4k_sectors();
        test_bitmap_chain();
        test_texfat();
        test_bad_clusters();
        test_shorter();
        test_corrupt();
        if (sh("truncate -s 8M '%s' && mkfs.exfat -c 1K '%s' >/dev/null", tpath("m.img"), tpath("m.img")) == 0)
                mutate_image("m.img", 400);
        test_large();

        sh("rm -rf '%s'", tmpdir);
        return check_exit("test-probe-exfat");
}
