/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The qcow2 reader (qcow2.h): reading the virtual disk. Format facts:
 * FORMATS.md §12. The header and every table entry are checked once, at
 * open (qcow2-open.c); reads then decode the same entries with the same
 * checks (a file that changes under us is caught as well as one that was
 * damaged before). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "qcow2-internal.h"

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

bool qcow2_detect(const void *head, size_t n) {
        return n >= 4 && get_be32(head) == QCOW2_MAGIC;
}

uint64_t qcow2_size(const Qcow2 *q) {
        return q->size;
}

ssize_t qcow2_fd_pread(void *ctx, uint64_t off, void *buf, size_t n) {
        return pread_full((int) (intptr_t) ctx, buf, n, off);
}

int qcow2_host_read(Qcow2 *q, uint64_t off, void *buf, size_t n, const char *what, Diag *d) {
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
const char *qcow2_check_host(const Qcow2 *q, uint64_t off, uint64_t len) {
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
const char *qcow2_check_entry(const Qcow2 *q, uint64_t w, uint64_t w2) {
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
                return qcow2_check_host(q, host, 1);
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
        int r = qcow2_host_read(q, off, victim->data, (size_t) q->cs, "an L2 table", d);
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
                const char *bad = qcow2_check_entry(q, w, w2);
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
        int r = qcow2_host_read(q, off, dec->cbuf, (size_t) len, "a compressed cluster", d);
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
