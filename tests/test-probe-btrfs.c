/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The btrfs probe against real images made by mkfs.btrfs, and written
 * through a loop mount where the machine allows it: the used bytes must be
 * exactly what btrfs-progs' own dump of the chunk, dev and extent trees (and
 * of the log trees) says: the first 1 MiB, the superblock copies, every dev
 * extent of a striped chunk, and in SINGLE/DUP/RAID1* chunks of every kind
 * each extent item, each tree block (METADATA_ITEM, nodesize bytes) and
 * each log tree block and log file extent, at each of the chunk's stripes
 * on the device. Every damaged image must fail, be mapped whole, or have
 * the chunks whose records are damaged mapped whole (never crash, never map
 * less than the clean image), and random mutations must never crash or map
 * outside the partition. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "test-helpers.h"
#include "probe.h"

#define MIB (1024ULL * 1024)

static char self_exe[PATH_MAX];
static bool can_mount;

static void make_file(const char *path, size_t size) {
        FILE *f = fopen(path, "we");
        CHECK(f, "cannot create %s", path);
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

/* A tree of files to build images from: inline ones (under 2 KiB), small
 * ones, a few of several MiB, nested directories. */
static void make_tree(const char *dir, unsigned nfiles, size_t max_size) {
        char path[PATH_MAX];
        sh("mkdir -p '%s/sub/deeper'", dir);
        for (unsigned i = 0; i < nfiles; i++) {
                size_t size = i % 7 == 0 ? (size_t) (rng() % 2000) : (size_t) (rng() % max_size);
                snprintf(path, sizeof(path), "%s/%sf%u", dir, i % 3 == 0 ? "sub/deeper/" : i % 3 == 1 ? "sub/" : "", i);
                make_file(path, size);
        }
}

/* ---------------------------------------------------------------- crc32c, bit by bit */

static uint32_t ref_crc32c(const uint8_t *p, size_t n) {
        uint32_t c = ~0u;
        while (n--) {
                c ^= *p++;
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0x82F63B78u & -(c & 1));
        }
        return ~c;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* Rewrites the crc32c of a superblock (4 KiB) or tree block in memory. */
static void fix_csum(uint8_t *block, size_t len) {
        put_le32(block, ref_crc32c(block + 0x20, len - 0x20));
}

static int pread_file(const char *path, uint64_t off, void *buf, size_t n) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t k = pread(fd, buf, n, (off_t) off);
        close(fd);
        return k == (ssize_t) n ? 0 : -EIO;
}

/* ---------------------------------------------------------------- what btrfs-progs says */

typedef struct RefChunk {
        uint64_t start, length;
        char type[64];
        bool by_extent;
        unsigned nstripes;
        uint64_t devid[16], offset[16];
} RefChunk;

typedef struct RefDevExtent {
        uint64_t devid, physical, chunk, length;
} RefDevExtent;

typedef struct Ref {
        RefChunk chunks[512];
        size_t n_chunks;
        RefDevExtent dev[2048];
        size_t n_dev;
        Extents data;      /* EXTENT_ITEM (data and tree blocks) and METADATA_ITEM ranges, logical */
        Extents log;       /* file extents of the log trees, logical */
        Extents logblocks; /* the blocks of the log root tree and log trees, logical */
        uint64_t tree_blocks[8192];
        size_t n_tree_blocks;
        uint64_t extent_leaves[1024]; /* in key order */
        size_t n_extent_leaves;
        bool meta_whole; /* blake2b: the probe maps metadata and system chunks whole */
        uint64_t extent_root, chunk_root, dev_root;
        unsigned extent_levels;
        uint32_t nodesize;
} Ref;

static void ref_done(Ref *ref) {
        extents_done(&ref->data);
        extents_done(&ref->log);
        extents_done(&ref->logblocks);
}

/* A profile whose stripes all hold the same bytes; with meta_whole, DATA only. */
static bool type_by_extent(const char *type, bool meta_whole) {
        if (meta_whole && (strncmp(type, "DATA", 4) != 0 || strstr(type, "METADATA") || strstr(type, "SYSTEM")))
                return false;
        const char *bar = strrchr(type, '|');
        const char *profile = bar ? bar + 1 : "single";
        return strcmp(profile, "DATA") == 0 || strcmp(profile, "METADATA") == 0 || strcmp(profile, "SYSTEM") == 0 ||
               strcmp(profile, "single") == 0 || strcmp(profile, "DUP") == 0 || strcmp(profile, "RAID1") == 0 ||
               strcmp(profile, "RAID1C3") == 0 || strcmp(profile, "RAID1C4") == 0;
}

static uint64_t super_field(const char *img, const char *field);

/* Parses `btrfs inspect-internal dump-tree` of devs (space-separated,
 * quoted paths) into ref: with all, every tree (log trees and the list of
 * tree blocks included), else the chunk, dev and extent trees only. */
static bool ref_load_trees(const char *devs, bool all, Ref *ref) {
        char cmd[4096], line[1024], type[64], first[PATH_MAX];
        unsigned long long a, b;
        unsigned u;
        FILE *p;
        bool in_log = false, in_extent = false, ok = true;

        *ref = (Ref) { .data = EXTENTS_INIT, .log = EXTENTS_INIT, .logblocks = EXTENTS_INIT };
        if (sscanf(devs, "'%4095[^']'", first) != 1)
                return false;
        ref->nodesize = (uint32_t) super_field(first, "nodesize");
        ref->meta_whole = super_field(first, "csum_type") == 3;
        if (ref->nodesize == 0)
                return false;

        if (all)
                snprintf(cmd, sizeof(cmd), "btrfs inspect-internal dump-tree %s 2>/dev/null", devs);
        else
                snprintf(cmd, sizeof(cmd),
                         "for t in chunk dev extent; do btrfs inspect-internal dump-tree -t $t %s 2>/dev/null || exit 1; done",
                         devs);
        p = popen(cmd, "re");
        if (!p)
                return false;
        while (fgets(line, sizeof(line), p)) {
                if (line[0] != '\t' && line[0] != ' ') {
                        if (strncmp(line, "log tree key", 12) == 0 || strcmp(line, "log root tree\n") == 0)
                                in_log = true;
                        else if (strstr(line, "tree key") || strstr(line, "tree\n") || strncmp(line, "total bytes", 11) == 0)
                                in_log = false;
                        if (strstr(line, "tree key") || strstr(line, "tree\n") || strncmp(line, "total bytes", 11) == 0)
                                in_extent = strncmp(line, "extent tree key", 15) == 0;
                }
                if ((sscanf(line, "leaf %llu items", &a) == 1 || sscanf(line, "node %llu level", &a) == 1) &&
                    !strstr(line, "flags")) {
                        if (ref->n_tree_blocks < ELEMENTSOF(ref->tree_blocks))
                                ref->tree_blocks[ref->n_tree_blocks++] = a;
                        if (in_log)
                                ok = ok && extents_add(&ref->logblocks, a, a + ref->nodesize) == 0;
                        if (in_extent && line[0] == 'l' && ref->n_extent_leaves < ELEMENTSOF(ref->extent_leaves))
                                ref->extent_leaves[ref->n_extent_leaves++] = a;
                }
                if (sscanf(line, " item %u key (FIRST_CHUNK_TREE CHUNK_ITEM %llu)", &u, &a) == 2 &&
                    ref->n_chunks < ELEMENTSOF(ref->chunks))
                        ref->chunks[ref->n_chunks++] = (RefChunk) { .start = a };
                else if (sscanf(line, " length %llu owner %*u stripe_len %*u type %63s", &a, type) == 2 && ref->n_chunks) {
                        RefChunk *c = &ref->chunks[ref->n_chunks - 1];
                        c->length = a;
                        snprintf(c->type, sizeof(c->type), "%s", type);
                        c->by_extent = type_by_extent(type, ref->meta_whole);
                } else if (sscanf(line, " stripe %u devid %llu offset %llu", &u, &a, &b) == 3 && ref->n_chunks) {
                        RefChunk *c = &ref->chunks[ref->n_chunks - 1];
                        if (c->nstripes < ELEMENTSOF(c->devid)) {
                                c->devid[c->nstripes] = a;
                                c->offset[c->nstripes++] = b;
                        }
                } else if (sscanf(line, " item %u key (%llu DEV_EXTENT %llu)", &u, &a, &b) == 3 &&
                           ref->n_dev < ELEMENTSOF(ref->dev))
                        ref->dev[ref->n_dev++] = (RefDevExtent) { .devid = a, .physical = b };
                else if (sscanf(line, " chunk_objectid %*u chunk_offset %llu length %llu", &a, &b) == 2 && ref->n_dev) {
                        ref->dev[ref->n_dev - 1].chunk = a;
                        ref->dev[ref->n_dev - 1].length = b;
                } else if (!in_log && sscanf(line, " item %u key (%llu EXTENT_ITEM %llu)", &u, &a, &b) == 3)
                        ok = ok && extents_add(&ref->data, a, a + b) == 0;
                else if (!in_log && sscanf(line, " item %u key (%llu METADATA_ITEM %llu)", &u, &a, &b) == 3)
                        ok = ok && extents_add(&ref->data, a, a + ref->nodesize) == 0;
                else if (in_log && sscanf(line, " extent data disk byte %llu nr %llu", &a, &b) == 2 && a != 0)
                        ok = ok && extents_add(&ref->log, a, a + b) == 0;
        }
        ok = pclose(p) == 0 && ok;

        /* The roots, from the one-tree dumps' first block lines. */
        struct {
                const char *tree;
                uint64_t *ret;
        } roots[] = { { "extent", &ref->extent_root }, { "chunk", &ref->chunk_root }, { "dev", &ref->dev_root } };
        for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                snprintf(cmd, sizeof(cmd), "btrfs inspect-internal dump-tree -t %s %s 2>/dev/null", roots[i].tree, devs);
                p = popen(cmd, "re");
                if (!p)
                        return false;
                while (fgets(line, sizeof(line), p))
                        if (sscanf(line, "leaf %llu items", &a) == 1 || sscanf(line, "node %llu level %u", &a, &u) == 2) {
                                *roots[i].ret = a;
                                if (roots[i].ret == &ref->extent_root)
                                        ref->extent_levels = strncmp(line, "node", 4) == 0 ? u + 1 : 1;
                                break;
                        }
                pclose(p);
        }
        return ok && ref->n_chunks > 0 && ref->n_dev > 0;
}

