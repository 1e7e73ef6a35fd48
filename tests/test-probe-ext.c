/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The ext2/3/4 probe against real images made by e2fsprogs at test time:
 * on clean filesystems its used set must be exactly what dumpe2fs does not
 * list as free; dirty, inconsistent, corrupt, truncated or fuzzed ones must
 * be mapped whole or refused, never mapped smaller; unreplayed journal
 * transactions must add the blocks they write. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "test-helpers.h"
#include "probe.h"

static char tmp[PATH_MAX - 64];

/* The whole stdout of a shell command, NUL-terminated (NULL on failure). */
static char *sh_out(const char *fmt, ...) _printf_(1, 2);
static char *sh_out(const char *fmt, ...) {
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        FILE *f = popen(cmd, "r");
        if (!f)
                return NULL;
        size_t n = 0, cap = 65536;
        char *buf = malloc(cap);
        for (size_t k; buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
                n += k;
                if (cap - n < 2) {
                        char *b = realloc(buf, cap * 2);
                        if (!b) {
                                free(buf);
                                buf = NULL;
                                break;
                        }
                        buf = b;
                        cap *= 2;
                }
        }
        if (pclose(f) != 0) {
                fprintf(stderr, "command failed: %s\n", cmd);
                free(buf);
                return NULL;
        }
        if (buf)
                buf[n] = 0;
        return buf;
}

static const char *path(const char *name) {
        static char bufs[8][PATH_MAX];
        static unsigned i;
        char *p = bufs[i++ % 8];
        snprintf(p, PATH_MAX, "%s/%s", tmp, name);
        return p;
}

/* What dumpe2fs says about an image. */
typedef struct Dump {
        uint64_t blocks, bs, ratio, first;
        Extents free_; /* bytes */
        Extents used;  /* bytes: [0, blocks*bs) minus free_ */
        uint64_t bitmap[64]; /* block bitmap location of the first groups */
        unsigned groups, uninit_groups;
        char journal_features[128];
} Dump;

static void dump_done(Dump *d) {
        extents_done(&d->free_);
        extents_done(&d->used);
}

static uint64_t field(const char *text, const char *name) {
        const char *p = strstr(text, name);
        return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static bool dump_read(const char *img, Dump *d) {
        char *out = sh_out("dumpe2fs '%s' 2>/dev/null", img);
        if (!out)
                return false;
        *d = (Dump) { .free_ = EXTENTS_INIT, .used = EXTENTS_INIT };
        d->blocks = field(out, "\nBlock count:");
        d->bs = field(out, "\nBlock size:");
        d->first = field(out, "\nFirst block:");
        uint64_t cs = field(out, "\nCluster size:");
        d->ratio = cs && d->bs ? cs / d->bs : 1;
        const char *jf = strstr(out, "\nJournal features:");
        if (jf)
                sscanf(jf + 18, " %127[^\n]", d->journal_features);

        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, "Group ", 6) == 0 && strstr(line, ": (Blocks ")) {
                        d->groups++;
                        if (strstr(line, "BLOCK_UNINIT"))
                                d->uninit_groups++;
                } else if (strncmp(line, "  Block bitmap at ", 18) == 0 && d->groups >= 1 && d->groups <= 64) {
                        d->bitmap[d->groups - 1] = strtoull(line + 18, NULL, 10);
                } else if (strncmp(line, "  Free blocks: ", 15) == 0) {
                        /* "a-b, c, ..."; with bigalloc each number is a
                         * cluster's first block. */
                        for (char *p = line + 15; *p;) {
                                char *e;
                                uint64_t a = strtoull(p, &e, 10), b = a;
                                if (e == p)
                                        break;
                                if (*e == '-')
                                        b = strtoull(e + 1, &e, 10);
                                uint64_t end = (b + d->ratio) * d->bs;
                                if (end > d->blocks * d->bs)
                                        end = d->blocks * d->bs;
                                extents_add(&d->free_, a * d->bs, end);
                                p = e;
                                while (*p == ',' || *p == ' ')
                                        p++;
                        }
                }
        }
        free(out);
        extents_complement(&d->used, &d->free_, 0, d->blocks * d->bs);
        return d->blocks > 0 && d->bs > 0;
}

/* Runs the probe over a file: the image is the file, the partition its
 * first part_size bytes (the whole file when 0). */
