/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "copy.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "simg.h"

/* Buffers: large enough to keep syscalls and queue traffic rare, few
 * enough to keep memory at a few tens of MiB whatever the image. Sixteen
 * rather than ten let the decoder run further ahead of hashing and
 * writing before an unmapped stretch it must decode alone (zstd copies of
 * the bench's vendor image: median 0.86 s instead of 1.07 s). */
#define CHUNK_SIZE (4u << 20)
#define N_CHUNKS 16

/* --skip-identical compares, and --retries checks, in pieces of 1 MiB of a
 * chunk (smaller at a range's end): what a changed file or a bad spot on a
 * card costs in rewriting, and the buffer each target needs for it. */
#define PIECE_SIZE (1u << 20)
#define N_PIECES (CHUNK_SIZE / PIECE_SIZE)
#define ALL_PIECES ((1u << N_PIECES) - 1)
_Static_assert(N_PIECES <= 32, "a chunk's pieces are bits of a uint32_t");
/* check_written: the chunks a writer keeps until a flush and a read back
 * (16 MiB: one flush per 16 MiB written). It holds none while it waits for
 * more, so that the pool never runs dry for the others. */
#define PENDING_MAX 4

typedef struct Chunk {
        uint8_t *data;
        size_t len;
        uint64_t offset;        /* in the image */
        size_t range;           /* index into the bmap's ranges, or SIZE_MAX */
        bool range_end;         /* the last chunk of its range */
        atomic_int refs;        /* writers still to write it */
} Chunk;

/* A bounded FIFO of chunks. pop returns NULL once the queue is closed and
 * empty, or at once when the copy is aborting. */
typedef struct Queue {
        Chunk *items[N_CHUNKS + 1];
        size_t head, count;
        bool closed;
        pthread_mutex_t lock;
        pthread_cond_t changed;
} Queue;

typedef struct Copy Copy;

typedef struct Writer {
        Copy *c;
        Target *target;
        Queue q;
        pthread_t tid;
        atomic_bool failed;     /* set by its thread, read by the hasher and the caller */
        CopyTargetResult *result;
        atomic_uint_fast64_t written;
        atomic_uint_fast64_t skipped;
        double cpu;

        /* skip_identical: the comparing thread in front of the writer,
         * its queue, and which pieces of each chunk (by its index in the
         * pool) differ from what the target holds. */
        bool comparing;
        Queue pre_q;
        pthread_t pre_tid;
        uint32_t differs[N_CHUNKS];
        uint8_t *cmp_buf;
        /* check_written: chunks written and not yet read back. */
        Chunk *pending[PENDING_MAX];
        uint32_t pending_pieces[PENDING_MAX];
        size_t n_pending;
        uint8_t *back_buf;
        size_t last_retried;    /* the range counted last in retried_ranges */
} Writer;

struct Copy {
        const char *name;
        Stream *src;
        const Bmap *bmap;
        uint64_t image_size;
        bool verify;
        const volatile sig_atomic_t *cancel;
        const CopyOptions *o;
        double start;

        Chunk chunks[N_CHUNKS];
        Queue free_q, hash_q;
        Writer writers[COPY_MAX_TARGETS];
        size_t n_writers;
        atomic_size_t active_writers;

        atomic_bool abort;
        pthread_mutex_t err_lock;
        int error;
        Diag diag;
        atomic_uint_fast64_t read_total;
        atomic_bool reader_done;
        double read_cpu, hash_cpu;

        /* The calling thread waits on this between progress reports; each
         * writer signals it when it ends, so the end is seen at once. */
        pthread_mutex_t done_lock;
        pthread_cond_t done_cond;
        size_t writers_ended;

        pthread_mutex_t event_lock;     /* one CopyOptions.event call at a time */
};

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double thread_cpu(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void queue_init(Queue *q) {
        *q = (Queue) {};
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->changed, NULL);
}

static void queue_destroy(Queue *q) {
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->changed);
}

static void queue_push(Queue *q, Chunk *c) {
        pthread_mutex_lock(&q->lock);
        /* Never full: there are only N_CHUNKS chunks in all. */
        q->items[(q->head + q->count) % (N_CHUNKS + 1)] = c;
        q->count++;
        pthread_cond_broadcast(&q->changed);
        pthread_mutex_unlock(&q->lock);
}