/* The trees the expected map needs: the log trees too when there is a log. */
static bool ref_load(const char *devs, Ref *ref) {
        char first[PATH_MAX];
        bool log = sscanf(devs, "'%4095[^']'", first) == 1 && super_field(first, "log_root") != 0;
        return ref_load_trees(devs, log, ref);
}

static uint64_t super_field(const char *img, const char *field) {
        char cmd[PATH_MAX + 128], line[512], name[128];
        unsigned long long v = 0, x;
        snprintf(cmd, sizeof(cmd), "btrfs inspect-internal dump-super '%s' 2>/dev/null", img);
        FILE *p = popen(cmd, "re");
        if (!p)
                return 0;
        while (fgets(line, sizeof(line), p))
                if (sscanf(line, "%127s %llu", name, &x) == 2 && strcmp(name, field) == 0)
                        v = x;
        pclose(p);
        return v;
}

static const RefChunk *ref_chunk(const Ref *ref, uint64_t start) {
        for (size_t i = 0; i < ref->n_chunks; i++)
                if (ref->chunks[i].start == start)
                        return &ref->chunks[i];
        return NULL;
}

static void add_clipped(Extents *ret, const Extents *src, const RefChunk *c, uint64_t physical) {
        EXTENTS_FOREACH(x, src) {
                uint64_t s = x->start > c->start ? x->start : c->start;
                uint64_t e = x->end < c->start + c->length ? x->end : c->start + c->length;
                if (s < e)
                        extents_add(ret, physical + (s - c->start), physical + (e - c->start));
        }
}

/* What device devid of the filesystem uses, in a partition of part_size,
 * when the chunks whole() picks are mapped whole (NULL: none). */
static void ref_expected_with(const Ref *ref, uint64_t devid, uint64_t part_size, bool (*whole)(const RefChunk *c),
                              Extents *ret) {
        extents_clear(ret);
        extents_add(ret, 0, part_size < MIB ? part_size : MIB);
        for (size_t i = 0; i < ref->n_dev; i++) {
                const RefDevExtent *d = &ref->dev[i];
                if (d->devid != devid)
                        continue;
                const RefChunk *c = ref_chunk(ref, d->chunk);
                CHECK(c, "dev extent at %" PRIu64 " names chunk %" PRIu64 ", which the dump lacks", d->physical, d->chunk);
                if (!c || !c->by_extent || (whole && whole(c))) {
                        extents_add(ret, d->physical, d->physical + d->length);
                        continue;
                }
                add_clipped(ret, &ref->data, c, d->physical);
                add_clipped(ret, &ref->log, c, d->physical);
                add_clipped(ret, &ref->logblocks, c, d->physical);
        }
        const uint64_t supers[] = { 64 * 1024, 64 * MIB, 256 * 1024 * MIB };
        for (size_t i = 0; i < ELEMENTSOF(supers); i++)
                if (supers[i] + 4096 <= part_size)
                        extents_add(ret, supers[i], supers[i] + 4096);
}

static void ref_expected(const Ref *ref, uint64_t devid, uint64_t part_size, Extents *ret) {
        ref_expected_with(ref, devid, part_size, NULL, ret);
}

/* The physical copies on devid of the tree block at logical. */
static size_t ref_tree_block_copies(const Ref *ref, uint64_t devid, uint64_t logical, uint64_t *ret) {
        size_t n = 0;
        for (size_t i = 0; i < ref->n_chunks; i++) {
                const RefChunk *c = &ref->chunks[i];
                if (logical < c->start || logical >= c->start + c->length)
                        continue;
                for (unsigned j = 0; j < c->nstripes; j++)
                        if (c->devid[j] == devid)
                                ret[n++] = c->offset[j] + (logical - c->start);
        }
        return n;
}

/* ---------------------------------------------------------------- running the probe */

static int probe_fd_range(const char *path, uint64_t image_size, uint64_t base, uint64_t size, ProbeResult *res) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0, "cannot open %s", path);
        if (fd < 0)
                return -errno;
        Reader r = reader_from_fd(fd, image_size, base, size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        int k = fsprobe_btrfs.collect(&r, "btrfs", res);
        close(fd);
        return k;
}

static int probe_file(const char *path, ProbeResult *res) {
        uint64_t size = file_size(path);
        return probe_fd_range(path, size, 0, size, res);
}

static bool is_whole(const ProbeResult *res, uint64_t size) {
        return res->used.n == 1 && res->used.v[0].start == 0 && res->used.v[0].end == size;
}

static bool inside(const ProbeResult *res, uint64_t size) {
        uint64_t prev = 0;
        EXTENTS_FOREACH(x, &res->used) {
                if (x->start < prev || x->start >= x->end || x->end > size)
                        return false;
                prev = x->end;
        }
        return true;
}

static void report_difference(const char *name, const Extents *got, const Extents *want) {
        _cleanup_extents_ Extents extra = EXTENTS_INIT, missing = EXTENTS_INIT;
        extents_copy(&extra, got);
        extents_subtract(&extra, want);
        extents_copy(&missing, want);
        extents_subtract(&missing, got);
        if (missing.n)
                fprintf(stderr, "%s: %" PRIu64 " bytes missing from the probe's map, first %" PRIu64 "-%" PRIu64 "\n", name,
                        extents_total(&missing), missing.v[0].start, missing.v[0].end);
        if (extra.n)
                fprintf(stderr, "%s: %" PRIu64 " bytes mapped beyond the dump's, first %" PRIu64 "-%" PRIu64 "\n", name,
                        extents_total(&extra), extra.v[0].start, extra.v[0].end);
}