static int probe_file(const char *img, uint64_t image_size, uint64_t part_size, ProbeResult *res) {
        int fd = open(img, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "cannot open %s\n", img);
                return -EIO;
        }
        uint64_t isz = image_size ? image_size : (uint64_t) st.st_size;
        Reader r = reader_from_fd(fd, isz, 0, part_size ? part_size : isz);
        *res = (ProbeResult) { .used = EXTENTS_INIT };
        int k = fsprobe_ext.collect(&r, "ext4", res);
        close(fd);
        return k;
}

static void report_diff(const char *label, const Extents *got, const Extents *want, uint64_t bs) {
        Extents extra = EXTENTS_INIT, missing = EXTENTS_INIT;
        extents_copy(&extra, got);
        extents_subtract(&extra, want);
        extents_copy(&missing, want);
        extents_subtract(&missing, got);
        if (extra.n)
                fprintf(stderr, "%s: probe maps blocks %" PRIu64 "-%" PRIu64 " that are free (%zu ranges)\n", label,
                        extra.v[0].start / bs, (extra.v[0].end - 1) / bs, extra.n);
        if (missing.n)
                fprintf(stderr, "%s: probe misses used blocks %" PRIu64 "-%" PRIu64 " (%zu ranges)\n", label,
                        missing.v[0].start / bs, (missing.v[0].end - 1) / bs, missing.n);
        extents_done(&extra);
        extents_done(&missing);
}

/* The probe must map exactly want (dumpe2fs's used blocks plus extra). */
static void check_exact(const char *label, const char *img, const Dump *d, const Extents *extra) {
        ProbeResult res = { .used = EXTENTS_INIT };
        Extents want = EXTENTS_INIT;
        int k = probe_file(img, 0, 0, &res);

        extents_copy(&want, &d->used);
        if (extra)
                extents_union(&want, extra);
        CHECK(k == 0, "%s: probe failed: %d %s", label, k, res.how);
        printf("%-22s probe %8" PRIu64 " blocks used, dumpe2fs %8" PRIu64 " (+%" PRIu64 " from the journal) of %" PRIu64
               " [%s]\n",
               label, extents_total(&res.used) / d->bs, extents_total(&d->used) / d->bs,
               extra ? extents_total(extra) / d->bs : 0, d->blocks, res.how);
        CHECK(extents_equal(&res.used, &want), "%s: used set differs from dumpe2fs", label);
        if (!extents_equal(&res.used, &want))
                report_diff(label, &res.used, &want, d->bs);
        CHECK_U64(res.fs_size, d->blocks * d->bs);
        CHECK_STR_CONTAINS(res.how, "block bitmap");
        probe_result_done(&res);
        extents_done(&want);
}

static void check_image_exact(const char *label, const char *img) {
        Dump d;
        if (!dump_read(img, &d)) {
                CHECK(false, "%s: dumpe2fs failed", label);
                return;
        }
        check_exact(label, img, &d, NULL);
        dump_done(&d);
}

/* The probe either refuses or maps the whole partition. */
static void check_whole_or_fail(const char *label, const char *img, uint64_t image_size, uint64_t part_size, bool want_whole) {
        ProbeResult res = { .used = EXTENTS_INIT };
        struct stat st;
        if (stat(img, &st) < 0)
                return;
        uint64_t size = part_size ? part_size : image_size ? image_size : (uint64_t) st.st_size;
        int k = probe_file(img, image_size, part_size, &res);
        printf("%-22s %s: %s\n", label, k == 0 ? "whole" : "failed", res.how);
        CHECK(res.how[0] != 0, "%s: no reason given", label);
        if (want_whole)
                CHECK(k == 0, "%s: expected a whole mapping, got failure %d: %s", label, k, res.how);
        if (k == 0)
                CHECK(res.used.n == 1 && res.used.v[0].start == 0 && res.used.v[0].end == size,
                      "%s: expected the whole partition mapped, got %" PRIu64 " bytes in %zu ranges (%s)", label,
                      extents_total(&res.used), res.used.n, res.how);
        probe_result_done(&res);
}

