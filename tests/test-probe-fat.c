/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The FAT probe against real images made by mkfs.fat and filled by mtools:
 * the used clusters must be exactly those whose entry is nonzero, counted
 * again here by a plain separate parse and by fsck.fat, and every broken or
 * fuzzed volume must fail or be mapped whole, never crash or shrink. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "probe-mutants.h"
#include "test-helpers.h"
#include "probe.h"

/* A file of size pseudo-random bytes, to copy into images. */
static void make_file(const char *name, size_t size) {
        FILE *f = fopen(tpath(name), "we");
        CHECK(f, "cannot create %s", name);
        if (!f)
                return;
        for (size_t i = 0; i < size; i++)
                fputc((int) (rng() & 0xFF), f);
        fclose(f);
}

static uint64_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

/* The volume's size by its BPB, read here independently. */
static uint64_t bpb_fs_size(const char *path) {
        uint8_t b[512];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t k = pread(fd, b, sizeof(b), 0);
        close(fd);
        if (k != (ssize_t) sizeof(b))
                return 0;
        return (uint64_t) get_le16(b + 11) * (get_le16(b + 19) ? get_le16(b + 19) : get_le32(b + 32));
}

static int probe_file(const char *path, uint64_t base, uint64_t size, ProbeResult *res) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0, "cannot open %s", path);
        if (fd < 0)
                return -errno;
        Reader r = reader_from_fd(fd, file_size(path), base, size ? size : file_size(path) - base);
        int k = fsprobe_fat.collect(&r, "vfat", res);
        close(fd);
        return k;
}

static int probe_mem(const uint8_t *img, uint64_t image_size, uint64_t size, ProbeResult *res) {
        Reader r = reader_from_mem(img, image_size, 0, size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        return fsprobe_fat.collect(&r, "vfat", res);
}

/* What fsck.fat -n -v says about a volume at the start of a file. */
typedef struct FsckInfo {
        uint64_t used, clusters, data_start, cluster_bytes;
} FsckInfo;

static bool fsck_info(const char *path, FsckInfo *ret) {
        char cmd[PATH_MAX + 64], line[512];
        FsckInfo fi = {};
        int found = 0;

        snprintf(cmd, sizeof(cmd), "fsck.fat -n -v '%s' 2>&1", path);
        FILE *p = popen(cmd, "re");
        if (!p)
                return false;
        while (fgets(line, sizeof(line), p)) {
                unsigned long long a, b;
                char *s;
                if (sscanf(line, " %llu bytes per cluster", &a) == 1 && strstr(line, "bytes per cluster"))
                        fi.cluster_bytes = a, found |= 1;
                else if (sscanf(line, "Data area starts at byte %llu", &a) == 1)
                        fi.data_start = a, found |= 2;
                else if ((s = strstr(line, " files, ")) && sscanf(s, " files, %llu/%llu clusters", &a, &b) == 2)
                        fi.used = a, fi.clusters = b, found |= 4;
        }
        pclose(p);
        *ret = fi;
        return found == 7;
}

/* The separate count: one pass over FAT #fat of the volume at base, entry
 * by entry, with none of the probe's chunking or run merging. */
static int ref_used(const char *path, uint64_t base, unsigned fat, Extents *ret) {
        uint8_t b[512];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, b, sizeof(b), (off_t) base) != (ssize_t) sizeof(b)) {
                if (fd >= 0)
                        close(fd);
                return -EIO;
        }
        uint64_t bps = get_le16(b + 11), spc = b[13], reserved = get_le16(b + 14), nfats = b[16];
        uint64_t root_entries = get_le16(b + 17), total = get_le16(b + 19) ? get_le16(b + 19) : get_le32(b + 32);
        bool fat32 = get_le16(b + 22) == 0;
        uint64_t fatsz = fat32 ? get_le32(b + 36) : get_le16(b + 22);
        uint64_t data = reserved + nfats * fatsz + (root_entries * 32 + bps - 1) / bps;
        uint64_t clusters = (total - data) / spc;
        unsigned bits = fat32 ? 32 : clusters < 4085 ? 12 : 16;
        uint8_t *t = malloc(fatsz * bps);
        if (!t || pread(fd, t, fatsz * bps, (off_t) (base + (reserved + fat * fatsz) * bps)) != (ssize_t) (fatsz * bps)) {
                free(t);
                close(fd);
                return -EIO;
        }
        close(fd);

        extents_clear(ret);
        extents_add(ret, 0, data * bps);
        for (uint64_t n = 2; n < clusters + 2; n++) {
                uint32_t v;
                if (bits == 12)
                        v = (n % 2 ? (t[n * 3 / 2] >> 4) | (t[n * 3 / 2 + 1] << 4) : t[n * 3 / 2] | ((t[n * 3 / 2 + 1] & 15) << 8));
                else if (bits == 16)
                        v = get_le16(t + n * 2);
                else
                        v = get_le32(t + n * 4) & 0x0FFFFFFF;
                if (v)
                        extents_add(ret, (data + (n - 2) * spc) * bps, (data + (n - 1) * spc) * bps);
        }
        free(t);
        return 0;
}

