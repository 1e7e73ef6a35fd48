/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hash.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"

/* Large reads keep the syscall count low; the buffer stays in L2-friendly
 * pieces for the digest. */
#define HASH_CHUNK (4u << 20)

static const EVP_MD *md_for(ChecksumType t) {
        switch (t) {
        case CHECKSUM_SHA1:
                return EVP_sha1();
        case CHECKSUM_SHA256:
                return EVP_sha256();
        case CHECKSUM_NONE:
                break;
        }
        return NULL;
}

int digest_buffer(ChecksumType t, const void *data, size_t len, uint8_t *ret) {
        const EVP_MD *md = md_for(t);
        unsigned n = 0;

        if (!md)
                return -EINVAL;
        if (!EVP_Digest(data, len, ret, &n, md, NULL))
                return -EIO;
        return 0;
}

typedef struct HashShared {
        int fd;
        const Image *img;       /* a qcow2 read through its reader, or NULL */
        const char *name;
        uint64_t image_size, block_size;
        const Extent *extents;
        const size_t *order; /* extent indices, largest first */
        size_t n;
        const EVP_MD *md;
        uint8_t (*out)[CHECKSUM_MAX_SIZE];
        atomic_size_t next;
        atomic_bool failed;
        pthread_mutex_t lock;
        int error;
        Diag *diag;
} HashShared;

static void fail(HashShared *s, int err, uint64_t offset) {
        pthread_mutex_lock(&s->lock);
        if (s->error == 0) {
                s->error = err == -ENODATA ? -EIO : err;
                if (offset == UINT64_MAX)
                        diag_set(s->diag, err, "%s: the digest library failed", s->name);
                else if (err == -ENODATA) {
                        /* Where the file ends now, not where this thread's
                         * read stopped: with several threads, the first to
                         * fail may be one reading far past that end. */
                        struct stat st;
                        if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t) st.st_size < offset)
                                offset = (uint64_t) st.st_size;
                        diag_set(s->diag, -EIO, "%s: file ends at byte %llu, before the image size %llu: was it truncated?",
                                 s->name, (unsigned long long) offset, (unsigned long long) s->image_size);
                }
                else
                        diag_set(s->diag, err, "%s: read error at byte %llu: %s", s->name,
                                 (unsigned long long) offset, strerror(-err));
        }
        pthread_mutex_unlock(&s->lock);
        atomic_store(&s->failed, true);
}

/* A failed read of a qcow2: its reader said what is wrong. */
static void fail_with(HashShared *s, int err, const Diag *rd, uint64_t offset) {
        pthread_mutex_lock(&s->lock);
        if (s->error == 0) {
                s->error = err;
                if (rd->msg[0])
                        diag_set(s->diag, err, "%s", rd->msg);
                else
                        diag_set(s->diag, err, "%s: read error at image byte %llu: %s", s->name,
                                 (unsigned long long) offset, strerror(-err));
        }
        pthread_mutex_unlock(&s->lock);
        atomic_store(&s->failed, true);
}