static int patch(const char *img, uint64_t off, const void *data, size_t n) {
        int fd = open(img, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int k = pwrite(fd, data, n, (off_t) off) == (ssize_t) n ? 0 : -EIO;
        close(fd);
        return k;
}

static int read_at(const char *img, uint64_t off, void *data, size_t n) {
        int fd = open(img, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int k = pread(fd, data, n, (off_t) off) == (ssize_t) n ? 0 : -EIO;
        close(fd);
        return k;
}

static void patch_le32_or(const char *img, uint64_t off, uint32_t bits) {
        uint8_t b[4];
        if (read_at(img, off, b, 4) < 0)
                return;
        uint32_t v = get_le32(b) | bits;
        b[0] = v, b[1] = v >> 8, b[2] = v >> 16, b[3] = v >> 24;
        patch(img, off, b, 4);
}

static int write_file(const char *p, uint64_t size, bool sparse) {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        static uint8_t buf[65536];
        for (uint64_t off = 0; off < size;) {
                size_t n = size - off < sizeof(buf) ? (size_t) (size - off) : sizeof(buf);
                for (size_t i = 0; i < n; i += 8) {
                        uint64_t v = rng();
                        memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
                }
                /* Sparse files: data only in every fourth 64 KiB. */
                if (!sparse || (off / sizeof(buf)) % 4 == 0)
                        if (pwrite(fd, buf, n, (off_t) off) != (ssize_t) n) {
                                close(fd);
                                return -EIO;
                        }
                off += n;
        }
        int k = ftruncate(fd, (off_t) size);
        close(fd);
        return k;
}

/* A source tree for mke2fs -d: n files of mixed sizes, some sparse, in a
 * few directories, with symlinks and a hard link. */
static int make_tree(const char *dir, unsigned n) {
        char p[PATH_MAX], q[PATH_MAX];
        if (sh("mkdir -p '%s/a/b/c' '%s/d'", dir, dir))
                return -EIO;
        for (unsigned i = 0; i < n; i++) {
                static const char *const sub[] = { "", "a/", "a/b/", "a/b/c/", "d/" };
                uint64_t r = rng() % 100, size;
                if (r < 10)
                        size = 0;
                else if (r < 50)
                        size = rng() % 4096;
                else if (r < 85)
                        size = rng() % 65536;
                else if (r < 97)
                        size = rng() % (512 * 1024);
                else
                        size = 1024 * 1024 + rng() % (1024 * 1024);
                snprintf(p, sizeof(p), "%s/%sf%u", dir, sub[i % 5], i);
                if (write_file(p, size, i % 7 == 3 && size > 65536) < 0)
                        return -EIO;
        }
        snprintf(p, sizeof(p), "%s/sparse-big", dir);
        if (write_file(p, 3 * 1024 * 1024, true) < 0)
                return -EIO;
        snprintf(p, sizeof(p), "%s/d/short-link", dir);
        if (symlink("../f0", p) < 0)
                return -errno;
        snprintf(p, sizeof(p), "%s/d/long-link", dir);
        if (symlink("../a/b/c/this/is/a/rather/long/symlink/target/that/does/not/fit/in/the/inode/at/all", p) < 0)
                return -errno;
        snprintf(p, sizeof(p), "%s/a/f1", dir);
        snprintf(q, sizeof(q), "%s/d/hard-link", dir);
        return link(p, q) < 0 ? -errno : 0;
}

static void test_clean_images(void) {
        char small[PATH_MAX], big[PATH_MAX];

        snprintf(small, sizeof(small), "%s", path("src-small"));
        snprintf(big, sizeof(big), "%s", path("src"));

        CHECK(make_tree(small, 40) == 0, "cannot make the small source tree");
        CHECK(make_tree(big, 300) == 0, "cannot make the source tree");

        if (sh("mke2fs -q -F -t ext2 -b 1024 -d '%s' '%s' 16M", small, path("ext2-1k.img")) == 0) {
                check_image_exact("ext2-1k", path("ext2-1k.img"));
                ProbeResult res = { .used = EXTENTS_INIT };
                if (probe_file(path("ext2-1k.img"), 0, 0, &res) == 0)
                        CHECK(extents_contains(&res.used, 0, 1024), "ext2-1k: block 0 is not mapped");
                probe_result_done(&res);
        }
        if (sh("mke2fs -q -F -t ext3 -b 4096 -d '%s' '%s' 32M", small, path("ext3.img")) == 0)
                check_image_exact("ext3", path("ext3.img"));
        if (sh("mke2fs -q -F -t ext4 -b 4096 -d '%s' '%s' 96M", big, path("ext4.img")) == 0)
                check_image_exact("ext4-files", path("ext4.img"));
        if (sh("mke2fs -q -F -t ext4 -b 4096 -O bigalloc -C 16384 -d '%s' '%s' 96M 2>/dev/null", big,
               path("bigalloc.img")) == 0)
                check_image_exact("ext4-bigalloc", path("bigalloc.img"));
        if (sh("mke2fs -q -F -t ext4 -b 1024 -O meta_bg,64bit,^resize_inode -d '%s' '%s' 64M", small, path("metabg.img")) == 0)
                check_image_exact("ext4-metabg-64bit-1k", path("metabg.img"));

        /* A big, mostly empty filesystem: most groups are BLOCK_UNINIT. */
        if (sh("truncate -s 8G '%s' && mke2fs -q -F -t ext4 -d '%s' '%s'", path("uninit.img"), small, path("uninit.img")) == 0) {
                Dump d;
                if (dump_read(path("uninit.img"), &d)) {
                        CHECK(d.uninit_groups > 10, "uninit: only %u of %u groups are BLOCK_UNINIT", d.uninit_groups, d.groups);
                        check_exact("ext4-block-uninit", path("uninit.img"), &d, NULL);
                        dump_done(&d);
                }
        }

        /* A filesystem of 32 MiB in a 64 MiB partition: the tail is free. */
        if (sh("truncate -s 64M '%s' && mke2fs -q -F -t ext4 -b 4096 -d '%s' '%s' 8192", path("tail.img"), small,
               path("tail.img")) == 0) {
                Dump d;
                if (dump_read(path("tail.img"), &d)) {
                        CHECK_U64(d.blocks * d.bs, 32 << 20);
                        check_exact("ext4-smaller-than-part", path("tail.img"), &d, NULL);
                        ProbeResult res = { .used = EXTENTS_INIT };
                        if (probe_file(path("tail.img"), 0, 0, &res) == 0)
                                CHECK(!extents_overlaps(&res.used, 32 << 20, 64 << 20), "tail: the space past the filesystem is mapped");
                        probe_result_done(&res);
                        dump_done(&d);
                }
        }
}

/* A partition 1 MiB into an image, with garbage before and after it: the
 * probe sees the same filesystem, relative to the partition. */
static void test_offset(void) {
        char img[PATH_MAX], disk[PATH_MAX];
        ProbeResult a = { .used = EXTENTS_INIT }, b = { .used = EXTENTS_INIT };
        struct stat st;

        snprintf(img, sizeof(img), "%s", path("ext4.img"));
        snprintf(disk, sizeof(disk), "%s", path("disk.img"));
        if (stat(img, &st) < 0 || sh("head -c 1M /dev/urandom > '%s' && cat '%s' >> '%s' && head -c 1M /dev/urandom >> '%s'", disk,
                                     img, disk, disk) != 0)
                return;
        int fd = open(disk, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        Reader r = reader_from_fd(fd, st.st_size + (2 << 20), 1 << 20, st.st_size);
        int ka = probe_file(img, 0, 0, &a);
        int kb = fsprobe_ext.collect(&r, "ext4", &b);
        close(fd);
        CHECK(ka == 0 && kb == 0, "offset: %d/%d %s", ka, kb, b.how);
        CHECK(extents_equal(&a.used, &b.used), "offset: the used sets differ");
        printf("%-22s a partition at 1 MiB maps the same %" PRIu64 " bytes\n", "offset-partition", extents_total(&b.used));
        probe_result_done(&a);
        probe_result_done(&b);
}

/* The same image through reader_from_mem and reader_from_fd. */
static void test_mem_reader(void) {
        char img[PATH_MAX];
        ProbeResult a = { .used = EXTENTS_INIT }, b = { .used = EXTENTS_INIT };
        uint8_t *mem = NULL;
        struct stat st;

        snprintf(img, sizeof(img), "%s", path("ext4.img"));
        if (stat(img, &st) < 0 || !(mem = malloc(st.st_size)) || read_at(img, 0, mem, st.st_size) < 0) {
                CHECK(false, "cannot load %s", img);
                free(mem);
                return;
        }
        int ka = probe_file(img, 0, 0, &a);
        Reader r = reader_from_mem(mem, st.st_size, 0, st.st_size);
        int kb = fsprobe_ext.collect(&r, "ext4", &b);
        CHECK(ka == 0 && kb == 0, "mem reader: %d/%d", ka, kb);
        CHECK(extents_equal(&a.used, &b.used), "mem reader: the used sets differ");
        CHECK(strcmp(a.how, b.how) == 0, "mem reader: '%s' vs '%s'", a.how, b.how);
        CHECK_U64(a.fs_size, b.fs_size);
        printf("%-22s fd and mem readers agree: %" PRIu64 " bytes used\n", "mem-reader", extents_total(&b.used));
        probe_result_done(&a);
        probe_result_done(&b);
        free(mem);
}

static void test_dirty_and_corrupt(void) {
        char src[PATH_MAX];
        Dump d;

        snprintf(src, sizeof(src), "%s", path("ext4.img"));

        if (sh("cp '%s' '%s' && debugfs -w -R 'ssv state 3' '%s' 2>/dev/null", src, path("err.img"), path("err.img")) == 0)
                check_whole_or_fail("error-state", path("err.img"), 0, 0, true);
        if (sh("cp '%s' '%s' && debugfs -w -R 'ssv state 0' '%s' 2>/dev/null", src, path("dirty.img"), path("dirty.img")) == 0)
                check_whole_or_fail("not-clean", path("dirty.img"), 0, 0, true);

        /* Unknown feature bits, set behind the library's back (the
         * superblock checksum is then wrong as well: either way, whole). */
        if (sh("cp '%s' '%s'", src, path("incompat.img")) == 0) {
                patch_le32_or(path("incompat.img"), 1024 + 0x60, 0x40000000);
                check_whole_or_fail("unknown-incompat", path("incompat.img"), 0, 0, false);
        }
        if (sh("cp '%s' '%s'", path("ext2-1k.img"), path("incompat2.img")) == 0) {
                patch_le32_or(path("incompat2.img"), 1024 + 0x60, 0x40000000);
                check_whole_or_fail("unknown-incompat-ext2", path("incompat2.img"), 0, 0, false);
        }
        if (sh("cp '%s' '%s'", path("ext2-1k.img"), path("rocompat.img")) == 0) {
                patch_le32_or(path("rocompat.img"), 1024 + 0x64, 0x40000000);
                check_whole_or_fail("unknown-ro-compat", path("rocompat.img"), 0, 0, true);
        }

        if (!dump_read(src, &d)) {
                CHECK(false, "dumpe2fs %s failed", src);
                return;
        }
        /* Group 0's free block count in its descriptor (block 1, 64-byte
         * descriptors): the descriptor checksum no longer matches. */
        if (sh("cp '%s' '%s'", src, path("desc-csum.img")) == 0) {
                uint8_t b = 0x5a;
                patch(path("desc-csum.img"), d.bs + 0x0C, &b, 1);
                check_whole_or_fail("bad-desc-checksum", path("desc-csum.img"), 0, 0, false);
        }
        /* One bit of group 0's block bitmap, for a free block: the bitmap
         * checksum no longer matches. */
        if (sh("cp '%s' '%s'", src, path("bitmap-csum.img")) == 0 && d.free_.n > 0) {
                uint64_t blk = d.free_.v[d.free_.n - 1].start / d.bs, off = d.bitmap[0] * d.bs + blk / 8;
                uint8_t b;
                if (blk < 32768 && read_at(path("bitmap-csum.img"), off, &b, 1) == 0) {
                        b |= 1 << (blk % 8);
                        patch(path("bitmap-csum.img"), off, &b, 1);
                        check_whole_or_fail("bad-bitmap-checksum", path("bitmap-csum.img"), 0, 0, false);
                }
        }
        dump_done(&d);

        /* Without checksums, a zeroed bitmap is caught by the descriptor's
         * free count. */
        if (sh("cp '%s' '%s'", path("ext2-1k.img"), path("zero-bitmap.img")) == 0 && dump_read(path("zero-bitmap.img"), &d)) {
                static uint8_t zero[1024];
                patch(path("zero-bitmap.img"), d.bitmap[0] * d.bs, zero, d.bs);
                check_whole_or_fail("zeroed-bitmap-ext2", path("zero-bitmap.img"), 0, 0, true);
                dump_done(&d);
        }

        /* Truncated images: the partition as the table says it (past the
         * image end), and as the file is. */
        struct stat st;
        if (stat(src, &st) == 0 && sh("cp '%s' '%s' && truncate -s %lld '%s'", src, path("trunc.img"), (long long) st.st_size / 2,
                                      path("trunc.img")) == 0) {
                check_whole_or_fail("truncated", path("trunc.img"), 0, st.st_size, false);
                check_whole_or_fail("truncated-as-file", path("trunc.img"), 0, 0, false);
                sh("truncate -s 3000 '%s'", path("trunc.img"));
                check_whole_or_fail("truncated-in-super", path("trunc.img"), 0, st.st_size, false);
        }
}

/* Unreplayed transactions written with debugfs' journal commands. */
static void test_recovery(const char *label, const char *mkfs, const char *size, const char *jo, bool replay) {
        char img[PATH_MAX], data[PATH_MAX], cmds[PATH_MAX];
        Dump d;

        snprintf(img, sizeof(img), "%s/%s.img", tmp, label);
        snprintf(data, sizeof(data), "%s/%s.data", tmp, label);
        snprintf(cmds, sizeof(cmds), "%s/%s.cmds", tmp, label);
        if (sh("%s -d '%s' '%s' %s", mkfs, path("src-small"), img, size) != 0 || !dump_read(img, &d))
                return;

        /* Two blocks in the middle of the largest free run, and four more
         * whose bits a journaled copy of group 0's bitmap sets. */
        const Extent *run = NULL;
        uint64_t g0_end = (d.first + 8 * d.bs) * d.bs, run_len = 0;
        EXTENTS_FOREACH(x, &d.free_) {
                uint64_t len = x->start >= g0_end ? 0 : (x->end < g0_end ? x->end : g0_end) - x->start;
                if (len > run_len) {
                        run = x;
                        run_len = len;
                }
        }
        if (!run || run_len < 64 * d.bs) {
                CHECK(false, "%s: no free run in group 0", label);
                dump_done(&d);
                return;
        }
        uint64_t x = run->start / d.bs + 10, z = run->start / d.bs + 40, w = run->start / d.bs + 50;
        uint8_t *buf = calloc(3, d.bs);
        if (!buf || read_at(img, d.bitmap[0] * d.bs, buf + 2 * d.bs, d.bs) < 0) {
                free(buf);
                dump_done(&d);
                return;
        }
        memset(buf, 0xa5, 2 * d.bs);
        for (uint64_t b = z; b < z + 4; b++)
                buf[2 * d.bs + (b - d.first) / 8] |= 1 << ((b - d.first) % 8);
        int fd = open(data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                CHECK(write(fd, buf, 3 * d.bs) == (ssize_t) (3 * d.bs), "%s: short write", label);
                close(fd);
        }
        free(buf);

        /* A committed transaction (two data blocks and the bitmap copy), then
         * one without a commit record, which replay skips (mapping it too is
         * a harmless superset). */
        FILE *f = fopen(cmds, "w");
        if (f) {
                fprintf(f, "%s\njw -b %" PRIu64 ",%" PRIu64 ",%" PRIu64 " %s\njw -c -b %" PRIu64 " %s\njc\n", jo, x, x + 1,
                        d.bitmap[0], data, w, data);
                fclose(f);
        }
        if (sh("debugfs -w -f '%s' '%s' >/dev/null 2>&1", cmds, img) != 0) {
                dump_done(&d);
                return;
        }

        Dump after;
        if (dump_read(img, &after)) {
                /* The on-disk bitmap still says the blocks are free. */
                CHECK(extents_contains(&after.free_, x * d.bs, (x + 2) * d.bs), "%s: debugfs allocated the blocks", label);
                Extents extra = EXTENTS_INIT;
                extents_add(&extra, x * d.bs, (x + 2) * d.bs);
                extents_add(&extra, z * d.bs, (z + 4) * d.bs);
                extents_add(&extra, w * d.bs, (w + 1) * d.bs);
                char l[64];
                snprintf(l, sizeof(l), "%s", label);
                check_exact(l, img, &after, &extra);
                printf("%-22s journal features: %s\n", "", after.journal_features);

                /* What e2fsck's replay leaves marked used must be mapped
                 * (not with metadata_csum: the bitmap copy made here has
                 * no matching checksum, and dumpe2fs would refuse it). */
                Dump replayed;
                ProbeResult res = { .used = EXTENTS_INIT };
                if (replay && probe_file(img, 0, 0, &res) == 0 &&
                    sh("cp '%s' '%s.replay' && e2fsck -E journal_only -y '%s.replay' >/dev/null 2>&1", img, img, img) == 0) {
                        char rimg[PATH_MAX + 8];
                        snprintf(rimg, sizeof(rimg), "%s.replay", img);
                        if (dump_read(rimg, &replayed)) {
                                Extents missing = EXTENTS_INIT;
                                extents_copy(&missing, &replayed.used);
                                extents_subtract(&missing, &res.used);
                                CHECK(missing.n == 0, "%s: after replay, %" PRIu64 " used bytes are not mapped", label,
                                      extents_total(&missing));
                                CHECK(extents_contains(&replayed.used, z * d.bs, (z + 4) * d.bs),
                                      "%s: replay did not apply the bitmap copy", label);
                                printf("%-22s after e2fsck replays it: %" PRIu64 " blocks used, all mapped\n", "",
                                       extents_total(&replayed.used) / d.bs);
                                extents_done(&missing);
                                dump_done(&replayed);
                        }
                }
                probe_result_done(&res);
                extents_done(&extra);
                dump_done(&after);
        }
        dump_done(&d);
}

static void test_recovery_oddities(void) {
        char src[PATH_MAX], *out;

        snprintf(src, sizeof(src), "%s", path("recovery-ext4.img"));

        /* needs_recovery with an empty journal: the bitmap is current. */
        if (sh("cp '%s' '%s' && debugfs -w -R 'feature needs_recovery' '%s' >/dev/null 2>&1", path("ext4.img"),
               path("empty-journal.img"), path("empty-journal.img")) == 0)
                check_image_exact("recovery-empty-journal", path("empty-journal.img"));

        /* The journal says it uses fast commits: not understood, whole. */
        out = sh_out("debugfs -R 'bmap <8> 0' '%s' 2>/dev/null", src);
        if (out && sh("cp '%s' '%s'", src, path("fc.img")) == 0) {
                uint64_t jsb = strtoull(out, NULL, 10) * 4096;
                uint8_t b;
                if (read_at(path("fc.img"), jsb + 43, &b, 1) == 0) {
                        b |= 0x20;
                        patch(path("fc.img"), jsb + 43, &b, 1);
                        check_whole_or_fail("recovery-fast-commit", path("fc.img"), 0, 0, true);
                }
                /* A journal superblock that is garbage. */
                uint8_t junk[64];
                for (size_t i = 0; i < sizeof(junk); i++)
                        junk[i] = (uint8_t) rng();
                if (sh("cp '%s' '%s'", src, path("badjsb.img")) == 0 && patch(path("badjsb.img"), jsb, junk, sizeof(junk)) == 0)
                        check_whole_or_fail("recovery-bad-journal", path("badjsb.img"), 0, 0, true);
        }
        free(out);

        /* needs_recovery with the journal on another device. */
        if (sh("cp '%s' '%s' && debugfs -w -R 'ssv journal_inum 0' '%s' >/dev/null 2>&1", src, path("extj.img"),
               path("extj.img")) == 0)
                check_whole_or_fail("recovery-external", path("extj.img"), 0, 0, true);
}

/* Random bytes in the superblock, the group descriptors or the journal of
 * an image in memory: success inside the partition, or failure, never a
 * crash. */
static void fuzz(const char *label, const char *img, uint64_t region, uint64_t region_len, unsigned seeds, const Extents *must) {
        struct stat st;
        uint8_t *orig = NULL, *mem = NULL;
        unsigned ok = 0, whole = 0, failed = 0;

        if (stat(img, &st) < 0 || !(orig = malloc(st.st_size)) || !(mem = malloc(st.st_size)) ||
            read_at(img, 0, orig, st.st_size) < 0) {
                CHECK(false, "%s: cannot load %s", label, img);
                free(orig);
                free(mem);
                return;
        }
        for (unsigned seed = 1; seed <= seeds; seed++) {
                rng_state = 0x9e3779b97f4a7c15ULL * seed;
                memcpy(mem, orig, st.st_size);
                unsigned n = 1 + rng() % 24;
                for (unsigned i = 0; i < n; i++) {
                        uint64_t off = region + rng() % region_len;
                        /* Keep the magic mostly, or nearly every case stops there. */
                        if (off >= 1024 + 0x38 && off < 1024 + 0x3a && rng() % 8)
                                continue;
                        mem[off] = rng() % 3 == 0 ? (uint8_t) rng() : mem[off] ^ (uint8_t) (1u << (rng() % 8));
                }
                Reader r = reader_from_mem(mem, st.st_size, 0, st.st_size);
                ProbeResult res = { .used = EXTENTS_INIT };
                int k = fsprobe_ext.collect(&r, "ext4", &res);
                if (k == 0) {
                        bool inside = res.used.n == 0 || res.used.v[res.used.n - 1].end <= (uint64_t) st.st_size;
                        CHECK(inside, "%s seed %u: used reaches past the partition", label, seed);
                        if (must) {
                                Extents missing = EXTENTS_INIT;
                                extents_copy(&missing, must);
                                extents_subtract(&missing, &res.used);
                                CHECK(missing.n == 0, "%s seed %u: %" PRIu64 " bytes the bitmap marks used are not mapped (%s)",
                                      label, seed, extents_total(&missing), res.how);
                                extents_done(&missing);
                        }
                        if (res.used.n == 1 && res.used.v[0].start == 0 && res.used.v[0].end == (uint64_t) st.st_size)
                                whole++;
                        else
                                ok++;
                } else {
                        CHECK(res.how[0] != 0, "%s seed %u: failure %d without a reason", label, seed, k);
                        failed++;
                }
                probe_result_done(&res);
        }
        printf("%-22s %u seeds: %u mapped by bitmap, %u whole, %u refused\n", label, seeds, ok, whole, failed);
        free(orig);
        free(mem);
}

int main(void) {
        const char *base = getenv("TEST_TMPDIR");
        if (system("command -v mke2fs >/dev/null && command -v debugfs >/dev/null && command -v dumpe2fs >/dev/null") != 0) {
                fprintf(stderr, "e2fsprogs is not installed\n");
                return 77;
        }
        if (!base)
                base = "/tmp";
        if (sh("mkdir -p '%s'", base))
                return 1;
        snprintf(tmp, sizeof(tmp), "%s/probe-ext.XXXXXX", base);
        if (!mkdtemp(tmp)) {
                fprintf(stderr, "mkdtemp %s: %s\n", tmp, strerror(errno));
                return 1;
        }
        rng_state = 0x243f6a8885a308d3ULL;

        test_clean_images();
        test_mem_reader();
        test_offset();
        test_dirty_and_corrupt();
        test_recovery("recovery-ext4", "mke2fs -q -F -t ext4 -b 4096", "64M", "jo", false);
        test_recovery("recovery-ext4-csum", "mke2fs -q -F -t ext4 -b 4096", "64M", "jo -c", false);
        test_recovery("recovery-ext4-nocsum", "mke2fs -q -F -t ext4 -b 4096 -O ^metadata_csum", "64M", "jo", true);
        test_recovery("recovery-ext3-1k", "mke2fs -q -F -t ext3 -b 1024", "16M", "jo -c", true);
        test_recovery("recovery-ext4-1k-32bit", "mke2fs -q -F -t ext4 -b 1024 -O ^64bit,^metadata_csum", "16M", "jo", true);
        test_recovery_oddities();

        if (sh("mke2fs -q -F -t ext4 -b 1024 -O ^metadata_csum -d '%s' '%s' 16M", path("src-small"), path("fuzz.img")) == 0)
                fuzz("fuzz-ext4-super", path("fuzz.img"), 1024, 3072, 400, NULL);
        fuzz("fuzz-ext2-super", path("ext2-1k.img"), 1024, 3072, 300, NULL);
        fuzz("fuzz-ext4-csum", path("ext4.img"), 1024, 1024, 100, NULL);
        /* The journal only ever adds to what the on-disk bitmap says. */
        char *out = sh_out("debugfs -R 'bmap <8> 0' '%s' 2>/dev/null", path("recovery-ext4.img"));
        Dump d;
        if (out && dump_read(path("recovery-ext4.img"), &d)) {
                fuzz("fuzz-journal", path("recovery-ext4.img"), strtoull(out, NULL, 10) * 4096, 6 * 4096, 300, &d.used);
                dump_done(&d);
        }
        free(out);

        if (!getenv("KEEP_TMP"))
                sh("rm -rf '%s'", tmp);
        return check_exit("test-probe-ext");
}
