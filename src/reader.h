/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>
#include <stddef.h>

/* A bounded view of one region of an image (a partition): every read is
 * relative to the region and refused if it strays outside it, so that no
 * probe can read another partition. The bytes come from a file descriptor,
 * or from memory (fuzzers, unit tests). */
typedef struct Reader {
        int fd;                 /* -1 when reading from mem */
        const uint8_t *mem;     /* the whole image, when fd is -1 */
        uint64_t image_size;    /* bytes the image really has */
        uint64_t base;          /* where the region starts in the image */
        uint64_t size;          /* the region's size; may reach past image_size */
} Reader;

Reader reader_from_fd(int fd, uint64_t image_size, uint64_t base, uint64_t size);
Reader reader_from_mem(const void *mem, uint64_t image_size, uint64_t base, uint64_t size);

/* Reads exactly n bytes at off, relative to the region. Returns 0, or
 * -ERANGE when [off, off+n) is not inside the region, -ENODATA when it is
 * but the image ends first (a truncated image), or another negative errno
 * for an I/O error. */
int reader_read(const Reader *r, uint64_t off, void *buf, size_t n);

/* A view of [off, off+size) of r, still bounded by r. -ERANGE if outside. */
int reader_sub(const Reader *r, uint64_t off, uint64_t size, Reader *ret);