/* Probes the volume at the start of path and checks it cluster for cluster
 * against the separate count and against fsck.fat's numbers. */
static void check_image(const char *name, const char *path, unsigned bits, ProbeResult *res) {
        _cleanup_extents_ Extents ref = EXTENTS_INIT;
        char want[16];
        FsckInfo fi;

        extents_clear(&res->used);
        int k = probe_file(path, 0, 0, res);
        CHECK(k == 0, "%s: probe failed: %s", name, res->how);
        if (k < 0)
                return;
        snprintf(want, sizeof(want), "FAT%u,", bits);
        CHECK_STR_CONTAINS(res->how, want);

        CHECK(ref_used(path, 0, 0, &ref) == 0, "%s: cannot count the clusters", name);
        CHECK(extents_equal(&res->used, &ref), "%s: the probe's extents differ from the separate count (%zu vs %zu extents)",
              name, res->used.n, ref.n);

        CHECK(fsck_info(path, &fi), "%s: cannot parse fsck.fat -n -v", name);
        uint64_t total = extents_total(&res->used);
        uint64_t probe_clusters = fi.cluster_bytes ? (total - fi.data_start) / fi.cluster_bytes : 0;
        uint64_t expected = fi.data_start + fi.used * fi.cluster_bytes;
        printf("%-28s %-46s used clusters: probe %" PRIu64 ", fsck.fat %" PRIu64 " of %" PRIu64 "; used bytes %" PRIu64
               ", expected %" PRIu64 "\n",
               name, res->how, probe_clusters, fi.used, fi.clusters, total, expected);
        CHECK_U64(total, expected);
        CHECK_U64(probe_clusters, fi.used);
        /* Nothing past the last whole cluster: the tail sectors are free. */
        CHECK(res->used.n && res->used.v[res->used.n - 1].end <= fi.data_start + fi.clusters * fi.cluster_bytes,
              "%s: an extent reaches past the last cluster", name);
        CHECK(res->used.n && res->used.v[0].start == 0 && res->used.v[0].end >= fi.data_start,
              "%s: the reserved sectors, FATs and root directory are not all used", name);
}

static void test_fat12_floppy(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "floppy.img");

        make_file("a", 30000);
        make_file("b", 1);
        make_file("c", 200000);
        if (sh("mkfs.fat -C -F 12 '%s' 1440 >/dev/null && mcopy -i '%s' '%s' ::a && mmd -i '%s' ::dir ::dir/sub && "
               "mcopy -i '%s' '%s' '%s' ::dir/ && mcopy -i '%s' '%s' ::dir/sub/c2",
               img, img, tpath("a"), img, img, tpath("b"), tpath("c"), img, tpath("c")) == 0)
                check_image("fat12-floppy", img, 12, &res);
        CHECK_U64(res.fs_size, 1440 * 1024);
        probe_result_done(&res);
}

static void fill_volume(const char *path, unsigned nfiles, size_t max_size) {
        char img[PATH_MAX];
        snprintf(img, sizeof(img), "%s", path);
        sh("mmd -i '%s' ::d1 ::d1/d2", img);
        for (unsigned i = 0; i < nfiles; i++) {
                char name[32];
                snprintf(name, sizeof(name), "f%u", i);
                make_file(name, (size_t) (rng() % max_size));
                sh("mcopy -i '%s' '%s' ::%s%s", img, tpath(name), i % 3 == 0 ? "d1/d2/" : i % 3 == 1 ? "d1/" : "",
                   name);
        }
}

/* One mkfs.fat invocation, some files, the exact check. */
static void test_mkfs(const char *name, const char *mkfs_args, uint64_t kib, unsigned bits, unsigned nfiles,
                      size_t max_size) {
        ProbeResult res = { .used = EXTENTS_INIT };
        char file[64];
        snprintf(file, sizeof(file), "%s.img", name);
        PATH_COPY(img, file);
        if (sh("mkfs.fat -C %s '%s' %" PRIu64 " >/dev/null 2>&1", mkfs_args, img, kib) == 0) {
                fill_volume(img, nfiles, max_size);
                check_image(name, img, bits, &res);
                CHECK_U64(res.fs_size, bpb_fs_size(img));
                CHECK(res.fs_size <= file_size(img) && res.fs_size + 1024 * 1024 > file_size(img),
                      "%s: fs_size %" PRIu64 " for a file of %" PRIu64, name, res.fs_size, file_size(img));
        }
        probe_result_done(&res);
        unlink(img);
}

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        put_le16(p, (uint16_t) v);
        put_le16(p + 2, (uint16_t) (v >> 16));
}

static int patch(const char *path, uint64_t off, const void *buf, size_t n) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t k = pwrite(fd, buf, n, (off_t) off);
        close(fd);
        return k == (ssize_t) n ? 0 : -EIO;
}

static bool cluster_used(const Extents *used, uint64_t data_start, uint64_t cluster_bytes, uint64_t n) {
        uint64_t o = data_start + (n - 2) * cluster_bytes;
        return extents_contains(used, o, o + cluster_bytes);
}

