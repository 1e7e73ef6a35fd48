/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The image being scanned: a raw file or device (its bytes are the disk),
 * or a qcow2 file (its virtual disk). Everything that scans (layout,
 * probes through their Reader, the tail rule, the checksums, create's map)
 * reads through this, so that a qcow2 is scanned exactly as the raw image
 * it stands for. The descriptor stays the caller's unless own_fd. */

#include <stdbool.h>
#include <stdint.h>

#include "extents.h"
#include "qcow2.h"
#include "util.h"

typedef struct Image {
        int fd;                 /* the file: the disk itself when raw */
        uint64_t size;          /* bytes of the disk (a qcow2's virtual size) */
        Qcow2 *qcow2;           /* NULL for a raw image */
        bool own_fd;            /* image_done closes fd */
} Image;

/* A raw image over fd, size bytes; nothing to release. */
static inline Image image_raw(int fd, uint64_t size) {
        return (Image) { .fd = fd, .size = size };
}

/* The image in fd (file_size bytes, opened from path): a qcow2 when its
 * first bytes say so (opened and checked, its backing chain resolved from
 * path's directory), else raw. */
int image_open_fd(int fd, const char *path, uint64_t file_size, Image *ret, Diag *d);
/* Frees the qcow2 reader, and closes fd if own_fd. */
void image_done(Image *img);

/* Exactly n bytes at off: -ENODATA when a raw file ends first, -ERANGE
 * past a qcow2's end, another negative errno (d filled when not NULL). */
int image_read(const Image *img, void *buf, size_t n, uint64_t off, Diag *d);

/* The first stretch of [from, to) that may hold data: 1 with it in
 * ret_start and ret_end, 0 when the rest is known zeros (holes of a raw file,
 * zero or unallocated clusters of a qcow2). */
int image_next_data(const Image *img, uint64_t from, uint64_t to, uint64_t *ret_start, uint64_t *ret_end);

/* A qcow2's data (allocated, or from its backing chain, not known zero)
 * as bytes of the virtual disk: what 'create' maps, the analogue of a raw
 * file's non-holes. */
int image_qcow2_data(const Image *img, Extents *ret, Diag *d);
