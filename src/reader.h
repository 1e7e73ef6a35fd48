/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>
#include <stddef.h>

/* One piece of a volume made of pieces of the image (an LVM2 LV): volume
 * bytes [start, start + size) are image bytes [at, at + size). */
typedef struct ReaderSeg {
        uint64_t start, size, at;
} ReaderSeg;

/* A bounded view of one region of an image (a partition): every read is
 * relative to the region and refused if it strays outside it, so that no
 * probe can read another partition. The bytes come from a file descriptor,
 * or from memory (fuzzers, unit tests).
 *
 * A region may also be a volume laid over a list of segments. Its reader
 * then works in a virtual image in which the volume's bytes lie
 * contiguously from segs[0].at (so base is never 0 for a volume inside a
 * container, and base + size, image_size and reader_sub keep their
 * meaning); only reading translates virtual bytes into the segments. */
struct Image;

typedef struct Reader {
        int fd;                 /* -1 when reading from mem or img */
        const uint8_t *mem;     /* the whole image, when fd is -1 */
        uint64_t image_size;    /* bytes the image really has (virtual: up to where the volume's bytes stop) */
        uint64_t base;          /* where the region starts in the image */
        uint64_t size;          /* the region's size; may reach past image_size */
        const ReaderSeg *segs;  /* NULL: a plain region; else the volume's pieces, owned by the caller */
        size_t n_segs;
        uint64_t origin;        /* the virtual offset of the volume's byte 0 */
        uint64_t real_size;     /* bytes the image really has, for a volume */
        const struct Image *img; /* a qcow2's virtual disk (fd is then -1), or NULL */
} Reader;

Reader reader_from_fd(int fd, uint64_t image_size, uint64_t base, uint64_t size);
Reader reader_from_mem(const void *mem, uint64_t image_size, uint64_t base, uint64_t size);
/* Over an Image: a raw one's descriptor (exactly reader_from_fd), or a
 * qcow2's virtual disk. */
Reader reader_from_image(const struct Image *img, uint64_t base, uint64_t size);

/* Reads exactly n bytes at off, relative to the region. Returns 0, or
 * -ERANGE when [off, off+n) is not inside the region, -ENODATA when it is
 * but the image ends first (a truncated image), or another negative errno
 * for an I/O error. */
int reader_read(const Reader *r, uint64_t off, void *buf, size_t n);

/* A reader over the volume made of segs (n > 0, each start the end of the
 * one before, from 0), whose pieces lie in an image of image_size bytes
 * read from fd or mem. segs must outlive the reader. -EINVAL when the
 * segments do not tile the volume. */
int reader_from_segments(int fd, const void *mem, uint64_t image_size, const ReaderSeg *segs, size_t n, Reader *ret);
/* The same over an Image. */
int reader_from_image_segments(const struct Image *img, const ReaderSeg *segs, size_t n, Reader *ret);

/* Where byte off of the region lies in the image, and how many bytes from
 * there on are contiguous in the image (up to the region's end). -ERANGE
 * when off is outside the region. */
int reader_locate(const Reader *r, uint64_t off, uint64_t *ret_at, uint64_t *ret_len);

/* A view of [off, off+size) of r, still bounded by r. -ERANGE if outside. */
int reader_sub(const Reader *r, uint64_t off, uint64_t size, Reader *ret);