static Chunk *queue_pop(Copy *c, Queue *q) {
        Chunk *ch = NULL;
        pthread_mutex_lock(&q->lock);
        while (q->count == 0 && !q->closed && !atomic_load(&c->abort))
                pthread_cond_wait(&q->changed, &q->lock);
        if (q->count > 0 && !atomic_load(&c->abort)) {
                ch = q->items[q->head];
                q->head = (q->head + 1) % (N_CHUNKS + 1);
                q->count--;
        }
        pthread_mutex_unlock(&q->lock);
        return ch;
}

static bool queue_empty(Queue *q) {
        pthread_mutex_lock(&q->lock);
        bool empty = q->count == 0;
        pthread_mutex_unlock(&q->lock);
        return empty;
}

static void queue_close(Queue *q) {
        pthread_mutex_lock(&q->lock);
        q->closed = true;
        pthread_cond_broadcast(&q->changed);
        pthread_mutex_unlock(&q->lock);
}

static void wake_all(Copy *c) {
        queue_close(&c->free_q);
        queue_close(&c->hash_q);
        for (size_t i = 0; i < c->n_writers; i++) {
                queue_close(&c->writers[i].pre_q);
                queue_close(&c->writers[i].q);
        }
}

static void emit(Copy *c, const CopyEvent *e) {
        if (!c->o || !c->o->event)
                return;
        pthread_mutex_lock(&c->event_lock);
        c->o->event(c->o->userdata, e);
        pthread_mutex_unlock(&c->event_lock);
}

/* The first error stops the whole copy. */
static void fail(Copy *c, int err, const Diag *d) {
        pthread_mutex_lock(&c->err_lock);
        if (c->error == 0) {
                c->error = err;
                if (d)
                        c->diag = *d;
        }
        pthread_mutex_unlock(&c->err_lock);
        atomic_store(&c->abort, true);
        wake_all(c);
        pthread_mutex_lock(&c->done_lock);
        pthread_cond_broadcast(&c->done_cond);
        pthread_mutex_unlock(&c->done_lock);
}

static bool stopping(Copy *c) {
        if (c->cancel && *c->cancel && !atomic_load(&c->abort)) {
                Diag d;
                diag_set(&d, -EINTR, "interrupted");
                fail(c, -EINTR, &d);
        }
        return atomic_load(&c->abort);
}

static void release(Copy *c, Chunk *ch) {
        if (atomic_fetch_sub(&ch->refs, 1) == 1)
                queue_push(&c->free_q, ch);
}

/* Reads one span [start, end) of the image into chunks. */
static int read_span(Copy *c, uint64_t start, uint64_t end, size_t range, Diag *d) {
        uint64_t at = stream_offset(c->src);
        int r;

        if (at < start) {
                r = stream_skip(c->src, start - at, d);
                if (r < 0)
                        return r;
        }
        while (start < end) {
                Chunk *ch = queue_pop(c, &c->free_q);
                if (!ch)
                        return -ECANCELED;
                size_t want = end - start < CHUNK_SIZE ? (size_t) (end - start) : CHUNK_SIZE;
                size_t got = 0;
                while (got < want) {
                        ssize_t k = stream_read(c->src, ch->data + got, want - got, d);
                        if (k < 0) {
                                queue_push(&c->free_q, ch);
                                return (int) k;
                        }
                        if (k == 0)
                                break;
                        got += (size_t) k;
                }
                if (got < want && end != UINT64_MAX) {
                        queue_push(&c->free_q, ch);
                        return diag_set(d, -EIO,
                                        "%s: the image ends at byte %llu, but the bmap says it has %llu bytes: "
                                        "the image is incomplete, or the bmap belongs to another image",
                                        c->name, (unsigned long long) (start + got),
                                        (unsigned long long) c->image_size);
                }
                if (got == 0) {
                        /* The end of a stream of unknown size. */
                        queue_push(&c->free_q, ch);
                        break;
                }
                ch->len = got;
                ch->offset = start;
                ch->range = range;
                start += got;
                ch->range_end = start >= end || got < want;
                atomic_fetch_add(&c->read_total, got);
                queue_push(&c->hash_q, ch);
                if (got < want)
                        break; /* the end of a stream of unknown size */
                if (stopping(c))
                        return -ECANCELED;
        }
        return 0;
}

/* Without a bmap: the whole image, or, from an image whose container says
 * which stretches it gives (an Android sparse image's chunks), only those:
 * what it leaves undefined is skipped, and stays as it was on the target. */