/* Probes device img (a member of the filesystem whose devices are devs)
 * and requires exactly what the dump says; res keeps the probe's answer. */
static void check_exact_at(const char *name, const char *img, const char *devs, uint64_t base, uint64_t part_size,
                           const char *want_how, ProbeResult *res) {
        _cleanup_extents_ Extents want = EXTENTS_INIT;
        Ref ref;
        uint64_t size = file_size(img);

        int k = probe_fd_range(img, size, base, part_size, res);
        CHECK(k == 0, "%s: the probe failed: %s", name, res->how);
        CHECK(!strstr(res->how, "fully mapped"), "%s: mapped whole: %s", name, res->how);
        if (want_how)
                CHECK_STR_CONTAINS(res->how, want_how);
        CHECK(inside(res, part_size), "%s: extents unsorted or outside the partition", name);

        /* The reference reads the filesystem on its own device files. */
        if (!ref_load(devs, &ref)) {
                CHECK(false, "%s: cannot parse btrfs inspect-internal dump-tree %s", name, devs);
                ref_done(&ref);
                return;
        }
        char first_dev[PATH_MAX];
        if (sscanf(devs, "'%4095[^']'", first_dev) != 1)
                snprintf(first_dev, sizeof(first_dev), "%s", img);
        /* At an offset, the superblock is read from the filesystem's own file. */
        const char *sb_file = base ? first_dev : img;
        uint64_t devid = super_field(sb_file, "dev_item.devid"), dev_bytes = super_field(sb_file, "dev_item.total_bytes");
        ref_expected(&ref, devid, part_size, &want);

        uint64_t got = extents_total(&res->used), exp = extents_total(&want);
        printf("%-30s %-72s used: probe %" PRIu64 ", dump-tree %" PRIu64 " (%s)\n", name, res->how, got, exp,
               got == exp ? "equal" : "DIFFERENT");
        CHECK(extents_equal(&res->used, &want), "%s: the probe's map differs from the dump's", name);
        if (!extents_equal(&res->used, &want))
                report_difference(name, &res->used, &want);
        CHECK_U64(res->fs_size, dev_bytes);
        ref_done(&ref);
}

static void check_exact(const char *name, const char *img, const char *want_how, ProbeResult *res) {
        char devs[PATH_MAX + 2];
        snprintf(devs, sizeof(devs), "'%s'", img);
        check_exact_at(name, img, devs, 0, file_size(img), want_how, res);
}

/* mkfs.btrfs with args over a fresh file of mib MiB holding root. */
static bool mkfs(const char *img, uint64_t mib, const char *args, const char *root) {
        char rootdir[PATH_MAX + 16] = "";
        if (root)
                snprintf(rootdir, sizeof(rootdir), "--rootdir '%s'", root);
        unlink(img);
        return sh_quiet("truncate -s %" PRIu64 "M '%s' && mkfs.btrfs -f -q %s %s '%s' >/dev/null 2>&1", mib, img, args,
                        rootdir, img) == 0;
}

/* ---------------------------------------------------------------- the cases */

static void test_mkfs_layouts(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(root, "tree");
        PATH_COPY(img, "layout.img");
        const struct {
                const char *name, *args, *how;
                uint64_t mib;
                bool optional; /* skipped when this mkfs.btrfs cannot make it */
        } cases[] = {
                { "default-dup-metadata", "", "DUP metadata, single data", 256, false },
                { "single-single", "-m single -d single", "single metadata, single data", 256, false },
                { "data-dup", "-d dup", "DUP metadata, DUP data", 256, false },
                { "mixed-small", "--mixed", "mixed single", 48, false },
                { "mixed-dup", "--mixed -m dup -d dup", "mixed DUP", 160, false },
                { "csum-xxhash", "--csum xxhash", "xxhash64", 256, true },
                { "csum-sha256", "--csum sha256", "sha256", 256, true },
                { "csum-blake2", "--csum blake2", "blake2b not verified", 256, true },
                { "nodesize-64k", "-n 65536", "crc32c", 256, false },
                { "no-skinny-metadata", "-O ^skinny-metadata", "DUP metadata, single data", 256, false },
                { "raid0-one-device", "-m raid0 -d raid0", "RAID0 metadata, RAID0 data", 256, true },
                { "block-group-tree", "-O block-group-tree", "block-group", 256, true },
        };

        make_file(tpath("tree/big"), 5 * MIB + 123);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (!mkfs(img, cases[i].mib, cases[i].args, root)) {
                        CHECK(cases[i].optional, "%s: mkfs.btrfs %s failed", cases[i].name, cases[i].args);
                        printf("%-30s skipped: this mkfs.btrfs cannot make it (mkfs.btrfs %s)\n", cases[i].name,
                               cases[i].args);
                        continue;
                }
                check_exact(cases[i].name, img, cases[i].how, &res);
        }

        /* A filesystem smaller than its file: nothing past it is used. */
        unlink(img);
        if (sh("truncate -s 256M '%s' && mkfs.btrfs -f -q -b 160M --rootdir '%s' '%s' >/dev/null 2>&1", img, root, img) == 0) {
                check_exact("smaller-than-partition", img, NULL, &res);
                CHECK_U64(res.fs_size, 160 * MIB);
                CHECK(res.used.n && res.used.v[res.used.n - 1].end <= 160 * MIB, "an extent past the filesystem's end");
        }

        /* metadata_uuid: tree blocks carry another fsid than the superblock's. */
        if (mkfs(img, 256, "", root)) {
                if (sh_quiet("btrfstune -f -m '%s' >/dev/null 2>&1", img) == 0 &&
                    sh_quiet("btrfs inspect-internal dump-super '%s' | grep -q METADATA_UUID", img) == 0)
                        check_exact("metadata-uuid", img, NULL, &res);
                else
                        printf("%-30s skipped: btrfstune -m is not available\n", "metadata-uuid");
        }
        /* A seed device (read-only, SEEDING superblock flag). */
        if (mkfs(img, 256, "", root)) {
                if (sh_quiet("btrfstune -S 1 '%s' >/dev/null 2>&1", img) == 0)
                        check_exact("seed-device", img, NULL, &res);
                else
                        printf("%-30s skipped: btrfstune -S is not available\n", "seed-device");
        }
        probe_result_done(&res);
        unlink(img);
}

/* Tens of thousands of extent items in 4 KiB nodes: an extent tree of
 * three levels, whose metadata-only subtrees the walk skips. Written as one
 * file of 12000 4 KiB blocks between holes, each its own extent, through a
 * loop mount (creating as many small files for --rootdir is slow); without
 * one, 3000 small files give two levels. */
