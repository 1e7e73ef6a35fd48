/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Writes the mapped set of an image as an Android sparse image: RAW chunks
 * for mapped blocks, FILL chunks for mapped runs of one repeated 32-bit
 * value (zero blocks included), DONT_CARE chunks for the rest, and an
 * optional CRC32 chunk at the end. The image is read through a pread-like
 * callback, so that any image the scanner sees (a raw file, a qcow2's
 * virtual disk) can be written; the output through a pwrite-like one: the
 * chunks go out in order, and the file header last, at offset 0, once the
 * number of chunks is known. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "extents.h"
#include "simg.h"
#include "util.h"

/* One RAW chunk carries at most this many bytes: a longer run of data is
 * cut into several chunks. Each chunk is sent and written whole by
 * fastboot and U-Boot's writer, so a bounded size keeps every chunk inside
 * a bootloader's download buffer when fastboot splits an image for its
 * max-download-size; it is also the writer's one large buffer. */
#define SIMG_MAX_RAW_DEFAULT ((uint64_t) 16 << 20)

typedef struct SimgWriteOptions {
        uint32_t block_size;            /* a power of two from 512 to 1 MiB; 0: 4096 */
        bool crc;                       /* a CRC32 chunk at the end, and the header's image_checksum */
        uint64_t max_raw;               /* bytes in one RAW chunk at most; 0: SIMG_MAX_RAW_DEFAULT */
        /* Reads n bytes of the image at off: returns the count (fewer only
         * at the image's end) or a negative errno. */
        ssize_t (*read)(void *ctx, void *buf, size_t n, uint64_t off);
        void *read_ctx;
        /* Writes n bytes of the sparse image at off: 0 or a negative errno. */
        int (*write)(void *ctx, const void *buf, size_t n, uint64_t off);
        void *write_ctx;
        const char *image_name, *output_name;  /* for messages */
} SimgWriteOptions;

typedef struct SimgWriteResult {
        SimgInfo info;          /* the header written and the chunks by type */
        uint64_t file_size;     /* bytes of the sparse image */
        uint64_t padded;        /* zero bytes added after the image to fill its last block */
} SimgWriteResult;

/* Writes the blocks of image_size bytes that mapped (byte extents, rounded
 * out to the block size) touches. A last partial block is padded with zeros
 * (as img2simg does): the sparse image's output is then padded bytes longer
 * than the image. Errors: -EINVAL (bad options), -EFBIG (more than 2^32-1
 * blocks), -EIO or the callbacks' errors, each with a message naming the
 * image or the output and the byte offset. */
int simg_write(uint64_t image_size, const Extents *mapped, const SimgWriteOptions *o, SimgWriteResult *ret,
               Diag *d);

/* Whether the n bytes at p (n a positive multiple of 4) are one 32-bit
 * value repeated; *ret_value is it, read little-endian as a FILL chunk
 * stores it. */
bool simg_block_is_fill(const uint8_t *p, size_t n, uint32_t *ret_value);