static int read_stretches(Copy *c, Diag *d) {
        for (;;) {
                uint64_t len, at = stream_offset(c->src);
                bool data;
                int r = stream_next_stretch(c->src, &len, &data, d);
                if (r < 0)
                        return r;
                if (len == UINT64_MAX)
                        return read_span(c, at, c->image_size, SIZE_MAX, d);
                if (len == 0)
                        return 0;
                r = data ? read_span(c, at, at + len, SIZE_MAX, d) : stream_skip(c->src, len, d);
                if (r < 0)
                        return r;
                if (stopping(c))
                        return -ECANCELED;
        }
}

static int drain(Copy *c, Diag *d) {
        Chunk *ch = queue_pop(c, &c->free_q);
        int r = 0;

        if (!ch)
                return -ECANCELED;
        for (;;) {
                ssize_t k = stream_read(c->src, ch->data, CHUNK_SIZE, d);
                if (k < 0) {
                        r = (int) k;
                        break;
                }
                if (k == 0 || stopping(c))
                        break;
        }
        queue_push(&c->free_q, ch);
        uint64_t end = stream_offset(c->src);
        /* A sparse image pads the image's last partial block. */
        if (r >= 0 && c->image_size != UINT64_MAX && end != c->image_size &&
            !simg_pads(stream_simg_info(c->src), end, c->image_size))
                r = diag_set(d, -EBADMSG,
                             "%s: the image is %llu bytes, but the bmap says %llu: the image is %s, or the bmap "
                             "belongs to another image",
                             c->name, (unsigned long long) end, (unsigned long long) c->image_size,
                             end < c->image_size ? "incomplete" : "longer");
        return r;
}

static void *reader_main(void *arg) {
        Copy *c = arg;
        Diag d = {};
        int r = 0;

        if (!c->bmap)
                r = read_stretches(c, &d);
        else
                for (size_t i = 0; i < c->bmap->n_ranges && r >= 0 && !stopping(c); i++) {
                        Extent x = bmap_range_bytes(c->bmap, i);
                        r = read_span(c, x.start, x.end, i, &d);
                }
        /* A compressed image is decoded to its end even past the last
         * range: its own checks (CRCs, content checksums, the final frame)
         * sit there, and a damaged or truncated stream must never pass as
         * a successful copy. Its length must also be the bmap's. */
        if (r >= 0 && stream_is_encoded(c->src) && !stopping(c))
                r = drain(c, &d);
        /* -ECANCELED is how the reader learns that someone else stopped
         * the copy, or (from a stalled pipe) that a signal asked it to:
         * make sure that stops the copy too, and is never taken for the
         * end of the image. */
        if (r == -ECANCELED && !stopping(c))
                fail(c, r, &d);
        else if (r < 0 && r != -ECANCELED)
                fail(c, r, &d);
        c->read_cpu = thread_cpu();
        atomic_store(&c->reader_done, true);
        queue_close(&c->hash_q);
        return NULL;
}

static void hex(const uint8_t *b, size_t n, char *out) {
        hex_encode(b, n, out);
}