static void test_deep_trees(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(root, "many");
        PATH_COPY(img, "deep.img");
        PATH_COPY(mnt, "mnt");
        unsigned want_levels = 3;
        Ref ref;
        int k;

        if (can_mount) {
                char path[PATH_MAX + 16];
                uint64_t buf[512];
                k = mkfs(img, 512, "-n 4096 -m dup -d dup", NULL) ? sh("mount -o loop '%s' '%s'", img, mnt) : -1;
                if (k == 0) {
                        snprintf(path, sizeof(path), "%s/fragmented", mnt);
                        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        for (unsigned i = 0; fd >= 0 && i < 12000; i++) {
                                for (size_t j = 0; j < ELEMENTSOF(buf); j++)
                                        buf[j] = rng();
                                if (pwrite(fd, buf, sizeof(buf), (off_t) i * 2 * sizeof(buf)) != (ssize_t) sizeof(buf))
                                        k = -EIO;
                        }
                        if (fd < 0 || fsync(fd) < 0)
                                k = -EIO;
                        if (fd >= 0)
                                close(fd);
                        k = sh("umount '%s'", mnt) ?: k;
                }
        } else {
                want_levels = 2;
                sh("mkdir -p '%s'", root);
                for (unsigned i = 0; i < 3000; i++) {
                        char name[64];
                        snprintf(name, sizeof(name), "many/%u", i);
                        make_file(tpath(name), 2100 + rng() % 500);
                }
                k = mkfs(img, 256, "-n 4096 -m dup -d dup", root) ? 0 : -1;
        }
        CHECK(k == 0, "cannot build the filesystem with many extents");
        if (k == 0) {
                check_exact("nodesize-4k-deep-trees", img, "DUP metadata, DUP data", &res);
                char devs[PATH_MAX + 2];
                snprintf(devs, sizeof(devs), "'%s'", img);
                if (ref_load(devs, &ref)) {
                        printf("%-30s the extent tree has %u levels\n", "nodesize-4k-deep-trees", ref.extent_levels);
                        CHECK(ref.extent_levels >= want_levels, "the extent tree has %u levels, expected %u", ref.extent_levels,
                              want_levels);
                }
                ref_done(&ref);
        }
        probe_result_done(&res);
        sh("rm -rf '%s'", root);
        unlink(img);
}

/* btrfs in the second partition of a GPT disk, after an ext4: probed at
 * its offset, in a partition larger than the filesystem. */
static void test_partition(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(fs, "part-fs.img");
        PATH_COPY(disk, "disk.img");
        PATH_COPY(ext, "part-ext.img");
        const uint64_t p1 = 2048, p1_len = 65536, p2 = 2048 + 65536, p2_len = 250 * 2048;

        if (!mkfs(fs, 220, "", tpath("tree")) ||
            sh("truncate -s 32M '%s' && mkfs.ext4 -q -F '%s' && truncate -s 300M '%s' && "
               "printf 'label: gpt\\nstart=%" PRIu64 ", size=%" PRIu64 ", type=linux\\nstart=%" PRIu64 ", size=%" PRIu64
               ", type=linux\\n' | sfdisk -q '%s' && dd if='%s' of='%s' bs=1M seek=1 conv=notrunc status=none && "
               "dd if='%s' of='%s' bs=1M seek=%" PRIu64 " conv=notrunc status=none",
               ext, ext, disk, p1, p1_len, p2, p2_len, disk, ext, disk, fs, disk, (uint64_t) (p2 * 512 / MIB)) != 0) {
                CHECK(false, "cannot build the GPT image");
                return;
        }
        char devs[PATH_MAX + 2];
        snprintf(devs, sizeof(devs), "'%s'", fs);
        check_exact_at("gpt-partition-2-after-ext4", disk, devs, p2 * 512, p2_len * 512, NULL, &res);
        CHECK_U64(res.fs_size, 220 * MIB);
        CHECK(res.used.n && res.used.v[res.used.n - 1].end <= 220 * MIB, "an extent past the filesystem in its partition");
        probe_result_done(&res);
        unlink(fs);
        unlink(ext);
        unlink(disk);
}

/* ---------------------------------------------------------------- through the kernel */

static bool mount_ok(void) {
        PATH_COPY(img, "mount-probe.img");
        PATH_COPY(mnt, "mnt");
        bool ok = mkfs(img, 128, "", NULL) && sh_quiet("mkdir -p '%s' && mount -o loop '%s' '%s' 2>/dev/null", mnt, img, mnt) == 0;
        if (ok)
                sh("umount '%s'", mnt);
        unlink(img);
        return ok;
}

/* The files a real system accumulates: zstd compression, subvolumes, a
 * snapshot, deleted files (free space inside data chunks), a preallocated
 * file, an overwritten one. */
static void test_mounted(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(img, "mounted.img");
        PATH_COPY(mnt, "mnt");

        if (!can_mount) {
                printf("%-30s skipped: no loop mount here\n", "mounted-zstd-subvolumes");
                return;
        }
        if (!mkfs(img, 400, "", NULL) || sh("mount -o loop,compress=zstd '%s' '%s'", img, mnt) != 0) {
                CHECK(false, "cannot mount a fresh btrfs");
                return;
        }
        PATH_COPY(src, "tree");
        int k = sh("cp -a '%s' '%s/base' && btrfs -q subvolume create '%s/vol1' >/dev/null && "
                   "btrfs -q subvolume create '%s/vol2' >/dev/null && cp -a '%s' '%s/vol1/' && "
                   "head -c 20000000 /dev/urandom >'%s/vol1/random' && yes hello | head -c 30000000 >'%s/vol2/text' && "
                   "sync && btrfs -q subvolume snapshot '%s/vol1' '%s/snap1' >/dev/null && "
                   "rm -rf '%s/vol1/tree' '%s/base/sub' && head -c 5000000 /dev/urandom >'%s/vol1/random2' && "
                   "fallocate -l 30M '%s/vol2/prealloc' && dd if=/dev/urandom of='%s/vol2/text' bs=4k count=100 seek=7 "
                   "conv=notrunc status=none && rm -f '%s/vol2/text' && head -c 3000000 /dev/urandom >'%s/last'",
                   src, mnt, mnt, mnt, src, mnt, mnt, mnt, mnt, mnt, mnt, mnt, mnt, mnt, mnt, mnt, mnt);
        sh("umount '%s'", mnt);
        CHECK(k == 0, "cannot fill the mounted filesystem");
        if (k == 0)
                check_exact("mounted-zstd-subvolumes", img, "DUP metadata, single data", &res);
        probe_result_done(&res);
        unlink(img);
}

/* An fsync'd file whose transaction never committed: only the log tree
 * knows its extent. The image is copied while the filesystem is mounted,
 * as a crash would leave it. */
static void test_log_tree(void) {
        ProbeResult res = { .used = EXTENTS_INIT };
        _cleanup_extents_ Extents committed = EXTENTS_INIT;
        PATH_COPY(img, "log.img");
        PATH_COPY(snap, "log-snap.img");
        PATH_COPY(mnt, "mnt");

        if (!can_mount) {
                printf("%-30s skipped: no loop mount here\n", "log-tree-after-fsync");
                return;
        }
        if (!mkfs(img, 256, "", NULL) || sh("mount -o loop,commit=300 '%s' '%s'", img, mnt) != 0) {
                CHECK(false, "cannot mount a fresh btrfs");
                return;
        }
        int k = sh("head -c 1000000 /dev/urandom >'%s/a' && sync && "
                   "dd if=/dev/urandom of='%s/logged' bs=1000000 count=3 conv=fsync status=none && cp '%s' '%s'",
                   mnt, mnt, img, snap);
        sh("umount '%s'", mnt);
        CHECK(k == 0, "cannot write and fsync");
        if (k == 0 && super_field(snap, "log_root") == 0)
                printf("%-30s skipped: the copy has no log tree (a commit got in first)\n", "log-tree-after-fsync");
        else if (k == 0) {
                Ref ref;
                char devs[PATH_MAX + 2];
                snprintf(devs, sizeof(devs), "'%s'", snap);
                check_exact("log-tree-after-fsync", snap, "; log tree: ", &res);
                /* The logged extent is in no extent item: without the log it would be free. */
                if (ref_load(devs, &ref)) {
                        CHECK(ref.log.n >= 1 && extents_total(&ref.log) >= 3000000, "the dump shows %zu logged extents",
                              ref.log.n);
                        extents_copy(&committed, &ref.log);
                        extents_intersect(&committed, &ref.data);
                        CHECK_U64(extents_total(&committed), 0);
                }
                ref_done(&ref);
        }
        probe_result_done(&res);
        unlink(img);
        unlink(snap);
}