static bool cluster_free(const Extents *used, uint64_t data_start, uint64_t cluster_bytes, uint64_t n) {
        uint64_t o = data_start + (n - 2) * cluster_bytes;
        return !extents_overlaps(used, o, o + cluster_bytes);
}

static void test_bad_clusters(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "bad.img");
        PATH_COPY(list, "badblocks");
        FsckInfo fi;

        /* mkfs.fat's bad-block list is in 1 KiB blocks. */
        FILE *f = fopen(list, "we");
        if (f) {
                fprintf(f, "100\n101\n200\n3000\n");
                fclose(f);
        }
        if (sh("mkfs.fat -C -F 12 -l '%s' '%s' 4096 >/dev/null 2>&1", list, img) != 0)
                goto out;
        check_image("fat12-bad-blocks-list", img, 12, &res);
        CHECK(fsck_info(img, &fi) && fi.used >= 3, "mkfs.fat -l marked no bad clusters");

        /* FAT16, with bad marks patched into both FATs by hand. */
        if (sh("mkfs.fat -C -F 16 '%s' 32768 >/dev/null 2>&1", tpath("bad16.img")) != 0)
                goto out;
        snprintf(img, sizeof(img), "%s", tpath("bad16.img"));
        fill_volume(img, 3, 20000);
        uint8_t b[512];
        int fd = open(img, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0 && pread(fd, b, sizeof(b), 0) == (ssize_t) sizeof(b), "cannot read bad16.img");
        if (fd >= 0)
                close(fd);
        uint64_t bps = get_le16(b + 11), fat0 = get_le16(b + 14) * bps, fatsz = get_le16(b + 22) * bps;
        const uint64_t bad[] = { 1000, 1001, 5000, 16000 };
        uint8_t mark[2];
        put_le16(mark, 0xFFF7);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                for (unsigned fat = 0; fat < 2; fat++)
                        patch(img, fat0 + fat * fatsz + bad[i] * 2, mark, 2);
        check_image("fat16-bad-marks", img, 16, &res);
        CHECK(fsck_info(img, &fi), "fsck.fat on bad16.img");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(cluster_used(&res.used, fi.data_start, fi.cluster_bytes, bad[i]), "bad cluster %" PRIu64 " is not mapped",
                      bad[i]);
out:
        probe_result_done(&res);
        unlink(tpath("bad.img"));
        unlink(tpath("bad16.img"));
}

/* FAT32 with mirroring off and FAT #1 active, FAT #1 differing from #0: a
 * cluster that only FAT #1 uses is mapped, one that only FAT #0 uses is not. */