/* Hashes each range as its chunks pass, then hands the chunks on. */
static void *hasher_main(void *arg) {
        Copy *c = arg;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        const EVP_MD *md = NULL;
        size_t cur = SIZE_MAX;
        bool hashing = false;

        uint8_t (*record)[CHECKSUM_MAX_SIZE] = c->o && c->bmap ? c->o->record : NULL;

        if (record)
                md = EVP_sha256();
        else if (c->bmap && c->verify)
                md = c->bmap->checksum_type == CHECKSUM_SHA1 ? EVP_sha1()
                     : c->bmap->checksum_type == CHECKSUM_SHA256 ? EVP_sha256()
                                                                 : NULL;
        if (!ctx) {
                Diag d;
                fail(c, diag_set(&d, -ENOMEM, "out of memory"), &d);
        }
        for (Chunk *ch; ctx && (ch = queue_pop(c, &c->hash_q));) {
                if (md && ch->range != cur) {
                        cur = ch->range;
                        hashing = (record || c->bmap->ranges[cur].has_checksum) && EVP_DigestInit_ex(ctx, md, NULL);
                }
                if (hashing)
                        EVP_DigestUpdate(ctx, ch->data, ch->len);
                if (hashing && ch->range_end) {
                        const BmapRange *x = &c->bmap->ranges[cur];
                        uint8_t got[CHECKSUM_MAX_SIZE];
                        size_t n = checksum_size(c->bmap->checksum_type);
                        EVP_DigestFinal_ex(ctx, got, NULL);
                        hashing = false;
                        if (record)
                                memcpy(record[cur], got, checksum_size(CHECKSUM_SHA256));
                        else if (memcmp(got, x->checksum, n) != 0) {
                                char want_hex[2 * CHECKSUM_MAX_SIZE + 1], got_hex[2 * CHECKSUM_MAX_SIZE + 1];
                                Extent bytes = bmap_range_bytes(c->bmap, cur);
                                Diag d;
                                hex(x->checksum, n, want_hex);
                                hex(got, n, got_hex);
                                const char *member = stream_member(c->src);
                                /* Which image: with several in one archive,
                                 * the member is half the answer. */
                                diag_set(&d, -EBADMSG,
                                         "%s%s%s%s: checksum mismatch in range %llu-%llu (bytes %llu-%llu): the bmap "
                                         "says %s %s, the image gives %s: the image is damaged or the bmap belongs to "
                                         "another image",
                                         c->name, member ? " (member '" : "", member ? member : "", member ? "')" : "",
                                         (unsigned long long) x->blocks.start, (unsigned long long) x->blocks.end - 1,
                                         (unsigned long long) bytes.start, (unsigned long long) bytes.end - 1,
                                         checksum_name(c->bmap->checksum_type), want_hex, got_hex);
                                queue_push(&c->free_q, ch);
                                fail(c, -EBADMSG, &d);
                                break;
                        }
                }
                size_t active = 0;
                for (size_t i = 0; i < c->n_writers; i++)
                        active += !c->writers[i].failed;
                if (active == 0) {
                        queue_push(&c->free_q, ch);
                        continue;
                }
                atomic_store(&ch->refs, (int) c->n_writers);
                for (size_t i = 0; i < c->n_writers; i++)
                        queue_push(c->writers[i].comparing ? &c->writers[i].pre_q : &c->writers[i].q, ch);
        }
        EVP_MD_CTX_free(ctx);
        c->hash_cpu = thread_cpu();
        for (size_t i = 0; i < c->n_writers; i++)
                queue_close(c->writers[i].comparing ? &c->writers[i].pre_q : &c->writers[i].q);
        return NULL;
}

/* One failing target does not stop the others; the last one does. */
static void writer_failed(Writer *w, int r, const Diag *d) {
        Copy *c = w->c;

        w->failed = true;
        w->result->error = r;
        snprintf(w->result->message, sizeof(w->result->message), "%s", d->msg);
        if (atomic_fetch_sub(&c->active_writers, 1) == 1) {
                Diag all;
                diag_set(&all, r, "%s", d->msg);
                fail(c, r, &all);
        }
}

static size_t chunk_pieces(const Chunk *ch) {
        return (ch->len + PIECE_SIZE - 1) / PIECE_SIZE;
}

static size_t piece_len(const Chunk *ch, size_t i) {
        size_t off = i * PIECE_SIZE;
        return ch->len - off < PIECE_SIZE ? ch->len - off : PIECE_SIZE;
}

/* "range 8-263 (bytes 32768-1081343)", for the messages about a piece. */
static void describe_range(const Copy *c, size_t range, char *buf, size_t len) {
        if (!c->bmap || range == SIZE_MAX) {
                snprintf(buf, len, "the image");
                return;
        }
        const BmapRange *x = &c->bmap->ranges[range];
        Extent b = bmap_range_bytes(c->bmap, range);
        snprintf(buf, len, "range %llu-%llu (bytes %llu-%llu)", (unsigned long long) x->blocks.start,
                 (unsigned long long) x->blocks.end - 1, (unsigned long long) b.start,
                 (unsigned long long) b.end - 1);
}

static void note(Writer *w, const char *fmt, ...) _printf_(2, 3);
static void note(Writer *w, const char *fmt, ...) {
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        emit(w->c, &(CopyEvent) { .kind = COPY_EVENT_NOTE, .target = (size_t) (w - w->c->writers),
                                  .range = SIZE_MAX, .message = line });
}

