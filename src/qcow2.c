/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The qcow2 reader (qcow2.h). Format facts: FORMATS.md §12. The header and
 * every table entry are checked once, at open; reads then decode the same
 * entries with the same checks (a file that changes under us is caught as
 * well as one that was damaged before). */
#include "qcow2.h"

#include <fcntl.h>
#include <inttypes.h>
#include <isa-l.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <zstd.h>

#define QCOW2_MAGIC 0x514649fbU
#define V2_HEADER 72
#define V3_HEADER 104
#define MIN_CLUSTER_BITS 9
#define MAX_CLUSTER_BITS 21  /* QEMU's limit: 2 MiB clusters */
#define MAX_L1_BYTES (UINT64_C(32) << 20) /* QEMU's limit on the L1 table */
#define L1_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L2_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L2_COMPRESSED (UINT64_C(1) << 62)
#define L2_COPIED (UINT64_C(1) << 63)
#define L2_ZERO UINT64_C(1)

#define INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define INCOMPAT_EXTL2 (UINT64_C(1) << 4)
#define INCOMPAT_KNOWN UINT64_C(0x1f)

#define EXT_END 0
#define EXT_BACKING_FORMAT 0xe2792acaU
#define EXT_FEATURE_NAMES 0x6803f857U
#define EXT_DATA_FILE 0x44415441U

/* L2 tables kept decoded in memory: enough for the 4 MiB a copy reads at
 * a time and for the probes, which jump between a filesystem's metadata
 * regions; bounded in bytes whatever the cluster size. */
#define L2_CACHE_BYTES (UINT64_C(8) << 20)
#define L2_CACHE_MIN 4
#define L2_CACHE_MAX 64

/* Decompressed clusters kept (with the decoder that made them): a probe
 * reads a cluster in pieces, and the hashing threads each read their own
 * range, so a few per thread are enough; bounded in bytes too. */
#define DECODE_CACHE_BYTES (UINT64_C(12) << 20)
#define DECODE_CACHE_MIN 2
#define DECODE_CACHE_MAX 16

typedef struct L2Slot {
        uint64_t off;           /* host offset of the table, 0 when empty */
        uint64_t used;          /* LRU tick */
        uint8_t *data;
} L2Slot;

typedef enum RunKind {
        RUN_UNALLOC,
        RUN_ZERO,
        RUN_DATA,
        RUN_COMPRESSED,
} RunKind;

/* What the guest bytes from some offset are, up to len of them. */
typedef struct Run {
        RunKind kind;
        uint64_t len;
        uint64_t host;          /* RUN_DATA: host byte of the first guest byte */
        uint64_t word;          /* RUN_COMPRESSED: the L2 entry */
        uint64_t cluster_start; /* RUN_COMPRESSED: guest offset of its cluster */
} Run;

/* Decompresses compressed clusters: its contexts and buffers, and which
 * cluster dbuf holds (its L2 entry; 0 for none). */
typedef struct Decoder {
        struct Decoder *next;
        uint64_t word;
        uint8_t *cbuf, *dbuf;   /* compressed bytes; the cluster they decompress to */
        struct inflate_state *inflate;
        ZSTD_DCtx *zctx;
} Decoder;

struct Qcow2 {
        Qcow2Host host;
        char *name, *dir;
        int own_fd;             /* opened by path: closed by qcow2_free */
        unsigned depth;
        unsigned version, cluster_bits, l2_bits;
        uint64_t cs, size, file_size;
        uint64_t *l1;
        size_t l1_entries;      /* those the virtual size needs */
        bool extended, zstd, dirty;
        unsigned n_snapshots;
        uint64_t n_allocated, n_compressed, n_zero;

        /* The backing file: a qcow2 (bq) or a raw file (bfd), size bsize. */
        bool has_backing;
        Qcow2 *bq;
        int bfd;
        uint64_t bsize;
        char *bname, *bpath;    /* as the header names it; as opened */
        char chain[1024];

        pthread_mutex_t lock;   /* the L2 cache */
        L2Slot *slots;
        size_t n_slots;
        uint64_t tick;

        /* Decoders not in use, most recently used first; each still holds
         * the cluster it decoded last, so they are also the cache of
         * decompressed clusters. A thread takes one out for the whole
         * decompression and copy, so threads decompress side by side. */
        pthread_mutex_t dlock;  /* the list below, held only to take or put one */
        Decoder *idle;
        size_t n_idle, n_decoders, max_idle;
};

bool qcow2_detect(const void *head, size_t n) {
        return n >= 4 && get_be32(head) == QCOW2_MAGIC;
}

uint64_t qcow2_size(const Qcow2 *q) {
        return q->size;
}

static ssize_t fd_pread(void *ctx, uint64_t off, void *buf, size_t n) {
        return pread_full((int) (intptr_t) ctx, buf, n, off);
}

/* Exactly n bytes at off of the file; -EIO (d filled) when it ends first. */
static int host_read(Qcow2 *q, uint64_t off, void *buf, size_t n, const char *what, Diag *d) {
        ssize_t k = q->host.pread(q->host.ctx, off, buf, n);
        if (k < 0)
                return diag_set(d, (int) k, "%s: cannot read %s at byte %" PRIu64 ": %s", q->name, what, off,
                                strerror((int) -k));
        if ((size_t) k < n)
                return diag_set(d, -EIO, "%s: the file ends at byte %" PRIu64 ", inside %s: the qcow2 file is truncated",
                                q->name, off + (uint64_t) k, what);
        return 0;
}

static void decoder_free(Decoder *dec) {
        if (!dec)
                return;
        free(dec->cbuf);
        free(dec->dbuf);
        free(dec->inflate);
        ZSTD_freeDCtx(dec->zctx);
        free(dec);
}

