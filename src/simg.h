/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The Android sparse image format (FORMATS.md §13), as the writer
 * (simg-write.c) and the reader stage (stream-simg.c) share it: a 28-byte
 * header, then chunks of 12-byte headers in output order. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define SIMG_MAGIC UINT32_C(0xED26FF3A)
#define SIMG_FILE_HDR_SZ 28u
#define SIMG_CHUNK_HDR_SZ 12u

enum {
        SIMG_CHUNK_RAW = 0xCAC1,
        SIMG_CHUNK_FILL = 0xCAC2,
        SIMG_CHUNK_DONT_CARE = 0xCAC3,
        SIMG_CHUNK_CRC32 = 0xCAC4,
};

/* What a sparse image holds, counted as its chunks are read: the header's
 * fields, then the chunks by type. */
typedef struct SimgInfo {
        uint16_t major, minor;
        uint32_t block_size;
        uint32_t total_blocks;
        uint32_t total_chunks;
        uint32_t image_checksum;        /* 0: none */
        uint64_t raw_chunks, fill_chunks, dont_care_chunks, crc_chunks;
        uint64_t raw_blocks, fill_blocks, fill_zero_blocks, dont_care_blocks;
        /* CRC32 chunks (and a non-zero image_checksum) compared with the
         * output, and those that could not be, because data was skipped by
         * a seek rather than read. */
        uint64_t crc_checked, crc_unchecked;
} SimgInfo;

/* Whether a sparse image i (NULL: none) whose output is output_size bytes
 * (total_blks × blk_sz) stands for an image of image_size bytes, its last
 * partial block padded to the block size (as scan --simg and img2simg pad
 * it): then a bmap of image_size bytes belongs to it. */
bool simg_pads(const SimgInfo *i, uint64_t output_size, uint64_t image_size);

/* The CRC32 of the format (zlib's: crc32(0, "123456789", 9) is 0xcbf43926),
 * carried over pieces: simg_crc32(simg_crc32(0, a), b) is that of a ‖ b.
 * ISA-L's, which runs at memory speed. */
uint32_t simg_crc32(uint32_t crc, const void *buf, uint64_t n);
/* The CRC carried over n zero bytes (DONT_CARE reads as zeros). */
uint32_t simg_crc32_zeros(uint32_t crc, uint64_t n);
/* The CRC carried over n bytes of a FILL value (little-endian) tiled from
 * phase bytes into it. */
uint32_t simg_crc32_fill(uint32_t crc, uint32_t value, uint64_t phase, uint64_t n);
