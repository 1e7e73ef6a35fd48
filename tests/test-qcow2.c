/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The qcow2 reader on images built in memory: every header check refuses
 * with a message naming the file; L2 entries of each kind read as they
 * should (data, zero flag, unallocated, compressed deflate and zstd at the
 * offset FORMATS §12's verified example decodes to, extended L2
 * subclusters); the map query tells data from known zeros; a backing chain
 * (raw and qcow2, its depth bounded) is read through; damaged tables are
 * refused at open. */
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "mem-host.h"
#include "qcow2.h"

static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (24 - 8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
        put32(p, (uint32_t) (v >> 32));
        put32(p + 4, (uint32_t) v);
}

/* A v3 image: header in cluster 0, L1 in cluster 1, the L2 table of the
 * first L1 entry in cluster 2, data from cluster 3; nclusters in all. */
static Mem mk(unsigned cb, uint64_t vsize, bool extended, size_t nclusters) {
        uint64_t cs = UINT64_C(1) << cb;
        Mem m = { calloc(nclusters, (size_t) cs), nclusters * (size_t) cs };
        uint64_t l2_entries = cs / (extended ? 16 : 8);
        uint64_t l1 = ((vsize + cs - 1) / cs + l2_entries - 1) / l2_entries;
        put32(m.b, 0x514649fb);
        put32(m.b + 4, 3);
        put32(m.b + 20, cb);
        put64(m.b + 24, vsize);
        put32(m.b + 36, (uint32_t) l1);
        put64(m.b + 40, cs);
        put64(m.b + 72, extended ? 16 : 0);
        put32(m.b + 96, 4);
        put32(m.b + 100, 112);
        put64(m.b + cs, 2 * cs | (UINT64_C(1) << 63));
        return m;
}

static uint64_t cs_of(const Mem *m) {
        return UINT64_C(1) << (m->b[23]);
}

static void l2(Mem *m, unsigned i, uint64_t w) {
        put64(m->b + 2 * cs_of(m) + 8 * i, w);
}
static void l2x(Mem *m, unsigned i, uint64_t w, uint64_t w2) {
        put64(m->b + 2 * cs_of(m) + 16 * i, w);
        put64(m->b + 2 * cs_of(m) + 16 * i + 8, w2);
}

static int open_mem(Mem *m, const char *dir, Qcow2 **q, Diag *d) {
        Qcow2Host h = { .name = "mem.qcow2", .pread = mem_pread, .ctx = m, .size = m->size, .dir = dir };
        *d = (Diag) {};
        return qcow2_open(&h, q, d);
}

/* Opening fails with a message naming the file and saying want. */
static void expect_refused(Mem *m, const char *want, const char *what) {
        Qcow2 *q = NULL;
        Diag d;
        int r = open_mem(m, NULL, &q, &d);
        CHECK(r < 0, "%s: opened", what);
        CHECK_STR_CONTAINS(d.msg, "mem.qcow2");
        CHECK_STR_CONTAINS(d.msg, want);
        CHECK(!strchr(d.msg, '\n'), "%s: more than one line", what);
        qcow2_free(q);
}