void qcow2_free(Qcow2 *q) {
        if (!q)
                return;
        qcow2_free(q->bq);
        if (q->bfd >= 0)
                close(q->bfd);
        if (q->own_fd >= 0)
                close(q->own_fd);
        for (size_t i = 0; i < q->n_slots; i++)
                free(q->slots[i].data);
        free(q->slots);
        while (q->idle) {
                Decoder *next = q->idle->next;
                decoder_free(q->idle);
                q->idle = next;
        }
        free(q->l1);
        free(q->name);
        free(q->dir);
        free(q->bname);
        free(q->bpath);
        pthread_mutex_destroy(&q->lock);
        pthread_mutex_destroy(&q->dlock);
        free(q);
}

/* ---- table entries ---- */

/* A table's or a cluster's host offset: cluster-aligned, past the header
 * cluster, and (len bytes of it) inside the file. */
static const char *check_host(const Qcow2 *q, uint64_t off, uint64_t len) {
        if (off & (q->cs - 1))
                return "is not aligned to a cluster";
        if (off < q->cs)
                return "points into the header cluster";
        if (off >= q->file_size || len > q->file_size - off)
                return "points past the end of the file";
        return NULL;
}

/* The compressed bytes of an L2 entry: [off, off + len) of the file. */
static void compressed_span(const Qcow2 *q, uint64_t w, uint64_t *ret_off, uint64_t *ret_len) {
        unsigned x = 62 - (q->cluster_bits - 8);
        uint64_t off = w & ((UINT64_C(1) << x) - 1);
        uint64_t sectors = ((w & ~L2_COPIED & ~L2_COMPRESSED) >> x) + 1;
        uint64_t end = (off & ~UINT64_C(511)) + sectors * 512;
        /* The last sector of the file may be cut short. */
        if (end > q->file_size)
                end = q->file_size > off ? q->file_size : off;
        *ret_off = off;
        *ret_len = end - off;
}

/* Checks one L2 entry (w, and w2 with extended L2); the problem, or NULL. */
static const char *check_entry(const Qcow2 *q, uint64_t w, uint64_t w2) {
        if (w & L2_COMPRESSED) {
                uint64_t off, len;
                compressed_span(q, w, &off, &len);
                if (off < q->cs)
                        return "a compressed cluster in the header cluster";
                if (off >= q->file_size)
                        return "a compressed cluster past the end of the file";
                return NULL;
        }
        uint64_t host = w & L2_OFFSET_MASK;
        if (q->extended) {
                uint32_t alloc = (uint32_t) w2, zero = (uint32_t) (w2 >> 32);
                if (alloc & zero)
                        return "a subcluster both allocated and zero";
                if (alloc && host == 0)
                        return "allocated subclusters with no host cluster";
        } else if (q->version < 3 && (w & L2_ZERO))
                /* QEMU marks such a file corrupt and fails the read. */
                return "a zero flag in a version 2 file";
        else if (host == 0 && (w & L2_COPIED) && !(q->version >= 3 && (w & L2_ZERO)))
                return "an external-data-file entry in a file without one";
        if (host != 0)
                return check_host(q, host, 1);
        return NULL;
}

/* The L2 table at host offset off, from the cache. Call with the lock held. */
static int l2_get(Qcow2 *q, uint64_t off, const uint8_t **ret, Diag *d) {
        L2Slot *victim = &q->slots[0];
        for (size_t i = 0; i < q->n_slots; i++) {
                L2Slot *s = &q->slots[i];
                if (s->off == off) {
                        s->used = ++q->tick;
                        *ret = s->data;
                        return 0;
                }
                if (s->used < victim->used)
                        victim = s;
        }
        victim->off = 0;
        int r = host_read(q, off, victim->data, (size_t) q->cs, "an L2 table", d);
        if (r < 0)
                return r;
        victim->off = off;
        victim->used = ++q->tick;
        *ret = victim->data;
        return 0;
}

/* What the guest bytes from off are, within one cluster (a run of like
 * subclusters with extended L2), or a whole unallocated L2 range. Call
 * with the lock held. */
static int lookup(Qcow2 *q, uint64_t off, Run *ret, Diag *d) {
        uint64_t cluster = off >> q->cluster_bits, in = off & (q->cs - 1);
        uint64_t l1i = cluster >> q->l2_bits, l2i = cluster & ((UINT64_C(1) << q->l2_bits) - 1);
        uint64_t left = q->size - off;
        Run run = {};

        if (l1i >= q->l1_entries || q->l1[l1i] == 0) {
                uint64_t span = q->cs << q->l2_bits;
                run.kind = RUN_UNALLOC;
                run.len = span - (off & (span - 1));
        } else {
                const uint8_t *t;
                int r = l2_get(q, q->l1[l1i], &t, d);
                if (r < 0)
                        return r;
                unsigned esz = q->extended ? 16 : 8;
                uint64_t w = get_be64(t + l2i * esz), w2 = q->extended ? get_be64(t + l2i * esz + 8) : 0;
                const char *bad = check_entry(q, w, w2);
                if (bad)
                        return diag_set(d, -EIO, "%s: L2 table at byte %" PRIu64 ", entry %" PRIu64 " (guest byte %" PRIu64
                                        "): %s: the qcow2 file is damaged",
                                        q->name, q->l1[l1i], l2i, cluster << q->cluster_bits, bad);
                uint64_t host = w & L2_OFFSET_MASK;
                run.len = q->cs - in;
                if (w & L2_COMPRESSED) {
                        run.kind = RUN_COMPRESSED;
                        run.word = w;
                        run.cluster_start = cluster << q->cluster_bits;
                } else if (q->extended) {
                        uint64_t sc = q->cs / 32;
                        unsigned i = (unsigned) (in / sc), j;
                        uint32_t alloc = (uint32_t) w2, zero = (uint32_t) (w2 >> 32);
#define SUB_KIND(k) ((zero >> (k)) & 1 ? RUN_ZERO : (alloc >> (k)) & 1 ? RUN_DATA : RUN_UNALLOC)
                        run.kind = SUB_KIND(i);
                        for (j = i + 1; j < 32 && SUB_KIND(j) == run.kind; j++)
                                ;
#undef SUB_KIND
                        run.len = j * sc - in;
                        run.host = host + in;
                } else if (q->version >= 3 && (w & L2_ZERO))
                        run.kind = RUN_ZERO;
                else if (host == 0)
                        run.kind = RUN_UNALLOC;
                else {
                        run.kind = RUN_DATA;
                        run.host = host + in;
                }
        }
        if (run.len > left)
                run.len = left;
        *ret = run;
        return 0;
}