/* Announces that bytes [off, off + len) of ch are written again. */
static void announce_retry(Writer *w, const Chunk *ch, size_t off, size_t len, unsigned attempt, bool write_error,
                           const char *why) {
        Copy *c = w->c;
        char where[160], line[1024];

        describe_range(c, ch->range, where, sizeof(where));
        if (write_error)
                snprintf(line, sizeof(line), "%s, in %s: writing it again, attempt %u of %u", why, where, attempt,
                         c->o->retries);
        else
                snprintf(line, sizeof(line), "%s: bytes %llu-%llu of %s read back wrong: writing them again, attempt "
                         "%u of %u", target_path(w->target), (unsigned long long) (ch->offset + off),
                         (unsigned long long) (ch->offset + off + len - 1), where, attempt, c->o->retries);
        if (w->result->retried_ranges == 0 || w->last_retried != ch->range) {
                w->result->retried_ranges++;
                w->last_retried = ch->range;
        }
        emit(c, &(CopyEvent) { .kind = COPY_EVENT_RETRY, .target = (size_t) (w - c->writers), .range = ch->range,
                               .start = ch->offset + off, .end = ch->offset + off + len, .attempt = attempt,
                               .retries = c->o->retries, .write_error = write_error, .message = line });
}

/* Writes bytes [off, off + len) of ch; a write error (EIO: the device
 * failed it) is tried again up to retries times. */
static int write_piece(Writer *w, const Chunk *ch, size_t off, size_t len, Diag *d) {
        unsigned retries = w->c->o ? w->c->o->retries : 0;

        for (unsigned attempt = 0;; attempt++) {
                int r = target_write(w->target, ch->data + off, len, ch->offset + off, d);
                if (r != -EIO || retries == 0)
                        return r;
                if (attempt == retries) {
                        char why[sizeof(d->msg)], where[160];
                        snprintf(why, sizeof(why), "%s", d->msg);
                        describe_range(w->c, ch->range, where, sizeof(where));
                        return diag_set(d, r, "%s, in %s, still after %u retries", why, where, retries);
                }
                announce_retry(w, ch, off, len, attempt + 1, true, d->msg);
        }
}

/* Writes the pieces of ch that are set in pieces, each run of them at once. */
static int write_pieces(Writer *w, const Chunk *ch, uint32_t pieces, Diag *d) {
        size_t n = chunk_pieces(ch);

        for (size_t i = 0; i < n;) {
                if (!(pieces & (1u << i))) {
                        i++;
                        continue;
                }
                size_t j = i;
                while (j < n && (pieces & (1u << j)))
                        j++;
                size_t off = i * PIECE_SIZE, len = (j - 1) * PIECE_SIZE + piece_len(ch, j - 1) - off;
                int r = write_piece(w, ch, off, len, d);
                if (r < 0)
                        return r;
                i = j;
        }
        return 0;
}

/* check_written: flushes the target. A buffered write that the device
 * fails is reported by the flush, not by the write, and the kernel does not
 * say which: every piece written since the last flush (the pending ones) is
 * written again and flushed, up to retries times. */
static int sync_pending(Writer *w, Diag *d) {
        unsigned retries = w->c->o->retries;

        for (unsigned attempt = 0;; attempt++) {
                int r = target_sync(w->target, d);
                if (r != -EIO || retries == 0)
                        return r;
                char why[sizeof(d->msg)];
                snprintf(why, sizeof(why), "%s", d->msg);
                if (attempt == retries)
                        return diag_set(d, r, "%s, still after %u retries", why, retries);
                for (size_t k = 0; r == -EIO && k < w->n_pending; k++) {
                        const Chunk *ch = w->pending[k];
                        uint32_t p = w->pending_pieces[k];
                        /* From the first piece written to the end of the last. */
                        size_t first = (size_t) __builtin_ctz(p), last = 31 - (size_t) __builtin_clz(p);
                        size_t off = first * PIECE_SIZE;
                        announce_retry(w, ch, off, last * PIECE_SIZE + piece_len(ch, last) - off, attempt + 1, true,
                                       why);
                        r = write_pieces(w, ch, p, d);
                        if (r == 0)
                                r = -EIO;
                }
                if (r != -EIO)
                        return r;
        }
}

/* check_written: flushes what the pending chunks put on the target, reads
 * each piece written back past the cache and compares it with the chunk
 * still in memory; a piece that differs is written, flushed and read again,
 * up to retries times. The chunks are released whatever happens. */