/* Several devices through loop devices: each member image on its own. */
static void test_multi_device(const char *name, unsigned ndev, const char *args, bool may_be_whole) {
        ProbeResult res = { .used = EXTENTS_INIT };
        PATH_COPY(mnt, "mnt");
        char imgs[4][PATH_MAX], loops[4][64] = {}, devs[4 * (PATH_MAX + 3)] = "", list[4 * (PATH_MAX + 3)] = "";
        char loopdevs[4 * 70] = "";
        int k = 0;

        if (!can_mount) {
                printf("%-30s skipped: no loop mount here\n", name);
                return;
        }
        for (unsigned i = 0; i < ndev; i++) {
                snprintf(imgs[i], sizeof(imgs[i]), "%s/%s-%u.img", tmpdir, name, i);
                unlink(imgs[i]);
                k = k ?: sh("truncate -s 300M '%s'", imgs[i]);
                snprintf(list + strlen(list), sizeof(list) - strlen(list), " '%s'", imgs[i]);
        }
        snprintf(devs, sizeof(devs), "%s", list + 1);
        if (k == 0 && sh_quiet("mkfs.btrfs -f -q %s %s >/dev/null 2>&1", args, list) != 0) {
                printf("%-30s skipped: this mkfs.btrfs cannot make it (mkfs.btrfs %s)\n", name, args);
                goto out;
        }
        for (unsigned i = 0; i < ndev && k == 0; i++) {
                char cmd[PATH_MAX + 64];
                snprintf(cmd, sizeof(cmd), "losetup -f --show '%s'", imgs[i]);
                FILE *p = popen(cmd, "re");
                if (!p || !fgets(loops[i], sizeof(loops[i]), p))
                        k = -1;
                if (p)
                        pclose(p);
                loops[i][strcspn(loops[i], "\n")] = 0;
                snprintf(loopdevs + strlen(loopdevs), sizeof(loopdevs) - strlen(loopdevs), " %s", loops[i]);
        }
        /* The members are named to mount itself (device=), not only
         * registered beforehand: another test that forgets its own devices
         * at that moment cannot make this mount miss one. */
        char mntopts[4 * 80] = "";
        for (unsigned i = 0; i < ndev && loops[i][0]; i++)
                snprintf(mntopts + strlen(mntopts), sizeof(mntopts) - strlen(mntopts), "%sdevice=%s", i ? "," : "",
                         loops[i]);
        if (k == 0)
                k = sh("btrfs device scan%s >/dev/null && mount -o '%s' %s '%s'", loopdevs, mntopts, loops[0], mnt);
        if (k == 0) {
                k = sh("cp -a '%s' '%s/' && head -c 40000000 /dev/urandom >'%s/big' && rm -rf '%s/tree/sub' && "
                       "head -c 7000000 /dev/urandom >'%s/after'",
                       tpath("tree"), mnt, mnt, mnt, mnt);
                sh("umount '%s'", mnt);
        }
        /* Forget only these devices: a bare --forget drops every unmounted
         * btrfs device of the machine, the other suite's members too, when
         * the normal and sanitizer suites run at once. */
        for (unsigned i = 0; i < ndev; i++)
                if (loops[i][0]) {
                        sh_quiet("btrfs device scan --forget %s >/dev/null 2>&1", loops[i]);
                        sh_quiet("losetup -d %s", loops[i]);
                }
        CHECK(k == 0, "%s: cannot build the filesystem", name);
        if (k != 0)
                goto out;

        for (unsigned i = 0; i < ndev; i++) {
                char what[128];
                snprintf(what, sizeof(what), "%s-member-%u", name, i + 1);
                if (!may_be_whole) {
                        check_exact_at(what, imgs[i], devs, 0, file_size(imgs[i]), "devices", &res);
                        continue;
                }
                /* Tree blocks striped over the members: a member alone
                 * may not hold them all, and is then mapped whole. */
                _cleanup_extents_ Extents want = EXTENTS_INIT;
                Ref ref;
                uint64_t size = file_size(imgs[i]);
                k = probe_fd_range(imgs[i], size, 0, size, &res);
                CHECK(k == 0, "%s: the probe failed: %s", what, res.how);
                if (ref_load(devs, &ref)) {
                        ref_expected(&ref, super_field(imgs[i], "dev_item.devid"), size, &want);
                        _cleanup_extents_ Extents missing = EXTENTS_INIT;
                        extents_copy(&missing, &want);
                        extents_subtract(&missing, &res.used);
                        printf("%-30s %-72s used: probe %" PRIu64 ", dump-tree %" PRIu64 " (%s)\n", what, res.how,
                               extents_total(&res.used), extents_total(&want),
                               extents_equal(&res.used, &want) ? "equal" : is_whole(&res, size) ? "whole" : "DIFFERENT");
                        CHECK(extents_equal(&res.used, &want) || is_whole(&res, size), "%s: neither exact nor whole", what);
                        CHECK_U64(extents_total(&missing), 0);
                }
                ref_done(&ref);
        }
out:
        for (unsigned i = 0; i < ndev; i++)
                unlink(imgs[i]);
        probe_result_done(&res);
}

/* ---------------------------------------------------------------- damage */

typedef struct Image {
        uint8_t *data;
        uint64_t size;
        Ref ref;
        Extents clean;
        uint64_t devid;
        uint32_t nodesize;
} Image;

static bool image_load(const char *path, Image *im) {
        char devs[PATH_MAX + 2];
        ProbeResult res = { .used = EXTENTS_INIT };
        *im = (Image) { .clean = EXTENTS_INIT };
        im->size = file_size(path);
        im->data = malloc(im->size);
        if (!im->data || pread_file(path, 0, im->data, im->size) < 0)
                return false;
        snprintf(devs, sizeof(devs), "'%s'", path);
        if (!ref_load_trees(devs, true, &im->ref))
                return false;
        im->devid = get_le64(im->data + 65536 + 0xc9);
        im->nodesize = get_le32(im->data + 65536 + 0x94);
        Reader r = reader_from_mem(im->data, im->size, 0, im->size);
        if (fsprobe_btrfs.collect(&r, "btrfs", &res) != 0) {
                probe_result_done(&res);
                return false;
        }
        im->clean = res.used;
        return true;
}

static void image_done(Image *im) {
        free(im->data);
        ref_done(&im->ref);
        extents_done(&im->clean);
}

static int probe_mem(const Image *im, uint64_t image_size, ProbeResult *res) {
        Reader r = reader_from_mem(im->data, image_size, 0, im->size);
        extents_clear(&res->used);
        res->how[0] = 0;
        res->fs_size = 0;
        return fsprobe_btrfs.collect(&r, "btrfs", res);
}

/* The result of a damaged image: a failure, the whole partition, or at
 * least what the clean image maps (damage in a byte no one reads). */
static void check_safe(const char *what, const Image *im, int k, const ProbeResult *res, bool want_whole,
                       const char *want_how) {
        CHECK(k <= 0, "%s: returned %d", what, k);
        CHECK(res->how[0], "%s: no reason given", what);
        if (want_how)
                CHECK_STR_CONTAINS(res->how, want_how);
        if (k < 0)
                return;
        CHECK(inside(res, im->size), "%s: extents unsorted or outside the partition", what);
        if (want_whole)
                CHECK(is_whole(res, im->size), "%s: not mapped whole: %s", what, res->how);
        _cleanup_extents_ Extents missing = EXTENTS_INIT;
        extents_copy(&missing, &im->clean);
        extents_subtract(&missing, &res->used);
        CHECK(missing.n == 0, "%s: %" PRIu64 " bytes of the clean map are missing (%s)", what, extents_total(&missing),
              res->how);
}

static bool extents_contains_all(const Extents *big, const Extents *small) {
        EXTENTS_FOREACH(x, small)
                if (!extents_contains(big, x->start, x->end))
                        return false;
        return true;
}