/* ---- reading ---- */

/* A decoder for the compressed cluster whose L2 entry is word: one whose
 * dbuf already holds it when there is one (*ret_hit), else the least
 * recently used idle one, or a new one while there are fewer than the
 * cache holds or none is idle. The caller owns it until decoder_put. */
static int decoder_get(Qcow2 *q, uint64_t word, Decoder **ret, bool *ret_hit, Diag *d) {
        Decoder **pp, **lru = NULL, *dec = NULL;

        pthread_mutex_lock(&q->dlock);
        for (pp = &q->idle; *pp; pp = &(*pp)->next) {
                if ((*pp)->word == word) {
                        lru = pp;
                        break;
                }
                lru = pp;
        }
        if (lru && ((*lru)->word == word || q->n_decoders >= q->max_idle)) {
                dec = *lru;
                *lru = dec->next;
                q->n_idle--;
        } else
                q->n_decoders++;
        pthread_mutex_unlock(&q->dlock);

        if (dec) {
                *ret_hit = dec->word == word;
                *ret = dec;
                return 0;
        }
        dec = calloc(1, sizeof(*dec));
        if (dec) {
                dec->cbuf = malloc((size_t) (2 * q->cs + 512));
                dec->dbuf = malloc((size_t) q->cs);
                if (q->zstd)
                        dec->zctx = ZSTD_createDCtx();
                else
                        dec->inflate = malloc(sizeof(*dec->inflate));
        }
        if (!dec || !dec->cbuf || !dec->dbuf || (q->zstd ? !dec->zctx : !dec->inflate)) {
                decoder_free(dec);
                pthread_mutex_lock(&q->dlock);
                q->n_decoders--;
                pthread_mutex_unlock(&q->dlock);
                diag_set(d, -ENOMEM, "%s: out of memory", q->name);
                return -ENOMEM;
        }
        *ret_hit = false;
        *ret = dec;
        return 0;
}

/* Gives a decoder back: kept, with its cluster, while the cache has room. */
static void decoder_put(Qcow2 *q, Decoder *dec) {
        pthread_mutex_lock(&q->dlock);
        if (q->n_idle < q->max_idle) {
                dec->next = q->idle;
                q->idle = dec;
                q->n_idle++;
                dec = NULL;
        } else
                q->n_decoders--;
        pthread_mutex_unlock(&q->dlock);
        decoder_free(dec);
}

/* The cluster a compressed entry holds, into dec->dbuf. */
static int decompress(Qcow2 *q, Decoder *dec, const Run *run, Diag *d) {
        uint64_t off, len;
        const char *why = NULL;

        dec->word = 0;
        compressed_span(q, run->word, &off, &len);
        int r = host_read(q, off, dec->cbuf, (size_t) len, "a compressed cluster", d);
        if (r < 0)
                return r;
        if (q->zstd) {
                ZSTD_inBuffer in = { dec->cbuf, (size_t) len, 0 };
                ZSTD_outBuffer out = { dec->dbuf, (size_t) q->cs, 0 };
                ZSTD_DCtx_reset(dec->zctx, ZSTD_reset_session_only);
                while (out.pos < out.size) {
                        size_t k = ZSTD_decompressStream(dec->zctx, &out, &in);
                        if (ZSTD_isError(k)) {
                                why = ZSTD_getErrorName(k);
                                break;
                        }
                        if (in.pos == in.size && out.pos < out.size) {
                                why = "the data ends before the cluster does";
                                break;
                        }
                }
        } else {
                /* Raw deflate: the cluster is done when the output is full;
                 * sector padding may follow the last block. */
                isal_inflate_init(dec->inflate);
                dec->inflate->crc_flag = ISAL_DEFLATE;
                dec->inflate->next_in = dec->cbuf;
                dec->inflate->avail_in = (uint32_t) len;
                dec->inflate->next_out = dec->dbuf;
                dec->inflate->avail_out = (uint32_t) q->cs;
                int k = isal_inflate(dec->inflate);
                if (k < 0)
                        why = "invalid deflate data";
                else if (dec->inflate->avail_out != 0)
                        why = "the data ends before the cluster does";
        }
        if (why)
                return diag_set(d, -EIO, "%s: the compressed cluster at guest byte %" PRIu64 " (file byte %" PRIu64
                                ") does not decompress: %s: the qcow2 file is damaged",
                                q->name, run->cluster_start, off, why);
        dec->word = run->word;
        return 0;
}

/* k guest bytes at off of a compressed cluster, into p. */
static int compressed_read(Qcow2 *q, const Run *run, uint8_t *p, size_t k, uint64_t off, Diag *d) {
        Decoder *dec;
        bool hit;
        int r = decoder_get(q, run->word, &dec, &hit, d);
        if (r < 0)
                return r;
        if (!hit && (r = decompress(q, dec, run, d)) < 0) {
                decoder_put(q, dec);
                return r;
        }
        memcpy(p, dec->dbuf + (off - run->cluster_start), k);
        decoder_put(q, dec);
        return 0;
}