static void test_mirroring(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents ref0 = EXTENTS_INIT, ref1 = EXTENTS_INIT;
        PATH_COPY(img, "mirror.img");
        uint8_t b[512], v[4];
        FsckInfo fi;

        if (sh("mkfs.fat -C -F 32 '%s' 65536 >/dev/null 2>&1", img) != 0)
                return;
        fill_volume(img, 6, 40000);
        CHECK(fsck_info(img, &fi), "fsck.fat on mirror.img");
        int fd = open(img, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0 && pread(fd, b, sizeof(b), 0) == (ssize_t) sizeof(b), "cannot read mirror.img");
        if (fd >= 0)
                close(fd);
        uint64_t bps = get_le16(b + 11), fat0 = get_le16(b + 14) * bps, fatsz = get_le32(b + 36) * bps;
        uint64_t fat1 = fat0 + fatsz;
        /* Cluster 3 holds a file (mcopy allocates from the start); cluster
         * 30000 is free. */
        uint64_t only0 = 3, only1 = 30000;
        CHECK(ref_used(img, 0, 0, &ref0) == 0 && cluster_used(&ref0, fi.data_start, fi.cluster_bytes, only0),
              "cluster 3 is not in use");
        put_le32(v, 0);
        patch(img, fat1 + only0 * 4, v, 4);
        put_le32(v, 0x0FFFFFFF);
        patch(img, fat1 + only1 * 4, v, 4);

        /* Mirroring on, FATs differing: both clusters are a doubt, both mapped. */
        extents_clear(&res.used);
        CHECK(probe_file(img, 0, 0, &res) == 0, "mirrored, differing FATs: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "differ");
        CHECK(cluster_used(&res.used, fi.data_start, fi.cluster_bytes, only0) &&
                      cluster_used(&res.used, fi.data_start, fi.cluster_bytes, only1),
              "differing mirrored FATs: the union is not mapped");

        uint8_t flags = 0x81;
        patch(img, 0x28, &flags, 1);
        extents_clear(&res.used);
        CHECK(probe_file(img, 0, 0, &res) == 0, "mirroring off: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "active FAT #1");
        CHECK(ref_used(img, 0, 1, &ref1) == 0, "cannot count FAT #1");
        CHECK(extents_equal(&res.used, &ref1), "mirroring off: the probe did not read FAT #1 exactly");
        CHECK(cluster_free(&res.used, fi.data_start, fi.cluster_bytes, only0), "a cluster free in FAT #1 is mapped");
        CHECK(cluster_used(&res.used, fi.data_start, fi.cluster_bytes, only1), "a cluster used in FAT #1 is not mapped");
        printf("%-28s %-46s used bytes %" PRIu64 " (FAT #1), %" PRIu64 " by FAT #0\n", "fat32-mirroring-off-fat1",
               res.how, extents_total(&res.used), extents_total(&ref0));
        CHECK_U64(extents_total(&res.used), extents_total(&ref0));

        flags = 0x82;
        patch(img, 0x28, &flags, 1);
        extents_clear(&res.used);
        CHECK(probe_file(img, 0, 0, &res) < 0, "active FAT #2 of 2 accepted");
        CHECK_STR_CONTAINS(res.how, "active FAT #2");

        probe_result_done(&res);
        unlink(img);
}

/* A volume smaller than its partition: the rest is free. A partition
 * smaller than its volume: failure. Also a volume at an offset. */
static void test_sizes(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents ref = EXTENTS_INIT;
        PATH_COPY(img, "short.img");

        if (sh("mkfs.fat -C -F 16 -s 8 '%s' 20001 >/dev/null 2>&1 && truncate -s 32M '%s'", img, img) == 0) {
                fill_volume(img, 4, 100000);
                check_image("fat16-volume-shorter-file", img, 16, &res);
                uint64_t fs_size = bpb_fs_size(img);
                CHECK_U64(res.fs_size, fs_size);
                CHECK(fs_size <= 20001 * 1024 && fs_size > 19000 * 1024, "mkfs.fat made %" PRIu64 " bytes", fs_size);
                CHECK(res.used.n && res.used.v[res.used.n - 1].end <= fs_size, "an extent past the volume's end");

                extents_clear(&res.used);
                CHECK(probe_file(img, 0, fs_size - 512, &res) < 0, "a volume larger than its partition accepted");
                CHECK_STR_CONTAINS(res.how, "larger than its partition");
        }
        unlink(img);

        /* At 1 MiB into a file, as in a partitioned image. */
        snprintf(img, sizeof(img), "%s", tpath("offset.img"));
        if (sh("truncate -s 40M '%s' && mkfs.fat -F 16 --offset 2048 '%s' 30000 >/dev/null 2>&1", img, img) == 0) {
                make_file("o1", 300000);
                sh("mcopy -i '%s@@1048576' '%s' ::o1 && mmd -i '%s@@1048576' ::od", img, tpath("o1"), img);
                extents_clear(&res.used);
                CHECK(probe_file(img, 1048576, 30000 * 1024, &res) == 0, "volume at 1 MiB: %s", res.how);
                CHECK(ref_used(img, 1048576, 0, &ref) == 0, "cannot count the volume at 1 MiB");
                CHECK(extents_equal(&res.used, &ref), "volume at 1 MiB: extents differ from the separate count");
                CHECK(res.used.n && res.used.v[res.used.n - 1].end <= 30000 * 1024, "an extent past the volume");
                printf("%-28s %-46s used bytes %" PRIu64 ", expected %" PRIu64 "\n", "fat16-at-1MiB", res.how,
                       extents_total(&res.used), extents_total(&ref));
        }
        unlink(img);
        probe_result_done(&res);
}

/* Deleting a file frees its clusters, and only those. */
static void test_deleted(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents before = EXTENTS_INIT, gone = EXTENTS_INIT, extra = EXTENTS_INIT;
        PATH_COPY(img, "del.img");

        make_file("k1", 50000);
        make_file("gone", 123456);
        make_file("k2", 7000);
        if (sh("mkfs.fat -C -F 16 -s 4 '%s' 16384 >/dev/null 2>&1 && mcopy -i '%s' '%s' '%s' '%s' ::", img, img,
               tpath("k1"), tpath("gone"), tpath("k2")) == 0) {
                check_image("fat16-before-delete", img, 16, &res);
                extents_copy(&before, &res.used);
                if (sh("mdel -i '%s' ::gone", img) == 0) {
                        check_image("fat16-after-delete", img, 16, &res);
                        extents_copy(&gone, &before);
                        extents_subtract(&gone, &res.used);
                        CHECK_U64(extents_total(&gone), div_round_up(123456, 2048) * 2048);
                        extents_copy(&extra, &res.used);
                        extents_subtract(&extra, &before);
                        CHECK_U64(extents_total(&extra), 0);
                }
        }
        probe_result_done(&res);
        unlink(img);
}

static void set_fat12(uint8_t *fat, size_t n, uint16_t v) {
        size_t o = n * 3 / 2;
        if (n & 1) {
                fat[o] = (uint8_t) ((fat[o] & 0x0F) | ((v & 0x0F) << 4));
                fat[o + 1] = (uint8_t) (v >> 4);
        } else {
                fat[o] = (uint8_t) v;
                fat[o + 1] = (uint8_t) ((fat[o + 1] & 0xF0) | (v >> 8));
        }
}

/* A BPB for a hand-made image of 512-byte sectors. */
static void make_bpb(uint8_t *img, uint8_t spc, uint16_t reserved, uint8_t nfats, uint16_t root_entries, uint32_t total,
                     uint16_t fat16, uint32_t fat32) {
        img[0] = 0xEB, img[1] = 0x3C, img[2] = 0x90;
        memcpy(img + 3, "MSWIN4.1", 8);
        put_le16(img + 0x0B, 512);
        img[0x0D] = spc;
        put_le16(img + 0x0E, reserved);
        img[0x10] = nfats;
        put_le16(img + 0x11, root_entries);
        put_le16(img + 0x13, total < 0x10000 ? (uint16_t) total : 0);
        img[0x15] = 0xF8;
        put_le16(img + 0x16, fat16);
        put_le32(img + 0x20, total < 0x10000 ? 0 : total);
        put_le32(img + 0x24, fat32);
        img[0x1FE] = 0x55, img[0x1FF] = 0xAA;
}

static void check_clusters(const char *what, const ProbeResult *res, uint64_t data_start, uint64_t cluster_bytes,
                           uint64_t nclusters, const bool *used) {
        for (uint64_t n = 2; n < nclusters + 2; n++)
                if (used[n])
                        CHECK(cluster_used(&res->used, data_start, cluster_bytes, n), "%s: cluster %" PRIu64 " not mapped",
                              what, n);
                else
                        CHECK(cluster_free(&res->used, data_start, cluster_bytes, n), "%s: free cluster %" PRIu64 " mapped",
                              what, n);
}

/* Packed 12-bit entries: a value that lives only in the shared byte's
 * nibble, at odd and at even positions, and the last entry of the FAT. */
static void test_fat12_packed_entries(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        /* 80 sectors: boot, 2 FATs of 1 sector, 1 root sector, 76 clusters. */
        enum { TOTAL = 80, DATA = 4, CLUSTERS = 76 };
        static uint8_t img[TOTAL * 512];
        bool used[CLUSTERS + 2] = {};
        const struct {
                size_t n;
                uint16_t v;
        } entries[] = {
                { 3, 0x001 }, { 4, 0x100 }, { 6, 0x800 }, { 9, 0xFF7 }, { 10, 0x010 },
                { 13, 0x100 }, { 14, 0x001 }, { 20, 0x00F }, { 76, 0xFFF }, { 77, 0x001 },
        };

        make_bpb(img, 1, 1, 2, 16, TOTAL, 1, 0);
        for (unsigned fat = 0; fat < 2; fat++) {
                uint8_t *t = img + 512 * (1 + fat);
                set_fat12(t, 0, 0xFF8);
                set_fat12(t, 1, 0xFFF);
                for (size_t i = 0; i < ELEMENTSOF(entries); i++)
                        set_fat12(t, entries[i].n, entries[i].v);
                /* Entries past the last cluster are no clusters. */
                set_fat12(t, 78, 0xFFF);
                set_fat12(t, 79, 0x123);
        }
        for (size_t i = 0; i < ELEMENTSOF(entries); i++)
                used[entries[i].n] = true;
        CHECK(probe_mem(img, sizeof(img), sizeof(img), &res) == 0, "hand-made FAT12: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "FAT12, FAT #0, 512-byte clusters");
        check_clusters("fat12-packed", &res, DATA * 512, 512, CLUSTERS, used);
        CHECK(res.used.n && res.used.v[res.used.n - 1].end <= TOTAL * 512, "an extent past the volume");
        CHECK_U64(extents_total(&res.used), (DATA + ELEMENTSOF(entries)) * 512);

        /* The reverse: every entry used but two, one odd and one even. */
        for (unsigned fat = 0; fat < 2; fat++)
                for (size_t n = 2; n < CLUSTERS + 2; n++)
                        set_fat12(img + 512 * (1 + fat), n, n == 5 || n == 8 ? 0 : n == 11 ? 0xF00 : 0x00F);
        for (size_t n = 2; n < CLUSTERS + 2; n++)
                used[n] = n != 5 && n != 8;
        CHECK(probe_mem(img, sizeof(img), sizeof(img), &res) == 0, "hand-made FAT12: %s", res.how);
        check_clusters("fat12-packed-inverse", &res, DATA * 512, 512, CLUSTERS, used);

        /* Only the second FAT marks cluster 5: mirrors disagree, so map it. */
        set_fat12(img + 1024, 5, 0xFFF);
        used[5] = true;
        CHECK(probe_mem(img, sizeof(img), sizeof(img), &res) == 0, "hand-made FAT12: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "differ");
        check_clusters("fat12-second-fat-only", &res, DATA * 512, 512, CLUSTERS, used);
        probe_result_done(&res);
}

/* Hand-made FAT32 with few clusters: the BPB makes it FAT32; a root
 * directory cluster that is free or out of range makes it fail. */
static void test_fat32_handmade(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        /* 32 reserved, 2 FATs of 1 sector (128 entries), 100 clusters of 2. */
        enum { TOTAL = 234, DATA = 34, CLUSTERS = 100 };
        static uint8_t img[TOTAL * 512];
        bool used[CLUSTERS + 2] = {};

        make_bpb(img, 2, 32, 2, 0, TOTAL, 0, 1);
        put_le32(img + 0x2C, 2);
        put_le16(img + 0x30, 1);
        put_le16(img + 0x32, 6);
        for (unsigned fat = 0; fat < 2; fat++) {
                uint8_t *t = img + 512 * (32 + fat);
                put_le32(t + 0, 0x0FFFFFF8);
                put_le32(t + 4, 0x0FFFFFFF);
                put_le32(t + 8, 0x0FFFFFFF);            /* root */
                put_le32(t + 40 * 4, 0xF0000000);       /* upper 4 bits only: free */
                put_le32(t + 41 * 4, 0x0FFFFFF7);       /* bad */
                put_le32(t + 101 * 4, 0x00000001);      /* the last cluster */
                put_le32(t + 102 * 4, 0x0FFFFFFF);      /* past the last cluster */
        }
        used[2] = used[41] = used[101] = true;
        CHECK(probe_mem(img, sizeof(img), sizeof(img), &res) == 0, "hand-made FAT32: %s", res.how);
        CHECK_STR_CONTAINS(res.how, "FAT32, FAT #0, 1 KiB clusters");
        check_clusters("fat32-handmade", &res, DATA * 512, 1024, CLUSTERS, used);
        CHECK_U64(extents_total(&res.used), DATA * 512 + 3 * 1024);

        put_le32(img + 0x2C, 40);
        CHECK(probe_mem(img, sizeof(img), sizeof(img), &res) < 0, "a free root cluster accepted");
        CHECK_STR_CONTAINS(res.how, "marked free");
        put_le32(img + 0x2C, 102);
        CHECK(probe_mem(img, sizeof(img), sizeof(img), &res) < 0, "a root cluster past the end accepted");
        put_le32(img + 0x2C, 2);

        /* An FSInfo sector placed in the data area is mapped all the same. */
        put_le16(img + 0x30, 100);
        CHECK(probe_mem(img, sizeof(img), sizeof(img), &res) == 0, "FSInfo in the data area: %s", res.how);
        CHECK(extents_contains(&res.used, 100 * 512, 101 * 512), "an FSInfo sector past the reserved area is not mapped");
        probe_result_done(&res);
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
        *ret_size = n;
        return buf;
}

/* A failure, or the whole partition: never a smaller map. */
static void check_fail_or_whole(const char *what, const uint8_t *img, uint64_t image_size, uint64_t size,
                                const char *reason) {
        ProbeResult res = { .used = EXTENTS_INIT };
        int k = probe_mem(img, image_size, size, &res);
        CHECK(k < 0 || (res.used.n == 1 && res.used.v[0].start == 0 && res.used.v[0].end == size),
              "%s: accepted (%s)", what, res.how);
        CHECK(res.how[0], "%s: no reason given", what);
        if (reason)
                CHECK_STR_CONTAINS(res.how, reason);
        probe_result_done(&res);
}

static void test_corrupt_bpb(void) {
        size_t n;
        _cleanup_free_ uint8_t *orig = load(tpath("floppy.img"), &n);
        CHECK(orig, "cannot load floppy.img");
        if (!orig)
                return;
        _cleanup_free_ uint8_t *img = malloc(n);
        if (!img)
                return;
        const struct {
                const char *what;
                size_t off, len;
                uint32_t v;
                const char *reason;
        } cases[] = {
                { "zero bytes per sector", 0x0B, 2, 0, "bytes per sector 0 is not a power of two" },
                { "1000 bytes per sector", 0x0B, 2, 1000, "bytes per sector 1000 is not a power of two from 512 to 4096" },
                { "8192 bytes per sector", 0x0B, 2, 8192, "bytes per sector 8192" },
                { "256 bytes per sector", 0x0B, 2, 256, "bytes per sector 256" },
                { "0 sectors per cluster", 0x0D, 1, 0, "sectors per cluster 0" },
                { "3 sectors per cluster", 0x0D, 1, 3, "sectors per cluster 3" },
                { "no reserved sectors", 0x0E, 2, 0, "reserved" },
                { "no FATs", 0x10, 1, 0, "number of FATs is 0" },
                { "no root entries", 0x11, 2, 0, "root directory" },
                { "huge root directory", 0x11, 2, 0xFFFF, "data area" },
                { "no sectors", 0x13, 2, 0, "total sector count is 0" },
                { "65535 sectors", 0x13, 2, 0xFFFF, "larger than its partition" },
                { "FAT of 1 sector", 0x16, 2, 1, "too small" },
                { "FAT of 0 sectors", 0x16, 2, 0, NULL },
                { "FATs fill the volume", 0x16, 2, 1440, "data area" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                memcpy(img, orig, n);
                if (cases[i].len == 1)
                        img[cases[i].off] = (uint8_t) cases[i].v;
                else
                        put_le16(img + cases[i].off, (uint16_t) cases[i].v);
                check_fail_or_whole(cases[i].what, img, n, n, cases[i].reason);
        }

        /* A type label that contradicts the cluster count. */
        memcpy(img, orig, n);
        CHECK(img[0x26] == 0x29 && memcmp(img + 0x36, "FAT12   ", 8) == 0, "floppy.img has no FAT12 label");
        memcpy(img + 0x36, "FAT16   ", 8);
        check_fail_or_whole("labelled FAT16", img, n, n, "says FAT16, but 2847 clusters make it FAT12");

        /* Huge 32-bit sector counts. */
        memcpy(img, orig, n);
        put_le16(img + 0x13, 0);
        put_le32(img + 0x20, 0xFFFFFFFF);
        check_fail_or_whole("2^32-1 sectors", img, n, n, "larger than its partition");

        /* As FAT32 with a FAT too small for its clusters. */
        memcpy(img, orig, n);
        put_le16(img + 0x16, 0);
        put_le32(img + 0x24, 9);
        put_le16(img + 0x11, 0);
        check_fail_or_whole("FAT32, FAT too small", img, n, n, "too small");

        /* Truncated images: the region is whole but the file ends early. */
        memcpy(img, orig, n);
        check_fail_or_whole("truncated to half", img, n / 2, n, "last sector");
        check_fail_or_whole("truncated to 8 KiB", img, 8192, n, NULL);
        check_fail_or_whole("truncated to 100 bytes", img, 100, n, "boot sector");
        check_fail_or_whole("one sector short", img, n - 512, n, "last sector");
        check_fail_or_whole("partition one sector short", img, n, n - 512, "larger than its partition");

        /* The same through a file descriptor. */
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(cut, "cut.img");
        if (sh("head -c 100000 '%s' > '%s'", tpath("floppy.img"), cut) == 0) {
                Reader r;
                int fd = open(cut, O_RDONLY | O_CLOEXEC);
                r = reader_from_fd(fd, file_size(cut), 0, n);
                CHECK(fsprobe_fat.collect(&r, "vfat", &res) < 0, "a truncated file accepted: %s", res.how);
                printf("%-28s %s\n", "fat12-truncated-file", res.how);
                if (fd >= 0)
                        close(fd);
        }
        unlink(cut);
        probe_result_done(&res);
}

/* Random damage to valid images must never crash, read outside the region
 * or map outside it. */
static void mutate_image(const char *name, unsigned rounds) {
        size_t n;
        _cleanup_free_ uint8_t *orig = load(tpath(name), &n);
        CHECK(orig, "cannot load %s", name);
        if (!orig)
                return;
        _cleanup_free_ uint8_t *img = malloc(n);
        ProbeResult res = { .used = EXTENTS_INIT };
        unsigned ok = 0;
        if (!img)
                return;
        memcpy(img, orig, n);
        for (unsigned round = 0; round < rounds; round++) {
                unsigned changes = 1 + (unsigned) (rng() % 8);
                size_t hot = n < 65536 ? n : 65536;
                for (unsigned c = 0; c < changes; c++) {
                        size_t at = rng() % 4 ? (size_t) (rng() % 96) : rng() % 2 ? (size_t) (rng() % hot) : (size_t) (rng() % n);
                        img[at] = rng() % 3 ? (uint8_t) rng() : (uint8_t) (img[at] ^ (1u << (rng() % 8)));
                }
                uint64_t image_size = rng() % 8 ? n : rng() % n;
                uint64_t size = rng() % 8 ? n : rng() % (2 * n);
                int k = probe_mem(img, image_size, size, &res);
                if (check_mutant(k, &res, size, round))
                        ok++;
                /* Start again from the original now and then, so that the
                 * damage does not pile up past recognition. */
                if (round % 4 == 3)
                        memcpy(img, orig, n);
        }
        printf("%-28s %u of %u mutations still parsed\n", name, ok, rounds);
        probe_result_done(&res);
}

/* Millions of clusters, every other one used: the worst case for extents. */
static void test_large(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "large.img");
        uint8_t b[512];

        if (sh("mkfs.fat -C -F 32 -s 1 '%s' 2097152 >/dev/null 2>&1", img) != 0)
                return;
        int fd = open(img, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0 && pread(fd, b, sizeof(b), 0) == (ssize_t) sizeof(b), "cannot read large.img");
        if (fd < 0)
                return;
        uint64_t bps = get_le16(b + 11), reserved = get_le16(b + 14), fatsz = get_le32(b + 36);
        uint64_t data = reserved + 2 * fatsz, clusters = (bpb_fs_size(img) / bps - data) / b[13];
        uint64_t used = 0;
        _cleanup_free_ uint8_t *fat = malloc(fatsz * bps);
        if (fat && pread(fd, fat, fatsz * bps, (off_t) (reserved * bps)) == (ssize_t) (fatsz * bps)) {
                for (size_t i = 3; i < fatsz * bps / 4; i += 2)
                        put_le32(fat + i * 4, 0x0FFFFFFF);
                for (unsigned k = 0; k < 2; k++)
                        CHECK(pwrite(fd, fat, fatsz * bps, (off_t) ((reserved + k * fatsz) * bps)) == (ssize_t) (fatsz * bps),
                              "cannot write the FAT");
                for (uint64_t n = 2; n < clusters + 2; n++)
                        used += get_le32(fat + n * 4) != 0;
        }
        close(fd);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int k = probe_file(img, 0, 0, &res);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        CHECK(k == 0, "large: %s", res.how);
        printf("%-28s %-46s %" PRIu64 " of %" PRIu64 " clusters used, %zu extents, probed in %.3f s\n",
               "fat32-4M-clusters-alternate", res.how, used, clusters, res.used.n, secs);
        CHECK_U64(extents_total(&res.used), (data + used * b[13]) * bps);
        /* Generous: sanitizer builds are slower; an optimised build takes a
         * fraction of this. */
        CHECK(secs < 10, "probing took %.1f s", secs);
        probe_result_done(&res);
        unlink(img);
}

/* mtools takes a FAT32 volume with few clusters for FAT16 and cannot write
 * to it, so files go in by hand: a root directory entry and a chain that
 * runs through the given clusters, in both FATs. */
static void add_raw_file_fat32(const char *img, const char *name83, const uint32_t *chain, size_t n, uint32_t size) {
        uint8_t b[512], e[32] = {}, v[4];
        int fd = open(img, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0 && pread(fd, b, sizeof(b), 0) == (ssize_t) sizeof(b), "cannot read %s", img);
        if (fd < 0)
                return;
        uint64_t bps = get_le16(b + 11), spc = b[13], fat0 = get_le16(b + 14) * bps, fatsz = get_le32(b + 36) * bps;
        uint64_t data = fat0 + b[16] * fatsz, root = data + (get_le32(b + 44) - 2) * spc * bps;
        for (unsigned fat = 0; fat < b[16]; fat++)
                for (size_t i = 0; i < n; i++) {
                        put_le32(v, i + 1 < n ? chain[i + 1] : 0x0FFFFFFF);
                        CHECK(pwrite(fd, v, 4, (off_t) (fat0 + fat * fatsz + chain[i] * 4)) == 4, "cannot write the FAT");
                }
        /* The first free slot of the root directory's first cluster. */
        for (uint64_t slot = 0; slot < spc * bps / 32; slot++) {
                uint8_t cur[32];
                if (pread(fd, cur, 32, (off_t) (root + slot * 32)) != 32 || (cur[0] != 0 && cur[0] != 0xE5))
                        continue;
                memcpy(e, name83, 11);
                e[11] = 0x20;
                put_le16(e + 20, (uint16_t) (chain[0] >> 16));
                put_le16(e + 26, (uint16_t) chain[0]);
                put_le32(e + 28, size);
                CHECK(pwrite(fd, e, 32, (off_t) (root + slot * 32)) == 32, "cannot write a directory entry");
                break;
        }
        close(fd);
}

static void test_fat32_few_clusters(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "fat32-few.img");
        static const uint32_t a[] = { 3, 4, 10, 11, 12 }, c[] = { 5000, 16101 };

        if (sh("mkfs.fat -C -F 32 '%s' 8192 >/dev/null 2>&1", img) != 0)
                return;
        add_raw_file_fat32(img, "A       BIN", a, ELEMENTSOF(a), 5 * 512 - 100);
        add_raw_file_fat32(img, "C       BIN", c, ELEMENTSOF(c), 1024);
        check_image("fat32-few-clusters", img, 32, &res);
        CHECK_U64(res.fs_size, 8192 * 1024);
        probe_result_done(&res);
        unlink(img);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        if (system("command -v mkfs.fat >/dev/null && command -v mcopy >/dev/null && command -v fsck.fat >/dev/null") != 0) {
                printf("test-probe-fat: mkfs.fat, mtools or fsck.fat missing, skipped\n");
                return 77;
        }
        if (!base || !*base)
                base = "/tmp";
        if (sh("mkdir -p '%s'", base) != 0)
                return 1;
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-probe-fat-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        setenv("MTOOLS_SKIP_CHECK", "1", 1);

        test_fat12_floppy();
        test_mkfs("fat16", "-F 16", 65536, 16, 12, 300000);
        test_mkfs("fat32", "-F 32", 300000, 32, 12, 600000);
        test_fat32_few_clusters();
        test_mkfs("fat16-4096-byte-sectors", "-F 16 -S 4096", 262144, 16, 8, 200000);
        test_mkfs("fat32-4096-byte-sectors", "-F 32 -S 4096", 300000, 32, 8, 200000);
        test_mkfs("fat12-4096-byte-sectors", "-F 12 -S 4096", 8192, 12, 4, 100000);
        test_mkfs("fat16-1-sector-clusters", "-F 16 -s 1", 16384, 16, 10, 60000);
        test_mkfs("fat32-64-sector-clusters", "-F 32 -s 64", 2200000, 32, 10, 200000);
        test_mkfs("fat16-one-fat", "-F 16 -f 1", 32768, 16, 4, 100000);
        test_mkfs("fat12-odd-tail", "-F 12 -s 8", 4001, 12, 4, 100000);
        test_bad_clusters();
        test_mirroring();
        test_sizes();
        test_deleted();
        test_fat12_packed_entries();
        test_fat32_handmade();
        test_corrupt_bpb();
        mutate_image("floppy.img", 300);
        if (sh("mkfs.fat -C -F 32 '%s' 8192 >/dev/null 2>&1", tpath("m32.img")) == 0) {
                static const uint32_t chain[] = { 3, 4, 5, 100, 101, 7 };
                add_raw_file_fat32(tpath("m32.img"), "M       BIN", chain, ELEMENTSOF(chain), 3000);
                mutate_image("m32.img", 200);
        }
        test_large();

        sh("rm -rf '%s'", tmpdir);
        return check_exit("test-probe-fat");
}