static int check_pending(Writer *w, Diag *d) {
        Copy *c = w->c;
        unsigned retries = c->o->retries;
        int r = 0;

        if (!w->failed && !atomic_load(&c->abort))
                r = sync_pending(w, d);
        else
                r = 1;  /* nothing to check */
        for (size_t k = 0; r == 0 && k < w->n_pending; k++) {
                const Chunk *ch = w->pending[k];
                for (size_t i = 0; r == 0 && i < chunk_pieces(ch); i++) {
                        size_t off = i * PIECE_SIZE, len = piece_len(ch, i);
                        if (!(w->pending_pieces[k] & (1u << i)))
                                continue;
                        for (unsigned attempt = 0; r == 0; attempt++) {
                                r = target_read(w->target, w->back_buf, len, ch->offset + off, d);
                                if (r < 0 || memcmp(w->back_buf, ch->data + off, len) == 0)
                                        break;
                                if (attempt == retries) {
                                        char where[160];
                                        describe_range(c, ch->range, where, sizeof(where));
                                        r = diag_set(d, -EIO,
                                                     "%s: bytes %llu-%llu of %s read back wrong, still after %u "
                                                     "retries: the device is failing",
                                                     target_path(w->target), (unsigned long long) (ch->offset + off),
                                                     (unsigned long long) (ch->offset + off + len - 1), where,
                                                     retries);
                                        break;
                                }
                                announce_retry(w, ch, off, len, attempt + 1, false, NULL);
                                r = write_piece(w, ch, off, len, d);
                                if (r == 0)
                                        r = target_sync(w->target, d);
                        }
                }
        }
        for (size_t k = 0; k < w->n_pending; k++)
                release(c, w->pending[k]);
        w->n_pending = 0;
        return r < 0 ? r : 0;
}

/* skip_identical: reads what the target holds under each piece of a chunk
 * before its writer gets the chunk, and marks the pieces that differ. It
 * runs ahead of the writer by as many chunks as the queue holds, so that
 * the target's reads overlap the decoding and the writes of earlier
 * chunks. */
static void *comparer_main(void *arg) {
        Writer *w = arg;
        Copy *c = w->c;
        bool can_read = true;
        Diag d = {};

        for (Chunk *ch; (ch = queue_pop(c, &w->pre_q));) {
                uint32_t differs = 0;
                for (size_t i = 0; i < chunk_pieces(ch); i++) {
                        size_t off = i * PIECE_SIZE, len = piece_len(ch, i);
                        if (can_read && !w->failed &&
                            target_read(w->target, w->cmp_buf, len, ch->offset + off, &d) < 0) {
                                /* Written as it would be without the option. */
                                can_read = false;
                                note(w, "%s; --skip-identical: it is written in full from here on", d.msg);
                        }
                        if (!can_read || memcmp(w->cmp_buf, ch->data + off, len) != 0)
                                differs |= 1u << i;
                }
                w->differs[ch - c->chunks] = differs;
                queue_push(&w->q, ch);
        }
        queue_close(&w->q);
        return NULL;
}

static void *writer_main(void *arg) {
        Writer *w = arg;
        Copy *c = w->c;
        bool check = c->o && c->o->check_written && target_kind(w->target) != TARGET_NULL;
        Diag d = {};
        int r;

        for (;;) {
                /* Never wait for more while holding chunks that the reader
                 * needs back. */
                if (w->n_pending > 0 && (w->n_pending == PENDING_MAX || queue_empty(&w->q)) &&
                    (r = check_pending(w, &d)) < 0)
                        writer_failed(w, r, &d);
                Chunk *ch = queue_pop(c, &w->q);
                if (!ch)
                        break;
                uint32_t all = (uint32_t) ((1ull << chunk_pieces(ch)) - 1);
                uint32_t pieces = w->comparing ? w->differs[ch - c->chunks] & all : all;
                if (!w->failed) {
                        r = write_pieces(w, ch, pieces, &d);
                        if (r < 0)
                                writer_failed(w, r, &d);
                        else {
                                uint64_t n = 0;
                                for (size_t i = 0; i < chunk_pieces(ch); i++)
                                        if (pieces & (1u << i))
                                                n += piece_len(ch, i);
                                atomic_fetch_add(&w->written, n);
                                atomic_fetch_add(&w->skipped, ch->len - n);
                        }
                }
                if (!w->failed && check && pieces) {
                        w->pending[w->n_pending] = ch;
                        w->pending_pieces[w->n_pending++] = pieces;
                        continue;
                }
                release(c, ch);
        }
        if (w->n_pending > 0 && (r = check_pending(w, &d)) < 0)
                writer_failed(w, r, &d);
        /* The queue closes after the reader has read the whole image and the
         * hasher has checked it, or on abort: only in the first case is
         * this target complete, and can be flushed now, beside the others. */
        if (!w->failed && !atomic_load(&c->abort) && c->o && c->o->complete) {
                r = target_complete(w->target, c->o->complete, atomic_load(&c->read_total), &d);
                if (r < 0)
                        writer_failed(w, r, &d);
                else
                        w->result->finished = true;
        }
        w->result->seconds = now() - c->start;
        w->cpu = thread_cpu();
        pthread_mutex_lock(&c->done_lock);
        c->writers_ended++;
        pthread_cond_signal(&c->done_cond);
        pthread_mutex_unlock(&c->done_lock);
        return NULL;
}