static int backing_read(Qcow2 *q, uint8_t *buf, size_t n, uint64_t off, Diag *d) {
        size_t have = 0;
        if (q->has_backing && off < q->bsize)
                have = q->bsize - off < n ? (size_t) (q->bsize - off) : n;
        if (have > 0) {
                if (q->bq) {
                        int r = qcow2_pread(q->bq, buf, have, off, d);
                        if (r < 0)
                                return r;
                } else {
                        ssize_t k = pread_full(q->bfd, buf, have, off);
                        if (k < 0 || (size_t) k < have)
                                return diag_set(d, k < 0 ? (int) k : -EIO,
                                                "%s: cannot read its backing file at byte %" PRIu64 ": %s", q->name, off,
                                                k < 0 ? strerror((int) -k) : "the file is shorter than it was");
                }
        }
        memset(buf + have, 0, n - have);
        return 0;
}

int qcow2_pread(Qcow2 *q, void *buf, size_t n, uint64_t off, Diag *d) {
        uint8_t *p = buf;
        int r;

        if (off > q->size || n > q->size - off)
                return -ERANGE;
        while (n > 0) {
                Run run;
                pthread_mutex_lock(&q->lock);
                r = lookup(q, off, &run, d);
                /* Contiguous host clusters are read in one go. */
                while (r >= 0 && run.kind == RUN_DATA && run.len < n) {
                        Run next;
                        r = lookup(q, off + run.len, &next, d);
                        if (r < 0 || next.kind != RUN_DATA || next.host != run.host + run.len)
                                break;
                        run.len += next.len;
                }
                pthread_mutex_unlock(&q->lock);
                if (r < 0)
                        return r;
                size_t k = run.len < n ? (size_t) run.len : n;
                switch (run.kind) {
                case RUN_ZERO:
                        memset(p, 0, k);
                        break;
                case RUN_UNALLOC:
                        r = backing_read(q, p, k, off, d);
                        break;
                case RUN_DATA: {
                        /* Past the end of the file reads as zeros, as in QEMU:
                         * a file's last cluster may be cut short. */
                        ssize_t got = q->host.pread(q->host.ctx, run.host, p, k);
                        if (got < 0)
                                return diag_set(d, (int) got, "%s: cannot read guest byte %" PRIu64 " at file byte %" PRIu64
                                                ": %s", q->name, off, run.host, strerror((int) -got));
                        memset(p + got, 0, k - (size_t) got);
                        break;
                }
                case RUN_COMPRESSED:
                        r = compressed_read(q, &run, p, k, off, d);
                        break;
                }
                if (r < 0)
                        return r;
                p += k;
                off += k;
                n -= k;
        }
        return 0;
}

/* What the backing file holds at off, for up to len bytes. */
static int backing_map(Qcow2 *q, uint64_t off, uint64_t len, uint64_t *ret_len, Qcow2Kind *ret_kind, Diag *d) {
        if (!q->has_backing || off >= q->bsize) {
                *ret_len = len;
                *ret_kind = QCOW2_ZERO;
                return 0;
        }
        if (len > q->bsize - off)
                len = q->bsize - off;
        if (q->bq)
                return qcow2_map(q->bq, off, len, ret_len, ret_kind, d);
        /* A raw backing file: its holes are zeros. */
        off_t dpos = lseek(q->bfd, (off_t) off, SEEK_DATA);
        *ret_kind = QCOW2_DATA;
        *ret_len = len;
        if (dpos < 0 && errno == ENXIO)
                *ret_kind = QCOW2_ZERO;
        else if (dpos > (off_t) off) {
                *ret_kind = QCOW2_ZERO;
                if ((uint64_t) dpos - off < len)
                        *ret_len = (uint64_t) dpos - off;
        } else if (dpos == (off_t) off) {
                off_t h = lseek(q->bfd, dpos, SEEK_HOLE);
                if (h > dpos && (uint64_t) h - off < len)
                        *ret_len = (uint64_t) h - off;
        }
        return 0;
}

/* The kind of the bytes at off, and for how many. */
static int classify(Qcow2 *q, uint64_t off, uint64_t max, uint64_t *ret_len, Qcow2Kind *ret_kind, Diag *d) {
        Run run;
        pthread_mutex_lock(&q->lock);
        int r = lookup(q, off, &run, d);
        pthread_mutex_unlock(&q->lock);
        if (r < 0)
                return r;
        if (run.len > max)
                run.len = max;
        if (run.kind == RUN_UNALLOC)
                return backing_map(q, off, run.len, ret_len, ret_kind, d);
        *ret_kind = run.kind == RUN_ZERO ? QCOW2_ZERO : QCOW2_DATA;
        *ret_len = run.len;
        return 0;
}

int qcow2_map(Qcow2 *q, uint64_t off, uint64_t max, uint64_t *ret_len, Qcow2Kind *ret_kind, Diag *d) {
        uint64_t total = 0, len;
        Qcow2Kind first, k;
        int r;

        if (off >= q->size || max == 0)
                return -ERANGE;
        if (max > q->size - off)
                max = q->size - off;
        r = classify(q, off, max, &total, &first, d);
        while (r >= 0 && total < max) {
                r = classify(q, off + total, max - total, &len, &k, d);
                if (r < 0 || k != first)
                        break;
                total += len;
        }
        if (r < 0)
                return r;
        *ret_len = total;
        *ret_kind = first;
        return 0;
}

void qcow2_get_info(const Qcow2 *q, Qcow2Info *ret) {
        *ret = (Qcow2Info) {
                .version = q->version,
                .cluster_size = q->cs,
                .size = q->size,
                .clusters = div_round_up(q->size, q->cs),
                .allocated = q->n_allocated,
                .compressed = q->n_compressed,
                .zero = q->n_zero,
                .extended_l2 = q->extended,
                .dirty = q->dirty,
                .compression = q->zstd ? "zstd" : "deflate",
                .n_snapshots = q->n_snapshots,
        };
        snprintf(ret->backing, sizeof(ret->backing), "%s", q->chain);
}

