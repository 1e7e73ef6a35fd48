/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "reader.h"

#include <errno.h>
#include <string.h>

#include "image.h"
#include "util.h"

Reader reader_from_fd(int fd, uint64_t image_size, uint64_t base, uint64_t size) {
        return (Reader) { .fd = fd, .image_size = image_size, .base = base, .size = size };
}

Reader reader_from_mem(const void *mem, uint64_t image_size, uint64_t base, uint64_t size) {
        return (Reader) { .fd = -1, .mem = mem, .image_size = image_size, .base = base, .size = size };
}

Reader reader_from_image(const Image *img, uint64_t base, uint64_t size) {
        if (!img->qcow2)
                return reader_from_fd(img->fd, img->size, base, size);
        return (Reader) { .fd = -1, .img = img, .image_size = img->size, .base = base, .size = size };
}

int reader_from_image_segments(const Image *img, const ReaderSeg *segs, size_t n, Reader *ret) {
        int r = reader_from_segments(img->qcow2 ? -1 : img->fd, NULL, img->size, segs, n, ret);
        if (r >= 0 && img->qcow2)
                ret->img = img;
        return r;
}

/* n bytes at image byte at: -ENODATA when the image ends first. */
static int read_at(const Reader *r, uint8_t *buf, size_t n, uint64_t at) {
        if (r->img) {
                int k = image_read(r->img, buf, n, at, NULL);
                return k == -ERANGE ? -ENODATA : k;
        }
        if (r->fd < 0) {
                memcpy(buf, r->mem + at, n);
                return 0;
        }
        ssize_t got = pread_full(r->fd, buf, n, at);
        if (got < 0)
                return (int) got;
        if ((size_t) got < n)
                return -ENODATA; /* the file shrank under us */
        return 0;
}

int reader_from_segments(int fd, const void *mem, uint64_t image_size, const ReaderSeg *segs, size_t n, Reader *ret) {
        uint64_t total = 0, present = UINT64_MAX;

        if (n == 0 || segs[0].at == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (segs[i].start != total || segs[i].size == 0 || segs[i].size > UINT64_MAX - total ||
                    segs[i].at > UINT64_MAX - segs[i].size)
                        return -EINVAL;
                /* The volume's bytes stop where its first piece leaves the image. */
                if (present == UINT64_MAX && segs[i].at + segs[i].size > image_size)
                        present = total + (segs[i].at < image_size ? image_size - segs[i].at : 0);
                total += segs[i].size;
        }
        if (present == UINT64_MAX)
                present = total;
        if (total > UINT64_MAX - segs[0].at)
                return -EINVAL;
        *ret = (Reader) { .fd = fd, .mem = mem, .image_size = segs[0].at + present, .base = segs[0].at, .size = total,
                          .segs = segs, .n_segs = n, .origin = segs[0].at, .real_size = image_size };
        return 0;
}

/* The segment holding volume byte v (< the volume's size). */
static const ReaderSeg *find_seg(const Reader *r, uint64_t v) {
        size_t lo = 0, hi = r->n_segs;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (r->segs[mid].start <= v)
                        lo = mid;
                else
                        hi = mid;
        }
        return &r->segs[lo];
}

int reader_locate(const Reader *r, uint64_t off, uint64_t *ret_at, uint64_t *ret_len) {
        if (off >= r->size)
                return -ERANGE;
        if (!r->segs) {
                *ret_at = r->base + off;
                *ret_len = r->size - off;
                return 0;
        }
        uint64_t v = r->base + off - r->origin;
        const ReaderSeg *g = find_seg(r, v);
        uint64_t len = g->start + g->size - v;
        *ret_at = g->at + (v - g->start);
        *ret_len = len < r->size - off ? len : r->size - off;
        return 0;
}

/* A read of a volume: piece by piece, each inside the image (the virtual
 * image_size has already stopped reads at the first missing byte). */
static int read_segments(const Reader *r, uint64_t abs, uint8_t *buf, size_t n) {
        uint64_t v = abs - r->origin;

        while (n > 0) {
                const ReaderSeg *g = find_seg(r, v);
                uint64_t in = g->start + g->size - v;
                size_t k = in < n ? (size_t) in : n;
                uint64_t at = g->at + (v - g->start);
                if (at > r->real_size || k > r->real_size - at)
                        return -ENODATA;
                int e = read_at(r, buf, k, at);
                if (e < 0)
                        return e;
                buf += k;
                v += k;
                n -= k;
        }
        return 0;
}

int reader_read(const Reader *r, uint64_t off, void *buf, size_t n) {
        if (off > r->size || n > r->size - off)
                return -ERANGE;
        if (n == 0)
                return 0;
        uint64_t abs = r->base + off;
        if (abs < r->base || abs > r->image_size || n > r->image_size - abs)
                return -ENODATA;
        if (r->segs)
                return read_segments(r, abs, buf, n);
        return read_at(r, buf, n, abs);
}

int reader_sub(const Reader *r, uint64_t off, uint64_t size, Reader *ret) {
        if (off > r->size || size > r->size - off)
                return -ERANGE;
        *ret = *r;
        ret->base = r->base + off;
        ret->size = size;
        return 0;
}