/* The superblock, changed by f and re-checksummed. */
static void super_case(Image *im, const char *what, void (*f)(uint8_t *sb), bool fix, bool want_whole, const char *want_how) {
        ProbeResult res = { .used = EXTENTS_INIT };
        uint8_t saved[4096], *sb = im->data + 65536;
        memcpy(saved, sb, sizeof(saved));
        f(sb);
        if (fix)
                fix_csum(sb, 4096);
        int k = probe_mem(im, im->size, &res);
        printf("%-30s k=%d %s\n", what, k, res.how);
        check_safe(what, im, k, &res, want_whole, want_how);
        if (!want_whole)
                CHECK(k < 0, "%s: accepted: %s", what, res.how);
        memcpy(sb, saved, sizeof(saved));
        probe_result_done(&res);
}

static void sb_flip_csum(uint8_t *sb) {
        sb[2] ^= 0x40;
}
static void sb_incompat_unknown(uint8_t *sb) {
        put_le64(sb + 0xbc, get_le64(sb + 0xbc) | (1ULL << 20));
}
static void sb_incompat_zoned(uint8_t *sb) {
        put_le64(sb + 0xbc, get_le64(sb + 0xbc) | (1ULL << 12));
}
static void sb_incompat_etv2(uint8_t *sb) {
        put_le64(sb + 0xbc, get_le64(sb + 0xbc) | (1ULL << 13));
}
static void sb_incompat_rst(uint8_t *sb) {
        put_le64(sb + 0xbc, get_le64(sb + 0xbc) | (1ULL << 14));
}
static void sb_incompat_squota(uint8_t *sb) {
        put_le64(sb + 0xbc, get_le64(sb + 0xbc) | (1ULL << 16));
}
static void sb_compat_ro_unknown(uint8_t *sb) {
        put_le64(sb + 0xb4, get_le64(sb + 0xb4) | (1ULL << 9));
}
static void sb_flag_error(uint8_t *sb) {
        put_le64(sb + 0x38, get_le64(sb + 0x38) | (1ULL << 2));
}
static void sb_garbage_sys_array(uint8_t *sb) {
        for (unsigned i = 0; i < get_le32(sb + 0xa0); i++)
                sb[0x32b + i] = (uint8_t) rng();
}
static void sb_sys_array_stripe(uint8_t *sb) {
        /* the first stripe's physical offset, one sector further */
        put_le64(sb + 0x32b + 17 + 48 + 8, get_le64(sb + 0x32b + 17 + 48 + 8) + 4096);
}
static void sb_sys_array_size(uint8_t *sb) {
        put_le32(sb + 0xa0, 4000);
}
static void sb_dev_bigger(uint8_t *sb) {
        put_le64(sb + 0xc9 + 8, get_le64(sb + 0xc9 + 8) + 1024 * 1024);
}
static void sb_nodesize(uint8_t *sb) {
        put_le32(sb + 0x94, 12288);
}
static void sb_chunk_root_level(uint8_t *sb) {
        sb[0xc7] = 9;
}
static void sb_root_generation(uint8_t *sb) {
        put_le64(sb + 0x48, get_le64(sb + 0x48) + 1);
}

/* The first copy on this device of the tree block at logical, in memory. */
static uint8_t *tree_block(Image *im, uint64_t logical, unsigned copy) {
        uint64_t phys[8];
        size_t n = ref_tree_block_copies(&im->ref, im->devid, logical, phys);
        return copy < n && phys[copy] + im->nodesize <= im->size ? im->data + phys[copy] : NULL;
}

/* Chunks to expect mapped whole. */
static bool any_chunk(const RefChunk *c) {
        return true;
}
static bool is_metadata_chunk(const RefChunk *c) {
        return strncmp(c->type, "METADATA", 8) == 0;
}
static bool is_tree_chunk(const RefChunk *c) {
        return strstr(c->type, "METADATA") || strstr(c->type, "SYSTEM");
}
static uint64_t whole_start;
static bool is_whole_start(const RefChunk *c) {
        return c->start == whole_start;
}

/* The map must be the clean one with the chunks whole() picks mapped whole. */
static void check_chunks_whole(const char *what, const Image *im, const ProbeResult *res, bool (*whole)(const RefChunk *c)) {
        _cleanup_extents_ Extents want = EXTENTS_INIT;
        ref_expected_with(&im->ref, im->devid, im->size, whole, &want);
        printf("%-30s used: probe %" PRIu64 ", expected with those chunks whole %" PRIu64 ", clean %" PRIu64 "\n", what,
               extents_total(&res->used), extents_total(&want), extents_total(&im->clean));
        CHECK(extents_equal(&res->used, &want), "%s: not the clean map with the chunks in doubt whole", what);
        if (!extents_equal(&res->used, &want))
                report_difference(what, &res->used, &want);
        CHECK(!extents_equal(&want, &im->clean), "%s: the expected map is the clean one", what);
}

/* Changes one item of the given key type in the leaf at logical (f gets
 * the item's data) and re-checksums the block; with whole, the map must be
 * the clean one with the chunks it picks mapped whole. */
static void leaf_case(Image *im, const char *what, uint64_t logical, uint8_t type, uint64_t objectid_min,
                      void (*f)(uint8_t *data, uint32_t size), bool want_whole, const char *want_how,
                      bool (*whole)(const RefChunk *c)) {
        ProbeResult res = { .used = EXTENTS_INIT };
        uint8_t *blk = tree_block(im, logical, 0), *saved = malloc(im->nodesize);
        CHECK(blk && saved, "%s: no tree block %" PRIu64, what, logical);
        if (!blk || !saved) {
                free(saved);
                return;
        }
        memcpy(saved, blk, im->nodesize);
        CHECK(blk[0x64] == 0, "%s: tree block %" PRIu64 " is no leaf", what, logical);
        uint32_t n = get_le32(blk + 0x60);
        bool done = false;
        for (uint32_t i = 0; i < n && !done; i++) {
                uint8_t *it = blk + 0x65 + i * 25;
                if (it[8] != type || get_le64(it) < objectid_min)
                        continue;
                f(blk + 0x65 + get_le32(it + 17), get_le32(it + 21));
                done = true;
        }
        CHECK(done, "%s: no item of type %u in leaf %" PRIu64, what, type, logical);
        fix_csum(blk, im->nodesize);
        int k = probe_mem(im, im->size, &res);
        printf("%-30s k=%d %s\n", what, k, res.how);
        check_safe(what, im, k, &res, want_whole, want_how);
        if (whole && k == 0)
                check_chunks_whole(what, im, &res, whole);
        memcpy(blk, saved, im->nodesize);
        free(saved);
        probe_result_done(&res);
}

/* METADATA_ITEMs without the skinny-metadata flag: the kernel would not
 * look them up, so the metadata and system chunks are mapped whole, the
 * data chunks still extent by extent. */
static void skinny_case(Image *im) {
        const char *what = "super-skinny-flag-cleared";
        ProbeResult res = { .used = EXTENTS_INIT };
        uint8_t saved[4096], *sb = im->data + 65536;
        memcpy(saved, sb, sizeof(saved));
        put_le64(sb + 0xbc, get_le64(sb + 0xbc) & ~(1ULL << 8));
        fix_csum(sb, 4096);
        int k = probe_mem(im, im->size, &res);
        printf("%-30s k=%d %s\n", what, k, res.how);
        check_safe(what, im, k, &res, false, "no skinny-metadata flag");
        if (k == 0)
                check_chunks_whole(what, im, &res, is_tree_chunk);
        memcpy(sb, saved, sizeof(saved));
        probe_result_done(&res);
}