bool qcow2_backing_at(const Qcow2 *q, unsigned i, Qcow2Backing *ret) {
        for (; q && q->has_backing; q = q->bq, i--)
                if (i == 0) {
                        *ret = (Qcow2Backing) { .name = q->bname, .path = q->bpath, .format = q->bq ? "qcow2" : "raw",
                                                .size = q->bsize };
                        return true;
                }
        return false;
}

/* ---- opening ---- */

static int open_at_depth(const Qcow2Host *h, unsigned depth, int own_fd, Qcow2 **ret, Diag *d);

/* The directory of path, where its relative backing name starts. */
static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        return slash ? strndup(path, slash == path ? 1 : (size_t) (slash - path)) : strdup(".");
}

/* A backing name QEMU would hand to a protocol driver ("nbd:", "json:",
 * "https://"), not open as a file. */
static bool is_protocol(const char *name) {
        size_t k = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
        return k > 0 && name[k] == ':';
}

/* Why the opened backing file is not one to read (a device, a FIFO, a
 * directory, a file of /proc or /sys, whose sizes and contents are not a
 * disk's), or NULL for a regular file. */
static const char *not_regular(int fd, const struct stat *st) {
        struct statfs sf;
        if (S_ISBLK(st->st_mode))
                return "a block device";
        if (S_ISCHR(st->st_mode))
                return "a character device";
        if (S_ISFIFO(st->st_mode))
                return "a FIFO";
        if (S_ISDIR(st->st_mode))
                return "a directory";
        if (S_ISSOCK(st->st_mode))
                return "a socket";
        if (!S_ISREG(st->st_mode))
                return "not a regular file";
        if (fstatfs(fd, &sf) == 0 && (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC))
                return sf.f_type == PROC_SUPER_MAGIC ? "a file of /proc" : "a file of /sys";
        return NULL;
}

/* The name of the disk image format a backing file's bytes are in, when
 * they are one QEMU would read as that format (its own probes' magics),
 * or NULL. A VHD has its footer at the end (and a copy at the start). */
static const char *other_format(int fd, uint64_t size) {
        uint8_t head[512] = {}, tail[512] = {};
        if (pread_full(fd, head, sizeof(head), 0) < 0)
                return NULL;
        if (size >= sizeof(tail) && pread_full(fd, tail, sizeof(tail), size - sizeof(tail)) < 0)
                return NULL;
        if (memcmp(head, "KDMV", 4) == 0 || memcmp(head, "# Disk DescriptorFile", 21) == 0)
                return "vmdk";
        if (memcmp(head, "vhdxfile", 8) == 0)
                return "vhdx";
        if (get_le32(head + 64) == 0xbeda107fU)
                return "vdi";
        if (memcmp(head, "conectix", 8) == 0 || memcmp(tail, "conectix", 8) == 0 ||
            memcmp(tail + 1, "conectix", 8) == 0)
                return "VHD (vpc)";
        if (memcmp(head, "QED\0", 4) == 0)
                return "qed";
        if (memcmp(head, "LUKS\xba\xbe", 6) == 0)
                return "LUKS";
        return NULL;
}

static int open_backing(Qcow2 *q, const char *name, const char *format, Diag *d) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        uint8_t magic[4] = {};
        struct stat st;

        if (is_protocol(name))
                return diag_set(d, -EPROTONOSUPPORT,
                                "%s: its backing file '%s' is not a local path (a URL or a protocol): only local backing "
                                "files are read: merge the chain with 'qemu-img convert' first",
                                q->name, name);
        if (!q->dir)
                return diag_set(d, -EPROTONOSUPPORT,
                                "%s: has a backing file ('%s'), which is read only beside a local qcow2 file: merge the "
                                "chain with 'qemu-img convert' or download both",
                                q->name, name);
        if (q->depth + 1 > QCOW2_MAX_DEPTH)
                return diag_set(d, -ELOOP, "%s: its backing chain is deeper than %d files (at '%s'): merge it with "
                                "'qemu-img convert' first", q->name, QCOW2_MAX_DEPTH, name);
        if (name[0] == '/')
                path = strdup(name);
        else if (asprintf(&path, "%s/%s", q->dir, name) < 0)
                path = NULL;
        if (!path)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is
         * refused below, as is anything but a regular file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0)
                return diag_set(d, -errno, "%s: cannot open its backing file '%s' (%s): %s", q->name, name, path,
                                strerror(errno));
        const char *what = not_regular(fd, &st);
        if (what)
                return diag_set(d, -EINVAL, "%s: its backing file '%s' (%s) is %s: only a regular file is read as a "
                                "backing file: merge the chain with 'qemu-img convert' first",
                                q->name, name, path, what);
        uint64_t size = (uint64_t) st.st_size;
        ssize_t k = pread_full(fd, magic, sizeof(magic), 0);
        bool is_qcow2 = k == (ssize_t) sizeof(magic) && qcow2_detect(magic, sizeof(magic));
        if (format[0] && strcmp(format, "qcow2") != 0 && strcmp(format, "raw") != 0)
                return diag_set(d, -EPROTONOSUPPORT,
                                "%s: its backing file '%s' is in format '%s': only raw and qcow2 backing files are read: "
                                "merge the chain with 'qemu-img convert' first",
                                q->name, name, format);
        if (strcmp(format, "qcow2") == 0 && !is_qcow2)
                return diag_set(d, -EINVAL, "%s: its backing file '%s' should be qcow2 but is not one", q->name, name);
        if (strcmp(format, "raw") == 0)
                is_qcow2 = false;
        else if (!format[0] && !is_qcow2) {
                /* No format named: QEMU would probe it, and read another
                 * image format as that format, not as raw bytes. */
                const char *other = other_format(fd, size);
                if (other)
                        return diag_set(d, -EPROTONOSUPPORT,
                                        "%s: its backing file '%s' is a %s image (the qcow2 names no backing format): only "
                                        "raw and qcow2 backing files are read: merge the chain with 'qemu-img convert' "
                                        "first", q->name, name, other);
        }
        q->bname = strdup(name);
        q->bpath = strdup(path);
        if (!q->bname || !q->bpath)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        q->has_backing = true;
        if (is_qcow2) {
                _cleanup_free_ char *bdir = dir_of(path);
                if (!bdir)
                        return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
                Qcow2Host bh = { .name = path, .pread = fd_pread, .ctx = (void *) (intptr_t) fd, .size = size, .dir = bdir };
                int r = open_at_depth(&bh, q->depth + 1, TAKE_FD(fd), &q->bq, d);
                if (r < 0)
                        return r;
                q->bsize = q->bq->size;
                /* A chain too long for the report is cut short there. */
                if (snprintf(q->chain, sizeof(q->chain), "%s (qcow2)%s%s", name, q->bq->chain[0] ? " -> " : "",
                             q->bq->chain) >= (int) sizeof(q->chain))
                        memcpy(q->chain + sizeof(q->chain) - 4, "...", 4);
        } else {
                q->bfd = TAKE_FD(fd);
                q->bsize = size;
                if (snprintf(q->chain, sizeof(q->chain), "%s (raw)", name) >= (int) sizeof(q->chain))
                        memcpy(q->chain + sizeof(q->chain) - 4, "...", 4);
        }
        return 0;
}

