/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "reader.h"

#include <errno.h>
#include <string.h>

#include "util.h"

Reader reader_from_fd(int fd, uint64_t image_size, uint64_t base, uint64_t size) {
        return (Reader) { .fd = fd, .image_size = image_size, .base = base, .size = size };
}

Reader reader_from_mem(const void *mem, uint64_t image_size, uint64_t base, uint64_t size) {
        return (Reader) { .fd = -1, .mem = mem, .image_size = image_size, .base = base, .size = size };
}

int reader_read(const Reader *r, uint64_t off, void *buf, size_t n) {
        if (off > r->size || n > r->size - off)
                return -ERANGE;
        if (n == 0)
                return 0;
        uint64_t abs = r->base + off;
        if (abs < r->base || abs > r->image_size || n > r->image_size - abs)
                return -ENODATA;
        if (r->fd < 0) {
                memcpy(buf, r->mem + abs, n);
                return 0;
        }
        ssize_t k = pread_full(r->fd, buf, n, abs);
        if (k < 0)
                return (int) k;
        if ((size_t) k < n)
                return -ENODATA; /* the file shrank under us */
        return 0;
}

int reader_sub(const Reader *r, uint64_t off, uint64_t size, Reader *ret) {
        if (off > r->size || size > r->size - off)
                return -ERANGE;
        *ret = *r;
        ret->base = r->base + off;
        ret->size = size;
        return 0;
}