static uint64_t total_to_copy(const Bmap *b, uint64_t image_size) {
        uint64_t t = 0;
        if (!b)
                return image_size;
        for (size_t i = 0; i < b->n_ranges; i++) {
                Extent x = bmap_range_bytes(b, i);
                t += x.end - x.start;
        }
        return t;
}

int copy_image(Stream *src, const Bmap *bmap, uint64_t image_size, Target **targets, size_t n_targets,
               const CopyOptions *o, CopyTargetResult *results, uint64_t *ret_total, Diag *d) {
        Copy *c;
        pthread_t reader, hasher;
        uint64_t total = total_to_copy(bmap, image_size);
        int r = 0;

        if (n_targets == 0 || n_targets > COPY_MAX_TARGETS)
                return diag_set(d, -EINVAL, "between 1 and %d targets are taken", COPY_MAX_TARGETS);
        c = calloc(1, sizeof(Copy));
        if (!c)
                return -ENOMEM;
        c->src = src;
        c->name = o && o->source_name ? o->source_name : "the image";
        c->bmap = bmap;
        c->image_size = image_size;
        c->verify = o ? o->verify : true;
        c->cancel = o ? o->cancel : NULL;
        c->o = o;
        c->start = now();
        pthread_mutex_init(&c->err_lock, NULL);
        pthread_mutex_init(&c->done_lock, NULL);
        pthread_mutex_init(&c->event_lock, NULL);
        /* A clock step (NTP on a board without an RTC) must not stall the
         * progress reports and cancel checks. */
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&c->done_cond, &attr);
        pthread_condattr_destroy(&attr);
        queue_init(&c->free_q);
        queue_init(&c->hash_q);
        for (size_t i = 0; i < N_CHUNKS; i++) {
                c->chunks[i].data = aligned_alloc(4096, CHUNK_SIZE);
                if (!c->chunks[i].data)
                        r = -ENOMEM;
                else
                        queue_push(&c->free_q, &c->chunks[i]);
        }
        c->n_writers = n_targets;
        atomic_store(&c->active_writers, n_targets);
        for (size_t i = 0; i < n_targets; i++) {
                Writer *w = &c->writers[i];
                *w = (Writer) { .c = c, .target = targets[i], .result = &results[i] };
                results[i] = (CopyTargetResult) {};
                queue_init(&w->q);
                queue_init(&w->pre_q);
                w->comparing = o && o->skip_identical && target_can_compare(targets[i]);
                /* Aligned for O_DIRECT reads. */
                if (w->comparing && !(w->cmp_buf = aligned_alloc(4096, PIECE_SIZE)))
                        r = -ENOMEM;
                if (o && o->check_written && target_kind(targets[i]) != TARGET_NULL &&
                    !(w->back_buf = aligned_alloc(4096, PIECE_SIZE)))
                        r = -ENOMEM;
        }
        if (r < 0)
                goto out;

        size_t started = 0, comparers = 0;
        for (; comparers < n_targets; comparers++)
                if (c->writers[comparers].comparing &&
                    pthread_create(&c->writers[comparers].pre_tid, NULL, comparer_main, &c->writers[comparers]) != 0)
                        break;
        for (; comparers == n_targets && started < n_targets; started++)
                if (pthread_create(&c->writers[started].tid, NULL, writer_main, &c->writers[started]) != 0)
                        break;
        bool hasher_up = started == n_targets && pthread_create(&hasher, NULL, hasher_main, c) == 0;
        bool reader_up = hasher_up && pthread_create(&reader, NULL, reader_main, c) == 0;
        if (!reader_up) {
                Diag e;
                fail(c, diag_set(&e, -EAGAIN, "cannot start the copy threads"), &e);
                if (hasher_up)
                        queue_close(&c->hash_q);
        }

        /* This thread reports progress and watches for a cancel request. */
        double last_event = c->start;
        while (reader_up) {
                uint64_t done = UINT64_MAX;
                for (size_t i = 0; i < n_targets; i++) {
                        uint64_t handled = atomic_load(&c->writers[i].written) + atomic_load(&c->writers[i].skipped);
                        if (!c->writers[i].failed && handled < done)
                                done = handled;
                }
                if (done == UINT64_MAX)
                        done = 0;
                if (o && o->event && now() - last_event >= 1.0) {
                        last_event = now();
                        for (size_t i = 0; i < n_targets; i++)
                                if (!c->writers[i].failed)
                                        emit(c, &(CopyEvent) { .kind = COPY_EVENT_PROGRESS, .target = i,
                                                               .written = atomic_load(&c->writers[i].written),
                                                               .skipped = atomic_load(&c->writers[i].skipped),
                                                               .seconds = last_event - c->start,
                                                               .range = SIZE_MAX });
                }
                if (o && o->progress)
                        o->progress(o->userdata, done, total == UINT64_MAX ? atomic_load(&c->read_total) : total);
                (void) stopping(c);
                /* Up to a tenth of a second, less when the last writer ends. */
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_nsec += 100 * 1000 * 1000;
                if (until.tv_nsec >= 1000 * 1000 * 1000) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000 * 1000 * 1000;
                }
                pthread_mutex_lock(&c->done_lock);
                if (c->writers_ended < n_targets && !atomic_load(&c->abort))
                        pthread_cond_timedwait(&c->done_cond, &c->done_lock, &until);
                bool all_done = c->writers_ended == n_targets;
                pthread_mutex_unlock(&c->done_lock);
                if (all_done || atomic_load(&c->abort))
                        break;
        }
        if (reader_up)
                pthread_join(reader, NULL);
        if (hasher_up)
                pthread_join(hasher, NULL);
        for (size_t i = 0; i < comparers; i++)
                if (c->writers[i].comparing) {
                        /* Its queue was closed if the hasher never started. */
                        if (!hasher_up)
                                queue_close(&c->writers[i].pre_q);
                        pthread_join(c->writers[i].pre_tid, NULL);
                }
        for (size_t i = 0; i < started; i++)
                pthread_join(c->writers[i].tid, NULL);
        for (size_t i = 0; i < n_targets; i++) {
                results[i].written = atomic_load(&c->writers[i].written);
                results[i].skipped = atomic_load(&c->writers[i].skipped);
        }
        if (o && o->progress && c->error == 0)
                o->progress(o->userdata, total == UINT64_MAX ? atomic_load(&c->read_total) : total,
                            total == UINT64_MAX ? atomic_load(&c->read_total) : total);
        if (ret_total)
                *ret_total = atomic_load(&c->read_total);
        if (o && o->stats) {
                *o->stats = (CopyStats) { .read_cpu = c->read_cpu, .hash_cpu = c->hash_cpu };
                for (size_t i = 0; i < started; i++)
                        if (c->writers[i].cpu > o->stats->write_cpu)
                                o->stats->write_cpu = c->writers[i].cpu;
        }
        r = c->error;
        if (r < 0 && d)
                *d = c->diag;
out:
        for (size_t i = 0; i < N_CHUNKS; i++)
                free(c->chunks[i].data);
        for (size_t i = 0; i < n_targets; i++) {
                queue_destroy(&c->writers[i].q);
                queue_destroy(&c->writers[i].pre_q);
                free(c->writers[i].cmp_buf);
                free(c->writers[i].back_buf);
        }
        queue_destroy(&c->free_q);
        queue_destroy(&c->hash_q);
        pthread_mutex_destroy(&c->err_lock);
        pthread_mutex_destroy(&c->done_lock);
        pthread_mutex_destroy(&c->event_lock);
        pthread_cond_destroy(&c->done_cond);
        free(c);
        return r;
}