/* The name QEMU's feature table gives an incompatible bit, or "". */
static void feature_name(const uint8_t *ext, uint32_t len, unsigned bit, char *buf, size_t size) {
        buf[0] = 0;
        for (uint32_t i = 0; i + 48 <= len; i += 48)
                if (ext[i] == 0 && ext[i + 1] == bit) {
                        size_t k = strnlen((const char *) ext + i + 2, 46);
                        snprintf(buf, size, " ('%.*s')", (int) k, (const char *) ext + i + 2);
                        for (char *c = buf; *c; c++)
                                if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
                                        *c = '?';
                }
}

/* Every L1 entry and every L2 entry the virtual disk uses, once. */
static int check_tables(Qcow2 *q, Diag *d) {
        _cleanup_free_ uint8_t *t = malloc((size_t) q->cs);
        unsigned esz = q->extended ? 16 : 8;
        uint64_t clusters = div_round_up(q->size, q->cs);
        int r;

        if (!t)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        for (size_t i = 0; i < q->l1_entries; i++) {
                uint64_t off = q->l1[i] & L1_OFFSET_MASK;
                uint64_t first = (uint64_t) i << q->l2_bits;
                const char *bad;
                q->l1[i] = off;
                if (off == 0)
                        continue;
                bad = check_host(q, off, q->cs);
                if (bad)
                        return diag_set(d, -EINVAL, "%s: L1 entry %zu (guest byte %" PRIu64 "): its L2 table %s (byte %" PRIu64
                                        "): the qcow2 file is damaged",
                                        q->name, i, first << q->cluster_bits, bad, off);
                r = host_read(q, off, t, (size_t) q->cs, "an L2 table", d);
                if (r < 0)
                        return r;
                uint64_t n = clusters - first < (UINT64_C(1) << q->l2_bits) ? clusters - first : UINT64_C(1) << q->l2_bits;
                for (uint64_t j = 0; j < n; j++) {
                        uint64_t w = get_be64(t + j * esz), w2 = q->extended ? get_be64(t + j * esz + 8) : 0;
                        bad = check_entry(q, w, w2);
                        if (bad)
                                return diag_set(d, -EINVAL, "%s: L2 table at byte %" PRIu64 ", entry %" PRIu64
                                                " (guest byte %" PRIu64 "): %s: the qcow2 file is damaged",
                                                q->name, off, j, (first + j) << q->cluster_bits, bad);
                        if (w & L2_COMPRESSED) {
                                q->n_compressed++;
                                q->n_allocated++;
                        } else if (q->extended ? (uint32_t) (w2 >> 32) == UINT32_MAX
                                               : q->version >= 3 && (w & L2_ZERO))
                                q->n_zero++;
                        else if (q->extended ? (uint32_t) w2 != 0 : (w & L2_OFFSET_MASK) != 0)
                                q->n_allocated++;
                }
        }
        return 0;
}