static void test_header_checks(void) {
        struct {
                size_t at;
                int width;
                uint64_t v;
                const char *want;
        } cases[] = {
                { 0, 4, 0x514649fa, "not a qcow2 file" },
                { 4, 4, 4, "version 4" },
                { 20, 4, 8, "cluster bits 8 out of range" },
                { 20, 4, 22, "cluster bits 22 out of range" },
                { 32, 4, 1, "encrypted (AES)" },
                { 32, 4, 2, "encrypted (LUKS)" },
                { 72, 8, 2, "marked corrupt" },
                { 72, 8, 4, "external data file" },
                { 72, 8, 1 << 7, "unknown incompatible feature (bit 7" },
                { 72, 8, 8, "compression type (0) and its feature bit disagree" },
                { 100, 4, 100, "header length 100" },
                { 96, 4, 7, "refcount order 7" },
                { 36, 4, 0, "L1 table (0 entries) is too small" },
                { 40, 8, 4096 + 8, "L1 table (byte 4104) is not aligned" },
                { 40, 8, 0, "L1 table (byte 0) points into the header" },
                { 40, 8, 4096 * 100, "L1 table (byte 409600) points past the end" },
                { 8, 8, 4090, "backing file name" },
                { 24, 8, UINT64_C(1) << 63, "too large" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Mem m = mk(12, 1 << 20, false, 8);
                if (cases[i].width == 4)
                        put32(m.b + cases[i].at, (uint32_t) cases[i].v);
                else
                        put64(m.b + cases[i].at, cases[i].v);
                if (cases[i].at == 8)
                        put32(m.b + 16, 100); /* 100 bytes at 4090: past cluster 0 */
                expect_refused(&m, cases[i].want, cases[i].want);
                free(m.b);
        }

        /* Extended L2 needs clusters of 16 KiB or more. */
        Mem m = mk(12, 1 << 20, true, 8);
        expect_refused(&m, "extended L2 entries with 4096-byte clusters", "extended 4k");
        free(m.b);

        /* The unknown bit named by the feature name table. */
        m = mk(12, 1 << 20, false, 8);
        put64(m.b + 72, 1 << 9);
        put32(m.b + 112, 0x6803f857);
        put32(m.b + 116, 48);
        m.b[120] = 0;
        m.b[121] = 9;
        memcpy(m.b + 122, "frobnicated", 11);
        expect_refused(&m, "bit 9 ('frobnicated')", "feature name");
        free(m.b);

        /* Snapshots are not refused; dirty is not either. */
        m = mk(12, 1 << 20, false, 8);
        put32(m.b + 60, 2);
        put64(m.b + 64, 3 * 4096);
        put64(m.b + 72, 1);
        Qcow2 *q = NULL;
        Diag d;
        CHECK(open_mem(&m, NULL, &q, &d) == 0, "snapshots: %s", d.msg);
        if (q) {
                Qcow2Info qi;
                qcow2_get_info(q, &qi);
                CHECK_U64(qi.n_snapshots, 2);
                CHECK(qi.dirty, "dirty");
                CHECK_U64(qi.cluster_size, 4096);
                CHECK_U64(qi.size, 1 << 20);
        }
        qcow2_free(q);
        free(m.b);
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v) {
        for (size_t i = 0; i < n; i++)
                if (p[i] != v)
                        return false;
        return true;
}

static void test_entries(void) {
        const uint64_t cs = 4096;
        Mem m = mk(12, 8 * cs, false, 8);
        memset(m.b + 3 * cs, 0xa1, cs);
        memset(m.b + 4 * cs, 0xb2, cs);
        memset(m.b + 5 * cs, 0xc3, cs);
        l2(&m, 0, 3 * cs | (UINT64_C(1) << 63));       /* data */
        l2(&m, 1, 4 * cs);                             /* data, host-contiguous with 0 */
        l2(&m, 2, 5 * cs | 1);                         /* zero flag over a preallocated cluster */
        l2(&m, 3, 0);                                  /* unallocated */
        l2(&m, 4, 1);                                  /* zero flag, no host cluster */
        l2(&m, 5, 5 * cs);                             /* data again */
        Qcow2 *q = NULL;
        Diag d;
        int r = open_mem(&m, NULL, &q, &d);
        CHECK(r == 0, "open: %s", d.msg);
        if (r < 0)
                return;
        uint8_t buf[8 * 4096];
        CHECK(qcow2_pread(q, buf, sizeof(buf), 0, &d) == 0, "read: %s", d.msg);
        CHECK(all_bytes(buf, cs, 0xa1), "cluster 0");
        CHECK(all_bytes(buf + cs, cs, 0xb2), "cluster 1");
        CHECK(all_bytes(buf + 2 * cs, 3 * cs, 0), "clusters 2-4 zeros");
        CHECK(all_bytes(buf + 5 * cs, cs, 0xc3), "cluster 5");
        CHECK(all_bytes(buf + 6 * cs, 2 * cs, 0), "clusters 6-7 zeros");
        /* Unaligned, crossing clusters. */
        CHECK(qcow2_pread(q, buf, 10, cs - 5, &d) == 0, "unaligned");
        CHECK(all_bytes(buf, 5, 0xa1) && all_bytes(buf + 5, 5, 0xb2), "unaligned bytes");
        CHECK(qcow2_pread(q, buf, 1, 8 * cs, &d) == -ERANGE, "past the end");

        uint64_t len;
        Qcow2Kind k;
        CHECK(qcow2_map(q, 0, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_DATA && len == 2 * cs, "map data");
        CHECK(qcow2_map(q, 2 * cs, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_ZERO && len == 3 * cs, "map zero");
        CHECK(qcow2_map(q, 5 * cs + 7, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_DATA && len == cs - 7, "map data 2");
        CHECK(qcow2_map(q, 6 * cs, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_ZERO && len == 2 * cs, "map tail");
        Qcow2Info qi;
        qcow2_get_info(q, &qi);
        CHECK_U64(qi.allocated, 3);
        CHECK_U64(qi.zero, 2);
        qcow2_free(q);
        free(m.b);
}

static size_t deflate_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
        struct isal_zstream z;
        isal_deflate_init(&z);
        z.end_of_stream = 1;
        z.flush = NO_FLUSH;
        z.gzip_flag = IGZIP_DEFLATE;
        z.next_in = (uint8_t *) in;
        z.avail_in = (uint32_t) n;
        z.next_out = out;
        z.avail_out = (uint32_t) cap;
        if (isal_deflate_stateless(&z) != COMP_OK)
                return 0;
        return z.total_out;
}

/* FORMATS §12: with 64 KiB clusters, 0x41C000000005004F is a compressed
 * cluster at byte 327759 in 8 sectors: [327759, 331776). */
static void test_compressed(bool zstd) {
        const uint64_t cs = 65536, word = UINT64_C(0x41C000000005004F);
        Mem m = mk(16, 2 * cs, false, 6);
        uint8_t *plain = malloc(cs), *packed = malloc(cs);
        for (size_t i = 0; i < cs; i++)
                plain[i] = (uint8_t) ((i / 100) * 7);
        size_t n = zstd ? ZSTD_compress(packed, cs, plain, cs, 3) : deflate_raw(plain, cs, packed, cs);
        CHECK(n > 0 && n <= 331776 - 327759, "compressed to %zu bytes", n);
        memcpy(m.b + 327759, packed, n);
        l2(&m, 1, word);
        if (zstd) {
                put64(m.b + 72, 8);
                m.b[104] = 1;
        }
        Qcow2 *q = NULL;
        Diag d;
        int r = open_mem(&m, NULL, &q, &d);
        CHECK(r == 0, "open: %s", d.msg);
        if (r == 0) {
                uint8_t *got = malloc(cs);
                CHECK(qcow2_pread(q, got, cs, cs, &d) == 0, "read: %s", d.msg);
                CHECK(memcmp(got, plain, cs) == 0, "%s cluster decompressed", zstd ? "zstd" : "deflate");
                /* A small read inside it, after another. */
                CHECK(qcow2_pread(q, got, 3, cs + 1000, &d) == 0 && memcmp(got, plain + 1000, 3) == 0, "small read");
                Qcow2Info qi;
                qcow2_get_info(q, &qi);
                CHECK_U64(qi.compressed, 1);
                /* Damaged data: one line naming the guest and file bytes. */
                memset(m.b + 327759, 0xff, 64);
                qcow2_free(q);
                q = NULL;
                CHECK(open_mem(&m, NULL, &q, &d) == 0, "reopen");
                r = q ? qcow2_pread(q, got, cs, cs, &d) : 0;
                CHECK(r == -EIO, "damaged data read: %d", r);
                CHECK_STR_CONTAINS(d.msg, "guest byte 65536 (file byte 327759) does not decompress");
                free(got);
        }
        qcow2_free(q);
        /* Past the end of the file: refused at open. */
        l2(&m, 1, (word & ~UINT64_C(0x3fffffffffffff)) | (m.size + 10));
        expect_refused(&m, "a compressed cluster past the end of the file", "compressed past EOF");
        free(m.b);
        free(plain);
        free(packed);
}

/* Several threads reading one compressed image at once, each checking
 * every byte: the decoders and the cache of decompressed clusters are
 * shared, and a cluster decoded for one thread must never show through
 * to another's read of a different cluster (the sanitizer build runs
 * this too). */
enum { HAMMER_CLUSTERS = 24, HAMMER_THREADS = 4, HAMMER_READS = 400 };

typedef struct Hammer {
        Qcow2 *q;
        const uint8_t *plain;   /* the whole virtual disk */
        uint64_t size;
        unsigned seed;
        unsigned bad;
        char msg[900];
} Hammer;

static void *hammer_thread(void *arg) {
        Hammer *h = arg;
        uint8_t *buf = malloc(3 * 65536);
        for (int i = 0; buf && i < HAMMER_READS && !h->bad; i++) {
                /* Mostly small reads (the probes'), some across clusters. */
                size_t n = (size_t) (rand_r(&h->seed) % (i % 8 == 0 ? 3 * 65536 : 8192)) + 1;
                uint64_t off = (uint64_t) rand_r(&h->seed) % (h->size - n + 1);
                Diag d = {};
                int r = qcow2_pread(h->q, buf, n, off, &d);
                if (r < 0 || memcmp(buf, h->plain + off, n) != 0) {
                        h->bad++;
                        snprintf(h->msg, sizeof(h->msg), "read of %zu bytes at %" PRIu64 ": %.800s", n, off,
                                 r < 0 ? d.msg : "wrong bytes");
                }
        }
        free(buf);
        return NULL;
}

static void test_concurrent(bool zstd) {
        const uint64_t cs = 65536, size = HAMMER_CLUSTERS * cs;
        Mem m = mk(16, size, false, 3 + 2 * HAMMER_CLUSTERS);
        uint8_t *plain = malloc(size), *packed = malloc(2 * cs);
        uint64_t at = 3 * cs;
        /* Each cluster its own bytes, compressible but not trivially. */
        for (uint64_t i = 0; i < size; i++)
                plain[i] = (uint8_t) ((i / 64) * 31 + (i >> 16) * 7 + ((i / 4096) & 1 ? i : 0));
        for (unsigned c = 0; c < HAMMER_CLUSTERS; c++) {
                size_t n = zstd ? ZSTD_compress(packed, 2 * cs, plain + c * cs, cs, 3)
                                : deflate_raw(plain + c * cs, cs, packed, 2 * cs);
                CHECK(n > 0 && n <= cs && at + n <= m.size, "cluster %u compressed to %zu bytes", c, n);
                if (!(n > 0 && n <= cs && at + n <= m.size))
                        goto out;
                memcpy(m.b + at, packed, n);
                /* 64 KiB clusters: the sector count sits above bit 54. */
                l2(&m, c, UINT64_C(1) << 62 | (uint64_t) ((n + 511) / 512 - 1) << 54 | at);
                at += (n + 511) / 512 * 512;
        }
        if (zstd) {
                put64(m.b + 72, 8);
                m.b[104] = 1;
        }
        Qcow2 *q = NULL;
        Diag d;
        int r = open_mem(&m, NULL, &q, &d);
        CHECK(r == 0, "open: %s", d.msg);
        if (r == 0) {
                Hammer h[HAMMER_THREADS];
                pthread_t t[HAMMER_THREADS];
                for (unsigned i = 0; i < HAMMER_THREADS; i++) {
                        h[i] = (Hammer) { .q = q, .plain = plain, .size = size, .seed = 17 * i + (zstd ? 5 : 1) };
                        CHECK(pthread_create(&t[i], NULL, hammer_thread, &h[i]) == 0, "thread %u", i);
                }
                for (unsigned i = 0; i < HAMMER_THREADS; i++) {
                        pthread_join(t[i], NULL);
                        CHECK(h[i].bad == 0, "%s, thread %u: %u bad reads, e.g. %s", zstd ? "zstd" : "deflate", i,
                              h[i].bad, h[i].msg);
                }
        }
        qcow2_free(q);
out:
        free(m.b);
        free(plain);
        free(packed);
}

static void test_subclusters(void) {
        const uint64_t cs = 65536, sc = cs / 32;
        Mem m = mk(16, 3 * cs, true, 5);
        memset(m.b + 3 * cs, 0x77, cs);
        l2x(&m, 0, 3 * cs, 0x000000000000000C);   /* FORMATS: 4 KiB at 4096 */
        l2x(&m, 1, 0, 0xFFFFFFFF00000000);         /* a zeroed cluster */
        l2x(&m, 2, 4 * cs, 0x0000000100000002);    /* sub 0 zero, sub 1 data */
        memset(m.b + 4 * cs, 0x99, cs);
        Qcow2 *q = NULL;
        Diag d;
        int r = open_mem(&m, NULL, &q, &d);
        CHECK(r == 0, "open: %s", d.msg);
        if (r < 0)
                return;
        uint8_t *buf = malloc(3 * cs);
        CHECK(qcow2_pread(q, buf, 3 * cs, 0, &d) == 0, "read: %s", d.msg);
        CHECK(all_bytes(buf, 4096, 0), "subclusters 0-1 unallocated");
        CHECK(all_bytes(buf + 4096, 4096, 0x77), "subclusters 2-3 data");
        CHECK(all_bytes(buf + 8192, cs - 8192, 0), "rest unallocated");
        CHECK(all_bytes(buf + cs, cs, 0), "zeroed cluster");
        CHECK(all_bytes(buf + 2 * cs, sc, 0), "zero subcluster");
        CHECK(all_bytes(buf + 2 * cs + sc, sc, 0x99), "data subcluster at its host offset");
        uint64_t len;
        Qcow2Kind k;
        CHECK(qcow2_map(q, 0, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_ZERO && len == 4096, "map sub 0-1");
        CHECK(qcow2_map(q, 4096, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_DATA && len == 4096, "map sub 2-3");
        CHECK(qcow2_map(q, 8192, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_ZERO && len == 2 * cs - 8192 + sc,
              "map to the data subcluster: %" PRIu64, len);
        free(buf);
        qcow2_free(q);
        /* Both allocated and zero. */
        l2x(&m, 0, 3 * cs, 0x0000000400000004);
        expect_refused(&m, "both allocated and zero", "alloc and zero");
        free(m.b);
}

static void test_corrupt_tables(void) {
        const uint64_t cs = 4096;
        Mem m = mk(12, 4 * cs, false, 6);
        put64(m.b + cs, 100 * cs);
        expect_refused(&m, "L1 entry 0 (guest byte 0): its L2 table points past the end of the file", "L1 past EOF");
        put64(m.b + cs, 2 * cs + 512);
        expect_refused(&m, "its L2 table is not aligned to a cluster", "misaligned L2");
        free(m.b);

        m = mk(12, 4 * cs, false, 6);
        l2(&m, 1, 3 * cs + 512);
        expect_refused(&m, "entry 1 (guest byte 4096): is not aligned", "misaligned data");
        l2(&m, 1, 50 * cs);
        expect_refused(&m, "points past the end of the file", "data past EOF");
        l2(&m, 1, UINT64_C(1) << 63);
        expect_refused(&m, "external-data-file entry", "copied with no offset");
        free(m.b);

        /* The zero flag came with version 3: in a version 2 file QEMU
         * calls the image corrupt; its bytes are not the data cluster's. */
        m = mk(12, 4 * cs, false, 6);
        put32(m.b + 4, 2);
        memset(m.b + 72, 0, 40);
        l2(&m, 1, 3 * cs | 1);
        expect_refused(&m, "entry 1 (guest byte 4096): a zero flag in a version 2 file", "v2 zero flag");
        l2(&m, 1, 1);
        expect_refused(&m, "a zero flag in a version 2 file", "v2 zero flag, no offset");
        free(m.b);
}

static int write_file(const char *path, const void *p, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        ssize_t k = write(fd, p, n);
        close(fd);
        return k == (ssize_t) n ? 0 : -1;
}

/* A qcow2 whose backing name is set in cluster 0 (after the header). */
static void set_backing(Mem *m, const char *name, const char *format) {
        size_t at = 112;
        if (format) {
                put32(m->b + at, 0xe2792aca);
                put32(m->b + at + 4, (uint32_t) strlen(format));
                memcpy(m->b + at + 8, format, strlen(format));
                at += 8 + (strlen(format) + 7) / 8 * 8;
        }
        memset(m->b + at, 0, 8);
        put64(m->b + 8, 512);
        put32(m->b + 16, (uint32_t) strlen(name));
        memcpy(m->b + 512, name, strlen(name));
}

static void test_backing(void) {
        const uint64_t cs = 4096;
        char dir[] = "/tmp/test-qcow2-XXXXXX", path[128];
        Qcow2 *q = NULL;
        Diag d;
        if (!mkdtemp(dir)) {
                CHECK(false, "mkdtemp");
                return;
        }
        /* base.raw: 2.5 clusters of 0x42, shorter than the disk. */
        uint8_t raw[2 * 4096 + 2048];
        memset(raw, 0x42, sizeof(raw));
        snprintf(path, sizeof(path), "%s/base.raw", dir);
        CHECK(write_file(path, raw, sizeof(raw)) == 0, "write base.raw");

        /* mid.qcow2 over base.raw: cluster 1 is its own. */
        Mem mid = mk(12, 4 * cs, false, 5);
        memset(mid.b + 3 * cs, 0x11, cs);
        l2(&mid, 1, 3 * cs);
        set_backing(&mid, "base.raw", "raw");
        snprintf(path, sizeof(path), "%s/mid.qcow2", dir);
        CHECK(write_file(path, mid.b, mid.size) == 0, "write mid");

        /* top over mid.qcow2 (format told by content): cluster 0 zeroed. */
        Mem top = mk(12, 4 * cs, false, 4);
        l2(&top, 0, 1);
        set_backing(&top, "mid.qcow2", NULL);
        int r = open_mem(&top, dir, &q, &d);
        CHECK(r == 0, "open top: %s", d.msg);
        if (r == 0) {
                uint8_t buf[4 * 4096];
                CHECK(qcow2_pread(q, buf, sizeof(buf), 0, &d) == 0, "read: %s", d.msg);
                CHECK(all_bytes(buf, cs, 0), "zeroed in top, not backing");
                CHECK(all_bytes(buf + cs, cs, 0x11), "mid's own cluster");
                CHECK(all_bytes(buf + 2 * cs, 2048, 0x42), "base.raw through two levels");
                CHECK(all_bytes(buf + 2 * cs + 2048, cs + 2048, 0), "past base.raw's end: zeros");
                uint64_t len;
                Qcow2Kind k;
                CHECK(qcow2_map(q, 0, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_ZERO && len == cs, "map zero");
                CHECK(qcow2_map(q, cs, UINT64_MAX, &len, &k, &d) == 0 && k == QCOW2_DATA && len == cs + 2048,
                      "map data through the chain: %" PRIu64, len);
                Qcow2Info qi;
                qcow2_get_info(q, &qi);
                CHECK_STR_CONTAINS(qi.backing, "mid.qcow2 (qcow2) -> base.raw (raw)");
        }
        qcow2_free(q);
        q = NULL;

        /* Refusals, each naming the backing file. */
        struct {
                const char *name, *format, *want;
        } bad[] = {
                { "https://example.com/base.qcow2", NULL, "'https://example.com/base.qcow2' is not a local path" },
                { "nbd:localhost:10809", NULL, "'nbd:localhost:10809' is not a local path" },
                { "json:{\"file\":{}}", NULL, "is not a local path" },
                { "missing.qcow2", NULL, "cannot open its backing file 'missing.qcow2'" },
                { "base.raw", "vmdk", "'base.raw' is in format 'vmdk'" },
                { "base.raw", "qcow2", "'base.raw' should be qcow2" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Mem t = mk(12, 4 * cs, false, 4);
                set_backing(&t, bad[i].name, bad[i].format);
                r = open_mem(&t, dir, &q, &d);
                CHECK(r < 0, "%s: opened", bad[i].name);
                CHECK_STR_CONTAINS(d.msg, bad[i].want);
                qcow2_free(q);
                q = NULL;
                free(t.b);
        }
        /* Only a regular file is read as a backing file: a FIFO would
         * block the open, a device or a file of /proc is no disk image. */
        char fifo[160], sub[160];
        snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
        snprintf(sub, sizeof(sub), "%s/sub", dir);
        CHECK(mkfifo(fifo, 0600) == 0 && mkdir(sub, 0700) == 0, "mkfifo, mkdir");
        struct {
                const char *name, *want;
        } special[] = {
                { "fifo", "/fifo) is a FIFO" },
                { "sub", "/sub) is a directory" },
                { "/dev/null", "'/dev/null' (/dev/null) is a character device" },
                { "/proc/self/status", "'/proc/self/status' (/proc/self/status) is a file of /proc" },
                { "/sys/kernel/uevent_seqnum", "is a file of /sys" },
        };
        for (size_t i = 0; i < ELEMENTSOF(special); i++) {
                if (special[i].name[0] == '/' && access(special[i].name, R_OK) != 0)
                        continue;
                for (int raw_named = 0; raw_named < 2; raw_named++) {
                        Mem t = mk(12, 4 * cs, false, 4);
                        set_backing(&t, special[i].name, raw_named ? "raw" : NULL);
                        r = open_mem(&t, dir, &q, &d);
                        CHECK(r < 0, "%s: opened", special[i].name);
                        CHECK_STR_CONTAINS(d.msg, special[i].want);
                        CHECK_STR_CONTAINS(d.msg, "only a regular file is read as a backing file");
                        qcow2_free(q);
                        q = NULL;
                        free(t.b);
                }
        }
        unlink(fifo);
        rmdir(sub);

        /* Another image format's bytes with no backing format named: what
         * QEMU would read as that format is refused, not read as raw; the
         * same bytes said to be raw are raw. */
        struct {
                const char *fmt;
                size_t at;
                const char *magic;
                size_t len;
        } other[] = {
                { "vmdk", 0, "KDMV", 4 },
                { "vmdk", 0, "# Disk DescriptorFile", 21 },
                { "vhdx", 0, "vhdxfile", 8 },
                { "vdi", 64, "\x7f\x10\xda\xbe", 4 },
                { "VHD (vpc)", 0, "conectix", 8 },
                { "VHD (vpc)", 3 * 4096 - 512, "conectix", 8 },
                { "VHD (vpc)", 3 * 4096 - 511, "conectix", 8 },
                { "qed", 0, "QED\0", 4 },
                { "LUKS", 0, "LUKS\xba\xbe", 6 },
        };
        for (size_t i = 0; i < ELEMENTSOF(other); i++) {
                uint8_t img[3 * 4096];
                memset(img, 0x42, sizeof(img));
                memcpy(img + other[i].at, other[i].magic, other[i].len);
                snprintf(path, sizeof(path), "%s/other.img", dir);
                CHECK(write_file(path, img, sizeof(img)) == 0, "write other.img");
                for (int raw_named = 0; raw_named < 2; raw_named++) {
                        Mem t = mk(12, 4 * cs, false, 4);
                        set_backing(&t, "other.img", raw_named ? "raw" : NULL);
                        r = open_mem(&t, dir, &q, &d);
                        if (raw_named) {
                                uint8_t b[3 * 4096];
                                CHECK(r == 0, "%s said raw: %s", other[i].fmt, d.msg);
                                CHECK(r == 0 && qcow2_pread(q, b, sizeof(b), 0, &d) == 0 && memcmp(b, img, sizeof(b)) == 0,
                                      "%s said raw: its bytes", other[i].fmt);
                        } else {
                                char want[96];
                                snprintf(want, sizeof(want), "'other.img' is a %s image", other[i].fmt);
                                CHECK(r < 0, "%s at %zu: opened", other[i].fmt, other[i].at);
                                CHECK_STR_CONTAINS(d.msg, want);
                        }
                        qcow2_free(q);
                        q = NULL;
                        free(t.b);
                }
        }
        unlink(path);

        /* Version 2 keeps its extensions from byte 72: a backing file said
         * to be raw is raw even when its bytes start like a qcow2 (a guest
         * may write anything on its disk), and another format is refused. */
        uint8_t fake[4096] = { 0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3 };
        snprintf(path, sizeof(path), "%s/fake.raw", dir);
        CHECK(write_file(path, fake, sizeof(fake)) == 0, "write fake.raw");
        for (int vmdk = 0; vmdk < 2; vmdk++) {
                Mem v2 = mk(12, 4 * cs, false, 4);
                put32(v2.b + 4, 2);
                memset(v2.b + 72, 0, 40);
                put32(v2.b + 72, 0xe2792aca);
                put32(v2.b + 76, vmdk ? 4 : 3);
                memcpy(v2.b + 80, vmdk ? "vmdk" : "raw", vmdk ? 4 : 3);
                put64(v2.b + 8, 512);
                put32(v2.b + 16, 8);
                memcpy(v2.b + 512, "fake.raw", 8);
                r = open_mem(&v2, dir, &q, &d);
                if (vmdk) {
                        CHECK(r < 0, "v2 over vmdk: opened");
                        CHECK_STR_CONTAINS(d.msg, "'fake.raw' is in format 'vmdk'");
                } else {
                        uint8_t b8[8];
                        CHECK(r == 0, "v2 over raw: %s", d.msg);
                        CHECK(r == 0 && qcow2_pread(q, b8, 8, 0, &d) == 0 && memcmp(b8, fake, 8) == 0,
                              "v2 over raw: the raw bytes");
                }
                qcow2_free(q);
                q = NULL;
                free(v2.b);
        }
        unlink(path);

        /* Without a directory (not a local file), no backing file at all. */
        r = open_mem(&top, NULL, &q, &d);
        CHECK(r < 0, "backing without a directory");
        CHECK_STR_CONTAINS(d.msg, "has a backing file ('mid.qcow2')");

        /* A file that is its own backing file: the depth bound ends it. */
        Mem loop = mk(12, 4 * cs, false, 4);
        set_backing(&loop, "loop.qcow2", "qcow2");
        snprintf(path, sizeof(path), "%s/loop.qcow2", dir);
        CHECK(write_file(path, loop.b, loop.size) == 0, "write loop");
        r = qcow2_open_path(path, &q, &d);
        CHECK(r == -ELOOP, "loop: %d", r);
        CHECK_STR_CONTAINS(d.msg, "deeper than 8 files");
        qcow2_free(q);

        free(loop.b);
        free(top.b);
        free(mid.b);
        unlink(path);
        snprintf(path, sizeof(path), "%s/mid.qcow2", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/base.raw", dir);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        test_header_checks();
        test_entries();
        test_compressed(false);
        test_compressed(true);
        test_concurrent(false);
        test_concurrent(true);
        test_subclusters();
        test_corrupt_tables();
        test_backing();
        return check_exit("test-qcow2");
}