static void dev_extent_longer(uint8_t *data, uint32_t size) {
        put_le64(data + 24, get_le64(data + 24) + 4096);
}
static void bg_used_more(uint8_t *data, uint32_t size) {
        put_le64(data, get_le64(data) + 4096);
}
static void chunk_type_unknown(uint8_t *data, uint32_t size) {
        put_le64(data + 24, get_le64(data + 24) | (1ULL << 40));
}

static void test_damage(void) {
        PATH_COPY(img, "damage.img");
        ProbeResult res = { .used = EXTENTS_INIT };
        Image im;

        if (!mkfs(img, 200, "", tpath("tree")) || !image_load(img, &im)) {
                CHECK(false, "cannot make and load the image to damage");
                return;
        }
        printf("%-30s clean map %" PRIu64 " bytes of %" PRIu64 "\n", "damage-base", extents_total(&im.clean), im.size);

        super_case(&im, "super-bad-checksum", sb_flip_csum, false, false, "checksum");
        super_case(&im, "super-unknown-incompat", sb_incompat_unknown, true, true, "unknown incompat");
        super_case(&im, "super-zoned", sb_incompat_zoned, true, true, "zoned");
        super_case(&im, "super-extent-tree-v2", sb_incompat_etv2, true, true, "extent tree v2");
        super_case(&im, "super-raid-stripe-tree", sb_incompat_rst, true, true, "raid stripe tree");
        super_case(&im, "super-simple-quota", sb_incompat_squota, true, true, "unknown incompat");
        super_case(&im, "super-unknown-compat-ro", sb_compat_ro_unknown, true, true, "compat_ro");
        super_case(&im, "super-error-flag", sb_flag_error, true, true, "superblock flags");
        super_case(&im, "super-garbage-sys-array", sb_garbage_sys_array, true, true, NULL);
        super_case(&im, "super-sys-array-stripe-moved", sb_sys_array_stripe, true, true, NULL);
        super_case(&im, "super-sys-array-size", sb_sys_array_size, true, true, "sys_chunk_array_size");
        super_case(&im, "super-device-too-big", sb_dev_bigger, true, false, NULL);
        super_case(&im, "super-bad-nodesize", sb_nodesize, true, false, "node size");
        super_case(&im, "super-chunk-root-level", sb_chunk_root_level, true, true, NULL);
        super_case(&im, "super-generation-ahead", sb_root_generation, true, true, "generation");

        /* A flipped byte in the first copy of each tree the probe reads:
         * the chunk or dev tree: mapped whole; the extent tree's root: every
         * chunk mapped whole, none of the space outside them. In the second
         * DUP copy, which is not read: the clean map (which holds both
         * copies of every tree block, the bad one too). */
        const struct {
                const char *name;
                uint64_t logical;
        } trees[] = { { "chunk", im.ref.chunk_root }, { "dev", im.ref.dev_root }, { "extent", im.ref.extent_root } };
        for (size_t i = 0; i < ELEMENTSOF(trees); i++) {
                for (unsigned copy = 0; copy < 2; copy++) {
                        char what[64];
                        uint8_t *blk = tree_block(&im, trees[i].logical, copy);
                        snprintf(what, sizeof(what), "flip-%s-tree-copy-%u", trees[i].name, copy + 1);
                        CHECK(blk, "%s: no copy %u of tree block %" PRIu64, what, copy + 1, trees[i].logical);
                        if (!blk)
                                continue;
                        blk[im.nodesize - 77] ^= 0x10;
                        int k = probe_mem(&im, im.size, &res);
                        bool extent = trees[i].logical == im.ref.extent_root;
                        printf("%-30s k=%d %s\n", what, k, res.how);
                        check_safe(what, &im, k, &res, copy == 0 && !extent, copy == 0 ? "checksum" : NULL);
                        if (copy == 1)
                                CHECK(k == 0 && extents_equal(&res.used, &im.clean), "%s: not the clean map", what);
                        if (copy == 0 && extent) {
                                check_chunks_whole(what, &im, &res, any_chunk);
                                CHECK_STR_CONTAINS(res.how, "chunks mapped whole");
                        }
                        blk[im.nodesize - 77] ^= 0x10;
                }
        }

        /* Consistent checksums, inconsistent trees. */
        leaf_case(&im, "dev-extent-longer-than-stripe", im.ref.dev_root, 204, 1, dev_extent_longer, true, "dev tree", NULL);
        leaf_case(&im, "chunk-type-unknown-bit", im.ref.chunk_root, 228, 0, chunk_type_unknown, true, NULL, NULL);
        /* A block group whose used bytes disagree with its extents (a
         * data one) or its tree blocks (the metadata one): that chunk alone
         * is mapped whole. */
        leaf_case(&im, "block-group-used-differs", im.ref.extent_root, 192, 0, bg_used_more, false,
                  "block group usage differs", NULL);
        const RefChunk *meta = NULL;
        for (size_t i = 0; i < im.ref.n_chunks && !meta; i++)
                if (is_metadata_chunk(&im.ref.chunks[i]))
                        meta = &im.ref.chunks[i];
        CHECK(meta, "no metadata chunk in the dump");
        if (meta) {
                char how[128];
                snprintf(how, sizeof(how), "1 chunk mapped whole (metadata chunk %" PRIu64 ": block group usage differs",
                         meta->start);
                whole_start = meta->start;
                leaf_case(&im, "metadata-block-group-used-differs", im.ref.extent_root, 192, meta->start, bg_used_more, false,
                          how, is_whole_start);
        }
        skinny_case(&im);

        /* A truncated image (the partition as large as before): a failure,
         * or the clean map when every tree block is still there. */
        const uint64_t cuts[] = { 70000, 1 * MIB, 14 * MIB, 23 * MIB, 40 * MIB, 100 * MIB, 199 * MIB };
        for (size_t i = 0; i < ELEMENTSOF(cuts); i++) {
                char what[64];
                snprintf(what, sizeof(what), "truncated-at-%" PRIu64 "K", cuts[i] / 1024);
                int k = probe_mem(&im, cuts[i], &res);
                printf("%-30s k=%d %s\n", what, k, res.how);
                check_safe(what, &im, k, &res, false, NULL);
        }
        /* The partition itself too small for the filesystem. */
        {
                Reader r = reader_from_mem(im.data, im.size, 0, im.size - 4096);
                extents_clear(&res.used);
                int k = fsprobe_btrfs.collect(&r, "btrfs", &res);
                CHECK(k < 0, "a filesystem larger than its partition accepted: %s", res.how);
                CHECK_STR_CONTAINS(res.how, "larger than its partition");
        }
        image_done(&im);
        probe_result_done(&res);
        unlink(img);
}

static uint64_t leaf_lo, leaf_hi;
static bool overlaps_leaf(const RefChunk *c) {
        return c->start <= leaf_hi && c->start + c->length > leaf_lo;
}

/* A leaf in the middle of an extent tree of many (4 KiB nodes, 1500
 * files of their own extents), its checksum broken: the chunks its keys
 * would span (from its first key to the next leaf's) are mapped whole and
 * the report says why; every other chunk keeps its extents. */