static int open_at_depth(const Qcow2Host *h, unsigned depth, int own_fd, Qcow2 **ret, Diag *d) {
        _cleanup_(qcow2_freep) Qcow2 *q = NULL;
        uint8_t hd[V3_HEADER + 8] = {};
        char backing_format[64] = "";
        _cleanup_free_ uint8_t *c0 = NULL;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q) {
                if (own_fd >= 0)
                        close(own_fd);
                return diag_set(d, -ENOMEM, "%s: out of memory", h->name);
        }
        q->own_fd = own_fd;
        q->bfd = -1;
        q->depth = depth;
        q->host = *h;
        pthread_mutex_init(&q->lock, NULL);
        pthread_mutex_init(&q->dlock, NULL);
        q->name = strdup(h->name);
        q->dir = h->dir ? strdup(h->dir) : NULL;
        if (!q->name || (h->dir && !q->dir))
                return diag_set(d, -ENOMEM, "%s: out of memory", h->name);
        q->host.name = q->name;
        q->file_size = h->size;

        ssize_t k = h->pread(h->ctx, 0, hd, sizeof(hd));
        if (k < 0)
                return diag_set(d, (int) k, "%s: cannot read the qcow2 header: %s", q->name, strerror((int) -k));
        if (k < V2_HEADER || get_be32(hd) != QCOW2_MAGIC)
                return diag_set(d, -EINVAL, "%s: not a qcow2 file (no complete header): the file is damaged or "
                                "incomplete", q->name);
        q->version = get_be32(hd + 4);
        if (q->version != 2 && q->version != 3)
                return diag_set(d, -EPROTONOSUPPORT, "%s: qcow2 version %u: only versions 2 and 3 are read: convert it with "
                                "'qemu-img convert -O raw' first", q->name,
                                q->version);
        uint64_t backing_off = get_be64(hd + 8);
        uint32_t backing_len = get_be32(hd + 16);
        q->cluster_bits = get_be32(hd + 20);
        q->size = get_be64(hd + 24);
        uint32_t crypt = get_be32(hd + 32);
        uint32_t l1_size = get_be32(hd + 36);
        uint64_t l1_off = get_be64(hd + 40);
        uint64_t refcount_off = get_be64(hd + 48);
        uint32_t refcount_clusters = get_be32(hd + 56);
        q->n_snapshots = get_be32(hd + 60);
        uint64_t snapshots_off = get_be64(hd + 64);
        uint64_t incompat = 0;
        uint32_t header_len = V2_HEADER;
        uint8_t compression = 0;

        if (q->version == 3) {
                if (k < V3_HEADER)
                        return diag_set(d, -EINVAL, "%s: the qcow2 v3 header is cut short", q->name);
                incompat = get_be64(hd + 72);
                uint32_t refcount_order = get_be32(hd + 96);
                header_len = get_be32(hd + 100);
                if (header_len < V3_HEADER || header_len % 8 != 0)
                        return diag_set(d, -EINVAL, "%s: qcow2 header length %u is invalid (at least 104, a multiple of 8)",
                                        q->name, header_len);
                if (refcount_order > 6)
                        return diag_set(d, -EINVAL, "%s: qcow2 refcount order %u is invalid (at most 6)", q->name,
                                        refcount_order);
                if (header_len > V3_HEADER)
                        compression = hd[104];
        }
        if (q->cluster_bits < MIN_CLUSTER_BITS || q->cluster_bits > MAX_CLUSTER_BITS)
                return diag_set(d, -EINVAL, "%s: qcow2 cluster bits %u out of range (%d-%d: 512 B to 2 MiB clusters)",
                                q->name, q->cluster_bits, MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
        q->cs = UINT64_C(1) << q->cluster_bits;
        if (header_len > q->cs)
                return diag_set(d, -EINVAL, "%s: the qcow2 header (%u bytes) is larger than a cluster", q->name, header_len);
        if (crypt != 0)
                return diag_set(d, -EPROTONOSUPPORT, "%s: the qcow2 image is encrypted (%s): decrypt it with 'qemu-img "
                                "convert' first",
                                q->name, crypt == 1 ? "AES" : crypt == 2 ? "LUKS" : "unknown method");
        if (incompat & INCOMPAT_CORRUPT)
                return diag_set(d, -EINVAL, "%s: the qcow2 image is marked corrupt: check it with 'qemu-img check -r all'",
                                q->name);
        if (incompat & INCOMPAT_DATA_FILE)
                return diag_set(d, -EPROTONOSUPPORT, "%s: the qcow2 image keeps its data in an external data file: "
                                "convert it with 'qemu-img convert' first", q->name);
        q->dirty = incompat & INCOMPAT_DIRTY;
        q->extended = incompat & INCOMPAT_EXTL2;
        if (q->extended && q->cluster_bits < 14)
                return diag_set(d, -EINVAL, "%s: extended L2 entries with %" PRIu64 "-byte clusters (at least 16 KiB)",
                                q->name, q->cs);
        if (compression > 1)
                return diag_set(d, -EPROTONOSUPPORT, "%s: qcow2 compression type %u is unknown (0 deflate, 1 zstd)", q->name,
                                compression);
        if ((compression != 0) != !!(incompat & INCOMPAT_COMPRESSION))
                return diag_set(d, -EINVAL, "%s: the qcow2 compression type (%u) and its feature bit disagree", q->name,
                                compression);
        q->zstd = compression == 1;
        q->l2_bits = q->cluster_bits - (q->extended ? 4 : 3);

        /* Cluster 0 holds the header, its extensions and the backing name. */
        uint64_t c0_len = q->cs < q->file_size ? q->cs : q->file_size;
        c0 = calloc(1, (size_t) q->cs);
        if (!c0)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        r = host_read(q, 0, c0, (size_t) c0_len, "the header cluster", d);
        if (r < 0)
                return r;
        uint64_t ext_end = backing_off ? backing_off : c0_len;
        if (backing_off) {
                if (backing_len == 0 || backing_len > 1023 || backing_off < header_len || backing_off > c0_len ||
                    backing_len > c0_len - backing_off)
                        return diag_set(d, -EINVAL, "%s: the backing file name (%u bytes at byte %" PRIu64
                                        ") does not lie in the header cluster: the qcow2 file is damaged",
                                        q->name, backing_len, backing_off);
                if (memchr(c0 + backing_off, 0, backing_len))
                        return diag_set(d, -EINVAL, "%s: the backing file name holds a NUL byte: the qcow2 file is damaged",
                                        q->name);
        }
        const uint8_t *names = NULL;
        uint32_t names_len = 0;
        /* Version 2 files have extensions too, from byte 72: qemu-img
         * writes the backing format there (compat=0.10 -F raw). */
        for (uint64_t at = header_len;;) {
                if (at + 8 > ext_end)
                        return diag_set(d, -EINVAL, "%s: the header extensions run past byte %" PRIu64
                                        ": the qcow2 file is damaged", q->name, ext_end);
                uint32_t type = get_be32(c0 + at), len = get_be32(c0 + at + 4);
                if (type == EXT_END)
                        break;
                if (len > ext_end - at - 8)
                        return diag_set(d, -EINVAL, "%s: header extension 0x%08x at byte %" PRIu64
                                        " runs past byte %" PRIu64 ": the qcow2 file is damaged", q->name, type, at, ext_end);
                if (type == EXT_BACKING_FORMAT) {
                        if (len == 0 || len >= sizeof(backing_format) || memchr(c0 + at + 8, 0, len))
                                return diag_set(d, -EINVAL, "%s: the backing format extension is invalid", q->name);
                        memcpy(backing_format, c0 + at + 8, len);
                        backing_format[len] = 0;
                } else if (type == EXT_FEATURE_NAMES) {
                        names = c0 + at + 8;
                        names_len = len;
                }
                at += 8 + ((uint64_t) len + 7) / 8 * 8;
        }
        if (incompat & ~INCOMPAT_KNOWN) {
                unsigned bit = (unsigned) __builtin_ctzll(incompat & ~INCOMPAT_KNOWN);
                char nm[64] = "";
                if (names)
                        feature_name(names, names_len, bit, nm, sizeof(nm));
                return diag_set(d, -EPROTONOSUPPORT, "%s: the qcow2 image uses an unknown incompatible feature (bit %u%s): "
                                "convert it with 'qemu-img convert' first", q->name, bit, nm);
        }

        /* The L1 table: large enough for the virtual size, inside the file. */
        uint64_t clusters = div_round_up(q->size, q->cs);
        uint64_t need = div_round_up(clusters, UINT64_C(1) << q->l2_bits);
        if (q->size > (UINT64_C(1) << 62) || need > MAX_L1_BYTES / 8)
                return diag_set(d, -EINVAL, "%s: virtual size %" PRIu64 " is too large for %" PRIu64
                                "-byte clusters: the qcow2 file is damaged", q->name, q->size, q->cs);
        if (l1_size < need)
                return diag_set(d, -EINVAL, "%s: the L1 table (%u entries) is too small for the virtual size (%" PRIu64
                                " entries): the qcow2 file is damaged", q->name, l1_size, need);
        if (need > 0) {
                const char *bad = check_host(q, l1_off, need * 8);
                if (bad)
                        return diag_set(d, -EINVAL, "%s: the L1 table (byte %" PRIu64 ") %s: the qcow2 file is damaged",
                                        q->name, l1_off, bad);
        }
        if (refcount_clusters > 0 && check_host(q, refcount_off, 1))
                return diag_set(d, -EINVAL, "%s: the refcount table (byte %" PRIu64 ") %s: the qcow2 file is damaged",
                                q->name, refcount_off, check_host(q, refcount_off, 1));
        if (q->n_snapshots > 0 && check_host(q, snapshots_off, 1))
                return diag_set(d, -EINVAL, "%s: the snapshot table (byte %" PRIu64 ") %s: the qcow2 file is damaged",
                                q->name, snapshots_off, check_host(q, snapshots_off, 1));
        q->l1_entries = (size_t) need;
        q->l1 = calloc(need ? need : 1, sizeof(uint64_t));
        if (!q->l1)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        if (need > 0) {
                r = host_read(q, l1_off, q->l1, (size_t) need * 8, "the L1 table", d);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < need; i++)
                        q->l1[i] = get_be64(&q->l1[i]);
        }

        /* Caches and decoders. */
        q->n_slots = (size_t) (L2_CACHE_BYTES / q->cs);
        if (q->n_slots < L2_CACHE_MIN)
                q->n_slots = L2_CACHE_MIN;
        if (q->n_slots > L2_CACHE_MAX)
                q->n_slots = L2_CACHE_MAX;
        q->slots = calloc(q->n_slots, sizeof(L2Slot));
        /* Decoders are made as threads need them; each takes about 3
         * clusters, and those idle are kept up to DECODE_CACHE_BYTES. */
        q->max_idle = (size_t) (DECODE_CACHE_BYTES / (3 * q->cs));
        if (q->max_idle < DECODE_CACHE_MIN)
                q->max_idle = DECODE_CACHE_MIN;
        if (q->max_idle > DECODE_CACHE_MAX)
                q->max_idle = DECODE_CACHE_MAX;
        if (!q->slots)
                return diag_set(d, -ENOMEM, "%s: out of memory", q->name);
        for (size_t i = 0; i < q->n_slots; i++)
                if (!(q->slots[i].data = malloc((size_t) q->cs)))
                        return diag_set(d, -ENOMEM, "%s: out of memory", q->name);

        r = check_tables(q, d);
        if (r < 0)
                return r;
        if (backing_off) {
                char name[1024];
                memcpy(name, c0 + backing_off, backing_len);
                name[backing_len] = 0;
                r = open_backing(q, name, backing_format, d);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(q);
        return 0;
}

int qcow2_open(const Qcow2Host *h, Qcow2 **ret, Diag *d) {
        return open_at_depth(h, 0, -1, ret, d);
}

int qcow2_open_path(const char *path, Qcow2 **ret, Diag *d) {
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0 || fstat(fd, &st) < 0) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                return diag_set(d, -e, "cannot open image '%s': %s", path, strerror(e));
        }
        dir = dir_of(path);
        if (!dir) {
                close(fd);
                return diag_set(d, -ENOMEM, "%s: out of memory", path);
        }
        uint64_t size = (uint64_t) st.st_size;
        if (S_ISBLK(st.st_mode)) {
                off_t end = lseek(fd, 0, SEEK_END);
                size = end > 0 ? (uint64_t) end : 0;
        }
        Qcow2Host h = { .name = path, .pread = fd_pread, .ctx = (void *) (intptr_t) fd, .size = size, .dir = dir };
        return open_at_depth(&h, 0, fd, ret, d);
}