static void *hash_worker(void *arg) {
        HashShared *s = arg;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t *buf = malloc(HASH_CHUNK);

        if (!ctx || !buf) {
                fail(s, -ENOMEM, 0);
                goto out;
        }
        while (!atomic_load(&s->failed)) {
                size_t k = atomic_fetch_add(&s->next, 1);
                if (k >= s->n)
                        break;
                size_t idx = s->order[k];
                Extent bytes = extent_bytes(s->extents[idx], s->block_size, s->image_size);
                uint64_t pos = bytes.start, end = bytes.end;
                if (!EVP_DigestInit_ex(ctx, s->md, NULL)) {
                        fail(s, -EIO, UINT64_MAX);
                        break;
                }
                while (pos < end && !atomic_load(&s->failed)) {
                        size_t want = end - pos < HASH_CHUNK ? (size_t) (end - pos) : HASH_CHUNK;
                        ssize_t got = (ssize_t) want;
                        if (s->img) {
                                Diag rd = {};
                                int e = image_read(s->img, buf, want, pos, &rd);
                                if (e < 0) {
                                        fail_with(s, e, &rd, pos);
                                        break;
                                }
                        } else
                                got = pread_full(s->fd, buf, want, pos);
                        if (got < 0) {
                                fail(s, (int) got, pos);
                                break;
                        }
                        if ((size_t) got < want) {
                                fail(s, -ENODATA, pos + (uint64_t) got);
                                break;
                        }
                        if (!EVP_DigestUpdate(ctx, buf, want)) {
                                fail(s, -EIO, UINT64_MAX);
                                break;
                        }
                        pos += want;
                }
                if (atomic_load(&s->failed))
                        break;
                if (!EVP_DigestFinal_ex(ctx, s->out[idx], NULL)) {
                        fail(s, -EIO, UINT64_MAX);
                        break;
                }
        }
out:
        free(buf);
        EVP_MD_CTX_free(ctx);
        return NULL;
}

static const Extent *sort_base;

static int by_size_desc(const void *a, const void *b) {
        const Extent *x = &sort_base[*(const size_t *) a], *y = &sort_base[*(const size_t *) b];
        uint64_t lx = x->end - x->start, ly = y->end - y->start;
        if (lx != ly)
                return lx > ly ? -1 : 1;
        /* Equal sizes keep file order, which reads the disk forward. */
        return x->start < y->start ? -1 : x->start > y->start;
}

int hash_block_ranges(int fd, const char *name, uint64_t image_size, uint64_t block_size, const Extents *blocks,
                      ChecksumType t, unsigned threads, uint8_t (*ret)[CHECKSUM_MAX_SIZE], Diag *d) {
        Image img = image_raw(fd, image_size);
        return hash_image_ranges(&img, name, block_size, blocks, t, threads, ret, d);
}

int hash_image_ranges(const Image *img, const char *name, uint64_t block_size, const Extents *blocks, ChecksumType t,
                      unsigned threads, uint8_t (*ret)[CHECKSUM_MAX_SIZE], Diag *d) {
        _cleanup_free_ size_t *order = NULL;
        _cleanup_free_ pthread_t *tids = NULL;
        const int fd = img->fd;
        HashShared s = {
                .fd = fd,
                .img = img->qcow2 ? img : NULL,
                .name = name,
                .image_size = img->size,
                .block_size = block_size,
                .extents = blocks->v,
                .n = blocks->n,
                .md = md_for(t),
                .out = ret,
                .diag = d,
        };
        unsigned started = 0;

        if (!s.md)
                return -EINVAL;
        if (blocks->n == 0)
                return 0;
        order = malloc(blocks->n * sizeof(size_t));
        if (!order)
                return -ENOMEM;
        for (size_t i = 0; i < blocks->n; i++)
                order[i] = i;
        /* Largest first, so that a long range does not start last and leave
         * the other cores idle at the end. qsort has no context argument;
         * the sort runs before any thread starts, so statics are safe. */
        sort_base = blocks->v;
        qsort(order, blocks->n, sizeof(size_t), by_size_desc);
        s.order = order;

        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if (threads == 0)
                threads = cpu_count();
        if (threads > blocks->n)
                threads = (unsigned) blocks->n;
        atomic_init(&s.next, 0);
        atomic_init(&s.failed, false);
        pthread_mutex_init(&s.lock, NULL);

        tids = calloc(threads, sizeof(pthread_t));
        if (!tids)
                return -ENOMEM;
        for (; started + 1 < threads; started++)
                if (pthread_create(&tids[started], NULL, hash_worker, &s) != 0)
                        break;
        /* The calling thread works too; with one thread nothing is spawned. */
        hash_worker(&s);
        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        pthread_mutex_destroy(&s.lock);
        return s.error;
}