static void test_extent_leaf_damage(void) {
        const char *what = "extent-leaf-checksum";
        PATH_COPY(root, "leafy");
        PATH_COPY(img, "leafy.img");
        ProbeResult res = { .used = EXTENTS_INIT };
        Image im;

        sh("mkdir -p '%s'", root);
        for (unsigned i = 0; i < 1500; i++) {
                char name[64];
                snprintf(name, sizeof(name), "leafy/%u", i);
                make_file(tpath(name), 2100 + rng() % 2000);
        }
        if (!mkfs(img, 160, "-n 4096", root) || !image_load(img, &im)) {
                CHECK(false, "cannot make and load the image with a many-leaf extent tree");
                sh("rm -rf '%s'", root);
                return;
        }
        size_t n = im.ref.n_extent_leaves;
        CHECK(n >= 3, "the extent tree has %zu leaves, expected at least 3", n);
        uint8_t *blk = n >= 3 ? tree_block(&im, im.ref.extent_leaves[n / 2], 0) : NULL;
        uint8_t *next = n >= 3 ? tree_block(&im, im.ref.extent_leaves[n / 2 + 1], 0) : NULL;
        CHECK(blk && next, "%s: no leaf to damage", what);
        if (blk && next) {
                leaf_lo = get_le64(blk + 0x65);
                leaf_hi = get_le64(next + 0x65);
                blk[im.nodesize - 77] ^= 0x10;
                int k = probe_mem(&im, im.size, &res);
                printf("%-30s k=%d %s\n", what, k, res.how);
                check_safe(what, &im, k, &res, false, "checksum");
                CHECK_STR_CONTAINS(res.how, "mapped whole (");
                if (k == 0)
                        check_chunks_whole(what, &im, &res, overlaps_leaf);
                blk[im.nodesize - 77] ^= 0x10;
        }
        image_done(&im);
        probe_result_done(&res);
        sh("rm -rf '%s'", root);
        unlink(img);
}

/* Random damage in memory. Unchecksummed flips anywhere that matters (the
 * superblock, the tree blocks, their neighbourhood) must leave the map at
 * least as large as the clean one; flips with the checksum recomputed (so
 * that the parser sees them) must never crash or map outside. */
static void test_mutations(void) {
        PATH_COPY(img, "mutate.img");
        ProbeResult res = { .used = EXTENTS_INIT };
        Image im;
        unsigned whole = 0, failed = 0, same = 0, larger = 0, smaller = 0;

        if (!mkfs(img, 160, "-n 4096", tpath("tree")) || !image_load(img, &im)) {
                CHECK(false, "cannot make and load the image to mutate");
                return;
        }
        for (unsigned iter = 0; iter < 600; iter++) {
                bool fix = iter % 2;
                uint8_t *blk;
                size_t len;
                if (iter % 5 == 0) {
                        blk = im.data + 65536;
                        len = 4096;
                } else {
                        uint64_t logical = im.ref.tree_blocks[rng() % im.ref.n_tree_blocks];
                        blk = tree_block(&im, logical, rng() % 4 == 0 ? 1 : 0);
                        len = im.nodesize;
                        if (!blk)
                                continue;
                }
                uint8_t *saved = malloc(len);
                if (!saved)
                        break;
                memcpy(saved, blk, len);
                unsigned nflips = 1 + rng() % 4;
                for (unsigned j = 0; j < nflips; j++) {
                        /* Mostly the structures: header, item headers, superblock fields. */
                        size_t at = rng() % 3 ? (size_t) (rng() % (len < 1024 ? len : 1024)) : (size_t) (rng() % len);
                        if (rng() % 2)
                                blk[at] ^= (uint8_t) (1u << (rng() % 8));
                        else
                                blk[at] = (uint8_t) rng();
                }
                if (fix)
                        fix_csum(blk, len);
                int k = probe_mem(&im, im.size, &res);
                CHECK(k <= 0 && res.how[0], "mutation %u: returned %d, how '%s'", iter, k, res.how);
                CHECK(k < 0 || inside(&res, im.size), "mutation %u: extents outside the partition", iter);
                if (!fix) {
                        _cleanup_extents_ Extents missing = EXTENTS_INIT;
                        extents_copy(&missing, &im.clean);
                        if (k == 0)
                                extents_subtract(&missing, &res.used);
                        CHECK(k < 0 || missing.n == 0, "mutation %u (no checksum fix): %" PRIu64 " clean bytes unmapped: %s",
                              iter, extents_total(&missing), res.how);
                }
                if (k < 0)
                        failed++;
                else if (is_whole(&res, im.size))
                        whole++;
                else if (extents_equal(&res.used, &im.clean))
                        same++;
                else if (extents_contains_all(&res.used, &im.clean))
                        larger++;
                else {
                        /* Only where the checksum was made to match: metadata
                         * that is consistent, just different. */
                        smaller++;
                        printf("%-30s mutation %u (checksum fixed) maps %" PRIu64 " bytes: %s\n", "random-mutations", iter,
                               extents_total(&res.used), res.how);
                }
                memcpy(blk, saved, len);
                free(saved);
        }
        printf("%-30s 600 mutations: %u failed, %u whole, %u the clean map, %u more, %u other\n", "random-mutations", failed,
               whole, same, larger, smaller);
        image_done(&im);
        probe_result_done(&res);
        unlink(img);
}

/* The table crc32c, for machines without SSE4.2: the same image probed in a
 * child process that is told not to use the instruction. */
static void test_portable_crc32c(void) {
        PATH_COPY(img, "portable.img");
        ProbeResult res = { .used = EXTENTS_INIT };
        char cmd[2 * PATH_MAX + 64], line[512] = "";

        if (!mkfs(img, 200, "-n 4096", tpath("tree")))
                return;
        CHECK(probe_file(img, &res) == 0, "probe: %s", res.how);
        snprintf(cmd, sizeof(cmd), "BMAPSCAN_CRC32C_PORTABLE=1 '%s' --probe '%s'", self_exe, img);
        FILE *p = popen(cmd, "re");
        CHECK(p && fgets(line, sizeof(line), p), "cannot run %s", cmd);
        if (p)
                pclose(p);
        unsigned long long total = 0;
        CHECK(sscanf(line, "used %llu", &total) == 1, "portable crc32c run said: %s", line);
        printf("%-30s used: SSE4.2 or table %" PRIu64 ", table only %llu\n", "crc32c-portable", extents_total(&res.used),
               total);
        CHECK_U64(total, extents_total(&res.used));
        probe_result_done(&res);
        unlink(img);
}

int main(int argc, char **argv) {
        if (argc == 3 && strcmp(argv[1], "--probe") == 0) {
                ProbeResult res = { .used = EXTENTS_INIT };
                int k = probe_file(argv[2], &res);
                printf("used %" PRIu64 " k=%d %s\n", k == 0 && !strstr(res.how, "fully") ? extents_total(&res.used) : 0, k,
                       res.how);
                probe_result_done(&res);
                return 0;
        }
        if (sh_quiet("command -v mkfs.btrfs >/dev/null && command -v btrfs >/dev/null") != 0) {
                printf("test-probe-btrfs: skipped: btrfs-progs is not installed (scripts/install-deps.sh)\n");
                return 77;
        }
        ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
        if (n > 0)
                self_exe[n] = 0;
        const char *base = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
        sh("mkdir -p '%s'", base);
        snprintf(tmpdir, sizeof(tmpdir), "%s/test-probe-btrfs.XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        sh("mkdir -p '%s'", tpath("mnt"));
        make_tree(tpath("tree"), 60, 300000);
        can_mount = getuid() == 0 && mount_ok();

        test_mkfs_layouts();
        test_deep_trees();
        test_partition();
        test_mounted();
        test_log_tree();
        test_multi_device("two-devices-raid1", 2, "-m raid1 -d raid1", false);
        test_multi_device("two-devices-single-data", 2, "-m raid1 -d single", false);
        test_multi_device("three-devices-raid0-data", 3, "-m raid1c3 -d raid0", false);
        test_multi_device("three-devices-raid1c3", 3, "-m raid1c3 -d raid1c3", false);
        test_multi_device("two-devices-raid0-metadata", 2, "-m raid0 -d raid0", true);
        test_multi_device("four-devices-raid10", 4, "-m raid10 -d raid10", true);
        test_damage();
        test_extent_leaf_damage();
        test_mutations();
        test_portable_crc32c();

        /* Never let rm descend into a filesystem a failed case left mounted. */
        sh_quiet("umount '%s' 2>/dev/null", tpath("mnt"));
        if (sh_quiet("mountpoint -q '%s'", tpath("mnt")) != 0)
                sh("rm -rf '%s'", tmpdir);
        return check_exit("test-probe-btrfs");
}
